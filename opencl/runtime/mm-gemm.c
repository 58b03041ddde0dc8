/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GEMM providers: our CPU-class kernels (gemm.cl) and CLBlast on GPUs. */
#include "mm-ops.h"
#include "mm-launch.h"
#include "mm-clblast.h"

#include <stdio.h>
#include <string.h>

MmGemmProvider
mm_gemm_get_provider (MmEngine * e)
{
  const gchar *env = g_getenv ("MM_GEMM");
  if (env && g_ascii_strcasecmp (env, "own") == 0)
    return MM_GEMM_OWN;
  if (env && g_ascii_strcasecmp (env, "clblast") == 0 && mm_clblast_available ())
    return MM_GEMM_CLBLAST;
  if (mm_engine_device_class (e) == MM_DEVICE_CLASS_GPU
      && mm_clblast_available ())
    return MM_GEMM_CLBLAST;
  return MM_GEMM_OWN;
}

static gboolean
check_gemm (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  if (!mm_graph_ok (g))
    return FALSE;
  if (s->M <= 0 || s->N <= 0 || s->K <= 0 || s->batch <= 0 || s->b_div <= 0
      || s->lda < s->K || s->ldb < s->K || s->ldc < s->N) {
    mm_graph_failf (g, "gemm: invalid shape M=%d N=%d K=%d batch=%d",
        s->M, s->N, s->K, s->batch);
    return FALSE;
  }
  gint64 need_a = (s->batch - 1) * s->stride_a + (s->M - 1) * s->lda + s->K;
  gint64 need_b = ((s->batch - 1) / s->b_div) * s->stride_b
      + (s->N - 1) * s->ldb + s->K;
  gint64 need_c = (s->batch - 1) * s->stride_c + (s->M - 1) * s->ldc + s->N;
  if (need_a > mm_tensor_numel (a) || need_b > mm_tensor_numel (b)
      || need_c > mm_tensor_numel (c)
      || (bias && mm_tensor_numel (bias) < s->N)) {
    mm_graph_failf (g, "gemm: M=%d N=%d K=%d does not fit a %s, b %s, c %s",
        s->M, s->N, s->K, mm_tensor_shape_str (a), mm_tensor_shape_str (b),
        mm_tensor_shape_str (c));
    return FALSE;
  }
  gboolean quant = mm_dtype_block_elems (b->dtype) > 1;
  if (quant && (s->K % 32 || s->ldb != s->K)) {
    mm_graph_failf (g, "gemm: %s weights need K (%d) a multiple of 32",
        mm_dtype_name (b->dtype), s->K);
    return FALSE;
  }
  if (a->dtype != MM_DTYPE_F32 || c->dtype != MM_DTYPE_F32
      || (b->dtype != MM_DTYPE_F32 && b->dtype != MM_DTYPE_F16 && !quant)) {
    mm_graph_failf (g, "gemm: weight type %s is not supported by this GEMM "
        "provider", mm_dtype_name (b->dtype));
    return FALSE;
  }
  return TRUE;
}

/* Mirrors of gemm.cl's tile constants (GEMM_MR only sizes blocks here). */
#define GEMM_MR 12
#define GEMM_NR 32
#define PACK_KC 64

/* From this many rows of A on, packing B and running the tiled kernel
 * beats the dot-form kernels (packing B costs a pass over N x K per call,
 * which only pays off when enough rows reuse it).  Measured at N = K =
 * 768, dot form vs tiled in GFLOP per CPU-second (a loaded machine, so
 * +-15 %): M = 16: 45 vs 20, M = 32: 50 vs 31, M = 48: 49 vs 46, M = 64:
 * 44 vs 46-54, M = 128: 35 vs 54.  Weights packed at load time
 * (mm_gemm_pack_weight) take the tiled kernel from M = 4 on. */
#define TILED_MIN_M 48

/* Work-items per launch we aim for: PoCL's pthread device hands
 * work-groups (here: one work-item each) to its threads as they free up,
 * so 24 per core keep the cores balanced while each item still owns a
 * large block (and costs ~1 us to schedule, not more). */
