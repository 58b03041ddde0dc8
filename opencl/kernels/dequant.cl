/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dequantisation to F32, one work item per output element.  Quantised
 * inputs are byte buffers addressed with a byte offset (xo); the f16 scales
 * are assembled from bytes, so no alignment is assumed.  Layouts: see
 * formats/mm-dequant.h. */

inline float
dq_f16_at (__global const uchar * p)
{
  ushort h = (ushort) p[0] | ((ushort) p[1] << 8);
  return vload_half (0, (const half *) &h);
}

__kernel void
kernel_dequant_q8_0 (__global const uchar * x, uint xo, __global float *y,
    uint yo)
{
  uint i = GID0;
  __global const uchar *b = x + xo + (i >> 5) * 34u;
  y[yo + i] = (float) ((char) b[2 + (i & 31u)]) * dq_f16_at (b);
}

__kernel void
kernel_dequant_q4_0 (__global const uchar * x, uint xo, __global float *y,
    uint yo)
{
  uint i = GID0, j = i & 31u;
  __global const uchar *b = x + xo + (i >> 5) * 18u;
  uchar q = b[2 + (j & 15u)];
  int v = j < 16u ? (q & 0x0f) : (q >> 4);
  y[yo + i] = (float) (v - 8) * dq_f16_at (b);
}

__kernel void
kernel_dequant_q4_1 (__global const uchar * x, uint xo, __global float *y,
    uint yo)
{
  uint i = GID0, j = i & 31u;
  __global const uchar *b = x + xo + (i >> 5) * 20u;
  uchar q = b[4 + (j & 15u)];
  int v = j < 16u ? (q & 0x0f) : (q >> 4);
  y[yo + i] = (float) v * dq_f16_at (b) + dq_f16_at (b + 2);
}

__kernel void
kernel_dequant_bf16 (__global const ushort * x, uint xo, __global float *y,
    uint yo)
{
  y[yo + GID0] = bf16_to_f32 (x[xo + GID0]);
}

__kernel void
kernel_dequant_f16 (__global const half * x, uint xo, __global float *y,
    uint yo)
{
  y[yo + GID0] = vload_half (xo + GID0, x);
}
