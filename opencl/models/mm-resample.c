/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming windowed-sinc resampler (see mm-resample.h). */
#include "mm-resample.h"

#include <math.h>
#include <string.h>

#define ZERO_CROSSINGS 16
#define KAISER_BETA 8.6
#define CUTOFF 0.94
#define MAX_TABLE_PHASES 1024

struct _MmResampler
{
  gint in_rate, out_rate;
  gint64 L, M;                  /* out / gcd, in / gcd: x_j = j M / L */
  double fc;                    /* cutoff, cycles per input sample */
  double half;                  /* filter half-width, input samples */
  gint K;                       /* taps at i0 - K + 1 .. i0 + K */
  float *table;                 /* [L][2 K], or NULL: computed per output */
  float *taps;                  /* scratch [2 K] */
  GArray *hist;                 /* input from absolute index hist_base */
  gint64 hist_base;
  gint64 n_in, n_out;
};

static gint64
gcd (gint64 a, gint64 b)
{
  while (b) {
    gint64 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* Modified Bessel function of the first kind, order 0 (series). */
static double
bessel_i0 (double x)
{
  double sum = 1.0, term = 1.0, q = x * x / 4.0;
  for (gint k = 1; k < 64 && term > 1e-12 * sum; k++) {
    term *= q / ((double) k * k);
    sum += term;
  }
  return sum;
}

/* Taps for an output at fractional position @frac past input i0. */
static void
make_taps (const MmResampler * r, double frac, float *taps)
{
  double sum = 0.0, i0b = bessel_i0 (KAISER_BETA);
  for (gint k = -r->K + 1; k <= r->K; k++) {
    double t = k - frac, h = 0.0;
    if (fabs (t) < r->half) {
      double a = 2.0 * r->fc * t, u = t / r->half;
      double sinc = fabs (a) < 1e-12 ? 1.0 : sin (G_PI * a) / (G_PI * a);
      h = 2.0 * r->fc * sinc * bessel_i0 (KAISER_BETA * sqrt (1.0 - u * u))
          / i0b;
    }
    taps[k + r->K - 1] = h;
    sum += h;
  }
  for (gint i = 0; i < 2 * r->K; i++)
    taps[i] /= sum;             /* unit gain at DC for every phase */
}

MmResampler *
mm_resampler_new (gint in_rate, gint out_rate)
{
  g_return_val_if_fail (in_rate > 0 && out_rate > 0, NULL);
  MmResampler *r = g_new0 (MmResampler, 1);
  gint64 g = gcd (in_rate, out_rate);
  r->in_rate = in_rate;
  r->out_rate = out_rate;
  r->L = out_rate / g;
  r->M = in_rate / g;
  r->fc = 0.5 * CUTOFF * MIN (1.0, (double) out_rate / in_rate);
  r->half = ZERO_CROSSINGS / (2.0 * r->fc);
  r->K = (gint) ceil (r->half);
  r->taps = g_new (float, 2 * r->K);
  if (r->L <= MAX_TABLE_PHASES && in_rate != out_rate) {
    r->table = g_new (float, r->L * 2 * r->K);
    for (gint64 p = 0; p < r->L; p++)
      make_taps (r, (double) p / r->L, r->table + p * 2 * r->K);
  }
  r->hist = g_array_new (FALSE, FALSE, sizeof (float));
  return r;
}

void
mm_resampler_free (MmResampler * r)
{
  if (r == NULL)
    return;
  g_array_unref (r->hist);
  g_free (r->table);
  g_free (r->taps);
  g_free (r);
}

void
mm_resampler_reset (MmResampler * r)
{
  g_array_set_size (r->hist, 0);
  r->hist_base = r->n_in = r->n_out = 0;
}

gint
mm_resampler_lookahead (MmResampler * r)
{
  return r->in_rate == r->out_rate ? 0 : r->K;
}

/* Output n_out from the history (zeros outside [0, n_in)). */
static float
one_output (MmResampler * r)
{
  gint64 num = r->n_out * r->M, i0 = num / r->L, p = num % r->L;
  const float *taps = r->table ? r->table + p * 2 * r->K : r->taps;
  if (r->table == NULL)
    make_taps (r, (double) p / r->L, r->taps);
  const float *h = (const float *) r->hist->data;
  double acc = 0.0;
  for (gint k = 0; k < 2 * r->K; k++) {
    gint64 i = i0 - r->K + 1 + k;
    if (i >= 0 && i < r->n_in)
      acc += (double) taps[k] * h[i - r->hist_base];
  }
  return acc;
}

static void
trim (MmResampler * r)
{
  gint64 keep = (r->n_out * r->M) / r->L - r->K + 1;    /* oldest still needed */
  gint64 drop = MIN (keep - r->hist_base, (gint64) r->hist->len);
  if (drop > 4096) {
    g_array_remove_range (r->hist, 0, drop);
    r->hist_base += drop;
  }
}

void
mm_resampler_push (MmResampler * r, const float *in, gsize n, GArray * out)
{
  if (r->in_rate == r->out_rate) {
    g_array_append_vals (out, in, n);
    r->n_in += n;
    r->n_out += n;
    return;
  }
  g_array_append_vals (r->hist, in, n);
  r->n_in += n;
  while ((r->n_out * r->M) / r->L + r->K < r->n_in) {
    float y = one_output (r);
    g_array_append_val (out, y);
    r->n_out++;
  }
  trim (r);
}

void
mm_resampler_flush (MmResampler * r, GArray * out)
{
  if (r->in_rate != r->out_rate) {
    gint64 total = (r->n_in * r->L + r->M - 1) / r->M;
    while (r->n_out < total) {
      float y = one_output (r);
      g_array_append_val (out, y);
      r->n_out++;
    }
  }
  mm_resampler_reset (r);
}
