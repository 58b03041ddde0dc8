/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rolling context and the request queue of mmllmsink.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "mm-caption-context.h"

struct _MmCaptionContext
{
  GQueue samples;               /* MmCaptionSample, by running time */
  guint total;                  /* tokens in samples */
  guint64 next_id;
  GstClockTime next_trigger;    /* running time of the next interval request */
  gboolean have_new;            /* samples arrived since the last request */
  GstClockTime new_start, new_end;
  GstClockTime last_end;        /* end of the last request's span */
  gint64 last_arrival;
  GQueue pending;               /* MmCaptionRequest */
};

static void
sample_clear (MmCaptionSample * s)
{
  g_free (s->model_id);
  if (s->tokens)
    gst_mm_tokens_unref (s->tokens);
}

MmCaptionSample *
mm_caption_sample_new (const GstMmTokensMeta * meta, GstClockTime pts,
    GstClockTime end, GstClockTime running_time)
{
  MmCaptionSample *s = g_atomic_rc_box_new0 (MmCaptionSample);

  s->modality = meta->modality;
  s->n_tokens = meta->n_tokens;
  s->dim = meta->dim;
  s->pts = pts;
  s->end = end;
  s->running_time = running_time;
  s->model_id = g_strdup (meta->model_id);
  s->tokens = gst_mm_tokens_ref (meta->tokens);
  /* the layout the LLM's templates know: tiles then the global view */
  if (meta->rows > 0 && meta->cols > 0
      && meta->n_views == meta->rows * meta->cols + 1
      && meta->global_view == (gint) (meta->rows * meta->cols)) {
    s->rows = meta->rows;
    s->cols = meta->cols;
  }
  return s;
}

MmCaptionSample *
mm_caption_sample_ref (MmCaptionSample * s)
{
  return g_atomic_rc_box_acquire (s);
}

void
mm_caption_sample_unref (MmCaptionSample * s)
{
  g_atomic_rc_box_release_full (s, (GDestroyNotify) sample_clear);
}

void
mm_caption_request_free (MmCaptionRequest * r)
{
  if (r == NULL)
    return;
  g_ptr_array_unref (r->samples);
  g_free (r);
}

MmCaptionContext *
mm_caption_context_new (void)
{
  MmCaptionContext *ctx = g_new0 (MmCaptionContext, 1);

  g_queue_init (&ctx->samples);
  g_queue_init (&ctx->pending);
  mm_caption_context_clear (ctx);
  return ctx;
}

void
mm_caption_context_free (MmCaptionContext * ctx)
{
  if (ctx == NULL)
    return;
  mm_caption_context_clear (ctx);
  mm_caption_context_drop_pending (ctx);
  g_free (ctx);
}

void
mm_caption_context_clear (MmCaptionContext * ctx)
{
  g_queue_clear_full (&ctx->samples, (GDestroyNotify) mm_caption_sample_unref);
  ctx->total = 0;
  ctx->next_trigger = GST_CLOCK_TIME_NONE;
  ctx->have_new = FALSE;
  ctx->new_start = ctx->new_end = GST_CLOCK_TIME_NONE;
  ctx->last_end = GST_CLOCK_TIME_NONE;
}

gboolean
mm_caption_context_due (MmCaptionContext * ctx, GstClockTime running_time,
    GstClockTime interval)
{
  if (interval == 0 || !GST_CLOCK_TIME_IS_VALID (running_time))
    return TRUE;
  if (!GST_CLOCK_TIME_IS_VALID (ctx->next_trigger)) {
    ctx->next_trigger = running_time + interval;
    return FALSE;
  }
  if (running_time < ctx->next_trigger)
    return FALSE;
  while (ctx->next_trigger <= running_time)
    ctx->next_trigger += interval;
  return TRUE;
}

/* g_queue_insert_sorted() passes (queued, new) and inserts the new
 * sample before the first queued one for which this is >= 0: later or
 * equal times and unknown times keep arrival order. */
static gint
sample_compare (gconstpointer queued, gconstpointer new, gpointer user_data)
{
  const MmCaptionSample *q = queued, *n = new;

  if (!GST_CLOCK_TIME_IS_VALID (q->running_time)
      || !GST_CLOCK_TIME_IS_VALID (n->running_time))
    return -1;
  return q->running_time <= n->running_time ? -1 : 1;
}

static GstClockTime
min_time (GstClockTime a, GstClockTime b)
{
  if (!GST_CLOCK_TIME_IS_VALID (a))
    return b;
  if (!GST_CLOCK_TIME_IS_VALID (b))
    return a;
  return MIN (a, b);
}

