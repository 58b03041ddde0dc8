/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-mmframesample
 * @title: mmframesample
 * @short_description: sample video frames at a target rate, Apollo-style
 * @see_also: #GstMmSampleMeta, videorate
 *
 * mmframesample selects frames of a raw video stream at a target rate so
 * that an encoder only works on those. It never changes, retimestamps or
 * duplicates frames: it only decides which frames are sampled.
 *
 * ## Selection
 *
 * Sample points are placed every 1/#GstMmFrameSample:fps seconds of running
 * time (the frame PTS converted with the current segment), not by counting
 * frames, so the selection stays right under variable frame rates, gaps and
 * segment changes. The first frame is always sampled and anchors the
 * schedule. A frame is sampled when its running time reaches the next
 * sample point; the next sample point then advances by whole periods past
 * that frame, so a gap yields one sampled frame, not a burst. All arithmetic
 * is exact integer arithmetic on the fraction of #GstMmFrameSample:fps:
 * 30 fps input and `fps=2` samples exactly the frames at 0, 0.5 s, 1 s, ….
 * Decimal NTSC-style rates of 10 fps and above (23.976, 29.97, 59.94, …)
 * are read as n×1000/1001, so `fps=29.97` means 30000/1001.
 *
 * With #GstMmFrameSample:snippet-frames=N, each sample point starts a
 * snippet: the frame at the sample point and the N-1 frames after it are
 * sampled (Apollo-style clips that keep motion). Snippets never overlap: a
 * sample point that falls inside a snippet is taken by the first frame after
 * it. A flush, a new segment, a DISCONT buffer or running time that jumps
 * back ends the current snippet.
 *
 * A flush (FLUSH_STOP) or a new segment that differs from the current one
 * restarts the schedule: the first frame after it is sampled and the sample
 * points are re-anchored on its running time. So are frames whose running
 * time jumps back before the last sample point. Frames outside the segment
 * and buffers flagged GAP are never sampled. GAP events, QoS events and the
 * latency query pass through unchanged: the element adds no latency and
 * never drops frames for QoS on its own.
 *
 * #GstMmFrameSample:max-frames caps the number of frames sampled since the
 * element started (flushes do not reset it). Once reached, drop mode passes
 * nothing more and mark mode passes frames unflagged.
 *
 * ## Missing timestamps
 *
 * A frame without PTS gets an estimated one, in this order: the previous
 * frame's PTS plus its buffer duration; else the last valid PTS plus the
 * frames counted since, at the caps framerate; else the same counting at an
 * assumed 30 frames per second (caps framerate 0/1 and no durations). When
 * no valid PTS was seen since the last flush or segment, counting starts at
 * the segment start. Estimates only steer the selection; buffer timestamps
 * are left as they are. In a segment that is not in TIME format PTS values
 * are used as running time directly.
 *
 * ## Modes
 *
 * `mode=drop` (default) passes only the sampled frames; the source caps
 * carry the sampled rate as framerate (the smaller of the input rate and
 * #GstMmFrameSample:fps), or 0/1 (variable) when the input is variable or
 * #GstMmFrameSample:snippet-frames is above 1. `mode=mark` passes every
 * frame with its caps unchanged. In both modes sampled frames carry a
 * #GstMmSampleMeta with the sample index, the position in the snippet, the
 * snippet length and the running time of the sample point; a buffer is made
 * writable only for that. A #GstMmSampleMeta that arrives from upstream is
 * replaced on sampled frames and removed from the others.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=300 ! mmframesample fps=2 ! fakesink
 * ]| Keeps 20 of 300 frames at 30 fps: those at 0, 0.5 s, 1 s, …
 * |[
 * gst-launch-1.0 -v videotestsrc num-buffers=90 ! mmframesample mode=mark fps=0.5 snippet-frames=4 ! fakesink silent=false
 * ]| Passes all 90 frames; frames 0-3 and 60-63 carry a GstMmSampleMeta.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>

#include "gstmmframesample.h"
#include "gst/gstmmsamplemeta.h"

