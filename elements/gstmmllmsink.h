/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef __GST_MM_LLM_SINK_H__
#define __GST_MM_LLM_SINK_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstMmLlmSinkFormat:
 * @GST_MM_LLM_SINK_FORMAT_AUTO: chosen by the file extension of `location`
 *     (.vtt/.webvtt: WebVTT, .srt: SRT, anything else: JSON Lines)
 * @GST_MM_LLM_SINK_FORMAT_JSONL: JSON Lines, one JSON object per caption
 * @GST_MM_LLM_SINK_FORMAT_WEBVTT: WebVTT subtitles
 * @GST_MM_LLM_SINK_FORMAT_SRT: SubRip subtitles
 *
 * The format of the caption file written by mmllmsink.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_LLM_SINK_FORMAT_AUTO = 0,
  GST_MM_LLM_SINK_FORMAT_JSONL = 1,
  GST_MM_LLM_SINK_FORMAT_WEBVTT = 2,
  GST_MM_LLM_SINK_FORMAT_SRT = 3,
} GstMmLlmSinkFormat;

#define GST_TYPE_MM_LLM_SINK_FORMAT (gst_mm_llm_sink_format_get_type ())
GType gst_mm_llm_sink_format_get_type (void);

/**
 * GstMmLlmSinkLeaky:
 * @GST_MM_LLM_SINK_LEAKY_AUTO: leaky when upstream is live, waiting
 *     otherwise
 * @GST_MM_LLM_SINK_LEAKY_YES: when max-pending requests wait for the LLM,
 *     drop the oldest one; the stream never waits
 * @GST_MM_LLM_SINK_LEAKY_NO: when max-pending requests wait for the LLM,
 *     block the streaming thread until there is room
 *
 * What mmllmsink does when the LLM falls behind.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_LLM_SINK_LEAKY_AUTO = 0,
  GST_MM_LLM_SINK_LEAKY_YES = 1,
  GST_MM_LLM_SINK_LEAKY_NO = 2,
} GstMmLlmSinkLeaky;

#define GST_TYPE_MM_LLM_SINK_LEAKY (gst_mm_llm_sink_leaky_get_type ())
GType gst_mm_llm_sink_leaky_get_type (void);

/**
 * GstMmLlmSinkTask:
 * @GST_MM_LLM_SINK_TASK_TRANSCRIBE: write down what is said, in the
 *     language it is said in
 * @GST_MM_LLM_SINK_TASK_TRANSLATE: translate it into English
 *
 * What a Whisper model does with speech (mmllmsink with a Whisper
 * `model`).
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_LLM_SINK_TASK_TRANSCRIBE = 0,
  GST_MM_LLM_SINK_TASK_TRANSLATE = 1,
} GstMmLlmSinkTask;

#define GST_TYPE_MM_LLM_SINK_TASK (gst_mm_llm_sink_task_get_type ())
GType gst_mm_llm_sink_task_get_type (void);

#define GST_TYPE_MM_LLM_SINK (gst_mm_llm_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstMmLlmSink, gst_mm_llm_sink, GST, MM_LLM_SINK, GstBin);

GST_ELEMENT_REGISTER_DECLARE (mmllmsink);

G_END_DECLS

#endif /* __GST_MM_LLM_SINK_H__ */
