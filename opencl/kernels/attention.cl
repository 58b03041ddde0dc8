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

/* One query row qr against the first n positions of one KV head (keys
 * kh [n_ctx, d], values vh [d, n_ctx]): scores into sr (scratch, n),
 * their softmax, then yr = p V. */
inline void
attn_decode_row (__global const float *qr, __global const float *kh,
    __global const float *vh, __global float *sr, __global float *yr,
    uint d, uint n_ctx, uint n, float scale)
{
  uint d16 = d & ~15u, n16 = n & ~15u;

  /* scores */
  float mx = -INFINITY;
  for (uint j = 0; j < n; j++) {
    __global const float *kr = kh + (ulong) j * d;
    float16 acc = 0.0f;
    for (uint c = 0; c < d16; c += 16)
      acc = fma (vload16 (0, qr + c), vload16 (0, kr + c), acc);
    float dot = hsum16 (acc);
    for (uint c = d16; c < d; c++)
      dot = fma (qr[c], kr[c], dot);
    dot *= scale;
    sr[j] = dot;
    mx = fmax (mx, dot);
  }

  /* softmax (unnormalised; 1 / sum applied to the output) */
  float16 s16 = 0.0f;
  uint j = 0;
  for (; j < n16; j += 16) {
    float16 e = exp (vload16 (0, sr + j) - mx);
    vstore16 (e, 0, sr + j);
    s16 += e;
  }
  float sum = hsum16 (s16);
  for (; j < n; j++) {
    float e = exp (sr[j] - mx);
    sr[j] = e;
    sum += e;
  }
  float inv = sum > 0.0f ? 1.0f / sum : 0.0f;

  /* o = p V: rows of V^T are contiguous over positions */
  for (uint c = 0; c < d; c++) {
    __global const float *vr = vh + (ulong) c * n_ctx;
    float16 acc = 0.0f;
    for (j = 0; j < n16; j += 16)
      acc = fma (vload16 (0, sr + j), vload16 (0, vr + j), acc);
    float o = hsum16 (acc);
    for (j = n16; j < n; j++)
      o = fma (sr[j], vr[j], o);
    yr[c] = o * inv;
  }
}

/* Few queries (decode): one (head, query) per work-item, three passes
 * over the head's cache (attn_decode_row), scores in s [n_head, nq,
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
  attn_decode_row (q + qo + ((ulong) i * n_head + h) * d,
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