GST_DEBUG_CATEGORY_STATIC (gst_mm_frame_sample_debug);
#define GST_CAT_DEFAULT gst_mm_frame_sample_debug

enum
{
  PROP_0,
  PROP_FPS,
  PROP_SNIPPET_FRAMES,
  PROP_MODE,
  PROP_MAX_FRAMES,
};

#define DEFAULT_FPS 1.0
#define DEFAULT_SNIPPET_FRAMES 1
#define DEFAULT_MODE GST_MM_FRAME_SAMPLE_MODE_DROP
#define DEFAULT_MAX_FRAMES 0

#define MIN_FPS 0.0001
#define MAX_FPS 1000.0
#define MAX_SNIPPET_FRAMES 10000

/* rate assumed for frames without PTS, duration or caps framerate */
#define ASSUMED_FPS_N 30
#define ASSUMED_FPS_D 1

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw(ANY)"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw(ANY)"));

/* Why GstBaseTransform rather than a plain element: it brings caps queries
 * through transform_caps (the framerate rewrite of drop mode), renegotiation
 * when a property changes, accept-caps, allocation and latency queries, QoS
 * forwarding and segment tracking. The element stays in passthrough and
 * replaces generate_output(), the one hook that can drop a buffer or make
 * it writable only when a meta is attached. transform_ip cannot: outside
 * passthrough the base class makes every buffer writable first (copying
 * shared ones), and in passthrough it must not write at all. */
struct _GstMmFrameSample
{
  GstBaseTransform parent;

  /* properties, under the object lock */
  gdouble prop_fps;
  gint prop_fps_n, prop_fps_d;  /* prop_fps as a fraction */
  guint prop_snippet_frames;
  GstMmFrameSampleMode prop_mode;
  guint prop_max_frames;

  /* input framerate from the caps; 0/1 when variable or unknown */
  gint in_fps_n, in_fps_d;

  /* schedule, streaming thread only; sample points lie at
   * anchor + k * fps_d / fps_n seconds of running time */
  gboolean need_anchor;
  GstClockTime anchor;
  GstClockTime next_time;
  GstClockTime last_sample_time;
  gint sched_fps_n, sched_fps_d;

  /* current snippet: snippet_pos of snippet_len frames output */
  guint snippet_pos;
  guint snippet_len;
  guint64 snippet_index;
  GstClockTime snippet_time;

  guint64 n_samples;            /* sample points started */
  guint64 n_sampled;            /* frames output as sampled, for max-frames */

  /* timestamp estimation for frames without PTS */
  GstClockTime prev_pts;        /* PTS or estimate of the previous frame */
  GstClockTime prev_duration;
  GstClockTime count_base;      /* last valid PTS, or segment start */
  guint64 count_frames;         /* frames counted since count_base */
};

typedef struct
{
  gint fps_n, fps_d;
  guint snippet_frames;
  guint max_frames;
  GstMmFrameSampleMode mode;
} GstMmFrameSampleSettings;

typedef struct
{
  guint64 sample_index;
  guint frame_index;
  guint snippet_frames;
  GstClockTime running_time;
} GstMmFrameSampleInfo;

static void gst_mm_frame_sample_set_property (GObject * object,
    guint prop_id, const GValue * value, GParamSpec * pspec);
static void gst_mm_frame_sample_get_property (GObject * object,
    guint prop_id, GValue * value, GParamSpec * pspec);
static gboolean gst_mm_frame_sample_start (GstBaseTransform * trans);
static gboolean gst_mm_frame_sample_stop (GstBaseTransform * trans);
static GstCaps *gst_mm_frame_sample_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter);
static gboolean gst_mm_frame_sample_set_caps (GstBaseTransform * trans,
    GstCaps * incaps, GstCaps * outcaps);
static gboolean gst_mm_frame_sample_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static GstFlowReturn gst_mm_frame_sample_generate_output (GstBaseTransform *
    trans, GstBuffer ** outbuf);

