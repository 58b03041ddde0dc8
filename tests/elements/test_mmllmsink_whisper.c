/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink transcribing with the tiny Whisper fixture (tests/fixtures/
 * whisper), through the built plugin, with GstHarness.
 *
 * The reference is the metadata "stream" of whisper/reference.safetensors
 * (tests/fixtures/generate.py): espeak-ng speech cut into the windows
 * mmaudioenc makes with window=1 hop=0.5 (the last one partial, at EOS),
 * each decoded by transformers in one greedy pass with timestamps (its
 * segments) and without (its text, equal to transformers' generate).
 *
 * - one window of host tokens (transformers' own encoder output): the
 *   transcript is exactly the reference window's segments, text and
 *   times, each once;
 * - the audio through mmaudioenc (device tokens) with overlapping windows:
 *   the results are what the merging rule (mm-transcript-merge.h) makes of
 *   the reference windows, in order, never overlapping, the partial window
 *   included at EOS; the same with timestamps=false (the text of every
 *   window), and with prompt changes on the way (which change nothing);
 * - tokens of another width or length: an error naming both models and
 *   both shapes; a video pad, or a Whisper folder without a tokenizer: an
 *   error at start; an unknown language: an error naming it.
 *
 * Skips (77) without the fixture or an OpenCL device.
 */
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>

#include "elements/mm-transcript-merge.h"
#include "gst/gstmmtokensmeta.h"
#include "mm-engine.h"
#include "mm-safetensors.h"

#define AUDIO_CAPS "audio/x-raw,format=F32LE,rate=16000,channels=1," \
    "layout=interleaved"
#define RATE 16000
/* cue times in the element and in the reference may round differently */
#define TIME_TOL (GST_MSECOND)

static gchar *model_dir;
static JsonNode *stream;        /* the reference's "stream" */
static MmSafetensors *ref;

static gchar *
fixture (const gchar * rel)
{
  const gchar *dir = g_getenv ("MM_FIXTURES");

  return g_build_filename (dir ? dir : "tests/fixtures", rel, NULL);
}

/* ---- the reference ---- */

static JsonArray *
ref_windows (void)
{
  return json_object_get_array_member (json_node_get_object (stream),
      "windows");
}

static gfloat *
ref_floats (const gchar * name, gsize * n)
{
  const MmTensorInfo *info = mm_safetensors_find_tensor (ref, name);

  fail_unless (info != NULL && info->supported && info->dtype == MM_DTYPE_F32,
      "no F32 tensor %s", name);
  *n = info->numel;
  return g_memdup2 (info->data, info->nbytes);
}

typedef struct
{
  GstClockTime start, end;
  gchar *text;
} Cue;

static void
cue_clear (Cue * c)
{
  g_free (c->text);
}

static GArray *
cues_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (Cue));

  g_array_set_clear_func (a, (GDestroyNotify) cue_clear);
  return a;
}

/* What the merging rule makes of the reference windows [0, n) (with
 * timestamps: their segments; without: their text), flushed at the end. */
static GArray *
expected_cues (guint n, gboolean timestamps)
{
  JsonArray *windows = ref_windows ();
  MmTranscriptMerge *m = mm_transcript_merge_new ();
  GArray *pieces = mm_transcript_pieces_new (), *cues = cues_new ();
  guint i, j;

  for (i = 0; i < n; i++) {
    JsonObject *o = json_array_get_object_element (windows, i);
    JsonArray *segs = json_object_get_array_member (o, "segments");
    guint n_segs = json_array_get_length (segs);
    MmTranscriptSegment *s = g_new0 (MmTranscriptSegment, n_segs);
    MmTranscriptWindow w = { 0, };

    for (j = 0; j < n_segs; j++) {
      JsonArray *seg = json_array_get_array_element (segs, j);

      s[j].t0 = json_array_get_double_element (seg, 0);
      s[j].t1 = json_array_get_double_element (seg, 1);
      s[j].text = json_array_get_string_element (seg, 2);
    }
    w.start = (gint64) (json_object_get_double_member (o, "start") *
        GST_SECOND + 0.5);
    w.end = (gint64) (json_object_get_double_member (o, "end") *
        GST_SECOND + 0.5);
    if (timestamps) {
      w.segments = s;
      w.n_segments = n_segs;
    }
    /* the text of the same decoding, as the element has it */
    w.text = json_object_get_string_member (o, timestamps ?
        "text_timestamps" : "text");
    mm_transcript_merge_add (m, &w, pieces);
    g_free (s);
  }
  mm_transcript_merge_flush (m, pieces);

  for (i = 0; i < pieces->len; i++) {
    MmTranscriptPiece *p = &g_array_index (pieces, MmTranscriptPiece, i);
    Cue c = { p->start, p->end, g_strdup (p->text) };

    g_array_append_val (cues, c);
  }
  g_array_unref (pieces);
  mm_transcript_merge_free (m);
  return cues;
}

