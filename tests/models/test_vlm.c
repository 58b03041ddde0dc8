/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A whole VLM (Idefics3 / SmolVLM form) vs transformers: the fixture image
 * (30x50, not square) through the vision encoder (tower + pixel-shuffle
 * connector), its tokens spliced into the SmolVLM chat prompt, greedy
 * generation.  With image splitting (the fixture processor's setting: 2 x 3
 * tiles + the global image, each view encoded) and without (option
 * split=off: the global image alone, references "nosplit.*").  The layout
 * must be the processor's rows / cols, the pixel values of every view
 * equal the processor's, the prompt ids the processor's input_ids (with
 * <row_r_col_c> and <global-img> markers) and the generated ids the
 * reference's generated_ids exactly, up to the first end-of-utterance
 * (where mm stops; the reference ran with EOS disabled).  For both file
 * formats: GGUF (mmproj + text model) and the HF folder.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-llm-private.h"
#include "mm-vision.h"

#include <string.h>

static gchar *
key (const gchar * prefix, const gchar * name)
{
  return g_strconcat (prefix, name, NULL);
}

static gboolean
check (MmEngine * e, const gchar * vision, const gchar * text,
    MmVisionSplit split, const gchar * prefix)
{
  gchar *vpath = mm_test_fixture (vision), *tpath = mm_test_fixture (text);
  MmSafetensors *ref = mm_test_ref_open ("idefics3");
  const MmTensorInfo *img = mm_safetensors_find_tensor (ref, "image_rgb");
  gsize n_in, n_gen, n_conn, n_pv, n_lay;
  gchar *k_in = key (prefix, "input_ids"), *k_gen = key (prefix,
      "generated_ids"), *k_conn = key (prefix, "connector_out");
  gchar *k_pv = key (prefix, "pixel_values"), *k_lay = key (prefix, "layout");
  gint32 *want_in = mm_test_ref_i32 (ref, k_in, &n_in);
  gint32 *want_gen = mm_test_ref_i32 (ref, k_gen, &n_gen);
  gint32 *want_lay = mm_test_ref_i32 (ref, k_lay, &n_lay);
  float *want_conn = mm_test_ref_f32 (ref, k_conn, &n_conn);
  float *want_pv = mm_test_ref_f32 (ref, k_pv, &n_pv);
  gchar *label = g_strdup_printf ("%s + %s, %s", vision, text,
      *prefix ? "no splitting" : "splitting");
  GError *err = NULL;
  gboolean ok = FALSE;
  MmVisionOptions opts = { 0 };
  opts.split = split;
  MmVisionModel *vm = mm_vision_model_load_with_options (e, vpath, &opts,
      &err);
  MmLlm *llm = vm ? mm_llm_load (e, tpath, &err) : NULL;
  MmTensor *tok = NULL;
  if (llm == NULL)
    goto out;
  MmImage im = { MM_PIXEL_RGB, img->shape[1], img->shape[0],
    {img->data, NULL, NULL}, {img->shape[1] * 3, 0, 0}
  };
  /* every view's pixels: exact */
  MmVisionLayout lay;
  gsize n_got;
  float *pv = mm_vision_model_preprocess_views (vm, &im, &lay, &n_got, &err);
  ok = pv && mm_test_close ("pixel_values (all views)", pv, want_pv,
      n_got == n_pv ? n_pv : 0, 0.0f, 0.0f) && n_got == n_pv;
  g_free (pv);
  ok = ok && lay.rows == want_lay[0] && lay.cols == want_lay[1]
      && lay.n_views == want_lay[2];
  g_print ("%s: %d x %d tiles, %d views (processor: %d x %d, %d)\n", label,
      lay.rows, lay.cols, lay.n_views, want_lay[0], want_lay[1], want_lay[2]);
  tok = ok ? mm_vision_model_encode_views (vm, &im, &lay, &err) : NULL;
  if (tok == NULL)
    goto out;
  float *conn = mm_tensor_dup_f32 (e, tok, &err);
  /* connector output of all views: tolerance as in test_vision */
  ok = conn && mm_tensor_numel (tok) == (gint64) n_conn
      && lay.n_views * lay.tokens_per_view == tok->shape[0]
      && mm_test_close ("connector_out", conn, want_conn, n_conn, 1e-3f,
      1e-3f);
  g_free (conn);
  MmLlmMedia media = { MM_MEDIA_IMAGE, tok->shape[0], tok->shape[1],
    tok->buf, tok->offset, NULL, 1, lay.rows, lay.cols
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
      g_printerr ("FAIL %s: prompt ids differ from the processor's (%u vs "
          "%" G_GSIZE_FORMAT ")\n", label, ids->len, n_in);
  }
  gchar *out = ok ? mm_llm_generate_full (llm, &req, NULL, NULL, NULL, gen,
      &err) : NULL;
  if (out) {
    ok = gen->len > 0 && gen->len <= n_gen
        && !memcmp (gen->data, want_gen, gen->len * 4);
    if (!ok)
      g_printerr ("FAIL %s: generated ids differ (%u ids)\n", label,
          gen->len);
    g_print ("%s: %u tokens generated, text \"%s\"\n", label, gen->len, out);
  } else {
    ok = FALSE;
  }
  g_free (out);
  g_array_unref (ids);
  g_array_unref (gen);
out:
  if (err) {
    g_printerr ("FAIL %s: %s\n", label, err->message);
    g_error_free (err);
    ok = FALSE;
  }
  mm_tensor_free (tok);
  mm_llm_free (llm);
  mm_vision_model_free (vm);
  mm_safetensors_free (ref);
  g_free (want_in);
  g_free (want_gen);
  g_free (want_lay);
  g_free (want_conn);
  g_free (want_pv);
  g_free (k_in);
  g_free (k_gen);
  g_free (k_conn);
  g_free (k_pv);
  g_free (k_lay);
  g_free (label);
  g_free (vpath);
  g_free (tpath);
  return ok;
}

