/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Layout ops: 4-D permute (output dims + source strides), 2-D block copy,
 * row gather. */

__kernel void
kernel_permute (__global const float *x, uint xo, __global float *y, uint yo,
    uint d1, uint d2, uint d3, uint s0, uint s1, uint s2, uint s3)
{
  uint idx = GID0;
  uint i3 = idx % d3;
  uint t = idx / d3;
  uint i2 = t % d2;
  t /= d2;
  uint i1 = t % d1;
  uint i0 = t / d1;
  y[yo + idx] = x[xo + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3];
}

__kernel void
kernel_copy2d (__global const float *x, uint xo, uint x_ld, __global float *y,
    uint yo, uint y_ld, uint cols)
{
  uint c = GID0, r = GID1;
  if (c < cols)
    y[yo + r * y_ld + c] = x[xo + r * x_ld + c];
}

__kernel void
kernel_get_rows_f32 (__global const float *t, uint to, __global const int *ids,
    uint io, __global float *y, uint yo, uint cols)
{
  uint c = GID0, r = GID1;
  y[yo + r * cols + c] = t[to + (ulong) ids[io + r] * cols + c];
}

__kernel void
kernel_get_rows_f16 (__global const half *t, uint to, __global const int *ids,
    uint io, __global float *y, uint yo, uint cols)
{
  uint c = GID0, r = GID1;
  y[yo + r * cols + c] = vload_half (to + (ulong) ids[io + r] * cols + c, t);
}
