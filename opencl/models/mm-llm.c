/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Llama-family decoders: Llama, SmolLM2, Qwen2.  RMSNorm, RoPE, grouped-
 * query attention with a KV cache, SwiGLU, tied or untied output.
 */
#include "mm-llm-private.h"
#include "mm-llm-load.h"

#include <math.h>
#include <string.h>

struct _MmLlm
{
  MmEngine *engine;
  MmGraph *graph;
  MmLlmHp hp;
  MmLlmLayer *layers;
  MmTensor *tok_embd, *out_norm, *output;       /* output may be tok_embd */
  MmTensor **k_cache, **v_cache;        /* per layer [n_ctx, n_kv * hd] */
  gint n_ctx;
  GArray *cache_ids;            /* what the KV cache holds: token id or
                                 * -(1 + media slot) per position */
  GArray *cache_media;          /* guint64 media ids of the cached slots */
  MmLlmText *text;              /* tokenizer, template, special tokens */
  gchar *id;
};

/* ---- graph ---- */

static MmTensor *
llm_attention (MmLlm * llm, MmGraph * g, const MmLlmLayer * l, gint il,
    MmTensor * h, gint pos0)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 n = mm_tensor_rows (h);
  MmTensor *q = mm_reshape_3d (g, mm_linear (g, h, l->wq, l->bq), n,
      hp->n_head, hp->head_dim);
  MmTensor *k = mm_reshape_3d (g, mm_linear (g, h, l->wk, l->bk), n,
      hp->n_kv_head, hp->head_dim);
  MmTensor *v = mm_linear (g, h, l->wv, l->bv);
  q = mm_rope (g, q, pos0, hp->n_rot, hp->rope_base, hp->rope_freq_scale,
      hp->rope_mode);
  k = mm_rope (g, k, pos0, hp->n_rot, hp->rope_base, hp->rope_freq_scale,
      hp->rope_mode);
  mm_copy_rows_into (g, llm->k_cache[il], pos0, mm_reshape_2d (g, k, n,
          hp->n_kv_head * hp->head_dim));
  mm_copy_rows_into (g, llm->v_cache[il], pos0, v);
  /* the cache's first pos0 + n rows, as [n_kv, n_kv_head, head_dim] */
  gint64 kv_shape[3] = { pos0 + n, hp->n_kv_head, hp->head_dim };
  MmTensor *kc = mm_graph_keep (g, mm_tensor_view (llm->k_cache[il], 3,
          kv_shape));
  MmTensor *vc = mm_graph_keep (g, mm_tensor_view (llm->v_cache[il], 3,
          kv_shape));
  MmTensor *a = mm_attention (g, q, kc, vc, NULL, 1.0f / sqrtf (hp->head_dim),
      pos0);
  return mm_linear (g, a, l->wo, NULL);
}

