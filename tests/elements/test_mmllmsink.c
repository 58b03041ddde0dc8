/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink: caption writers, and the element's mechanics (bus message,
 * signal, JSON Lines/WebVTT/SRT files, prompt changes by property and
 * event, context eviction, dim mismatch, missing model, EOS, flush,
 * leaky queue, video-sink meta and overlay, latency query).
 *
 * The element is compiled into this program and registered statically, so
 * the tests can give it a fake LLM backend (gstmmllmsink-private.h): the
 * fake lives here only.  Runs with real models are in
 * test_mmllmsink_launch.c.  Nothing here loads the mm plugin itself.
 */
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>

#include "elements/gstmmllmsink.h"
#include "elements/gstmmllmsink-private.h"
#include "elements/mm-caption-context.h"
#include "elements/mm-caption-llm.h"
#include "elements/mm-caption-writer.h"
#include "gst/gstmmcaptionmeta.h"
#include "gst/gstmmtokensmeta.h"

#define VIDEO_CAPS "video/x-raw,format=GRAY8,width=4,height=4,framerate=1/1"
#define AUDIO_CAPS "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved"
#define HIDDEN 16
#define WAIT (5 * GST_SECOND)

/* ---- the fake LLM ---- */

typedef struct
{
  gchar *prompt;
  gchar *system_prompt;
  gint n_media;
  guint64 ids[64];
  gint kinds[64];
} FakeCall;

static struct
{
  gint hidden, ctx;
  guint delay_ms;               /* per generation; aborts when asked */
  GMutex lock;
  GPtrArray *calls;             /* FakeCall */
  gint n_generated;
} fake;

static void
fake_call_free (FakeCall * c)
{
  g_free (c->prompt);
  g_free (c->system_prompt);
  g_free (c);
}

static gpointer
fake_load (const gchar * model, const gchar * device, GError ** error)
{
  if (strstr (model, "missing")) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "%s: No such file or directory", model);
    return NULL;
  }
  return &fake;
}

static void
fake_free (gpointer llm)
{
}

static const gchar *
fake_id (gpointer llm)
{
  return "fake-llm";
}

static gint
fake_hidden (gpointer llm)
{
  return fake.hidden;
}

static gint
fake_ctx (gpointer llm)
{
  return fake.ctx;
}

/* 4 template tokens, a token per 4 bytes of text, the media tokens. */
static gint
fake_count (gpointer llm, const MmLlmRequest * req, GError ** error)
{
  gint n = 4 + (gint) strlen (req->prompt) / 4, i;

  if (req->system_prompt)
    n += strlen (req->system_prompt) / 4;
  for (i = 0; i < req->n_media; i++)
    n += req->media[i].n_tokens;
  return n;
}

static gchar *
fake_generate (gpointer llm, const MmLlmRequest * req, MmLlmTokenFunc func,
    gpointer user_data, MmLlmStats * stats, GError ** error)
{
  FakeCall *call = g_new0 (FakeCall, 1);
  guint waited = 0;
  gint i, n;

  call->prompt = g_strdup (req->prompt);
  call->system_prompt = g_strdup (req->system_prompt);
  call->n_media = req->n_media;
  for (i = 0; i < req->n_media && i < 64; i++) {
    call->ids[i] = req->media[i].id;
    call->kinds[i] = req->media[i].kind;
    fail_unless (req->media[i].host != NULL);
    fail_unless_equals_int (req->media[i].dim, HIDDEN);
  }
  g_mutex_lock (&fake.lock);
  g_ptr_array_add (fake.calls, call);
  n = ++fake.n_generated;
  g_mutex_unlock (&fake.lock);

  do {
    if (!func (".", user_data)) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped");
      return NULL;
    }
    if (waited < fake.delay_ms)
      g_usleep (10 * 1000);
    waited += 10;
  } while (waited < fake.delay_ms);

  stats->prompt_tokens = fake_count (llm, req, NULL);
  stats->reused_tokens = 2;
  stats->generated_tokens = 5;
  stats->prefill_ms = 1.5;
  stats->decode_ms = 2.5;
  return g_strdup_printf (" caption %d: %s (%d samples)\n", n, req->prompt,
      req->n_media);
}

static const MmCaptionBackend fake_backend = {
  fake_load, fake_free, fake_id, fake_hidden, fake_ctx, NULL, fake_count,
  fake_generate,
};

static void
fake_reset (void)
{
  fake.hidden = HIDDEN;
  fake.ctx = 4096;
  fake.delay_ms = 0;
  g_mutex_init (&fake.lock);
  if (fake.calls)
    g_ptr_array_unref (fake.calls);
  fake.calls = g_ptr_array_new_with_free_func ((GDestroyNotify)
      fake_call_free);
  fake.n_generated = 0;
}

static guint
fake_n_calls (void)
{
  guint n;

  g_mutex_lock (&fake.lock);
  n = fake.calls->len;
  g_mutex_unlock (&fake.lock);
  return n;
}

static FakeCall *
fake_call (guint i)
{
  FakeCall *c;

  g_mutex_lock (&fake.lock);
  fail_unless (i < fake.calls->len, "only %u LLM calls", fake.calls->len);
  c = g_ptr_array_index (fake.calls, i);
  g_mutex_unlock (&fake.lock);
  return c;
}

/* ---- helpers ---- */

static GstElement *
new_sink (const gchar * first_prop, ...)
{
  GstElement *e = gst_element_factory_make ("mmllmsink", NULL);
  va_list args;

  fail_unless (e != NULL);
  gst_mm_llm_sink_set_backend (GST_MM_LLM_SINK (e), &fake_backend);
  g_object_set (e, "model", "fake.gguf", "sync", FALSE, "async", FALSE, NULL);
  if (first_prop) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (e), first_prop, args);
    va_end (args);
  }
  return gst_object_ref_sink (e);
}

/* The harness plays sinks when it is made; tests make them async=false
 * because gst_harness_play() refuses an ASYNC state change. */
static void
play (GstHarness * h)
{
  fail_unless_equals_int (gst_element_set_state (h->element,
          GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
}

/* Messages left on the bus hold the element: flush them first. */
static void
teardown (GstHarness * h, GstBus * bus)
{
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

/* A harness on a new video (or audio) pad of @e, with a bus; takes the
 * caller's reference on @e. */
static GstHarness *
new_harness (GstElement * e, gboolean video, GstBus ** bus)
{
  GstHarness *h = gst_harness_new_with_element (e,
      video ? "video_%u" : "audio_%u", NULL);

  gst_object_unref (e);

  gst_harness_set_src_caps_str (h, video ? VIDEO_CAPS : AUDIO_CAPS);
  *bus = gst_bus_new ();
  gst_element_set_bus (e, *bus);
  return h;
}

/* A buffer carrying a token meta of @n_tokens x @dim host floats. */
static GstBuffer *
token_buffer (GstClockTime pts, GstClockTime duration, guint n_tokens,
    guint dim, gboolean video)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  gfloat *data = g_new0 (gfloat, n_tokens * dim);
  GstMmTokens *tokens;

  gst_buffer_memset (buf, 0, 0x80, 16);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = duration;
  tokens = gst_mm_tokens_new_host (data, n_tokens, dim);
  gst_buffer_add_mm_tokens_meta (buf, video ? GST_MM_MODALITY_VIDEO :
      GST_MM_MODALITY_AUDIO, tokens, pts, duration,
      video ? "fake-vision" : "fake-audio");
  gst_mm_tokens_unref (tokens);
  g_free (data);
  return buf;
}

static GstBuffer *
frame (guint i)
{
  return token_buffer (i * GST_SECOND, GST_SECOND, 4, HIDDEN, TRUE);
}

/* Next `mm-caption` message (copied structure) or NULL after @timeout;
 * fails on an error message. */
static GstStructure *
next_caption (GstBus * bus, GstClockTime timeout)
{
  GstMessage *msg;

  while ((msg = gst_bus_timed_pop_filtered (bus, timeout,
              GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR))) {
    const GstStructure *s = gst_message_get_structure (msg);

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *err = NULL;

      gst_message_parse_error (msg, &err, NULL);
      fail ("unexpected error: %s", err->message);
    }
    if (gst_structure_has_name (s, "mm-caption")) {
      GstStructure *copy = gst_structure_copy (s);

      gst_message_unref (msg);
      return copy;
    }
    gst_message_unref (msg);
  }
  return NULL;
}

static void
assert_prompt (GstStructure * s, const gchar * prompt)
{
  fail_unless (s != NULL, "no caption");
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"), prompt);
}

/* Waits for a message of @type; returns it (unref it) or fails. */
static GstMessage *
wait_message (GstBus * bus, GstMessageType type)
{
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, WAIT, type);

  fail_unless (msg != NULL, "no %s message", gst_message_type_get_name (type));
  return msg;
}

