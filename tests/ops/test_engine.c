/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Engine: device selection by spec, the error listing devices, the shared
 * registry, the on-disk program cache surviving corruption, arena
 * rewinding, and urgent work / pacing between threads sharing the queue. */
#include "mm-test-util.h"

#include <string.h>
#include <glib/gstdio.h>

static gboolean
check_specs (void)
{
  gboolean ok = TRUE;
  GError *err = NULL;
  MmEngine *a = mm_engine_get ("auto", &err);
  MmEngine *b = mm_engine_get ("0", &err);
  gchar *name = g_strdup (mm_engine_device_name (a));
  /* a substring of the device name, in another case */
  gchar *sub = g_utf8_strup (strchr (name, ':') ? strchr (name, ':') + 2 : name,
      4);
  MmEngine *c = mm_engine_get (sub, &err);
  if (a == NULL || b == NULL || c == NULL) {
    g_printerr ("FAIL device specs: %s\n", err ? err->message : "?");
    return FALSE;
  }
  /* one device: the registry hands out the same engine */
  if (a != b || a != c) {
    g_printerr ("FAIL registry returned different engines for one device\n");
    ok = FALSE;
  }
  MmEngine *d = mm_engine_get ("no-such-device-xyz", &err);
  if (d != NULL || !g_error_matches (err, MM_ENGINE_ERROR,
          MM_ENGINE_ERROR_NO_DEVICE) || !strstr (err->message, name)) {
    g_printerr ("FAIL bad spec: error must list the devices (%s)\n",
        err ? err->message : "no error");
    ok = FALSE;
  }
  g_clear_error (&err);
  if (mm_engine_get ("99", &err) != NULL) {
    g_printerr ("FAIL index 99 accepted\n");
    ok = FALSE;
  }
  g_clear_error (&err);
  mm_engine_unref (a);
  mm_engine_unref (b);
  mm_engine_unref (c);
  g_free (name);
  g_free (sub);
  return ok;
}

static gint
count_and_corrupt (const gchar * dir, gboolean corrupt)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  gint n = 0;
  const gchar *f;
  while (d && (f = g_dir_read_name (d))) {
    if (!g_str_has_suffix (f, ".bin"))
      continue;
    n++;
    if (corrupt) {
      gchar *p = g_build_filename (dir, f, NULL);
      g_file_set_contents (p, "garbage, not a program binary", -1, NULL);
      g_free (p);
    }
  }
  if (d)
    g_dir_close (d);
  return n;
}

/* Runs one op so the program is really usable. */
static gboolean
run_op (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  float x[3] = { 1, 2, 3 }, want[3] = { 2, 4, 6 };
  gint64 n = 3;
  MmTensor *y = mm_scale (g, mm_graph_input_f32 (g, 1, &n, x), 2.0f);
  gboolean ok = mm_test_check_tensor (g, "scale after cache reload", y, want,
      3, 0, 0);
  mm_graph_free (g);
  mm_engine_unref (e);
  return ok;
}

/* mm_graph_mark / mm_graph_rewind: a deep loop keeps one step's worth of
 * arena, results carried across rewinds stay right, memo entries of
 * rewound tensors go. */
static gboolean
check_rewind (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  const gint64 n = 1 << 20;     /* 4 MiB per tensor */
  float *x = g_new (float, n), *want = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    x[i] = want[i] = (i % 17) * 0.25f;
  MmTensor *carry = mm_graph_tensor (g, MM_DTYPE_F32, 1, &n);
  mm_copy_rows_into (g, carry, 0, mm_graph_input_f32 (g, 1, &n, x));
  for (gint step = 0; step < 40; step++) {
    MmGraphMark mark = mm_graph_mark (g);
    MmTensor *t = mm_scale (g, mm_add (g, carry, carry), 0.75f);  /* 1.5 x */
    mm_graph_memo (g, "step", t);
    mm_copy_rows_into (g, carry, 0, mm_scale (g, t, 1.0f / 1.5f));
    mm_graph_rewind (g, mark);
  }
  gboolean ok = mm_test_check_tensor (g, "carried across rewinds", carry,
      want, n, 1e-5f, 1e-5f);
  if (mm_graph_memo (g, "step", NULL) != NULL) {
    g_printerr ("FAIL memo entry of a rewound tensor survived\n");
    ok = FALSE;
  }
  /* 40 steps of 3 x 4 MiB temporaries: without rewinding 480 MiB */
  if (mm_graph_arena_size (g) > ((gsize) 64 << 20)) {
    g_printerr ("FAIL arena grew to %" G_GSIZE_FORMAT " bytes\n",
        mm_graph_arena_size (g));
    ok = FALSE;
  }
  g_free (x);
  g_free (want);
  mm_graph_free (g);
  mm_engine_unref (e);
  return ok;
}

static gpointer
end_urgent_later (gpointer data)
{
  g_usleep (100 * 1000);
  mm_engine_urgent_end (data);
  return NULL;
}

/* A forward of @steps steps on its own graph, paced after each step: x
 * doubles and halves back, so the result is x. */
