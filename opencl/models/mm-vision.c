/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision encoders: a ViT tower (SigLIP, CLIP) and a connector (LLaVA MLP,
 * Idefics3 pixel shuffle, Idefics2 Perceiver resampler, MiniCPM-V
 * resampler), as the Hugging Face implementations compute them.
 *
 * One forward: preprocess on the device -> patch embedding (conv as GEMM)
 * + position embeddings (+ class token, pre-LN for CLIP) -> n_run blocks
 * -> feature layer(s) (+ post-LN where HF applies it) -> connector.  Each
 * block's temporaries go back to the arena after the block (only the
 * residual stream is carried), so the arena holds about one layer.
 */
#include "mm-vision-private.h"
#include "mm-launch.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define OUTPUT_POOL_MAX 8

struct _MmVisionModel
{
  MmEngine *engine;
  MmGraph *graph;
  MmVisionHp hp;
  MmVisionWeights w;
  MmImagePrep *prep;
  MmImagePrepSpec prep_spec;
  gchar *id;
  gdouble last_ms;
  gboolean trace;
  GHashTable *traced;           /* name -> MmTensor * of the last forward */
  GPtrArray *pool;              /* cl_mem of output tensors, one ref each */
  GHashTable *r_pos_grids;      /* MiniCPM-V: grid (gh << 16 | gw) ->
                                 * MmTensor * of its sin-cos table */
};

/* Grids whose resampler position tables are kept (a stream of equal
 * frames has two or three: slices, overview). */
#define R_POS_GRIDS_MAX 8

/* ---- builders ---- */

static void
trace (MmVisionModel * m, MmTensor * t, const gchar * format, ...)
G_GNUC_PRINTF (3, 4);

static void
trace (MmVisionModel * m, MmTensor * t, const gchar * format, ...)
{
  if (!m->trace)
    return;
  va_list args;
  va_start (args, format);
  g_hash_table_insert (m->traced, g_strdup_vprintf (format, args), t);
  va_end (args);
}

static MmTensor *
build_act (MmGraph * g, MmAct act, MmTensor * x)
{
  switch (act) {
    case MM_ACT_GELU:
      return mm_gelu (g, x);
    case MM_ACT_GELU_TANH:
      return mm_gelu_tanh (g, x);
    case MM_ACT_QUICK_GELU:
      return mm_quick_gelu (g, x);
    case MM_ACT_SILU:
      return mm_silu (g, x);
  }
  return x;
}

static MmLinearAct
linear_act (MmAct act)
{
  switch (act) {
    case MM_ACT_GELU:
      return MM_LINEAR_ACT_GELU;
    case MM_ACT_GELU_TANH:
      return MM_LINEAR_ACT_GELU_TANH;
    case MM_ACT_QUICK_GELU:
      return MM_LINEAR_ACT_QUICK_GELU;
    case MM_ACT_SILU:
      return MM_LINEAR_ACT_SILU;
  }
  return MM_LINEAR_ACT_NONE;
}

/* act(gate(x)) * up(x), then down: Idefics2's MLPs (no biases). */
static MmTensor *
build_gated_ffn (MmGraph * g, MmTensor * x, MmTensor * gate_w,
    MmTensor * up_w, MmTensor * down_w, MmAct act)
{
  MmTensor *gate = mm_linear (g, x, gate_w, NULL);
  MmTensor *up = mm_linear (g, x, up_w, NULL);
  MmTensor *h = act == MM_ACT_SILU ? mm_swiglu (g, gate, up) :
      mm_mul (g, build_act (g, act, gate), up);
  return mm_linear (g, h, down_w, NULL);
}

/* Multi-head attention of queries @xq over keys @xk and values @xv (rows
 * are tokens); biases nullable.  Returns the output projection. */
