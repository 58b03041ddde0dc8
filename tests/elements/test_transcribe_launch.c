/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Transcription as a user types it, with the tiny Whisper fixture:
 *
 *   gst-launch-1.0 filesrc location=in.wav ! wavparse ! audioconvert
 *     ! audioresample ! mmaudioenc model=M window=1 hop=0.5
 *     ! mmllmsink model=M location=out.vtt
 *
 * on a 2.5 s WAV (audiotestsrc ticks, 22.05 kHz S16, so audioresample
 * works), then the file is checked as a WebVTT parser would (the header,
 * blocks of a timing line and text lines, times that parse, each cue
 * ending after it starts, start times never going back, all within the
 * audio); the same with location=out.jsonl, whose lines must carry the
 * transcript's fields (task, language, segments in order).  The random
 * model writes nonsense; the test wants the files right.
 *
 * Exits 77 (skipped) without the fixture, gst-launch-1.0, the WAV
 * elements or an OpenCL device.
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include "mm-engine.h"
#include "mm-test-util.h"

#define SKIP 77
#define AUDIO_SECONDS 2.5


/* Checks a WebVTT file; returns its cue count. */
static guint
check_webvtt (const gchar * path)
{
  gchar *contents = NULL, **blocks;
  gdouble prev_start = 0.0;
  guint i, n = 0;

  mm_check (g_file_get_contents (path, &contents, NULL, NULL), "%s", path);
  if (contents == NULL)
    return 0;
  mm_check (g_str_has_prefix (contents, "WEBVTT\n\n"), "header: %.20s", contents);
  mm_check (g_utf8_validate (contents, -1, NULL), "not UTF-8");
  mm_check (g_str_has_suffix (contents, "\n\n") || g_str_equal (contents,
          "WEBVTT\n\n"), "the last cue is not terminated");
  blocks = g_strsplit (contents + strlen ("WEBVTT\n\n"), "\n\n", -1);
  for (i = 0; blocks[i]; i++) {
    gchar **lines, **t;
    gdouble a, b;
    guint j;

    if (blocks[i][0] == '\0')
      continue;
    lines = g_strsplit (blocks[i], "\n", -1);
    t = g_strsplit (lines[0], " --> ", -1);
    mm_check (g_strv_length (t) == 2, "cue %u timing line: \"%s\"", n, lines[0]);
    a = t[0] ? mm_test_webvtt_time (t[0]) : -1;
    b = t[0] && t[1] ? mm_test_webvtt_time (t[1]) : -1;
    mm_check (a >= 0 && b > a, "cue %u times: \"%s\"", n, lines[0]);
    mm_check (a >= prev_start, "cue %u starts before the one before it", n);
    mm_check (a <= AUDIO_SECONDS, "cue %u starts after the audio: %s", n,
        lines[0]);
    mm_check (lines[1] != NULL, "cue %u has no text", n);
    for (j = 1; lines[j]; j++) {
      mm_check (lines[j][0] != '\0' && strstr (lines[j], "-->") == NULL,
          "cue %u line %u: \"%s\"", n, j, lines[j]);
      for (const gchar * p = lines[j]; *p; p++)
        mm_check ((guchar) * p >= 0x20 || *p == '\t', "cue %u: control "
            "character 0x%02x", n, (guchar) * p);
    }
    prev_start = a;
    n++;
    g_strfreev (t);
    g_strfreev (lines);
  }
  g_strfreev (blocks);
  g_free (contents);
  return n;
}

