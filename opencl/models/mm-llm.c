/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Llama-family decoders: Llama, SmolLM2, Qwen2.  RMSNorm, RoPE, grouped-
 * query attention with a KV cache, SwiGLU, tied or untied output.
 */
#include "mm-llm-private.h"
#include "mm-llm-load.h"
#include "mm-tokenizer.h"
#include "mm-sampler.h"

#include <math.h>
#include <string.h>

struct _MmLlm
{
  MmEngine *engine;
  MmGraph *graph;
  MmLlmHp hp;
  MmLlmLayer *layers;
  MmTensor *tok_embd, *out_norm, *output;       /* output may be tok_embd */
  MmTensor **k_cache, **v_cache;        /* per layer, mm_kv_store's layout */
  /* Runs of layers that decode in one launch (CPU devices): run[i]
   * layers from layer i have their weights in one buffer, run_stride[i]
   * bytes apart, and their caches in one buffer each, kv_stride bytes
   * apart; run[i] is 0 inside a run, 1 for a layer on its own. */
  gint *run;
  gsize *run_stride, kv_stride;
  gint n_ctx;
  GArray *cache_ids;            /* gint64 key per cached position: token
                                 * id, or < 0 for a media row */
  MmLlmText *text;              /* tokenizer, template, special tokens */
  gchar *id;
};

/* ---- graph ---- */

/* The attention input projections of RMS-normalised x, stacked:
 * [n, (n_head + 2 n_kv_head) head_dim]. */
static MmTensor *
llm_qkv (MmGraph * g, const MmLlmLayer * l, MmTensor * x, float eps)
{
  if (l->wqkv) {
    MmLinearFuse pre = {.norm_w = l->attn_norm,.eps = eps };
    return mm_linear_fused (g, x, l->wqkv, l->bqkv, &pre);
  }
  MmTensor *h = mm_rms_norm (g, x, l->attn_norm, eps);
  return mm_concat (g, mm_concat (g, mm_linear (g, h, l->wq, l->bq),
          mm_linear (g, h, l->wk, l->bk), TRUE), mm_linear (g, h, l->wv,
          l->bv), TRUE);
}

/* x + attention (rms_norm (x)), through the layer's KV cache */
static MmTensor *
llm_attention (MmLlm * llm, MmGraph * g, const MmLlmLayer * l, gint il,
    MmTensor * x, gint pos0)
{
  const MmLlmHp *hp = &llm->hp;
  gint n = mm_tensor_rows (x);
  MmTensor *q = mm_rope_qkv_store (g, llm_qkv (g, l, x, hp->eps), hp->n_head,
      pos0, hp->n_rot, hp->rope_base, hp->rope_freq_scale, hp->rope_mode,
      llm->k_cache[il], llm->v_cache[il]);
  MmTensor *a = mm_attention_cached (g, q, llm->k_cache[il],
      llm->v_cache[il], pos0 + n, 1.0f / sqrtf (hp->head_dim), pos0);
  MmLinearFuse res = {.residual = x };
  return mm_linear_fused (g, a, l->wo, NULL, &res);
}

/* x + ffn (rms_norm (x)), SwiGLU */
static MmTensor *
llm_ffn (MmGraph * g, const MmLlmLayer * l, MmTensor * x, float eps)
{
  MmTensor *h;
  if (l->w_gate_up) {
    MmLinearFuse pre = {.norm_w = l->ffn_norm,.eps = eps,.swiglu = TRUE };
    h = mm_linear_fused (g, x, l->w_gate_up, NULL, &pre);
  } else {
    MmTensor *n = mm_rms_norm (g, x, l->ffn_norm, eps);
    h = mm_swiglu (g, mm_linear (g, n, l->w_gate, NULL), mm_linear (g, n,
            l->w_up, NULL));
  }
  MmLinearFuse res = {.residual = x };
  return mm_linear_fused (g, h, l->w_down, NULL, &res);
}

