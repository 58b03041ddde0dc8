/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmframesample: selection on running time, snippets, modes, caps, events,
 * timestamp fallbacks, property validation and GstMmSampleMeta.
 */
#include <math.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "gst/gstmmsamplemeta.h"

#define CAPS_30FPS "video/x-raw,format=GRAY8,width=4,height=4,framerate=30/1"
#define CAPS_VFR "video/x-raw,format=GRAY8,width=4,height=4,framerate=0/1"
#define FRAME_SIZE 16

typedef struct
{
  GstClockTime pts;
  guint64 offset;
  gboolean sampled;
  guint64 sample_index;
  guint frame_index;
  guint snippet_frames;
  GstClockTime running_time;
} OutFrame;

static GstClockTime
frame_pts_30 (guint i)
{
  return gst_util_uint64_scale (i, GST_SECOND, 30);
}

static GstBuffer *
make_frame (GstClockTime pts, GstClockTime duration, guint64 index)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);

  gst_buffer_memset (buf, 0, (guint8) index, FRAME_SIZE);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = duration;
  GST_BUFFER_OFFSET (buf) = index;
  return buf;
}

static GstHarness *
new_sampler (const gchar * caps)
{
  GstHarness *h = gst_harness_new ("mmframesample");

  fail_unless (h != NULL);
  if (caps)
    gst_harness_set_src_caps_str (h, caps);
  return h;
}

/* frames first .. first+count-1 of a 30 fps stream, with durations */
static void
push_frames_30 (GstHarness * h, guint first, guint count)
{
  guint i;

  for (i = first; i < first + count; i++) {
    GstClockTime pts = frame_pts_30 (i);
    GstBuffer *buf = make_frame (pts, frame_pts_30 (i + 1) - pts, i);

    fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  }
}

static void
push_segment (GstHarness * h, GstClockTime start, GstClockTime base)
{
  GstSegment segment;

  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.start = start;
  segment.time = start;
  segment.position = start;
  segment.base = base;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
}

static GArray *
pull_all (GstHarness * h)
{
  GArray *out = g_array_new (FALSE, TRUE, sizeof (OutFrame));
  GstBuffer *buf;

  while ((buf = gst_harness_try_pull (h)) != NULL) {
    OutFrame f = { 0, };
    GstMmSampleMeta *meta = gst_buffer_get_mm_sample_meta (buf);

    f.pts = GST_BUFFER_PTS (buf);
    f.offset = GST_BUFFER_OFFSET (buf);
    if (meta) {
      f.sampled = TRUE;
      f.sample_index = meta->sample_index;
      f.frame_index = meta->frame_index;
      f.snippet_frames = meta->snippet_frames;
      f.running_time = meta->running_time;
    }
    g_array_append_val (out, f);
    gst_buffer_unref (buf);
  }
  return out;
}

static guint
count_sampled (GArray * out)
{
  guint i, n = 0;

  for (i = 0; i < out->len; i++)
    n += g_array_index (out, OutFrame, i).sampled ? 1 : 0;
  return n;
}

static void
check_framerate (GstHarness * h, gint n, gint d)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  gint cn = -1, cd = -1;

  fail_unless (caps != NULL);
  fail_unless (gst_structure_get_fraction (gst_caps_get_structure (caps, 0),
          "framerate", &cn, &cd));
  fail_unless (cn == n && cd == d, "output framerate %d/%d, expected %d/%d",
      cn, cd, n, d);
  gst_caps_unref (caps);
}

/* Independent model of the rule, in rational arithmetic on nanoseconds:
 * sample when t * fps_n >= k * 1e9 * fps_d; then k = floor (t * fps) + 1.
 * Times are relative to the first frame (the anchor). */
static gboolean
model_samples (GstClockTime t, guint64 * k, gint fps_n, gint fps_d)
{
  if (t * (guint64) fps_n < *k * GST_SECOND * fps_d)
    return FALSE;
  *k = t * (guint64) fps_n / (GST_SECOND * fps_d) + 1;
  return TRUE;
}