/* ---- the element's results ---- */

/* The segments of every `mm-caption` message on @bus up to EOS (which
 * mmaudioenc passes on from its own thread), in order; fails on an error
 * message.  Checks each message's own fields on the way. */
static GArray *
collect_cues (GstBus * bus, guint * n_results)
{
  GArray *cues = cues_new ();
  GstMessage *msg;

  *n_results = 0;
  while ((msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
              GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
    const GstStructure *s = gst_message_get_structure (msg);
    const GValue *segs;
    GString *joined = g_string_new (NULL);
    guint64 start, end, latency;
    gint prompt_tokens, generated;
    guint i;

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *err = NULL;

      gst_message_parse_error (msg, &err, NULL);
      fail ("unexpected error: %s", err->message);
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      return cues;
    }
    if (!gst_structure_has_name (s, "mm-caption")) {
      gst_message_unref (msg);
      continue;
    }
    (*n_results)++;
    fail_unless_equals_string (gst_structure_get_string (s, "task"),
        "transcribe");
    fail_unless_equals_string (gst_structure_get_string (s, "language"), "en");
    fail_unless_equals_string (gst_structure_get_string (s, "model"), "hf");
    fail_unless (gst_structure_get_string (s, "prompt") == NULL);
    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    fail_unless (gst_structure_get_uint64 (s, "end", &end));
    fail_unless (gst_structure_get_uint64 (s, "latency", &latency));
    fail_unless (gst_structure_get_int (s, "prompt-tokens", &prompt_tokens));
    fail_unless (gst_structure_get_int (s, "generated-tokens", &generated));
    fail_unless (start <= end);
    fail_unless (GST_CLOCK_TIME_IS_VALID (latency));
    /* 50 audio tokens and at least the start token, unless this is the
     * held-back end flushed at EOS (no counts) */
    fail_unless (prompt_tokens == 0 || prompt_tokens >= 51, "%d",
        prompt_tokens);

    segs = gst_structure_get_value (s, "segments");
    fail_unless (segs != NULL && GST_VALUE_HOLDS_ARRAY (segs));
    for (i = 0; i < gst_value_array_get_size (segs); i++) {
      const GstStructure *seg =
          gst_value_get_structure (gst_value_array_get_value (segs, i));
      Cue c;

      fail_unless (gst_structure_get_uint64 (seg, "start", &c.start));
      fail_unless (gst_structure_get_uint64 (seg, "end", &c.end));
      c.text = g_strdup (gst_structure_get_string (seg, "text"));
      if (joined->len)
        g_string_append_c (joined, ' ');
      g_string_append (joined, c.text);
      g_array_append_val (cues, c);
    }
    fail_unless (i > 0, "a result without segments");
    /* the result's text and span are its segments' */
    fail_unless_equals_string (gst_structure_get_string (s, "text"),
        joined->str);
    fail_unless_equals_uint64 (start, g_array_index (cues, Cue,
            cues->len - i).start);
    fail_unless_equals_uint64 (end, g_array_index (cues, Cue,
            cues->len - 1).end);
    g_string_free (joined, TRUE);
    gst_message_unref (msg);
  }
  fail ("no EOS");
  return cues;
}

static gchar *
cue_str (const Cue * c)
{
  return g_strdup_printf ("[%" GST_TIME_FORMAT " - %" GST_TIME_FORMAT
      "] \"%s\"", GST_TIME_ARGS (c->start), GST_TIME_ARGS (c->end), c->text);
}

