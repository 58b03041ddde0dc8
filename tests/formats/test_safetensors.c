/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safetensors files, Hugging Face folders (config.json, sharded index) and
 * the MmWeights front: valid inputs read back, then broken ones, each of
 * which must fail with an MM_FORMAT_ERROR naming the file and the tensor
 * or key. */
#include "mm-weights.h"
#include "mm-dequant.h"
#include "mm-test-writers.h"
#include "../../fuzz/mm-fuzz-targets.h"

#include <glib/gstdio.h>
#include <string.h>

#define NAME "t.safetensors"

static guint8 *f32_data, *f16_data, *bf16_data;

static void
assert_err (GError * err, gint code, const gchar * file, ...)
{
  va_list ap;
  g_assert_nonnull (err);
  g_assert_true (err->domain == MM_FORMAT_ERROR);
  if (code >= 0)
    g_assert_cmpint (err->code, ==, code);
  if (file && !g_str_has_prefix (err->message, file))
    g_error ("error \"%s\" does not start with '%s'", err->message, file);
  va_start (ap, file);
  for (const gchar * s = va_arg (ap, const gchar *); s;
      s = va_arg (ap, const gchar *))
    if (strstr (err->message, s) == NULL)
      g_error ("'%s' not in error message \"%s\"", s, err->message);
  va_end (ap);
}

static GBytes *
make_file (void)
{
  g_autoptr (MmtSt) w = mmt_st_new ();
  gint64 s23[] = { 2, 3 }, s5[] = { 5 }, s114[] = { 1, 1, 4 }, s2[] = { 2 };
  gint64 s0[] = { 0, 3 }, s4d[] = { 1, 2, 1, 2 };
  gint64 i64[2] = { 1, -1 };
  mmt_st_meta (w, "format", "pt");
  mmt_st_add (w, "a.f32", "F32", 2, s23, f32_data, 24);
  mmt_st_add (w, "b.f16", "F16", 1, s5, f16_data, 10);
  mmt_st_add (w, "c.bf16", "BF16", 3, s114, bf16_data, 8);
  mmt_st_add (w, "d.i64", "I64", 1, s2, i64, 16);
  mmt_st_add (w, "e.scalar", "F32", 0, NULL, f32_data, 4);
  mmt_st_add (w, "f.empty", "F32", 2, s0, NULL, 0);
  mmt_st_add (w, "g.4d", "F16", 4, s4d, f16_data, 8);
  return mmt_st_finish (w);
}

static MmSafetensors *
open_bytes (GBytes * b, GError ** error)
{
  return mm_safetensors_open_from_bytes (b, NAME, error);
}

static void
expect_fail (GBytes * b, gint code, const gchar * s1, const gchar * s2)
{
  GError *err = NULL;
  g_assert_null (open_bytes (b, &err));
  assert_err (err, code, NAME ": ", s1, s2, NULL);
  g_error_free (err);
  g_assert_cmpint (mm_fuzz_safetensors_one (g_bytes_get_data (b, NULL),
          g_bytes_get_size (b)), ==, 0);
}

static void
expect_header_fail (const gchar * header, gsize data_len, gint code,
    const gchar * s1, const gchar * s2)
{
  g_autofree guint8 *zeros = g_malloc0 (MAX (data_len, 1));
  g_autoptr (GBytes) b = mmt_st_raw (header, zeros, data_len);
  expect_fail (b, code, s1, s2);
}

/* ---- single files ---- */

