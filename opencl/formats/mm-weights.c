/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-weights.h"
#include "mm-format-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct _MmWeights
{
  MmWeightsKind kind;
  gchar *path;
  MmGguf *gguf;
  MmHfModel *hf;
};

static gboolean
starts_with_gguf_magic (const gchar * path, GError ** error)
{
  guint8 magic[4] = { 0 };
  FILE *f = fopen (path, "rb");
  if (f == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_IO, path, "%s",
        g_strerror (errno));
    return FALSE;
  }
  gsize n = fread (magic, 1, 4, f);
  fclose (f);
  return n == 4 && memcmp (magic, "GGUF", 4) == 0;
}

MmWeights *
mm_weights_open (const gchar * path, GError ** error)
{
  MmWeights *w = g_new0 (MmWeights, 1);
  w->path = g_strdup (path);
  GError *err = NULL;
  if (!g_file_test (path, G_FILE_TEST_IS_DIR)
      && starts_with_gguf_magic (path, &err)) {
    w->kind = MM_WEIGHTS_GGUF;
    w->gguf = mm_gguf_open (path, &err);
  } else if (err == NULL) {
    w->kind = MM_WEIGHTS_HF;
    w->hf = mm_hf_model_open (path, &err);
  }
  if (err) {
    g_propagate_error (error, err);
    mm_weights_free (w);
    return NULL;
  }
  return w;
}

void
mm_weights_free (MmWeights * w)
{
  if (w == NULL)
    return;
  mm_gguf_free (w->gguf);
  mm_hf_model_free (w->hf);
  g_free (w->path);
  g_free (w);
}

MmWeightsKind
mm_weights_kind (MmWeights * w)
{
  return w->kind;
}

const gchar *
mm_weights_path (MmWeights * w)
{
  return w->path;
}

MmGguf *
mm_weights_gguf (MmWeights * w)
{
  return w->gguf;
}

MmHfModel *
mm_weights_hf (MmWeights * w)
{
  return w->hf;
}

guint
mm_weights_n_tensors (MmWeights * w)
{
  return w->gguf ? mm_gguf_n_tensors (w->gguf) : mm_hf_model_n_tensors (w->hf);
}

const MmTensorInfo *
mm_weights_tensor_nth (MmWeights * w, guint i)
{
  return w->gguf ? mm_gguf_tensor_nth (w->gguf, i) :
      mm_hf_model_tensor_nth (w->hf, i);
}

gboolean
mm_weights_has_tensor (MmWeights * w, const gchar * name)
{
  return (w->gguf ? mm_gguf_find_tensor (w->gguf, name) :
      mm_hf_model_find_tensor (w->hf, name)) != NULL;
}

const MmTensorInfo *
mm_weights_get_tensor (MmWeights * w, const gchar * name, GError ** error)
{
  return w->gguf ? mm_gguf_get_tensor (w->gguf, name, error) :
      mm_hf_model_get_tensor (w->hf, name, error);
}

MmTensor *
mm_weights_upload (MmWeights * w, MmEngine * engine, const gchar * name,
    guint accept, MmConvert convert, gint n_dims, const gint64 * shape,
    GError ** error)
{
  if (w->hf)
    return mm_hf_model_upload_tensor (w->hf, engine, name, accept, convert,
        n_dims, shape, error);
  const MmTensorInfo *info = mm_gguf_get_tensor (w->gguf, name, error);
  if (info == NULL)
    return NULL;
  return mm_tensor_info_upload (info, mm_gguf_path (w->gguf), engine, accept,
      convert, n_dims, shape, error);
}

/* ---- metadata ---- */

static MmJson *
config (MmWeights * w)
{
  return w->hf ? mm_hf_model_config (w->hf) : NULL;
}

gboolean
mm_weights_has_key (MmWeights * w, const gchar * key)
{
  if (w->gguf)
    return mm_gguf_has_key (w->gguf, key);
  return config (w) && mm_json_has (config (w), key);
}

gint64
mm_weights_get_int (MmWeights * w, const gchar * key, gint64 def,
    GError ** error)
{
  if (w->gguf)
    return mm_gguf_get_i64 (w->gguf, key, def, error);
  return config (w) ? mm_json_get_int (config (w), key, def, error) : def;
}

gdouble
mm_weights_get_float (MmWeights * w, const gchar * key, gdouble def,
    GError ** error)
{
  if (w->gguf)
    return mm_gguf_get_f64 (w->gguf, key, def, error);
  return config (w) ? mm_json_get_float (config (w), key, def, error) : def;
}

gboolean
mm_weights_get_bool (MmWeights * w, const gchar * key, gboolean def,
    GError ** error)
{
  if (w->gguf)
    return mm_gguf_get_bool (w->gguf, key, def, error);
  return config (w) ? mm_json_get_bool (config (w), key, def, error) : def;
}

const gchar *
mm_weights_get_str (MmWeights * w, const gchar * key, const gchar * def,
    GError ** error)
{
  if (w->gguf)
    return mm_gguf_get_str (w->gguf, key, def, error);
  return config (w) ? mm_json_get_str (config (w), key, def, error) : def;
}
