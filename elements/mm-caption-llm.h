/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The LLM side of mmllmsink: a small backend vtable, the one backend the
 * element ships (over mm_llm_*, opencl/models/mm-llm.h), and running one
 * request (media, fitting into the LLM's context, generation).
 *
 * Backends: load() returns a handle owned by the caller, released with
 * free() after the last other call.  generate() returns newly allocated
 * text.  One thread at a time calls load/free and one (the element's
 * worker) count_prompt_tokens/generate; id(), hidden_size(),
 * context_size() and engine() only read values fixed at load and may be
 * called from any thread.  Tests install their own backend (see
 * gstmmllmsink-private.h); the element never ships a fake.
 */
#pragma once

#include <stdio.h>
#include <gst/gst.h>

#include "mm-caption-context.h"
#include "mm-caption-writer.h"
#include "mm-llm.h"

G_BEGIN_DECLS

typedef struct
{
  gpointer (*load) (const gchar * model, const gchar * device,
      GError ** error);
  void (*free) (gpointer llm);
  const gchar *(*id) (gpointer llm);
  gint (*hidden_size) (gpointer llm);
  gint (*context_size) (gpointer llm);
  /* The engine whose device buffers the LLM reads directly, or NULL:
   * tokens on any other device are passed as host floats. */
  MmEngine *(*engine) (gpointer llm);
  gint (*count_prompt_tokens) (gpointer llm, const MmLlmRequest * req,
      GError ** error);
  gchar *(*generate) (gpointer llm, const MmLlmRequest * req,
      MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
      GError ** error);
} MmCaptionBackend;

/* The backend over mm_llm_load()/mm_llm_generate(). */
const MmCaptionBackend *mm_caption_llm_backend (void);

/* What one request is asked with (copied from the properties). */
typedef struct
{
  gchar *prompt;
  gchar *system_prompt;         /* nullable */
  MmLlmSampling sampling;
} MmCaptionSettings;

void mm_caption_settings_clear (MmCaptionSettings * st);

/* One result: an LLM caption, or a piece of transcript. */
typedef struct
{
  gchar *text;                  /* valid UTF-8, trimmed */
  gchar *prompt;                /* NULL for transcripts */
  gchar *model;
  GstClockTime start, end;      /* PTS span */
  GstClockTime latency;         /* from the arrival of the newest sample */
  MmLlmStats stats;
  /* transcripts only (else NULL) */
  GArray *segments;             /* MmCaptionSegment, absolute PTS */
  gchar *task;                  /* "transcribe" or "translate" */
  gchar *language;              /* nullable */
} MmCaptionResult;

void mm_caption_result_free (MmCaptionResult * c);
MmCaptionResult *mm_caption_result_copy (const MmCaptionResult * c);
/* A GArray of MmCaptionSegment that frees their text. */
GArray *mm_caption_segments_new (void);
/* The `mm-caption` element message's structure (see mmllmsink's doc). */
GstStructure *mm_caption_result_to_structure (const MmCaptionResult * c);
/* "[start --> end] text" lines on @out (one per segment of a
 * transcript), flushed. */
void mm_caption_result_print (const MmCaptionResult * c, FILE * out);
/* @c as the writer takes it (strings and segments borrowed from @c). */
void mm_caption_result_to_caption (const MmCaptionResult * c,
    MmCaption * out);

typedef enum
{
  MM_CAPTION_RUN_OK,
  MM_CAPTION_RUN_REFUSED,       /* the prompt alone does not fit */
  MM_CAPTION_RUN_FAILED,        /* @error set (also when @keep_going
                                 * stopped it) */
} MmCaptionRun;

/* Runs @r: media from its samples (device buffers when they live on the
 * backend's engine), the oldest media left out until prompt and answer
 * fit the LLM's context, then generation; @keep_going is called with every
 * piece and stops it by returning FALSE. */
MmCaptionRun mm_caption_llm_run (const MmCaptionBackend * backend,
    gpointer llm, const MmCaptionRequest * r, const MmCaptionSettings * st,
    MmLlmTokenFunc keep_going, gpointer user_data,
    MmCaptionResult ** result, GError ** error);

G_END_DECLS