static void
test_read (void)
{
  g_autoptr (GBytes) b = make_file ();
  GError *err = NULL;
  g_autoptr (MmSafetensors) st = open_bytes (b, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (mm_safetensors_n_tensors (st), ==, 7);
  g_assert_cmpstr (mm_safetensors_get_metadata (st, "format"), ==, "pt");
  g_assert_null (mm_safetensors_get_metadata (st, "nope"));
  const MmTensorInfo *t = mm_safetensors_get_tensor (st, "a.f32", &err);
  g_assert_no_error (err);
  g_assert_true (t == mm_safetensors_tensor_nth (st, 0));
  g_assert_cmpint (t->dtype, ==, MM_DTYPE_F32);
  g_assert_cmpint (t->type_id, ==, -1);
  g_assert_cmpint (t->n_dims, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 2);
  g_assert_cmpint (t->shape[1], ==, 3);
  g_assert_cmpuint (t->nbytes, ==, 24);
  g_assert_true (memcmp (t->data, f32_data, 24) == 0);
  t = mm_safetensors_get_tensor (st, "c.bf16", &err);
  g_assert_cmpint (t->dtype, ==, MM_DTYPE_BF16);
  g_assert_cmpint (t->numel, ==, 4);
  float got[5], want[5];
  g_assert_true (mm_tensor_info_to_f32 (t, NAME, got, &err));
  g_assert_true (mm_dequantize_host (MM_DTYPE_BF16, bf16_data, 4, want));
  g_assert_true (memcmp (got, want, 16) == 0);
  t = mm_safetensors_get_tensor (st, "b.f16", &err);
  g_assert_true (mm_tensor_info_to_f32 (t, NAME, got, &err));
  g_assert_true (mm_dequantize_host (MM_DTYPE_F16, f16_data, 5, want));
  g_assert_true (memcmp (got, want, 20) == 0);
  t = mm_safetensors_get_tensor (st, "e.scalar", &err);
  g_assert_cmpint (t->n_dims, ==, 0);
  g_assert_cmpint (t->numel, ==, 1);
  t = mm_safetensors_get_tensor (st, "f.empty", &err);
  g_assert_cmpint (t->numel, ==, 0);
  g_assert_cmpint (mm_safetensors_get_tensor (st, "g.4d", &err)->n_dims, ==, 4);
  g_assert_no_error (err);
  t = mm_safetensors_find_tensor (st, "d.i64");
  g_assert_false (t->supported);
  g_assert_cmpstr (t->type_name, ==, "I64");
  g_assert_null (mm_safetensors_get_tensor (st, "d.i64", &err));
  assert_err (err, MM_FORMAT_ERROR_UNSUPPORTED, NAME ": ", "'d.i64'", "I64",
      NULL);
  g_clear_error (&err);
  g_assert_null (mm_safetensors_get_tensor (st, "nope", &err));
  assert_err (err, MM_FORMAT_ERROR_MISSING, NAME ": ", "'nope'", NULL);
  g_clear_error (&err);
  gint64 want_shape[] = { 3, 2 };
  g_assert_false (mm_tensor_info_check (mm_safetensors_find_tensor (st,
              "a.f32"), NAME, 0, 2, want_shape, &err));
  assert_err (err, MM_FORMAT_ERROR_MISMATCH, NAME ": ", "'a.f32'",
      "[2, 3]", "[3, 2]", NULL);
  g_clear_error (&err);
}

static void
test_unknown_dtype (void)
{
  const gchar *h = "{\"q\":{\"dtype\":\"Q9\",\"shape\":[3],"
      "\"data_offsets\":[0,5]}}";
  g_autoptr (GBytes) b = mmt_st_raw (h, "abcde", 5);
  GError *err = NULL;
  g_autoptr (MmSafetensors) st = open_bytes (b, &err);
  g_assert_no_error (err);
  g_assert_null (mm_safetensors_get_tensor (st, "q", &err));
  assert_err (err, MM_FORMAT_ERROR_UNSUPPORTED, NAME ": ", "'q'", "Q9", NULL);
  g_clear_error (&err);
}

static void
test_truncated (void)
{
  g_autoptr (GBytes) b = make_file ();
  gsize n = g_bytes_get_size (b);
  for (gsize len = 0; len < n; len++) {
    g_autoptr (GBytes) p = mmt_prefix (b, len);
    expect_fail (p, -1, NULL, NULL);
  }
}

static void
test_bad_length (void)
{
  g_autoptr (GBytes) b = make_file ();
  guint64 len = g_bytes_get_size (b) - 7;
  g_autoptr (GBytes) b1 = mmt_patch (b, 0, &len, 8);
  expect_fail (b1, MM_FORMAT_ERROR_CORRUPT, "header length", "file");
  len = G_MAXUINT64;
  g_autoptr (GBytes) b2 = mmt_patch (b, 0, &len, 8);
  expect_fail (b2, MM_FORMAT_ERROR_CORRUPT, "header length", NULL);
  len = 3;
  g_autoptr (GBytes) b3 = mmt_patch (b, 0, &len, 8);
  expect_fail (b3, MM_FORMAT_ERROR_CORRUPT, "JSON", NULL);
}

static void
test_bad_json (void)
{
  expect_header_fail ("[1,2]", 0, MM_FORMAT_ERROR_CORRUPT,
      "not a JSON object", NULL);
  expect_header_fail ("{", 0, MM_FORMAT_ERROR_CORRUPT, "invalid JSON", NULL);
  expect_header_fail ("", 0, MM_FORMAT_ERROR_CORRUPT, "empty", NULL);
  expect_header_fail ("  ", 0, MM_FORMAT_ERROR_CORRUPT, "empty", NULL);
  expect_header_fail ("{\"a\":\"\xff\xfe\"}", 0, MM_FORMAT_ERROR_CORRUPT,
      "JSON", NULL);
  expect_header_fail ("null", 0, MM_FORMAT_ERROR_CORRUPT, "not a JSON object",
      NULL);
  GString *deep = g_string_new ("{\"a\":");
  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  expect_header_fail (deep->str, 0, MM_FORMAT_ERROR_CORRUPT, "nested deeper",
      NULL);
  g_string_free (deep, TRUE);
  /* brackets inside strings do not count */
  GString *str = g_string_new ("{\"__metadata__\":{\"x\":\"");
  for (guint i = 0; i < 1000; i++)
    g_string_append (str, "[{\\\"");
  g_string_append (str, "\"}}");
  g_autoptr (GBytes) b = mmt_st_raw (str->str, NULL, 0);
  g_string_free (str, TRUE);
  g_autoptr (MmSafetensors) st = open_bytes (b, NULL);
  g_assert_nonnull (st);
}

#define E(dtype, shape, offs) \
  "{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void
test_bad_entries (void)
{
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]", "[0,4]") ",\"a\":"
      E ("\"F32\"", "[1]", "[4,8]") "}", 8, MM_FORMAT_ERROR_CORRUPT,
      "duplicate JSON key 'a'", NULL);
  expect_header_fail ("{\"a\":1}", 0, MM_FORMAT_ERROR_CORRUPT, "'a'",
      "not a JSON object");
  expect_header_fail ("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "dtype");
  expect_header_fail ("{\"a\":" E ("7", "[1]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "dtype");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "1", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "shape");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1,1,1,1,1]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_UNSUPPORTED, "'a'", "5 dims");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[-1]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "shape entry 0");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1, 2.5]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "shape entry 1");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1e30]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "shape entry 0");
  expect_header_fail ("{\"a\":" E ("\"F32\"",
          "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "overflows");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]", "[0,4,8]") "}", 8,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "data_offsets");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]", "4") "}", 8,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "data_offsets");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]", "[8,4]") "}", 8,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "outside");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]", "[4,8]") "}", 7,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "outside");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[1]",
          "[0,18446744073709551615]") "}", 8, MM_FORMAT_ERROR_CORRUPT, NULL,
      NULL);
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[2]", "[0,4]") "}", 8,
      MM_FORMAT_ERROR_CORRUPT, "'a'", "do not hold 2 F32");
  expect_header_fail ("{\"a\":" E ("\"F32\"", "[2]", "[0,8]") ",\"b\":"
      E ("\"F16\"", "[2]", "[4,8]") "}", 8, MM_FORMAT_ERROR_CORRUPT,
      "'b'", "overlaps tensor 'a'");
  expect_header_fail ("{\"__metadata__\":{\"a\":1}}", 0,
      MM_FORMAT_ERROR_CORRUPT, "__metadata__", NULL);
  expect_header_fail ("{\"__metadata__\":[]}", 0, MM_FORMAT_ERROR_CORRUPT,
      "__metadata__", NULL);
}

