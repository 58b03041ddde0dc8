/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whisper encoder and decoder graphs, the connectors of audio projector
 * files, and loading from Hugging Face folders
 * (WhisperForConditionalGeneration: "model.encoder.*", "model.decoder.*",
 * optional "proj_out.weight"; WhisperModel without the "model." prefix);
 * GGUF audio projector files load in mm-whisper-gguf.c.
 *
 * Encoder: conv1d (k3, p1) + GELU, conv1d (k3, s2, p1) + GELU, + learned
 * (sinusoid-initialised) positions, pre-LN blocks, final LayerNorm.
 * Decoder: token embedding + learned positions, pre-LN blocks of causal
 * self-attention (KV cache), cross-attention to the encoder output (keys
 * and values computed once per window) and MLP, final LayerNorm, logits
 * through the tied token embedding.
 */
#include "mm-whisper-private.h"
#include "mm-safetensors.h"
#include "mm-launch.h"

#include <math.h>
#include <string.h>

/* ---- graphs ---- */

/* Multi-head attention without permutes.  Heads are interleaved in rows:
 * q [nq, H hd] and k (rows 0..nk-1 of a [*, H hd] tensor) are read with
 * strides; @vt holds V transposed, [H hd, ld_vt] (row h hd + i: dim i of
 * head h for every key), so P.V is a plain batched GEMM whose output lands
 * in [nq, H hd].  The value bias is left out: softmax rows sum to one, so
 * it is added to the output instead. */
static MmTensor *
attention (MmGraph * g, MmTensor * q, MmTensor * k, MmTensor * vt, gint64 nk,
    gint64 ld_vt, gint n_head, gint causal_offset)
{
  gint64 nq = mm_tensor_rows (q), dm = mm_tensor_cols (q), hd = dm / n_head;
  gint64 s_sc[3] = { n_head, nq, nk };
  MmTensor *sc = mm_graph_tensor (g, MM_DTYPE_F32, 3, s_sc);
  MmGemmShape qk = {.M = nq,.N = nk,.K = hd,.batch = n_head,.b_div = 1,
    .lda = dm,.ldb = dm,.ldc = nk,.stride_a = hd,.stride_b = hd,
    .stride_c = nq * nk,.alpha = 1.0f / sqrtf (hd)
  };
  mm_gemm (g, q, k, NULL, sc, &qk);
  MmTensor *p = mm_softmax (g, sc, NULL, 1.0f, causal_offset);
  MmTensor *o = mm_graph_tensor_2d (g, nq, dm);
  MmGemmShape pv = {.M = nq,.N = hd,.K = nk,.batch = n_head,.b_div = 1,
    .lda = nk,.ldb = ld_vt,.ldc = dm,.stride_a = nq * nk,
    .stride_b = hd * ld_vt,.stride_c = hd,.alpha = 1.0f
  };
  mm_gemm (g, p, vt, NULL, o, &pv);
  return o;
}

/* V transposed, [d, n] = Wv . h^T (no bias), written into @vt at column
 * @col0 of rows of @ld elements (a new graph tensor when @vt is NULL). */
static MmTensor *
values_t (MmGraph * g, const MmWhisperAttn * a, MmTensor * h, MmTensor * vt,
    gint64 col0, gint64 ld)
{
  gint64 n = mm_tensor_rows (h), dm = mm_tensor_cols (h);
  if (vt == NULL)
    vt = mm_graph_tensor_2d (g, dm, n);
  MmTensor at = *vt;
  at.offset += col0 * sizeof (float);
  MmGemmShape s = {.M = dm,.N = n,.K = dm,.batch = 1,.b_div = 1,.lda = dm,
    .ldb = dm,.ldc = ld,.alpha = 1.0f
  };
  if (mm_graph_ok (g) && col0 + n > ld)
    mm_graph_failf (g, "whisper: %" G_GINT64_FORMAT " values at column %"
        G_GINT64_FORMAT " exceed rows of %" G_GINT64_FORMAT, n, col0, ld);
  mm_gemm (g, a->v_w, h, NULL, mm_graph_keep (g, at), &s);
  return vt;
}

/* Rows of @x [n, d] into columns [col0, col0 + n) of @vt [d, ld]: a few
 * new values of the decoder's transposed cache (a GEMM with N = 1 would be
 * a poor fit). */
static void
put_cols (MmGraph * g, MmTensor * x, MmTensor * vt, gint64 col0)
{
  gint64 n = mm_tensor_rows (x), dm = mm_tensor_cols (x);
  gint64 ld = mm_tensor_cols (vt);
  if (mm_graph_ok (g) && (mm_tensor_rows (vt) != dm || col0 + n > ld)) {
    mm_graph_failf (g, "whisper: %s does not fit the value cache %s at %"
        G_GINT64_FORMAT, mm_tensor_shape_str (x), mm_tensor_shape_str (vt),
        col0);
    return;
  }
  gsize gws[2] = { dm, n };
  MM_LAUNCH (g, "kernel_whisper_put_cols", 2, gws, FALSE, MM_TENSOR (x),
      MM_TENSOR (vt), MM_UINT (dm), MM_UINT (ld), MM_UINT (col0));
}

/* @x + the output projection of attention output @o (value bias added
 * first); the GEMM adds the residual where it can. */
static MmTensor *
attn_out (MmGraph * g, const MmWhisperAttn * a, MmTensor * o, MmTensor * x)
{
  MmLinearFuse res = {.residual = x };
  return mm_linear_fused (g, mm_add (g, o, a->v_b), a->o_w, a->o_b, &res);
}