/* Layers [il, il + n) */
static MmTensor *
llm_blocks (MmLlm * llm, MmGraph * g, gint il, gint n, MmTensor * x,
    gint pos0)
{
  const MmLlmLayer *l = &llm->layers[il];
  const MmLlmHp *hp = &llm->hp;
  if (mm_tensor_rows (x) == 1 && l->wqkv && l->w_gate_up) {
    /* decode: the whole layer (or run of layers) in one kernel where the
     * device takes it */
    MmDecoderLayer dl = {.attn_norm = l->attn_norm,.wqkv = l->wqkv,
      .bqkv = l->bqkv,.wo = l->wo,.ffn_norm = l->ffn_norm,
      .w_gate_up = l->w_gate_up,.w_down = l->w_down,.n_head = hp->n_head,
      .eps = hp->eps,.n_rot = hp->n_rot,.rope_base = hp->rope_base,
      .rope_freq_scale = hp->rope_freq_scale,.rope_mode = hp->rope_mode,
      .scale = 1.0f / sqrtf (hp->head_dim),.n_layers = n,
      .layer_stride = n > 1 ? llm->run_stride[il] : 0,
      .kv_stride = llm->kv_stride
    };
    MmTensor *y = mm_decoder_layer_step (g, x, &dl, llm->k_cache[il],
        llm->v_cache[il], pos0);
    if (y)
      return y;
  }
  for (gint i = il; i < il + n; i++) {
    x = llm_attention (llm, g, &llm->layers[i], i, x, pos0);
    x = llm_ffn (g, &llm->layers[i], x, llm->hp.eps);
  }
  return x;
}

/* Embeddings of a batch: token rows from the table, media rows copied from
 * the encoders' buffers (device) or uploaded (host). */
static MmTensor *
llm_embed (MmLlm * llm, MmGraph * g, const MmLlmBatch * b)
{
  gint d = llm->hp.d;
  MmTensor *x = mm_graph_tensor_2d (g, b->n, d);
  gint media = 0;
  for (gint i = 0; i < b->n && mm_graph_ok (g);) {
    gint j = i;
    if (b->ids[i] >= 0) {
      while (j < b->n && b->ids[j] >= 0)
        j++;
      mm_copy_rows_into (g, x, i, mm_get_rows (g, llm->tok_embd, b->ids + i,
              j - i));
    } else {
      while (j < b->n && b->ids[j] == b->ids[i])
        j++;
      if (media >= b->n_media) {
        mm_graph_failf (g, "llm: prompt has more media spans than media");
        break;
      }
      const MmLlmMedia *m = &b->media[media++];
      if (m->dim != d || m->n_tokens != j - i) {
        mm_graph_failf (g, "llm: media of %d x %d tokens does not fit a span "
            "of %d positions of the LLM's hidden size %d", m->n_tokens,
            m->dim, j - i, d);
        break;
      }
      gint64 shape[2] = { m->n_tokens, m->dim };
      MmTensor *src;
      if (m->buf) {
        MmTensor view = { 0 };
        view.buf = m->buf;
        view.offset = m->offset;
        view.dtype = MM_DTYPE_F32;
        src = mm_graph_keep (g, mm_tensor_view (&view, 2, shape));
      } else {
        src = mm_graph_input_f32 (g, 2, shape, m->host);
      }
      mm_copy_rows_into (g, x, i, src);
    }
    i = j;
  }
  return x;
}

float *
mm_llm_forward (MmLlm * llm, const MmLlmBatch * batch, gint pos0,
    gboolean all_logits, GError ** error)
{
  if (batch->n <= 0 || pos0 < 0 || pos0 + batch->n > llm->n_ctx) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: %d positions at %d exceed the context of %d tokens", llm->id,
        batch->n, pos0, llm->n_ctx);
    return NULL;
  }
  MmGraph *g = llm->graph;
  mm_graph_reset (g);
  MmTensor *x = llm_embed (llm, g, batch);
  for (gint il = 0, n; il < llm->hp.n_layer; il += n) {
    n = batch->n == 1 && llm->run ? llm->run[il] : 1;
    x = llm_blocks (llm, g, il, n, x, pos0);
  }
  if (!all_logits)
    x = mm_slice_rows (g, x, batch->n - 1, 1);
  MmLinearFuse pre = {.norm_w = llm->out_norm,.eps = llm->hp.eps };
  MmTensor *logits = mm_linear_fused (g, x, llm->output, NULL, &pre);
  if (!mm_graph_finish (g, error))
    return NULL;
  return mm_tensor_dup_f32 (llm->engine, logits, error);
}

void
mm_llm_truncate (MmLlm * llm, gint pos)
{
  if (pos < (gint) llm->cache_ids->len)
    g_array_set_size (llm->cache_ids, MAX (pos, 0));
}

const MmLlmHp *
mm_llm_hparams (MmLlm * llm)
{
  return &llm->hp;
}

