/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GEMM for CPU-class OpenCL devices: C[b] = alpha * A[b] . B[b / bdiv]^T
 * (+ bias).  A [M, K] (F32), B [N, K] (weights [out, in], F32 or F16),
 * C [M, N].
 *
 * Everything launches with local size 1 and no local memory or barriers:
 * on PoCL's CPU device a work-group is a plain function call, and kernels
 * with barriers measured 15-20x slower.  A work-group costs about a
 * microsecond to schedule, so each work-item owns a whole block of C and
 * loops over register tiles inside it.  PoCL does not unroll loops by
 * itself: tiles are written out with macros.
 *
 * Two families:
 *
 * - Tiled (kernel_gemm_tiled_*), for M >= 48 rows (M >= 4 when the weight
 *   was packed at load).  A BLIS-style outer-product micro-kernel: a
 *   GEMM_MR x GEMM_NR tile of C in GEMM_MR * GEMM_NV float16 registers;
 *   per k it loads GEMM_NV vectors of B and broadcasts GEMM_MR scalars of
 *   A.  B is first packed by kernel_gemm_pack_* into panels
 *   ([N/NR][K][NR], zero padded), so its NR columns at one k are one
 *   contiguous vector load; A is read in place (MR row streams).  K is blocked by KC so a B micro-panel (KC x NR) stays in L1
 *   while the work-item walks down its rows.  B panels of a weight can be
 *   made once at load (mm_gemm_pack_weight); kernel_gemv_packed_* serves
 *   M < 4 on them.
 *
 * - Dot form (kernel_gemm_f32/f16, kernel_gemv_f32/f16), for small M on B
 *   as stored (decode-time GEMV, a few rows): 16 lanes along K per
 *   accumulator and a horizontal sum at the end.  Memory bound.
 *
 * mm-gemm.c mirrors GEMM_MR and GEMM_NR; change both together.
 */

#define LOADB_F32(p, k) vload16 (0, (p) + (k))
#define LOADB_F16(p, k) vload_half16 (0, (p) + (k))
#define SCALARB_F32(p, k) ((p)[k])
#define SCALARB_F16(p, k) vload_half ((k), (p))

/* ------------------------------------------------------------------ */
/* Packing                                                             */
/* ------------------------------------------------------------------ */

/* Panels of W rows: dst[b][r / W][k][r % W] = src[b][r][k], rows past
 * @rows zero.  One work-item per (PACK_KC slice of K, panel, batch).
 * A pure permutation, so F16 data is moved as its 16-bit patterns. */
#define PACK_KC 64

#define GEMM_PACK(NAME, T, T16)                                             \
__kernel void                                                               \
NAME (__global const T *src, uint so, uint ld, uint sbatch, uint rows,      \
    uint K, __global T *dst, uint dsto, uint W)                             \
{                                                                           \
  uint k0 = GID0 * PACK_KC, r0 = GID1 * W, b = GID2;                        \
  uint kn = min ((uint) PACK_KC, K - k0);                                   \
  uint rows_p = (rows + W - 1) / W * W;                                     \
  src += so + (ulong) b * sbatch;                                           \
  dst += dsto + (ulong) b * rows_p * K + (ulong) r0 * K + (ulong) k0 * W;   \
  for (uint r = 0; r < W; r++) {                                            \
    __global T *d = dst + r;                                                \
    if (r0 + r >= rows) {                                                   \
      for (uint k = 0; k < kn; k++)                                         \
        d[k * W] = 0;                                                       \
      continue;                                                             \
    }                                                                       \
    __global const T *s = src + (ulong) (r0 + r) * ld + k0;                 \
    uint k = 0;                                                             \
    for (; k + 16 <= kn; k += 16) {                                         \
      T16 v = vload16 (0, s + k);                                           \
      d[(k + 0) * W] = v.s0; d[(k + 1) * W] = v.s1;                         \
      d[(k + 2) * W] = v.s2; d[(k + 3) * W] = v.s3;                         \
      d[(k + 4) * W] = v.s4; d[(k + 5) * W] = v.s5;                         \
      d[(k + 6) * W] = v.s6; d[(k + 7) * W] = v.s7;                         \
      d[(k + 8) * W] = v.s8; d[(k + 9) * W] = v.s9;                         \
      d[(k + 10) * W] = v.sa; d[(k + 11) * W] = v.sb;                       \
      d[(k + 12) * W] = v.sc; d[(k + 13) * W] = v.sd;                       \
      d[(k + 14) * W] = v.se; d[(k + 15) * W] = v.sf;                       \
    }                                                                       \
    for (; k < kn; k++)                                                     \
      d[k * W] = s[k];                                                      \
  }                                                                         \
}

