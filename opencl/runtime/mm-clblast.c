/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-clblast.h"
#include "mm-launch.h"

#ifdef MM_HAVE_CLBLAST
#include <clblast_c.h>

gboolean
mm_clblast_available (void)
{
  return TRUE;
}

static gboolean
check (CLBlastStatusCode st, const gchar * what, GError ** error)
{
  if (st == CLBlastSuccess)
    return TRUE;
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OPENCL,
      "CLBlast %s failed with status %d", what, (int) st);
  return FALSE;
}

gboolean
mm_clblast_gemm (MmEngine * e, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s, GError ** error)
{
  cl_command_queue q = mm_engine_queue (e);
  gsize ao = mm_tensor_elem_offset (a), bo = mm_tensor_elem_offset (b);
  gsize co = mm_tensor_elem_offset (c);
  gboolean ok = TRUE;
  /* Bias first (C = broadcast bias, then C += A.B^T); without bias, beta 0. */
  float beta = 0.0f;
  if (bias) {
    gsize bias_o = mm_tensor_elem_offset (bias);
    mm_engine_lock (e);
    for (gint bt = 0; bt < s->batch && ok; bt++)
      for (gint m = 0; m < s->M && ok; m++)
        ok = mm_cl_check (clEnqueueCopyBuffer (q, bias->buf, c->buf,
                bias_o * 4, (co + bt * s->stride_c + m * s->ldc) * 4,
                s->N * 4, 0, NULL, NULL), "gemm bias copy", error);
    mm_engine_unlock (e);
    beta = 1.0f;
  }
  mm_engine_lock (e);
  for (gint grp = 0; grp < s->batch && ok; grp += s->b_div) {
    /* one strided-batched call per group sharing the same B */
    gint nb = MIN (s->b_div, s->batch - grp);
    CLBlastStatusCode st = s->batch == 1 ?
        CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo,
        CLBlastTransposeYes, s->M, s->N, s->K, s->alpha, a->buf, ao, s->lda,
        b->buf, bo, s->ldb, beta, c->buf, co, s->ldc, &q, NULL) :
        CLBlastSgemmStridedBatched (CLBlastLayoutRowMajor,
        CLBlastTransposeNo, CLBlastTransposeYes, s->M, s->N, s->K, s->alpha,
        a->buf, ao + grp * s->stride_a, s->lda, s->stride_a,
        b->buf, bo + (grp / s->b_div) * s->stride_b, s->ldb, 0,
        beta, c->buf, co + grp * s->stride_c, s->ldc, s->stride_c, nb, &q,
        NULL);
    ok = check (st, "SgemmStridedBatched", error);
  }
  mm_engine_unlock (e);
  return ok;
}

#else

gboolean
mm_clblast_available (void)
{
  return FALSE;
}

gboolean
mm_clblast_gemm (MmEngine * e, MmTensor * a, MmTensor * b, MmTensor * bias,
    MmTensor * c, const MmGemmShape * s, GError ** error)
{
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
      "mm was built without CLBlast");
  return FALSE;
}
#endif
