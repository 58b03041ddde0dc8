/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-mmvisionenc
 * @title: mmvisionenc
 * @short_description: encode video frames into LLM-ready tokens
 * @see_also: #GstMmTokensMeta, #GstMmSampleMeta, mmframesample
 *
 * mmvisionenc runs a vision encoder — a SigLIP or CLIP tower and its
 * connector, loaded from a GGUF mmproj file or a Hugging Face model folder
 * (#GstMmVisionEnc:model) — on video frames, on an OpenCL device
 * (#GstMmVisionEnc:device), and attaches the tokens to each encoded frame
 * as a #GstMmTokensMeta (modality video, the frame's PTS and duration, the
 * model's id). The tokens stay on the device; consumers on the same device
 * use them without a copy. Frames themselves are never modified, dropped or
 * reordered.
 *
 * ## Which frames are encoded
 *
 * Once a frame carrying a #GstMmSampleMeta (put there by mmframesample) has
 * been seen in the stream, only frames carrying that meta are encoded.
 * Until then, that is in a stream without a sampler, every frame is. A new
 * stream (STREAM_START) or a restart of the element forgets what was seen.
 * Buffers flagged GAP are never encoded.
 *
 * ## Order, threads and latency
 *
 * Encoding runs on a worker thread, so the streaming thread does not wait
 * for the encoder. A frame chosen for encoding stays inside the element
 * until its tokens are attached; frames and serialized events that arrive
 * after it wait behind it, so the output order is exactly the input order
 * and every token meta sits on the frame it describes. Data with nothing
 * waiting in front of it goes straight through. Frames that were waiting
 * are pushed by an output thread as soon as the frames in front of them are
 * done, so the encoder never waits for downstream.
 *
 * The LATENCY query adds (#GstMmVisionEnc:max-pending + 1) times the
 * slowest of the last 16 encodes to upstream's minimum and maximum latency:
 * the longest a frame can be held. When encoding gets slower than what was
 * last reported, the element posts a LATENCY message.
 *
 * ## When the encoder falls behind
 *
 * At most #GstMmVisionEnc:max-pending frames wait for the encoder (the one
 * being encoded not counted). When a frame to encode finds that many
 * waiting, #GstMmVisionEnc:leaky decides:
 *
 * * leaky (`leaky=yes`, or `auto` with a live upstream, the default for
 *   cameras and network streams): the oldest waiting frame is released
 *   without tokens and counted as dropped; it still goes downstream, in
 *   order. The streaming thread never waits for the encoder.
 * * blocking (`leaky=no`, or `auto` with a non-live upstream such as a
 *   file): the streaming thread waits until the encoder takes a frame, so
 *   every chosen frame gets its tokens.
 *
 * Whether upstream is live is asked (LATENCY query) at the first frame of
 * each stream.
 *
 * ## Events and queries
 *
 * EOS waits behind the frames inside the element: they are all encoded
 * (never dropped), then EOS goes on. FLUSH_START drops the frames inside
 * the element and unblocks every wait; sticky events it drops (caps, tags)
 * are sent again after FLUSH_STOP. Caps may change at any time: each frame
 * is encoded with the caps it arrived with. Serialized queries (allocation,
 * drain) wait until every frame inside has been encoded and pushed.
 *
 * ## Image splitting
 *
 * Models whose image processor cuts an image into several views (Idefics3
 * / SmolVLM: tiles of the tower's size plus a downscaled global image;
 * Idefics2: four quarters plus the whole image; MiniCPM-V: up to 9 slices
 * of the image resized to patch multiples plus an overview, each view at
 * its own aspect) encode every view, and the #GstMmTokensMeta carries the
 * layout: `n-views`, `tokens-per-view`, `rows` × `cols` tiles and the
 * index of the global view (the tiles come first, row by row). mmllmsink
 * splices such tokens with the model's markers (`<row_1_col_1>` ...
 * `<global-img>`; MiniCPM-V's `<image>` overview then `<slice>`s). #GstMmVisionEnc:image-splitting follows the model's
 * processor by default; a tile costs as much as a whole frame without
 * splitting, so live pipelines may bound the work per frame with
 * #GstMmVisionEnc:max-tiles.
 *
 * ## Sharing a device with mmllmsink
 *
 * Elements on one device share its OpenCL queue. An encode goes a layer at
 * a time (about two layers queued at once), and while an mmllmsink on the
 * same device generates a caption the encoder waits between layers (2 s at
 * most per layer), so the caption's prefill and tokens do not queue behind
 * whole frames: the caption comes first, the frame a little later (a live
 * stream drops its oldest frame if the encoder falls behind). Measured by
 * `bench/bench-caption`.
 *
 * ## Colour
 *
 * YUV frames (I420, NV12) are converted with the matrix and range of their
 * caps colorimetry (BT.601, BT.709, BT.2020, SMPTE 240M, FCC; limited or
 * full range), as GStreamer fills them in when caps leave them out.
 *
 * ## Statistics
 *
 * Every #GstMmVisionEnc:stats-interval seconds, and after EOS, the element
 * posts an element message `mm-encoder-stats` with the fields `frames-in`,
 * `sampled` (chosen for encoding), `encoded`, `dropped` (#guint64),
 * `pending` (#guint, waiting or being encoded), `ms-per-frame-avg`,
 * `ms-per-frame-last` (#gdouble, wall time of an encode) and `model-id`
 * (#gchararray). Counters run from the start of the element.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=300 ! mmframesample fps=1 ! mmvisionenc model=mmproj-siglip.gguf ! fakesink
 * ]| Encodes one frame per second of video, every one of them (file-like
 * source, blocking).
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! mmframesample mode=mark fps=0.5 ! mmvisionenc model=mmproj.gguf stats-interval=1 ! queue ! autovideosink
 * ]| A camera: the display keeps its frame rate, a frame every 2 s gets
 * tokens, and the bus shows `mm-encoder-stats` every second.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/video/video.h>

#include "gstmmvisionenc.h"
#include "gst/gstmmsamplemeta.h"
#include "gst/gstmmtokensmeta.h"
#include "mm-enc-queue.h"
#include "mm-vision.h"

GST_DEBUG_CATEGORY_STATIC (gst_mm_vision_enc_debug);
#define GST_CAT_DEFAULT gst_mm_vision_enc_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_MAX_PENDING,
  PROP_STATS_INTERVAL,
  PROP_LEAKY,
  PROP_IMAGE_SPLITTING,
  PROP_MAX_TILES,
};

#define DEFAULT_MODEL NULL
#define DEFAULT_DEVICE "auto"
#define DEFAULT_MAX_PENDING 2
#define DEFAULT_STATS_INTERVAL 5.0
#define DEFAULT_LEAKY GST_MM_VISION_ENC_LEAKY_AUTO
#define DEFAULT_IMAGE_SPLITTING GST_MM_VISION_ENC_SPLIT_AUTO
#define DEFAULT_MAX_TILES 0

#define MAX_MAX_PENDING 1000
#define MAX_MAX_TILES 1024
#define MAX_STATS_INTERVAL 86400.0
#define VIDEO_FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, " \
    "ARGB, ABGR, I420, NV12, GRAY8 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

/* Why GstBaseTransform: it brings caps and accept-caps handling, allocation
 * and latency forwarding, QoS and segment tracking for a passthrough
 * element. The element replaces submit_input_buffer() and
 * generate_output(): frames go into the output queue (mm-enc-queue.h)
 * instead of being pushed by the base class, one job (the caps the frame
 * came with) per frame to encode.  Serialized events take the same queue
 * and reach the base class's sink_event() when they leave it, so caps and
 * segments follow the frames they belong to. */
struct _GstMmVisionEnc
{
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *prop_model;
  gchar *prop_device;
  guint prop_max_pending;
  gdouble prop_stats_interval;
  GstMmVisionEncLeaky prop_leaky;
  GstMmVisionEncSplit prop_image_splitting;
  guint prop_max_tiles;

  /* made in start(), freed in stop(); the model is used by the encode
   * thread only */
  MmEngine *engine;
  MmVisionModel *model;
  gboolean model_splits;        /* the model's processor splits by default */
  gchar *model_id;

  /* output queue and worker threads */
  MmEncQueue *queue;

  /* streaming thread only */
  GstVideoInfo in_info;
  gboolean have_info;
  gboolean seen_sample_meta;
  gboolean live_known;
  gboolean upstream_live;
};

static void gst_mm_vision_enc_finalize (GObject * object);
static void gst_mm_vision_enc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_mm_vision_enc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static GstStateChangeReturn gst_mm_vision_enc_change_state (GstElement *
    element, GstStateChange transition);
static gboolean gst_mm_vision_enc_start (GstBaseTransform * trans);
static gboolean gst_mm_vision_enc_stop (GstBaseTransform * trans);
static gboolean gst_mm_vision_enc_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static gboolean gst_mm_vision_enc_query (GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);
static GstFlowReturn gst_mm_vision_enc_submit_input_buffer (GstBaseTransform
    * trans, gboolean is_discont, GstBuffer * buf);
static GstFlowReturn gst_mm_vision_enc_generate_output (GstBaseTransform *
    trans, GstBuffer ** outbuf);

static gboolean gst_mm_vision_enc_wants (GstMmVisionEnc * self,
    GstBuffer * buf);
static gboolean gst_mm_vision_enc_upstream_is_live (GstMmVisionEnc * self);
static gboolean gst_mm_vision_enc_encode (GstElement * element,
    GstBuffer ** buf, gpointer job, GError ** error);
static gboolean gst_mm_vision_enc_forward_event (GstElement * element,
    GstEvent * event);
static GstStructure *gst_mm_vision_enc_stats (GstElement * element,
    const MmEncQueueStats * st);

static const MmEncQueueFuncs queue_funcs = {
  .encode = gst_mm_vision_enc_encode,
  .forward_event = gst_mm_vision_enc_forward_event,
  .stats = gst_mm_vision_enc_stats,
  .job_free = g_free,
};

GType
gst_mm_vision_enc_leaky_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_VISION_ENC_LEAKY_AUTO,
        "Leaky when upstream is live, blocking otherwise", "auto"},
    {GST_MM_VISION_ENC_LEAKY_YES,
        "Release the oldest waiting frame without tokens", "yes"},
    {GST_MM_VISION_ENC_LEAKY_NO,
        "Wait for the encoder (every chosen frame gets tokens)", "no"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmVisionEncLeaky", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

GType
gst_mm_vision_enc_split_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_VISION_ENC_SPLIT_AUTO,
        "As the model's image processor does", "auto"},
    {GST_MM_VISION_ENC_SPLIT_ON, "Tiles + a global view", "on"},
    {GST_MM_VISION_ENC_SPLIT_OFF, "One view per image", "off"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmVisionEncSplit", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define gst_mm_vision_enc_parent_class parent_class
G_DEFINE_TYPE (GstMmVisionEnc, gst_mm_vision_enc, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (mmvisionenc, "mmvisionenc", GST_RANK_NONE,
    GST_TYPE_MM_VISION_ENC);

static void
gst_mm_vision_enc_class_init (GstMmVisionEncClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_mm_vision_enc_debug, "mmvisionenc", 0,
      "mm vision encoder");

  gobject_class->finalize = gst_mm_vision_enc_finalize;
  gobject_class->set_property = gst_mm_vision_enc_set_property;
  gobject_class->get_property = gst_mm_vision_enc_get_property;

  /**
   * GstMmVisionEnc:model:
   *
   * The vision encoder: a GGUF mmproj file as written by llama.cpp, or a
   * Hugging Face model folder (config.json + *.safetensors). Loaded when
   * the element starts; a missing or unreadable model is an error naming
   * the path.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Vision encoder to load: a GGUF mmproj file or a Hugging Face "
          "model folder", DEFAULT_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstMmVisionEnc:device:
   *
   * The OpenCL device to run on. Elements naming the same device share one
   * context, so tokens pass between them without a copy.
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "OpenCL device: auto (MM_DEVICE, else the first GPU, else the "
          "first device), cpu, gpu, an index into the device list, or a "
          "case-insensitive substring of \"platform: device\"",
          DEFAULT_DEVICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstMmVisionEnc:max-pending:
   *
   * How many frames may wait for the encoder, the one being encoded not
   * counted. What happens when a frame finds it full is decided by
   * #GstMmVisionEnc:leaky. The element holds frames for at most
   * (max-pending + 1) encode times.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_PENDING,
      g_param_spec_uint ("max-pending", "Max pending",
          "Frames that may wait for the encoder (the one being encoded not "
          "counted); when full, see leaky", 1, MAX_MAX_PENDING,
          DEFAULT_MAX_PENDING,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmVisionEnc:stats-interval:
   *
   * Seconds between `mm-encoder-stats` element messages; 0 turns them off
   * (including the one after EOS).
   */
  g_object_class_install_property (gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_double ("stats-interval", "Stats interval",
          "Seconds between mm-encoder-stats element messages (0 = none)",
          0.0, MAX_STATS_INTERVAL, DEFAULT_STATS_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmVisionEnc:leaky:
   *
   * What to do when a frame to encode finds #GstMmVisionEnc:max-pending
   * frames waiting: release the oldest without tokens (never wait for the
   * encoder), or wait for room (every chosen frame gets tokens). `auto`
   * is leaky with a live upstream and blocking otherwise.
   */
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "When max-pending frames wait for the encoder: yes = release the "
          "oldest without tokens (counted as dropped), no = wait for room, "
          "auto = yes with a live upstream, no otherwise",
          GST_TYPE_MM_VISION_ENC_LEAKY, DEFAULT_LEAKY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmVisionEnc:image-splitting:
   *
   * Whether images are split into several views (tiles + a global view)
   * for models whose processor does that (Idefics3 / SmolVLM, Idefics2).
   * `auto` does what the model's processor config says (Hugging Face
   * folders: do_image_splitting; GGUF idefics3 mmproj files: split, tiles
   * of clip.vision.image_size from an image resized to
   * clip.vision.preproc_image_size on its longest edge, as llama.cpp).
   * Takes effect at the next frame.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_IMAGE_SPLITTING,
      g_param_spec_enum ("image-splitting", "Image splitting",
          "Split images into tiles + a global view (models whose processor "
          "splits: Idefics3 / SmolVLM, Idefics2): auto = as the model's "
          "processor config", GST_TYPE_MM_VISION_ENC_SPLIT,
          DEFAULT_IMAGE_SPLITTING,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmVisionEnc:max-tiles:
   *
   * With image splitting (Idefics3 / SmolVLM, MiniCPM-V), at most this
   * many tiles per frame; 0: as many as the processor makes. Each tile
   * costs one encoder forward: a live pipeline can bound its per-frame
   * work here. A frame that would give more tiles is processed as the
   * model's processor would with a smaller longest-edge size (Idefics3:
   * the largest multiple of the tile size that gives at most max-tiles
   * tiles) or max_slice_nums (MiniCPM-V), so tokens and prompt stay what
   * the model was trained on. Takes effect at the next frame.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_TILES,
      g_param_spec_uint ("max-tiles", "Max tiles",
          "With image splitting, at most this many tiles per frame (the "
          "longest-edge size is lowered to fit); 0 = no limit", 0,
          MAX_MAX_TILES, DEFAULT_MAX_TILES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Vision encoder", "Filter/Analyzer/Video",
      "Encodes video frames into LLM-ready tokens with a SigLIP/CLIP vision "
      "tower and connector on OpenCL, attached as GstMmTokensMeta",
      "mm developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_mm_vision_enc_change_state);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_mm_vision_enc_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_mm_vision_enc_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_mm_vision_enc_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_mm_vision_enc_query);
  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_mm_vision_enc_submit_input_buffer);
  trans_class->generate_output =
      GST_DEBUG_FUNCPTR (gst_mm_vision_enc_generate_output);

  gst_type_mark_as_plugin_api (GST_TYPE_MM_VISION_ENC_LEAKY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_MM_VISION_ENC_SPLIT, 0);
}

static void
gst_mm_vision_enc_init (GstMmVisionEnc * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);

  self->prop_model = g_strdup (DEFAULT_MODEL);
  self->prop_device = g_strdup (DEFAULT_DEVICE);
  self->prop_max_pending = DEFAULT_MAX_PENDING;
  self->prop_stats_interval = DEFAULT_STATS_INTERVAL;
  self->prop_leaky = DEFAULT_LEAKY;
  self->prop_image_splitting = DEFAULT_IMAGE_SPLITTING;
  self->prop_max_tiles = DEFAULT_MAX_TILES;

  self->queue = mm_enc_queue_new (GST_ELEMENT (self),
      GST_BASE_TRANSFORM_SRC_PAD (trans), &queue_funcs, "mmvenc");
  mm_enc_queue_set_max_pending (self->queue, DEFAULT_MAX_PENDING);
  mm_enc_queue_set_stats_interval (self->queue, DEFAULT_STATS_INTERVAL);
}

static void
gst_mm_vision_enc_finalize (GObject * object)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (object);

  g_free (self->prop_model);
  g_free (self->prop_device);
  mm_enc_queue_free (self->queue);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mm_vision_enc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->prop_model);
      self->prop_model = g_value_dup_string (value);
      break;
    case PROP_DEVICE:
      g_free (self->prop_device);
      self->prop_device = g_value_dup_string (value);
      break;
    case PROP_MAX_PENDING:
      self->prop_max_pending = g_value_get_uint (value);
      break;
    case PROP_STATS_INTERVAL:
      self->prop_stats_interval = g_value_get_double (value);
      break;
    case PROP_LEAKY:
      self->prop_leaky = g_value_get_enum (value);
      break;
    case PROP_IMAGE_SPLITTING:
      self->prop_image_splitting = g_value_get_enum (value);
      break;
    case PROP_MAX_TILES:
      self->prop_max_tiles = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* the queue's lock is never taken under the object lock */
  if (prop_id == PROP_MAX_PENDING)
    mm_enc_queue_set_max_pending (self->queue, g_value_get_uint (value));
  else if (prop_id == PROP_STATS_INTERVAL)
    mm_enc_queue_set_stats_interval (self->queue, g_value_get_double (value));
}

static void
gst_mm_vision_enc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->prop_model);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->prop_device);
      break;
    case PROP_MAX_PENDING:
      g_value_set_uint (value, self->prop_max_pending);
      break;
    case PROP_STATS_INTERVAL:
      g_value_set_double (value, self->prop_stats_interval);
      break;
    case PROP_LEAKY:
      g_value_set_enum (value, self->prop_leaky);
      break;
    case PROP_IMAGE_SPLITTING:
      g_value_set_enum (value, self->prop_image_splitting);
      break;
    case PROP_MAX_TILES:
      g_value_set_uint (value, self->prop_max_tiles);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
