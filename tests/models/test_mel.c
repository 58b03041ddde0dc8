/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Log-mel features vs transformers' WhisperFeatureExtractor (torch STFT
 * path) on the whisper fixture's inputs: a chirp with noise shorter than
 * the window (zero padding), silence (every value at the clamp), espeak-ng
 * speech with 80 and 128 mel bins, and white noise of half a window.
 *
 * Tolerances: the filter bank (computed here in double) within 1e-7
 * max-abs of the extractor's; features (values in about [-1.5, 1.5])
 * within 2e-4 max-abs: float32 DFT as a GEMM vs torch's FFT, differences
 * of ~1e-6 relative in power show up as ~1e-7 after log10 / 4, and the
 * floor at max - 8 cuts off the bins where the relative error is large.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-mel.h"

#include <math.h>

#define FEATURE_ATOL 2e-4f

static gboolean
check_filters (MmSafetensors * ref)
{
  gsize n;
  float *want = mm_test_ref_f32 (ref, "mel_filters", &n);
  double *bank = mm_mel_filter_bank (80, 400, 16000);
  float *got = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    got[i] = bank[i];
  gboolean ok = n == 201 * 80
      && mm_test_close ("mel_filters", got, want, n, 1e-7f, 0);
  g_free (bank);
  g_free (got);
  g_free (want);
  return ok;
}

static gboolean
check_features (MmEngine * e, MmSafetensors * ref, gint n_mels,
    const gchar * audio_name, const gchar * want_name)
{
  MmMelParams p;
  mm_mel_params_init (&p, n_mels);
  p.n_samples = 16000;          /* the fixture's 1 s window */
  GError *err = NULL;
  MmMel *mel = mm_mel_new (e, &p, &err);
  if (mel == NULL) {
    g_printerr ("FAIL mel_new: %s\n", err->message);
    g_error_free (err);
    return FALSE;
  }
  gsize n_audio, n_want;
  float *audio = mm_test_ref_f32 (ref, audio_name, &n_audio);
  float *want = mm_test_ref_f32 (ref, want_name, &n_want);
  MmGraph *g = mm_graph_new (e);
  gint64 s = n_audio;
  MmTensor *x = mm_graph_input_f32 (g, 1, &s, audio);
  MmTensor *y = mm_mel_compute (mel, g, x);
  gboolean ok = y->n_dims == 2 && y->shape[0] == n_mels
      && y->shape[1] == mm_mel_n_frames (mel)
      && (gsize) mm_tensor_numel (y) == n_want
      && mm_test_check_tensor (g, want_name, y, want, n_want, FEATURE_ATOL, 0);
  float *got = ok ? mm_tensor_dup_f32 (e, y, NULL) : NULL;
  double worst = 0;
  for (gsize i = 0; got && i < n_want; i++)
    worst = MAX (worst, fabs ((double) got[i] - want[i]));
  g_print ("%s (%d mels): max-abs error %.3g\n", want_name, n_mels, worst);
  g_free (got);
  if (!mm_graph_finish (g, &err)) {
    g_printerr ("FAIL %s: %s\n", want_name, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_graph_free (g);
  mm_mel_free (mel);
  g_free (audio);
  g_free (want);
  return ok;
}

static gboolean
check_invalid (MmEngine * e)
{
  MmMelParams p;
  mm_mel_params_init (&p, 80);
  p.n_samples = 16001;          /* not a multiple of hop */
  GError *err = NULL;
  MmMel *mel = mm_mel_new (e, &p, &err);
  gboolean ok = mel == NULL && err != NULL;
  g_clear_error (&err);
  mm_mel_free (mel);
  if (!ok)
    g_printerr ("FAIL invalid mel parameters accepted\n");
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmSafetensors *ref = mm_test_ref_open ("whisper");
  gboolean ok = check_filters (ref);
  ok &= check_features (e, ref, 80, "audio", "input_features");
  ok &= check_features (e, ref, 80, "audio_silence", "input_features_silence");
  ok &= check_features (e, ref, 80, "audio_speech", "input_features_speech");
  ok &= check_features (e, ref, 128, "audio_speech",
      "input_features_speech_128");
  ok &= check_features (e, ref, 80, "audio_noise", "input_features_noise");
  ok &= check_invalid (e);
  mm_safetensors_free (ref);
  mm_engine_unref (e);
  return ok ? 0 : 1;
}
