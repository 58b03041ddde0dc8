/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmvisionenc through the plugin: caps refusal and start errors that name
 * the model path (no model, missing file, garbage file); then, on the
 * fixture vision models ($MM_FIXTURES/siglip/mmproj-siglip.gguf,
 * $MM_FIXTURES/idefics3/mmproj-idefics3.gguf and
 * $MM_FIXTURES/minicpmv_resampler/mmproj-minicpmv_resampler.gguf): tokens of the model's shape
 * on every frame and format, live-mode drops with no frame lost, EOS drain,
 * a flush in the middle, and a gst_parse_launch pipeline with mmframesample.
 * The Idefics3 fixture splits images (2 x 3 tiles + global image for a
 * 52x30 frame): the meta carries that layout and exactly the tokens of
 * mm_vision_model_encode_views(); image-splitting=off and max-tiles change
 * it; so does the MiniCPM-V fixture (2 x 3 slices + overview for a 100x44
 * frame, 1 x 2 with max-tiles=2).  YUV frames are converted with their caps colorimetry: the tokens of
 * an I420 frame tagged BT.709 / BT.2020 / full range equal the encoder's on
 * the same planes with that matrix and range.
 *
 * The model cases need the vision encoders (opencl/models/mm-vision.c), an
 * OpenCL device and the fixtures; without them only the first cases run and
 * the test exits 77.  test_mmvisionenc_queue covers the element's queueing
 * in detail with a scripted encoder.
 */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "gst/gstmmsamplemeta.h"
#include "gst/gstmmtokensmeta.h"
#include "mm-test-bus.h"
#include "mm-vision.h"

typedef struct
{
  const gchar *fixture;         /* relative to $MM_FIXTURES */
  gchar *path;
  gint n_tokens, dim;
  gchar *id;
} Model;

static Model models[] = {
  {"siglip/mmproj-siglip.gguf"},
  {"idefics3/mmproj-idefics3.gguf"},
  {"minicpmv_resampler/mmproj-minicpmv_resampler.gguf"},
};

/* Sets the element to PAUSED, expects the state change to fail with an
 * error; returns "message | debug". */