static gchar *
temp_path (const gchar * name)
{
  gchar *dir = g_dir_make_tmp ("mmllmsink-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, name, NULL);

  g_free (dir);
  return path;
}

static void
remove_temp (gchar * path)
{
  gchar *dir = g_path_get_dirname (path);

  g_unlink (path);
  g_rmdir (dir);
  g_free (dir);
  g_free (path);
}

/* ---- the writers ---- */

static const MmCaption caption_a = {
  "A \"cat\"\non a mat\\ é", "Describe.", "m1", GST_SECOND,
  2500 * GST_MSECOND, 12 * GST_MSECOND, 30, 5, 2
};

GST_START_TEST (test_writer_jsonl)
{
  JsonParser *parser = json_parser_new ();
  gchar *line = mm_caption_format_entry (MM_CAPTION_FORMAT_JSONL, &caption_a,
      7);
  MmCaption none = { NULL, NULL, NULL, GST_CLOCK_TIME_NONE,
    GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, 0, 0, 0
  };
  JsonObject *o;
  GError *err = NULL;

  fail_unless (g_str_has_suffix (line, "}\n"));
  fail_unless (strchr (line, '\n') == line + strlen (line) - 1,
      "one line per caption: %s", line);
  fail_unless (json_parser_load_from_data (parser, line, -1, &err), "%s",
      err ? err->message : "");
  o = json_node_get_object (json_parser_get_root (parser));
  fail_unless_equals_int (json_object_get_int_member (o, "index"), 7);
  fail_unless_equals_string (json_object_get_string_member (o, "text"),
      caption_a.text);
  fail_unless_equals_string (json_object_get_string_member (o, "prompt"),
      "Describe.");
  fail_unless_equals_string (json_object_get_string_member (o, "model"), "m1");
  fail_unless_equals_float (json_object_get_double_member (o, "start"), 1.0);
  fail_unless_equals_float (json_object_get_double_member (o, "end"), 2.5);
  fail_unless_equals_float (json_object_get_double_member (o, "latency_ms"),
      12.0);
  fail_unless_equals_int (json_object_get_int_member (o, "prompt_tokens"), 30);
  fail_unless_equals_int (json_object_get_int_member (o, "generated_tokens"),
      5);
  fail_unless_equals_int (json_object_get_int_member (o, "reused_tokens"), 2);
  g_free (line);

  /* unknown values are null, never invalid JSON */
  line = mm_caption_format_entry (MM_CAPTION_FORMAT_JSONL, &none, 0);
  fail_unless (json_parser_load_from_data (parser, line, -1, NULL), "%s", line);
  o = json_node_get_object (json_parser_get_root (parser));
  fail_unless (json_object_get_null_member (o, "start"));
  fail_unless (json_object_get_null_member (o, "latency_ms"));
  fail_unless_equals_string (json_object_get_string_member (o, "text"), "");
  g_free (line);
  g_object_unref (parser);
}

GST_END_TEST;

GST_START_TEST (test_writer_webvtt)
{
  MmCaption c = caption_a;
  gchar *cue;

  fail_unless_equals_string (mm_caption_format_header
      (MM_CAPTION_FORMAT_WEBVTT), "WEBVTT\n\n");

  c.text = "  a <b> & c --> d\n\n\n  second line  \n";
  c.start = 3661 * GST_SECOND + 5 * GST_MSECOND;
  c.end = 3662 * GST_SECOND;
  cue = mm_caption_format_entry (MM_CAPTION_FORMAT_WEBVTT, &c, 0);
  fail_unless_equals_string (cue, "01:01:01.005 --> 01:01:02.000\n"
      "a &lt;b&gt; &amp; c --&gt; d\nsecond line\n\n");
  g_free (cue);

  /* an empty span still makes a visible cue; no text, no cue */
  c.text = "x";
  c.end = c.start;
  cue = mm_caption_format_entry (MM_CAPTION_FORMAT_WEBVTT, &c, 0);
  fail_unless_equals_string (cue, "01:01:01.005 --> 01:01:02.005\nx\n\n");
  g_free (cue);
  c.text = " \n ";
  fail_unless (mm_caption_format_entry (MM_CAPTION_FORMAT_WEBVTT, &c,
          0) == NULL);
}

GST_END_TEST;

GST_START_TEST (test_writer_srt)
{
  MmCaption c = caption_a;
  gchar *cue;

  fail_unless_equals_string (mm_caption_format_header (MM_CAPTION_FORMAT_SRT),
      "");
  c.text = "one\n\ntwo <i>";
  cue = mm_caption_format_entry (MM_CAPTION_FORMAT_SRT, &c, 41);
  fail_unless_equals_string (cue, "42\n00:00:01,000 --> 00:00:02,500\n"
      "one\ntwo <i>\n\n");
  g_free (cue);
}

GST_END_TEST;

GST_START_TEST (test_writer_format_by_extension)
{
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_AUTO,
          "/tmp/x.VTT"), MM_CAPTION_FORMAT_WEBVTT);
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_AUTO,
          "x.webvtt"), MM_CAPTION_FORMAT_WEBVTT);
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_AUTO,
          "a.b/x.srt"), MM_CAPTION_FORMAT_SRT);
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_AUTO,
          "x.jsonl"), MM_CAPTION_FORMAT_JSONL);
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_AUTO,
          "a.srt/x"), MM_CAPTION_FORMAT_JSONL);
  fail_unless_equals_int (mm_caption_format_resolve (MM_CAPTION_FORMAT_SRT,
          "x.vtt"), MM_CAPTION_FORMAT_SRT);
}

GST_END_TEST;

GST_START_TEST (test_writer_file)
{
  gchar *path = temp_path ("c.srt");
  MmCaptionWriter *w = mm_caption_writer_open (path, MM_CAPTION_FORMAT_AUTO,
      NULL);
  MmCaption c = caption_a;
  gchar *contents;
  GError *err = NULL;

  fail_unless (w != NULL);
  fail_unless_equals_int (mm_caption_writer_format (w), MM_CAPTION_FORMAT_SRT);
  c.text = "first";
  fail_unless (mm_caption_writer_write (w, &c, NULL));
  c.text = "";                  /* skipped: no cue number used */
  fail_unless (mm_caption_writer_write (w, &c, NULL));
  /* flushed: readable before close */
  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  fail_unless_equals_string (contents, "1\n00:00:01,000 --> 00:00:02,500\n"
      "first\n\n");
  g_free (contents);
  c.text = "second";
  fail_unless (mm_caption_writer_write (w, &c, NULL));
  mm_caption_writer_close (w);
  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  fail_unless (strstr (contents, "\n\n2\n00:00:01,000") != NULL, "%s",
      contents);
  g_free (contents);

  fail_unless (mm_caption_writer_open ("/nonexistent-dir/x.vtt",
          MM_CAPTION_FORMAT_AUTO, &err) == NULL);
  fail_unless (strstr (err->message, "/nonexistent-dir/x.vtt") != NULL);
  g_clear_error (&err);
  remove_temp (path);
}