static void
test_mutations (void)
{
  g_autoptr (GBytes) b = make_file ();
  gsize n = g_bytes_get_size (b);
  const guint8 *d = g_bytes_get_data (b, NULL);
  static const gchar repl[] = "0123456789[]{}\",:-.e\\ \x00\xff";
  GRand *r = g_rand_new_with_seed (99);
  guint opened = 0;
  for (guint it = 0; it < 4000; it++) {
    g_autofree guint8 *c = g_memdup2 (d, n);
    guint k = g_rand_int_range (r, 1, 4);
    for (guint j = 0; j < k; j++) {
      gsize pos = g_rand_int_range (r, 0, n);
      if (g_rand_boolean (r))
        c[pos] = repl[g_rand_int_range (r, 0, sizeof repl - 1)];
      else
        c[pos] ^= 1u << g_rand_int_range (r, 0, 8);
    }
    opened += mm_fuzz_safetensors_one (c, n);
  }
  g_rand_free (r);
  g_assert_cmpuint (opened, >, 0);
}

/* ---- folders ---- */

static const gchar *config_json =
    "{\"architectures\":[\"LlavaForConditionalGeneration\"],"
    "\"vision_config\":{\"hidden_size\":1152,\"layer_norm_eps\":1e-06,"
    "\"image_size\":384.0,\"use_bias\":true},"
    "\"text_config\":{\"rope_scaling\":null,\"vocab_size\":49152},"
    "\"tie_word_embeddings\":false,\"model_type\":\"llava\"}";