/* @x + fc2 (gelu (fc1 (@h))) */
static MmTensor *
mlp (MmGraph * g, const MmWhisperLayer * l, MmTensor * h, MmTensor * x)
{
  MmLinearFuse act = {.act = MM_LINEAR_ACT_GELU }, res = {.residual = x };
  h = mm_linear_fused (g, h, l->fc1_w, l->fc1_b, &act);
  return mm_linear_fused (g, h, l->fc2_w, l->fc2_b, &res);
}

static MmTensor *
enc_block (MmGraph * g, const MmWhisperLayer * l, MmTensor * x,
    const MmWhisperHp * hp)
{
  const MmWhisperAttn *a = &l->attn;
  MmTensor *h = mm_layer_norm (g, x, l->attn_ln_w, l->attn_ln_b, hp->eps);
  gint n_head = hp->n_enc_head;
  gint64 n = mm_tensor_rows (h), hd = mm_tensor_cols (h) / n_head;
  /* [n, heads, hd] views; mm_attention takes V as rows */
  MmTensor *o = mm_attention (g,
      mm_reshape_3d (g, mm_linear (g, h, a->q_w, a->q_b), n, n_head, hd),
      mm_reshape_3d (g, mm_linear (g, h, a->k_w, NULL), n, n_head, hd),
      mm_reshape_3d (g, mm_linear (g, h, a->v_w, NULL), n, n_head, hd),
      NULL, 1.0f / sqrtf (hd), -1);
  x = attn_out (g, a, o, x);
  h = mm_layer_norm (g, x, l->ffn_ln_w, l->ffn_ln_b, hp->eps);
  return mlp (g, l, h, x);
}

/* Convolutions and positions: features [n_mels, n_frames] -> the input of
 * block 0, [n_audio_ctx, d]. */
static MmTensor *
enc_stem (MmWhisper * w, MmGraph * g, MmTensor * features)
{
  const MmWhisperHp *hp = &w->hp;
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  if (features->n_dims != 2 || features->shape[0] != hp->n_mels
      || features->shape[1] != 2 * hp->n_audio_ctx) {
    mm_graph_failf (g, "%s: features %s are not [%d, %d] (n_mels, frames)",
        w->id, mm_tensor_shape_str (features), hp->n_mels, 2 * hp->n_audio_ctx);
    return mm_graph_dead (g);
  }
  MmTensor *x = mm_conv1d_ex (g, features, FALSE, w->conv1_w, w->conv1_b, 3,
      1, 1, MM_LINEAR_ACT_GELU);        /* [n_frames, d] */
  x = mm_conv1d_ex (g, x, TRUE, w->conv2_w, w->conv2_b, 3, 2, 1,
      MM_LINEAR_ACT_GELU);      /* [n_audio_ctx, d] */
  return mm_add (g, x, w->enc_pos);
}

/* Qwen2AudioEncoder's AvgPool1d(2, stride 2) over time: [n, d] ->
 * [n / 2, d], a trailing odd frame dropped.  Row pairs are the two halves
 * of a [n / 2, 2 d] view. */
