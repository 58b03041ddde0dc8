/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host resampler: sines through common rates to 16 kHz compared with the
 * sine sampled at 16 kHz (edges of one filter length excluded), output
 * counts, identical output whatever the chunking, and aliasing removed.
 *
 * Tolerances (max-abs, amplitude 0.5): passband tones up to 6 kHz 1e-4
 * (measured <= 1.5e-5);
 * a 12 kHz tone at 48 kHz must come out below 1e-4 (stopband, measured 6e-6).
 */
#include "mm-resample.h"

#include <math.h>
#include <stdio.h>

static float *
sine (gint rate, gsize n, double hz)
{
  float *x = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    x[i] = 0.5 * sin (2.0 * G_PI * hz * i / rate + 0.3);
  return x;
}

/* Resamples @x in chunks of @chunk samples (0: all at once) and flushes. */
static GArray *
run (gint in_rate, const float *x, gsize n, gsize chunk)
{
  MmResampler *r = mm_resampler_new (in_rate, 16000);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (float));
  for (gsize i = 0; i < n;) {
    gsize m = chunk ? MIN (chunk, n - i) : n;
    mm_resampler_push (r, x + i, m, out);
    i += m;
  }
  mm_resampler_flush (r, out);
  mm_resampler_free (r);
  return out;
}

static gboolean
check_tone (gint in_rate, double hz, gboolean stopband, float tol)
{
  gsize n = in_rate;            /* one second */
  float *x = sine (in_rate, n, hz);
  GArray *a = run (in_rate, x, n, 0), *b = run (in_rate, x, n, 333);
  gsize want_n = (n * 16000 + in_rate - 1) / in_rate;
  gboolean ok = a->len == want_n && b->len == a->len;
  for (guint i = 0; ok && i < a->len; i++)
    ok = ((float *) a->data)[i] == ((float *) b->data)[i];
  if (!ok)
    g_printerr ("FAIL %d Hz: %u / %u samples (want %" G_GSIZE_FORMAT
        ") or chunking changes the output\n", in_rate, a->len, b->len, want_n);
  MmResampler *probe = mm_resampler_new (in_rate, 16000);
  gint edge = mm_resampler_lookahead (probe) * 16000 / in_rate + 2;
  mm_resampler_free (probe);
  double worst = 0;
  for (gint j = edge; ok && j < (gint) a->len - edge; j++) {
    double want =
        stopband ? 0.0 : 0.5 * sin (2.0 * G_PI * hz * j / 16000 + 0.3);
    worst = MAX (worst, fabs (((float *) a->data)[j] - want));
  }
  g_print ("%6d Hz -> 16 kHz, %5.0f Hz tone%s: max-abs error %.2g\n", in_rate,
      hz, stopband ? " (stopband)" : "", worst);
  if (ok && worst > tol) {
    g_printerr ("FAIL %d Hz, %.0f Hz tone: error %g > %g\n", in_rate, hz,
        worst, tol);
    ok = FALSE;
  }
  g_array_unref (a);
  g_array_unref (b);
  g_free (x);
  return ok;
}

int
main (void)
{
  gboolean ok = TRUE;
  ok &= check_tone (16000, 1000, FALSE, 1e-6f);
  ok &= check_tone (48000, 1000, FALSE, 1e-4f);
  ok &= check_tone (48000, 6000, FALSE, 1e-4f);
  ok &= check_tone (44100, 3000, FALSE, 1e-4f);
  ok &= check_tone (22050, 440, FALSE, 1e-4f);
  ok &= check_tone (8000, 1000, FALSE, 1e-4f);
  ok &= check_tone (44056, 2500, FALSE, 1e-4f); /* coefficients on the fly */
  ok &= check_tone (48000, 12000, TRUE, 1e-4f);
  ok &= check_tone (44100, 9000, TRUE, 1e-4f);
  return ok ? 0 : 1;
}
