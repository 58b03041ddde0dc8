/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink's generation thread: requests from the rolling context go to
 * the LLM (or Whisper), and each result to every output form (file,
 * overlay, signal, bus message, stdout).  The element and its locking are
 * described in gstmmllmsink.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include "gstmmllmsink-impl.h"

#define GST_CAT_DEFAULT gst_mm_llm_sink_debug

/* ---- worker ---- */

static void
gst_mm_llm_sink_get_settings (GstMmLlmSink * self, MmCaptionSettings * st,
    gboolean * print)
{
  mm_llm_sampling_init (&st->sampling);
  GST_OBJECT_LOCK (self);
  st->prompt = g_strdup (self->prop_prompt ? self->prop_prompt : "");
  st->system_prompt = g_strdup (self->prop_system_prompt);
  st->sampling.max_tokens = self->prop_max_tokens;
  st->sampling.temperature = self->prop_temperature;
  st->sampling.top_k = self->prop_top_k;
  st->sampling.top_p = self->prop_top_p;
  st->sampling.repetition_penalty = self->prop_repetition_penalty;
  st->sampling.seed = self->prop_seed;
  *print = self->prop_print;
  GST_OBJECT_UNLOCK (self);
}

typedef struct
{
  GstMmLlmSink *self;
  gint epoch;
} GenerateCtx;

/* Stops a generation whose request was flushed or aborted. */
static gboolean
gst_mm_llm_sink_on_piece (const gchar * piece, gpointer user_data)
{
  GenerateCtx *ctx = user_data;

  return g_atomic_int_get (&ctx->self->epoch) == ctx->epoch;
}

/* Refuses a prompt that alone does not fit the context: one warning per
 * prompt. */
static void
gst_mm_llm_sink_refuse_prompt (GstMmLlmSink * self, const gchar * prompt)
{
  gboolean warn;

  g_mutex_lock (&self->lock);
  warn = g_strcmp0 (self->refused_prompt, prompt) != 0;
  if (warn) {
    g_free (self->refused_prompt);
    self->refused_prompt = g_strdup (prompt);
  }
  g_mutex_unlock (&self->lock);

  if (warn)
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("The prompt does not fit the context of LLM \"%s\" (%d tokens); "
            "no captions until the prompt changes.", self->llm_id,
            self->context_size), ("prompt: \"%s\"", prompt));
}

/* Runs one request; NULL when it was refused, aborted or failed (errors
 * are posted and stop the stream). */
static MmCaptionResult *
gst_mm_llm_sink_generate (GstMmLlmSink * self, MmCaptionRequest * r,
    const MmCaptionSettings * st)
{
  GenerateCtx gen = { self, r->epoch };
  MmCaptionResult *c = NULL;
  GError *err = NULL;

  switch (mm_caption_llm_run (self->backend, self->llm, r, st,
          gst_mm_llm_sink_on_piece, &gen, &c, &err)) {
    case MM_CAPTION_RUN_OK:
      break;
    case MM_CAPTION_RUN_REFUSED:
      gst_mm_llm_sink_refuse_prompt (self, st->prompt);
      break;
    case MM_CAPTION_RUN_FAILED:
      if (g_atomic_int_get (&self->epoch) != r->epoch)
        break;                  /* aborted by a flush, a stop or EOS */
      GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
          ("LLM \"%s\" failed to generate a caption.", self->llm_id),
          ("%s", err ? err->message : "unknown error"));
      g_mutex_lock (&self->lock);
      self->failed = TRUE;
      mm_caption_context_drop_pending (self->ctx);
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      break;
  }
  g_clear_error (&err);
  return c;
}

/* Hands a caption to every output; worker thread, no locks held. */
static void
gst_mm_llm_sink_deliver (GstMmLlmSink * self, const MmCaptionResult * c,
    gboolean print)
{
  GstElement *overlay = NULL;
  GError *err = NULL;
  MmCaption mc;

  GST_DEBUG_OBJECT (self, "caption %" GST_TIME_FORMAT " - %" GST_TIME_FORMAT
      ": %s", GST_TIME_ARGS (c->start), GST_TIME_ARGS (c->end), c->text);

  mm_caption_result_to_caption (c, &mc);
  if (self->writer && !mm_caption_writer_write (self->writer, &mc, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not write the caption file."), ("%s", err->message));
    g_clear_error (&err);
    g_mutex_lock (&self->lock);
    self->failed = TRUE;
    g_mutex_unlock (&self->lock);
  }

  GST_OBJECT_LOCK (self);
  if (self->textoverlay)
    overlay = gst_object_ref (self->textoverlay);
  GST_OBJECT_UNLOCK (self);
  if (overlay) {
    g_object_set (overlay, "text", c->text, NULL);
    gst_object_unref (overlay);
  }

  g_signal_emit (self, gst_mm_llm_sink_signals[SIGNAL_CAPTION], 0, c->text,
      (guint64) c->start, (guint64) c->end);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          mm_caption_result_to_structure (c)));

  if (print)
    mm_caption_result_print (c, stdout);
}

