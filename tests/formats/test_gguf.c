/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GGUF reader: a valid file read back field by field, then truncated at
 * every byte, then broken field by field; every failure must be a clean
 * MM_FORMAT_ERROR naming the file and the key or tensor. */
#include "mm-gguf.h"
#include "mm-dequant.h"
#include "mm-test-writers.h"
#include "../../fuzz/mm-fuzz-targets.h"

#include <glib/gstdio.h>
#include <string.h>

#define NAME "t.gguf"
#define GGML_Q4_K 12

typedef struct
{
  const gchar *name;
  guint32 ggml;
  MmDType dtype;
  gint n_dims;
  gint64 shape[4];
} TSpec;

static const TSpec specs[] = {
  {"tok.f32", 0, MM_DTYPE_F32, 2, {3, 5}},
  {"w.f16", 1, MM_DTYPE_F16, 2, {2, 3}},
  {"w.bf16", 30, MM_DTYPE_BF16, 1, {7}},
  {"w.q8", 8, MM_DTYPE_Q8_0, 2, {2, 64}},
  {"w.q40", 2, MM_DTYPE_Q4_0, 2, {3, 32}},
  {"w.q41", 3, MM_DTYPE_Q4_1, 2, {1, 96}},
  {"w.4d", 0, MM_DTYPE_F32, 4, {1, 2, 1, 3}},
};

static guint8 *tdata[G_N_ELEMENTS (specs)];
static gsize tbytes[G_N_ELEMENTS (specs)];

static void
make_tensor_data (void)
{
  GRand *r = g_rand_new_with_seed (7);
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    gint64 n = 1;
    for (gint d = 0; d < specs[i].n_dims; d++)
      n *= specs[i].shape[d];
    tbytes[i] = mmt_random_tensor (specs[i].dtype, n, r, &tdata[i]);
  }
  g_rand_free (r);
}

static void
add_kvs (MmtGguf * w)
{
  static const gint32 ints[] = { 1, -2, 3 };
  static const gfloat floats[] = { 0.5f, -1.0f };
  static const guint8 bools[] = { 1, 0 };
  static const gchar *strs[] = { "a", "", "h\xc3\xa9llo" };
  mmt_gguf_kv_str (w, "general.architecture", "llama");
  mmt_gguf_kv_str (w, "general.name", "");
  mmt_gguf_kv_u8 (w, "t.u8", 200);
  mmt_gguf_kv_i8 (w, "t.i8", -5);
  mmt_gguf_kv_u16 (w, "t.u16", 60000);
  mmt_gguf_kv_i16 (w, "t.i16", -30000);
  mmt_gguf_kv_u32 (w, "t.u32", 4000000000u);
  mmt_gguf_kv_i32 (w, "t.i32", -2000000000);
  mmt_gguf_kv_u64 (w, "t.u64", G_GUINT64_CONSTANT (1) << 40);
  mmt_gguf_kv_i64 (w, "t.i64", -(G_GINT64_CONSTANT (1) << 40));
  mmt_gguf_kv_f32 (w, "t.f32", 1.5f);
  mmt_gguf_kv_f64 (w, "t.f64", 2.25);
  mmt_gguf_kv_bool (w, "t.bool", TRUE);
  mmt_gguf_kv_arr (w, "t.arr.i32", 5, 3, ints, 4);
  mmt_gguf_kv_arr (w, "t.arr.f32", 6, 2, floats, 4);
  mmt_gguf_kv_arr (w, "t.arr.bool", 7, 2, bools, 1);
  mmt_gguf_kv_arr (w, "t.arr.empty", 0, 0, NULL, 1);
  mmt_gguf_kv_arr_str (w, "t.arr.str", 3, strs);
  mmt_gguf_kv_u32 (w, "general.alignment", 32);
}

/* The reference file: every KV type, every supported tensor type and one
 * unsupported (Q4_K) tensor. */
static GBytes *
make_full (guint32 version)
{
  g_autoptr (MmtGguf) w = mmt_gguf_new (version);
  add_kvs (w);
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    mmt_gguf_tensor (w, specs[i].name, specs[i].ggml, specs[i].n_dims,
        specs[i].shape, tdata[i], tbytes[i]);
  guint8 q4k[144] = { 0 };
  gint64 s = 256;
  mmt_gguf_tensor (w, "w.q4k", GGML_Q4_K, 1, &s, q4k, sizeof q4k);
  return mmt_gguf_finish (w, 32);
}

static MmGguf *
open_bytes (GBytes * b, GError ** error)
{
  return mm_gguf_open_from_bytes (b, NAME, error);
}

/* Asserts @err is MM_FORMAT_ERROR @code naming the file and every string
 * in the NULL-terminated list. */
static void
assert_error (GError * err, gint code, ...)
{
  va_list ap;
  g_assert_nonnull (err);
  if (code >= 0)
    g_assert_error (err, MM_FORMAT_ERROR, code);
  g_assert_true (err->domain == MM_FORMAT_ERROR);
  g_assert_true (g_str_has_prefix (err->message, NAME ": "));
  va_start (ap, code);
  for (const gchar * s = va_arg (ap, const gchar *); s;
      s = va_arg (ap, const gchar *))
    if (strstr (err->message, s) == NULL)
      g_error ("'%s' not in error message \"%s\"", s, err->message);
  va_end (ap);
}