static MmTensor *
avg_pool_pairs (MmGraph * g, MmTensor * x)
{
  gint64 d = mm_tensor_cols (x), m = mm_tensor_rows (x) / 2;
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  if (m == 0) {
    mm_graph_failf (g, "whisper: cannot pool %s in pairs",
        mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor v = *x;
  v.n_dims = 2;
  v.shape[0] = m;
  v.shape[1] = 2 * d;
  MmTensor *pairs = mm_graph_keep (g, v);
  MmTensor *sum = mm_add (g, mm_slice_cols (g, pairs, 0, d),
      mm_slice_cols (g, pairs, d, d));
  return mm_scale (g, sum, 0.5f);
}

/* After the last block: (qwen2a: pool) and the final LayerNorm. */
static MmTensor *
enc_final (MmWhisper * w, MmGraph * g, MmTensor * x)
{
  if (w->hp.proj == MM_WHISPER_PROJ_QWEN2A)
    x = avg_pool_pairs (g, x);
  return mm_layer_norm (g, x, w->enc_ln_w, w->enc_ln_b, w->hp.eps);
}

MmTensor *
mm_whisper_encode_features (MmWhisper * w, MmGraph * g, MmTensor * features,
    MmTensor ** hidden_states)
{
  const MmWhisperHp *hp = &w->hp;
  MmTensor *x = enc_stem (w, g, features);
  for (gint il = 0; il < hp->n_enc_layer; il++) {
    if (hidden_states)
      hidden_states[il] = x;
    x = enc_block (g, &w->enc[il], x, hp);
    mm_graph_pace (g);
  }
  if (hidden_states)
    hidden_states[hp->n_enc_layer] = x;
  return enc_final (w, g, x);
}

/* ---- connectors ---- */

/* StackAudioFrames: [n, d] -> [ceil (n / s), s d], consecutive frames side
 * by side, the last stack completed with zero frames. */
static MmTensor *
stack_frames (MmWhisper * w, MmGraph * g, MmTensor * x)
{
  gint64 n = mm_tensor_rows (x), d = mm_tensor_cols (x), s = w->hp.stack;
  gint64 pad = (s - n % s) % s;
  if (pad > 0) {
    MmTensor z = *w->stack_zeros;
    z.shape[0] = pad;
    x = mm_concat (g, x, mm_graph_keep (g, z), FALSE);
  }
  return mm_reshape_2d (g, x, (n + pad) / s, s * d);
}

/* Ultravox v0.5 UltravoxProjector (RMSNorm eps 1e-6, SwiGLU as Ultravox's:
 * x, gate = chunk (2); silu (gate) * x). */
static MmTensor *
connector_ultravox (MmWhisper * w, MmGraph * g, MmTensor * x)
{
  gint64 F = w->hp.proj_ff;
  x = mm_rms_norm (g, stack_frames (w, g, x), w->mm_norm_pre, 1e-6f);
  MmTensor *h = mm_linear (g, x, w->mm_1_w, NULL);      /* [n, 2 F] */
  h = mm_swiglu (g, mm_slice_cols (g, h, F, F), mm_slice_cols (g, h, 0, F));
  h = mm_rms_norm (g, h, w->mm_norm_mid, 1e-6f);
  return mm_linear (g, h, w->mm_2_w, NULL);
}

/* VoxtralMultiModalProjector over stacked frames (GELU, erf form). */
static MmTensor *
connector_voxtral (MmWhisper * w, MmGraph * g, MmTensor * x)
{
  MmTensor *h = mm_linear (g, stack_frames (w, g, x), w->mm_1_w, w->mm_1_b);
  return mm_linear (g, mm_gelu (g, h), w->mm_2_w, w->mm_2_b);
}

MmTensor *
mm_whisper_project (MmWhisper * w, MmGraph * g, MmTensor * encoded)
{
  switch (w->hp.proj) {
    case MM_WHISPER_PROJ_ULTRAVOX:
      return connector_ultravox (w, g, encoded);
    case MM_WHISPER_PROJ_VOXTRAL:
      return connector_voxtral (w, g, encoded);
    case MM_WHISPER_PROJ_QWEN2A:
      return mm_linear (g, encoded, w->mm_fc_w, w->mm_fc_b);
    case MM_WHISPER_PROJ_NONE:
    default:
      return encoded;
  }
}

MmTensor *
mm_whisper_encode (MmWhisper * w, MmGraph * g, MmTensor * audio)
{
  MmTensor *enc = mm_whisper_encode_features (w, g,
      mm_mel_compute (w->mel, g, audio), NULL);
  return mm_whisper_project (w, g, enc);
}

/* ---- encoder state: one block's scratch at a time ---- */

struct _MmWhisperEncoder
{
  MmWhisper *w;
  MmGraph *graph;
  MmTensor *resid;              /* [n_audio_ctx, d]: between blocks */
};

MmWhisperEncoder *
mm_whisper_encoder_new (MmWhisper * w, GError ** error)
{
  gint64 s[2] = { w->hp.n_audio_ctx, w->hp.d };
  MmTensor *resid = mm_tensor_new (w->engine, MM_DTYPE_F32, 2, s,
      "whisper residual stream", error);
  if (resid == NULL)
    return NULL;
  MmWhisperEncoder *e = g_new0 (MmWhisperEncoder, 1);
  e->w = w;
  e->graph = mm_graph_new (w->engine);
  e->resid = resid;
  return e;
}

void
mm_whisper_encoder_free (MmWhisperEncoder * e)
{
  if (e == NULL)
    return;
  mm_tensor_free (e->resid);
  mm_graph_free (e->graph);
  g_free (e);
}

gsize
mm_whisper_encoder_arena_size (MmWhisperEncoder * e)
{
  return mm_graph_arena_size (e->graph);
}

/* Ends one stage: its output goes to the residual stream (or @out), and
 * the arena is recycled (the queue is in order: later stages' kernels run
 * after this stage's, whatever memory they share). */
static gboolean
stage_end (MmWhisperEncoder * e, MmTensor * y, MmTensor * dst, GError ** error)
{
  MmGraph *g = e->graph;
  mm_copy_rows_into (g, dst, 0, y);
  if (!mm_graph_ok (g))
    return mm_graph_finish (g, error);
  mm_graph_reset (g);
  return TRUE;
}

gboolean
mm_whisper_encoder_run (MmWhisperEncoder * e, const float *audio, gsize n,
    MmTensor * out, GError ** error)
{
  MmWhisper *w = e->w;
  MmGraph *g = e->graph;
  if (out->dtype != MM_DTYPE_F32 || mm_tensor_rows (out) != w->hp.n_out
      || mm_tensor_cols (out) != w->hp.out_dim || n == 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: output %s is not F32 [%d, %d], or no audio", w->id,
        mm_tensor_shape_str (out), w->hp.n_out, w->hp.out_dim);
    return FALSE;
  }
  gint64 s = MIN (n, (gsize) mm_mel_params (w->mel)->n_samples);
  mm_graph_reset (g);
  MmTensor *x = mm_graph_input_f32 (g, 1, &s, audio);
  if (!stage_end (e, enc_stem (w, g, mm_mel_compute (w->mel, g, x)),
          e->resid, error))
    return FALSE;
  for (gint il = 0; il < w->hp.n_enc_layer; il++) {
    x = mm_graph_keep (g, *e->resid);
    if (!stage_end (e, enc_block (g, &w->enc[il], x, &w->hp), e->resid, error))
      return FALSE;
  }
  x = enc_final (w, g, mm_graph_keep (g, *e->resid));
  mm_copy_rows_into (g, out, 0, mm_whisper_project (w, g, x));
  return mm_graph_finish (g, error);
}

/* Causal self-attention of @h (positions [pos0, pos0 + n)) through the
 * layer's caches: keys as rows, values transposed. */
static MmTensor *
dec_self_attention (MmWhisperDecoder * d, MmGraph * g, gint il, MmTensor * h,
    gint pos0)
{
  const MmWhisperAttn *a = &d->w->dec[il].attn;
  gint64 n = mm_tensor_rows (h), ctx = d->w->hp.n_text_ctx;
  mm_copy_rows_into (g, d->k_cache[il], pos0, mm_linear (g, h, a->k_w, NULL));
  put_cols (g, mm_linear (g, h, a->v_w, NULL), d->vt_cache[il], pos0);
  MmTensor *o = attention (g, mm_linear (g, h, a->q_w, a->q_b),
      d->k_cache[il], d->vt_cache[il], pos0 + n, ctx, d->w->hp.n_dec_head,
      pos0);
  return attn_out (g, a, o, NULL);
}

static MmTensor *
dec_block (MmWhisperDecoder * d, MmGraph * g, gint il, MmTensor * x, gint pos0)
{
  const MmWhisperLayer *l = &d->w->dec[il];
  MmTensor *h = mm_layer_norm (g, x, l->attn_ln_w, l->attn_ln_b,
      MM_WHISPER_LN_EPS);
  x = mm_add (g, x, dec_self_attention (d, g, il, h, pos0));
  h = mm_layer_norm (g, x, l->cross_ln_w, l->cross_ln_b, MM_WHISPER_LN_EPS);
  gint64 na = d->w->hp.n_audio_ctx;
  MmTensor *o = attention (g, mm_linear (g, h, l->cross.q_w, l->cross.q_b),
      d->cross_k[il], d->cross_vt[il], na, na, d->w->hp.n_dec_head, -1);
  x = attn_out (g, &l->cross, o, x);
  h = mm_layer_norm (g, x, l->ffn_ln_w, l->ffn_ln_b, MM_WHISPER_LN_EPS);
  return mlp (g, l, h, x);
}

float *
mm_whisper_decoder_forward (MmWhisperDecoder * d, const gint32 * ids, gint n,
    gint pos0, GError ** error)
{
  MmWhisper *w = d->w;
  if (!d->have_audio || n <= 0 || pos0 < 0 || pos0 + n > w->hp.n_text_ctx) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: %s%d tokens at position %d exceed the decoder's %d positions",
        w->id, d->have_audio ? "" : "no audio set; ", n, pos0,
        w->hp.n_text_ctx);
    return NULL;
  }
  MmGraph *g = d->graph;
  mm_graph_reset (g);
  MmTensor *x = mm_get_rows (g, w->tok_embd, ids, n);
  if (w->hp.scale_embedding)
    x = mm_scale (g, x, sqrtf (w->hp.d));
  x = mm_add (g, x, mm_slice_rows (g, w->dec_pos, pos0, n));
  for (gint il = 0; il < w->hp.n_dec_layer; il++)
    x = dec_block (d, g, il, x, pos0);
  x = mm_slice_rows (g, x, n - 1, 1);
  x = mm_layer_norm (g, x, w->dec_ln_w, w->dec_ln_b, MM_WHISPER_LN_EPS);
  MmTensor *logits = mm_linear (g, x, w->proj_out, NULL);
  if (!mm_graph_finish (g, error))
    return NULL;
  return mm_tensor_dup_f32 (w->engine, logits, error);
}