GEMM_PACK (kernel_gemm_pack_f32, float, float16)

/* Panels of a matrix whose columns are the panel's: dst[b][c / NR][k]
 * [c % NR] = src[b sbatch + k ld + c] for c < N (N a multiple of NR),
 * e.g. per head V [keys, d] into the B panels of P . V: runs of NR
 * contiguous floats, no transposition.  One work-item per (PACK_KC rows,
 * panel, batch). */
__kernel void
kernel_gemm_pack_rows_f32 (__global const float *src, uint so, uint ld,
    uint sbatch, uint N, uint K, __global float *dst, uint dsto)
{
  uint k0 = GID0 * PACK_KC, p = GID1, b = GID2;
  uint kn = min ((uint) PACK_KC, K - k0);
  src += so + (ulong) b * sbatch + (ulong) k0 * ld + p * 32;
  dst += dsto + ((ulong) b * N + p * 32) * K + (ulong) k0 * 32;
  for (uint k = 0; k < kn; k++) {
    vstore16 (vload16 (0, src + (ulong) k * ld), 0, dst + k * 32);
    vstore16 (vload16 (1, src + (ulong) k * ld), 0, dst + k * 32 + 16);
  }
}
GEMM_PACK (kernel_gemm_pack_f16, ushort, ushort16)

/* ------------------------------------------------------------------ */
/* Tiled outer-product GEMM on packed panels                           */
/* ------------------------------------------------------------------ */

/* 12 x 32 tile: 24 accumulators + 2 B vectors + 1 broadcast of the 32
 * zmm registers; per k 2 vector loads and 12 broadcasts feed 24 FMAs. */
#define GEMM_MR 12
#define GEMM_NV 2
#define GEMM_NR (16 * GEMM_NV)

#define TILE_ROWS(X) X (0) X (1) X (2) X (3) X (4) X (5) X (6) X (7)      \
  X (8) X (9) X (10) X (11)
#define TILE_VECS(X) X (0) X (1)
#define TILE_ROW_VECS(X, i) X (i, 0) X (i, 1)

/* c<i>_<j>: tile row i, columns 16 j .. 16 j + 15 */
#define ACC_DECL_ROW(i) TILE_ROW_VECS (ACC_DECL, i)
#define ACC_DECL(i, j) float16 c##i##_##j = 0.0f;
#define ACC_LOAD_ROW(i) TILE_ROW_VECS (ACC_LOAD, i)
#define ACC_LOAD(i, j) c##i##_##j = vload16 (j, cl + (i) * ldl);
#define ACC_STORE_ROW(i) TILE_ROW_VECS (ACC_STORE, i)
#define ACC_STORE(i, j) vstore16 (c##i##_##j, j, cl + (i) * ldl);
#define ACC_FIN_ROW(i) TILE_ROW_VECS (ACC_FIN, i)
#define ACC_FIN_PLAIN_ROW(i) TILE_ROW_VECS (ACC_FIN_PLAIN, i)
#define ACC_FIN_PLAIN(i, j) c##i##_##j = alpha * c##i##_##j + bv##j;
#define ACC_FIN(i, j)                                                       \
  c##i##_##j = act16 (act, rs_##i * c##i##_##j + bv##j);
/* alpha, times the row's scale when has_rs (rows past M repeat M - 1) */
#define ROW_SCALE(i)                                                        \
  float rs_##i = alpha * (has_rs ? rs[rso + m0 + min ((uint) (i), mc - 1)] : 1.0f);
