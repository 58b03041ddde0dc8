/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Row softmax of (x * scale + mask) with an optional causal limit:
 * in batch row r (r = row % rows), col j is masked when j > r + causal. */

__kernel void
kernel_softmax (__global const float *x, uint xo, __global float *y, uint yo,
    uint cols, uint rows, __global const float *mask, uint mo, int has_mask,
    float scale, int causal)
{
  uint row = GID0;
  uint r = row % rows;
  __global const float *xr = x + xo + (ulong) row * cols;
  __global float *yr = y + yo + (ulong) row * cols;
  __global const float *mr = mask + mo + (ulong) r * cols;
  uint n = causal >= 0 ? min (cols, r + (uint) causal + 1) : cols;
  float mx = -INFINITY;
  for (uint j = 0; j < n; j++) {
    float v = xr[j] * scale + (has_mask ? mr[j] : 0.0f);
    mx = fmax (mx, v);
  }
  float sum = 0.0f;
  for (uint j = 0; j < n; j++) {
    float v = xr[j] * scale + (has_mask ? mr[j] : 0.0f);
    float e = mx == -INFINITY ? 0.0f : exp (v - mx);
    yr[j] = e;
    sum += e;
  }
  float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (uint j = 0; j < n; j++)
    yr[j] *= inv;
  for (uint j = n; j < cols; j++)
    yr[j] = 0.0f;
}
