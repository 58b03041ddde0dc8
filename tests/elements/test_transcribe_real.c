/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Real weights through the elements: an 18 s passage spoken by espeak-ng
 * (eight sentences, a 22.05 kHz WAV) transcribed with Whisper tiny.en as a
 * user types it,
 *
 *   gst-launch-1.0 filesrc location=passage.wav ! wavparse ! audioconvert
 *     ! audioresample ! mmaudioenc model=M window=W hop=H
 *     ! mmllmsink model=M location=out.vtt timestamps=T sync=false
 *
 * with overlapping windows (10 s every 5 s, with and without timestamps;
 * 5 s every 2.5 s with timestamps), so that every word is heard by two
 * windows and mmllmsink must merge them (elements/mm-transcript-merge.h).
 * The WebVTT file must parse (header, cue times in order, within the
 * audio), and its words, case- and punctuation-insensitive, must be the
 * passage's in order: at most MAX_WORD_ERRORS of its 59 words substituted,
 * missing or extra (tiny.en mishears espeak-ng now and then), and no word
 * that the passage says once (of four letters or more) may appear twice:
 * a repeat is the merge failing.
 *
 * The model folder is $MM_REAL_WHISPER, else
 * ~/.cache/mm/models/whisper-tiny.en (scripts/fetch-real-models.sh).
 * Exits 77 (skipped) with the reason without it, espeak-ng
 * ($MM_ESPEAK), gst-launch-1.0, the elements or an OpenCL device.
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gst/gst.h>

#include "mm-engine.h"
#include "mm-test-speech.h"
#include "mm-test-util.h"

#define SKIP 77
#define MAX_WORD_ERRORS 5

#define PASSAGE "Good morning. Today the weather is sunny and warm. " \
  "Please open the window and close the door. My sister will make some " \
  "coffee and fresh toast. We are going to the market after lunch. " \
  "Children like to play games in the park. The river flows slowly past " \
  "the small village. He bought a new bicycle with his own money."


/* The cues' text of a WebVTT file, joined by spaces; checks the times. */
static gchar *
read_webvtt (const gchar * path, gdouble seconds, guint * n_cues)
{
  gchar *contents = NULL, **blocks;
  GString *text = g_string_new (NULL);
  gdouble prev_start = 0.0;

  *n_cues = 0;
  mm_check (g_file_get_contents (path, &contents, NULL, NULL), "%s", path);
  if (contents == NULL)
    return g_string_free (text, FALSE);
  mm_check (g_str_has_prefix (contents, "WEBVTT\n\n"), "header: %.20s", contents);
  blocks = g_strsplit (g_str_has_prefix (contents, "WEBVTT\n\n") ?
      contents + 8 : contents, "\n\n", -1);
  for (guint i = 0; blocks[i]; i++) {
    gchar **lines, **t;
    gdouble a, b;

    if (blocks[i][0] == '\0')
      continue;
    lines = g_strsplit (blocks[i], "\n", -1);
    t = g_strsplit (lines[0], " --> ", -1);
    a = g_strv_length (t) == 2 ? mm_test_webvtt_time (t[0]) : -1;
    b = g_strv_length (t) == 2 ? mm_test_webvtt_time (t[1]) : -1;
    mm_check (a >= 0 && b > a, "cue %u times: \"%s\"", *n_cues, lines[0]);
    mm_check (a >= prev_start, "cue %u starts before the one before it", *n_cues);
    mm_check (b <= seconds + 0.5, "cue %u ends after the audio (%.2f s): %s",
        *n_cues, seconds, lines[0]);
    mm_check (lines[1] != NULL, "cue %u has no text", *n_cues);
    for (guint j = 1; lines[j]; j++)
      g_string_append_printf (text, "%s ", lines[j]);
    prev_start = a;
    (*n_cues)++;
    g_strfreev (t);
    g_strfreev (lines);
  }
  g_strfreev (blocks);
  g_free (contents);
  return g_string_free (text, FALSE);
}

static void
check_words (const gchar * text)
{
  gchar **want = mm_test_words (PASSAGE), **got = mm_test_words (text);
  guint errors = mm_test_word_errors (want, got);

  g_print ("  %u word error(s) in %u words (at most %d)\n", errors,
      g_strv_length (want), MAX_WORD_ERRORS);
  mm_check (errors <= MAX_WORD_ERRORS, "%u word errors in \"%s\"", errors, text);
  for (guint i = 0; want[i]; i++)
    if (strlen (want[i]) >= 4 && mm_test_word_count (want, want[i]) == 1)
      mm_check (mm_test_word_count (got, want[i]) <= 1, "\"%s\" repeated: "
          "\"%s\"", want[i], text);
  g_strfreev (want);
  g_strfreev (got);
}