static gsize
nbytes0 (const MmTensor * t)
{
  return t ? mm_tensor_nbytes (t) : 0;
}

gsize
mm_llm_decode_weight_bytes (MmLlm * llm)
{
  gsize n = nbytes0 (llm->out_norm) + nbytes0 (llm->output);
  for (gint i = 0; i < llm->hp.n_layer; i++) {
    const MmLlmLayer *l = &llm->layers[i];
    const MmTensor *t[] = { l->attn_norm, l->wqkv, l->bqkv, l->wq, l->wk,
      l->wv, l->wo, l->bq, l->bk, l->bv, l->ffn_norm, l->w_gate_up,
      l->w_gate, l->w_up, l->w_down
    };
    for (guint j = 0; j < G_N_ELEMENTS (t); j++)
      n += nbytes0 (t[j]);
  }
  return n;
}

/* ---- loading ---- */

static void
llm_free_weights (MmLlm * llm)
{
  for (gint i = 0; llm->layers && i < llm->hp.n_layer; i++) {
    MmLlmLayer *l = &llm->layers[i];
    MmTensor **all[] = { &l->attn_norm, &l->wqkv, &l->bqkv, &l->wq, &l->wk,
      &l->wv, &l->wo, &l->bq, &l->bk, &l->bv, &l->ffn_norm, &l->w_gate_up,
      &l->w_gate, &l->w_up, &l->w_down
    };
    for (guint j = 0; j < G_N_ELEMENTS (all); j++)
      g_clear_pointer (all[j], mm_tensor_free);
  }
  g_clear_pointer (&llm->layers, g_free);
  if (llm->output != llm->tok_embd)
    mm_tensor_free (llm->output);
  llm->output = NULL;
  g_clear_pointer (&llm->tok_embd, mm_tensor_free);
  g_clear_pointer (&llm->out_norm, mm_tensor_free);
  for (gint i = 0; llm->k_cache && i < llm->hp.n_layer; i++) {
    mm_tensor_free (llm->k_cache[i]);
    mm_tensor_free (llm->v_cache[i]);
  }
  g_clear_pointer (&llm->k_cache, g_free);
  g_clear_pointer (&llm->v_cache, g_free);
  g_clear_pointer (&llm->run, g_free);
  g_clear_pointer (&llm->run_stride, g_free);
}

void
mm_llm_free (MmLlm * llm)
{
  if (llm == NULL)
    return;
  llm_free_weights (llm);
  g_clear_pointer (&llm->text, mm_llm_text_free);
  if (llm->cache_ids)
    g_array_unref (llm->cache_ids);
  mm_graph_free (llm->graph);
  mm_engine_unref (llm->engine);
  g_free (llm->id);
  g_free (llm);
}

/* Tied embeddings.  Quantised tables are panels, which both the row
 * gather and the GEMM read: one copy serves both.  An F32/F16 table is
 * gathered by row as stored, while the GEMM streams its own panel layout
 * (mm_gemm_pack_weight) several times faster: the output projection gets
 * a packed second copy, unless the device's GEMM reads the table as is. */
static gboolean
llm_tie_output (MmLlm * llm, MmLlmSource * src, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 s_emb[2] = { hp->vocab, hp->d };
  if (llm->tok_embd->planar
      || mm_gemm_get_provider (llm->engine) != MM_GEMM_OWN) {
    llm->output = llm->tok_embd;
    return TRUE;
  }
  llm->output = mm_llm_source_tensor (src, llm->engine, MM_LLM_T_TOK_EMBD,
      -1, 2, s_emb, FALSE, error);
  return llm->output && mm_gemm_pack_weight (llm->engine, llm->output, error);
}

