/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GEMM / GEMV with llama.cpp-quantised weights: C = alpha * A . B^T
 * (+ bias), A [M, K] F32, B [N, K] in Q8_0 / Q4_0 / Q4_1 blocks of 32
 * along K (K % 32 == 0), in the panel layout below (mm_tensor_upload_planar),
 * B's offset in bytes.
 *
 * Block values (ggml): Q8_0 x = q d (q int8); Q4_0 x = (q - 8) d;
 * Q4_1 x = q d + m (q a nibble); d, m half, one per row and block.
 *
 * Panel layout: rows in panels of QP = 32 (rows past N zero: codes and
 * scales 0).  Panel p, block b (k in [32 b, 32 b + 32)) is one record of
 * 32 ggml blocks' bytes at ((p * nblk) + b) * QREC_<type>:
 *   Q8_0: int8 q[32 k][32 rows], then half d[32 rows]
 *   Q4_0: uchar q[16][32 rows] (low nibble k = j, high nibble k = j + 16,
 *         as in a ggml block), then half d[32 rows]
 *   Q4_1: as Q4_0, then half m[32 rows]
 * so at each k the 32 rows' codes are one contiguous (aligned) vector, and
 * a GEMV accumulates in axpy form: sum_k x[k] q[k][rows] per block (16
 * lanes = 16 rows, no horizontal sums), then scales once per block:
 *   Q8_0  acc += d * s
 *   Q4_0  acc += d * (s - 8 xsum)      xsum = sum of x over the block
 *   Q4_1  acc += d * s + m * xsum
 * Integer codes convert to float exactly, so results match dequantise-
 * then-multiply up to float rounding.
 *
 * GEMVs on x86 CPUs with AVX2 or AVX-512 BW (QX_I16) take the
 * activations as int16 instead: per block of 32, x = xq s with s = max
 * |x| / 32767 (an error of at most 1/65534 of the block's largest value),
 * and pmaddwd multiplies two k of 16 (or 8) rows' codes (sign-extended
 * Q8_0 bytes, Q4 nibbles) and adds the pairs in one instruction: a third
 * less work per weight byte than the float path (code -> int32 -> float,
 * then FMA, for every code), which kept decode from streaming weights at
 * memory speed.  Sums within a block are exact in int32 (|sum| <= 32 x
 * 32767 x 128 < 2^31).
 *
 * Local size 1 everywhere (see gemm.cl): a work-item owns whole panels.
 */

#define QP 32
#define QREC_Q8_0 (QP * 34)
#define QREC_Q4_0 (QP * 18)
#define QREC_Q4_1 (QP * 20)

/* ---- per-block partial sums s0 (rows 0-15), s1 (rows 16-31) ----
 * Two k per step into separate accumulators: four independent FMA chains
 * hide the FMA latency.  x: the block's 32 values of A. */
#define Q8_STEP(k)                                                          \
  {                                                                         \
    float16 xa = (float16) (x[k]), xb = (float16) (x[(k) + 1]);             \
    s0 = fma (xa, convert_float16 (vload16 (0, q + (k) * QP)), s0);         \
    s1 = fma (xa, convert_float16 (vload16 (0, q + (k) * QP + 16)), s1);    \
    t0 = fma (xb, convert_float16 (vload16 (0, q + (k) * QP + QP)), t0);    \
    t1 = fma (xb, convert_float16 (vload16 (0, q + (k) * QP + QP + 16)), t1); \
  }

#define Q8_BLOCK_SUMS(q, x)                                                 \
  float16 s0 = 0.0f, s1 = 0.0f, t0 = 0.0f, t1 = 0.0f;                       \
  Q8_STEP (0) Q8_STEP (2) Q8_STEP (4) Q8_STEP (6)                           \
  Q8_STEP (8) Q8_STEP (10) Q8_STEP (12) Q8_STEP (14)                        \
  Q8_STEP (16) Q8_STEP (18) Q8_STEP (20) Q8_STEP (22)                       \
  Q8_STEP (24) Q8_STEP (26) Q8_STEP (28) Q8_STEP (30)                       \
  s0 += t0;                                                                 \
  s1 += t1;

/* low nibbles: k = j, high nibbles: k = j + 16 */
#define Q4_STEP(j)                                                          \
  {                                                                         \
    float16 xl = (float16) (x[j]), xh = (float16) (x[(j) + 16]);            \
    uchar16 v0 = vload16 (0, q + (j) * QP), v1 = vload16 (0, q + (j) * QP + 16); \
    s0 = fma (xl, convert_float16 (v0 & (uchar16) 0xf), s0);                \
    s1 = fma (xl, convert_float16 (v1 & (uchar16) 0xf), s1);                \
    t0 = fma (xh, convert_float16 (v0 >> (uchar16) 4), t0);                 \
    t1 = fma (xh, convert_float16 (v1 >> (uchar16) 4), t1);                 \
  }

#define Q4_BLOCK_SUMS(q, x)                                                 \
  float16 s0 = 0.0f, s1 = 0.0f, t0 = 0.0f, t1 = 0.0f;                       \
  Q4_STEP (0) Q4_STEP (1) Q4_STEP (2) Q4_STEP (3)                           \
  Q4_STEP (4) Q4_STEP (5) Q4_STEP (6) Q4_STEP (7)                           \
  Q4_STEP (8) Q4_STEP (9) Q4_STEP (10) Q4_STEP (11)                         \
  Q4_STEP (12) Q4_STEP (13) Q4_STEP (14) Q4_STEP (15)                       \
  s0 += t0;                                                                 \
  s1 += t1;

