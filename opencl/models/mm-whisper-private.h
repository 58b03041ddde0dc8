/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: Whisper's hparams, weights and special tokens, shared by
 * mm-whisper.c (loading, encoder and decoder graphs) and
 * mm-whisper-decode.c (prompt, logit rules, greedy search, segments). */
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

/* mm-whisper-decode.c */
gboolean mm_whisper_special_load (MmWhisper * w, const gchar * dir,
    GError ** error);
void mm_whisper_special_clear (MmWhisperSpecial * sp);

G_END_DECLS
