/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-mmaudioenc
 * @title: mmaudioenc
 * @short_description: encode audio windows into LLM-ready tokens
 * @see_also: #GstMmTokensMeta, mmvisionenc
 *
 * mmaudioenc cuts the audio into windows, computes Whisper's log-mel
 * features and runs a Whisper encoder (#GstMmAudioEnc:model: a Hugging
 * Face Whisper folder, or a GGUF audio mmproj file with the connector to
 * an LLM) on an OpenCL device (#GstMmAudioEnc:device). The output of each
 * window (the encoder's, or the connector's: tokens of the LLM's hidden
 * size, for mmllmsink) is attached as a #GstMmTokensMeta (modality audio,
 * the window's PTS and duration, the model's id) to the buffer that closes
 * the window. Audio passes through unchanged, in order, nothing dropped.
 *
 * ## Input
 *
 * Interleaved F32LE or S16LE, any number of channels (averaged to mono),
 * any rate: the element resamples to the model's rate (16 kHz) itself with
 * a Kaiser-windowed sinc filter (about -80 dB stopband, flat to 0.94 of
 * the 8 kHz Nyquist frequency), so no audioresample is needed in front.
 *
 * ## Windows
 *
 * Window k of a run of contiguous audio covers
 * [start + k × hop, start + k × hop + window) of the 16 kHz stream, where
 * start is the first sample of the run. #GstMmAudioEnc:window is at most
 * the model's window (30 s for released Whisper models); shorter windows
 * are zero-padded to the model's window, as Hugging Face's feature
 * extractor pads. #GstMmAudioEnc:hop below the window gives overlapping
 * windows (captions every hop seconds, each with window seconds of
 * context); above it, the audio between windows is skipped. Each window's
 * tokens go to the buffer during which its last sample arrived, with the
 * window's PTS and duration (not the buffer's): one buffer can carry
 * several metas.
 *
 * A run ends at a discontinuity (a DISCONT buffer, or a PTS more than
 * 40 ms away from where the samples so far lead), a caps change, a new
 * segment, and EOS. Audio of the run that no window has covered yet is
 * then encoded as a partial window (at least 20 ms; zero-padded) attached
 * to the run's last buffer. To be able to do so the element always keeps
 * the newest buffer until the next one arrives (or EOS): one buffer of
 * extra latency, included in the reported latency. Timestamps come from
 * the first buffer of a run and the sample count (no drift); buffers
 * without PTS count from the segment start.
 *
 * ## Threads, latency, falling behind
 *
 * As mmvisionenc: encoding runs on a worker thread; a buffer that closes
 * windows waits inside the element until its tokens are attached, and the
 * buffers behind it wait with it, so output order is input order. At most
 * #GstMmAudioEnc:max-pending windows wait for the encoder; when a window
 * finds them full, #GstMmAudioEnc:leaky releases the oldest waiting
 * buffer's windows without tokens (counted as dropped) or blocks the
 * streaming thread. The LATENCY query adds (max-pending + 1) times the
 * slowest of the last 16 window encodes, plus the longest buffer seen (the
 * held buffer); a LATENCY message is posted when encoding gets slower.
 * Sharing a device with an mmllmsink that transcribes or captions, the
 * encoder holds back between layers while the sink generates, as
 * mmvisionenc does.
 *
 * ## Statistics
 *
 * Every #GstMmAudioEnc:stats-interval seconds, and after EOS, an element
 * message `mm-encoder-stats` with `buffers-in`, `windows` (closed),
 * `encoded`, `dropped` (#guint64), `pending` (#guint), `audio-seconds`,
 * `ms-per-window-avg`, `ms-per-window-last` (#gdouble, wall time of one
 * window's features + encoder) and `model-id` (#gchararray).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! wavparse ! audioconvert ! mmaudioenc model=whisper-tiny window=10 hop=5 ! fakesink
 * ]| 10 s windows every 5 s over a file (blocking: every window encoded).
 * |[
 * gst-launch-1.0 -m autoaudiosrc ! audioconvert ! mmaudioenc model=whisper-base window=5 stats-interval=2 ! fakesink
 * ]| A microphone: a 5 s window every 5 s, stats on the bus.
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! wavparse ! audioconvert ! mmaudioenc model=mmproj-ultravox-v0_5-llama-3_2-1b-f16.gguf ! mmllmsink model=Llama-3.2-1B-Instruct-Q8_0.gguf prompt="What is said?" print=true
 * ]| Ultravox's audio tokens answered by its LLM.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/audio/audio.h>

