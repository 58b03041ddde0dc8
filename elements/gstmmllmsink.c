/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-mmllmsink
 * @title: mmllmsink
 * @short_description: caption or question-answer a live stream with an
 *     LLM, or transcribe its speech with Whisper
 * @see_also: mmvisionenc, mmaudioenc, #GstMmTokensMeta, #GstMmCaptionMeta
 *
 * mmllmsink collects the tokens that mmvisionenc and mmaudioenc attach to
 * video frames and audio buffers (#GstMmTokensMeta), keeps the most recent
 * ones in a rolling context and runs a Llama-family LLM over them with a
 * prompt. Each result is a caption (or an answer, when the prompt is a
 * question) for a span of the stream.
 *
 * With a Hugging Face Whisper folder as #GstMmLlmSink:model, the element
 * transcribes speech instead (see below).
 *
 * ## Pads and context
 *
 * Request pads `video_%u` (video/x-raw) and `audio_%u` (audio/x-raw) take
 * streams that carry #GstMmTokensMeta; buffers without it pass through
 * unused. Every meta becomes one sample of the context, ordered by running
 * time. #GstMmLlmSink:context-tokens bounds the media tokens the context
 * holds: when a new sample exceeds it, the oldest samples are evicted. The
 * LLM sees the samples of the context in order, then the prompt; samples
 * keep their identity from one request to the next, so the LLM reuses its
 * KV cache for the part of the context that did not change. When the
 * whole prompt (template, media and text) would not leave room for
 * #GstMmLlmSink:max-tokens in the LLM's own context, the oldest samples are
 * left out of that request too.
 *
 * A request is made for every new sample (#GstMmLlmSink:interval=0) or
 * whenever #GstMmLlmSink:interval seconds of running time have arrived
 * since the last one. Requests go to a worker thread through a queue of at
 * most #GstMmLlmSink:max-pending entries. When it is full and the element
 * is leaky (`leaky=yes`, or `auto` with a live upstream, the default for
 * cameras and network streams), the oldest pending request is dropped (and
 * counted in #GstMmLlmSink:dropped; its span joins the next request), so the
 * streaming thread never waits for the LLM. Otherwise (`leaky=no`, or
 * `auto` with a file or another non-live upstream) the streaming thread
 * waits for room, so every span is captioned; this is the same rule as
 * mmvisionenc's. Whether upstream is live is asked (LATENCY query) at the
 * first sample of each stream.
 *
 * ## Results
 *
 * Each caption records the PTS span it is about: from the end of the
 * previous caption's span (or the first sample) to the end of the newest
 * sample it saw, so consecutive captions tile the stream; its latency, from
 * the arrival of its newest sample to the result; and the prompt and token
 * counts. Captions reach the application as:
 *
 * - an element message `mm-caption` on the bus, with fields `text`,
 *   `prompt` (strings), `start`, `end` (#GstClockTime PTS), `latency`
 *   (#GstClockTime, nanoseconds), `prompt-tokens`, `generated-tokens`,
 *   `reused-tokens` (int), `model` (string), `prefill-ms` and `decode-ms`
 *   (double);
 * - the #GstMmLlmSink::caption signal (text, start, end), emitted from the
 *   worker thread;
 * - the file #GstMmLlmSink:location, as JSON Lines, WebVTT or SRT
 *   (#GstMmLlmSink:format, by default from the file extension), written
 *   and flushed to the disk after every caption so that nothing already
 *   written is lost when the process dies; cue times are the caption's
 *   PTS span (the media timeline; for a stream played from its start
 *   this is also its running time);
 * - the video stream itself, when #GstMmLlmSink:video-sink is set: frames
 *   from the first video pad continue into that sink carrying a
 *   #GstMmCaptionMeta of the current caption, and with
 *   #GstMmLlmSink:overlay the caption drawn on the picture;
 * - standard output, with #GstMmLlmSink:print.
 *
 * ## Structure
 *
 * mmllmsink is a #GstBin and acts as a sink. Each request pad is a ghost
 * pad; the element reads the metas as buffers pass through it, and the
 * buffers end in an internal fakesink, which gives the pad preroll
 * (#GstMmLlmSink:async), clock synchronisation (#GstMmLlmSink:sync), EOS
 * and latency handling of a regular sink; the element adds no latency to
 * the stream (captions carry their own). The first video pad feeds #GstMmLlmSink:video-sink instead
 * when that is set; with #GstMmLlmSink:overlay its frames go through
 * `videoconvert ! textoverlay` (gst-plugins-base) first. Set video-sink and
 * overlay in the NULL or READY state.
 *
 * ## Speech transcription (Whisper models)
 *
 * When #GstMmLlmSink:model is a Hugging Face Whisper folder (config.json
 * with `model_type` "whisper", the decoder weights, tokenizer.json and
 * generation_config.json, e.g. openai/whisper-tiny), the tokens that
 * mmaudioenc made with the same Whisper are transcribed by Whisper's
 * decoder (greedy, with the logit rules of generation_config.json as
 * transformers' generate applies them), one window at a time, in order;
 * the device buffer of the tokens is read directly when it lives on the
 * same OpenCL device, else their host copy. The tokens must be the
 * encoder output of that Whisper (token count = its encoder's output
 * length, dimension = its d_model): anything else is an element error
 * naming both models and both shapes (tokens that fit but come from an
 * encoder of another name get a warning, once). Video pads cannot be
 * used with a Whisper model (an error at start). #GstMmLlmSink:prompt,
 * #GstMmLlmSink:system-prompt and the sampling properties do not apply
 * (a prompt change is ignored); #GstMmLlmSink:interval and
 * #GstMmLlmSink:context-tokens neither: every window is transcribed once.
 * #GstMmLlmSink:language, #GstMmLlmSink:task (transcribe or translate
 * into English) and #GstMmLlmSink:timestamps choose how;
 * #GstMmLlmSink:max-tokens, when set, bounds the tokens of a window.
 *
 * Overlapping windows (mmaudioenc hop < window) are merged into one
 * running transcript, so that nothing is repeated and words cut by a
 * window's edge are taken from the next window, which hears them whole.
 * With timestamps, each window's segments are placed on the stream's
 * timeline (window start + segment times); segments already committed are
 * skipped, a segment that reaches the window's end is held back until the
 * next window has transcribed that audio again (its words that repeat
 * what was committed are dropped), and EOS commits what is still held.
 * Without usable timestamps, windows are joined by matching their words
 * with the end of the transcript so far. The exact rule is written in
 * elements/mm-transcript-merge.h. Without overlap (hop = window) words at
 * window edges stay cut.
 *
 * Each window that commits new text gives one result, through the same
 * outputs as captions: the `mm-caption` message (prompt NULL; its span is
 * that of the new text; `prompt-tokens` counts the window's audio tokens
 * and the decoder's prompt, `generated-tokens` the decoded tokens,
 * timestamps included, `prefill-ms` the cross-attention set-up and
 * `decode-ms` the decoding), plus `task`, `language` (#gchararray, the
 * language token used, NULL for English-only models) and `segments` (a
 * #GstValueArray of `segment` structures with `start`, `end` (PTS) and
 * `text`); the #GstMmLlmSink::caption signal; #GstMmLlmSink:location
 * (WebVTT and SRT: one cue per segment, timed by the segment's absolute
 * timestamps; JSON Lines: one line per result with its `segments`); and
 * #GstMmLlmSink:print (one line per segment). The text held back at EOS
 * comes as a last result with no token counts. Its latency is counted
 * from the arrival of the window that committed it.
 *
 * ## Changing the prompt while playing
 *
 * Set #GstMmLlmSink:prompt, or send a custom event whose structure is named
 * `mm-prompt` with a string field `prompt` (and optionally
 * `system-prompt`). A change makes a request over the current context right
 * away; the next caption answers the new prompt and records it.
 * Downstream events (serialized or out-of-band) can be sent into a sink
 * pad, or pushed by an upstream element; upstream events can be sent to
 * the pipeline, which hands them to its sinks:
 * |[<!-- language="C" -->
 * GstStructure *s = gst_structure_new ("mm-prompt",
 *     "prompt", G_TYPE_STRING, "Is anyone wearing a hat?", NULL);
 *
 * // anywhere: the pipeline passes upstream events to its sinks
 * gst_element_send_event (pipeline,
 *     gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM, s));
 * // or in stream order, from the source
 * // gst_element_send_event (appsrc,
 * //     gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s));
 * // or into a pad of mmllmsink, out of band
 * // gst_pad_send_event (pad,
 * //     gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_OOB, s));
 * ]|
 *
 * ## Errors, EOS and flushing
 *
 * A missing model, a model that cannot be loaded, or an unusable device is
 * an element error when the element starts, naming the model and the
 * device. Tokens whose dimension differs from the LLM's hidden size (an
 * encoder made for another LLM) are an element error naming the dimension,
 * the hidden size and both models. A prompt that alone does not fit the
 * LLM's context is refused: an element warning, once per prompt, and no
 * generation until the prompt changes; the stream goes on.
 *
 * On EOS (when every pad has received it), the element makes a last
 * request for the span not yet captioned (with an #GstMmLlmSink:interval),
 * waits up to #GstMmLlmSink:eos-timeout seconds for the pending generations
 * to finish, and only then lets EOS through. A flush drops the pending
 * requests, stops the running generation and clears the context.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=300 ! mmframesample fps=1 ! \
 *     mmvisionenc model=mmproj-SmolVLM-256M-Instruct-Q8_0.gguf ! \
 *     mmllmsink model=SmolVLM-256M-Instruct-Q8_0.gguf print=true \
 *     location=captions.jsonl
 * ]| Captions every sampled frame, prints them and writes JSON Lines.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     mmframesample fps=1 ! mmvisionenc model=mmproj.gguf ! \
 *     mmllmsink model=llm.gguf interval=4 sync=false \
 *     location=in.vtt
 * ]| Writes WebVTT subtitles, one cue per 4 seconds, as fast as it can
 * (a file is not live: nothing is dropped). pipelines/caption-file.sh
 * wraps this.
 * |[
 * gst-launch-1.0 autovideosrc ! videoconvert ! mmframesample mode=mark \
 *     fps=0.5 ! mmvisionenc model=mmproj.gguf ! mmllmsink model=llm.gguf \
 *     overlay=true video-sink="videoconvert ! autovideosink"
 * ]| Shows the camera with the current caption drawn on it
 * (pipelines/camera-live-overlay.sh).
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! wavparse ! audioconvert ! \
 *     audioresample ! mmaudioenc model=whisper-tiny window=10 hop=5 ! \
 *     mmllmsink model=whisper-tiny sync=false location=talk.vtt
 * ]| Writes WebVTT subtitles of a recording (pipelines/transcribe-file.sh).
 * |[
 * gst-launch-1.0 autoaudiosrc ! audioconvert ! audioresample ! \
 *     mmaudioenc model=whisper-tiny window=6 hop=3 ! \
 *     mmllmsink model=whisper-tiny language=en print=true
 * ]| Prints a live transcript of the microphone
 * (pipelines/transcribe-live.sh).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>

#include "gstmmllmsink.h"
#include "gstmmllmsink-private.h"
#include "gstmmllmsink-impl.h"
#include "mm-caption-chain.h"
#include "mm-caption-context.h"
#include "mm-caption-llm.h"
#include "mm-caption-whisper.h"
#include "mm-caption-writer.h"
#include "gst/gstmmcaptionmeta.h"
#include "gst/gstmmtokensmeta.h"

GST_DEBUG_CATEGORY (gst_mm_llm_sink_debug);
#define GST_CAT_DEFAULT gst_mm_llm_sink_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_PROMPT,
  PROP_SYSTEM_PROMPT,
  PROP_MAX_TOKENS,
  PROP_TEMPERATURE,
  PROP_TOP_K,
  PROP_TOP_P,
  PROP_REPETITION_PENALTY,
  PROP_SEED,
  PROP_LANGUAGE,
  PROP_TASK,
  PROP_TIMESTAMPS,
  PROP_CONTEXT_TOKENS,
  PROP_INTERVAL,
  PROP_MAX_PENDING,
  PROP_LEAKY,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_PRINT,
  PROP_VIDEO_SINK,
  PROP_OVERLAY,
  PROP_SYNC,
  PROP_ASYNC,
  PROP_EOS_TIMEOUT,
  PROP_CAPTIONS,
  PROP_DROPPED,
  PROP_LAST_CAPTION,
};

#define DEFAULT_MODEL NULL
#define DEFAULT_DEVICE NULL
#define DEFAULT_PROMPT "Describe what is happening."
#define DEFAULT_SYSTEM_PROMPT NULL
#define DEFAULT_MAX_TOKENS 64
#define DEFAULT_TEMPERATURE 0.0f
#define DEFAULT_TOP_K 40
#define DEFAULT_TOP_P 0.95f
#define DEFAULT_REPETITION_PENALTY 1.0f
#define DEFAULT_SEED 0
#define DEFAULT_LANGUAGE NULL
#define DEFAULT_TASK GST_MM_LLM_SINK_TASK_TRANSCRIBE
#define DEFAULT_TIMESTAMPS TRUE
#define DEFAULT_CONTEXT_TOKENS 2048
#define DEFAULT_INTERVAL 0.0
#define DEFAULT_MAX_PENDING 1
#define DEFAULT_LEAKY GST_MM_LLM_SINK_LEAKY_AUTO
#define DEFAULT_LOCATION NULL
#define DEFAULT_FORMAT GST_MM_LLM_SINK_FORMAT_AUTO
#define DEFAULT_PRINT FALSE
#define DEFAULT_OVERLAY FALSE
#define DEFAULT_SYNC TRUE
#define DEFAULT_ASYNC TRUE
#define DEFAULT_EOS_TIMEOUT 30

#define MAX_INTERVAL 3600.0
#define MAX_PENDING 64

guint gst_mm_llm_sink_signals[LAST_SIGNAL];

static GstStaticPadTemplate video_template =
GST_STATIC_PAD_TEMPLATE ("video_%u",
    GST_PAD_SINK,
    GST_PAD_REQUEST,
    GST_STATIC_CAPS ("video/x-raw(ANY)"));

static GstStaticPadTemplate audio_template =
GST_STATIC_PAD_TEMPLATE ("audio_%u",
    GST_PAD_SINK,
    GST_PAD_REQUEST,
    GST_STATIC_CAPS ("audio/x-raw(ANY)"));

/* Per request pad, attached as qdata. */
typedef struct
{
  GstMmModality modality;
  GstSegment segment;           /* streaming thread of the pad */
  gboolean eos;                 /* under self->lock */
  gboolean live_known;          /* upstream_live was asked */
  gboolean upstream_live;
  gboolean to_video_sink;       /* frames continue to video-sink */
  MmCaptionChain chain;         /* the elements behind the pad */
} PadData;

static void gst_mm_llm_sink_dispose (GObject * object);
static void gst_mm_llm_sink_finalize (GObject * object);
static void gst_mm_llm_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_mm_llm_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static GstStateChangeReturn gst_mm_llm_sink_change_state (GstElement *
    element, GstStateChange transition);
static GstPad *gst_mm_llm_sink_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * name, const GstCaps * caps);
static void gst_mm_llm_sink_release_pad (GstElement * element, GstPad * pad);
static gboolean gst_mm_llm_sink_send_event (GstElement * element,
    GstEvent * event);

