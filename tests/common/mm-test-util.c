/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-test-util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MmEngine *
mm_test_engine (void)
{
  GError *err = NULL;
  MmEngine *e = mm_engine_get (NULL, &err);
  if (e == NULL) {
    if (g_error_matches (err, MM_ENGINE_ERROR, MM_ENGINE_ERROR_NO_DEVICE)) {
      g_print ("SKIP: %s\n", err->message);
      exit (MM_TEST_SKIP);
    }
    g_printerr ("engine: %s\n", err->message);
    exit (1);
  }
  return e;
}

void
mm_test_fill (float *x, gsize n, guint32 seed, float lo, float hi)
{
  guint64 s = seed * 2654435761u + 1;
  for (gsize i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = lo + (hi - lo) * ((s >> 40) / (float) (1 << 24));
  }
}

float *
mm_test_rand (gsize n, guint32 seed, float lo, float hi)
{
  float *x = g_new (float, MAX (n, 1));
  mm_test_fill (x, n, seed, lo, hi);
  return x;
}

gboolean
mm_test_close (const gchar * what, const float *got, const float *want,
    gsize n, float atol, float rtol)
{
  gsize worst = 0;
  double worst_r = 0.0;
  for (gsize i = 0; i < n; i++) {
    double d = fabs ((double) got[i] - want[i]);
    double r = d / (atol + rtol * fabs (want[i]));
    if (isnan (got[i]) != isnan (want[i]))
      r = INFINITY;
    if (r > worst_r) {
      worst_r = r;
      worst = i;
    }
  }
  if (worst_r > 1.0) {
    g_printerr ("FAIL %s: element %" G_GSIZE_FORMAT " got %.7g want %.7g "
        "(atol %g rtol %g)\n", what, worst, got[worst], want[worst], atol,
        rtol);
    return FALSE;
  }
  return TRUE;
}

gboolean mm_test_failed;

gboolean
mm_test_run (const gchar * cmd)
{
  gchar *out = NULL, *err_out = NULL;
  GError *err = NULL;
  gint status = 0;
  gboolean ok;

  g_print ("%s\n", cmd);
  ok = g_spawn_command_line_sync (cmd, &out, &err_out, &status, &err)
      && g_spawn_check_wait_status (status, NULL);
  mm_check (ok, "failed: %s\n%s%s", err ? err->message : "", out ? out : "",
      err_out ? err_out : "");
  g_clear_error (&err);
  g_free (out);
  g_free (err_out);
  return ok;
}

gboolean
mm_test_graph_ok (MmGraph * g, const gchar * what)
{
  GError *err = NULL;
  if (mm_graph_finish (g, &err))
    return TRUE;
  g_printerr ("FAIL %s: %s\n", what, err->message);
  g_error_free (err);
  return FALSE;
}

float *
mm_test_read_tensor (MmEngine * e, const gchar * what, MmTensor * t,
    gsize n)
{
  GError *err = NULL;
  if ((gsize) mm_tensor_numel (t) != n) {
    g_printerr ("FAIL %s: %s has not %" G_GSIZE_FORMAT " elements\n", what,
        mm_tensor_shape_str (t), n);
    return NULL;
  }
  float *got = mm_tensor_dup_f32 (e, t, &err);
  if (got == NULL) {
    g_printerr ("FAIL %s: %s\n", what, err->message);
    g_error_free (err);
  }
  return got;
}

gboolean
mm_test_check_tensor (MmGraph * g, const gchar * what, MmTensor * t,
    const float *want, gsize n, float atol, float rtol)
{
  if (!mm_test_graph_ok (g, what))
    return FALSE;
  float *got = mm_test_read_tensor (mm_graph_engine (g), what, t, n);
  if (got == NULL)
    return FALSE;
  gboolean ok = mm_test_close (what, got, want, n, atol, rtol);
  g_free (got);
  return ok;
}

MmTensor *
mm_test_weight (MmEngine * e, gint n_dims, const gint64 * shape,
    const float *data)
{
  GError *err = NULL;
  MmTensor *t = mm_tensor_upload (e, MM_DTYPE_F32, n_dims, shape, data,
      "test weight", &err);
  if (t == NULL) {
    g_printerr ("upload: %s\n", err->message);
    exit (1);
  }
  return t;
}

guint16
mm_test_f32_to_f16 (float f)
{
  union { float f; guint32 u; } v = { f };
  guint32 x = v.u, sign = (x >> 16) & 0x8000;
  gint32 exp = ((x >> 23) & 0xff) - 127 + 15;
  guint32 mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff)
    return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 31)
    return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10)
      return sign;
    mant |= 0x800000;
    guint32 shift = 14 - exp;
    guint32 h = mant >> shift, rem = mant & ((1u << shift) - 1);
    guint32 halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1)))
      h++;
    return sign | h;
  }
  guint32 h = (exp << 10) | (mant >> 13);
  guint32 rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;
  return sign | h;
}

float
mm_test_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  union { guint32 u; float f; } v;
  if (exp == 0) {
    float m = mant / 1024.0f / 16384.0f;
    return sign ? -m : m;
  }
  if (exp == 31)
    v.u = sign | 0x7f800000 | (mant << 13);
  else
    v.u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  return v.f;
}

gdouble
mm_test_webvtt_time (const gchar * s)
{
  guint h = 0, m, sec, ms;
  gchar tail;

  if (sscanf (s, "%u:%u:%u.%3u%c", &h, &m, &sec, &ms, &tail) == 4
      && strlen (s) >= 12)
    return h * 3600.0 + m * 60.0 + sec + ms / 1000.0;
  if (sscanf (s, "%u:%u.%3u%c", &m, &sec, &ms, &tail) == 3)
    return m * 60.0 + sec + ms / 1000.0;
  return -1;
}

void
mm_test_gemv_act (MmEngine * e, float *x, gsize K)
{
  static gint max_k = -2;
  if (max_k == -2) {
    GError *err = NULL;
    max_k = mm_gemm_quant_int16_max_k (e, &err);
    if (max_k < 0) {
      g_printerr ("mm_gemm_quant_int16_max_k: %s\n", err->message);
      exit (1);
    }
  }
  if (K > (gsize) max_k || K % 32)
    return;
  for (gsize b = 0; b < K; b += 32) {
    float am = 0;
    gboolean finite = TRUE;
    for (gsize k = b; k < b + 32; k++) {
      finite &= isfinite (x[k]);
      am = MAX (am, fabsf (x[k]));
    }
    float id = am >= 1e-30f ? 32767.0f / am : 0.0f;
    float s = !finite ? NAN : am >= 1e-30f ? am * (1.0f / 32767.0f) : 0.0f;
    for (gsize k = b; k < b + 32; k++)
      x[k] = finite ? rintf (x[k] * id) * s : s;
  }
}