inline float
block_xsum (const float *x)
{
  return hsum16 (vload16 (0, x) + vload16 (1, x));
}

/* One block of one panel into c0 (rows 0-15) and c1 (rows 16-31).
 * rec: the record; x: the block's 32 values of A (private). */
#define Q8_0_BLOCK(rec, x, c0, c1)                                          \
  {                                                                         \
    __global const char *q = (__global const char *) (rec);                 \
    Q8_BLOCK_SUMS (q, x)                                                    \
    __global const half *d = (__global const half *) ((rec) + QP * 32);     \
    c0 = fma (s0, vload_half16 (0, d), c0);                                 \
    c1 = fma (s1, vload_half16 (1, d), c1);                                 \
  }

#define Q4_0_BLOCK(rec, x, c0, c1)                                          \
  {                                                                         \
    __global const uchar *q = (rec);                                        \
    Q4_BLOCK_SUMS (q, x)                                                    \
    __global const half *d = (__global const half *) ((rec) + QP * 16);     \
    float16 o = (float16) (-8.0f * block_xsum (x));                         \
    c0 = fma (s0 + o, vload_half16 (0, d), c0);                             \
    c1 = fma (s1 + o, vload_half16 (1, d), c1);                             \
  }

#define Q4_1_BLOCK(rec, x, c0, c1)                                          \
  {                                                                         \
    __global const uchar *q = (rec);                                        \
    Q4_BLOCK_SUMS (q, x)                                                    \
    __global const half *d = (__global const half *) ((rec) + QP * 16);     \
    float16 xs = (float16) (block_xsum (x));                                \
    c0 = fma (s0, vload_half16 (0, d), fma (xs, vload_half16 (2, d), c0));  \
    c1 = fma (s1, vload_half16 (1, d), fma (xs, vload_half16 (3, d), c1));  \
  }

/* Records a GEMV prefetches ahead (MM_PREFETCH): the hardware
 * prefetchers alone leave the weight stream well below DRAM speed. */
#ifndef QPF
#define QPF 8
#endif
#ifndef QPF_LOC
#define QPF_LOC 3
#endif
#ifdef QPF_NONE
#define QPREFETCH(p, n)
#else
#define QPREFETCH(p, n) MM_PREFETCH (p, n, QPF_LOC)
#endif

/* ---- int16 activations for GEMVs (see the top) ---- */
#if defined(__x86_64__) && (defined(__AVX512BW__) || defined(__AVX2__)) \
    && !defined(QX_NONE)
#define QX_I16 1
#endif
/* Longest row (K) the int16 form holds (a work-item's private copy:
 * 34 KiB); longer rows take the float path. */
#define QX_MAX_K 16384