static gchar *
start_error (const gchar * model)
{
  GstElement *enc = gst_element_factory_make ("mmvisionenc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL, *text;

  fail_unless (enc != NULL);
  if (model)
    g_object_set (enc, "model", model, NULL);
  gst_element_set_bus (enc, bus);
  fail_unless_equals_int (gst_element_set_state (enc, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &err, &debug);
  text = g_strdup_printf ("%s | %s", err->message, debug ? debug : "");
  GST_INFO ("error: %s", text);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);

  gst_element_set_state (enc, GST_STATE_NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_element_set_bus (enc, NULL);
  gst_object_unref (bus);
  gst_object_unref (enc);
  return text;
}

GST_START_TEST (test_refuses_audio_caps)
{
  GstElement *enc = gst_element_factory_make ("mmvisionenc", NULL);
  GstElement *src = gst_element_factory_make ("audiotestsrc", NULL);
  GstElement *bin = gst_pipeline_new (NULL);
  GstPad *sink = gst_element_get_static_pad (enc, "sink");
  GstCaps *caps;

  caps = gst_caps_from_string ("audio/x-raw,format=F32LE,rate=16000,"
      "channels=1,layout=interleaved");
  fail_if (gst_pad_query_accept_caps (sink, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("video/x-raw,format=YUY2,width=8,height=8");
  fail_if (gst_pad_query_accept_caps (sink, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("video/x-raw,format=NV12,width=9,height=7,"
      "framerate=30/1");
  fail_unless (gst_pad_query_accept_caps (sink, caps));
  gst_caps_unref (caps);
  gst_object_unref (sink);

  gst_bin_add_many (GST_BIN (bin), src, enc, NULL);
  fail_if (gst_element_link (src, enc));
  gst_object_unref (bin);
}

GST_END_TEST;

GST_START_TEST (test_no_model_error)
{
  g_autofree gchar *text = start_error (NULL);

  fail_unless (strstr (text, "No vision model") != NULL, "%s", text);
}

GST_END_TEST;

GST_START_TEST (test_missing_model_error)
{
  const gchar *path = "/nonexistent/mm-test/mmproj-missing.gguf";
  g_autofree gchar *text = start_error (path);

  fail_unless (strstr (text, path) != NULL, "%s", text);
}

GST_END_TEST;

GST_START_TEST (test_garbage_model_error)
{
  g_autofree gchar *dir = g_dir_make_tmp ("mmvenc-XXXXXX", NULL);
  g_autofree gchar *path = g_build_filename (dir, "garbage.gguf", NULL);
  g_autofree gchar *text = NULL;
  guint8 junk[333];
  guint i;

  for (i = 0; i < sizeof junk; i++)
    junk[i] = (guint8) (i * 151 + 7);
  fail_unless (g_file_set_contents (path, (const gchar *) junk, sizeof junk,
          NULL));
  text = start_error (path);
  fail_unless (strstr (text, path) != NULL, "%s", text);
  g_unlink (path);
  g_rmdir (dir);
}

GST_END_TEST;

/* model cases: __i__ indexes models[] */

static GstHarness *
model_harness (const Model * m, const gchar * leaky, guint max_pending,
    const gchar * caps)
{
  GstElement *enc = gst_element_factory_make ("mmvisionenc", NULL);
  GstHarness *h;

  g_object_set (enc, "model", m->path, "max-pending", max_pending,
      "stats-interval", 3600.0, NULL);
  gst_util_set_object_arg (G_OBJECT (enc), "leaky", leaky);
  h = gst_harness_new_with_element (enc, "sink", "src");
  gst_object_unref (enc);
  gst_harness_set_src_caps_str (h, caps);
  return h;
}

/* A frame of the harness's caps filled with a pattern seeded by @seed. */
static GstBuffer *
model_frame (GstHarness * h, guint seed)
{
  GstCaps *caps = gst_pad_get_current_caps (h->srcpad);
  GstVideoInfo info;
  GstBuffer *buf;
  GstMapInfo map;
  gsize i;

  fail_unless (gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (i = 0; i < map.size; i++)
    map.data[i] = (guint8) ((i * 7 + seed * 31) ^ (i >> 5));
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = seed * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
  return buf;
}

/* Checks the tokens on @buf against the model; returns the first value. */
static gfloat
check_model_tokens (const Model * m, GstBuffer * buf)
{
  GstMmTokensMeta *meta = gst_buffer_get_mm_tokens_meta (buf);
  g_autoptr (GError) err = NULL;
  const gfloat *x;
  gsize i, n;

  fail_unless (meta != NULL, "frame %" GST_TIME_FORMAT " has no tokens",
      GST_TIME_ARGS (GST_BUFFER_PTS (buf)));
  /* one view, or tiles + the global view, each of the model's size */
  fail_unless_equals_int (meta->tokens_per_view, m->n_tokens);
  fail_unless_equals_int (meta->n_tokens, meta->n_views * m->n_tokens);
  fail_unless_equals_int (meta->n_views, meta->rows * meta->cols + 1);
  fail_unless_equals_int (meta->global_view, meta->rows * meta->cols);
  fail_unless_equals_int (meta->dim, m->dim);
  fail_unless_equals_string (meta->model_id, m->id);
  fail_unless_equals_uint64 (meta->pts, GST_BUFFER_PTS (buf));
  x = gst_mm_tokens_get_host (meta->tokens, &err);
  fail_unless (x != NULL, "%s", err ? err->message : "?");
  n = (gsize) meta->n_tokens * m->dim;
  for (i = 0; i < n; i++)
    fail_unless (isfinite (x[i]), "token value %" G_GSIZE_FORMAT " is %f", i,
        x[i]);
  return x[0];
}

GST_START_TEST (test_model_tokens_every_format)
{
  const Model *m = &models[__i__];
  const gchar *formats[] = { "RGB", "BGRx", "ABGR", "I420", "NV12", "GRAY8" };
  GstHarness *h = model_harness (m, "no", 2,
      "video/x-raw,format=RGB,width=37,height=29,framerate=30/1");
  gfloat first[2];
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    g_autofree gchar *caps =
        g_strdup_printf ("video/x-raw,format=%s,width=37,height=29,"
        "framerate=30/1", formats[i]);
    GstBuffer *buf;

    gst_harness_set_src_caps_str (h, caps);
    fail_unless_equals_int (gst_harness_push (h, model_frame (h, i)),
        GST_FLOW_OK);
    buf = gst_harness_pull (h);
    fail_unless (buf != NULL);
    first[i % 2] = check_model_tokens (m, buf);
    gst_buffer_unref (buf);
  }
  /* different pictures, different tokens */
  fail_if (first[0] == first[1]);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Live upstream, frames pushed faster than they encode: some are dropped
 * (counted), none is lost, order is kept, EOS encodes what waits. */
GST_START_TEST (test_model_live_drops)
{
  const Model *m = &models[__i__];
  GstHarness *h = model_harness (m, "auto", 1,
      "video/x-raw,format=RGBx,width=64,height=48,framerate=30/1");
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  const GstStructure *s;
  guint64 encoded = 0, dropped = 0;
  guint i, with_tokens = 0;

  gst_element_set_bus (h->element, bus);
  for (i = 0; i < 20; i++)
    fail_unless_equals_int (gst_harness_push (h, model_frame (h, i)),
        GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  mm_test_wait_eos (h);
  for (i = 0; i < 20; i++) {
    GstBuffer *buf = gst_harness_pull (h);

    fail_unless (buf != NULL, "frame %u lost", i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * GST_SECOND / 30);
    if (gst_buffer_get_mm_tokens_meta (buf)) {
      check_model_tokens (m, buf);
      with_tokens++;
    }
    gst_buffer_unref (buf);
  }

  msg = mm_test_pop_last_element_message (bus, 5 * GST_SECOND);
  fail_unless (msg != NULL && gst_message_has_name (msg, "mm-encoder-stats"));
  s = gst_message_get_structure (msg);
  gst_structure_get_uint64 (s, "encoded", &encoded);
  gst_structure_get_uint64 (s, "dropped", &dropped);
  GST_INFO ("%s: %" G_GUINT64_FORMAT " encoded, %" G_GUINT64_FORMAT
      " dropped", m->id, encoded, dropped);
  fail_unless_equals_uint64 (encoded, with_tokens);
  fail_unless_equals_uint64 (encoded + dropped, 20);
  fail_unless (dropped > 0);
  gst_message_unref (msg);

  gst_bus_set_flushing (bus, TRUE);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_model_eos_drains)
{
  const Model *m = &models[__i__];
  /* room for all three: the drops this test rules out are EOS's own */
  GstHarness *h = model_harness (m, "yes", 3,
      "video/x-raw,format=I420,width=33,height=17,framerate=30/1");
  guint i;

  for (i = 0; i < 3; i++)
    gst_harness_push (h, model_frame (h, i));
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  mm_test_wait_eos (h);
  for (i = 0; i < 3; i++) {
    GstBuffer *buf = gst_harness_pull (h);

    check_model_tokens (m, buf);
    gst_buffer_unref (buf);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

typedef struct
{
  GMutex lock;
  GString *seq;
} Seq;

static GstPadProbeReturn
seq_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Seq *seq = data;

  g_mutex_lock (&seq->lock);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);

    g_string_append_printf (seq->seq, "B%u ",
        (guint) gst_util_uint64_scale_round (GST_BUFFER_PTS (buf), 30,
            GST_SECOND));
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) ==
      GST_EVENT_FLUSH_STOP) {
    g_string_append (seq->seq, "F ");
  }
  g_mutex_unlock (&seq->lock);
  return GST_PAD_PROBE_OK;
}

/* A flush with frames inside: nothing from before it comes out after
 * FLUSH_STOP, frames after it are encoded. */
GST_START_TEST (test_model_flush)
{
  const Model *m = &models[__i__];
  GstHarness *h = model_harness (m, "yes", 2,
      "video/x-raw,format=BGR,width=40,height=30,framerate=30/1");
  Seq seq = { {0}, g_string_new (NULL) };
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  GstSegment segment;
  const gchar *after;
  GstBuffer *buf;
  guint i;

  g_mutex_init (&seq.lock);
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM |
      GST_PAD_PROBE_TYPE_EVENT_FLUSH, seq_probe, &seq, NULL);
  gst_object_unref (src);

  for (i = 0; i < 5; i++)
    gst_harness_push (h, model_frame (h, i));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  gst_harness_push (h, model_frame (h, 10));
  gst_harness_push (h, model_frame (h, 11));
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  mm_test_wait_eos (h);

  g_mutex_lock (&seq.lock);
  after = strstr (seq.seq->str, "F ");
  fail_unless (after != NULL);
  fail_unless_equals_string (after, "F B10 B11 ");
  g_mutex_unlock (&seq.lock);

  /* the last two frames out are the new ones, with tokens */
  while (gst_harness_buffers_in_queue (h) > 2)
    gst_buffer_unref (gst_harness_pull (h));
  for (i = 10; i < 12; i++) {
    buf = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * GST_SECOND / 30);
    check_model_tokens (m, buf);
    gst_buffer_unref (buf);
  }
  gst_harness_teardown (h);
  g_string_free (seq.seq, TRUE);
  g_mutex_clear (&seq.lock);
}

GST_END_TEST;

/* filled by the streaming thread, checked by the test once it is done */
typedef struct
{
  const Model *m;
  guint frames, sampled, with_tokens, bad_shape;
} Count;

static GstPadProbeReturn
count_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Count *c = data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMmTokensMeta *meta = gst_buffer_get_mm_tokens_meta (buf);

  c->frames++;
  if (gst_buffer_get_mm_sample_meta (buf))
    c->sampled++;
  if (meta) {
    c->with_tokens++;
    if ((gint) meta->tokens_per_view != c->m->n_tokens
        || meta->n_tokens != meta->n_views * meta->tokens_per_view
        || (gint) meta->dim != c->m->dim
        || !gst_buffer_get_mm_sample_meta (buf))
      c->bad_shape++;
  }
  return GST_PAD_PROBE_OK;
}

static void
run_launch (const Model * m, const gchar * sampler, guint frames, guint sampled)
{
  g_autofree gchar *desc = NULL;
  g_autoptr (GError) err = NULL;
  GstElement *pipeline, *sink;
  GstMessage *msg;
  GstPad *pad;
  Count c = { m };

  desc = g_strdup_printf ("videotestsrc num-buffers=10 ! %s ! "
      "mmvisionenc model=\"%s\" ! fakesink name=sink", sampler, m->path);
  pipeline = gst_parse_launch (desc, &err);
  fail_unless (pipeline != NULL, "%s", err ? err->message : "?");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_probe, &c, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
      120 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "%s: timeout", desc);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;

    gst_message_parse_error (msg, &e, NULL);
    fail ("%s: %s", desc, e->message);
  }
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);

  fail_unless_equals_int (c.frames, frames);
  fail_unless_equals_int (c.sampled, sampled);
  fail_unless_equals_int (c.with_tokens, sampled);
  fail_unless_equals_int (c.bad_shape, 0);
}