static gboolean
llm_load_layer (MmLlm * llm, MmLlmSource * src, gint i, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  MmLlmLayer *l = &llm->layers[i];
  gint64 d = hp->d, qd = (gint64) hp->n_head * hp->head_dim;
  gint64 kvd = (gint64) hp->n_kv_head * hp->head_dim;
  gint64 s_q[2] = { qd, d }, s_kv[2] = { kvd, d }, s_o[2] = { d, qd };
  gint64 s_g[2] = { hp->ffn, d }, s_dn[2] = { d, hp->ffn }, s_d = d;
  /* stacked projections first */
  const MmLlmTensorKind k_qkv[3] = { MM_LLM_T_Q, MM_LLM_T_K, MM_LLM_T_V };
  const MmLlmTensorKind k_b[3] = { MM_LLM_T_Q_BIAS, MM_LLM_T_K_BIAS,
    MM_LLM_T_V_BIAS
  };
  const MmLlmTensorKind k_gu[2] = { MM_LLM_T_GATE, MM_LLM_T_UP };
  const gint64 s_qkv[3][2] = { {qd, d}, {kvd, d}, {kvd, d} };
  const gint64 s_b[3][2] = { {qd, 0}, {kvd, 0}, {kvd, 0} };
  const gint64 s_gu[2][2] = { {hp->ffn, d}, {hp->ffn, d} };
  GError *err = NULL;
  l->wqkv = mm_llm_source_tensor_rows (src, llm->engine, k_qkv, 3, i, 2,
      s_qkv, FALSE, &err);
  if (l->wqkv)
    l->bqkv = mm_llm_source_tensor_rows (src, llm->engine, k_b, 3, i, 1, s_b,
        TRUE, &err);
  if (!err)
    l->w_gate_up = mm_llm_source_tensor_rows (src, llm->engine, k_gu, 2, i,
        2, s_gu, FALSE, &err);
  struct
  {
    MmTensor **t;
    MmLlmTensorKind kind;
    gint n_dims;
    const gint64 *shape;
    gboolean optional, stacked;
  } want[] = {
    {&l->attn_norm, MM_LLM_T_ATTN_NORM, 1, &s_d, FALSE, FALSE},
    {&l->wq, MM_LLM_T_Q, 2, s_q, FALSE, l->wqkv != NULL},
    {&l->wk, MM_LLM_T_K, 2, s_kv, FALSE, l->wqkv != NULL},
    {&l->wv, MM_LLM_T_V, 2, s_kv, FALSE, l->wqkv != NULL},
    {&l->wo, MM_LLM_T_O, 2, s_o, FALSE, FALSE},
    {&l->bq, MM_LLM_T_Q_BIAS, 1, &qd, TRUE, l->wqkv != NULL},
    {&l->bk, MM_LLM_T_K_BIAS, 1, &kvd, TRUE, l->wqkv != NULL},
    {&l->bv, MM_LLM_T_V_BIAS, 1, &kvd, TRUE, l->wqkv != NULL},
    {&l->ffn_norm, MM_LLM_T_FFN_NORM, 1, &s_d, FALSE, FALSE},
    {&l->w_gate, MM_LLM_T_GATE, 2, s_g, FALSE, l->w_gate_up != NULL},
    {&l->w_up, MM_LLM_T_UP, 2, s_g, FALSE, l->w_gate_up != NULL},
    {&l->w_down, MM_LLM_T_DOWN, 2, s_dn, FALSE, FALSE},
  };
  for (guint j = 0; !err && j < G_N_ELEMENTS (want); j++)
    if (!want[j].stacked)
      *want[j].t = mm_llm_source_tensor (src, llm->engine, want[j].kind, i,
          want[j].n_dims, want[j].shape, want[j].optional, &err);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  return TRUE;
}

static gboolean
llm_load_weights (MmLlm * llm, MmLlmSource * src, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 s_emb[2] = { hp->vocab, hp->d }, s_d = hp->d;
  llm->tok_embd = mm_llm_source_tensor (src, llm->engine, MM_LLM_T_TOK_EMBD,
      -1, 2, s_emb, FALSE, error);
  llm->out_norm = mm_llm_source_tensor (src, llm->engine, MM_LLM_T_OUT_NORM,
      -1, 1, &s_d, FALSE, error);
  if (!llm->tok_embd || !llm->out_norm)
    return FALSE;
  GError *err = NULL;
  llm->output = mm_llm_source_tensor (src, llm->engine, MM_LLM_T_OUTPUT, -1, 2,
      s_emb, TRUE, &err);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  if (llm->output == NULL && !llm_tie_output (llm, src, error))
    return FALSE;
  llm->layers = g_new0 (MmLlmLayer, hp->n_layer);
  for (gint i = 0; i < hp->n_layer; i++)
    if (!llm_load_layer (llm, src, i, error))
      return FALSE;
  return TRUE;
}