gst_mm_vision_enc_change_state (GstElement * element, GstStateChange transition)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (element);

  /* Unblock a streaming thread waiting for the encoder or for a drain
   * before the base class waits for it to leave. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    mm_enc_queue_set_flushing (self->queue);

  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

static gboolean
gst_mm_vision_enc_start (GstBaseTransform * trans)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (trans);
  g_autofree gchar *path = NULL;
  g_autofree gchar *device = NULL;
  g_autoptr (GError) err = NULL;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->prop_model);
  device = g_strdup (self->prop_device);
  GST_OBJECT_UNLOCK (self);

  if (path == NULL || *path == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No vision model given: set the model property."),
        ("model is a GGUF mmproj file or a Hugging Face model folder"));
    return FALSE;
  }
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Could not load vision model \"%s\": no such file or folder.", path),
        (NULL));
    return FALSE;
  }

  self->engine = mm_engine_get (device, &err);
  if (self->engine == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Could not load vision model \"%s\": no OpenCL device \"%s\": %s",
            path, device ? device : "auto", err->message), (NULL));
    return FALSE;
  }

  self->model = mm_vision_model_load (self->engine, path, &err);
  if (self->model == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load vision model \"%s\": %s", path, err->message),
        ("device: %s", mm_engine_device_name (self->engine)));
    g_clear_pointer (&self->engine, mm_engine_unref);
    return FALSE;
  }
  self->model_splits = mm_vision_model_get_splitting (self->model);
  self->model_id = g_strdup (mm_vision_model_id (self->model));
  GST_INFO_OBJECT (self, "loaded %s (%d tokens × %d) on %s", self->model_id,
      mm_vision_model_n_tokens (self->model),
      mm_vision_model_dim (self->model), mm_engine_device_name (self->engine));

  self->seen_sample_meta = FALSE;
  self->live_known = FALSE;
  mm_enc_queue_start (self->queue);
  return TRUE;
}

static gboolean
gst_mm_vision_enc_stop (GstBaseTransform * trans)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (trans);

  mm_enc_queue_stop (self->queue);
  g_clear_pointer (&self->model, mm_vision_model_free);
  g_clear_pointer (&self->engine, mm_engine_unref);
  g_clear_pointer (&self->model_id, g_free);
  return TRUE;
}

static gboolean
gst_mm_vision_enc_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (trans);
  gboolean caps_failed, ret;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:{
      gboolean ret = mm_enc_queue_flush_stop (self->queue, event,
          &caps_failed);

      if (caps_failed)
        self->have_info = FALSE;
      return ret;
    }
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstVideoInfo info;

      gst_event_parse_caps (event, &caps);
      if (!gst_video_info_from_caps (&info, caps)) {
        GST_WARNING_OBJECT (self, "refusing caps %" GST_PTR_FORMAT, caps);
        gst_event_unref (event);
        return FALSE;
      }
      self->in_info = info;
      self->have_info = TRUE;
      break;
    }
    case GST_EVENT_STREAM_START:
      self->seen_sample_meta = FALSE;
      self->live_known = FALSE;
      break;
    default:
      break;
  }

  ret = mm_enc_queue_sink_event (self->queue,
      GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event, trans, event,
      &caps_failed);
  if (caps_failed)
    self->have_info = FALSE;
  return ret;
}

static gboolean
gst_mm_vision_enc_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  MmEncQueueParentQuery parent = GST_BASE_TRANSFORM_CLASS
      (parent_class)->query;

  return mm_enc_queue_transform_query (GST_MM_VISION_ENC (trans)->queue, parent, trans,
      direction, query);
}

/* The streaming function: queue the frame (WAITING when it is to be
 * encoded), then push whatever is ready at the head of the queue. */