static void
transcribe (const gchar * launch, const gchar * model, const gchar * wav,
    const gchar * vtt, const gchar * window, const gchar * hop,
    gboolean timestamps, gdouble seconds)
{
  gchar *qm = g_shell_quote (model), *qw = g_shell_quote (wav);
  gchar *qv = g_shell_quote (vtt), *text;
  gchar *cmd = g_strdup_printf ("%s -q filesrc location=%s ! wavparse ! "
      "audioconvert ! audioresample ! mmaudioenc model=%s window=%s hop=%s ! "
      "mmllmsink model=%s location=%s timestamps=%s sync=false "
      "eos-timeout=600", launch, qw, qm, window, hop, qm, qv,
      timestamps ? "true" : "false");
  gint64 t0 = g_get_monotonic_time ();
  guint n_cues;

  if (mm_test_run (cmd)) {
    text = read_webvtt (vtt, seconds, &n_cues);
    g_print ("  %.1f s, %u cue(s): \"%s\"\n",
        (g_get_monotonic_time () - t0) / 1e6, n_cues, text);
    mm_check (n_cues > 0, "no cue");
    check_words (text);
    g_free (text);
  }
  g_unlink (vtt);
  g_free (cmd);
  g_free (qm);
  g_free (qw);
  g_free (qv);
}

static gboolean
need_elements (void)
{
  const gchar *need[] = { "wavparse", "audioconvert", "audioresample",
    "mmaudioenc", "mmllmsink"
  };

  for (guint i = 0; i < G_N_ELEMENTS (need); i++) {
    GstElementFactory *f = gst_element_factory_find (need[i]);

    if (f == NULL) {
      g_print ("SKIP: no %s element\n", need[i]);
      return FALSE;
    }
    gst_object_unref (f);
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  const gchar *env = g_getenv ("MM_REAL_WHISPER");
  gchar *model, *cfg, *espeak, *launch, *dir, *wav, *vtt;
  float *samples;
  GError *err = NULL;
  MmEngine *engine;
  gint rate = 0;
  gsize n = 0;

  gst_init (&argc, &argv);
  model = env ? g_strdup (env) : g_build_filename (g_get_user_cache_dir (),
      "mm", "models", "whisper-tiny.en", NULL);
  cfg = g_build_filename (model, "config.json", NULL);
  espeak = mm_test_espeak_find ();
  launch = g_find_program_in_path ("gst-launch-1.0");
  if (!g_file_test (cfg, G_FILE_TEST_EXISTS)) {
    g_print ("SKIP: Whisper tiny.en folder %s not found (set "
        "MM_REAL_WHISPER, or run scripts/fetch-real-models.sh)\n", model);
    return SKIP;
  }
  if (espeak == NULL || launch == NULL) {
    g_print ("SKIP: %s not found\n", espeak ? "gst-launch-1.0" :
        "espeak-ng (apt-get install espeak-ng, or set MM_ESPEAK)");
    return SKIP;
  }
  if (!need_elements ())
    return SKIP;
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL) {
    g_print ("SKIP: no OpenCL device: %s\n", err->message);
    return SKIP;
  }
  mm_engine_unref (engine);

  dir = g_dir_make_tmp ("mm-transcribe-real-XXXXXX", NULL);
  wav = g_build_filename (dir, "passage.wav", NULL);
  vtt = g_build_filename (dir, "out.vtt", NULL);
  samples = mm_test_espeak (espeak, PASSAGE, wav, &err) ?
      mm_test_wav_read (wav, &rate, &n, &err) : NULL;
  mm_check (samples != NULL, "%s", err ? err->message : "");
  if (samples) {
    gdouble seconds = (gdouble) n / rate;

    g_print ("espeak-ng: %.2f s at %d Hz\n", seconds, rate);
    mm_check (seconds > 12 && seconds < 30, "the passage lasts %.2f s", seconds);
    transcribe (launch, model, wav, vtt, "10", "5", TRUE, seconds);
    transcribe (launch, model, wav, vtt, "10", "5", FALSE, seconds);
    transcribe (launch, model, wav, vtt, "5", "2.5", TRUE, seconds);
  }

  g_clear_error (&err);
  g_free (samples);
  g_unlink (wav);
  g_rmdir (dir);
  g_free (vtt);
  g_free (wav);
  g_free (dir);
  g_free (launch);
  g_free (espeak);
  g_free (cfg);
  g_free (model);
  return mm_test_failed ? 1 : 0;
}
