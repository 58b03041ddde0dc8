/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-vision-fake.h"

#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

struct _MmVisionModel
{
  MmEngine *engine;
  gint n_tokens, dim, delay_ms, fail_value;
  gchar *id;
  gdouble last_ms;
};

static GMutex gate_lock;
static GCond gate_cond;
static gboolean gate_closed;
static guint n_started;

gchar *
fake_vision_write (gint n_tokens, gint dim, gint delay_ms, gint fail_value)
{
  g_autofree gchar *dir = g_dir_make_tmp ("mmvenc-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "fake.vision", NULL);
  g_autofree gchar *text =
      g_strdup_printf ("fake-vision n_tokens=%d dim=%d delay_ms=%d "
      "fail_value=%d\n", n_tokens, dim, delay_ms, fail_value);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

void
fake_vision_gate_close (void)
{
  g_mutex_lock (&gate_lock);
  gate_closed = TRUE;
  g_mutex_unlock (&gate_lock);
}

void
fake_vision_gate_open (void)
{
  g_mutex_lock (&gate_lock);
  gate_closed = FALSE;
  g_cond_broadcast (&gate_cond);
  g_mutex_unlock (&gate_lock);
}

guint
fake_vision_started (void)
{
  guint n;

  g_mutex_lock (&gate_lock);
  n = n_started;
  g_mutex_unlock (&gate_lock);
  return n;
}

gboolean
fake_vision_wait_started (guint n)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gboolean ok;

  g_mutex_lock (&gate_lock);
  while (n_started < n && g_cond_wait_until (&gate_cond, &gate_lock, end));
  ok = n_started >= n;
  g_mutex_unlock (&gate_lock);
  return ok;
}

MmVisionModel *
mm_vision_model_load (MmEngine * engine, const gchar * path, GError ** error)
{
  g_autofree gchar *text = NULL;
  MmVisionModel *m;
  gint n, d, delay, fail;

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  if (sscanf (text, "fake-vision n_tokens=%d dim=%d delay_ms=%d "
          "fail_value=%d", &n, &d, &delay, &fail) != 4 || n < 1 || d < 5) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: not a fake vision model", path);
    return NULL;
  }
  m = g_new0 (MmVisionModel, 1);
  m->engine = mm_engine_ref (engine);
  m->n_tokens = n;
  m->dim = d;
  m->delay_ms = delay;
  m->fail_value = fail;
  m->id = g_strdup_printf ("fake-%dx%d", n, d);
  return m;
}

void
mm_vision_model_free (MmVisionModel * m)
{
  if (m == NULL)
    return;
  mm_engine_unref (m->engine);
  g_free (m->id);
  g_free (m);
}

gint
mm_vision_model_n_tokens (MmVisionModel * m)
{
  return m->n_tokens;
}

gint
mm_vision_model_dim (MmVisionModel * m)
{
  return m->dim;
}

gint
mm_vision_model_image_size (MmVisionModel * m)
{
  return 8;
}

const gchar *
mm_vision_model_id (MmVisionModel * m)
{
  return m->id;
}

gdouble
mm_vision_model_last_ms (MmVisionModel * m)
{
  return m->last_ms;
}

MmTensor *
mm_vision_model_encode (MmVisionModel * m, const MmImage * img, GError ** error)
{
  gint64 t0 = g_get_monotonic_time ();
  gint64 shape[2] = { m->n_tokens, m->dim };
  g_autofree float *data = g_new0 (float, m->n_tokens * m->dim);
  guint8 first = img->planes[0][0];
  MmTensor *t;
  gint i;

  g_mutex_lock (&gate_lock);
  n_started++;
  g_cond_broadcast (&gate_cond);
  while (gate_closed)
    g_cond_wait (&gate_cond, &gate_lock);
  g_mutex_unlock (&gate_lock);

  if (m->delay_ms > 0)
    g_usleep (m->delay_ms * 1000);
  if (first == m->fail_value) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OPENCL,
        "fake encoder: scripted failure on value %d", first);
    return NULL;
  }
  for (i = 0; i < m->n_tokens; i++) {
    float *row = data + (gsize) i * m->dim;

    row[0] = first;
    row[1] = img->width;
    row[2] = img->height;
    row[3] = img->format;
    row[4] = i;
  }
  t = mm_tensor_upload (m->engine, MM_DTYPE_F32, 2, shape, data,
      "fake tokens", error);
  m->last_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return t;
}

MmTensor *
mm_vision_model_encode_views (MmVisionModel * m, const MmImage * img,
    MmVisionLayout * layout, GError ** error)
{
  if (layout) {
    layout->n_views = 1;
    layout->tokens_per_view = m->n_tokens;
    layout->rows = layout->cols = 0;
    layout->global_view = 0;
  }
  return mm_vision_model_encode (m, img, error);
}

gboolean
mm_vision_model_get_splitting (MmVisionModel * m)
{
  return FALSE;
}

void
mm_vision_model_set_splitting (MmVisionModel * m, gboolean split,
    gint max_tiles)
{
}

void
fake_vision_remove (const gchar * path)
{
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_unlink (path);
  g_rmdir (dir);
}
