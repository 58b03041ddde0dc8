/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GEMM / GEMV with llama.cpp-quantised weights, dequantised on the fly:
 * C = alpha * A . B^T (+ bias), A [M, K] F32, B [N, K] in Q8_0 / Q4_0 /
 * Q4_1 blocks of 32 (K % 32 == 0) in the planar layout below, B's offset
 * in bytes; one B for every batch.  Same tiling as gemm.cl: local size 1, TM x 4 outputs per
 * work-item, float16 partial sums; each block of B is unpacked once and
 * used for all TM rows of A.
 *
 * Block layouts (ggml): Q8_0 = half d, 32 x int8 (x = q d);
 * Q4_0 = half d, 16 bytes (x = (nibble - 8) d, low nibbles are elements
 * 0..15, high nibbles 16..31); Q4_1 = half d, half m, 16 bytes
 * (x = nibble d + m).
 */

/* Planar layout (mm_tensor_upload_planar): codes of all rows first (ldb
 * bytes per row: K for Q8_0, K/2 for Q4), then the F16 scales [N, K/32]
 * at byte @soff, then (Q4_1) the F16 mins at byte @moff.  Codes load as
 * aligned 16-byte vectors. */
#define DEQ_Q8_0(q, s, m, blk, lo, hi)                                      \
  {                                                                         \
    float d_ = vload_half ((blk), (s));                                     \
    lo = convert_float16 (vload16 (0, (__global const char *) (q) + (blk) * 32)) * d_; \
    hi = convert_float16 (vload16 (0, (__global const char *) (q) + (blk) * 32 + 16)) * d_; \
  }

#define DEQ_Q4_0(q, s, m, blk, lo, hi)                                      \
  {                                                                         \
    float d_ = vload_half ((blk), (s));                                     \
    uchar16 n_ = vload16 (0, (q) + (blk) * 16);                             \
    lo = (convert_float16 (n_ & (uchar16) 0xf) - 8.0f) * d_;                \
    hi = (convert_float16 (n_ >> (uchar16) 4) - 8.0f) * d_;                 \
  }

#define DEQ_Q4_1(q, s, m, blk, lo, hi)                                      \
  {                                                                         \
    float d_ = vload_half ((blk), (s)), m_ = vload_half ((blk), (m));       \
    uchar16 n_ = vload16 (0, (q) + (blk) * 16);                             \
    lo = fma (convert_float16 (n_ & (uchar16) 0xf), (float16) d_,           \
        (float16) m_);                                                      \
    hi = fma (convert_float16 (n_ >> (uchar16) 4), (float16) d_,            \
        (float16) m_);                                                      \
  }

#define QSTORE(m, j, v)                                                     \
  if ((m) < M && n0 + (j) < N)                                              \
    C[(ulong) (m) * ldc + n0 + (j)] =                                       \
        alpha * (v) + (has_bias ? bias[biaso + n0 + (j)] : 0.0f);

/* Row r of B: codes q<j>, scales s<j>, mins mn<j>. */
#define QROWPTR(j, r)                                                       \
  __global const uchar *q##j = B + (ulong) (r) * ldb;                       \
  __global const half *s##j = (__global const half *) (B + soff)            \
      + (ulong) (r) * nblk;                                                 \
  __global const half *mn##j = (__global const half *) (B + moff)            \
      + (ulong) (r) * nblk;

#define QGEMM_PROLOGUE                                                      \
  uint n0 = GID0 * 4, tm = GID1, bt = GID2;                                 \
  uint nblk = K / 32;                                                       \
  A += ao + bt * sa;                                                        \
  B += bo;                                                                  \
  C += co + bt * sc;                                                        \
  QROWPTR (0, min (n0 + 0, N - 1)) QROWPTR (1, min (n0 + 1, N - 1))         \
  QROWPTR (2, min (n0 + 2, N - 1)) QROWPTR (3, min (n0 + 3, N - 1))

/* GEMV-shaped work (M < 4): each work-item walks 4-row tiles of B with a
 * grid stride, so the launch has a few hundred work-items rather than
 * N / 4: PoCL pays a fixed cost per work-group (local size 1). */
#define QGEMV(NAME, DEQ)                                                    \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda, uint sa,                  \
    __global const uchar *B, uint bo, uint ldb, uint soff, uint moff,       \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha)                                    \
{                                                                           \
  uint tm = GID1, bt = GID2;                                                \
  uint nblk = K / 32;                                                       \
  A += ao + bt * sa;                                                        \
  B += bo;                                                                  \
  C += co + bt * sc;                                                        \
  __global const float *a0 = A + (ulong) tm * lda;                          \
  for (uint n0 = GID0 * 4; n0 < N; n0 += get_global_size (0) * 4) {         \
    QROWPTR (0, min (n0 + 0, N - 1)) QROWPTR (1, min (n0 + 1, N - 1))       \
    QROWPTR (2, min (n0 + 2, N - 1)) QROWPTR (3, min (n0 + 3, N - 1))       \
    float16 c0 = 0, c1 = 0, c2 = 0, c3 = 0, lo, hi;                         \
    for (uint b = 0; b < nblk; b++) {                                       \
      float16 x0 = vload16 (0, a0 + b * 32);                                \
      float16 x1 = vload16 (0, a0 + b * 32 + 16);                           \
      DEQ (q0, s0, mn0, b, lo, hi) c0 = fma (lo, x0, fma (hi, x1, c0));              \
      DEQ (q1, s1, mn1, b, lo, hi) c1 = fma (lo, x0, fma (hi, x1, c1));              \
      DEQ (q2, s2, mn2, b, lo, hi) c2 = fma (lo, x0, fma (hi, x1, c2));              \
      DEQ (q3, s3, mn3, b, lo, hi) c3 = fma (lo, x0, fma (hi, x1, c3));              \
    }                                                                       \
    QSTORE (tm, 0, hsum16 (c0)) QSTORE (tm, 1, hsum16 (c1))                 \
    QSTORE (tm, 2, hsum16 (c2)) QSTORE (tm, 3, hsum16 (c3))                 \
  }                                                                         \
}