#include "gstmmaudioenc.h"
#include "gst/gstmmtokensmeta.h"
#include "mm-enc-queue.h"
#include "mm-whisper.h"
#include "mm-resample.h"

GST_DEBUG_CATEGORY_STATIC (gst_mm_audio_enc_debug);
#define GST_CAT_DEFAULT gst_mm_audio_enc_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_WINDOW,
  PROP_HOP,
  PROP_MAX_PENDING,
  PROP_STATS_INTERVAL,
  PROP_LEAKY,
};

#define DEFAULT_MODEL NULL
#define DEFAULT_DEVICE "auto"
#define DEFAULT_WINDOW 0.0
#define DEFAULT_HOP 0.0
#define DEFAULT_MAX_PENDING 2
#define DEFAULT_STATS_INTERVAL 5.0
#define DEFAULT_LEAKY GST_MM_AUDIO_ENC_LEAKY_AUTO

#define MAX_SECONDS 3600.0
#define MAX_MAX_PENDING 1000
#define MAX_STATS_INTERVAL 86400.0
/* PTS farther than this from the sample count starts a new run */
#define DISCONT_TOLERANCE (40 * GST_MSECOND)
/* shortest partial window worth encoding: one encoder token */
#define MIN_PARTIAL_SECONDS 0.02

#define AUDIO_CAPS "audio/x-raw, format = (string) { F32LE, S16LE }, " \
    "layout = (string) interleaved, rate = (int) [ 1, MAX ], " \
    "channels = (int) [ 1, MAX ]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (AUDIO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (AUDIO_CAPS));

/* One window to encode: mono samples at the model's rate. */
typedef struct
{
  gfloat *samples;
  gsize n;
  GstClockTime pts, duration;
} GstMmAudioEncWindow;

/* Why GstBaseTransform, and the queue: as mmvisionenc (the element
 * replaces submit_input_buffer() and generate_output(); buffers and
 * serialized events leave the output queue of mm-enc-queue.h in order).
 * The jobs of a buffer are the windows it closes; the newest buffer is
 * held back, so that the partial window at the end of a run can still be
 * attached to it. */
struct _GstMmAudioEnc
{
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *prop_model;
  gchar *prop_device;
  gdouble prop_window;
  gdouble prop_hop;
  guint prop_max_pending;
  gdouble prop_stats_interval;
  GstMmAudioEncLeaky prop_leaky;

  /* made in start(), freed in stop(); model and graph are used by the
   * encode thread only */
  MmEngine *engine;
  MmWhisper *model;
  MmWhisperEncoder *encoder;
  gchar *model_id;
  gint rate;                    /* the model's sampling rate */
  gint64 win_n, hop_n;          /* window and hop in samples at that rate */

  /* streaming thread only: input format and the current run */
  GstAudioInfo info;
  gboolean have_info;
  gboolean live_known;
  gboolean upstream_live;
  MmResampler *resampler;
  gfloat *mono;                 /* scratch: one buffer downmixed */
  gsize mono_size;
  GArray *audio;                /* gfloat at the model's rate, from audio_base */
  gboolean in_run;
  GstClockTime run_pts;         /* time of the run's first sample */
  gint64 run_in;                /* input samples since the run started */
  gint64 audio_base, n_out;     /* output sample indices within the run */
  gint64 next_win;              /* start of the next window to close */
  gint64 covered;               /* end of the last window closed */

  /* output queue and worker threads */
  MmEncQueue *queue;
  gdouble audio_seconds;        /* under the object lock */
};

static void gst_mm_audio_enc_finalize (GObject * object);
static void gst_mm_audio_enc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_mm_audio_enc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static GstStateChangeReturn gst_mm_audio_enc_change_state (GstElement *
    element, GstStateChange transition);
static gboolean gst_mm_audio_enc_start (GstBaseTransform * trans);
static gboolean gst_mm_audio_enc_stop (GstBaseTransform * trans);
static gboolean gst_mm_audio_enc_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static gboolean gst_mm_audio_enc_query (GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);
static GstFlowReturn gst_mm_audio_enc_submit_input_buffer (GstBaseTransform
    * trans, gboolean is_discont, GstBuffer * buf);
static GstFlowReturn gst_mm_audio_enc_generate_output (GstBaseTransform *
    trans, GstBuffer ** outbuf);