static GstFlowReturn
gst_mm_vision_enc_submit_input_buffer (GstBaseTransform * trans,
    gboolean is_discont, GstBuffer * buf)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (trans);
  GstMmVisionEncLeaky prop_leaky;
  GQueue jobs = G_QUEUE_INIT;
  gboolean leaky;

  if (!self->have_info) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("received a buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  GST_OBJECT_LOCK (self);
  prop_leaky = self->prop_leaky;
  GST_OBJECT_UNLOCK (self);

  leaky = prop_leaky == GST_MM_VISION_ENC_LEAKY_YES ||
      (prop_leaky == GST_MM_VISION_ENC_LEAKY_AUTO &&
      gst_mm_vision_enc_upstream_is_live (self));
  /* the job: the caps the frame came with */
  if (gst_mm_vision_enc_wants (self, buf))
    g_queue_push_tail (&jobs, g_memdup2 (&self->in_info,
            sizeof (GstVideoInfo)));
  return mm_enc_queue_submit (self->queue, buf, &jobs, leaky, FALSE);
}

static GstFlowReturn
gst_mm_vision_enc_generate_output (GstBaseTransform * trans,
    GstBuffer ** outbuf)
{
  /* frames leave through push_ready(), never through the base class */
  *outbuf = NULL;
  return GST_FLOW_OK;
}

