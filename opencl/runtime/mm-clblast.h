/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: the CLBlast GEMM provider (mm-clblast.c is the only file that
 * includes clblast_c.h). */
#pragma once

#include "mm-ops.h"

G_BEGIN_DECLS

gboolean mm_clblast_available (void);
/* Enqueues C = alpha * A . B^T (+ bias) for each batch (strided batched
 * GEMM; grouped B via b_div handled per group). */
gboolean mm_clblast_gemm (MmEngine * e, MmTensor * a, MmTensor * b,
    MmTensor * bias, MmTensor * c, const MmGemmShape * s, GError ** error);

G_END_DECLS