static void gst_mm_frame_sample_reset_schedule (GstMmFrameSample * self);
static gboolean gst_mm_frame_sample_select (GstMmFrameSample * self,
    GstBuffer * buf, const GstMmFrameSampleSettings * s,
    GstMmFrameSampleInfo * info);

GType
gst_mm_frame_sample_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_FRAME_SAMPLE_MODE_DROP,
        "Pass only sampled frames (framerate rewritten in the caps)", "drop"},
    {GST_MM_FRAME_SAMPLE_MODE_MARK,
        "Pass every frame, attach GstMmSampleMeta to sampled ones", "mark"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmFrameSampleMode", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define gst_mm_frame_sample_parent_class parent_class
G_DEFINE_TYPE (GstMmFrameSample, gst_mm_frame_sample, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (mmframesample, "mmframesample", GST_RANK_NONE,
    GST_TYPE_MM_FRAME_SAMPLE);

static void
gst_mm_frame_sample_class_init (GstMmFrameSampleClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_mm_frame_sample_debug, "mmframesample", 0,
      "mm frame sampler");

  gobject_class->set_property = gst_mm_frame_sample_set_property;
  gobject_class->get_property = gst_mm_frame_sample_get_property;

  /**
   * GstMmFrameSample:fps:
   *
   * Target sample points per second of running time. Fractional rates are
   * fine: 0.5 samples a frame every 2 s, 29.97 means 30000/1001.
   */
  g_object_class_install_property (gobject_class, PROP_FPS,
      g_param_spec_double ("fps", "Sample rate",
          "Target sample points per second of running time, > 0 "
          "(0.5 = one every 2 s; 29.97 = 30000/1001); out-of-range values "
          "are refused with a warning and the old value is kept",
          MIN_FPS, MAX_FPS, DEFAULT_FPS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmFrameSample:snippet-frames:
   *
   * Number of contiguous frames sampled at each sample point (the frame at
   * the sample point and the ones right after it).
   */
  g_object_class_install_property (gobject_class, PROP_SNIPPET_FRAMES,
      g_param_spec_uint ("snippet-frames", "Snippet frames",
          "Contiguous frames sampled at each sample point, starting with the "
          "frame at the sample point (1 = single frames)",
          1, MAX_SNIPPET_FRAMES, DEFAULT_SNIPPET_FRAMES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmFrameSample:mode:
   *
   * Whether frames that are not sampled are dropped or passed unflagged.
   */
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "drop: pass only sampled frames, framerate rewritten in the caps; "
          "mark: pass every frame, flag sampled ones with GstMmSampleMeta",
          GST_TYPE_MM_FRAME_SAMPLE_MODE, DEFAULT_MODE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmFrameSample:max-frames:
   *
   * Cap on the number of frames output as sampled since the element
   * started. 0 means no cap.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_FRAMES,
      g_param_spec_uint ("max-frames", "Max frames",
          "Stop sampling after this many sampled frames (0 = unlimited); "
          "then drop mode passes nothing, mark mode passes frames unflagged",
          0, G_MAXUINT, DEFAULT_MAX_FRAMES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Frame sampler", "Filter/Video",
      "Samples video frames at a target rate or in contiguous snippets, "
      "dropping or flagging the others", "mm developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_mm_frame_sample_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_mm_frame_sample_stop);
  trans_class->transform_caps =
      GST_DEBUG_FUNCPTR (gst_mm_frame_sample_transform_caps);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_mm_frame_sample_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_mm_frame_sample_sink_event);
  trans_class->generate_output =
      GST_DEBUG_FUNCPTR (gst_mm_frame_sample_generate_output);

  gst_type_mark_as_plugin_api (GST_TYPE_MM_FRAME_SAMPLE_MODE, 0);
}

static void
gst_mm_frame_sample_init (GstMmFrameSample * self)
{
  self->prop_fps = DEFAULT_FPS;
  gst_util_double_to_fraction (DEFAULT_FPS, &self->prop_fps_n,
      &self->prop_fps_d);
  self->prop_snippet_frames = DEFAULT_SNIPPET_FRAMES;
  self->prop_mode = DEFAULT_MODE;
  self->prop_max_frames = DEFAULT_MAX_FRAMES;

  self->in_fps_n = 0;
  self->in_fps_d = 1;
  self->n_samples = 0;
  self->n_sampled = 0;
  gst_mm_frame_sample_reset_schedule (self);

  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

/* Reads a decimal rate as a fraction; NTSC-style decimals (29.97, 23.976,
 * 59.94, …) become k*1000/1001 rather than 2997/100. */
static void
gst_mm_frame_sample_fps_to_fraction (gdouble fps, gint * n, gint * d)
{
  gdouble k = round (fps * 1001.0 / 1000.0);

  if (fps >= 10.0 && fabs (fps - k * 1000.0 / 1001.0) < 0.0005 &&
      fabs (fps - round (fps)) > 0.0005) {
    *n = (gint) (k * 1000.0);
    *d = 1001;
    return;
  }
  gst_util_double_to_fraction (fps, n, d);
}

static void
gst_mm_frame_sample_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (object);
  gboolean reconfigure = FALSE;

  /* GParamSpec ranges hold exactly the valid values: GObject refuses the
   * others (fps <= 0, NaN, > 1000, snippet-frames 0 or > 10000) with a
   * g_warning and keeps the old value before we get here. */
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_FPS:
      self->prop_fps = g_value_get_double (value);
      gst_mm_frame_sample_fps_to_fraction (self->prop_fps,
          &self->prop_fps_n, &self->prop_fps_d);
      GST_DEBUG_OBJECT (self, "fps %f = %d/%d", self->prop_fps,
          self->prop_fps_n, self->prop_fps_d);
      reconfigure = TRUE;
      break;
    case PROP_SNIPPET_FRAMES:
      self->prop_snippet_frames = g_value_get_uint (value);
      reconfigure = TRUE;
      break;
    case PROP_MODE:
      self->prop_mode = g_value_get_enum (value);
      reconfigure = TRUE;
      break;
    case PROP_MAX_FRAMES:
      self->prop_max_frames = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* the framerate of the output caps depends on these */
  if (reconfigure)
    gst_base_transform_reconfigure_src (GST_BASE_TRANSFORM (self));
}

static void
gst_mm_frame_sample_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_FPS:
      g_value_set_double (value, self->prop_fps);
      break;
    case PROP_SNIPPET_FRAMES:
      g_value_set_uint (value, self->prop_snippet_frames);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->prop_mode);
      break;
    case PROP_MAX_FRAMES:
      g_value_set_uint (value, self->prop_max_frames);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_mm_frame_sample_start (GstBaseTransform * trans)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);

  self->in_fps_n = 0;
  self->in_fps_d = 1;
  self->n_samples = 0;
  self->n_sampled = 0;
  gst_mm_frame_sample_reset_schedule (self);

  return TRUE;
}

static gboolean
gst_mm_frame_sample_stop (GstBaseTransform * trans)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);

  GST_DEBUG_OBJECT (self, "%" G_GUINT64_FORMAT " sample points, %"
      G_GUINT64_FORMAT " frames sampled", self->n_samples, self->n_sampled);

  return TRUE;
}

