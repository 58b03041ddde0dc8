/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Log-mel spectrogram on the device, as Hugging Face's
 * WhisperFeatureExtractor computes it (and OpenAI Whisper's
 * log_mel_spectrogram):
 *
 *   audio (16 kHz mono floats) zero-padded / truncated to n_samples
 *   -> reflect padding of n_fft/2 at both ends (center=True)
 *   -> frames of n_fft every hop samples, periodic Hann window
 *   -> |DFT|^2 of bins 0..n_fft/2, the last frame dropped (n_samples / hop
 *      frames remain)
 *   -> Slaney mel filter bank (Slaney scale, Slaney area normalisation,
 *      0..8000 Hz)
 *   -> log10 (max (x, 1e-10)), floored at (global max - 8), (x + 4) / 4
 *
 * The DFT is a GEMM of the frames [n_frames, n_fft] with a table
 * [2 (n_fft/2 + 1), n_fft] of window * cos and window * sin rows.  Filter
 * bank and tables are computed on the host when the MmMel is made.
 *
 * An MmMel is immutable after creation; several graphs may use it at once.
 */
#pragma once

#include "mm-ops.h"

G_BEGIN_DECLS typedef struct _MmMel MmMel;

typedef struct
{
  gint n_mels;                  /* 80 or 128 */
  gint sampling_rate;           /* 16000 */
  gint n_fft;                   /* 400 */
  gint hop;                     /* 160 */
  gint n_samples;               /* chunk_length * sampling_rate */
} MmMelParams;

/* Whisper's defaults for @n_mels with a 30 s window. */
void mm_mel_params_init (MmMelParams * p, gint n_mels);

MmMel *mm_mel_new (MmEngine * engine, const MmMelParams * p, GError ** error);
void mm_mel_free (MmMel * mel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmMel, mm_mel_free)
     const MmMelParams *mm_mel_params (MmMel * mel);
/* Frames per window: n_samples / hop. */
     gint mm_mel_n_frames (MmMel * mel);

/* Features of @audio (F32, any shape, numel samples; more than n_samples
 * are ignored, fewer are zero-padded): [n_mels, n_frames], an arena tensor
 * of @g. */
     MmTensor *mm_mel_compute (MmMel * mel, MmGraph * g, MmTensor * audio);

/* The filter bank as WhisperFeatureExtractor.mel_filters holds it:
 * [n_fft/2 + 1, n_mels] row-major, computed in double precision.
 * Returns: (transfer full): g_free() it. */
     double *mm_mel_filter_bank (gint n_mels, gint n_fft, gint sampling_rate);

G_END_DECLS