static MmTensor *
build_attn (MmGraph * g, MmTensor * xq, MmTensor * xk, MmTensor * xv,
    MmTensor * q_w, MmTensor * q_b, MmTensor * k_w, MmTensor * k_b,
    MmTensor * v_w, MmTensor * v_b, MmTensor * o_w, MmTensor * o_b,
    gint n_head, gint n_kv_head, gint head_dim)
{
  gint64 nq = mm_tensor_rows (xq), nk = mm_tensor_rows (xk);
  MmTensor *q = mm_reshape_3d (g, mm_linear (g, xq, q_w, q_b), nq, n_head,
      head_dim);
  MmTensor *k = mm_reshape_3d (g, mm_linear (g, xk, k_w, k_b), nk, n_kv_head,
      head_dim);
  MmTensor *v = mm_reshape_3d (g, mm_linear (g, xv, v_w, v_b), nk, n_kv_head,
      head_dim);
  MmTensor *a = mm_attention (g, q, k, v, NULL, 1.0f / sqrtf (head_dim), -1);
  return mm_linear (g, a, o_w, o_b);
}

/* Heads per pass of the attention: the scores of one pass stay under
 * this many bytes (ViT-B at 1024 tokens: 4 heads, 16 MiB). */
#ifndef ATTN_SCORES_BYTES
#define ATTN_SCORES_BYTES ((gint64) 16 << 20)
#endif

/* Self-attention on a fused projection qkv [n, 3d] (Q, K, V column
 * blocks, read where they are). */
static MmTensor *
build_self_attn (MmGraph * g, MmTensor * qkv, gint n_head, gint hd)
{
  return mm_self_attention_qkv (g, qkv, n_head, 1.0f / sqrtf (hd),
      ATTN_SCORES_BYTES);
}

/* ---- tower ---- */

static MmTensor *
vit_block (MmGraph * g, const MmVitLayer * l, MmTensor * x,
    const MmVisionHp * hp)
{
  MmTensor *h = mm_layer_norm (g, x, l->ln1_w, l->ln1_b, hp->eps);
  MmTensor *qkv = mm_linear (g, h, l->qkv_w, l->qkv_b);       /* [n, 3d] */
  /* activation and residuals ride in the GEMMs' last pass */
  MmLinearFuse res = {.residual = x };
  x = mm_linear_fused (g, build_self_attn (g, qkv, hp->n_head, hp->head_dim),
      l->o_w, l->o_b, &res);
  h = mm_layer_norm (g, x, l->ln2_w, l->ln2_b, hp->eps);
  MmLinearFuse act = {.act = linear_act (hp->act) }, res2 = {.residual = x };
  h = mm_linear_fused (g, h, l->fc1_w, l->fc1_b, &act);
  return mm_linear_fused (g, h, l->fc2_w, l->fc2_b, &res2);
}

/* Position embeddings of a gh x gw patch grid: the table made at load for
 * the model's own grid; bucketed towers look other grids up in the file's
 * table (NaViT positions, as Idefics2/3 compute them per image). */
static MmTensor *
vit_positions (MmVisionModel * m, MmGraph * g, gint gh, gint gw)
{
  const MmVisionHp *hp = &m->hp;
  gint side = hp->image_size / hp->patch;
  if (gh == side && gw == side)
    return m->w.pos;
  if (hp->pos_mode != MM_POS_BUCKET || m->w.pos_trained == NULL) {
    mm_graph_failf (g, "%s: a %dx%d patch grid, the model takes %dx%d", m->id,
        gw, gh, side, side);
    return mm_graph_dead (g);
  }
  gint gi = (gint) lround (sqrt (hp->n_pos_trained));
  gint *bh = g_new (gint, gh), *bw = g_new (gint, gw);
  gint32 *ids = g_new (gint32, (gsize) gh * gw);
  mm_vision_bucket_ids (gi, gh, bh);
  mm_vision_bucket_ids (gi, gw, bw);
  for (gint y = 0; y < gh; y++)
    for (gint x = 0; x < gw; x++)
      ids[y * gw + x] = bh[y] * gi + bw[x];
  MmTensor *pos = mm_get_rows (g, m->w.pos_trained, ids, gh * gw);
  g_free (bh);
  g_free (bw);
  g_free (ids);
  return pos;
}

/* Patches (+ class token) + positions (+ pre-LN) of pixels [3, ph, pw] on
 * its gh x gw patch grid: hidden_states[0] (edges that are not a multiple
 * of the patch lose their remainder: the conv is "valid"). */
