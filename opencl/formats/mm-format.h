/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every weight reader shares: the MM_FORMAT_ERROR domain, the tensor
 * description MmTensorInfo, and checking / converting / uploading one
 * tensor described by it.
 *
 * A reader (MmGguf, MmSafetensors, MmHfModel, MmWeights) owns its
 * MmTensorInfo records, their names and the bytes @data points at (a
 * read-only mapping of the file, or the GBytes given to *_open_from_bytes).
 * They stay valid until the reader is freed.  Nothing here keeps a pointer
 * to a reader.
 */
#pragma once

#include "mm-tensor.h"

G_BEGIN_DECLS

#define MM_FORMAT_ERROR (mm_format_error_quark ())
GQuark mm_format_error_quark (void);

typedef enum
{
  MM_FORMAT_ERROR_IO,           /* cannot open / map / read */
  MM_FORMAT_ERROR_CORRUPT,      /* malformed or truncated file */
  MM_FORMAT_ERROR_UNSUPPORTED,  /* valid file, version or dtype we do not load */
  MM_FORMAT_ERROR_MISSING,      /* no such key / tensor */
  MM_FORMAT_ERROR_TYPE,         /* key present with a value of another type */
  MM_FORMAT_ERROR_MISMATCH,     /* tensor dtype / shape not what was asked */
} MmFormatError;

typedef struct
{
  const gchar *name;
  /* Stored type.  @dtype is meaningful only when @supported; @type_name is
   * the file's own name for it ("Q4_K", "I64", ...) in every case. */
  gboolean supported;
  MmDType dtype;
  const gchar *type_name;
  gint type_id;                 /* GGML type id (GGUF); -1 for safetensors */
  gint n_dims;                  /* 0 only for safetensors scalars */
  gint64 shape[MM_MAX_DIMS];    /* outermost first, like MmTensor */
  gint64 numel;
  guint64 offset;               /* absolute byte offset in the file */
  gsize nbytes;
  const guint8 *data;           /* @nbytes bytes, in general not aligned */
} MmTensorInfo;

/* Bit set of accepted stored dtypes for the checks below; 0 accepts any
 * supported dtype. */
#define MM_DTYPE_BIT(d) (1u << (d))
#define MM_DTYPES_FLOAT \
  (MM_DTYPE_BIT (MM_DTYPE_F32) | MM_DTYPE_BIT (MM_DTYPE_F16) | \
   MM_DTYPE_BIT (MM_DTYPE_BF16))
#define MM_DTYPES_QUANT \
  (MM_DTYPE_BIT (MM_DTYPE_Q8_0) | MM_DTYPE_BIT (MM_DTYPE_Q4_0) | \
   MM_DTYPE_BIT (MM_DTYPE_Q4_1))
#define MM_DTYPES_ANY 0u

/* What an upload turns the stored data into. */
typedef enum
{
  MM_CONVERT_NONE,              /* as stored (quantised stays quantised) */
  MM_CONVERT_F32,
  MM_CONVERT_F16,
} MmConvert;

/* Checks that @info is of a supported dtype in @accept and, when
 * @n_dims > 0, that it has @n_dims dims equal to @shape (an entry of -1
 * matches any size).  Errors name @file and the tensor. */
gboolean mm_tensor_info_check (const MmTensorInfo * info, const gchar * file,
    guint accept, gint n_dims, const gint64 * shape, GError ** error);

/* Converts the whole tensor to @numel floats at @dst (host). */
gboolean mm_tensor_info_to_f32 (const MmTensorInfo * info, const gchar * file,
    float *dst, GError ** error);

/* mm_tensor_info_check(), then an owned device tensor holding the data,
 * converted as asked (host-side).  A scalar (n_dims 0) becomes shape [1].
 * Returns: (transfer full): free with mm_tensor_free(). */
MmTensor *mm_tensor_info_upload (const MmTensorInfo * info,
    const gchar * file, MmEngine * engine, guint accept, MmConvert convert,
    gint n_dims, const gint64 * shape, GError ** error);

/* "[3, 7, 13]" into @buf. */
const gchar *mm_format_shape_str (gint n_dims, const gint64 * shape,
    gchar * buf, gsize size);

/* A loader's sticky error: the first failure is kept, later ones dropped.
 * mm_format_fail() sets a MM_FORMAT_ERROR_MISMATCH "<file>: <message>"
 * unless *@first is set; mm_format_keep_error() takes @err (nullable). */
void mm_format_fail (GError ** first, const gchar * file,
    const gchar * format, ...) G_GNUC_PRINTF (3, 4);
void mm_format_keep_error (GError ** first, GError * err);

G_END_DECLS
