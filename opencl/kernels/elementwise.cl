/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Element-wise ops; b broadcasts by index modulo nb. */

/* The modulo only when b really broadcasts: a vector integer division per
 * element costs more than the add itself. */
#define BCAST(i, nb) ((nb) == get_global_size (0) ? (i) : (i) % (nb))

__kernel void
kernel_add (__global const float *a, uint ao, __global const float *b, uint bo,
    uint nb, __global float *y, uint yo)
{
  uint i = GID0;
  y[yo + i] = a[ao + i] + b[bo + BCAST (i, nb)];
}

__kernel void
kernel_mul (__global const float *a, uint ao, __global const float *b, uint bo,
    uint nb, __global float *y, uint yo)
{
  uint i = GID0;
  y[yo + i] = a[ao + i] * b[bo + BCAST (i, nb)];
}

__kernel void
kernel_scale (__global const float *a, uint ao, float s, __global float *y,
    uint yo)
{
  uint i = GID0;
  y[yo + i] = a[ao + i] * s;
}

__kernel void
kernel_gelu (__global const float *x, uint xo, __global float *y, uint yo)
{
  float v = x[xo + GID0];
  y[yo + GID0] = 0.5f * v * (1.0f + erf (v * 0.70710678118654752f));
}

__kernel void
kernel_gelu_tanh (__global const float *x, uint xo, __global float *y, uint yo)
{
  float v = x[xo + GID0];
  float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
  /* 0.5 (1 + tanh u) = 1 / (1 + exp (-2u)): exp vectorises, tanh does not */
  y[yo + GID0] = v / (1.0f + exp (-2.0f * u));
}

__kernel void
kernel_quick_gelu (__global const float *x, uint xo, __global float *y, uint yo)
{
  float v = x[xo + GID0];
  y[yo + GID0] = v / (1.0f + exp (-1.702f * v));
}

__kernel void
kernel_silu (__global const float *x, uint xo, __global float *y, uint yo)
{
  float v = x[xo + GID0];
  y[yo + GID0] = v / (1.0f + exp (-v));
}

__kernel void
kernel_swiglu_split (__global const float *x, uint xo, __global float *y,
    uint yo, uint F)
{
  /* 16 columns per work-item as one vector: PoCL vectorises exp over the
   * lanes (scalar exp is several times slower) */
  uint j = GID0 * 16, r = GID1;
  __global const float *xr = x + xo + (ulong) r * 2 * F;
  __global float *yr = y + yo + (ulong) r * F;
  if (j + 16 <= F) {
    float16 v = vload16 (0, xr + j);
    vstore16 (v / (1.0f + exp (-v)) * vload16 (0, xr + F + j), 0, yr + j);
    return;
  }
  for (; j < F; j++) {
    float v = xr[j];
    yr[j] = v / (1.0f + exp (-v)) * xr[F + j];
  }
}

__kernel void
kernel_swiglu (__global const float *gate, uint go, __global const float *up,
    uint uo, __global float *y, uint yo)
{
  float v = gate[go + GID0];
  y[yo + GID0] = v / (1.0f + exp (-v)) * up[uo + GID0];
}
