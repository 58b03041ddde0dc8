/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmvisionenc mechanics with a scripted encoder (mm-vision-fake.c): which
 * frames are encoded, order of frames and events, leaky and blocking
 * behaviour, EOS drain, flushes, caps changes, serialized queries, latency,
 * statistics, encode errors and state changes at any moment.  The element's
 * source is compiled into this program, so these run without a model file
 * (they need an OpenCL device for the token buffers; exit 77 without one).
 * test_mmvisionenc runs the same scenarios on real fixture models.
 */
#include <string.h>

#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "elements/gstmmvisionenc.h"
#include "gst/gstmmsamplemeta.h"
#include "gst/gstmmtokensmeta.h"
#include "mm-vision-fake.h"

#define N_TOKENS 3
#define DIM 5
#define CAPS_GRAY "video/x-raw,format=GRAY8,width=4,height=4,framerate=30/1"
#define CAPS_RGB "video/x-raw,format=RGB,width=6,height=5,framerate=30/1"
#define FRAME_NS (GST_SECOND / 30)
#define NO_FAIL (-1)

/* frames made by make_frame() and not yet freed */
static gint frames_alive;

typedef struct
{
  GstHarness *h;
  GstElement *enc;
  GstBus *bus;
  gchar *model;
  GMutex lock;
  GString *seq;                 /* what left the element, in order */
  gint frames_alive_before;
} Ctx;

static void
frame_freed (gpointer data, GstMiniObject * obj)
{
  g_atomic_int_dec_and_test (&frames_alive);
}

/* A frame whose every byte is @id; @sampled adds a GstMmSampleMeta. */
static GstBuffer *
make_frame_sized (guint8 id, gsize size, gboolean sampled)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);

  gst_buffer_memset (buf, 0, id, size);
  GST_BUFFER_PTS (buf) = id * FRAME_NS;
  GST_BUFFER_DURATION (buf) = FRAME_NS;
  if (sampled)
    gst_buffer_add_mm_sample_meta (buf, id, 0, 1, id * FRAME_NS);
  g_atomic_int_inc (&frames_alive);
  gst_mini_object_weak_ref (GST_MINI_OBJECT (buf), frame_freed, NULL);
  return buf;
}

static GstBuffer *
make_frame (guint8 id, gboolean sampled)
{
  return make_frame_sized (id, 16, sampled);
}

static GstPadProbeReturn
record_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Ctx *ctx = data;

  g_mutex_lock (&ctx->lock);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    guint8 id = 0;

    gst_buffer_extract (buf, 0, &id, 1);
    g_string_append_printf (ctx->seq, "B%u%s ", id,
        gst_buffer_get_mm_tokens_meta (buf) ? "t" : "");
  } else {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);

    if (GST_EVENT_TYPE (ev) != GST_EVENT_STREAM_START
        && GST_EVENT_TYPE (ev) != GST_EVENT_SEGMENT)
      g_string_append_printf (ctx->seq, "E:%s ", GST_EVENT_TYPE_NAME (ev));
  }
  g_mutex_unlock (&ctx->lock);
  return GST_PAD_PROBE_OK;
}

static Ctx *
ctx_new_full (gint delay_ms, gint fail_value, guint max_pending,
    const gchar * leaky, gdouble stats_interval, gboolean live)
{
  Ctx *ctx = g_new0 (Ctx, 1);
  GstPad *srcpad;

  g_mutex_init (&ctx->lock);
  ctx->seq = g_string_new (NULL);
  ctx->frames_alive_before = g_atomic_int_get (&frames_alive);
  ctx->model = fake_vision_write (N_TOKENS, DIM, delay_ms, fail_value);
  ctx->enc = g_object_new (GST_TYPE_MM_VISION_ENC, "model", ctx->model,
      "max-pending", max_pending, "stats-interval", stats_interval, NULL);
  gst_util_set_object_arg (G_OBJECT (ctx->enc), "leaky", leaky);
  ctx->bus = gst_bus_new ();
  gst_element_set_bus (ctx->enc, ctx->bus);

  srcpad = gst_element_get_static_pad (ctx->enc, "src");
  gst_pad_add_probe (srcpad, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM |
      GST_PAD_PROBE_TYPE_EVENT_FLUSH, record_probe, ctx, NULL);
  gst_object_unref (srcpad);

  ctx->h = gst_harness_new_with_element (ctx->enc, "sink", "src");
  gst_harness_set_live (ctx->h, live);
  gst_harness_set_src_caps_str (ctx->h, CAPS_GRAY);
  return ctx;
}

