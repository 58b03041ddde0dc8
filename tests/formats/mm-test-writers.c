/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-test-writers.h"

#include "mm-dequant.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* ---- GGUF ---- */

typedef struct
{
  gchar *name;
  guint32 type, n_dims;
  guint64 ne[8];
  guint64 offset;               /* G_MAXUINT64: auto */
  GBytes *data;
} WTensor;

struct _MmtGguf
{
  guint32 version;
  guint64 n_kv;
  GByteArray *kv;
  GArray *tensors;              /* WTensor */
  GArray *info_pos;             /* gsize */
  gsize data_pos;
};

static void
put_u32 (GByteArray * a, guint32 v)
{
  v = GUINT32_TO_LE (v);
  g_byte_array_append (a, (guint8 *) & v, 4);
}

static void
put_u64 (GByteArray * a, guint64 v)
{
  v = GUINT64_TO_LE (v);
  g_byte_array_append (a, (guint8 *) & v, 8);
}

static void
put_str (GByteArray * a, const gchar * s)
{
  put_u64 (a, strlen (s));
  g_byte_array_append (a, (const guint8 *) s, strlen (s));
}

MmtGguf *
mmt_gguf_new (guint32 version)
{
  MmtGguf *w = g_new0 (MmtGguf, 1);
  w->version = version;
  w->kv = g_byte_array_new ();
  w->tensors = g_array_new (FALSE, TRUE, sizeof (WTensor));
  w->info_pos = g_array_new (FALSE, TRUE, sizeof (gsize));
  return w;
}

void
mmt_gguf_free (MmtGguf * w)
{
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = &g_array_index (w->tensors, WTensor, i);
    g_free (t->name);
    g_clear_pointer (&t->data, g_bytes_unref);
  }
  g_array_unref (w->tensors);
  g_array_unref (w->info_pos);
  g_byte_array_unref (w->kv);
  g_free (w);
}

void
mmt_gguf_kv_raw (MmtGguf * w, const gchar * key, guint32 type,
    const void *val, gsize len)
{
  put_str (w->kv, key);
  put_u32 (w->kv, type);
  g_byte_array_append (w->kv, val, len);
  w->n_kv++;
}

#define SCALAR(fn, ctype, id) \
  void fn (MmtGguf * w, const gchar * key, ctype v) \
  { mmt_gguf_kv_raw (w, key, id, &v, sizeof v); }

SCALAR (mmt_gguf_kv_u8, guint8, 0);
SCALAR (mmt_gguf_kv_i8, gint8, 1);
SCALAR (mmt_gguf_kv_u16, guint16, 2);
SCALAR (mmt_gguf_kv_i16, gint16, 3);
SCALAR (mmt_gguf_kv_u32, guint32, 4);
SCALAR (mmt_gguf_kv_i32, gint32, 5);
SCALAR (mmt_gguf_kv_f32, gfloat, 6);
SCALAR (mmt_gguf_kv_u64, guint64, 10);
SCALAR (mmt_gguf_kv_i64, gint64, 11);
SCALAR (mmt_gguf_kv_f64, gdouble, 12);
#undef SCALAR

void
mmt_gguf_kv_bool (MmtGguf * w, const gchar * key, gboolean v)
{
  guint8 b = v ? 1 : 0;
  mmt_gguf_kv_raw (w, key, 7, &b, 1);
}

void
mmt_gguf_kv_str (MmtGguf * w, const gchar * key, const gchar * v)
{
  put_str (w->kv, key);
  put_u32 (w->kv, 8);
  put_str (w->kv, v);
  w->n_kv++;
}

void
mmt_gguf_kv_arr (MmtGguf * w, const gchar * key, guint32 elem_type,
    guint64 n, const void *elems, gsize elem_size)
{
  put_str (w->kv, key);
  put_u32 (w->kv, 9);
  put_u32 (w->kv, elem_type);
  put_u64 (w->kv, n);
  g_byte_array_append (w->kv, elems, n * elem_size);
  w->n_kv++;
}

void
mmt_gguf_kv_arr_str (MmtGguf * w, const gchar * key, guint64 n,
    const gchar * const *strs)
{
  put_str (w->kv, key);
  put_u32 (w->kv, 9);
  put_u32 (w->kv, 8);
  put_u64 (w->kv, n);
  for (guint64 i = 0; i < n; i++)
    put_str (w->kv, strs[i]);
  w->n_kv++;
}

