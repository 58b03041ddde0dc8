/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tiny writers for the format tests and the fuzz seed generator: they make
 * valid GGUF and safetensors files, and let a test place any field where it
 * likes (explicit offsets, raw type ids, raw headers) to make broken ones.
 */
#pragma once

#include "mm-tensor.h"

G_BEGIN_DECLS

/* ---- GGUF ---- */
typedef struct _MmtGguf MmtGguf;

MmtGguf *mmt_gguf_new (guint32 version);
void mmt_gguf_free (MmtGguf * w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmtGguf, mmt_gguf_free)

/* A key with @len raw (already little-endian) value bytes of GGUF @type. */
void mmt_gguf_kv_raw (MmtGguf * w, const gchar * key, guint32 type,
    const void *val, gsize len);
void mmt_gguf_kv_u8 (MmtGguf * w, const gchar * key, guint8 v);
void mmt_gguf_kv_i8 (MmtGguf * w, const gchar * key, gint8 v);
void mmt_gguf_kv_u16 (MmtGguf * w, const gchar * key, guint16 v);
void mmt_gguf_kv_i16 (MmtGguf * w, const gchar * key, gint16 v);
void mmt_gguf_kv_u32 (MmtGguf * w, const gchar * key, guint32 v);
void mmt_gguf_kv_i32 (MmtGguf * w, const gchar * key, gint32 v);
void mmt_gguf_kv_u64 (MmtGguf * w, const gchar * key, guint64 v);
void mmt_gguf_kv_i64 (MmtGguf * w, const gchar * key, gint64 v);
void mmt_gguf_kv_f32 (MmtGguf * w, const gchar * key, gfloat v);
void mmt_gguf_kv_f64 (MmtGguf * w, const gchar * key, gdouble v);
void mmt_gguf_kv_bool (MmtGguf * w, const gchar * key, gboolean v);
void mmt_gguf_kv_str (MmtGguf * w, const gchar * key, const gchar * v);
/* Numeric array: @n elements of @elem_size bytes each (host order = LE). */
void mmt_gguf_kv_arr (MmtGguf * w, const gchar * key, guint32 elem_type,
    guint64 n, const void *elems, gsize elem_size);
void mmt_gguf_kv_arr_str (MmtGguf * w, const gchar * key, guint64 n,
    const gchar * const *strs);

/* Tensor of GGML @type, @shape outermost first, placed after the previous
 * one at the next aligned offset. */
void mmt_gguf_tensor (MmtGguf * w, const gchar * name, guint32 type,
    gint n_dims, const gint64 * shape, const void *data, gsize nbytes);
/* Same with a raw ne[] (innermost first) and an explicit data-section
 * offset; @data (may be NULL) is written there when it fits. */
void mmt_gguf_tensor_raw (MmtGguf * w, const gchar * name, guint32 type,
    guint32 n_dims, const guint64 * ne, guint64 offset, const void *data,
    gsize nbytes);

/* Serialises; @alignment pads the data section (add "general.alignment"
 * yourself when it is not 32). */
GBytes *mmt_gguf_finish (MmtGguf * w, guint32 alignment);
/* After finish: file offset of tensor info @i / of the data section. */
gsize mmt_gguf_tensor_info_pos (MmtGguf * w, guint i);
gsize mmt_gguf_data_pos (MmtGguf * w);

/* ---- safetensors ---- */
typedef struct _MmtSt MmtSt;

MmtSt *mmt_st_new (void);
void mmt_st_free (MmtSt * w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmtSt, mmt_st_free)
void mmt_st_add (MmtSt * w, const gchar * name, const gchar * dtype,
    gint n_dims, const gint64 * shape, const void *data, gsize nbytes);
void mmt_st_meta (MmtSt * w, const gchar * key, const gchar * value);
GBytes *mmt_st_finish (MmtSt * w);
/* A file with this exact header text and data section. */
GBytes *mmt_st_raw (const gchar * header, const void *data, gsize n);

/* ---- helpers ---- */
/* Writes @b to @dir/@name (or a fresh temp file when @dir is NULL);
 * returns the path (g_free). */
gchar *mmt_write (GBytes * b, const gchar * dir, const gchar * name);
/* A copy of @b with @len bytes at @pos replaced by @patch. */
GBytes *mmt_patch (GBytes * b, gsize pos, const void *patch, gsize len);
/* First @len bytes of @b. */
GBytes *mmt_prefix (GBytes * b, gsize len);
/* @n random finite elements of @dtype (scales of quantised blocks are
 * finite f16 in [-2, 2]); returns the byte size, *out is g_free'd. */
gsize mmt_random_tensor (MmDType dtype, gint64 n, GRand * r, guint8 ** out);
/* Recursively deletes @dir (temp folders made by tests). */
void mmt_rm_rf (const gchar * dir);

G_END_DECLS