/* Current first, so that frames carry the caption once it is announced;
 * only the worker replaces it, so @c stays valid.  Takes @c; returns it,
 * or NULL when @epoch is stale (and @c freed). */
static MmCaptionResult *
gst_mm_llm_sink_set_current (GstMmLlmSink * self, MmCaptionResult * c,
    gint epoch)
{
  g_mutex_lock (&self->lock);
  if (c && self->epoch == epoch) {
    g_clear_pointer (&self->current, mm_caption_result_free);
    self->current = c;
    self->n_captions++;
  } else {
    g_clear_pointer (&c, mm_caption_result_free);
  }
  g_mutex_unlock (&self->lock);
  return c;
}

/* Transcribes the windows of @r with Whisper: NULL when nothing new is
 * committed, or on failure (posted; the stream stops). */
static MmCaptionResult *
gst_mm_llm_sink_transcribe (GstMmLlmSink * self, MmCaptionRequest * r)
{
  MmCaptionWhisperSettings st = { 0, };
  MmCaptionResult *c = NULL;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  if (self->prop_language && self->prop_language[0]
      && g_ascii_strcasecmp (self->prop_language, "auto") != 0)
    st.language = g_strdup (self->prop_language);
  st.task = self->prop_task == GST_MM_LLM_SINK_TASK_TRANSLATE ?
      MM_WHISPER_TASK_TRANSLATE : MM_WHISPER_TASK_TRANSCRIBE;
  st.timestamps = self->prop_timestamps;
  st.max_tokens = self->prop_max_tokens_set ? self->prop_max_tokens : 0;
  GST_OBJECT_UNLOCK (self);

  /* a flush (or a new run) since the last window: a new transcript */
  if (r->epoch != self->transcript_epoch) {
    mm_caption_whisper_reset (self->whisper);
    self->transcript_epoch = r->epoch;
  }
  if (!mm_caption_whisper_run (self->whisper, r, &st, &c, &err)
      && g_atomic_int_get (&self->epoch) == r->epoch) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Whisper model \"%s\" failed to transcribe a window.",
            self->llm_id), ("%s", err ? err->message : "unknown error"));
    g_mutex_lock (&self->lock);
    self->failed = TRUE;
    mm_caption_context_drop_pending (self->ctx);
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
  }
  g_clear_error (&err);
  mm_caption_whisper_settings_clear (&st);
  return c;
}

/* EOS while transcribing: the transcript commits what it held back. */
static void
gst_mm_llm_sink_finish_transcript_locked (GstMmLlmSink * self)
{
  gint epoch = self->epoch;
  MmCaptionResult *c = NULL;
  gboolean print;

  self->busy = TRUE;
  g_mutex_unlock (&self->lock);

  /* a transcript of an older epoch was flushed away */
  if (self->transcript_epoch == epoch)
    c = mm_caption_whisper_flush (self->whisper);
  else
    mm_caption_whisper_reset (self->whisper);
  GST_OBJECT_LOCK (self);
  print = self->prop_print;
  GST_OBJECT_UNLOCK (self);
  c = gst_mm_llm_sink_set_current (self, c, epoch);
  if (c)
    gst_mm_llm_sink_deliver (self, c, print);

  g_mutex_lock (&self->lock);
  if (self->epoch == epoch)
    self->flush_transcript = FALSE;
  self->busy = FALSE;
  g_cond_broadcast (&self->cond);
}

gpointer
gst_mm_llm_sink_worker (gpointer data)
{
  GstMmLlmSink *self = data;

  g_mutex_lock (&self->lock);
  self->transcript_epoch = self->epoch - 1;
  while (self->running) {
    MmCaptionRequest *r = mm_caption_context_pop_request (self->ctx);
    MmCaptionSettings st = { 0, };
    MmCaptionResult *c;
    gboolean print;

    if (r == NULL && self->flush_transcript && self->whisper) {
      gst_mm_llm_sink_finish_transcript_locked (self);
      continue;
    }
    if (r == NULL) {
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }
    self->busy = TRUE;
    g_cond_broadcast (&self->cond);     /* room in the queue */
    g_mutex_unlock (&self->lock);

    gst_mm_llm_sink_get_settings (self, &st, &print);
    if (self->whisper)
      c = gst_mm_llm_sink_transcribe (self, r);
    else
      c = gst_mm_llm_sink_generate (self, r, &st);
    mm_caption_settings_clear (&st);

    c = gst_mm_llm_sink_set_current (self, c, r->epoch);
    if (c)
      gst_mm_llm_sink_deliver (self, c, print);

    g_mutex_lock (&self->lock);
    mm_caption_request_free (r);
    self->busy = FALSE;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

