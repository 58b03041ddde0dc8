/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rotary position embedding over x [n_tok, n_head, head_dim] with a
 * cos/sin table [n_tok, n_rot/2] x 2 made on the host (PoCL's pow/sin/cos
 * cost microseconds each).  One (token, head) row per work-item.  neox:
 * pairs (i, i + n_rot/2); normal: (2i, 2i+1); dims past n_rot are copied. */

__kernel void
kernel_rope (__global const float *x, uint xo, __global float *y, uint yo,
    __global const float *cs, uint cso, uint n_head, uint head_dim,
    uint n_rot, int neox)
{
  uint row = GID0;
  uint tok = row / n_head;
  uint half_rot = n_rot / 2;
  __global const float *xr = x + xo + (ulong) row * head_dim;
  __global float *yr = y + yo + (ulong) row * head_dim;
  __global const float *cr = cs + cso + (ulong) tok * n_rot;
  for (uint i = 0; i < half_rot; i++) {
    float c = cr[i], s = cr[half_rot + i];
    uint a = neox ? i : 2 * i, b = neox ? i + half_rot : 2 * i + 1;
    float va = xr[a], vb = xr[b];
    yr[a] = va * c - vb * s;
    yr[b] = va * s + vb * c;
  }
  for (uint d = n_rot; d < head_dim; d++)
    yr[d] = xr[d];
}