static guint
target_items (MmGraph * g)
{
  cl_uint cu = 0;
  clGetDeviceInfo (mm_engine_device (mm_graph_engine (g)),
      CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  return 24 * CLAMP (cu, 2, 256);
}

/* Work-items for @units units of a kernel that claims them (claim_unit):
 * one per core on CPU-class devices, one per unit elsewhere. */
static gsize
claim_items (MmGraph * g, guint64 units)
{
  MmEngine *e = mm_graph_engine (g);
  if (mm_engine_device_class (e) != MM_DEVICE_CLASS_CPU)
    return units;
  return MIN (units, mm_engine_compute_units (e));
}

typedef struct
{
  guint MB, NB, KC;
} Blocking;

/* MB x NB block per work-item, KC K-slice.  KC x NR floats of packed B
 * (32 KiB at KC 256) stay in L1 while the work-item walks MB rows of
 * packed A (MB x KC, in L2). */
static Blocking
tiled_blocking (const MmGemmShape * s, guint target)
{
  Blocking bl;
  guint kblocks = CEIL_DIV (s->K, 256);
  bl.KC = CEIL_DIV (s->K, kblocks);
  bl.NB = MIN (ROUND_UP (s->N, GEMM_NR), 4 * GEMM_NR);
  bl.MB = MIN (ROUND_UP (s->M, GEMM_MR), 8 * GEMM_MR);
  /* split rows further while there are too few work-items */
  while (bl.MB > GEMM_MR && (guint64) CEIL_DIV (s->N, bl.NB) *
      CEIL_DIV (s->M, bl.MB) * s->batch < target)
    bl.MB -= GEMM_MR;
  while (bl.NB > GEMM_NR && (guint64) CEIL_DIV (s->N, bl.NB) *
      CEIL_DIV (s->M, bl.MB) * s->batch < target)
    bl.NB -= GEMM_NR;
  const gchar *env = g_getenv ("MM_GEMM_BLOCK");      /* tuning: "MB,NB,KC" */
  guint mb, nb, kc;
  if (env && sscanf (env, "%u,%u,%u", &mb, &nb, &kc) == 3 && mb > 0 && nb > 0
      && kc > 0) {
    bl.MB = ROUND_UP (mb, GEMM_MR);
    bl.NB = ROUND_UP (nb, GEMM_NR);
    bl.KC = kc;
  }
  return bl;
}

/* Packs B into the graph's arena unless @b is a packed weight, then runs
 * kernel_gemm_tiled_* (A is read in place), with @epi's extras (nullable).
 * F16 B stays F16 in its panels. */
static void
gemm_tiled_panels (MmGraph * g, MmTensor * a, MmTensor * bp,
    const MmGemmPanels * pl, MmTensor * bias, MmTensor * c,
    const MmGemmShape * s, const MmGemmEpilogue * epi);

static void
gemm_tiled (MmGraph * g, MmTensor * a, MmTensor * b, gboolean b_packed,
    MmTensor * bias, MmTensor * c, const MmGemmShape * s,
    const MmGemmEpilogue * epi)
{
  gboolean f16 = b->dtype == MM_DTYPE_F16;
  gint64 Np = ROUND_UP (s->N, GEMM_NR);
  gint64 nb = CEIL_DIV (s->batch, s->b_div), bs = nb * Np * s->K;
  MmTensor *bp = b;
  if (!b_packed) {
    bp = mm_graph_tensor (g, b->dtype, 1, &bs);
    gsize gb[3] = { CEIL_DIV (s->K, PACK_KC), Np / GEMM_NR, nb };
    MM_LAUNCH (g, f16 ? "kernel_gemm_pack_f16" : "kernel_gemm_pack_f32", 3,
        gb, TRUE, MM_TENSOR (b), MM_UINT (s->ldb), MM_UINT (s->stride_b),
        MM_UINT (s->N), MM_UINT (s->K), MM_TENSOR (bp), MM_UINT (GEMM_NR));
  }

  MmGemmPanels pl = {.stride_batch = Np * s->K,.stride_panel =
        GEMM_NR * s->K,.stride_k = GEMM_NR
  };
  gemm_tiled_panels (g, a, bp, &pl, bias, c, s, epi);
}

/* kernel_gemm_tiled_* on B in panels at @pl's strides. */
static void
gemm_tiled_panels (MmGraph * g, MmTensor * a, MmTensor * bp,
    const MmGemmPanels * pl, MmTensor * bias, MmTensor * c,
    const MmGemmShape * s, const MmGemmEpilogue * epi)
{
  static const MmGemmEpilogue none = { 0 };
  if (epi == NULL)
    epi = &none;
  gboolean f16 = bp->dtype == MM_DTYPE_F16;
  Blocking bl = tiled_blocking (s, target_items (g));
  guint nbx = CEIL_DIV (s->N, bl.NB), nby = CEIL_DIV (s->M, bl.MB);
  guint64 units = (guint64) nbx * nby * s->batch;
  gsize gws = claim_items (g, units);
  gboolean extras = epi->act || epi->residual || epi->row_scale;
  const gchar *k = extras ? (f16 ? "kernel_gemm_tiled_epi_f16" :
      "kernel_gemm_tiled_epi_f32") : (f16 ? "kernel_gemm_tiled_f16" :
      "kernel_gemm_tiled_f32");
  MM_LAUNCH (g, k, 1, &gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda), MM_UINT (s->stride_a),
      MM_TENSOR (bp), MM_UINT (s->b_div), MM_UINT (pl->stride_batch),
      MM_UINT (pl->stride_panel),
      MM_TENSOR (c), MM_UINT (s->ldc), MM_UINT (s->stride_c),
      MM_TENSOR (bias ? bias : c), MM_INT (bias != NULL), MM_UINT (s->M),
      MM_UINT (s->N), MM_UINT (s->K), MM_FLOAT (s->alpha), MM_UINT (bl.MB),
      MM_UINT (bl.NB), MM_UINT (bl.KC), MM_INT (epi->act),
      MM_TENSOR (epi->residual ? epi->residual : c), MM_UINT (epi->ldr),
      MM_UINT (epi->stride_r), MM_INT (epi->residual != NULL),
      MM_TENSOR (epi->row_scale ? epi->row_scale : c),
      MM_UINT (epi->stride_rs), MM_INT (epi->row_scale != NULL),
      MM_UINT (nbx), MM_UINT (nby), MM_UINT (units),
      MM_MEM (mm_engine_work_counter (mm_graph_engine (g))));
}

