/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replays every file of fuzz/corpus/{gguf,safetensors} through the fuzz
 * target bodies (no libFuzzer needed): nothing may crash or leak, and
 * files named valid-* must open. */
#include "../../fuzz/mm-fuzz-targets.h"

#include <string.h>

typedef int (*FuzzOne) (const guint8 * data, gsize size);

static void
replay (const gchar * sub, FuzzOne one)
{
  g_autofree gchar *dir = g_build_filename (MM_FUZZ_CORPUS, sub, NULL);
  GError *err = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &err);
  g_assert_no_error (err);
  const gchar *f;
  guint n = 0, valid = 0;
  while ((f = g_dir_read_name (d))) {
    g_autofree gchar *path = g_build_filename (dir, f, NULL);
    g_autofree gchar *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (path, &data, &len, &err));
    /* an exact-size copy, so over-reads are caught by sanitizers */
    g_autofree guint8 *copy = g_memdup2 (data, len);
    gint opened = one (copy, len);
    if (g_str_has_prefix (f, "valid-")) {
      if (!opened)
        g_error ("%s: a valid-* corpus file was rejected", path);
      valid++;
    }
    n++;
  }
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (valid, >, 0);
}

static void
test_gguf (void)
{
  replay ("gguf", mm_fuzz_gguf_one);
}

static void
test_safetensors (void)
{
  replay ("safetensors", mm_fuzz_safetensors_one);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/fuzz-corpus/gguf", test_gguf);
  g_test_add_func ("/fuzz-corpus/safetensors", test_safetensors);
  return g_test_run ();
}