gboolean
mm_whisper_decoder_set_audio (MmWhisperDecoder * d, MmTensor * encoded,
    GError ** error)
{
  MmWhisper *w = d->w;
  MmGraph *g = d->graph;
  d->have_audio = FALSE;
  mm_graph_reset (g);
  if (mm_tensor_rows (encoded) != w->hp.n_audio_ctx
      || mm_tensor_cols (encoded) != w->hp.d) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: encoder output %s is not [%d, %d]", w->id,
        mm_tensor_shape_str (encoded), w->hp.n_audio_ctx, w->hp.d);
    return FALSE;
  }
  for (gint il = 0; il < w->hp.n_dec_layer; il++) {
    const MmWhisperAttn *a = &w->dec[il].cross;
    mm_copy_rows_into (g, d->cross_k[il], 0, mm_linear (g, encoded, a->k_w,
            NULL));
    values_t (g, a, encoded, d->cross_vt[il], 0, w->hp.n_audio_ctx);
  }
  d->have_audio = mm_graph_finish (g, error);
  return d->have_audio;
}

/* ---- loading ---- */

typedef struct
{
  MmHfModel *hf;
  MmEngine *engine;
  const gchar *prefix;          /* "model." or "" */
  GError *error;                /* the first failure */
} Loader;

/* Uploads "<prefix><name>" checking its shape: matrices keep F32/F16
 * (BF16 becomes F32), everything else becomes F32.  NULL without error
 * when @optional and absent. */
static MmTensor *
load (Loader * ld, const gchar * name, gint n_dims, const gint64 * shape,
    gboolean matrix, gboolean optional)
{
  if (ld->error)
    return NULL;
  gchar *full = g_strconcat (ld->prefix, name, NULL);
  const MmTensorInfo *info = mm_hf_model_find_tensor (ld->hf, full);
  MmTensor *t = NULL;
  if (info || !optional) {
    MmConvert cv = MM_CONVERT_F32;
    if (matrix && info && info->supported && info->dtype != MM_DTYPE_BF16)
      cv = MM_CONVERT_NONE;
    t = mm_hf_model_upload_tensor (ld->hf, ld->engine, full, MM_DTYPES_FLOAT,
        cv, n_dims, shape, &ld->error);
  }
  g_free (full);
  return t;
}

static void
load_attn (Loader * ld, MmWhisperAttn * a, const gchar * pre, gint64 d)
{
  gint64 s_w[2] = { d, d };
  gchar *n;
#define LOAD(field, suffix, nd, shape, matrix, opt) \
  n = g_strconcat (pre, suffix, NULL); \
  a->field = load (ld, n, nd, shape, matrix, opt); \
  g_free (n)
  LOAD (q_w, "q_proj.weight", 2, s_w, TRUE, FALSE);
  LOAD (q_b, "q_proj.bias", 1, &d, FALSE, FALSE);
  LOAD (k_w, "k_proj.weight", 2, s_w, TRUE, FALSE);
  LOAD (v_w, "v_proj.weight", 2, s_w, FALSE, FALSE);    /* F32: GEMM A side */
  LOAD (v_b, "v_proj.bias", 1, &d, FALSE, FALSE);
  LOAD (o_w, "out_proj.weight", 2, s_w, TRUE, FALSE);
  LOAD (o_b, "out_proj.bias", 1, &d, FALSE, FALSE);
#undef LOAD
}

