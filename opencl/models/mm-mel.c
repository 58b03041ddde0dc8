/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log-mel spectrogram (Whisper's features) on the device. */
#include "mm-mel.h"
#include "mm-launch.h"

#include <math.h>

struct _MmMel
{
  MmEngine *engine;
  MmMelParams p;
  gint n_bins, n_frames;
  MmTensor *dft;                /* [2 n_bins, n_fft]: w cos rows, then w sin */
  MmTensor *filters;            /* [n_mels, 2 n_bins]: the bank, transposed,
                                 * for re^2 columns and again for im^2 */
};

void
mm_mel_params_init (MmMelParams * p, gint n_mels)
{
  p->n_mels = n_mels;
  p->sampling_rate = 16000;
  p->n_fft = 400;
  p->hop = 160;
  p->n_samples = 30 * 16000;
}

/* Slaney's mel scale (transformers' audio_utils, librosa's htk=False). */
static double
hz_to_mel (double f)
{
  if (f < 1000.0)
    return 3.0 * f / 200.0;
  return 15.0 + log (f / 1000.0) * (27.0 / log (6.4));
}

static double
mel_to_hz (double m)
{
  if (m < 15.0)
    return 200.0 * m / 3.0;
  return 1000.0 * exp ((log (6.4) / 27.0) * (m - 15.0));
}

double *
mm_mel_filter_bank (gint n_mels, gint n_fft, gint sampling_rate)
{
  gint n_bins = n_fft / 2 + 1;
  double *bank = g_new0 (double, (gsize) n_bins * n_mels);
  double *hz = g_new (double, n_mels + 2);
  /* triangles' corners: n_mels + 2 points evenly spaced in mel, 0..8 kHz */
  double m0 = hz_to_mel (0.0), m1 = hz_to_mel (8000.0);
  for (gint i = 0; i < n_mels + 2; i++)
    hz[i] = mel_to_hz (m0 + (m1 - m0) * i / (n_mels + 1));
  for (gint k = 0; k < n_bins; k++) {
    double f = (double) (sampling_rate / 2) * k / (n_bins - 1);
    for (gint m = 0; m < n_mels; m++) {
      double down = (f - hz[m]) / (hz[m + 1] - hz[m]);
      double up = (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1]);
      double v = MAX (0.0, MIN (down, up));
      /* Slaney normalisation: each triangle has unit area */
      bank[(gsize) k * n_mels + m] = v * 2.0 / (hz[m + 2] - hz[m]);
    }
  }
  g_free (hz);
  return bank;
}

/* Window * cos / sin rows of the real DFT; angles reduced exactly. */
static float *
dft_table (gint n_fft)
{
  gint n_bins = n_fft / 2 + 1;
  float *t = g_new (float, (gsize) 2 * n_bins * n_fft);
  for (gint k = 0; k < n_bins; k++)
    for (gint n = 0; n < n_fft; n++) {
      double w = 0.5 - 0.5 * cos (2.0 * G_PI * n / n_fft);      /* periodic Hann */
      double a = 2.0 * G_PI * (double) (((gint64) k * n) % n_fft) / n_fft;
      t[(gsize) k * n_fft + n] = w * cos (a);
      t[(gsize) (n_bins + k) * n_fft + n] = -w * sin (a);
    }
  return t;
}

