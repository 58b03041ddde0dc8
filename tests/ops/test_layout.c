/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* layout.cl: permute, transpose, concat, slices, copy into, row gather. */
#include "mm-test-util.h"

#include <string.h>

static gboolean
check_permute (MmGraph * g, const gint64 * in, gint n, const gint * perm)
{
  gint64 sh[4] = { 1, 1, 1, 1 }, st[4];
  for (gint i = 0; i < n; i++)
    sh[4 - n + i] = in[i];
  st[3] = 1;
  for (gint i = 2; i >= 0; i--)
    st[i] = st[i + 1] * sh[i + 1];
  gint p[4];
  for (gint i = 0; i < 4; i++)
    p[i] = i < 4 - n ? i : perm[i - (4 - n)] + 4 - n;
  gsize total = sh[0] * sh[1] * sh[2] * sh[3];
  float *x = mm_test_rand (total, n, -1, 1), *want = g_new (float, total);
  gsize o = 0;
  for (gint64 a = 0; a < sh[p[0]]; a++)
    for (gint64 b = 0; b < sh[p[1]]; b++)
      for (gint64 c = 0; c < sh[p[2]]; c++)
        for (gint64 d = 0; d < sh[p[3]]; d++)
          want[o++] = x[a * st[p[0]] + b * st[p[1]] + c * st[p[2]]
              + d * st[p[3]]];
  mm_graph_reset (g);
  MmTensor *y = mm_permute (g, mm_graph_input_f32 (g, n, in, x), perm);
  gboolean ok = mm_test_check_tensor (g, "permute", y, want, total, 0, 0);
  for (gint i = 0; ok && i < n; i++)
    if (y->shape[i] != in[perm[i]]) {
      g_printerr ("FAIL permute shape\n");
      ok = FALSE;
    }
  g_free (x);
  g_free (want);
  return ok;
}

static gboolean
check_concat_slice (MmGraph * g, gint64 r1, gint64 r2, gint64 c1, gint64 c2)
{
  float *a = mm_test_rand (r1 * c1, 1, -1, 1);
  float *b = mm_test_rand (r2 * c1, 2, -1, 1);
  float *c = mm_test_rand (r1 * c2, 3, -1, 1);
  gsize nrow = (r1 + r2) * c1, ncol = r1 * (c1 + c2);
  float *want_r = g_new (float, nrow), *want_c = g_new (float, ncol);
  memcpy (want_r, a, r1 * c1 * 4);
  memcpy (want_r + r1 * c1, b, r2 * c1 * 4);
  for (gint64 i = 0; i < r1; i++) {
    memcpy (want_c + i * (c1 + c2), a + i * c1, c1 * 4);
    memcpy (want_c + i * (c1 + c2) + c1, c + i * c2, c2 * 4);
  }
  gint64 sa[2] = { r1, c1 }, sb[2] = { r2, c1 }, sc[2] = { r1, c2 };
  mm_graph_reset (g);
  MmTensor *ta = mm_graph_input_f32 (g, 2, sa, a);
  MmTensor *tb = mm_graph_input_f32 (g, 2, sb, b);
  MmTensor *tc = mm_graph_input_f32 (g, 2, sc, c);
  MmTensor *yr = mm_concat (g, ta, tb, FALSE);
  MmTensor *yc = mm_concat (g, ta, tc, TRUE);
  MmTensor *sr = mm_slice_rows (g, yr, r1, r2);         /* == b */
  MmTensor *scol = mm_slice_cols (g, yc, c1, c2);       /* == c */
  MmTensor *dst = mm_graph_tensor_2d (g, r1 + r2, c1);
  mm_copy_rows_into (g, dst, 0, ta);
  mm_copy_rows_into (g, dst, r1, mm_copy (g, tb));
  gboolean ok = mm_test_check_tensor (g, "concat rows", yr, want_r, nrow, 0, 0)
      && mm_test_check_tensor (g, "concat cols", yc, want_c, ncol, 0, 0)
      && mm_test_check_tensor (g, "slice rows", sr, b, r2 * c1, 0, 0)
      && mm_test_check_tensor (g, "slice cols", scol, c, r1 * c2, 0, 0)
      && mm_test_check_tensor (g, "copy_rows_into", dst, want_r, nrow, 0, 0);
  mm_graph_reset (g);
  mm_slice_rows (g, mm_graph_input_f32 (g, 2, sa, a), r1, 1);
  if (mm_graph_finish (g, NULL)) {
    g_printerr ("FAIL out-of-range slice accepted\n");
    ok = FALSE;
  }
  g_free (a);
  g_free (b);
  g_free (c);
  g_free (want_r);
  g_free (want_c);
  return ok;
}

static gboolean
check_get_rows (MmEngine * e, MmGraph * g)
{
  gint64 ts[2] = { 11, 13 };
  float *t = mm_test_rand (11 * 13, 9, -1, 1);
  guint16 h[11 * 13];
  for (gint i = 0; i < 11 * 13; i++) {
    h[i] = mm_test_f32_to_f16 (t[i]);
    t[i] = mm_test_f16_to_f32 (h[i]);
  }
  MmTensor *t32 = mm_test_weight (e, 2, ts, t);
  MmTensor *t16 = mm_tensor_upload (e, MM_DTYPE_F16, 2, ts, h, "t16", NULL);
  const gint32 ids[5] = { 10, 0, 3, 3, 7 };
  float want[5 * 13];
  for (gint i = 0; i < 5; i++)
    memcpy (want + i * 13, t + ids[i] * 13, 13 * 4);
  mm_graph_reset (g);
  MmTensor *y32 = mm_get_rows (g, t32, ids, 5);
  MmTensor *y16 = mm_get_rows (g, t16, ids, 5);
  gboolean ok = mm_test_check_tensor (g, "get_rows f32", y32, want, 65, 0, 0)
      && mm_test_check_tensor (g, "get_rows f16", y16, want, 65, 0, 0);
  const gint32 bad = 11;
  mm_graph_reset (g);
  mm_get_rows (g, t32, &bad, 1);
  if (mm_graph_finish (g, NULL)) {
    g_printerr ("FAIL get_rows accepted id 11 of 11\n");
    ok = FALSE;
  }
  mm_tensor_free (t32);
  mm_tensor_free (t16);
  g_free (t);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  const gint64 s2[2] = { 7, 13 }, s3[3] = { 5, 3, 11 }, s4[4] = { 2, 3, 5, 7 };
  const gint p2[2] = { 1, 0 }, p3a[3] = { 1, 0, 2 }, p3b[3] = { 1, 2, 0 };
  const gint p3c[3] = { 2, 0, 1 }, p4[4] = { 3, 1, 0, 2 };
  ok &= check_permute (g, s2, 2, p2);
  ok &= check_permute (g, s3, 3, p3a);
  ok &= check_permute (g, s3, 3, p3b);
  ok &= check_permute (g, s3, 3, p3c);
  ok &= check_permute (g, s4, 4, p4);
  ok &= check_concat_slice (g, 1, 1, 1, 1);
  ok &= check_concat_slice (g, 7, 13, 5, 3);
  ok &= check_concat_slice (g, 129, 64, 257, 31);
  ok &= check_get_rows (e, g);
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
