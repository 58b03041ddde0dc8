/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dequantising kernels against the plain-C reference, on odd shapes and on
 * views that start at a row other than 0.
 * Tolerance: bit-exact for F16, BF16, Q8_0 and Q4_0 (one conversion or one
 * multiplication); Q4_1 max-abs 1e-5 (the device may fuse q * d + m, and
 * |q * d| + |m| <= 32 here).  Without an OpenCL device: exit 77. */
#include "mm-dequant.h"
#include "mm-test-writers.h"

#include <math.h>
#include <string.h>

static MmEngine *engine;

/* ---- host reference ---- */

static void
test_half_host (void)
{
  for (guint32 h = 0; h < 0x10000; h++) {
    float f = mm_f16_to_f32 ((guint16) h);
    if (isnan (f))
      g_assert_true (isnan (mm_f16_to_f32 (mm_f32_to_f16 (f))));
    else
      g_assert_cmpuint (mm_f32_to_f16 (f), ==, h);
  }
  g_assert_cmpfloat (mm_f16_to_f32 (0x3c00), ==, 1.0f);
  g_assert_cmpfloat (mm_f16_to_f32 (0xc000), ==, -2.0f);
  g_assert_cmpfloat (mm_f16_to_f32 (0x7bff), ==, 65504.0f);
  g_assert_cmpfloat (mm_f16_to_f32 (0x0001), ==, ldexpf (1.0f, -24));
  g_assert_true (isinf (mm_f16_to_f32 (0x7c00)));
  /* rounding: ties to even, overflow to inf, underflow to zero */
  g_assert_cmpuint (mm_f32_to_f16 (1.0f + ldexpf (1.0f, -11)), ==, 0x3c00);
  g_assert_cmpuint (mm_f32_to_f16 (1.0f + 3 * ldexpf (1.0f, -11)), ==, 0x3c02);
  g_assert_cmpuint (mm_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmpuint (mm_f32_to_f16 (-1e10f), ==, 0xfc00);
  g_assert_cmpuint (mm_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmpuint (mm_f32_to_f16 (ldexpf (1.0f, -25)), ==, 0x0000);
  g_assert_cmpuint (mm_f32_to_f16 (ldexpf (1.5f, -25)), ==, 0x0001);
  g_assert_cmpuint (mm_f32_to_f16 (-ldexpf (1.0f, -30)), ==, 0x8000);
  g_assert_cmpfloat (mm_bf16_to_f32 (0x3f80), ==, 1.0f);
  g_assert_cmpfloat (mm_bf16_to_f32 (0xc040), ==, -3.0f);
}

/* Hand-made blocks pin the llama.cpp layouts down. */
static void
test_layouts_host (void)
{
  guint8 q8[34], q40[18], q41[20];
  float y[32];
  guint16 h = mm_f32_to_f16 (0.5f);
  memcpy (q8, &h, 2);
  for (gint j = 0; j < 32; j++)
    q8[2 + j] = (guint8) (gint8) (j - 16);
  g_assert_true (mm_dequantize_host (MM_DTYPE_Q8_0, q8, 32, y));
  for (gint j = 0; j < 32; j++)
    g_assert_cmpfloat (y[j], ==, (j - 16) * 0.5f);

  h = mm_f32_to_f16 (2.0f);
  memcpy (q40, &h, 2);
  for (gint j = 0; j < 16; j++)
    q40[2 + j] = (guint8) (j | ((15 - j) << 4));
  g_assert_true (mm_dequantize_host (MM_DTYPE_Q4_0, q40, 32, y));
  for (gint j = 0; j < 16; j++) {
    g_assert_cmpfloat (y[j], ==, (j - 8) * 2.0f);
    g_assert_cmpfloat (y[16 + j], ==, (15 - j - 8) * 2.0f);
  }

  h = mm_f32_to_f16 (1.0f);
  memcpy (q41, &h, 2);
  h = mm_f32_to_f16 (-3.0f);
  memcpy (q41 + 2, &h, 2);
  memcpy (q41 + 4, q40 + 2, 16);
  g_assert_true (mm_dequantize_host (MM_DTYPE_Q4_1, q41, 32, y));
  for (gint j = 0; j < 16; j++) {
    g_assert_cmpfloat (y[j], ==, j - 3.0f);
    g_assert_cmpfloat (y[16 + j], ==, 15 - j - 3.0f);
  }
  g_assert_false (mm_dequantize_host (MM_DTYPE_Q8_0, q8, 31, y));
  g_assert_false (mm_dequantize_host (MM_DTYPE_I32, q8, 4, y));
}

/* ---- device ---- */

/* F16 / BF16 specials at the front: inf, -inf, nan, subnormal, -0. */
static void
put_specials (MmDType dt, guint8 * data, gint64 n)
{
  static const guint16 f16[] = { 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x8000,
    0x03ff
  };
  static const guint16 bf16[] = { 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8000,
    0x007f
  };
  if (dt != MM_DTYPE_F16 && dt != MM_DTYPE_BF16)
    return;
  for (gint64 i = 0; i < MIN (n, 6); i++)
    memcpy (data + 2 * i, dt == MM_DTYPE_F16 ? &f16[i] : &bf16[i], 2);
}

static void
compare (MmDType dt, const float *got, const float *want, gint64 n,
    const gchar * what)
{
  for (gint64 i = 0; i < n; i++) {
    gboolean ok;
    if (dt == MM_DTYPE_Q4_1)
      ok = fabsf (got[i] - want[i]) <= 1e-5f;
    else
      ok = memcmp (&got[i], &want[i], 4) == 0
          || (isnan (got[i]) && isnan (want[i]));
    if (!ok)
      g_error ("%s: element %" G_GINT64_FORMAT ": got %.9g, want %.9g", what,
          i, got[i], want[i]);
  }
}

/* One shape, whole tensor and (rows > 1) the view from row 1 on. */
static void
run_case (MmDType dt, gint64 rows, gint64 cols, GRand * r)
{
  gint64 shape[2] = { rows, cols }, n = rows * cols;
  g_autofree guint8 *data = NULL;
  mmt_random_tensor (dt, n, r, &data);
  put_specials (dt, data, n);
  GError *err = NULL;
  g_autoptr (MmTensor) t = mm_tensor_upload (engine, dt, 2, shape, data,
      "dequant input", &err);
  g_assert_no_error (err);
  g_autoptr (MmGraph) g = mm_graph_new (engine);
  g_autofree float *got = g_new (float, n);
  g_autofree float *want = g_new (float, n);
  gsize row_bytes = mm_dtype_size (dt, cols);
  for (gint64 r0 = 0; r0 < MIN (rows, 2); r0++) {
    MmTensor in = *t;
    in.owns_buf = FALSE;
    in.offset = r0 * row_bytes;
    in.shape[0] = rows - r0;
    gint64 m = (rows - r0) * cols;
    mm_graph_reset (g);
    MmTensor *y = mm_dequantize (g, &in);
    g_assert_true (mm_graph_finish (g, &err));
    g_assert_no_error (err);
    g_assert_cmpint (y->dtype, ==, MM_DTYPE_F32);
    g_assert_cmpint (y->shape[0], ==, rows - r0);
    g_assert_true (mm_tensor_read_f32 (engine, y, got, &err));
    g_assert_true (mm_dequantize_host (dt, data + in.offset, m, want));
    g_autofree gchar *what = g_strdup_printf ("%s [%" G_GINT64_FORMAT ", %"
        G_GINT64_FORMAT "] from row %" G_GINT64_FORMAT, mm_dtype_name (dt),
        rows, cols, r0);
    compare (dt, got, want, m, what);
  }
}

static void
test_device (gconstpointer p)
{
  MmDType dt = GPOINTER_TO_INT (p);
  static const gint64 rows[] = { 1, 7, 129 };
  static const gint64 qcols[] = { 32, 96, 160 }, fcols[] = { 1, 33, 257 };
  const gint64 *cols = mm_dtype_block_elems (dt) > 1 ? qcols : fcols;
  GRand *r = g_rand_new_with_seed (dt + 1);
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    for (guint j = 0; j < 3; j++)
      run_case (dt, rows[i], cols[j], r);
  g_rand_free (r);
}

static void
test_device_errors (void)
{
  g_autoptr (MmGraph) g = mm_graph_new (engine);
  gint64 shape[1] = { 4 };
  gint32 ints[4] = { 1, 2, 3, 4 };
  GError *err = NULL;
  g_autoptr (MmTensor) t = mm_tensor_upload (engine, MM_DTYPE_I32, 1, shape,
      ints, "ints", &err);
  g_assert_no_error (err);
  MmTensor *y = mm_dequantize (g, t);
  g_assert_null (y->buf);
  g_assert_false (mm_graph_finish (g, &err));
  g_assert_nonnull (strstr (err->message, "dequantize"));
  g_clear_error (&err);
  /* F32 passes through untouched */
  mm_graph_reset (g);
  float f[4] = { 1, 2, 3, 4 };
  MmTensor *x = mm_graph_input_f32 (g, 1, shape, f);
  g_assert_true (mm_dequantize (g, x) == x);
  g_assert_true (mm_graph_finish (g, &err));
}

int
main (int argc, char **argv)
{
  GError *err = NULL;
  g_test_init (&argc, &argv, NULL);
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL) {
    g_clear_error (&err);
    return 77;
  }
  g_test_add_func ("/dequant/half-host", test_half_host);
  g_test_add_func ("/dequant/layouts-host", test_layouts_host);
  g_test_add_data_func ("/dequant/device/f16",
      GINT_TO_POINTER (MM_DTYPE_F16), test_device);
  g_test_add_data_func ("/dequant/device/bf16",
      GINT_TO_POINTER (MM_DTYPE_BF16), test_device);
  g_test_add_data_func ("/dequant/device/q8_0",
      GINT_TO_POINTER (MM_DTYPE_Q8_0), test_device);
  g_test_add_data_func ("/dequant/device/q4_0",
      GINT_TO_POINTER (MM_DTYPE_Q4_0), test_device);
  g_test_add_data_func ("/dequant/device/q4_1",
      GINT_TO_POINTER (MM_DTYPE_Q4_1), test_device);
  g_test_add_func ("/dequant/device-errors", test_device_errors);
  gint rc = g_test_run ();
  mm_engine_unref (engine);
  return rc;
}
