/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* norm.cl: layer norm (with/without affine) and RMS norm vs plain C. */
#include "mm-test-util.h"

#include <math.h>

static void
ref_layer_norm (const float *x, const float *w, const float *b, float *y,
    gint64 rows, gint64 cols, float eps)
{
  for (gint64 r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mean = 0, var = 0;
    for (gint64 i = 0; i < cols; i++)
      mean += xr[i];
    mean /= cols;
    for (gint64 i = 0; i < cols; i++)
      var += (xr[i] - mean) * (xr[i] - mean);
    var /= cols;
    for (gint64 i = 0; i < cols; i++)
      y[r * cols + i] = (xr[i] - mean) / sqrt (var + eps) * (w ? w[i] : 1)
          + (b ? b[i] : 0);
  }
}

static void
ref_rms_norm (const float *x, const float *w, float *y, gint64 rows,
    gint64 cols, float eps)
{
  for (gint64 r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double ss = 0;
    for (gint64 i = 0; i < cols; i++)
      ss += (double) xr[i] * xr[i];
    double inv = 1.0 / sqrt (ss / cols + eps);
    for (gint64 i = 0; i < cols; i++)
      y[r * cols + i] = xr[i] * inv * (w ? w[i] : 1);
  }
}

static gboolean
check (MmEngine * e, MmGraph * g, gint64 rows, gint64 cols, gboolean affine)
{
  gsize n = rows * cols;
  float *x = mm_test_rand (n, rows + cols, -3, 5);      /* non-zero mean */
  float *w = mm_test_rand (cols, 7, 0.5f, 1.5f);
  float *b = mm_test_rand (cols, 8, -1, 1);
  float *ln = g_new (float, n), *rms = g_new (float, n);
  const float eps = 1e-5f;
  ref_layer_norm (x, affine ? w : NULL, affine ? b : NULL, ln, rows, cols, eps);
  ref_rms_norm (x, affine ? w : NULL, rms, rows, cols, eps);
  MmTensor *tw = mm_test_weight (e, 1, &cols, w);
  MmTensor *tb = mm_test_weight (e, 1, &cols, b);
  gint64 s[2] = { rows, cols };
  mm_graph_reset (g);
  MmTensor *tx = mm_graph_input_f32 (g, 2, s, x);
  MmTensor *yl = mm_layer_norm (g, tx, affine ? tw : NULL, affine ? tb : NULL,
      eps);
  MmTensor *yr = mm_rms_norm (g, tx, affine ? tw : NULL, eps);
  /* cols == 1 makes layer norm output exactly b: atol covers rounding */
  gboolean ok = mm_test_check_tensor (g, "layer_norm", yl, ln, n, 1e-4f, 1e-4f)
      && mm_test_check_tensor (g, "rms_norm", yr, rms, n, 1e-5f, 1e-5f);
  mm_tensor_free (tw);
  mm_tensor_free (tb);
  g_free (x);
  g_free (w);
  g_free (b);
  g_free (ln);
  g_free (rms);
  return ok;
}

static gboolean
check_bad_weight (MmEngine * e, MmGraph * g)
{
  float x[14] = { 0 };
  gint64 s[2] = { 2, 7 }, ws = 6;
  MmTensor *w = mm_test_weight (e, 1, &ws, x);
  mm_graph_reset (g);
  mm_rms_norm (g, mm_graph_input_f32 (g, 2, s, x), w, 1e-6f);
  GError *err = NULL;
  gboolean ok = !mm_graph_finish (g, &err);
  if (!ok)
    g_printerr ("FAIL rms_norm accepted a [6] weight for 7 columns\n");
  g_clear_error (&err);
  mm_tensor_free (w);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  const gint64 shapes[][2] = { {1, 1}, {7, 13}, {129, 257}, {5, 1024},
  {3, 17}, {1, 576}
  };
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    ok &= check (e, g, shapes[i][0], shapes[i][1], TRUE);
    ok &= check (e, g, shapes[i][0], shapes[i][1], FALSE);
  }
  ok &= check_bad_weight (e, g);
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