/* Encode a frame that carries the sample flag, or every frame of a stream
 * where no flag has been seen yet; never a GAP buffer. */
static gboolean
gst_mm_vision_enc_wants (GstMmVisionEnc * self, GstBuffer * buf)
{
  if (gst_buffer_get_mm_sample_meta (buf) != NULL) {
    if (!self->seen_sample_meta)
      GST_INFO_OBJECT (self, "sampled frames seen: encoding only those");
    self->seen_sample_meta = TRUE;
  } else if (self->seen_sample_meta) {
    return FALSE;
  }
  return !GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_GAP);
}

static gboolean
gst_mm_vision_enc_upstream_is_live (GstMmVisionEnc * self)
{
  GstQuery *query;

  if (self->live_known)
    return self->upstream_live;

  query = gst_query_new_latency ();
  self->upstream_live = FALSE;
  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    gst_query_parse_latency (query, &self->upstream_live, NULL, NULL);
  gst_query_unref (query);
  self->live_known = TRUE;

  GST_INFO_OBJECT (self, "upstream is %slive", self->upstream_live ? "" :
      "not ");
  return self->upstream_live;
}

/* Hands a serialized event to the base class (caps negotiation, segment
 * tracking, forwarding). */
static gboolean
gst_mm_vision_enc_forward_event (GstElement * element, GstEvent * event)
{
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event
      (GST_BASE_TRANSFORM (element), event);
}