MmMel *
mm_mel_new (MmEngine * engine, const MmMelParams * p, GError ** error)
{
  if (p->n_mels <= 0 || p->n_fft < 4 || p->hop <= 0 || p->sampling_rate <= 0
      || p->n_samples <= p->n_fft || p->n_samples % p->hop != 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "mel: invalid parameters (n_mels %d, n_fft %d, hop %d, rate %d, "
        "window of %d samples: more than n_fft and a multiple of hop)",
        p->n_mels, p->n_fft, p->hop, p->sampling_rate, p->n_samples);
    return NULL;
  }
  MmMel *mel = g_new0 (MmMel, 1);
  mel->engine = mm_engine_ref (engine);
  mel->p = *p;
  mel->n_bins = p->n_fft / 2 + 1;
  mel->n_frames = p->n_samples / p->hop;
  float *table = dft_table (p->n_fft);
  gint64 s_dft[2] = { 2 * mel->n_bins, p->n_fft };
  mel->dft = mm_tensor_upload (engine, MM_DTYPE_F32, 2, s_dft, table,
      "mel DFT table", error);
  g_free (table);
  double *bank = mm_mel_filter_bank (p->n_mels, p->n_fft, p->sampling_rate);
  gint nb = mel->n_bins;
  float *bt = g_new (float, (gsize) p->n_mels * 2 * nb);
  for (gint k = 0; k < nb; k++)
    for (gint m = 0; m < p->n_mels; m++)
      bt[(gsize) m * 2 * nb + k] = bt[(gsize) m * 2 * nb + nb + k] =
          bank[(gsize) k * p->n_mels + m];
  gint64 s_f[2] = { p->n_mels, 2 * nb };
  mel->filters = mel->dft ? mm_tensor_upload (engine, MM_DTYPE_F32, 2, s_f, bt,
      "mel filter bank", error) : NULL;
  g_free (bank);
  g_free (bt);
  /* both only ever go through mm_linear: GEMM panel layout once */
  if (mel->filters == NULL || !mm_gemm_pack_weight (engine, mel->dft, error)
      || !mm_gemm_pack_weight (engine, mel->filters, error)) {
    mm_mel_free (mel);
    return NULL;
  }
  return mel;
}

void
mm_mel_free (MmMel * mel)
{
  if (mel == NULL)
    return;
  mm_tensor_free (mel->dft);
  mm_tensor_free (mel->filters);
  mm_engine_unref (mel->engine);
  g_free (mel);
}

const MmMelParams *
mm_mel_params (MmMel * mel)
{
  return &mel->p;
}

gint
mm_mel_n_frames (MmMel * mel)
{
  return mel->n_frames;
}

MmTensor *
mm_mel_compute (MmMel * mel, MmGraph * g, MmTensor * audio)
{
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  if (audio->dtype != MM_DTYPE_F32) {
    mm_graph_failf (g, "mel: audio must be F32, got %s",
        mm_dtype_name (audio->dtype));
    return mm_graph_dead (g);
  }
  const MmMelParams *p = &mel->p;
  gint nf = mel->n_frames;
  gint64 n_audio = MIN (mm_tensor_numel (audio), p->n_samples);
  MmTensor *frames = mm_graph_tensor_2d (g, nf, p->n_fft);
  gsize gws_f[2] = { p->n_fft, nf };
  MM_LAUNCH (g, "kernel_mel_frames", 2, gws_f, FALSE, MM_TENSOR (audio),
      MM_UINT (n_audio), MM_UINT (p->n_samples), MM_UINT (p->n_fft),
      MM_UINT (p->hop), MM_TENSOR (frames));
  MmTensor *spec = mm_linear (g, frames, mel->dft, NULL);       /* [nf, 2 nb] */
  /* |X|^2 through the bank: [re^2, im^2] . [F; F] */
  MmTensor *m = mm_linear (g, mm_mul (g, spec, spec), mel->filters, NULL);
  MmTensor *y = mm_graph_tensor_2d (g, p->n_mels, nf);
  gint64 one_elem = 1;
  MmTensor *gmax = mm_graph_tensor (g, MM_DTYPE_F32, 1, &one_elem);
  gsize all = (gsize) p->n_mels * nf, one = 1;
  gsize gws_l = (gsize) nf * ((p->n_mels + 15) / 16);
  MM_LAUNCH (g, "kernel_mel_log", 1, &gws_l, FALSE, MM_TENSOR (m),
      MM_TENSOR (y), MM_UINT (nf), MM_UINT (p->n_mels));
  MM_LAUNCH (g, "kernel_mel_max", 1, &one, TRUE, MM_TENSOR (y),
      MM_UINT (all), MM_TENSOR (gmax));
  MM_LAUNCH (g, "kernel_mel_norm", 1, &all, FALSE, MM_TENSOR (y),
      MM_TENSOR (gmax));
  return y;
}
