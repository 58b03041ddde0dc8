/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A whole VLM (Idefics3 / SmolVLM form) vs transformers: the fixture image
 * through the vision encoder (tower + pixel-shuffle connector), its tokens
 * spliced into the SmolVLM chat prompt, greedy generation.  The prompt ids
 * must equal the processor's input_ids and the generated ids the
 * reference's generated_ids exactly, up to the first end-of-utterance
 * (where mm stops; the reference ran with EOS disabled).  For both file
 * formats: GGUF (mmproj + text model) and the HF folder.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-llm-private.h"
#include "mm-vision.h"

#include <string.h>

static gboolean
check (MmEngine * e, const gchar * vision, const gchar * text)
{
  gchar *vpath = mm_test_fixture (vision), *tpath = mm_test_fixture (text);
  MmSafetensors *ref = mm_test_ref_open ("idefics3");
  const MmTensorInfo *img = mm_safetensors_find_tensor (ref, "image_rgb");
  gsize n_in, n_gen, n_conn;
  gint32 *want_in = mm_test_ref_i32 (ref, "input_ids", &n_in);
  gint32 *want_gen = mm_test_ref_i32 (ref, "generated_ids", &n_gen);
  float *want_conn = mm_test_ref_f32 (ref, "connector_out", &n_conn);
  GError *err = NULL;
  gboolean ok = FALSE;
  MmVisionModel *vm = mm_vision_model_load (e, vpath, &err);
  MmLlm *llm = vm ? mm_llm_load (e, tpath, &err) : NULL;
  if (llm == NULL)
    goto out;
  MmImage im = { MM_PIXEL_RGB, img->shape[1], img->shape[0],
    {img->data, NULL, NULL}, {img->shape[1] * 3, 0, 0}
  };
  MmTensor *tok = mm_vision_model_encode (vm, &im, &err);
  if (tok == NULL)
    goto out;
  float *conn = mm_tensor_dup_f32 (e, tok, &err);
  /* connector output: tolerance as in test_vision */
  ok = conn && mm_test_close ("connector_out", conn, want_conn, n_conn,
      1e-3f, 1e-3f);
  MmLlmMedia media = { MM_MEDIA_IMAGE, tok->shape[0], tok->shape[1],
    tok->buf, tok->offset, NULL, 1
  };
  MmLlmRequest req = { NULL, "Describe this image.", &media, 1 };
  mm_llm_sampling_init (&req.sampling);
  req.sampling.max_tokens = n_gen;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  GArray *gen = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (ok && mm_llm_prompt_ids (llm, &req, ids, &err)) {
    /* the reference has the image token id where we have -1 */
    for (guint i = 0; i < ids->len && i < n_in; i++)
      if (g_array_index (ids, gint32, i) < 0)
        g_array_index (ids, gint32, i) = want_in[i];
    ok = ids->len == n_in && !memcmp (ids->data, want_in, n_in * 4);
    if (!ok)
      g_printerr ("FAIL %s: prompt ids differ from the processor's\n", text);
  }
  gchar *out = ok ? mm_llm_generate_full (llm, &req, NULL, NULL, NULL, gen,
      &err) : NULL;
  if (out) {
    ok = gen->len > 0 && gen->len <= n_gen
        && !memcmp (gen->data, want_gen, gen->len * 4);
    if (!ok)
      g_printerr ("FAIL %s: generated ids differ (%u ids)\n", text, gen->len);
    g_print ("%s: %u tokens generated, text \"%s\"\n", text, gen->len, out);
  }
  g_free (out);
  g_free (conn);
  g_array_unref (ids);
  g_array_unref (gen);
  mm_tensor_free (tok);
out:
  if (err) {
    g_printerr ("FAIL %s + %s: %s\n", vision, text, err->message);
    g_error_free (err);
    ok = FALSE;
  }
  mm_llm_free (llm);
  mm_vision_model_free (vm);
  mm_safetensors_free (ref);
  g_free (want_in);
  g_free (want_gen);
  g_free (want_conn);
  g_free (vpath);
  g_free (tpath);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = check (e, "idefics3/mmproj-idefics3.gguf",
      "idefics3/idefics3.gguf");
  ok &= check (e, "idefics3/hf", "idefics3/hf");
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
