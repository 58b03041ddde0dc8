/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmaudioenc through the plugin with the tiny Whisper fixture
 * ($MM_FIXTURES/whisper/hf: a 1 s window, 50 tokens of 36 per window):
 * start errors; windows side by side and overlapping (which buffer gets
 * which window, PTS spans); EOS with a partial window; discontinuities (a
 * DISCONT flag and a timestamp jump); the tokens of the chirp equal the
 * transformers encoder output, also through stereo downmixing, S16 and a
 * 48 kHz input; a leaky encoder that falls behind loses no buffer; stats
 * and latency.  With GGUF audio projector files ($MM_FIXTURES/audio_mmproj:
 * ultravox, voxtral, qwen2a) the tokens are the connector's output, of the
 * LLM's width, equal to the reference.
 *
 * Without an OpenCL device or the fixtures the model cases are skipped and
 * the test exits 77.
 */
#include <math.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/audio/audio.h>

#include "gst/gstmmtokensmeta.h"
#include "mm-safetensors.h"
#include "mm-test-bus.h"

static gchar *model_path;
static MmSafetensors *ref;

/* One token meta seen on the output. */
typedef struct
{
  guint buffer;                 /* index of the output buffer */
  GstClockTime pts, duration;
  guint n_tokens, dim;
  GstMmModality modality;
  const gfloat *data;           /* valid while @tokens is held */
  GstMmTokens *tokens;
} Seen;

typedef struct
{
  GArray *metas;                /* Seen */
  guint n_buffers;
  GstClockTime last_pts;
  gboolean in_order;
} Output;

static void
output_clear (Output * o)
{
  for (guint i = 0; o->metas && i < o->metas->len; i++)
    gst_mm_tokens_unref (g_array_index (o->metas, Seen, i).tokens);
  if (o->metas)
    g_array_unref (o->metas);
}