/* GEMV (M < 4) on a packed weight. */
static void
gemv_packed (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  guint64 panels = CEIL_DIV (s->N, GEMM_NR);
  guint64 split = MAX (1, CEIL_DIV (target_items (g), s->M));
  split = MIN (panels, split);
  guint NB = GEMM_NR * CEIL_DIV (panels, split);
  gsize gws[2] = { CEIL_DIV (s->N, NB), s->M };
  MM_LAUNCH (g, b->dtype == MM_DTYPE_F16 ? "kernel_gemv_packed_f16" :
      "kernel_gemv_packed_f32", 2, gws, TRUE, MM_TENSOR (a),
      MM_UINT (s->lda), MM_TENSOR (b), MM_TENSOR (c), MM_UINT (s->ldc),
      MM_TENSOR (bias ? bias : c), MM_INT (bias != NULL), MM_UINT (s->M),
      MM_UINT (s->N), MM_UINT (s->K), MM_FLOAT (s->alpha), MM_UINT (NB));
}

/* Dot-form kernels on B as stored: GEMV (M < 4) and small M. */
static void
gemm_dot (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  gboolean gemv = s->M < 4;
  const gchar *k = b->dtype == MM_DTYPE_F16 ?
      (gemv ? "kernel_gemv_f16" : "kernel_gemm_f16") :
      (gemv ? "kernel_gemv_f32" : "kernel_gemm_f32");
  guint64 row_tiles = (gemv ? s->M : CEIL_DIV (s->M, 4)) * (guint64) s->batch;
  /* split N so that there are about target_items () work-items */
  guint64 n_tiles = CEIL_DIV (s->N, 4);
  guint64 split = MAX (1, CEIL_DIV (target_items (g), row_tiles));
  split = MIN (n_tiles, split);
  guint NB = 4 * CEIL_DIV (n_tiles, split);
  gsize gws[3] = { CEIL_DIV (s->N, NB), row_tiles / s->batch, s->batch };
  MM_LAUNCH (g, k, 3, gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_UINT (s->stride_a), MM_TENSOR (b), MM_UINT (s->ldb),
      MM_UINT (s->stride_b), MM_UINT (s->b_div), MM_TENSOR (c),
      MM_UINT (s->ldc), MM_UINT (s->stride_c), MM_TENSOR (bias ? bias : c),
      MM_INT (bias != NULL), MM_UINT (s->M), MM_UINT (s->N), MM_UINT (s->K),
      MM_FLOAT (s->alpha), MM_UINT (NB));
}