/* ---- runs of layers for decode (CPU devices) ----
 * Decode on a CPU device runs a layer in one launch; a run of layers in
 * one launch saves the ~25 us of idle cores between launches (30 layers
 * of SmolLM2-135M: ~0.8 ms a token).  The kernel reaches layer i's
 * weights at a fixed stride from the first's, so a run's weights are
 * copied into one buffer, layer after layer (the order decode reads
 * them), and its caches get one buffer each.  Runs hold layers of the
 * same types and stay under LLM_RUN_MAX_BYTES, so the copy costs at most
 * that much memory more while it lasts.
 *
 * Not all layers in one launch, though: a work-item that waits too long
 * for its partner (CLAIM_SPIN_CYCLES, common.cl: the partner's core was
 * taken) leaves the launch, and the rest of the launch runs on fewer
 * cores; it is back at the next launch.  Runs of ~40 MB of weights (2-4
 * ms of decode; 3 launches a token for SmolLM2-135M Q8_0 instead of 1)
 * measured 12.5 ms/token against 14.1 (medians of 10 alternating rounds
 * on the shared 2-core VM, other VMs busy; faster in 8 of the 10), for
 * ~25 us a launch more when the machine is quiet. */
#define LLM_RUN_MAX_BYTES ((gsize) 40 << 20)

#define ALIGN64(n) (((n) + 63) & ~(gsize) 63)

/* The parts of a layer in a run, in the order they lie there */
static guint
layer_parts (MmLlmLayer * l, MmTensor ** p[7])
{
  p[0] = &l->attn_norm;
  p[1] = &l->wqkv;
  p[2] = &l->wo;
  p[3] = &l->ffn_norm;
  p[4] = &l->w_gate_up;
  p[5] = &l->w_down;
  p[6] = &l->bqkv;
  return l->bqkv ? 7 : 6;
}

/* Bytes of a layer in a run (each part at a multiple of 64); 0 when the
 * layer cannot be in a run */
static gsize
layer_run_bytes (MmLlmLayer * l)
{
  if (!l->wqkv || !l->w_gate_up || !l->wo->planar || !l->w_down->planar
      || !l->wqkv->planar || !l->w_gate_up->planar)
    return 0;
  MmTensor **p[7];
  guint n = layer_parts (l, p);
  gsize bytes = 0;
  for (guint j = 0; j < n; j++)
    bytes += ALIGN64 (mm_tensor_span (*p[j]));
  return bytes;
}

static gboolean
layers_alike (MmLlmLayer * a, MmLlmLayer * b)
{
  return a->wqkv->dtype == b->wqkv->dtype && a->wo->dtype == b->wo->dtype
      && a->w_gate_up->dtype == b->w_gate_up->dtype
      && a->w_down->dtype == b->w_down->dtype
      && (a->bqkv != NULL) == (b->bqkv != NULL);
}

/* Moves layers [i0, i0 + n) into one buffer, @stride bytes each */
static gboolean
llm_move_run (MmLlm * llm, gint i0, gint n, gsize stride, GError ** error)
{
  cl_mem buf = mm_engine_alloc (llm->engine, stride * n, "LLM layers", error);
  if (buf == NULL)
    return FALSE;
  gboolean ok = TRUE;
  for (gint i = i0; i < i0 + n && ok; i++) {
    MmTensor **p[7];
    guint np = layer_parts (&llm->layers[i], p);
    gsize at = (i - i0) * stride;
    for (guint j = 0; j < np && ok; j++) {
      MmTensor *t = *p[j];
      gsize span = mm_tensor_span (t);
      ok = mm_engine_copy (llm->engine, t->buf, t->offset, buf, at, span,
          error);
      if (ok) {
        *p[j] = mm_tensor_new_in (t, buf, at);
        mm_tensor_free (t);
      }
      at += ALIGN64 (span);
    }
  }
  clReleaseMemObject (buf);
  if (!ok)
    g_prefix_error (error, "%s: copying layers %d-%d into one buffer: ",
        llm->id, i0, i0 + n - 1);
  return ok;
}

/* Bytes of one layer's K (or V) cache, rounded up to 64 */
static gsize
llm_cache_bytes (MmLlm * llm)
{
  const MmLlmHp *hp = &llm->hp;
  return ALIGN64 ((gsize) hp->n_kv_head * llm->n_ctx * hp->head_dim *
      sizeof (float));
}