GST_START_TEST (test_plugin_from_build_dir)
{
  const gchar *path = g_getenv ("GST_PLUGIN_PATH");
  GstElementFactory *factory;
  GstPlugin *plugin;
  GstElement *element;
  gchar **dirs, *file;
  gboolean in_build_dir = FALSE;
  guint i;

  fail_unless (path != NULL && *path != '\0',
      "GST_PLUGIN_PATH must point at the build dir (run through meson test)");

  factory = gst_element_factory_find ("mmframesample");
  fail_unless (factory != NULL, "mmframesample not found");
  element = gst_element_factory_create (factory, NULL);
  fail_unless (element != NULL);

  plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  fail_unless (plugin != NULL);
  file = g_canonicalize_filename (gst_plugin_get_filename (plugin), NULL);
  dirs = g_strsplit (path, G_SEARCHPATH_SEPARATOR_S, -1);
  for (i = 0; dirs[i] != NULL; i++) {
    gchar *dir;

    if (dirs[i][0] == '\0')
      continue;
    dir = g_canonicalize_filename (dirs[i], NULL);
    if (g_str_has_prefix (file, dir))
      in_build_dir = TRUE;
    g_free (dir);
  }
  fail_unless (in_build_dir, "plugin loaded from %s, not from %s", file, path);

  g_strfreev (dirs);
  g_free (file);
  gst_object_unref (plugin);
  gst_object_unref (element);
  gst_object_unref (factory);
}

GST_END_TEST;

GST_START_TEST (test_fps_2_exact)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 20);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);

    fail_unless_equals_uint64 (f->pts, i * 500 * GST_MSECOND);
    fail_unless_equals_uint64 (f->offset, i * 15);
    fail_unless (f->sampled, "drop mode must still attach the meta");
    fail_unless_equals_uint64 (f->sample_index, i);
    fail_unless_equals_int (f->frame_index, 0);
    fail_unless_equals_int (f->snippet_frames, 1);
    fail_unless_equals_uint64 (f->running_time, i * 500 * GST_MSECOND);
  }
  check_framerate (h, 2, 1);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_fps_half)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 0.5, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 5);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);

    fail_unless_equals_uint64 (f->pts, i * 2 * GST_SECOND);
    fail_unless_equals_uint64 (f->sample_index, i);
  }
  check_framerate (h, 1, 2);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* 29.97 is read as 30000/1001: sample points every 33.3667 ms on a 30 fps
 * stream hit every frame but the second one (frame k+1 hits point k). */
GST_START_TEST (test_fps_2997)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint64 k = 0;
  guint i, j = 0;

  g_object_set (h->element, "fps", 29.97, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 299);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).offset, 0);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 1).offset, 2);
  for (i = 0; i < 300; i++) {
    if (!model_samples (frame_pts_30 (i), &k, 30000, 1001))
      continue;
    fail_unless (j < out->len);
    fail_unless_equals_uint64 (g_array_index (out, OutFrame, j).offset, i);
    j++;
  }
  fail_unless_equals_int (j, out->len);
  check_framerate (h, 30000, 1001);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_snippet_frames)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 2.0, "snippet-frames", 3, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 60);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);

    fail_unless_equals_uint64 (f->offset, (i / 3) * 15 + i % 3);
    fail_unless_equals_uint64 (f->sample_index, i / 3);
    fail_unless_equals_int (f->frame_index, i % 3);
    fail_unless_equals_int (f->snippet_frames, 3);
    fail_unless_equals_uint64 (f->running_time, (i / 3) * 500 * GST_MSECOND);
  }
  /* runs of frames are not a uniform rate */
  check_framerate (h, 0, 1);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A snippet longer than the period: snippets never overlap, the sample
 * point inside a snippet is taken by the first frame after it. */