static gboolean gst_mm_llm_sink_start (GstMmLlmSink * self);
static void gst_mm_llm_sink_stop (GstMmLlmSink * self);
static GstFlowReturn gst_mm_llm_sink_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buf);
static GstFlowReturn gst_mm_llm_sink_chain_list (GstPad * pad,
    GstObject * parent, GstBufferList * list);
static gboolean gst_mm_llm_sink_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);

static void gst_mm_llm_sink_wire_pad (GstMmLlmSink * self, GstPad * pad);
static void gst_mm_llm_sink_unwire_pad (GstMmLlmSink * self, GstPad * pad);
static void gst_mm_llm_sink_rewire_video (GstMmLlmSink * self);
static gboolean gst_mm_llm_sink_handle_prompt_event (GstMmLlmSink * self,
    GstEvent * event);
static void gst_mm_llm_sink_prompt_changed (GstMmLlmSink * self);
static void gst_mm_llm_sink_queue_request_locked (GstMmLlmSink * self,
    guint max_pending, gboolean leaky);
static void gst_mm_llm_sink_abort_locked (GstMmLlmSink * self);

static GQuark pad_data_quark;

#define gst_mm_llm_sink_parent_class parent_class
G_DEFINE_TYPE (GstMmLlmSink, gst_mm_llm_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE (mmllmsink, "mmllmsink", GST_RANK_NONE,
    GST_TYPE_MM_LLM_SINK);

GType
gst_mm_llm_sink_leaky_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_LLM_SINK_LEAKY_AUTO,
        "Leaky when upstream is live, waiting otherwise", "auto"},
    {GST_MM_LLM_SINK_LEAKY_YES,
        "Drop the oldest pending request; the stream never waits", "yes"},
    {GST_MM_LLM_SINK_LEAKY_NO,
        "Wait for the LLM (every request is answered)", "no"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmLlmSinkLeaky", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

GType
gst_mm_llm_sink_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_LLM_SINK_FORMAT_AUTO,
          "By the file extension: .vtt WebVTT, .srt SRT, else JSON Lines",
        "auto"},
    {GST_MM_LLM_SINK_FORMAT_JSONL, "JSON Lines, one object per caption",
        "jsonl"},
    {GST_MM_LLM_SINK_FORMAT_WEBVTT, "WebVTT subtitles", "webvtt"},
    {GST_MM_LLM_SINK_FORMAT_SRT, "SubRip (SRT) subtitles", "srt"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmLlmSinkFormat", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

GType
gst_mm_llm_sink_task_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_MM_LLM_SINK_TASK_TRANSCRIBE,
        "Write down the speech in its own language", "transcribe"},
    {GST_MM_LLM_SINK_TASK_TRANSLATE, "Translate the speech into English",
        "translate"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstMmLlmSinkTask", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

/* language, task, timestamps: Whisper models only */
static void
gst_mm_llm_sink_install_whisper_properties (GObjectClass * gobject_class)
{
  const GParamFlags rw_play = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  g_object_class_install_property (gobject_class, PROP_LANGUAGE,
      g_param_spec_string ("language", "Language",
          "Whisper models only: the spoken language, as a code (\"en\", "
          "\"fr\", ...); NULL/\"auto\": detected per window "
          "(English-only models ignore it)", DEFAULT_LANGUAGE, rw_play));
  g_object_class_install_property (gobject_class, PROP_TASK,
      g_param_spec_enum ("task", "Task",
          "Whisper models only: transcribe the speech, or translate it into "
          "English", GST_TYPE_MM_LLM_SINK_TASK, DEFAULT_TASK, rw_play));
  g_object_class_install_property (gobject_class, PROP_TIMESTAMPS,
      g_param_spec_boolean ("timestamps", "Timestamps",
          "Whisper models only: decode with timestamp tokens, which time "
          "each segment (cue times) and merge overlapping windows by time; "
          "FALSE: plain text per window (as transformers' "
          "return_timestamps=False), windows merged by their words",
          DEFAULT_TIMESTAMPS, rw_play));
}

/* model, device, prompt and sampling */
static void
gst_mm_llm_sink_install_llm_properties (GObjectClass * gobject_class)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw_play = rw | GST_PARAM_MUTABLE_PLAYING;
  const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;

  /* model and device */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "The LLM: a GGUF file (as written by llama.cpp) or a Hugging Face "
          "model folder (config.json, *.safetensors, tokenizer.json); its "
          "hidden size must match the dimension of the incoming tokens. "
          "Or a Hugging Face Whisper folder: audio tokens from mmaudioenc "
          "with the same Whisper are transcribed (prompt and sampling do "
          "not apply)", DEFAULT_MODEL, rw_ready));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "OpenCL device: NULL/\"auto\" (MM_DEVICE, else the first GPU, "
          "else the first device), \"cpu\", \"gpu\", an index, or part of "
          "\"platform: device\"", DEFAULT_DEVICE, rw_ready));

  /* the question */
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "The instruction or question; may change while playing (the next "
          "caption answers the new one). Not used by Whisper models",
          DEFAULT_PROMPT, rw_play));
  g_object_class_install_property (gobject_class, PROP_SYSTEM_PROMPT,
      g_param_spec_string ("system-prompt", "System prompt",
          "System prompt placed before the media, or NULL for none. Not "
          "used by Whisper models", DEFAULT_SYSTEM_PROMPT, rw_play));

  /* sampling */
  g_object_class_install_property (gobject_class, PROP_MAX_TOKENS,
      g_param_spec_int ("max-tokens", "Max tokens",
          "Most tokens generated per caption. Whisper models: per window "
          "(timestamps included), and if never set, up to the decoder's "
          "context", 1, G_MAXINT, DEFAULT_MAX_TOKENS, rw_play));
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
      g_param_spec_float ("temperature", "Temperature",
          "Sampling temperature; 0 = greedy (deterministic). Whisper models "
          "always decode greedily", 0.0f, 10.0f, DEFAULT_TEMPERATURE, rw_play));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_int ("top-k", "Top-k",
          "Sample from the k most likely tokens (temperature > 0); 0 = off",
          0, G_MAXINT, DEFAULT_TOP_K, rw_play));
  g_object_class_install_property (gobject_class, PROP_TOP_P,
      g_param_spec_float ("top-p", "Top-p",
          "Nucleus sampling threshold (temperature > 0); 1 = off",
          0.0f, 1.0f, DEFAULT_TOP_P, rw_play));
  g_object_class_install_property (gobject_class, PROP_REPETITION_PENALTY,
      g_param_spec_float ("repetition-penalty", "Repetition penalty",
          "Penalty on tokens already in the text (also when greedy); "
          "1 = off, 1.1 curbs the loops of small models",
          0.1f, 10.0f, DEFAULT_REPETITION_PENALTY, rw_play));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed",
          "Random seed for sampling (temperature > 0); the same seed and "
          "input give the same text", 0, G_MAXUINT64, DEFAULT_SEED, rw_play));
}