static void
load_layer (Loader * ld, MmWhisperLayer * l, const gchar * stack, gint il,
    gint64 d, gint64 ffn, gboolean decoder)
{
  gchar *pre = g_strdup_printf ("%s.layers.%d.", stack, il);
  gchar *sub = g_strconcat (pre, "self_attn.", NULL);
  load_attn (ld, &l->attn, sub, d);
  g_free (sub);
  if (decoder) {
    sub = g_strconcat (pre, "encoder_attn.", NULL);
    load_attn (ld, &l->cross, sub, d);
    g_free (sub);
  }
  gint64 s_fc1[2] = { ffn, d }, s_fc2[2] = { d, ffn };
  struct
  {
    MmTensor **t;
    const gchar *name;
    gint n_dims;
    const gint64 *shape;
    gboolean matrix;
    gboolean decoder_only;
  } want[] = {
    {&l->attn_ln_w, "self_attn_layer_norm.weight", 1, &d, FALSE, FALSE},
    {&l->attn_ln_b, "self_attn_layer_norm.bias", 1, &d, FALSE, FALSE},
    {&l->cross_ln_w, "encoder_attn_layer_norm.weight", 1, &d, FALSE, TRUE},
    {&l->cross_ln_b, "encoder_attn_layer_norm.bias", 1, &d, FALSE, TRUE},
    {&l->ffn_ln_w, "final_layer_norm.weight", 1, &d, FALSE, FALSE},
    {&l->ffn_ln_b, "final_layer_norm.bias", 1, &d, FALSE, FALSE},
    {&l->fc1_w, "fc1.weight", 2, s_fc1, TRUE, FALSE},
    {&l->fc1_b, "fc1.bias", 1, &ffn, FALSE, FALSE},
    {&l->fc2_w, "fc2.weight", 2, s_fc2, TRUE, FALSE},
    {&l->fc2_b, "fc2.bias", 1, &d, FALSE, FALSE},
  };
  for (guint j = 0; j < G_N_ELEMENTS (want); j++) {
    if (want[j].decoder_only && !decoder)
      continue;
    gchar *n = g_strconcat (pre, want[j].name, NULL);
    *want[j].t = load (ld, n, want[j].n_dims, want[j].shape, want[j].matrix,
        FALSE);
    g_free (n);
  }
  g_free (pre);
}

static void
free_attn (MmWhisperAttn * a)
{
  MmTensor **all[] = { &a->q_w, &a->q_b, &a->k_w, &a->v_w, &a->v_b, &a->o_w,
    &a->o_b
  };
  for (guint j = 0; j < G_N_ELEMENTS (all); j++)
    g_clear_pointer (all[j], mm_tensor_free);
}

static void
free_layers (MmWhisperLayer * layers, gint n)
{
  for (gint i = 0; layers && i < n; i++) {
    MmWhisperLayer *l = &layers[i];
    free_attn (&l->attn);
    free_attn (&l->cross);
    MmTensor **all[] = { &l->attn_ln_w, &l->attn_ln_b, &l->cross_ln_w,
      &l->cross_ln_b, &l->ffn_ln_w, &l->ffn_ln_b, &l->fc1_w, &l->fc1_b,
      &l->fc2_w, &l->fc2_b
    };
    for (guint j = 0; j < G_N_ELEMENTS (all); j++)
      g_clear_pointer (all[j], mm_tensor_free);
  }
  g_free (layers);
}

void
mm_whisper_free (MmWhisper * w)
{
  if (w == NULL)
    return;
  free_layers (w->enc, w->hp.n_enc_layer);
  free_layers (w->dec, w->hp.n_dec_layer);
  if (w->proj_out != w->tok_embd)
    mm_tensor_free (w->proj_out);
  MmTensor **all[] = { &w->conv1_w, &w->conv1_b, &w->conv2_w, &w->conv2_b,
    &w->enc_pos, &w->enc_ln_w, &w->enc_ln_b, &w->tok_embd, &w->dec_pos,
    &w->dec_ln_w, &w->dec_ln_b, &w->mm_norm_pre, &w->mm_1_w, &w->mm_1_b,
    &w->mm_norm_mid, &w->mm_2_w, &w->mm_2_b, &w->mm_fc_w, &w->mm_fc_b,
    &w->stack_zeros
  };
  for (guint j = 0; j < G_N_ELEMENTS (all); j++)
    g_clear_pointer (all[j], mm_tensor_free);
  mm_mel_free (w->mel);
  if (w->tokenizer)
    mm_tokenizer_free (w->tokenizer);
  mm_whisper_special_clear (&w->sp);
  mm_engine_unref (w->engine);
  g_free (w->id);
  g_free (w);
}