GST_START_TEST (test_snippet_longer_than_period)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  /* period 3 frames, snippet 5 frames: every frame sampled, in snippets */
  g_object_set (h->element, "fps", 10.0, "snippet-frames", 5, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 30);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 30);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);

    fail_unless_equals_uint64 (f->offset, i);
    fail_unless_equals_int (f->frame_index, i % 5);
    fail_unless_equals_uint64 (f->sample_index, i / 5);
  }

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* DISCONT ends a snippet: its frames are no longer contiguous */
GST_START_TEST (test_snippet_discont)
{
  GstHarness *h = new_sampler (NULL);
  GstBuffer *buf;
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 1.0, "snippet-frames", 5, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 3);
  buf = make_frame (frame_pts_30 (5), frame_pts_30 (1), 5);
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  push_frames_30 (h, 6, 24);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 3);
  for (i = 0; i < out->len; i++)
    fail_unless_equals_uint64 (g_array_index (out, OutFrame, i).offset, i);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_max_frames)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  /* drop mode: nothing passes after the cap */
  g_object_set (h->element, "fps", 2.0, "max-frames", 5, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 5);
  for (i = 0; i < out->len; i++)
    fail_unless_equals_uint64 (g_array_index (out, OutFrame, i).pts,
        i * 500 * GST_MSECOND);
  g_array_unref (out);
  gst_harness_teardown (h);

  /* mark mode: frames pass unflagged after the cap, even mid-snippet */
  h = new_sampler (NULL);
  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "mark");
  g_object_set (h->element, "fps", 2.0, "snippet-frames", 3,
      "max-frames", 4, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 300);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 300);
  fail_unless_equals_int (count_sampled (out), 4);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);
    gboolean expected = i <= 2 || i == 15;

    fail_unless (f->sampled == expected, "frame %u sampled %d", i, f->sampled);
  }
  fail_unless_equals_int (g_array_index (out, OutFrame, 15).frame_index, 0);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 15).sample_index, 1);
  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* mark mode passes every frame, flags 20, keeps the caps, and makes a
 * buffer writable only to flag it: shared input buffers are never touched */
GST_START_TEST (test_mark_mode)
{
  GstHarness *h = new_sampler (NULL);
  guint i, n_flagged = 0;

  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "mark");
  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);

  for (i = 0; i < 300; i++) {
    GstClockTime pts = frame_pts_30 (i);
    GstBuffer *in = make_frame (pts, frame_pts_30 (i + 1) - pts, i);
    GstBuffer *out;
    GstMmSampleMeta *meta;

    gst_buffer_ref (in);        /* keep it shared: not writable */
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    out = gst_harness_pull (h);
    fail_unless (out != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), pts);
    fail_unless (gst_buffer_get_mm_sample_meta (in) == NULL,
        "a shared input buffer was modified");

    meta = gst_buffer_get_mm_sample_meta (out);
    if (i % 15 == 0) {
      fail_unless (meta != NULL, "frame %u not flagged", i);
      fail_unless_equals_uint64 (meta->sample_index, i / 15);
      fail_unless_equals_uint64 (meta->running_time, pts);
      fail_unless (out != in);
      n_flagged++;
    } else {
      fail_unless (meta == NULL, "frame %u flagged", i);
      fail_unless (out == in, "unflagged frame %u was copied", i);
    }
    gst_buffer_unref (out);
    gst_buffer_unref (in);
  }
  fail_unless_equals_int (n_flagged, 20);
  fail_unless (gst_harness_try_pull (h) == NULL);
  check_framerate (h, 30, 1);

  gst_harness_teardown (h);
}

GST_END_TEST;

/* a GstMmSampleMeta from upstream is replaced or removed */
GST_START_TEST (test_upstream_meta_replaced)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "mark");
  g_object_set (h->element, "fps", 1.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  for (i = 0; i < 4; i++) {
    GstBuffer *buf = make_frame (frame_pts_30 (i), GST_CLOCK_TIME_NONE, i);

    gst_buffer_add_mm_sample_meta (buf, 77, 0, 1, 0);
    fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  }
  out = pull_all (h);
  fail_unless_equals_int (out->len, 4);
  fail_unless_equals_int (count_sampled (out), 1);
  fail_unless (g_array_index (out, OutFrame, 0).sampled);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).sample_index, 0);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* irregular timestamps: selection follows time, not frame counts */
GST_START_TEST (test_vfr)
{
  static const guint ms[] = { 0, 10, 400, 499, 500, 510, 900, 1400, 1450,
    2100, 2600, 2601, 3000, 3499
  };
  static const guint expected[] = { 0, 500, 1400, 2100, 2600, 3000 };
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_VFR);
  for (i = 0; i < G_N_ELEMENTS (ms); i++)
    fail_unless_equals_int (gst_harness_push (h,
            make_frame (ms[i] * GST_MSECOND, GST_CLOCK_TIME_NONE, i)),
        GST_FLOW_OK);

  out = pull_all (h);
  fail_unless_equals_int (out->len, G_N_ELEMENTS (expected));
  for (i = 0; i < out->len; i++)
    fail_unless_equals_uint64 (g_array_index (out, OutFrame, i).pts,
        expected[i] * GST_MSECOND);
  /* variable input: variable output */
  check_framerate (h, 0, 1);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* a 4 s hole: one frame after it, then the schedule continues on its grid;
 * the GAP event passes through */