static gboolean
llm_make_runs (MmLlm * llm, GError ** error)
{
  gint nl = llm->hp.n_layer;
  if (nl <= 0)
    return TRUE;
  llm->run = g_new (gint, nl);
  llm->run_stride = g_new0 (gsize, nl);
  for (gint i = 0; i < nl; i++)
    llm->run[i] = 1;
  if (mm_engine_device_class (llm->engine) != MM_DEVICE_CLASS_CPU)
    return TRUE;
  /* a run's weights and each of its caches are one allocation */
  gsize max_alloc = mm_engine_max_alloc (llm->engine);
  gsize wcap = MIN (LLM_RUN_MAX_BYTES, max_alloc), kvs = llm_cache_bytes (llm);
  for (gint i = 0, n; i < nl; i += n) {
    gsize stride = layer_run_bytes (&llm->layers[i]);
    n = 1;
    while (stride > 0 && i + n < nl && stride * (n + 1) <= wcap
        && kvs * (n + 1) <= max_alloc
        && layer_run_bytes (&llm->layers[i + n]) == stride
        && layers_alike (&llm->layers[i], &llm->layers[i + n]))
      n++;
    if (n == 1)
      continue;
    if (!llm_move_run (llm, i, n, stride, error))
      return FALSE;
    llm->run[i] = n;
    llm->run_stride[i] = stride;
    for (gint j = i + 1; j < i + n; j++)
      llm->run[j] = 0;
  }
  return TRUE;
}

/* Caches: one buffer each for K and V of a run of layers, kv_stride
 * bytes a layer */
static gboolean
llm_alloc_cache (MmLlm * llm, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 sk[3] = { hp->n_kv_head, llm->n_ctx, hp->head_dim };
  gint64 sv[3] = { hp->n_kv_head, hp->head_dim, llm->n_ctx };
  llm->k_cache = g_new0 (MmTensor *, hp->n_layer);
  llm->v_cache = g_new0 (MmTensor *, hp->n_layer);
  MmTensor kt = { 0 }, vt = { 0 };
  kt.dtype = vt.dtype = MM_DTYPE_F32;
  kt.n_dims = vt.n_dims = 3;
  memcpy (kt.shape, sk, sizeof sk);
  memcpy (vt.shape, sv, sizeof sv);
  llm->kv_stride = llm_cache_bytes (llm);
  for (gint i = 0, n; i < hp->n_layer; i += n) {
    n = MAX (llm->run[i], 1);
    for (gint c = 0; c < 2; c++) {
      MmTensor **dst = c ? llm->v_cache : llm->k_cache;
      cl_mem buf = mm_engine_alloc_sparse (llm->engine, llm->kv_stride * n,
          "KV cache", error);
      if (buf == NULL)
        return FALSE;
      for (gint j = 0; j < n; j++)
        dst[i + j] = mm_tensor_new_in (c ? &vt : &kt, buf, j * llm->kv_stride);
      clReleaseMemObject (buf);
    }
  }
  return TRUE;
}

static MmLlm *
llm_load (MmEngine * engine, const gchar * path, gboolean with_text,
    GError ** error)
{
  MmLlmSource *src = mm_llm_source_open (path, error);
  if (src == NULL)
    return NULL;
  MmLlm *llm = g_new0 (MmLlm, 1);
  llm->engine = mm_engine_ref (engine);
  llm->graph = mm_graph_new (engine);
  llm->cache_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  gchar *base = g_path_get_basename (path);
  llm->id = g_strdup (base);
  g_free (base);
  gboolean ok = mm_llm_source_hparams (src, &llm->hp, error);
  if (ok) {
    llm->n_ctx = MIN (llm->hp.n_ctx_train, MM_LLM_MAX_CONTEXT);
    ok = llm_load_weights (llm, src, error) && llm_make_runs (llm, error)
        && llm_alloc_cache (llm, error);
  }
  if (ok && with_text) {
    llm->text = mm_llm_text_new (src, llm->hp.vocab, error);
    ok = llm->text != NULL;
  }
  mm_llm_source_free (src);
  if (!ok) {
    mm_llm_free (llm);
    return NULL;
  }
  return llm;
}

MmLlm *
mm_llm_load (MmEngine * engine, const gchar * path, GError ** error)
{
  return llm_load (engine, path, TRUE, error);
}

MmLlm *
mm_llm_load_weights_only (MmEngine * engine, const gchar * path,
    GError ** error)
{
  return llm_load (engine, path, FALSE, error);
}

gint
mm_llm_hidden_size (MmLlm * llm)
{
  return llm->hp.d;
}