static GstClockTime
max_time (GstClockTime a, GstClockTime b)
{
  if (!GST_CLOCK_TIME_IS_VALID (a))
    return b;
  if (!GST_CLOCK_TIME_IS_VALID (b))
    return a;
  return MAX (a, b);
}

gboolean
mm_caption_context_add (MmCaptionContext * ctx, MmCaptionSample * s,
    guint budget)
{
  if (s->n_tokens > budget) {
    mm_caption_sample_unref (s);
    return FALSE;
  }

  s->id = ctx->next_id++;
  g_queue_insert_sorted (&ctx->samples, s, sample_compare, NULL);
  ctx->total += s->n_tokens;
  while (ctx->total > budget) {
    MmCaptionSample *old = g_queue_pop_head (&ctx->samples);

    GST_LOG ("evicting sample %" G_GUINT64_FORMAT " (%u tokens)", old->id,
        old->n_tokens);
    ctx->total -= old->n_tokens;
    mm_caption_sample_unref (old);
  }

  if (!ctx->have_new) {
    ctx->have_new = TRUE;
    ctx->new_start = s->pts;
    ctx->new_end = s->end;
  } else {
    ctx->new_start = min_time (ctx->new_start, s->pts);
    ctx->new_end = max_time (ctx->new_end, s->end);
  }
  ctx->last_arrival = g_get_monotonic_time ();
  return TRUE;
}

gboolean
mm_caption_context_is_empty (MmCaptionContext * ctx)
{
  return g_queue_is_empty (&ctx->samples);
}

gboolean
mm_caption_context_has_new (MmCaptionContext * ctx)
{
  return ctx->have_new;
}

guint
mm_caption_context_tokens (MmCaptionContext * ctx)
{
  return ctx->total;
}

/* The span of a new request; consumes the new samples. */
static void
take_span (MmCaptionContext * ctx, MmCaptionRequest * r)
{
  if (ctx->have_new) {
    r->start = GST_CLOCK_TIME_IS_VALID (ctx->last_end) ? ctx->last_end :
        ctx->new_start;
    r->end = ctx->new_end;
  } else if (r->samples->len > 0) {
    MmCaptionSample *first = g_ptr_array_index (r->samples, 0);
    guint i;

    r->start = first->pts;
    r->end = GST_CLOCK_TIME_NONE;
    for (i = 0; i < r->samples->len; i++)
      r->end = max_time (r->end, ((MmCaptionSample *)
              g_ptr_array_index (r->samples, i))->end);
  } else {
    r->start = r->end = GST_CLOCK_TIME_NONE;
  }
  if (GST_CLOCK_TIME_IS_VALID (r->start) && GST_CLOCK_TIME_IS_VALID (r->end)
      && r->end < r->start)
    r->end = r->start;

  if (ctx->have_new && GST_CLOCK_TIME_IS_VALID (r->end))
    ctx->last_end = r->end;
  ctx->have_new = FALSE;
}

guint
mm_caption_context_push_request (MmCaptionContext * ctx, guint max_pending,
    gboolean leaky, gint epoch)
{
  MmCaptionRequest *r = g_new0 (MmCaptionRequest, 1);
  guint dropped = 0;
  GList *l;

  r->samples = g_ptr_array_new_full (g_queue_get_length (&ctx->samples),
      (GDestroyNotify) mm_caption_sample_unref);
  for (l = ctx->samples.head; l; l = l->next)
    g_ptr_array_add (r->samples, mm_caption_sample_ref (l->data));
  take_span (ctx, r);
  r->arrival = ctx->last_arrival;
  r->epoch = epoch;

  /* spans of queued requests tile the stream in queue order: a dropped
   * request's span joins the next one */
  while (leaky && g_queue_get_length (&ctx->pending) >= MAX (max_pending, 1)) {
    MmCaptionRequest *old = g_queue_pop_head (&ctx->pending);
    MmCaptionRequest *next = g_queue_peek_head (&ctx->pending);

    if (next == NULL)
      next = r;
    next->start = min_time (next->start, old->start);
    mm_caption_request_free (old);
    dropped++;
  }
  g_queue_push_tail (&ctx->pending, r);
  return dropped;
}

guint
mm_caption_context_n_pending (MmCaptionContext * ctx)
{
  return g_queue_get_length (&ctx->pending);
}

MmCaptionRequest *
mm_caption_context_pop_request (MmCaptionContext * ctx)
{
  return g_queue_pop_head (&ctx->pending);
}

void
mm_caption_context_drop_pending (MmCaptionContext * ctx)
{
  g_queue_clear_full (&ctx->pending, (GDestroyNotify) mm_caption_request_free);
}