GST_END_TEST;

/* A transcript: one entry, a cue per segment with the segment's times,
 * SRT numbers going on across entries, JSON with the segments. */
static const MmCaptionSegment transcript_segments[] = {
  {GST_SECOND, 2 * GST_SECOND, (gchar *) "Hello there."},
  {2 * GST_SECOND, 2 * GST_SECOND, (gchar *) "\x0f\x7f"},       /* nothing to show */
  {2500 * GST_MSECOND, 4 * GST_SECOND, (gchar *) "How are\tyou?"},
};

static MmCaption
transcript_caption (void)
{
  MmCaption c = { "Hello there. How are you?", NULL, "whisper-tiny",
    GST_SECOND, 4 * GST_SECOND, 30 * GST_MSECOND, 1503, 12, 0,
    transcript_segments, G_N_ELEMENTS (transcript_segments), "transcribe",
    "en"
  };
  return c;
}

GST_START_TEST (test_writer_transcript)
{
  MmCaption c = transcript_caption ();
  JsonParser *parser = json_parser_new ();
  JsonObject *o;
  JsonArray *segs;
  gchar *entry, *path, *contents;
  MmCaptionWriter *w;
  guint n_cues;

  entry = mm_caption_format_entry_full (MM_CAPTION_FORMAT_WEBVTT, &c, 0,
      &n_cues);
  fail_unless_equals_string (entry, "00:00:01.000 --> 00:00:02.000\n"
      "Hello there.\n\n00:00:02.500 --> 00:00:04.000\nHow are you?\n\n");
  fail_unless_equals_int (n_cues, 2);
  g_free (entry);

  entry = mm_caption_format_entry (MM_CAPTION_FORMAT_JSONL, &c, 3);
  fail_unless (json_parser_load_from_data (parser, entry, -1, NULL), "%s",
      entry);
  o = json_node_get_object (json_parser_get_root (parser));
  fail_unless_equals_int (json_object_get_int_member (o, "index"), 3);
  fail_unless (json_object_get_null_member (o, "prompt"));
  fail_unless_equals_string (json_object_get_string_member (o, "task"),
      "transcribe");
  fail_unless_equals_string (json_object_get_string_member (o, "language"),
      "en");
  segs = json_object_get_array_member (o, "segments");
  fail_unless_equals_int (json_array_get_length (segs), 3);
  o = json_array_get_object_element (segs, 2);
  fail_unless_equals_float (json_object_get_double_member (o, "start"), 2.5);
  fail_unless_equals_float (json_object_get_double_member (o, "end"), 4.0);
  fail_unless_equals_string (json_object_get_string_member (o, "text"),
      "How are\tyou?");
  g_free (entry);

  /* SRT numbers cues, not entries */
  path = temp_path ("t.srt");
  w = mm_caption_writer_open (path, MM_CAPTION_FORMAT_AUTO, NULL);
  fail_unless (mm_caption_writer_write (w, &c, NULL));
  fail_unless (mm_caption_writer_write (w, &c, NULL));
  mm_caption_writer_close (w);
  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  fail_unless (g_str_has_prefix (contents, "1\n00:00:01,000 --> "
          "00:00:02,000\nHello there.\n\n2\n00:00:02,500 --> 00:00:04,000\n"
          "How are you?\n\n3\n00:00:01,000"), "%s", contents);
  fail_unless (strstr (contents, "\n\n4\n00:00:02,500") != NULL, "%s",
      contents);
  g_free (contents);
  remove_temp (path);
  g_object_unref (parser);
}

GST_END_TEST;

/* print=true and the message: a line and a structure per segment */
GST_START_TEST (test_transcript_print_and_message)
{
  MmCaptionResult r = { (gchar *) "Hello there. How are you?", NULL,
    (gchar *) "whisper-tiny", GST_SECOND, 4 * GST_SECOND, 0,
  };
  GArray *segs = mm_caption_segments_new ();
  GstStructure *st;
  const GValue *v;
  FILE *f = tmpfile ();
  gchar buf[256];
  guint i;

  for (i = 0; i < G_N_ELEMENTS (transcript_segments); i++) {
    MmCaptionSegment seg = transcript_segments[i];

    seg.text = g_strdup (seg.text);
    g_array_append_val (segs, seg);
  }
  r.segments = segs;
  r.task = (gchar *) "transcribe";
  r.language = (gchar *) "en";
  mm_caption_result_print (&r, f);
  rewind (f);
  fail_unless (fgets (buf, sizeof (buf), f) != NULL);
  fail_unless_equals_string (buf,
      "[00:00:01.000 --> 00:00:02.000] Hello there.\n");
  fail_unless (fgets (buf, sizeof (buf), f) != NULL);
  fail_unless (fgets (buf, sizeof (buf), f) != NULL);
  fail_unless_equals_string (buf,
      "[00:00:02.500 --> 00:00:04.000] How are\tyou?\n");
  fclose (f);

  st = mm_caption_result_to_structure (&r);
  fail_unless_equals_string (gst_structure_get_string (st, "task"),
      "transcribe");
  fail_unless_equals_string (gst_structure_get_string (st, "language"), "en");
  v = gst_structure_get_value (st, "segments");
  fail_unless_equals_int (gst_value_array_get_size (v), 3);
  fail_unless_equals_string (gst_structure_get_string (gst_value_get_structure
          (gst_value_array_get_value (v, 2)), "text"), "How are\tyou?");
  gst_structure_free (st);
  g_array_unref (segs);
}

GST_END_TEST;

/* ---- the rolling context ---- */

/* A sample of @n tokens at [@pts, @pts + @dur), running time = PTS. */
static MmCaptionSample *
ctx_sample (GstClockTime pts, GstClockTime dur, guint n)
{
  GstBuffer *buf = token_buffer (pts, dur, n, HIDDEN, TRUE);
  MmCaptionSample *s = mm_caption_sample_new (gst_buffer_get_mm_tokens_meta
      (buf), pts, pts + dur, pts);

  gst_buffer_unref (buf);
  return s;
}

static void
assert_span (MmCaptionRequest * r, guint n_samples, GstClockTime start,
    GstClockTime end)
{
  fail_unless (r != NULL);
  fail_unless_equals_int (r->samples->len, n_samples);
  fail_unless_equals_uint64 (r->start, start);
  fail_unless_equals_uint64 (r->end, end);
  mm_caption_request_free (r);
}