GST_START_TEST (test_gap)
{
  GstHarness *h = new_sampler (NULL);
  GstEvent *event;
  GArray *out;
  gboolean got_gap = FALSE;
  guint i;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 30);
  fail_unless (gst_harness_push_event (h,
          gst_event_new_gap (GST_SECOND, 4100 * GST_MSECOND)));
  for (i = 0; i < 30; i++) {
    GstClockTime pts = 5100 * GST_MSECOND + frame_pts_30 (i);
    GstBuffer *buf = make_frame (pts, frame_pts_30 (1), 100 + i);

    if (i == 0)
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  }

  out = pull_all (h);
  fail_unless_equals_int (out->len, 5);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).pts, 0);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 1).pts,
      500 * GST_MSECOND);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 2).pts,
      5100 * GST_MSECOND);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 3).pts,
      5500 * GST_MSECOND);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 4).pts,
      6000 * GST_MSECOND);

  while ((event = gst_harness_try_pull_event (h)) != NULL) {
    if (GST_EVENT_TYPE (event) == GST_EVENT_GAP) {
      GstClockTime ts, dur;

      gst_event_parse_gap (event, &ts, &dur);
      fail_unless_equals_uint64 (ts, GST_SECOND);
      fail_unless_equals_uint64 (dur, 4100 * GST_MSECOND);
      got_gap = TRUE;
    }
    gst_event_unref (event);
  }
  fail_unless (got_gap, "GAP event did not pass");

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* buffers flagged GAP carry no picture and are never sampled */
GST_START_TEST (test_gap_buffer_not_sampled)
{
  GstHarness *h = new_sampler (NULL);
  GstBuffer *buf;
  GArray *out;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  buf = make_frame (0, frame_pts_30 (1), 0);
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  push_frames_30 (h, 1, 29);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 2);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).offset, 1);
  /* anchored on frame 1: next point 1/30 s + 0.5 s is frame 16 */
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 1).offset, 16);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* FLUSH_START/STOP + new segment: the first frame after it is sampled,
 * and a running snippet ends */
GST_START_TEST (test_flush)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  OutFrame *f;

  g_object_set (h->element, "fps", 2.0, "snippet-frames", 3, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  /* samples 0,1,2 and 15,16 (snippet cut by the flush) */
  push_frames_30 (h, 0, 17);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 3 + 2);
  f = &g_array_index (out, OutFrame, 4);
  fail_unless_equals_uint64 (f->offset, 16);
  fail_unless_equals_int (f->frame_index, 1);
  g_array_unref (out);

  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  push_segment (h, 0, 0);
  /* 700 ms is before the old schedule's next point (1 s) */
  push_frames_30 (h, 21, 30);

  out = pull_all (h);
  fail_unless_equals_int (out->len, 3 + 3);
  f = &g_array_index (out, OutFrame, 0);
  fail_unless_equals_uint64 (f->offset, 21);
  fail_unless_equals_uint64 (f->pts, 700 * GST_MSECOND);
  fail_unless_equals_int (f->frame_index, 0);
  fail_unless_equals_uint64 (f->sample_index, 2);
  /* re-anchored on 700 ms: next point 1.2 s = frame 36 */
  f = &g_array_index (out, OutFrame, 3);
  fail_unless_equals_uint64 (f->offset, 36);
  fail_unless_equals_int (f->frame_index, 0);

  g_array_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* selection and meta follow running time; a new segment re-anchors, an
 * identical segment sent again does not */