#ifdef QX_I16
typedef char qx_v32c __attribute__ ((vector_size (32), aligned (1)));
typedef uchar qx_v16uc __attribute__ ((vector_size (16), aligned (1)));
typedef short qx_v32s __attribute__ ((vector_size (64)));
typedef int qx_v16i __attribute__ ((vector_size (64)));
#if defined(__AVX512BW__) && !defined(QX_AVX2)  /* -DQX_AVX2: test that */
#define QX_MADD(w, x) __builtin_ia32_pmaddwd512 (w, x)
#else
typedef short qx_v16s __attribute__ ((vector_size (32)));
typedef int qx_v8i __attribute__ ((vector_size (32)));
inline qx_v16i
qx_madd (qx_v32s w, qx_v32s x)
{
  qx_v8i lo = __builtin_ia32_pmaddwd256 (__builtin_shufflevector (w, w, 0, 1,
          2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      __builtin_shufflevector (x, x, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
          13, 14, 15));
  qx_v8i hi = __builtin_ia32_pmaddwd256 (__builtin_shufflevector (w, w, 16,
          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31),
      __builtin_shufflevector (x, x, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
          26, 27, 28, 29, 30, 31));
  return __builtin_shufflevector (lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
      11, 12, 13, 14, 15);
}
#define QX_MADD(w, x) qx_madd (w, x)
#endif
#endif

/* A row of activations in int16 form, the row it holds named by tag
 * (~0: none).  xq: per block 16 ints, pair j as the low and high halves:
 * (x[2j], x[2j+1]) for Q8_0 (adjacent codes), (x[j], x[j+16]) for Q4
 * (the two nibbles of a code byte); xs: per block its scale s; xsum: per
 * block the sum of its 32 int16 values (Q4's offset and min terms). */
typedef struct
{
  uint tag;
#ifdef QX_I16
  int xq[QX_MAX_K / 2];
  float xs[QX_MAX_K / 32];
  int xsum[QX_MAX_K / 32];
#endif
} QxRow;

/* Block b of row a as x0, x1 (32 values), RMS-normalised when has_norm
 * (x inv w, in kernel_rms_norm's order) */
#define ROW_BLOCK(a, b, inv, nw, has_norm, x0, x1)                          \
  float16 x0 = vload16 (0, (a) + (b) * 32), x1 = vload16 (1, (a) + (b) * 32); \
  if (has_norm) {                                                           \
    x0 = x0 * (inv) * vload16 (0, (nw) + (b) * 32);                         \
    x1 = x1 * (inv) * vload16 (1, (nw) + (b) * 32);                         \
  }

/* The int16 form of the nblk blocks of row a (x inv w when has_norm, as
 * PANEL_DOT computes it).  A block holding Inf or NaN gets scale NaN, so
 * its outputs are NaN as the float path's would be (or Inf); a block
 * below 1e-30 in magnitude counts as zero. */
inline void
qx_quant (__global const float *a, float inv, __global const float *nw,
    int has_norm, uint nblk, int q4, QxRow * xr)
{
#ifdef QX_I16
  /* x id rounded once, then to an integer (no FMA): what a plain C
   * reference computes (mm_test_gemv_act) */
#pragma OPENCL FP_CONTRACT OFF
  for (uint b = 0; b < nblk; b++) {
    ROW_BLOCK (a, b, inv, nw, has_norm, x0, x1)
    /* max |x| as the largest bit pattern of the magnitudes (NaN above
     * Inf above every finite value) */
    uint16 m = max (as_uint16 (x0) & 0x7fffffffu,
        as_uint16 (x1) & 0x7fffffffu);
    uint8 m8 = max (m.lo, m.hi);
    uint4 m4 = max (m8.lo, m8.hi);
    uint2 m2 = max (m4.lo, m4.hi);
    float am = as_float (max (m2.x, m2.y));
    bool finite = am <= MAXFLOAT, tiny = !(am >= 1e-30f);
    float id = finite && !tiny ? 32767.0f / am : 0.0f;
    xr->xs[b] = !finite ? NAN : tiny ? 0.0f : am * (1.0f / 32767.0f);
    /* round to nearest: |x id| <= 32767 lands in the low mantissa bits of
     * 1.5 x 2^23 + x id */
    float16 e = (q4 ? x0 : (float16) (x0.even, x1.even)) * id + 12582912.0f;
    float16 o = (q4 ? x1 : (float16) (x0.odd, x1.odd)) * id + 12582912.0f;
    int16 qe = as_int16 (e) - 0x4b400000, qo = as_int16 (o) - 0x4b400000;
    vstore16 ((qe & 0xffff) | (qo << 16), 0, xr->xq + b * 16);
    int16 t = qe + qo;
    int8 t8 = t.lo + t.hi;
    int4 t4 = t8.lo + t8.hi;
    int2 t2 = t4.lo + t4.hi;
    xr->xsum[b] = t2.x + t2.y;
  }
#endif
}

/* 1 / RMS of a row of A (as kernel_rms_norm computes it). */
inline float
row_rms_inv (__global const float *a, uint K, float eps)
{
  float16 acc = 0.0f;
  for (uint k = 0; k < K; k += 16) {
    float16 v = vload16 (0, a + k);
    acc = fma (v, v, acc);
  }
  return rsqrt (hsum16 (acc) / K + eps);
}

/* A row of A against panel @p: c0, c1.  Each block of A is first copied
 * to private memory, RMS-normalised when has_norm (x inv w, in
 * kernel_rms_norm's order); the block kernels broadcast from there.  The
 * prefetch runs QPF records ahead, and past the panel's end into panel
 * @pn, the one this work-item reads next (the next of its run of
 * panels, or at a run's end the caller's guess): with work claimed
 * dynamically the adjacent panel is often another work-item's. */
#define PANEL_DOT(BLOCK, REC, p, pn, c0, c1)                                \
  {                                                                         \
    __global const uchar *panel = B + (ulong) (p) * nblk * (REC);           \
    __global const uchar *pnext_ = B + (ulong) (pn) * nblk * (REC);         \
    QPREFETCH (panel, QPF * (REC))                                          \
    for (uint b = 0; b < nblk; b++) {                                       \
      uint bp_ = b + QPF;                                                   \
      QPREFETCH (bp_ < nblk ? panel + bp_ * (REC)                           \
          : pnext_ + (bp_ - nblk) * (REC), REC)                             \
      float x[32];                                                          \
      ROW_BLOCK (a, b, inv, nw, has_norm, x0, x1)                           \
      vstore16 (x0, 0, x);                                                  \
      vstore16 (x1, 1, x);                                                  \
      BLOCK (panel + b * (REC), x, c0, c1)                                  \
    }                                                                       \
  }

/* 32 output values of a panel, guarded past the end, as two vectors */
#define EPI_LOAD(v0, v1, src, cond)                                         \
  {                                                                         \
    float t_[QP];                                                           \
    for (uint j = 0; j < QP; j++)                                           \
      t_[j] = (cond) && j < nc ? (src)[j] : 0.0f;                           \
    v0 = vload16 (0, t_);                                                   \
    v1 = vload16 (1, t_);                                                   \
  }

/* The end of one output panel p (outputs [p QP, p QP + QP)) of
 *   y = r + act (alpha x' B^T + bias)
 * for one row: c0, c1 the dot products with B (gate's with swiglu), u0,
 * u1 up's (swiglu only): act none, or with swiglu (B holds [gate; up])
 * silu (gate) * up; y into row c, the residual row r added when has_res;
 * nout outputs in all. */
inline void
panel_out (float16 c0, float16 c1, float16 u0, float16 u1, uint p,
    uint nout, __global const float *bias, int has_bias,
    __global const float *r, int has_res, __global float *c, float alpha,
    int swiglu)
{
  uint n0 = p * QP, nc = min ((uint) QP, nout - n0);
  float16 b0, b1;
  EPI_LOAD (b0, b1, bias + n0, has_bias)
  c0 = alpha * c0 + b0;
  c1 = alpha * c1 + b1;
  if (swiglu) {
    EPI_LOAD (b0, b1, bias + nout + n0, has_bias)
    c0 = c0 / (1.0f + exp (-c0)) * (alpha * u0 + b0);
    c1 = c1 / (1.0f + exp (-c1)) * (alpha * u1 + b1);
  }
  EPI_LOAD (b0, b1, r + n0, has_res)
  float t[QP];
  vstore16 (c0 + b0, 0, t);
  vstore16 (c1 + b1, 1, t);
  for (uint j = 0; j < nc; j++)
    c[n0 + j] = t[j];
}

/* One output panel p for one row a of A: x' = a RMS-normalised with
 * weight nw first when has_norm (inv: its 1 / RMS); see panel_out.  np
 * panels (of gate and of up each, with swiglu); pn: the panel (of the
 * np) the caller expects to compute next, for the prefetch. */
#define QGEMV_PANEL(NAME, BLOCK, REC)                                       \
inline void                                                                 \
NAME (__global const float *a, float inv, __global const float *nw,         \
    int has_norm, __global const uchar *B, uint nblk, uint p, uint pn,      \
    uint np, uint nout, __global const float *bias, int has_bias,           \
    __global const float *r, int has_res, __global float *c, float alpha,   \
    int swiglu)                                                             \
{                                                                           \
  float16 c0 = 0.0f, c1 = 0.0f, u0 = 0.0f, u1 = 0.0f;                       \
  PANEL_DOT (BLOCK, REC, p, swiglu ? p + np : pn, c0, c1)                   \
  if (swiglu)                                                               \
    PANEL_DOT (BLOCK, REC, p + np, pn, u0, u1)                              \
  panel_out (c0, c1, u0, u1, p, nout, bias, has_bias, r, has_res, c, alpha, \
      swiglu);                                                              \
}

QGEMV_PANEL (gemv_panel_q8_0, Q8_0_BLOCK, QREC_Q8_0)
QGEMV_PANEL (gemv_panel_q4_0, Q4_0_BLOCK, QREC_Q4_0)
QGEMV_PANEL (gemv_panel_q4_1, Q4_1_BLOCK, QREC_Q4_1)

#ifdef QX_I16
/* A Q8_0 record against the int16 activations of its block (xq: the
 * block's 16 pairs, xs its scale), into e0 (rows 0-7 and 16-23) and e1
 * (rows 8-15 and 24-31): a record's k = 2j and 2j + 1 rows interleave
 * by bytes (unpack, in 128-bit lanes) into the pairs pmaddwd takes. */
#define Q8_0_BLOCK_I16(rec, xq, xs, e0, e1, pf)                             \
  {                                                                         \
    __global const char *q = (__global const char *) (rec);                 \
    qx_v16i a0 = (qx_v16i) ((int16) 0), a1 = (qx_v16i) ((int16) 0);         \
    QPREFETCH ((pf) + 1024, 64)                                             \
    for (uint j = 0; j < 16; j++) {                                         \
      QPREFETCH ((pf) + j * 64, 64)                                         \
      qx_v32c lo = *(__global const qx_v32c *) (q + j * 64);                \
      qx_v32c hi = *(__global const qx_v32c *) (q + j * 64 + 32);           \
      qx_v32s xv = (qx_v32s) ((int16) ((xq)[j]));                           \
      a0 += QX_MADD (__builtin_convertvector (__builtin_shufflevector (lo,  \
                  hi, 0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7,   \
                  39, 16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22,   \
                  54, 23, 55), qx_v32s), xv);                               \
      a1 += QX_MADD (__builtin_convertvector (__builtin_shufflevector (lo,  \
                  hi, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, \
                  15, 47, 24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61,   \
                  30, 62, 31, 63), qx_v32s), xv);                           \
    }                                                                       \
    __global const half *d = (__global const half *) ((rec) + QP * 32);     \
    float16 d0 = (float16) (vload_half8 (0, d), vload_half8 (2, d));        \
    float16 d1 = (float16) (vload_half8 (1, d), vload_half8 (3, d));        \
    e0 = fma (__builtin_convertvector (a0, float16) * (xs), d0, e0);        \
    e1 = fma (__builtin_convertvector (a1, float16) * (xs), d1, e1);        \
  }

/* A Q4_0 / Q4_1 record against the int16 activations of its block
 * (pairs (x[j], x[j+16]): a code byte holds k = j low, k = j + 16 high),
 * into e0 (rows 0-15) and e1 (rows 16-31): a byte's nibbles spread to the
 * two halves of its row's int32 lane.  Q4_0 x = (q - 8) d: the sum less 8
 * xsum; Q4_1 x = q d + m: plus m xsum s. */
#define Q4_BLOCK_I16(rec, xq, xs, xsum, e0, e1, pf, REC, has_min)           \
  {                                                                         \
    __global const uchar *q = (rec);                                        \
    qx_v16i a0 = (qx_v16i) ((int16) 0), a1 = (qx_v16i) ((int16) 0);         \
    QPREFETCH ((pf) + QP * 16, (REC) - QP * 16)                             \
    for (uint j = 0; j < 16; j++) {                                         \
      if (j % 2 == 0)                                                       \
        QPREFETCH ((pf) + j * QP, 64)                                       \
      qx_v16i v0 = __builtin_convertvector (*(__global const qx_v16uc *)    \
          (q + j * QP), qx_v16i);                                           \
      qx_v16i v1 = __builtin_convertvector (*(__global const qx_v16uc *)    \
          (q + j * QP + 16), qx_v16i);                                      \
      qx_v32s xv = (qx_v32s) ((int16) ((xq)[j]));                           \
      a0 += QX_MADD ((qx_v32s) ((v0 & 15) | ((v0 & 0xf0) << 12)), xv);     \
      a1 += QX_MADD ((qx_v32s) ((v1 & 15) | ((v1 & 0xf0) << 12)), xv);     \
    }                                                                       \
    __global const half *d = (__global const half *) ((rec) + QP * 16);     \
    if (has_min) {                                                          \
      float xm_ = (float) (xsum) * (xs);                                    \
      e0 = fma (__builtin_convertvector (a0, float16) * (xs),               \
          vload_half16 (0, d), fma ((float16) xm_, vload_half16 (2, d), e0)); \
      e1 = fma (__builtin_convertvector (a1, float16) * (xs),               \
          vload_half16 (1, d), fma ((float16) xm_, vload_half16 (3, d), e1)); \
    } else {                                                                \
      a0 -= 8 * (xsum);                                                     \
      a1 -= 8 * (xsum);                                                     \
      e0 = fma (__builtin_convertvector (a0, float16) * (xs),               \
          vload_half16 (0, d), e0);                                         \
      e1 = fma (__builtin_convertvector (a1, float16) * (xs),               \
          vload_half16 (1, d), e1);                                         \
    }                                                                       \
  }

/* Block b of a record against the work-item's int16 row xr */
#define Q8_0_BI(rec, b, e0, e1, pf)                                         \
  Q8_0_BLOCK_I16 (rec, xr->xq + (b) * 16, xr->xs[b], e0, e1, pf)
#define Q4_0_BI(rec, b, e0, e1, pf)                                         \
  Q4_BLOCK_I16 (rec, xr->xq + (b) * 16, xr->xs[b], xr->xsum[b], e0, e1,    \
      pf, QREC_Q4_0, 0)
#define Q4_1_BI(rec, b, e0, e1, pf)                                         \
  Q4_BLOCK_I16 (rec, xr->xq + (b) * 16, xr->xs[b], xr->xsum[b], e0, e1,    \
      pf, QREC_Q4_1, 1)

/* PANEL_DOT on the int16 form of the row (xr); e0, e1 hold rows 0-15
 * and 16-31, or with perm Q8_0_BLOCK_I16's order */
#define PANEL_DOT_I16(BLOCK, REC, perm, p, pn, c0, c1)                      \
  {                                                                         \
    __global const uchar *panel = B + (ulong) (p) * nblk * (REC);           \
    __global const uchar *pnext_ = B + (ulong) (pn) * nblk * (REC);         \
    QPREFETCH (panel, QPF * (REC))                                          \
    float16 e0 = 0.0f, e1 = 0.0f;                                           \
    for (uint b = 0; b < nblk; b++) {                                       \
      uint bp_ = b + QPF;                                                   \
      BLOCK (panel + b * (REC), b, e0, e1, bp_ < nblk ? panel + bp_ * (REC) \
          : pnext_ + (bp_ - nblk) * (REC))                                  \
    }                                                                       \
    c0 = perm ? (float16) (e0.lo, e1.lo) : e0;                              \
    c1 = perm ? (float16) (e0.hi, e1.hi) : e1;                              \
  }

#define QGEMV_PANEL_I16(NAME, BLOCK, REC, perm)                             \
inline void                                                                 \
NAME (const QxRow * xr, __global const uchar *B, uint nblk, uint p,         \
    uint pn, uint np, uint nout, __global const float *bias, int has_bias,  \
    __global const float *r, int has_res, __global float *c, float alpha,   \
    int swiglu)                                                             \
{                                                                           \
  float16 c0, c1, u0 = 0.0f, u1 = 0.0f;                                     \
  PANEL_DOT_I16 (BLOCK, REC, perm, p, swiglu ? p + np : pn, c0, c1)         \
  if (swiglu)                                                               \
    PANEL_DOT_I16 (BLOCK, REC, perm, p + np, pn, u0, u1)                    \
  panel_out (c0, c1, u0, u1, p, nout, bias, has_bias, r, has_res, c, alpha, \
      swiglu);                                                              \
}

QGEMV_PANEL_I16 (gemv_panel_q8_0_i16, Q8_0_BI, QREC_Q8_0, 1)
QGEMV_PANEL_I16 (gemv_panel_q4_0_i16, Q4_0_BI, QREC_Q4_0, 0)
QGEMV_PANEL_I16 (gemv_panel_q4_1_i16, Q4_1_BI, QREC_Q4_1, 0)
#endif

/* Quantised types as kernels take them at run time (MmDType order). */
#define QTYPE_Q8_0 3
#define QTYPE_Q4_0 4
#define QTYPE_Q4_1 5

/* Bytes of one panel of a row length k */
inline uint
panel_bytes (int type, uint k)
{
  return (k / 32) * (type == QTYPE_Q8_0 ? QREC_Q8_0 : type == QTYPE_Q4_0 ?
      QREC_Q4_0 : QREC_Q4_1);
}

/* One output panel (see panel_out) of row a of A against B of any
 * quantised type.  xr: the work-item's int16 row; tag names row a (with
 * its norm): when xr holds another, a is converted first. */
inline void
gemv_panel (int type, QxRow * xr, uint tag, __global const float *a,
    float inv, __global const float *nw, int has_norm,
    __global const uchar *B, uint nblk, uint p, uint pn, uint np, uint nout,
    __global const float *bias, int has_bias, __global const float *r,
    int has_res, __global float *c, float alpha, int swiglu)
{
#ifdef QX_I16
  if (nblk <= QX_MAX_K / 32) {
    int q4 = type != QTYPE_Q8_0;
    if (xr->tag != tag * 2 + q4) {
      qx_quant (a, inv, nw, has_norm, nblk, q4, xr);
      xr->tag = tag * 2 + q4;
    }
    if (type == QTYPE_Q8_0)
      gemv_panel_q8_0_i16 (xr, B, nblk, p, pn, np, nout, bias, has_bias, r,
          has_res, c, alpha, swiglu);
    else if (type == QTYPE_Q4_0)
      gemv_panel_q4_0_i16 (xr, B, nblk, p, pn, np, nout, bias, has_bias, r,
          has_res, c, alpha, swiglu);
    else
      gemv_panel_q4_1_i16 (xr, B, nblk, p, pn, np, nout, bias, has_bias, r,
          has_res, c, alpha, swiglu);
    return;
  }
#endif
  if (type == QTYPE_Q8_0)
    gemv_panel_q8_0 (a, inv, nw, has_norm, B, nblk, p, pn, np, nout, bias,
        has_bias, r, has_res, c, alpha, swiglu);
  else if (type == QTYPE_Q4_0)
    gemv_panel_q4_0 (a, inv, nw, has_norm, B, nblk, p, pn, np, nout, bias,
        has_bias, r, has_res, c, alpha, swiglu);
  else
    gemv_panel_q4_1 (a, inv, nw, has_norm, B, nblk, p, pn, np, nout, bias,
        has_bias, r, has_res, c, alpha, swiglu);
}

/* GEMV-shaped work (small M), with the extras of mm_linear_fused:
 *   y = res + act (alpha x' B^T + bias)
 * as gemv_panel for each row of A; y [M, N / 2] with swiglu (N / 2 a
 * multiple of QP), else [M, N]; res [M, ldr] when has_res.  Work-items
 * claim guided runs of output panels (claim_guided) and compute them in
 * groups of up to QGEMV_GROUP_BYTES of weights, each group for every row
 * of A in turn: the group stays in L2 across the rows, and a row's int16
 * form is made once a group (once in all with one row). */
#define QGEMV_GROUP_BYTES (256 * 1024)
#define QGEMV(NAME, TYPE)                                                   \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda,                           \
    __global const uchar *B, uint bo,                                       \
    __global float *C, uint co, uint ldc,                                   \
    __global const float *bias, uint biaso, int has_bias,                   \
    __global const float *res, uint reso, uint ldr, int has_res,            \
    __global const float *nw, uint nwo, int has_norm, float eps,            \
    uint M, uint N, uint K, float alpha, int swiglu,                        \
    volatile __global uint *ctr)                                            \
{                                                                           \
  uint nblk = K / 32, nout = swiglu ? N / 2 : N;                            \
  uint np = (nout + QP - 1) / QP, p0, cnt, inv_row = ~0u;                   \
  uint group = max (1u, QGEMV_GROUP_BYTES / panel_bytes (TYPE, K));         \
  float inv = 1.0f;                                                         \
  QxRow xr;                                                                 \
  xr.tag = ~0u;                                                             \
  while ((cnt = claim_guided (ctr, np, &p0)) > 0)                           \
    for (uint g0 = p0; g0 < p0 + cnt; g0 += group) {                        \
      uint g1 = min (g0 + group, p0 + cnt);                                 \
      for (uint m = 0; m < M; m++) {                                        \
        __global const float *a = A + ao + (ulong) m * lda;                 \
        if (has_norm && inv_row != m) {                                     \
          inv = row_rms_inv (a, K, eps);                                    \
          inv_row = m;                                                      \
        }                                                                   \
        for (uint p = g0; p < g1; p++) {                                    \
          /* next: the group's next panel, its first for the next row,     \
           * the run's next, or (a guess) the first one nobody has taken   \
           * yet */                                                         \
          uint pn = p + 1 < g1 ? p + 1 : m + 1 < M ? g0 : g1 < p0 + cnt ?   \
              g1 : min (ctr[0], np - 1);                                    \
          gemv_panel (TYPE, &xr, m, a, inv, nw + nwo, has_norm, B + bo,     \
              nblk, p, pn, np, nout, bias + biaso, has_bias,                \
              res + reso + (ulong) m * ldr, has_res,                        \
              C + co + (ulong) m * ldc, alpha, swiglu);                     \
        }                                                                   \
      }                                                                     \
    }                                                                       \
  claim_end (ctr);                                                          \
}

