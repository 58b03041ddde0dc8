/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GstMmTokensMeta and GstMmTokens: host and device payloads, add/get,
 * several metas on one buffer, copy semantics (shared immutable payload),
 * the multi-view layout (set, validated, kept by copies),
 * boxed type, thread-safe cached host copy, destroy notify.  The device
 * cases need an OpenCL device: without one the host cases run and the test
 * exits 77.
 */
#include <string.h>

#include <gst/gst.h>
#include <gst/check/gstcheck.h>

#include "gst/gstmmtokensmeta.h"
#include "mm-tensor.h"

/* odd shapes on purpose */
#define N_TOK 5
#define DIM 7

static gfloat *
pattern (guint n, gfloat scale)
{
  gfloat *x = g_new (gfloat, n);
  guint i;

  for (i = 0; i < n; i++)
    x[i] = scale * i - 3.25f;
  return x;
}

GST_START_TEST (test_host_payload)
{
  g_autofree gfloat *data = pattern (N_TOK * DIM, 0.5f);
  GstMmTokens *tokens = gst_mm_tokens_new_host (data, N_TOK, DIM);
  const gfloat *host;
  gsize offset = 99;

  fail_unless_equals_int (gst_mm_tokens_get_n_tokens (tokens), N_TOK);
  fail_unless_equals_int (gst_mm_tokens_get_dim (tokens), DIM);
  fail_unless_equals_int (gst_mm_tokens_get_dtype (tokens),
      GST_MM_TOKENS_DTYPE_F32);
  fail_unless_equals_uint64 (gst_mm_tokens_get_size (tokens),
      N_TOK * DIM * sizeof (gfloat));
  fail_unless (gst_mm_tokens_get_device (tokens, &offset) == NULL);
  fail_unless (gst_mm_tokens_get_queue (tokens) == NULL);

  host = gst_mm_tokens_get_host (tokens, NULL);
  fail_unless (host != NULL && host != data, "the payload holds a copy");
  fail_unless (memcmp (host, data, N_TOK * DIM * sizeof (gfloat)) == 0);
  /* the caller's array may go away */
  memset (data, 0, N_TOK * DIM * sizeof (gfloat));
  fail_unless_equals_float (gst_mm_tokens_get_host (tokens, NULL)[1], -2.75f);
  gst_mm_tokens_unref (tokens);
}

GST_END_TEST;

GST_START_TEST (test_add_get)
{
  g_autofree gfloat *data = pattern (N_TOK * DIM, 1.0f);
  GstMmTokens *tokens = gst_mm_tokens_new_host (data, N_TOK, DIM);
  GstBuffer *buf = gst_buffer_new ();
  GstMmTokensMeta *meta;

  fail_unless (gst_buffer_get_mm_tokens_meta (buf) == NULL);
  meta = gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_VIDEO, tokens,
      3 * GST_SECOND, 40 * GST_MSECOND, "siglip-test");
  fail_unless (meta != NULL);
  gst_mm_tokens_unref (tokens); /* the meta holds its own ref */

  meta = gst_buffer_get_mm_tokens_meta (buf);
  fail_unless (meta != NULL);
  fail_unless_equals_int (meta->modality, GST_MM_MODALITY_VIDEO);
  fail_unless_equals_int (meta->n_tokens, N_TOK);
  fail_unless_equals_int (meta->dim, DIM);
  fail_unless_equals_int (meta->dtype, GST_MM_TOKENS_DTYPE_F32);
  fail_unless_equals_uint64 (meta->pts, 3 * GST_SECOND);
  fail_unless_equals_uint64 (meta->duration, 40 * GST_MSECOND);
  fail_unless_equals_string (meta->model_id, "siglip-test");
  fail_unless_equals_float (gst_mm_tokens_get_host (meta->tokens,
          NULL)[N_TOK * DIM - 1], N_TOK * DIM - 1 - 3.25f);
  fail_unless (meta->meta.info->api == GST_MM_TOKENS_META_API_TYPE);
  gst_buffer_unref (buf);
}

GST_END_TEST;

static GstStaticCaps ts_caps = GST_STATIC_CAPS ("timestamp/x-test");