/* ---- packed weights ----
 * Buffers that hold a weight in panel layout (mm_gemm_pack_weight), with
 * the shape they were packed for.  An entry lives exactly as long as its
 * cl_mem: OpenCL calls packed_buffer_gone when the buffer is destroyed. */
typedef struct
{
  gint64 N, K;
} PackedInfo;

static GMutex packed_lock;
static GHashTable *packed_bufs;         /* cl_mem -> PackedInfo */

static void CL_CALLBACK
packed_buffer_gone (cl_mem buf, void *user_data)
{
  g_mutex_lock (&packed_lock);
  g_hash_table_remove (packed_bufs, buf);
  g_mutex_unlock (&packed_lock);
}

static gboolean
lookup_packed (cl_mem buf, PackedInfo * info)
{
  g_mutex_lock (&packed_lock);
  PackedInfo *p = packed_bufs ? g_hash_table_lookup (packed_bufs, buf) : NULL;
  if (p)
    *info = *p;
  g_mutex_unlock (&packed_lock);
  return p != NULL;
}

gboolean
mm_gemm_weight_is_packed (MmTensor * w)
{
  PackedInfo info;
  return w && w->buf && lookup_packed (w->buf, &info);
}

gboolean
mm_gemm_pack_weight (MmEngine * e, MmTensor * w, GError ** error)
{
  if (mm_gemm_get_provider (e) != MM_GEMM_OWN || mm_gemm_weight_is_packed (w))
    return TRUE;
  if (w->n_dims != 2
      || (w->dtype != MM_DTYPE_F32 && w->dtype != MM_DTYPE_F16)) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "gemm_pack_weight: weight %s %s must be a 2-D F32 or F16 [out, in]",
        mm_dtype_name (w->dtype), mm_tensor_shape_str (w));
    return FALSE;
  }
  gint64 N = w->shape[0], K = w->shape[1], Np = ROUND_UP (N, GEMM_NR);
  gsize esize = mm_dtype_size (w->dtype, 1);
  cl_mem buf = mm_engine_alloc (e, Np * K * esize, "packed weight", error);
  if (buf == NULL)
    return FALSE;
  MmTensor packed = *w;
  packed.buf = buf;
  packed.offset = 0;
  MmGraph *g = mm_graph_new (e);
  gsize gws[3] = { CEIL_DIV (K, PACK_KC), Np / GEMM_NR, 1 };
  MM_LAUNCH (g, w->dtype == MM_DTYPE_F16 ? "kernel_gemm_pack_f16" :
      "kernel_gemm_pack_f32", 3, gws, TRUE, MM_TENSOR (w), MM_UINT (K),
      MM_UINT (0), MM_UINT (N), MM_UINT (K), MM_TENSOR (&packed),
      MM_UINT (GEMM_NR));
  gboolean ok = mm_graph_finish (g, error);
  mm_graph_free (g);
  if (!ok) {
    clReleaseMemObject (buf);
    return FALSE;
  }
  g_mutex_lock (&packed_lock);
  if (packed_bufs == NULL)
    packed_bufs = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  PackedInfo *info = g_new (PackedInfo, 1);
  info->N = N;
  info->K = K;
  g_hash_table_insert (packed_bufs, buf, info);
  g_mutex_unlock (&packed_lock);
  clSetMemObjectDestructorCallback (buf, packed_buffer_gone, NULL);
  if (w->owns_buf)
    clReleaseMemObject (w->buf);
  w->buf = buf;
  w->offset = 0;
  w->owns_buf = TRUE;
  return TRUE;
}

