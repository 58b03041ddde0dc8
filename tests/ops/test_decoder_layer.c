/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mm_decoder_layer_step (one decoder layer for one token in one kernel)
 * vs a plain C reference of the layer on odd shapes: head counts and
 * dims that are not powers of two, grouped-query attention, partial
 * rotation in both rope modes, a QKV bias, mixed quantised types, caches
 * with history, the first and the last position.  Its output must also be
 * the same bits as the separate ops it stands for (the model falls back
 * to those when the fused kernel does not apply).  A run of layers in one
 * launch (weights in one buffer at a stride, as the LLM loader lays them
 * out) must give the same bits as the layers one launch each. */
#include "mm-test-util.h"
#include "mm-dequant.h"

#include <math.h>
#include <string.h>

typedef struct
{
  gint d, n_head, n_kv, hd, ffn, n_rot, n_ctx, pos;
  gboolean neox, bias;
  MmDType t_qkv, t_o, t_gu, t_down;
} Case;

/* Random quantised blocks and their dequantised values, at the scale of
 * real checkpoints (|w| ~ 0.1: projections of unit-RMS rows stay O(1)).
 * Ten times that (|w| ~ 1) puts attention logits near 500, where a
 * 1e-5 change of a query (the int16 activations of quantised GEMVs) moves
 * the output by a percent: a test of the softmax's conditioning, not of
 * the kernel. */
static MmTensor *
quant_weight (MmEngine * e, MmDType dt, gint N, gint K, guint32 seed,
    float *w)
{
  gint bb = mm_dtype_block_bytes (dt);
  gsize nbytes = (gsize) N * (K / 32) * bb;
  guint8 *q = g_new (guint8, nbytes);
  float *r = mm_test_rand (nbytes, seed, 0, 256);
  for (gsize i = 0; i < nbytes; i++)
    q[i] = (guint8) r[i];
  for (gsize blk = 0; blk < nbytes / bb; blk++) {
    guint16 d = mm_f32_to_f16 ((r[blk] / 256.0f - 0.5f) * 0.005f);
    guint16 m = mm_f32_to_f16 ((r[blk + 1] / 256.0f - 0.5f) * 0.02f);
    memcpy (q + blk * bb, &d, 2);
    if (dt == MM_DTYPE_Q4_1)
      memcpy (q + blk * bb + 2, &m, 2);
  }
  mm_dequantize_host (dt, q, (gint64) N * K, w);
  MmTensor *t = mm_tensor_upload_planar (e, dt, N, K, q, "weight", NULL);
  g_free (q);
  g_free (r);
  return t;
}

/* @qe: the engine when w is quantised (the activations as the device's
 * GEMV takes them: mm_test_gemv_act), else NULL */
static void
ref_rms_matvec (const float *x, const float *nw, const float *w,
    const float *b, float *y, gint N, gint K, float eps, MmEngine * qe)
{
  double ss = 0;
  for (gint k = 0; k < K; k++)
    ss += (double) x[k] * x[k];
  float inv = nw ? 1.0f / sqrtf ((float) (ss / K) + eps) : 1.0f;
  float *xn = g_new (float, K);
  for (gint k = 0; k < K; k++)
    xn[k] = nw ? x[k] * inv * nw[k] : x[k];
  if (qe)
    mm_test_gemv_act (qe, xn, K);
  for (gint n = 0; n < N; n++) {
    double s = 0;
    for (gint k = 0; k < K; k++)
      s += (double) xn[k] * w[(gsize) n * K + k];
    y[n] = s + (b ? b[n] : 0);
  }
  g_free (xn);
}

#define QE(e, t) (mm_dtype_block_elems (t) == 32 ? (e) : NULL)

static void
ref_rope_head (float *v, const Case * c)
{
  for (gint i = 0; i < c->n_rot / 2; i++) {
    float theta = c->pos * powf (10000.0f, -2.0f * i / c->n_rot);
    gint a = c->neox ? i : 2 * i, b = c->neox ? i + c->n_rot / 2 : 2 * i + 1;
    float va = v[a], vb = v[b];
    v[a] = va * cosf (theta) - vb * sinf (theta);
    v[b] = va * sinf (theta) + vb * cosf (theta);
  }
}