gint
mm_llm_context_size (MmLlm * llm)
{
  return llm->n_ctx;
}

const gchar *
mm_llm_id (MmLlm * llm)
{
  return llm->id;
}

/* ---- generation ---- */

void
mm_llm_sampling_init (MmLlmSampling * s)
{
  memset (s, 0, sizeof (*s));
  s->max_tokens = 64;
  s->top_p = 1.0f;
  s->repetition_penalty = 1.0f;
}

/* KV-cache key of a prompt position: the token id, or for media the
 * media id and row, so unchanged media keep their cache entries. */
static gint64
position_key (const gint32 * ids, gint i, const MmLlmRequest * req,
    gint media, gint row)
{
  if (ids[i] >= 0)
    return ids[i];
  return -1 - (gint64) (((req->media[media].id & 0xffffffffffull) << 20)
      | (guint) row);
}

static GArray *
prompt_keys (const GArray * ids, const MmLlmRequest * req)
{
  GArray *keys = g_array_sized_new (FALSE, FALSE, sizeof (gint64), ids->len);
  const gint32 *p = (const gint32 *) ids->data;
  gint media = -1, row = 0;
  for (guint i = 0; i < ids->len; i++) {
    if (p[i] < 0) {
      if (i == 0 || p[i - 1] != p[i]) {
        media++;
        row = 0;
      }
      row++;
    }
    gint64 k = position_key (p, i, req, MAX (media, 0), row - 1);
    g_array_append_val (keys, k);
  }
  return keys;
}

/* Positions of the prompt whose KV entries can be reused: the common
 * prefix with what the cache holds, never inside a media span (a span is
 * fed whole) and leaving at least one position to compute. */
static gint
reusable_prefix (MmLlm * llm, GArray * keys, const gint32 * ids)
{
  guint n = 0;
  const gint64 *have = (const gint64 *) llm->cache_ids->data;
  const gint64 *want = (const gint64 *) keys->data;
  while (n < llm->cache_ids->len && n < keys->len && have[n] == want[n])
    n++;
  if (n >= keys->len)
    n = keys->len - 1;
  while (n > 0 && ids[n] < 0 && ids[n - 1] == ids[n])
    n--;                        /* back to the start of the span */
  return n;
}

/* Count of media spans before position @pos. */
static gint
media_before (const gint32 * ids, gint pos)
{
  gint n = 0;
  for (gint i = 0; i < pos; i++)
    if (ids[i] < 0 && (i == 0 || ids[i - 1] != ids[i]))
      n++;
  return n;
}

gint
mm_llm_count_prompt_tokens (MmLlm * llm, const MmLlmRequest * req,
    GError ** error)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint n = mm_llm_text_prompt (llm->text, req, ids, error) ? (gint) ids->len
      : -1;
  g_array_unref (ids);
  return n;
}

static float *
prefill (MmLlm * llm, const MmLlmRequest * req, GArray * ids, GArray * keys,
    MmLlmStats * st, GError ** error)
{
  const gint32 *p = (const gint32 *) ids->data;
  gint reuse = reusable_prefix (llm, keys, p);
  gint m0 = media_before (p, reuse);
  MmLlmBatch b = { p + reuse, ids->len - reuse, req->media + m0,
    req->n_media - m0
  };
  g_array_set_size (llm->cache_ids, reuse);
  gint64 t0 = g_get_monotonic_time ();
  float *logits = mm_llm_forward (llm, &b, reuse, FALSE, error);
  st->prefill_ms = (g_get_monotonic_time () - t0) / 1000.0;
  st->reused_tokens = reuse;
  if (logits)
    g_array_append_vals (llm->cache_ids, (gint64 *) keys->data + reuse,
        ids->len - reuse);
  return logits;
}

gchar *
mm_llm_generate (MmLlm * llm, const MmLlmRequest * req, MmLlmTokenFunc func,
    gpointer user_data, MmLlmStats * stats, GError ** error)
{
  return mm_llm_generate_full (llm, req, func, user_data, stats, NULL, error);
}

gboolean
mm_llm_prompt_ids (MmLlm * llm, const MmLlmRequest * req, GArray * ids,
    GError ** error)
{
  return mm_llm_text_prompt (llm->text, req, ids, error);
}

