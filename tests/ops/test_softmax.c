/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* softmax.cl: scaled row softmax with additive mask and causal limit. */
#include "mm-test-util.h"

#include <math.h>

static void
ref_softmax (const float *x, const float *mask, float *y, gint64 batch,
    gint64 rows, gint64 cols, float scale, gint causal)
{
  for (gint64 bt = 0; bt < batch; bt++)
    for (gint64 r = 0; r < rows; r++) {
      const float *xr = x + (bt * rows + r) * cols;
      float *yr = y + (bt * rows + r) * cols;
      gint64 n = causal >= 0 ? MIN (cols, r + causal + 1) : cols;
      double mx = -INFINITY, sum = 0;
      for (gint64 j = 0; j < n; j++)
        mx = fmax (mx, xr[j] * scale + (mask ? mask[r * cols + j] : 0));
      for (gint64 j = 0; j < cols; j++) {
        double v = j < n ?
            exp (xr[j] * scale + (mask ? mask[r * cols + j] : 0) - mx) : 0;
        yr[j] = v;
        sum += v;
      }
      for (gint64 j = 0; j < cols; j++)
        yr[j] /= sum;
    }
}

static gboolean
check (MmGraph * g, gint64 batch, gint64 rows, gint64 cols, gboolean masked,
    gint causal)
{
  gsize n = batch * rows * cols;
  float *x = mm_test_rand (n, rows * 3 + cols, -8, 8);
  float *m = mm_test_rand (rows * cols, 5, -4, 0);
  float *want = g_new (float, n);
  ref_softmax (x, masked ? m : NULL, want, batch, rows, cols, 0.7f, causal);
  gint64 s[3] = { batch, rows, cols }, sm[2] = { rows, cols };
  mm_graph_reset (g);
  MmTensor *tm = masked ? mm_graph_input_f32 (g, 2, sm, m) : NULL;
  MmTensor *y = mm_softmax (g, mm_graph_input_f32 (g, 3, s, x), tm, 0.7f,
      causal);
  gchar *what = g_strdup_printf ("softmax %" G_GINT64_FORMAT "x%"
      G_GINT64_FORMAT "x%" G_GINT64_FORMAT " mask %d causal %d", batch, rows,
      cols, masked, causal);
  gboolean ok = mm_test_check_tensor (g, what, y, want, n, 1e-6f, 1e-5f);
  /* unnormalised rows times the returned 1 / sums */
  MmTensor *inv;
  mm_graph_reset (g);
  tm = masked ? mm_graph_input_f32 (g, 2, sm, m) : NULL;
  y = mm_softmax_unnormalised (g, mm_graph_input_f32 (g, 3, s, x), tm, 0.7f,
      causal, &inv);
  float *u = g_new (float, n), *iv = g_new (float, batch * rows);
  if (mm_graph_finish (g, NULL) && mm_tensor_read_f32 (mm_graph_engine (g), y,
          u, NULL) && mm_tensor_read_f32 (mm_graph_engine (g), inv, iv, NULL)) {
    for (gsize i = 0; i < n; i++)
      u[i] *= iv[i / cols];
    ok &= mm_test_close (what, u, want, n, 1e-6f, 1e-5f);
  } else {
    g_printerr ("FAIL %s: unnormalised run failed\n", what);
    ok = FALSE;
  }
  g_free (u);
  g_free (iv);
  g_free (what);
  g_free (x);
  g_free (m);
  g_free (want);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  const gint64 shapes[][3] = { {1, 1, 1}, {1, 7, 13}, {3, 129, 257},
  {5, 1, 1500}, {2, 13, 13}
  };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    for (gint masked = 0; masked < 2; masked++)
      for (gint causal = -1; causal < 3; causal += 3) {
        ok &= check (g, shapes[i][0], shapes[i][1], shapes[i][2], masked,
            causal);
      }
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