static gchar *
make_dir (void)
{
  return g_dir_make_tmp ("mm-hf-XXXXXX", NULL);
}

static void
write_text (const gchar * dir, const gchar * name, const gchar * text)
{
  g_autofree gchar *p = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (p, text, -1, NULL));
}

static GBytes *
shard (const gchar * t1, const gchar * t2)
{
  g_autoptr (MmtSt) w = mmt_st_new ();
  gint64 s[] = { 2, 3 };
  mmt_st_add (w, t1, "F32", 2, s, f32_data, 24);
  if (t2)
    mmt_st_add (w, t2, "BF16", 2, s, f32_data, 12);
  return mmt_st_finish (w);
}

static void
write_shard (const gchar * dir, const gchar * name, const gchar * t1,
    const gchar * t2)
{
  g_autoptr (GBytes) b = shard (t1, t2);
  g_free (mmt_write (b, dir, name));
}

static void
test_config (void)
{
  g_autofree gchar *dir = make_dir ();
  write_text (dir, "config.json", config_json);
  write_shard (dir, "model.safetensors", "w", NULL);
  GError *err = NULL;
  g_autoptr (MmHfModel) m = mm_hf_model_open (dir, &err);
  g_assert_no_error (err);
  MmJson *c = mm_hf_model_config (m);
  g_assert_nonnull (c);
  g_assert_cmpint (mm_json_get_int (c, "vision_config.hidden_size", 0, &err),
      ==, 1152);
  g_assert_cmpint (mm_json_get_int (c, "vision_config.image_size", 0, &err),
      ==, 384);
  g_assert_cmpfloat (mm_json_get_float (c, "vision_config.layer_norm_eps", 0,
          &err), ==, 1e-6);
  g_assert_cmpfloat (mm_json_get_float (c, "vision_config.hidden_size", 0,
          &err), ==, 1152.0);
  g_assert_true (mm_json_get_bool (c, "vision_config.use_bias", FALSE, &err));
  g_assert_false (mm_json_get_bool (c, "tie_word_embeddings", TRUE, &err));
  g_assert_cmpstr (mm_json_get_str (c, "architectures.0", NULL, &err), ==,
      "LlavaForConditionalGeneration");
  g_assert_cmpint (mm_json_get_len (c, "architectures"), ==, 1);
  g_assert_cmpint (mm_json_get_len (c, "vision_config"), ==, 4);
  g_assert_cmpint (mm_json_get_len (c, "model_type"), ==, -1);
  /* absent and null: default without error */
  g_assert_cmpint (mm_json_get_int (c, "text_config.rope_scaling", 7, &err),
      ==, 7);
  g_assert_false (mm_json_has (c, "text_config.rope_scaling"));
  g_assert_cmpint (mm_json_get_int (c, "nope.deeper", 5, &err), ==, 5);
  g_assert_cmpint (mm_json_get_int (c, "architectures.7", 5, &err), ==, 5);
  g_assert_no_error (err);
  g_assert_cmpint (mm_json_get_int (c, "vision_config.layer_norm_eps", 3,
          &err), ==, 3);
  assert_err (err, MM_FORMAT_ERROR_TYPE, mm_json_file (c),
      "'vision_config.layer_norm_eps'", "integer", NULL);
  g_clear_error (&err);
  g_assert_cmpstr (mm_json_get_str (c, "vision_config", "d", &err), ==, "d");
  assert_err (err, MM_FORMAT_ERROR_TYPE, mm_json_file (c), "string", NULL);
  g_clear_error (&err);
  g_assert_true (g_str_has_suffix (mm_json_file (c), "config.json"));
  g_assert_null (mm_json_new_from_file (mm_json_file (c), 10, &err));
  assert_err (err, MM_FORMAT_ERROR_UNSUPPORTED, mm_json_file (c), "10", NULL);
  g_clear_error (&err);
  g_assert_null (mm_json_new_from_file ("/nonexistent/config.json", 10, &err));
  assert_err (err, MM_FORMAT_ERROR_IO, "/nonexistent/config.json", NULL);
  g_clear_error (&err);
  g_assert_cmpstr (mm_hf_model_path (m), ==, dir);
  g_assert_nonnull (mm_hf_model_shard (m, 0));
  g_assert_null (mm_hf_model_shard (m, 1));
  g_assert_cmpuint (mm_hf_model_n_shards (m), ==, 1);
  g_assert_nonnull (mm_hf_model_get_tensor (m, "w", &err));
  mmt_rm_rf (dir);
}