static gboolean gst_mm_audio_enc_set_info (GstMmAudioEnc * self,
    GstCaps * caps);
static gboolean gst_mm_audio_enc_downmix (GstMmAudioEnc * self,
    GstBuffer * buf, gsize * n_frames);
static gboolean gst_mm_audio_enc_is_discont (GstMmAudioEnc * self,
    GstBuffer * buf);
static void gst_mm_audio_enc_start_run (GstMmAudioEnc * self, GstClockTime pts);
static void gst_mm_audio_enc_end_run (GstMmAudioEnc * self);
static void gst_mm_audio_enc_cut_windows (GstMmAudioEnc * self,
    GQueue * windows);
static GstMmAudioEncWindow *gst_mm_audio_enc_window_new (GstMmAudioEnc *
    self, gint64 start, gint64 n);
static void gst_mm_audio_enc_window_free (GstMmAudioEncWindow * w);
static gboolean gst_mm_audio_enc_upstream_is_live (GstMmAudioEnc * self);
static gboolean gst_mm_audio_enc_encode (GstElement * element,
    GstBuffer ** buf, gpointer job, GError ** error);
static gboolean gst_mm_audio_enc_forward_event (GstElement * element,
    GstEvent * event);
static GstStructure *gst_mm_audio_enc_stats (GstElement * element,
    const MmEncQueueStats * st);
static GstMmTokens *gst_mm_audio_enc_run_model (GstMmAudioEnc * self,
    const GstMmAudioEncWindow * w, GError ** error);

static const MmEncQueueFuncs queue_funcs = {
  .encode = gst_mm_audio_enc_encode,
  .forward_event = gst_mm_audio_enc_forward_event,
  .stats = gst_mm_audio_enc_stats,
  .job_free = (GDestroyNotify) gst_mm_audio_enc_window_free,
};

