/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-caption: end-to-end caption latency on a live source, and peak
 * memory.
 *
 *   bench-caption MMPROJ LLM [--seconds 60] [--fps 0.5] [--max-tokens 16]
 *       [--width 640] [--height 480] [--prompt TEXT] [--device SPEC]
 *
 * Runs, in this process, for --seconds of running time:
 *
 *   videotestsrc is-live=true pattern=ball ! video/x-raw,width=W,height=H,
 *     framerate=30/1 ! mmframesample fps=F ! mmvisionenc model=MMPROJ !
 *     mmllmsink model=LLM max-tokens=N prompt=TEXT
 *
 * (the plugin from GST_PLUGIN_PATH, e.g. the build folder), then EOS.
 * A live source stamps each frame with its capture time (running time),
 * so for every `mm-caption` message the program takes, in the thread that
 * posts it, the pipeline's running time minus the caption's span end (the
 * end of the newest frame it describes): capture to caption, what a
 * viewer waits.  Also from the message: the sink's own `latency` (the
 * tokens' arrival at mmllmsink to the caption: the LLM's share, queueing
 * included), `prefill-ms`, `decode-ms` and the token counts (prompt,
 * computed = prompt - reused from the KV cache, generated).  Reported:
 * median / 90th percentile / max of each, the encoder's frame counts and
 * average ms a frame (its last `mm-encoder-stats`), the sink's drops, and the process's peak
 * resident memory (getrusage; on a CPU OpenCL device the device buffers
 * are host memory) before the pipeline starts and at the end.
 */
#include <gst/gst.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct
{
  GMutex lock;
  GstElement *pipeline;
  GArray *e2e_ms, *sink_ms, *prefill_ms, *decode_ms, *gen_tokens,
      *prompt_tokens, *new_tokens;
  guint64 frames_in, encoded, dropped;
  double enc_ms;
  gboolean have_stats;
} Bench;

static double
peak_rss_mb (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;       /* KiB on Linux */
}

static void
push (GArray * a, double v)
{
  g_array_append_val (a, v);
}

/* In the posting thread: the running time is read as the caption lands. */
static GstBusSyncReply
on_sync (GstBus * bus, GstMessage * msg, gpointer data)
{
  Bench *b = data;
  const GstStructure *s;

  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT)
    return GST_BUS_PASS;
  s = gst_message_get_structure (msg);
  g_mutex_lock (&b->lock);
  if (gst_structure_has_name (s, "mm-caption")) {
    GstClock *clock = gst_element_get_clock (b->pipeline);
    guint64 end = 0, latency = 0;
    gint gt = 0, pt = 0, rt = 0;
    double pre = 0, dec = 0;

    if (clock && gst_structure_get_uint64 (s, "end", &end)) {
      GstClockTime now = gst_clock_get_time (clock)
          - gst_element_get_base_time (b->pipeline);
      push (b->e2e_ms, ((gint64) now - (gint64) end) / 1e6);
    }
    if (clock)
      gst_object_unref (clock);
    if (gst_structure_get_uint64 (s, "latency", &latency))
      push (b->sink_ms, latency / 1e6);
    if (gst_structure_get_double (s, "prefill-ms", &pre))
      push (b->prefill_ms, pre);
    if (gst_structure_get_double (s, "decode-ms", &dec))
      push (b->decode_ms, dec);
    if (gst_structure_get_int (s, "generated-tokens", &gt))
      push (b->gen_tokens, gt);
    if (gst_structure_get_int (s, "prompt-tokens", &pt))
      push (b->prompt_tokens, pt);
    if (gst_structure_get_int (s, "reused-tokens", &rt))
      push (b->new_tokens, pt - rt);
  } else if (gst_structure_has_name (s, "mm-encoder-stats")) {
    gst_structure_get_uint64 (s, "sampled", &b->frames_in);
    gst_structure_get_double (s, "ms-per-frame-avg", &b->enc_ms);
    gst_structure_get_uint64 (s, "encoded", &b->encoded);
    gst_structure_get_uint64 (s, "dropped", &b->dropped);
    b->have_stats = TRUE;
  }
  g_mutex_unlock (&b->lock);
  return GST_BUS_PASS;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
report (const gchar * what, GArray * a, const gchar * unit)
{
  if (a->len == 0) {
    g_print ("%-38s (none)\n", what);
    return;
  }
  qsort (a->data, a->len, sizeof (double), cmp_double);
  double *v = (double *) a->data;
  guint p90 = MIN (a->len - 1, (guint) (0.9 * a->len));
  g_print ("%-38s median %8.1f  p90 %8.1f  max %8.1f %s  (%u)\n", what,
      v[a->len / 2], v[p90], v[a->len - 1], unit, a->len);
}