#define RES_ADD_ROW(i) TILE_ROW_VECS (RES_ADD, i)
#define RES_ADD(i, j) c##i##_##j += vload16 (j, cl + (i) * ldl);
#define BIAS_LOAD(j) bv##j = vload16 (j, t);
#define ROW_OFFSET(i) uint ro##i = min ((uint) (i), mc - 1) * lda;
#define ROW_FMA(i)                                                          \
  {                                                                         \
    float16 a = (float16) (ap[ro##i]);                                      \
    TILE_ROW_VECS (ACC_FMA, i)                                              \
  }
#define ACC_FMA(i, j) c##i##_##j = fma (a, b##j, c##i##_##j);

/* Tile rows/columns past M/N go through a private copy so the guards stay
 * out of the vector code. */
#define TILE_COPY(dst, ldd, src, lds, rows, cols)                           \
  for (uint r_ = 0; r_ < (rows); r_++)                                      \
    for (uint c_ = 0; c_ < (cols); c_++)                                    \
      (dst)[r_ * (ldd) + c_] = (src)[r_ * (lds) + c_];

/* A tile of C at ct (rows ldc apart) into the accumulators, the residual
 * tile at rt (rows ldr apart) added to them, the accumulators stored to
 * ct; edge tiles (not full: mc rows, nc columns) go through the private
 * tile t (zero past the edge).  TILE_READ runs ROW on each row of the
 * tile at src (rows lds apart) as cl. */
#define TILE_READ(src, lds, ROW)                                            \
  {                                                                         \
  if (full) {                                                               \
    __global const float *cl = (src);                                       \
    uint ldl = (lds);                                                       \
    TILE_ROWS (ROW)                                                         \
  } else {                                                                  \
    float *cl = t;                                                          \
    uint ldl = GEMM_NR;                                                     \
    for (uint i_ = 0; i_ < GEMM_MR * GEMM_NR; i_++)                         \
      t[i_] = 0.0f;                                                         \
    TILE_COPY (t, GEMM_NR, src, lds, mc, nc)                                \
    TILE_ROWS (ROW)                                                         \
  }                                                                         \
  }
#define TILE_LOAD_C(ct, ldc) TILE_READ (ct, ldc, ACC_LOAD_ROW)
#define TILE_ADD_RES(rt, ldr) TILE_READ (rt, ldr, RES_ADD_ROW)
#define TILE_STORE_C(ct, ldc)                                               \
  {                                                                         \
  if (full) {                                                               \
    __global float *cl = (ct);                                              \
    uint ldl = (ldc);                                                       \
    TILE_ROWS (ACC_STORE_ROW)                                               \
  } else {                                                                  \
    float *cl = t;                                                          \
    uint ldl = GEMM_NR;                                                     \
    TILE_ROWS (ACC_STORE_ROW)                                               \
    TILE_COPY (ct, ldc, t, GEMM_NR, mc, nc)                                 \
  }                                                                         \
  }

/* C = res + act (alpha rs . A B^T + bias): epilogue on the last K slice
 * with, when asked, a scale per row of C (rs [batch][M], batch stride
 * srs), an activation (act16) and a residual (res [batch][M, ldr], batch
 * stride sr) added last.  Block (x, y, b) computes rows [y MB, y MB + MB)
 * and columns [x NB, x NB + NB) of C[b].
 * A [M, K] rows lda, batch stride sa, read as it is: each k broadcasts
 * one element from each of the tile's MR rows (rows past M repeat row
 * M - 1; their results are never stored).  Bp: panels of NR columns,
 * element (n, k) of batch b at (b / bdiv) bsb + (n / NR) bsp + k NR
 * + n % NR (packed: [batch / bdiv][Np / NR][K][NR], Np: N rounded up to
 * the tile).  F32 or F16
 * (widened as it is loaded).  MB and NB are multiples of MR and NR. */
#define GEMM_TILED_ARGS(BT)                                                 \
    __global const float *A, uint ao, uint lda, uint sa,                    \
    __global const BT *Bp, uint bpo, uint bdiv, uint bsb, uint bsp,         \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha, uint MB, uint NB, uint KC,         \
    int act, __global const float *res, uint reso, uint ldr, uint sr,       \
    int has_res, __global const float *rs, uint rso, uint srs, int has_rs

/* Blocks in the order of a (column block, row block, batch) grid, column
 * blocks first: claimed by the work-items (claim_unit), or one per
 * work-item when there are as many (devices other than CPUs). */
#define GEMM_TILED(NAME, BT, B_LOAD, EPI)                                   \
GEMM_TILED_BLOCK (NAME##_block, BT, B_LOAD, EPI)                            \
__kernel void                                                               \
NAME (GEMM_TILED_ARGS (BT), uint nbx, uint nby, uint n_units,               \
    volatile __global uint *ctr)                                            \
{                                                                           \
  if (get_global_size (0) == n_units) {                                     \
    uint u = GID0;                                                          \
    NAME##_block (A, ao, lda, sa, Bp, bpo, bdiv, bsb, bsp, C, co, ldc,      \
        sc, bias, biaso, has_bias, M, N, K, alpha, MB, NB, KC, act, res,    \
        reso, ldr, sr, has_res, rs, rso, srs, has_rs, u % nbx,              \
        u / nbx % nby, u / (nbx * nby));                                    \
    return;                                                                 \
  }                                                                         \
  for (uint u; (u = claim_unit (ctr)) < n_units;)                           \
    NAME##_block (A, ao, lda, sa, Bp, bpo, bdiv, bsb, bsp, C, co, ldc,      \
        sc, bias, biaso, has_bias, M, N, K, alpha, MB, NB, KC, act, res,    \
        reso, ldr, sr, has_res, rs, rso, srs, has_rs, u % nbx,              \
        u / nbx % nby, u / (nbx * nby));                                    \
  claim_end (ctr);                                                          \
}

#define GEMM_TILED_BLOCK(NAME, BT, B_LOAD, EPI)                             \
inline void                                                                 \
NAME (GEMM_TILED_ARGS (BT), uint gx, uint gy, uint bt)                      \
{                                                                           \
  uint n_beg = gx * NB, m_beg = gy * MB;                                    \
  if (n_beg >= N || m_beg >= M)                                             \
    return;                                                                 \
  uint n_end = min (n_beg + NB, N), m_end = min (m_beg + MB, M);            \
  A += ao + (ulong) bt * sa;                                                \
  Bp += bpo + (ulong) (bt / bdiv) * bsb;                                    \
  C += co + (ulong) bt * sc;                                                \
  res += reso + (ulong) bt * sr;                                            \
  rs += (ulong) bt * srs;                                                   \
  float t[GEMM_MR * GEMM_NR];   /* edge tiles and bias */                   \
                                                                            \
  for (uint k0 = 0; k0 < K; k0 += KC) {                                     \
    uint kn = min (KC, K - k0);                                             \
    bool last = k0 + kn == K;                                               \
    for (uint n0 = n_beg; n0 < n_end; n0 += GEMM_NR) {                      \
      __global const BT *bpanel = Bp + (ulong) (n0 / GEMM_NR) * bsp         \
          + (ulong) k0 * GEMM_NR;                                           \
      uint nc = min ((uint) GEMM_NR, N - n0);                               \
      float16 bv0 = 0.0f, bv1 = 0.0f;                                       \
      if (last && has_bias) {                                               \
        for (uint c = 0; c < GEMM_NR; c++)                                  \
          t[c] = c < nc ? bias[biaso + n0 + c] : 0.0f;                      \
        TILE_VECS (BIAS_LOAD)                                               \
      }                                                                     \
      for (uint m0 = m_beg; m0 < m_end; m0 += GEMM_MR) {                    \
        uint mc = min ((uint) GEMM_MR, M - m0);                             \
        bool full = mc == GEMM_MR && nc == GEMM_NR;                         \
        __global float *ct = C + (ulong) m0 * ldc + n0;                     \
        TILE_ROWS (ACC_DECL_ROW)                                            \
        if (k0 > 0) {                                                       \
          /* partial sums of the previous K blocks */                       \
          TILE_LOAD_C (ct, ldc)                                             \
        }                                                                   \
        /* one pointer and loop-invariant row offsets: 12 row pointers */   \
        /* would not fit the general registers */                           \
        __global const float *ap = A + (ulong) m0 * lda + k0;               \
        TILE_ROWS (ROW_OFFSET)                                              \
        __global const BT *bp = bpanel;                                     \
        for (uint k = 0; k < kn; k++) {                                     \
          TILE_VECS (B_LOAD)                                                \
          TILE_ROWS (ROW_FMA)                                               \
          ap++;                                                             \
          bp += GEMM_NR;                                                    \
        }                                                                   \
        if (last && (!EPI || !(act | has_rs | has_res))) {                  \
          TILE_ROWS (ACC_FIN_PLAIN_ROW)                                     \
        } else if (last) {                                                  \
          TILE_ROWS (ROW_SCALE)                                             \
          TILE_ROWS (ACC_FIN_ROW)                                           \
          if (has_res) {                                                    \
            TILE_ADD_RES (res + (ulong) m0 * ldr + n0, ldr)                 \
          }                                                                 \
        }                                                                   \
        TILE_STORE_C (ct, ldc)                                              \
      }                                                                     \
    }                                                                       \
  }                                                                         \
}

#define B_LOAD_F32(j) float16 b##j = vload16 (j, bp);
#define B_LOAD_F16(j) float16 b##j = vload_half16 (j, bp);
/* The epilogue's extras (act, rs, res) only in the _epi kernels: their
 * code in the plain kernel slowed its short-K tiles (Q . K^T) by ~10 %. */
GEMM_TILED (kernel_gemm_tiled_f32, float, B_LOAD_F32, 0)
GEMM_TILED (kernel_gemm_tiled_f16, half, B_LOAD_F16, 0)
GEMM_TILED (kernel_gemm_tiled_epi_f32, float, B_LOAD_F32, 1)
GEMM_TILED (kernel_gemm_tiled_epi_f16, half, B_LOAD_F16, 1)

/* GEMV on packed B (weights packed once by mm_gemm_pack_weight): one row
 * of A per work-item row, NB columns (a multiple of NR) per work-item.
 * Two K-interleaved accumulator pairs hide the FMA latency; the weight
 * panel is one contiguous stream. */
#define GEMV_PACKED(NAME, BT, B_LOAD)                                       \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda,                           \
    __global const BT *Bp, uint bpo,                                        \
    __global float *C, uint co, uint ldc,                                   \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha, uint NB)                           \
{                                                                           \
  uint n_beg = GID0 * NB, m = GID1;                                         \
  if (n_beg >= N || m >= M)                                                 \
    return;                                                                 \
  uint n_end = min (n_beg + NB, N);                                         \
  __global const float *a = A + ao + (ulong) m * lda;                       \
  Bp += bpo;                                                                \
  C += co + (ulong) m * ldc;                                                \
  for (uint n0 = n_beg; n0 < n_end; n0 += GEMM_NR) {                        \
    __global const BT *bp = Bp + (ulong) n0 * K;                            \
    float16 c0 = 0.0f, c1 = 0.0f, d0 = 0.0f, d1 = 0.0f;                     \
    uint k = 0;                                                             \
    for (; k + 2 <= K; k += 2) {                                            \
      float16 x = (float16) (a[k]), y = (float16) (a[k + 1]);               \
      c0 = fma (x, B_LOAD (0, bp), c0);                                     \
      c1 = fma (x, B_LOAD (1, bp), c1);                                     \
      d0 = fma (y, B_LOAD (2, bp), d0);                                     \
      d1 = fma (y, B_LOAD (3, bp), d1);                                     \
      bp += 2 * GEMM_NR;                                                    \
    }                                                                       \
    if (k < K) {                                                            \
      float16 x = (float16) (a[k]);                                         \
      c0 = fma (x, B_LOAD (0, bp), c0);                                     \
      c1 = fma (x, B_LOAD (1, bp), c1);                                     \
    }                                                                       \
    uint nc = min ((uint) GEMM_NR, N - n0);                                 \
    float t[GEMM_NR];                                                       \
    vstore16 (c0 + d0, 0, t);                                               \
    vstore16 (c1 + d1, 1, t);                                               \
    for (uint j = 0; j < nc; j++)                                           \
      C[n0 + j] = alpha * t[j] + (has_bias ? bias[biaso + n0 + j] : 0.0f);  \
  }                                                                         \
}