static Ctx *
ctx_new (gint delay_ms, guint max_pending, const gchar * leaky)
{
  return ctx_new_full (delay_ms, NO_FAIL, max_pending, leaky, 3600, TRUE);
}

static gchar *
ctx_seq (Ctx * ctx)
{
  gchar *s;

  g_mutex_lock (&ctx->lock);
  s = g_strdup (g_strchomp (ctx->seq->str));
  g_mutex_unlock (&ctx->lock);
  return s;
}

static void
ctx_free (Ctx * ctx)
{
  fake_vision_gate_open ();
  gst_harness_teardown (ctx->h);
  gst_bus_set_flushing (ctx->bus, TRUE);
  gst_element_set_bus (ctx->enc, NULL);
  gst_object_unref (ctx->bus);
  gst_object_unref (ctx->enc);
  fake_vision_remove (ctx->model);
  g_free (ctx->model);
  g_string_free (ctx->seq, TRUE);
  g_mutex_clear (&ctx->lock);
  fail_unless_equals_int (g_atomic_int_get (&frames_alive),
      ctx->frames_alive_before);
  g_free (ctx);
}

static void
wait_eos (Ctx * ctx)
{
  GstEvent *ev;

  while ((ev = gst_harness_pull_event (ctx->h))) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;

    gst_event_unref (ev);
    if (eos)
      return;
  }
  fail ("no EOS came out");
}

static void
push_eos_and_wait (Ctx * ctx)
{
  fail_unless (gst_harness_push_event (ctx->h, gst_event_new_eos ()));
  wait_eos (ctx);
}

/* The last mm-encoder-stats message posted within 5 s whose frames-in is
 * @frames_in. */
static GstStructure *
wait_stats (Ctx * ctx, guint64 frames_in)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  GstMessage *msg;

  while (g_get_monotonic_time () < end) {
    msg = gst_bus_timed_pop_filtered (ctx->bus, 100 * GST_MSECOND,
        GST_MESSAGE_ELEMENT);
    if (msg == NULL)
      continue;
    if (gst_message_has_name (msg, "mm-encoder-stats")) {
      const GstStructure *s = gst_message_get_structure (msg);
      guint64 n = 0;

      gst_structure_get_uint64 (s, "frames-in", &n);
      if (n == frames_in) {
        GstStructure *copy = gst_structure_copy (s);

        gst_message_unref (msg);
        return copy;
      }
    }
    gst_message_unref (msg);
  }
  fail ("no mm-encoder-stats with frames-in=%" G_GUINT64_FORMAT, frames_in);
  return NULL;
}

static guint64
stat (const GstStructure * s, const gchar * field)
{
  guint64 v = G_MAXUINT64;

  fail_unless (gst_structure_get_uint64 (s, field, &v), "no %s", field);
  return v;
}