static void
assert_cues (GArray * got, GArray * want)
{
  guint i;

  for (i = 0; i < MAX (got->len, want->len); i++) {
    gchar *g = i < got->len ? cue_str (&g_array_index (got, Cue, i)) :
        g_strdup ("(none)");
    gchar *w = i < want->len ? cue_str (&g_array_index (want, Cue, i)) :
        g_strdup ("(none)");

    GST_INFO ("cue %u: got %s want %s", i, g, w);
    fail_unless (i < got->len && i < want->len, "cue %u: got %s, want %s", i,
        g, w);
    {
      Cue *a = &g_array_index (got, Cue, i), *b = &g_array_index (want, Cue, i);

      fail_unless (g_str_equal (a->text, b->text)
          && ABS ((gint64) a->start - (gint64) b->start) <= TIME_TOL
          && ABS ((gint64) a->end - (gint64) b->end) <= TIME_TOL,
          "cue %u: got %s, want %s", i, g, w);
      /* in order, never overlapping */
      if (i > 0)
        fail_unless (a->start >= g_array_index (got, Cue, i - 1).end);
    }
    g_free (g);
    g_free (w);
  }
}

/* ---- harnesses ---- */

/* The harness plays what it is given: sinks are made async=false (see
 * test_mmllmsink.c). */
static GstHarness *
sink_harness (GstBus ** bus, const gchar * props)
{
  gchar *desc = g_strdup_printf ("mmllmsink model=\"%s\" language=en "
      "sync=false async=false %s", model_dir, props ? props : "");
  GstElement *e = gst_parse_launch (desc, NULL);
  GstHarness *h;

  fail_unless (e != NULL, "%s", desc);
  g_free (desc);
  *bus = gst_bus_new ();
  gst_element_set_bus (e, *bus);
  h = gst_harness_new_with_element (e, "audio_%u", NULL);
  gst_object_unref (e);
  return h;
}

/* mmaudioenc ! mmllmsink, as a bin with a sink pad.  The harness answers
 * the latency query as a live source: both wait instead of dropping. */