/* Tiled media under a template without Idefics3's markers (the Llama
 * fixture's ChatML): the tokens go in as one run, and a token count that
 * does not divide into the views under the Idefics3 template is an
 * error. */
static gboolean
check_other_templates (MmEngine * e)
{
  gchar *llama = mm_test_fixture ("llama/llama.gguf");
  gchar *idefics = mm_test_fixture ("idefics3/idefics3.gguf");
  GError *err = NULL;
  MmLlm *llm = mm_llm_load (e, llama, &err);
  MmLlm *vlm = llm ? mm_llm_load (e, idefics, &err) : NULL;
  gboolean ok = vlm != NULL;
  float host[63 * 4] = { 0 };
  MmLlmMedia media = { MM_MEDIA_IMAGE, 63, 4, NULL, 0, host, 1, 2, 3 };
  MmLlmRequest req = { NULL, "Describe this image.", &media, 1 };
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (ok && mm_llm_prompt_ids (llm, &req, ids, &err)) {
    guint runs = 0, n = 0;
    for (guint i = 0; i < ids->len; i++) {
      gint32 id = g_array_index (ids, gint32, i);
      if (id < 0 && (i == 0 || g_array_index (ids, gint32, i - 1) >= 0))
        runs++;
      n += id < 0;
    }
    ok = runs == 1 && n == 63;
    g_print ("%s tiled image under ChatML: %u run(s) of %u tokens\n",
        ok ? "ok  " : "FAIL", runs, n);
  }
  g_array_set_size (ids, 0);
  media.n_tokens = 62;          /* not 7 equal views */
  if (ok) {
    gboolean got = mm_llm_prompt_ids (vlm, &req, ids, &err);
    ok = !got && err != NULL;
    g_print ("%s 62 tokens as 2 x 3 tiles + global: %s\n", ok ? "ok  " :
        "FAIL", err ? err->message : "accepted");
    g_clear_error (&err);
  }
  if (err) {
    g_printerr ("FAIL: %s\n", err->message);
    g_error_free (err);
    ok = FALSE;
  }
  g_array_unref (ids);
  mm_llm_free (llm);
  mm_llm_free (vlm);
  g_free (llama);
  g_free (idefics);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  ok &= check (e, "idefics3/mmproj-idefics3.gguf", "idefics3/idefics3.gguf",
      MM_VISION_SPLIT_DEFAULT, "");
  ok &= check (e, "idefics3/hf", "idefics3/hf", MM_VISION_SPLIT_DEFAULT, "");
  ok &= check (e, "idefics3/mmproj-idefics3.gguf", "idefics3/idefics3.gguf",
      MM_VISION_SPLIT_OFF, "nosplit.");
  ok &= check (e, "idefics3/hf", "idefics3/hf", MM_VISION_SPLIT_OFF,
      "nosplit.");
  ok &= check_other_templates (e);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