static GstMmTokens *gst_mm_vision_enc_run_model (GstMmVisionEnc * self,
    GstBuffer * buf, const GstVideoInfo * info, MmVisionLayout * layout,
    GError ** error);

/* The encode thread: runs the model on a frame (@job: its GstVideoInfo)
 * and attaches the tokens. */
static gboolean
gst_mm_vision_enc_encode (GstElement * element, GstBuffer ** buf,
    gpointer job, GError ** error)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (element);
  GstClockTime pts = GST_BUFFER_PTS (*buf);
  GstMmTokens *tokens;
  GstMmTokensMeta *meta;
  MmVisionLayout layout = { 0, };

  tokens = gst_mm_vision_enc_run_model (self, *buf, job, &layout, error);
  if (tokens == NULL) {
    g_prefix_error (error, "Vision encoder failed on the frame at %"
        GST_TIME_FORMAT ": ", GST_TIME_ARGS (pts));
    return FALSE;
  }
  *buf = gst_buffer_make_writable (*buf);
  meta = gst_buffer_add_mm_tokens_meta (*buf, GST_MM_MODALITY_VIDEO, tokens,
      pts, GST_BUFFER_DURATION (*buf), self->model_id);
  /* several views of the image (tiles + global): say how they lie */
  if (meta && layout.n_views > 1
      && !gst_mm_tokens_meta_set_layout (meta, layout.rows, layout.cols,
          layout.n_views, layout.global_view))
    GST_WARNING_OBJECT (self, "encoder layout %d views, %d x %d tiles, "
        "global %d does not fit %u tokens", layout.n_views, layout.rows,
        layout.cols, layout.global_view, meta->n_tokens);
  gst_mm_tokens_unref (tokens);
  GST_LOG_OBJECT (self, "encoded %" GST_TIME_FORMAT, GST_TIME_ARGS (pts));
  return TRUE;
}