static MmSampler *
make_sampler (const MmLlmRequest * req, GArray * prompt, GError ** error)
{
  MmSamplerParams p;
  mm_sampler_params_init (&p);
  p.temperature = req->sampling.temperature;
  p.top_k = req->sampling.top_k;
  p.top_p = req->sampling.top_p > 0 ? req->sampling.top_p : 1.0f;
  p.repetition_penalty = req->sampling.repetition_penalty > 0 ?
      req->sampling.repetition_penalty : 1.0f;
  p.seed = req->sampling.seed;
  MmSampler *s = mm_sampler_new (&p, error);
  for (guint i = 0; s && i < prompt->len; i++) {
    gint32 id = g_array_index (prompt, gint32, i);
    if (id >= 0)                /* media positions have no id */
      mm_sampler_add_history (s, &id, 1);
  }
  return s;
}

static MmStopper *
make_stopper (const MmLlmRequest * req)
{
  MmStopper *st = mm_stopper_new (MAX (req->sampling.max_tokens, 0));
  for (gint i = 0; req->sampling.stop && req->sampling.stop[i]; i++)
    mm_stopper_add_string (st, req->sampling.stop[i]);
  return st;
}

gchar *
mm_llm_generate_full (MmLlm * llm, const MmLlmRequest * req,
    MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
    GArray * out_ids, GError ** error)
{
  MmLlmStats st = { 0 };
  GError *err = NULL;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (!mm_llm_text_prompt (llm->text, req, ids, error)) {
    g_array_unref (ids);
    return NULL;
  }
  st.prompt_tokens = ids->len;
  if ((gint) ids->len >= llm->n_ctx) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: the prompt takes %u tokens, the context holds %d", llm->id,
        ids->len, llm->n_ctx);
    g_array_unref (ids);
    return NULL;
  }
  MmSampler *sampler = make_sampler (req, ids, error);
  if (sampler == NULL) {
    g_array_unref (ids);
    return NULL;
  }
  /* a caption is waited for: other threads' long forwards on this device
   * hold back their next layers until it is done */
  mm_engine_urgent_begin (llm->engine);
  /* tiled images fill one media run per view */
  MmLlmRequest runs = *req;
  MmLlmMedia *media = mm_llm_text_media_runs (llm->text, req, &runs.n_media);
  runs.media = media;
  GArray *keys = prompt_keys (ids, &runs);
  float *logits = prefill (llm, &runs, ids, keys, &st, &err);
  g_array_unref (keys);
  if (media != req->media)
    g_free (media);
  MmStopper *stopper = make_stopper (req);
  MmDecodeStream *dec = mm_llm_text_decoder (llm->text);
  GString *piece = g_string_new (NULL), *shown = g_string_new (NULL);
  gint pos = ids->len;
  gint64 t0 = g_get_monotonic_time ();
  while (logits && pos < llm->n_ctx) {
    gint32 id;
    gboolean sampled = mm_sampler_sample (sampler, logits, llm->hp.vocab, &id,
        &err);
    g_clear_pointer (&logits, g_free);
    if (!sampled || mm_llm_text_is_end (llm->text, id))
      break;
    st.generated_tokens++;
    if (out_ids)
      g_array_append_val (out_ids, id);
    g_string_truncate (piece, 0);
    g_string_truncate (shown, 0);
    if (!mm_decode_stream_push (dec, id, piece, &err))
      break;
    MmStopReason why = mm_stopper_push (stopper, id, piece->str, piece->len,
        shown);
    if (func && shown->len && !func (shown->str, user_data))
      break;
    if (why != MM_STOP_NONE)
      break;
    MmLlmBatch one = { &id, 1, NULL, 0 };
    logits = mm_llm_forward (llm, &one, pos, FALSE, &err);
    if (logits) {
      gint64 key = id;
      g_array_append_val (llm->cache_ids, key);
      pos++;
    }
  }
  st.decode_ms = (g_get_monotonic_time () - t0) / 1000.0;
  mm_engine_urgent_end (llm->engine);
  gchar *text = g_strdup (mm_stopper_get_text (stopper));
  g_free (logits);
  mm_sampler_free (sampler);
  mm_stopper_free (stopper);
  mm_decode_stream_free (dec);
  g_string_free (piece, TRUE);
  g_string_free (shown, TRUE);
  g_array_unref (ids);
  if (stats)
    *stats = st;
  if (err) {
    /* the cache may hold a partial forward: forget it */
    g_array_set_size (llm->cache_ids, 0);
    g_propagate_error (error, err);
    g_free (text);
    return NULL;
  }
  return text;
}