GST_START_TEST (test_context_schedule_and_spans)
{
  MmCaptionContext *ctx = mm_caption_context_new ();
  GstClockTime iv = 2 * GST_SECOND;
  guint i;

  /* interval 2 s from the first sample: due at 2 s and 4 s */
  for (i = 0; i < 6; i++) {
    gboolean due = mm_caption_context_due (ctx, i * GST_SECOND, iv);

    fail_unless_equals_int (due, i == 2 || i == 4);
    fail_unless (mm_caption_context_add (ctx, ctx_sample (i * GST_SECOND,
                GST_SECOND, 4), 100));
    if (due)
      fail_unless_equals_int (mm_caption_context_push_request (ctx, 8,
              FALSE, 0), 0);
  }
  assert_span (mm_caption_context_pop_request (ctx), 3, 0, 3 * GST_SECOND);
  /* the next span starts where the previous ended */
  assert_span (mm_caption_context_pop_request (ctx), 5, 3 * GST_SECOND,
      5 * GST_SECOND);
  fail_unless (mm_caption_context_has_new (ctx));
  mm_caption_context_push_request (ctx, 8, FALSE, 0);
  assert_span (mm_caption_context_pop_request (ctx), 6, 5 * GST_SECOND,
      6 * GST_SECOND);

  /* nothing new (a prompt change): the whole context */
  fail_unless (!mm_caption_context_has_new (ctx));
  mm_caption_context_push_request (ctx, 8, FALSE, 0);
  assert_span (mm_caption_context_pop_request (ctx), 6, 0, 6 * GST_SECOND);
  fail_unless (mm_caption_context_pop_request (ctx) == NULL);

  /* clear restarts the schedule and the spans */
  mm_caption_context_clear (ctx);
  fail_unless (mm_caption_context_is_empty (ctx));
  fail_unless (!mm_caption_context_due (ctx, 10 * GST_SECOND, iv));
  mm_caption_context_add (ctx, ctx_sample (10 * GST_SECOND, GST_SECOND, 4),
      100);
  mm_caption_context_push_request (ctx, 8, FALSE, 0);
  assert_span (mm_caption_context_pop_request (ctx), 1, 10 * GST_SECOND,
      11 * GST_SECOND);
  mm_caption_context_free (ctx);
}

GST_END_TEST;

GST_START_TEST (test_context_leaky_queue)
{
  MmCaptionContext *ctx = mm_caption_context_new ();
  guint i, dropped = 0;

  for (i = 0; i < 4; i++) {
    mm_caption_context_add (ctx, ctx_sample (i * GST_SECOND, GST_SECOND, 4),
        100);
    dropped += mm_caption_context_push_request (ctx, 2, TRUE, 7);
  }
  /* two dropped; the oldest kept request took over their spans */
  fail_unless_equals_int (dropped, 2);
  fail_unless_equals_int (mm_caption_context_n_pending (ctx), 2);
  assert_span (mm_caption_context_pop_request (ctx), 3, 0, 3 * GST_SECOND);
  {
    MmCaptionRequest *r = mm_caption_context_pop_request (ctx);

    fail_unless_equals_int (r->epoch, 7);
    assert_span (r, 4, 3 * GST_SECOND, 4 * GST_SECOND);
  }

  /* not leaky: nothing is dropped */
  for (i = 0; i < 3; i++)
    fail_unless_equals_int (mm_caption_context_push_request (ctx, 1, FALSE,
            0), 0);
  fail_unless_equals_int (mm_caption_context_n_pending (ctx), 3);
  mm_caption_context_drop_pending (ctx);
  fail_unless_equals_int (mm_caption_context_n_pending (ctx), 0);
  mm_caption_context_free (ctx);
}

GST_END_TEST;

GST_START_TEST (test_context_order_and_budget)
{
  MmCaptionContext *ctx = mm_caption_context_new ();
  MmCaptionRequest *r;
  MmCaptionSample *late;

  mm_caption_context_add (ctx, ctx_sample (0, GST_SECOND, 4), 10);
  mm_caption_context_add (ctx, ctx_sample (2 * GST_SECOND, GST_SECOND, 4), 10);
  /* arrives late but belongs in between */
  late = ctx_sample (GST_SECOND, GST_SECOND, 2);
  mm_caption_context_add (ctx, late, 10);
  fail_unless_equals_int (mm_caption_context_tokens (ctx), 10);
  mm_caption_context_push_request (ctx, 1, TRUE, 0);
  r = mm_caption_context_pop_request (ctx);
  fail_unless_equals_uint64 (((MmCaptionSample *)
          g_ptr_array_index (r->samples, 1))->pts, GST_SECOND);
  mm_caption_request_free (r);

  /* over the budget: the oldest (by running time) goes */
  mm_caption_context_add (ctx, ctx_sample (3 * GST_SECOND, GST_SECOND, 4), 10);
  fail_unless_equals_int (mm_caption_context_tokens (ctx), 10);
  mm_caption_context_push_request (ctx, 1, TRUE, 0);
  r = mm_caption_context_pop_request (ctx);
  fail_unless_equals_int (r->samples->len, 3);
  fail_unless_equals_uint64 (((MmCaptionSample *)
          g_ptr_array_index (r->samples, 0))->pts, GST_SECOND);
  mm_caption_request_free (r);

  /* a sample over the whole budget is refused */
  fail_unless (!mm_caption_context_add (ctx, ctx_sample (4 * GST_SECOND,
              GST_SECOND, 11), 10));
  mm_caption_context_free (ctx);
}

GST_END_TEST;

/* ---- the element ---- */

GST_START_TEST (test_bus_message)
{
  GstElement *e = new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;
  guint64 start, end, latency;
  gint pt, gt, rt;
  guint i;

  play (h);
  for (i = 0; i < 3; i++)
    fail_unless_equals_int (gst_harness_push (h, frame (i)), GST_FLOW_OK);

  for (i = 0; i < 3; i++) {
    gchar *text = g_strdup_printf ("caption %u: Describe what is happening. "
        "(%u samples)", i + 1, i + 1);

    s = next_caption (bus, WAIT);
    fail_unless (s != NULL, "caption %u missing", i);
    fail_unless_equals_string (gst_structure_get_string (s, "text"), text);
    assert_prompt (s, "Describe what is happening.");
    fail_unless_equals_string (gst_structure_get_string (s, "model"),
        "fake-llm");
    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    fail_unless (gst_structure_get_uint64 (s, "end", &end));
    fail_unless (gst_structure_get_uint64 (s, "latency", &latency));
    /* spans tile the stream: [0,1], [1,2], [2,3] */
    fail_unless_equals_uint64 (start, i * GST_SECOND);
    fail_unless_equals_uint64 (end, (i + 1) * GST_SECOND);
    fail_unless (latency < 5 * GST_SECOND);
    fail_unless (gst_structure_get_int (s, "prompt-tokens", &pt));
    fail_unless (gst_structure_get_int (s, "generated-tokens", &gt));
    fail_unless (gst_structure_get_int (s, "reused-tokens", &rt));
    fail_unless_equals_int (pt, 4 + 27 / 4 + 4 * (i + 1));
    fail_unless_equals_int (gt, 5);
    fail_unless_equals_int (rt, 2);
    gst_structure_free (s);
    g_free (text);
  }
  {
    guint64 n;
    gchar *last;

    g_object_get (e, "captions", &n, "last-caption", &last, NULL);
    fail_unless_equals_uint64 (n, 3);
    fail_unless (g_str_has_prefix (last, "caption 3"));
    g_free (last);
  }

  teardown (h, bus);
}

GST_END_TEST;

typedef struct
{
  GMutex lock;
  GPtrArray *texts;
  GArray *starts, *ends;
} SignalLog;

static void
on_caption (GstElement * e, const gchar * text, guint64 start, guint64 end,
    SignalLog * log)
{
  g_mutex_lock (&log->lock);
  g_ptr_array_add (log->texts, g_strdup (text));
  g_array_append_val (log->starts, start);
  g_array_append_val (log->ends, end);
  g_mutex_unlock (&log->lock);
}