static MmPixelFormat
gst_mm_vision_enc_pixel_format (GstVideoFormat format)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      return MM_PIXEL_RGB;
    case GST_VIDEO_FORMAT_BGR:
      return MM_PIXEL_BGR;
    case GST_VIDEO_FORMAT_RGBA:
      return MM_PIXEL_RGBA;
    case GST_VIDEO_FORMAT_BGRA:
      return MM_PIXEL_BGRA;
    case GST_VIDEO_FORMAT_RGBx:
      return MM_PIXEL_RGBX;
    case GST_VIDEO_FORMAT_BGRx:
      return MM_PIXEL_BGRX;
    case GST_VIDEO_FORMAT_xRGB:
      return MM_PIXEL_XRGB;
    case GST_VIDEO_FORMAT_xBGR:
      return MM_PIXEL_XBGR;
    case GST_VIDEO_FORMAT_ARGB:
      return MM_PIXEL_ARGB;
    case GST_VIDEO_FORMAT_ABGR:
      return MM_PIXEL_ABGR;
    case GST_VIDEO_FORMAT_I420:
      return MM_PIXEL_I420;
    case GST_VIDEO_FORMAT_NV12:
      return MM_PIXEL_NV12;
    case GST_VIDEO_FORMAT_GRAY8:
    default:                   /* the pad templates allow nothing else */
      return MM_PIXEL_GRAY8;
  }
}