GEMV_PACKED (kernel_gemv_packed_f32, float, vload16)
GEMV_PACKED (kernel_gemv_packed_f16, half, vload_half16)

/* ------------------------------------------------------------------ */
/* Dot form on B [N, K] as stored: small M                             */
/* ------------------------------------------------------------------ */

/* Work-item (x, y, b) computes tile row y (TM rows) for columns
 * [x NB, x NB + NB) of C[b], 4 columns at a time; NB is a multiple of 4. */
#define DOT_PROLOGUE                                                        \
  uint nb0 = GID0 * NB, tm = GID1, bt = GID2;                               \
  if (nb0 >= N || tm * TM >= M)                                             \
    return;                                                                 \
  uint nb1 = min (nb0 + NB, N);                                             \
  A += ao + bt * sa;                                                        \
  B += bo + (bt / bdiv) * sb;                                               \
  C += co + bt * sc;

#define DOT_BROWS(BT)                                                       \
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
    uint M, uint N, uint K, float alpha, uint NB)                           \
{                                                                           \
  const uint TM = 4;                                                        \
  DOT_PROLOGUE                                                              \
  uint m0 = tm * 4;                                                         \
  __global const float *a0 = A + (ulong) min (m0 + 0, M - 1) * lda;         \
  __global const float *a1 = A + (ulong) min (m0 + 1, M - 1) * lda;         \
  __global const float *a2 = A + (ulong) min (m0 + 2, M - 1) * lda;         \
  __global const float *a3 = A + (ulong) min (m0 + 3, M - 1) * lda;         \
  for (uint n0 = nb0; n0 < nb1; n0 += 4) {                                  \
    DOT_BROWS (BT)                                                          \
    float16 c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0,  \
        c13 = 0, c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0,      \
        c32 = 0, c33 = 0;                                                   \
    uint k = 0;                                                             \
    for (; k + 16 <= K; k += 16) {                                          \
      float16 w0 = LOADB (b0, k), w1 = LOADB (b1, k);                       \
      float16 w2 = LOADB (b2, k), w3 = LOADB (b3, k);                       \
      float16 x = vload16 (0, a0 + k);                                      \
      c00 = fma (x, w0, c00); c01 = fma (x, w1, c01);                       \
      c02 = fma (x, w2, c02); c03 = fma (x, w3, c03);                       \
      x = vload16 (0, a1 + k);                                              \
      c10 = fma (x, w0, c10); c11 = fma (x, w1, c11);                       \
      c12 = fma (x, w2, c12); c13 = fma (x, w3, c13);                       \
      x = vload16 (0, a2 + k);                                              \
      c20 = fma (x, w0, c20); c21 = fma (x, w1, c21);                       \
      c22 = fma (x, w2, c22); c23 = fma (x, w3, c23);                       \
      x = vload16 (0, a3 + k);                                              \
      c30 = fma (x, w0, c30); c31 = fma (x, w1, c31);                       \
      c32 = fma (x, w2, c32); c33 = fma (x, w3, c33);                       \
    }                                                                       \
    float r00 = hsum16 (c00), r01 = hsum16 (c01), r02 = hsum16 (c02),       \
        r03 = hsum16 (c03), r10 = hsum16 (c10), r11 = hsum16 (c11),         \
        r12 = hsum16 (c12), r13 = hsum16 (c13), r20 = hsum16 (c20),         \
        r21 = hsum16 (c21), r22 = hsum16 (c22), r23 = hsum16 (c23),         \
        r30 = hsum16 (c30), r31 = hsum16 (c31), r32 = hsum16 (c32),         \
        r33 = hsum16 (c33);                                                 \
    for (; k < K; k++) {                                                    \
      float w0 = SCALARB (b0, k), w1 = SCALARB (b1, k);                     \
      float w2 = SCALARB (b2, k), w3 = SCALARB (b3, k);                     \
      float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];                 \
      r00 += x0 * w0; r01 += x0 * w1; r02 += x0 * w2; r03 += x0 * w3;       \
      r10 += x1 * w0; r11 += x1 * w1; r12 += x1 * w2; r13 += x1 * w3;       \
      r20 += x2 * w0; r21 += x2 * w1; r22 += x2 * w2; r23 += x2 * w3;       \
      r30 += x3 * w0; r31 += x3 * w1; r32 += x3 * w2; r33 += x3 * w3;       \
    }                                                                       \
    STORE (m0 + 0, 0, r00) STORE (m0 + 0, 1, r01)                           \
    STORE (m0 + 0, 2, r02) STORE (m0 + 0, 3, r03)                           \
    STORE (m0 + 1, 0, r10) STORE (m0 + 1, 1, r11)                           \
    STORE (m0 + 1, 2, r12) STORE (m0 + 1, 3, r13)                           \
    STORE (m0 + 2, 0, r20) STORE (m0 + 2, 1, r21)                           \
    STORE (m0 + 2, 2, r22) STORE (m0 + 2, 3, r23)                           \
    STORE (m0 + 3, 0, r30) STORE (m0 + 3, 1, r31)                           \
    STORE (m0 + 3, 2, r32) STORE (m0 + 3, 3, r33)                           \
  }                                                                         \
}