static void
test_sharded (void)
{
  g_autofree gchar *dir = make_dir ();
  write_shard (dir, "model-00001-of-00002.safetensors", "a", "b");
  write_shard (dir, "model-00002-of-00002.safetensors", "c", NULL);
  write_text (dir, "model.safetensors.index.json",
      "{\"metadata\":{\"total_size\":60},\"weight_map\":{"
      "\"a\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00002-of-00002.safetensors\","
      "\"b\":\"model-00001-of-00002.safetensors\"}}");
  GError *err = NULL;
  g_autoptr (MmHfModel) m = mm_hf_model_open (dir, &err);
  g_assert_no_error (err);
  g_assert_null (mm_hf_model_config (m));
  g_assert_cmpuint (mm_hf_model_n_shards (m), ==, 2);
  g_assert_cmpuint (mm_hf_model_n_tensors (m), ==, 3);
  g_assert_true (g_str_has_suffix (mm_hf_model_tensor_file (m, "c"),
          "model-00002-of-00002.safetensors"));
  g_assert_null (mm_hf_model_tensor_file (m, "zz"));
  const MmTensorInfo *t = mm_hf_model_get_tensor (m, "b", &err);
  g_assert_cmpint (t->dtype, ==, MM_DTYPE_BF16);
  g_assert_null (mm_hf_model_get_tensor (m, "zz", &err));
  assert_err (err, MM_FORMAT_ERROR_MISSING, dir, "'zz'", NULL);
  g_clear_error (&err);
  mmt_rm_rf (dir);
}

static void
expect_dir_fail (const gchar * dir, gint code, const gchar * file,
    const gchar * s1, const gchar * s2)
{
  GError *err = NULL;
  g_assert_null (mm_hf_model_open (dir, &err));
  g_autofree gchar *prefix = g_build_filename (dir, file, NULL);
  assert_err (err, code, prefix, s1, s2, NULL);
  g_clear_error (&err);
  g_assert_null (mm_weights_open (dir, &err));
  assert_err (err, code, prefix, s1, s2, NULL);
  g_clear_error (&err);
}

static void
index_case (const gchar * index, gint code, const gchar * file,
    const gchar * s1, const gchar * s2)
{
  g_autofree gchar *dir = make_dir ();
  write_shard (dir, "s1.safetensors", "a", "b");
  write_shard (dir, "s2.safetensors", "a", NULL);
  write_text (dir, "model.safetensors.index.json", index);
  expect_dir_fail (dir, code, file, s1, s2);
  mmt_rm_rf (dir);
}