static MmTensor *
vit_embed (MmVisionModel * m, MmGraph * g, MmTensor * pixels, gint pw, gint ph,
    gint64 gw, gint64 gh)
{
  const MmVisionHp *hp = &m->hp;
  const MmVisionWeights *w = &m->w;
  gint64 C = 3, p = hp->patch;
  if (gw <= 0 || gh <= 0) {
    mm_graph_failf (g, "%s: a %dx%d view is smaller than a %d-pixel patch",
        m->id, pw, ph, hp->patch);
    return mm_graph_dead (g);
  }
  MmTensor *cols = mm_graph_tensor_2d (g, gh * gw, C * p * p);
  gsize gws[2] = { C * p, gh * gw };
  MM_LAUNCH (g, "kernel_vision_patchify", 2, gws, FALSE, MM_TENSOR (pixels),
      MM_TENSOR (cols), MM_UINT (C), MM_UINT (ph), MM_UINT (pw), MM_UINT (p),
      MM_UINT (gw));
  /* the conv as a GEMM over patches: [n_patch, d] */
  MmTensor *x = mm_linear (g, cols, mm_reshape_2d (g, w->patch_w, hp->d,
          C * p * p), w->patch_b);
  if (hp->has_cls)
    x = mm_concat (g, mm_reshape_2d (g, w->cls, 1, hp->d), x, FALSE);
  x = mm_add (g, x, vit_positions (m, g, gh, gw));
  if (hp->has_pre_ln)
    x = mm_layer_norm (g, x, w->pre_ln_w, w->pre_ln_b, hp->eps);
  return x;
}

/* The tower's output as the connector takes it: the feature layer(s),
 * concatenated along features, post-LN'd where HF does. */
static MmTensor *
vit_forward (MmVisionModel * m, MmGraph * g, MmTensor * pixels, gint pw,
    gint ph, gint gw, gint gh)
{
  const MmVisionHp *hp = &m->hp;
  MmTensor *x = vit_embed (m, g, pixels, pw, ph, gw, gh);
  gint64 n = mm_tensor_rows (x);
  MmTensor *carry[2] = { mm_graph_tensor_2d (g, n, hp->d),
    mm_graph_tensor_2d (g, n, hp->d)
  };
  MmTensor *feat[MM_VISION_MAX_FEATURE_LAYERS] = { NULL };
  for (gint i = 0; i < hp->n_feature_layers; i++)
    if (hp->feature_layers[i] < hp->n_run)
      feat[i] = mm_graph_tensor_2d (g, n, hp->d);
  trace (m, x, "hidden_states.0");
  for (gint il = 0; il <= hp->n_run; il++) {
    for (gint i = 0; i < hp->n_feature_layers; i++)
      if (feat[i] && hp->feature_layers[i] == il)
        mm_copy_rows_into (g, feat[i], 0, x);
    if (il == hp->n_run)
      break;
    MmGraphMark mark = mm_graph_mark (g);
    MmTensor *y = vit_block (g, &m->w.layers[il], x, hp);
    if (m->trace) {
      x = y;
    } else {
      mm_copy_rows_into (g, carry[il & 1], 0, y);
      mm_graph_rewind (g, mark);
      x = carry[il & 1];
    }
    trace (m, x, "hidden_states.%d", il + 1);
    mm_graph_pace (g);
  }
  for (gint i = 0; i < hp->n_feature_layers; i++)
    if (feat[i] == NULL)
      feat[i] = x;
  x = feat[0];
  for (gint i = 1; i < hp->n_feature_layers; i++)
    x = mm_concat (g, x, feat[i], TRUE);
  if (hp->apply_post_ln)
    x = mm_layer_norm (g, x, m->w.post_ln_w, m->w.post_ln_b, hp->eps);
  trace (m, x, "tower_out");
  return x;
}

/* ---- connectors ---- */

/* LLaVA: linear, act, linear on the patch tokens. */
static MmTensor *
mlp_projector (MmVisionModel * m, MmGraph * g, MmTensor * x)
{
  const MmVisionWeights *w = &m->w;
  if (m->hp.drop_cls)
    x = mm_slice_rows (g, x, 1, mm_tensor_rows (x) - 1);
  trace (m, x, "connector.in");
  x = build_act (g, m->hp.mlp_act, mm_linear (g, x, w->mm0_w, w->mm0_b));
  return mm_linear (g, x, w->mm2_w, w->mm2_b);
}