/* context, scheduling, outputs and statistics */
static void
gst_mm_llm_sink_install_stream_properties (GObjectClass * gobject_class)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw_play = rw | GST_PARAM_MUTABLE_PLAYING;
  const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  /* context and scheduling */
  g_object_class_install_property (gobject_class, PROP_CONTEXT_TOKENS,
      g_param_spec_uint ("context-tokens", "Context tokens",
          "Most media tokens kept in the rolling context; the oldest "
          "samples are evicted first", 1, G_MAXINT, DEFAULT_CONTEXT_TOKENS,
          rw_play));
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_double ("interval", "Interval",
          "Seconds of stream running time between requests; 0 = a request "
          "for every new sample", 0.0, MAX_INTERVAL, DEFAULT_INTERVAL,
          rw_play));
  g_object_class_install_property (gobject_class, PROP_MAX_PENDING,
      g_param_spec_uint ("max-pending", "Max pending",
          "Requests that may wait for the LLM (the running one not "
          "counted); when full, see leaky", 1, MAX_PENDING,
          DEFAULT_MAX_PENDING, rw_play));
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "When max-pending requests wait for the LLM: yes = drop the oldest "
          "(the stream never waits), no = the streaming thread waits (every "
          "request is answered), auto = yes with a live upstream, no "
          "otherwise", GST_TYPE_MM_LLM_SINK_LEAKY, DEFAULT_LEAKY, rw_play));
  g_object_class_install_property (gobject_class, PROP_EOS_TIMEOUT,
      g_param_spec_uint ("eos-timeout", "EOS timeout",
          "Seconds EOS waits for pending generations to finish; 0 = drop "
          "them at once", 0, 24 * 3600, DEFAULT_EOS_TIMEOUT, rw_play));

  /* outputs */
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Caption file to write (created or truncated at start, flushed "
          "after every caption), or NULL", DEFAULT_LOCATION, rw_ready));
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format", "Format of the caption file",
          GST_TYPE_MM_LLM_SINK_FORMAT, DEFAULT_FORMAT, rw_ready));
  g_object_class_install_property (gobject_class, PROP_PRINT,
      g_param_spec_boolean ("print", "Print",
          "Print each caption with its span to standard output",
          DEFAULT_PRINT, rw_play));
  g_object_class_install_property (gobject_class, PROP_VIDEO_SINK,
      g_param_spec_object ("video-sink", "Video sink",
          "Sink that receives the frames of the first video pad, carrying "
          "GstMmCaptionMeta (gst-launch: video-sink=\"videoconvert ! "
          "autovideosink\"); NULL: frames end here. Set in NULL or READY",
          GST_TYPE_ELEMENT, rw_ready));
  g_object_class_install_property (gobject_class, PROP_OVERLAY,
      g_param_spec_boolean ("overlay", "Overlay",
          "Draw the current caption on the frames sent to video-sink "
          "(needs textoverlay from gst-plugins-base). Set in NULL or READY",
          DEFAULT_OVERLAY, rw_ready));
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_boolean ("sync", "Sync",
          "Consume buffers in step with the clock, like a display would "
          "(FALSE: as fast as they come)", DEFAULT_SYNC, rw_play));
  g_object_class_install_property (gobject_class, PROP_ASYNC,
      g_param_spec_boolean ("async", "Async",
          "Preroll like a regular sink: PAUSED completes when data arrives "
          "(FALSE: at once, as for an analyser that shows nothing)",
          DEFAULT_ASYNC, rw_ready));

  /* statistics */
  g_object_class_install_property (gobject_class, PROP_CAPTIONS,
      g_param_spec_uint64 ("captions", "Captions",
          "Captions delivered since start", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Requests dropped since start because the queue was full", 0,
          G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_LAST_CAPTION,
      g_param_spec_string ("last-caption", "Last caption",
          "Text of the latest caption, or NULL", NULL, ro));
}