/* The layer; kc, vc: caches [n_kv, n_ctx, hd] and [n_kv, hd, n_ctx],
 * updated at c->pos. */
static void
ref_layer (MmEngine * e, const Case * c, const float *x, const float *anw,
    const float *wqkv, const float *bqkv, const float *wo, const float *fnw,
    const float *wgu, const float *wdn, float *kc, float *vc, float *y)
{
  gint nh = c->n_head, nkv = c->n_kv, hd = c->hd, d = c->d, F = c->ffn;
  gint nqkv = (nh + 2 * nkv) * hd, n = c->pos + 1;
  float *qkv = g_new (float, nqkv), *att = g_new (float, nh * hd);
  float *xm = g_new (float, d), *gu = g_new (float, 2 * F);
  float *h = g_new (float, F), *p = g_new (float, n);
  ref_rms_matvec (x, anw, wqkv, bqkv, qkv, nqkv, d, 1e-5f,
      QE (e, c->t_qkv));
  for (gint hh = 0; hh < nh + nkv; hh++)
    ref_rope_head (qkv + hh * hd, c);
  for (gint j = 0; j < nkv; j++)
    for (gint i = 0; i < hd; i++) {
      kc[((gsize) j * c->n_ctx + c->pos) * hd + i] = qkv[(nh + j) * hd + i];
      vc[((gsize) j * hd + i) * c->n_ctx + c->pos] =
          qkv[(nh + nkv + j) * hd + i];
    }
  for (gint hq = 0; hq < nh; hq++) {
    gint hk = hq / (nh / nkv);
    const float *q = qkv + hq * hd;
    double mx = -INFINITY, sum = 0;
    for (gint t = 0; t < n; t++) {
      double s = 0;
      for (gint i = 0; i < hd; i++)
        s += (double) q[i] * kc[((gsize) hk * c->n_ctx + t) * hd + i];
      p[t] = s / sqrt (hd);
      mx = MAX (mx, p[t]);
    }
    for (gint t = 0; t < n; t++)
      sum += p[t] = exp (p[t] - mx);
    for (gint i = 0; i < hd; i++) {
      double o = 0;
      for (gint t = 0; t < n; t++)
        o += p[t] * vc[((gsize) hk * hd + i) * c->n_ctx + t];
      att[hq * hd + i] = o / sum;
    }
  }
  ref_rms_matvec (att, NULL, wo, NULL, xm, d, nh * hd, 0, QE (e, c->t_o));
  for (gint i = 0; i < d; i++)
    xm[i] += x[i];
  ref_rms_matvec (xm, fnw, wgu, NULL, gu, 2 * F, d, 1e-5f, QE (e, c->t_gu));
  for (gint i = 0; i < F; i++)
    h[i] = gu[i] / (1.0f + expf (-gu[i])) * gu[F + i];
  ref_rms_matvec (h, NULL, wdn, NULL, y, d, F, 0, QE (e, c->t_down));
  for (gint i = 0; i < d; i++)
    y[i] += xm[i];
  g_free (qkv);
  g_free (att);
  g_free (xm);
  g_free (gu);
  g_free (h);
  g_free (p);
}

/* The same layer through the separate ops. */
static MmTensor *
ops_layer (MmGraph * g, MmTensor * x, const MmDecoderLayer * l,
    MmTensor * kc, MmTensor * vc, gint pos)
{
  MmLinearFuse pre = {.norm_w = l->attn_norm,.eps = l->eps };
  MmTensor *q = mm_rope_qkv_store (g, mm_linear_fused (g, x, l->wqkv,
          l->bqkv, &pre), l->n_head, pos, l->n_rot, l->rope_base,
      l->rope_freq_scale, l->rope_mode, kc, vc);
  MmTensor *a = mm_attention_cached (g, q, kc, vc, pos + 1, l->scale, pos);
  MmLinearFuse res = {.residual = x };
  MmTensor *h = mm_linear_fused (g, a, l->wo, NULL, &res);
  MmLinearFuse ffn = {.norm_w = l->ffn_norm,.eps = l->eps,.swiglu = TRUE };
  MmLinearFuse res2 = {.residual = h };
  return mm_linear_fused (g, mm_linear_fused (g, h, l->w_gate_up, NULL, &ffn),
      l->w_down, NULL, &res2);
}

