/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink with real models from $MM_FIXTURES, through the built plugin.
 *
 *   test_mmllmsink_real llm     tokens from appsrc into the tiny Idefics3
 *                               text model: captions in a JSON Lines file;
 *                               tokens of the wrong width into the tiny
 *                               Llama: an error naming both models
 *   test_mmllmsink_real launch  gst-launch-1.0 videotestsrc ! mmframesample
 *                               ! mmvisionenc ! mmllmsink location=….jsonl,
 *                               then every line of the file is checked
 *
 * Each mode exits 77 (skipped) with a message when what it needs is
 * missing: a fixture, an OpenCL device, mmvisionenc, gst-launch-1.0.
 */
#include <string.h>

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include "gst/gstmmtokensmeta.h"
#include "mm-engine.h"
#include "mm-test-util.h"

#define SKIP 77
#define TIMEOUT (120 * GST_SECOND)


static gchar *
fixture (const gchar * rel)
{
  const gchar *dir = g_getenv ("MM_FIXTURES");

  return g_build_filename (dir ? dir : "tests/fixtures", rel, NULL);
}

static gboolean
need_file (const gchar * path)
{
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_print ("SKIP: fixture %s is missing (see tests/fixtures/README.md)\n",
      path);
  return FALSE;
}

static gboolean
need_device (void)
{
  GError *err = NULL;
  MmEngine *e = mm_engine_get (NULL, &err);

  if (e == NULL) {
    g_print ("SKIP: no OpenCL device: %s\n", err->message);
    g_clear_error (&err);
    return FALSE;
  }
  mm_engine_unref (e);
  return TRUE;
}

/* Checks every line of a JSON Lines caption file; returns the count. */
static guint
check_jsonl (const gchar * path, const gchar * model_part)
{
  JsonParser *parser = json_parser_new ();
  gchar *contents = NULL, **lines;
  guint i, n = 0;

  mm_check (g_file_get_contents (path, &contents, NULL, NULL), "%s", path);
  if (contents == NULL)
    return 0;
  mm_check (g_str_has_suffix (contents, "\n"), "unterminated last line");
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] && lines[i][0]; i++) {
    GError *err = NULL;
    JsonObject *o;

    if (!json_parser_load_from_data (parser, lines[i], -1, &err)) {
      mm_check (FALSE, "line %u is not JSON: %s: %s", i, err->message, lines[i]);
      g_clear_error (&err);
      continue;
    }
    o = json_node_get_object (json_parser_get_root (parser));
    mm_check (o != NULL, "line %u is not an object", i);
    if (o == NULL)
      continue;
    mm_check (json_object_get_int_member (o, "index") == i, "index of %u", i);
    mm_check (JSON_NODE_HOLDS_VALUE (json_object_get_member (o, "text")),
        "text of %u", i);
    mm_check (json_object_get_double_member (o, "end") >=
        json_object_get_double_member (o, "start"), "span of %u", i);
    mm_check (strstr (json_object_get_string_member (o, "model"),
            model_part) != NULL, "model of %u: %s", i,
        json_object_get_string_member (o, "model"));
    mm_check (json_object_get_int_member (o, "prompt_tokens") > 0,
        "prompt_tokens of %u", i);
    mm_check (json_object_get_int_member (o, "generated_tokens") > 0,
        "generated_tokens of %u", i);
    mm_check (json_object_get_double_member (o, "latency_ms") > 0,
        "latency of %u", i);
    n++;
  }
  mm_check (lines[i] == NULL || lines[i + 1] == NULL, "empty line inside");
  g_strfreev (lines);
  g_free (contents);
  g_object_unref (parser);
  return n;
}

static void
push_tokens (GstElement * src, guint i, guint n_tokens, guint dim,
    const gchar * model_id)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  gfloat *x = g_new (gfloat, n_tokens * dim);
  GstMmTokens *tokens;
  GstFlowReturn ret;
  guint k;

  for (k = 0; k < n_tokens * dim; k++)
    x[k] = 0.05f * (gfloat) ((k * 7 + i * 13) % 17) - 0.4f;
  gst_buffer_memset (buf, 0, 0x80, 16);
  GST_BUFFER_PTS (buf) = i * GST_SECOND;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  tokens = gst_mm_tokens_new_host (x, n_tokens, dim);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_VIDEO, tokens,
      i * GST_SECOND, GST_SECOND, model_id);
  gst_mm_tokens_unref (tokens);
  g_free (x);
  g_signal_emit_by_name (src, "push-buffer", buf, &ret);
  gst_buffer_unref (buf);
}

/* Runs appsrc ! mmllmsink with @n samples of @n_tokens x @dim; returns
 * the EOS or ERROR message. */