/* Framerate of the output in drop mode for an input rate in_n/in_d. */
static void
gst_mm_frame_sample_out_rate (GstMmFrameSample * self, gint in_n, gint in_d,
    gint * out_n, gint * out_d)
{
  gint fps_n, fps_d;
  guint snippet;

  GST_OBJECT_LOCK (self);
  fps_n = self->prop_fps_n;
  fps_d = self->prop_fps_d;
  snippet = self->prop_snippet_frames;
  GST_OBJECT_UNLOCK (self);

  if (in_n <= 0 || in_d <= 0 || snippet > 1) {
    /* variable input, or runs of frames: no uniform rate */
    *out_n = 0;
    *out_d = 1;
  } else if (gst_util_fraction_compare (in_n, in_d, fps_n, fps_d) < 0) {
    *out_n = in_n;
    *out_d = in_d;
  } else {
    *out_n = fps_n;
    *out_d = fps_d;
  }
}

static GstCaps *
gst_mm_frame_sample_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);
  GstMmFrameSampleMode mode;
  GstCaps *ret;
  guint i;

  GST_OBJECT_LOCK (self);
  mode = self->prop_mode;
  GST_OBJECT_UNLOCK (self);

  if (mode == GST_MM_FRAME_SAMPLE_MODE_MARK) {
    ret = gst_caps_ref (caps);
  } else {
    ret = gst_caps_new_empty ();
    for (i = 0; i < gst_caps_get_size (caps); i++) {
      GstStructure *s = gst_structure_copy (gst_caps_get_structure (caps, i));
      GstCapsFeatures *f =
          gst_caps_features_copy (gst_caps_get_features (caps, i));
      const GValue *rate = gst_structure_get_value (s, "framerate");

      if (direction == GST_PAD_SINK && rate && GST_VALUE_HOLDS_FRACTION (rate)) {
        gint n, d;

        gst_mm_frame_sample_out_rate (self,
            gst_value_get_fraction_numerator (rate),
            gst_value_get_fraction_denominator (rate), &n, &d);
        gst_structure_set (s, "framerate", GST_TYPE_FRACTION, n, d, NULL);
      } else if (rate) {
        /* any input rate gives some output rate, and the other way round */
        gst_structure_set (s, "framerate", GST_TYPE_FRACTION_RANGE, 0, 1,
            G_MAXINT, 1, NULL);
      }
      ret = gst_caps_merge_structure_full (ret, s, f);
    }
  }

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret,
        GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (ret);
    ret = tmp;
  }

  GST_LOG_OBJECT (self, "%s %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      direction == GST_PAD_SINK ? "sink" : "src", caps, ret);
  return ret;
}

