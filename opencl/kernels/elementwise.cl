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

/* erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, float32 rounding
 * size): PoCL does not vectorise its erf over work-items, and the scalar
 * one cost ~20x this (45 vs 2.2 ns per element on a Xeon core). */
inline float
erf_as (float x)
{
  float ax = fabs (x);
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
          - 0.284496736f) * t + 0.254829592f) * t;
  return copysign (1.0f - p * exp (-ax * ax), x);
}

/* Activations of 16 lanes, as the kernels below compute each element
 * (the GEMM epilogues apply them; act: MmLinearAct). */
#define ACT_NONE 0
#define ACT_GELU 1
#define ACT_GELU_TANH 2
#define ACT_QUICK_GELU 3
#define ACT_SILU 4

inline float16
erf_as16 (float16 x)
{
  float16 ax = fabs (x);
  float16 t = 1.0f / (1.0f + 0.3275911f * ax);
  float16 p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
          - 0.284496736f) * t + 0.254829592f) * t;
  return copysign (1.0f - p * exp (-ax * ax), x);
}

inline float16
act16 (int act, float16 v)
{
  if (act == ACT_GELU)
    return 0.5f * v * (1.0f + erf_as16 (v * 0.70710678118654752f));
  if (act == ACT_GELU_TANH)
    return v / (1.0f + exp (-2.0f * (0.7978845608028654f
                * (v + 0.044715f * v * v * v))));
  if (act == ACT_QUICK_GELU)
    return v / (1.0f + exp (-1.702f * v));
  if (act == ACT_SILU)
    return v / (1.0f + exp (-v));
  return v;
}

__kernel void
kernel_gelu (__global const float *x, uint xo, __global float *y, uint yo)
{
  float v = x[xo + GID0];
  y[yo + GID0] = 0.5f * v * (1.0f + erf_as (v * 0.70710678118654752f));
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
