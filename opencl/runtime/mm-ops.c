/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-ops.h"
#include "mm-launch.h"

#include <math.h>
#include <string.h>

guint
mm_tensor_elem_offset (const MmTensor * t)
{
  gint bb = mm_dtype_block_bytes (t->dtype);
  /* quantised types are addressed in bytes */
  return mm_dtype_block_elems (t->dtype) > 1 ? t->offset : t->offset / bb;
}

void
mm_launch (MmGraph * g, const gchar * kernel, guint dims, const gsize * global,
    gboolean local_one, guint n_args, const MmArg * args)
{
  if (!mm_graph_ok (g))
    return;
  for (guint d = 0; d < dims; d++)
    if (global[d] == 0)
      return;                   /* nothing to do */
  MmEngine *e = mm_graph_engine (g);
  GError *err = NULL;
  mm_engine_lock (e);
  cl_kernel k = mm_engine_kernel (e, kernel, &err);
  cl_int rc = CL_SUCCESS;
  for (guint i = 0; k && i < n_args && rc == CL_SUCCESS; i++) {
    switch (args[i].kind) {
      case 0:
        rc = clSetKernelArg (k, i, sizeof (cl_mem), &args[i].v.m);
        break;
      case 1:
        rc = clSetKernelArg (k, i, sizeof (cl_int), &args[i].v.i);
        break;
      case 2:
        rc = clSetKernelArg (k, i, sizeof (cl_uint), &args[i].v.u);
        break;
      case 4:
        rc = clSetKernelArg (k, i, sizeof (cl_ulong), &args[i].v.ul);
        break;
      default:
        rc = clSetKernelArg (k, i, sizeof (cl_float), &args[i].v.f);
        break;
    }
  }
  const gsize ones[3] = { 1, 1, 1 };
  gboolean prof = mm_engine_profiling (e);
  cl_event ev = NULL;
  if (k && rc == CL_SUCCESS)
    rc = clEnqueueNDRangeKernel (mm_engine_queue (e), k, dims, NULL, global,
        local_one ? ones : NULL, 0, NULL, prof ? &ev : NULL);
  if (ev) {
    /* profiling serialises: fine for bench/, never on by default */
    clWaitForEvents (1, &ev);
    mm_engine_profile_add (e, kernel, ev);
    clReleaseEvent (ev);
  }
  mm_engine_unlock (e);
  if (k == NULL)
    mm_graph_fail (g, err);
  else if (rc != CL_SUCCESS)
    mm_graph_failf (g, "%s: %s (%d)", kernel, mm_cl_strerror (rc), rc);
}

/* Common checks: live graph, F32 input(s). */
static gboolean
ok_f32 (MmGraph * g, const gchar * op, MmTensor * a, MmTensor * b)
{
  if (!mm_graph_ok (g))
    return FALSE;
  if (a->dtype != MM_DTYPE_F32 || (b && b->dtype != MM_DTYPE_F32)) {
    mm_graph_failf (g, "%s: expects F32 activations, got %s", op,
        mm_dtype_name (a->dtype != MM_DTYPE_F32 ? a->dtype : b->dtype));
    return FALSE;
  }
  return TRUE;
}

static MmTensor *
like (MmGraph * g, MmTensor * a)
{
  return mm_graph_tensor (g, MM_DTYPE_F32, a->n_dims, a->shape);
}

static MmTensor *
binary (MmGraph * g, const gchar * op, const gchar * kernel, MmTensor * a,
    MmTensor * b)
{
  if (!ok_f32 (g, op, a, b))
    return mm_graph_dead (g);
  gint64 na = mm_tensor_numel (a), nb = mm_tensor_numel (b);
  if (nb == 0 || na % nb != 0) {
    mm_graph_failf (g, "%s: cannot broadcast %s", op, mm_tensor_shape_str (b));
    return mm_graph_dead (g);
  }
  MmTensor *y = like (g, a);
  gsize gws = na;
  MM_LAUNCH (g, kernel, 1, &gws, FALSE, MM_TENSOR (a), MM_TENSOR (b),
      MM_UINT (nb), MM_TENSOR (y));
  return y;
}

MmTensor *
mm_add (MmGraph * g, MmTensor * a, MmTensor * b)
{
  return binary (g, "add", "kernel_add", a, b);
}

MmTensor *
mm_mul (MmGraph * g, MmTensor * a, MmTensor * b)
{
  return binary (g, "mul", "kernel_mul", a, b);
}

MmTensor *
mm_scale (MmGraph * g, MmTensor * a, float s)
{
  if (!ok_f32 (g, "scale", a, NULL))
    return mm_graph_dead (g);
  MmTensor *y = like (g, a);
  gsize gws = mm_tensor_numel (a);
  MM_LAUNCH (g, "kernel_scale", 1, &gws, FALSE, MM_TENSOR (a), MM_FLOAT (s),
      MM_TENSOR (y));
  return y;
}

static MmTensor *
unary (MmGraph * g, const gchar * kernel, MmTensor * x)
{
  if (!ok_f32 (g, kernel, x, NULL))
    return mm_graph_dead (g);
  MmTensor *y = like (g, x);
  gsize gws = mm_tensor_numel (x);
  MM_LAUNCH (g, kernel, 1, &gws, FALSE, MM_TENSOR (x), MM_TENSOR (y));
  return y;
}

MmTensor *
mm_gelu (MmGraph * g, MmTensor * x)
{
  return unary (g, "kernel_gelu", x);
}

MmTensor *
mm_gelu_tanh (MmGraph * g, MmTensor * x)
{
  return unary (g, "kernel_gelu_tanh", x);
}

MmTensor *
mm_quick_gelu (MmGraph * g, MmTensor * x)
{
  return unary (g, "kernel_quick_gelu", x);
}

MmTensor *
mm_silu (MmGraph * g, MmTensor * x)
{
  return unary (g, "kernel_silu", x);
}

MmTensor *
mm_swiglu (MmGraph * g, MmTensor * gate, MmTensor * up)
{
  if (!ok_f32 (g, "swiglu", gate, up))
    return mm_graph_dead (g);
  if (mm_tensor_numel (gate) != mm_tensor_numel (up)) {
    mm_graph_failf (g, "swiglu: gate %s and up differ",
        mm_tensor_shape_str (gate));
    return mm_graph_dead (g);
  }
  MmTensor *y = like (g, gate);
  gsize gws = mm_tensor_numel (gate);
  MM_LAUNCH (g, "kernel_swiglu", 1, &gws, FALSE, MM_TENSOR (gate),
      MM_TENSOR (up), MM_TENSOR (y));
  return y;
}