GST_START_TEST (test_model_launch)
{
  const Model *m = &models[__i__];

  /* drop mode: 10 frames at 30 fps hold one sample point at 1 fps */
  run_launch (m, "mmframesample fps=1", 1, 1);
  /* mark mode: every frame passes, frames 0, 3, 6, 9 are sampled */
  run_launch (m, "mmframesample fps=10 mode=mark", 10, 4);
}

GST_END_TEST;

/* One frame of @img (tight rows) through an encoder with @props
 * (gst_util_set_object_arg pairs, NULL-terminated); returns the buffer. */
static GstBuffer *
encode_one (const Model * m, const gchar * caps, const guint8 * data,
    gsize size, const gchar * first_prop, ...)
{
  GstElement *enc = gst_element_factory_make ("mmvisionenc", NULL);
  GstHarness *h;
  GstBuffer *buf;
  const gchar *name;
  va_list args;

  g_object_set (enc, "model", m->path, "stats-interval", 0.0, NULL);
  gst_util_set_object_arg (G_OBJECT (enc), "leaky", "no");
  va_start (args, first_prop);
  for (name = first_prop; name; name = va_arg (args, const gchar *))
    gst_util_set_object_arg (G_OBJECT (enc), name, va_arg (args,
            const gchar *));
  va_end (args);
  h = gst_harness_new_with_element (enc, "sink", "src");
  gst_object_unref (enc);
  gst_harness_set_src_caps_str (h, caps);
  buf = gst_buffer_new_memdup (data, size);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  buf = gst_harness_pull (h);
  fail_unless (buf != NULL);
  gst_harness_teardown (h);
  return buf;
}

