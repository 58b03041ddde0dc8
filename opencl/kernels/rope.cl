/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rotary position embedding over x [n_tok, n_head, head_dim]; one output
 * element per work-item.  neox: pairs (i, i + n_rot/2); normal: (2i, 2i+1). */

__kernel void
kernel_rope (__global const float *x, uint xo, __global float *y, uint yo,
    uint n_head, uint head_dim, uint n_rot, int pos0, float base,
    float freq_scale, int neox)
{
  uint idx = GID0;
  uint d = idx % head_dim;
  uint tok = idx / (head_dim * n_head);
  __global const float *xr = x + xo + (idx - d);
  float v = xr[d];
  if (d >= n_rot) {
    y[yo + idx] = v;
    return;
  }
  uint half_rot = n_rot / 2;
  uint i = neox ? d % half_rot : d / 2;
  float pos = (float) (pos0 + (int) tok);
  float inv_freq = pow (base, -(float) (2 * i) / (float) n_rot);
  float theta = pos * inv_freq * freq_scale;
  float c = cos (theta), s = sin (theta);
  float r;
  if (neox)
    r = d < half_rot ? v * c - xr[d + half_rot] * s : xr[d - half_rot] * s + v * c;
  else
    r = (d & 1) == 0 ? v * c - xr[d + 1] * s : xr[d - 1] * s + v * c;
  y[yo + idx] = r;
}
