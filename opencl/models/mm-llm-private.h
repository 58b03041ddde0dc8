/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: the decoder graph of Llama-family LLMs, shared by mm-llm.c
 * (generation) and the tests (logits vs the reference). */
#pragma once

#include "mm-llm.h"

G_BEGIN_DECLS

typedef struct
{
  gint n_layer, d, n_head, n_kv_head, head_dim, ffn, vocab, n_ctx_train;
  gfloat eps, rope_base, rope_freq_scale;
  MmRopeMode rope_mode;
  gint n_rot;
} MmLlmHp;

/* Q, K and V (and gate and up) are stacked by rows into one weight, so
 * each pair of projections is one GEMM; files that store them in
 * different types keep them apart (the stacked pointer is NULL). */
typedef struct
{
  MmTensor *attn_norm;
  MmTensor *wqkv, *bqkv;        /* [(n_head + 2 n_kv_head) head_dim, d] */
  MmTensor *wq, *wk, *wv, *wo;
  MmTensor *bq, *bk, *bv;       /* Qwen2 */
  MmTensor *ffn_norm;
  MmTensor *w_gate_up;          /* [2 ffn, d]: gate rows, then up rows */
  MmTensor *w_gate, *w_up, *w_down;
} MmLlmLayer;

/* Positions in a forward chunk: either a text token id or a media row. */
typedef struct
{
  const gint32 *ids;            /* n entries; < 0 where media goes: -1 -
                                 * the media's index in the request */
  gint n;
  const MmLlmMedia *media;      /* media rows fill the runs of one negative
                                 * value, in order */
  gint n_media;
} MmLlmBatch;

/* Runs @batch at positions [pos0, pos0 + n) against the KV cache and
 * returns logits of the last position ([1, vocab], host, newly allocated)
 * or of all positions when @all_logits. */
float *mm_llm_forward (MmLlm * llm, const MmLlmBatch * batch, gint pos0,
    gboolean all_logits, GError ** error);
/* The decoder without tokenizer (tests of the graph alone). */
MmLlm *mm_llm_load_weights_only (MmEngine * engine, const gchar * path,
    GError ** error);
/* Forgets the KV cache from position @pos on. */
void mm_llm_truncate (MmLlm * llm, gint pos);
const MmLlmHp *mm_llm_hparams (MmLlm * llm);
/* Bytes of the weights one decode step reads (every layer's and the
 * output's; of the embedding table only what the output ties to it). */
gsize mm_llm_decode_weight_bytes (MmLlm * llm);
/* The prompt's token ids (-1 - the media's index at media positions). */
gboolean mm_llm_prompt_ids (MmLlm * llm, const MmLlmRequest * req,
    GArray * ids, GError ** error);
/* mm_llm_generate() that also appends the generated ids to @out_ids. */
gchar *mm_llm_generate_full (MmLlm * llm, const MmLlmRequest * req,
    MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
    GArray * out_ids, GError ** error);

G_END_DECLS
