/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Row softmax of (x * scale + mask) with an optional causal limit:
 * in batch row r (r = row % rows), col j is masked when j > r + causal.
 * One row per work-item, float16 vectors (PoCL vectorises exp over the
 * lanes; a scalar loop was 10x slower on 1024-column rows). */

inline float16
sm_load16 (__global const float *xr, __global const float *mr, int has_mask,
    float scale, uint j)
{
  float16 v = vload16 (0, xr + j) * scale;
  return has_mask ? v + vload16 (0, mr + j) : v;
}

inline float
sm_load1 (__global const float *xr, __global const float *mr, int has_mask,
    float scale, uint j)
{
  return xr[j] * scale + (has_mask ? mr[j] : 0.0f);
}

/* With inv_out: the rows are left unnormalised (exp (v - max)) and
 * 1 / sum goes to inv_out[row], for a GEMM to apply to its output rows
 * (mm_softmax_unnormalised): one pass over the row less. */
__kernel void
kernel_softmax (__global const float *x, uint xo, __global float *y, uint yo,
    uint cols, uint rows, __global const float *mask, uint mo, int has_mask,
    float scale, int causal, __global float *inv_out, uint io, int has_inv)
{
  uint row = GID0;
  uint r = row % rows;
  __global const float *xr = x + xo + (ulong) row * cols;
  __global float *yr = y + yo + (ulong) row * cols;
  __global const float *mr = mask + mo + (ulong) r * cols;
  uint n = causal >= 0 ? min (cols, r + (uint) causal + 1) : cols;
  uint n16 = n & ~15u, j;
  float16 m16 = -INFINITY;
  for (j = 0; j < n16; j += 16)
    m16 = fmax (m16, sm_load16 (xr, mr, has_mask, scale, j));
  float8 m8 = fmax (m16.lo, m16.hi);
  float4 m4 = fmax (m8.lo, m8.hi);
  float mx = fmax (fmax (m4.x, m4.y), fmax (m4.z, m4.w));
  for (; j < n; j++)
    mx = fmax (mx, sm_load1 (xr, mr, has_mask, scale, j));
  if (mx == -INFINITY) {
    for (j = 0; j < cols; j++)
      yr[j] = 0.0f;
    if (has_inv)
      inv_out[io + row] = 0.0f;
    return;
  }
  float16 s16 = 0.0f;
  for (j = 0; j < n16; j += 16) {
    float16 e = exp (sm_load16 (xr, mr, has_mask, scale, j) - mx);
    vstore16 (e, 0, yr + j);
    s16 += e;
  }
  float sum = hsum16 (s16);
  for (; j < n; j++) {
    float e = exp (sm_load1 (xr, mr, has_mask, scale, j) - mx);
    yr[j] = e;
    sum += e;
  }
  float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  if (has_inv) {
    inv_out[io + row] = inv;
    for (j = n; j < cols; j++)
      yr[j] = 0.0f;
    return;
  }
  for (j = 0; j < n16; j += 16)
    vstore16 (vload16 (0, yr + j) * inv, 0, yr + j);
  for (; j < n; j++)
    yr[j] *= inv;
  for (j = n; j < cols; j++)
    yr[j] = 0.0f;
}