static void
test_bad_index (void)
{
  const gchar *idx = "model.safetensors.index.json";
  index_case ("{\"weight_map\":{\"a\":\"missing.safetensors\"}}",
      MM_FORMAT_ERROR_IO, "missing.safetensors", NULL, NULL);
  index_case ("{\"weight_map\":{\"a\":\"../s1.safetensors\"}}",
      MM_FORMAT_ERROR_CORRUPT, idx, "'a'", "not a file name");
  index_case ("{\"weight_map\":{\"a\":\"/etc/passwd\"}}",
      MM_FORMAT_ERROR_CORRUPT, idx, "'a'", NULL);
  index_case ("{\"weight_map\":{\"a\":\"..\"}}",
      MM_FORMAT_ERROR_CORRUPT, idx, "'a'", NULL);
  index_case ("{\"weight_map\":{\"a\":5}}",
      MM_FORMAT_ERROR_CORRUPT, idx, "'a'", NULL);
  index_case ("{\"weight_map\":{\"b\":\"s1.safetensors\","
      "\"x\":\"s1.safetensors\"}}", MM_FORMAT_ERROR_CORRUPT, idx, "'x'",
      "does not hold");
  index_case ("{\"weight_map\":{\"a\":\"s1.safetensors\","
      "\"z\":\"s2.safetensors\"}}", MM_FORMAT_ERROR_CORRUPT, "",
      "duplicate tensor name 'a'", NULL);
  index_case ("{\"weight_map\":[]}", MM_FORMAT_ERROR_CORRUPT, idx,
      "weight_map", NULL);
  index_case ("{\"weight_map\":", MM_FORMAT_ERROR_CORRUPT, idx,
      "invalid JSON", NULL);
}