#define ALIGN64(n) (((n) + 63) & ~(gsize) 63)

/* A random layer of case @c (seed @s); with @host, the host values of
 * its weights too: attn_norm, ffn_norm, bqkv, wqkv, wo, w_gate_up, w_down
 * (g_free each). */
static MmDecoderLayer
random_layer (MmEngine * e, const Case * c, guint32 s, float *host[7])
{
  gint nh = c->n_head, nkv = c->n_kv, hd = c->hd, d = c->d, F = c->ffn;
  gint nqkv = (nh + 2 * nkv) * hd;
  gint64 sd = d, sb = nqkv;
  float *h[7] = { mm_test_rand (d, s + 1, 0.5, 1.5),
    mm_test_rand (d, s + 2, 0.5, 1.5), mm_test_rand (nqkv, s + 3, -0.5, 0.5),
    g_new (float, (gsize) nqkv * d), g_new (float, (gsize) d * nh * hd),
    g_new (float, (gsize) 2 * F * d), g_new (float, (gsize) d * F)
  };
  MmDecoderLayer l = {.attn_norm = mm_test_weight (e, 1, &sd, h[0]),
    .wqkv = quant_weight (e, c->t_qkv, nqkv, d, s + 6, h[3]),
    .bqkv = c->bias ? mm_test_weight (e, 1, &sb, h[2]) : NULL,
    .wo = quant_weight (e, c->t_o, d, nh * hd, s + 7, h[4]),
    .ffn_norm = mm_test_weight (e, 1, &sd, h[1]),
    .w_gate_up = quant_weight (e, c->t_gu, 2 * F, d, s + 8, h[5]),
    .w_down = quant_weight (e, c->t_down, d, F, s + 9, h[6]),
    .n_head = nh,.eps = 1e-5f,.n_rot = c->n_rot,.rope_base = 10000.0f,
    .rope_freq_scale = 1.0f,.rope_mode = c->neox ? MM_ROPE_NEOX :
        MM_ROPE_NORMAL,.scale = 1.0f / sqrtf (hd)
  };
  for (gint i = 0; i < 7; i++) {
    if (host)
      host[i] = h[i];
    else
      g_free (h[i]);
  }
  return l;
}

