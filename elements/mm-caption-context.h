/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rolling context and the request queue of mmllmsink.
 *
 * Samples (one per GstMmTokensMeta) are kept in running-time order under a
 * token budget, the oldest evicted first.  A request is a snapshot of the
 * context plus the PTS span it is about: from the end of the previous
 * request's span (or the first new sample) to the end of the newest
 * sample, so consecutive requests tile the stream.  Requests wait in a
 * bounded queue; a leaky queue drops its oldest request when full and the
 * next request in the queue takes over the dropped one's span start.
 *
 * Plain data, no locking: the element calls everything under its lock.
 */
#pragma once

#include <gst/gst.h>

#include "gst/gstmmtokensmeta.h"

G_BEGIN_DECLS

/* One token meta; refcounted, immutable after mm_caption_context_add(). */
typedef struct
{
  GstMmModality modality;
  guint n_tokens, dim;
  GstClockTime pts, end;        /* PTS span */
  GstClockTime running_time;    /* order and interval schedule */
  guint64 id;                   /* unique per context: KV cache reuse */
  gchar *model_id;
  GstMmTokens *tokens;
  guint rows, cols;             /* tiles + a global view last (Idefics3
                                 * splitting); 0 x 0: one run of tokens */
} MmCaptionSample;

/* Copies what it needs from @meta; @pts and @end are the span (the meta's,
 * or the buffer's when the meta has none). */
MmCaptionSample *mm_caption_sample_new (const GstMmTokensMeta * meta,
    GstClockTime pts, GstClockTime end, GstClockTime running_time);
MmCaptionSample *mm_caption_sample_ref (MmCaptionSample * s);
void mm_caption_sample_unref (MmCaptionSample * s);

typedef struct
{
  GPtrArray *samples;           /* MmCaptionSample, in context order */
  GstClockTime start, end;      /* PTS span the caption is about */
  gint64 arrival;               /* monotonic µs, arrival of the newest sample */
  gint epoch;                   /* the caller's flush generation */
} MmCaptionRequest;

void mm_caption_request_free (MmCaptionRequest * r);

typedef struct _MmCaptionContext MmCaptionContext;

MmCaptionContext *mm_caption_context_new (void);
void mm_caption_context_free (MmCaptionContext * ctx);

/* Forgets samples, schedule and spans (not the pending requests). */
void mm_caption_context_clear (MmCaptionContext * ctx);

/* Whether a sample at @running_time is due for a request: always with
 * @interval 0; otherwise the first sample starts the schedule and a
 * request is due every @interval of running time after it. */
gboolean mm_caption_context_due (MmCaptionContext * ctx,
    GstClockTime running_time, GstClockTime interval);

/* Takes @s into the context and evicts the oldest samples over @budget
 * tokens.  FALSE (and @s released) when @s alone exceeds @budget. */
gboolean mm_caption_context_add (MmCaptionContext * ctx, MmCaptionSample * s,
    guint budget);

gboolean mm_caption_context_is_empty (MmCaptionContext * ctx);
/* Whether samples arrived since the last request. */
gboolean mm_caption_context_has_new (MmCaptionContext * ctx);
guint mm_caption_context_tokens (MmCaptionContext * ctx);

/* Makes a request over the whole context (with no new samples, e.g. for
 * a prompt change, its span is the whole context) and queues it.  Leaky:
 * while @max_pending requests wait, the oldest is dropped.  Returns how
 * many were dropped. */
guint mm_caption_context_push_request (MmCaptionContext * ctx,
    guint max_pending, gboolean leaky, gint epoch);
guint mm_caption_context_n_pending (MmCaptionContext * ctx);
/* (transfer full) (nullable): the oldest pending request. */
MmCaptionRequest *mm_caption_context_pop_request (MmCaptionContext * ctx);
void mm_caption_context_drop_pending (MmCaptionContext * ctx);

G_END_DECLS
