/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LLM end to end vs transformers: the chat-templated prompt must tokenize
 * to the reference input_ids exactly, and greedy generation must give the
 * reference generated_ids exactly (up to the first end-of-turn token, where
 * mm stops and the reference, run with EOS disabled, goes on).  A second
 * request with the same prompt must reuse the whole KV cache but the last
 * position and give the same ids.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-llm-private.h"

#include <string.h>

#define PROMPT "What is in this image? Describe the picture."

static gboolean
check (MmEngine * e, const gchar * dir, const gchar * file)
{
  gchar *rel = g_build_filename (dir, file, NULL);
  gchar *path = mm_test_fixture (rel);
  MmSafetensors *ref = mm_test_ref_open (dir);
  gsize n_in, n_gen;
  gint32 *want_in = mm_test_ref_i32 (ref, "input_ids", &n_in);
  gint32 *want_gen = mm_test_ref_i32 (ref, "generated_ids", &n_gen);
  GError *err = NULL;
  MmLlm *llm = mm_llm_load (e, path, &err);
  gboolean ok = llm != NULL;
  if (!ok) {
    g_printerr ("FAIL %s: %s\n", rel, err->message);
    g_clear_error (&err);
    goto out;
  }
  MmLlmRequest req = { NULL, PROMPT, NULL, 0 };
  mm_llm_sampling_init (&req.sampling);
  req.sampling.max_tokens = n_gen;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  ok = mm_llm_prompt_ids (llm, &req, ids, &err)
      && mm_test_same_ids (rel, (gint32 *) ids->data, ids->len, want_in, n_in);
  for (gint run = 0; ok && run < 2; run++) {
    GArray *gen = g_array_new (FALSE, FALSE, sizeof (gint32));
    MmLlmStats st;
    gchar *text = mm_llm_generate_full (llm, &req, NULL, NULL, &st, gen, &err);
    ok = text != NULL
        && mm_test_same_ids (rel, (gint32 *) gen->data, gen->len, want_gen, gen->len)
        && (gen->len == n_gen || gen->len > 0);
    if (ok && run == 1 && st.reused_tokens != (gint) n_in - 1) {
      g_printerr ("FAIL %s: second run reused %d of %" G_GSIZE_FORMAT
          " prompt tokens\n", rel, st.reused_tokens, n_in);
      ok = FALSE;
    }
    g_free (text);
    g_array_unref (gen);
  }
  if (err) {
    g_printerr ("FAIL %s: %s\n", rel, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  g_array_unref (ids);
  mm_llm_free (llm);
out:
  mm_safetensors_free (ref);
  g_free (want_in);
  g_free (want_gen);
  g_free (rel);
  g_free (path);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  ok &= check (e, "llama", "hf");
  ok &= check (e, "llama", "llama.gguf");
  ok &= check (e, "qwen2", "hf");
  ok &= check (e, "qwen2", "qwen2.gguf");
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