GST_START_TEST (test_signal)
{
  GstElement *e = new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, NULL);
  SignalLog log = { 0, };
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  guint i;

  g_mutex_init (&log.lock);
  log.texts = g_ptr_array_new_with_free_func (g_free);
  log.starts = g_array_new (FALSE, FALSE, sizeof (guint64));
  log.ends = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_signal_connect (e, "caption", G_CALLBACK (on_caption), &log);

  play (h);
  for (i = 0; i < 2; i++)
    gst_harness_push (h, frame (i + 10));
  /* the signal comes before the message */
  for (i = 0; i < 2; i++)
    gst_structure_free (next_caption (bus, WAIT));

  g_mutex_lock (&log.lock);
  fail_unless_equals_int (log.texts->len, 2);
  fail_unless (g_str_has_prefix (g_ptr_array_index (log.texts, 1),
          "caption 2: "));
  fail_unless_equals_uint64 (g_array_index (log.starts, guint64, 0),
      10 * GST_SECOND);
  fail_unless_equals_uint64 (g_array_index (log.ends, guint64, 1),
      12 * GST_SECOND);
  g_mutex_unlock (&log.lock);

  teardown (h, bus);
  g_ptr_array_unref (log.texts);
  g_array_unref (log.starts);
  g_array_unref (log.ends);
}

GST_END_TEST;

/* Runs appsrc ! mmllmsink (gst_parse_launch) with @n frames 1 s apart, to
 * EOS, and returns the file. */
static gchar *
run_to_file (const gchar * name, const gchar * props, guint n)
{
  gchar *path = temp_path (name);
  gchar *desc = g_strdup_printf ("appsrc name=src format=time caps=\""
      VIDEO_CAPS "\" ! mmllmsink name=sink model=fake.gguf sync=false "
      "leaky=no location=\"%s\" %s", path, props);
  GstElement *pipeline, *sink, *src;
  GstMessage *msg;
  GstFlowReturn ret;
  GstBus *bus;
  gchar *contents;
  guint i;

  pipeline = gst_parse_launch (desc, NULL);
  fail_unless (pipeline != NULL, "%s", desc);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  gst_mm_llm_sink_set_backend (GST_MM_LLM_SINK (sink), &fake_backend);

  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  for (i = 0; i < n; i++) {
    GstBuffer *buf = frame (i);

    g_signal_emit_by_name (src, "push-buffer", buf, &ret);
    fail_unless_equals_int (ret, GST_FLOW_OK);
    gst_buffer_unref (buf);
  }
  g_signal_emit_by_name (src, "end-of-stream", &ret);

  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, WAIT,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  remove_temp (path);
  gst_object_unref (bus);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_free (desc);
  return contents;
}

/* leaky=auto with appsrc (not live) waits for the LLM: every sample is
 * captioned even when the LLM is slower than the stream. */
GST_START_TEST (test_jsonl_file)
{
  gchar *contents;

  fake.delay_ms = 50;
  contents = run_to_file ("c.jsonl", "leaky=auto", 4);
  gchar **lines = g_strsplit (contents, "\n", -1);
  JsonParser *parser = json_parser_new ();
  guint i;

  fail_unless_equals_int (g_strv_length (lines), 5);    /* 4 + "" */
  fail_unless_equals_string (lines[4], "");
  for (i = 0; i < 4; i++) {
    JsonObject *o;
    GError *err = NULL;

    fail_unless (json_parser_load_from_data (parser, lines[i], -1, &err),
        "line %u: %s", i, err ? err->message : "");
    o = json_node_get_object (json_parser_get_root (parser));
    fail_unless (o != NULL);
    fail_unless_equals_int (json_object_get_int_member (o, "index"), i);
    fail_unless_equals_float (json_object_get_double_member (o, "start"), i);
    fail_unless_equals_float (json_object_get_double_member (o, "end"), i + 1);
    fail_unless (g_str_has_prefix (json_object_get_string_member (o, "text"),
            "caption "));
    fail_unless_equals_string (json_object_get_string_member (o, "model"),
        "fake-llm");
  }
  g_object_unref (parser);
  g_strfreev (lines);
  g_free (contents);
}

GST_END_TEST;

/* interval=2 over samples at 0..5 s: requests at 2 s and 4 s, and the
 * rest at EOS; the cues tile the stream. */
GST_START_TEST (test_webvtt_file)
{
  gchar *contents = run_to_file ("c.vtt", "interval=2", 6);

  fail_unless_equals_string (contents, "WEBVTT\n\n"
      "00:00:00.000 --> 00:00:03.000\n"
      "caption 1: Describe what is happening. (3 samples)\n\n"
      "00:00:03.000 --> 00:00:05.000\n"
      "caption 2: Describe what is happening. (5 samples)\n\n"
      "00:00:05.000 --> 00:00:06.000\n"
      "caption 3: Describe what is happening. (6 samples)\n\n");
  g_free (contents);
}

GST_END_TEST;

GST_START_TEST (test_srt_file)
{
  gchar *contents = run_to_file ("c.txt", "interval=2 format=srt "
      "prompt=\"What now?\"", 5);

  fail_unless_equals_string (contents,
      "1\n00:00:00,000 --> 00:00:03,000\ncaption 1: What now? (3 samples)\n\n"
      "2\n00:00:03,000 --> 00:00:05,000\ncaption 2: What now? (5 samples)\n\n");
  g_free (contents);
}

GST_END_TEST;

GST_START_TEST (test_prompt_property)
{
  GstElement *e = new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;

  play (h);
  gst_harness_push (h, frame (0));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Describe what is happening.");
  gst_structure_free (s);

  /* a change answers right away over the current context ... */
  g_object_set (e, "prompt", "How many people?", NULL);
  s = next_caption (bus, WAIT);
  assert_prompt (s, "How many people?");
  fail_unless (strstr (gst_structure_get_string (s, "text"),
          "How many people?") != NULL);
  gst_structure_free (s);

  /* ... and sticks for the next samples */
  gst_harness_push (h, frame (1));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "How many people?");
  gst_structure_free (s);

  g_object_set (e, "system-prompt", "Be brief.", NULL);
  s = next_caption (bus, WAIT);
  fail_unless (s != NULL);
  gst_structure_free (s);
  fail_unless_equals_string (fake_call (3)->system_prompt, "Be brief.");

  teardown (h, bus);
}

GST_END_TEST;

static GstEvent *
prompt_event (GstEventType type, const gchar * prompt)
{
  return gst_event_new_custom (type, gst_structure_new ("mm-prompt",
          "prompt", G_TYPE_STRING, prompt, NULL));
}

GST_START_TEST (test_prompt_event)
{
  GstElement *e = new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;
  gchar *prompt;

  play (h);
  gst_harness_push (h, frame (0));
  gst_structure_free (next_caption (bus, WAIT));

  /* serialized, in stream order */
  fail_unless (gst_harness_push_event (h,
          prompt_event (GST_EVENT_CUSTOM_DOWNSTREAM, "Is it raining?")));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Is it raining?");
  gst_structure_free (s);
  g_object_get (e, "prompt", &prompt, NULL);
  fail_unless_equals_string (prompt, "Is it raining?");
  g_free (prompt);
  gst_harness_push (h, frame (1));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Is it raining?");
  gst_structure_free (s);

  /* out of band, into the pad */
  fail_unless (gst_harness_push_event (h,
          prompt_event (GST_EVENT_CUSTOM_DOWNSTREAM_OOB, "Any dogs?")));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Any dogs?");
  gst_structure_free (s);

  /* upstream, sent to the element (as a pipeline does for its sinks) */
  fail_unless (gst_element_send_event (e,
          prompt_event (GST_EVENT_CUSTOM_UPSTREAM, "Which colour?")));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Which colour?");
  gst_structure_free (s);

  teardown (h, bus);
}

GST_END_TEST;

