/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming sample-rate conversion of mono float audio on the host:
 * a Kaiser-windowed sinc (16 zero crossings each side at the output's
 * band edge, beta 8.6, cutoff 0.94 x the lower Nyquist frequency), zero
 * phase: output sample j sits exactly at input time j * in_rate / out_rate,
 * so timestamps map without offset.  Each output needs about 16 / cutoff
 * input samples of lookahead; mm_resampler_flush() pads the end with
 * zeros and emits the remaining ceil (n_in * out / in) - n_out samples.
 *
 * Rates with a small ratio (after dividing by their gcd, at most 1024
 * output phases: 48k, 44.1k, 32k, 22.05k, 8k to 16k) use a table of
 * coefficients; others compute them on the fly.  Equal rates copy.
 *
 * Not thread-safe: one resampler per stream.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS typedef struct _MmResampler MmResampler;

MmResampler *mm_resampler_new (gint in_rate, gint out_rate);
void mm_resampler_free (MmResampler * r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmResampler, mm_resampler_free)
/* Appends the output samples that @n new input samples complete to @out
 * (a GArray of float). */
     void mm_resampler_push (MmResampler * r, const float *in, gsize n,
    GArray * out);
/* End of stream: appends the remaining output and starts over. */
     void mm_resampler_flush (MmResampler * r, GArray * out);
/* Forgets everything (a flush without output). */
     void mm_resampler_reset (MmResampler * r);
/* Input samples an output waits for beyond its own position. */
     gint mm_resampler_lookahead (MmResampler * r);

G_END_DECLS
