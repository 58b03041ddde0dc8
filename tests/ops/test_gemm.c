/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gemm.cl via mm_linear / mm_gemm: F32 and F16 weights, bias, GEMV-shaped
 * and odd shapes, strided batches with grouped B (GQA). */
#include "mm-test-util.h"
#include "mm-dequant.h"

#include <string.h>

static void
ref_gemm (const float *a, const float *b, const float *bias, float *c,
    gint M, gint N, gint K, float alpha)
{
  for (gint m = 0; m < M; m++)
    for (gint n = 0; n < N; n++) {
      double s = 0;
      for (gint k = 0; k < K; k++)
        s += (double) a[m * K + k] * b[n * K + k];
      c[m * N + n] = alpha * s + (bias ? bias[n] : 0);
    }
}

static gboolean
check_linear (MmEngine * e, MmGraph * g, gint M, gint N, gint K,
    gboolean f16, gboolean with_bias)
{
  float *x = mm_test_rand ((gsize) M * K, M + K, -1, 1);
  float *w = mm_test_rand ((gsize) N * K, N + K, -1, 1);
  float *b = mm_test_rand (N, N, -1, 1);
  float *want = g_new (float, (gsize) M * N);
  gint64 ws[2] = { N, K }, xs[2] = { M, K }, bs = N;
  MmTensor *tw;
  if (f16) {
    guint16 *h = g_new (guint16, (gsize) N * K);
    for (gsize i = 0; i < (gsize) N * K; i++) {
      h[i] = mm_test_f32_to_f16 (w[i]);
      w[i] = mm_test_f16_to_f32 (h[i]);
    }
    tw = mm_tensor_upload (e, MM_DTYPE_F16, 2, ws, h, "w", NULL);
    g_free (h);
  } else {
    tw = mm_test_weight (e, 2, ws, w);
  }
  MmTensor *tb = mm_test_weight (e, 1, &bs, b);
  ref_gemm (x, w, with_bias ? b : NULL, want, M, N, K, 1.0f);
  mm_graph_reset (g);
  MmTensor *y = mm_linear (g, mm_graph_input_f32 (g, 2, xs, x), tw,
      with_bias ? tb : NULL);
  gchar *what = g_strdup_printf ("linear %s M=%d N=%d K=%d bias=%d",
      f16 ? "f16" : "f32", M, N, K, with_bias);
  /* fp32 accumulation in a different order: error grows like sqrt(K) */
  gboolean ok = mm_test_check_tensor (g, what, y, want, (gsize) M * N,
      1e-4f * (1 + K / 64), 1e-4f);
  g_free (what);
  mm_tensor_free (tw);
  mm_tensor_free (tb);
  g_free (x);
  g_free (w);
  g_free (b);
  g_free (want);
  return ok;
}

static gboolean
check_batched (MmEngine * e, MmGraph * g, gint batch, gint b_div, gint M,
    gint N, gint K)
{
  gint nb = (batch + b_div - 1) / b_div;
  gsize na = (gsize) batch * M * K, nbb = (gsize) nb * N * K;
  float *a = mm_test_rand (na, 11, -1, 1), *b = mm_test_rand (nbb, 12, -1, 1);
  float *want = g_new (float, (gsize) batch * M * N);
  for (gint bt = 0; bt < batch; bt++)
    ref_gemm (a + (gsize) bt * M * K, b + (gsize) (bt / b_div) * N * K, NULL,
        want + (gsize) bt * M * N, M, N, K, 0.5f);
  gint64 as[3] = { batch, M, K }, bsh[3] = { nb, N, K }, cs[3] =
      { batch, M, N };
  mm_graph_reset (g);
  MmTensor *ta = mm_graph_input_f32 (g, 3, as, a);
  MmTensor *tb = mm_graph_input_f32 (g, 3, bsh, b);
  MmTensor *tc = mm_graph_tensor (g, MM_DTYPE_F32, 3, cs);
  MmGemmShape s = { .M = M, .N = N, .K = K, .batch = batch, .b_div = b_div,
    .lda = K, .ldb = K, .ldc = N, .stride_a = (gint64) M * K,
    .stride_b = (gint64) N * K, .stride_c = (gint64) M * N, .alpha = 0.5f
  };
  mm_gemm (g, ta, tb, NULL, tc, &s);
  gboolean ok = mm_test_check_tensor (g, "batched gemm", tc, want,
      (gsize) batch * M * N, 1e-4f, 1e-4f);
  g_free (a);
  g_free (b);
  g_free (want);
  return ok;
}

