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
  if (quant && (s->K % 32 || s->ldb % 32 || s->stride_b % 32)) {
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

/* Quantised weights (gemm_quant.cl): rows and batch strides in bytes. */
static void
gemm_quant (MmGraph * g, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s)
{
  gboolean gemv = s->M < 4;
  gchar k[32];
  gchar *t = g_ascii_strdown (mm_dtype_name (b->dtype), -1);
  g_snprintf (k, sizeof (k), "kernel_%s_%s", gemv ? "gemv" : "gemm", t);
  g_free (t);
  gint bb = mm_dtype_block_bytes (b->dtype);
  gsize gws[3] = { (s->N + 3) / 4, gemv ? s->M : (s->M + 3) / 4, s->batch };
  MM_LAUNCH (g, k, 3, gws, TRUE, MM_TENSOR (a), MM_UINT (s->lda),
      MM_UINT (s->stride_a), MM_TENSOR (b), MM_UINT (s->ldb / 32 * bb),
      MM_UINT (s->stride_b / 32 * bb), MM_UINT (s->b_div), MM_TENSOR (c),
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
