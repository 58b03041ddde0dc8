/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GEMM providers: our CPU-class kernels (gemm.cl) and CLBlast on GPUs. */
#include "mm-ops.h"
#include "mm-launch.h"
#include "mm-clblast.h"

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

static void
gemm_own (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  gboolean gemv = s->M < 4;
  const gchar *k = b->dtype == MM_DTYPE_F16 ?
      (gemv ? "kernel_gemv_f16" : "kernel_gemm_f16") :
      (gemv ? "kernel_gemv_f32" : "kernel_gemm_f32");
  gsize gws[3] = { (s->N + 3) / 4, gemv ? s->M : (s->M + 3) / 4, s->batch };
  MM_LAUNCH (g, k, 3, gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_UINT (s->stride_a), MM_TENSOR (b), MM_UINT (s->ldb),
      MM_UINT (s->stride_b), MM_UINT (s->b_div), MM_TENSOR (c),
      MM_UINT (s->ldc), MM_UINT (s->stride_c), MM_TENSOR (bias ? bias : c),
      MM_INT (bias != NULL), MM_UINT (s->M), MM_UINT (s->N), MM_UINT (s->K),
      MM_FLOAT (s->alpha));
}

/* Work-items of a GEMV launch: enough for any CPU-class device's cores,
 * few enough that PoCL's per-work-group cost stays small. */
#define MM_GEMV_WORK_ITEMS 256

/* From this many rows of A on, quantised GEMMs unpack the weight to F32
 * first: fused unpacking costs more than one pass over the weight. */
#define MM_QUANT_DEQUANT_MIN_M 16

/* Quantised weights (gemm_quant.cl): rows and batch strides in bytes. */
static void
gemm_quant (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  gboolean gemv = s->M < 4;
  if (!b->planar || (s->batch > 1 && s->b_div < s->batch)) {
    mm_graph_failf (g, "gemm: %s weights must be uploaded planar "
        "(mm_tensor_upload_planar) and shared by the whole batch",
        mm_dtype_name (b->dtype));
    return;
  }
  gint64 qrow = b->dtype == MM_DTYPE_Q8_0 ? s->K : s->K / 2;
  gint64 rows = mm_tensor_rows (b);
  gchar *t = g_ascii_strdown (mm_dtype_name (b->dtype), -1);
  gchar k[48];
  if (s->M >= MM_QUANT_DEQUANT_MIN_M) {
    /* prefill: unpack the weight once, then the F32 GEMM */
    g_snprintf (k, sizeof (k), "kernel_dequant_planar_%s", t);
    g_free (t);
    MmTensor *w = mm_graph_tensor_2d (g, rows, s->K);
    gsize dws[2] = { s->K / 32, rows };
    MM_LAUNCH (g, k, 2, dws, FALSE, MM_TENSOR (b), MM_UINT (qrow),
        MM_UINT (rows * qrow), MM_UINT (rows * qrow + rows * (s->K / 32) * 2),
        MM_UINT (s->K), MM_TENSOR (w));
    if (mm_graph_ok (g))
      gemm_own (g, a, w, bias, c, s);
    return;
  }
  g_snprintf (k, sizeof (k), "kernel_%s_%s", gemv ? "gemv" : "gemm", t);
  g_free (t);
  gsize tiles = (s->N + 3) / 4;
  gsize gws[3] = { gemv ? MIN (tiles, MM_GEMV_WORK_ITEMS) : tiles,
    gemv ? s->M : (s->M + 3) / 4, s->batch
  };
  MM_LAUNCH (g, k, 3, gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_UINT (s->stride_a), MM_TENSOR (b), MM_UINT (qrow),
      MM_UINT (rows * qrow), MM_UINT (rows * qrow + rows * (s->K / 32) * 2),
      MM_TENSOR (c),
      MM_UINT (s->ldc), MM_UINT (s->stride_c), MM_TENSOR (bias ? bias : c),
      MM_INT (bias != NULL), MM_UINT (s->M), MM_UINT (s->N), MM_UINT (s->K),
      MM_FLOAT (s->alpha));
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
  if (b->dtype == MM_DTYPE_F32 && mm_gemm_get_provider (e) == MM_GEMM_CLBLAST) {
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