GST_START_TEST (test_iterate_several)
{
  gfloat one[3] = { 1, 2, 3 };
  GstMmTokens *video = gst_mm_tokens_new_host (one, 1, 3);
  GstMmTokens *audio = gst_mm_tokens_new_host (one, 3, 1);
  GstBuffer *buf = gst_buffer_new ();
  GstMmTokensMeta *meta;
  GstCaps *ts;
  gpointer state = NULL;
  guint n = 0, seen = 0;

  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_VIDEO, video, 0,
      GST_CLOCK_TIME_NONE, NULL);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, audio,
      GST_SECOND, GST_SECOND, "whisper");
  /* a meta of another API is skipped */
  ts = gst_static_caps_get (&ts_caps);
  gst_buffer_add_reference_timestamp_meta (buf, ts, 0, 0);
  gst_caps_unref (ts);

  while ((meta = gst_buffer_iterate_mm_tokens_meta (buf, &state))) {
    n++;
    if (meta->modality == GST_MM_MODALITY_VIDEO) {
      seen |= 1;
      fail_unless (meta->tokens == video);
      fail_unless (meta->model_id == NULL);
      fail_unless_equals_uint64 (meta->duration, GST_CLOCK_TIME_NONE);
    } else {
      seen |= 2;
      fail_unless (meta->tokens == audio);
      fail_unless_equals_int (meta->n_tokens, 3);
      fail_unless_equals_string (meta->model_id, "whisper");
    }
  }
  fail_unless_equals_int (n, 2);
  fail_unless_equals_int (seen, 3);
  gst_mm_tokens_unref (video);
  gst_mm_tokens_unref (audio);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* Copies share the immutable payload; each copy keeps it alive. */
GST_START_TEST (test_copy_shares_payload)
{
  gfloat x[4] = { 4, 3, 2, 1 };
  GstMmTokens *tokens = gst_mm_tokens_new_host (x, 2, 2);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 8, NULL);
  GstBuffer *copy, *region;
  GstMmTokensMeta *a, *b;

  a = gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_AUDIO, tokens,
      GST_SECOND, GST_MSECOND, "m");
  gst_mm_tokens_unref (tokens);

  copy = gst_buffer_copy (buf);
  b = gst_buffer_get_mm_tokens_meta (copy);
  fail_unless (b != NULL && b != a);
  fail_unless (b->tokens == a->tokens);
  fail_unless (b->model_id != a->model_id);
  fail_unless_equals_string (b->model_id, "m");
  fail_unless_equals_int (b->modality, GST_MM_MODALITY_AUDIO);
  fail_unless_equals_uint64 (b->pts, GST_SECOND);
  fail_unless_equals_uint64 (b->duration, GST_MSECOND);

  region = gst_buffer_copy_region (buf, GST_BUFFER_COPY_ALL, 2, 4);
  fail_unless (gst_buffer_get_mm_tokens_meta (region)->tokens == a->tokens);

  gst_buffer_unref (buf);
  gst_buffer_unref (region);
  fail_unless_equals_float (gst_mm_tokens_get_host (b->tokens, NULL)[3], 1);
  gst_buffer_unref (copy);
}

GST_END_TEST;

/* The multi-view layout: one view by default; a tiled layout is checked
 * against the token count and kept by copies. */
