/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The output queue and worker threads of the encoder elements: see
 * mm-enc-queue.h.
 */
#include "mm-enc-queue.h"

GST_DEBUG_CATEGORY_STATIC (mm_enc_queue_debug);
#define GST_CAT_DEFAULT mm_enc_queue_debug

/* encodes looked at for the latency estimate */
#define LATENCY_WINDOW 16

typedef enum
{
  ITEM_READY,                   /* may be pushed (unless held) */
  ITEM_WAITING,                 /* a buffer whose jobs wait for the encoder */
  ITEM_ENCODING,                /* the buffer the encoder works on */
} MmEncItemState;

/* One entry of the output queue: a buffer or a serialized event. */
typedef struct
{
  GstMiniObject *obj;           /* GstBuffer or GstEvent, owned */
  MmEncItemState state;
  GQueue jobs;                  /* still to encode */
  gboolean held;                /* kept back until the next buffer */
  gboolean orphaned;            /* flushed while encoding: the encoder frees it */
} MmEncItem;

struct _MmEncQueue
{
  GstElement *element;
  GstPad *srcpad;
  MmEncQueueFuncs funcs;
  gchar *name;
  GThread *encode_thread;
  GThread *push_thread;

  /* serialises pushes downstream */
  GMutex push_lock;

  /* guards everything below; cond is broadcast on any change of it */
  GMutex lock;
  GCond cond;
  guint max_pending;
  gdouble stats_interval;
  GQueue items;                 /* MmEncItem, oldest first */
  guint n_waiting;              /* jobs waiting for the encoder */
  gboolean encoding;
  gboolean running;             /* the threads keep going */
  gboolean flushing;
  GstFlowReturn last_flow;      /* of the last push */
  gboolean failed;              /* an encode failed: GST_FLOW_ERROR upstream */
  GList *flushed_sticky;        /* sticky events a flush dropped */
  guint64 buffers_in, jobs_in, encoded, dropped;
  gdouble ms_total, ms_last;
  gdouble ms_recent[LATENCY_WINDOW];
  guint n_recent;
  GstClockTime extra_latency;
  GstClockTime reported_latency;
  gint64 next_stats;            /* monotonic µs; 0 = not scheduled */
};

static MmEncItem *
item_new (GstMiniObject * obj)
{
  MmEncItem *item = g_new0 (MmEncItem, 1);

  item->obj = obj;
  item->state = ITEM_READY;
  g_queue_init (&item->jobs);
  return item;
}

static void
item_free (MmEncQueue * q, MmEncItem * item)
{
  g_queue_clear_full (&item->jobs, q->funcs.job_free);
  if (item->obj)
    gst_mini_object_unref (item->obj);
  g_free (item);
}

MmEncQueue *
mm_enc_queue_new (GstElement * element, GstPad * srcpad,
    const MmEncQueueFuncs * funcs, const gchar * name)
{
  MmEncQueue *q = g_new0 (MmEncQueue, 1);

  static gsize debug_init = 0;

  if (g_once_init_enter (&debug_init)) {
    GST_DEBUG_CATEGORY_INIT (mm_enc_queue_debug, "mmencqueue", 0,
        "mm encoder output queue and worker threads");
    g_once_init_leave (&debug_init, 1);
  }
  q->element = element;
  q->srcpad = srcpad;
  q->funcs = *funcs;
  q->name = g_strdup (name);
  q->max_pending = 1;
  g_mutex_init (&q->push_lock);
  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  g_queue_init (&q->items);
  return q;
}

static void drop_items (MmEncQueue * q, gboolean keep_sticky);

void
mm_enc_queue_free (MmEncQueue * q)
{
  if (q == NULL)
    return;
  mm_enc_queue_stop (q);
  g_mutex_clear (&q->push_lock);
  g_mutex_clear (&q->lock);
  g_cond_clear (&q->cond);
  g_free (q->name);
  g_free (q);
}

