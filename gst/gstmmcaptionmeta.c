/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:gstmmcaptionmeta
 * @title: GstMmCaptionMeta
 * @short_description: a caption or answer produced by an LLM
 * @see_also: mmllmsink
 *
 * mmllmsink attaches a #GstMmCaptionMeta with its current caption to the
 * video frames it passes on to its `video-sink`. The meta carries the text,
 * the prompt it answers, the PTS span of the stream that was analysed, the
 * latency of the result and token counts.
 *
 * |[<!-- language="C" -->
 * GstMmCaptionMeta *cmeta = gst_buffer_get_mm_caption_meta (buffer);
 * if (cmeta)
 *   g_print ("%" GST_TIME_FORMAT ": %s\n", GST_TIME_ARGS (cmeta->start),
 *       cmeta->text);
 * ]|
 *
 * The meta has no tags: it describes the content, not the pixels, so it
 * survives gst_buffer_copy() and the metadata copying of transforms such as
 * videoconvert, videoscale or textoverlay. Its strings are deep-copied.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmmcaptionmeta.h"

static gboolean
gst_mm_caption_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstMmCaptionMeta *cmeta = (GstMmCaptionMeta *) meta;

  cmeta->text = NULL;
  cmeta->prompt = NULL;
  cmeta->start = GST_CLOCK_TIME_NONE;
  cmeta->end = GST_CLOCK_TIME_NONE;
  cmeta->latency = GST_CLOCK_TIME_NONE;
  cmeta->prompt_tokens = 0;
  cmeta->generated_tokens = 0;
  cmeta->model_id = NULL;

  return TRUE;
}

static void
gst_mm_caption_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstMmCaptionMeta *cmeta = (GstMmCaptionMeta *) meta;

  g_clear_pointer (&cmeta->text, g_free);
  g_clear_pointer (&cmeta->prompt, g_free);
  g_clear_pointer (&cmeta->model_id, g_free);
}

static void
gst_mm_caption_meta_set (GstMmCaptionMeta * cmeta, const gchar * text,
    const gchar * prompt, GstClockTime start, GstClockTime end,
    GstClockTime latency, guint prompt_tokens, guint generated_tokens,
    const gchar * model_id)
{
  g_free (cmeta->text);
  cmeta->text = g_strdup (text ? text : "");
  g_free (cmeta->prompt);
  cmeta->prompt = g_strdup (prompt);
  cmeta->start = start;
  cmeta->end = end;
  cmeta->latency = latency;
  cmeta->prompt_tokens = prompt_tokens;
  cmeta->generated_tokens = generated_tokens;
  g_free (cmeta->model_id);
  cmeta->model_id = g_strdup (model_id);
}

/* The caption describes a span of the stream, not pixels: it stays valid
 * for every transform.  Strings are deep-copied so the copy outlives the
 * source buffer. */
static gboolean
gst_mm_caption_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstMmCaptionMeta *smeta = (GstMmCaptionMeta *) meta;
  GstMmCaptionMeta *dmeta;

  dmeta = gst_buffer_get_mm_caption_meta (dest);
  if (dmeta == NULL) {
    dmeta = (GstMmCaptionMeta *) gst_buffer_add_meta (dest,
        GST_MM_CAPTION_META_INFO, NULL);
    if (dmeta == NULL)
      return FALSE;
  }

  gst_mm_caption_meta_set (dmeta, smeta->text, smeta->prompt, smeta->start,
      smeta->end, smeta->latency, smeta->prompt_tokens,
      smeta->generated_tokens, smeta->model_id);

  return TRUE;
}

/**
 * gst_mm_caption_meta_api_get_type:
 *
 * Returns: the #GType of the #GstMmCaptionMeta API.
 *
 * Since: 0.1
 */
GType
gst_mm_caption_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType _type = gst_meta_api_type_register ("GstMmCaptionMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

/**
 * gst_mm_caption_meta_get_info:
 *
 * Returns: (transfer none): the #GstMetaInfo of #GstMmCaptionMeta.
 *
 * Since: 0.1
 */
const GstMetaInfo *
gst_mm_caption_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *meta =
        gst_meta_register (gst_mm_caption_meta_api_get_type (),
        "GstMmCaptionMeta", sizeof (GstMmCaptionMeta),
        gst_mm_caption_meta_init, gst_mm_caption_meta_free,
        gst_mm_caption_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) meta);
  }
  return info;
}

/**
 * gst_buffer_add_mm_caption_meta:
 * @buffer: a writable #GstBuffer
 * @text: the caption, UTF-8 (%NULL is stored as "")
 * @prompt: (nullable): the prompt the caption answers
 * @start: PTS where the analysed span starts, or %GST_CLOCK_TIME_NONE
 * @end: PTS where the analysed span ends, or %GST_CLOCK_TIME_NONE
 * @latency: nanoseconds from the last sample of the span to the result,
 *     or %GST_CLOCK_TIME_NONE
 * @prompt_tokens: tokens of the full prompt
 * @generated_tokens: tokens generated
 * @model_id: (nullable): identifier of the LLM
 *
 * Attaches a caption to @buffer. The strings are copied.
 *
 * Returns: (transfer none) (nullable): the #GstMmCaptionMeta added to
 * @buffer, owned by @buffer, or %NULL on invalid arguments.
 *
 * Since: 0.1
 */
GstMmCaptionMeta *
gst_buffer_add_mm_caption_meta (GstBuffer * buffer, const gchar * text,
    const gchar * prompt, GstClockTime start, GstClockTime end,
    GstClockTime latency, guint prompt_tokens, guint generated_tokens,
    const gchar * model_id)
{
  GstMmCaptionMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);

  meta = (GstMmCaptionMeta *) gst_buffer_add_meta (buffer,
      GST_MM_CAPTION_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  gst_mm_caption_meta_set (meta, text, prompt, start, end, latency,
      prompt_tokens, generated_tokens, model_id);

  return meta;
}

/**
 * gst_buffer_get_mm_caption_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the #GstMmCaptionMeta of @buffer,
 * owned by @buffer, or %NULL when it carries none.
 *
 * Since: 0.1
 */
GstMmCaptionMeta *
gst_buffer_get_mm_caption_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstMmCaptionMeta *) gst_buffer_get_meta (buffer,
      GST_MM_CAPTION_META_API_TYPE);
}
