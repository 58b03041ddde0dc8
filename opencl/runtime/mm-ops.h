/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Op wrappers: each checks shapes, takes its output from the graph's arena
 * and enqueues one or a few kernels without waiting.  After the graph's
 * first error every op returns the graph's dead tensor and does nothing.
 *
 * Conventions: activations are F32, row-major, [rows, cols]; weights of
 * linear layers are [out, in] in F32, F16 (or quantised types where the
 * GEMM provider supports them); biases and norm weights are F32 [n].
 */
#pragma once

#include "mm-tensor.h"

G_BEGIN_DECLS

typedef enum
{
  MM_ROPE_NORMAL,               /* rotate pairs (2i, 2i+1): llama.cpp "normal" */
  MM_ROPE_NEOX,                 /* rotate pairs (i, i + n_rot/2): HF rotate_half */
} MmRopeMode;

/* y = a + b; b broadcasts when its element count divides a's
 * (e.g. a bias [cols] or position embeddings [rows, cols] over a batch). */
MmTensor *mm_add (MmGraph * g, MmTensor * a, MmTensor * b);
MmTensor *mm_mul (MmGraph * g, MmTensor * a, MmTensor * b);
MmTensor *mm_scale (MmGraph * g, MmTensor * a, float s);

MmTensor *mm_gelu (MmGraph * g, MmTensor * x);          /* erf form */
MmTensor *mm_gelu_tanh (MmGraph * g, MmTensor * x);     /* tanh approximation */
MmTensor *mm_quick_gelu (MmGraph * g, MmTensor * x);    /* x * sigmoid(1.702 x) */
MmTensor *mm_silu (MmGraph * g, MmTensor * x);
/* silu(gate) * up */
MmTensor *mm_swiglu (MmGraph * g, MmTensor * gate, MmTensor * up);

/* Over the last dim; @w and @b may be NULL. */
MmTensor *mm_layer_norm (MmGraph * g, MmTensor * x, MmTensor * w,
    MmTensor * b, float eps);
MmTensor *mm_rms_norm (MmGraph * g, MmTensor * x, MmTensor * w, float eps);

/* Softmax over the last dim of (x * scale + mask).  x is [batch, rows, cols]
 * or [rows, cols]; @mask (nullable) is additive, [rows, cols], shared by
 * the batch.  @causal_offset >= 0 masks col j > row + causal_offset; pass
 * -1 for no causal mask. */
MmTensor *mm_softmax (MmGraph * g, MmTensor * x, MmTensor * mask,
    float scale, gint causal_offset);
/* mm_softmax without the division: rows hold exp (v - max (v)) and
 * @inv (out: a new [rows] tensor, rows of all batches) 1 / their sum, for
 * a GEMM's row scale (mm_gemm_epilogue) to apply. */
MmTensor *mm_softmax_unnormalised (MmGraph * g, MmTensor * x,
    MmTensor * mask, float scale, gint causal_offset, MmTensor ** inv);

/* x: [n_tok, n_head, head_dim]; token t has position pos0 + t.  Only the
 * first @n_rot dims of each head rotate. theta_i = pos * base^(-2i/n_rot)
 * * freq_scale. */
MmTensor *mm_rope (MmGraph * g, MmTensor * x, gint pos0, gint n_rot,
    float base, float freq_scale, MmRopeMode mode);

/* y[M, N] = x[M, K] . w[N, K]^T (+ b[N]); x may have leading dims, which
 * are flattened into M and restored in the output. */
MmTensor *mm_linear (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b);

/* Activations a linear layer can apply to its output (mm_gelu ...). */
typedef enum
{
  MM_LINEAR_ACT_NONE,
  MM_LINEAR_ACT_GELU,           /* erf form */
  MM_LINEAR_ACT_GELU_TANH,
  MM_LINEAR_ACT_QUICK_GELU,
  MM_LINEAR_ACT_SILU,
} MmLinearAct;

/* Work a linear layer's GEMM may do in the same pass (mm_linear_fused). */
typedef struct
{
  MmTensor *norm_w;             /* RMS-normalise x with this weight first */
  float eps;
  gboolean swiglu;              /* w is [gate; up] (2 F rows): silu (gate) * up */
  MmLinearAct act;              /* on the output (not with swiglu) */
  MmTensor *residual;           /* added to the output, [rows, out] */
} MmLinearFuse;

/* y = residual + act (rms_norm (x) . w^T + b), each part as @f asks (@f
 * nullable: mm_linear).  Quantised weights at decode sizes, and F32/F16
 * weights through our tiled GEMM (no norm, no swiglu), do it all in one
 * kernel; otherwise the plain ops run in turn.  Output [rows, F] with
 * swiglu, else [rows, out]. */
