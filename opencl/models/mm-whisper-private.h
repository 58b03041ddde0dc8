/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: Whisper's hparams, weights and special tokens, shared by
 * mm-whisper.c (loading, encoder and decoder graphs, connectors),
 * mm-whisper-gguf.c (GGUF audio projector files) and mm-whisper-decode.c
 * (prompt, logit rules, greedy search, segments). */
#pragma once

#include "mm-whisper.h"
#include "mm-tokenizer.h"

G_BEGIN_DECLS
#define MM_WHISPER_LN_EPS 1e-5f
    typedef struct
{
  gint d, vocab, n_mels;
  gint n_enc_layer, n_enc_head, enc_ffn, n_audio_ctx;
  gint n_dec_layer, n_dec_head, dec_ffn, n_text_ctx;
  gboolean scale_embedding;
  gfloat eps;                   /* encoder LayerNorms */
  /* connector (GGUF audio projector files; NONE for HF folders) */
  MmWhisperProj proj;
  gint stack;                   /* frames stacked per token (ultravox, voxtral) */
  gint proj_ff;                 /* width after the first connector layer
                                 * (ultravox: after SwiGLU) */
  gint n_enc_out;               /* encoder output rows (qwen2a: pooled) */
  gint n_out, out_dim;          /* what the encoder + connector makes */
} MmWhisperHp;

typedef struct
{
  MmTensor *q_w, *q_b, *k_w, *v_w, *v_b, *o_w, *o_b;    /* k has no bias */
} MmWhisperAttn;

typedef struct
{
  MmTensor *attn_ln_w, *attn_ln_b;
  MmWhisperAttn attn;
  MmTensor *cross_ln_w, *cross_ln_b;    /* decoder only */
  MmWhisperAttn cross;
  MmTensor *ffn_ln_w, *ffn_ln_b;
  MmTensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} MmWhisperLayer;

/* Special tokens and generation rules (generation_config.json, else
 * looked up in the vocabulary); -1 = absent. */
typedef struct
{
  gint32 sot, eot, no_timestamps, timestamp_begin, transcribe, translate;
  gint32 prev_sot;
  gboolean multilingual;
  GHashTable *lang_to_id;       /* "en" -> id (GINT_TO_POINTER) */
  GArray *suppress;             /* gint32 */
  GArray *begin_suppress;       /* gint32 */
  gint max_initial_timestamp_index;     /* -1: none */
} MmWhisperSpecial;

struct _MmWhisper
{
  MmEngine *engine;
  gchar *id;
  MmWhisperHp hp;
  MmMel *mel;
  /* encoder */
  MmTensor *conv1_w, *conv1_b, *conv2_w, *conv2_b, *enc_pos;
  MmWhisperLayer *enc;
  MmTensor *enc_ln_w, *enc_ln_b;
  /* connector: ultravox norm_pre, mlp.1 (no bias), norm_mid, mlp.2;
   * voxtral mlp.1, mlp.2 (optional biases); qwen2a fc */
  MmTensor *mm_norm_pre, *mm_1_w, *mm_1_b, *mm_norm_mid, *mm_2_w, *mm_2_b;
  MmTensor *mm_fc_w, *mm_fc_b;
  MmTensor *stack_zeros;        /* [stack - 1, d] zeros: padding to whole
                                 * stacks */
  /* decoder */
  MmTensor *tok_embd, *dec_pos, *dec_ln_w, *dec_ln_b, *proj_out;
  MmWhisperLayer *dec;
  MmTokenizer *tokenizer;       /* nullable */
  MmWhisperSpecial sp;
};

struct _MmWhisperDecoder
{
  MmWhisper *w;
  MmGraph *graph;
  MmTensor **k_cache;           /* per layer [n_text_ctx, d] */
  MmTensor **vt_cache;          /* per layer [d, n_text_ctx]: V transposed */
  MmTensor **cross_k;           /* per layer [n_audio_ctx, d] */
  MmTensor **cross_vt;          /* per layer [d, n_audio_ctx] */
  gboolean have_audio;
};

/* mm-whisper.c */
/* Conv kernels to their 2-D [out, in x k] form; F32/F16 matrices that only
 * mm_linear reads to the GEMM's panel layout (quantised ones are already
 * in theirs). */
gboolean mm_whisper_pack_weights (MmWhisper * w, GError ** error);

/* mm-whisper-gguf.c: fills @w (engine and id set) from a GGUF audio
 * projector file: hparams, log-mel settings, encoder and connector. */
gboolean mm_whisper_gguf_load (MmWhisper * w, const gchar * path,
    GError ** error);
/* TRUE when @path is a regular file that starts with the GGUF magic. */
gboolean mm_whisper_is_gguf (const gchar * path);

/* mm-whisper-decode.c */
gboolean mm_whisper_special_load (MmWhisper * w, const gchar * dir,
    GError ** error);
void mm_whisper_special_clear (MmWhisperSpecial * sp);

G_END_DECLS