static gchar *
start_error (const gchar * model, gdouble window)
{
  GstElement *enc = gst_element_factory_make ("mmaudioenc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL, *text;

  fail_unless (enc != NULL);
  if (model)
    g_object_set (enc, "model", model, "window", window, NULL);
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

/* A harness around mmaudioenc with @props, caps @format/@rate/@channels,
 * and a bus for its messages. */
static GstHarness *
harness_new (const gchar * props, const gchar * format, gint rate,
    gint channels, GstBus ** bus)
{
  /* the harness answers LATENCY queries as a live source: leaky=auto would
   * drop windows, so the cases that count windows say leaky=no */
  gchar *desc = g_strdup_printf ("mmaudioenc model=\"%s\" leaky=no %s",
      model_path, props);
  gchar *caps = g_strdup_printf ("audio/x-raw,format=%s,layout=interleaved,"
      "rate=%d,channels=%d", format, rate, channels);
  GstHarness *h = gst_harness_new_parse (desc);

  *bus = gst_bus_new ();
  gst_element_set_bus (h->element, *bus);
  gst_harness_set_src_caps_str (h, caps);
  g_free (desc);
  g_free (caps);
  return h;
}

static void
harness_free (GstHarness * h, GstBus * bus)
{
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

/* F32 mono buffer of @n samples of @x at @pts (duration from @rate). */
static GstBuffer *
f32_buffer (const gfloat * x, gsize n, gint rate, GstClockTime pts)
{
  GstBuffer *b = gst_buffer_new_memdup (x, n * sizeof (gfloat));

  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (n, GST_SECOND, rate);
  return b;
}

/* Pushes EOS and pulls @n_in buffers, recording their token metas. */
static Output
finish (GstHarness * h, guint n_in)
{
  Output o = { g_array_new (FALSE, TRUE, sizeof (Seen)), 0, 0, TRUE };

  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  for (guint i = 0; i < n_in; i++) {
    GstBuffer *b = gst_harness_pull (h);
    gpointer state = NULL;
    GstMmTokensMeta *m;

    fail_unless (b != NULL, "buffer %u of %u missing", i, n_in);
    if (i > 0 && GST_BUFFER_PTS (b) < o.last_pts)
      o.in_order = FALSE;
    o.last_pts = GST_BUFFER_PTS (b);
    while ((m = gst_buffer_iterate_mm_tokens_meta (b, &state))) {
      Seen s = { i, m->pts, m->duration, m->n_tokens, m->dim, m->modality };
      GError *err = NULL;

      s.tokens = gst_mm_tokens_ref (m->tokens);
      s.data = gst_mm_tokens_get_host (s.tokens, &err);
      fail_unless (s.data != NULL, "%s", err ? err->message : "");
      g_array_append_val (o.metas, s);
    }
    o.n_buffers++;
    gst_buffer_unref (b);
  }
  /* the final stats are posted before EOS goes on */
  mm_test_wait_eos (h);
  return o;
}

static void
expect_window (Output * o, guint i, guint buffer, gdouble pts, gdouble dur)
{
  Seen *s;

  fail_unless (i < o->metas->len, "only %u windows", o->metas->len);
  s = &g_array_index (o->metas, Seen, i);
  GST_INFO ("window %u on buffer %u: %" GST_TIME_FORMAT " + %"
      GST_TIME_FORMAT, i, s->buffer, GST_TIME_ARGS (s->pts),
      GST_TIME_ARGS (s->duration));
  fail_unless_equals_int (s->buffer, buffer);
  fail_unless_equals_uint64 (s->pts, (GstClockTime) (pts * GST_SECOND + 0.5));
  fail_unless_equals_uint64 (s->duration,
      (GstClockTime) (dur * GST_SECOND + 0.5));
  fail_unless_equals_int (s->n_tokens, 50);
  fail_unless_equals_int (s->dim, 36);
  fail_unless_equals_int (s->modality, GST_MM_MODALITY_AUDIO);
}

/* @n buffers of 0.25 s (4000 samples at 16 kHz) of noise from @t0 s;
 * buffer @discont_at (if >= 0) jumps to @jump_to s, flagged DISCONT when
 * @flag. */
static void
push_quarters (GstHarness * h, guint n, gint discont_at, gdouble jump_to,
    gboolean flag)
{
  gfloat x[4000];
  GstClockTime pts = 0;

  for (guint i = 0; i < n; i++) {
    GstBuffer *b;

    for (guint j = 0; j < G_N_ELEMENTS (x); j++)
      x[j] = 0.1f * sinf (0.05f * (i * 4000 + j));
    if ((gint) i == discont_at)
      pts = (GstClockTime) (jump_to * GST_SECOND);
    b = f32_buffer (x, G_N_ELEMENTS (x), 16000, pts);
    if ((gint) i == discont_at && flag)
      GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
    pts += GST_SECOND / 4;
  }
}

#define SKIP_WITHOUT_MODEL() G_STMT_START {                               \
    if (model_path == NULL) {                                             \
      GST_INFO ("no fixture model: skipped");                             \
      return;                                                             \
    }                                                                     \
  } G_STMT_END

GST_START_TEST (test_no_model_error)
{
  g_autofree gchar *text = start_error (NULL, 0);

  fail_unless (strstr (text, "No audio model") != NULL, "%s", text);
}

GST_END_TEST;

GST_START_TEST (test_missing_model_error)
{
  const gchar *path = "/nonexistent/mm-test/whisper";
  g_autofree gchar *text = start_error (path, 0);

  fail_unless (strstr (text, path) != NULL, "%s", text);
}

GST_END_TEST;

GST_START_TEST (test_window_too_long)
{
  g_autofree gchar *text = NULL;

  SKIP_WITHOUT_MODEL ();
  text = start_error (model_path, 2.0);
  fail_unless (strstr (text, "window of 2 s") != NULL, "%s", text);
}

GST_END_TEST;

GST_START_TEST (test_refuses_other_caps)
{
  GstElement *enc = gst_element_factory_make ("mmaudioenc", NULL);
  GstPad *sink = gst_element_get_static_pad (enc, "sink");
  GstCaps *caps;

  caps = gst_caps_from_string ("audio/x-raw,format=S24LE,rate=16000,"
      "channels=1,layout=interleaved");
  fail_if (gst_pad_query_accept_caps (sink, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("audio/x-raw,format=F32LE,rate=44100,"
      "channels=6,layout=interleaved");
  fail_unless (gst_pad_query_accept_caps (sink, caps));
  gst_caps_unref (caps);
  gst_object_unref (sink);
  gst_object_unref (enc);
}

GST_END_TEST;

/* window 1 s, no overlap, 2.5 s of audio: [0,1) closes on buffer 3, [1,2)
 * on 7, and the partial [2,2.5) goes to the last buffer at EOS. */
GST_START_TEST (test_windows_side_by_side)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=1", "F32LE", 16000, 1, &bus);
  push_quarters (h, 10, -1, 0, FALSE);
  o = finish (h, 10);
  fail_unless (o.in_order);
  fail_unless_equals_int (o.metas->len, 3);
  expect_window (&o, 0, 3, 0.0, 1.0);
  expect_window (&o, 1, 7, 1.0, 1.0);
  expect_window (&o, 2, 9, 2.0, 0.5);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* window 1 s every 0.5 s over 2.5 s: four full windows, nothing left. */
GST_START_TEST (test_windows_overlap)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=1 hop=0.5", "F32LE", 16000, 1, &bus);
  push_quarters (h, 10, -1, 0, FALSE);
  o = finish (h, 10);
  fail_unless_equals_int (o.metas->len, 4);
  expect_window (&o, 0, 3, 0.0, 1.0);
  expect_window (&o, 1, 5, 0.5, 1.0);
  expect_window (&o, 2, 7, 1.0, 1.0);
  expect_window (&o, 3, 9, 1.5, 1.0);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* 1.75 s with window 1, hop 0.5: at EOS [1, 1.75) is the oldest open
 * window and holds audio no window covered. */
GST_START_TEST (test_eos_partial_overlap)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=1 hop=0.5", "F32LE", 16000, 1, &bus);
  push_quarters (h, 7, -1, 0, FALSE);
  o = finish (h, 7);
  fail_unless_equals_int (o.metas->len, 3);
  expect_window (&o, 0, 3, 0.0, 1.0);
  expect_window (&o, 1, 5, 0.5, 1.0);
  expect_window (&o, 2, 6, 1.0, 0.75);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* hop longer than the window: the audio between windows is skipped, and
 * nothing is left at EOS when the tail lies between windows. */
GST_START_TEST (test_windows_gaps)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=0.5 hop=1.25", "F32LE", 16000, 1, &bus);
  push_quarters (h, 9, -1, 0, FALSE);   /* 2.25 s */
  o = finish (h, 9);
  fail_unless_equals_int (o.metas->len, 2);
  expect_window (&o, 0, 1, 0.0, 0.5);
  expect_window (&o, 1, 6, 1.25, 0.5);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* 1.5 s, then a jump to 5 s for 1 s: [0,1) on buffer 3, the partial
 * [1,1.5) on buffer 5 (the last before the gap), [5,6) on buffer 9. */
static void
check_discont (gboolean flag)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  h = harness_new ("window=1", "F32LE", 16000, 1, &bus);
  push_quarters (h, 10, 6, 5.0, flag);
  o = finish (h, 10);
  fail_unless (o.in_order);
  fail_unless_equals_int (o.metas->len, 3);
  expect_window (&o, 0, 3, 0.0, 1.0);
  expect_window (&o, 1, 5, 1.0, 0.5);
  expect_window (&o, 2, 9, 5.0, 1.0);
  output_clear (&o);
  harness_free (h, bus);
}

GST_START_TEST (test_discont_flag)
{
  SKIP_WITHOUT_MODEL ();
  check_discont (TRUE);
}

GST_END_TEST;

GST_START_TEST (test_discont_timestamps)
{
  SKIP_WITHOUT_MODEL ();
  check_discont (FALSE);
}

GST_END_TEST;

/* Pushes @n frames of @x (mono, at @rate) as @format with @channels
 * (stereo: L = x + d, R = x - d, which averages back to x) in buffers of
 * @chunk frames from 7 s, then EOS; returns the output. */
static Output
push_signal (GstHarness * h, const gfloat * x, gsize n, const gchar * format,
    gint rate, gint channels, gsize chunk, guint * n_in)
{
  gboolean s16 = g_str_equal (format, "S16LE");
  gsize bpf = (s16 ? 2 : 4) * channels, off, i;

  *n_in = 0;
  for (off = 0; off < n; off += chunk, (*n_in)++) {
    gsize m = MIN (chunk, n - off);
    GstBuffer *b = gst_buffer_new_allocate (NULL, m * bpf, NULL);
    GstMapInfo map;

    gst_buffer_map (b, &map, GST_MAP_WRITE);
    for (i = 0; i < m; i++) {
      for (gint c = 0; c < channels; c++) {
        gsize k = off + i;
        gdouble d = channels > 1 ? 0.1 * sin (0.01 * k) * (c ? -1 : 1) : 0;
        gdouble v = x[k] + d;

        if (s16)
          ((gint16 *) map.data)[i * channels + c] =
              (gint16) CLAMP (lrint (v * 32768.0), -32768, 32767);
        else
          ((gfloat *) map.data)[i * channels + c] = v;
      }
    }
    gst_buffer_unmap (b, &map);
    GST_BUFFER_PTS (b) = 7 * GST_SECOND
        + gst_util_uint64_scale_int (off, GST_SECOND, rate);
    GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (m, GST_SECOND, rate);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
  return finish (h, *n_in);
}

static gdouble
max_abs_diff (const gfloat * a, const gfloat * b, gsize n)
{
  gdouble worst = 0;
  for (gsize i = 0; i < n; i++)
    worst = MAX (worst, fabs (a[i] - b[i]));
  return worst;
}

/* The fixture's 0.9 s chirp (16 kHz) in odd-sized buffers from 7 s: one
 * partial window at EOS whose tokens are transformers' encoder output (the
 * extractor pads the 0.9 s to 1 s as the element does). */
static void
check_chirp (const gchar * format, gint channels, gsize chunk, gdouble tol)
{
  const MmTensorInfo *a = mm_safetensors_get_tensor (ref, "audio", NULL);
  const MmTensorInfo *r = mm_safetensors_get_tensor (ref,
      "encoder_last_hidden_state", NULL);
  g_autofree gfloat *audio = NULL, *want = NULL;
  GstBus *bus;
  GstHarness *h;
  Output o;
  guint n_in;
  gdouble worst;

  fail_unless (a && r);
  audio = g_new (gfloat, a->numel);
  want = g_new (gfloat, r->numel);
  fail_unless (mm_tensor_info_to_f32 (a, "ref", audio, NULL));
  fail_unless (mm_tensor_info_to_f32 (r, "ref", want, NULL));
  h = harness_new ("window=1", format, 16000, channels, &bus);
  o = push_signal (h, audio, a->numel, format, 16000, channels, chunk, &n_in);
  fail_unless_equals_int (o.metas->len, 1);
  expect_window (&o, 0, n_in - 1, 7.0, 0.9);
  worst = max_abs_diff (g_array_index (o.metas, Seen, 0).data, want, r->numel);
  g_print ("chirp as %s x%d: tokens max-abs error %.3g vs transformers "
      "(tolerance %g)\n", format, channels, worst, tol);
  fail_unless (worst <= tol, "error %g > %g", worst, tol);
  output_clear (&o);
  harness_free (h, bus);
}

/* A tone faded in and out over 50 ms (band-limited at the ends too, so
 * every rate samples the same signal). */
static gdouble
tone (gdouble hz, gint phase, gdouble t)
{
  gdouble fade = MIN (1.0, MIN (t, 0.8 - t) / 0.05);

  fade = fade <= 0 ? 0 : 0.5 - 0.5 * cos (G_PI * fade);
  return 0.2 * fade * sin (2 * G_PI * hz * t + phase);
}

/* Tokens of a 0.8 s band-limited signal (tones at 300, 1250, 3100 Hz,
 * below the resampler's 7.5 kHz band edge) given at 16 kHz mono and at
 * @rate stereo S16/F32. */
static void
check_rate (gint rate, const gchar * format, gdouble tol)
{
  gsize n16 = 12800, n = n16 * rate / 16000;
  gfloat *x16 = g_new (gfloat, n16), *x = g_new (gfloat, n);
  const gdouble hz[3] = { 300, 1250, 3100 };
  GstBus *bus;
  GstHarness *h;
  Output o16, o;
  guint n_in;
  gdouble worst;

  for (gsize i = 0; i < MAX (n, n16); i++)
    for (gint k = 0; k < 3; k++) {
      if (i < n16)
        x16[i] = (k ? x16[i] : 0) + tone (hz[k], k, (gdouble) i / 16000);
      if (i < n)
        x[i] = (k ? x[i] : 0) + tone (hz[k], k, (gdouble) i / rate);
    }
  h = harness_new ("window=1", "F32LE", 16000, 1, &bus);
  o16 = push_signal (h, x16, n16, "F32LE", 16000, 1, 1600, &n_in);
  harness_free (h, bus);
  h = harness_new ("window=1", format, rate, 2, &bus);
  o = push_signal (h, x, n, format, rate, 2, rate / 10 + 7, &n_in);
  fail_unless_equals_int (o.metas->len, 1);
  expect_window (&o, 0, n_in - 1, 7.0, 0.8);
  worst = max_abs_diff (g_array_index (o.metas, Seen, 0).data,
      g_array_index (o16.metas, Seen, 0).data, 50 * 36);
  g_print ("tones as %s %d Hz x2 vs F32 16 kHz mono: tokens max-abs "
      "difference %.3g (tolerance %g)\n", format, rate, worst, tol);
  fail_unless (worst <= tol, "difference %g > %g", worst, tol);
  output_clear (&o16);
  output_clear (&o);
  harness_free (h, bus);
  g_free (x16);
  g_free (x);
}

GST_START_TEST (test_tokens_f32_mono)
{
  SKIP_WITHOUT_MODEL ();
  check_chirp ("F32LE", 1, 1111, 1e-4);
}

GST_END_TEST;

GST_START_TEST (test_tokens_f32_stereo)
{
  SKIP_WITHOUT_MODEL ();
  check_chirp ("F32LE", 2, 999, 1e-4);
}

GST_END_TEST;

GST_START_TEST (test_tokens_s16)
{
  SKIP_WITHOUT_MODEL ();
  check_chirp ("S16LE", 1, 1024, 2e-3);
}

GST_END_TEST;

GST_START_TEST (test_tokens_48k)
{
  SKIP_WITHOUT_MODEL ();
  check_rate (48000, "F32LE", 1e-3);
  check_rate (44100, "S16LE", 2e-3);
  check_rate (8000, "F32LE", 1e-3);
}

GST_END_TEST;

/* A GGUF audio projector fixture: its reference audio (a whole window, or
 * for qwen2a 0.4 s of the 0.5 s window, zero-padded at EOS) gives one meta
 * of @n_tokens tokens of @dim (the LLM's hidden size) equal to the
 * reference connector output. */
static void
check_projector (const gchar * type, guint n_tokens, guint dim)
{
  g_autofree gchar *rel = g_strdup_printf ("mmproj-%s.gguf", type);
  g_autofree gchar *rrel = g_strdup_printf ("reference-%s.safetensors", type);
  g_autofree gchar *path = g_build_filename (g_getenv ("MM_FIXTURES"),
      "audio_mmproj", rel, NULL);
  g_autofree gchar *rpath = g_build_filename (g_getenv ("MM_FIXTURES"),
      "audio_mmproj", rrel, NULL);
  MmSafetensors *pref = mm_safetensors_open (rpath, NULL);
  g_autofree gfloat *audio = NULL, *want = NULL;
  g_autofree gchar *desc = NULL;
  const MmTensorInfo *a, *r;
  GstBus *bus;
  GstHarness *h;
  Output o;
  Seen *s;
  guint n_in;
  gdouble worst, scale = 0;

  fail_unless (pref != NULL, "fixture %s missing", rpath);
  a = mm_safetensors_get_tensor (pref, "audio", NULL);
  r = mm_safetensors_get_tensor (pref, "projected", NULL);
  fail_unless (a && r);
  audio = g_new (gfloat, a->numel);
  want = g_new (gfloat, r->numel);
  fail_unless (mm_tensor_info_to_f32 (a, "ref", audio, NULL));
  fail_unless (mm_tensor_info_to_f32 (r, "ref", want, NULL));
  fail_unless_equals_int (r->numel, n_tokens * dim);

  desc = g_strdup_printf ("mmaudioenc model=\"%s\" leaky=no", path);
  h = gst_harness_new_parse (desc);
  bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,"
      "layout=interleaved,rate=16000,channels=1");
  o = push_signal (h, audio, a->numel, "F32LE", 16000, 1, 1000, &n_in);
  fail_unless_equals_int (o.metas->len, 1);
  s = &g_array_index (o.metas, Seen, 0);
  fail_unless_equals_int (s->buffer, n_in - 1);
  fail_unless_equals_uint64 (s->pts, 7 * GST_SECOND);
  fail_unless_equals_uint64 (s->duration,
      gst_util_uint64_scale_int (a->numel, GST_SECOND, 16000));
  fail_unless_equals_int (s->n_tokens, n_tokens);
  fail_unless_equals_int (s->dim, dim);
  fail_unless_equals_int (s->modality, GST_MM_MODALITY_AUDIO);
  worst = max_abs_diff (s->data, want, r->numel);
  for (gint64 i = 0; i < r->numel; i++)
    scale = MAX (scale, fabs (want[i]));
  g_print ("%s: %u tokens of %u, max-abs error %.3g (relative %.3g, "
      "tolerance 1e-3)\n", type, n_tokens, dim, worst, worst / scale);
  fail_unless (worst <= 1e-3 * scale, "error %g", worst);
  output_clear (&o);
  harness_free (h, bus);
  mm_safetensors_free (pref);
}

GST_START_TEST (test_gguf_projectors)
{
  SKIP_WITHOUT_MODEL ();
  check_projector ("ultravox", 6, 40);
  check_projector ("voxtral", 7, 64);
  check_projector ("qwen2a", 12, 64);
}

GST_END_TEST;

/* Leaky with one pending window: 40 windows pushed at once; the encoder
 * falls behind, every buffer still comes out in order, and the stats add
 * up. */
GST_START_TEST (test_leaky)
{
  GstBus *bus;
  GstHarness *h;
  GstMessage *msg;
  const GstStructure *s;
  guint64 windows = 0, encoded = 0, dropped = 0;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=0.25 max-pending=1 stats-interval=100 leaky=yes",
      "F32LE", 16000, 1, &bus);
  push_quarters (h, 40, -1, 0, FALSE);
  o = finish (h, 40);
  fail_unless (o.in_order);
  fail_unless_equals_int (o.n_buffers, 40);
  msg = mm_test_pop_last_element_message (bus, 0);
  fail_unless (msg != NULL);
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_has_name (s, "mm-encoder-stats"));
  fail_unless (gst_structure_get_uint64 (s, "windows", &windows));
  fail_unless (gst_structure_get_uint64 (s, "encoded", &encoded));
  fail_unless (gst_structure_get_uint64 (s, "dropped", &dropped));
  g_print ("leaky: %" G_GUINT64_FORMAT " windows, %" G_GUINT64_FORMAT
      " encoded, %" G_GUINT64_FORMAT " dropped\n", windows, encoded, dropped);
  fail_unless_equals_uint64 (windows, 40);
  fail_unless_equals_uint64 (encoded + dropped, windows);
  fail_unless_equals_int (o.metas->len, encoded);
  gst_message_unref (msg);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* After encoding, the latency query includes (max-pending + 1) encodes and
 * the held buffer (0.25 s). */
GST_START_TEST (test_latency)
{
  GstBus *bus;
  GstHarness *h;
  GstQuery *q;
  GstClockTime min;
  gboolean live;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=0.5", "F32LE", 16000, 1, &bus);
  push_quarters (h, 4, -1, 0, FALSE);
  o = finish (h, 4);
  q = gst_query_new_latency ();
  fail_unless (gst_pad_peer_query (h->sinkpad, q));
  gst_query_parse_latency (q, &live, &min, NULL);
  GST_INFO ("latency %" GST_TIME_FORMAT, GST_TIME_ARGS (min));
  fail_unless (min > GST_SECOND / 4, "latency %" GST_TIME_FORMAT,
      GST_TIME_ARGS (min));
  gst_query_unref (q);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

/* A flush in the middle drops what is inside; windowing restarts. */
GST_START_TEST (test_flush)
{
  GstBus *bus;
  GstHarness *h;
  Output o;

  SKIP_WITHOUT_MODEL ();
  h = harness_new ("window=1", "F32LE", 16000, 1, &bus);
  push_quarters (h, 2, -1, 0, FALSE);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  {
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  }
  /* buffers pulled before the flush may be in the harness queue */
  while (gst_harness_buffers_in_queue (h))
    gst_buffer_unref (gst_harness_pull (h));
  push_quarters (h, 4, -1, 0, FALSE);
  o = finish (h, 4);
  fail_unless_equals_int (o.metas->len, 1);
  expect_window (&o, 0, 3, 0.0, 1.0);
  output_clear (&o);
  harness_free (h, bus);
}

GST_END_TEST;

static Suite *
mmaudioenc_suite (void)
{
  Suite *s = suite_create ("mmaudioenc");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_no_model_error);
  tcase_add_test (tc, test_missing_model_error);
  tcase_add_test (tc, test_refuses_other_caps);
  tcase_add_test (tc, test_window_too_long);
  tcase_add_test (tc, test_windows_side_by_side);
  tcase_add_test (tc, test_windows_overlap);
  tcase_add_test (tc, test_eos_partial_overlap);
  tcase_add_test (tc, test_windows_gaps);
  tcase_add_test (tc, test_discont_flag);
  tcase_add_test (tc, test_discont_timestamps);
  tcase_add_test (tc, test_tokens_f32_mono);
  tcase_add_test (tc, test_tokens_f32_stereo);
  tcase_add_test (tc, test_tokens_s16);
  tcase_add_test (tc, test_tokens_48k);
  tcase_add_test (tc, test_gguf_projectors);
  tcase_add_test (tc, test_leaky);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_flush);
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *dir = g_getenv ("MM_FIXTURES");
  gchar *ref_path;
  gint ret;

  /* OpenCL state does not survive fork(): run the cases in this process */
  g_setenv ("CK_FORK", "no", TRUE);
  gst_check_init (&argc, &argv);
  if (dir) {
    model_path = g_build_filename (dir, "whisper", "hf", NULL);
    ref_path = g_build_filename (dir, "whisper", "reference.safetensors", NULL);
    ref = mm_safetensors_open (ref_path, NULL);
    g_free (ref_path);
  }
  if (ref == NULL || !g_file_test (model_path, G_FILE_TEST_IS_DIR))
    g_clear_pointer (&model_path, g_free);
  /* the model cases need an OpenCL device */
  if (model_path) {
    MmEngine *e = mm_engine_get (NULL, NULL);
    if (e == NULL)
      g_clear_pointer (&model_path, g_free);
    else
      mm_engine_unref (e);
  }
  ret = gst_check_run_suite (mmaudioenc_suite (), "mmaudioenc", __FILE__);
  if (ref)
    mm_safetensors_free (ref);
  if (model_path == NULL && ret == 0)
    return 77;
  g_free (model_path);
  return ret;
}
