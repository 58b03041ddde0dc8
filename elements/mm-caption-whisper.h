/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Speech transcription for mmllmsink: when `model` is a Hugging Face
 * Whisper folder that can transcribe, each audio sample (the encoder
 * output of one mmaudioenc window) is decoded by the Whisper decoder
 * (opencl/models/mm-whisper.h, greedy, the logit rules of
 * generation_config.json), and the windows are merged into one running
 * transcript (mm-transcript-merge.h).
 *
 * One thread at a time (the element's worker) calls run/flush/reset;
 * load/free from the element's start/stop; the getters only read values
 * fixed at load.
 */
#pragma once

#include <gst/gst.h>

#include "mm-caption-context.h"
#include "mm-caption-llm.h"
#include "mm-whisper.h"

G_BEGIN_DECLS

typedef struct _MmCaptionWhisper MmCaptionWhisper;

/* Whether @model is a folder whose config.json says model_type "whisper"
 * (anything else, or no such file, goes to the LLM). */
gboolean mm_caption_whisper_is_model (const gchar * model);

/* Loads the Whisper folder @model on @device; fails (naming the folder)
 * when it cannot transcribe (no decoder weights, tokenizer.json or
 * special tokens). */
MmCaptionWhisper *mm_caption_whisper_load (const gchar * model,
    const gchar * device, GError ** error);
void mm_caption_whisper_free (MmCaptionWhisper * t);

const gchar *mm_caption_whisper_id (MmCaptionWhisper * t);
/* What the tokens must be: [n_audio_tokens, d_model]. */
gint mm_caption_whisper_d_model (MmCaptionWhisper * t);
gint mm_caption_whisper_n_audio_tokens (MmCaptionWhisper * t);

/* What one window is transcribed with (copied from the properties). */
typedef struct
{
  gchar *language;              /* nullable: detected per window
                                 * (multilingual models) */
  MmWhisperTask task;
  gboolean timestamps;
  gint max_tokens;              /* <= 0: up to the decoder's context */
} MmCaptionWhisperSettings;

void mm_caption_whisper_settings_clear (MmCaptionWhisperSettings * st);

/* Transcribes the samples of @r not transcribed yet (in order; device
 * buffers are read directly when they live on the model's engine, else
 * the host copy) and merges them.  *@result: what they commit (text, the
 * segments with absolute PTS, the span, latency and token counts), or
 * NULL when nothing new is committed.  FALSE with @error on failure. */
gboolean mm_caption_whisper_run (MmCaptionWhisper * t,
    const MmCaptionRequest * r, const MmCaptionWhisperSettings * st,
    MmCaptionResult ** result, GError ** error);

/* End of stream: what was held back, or NULL (no token counts: they went
 * with the window's own result; latency from that window's arrival);
 * then starts afresh. */
MmCaptionResult *mm_caption_whisper_flush (MmCaptionWhisper * t);

/* Forgets the running transcript (a flush, a new stream). */
void mm_caption_whisper_reset (MmCaptionWhisper * t);

G_END_DECLS
