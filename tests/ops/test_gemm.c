/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gemm.cl via mm_linear / mm_gemm: F32 and F16 weights, bias, GEMV-shaped
 * and odd shapes, strided batches with grouped B (GQA).  Shapes cover both
 * kernel families (dot form below 48 rows, packed tiles from 48 on, or
 * from 4 on with weights packed at load), tile
 * edges in M, N and K, several K blocks and padded leading dimensions. */
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

/* @packed: the weight goes through mm_gemm_pack_weight first */
static gboolean
check_linear_full (MmEngine * e, MmGraph * g, gint M, gint N, gint K,
    gboolean f16, gboolean with_bias, gboolean packed)
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
  if (packed) {
    GError *err = NULL;
    if (!mm_gemm_pack_weight (e, tw, &err)) {
      g_printerr ("FAIL pack weight [%d, %d]: %s\n", N, K, err->message);
      g_error_free (err);
      return FALSE;
    }
    if (mm_gemm_get_provider (e) == MM_GEMM_OWN
        && !mm_gemm_weight_is_packed (tw)) {
      g_printerr ("FAIL weight [%d, %d] not packed\n", N, K);
      return FALSE;
    }
  }
  ref_gemm (x, w, with_bias ? b : NULL, want, M, N, K, 1.0f);
  mm_graph_reset (g);
  MmTensor *y = mm_linear (g, mm_graph_input_f32 (g, 2, xs, x), tw,
      with_bias ? tb : NULL);
  gchar *what = g_strdup_printf ("linear %s%s M=%d N=%d K=%d bias=%d",
      f16 ? "f16" : "f32", packed ? " packed" : "", M, N, K, with_bias);
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

/* Strided batched GEMM with B shared by b_div batches; @pad adds unused
 * columns to every row of A, B and C (lda > K etc.). */
static gboolean
check_linear (MmEngine * e, MmGraph * g, gint M, gint N, gint K,
    gboolean f16, gboolean with_bias)
{
  return check_linear_full (e, g, M, N, K, f16, with_bias, FALSE);
}

/* A packed weight used as a batched B must fail with a message, not
 * compute garbage. */
static gboolean
check_packed_misuse (MmEngine * e, MmGraph * g)
{
  if (mm_gemm_get_provider (e) != MM_GEMM_OWN)
    return TRUE;
  float z[2 * 8 * 8] = { 0 };
  gint64 ws[2] = { 8, 8 }, as[3] = { 2, 8, 8 };
  MmTensor *w = mm_test_weight (e, 2, ws, z);
  gboolean ok = mm_gemm_pack_weight (e, w, NULL);
  mm_graph_reset (g);
  MmTensor *a = mm_graph_input_f32 (g, 3, as, z);
  MmTensor *c = mm_graph_input_f32 (g, 3, as, z);
  MmGemmShape s = { .M = 8, .N = 4, .K = 8, .batch = 2, .b_div = 2,
    .lda = 8, .ldb = 8, .ldc = 8, .stride_a = 64, .stride_b = 0,
    .stride_c = 64, .alpha = 1.0f
  };
  mm_gemm (g, a, w, NULL, c, &s);
  GError *err = NULL;
  ok &= !mm_graph_finish (g, &err) && strstr (err->message, "packed");
  if (!ok)
    g_printerr ("FAIL packed weight as batched B not reported\n");
  g_clear_error (&err);
  mm_tensor_free (w);
  return ok;
}