static gboolean
paced_forward (MmEngine * e, gint steps, const gchar * what)
{
  MmGraph *g = mm_graph_new (e);
  gint64 n = 1 << 16;
  gfloat *x = g_new (gfloat, n);
  for (gint64 i = 0; i < n; i++)
    x[i] = (i % 13) * 0.5f;
  MmTensor *carry = mm_graph_tensor (g, MM_DTYPE_F32, 1, &n);
  mm_copy_rows_into (g, carry, 0, mm_graph_input_f32 (g, 1, &n, x));
  for (gint step = 0; step < steps; step++) {
    mm_copy_rows_into (g, carry, 0, mm_scale (g, mm_scale (g, carry, 2.0f),
            0.5f));
    mm_graph_pace (g);
  }
  gboolean ok = mm_test_check_tensor (g, what, carry, x, n, 0.0f, 0.0f);
  g_free (x);
  mm_graph_free (g);
  return ok;
}

static gpointer
paced_thread (gpointer data)
{
  return GINT_TO_POINTER (paced_forward (data, 200, "paced, beside another"));
}

/* mm_engine_urgent_begin / end and mm_graph_pace: waits end when the
 * urgent work ends (or at the limit), nest, and paced forwards on two
 * threads at once give their results (no lock held while waiting). */
static gboolean
check_urgent (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  gint64 t0 = g_get_monotonic_time ();
  mm_engine_wait_urgent (e, G_USEC_PER_SEC);
  if (g_get_monotonic_time () - t0 > G_USEC_PER_SEC / 2) {
    g_printerr ("FAIL wait_urgent waited with no urgent work\n");
    ok = FALSE;
  }
  /* nested: one end leaves it urgent, so the wait runs to its limit */
  mm_engine_urgent_begin (e);
  mm_engine_urgent_begin (e);
  mm_engine_urgent_end (e);
  t0 = g_get_monotonic_time ();
  mm_engine_wait_urgent (e, 50 * 1000);
  if (g_get_monotonic_time () - t0 < 45 * 1000) {
    g_printerr ("FAIL wait_urgent returned while urgent work was on\n");
    ok = FALSE;
  }
  /* ended by another thread after 100 ms: the wait ends then */
  GThread *t = g_thread_new ("urgent", end_urgent_later, e);
  t0 = g_get_monotonic_time ();
  mm_engine_wait_urgent (e, 20 * G_USEC_PER_SEC);
  gint64 waited = g_get_monotonic_time () - t0;
  g_thread_join (t);
  if (waited < 90 * 1000 || waited > 10 * G_USEC_PER_SEC) {
    g_printerr ("FAIL wait_urgent took %" G_GINT64_FORMAT " us for an urgent "
        "end 100 ms later\n", waited);
    ok = FALSE;
  }
  /* a paced forward while urgent work is on: held back, then completes */
  mm_engine_urgent_begin (e);
  t = g_thread_new ("urgent", end_urgent_later, e);
  ok &= paced_forward (e, 8, "paced, held back by urgent work");
  g_thread_join (t);
  /* two paced forwards at once on the shared queue */
  GThread *other = g_thread_new ("paced", paced_thread, e);
  ok &= paced_forward (e, 200, "paced, beside another");
  ok &= GPOINTER_TO_INT (g_thread_join (other));
  mm_engine_unref (e);
  return ok;
}

int
main (void)
{
  gchar *tmp = g_dir_make_tmp ("mm-cache-XXXXXX", NULL);
  g_setenv ("MM_KERNEL_CACHE_DIR", tmp, TRUE);
  mm_engine_unref (mm_test_engine ());  /* skips (77) without a device */
  gboolean ok = check_specs ();
  /* the engine is freed on its last unref: the next get rebuilds the
   * program, from the cache when valid */
  if (count_and_corrupt (tmp, FALSE) != 1) {
    g_printerr ("FAIL expected one cached program binary in %s\n", tmp);
    ok = FALSE;
  }
  ok &= run_op ();
  ok &= check_rewind ();
  ok &= check_urgent ();
  count_and_corrupt (tmp, TRUE);
  ok &= run_op ();              /* corrupt entry: rebuilt, not fatal */
  gchar *p = NULL;
  GDir *d = g_dir_open (tmp, 0, NULL);
  const gchar *f;
  while (d && (f = g_dir_read_name (d))) {
    gchar *path = g_build_filename (tmp, f, NULL);
    gchar *data = NULL;
    gsize len = 0;
    g_file_get_contents (path, &data, &len, NULL);
    if (data && strstr (data, "garbage") == data) {
      g_printerr ("FAIL corrupt cache entry was not rewritten\n");
      ok = FALSE;
    }
    g_free (data);
    g_unlink (path);
    g_free (path);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (tmp);
  g_free (tmp);
  g_free (p);
  gchar *list = mm_engine_list_devices ();
  g_print ("devices:\n%s\n%s\n", list, ok ? "PASS" : "FAIL");
  g_free (list);
  return ok ? 0 : 1;
}
