/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One Llama-family decoder layer for one token in one launch
 * (mm_decoder_layer_step): RMS norm and the stacked QKV projection
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
 * Units, in order: QKV panels; KV heads (RoPE of the head's query
 * heads, its key and value into the cache, then attention for all its
 * query heads, each cache row read once for them); output panels (o +
 * residual); gate/up panels (SwiGLU); output panels (down + residual).
 *
 * Scratch sc (offsets in floats): qkv [(n_head + 2 n_kv_head) hd],
 * q [n_head hd], att [n_head hd], s [n_head, n_kv rounded up to 16],
 * xm [d], h [ffn].
 */

__kernel void
kernel_decoder_layer (__global const float *x, uint xo,
    __global float *y, uint yo, __global float *sc, uint qkvo, uint qo,
    uint ao, uint so, uint xmo, uint ho,
    __global const float *anw, uint anwo,
    __global const uchar *wqkv, uint wqkvo, int tqkv,
    __global const float *bqkv, uint bqkvo, int has_bqkv,
    __global const uchar *wo, uint woo, int two,
    __global const float *fnw, uint fnwo,
    __global const uchar *wgu, uint wguo, int tgu,
    __global const uchar *wdn, uint wdno, int tdn,
    __global const float *cs, uint cso,
    __global float *kc, uint kco, __global float *vc, uint vco,
    uint d, uint n_head, uint n_kv_head, uint hd, uint ffn, uint n_rot,
    int neox, uint n_ctx, uint pos, float scale, float eps,
    volatile __global uint *ctr)
{
  uint n_heads = n_head + 2 * n_kv_head, nqkv = n_heads * hd;
  uint qd = n_head * hd, n_kv = pos + 1;
  uint npq = (nqkv + QP - 1) / QP, npd = (d + QP - 1) / QP;
  uint npf = (ffn + QP - 1) / QP;
  uint nwi = get_global_size (0);
  uint grp = n_head / n_kv_head, ns = (n_kv + 15) & ~15u;
  uint end[5];
  end[0] = npq;
  end[1] = end[0] + n_kv_head;
  end[2] = end[1] + npd;
  end[3] = end[2] + npf;
  end[4] = end[3] + npd;
  x += xo;
  y += yo;
  __global float *qkv = sc + qkvo, *q = sc + qo, *att = sc + ao;
  __global float *s = sc + so, *xm = sc + xmo, *h = sc + ho;
  anw += anwo;
  fnw += fnwo;
  wqkv += wqkvo;
  bqkv += bqkvo;
  wo += woo;
  wgu += wguo;
  wdn += wdno;
  kc += kco;
  vc += vco;
  float inv_x = -1.0f, inv_m = -1.0f;   /* 1 / RMS of x and xm, once known */
#define FIRST_OF_PHASE(u)                                                   \
  ((u) < end[0] ? 0 : (u) < end[1] ? end[0] : (u) < end[2] ? end[1] :       \
      (u) < end[3] ? end[2] : end[3])
  /* Runs: panels in runs of a quarter of what is left of the phase per
   * work-item (guided scheduling): each work-item streams adjacent
   * panels, runs shrink towards the phase's end so the work-items finish
   * it together.  KV heads one at a time. */
#define END_OF_PHASE(u)                                                     \
  ((u) < end[0] ? end[0] : (u) < end[1] ? end[1] : (u) < end[2] ? end[2] :  \
      (u) < end[3] ? end[3] : end[4])
#define RUN(u)                                                              \
  ((u) >= end[0] && (u) < end[1] ? 1 : (END_OF_PHASE (u) - (u)) / (2 * nwi))
  for (;;) {
    uint u0, cnt;
    CLAIM_PHASED (ctr, end[4], FIRST_OF_PHASE, RUN, u0, cnt)
    if (cnt == 0)
      break;
    uint ph = 0;
    while (u0 >= end[ph])
      ph++;
    uint base = ph > 0 ? end[ph - 1] : 0, i1 = u0 + cnt - base;
    for (uint i = u0 - base; i < i1; i++) {
      /* the panel this work-item reads next: the run's next, else (a
       * guess) the first one nobody has taken yet */
      uint pn = i + 1;
      if (pn == i1) {
        uint nx = ctr[0];
        pn = nx > u0 && nx < end[ph] ? nx - base : pn;
      }
      if (ph == 0) {
        if (inv_x < 0.0f)
          inv_x = row_rms_inv (x, d, eps);
        gemv_panel (tqkv, x, inv_x, anw, 1, wqkv, d / 32, i, pn, npq, nqkv,
            bqkv, has_bqkv, x, 0, qkv, 1.0f, 0);
      } else if (ph == 1) {
        uint h0 = i * grp;
        for (uint h = h0; h < h0 + grp; h++)
          rope_qkv_store_head (qkv, cs + cso, q, kc, vc, h, n_head,
              n_kv_head, hd, n_rot, neox, n_ctx, pos);
        rope_qkv_store_head (qkv, cs + cso, q, kc, vc, n_head + i, n_head,
            n_kv_head, hd, n_rot, neox, n_ctx, pos);
        rope_qkv_store_head (qkv, cs + cso, q, kc, vc, n_head + n_kv_head + i,
            n_head, n_kv_head, hd, n_rot, neox, n_ctx, pos);
        attn_decode_rows (q + (ulong) h0 * hd, grp,
            kc + (ulong) i * n_ctx * hd, vc + (ulong) i * hd * n_ctx,
            s + (ulong) h0 * ns, att + (ulong) h0 * hd, hd, n_ctx, n_kv,
            scale);
      } else if (ph == 2) {
        gemv_panel (two, att, 1.0f, anw, 0, wo, qd / 32, i, pn, npd, d, bqkv,
            0, x, 1, xm, 1.0f, 0);
      } else if (ph == 3) {
        if (inv_m < 0.0f)
          inv_m = row_rms_inv (xm, d, eps);
        gemv_panel (tgu, xm, inv_m, fnw, 1, wgu, d / 32, i, pn, npf, ffn, bqkv,
            0, x, 0, h, 1.0f, 1);
      } else {
        gemv_panel (tdn, h, 1.0f, anw, 0, wdn, ffn / 32, i, pn, npd, d, bqkv,
            0, xm, 1, y, 1.0f, 0);
      }
    }
    claim_units_done (ctr, cnt);
  }
#undef RUN
#undef END_OF_PHASE
#undef FIRST_OF_PHASE
  claim_end (ctr);
}