static void
gst_mm_llm_sink_class_init (GstMmLlmSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_mm_llm_sink_debug, "mmllmsink", 0,
      "LLM captions and answers over token streams");
  pad_data_quark = g_quark_from_static_string ("mm-llm-sink-pad-data");

  gobject_class->dispose = gst_mm_llm_sink_dispose;
  gobject_class->finalize = gst_mm_llm_sink_finalize;
  gobject_class->set_property = gst_mm_llm_sink_set_property;
  gobject_class->get_property = gst_mm_llm_sink_get_property;

  gst_mm_llm_sink_install_llm_properties (gobject_class);
  gst_mm_llm_sink_install_whisper_properties (gobject_class);
  gst_mm_llm_sink_install_stream_properties (gobject_class);

  /**
   * GstMmLlmSink::caption:
   * @sink: the element
   * @text: the caption
   * @start: PTS where the captioned span starts
   * @end: PTS where it ends
   *
   * Emitted from the worker thread for every caption, before the
   * `mm-caption` message is posted.
   */
  gst_mm_llm_sink_signals[SIGNAL_CAPTION] =
      g_signal_new ("caption", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
      0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT64,
      G_TYPE_UINT64);

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class,
      "LLM caption sink", "Sink/Video/Audio/Analyzer",
      "Runs an LLM over vision/audio tokens and the prompt, or Whisper's "
      "decoder over audio tokens; posts captions, answers and transcripts "
      "as messages, signals, files and stream metadata", "mm developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_mm_llm_sink_change_state);
  element_class->request_new_pad =
      GST_DEBUG_FUNCPTR (gst_mm_llm_sink_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR (gst_mm_llm_sink_release_pad);
  element_class->send_event = GST_DEBUG_FUNCPTR (gst_mm_llm_sink_send_event);

  gst_type_mark_as_plugin_api (GST_TYPE_MM_LLM_SINK_FORMAT, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_MM_LLM_SINK_LEAKY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_MM_LLM_SINK_TASK, 0);
}

static void
gst_mm_llm_sink_init (GstMmLlmSink * self)
{
  self->prop_model = g_strdup (DEFAULT_MODEL);
  self->prop_device = g_strdup (DEFAULT_DEVICE);
  self->prop_prompt = g_strdup (DEFAULT_PROMPT);
  self->prop_system_prompt = g_strdup (DEFAULT_SYSTEM_PROMPT);
  self->prop_max_tokens = DEFAULT_MAX_TOKENS;
  self->prop_temperature = DEFAULT_TEMPERATURE;
  self->prop_top_k = DEFAULT_TOP_K;
  self->prop_top_p = DEFAULT_TOP_P;
  self->prop_repetition_penalty = DEFAULT_REPETITION_PENALTY;
  self->prop_seed = DEFAULT_SEED;
  self->prop_language = g_strdup (DEFAULT_LANGUAGE);
  self->prop_task = DEFAULT_TASK;
  self->prop_timestamps = DEFAULT_TIMESTAMPS;
  self->prop_context_tokens = DEFAULT_CONTEXT_TOKENS;
  self->prop_interval = DEFAULT_INTERVAL;
  self->prop_max_pending = DEFAULT_MAX_PENDING;
  self->prop_leaky = DEFAULT_LEAKY;
  self->prop_location = g_strdup (DEFAULT_LOCATION);
  self->prop_format = DEFAULT_FORMAT;
  self->prop_print = DEFAULT_PRINT;
  self->prop_overlay = DEFAULT_OVERLAY;
  self->prop_sync = DEFAULT_SYNC;
  self->prop_async = DEFAULT_ASYNC;
  self->prop_eos_timeout = DEFAULT_EOS_TIMEOUT;

  self->backend = mm_caption_llm_backend ();

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->ctx = mm_caption_context_new ();

  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
}

/* The bin disposes its children before GstElement releases the request
 * pads: take the internal elements apart while they exist. */
static void
gst_mm_llm_sink_dispose (GObject * object)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (object);
  GList *pads, *l;

  GST_OBJECT_LOCK (self);
  pads = g_list_copy (GST_ELEMENT (self)->sinkpads);
  for (l = pads; l; l = l->next)
    gst_object_ref (l->data);
  GST_OBJECT_UNLOCK (self);
  for (l = pads; l; l = l->next)
    gst_mm_llm_sink_unwire_pad (self, l->data);
  g_list_free_full (pads, gst_object_unref);
  self->video_pad = NULL;

  G_OBJECT_CLASS (parent_class)->dispose (object);
}

static void
gst_mm_llm_sink_finalize (GObject * object)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (object);

  g_free (self->prop_model);
  g_free (self->prop_device);
  g_free (self->prop_prompt);
  g_free (self->prop_system_prompt);
  g_free (self->prop_language);
  g_free (self->prop_location);
  gst_clear_object (&self->prop_video_sink);

  mm_caption_context_free (self->ctx);
  mm_caption_result_free (self->current);
  g_free (self->refused_prompt);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Replaces *@field with a copy of @value's string; TRUE when it changed. */
static gboolean
set_string (gchar ** field, const GValue * value)
{
  const gchar *s = g_value_get_string (value);

  if (g_strcmp0 (*field, s) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (s);
  return TRUE;
}

/* Passes sync and async to the internal fakesinks (not to video-sink,
 * which the application configures). */
static void
gst_mm_llm_sink_configure_sinks (GstMmLlmSink * self)
{
  GPtrArray *sinks = g_ptr_array_new_with_free_func (gst_object_unref);
  gboolean sync, async;
  GList *l;
  guint i;

  /* setting a child notifies through its parents, which takes our object
   * lock: collect first */
  GST_OBJECT_LOCK (self);
  sync = self->prop_sync;
  async = self->prop_async;
  for (l = GST_ELEMENT (self)->sinkpads; l; l = l->next) {
    PadData *pd = g_object_get_qdata (l->data, pad_data_quark);

    if (pd && pd->chain.fakesink)
      g_ptr_array_add (sinks, gst_object_ref (pd->chain.fakesink));
  }
  GST_OBJECT_UNLOCK (self);

  for (i = 0; i < sinks->len; i++)
    g_object_set (g_ptr_array_index (sinks, i), "sync", sync, "async", async,
        NULL);
  g_ptr_array_unref (sinks);
}

/* video-sink and overlay change the internal wiring: only in NULL/READY. */
static gboolean
gst_mm_llm_sink_set_wiring_property (GstMmLlmSink * self, guint prop_id,
    const GValue * value)
{
  GstElement *sink;

  if (GST_STATE (self) > GST_STATE_READY
      || GST_STATE_PENDING (self) > GST_STATE_READY) {
    GST_WARNING_OBJECT (self, "video-sink and overlay can only be set in "
        "the NULL or READY state");
    return FALSE;
  }
  if (prop_id == PROP_OVERLAY) {
    self->prop_overlay = g_value_get_boolean (value);
    return TRUE;
  }

  sink = g_value_get_object (value);
  if (sink)
    gst_object_ref_sink (sink);
  gst_clear_object (&self->prop_video_sink);
  self->prop_video_sink = sink;
  return TRUE;
}

static void
gst_mm_llm_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (object);
  gboolean prompt_changed = FALSE, rewire = FALSE, sinks_changed = FALSE;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      set_string (&self->prop_model, value);
      break;
    case PROP_DEVICE:
      set_string (&self->prop_device, value);
      break;
    case PROP_PROMPT:
      prompt_changed = set_string (&self->prop_prompt, value);
      break;
    case PROP_SYSTEM_PROMPT:
      prompt_changed = set_string (&self->prop_system_prompt, value);
      break;
    case PROP_MAX_TOKENS:
      self->prop_max_tokens = g_value_get_int (value);
      self->prop_max_tokens_set = TRUE;
      break;
    case PROP_TEMPERATURE:
      self->prop_temperature = g_value_get_float (value);
      break;
    case PROP_TOP_K:
      self->prop_top_k = g_value_get_int (value);
      break;
    case PROP_TOP_P:
      self->prop_top_p = g_value_get_float (value);
      break;
    case PROP_REPETITION_PENALTY:
      self->prop_repetition_penalty = g_value_get_float (value);
      break;
    case PROP_SEED:
      self->prop_seed = g_value_get_uint64 (value);
      break;
    case PROP_LANGUAGE:
      set_string (&self->prop_language, value);
      break;
    case PROP_TASK:
      self->prop_task = g_value_get_enum (value);
      break;
    case PROP_TIMESTAMPS:
      self->prop_timestamps = g_value_get_boolean (value);
      break;
    case PROP_CONTEXT_TOKENS:
      self->prop_context_tokens = g_value_get_uint (value);
      break;
    case PROP_INTERVAL:
      self->prop_interval = g_value_get_double (value);
      break;
    case PROP_MAX_PENDING:
      self->prop_max_pending = g_value_get_uint (value);
      break;
    case PROP_LEAKY:
      self->prop_leaky = g_value_get_enum (value);
      break;
    case PROP_EOS_TIMEOUT:
      self->prop_eos_timeout = g_value_get_uint (value);
      break;
    case PROP_LOCATION:
      set_string (&self->prop_location, value);
      break;
    case PROP_FORMAT:
      self->prop_format = g_value_get_enum (value);
      break;
    case PROP_PRINT:
      self->prop_print = g_value_get_boolean (value);
      break;
    case PROP_VIDEO_SINK:
    case PROP_OVERLAY:
      rewire = gst_mm_llm_sink_set_wiring_property (self, prop_id, value);
      break;
    case PROP_SYNC:
      self->prop_sync = g_value_get_boolean (value);
      sinks_changed = TRUE;
      break;
    case PROP_ASYNC:
      self->prop_async = g_value_get_boolean (value);
      sinks_changed = TRUE;
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  if (prompt_changed)
    gst_mm_llm_sink_prompt_changed (self);
  if (rewire)
    gst_mm_llm_sink_rewire_video (self);
  if (sinks_changed)
    gst_mm_llm_sink_configure_sinks (self);
}