/* Checks that @buf carries tokens for the frame @id of size @w×@h. */
static void
check_tokens (GstBuffer * buf, guint8 id, gint w, gint h, MmPixelFormat fmt)
{
  GstMmTokensMeta *meta = gst_buffer_get_mm_tokens_meta (buf);
  g_autoptr (GError) err = NULL;
  const gfloat *x;
  guint t;

  fail_unless (meta != NULL, "frame %u has no tokens", id);
  fail_unless_equals_int (meta->modality, GST_MM_MODALITY_VIDEO);
  fail_unless_equals_int (meta->n_tokens, N_TOKENS);
  fail_unless_equals_int (meta->dim, DIM);
  fail_unless_equals_uint64 (meta->pts, GST_BUFFER_PTS (buf));
  fail_unless_equals_uint64 (meta->duration, GST_BUFFER_DURATION (buf));
  fail_unless_equals_string (meta->model_id, "fake-3x5");
  fail_unless (gst_mm_tokens_get_device (meta->tokens, NULL) != NULL);
  x = gst_mm_tokens_get_host (meta->tokens, &err);
  fail_unless (x != NULL, "host copy: %s", err ? err->message : "?");
  for (t = 0; t < N_TOKENS; t++) {
    const gfloat *row = x + t * DIM;

    fail_unless_equals_float (row[0], id);
    fail_unless_equals_float (row[1], w);
    fail_unless_equals_float (row[2], h);
    fail_unless_equals_float (row[3], fmt);
    fail_unless_equals_float (row[4], t);
  }
}

static void
pull_frame (Ctx * ctx, guint8 id, gboolean tokens)
{
  GstBuffer *buf = gst_harness_pull (ctx->h);
  guint8 got = 0;

  fail_unless (buf != NULL, "frame %u did not come out", id);
  gst_buffer_extract (buf, 0, &got, 1);
  fail_unless_equals_int (got, id);
  if (tokens)
    check_tokens (buf, id, 4, 4, MM_PIXEL_GRAY8);
  else
    fail_if (gst_buffer_get_mm_tokens_meta (buf), "frame %u has tokens", id);
  gst_buffer_unref (buf);
}

GST_START_TEST (test_blocking_encodes_every_frame)
{
  Ctx *ctx = ctx_new (2, 2, "no");
  GstStructure *s;
  guint i;

  for (i = 0; i < 20; i++)
    fail_unless_equals_int (gst_harness_push (ctx->h, make_frame (i, FALSE)),
        GST_FLOW_OK);
  push_eos_and_wait (ctx);
  for (i = 0; i < 20; i++)
    pull_frame (ctx, i, TRUE);

  s = wait_stats (ctx, 20);
  fail_unless_equals_uint64 (stat (s, "sampled"), 20);
  fail_unless_equals_uint64 (stat (s, "encoded"), 20);
  fail_unless_equals_uint64 (stat (s, "dropped"), 0);
  fail_unless_equals_string (gst_structure_get_string (s, "model-id"),
      "fake-3x5");
  gst_structure_free (s);
  ctx_free (ctx);
}

GST_END_TEST;

/* The encoder is held on frame 0: frames 1..6 arrive, the waiting list
 * (max-pending 2) overflows and the oldest waiting ones go out without
 * tokens, after frame 0 and in order; the streaming thread never waits. */
GST_START_TEST (test_leaky_releases_oldest)
{
  Ctx *ctx = ctx_new (0, 2, "yes");
  g_autofree gchar *seq = NULL;
  GstStructure *s;
  guint i, base = fake_vision_started ();

  fake_vision_gate_close ();
  fail_unless_equals_int (gst_harness_push (ctx->h, make_frame (0, FALSE)),
      GST_FLOW_OK);
  fail_unless (fake_vision_wait_started (base + 1));
  for (i = 1; i <= 6; i++)
    fail_unless_equals_int (gst_harness_push (ctx->h, make_frame (i, FALSE)),
        GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (ctx->h), 0);

  fake_vision_gate_open ();
  push_eos_and_wait (ctx);
  pull_frame (ctx, 0, TRUE);
  for (i = 1; i <= 4; i++)
    pull_frame (ctx, i, FALSE);
  pull_frame (ctx, 5, TRUE);
  pull_frame (ctx, 6, TRUE);

  seq = ctx_seq (ctx);
  fail_unless_equals_string (seq, "E:caps B0t B1 B2 B3 B4 B5t B6t E:eos");
  s = wait_stats (ctx, 7);
  fail_unless_equals_uint64 (stat (s, "sampled"), 7);
  fail_unless_equals_uint64 (stat (s, "encoded"), 3);
  fail_unless_equals_uint64 (stat (s, "dropped"), 4);
  gst_structure_free (s);
  ctx_free (ctx);
}

