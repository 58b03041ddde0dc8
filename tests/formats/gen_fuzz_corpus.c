/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writes the seed corpus of the fuzz targets: gen_fuzz_corpus DIR fills
 * DIR/gguf and DIR/safetensors.  Files named valid-* must open (the corpus
 * replay test checks it); the others are rejected by design. */
#include "mm-test-writers.h"

#include <glib/gstdio.h>
#include <string.h>

static void
save (GBytes * b, const gchar * dir, const gchar * sub, const gchar * name)
{
  g_autofree gchar *d = g_build_filename (dir, sub, NULL);
  g_mkdir_with_parents (d, 0755);
  g_free (mmt_write (b, d, name));
  g_bytes_unref (b);
}

static void
add_tensors (MmtGguf * w, GRand * r)
{
  static const struct
  {
    const gchar *name;
    guint32 ggml;
    MmDType dt;
    gint64 cols;
  } t[] = {
    {"f32", 0, MM_DTYPE_F32, 3}, {"f16", 1, MM_DTYPE_F16, 5},
    {"bf16", 30, MM_DTYPE_BF16, 2}, {"q8_0", 8, MM_DTYPE_Q8_0, 32},
    {"q4_0", 2, MM_DTYPE_Q4_0, 32}, {"q4_1", 3, MM_DTYPE_Q4_1, 32},
  };
  for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
    gint64 shape[2] = { 2, t[i].cols };
    guint8 *d;
    gsize n = mmt_random_tensor (t[i].dt, 2 * t[i].cols, r, &d);
    mmt_gguf_tensor (w, t[i].name, t[i].ggml, 2, shape, d, n);
    g_free (d);
  }
  guint8 q4k[144] = { 0 };
  gint64 s = 256;
  mmt_gguf_tensor (w, "q4_k", 12, 1, &s, q4k, sizeof q4k);
}

static void
gguf_seeds (const gchar * dir, GRand * r)
{
  static const gchar *toks[] = { "<s>", "</s>", "a", "", "\xe2\x96\x81hi" };
  static const gint32 ints[] = { 1, -2, 3 };
  static const gfloat scores[] = { 0.0f, -1.5f, 2.0f, 0.25f, -3.0f };
  MmtGguf *w = mmt_gguf_new (3);
  mmt_gguf_kv_str (w, "general.architecture", "llama");
  mmt_gguf_kv_u32 (w, "llama.context_length", 2048);
  mmt_gguf_kv_i8 (w, "t.i8", -3);
  mmt_gguf_kv_u16 (w, "t.u16", 7);
  mmt_gguf_kv_i64 (w, "t.i64", -7);
  mmt_gguf_kv_f32 (w, "llama.rope.freq_base", 10000.0f);
  mmt_gguf_kv_f64 (w, "t.f64", 0.5);
  mmt_gguf_kv_bool (w, "t.bool", TRUE);
  mmt_gguf_kv_arr_str (w, "tokenizer.ggml.tokens", 5, toks);
  mmt_gguf_kv_arr (w, "tokenizer.ggml.scores", 6, 5, scores, 4);
  mmt_gguf_kv_arr (w, "t.arr.i32", 5, 3, ints, 4);
  add_tensors (w, r);
  save (mmt_gguf_finish (w, 32), dir, "gguf", "valid-small.gguf");
  mmt_gguf_free (w);

  w = mmt_gguf_new (3);
  save (mmt_gguf_finish (w, 32), dir, "gguf", "valid-header-only.gguf");
  mmt_gguf_free (w);

  w = mmt_gguf_new (2);
  mmt_gguf_kv_u32 (w, "general.alignment", 1);
  gint64 s3 = 3;
  mmt_gguf_tensor (w, "a", 0, 1, &s3, scores, 12);
  mmt_gguf_tensor (w, "b", 0, 1, &s3, scores, 12);
  save (mmt_gguf_finish (w, 1), dir, "gguf", "valid-v2-align1.gguf");
  mmt_gguf_free (w);

  w = mmt_gguf_new (3);
  guint64 ne[1] = { 8 };
  mmt_gguf_tensor_raw (w, "x", 0, 1, ne, 0, scores, 20);
  mmt_gguf_tensor_raw (w, "y", 0, 1, ne, 0, NULL, 0);
  save (mmt_gguf_finish (w, 32), dir, "gguf", "bad-overlap.gguf");
  mmt_gguf_free (w);
}

static void
st_seeds (const gchar * dir, GRand * r)
{
  MmtSt *w = mmt_st_new ();
  gint64 s23[] = { 2, 3 }, s4[] = { 4 };
  guint8 *d;
  mmt_st_meta (w, "format", "pt");
  gsize n = mmt_random_tensor (MM_DTYPE_F32, 6, r, &d);
  mmt_st_add (w, "model.embed.weight", "F32", 2, s23, d, n);
  mmt_st_add (w, "scalar", "F32", 0, NULL, d, 4);
  g_free (d);
  n = mmt_random_tensor (MM_DTYPE_F16, 4, r, &d);
  mmt_st_add (w, "h", "F16", 1, s4, d, n);
  mmt_st_add (w, "b", "BF16", 1, s4, d, n);
  mmt_st_add (w, "i", "I16", 1, s4, d, n);
  g_free (d);
  save (mmt_st_finish (w), dir, "safetensors", "valid-small.safetensors");
  mmt_st_free (w);
  save (mmt_st_raw ("{}", NULL, 0), dir, "safetensors",
      "valid-empty.safetensors");
  w = mmt_st_new ();
  gint64 s4d[] = { 1, 2, 1, 2 }, s0[] = { 0, 7 }, s2[] = { 2 };
  static const guint8 bytes[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  mmt_st_add (w, "conv.weight", "F16", 4, s4d, bytes, 8);
  mmt_st_add (w, "ids", "I64", 1, s2, bytes, 16);
  mmt_st_add (w, "fp8", "F8_E4M3", 1, s4, bytes, 4);
  mmt_st_add (w, "fp4", "F4", 1, s4, bytes, 2);
  mmt_st_add (w, "none", "F32", 2, s0, NULL, 0);
  save (mmt_st_finish (w), dir, "safetensors", "valid-dtypes.safetensors");
  mmt_st_free (w);
  const gchar *cfg = "{\"architectures\":[\"Idefics3\"],\"vision_config\":"
      "{\"hidden_size\":768,\"layer_norm_eps\":1e-06},\"x\":null}";
  save (g_bytes_new (cfg, strlen (cfg)), dir, "safetensors", "config.json");
  const gchar *idx = "{\"metadata\":{\"total_size\":8},\"weight_map\":"
      "{\"a\":\"model-00001-of-00002.safetensors\"}}";
  save (g_bytes_new (idx, strlen (idx)), dir, "safetensors", "index.json");
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    g_printerr ("usage: %s DIR\n", argv[0]);
    return 2;
  }
  GRand *r = g_rand_new_with_seed (42);
  gguf_seeds (argv[1], r);
  st_seeds (argv[1], r);
  g_rand_free (r);
  return 0;
}