static MmTensor *
llm_block (MmLlm * llm, MmGraph * g, gint il, MmTensor * x, gint pos0)
{
  const MmLlmLayer *l = &llm->layers[il];
  MmTensor *h = mm_rms_norm (g, x, l->attn_norm, llm->hp.eps);
  x = mm_add (g, x, llm_attention (llm, g, l, il, h, pos0));
  h = mm_rms_norm (g, x, l->ffn_norm, llm->hp.eps);
  h = mm_swiglu (g, mm_linear (g, h, l->w_gate, NULL),
      mm_linear (g, h, l->w_up, NULL));
  return mm_add (g, x, mm_linear (g, h, l->w_down, NULL));
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
      while (j < b->n && b->ids[j] < 0)
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
  for (gint il = 0; il < llm->hp.n_layer; il++)
    x = llm_block (llm, g, il, x, pos0);
  if (!all_logits)
    x = mm_slice_rows (g, x, batch->n - 1, 1);
  x = mm_rms_norm (g, x, llm->out_norm, llm->hp.eps);
  MmTensor *logits = mm_linear (g, x, llm->output, NULL);
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

/* ---- loading ---- */

static void
llm_free_weights (MmLlm * llm)
{
  for (gint i = 0; llm->layers && i < llm->hp.n_layer; i++) {
    MmLlmLayer *l = &llm->layers[i];
    MmTensor **all[] = { &l->attn_norm, &l->wq, &l->wk, &l->wv, &l->wo,
      &l->bq, &l->bk, &l->bv, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down
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
  if (llm->cache_media)
    g_array_unref (llm->cache_media);
  mm_graph_free (llm->graph);
  mm_engine_unref (llm->engine);
  g_free (llm->id);
  g_free (llm);
}

static gboolean
llm_load_weights (MmLlm * llm, MmLlmSource * src, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 d = hp->d, qd = (gint64) hp->n_head * hp->head_dim;
  gint64 kvd = (gint64) hp->n_kv_head * hp->head_dim;
  gint64 s_emb[2] = { hp->vocab, d }, s_d = d;
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
  if (llm->output == NULL)
    llm->output = llm->tok_embd;        /* tied embeddings */
  llm->layers = g_new0 (MmLlmLayer, hp->n_layer);
  for (gint i = 0; i < hp->n_layer; i++) {
    MmLlmLayer *l = &llm->layers[i];
    gint64 s_q[2] = { qd, d }, s_kv[2] = { kvd, d }, s_o[2] = { d, qd };
    gint64 s_g[2] = { hp->ffn, d }, s_dn[2] = { d, hp->ffn };
    struct
    {
      MmTensor **t;
      MmLlmTensorKind kind;
      gint n_dims;
      const gint64 *shape;
      gboolean optional;
    } want[] = {
      {&l->attn_norm, MM_LLM_T_ATTN_NORM, 1, &s_d, FALSE},
      {&l->wq, MM_LLM_T_Q, 2, s_q, FALSE},
      {&l->wk, MM_LLM_T_K, 2, s_kv, FALSE},
      {&l->wv, MM_LLM_T_V, 2, s_kv, FALSE},
      {&l->wo, MM_LLM_T_O, 2, s_o, FALSE},
      {&l->bq, MM_LLM_T_Q_BIAS, 1, &qd, TRUE},
      {&l->bk, MM_LLM_T_K_BIAS, 1, &kvd, TRUE},
      {&l->bv, MM_LLM_T_V_BIAS, 1, &kvd, TRUE},
      {&l->ffn_norm, MM_LLM_T_FFN_NORM, 1, &s_d, FALSE},
      {&l->w_gate, MM_LLM_T_GATE, 2, s_g, FALSE},
      {&l->w_up, MM_LLM_T_UP, 2, s_g, FALSE},
      {&l->w_down, MM_LLM_T_DOWN, 2, s_dn, FALSE},
    };
    for (guint j = 0; j < G_N_ELEMENTS (want); j++) {
      *want[j].t = mm_llm_source_tensor (src, llm->engine, want[j].kind, i,
          want[j].n_dims, want[j].shape, want[j].optional, &err);
      if (err) {
        g_propagate_error (error, err);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gboolean
llm_alloc_cache (MmLlm * llm, GError ** error)
{
  const MmLlmHp *hp = &llm->hp;
  gint64 s[2] = { llm->n_ctx, (gint64) hp->n_kv_head * hp->head_dim };
  llm->k_cache = g_new0 (MmTensor *, hp->n_layer);
  llm->v_cache = g_new0 (MmTensor *, hp->n_layer);
  for (gint i = 0; i < hp->n_layer; i++) {
    llm->k_cache[i] = mm_tensor_new (llm->engine, MM_DTYPE_F32, 2, s,
        "KV cache", error);
    llm->v_cache[i] = llm->k_cache[i] ? mm_tensor_new (llm->engine,
        MM_DTYPE_F32, 2, s, "KV cache", error) : NULL;
    if (llm->v_cache[i] == NULL)
      return FALSE;
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
  llm->cache_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  llm->cache_media = g_array_new (FALSE, FALSE, sizeof (guint64));
  gchar *base = g_path_get_basename (path);
  llm->id = g_strdup (base);
  g_free (base);
  gboolean ok = mm_llm_source_hparams (src, &llm->hp, error);
  if (ok) {
    llm->n_ctx = MIN (llm->hp.n_ctx_train, MM_LLM_MAX_CONTEXT);
    ok = llm_load_weights (llm, src, error) && llm_alloc_cache (llm, error);
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