static void
test_unindexed (void)
{
  g_autofree gchar *dir = make_dir ();
  GError *err = NULL;
  expect_dir_fail (dir, MM_FORMAT_ERROR_MISSING, "", "no *.safetensors", NULL);
  write_shard (dir, "b.safetensors", "b1", NULL);
  write_shard (dir, "a.safetensors", "a1", "a2");
  g_autoptr (MmHfModel) m = mm_hf_model_open (dir, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (mm_hf_model_n_tensors (m), ==, 3);
  g_assert_cmpstr (mm_hf_model_tensor_nth (m, 0)->name, ==, "a1");
  g_assert_cmpstr (mm_hf_model_tensor_nth (m, 2)->name, ==, "b1");
  write_shard (dir, "c.safetensors", "b1", NULL);
  expect_dir_fail (dir, MM_FORMAT_ERROR_CORRUPT, "",
      "duplicate tensor name 'b1'", NULL);
  write_text (dir, "config.json", "[1]");
  expect_dir_fail (dir, MM_FORMAT_ERROR_CORRUPT, "config.json",
      "not a JSON object", NULL);
  write_text (dir, "config.json", "{\"a\":1,\"a\":2}");
  expect_dir_fail (dir, MM_FORMAT_ERROR_CORRUPT, "config.json",
      "duplicate JSON key 'a'", NULL);
  write_text (dir, "config.json", "");
  expect_dir_fail (dir, MM_FORMAT_ERROR_CORRUPT, "config.json", "empty", NULL);
  mmt_rm_rf (dir);
}

/* ---- MmWeights ---- */

static MmWeights *
open_weights (const gchar * path)
{
  GError *err = NULL;
  MmWeights *w = mm_weights_open (path, &err);
  g_assert_no_error (err);
  return w;
}

static void
test_weights (void)
{
  g_autofree gchar *dir = make_dir ();
  write_text (dir, "config.json", config_json);
  write_shard (dir, "model.safetensors", "w", "v");
  g_autoptr (MmtGguf) gw = mmt_gguf_new (3);
  mmt_gguf_kv_u32 (gw, "clip.vision.embedding_length", 1152);
  mmt_gguf_kv_str (gw, "general.architecture", "clip");
  gint64 s[] = { 2, 3 };
  mmt_gguf_tensor (gw, "w", 0, 2, s, f32_data, 24);
  g_autoptr (GBytes) gb = mmt_gguf_finish (gw, 32);
  g_autofree gchar *gpath = mmt_write (gb, dir, "m.gguf");
  g_autofree gchar *spath = g_build_filename (dir, "model.safetensors", NULL);
  GError *err = NULL;

  g_autoptr (MmWeights) hf = open_weights (dir);
  g_autoptr (MmWeights) gg = open_weights (gpath);
  g_autoptr (MmWeights) st = open_weights (spath);
  g_assert_cmpint (mm_weights_kind (hf), ==, MM_WEIGHTS_HF);
  g_assert_cmpint (mm_weights_kind (gg), ==, MM_WEIGHTS_GGUF);
  g_assert_cmpint (mm_weights_kind (st), ==, MM_WEIGHTS_HF);
  g_assert_cmpstr (mm_weights_path (gg), ==, gpath);
  g_assert_true (mm_weights_get_bool (gg, "nope", TRUE, &err));
  g_assert_cmpfloat (mm_weights_get_float (gg, "clip.vision.embedding_length",
          0, &err), ==, 1152.0);
  g_assert_nonnull (mm_weights_gguf (gg));
  g_assert_null (mm_weights_hf (gg));
  g_assert_cmpuint (mm_weights_n_tensors (hf), ==, 2);
  g_assert_cmpuint (mm_weights_n_tensors (gg), ==, 1);
  g_assert_cmpuint (mm_weights_n_tensors (st), ==, 2);
  MmWeights *all[] = { hf, gg, st };
  for (guint i = 0; i < 3; i++) {
    const MmTensorInfo *t = mm_weights_get_tensor (all[i], "w", &err);
    g_assert_no_error (err);
    g_assert_true (t == mm_weights_tensor_nth (all[i], 0));
    g_assert_cmpint (t->shape[1], ==, 3);
    g_assert_true (memcmp (t->data, f32_data, 24) == 0);
    g_assert_true (mm_weights_has_tensor (all[i], "w"));
    g_assert_false (mm_weights_has_tensor (all[i], "nope"));
    g_assert_null (mm_weights_get_tensor (all[i], "nope", &err));
    assert_err (err, MM_FORMAT_ERROR_MISSING, NULL, "'nope'", NULL);
    g_clear_error (&err);
  }
  g_assert_cmpint (mm_weights_get_int (hf, "vision_config.hidden_size", 0,
          &err), ==, 1152);
  g_assert_cmpint (mm_weights_get_int (gg, "clip.vision.embedding_length", 0,
          &err), ==, 1152);
  g_assert_cmpint (mm_weights_get_int (st, "vision_config.hidden_size", 9,
          &err), ==, 9);
  g_assert_cmpstr (mm_weights_get_str (hf, "model_type", NULL, &err), ==,
      "llava");
  g_assert_cmpstr (mm_weights_get_str (gg, "general.architecture", NULL,
          &err), ==, "clip");
  g_assert_cmpfloat (mm_weights_get_float (hf, "vision_config.layer_norm_eps",
          0, &err), ==, 1e-6);
  g_assert_false (mm_weights_get_bool (hf, "tie_word_embeddings", TRUE, &err));
  g_assert_no_error (err);
  g_assert_true (mm_weights_has_key (hf, "architectures.0"));
  g_assert_true (mm_weights_has_key (gg, "general.architecture"));
  g_assert_false (mm_weights_has_key (st, "model_type"));
  g_assert_cmpint (mm_weights_get_int (gg, "general.architecture", 3, &err),
      ==, 3);
  assert_err (err, MM_FORMAT_ERROR_TYPE, gpath, "'general.architecture'", NULL);
  g_clear_error (&err);

  g_autofree gchar *nope = g_build_filename (dir, "nope", NULL);
  g_assert_null (mm_weights_open (nope, &err));
  assert_err (err, MM_FORMAT_ERROR_IO, nope, NULL);
  g_clear_error (&err);
  mmt_rm_rf (dir);
}

static void
test_weights_upload (void)
{
  GError *err = NULL;
  g_autoptr (MmEngine) e = mm_engine_get (NULL, &err);
  if (e == NULL) {
    g_test_skip (err->message);
    g_clear_error (&err);
    return;
  }
  g_autofree gchar *dir = make_dir ();
  write_shard (dir, "model.safetensors", "w", "v");
  g_autoptr (MmWeights) w = open_weights (dir);
  gint64 s[] = { 2, -1 }, bad[] = { 3, 2 };
  float got[6], want[6];
  /* BF16 -> F32 on upload */
  g_autoptr (MmTensor) v = mm_weights_upload (w, e, "v", MM_DTYPES_FLOAT,
      MM_CONVERT_F32, 2, s, &err);
  g_assert_no_error (err);
  g_assert_cmpint (v->dtype, ==, MM_DTYPE_F32);
  g_assert_true (mm_tensor_read_f32 (e, v, got, &err));
  g_assert_true (mm_dequantize_host (MM_DTYPE_BF16, f32_data, 6, want));
  g_assert_true (memcmp (got, want, sizeof got) == 0);
  /* F32 -> F16 on upload, back through the device dequantiser */
  g_autoptr (MmTensor) h = mm_weights_upload (w, e, "w", 0, MM_CONVERT_F16, 0,
      NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpint (h->dtype, ==, MM_DTYPE_F16);
  g_autoptr (MmGraph) g = mm_graph_new (e);
  MmTensor *y = mm_dequantize (g, h);
  g_assert_true (mm_graph_finish (g, &err));
  g_assert_true (mm_tensor_read_f32 (e, y, got, &err));
  const float *src = (const float *) f32_data;
  for (guint i = 0; i < 6; i++)
    g_assert_cmpfloat (got[i], ==, mm_f16_to_f32 (mm_f32_to_f16 (src[i])));
  /* the single-file and GGUF paths */
  g_autofree gchar *spath = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (MmSafetensors) sf = mm_safetensors_open (spath, &err);
  g_assert_no_error (err);
  g_autoptr (MmTensor) sw = mm_safetensors_upload_tensor (sf, e, "w",
      MM_DTYPE_BIT (MM_DTYPE_F32), MM_CONVERT_NONE, 2, s, &err);
  g_assert_no_error (err);
  g_assert_true (mm_tensor_read_f32 (e, sw, got, &err));
  g_assert_true (memcmp (got, f32_data, 24) == 0);
  g_autoptr (MmtGguf) gw = mmt_gguf_new (3);
  gint64 s23[] = { 2, 3 };
  mmt_gguf_tensor (gw, "w", 30, 2, s23, f32_data, 12);
  g_autoptr (GBytes) gb = mmt_gguf_finish (gw, 32);
  g_autofree gchar *gpath = mmt_write (gb, dir, "m.gguf");
  g_autoptr (MmWeights) gg = open_weights (gpath);
  g_autoptr (MmTensor) gt = mm_weights_upload (gg, e, "w", 0, MM_CONVERT_F32,
      2, s, &err);
  g_assert_no_error (err);
  g_assert_true (mm_tensor_read_f32 (e, gt, got, &err));
  g_assert_true (memcmp (got, want, sizeof got) == 0);
  g_assert_null (mm_weights_upload (gg, e, "x", 0, MM_CONVERT_F32, 0, NULL,
          &err));
  assert_err (err, MM_FORMAT_ERROR_MISSING, gpath, "'x'", NULL);
  g_clear_error (&err);
  g_assert_null (mm_weights_upload (w, e, "w", 0, MM_CONVERT_NONE, 2, bad,
          &err));
  assert_err (err, MM_FORMAT_ERROR_MISMATCH, NULL, "'w'", "[2, 3]", NULL);
  g_clear_error (&err);
  g_assert_null (mm_weights_upload (w, e, "v", MM_DTYPE_BIT (MM_DTYPE_F16),
          MM_CONVERT_NONE, 0, NULL, &err));
  assert_err (err, MM_FORMAT_ERROR_MISMATCH, NULL, "'v'", "BF16", NULL);
  g_clear_error (&err);
  mmt_rm_rf (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GRand *r = g_rand_new_with_seed (3);
  mmt_random_tensor (MM_DTYPE_F32, 6, r, &f32_data);
  mmt_random_tensor (MM_DTYPE_F16, 5, r, &f16_data);
  mmt_random_tensor (MM_DTYPE_BF16, 4, r, &bf16_data);
  g_rand_free (r);
  g_test_add_func ("/safetensors/read", test_read);
  g_test_add_func ("/safetensors/unknown-dtype", test_unknown_dtype);
  g_test_add_func ("/safetensors/truncated", test_truncated);
  g_test_add_func ("/safetensors/bad-length", test_bad_length);
  g_test_add_func ("/safetensors/bad-json", test_bad_json);
  g_test_add_func ("/safetensors/bad-entries", test_bad_entries);
  g_test_add_func ("/safetensors/mutations", test_mutations);
  g_test_add_func ("/hf/config", test_config);
  g_test_add_func ("/hf/sharded", test_sharded);
  g_test_add_func ("/hf/bad-index", test_bad_index);
  g_test_add_func ("/hf/unindexed", test_unindexed);
  g_test_add_func ("/weights/open", test_weights);
  g_test_add_func ("/weights/upload", test_weights_upload);
  gint rc = g_test_run ();
  g_free (f32_data);
  g_free (f16_data);
  g_free (bf16_data);
  return rc;
}