/* The Y'CbCr matrix of the caps (GStreamer fills in a default when they
 * have none: BT.601 for SD, BT.709 above). */
static MmColorMatrix
gst_mm_vision_enc_color_matrix (GstVideoColorMatrix matrix)
{
  switch (matrix) {
    case GST_VIDEO_COLOR_MATRIX_BT709:
      return MM_COLOR_MATRIX_BT709;
    case GST_VIDEO_COLOR_MATRIX_BT2020:
      return MM_COLOR_MATRIX_BT2020;
    case GST_VIDEO_COLOR_MATRIX_SMPTE240M:
      return MM_COLOR_MATRIX_SMPTE240M;
    case GST_VIDEO_COLOR_MATRIX_FCC:
      return MM_COLOR_MATRIX_FCC;
    case GST_VIDEO_COLOR_MATRIX_BT601:
    default:
      return MM_COLOR_MATRIX_BT601;
  }
}

/* Applies image-splitting and max-tiles; encode thread. */
static void
gst_mm_vision_enc_apply_splitting (GstMmVisionEnc * self)
{
  GstMmVisionEncSplit split;
  guint max_tiles;

  GST_OBJECT_LOCK (self);
  split = self->prop_image_splitting;
  max_tiles = self->prop_max_tiles;
  GST_OBJECT_UNLOCK (self);
  mm_vision_model_set_splitting (self->model,
      split == GST_MM_VISION_ENC_SPLIT_AUTO ? self->model_splits :
      split == GST_MM_VISION_ENC_SPLIT_ON, max_tiles);
}

