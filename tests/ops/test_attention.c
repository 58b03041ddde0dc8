/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mm_attention (permute + batched GEMM + softmax, or with head dims a
 * multiple of 32 V read in place and the softmax normalised in P . V)
 * and mm_self_attention_qkv vs a direct C loop: multi-head,
 * grouped-query, causal with an offset (KV cache), mask. */
#include "mm-test-util.h"

#include <math.h>
#include <string.h>

static void
ref_attention (const float *q, const float *k, const float *v,
    const float *mask, float *o, gint nq, gint nk, gint H, gint Hkv, gint d,
    float scale, gint causal)
{
  float *s = g_new (float, nk);
  for (gint h = 0; h < H; h++) {
    gint hk = h / (H / Hkv);
    for (gint i = 0; i < nq; i++) {
      gint n = causal >= 0 ? MIN (nk, i + causal + 1) : nk;
      double mx = -INFINITY, sum = 0;
      for (gint j = 0; j < n; j++) {
        double dot = 0;
        for (gint c = 0; c < d; c++)
          dot += q[(i * H + h) * d + c] * k[(j * Hkv + hk) * d + c];
        s[j] = dot * scale + (mask ? mask[i * nk + j] : 0);
        mx = fmax (mx, s[j]);
      }
      for (gint j = 0; j < n; j++) {
        s[j] = exp (s[j] - mx);
        sum += s[j];
      }
      for (gint c = 0; c < d; c++) {
        double acc = 0;
        for (gint j = 0; j < n; j++)
          acc += s[j] / sum * v[(j * Hkv + hk) * d + c];
        o[i * H * d + h * d + c] = acc;
      }
    }
  }
  g_free (s);
}

/* Scores' scale times 1 / sqrt (d): large values make the row maxima
 * jump from key block to key block (the fused kernel's rescaling). */
static float scale_mul = 1.0f;

static gboolean
check (MmGraph * g, gint nq, gint nk, gint H, gint Hkv, gint d,
    gboolean masked, gint causal)
{
  gsize nqs = (gsize) nq * H * d, nks = (gsize) nk * Hkv * d;
  float *q = mm_test_rand (nqs, 1 + nq, -1, 1);
  float *k = mm_test_rand (nks, 2 + nk, -1, 1);
  float *v = mm_test_rand (nks, 3 + nk, -1, 1);
  float *m = mm_test_rand ((gsize) nq * nk, 4, -3, 0);
  float *want = g_new (float, nqs);
  float scale = scale_mul / sqrtf (d);
  ref_attention (q, k, v, masked ? m : NULL, want, nq, nk, H, Hkv, d, scale,
      causal);
  gint64 qs[3] = { nq, H, d }, ks[3] = { nk, Hkv, d }, ms[2] = { nq, nk };
  mm_graph_reset (g);
  MmTensor *y = mm_attention (g, mm_graph_input_f32 (g, 3, qs, q),
      mm_graph_input_f32 (g, 3, ks, k), mm_graph_input_f32 (g, 3, ks, v),
      masked ? mm_graph_input_f32 (g, 2, ms, m) : NULL, scale, causal);
  gchar *what = g_strdup_printf ("attention nq=%d nk=%d H=%d Hkv=%d d=%d "
      "mask=%d causal=%d", nq, nk, H, Hkv, d, masked, causal);
  gboolean ok = mm_test_check_tensor (g, what, y, want, nqs, 1e-5f, 1e-4f);
  g_free (what);
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (m);
  g_free (want);
  return ok;
}

/* mm_self_attention_qkv on qkv [n, 3 H d] in head groups of @group
 * (through max_scores_bytes) vs ref_attention on its column blocks. */
static gboolean
check_qkv (MmGraph * g, gint n, gint H, gint d, gint group)
{
  gint dm = H * d;
  float *qkv = mm_test_rand ((gsize) n * 3 * dm, 7 + n, -1, 1);
  float *q = g_new (float, (gsize) n * dm), *k = g_new (float, (gsize) n * dm);
  float *v = g_new (float, (gsize) n * dm), *want = g_new (float, (gsize) n * dm);
  for (gint i = 0; i < n; i++)
    for (gint c = 0; c < dm; c++) {
      q[i * dm + c] = qkv[(gsize) i * 3 * dm + c];
      k[i * dm + c] = qkv[(gsize) i * 3 * dm + dm + c];
      v[i * dm + c] = qkv[(gsize) i * 3 * dm + 2 * dm + c];
    }
  float scale = 1.0f / sqrtf (d);
  ref_attention (q, k, v, NULL, want, n, n, H, H, d, scale, -1);
  gint64 s[2] = { n, 3 * dm };
  mm_graph_reset (g);
  MmTensor *y = mm_self_attention_qkv (g, mm_graph_input_f32 (g, 2, s, qkv),
      H, scale, (gint64) group * n * n * 4);
  gchar *what = g_strdup_printf ("self_attention_qkv n=%d H=%d d=%d group=%d",
      n, H, d, group);
  gboolean ok = mm_test_check_tensor (g, what, y, want, (gsize) n * dm, 1e-5f,
      1e-4f);
  g_free (what);
  g_free (qkv);
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (want);
  return ok;
}

