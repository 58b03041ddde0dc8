/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-test-ref.h"
#include "mm-test-util.h"

#include <stdlib.h>
#include <string.h>

gchar *
mm_test_fixture (const gchar * rel)
{
  const gchar *dir = g_getenv ("MM_FIXTURES");
  gchar *p = g_build_filename (dir ? dir : "tests/fixtures", rel, NULL);
  if (!g_file_test (p, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: fixture %s is missing (run tests/fixtures/generate.py)\n",
        p);
    exit (MM_TEST_SKIP);
  }
  return p;
}

MmSafetensors *
mm_test_ref_open_file (const gchar * rel)
{
  gchar *p = mm_test_fixture (rel);
  GError *err = NULL;
  MmSafetensors *st = mm_safetensors_open (p, &err);
  if (st == NULL) {
    g_printerr ("reference: %s\n", err->message);
    exit (1);
  }
  g_free (p);
  return st;
}

MmSafetensors *
mm_test_ref_open (const gchar * dir)
{
  gchar *rel = g_build_filename (dir, "reference.safetensors", NULL);
  MmSafetensors *st = mm_test_ref_open_file (rel);
  g_free (rel);
  return st;
}

gboolean
mm_test_same_ids (const gchar * what, const gint32 * got, gsize n_got,
    const gint32 * want, gsize n_want)
{
  gboolean ok = n_got == n_want && !memcmp (got, want, n_got * sizeof (gint32));
  g_print ("%s:", what);
  for (gsize i = 0; i < MAX (n_got, n_want); i++)
    g_print (" %d/%d", i < n_got ? got[i] : -9, i < n_want ? want[i] : -9);
  g_print (" (got/want)%s\n", ok ? "" : " MISMATCH");
  if (!ok)
    g_printerr ("FAIL %s\n", what);
  return ok;
}

static const MmTensorInfo *
ref_info (MmSafetensors * ref, const gchar * name)
{
  const MmTensorInfo *info = mm_safetensors_find_tensor (ref, name);
  if (info == NULL) {
    g_printerr ("reference tensor %s missing in %s\n", name,
        mm_safetensors_path (ref));
    exit (1);
  }
  return info;
}

float *
mm_test_ref_f32 (MmSafetensors * ref, const gchar * name, gsize * n)
{
  const MmTensorInfo *info = ref_info (ref, name);
  float *d = g_new (float, MAX (info->numel, 1));
  GError *err = NULL;
  if (!mm_tensor_info_to_f32 (info, mm_safetensors_path (ref), d, &err)) {
    g_printerr ("reference %s: %s\n", name, err->message);
    exit (1);
  }
  if (n)
    *n = info->numel;
  return d;
}

gint32 *
mm_test_ref_i32 (MmSafetensors * ref, const gchar * name, gsize * n)
{
  const MmTensorInfo *info = ref_info (ref, name);
  gint32 *d = g_new (gint32, MAX (info->numel, 1));
  gsize es = info->numel ? info->nbytes / info->numel : 0;
  for (gint64 i = 0; i < info->numel; i++) {
    if (es == 8) {
      gint64 v;
      memcpy (&v, info->data + i * 8, 8);
      d[i] = v;
    } else {
      memcpy (&d[i], info->data + i * 4, 4);
    }
  }
  if (n)
    *n = info->numel;
  return d;
}