/* One A row against the 4 unpacked B rows of this block. */
#define QROW(x0, x1, r0, r1, r2, r3)                                        \
  r0 = fma (w0l, x0, fma (w0h, x1, r0));                                    \
  r1 = fma (w1l, x0, fma (w1h, x1, r1));                                    \
  r2 = fma (w2l, x0, fma (w2h, x1, r2));                                    \
  r3 = fma (w3l, x0, fma (w3h, x1, r3));

#define QGEMM(NAME, DEQ)                                                    \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda, uint sa,                  \
    __global const uchar *B, uint bo, uint ldb, uint soff, uint moff,       \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha)                                    \
{                                                                           \
  QGEMM_PROLOGUE                                                            \
  uint m0 = tm * 4;                                                         \
  if (n0 >= N || m0 >= M)                                                   \
    return;                                                                 \
  __global const float *a0 = A + (ulong) min (m0 + 0, M - 1) * lda;         \
  __global const float *a1 = A + (ulong) min (m0 + 1, M - 1) * lda;         \
  __global const float *a2 = A + (ulong) min (m0 + 2, M - 1) * lda;         \
  __global const float *a3 = A + (ulong) min (m0 + 3, M - 1) * lda;         \
  float16 c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0,    \
      c13 = 0, c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0,        \
      c32 = 0, c33 = 0;                                                     \
  float16 w0l, w0h, w1l, w1h, w2l, w2h, w3l, w3h;                           \
  for (uint b = 0; b < nblk; b++) {                                         \
    uint k = b * 32;                                                        \
    DEQ (q0, s0, mn0, b, w0l, w0h) DEQ (q1, s1, mn1, b, w1l, w1h)                             \
    DEQ (q2, s2, mn2, b, w2l, w2h) DEQ (q3, s3, mn3, b, w3l, w3h)                             \
    float16 x0 = vload16 (0, a0 + k), x1 = vload16 (0, a0 + k + 16);       \
    QROW (x0, x1, c00, c01, c02, c03)                                       \
    x0 = vload16 (0, a1 + k); x1 = vload16 (0, a1 + k + 16);                \
    QROW (x0, x1, c10, c11, c12, c13)                                       \
    x0 = vload16 (0, a2 + k); x1 = vload16 (0, a2 + k + 16);                \
    QROW (x0, x1, c20, c21, c22, c23)                                       \
    x0 = vload16 (0, a3 + k); x1 = vload16 (0, a3 + k + 16);                \
    QROW (x0, x1, c30, c31, c32, c33)                                       \
  }                                                                         \
  QSTORE (m0 + 0, 0, hsum16 (c00)) QSTORE (m0 + 0, 1, hsum16 (c01))         \
  QSTORE (m0 + 0, 2, hsum16 (c02)) QSTORE (m0 + 0, 3, hsum16 (c03))         \
  QSTORE (m0 + 1, 0, hsum16 (c10)) QSTORE (m0 + 1, 1, hsum16 (c11))         \
  QSTORE (m0 + 1, 2, hsum16 (c12)) QSTORE (m0 + 1, 3, hsum16 (c13))         \
  QSTORE (m0 + 2, 0, hsum16 (c20)) QSTORE (m0 + 2, 1, hsum16 (c21))         \
  QSTORE (m0 + 2, 2, hsum16 (c22)) QSTORE (m0 + 2, 3, hsum16 (c23))         \
  QSTORE (m0 + 3, 0, hsum16 (c30)) QSTORE (m0 + 3, 1, hsum16 (c31))         \
  QSTORE (m0 + 3, 2, hsum16 (c32)) QSTORE (m0 + 3, 3, hsum16 (c33))         \
}

QGEMV (kernel_gemv_q8_0, DEQ_Q8_0)
QGEMV (kernel_gemv_q4_0, DEQ_Q4_0)
QGEMV (kernel_gemv_q4_1, DEQ_Q4_1)
QGEMM (kernel_gemm_q8_0, DEQ_Q8_0)
QGEMM (kernel_gemm_q4_0, DEQ_Q4_0)
QGEMM (kernel_gemm_q4_1, DEQ_Q4_1)

/* Planar blocks to F32 rows (for prefill-sized GEMMs, which then run the
 * F32 kernel: the unpacking is paid once per weight, not once per tile).
 * One block of 32 per work-item; y is [N, K]. */
#define QDEQ(NAME, DEQ)                                                     \
__kernel void                                                               \
NAME (__global const uchar *B, uint bo, uint ldb, uint soff, uint moff,     \
    uint K, __global float *y, uint yo)                                     \
{                                                                           \
  uint blk = GID0, r = GID1, nblk = K / 32;                                 \
  B += bo;                                                                  \
  QROWPTR (0, r)                                                            \
  float16 lo, hi;                                                           \
  DEQ (q0, s0, mn0, blk, lo, hi)                                            \
  __global float *yr = y + yo + (ulong) r * K + blk * 32;                   \
  vstore16 (lo, 0, yr);                                                     \
  vstore16 (hi, 0, yr + 16);                                                \
}

QDEQ (kernel_dequant_planar_q8_0, DEQ_Q8_0)
QDEQ (kernel_dequant_planar_q4_0, DEQ_Q4_0)
QDEQ (kernel_dequant_planar_q4_1, DEQ_Q4_1)