GType
gst_mm_audio_enc_leaky_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_AUDIO_ENC_LEAKY_AUTO,
        "Leaky when upstream is live, blocking otherwise", "auto"},
    {GST_MM_AUDIO_ENC_LEAKY_YES,
        "Release the oldest waiting window without tokens", "yes"},
    {GST_MM_AUDIO_ENC_LEAKY_NO,
        "Wait for the encoder (every window gets tokens)", "no"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmAudioEncLeaky", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define gst_mm_audio_enc_parent_class parent_class
G_DEFINE_TYPE (GstMmAudioEnc, gst_mm_audio_enc, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (mmaudioenc, "mmaudioenc", GST_RANK_NONE,
    GST_TYPE_MM_AUDIO_ENC);

static void
gst_mm_audio_enc_class_init (GstMmAudioEncClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_mm_audio_enc_debug, "mmaudioenc", 0,
      "mm audio encoder");

  gobject_class->finalize = gst_mm_audio_enc_finalize;
  gobject_class->set_property = gst_mm_audio_enc_set_property;
  gobject_class->get_property = gst_mm_audio_enc_get_property;

  /**
   * GstMmAudioEnc:model:
   *
   * The audio encoder: a Hugging Face Whisper folder (config.json,
   * model.safetensors, preprocessor_config.json; only the encoder is
   * loaded, tokens are its output), or a GGUF audio mmproj file as
   * llama.cpp's convert_hf_to_gguf.py --mmproj writes it (Whisper encoder +
   * connector of projector type ultravox, voxtral or qwen2a; tokens are of
   * the LLM's hidden size, a whole window of 2 x the encoder's positions x
   * 10 ms each, 30 s for released models). A missing or unreadable model
   * is an error naming the path (and for a GGUF file the key or tensor).
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Audio model to load: a Hugging Face Whisper folder, or a GGUF "
          "audio mmproj (ultravox, voxtral, qwen2a projectors)",
          DEFAULT_MODEL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstMmAudioEnc:device:
   *
   * The OpenCL device to run on. Elements naming the same device share one
   * context, so tokens pass between them without a copy.
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "OpenCL device: auto (MM_DEVICE, else the first GPU, else the "
          "first device), cpu, gpu, an index into the device list, or a "
          "case-insensitive substring of \"platform: device\"",
          DEFAULT_DEVICE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstMmAudioEnc:window:
   *
   * Seconds of audio per window, at most the model's window (30 s for
   * released Whisper models; checked when the element starts); 0 means
   * the model's window. Shorter windows are zero-padded for the encoder.
   */
  g_object_class_install_property (gobject_class, PROP_WINDOW,
      g_param_spec_double ("window", "Window",
          "Seconds of audio per window, at most the model's window "
          "(0 = the model's window)", 0.0, MAX_SECONDS, DEFAULT_WINDOW,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstMmAudioEnc:hop:
   *
   * Seconds from one window's start to the next; 0 means the window
   * (windows side by side). Less than the window overlaps them.
   */
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_double ("hop", "Hop",
          "Seconds between window starts (0 = the window: no overlap)", 0.0,
          MAX_SECONDS, DEFAULT_HOP, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
          | GST_PARAM_MUTABLE_READY));

  /**
   * GstMmAudioEnc:max-pending:
   *
   * How many windows may wait for the encoder, the one being encoded not
   * counted. What happens when a window finds it full is decided by
   * #GstMmAudioEnc:leaky.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_PENDING,
      g_param_spec_uint ("max-pending", "Max pending",
          "Windows that may wait for the encoder (the one being encoded not "
          "counted); when full, see leaky", 1, MAX_MAX_PENDING,
          DEFAULT_MAX_PENDING, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstMmAudioEnc:stats-interval:
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
   * GstMmAudioEnc:leaky:
   *
   * What to do when a window finds #GstMmAudioEnc:max-pending windows
   * waiting: release the oldest waiting buffer's windows without tokens
   * (never wait for the encoder), or wait for room. `auto` is leaky with a
   * live upstream and blocking otherwise.
   */
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "When max-pending windows wait for the encoder: yes = release the "
          "oldest without tokens (counted as dropped), no = wait for room, "
          "auto = yes with a live upstream, no otherwise",
          GST_TYPE_MM_AUDIO_ENC_LEAKY, DEFAULT_LEAKY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Audio encoder", "Filter/Analyzer/Audio",
      "Encodes audio windows into LLM-ready tokens with Whisper's log-mel "
      "features and encoder on OpenCL, attached as GstMmTokensMeta",
      "mm developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_mm_audio_enc_change_state);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_mm_audio_enc_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_mm_audio_enc_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_mm_audio_enc_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_mm_audio_enc_query);
  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_mm_audio_enc_submit_input_buffer);
  trans_class->generate_output =
      GST_DEBUG_FUNCPTR (gst_mm_audio_enc_generate_output);

  gst_type_mark_as_plugin_api (GST_TYPE_MM_AUDIO_ENC_LEAKY, 0);
}

static void
gst_mm_audio_enc_init (GstMmAudioEnc * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);

  self->prop_model = g_strdup (DEFAULT_MODEL);
  self->prop_device = g_strdup (DEFAULT_DEVICE);
  self->prop_window = DEFAULT_WINDOW;
  self->prop_hop = DEFAULT_HOP;
  self->prop_max_pending = DEFAULT_MAX_PENDING;
  self->prop_stats_interval = DEFAULT_STATS_INTERVAL;
  self->prop_leaky = DEFAULT_LEAKY;

  self->audio = g_array_new (FALSE, FALSE, sizeof (gfloat));
  self->queue = mm_enc_queue_new (GST_ELEMENT (self),
      GST_BASE_TRANSFORM_SRC_PAD (trans), &queue_funcs, "mmaenc");
  mm_enc_queue_set_max_pending (self->queue, DEFAULT_MAX_PENDING);
  mm_enc_queue_set_stats_interval (self->queue, DEFAULT_STATS_INTERVAL);
}