void
mm_enc_queue_set_max_pending (MmEncQueue * q, guint max_pending)
{
  g_mutex_lock (&q->lock);
  q->max_pending = MAX (max_pending, 1);
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

void
mm_enc_queue_set_stats_interval (MmEncQueue * q, gdouble seconds)
{
  g_mutex_lock (&q->lock);
  q->stats_interval = MAX (seconds, 0.0);
  q->next_stats = 0;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

/* Called with lock held. */
static GstMessage *
stats_message (MmEncQueue * q)
{
  MmEncQueueStats s = {
    .buffers_in = q->buffers_in,
    .jobs_in = q->jobs_in,
    .encoded = q->encoded,
    .dropped = q->dropped,
    .pending = q->n_waiting + (q->encoding ? 1 : 0),
    .ms_avg = q->encoded ? q->ms_total / q->encoded : 0.0,
    .ms_last = q->ms_last,
  };

  return gst_message_new_element (GST_OBJECT (q->element),
      q->funcs.stats (q->element, &s));
}

/* Called with lock held: (max-pending + 1) times the slowest recent
 * encode, plus the extra. */
static GstClockTime
latency (MmEncQueue * q)
{
  gdouble ms = 0.0;
  guint i;

  for (i = 0; i < q->n_recent; i++)
    ms = MAX (ms, q->ms_recent[i]);
  return (GstClockTime) (ms * GST_MSECOND) * (q->max_pending + 1)
      + q->extra_latency;
}

GstClockTime
mm_enc_queue_query_latency (MmEncQueue * q)
{
  GstClockTime ours;

  g_mutex_lock (&q->lock);
  ours = latency (q);
  q->reported_latency = ours;
  g_mutex_unlock (&q->lock);
  return ours;
}

void
mm_enc_queue_add_latency (MmEncQueue * q, GstClockTime extra)
{
  g_mutex_lock (&q->lock);
  q->extra_latency = MAX (q->extra_latency, extra);
  g_mutex_unlock (&q->lock);
}

/* Hands a serialized event on.  Before EOS goes on, the final stats are
 * posted: everything in front of it has been encoded, and an application
 * stops reading the bus at the pipeline's EOS message. */
static gboolean
forward_event (MmEncQueue * q, GstEvent * event)
{
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    GstMessage *stats = NULL;

    g_mutex_lock (&q->lock);
    if (q->stats_interval > 0)
      stats = stats_message (q);
    g_mutex_unlock (&q->lock);
    if (stats)
      gst_element_post_message (q->element, stats);
  }
  return q->funcs.forward_event (q->element, event);
}

/* Pushes the READY, not held items at the head of the queue, in order;
 * called by the streaming thread after queueing and by the push thread.
 * Returns the flow to report upstream. */
static GstFlowReturn
push_ready (MmEncQueue * q)
{
  MmEncItem *item;
  GstFlowReturn ret;

  g_mutex_lock (&q->push_lock);
  g_mutex_lock (&q->lock);
  while (!q->flushing && (item = g_queue_peek_head (&q->items))
      && item->state == ITEM_READY && !item->held) {
    GstMiniObject *obj = item->obj;

    g_queue_pop_head (&q->items);
    item->obj = NULL;
    item_free (q, item);
    g_cond_broadcast (&q->cond);
    g_mutex_unlock (&q->lock);

    if (GST_IS_BUFFER (obj)) {
      ret = gst_pad_push (q->srcpad, GST_BUFFER (obj));
      g_mutex_lock (&q->lock);
      q->last_flow = ret;
    } else {
      gboolean is_caps = GST_EVENT_TYPE (obj) == GST_EVENT_CAPS;
      gboolean ok = forward_event (q, GST_EVENT (obj));

      g_mutex_lock (&q->lock);
      if (!ok && is_caps)
        q->last_flow = GST_FLOW_NOT_NEGOTIATED;
    }
    if (q->last_flow != GST_FLOW_OK)
      GST_DEBUG_OBJECT (q->element, "push: %s",
          gst_flow_get_name (q->last_flow));
  }
  if (q->flushing)
    ret = GST_FLOW_FLUSHING;
  else if (q->failed)
    ret = GST_FLOW_ERROR;
  else
    ret = q->last_flow;
  g_mutex_unlock (&q->lock);
  g_mutex_unlock (&q->push_lock);
  return ret;
}

static gpointer
push_loop (gpointer data)
{
  MmEncQueue *q = data;
  MmEncItem *head;

  g_mutex_lock (&q->lock);
  while (q->running) {
    head = g_queue_peek_head (&q->items);
    if (!q->flushing && head && head->state == ITEM_READY && !head->held) {
      g_mutex_unlock (&q->lock);
      push_ready (q);
      g_mutex_lock (&q->lock);
      continue;
    }
    g_cond_wait (&q->cond, &q->lock);
  }
  g_mutex_unlock (&q->lock);
  return NULL;
}

/* Called with lock held, after an encode of @ms: the counters, and a
 * latency message when encodes got 10% slower than what was reported. */
static gboolean
count_encode (MmEncQueue * q, gdouble ms)
{
  GstClockTime l;

  q->encoded++;
  q->ms_last = ms;
  q->ms_total += ms;
  q->ms_recent[(q->encoded - 1) % LATENCY_WINDOW] = ms;
  q->n_recent = MIN (q->n_recent + 1, LATENCY_WINDOW);
  l = latency (q);
  if (l > q->reported_latency + q->reported_latency / 10) {
    q->reported_latency = l;
    return TRUE;
  }
  return FALSE;
}

/* Runs the jobs of an ENCODING item one by one (a job may be added
 * meanwhile), and marks it READY (or frees it if a flush orphaned it).
 * Called with lock held; the item's buffer is touched by this thread only
 * while ENCODING. */
static void
encode_item (MmEncQueue * q, MmEncItem * item)
{
  gboolean post_latency = FALSE;
  gpointer job;

  while (!item->orphaned && (job = g_queue_pop_head (&item->jobs))) {
    g_autoptr (GError) err = NULL;
    GstBuffer *buf = GST_BUFFER (item->obj);
    gint64 t0;
    gboolean ok;
    gdouble ms;

    q->n_waiting--;
    g_mutex_unlock (&q->lock);

    t0 = g_get_monotonic_time ();
    ok = q->funcs.encode (q->element, &buf, job, &err);
    ms = (g_get_monotonic_time () - t0) / 1000.0;
    item->obj = GST_MINI_OBJECT (buf);
    q->funcs.job_free (job);
    if (!ok)
      GST_ELEMENT_ERROR (q->element, LIBRARY, FAILED, ("%s",
              err ? err->message : "encoder failed"), (NULL));

    g_mutex_lock (&q->lock);
    if (ok)
      post_latency |= count_encode (q, ms);
    else
      q->failed = TRUE;
  }
  q->encoding = FALSE;
  if (item->orphaned)
    item_free (q, item);
  else
    item->state = ITEM_READY;
  g_cond_broadcast (&q->cond);

  if (post_latency) {
    g_mutex_unlock (&q->lock);
    gst_element_post_message (q->element,
        gst_message_new_latency (GST_OBJECT (q->element)));
    g_mutex_lock (&q->lock);
  }
}

static gpointer
encode_loop (gpointer data)
{
  MmEncQueue *q = data;
  MmEncItem *item;
  GstMessage *stats;
  gint64 now;
  GList *l;

  g_mutex_lock (&q->lock);
  while (q->running) {
    now = g_get_monotonic_time ();
    if (q->stats_interval <= 0)
      q->next_stats = 0;
    else if (q->next_stats == 0)
      q->next_stats = now + q->stats_interval * G_USEC_PER_SEC;
    if (q->next_stats != 0 && now >= q->next_stats) {
      q->next_stats = now + q->stats_interval * G_USEC_PER_SEC;
      stats = stats_message (q);
      g_mutex_unlock (&q->lock);
      gst_element_post_message (q->element, stats);
      g_mutex_lock (&q->lock);
      continue;
    }

    item = NULL;
    for (l = q->items.head; l && !q->flushing; l = l->next) {
      if (((MmEncItem *) l->data)->state == ITEM_WAITING) {
        item = l->data;
        break;
      }
    }
    if (item == NULL) {
      if (q->next_stats != 0)
        g_cond_wait_until (&q->cond, &q->lock, q->next_stats);
      else
        g_cond_wait (&q->cond, &q->lock);
      continue;
    }

    item->state = ITEM_ENCODING;
    q->encoding = TRUE;
    g_cond_broadcast (&q->cond);
    encode_item (q, item);
  }
  g_mutex_unlock (&q->lock);
  return NULL;
}

void
mm_enc_queue_start (MmEncQueue * q)
{
  gchar *name;

  g_mutex_lock (&q->lock);
  q->running = TRUE;
  q->flushing = FALSE;
  q->last_flow = GST_FLOW_OK;
  q->failed = FALSE;
  q->buffers_in = q->jobs_in = q->encoded = q->dropped = 0;
  q->ms_total = q->ms_last = 0.0;
  q->n_recent = 0;
  q->extra_latency = 0;
  q->reported_latency = 0;
  q->next_stats = 0;
  g_mutex_unlock (&q->lock);

  name = g_strdup_printf ("%s-encode", q->name);
  q->encode_thread = g_thread_new (name, encode_loop, q);
  g_free (name);
  name = g_strdup_printf ("%s-push", q->name);
  q->push_thread = g_thread_new (name, push_loop, q);
  g_free (name);
}

void
mm_enc_queue_stop (MmEncQueue * q)
{
  g_mutex_lock (&q->lock);
  q->running = FALSE;
  q->flushing = TRUE;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);

  g_clear_pointer (&q->encode_thread, g_thread_join);
  g_clear_pointer (&q->push_thread, g_thread_join);

  g_mutex_lock (&q->lock);
  drop_items (q, FALSE);
  g_list_free_full (q->flushed_sticky, (GDestroyNotify) gst_event_unref);
  q->flushed_sticky = NULL;
  g_mutex_unlock (&q->lock);
}

