/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* im2col for convolutions as GEMM.  Output rows are output positions,
 * columns follow the weight layout [OC, C, KH, KW] flattened. */

__kernel void
kernel_im2col_2d (__global const float *x, uint xo, __global float *y, uint yo,
    uint C, uint H, uint W, uint KH, uint KW, uint stride, uint pad, uint OW)
{
  uint col = GID0;              /* c * KH * KW + ky * KW + kx */
  uint pos = GID1;              /* oy * OW + ox */
  uint K = C * KH * KW;
  if (col >= K)
    return;
  uint kx = col % KW, ky = (col / KW) % KH, c = col / (KW * KH);
  int iy = (int) ((pos / OW) * stride + ky) - (int) pad;
  int ix = (int) ((pos % OW) * stride + kx) - (int) pad;
  float v = 0.0f;
  if (iy >= 0 && iy < (int) H && ix >= 0 && ix < (int) W)
    v = x[xo + (c * H + iy) * W + ix];
  y[yo + (ulong) pos * K + col] = v;
}

/* x, C channels of L positions, element (c, i) at c sc + i si: [C, L]
 * (sc = L, si = 1) or rows [L, C] as a linear layer or a previous conv
 * leaves them (sc = 1, si = C; no transpose first). */
__kernel void
kernel_im2col_1d (__global const float *x, uint xo, __global float *y, uint yo,
    uint C, uint L, uint sc, uint si, uint KW, uint stride, uint pad)
{
  uint col = GID0;              /* c * KW + k */
  uint pos = GID1;
  uint K = C * KW;
  if (col >= K)
    return;
  uint k = col % KW, c = col / KW;
  int i = (int) (pos * stride + k) - (int) pad;
  float v = 0.0f;
  if (i >= 0 && i < (int) L)
    v = x[xo + (ulong) c * sc + (ulong) i * si];
  y[yo + (ulong) pos * K + col] = v;
}