static void
gst_mm_audio_enc_finalize (GObject * object)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (object);

  g_free (self->prop_model);
  g_free (self->prop_device);
  mm_enc_queue_free (self->queue);
  g_array_unref (self->audio);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mm_audio_enc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (object);

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
    case PROP_WINDOW:
      self->prop_window = g_value_get_double (value);
      break;
    case PROP_HOP:
      self->prop_hop = g_value_get_double (value);
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
gst_mm_audio_enc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->prop_model);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->prop_device);
      break;
    case PROP_WINDOW:
      g_value_set_double (value, self->prop_window);
      break;
    case PROP_HOP:
      g_value_set_double (value, self->prop_hop);
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
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
gst_mm_audio_enc_change_state (GstElement * element, GstStateChange transition)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (element);

  /* Unblock a streaming thread waiting for the encoder or for a drain
   * before the base class waits for it to leave. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    mm_enc_queue_set_flushing (self->queue);

  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

/* Loads the model and checks window and hop against it. */
static gboolean
gst_mm_audio_enc_load (GstMmAudioEnc * self, const gchar * path,
    const gchar * device, gdouble window, gdouble hop)
{
  g_autoptr (GError) err = NULL;
  gdouble model_window;

  self->engine = mm_engine_get (device, &err);
  if (self->engine == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Could not load audio model \"%s\": no OpenCL device \"%s\": %s",
            path, device ? device : "auto", err->message), (NULL));
    return FALSE;
  }
  self->model = mm_whisper_load_encoder (self->engine, path, &err);
  if (self->model == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load audio model \"%s\": %s", path, err->message),
        ("device: %s", mm_engine_device_name (self->engine)));
    return FALSE;
  }
  self->rate = mm_whisper_sampling_rate (self->model);
  model_window = (gdouble) mm_whisper_n_samples (self->model) / self->rate;
  if (window <= 0)
    window = model_window;
  if (window > model_window + 1e-9) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("window of %g s is longer than the %g s the model \"%s\" takes.",
            window, model_window, path), (NULL));
    return FALSE;
  }
  if (hop <= 0)
    hop = window;
  self->win_n = MAX (1, (gint64) (window * self->rate + 0.5));
  self->hop_n = MAX (1, (gint64) (hop * self->rate + 0.5));
  self->encoder = mm_whisper_encoder_new (self->model, &err);
  if (self->encoder == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load audio model \"%s\": %s", path, err->message), (NULL));
    return FALSE;
  }
  self->model_id = g_strdup (mm_whisper_id (self->model));
  GST_INFO_OBJECT (self, "loaded %s (projector %s: %d tokens x %d per %g s) "
      "on %s; windows of %g s every %g s", self->model_id,
      mm_whisper_projector_name (mm_whisper_projector (self->model)),
      mm_whisper_n_output_tokens (self->model),
      mm_whisper_output_dim (self->model), model_window,
      mm_engine_device_name (self->engine), window, hop);
  return TRUE;
}

static gboolean
gst_mm_audio_enc_start (GstBaseTransform * trans)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (trans);
  g_autofree gchar *path = NULL;
  g_autofree gchar *device = NULL;
  gdouble window, hop;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->prop_model);
  device = g_strdup (self->prop_device);
  window = self->prop_window;
  hop = self->prop_hop;
  GST_OBJECT_UNLOCK (self);

  if (path == NULL || *path == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No audio model given: set the model property."),
        ("model is a Hugging Face Whisper folder or a GGUF audio mmproj"));
    return FALSE;
  }
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Could not load audio model \"%s\": no such file or folder.", path),
        (NULL));
    return FALSE;
  }
  if (!gst_mm_audio_enc_load (self, path, device, window, hop)) {
    gst_mm_audio_enc_stop (trans);
    return FALSE;
  }

  self->have_info = FALSE;
  self->live_known = FALSE;
  self->in_run = FALSE;

  GST_OBJECT_LOCK (self);
  self->audio_seconds = 0.0;
  GST_OBJECT_UNLOCK (self);
  mm_enc_queue_start (self->queue);
  return TRUE;
}

static gboolean
gst_mm_audio_enc_stop (GstBaseTransform * trans)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (trans);

  mm_enc_queue_stop (self->queue);
  g_clear_pointer (&self->resampler, mm_resampler_free);
  g_clear_pointer (&self->mono, g_free);
  self->mono_size = 0;
  g_array_set_size (self->audio, 0);
  self->in_run = FALSE;
  self->have_info = FALSE;
  g_clear_pointer (&self->encoder, mm_whisper_encoder_free);
  g_clear_pointer (&self->model, mm_whisper_free);
  g_clear_pointer (&self->engine, mm_engine_unref);
  g_clear_pointer (&self->model_id, g_free);
  return TRUE;
}

static gboolean
gst_mm_audio_enc_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (trans);
  gboolean caps_failed, ret;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:{
      gboolean ret;

      /* the audio before the flush is gone: the next buffer starts a run */
      self->in_run = FALSE;
      g_array_set_size (self->audio, 0);
      ret = mm_enc_queue_flush_stop (self->queue, event, &caps_failed);
      if (caps_failed)
        self->have_info = FALSE;
      return ret;
    }
    case GST_EVENT_CAPS:{
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      if (!gst_mm_audio_enc_set_info (self, caps)) {
        GST_WARNING_OBJECT (self, "refusing caps %" GST_PTR_FORMAT, caps);
        gst_event_unref (event);
        return FALSE;
      }
      break;
    }
    case GST_EVENT_SEGMENT:
    case GST_EVENT_EOS:
      /* the run ends: its uncovered audio goes to the held buffer */
      gst_mm_audio_enc_end_run (self);
      if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
        mm_enc_queue_release_held (self->queue);
      break;
    case GST_EVENT_STREAM_START:
      gst_mm_audio_enc_end_run (self);
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
gst_mm_audio_enc_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  MmEncQueueParentQuery parent = GST_BASE_TRANSFORM_CLASS
      (parent_class)->query;

  return mm_enc_queue_transform_query (GST_MM_AUDIO_ENC (trans)->queue, parent, trans,
      direction, query);
}

