/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VLM fixture through the elements: the fixture image (30x50 RGB, rows
 * padded as GStreamer lays them out) from appsrc into
 *   mmvisionenc model=mmproj-idefics3.gguf ! mmllmsink model=idefics3.gguf
 * must give, as the mm-caption message, exactly the text of transformers'
 * greedy ids (reference generated_ids, 12 tokens, decoded by the fixture's
 * tokenizer).  The mmproj file splits images as SmolVLM's processor does
 * (longest edge 126, tiles of 42): the frame's GstMmTokensMeta must say
 * 2 x 3 tiles + the global image (the reference's layout), and mmllmsink
 * splices the seven views with <row_r_col_c> / <global-img> markers as
 * Idefics3Processor does.  Skips (77) without the fixtures or an OpenCL
 * device.
 */
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <string.h>

#include "gst/gstmmtokensmeta.h"

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

/* The reference caption: generated_ids decoded, up to an end of turn. */
static gchar *
reference_text (MmSafetensors * ref)
{
  gchar *tj = fixture ("idefics3/hf/tokenizer.json");
  MmTokenizer *tok = mm_tokenizer_new_from_hf_json (tj, NULL);
  const MmTensorInfo *gi = mm_safetensors_find_tensor (ref, "generated_ids");
  gint32 eou = mm_tokenizer_token_id (tok, "<end_of_utterance>");
  gint32 *ids = g_new (gint32, gi->numel);
  gsize n = 0;
  for (gint64 i = 0; i < gi->numel; i++) {
    memcpy (&ids[n], gi->data + 4 * i, 4);
    if (ids[n] == eou)
      break;
    n++;
  }
  gchar *text = mm_tokenizer_decode (tok, ids, n, MM_DECODE_NONE, NULL);
  g_free (ids);
  g_free (tj);
  mm_tokenizer_free (tok);
  return text;
}

/* The layout of the tokens leaving mmvisionenc. */
typedef struct
{
  guint n_views, tokens_per_view, rows, cols;
  gint global_view;
  gboolean seen;
} Layout;

static GstPadProbeReturn
layout_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Layout *l = data;
  GstMmTokensMeta *meta =
      gst_buffer_get_mm_tokens_meta (GST_PAD_PROBE_INFO_BUFFER (info));
  if (meta) {
    l->n_views = meta->n_views;
    l->tokens_per_view = meta->tokens_per_view;
    l->rows = meta->rows;
    l->cols = meta->cols;
    l->global_view = meta->global_view;
    l->seen = TRUE;
  }
  return GST_PAD_PROBE_OK;
}

static GstBuffer *
image_buffer (const MmTensorInfo * img, gint * w, gint * h)
{
  *h = img->shape[0];
  *w = img->shape[1];
  gint stride = GST_ROUND_UP_4 (*w * 3);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, stride * *h, NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  memset (map.data, 0, map.size);
  for (gint y = 0; y < *h; y++)
    memcpy (map.data + y * stride, img->data + y * *w * 3, *w * 3);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  return buf;
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
  gchar *mmproj = fixture ("idefics3/mmproj-idefics3.gguf");
  gchar *llm = fixture ("idefics3/idefics3.gguf");
  gchar *refp = fixture ("idefics3/reference.safetensors");
  MmSafetensors *ref = mm_safetensors_open (refp, NULL);
  gchar *want = reference_text (ref);
  gint w, h;
  GstBuffer *buf = image_buffer (mm_safetensors_find_tensor (ref,
          "image_rgb"), &w, &h);
  gchar *desc = g_strdup_printf ("appsrc name=src format=time caps="
      "video/x-raw,format=RGB,width=%d,height=%d,framerate=1/1 "
      "! mmvisionenc name=enc model=\"%s\" ! mmllmsink model=\"%s\" sync=false "
      "prompt=\"Describe this image.\" max-tokens=12", w, h, mmproj, llm);
  GError *err = NULL;
  GstElement *pipe = gst_parse_launch (desc, &err);
  if (pipe == NULL) {
    g_printerr ("FAIL: %s\n", err->message);
    return 1;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  GstElement *enc = gst_bin_get_by_name (GST_BIN (pipe), "enc");
  GstPad *enc_src = gst_element_get_static_pad (enc, "src");
  Layout layout = { 0 };
  gst_pad_add_probe (enc_src, GST_PAD_PROBE_TYPE_BUFFER, layout_probe,
      &layout, NULL);
  gst_object_unref (enc_src);
  gst_object_unref (enc);
  const MmTensorInfo *lay = mm_safetensors_find_tensor (ref, "layout");
  gint32 want_lay[3] = { -1, -1, -1 };
  if (lay && lay->numel == 3)
    memcpy (want_lay, lay->data, sizeof (want_lay));
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  GstBus *bus = gst_element_get_bus (pipe);
  gchar *got = NULL;
  gboolean done = FALSE, failed = FALSE;
  while (!done) {
    GstMessage *m = gst_bus_timed_pop (bus, 120 * GST_SECOND);
    if (m == NULL) {
      g_printerr ("FAIL: timeout\n");
      failed = done = TRUE;
      break;
    }
    const GstStructure *s = gst_message_get_structure (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (s, "mm-caption") && got == NULL)
      got = g_strdup (gst_structure_get_string (s, "text"));
    else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *e2 = NULL;
      gst_message_parse_error (m, &e2, NULL);
      g_printerr ("FAIL: %s\n", e2->message);
      g_error_free (e2);
      failed = done = TRUE;
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS)
      done = TRUE;
    gst_message_unref (m);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gboolean layout_ok = layout.seen && (gint) layout.rows == want_lay[0]
      && (gint) layout.cols == want_lay[1]
      && (gint) layout.n_views == want_lay[2]
      && layout.global_view == want_lay[0] * want_lay[1];
  gboolean ok = !failed && layout_ok && g_strcmp0 (got, want) == 0;
  g_print ("tokens meta: %u views of %u tokens, %u x %u tiles, global view "
      "%d (processor: %d x %d, %d views)\n", layout.n_views,
      layout.tokens_per_view, layout.rows, layout.cols, layout.global_view,
      want_lay[0], want_lay[1], want_lay[2]);
  g_print ("caption: \"%s\"\nwant:    \"%s\"\n%s\n", got ? got : "(none)",
      want, ok ? "PASS" : "FAIL");
  g_free (got);
  g_free (want);
  g_free (desc);
  g_free (mmproj);
  g_free (llm);
  g_free (refp);
  mm_safetensors_free (ref);
  gst_object_unref (src);
  gst_object_unref (bus);
  gst_object_unref (pipe);
  return ok ? 0 : 1;
}