static void
gst_mm_llm_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->prop_model);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->prop_device);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prop_prompt);
      break;
    case PROP_SYSTEM_PROMPT:
      g_value_set_string (value, self->prop_system_prompt);
      break;
    case PROP_MAX_TOKENS:
      g_value_set_int (value, self->prop_max_tokens);
      break;
    case PROP_TEMPERATURE:
      g_value_set_float (value, self->prop_temperature);
      break;
    case PROP_TOP_K:
      g_value_set_int (value, self->prop_top_k);
      break;
    case PROP_TOP_P:
      g_value_set_float (value, self->prop_top_p);
      break;
    case PROP_REPETITION_PENALTY:
      g_value_set_float (value, self->prop_repetition_penalty);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, self->prop_seed);
      break;
    case PROP_LANGUAGE:
      g_value_set_string (value, self->prop_language);
      break;
    case PROP_TASK:
      g_value_set_enum (value, self->prop_task);
      break;
    case PROP_TIMESTAMPS:
      g_value_set_boolean (value, self->prop_timestamps);
      break;
    case PROP_CONTEXT_TOKENS:
      g_value_set_uint (value, self->prop_context_tokens);
      break;
    case PROP_INTERVAL:
      g_value_set_double (value, self->prop_interval);
      break;
    case PROP_MAX_PENDING:
      g_value_set_uint (value, self->prop_max_pending);
      break;
    case PROP_LEAKY:
      g_value_set_enum (value, self->prop_leaky);
      break;
    case PROP_EOS_TIMEOUT:
      g_value_set_uint (value, self->prop_eos_timeout);
      break;
    case PROP_LOCATION:
      g_value_set_string (value, self->prop_location);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, self->prop_format);
      break;
    case PROP_PRINT:
      g_value_set_boolean (value, self->prop_print);
      break;
    case PROP_VIDEO_SINK:
      g_value_set_object (value, self->prop_video_sink);
      break;
    case PROP_OVERLAY:
      g_value_set_boolean (value, self->prop_overlay);
      break;
    case PROP_SYNC:
      g_value_set_boolean (value, self->prop_sync);
      break;
    case PROP_ASYNC:
      g_value_set_boolean (value, self->prop_async);
      break;
    case PROP_CAPTIONS:
    case PROP_DROPPED:
    case PROP_LAST_CAPTION:
      g_mutex_lock (&self->lock);
      if (prop_id == PROP_CAPTIONS)
        g_value_set_uint64 (value, self->n_captions);
      else if (prop_id == PROP_DROPPED)
        g_value_set_uint64 (value, self->n_dropped);
      else
        g_value_set_string (value, self->current ? self->current->text : NULL);
      g_mutex_unlock (&self->lock);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
gst_mm_llm_sink_change_state (GstElement * element, GstStateChange transition)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_mm_llm_sink_start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* release streaming threads waiting in the element before the
       * children deactivate their pads */
      g_mutex_lock (&self->lock);
      self->running = FALSE;
      gst_mm_llm_sink_abort_locked (self);
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (ret == GST_STATE_CHANGE_FAILURE)
        gst_mm_llm_sink_stop (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      gst_mm_llm_sink_stop (self);
      break;
    default:
      break;
  }
  return ret;
}

/* A Whisper model transcribes the audio pads; a video pad cannot be
 * used.  Posts the error and returns FALSE on failure. */
static gboolean
gst_mm_llm_sink_load_whisper (GstMmLlmSink * self, const gchar * model,
    const gchar * device)
{
  gchar *video = NULL;
  GError *err = NULL;
  GList *l;

  GST_OBJECT_LOCK (self);
  for (l = GST_ELEMENT (self)->sinkpads; l && video == NULL; l = l->next) {
    PadData *pd = g_object_get_qdata (l->data, pad_data_quark);

    if (pd && pd->modality == GST_MM_MODALITY_VIDEO)
      video = g_strdup (GST_PAD_NAME (l->data));
  }
  GST_OBJECT_UNLOCK (self);
  if (video) {
    GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE,
        ("Model \"%s\" is a Whisper speech model: it transcribes audio "
            "pads only, and %s is a video pad.", model, video),
        ("Caption video with an LLM (model=<GGUF or Hugging Face LLM>), or "
            "link only audio from mmaudioenc."));
    g_free (video);
    return FALSE;
  }

  self->whisper = mm_caption_whisper_load (model, device, &err);
  if (self->whisper == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load Whisper model \"%s\" on device \"%s\".", model,
            device ? device : "auto"), ("%s", err ? err->message : "?"));
    g_clear_error (&err);
    return FALSE;
  }
  self->llm_id = g_strdup (mm_caption_whisper_id (self->whisper));
  self->hidden_size = mm_caption_whisper_d_model (self->whisper);
  self->context_size = 0;
  GST_INFO_OBJECT (self, "loaded Whisper %s (%s): transcribing %d x %d "
      "audio tokens", model, self->llm_id,
      mm_caption_whisper_n_audio_tokens (self->whisper), self->hidden_size);
  return TRUE;
}

/* Loads the model; posts the error and returns FALSE on failure. */
static gboolean
gst_mm_llm_sink_load_model (GstMmLlmSink * self)
{
  gchar *model, *device;
  GError *err = NULL;
  gboolean ok = FALSE;

  GST_OBJECT_LOCK (self);
  model = g_strdup (self->prop_model);
  device = g_strdup (self->prop_device);
  GST_OBJECT_UNLOCK (self);

  if (model == NULL || model[0] == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No LLM given: set the \"model\" property."),
        ("model=<GGUF file or Hugging Face folder of a Llama-family LLM, "
            "or a Hugging Face Whisper folder>"));
  } else if (mm_caption_whisper_is_model (model)) {
    ok = gst_mm_llm_sink_load_whisper (self, model, device);
  } else if ((self->llm = self->backend->load (model, device, &err))) {
    self->llm_id = g_strdup (self->backend->id (self->llm));
    self->hidden_size = self->backend->hidden_size (self->llm);
    self->context_size = self->backend->context_size (self->llm);
    GST_INFO_OBJECT (self, "loaded %s (%s): hidden size %d, context %d",
        model, self->llm_id, self->hidden_size, self->context_size);
    ok = TRUE;
  } else {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load LLM \"%s\" on device \"%s\".", model,
            device ? device : "auto"), ("%s", err ? err->message : "?"));
    g_clear_error (&err);
  }
  g_free (device);
  g_free (model);
  return ok;
}