/* The tokens on @buf equal @want (same device, same kernels: exact). */
static void
check_same_tokens (GstBuffer * buf, MmTensor * want, MmEngine * engine)
{
  GstMmTokensMeta *meta = gst_buffer_get_mm_tokens_meta (buf);
  g_autoptr (GError) err = NULL;
  g_autofree float *w = mm_tensor_dup_f32 (engine, want, NULL);
  const gfloat *x;

  fail_unless (meta != NULL);
  fail_unless_equals_int (meta->n_tokens, want->shape[0]);
  fail_unless_equals_int (meta->dim, want->shape[1]);
  x = gst_mm_tokens_get_host (meta->tokens, &err);
  fail_unless (x != NULL && w != NULL);
  fail_unless (memcmp (x, w, (gsize) meta->n_tokens * meta->dim * 4) == 0,
      "tokens differ from the encoder's");
}

/* A test picture, RGB, tight rows (widths that are multiples of 4 are what
 * GStreamer lays out without padding). */
static guint8 *
test_picture (gint w, gint h)
{
  guint8 *rgb = g_malloc ((gsize) w * h * 3);
  gint i;

  for (i = 0; i < w * h * 3; i++)
    rgb[i] = (guint8) ((i * 37 + (i / (w * 3)) * 11) ^ (i >> 4));
  return rgb;
}