/* Checks a JSON Lines transcript; returns the count of lines. */
static guint
check_jsonl (const gchar * path)
{
  JsonParser *parser = json_parser_new ();
  gchar *contents = NULL, **lines;
  gdouble prev_end = 0.0;
  guint i, n = 0;

  mm_check (g_file_get_contents (path, &contents, NULL, NULL), "%s", path);
  if (contents == NULL)
    return 0;
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] && lines[i][0]; i++) {
    JsonObject *o;
    JsonArray *segs;
    GError *err = NULL;
    guint j;

    if (!json_parser_load_from_data (parser, lines[i], -1, &err)) {
      mm_check (FALSE, "line %u: %s", i, err->message);
      g_clear_error (&err);
      continue;
    }
    o = json_node_get_object (json_parser_get_root (parser));
    mm_check (json_object_get_int_member (o, "index") == i, "index of %u", i);
    mm_check (json_object_get_null_member (o, "prompt"), "prompt of %u", i);
    mm_check (g_str_equal (json_object_get_string_member (o, "task"),
            "transcribe"), "task of %u", i);
    mm_check (json_object_has_member (o, "language"), "language of %u", i);
    mm_check (g_str_equal (json_object_get_string_member (o, "model"), "hf"),
        "model of %u", i);
    mm_check (json_object_get_double_member (o, "latency_ms") >= 0, "latency");
    segs = json_object_get_array_member (o, "segments");
    mm_check (segs && json_array_get_length (segs) > 0, "segments of %u", i);
    for (j = 0; segs && j < json_array_get_length (segs); j++) {
      JsonObject *s = json_array_get_object_element (segs, j);
      gdouble a = json_object_get_double_member (s, "start");
      gdouble b = json_object_get_double_member (s, "end");

      mm_check (a >= prev_end - 0.0005 && b >= a && b <= AUDIO_SECONDS + 0.0005,
          "line %u segment %u: %.3f - %.3f after %.3f", i, j, a, b, prev_end);
      mm_check (json_object_get_string_member (s, "text")[0] != '\0',
          "line %u segment %u: no text", i, j);
      prev_end = b;
    }
    n++;
  }
  mm_check (n > 0, "no transcript in %s", path);
  g_strfreev (lines);
  g_free (contents);
  g_object_unref (parser);
  return n;
}

int
main (int argc, char **argv)
{
  const gchar *fx = g_getenv ("MM_FIXTURES");
  gchar *model, *launch, *dir, *wav, *vtt, *jsonl, *cmd;
  const gchar *need[] = { "wavenc", "wavparse", "audiotestsrc",
    "audioresample", "mmaudioenc", "mmllmsink"
  };
  GError *err = NULL;
  MmEngine *engine;
  guint i, n;

  gst_init (&argc, &argv);
  model = g_build_filename (fx ? fx : "tests/fixtures", "whisper", "hf", NULL);
  launch = g_find_program_in_path ("gst-launch-1.0");
  if (!g_file_test (model, G_FILE_TEST_IS_DIR) || launch == NULL) {
    g_print ("SKIP: %s is missing\n", launch ? model : "gst-launch-1.0");
    return SKIP;
  }
  for (i = 0; i < G_N_ELEMENTS (need); i++) {
    GstElementFactory *f = gst_element_factory_find (need[i]);

    if (f == NULL) {
      g_print ("SKIP: no %s element\n", need[i]);
      return SKIP;
    }
    gst_object_unref (f);
  }
  engine = mm_engine_get (NULL, &err);
  if (engine == NULL) {
    g_print ("SKIP: no OpenCL device: %s\n", err->message);
    return SKIP;
  }
  mm_engine_unref (engine);

  dir = g_dir_make_tmp ("mm-transcribe-XXXXXX", NULL);
  wav = g_build_filename (dir, "in.wav", NULL);
  vtt = g_build_filename (dir, "out.vtt", NULL);
  jsonl = g_build_filename (dir, "out.jsonl", NULL);

  cmd = g_strdup_printf ("%s -q audiotestsrc wave=ticks num-buffers=25 "
      "samplesperbuffer=2205 ! audio/x-raw,format=S16LE,rate=22050,"
      "channels=1 ! wavenc ! filesink location=%s", launch, wav);
  mm_test_run (cmd);
  g_free (cmd);

  cmd = g_strdup_printf ("%s -q filesrc location=%s ! wavparse ! "
      "audioconvert ! audioresample ! mmaudioenc model=%s window=1 hop=0.5 "
      "! mmllmsink model=%s location=%s", launch, wav, model, model, vtt);
  if (mm_test_run (cmd)) {
    n = check_webvtt (vtt);
    g_print ("%u WebVTT cue(s)\n", n);
    mm_check (n >= 1, "no cue in %s", vtt);
  }
  g_free (cmd);

  cmd = g_strdup_printf ("%s -q filesrc location=%s ! wavparse ! "
      "audioconvert ! audioresample ! mmaudioenc model=%s window=1 hop=0.5 "
      "! mmllmsink model=%s location=%s sync=false", launch, wav, model,
      model, jsonl);
  if (mm_test_run (cmd))
    g_print ("%u JSON Lines result(s)\n", check_jsonl (jsonl));
  g_free (cmd);

  g_unlink (wav);
  g_unlink (vtt);
  g_unlink (jsonl);
  g_rmdir (dir);
  g_free (jsonl);
  g_free (vtt);
  g_free (wav);
  g_free (dir);
  g_free (launch);
  g_free (model);
  return mm_test_failed ? 1 : 0;
}
