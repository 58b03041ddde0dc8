/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attention over a KV cache (mm_kv_store, mm_attention_cached).  Per
 * layer the cache holds K head-major, [n_kv_head, n_ctx, d], and V
 * transposed, [n_kv_head, d, n_ctx]: for prefill both are B operands of
 * the strided-batched GEMM as they lie (S = Q K^T, O = P V), and decode
 * reads each head's keys and values as contiguous rows.
 */

/* k, v [n, n_kv_head, d] into the caches at positions pos0 .. pos0 + n. */
__kernel void
kernel_kv_store (__global const float *k, uint ko, __global const float *v,
    uint vo, __global float *kc, uint kco, __global float *vc, uint vco,
    uint n_kv_head, uint d, uint n_ctx, uint pos0)
{
  uint c = GID0, t = GID1, h = GID2;
  ulong src = ((ulong) t * n_kv_head + h) * d + c;
  kc[kco + ((ulong) h * n_ctx + pos0 + t) * d + c] = k[ko + src];
  vc[vco + ((ulong) h * d + c) * n_ctx + pos0 + t] = v[vo + src];
}

/* ---- decode: few query rows against a head's cache ----
 * Keys and V^T rows are dotted in blocks of 16: 16 accumulators of 16
 * lanes (one per key, or per row of V^T), summed across lanes all at
 * once (hsum16x16), so no horizontal sum per dot. */
#define ATT_X16(F)                                                          \
  F (0) F (1) F (2) F (3) F (4) F (5) F (6) F (7)                           \
  F (8) F (9) F (10) F (11) F (12) F (13) F (14) F (15)
#define ATT_ARGS16(p)                                                       \
  p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7,                           \
  p##8, p##9, p##10, p##11, p##12, p##13, p##14, p##15
#define ATT_ZERO(i) float16 p##i = 0.0f;
/* rows r0 .. r15 of a block: base + min (first + i, last) * stride */
#define ATT_ROWS(base, first, last, stride)                                 \
  __global const float *rb_ = (base);                                       \
  uint rf_ = (first), rl_ = (last);                                         \
  ulong rs_ = (stride);                                                     \
  ATT_X16 (ATT_ROW)
#define ATT_ROW(i)                                                          \
  __global const float *r##i = rb_ + (ulong) min (rf_ + i, rl_) * rs_;
/* p0 .. p15 = lane-wise sums of x [c] r<i> [c] over c < len (a multiple
 * of 16) */
#define ATT_DOTS16(x, len)                                                  \
  ATT_X16 (ATT_ZERO)                                                        \
  for (uint c_ = 0; c_ < (len); c_ += 16) {                                 \
    float16 xv_ = vload16 (0, (x) + c_);                                    \
    ATT_X16 (ATT_RFMA)                                                      \
  }
#define ATT_RFMA(i) p##i = fma (xv_, vload16 (0, r##i + c_), p##i);

/* Lane i of the result: the sum of the lanes of p<i>.  Each step halves
 * the partial sums per row and doubles the rows per vector. */
inline float16
hsum16x16 (float16 p0, float16 p1, float16 p2, float16 p3, float16 p4,
    float16 p5, float16 p6, float16 p7, float16 p8, float16 p9, float16 p10,
    float16 p11, float16 p12, float16 p13, float16 p14, float16 p15)
{
#define ATT_H8(a, b) (float16) (a.lo + a.hi, b.lo + b.hi)
#define ATT_H4(a, b)                                                        \
  (float16) (a.lo.lo + a.lo.hi, a.hi.lo + a.hi.hi, b.lo.lo + b.lo.hi,       \
      b.hi.lo + b.hi.hi)
#define ATT_H2(a, b) (float16) (a.even + a.odd, b.even + b.odd)
  float16 w0 = ATT_H8 (p0, p1), w1 = ATT_H8 (p2, p3), w2 = ATT_H8 (p4, p5);
  float16 w3 = ATT_H8 (p6, p7), w4 = ATT_H8 (p8, p9), w5 = ATT_H8 (p10, p11);
  float16 w6 = ATT_H8 (p12, p13), w7 = ATT_H8 (p14, p15);
  float16 x0 = ATT_H4 (w0, w1), x1 = ATT_H4 (w2, w3);
  float16 x2 = ATT_H4 (w4, w5), x3 = ATT_H4 (w6, w7);
  float16 y0 = ATT_H2 (x0, x1), y1 = ATT_H2 (x2, x3);
  return ATT_H2 (y0, y1);
#undef ATT_H2
#undef ATT_H4
#undef ATT_H8
}