static void
gemm_own (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  PackedInfo info;
  if (lookup_packed (b->buf, &info)) {
    if (info.N != s->N || info.K != s->K || s->ldb != s->K || s->batch != 1
        || b->offset != 0) {
      mm_graph_failf (g, "gemm: packed weight [%" G_GINT64_FORMAT ", %"
          G_GINT64_FORMAT "] used as a strided or batched B (M=%d N=%d K=%d "
          "batch=%d); packed weights serve mm_linear only", info.N, info.K,
          s->M, s->N, s->K, s->batch);
      return;
    }
    if (s->M < 4)
      gemv_packed (g, a, b, bias, c, s);
    else
      gemm_tiled (g, a, b, TRUE, bias, c, s, NULL);
  } else if (s->M >= TILED_MIN_M) {
    gemm_tiled (g, a, b, FALSE, bias, c, s, NULL);
  } else {
    gemm_dot (g, a, b, bias, c, s);
  }
}

/* Mirrors of gemm_quant.cl: rows per panel (QP), rows per register tile
 * of the tiled kernel (QT_MR). */
#define QUANT_QP 32
#define QUANT_MR 12

/* From this many rows of A on, quantised GEMMs run the register-tiled
 * kernel (each unpacked value serves 12 rows) instead of the GEMV. */
#define MM_QUANT_DEQUANT_MIN_M 16

/* GEMV-sized work on quantised panels, with @f's extras (nullable; the
 * caller checked them). */
static void
quant_gemv (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s, const MmLinearFuse * f)
{
  gchar *t = g_ascii_strdown (mm_dtype_name (b->dtype), -1);
  gchar *k = g_strconcat ("kernel_gemv_", t, NULL);
  gboolean swiglu = f && f->swiglu;
  MmTensor *res = f ? f->residual : NULL, *nw = f ? f->norm_w : NULL;
  guint64 panels = CEIL_DIV (swiglu ? s->N / 2 : s->N, QUANT_QP);
  gsize gws = claim_items (g, panels);
  MM_LAUNCH (g, k, 1, &gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_TENSOR (b), MM_TENSOR (c), MM_UINT (s->ldc),
      MM_TENSOR (bias ? bias : c), MM_INT (bias != NULL),
      MM_TENSOR (res ? res : c), MM_UINT (res ? mm_tensor_cols (res) : 0),
      MM_INT (res != NULL), MM_TENSOR (nw ? nw : c), MM_INT (nw != NULL),
      MM_FLOAT (f ? f->eps : 0.0f), MM_UINT (s->M), MM_UINT (s->N),
      MM_UINT (s->K), MM_FLOAT (s->alpha), MM_INT (swiglu),
      MM_MEM (mm_engine_work_counter (mm_graph_engine (g))));
  g_free (k);
  g_free (t);
}

/* Prefill-sized work on quantised panels (register-tiled, each
 * work-item unpacking its panels), with @f's norm and residual
 * (nullable; no swiglu).  Blocks: rows in blocks of up to 8 tiles (each
 * block unpacks its panels once: taller blocks unpack less), panels split
 * for about half of target_items () work-items, K slices of at most 8
 * quantised blocks (32 KiB unpacked, in L1). */
static void
quant_tiled (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s, const MmLinearFuse * f)
{
  guint64 panels = CEIL_DIV (s->N, QUANT_QP), nblk = s->K / 32;
  guint MB = MIN (ROUND_UP (s->M, QUANT_MR), 8 * QUANT_MR);
  guint64 mblocks = CEIL_DIV (s->M, MB);
  guint64 want = MAX (1, target_items (g) / 2 / mblocks);
  guint NBP = CEIL_DIV (panels, MIN (panels, want));
  guint KC = 32 * CEIL_DIV (nblk, CEIL_DIV (nblk, 8));
  const gchar *env = g_getenv ("MM_QGEMM_BLOCK");       /* tuning: MB,NBP,KC */
  guint mb, nbp, kc;
  if (env && sscanf (env, "%u,%u,%u", &mb, &nbp, &kc) == 3 && mb && nbp
      && kc) {
    MB = MIN (ROUND_UP (mb, QUANT_MR), 8 * QUANT_MR);
    NBP = nbp;
    KC = MIN (ROUND_UP (kc, 32), 256);
  }
  MmTensor *res = f ? f->residual : NULL, *nw = f ? f->norm_w : NULL;
  gchar *t = g_ascii_strdown (mm_dtype_name (b->dtype), -1);
  gchar *k = g_strconcat ("kernel_gemm_", t, NULL);
  gsize gws[2] = { CEIL_DIV (panels, NBP), CEIL_DIV (s->M, MB) };
  MM_LAUNCH (g, k, 2, gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_TENSOR (b), MM_TENSOR (c), MM_UINT (s->ldc),
      MM_TENSOR (bias ? bias : c), MM_INT (bias != NULL),
      MM_TENSOR (res ? res : c), MM_UINT (res ? mm_tensor_cols (res) : 0),
      MM_INT (res != NULL), MM_TENSOR (nw ? nw : c), MM_INT (nw != NULL),
      MM_FLOAT (f ? f->eps : 0.0f), MM_UINT (s->M), MM_UINT (s->N),
      MM_UINT (s->K), MM_FLOAT (s->alpha), MM_UINT (MB), MM_UINT (NBP),
      MM_UINT (KC));
  g_free (k);
  g_free (t);
}