/* The streaming function: feed the buffer's audio to the current run, cut
 * the windows it closes, queue it (WAITING with those windows, else READY)
 * as the new held buffer, then push whatever is ready. */
static GstFlowReturn
gst_mm_audio_enc_submit_input_buffer (GstBaseTransform * trans,
    gboolean is_discont, GstBuffer * buf)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (trans);
  GstMmAudioEncLeaky prop_leaky;
  GQueue windows = G_QUEUE_INIT;
  GstClockTime duration;
  gsize n_frames;
  gboolean leaky;

  if (!self->have_info) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("received a buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!gst_mm_audio_enc_downmix (self, buf, &n_frames)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
        ("could not map a buffer of %" G_GSIZE_FORMAT " bytes",
            gst_buffer_get_size (buf)));
    return GST_FLOW_ERROR;
  }

  GST_OBJECT_LOCK (self);
  prop_leaky = self->prop_leaky;
  self->audio_seconds += (gdouble) n_frames / GST_AUDIO_INFO_RATE (&self->info);
  GST_OBJECT_UNLOCK (self);
  leaky = prop_leaky == GST_MM_AUDIO_ENC_LEAKY_YES ||
      (prop_leaky == GST_MM_AUDIO_ENC_LEAKY_AUTO &&
      gst_mm_audio_enc_upstream_is_live (self));

  /* a discontinuity ends the run with the previous (held) buffer */
  if (self->in_run && gst_mm_audio_enc_is_discont (self, buf))
    gst_mm_audio_enc_end_run (self);
  if (!self->in_run)
    gst_mm_audio_enc_start_run (self, GST_BUFFER_PTS (buf));
  self->run_in += n_frames;
  mm_resampler_push (self->resampler, self->mono, n_frames, self->audio);
  self->n_out = self->audio_base + self->audio->len;
  gst_mm_audio_enc_cut_windows (self, &windows);

  /* the held buffer adds its duration to the latency */
  if (GST_BUFFER_DURATION_IS_VALID (buf))
    duration = GST_BUFFER_DURATION (buf);
  else
    duration = gst_util_uint64_scale_int (n_frames, GST_SECOND,
        GST_AUDIO_INFO_RATE (&self->info));
  mm_enc_queue_add_latency (self->queue, duration);

  /* this buffer is held until the next */
  return mm_enc_queue_submit (self->queue, buf, &windows, leaky, TRUE);
}

static GstFlowReturn
gst_mm_audio_enc_generate_output (GstBaseTransform * trans, GstBuffer ** outbuf)
{
  /* buffers leave through push_ready(), never through the base class */
  *outbuf = NULL;
  return GST_FLOW_OK;
}

/* New caps: a change of rate, channels or format ends the run. */
static gboolean
gst_mm_audio_enc_set_info (GstMmAudioEnc * self, GstCaps * caps)
{
  GstAudioInfo info;

  if (!gst_audio_info_from_caps (&info, caps))
    return FALSE;
  if (self->have_info && gst_audio_info_is_equal (&info, &self->info))
    return TRUE;
  gst_mm_audio_enc_end_run (self);
  g_clear_pointer (&self->resampler, mm_resampler_free);
  self->resampler = mm_resampler_new (GST_AUDIO_INFO_RATE (&info), self->rate);
  self->info = info;
  self->have_info = TRUE;
  GST_INFO_OBJECT (self, "%s, %d channels at %d Hz (resampled to %d Hz)",
      GST_AUDIO_INFO_NAME (&info), GST_AUDIO_INFO_CHANNELS (&info),
      GST_AUDIO_INFO_RATE (&info), self->rate);
  return TRUE;
}