/* ---- 1 x 4 tiles: GEMV-shaped work, memory bound ---- */
#define GEMM_1x4(NAME, BT, LOADB, SCALARB)                                  \
__kernel void                                                               \
NAME (__global const float *A, uint ao, uint lda, uint sa,                  \
    __global const BT *B, uint bo, uint ldb, uint sb, uint bdiv,            \
    __global float *C, uint co, uint ldc, uint sc,                          \
    __global const float *bias, uint biaso, int has_bias,                   \
    uint M, uint N, uint K, float alpha, uint NB)                           \
{                                                                           \
  const uint TM = 1;                                                        \
  DOT_PROLOGUE                                                              \
  uint m0 = tm;                                                             \
  __global const float *a0 = A + (ulong) m0 * lda;                          \
  for (uint n0 = nb0; n0 < nb1; n0 += 4) {                                  \
    DOT_BROWS (BT)                                                          \
    float16 c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                 \
    uint k = 0;                                                             \
    for (; k + 16 <= K; k += 16) {                                          \
      float16 x = vload16 (0, a0 + k);                                      \
      c0 = fma (x, LOADB (b0, k), c0);                                      \
      c1 = fma (x, LOADB (b1, k), c1);                                      \
      c2 = fma (x, LOADB (b2, k), c2);                                      \
      c3 = fma (x, LOADB (b3, k), c3);                                      \
    }                                                                       \
    float r0 = hsum16 (c0), r1 = hsum16 (c1), r2 = hsum16 (c2),             \
        r3 = hsum16 (c3);                                                   \
    for (; k < K; k++) {                                                    \
      float x = a0[k];                                                      \
      r0 += x * SCALARB (b0, k); r1 += x * SCALARB (b1, k);                 \
      r2 += x * SCALARB (b2, k); r3 += x * SCALARB (b3, k);                 \
    }                                                                       \
    STORE (m0, 0, r0) STORE (m0, 1, r1) STORE (m0, 2, r2) STORE (m0, 3, r3) \
  }                                                                         \
}

GEMM_4x4 (kernel_gemm_f32, float, LOADB_F32, SCALARB_F32)
GEMM_4x4 (kernel_gemm_f16, half, LOADB_F16, SCALARB_F16)
GEMM_1x4 (kernel_gemv_f32, float, LOADB_F32, SCALARB_F32)
GEMM_1x4 (kernel_gemv_f16, half, LOADB_F16, SCALARB_F16)