void
mm_enc_queue_set_flushing (MmEncQueue * q)
{
  g_mutex_lock (&q->lock);
  q->flushing = TRUE;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

/* Called with lock held, before a buffer with @n_jobs is queued: make sure
 * fewer than max-pending jobs wait for the encoder. */
static void
make_room (MmEncQueue * q, gboolean leaky)
{
  GList *l;

  while (q->n_waiting >= q->max_pending && !q->flushing) {
    if (!leaky) {
      g_cond_wait (&q->cond, &q->lock);
      continue;
    }
    for (l = q->items.head; l; l = l->next) {
      MmEncItem *item = l->data;
      gpointer job;

      if (item->state != ITEM_WAITING)
        continue;
      GST_DEBUG_OBJECT (q->element, "encoder behind: releasing the buffer at %"
          GST_TIME_FORMAT " without tokens (%u jobs)",
          GST_TIME_ARGS (GST_BUFFER_PTS (GST_BUFFER (item->obj))),
          g_queue_get_length (&item->jobs));
      while ((job = g_queue_pop_head (&item->jobs))) {
        q->funcs.job_free (job);
        q->n_waiting--;
        q->dropped++;
      }
      item->state = ITEM_READY;
      break;
    }
    g_cond_broadcast (&q->cond);
  }
}

GstFlowReturn
mm_enc_queue_submit (MmEncQueue * q, GstBuffer * buf, GQueue * jobs,
    gboolean leaky, gboolean hold)
{
  MmEncItem *item = item_new (GST_MINI_OBJECT (buf));
  guint n_jobs;
  GList *l;

  if (jobs) {
    item->jobs = *jobs;
    g_queue_init (jobs);
  }
  n_jobs = g_queue_get_length (&item->jobs);

  g_mutex_lock (&q->lock);
  q->buffers_in++;
  q->jobs_in += n_jobs;
  if (n_jobs && !q->flushing)
    make_room (q, leaky);
  if (q->flushing) {
    g_mutex_unlock (&q->lock);
    item_free (q, item);
    return GST_FLOW_FLUSHING;
  }
  /* the previous buffer can go */
  for (l = q->items.head; l; l = l->next)
    ((MmEncItem *) l->data)->held = FALSE;
  item->held = hold;
  if (n_jobs) {
    item->state = ITEM_WAITING;
    q->n_waiting += n_jobs;
  }
  g_queue_push_tail (&q->items, item);
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);

  return push_ready (q);
}

