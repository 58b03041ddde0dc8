/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hugging Face weights: one *.safetensors file (MmSafetensors) and a model
 * folder (MmHfModel: config.json + model.safetensors, or the shards named
 * by model.safetensors.index.json, or every *.safetensors in the folder).
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON (an object: tensor name -> {"dtype", "shape", "data_offsets"}, and
 * an optional "__metadata__" object of strings), then the data.  Opening
 * validates all of it: the header is a JSON object (at most 100 MB, not
 * nested absurdly, no duplicate names), every entry is well-formed, its
 * byte range lies in the data section, matches dtype x shape, and overlaps
 * no other tensor.  Tensors of a dtype mm cannot load (I64, F8_E4M3, ...)
 * do not fail the open; looking them up does, naming dtype and tensor.
 *
 * Ownership: as for MmGguf: the reader owns every MmTensorInfo, string and
 * the mapping data points into, until it is freed.  MmHfModel owns its
 * shards and its config.
 */
#pragma once

#include "mm-format.h"
#include "mm-json.h"

G_BEGIN_DECLS

#define MM_SAFETENSORS_MAX_HEADER 100000000

typedef struct _MmSafetensors MmSafetensors;

MmSafetensors *mm_safetensors_open (const gchar * path, GError ** error);
/* Parses @bytes (a reference is taken); @name is used in error messages. */
MmSafetensors *mm_safetensors_open_from_bytes (GBytes * bytes,
    const gchar * name, GError ** error);
void mm_safetensors_free (MmSafetensors * st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmSafetensors, mm_safetensors_free)

const gchar *mm_safetensors_path (MmSafetensors * st);
/* A "__metadata__" string value; (nullable) (transfer none). */
const gchar *mm_safetensors_get_metadata (MmSafetensors * st,
    const gchar * key);

guint mm_safetensors_n_tensors (MmSafetensors * st);
/* Tensors in header order; NULL past the end. */
const MmTensorInfo *mm_safetensors_tensor_nth (MmSafetensors * st, guint i);
/* (nullable): NULL when absent; may be of an unsupported dtype. */
const MmTensorInfo *mm_safetensors_find_tensor (MmSafetensors * st,
    const gchar * name);
/* Errors when absent or of an unsupported dtype. */
const MmTensorInfo *mm_safetensors_get_tensor (MmSafetensors * st,
    const gchar * name, GError ** error);
/* See mm_tensor_info_upload().  Returns: (transfer full). */
MmTensor *mm_safetensors_upload_tensor (MmSafetensors * st,
    MmEngine * engine, const gchar * name, guint accept, MmConvert convert,
    gint n_dims, const gint64 * shape, GError ** error);

/* ---- model folders ---- */

typedef struct _MmHfModel MmHfModel;

/* @path: a model folder, or one .safetensors file (then without config). */
MmHfModel *mm_hf_model_open (const gchar * path, GError ** error);
void mm_hf_model_free (MmHfModel * m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmHfModel, mm_hf_model_free)

const gchar *mm_hf_model_path (MmHfModel * m);
/* config.json, (nullable) when the folder has none; (transfer none). */
MmJson *mm_hf_model_config (MmHfModel * m);

guint mm_hf_model_n_shards (MmHfModel * m);
MmSafetensors *mm_hf_model_shard (MmHfModel * m, guint i);

guint mm_hf_model_n_tensors (MmHfModel * m);
const MmTensorInfo *mm_hf_model_tensor_nth (MmHfModel * m, guint i);
const MmTensorInfo *mm_hf_model_find_tensor (MmHfModel * m,
    const gchar * name);
const MmTensorInfo *mm_hf_model_get_tensor (MmHfModel * m,
    const gchar * name, GError ** error);
/* The shard file holding @name, (nullable). */
const gchar *mm_hf_model_tensor_file (MmHfModel * m, const gchar * name);
MmTensor *mm_hf_model_upload_tensor (MmHfModel * m, MmEngine * engine,
    const gchar * name, guint accept, MmConvert convert, gint n_dims,
    const gint64 * shape, GError ** error);

G_END_DECLS