/* The buffer's frames averaged over channels, as floats in self->mono. */
static gboolean
gst_mm_audio_enc_downmix (GstMmAudioEnc * self, GstBuffer * buf,
    gsize * n_frames)
{
  GstMapInfo map;
  gint ch = GST_AUDIO_INFO_CHANNELS (&self->info);
  gboolean s16 = GST_AUDIO_INFO_FORMAT (&self->info) == GST_AUDIO_FORMAT_S16LE;
  gsize n, i;
  gint c;

  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return FALSE;
  n = map.size / GST_AUDIO_INFO_BPF (&self->info);
  if (n > self->mono_size) {
    self->mono = g_renew (gfloat, self->mono, n);
    self->mono_size = n;
  }
  for (i = 0; i < n; i++) {
    gfloat sum = 0.0f;

    for (c = 0; c < ch; c++) {
      if (s16)
        sum += GINT16_FROM_LE (((const gint16 *) map.data)[i * ch + c])
            / 32768.0f;
      else
        sum += GFLOAT_FROM_LE (((const gfloat *) map.data)[i * ch + c]);
    }
    self->mono[i] = sum / ch;
  }
  gst_buffer_unmap (buf, &map);
  *n_frames = n;
  return TRUE;
}

/* DISCONT flag, or a PTS too far from what the samples so far lead to. */
static gboolean
gst_mm_audio_enc_is_discont (GstMmAudioEnc * self, GstBuffer * buf)
{
  GstClockTime pts = GST_BUFFER_PTS (buf), expected;

  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT)) {
    GST_DEBUG_OBJECT (self, "DISCONT buffer at %" GST_TIME_FORMAT,
        GST_TIME_ARGS (pts));
    return TRUE;
  }
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return FALSE;
  expected = self->run_pts + gst_util_uint64_scale_int (self->run_in,
      GST_SECOND, GST_AUDIO_INFO_RATE (&self->info));
  if (pts + DISCONT_TOLERANCE < expected || pts > expected + DISCONT_TOLERANCE) {
    GST_DEBUG_OBJECT (self, "timestamp jump: %" GST_TIME_FORMAT " where %"
        GST_TIME_FORMAT " was expected", GST_TIME_ARGS (pts),
        GST_TIME_ARGS (expected));
    return TRUE;
  }
  return FALSE;
}

static void
gst_mm_audio_enc_start_run (GstMmAudioEnc * self, GstClockTime pts)
{
  GstSegment *seg = &GST_BASE_TRANSFORM (self)->segment;

  if (!GST_CLOCK_TIME_IS_VALID (pts))
    pts = seg->format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (seg->start)
        ? seg->start : 0;
  self->in_run = TRUE;
  self->run_pts = pts;
  self->run_in = 0;
  self->audio_base = self->n_out = 0;
  self->next_win = self->covered = 0;
  g_array_set_size (self->audio, 0);
  mm_resampler_reset (self->resampler);
}

/* Ends the current run: the resampler's tail, then the audio no window has
 * covered as a partial window on the held buffer. */
static void
gst_mm_audio_enc_end_run (GstMmAudioEnc * self)
{
  GstMmAudioEncWindow *w = NULL;
  gint64 start, min_partial;

  if (!self->in_run)
    return;
  self->in_run = FALSE;
  mm_resampler_flush (self->resampler, self->audio);
  self->n_out = self->audio_base + self->audio->len;
  start = self->next_win;
  min_partial = (gint64) (MIN_PARTIAL_SECONDS * self->rate);
  if (self->n_out - MAX (self->covered, start) >= min_partial)
    w = gst_mm_audio_enc_window_new (self, start, self->n_out - start);
  g_array_set_size (self->audio, 0);
  if (w == NULL)
    return;

  if (!mm_enc_queue_add_job (self->queue, w))
    GST_DEBUG_OBJECT (self, "no buffer left for the partial window");
}

/* Windows of the run that the audio so far completes. */
static void
gst_mm_audio_enc_cut_windows (GstMmAudioEnc * self, GQueue * windows)
{
  gint64 drop;

  while (self->next_win + self->win_n <= self->n_out) {
    g_queue_push_tail (windows, gst_mm_audio_enc_window_new (self,
            self->next_win, self->win_n));
    self->covered = self->next_win + self->win_n;
    self->next_win += self->hop_n;
  }
  /* nothing before the next window's start is needed again */
  drop = MIN (self->next_win, self->n_out) - self->audio_base;
  if (drop > 0) {
    g_array_remove_range (self->audio, 0, drop);
    self->audio_base += drop;
  }
}