gint
mm_gemm_quant_int16_max_k (MmEngine * e, GError ** error)
{
  MmGraph *g = mm_graph_new (e);
  gint64 one = 1;
  gint32 v = -1;
  MmTensor *y = mm_graph_tensor (g, MM_DTYPE_I32, 1, &one);
  gsize gws = 1;
  if (mm_graph_ok (g))
    MM_LAUNCH (g, "kernel_qx_info", 1, &gws, TRUE, MM_TENSOR (y));
  if (!mm_graph_finish (g, error)
      || !mm_engine_read (e, y->buf, y->offset, sizeof v, &v, error))
    v = -1;
  mm_graph_free (g);
  return v;
}

/* Quantised weights (gemm_quant.cl, panel layout of
 * mm_tensor_upload_planar). */
static void
gemm_quant (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  if (!b->planar || s->batch > 1) {
    mm_graph_failf (g, "gemm: %s weights must be uploaded as panels "
        "(mm_tensor_upload_planar) and used unbatched",
        mm_dtype_name (b->dtype));
    return;
  }
  if (s->M < MM_QUANT_DEQUANT_MIN_M)
    quant_gemv (g, a, b, bias, c, s, NULL);
  else
    quant_tiled (g, a, b, bias, c, s, NULL);
}

MmTensor *
mm_gemm_linear_fused (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b,
    const MmLinearFuse * f)
{
  gint64 K = mm_tensor_cols (x), M = mm_tensor_rows (x), N = w->shape[0];
  if (mm_dtype_block_elems (w->dtype) == 1 || !w->planar || K % 32 || f->act)
    return NULL;
  gboolean gemv = M < MM_QUANT_DEQUANT_MIN_M;
  if (gemv && f->swiglu && (N / 2) % QUANT_QP)
    return NULL;
  /* the tiled kernel leaves SwiGLU (and then the residual) to plain ops */
  gboolean split = !gemv && f->swiglu;
  gint64 shape[MM_MAX_DIMS];
  memcpy (shape, x->shape, sizeof (shape));
  shape[x->n_dims - 1] = f->swiglu && !split ? N / 2 : N;
  MmTensor *y = mm_graph_tensor (g, MM_DTYPE_F32, x->n_dims, shape);
  MmGemmShape s = { .M = M, .N = N, .K = K, .batch = 1, .b_div = 1,
    .lda = K, .ldb = K, .ldc = shape[x->n_dims - 1], .alpha = 1.0f
  };
  if (gemv) {
    quant_gemv (g, x, w, b, y, &s, f);
    return y;
  }
  MmLinearFuse ft = *f;
  ft.swiglu = FALSE;
  if (split)
    ft.residual = NULL;
  quant_tiled (g, x, w, b, y, &s, &ft);
  if (split) {
    y = mm_swiglu_split (g, y);
    if (f->residual)
      y = mm_add (g, y, f->residual);
  }
  return y;
}

gboolean
mm_gemm_epilogue (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s, const MmGemmEpilogue * epi)
{
  if (!mm_graph_ok (g) || mm_dtype_block_elems (b->dtype) > 1
      || mm_gemm_get_provider (mm_graph_engine (g)) != MM_GEMM_OWN)
    return FALSE;
  PackedInfo info;
  gboolean packed = lookup_packed (b->buf, &info);
  if (packed ? s->M < 4 || s->batch != 1 : s->M < TILED_MIN_M)
    return FALSE;
  if (!check_gemm (g, a, b, bias, c, s))
    return TRUE;                /* the sticky error is set */
  if (packed && (info.N != s->N || info.K != s->K || s->ldb != s->K
          || b->offset != 0)) {
    mm_graph_failf (g, "gemm: packed weight used with another shape");
    return TRUE;
  }
  gemm_tiled (g, a, b, packed, bias, c, s, epi);
  return TRUE;
}