/* @img through the model @vm as it is set now, and through an encoder
 * with @prop = @value (nullable): the layout is @n_views views in a
 * @rows x @cols grid with the whole image at @global_view, on both sides,
 * and the element's tokens are exactly the model's. */
static void
check_views (const Model * m, MmVisionModel * vm, const MmImage * img,
    MmEngine * engine, gint n_views, gint rows, gint cols, gint global_view,
    const gchar * prop, const gchar * value)
{
  g_autofree gchar *caps = g_strdup_printf ("video/x-raw,format=RGB,"
      "width=%d,height=%d,framerate=1/1", img->width, img->height);
  g_autoptr (GError) err = NULL;
  MmVisionLayout lay;
  MmTensor *want = mm_vision_model_encode_views (vm, img, &lay, &err);
  GstMmTokensMeta *meta;
  GstBuffer *buf;

  fail_unless (want != NULL, "%s", err ? err->message : "?");
  fail_unless_equals_int (lay.n_views, n_views);
  fail_unless_equals_int (lay.rows, rows);
  fail_unless_equals_int (lay.cols, cols);
  fail_unless_equals_int (lay.global_view, global_view);
  buf = encode_one (m, caps, img->planes[0],
      (gsize) img->strides[0] * img->height, prop, value, NULL);
  meta = gst_buffer_get_mm_tokens_meta (buf);
  fail_unless (meta != NULL);
  GST_INFO ("layout: %u views of %u tokens, %u x %u tiles, global %d",
      meta->n_views, meta->tokens_per_view, meta->rows, meta->cols,
      meta->global_view);
  fail_unless_equals_int (meta->n_views, n_views);
  fail_unless_equals_int (meta->rows, rows);
  fail_unless_equals_int (meta->cols, cols);
  fail_unless_equals_int (meta->global_view, global_view);
  fail_unless_equals_int (meta->tokens_per_view, m->n_tokens);
  fail_unless_equals_int (meta->n_tokens, n_views * m->n_tokens);
  check_same_tokens (buf, want, engine);
  gst_buffer_unref (buf);
  mm_tensor_free (want);
}