gboolean
mm_enc_queue_add_job (MmEncQueue * q, gpointer job)
{
  GList *l;

  g_mutex_lock (&q->lock);
  for (l = q->items.tail; l; l = l->prev) {
    MmEncItem *item = l->data;

    if (!item->held)
      continue;
    /* an ENCODING item's loop picks the new job up */
    g_queue_push_tail (&item->jobs, job);
    if (item->state == ITEM_READY)
      item->state = ITEM_WAITING;
    q->n_waiting++;
    q->jobs_in++;
    g_cond_broadcast (&q->cond);
    g_mutex_unlock (&q->lock);
    return TRUE;
  }
  g_mutex_unlock (&q->lock);
  q->funcs.job_free (job);
  return FALSE;
}

void
mm_enc_queue_release_held (MmEncQueue * q)
{
  GList *l;

  g_mutex_lock (&q->lock);
  for (l = q->items.head; l; l = l->next)
    ((MmEncItem *) l->data)->held = FALSE;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

gboolean
mm_enc_queue_event (MmEncQueue * q, GstEvent * event, gboolean * caps_failed)
{
  gboolean is_caps = GST_EVENT_TYPE (event) == GST_EVENT_CAPS;
  gboolean ret;

  *caps_failed = FALSE;
  g_mutex_lock (&q->lock);
  if (q->flushing) {
    g_mutex_unlock (&q->lock);
    gst_event_unref (event);
    return FALSE;
  }
  if (!g_queue_is_empty (&q->items)) {
    g_queue_push_tail (&q->items, item_new (GST_MINI_OBJECT (event)));
    g_cond_broadcast (&q->cond);
    g_mutex_unlock (&q->lock);
    push_ready (q);
    return TRUE;
  }
  g_mutex_unlock (&q->lock);

  /* Nothing inside: handle it now and return the real result. Only the
   * streaming thread queues, so the queue stays empty; push_lock waits for
   * a push thread still busy with the last item it took. */
  g_mutex_lock (&q->push_lock);
  ret = forward_event (q, event);
  g_mutex_unlock (&q->push_lock);
  *caps_failed = !ret && is_caps;
  return ret;
}

/* Called with lock held: empties the queue.  An ENCODING item is left to
 * the encode thread; sticky events other than segment and EOS are kept for
 * after the flush when @keep_sticky. */
static void
drop_items (MmEncQueue * q, gboolean keep_sticky)
{
  MmEncItem *item;

  while ((item = g_queue_pop_head (&q->items))) {
    if (item->state == ITEM_ENCODING) {
      item->orphaned = TRUE;
      continue;
    }
    if (keep_sticky && GST_IS_EVENT (item->obj)
        && GST_EVENT_IS_STICKY (item->obj)
        && GST_EVENT_TYPE (item->obj) != GST_EVENT_SEGMENT
        && GST_EVENT_TYPE (item->obj) != GST_EVENT_EOS) {
      q->flushed_sticky = g_list_append (q->flushed_sticky, item->obj);
      item->obj = NULL;
    }
    item_free (q, item);
  }
  q->n_waiting = 0;
}

void
mm_enc_queue_flush_start (MmEncQueue * q)
{
  g_mutex_lock (&q->lock);
  q->flushing = TRUE;
  drop_items (q, TRUE);
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

gboolean
mm_enc_queue_flush_stop (MmEncQueue * q, GstEvent * event,
    gboolean * caps_failed)
{
  GList *sticky, *l;
  gboolean ret;

  *caps_failed = FALSE;
  /* no push from before the flush may follow FLUSH_STOP downstream */
  g_mutex_lock (&q->push_lock);
  g_mutex_lock (&q->lock);
  q->flushing = FALSE;
  q->last_flow = GST_FLOW_OK;
  q->failed = FALSE;
  sticky = q->flushed_sticky;
  q->flushed_sticky = NULL;
  g_mutex_unlock (&q->lock);

  ret = q->funcs.forward_event (q->element, event);
  for (l = sticky; l; l = l->next) {
    GstEvent *ev = l->data;
    gboolean is_caps = GST_EVENT_TYPE (ev) == GST_EVENT_CAPS;

    if (!q->funcs.forward_event (q->element, ev) && is_caps)
      *caps_failed = TRUE;
  }
  g_list_free (sticky);
  g_mutex_unlock (&q->push_lock);
  return ret;
}

gboolean
mm_enc_queue_drain (MmEncQueue * q)
{
  gboolean ok;

  mm_enc_queue_release_held (q);
  g_mutex_lock (&q->lock);
  while (!q->flushing && !g_queue_is_empty (&q->items))
    g_cond_wait (&q->cond, &q->lock);
  ok = !q->flushing;
  g_mutex_unlock (&q->lock);

  /* the last item may still be on its way downstream */
  g_mutex_lock (&q->push_lock);
  g_mutex_unlock (&q->push_lock);
  return ok;
}

gboolean
mm_enc_queue_sink_event (MmEncQueue * q, MmEncQueueParentEvent parent,
    GstBaseTransform * trans, GstEvent * event, gboolean * caps_failed)
{
  gboolean ret;

  *caps_failed = FALSE;
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START) {
    ret = parent (trans, event);
    mm_enc_queue_flush_start (q);
    return ret;
  }
  if (!GST_EVENT_IS_SERIALIZED (event))
    return parent (trans, event);
  return mm_enc_queue_event (q, event, caps_failed);
}

gboolean
mm_enc_queue_transform_query (MmEncQueue * q,
    MmEncQueueParentQuery parent, GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query)
{
  gboolean live, res;
  GstClockTime min, max, ours;

  /* a serialized query must not overtake the buffers inside */
  if (direction == GST_PAD_SINK && GST_QUERY_IS_SERIALIZED (query)
      && !mm_enc_queue_drain (q))
    return FALSE;

  res = parent (trans, direction, query);
  if (!res || direction != GST_PAD_SRC
      || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return res;

  gst_query_parse_latency (query, &live, &min, &max);
  ours = mm_enc_queue_query_latency (q);
  GST_DEBUG_OBJECT (q->element, "adding %" GST_TIME_FORMAT " of latency",
      GST_TIME_ARGS (ours));
  min += ours;
  if (GST_CLOCK_TIME_IS_VALID (max))
    max += ours;
  gst_query_set_latency (query, live, min, max);
  return res;
}
