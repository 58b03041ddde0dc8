/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LLM decoder graph vs transformers: prefill logits of every position, then
 * 4 single-token decode steps through the KV cache, for the tiny Llama
 * (GQA, untied output) and Qwen2 (QKV biases, tied embeddings) fixtures,
 * from the HF folder and from GGUF files (F32, F16, Q8_0, Q4_0, Q4_1).
 *
 * Tolerances (max-abs on logits of scale ~1): F32 weights 2e-3; F16 and
 * quantised weights 2e-2.  Quantised files are compared with
 * reference-<type>.safetensors: the same transformers model run with the
 * file's dequantised weights (gen_quant_refs.py).
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-llm-private.h"

#include <math.h>

static gboolean
compare (const gchar * what, const float *got, const float *want, gsize rows,
    gint vocab, float tol)
{
  return mm_test_close (what, got, want, rows * vocab, tol, 0);
}

static gboolean
check_model (MmEngine * e, const gchar * dir, const gchar * file,
    const gchar * quant, float tol)
{
  gchar *rel = g_build_filename (dir, file, NULL);
  gchar *path = mm_test_fixture (rel);
  MmSafetensors *ref = mm_test_ref_open (dir);
  gsize n_in, n_dec, n;
  gint32 *ids = mm_test_ref_i32 (ref, "input_ids", &n_in);
  gint32 *dec = mm_test_ref_i32 (ref, "decode_input_ids", &n_dec);
  MmSafetensors *qref = NULL;
  if (quant) {
    gchar *qn = g_strdup_printf ("%s/reference-%s.safetensors", dir, quant);
    gchar *qp = mm_test_fixture (qn);
    qref = mm_safetensors_open (qp, NULL);
    g_free (qn);
    g_free (qp);
  }
  float *want_pre = mm_test_ref_f32 (qref ? qref : ref, "logits_prefill", &n);
  float *want_dec = mm_test_ref_f32 (qref ? qref : ref, "logits_decode", NULL);
  GError *err = NULL;
  MmLlm *llm = mm_llm_load_weights_only (e, path, &err);
  gboolean ok = llm != NULL;
  if (!ok) {
    g_printerr ("FAIL load %s: %s\n", path, err->message);
    g_clear_error (&err);
    goto out;
  }
  gint vocab = mm_llm_hparams (llm)->vocab;
  MmLlmBatch b = { ids, n_in, NULL, 0 };
  float *logits = mm_llm_forward (llm, &b, 0, TRUE, &err);
  gchar *what = g_strdup_printf ("%s prefill", rel);
  ok = logits && compare (what, logits, want_pre, n_in, vocab, tol);
  g_free (what);
  g_free (logits);
  for (gsize i = 0; ok && i < n_dec; i++) {
    MmLlmBatch one = { dec + i, 1, NULL, 0 };
    logits = mm_llm_forward (llm, &one, n_in + i, FALSE, &err);
    what = g_strdup_printf ("%s decode step %" G_GSIZE_FORMAT, rel, i);
    ok = logits && compare (what, logits, want_dec + i * vocab, 1, vocab, tol);
    g_free (what);
    g_free (logits);
  }
  if (err) {
    g_printerr ("FAIL %s: %s\n", rel, err->message);
    g_clear_error (&err);
  }
  mm_llm_free (llm);
out:
  mm_safetensors_free (ref);
  if (qref)
    mm_safetensors_free (qref);
  g_free (ids);
  g_free (dec);
  g_free (want_pre);
  g_free (want_dec);
  g_free (rel);
  g_free (path);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  const gchar *models[] = { "llama", "qwen2" };
  for (guint m = 0; m < G_N_ELEMENTS (models); m++) {
    gchar *f32 = g_strdup_printf ("%s.gguf", models[m]);
    gchar *f16 = g_strdup_printf ("%s-f16.gguf", models[m]);
    ok &= check_model (e, models[m], "hf", NULL, 2e-3f);
    ok &= check_model (e, models[m], f32, NULL, 2e-3f);
    ok &= check_model (e, models[m], f16, NULL, 2e-2f);
    const gchar *q[] = { "q8_0", "q4_0", "q4_1" };
    for (guint i = 0; i < G_N_ELEMENTS (q); i++) {
      gchar *fq = g_strdup_printf ("%s-%s.gguf", models[m], q[i]);
      ok &= check_model (e, models[m], fq, q[i], 2e-2f);
      g_free (fq);
    }
    g_free (f32);
    g_free (f16);
  }
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