MmTensor *mm_linear_fused (MmGraph * g, MmTensor * x, MmTensor * w,
    MmTensor * b, const MmLinearFuse * f);
/* silu (x[:, :F]) * x[:, F:] of x [rows, 2 F]. */
MmTensor *mm_swiglu_split (MmGraph * g, MmTensor * x);

/* Multi-head attention.  q: [nq, n_head, d], k and v: [nk, n_kv_head, d]
 * (n_head a multiple of n_kv_head: grouped-query attention); @mask and
 * @causal_offset as in mm_softmax. Returns [nq, n_head * d]. */
MmTensor *mm_attention (MmGraph * g, MmTensor * q, MmTensor * k,
    MmTensor * v, MmTensor * mask, float scale, gint causal_offset);

/* Self-attention (no mask) on a fused projection qkv [n, 3 H d]: Q, K
 * and V column blocks, heads d apart in each.  Returns [n, H d].  Heads
 * go in groups whose scores take at most @max_scores_bytes (0: all heads
 * at once), given back to the arena after each group. */
MmTensor *mm_self_attention_qkv (MmGraph * g, MmTensor * qkv, gint n_head,
    float scale, gint64 max_scores_bytes);

/* KV cache of one decoder layer: keys head-major, k [n_kv_head, n_ctx, d],
 * values transposed, v [n_kv_head, d, n_ctx] (both B operands of the
 * attention GEMMs as they lie; no permutes per step). */
/* Writes k and v, [n, n_kv_head, d] (or any shape of that many elements),
 * at positions [pos0, pos0 + n). */
void mm_kv_store (MmGraph * g, MmTensor * k_cache, MmTensor * v_cache,
    gint pos0, MmTensor * k, MmTensor * v);
/* From a fused projection qkv [n, (n_head + 2 n_kv_head) d] (q, k, v
 * heads in that order): ropes q and k as mm_rope, stores k and v as
 * mm_kv_store, returns q [n, n_head, d]. */
MmTensor *mm_rope_qkv_store (MmGraph * g, MmTensor * qkv, gint n_head,
    gint pos0, gint n_rot, float base, float freq_scale, MmRopeMode mode,
    MmTensor * k_cache, MmTensor * v_cache);
/* mm_attention of q [nq, n_head, d] over the first @n_kv positions of a
 * cache.  Returns [nq, n_head * d]. */
MmTensor *mm_attention_cached (MmGraph * g, MmTensor * q, MmTensor * k_cache,
    MmTensor * v_cache, gint n_kv, float scale, gint causal_offset);

/* One Llama-family decoder layer: weights with Q, K, V stacked by rows
 * (attention heads q, then k, then v) and gate, up stacked ([gate; up],
 * 2 ffn rows). */
typedef struct
{
  MmTensor *attn_norm, *wqkv, *bqkv, *wo;       /* bqkv nullable */
  MmTensor *ffn_norm, *w_gate_up, *w_down;
  gint n_head;
  float eps;                    /* both RMS norms */
  gint n_rot;                   /* rope as mm_rope */
  float rope_base, rope_freq_scale;
  MmRopeMode rope_mode;
  float scale;                  /* attention logits */
  /* n_layers > 1: that many consecutive layers in one launch.  Each
   * tensor above is the first layer's; layer i's lies in the same buffer
   * @layer_stride * i bytes further, and its caches @kv_stride * i bytes
   * after the given ones (both multiples of 64). */
  gint n_layers;
  gsize layer_stride, kv_stride;
} MmDecoderLayer;

/* The whole layer for one token x [1, d] at position @pos, in one kernel:
 *   h = x + wo . attention (rope (wqkv . rms_norm (x) + bqkv))
 *   y = h + w_down . swiglu (w_gate_up . rms_norm (h))
 * storing the token's k and v in the caches (mm_kv_store's layout) and
 * attending over positions [0, pos]; with l->n_layers > 1, that many
 * layers in a row (each one's y the next one's x).  Returns y [1, d], or
 * NULL when the device or the weights are not ones it takes (CPU-class
 * devices; quantised panel weights; d, n_head head_dim and ffn multiples
 * of 32): the caller then composes the separate ops, which give the same
 * result. */
MmTensor *mm_decoder_layer_step (MmGraph * g, MmTensor * x,
    const MmDecoderLayer * l, MmTensor * k_cache, MmTensor * v_cache,
    gint pos);