/* mm_kv_store in two calls (a prefix, then the last nq positions), then
 * mm_attention_cached of those nq queries over all nk positions of a
 * cache of n_ctx > nk positions; causal offset @offset (a decoder's is
 * nk - nq; -1: none). */
static gboolean
check_cached (MmEngine * e, MmGraph * g, gint nq, gint nk, gint n_ctx, gint H,
    gint Hkv, gint d, gint offset)
{
  gsize nqs = (gsize) nq * H * d, nks = (gsize) nk * Hkv * d;
  float *q = mm_test_rand (nqs, 5 + nq, -1, 1);
  float *k = mm_test_rand (nks, 6 + nk, -1, 1);
  float *v = mm_test_rand (nks, 7 + nk, -1, 1);
  float *want = g_new (float, nqs);
  float scale = 1.0f / sqrtf (d);
  ref_attention (q, k, v, NULL, want, nq, nk, H, Hkv, d, scale, offset);
  gint64 ks[3] = { Hkv, n_ctx, d }, vs[3] = { Hkv, d, n_ctx };
  MmTensor *kc = mm_tensor_new (e, MM_DTYPE_F32, 3, ks, "k cache", NULL);
  MmTensor *vc = mm_tensor_new (e, MM_DTYPE_F32, 3, vs, "v cache", NULL);
  gint64 qs[3] = { nq, H, d }, pre[3] = { nk - nq, Hkv, d };
  gint64 last[3] = { nq, Hkv, d };
  gsize split = (gsize) (nk - nq) * Hkv * d;
  mm_graph_reset (g);
  if (nk > nq)
    mm_kv_store (g, kc, vc, 0, mm_graph_input_f32 (g, 3, pre, k),
        mm_graph_input_f32 (g, 3, pre, v));
  mm_kv_store (g, kc, vc, nk - nq, mm_graph_input_f32 (g, 3, last, k + split),
      mm_graph_input_f32 (g, 3, last, v + split));
  MmTensor *y = mm_attention_cached (g, mm_graph_input_f32 (g, 3, qs, q), kc,
      vc, nk, scale, offset);
  gchar *what = g_strdup_printf ("attention_cached nq=%d nk=%d n_ctx=%d H=%d "
      "Hkv=%d d=%d causal=%d", nq, nk, n_ctx, H, Hkv, d, offset);
  gboolean ok = mm_test_check_tensor (g, what, y, want, nqs, 1e-5f, 1e-4f);
  g_free (what);
  mm_tensor_free (kc);
  mm_tensor_free (vc);
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (want);
  return ok;
}

/* mm_rope_qkv_store against mm_rope + mm_kv_store on the split parts
 * (both checked against C elsewhere): q and both whole caches. */