GST_END_TEST;

/* leaky=auto follows upstream: blocking for a non-live upstream (all
 * frames encoded even with the encoder held), leaky for a live one. */
GST_START_TEST (test_leaky_auto_follows_live)
{
  Ctx *ctx = ctx_new_full (0, NO_FAIL, 1, "auto", 3600, FALSE);
  GstStructure *s;
  guint i;

  for (i = 0; i < 8; i++)
    fail_unless_equals_int (gst_harness_push (ctx->h, make_frame (i, FALSE)),
        GST_FLOW_OK);
  push_eos_and_wait (ctx);
  for (i = 0; i < 8; i++)
    pull_frame (ctx, i, TRUE);
  s = wait_stats (ctx, 8);
  fail_unless_equals_uint64 (stat (s, "dropped"), 0);
  gst_structure_free (s);
  ctx_free (ctx);

  ctx = ctx_new_full (0, NO_FAIL, 1, "auto", 3600, TRUE);
  fake_vision_gate_close ();
  for (i = 0; i < 8; i++)
    fail_unless_equals_int (gst_harness_push (ctx->h, make_frame (i, FALSE)),
        GST_FLOW_OK);
  fake_vision_gate_open ();
  push_eos_and_wait (ctx);
  s = wait_stats (ctx, 8);
  fail_unless (stat (s, "dropped") > 0);
  fail_unless_equals_uint64 (stat (s, "encoded") + stat (s, "dropped"), 8);
  gst_structure_free (s);
  fail_unless_equals_int (gst_harness_buffers_in_queue (ctx->h), 8);
  ctx_free (ctx);
}

GST_END_TEST;

/* Until a GstMmSampleMeta is seen every frame is encoded, then only flagged
 * ones; GAP frames never; a new stream forgets. */
GST_START_TEST (test_sample_meta_rule)
{
  Ctx *ctx = ctx_new (0, 2, "no");
  GstBuffer *gap;

  gst_harness_push (ctx->h, make_frame (0, FALSE));
  gst_harness_push (ctx->h, make_frame (1, FALSE));
  gst_harness_push (ctx->h, make_frame (2, TRUE));
  gst_harness_push (ctx->h, make_frame (3, FALSE));
  gst_harness_push (ctx->h, make_frame (4, TRUE));
  gap = make_frame (5, TRUE);
  GST_BUFFER_FLAG_SET (gap, GST_BUFFER_FLAG_GAP);
  gst_harness_push (ctx->h, gap);
  pull_frame (ctx, 0, TRUE);
  pull_frame (ctx, 1, TRUE);
  pull_frame (ctx, 2, TRUE);
  pull_frame (ctx, 3, FALSE);
  pull_frame (ctx, 4, TRUE);
  pull_frame (ctx, 5, FALSE);

  fail_unless (gst_harness_push_event (ctx->h,
          gst_event_new_stream_start ("second")));
  gst_harness_push (ctx->h, make_frame (6, FALSE));
  pull_frame (ctx, 6, TRUE);
  ctx_free (ctx);
}

GST_END_TEST;

/* EOS waits behind frames still being encoded; none of them is dropped,
 * even in leaky mode, and the push of EOS itself does not wait. */