static GstHarness *
pipeline_harness (GstBus ** bus, const gchar * props)
{
  gchar *desc = g_strdup_printf ("mmaudioenc model=\"%s\" window=1 hop=0.5 "
      "leaky=no ! mmllmsink model=\"%s\" language=en leaky=no sync=false "
      "async=false %s", model_dir, model_dir, props ? props : "");
  GstHarness *h = gst_harness_new_parse (desc);

  g_free (desc);
  *bus = gst_bus_new ();
  gst_element_set_bus (h->element, *bus);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  fail_unless_equals_int (gst_element_set_state (h->element,
          GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  return h;
}

static void
teardown (GstHarness * h, GstBus * bus)
{
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

/* Pushes the reference stream in 0.1 s buffers, calling @between after
 * the first second; then EOS (which returns once the sink is done). */
static void
push_stream (GstHarness * h, void (*between) (GstHarness * h))
{
  gsize n, off, chunk = RATE / 10;
  gfloat *audio = ref_floats ("stream_audio", &n);

  for (off = 0; off < n; off += chunk) {
    gsize len = MIN (chunk, n - off);
    GstBuffer *buf = gst_buffer_new_memdup (audio + off,
        len * sizeof (gfloat));

    GST_BUFFER_PTS (buf) = gst_util_uint64_scale_int (off, GST_SECOND, RATE);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale_int (len, GST_SECOND,
        RATE);
    fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
    if (off == RATE && between)
      between (h);
  }
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  g_free (audio);
}

/* ---- tests ---- */

/* One window of transformers' encoder output as host tokens: the
 * transcript holds every segment of the reference window once, with its
 * times (the open last one ending with the audio), and nothing else. */
GST_START_TEST (test_window_matches_transformers)
{
  GstBus *bus;
  GstHarness *h = sink_harness (&bus, NULL);
  JsonObject *w0 = json_array_get_object_element (ref_windows (), 0);
  JsonArray *segs = json_object_get_array_member (w0, "segments");
  GString *want_text = g_string_new (NULL);
  GArray *got, *want;
  GstBuffer *buf;
  GstMmTokens *tokens;
  gfloat *x;
  gsize n;
  guint i, n_results;
  gchar **words, *got_text;

  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  x = ref_floats ("stream_encoder_0", &n);
  fail_unless_equals_int (n, 50 * 36);
  buf = gst_buffer_new_allocate (NULL, 4, NULL);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  tokens = gst_mm_tokens_new_host (x, 50, 36);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, tokens, 0,
      GST_SECOND, "hf");
  gst_mm_tokens_unref (tokens);
  g_free (x);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  got = collect_cues (bus, &n_results);
  fail_unless (n_results >= 1);

  /* the text: every reference segment, in order, white space aside */
  for (i = 0; i < json_array_get_length (segs); i++) {
    g_string_append_c (want_text, ' ');
    g_string_append (want_text, json_array_get_string_element
        (json_array_get_array_element (segs, i), 2));
  }
  words = g_strsplit_set (g_strstrip (want_text->str), " ", -1);
  g_string_truncate (want_text, 0);
  for (i = 0; words[i]; i++)
    if (words[i][0])
      g_string_append_printf (want_text, "%s%s", want_text->len ? " " : "",
          words[i]);
  g_strfreev (words);
  got_text = g_strdup ("");
  for (i = 0; i < got->len; i++) {
    gchar *t = g_strdup_printf ("%s%s%s", got_text, i ? " " : "",
        g_array_index (got, Cue, i).text);

    g_free (got_text);
    got_text = t;
  }
  fail_unless_equals_string (got_text, want_text->str);
  /* and the times: the segments' own, the open one ending at 1 s */
  want = expected_cues (1, TRUE);
  assert_cues (got, want);
  fail_unless_equals_uint64 (g_array_index (got, Cue, got->len - 1).end,
      GST_SECOND);

  g_free (got_text);
  g_string_free (want_text, TRUE);
  g_array_unref (want);
  g_array_unref (got);
  teardown (h, bus);
}

GST_END_TEST;

static void
check_stream (const gchar * props, gboolean timestamps,
    void (*between) (GstHarness * h))
{
  GstBus *bus;
  GstHarness *h = pipeline_harness (&bus, props);
  guint n_windows = json_array_get_length (ref_windows ()), n_results;
  GArray *got, *want;

  fail_unless_equals_int (n_windows, 5);
  push_stream (h, between);
  got = collect_cues (bus, &n_results);
  want = expected_cues (n_windows, timestamps);
  GST_INFO ("%u results, %u cues", n_results, got->len);
  assert_cues (got, want);
  /* the partial window at EOS is in: the audio ends at 2.7 s */
  fail_unless (g_array_index (got, Cue, got->len - 1).end > 2 * GST_SECOND);
  fail_unless (g_array_index (got, Cue, got->len - 1).end <=
      2700 * GST_MSECOND);

  g_array_unref (want);
  g_array_unref (got);
  teardown (h, bus);
}

GST_START_TEST (test_overlapping_windows)
{
  check_stream (NULL, TRUE, NULL);
}

GST_END_TEST;

GST_START_TEST (test_overlapping_windows_without_timestamps)
{
  check_stream ("timestamps=false", FALSE, NULL);
}

GST_END_TEST;

/* The prompt property of the sink in the harness's bin, then an
 * mm-prompt event down the stream. */
static void
change_prompt (GstHarness * h)
{
  GstIterator *it = gst_bin_iterate_sinks (GST_BIN (h->element));
  GValue v = G_VALUE_INIT;
  guint n = 0;

  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
    g_object_set (g_value_get_object (&v), "prompt", "What is said?", NULL);
    g_value_reset (&v);
    n++;
  }
  g_value_unset (&v);
  gst_iterator_free (it);
  fail_unless_equals_int (n, 1);
  fail_unless (gst_harness_push_event (h,
          gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
              gst_structure_new ("mm-prompt", "prompt", G_TYPE_STRING,
                  "And now?", NULL))));
}

