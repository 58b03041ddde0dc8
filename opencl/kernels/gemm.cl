/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GEMM for CPU-class OpenCL devices: C[b] = alpha * A[b] . B[b / bdiv]^T
 * (+ bias).  A [M, K] (F32), B [N, K] (weights [out, in], F32 or F16),
 * C [M, N].  Launch with local size 1: each work-item owns a TM x 4 tile of
 * C held in float16 accumulators (partial dot products along K, 16 lanes
 * wide), no local memory, no barriers.  PoCL does not unroll tile loops by
 * itself, so the tile is written out with macros.
 */

#define LOADB_F32(p, k) vload16 (0, (p) + (k))
#define LOADB_F16(p, k) vload_half16 (0, (p) + (k))
#define SCALARB_F32(p, k) ((p)[k])
#define SCALARB_F16(p, k) vload_half ((k), (p))

#define GEMM_PROLOGUE(BT)                                                   \
  uint tn = GID0, tm = GID1, bt = GID2;                                     \
  uint n0 = tn * 4;                                                         \
  if (n0 >= N || tm * TM >= M)                                              \
    return;                                                                 \
  A += ao + bt * sa;                                                        \
  B += bo + (bt / bdiv) * sb;                                               \
  C += co + bt * sc;                                                        \
  __global const BT *b0 = B + (ulong) min (n0 + 0, N - 1) * ldb;            \
  __global const BT *b1 = B + (ulong) min (n0 + 1, N - 1) * ldb;            \
  __global const BT *b2 = B + (ulong) min (n0 + 2, N - 1) * ldb;            \
  __global const BT *b3 = B + (ulong) min (n0 + 3, N - 1) * ldb;

#define STORE(m, j, v)                                                      \
  if (m < M && n0 + j < N)                                                  \
    C[(ulong) (m) * ldc + n0 + j] =                                         \
        alpha * (v) + (has_bias ? bias[biaso + n0 + j] : 0.0f);

/* ---- 4 x 4 tiles ---- */
#define GEMM_4x4(NAME, BT, LOADB, SCALARB)                                  \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda, uint sa,                  \
    __global const BT *B, uint bo, uint ldb, uint sb, uint bdiv,            \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha)                                    \
{                                                                           \
  const uint TM = 4;                                                        \
  GEMM_PROLOGUE (BT)                                                        \
  uint m0 = tm * 4;                                                         \
  __global const float *a0 = A + (ulong) min (m0 + 0, M - 1) * lda;         \
  __global const float *a1 = A + (ulong) min (m0 + 1, M - 1) * lda;         \
  __global const float *a2 = A + (ulong) min (m0 + 2, M - 1) * lda;         \
  __global const float *a3 = A + (ulong) min (m0 + 3, M - 1) * lda;         \
  float16 c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0,    \
      c13 = 0, c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0,        \
      c32 = 0, c33 = 0;                                                     \
  uint k = 0;                                                               \
  for (; k + 16 <= K; k += 16) {                                            \
    float16 w0 = LOADB (b0, k), w1 = LOADB (b1, k);                         \
    float16 w2 = LOADB (b2, k), w3 = LOADB (b3, k);                         \
    float16 x = vload16 (0, a0 + k);                                        \
    c00 = fma (x, w0, c00); c01 = fma (x, w1, c01);                         \
    c02 = fma (x, w2, c02); c03 = fma (x, w3, c03);                         \
    x = vload16 (0, a1 + k);                                                \
    c10 = fma (x, w0, c10); c11 = fma (x, w1, c11);                         \
    c12 = fma (x, w2, c12); c13 = fma (x, w3, c13);                         \
    x = vload16 (0, a2 + k);                                                \
    c20 = fma (x, w0, c20); c21 = fma (x, w1, c21);                         \
    c22 = fma (x, w2, c22); c23 = fma (x, w3, c23);                         \
    x = vload16 (0, a3 + k);                                                \
    c30 = fma (x, w0, c30); c31 = fma (x, w1, c31);                         \
    c32 = fma (x, w2, c32); c33 = fma (x, w3, c33);                         \
  }                                                                         \
  float r00 = hsum16 (c00), r01 = hsum16 (c01), r02 = hsum16 (c02),         \
      r03 = hsum16 (c03), r10 = hsum16 (c10), r11 = hsum16 (c11),           \
      r12 = hsum16 (c12), r13 = hsum16 (c13), r20 = hsum16 (c20),           \
      r21 = hsum16 (c21), r22 = hsum16 (c22), r23 = hsum16 (c23),           \
      r30 = hsum16 (c30), r31 = hsum16 (c31), r32 = hsum16 (c32),           \
      r33 = hsum16 (c33);                                                   \
  for (; k < K; k++) {                                                      \
    float w0 = SCALARB (b0, k), w1 = SCALARB (b1, k);                       \
    float w2 = SCALARB (b2, k), w3 = SCALARB (b3, k);                       \
    float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];                   \
    r00 += x0 * w0; r01 += x0 * w1; r02 += x0 * w2; r03 += x0 * w3;         \
    r10 += x1 * w0; r11 += x1 * w1; r12 += x1 * w2; r13 += x1 * w3;         \
    r20 += x2 * w0; r21 += x2 * w1; r22 += x2 * w2; r23 += x2 * w3;         \
    r30 += x3 * w0; r31 += x3 * w1; r32 += x3 * w2; r33 += x3 * w3;         \
  }                                                                         \
  STORE (m0 + 0, 0, r00) STORE (m0 + 0, 1, r01)                             \
  STORE (m0 + 0, 2, r02) STORE (m0 + 0, 3, r03)                             \
  STORE (m0 + 1, 0, r10) STORE (m0 + 1, 1, r11)                             \
  STORE (m0 + 1, 2, r12) STORE (m0 + 1, 3, r13)                             \
  STORE (m0 + 2, 0, r20) STORE (m0 + 2, 1, r21)                             \
  STORE (m0 + 2, 2, r22) STORE (m0 + 2, 3, r23)                             \
  STORE (m0 + 3, 0, r30) STORE (m0 + 3, 1, r31)                             \
  STORE (m0 + 3, 2, r32) STORE (m0 + 3, 3, r33)                             \
}

