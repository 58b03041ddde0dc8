/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Llama-family decoder layers for one token in one launch
 * (mm_decoder_layer_step): per layer, RMS norm and the stacked QKV projection
 * (+ bias), RoPE and the KV-cache store, attention over the cache, the
 * output projection + residual, RMS norm and the stacked gate/up
 * projection with SwiGLU, the down projection + residual.  Weights are
 * quantised panels (gemm_quant.cl), each of any of its types.
 *
 * Decode is a chain of small GEMVs.  As separate launches each one ends
 * with a core idle until the next launch has woken it (~15 us on the
 * 2-core VMs here, against ~40 us of work per GEMV).  Here the steps are
 * phases of one launch: the work-items (one per core) claim runs of
 * units in order and a unit waits for every unit of the earlier phases
 * (CLAIM_PHASED), so a core that finishes a phase early starts the next
 * one's units as soon as their inputs are there.  Every unit runs the
 * same code as the separate kernels (gemv_panel, rope_qkv_store_head,
 * attn_decode_rows), so the results are the same bits.
 *
 * Several layers run in one launch when their weights lie in one buffer
 * (and their caches in one more each) at a fixed stride: layer l's at
 * the first layer's offsets + l wstride bytes (caches: + l kvstride
 * floats).  Their units follow each other, so a layer's first phase
 * waits for the layer before like any phase, and no launch (~25 us of
 * idle cores each) separates them.  Layer l reads x (l = 0) or a scratch
 * row, and writes y (the last) or the other scratch row.
 *
 * Units of a layer, in order: QKV panels; chunks of a KV head's keys
 * (RoPE of the head's query heads, the new key and value into the cache
 * in the chunk that holds them, then attention for all the head's query
 * heads over the chunk, each cache row read once for them; the chunk to
 * finish last merges the chunks); output panels (o + residual); gate/up
 * panels (SwiGLU); output panels (down + residual).
 *
 * Scratch sc (offsets in floats): qkv [(n_head + 2 n_kv_head) hd],
 * q [nck, n_head hd], att [n_head hd], s [n_head nck, nsc], op [nck,
 * n_head hd], ml [nck, n_head, 2], merges [n_kv_head] (uint), xm [d],
 * h [ffn], ly [2 d] (outputs of all but the last layer).
 */

/* A run takes 1 / (DEC_RUN_DIV x work-items) of what is left of its
 * phase (1, 2 and 4 measured alike on SmolLM2-135M) */
#ifndef DEC_RUN_DIV
#define DEC_RUN_DIV 2
#endif

/* Lines of a waiting unit's weights prefetched (DEC_WAIT_LINES x 64
 * bytes at most) */
#ifndef DEC_WAIT_LINES
#define DEC_WAIT_LINES 1024
#endif

/* The first weight byte unit u reads (a KV head's unit: its QKV panels,
 * already read; any address is only a prefetch hint) */
inline __global const uchar *
unit_data (uint u, uint upl, const uint * end, __global const uchar * wqkv,
    int tqkv, __global const uchar * wo, int two, __global const uchar * wgu,
    int tgu, __global const uchar * wdn, int tdn, ulong wstride, uint d,
    uint qd, uint ffn)
{
  uint r = u % upl;
  ulong wl = (ulong) (u / upl) * wstride;
  if (r < end[1])
    return wqkv + wl + (ulong) min (r, end[0] - 1) * panel_bytes (tqkv, d);
  if (r < end[2])
    return wo + wl + (ulong) (r - end[1]) * panel_bytes (two, qd);
  if (r < end[3])
    return wgu + wl + (ulong) (r - end[2]) * panel_bytes (tgu, d);
  return wdn + wl + (ulong) (r - end[3]) * panel_bytes (tdn, ffn);
}