#define ATT_IOTA (int16) (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

/* Query rows q, q + d, ... (ng of them, grouped-query heads of one KV
 * head) against n positions of that head (keys kh [n, d], values vh
 * [d, n_ctx] from its first column; @room columns of each V^T row exist
 * from there): scores into s, s + ns, ... (scratch, ns = n rounded up
 * to 16), their softmax, then y = p V into y, y + d, ...  With @ml, y is
 * left unnormalised and ml [2 g], ml [2 g + 1] get row g's maximum score
 * and sum of exp (score - maximum) (a chunk of the keys, attn_merge).  A
 * block of keys or V^T rows is read from memory once for the ng rows;
 * each row's arithmetic is the same for any ng (same bits). */
inline void
attn_decode_rows (__global const float *q, uint ng,
    __global const float *kh, __global const float *vh, __global float *s,
    __global float *y, uint d, uint n_ctx, uint room, uint n, float scale,
    __global float *ml)
{
  uint ns = (n + 15) & ~15u, n16 = n & ~15u, d16 = d & ~15u;

  /* scores, -inf past n; rows past n read row n - 1 (in the cache) */
  for (uint j0 = 0; j0 < n; j0 += 16) {
    ATT_ROWS (kh, j0, n - 1, d)
    int16 live = ATT_IOTA < (int16) (n - j0);
    for (uint g = 0; g < ng; g++) {
      __global const float *qg = q + (ulong) g * d;
      ATT_DOTS16 (qg, d16)
      float16 sc = hsum16x16 (ATT_ARGS16 (p));
      if (d16 < d) {
        float t[16];
        vstore16 (sc, 0, t);
        for (uint i = 0; i < 16; i++) {
          __global const float *kr = kh + (ulong) min (j0 + i, n - 1) * d;
          for (uint c = d16; c < d; c++)
            t[i] = fma (qg[c], kr[c], t[i]);
        }
        sc = vload16 (0, t);
      }
      vstore16 (select ((float16) (-INFINITY), sc * scale, live), 0,
          s + (ulong) g * ns + j0);
    }
  }

  /* softmax in place: 0 past n */
  for (uint g = 0; g < ng; g++) {
    __global float *sr = s + (ulong) g * ns;
    float16 m16 = -INFINITY, s16 = 0.0f;
    for (uint j = 0; j < ns; j += 16)
      m16 = fmax (m16, vload16 (0, sr + j));
    float mx = hmax16 (m16);
    for (uint j = 0; j < ns; j += 16) {
      float16 e = exp (vload16 (0, sr + j) - mx);
      vstore16 (e, 0, sr + j);
      s16 += e;
    }
    float sum = hsum16 (s16), inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (ml) {
      ml[2 * g] = mx;
      ml[2 * g + 1] = sum;
      continue;
    }
    for (uint j = 0; j < ns; j += 16)
      vstore16 (vload16 (0, sr + j) * inv, 0, sr + j);
  }

  /* o = p V, 16 rows of V^T (clamped to d - 1) at a time, the next 16
   * prefetched (rows n_ctx apart: a pattern the hardware prefetchers
   * miss); positions past n count 0 (their values are selected away,
   * never multiplied: the cache past n may hold anything) */
  int16 tail_live = ATT_IOTA < (int16) (n - n16);
  bool tail_vec = n16 + 16 <= room;
  for (uint c0 = 0; c0 < d; c0 += 16) {
    ATT_ROWS (vh, c0, d - 1, n_ctx)
#define ATT_VPF(i)                                                          \
    if (c0 + 16 + i < d)                                                    \
      MM_PREFETCH (r##i + (ulong) 16 * n_ctx, n * 4, 3)
    ATT_X16 (ATT_VPF)
#undef ATT_VPF
    for (uint g = 0; g < ng; g++) {
      __global const float *sr = s + (ulong) g * ns;
      ATT_DOTS16 (sr, n16)
      if (n16 < n) {
        float16 pv = vload16 (0, sr + n16);
#define ATT_TAIL(i)                                                         \
        {                                                                   \
          float16 vv;                                                       \
          if (tail_vec) {                                                   \
            vv = select ((float16) 0.0f, vload16 (0, r##i + n16), tail_live); \
          } else {                                                          \
            float t_[16];                                                   \
            for (uint l = 0; l < 16; l++)                                   \
              t_[l] = n16 + l < n ? r##i[n16 + l] : 0.0f;                   \
            vv = vload16 (0, t_);                                           \
          }                                                                 \
          p##i = fma (pv, vv, p##i);                                        \
        }
        ATT_X16 (ATT_TAIL)
#undef ATT_TAIL
      }
      float16 o = hsum16x16 (ATT_ARGS16 (p));
      __global float *yr = y + (ulong) g * d + c0;
      if (c0 + 16 <= d) {
        vstore16 (o, 0, yr);
      } else {
        float t[16];
        vstore16 (o, 0, t);
        for (uint i = 0; c0 + i < d; i++)
          yr[i] = t[i];
      }
    }
  }
}

/* Decode splits a head's keys into chunks of at least ATT_CHUNK_MIN
 * (up to nck_max, as the host asks) so that several cores share one KV
 * head; chunk c holds keys [c ch, min (n, c ch + ch)), ch = n / nck
 * rounded up. */
#ifndef ATT_CHUNK_MIN
#define ATT_CHUNK_MIN 64
#endif

inline uint
att_chunks (uint n, uint nck_max)
{
  return clamp (n / ATT_CHUNK_MIN, 1u, max (nck_max, 1u));
}

/* Chunk c of nck of attn_decode_rows's keys [0, n) (kh, vh at key 0):
 * normalised into y when nck is 1, else unnormalised with its (max, sum)
 * in ml. */
inline void
attn_decode_chunk (__global const float *q, uint ng,
    __global const float *kh, __global const float *vh, __global float *s,
    __global float *y, __global float *ml, uint d, uint n_ctx, uint n,
    float scale, uint c, uint nck)
{
  uint ch = (n + nck - 1) / nck, j0 = c * ch;
  attn_decode_rows (q, ng, kh + (ulong) j0 * d, vh + j0, s, y, d, n_ctx,
      n_ctx - j0, min (n, j0 + ch) - j0, scale, nck > 1 ? ml : 0);
}

/* y [g][d] for ng rows from nck chunks' unnormalised outputs (chunk c's
 * row g at op + c ostr + g d) and (max, sum) pairs (at ml + c mlstr +
 * 2 g): each chunk weighted by exp (max_c - max) / total. */
inline void
attn_merge (__global const float *op, ulong ostr, __global const float *ml,
    ulong mlstr, uint nck, uint ng, uint d, __global float *y)
{
  for (uint g = 0; g < ng; g++) {
    float mx = -INFINITY, sum = 0.0f;
    for (uint c = 0; c < nck; c++)
      mx = fmax (mx, ml[c * mlstr + 2 * g]);
    for (uint c = 0; c < nck; c++)
      sum += exp (ml[c * mlstr + 2 * g] - mx) * ml[c * mlstr + 2 * g + 1];
    for (uint c = 0; c < nck; c++) {
      float w = exp (ml[c * mlstr + 2 * g] - mx) / sum;
      __global const float *o = op + c * ostr + (ulong) g * d;
      __global float *yr = y + (ulong) g * d;
      for (uint i = 0; i < d; i++)
        yr[i] = c == 0 ? w * o[i] : fma (w, o[i], yr[i]);
    }
  }
}

/* Few queries (decode): one (head, query) per work-item, three passes
 * over each chunk of the head's cache (attn_decode_chunk, up to nck_max
 * chunks, then attn_merge), scores in s [n_head, nq, n_kv rounded up to
 * 16], chunks' outputs in op [n_head, nq, nck_max, d] and their (max,
 * sum) in ml [n_head, nq, nck_max, 2] (scratch).  Query i sees keys j <=
 * i + causal (causal < 0: all n_kv). */
__kernel void
kernel_attn_decode (__global const float *q, uint qo,
    __global const float *kc, uint kco, __global const float *vc, uint vco,
    __global float *s, uint so, __global float *y, uint yo,
    __global float *op, uint opo, __global float *ml, uint mlo, uint nq,
    uint n_head, uint n_kv_head, uint d, uint n_ctx, uint n_kv, float scale,
    int causal, uint nck_max)
{
  uint h = GID0, i = GID1, hk = h / (n_head / n_kv_head);
  uint n = causal >= 0 ? min (n_kv, i + (uint) causal + 1) : n_kv;
  uint nck = att_chunks (n, nck_max), hi = h * nq + i;
  __global const float *qr = q + qo + ((ulong) i * n_head + h) * d;
  __global const float *kh = kc + kco + (ulong) hk * n_ctx * d;
  __global const float *vh = vc + vco + (ulong) hk * d * n_ctx;
  __global float *sr = s + so + (ulong) hi * ((n_kv + 15) & ~15u);
  __global float *yr = y + yo + ((ulong) i * n_head + h) * d;
  __global float *o = op + opo + (ulong) hi * nck_max * d;
  __global float *m = ml + mlo + (ulong) hi * nck_max * 2;
  for (uint c = 0; c < nck; c++)
    attn_decode_chunk (qr, 1, kh, vh, sr, nck > 1 ? o + c * d : yr,
        m + 2 * c, d, n_ctx, n, scale, c, nck);
  if (nck > 1)
    attn_merge (o, d, m, 2, nck, 1, d, yr);
}

/* Head hh of token t of a fused projection row xr (q heads, then k, then
 * v): q heads roped into q, k heads roped into the K cache, v heads into
 * the V cache at position pos (cr: the token's cos/sin row). */
inline void
rope_qkv_store_head (__global const float *xr, __global const float *cr,
    __global float *q, __global float *kc, __global float *vc, uint hh,
    uint n_head, uint n_kv_head, uint d, uint n_rot, int neox, uint n_ctx,
    uint pos)
{
  xr += (ulong) hh * d;
  if (hh >= n_head + n_kv_head) {
    uint h = hh - n_head - n_kv_head;
    __global float *vr = vc + (ulong) h * d * n_ctx + pos;
    for (uint c = 0; c < d; c++)
      vr[(ulong) c * n_ctx] = xr[c];
    return;
  }
  __global float *yr = hh < n_head ? q + (ulong) hh * d
      : kc + ((ulong) (hh - n_head) * n_ctx + pos) * d;
  uint half_rot = n_rot / 2;
  for (uint i = 0; i < half_rot; i++) {
    float c = cr[i], s = cr[half_rot + i];
    uint a = neox ? i : 2 * i, b = neox ? i + half_rot : 2 * i + 1;
    float va = xr[a], vb = xr[b];
    yr[a] = va * c - vb * s;
    yr[b] = va * s + vb * c;
  }
  for (uint c = n_rot; c < d; c++)
    yr[c] = xr[c];
}

/* A fused projection qkv [n, (n_head + 2 n_kv_head) d] to attention
 * inputs: q heads roped into q [n, n_head, d], k heads roped into the K
 * cache, v heads copied into the V cache, at positions pos0 + t.  Rope as
 * kernel_rope (cos/sin table cs [n, n_rot]).  One (head, token) per
 * work-item. */
__kernel void
kernel_rope_qkv_store (__global const float *x, uint xo,
    __global const float *cs, uint cso, __global float *q, uint qo,
    __global float *kc, uint kco, __global float *vc, uint vco,
    uint n_head, uint n_kv_head, uint d, uint n_rot, int neox, uint n_ctx,
    uint pos0)
{
  uint hh = GID0, t = GID1;
  rope_qkv_store_head (x + xo + (ulong) t * (n_head + 2 * n_kv_head) * d,
      cs + cso + (ulong) t * n_rot, q + qo + (ulong) t * n_head * d,
      kc + kco, vc + vco, hh, n_head, n_kv_head, d, n_rot, neox, n_ctx,
      pos0 + t);
}

/* ---- fused attention for many queries (mm_attention_flash) ----
 * O = softmax (scale Q K^T) V per head without the score matrix: a
 * work-item takes a unit of FA_MR query rows of one head (claim_unit)
 * and walks the keys in blocks of 32 with an online softmax (running row
 * max m and sum l, in base 2; when the max grows, what is accumulated
 * so far is scaled by 2^(m_old - m_new)).  Per block, in registers as gemm.cl's
 * 12 x 32 tile: S = Q K^T from K's panels (kp: per KV head [nk / 32][d]
 * [32], kernel_gemm_pack_f32), the softmax step, then O += P V by column
 * chunks of 32 from V's panels (vp: per KV head [d / 32][nk][32],
 * kernel_gemm_pack_rows_f32), O's tile kept in private memory (L1).
 * q, o: rows ldq / ldo apart, heads d apart; GQA: head h reads KV head
 * h / (H / Hkv).  d a multiple of 32, at most FA_D_MAX. */
#define FA_MR GEMM_MR
#define FA_D_MAX 256

/* 2^x for the softmax's x <= 0: 2^rint (x) from the exponent bits times
 * a degree-6 Taylor polynomial of 2^f on [-1/2, 1/2] (relative error
 * ~2e-7, float rounding's order); x below -126 gives 2^-126, nothing
 * next to the row's max term 1.  A quarter of the instructions of the
 * library's exp, which would otherwise cost a third of the kernel. */
inline float16
fa_exp2 (float16 x)
{
  x = fmax (x, -126.0f);
  float16 fi = rint (x), f = x - fi;
  float16 p = fma (f, 1.5403530e-4f, 1.3333558e-3f);
  p = fma (p, f, 9.6181291e-3f);
  p = fma (p, f, 5.5504109e-2f);
  p = fma (p, f, 2.4022651e-1f);
  p = fma (p, f, 6.9314718e-1f);
  p = fma (p, f, 1.0f);
  return p * as_float16 ((convert_int16 (fi) + 127) << 23);
}

#ifndef FA_KB
#define FA_KB 128                       /* keys per softmax step */
#endif

#define FA_S_STEP(i)                                                        \
  {                                                                         \
    float a_ = qc[i];                                                       \
    c##i##_0 = fma (a_, b0, c##i##_0);                                      \
    c##i##_1 = fma (a_, b1, c##i##_1);                                      \
  }
/* scores of a 32-key sub-block into pt, keys past the end -inf */
#define FA_S_STORE(i)                                                       \
  if (kn < 32) {                                                            \
    c##i##_0 = select (c##i##_0, (float16) (-INFINITY), lane >= (int16) kn); \
    c##i##_1 = select (c##i##_1, (float16) (-INFINITY),                     \
        lane + 16 >= (int16) kn);                                           \
  }                                                                         \
  vstore16 (c##i##_0, 0, pt + (i) * FA_KB + t);                             \
  vstore16 (c##i##_1, 0, pt + (i) * FA_KB + t + 16);
#define FA_O_LOAD(i)                                                        \
  c##i##_0 = vload16 (0, ot + (i) * d + c0) * al[i];                        \
  c##i##_1 = vload16 (0, ot + (i) * d + c0 + 16) * al[i];
#define FA_PV_STEP(i)                                                       \
  {                                                                         \
    float p_ = pj[(i) * FA_KB];                                             \
    c##i##_0 = fma (p_, b0, c##i##_0);                                      \
    c##i##_1 = fma (p_, b1, c##i##_1);                                      \
  }
#define FA_O_STORE(i)                                                       \
  vstore16 (c##i##_0, 0, ot + (i) * d + c0);                                \
  vstore16 (c##i##_1, 0, ot + (i) * d + c0 + 16);

__kernel void
kernel_flash_attn_f32 (__global const float *q, uint qo, uint ldq,
    __global const float *kp, uint kpo, __global const float *vp, uint vpo,
    __global float *o, uint oo, uint ldo, uint nq, uint nk, uint H,
    uint Hkv, uint d, float scale, volatile __global uint *ctr)
{
  uint tiles = (nq + FA_MR - 1) / FA_MR, n_units = H * tiles;
  uint nkp = (nk + 31) / 32 * 32;
  const int16 lane = (int16) (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
      14, 15);
  float ot[FA_MR * FA_D_MAX], pt[FA_MR * FA_KB], qt[FA_D_MAX * FA_MR];
  float m[16], l[16], al[16], mn[16];   /* per row; lanes past FA_MR unused */
  float sl2 = scale * M_LOG2E_F;        /* scores in base 2 */
  for (uint u; (u = claim_unit (ctr)) < n_units;) {
    uint h = u / tiles, r0 = (u % tiles) * FA_MR, hk = h / (H / Hkv);
    uint mr = min ((uint) FA_MR, nq - r0);
    /* the query tile, scaled, column-major: row i's value for column c at
     * qt[c FA_MR + i] (rows past mr repeat the last) */
    for (uint i = 0; i < FA_MR; i++) {
      __global const float *qr = q + qo + (ulong) (r0 + min (i, mr - 1)) * ldq
          + h * d;
      for (uint c = 0; c < d; c++)
        qt[c * FA_MR + i] = qr[c] * sl2;
    }
    __global const float *kh = kp + kpo + (ulong) hk * nkp * d;
    __global const float *vh = vp + vpo + (ulong) hk * nk * d;
    vstore16 ((float16) (-INFINITY), 0, m);
    vstore16 ((float16) 0.0f, 0, l);
    for (uint i = 0; i < FA_MR * d; i++)
      ot[i] = 0.0f;
    for (uint j0 = 0; j0 < nk; j0 += FA_KB) {
      uint kb = min ((uint) FA_KB, nk - j0), nv = (kb + 31) / 32 * 2;
      /* S = Q K^T, 32 keys at a time */
      for (uint t = 0; t < kb; t += 32) {
        uint kn = min (32u, kb - t);
        __global const float *kq = kh + (ulong) (j0 + t) * d;
        TILE_ROWS (ACC_DECL_ROW)
        /* (pointers, not indices, into the private tiles: constant row
         * offsets then fold into the broadcasts' addresses) */
        const float *qc = qt;
        for (uint c = 0; c < d; c++, qc += FA_MR) {
          float16 b0 = vload16 (0, kq + c * 32), b1 = vload16 (1, kq + c * 32);
          TILE_ROWS (FA_S_STEP)
        }
        TILE_ROWS (FA_S_STORE)
      }
      /* online softmax: new row maxima, the rescale of what is summed so
       * far, P = 2^(S - max) and the row sums */
      for (uint i = 0; i < FA_MR; i++) {
        float16 mx = vload16 (0, pt + i * FA_KB);
        for (uint v = 1; v < nv; v++)
          mx = fmax (mx, vload16 (v, pt + i * FA_KB));
        mn[i] = fmax (m[i], hmax16 (mx));
      }
      float16 mo = vload16 (0, m), mv = vload16 (0, mn);
      vstore16 (fa_exp2 (mo - mv), 0, al);
      vstore16 (mv, 0, m);
      float16 ls = 0.0f;
      for (uint i = 0; i < FA_MR; i++) {
        float16 sum = 0.0f;
        for (uint v = 0; v < nv; v++) {
          float16 e = fa_exp2 (vload16 (v, pt + i * FA_KB) - mn[i]);
          vstore16 (e, v, pt + i * FA_KB);
          sum += e;
        }
        l[i] = l[i] * al[i] + hsum16 (sum);
      }
      /* O = O al + P V, 32 columns at a time */
      for (uint c0 = 0; c0 < d; c0 += 32) {
        __global const float *vb = vh + (ulong) c0 * nk + (ulong) j0 * 32;
        TILE_ROWS (ACC_DECL_ROW)
        TILE_ROWS (FA_O_LOAD)
        const float *pj = pt;
        for (uint j = 0; j < kb; j++, pj++) {
          float16 b0 = vload16 (0, vb + j * 32), b1 = vload16 (1, vb + j * 32);
          TILE_ROWS (FA_PV_STEP)
        }
        TILE_ROWS (FA_O_STORE)
      }
    }
    for (uint i = 0; i < mr; i++) {
      float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
      __global float *orow = o + oo + (ulong) (r0 + i) * ldo + h * d;
      for (uint c = 0; c < d; c++)
        orow[c] = ot[i * d + c] * inv;
    }
  }
  claim_end (ctr);
}
