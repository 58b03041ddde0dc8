/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whisper vs transformers on the tiny fixture (tests/fixtures/whisper):
 *  - encoder from the reference features: the input of each block and the
 *    output, for the chirp and for silence; and from the raw audio through
 *    the device log-mel;
 *  - decoder: logits after the 4-token prompt, plain argmax greedy ids
 *    (10 tokens, reference encoder output fed in);
 *  - transcription with the generation config's rules (suppress_tokens,
 *    begin_suppress_tokens; timestamp rules with timestamps): ids exactly;
 *  - language detection and load errors.
 *
 * Tolerances (max-abs): encoder hidden states (values of scale ~1) 1e-4,
 * decoder logits 1e-4 (measured errors are printed).
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-whisper.h"

#include <math.h>
#include <string.h>

#define ENC_ATOL 1e-4f
#define LOGIT_ATOL 1e-4f

static gboolean
close_report (const gchar * what, const float *got, const float *want,
    gsize n, float atol)
{
  double worst = 0;
  for (gsize i = 0; i < n; i++)
    worst = MAX (worst, fabs ((double) got[i] - want[i]));
  g_print ("%s: max-abs error %.3g\n", what, worst);
  return mm_test_close (what, got, want, n, atol, 0);
}

static gboolean
check_tensor (MmEngine * e, const gchar * what, MmTensor * t,
    const float *want, gsize n, float atol)
{
  float *got = mm_test_read_tensor (e, what, t, n);
  if (got == NULL)
    return FALSE;
  gboolean ok = close_report (what, got, want, n, atol);
  g_free (got);
  return ok;
}

static gboolean
check_encoder (MmEngine * e, MmWhisper * w, MmSafetensors * ref,
    const gchar * tag)
{
  gsize n_feat, n_out;
  gchar *fname = g_strconcat ("input_features", tag, NULL);
  gchar *oname = g_strconcat ("encoder_last_hidden_state", tag, NULL);
  float *feat = mm_test_ref_f32 (ref, fname, &n_feat);
  float *want = mm_test_ref_f32 (ref, oname, &n_out);
  MmGraph *g = mm_graph_new (e);
  gint64 s[2] = { 80, n_feat / 80 };
  MmTensor *hidden[3] = { 0 };
  MmTensor *y = mm_whisper_encode_features (w, g,
      mm_graph_input_f32 (g, 2, s, feat), *tag ? NULL : hidden);
  gboolean ok = mm_test_graph_ok (g, oname);
  for (gint i = 0; ok && !*tag && i < 2; i++) {
    gchar *hn = g_strdup_printf ("encoder.hidden_states.%d", i);
    gsize nh;
    float *wh = mm_test_ref_f32 (ref, hn, &nh);
    ok = check_tensor (e, hn, hidden[i], wh, nh, ENC_ATOL);
    g_free (wh);
    g_free (hn);
  }
  ok = ok && check_tensor (e, oname, y, want, n_out, ENC_ATOL);
  mm_graph_free (g);
  g_free (feat);
  g_free (want);
  g_free (fname);
  g_free (oname);
  return ok;
}