/* The Idefics3 fixture splits a 52x30 frame into 2 x 3 tiles + the global
 * image (its processor: longest edge 126, tiles of 42): the meta says so
 * and holds exactly what the encoder gives; image-splitting=off gives one
 * view, max-tiles=4 the layout of a longest edge of 84 (2 x 2). */
GST_START_TEST (test_model_split_layout)
{
  const Model *m = &models[1];
  g_autofree guint8 *rgb = test_picture (52, 30);
  g_autoptr (GError) err = NULL;
  MmEngine *engine = mm_engine_get (NULL, &err);
  MmVisionModel *vm = mm_vision_model_load (engine, m->path, &err);
  MmImage img = { MM_PIXEL_RGB, 52, 30, {rgb}, {156} };

  fail_unless (vm != NULL, "%s", err ? err->message : "?");
  /* the model's own setting: split */
  check_views (m, vm, &img, engine, 7, 2, 3, 6, NULL, NULL);
  /* no splitting: the global image alone */
  mm_vision_model_set_splitting (vm, FALSE, 0);
  check_views (m, vm, &img, engine, 1, 0, 0, 0, "image-splitting", "off");
  /* at most 4 tiles: 2 x 2 + global */
  mm_vision_model_set_splitting (vm, TRUE, 4);
  check_views (m, vm, &img, engine, 5, 2, 2, 4, "max-tiles", "4");
  mm_vision_model_free (vm);
  mm_engine_unref (engine);
}

GST_END_TEST;

/* The MiniCPM-V fixture slices a 100x44 frame (scale 28, patch 7) into
 * 2 x 3 slices + the overview: the meta says so (tiles first, the
 * overview last) and holds exactly what the encoder gives; max-tiles=2
 * lowers max_slice_nums to 2 (1 x 2 slices). */
GST_START_TEST (test_model_minicpmv_slices)
{
  const Model *m = &models[2];
  g_autofree guint8 *rgb = test_picture (100, 44);
  g_autoptr (GError) err = NULL;
  MmEngine *engine = mm_engine_get (NULL, &err);
  MmVisionModel *vm = mm_vision_model_load (engine, m->path, &err);
  MmImage img = { MM_PIXEL_RGB, 100, 44, {rgb}, {300} };

  fail_unless (vm != NULL, "%s", err ? err->message : "?");
  check_views (m, vm, &img, engine, 7, 2, 3, 6, NULL, NULL);
  mm_vision_model_set_splitting (vm, TRUE, 2);
  check_views (m, vm, &img, engine, 3, 1, 2, 2, "max-tiles", "2");
  mm_vision_model_free (vm);
  mm_engine_unref (engine);
}

GST_END_TEST;

/* I420 frames are converted with the matrix and range of their caps. */
GST_START_TEST (test_model_colorimetry)
{
  static const struct
  {
    const gchar *colorimetry;
    MmColorMatrix matrix;
    gboolean full;
  } cases[] = {
    {"bt601", MM_COLOR_MATRIX_BT601, FALSE},
    {"bt709", MM_COLOR_MATRIX_BT709, FALSE},
    {"bt2020", MM_COLOR_MATRIX_BT2020, FALSE},
    {"1:4:0:0", MM_COLOR_MATRIX_BT601, TRUE},   /* full range, BT.601 */
    {"1:3:5:1", MM_COLOR_MATRIX_BT709, TRUE},   /* full range, BT.709 */
  };
  const Model *m = &models[0];
  const gint w = 40, h = 26, cw = 20, ch = 13;
  gsize size = (gsize) w * h + 2 * (gsize) cw * ch;
  g_autofree guint8 *yuv = g_malloc (size);
  g_autoptr (GError) err = NULL;
  MmEngine *engine = mm_engine_get (NULL, &err);
  MmVisionModel *vm = mm_vision_model_load (engine, m->path, &err);
  float first[G_N_ELEMENTS (cases)];
  gsize i, j;

  fail_unless (vm != NULL, "%s", err ? err->message : "?");
  /* saturated chroma: the matrices differ visibly */
  for (i = 0; i < size; i++)
    yuv[i] = i < (gsize) w * h ? (guint8) (30 + (i * 7) % 200) :
        (guint8) ((i * 53) % 256);
  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *caps = g_strdup_printf ("video/x-raw,format=I420,"
        "width=%d,height=%d,framerate=1/1,colorimetry=%s", w, h,
        cases[i].colorimetry);
    MmImage img = { MM_PIXEL_I420, w, h, {yuv, yuv + w * h,
            yuv + w * h + cw * ch}, {w, cw, cw}, cases[i].matrix,
      cases[i].full
    };
    MmTensor *want = mm_vision_model_encode (vm, &img, &err);
    GstBuffer *buf;
    GstMmTokensMeta *meta;

    fail_unless (want != NULL, "%s", err ? err->message : "?");
    buf = encode_one (m, caps, yuv, size, NULL);
    check_same_tokens (buf, want, engine);
    meta = gst_buffer_get_mm_tokens_meta (buf);
    first[i] = gst_mm_tokens_get_host (meta->tokens, NULL)[0];
    gst_buffer_unref (buf);
    mm_tensor_free (want);
  }
  /* and the colorimetry did change the result */
  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    for (j = i + 1; j < G_N_ELEMENTS (cases); j++)
      fail_if (first[i] == first[j], "%s and %s give the same tokens",
          cases[i].colorimetry, cases[j].colorimetry);
  mm_vision_model_free (vm);
  mm_engine_unref (engine);
}

