/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: vision encoder hparams, weights and the loader's entry points,
 * shared by mm-vision.c (graph) and mm-vision-load.c (files). */
#pragma once

#include "mm-vision.h"
#include "mm-image-prep.h"
#include "mm-weights.h"

G_BEGIN_DECLS

typedef enum
{
  MM_ACT_GELU,                  /* erf form */
  MM_ACT_GELU_TANH,             /* gelu_pytorch_tanh, ggml_gelu */
  MM_ACT_QUICK_GELU,
  MM_ACT_SILU,
} MmAct;

typedef enum
{
  MM_PROJ_NONE,                 /* tower only: HF last_hidden_state */
  MM_PROJ_MLP,                  /* LLaVA: linear, act, linear */
  MM_PROJ_IDEFICS3,             /* pixel shuffle + linear */
  MM_PROJ_PERCEIVER,            /* Idefics2: SwiGLU MLP + Perceiver resampler */
  MM_PROJ_MINICPMV,             /* MiniCPM-V single-layer resampler */
} MmProj;

/* How position embeddings follow an input grid other than the trained
 * one: SigLIP / CLIP interpolate bicubically (HF interpolate_pos_encoding);
 * Idefics2/3 and MiniCPM-V towers look up bucketed positions (NaViT). */
typedef enum
{
  MM_POS_INTERPOLATE,
  MM_POS_BUCKET,
} MmPosMode;

#define MM_VISION_MAX_FEATURE_LAYERS 4

typedef struct
{
  /* tower */
  gint d, n_ff, n_head, head_dim, n_layer;      /* n_layer: blocks in file */
  gint patch, image_size;       /* input resolution (square) */
  gint n_pos_trained;           /* rows of the position table (incl. CLS) */
  gfloat eps;
  MmAct act;
  MmPosMode pos_mode;
  gboolean has_cls, has_pre_ln, has_post_ln, has_patch_bias;
  /* output selection: hidden_states indices (0 = embeddings), as HF's
   * vision_feature_layer made non-negative; n_run blocks are executed */
  gint feature_layers[MM_VISION_MAX_FEATURE_LAYERS];
  gint n_feature_layers;
  gint n_run;
  gboolean apply_post_ln;       /* post-LN on the tower output */
  gboolean drop_cls;            /* LLaVA "default" select strategy */

  /* connector */
  MmProj proj;
  gint out_dim, n_tokens;
  /* LLaVA MLP */
  MmAct mlp_act;
  gboolean mlp_bias;
  /* Idefics3 */
  gint scale_factor;
  /* Idefics2 perceiver (modality projection + resampler) */
  gint mp_ff;                   /* modality projection intermediate */
  MmAct mp_act;
  gint p_latents, p_depth, p_n_head, p_n_kv_head, p_head_dim, p_ff;
  MmAct p_act;
  gfloat p_eps;
  /* MiniCPM-V resampler */
  gint r_dim, r_queries, r_n_head, r_kv_dim;
  gboolean r_has_kv_proj;
  gfloat r_eps;
} MmVisionHp;

typedef struct
{
  MmTensor *ln1_w, *ln1_b, *qkv_w, *qkv_b, *o_w, *o_b;     /* qkv [3d, d] */
  MmTensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} MmVitLayer;

typedef struct
{
  MmTensor *latents_norm, *context_norm, *q_w, *k_w, *v_w, *o_w;
  MmTensor *post_norm, *gate_w, *up_w, *down_w;
} MmPerceiverLayer;

typedef struct
{
  /* tower */
  MmTensor *patch_w, *patch_b, *cls, *pos;      /* pos: [n_tok, d], ready */
  MmTensor *pos_trained;        /* bucketed towers taking any grid (views of
                                 * varying size): the file's table */
  MmTensor *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b;
  MmVitLayer *layers;           /* n_layer */
  /* LLaVA MLP */
  MmTensor *mm0_w, *mm0_b, *mm2_w, *mm2_b;
  /* Idefics3 */
  MmTensor *fc_w;
  /* Idefics2 */
  MmTensor *mp_gate_w, *mp_up_w, *mp_down_w, *latents, *p_norm;
  MmPerceiverLayer *p_layers;   /* p_depth */
  /* MiniCPM-V */
  MmTensor *r_query, *r_kv_w, *r_q_w, *r_q_b, *r_k_w, *r_k_b, *r_v_w, *r_v_b;
  MmTensor *r_o_w, *r_o_b, *r_ln_q_w, *r_ln_q_b, *r_ln_kv_w, *r_ln_kv_b;
  MmTensor *r_ln_post_w, *r_ln_post_b, *r_proj_w, *r_pos;
} MmVisionWeights;

/* Everything the loader reads from a file. */
typedef struct
{
  MmVisionHp hp;
  MmImagePrepSpec prep;
  MmVisionWeights w;
  gchar *kind;                  /* "siglip", "clip+mlp", ... */
} MmVisionLoaded;

/* Reads hparams and preprocessing settings, validates every tensor's name,
 * dtype and shape, then uploads them (mm-vision-load.c). @opts nullable. */
gboolean mm_vision_load_file (MmEngine * engine, const gchar * path,
    const MmVisionOptions * opts, MmVisionLoaded * out, GError ** error);
void mm_vision_weights_clear (MmVisionWeights * w, const MmVisionHp * hp);
/* Idefics2/3 (NaViT) bucketed position of each of @go patches along an
 * axis on a table of @gi per side, as modeling_idefics3.py computes it. */
void mm_vision_bucket_ids (gint gi, gint go, gint * ids);
/* MiniCPM-V's 2-D sin-cos table of a @gh x @gw grid, [gh * gw, D]
 * (g_free). */
float *mm_vision_sincos_2d (gint gh, gint gw, gint D);

G_END_DECLS
