/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rope.cl: normal and neox rotary embeddings, partial rotation, offsets. */
#include "mm-test-util.h"

#include <math.h>

static void
ref_rope (const float *x, float *y, gint64 n_tok, gint64 n_head, gint64 hd,
    gint n_rot, gint pos0, float base, float fs, gboolean neox)
{
  for (gint64 t = 0; t < n_tok; t++)
    for (gint64 h = 0; h < n_head; h++) {
      const float *xr = x + (t * n_head + h) * hd;
      float *yr = y + (t * n_head + h) * hd;
      for (gint64 d = 0; d < hd; d++)
        yr[d] = xr[d];
      for (gint i = 0; i < n_rot / 2; i++) {
        float theta = (pos0 + t) * powf (base, -2.0f * i / n_rot) * fs;
        gint a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        yr[a] = xr[a] * cosf (theta) - xr[b] * sinf (theta);
        yr[b] = xr[a] * sinf (theta) + xr[b] * cosf (theta);
      }
    }
}

static gboolean
check (MmGraph * g, gint64 n_tok, gint64 n_head, gint64 hd, gint n_rot,
    gint pos0, gboolean neox)
{
  gsize n = n_tok * n_head * hd;
  float *x = mm_test_rand (n, n_tok + hd, -1, 1), *want = g_new (float, n);
  ref_rope (x, want, n_tok, n_head, hd, n_rot, pos0, 10000.0f, 1.0f, neox);
  gint64 s[3] = { n_tok, n_head, hd };
  mm_graph_reset (g);
  MmTensor *y = mm_rope (g, mm_graph_input_f32 (g, 3, s, x), pos0, n_rot,
      10000.0f, 1.0f, neox ? MM_ROPE_NEOX : MM_ROPE_NORMAL);
  /* positions up to ~300 rad: float argument reduction differs slightly */
  gboolean ok = mm_test_check_tensor (g, neox ? "rope neox" : "rope normal",
      y, want, n, 2e-4f, 1e-4f);
  g_free (x);
  g_free (want);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  for (gint neox = 0; neox < 2; neox++) {
    ok &= check (g, 1, 1, 2, 2, 0, neox);
    ok &= check (g, 7, 3, 12, 12, 5, neox);
    ok &= check (g, 13, 5, 64, 64, 300, neox);
    ok &= check (g, 9, 2, 10, 6, 17, neox);     /* partial rotation */
  }
  /* odd n_rot is invalid */
  float x[6] = { 0 };
  gint64 s[3] = { 1, 1, 6 };
  mm_graph_reset (g);
  mm_rope (g, mm_graph_input_f32 (g, 3, s, x), 0, 5, 1e4f, 1, MM_ROPE_NEOX);
  if (mm_graph_finish (g, NULL)) {
    g_printerr ("FAIL rope accepted n_rot 5\n");
    ok = FALSE;
  }
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
