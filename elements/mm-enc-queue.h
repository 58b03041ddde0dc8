/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The output queue and worker threads that mmvisionenc and mmaudioenc
 * share: buffers and serialized events leave in the order they came, a
 * buffer once its jobs (a frame, audio windows) are encoded; an encode
 * thread runs the jobs, a push thread pushes what became ready while the
 * streaming thread was away, and the queue of jobs is bounded (blocking, or
 * leaky: the oldest waiting buffer leaves without tokens).
 *
 * The element stays a GstBaseTransform that replaces submit_input_buffer()
 * and generate_output(): it hands buffers to mm_enc_queue_submit(),
 * serialized events to mm_enc_queue_event(), and the queue hands serialized
 * events back through MmEncQueueFuncs.forward_event when their turn comes,
 * so caps and segments follow the buffers they belong to.
 *
 * Threads and locks: the streaming thread queues; the encode thread runs
 * jobs; the push thread pushes.  Inside, a push lock serialises pushing
 * downstream and is taken before the queue lock; the queue lock guards the
 * items and the counters and is taken before the element's object lock.
 * The callbacks run without the queue lock, except stats().
 */
#pragma once

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

typedef struct _MmEncQueue MmEncQueue;

/* Counters, as of the moment stats() is called. */
typedef struct
{
  guint64 buffers_in;           /* buffers submitted */
  guint64 jobs_in;              /* jobs submitted */
  guint64 encoded;              /* jobs encoded */
  guint64 dropped;              /* jobs given up to keep up (leaky) */
  guint pending;                /* jobs waiting or being encoded */
  gdouble ms_avg, ms_last;      /* per encoded job */
} MmEncQueueStats;

typedef struct
{
  /* Encode thread, no lock held: runs @job for the buffer *@buf and
   * attaches its tokens (the buffer may be replaced by a writable copy).
   * FALSE with @error set when it failed: the queue posts an element error
   * with the message, and upstream gets GST_FLOW_ERROR. */
  gboolean (*encode) (GstElement * element, GstBuffer ** buf, gpointer job,
      GError ** error);
  /* Hands a serialized event to the base class (called with the push lock
   * held, from the streaming or the push thread). */
  gboolean (*forward_event) (GstElement * element, GstEvent * event);
  /* The "mm-encoder-stats" structure, called with the queue lock held. */
  GstStructure *(*stats) (GstElement * element, const MmEncQueueStats * s);
  /* Frees a job that will not be encoded. */
  GDestroyNotify job_free;
} MmEncQueueFuncs;

/* @element owns the queue and outlives it; buffers go to @srcpad; threads
 * are named "@name-encode" and "@name-push". */
MmEncQueue *mm_enc_queue_new (GstElement * element, GstPad * srcpad,
    const MmEncQueueFuncs * funcs, const gchar * name);
void mm_enc_queue_free (MmEncQueue * q);

/* Settings, from set_property: jobs that may wait (at least 1), seconds
 * between stats messages (0: none, and none at EOS). */
void mm_enc_queue_set_max_pending (MmEncQueue * q, guint max_pending);
void mm_enc_queue_set_stats_interval (MmEncQueue * q, gdouble seconds);

/* start(): resets the counters and starts the threads.  stop(): stops
 * them and drops everything inside.  set_flushing(): on PAUSED_TO_READY,
 * before the base class waits for the streaming thread to leave. */
void mm_enc_queue_start (MmEncQueue * q);
void mm_enc_queue_stop (MmEncQueue * q);
void mm_enc_queue_set_flushing (MmEncQueue * q);

/* The streaming function: queues @buf (owned) with @jobs (their
 * ownership moves to the queue; NULL or empty: nothing to encode), first
 * making room for them (waiting, or when @leaky releasing the oldest
 * waiting buffer without tokens).  With @hold the buffer is kept until the
 * next one is queued or mm_enc_queue_release_held() (audio keeps its
 * newest buffer for a partial window).  Then pushes what is ready and
 * returns the flow for upstream. */
GstFlowReturn mm_enc_queue_submit (MmEncQueue * q, GstBuffer * buf,
    GQueue * jobs, gboolean leaky, gboolean hold);
/* Adds a job to the newest buffer (held, so not pushed yet), e.g. the
 * partial window at EOS.  FALSE (and @job freed) when there is none. */
gboolean mm_enc_queue_add_job (MmEncQueue * q, gpointer job);
void mm_enc_queue_release_held (MmEncQueue * q);

/* A serialized event: queued behind the buffers inside, or forwarded now
 * when the queue is empty (then the result is the real one).
 * *@caps_failed is set when caps were refused by the base class. */
gboolean mm_enc_queue_event (MmEncQueue * q, GstEvent * event,
    gboolean * caps_failed);
/* FLUSH_START (after forwarding it) and FLUSH_STOP (forwarded here, and
 * the sticky events the flush dropped after it; *@caps_failed as above). */
void mm_enc_queue_flush_start (MmEncQueue * q);
gboolean mm_enc_queue_flush_stop (MmEncQueue * q, GstEvent * event,
    gboolean * caps_failed);
/* Waits until everything inside has been encoded and pushed (the held
 * buffer is let go); FALSE when flushing. */
gboolean mm_enc_queue_drain (MmEncQueue * q);

/* The element's GstBaseTransform query(): a serialized query on the sink
 * pad first waits for everything inside (drain); a LATENCY query on the
 * src pad gets mm_enc_queue_query_latency() added to upstream's minimum
 * and maximum.  @parent is the base class's query(). */
typedef gboolean (*MmEncQueueParentQuery) (GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);
gboolean mm_enc_queue_transform_query (MmEncQueue * q,
    MmEncQueueParentQuery parent, GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);

/* The rest of the element's GstBaseTransform sink_event(), after its own
 * handling: FLUSH_START is forwarded first (it unblocks a push stuck
 * downstream), then the queue flushes; other non-serialized events are
 * forwarded; serialized ones go through mm_enc_queue_event()
 * (*@caps_failed as there).  @parent is the base class's sink_event(). */
typedef gboolean (*MmEncQueueParentEvent) (GstBaseTransform * trans,
    GstEvent * event);
gboolean mm_enc_queue_sink_event (MmEncQueue * q,
    MmEncQueueParentEvent parent, GstBaseTransform * trans,
    GstEvent * event, gboolean * caps_failed);

/* What to add to a latency query: (max-pending + 1) times the slowest
 * recent encode, plus @extra; remembered, and a latency message is posted
 * when encodes get 10% slower than that. */
GstClockTime mm_enc_queue_query_latency (MmEncQueue * q);
/* Raises @extra (e.g. the longest buffer audio holds back). */
void mm_enc_queue_add_latency (MmEncQueue * q, GstClockTime extra);

G_END_DECLS