void
mmt_gguf_tensor_raw (MmtGguf * w, const gchar * name, guint32 type,
    guint32 n_dims, const guint64 * ne, guint64 offset, const void *data,
    gsize nbytes)
{
  WTensor t = { 0 };
  t.name = g_strdup (name);
  t.type = type;
  t.n_dims = n_dims;
  for (guint32 i = 0; i < n_dims && i < 8; i++)
    t.ne[i] = ne[i];
  t.offset = offset;
  t.data = data ? g_bytes_new (data, nbytes) : NULL;
  g_array_append_val (w->tensors, t);
}

void
mmt_gguf_tensor (MmtGguf * w, const gchar * name, guint32 type, gint n_dims,
    const gint64 * shape, const void *data, gsize nbytes)
{
  guint64 ne[8];
  for (gint i = 0; i < n_dims; i++)
    ne[i] = shape[n_dims - 1 - i];
  mmt_gguf_tensor_raw (w, name, type, n_dims, ne, G_MAXUINT64, data, nbytes);
}

static void
pad_to (GByteArray * a, gsize align)
{
  static const guint8 zeros[256] = { 0 };
  while (a->len % align)
    g_byte_array_append (a, zeros, MIN (align - a->len % align, 256));
}

GBytes *
mmt_gguf_finish (MmtGguf * w, guint32 alignment)
{
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, (const guint8 *) "GGUF", 4);
  put_u32 (a, w->version);
  put_u64 (a, w->tensors->len);
  put_u64 (a, w->n_kv);
  g_byte_array_append (a, w->kv->data, w->kv->len);
  /* auto offsets: packed, each aligned */
  guint64 next = 0;
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = &g_array_index (w->tensors, WTensor, i);
    if (t->offset == G_MAXUINT64) {
      t->offset = next;
      gsize n = t->data ? g_bytes_get_size (t->data) : 0;
      next = (t->offset + n + alignment - 1) / alignment * alignment;
    }
  }
  g_array_set_size (w->info_pos, 0);
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = &g_array_index (w->tensors, WTensor, i);
    gsize pos = a->len;
    g_array_append_val (w->info_pos, pos);
    put_str (a, t->name);
    put_u32 (a, t->n_dims);
    for (guint32 d = 0; d < t->n_dims && d < 8; d++)
      put_u64 (a, t->ne[d]);
    put_u32 (a, t->type);
    put_u64 (a, t->offset);
  }
  if (w->tensors->len)
    pad_to (a, alignment);
  w->data_pos = a->len;
  for (guint i = 0; i < w->tensors->len; i++) {
    WTensor *t = &g_array_index (w->tensors, WTensor, i);
    gsize n = t->data ? g_bytes_get_size (t->data) : 0;
    if (t->data == NULL || t->offset > (1u << 26))
      continue;
    gsize end = w->data_pos + t->offset + n;
    if (a->len < end)
      g_byte_array_set_size (a, end);
    memcpy (a->data + w->data_pos + t->offset, g_bytes_get_data (t->data,
            NULL), n);
  }
  return g_byte_array_free_to_bytes (a);
}

gsize
mmt_gguf_tensor_info_pos (MmtGguf * w, guint i)
{
  return g_array_index (w->info_pos, gsize, i);
}

gsize
mmt_gguf_data_pos (MmtGguf * w)
{
  return w->data_pos;
}

/* ---- safetensors ---- */

struct _MmtSt
{
  GString *header;
  GString *meta;
  GByteArray *data;
};

MmtSt *
mmt_st_new (void)
{
  MmtSt *w = g_new0 (MmtSt, 1);
  w->header = g_string_new (NULL);
  w->meta = g_string_new (NULL);
  w->data = g_byte_array_new ();
  return w;
}

void
mmt_st_free (MmtSt * w)
{
  g_string_free (w->header, TRUE);
  g_string_free (w->meta, TRUE);
  g_byte_array_unref (w->data);
  g_free (w);
}

void
mmt_st_add (MmtSt * w, const gchar * name, const gchar * dtype, gint n_dims,
    const gint64 * shape, const void *data, gsize nbytes)
{
  if (w->header->len)
    g_string_append_c (w->header, ',');
  g_string_append_printf (w->header, "\"%s\":{\"dtype\":\"%s\",\"shape\":[",
      name, dtype);
  for (gint i = 0; i < n_dims; i++)
    g_string_append_printf (w->header, "%s%" G_GINT64_FORMAT, i ? "," : "",
        shape[i]);
  g_string_append_printf (w->header, "],\"data_offsets\":[%u,%u]}",
      w->data->len, (guint) (w->data->len + nbytes));
  g_byte_array_append (w->data, data, nbytes);
}