static gboolean
gst_mm_frame_sample_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);
  GstStructure *s = gst_caps_get_structure (incaps, 0);

  if (!gst_structure_get_fraction (s, "framerate", &self->in_fps_n,
          &self->in_fps_d) || self->in_fps_n <= 0 || self->in_fps_d <= 0) {
    self->in_fps_n = 0;
    self->in_fps_d = 1;
  }

  GST_DEBUG_OBJECT (self, "in %" GST_PTR_FORMAT " out %" GST_PTR_FORMAT,
      incaps, outcaps);
  return TRUE;
}

/* The same segment sent again (position aside, which the base class
 * updates as buffers flow) does not restart the schedule. */
static gboolean
gst_mm_frame_sample_same_segment (const GstSegment * a, const GstSegment * b)
{
  GstSegment tmp = *b;

  tmp.position = a->position;
  return gst_segment_is_equal (a, &tmp);
}

static gboolean
gst_mm_frame_sample_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      GST_DEBUG_OBJECT (self, "flush: restarting the schedule");
      gst_mm_frame_sample_reset_schedule (self);
      break;
    case GST_EVENT_SEGMENT:{
      const GstSegment *segment;

      /* the base class stores the segment when chaining up */
      gst_event_parse_segment (event, &segment);
      if (!trans->have_segment ||
          !gst_mm_frame_sample_same_segment (segment, &trans->segment)) {
        GST_DEBUG_OBJECT (self, "new segment %" GST_SEGMENT_FORMAT
            ": restarting the schedule", segment);
        gst_mm_frame_sample_reset_schedule (self);
      }
      break;
    }
    default:
      break;
  }

  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* Replaces the base class's in/out buffer handling; see the comment at the
 * instance struct. The element stays in passthrough. */