GST_END_TEST;

static Suite *
mmvisionenc_suite (gboolean with_models)
{
  Suite *s = suite_create ("mmvisionenc");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_refuses_audio_caps);
  tcase_add_test (tc, test_no_model_error);
  tcase_add_test (tc, test_missing_model_error);
  tcase_add_test (tc, test_garbage_model_error);
  if (with_models) {
    gint n = G_N_ELEMENTS (models);

    tc = tcase_create ("models");
    tcase_set_timeout (tc, 600);
    suite_add_tcase (s, tc);
    tcase_add_loop_test (tc, test_model_tokens_every_format, 0, n);
    tcase_add_loop_test (tc, test_model_live_drops, 0, n);
    tcase_add_loop_test (tc, test_model_eos_drains, 0, n);
    tcase_add_loop_test (tc, test_model_flush, 0, n);
    tcase_add_loop_test (tc, test_model_launch, 0, n);
    tcase_add_test (tc, test_model_split_layout);
    tcase_add_test (tc, test_model_minicpmv_slices);
    tcase_add_test (tc, test_model_colorimetry);
  }
  return s;
}

/* NULL when every model case can run, else why not. */
static gchar *
models_missing (void)
{
  g_autoptr (GError) err = NULL;
  MmEngine *engine;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (models); i++) {
    models[i].path = g_build_filename (g_getenv ("MM_FIXTURES"),
        models[i].fixture, NULL);
    if (!g_file_test (models[i].path, G_FILE_TEST_IS_REGULAR))
      return g_strdup_printf ("fixture %s is missing", models[i].path);
  }
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL)
    return g_strdup_printf ("no OpenCL device: %s", err->message);
  /* what the element must reproduce: the model's own shape and id */
  for (i = 0; i < G_N_ELEMENTS (models); i++) {
    g_autoptr (MmVisionModel) m = mm_vision_model_load (engine,
        models[i].path, &err);

    if (m == NULL) {
      g_printerr ("FAIL: cannot load %s: %s\n", models[i].path, err->message);
      exit (1);
    }
    models[i].n_tokens = mm_vision_model_n_tokens (m);
    models[i].dim = mm_vision_model_dim (m);
    models[i].id = g_strdup (mm_vision_model_id (m));
  }
  mm_engine_unref (engine);
  return NULL;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *missing = NULL;
  gint failed;

  /* OpenCL state does not survive fork(): run the cases in this process */
  g_setenv ("CK_FORK", "no", TRUE);
  gst_check_init (&argc, &argv);
  missing = models_missing ();
  failed = gst_check_run_suite (mmvisionenc_suite (missing == NULL),
      "mmvisionenc", __FILE__);
  if (failed)
    return 1;
  if (missing) {
    g_print ("SKIP: model cases: %s\n", missing);
    return 77;
  }
  return 0;
}