/* Random quantised blocks (random scales and codes), dequantised on the
 * host by the formats reference, against the device's fused kernels. */
static gboolean
check_quant (MmEngine * e, MmGraph * g, MmDType dt, gint M, gint N, gint K)
{
  gint bb = mm_dtype_block_bytes (dt);
  gsize nbytes = (gsize) N * (K / 32) * bb;
  guint8 *q = g_new (guint8, nbytes);
  float *r = mm_test_rand (nbytes, K + N, 0, 256);
  for (gsize i = 0; i < nbytes; i++)
    q[i] = (guint8) r[i];
  for (gsize blk = 0; blk < nbytes / bb; blk++) {
    /* sane scales: d in [-0.05, 0.05], m in [-0.5, 0.5] */
    guint16 d = mm_f32_to_f16 ((r[blk] / 256.0f - 0.5f) * 0.1f);
    guint16 m = mm_f32_to_f16 (r[blk + 1] / 256.0f - 0.5f);
    memcpy (q + blk * bb, &d, 2);
    if (dt == MM_DTYPE_Q4_1)
      memcpy (q + blk * bb + 2, &m, 2);
  }
  float *w = g_new (float, (gsize) N * K);
  mm_dequantize_host (dt, q, (gint64) N * K, w);
  float *x = mm_test_rand ((gsize) M * K, M, -1, 1);
  float *b = mm_test_rand (N, 3, -1, 1);
  float *want = g_new (float, (gsize) M * N);
  ref_gemm (x, w, b, want, M, N, K, 1.0f);
  gint64 xs[2] = { M, K }, bs = N;
  MmTensor *tw = mm_tensor_upload_planar (e, dt, N, K, q, "qw", NULL);
  MmTensor *tb = mm_test_weight (e, 1, &bs, b);
  mm_graph_reset (g);
  MmTensor *y = mm_linear (g, mm_graph_input_f32 (g, 2, xs, x), tw, tb);
  gchar *what = g_strdup_printf ("linear %s M=%d N=%d K=%d", mm_dtype_name (dt),
      M, N, K);
  gboolean ok = mm_test_check_tensor (g, what, y, want, (gsize) M * N,
      1e-4f * (1 + K / 64), 1e-4f);
  g_free (what);
  mm_tensor_free (tw);
  mm_tensor_free (tb);
  g_free (q);
  g_free (r);
  g_free (w);
  g_free (x);
  g_free (b);
  g_free (want);
  return ok;
}

static gboolean
check_mismatch (MmEngine * e, MmGraph * g)
{
  float z[64] = { 0 };
  gint64 ws[2] = { 4, 8 }, xs[2] = { 2, 7 };
  MmTensor *w = mm_test_weight (e, 2, ws, z);
  mm_graph_reset (g);
  mm_linear (g, mm_graph_input_f32 (g, 2, xs, z), w, NULL);
  GError *err = NULL;
  gboolean ok = !mm_graph_finish (g, &err) && strstr (err->message, "[4, 8]");
  if (!ok)
    g_printerr ("FAIL linear shape mismatch not reported by name\n");
  g_clear_error (&err);
  mm_tensor_free (w);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  const gint shapes[][3] = { {1, 1, 1}, {7, 13, 5}, {129, 257, 33},
  {1, 576, 576}, {3, 49, 17}, {4, 4, 16}, {64, 96, 768}, {2, 1000, 31},
  {17, 3, 300}
  };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    for (gint f16 = 0; f16 < 2; f16++)
      for (gint bias = 0; bias < 2; bias++)
        ok &= check_linear (e, g, shapes[i][0], shapes[i][1], shapes[i][2],
            f16, bias);
  ok &= check_batched (e, g, 6, 3, 7, 9, 24);
  ok &= check_batched (e, g, 5, 1, 1, 13, 8);
  ok &= check_batched (e, g, 4, 2, 33, 33, 17);
  const MmDType qt[] = { MM_DTYPE_Q8_0, MM_DTYPE_Q4_0, MM_DTYPE_Q4_1 };
  const gint qs[][3] = { {1, 1, 32}, {1, 13, 96}, {3, 7, 64}, {7, 13, 160},
  {129, 33, 576}, {5, 1001, 32}, {16, 37, 64}, {40, 96, 160}
  };
  for (guint t = 0; t < G_N_ELEMENTS (qt); t++)
    for (guint i = 0; i < G_N_ELEMENTS (qs); i++)
      ok &= check_quant (e, g, qt[t], qs[i][0], qs[i][1], qs[i][2]);
  ok &= check_mismatch (e, g);
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
