/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The elements behind a request pad of mmllmsink.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "mm-caption-chain.h"

void
mm_caption_chain_init (MmCaptionChain * c)
{
  c->elements = g_ptr_array_new ();
  c->fakesink = NULL;
  c->textoverlay = NULL;
}

void
mm_caption_chain_clear (MmCaptionChain * c)
{
  g_clear_pointer (&c->elements, g_ptr_array_unref);
}

/* Appends videoconvert ! textoverlay when both exist. */
static void
add_overlay (MmCaptionChain * c)
{
  GstElement *convert = gst_element_factory_make ("videoconvert", NULL);
  GstElement *text = gst_element_factory_make ("textoverlay", NULL);

  if (convert == NULL || text == NULL) {
    GST_WARNING ("videoconvert or textoverlay is missing: no overlay");
    if (convert)
      gst_object_unref (gst_object_ref_sink (convert));
    if (text)
      gst_object_unref (gst_object_ref_sink (text));
    return;
  }
  gst_util_set_object_arg (G_OBJECT (text), "valignment", "bottom");
  gst_util_set_object_arg (G_OBJECT (text), "wrap-mode", "wordchar");
  g_object_set (text, "text", "", "shaded-background", TRUE,
      "font-desc", "Sans 14", NULL);
  g_ptr_array_add (c->elements, convert);
  g_ptr_array_add (c->elements, text);
  c->textoverlay = text;
}

/* Adds the elements to @bin and links them; FALSE when one cannot be
 * added (the chain then stops before it). */
static gboolean
add_and_link (MmCaptionChain * c, GstBin * bin)
{
  guint i;

  for (i = 0; i < c->elements->len; i++) {
    GstElement *e = g_ptr_array_index (c->elements, i);

    if (!gst_bin_add (bin, e)) {
      guint j;

      /* drop the ones not added (a floating element dies here) */
      for (j = i; j < c->elements->len; j++) {
        GstElement *rest = g_ptr_array_index (c->elements, j);

        if (g_object_is_floating (rest))
          gst_object_unref (gst_object_ref_sink (rest));
        if (rest == c->textoverlay)
          c->textoverlay = NULL;
        if (rest == c->fakesink)
          c->fakesink = NULL;
      }
      g_ptr_array_set_size (c->elements, i);
      return FALSE;
    }
    if (i > 0 && !gst_element_link (g_ptr_array_index (c->elements, i - 1), e))
      GST_WARNING_OBJECT (bin, "could not link to %s", GST_ELEMENT_NAME (e));
  }
  return TRUE;
}

gboolean
mm_caption_chain_build (MmCaptionChain * c, GstBin * bin, GstPad * ghost,
    const gchar * name, GstElement * video_sink, gboolean overlay,
    gboolean sync, gboolean async)
{
  gboolean ok;
  guint i;

  if (video_sink && overlay)
    add_overlay (c);
  if (video_sink) {
    g_ptr_array_add (c->elements, video_sink);
  } else {
    c->fakesink = gst_element_factory_make ("fakesink", name);
    g_object_set (c->fakesink, "sync", sync, "async", async,
        "enable-last-sample", FALSE, "qos", FALSE, NULL);
    g_ptr_array_add (c->elements, c->fakesink);
  }

  ok = add_and_link (c, bin);
  if (c->elements->len > 0) {
    GstElement *first = g_ptr_array_index (c->elements, 0);
    GstPad *target = gst_element_get_static_pad (first, "sink");

    if (target == NULL || !gst_ghost_pad_set_target (GST_GHOST_PAD (ghost),
            target))
      GST_WARNING_OBJECT (bin, "%s has no sink pad to target",
          GST_ELEMENT_NAME (first));
    gst_clear_object (&target);
  }
  for (i = c->elements->len; i > 0; i--)
    gst_element_sync_state_with_parent (g_ptr_array_index (c->elements, i - 1));
  return ok;
}

void
mm_caption_chain_teardown (MmCaptionChain * c, GstBin * bin, GstPad * ghost)
{
  guint i;

  gst_ghost_pad_set_target (GST_GHOST_PAD (ghost), NULL);
  for (i = 0; i < c->elements->len; i++) {
    GstElement *e = gst_object_ref (g_ptr_array_index (c->elements, i));

    gst_bin_remove (bin, e);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_object_unref (e);
  }
  g_ptr_array_set_size (c->elements, 0);
  c->fakesink = NULL;
  c->textoverlay = NULL;
}