static gboolean
check_rope_qkv_store (MmEngine * e, MmGraph * g, gint n, gint pos0,
    gint n_ctx, gint H, gint Hkv, gint d, gint n_rot, MmRopeMode mode)
{
  gint w = (H + 2 * Hkv) * d;
  float *qkv = mm_test_rand ((gsize) n * w, n + d, -1, 1);
  float *q = g_new (float, (gsize) n * H * d);
  float *k = g_new (float, (gsize) n * Hkv * d);
  float *v = g_new (float, (gsize) n * Hkv * d);
  for (gint t = 0; t < n; t++) {
    memcpy (q + (gsize) t * H * d, qkv + (gsize) t * w, H * d * 4);
    memcpy (k + (gsize) t * Hkv * d, qkv + (gsize) t * w + H * d,
        Hkv * d * 4);
    memcpy (v + (gsize) t * Hkv * d, qkv + (gsize) t * w + (H + Hkv) * d,
        Hkv * d * 4);
  }
  gint64 ks[3] = { Hkv, n_ctx, d }, vs[3] = { Hkv, d, n_ctx };
  MmTensor *kc[2], *vc[2];
  float zero[4096] = { 0 };
  for (gint i = 0; i < 2; i++) {
    kc[i] = mm_tensor_upload (e, MM_DTYPE_F32, 3, ks, zero, "k cache", NULL);
    vc[i] = mm_tensor_upload (e, MM_DTYPE_F32, 3, vs, zero, "v cache", NULL);
  }
  gint64 xs[2] = { n, w }, qs[3] = { n, H, d }, kvs[3] = { n, Hkv, d };
  mm_graph_reset (g);
  MmTensor *qa = mm_rope (g, mm_graph_input_f32 (g, 3, qs, q), pos0, n_rot,
      10000.0f, 1.0f, mode);
  mm_kv_store (g, kc[0], vc[0], pos0, mm_rope (g, mm_graph_input_f32 (g, 3,
              kvs, k), pos0, n_rot, 10000.0f, 1.0f, mode),
      mm_graph_input_f32 (g, 3, kvs, v));
  MmTensor *qb = mm_rope_qkv_store (g, mm_graph_input_f32 (g, 2, xs, qkv), H,
      pos0, n_rot, 10000.0f, 1.0f, mode, kc[1], vc[1]);
  gboolean ok = mm_graph_finish (g, NULL);
  float *want = ok ? mm_tensor_dup_f32 (e, qa, NULL) : NULL;
  gchar *what = g_strdup_printf ("rope_qkv_store n=%d pos0=%d H=%d Hkv=%d "
      "d=%d n_rot=%d neox=%d", n, pos0, H, Hkv, d, n_rot, mode);
  ok = want && mm_test_check_tensor (g, what, qb, want, (gsize) n * H * d,
      0, 0);
  g_free (want);
  for (gint c = 0; ok && c < 2; c++) {
    MmTensor *a = c ? vc[0] : kc[0], *b = c ? vc[1] : kc[1];
    want = mm_tensor_dup_f32 (e, a, NULL);
    ok = mm_test_check_tensor (g, what, b, want, mm_tensor_numel (a), 0, 0);
    g_free (want);
  }
  g_free (what);
  for (gint i = 0; i < 2; i++) {
    mm_tensor_free (kc[i]);
    mm_tensor_free (vc[i]);
  }
  g_free (qkv);
  g_free (q);
  g_free (k);
  g_free (v);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  ok &= check (g, 1, 1, 1, 1, 1, FALSE, -1);
  ok &= check (g, 7, 7, 3, 3, 8, FALSE, -1);
  ok &= check (g, 13, 13, 4, 2, 12, FALSE, 0);  /* causal prefill, GQA */
  ok &= check (g, 1, 20, 9, 3, 64, FALSE, 19);  /* decode step, KV cache */
  ok &= check (g, 5, 25, 6, 2, 10, FALSE, 20);  /* chunk after a prefix */
  ok &= check (g, 11, 29, 5, 5, 7, TRUE, -1);   /* cross-attention, mask */
  ok &= check (g, 64, 97, 2, 1, 16, FALSE, -1); /* latents -> features */
  /* head dims of 32 multiples: V copied as rows, normalised in P . V */
  ok &= check (g, 37, 37, 3, 3, 32, FALSE, -1);
  ok &= check (g, 29, 61, 6, 2, 64, TRUE, -1);
  ok &= check (g, 13, 45, 4, 1, 96, FALSE, 32);
  ok &= check (g, 4, 4, 1, 1, 32, TRUE, 0);
  /* fused attention (CPU devices; no mask, d a multiple of 32): GQA, key
   * blocks of 128 with a partial last one, query tiles of 12 with a
   * partial last one, 1 to 8 column chunks, score maxima that grow along
   * the keys */
  ok &= check (g, 25, 300, 6, 2, 64, FALSE, -1);
  ok &= check (g, 4, 129, 3, 1, 96, FALSE, -1);
  ok &= check (g, 17, 33, 2, 2, 256, FALSE, -1);
  scale_mul = 12.0f;
  ok &= check (g, 30, 260, 4, 4, 32, FALSE, -1);
  ok &= check (g, 13, 140, 2, 1, 64, FALSE, -1);
  scale_mul = 1.0f;
  ok &= check_qkv (g, 50, 3, 32, 3);
  ok &= check_qkv (g, 97, 5, 64, 2);
  ok &= check_qkv (g, 33, 4, 24, 1);    /* head dim 24: V transposed */
  /* KV cache: decode kernels (nq <= 4; head dims and lengths on and off
   * the 16-lane vectors; one chunk of keys or several merged, chunks
   * wholly masked), batched GEMMs (prefill, chunk after a prefix) */
  ok &= check_cached (e, g, 1, 20, 33, 9, 3, 64, 19);
  ok &= check_cached (e, g, 1, 37, 37, 2, 1, 24, 36);
  ok &= check_cached (e, g, 3, 7, 50, 4, 2, 12, 4);
  ok &= check_cached (e, g, 4, 19, 19, 3, 3, 5, -1);
  ok &= check_cached (e, g, 1, 1, 8, 1, 1, 1, 0);
  ok &= check_cached (e, g, 1, 144, 150, 9, 3, 64, 143);
  ok &= check_cached (e, g, 4, 1000, 1001, 4, 2, 20, 996);
  ok &= check_cached (e, g, 2, 300, 300, 3, 1, 16, 10);
  ok &= check_cached (e, g, 3, 130, 140, 6, 3, 7, -1);
  ok &= check_cached (e, g, 13, 13, 29, 4, 2, 12, 0);
  ok &= check_cached (e, g, 6, 40, 41, 6, 2, 16, 34);
  ok &= check_cached (e, g, 50, 70, 75, 3, 1, 32, 20);
  ok &= check_rope_qkv_store (e, g, 1, 9, 12, 9, 3, 64, 64, MM_ROPE_NEOX);
  ok &= check_rope_qkv_store (e, g, 5, 3, 11, 4, 2, 12, 8, MM_ROPE_NORMAL);
  ok &= check_rope_qkv_store (e, g, 7, 0, 7, 3, 3, 10, 10, MM_ROPE_NEOX);
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