/* Idefics3: pixel shuffle (space to depth, HF's order) + linear. */
static MmTensor *
idefics3_connector (MmVisionModel * m, MmGraph * g, MmTensor * x)
{
  const MmVisionHp *hp = &m->hp;
  gint64 side = hp->image_size / hp->patch, s = hp->scale_factor, d = hp->d;
  if (mm_tensor_rows (x) != side * side) {
    mm_graph_failf (g, "%s: pixel shuffle takes %" G_GINT64_FORMAT
        " patches, not %" G_GINT64_FORMAT, m->id, side * side,
        mm_tensor_rows (x));
    return mm_graph_dead (g);
  }
  const gint swap[3] = { 1, 0, 2 };
  x = mm_reshape_3d (g, x, side, side / s, s * d);      /* [h, w/s, s d] */
  x = mm_permute (g, x, swap);  /* [w/s, h, s d] */
  x = mm_reshape_3d (g, x, side / s, side / s, s * s * d);
  x = mm_permute (g, x, swap);  /* [h/s, w/s, s^2 d] */
  x = mm_reshape_2d (g, x, (side / s) * (side / s), s * s * d);
  return mm_linear (g, x, m->w.fc_w, NULL);
}

/* Idefics2 Perceiver layer: latents attend to [context; latents]. */
static MmTensor *
perceiver_layer (MmGraph * g, const MmPerceiverLayer * l, MmTensor * lat,
    MmTensor * ctx, const MmVisionHp * hp)
{
  MmTensor *h = mm_rms_norm (g, lat, l->latents_norm, hp->p_eps);
  MmTensor *c = mm_rms_norm (g, ctx, l->context_norm, hp->p_eps);
  MmTensor *kv = mm_concat (g, c, h, FALSE);    /* [n_ctx + n_lat, d] */
  lat = mm_add (g, lat, build_attn (g, h, kv, kv, l->q_w, NULL, l->k_w, NULL,
          l->v_w, NULL, l->o_w, NULL, hp->p_n_head, hp->p_n_kv_head,
          hp->p_head_dim));
  h = mm_rms_norm (g, lat, l->post_norm, hp->p_eps);
  return mm_add (g, lat, build_gated_ffn (g, h, l->gate_w, l->up_w,
          l->down_w, hp->p_act));
}

/* Idefics2: modality projection (gated MLP) + Perceiver resampler. */
static MmTensor *
perceiver_connector (MmVisionModel * m, MmGraph * g, MmTensor * x)
{
  const MmVisionHp *hp = &m->hp;
  const MmVisionWeights *w = &m->w;
  MmTensor *ctx = build_gated_ffn (g, x, w->mp_gate_w, w->mp_up_w,
      w->mp_down_w, hp->mp_act);
  trace (m, ctx, "connector.projected");
  MmTensor *lat = w->latents;
  for (gint il = 0; il < hp->p_depth; il++) {
    lat = perceiver_layer (g, &w->p_layers[il], lat, ctx, hp);
    trace (m, lat, "connector.layer_out.%d", il);
  }
  return mm_rms_norm (g, lat, w->p_norm, hp->p_eps);
}

/* MiniCPM-V: the sin-cos table of a gh x gw patch grid: the one made at
 * load for the model's square grid, else computed once per grid and
 * kept. */
static MmTensor *
resampler_positions (MmVisionModel * m, MmGraph * g, gint gh, gint gw)
{
  gint side = m->hp.image_size / m->hp.patch;
  if (gh == side && gw == side)
    return m->w.r_pos;
  gpointer key = GINT_TO_POINTER (gh << 16 | gw);
  MmTensor *t = g_hash_table_lookup (m->r_pos_grids, key);
  if (t)
    return t;
  if (gh <= 0 || gw <= 0 || gh > 0x7fff || gw > 0xffff) {
    mm_graph_failf (g, "%s: a %dx%d patch grid", m->id, gw, gh);
    return mm_graph_dead (g);
  }
  if (g_hash_table_size (m->r_pos_grids) >= R_POS_GRIDS_MAX)
    g_hash_table_remove_all (m->r_pos_grids);
  float *pos = mm_vision_sincos_2d (gh, gw, m->hp.r_dim);
  gint64 shape[2] = { (gint64) gh * gw, m->hp.r_dim };
  GError *err = NULL;
  t = mm_tensor_upload (m->engine, MM_DTYPE_F32, 2, shape, pos,
      "resampler position embeddings", &err);
  g_free (pos);
  if (t == NULL) {
    mm_graph_fail (g, err);
    return mm_graph_dead (g);
  }
  g_hash_table_insert (m->r_pos_grids, key, t);
  return t;
}