QGEMV (kernel_gemv_q8_0, QTYPE_Q8_0)
QGEMV (kernel_gemv_q4_0, QTYPE_Q4_0)
QGEMV (kernel_gemv_q4_1, QTYPE_Q4_1)

/* y[yo] = the longest K of GEMVs with int16 activations, 0: none
 * (mm_gemm_quant_int16_max_k) */
__kernel void
kernel_qx_info (__global int *y, uint yo)
{
#ifdef QX_I16
  y[yo] = QX_MAX_K;
#else
  y[yo] = 0;
#endif
}

/* ---- tiled GEMM for prefill ----
 * gemm.cl's register tiling (a QT_MR x QP tile of C in 2 x QT_MR float16
 * accumulators; per k two vectors of B and QT_MR broadcasts of A) on
 * panels unpacked on the fly: a work-item unpacks a KC x QP slice of a
 * panel into private memory (L1) once, then runs every row tile of its
 * block of C over it.  So B is read quantised (a quarter of F32's bytes
 * for Q8_0), once per row block, and never written back unpacked.
 *
 * mm_linear_fused's RMS norm costs nothing here: rms_norm (x) . B^T =
 * inv (row) * (x . (w B)^T), so the norm weight w scales the unpacked
 * slice (per k) and each output row is scaled by its 1 / RMS at the end. */
