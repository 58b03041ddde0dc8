/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: where an LLM's hparams, tensors and tokenizer come from (a GGUF
 * file or a Hugging Face folder), behind one small interface. */
#pragma once

#include "mm-llm-private.h"

G_BEGIN_DECLS

/* Positions beyond this are not allocated in the KV cache even when the
 * model was trained for more. */
#define MM_LLM_MAX_CONTEXT 4096

typedef enum
{
  MM_LLM_T_TOK_EMBD,
  MM_LLM_T_OUT_NORM,
  MM_LLM_T_OUTPUT,
  MM_LLM_T_ATTN_NORM,
  MM_LLM_T_Q,
  MM_LLM_T_K,
  MM_LLM_T_V,
  MM_LLM_T_O,
  MM_LLM_T_Q_BIAS,
  MM_LLM_T_K_BIAS,
  MM_LLM_T_V_BIAS,
  MM_LLM_T_FFN_NORM,
  MM_LLM_T_GATE,
  MM_LLM_T_UP,
  MM_LLM_T_DOWN,
} MmLlmTensorKind;

typedef struct _MmLlmSource MmLlmSource;

MmLlmSource *mm_llm_source_open (const gchar * path, GError ** error);
void mm_llm_source_free (MmLlmSource * src);
gboolean mm_llm_source_hparams (MmLlmSource * src, MmLlmHp * hp,
    GError ** error);
/* Uploads tensor @kind of layer @layer (-1 for global tensors), checking
 * its shape.  Returns NULL without error when @optional and absent. */
MmTensor *mm_llm_source_tensor (MmLlmSource * src, MmEngine * engine,
    MmLlmTensorKind kind, gint layer, gint n_dims, const gint64 * shape,
    gboolean optional, GError ** error);

/* Tensors @kinds[0 .. n) (n <= 4) of layer @layer stacked by rows into one
 * tensor, as q|k|v or gate|up (vectors end to end, in F32), each checked
 * against @shapes[i] (@n_dims dims: [rows, cols] or [len]).  Returns NULL
 * without error when the matrices are stored in different types (the
 * caller then loads them one by one) and, with @optional, when all are
 * absent. */
MmTensor *mm_llm_source_tensor_rows (MmLlmSource * src, MmEngine * engine,
    const MmLlmTensorKind * kinds, gint n, gint layer, gint n_dims,
    const gint64 (*shapes)[2], gboolean optional, GError ** error);

/* The underlying readers (exactly one is non-NULL). */
struct _MmGguf *mm_llm_source_gguf (MmLlmSource * src);
struct _MmHfModel *mm_llm_source_hf (MmLlmSource * src);
const gchar *mm_llm_source_path (MmLlmSource * src);

/* Tokenizer + chat template + special tokens of a model. */
typedef struct _MmLlmText MmLlmText;

MmLlmText *mm_llm_text_new (MmLlmSource * src, gint vocab, GError ** error);
void mm_llm_text_free (MmLlmText * text);
/* The full prompt of @req through the model's chat template, as token ids
 * with -1 at each media position (media[i].n_tokens of them, in order). */
gboolean mm_llm_text_prompt (MmLlmText * text, const MmLlmRequest * req,
    GArray * ids, GError ** error);
/* The media of @req in the order of the prompt's media runs: an image the
 * template splices view by view (tiles, then the global image) becomes one
 * entry per view, a slice of its tokens; the others stay as they are.
 * Returns @req's media or a new array (g_free when != req->media). */
MmLlmMedia *mm_llm_text_media_runs (MmLlmText * text,
    const MmLlmRequest * req, gint * n_runs);
/* End of sequence / end of turn. */
gboolean mm_llm_text_is_end (MmLlmText * text, gint32 id);
/* A streaming decoder (holds back incomplete UTF-8): free with
 * mm_decode_stream_free(). */
struct _MmDecodeStream *mm_llm_text_decoder (MmLlmText * text);

struct _MmTokenizer *mm_llm_text_tokenizer (MmLlmText * text);

G_END_DECLS
