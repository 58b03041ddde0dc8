/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GstMmCaptionMeta: the caption an LLM produced for a span of the stream.
 */
#ifndef __GST_MM_CAPTION_META_H__
#define __GST_MM_CAPTION_META_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_MM_CAPTION_META_API_TYPE (gst_mm_caption_meta_api_get_type ())
#define GST_MM_CAPTION_META_INFO (gst_mm_caption_meta_get_info ())

typedef struct _GstMmCaptionMeta GstMmCaptionMeta;

/**
 * GstMmCaptionMeta:
 * @meta: parent #GstMeta
 * @text: the caption or answer, UTF-8
 * @prompt: the prompt (question or instruction) it answers
 * @start: PTS where the analysed span starts, or %GST_CLOCK_TIME_NONE
 * @end: PTS where the analysed span ends, or %GST_CLOCK_TIME_NONE
 * @latency: nanoseconds from the arrival of the last sample of the span to
 *     the result, or %GST_CLOCK_TIME_NONE
 * @prompt_tokens: tokens of the full prompt (template, media and text)
 * @generated_tokens: tokens generated for @text
 * @model_id: identifier of the LLM that wrote @text (nullable)
 *
 * A caption (or answer to a question) that mmllmsink produced for a span of
 * the stream. Video frames that continue to the `video-sink` of mmllmsink
 * carry the meta of the current caption, which is usually about frames that
 * were shown shortly before: compare @end with the frame PTS to tell.
 *
 * All strings are owned by the meta; the meta is deep-copied when a buffer
 * is copied.
 *
 * Since: 0.1
 */
struct _GstMmCaptionMeta
{
  GstMeta meta;

  gchar *text;
  gchar *prompt;
  GstClockTime start;
  GstClockTime end;
  GstClockTime latency;
  guint prompt_tokens;
  guint generated_tokens;
  gchar *model_id;
};

GType gst_mm_caption_meta_api_get_type (void);

const GstMetaInfo *gst_mm_caption_meta_get_info (void);

GstMmCaptionMeta *gst_buffer_add_mm_caption_meta (GstBuffer * buffer,
    const gchar * text, const gchar * prompt, GstClockTime start,
    GstClockTime end, GstClockTime latency, guint prompt_tokens,
    guint generated_tokens, const gchar * model_id);

GstMmCaptionMeta *gst_buffer_get_mm_caption_meta (GstBuffer * buffer);

G_END_DECLS

#endif /* __GST_MM_CAPTION_META_H__ */
