/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* elementwise.cl: add/mul (with broadcast), scale, activations vs plain C. */
#include "mm-test-util.h"

#include <math.h>

typedef MmTensor *(*UnaryOp) (MmGraph *, MmTensor *);

static float
ref_gelu (float v)
{
  return 0.5f * v * (1.0f + erff (v / sqrtf (2.0f)));
}

static float
ref_gelu_tanh (float v)
{
  return 0.5f * v * (1.0f + tanhf (0.7978845608f * (v + 0.044715f * v * v * v)));
}

static float
ref_quick_gelu (float v)
{
  return v / (1.0f + expf (-1.702f * v));
}

static float
ref_silu (float v)
{
  return v / (1.0f + expf (-v));
}

static gboolean
check_unary (MmGraph * g, const gchar * name, UnaryOp op, float (*ref) (float),
    gint64 rows, gint64 cols)
{
  gsize n = rows * cols;
  float *x = mm_test_rand (n, rows * 31 + cols, -6.0f, 6.0f);
  float *want = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    want[i] = ref (x[i]);
  gint64 s[2] = { rows, cols };
  mm_graph_reset (g);
  MmTensor *y = op (g, mm_graph_input_f32 (g, 2, s, x));
  gboolean ok = mm_test_check_tensor (g, name, y, want, n, 1e-5f, 1e-5f);
  g_free (x);
  g_free (want);
  return ok;
}

static gboolean
check_binary (MmGraph * g, gint64 rows, gint64 cols, gboolean bcast)
{
  gsize n = rows * cols, nb = bcast ? (gsize) cols : n;
  float *a = mm_test_rand (n, 1, -2, 2), *b = mm_test_rand (nb, 2, -2, 2);
  float *sum = g_new (float, n), *prod = g_new (float, n);
  float *sc = g_new (float, n);
  for (gsize i = 0; i < n; i++) {
    sum[i] = a[i] + b[i % nb];
    prod[i] = a[i] * b[i % nb];
    sc[i] = a[i] * -0.37f;
  }
  gint64 s[2] = { rows, cols }, sb[2] = { bcast ? 1 : rows, cols };
  mm_graph_reset (g);
  MmTensor *ta = mm_graph_input_f32 (g, 2, s, a);
  MmTensor *tb = mm_graph_input_f32 (g, 2, sb, b);
  MmTensor *ys = mm_add (g, ta, tb), *yp = mm_mul (g, ta, tb);
  MmTensor *yc = mm_scale (g, ta, -0.37f);
  gboolean ok = mm_test_check_tensor (g, "add", ys, sum, n, 0, 1e-6f)
      && mm_test_check_tensor (g, "mul", yp, prod, n, 0, 1e-6f)
      && mm_test_check_tensor (g, "scale", yc, sc, n, 0, 1e-6f);
  g_free (a);
  g_free (b);
  g_free (sum);
  g_free (prod);
  g_free (sc);
  return ok;
}

static gboolean
check_swiglu (MmGraph * g, gint64 n)
{
  float *a = mm_test_rand (n, 3, -5, 5), *b = mm_test_rand (n, 4, -2, 2);
  float *want = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    want[i] = ref_silu (a[i]) * b[i];
  mm_graph_reset (g);
  MmTensor *y = mm_swiglu (g, mm_graph_input_f32 (g, 1, &n, a),
      mm_graph_input_f32 (g, 1, &n, b));
  gboolean ok = mm_test_check_tensor (g, "swiglu", y, want, n, 1e-6f, 1e-5f);
  g_free (a);
  g_free (b);
  g_free (want);
  return ok;
}

/* A broadcast that does not divide must fail cleanly, and the graph's
 * sticky error must make later ops no-ops. */
static gboolean
check_bad_broadcast (MmGraph * g)
{
  float x[21] = { 0 };
  gint64 s[2] = { 3, 7 }, sb = 5;
  mm_graph_reset (g);
  MmTensor *y = mm_add (g, mm_graph_input_f32 (g, 2, s, x),
      mm_graph_input_f32 (g, 1, &sb, x));
  y = mm_gelu (g, y);
  GError *err = NULL;
  gboolean failed = !mm_graph_finish (g, &err) && y->buf == NULL
      && g_strstr_len (err->message, -1, "add") != NULL;
  if (!failed)
    g_printerr ("FAIL bad broadcast not reported\n");
  g_clear_error (&err);
  return failed;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  const gint64 shapes[][2] = { {1, 1}, {7, 13}, {129, 257}, {3, 1000} };
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    gint64 r = shapes[i][0], c = shapes[i][1];
    ok &= check_unary (g, "gelu", mm_gelu, ref_gelu, r, c);
    ok &= check_unary (g, "gelu_tanh", mm_gelu_tanh, ref_gelu_tanh, r, c);
    ok &= check_unary (g, "quick_gelu", mm_quick_gelu, ref_quick_gelu, r, c);
    ok &= check_unary (g, "silu", mm_silu, ref_silu, r, c);
    ok &= check_binary (g, r, c, FALSE);
    ok &= check_binary (g, r, c, TRUE);
    ok &= check_swiglu (g, r * c);
  }
  ok &= check_bad_broadcast (g);
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