GST_START_TEST (test_segment_running_time)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 8);
  push_segment (h, 0, 0);       /* same segment again: no effect */
  push_frames_30 (h, 8, 7);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 1);
  g_array_unref (out);

  /* PTS restart at 0, running time at 10.25 s */
  push_segment (h, 0, 10250 * GST_MSECOND);
  push_frames_30 (h, 0, 30);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 2);
  for (i = 0; i < out->len; i++) {
    OutFrame *f = &g_array_index (out, OutFrame, i);

    fail_unless_equals_uint64 (f->pts, i * 500 * GST_MSECOND);
    fail_unless_equals_uint64 (f->running_time,
        10250 * GST_MSECOND + i * 500 * GST_MSECOND);
    fail_unless_equals_uint64 (f->sample_index, 1 + i);
  }
  g_array_unref (out);

  /* segment starting at 1 s: running time = PTS - 1 s + base */
  push_segment (h, GST_SECOND, 20 * GST_SECOND);
  push_frames_30 (h, 30, 30);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 2);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).pts, GST_SECOND);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 0).running_time,
      20 * GST_SECOND);
  fail_unless_equals_uint64 (g_array_index (out, OutFrame, 1).running_time,
      20 * GST_SECOND + 500 * GST_MSECOND);
  g_array_unref (out);

  gst_harness_teardown (h);
}

GST_END_TEST;

static GArray *
run_untimestamped (const gchar * caps, GstClockTime duration, guint n,
    guint pts_every)
{
  GstHarness *h = new_sampler (NULL);
  GArray *out;
  guint i;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, caps);
  for (i = 0; i < n; i++) {
    GstClockTime pts = GST_CLOCK_TIME_NONE;

    if (pts_every > 0 && i % pts_every == 0)
      pts = frame_pts_30 (i);
    fail_unless_equals_int (gst_harness_push (h, make_frame (pts, duration,
                i)), GST_FLOW_OK);
  }
  out = pull_all (h);
  gst_harness_teardown (h);
  return out;
}

static void
check_offsets_every (GArray * out, guint expected_len, guint step)
{
  guint i;

  fail_unless_equals_int (out->len, expected_len);
  for (i = 0; i < out->len; i++)
    fail_unless_equals_uint64 (g_array_index (out, OutFrame, i).offset,
        i * step);
}

GST_START_TEST (test_missing_timestamps)
{
  GArray *out;

  /* no PTS, no duration: count frames at the caps framerate */
  out = run_untimestamped (CAPS_30FPS, GST_CLOCK_TIME_NONE, 300, 0);
  check_offsets_every (out, 20, 15);
  g_array_unref (out);

  /* some PTS: count from the last valid one */
  out = run_untimestamped (CAPS_30FPS, GST_CLOCK_TIME_NONE, 300, 7);
  check_offsets_every (out, 20, 15);
  g_array_unref (out);

  /* no PTS, variable caps, 50 ms durations: previous PTS + duration */
  out = run_untimestamped (CAPS_VFR, 50 * GST_MSECOND, 300, 0);
  check_offsets_every (out, 30, 10);
  g_array_unref (out);

  /* nothing known: assumed 30 fps */
  out = run_untimestamped (CAPS_VFR, GST_CLOCK_TIME_NONE, 300, 0);
  check_offsets_every (out, 20, 15);
  g_array_unref (out);
}

GST_END_TEST;