GST_START_TEST (test_layout)
{
  g_autofree gfloat *data = pattern (63 * 2, 1.0f);
  GstMmTokens *tokens = gst_mm_tokens_new_host (data, 63, 2);
  GstBuffer *buf = gst_buffer_new (), *copy;
  GstMmTokensMeta *meta, *b;

  meta = gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_VIDEO, tokens,
      0, GST_SECOND, "idefics3");
  gst_mm_tokens_unref (tokens);
  fail_unless_equals_int (meta->n_views, 1);
  fail_unless_equals_int (meta->tokens_per_view, 63);
  fail_unless_equals_int (meta->rows, 0);
  fail_unless_equals_int (meta->cols, 0);
  fail_unless_equals_int (meta->global_view, 0);

  /* invalid: 63 tokens in 5 views, rows without cols, more tiles than
   * views, global view out of range; the meta stays as it was */
  fail_if (gst_mm_tokens_meta_set_layout (meta, 2, 2, 5, 4));
  fail_if (gst_mm_tokens_meta_set_layout (meta, 2, 0, 7, 6));
  fail_if (gst_mm_tokens_meta_set_layout (meta, 3, 3, 7, 6));
  fail_if (gst_mm_tokens_meta_set_layout (meta, 2, 3, 7, 7));
  fail_if (gst_mm_tokens_meta_set_layout (meta, 2, 3, 0, -1));
  fail_unless_equals_int (meta->n_views, 1);
  fail_unless_equals_int (meta->tokens_per_view, 63);

  /* 2 x 3 tiles + the global image, 9 tokens each */
  fail_unless (gst_mm_tokens_meta_set_layout (meta, 2, 3, 7, 6));
  fail_unless_equals_int (meta->n_views, 7);
  fail_unless_equals_int (meta->tokens_per_view, 9);
  fail_unless_equals_int (meta->rows, 2);
  fail_unless_equals_int (meta->cols, 3);
  fail_unless_equals_int (meta->global_view, 6);

  copy = gst_buffer_copy (buf);
  b = gst_buffer_get_mm_tokens_meta (copy);
  fail_unless (b != NULL && b != meta && b->tokens == meta->tokens);
  fail_unless_equals_int (b->n_views, 7);
  fail_unless_equals_int (b->tokens_per_view, 9);
  fail_unless_equals_int (b->rows, 2);
  fail_unless_equals_int (b->cols, 3);
  fail_unless_equals_int (b->global_view, 6);
  gst_buffer_unref (copy);

  /* views without a global one (-1) */
  fail_unless (gst_mm_tokens_meta_set_layout (meta, 3, 3, 9, -1));
  fail_unless_equals_int (meta->tokens_per_view, 7);
  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_types)
{
  gfloat x[1] = { 1 };
  GstMmTokens *tokens = gst_mm_tokens_new_host (x, 1, 1);
  GstMmTokens *boxed;
  GEnumClass *klass;

  boxed = g_boxed_copy (GST_TYPE_MM_TOKENS, tokens);
  fail_unless (boxed == tokens);
  g_boxed_free (GST_TYPE_MM_TOKENS, boxed);
  gst_mm_tokens_unref (tokens);

  klass = g_type_class_ref (GST_TYPE_MM_MODALITY);
  fail_unless_equals_int (g_enum_get_value_by_nick (klass, "video")->value,
      GST_MM_MODALITY_VIDEO);
  fail_unless_equals_int (g_enum_get_value_by_nick (klass, "audio")->value,
      GST_MM_MODALITY_AUDIO);
  g_type_class_unref (klass);
  klass = g_type_class_ref (GST_TYPE_MM_TOKENS_DTYPE);
  fail_unless (g_enum_get_value_by_nick (klass, "f32") != NULL);
  g_type_class_unref (klass);
  fail_unless (GST_MM_TOKENS_META_INFO != NULL);
  fail_unless (GST_MM_TOKENS_META_INFO == gst_meta_get_info
      ("GstMmTokensMeta"));
}

GST_END_TEST;

/* device payloads */

static MmEngine *engine;

static void
count_notify (gpointer data)
{
  g_atomic_int_inc ((gint *) data);
}

typedef struct
{
  GstMmTokens *tokens;
  const gfloat *got;
} Reader;

static gpointer
read_host (gpointer data)
{
  Reader *r = data;

  r->got = gst_mm_tokens_get_host (r->tokens, NULL);
  return NULL;
}