static gboolean
read_hparams (MmWhisper * w, MmJson * cfg, GError ** error)
{
  MmWhisperHp *hp = &w->hp;
  GError *err = NULL;
  const gchar *type = mm_json_get_str (cfg, "model_type", "", &err);
  struct
  {
    gint *v;
    const gchar *key;
  } keys[] = {
    {&hp->d, "d_model"}, {&hp->vocab, "vocab_size"},
    {&hp->n_mels, "num_mel_bins"},
    {&hp->n_enc_layer, "encoder_layers"},
    {&hp->n_enc_head, "encoder_attention_heads"},
    {&hp->enc_ffn, "encoder_ffn_dim"},
    {&hp->n_audio_ctx, "max_source_positions"},
    {&hp->n_dec_layer, "decoder_layers"},
    {&hp->n_dec_head, "decoder_attention_heads"},
    {&hp->dec_ffn, "decoder_ffn_dim"},
    {&hp->n_text_ctx, "max_target_positions"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (keys) && !err; i++) {
    gint64 v = mm_json_get_int (cfg, keys[i].key, -1, &err);
    if (!err && (v <= 0 || v > (1 << 20)))
      g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISSING,
          "%s: %s missing or out of range", mm_json_file (cfg), keys[i].key);
    *keys[i].v = v;
  }
  hp->scale_embedding = err ? FALSE : mm_json_get_bool (cfg, "scale_embedding",
      FALSE, &err);
  const gchar *act = err ? NULL : mm_json_get_str (cfg, "activation_function",
      "gelu", &err);
  if (!err && g_strcmp0 (type, "whisper") != 0)
    g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_UNSUPPORTED,
        "%s: model_type \"%s\" is not whisper", mm_json_file (cfg), type);
  else if (!err && g_strcmp0 (act, "gelu") != 0)
    g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_UNSUPPORTED,
        "%s: activation_function \"%s\" is not supported (gelu)",
        mm_json_file (cfg), act);
  else if (!err && (hp->d % hp->n_enc_head || hp->d % hp->n_dec_head))
    g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_UNSUPPORTED,
        "%s: d_model %d is not a multiple of the head counts",
        mm_json_file (cfg), hp->d);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  hp->eps = MM_WHISPER_LN_EPS;
  hp->proj = MM_WHISPER_PROJ_NONE;
  hp->n_enc_out = hp->n_out = hp->n_audio_ctx;
  hp->out_dim = hp->d;
  return TRUE;
}

/* preprocessor_config.json (optional: Whisper's 30 s defaults). */
static gboolean
read_preprocessor (MmWhisper * w, const gchar * dir, MmMelParams * p,
    GError ** error)
{
  mm_mel_params_init (p, w->hp.n_mels);
  gchar *path = g_build_filename (dir, "preprocessor_config.json", NULL);
  gboolean ok = TRUE;
  if (g_file_test (path, G_FILE_TEST_EXISTS)) {
    MmJson *j = mm_json_new_from_file (path, 1 << 20, error);
    GError *err = NULL;
    if (j) {
      gint64 mels = mm_json_get_int (j, "feature_size", p->n_mels, &err);
      p->sampling_rate = mm_json_get_int (j, "sampling_rate", p->sampling_rate,
          err ? NULL : &err);
      p->hop = mm_json_get_int (j, "hop_length", p->hop, err ? NULL : &err);
      p->n_fft = mm_json_get_int (j, "n_fft", p->n_fft, err ? NULL : &err);
      gint64 chunk = mm_json_get_int (j, "chunk_length", 30,
          err ? NULL : &err);
      p->n_samples = mm_json_get_int (j, "n_samples",
          chunk * p->sampling_rate, err ? NULL : &err);
      if (!err && mels != w->hp.n_mels)
        g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISMATCH,
            "%s: feature_size %" G_GINT64_FORMAT " differs from the model's "
            "num_mel_bins %d", path, mels, w->hp.n_mels);
      if (err)
        g_propagate_error (error, err);
      ok = err == NULL;
      mm_json_free (j);
    } else {
      ok = FALSE;
    }
  }
  if (ok && (p->hop <= 0 || p->n_samples / MAX (p->hop, 1)
          != 2 * w->hp.n_audio_ctx)) {
    g_set_error (error, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISMATCH,
        "%s: a window of %d samples with hop %d does not give the %d frames "
        "the encoder takes (2 x max_source_positions)", path, p->n_samples,
        p->hop, 2 * w->hp.n_audio_ctx);
    ok = FALSE;
  }
  g_free (path);
  return ok;
}

/* Matrices that only mm_linear reads go to the GEMM's panel layout once
 * (cross-attention V projections are the A side of a GEMM, values_t, and
 * the token embedding is also gathered by row: those stay as they are;
 * quantised matrices are already in the quantised GEMM's panels).  Conv kernels become their 2-D
 * [out, in x k] form first. */
gboolean
mm_whisper_pack_weights (MmWhisper * w, GError ** error)
{
  GPtrArray *all = g_ptr_array_new ();
  MmTensor *convs[2] = { w->conv1_w, w->conv2_w };
  gboolean ok = TRUE;

  for (guint i = 0; i < 2; i++) {
    convs[i]->shape[1] *= convs[i]->shape[2];
    convs[i]->n_dims = 2;
    g_ptr_array_add (all, convs[i]);
  }
  for (gint s = 0; s < 2; s++) {
    MmWhisperLayer *layers = s ? w->dec : w->enc;
    gint n = layers == NULL ? 0 : s ? w->hp.n_dec_layer : w->hp.n_enc_layer;
    for (gint i = 0; i < n; i++) {
      MmWhisperLayer *l = &layers[i];
      MmTensor *m[] = { l->attn.q_w, l->attn.k_w, l->attn.v_w, l->attn.o_w,
        l->cross.q_w, l->cross.k_w, l->cross.o_w, l->fc1_w, l->fc2_w
      };
      for (guint j = 0; j < G_N_ELEMENTS (m); j++)
        if (m[j])
          g_ptr_array_add (all, m[j]);
    }
  }
  if (w->proj_out && w->proj_out != w->tok_embd)
    g_ptr_array_add (all, w->proj_out);
  MmTensor *conn[] = { w->mm_1_w, w->mm_2_w, w->mm_fc_w };
  for (guint j = 0; j < G_N_ELEMENTS (conn); j++)
    if (conn[j])
      g_ptr_array_add (all, conn[j]);
  for (guint i = 0; ok && i < all->len; i++) {
    MmTensor *t = all->pdata[i];
    if (mm_dtype_block_elems (t->dtype) == 1)
      ok = mm_gemm_pack_weight (w->engine, t, error);
  }
  g_ptr_array_unref (all);
  return ok;
}