/* The pipeline hands an upstream event to its sinks, so an application
 * can send the question to the whole pipeline. */
GST_START_TEST (test_prompt_event_to_pipeline)
{
  GstElement *pipeline = gst_parse_launch ("appsrc name=src format=time "
      "caps=\"" VIDEO_CAPS "\" ! mmllmsink name=sink model=fake.gguf "
      "sync=false leaky=no", NULL);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstBus *bus = gst_element_get_bus (pipeline);
  GstBuffer *buf = frame (0);
  GstFlowReturn ret;
  GstStructure *s;

  gst_mm_llm_sink_set_backend (GST_MM_LLM_SINK (sink), &fake_backend);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_signal_emit_by_name (src, "push-buffer", buf, &ret);
  gst_buffer_unref (buf);
  gst_structure_free (next_caption (bus, WAIT));

  fail_unless (gst_element_send_event (pipeline,
          prompt_event (GST_EVENT_CUSTOM_UPSTREAM, "Who is there?")));
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Who is there?");
  gst_structure_free (s);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

/* context-tokens=10 holds two samples of 4 tokens: the oldest go first. */
GST_START_TEST (test_context_eviction)
{
  GstElement *e =
      new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, "context-tokens", 10, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstMessage *msg;
  GstStructure *s;
  FakeCall *c;
  guint i;

  play (h);
  for (i = 0; i < 4; i++) {
    gst_harness_push (h, frame (i));
    s = next_caption (bus, WAIT);
    fail_unless (s != NULL);
    gst_structure_free (s);
  }
  fail_unless_equals_int (fake_call (0)->n_media, 1);
  fail_unless_equals_int (fake_call (1)->n_media, 2);
  c = fake_call (3);
  fail_unless_equals_int (c->n_media, 2);
  fail_unless_equals_uint64 (c->ids[0], 2);
  fail_unless_equals_uint64 (c->ids[1], 3);
  fail_unless_equals_int (c->kinds[0], MM_MEDIA_IMAGE);

  /* a sample larger than the whole budget is skipped with a warning */
  gst_harness_push (h, token_buffer (5 * GST_SECOND, GST_SECOND, 11, HIDDEN,
          TRUE));
  msg = wait_message (bus, GST_MESSAGE_WARNING);
  gst_message_unref (msg);
  gst_harness_push (h, frame (6));
  s = next_caption (bus, WAIT);
  fail_unless (s != NULL);
  gst_structure_free (s);
  c = fake_call (4);
  fail_unless_equals_int (c->n_media, 2);
  fail_unless_equals_uint64 (c->ids[0], 3);
  fail_unless_equals_uint64 (c->ids[1], 4);

  teardown (h, bus);
}

GST_END_TEST;

/* The LLM's own context: the oldest media are left out of a request until
 * prompt and answer fit; a prompt that alone does not fit is refused. */
GST_START_TEST (test_prompt_too_long)
{
  GstElement *e =
      new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, "max-tokens", 8, NULL);
  gchar *long_prompt = g_strnfill (400, 'x');
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  GstStructure *s;
  GError *err = NULL;
  gchar *dbg = NULL;

  fake.ctx = 32;                /* 4 + 6 (prompt) + 8 (answer): 3 samples */
  h = new_harness (e, TRUE, &bus);
  play (h);
  gst_harness_push (h, frame (0));
  gst_harness_push (h, frame (1));
  gst_harness_push (h, frame (2));
  gst_harness_push (h, frame (3));
  gst_harness_push (h, frame (4));
  while ((s = next_caption (bus, GST_SECOND / 2)))
    gst_structure_free (s);
  fail_unless_equals_int (fake_call (4)->n_media, 3);
  fail_unless_equals_uint64 (fake_call (4)->ids[0], 2);

  g_object_set (e, "prompt", long_prompt, NULL);
  msg = wait_message (bus, GST_MESSAGE_WARNING);
  gst_message_parse_warning (msg, &err, &dbg);
  fail_unless (strstr (err->message, "does not fit the context") != NULL,
      "%s", err->message);
  fail_unless (strstr (err->message, "fake-llm") != NULL);
  fail_unless (strstr (dbg, long_prompt) != NULL);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (msg);
  gst_harness_push (h, frame (5));
  fail_unless (next_caption (bus, GST_SECOND / 2) == NULL);
  /* warned once only */
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);

  g_object_set (e, "prompt", "Short?", NULL);
  s = next_caption (bus, WAIT);
  assert_prompt (s, "Short?");
  gst_structure_free (s);

  g_free (long_prompt);
  teardown (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_dim_mismatch)
{
  GstElement *e = new_sink (NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstMessage *msg;
  GError *err = NULL;

  play (h);
  fail_unless_equals_int (gst_harness_push (h, token_buffer (0, GST_SECOND,
              4, 8, TRUE)), GST_FLOW_ERROR);
  msg = wait_message (bus, GST_MESSAGE_ERROR);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_STREAM_ERROR,
          GST_STREAM_ERROR_FORMAT));
  fail_unless (strstr (err->message, "dimension 8") != NULL, "%s",
      err->message);
  fail_unless (strstr (err->message, "hidden size is 16") != NULL);
  fail_unless (strstr (err->message, "\"fake-vision\"") != NULL);
  fail_unless (strstr (err->message, "\"fake-llm\"") != NULL);
  g_clear_error (&err);
  gst_message_unref (msg);
  /* the stream stays stopped */
  fail_unless_equals_int (gst_harness_push (h, frame (1)), GST_FLOW_ERROR);
  fail_unless_equals_int (fake.calls->len, 0);

  teardown (h, bus);
}

GST_END_TEST;

/* Starts @e alone with a bus; returns the error message text. */
static gchar *
start_error (GstElement * e, GQuark domain, gint code)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  GstPad *pad;
  gchar *text;

  gst_element_set_bus (e, bus);
  pad = gst_element_request_pad_simple (e, "video_%u");
  fail_unless (pad != NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = wait_message (bus, GST_MESSAGE_ERROR);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, domain, code), "%s", err->message);
  text = g_strdup (err->message);
  g_clear_error (&err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_release_request_pad (e, pad);
  gst_object_unref (pad);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  return text;
}

