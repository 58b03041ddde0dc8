/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-format-private.h"
#include "mm-dequant.h"

#include <string.h>

G_DEFINE_QUARK (mm - format - error - quark, mm_format_error);

void
mm_format_set_error (GError ** error, MmFormatError code, const gchar * file,
    const gchar * format, ...)
{
  va_list args;
  if (error == NULL)
    return;
  va_start (args, format);
  gchar *msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, MM_FORMAT_ERROR, code, "%s: %s", file, msg);
  g_free (msg);
}

void
mm_format_fail (GError ** first, const gchar * file, const gchar * format,
    ...)
{
  va_list args;
  gchar *msg;

  if (*first)
    return;
  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  *first = g_error_new (MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISMATCH, "%s: %s",
      file, msg);
  g_free (msg);
}

void
mm_format_keep_error (GError ** first, GError * err)
{
  if (err && *first == NULL)
    *first = err;
  else if (err)
    g_error_free (err);
}

GBytes *
mm_format_map_file (const gchar * path, GError ** error)
{
  GError *err = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &err);
  GBytes *bytes;

  if (mf == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_IO, path, "%s", err->message);
    g_error_free (err);
    return NULL;
  }
  bytes = g_mapped_file_get_bytes (mf);
  g_mapped_file_unref (mf);
  return bytes;
}

const gchar *
mm_format_shape_str (gint n_dims, const gint64 * shape, gchar * buf, gsize size)
{
  gsize n = g_snprintf (buf, size, "[");
  for (gint i = 0; i < n_dims && n < size; i++)
    n += g_snprintf (buf + n, size - n, "%s%" G_GINT64_FORMAT, i ? ", " : "",
        shape[i]);
  g_strlcat (buf, "]", size);
  return buf;
}

gboolean
mm_shape_numel (gint n_dims, const gint64 * shape, gint64 * numel)
{
  guint64 n = 1;
  for (gint i = 0; i < n_dims; i++) {
    if (shape[i] < 0 || !g_uint64_checked_mul (&n, n, (guint64) shape[i])
        || n > G_MAXINT64)
      return FALSE;
  }
  *numel = (gint64) n;
  return TRUE;
}

static void
unsupported (const MmTensorInfo * info, const gchar * file, GError ** error)
{
  gchar id[32] = "";
  if (info->type_id >= 0)
    g_snprintf (id, sizeof id, " (GGML type %d)", info->type_id);
  mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, file,
      "tensor '%s' has type %s%s, which mm cannot load (F32, F16, BF16, "
      "Q8_0, Q4_0 and Q4_1 are supported)", info->name, info->type_name, id);
}

/* ---- tensor table ---- */

void
mm_tensor_table_init (MmTensorTable * t)
{
  t->infos = g_array_new (FALSE, TRUE, sizeof (MmTensorInfo));
  t->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  t->names = g_string_chunk_new (1024);
}

void
mm_tensor_table_clear (MmTensorTable * t)
{
  g_clear_pointer (&t->infos, g_array_unref);
  g_clear_pointer (&t->by_name, g_hash_table_unref);
  g_clear_pointer (&t->names, g_string_chunk_free);
}

gboolean
mm_tensor_table_add (MmTensorTable * t, const MmTensorInfo * info,
    const gchar * file, GError ** error)
{
  if (g_hash_table_contains (t->by_name, info->name)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "duplicate tensor name '%s'", info->name);
    return FALSE;
  }
  MmTensorInfo copy = *info;
  copy.name = g_string_chunk_insert (t->names, info->name);
  g_array_append_val (t->infos, copy);
  g_hash_table_insert (t->by_name, (gpointer) copy.name,
      GUINT_TO_POINTER (t->infos->len));
  return TRUE;
}

static gint
cmp_offset (gconstpointer a, gconstpointer b)
{
  const MmTensorInfo *x = *(MmTensorInfo * const *) a;
  const MmTensorInfo *y = *(MmTensorInfo * const *) b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

gboolean
mm_tensor_table_check_overlap (MmTensorTable * t, const gchar * file,
    GError ** error)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_sized_new (t->infos->len);
  for (guint i = 0; i < t->infos->len; i++) {
    MmTensorInfo *info = &g_array_index (t->infos, MmTensorInfo, i);
    if (info->nbytes > 0)
      g_ptr_array_add (sorted, info);
  }
  g_ptr_array_sort (sorted, cmp_offset);
  for (guint i = 1; i < sorted->len; i++) {
    const MmTensorInfo *a = sorted->pdata[i - 1], *b = sorted->pdata[i];
    if (b->offset < a->offset + a->nbytes) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
          "tensor '%s' (bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT
          ") overlaps tensor '%s' (bytes %" G_GUINT64_FORMAT "..%"
          G_GUINT64_FORMAT ")", b->name, b->offset, b->offset + b->nbytes,
          a->name, a->offset, a->offset + a->nbytes);
      return FALSE;
    }
  }
  return TRUE;
}

guint
mm_tensor_table_len (const MmTensorTable * t)
{
  return t->infos->len;
}

const MmTensorInfo *
mm_tensor_table_nth (const MmTensorTable * t, guint i)
{
  if (i >= t->infos->len)
    return NULL;
  return &g_array_index (t->infos, MmTensorInfo, i);
}