/* Forgets the EOS of every pad (a new run). */
static void
gst_mm_llm_sink_reset_pads (GstMmLlmSink * self)
{
  GList *l;

  GST_OBJECT_LOCK (self);
  g_mutex_lock (&self->lock);
  for (l = GST_ELEMENT (self)->sinkpads; l; l = l->next) {
    PadData *pd = g_object_get_qdata (l->data, pad_data_quark);

    if (pd)
      pd->eos = FALSE;
  }
  g_mutex_unlock (&self->lock);
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_mm_llm_sink_start (GstMmLlmSink * self)
{
  gchar *location;
  GstMmLlmSinkFormat format;
  gboolean overlay, have_video_sink;
  GError *err = NULL;

  if (!gst_mm_llm_sink_load_model (self))
    return FALSE;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->prop_location);
  format = self->prop_format;
  overlay = self->prop_overlay;
  have_video_sink = self->prop_video_sink != NULL;
  GST_OBJECT_UNLOCK (self);

  if (location) {
    self->writer = mm_caption_writer_open (location,
        (MmCaptionFormat) format, &err);
    if (self->writer == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("Could not open caption file \"%s\".", location),
          ("%s", err->message));
      g_clear_error (&err);
      g_free (location);
      gst_mm_llm_sink_stop (self);
      return FALSE;
    }
  }
  g_free (location);

  if (overlay && !have_video_sink)
    GST_ELEMENT_WARNING (self, CORE, MISSING_PLUGIN,
        ("overlay=true has no effect without a video-sink."), (NULL));
  else if (overlay && self->textoverlay == NULL && self->video_pad)
    GST_ELEMENT_WARNING (self, CORE, MISSING_PLUGIN,
        ("overlay=true needs the textoverlay and videoconvert elements "
            "(gst-plugins-base with pango); frames are shown without "
            "captions."), (NULL));

  g_mutex_lock (&self->lock);
  self->running = TRUE;
  self->failed = FALSE;
  self->dim_error = FALSE;
  self->flush_transcript = FALSE;
  self->encoder_warned = FALSE;
  self->oversize_warned = FALSE;
  self->n_captions = 0;
  self->n_dropped = 0;
  g_clear_pointer (&self->refused_prompt, g_free);
  g_clear_pointer (&self->current, mm_caption_result_free);
  mm_caption_context_drop_pending (self->ctx);
  mm_caption_context_clear (self->ctx);
  g_mutex_unlock (&self->lock);
  gst_mm_llm_sink_reset_pads (self);

  self->worker = g_thread_new ("mmllmsink", gst_mm_llm_sink_worker, self);
  return TRUE;
}

static void
gst_mm_llm_sink_stop (GstMmLlmSink * self)
{
  g_mutex_lock (&self->lock);
  self->running = FALSE;
  gst_mm_llm_sink_abort_locked (self);
  g_mutex_unlock (&self->lock);

  if (self->worker) {
    g_thread_join (self->worker);
    self->worker = NULL;
  }

  g_clear_pointer (&self->writer, mm_caption_writer_close);
  if (self->llm) {
    self->backend->free (self->llm);
    self->llm = NULL;
  }
  g_clear_pointer (&self->whisper, mm_caption_whisper_free);
  g_clear_pointer (&self->llm_id, g_free);
  self->hidden_size = 0;
  self->context_size = 0;

  g_mutex_lock (&self->lock);
  mm_caption_context_clear (self->ctx);
  g_mutex_unlock (&self->lock);
}

/* ---- pads and internal wiring ---- */

static void
pad_data_free (PadData * pd)
{
  mm_caption_chain_clear (&pd->chain);
  g_free (pd);
}

static GstPad *
gst_mm_llm_sink_request_new_pad (GstElement * element, GstPadTemplate * templ,
    const gchar * name, const GstCaps * caps)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (element);
  gboolean video = templ == gst_element_class_get_pad_template
      (GST_ELEMENT_GET_CLASS (element), "video_%u");
  const gchar *fmt = video ? "video_%u" : "audio_%u";
  GstPad *pad, *existing;
  PadData *pd;
  gchar *pad_name;
  guint index;

  if (video && self->whisper) {
    GST_ELEMENT_WARNING (self, STREAM, WRONG_TYPE,
        ("Model \"%s\" is a Whisper speech model: no video pads.",
            self->llm_id), (NULL));
    return NULL;
  }

  GST_OBJECT_LOCK (self);
  if (name == NULL || sscanf (name, fmt, &index) != 1)
    index = video ? self->next_video : self->next_audio;
  if (video)
    self->next_video = MAX (self->next_video, index + 1);
  else
    self->next_audio = MAX (self->next_audio, index + 1);
  GST_OBJECT_UNLOCK (self);

  pad_name = g_strdup_printf (fmt, index);
  existing = gst_element_get_static_pad (element, pad_name);
  if (existing) {
    GST_WARNING_OBJECT (self, "pad %s already exists", pad_name);
    gst_object_unref (existing);
    g_free (pad_name);
    return NULL;
  }
  pad = gst_ghost_pad_new_no_target_from_template (pad_name, templ);
  g_free (pad_name);

  pd = g_new0 (PadData, 1);
  pd->modality = video ? GST_MM_MODALITY_VIDEO : GST_MM_MODALITY_AUDIO;
  mm_caption_chain_init (&pd->chain);
  gst_segment_init (&pd->segment, GST_FORMAT_TIME);
  g_object_set_qdata_full (G_OBJECT (pad), pad_data_quark, pd,
      (GDestroyNotify) pad_data_free);

  gst_pad_set_chain_function (pad, GST_DEBUG_FUNCPTR (gst_mm_llm_sink_chain));
  gst_pad_set_chain_list_function (pad,
      GST_DEBUG_FUNCPTR (gst_mm_llm_sink_chain_list));
  gst_pad_set_event_function (pad,
      GST_DEBUG_FUNCPTR (gst_mm_llm_sink_sink_event));

  if (video && self->video_pad == NULL)
    self->video_pad = pad;

  gst_mm_llm_sink_wire_pad (self, pad);
  gst_element_add_pad (element, pad);

  return pad;
}

static void
gst_mm_llm_sink_release_pad (GstElement * element, GstPad * pad)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (element);

  gst_mm_llm_sink_unwire_pad (self, pad);
  if (self->video_pad == pad)
    self->video_pad = NULL;
  gst_pad_set_active (pad, FALSE);
  gst_element_remove_pad (element, pad);
}

/* Builds the elements behind @pad (mm-caption-chain.h): video-sink for
 * the first video pad when it is set, else a fakesink. */
static void
gst_mm_llm_sink_wire_pad (GstMmLlmSink * self, GstPad * pad)
{
  PadData *pd = g_object_get_qdata (G_OBJECT (pad), pad_data_quark);
  GstElement *video_sink = NULL;
  gboolean overlay, sync, async;
  gchar *name = g_strdup_printf ("%s-sink", GST_PAD_NAME (pad));

  GST_OBJECT_LOCK (self);
  if (pad == self->video_pad && self->prop_video_sink)
    video_sink = gst_object_ref (self->prop_video_sink);
  overlay = self->prop_overlay;
  sync = self->prop_sync;
  async = self->prop_async;
  GST_OBJECT_UNLOCK (self);

  if (!mm_caption_chain_build (&pd->chain, GST_BIN (self), pad, name,
          video_sink, overlay, sync, async))
    GST_ELEMENT_WARNING (self, CORE, PAD, ("Could not add the video sink "
            "to %s.", GST_ELEMENT_NAME (self)),
        ("is it already in another bin?"));
  pd->to_video_sink = video_sink != NULL;
  GST_OBJECT_LOCK (self);
  if (pd->chain.textoverlay)
    self->textoverlay = pd->chain.textoverlay;
  GST_OBJECT_UNLOCK (self);

  gst_clear_object (&video_sink);
  g_free (name);
}

static void
gst_mm_llm_sink_unwire_pad (GstMmLlmSink * self, GstPad * pad)
{
  PadData *pd = g_object_get_qdata (G_OBJECT (pad), pad_data_quark);

  GST_OBJECT_LOCK (self);
  if (pd->chain.textoverlay && pd->chain.textoverlay == self->textoverlay)
    self->textoverlay = NULL;
  GST_OBJECT_UNLOCK (self);
  mm_caption_chain_teardown (&pd->chain, GST_BIN (self), pad);
  pd->to_video_sink = FALSE;
}

static void
gst_mm_llm_sink_rewire_video (GstMmLlmSink * self)
{
  if (self->video_pad) {
    gst_mm_llm_sink_unwire_pad (self, self->video_pad);
    gst_mm_llm_sink_wire_pad (self, self->video_pad);
  }
}