static gboolean
check (MmEngine * e, MmGraph * g, const Case * c)
{
  gint nh = c->n_head, nkv = c->n_kv, hd = c->hd, d = c->d, F = c->ffn;
  gsize ncache = (gsize) nkv * c->n_ctx * hd;
  guint32 s = d + 3 * nh + 7 * hd + c->pos;
  float *x = mm_test_rand (d, s, -1, 1);
  float *kc = mm_test_rand (ncache, s + 4, -1, 1);
  float *vc = mm_test_rand (ncache, s + 5, -1, 1);
  float *want = g_new (float, d);
  float *kc_want = g_memdup2 (kc, ncache * sizeof (float));
  float *vc_want = g_memdup2 (vc, ncache * sizeof (float));
  gint64 sk[3] = { nkv, c->n_ctx, hd };
  gint64 sv[3] = { nkv, hd, c->n_ctx }, sx[2] = { 1, d };
  float *hw[7];
  MmDecoderLayer l = random_layer (e, c, s, hw);
  float *anw = hw[0], *fnw = hw[1], *bqkv = hw[2], *wqkv = hw[3];
  float *wo = hw[4], *wgu = hw[5], *wdn = hw[6];
  ref_layer (e, c, x, anw, wqkv, c->bias ? bqkv : NULL, wo, fnw, wgu, wdn,
      kc_want, vc_want, want);
  MmTensor *tk[2], *tv[2];
  float *out[2], *kout[2], *vout[2];
  gboolean ok = TRUE;
  gchar *what = g_strdup_printf ("decoder_layer d=%d heads %d/%d hd=%d "
      "ffn=%d rot=%d%s pos=%d/%d bias=%d %s/%s/%s/%s", d, nh, nkv, hd, F,
      c->n_rot, c->neox ? " neox" : "", c->pos, c->n_ctx, c->bias,
      mm_dtype_name (c->t_qkv), mm_dtype_name (c->t_o),
      mm_dtype_name (c->t_gu), mm_dtype_name (c->t_down));
  for (gint fused = 0; fused < 2; fused++) {
    tk[fused] = mm_test_weight (e, 3, sk, kc);
    tv[fused] = mm_test_weight (e, 3, sv, vc);
    mm_graph_reset (g);
    MmTensor *tx = mm_graph_input_f32 (g, 2, sx, x);
    MmTensor *y = fused ? mm_decoder_layer_step (g, tx, &l, tk[1], tv[1],
        c->pos) : ops_layer (g, tx, &l, tk[0], tv[0], c->pos);
    out[fused] = g_new (float, d);
    kout[fused] = g_new (float, ncache);
    vout[fused] = g_new (float, ncache);
    if (y == NULL) {
      g_printerr ("FAIL %s: the fused kernel does not take it\n", what);
      ok = FALSE;
      memset (out[fused], 0, d * sizeof (float));
    } else if (!mm_graph_finish (g, NULL)
        || !mm_tensor_read_f32 (e, y, out[fused], NULL)) {
      g_printerr ("FAIL %s: %s run failed\n", what, fused ? "fused" : "ops");
      ok = FALSE;
    }
    mm_tensor_read_f32 (e, tk[fused], kout[fused], NULL);
    mm_tensor_read_f32 (e, tv[fused], vout[fused], NULL);
  }
  ok &= mm_test_close (what, out[1], want, d, 2e-3f, 2e-3f);
  ok &= mm_test_close ("k cache", kout[1], kc_want, ncache, 1e-4f, 1e-4f);
  ok &= mm_test_close ("v cache", vout[1], vc_want, ncache, 1e-4f, 1e-4f);
  if (memcmp (out[0], out[1], d * sizeof (float))
      || memcmp (kout[0], kout[1], ncache * sizeof (float))
      || memcmp (vout[0], vout[1], ncache * sizeof (float))) {
    g_printerr ("FAIL %s: fused and separate ops differ\n", what);
    ok = FALSE;
  }
  for (gint i = 0; i < 2; i++) {
    mm_tensor_free (tk[i]);
    mm_tensor_free (tv[i]);
    g_free (out[i]);
    g_free (kout[i]);
    g_free (vout[i]);
  }
  MmTensor *all[] = { l.attn_norm, l.wqkv, l.bqkv, l.wo, l.ffn_norm,
    l.w_gate_up, l.w_down
  };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (all[i])
      mm_tensor_free (all[i]);
  void *bufs[] = { x, anw, fnw, bqkv, kc, vc, wqkv, wo, wgu, wdn, want,
    kc_want, vc_want, what
  };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    g_free (bufs[i]);
  return ok;
}

static guint
layer_parts (MmDecoderLayer * l, MmTensor ** p[7])
{
  MmTensor **all[7] = { &l->attn_norm, &l->wqkv, &l->wo, &l->ffn_norm,
    &l->w_gate_up, &l->w_down, &l->bqkv
  };
  guint n = 0;
  for (guint j = 0; j < 7; j++)
    if (*all[j])
      p[n++] = all[j];
  return n;
}

/* Copies @t to @at in @buf; returns the copy */
static MmTensor *
copy_into (MmEngine * e, MmTensor * t, cl_mem buf, gsize at)
{
  gboolean ok = mm_engine_copy (e, t->buf, t->offset, buf, at,
      mm_tensor_span (t), NULL);
  g_assert_true (ok);
  return mm_tensor_new_in (t, buf, at);
}