MmTensor *
mm_gemm_pack_rows (MmGraph * g, MmTensor * src, gint64 ld, gint64 sbatch,
    gint N, gint K, gint batch, MmGemmPanels * pl)
{
  gint64 n = (gint64) batch * N * K;
  MmTensor *dst = mm_graph_tensor (g, MM_DTYPE_F32, 1, &n);
  if (mm_graph_ok (g) && (N % GEMM_NR || (batch - 1) * sbatch + (K - 1) * ld
          + N > mm_tensor_numel (src))) {
    mm_graph_failf (g, "gemm_pack_rows: %d x %d x %d does not fit %s", batch,
        K, N, mm_tensor_shape_str (src));
    return mm_graph_dead (g);
  }
  gsize gws[3] = { CEIL_DIV (K, PACK_KC), N / GEMM_NR, batch };
  MM_LAUNCH (g, "kernel_gemm_pack_rows_f32", 3, gws, TRUE, MM_TENSOR (src),
      MM_UINT (ld), MM_UINT (sbatch), MM_UINT (N), MM_UINT (K),
      MM_TENSOR (dst));
  pl->stride_batch = (gint64) N * K;
  pl->stride_panel = (gint64) GEMM_NR * K;
  pl->stride_k = GEMM_NR;
  return dst;
}

/* Mirror of attention.cl's FA_D_MAX. */
#define FLASH_D_MAX 256

/* MM_NO_FLASH, read once */
static gboolean
no_flash (void)
{
  static gsize once = 0;
  static gboolean set;
  if (g_once_init_enter (&once)) {
    set = g_getenv ("MM_NO_FLASH") != NULL;
    g_once_init_leave (&once, 1);
  }
  return set;
}

gboolean
mm_attention_flash (MmGraph * g, MmTensor * q, gint64 ldq, MmTensor * k,
    gint64 ldk, MmTensor * v, gint64 ldv, gint64 nq, gint64 nk, gint64 H,
    gint64 Hkv, gint64 d, float scale, MmTensor * o, gint64 ldo)
{
  MmEngine *e = mm_graph_engine (g);
  if (!mm_graph_ok (g) || mm_engine_device_class (e) != MM_DEVICE_CLASS_CPU
      || mm_gemm_get_provider (e) != MM_GEMM_OWN || d % GEMM_NR
      || d > FLASH_D_MAX || nq < 4 || nk <= 0 || Hkv <= 0 || H % Hkv
      || no_flash ())
    return FALSE;
  if (q->dtype != MM_DTYPE_F32 || k->dtype != MM_DTYPE_F32
      || v->dtype != MM_DTYPE_F32 || o->dtype != MM_DTYPE_F32
      || (nq - 1) * ldq + H * d > mm_tensor_numel (q)
      || (nk - 1) * ldk + Hkv * d > mm_tensor_numel (k)
      || (nk - 1) * ldv + Hkv * d > mm_tensor_numel (v)
      || (nq - 1) * ldo + H * d > mm_tensor_numel (o)) {
    mm_graph_failf (g, "attention_flash: %" G_GINT64_FORMAT " queries, %"
        G_GINT64_FORMAT " keys, %" G_GINT64_FORMAT " heads of %"
        G_GINT64_FORMAT " do not fit q %s, k %s, v %s, o %s", nq, nk, H, d,
        mm_tensor_shape_str (q), mm_tensor_shape_str (k),
        mm_tensor_shape_str (v), mm_tensor_shape_str (o));
    return TRUE;
  }
  /* K per KV head into panels [nk / 32][d][32], V into [d / 32][nk][32] */
  gint64 nkp = ROUND_UP (nk, GEMM_NR), ks = Hkv * nkp * d;
  MmTensor *kp = mm_graph_tensor (g, MM_DTYPE_F32, 1, &ks);
  gsize gk[3] = { CEIL_DIV (d, PACK_KC), nkp / GEMM_NR, Hkv };
  MM_LAUNCH (g, "kernel_gemm_pack_f32", 3, gk, TRUE, MM_TENSOR (k),
      MM_UINT (ldk), MM_UINT (d), MM_UINT (nk), MM_UINT (d), MM_TENSOR (kp),
      MM_UINT (GEMM_NR));
  MmGemmPanels pl;
  MmTensor *vp = mm_gemm_pack_rows (g, v, ldv, d, d, nk, Hkv, &pl);
  guint64 units = H * CEIL_DIV (nq, GEMM_MR);
  gsize gws = claim_items (g, units);
  MM_LAUNCH (g, "kernel_flash_attn_f32", 1, &gws, TRUE, MM_TENSOR (q),
      MM_UINT (ldq), MM_TENSOR (kp), MM_TENSOR (vp), MM_TENSOR (o),
      MM_UINT (ldo), MM_UINT (nq), MM_UINT (nk), MM_UINT (H), MM_UINT (Hkv),
      MM_UINT (d), MM_FLOAT (scale), MM_MEM (mm_engine_work_counter (e)));
  return TRUE;
}

