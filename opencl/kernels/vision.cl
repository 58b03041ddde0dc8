/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Vision encoders' layout helpers. */

/* The V block of a fused [n, 3d] QKV projection (columns @col0 ..
 * @col0 + H hd, row stride @ld) as per-head transposed [H, hd, n], the
 * B operand of P . V.  Work-item (j, t-block, h): reads along j are
 * contiguous, each work-item writes a run of tokens. */
__kernel void
kernel_vision_heads_t (__global const float *x, uint xo, uint ld, uint col0,
    __global float *y, uint yo, uint n, uint hd)
{
  uint j = GID0, t0 = GID1 * 16, h = GID2;
  if (j >= hd)
    return;
  __global const float *src = x + xo + col0 + h * hd + j;
  __global float *dst = y + yo + ((ulong) h * hd + j) * n;
  uint t1 = min (t0 + 16, n);
  for (uint t = t0; t < t1; t++)
    dst[t] = src[(ulong) t * ld];
}

/* Patch embedding input: image [C, H, W] -> rows [gh * gw, C * p * p]
 * in the conv weight's (c, ky, kx) order, for non-overlapping p x p
 * patches (im2col with stride == kernel, no padding, as a copy of runs
 * of p pixels).  Work-item (c * p + ky, patch). */
__kernel void
kernel_vision_patchify (__global const float *x, uint xo, __global float *y,
    uint yo, uint C, uint H, uint W, uint p, uint gw)
{
  uint cy = GID0, patch = GID1;
  if (cy >= C * p)
    return;
  uint c = cy / p, ky = cy % p, py = patch / gw, px = patch % gw;
  __global const float *src = x + xo + ((ulong) c * H + py * p + ky) * W
      + px * p;
  __global float *dst = y + yo + (ulong) patch * C * p * p + cy * p;
  for (uint kx = 0; kx < p; kx++)
    dst[kx] = src[kx];
}