/* Opens @b, which must fail as described. */
static void
expect_fail (GBytes * b, gint code, const gchar * s1, const gchar * s2)
{
  GError *err = NULL;
  MmGguf *g = open_bytes (b, &err);
  g_assert_null (g);
  assert_error (err, code, s1, s2, NULL);
  g_error_free (err);
  /* the fuzz target's invariants hold for it too */
  g_assert_cmpint (mm_fuzz_gguf_one (g_bytes_get_data (b, NULL),
          g_bytes_get_size (b)), ==, 0);
}

/* ---- valid files ---- */

static void
test_metadata (void)
{
  g_autoptr (GBytes) b = make_full (3);
  GError *err = NULL;
  g_autoptr (MmGguf) g = open_bytes (b, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (mm_gguf_version (g), ==, 3);
  g_assert_cmpuint (mm_gguf_alignment (g), ==, 32);
  g_assert_cmpuint (mm_gguf_n_keys (g), ==, 19);
  g_assert_cmpstr (mm_gguf_key_nth (g, 0), ==, "general.architecture");
  g_assert_null (mm_gguf_key_nth (g, 19));
  g_assert_cmpstr (mm_gguf_get_str (g, "general.architecture", NULL, &err),
      ==, "llama");
  g_assert_cmpstr (mm_gguf_get_str (g, "general.name", NULL, &err), ==, "");
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.u8", 0, &err), ==, 200);
  g_assert_cmpint (mm_gguf_get_i32 (g, "t.i8", 0, &err), ==, -5);
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.u16", 0, &err), ==, 60000);
  g_assert_cmpint (mm_gguf_get_i32 (g, "t.i16", 0, &err), ==, -30000);
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.u32", 0, &err), ==, 4000000000u);
  g_assert_cmpint (mm_gguf_get_i32 (g, "t.i32", 0, &err), ==, -2000000000);
  g_assert_cmpuint (mm_gguf_get_u64 (g, "t.u64", 0, &err), ==,
      G_GUINT64_CONSTANT (1) << 40);
  g_assert_cmpint (mm_gguf_get_i64 (g, "t.i64", 0, &err), ==,
      -(G_GINT64_CONSTANT (1) << 40));
  g_assert_cmpfloat (mm_gguf_get_f32 (g, "t.f32", 0, &err), ==, 1.5f);
  g_assert_cmpfloat (mm_gguf_get_f64 (g, "t.f64", 0, &err), ==, 2.25);
  g_assert_cmpfloat (mm_gguf_get_f64 (g, "t.i32", 0, &err), ==, -2e9);
  g_assert_true (mm_gguf_get_bool (g, "t.bool", FALSE, &err));
  g_assert_no_error (err);
  /* absent: default, no error */
  g_assert_false (mm_gguf_has_key (g, "nope"));
  g_assert_cmpint (mm_gguf_key_type (g, "nope"), ==, MM_GGUF_TYPE_NONE);
  g_assert_cmpuint (mm_gguf_get_u32 (g, "nope", 77, &err), ==, 77);
  g_assert_cmpstr (mm_gguf_get_str (g, "nope", "d", &err), ==, "d");
  g_assert_no_error (err);
  g_assert_true (mm_gguf_require_key (g, "t.u8", &err));
  g_assert_false (mm_gguf_require_key (g, "nope", &err));
  assert_error (err, MM_FORMAT_ERROR_MISSING, "'nope'", NULL);
  g_clear_error (&err);
  g_assert_cmpint (mm_gguf_key_type (g, "t.f64"), ==, MM_GGUF_TYPE_FLOAT64);
  g_assert_cmpuint (mm_gguf_get_str_len (g, "general.architecture"), ==, 5);
  g_assert_cmpuint (mm_gguf_get_str_len (g, "t.u8"), ==, 0);
  g_assert_cmpstr (mm_gguf_type_name (MM_GGUF_TYPE_ARRAY), ==, "ARRAY");
  g_assert_cmpstr (mm_gguf_type_name (MM_GGUF_TYPE_NONE), ==, "(absent)");
  g_assert_cmpstr (mm_gguf_type_name (99), ==, "(invalid)");
}

/* Values that do not fit the asked type: default plus an error naming
 * the key. */
static void
test_getter_types (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  GError *err = NULL;
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.i8", 9, &err), ==, 9);
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.i8'", "INT8 -5", NULL);
  g_clear_error (&err);
  g_assert_cmpint (mm_gguf_get_i32 (g, "t.u32", 9, &err), ==, 9);
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.u32'", NULL);
  g_clear_error (&err);
  g_assert_cmpint (mm_gguf_get_i64 (g, "t.u32", 0, &err), ==, 4000000000);
  g_assert_no_error (err);
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.u64", 9, &err), ==, 9);
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.u64'", NULL);
  g_clear_error (&err);
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.f32", 9, &err), ==, 9);
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.f32'", "FLOAT32", NULL);
  g_clear_error (&err);
  g_assert_false (mm_gguf_get_bool (g, "t.u8", FALSE, &err));
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.u8'", NULL);
  g_clear_error (&err);
  g_assert_cmpstr (mm_gguf_get_str (g, "t.u32", "d", &err), ==, "d");
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.u32'", "STRING", NULL);
  g_clear_error (&err);
  g_assert_cmpfloat (mm_gguf_get_f32 (g, "t.arr.f32", 3, &err), ==, 3);
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.arr.f32'", "ARRAY", NULL);
  g_clear_error (&err);
  /* NULL error pointers are fine */
  g_assert_cmpuint (mm_gguf_get_u32 (g, "t.i8", 4, NULL), ==, 4);
}

static void
test_arrays (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  GError *err = NULL;
  MmGgufArray *a = mm_gguf_get_array (g, "t.arr.str", MM_GGUF_TYPE_STRING,
      &err);
  g_assert_no_error (err);
  gsize len = 99;
  g_assert_cmpuint (mm_gguf_array_len (a), ==, 3);
  g_assert_cmpint (mm_gguf_array_type (a), ==, MM_GGUF_TYPE_STRING);
  g_assert_cmpstr (mm_gguf_array_get_str (a, 0, &len), ==, "a");
  g_assert_cmpuint (len, ==, 1);
  g_assert_cmpstr (mm_gguf_array_get_str (a, 1, &len), ==, "");
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (mm_gguf_array_get_str (a, 2, &len), ==, "h\xc3\xa9llo");
  g_assert_cmpuint (len, ==, 6);
  g_assert_null (mm_gguf_array_get_str (a, 3, NULL));
  g_assert_cmpint (mm_gguf_array_get_int (a, 0), ==, 0);

  a = mm_gguf_get_array (g, "t.arr.i32", MM_GGUF_TYPE_NONE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (mm_gguf_array_get_int (a, 1), ==, -2);
  g_assert_cmpfloat (mm_gguf_array_get_float (a, 2), ==, 3.0);
  g_assert_null (mm_gguf_array_get_str (a, 0, NULL));
  g_assert_cmpint (mm_gguf_array_get_int (a, 3), ==, 0);
  a = mm_gguf_get_array (g, "t.arr.f32", MM_GGUF_TYPE_FLOAT32, &err);
  g_assert_cmpfloat (mm_gguf_array_get_float (a, 1), ==, -1.0);
  a = mm_gguf_get_array (g, "t.arr.bool", MM_GGUF_TYPE_BOOL, &err);
  g_assert_cmpint (mm_gguf_array_get_int (a, 0), ==, 1);
  a = mm_gguf_get_array (g, "t.arr.empty", MM_GGUF_TYPE_UINT8, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (mm_gguf_array_len (a), ==, 0);

  g_assert_null (mm_gguf_get_array (g, "t.arr.str", MM_GGUF_TYPE_INT32, &err));
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.arr.str'", "STRING", "INT32",
      NULL);
  g_clear_error (&err);
  g_assert_null (mm_gguf_get_array (g, "t.u8", MM_GGUF_TYPE_NONE, &err));
  assert_error (err, MM_FORMAT_ERROR_TYPE, "'t.u8'", NULL);
  g_clear_error (&err);
  g_assert_null (mm_gguf_get_array (g, "nope", MM_GGUF_TYPE_NONE, &err));
  assert_error (err, MM_FORMAT_ERROR_MISSING, "'nope'", NULL);
  g_clear_error (&err);
}

#define VOCAB 50000

static gpointer
read_vocab (gpointer data)
{
  MmGgufArray *a = data;
  for (guint64 i = 0; i < VOCAB; i++) {
    gchar want[32];
    gsize len;
    g_snprintf (want, sizeof want, "tok%05" G_GUINT64_FORMAT "%s", i,
        i % 7 ? "" : "\xe2\x96\x81x");
    const gchar *s = mm_gguf_array_get_str (a, i, &len);
    if (g_strcmp0 (s, want) != 0 || len != strlen (want))
      return GINT_TO_POINTER (1);
  }
  return NULL;
}

/* A tokenizer-sized string array, indexed lazily by four threads at once. */
static void
test_vocab (void)
{
  gchar **toks = g_new0 (gchar *, VOCAB + 1);
  for (guint i = 0; i < VOCAB; i++)
    toks[i] = g_strdup_printf ("tok%05u%s", i, i % 7 ? "" : "\xe2\x96\x81x");
  g_autoptr (MmtGguf) w = mmt_gguf_new (3);
  mmt_gguf_kv_arr_str (w, "tokenizer.ggml.tokens", VOCAB,
      (const gchar * const *) toks);
  g_strfreev (toks);
  g_autoptr (GBytes) b = mmt_gguf_finish (w, 32);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  MmGgufArray *a = mm_gguf_get_array (g, "tokenizer.ggml.tokens",
      MM_GGUF_TYPE_STRING, NULL);
  g_assert_cmpuint (mm_gguf_array_len (a), ==, VOCAB);
  GThread *th[4];
  for (guint i = 0; i < 4; i++)
    th[i] = g_thread_new ("vocab", read_vocab, a);
  for (guint i = 0; i < 4; i++)
    g_assert_null (g_thread_join (th[i]));
}

static void
test_tensors (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  GError *err = NULL;
  g_assert_cmpuint (mm_gguf_n_tensors (g), ==, G_N_ELEMENTS (specs) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    const MmTensorInfo *t = mm_gguf_get_tensor (g, specs[i].name, &err);
    g_assert_no_error (err);
    g_assert_true (t == mm_gguf_tensor_nth (g, i));
    g_assert_cmpstr (t->name, ==, specs[i].name);
    g_assert_true (t->supported);
    g_assert_cmpint (t->dtype, ==, specs[i].dtype);
    g_assert_cmpint (t->type_id, ==, specs[i].ggml);
    g_assert_cmpint (t->n_dims, ==, specs[i].n_dims);
    for (gint d = 0; d < t->n_dims; d++)
      g_assert_cmpint (t->shape[d], ==, specs[i].shape[d]);
    g_assert_cmpuint (t->nbytes, ==, tbytes[i]);
    g_assert_cmpuint (t->offset % 32, ==, 0);
    g_assert_cmpuint (t->offset, >=, mm_gguf_data_offset (g));
    g_assert_true (memcmp (t->data, tdata[i], tbytes[i]) == 0);
    /* host conversion equals the reference dequantiser */
    g_autofree float *got = g_new (float, t->numel);
    g_autofree float *want = g_new (float, t->numel);
    g_assert_true (mm_tensor_info_to_f32 (t, NAME, got, &err));
    g_assert_true (mm_dequantize_host (t->dtype, tdata[i], t->numel, want));
    g_assert_true (memcmp (got, want, t->numel * 4) == 0);
  }
  g_assert_null (mm_gguf_tensor_nth (g, G_N_ELEMENTS (specs) + 1));
  g_assert_null (mm_gguf_find_tensor (g, "nope"));
  g_assert_null (mm_gguf_get_tensor (g, "nope", &err));
  assert_error (err, MM_FORMAT_ERROR_MISSING, "'nope'", NULL);
  g_clear_error (&err);
}

/* Q4_K opens, lists, and fails only when asked for. */
static void
test_unsupported_type (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  GError *err = NULL;
  const MmTensorInfo *t = mm_gguf_find_tensor (g, "w.q4k");
  g_assert_nonnull (t);
  g_assert_false (t->supported);
  g_assert_cmpstr (t->type_name, ==, "Q4_K");
  g_assert_cmpuint (t->nbytes, ==, 144);
  g_assert_null (mm_gguf_get_tensor (g, "w.q4k", &err));
  assert_error (err, MM_FORMAT_ERROR_UNSUPPORTED, "'w.q4k'", "Q4_K",
      "GGML type 12", NULL);
  g_clear_error (&err);
  g_assert_false (mm_tensor_info_check (t, NAME, 0, 0, NULL, &err));
  assert_error (err, MM_FORMAT_ERROR_UNSUPPORTED, "'w.q4k'", NULL);
  g_clear_error (&err);
  g_assert_cmpstr (mm_ggml_type_name (12), ==, "Q4_K");
  g_assert_null (mm_ggml_type_name (4));
  g_assert_null (mm_ggml_type_name (1000));
}

static void
test_check (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  GError *err = NULL;
  const MmTensorInfo *t = mm_gguf_get_tensor (g, "w.q8", NULL);
  gint64 ok[] = { 2, -1 }, bad[] = { 64, 2 }, three[] = { 2, 64, 1 };
  g_assert_true (mm_tensor_info_check (t, NAME, MM_DTYPES_QUANT, 2, ok, &err));
  g_assert_true (mm_tensor_info_check (t, NAME, 0, 0, NULL, &err));
  g_assert_no_error (err);
  g_assert_false (mm_tensor_info_check (t, NAME, MM_DTYPES_FLOAT, 0, NULL,
          &err));
  assert_error (err, MM_FORMAT_ERROR_MISMATCH, "'w.q8'", "Q8_0",
      "F32, F16, BF16", NULL);
  g_clear_error (&err);
  g_assert_false (mm_tensor_info_check (t, NAME, 0, 2, bad, &err));
  assert_error (err, MM_FORMAT_ERROR_MISMATCH, "'w.q8'", "[2, 64]",
      "[64, 2]", NULL);
  g_clear_error (&err);
  g_assert_false (mm_tensor_info_check (t, NAME, 0, 3, three, &err));
  assert_error (err, MM_FORMAT_ERROR_MISMATCH, "[2, 64, 1]", NULL);
  g_clear_error (&err);
}

static void
test_versions (void)
{
  g_autoptr (GBytes) v2 = make_full (2);
  g_autoptr (MmGguf) g = open_bytes (v2, NULL);
  g_assert_nonnull (g);
  g_assert_cmpuint (mm_gguf_version (g), ==, 2);
  guint32 v = 1;
  g_autoptr (GBytes) v1 = mmt_patch (v2, 4, &v, 4);
  expect_fail (v1, MM_FORMAT_ERROR_UNSUPPORTED, "version 1", NULL);
  v = 4;
  g_autoptr (GBytes) v4 = mmt_patch (v2, 4, &v, 4);
  expect_fail (v4, MM_FORMAT_ERROR_UNSUPPORTED, "version 4", NULL);
  v = GUINT32_SWAP_LE_BE (3);
  g_autoptr (GBytes) be = mmt_patch (v2, 4, &v, 4);
  expect_fail (be, MM_FORMAT_ERROR_UNSUPPORTED, "big-endian", NULL);
  g_autoptr (GBytes) magic = mmt_patch (v2, 0, "GGUX", 4);
  expect_fail (magic, MM_FORMAT_ERROR_CORRUPT, "magic", NULL);
}

/* Header only; and custom alignments. */
static void
test_small_files (void)
{
  g_autoptr (MmtGguf) w = mmt_gguf_new (3);
  g_autoptr (GBytes) b = mmt_gguf_finish (w, 32);
  g_assert_cmpuint (g_bytes_get_size (b), ==, 24);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  g_assert_nonnull (g);
  g_assert_cmpuint (mm_gguf_n_keys (g), ==, 0);
  g_assert_cmpuint (mm_gguf_n_tensors (g), ==, 0);
  for (guint32 align = 1; align <= 256; align *= 4) {
    g_autoptr (MmtGguf) wa = mmt_gguf_new (3);
    mmt_gguf_kv_u32 (wa, "general.alignment", align);
    gint64 s5 = 5, s32 = 32;
    mmt_gguf_tensor (wa, "a", 0, 1, &s5, tdata[0], 20);
    mmt_gguf_tensor (wa, "b", 8, 1, &s32, tdata[3], 34);
    g_autoptr (GBytes) ba = mmt_gguf_finish (wa, align);
    g_autoptr (MmGguf) ga = open_bytes (ba, NULL);
    g_assert_nonnull (ga);
    g_assert_cmpuint (mm_gguf_alignment (ga), ==, align);
    g_assert_true (memcmp (mm_gguf_find_tensor (ga, "b")->data, tdata[3],
            34) == 0);
  }
  /* a zero-sized tensor parses (uploading it is refused later) */
  g_autoptr (MmtGguf) wz = mmt_gguf_new (3);
  guint64 ne0[] = { 0, 4 };
  mmt_gguf_tensor_raw (wz, "empty", 0, 2, ne0, 0, NULL, 0);
  g_autoptr (GBytes) bz = mmt_gguf_finish (wz, 32);
  g_autoptr (MmGguf) gz = open_bytes (bz, NULL);
  g_assert_nonnull (gz);
  g_assert_cmpint (mm_gguf_find_tensor (gz, "empty")->numel, ==, 0);
  /* ... but not when the data section would start past the end (fuzz) */
  g_autoptr (GBytes) bz2 = mmt_prefix (bz, g_bytes_get_size (bz) - 1);
  expect_fail (bz2, MM_FORMAT_ERROR_CORRUPT, "past the end", NULL);
}

static void
test_open_file (void)
{
  g_autoptr (GBytes) b = make_full (3);
  g_autofree gchar *path = mmt_write (b, NULL, NULL);
  GError *err = NULL;
  MmGguf *g = mm_gguf_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (mm_gguf_path (g), ==, path);
  g_assert_cmpuint (mm_gguf_n_tensors (g), ==, G_N_ELEMENTS (specs) + 1);
  mm_gguf_free (g);
  g_unlink (path);
  g_assert_null (mm_gguf_open (path, &err));
  g_assert_error (err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_IO);
  g_assert_true (strstr (err->message, path) != NULL);
  g_clear_error (&err);
  g_autofree gchar *dir = g_dir_make_tmp ("mm-gguf-XXXXXX", NULL);
  g_assert_null (mm_gguf_open (dir, &err));
  g_assert_error (err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_IO);
  g_clear_error (&err);
  g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
  g_autofree gchar *epath = mmt_write (empty, dir, "empty.gguf");
  g_assert_null (mm_gguf_open (epath, &err));
  g_assert_nonnull (err);
  g_clear_error (&err);
  mmt_rm_rf (dir);
}

/* ---- broken files ---- */

static void
test_truncated (void)
{
  g_autoptr (GBytes) b = make_full (3);
  gsize n = g_bytes_get_size (b);
  for (gsize len = 0; len < n; len++) {
    g_autoptr (GBytes) p = mmt_prefix (b, len);
    expect_fail (p, -1, NULL, NULL);
  }
}

static void
test_absurd_counts (void)
{
  g_autoptr (GBytes) b = make_full (3);
  guint64 huge = G_GUINT64_CONSTANT (1) << 40, max = G_MAXUINT64;
  g_autoptr (GBytes) t1 = mmt_patch (b, 8, &huge, 8);
  expect_fail (t1, MM_FORMAT_ERROR_CORRUPT, "tensors", "cannot fit");
  g_autoptr (GBytes) t2 = mmt_patch (b, 8, &max, 8);
  expect_fail (t2, MM_FORMAT_ERROR_CORRUPT, "cannot fit", NULL);
  g_autoptr (GBytes) k1 = mmt_patch (b, 16, &huge, 8);
  expect_fail (k1, MM_FORMAT_ERROR_CORRUPT, "keys", "cannot fit");
  /* first key's length */
  g_autoptr (GBytes) s1 = mmt_patch (b, 24, &max, 8);
  expect_fail (s1, MM_FORMAT_ERROR_CORRUPT, "key at offset 24", NULL);
  huge = 70000;
  g_autoptr (GBytes) s2 = mmt_patch (b, 24, &huge, 8);
  expect_fail (s2, MM_FORMAT_ERROR_CORRUPT, "length 70000", NULL);
  /* string value length of general.architecture */
  gsize vpos = 24 + 8 + strlen ("general.architecture") + 4;
  g_autoptr (GBytes) s3 = mmt_patch (b, vpos, &max, 8);
  expect_fail (s3, MM_FORMAT_ERROR_CORRUPT, "string value", NULL);
}

static void
test_bad_arrays (void)
{
  guint8 raw[64] = { 0 };
  guint32 et = 4;
  guint64 n = G_GUINT64_CONSTANT (1) << 62;
  memcpy (raw, &et, 4);
  memcpy (raw + 4, &n, 8);
  g_autoptr (MmtGguf) w1 = mmt_gguf_new (3);
  mmt_gguf_kv_raw (w1, "arr.huge", 9, raw, 12);
  g_autoptr (GBytes) b1 = mmt_gguf_finish (w1, 32);
  expect_fail (b1, MM_FORMAT_ERROR_CORRUPT, "'arr.huge'", "does not fit");
  /* a string array whose second element runs past the end */
  et = 8;
  n = 2;
  guint64 l0 = 1, l1 = 1000;
  memcpy (raw, &et, 4);
  memcpy (raw + 4, &n, 8);
  memcpy (raw + 12, &l0, 8);
  raw[20] = 'x';
  memcpy (raw + 21, &l1, 8);
  g_autoptr (MmtGguf) w2 = mmt_gguf_new (3);
  mmt_gguf_kv_raw (w2, "arr.str", 9, raw, 40);
  g_autoptr (GBytes) b2 = mmt_gguf_finish (w2, 32);
  expect_fail (b2, MM_FORMAT_ERROR_CORRUPT, "array string", "length 1000");
  /* nested arrays and invalid element types */
  et = 9;
  n = 0;
  memcpy (raw, &et, 4);
  memcpy (raw + 4, &n, 8);
  g_autoptr (MmtGguf) w3 = mmt_gguf_new (3);
  mmt_gguf_kv_raw (w3, "arr.nested", 9, raw, 12);
  g_autoptr (GBytes) b3 = mmt_gguf_finish (w3, 32);
  expect_fail (b3, MM_FORMAT_ERROR_CORRUPT, "'arr.nested'", "nested");
  et = 13;
  memcpy (raw, &et, 4);
  g_autoptr (MmtGguf) w4 = mmt_gguf_new (3);
  mmt_gguf_kv_raw (w4, "arr.bad", 9, raw, 12);
  g_autoptr (GBytes) b4 = mmt_gguf_finish (w4, 32);
  expect_fail (b4, MM_FORMAT_ERROR_CORRUPT, "'arr.bad'", "invalid");
}

static void
test_bad_keys (void)
{
  g_autoptr (MmtGguf) w1 = mmt_gguf_new (3);
  mmt_gguf_kv_u32 (w1, "a", 1);
  mmt_gguf_kv_u32 (w1, "a", 2);
  g_autoptr (GBytes) b1 = mmt_gguf_finish (w1, 32);
  expect_fail (b1, MM_FORMAT_ERROR_CORRUPT, "duplicate key 'a'", NULL);
  g_autoptr (MmtGguf) w2 = mmt_gguf_new (3);
  mmt_gguf_kv_raw (w2, "k.type", 13, "\0\0\0\0", 4);
  g_autoptr (GBytes) b2 = mmt_gguf_finish (w2, 32);
  expect_fail (b2, MM_FORMAT_ERROR_CORRUPT, "'k.type'",
      "invalid value type 13");
  g_autoptr (MmtGguf) w3 = mmt_gguf_new (3);
  mmt_gguf_kv_u32 (w3, "", 1);
  g_autoptr (GBytes) b3 = mmt_gguf_finish (w3, 32);
  expect_fail (b3, MM_FORMAT_ERROR_CORRUPT, "empty or holds a NUL", NULL);
  g_autoptr (MmtGguf) w4 = mmt_gguf_new (3);
  mmt_gguf_kv_u32 (w4, "ab", 1);
  g_autoptr (GBytes) b4 = mmt_gguf_finish (w4, 32);
  g_autoptr (GBytes) b4n = mmt_patch (b4, 33, "\0", 1);
  expect_fail (b4n, MM_FORMAT_ERROR_CORRUPT, "NUL", NULL);
}

static void
test_bad_alignment (void)
{
  const guint32 bad[] = { 0, 48, 3 };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (MmtGguf) w = mmt_gguf_new (3);
    mmt_gguf_kv_u32 (w, "general.alignment", bad[i]);
    g_autoptr (GBytes) b = mmt_gguf_finish (w, 32);
    expect_fail (b, MM_FORMAT_ERROR_CORRUPT, "'general.alignment'",
        "power of two");
  }
  g_autoptr (MmtGguf) w = mmt_gguf_new (3);
  mmt_gguf_kv_i32 (w, "general.alignment", 32);
  g_autoptr (GBytes) b = mmt_gguf_finish (w, 32);
  expect_fail (b, MM_FORMAT_ERROR_CORRUPT, "'general.alignment'", "INT32");
}

/* One tensor with raw fields, everything else valid. */
static GBytes *
one_tensor (const gchar * name, guint32 type, guint32 n_dims,
    const guint64 * ne, guint64 offset, gsize nbytes)
{
  g_autoptr (MmtGguf) w = mmt_gguf_new (3);
  g_autofree guint8 *zeros = g_malloc0 (MAX (nbytes, 1));
  mmt_gguf_tensor_raw (w, name, type, n_dims, ne, offset, zeros, nbytes);
  return mmt_gguf_finish (w, 32);
}

static void
test_bad_tensor_infos (void)
{
  guint64 ne[5] = { 4, 1, 1, 1, 1 };
  g_autoptr (GBytes) d5 = one_tensor ("t5", 0, 5, ne, 0, 16);
  expect_fail (d5, MM_FORMAT_ERROR_CORRUPT, "'t5'", "5 dims");
  g_autoptr (GBytes) d0 = one_tensor ("t0", 0, 0, ne, 0, 16);
  expect_fail (d0, MM_FORMAT_ERROR_CORRUPT, "'t0'", "0 dims");
  guint64 big[3] = { 1ull << 32, 1ull << 32, 1ull << 32 };
  g_autoptr (GBytes) ov = one_tensor ("tov", 0, 3, big, 0, 16);
  expect_fail (ov, MM_FORMAT_ERROR_CORRUPT, "'tov'", "overflows");
  guint64 bytes_ov[2] = { 1ull << 40, 1ull << 22 };     /* numel ok, bytes not */
  g_autoptr (GBytes) ov2 = one_tensor ("tov2", 0, 2, bytes_ov, 0, 16);
  expect_fail (ov2, MM_FORMAT_ERROR_CORRUPT, "'tov2'", "overflows");
  guint64 neg[1] = { G_MAXUINT64 };
  g_autoptr (GBytes) ng = one_tensor ("tneg", 0, 1, neg, 0, 16);
  expect_fail (ng, MM_FORMAT_ERROR_CORRUPT, "'tneg'", "dim 0");
  g_autoptr (GBytes) u99 = one_tensor ("t99", 99, 1, ne, 0, 16);
  expect_fail (u99, MM_FORMAT_ERROR_UNSUPPORTED, "'t99'", "GGML type 99");
  g_autoptr (GBytes) u4 = one_tensor ("tq42", 4, 1, ne, 0, 16);
  expect_fail (u4, MM_FORMAT_ERROR_UNSUPPORTED, "'tq42'", "type 4");
  guint64 ne33[1] = { 33 };
  g_autoptr (GBytes) blk = one_tensor ("tq8", 8, 1, ne33, 0, 34);
  expect_fail (blk, MM_FORMAT_ERROR_CORRUPT, "'tq8'", "block size 32");
  g_autoptr (GBytes) nul = one_tensor ("t\001x", 0, 1, ne, 0, 16);
  g_autoptr (GBytes) nul2 = mmt_patch (nul, 24 + 8 + 1, "\0", 1);
  expect_fail (nul2, MM_FORMAT_ERROR_CORRUPT, "NUL", NULL);
  g_autoptr (GBytes) empty = one_tensor ("", 0, 1, ne, 0, 16);
  expect_fail (empty, MM_FORMAT_ERROR_CORRUPT, "empty", NULL);
}

static void
test_bad_offsets (void)
{
  guint64 ne[1] = { 16 };
  g_autoptr (GBytes) mis = one_tensor ("tmis", 0, 1, ne, 4, 64);
  expect_fail (mis, MM_FORMAT_ERROR_CORRUPT, "'tmis'", "alignment 32");
  g_autoptr (GBytes) out = one_tensor ("tout", 0, 1, ne, 1 << 30, 64);
  expect_fail (out, MM_FORMAT_ERROR_CORRUPT, "'tout'", "outside the file");
  g_autoptr (GBytes) wrap = one_tensor ("twrap", 0, 1, ne,
      G_MAXUINT64 - 31, 64);
  expect_fail (wrap, MM_FORMAT_ERROR_CORRUPT, "'twrap'", "outside");
  /* data one byte short */
  g_autoptr (GBytes) ok = one_tensor ("tshort", 0, 1, ne, 0, 64);
  g_autoptr (GBytes) shrt = mmt_prefix (ok, g_bytes_get_size (ok) - 1);
  expect_fail (shrt, MM_FORMAT_ERROR_CORRUPT, "'tshort'", "outside");
  /* overlapping tensors, fully and partly */
  guint64 ne32[1] = { 32 };
  g_autoptr (MmtGguf) w = mmt_gguf_new (3);
  mmt_gguf_tensor_raw (w, "x", 0, 1, ne32, 0, tdata[0], 60);
  mmt_gguf_tensor_raw (w, "y", 0, 1, ne, 96, NULL, 0);
  mmt_gguf_tensor_raw (w, "z", 0, 1, ne, 64, NULL, 0);
  g_autoptr (GBytes) b = mmt_gguf_finish (w, 32);
  gsize n = g_bytes_get_size (b) + 256;
  g_autofree guint8 *big = g_malloc0 (n);
  memcpy (big, g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  g_autoptr (GBytes) padded = g_bytes_new (big, n);
  expect_fail (padded, MM_FORMAT_ERROR_CORRUPT, "overlaps", "'x'");
  g_autoptr (MmtGguf) w2 = mmt_gguf_new (3);
  mmt_gguf_tensor_raw (w2, "p", 0, 1, ne, 0, tdata[3], 64);
  mmt_gguf_tensor_raw (w2, "q", 0, 1, ne, 0, tdata[3], 64);
  g_autoptr (GBytes) b2 = mmt_gguf_finish (w2, 32);
  expect_fail (b2, MM_FORMAT_ERROR_CORRUPT, "overlaps", NULL);
  g_autoptr (MmtGguf) w3 = mmt_gguf_new (3);
  gint64 s16 = 16;
  mmt_gguf_tensor (w3, "dup", 0, 1, &s16, tdata[3], 64);
  mmt_gguf_tensor (w3, "dup", 0, 1, &s16, tdata[3], 64);
  g_autoptr (GBytes) b3 = mmt_gguf_finish (w3, 32);
  expect_fail (b3, MM_FORMAT_ERROR_CORRUPT, "duplicate tensor name 'dup'",
      NULL);
}

/* Random corruption: never a crash, and the fuzz invariants hold. */
static void
test_mutations (void)
{
  g_autoptr (GBytes) b = make_full (3);
  gsize n = g_bytes_get_size (b);
  const guint8 *d = g_bytes_get_data (b, NULL);
  GRand *r = g_rand_new_with_seed (1234);
  guint opened = 0;
  for (guint it = 0; it < 4000; it++) {
    g_autofree guint8 *c = g_memdup2 (d, n);
    guint k = g_rand_int_range (r, 1, 4);
    for (guint j = 0; j < k; j++) {
      gsize pos = g_rand_int_range (r, 0, n);
      switch (g_rand_int_range (r, 0, 4)) {
        case 0:
          c[pos] ^= 1u << g_rand_int_range (r, 0, 8);
          break;
        case 1:
          c[pos] = 0xff;
          break;
        case 2:
          c[pos] = (guint8) g_rand_int (r);
          break;
        default:
          if (pos + 8 <= n)
            memset (c + pos, 0xff, 8);
          break;
      }
    }
    gsize len = g_rand_int_range (r, 0, 8) ? n :
        (gsize) g_rand_int_range (r, 0, n);
    opened += mm_fuzz_gguf_one (c, len);
  }
  g_rand_free (r);
  g_assert_cmpuint (opened, >, 0);
}

/* ---- device ---- */

static void
test_upload (void)
{
  GError *err = NULL;
  g_autoptr (MmEngine) e = mm_engine_get (NULL, &err);
  if (e == NULL) {
    g_test_skip (err->message);
    g_clear_error (&err);
    return;
  }
  g_autoptr (GBytes) b = make_full (3);
  g_autoptr (MmGguf) g = open_bytes (b, NULL);
  g_autoptr (MmGraph) gr = mm_graph_new (e);
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++) {
    const MmTensorInfo *info = mm_gguf_find_tensor (g, specs[i].name);
    g_autoptr (MmTensor) t = mm_gguf_upload_tensor (g, e, specs[i].name, 0,
        specs[i].n_dims, specs[i].shape, &err);
    g_assert_no_error (err);
    g_assert_cmpint (t->dtype, ==, specs[i].dtype);
    mm_graph_reset (gr);
    MmTensor *y = mm_dequantize (gr, t);
    g_autofree float *got = g_new (float, info->numel);
    g_autofree float *want = g_new (float, info->numel);
    g_assert_true (mm_graph_finish (gr, &err));
    g_assert_true (mm_tensor_read_f32 (e, y, got, &err));
    g_assert_true (mm_tensor_info_to_f32 (info, NAME, want, &err));
    for (gint64 j = 0; j < info->numel; j++)    /* max-abs 1e-5 (Q4_1 mad) */
      g_assert_cmpfloat_with_epsilon (got[j], want[j], 1e-5);
    g_autoptr (MmTensor) f = mm_tensor_info_upload (info, NAME, e, 0,
        MM_CONVERT_F32, 0, NULL, &err);
    g_assert_no_error (err);
    g_assert_true (mm_tensor_read_f32 (e, f, got, &err));
    g_assert_true (memcmp (got, want, info->numel * 4) == 0);
  }
  g_assert_null (mm_gguf_upload_tensor (g, e, "w.q8", MM_DTYPES_FLOAT, 0,
          NULL, &err));
  assert_error (err, MM_FORMAT_ERROR_MISMATCH, "'w.q8'", NULL);
  g_clear_error (&err);
  g_assert_null (mm_gguf_upload_tensor (g, e, "w.q4k", 0, 0, NULL, &err));
  assert_error (err, MM_FORMAT_ERROR_UNSUPPORTED, "'w.q4k'", "Q4_K", NULL);
  g_clear_error (&err);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  make_tensor_data ();
  g_test_add_func ("/gguf/metadata", test_metadata);
  g_test_add_func ("/gguf/getter-types", test_getter_types);
  g_test_add_func ("/gguf/arrays", test_arrays);
  g_test_add_func ("/gguf/vocab", test_vocab);
  g_test_add_func ("/gguf/tensors", test_tensors);
  g_test_add_func ("/gguf/unsupported-type", test_unsupported_type);
  g_test_add_func ("/gguf/check", test_check);
  g_test_add_func ("/gguf/versions", test_versions);
  g_test_add_func ("/gguf/small-files", test_small_files);
  g_test_add_func ("/gguf/open-file", test_open_file);
  g_test_add_func ("/gguf/truncated", test_truncated);
  g_test_add_func ("/gguf/absurd-counts", test_absurd_counts);
  g_test_add_func ("/gguf/bad-arrays", test_bad_arrays);
  g_test_add_func ("/gguf/bad-keys", test_bad_keys);
  g_test_add_func ("/gguf/bad-alignment", test_bad_alignment);
  g_test_add_func ("/gguf/bad-tensor-infos", test_bad_tensor_infos);
  g_test_add_func ("/gguf/bad-offsets", test_bad_offsets);
  g_test_add_func ("/gguf/mutations", test_mutations);
  g_test_add_func ("/gguf/upload", test_upload);
  gint rc = g_test_run ();
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    g_free (tdata[i]);
  return rc;
}