/* @n layers of case @c one launch each, then as one run (weights and
 * caches in one buffer each): same output and caches, bit for bit. */
static gboolean
check_run (MmEngine * e, MmGraph * g, const Case * c, gint n)
{
  gint d = c->d;
  gsize ncache = (gsize) c->n_kv * c->n_ctx * c->hd;
  gsize kvs = ALIGN64 (ncache * sizeof (float)), ws = 0;
  gint64 sk[3] = { c->n_kv, c->n_ctx, c->hd };
  gint64 sv[3] = { c->n_kv, c->hd, c->n_ctx }, sx[2] = { 1, d };
  MmDecoderLayer *l = g_new (MmDecoderLayer, n), run;
  MmTensor **kc = g_new (MmTensor *, n), **vc = g_new (MmTensor *, n);
  float *x = mm_test_rand (d, 99, -1, 1);
  float *k0 = mm_test_rand (ncache * n, 100, -1, 1);
  float *v0 = mm_test_rand (ncache * n, 101, -1, 1);
  float *y[2] = { g_new0 (float, d), g_new0 (float, d) };
  float *kv[2][2];
  gboolean ok = TRUE;
  for (gint i = 0; i < n; i++) {
    l[i] = random_layer (e, c, 1000 * i + 17, NULL);
    MmTensor **p[7];
    guint np = layer_parts (&l[i], p);
    if (i == 0)
      for (guint j = 0; j < np; j++)
        ws += ALIGN64 (mm_tensor_span (*p[j]));
  }
  /* the run: layer i's parts at i ws, in layer_parts' order */
  cl_mem wb = mm_engine_alloc (e, ws * n, "run", NULL);
  cl_mem kb = mm_engine_alloc (e, kvs * n, "run", NULL);
  cl_mem vb = mm_engine_alloc (e, kvs * n, "run", NULL);
  MmTensor *first[7] = { NULL };
  for (gint i = 0; i < n; i++) {
    MmTensor **p[7];
    guint np = layer_parts (&l[i], p);
    gsize at = i * ws;
    for (guint j = 0; j < np; j++) {
      MmTensor *t = copy_into (e, *p[j], wb, at);
      at += ALIGN64 (mm_tensor_span (*p[j]));
      if (i == 0)
        first[j] = t;
      else
        mm_tensor_free (t);
    }
  }
  run = l[0];
  {
    MmTensor **p[7];
    guint np = layer_parts (&run, p);
    for (guint j = 0; j < np; j++)
      *p[j] = first[j];
  }
  run.n_layers = n;
  run.layer_stride = ws;
  run.kv_stride = kvs;
  for (gint r = 0; r < 2; r++) {
    for (gint i = 0; i < n; i++) {
      kc[i] = mm_test_weight (e, 3, sk, k0 + i * ncache);
      vc[i] = mm_test_weight (e, 3, sv, v0 + i * ncache);
      if (r == 1) {
        MmTensor *a = copy_into (e, kc[i], kb, i * kvs);
        MmTensor *b = copy_into (e, vc[i], vb, i * kvs);
        mm_tensor_free (kc[i]);
        mm_tensor_free (vc[i]);
        kc[i] = a;
        vc[i] = b;
      }
    }
    mm_graph_reset (g);
    MmTensor *t = mm_graph_input_f32 (g, 2, sx, x);
    if (r == 0) {
      for (gint i = 0; i < n && t; i++)
        t = mm_decoder_layer_step (g, t, &l[i], kc[i], vc[i], c->pos);
    } else {
      t = mm_decoder_layer_step (g, t, &run, kc[0], vc[0], c->pos);
    }
    if (t == NULL || !mm_graph_finish (g, NULL)
        || !mm_tensor_read_f32 (e, t, y[r], NULL)) {
      g_printerr ("FAIL run of %d layers: %s failed\n", n, r ? "run" :
          "one by one");
      ok = FALSE;
    }
    kv[r][0] = g_new (float, ncache * n);
    kv[r][1] = g_new (float, ncache * n);
    for (gint i = 0; i < n; i++) {
      mm_tensor_read_f32 (e, kc[i], kv[r][0] + i * ncache, NULL);
      mm_tensor_read_f32 (e, vc[i], kv[r][1] + i * ncache, NULL);
      mm_tensor_free (kc[i]);
      mm_tensor_free (vc[i]);
    }
  }
  if (memcmp (y[0], y[1], d * sizeof (float))
      || memcmp (kv[0][0], kv[1][0], ncache * n * sizeof (float))
      || memcmp (kv[0][1], kv[1][1], ncache * n * sizeof (float))) {
    g_printerr ("FAIL run of %d layers (d=%d): differs from one launch "
        "a layer\n", n, d);
    ok = FALSE;
  }
  /* a stride past the buffer's end is refused */
  run.n_layers = n + 1;
  mm_graph_reset (g);
  MmTensor *t = mm_graph_input_f32 (g, 2, sx, x);
  MmTensor *kk = mm_test_weight (e, 3, sk, k0), *vv = mm_test_weight (e, 3,
      sv, v0);
  GError *err = NULL;
  mm_decoder_layer_step (g, t, &run, kk, vv, c->pos);
  if (mm_graph_finish (g, &err)) {
    g_printerr ("FAIL run of %d layers in a buffer of %d accepted\n", n + 1,
        n);
    ok = FALSE;
  }
  g_clear_error (&err);
  mm_tensor_free (kk);
  mm_tensor_free (vv);
  for (gint i = 0; i < n; i++) {
    MmTensor **p[7];
    guint np = layer_parts (&l[i], p);
    for (guint j = 0; j < np; j++)
      mm_tensor_free (*p[j]);
  }
  for (guint j = 0; j < 7; j++)
    if (first[j])
      mm_tensor_free (first[j]);
  clReleaseMemObject (wb);
  clReleaseMemObject (kb);
  clReleaseMemObject (vb);
  for (gint r = 0; r < 2; r++) {
    g_free (y[r]);
    g_free (kv[r][0]);
    g_free (kv[r][1]);
  }
  g_free (l);
  g_free (kc);
  g_free (vc);
  g_free (x);
  g_free (k0);
  g_free (v0);
  if (ok)
    g_print ("run of %d layers (d=%d): same bits as one launch a layer\n", n,
        d);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  MmGraph *g = mm_graph_new (e);
  gboolean ok = TRUE;
  if (mm_engine_device_class (e) != MM_DEVICE_CLASS_CPU)
    g_print ("not a CPU-class device: only the fallback is checked\n");
  const MmDType Q8 = MM_DTYPE_Q8_0, Q4 = MM_DTYPE_Q4_0, Q41 = MM_DTYPE_Q4_1;
  const Case cases[] = {
    /* SmolLM2-like: 9 / 3 heads of 64, neox */
    {576, 9, 3, 64, 1536, 64, 160, 131, TRUE, FALSE, Q8, Q8, Q8, Q8},
    /* odd head counts and dims, partial rotation, bias, mixed types */
    {96, 5, 1, 32, 160, 16, 40, 0, TRUE, TRUE, Q41, Q8, Q4, Q41},
    {160, 3, 3, 32, 96, 20, 50, 49, FALSE, FALSE, Q4, Q41, Q8, Q4},
    {64, 8, 2, 8, 160, 8, 33, 17, FALSE, TRUE, Q8, Q4, Q41, Q8},
    {128, 6, 2, 48, 224, 48, 97, 96, TRUE, FALSE, Q41, Q41, Q41, Q41},
    /* one KV head, a long history: the keys split into chunks (on a
     * CPU device), merged */
    {128, 4, 1, 32, 160, 32, 401, 390, FALSE, FALSE, Q8, Q4, Q8, Q41},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    ok &= check (e, g, &cases[i]);
  if (mm_engine_device_class (e) == MM_DEVICE_CLASS_CPU) {
    ok &= check_run (e, g, &cases[0], 4);
    ok &= check_run (e, g, &cases[1], 3);
    ok &= check_run (e, g, &cases[3], 2);
  }
  mm_graph_free (g);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