int
main (int argc, char **argv)
{
  double seconds = 60, fps = 0.5;
  gint max_tokens = 16, width = 640, height = 480;
  const gchar *prompt = "Describe what you see in one short sentence.";
  const gchar *device = "auto";
  GError *err = NULL;

  gst_init (&argc, &argv);
  if (argc < 3) {
    g_printerr ("usage: %s MMPROJ LLM [--seconds S] [--fps F] "
        "[--max-tokens N] [--width W] [--height H] [--prompt TEXT] "
        "[--device SPEC]\n", argv[0]);
    return 2;
  }
  for (gint i = 3; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--seconds"))
      seconds = CLAMP (atof (argv[i + 1]), 1, 86400);
    else if (!strcmp (argv[i], "--fps"))
      fps = CLAMP (atof (argv[i + 1]), 0.01, 30);
    else if (!strcmp (argv[i], "--max-tokens"))
      max_tokens = CLAMP (atoi (argv[i + 1]), 1, 4096);
    else if (!strcmp (argv[i], "--width"))
      width = CLAMP (atoi (argv[i + 1]), 16, 8192);
    else if (!strcmp (argv[i], "--height"))
      height = CLAMP (atoi (argv[i + 1]), 16, 8192);
    else if (!strcmp (argv[i], "--prompt"))
      prompt = argv[i + 1];
    else if (!strcmp (argv[i], "--device"))
      device = argv[i + 1];
    else {
      g_printerr ("%s: unknown option %s\n", argv[0], argv[i]);
      return 2;
    }
  }
  for (gint i = 1; i <= 2; i++)
    if (!g_file_test (argv[i], G_FILE_TEST_EXISTS)) {
      g_printerr ("%s: %s: no such file or folder\n", argv[0], argv[i]);
      return 1;
    }

  Bench b = { 0 };
  g_mutex_init (&b.lock);
  GArray **arrays[] = { &b.e2e_ms, &b.sink_ms, &b.prefill_ms, &b.decode_ms,
    &b.gen_tokens, &b.prompt_tokens, &b.new_tokens
  };
  for (guint i = 0; i < G_N_ELEMENTS (arrays); i++)
    *arrays[i] = g_array_new (FALSE, FALSE, sizeof (double));

  double rss0 = peak_rss_mb ();
  gchar *desc = g_strdup_printf ("videotestsrc is-live=true pattern=ball ! "
      "video/x-raw,width=%d,height=%d,framerate=30/1 ! "
      "mmframesample fps=%g ! mmvisionenc name=enc model=\"%s\" device=%s "
      "stats-interval=1 ! mmllmsink name=sink model=\"%s\" device=%s "
      "max-tokens=%d prompt=\"%s\"", width, height, fps, argv[1], device,
      argv[2], device, max_tokens, prompt);
  b.pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  if (b.pipeline == NULL) {
    g_printerr ("%s: %s (is GST_PLUGIN_PATH the build folder?)\n", argv[0],
        err->message);
    return 1;
  }
  GstBus *bus = gst_element_get_bus (b.pipeline);
  gst_bus_set_sync_handler (bus, on_sync, &b, NULL);

  g_print ("live %dx%d at 30 fps, %g frames/s sampled, %d tokens at most a "
      "caption, %.0f s\nvision %s\nllm %s\n", width, height, fps, max_tokens,
      seconds, argv[1], argv[2]);
  gint64 t0 = g_get_monotonic_time ();
  gst_element_set_state (b.pipeline, GST_STATE_PLAYING);
  gboolean failed = FALSE, eos_sent = FALSE;
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 100 * GST_MSECOND,
        GST_MESSAGE_ERROR | GST_MESSAGE_EOS);
    if (m) {
      if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gst_message_parse_error (m, &e, NULL);
        g_printerr ("%s: %s\n", GST_OBJECT_NAME (m->src), e->message);
        g_error_free (e);
        failed = TRUE;
      }
      gst_message_unref (m);
      break;
    }
    if (!eos_sent && g_get_monotonic_time () - t0 > seconds * 1e6) {
      gst_element_send_event (b.pipeline, gst_event_new_eos ());
      eos_sent = TRUE;
    }
  }
  double wall = (g_get_monotonic_time () - t0) / 1e6;
  gst_element_set_state (b.pipeline, GST_STATE_NULL);

  guint64 sink_dropped = 0;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (b.pipeline), "sink");
  if (sink) {
    g_object_get (sink, "dropped", &sink_dropped, NULL);
    gst_object_unref (sink);
  }

  g_print ("%.1f s, %u captions (%.1f a minute)\n", wall, b.e2e_ms->len,
      b.e2e_ms->len * 60.0 / wall);
  report ("capture -> caption (end to end)", b.e2e_ms, "ms");
  report ("tokens at the sink -> caption", b.sink_ms, "ms");
  report ("prefill", b.prefill_ms, "ms");
  report ("decode", b.decode_ms, "ms");
  report ("prompt tokens", b.prompt_tokens, "");
  report ("prompt tokens computed (not reused)", b.new_tokens, "");
  report ("generated tokens", b.gen_tokens, "");
  if (b.have_stats)
    g_print ("encoder: %" G_GUINT64_FORMAT " sampled frames in, %"
        G_GUINT64_FORMAT " encoded (%.0f ms each on average), %"
        G_GUINT64_FORMAT " dropped; sink: %" G_GUINT64_FORMAT " requests "
        "dropped\n", b.frames_in, b.encoded, b.enc_ms, b.dropped,
        sink_dropped);
  g_print ("peak resident memory: %.0f MB (%.0f MB before the pipeline)\n",
      peak_rss_mb (), rss0);

  gboolean none = b.e2e_ms->len == 0;
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_object_unref (bus);
  gst_object_unref (b.pipeline);
  for (guint i = 0; i < G_N_ELEMENTS (arrays); i++)
    g_array_unref (*arrays[i]);
  g_mutex_clear (&b.lock);
  return failed || none ? 1 : 0;
}
