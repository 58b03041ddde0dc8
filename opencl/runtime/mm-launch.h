/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: kernel launch with typed arguments, for op wrappers only. */
#pragma once

#include "mm-ops.h"

G_BEGIN_DECLS

typedef struct
{
  gint kind;                    /* 0 mem, 1 int, 2 uint, 3 float, 4 ulong */
  union
  {
    cl_mem m;
    cl_int i;
    cl_uint u;
    cl_float f;
    cl_ulong ul;
  } v;
} MmArg;

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define ROUND_UP(a, b) (CEIL_DIV (a, b) * (b))

#define MM_MEM(x) ((MmArg) { .kind = 0, .v.m = (x) })
#define MM_INT(x) ((MmArg) { .kind = 1, .v.i = (cl_int) (x) })
#define MM_UINT(x) ((MmArg) { .kind = 2, .v.u = (cl_uint) (x) })
#define MM_FLOAT(x) ((MmArg) { .kind = 3, .v.f = (cl_float) (x) })
#define MM_ULONG(x) ((MmArg) { .kind = 4, .v.ul = (cl_ulong) (x) })
/* A tensor as (buffer, offset in elements of its dtype). */
#define MM_TENSOR(t) MM_MEM ((t)->buf), MM_UINT (mm_tensor_elem_offset (t))

guint mm_tensor_elem_offset (const MmTensor * t);

/* Enqueues @kernel with @global work size (local size 1 when @local_one,
 * else the driver's choice).  Failures become the graph's sticky error. */
void mm_launch (MmGraph * g, const gchar * kernel, guint dims,
    const gsize * global, gboolean local_one, guint n_args,
    const MmArg * args);

#define MM_LAUNCH(g, kernel, dims, global, local_one, ...)                  \
  G_STMT_START {                                                            \
    const MmArg _mm_args[] = { __VA_ARGS__ };                               \
    mm_launch ((g), (kernel), (dims), (global), (local_one),                \
        G_N_ELEMENTS (_mm_args), _mm_args);                                 \
  } G_STMT_END

/* Extras of the tiled F32/F16 GEMM's last pass (mm_gemm_epilogue):
 *   C = residual + act (alpha row_scale . A B^T + bias)
 * each part optional; row_scale [batch][M] (F32, batch stride stride_rs),
 * residual [batch][M, ldr] (batch stride stride_r). */
typedef struct
{
  MmLinearAct act;
  MmTensor *residual;
  guint ldr, stride_r;
  MmTensor *row_scale;
  guint stride_rs;
} MmGemmEpilogue;

/* mm_gemm with @epi, when our tiled kernel takes the shape (own GEMM
 * provider, F32 or F16 B, enough rows of A): returns FALSE without doing
 * anything otherwise, so the caller composes the plain ops. */
gboolean mm_gemm_epilogue (MmGraph * g, MmTensor * a, MmTensor * b,
    MmTensor * bias, MmTensor * c, const MmGemmShape * s,
    const MmGemmEpilogue * epi);

/* B of a GEMM already in panels of 32 columns (N a multiple of 32):
 * element (n, k) of batch b at (b / b_div) stride_batch + (n / 32)
 * stride_panel + k stride_k + n % 32, in elements from B's offset
 * (stride_k: 32, the panel's rows contiguous). */
typedef struct
{
  gint64 stride_batch, stride_panel, stride_k;
} MmGemmPanels;

/* mm_gemm (no bias) on such a B, with @epi (nullable), when our tiled
 * kernel runs on this device (own GEMM provider, F32, M >= 4, N a
 * multiple of 32); FALSE without doing anything otherwise. */
gboolean mm_gemm_panels (MmGraph * g, MmTensor * a, MmTensor * b,
    const MmGemmPanels * pl, MmTensor * c, const MmGemmShape * s,
    const MmGemmEpilogue * epi);
/* Copies batch matrices [K, N] (element (k, n) of batch b at b sbatch
 * + k ld + n in @src) into panels for mm_gemm_panels, whose strides it
 * sets in @pl: a pass of plain row copies (V into the B of P . V).  N a
 * multiple of 32. */
MmTensor *mm_gemm_pack_rows (MmGraph * g, MmTensor * src, gint64 ld,
    gint64 sbatch, gint N, gint K, gint batch, MmGemmPanels * pl);
/* Fused attention (kernel_flash_attn_f32: no score matrix, an online
 * softmax over key blocks) on CPU-class devices with our own GEMMs, for
 * d a multiple of 32 up to 256, at least 4 queries, no mask: q, k, v are
 * flat views at head 0 of their first row, rows ldq / ldk / ldv apart,
 * heads d apart (Hkv KV heads, H / Hkv query heads each); the result
 * goes to o, rows ldo apart.  FALSE (nothing done) when the shape or
 * device is not one it takes, or MM_NO_FLASH is set (for bench/: the
 * unfused path, to compare). */
gboolean mm_attention_flash (MmGraph * g, MmTensor * q, gint64 ldq,
    MmTensor * k, gint64 ldk, MmTensor * v, gint64 ldv, gint64 nq,
    gint64 nk, gint64 H, gint64 Hkv, gint64 d, float scale, MmTensor * o,
    gint64 ldo);

/* Whether mm_gemm_panels takes F32 work of this M and N here. */
gboolean mm_gemm_panels_supported (MmGraph * g, gint M, gint N);

/* mm_linear_fused in one kernel (quantised @w, GEMV-sized @x): returns
 * the output, or NULL when the weight or size is not one it takes (the
 * caller composes plain ops).  Shapes are the caller's to check. */
MmTensor *mm_gemm_linear_fused (MmGraph * g, MmTensor * x, MmTensor * w,
    MmTensor * b, const MmLinearFuse * f);

G_END_DECLS