GST_START_TEST (test_caps_drop_mode)
{
  GstHarness *h;

  /* the smaller of input rate and fps */
  h = new_sampler (NULL);
  g_object_set (h->element, "fps", 50.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 2);
  check_framerate (h, 30, 1);
  gst_harness_teardown (h);

  /* renegotiates when fps changes while running */
  h = new_sampler (NULL);
  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  push_frames_30 (h, 0, 30);
  check_framerate (h, 2, 1);
  g_object_set (h->element, "fps", 5.0, NULL);
  push_frames_30 (h, 30, 30);
  check_framerate (h, 5, 1);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2 + 5);
  gst_harness_teardown (h);

  /* memory features pass: video/x-raw(ANY) */
  h = new_sampler (NULL);
  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h,
      "video/x-raw(memory:SystemMemory),format=NV12,width=4,height=4,"
      "framerate=30/1");
  push_frames_30 (h, 0, 2);
  check_framerate (h, 2, 1);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_bad_properties)
{
  GstElement *e = gst_element_factory_make ("mmframesample", NULL);
  gdouble fps;
  guint snippet;
  gint mode;

  fail_unless (e != NULL);
  g_object_get (e, "fps", &fps, "snippet-frames", &snippet, NULL);
  fail_unless_equals_float (fps, 1.0);
  fail_unless_equals_int (snippet, 1);

  g_object_set (e, "fps", 2.0, "snippet-frames", 4, NULL);

  ASSERT_WARNING (g_object_set (e, "fps", 0.0, NULL));
  ASSERT_WARNING (g_object_set (e, "fps", -1.0, NULL));
  ASSERT_WARNING (g_object_set (e, "fps", (gdouble) NAN, NULL));
  ASSERT_WARNING (g_object_set (e, "fps", 1001.0, NULL));
  ASSERT_WARNING (g_object_set (e, "fps", 1e12, NULL));
  g_object_get (e, "fps", &fps, NULL);
  fail_unless_equals_float (fps, 2.0);

  ASSERT_WARNING (g_object_set (e, "snippet-frames", 0, NULL));
  ASSERT_WARNING (g_object_set (e, "snippet-frames", 10001, NULL));
  g_object_get (e, "snippet-frames", &snippet, NULL);
  fail_unless_equals_int (snippet, 4);

  ASSERT_WARNING (g_object_set (e, "mode", 7, NULL));
  g_object_get (e, "mode", &mode, NULL);
  fail_unless_equals_int (mode, 0);

  /* the edges of the ranges are accepted */
  g_object_set (e, "fps", 1000.0, "snippet-frames", 10000, NULL);
  g_object_get (e, "fps", &fps, "snippet-frames", &snippet, NULL);
  fail_unless_equals_float (fps, 1000.0);
  fail_unless_equals_int (snippet, 10000);

  gst_object_unref (e);
}

GST_END_TEST;

static GstStaticPadTemplate audio_src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw,format=S16LE,rate=48000,channels=1,"
        "layout=interleaved"));

GST_START_TEST (test_audio_caps_refused)
{
  GstElement *e = gst_element_factory_make ("mmframesample", NULL);
  GstPad *audio_pad, *sinkpad;
  GstSegment segment;
  GstCaps *caps;
  GstHarness *h;

  /* linking an audio pad fails */
  audio_pad = gst_pad_new_from_static_template (&audio_src_template, "src");
  sinkpad = gst_element_get_static_pad (e, "sink");
  fail_unless (gst_pad_link (audio_pad, sinkpad) != GST_PAD_LINK_OK);
  caps = gst_static_pad_template_get_caps (&audio_src_template);
  fail_if (gst_pad_query_accept_caps (sinkpad, caps));
  gst_object_unref (sinkpad);
  gst_object_unref (audio_pad);
  gst_object_unref (e);

  /* audio caps are refused, and data after them fails */
  h = gst_harness_new ("mmframesample");
  sinkpad = gst_element_get_static_pad (h->element, "sink");
  fail_if (gst_pad_send_event (sinkpad, gst_event_new_caps (caps)));
  /* the harness keeps them sticky and resends them with the buffer */
  gst_pad_push_event (h->srcpad, gst_event_new_caps (gst_caps_ref (caps)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_pad_push_event (h->srcpad, gst_event_new_segment (&segment));
  fail_unless_equals_int (gst_harness_push (h,
          make_frame (0, GST_CLOCK_TIME_NONE, 0)), GST_FLOW_NOT_NEGOTIATED);
  fail_unless (gst_pad_get_current_caps (sinkpad) == NULL);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  gst_object_unref (sinkpad);
  gst_harness_teardown (h);
  gst_caps_unref (caps);
}

GST_END_TEST;

/* no latency added; QoS passes upstream and drops nothing */
GST_START_TEST (test_latency_and_qos)
{
  GstHarness *h = new_sampler (NULL);
  GstEvent *event;
  gboolean got_qos = FALSE;
  GArray *out;

  g_object_set (h->element, "fps", 2.0, NULL);
  gst_harness_set_src_caps_str (h, CAPS_30FPS);
  gst_harness_set_upstream_latency (h, 33 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 33 * GST_MSECOND);

  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, 10 * GST_SECOND, 0)));
  while ((event = gst_harness_try_pull_upstream_event (h)) != NULL) {
    got_qos |= GST_EVENT_TYPE (event) == GST_EVENT_QOS;
    gst_event_unref (event);
  }
  fail_unless (got_qos, "QoS event did not reach upstream");

  push_frames_30 (h, 0, 30);
  out = pull_all (h);
  fail_unless_equals_int (out->len, 2);
  g_array_unref (out);

  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_meta_copy)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  GstBuffer *copy, *deep;
  GstMmSampleMeta *meta;

  fail_unless (gst_mm_sample_meta_get_info () != NULL);
  /* no tags: every transform copies it */
  fail_unless (gst_meta_api_type_get_tags (GST_MM_SAMPLE_META_API_TYPE) ==
      NULL);
  fail_unless (gst_buffer_get_mm_sample_meta (buf) == NULL);

  meta = gst_buffer_add_mm_sample_meta (buf, 42, 2, 5, 7 * GST_SECOND);
  fail_unless (meta != NULL);
  fail_unless (gst_buffer_get_mm_sample_meta (buf) == meta);

  copy = gst_buffer_copy (buf);
  deep = gst_buffer_copy_deep (buf);
  gst_buffer_unref (buf);

  meta = gst_buffer_get_mm_sample_meta (copy);
  fail_unless (meta != NULL, "meta lost by gst_buffer_copy");
  fail_unless_equals_uint64 (meta->sample_index, 42);
  fail_unless_equals_int (meta->frame_index, 2);
  fail_unless_equals_int (meta->snippet_frames, 5);
  fail_unless_equals_uint64 (meta->running_time, 7 * GST_SECOND);

  meta = gst_buffer_get_mm_sample_meta (deep);
  fail_unless (meta != NULL, "meta lost by gst_buffer_copy_deep");
  fail_unless_equals_uint64 (meta->sample_index, 42);

  gst_buffer_unref (copy);
  gst_buffer_unref (deep);
}