static gboolean
load_weights (MmWhisper * w, MmHfModel * hf, gboolean decoder, GError ** error)
{
  const MmWhisperHp *hp = &w->hp;
  Loader ld = { hf, w->engine, "model.", NULL };
  if (!mm_hf_model_find_tensor (hf, "model.encoder.conv1.weight"))
    ld.prefix = "";
  gint64 d = hp->d;
  gint64 s_c1[3] = { d, hp->n_mels, 3 }, s_c2[3] = { d, d, 3 };
  gint64 s_ep[2] = { hp->n_audio_ctx, d }, s_dp[2] = { hp->n_text_ctx, d };
  gint64 s_emb[2] = { hp->vocab, d };
  w->conv1_w = load (&ld, "encoder.conv1.weight", 3, s_c1, TRUE, FALSE);
  w->conv1_b = load (&ld, "encoder.conv1.bias", 1, &d, FALSE, FALSE);
  w->conv2_w = load (&ld, "encoder.conv2.weight", 3, s_c2, TRUE, FALSE);
  w->conv2_b = load (&ld, "encoder.conv2.bias", 1, &d, FALSE, FALSE);
  w->enc_pos = load (&ld, "encoder.embed_positions.weight", 2, s_ep, FALSE,
      FALSE);
  w->enc = g_new0 (MmWhisperLayer, hp->n_enc_layer);
  for (gint i = 0; i < hp->n_enc_layer; i++)
    load_layer (&ld, &w->enc[i], "encoder", i, d, hp->enc_ffn, FALSE);
  w->enc_ln_w = load (&ld, "encoder.layer_norm.weight", 1, &d, FALSE, FALSE);
  w->enc_ln_b = load (&ld, "encoder.layer_norm.bias", 1, &d, FALSE, FALSE);
  if (!decoder)
    goto out;
  w->tok_embd = load (&ld, "decoder.embed_tokens.weight", 2, s_emb, TRUE,
      FALSE);
  w->dec_pos = load (&ld, "decoder.embed_positions.weight", 2, s_dp, FALSE,
      FALSE);
  w->dec = g_new0 (MmWhisperLayer, hp->n_dec_layer);
  for (gint i = 0; i < hp->n_dec_layer; i++)
    load_layer (&ld, &w->dec[i], "decoder", i, d, hp->dec_ffn, TRUE);
  w->dec_ln_w = load (&ld, "decoder.layer_norm.weight", 1, &d, FALSE, FALSE);
  w->dec_ln_b = load (&ld, "decoder.layer_norm.bias", 1, &d, FALSE, FALSE);
  /* proj_out sits outside "model."; absent when tied */
  const gchar *pre = ld.prefix;
  ld.prefix = "";
  w->proj_out = load (&ld, "proj_out.weight", 2, s_emb, TRUE, TRUE);
  ld.prefix = pre;
  /* Tied: the logits GEMV reads the whole table every token; on CPU-class
   * devices a second copy in the GEMM's packed layout is ~2x faster than
   * the row-gather layout the embedding lookup needs. */
  if (w->proj_out == NULL && mm_gemm_get_provider (w->engine) == MM_GEMM_OWN)
    w->proj_out = load (&ld, "decoder.embed_tokens.weight", 2, s_emb, TRUE,
        FALSE);
  if (w->proj_out == NULL)
    w->proj_out = w->tok_embd;
out:
  if (ld.error) {
    g_propagate_error (error, ld.error);
    return FALSE;
  }
  return mm_whisper_pack_weights (w, error);
}

static gboolean
load_tokenizer (MmWhisper * w, const gchar * dir, GError ** error)
{
  gchar *path = g_build_filename (dir, "tokenizer.json", NULL);
  gboolean ok = TRUE;
  if (g_file_test (path, G_FILE_TEST_EXISTS)) {
    w->tokenizer = mm_tokenizer_new_from_hf_json (path, error);
    ok = w->tokenizer != NULL;
  }
  g_free (path);
  return ok;
}

/* A GGUF audio projector file: encoder and connector only. */
static MmWhisper *
whisper_load_gguf (MmEngine * engine, const gchar * path, gboolean decoder,
    GError ** error)
{
  if (decoder) {
    g_set_error (error, MM_FORMAT_ERROR, MM_FORMAT_ERROR_UNSUPPORTED,
        "%s: a GGUF audio projector file has no Whisper decoder (it feeds "
        "an LLM); transcription needs a Hugging Face Whisper folder", path);
    return NULL;
  }
  MmWhisper *w = g_new0 (MmWhisper, 1);
  w->engine = mm_engine_ref (engine);
  w->id = g_path_get_basename (path);
  if (!mm_whisper_gguf_load (w, path, error)) {
    mm_whisper_free (w);
    return NULL;
  }
  return w;
}