GST_START_TEST (test_device_payload)
{
  const guint pad = 3;          /* tokens start 3 floats into the buffer */
  gint64 shape[1] = { pad + N_TOK * DIM };
  g_autofree gfloat *data = pattern (pad + N_TOK * DIM, 0.25f);
  g_autoptr (GError) err = NULL;
  MmTensor *t = mm_tensor_upload (engine, MM_DTYPE_F32, 1, shape, data,
      "test tokens", &err);
  GstMmTokens *tokens;
  Reader readers[8];
  GThread *threads[8];
  gsize offset = 0;
  gint notified = 0;
  guint i;

  fail_unless (t != NULL, "%s", err ? err->message : "?");
  tokens = gst_mm_tokens_new_device (t->buf, pad * sizeof (gfloat),
      mm_engine_queue (engine), N_TOK, DIM, GST_MM_TOKENS_DTYPE_F32,
      count_notify, &notified);
  fail_unless (gst_mm_tokens_get_device (tokens, &offset) == t->buf);
  fail_unless_equals_uint64 (offset, pad * sizeof (gfloat));
  fail_unless (gst_mm_tokens_get_queue (tokens) == mm_engine_queue (engine));
  /* the payload retained the buffer: the producer may drop its own */
  mm_tensor_free (t);

  /* concurrent first reads make one cached copy */
  for (i = 0; i < G_N_ELEMENTS (threads); i++) {
    readers[i].tokens = tokens;
    threads[i] = g_thread_new ("reader", read_host, &readers[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (threads); i++) {
    g_thread_join (threads[i]);
    fail_unless (readers[i].got != NULL);
    fail_unless (readers[i].got == readers[0].got);
  }
  fail_unless (memcmp (readers[0].got, data + pad,
          N_TOK * DIM * sizeof (gfloat)) == 0);

  gst_mm_tokens_ref (tokens);
  gst_mm_tokens_unref (tokens);
  fail_unless_equals_int (notified, 0);
  gst_mm_tokens_unref (tokens);
  fail_unless_equals_int (notified, 1);
}

GST_END_TEST;

/* A payload that would read past the end of its buffer is refused. */
GST_START_TEST (test_device_bounds)
{
  gint64 shape[1] = { N_TOK * DIM };
  MmTensor *t = mm_tensor_new (engine, MM_DTYPE_F32, 1, shape, "small",
      NULL);

  GLogLevelFlags fatal;

  fail_unless (t != NULL);
  /* under G_DEBUG=fatal-criticals GLib bypasses gst-check's handler */
  fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK);
  ASSERT_CRITICAL (gst_mm_tokens_new_device (t->buf, sizeof (gfloat),
          mm_engine_queue (engine), N_TOK, DIM, GST_MM_TOKENS_DTYPE_F32,
          NULL, NULL));
  g_log_set_always_fatal (fatal);
  mm_tensor_free (t);
}

GST_END_TEST;

/* The meta on a buffer keeps the device buffer alive after the producer is
 * gone; the destroy notify runs when the last buffer goes. */
GST_START_TEST (test_device_meta_lifetime)
{
  gint64 shape[2] = { 2, 3 };
  gfloat x[6] = { 1, 2, 3, 4, 5, 6 };
  MmTensor *t = mm_tensor_upload (engine, MM_DTYPE_F32, 2, shape, x, "t",
      NULL);
  GstBuffer *buf = gst_buffer_new (), *copy;
  GstMmTokens *tokens;
  gint notified = 0;

  tokens = gst_mm_tokens_new_device (t->buf, 0, mm_engine_queue (engine), 2,
      3, GST_MM_TOKENS_DTYPE_F32, count_notify, &notified);
  mm_tensor_free (t);
  gst_buffer_add_mm_tokens_meta (buf, GST_MM_MODALITY_VIDEO, tokens, 0, 0, "x");
  gst_mm_tokens_unref (tokens);
  copy = gst_buffer_copy (buf);
  gst_buffer_unref (buf);
  fail_unless_equals_int (notified, 0);
  fail_unless_equals_float (gst_mm_tokens_get_host
      (gst_buffer_get_mm_tokens_meta (copy)->tokens, NULL)[5], 6);
  gst_buffer_unref (copy);
  fail_unless_equals_int (notified, 1);
}

GST_END_TEST;

static Suite *
mmtokensmeta_suite (gboolean device)
{
  Suite *s = suite_create ("mmtokensmeta");
  TCase *tc = tcase_create ("host");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_host_payload);
  tcase_add_test (tc, test_add_get);
  tcase_add_test (tc, test_iterate_several);
  tcase_add_test (tc, test_copy_shares_payload);
  tcase_add_test (tc, test_layout);
  tcase_add_test (tc, test_types);
  if (device) {
    tc = tcase_create ("device");
    suite_add_tcase (s, tc);
    tcase_add_test (tc, test_device_payload);
    tcase_add_test (tc, test_device_bounds);
    tcase_add_test (tc, test_device_meta_lifetime);
  }
  return s;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) err = NULL;
  gint failed;

  /* OpenCL state does not survive fork(): run the cases in this process */
  g_setenv ("CK_FORK", "no", TRUE);
  gst_check_init (&argc, &argv);
  engine = mm_engine_get (NULL, &err);
  failed = gst_check_run_suite (mmtokensmeta_suite (engine != NULL),
      "mmtokensmeta", __FILE__);
  if (failed)
    return 1;
  if (engine == NULL) {
    g_print ("SKIP: device cases need an OpenCL device: %s\n", err->message);
    return 77;
  }
  mm_engine_unref (engine);
  return 0;
}
