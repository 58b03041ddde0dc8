/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-fuzz-targets.h"
#include "mm-gguf.h"
#include "mm-safetensors.h"
#include "mm-json.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_CONVERT (1 << 20)      /* elements converted per tensor */
#define FUZZ_MAX_ELEMS 4096     /* array elements visited per array */

#define CHECK(cond)                                                         \
  G_STMT_START {                                                            \
    if (!(cond)) {                                                          \
      g_printerr ("fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__,   \
          __LINE__);                                                        \
      abort ();                                                             \
    }                                                                       \
  } G_STMT_END

/* A rejection must be one clean MM_FORMAT_ERROR naming the input. */
static int
rejected (GError ** err, const gchar * name)
{
  CHECK (*err != NULL);
  CHECK ((*err)->domain == MM_FORMAT_ERROR);
  CHECK (g_str_has_prefix ((*err)->message, name));
  g_clear_error (err);
  return 0;
}

static void
check_info (const MmTensorInfo * t, const guint8 * base, gsize size,
    const gchar * file)
{
  CHECK (t->name != NULL);
  CHECK (t->n_dims >= 0 && t->n_dims <= MM_MAX_DIMS);
  CHECK (t->offset <= size && t->nbytes <= size - t->offset);
  CHECK (t->data == base + t->offset);
  if (!t->supported)
    return;
  CHECK (mm_dtype_size (t->dtype, t->numel) == t->nbytes);
  GError *err = NULL;
  /* a wrong shape must be refused, a wildcard accepted */
  gint64 wrong[MM_MAX_DIMS] = { -1, -1, -1, -1 };
  CHECK (mm_tensor_info_check (t, file, 0, t->n_dims, wrong, NULL)
      || t->n_dims == 0);
  wrong[0] = t->n_dims ? t->shape[0] ^ 1 : 1;
  CHECK (!mm_tensor_info_check (t, file, 0, MAX (t->n_dims, 1), wrong, &err));
  rejected (&err, file);
  if (t->numel > FUZZ_MAX_CONVERT)
    return;
  float *f = g_new (float, MAX (t->numel, 1));
  CHECK (mm_tensor_info_to_f32 (t, file, f, NULL));
  g_free (f);
}

static void
walk_array (MmGgufArray * a)
{
  guint64 n = mm_gguf_array_len (a);
  for (guint64 i = 0; i < n && i < FUZZ_MAX_ELEMS; i++) {
    gsize len = 0;
    const gchar *s = mm_gguf_array_get_str (a, i, &len);
    CHECK ((s != NULL) == (mm_gguf_array_type (a) == MM_GGUF_TYPE_STRING));
    if (s)
      CHECK (strlen (s) <= len);
    (void) mm_gguf_array_get_int (a, i);
    (void) mm_gguf_array_get_float (a, i);
  }
  if (n)
    (void) mm_gguf_array_get_str (a, n - 1, NULL);
  CHECK (mm_gguf_array_get_str (a, n, NULL) == NULL);
}

static void
walk_keys (MmGguf * g)
{
  for (guint i = 0; i < mm_gguf_n_keys (g); i++) {
    const gchar *key = mm_gguf_key_nth (g, i);
    GError *err = NULL;
    CHECK (key && mm_gguf_has_key (g, key));
    (void) mm_gguf_get_u32 (g, key, 0, NULL);
    (void) mm_gguf_get_i32 (g, key, 0, NULL);
    (void) mm_gguf_get_u64 (g, key, 0, NULL);
    (void) mm_gguf_get_i64 (g, key, 0, NULL);
    (void) mm_gguf_get_f32 (g, key, 0, NULL);
    (void) mm_gguf_get_bool (g, key, 0, NULL);
    const gchar *s = mm_gguf_get_str (g, key, NULL, &err);
    CHECK ((s != NULL) == (err == NULL));
    g_clear_error (&err);
    MmGgufArray *a = mm_gguf_get_array (g, key, MM_GGUF_TYPE_NONE, &err);
    CHECK ((a != NULL) == (err == NULL));
    g_clear_error (&err);
    if (a)
      walk_array (a);
  }
}

int
mm_fuzz_gguf_one (const guint8 * data, gsize size)
{
  const gchar *name = "fuzz.gguf";
  GError *err = NULL;
  GBytes *b = g_bytes_new_static (data, size);
  MmGguf *g = mm_gguf_open_from_bytes (b, name, &err);
  g_bytes_unref (b);
  if (g == NULL)
    return rejected (&err, name);
  walk_keys (g);
  CHECK (mm_gguf_alignment (g) > 0);
  for (guint i = 0; i < mm_gguf_n_tensors (g); i++) {
    const MmTensorInfo *t = mm_gguf_tensor_nth (g, i);
    check_info (t, data, size, name);
    CHECK (mm_gguf_find_tensor (g, t->name) == t);
    CHECK (t->offset % mm_gguf_alignment (g) == 0);
    const MmTensorInfo *got = mm_gguf_get_tensor (g, t->name, &err);
    CHECK (got == (t->supported ? t : NULL));
    if (got == NULL)
      rejected (&err, name);
  }
  CHECK (mm_gguf_tensor_nth (g, mm_gguf_n_tensors (g)) == NULL);
  mm_gguf_free (g);
  return 1;
}

static void
walk_json (MmJson * j)
{
  static const gchar *paths[] = { "", "hidden_size", "vision_config",
    "vision_config.hidden_size", "architectures.0", "a.b.c", "0", "0.0",
    "__metadata__", "weight_map",
  };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    (void) mm_json_has (j, paths[i]);
    (void) mm_json_get_int (j, paths[i], 0, NULL);
    (void) mm_json_get_float (j, paths[i], 0, NULL);
    (void) mm_json_get_bool (j, paths[i], 0, NULL);
    (void) mm_json_get_str (j, paths[i], NULL, NULL);
    (void) mm_json_get_len (j, paths[i]);
  }
}

int
mm_fuzz_safetensors_one (const guint8 * data, gsize size)
{
  const gchar *name = "fuzz.safetensors";
  GError *err = NULL;
  MmJson *j = mm_json_new_from_data ((const gchar *) data, size,
      "fuzz.json", &err);
  if (j) {
    walk_json (j);
    mm_json_free (j);
  } else {
    rejected (&err, "fuzz.json");
  }
  GBytes *b = g_bytes_new_static (data, size);
  MmSafetensors *st = mm_safetensors_open_from_bytes (b, name, &err);
  g_bytes_unref (b);
  if (st == NULL)
    return rejected (&err, name);
  for (guint i = 0; i < mm_safetensors_n_tensors (st); i++) {
    const MmTensorInfo *t = mm_safetensors_tensor_nth (st, i);
    check_info (t, data, size, name);
    CHECK (mm_safetensors_find_tensor (st, t->name) == t);
    const MmTensorInfo *got = mm_safetensors_get_tensor (st, t->name, &err);
    CHECK (got == (t->supported ? t : NULL));
    if (got == NULL)
      rejected (&err, name);
  }
  (void) mm_safetensors_get_metadata (st, "format");
  mm_safetensors_free (st);
  return 1;
}