/* Raw audio -> device log-mel -> encoder. */
static gboolean
check_audio_to_encoder (MmEngine * e, MmWhisper * w, MmSafetensors * ref)
{
  gsize n_audio, n_out;
  float *audio = mm_test_ref_f32 (ref, "audio", &n_audio);
  float *want = mm_test_ref_f32 (ref, "encoder_last_hidden_state", &n_out);
  MmGraph *g = mm_graph_new (e);
  gint64 s = n_audio;
  MmTensor *y = mm_whisper_encode (w, g, mm_graph_input_f32 (g, 1, &s, audio));
  gboolean ok = mm_test_graph_ok (g, "audio -> encoder")
      && check_tensor (e, "audio -> encoder_last_hidden_state", y, want, n_out,
      5 * ENC_ATOL);
  /* the same through MmWhisperEncoder (block by block), twice */
  GError *err = NULL;
  MmWhisperEncoder *enc = mm_whisper_encoder_new (w, &err);
  gint64 so[2] = { 50, 36 };
  MmTensor *out = mm_tensor_new (e, MM_DTYPE_F32, 2, so, "test", &err);
  for (gint i = 0; ok && i < 2; i++)
    ok = enc && out && mm_whisper_encoder_run (enc, audio, n_audio, out, &err)
        && check_tensor (e, "MmWhisperEncoder -> encoder_last_hidden_state",
        out, want, n_out, 5 * ENC_ATOL);
  if (err) {
    g_printerr ("FAIL MmWhisperEncoder: %s\n", err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_tensor_free (out);
  mm_whisper_encoder_free (enc);
  mm_graph_free (g);
  g_free (audio);
  g_free (want);
  return ok;
}

static MmTensor *
upload_encoded (MmEngine * e, MmSafetensors * ref, const gchar * tag)
{
  gchar *name = g_strconcat ("encoder_last_hidden_state", tag, NULL);
  gsize n;
  float *h = mm_test_ref_f32 (ref, name, &n);
  gint64 s[2] = { 50, 36 };
  MmTensor *t = mm_test_weight (e, 2, s, h);
  g_free (h);
  g_free (name);
  return t;
}

static gboolean
check_decoder (MmEngine * e, MmWhisper * w, MmSafetensors * ref,
    const gchar * tag)
{
  GError *err = NULL;
  MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
  MmTensor *enc = upload_encoded (e, ref, tag);
  gsize n_prompt, n_logits, n_gen;
  gint32 *prompt = mm_test_ref_i32 (ref, "decoder_prompt_ids", &n_prompt);
  gchar *lname = g_strconcat ("decoder_logits_first", tag, NULL);
  gchar *gname = g_strconcat ("generated_ids", tag, NULL);
  float *want = mm_test_ref_f32 (ref, lname, &n_logits);
  gint32 *want_gen = mm_test_ref_i32 (ref, gname, &n_gen);
  gint vocab = mm_whisper_vocab_size (w);
  gboolean ok = d && mm_whisper_decoder_set_audio (d, enc, &err);
  float *logits = ok ? mm_whisper_decoder_forward (d, prompt, n_prompt, 0,
      &err) : NULL;
  ok = logits && (gsize) vocab == n_logits
      && close_report (lname, logits, want, n_logits, LOGIT_ATOL);
  /* plain argmax greedy through the KV cache */
  gint32 gen[16];
  gsize n = 0;
  while (ok && logits && n < n_gen) {
    gint32 best = 0;
    for (gint i = 1; i < vocab; i++)
      if (logits[i] > logits[best])
        best = i;
    gen[n] = best;
    g_free (logits);
    logits = mm_whisper_decoder_forward (d, &gen[n], 1, n_prompt + n, &err);
    n++;
  }
  g_free (logits);
  ok = ok && mm_test_same_ids (gname, gen, n, want_gen, n_gen);
  if (err) {
    g_printerr ("FAIL decoder%s: %s\n", tag, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_whisper_decoder_free (d);
  mm_tensor_free (enc);
  g_free (prompt);
  g_free (want);
  g_free (want_gen);
  g_free (lname);
  g_free (gname);
  return ok;
}

static gboolean
check_transcribe (MmEngine * e, MmWhisper * w, MmSafetensors * ref,
    const gchar * tag, gboolean timestamps)
{
  GError *err = NULL;
  MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
  MmTensor *enc = upload_encoded (e, ref, tag);
  gchar *name = g_strconcat (timestamps ? "generate_ids_timestamps" :
      "generate_ids", tag, NULL);
  gsize n_want;
  gint32 *want = mm_test_ref_i32 (ref, name, &n_want);
  MmWhisperOptions opt;
  mm_whisper_options_init (&opt);
  opt.language = "en";
  opt.timestamps = timestamps;
  opt.max_tokens = 30;
  MmWhisperResult r = { 0 };
  gboolean ok = d && mm_whisper_decoder_set_audio (d, enc, &err)
      && mm_whisper_decoder_transcribe (d, &opt, &r, &err);
  ok = ok && mm_test_same_ids (name, (gint32 *) r.ids->data, r.ids->len, want, n_want);
  if (ok) {
    g_print ("  text \"%s\", %u segments", r.text, r.segments->len);
    for (guint i = 0; i < r.segments->len; i++) {
      MmWhisperSegment *s = &g_array_index (r.segments, MmWhisperSegment, i);
      g_print (" [%.2f-%.2f \"%s\"]", s->t0, s->t1, s->text);
    }
    g_print ("\n");
    ok = g_strcmp0 (r.language, "en") == 0
        && (timestamps ? r.segments->len > 0 : r.segments->len == 0);
  }
  if (err) {
    g_printerr ("FAIL %s: %s\n", name, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_whisper_result_clear (&r);
  mm_whisper_decoder_free (d);
  mm_tensor_free (enc);
  g_free (want);
  g_free (name);
  return ok;
}

/* No language given: the most probable language token after
 * <|startoftranscript|> is used (en or fr here). */
static gboolean
check_detect (MmEngine * e, MmWhisper * w, MmSafetensors * ref)
{
  GError *err = NULL;
  MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
  MmTensor *enc = upload_encoded (e, ref, "");
  MmWhisperOptions opt;
  mm_whisper_options_init (&opt);
  opt.max_tokens = 3;
  MmWhisperResult r = { 0 };
  gboolean ok = d && mm_whisper_decoder_set_audio (d, enc, &err)
      && mm_whisper_decoder_transcribe (d, &opt, &r, &err);
  ok = ok && (g_strcmp0 (r.language, "en") == 0
      || g_strcmp0 (r.language, "fr") == 0) && r.ids->len == 3;
  g_print ("detected language: %s\n", r.language);
  opt.language = "xx";
  mm_whisper_result_clear (&r);
  ok = ok && !mm_whisper_decoder_transcribe (d, &opt, &r, NULL);
  if (!ok)
    g_printerr ("FAIL language detection: %s\n", err ? err->message : "");
  g_clear_error (&err);
  mm_whisper_decoder_free (d);
  mm_tensor_free (enc);
  return ok;
}

/* Encoder only: same encoder output, no transcription. */
static gboolean
check_encoder_only (MmEngine * e, MmSafetensors * ref)
{
  gchar *path = mm_test_fixture ("whisper/hf");
  GError *err = NULL;
  MmWhisper *w = mm_whisper_load_encoder (e, path, &err);
  gboolean ok = w != NULL && !mm_whisper_can_transcribe (w);
  if (ok) {
    MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
    ok = d == NULL && err != NULL;
    g_clear_error (&err);
    ok = ok && check_encoder (e, w, ref, "");
  }
  if (!ok)
    g_printerr ("FAIL encoder-only load: %s\n", err ? err->message : "");
  g_clear_error (&err);
  mm_whisper_free (w);
  g_free (path);
  return ok;
}

static gboolean
check_load_errors (MmEngine * e)
{
  const gchar *dirs[] = { "llama/hf", "whisper/reference.safetensors" };
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++) {
    gchar *path = mm_test_fixture (dirs[i]);
    GError *err = NULL;
    MmWhisper *w = mm_whisper_load (e, path, &err);
    if (w != NULL || err == NULL) {
      g_printerr ("FAIL %s loaded as Whisper\n", dirs[i]);
      ok = FALSE;
    } else {
      g_print ("load %s: %s\n", dirs[i], err->message);
    }
    g_clear_error (&err);
    mm_whisper_free (w);
    g_free (path);
  }
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmSafetensors *ref = mm_test_ref_open ("whisper");
  gchar *path = mm_test_fixture ("whisper/hf");
  GError *err = NULL;
  MmWhisper *w = mm_whisper_load (e, path, &err);
  if (w == NULL) {
    g_printerr ("FAIL load %s: %s\n", path, err->message);
    return 1;
  }
  gboolean ok = mm_whisper_n_samples (w) == 16000
      && mm_whisper_n_audio_tokens (w) == 50 && mm_whisper_d_model (w) == 36
      && mm_whisper_can_transcribe (w);
  ok &= check_encoder (e, w, ref, "");
  ok &= check_encoder (e, w, ref, "_silence");
  ok &= check_audio_to_encoder (e, w, ref);
  ok &= check_decoder (e, w, ref, "");
  ok &= check_decoder (e, w, ref, "_silence");
  for (gint ts = 0; ts < 2; ts++) {
    ok &= check_transcribe (e, w, ref, "", ts);
    ok &= check_transcribe (e, w, ref, "_silence", ts);
  }
  ok &= check_detect (e, w, ref);
  ok &= check_encoder_only (e, ref);
  ok &= check_load_errors (e);
  mm_whisper_free (w);
  g_free (path);
  mm_safetensors_free (ref);
  mm_engine_unref (e);
  return ok ? 0 : 1;
}
