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

/* Up to ATT_G query rows of one KV head in one pass over its cache. */
#define ATT_G 4
/* V^T rows prefetched ahead */
#ifndef ATT_PF
#define ATT_PF 4
#endif

/* Query rows q, q + d, ... (ng <= ATT_G of them, grouped-query heads of
 * one KV head) against the first n positions of that head (keys kh
 * [n_ctx, d], values vh [d, n_ctx]): scores into s, s + n, ... (scratch),
 * their softmax, then y = p V into y, y + d, ...  Each key and value row
 * is read once for the ng rows; each row's arithmetic is the same as
 * with ng = 1 (same bits). */
inline void
attn_decode_rows (__global const float *q, uint ng,
    __global const float *kh, __global const float *vh, __global float *s,
    __global float *y, uint d, uint n_ctx, uint n, float scale)
{
  uint d16 = d & ~15u, n16 = n & ~15u;
  float mx[ATT_G], inv[ATT_G];
  float16 acc[ATT_G];

  /* scores */
  for (uint g = 0; g < ATT_G; g++)
    mx[g] = -INFINITY;
  for (uint j = 0; j < n; j++) {
    __global const float *kr = kh + (ulong) j * d;
    for (uint g = 0; g < ATT_G; g++)
      acc[g] = 0.0f;
    for (uint c = 0; c < d16; c += 16) {
      float16 kv = vload16 (0, kr + c);
      for (uint g = 0; g < ATT_G; g++)
        if (g < ng)
          acc[g] = fma (vload16 (0, q + g * d + c), kv, acc[g]);
    }
    for (uint g = 0; g < ATT_G && g < ng; g++) {
      float dot = hsum16 (acc[g]);
      for (uint c = d16; c < d; c++)
        dot = fma (q[g * d + c], kr[c], dot);
      dot *= scale;
      s[g * n + j] = dot;
      mx[g] = fmax (mx[g], dot);
    }
  }

  /* softmax (unnormalised; 1 / sum applied to the output) */
  for (uint g = 0; g < ATT_G && g < ng; g++) {
    __global float *sr = s + g * n;
    float16 s16 = 0.0f;
    uint j = 0;
    for (; j < n16; j += 16) {
      float16 e = exp (vload16 (0, sr + j) - mx[g]);
      vstore16 (e, 0, sr + j);
      s16 += e;
    }
    float sum = hsum16 (s16);
    for (; j < n; j++) {
      float e = exp (sr[j] - mx[g]);
      sr[j] = e;
      sum += e;
    }
    inv[g] = sum > 0.0f ? 1.0f / sum : 0.0f;
  }

  /* o = p V: rows of V^T are contiguous over positions, n_ctx apart (a
   * pattern the hardware prefetchers miss: rows ATT_PF ahead are
   * prefetched) */
  for (uint c = 0; c < min (d, (uint) ATT_PF); c++)
    MM_PREFETCH (vh + (ulong) c * n_ctx, n * 4, 3)
  for (uint c = 0; c < d; c++) {
    __global const float *vr = vh + (ulong) c * n_ctx;
    if (c + ATT_PF < d)
      MM_PREFETCH (vr + (ulong) ATT_PF * n_ctx, n * 4, 3)
    for (uint g = 0; g < ATT_G; g++)
      acc[g] = 0.0f;
    for (uint j = 0; j < n16; j += 16) {
      float16 vv = vload16 (0, vr + j);
      for (uint g = 0; g < ATT_G; g++)
        if (g < ng)
          acc[g] = fma (vload16 (0, s + g * n + j), vv, acc[g]);
    }
    for (uint g = 0; g < ATT_G && g < ng; g++) {
      float o = hsum16 (acc[g]);
      for (uint j = n16; j < n; j++)
        o = fma (s[g * n + j], vr[j], o);
      y[g * d + c] = o * inv[g];
    }
  }
}

/* Few queries (decode): one (head, query) per work-item, three passes
 * over the head's cache (attn_decode_rows), scores in s [n_head, nq,
 * n_kv] (scratch).  Query i sees keys j <= i + causal (causal < 0: all
 * n_kv). */
__kernel void
kernel_attn_decode (__global const float *q, uint qo,
    __global const float *kc, uint kco, __global const float *vc, uint vco,
    __global float *s, uint so, __global float *y, uint yo, uint nq,
    uint n_head, uint n_kv_head, uint d, uint n_ctx, uint n_kv, float scale,
    int causal)
{
  uint h = GID0, i = GID1, hk = h / (n_head / n_kv_head);
  uint n = causal >= 0 ? min (n_kv, i + (uint) causal + 1) : n_kv;
  attn_decode_rows (q + qo + ((ulong) i * n_head + h) * d, 1,
      kc + kco + (ulong) hk * n_ctx * d, vc + vco + (ulong) hk * d * n_ctx,
      s + so + ((ulong) h * nq + i) * n_kv,
      y + yo + ((ulong) i * n_head + h) * d, d, n_ctx, n, scale);
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
