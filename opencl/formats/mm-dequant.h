/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dequantisation: the device op (kernels in kernels/dequant.cl) and the
 * plain-C host reference it is tested against.  The host functions are also
 * what the weight readers use to convert at load time.
 *
 * Block layouts are llama.cpp's (little-endian, 32 elements per block):
 *   Q8_0: f16 d, int8 q[32]                      x = q * d
 *   Q4_0: f16 d, uint8 qs[16]                    x = (nibble - 8) * d
 *   Q4_1: f16 d, f16 m, uint8 qs[16]             x = nibble * d + m
 * where element j < 16 is the low nibble of qs[j] and element j >= 16 the
 * high nibble of qs[j - 16].
 */
#pragma once

#include "mm-tensor.h"

G_BEGIN_DECLS

/* IEEE binary16 / bfloat16 <-> binary32 (round to nearest even, NaN and
 * infinities kept). */
float mm_f16_to_f32 (guint16 h);
guint16 mm_f32_to_f16 (float f);
float mm_bf16_to_f32 (guint16 h);

/* Host reference: @n elements of @dtype at @src (any alignment) to floats.
 * Returns FALSE (and writes nothing) when @dtype is not a float or
 * quantised type or @n is not a whole number of blocks. */
gboolean mm_dequantize_host (MmDType dtype, const void *src, gint64 n,
    float *dst);

/* Device op: an F32 arena tensor of @x's shape.  @x may be F16, BF16, Q8_0,
 * Q4_0 or Q4_1 (F32 is returned as is); quantised tensors are addressed by
 * byte offset, so views starting at any whole block work. */
MmTensor *mm_dequantize (MmGraph * g, MmTensor * x);

G_END_DECLS