/* Maps the frame read-only, encodes it and wraps the device tensor. */
static GstMmTokens *
gst_mm_vision_enc_run_model (GstMmVisionEnc * self, GstBuffer * buf,
    const GstVideoInfo * info, MmVisionLayout * layout, GError ** error)
{
  GstVideoFrame frame;
  MmImage img = { 0, };
  MmTensor *t;
  GstMmTokens *tokens;
  guint i;

  if (!gst_video_frame_map (&frame, info, buf, GST_MAP_READ)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "could not map the frame (%" G_GSIZE_FORMAT " bytes) as %s %dx%d",
        gst_buffer_get_size (buf),
        gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)),
        GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info));
    return NULL;
  }
  img.format = gst_mm_vision_enc_pixel_format (GST_VIDEO_FRAME_FORMAT (&frame));
  img.width = GST_VIDEO_FRAME_WIDTH (&frame);
  img.height = GST_VIDEO_FRAME_HEIGHT (&frame);
  for (i = 0; i < GST_VIDEO_FRAME_N_PLANES (&frame) && i < 3; i++) {
    img.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (&frame, i);
    img.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, i);
  }
  img.matrix = gst_mm_vision_enc_color_matrix (info->colorimetry.matrix);
  img.full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;

  gst_mm_vision_enc_apply_splitting (self);
  t = mm_vision_model_encode_views (self->model, &img, layout, error);
  gst_video_frame_unmap (&frame);
  if (t == NULL)
    return NULL;

  if (t->dtype != MM_DTYPE_F32 || t->n_dims != 2 || t->shape[0] <= 0
      || t->shape[1] <= 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "encoder returned a %s tensor %s, expected F32 [n_tokens, dim]",
        mm_dtype_name (t->dtype), mm_tensor_shape_str (t));
    mm_tensor_free (t);
    return NULL;
  }
  /* the payload retains the buffer; freeing the tensor drops ours */
  tokens = gst_mm_tokens_new_device (t->buf, t->offset,
      mm_engine_queue (self->engine), (guint) t->shape[0],
      (guint) t->shape[1], GST_MM_TOKENS_DTYPE_F32, NULL, NULL);
  mm_tensor_free (t);
  return tokens;
}

/* Called with the queue's lock held. */
static GstStructure *
gst_mm_vision_enc_stats (GstElement * element, const MmEncQueueStats * st)
{
  GstMmVisionEnc *self = GST_MM_VISION_ENC (element);

  return gst_structure_new ("mm-encoder-stats",
      "frames-in", G_TYPE_UINT64, st->buffers_in,
      "sampled", G_TYPE_UINT64, st->jobs_in,
      "encoded", G_TYPE_UINT64, st->encoded,
      "dropped", G_TYPE_UINT64, st->dropped,
      "pending", G_TYPE_UINT, st->pending,
      "ms-per-frame-avg", G_TYPE_DOUBLE, st->ms_avg,
      "ms-per-frame-last", G_TYPE_DOUBLE, st->ms_last,
      "model-id", G_TYPE_STRING, self->model_id, NULL);
}