/* MiniCPM-V: learned queries attend once to the projected features of a
 * gh x gw patch grid, with 2-D sin-cos positions added to the keys. */
static MmTensor *
minicpmv_resampler (MmVisionModel * m, MmGraph * g, MmTensor * x, gint gh,
    gint gw)
{
  const MmVisionHp *hp = &m->hp;
  const MmVisionWeights *w = &m->w;
  if (hp->r_has_kv_proj)
    x = mm_linear (g, x, w->r_kv_w, NULL);
  MmTensor *v = mm_layer_norm (g, x, w->r_ln_kv_w, w->r_ln_kv_b, hp->r_eps);
  MmTensor *q = mm_layer_norm (g, w->r_query, w->r_ln_q_w, w->r_ln_q_b,
      hp->r_eps);
  trace (m, v, "connector.kv");
  MmTensor *k = mm_add (g, v, resampler_positions (m, g, gh, gw));
  MmTensor *a = build_attn (g, q, k, v, w->r_q_w, w->r_q_b, w->r_k_w,
      w->r_k_b, w->r_v_w, w->r_v_b, w->r_o_w, w->r_o_b, hp->r_n_head,
      hp->r_n_head, hp->r_dim / hp->r_n_head);
  trace (m, a, "connector.attn_out");
  a = mm_layer_norm (g, a, w->r_ln_post_w, w->r_ln_post_b, hp->r_eps);
  return mm_linear (g, a, w->r_proj_w, NULL);
}

/* The connector on tower features of a gh x gw patch grid. */
static MmTensor *
connector (MmVisionModel * m, MmGraph * g, MmTensor * x, gint gh, gint gw)
{
  switch (m->hp.proj) {
    case MM_PROJ_NONE:
      return x;
    case MM_PROJ_MLP:
      return mlp_projector (m, g, x);
    case MM_PROJ_IDEFICS3:
      return idefics3_connector (m, g, x);
    case MM_PROJ_PERCEIVER:
      return perceiver_connector (m, g, x);
    case MM_PROJ_MINICPMV:
      return minicpmv_resampler (m, g, x, gh, gw);
  }
  return x;
}

/* ---- output ---- */

/* An output tensor [n_tokens, dim]: a pooled buffer only the pool holds
 * (reference count 1), a new pooled one, or past the pool's size a plain
 * one.  Reference counts are read for this only: a buffer nobody but the
 * pool holds cannot be taken by anyone else meanwhile. */
static MmTensor *
output_tensor (MmVisionModel * m, gint64 rows, gint64 cols, GError ** error)
{
  gint64 shape[2] = { rows, cols };
  gsize bytes = rows * cols * sizeof (float);
  for (guint i = 0; i < m->pool->len; i++) {
    cl_mem buf = g_ptr_array_index (m->pool, i);
    cl_uint refs = 0;
    size_t size = 0;
    if (clGetMemObjectInfo (buf, CL_MEM_REFERENCE_COUNT, sizeof (refs), &refs,
            NULL) == CL_SUCCESS && refs == 1
        && clGetMemObjectInfo (buf, CL_MEM_SIZE, sizeof (size), &size,
            NULL) == CL_SUCCESS && size == bytes) {
      MmTensor *t = g_new0 (MmTensor, 1);
      clRetainMemObject (buf);
      t->buf = buf;
      t->dtype = MM_DTYPE_F32;
      t->n_dims = 2;
      memcpy (t->shape, shape, sizeof (shape));
      t->owns_buf = TRUE;
      return t;
    }
  }
  MmTensor *t = mm_tensor_new (m->engine, MM_DTYPE_F32, 2, shape,
      "vision encoder output", error);
  if (t && m->pool->len < OUTPUT_POOL_MAX) {
    clRetainMemObject (t->buf);
    g_ptr_array_add (m->pool, t->buf);
  }
  return t;
}