static MmWhisper *
whisper_load (MmEngine * engine, const gchar * path, gboolean decoder,
    GError ** error)
{
  if (mm_whisper_is_gguf (path))
    return whisper_load_gguf (engine, path, decoder, error);
  MmHfModel *hf = mm_hf_model_open (path, error);
  if (hf == NULL)
    return NULL;
  MmWhisper *w = g_new0 (MmWhisper, 1);
  w->engine = mm_engine_ref (engine);
  w->id = g_path_get_basename (path);
  gboolean ok = TRUE;
  MmJson *cfg = mm_hf_model_config (hf);
  if (cfg == NULL || !g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISSING,
        "%s: not a Hugging Face Whisper folder (no config.json)", path);
    ok = FALSE;
  }
  MmMelParams mp;
  ok = ok && read_hparams (w, cfg, error)
      && read_preprocessor (w, path, &mp, error);
  if (ok) {
    w->mel = mm_mel_new (engine, &mp, error);
    ok = w->mel != NULL;
  }
  ok = ok && load_weights (w, hf, decoder, error);
  if (decoder)
    ok = ok && load_tokenizer (w, path, error)
        && mm_whisper_special_load (w, path, error);
  else
    w->hp.n_dec_layer = 0;      /* nothing loaded, nothing to free */
  mm_hf_model_free (hf);
  if (!ok) {
    mm_whisper_free (w);
    return NULL;
  }
  return w;
}

MmWhisper *
mm_whisper_load (MmEngine * engine, const gchar * path, GError ** error)
{
  return whisper_load (engine, path, TRUE, error);
}

MmWhisper *
mm_whisper_load_encoder (MmEngine * engine, const gchar * path, GError ** error)
{
  return whisper_load (engine, path, FALSE, error);
}

const gchar *
mm_whisper_id (MmWhisper * w)
{
  return w->id;
}

MmEngine *
mm_whisper_engine (MmWhisper * w)
{
  return w->engine;
}

gint
mm_whisper_sampling_rate (MmWhisper * w)
{
  return mm_mel_params (w->mel)->sampling_rate;
}

gint
mm_whisper_n_samples (MmWhisper * w)
{
  return mm_mel_params (w->mel)->n_samples;
}

gint
mm_whisper_n_audio_tokens (MmWhisper * w)
{
  return w->hp.n_audio_ctx;
}

gint
mm_whisper_d_model (MmWhisper * w)
{
  return w->hp.d;
}

MmMel *
mm_whisper_mel (MmWhisper * w)
{
  return w->mel;
}

MmWhisperProj
mm_whisper_projector (MmWhisper * w)
{
  return w->hp.proj;
}

const gchar *
mm_whisper_projector_name (MmWhisperProj proj)
{
  switch (proj) {
    case MM_WHISPER_PROJ_ULTRAVOX:
      return "ultravox";
    case MM_WHISPER_PROJ_VOXTRAL:
      return "voxtral";
    case MM_WHISPER_PROJ_QWEN2A:
      return "qwen2a";
    case MM_WHISPER_PROJ_NONE:
    default:
      return "none";
  }
}

gint
mm_whisper_n_output_tokens (MmWhisper * w)
{
  return w->hp.n_out;
}

gint
mm_whisper_output_dim (MmWhisper * w)
{
  return w->hp.out_dim;
}

gint
mm_whisper_vocab_size (MmWhisper * w)
{
  return w->hp.vocab;
}

/* ---- decoder state ---- */

MmWhisperDecoder *
mm_whisper_decoder_new (MmWhisper * w, GError ** error)
{
  const MmWhisperHp *hp = &w->hp;
  if (w->tok_embd == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: loaded without its decoder", w->id);
    return NULL;
  }
  MmWhisperDecoder *d = g_new0 (MmWhisperDecoder, 1);
  d->w = w;
  d->graph = mm_graph_new (w->engine);
  d->k_cache = g_new0 (MmTensor *, hp->n_dec_layer);
  d->vt_cache = g_new0 (MmTensor *, hp->n_dec_layer);
  d->cross_k = g_new0 (MmTensor *, hp->n_dec_layer);
  d->cross_vt = g_new0 (MmTensor *, hp->n_dec_layer);
  gint64 s_self[2] = { hp->n_text_ctx, hp->d };
  gint64 s_self_t[2] = { hp->d, hp->n_text_ctx };
  gint64 s_cross[2] = { hp->n_audio_ctx, hp->d };
  gint64 s_cross_t[2] = { hp->d, hp->n_audio_ctx };
  gboolean ok = TRUE;
  for (gint i = 0; ok && i < hp->n_dec_layer; i++) {
    d->k_cache[i] = mm_tensor_new (w->engine, MM_DTYPE_F32, 2, s_self,
        "whisper KV cache", error);
    d->vt_cache[i] = d->k_cache[i] ? mm_tensor_new (w->engine, MM_DTYPE_F32,
        2, s_self_t, "whisper KV cache", error) : NULL;
    d->cross_k[i] = d->vt_cache[i] ? mm_tensor_new (w->engine, MM_DTYPE_F32,
        2, s_cross, "whisper cross-attention keys", error) : NULL;
    d->cross_vt[i] = d->cross_k[i] ? mm_tensor_new (w->engine, MM_DTYPE_F32,
        2, s_cross_t, "whisper cross-attention values", error) : NULL;
    ok = d->cross_vt[i] != NULL;
  }
  if (!ok) {
    mm_whisper_decoder_free (d);
    return NULL;
  }
  return d;
}

void
mm_whisper_decoder_free (MmWhisperDecoder * d)
{
  if (d == NULL)
    return;
  for (gint i = 0; i < d->w->hp.n_dec_layer; i++) {
    mm_tensor_free (d->k_cache[i]);
    mm_tensor_free (d->vt_cache[i]);
    mm_tensor_free (d->cross_k[i]);
    mm_tensor_free (d->cross_vt[i]);
  }
  g_free (d->k_cache);
  g_free (d->vt_cache);
  g_free (d->cross_k);
  g_free (d->cross_vt);
  mm_graph_free (d->graph);
  g_free (d);
}