gboolean
mm_gemm_panels_supported (MmGraph * g, gint M, gint N)
{
  return mm_gemm_get_provider (mm_graph_engine (g)) == MM_GEMM_OWN
      && N % GEMM_NR == 0 && M >= 4;
}

gboolean
mm_gemm_panels (MmGraph * g, MmTensor * a, MmTensor * b,
    const MmGemmPanels * pl, MmTensor * c, const MmGemmShape * s,
    const MmGemmEpilogue * epi)
{
  if (!mm_graph_ok (g) || b->dtype != MM_DTYPE_F32
      || !mm_gemm_panels_supported (g, s->M, s->N))
    return FALSE;
  if (pl->stride_k != GEMM_NR) {
    mm_graph_failf (g, "gemm_panels: panel rows must be %d floats apart",
        GEMM_NR);
    return TRUE;
  }
  gint64 nb = CEIL_DIV (s->batch, s->b_div);
  gint64 need_b = (nb - 1) * pl->stride_batch + (s->N / GEMM_NR - 1)
      * pl->stride_panel + (s->K - 1) * pl->stride_k + GEMM_NR;
  gint64 need_a = (s->batch - 1) * s->stride_a + (s->M - 1) * s->lda + s->K;
  gint64 need_c = (s->batch - 1) * s->stride_c + (s->M - 1) * s->ldc + s->N;
  if (s->K <= 0 || s->batch <= 0 || s->b_div <= 0 || s->lda < s->K
      || s->ldc < s->N || need_b > mm_tensor_numel (b)
      || need_a > mm_tensor_numel (a) || need_c > mm_tensor_numel (c)
      || a->dtype != MM_DTYPE_F32 || c->dtype != MM_DTYPE_F32) {
    mm_graph_failf (g, "gemm_panels: M=%d N=%d K=%d batch=%d does not fit "
        "a %s, b %s, c %s", s->M, s->N, s->K, s->batch,
        mm_tensor_shape_str (a), mm_tensor_shape_str (b),
        mm_tensor_shape_str (c));
    return TRUE;
  }
  gemm_tiled_panels (g, a, b, pl, NULL, c, s, epi);
  return TRUE;
}

void
mm_gemm (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  if (!check_gemm (g, a, b, bias, c, s))
    return;
  if (mm_dtype_block_elems (b->dtype) > 1) {
    gemm_quant (g, a, b, bias, c, s);
    return;
  }
  MmEngine *e = mm_graph_engine (g);
  if (b->dtype == MM_DTYPE_F32 && mm_gemm_get_provider (e) == MM_GEMM_CLBLAST
      && !mm_gemm_weight_is_packed (b)) {
    GError *err = NULL;
    if (mm_clblast_gemm (e, a, b, bias, c, s, &err))
      return;
    /* CLBlast rejects some shapes on some devices: our kernels run
     * everywhere, so fall back rather than fail the forward. */
    g_debug ("%s; using mm's own GEMM kernel", err->message);
    g_error_free (err);
  }
  gemm_own (g, a, b, bias, c, s);
}