/* ---- 1 x 4 tiles: GEMV-shaped work (M < 4), memory bound ---- */
#define GEMM_1x4(NAME, BT, LOADB, SCALARB)                                  \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda, uint sa,                  \
    __global const BT *B, uint bo, uint ldb, uint sb, uint bdiv,            \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha)                                    \
{                                                                           \
  const uint TM = 1;                                                        \
  GEMM_PROLOGUE (BT)                                                        \
  uint m0 = tm;                                                             \
  __global const float *a0 = A + (ulong) m0 * lda;                          \
  float16 c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                   \
  uint k = 0;                                                               \
  for (; k + 16 <= K; k += 16) {                                            \
    float16 x = vload16 (0, a0 + k);                                        \
    c0 = fma (x, LOADB (b0, k), c0);                                        \
    c1 = fma (x, LOADB (b1, k), c1);                                        \
    c2 = fma (x, LOADB (b2, k), c2);                                        \
    c3 = fma (x, LOADB (b3, k), c3);                                        \
  }                                                                         \
  float r0 = hsum16 (c0), r1 = hsum16 (c1), r2 = hsum16 (c2),               \
      r3 = hsum16 (c3);                                                     \
  for (; k < K; k++) {                                                      \
    float x = a0[k];                                                        \
    r0 += x * SCALARB (b0, k); r1 += x * SCALARB (b1, k);                   \
    r2 += x * SCALARB (b2, k); r3 += x * SCALARB (b3, k);                   \
  }                                                                         \
  STORE (m0, 0, r0) STORE (m0, 1, r1) STORE (m0, 2, r2) STORE (m0, 3, r3)   \
}

GEMM_4x4 (kernel_gemm_f32, float, LOADB_F32, SCALARB_F32)
GEMM_4x4 (kernel_gemm_f16, half, LOADB_F16, SCALARB_F16)
GEMM_1x4 (kernel_gemv_f32, float, LOADB_F32, SCALARB_F32)
GEMM_1x4 (kernel_gemv_f16, half, LOADB_F16, SCALARB_F16)