static GstMmAudioEncWindow *
gst_mm_audio_enc_window_new (GstMmAudioEnc * self, gint64 start, gint64 n)
{
  GstMmAudioEncWindow *w = g_new0 (GstMmAudioEncWindow, 1);

  w->n = n;
  w->samples = g_memdup2 (&g_array_index (self->audio, gfloat,
          start - self->audio_base), n * sizeof (gfloat));
  w->pts = self->run_pts + gst_util_uint64_scale_int (start, GST_SECOND,
      self->rate);
  w->duration = self->run_pts + gst_util_uint64_scale_int (start + n,
      GST_SECOND, self->rate) - w->pts;
  return w;
}

static void
gst_mm_audio_enc_window_free (GstMmAudioEncWindow * w)
{
  g_free (w->samples);
  g_free (w);
}

static gboolean
gst_mm_audio_enc_upstream_is_live (GstMmAudioEnc * self)
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
gst_mm_audio_enc_forward_event (GstElement * element, GstEvent * event)
{
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event
      (GST_BASE_TRANSFORM (element), event);
}

/* The encode thread: features + encoder of one window (@job), tokens
 * attached to the buffer with the window's PTS span. */
static gboolean
gst_mm_audio_enc_encode (GstElement * element, GstBuffer ** buf,
    gpointer job, GError ** error)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (element);
  GstMmAudioEncWindow *w = job;
  GstMmTokens *tokens;

  tokens = gst_mm_audio_enc_run_model (self, w, error);
  if (tokens == NULL) {
    g_prefix_error (error, "Audio encoder failed on the window at %"
        GST_TIME_FORMAT ": ", GST_TIME_ARGS (w->pts));
    return FALSE;
  }
  *buf = gst_buffer_make_writable (*buf);
  gst_buffer_add_mm_tokens_meta (*buf, GST_MM_MODALITY_AUDIO, tokens,
      w->pts, w->duration, self->model_id);
  gst_mm_tokens_unref (tokens);
  GST_LOG_OBJECT (self, "window %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT
      " encoded", GST_TIME_ARGS (w->pts), GST_TIME_ARGS (w->duration));
  return TRUE;
}

/* Features + encoder of one window, written into a device buffer of its
 * own (one allocation per window) that the payload owns. */
static GstMmTokens *
gst_mm_audio_enc_run_model (GstMmAudioEnc * self,
    const GstMmAudioEncWindow * w, GError ** error)
{
  gint64 shape[2] = { mm_whisper_n_output_tokens (self->model),
    mm_whisper_output_dim (self->model)
  };
  MmTensor *out;
  GstMmTokens *tokens;

  out = mm_tensor_new (self->engine, MM_DTYPE_F32, 2, shape, "audio tokens",
      error);
  if (out == NULL)
    return NULL;
  if (!mm_whisper_encoder_run (self->encoder, w->samples, w->n, out, error)) {
    mm_tensor_free (out);
    return NULL;
  }
  /* the payload retains the buffer; freeing the tensor drops ours */
  tokens = gst_mm_tokens_new_device (out->buf, out->offset,
      mm_engine_queue (self->engine), (guint) shape[0], (guint) shape[1],
      GST_MM_TOKENS_DTYPE_F32, NULL, NULL);
  mm_tensor_free (out);
  return tokens;
}

/* Called with the queue's lock held (taken before the object lock). */
static GstStructure *
gst_mm_audio_enc_stats (GstElement * element, const MmEncQueueStats * st)
{
  GstMmAudioEnc *self = GST_MM_AUDIO_ENC (element);
  gdouble seconds;

  GST_OBJECT_LOCK (self);
  seconds = self->audio_seconds;
  GST_OBJECT_UNLOCK (self);
  return gst_structure_new ("mm-encoder-stats",
      "buffers-in", G_TYPE_UINT64, st->buffers_in,
      "windows", G_TYPE_UINT64, st->jobs_in,
      "encoded", G_TYPE_UINT64, st->encoded,
      "dropped", G_TYPE_UINT64, st->dropped,
      "pending", G_TYPE_UINT, st->pending,
      "audio-seconds", G_TYPE_DOUBLE, seconds,
      "ms-per-window-avg", G_TYPE_DOUBLE, st->ms_avg,
      "ms-per-window-last", G_TYPE_DOUBLE, st->ms_last,
      "model-id", G_TYPE_STRING, self->model_id, NULL);
}