GST_START_TEST (test_missing_model)
{
  GstElement *e = new_sink ("model", NULL, NULL);
  gchar *text;

  text = start_error (e, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND);
  fail_unless (strstr (text, "\"model\"") != NULL, "%s", text);
  g_free (text);

  g_object_set (e, "model", "/no/such/missing.gguf", "device", "cpu", NULL);
  text = start_error (e, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ);
  fail_unless (strstr (text, "/no/such/missing.gguf") != NULL, "%s", text);
  fail_unless (strstr (text, "\"cpu\"") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (e);
}

GST_END_TEST;

/* The shipped backend (mm_llm) on a file that does not exist: an error
 * that names it, whether or not an OpenCL device is present. */
GST_START_TEST (test_missing_model_file)
{
  GstElement *e = gst_element_factory_make ("mmllmsink", NULL);
  gchar *text;

  g_object_set (e, "model", "/no/such/dir/llm.gguf", NULL);
  text = start_error (e, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ);
  fail_unless (strstr (text, "/no/such/dir/llm.gguf") != NULL, "%s", text);
  fail_unless (strstr (text, "auto") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_bad_location)
{
  GstElement *e = new_sink ("location", "/nonexistent-dir/c.vtt", NULL);
  gchar *text;

  text = start_error (e, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_WRITE);
  fail_unless (strstr (text, "/nonexistent-dir/c.vtt") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (e);
}

GST_END_TEST;

/* EOS waits for the pending generation, and its caption is posted before
 * EOS. */
GST_START_TEST (test_eos_finishes_pending)
{
  GstElement *e = new_sink (NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstMessage *msg;
  gboolean saw_caption = FALSE;

  fake.delay_ms = 300;
  play (h);
  gst_harness_push (h, frame (0));
  gst_harness_push_event (h, gst_event_new_eos ());

  while ((msg = gst_bus_timed_pop_filtered (bus, WAIT,
              GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS))) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      break;
    }
    saw_caption = TRUE;
    gst_message_unref (msg);
  }
  fail_unless (msg != NULL, "no EOS");
  fail_unless (saw_caption, "EOS before the pending caption");

  teardown (h, bus);
}

GST_END_TEST;

/* ... but no longer than eos-timeout. */
GST_START_TEST (test_eos_timeout)
{
  GstElement *e = new_sink ("eos-timeout", 1, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstMessage *msg;
  gint64 t0;

  fake.delay_ms = 20000;
  play (h);
  gst_harness_push (h, frame (0));
  t0 = g_get_monotonic_time ();
  gst_harness_push_event (h, gst_event_new_eos ());
  msg = wait_message (bus, GST_MESSAGE_WARNING);
  gst_message_unref (msg);
  msg = wait_message (bus, GST_MESSAGE_EOS);
  gst_message_unref (msg);
  fail_unless (g_get_monotonic_time () - t0 < 4 * G_TIME_SPAN_SECOND);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT) == NULL);

  teardown (h, bus);
}

GST_END_TEST;

/* A flush drops the pending request, stops the running one and clears the
 * context. */
GST_START_TEST (test_flush)
{
  GstElement *e = new_sink ("max-pending", 4, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;
  GstSegment seg;

  fake.delay_ms = 20000;
  play (h);
  gst_harness_push (h, frame (0));
  while (fake_n_calls () == 0)
    g_usleep (1000);
  gst_harness_push (h, frame (1));
  gst_harness_push (h, frame (2));
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&seg));
  fail_unless (next_caption (bus, GST_SECOND / 2) == NULL);
  fail_unless_equals_int (fake_n_calls (), 1);  /* the one running */

  fake.delay_ms = 0;
  gst_harness_push (h, frame (7));
  s = next_caption (bus, WAIT);
  fail_unless (s != NULL);
  gst_structure_free (s);
  fail_unless_equals_int (fake_call (1)->n_media, 1);

  teardown (h, bus);
}

GST_END_TEST;

/* Live: the stream never waits; a full queue drops its oldest request and
 * the spans stay contiguous. */
GST_START_TEST (test_leaky_queue)
{
  GstElement *e = new_sink (NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;
  guint64 dropped, start, end, prev_end = 0;
  gint64 t0;
  guint i, n = 0;

  fake.delay_ms = 200;
  play (h);
  t0 = g_get_monotonic_time ();
  for (i = 0; i < 6; i++)
    fail_unless_equals_int (gst_harness_push (h, frame (i)), GST_FLOW_OK);
  fail_unless (g_get_monotonic_time () - t0 < 150 * G_TIME_SPAN_MILLISECOND,
      "the streaming thread waited");
  while ((s = next_caption (bus, GST_SECOND))) {
    gst_structure_get_uint64 (s, "start", &start);
    gst_structure_get_uint64 (s, "end", &end);
    fail_unless_equals_uint64 (start, prev_end);
    prev_end = end;
    n++;
    gst_structure_free (s);
  }
  fail_unless_equals_uint64 (prev_end, 6 * GST_SECOND);
  g_object_get (e, "dropped", &dropped, NULL);
  fail_unless (dropped > 0);
  fail_unless_equals_int (n + dropped, 6);

  teardown (h, bus);
}

GST_END_TEST;

/* leaky=auto with a source that is not live: the stream waits, nothing is
 * dropped. */
GST_START_TEST (test_auto_not_live)
{
  GstElement *e = new_sink (NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstStructure *s;
  guint64 dropped;
  guint i, n = 0;

  gst_harness_set_live (h, FALSE);
  fake.delay_ms = 50;
  play (h);
  for (i = 0; i < 6; i++)
    fail_unless_equals_int (gst_harness_push (h, frame (i)), GST_FLOW_OK);
  while ((s = next_caption (bus, GST_SECOND))) {
    n++;
    gst_structure_free (s);
  }
  g_object_get (e, "dropped", &dropped, NULL);
  fail_unless_equals_uint64 (dropped, 0);
  fail_unless_equals_int (n, 6);

  teardown (h, bus);
}

GST_END_TEST;

typedef struct
{
  GMutex lock;
  guint frames, with_meta;
  gchar *last_text;
} HandoffLog;

static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, HandoffLog * log)
{
  GstMmCaptionMeta *m = gst_buffer_get_mm_caption_meta (buf);

  g_mutex_lock (&log->lock);
  log->frames++;
  if (m) {
    log->with_meta++;
    g_free (log->last_text);
    log->last_text = g_strdup (m->text);
    fail_unless (GST_CLOCK_TIME_IS_VALID (m->start));
    fail_unless_equals_string (m->model_id, "fake-llm");
    fail_unless (m->generated_tokens == 5);
  }
  g_mutex_unlock (&log->lock);
}

/* Frames continue to video-sink carrying the current caption, through
 * textoverlay when overlay=true. */
static void
check_video_sink (gboolean overlay)
{
  GstElement *vsink = gst_element_factory_make ("fakesink", "vsink");
  GstElement *e =
      new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, "video-sink", vsink,
      "overlay", overlay, NULL);
  HandoffLog log = { 0, };
  GstBus *bus;
  GstHarness *h;
  GstStructure *s;
  guint i;

  g_mutex_init (&log.lock);
  /* slow enough that a frame leaves before its own caption exists */
  fake.delay_ms = 100;
  g_object_set (vsink, "signal-handoffs", TRUE, "sync", FALSE, "async", FALSE,
      NULL);
  g_signal_connect (vsink, "handoff", G_CALLBACK (on_handoff), &log);
  h = gst_harness_new_with_element (e, "video_%u", NULL);
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=64,"
      "height=48,framerate=1/1");
  bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  play (h);

  for (i = 0; i < 3; i++) {
    GstBuffer *buf = token_buffer (i * GST_SECOND, GST_SECOND, 4, HIDDEN,
        TRUE);

    gst_buffer_set_size (buf, 0);
    buf = gst_buffer_append (buf, gst_buffer_new_allocate (NULL,
            64 * 48 * 3 / 2, NULL));
    gst_buffer_memset (buf, 0, 0x80, 64 * 48 * 3 / 2);
    gst_harness_push (h, buf);
    s = next_caption (bus, WAIT);
    fail_unless (s != NULL);
    gst_structure_free (s);
  }

  g_mutex_lock (&log.lock);
  fail_unless_equals_int (log.frames, 3);
  fail_unless_equals_int (log.with_meta, 2);    /* not the first frame */
  fail_unless (g_str_has_prefix (log.last_text, "caption 2"));
  g_free (log.last_text);
  g_mutex_unlock (&log.lock);

  if (overlay) {
    GstIterator *it = gst_bin_iterate_elements (GST_BIN (e));
    GValue v = G_VALUE_INIT;
    gboolean found = FALSE;

    while (gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
      GstElement *child = g_value_get_object (&v);
      GstElementFactory *f = gst_element_get_factory (child);

      if (f && g_str_equal (GST_OBJECT_NAME (f), "textoverlay")) {
        gchar *text;

        g_object_get (child, "text", &text, NULL);
        fail_unless (g_str_has_prefix (text, "caption 3"), "%s", text);
        g_free (text);
        found = TRUE;
      }
      g_value_reset (&v);
    }
    gst_iterator_free (it);
    fail_unless (found);
  }

  teardown (h, bus);
}