/* Whisper has no prompt: changes while transcribing change nothing. */
GST_START_TEST (test_prompt_change_is_harmless)
{
  check_stream (NULL, TRUE, change_prompt);
}

GST_END_TEST;

/* Pushes one buffer of @n x @dim host tokens; returns the error text. */
static gchar *
shape_error (guint n, guint dim)
{
  GstBus *bus;
  GstHarness *h = sink_harness (&bus, NULL);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 4, NULL);
  gfloat *x = g_new0 (gfloat, n * dim);
  GstMmTokens *tokens = gst_mm_tokens_new_host (x, n, dim);
  GstMessage *msg;
  GError *err = NULL;
  gchar *text;

  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, tokens, 0,
      GST_SECOND, "other-encoder");
  gst_mm_tokens_unref (tokens);
  g_free (x);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_ERROR);
  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_STREAM_ERROR,
          GST_STREAM_ERROR_FORMAT), "%s", err->message);
  text = g_strdup (err->message);
  g_clear_error (&err);
  gst_message_unref (msg);
  teardown (h, bus);
  return text;
}

GST_START_TEST (test_tokens_that_do_not_fit)
{
  gchar *e = shape_error (50, 40);

  fail_unless (strstr (e, "50 x 40") && strstr (e, "50 x 36")
      && strstr (e, "\"other-encoder\"") && strstr (e, "\"hf\""), "%s", e);
  g_free (e);
  e = shape_error (25, 36);
  fail_unless (strstr (e, "25 x 36") && strstr (e, "50 x 36"), "%s", e);
  g_free (e);
}

GST_END_TEST;

GST_START_TEST (test_video_pad_refused)
{
  gchar *desc = g_strdup_printf ("mmllmsink model=\"%s\"", model_dir);
  GstElement *e = gst_parse_launch (desc, NULL);
  GstBus *bus = gst_bus_new ();
  GstPad *pad;
  GstMessage *msg;
  GError *err = NULL;

  gst_element_set_bus (e, bus);
  pad = gst_element_request_pad_simple (e, "video_%u");
  fail_unless (pad != NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (strstr (err->message, "Whisper") && strstr (err->message,
          "video_0"), "%s", err->message);
  g_clear_error (&err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_release_request_pad (e, pad);
  gst_object_unref (pad);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  g_free (desc);
}

GST_END_TEST;

/* Tokens of the right shape from an encoder of another name: a warning
 * naming both, and the window is transcribed all the same. */
GST_START_TEST (test_other_encoder_warns)
{
  GstBus *bus;
  GstHarness *h = sink_harness (&bus, NULL);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 4, NULL);
  GstMessage *msg;
  GstMmTokens *tokens;
  GError *err = NULL;
  GArray *got;
  gfloat *x;
  gsize n;
  guint n_results;

  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  x = ref_floats ("stream_encoder_0", &n);
  tokens = gst_mm_tokens_new_host (x, 50, 36);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, tokens, 0,
      GST_SECOND, "whisper-other");
  gst_mm_tokens_unref (tokens);
  g_free (x);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL);
  gst_message_parse_warning (msg, &err, NULL);
  fail_unless (strstr (err->message, "\"whisper-other\"")
      && strstr (err->message, "\"hf\""), "%s", err->message);
  g_clear_error (&err);
  gst_message_unref (msg);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  got = collect_cues (bus, &n_results);
  fail_unless (n_results >= 1);
  g_array_unref (got);
  teardown (h, bus);
}

GST_END_TEST;

/* A language the model does not know: an error naming it, no crash. */
GST_START_TEST (test_unknown_language)
{
  GstBus *bus;
  GstHarness *h = sink_harness (&bus, "language=xx");
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 4, NULL);
  gfloat *x;
  gsize n;
  GstMmTokens *tokens;
  GstMessage *msg;
  GError *err = NULL;
  gchar *dbg = NULL;

  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  x = ref_floats ("stream_encoder_0", &n);
  tokens = gst_mm_tokens_new_host (x, 50, 36);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, tokens, 0,
      GST_SECOND, "hf");
  gst_mm_tokens_unref (tokens);
  g_free (x);
  gst_harness_push (h, buf);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, &dbg);
  fail_unless (strstr (err->message, "\"hf\"") != NULL, "%s", err->message);
  fail_unless (dbg && strstr (dbg, "\"xx\"") != NULL, "%s", dbg);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (msg);
  teardown (h, bus);
}