__kernel void
kernel_decoder_layer (__global const float *x0, uint xo,
    __global float *y_last, uint yo, __global float *sc, uint qkvo, uint qo,
    uint ao, uint so, uint opo, uint mlo, uint cto, uint xmo, uint ho,
    uint lyo, uint nck_max,
    __global const float *anw0, uint anwo,
    __global const uchar *wqkv0, uint wqkvo, int tqkv,
    __global const float *bqkv0, uint bqkvo, int has_bqkv,
    __global const uchar *wo0, uint woo, int two,
    __global const float *fnw0, uint fnwo,
    __global const uchar *wgu0, uint wguo, int tgu,
    __global const uchar *wdn0, uint wdno, int tdn,
    __global const float *cs, uint cso,
    __global float *kc0, uint kco, __global float *vc0, uint vco,
    uint n_layers, ulong wstride, ulong kvstride,
    uint d, uint n_head, uint n_kv_head, uint hd, uint ffn, uint n_rot,
    int neox, uint n_ctx, uint pos, float scale, float eps,
    volatile __global uint *ctr)
{
  uint n_heads = n_head + 2 * n_kv_head, nqkv = n_heads * hd;
  uint qd = n_head * hd, n_kv = pos + 1;
  uint npq = (nqkv + QP - 1) / QP, npd = (d + QP - 1) / QP;
  uint npf = (ffn + QP - 1) / QP;
  uint nwi = get_global_size (0);
  /* attention units: chunks of the keys of a KV head (attn_decode_chunk),
   * each with its own roped copy of the head's queries and scores rows
   * of nsc; the last chunk holds the new position and stores its key and
   * value; the last to finish merges (counts in merges) */
  uint grp = n_head / n_kv_head, nck = att_chunks (n_kv, nck_max);
  uint nsc = (((n_kv + nck - 1) / nck) + 15) & ~15u;
  /* phase ends within a layer; upl units a layer */
  uint end[5];
  end[0] = npq;
  end[1] = end[0] + n_kv_head * nck;
  end[2] = end[1] + npd;
  end[3] = end[2] + npf;
  end[4] = end[3] + npd;
  uint upl = end[4], n_units = n_layers * upl;
  __global float *qkv = sc + qkvo, *q = sc + qo, *att = sc + ao;
  __global float *s = sc + so, *xm = sc + xmo, *h = sc + ho;
  __global float *op = sc + opo, *ml = sc + mlo;
  volatile __global uint *merges = (volatile __global uint *) (sc + cto);
  __global float *ly = sc + lyo;
  /* 1 / RMS of x and xm, once known, for layer cur */
  float inv_x = -1.0f, inv_m = -1.0f;
  uint cur = 0;
  /* this work-item's int16 form of a phase's input (gemv_panel), tag
   * l 8 + phase */
  QxRow xr;
  xr.tag = ~0u;
#define FIRST_OF_PHASE(u)                                                   \
  ((u) / upl * upl + ((u) % upl < end[0] ? 0 : (u) % upl < end[1] ? end[0] : \
      (u) % upl < end[2] ? end[1] : (u) % upl < end[3] ? end[2] : end[3]))
  /* Runs: panels in runs of a quarter of what is left of the phase per
   * work-item (guided scheduling): each work-item streams adjacent
   * panels, runs shrink towards the phase's end so the work-items finish
   * it together.  Attention chunks one at a time. */
#define END_OF_PHASE(r)                                                     \
  ((r) < end[0] ? end[0] : (r) < end[1] ? end[1] : (r) < end[2] ? end[2] :  \
      (r) < end[3] ? end[3] : end[4])
#define RUN(u)                                                              \
  ((u) % upl >= end[0] && (u) % upl < end[1] ? 1                            \
      : (END_OF_PHASE ((u) % upl) - (u) % upl) / (DEC_RUN_DIV * nwi))
  /* While unit u waits for the phase before, the weights it reads are
   * fetched into L2 a line a spin, from its panel on (the following
   * panels are likely the rest of its run): a core that finished its
   * share early loads the next phase's instead of idling. */
#define WAIT(u, i)                                                          \
  if ((i) < DEC_WAIT_LINES)                                                 \
    MM_PREFETCH (unit_data (u, upl, end, wqkv0 + wqkvo, tqkv, wo0 + woo,    \
            two, wgu0 + wguo, tgu, wdn0 + wdno, tdn, wstride, d, qd, ffn)   \
        + (ulong) (i) * 64, 64, 2)
  for (;;) {
    uint u0, cnt;
    CLAIM_PHASED (ctr, n_units, FIRST_OF_PHASE, RUN, WAIT, u0, cnt)
    if (cnt == 0)
      break;
    uint l = u0 / upl, r0 = u0 % upl, ph = 0;
    while (r0 >= end[ph])
      ph++;
    if (l != cur) {
      cur = l;
      inv_x = inv_m = -1.0f;
    }
    /* layer l's weights, caches, input and output */
    ulong wl = l * wstride, kvl = l * kvstride;
    __global const float *x = l == 0 ? x0 + xo : ly + ((l - 1) & 1) * d;
    __global float *y = l + 1 == n_layers ? y_last + yo : ly + (l & 1) * d;
    __global const float *anw = anw0 + anwo + wl / 4;
    __global const float *fnw = fnw0 + fnwo + wl / 4;
    __global const float *bqkv = bqkv0 + bqkvo + (has_bqkv ? wl / 4 : 0);
    __global const uchar *wqkv = wqkv0 + wqkvo + wl, *wo = wo0 + woo + wl;
    __global const uchar *wgu = wgu0 + wguo + wl, *wdn = wdn0 + wdno + wl;
    __global float *kc = kc0 + kco + kvl, *vc = vc0 + vco + kvl;
    uint base = ph > 0 ? end[ph - 1] : 0, i1 = r0 + cnt - base;
    for (uint i = r0 - base; i < i1; i++) {
      /* the panel this work-item reads next: the run's next, else (a
       * guess) the first one nobody has taken yet */
      uint pn = i + 1;
      if (pn == i1) {
        uint nx = ctr[0];
        pn = nx > u0 && nx < l * upl + end[ph] ? nx - l * upl - base : pn;
      }
      if (ph == 0) {
        if (i == 0)
          for (uint k = 0; k < n_kv_head; k++)
            merges[k] = 0;
        if (inv_x < 0.0f)
          inv_x = row_rms_inv (x, d, eps);
        gemv_panel (tqkv, &xr, l * 8 + ph, x, inv_x, anw, 1, wqkv, d / 32, i,
            pn, npq, nqkv, bqkv, has_bqkv, x, 0, qkv, 1.0f, 0);
      } else if (ph == 1) {
        uint hk = i / nck, c = i % nck, h0 = hk * grp;
        __global float *qc = q + (ulong) c * qd;
        for (uint hh = h0; hh < h0 + grp; hh++)
          rope_qkv_store_head (qkv, cs + cso, qc, kc, vc, hh, n_head,
              n_kv_head, hd, n_rot, neox, n_ctx, pos);
        if (c == nck - 1) {
          rope_qkv_store_head (qkv, cs + cso, qc, kc, vc, n_head + hk,
              n_head, n_kv_head, hd, n_rot, neox, n_ctx, pos);
          rope_qkv_store_head (qkv, cs + cso, qc, kc, vc,
              n_head + n_kv_head + hk, n_head, n_kv_head, hd, n_rot, neox,
              n_ctx, pos);
        }
        attn_decode_chunk (qc + (ulong) h0 * hd, grp,
            kc + (ulong) hk * n_ctx * hd, vc + (ulong) hk * hd * n_ctx,
            s + (ulong) i * grp * nsc,
            nck > 1 ? op + (ulong) c * qd + h0 * hd : att + (ulong) h0 * hd,
            ml + ((ulong) c * n_head + h0) * 2, hd, n_ctx, n_kv, scale, c,
            nck);
        if (nck > 1) {
          mem_fence (CLK_GLOBAL_MEM_FENCE);
          if (atomic_inc (merges + hk) == nck - 1) {
            mem_fence (CLK_GLOBAL_MEM_FENCE);
            attn_merge (op + (ulong) h0 * hd, qd, ml + h0 * 2, 2 * n_head,
                nck, grp, hd, att + (ulong) h0 * hd);
            atomic_xchg (merges + hk, 0u);
          }
        }
      } else if (ph == 2) {
        gemv_panel (two, &xr, l * 8 + ph, att, 1.0f, anw, 0, wo, qd / 32, i,
            pn, npd, d, bqkv, 0, x, 1, xm, 1.0f, 0);
      } else if (ph == 3) {
        if (inv_m < 0.0f)
          inv_m = row_rms_inv (xm, d, eps);
        gemv_panel (tgu, &xr, l * 8 + ph, xm, inv_m, fnw, 1, wgu, d / 32, i,
            pn, npf, ffn, bqkv, 0, x, 0, h, 1.0f, 1);
      } else {
        gemv_panel (tdn, &xr, l * 8 + ph, h, 1.0f, anw, 0, wdn, ffn / 32, i,
            pn, npd, d, bqkv, 0, xm, 1, y, 1.0f, 0);
      }
    }
    claim_units_done (ctr, cnt);
  }
#undef WAIT
#undef RUN
#undef END_OF_PHASE
#undef FIRST_OF_PHASE
  claim_end (ctr);
}
