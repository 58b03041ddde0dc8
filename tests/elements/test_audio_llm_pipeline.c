/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GGUF audio projector fixtures through the elements: the reference audio
 * (F32, 16 kHz mono) from appsrc into
 *   mmaudioenc model=mmproj-<type>.gguf ! mmllmsink model=<llm>.gguf
 * must give, as the mm-caption message, exactly the text of transformers'
 * greedy ids for the same audio and prompt (reference generated_ids, 12
 * tokens, decoded by the LLM fixture's tokenizer):
 *   voxtral -> llama/llama.gguf  (VoxtralForConditionalGeneration.generate)
 *   qwen2a  -> qwen2/qwen2.gguf  (Qwen2AudioForConditionalGeneration.generate)
 * Both references splice the audio embeddings where mmllmsink's ChatML
 * rendering puts them (one user turn: audio, then the prompt); the
 * caption's prompt-tokens must equal the reference input_ids' length and
 * generated-tokens the 12 greedy ids.  Skips (77) without the fixtures or
 * an OpenCL device.
 */
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <stdlib.h>
#include <string.h>

#include "mm-engine.h"
#include "mm-safetensors.h"
#include "mm-tokenizer.h"

static gchar *
fixture (const gchar * rel)
{
  gchar *p = g_build_filename (g_getenv ("MM_FIXTURES"), rel, NULL);
  if (!g_file_test (p, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: fixture %s is missing\n", p);
    exit (77);
  }
  return p;
}

static gchar *
reference_text (MmSafetensors * ref, const gchar * llm)
{
  gchar *rel = g_strdup_printf ("%s/hf/tokenizer.json", llm);
  gchar *tj = fixture (rel);
  MmTokenizer *tok = mm_tokenizer_new_from_hf_json (tj, NULL);
  const MmTensorInfo *gi = mm_safetensors_find_tensor (ref, "generated_ids");
  gint32 *ids = g_new (gint32, gi->numel);
  memcpy (ids, gi->data, gi->numel * sizeof (gint32));
  gchar *text = mm_tokenizer_decode (tok, ids, gi->numel, MM_DECODE_NONE,
      NULL);
  g_free (ids);
  g_free (tj);
  g_free (rel);
  mm_tokenizer_free (tok);
  return g_strstrip (text);
}

static GstBuffer *
audio_buffer (MmSafetensors * ref)
{
  const MmTensorInfo *a = mm_safetensors_find_tensor (ref, "audio");
  GstBuffer *buf = gst_buffer_new_memdup (a->data, a->nbytes);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = gst_util_uint64_scale_int (a->numel,
      GST_SECOND, 16000);
  return buf;
}

/* Runs the pipeline; returns the first caption (or NULL) and its token
 * counts. */
static gchar *
run (const gchar * desc, GstBuffer * buf, gint * n_prompt, gint * n_gen)
{
  GError *err = NULL;
  GstElement *pipe = gst_parse_launch (desc, &err);
  if (pipe == NULL) {
    g_printerr ("FAIL: %s\n", err->message);
    g_error_free (err);
    gst_buffer_unref (buf);
    return NULL;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  GstBus *bus = gst_element_get_bus (pipe);
  gchar *got = NULL;
  gboolean done = FALSE;
  while (!done) {
    GstMessage *m = gst_bus_timed_pop (bus, 120 * GST_SECOND);
    if (m == NULL) {
      g_printerr ("FAIL: timeout\n");
      break;
    }
    const GstStructure *s = gst_message_get_structure (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (s, "mm-caption") && got == NULL) {
      got = g_strdup (gst_structure_get_string (s, "text"));
      gst_structure_get_int (s, "prompt-tokens", n_prompt);
      gst_structure_get_int (s, "generated-tokens", n_gen);
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *e2 = NULL;
      gst_message_parse_error (m, &e2, NULL);
      g_printerr ("FAIL: %s\n", e2->message);
      g_error_free (e2);
      g_clear_pointer (&got, g_free);
      done = TRUE;
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS)
      done = TRUE;
    gst_message_unref (m);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (bus);
  gst_object_unref (pipe);
  return got;
}

static gboolean
check (const gchar * type, const gchar * llm_name)
{
  gchar *rel = g_strdup_printf ("audio_mmproj/mmproj-%s.gguf", type);
  gchar *mmproj = fixture (rel);
  g_free (rel);
  rel = g_strdup_printf ("%s/%s.gguf", llm_name, llm_name);
  gchar *llm = fixture (rel);
  g_free (rel);
  rel = g_strdup_printf ("audio_mmproj/reference-%s.safetensors", type);
  gchar *refp = fixture (rel);
  g_free (rel);
  MmSafetensors *ref = mm_safetensors_open (refp, NULL);
  const gchar *prompt = mm_safetensors_get_metadata (ref, "prompt");
  gchar *want = reference_text (ref, llm_name);
  gchar *desc = g_strdup_printf ("appsrc name=src format=time caps="
      "audio/x-raw,format=F32LE,layout=interleaved,rate=16000,channels=1 "
      "! mmaudioenc model=\"%s\" ! mmllmsink model=\"%s\" sync=false "
      "prompt=\"%s\" max-tokens=12", mmproj, llm, prompt);
  gint n_prompt = -1, n_gen = -1;
  gchar *got = run (desc, audio_buffer (ref), &n_prompt, &n_gen);
  const MmTensorInfo *ids = mm_safetensors_find_tensor (ref, "input_ids");
  const MmTensorInfo *gen = mm_safetensors_find_tensor (ref, "generated_ids");
  gboolean ok = g_strcmp0 (got, want) == 0 && n_prompt == ids->numel
      && n_gen == gen->numel;
  g_print ("%s -> %s, prompt \"%s\"\ncaption: \"%s\"\nwant:    \"%s\"\n"
      "prompt tokens %d (want %" G_GINT64_FORMAT "), generated %d (want %"
      G_GINT64_FORMAT ")\n%s\n", type, llm_name, prompt, got ? got : "(none)",
      want, n_prompt, ids->numel, n_gen, gen->numel, ok ? "PASS" : "FAIL");
  g_free (got);
  g_free (want);
  g_free (desc);
  g_free (mmproj);
  g_free (llm);
  g_free (refp);
  mm_safetensors_free (ref);
  return ok;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  MmEngine *e = mm_engine_get (NULL, NULL);
  if (e == NULL) {
    g_print ("SKIP: no OpenCL device\n");
    return 77;
  }
  mm_engine_unref (e);
  gboolean ok = check ("voxtral", "llama");
  ok &= check ("qwen2a", "qwen2");
  return ok ? 0 : 1;
}
