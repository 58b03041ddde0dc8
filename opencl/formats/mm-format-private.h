/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal helpers shared by the weight readers; not installed, not API. */
#pragma once

#include "mm-format.h"

G_BEGIN_DECLS

/* Sets a MM_FORMAT_ERROR "<file>: <message>". */
/* Maps @path read-only: (transfer full) bytes, or NULL with an I/O error
 * naming the file. */
GBytes *mm_format_map_file (const gchar * path, GError ** error);
void mm_format_set_error (GError ** error, MmFormatError code,
    const gchar * file, const gchar * format, ...) G_GNUC_PRINTF (4, 5);

/* A name -> MmTensorInfo table.  Names are copied into the table; @data
 * pointers are the reader's. */
typedef struct
{
  GArray *infos;                /* MmTensorInfo */
  GHashTable *by_name;          /* name -> index + 1 */
  GStringChunk *names;
} MmTensorTable;

void mm_tensor_table_init (MmTensorTable * t);
void mm_tensor_table_clear (MmTensorTable * t);
/* Copies @info (and its name); fails on a duplicate name. */
gboolean mm_tensor_table_add (MmTensorTable * t, const MmTensorInfo * info,
    const gchar * file, GError ** error);
/* Fails when two tensors' byte ranges overlap. */
gboolean mm_tensor_table_check_overlap (MmTensorTable * t,
    const gchar * file, GError ** error);
guint mm_tensor_table_len (const MmTensorTable * t);
const MmTensorInfo *mm_tensor_table_nth (const MmTensorTable * t, guint i);
const MmTensorInfo *mm_tensor_table_find (const MmTensorTable * t,
    const gchar * name);
/* Like _find, but errors for a missing name or an unsupported dtype. */
const MmTensorInfo *mm_tensor_table_get (const MmTensorTable * t,
    const gchar * name, const gchar * file, GError ** error);

/* numel of @shape, FALSE when a dim is negative or the product exceeds
 * G_MAXINT64. */
gboolean mm_shape_numel (gint n_dims, const gint64 * shape, gint64 * numel);

G_END_DECLS
