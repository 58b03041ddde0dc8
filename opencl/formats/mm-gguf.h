/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GGUF reader (llama.cpp's format, versions 2 and 3, little-endian).
 *
 * mm_gguf_open() maps the file read-only and validates all of it before
 * returning: header, every key/value pair, every tensor info, alignment,
 * and that each tensor's bytes lie inside the data section, aligned, and
 * disjoint from every other tensor's.  Every count and length is checked
 * against the bytes left in the file before anything is allocated, so a
 * hostile file costs at most a few times its own size in memory.
 *
 * Tensors of a GGML type mm cannot load (Q4_K, IQ2_XS, ...) do not fail
 * the open; looking them up with mm_gguf_get_tensor() does, with an error
 * naming the type and the tensor.  A type id unknown to GGML fails the open
 * (its size is unknown, so the layout cannot be checked).
 *
 * Ownership: the MmGguf owns every string, array and MmTensorInfo it hands
 * out, and the mapping their data points into; all stay valid until
 * mm_gguf_free().  A reader may be used from several threads at once (the
 * lazy string index of arrays is built under g_once).  The file must not be
 * truncated by someone else while it is open (that would be SIGBUS).
 */
#pragma once

#include "mm-format.h"

G_BEGIN_DECLS

typedef enum
{
  MM_GGUF_TYPE_UINT8 = 0,
  MM_GGUF_TYPE_INT8 = 1,
  MM_GGUF_TYPE_UINT16 = 2,
  MM_GGUF_TYPE_INT16 = 3,
  MM_GGUF_TYPE_UINT32 = 4,
  MM_GGUF_TYPE_INT32 = 5,
  MM_GGUF_TYPE_FLOAT32 = 6,
  MM_GGUF_TYPE_BOOL = 7,
  MM_GGUF_TYPE_STRING = 8,
  MM_GGUF_TYPE_ARRAY = 9,
  MM_GGUF_TYPE_UINT64 = 10,
  MM_GGUF_TYPE_INT64 = 11,
  MM_GGUF_TYPE_FLOAT64 = 12,
  MM_GGUF_TYPE_NONE = -1,       /* key absent */
} MmGgufType;

/* GGML tensor type ids this reader loads (others: see mm_ggml_type_name). */
enum
{
  MM_GGML_TYPE_F32 = 0,
  MM_GGML_TYPE_F16 = 1,
  MM_GGML_TYPE_Q4_0 = 2,
  MM_GGML_TYPE_Q4_1 = 3,
  MM_GGML_TYPE_Q8_0 = 8,
  MM_GGML_TYPE_BF16 = 30,
};

#define MM_GGUF_DEFAULT_ALIGNMENT 32

typedef struct _MmGguf MmGguf;
typedef struct _MmGgufArray MmGgufArray;

MmGguf *mm_gguf_open (const gchar * path, GError ** error);
/* Parses @bytes (a reference is taken); @name is used in error messages. */
MmGguf *mm_gguf_open_from_bytes (GBytes * bytes, const gchar * name,
    GError ** error);
void mm_gguf_free (MmGguf * gguf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmGguf, mm_gguf_free)

const gchar *mm_gguf_path (MmGguf * gguf);
guint32 mm_gguf_version (MmGguf * gguf);
guint32 mm_gguf_alignment (MmGguf * gguf);
/* Absolute file offset of the (aligned) data section. */
guint64 mm_gguf_data_offset (MmGguf * gguf);

/* "GGUF type name" ("UINT32", "STRING", ...). */
const gchar *mm_gguf_type_name (MmGgufType type);
/* GGML tensor type name ("Q4_K"), NULL for ids GGML does not define. */
const gchar *mm_ggml_type_name (guint32 type_id);

/* ---- metadata ---- */

guint mm_gguf_n_keys (MmGguf * gguf);
/* Keys in file order; NULL past the end. */
const gchar *mm_gguf_key_nth (MmGguf * gguf, guint i);
gboolean mm_gguf_has_key (MmGguf * gguf, const gchar * key);
MmGgufType mm_gguf_key_type (MmGguf * gguf, const gchar * key);
/* Fails with MM_FORMAT_ERROR_MISSING when @key is absent. */
gboolean mm_gguf_require_key (MmGguf * gguf, const gchar * key,
    GError ** error);

/* Scalar getters.  An absent key returns @def with no error.  A key whose
 * value cannot be represented in the asked type sets @error (nullable) and
 * returns @def.  Integer getters take any integer type whose value fits;
 * float getters take floats and integers; _bool takes BOOL only;
 * _str takes STRING only (transfer none, NUL-terminated; a string holding a
 * NUL byte reads as its prefix — use mm_gguf_get_str_len for the length). */
guint32 mm_gguf_get_u32 (MmGguf * gguf, const gchar * key, guint32 def,
    GError ** error);
gint32 mm_gguf_get_i32 (MmGguf * gguf, const gchar * key, gint32 def,
    GError ** error);
guint64 mm_gguf_get_u64 (MmGguf * gguf, const gchar * key, guint64 def,
    GError ** error);
gint64 mm_gguf_get_i64 (MmGguf * gguf, const gchar * key, gint64 def,
    GError ** error);
gfloat mm_gguf_get_f32 (MmGguf * gguf, const gchar * key, gfloat def,
    GError ** error);
gdouble mm_gguf_get_f64 (MmGguf * gguf, const gchar * key, gdouble def,
    GError ** error);
gboolean mm_gguf_get_bool (MmGguf * gguf, const gchar * key, gboolean def,
    GError ** error);
const gchar *mm_gguf_get_str (MmGguf * gguf, const gchar * key,
    const gchar * def, GError ** error);
gsize mm_gguf_get_str_len (MmGguf * gguf, const gchar * key);

/* Arrays.  (transfer none) (nullable): NULL with MM_FORMAT_ERROR_MISSING
 * when absent, MM_FORMAT_ERROR_TYPE when not an array or, unless
 * @elem_type is MM_GGUF_TYPE_NONE, not an array of @elem_type.  Nested
 * arrays are rejected when the file is opened. */
MmGgufArray *mm_gguf_get_array (MmGguf * gguf, const gchar * key,
    MmGgufType elem_type, GError ** error);
guint64 mm_gguf_array_len (const MmGgufArray * arr);
MmGgufType mm_gguf_array_type (const MmGgufArray * arr);
/* Element @i as a string (STRING arrays only, else NULL).  The first call
 * on an array indexes it once (O(n), one copy of its characters); later
 * calls are O(1).  @len (nullable) gets the byte length. */
const gchar *mm_gguf_array_get_str (MmGgufArray * arr, guint64 i,
    gsize * len);
/* Element @i of an integer or BOOL array (0 otherwise or out of range;
 * UINT64 values above G_MAXINT64 read as G_MAXINT64). */
gint64 mm_gguf_array_get_int (const MmGgufArray * arr, guint64 i);
/* Element @i of a numeric array as a double (0 otherwise). */
gdouble mm_gguf_array_get_float (const MmGgufArray * arr, guint64 i);

/* ---- tensors ---- */

guint mm_gguf_n_tensors (MmGguf * gguf);
/* Tensors in file order (including unsupported types); NULL past the end. */
const MmTensorInfo *mm_gguf_tensor_nth (MmGguf * gguf, guint i);
/* (nullable): NULL when absent; may be of an unsupported type. */
const MmTensorInfo *mm_gguf_find_tensor (MmGguf * gguf, const gchar * name);
/* Errors when absent or of an unsupported type. */
const MmTensorInfo *mm_gguf_get_tensor (MmGguf * gguf, const gchar * name,
    GError ** error);

/* Device copy of tensor @name as stored (quantised stays quantised), after
 * checking its dtype is in @accept (a MM_DTYPE_BIT set, 0 = any) and, when
 * @n_dims > 0, its shape (outermost first, -1 = any size).
 * Returns: (transfer full): free with mm_tensor_free(). */
MmTensor *mm_gguf_upload_tensor (MmGguf * gguf, MmEngine * engine,
    const gchar * name, guint accept, gint n_dims, const gint64 * shape,
    GError ** error);

G_END_DECLS