/* A norm weight must be F32 [cols]; returns FALSE (graph failed) if not. */
static gboolean
check_vec (MmGraph * g, const gchar * op, MmTensor * w, gint64 cols)
{
  if (w == NULL)
    return TRUE;
  if (w->dtype != MM_DTYPE_F32 || mm_tensor_numel (w) != cols) {
    mm_graph_failf (g, "%s: parameter %s %s does not match %" G_GINT64_FORMAT
        " columns", op, mm_dtype_name (w->dtype), mm_tensor_shape_str (w),
        cols);
    return FALSE;
  }
  return TRUE;
}

MmTensor *
mm_layer_norm (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b,
    float eps)
{
  if (!ok_f32 (g, "layer_norm", x, NULL))
    return mm_graph_dead (g);
  gint64 cols = mm_tensor_cols (x);
  if (!check_vec (g, "layer_norm", w, cols)
      || !check_vec (g, "layer_norm", b, cols))
    return mm_graph_dead (g);
  MmTensor *y = like (g, x);
  gsize gws = mm_tensor_rows (x);
  MM_LAUNCH (g, "kernel_layer_norm", 1, &gws, TRUE, MM_TENSOR (x),
      MM_TENSOR (w ? w : x), MM_INT (w != NULL), MM_TENSOR (b ? b : x),
      MM_INT (b != NULL), MM_TENSOR (y), MM_UINT (cols), MM_FLOAT (eps));
  return y;
}

MmTensor *
mm_rms_norm (MmGraph * g, MmTensor * x, MmTensor * w, float eps)
{
  if (!ok_f32 (g, "rms_norm", x, NULL))
    return mm_graph_dead (g);
  gint64 cols = mm_tensor_cols (x);
  if (!check_vec (g, "rms_norm", w, cols))
    return mm_graph_dead (g);
  MmTensor *y = like (g, x);
  gsize gws = mm_tensor_rows (x);
  MM_LAUNCH (g, "kernel_rms_norm", 1, &gws, TRUE, MM_TENSOR (x),
      MM_TENSOR (w ? w : x), MM_INT (w != NULL), MM_TENSOR (y),
      MM_UINT (cols), MM_FLOAT (eps));
  return y;
}

static MmTensor *
softmax (MmGraph * g, MmTensor * x, MmTensor * mask, float scale,
    gint causal_offset, MmTensor * inv)
{
  if (!ok_f32 (g, "softmax", x, mask))
    return mm_graph_dead (g);
  gint64 cols = mm_tensor_cols (x);
  gint64 rows = x->n_dims >= 2 ? x->shape[x->n_dims - 2] : 1;
  if (mask && (mm_tensor_cols (mask) != cols
          || mm_tensor_numel (mask) != rows * cols)) {
    mm_graph_failf (g, "softmax: mask %s does not match [%" G_GINT64_FORMAT
        ", %" G_GINT64_FORMAT "]", mm_tensor_shape_str (mask), rows, cols);
    return mm_graph_dead (g);
  }
  MmTensor *y = like (g, x);
  gsize gws = mm_tensor_rows (x);
  MM_LAUNCH (g, "kernel_softmax", 1, &gws, TRUE, MM_TENSOR (x), MM_TENSOR (y),
      MM_UINT (cols), MM_UINT (rows), MM_TENSOR (mask ? mask : x),
      MM_INT (mask != NULL), MM_FLOAT (scale), MM_INT (causal_offset),
      MM_TENSOR (inv ? inv : y), MM_INT (inv != NULL));
  return y;
}

MmTensor *
mm_softmax (MmGraph * g, MmTensor * x, MmTensor * mask, float scale,
    gint causal_offset)
{
  return softmax (g, x, mask, scale, causal_offset, NULL);
}

MmTensor *
mm_softmax_unnormalised (MmGraph * g, MmTensor * x, MmTensor * mask,
    float scale, gint causal_offset, MmTensor ** inv)
{
  gint64 rows = mm_tensor_rows (x);
  *inv = mm_graph_tensor (g, MM_DTYPE_F32, 1, &rows);
  return softmax (g, x, mask, scale, causal_offset, *inv);
}

/* cos/sin of theta for positions [pos0, pos0 + n): [n, n_rot] with the
 * cosines first.  Computed as transformers does: inv_freq and theta in
 * float32, the cosine of that float. */
static MmTensor *
rope_table (MmGraph * g, gint64 n, gint pos0, gint n_rot, float base,
    float freq_scale)
{
  gchar key[96];
  g_snprintf (key, sizeof (key), "rope %" G_GINT64_FORMAT " %d %d %a %a", n,
      pos0, n_rot, base, freq_scale);
  MmTensor *t = mm_graph_memo (g, key, NULL);
  if (t)
    return t;
  gint half = n_rot / 2;
  float *cs = g_new (float, n * n_rot);
  for (gint i = 0; i < half; i++) {
    float inv_freq = 1.0f / powf (base, (float) (2 * i) / (float) n_rot);
    for (gint64 p = 0; p < n; p++) {
      float theta = (float) (pos0 + p) * freq_scale * inv_freq;
      cs[p * n_rot + i] = (float) cos ((double) theta);
      cs[p * n_rot + half + i] = (float) sin ((double) theta);
    }
  }
  gint64 shape[2] = { n, n_rot };
  t = mm_graph_input_f32 (g, 2, shape, cs);
  g_free (cs);
  return mm_graph_memo (g, key, t);
}

MmTensor *
mm_rope (MmGraph * g, MmTensor * x, gint pos0, gint n_rot, float base,
    float freq_scale, MmRopeMode mode)
{
  if (!ok_f32 (g, "rope", x, NULL))
    return mm_graph_dead (g);
  if (x->n_dims != 3 || n_rot <= 0 || n_rot % 2 || n_rot > x->shape[2]) {
    mm_graph_failf (g, "rope: x %s must be [n_tok, n_head, head_dim] with "
        "an even n_rot (%d) <= head_dim", mm_tensor_shape_str (x), n_rot);
    return mm_graph_dead (g);
  }
  MmTensor *cs = rope_table (g, x->shape[0], pos0, n_rot, base, freq_scale);
  MmTensor *y = like (g, x);
  gsize gws = x->shape[0] * x->shape[1];
  MM_LAUNCH (g, "kernel_rope", 1, &gws, TRUE, MM_TENSOR (x), MM_TENSOR (y),
      MM_TENSOR (cs), MM_UINT (x->shape[1]), MM_UINT (x->shape[2]),
      MM_UINT (n_rot), MM_INT (mode == MM_ROPE_NEOX));
  return y;
}