#define QT_MR GEMM_MR
#define QT_MB_MAX (8 * QT_MR)
#define QT_KC_MAX 256

/* Blocks [b0, b0 + nb) of the panel's records into bt[k][QP], each k
 * scaled by s[k] (the norm weight; NULL: 1). */
#define QT_SCALE(s, k) ((s) ? (s)[k] : 1.0f)

#define Q8_0_UNPACK(panel, b0, nb, bt, s)                                   \
  for (uint b = 0; b < (nb); b++) {                                         \
    __global const uchar *rec = (panel) + ((b0) + b) * QREC_Q8_0;           \
    __global const char *q = (__global const char *) rec;                   \
    __global const half *dp = (__global const half *) (rec + QP * 32);      \
    float16 d0 = vload_half16 (0, dp), d1 = vload_half16 (1, dp);           \
    float *y = (bt) + b * 32 * QP;                                          \
    for (uint k = 0; k < 32; k++) {                                         \
      float sk = QT_SCALE (s, b * 32 + k);                                  \
      vstore16 (convert_float16 (vload16 (0, q + k * QP)) * (d0 * sk), 0,   \
          y + k * QP);                                                      \
      vstore16 (convert_float16 (vload16 (0, q + k * QP + 16)) * (d1 * sk), \
          0, y + k * QP + 16);                                              \
    }                                                                       \
  }