/* ---- streaming ---- */

/* A sample for @meta: its span from the meta, else from the buffer, and
 * its running time in the pad's segment. */
static MmCaptionSample *
sample_new (PadData * pd, GstBuffer * buf, GstMmTokensMeta * meta)
{
  GstClockTime pts, duration, end, running_time = GST_CLOCK_TIME_NONE;

  pts = GST_CLOCK_TIME_IS_VALID (meta->pts) ? meta->pts : GST_BUFFER_PTS (buf);
  duration = GST_CLOCK_TIME_IS_VALID (meta->duration) ? meta->duration :
      GST_BUFFER_DURATION (buf);
  end = GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration) ?
      pts + duration : pts;
  if (pd->segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (pts))
    running_time = gst_segment_to_running_time (&pd->segment,
        GST_FORMAT_TIME, pts);
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    running_time = pts;

  return mm_caption_sample_new (meta, pts, end, running_time);
}

/* Error when tokens cannot feed the LLM (or the Whisper decoder);
 * returns FALSE. */
static gboolean
gst_mm_llm_sink_check_dim (GstMmLlmSink * self, GstMmTokensMeta * meta)
{
  gint n_audio = self->whisper ?
      mm_caption_whisper_n_audio_tokens (self->whisper) : 0;
  gboolean first;

  if ((gint) meta->dim == self->hidden_size
      && meta->dtype == GST_MM_TOKENS_DTYPE_F32
      && (self->whisper == NULL || (gint) meta->n_tokens == n_audio)) {
    /* the shapes fit; the decoder was trained on its own encoder */
    if (self->whisper && g_strcmp0 (meta->model_id, self->llm_id) != 0
        && !g_atomic_int_exchange (&self->encoder_warned, TRUE))
      GST_ELEMENT_WARNING (self, STREAM, FORMAT,
          ("Audio tokens from encoder model \"%s\" are decoded by Whisper "
              "model \"%s\": the transcript is only right when both are "
              "the same Whisper.", GST_STR_NULL (meta->model_id),
              self->llm_id), (NULL));
    return TRUE;
  }

  g_mutex_lock (&self->lock);
  first = !self->dim_error;
  self->dim_error = TRUE;
  self->failed = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);

  if (first && self->whisper)
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Audio tokens of %u x %u from encoder model \"%s\" do not fit the "
            "decoder of Whisper model \"%s\", which takes %d x %d (its "
            "encoder's output length x d_model).", meta->n_tokens, meta->dim,
            GST_STR_NULL (meta->model_id), GST_STR_NULL (self->llm_id),
            n_audio, self->hidden_size),
        ("Encode the audio with mmaudioenc model=<the same Whisper folder>."));
  else if (first)
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Tokens of dimension %u from encoder model \"%s\" do not fit LLM "
            "\"%s\", whose hidden size is %d.", meta->dim,
            GST_STR_NULL (meta->model_id), GST_STR_NULL (self->llm_id),
            self->hidden_size),
        ("Use the projector (mmproj) made for this LLM."));
  return FALSE;
}

/* In non-leaky mode, waits for room in the queue.  FALSE when the wait
 * was cut by a flush, a stop or an error. */
static gboolean
gst_mm_llm_sink_wait_room_locked (GstMmLlmSink * self, guint max_pending)
{
  gint epoch = self->epoch;

  while (self->running && self->epoch == epoch && !self->failed
      && mm_caption_context_n_pending (self->ctx) >= max_pending)
    g_cond_wait (&self->cond, &self->lock);
  return self->running && self->epoch == epoch && !self->failed;
}

/* Adds one sample to the context and makes a request when one is due. */
static GstFlowReturn
gst_mm_llm_sink_add_sample (GstMmLlmSink * self, MmCaptionSample * s,
    GstClockTime interval, guint budget, guint max_pending, gboolean leaky)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean due, added, warn = FALSE;
  guint n_tokens = s->n_tokens;

  g_mutex_lock (&self->lock);
  if (!self->running || self->failed) {
    ret = self->failed ? GST_FLOW_ERROR : GST_FLOW_FLUSHING;
    g_mutex_unlock (&self->lock);
    mm_caption_sample_unref (s);
    return ret;
  }
  due = mm_caption_context_due (self->ctx, s->running_time, interval);
  added = mm_caption_context_add (self->ctx, s, budget);
  if (!added) {
    warn = !self->oversize_warned;
    self->oversize_warned = TRUE;
  }
  if (due && mm_caption_context_has_new (self->ctx)) {
    if (leaky || gst_mm_llm_sink_wait_room_locked (self, max_pending))
      gst_mm_llm_sink_queue_request_locked (self, max_pending, leaky);
    else
      ret = self->failed ? GST_FLOW_ERROR : GST_FLOW_FLUSHING;
  }
  g_mutex_unlock (&self->lock);

  if (warn)
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("A sample of %u tokens does not fit context-tokens=%u; such "
            "samples are skipped.", n_tokens, budget), (NULL));
  return ret;
}

/* Whether the source of @pad is live (asked once per stream). */
static gboolean
gst_mm_llm_sink_upstream_is_live (GstMmLlmSink * self, GstPad * pad,
    PadData * pd)
{
  GstQuery *query;

  if (pd->live_known)
    return pd->upstream_live;

  query = gst_query_new_latency ();
  pd->upstream_live = FALSE;
  if (gst_pad_peer_query (pad, query))
    gst_query_parse_latency (query, &pd->upstream_live, NULL, NULL);
  gst_query_unref (query);
  pd->live_known = TRUE;
  GST_INFO_OBJECT (pad, "upstream is %slive: %s", pd->upstream_live ? "" :
      "not ", pd->upstream_live ? "leaky" : "waiting for the LLM");
  return pd->upstream_live;
}

/* Takes the token metas of @buf into the context and makes requests. */
static GstFlowReturn
gst_mm_llm_sink_collect (GstMmLlmSink * self, GstPad * pad, GstBuffer * buf)
{
  PadData *pd = g_object_get_qdata (G_OBJECT (pad), pad_data_quark);
  GstFlowReturn ret = GST_FLOW_OK;
  GstClockTime interval;
  guint budget, max_pending;
  GstMmLlmSinkLeaky prop_leaky;
  gboolean leaky;
  gpointer state = NULL;
  GstMmTokensMeta *meta;

  g_mutex_lock (&self->lock);
  ret = self->failed ? GST_FLOW_ERROR : GST_FLOW_OK;
  g_mutex_unlock (&self->lock);
  if (ret != GST_FLOW_OK)
    return ret;

  GST_OBJECT_LOCK (self);
  interval = (GstClockTime) (self->prop_interval * GST_SECOND + 0.5);
  budget = self->prop_context_tokens;
  max_pending = self->prop_max_pending;
  prop_leaky = self->prop_leaky;
  GST_OBJECT_UNLOCK (self);
  /* Whisper: every window is transcribed on its own, once */
  if (self->whisper) {
    interval = 0;
    budget = mm_caption_whisper_n_audio_tokens (self->whisper);
  }

  leaky = prop_leaky == GST_MM_LLM_SINK_LEAKY_YES ||
      (prop_leaky == GST_MM_LLM_SINK_LEAKY_AUTO
      && gst_mm_llm_sink_upstream_is_live (self, pad, pd));
  g_mutex_lock (&self->lock);
  self->leaky = leaky;
  g_mutex_unlock (&self->lock);

  while (ret == GST_FLOW_OK
      && (meta = gst_buffer_iterate_mm_tokens_meta (buf, &state))) {
    if (meta->n_tokens == 0 || meta->tokens == NULL)
      continue;
    if (!gst_mm_llm_sink_check_dim (self, meta))
      return GST_FLOW_ERROR;
    ret = gst_mm_llm_sink_add_sample (self, sample_new (pd, buf, meta),
        interval, budget, max_pending, leaky);
  }
  return ret;
}

/* Attaches the current caption to a frame going to video-sink. */
static GstBuffer *
gst_mm_llm_sink_attach_caption (GstMmLlmSink * self, GstBuffer * buf)
{
  MmCaptionResult *c = NULL;

  g_mutex_lock (&self->lock);
  if (self->current)
    c = mm_caption_result_copy (self->current);
  g_mutex_unlock (&self->lock);

  if (c) {
    buf = gst_buffer_make_writable (buf);
    gst_buffer_add_mm_caption_meta (buf, c->text, c->prompt, c->start, c->end,
        c->latency, MAX (c->stats.prompt_tokens, 0),
        MAX (c->stats.generated_tokens, 0), c->model);
    mm_caption_result_free (c);
  }
  return buf;
}

