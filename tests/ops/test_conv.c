/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conv.cl + GEMM: conv2d (patch embedding and padded 3x3) and conv1d
 * (Whisper stem: k3 pad1, stride 1 and 2; from [C, L] and from rows
 * [L, C]; GELU in the GEMM) vs direct convolution. */
#include "mm-test-util.h"

#include <math.h>

static gboolean
check_conv2d (MmEngine * e, MmGraph * g, gint C, gint H, gint W, gint OC,
    gint kh, gint kw, gint stride, gint pad)
{
  gint OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  float *x = mm_test_rand ((gsize) C * H * W, H, -1, 1);
  float *w = mm_test_rand ((gsize) OC * C * kh * kw, OC, -1, 1);
  float *b = mm_test_rand (OC, 5, -1, 1);
  float *want = g_new (float, (gsize) OH * OW * OC);
  for (gint oy = 0; oy < OH; oy++)
    for (gint ox = 0; ox < OW; ox++)
      for (gint o = 0; o < OC; o++) {
        double s = b[o];
        for (gint c = 0; c < C; c++)
          for (gint ky = 0; ky < kh; ky++)
            for (gint kx = 0; kx < kw; kx++) {
              gint iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                s += x[(c * H + iy) * W + ix]
                    * w[((o * C + c) * kh + ky) * kw + kx];
            }
        want[(oy * OW + ox) * OC + o] = s;
      }
  gint64 xs[3] = { C, H, W }, ws[4] = { OC, C, kh, kw }, bs = OC;
  MmTensor *tw = mm_test_weight (e, 4, ws, w), *tb = mm_test_weight (e, 1, &bs,
      b);
  mm_graph_reset (g);
  MmTensor *y = mm_conv2d (g, mm_graph_input_f32 (g, 3, xs, x), tw, tb, kh, kw,
      stride, pad);
  gboolean ok = mm_test_check_tensor (g, "conv2d", y, want,
      (gsize) OH * OW * OC, 1e-4f, 1e-4f);
  mm_tensor_free (tw);
  mm_tensor_free (tb);
  g_free (x);
  g_free (w);
  g_free (b);
  g_free (want);
  return ok;
}

static gboolean
check_conv1d_ex (MmEngine * e, MmGraph * g, gint C, gint L, gint OC, gint kw,
    gint stride, gint pad, gboolean rows, gboolean gelu)
{
  gint OL = (L + 2 * pad - kw) / stride + 1;
  float *x = mm_test_rand ((gsize) C * L, L, -1, 1);
  float *w = mm_test_rand ((gsize) OC * C * kw, OC, -1, 1);
  float *b = mm_test_rand (OC, 6, -1, 1);
  float *want = g_new (float, (gsize) OL * OC);
  for (gint p = 0; p < OL; p++)
    for (gint o = 0; o < OC; o++) {
      double s = b[o];
      for (gint c = 0; c < C; c++)
        for (gint k = 0; k < kw; k++) {
          gint i = p * stride + k - pad;
          if (i >= 0 && i < L)
            s += x[c * L + i] * w[(o * C + c) * kw + k];
        }
      want[p * OC + o] = gelu ? 0.5 * s * (1 + erf (s / sqrt (2.0))) : s;
    }
  /* the same x as rows [L, C] */
  float *xr = g_new (float, (gsize) C * L);
  for (gint c = 0; c < C; c++)
    for (gint i = 0; i < L; i++)
      xr[(gsize) i * C + c] = x[(gsize) c * L + i];
  gint64 xs[2] = { C, L }, xrs[2] = { L, C }, ws[3] = { OC, C, kw };
  gint64 bs = OC;
  MmTensor *tw = mm_test_weight (e, 3, ws, w), *tb = mm_test_weight (e, 1, &bs,
      b);
  mm_graph_reset (g);
  MmTensor *y = rows || gelu ? mm_conv1d_ex (g, mm_graph_input_f32 (g, 2,
          rows ? xrs : xs, rows ? xr : x), rows, tw, tb, kw, stride, pad,
      gelu ? MM_LINEAR_ACT_GELU : MM_LINEAR_ACT_NONE) : mm_conv1d (g,
      mm_graph_input_f32 (g, 2, xs, x), tw, tb, kw, stride, pad);
  gchar *what = g_strdup_printf ("conv1d C=%d L=%d OC=%d k=%d s=%d p=%d "
      "rows=%d gelu=%d", C, L, OC, kw, stride, pad, rows, gelu);
  gboolean ok = mm_test_check_tensor (g, what, y, want, (gsize) OL * OC,
      1e-4f, 1e-4f);
  g_free (what);
  g_free (xr);
  mm_tensor_free (tw);
  mm_tensor_free (tb);
  g_free (x);
  g_free (w);
  g_free (b);
  g_free (want);
  return ok;
}

static gboolean
check_conv1d (MmEngine * e, MmGraph * g, gint C, gint L, gint OC, gint kw,
    gint stride, gint pad)
{
  gboolean ok = TRUE;
  for (gint v = 0; v < 4; v++)
    ok &= check_conv1d_ex (e, g, C, L, OC, kw, stride, pad, v & 1, v >> 1);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  ok &= check_conv2d (e, g, 3, 28, 21, 10, 7, 7, 7, 0);   /* patches */
  ok &= check_conv2d (e, g, 3, 32, 32, 16, 16, 16, 16, 0);
  ok &= check_conv2d (e, g, 2, 9, 11, 5, 3, 3, 1, 1);     /* padded */
  ok &= check_conv2d (e, g, 1, 1, 1, 1, 1, 1, 1, 0);
  ok &= check_conv1d (e, g, 80, 101, 24, 3, 1, 1);        /* whisper conv1 */
  ok &= check_conv1d (e, g, 24, 101, 24, 3, 2, 1);        /* whisper conv2 */
  ok &= check_conv1d (e, g, 1, 1, 1, 1, 1, 0);
  ok &= check_conv1d (e, g, 7, 130, 37, 3, 2, 1);       /* GELU in the GEMM */
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