GST_START_TEST (test_video_sink_meta)
{
  check_video_sink (FALSE);
}

GST_END_TEST;

GST_START_TEST (test_video_sink_overlay)
{
  GstElementFactory *f = gst_element_factory_find ("textoverlay");

  if (f == NULL) {
    g_print ("SKIP: textoverlay not available\n");
    return;
  }
  gst_object_unref (f);
  check_video_sink (TRUE);
}

GST_END_TEST;

/* Video and audio: one context in running-time order; EOS when both end. */
GST_START_TEST (test_video_and_audio)
{
  GstElement *e =
      new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, "interval", 10.0, NULL);
  GstBus *bus;
  GstHarness *hv = new_harness (e, TRUE, &bus);
  GstHarness *ha = gst_harness_new_with_element (e, "audio_%u", NULL);
  GstStructure *s;
  GstMessage *msg;
  FakeCall *c;

  gst_harness_set_src_caps_str (ha, AUDIO_CAPS);
  play (hv);
  play (ha);
  gst_harness_push (hv, frame (0));
  gst_harness_push (ha, token_buffer (0, 2 * GST_SECOND, 3, HIDDEN, FALSE));
  gst_harness_push (hv, frame (1));
  gst_harness_push (ha, token_buffer (GST_SECOND / 2, GST_SECOND, 3, HIDDEN,
          FALSE));

  gst_harness_push_event (hv, gst_event_new_eos ());
  fail_unless (next_caption (bus, GST_SECOND / 4) == NULL);
  gst_harness_push_event (ha, gst_event_new_eos ());
  s = next_caption (bus, WAIT);
  fail_unless (s != NULL);
  gst_structure_free (s);
  msg = wait_message (bus, GST_MESSAGE_EOS);
  gst_message_unref (msg);

  c = fake_call (0);
  fail_unless_equals_int (c->n_media, 4);
  fail_unless_equals_int (c->kinds[0], MM_MEDIA_IMAGE); /* 0 s */
  fail_unless_equals_int (c->kinds[1], MM_MEDIA_AUDIO); /* 0 s */
  fail_unless_equals_int (c->kinds[2], MM_MEDIA_AUDIO); /* 0.5 s */
  fail_unless_equals_int (c->kinds[3], MM_MEDIA_IMAGE); /* 1 s */

  gst_harness_teardown (ha);
  teardown (hv, bus);
}

GST_END_TEST;

GST_START_TEST (test_latency_query)
{
  GstElement *e = new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, NULL);
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  GstQuery *q = gst_query_new_latency ();
  GstClockTime min, max;
  gboolean live;

  play (h);
  gst_harness_push (h, frame (0));
  gst_structure_free (next_caption (bus, WAIT));
  fail_unless (gst_element_query (e, q));
  gst_query_parse_latency (q, &live, &min, &max);
  fail_unless_equals_uint64 (min, 0);
  gst_query_unref (q);

  teardown (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_print)
{
  GstElement *e =
      new_sink ("leaky", GST_MM_LLM_SINK_LEAKY_NO, "print", TRUE, NULL);
  gchar *path = temp_path ("stdout.txt");
  GstBus *bus;
  GstHarness *h = new_harness (e, TRUE, &bus);
  gchar *contents;
  int saved = dup (STDOUT_FILENO);
  FILE *f = fopen (path, "w");

  fflush (stdout);
  dup2 (fileno (f), STDOUT_FILENO);
  play (h);
  gst_harness_push (h, frame (3));
  gst_structure_free (next_caption (bus, WAIT));
  fflush (stdout);
  dup2 (saved, STDOUT_FILENO);
  close (saved);
  fclose (f);

  fail_unless (g_file_get_contents (path, &contents, NULL, NULL));
  fail_unless_equals_string (contents, "[00:00:03.000 --> 00:00:04.000] "
      "caption 1: Describe what is happening. (1 samples)\n");
  g_free (contents);
  remove_temp (path);
  teardown (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_caption_meta_copy)
{
  GstBuffer *buf = gst_buffer_new (), *copy;
  GstMmCaptionMeta *m;

  gst_buffer_add_mm_caption_meta (buf, "text", "prompt", 1, 2, 3, 4, 5,
      "model");
  copy = gst_buffer_copy (buf);
  gst_buffer_unref (buf);
  m = gst_buffer_get_mm_caption_meta (copy);
  fail_unless (m != NULL);
  fail_unless_equals_string (m->text, "text");
  fail_unless_equals_string (m->prompt, "prompt");
  fail_unless_equals_string (m->model_id, "model");
  fail_unless_equals_uint64 (m->start, 1);
  fail_unless_equals_uint64 (m->end, 2);
  fail_unless_equals_uint64 (m->latency, 3);
  fail_unless_equals_int (m->prompt_tokens, 4);
  fail_unless_equals_int (m->generated_tokens, 5);
  gst_buffer_unref (copy);
}

GST_END_TEST;

static void
setup (void)
{
  fake_reset ();
}

static Suite *
mmllmsink_suite (void)
{
  Suite *s = suite_create ("mmllmsink");
  TCase *tw = tcase_create ("writers");
  TCase *tx = tcase_create ("context");
  TCase *tc = tcase_create ("element");

  suite_add_tcase (s, tw);
  tcase_add_test (tw, test_writer_jsonl);
  tcase_add_test (tw, test_writer_webvtt);
  tcase_add_test (tw, test_writer_srt);
  tcase_add_test (tw, test_writer_format_by_extension);
  tcase_add_test (tw, test_writer_file);
  tcase_add_test (tw, test_writer_transcript);
  tcase_add_test (tw, test_transcript_print_and_message);
  tcase_add_test (tw, test_caption_meta_copy);

  suite_add_tcase (s, tx);
  tcase_add_test (tx, test_context_schedule_and_spans);
  tcase_add_test (tx, test_context_leaky_queue);
  tcase_add_test (tx, test_context_order_and_budget);

  suite_add_tcase (s, tc);
  tcase_add_checked_fixture (tc, setup, NULL);
  tcase_add_test (tc, test_bus_message);
  tcase_add_test (tc, test_signal);
  tcase_add_test (tc, test_jsonl_file);
  tcase_add_test (tc, test_webvtt_file);
  tcase_add_test (tc, test_srt_file);
  tcase_add_test (tc, test_prompt_property);
  tcase_add_test (tc, test_prompt_event);
  tcase_add_test (tc, test_prompt_event_to_pipeline);
  tcase_add_test (tc, test_context_eviction);
  tcase_add_test (tc, test_prompt_too_long);
  tcase_add_test (tc, test_dim_mismatch);
  tcase_add_test (tc, test_missing_model);
  tcase_add_test (tc, test_missing_model_file);
  tcase_add_test (tc, test_bad_location);
  tcase_add_test (tc, test_eos_finishes_pending);
  tcase_add_test (tc, test_eos_timeout);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_leaky_queue);
  tcase_add_test (tc, test_auto_not_live);
  tcase_add_test (tc, test_video_sink_meta);
  tcase_add_test (tc, test_video_sink_overlay);
  tcase_add_test (tc, test_video_and_audio);
  tcase_add_test (tc, test_latency_query);
  tcase_add_test (tc, test_print);

  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  /* the element of this program (with the backend hook) replaces the
   * plugin's registry entry; this program never loads the mm plugin */
  if (!GST_ELEMENT_REGISTER (mmllmsink, NULL))
    return 1;
  return gst_check_run_suite (mmllmsink_suite (), "mmllmsink", __FILE__);
}