static GstFlowReturn
gst_mm_frame_sample_generate_output (GstBaseTransform * trans,
    GstBuffer ** outbuf)
{
  GstMmFrameSample *self = GST_MM_FRAME_SAMPLE (trans);
  GstMmFrameSampleSettings s;
  GstMmFrameSampleInfo info;
  GstBuffer *buf = trans->queued_buf;
  GstMmSampleMeta *meta;
  gboolean sampled;

  trans->queued_buf = NULL;
  *outbuf = NULL;
  if (buf == NULL)
    return GST_FLOW_OK;

  GST_OBJECT_LOCK (self);
  s.fps_n = self->prop_fps_n;
  s.fps_d = self->prop_fps_d;
  s.snippet_frames = self->prop_snippet_frames;
  s.max_frames = self->prop_max_frames;
  s.mode = self->prop_mode;
  GST_OBJECT_UNLOCK (self);

  sampled = gst_mm_frame_sample_select (self, buf, &s, &info);

  if (!sampled && s.mode == GST_MM_FRAME_SAMPLE_MODE_DROP) {
    GST_LOG_OBJECT (self, "dropping %" GST_PTR_FORMAT, buf);
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }

  meta = gst_buffer_get_mm_sample_meta (buf);
  if (sampled || meta != NULL) {
    buf = gst_buffer_make_writable (buf);
    /* a meta from an upstream sampler does not describe our selection */
    while ((meta = gst_buffer_get_mm_sample_meta (buf)) != NULL)
      gst_buffer_remove_meta (buf, (GstMeta *) meta);
  }

  if (sampled) {
    GST_LOG_OBJECT (self, "sample %" G_GUINT64_FORMAT " frame %u/%u at %"
        GST_TIME_FORMAT ": %" GST_PTR_FORMAT, info.sample_index,
        info.frame_index, info.snippet_frames,
        GST_TIME_ARGS (info.running_time), buf);
    gst_buffer_add_mm_sample_meta (buf, info.sample_index, info.frame_index,
        info.snippet_frames, info.running_time);
  }

  *outbuf = buf;
  return GST_FLOW_OK;
}

static void
gst_mm_frame_sample_end_snippet (GstMmFrameSample * self)
{
  self->snippet_pos = 0;
  self->snippet_len = 0;
}

/* After a flush or a new segment: the next frame is sampled and anchors the
 * schedule, and timestamp estimation starts over. */
static void
gst_mm_frame_sample_reset_schedule (GstMmFrameSample * self)
{
  self->need_anchor = TRUE;
  self->anchor = GST_CLOCK_TIME_NONE;
  self->next_time = GST_CLOCK_TIME_NONE;
  self->last_sample_time = GST_CLOCK_TIME_NONE;
  self->sched_fps_n = 0;
  self->sched_fps_d = 1;
  gst_mm_frame_sample_end_snippet (self);

  self->prev_pts = GST_CLOCK_TIME_NONE;
  self->prev_duration = GST_CLOCK_TIME_NONE;
  self->count_base = GST_CLOCK_TIME_NONE;
  self->count_frames = 0;
}

/* PTS of @buf, or an estimate when it has none (see the doc block). */
static GstClockTime
gst_mm_frame_sample_frame_pts (GstMmFrameSample * self, GstBuffer * buf)
{
  const GstSegment *seg = &GST_BASE_TRANSFORM (self)->segment;
  gboolean reverse = seg->format == GST_FORMAT_TIME && seg->rate < 0.0;
  GstClockTime pts = GST_BUFFER_PTS (buf);
  GstClockTime step;

  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    self->count_base = pts;
    self->count_frames = 0;
  } else if (GST_CLOCK_TIME_IS_VALID (self->prev_pts) &&
      GST_CLOCK_TIME_IS_VALID (self->prev_duration)) {
    /* previous PTS + previous duration */
    if (reverse)
      pts = self->prev_pts > self->prev_duration ?
          self->prev_pts - self->prev_duration : 0;
    else
      pts = self->prev_pts + self->prev_duration;
    self->count_base = pts;
    self->count_frames = 0;
  } else {
    /* count frames since the last known PTS at the caps (or assumed) rate */
    gint n = self->in_fps_n > 0 ? self->in_fps_n : ASSUMED_FPS_N;
    gint d = self->in_fps_n > 0 ? self->in_fps_d : ASSUMED_FPS_D;

    if (!GST_CLOCK_TIME_IS_VALID (self->count_base)) {
      self->count_base = 0;
      if (seg->format == GST_FORMAT_TIME) {
        if (reverse && GST_CLOCK_TIME_IS_VALID (seg->stop))
          self->count_base = seg->stop;
        else if (GST_CLOCK_TIME_IS_VALID (seg->start))
          self->count_base = seg->start;
      }
      self->count_frames = 0;
    } else {
      self->count_frames++;
    }
    /* rounded up: sources floor their PTS, so last PTS + ceil (count / rate)
     * lands on the exact frame time (at most 1 ns late), never before it */
    step = gst_util_uint64_scale_ceil (self->count_frames, GST_SECOND * d, n);
    if (reverse)
      pts = self->count_base > step ? self->count_base - step : 0;
    else
      pts = self->count_base + step;
  }

  self->prev_pts = pts;
  self->prev_duration = GST_BUFFER_DURATION (buf);
  return pts;
}