static GstMessage *
run_appsrc (const gchar * model, const gchar * location, guint n,
    guint n_tokens, guint dim)
{
  gchar *desc = g_strdup_printf ("appsrc name=src format=time "
      "caps=video/x-raw,format=GRAY8,width=4,height=4,framerate=1/1 ! "
      "mmllmsink model=\"%s\" location=\"%s\" max-tokens=12 sync=false",
      model, location);
  GError *err = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &err), *src;
  GstMessage *msg;
  GstBus *bus;
  GstFlowReturn ret;
  guint i;

  mm_check (pipeline != NULL, "%s: %s", desc, err ? err->message : "");
  g_free (desc);
  if (pipeline == NULL)
    return NULL;
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (i = 0; i < n; i++)
    push_tokens (src, i, n_tokens, dim, "mmproj-idefics3.gguf");
  g_signal_emit_by_name (src, "end-of-stream", &ret);

  msg = gst_bus_timed_pop_filtered (bus, TIMEOUT,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (src);
  gst_object_unref (pipeline);
  return msg;
}

static int
test_llm (void)
{
  gchar *llm = fixture ("idefics3/idefics3.gguf");
  gchar *llama = fixture ("llama/llama.gguf");
  gchar *dir, *path;
  GstMessage *msg;
  GError *err = NULL;
  gchar *dbg = NULL;

  if (!need_file (llm) || !need_file (llama) || !need_device ())
    return SKIP;

  dir = g_dir_make_tmp ("mmllmsink-real-XXXXXX", NULL);
  path = g_build_filename (dir, "captions.jsonl", NULL);

  /* tokens of the text model's width (40): three captions */
  msg = run_appsrc (llm, path, 3, 9, 40);
  mm_check (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS, "no EOS");
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    gst_message_parse_error (msg, &err, &dbg);
    g_printerr ("error: %s (%s)\n", err->message, dbg);
    g_clear_error (&err);
    g_free (dbg);
  }
  gst_clear_message (&msg);
  mm_check (check_jsonl (path, "idefics3") == 3, "three captions");
  g_unlink (path);

  /* the same tokens into the Llama fixture (another hidden size) */
  msg = run_appsrc (llama, path, 1, 9, 40);
  mm_check (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR, "no error");
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    gst_message_parse_error (msg, &err, NULL);
    mm_check (strstr (err->message, "dimension 40") != NULL, "%s", err->message);
    mm_check (strstr (err->message, "hidden size is ") != NULL, "%s",
        err->message);
    mm_check (strstr (err->message, "mmproj-idefics3") != NULL, "%s",
        err->message);
    mm_check (strstr (err->message, "llama") != NULL, "%s", err->message);
    g_clear_error (&err);
  }
  gst_clear_message (&msg);

  g_unlink (path);
  g_rmdir (dir);
  g_free (path);
  g_free (dir);
  g_free (llama);
  g_free (llm);
  return mm_test_failed ? 1 : 0;
}

/* The command a user types, run as a separate process. */
static int
test_launch (void)
{
  gchar *llm = fixture ("idefics3/idefics3.gguf");
  gchar *mmproj = fixture ("idefics3/mmproj-idefics3.gguf");
  gchar *launch = g_find_program_in_path ("gst-launch-1.0");
  GstElementFactory *venc;
  gchar *dir, *path, *cmd;
  guint n;

  if (!need_file (llm) || !need_file (mmproj) || !need_device ())
    return SKIP;
  venc = gst_element_factory_find ("mmvisionenc");
  if (venc == NULL || launch == NULL) {
    g_print ("SKIP: %s is missing\n", venc ? "gst-launch-1.0" :
        "the mmvisionenc element");
    return SKIP;
  }
  gst_object_unref (venc);

  dir = g_dir_make_tmp ("mmllmsink-launch-XXXXXX", NULL);
  path = g_build_filename (dir, "out.jsonl", NULL);
  cmd = g_strdup_printf ("%s -q videotestsrc num-buffers=30 ! "
      "mmframesample fps=1 ! mmvisionenc model=%s ! "
      "mmllmsink model=%s location=%s max-tokens=12", launch, mmproj, llm,
      path);
  mm_test_run (cmd);

  n = check_jsonl (path, "idefics3");
  mm_check (n >= 1, "no captions");
  g_print ("%u caption(s)\n", n);

  g_unlink (path);
  g_rmdir (dir);
  g_free (cmd);
  g_free (path);
  g_free (dir);
  g_free (launch);
  g_free (mmproj);
  g_free (llm);
  return mm_test_failed ? 1 : 0;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);

  if (argc == 2 && g_str_equal (argv[1], "llm"))
    return test_llm ();
  if (argc == 2 && g_str_equal (argv[1], "launch"))
    return test_launch ();
  g_printerr ("usage: %s llm|launch\n", argv[0]);
  return 2;
}