/* Copies the graph's result into an output tensor and waits. */
static MmTensor *
finish (MmVisionModel * m, MmTensor * y, gint64 t0, GError ** error)
{
  MmGraph *g = m->graph;
  MmTensor *out = NULL;
  if (mm_graph_ok (g)) {
    GError *err = NULL;
    out = output_tensor (m, mm_tensor_rows (y), mm_tensor_cols (y), &err);
    if (out)
      mm_copy_rows_into (g, out, 0, y);
    else
      mm_graph_fail (g, err);
  }
  if (!mm_graph_finish (g, error)) {
    mm_tensor_free (out);
    return NULL;
  }
  m->last_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return out;
}

static void
begin (MmVisionModel * m)
{
  mm_graph_reset (m->graph);
  g_hash_table_remove_all (m->traced);
}

/* A view of the preprocessed pixels: [3, h, w] at its offset. */
static MmTensor *
view_pixels (MmGraph * g, MmTensor * pixels, const MmImageView * v)
{
  MmTensor t = *pixels;
  gint64 shape[3] = { 3, v->h, v->w };
  t.offset += v->offset * sizeof (float);
  return mm_graph_keep (g, mm_tensor_view (&t, 3, shape));
}

MmTensor *
mm_vision_model_encode_views (MmVisionModel * m, const MmImage * img,
    MmVisionLayout * layout, GError ** error)
{
  gint64 t0 = g_get_monotonic_time ();
  MmGraph *g = m->graph;
  MmImageLayout il = { 0 };
  begin (m);
  MmTensor *pixels = mm_image_prep_run (m->prep, g, img);
  trace (m, pixels, "pixel_values");
  const MmImageView *views = mm_graph_ok (g) ?
      mm_image_prep_views (m->prep, &il) : NULL;
  gint n_tok = m->hp.n_tokens;
  MmTensor *out = mm_graph_tensor_2d (g, (gint64) MAX (il.n_views, 1) * n_tok,
      m->hp.out_dim);
  /* views one after the other; the arena holds one view's forward (all
   * of them when tracing, the names then hold the last view's tensors) */
  for (gint i = 0; i < il.n_views && mm_graph_ok (g); i++) {
    MmGraphMark mark = mm_graph_mark (g);
    /* views of different sizes (Idefics2's quarters) come padded to the
     * largest in HF's batch, where only whole patches of the view count
     * (patch_attention_mask): the view's own floor grid */
    gint gw = views[i].w / m->hp.patch, gh = views[i].h / m->hp.patch;
    MmTensor *y = connector (m, g, vit_forward (m, g, view_pixels (g, pixels,
                &views[i]), views[i].w, views[i].h, gw, gh), gh, gw);
    if (mm_graph_ok (g) && mm_tensor_rows (y) != n_tok)
      mm_graph_failf (g, "%s: view %d gives %" G_GINT64_FORMAT " tokens, not "
          "%d", m->id, i, mm_tensor_rows (y), n_tok);
    mm_copy_rows_into (g, out, (gint64) i * n_tok, y);
    trace (m, y, "output.%d", i);
    if (!m->trace)
      mm_graph_rewind (g, mark);
  }
  trace (m, out, "output");
  if (layout) {
    layout->n_views = il.n_views;
    layout->tokens_per_view = n_tok;
    layout->rows = il.rows;
    layout->cols = il.cols;
    layout->global_view = il.global_view;
  }
  return finish (m, out, t0, error);
}

MmTensor *
mm_vision_model_encode (MmVisionModel * m, const MmImage * img,
    GError ** error)
{
  return mm_vision_model_encode_views (m, img, NULL, error);
}