/* Decides whether @buf is sampled and fills @info when it is. */
static gboolean
gst_mm_frame_sample_select (GstMmFrameSample * self, GstBuffer * buf,
    const GstMmFrameSampleSettings * s, GstMmFrameSampleInfo * info)
{
  const GstSegment *seg = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime pts, rt;
  guint64 period_num = GST_SECOND * (guint64) s->fps_d;
  guint64 slot;
  gboolean capped;

  pts = gst_mm_frame_sample_frame_pts (self, buf);
  if (seg->format == GST_FORMAT_TIME)
    rt = gst_segment_to_running_time (seg, GST_FORMAT_TIME, pts);
  else
    rt = pts;

  if (!GST_CLOCK_TIME_IS_VALID (rt) ||
      GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_GAP)) {
    GST_LOG_OBJECT (self, "outside the segment or GAP, not sampled");
    return FALSE;
  }

  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT))
    gst_mm_frame_sample_end_snippet (self);

  if (GST_CLOCK_TIME_IS_VALID (self->last_sample_time) &&
      rt < self->last_sample_time) {
    GST_DEBUG_OBJECT (self, "running time %" GST_TIME_FORMAT " went back "
        "before the last sample point, re-anchoring", GST_TIME_ARGS (rt));
    self->need_anchor = TRUE;
    gst_mm_frame_sample_end_snippet (self);
  }

  /* fps changed: keep the pending sample point, new period from there */
  if (s->fps_n != self->sched_fps_n || s->fps_d != self->sched_fps_d) {
    if (!self->need_anchor)
      self->anchor = self->next_time;
    self->sched_fps_n = s->fps_n;
    self->sched_fps_d = s->fps_d;
  }

  capped = s->max_frames > 0 && self->n_sampled >= s->max_frames;

  if (self->snippet_pos < self->snippet_len && !capped) {
    info->sample_index = self->snippet_index;
    info->frame_index = self->snippet_pos++;
    info->snippet_frames = self->snippet_len;
    info->running_time = self->snippet_time;
    self->n_sampled++;
    return TRUE;
  }
  gst_mm_frame_sample_end_snippet (self);

  if (!self->need_anchor && rt < self->next_time)
    return FALSE;

  if (self->need_anchor) {
    self->anchor = rt;
    self->need_anchor = FALSE;
  }
  /* next sample point: the first one strictly after rt, exact in integers:
   * slot = floor ((rt - anchor) * fps), time = anchor + ceil (slot / fps) */
  slot = gst_util_uint64_scale (rt - self->anchor, s->fps_n, period_num) + 1;
  self->next_time = self->anchor +
      gst_util_uint64_scale_ceil (slot, period_num, s->fps_n);
  self->last_sample_time = rt;

  if (capped) {
    GST_LOG_OBJECT (self, "max-frames reached, not sampled");
    return FALSE;
  }

  self->snippet_index = self->n_samples++;
  self->snippet_len = s->snippet_frames;
  self->snippet_pos = 1;
  self->snippet_time = rt;
  self->n_sampled++;

  info->sample_index = self->snippet_index;
  info->frame_index = 0;
  info->snippet_frames = self->snippet_len;
  info->running_time = rt;
  return TRUE;
}