GST_END_TEST;

/* the documented launch line: 300 frames at 30 fps, fps=2 -> 20 frames */
GST_START_TEST (test_launch_line)
{
  GstElement *pipeline, *sink;
  GstMessage *msg;
  GstBus *bus;
  guint64 n = 0;
  GError *err = NULL;

  if (gst_registry_check_feature_version (gst_registry_get (),
          "videotestsrc", 1, 0, 0) == FALSE) {
    GST_INFO ("videotestsrc not available, not running the launch line");
    return;
  }
  pipeline = gst_parse_launch ("videotestsrc num-buffers=300 ! "
      "video/x-raw,framerate=30/1 ! mmframesample fps=2 ! "
      "fakesink name=sink sync=false", &err);
  fail_unless (pipeline != NULL, "%s", err ? err->message : "?");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");

  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);

  {
    GstStructure *stats;

    g_object_get (sink, "stats", &stats, NULL);
    fail_unless (gst_structure_get_uint64 (stats, "rendered", &n));
    gst_structure_free (stats);
  }
  fail_unless_equals_uint64 (n, 20);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
mmframesample_suite (void)
{
  Suite *s = suite_create ("mmframesample");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_plugin_from_build_dir);
  tcase_add_test (tc, test_fps_2_exact);
  tcase_add_test (tc, test_fps_half);
  tcase_add_test (tc, test_fps_2997);
  tcase_add_test (tc, test_snippet_frames);
  tcase_add_test (tc, test_snippet_longer_than_period);
  tcase_add_test (tc, test_snippet_discont);
  tcase_add_test (tc, test_max_frames);
  tcase_add_test (tc, test_mark_mode);
  tcase_add_test (tc, test_upstream_meta_replaced);
  tcase_add_test (tc, test_vfr);
  tcase_add_test (tc, test_gap);
  tcase_add_test (tc, test_gap_buffer_not_sampled);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_segment_running_time);
  tcase_add_test (tc, test_missing_timestamps);
  tcase_add_test (tc, test_caps_drop_mode);
  tcase_add_test (tc, test_bad_properties);
  tcase_add_test (tc, test_audio_caps_refused);
  tcase_add_test (tc, test_latency_and_qos);
  tcase_add_test (tc, test_meta_copy);
  tcase_add_test (tc, test_launch_line);

  return s;
}

GST_CHECK_MAIN (mmframesample);
