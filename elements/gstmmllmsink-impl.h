/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink's instance struct, shared by the element file and its worker
 * (gstmmllmsink-worker.c); not installed.
 */
#pragma once

#include "gstmmllmsink.h"
#include "mm-caption-context.h"
#include "mm-caption-llm.h"
#include "mm-caption-whisper.h"
#include "mm-caption-writer.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (gst_mm_llm_sink_debug);

enum
{
  SIGNAL_CAPTION,
  LAST_SIGNAL,
};

extern guint gst_mm_llm_sink_signals[LAST_SIGNAL];

/* Why a GstBin: a sink with several request pads needs preroll, clock
 * synchronisation, EOS aggregation and latency answers per pad, which
 * GstBaseSink gives one pad at a time.  Each pad therefore ends in an
 * internal fakesink (or in the user's video-sink), and the element only
 * watches the buffers and events that pass its ghost pads. */
struct _GstMmLlmSink
{
  GstBin parent;

  /* properties, under the object lock */
  gchar *prop_model;
  gchar *prop_device;
  gchar *prop_prompt;
  gchar *prop_system_prompt;
  gint prop_max_tokens;
  gfloat prop_temperature;
  gint prop_top_k;
  gfloat prop_top_p;
  gfloat prop_repetition_penalty;
  guint64 prop_seed;
  gboolean prop_max_tokens_set; /* else Whisper decodes up to its context */
  gchar *prop_language;
  GstMmLlmSinkTask prop_task;
  gboolean prop_timestamps;
  guint prop_context_tokens;
  gdouble prop_interval;
  guint prop_max_pending;
  GstMmLlmSinkLeaky prop_leaky;
  gchar *prop_location;
  GstMmLlmSinkFormat prop_format;
  gboolean prop_print;
  GstElement *prop_video_sink;
  gboolean prop_overlay;
  gboolean prop_sync;
  gboolean prop_async;
  guint prop_eos_timeout;

  const MmCaptionBackend *backend;

  /* pads; changed from request/release and the video-sink setters, which
   * run with the element in NULL/READY or under the state lock */
  guint next_video, next_audio;
  GstPad *video_pad;            /* the pad that feeds video-sink */
  GstElement *textoverlay;      /* in video_pad's chain, or NULL */

  /* fixed between start and stop; with a Whisper model, whisper instead
   * of llm (hidden_size is then its d_model) */
  gpointer llm;
  MmCaptionWhisper *whisper;
  gchar *llm_id;
  gint hidden_size;
  gint context_size;
  MmCaptionWriter *writer;      /* worker thread only */
  GThread *worker;

  /* everything below under lock; lock order: the object lock, then
   * lock; never post a message while holding lock (posting takes the
   * object lock) */
  GMutex lock;
  GCond cond;
  gboolean running;             /* worker should keep going */
  gboolean busy;                /* worker is generating or delivering */
  gboolean failed;              /* an error was posted; stop streaming */
  gboolean leaky;               /* the leaky mode in effect */
  gboolean dim_error;
  gboolean flush_transcript;    /* EOS: the worker commits what is held */
  gint encoder_warned;          /* atomic: tokens of another model id */
  gint transcript_epoch;        /* worker only: epoch of the transcript */
  gint epoch;                   /* bumped (atomically) by flush/stop/abort */
  MmCaptionContext *ctx;        /* samples and pending requests */
  gchar *refused_prompt;        /* warned once: too long for the context */
  MmCaptionResult *current;
  guint64 n_captions;
  guint64 n_dropped;
  gboolean oversize_warned;
};

/* The generation thread (gstmmllmsink-worker.c): takes requests from
 * the context, runs the LLM or Whisper, and delivers each result to every
 * output. */
gpointer gst_mm_llm_sink_worker (gpointer data);

G_END_DECLS