/* Layout. */
MmTensor *mm_permute (MmGraph * g, MmTensor * x, const gint * perm);
MmTensor *mm_transpose (MmGraph * g, MmTensor * x);    /* 2-D */
/* Concatenate along dim 0 (rows) or along the last dim (@last_dim). */
MmTensor *mm_concat (MmGraph * g, MmTensor * a, MmTensor * b,
    gboolean last_dim);
/* Rows [row0, row0 + n) of a 2-D view of x (leading dims flattened). */
MmTensor *mm_slice_rows (MmGraph * g, MmTensor * x, gint64 row0, gint64 n);
/* Cols [col0, col0 + n) of each row. */
MmTensor *mm_slice_cols (MmGraph * g, MmTensor * x, gint64 col0, gint64 n);
/* Copies x into dst at element row @row0 (dst must have x's cols). */
void mm_copy_rows_into (MmGraph * g, MmTensor * dst, gint64 row0,
    MmTensor * x);
MmTensor *mm_copy (MmGraph * g, MmTensor * x);

/* Convolutions as GEMM.  image: [C, H, W]; w: [OC, C, KH, KW] (or already
 * flattened to [OC, C*KH*KW]); returns [OH * OW, OC] (token-major). */
MmTensor *mm_conv2d (MmGraph * g, MmTensor * image, MmTensor * w,
    MmTensor * b, gint kh, gint kw, gint stride, gint pad);
/* x: [C, L]; w: [OC, C, KW] (or [OC, C*KW]); returns [OL, OC]. */
MmTensor *mm_conv1d (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b,
    gint kw, gint stride, gint pad);
/* mm_conv1d with @act on its output (in the GEMM's last pass where it
 * can), from x [C, L], or with @x_rows from x [L, C] (positions as rows,
 * as a previous conv1d leaves them: no transpose first). */
MmTensor *mm_conv1d_ex (MmGraph * g, MmTensor * x, gboolean x_rows,
    MmTensor * w, MmTensor * b, gint kw, gint stride, gint pad,
    MmLinearAct act);

/* Row gather: table [n, d] (F32, F16, or quantised as uploaded by
 * mm_tensor_upload_planar), ids host array -> [n_ids, d] F32. */
MmTensor *mm_get_rows (MmGraph * g, MmTensor * table, const gint32 * ids,
    gint n_ids);

/* GEMM provider selection, per device; exposed for tests and bench. */
typedef enum
{
  MM_GEMM_AUTO,
  MM_GEMM_OWN,                  /* our kernels (CPU-class devices) */
  MM_GEMM_CLBLAST,              /* CLBlast (GPUs) */
} MmGemmProvider;

/* Batched C[b] = alpha * A[b] . B[b / b_div]^T (+ bias), A [M, K] rows lda,
 * B [N, K] rows ldb, C [M, N] rows ldc, batch strides in elements. */
typedef struct
{
  gint M, N, K, batch, b_div;
  gint64 lda, ldb, ldc, stride_a, stride_b, stride_c;
  float alpha;
} MmGemmShape;

void mm_gemm (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s);
/* MM_GEMM=own|clblast overrides the per-device default (CLBlast on GPUs
 * when built with it, our kernels elsewhere). */
MmGemmProvider mm_gemm_get_provider (MmEngine * e);

/* Optional, once at model load: re-lays a linear weight @w [out, in] (F32
 * or F16) in place into the panel layout our CPU-class GEMM kernels read
 * directly, so mm_linear no longer repacks it on every call (a pass over
 * the whole weight, ~10% of a large GEMM's time).  @w keeps its dtype and
 * logical shape, and mm_linear / mm_gemm (batch 1, ldb = K) take it as
 * before; any other op would read garbage, so pack only weights used by
 * mm_linear alone (not a tied embedding table).  Memory is unchanged up to
 * padding N to a multiple of 32.  Does nothing when the device's GEMM
 * provider is CLBlast.  On failure @w is unchanged. */
gboolean mm_gemm_pack_weight (MmEngine * e, MmTensor * w, GError ** error);
gboolean mm_gemm_weight_is_packed (MmTensor * w);

/* The longest row (K) for which a GEMV with quantised weights (Q8_0,
 * Q4_0, Q4_1; fewer than 16 rows of x: decode) takes its activations as
 * int16 on this device, each block of 32 values x as q s (q int16, s =
 * max |x| / 32767; gemm_quant.cl); 0 where it takes them as float
 * (devices other than x86 CPUs with AVX2 or AVX-512 BW).  -1 when the
 * device could not tell (@error set). */
gint mm_gemm_quant_int16_max_k (MmEngine * e, GError ** error);

G_END_DECLS