#define Q4_UNPACK(panel, b0, nb, bt, s, REC, has_min)                       \
  for (uint b = 0; b < (nb); b++) {                                         \
    __global const uchar *q = (panel) + ((b0) + b) * (REC);                 \
    __global const half *dp = (__global const half *) (q + QP * 16);        \
    float16 d0 = vload_half16 (0, dp), d1 = vload_half16 (1, dp);           \
    float16 m0 = has_min ? vload_half16 (2, dp) : -8.0f * d0;               \
    float16 m1 = has_min ? vload_half16 (3, dp) : -8.0f * d1;               \
    float *y = (bt) + b * 32 * QP;                                          \
    for (uint j = 0; j < 16; j++) {                                         \
      uchar16 v0 = vload16 (0, q + j * QP), v1 = vload16 (0, q + j * QP + 16); \
      float sl = QT_SCALE (s, b * 32 + j), sh = QT_SCALE (s, b * 32 + j + 16); \
      float *lo = y + j * QP, *hi = y + (j + 16) * QP;                      \
      vstore16 (fma (convert_float16 (v0 & (uchar16) 0xf), d0, m0) * sl, 0, lo); \
      vstore16 (fma (convert_float16 (v1 & (uchar16) 0xf), d1, m1) * sl, 0,  \
          lo + 16);                                                         \
      vstore16 (fma (convert_float16 (v0 >> (uchar16) 4), d0, m0) * sh, 0, hi); \
      vstore16 (fma (convert_float16 (v1 >> (uchar16) 4), d1, m1) * sh, 0,  \
          hi + 16);                                                         \
    }                                                                       \
  }