MmTensor *
mm_vision_model_encode_pixels (MmVisionModel * m, const float *pixels,
    GError ** error)
{
  gint64 t0 = g_get_monotonic_time ();
  MmGraph *g = m->graph;
  begin (m);
  gint64 s[3] = { 3, m->hp.image_size, m->hp.image_size };
  MmTensor *x = mm_graph_input_f32 (g, 3, s, pixels);
  gint side = m->hp.image_size / m->hp.patch;
  MmTensor *y = connector (m, g, vit_forward (m, g, x, m->hp.image_size,
          m->hp.image_size, side, side), side, side);
  trace (m, y, "output");
  return finish (m, y, t0, error);
}

MmTensor *
mm_vision_model_encode_features (MmVisionModel * m, const float *features,
    gint n, GError ** error)
{
  gint64 t0 = g_get_monotonic_time ();
  MmGraph *g = m->graph;
  begin (m);
  gint g_side = m->hp.image_size / m->hp.patch;
  gint want = g_side * g_side + (m->hp.has_cls ? 1 : 0);
  if (m->hp.proj != MM_PROJ_PERCEIVER && n != want) {
    mm_graph_failf (g, "%s: the connector takes %d tower tokens, not %d",
        m->id, want, n);
  }
  gint64 s[2] = { n, m->hp.d * m->hp.n_feature_layers };
  MmTensor *x = mm_graph_input_f32 (g, 2, s, features);
  MmTensor *y = connector (m, g, x, g_side, g_side);
  trace (m, y, "output");
  return finish (m, y, t0, error);
}

float *
mm_vision_model_preprocess_views (MmVisionModel * m, const MmImage * img,
    MmVisionLayout * layout, gsize * n_floats, GError ** error)
{
  MmGraph *g = m->graph;
  begin (m);
  MmTensor *pixels = mm_image_prep_run (m->prep, g, img);
  if (!mm_graph_finish (g, error))
    return NULL;
  MmImageLayout il;
  mm_image_prep_views (m->prep, &il);
  if (layout) {
    layout->n_views = il.n_views;
    layout->tokens_per_view = 0;
    layout->rows = il.rows;
    layout->cols = il.cols;
    layout->global_view = il.global_view;
  }
  if (n_floats)
    *n_floats = mm_tensor_numel (pixels);
  return mm_tensor_dup_f32 (m->engine, pixels, error);
}

float *
mm_vision_model_preprocess (MmVisionModel * m, const MmImage * img,
    GError ** error)
{
  return mm_vision_model_preprocess_views (m, img, NULL, NULL, error);
}

gboolean
mm_vision_model_view_size (MmVisionModel * m, gint i, gint * w, gint * h)
{
  MmImageLayout il;
  const MmImageView *v = mm_image_prep_views (m->prep, &il);
  if (i < 0 || i >= il.n_views)
    return FALSE;
  *w = v[i].w;
  *h = v[i].h;
  return TRUE;
}

gboolean
mm_vision_model_can_split (MmVisionModel * m)
{
  return mm_image_prep_get_spec (m->prep)->split_kind != MM_SPLIT_NONE;
}

gboolean
mm_vision_model_get_splitting (MmVisionModel * m)
{
  const MmImagePrepSpec *s = mm_image_prep_get_spec (m->prep);
  return s->split_kind != MM_SPLIT_NONE && s->do_split;
}

void
mm_vision_model_set_splitting (MmVisionModel * m, gboolean split,
    gint max_tiles)
{
  if (mm_vision_model_can_split (m))
    mm_image_prep_set_split (m->prep, split, max_tiles);
}

/* ---- model ---- */

void
mm_vision_model_set_trace (MmVisionModel * m, gboolean on)
{
  m->trace = on;
}

float *
mm_vision_model_trace_get (MmVisionModel * m, const gchar * name,
    gint64 * rows, gint64 * cols, GError ** error)
{
  MmTensor *t = g_hash_table_lookup (m->traced, name);
  if (t == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: '%s' was not traced in the last forward", m->id, name);
    return NULL;
  }
  if (rows)
    *rows = mm_tensor_rows (t);
  if (cols)
    *cols = mm_tensor_cols (t);
  return mm_tensor_dup_f32 (m->engine, t, error);
}

static void
release_mem (gpointer mem)
{
  clReleaseMemObject (mem);
}