MmTensor *
mm_linear (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b)
{
  if (!ok_f32 (g, "linear", x, NULL))
    return mm_graph_dead (g);
  gint64 K = mm_tensor_cols (x), M = mm_tensor_rows (x);
  gint64 N = w->n_dims >= 1 ? w->shape[0] : 0;
  if (w->n_dims != 2 || w->shape[1] != K || !check_vec (g, "linear", b, N)) {
    if (mm_graph_ok (g))
      mm_graph_failf (g, "linear: weight %s does not take input %s (weights "
          "are [out, in])", mm_tensor_shape_str (w), mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  gint64 shape[MM_MAX_DIMS];
  memcpy (shape, x->shape, sizeof (shape));
  shape[x->n_dims - 1] = N;
  MmTensor *y = mm_graph_tensor (g, MM_DTYPE_F32, x->n_dims, shape);
  MmGemmShape s = { .M = M, .N = N, .K = K, .batch = 1, .b_div = 1,
    .lda = K, .ldb = K, .ldc = N, .alpha = 1.0f
  };
  mm_gemm (g, x, w, b, y, &s);
  return y;
}

MmTensor *
mm_swiglu_split (MmGraph * g, MmTensor * x)
{
  if (!ok_f32 (g, "swiglu_split", x, NULL))
    return mm_graph_dead (g);
  gint64 F = mm_tensor_cols (x) / 2, rows = mm_tensor_rows (x);
  if (F * 2 != mm_tensor_cols (x)) {
    mm_graph_failf (g, "swiglu_split: %s has an odd number of columns",
        mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor *y = mm_graph_tensor_2d (g, rows, F);
  gsize gws[2] = { (F + 15) / 16, rows };
  MM_LAUNCH (g, "kernel_swiglu_split", 2, gws, TRUE, MM_TENSOR (x),
      MM_TENSOR (y), MM_UINT (F));
  return y;
}

static MmTensor *
linear_act (MmGraph * g, MmLinearAct act, MmTensor * x)
{
  switch (act) {
    case MM_LINEAR_ACT_GELU:
      return mm_gelu (g, x);
    case MM_LINEAR_ACT_GELU_TANH:
      return mm_gelu_tanh (g, x);
    case MM_LINEAR_ACT_QUICK_GELU:
      return mm_quick_gelu (g, x);
    case MM_LINEAR_ACT_SILU:
      return mm_silu (g, x);
    case MM_LINEAR_ACT_NONE:
      break;
  }
  return x;
}

MmTensor *
mm_linear_fused (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b,
    const MmLinearFuse * f)
{
  if (f == NULL)
    return mm_linear (g, x, w, b);
  if (!ok_f32 (g, "linear_fused", x, f->residual))
    return mm_graph_dead (g);
  gint64 K = mm_tensor_cols (x), M = mm_tensor_rows (x);
  gint64 N = w->n_dims == 2 ? w->shape[0] : 0, out = f->swiglu ? N / 2 : N;
  if (w->n_dims != 2 || w->shape[1] != K || (f->swiglu && N % 2)
      || !check_vec (g, "linear_fused", b, N)
      || !check_vec (g, "linear_fused", f->norm_w, K)
      || (f->swiglu && f->act) || (guint) f->act > MM_LINEAR_ACT_SILU
      || (f->residual && (mm_tensor_cols (f->residual) != out
              || mm_tensor_rows (f->residual) != M))) {
    if (mm_graph_ok (g))
      mm_graph_failf (g, "linear_fused: weight %s does not take input %s "
          "(or the residual does not fit)", mm_tensor_shape_str (w),
          mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor *y = mm_gemm_linear_fused (g, x, w, b, f);
  if (y)
    return y;
  if (!f->norm_w && !f->swiglu) {
    /* F32/F16 weights: act and residual in the tiled GEMM's last pass */
    gint64 shape[MM_MAX_DIMS];
    memcpy (shape, x->shape, sizeof (shape));
    shape[x->n_dims - 1] = N;
    y = mm_graph_tensor (g, MM_DTYPE_F32, x->n_dims, shape);
    MmGemmShape s = {.M = M,.N = N,.K = K,.batch = 1,.b_div = 1,.lda = K,
      .ldb = K,.ldc = N,.alpha = 1.0f
    };
    MmGemmEpilogue epi = {.act = f->act,.residual = f->residual,
      .ldr = f->residual ? N : 0
    };
    if (mm_gemm_epilogue (g, x, w, b, y, &s, &epi))
      return y;
  }
  MmTensor *h = f->norm_w ? mm_rms_norm (g, x, f->norm_w, f->eps) : x;
  /* a one-row residual is a bias vector to the GEMM */
  gboolean res_bias = f->residual && !f->swiglu && !f->act && !b && M == 1;
  y = mm_linear (g, h, w, res_bias ? mm_reshape (g, f->residual, 1, &N) : b);
  if (f->swiglu)
    y = mm_swiglu_split (g, y);
  y = linear_act (g, f->act, y);
  if (f->residual && !res_bias)
    y = mm_add (g, y, f->residual);
  return y;
}

MmTensor *
mm_permute (MmGraph * g, MmTensor * x, const gint * perm)
{
  if (!ok_f32 (g, "permute", x, NULL))
    return mm_graph_dead (g);
  gint n = x->n_dims;
  /* pad to 4-D at the front */
  gint64 in[4] = { 1, 1, 1, 1 }, stride[4], out[4];
  gint p[4];
  for (gint i = 0; i < n; i++)
    in[4 - n + i] = x->shape[i];
  stride[3] = 1;
  for (gint i = 2; i >= 0; i--)
    stride[i] = stride[i + 1] * in[i + 1];
  for (gint i = 0; i < 4; i++)
    p[i] = i < 4 - n ? i : perm[i - (4 - n)] + (4 - n);
  guint seen = 0;
  for (gint i = 0; i < 4; i++) {
    if (p[i] < 0 || p[i] > 3 || (seen & (1u << p[i]))) {
      mm_graph_failf (g, "permute: invalid permutation");
      return mm_graph_dead (g);
    }
    seen |= 1u << p[i];
    out[i] = in[p[i]];
  }
  MmTensor *y = mm_graph_tensor (g, MM_DTYPE_F32, n, out + 4 - n);
  gsize gws = mm_tensor_numel (x);
  MM_LAUNCH (g, "kernel_permute", 1, &gws, FALSE, MM_TENSOR (x), MM_TENSOR (y),
      MM_UINT (out[1]), MM_UINT (out[2]), MM_UINT (out[3]),
      MM_UINT (stride[p[0]]), MM_UINT (stride[p[1]]), MM_UINT (stride[p[2]]),
      MM_UINT (stride[p[3]]));
  return y;
}

MmTensor *
mm_transpose (MmGraph * g, MmTensor * x)
{
  const gint perm[2] = { 1, 0 };
  if (mm_graph_ok (g) && x->n_dims != 2) {
    mm_graph_failf (g, "transpose: %s is not 2-D", mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  return mm_permute (g, x, perm);
}

/* Copy a rows x cols block (row strides in elements). */
static void
copy2d (MmGraph * g, MmTensor * src, gint64 src_off, gint64 src_ld,
    MmTensor * dst, gint64 dst_off, gint64 dst_ld, gint64 rows, gint64 cols)
{
  MmTensor s = *src, d = *dst;
  s.offset += src_off * sizeof (float);
  d.offset += dst_off * sizeof (float);
  gsize gws[2] = { cols, rows };
  MM_LAUNCH (g, "kernel_copy2d", 2, gws, FALSE, MM_TENSOR (&s),
      MM_UINT (src_ld), MM_TENSOR (&d), MM_UINT (dst_ld), MM_UINT (cols));
}

MmTensor *
mm_concat (MmGraph * g, MmTensor * a, MmTensor * b, gboolean last_dim)
{
  if (!ok_f32 (g, "concat", a, b))
    return mm_graph_dead (g);
  gint64 ca = mm_tensor_cols (a), cb = mm_tensor_cols (b);
  gint64 ra = mm_tensor_rows (a), rb = mm_tensor_rows (b);
  if (last_dim ? ra != rb : ca != cb) {
    mm_graph_failf (g, "concat: %s and %s do not fit", mm_tensor_shape_str (a),
        mm_tensor_shape_str (b));
    return mm_graph_dead (g);
  }
  MmTensor *y = last_dim ? mm_graph_tensor_2d (g, ra, ca + cb)
      : mm_graph_tensor_2d (g, ra + rb, ca);
  if (last_dim) {
    copy2d (g, a, 0, ca, y, 0, ca + cb, ra, ca);
    copy2d (g, b, 0, cb, y, ca, ca + cb, rb, cb);
  } else {
    copy2d (g, a, 0, ca, y, 0, ca, ra, ca);
    copy2d (g, b, 0, cb, y, ra * ca, ca, rb, cb);
  }
  return y;
}

MmTensor *
mm_slice_rows (MmGraph * g, MmTensor * x, gint64 row0, gint64 n)
{
  if (!ok_f32 (g, "slice_rows", x, NULL))
    return mm_graph_dead (g);
  gint64 rows = mm_tensor_rows (x), cols = mm_tensor_cols (x);
  if (row0 < 0 || n <= 0 || row0 + n > rows) {
    mm_graph_failf (g, "slice_rows: [%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT
        ") outside %s", row0, n, mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor *y = mm_graph_tensor_2d (g, n, cols);
  copy2d (g, x, row0 * cols, cols, y, 0, cols, n, cols);
  return y;
}

MmTensor *
mm_slice_cols (MmGraph * g, MmTensor * x, gint64 col0, gint64 n)
{
  if (!ok_f32 (g, "slice_cols", x, NULL))
    return mm_graph_dead (g);
  gint64 rows = mm_tensor_rows (x), cols = mm_tensor_cols (x);
  if (col0 < 0 || n <= 0 || col0 + n > cols) {
    mm_graph_failf (g, "slice_cols: [%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT
        ") outside %s", col0, n, mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor *y = mm_graph_tensor_2d (g, rows, n);
  copy2d (g, x, col0, cols, y, 0, n, rows, n);
  return y;
}

void
mm_copy_rows_into (MmGraph * g, MmTensor * dst, gint64 row0, MmTensor * x)
{
  if (!ok_f32 (g, "copy_rows_into", x, dst))
    return;
  gint64 cols = mm_tensor_cols (x), n = mm_tensor_rows (x);
  if (mm_tensor_cols (dst) != cols || row0 < 0
      || row0 + n > mm_tensor_rows (dst)) {
    mm_graph_failf (g, "copy_rows_into: %s at row %" G_GINT64_FORMAT
        " does not fit %s", mm_tensor_shape_str (x), row0,
        mm_tensor_shape_str (dst));
    return;
  }
  copy2d (g, x, 0, cols, dst, row0 * cols, cols, n, cols);
}

MmTensor *
mm_copy (MmGraph * g, MmTensor * x)
{
  if (!ok_f32 (g, "copy", x, NULL))
    return mm_graph_dead (g);
  MmTensor *y = like (g, x);
  copy2d (g, x, 0, mm_tensor_cols (x), y, 0, mm_tensor_cols (x),
      mm_tensor_rows (x), mm_tensor_cols (x));
  return y;
}

/* Attention through two strided-batched GEMMs, no permutes: q [nq, H, d]
 * is A as it lies (rows H d apart, heads d apart); k and vt are B, head
 * hk's keys [nk, d] at @k_ld / @k_stride and values transposed [d, nk] at
 * @vt_ld / @vt_stride; the output [nq, H * d] is C written in place. */
static MmTensor *
attention_gemm (MmGraph * g, MmTensor * q, MmTensor * k, gint64 k_ld,
    gint64 k_stride, MmTensor * vt, gint64 vt_ld, gint64 vt_stride,
    gint64 nk, gint64 Hkv, MmTensor * mask, float scale, gint causal_offset)
{
  gint64 nq = q->shape[0], H = q->shape[1], d = q->shape[2];
  gint64 ss[3] = { H, nq, nk };
  MmTensor *s = mm_graph_tensor (g, MM_DTYPE_F32, 3, ss);
  MmGemmShape gs = { .M = nq, .N = nk, .K = d, .batch = H, .b_div = H / Hkv,
    .lda = H * d, .ldb = k_ld, .ldc = nk, .stride_a = d, .stride_b = k_stride,
    .stride_c = nq * nk, .alpha = 1.0f
  };
  mm_gemm (g, q, k, NULL, s, &gs);
  MmTensor *p = mm_softmax (g, s, mask, scale, causal_offset);
  MmTensor *o = mm_graph_tensor_2d (g, nq, H * d);
  MmGemmShape go = { .M = nq, .N = d, .K = nk, .batch = H, .b_div = H / Hkv,
    .lda = nk, .ldb = vt_ld, .ldc = H * d, .stride_a = nq * nk,
    .stride_b = vt_stride, .stride_c = d, .alpha = 1.0f
  };
  mm_gemm (g, p, vt, NULL, o, &go);
  return o;
}

/* Elements from @col0 on of a tensor, as the flat view a strided GEMM
 * operand needs (no copy). */
static MmTensor *
flat_from (MmGraph * g, MmTensor * x, gint64 col0)
{
  MmTensor v = *x;
  gint64 n = mm_tensor_numel (x) - col0;
  v.offset += col0 * sizeof (float);
  return mm_graph_keep (g, mm_tensor_view (&v, 1, &n));
}

/* Attention with V in rows (mm_gemm_panels_supported): q, k, v are flat
 * views at head 0 of their first row, rows ldq / ldk / ldv apart, heads
 * d apart; scores S = scale q k^T [H, nq, nk], their softmax left
 * unnormalised, and P V lands in o (rows ldo apart) with 1 / row sums
 * applied in the GEMM's last pass.  V's head panels are copied as runs
 * (no transposition, as mm_gemm's packing of V^T would need). */
static void
attention_rows (MmGraph * g, MmTensor * q, gint64 ldq, MmTensor * k,
    gint64 ldk, MmTensor * v, gint64 ldv, gint64 nq, gint64 nk, gint64 H,
    gint64 Hkv, gint64 d, MmTensor * mask, float scale, gint causal_offset,
    MmTensor * o, gint64 ldo)
{
  /* fused: no score matrix (CPU devices, no mask) */
  if (mask == NULL && causal_offset < 0 && mm_attention_flash (g, q, ldq,
          k, ldk, v, ldv, nq, nk, H, Hkv, d, scale, o, ldo))
    return;
  gint64 ss[3] = { H, nq, nk };
  MmTensor *s = mm_graph_tensor (g, MM_DTYPE_F32, 3, ss);
  MmGemmShape qk = {.M = nq,.N = nk,.K = d,.batch = H,.b_div = H / Hkv,
    .lda = ldq,.ldb = ldk,.ldc = nk,.stride_a = d,.stride_b = d,
    .stride_c = nq * nk,.alpha = scale
  };
  mm_gemm (g, q, k, NULL, s, &qk);
  MmTensor *inv;
  MmTensor *p = mm_softmax_unnormalised (g, s, mask, 1.0f, causal_offset,
      &inv);
  MmGemmShape pv = {.M = nq,.N = d,.K = nk,.batch = H,.b_div = H / Hkv,
    .lda = nk,.ldb = nk,.ldc = ldo,.stride_a = nq * nk,.stride_c = d,
    .alpha = 1.0f
  };
  /* V's head panels are runs of 32 floats in its rows: copied as runs
   * (read in place, rows ld apart, they would thrash L1's sets) */
  MmGemmPanels pl;
  MmTensor *vp = mm_gemm_pack_rows (g, v, ldv, d, d, nk, Hkv, &pl);
  MmGemmEpilogue epi = {.row_scale = inv,.stride_rs = nq };
  if (!mm_gemm_panels (g, p, vp, &pl, o, &pv, &epi) && mm_graph_ok (g))
    mm_graph_failf (g, "attention: P . V in place not taken");
}

MmTensor *
mm_self_attention_qkv (MmGraph * g, MmTensor * qkv, gint n_head,
    float scale, gint64 max_scores_bytes)
{
  if (!ok_f32 (g, "self_attention_qkv", qkv, NULL))
    return mm_graph_dead (g);
  gint64 n = mm_tensor_rows (qkv), ld = mm_tensor_cols (qkv);
  gint64 d = n_head > 0 ? ld / (3 * n_head) : 0, dm = n_head * d;
  if (n_head <= 0 || d <= 0 || ld != 3 * dm) {
    mm_graph_failf (g, "self_attention_qkv: %s is not [n, 3 x %d heads]",
        mm_tensor_shape_str (qkv), n_head);
    return mm_graph_dead (g);
  }
  MmTensor *o = mm_graph_tensor_2d (g, n, dm);
  /* fused: all heads at once, no score matrix */
  if (mm_attention_flash (g, flat_from (g, qkv, 0), ld, flat_from (g, qkv,
              dm), ld, flat_from (g, qkv, 2 * dm), ld, n, n, n_head, n_head,
          d, scale, o, dm))
    return o;
  gint group = max_scores_bytes > 0 ? CLAMP (max_scores_bytes / (n * n * 4),
      1, n_head) : n_head;
  gboolean in_place = mm_gemm_panels_supported (g, n, d);
  for (gint h0 = 0; h0 < n_head; h0 += group) {
    gint nh = MIN (group, n_head - h0);
    MmGraphMark mark = mm_graph_mark (g);
    if (in_place) {
      attention_rows (g, flat_from (g, qkv, h0 * d), ld,
          flat_from (g, qkv, dm + h0 * d), ld,
          flat_from (g, qkv, 2 * dm + h0 * d), ld, n, n, nh, nh, d, NULL,
          scale, -1, flat_from (g, o, h0 * d), dm);
    } else {
      /* V transposed per head, the B operand of P . V for mm_gemm */
      gint64 ss[3] = { nh, n, n }, vs[3] = { nh, d, n };
      MmTensor *s = mm_graph_tensor (g, MM_DTYPE_F32, 3, ss);
      MmGemmShape qk = {.M = n,.N = n,.K = d,.batch = nh,.b_div = 1,
        .lda = ld,.ldb = ld,.ldc = n,.stride_a = d,.stride_b = d,
        .stride_c = n * n,.alpha = scale
      };
      mm_gemm (g, flat_from (g, qkv, h0 * d), flat_from (g, qkv,
              dm + h0 * d), NULL, s, &qk);
      MmTensor *p = mm_softmax (g, s, NULL, 1.0f, -1);
      MmTensor *vt = mm_graph_tensor (g, MM_DTYPE_F32, 3, vs);
      gsize gws[3] = { d, (n + 15) / 16, nh };
      MM_LAUNCH (g, "kernel_vision_heads_t", 3, gws, FALSE, MM_TENSOR (qkv),
          MM_UINT (ld), MM_UINT (2 * dm + h0 * d), MM_TENSOR (vt),
          MM_UINT (n), MM_UINT (d));
      MmGemmShape pv = {.M = n,.N = d,.K = n,.batch = nh,.b_div = 1,
        .lda = n,.ldb = n,.ldc = dm,.stride_a = n * n,.stride_b = d * n,
        .stride_c = d,.alpha = 1.0f
      };
      mm_gemm (g, p, vt, NULL, flat_from (g, o, h0 * d), &pv);
    }
    mm_graph_rewind (g, mark);
  }
  return o;
}

MmTensor *
mm_attention (MmGraph * g, MmTensor * q, MmTensor * k, MmTensor * v,
    MmTensor * mask, float scale, gint causal_offset)
{
  if (!ok_f32 (g, "attention", q, k) || !ok_f32 (g, "attention", v, NULL))
    return mm_graph_dead (g);
  if (q->n_dims != 3 || k->n_dims != 3 || v->n_dims != 3
      || k->shape[2] != q->shape[2] || v->shape[2] != q->shape[2]
      || k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1]
      || q->shape[1] % k->shape[1] != 0) {
    mm_graph_failf (g, "attention: q %s, k %s, v %s do not fit",
        mm_tensor_shape_str (q), mm_tensor_shape_str (k),
        mm_tensor_shape_str (v));
    return mm_graph_dead (g);
  }
  gint64 d = q->shape[2], nk = k->shape[0], Hkv = k->shape[1];
  gint64 nq = q->shape[0], H = q->shape[1];
  if (mm_gemm_panels_supported (g, nq, d)) {
    MmTensor *o = mm_graph_tensor_2d (g, nq, H * d);
    attention_rows (g, q, H * d, k, Hkv * d, v, Hkv * d, nq, nk, H, Hkv, d,
        mask, scale, causal_offset, o, H * d);
    return o;
  }
  const gint p_vt[3] = { 1, 2, 0 };
  MmTensor *vt = mm_permute (g, v, p_vt);       /* [Hkv, d, nk] */
  return attention_gemm (g, q, k, Hkv * d, d, vt, nk, d * nk, nk, Hkv, mask,
      scale, causal_offset);
}

/* Checks a layer's cache pair: k [Hkv, n_ctx, d], v [Hkv, d, n_ctx]. */
static gboolean
check_kv_cache (MmGraph * g, const gchar * op, MmTensor * kc, MmTensor * vc)
{
  if (!ok_f32 (g, op, kc, vc))
    return FALSE;
  if (kc->n_dims != 3 || vc->n_dims != 3 || vc->shape[0] != kc->shape[0]
      || vc->shape[1] != kc->shape[2] || vc->shape[2] != kc->shape[1]) {
    mm_graph_failf (g, "%s: caches k %s, v %s are not [n_kv_head, n_ctx, d] "
        "and [n_kv_head, d, n_ctx]", op, mm_tensor_shape_str (kc),
        mm_tensor_shape_str (vc));
    return FALSE;
  }
  return TRUE;
}

void
mm_kv_store (MmGraph * g, MmTensor * k_cache, MmTensor * v_cache, gint pos0,
    MmTensor * k, MmTensor * v)
{
  if (!check_kv_cache (g, "kv_store", k_cache, v_cache)
      || !ok_f32 (g, "kv_store", k, v))
    return;
  gint64 Hkv = k_cache->shape[0], n_ctx = k_cache->shape[1];
  gint64 d = k_cache->shape[2], n = mm_tensor_numel (k) / MAX (Hkv * d, 1);
  if (mm_tensor_numel (k) != n * Hkv * d
      || mm_tensor_numel (v) != mm_tensor_numel (k) || pos0 < 0
      || pos0 + n > n_ctx) {
    mm_graph_failf (g, "kv_store: k %s, v %s at position %d do not fit "
        "cache %s", mm_tensor_shape_str (k), mm_tensor_shape_str (v), pos0,
        mm_tensor_shape_str (k_cache));
    return;
  }
  gsize gws[3] = { d, n, Hkv };
  MM_LAUNCH (g, "kernel_kv_store", 3, gws, FALSE, MM_TENSOR (k), MM_TENSOR (v),
      MM_TENSOR (k_cache), MM_TENSOR (v_cache), MM_UINT (Hkv), MM_UINT (d),
      MM_UINT (n_ctx), MM_UINT (pos0));
}

MmTensor *
mm_rope_qkv_store (MmGraph * g, MmTensor * qkv, gint n_head, gint pos0,
    gint n_rot, float base, float freq_scale, MmRopeMode mode,
    MmTensor * k_cache, MmTensor * v_cache)
{
  if (!check_kv_cache (g, "rope_qkv_store", k_cache, v_cache)
      || !ok_f32 (g, "rope_qkv_store", qkv, NULL))
    return mm_graph_dead (g);
  gint64 Hkv = k_cache->shape[0], n_ctx = k_cache->shape[1];
  gint64 d = k_cache->shape[2], n = mm_tensor_rows (qkv);
  if (n_head <= 0 || mm_tensor_cols (qkv) != (n_head + 2 * Hkv) * d
      || n_rot <= 0 || n_rot % 2 || n_rot > d || pos0 < 0
      || pos0 + n > n_ctx) {
    mm_graph_failf (g, "rope_qkv_store: qkv %s of %d heads (rope dims %d) "
        "at position %d does not fit cache %s", mm_tensor_shape_str (qkv),
        n_head, n_rot, pos0, mm_tensor_shape_str (k_cache));
    return mm_graph_dead (g);
  }
  MmTensor *cs = rope_table (g, n, pos0, n_rot, base, freq_scale);
  gint64 qs[3] = { n, n_head, d };
  MmTensor *q = mm_graph_tensor (g, MM_DTYPE_F32, 3, qs);
  gsize gws[2] = { n_head + 2 * Hkv, n };
  MM_LAUNCH (g, "kernel_rope_qkv_store", 2, gws, TRUE, MM_TENSOR (qkv),
      MM_TENSOR (cs), MM_TENSOR (q), MM_TENSOR (k_cache), MM_TENSOR (v_cache),
      MM_UINT (n_head), MM_UINT (Hkv), MM_UINT (d), MM_UINT (n_rot),
      MM_INT (mode == MM_ROPE_NEOX), MM_UINT (n_ctx), MM_UINT (pos0));
  return q;
}

/* Up to this many queries attend in one kernel (a work-item per head and
 * query); more go through the batched GEMMs. */
#define ATTN_DECODE_MAX_Q 4

/* Chunks of a KV head's keys decode attention may split into
 * (attention.cl's att_chunks, which keeps chunks of >= 64 keys): on CPU
 * devices enough for two units a core over all KV heads (3 KV heads on
 * 2 cores: 6 units, not 2 on one core and 1 on the other); elsewhere the
 * work-items are many already. */
static guint
attn_decode_chunks (MmEngine * e, gint64 n_kv_head)
{
  if (mm_engine_device_class (e) != MM_DEVICE_CLASS_CPU)
    return 1;
  gint64 cu = mm_engine_compute_units (e);
  return CLAMP (CEIL_DIV (2 * cu, MAX (n_kv_head, 1)), 1, 16);
}

MmTensor *
mm_attention_cached (MmGraph * g, MmTensor * q, MmTensor * k_cache,
    MmTensor * v_cache, gint n_kv, float scale, gint causal_offset)
{
  if (!check_kv_cache (g, "attention_cached", k_cache, v_cache)
      || !ok_f32 (g, "attention_cached", q, NULL))
    return mm_graph_dead (g);
  gint64 Hkv = k_cache->shape[0], n_ctx = k_cache->shape[1];
  gint64 d = k_cache->shape[2];
  if (q->n_dims != 3 || q->shape[2] != d || q->shape[1] % Hkv != 0
      || n_kv <= 0 || n_kv > n_ctx) {
    mm_graph_failf (g, "attention_cached: q %s and %d positions do not fit "
        "cache %s", mm_tensor_shape_str (q), n_kv,
        mm_tensor_shape_str (k_cache));
    return mm_graph_dead (g);
  }
  gint64 nq = q->shape[0], H = q->shape[1];
  if (nq > ATTN_DECODE_MAX_Q)
    return attention_gemm (g, q, k_cache, d, n_ctx * d, v_cache, n_ctx,
        d * n_ctx, n_kv, Hkv, NULL, scale, causal_offset);
  /* scratch of kernel_attn_decode: scores, chunks' outputs and stats */
  guint nck = attn_decode_chunks (mm_graph_engine (g), Hkv);
  gint64 ss[3] = { H, nq, ROUND_UP (n_kv, 16) };
  gint64 so[3] = { H * nq, nck, d }, sm[3] = { H * nq, nck, 2 };
  MmTensor *s = mm_graph_tensor (g, MM_DTYPE_F32, 3, ss);
  MmTensor *op = mm_graph_tensor (g, MM_DTYPE_F32, 3, so);
  MmTensor *ml = mm_graph_tensor (g, MM_DTYPE_F32, 3, sm);
  MmTensor *y = mm_graph_tensor_2d (g, nq, H * d);
  gsize gws[2] = { H, nq };
  MM_LAUNCH (g, "kernel_attn_decode", 2, gws, TRUE, MM_TENSOR (q),
      MM_TENSOR (k_cache), MM_TENSOR (v_cache), MM_TENSOR (s), MM_TENSOR (y),
      MM_TENSOR (op), MM_TENSOR (ml), MM_UINT (nq), MM_UINT (H),
      MM_UINT (Hkv), MM_UINT (d), MM_UINT (n_ctx), MM_UINT (n_kv),
      MM_FLOAT (scale), MM_INT (causal_offset), MM_UINT (nck));
  return y;
}

static gboolean
decoder_weight_ok (MmTensor * w, gint64 N, gint64 K)
{
  return w && w->planar && mm_dtype_block_elems (w->dtype) == 32
      && w->n_dims == 2 && w->shape[0] == N && w->shape[1] == K;
}

/* Layers 1 .. n - 1 of @t's kind at @stride bytes apart lie in its
 * buffer. */
static gboolean
check_stacked (MmGraph * g, const MmTensor * t, gint n, gsize stride)
{
  gsize size = 0;
  if (t == NULL || n <= 1)
    return TRUE;
  clGetMemObjectInfo (t->buf, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (stride % 64 || t->offset + (n - 1) * stride + mm_tensor_span (t) > size) {
    mm_graph_failf (g, "decoder_layer: %d layers %" G_GSIZE_FORMAT " bytes "
        "apart from a %s tensor %s at byte %" G_GSIZE_FORMAT " overrun its "
        "buffer of %" G_GSIZE_FORMAT " bytes", n, stride,
        mm_dtype_name (t->dtype), mm_tensor_shape_str (t), t->offset, size);
    return FALSE;
  }
  return TRUE;
}

MmTensor *
mm_decoder_layer_step (MmGraph * g, MmTensor * x, const MmDecoderLayer * l,
    MmTensor * k_cache, MmTensor * v_cache, gint pos)
{
  MmEngine *e = mm_graph_engine (g);
  if (!mm_graph_ok (g) || mm_engine_device_class (e) != MM_DEVICE_CLASS_CPU
      || x->dtype != MM_DTYPE_F32 || mm_tensor_rows (x) != 1
      || k_cache->n_dims != 3 || v_cache->n_dims != 3 || l->n_head <= 0)
    return NULL;
  gint64 d = mm_tensor_cols (x), Hkv = k_cache->shape[0];
  gint64 n_ctx = k_cache->shape[1], hd = k_cache->shape[2];
  gint64 qd = l->n_head * hd, nqkv = qd + 2 * Hkv * hd;
  gint64 ffn = l->w_gate_up ? l->w_gate_up->shape[0] / 2 : 0;
  if (d % 32 || qd % 32 || ffn <= 0 || ffn % 32 || l->n_head % Hkv
      || !decoder_weight_ok (l->wqkv, nqkv, d)
      || !decoder_weight_ok (l->wo, d, qd)
      || !decoder_weight_ok (l->w_gate_up, 2 * ffn, d)
      || !decoder_weight_ok (l->w_down, d, ffn)
      || l->n_rot <= 0 || l->n_rot % 2 || l->n_rot > hd || pos < 0
      || pos >= n_ctx)
    return NULL;
  gint nl = MAX (l->n_layers, 1);
  gsize ws = l->layer_stride, kvs = l->kv_stride;
  if (!check_kv_cache (g, "decoder_layer", k_cache, v_cache)
      || !check_vec (g, "decoder_layer", l->attn_norm, d)
      || !check_vec (g, "decoder_layer", l->ffn_norm, d)
      || !check_vec (g, "decoder_layer", l->bqkv, nqkv)
      || !check_stacked (g, k_cache, nl, kvs)
      || !check_stacked (g, v_cache, nl, kvs))
    return mm_graph_dead (g);
  const MmTensor *parts[] = { l->attn_norm, l->wqkv, l->bqkv, l->wo,
    l->ffn_norm, l->w_gate_up, l->w_down
  };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    if (!check_stacked (g, parts[i], nl, ws))
      return mm_graph_dead (g);
  MmTensor *cs = rope_table (g, 1, pos, l->n_rot, l->rope_base,
      l->rope_freq_scale);
  /* scratch (kernel_decoder_layer): qkv, q (a copy per chunk), att,
   * scores (nck chunks of at most n / nck rounded up, each padded to 16:
   * at most n + 16 nck a head), chunks' outputs, their (max, sum), merge
   * counts, xm, h, layer outputs */
  guint nck = attn_decode_chunks (e, Hkv);
  gint64 off[11];
  off[0] = 0;
  off[1] = off[0] + nqkv;
  off[2] = off[1] + nck * qd;
  off[3] = off[2] + qd;
  off[4] = off[3] + l->n_head * (ROUND_UP (pos + 1, 16) + 16 * (gint64) nck);
  off[5] = off[4] + nck * qd;
  off[6] = off[5] + nck * l->n_head * 2;
  off[7] = off[6] + ROUND_UP (Hkv, 16);
  off[8] = off[7] + d;
  off[9] = off[8] + ffn;
  off[10] = off[9] + 2 * d;
  MmTensor *sc = mm_graph_tensor (g, MM_DTYPE_F32, 1, &off[10]);
  MmTensor *y = mm_graph_tensor_2d (g, 1, d);
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  guint so = mm_tensor_elem_offset (sc);
  MmTensor *b = l->bqkv ? l->bqkv : x;
  gsize gws = mm_engine_compute_units (e);
  MM_LAUNCH (g, "kernel_decoder_layer", 1, &gws, TRUE, MM_TENSOR (x),
      MM_TENSOR (y), MM_MEM (sc->buf), MM_UINT (so + off[0]),
      MM_UINT (so + off[1]), MM_UINT (so + off[2]), MM_UINT (so + off[3]),
      MM_UINT (so + off[4]), MM_UINT (so + off[5]), MM_UINT (so + off[6]),
      MM_UINT (so + off[7]), MM_UINT (so + off[8]), MM_UINT (so + off[9]),
      MM_UINT (nck), MM_TENSOR (l->attn_norm), MM_TENSOR (l->wqkv),
      MM_INT (l->wqkv->dtype),
      MM_TENSOR (b), MM_INT (l->bqkv != NULL),
      MM_TENSOR (l->wo), MM_INT (l->wo->dtype), MM_TENSOR (l->ffn_norm),
      MM_TENSOR (l->w_gate_up), MM_INT (l->w_gate_up->dtype),
      MM_TENSOR (l->w_down), MM_INT (l->w_down->dtype), MM_TENSOR (cs),
      MM_TENSOR (k_cache), MM_TENSOR (v_cache), MM_UINT (nl),
      MM_ULONG (nl > 1 ? ws : 0), MM_ULONG (nl > 1 ? kvs / 4 : 0), MM_UINT (d),
      MM_UINT (l->n_head), MM_UINT (Hkv), MM_UINT (hd), MM_UINT (ffn),
      MM_UINT (l->n_rot), MM_INT (l->rope_mode == MM_ROPE_NEOX),
      MM_UINT (n_ctx), MM_UINT (pos), MM_FLOAT (l->scale), MM_FLOAT (l->eps),
      MM_MEM (mm_engine_work_counter (e)));
  return y;
}

static MmTensor *
conv_weight_2d (MmGraph * g, MmTensor * w, gint64 k)
{
  if (w->n_dims == 2)
    return w;
  return mm_reshape_2d (g, w, w->shape[0], k);
}

MmTensor *
mm_conv2d (MmGraph * g, MmTensor * image, MmTensor * w, MmTensor * b,
    gint kh, gint kw, gint stride, gint pad)
{
  if (!ok_f32 (g, "conv2d", image, NULL))
    return mm_graph_dead (g);
  if (image->n_dims != 3 || kh <= 0 || kw <= 0 || stride <= 0 || pad < 0) {
    mm_graph_failf (g, "conv2d: image %s must be [C, H, W]",
        mm_tensor_shape_str (image));
    return mm_graph_dead (g);
  }
  gint64 C = image->shape[0], H = image->shape[1], W = image->shape[2];
  gint64 OH = (H + 2 * pad - kh) / stride + 1;
  gint64 OW = (W + 2 * pad - kw) / stride + 1;
  gint64 K = C * kh * kw;
  if (OH <= 0 || OW <= 0 || mm_tensor_numel (w) % K != 0) {
    mm_graph_failf (g, "conv2d: kernel %dx%d and weight %s do not fit image %s",
        kh, kw, mm_tensor_shape_str (w), mm_tensor_shape_str (image));
    return mm_graph_dead (g);
  }
  MmTensor *cols = mm_graph_tensor_2d (g, OH * OW, K);
  gsize gws[2] = { K, OH * OW };
  MM_LAUNCH (g, "kernel_im2col_2d", 2, gws, FALSE, MM_TENSOR (image),
      MM_TENSOR (cols), MM_UINT (C), MM_UINT (H), MM_UINT (W), MM_UINT (kh),
      MM_UINT (kw), MM_UINT (stride), MM_UINT (pad), MM_UINT (OW));
  return mm_linear (g, cols, conv_weight_2d (g, w, K), b);
}

MmTensor *
mm_conv1d (MmGraph * g, MmTensor * x, MmTensor * w, MmTensor * b, gint kw,
    gint stride, gint pad)
{
  return mm_conv1d_ex (g, x, FALSE, w, b, kw, stride, pad,
      MM_LINEAR_ACT_NONE);
}

MmTensor *
mm_conv1d_ex (MmGraph * g, MmTensor * x, gboolean x_rows, MmTensor * w,
    MmTensor * b, gint kw, gint stride, gint pad, MmLinearAct act)
{
  if (!ok_f32 (g, "conv1d", x, NULL))
    return mm_graph_dead (g);
  if (x->n_dims != 2 || kw <= 0 || stride <= 0 || pad < 0) {
    mm_graph_failf (g, "conv1d: x %s must be [%s]", mm_tensor_shape_str (x),
        x_rows ? "L, C" : "C, L");
    return mm_graph_dead (g);
  }
  gint64 C = x->shape[x_rows ? 1 : 0], L = x->shape[x_rows ? 0 : 1];
  gint64 OL = (L + 2 * pad - kw) / stride + 1, K = C * kw;
  if (OL <= 0 || mm_tensor_numel (w) % K != 0) {
    mm_graph_failf (g, "conv1d: kernel %d and weight %s do not fit x %s", kw,
        mm_tensor_shape_str (w), mm_tensor_shape_str (x));
    return mm_graph_dead (g);
  }
  MmTensor *cols = mm_graph_tensor_2d (g, OL, K);
  gsize gws[2] = { K, OL };
  MM_LAUNCH (g, "kernel_im2col_1d", 2, gws, FALSE, MM_TENSOR (x),
      MM_TENSOR (cols), MM_UINT (C), MM_UINT (L), MM_UINT (x_rows ? 1 : L),
      MM_UINT (x_rows ? C : 1), MM_UINT (kw), MM_UINT (stride),
      MM_UINT (pad));
  MmLinearFuse f = {.act = act };
  return mm_linear_fused (g, cols, conv_weight_2d (g, w, K), b, &f);
}

MmTensor *
mm_get_rows (MmGraph * g, MmTensor * table, const gint32 * ids, gint n_ids)
{
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  gint64 rows = mm_tensor_rows (table), cols = mm_tensor_cols (table);
  gboolean quant = mm_dtype_block_elems (table->dtype) > 1;
  if (quant ? !table->planar : (table->dtype != MM_DTYPE_F32
          && table->dtype != MM_DTYPE_F16)) {
    mm_graph_failf (g, "get_rows: table type %s not supported",
        mm_dtype_name (table->dtype));
    return mm_graph_dead (g);
  }
  for (gint i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= rows) {
      mm_graph_failf (g, "get_rows: id %d outside [0, %" G_GINT64_FORMAT ")",
          ids[i], rows);
      return mm_graph_dead (g);
    }
  gint64 is = n_ids;
  MmTensor *idt = mm_graph_tensor (g, MM_DTYPE_I32, 1, &is);
  MmTensor *y = mm_graph_tensor_2d (g, n_ids, cols);
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  if (!mm_graph_upload (g, idt, ids, n_ids * sizeof (gint32)))
    return mm_graph_dead (g);
  if (quant) {
    /* panels of mm_tensor_upload_planar: one block of 32 per work-item */
    gchar *t = g_ascii_strdown (mm_dtype_name (table->dtype), -1);
    gchar *k = g_strconcat ("kernel_get_rows_", t, NULL);
    gsize gq[2] = { cols / 32, n_ids };
    MM_LAUNCH (g, k, 2, gq, TRUE, MM_TENSOR (table), MM_TENSOR (idt),
        MM_TENSOR (y), MM_UINT (cols));
    g_free (k);
    g_free (t);
    return y;
  }
  gsize gws[2] = { cols, n_ids };
  MM_LAUNCH (g, table->dtype == MM_DTYPE_F32 ? "kernel_get_rows_f32" :
      "kernel_get_rows_f16", 2, gws, FALSE, MM_TENSOR (table), MM_TENSOR (idt),
      MM_TENSOR (y), MM_UINT (cols));
  return y;
}