static gboolean
check_batched (MmEngine * e, MmGraph * g, gint batch, gint b_div, gint M,
    gint N, gint K, gint pad, gboolean f16)
{
  gint nb = (batch + b_div - 1) / b_div;
  gint lda = K + pad, ldb = K + pad, ldc = N + pad;
  gsize na = (gsize) batch * M * lda, nbb = (gsize) nb * N * ldb;
  gsize nc = (gsize) batch * M * ldc;
  float *a = mm_test_rand (na, 11, -1, 1), *b = mm_test_rand (nbb, 12, -1, 1);
  float *want = g_new0 (float, nc), *bias = mm_test_rand (N, 13, -1, 1);
  if (f16)
    for (gsize i = 0; i < nbb; i++)
      b[i] = mm_test_f16_to_f32 (mm_test_f32_to_f16 (b[i]));
  for (gint bt = 0; bt < batch; bt++)
    for (gint m = 0; m < M; m++)
      for (gint n = 0; n < N; n++) {
        const float *ar = a + ((gsize) bt * M + m) * lda;
        const float *br = b + ((gsize) (bt / b_div) * N + n) * ldb;
        double acc = 0;
        for (gint k = 0; k < K; k++)
          acc += (double) ar[k] * br[k];
        want[((gsize) bt * M + m) * ldc + n] = 0.5 * acc + bias[n];
      }
  gint64 as[3] = { batch, M, lda }, bsh[3] = { nb, N, ldb }, cs[3] =
      { batch, M, ldc }, bias_n = N;
  mm_graph_reset (g);
  MmTensor *ta = mm_graph_input_f32 (g, 3, as, a);
  MmTensor *tb;
  if (f16) {
    guint16 *h = g_new (guint16, nbb);
    for (gsize i = 0; i < nbb; i++)
      h[i] = mm_test_f32_to_f16 (b[i]);
    tb = mm_tensor_upload (e, MM_DTYPE_F16, 3, bsh, h, "b", NULL);
    g_free (h);
  } else {
    tb = mm_test_weight (e, 3, bsh, b);
  }
  MmTensor *tbias = mm_test_weight (e, 1, &bias_n, bias);
  MmTensor *tc = mm_graph_input_f32 (g, 3, cs, want);   /* pad columns kept */
  MmGemmShape s = { .M = M, .N = N, .K = K, .batch = batch, .b_div = b_div,
    .lda = lda, .ldb = ldb, .ldc = ldc, .stride_a = (gint64) M * lda,
    .stride_b = (gint64) N * ldb, .stride_c = (gint64) M * ldc, .alpha = 0.5f
  };
  /* C starts as the answer; overwrite the real columns with garbage so a
   * kernel that skips an element fails, while pad columns must survive */
  float *garbage = g_memdup2 (want, nc * sizeof (float));
  for (gint r = 0; r < batch * M; r++)
    for (gint n = 0; n < N; n++)
      garbage[(gsize) r * ldc + n] = 1e6f;
  GError *err = NULL;
  mm_engine_write (e, tc->buf, tc->offset, nc * sizeof (float), garbage, &err);
  g_assert_no_error (err);
  mm_gemm (g, ta, tb, tbias, tc, &s);
  gchar *what = g_strdup_printf ("batched gemm %s batch=%d b_div=%d M=%d "
      "N=%d K=%d pad=%d", f16 ? "f16" : "f32", batch, b_div, M, N, K, pad);
  gboolean ok = mm_test_check_tensor (g, what, tc, want, nc,
      1e-4f * (1 + K / 64), 1e-4f);
  g_free (what);
  mm_tensor_free (tb);
  mm_tensor_free (tbias);
  g_free (a);
  g_free (b);
  g_free (bias);
  g_free (want);
  g_free (garbage);
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
  /* GEMVs (fewer than 16 rows): x as the device takes it */
  float *xr = g_memdup2 (x, (gsize) M * K * sizeof (float));
  for (gint m = 0; M < 16 && m < M; m++)
    mm_test_gemv_act (e, xr + (gsize) m * K, K);
  ref_gemm (xr, w, b, want, M, N, K, 1.0f);
  g_free (xr);
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
  /* the row gather reads the same panels (tied embeddings) */
  const gint32 ids[4] = { N - 1, 0, N / 2, N - 1 };
  float *rows = g_new (float, 4 * (gsize) K);
  for (gint i = 0; i < 4; i++)
    memcpy (rows + (gsize) i * K, w + (gsize) ids[i] * K, K * sizeof (float));
  mm_graph_reset (g);
  MmTensor *gr = mm_get_rows (g, tw, ids, 4);
  what = g_strdup_printf ("get_rows %s N=%d K=%d", mm_dtype_name (dt), N, K);
  ok &= mm_test_check_tensor (g, what, gr, rows, 4 * (gsize) K, 1e-6f, 1e-6f);
  g_free (what);
  g_free (rows);
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
  /* dot form (M < 48): GEMV and small M; tiled (M >= 48): edges of the
   * 12 x 32 tile in M and N, K below and above the 16-wide vectors and
   * K > 256 (several K blocks) */
  const gint shapes[][3] = { {1, 1, 1}, {7, 13, 5}, {129, 257, 33},
  {1, 576, 576}, {3, 49, 17}, {4, 4, 16}, {64, 96, 768}, {2, 1000, 31},
  {17, 3, 300}, {1, 4099, 20}, {31, 70, 45}, {32, 32, 16}, {37, 45, 19},
  {100, 33, 300}, {61, 70, 513}, {48, 1, 7}, {97, 131, 1}, {49, 45, 19},
  {47, 45, 19}
  };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    for (gint f16 = 0; f16 < 2; f16++)
      for (gint bias = 0; bias < 2; bias++)
        ok &= check_linear (e, g, shapes[i][0], shapes[i][1], shapes[i][2],
            f16, bias);
  /* batch, b_div, M, N, K, pad, f16 */
  ok &= check_batched (e, g, 6, 3, 7, 9, 24, 0, FALSE);
  ok &= check_batched (e, g, 5, 1, 1, 13, 8, 0, FALSE);
  ok &= check_batched (e, g, 4, 2, 33, 33, 17, 0, FALSE);
  ok &= check_batched (e, g, 6, 3, 40, 35, 70, 3, FALSE);
  ok &= check_batched (e, g, 6, 3, 50, 35, 70, 3, FALSE);
  ok &= check_batched (e, g, 3, 3, 50, 64, 64, 1, TRUE);
  ok &= check_batched (e, g, 4, 2, 5, 21, 300, 2, TRUE);
  /* small blocks force several work-items per tile row, K blocks that end
   * mid-vector and partial-sum reloads on edge tiles */
  g_setenv ("MM_GEMM_BLOCK", "12,32,7", TRUE);
  ok &= check_linear (e, g, 49, 45, 19, FALSE, TRUE);
  ok &= check_linear (e, g, 61, 70, 513, TRUE, TRUE);
  ok &= check_batched (e, g, 6, 3, 50, 35, 70, 3, FALSE);
  ok &= check_linear_full (e, g, 13, 45, 19, FALSE, TRUE, TRUE);
  g_unsetenv ("MM_GEMM_BLOCK");
  /* weights packed at load time: GEMV (M < 4) and tiled paths */
  const gint packed[][3] = { {1, 1, 1}, {1, 576, 576}, {3, 49, 17},
  {1, 4099, 20}, {5, 70, 45}, {31, 33, 300}, {37, 45, 19}, {61, 70, 513}
  };
  for (guint i = 0; i < G_N_ELEMENTS (packed); i++)
    for (gint f16 = 0; f16 < 2; f16++)
      ok &= check_linear_full (e, g, packed[i][0], packed[i][1],
          packed[i][2], f16, TRUE, TRUE);
  ok &= check_packed_misuse (e, g);
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