MmVisionModel *
mm_vision_model_load_with_options (MmEngine * engine, const gchar * path,
    const MmVisionOptions * opts, GError ** error)
{
  MmVisionLoaded ld;
  if (!mm_vision_load_file (engine, path, opts, &ld, error))
    return NULL;
  MmImagePrep *prep = mm_image_prep_new (engine, &ld.prep, error);
  if (prep == NULL) {
    mm_vision_weights_clear (&ld.w, &ld.hp);
    g_free (ld.kind);
    return NULL;
  }
  MmVisionModel *m = g_new0 (MmVisionModel, 1);
  m->engine = mm_engine_ref (engine);
  m->graph = mm_graph_new (engine);
  m->hp = ld.hp;
  m->w = ld.w;
  m->prep = prep;
  m->prep_spec = ld.prep;
  gchar *base = g_path_get_basename (path);
  m->id = g_strdup_printf ("%s (%s)", base, ld.kind);
  g_free (base);
  g_free (ld.kind);
  m->traced = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  m->pool = g_ptr_array_new_with_free_func (release_mem);
  m->r_pos_grids = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) mm_tensor_free);
  return m;
}

MmVisionModel *
mm_vision_model_load (MmEngine * engine, const gchar * path, GError ** error)
{
  return mm_vision_model_load_with_options (engine, path, NULL, error);
}

void
mm_vision_model_free (MmVisionModel * m)
{
  if (m == NULL)
    return;
  mm_vision_weights_clear (&m->w, &m->hp);
  mm_image_prep_free (m->prep);
  g_hash_table_unref (m->traced);
  g_ptr_array_unref (m->pool);
  g_hash_table_unref (m->r_pos_grids);
  mm_graph_free (m->graph);
  mm_engine_unref (m->engine);
  g_free (m->id);
  g_free (m);
}

gint
mm_vision_model_n_tokens (MmVisionModel * m)
{
  return m->hp.n_tokens;
}

gint
mm_vision_model_dim (MmVisionModel * m)
{
  return m->hp.out_dim;
}

gint
mm_vision_model_image_size (MmVisionModel * m)
{
  return m->hp.image_size;
}

const gchar *
mm_vision_model_id (MmVisionModel * m)
{
  return m->id;
}

gdouble
mm_vision_model_last_ms (MmVisionModel * m)
{
  return m->last_ms;
}

gsize
mm_vision_model_scratch_bytes (MmVisionModel * m)
{
  return mm_graph_arena_size (m->graph);
}

/* 2 * multiply-adds of GEMMs (the rest is noise). */
gdouble
mm_vision_model_flops (MmVisionModel * m)
{
  const MmVisionHp *hp = &m->hp;
  double g = hp->image_size / hp->patch, np = g * g;
  double n = np + (hp->has_cls ? 1 : 0), d = hp->d;
  double f = np * d * 3.0 * hp->patch * hp->patch;
  f += hp->n_run * (n * d * d * 4 + 2 * n * n * d + 2 * n * d * hp->n_ff);
  double nf = hp->drop_cls ? np : n;
  switch (hp->proj) {
    case MM_PROJ_NONE:
      break;
    case MM_PROJ_MLP:
      f += nf * d * hp->n_feature_layers * hp->out_dim
          + nf * hp->out_dim * hp->out_dim;
      break;
    case MM_PROJ_IDEFICS3:
      f += np * d * hp->out_dim;
      break;
    case MM_PROJ_PERCEIVER:{
      double pd = hp->out_dim, L = hp->p_latents;
      double kvd = hp->p_n_kv_head * hp->p_head_dim;
      double qd = hp->p_n_head * hp->p_head_dim, nk = n + L;
      f += n * d * hp->mp_ff * 2 + n * hp->mp_ff * pd;
      f += hp->p_depth * (L * pd * qd + 2 * nk * pd * kvd + 2 * L * nk * qd
          + L * qd * pd + 3 * L * pd * hp->p_ff);
      break;
    }
    case MM_PROJ_MINICPMV:{
      double D = hp->r_dim, Q = hp->r_queries;
      f += (hp->r_has_kv_proj ? n * d * D : 0) + Q * D * D + 2 * n * D * D
          + 2 * Q * n * D + Q * D * D + Q * D * hp->out_dim;
      break;
    }
  }
  return 2.0 * f;
}
