/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Audio tokens into an LLM vs transformers' end-to-end classes
 * (tests/fixtures/audio_mmproj: voxtral -> llama/llama.gguf as
 * VoxtralForConditionalGeneration, qwen2a -> qwen2/qwen2.gguf as
 * Qwen2AudioForConditionalGeneration):
 *  - the reference audio through MmWhisperEncoder (device log-mel, encoder,
 *    connector) into an MmLlmMedia that points at the device buffer;
 *  - the chat-templated prompt must be the reference input_ids, with media
 *    positions where the reference has its audio token;
 *  - greedy generation must give the reference generated_ids exactly;
 *  - the same tokens given as two media side by side (no marker between
 *    them, as consecutive audio windows are) must give the same ids, and a
 *    second run reuses the KV cache up to the last position.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-llm-private.h"
#include "mm-whisper.h"

#include <string.h>

typedef struct
{
  const gchar *type, *llm;
  gint32 audio_id;              /* gen_audio_mmproj.py's audio_token_id */
} Case;

static const Case cases[] = {
  {"voxtral", "llama", 3},
  {"qwen2a", "qwen2", 5},
};

/* The prompt's ids: text ids as the reference's, media positions (< 0:
 * -1 - the media's index) where the reference has the audio token. */
static gboolean
check_prompt (const gchar * what, MmLlm * llm, const MmLlmRequest * req,
    const gint32 * want, gsize n_want, gint32 audio_id, GError ** err)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gboolean ok = mm_llm_prompt_ids (llm, req, ids, err)
      && ids->len == n_want;
  for (guint i = 0; ok && i < ids->len; i++) {
    gint32 id = g_array_index (ids, gint32, i);
    ok = want[i] == audio_id ? id < 0 : id == want[i];
  }
  if (!ok && !*err)
    g_printerr ("FAIL %s: prompt ids differ from the reference\n", what);
  g_array_unref (ids);
  return ok;
}

static gboolean
generate (const gchar * what, MmLlm * llm, const MmLlmRequest * req,
    const gint32 * want, gsize n_want, gint want_reused, GError ** err)
{
  GArray *gen = g_array_new (FALSE, FALSE, sizeof (gint32));
  MmLlmStats st;
  gchar *text = mm_llm_generate_full (llm, req, NULL, NULL, &st, gen, err);
  gboolean ok = text != NULL
      && mm_test_same_ids (what, (gint32 *) gen->data, gen->len, want, n_want);
  if (ok && want_reused >= 0 && st.reused_tokens != want_reused) {
    g_printerr ("FAIL %s: reused %d prompt tokens, want %d\n", what,
        st.reused_tokens, want_reused);
    ok = FALSE;
  }
  g_free (text);
  g_array_unref (gen);
  return ok;
}

static gboolean
check (MmEngine * e, const Case * c)
{
  gchar *rel = g_strdup_printf ("audio_mmproj/mmproj-%s.gguf", c->type);
  gchar *mmproj = mm_test_fixture (rel);
  g_free (rel);
  rel = g_strdup_printf ("%s/%s.gguf", c->llm, c->llm);
  gchar *llm_path = mm_test_fixture (rel);
  g_free (rel);
  rel = g_strdup_printf ("audio_mmproj/reference-%s.safetensors", c->type);
  gchar *refp = mm_test_fixture (rel);
  g_free (rel);
  GError *err = NULL;
  MmSafetensors *ref = mm_safetensors_open (refp, &err);
  gsize n_audio, n_in, n_gen;
  float *audio = mm_test_ref_f32 (ref, "audio", &n_audio);
  gint32 *want_in = mm_test_ref_i32 (ref, "input_ids", &n_in);
  gint32 *want_gen = mm_test_ref_i32 (ref, "generated_ids", &n_gen);
  MmWhisper *w = mm_whisper_load_encoder (e, mmproj, &err);
  MmLlm *llm = w ? mm_llm_load (e, llm_path, &err) : NULL;
  MmWhisperEncoder *enc = llm ? mm_whisper_encoder_new (w, &err) : NULL;
  gint64 shape[2] = { w ? mm_whisper_n_output_tokens (w) : 0,
    w ? mm_whisper_output_dim (w) : 0
  };
  MmTensor *tokens = enc ? mm_tensor_new (e, MM_DTYPE_F32, 2, shape,
      "audio tokens", &err) : NULL;
  gboolean ok = tokens && mm_whisper_encoder_run (enc, audio, n_audio,
      tokens, &err);

  /* one media of all the tokens, on the device */
  MmLlmMedia media[2] = { {MM_MEDIA_AUDIO, shape[0], shape[1], NULL, 0,
      NULL, 1}
  };
  if (ok)
    media[0].buf = tokens->buf, media[0].offset = tokens->offset;
  MmLlmRequest req = { NULL, mm_safetensors_get_metadata (ref, "prompt"),
    media, 1
  };
  mm_llm_sampling_init (&req.sampling);
  req.sampling.max_tokens = n_gen;
  gchar *what = g_strdup_printf ("%s -> %s", c->type, c->llm);
  ok = ok && check_prompt (what, llm, &req, want_in, n_in, c->audio_id, &err)
      && generate (what, llm, &req, want_gen, n_gen, -1, &err);

  /* the same rows as two media side by side */
  gint k = shape[0] / 2;
  media[1] = media[0];
  media[0].n_tokens = k;
  media[0].id = 2;
  media[1].n_tokens = shape[0] - k;
  media[1].offset += (gsize) k * shape[1] * sizeof (float);
  media[1].id = 3;
  req.n_media = 2;
  gchar *what2 = g_strdup_printf ("%s, audio as %d + %d tokens", what, k,
      (gint) shape[0] - k);
  ok = ok && check_prompt (what2, llm, &req, want_in, n_in, c->audio_id, &err)
      && generate (what2, llm, &req, want_gen, n_gen, -1, &err)
      && generate (what2, llm, &req, want_gen, n_gen, n_in - 1, &err);
  if (err) {
    g_printerr ("FAIL %s: %s\n", what, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  g_free (what);
  g_free (what2);
  mm_tensor_free (tokens);
  mm_whisper_encoder_free (enc);
  mm_llm_free (llm);
  mm_whisper_free (w);
  mm_safetensors_free (ref);
  g_free (audio);
  g_free (want_in);
  g_free (want_gen);
  g_free (mmproj);
  g_free (llm_path);
  g_free (refp);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    ok &= check (e, &cases[i]);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