#define Q4_0_UNPACK(panel, b0, nb, bt, s)                                   \
  Q4_UNPACK (panel, b0, nb, bt, s, QREC_Q4_0, 0)
#define Q4_1_UNPACK(panel, b0, nb, bt, s)                                   \
  Q4_UNPACK (panel, b0, nb, bt, s, QREC_Q4_1, 1)

/* The tile machinery is gemm.cl's (TILE_ROWS, accumulators c<i>_<j>,
 * TILE_LOAD_C / TILE_ADD_RES / TILE_STORE_C); the last K slice scales by
 * alpha and the row's 1 / RMS, then adds the bias. */
#define QT_FIN(i)                                                           \
  {                                                                         \
    float s_ = alpha * inv[min ((uint) (i), mc - 1) + m0 - m_beg];          \
    c##i##_0 = s_ * c##i##_0 + bv0;                                         \
    c##i##_1 = s_ * c##i##_1 + bv1;                                         \
  }

/* C = res + alpha rms_norm (A) . B^T + bias, the norm (weight nw) when
 * has_norm, res [M, ldr] when has_res.  Work-item (x, y) computes rows
 * [y MB, y MB + MB) (MB a multiple of QT_MR, at most QT_MB_MAX) and
 * panels [x NBP, x NBP + NBP) of C; KC a multiple of 32, at most
 * QT_KC_MAX. */