static GstFlowReturn
gst_mm_llm_sink_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (parent);
  PadData *pd = g_object_get_qdata (G_OBJECT (pad), pad_data_quark);
  GstFlowReturn ret;

  ret = gst_mm_llm_sink_collect (self, pad, buf);
  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buf);
    return ret;
  }
  if (pd->to_video_sink)
    buf = gst_mm_llm_sink_attach_caption (self, buf);

  return gst_proxy_pad_chain_default (pad, parent, buf);
}

static GstFlowReturn
gst_mm_llm_sink_chain_list (GstPad * pad, GstObject * parent,
    GstBufferList * list)
{
  GstFlowReturn ret = GST_FLOW_OK;
  guint i, n = gst_buffer_list_length (list);

  for (i = 0; i < n && ret == GST_FLOW_OK; i++)
    ret = gst_mm_llm_sink_chain (pad, parent,
        gst_buffer_ref (gst_buffer_list_get (list, i)));
  gst_buffer_list_unref (list);
  return ret;
}

/* At EOS of the last pad: a last request for what is not captioned yet,
 * then wait (bounded) for the pending work (and, transcribing, for the
 * transcript's held-back end). */
static void
gst_mm_llm_sink_drain (GstMmLlmSink * self)
{
  gint64 deadline;
  guint timeout, max_pending, dropped = 0;
  gint epoch;

  GST_OBJECT_LOCK (self);
  timeout = self->prop_eos_timeout;
  max_pending = self->prop_max_pending;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  if (mm_caption_context_has_new (self->ctx) && self->running && !self->failed)
    gst_mm_llm_sink_queue_request_locked (self, max_pending, self->leaky);
  /* a transcript commits what it held back once the windows are done */
  if (self->whisper && self->running && !self->failed) {
    self->flush_transcript = TRUE;
    g_cond_broadcast (&self->cond);
  }
  deadline = g_get_monotonic_time () + G_TIME_SPAN_SECOND * timeout;
  epoch = self->epoch;
  while (self->running && self->epoch == epoch
      && (self->busy || mm_caption_context_n_pending (self->ctx) > 0
          || self->flush_transcript)) {
    if (timeout == 0 || !g_cond_wait_until (&self->cond, &self->lock, deadline)) {
      dropped = mm_caption_context_n_pending (self->ctx) + (self->busy ? 1 : 0);
      gst_mm_llm_sink_abort_locked (self);
      break;
    }
  }
  g_mutex_unlock (&self->lock);

  if (dropped > 0)
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("EOS: %u caption request(s) did not finish within eos-timeout=%u s "
            "and were dropped.", dropped, timeout), (NULL));
}

static gboolean
gst_mm_llm_sink_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (parent);
  PadData *pd = g_object_get_qdata (G_OBJECT (pad), pad_data_quark);

  GST_LOG_OBJECT (pad, "event %" GST_PTR_FORMAT, event);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &pd->segment);
      break;
    case GST_EVENT_FLUSH_START:
      g_mutex_lock (&self->lock);
      gst_mm_llm_sink_abort_locked (self);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&self->lock);
      mm_caption_context_clear (self->ctx);
      pd->eos = FALSE;
      g_mutex_unlock (&self->lock);
      pd->live_known = FALSE;
      gst_segment_init (&pd->segment, GST_FORMAT_TIME);
      break;
    case GST_EVENT_STREAM_START:
      g_mutex_lock (&self->lock);
      pd->eos = FALSE;
      g_mutex_unlock (&self->lock);
      pd->live_known = FALSE;
      break;
    case GST_EVENT_EOS:{
      gboolean all = TRUE;
      GList *l;

      GST_OBJECT_LOCK (self);
      g_mutex_lock (&self->lock);
      pd->eos = TRUE;
      for (l = GST_ELEMENT (self)->sinkpads; l; l = l->next) {
        PadData *other = g_object_get_qdata (l->data, pad_data_quark);

        all &= other == NULL || other->eos;
      }
      g_mutex_unlock (&self->lock);
      GST_OBJECT_UNLOCK (self);
      if (all)
        gst_mm_llm_sink_drain (self);
      break;
    }
    case GST_EVENT_CUSTOM_DOWNSTREAM:
    case GST_EVENT_CUSTOM_DOWNSTREAM_OOB:
    case GST_EVENT_CUSTOM_DOWNSTREAM_STICKY:
    case GST_EVENT_CUSTOM_BOTH:
    case GST_EVENT_CUSTOM_BOTH_OOB:
      if (gst_mm_llm_sink_handle_prompt_event (self, event)) {
        gst_event_unref (event);
        return TRUE;
      }
      break;
    default:
      break;
  }

  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_mm_llm_sink_send_event (GstElement * element, GstEvent * event)
{
  GstMmLlmSink *self = GST_MM_LLM_SINK (element);

  if (gst_mm_llm_sink_handle_prompt_event (self, event)) {
    gst_event_unref (event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS (parent_class)->send_event (element, event);
}

/* Takes the prompt of an `mm-prompt` custom event; FALSE for other
 * events. */
static gboolean
gst_mm_llm_sink_handle_prompt_event (GstMmLlmSink * self, GstEvent * event)
{
  const GstStructure *s = gst_event_get_structure (event);
  const gchar *prompt, *system_prompt;
  gboolean changed = FALSE;

  if (s == NULL || !gst_structure_has_name (s, "mm-prompt"))
    return FALSE;

  prompt = gst_structure_get_string (s, "prompt");
  system_prompt = gst_structure_get_string (s, "system-prompt");
  if (prompt == NULL && system_prompt == NULL) {
    GST_WARNING_OBJECT (self, "mm-prompt event without a \"prompt\" string: "
        "%" GST_PTR_FORMAT, s);
    return TRUE;
  }

  GST_INFO_OBJECT (self, "new prompt from event: %s", GST_STR_NULL (prompt));
  GST_OBJECT_LOCK (self);
  if (prompt && g_strcmp0 (prompt, self->prop_prompt) != 0) {
    g_free (self->prop_prompt);
    self->prop_prompt = g_strdup (prompt);
    changed = TRUE;
  }
  if (system_prompt && g_strcmp0 (system_prompt, self->prop_system_prompt) != 0) {
    g_free (self->prop_system_prompt);
    self->prop_system_prompt = g_strdup (system_prompt);
    changed = TRUE;
  }
  GST_OBJECT_UNLOCK (self);

  if (changed) {
    if (prompt)
      g_object_notify (G_OBJECT (self), "prompt");
    if (system_prompt)
      g_object_notify (G_OBJECT (self), "system-prompt");
    gst_mm_llm_sink_prompt_changed (self);
  }
  return TRUE;
}

/* A new question deserves an answer now, not at the next sample (not
 * with Whisper, which has no prompt). */
static void
gst_mm_llm_sink_prompt_changed (GstMmLlmSink * self)
{
  guint max_pending;

  if (self->whisper)
    return;

  GST_OBJECT_LOCK (self);
  max_pending = self->prop_max_pending;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  if (self->running && !self->failed
      && !mm_caption_context_is_empty (self->ctx))
    gst_mm_llm_sink_queue_request_locked (self, max_pending, self->leaky);
  g_mutex_unlock (&self->lock);
}

/* ---- requests ---- */

/* Queues a request over the current context (see
 * mm_caption_context_push_request() for the leaky rule). */
static void
gst_mm_llm_sink_queue_request_locked (GstMmLlmSink * self, guint max_pending,
    gboolean leaky)
{
  guint dropped = mm_caption_context_push_request (self->ctx, max_pending,
      leaky, self->epoch);

  if (dropped > 0)
    GST_DEBUG_OBJECT (self, "queue full: dropped %u request(s)", dropped);
  self->n_dropped += dropped;
  g_cond_broadcast (&self->cond);
}

/* Drops pending requests and stops the running generation. */
static void
gst_mm_llm_sink_abort_locked (GstMmLlmSink * self)
{
  g_atomic_int_inc (&self->epoch);
  self->flush_transcript = FALSE;
  mm_caption_context_drop_pending (self->ctx);
  g_cond_broadcast (&self->cond);
}

void
gst_mm_llm_sink_set_backend (GstMmLlmSink * self,
    const MmCaptionBackend * backend)
{
  g_return_if_fail (GST_IS_MM_LLM_SINK (self));
  g_return_if_fail (GST_STATE (self) == GST_STATE_NULL);

  self->backend = backend ? backend : mm_caption_llm_backend ();
}