void
mmt_st_meta (MmtSt * w, const gchar * key, const gchar * value)
{
  g_string_append_printf (w->meta, "%s\"%s\":\"%s\"", w->meta->len ? "," :
      "", key, value);
}

GBytes *
mmt_st_raw (const gchar * header, const void *data, gsize n)
{
  GByteArray *a = g_byte_array_new ();
  guint64 len = GUINT64_TO_LE (strlen (header));
  g_byte_array_append (a, (guint8 *) & len, 8);
  g_byte_array_append (a, (const guint8 *) header, strlen (header));
  if (n)
    g_byte_array_append (a, data, n);
  return g_byte_array_free_to_bytes (a);
}

GBytes *
mmt_st_finish (MmtSt * w)
{
  GString *h = g_string_new ("{");
  if (w->meta->len)
    g_string_append_printf (h, "\"__metadata__\":{%s}%s", w->meta->str,
        w->header->len ? "," : "");
  g_string_append (h, w->header->str);
  g_string_append_c (h, '}');
  while ((h->len + 8) % 8)
    g_string_append_c (h, ' '); /* the reference writer pads so */
  GBytes *b = mmt_st_raw (h->str, w->data->data, w->data->len);
  g_string_free (h, TRUE);
  return b;
}

/* ---- helpers ---- */

gchar *
mmt_write (GBytes * b, const gchar * dir, const gchar * name)
{
  gchar *path;
  GError *err = NULL;
  if (dir) {
    path = g_build_filename (dir, name, NULL);
  } else {
    gint fd = g_file_open_tmp ("mm-test-XXXXXX", &path, &err);
    g_assert_no_error (err);
    close (fd);
  }
  gsize n;
  const gchar *d = g_bytes_get_data (b, &n);
  g_file_set_contents (path, d ? d : "", n, &err);
  g_assert_no_error (err);
  return path;
}

GBytes *
mmt_patch (GBytes * b, gsize pos, const void *patch, gsize len)
{
  gsize n;
  const guint8 *d = g_bytes_get_data (b, &n);
  g_assert (pos + len <= n);
  guint8 *c = g_memdup2 (d, n);
  memcpy (c + pos, patch, len);
  return g_bytes_new_take (c, n);
}

GBytes *
mmt_prefix (GBytes * b, gsize len)
{
  /* an exact-size copy, so reading past the end is caught by ASan */
  return g_bytes_new (g_bytes_get_data (b, NULL), len);
}

gsize
mmt_random_tensor (MmDType dtype, gint64 n, GRand * r, guint8 ** out)
{
  gsize nbytes = mm_dtype_size (dtype, n);
  gint bb = mm_dtype_block_bytes (dtype);
  guint8 *d = g_malloc (MAX (nbytes, 1));
  for (gsize i = 0; i < nbytes; i++)
    d[i] = (guint8) g_rand_int (r);
  for (gsize b = 0; b < nbytes / bb; b++) {
    guint8 *blk = d + b * bb;
    guint16 h;
    switch (dtype) {
      case MM_DTYPE_F32:{
        gfloat f = (gfloat) g_rand_double_range (r, -4, 4);
        memcpy (blk, &f, 4);
        break;
      }
      case MM_DTYPE_F16:
      case MM_DTYPE_Q8_0:
      case MM_DTYPE_Q4_0:
      case MM_DTYPE_Q4_1:
        h = mm_f32_to_f16 ((gfloat) g_rand_double_range (r, -2, 2));
        memcpy (blk, &h, 2);
        if (dtype == MM_DTYPE_Q4_1) {
          h = mm_f32_to_f16 ((gfloat) g_rand_double_range (r, -2, 2));
          memcpy (blk + 2, &h, 2);
        }
        break;
      case MM_DTYPE_BF16:
        h = (guint16) g_rand_int_range (r, 0x3000, 0x4100) |
            (g_rand_boolean (r) ? 0x8000 : 0);
        memcpy (blk, &h, 2);
        break;
      default:
        break;
    }
  }
  *out = d;
  return nbytes;
}

void
mmt_rm_rf (const gchar * dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  const gchar *f;
  while ((f = g_dir_read_name (d))) {
    gchar *p = g_build_filename (dir, f, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR))
      mmt_rm_rf (p);
    else
      g_unlink (p);
    g_free (p);
  }
  g_dir_close (d);
  g_rmdir (dir);
}
