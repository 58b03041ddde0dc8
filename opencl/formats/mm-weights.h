/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MmWeights: one front for every weight source, so a model loader reads
 * GGUF files and Hugging Face folders alike.
 *
 *   path is a directory            -> Hugging Face folder (MmHfModel)
 *   path is a file starting "GGUF" -> GGUF (MmGguf)
 *   any other file                 -> a single .safetensors file
 *
 * Metadata keys are GGUF keys ("llama.context_length") for GGUF and dotted
 * config.json paths ("vision_config.hidden_size", "architectures.0") for
 * Hugging Face folders.  Getters return @def when the key is absent (or the
 * source has no metadata) and set @error, returning @def, when the value
 * has another type.
 *
 * Ownership: MmWeights owns the backend reader; every pointer it returns
 * (infos, strings, the backend) is valid until mm_weights_free().  Tensors
 * uploaded are the caller's (mm_tensor_free).
 */
#pragma once

#include "mm-format.h"
#include "mm-gguf.h"
#include "mm-safetensors.h"

G_BEGIN_DECLS

typedef enum
{
  MM_WEIGHTS_GGUF,
  MM_WEIGHTS_HF,
} MmWeightsKind;

typedef struct _MmWeights MmWeights;

MmWeights *mm_weights_open (const gchar * path, GError ** error);
void mm_weights_free (MmWeights * w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmWeights, mm_weights_free)

MmWeightsKind mm_weights_kind (MmWeights * w);
const gchar *mm_weights_path (MmWeights * w);
/* The backend, (transfer none) (nullable): NULL for the other kind. */
MmGguf *mm_weights_gguf (MmWeights * w);
MmHfModel *mm_weights_hf (MmWeights * w);

/* ---- tensors ---- */
guint mm_weights_n_tensors (MmWeights * w);
const MmTensorInfo *mm_weights_tensor_nth (MmWeights * w, guint i);
gboolean mm_weights_has_tensor (MmWeights * w, const gchar * name);
/* Errors when absent or of a dtype mm cannot load. */
const MmTensorInfo *mm_weights_get_tensor (MmWeights * w, const gchar * name,
    GError ** error);
/* Checks dtype (in @accept, a MM_DTYPE_BIT set, 0 = any) and shape
 * (outermost first, -1 = any; @n_dims 0 = any) and uploads, converted as
 * asked.  Returns: (transfer full): free with mm_tensor_free(). */
MmTensor *mm_weights_upload (MmWeights * w, MmEngine * engine,
    const gchar * name, guint accept, MmConvert convert, gint n_dims,
    const gint64 * shape, GError ** error);

/* ---- metadata ---- */
gboolean mm_weights_has_key (MmWeights * w, const gchar * key);
gint64 mm_weights_get_int (MmWeights * w, const gchar * key, gint64 def,
    GError ** error);
gdouble mm_weights_get_float (MmWeights * w, const gchar * key, gdouble def,
    GError ** error);
gboolean mm_weights_get_bool (MmWeights * w, const gchar * key,
    gboolean def, GError ** error);
/* (transfer none) */
const gchar *mm_weights_get_str (MmWeights * w, const gchar * key,
    const gchar * def, GError ** error);

G_END_DECLS