GST_START_TEST (test_eos_drains)
{
  Ctx *ctx = ctx_new (0, 2, "yes");
  g_autofree gchar *seq = NULL;
  guint base = fake_vision_started ();

  fake_vision_gate_close ();
  gst_harness_push (ctx->h, make_frame (0, FALSE));
  fail_unless (fake_vision_wait_started (base + 1));
  gst_harness_push (ctx->h, make_frame (1, FALSE));
  gst_harness_push (ctx->h, make_frame (2, FALSE));
  fail_unless (gst_harness_push_event (ctx->h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (ctx->h), 0);

  fake_vision_gate_open ();
  pull_frame (ctx, 0, TRUE);
  pull_frame (ctx, 1, TRUE);
  pull_frame (ctx, 2, TRUE);
  wait_eos (ctx);
  seq = ctx_seq (ctx);
  fail_unless_equals_string (seq, "E:caps B0t B1t B2t E:eos");
  ctx_free (ctx);
}

GST_END_TEST;

/* A flush while frames wait (and one is being encoded) drops them; nothing
 * from before the flush comes out after FLUSH_STOP; caps survive. */
GST_START_TEST (test_flush_in_the_middle)
{
  Ctx *ctx = ctx_new (0, 2, "yes");
  g_autofree gchar *seq = NULL;
  GstSegment segment;
  const gchar *after;
  guint base = fake_vision_started ();

  fake_vision_gate_close ();
  gst_harness_push (ctx->h, make_frame (0, FALSE));
  fail_unless (fake_vision_wait_started (base + 1));
  gst_harness_push (ctx->h, make_frame (1, FALSE));
  gst_harness_push (ctx->h, make_frame (2, FALSE));
  fail_unless (gst_harness_push_event (ctx->h, gst_event_new_tag
          (gst_tag_list_new (GST_TAG_TITLE, "queued", NULL))));

  fail_unless (gst_harness_push_event (ctx->h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (ctx->h,
          gst_event_new_flush_stop (TRUE)));
  fake_vision_gate_open ();
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (ctx->h,
          gst_event_new_segment (&segment)));
  gst_harness_push (ctx->h, make_frame (10, FALSE));
  gst_harness_push (ctx->h, make_frame (11, FALSE));
  push_eos_and_wait (ctx);

  seq = ctx_seq (ctx);
  after = strstr (seq, "E:flush-stop");
  fail_unless (after != NULL, "%s", seq);
  fail_unless_equals_string (after, "E:flush-stop E:tag B10t B11t E:eos");
  fail_unless_equals_int (gst_harness_buffers_in_queue (ctx->h), 2);
  ctx_free (ctx);
}

GST_END_TEST;

/* A caps change while frames are inside goes out between them; each frame
 * is encoded with the caps it came with. */
GST_START_TEST (test_caps_change_in_order)
{
  Ctx *ctx = ctx_new (0, 2, "no");
  g_autofree gchar *seq = NULL;
  GstVideoInfo info;
  GstBuffer *buf;
  GstCaps *caps;
  guint base = fake_vision_started ();

  fake_vision_gate_close ();
  gst_harness_push (ctx->h, make_frame (0, FALSE));
  fail_unless (fake_vision_wait_started (base + 1));
  gst_harness_push (ctx->h, make_frame (1, FALSE));
  gst_harness_set_src_caps_str (ctx->h, CAPS_RGB);
  caps = gst_caps_from_string (CAPS_RGB);
  gst_video_info_from_caps (&info, caps);
  gst_caps_unref (caps);
  gst_harness_push (ctx->h, make_frame_sized (2, info.size, FALSE));
  fake_vision_gate_open ();
  push_eos_and_wait (ctx);

  seq = ctx_seq (ctx);
  fail_unless_equals_string (seq, "E:caps B0t B1t E:caps B2t E:eos");
  pull_frame (ctx, 0, TRUE);
  pull_frame (ctx, 1, TRUE);
  buf = gst_harness_pull (ctx->h);
  check_tokens (buf, 2, 6, 5, MM_PIXEL_RGB);
  gst_buffer_unref (buf);
  ctx_free (ctx);
}

GST_END_TEST;

/* Audio caps are refused. */
GST_START_TEST (test_refuses_audio_caps)
{
  Ctx *ctx = ctx_new (0, 2, "no");
  GstCaps *caps = gst_caps_from_string ("audio/x-raw,format=F32LE,"
      "rate=16000,channels=1,layout=interleaved");
  GstPad *sink = gst_element_get_static_pad (ctx->enc, "sink");

  fail_if (gst_pad_send_event (sink, gst_event_new_caps (caps)));
  gst_caps_unref (caps);
  gst_object_unref (sink);
  ctx_free (ctx);
}

GST_END_TEST;

/* A DRAIN query returns once every frame inside is out. */
GST_START_TEST (test_drain_query)
{
  Ctx *ctx = ctx_new (10, 2, "no");
  GstQuery *q;
  guint i;

  for (i = 0; i < 5; i++)
    gst_harness_push (ctx->h, make_frame (i, FALSE));
  q = gst_query_new_drain ();
  fail_unless (gst_pad_peer_query (ctx->h->srcpad, q));
  gst_query_unref (q);
  fail_unless_equals_int (gst_harness_buffers_received (ctx->h), 5);
  ctx_free (ctx);
}

GST_END_TEST;

/* The latency query adds (max-pending + 1) × the slowest recent encode, and
 * a LATENCY message announces a slower encoder. */
GST_START_TEST (test_latency)
{
  Ctx *ctx = ctx_new (40, 2, "no");
  GstMessage *msg;
  guint i;

  fail_unless_equals_uint64 (gst_harness_query_latency (ctx->h), 0);
  for (i = 0; i < 3; i++)
    gst_harness_push (ctx->h, make_frame (i, FALSE));
  for (i = 0; i < 3; i++)
    pull_frame (ctx, i, TRUE);
  fail_unless (gst_harness_query_latency (ctx->h) >= 3 * 40 * GST_MSECOND);
  msg = gst_bus_pop_filtered (ctx->bus, GST_MESSAGE_LATENCY);
  fail_unless (msg != NULL);
  gst_message_unref (msg);
  ctx_free (ctx);
}

GST_END_TEST;

GST_START_TEST (test_periodic_stats)
{
  Ctx *ctx = ctx_new_full (0, NO_FAIL, 2, "no", 0.05, TRUE);
  GstMessage *msg;
  guint n = 0;
  gint64 end = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

  gst_harness_push (ctx->h, make_frame (0, FALSE));
  while (n < 3 && g_get_monotonic_time () < end) {
    msg = gst_bus_timed_pop_filtered (ctx->bus, 100 * GST_MSECOND,
        GST_MESSAGE_ELEMENT);
    if (msg && gst_message_has_name (msg, "mm-encoder-stats"))
      n++;
    if (msg)
      gst_message_unref (msg);
  }
  fail_unless (n >= 3, "%u stats messages", n);

  /* 0 turns them off, including the one after EOS */
  g_object_set (ctx->enc, "stats-interval", 0.0, NULL);
  g_usleep (100 * 1000);
  gst_bus_set_flushing (ctx->bus, TRUE);
  gst_bus_set_flushing (ctx->bus, FALSE);
  push_eos_and_wait (ctx);
  g_usleep (200 * 1000);
  fail_if (gst_bus_pop_filtered (ctx->bus, GST_MESSAGE_ELEMENT));
  ctx_free (ctx);
}

GST_END_TEST;

/* A failing encode posts an error naming the frame, lets the frame through
 * without tokens and makes upstream stop with GST_FLOW_ERROR. */
GST_START_TEST (test_encode_error)
{
  Ctx *ctx = ctx_new_full (0, 1, 2, "no", 3600, TRUE);
  GstMessage *msg;
  GError *err = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  guint i;

  gst_harness_push (ctx->h, make_frame (0, FALSE));
  gst_harness_push (ctx->h, make_frame (1, FALSE));
  pull_frame (ctx, 0, TRUE);
  pull_frame (ctx, 1, FALSE);
  msg = gst_bus_timed_pop_filtered (ctx->bus, 5 * GST_SECOND,
      GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (strstr (err->message, "0:00:00.033333333") != NULL, "%s",
      err->message);
  g_error_free (err);
  gst_message_unref (msg);
  for (i = 2; i < 10 && ret == GST_FLOW_OK; i++)
    ret = gst_harness_push (ctx->h, make_frame (i, FALSE));
  fail_unless_equals_int (ret, GST_FLOW_ERROR);
  ctx_free (ctx);
}

GST_END_TEST;

/* Upstream streaming thread: pushes until refused.  lock keeps a push out
 * of the span between FLUSH_STOP and the new segment; a flushed push goes
 * on when the flush is the test's own. */
typedef struct
{
  GstHarness *h;
  GMutex lock;
  gboolean flush_round;
  guint pushed;
} Pusher;

static gpointer
push_until_refused (gpointer data)
{
  Pusher *p = data;
  GstFlowReturn ret = GST_FLOW_OK;

  while (p->pushed < 400 && (ret == GST_FLOW_OK
          || (ret == GST_FLOW_FLUSHING && p->flush_round))) {
    g_mutex_lock (&p->lock);
    ret = gst_harness_push (p->h, make_frame (p->pushed % 200,
            p->pushed % 3 == 0));
    g_mutex_unlock (&p->lock);
    p->pushed++;
  }
  return NULL;
}

static void
flush_under (Pusher * p)
{
  GstSegment segment;

  gst_harness_push_event (p->h, gst_event_new_flush_start ());
  g_mutex_lock (&p->lock);
  gst_harness_push_event (p->h, gst_event_new_flush_stop (TRUE));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_harness_push_event (p->h, gst_event_new_segment (&segment));
  g_mutex_unlock (&p->lock);
}

/* State changes, flushes and teardown at random moments while a thread
 * pushes: no deadlock, no frame leaked. */
GST_START_TEST (test_state_changes_anytime)
{
  GRand *rand = g_rand_new_with_seed (7);
  guint round;

  for (round = 0; round < 24; round++) {
    Ctx *ctx = ctx_new (g_rand_int_range (rand, 0, 3),
        g_rand_int_range (rand, 1, 4), round % 2 ? "yes" : "no");
    Pusher p = { ctx->h, {0}, round % 4 == 1, 0 };
    GThread *thread;

    g_mutex_init (&p.lock);
    thread = g_thread_new ("pusher", push_until_refused, &p);
    g_usleep (g_rand_int_range (rand, 0, 20000));
    switch (round % 4) {
      case 0:
        gst_element_set_state (ctx->enc, GST_STATE_PAUSED);
        gst_element_set_state (ctx->enc, GST_STATE_PLAYING);
        break;
      case 1:
        flush_under (&p);
        break;
      case 2:
        gst_element_set_state (ctx->enc, GST_STATE_READY);
        break;
      default:
        gst_element_set_state (ctx->enc, GST_STATE_NULL);
        break;
    }
    g_usleep (g_rand_int_range (rand, 0, 5000));
    gst_element_set_state (ctx->enc, GST_STATE_NULL);
    g_thread_join (thread);
    g_mutex_clear (&p.lock);
    ctx_free (ctx);
  }
  g_rand_free (rand);
}

GST_END_TEST;

static Suite *
mmvisionenc_queue_suite (void)
{
  Suite *s = suite_create ("mmvisionenc-queue");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_blocking_encodes_every_frame);
  tcase_add_test (tc, test_leaky_releases_oldest);
  tcase_add_test (tc, test_leaky_auto_follows_live);
  tcase_add_test (tc, test_sample_meta_rule);
  tcase_add_test (tc, test_eos_drains);
  tcase_add_test (tc, test_flush_in_the_middle);
  tcase_add_test (tc, test_caps_change_in_order);
  tcase_add_test (tc, test_refuses_audio_caps);
  tcase_add_test (tc, test_drain_query);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_periodic_stats);
  tcase_add_test (tc, test_encode_error);
  tcase_add_test (tc, test_state_changes_anytime);
  return s;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) err = NULL;
  MmEngine *engine;

  /* OpenCL state does not survive fork(): run the cases in this process */
  g_setenv ("CK_FORK", "no", TRUE);
  gst_check_init (&argc, &argv);
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL) {
    g_print ("SKIP: no OpenCL device for the token buffers: %s\n",
        err->message);
    return 77;
  }
  mm_engine_unref (engine);
  return gst_check_run_suite (mmvisionenc_queue_suite (), "mmvisionenc-queue",
      __FILE__);
}