GST_END_TEST;

/* A Whisper folder without tokenizer.json (what mmaudioenc alone needs)
 * cannot transcribe: an error at start naming the folder. */
GST_START_TEST (test_folder_that_cannot_transcribe)
{
  const gchar *files[] = { "config.json", "model.safetensors",
    "preprocessor_config.json"
  };
  gchar *dir = g_dir_make_tmp ("mm-whisper-XXXXXX", NULL);
  gchar *desc = g_strdup_printf ("mmllmsink model=\"%s\"", dir);
  GstElement *e;
  GstBus *bus = gst_bus_new ();
  GstPad *pad;
  GstMessage *msg;
  GError *err = NULL;
  gchar *dbg = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (files); i++) {
    gchar *from = g_build_filename (model_dir, files[i], NULL);
    gchar *to = g_build_filename (dir, files[i], NULL);

    fail_unless (symlink (from, to) == 0);
    g_free (from);
    g_free (to);
  }
  e = gst_parse_launch (desc, NULL);
  gst_element_set_bus (e, bus);
  pad = gst_element_request_pad_simple (e, "audio_%u");
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, &dbg);
  fail_unless (strstr (err->message, dir) != NULL, "%s", err->message);
  fail_unless (dbg && strstr (dbg, "cannot transcribe"), "%s", dbg);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_release_request_pad (e, pad);
  gst_object_unref (pad);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  for (i = 0; i < G_N_ELEMENTS (files); i++) {
    gchar *to = g_build_filename (dir, files[i], NULL);

    g_unlink (to);
    g_free (to);
  }
  g_rmdir (dir);
  g_free (dir);
  g_free (desc);
}

GST_END_TEST;

static Suite *
suite (void)
{
  Suite *s = suite_create ("mmllmsink-whisper");
  TCase *tc = tcase_create ("whisper");

  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_window_matches_transformers);
  tcase_add_test (tc, test_overlapping_windows);
  tcase_add_test (tc, test_overlapping_windows_without_timestamps);
  tcase_add_test (tc, test_prompt_change_is_harmless);
  tcase_add_test (tc, test_tokens_that_do_not_fit);
  tcase_add_test (tc, test_video_pad_refused);
  tcase_add_test (tc, test_other_encoder_warns);
  tcase_add_test (tc, test_unknown_language);
  tcase_add_test (tc, test_folder_that_cannot_transcribe);
  return s;
}

int
main (int argc, char **argv)
{
  gchar *ref_path;
  GError *err = NULL;
  MmEngine *engine;
  JsonParser *parser;
  const gchar *meta;
  int ret;

  /* OpenCL state does not survive fork(): run the cases in this process */
  g_setenv ("CK_FORK", "no", TRUE);
  gst_check_init (&argc, &argv);
  model_dir = fixture ("whisper/hf");
  ref_path = fixture ("whisper/reference.safetensors");
  if (!g_file_test (model_dir, G_FILE_TEST_IS_DIR)
      || !g_file_test (ref_path, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: fixture %s is missing (see tests/fixtures/README.md)\n",
        model_dir);
    return 77;
  }
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL) {
    g_print ("SKIP: no OpenCL device: %s\n", err->message);
    return 77;
  }
  mm_engine_unref (engine);

  ref = mm_safetensors_open (ref_path, &err);
  meta = ref ? mm_safetensors_get_metadata (ref, "stream") : NULL;
  if (meta == NULL) {
    g_printerr ("%s: no \"stream\" metadata: %s\n", ref_path,
        err ? err->message : "regenerate the whisper fixture");
    return 1;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, meta, -1, &err)) {
    g_printerr ("%s: %s\n", ref_path, err->message);
    return 1;
  }
  stream = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);

  ret = gst_check_run_suite (suite (), "mmllmsink-whisper", __FILE__);

  json_node_unref (stream);
  mm_safetensors_free (ref);
  g_free (ref_path);
  g_free (model_dir);
  return ret;
}