#define QGEMM_TILED(NAME, UNPACK, REC)                                      \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda,                           \
    __global const uchar *B, uint bo,                                       \
    __global float *C, uint co, uint ldc,                                   \
    __global const float *bias, uint biaso, int has_bias,                   \
    __global const float *res, uint reso, uint ldr, int has_res,            \
    __global const float *nw, uint nwo, int has_norm, float eps,            \
    uint M, uint N, uint K, float alpha, uint MB, uint NBP, uint KC)        \
{                                                                           \
  uint np = (N + QP - 1) / QP, nblk = K / 32;                               \
  uint p_beg = GID0 * NBP, m_beg = GID1 * MB;                               \
  if (p_beg >= np || m_beg >= M)                                            \
    return;                                                                 \
  uint p_end = min (p_beg + NBP, np), m_end = min (m_beg + MB, M);          \
  A += ao;                                                                  \
  B += bo;                                                                  \
  C += co;                                                                  \
  res += reso;                                                              \
  float bt[QT_KC_MAX * QP];     /* unpacked slice of a panel */             \
  float t[QT_MR * QP];          /* edge tiles and bias */                   \
  float inv[QT_MB_MAX];         /* 1 / RMS of the block's rows */           \
  for (uint m = m_beg; m < m_end; m++)                                      \
    inv[m - m_beg] = has_norm ? row_rms_inv (A + (ulong) m * lda, K, eps)   \
        : 1.0f;                                                             \
  for (uint k0 = 0; k0 < K; k0 += KC) {                                     \
    uint kn = min (KC, K - k0);                                             \
    bool last = k0 + kn == K;                                               \
    __global const float *ns = has_norm ? nw + nwo + k0 : 0;                \
    for (uint p = p_beg; p < p_end; p++) {                                  \
      UNPACK (B + (ulong) p * nblk * (REC), k0 / 32, kn / 32, bt, ns)       \
      uint n0 = p * QP, nc = min ((uint) QP, N - n0);                       \
      float16 bv0 = 0.0f, bv1 = 0.0f;                                       \
      if (last && has_bias) {                                               \
        for (uint c = 0; c < QP; c++)                                       \
          t[c] = c < nc ? bias[biaso + n0 + c] : 0.0f;                      \
        bv0 = vload16 (0, t);                                               \
        bv1 = vload16 (1, t);                                               \
      }                                                                     \
      for (uint m0 = m_beg; m0 < m_end; m0 += QT_MR) {                      \
        uint mc = min ((uint) QT_MR, M - m0);                               \
        bool full = mc == QT_MR && nc == QP;                                \
        __global float *ct = C + (ulong) m0 * ldc + n0;                     \
        TILE_ROWS (ACC_DECL_ROW)                                            \
        if (k0 > 0)                                                         \
          TILE_LOAD_C (ct, ldc)                                             \
        __global const float *ap = A + (ulong) m0 * lda + k0;               \
        TILE_ROWS (ROW_OFFSET)                                              \
        const float *bp = bt;                                               \
        for (uint k = 0; k < kn; k++) {                                     \
          float16 b0 = vload16 (0, bp), b1 = vload16 (1, bp);               \
          TILE_ROWS (ROW_FMA)                                               \
          ap++;                                                             \
          bp += QP;                                                         \
        }                                                                   \
        if (last) {                                                         \
          TILE_ROWS (QT_FIN)                                                \
          if (has_res)                                                      \
            TILE_ADD_RES (res + (ulong) m0 * ldr + n0, ldr)                 \
        }                                                                   \
        TILE_STORE_C (ct, ldc)                                              \
      }                                                                     \
    }                                                                       \
  }                                                                         \
}

QGEMM_TILED (kernel_gemm_q8_0, Q8_0_UNPACK, QREC_Q8_0)
QGEMM_TILED (kernel_gemm_q4_0, Q4_0_UNPACK, QREC_Q4_0)
QGEMM_TILED (kernel_gemm_q4_1, Q4_1_UNPACK, QREC_Q4_1)

/* ---- row gather (embedding lookup) from panels ----
 * y[r] = row ids[r] of B, F32.  One (block, id) per work-item. */
#define QROW_REC(REC)                                                       \
  uint b = GID0, r = GID1, nblk = K / 32;                                   \
  uint id = ids[io + r], i = id % QP;                                       \
  __global const uchar *rec = B + bo + ((ulong) (id / QP) * nblk + b) * (REC); \
  __global float *yr = y + yo + (ulong) r * K + b * 32;

__kernel void
kernel_get_rows_q8_0 (__global const uchar *B, uint bo,
    __global const int *ids, uint io, __global float *y, uint yo, uint K)
{
  QROW_REC (QREC_Q8_0)
  float d = vload_half (i, (__global const half *) (rec + QP * 32));
  for (uint k = 0; k < 32; k++)
    yr[k] = (float) ((__global const char *) rec)[k * QP + i] * d;
}

__kernel void
kernel_get_rows_q4_0 (__global const uchar *B, uint bo,
    __global const int *ids, uint io, __global float *y, uint yo, uint K)
{
  QROW_REC (QREC_Q4_0)
  float d = vload_half (i, (__global const half *) (rec + QP * 16));
  for (uint j = 0; j < 16; j++) {
    uchar v = rec[j * QP + i];
    yr[j] = ((float) (v & 0xf) - 8.0f) * d;
    yr[j + 16] = ((float) (v >> 4) - 8.0f) * d;
  }
}

__kernel void
kernel_get_rows_q4_1 (__global const uchar *B, uint bo,
    __global const int *ids, uint io, __global float *y, uint yo, uint K)
{
  QROW_REC (QREC_Q4_1)
  float d = vload_half (i, (__global const half *) (rec + QP * 16));
  float m = vload_half (QP + i, (__global const half *) (rec + QP * 16));
  for (uint j = 0; j < 16; j++) {
    uchar v = rec[j * QP + i];
    yr[j] = fma ((float) (v & 0xf), d, m);
    yr[j + 16] = fma ((float) (v >> 4), d, m);
  }
}