const MmTensorInfo *
mm_tensor_table_find (const MmTensorTable * t, const gchar * name)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (t->by_name, name));
  return i ? &g_array_index (t->infos, MmTensorInfo, i - 1) : NULL;
}

const MmTensorInfo *
mm_tensor_table_get (const MmTensorTable * t, const gchar * name,
    const gchar * file, GError ** error)
{
  const MmTensorInfo *info = mm_tensor_table_find (t, name);
  if (info == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_MISSING, file,
        "no tensor named '%s'", name);
    return NULL;
  }
  if (!info->supported) {
    unsupported (info, file, error);
    return NULL;
  }
  return info;
}

/* ---- checks, conversion, upload ---- */

static gboolean
check_dtype (const MmTensorInfo * info, const gchar * file, guint accept,
    GError ** error)
{
  if (!info->supported) {
    unsupported (info, file, error);
    return FALSE;
  }
  if (accept != 0 && !(accept & MM_DTYPE_BIT (info->dtype))) {
    GString *want = g_string_new (NULL);
    for (gint d = MM_DTYPE_F32; d <= MM_DTYPE_I32; d++)
      if (accept & MM_DTYPE_BIT (d))
        g_string_append_printf (want, "%s%s", want->len ? ", " : "",
            mm_dtype_name (d));
    mm_format_set_error (error, MM_FORMAT_ERROR_MISMATCH, file,
        "tensor '%s' is %s, expected one of: %s", info->name,
        mm_dtype_name (info->dtype), want->str);
    g_string_free (want, TRUE);
    return FALSE;
  }
  return TRUE;
}

gboolean
mm_tensor_info_check (const MmTensorInfo * info, const gchar * file,
    guint accept, gint n_dims, const gint64 * shape, GError ** error)
{
  if (!check_dtype (info, file, accept, error))
    return FALSE;
  if (n_dims <= 0)
    return TRUE;
  gboolean ok = n_dims == info->n_dims;
  for (gint i = 0; ok && i < n_dims; i++)
    ok = shape[i] < 0 || shape[i] == info->shape[i];
  if (!ok) {
    gchar have[128], want[128];
    mm_format_set_error (error, MM_FORMAT_ERROR_MISMATCH, file,
        "tensor '%s' has shape %s, expected %s", info->name,
        mm_format_shape_str (info->n_dims, info->shape, have, sizeof have),
        mm_format_shape_str (MIN (n_dims, MM_MAX_DIMS), shape, want,
            sizeof want));
    return FALSE;
  }
  return TRUE;
}

gboolean
mm_tensor_info_to_f32 (const MmTensorInfo * info, const gchar * file,
    float *dst, GError ** error)
{
  if (!check_dtype (info, file, MM_DTYPES_FLOAT | MM_DTYPES_QUANT, error))
    return FALSE;
  if (mm_dtype_size (info->dtype, info->numel) != info->nbytes
      || !mm_dequantize_host (info->dtype, info->data, info->numel, dst)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "tensor '%s': %" G_GSIZE_FORMAT " bytes do not hold %"
        G_GINT64_FORMAT " %s elements", info->name, info->nbytes,
        info->numel, mm_dtype_name (info->dtype));
    return FALSE;
  }
  return TRUE;
}

/* Host buffer of the converted data; *free_it says whether it is ours. */
static gpointer
convert_host (const MmTensorInfo * info, const gchar * file, MmDType to,
    gboolean * free_it, GError ** error)
{
  *free_it = FALSE;
  if (to == info->dtype)
    return (gpointer) info->data;
  if ((guint64) info->numel > G_MAXSIZE / 4) {
    mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, file,
        "tensor '%s' is too large to convert", info->name);
    return NULL;
  }
  float *f = g_try_new (float, MAX (info->numel, 1));
  if (f == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_IO, file,
        "out of host memory converting tensor '%s'", info->name);
    return NULL;
  }
  if (!mm_tensor_info_to_f32 (info, file, f, error)) {
    g_free (f);
    return NULL;
  }
  if (to == MM_DTYPE_F16) {
    for (gint64 i = 0; i < info->numel; i++) {
      guint16 h = mm_f32_to_f16 (f[i]); /* in place, front to back */
      memcpy ((guint8 *) f + 2 * i, &h, 2);
    }
  }
  *free_it = TRUE;
  return f;
}

MmTensor *
mm_tensor_info_upload (const MmTensorInfo * info, const gchar * file,
    MmEngine * engine, guint accept, MmConvert convert, gint n_dims,
    const gint64 * shape, GError ** error)
{
  if (!mm_tensor_info_check (info, file, accept, n_dims, shape, error))
    return NULL;
  MmDType to = convert == MM_CONVERT_F32 ? MM_DTYPE_F32 :
      convert == MM_CONVERT_F16 ? MM_DTYPE_F16 : info->dtype;
  gboolean free_it;
  gpointer data = convert_host (info, file, to, &free_it, error);
  if (data == NULL)
    return NULL;
  gint64 one = 1;
  g_autofree gchar *what = g_strdup_printf ("%s: tensor '%s'", file,
      info->name);
  MmTensor *t = mm_tensor_upload (engine, to, info->n_dims ? info->n_dims : 1,
      info->n_dims ? info->shape : &one, data, what, error);
  if (free_it)
    g_free (data);
  return t;
}
