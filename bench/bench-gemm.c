/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-gemm: our GEMM/GEMV (mm_linear with [out, in] weights, and the
 * strided-batched mm_gemm that attention uses) against OpenBLAS
 * cblas_sgemm / cblas_sgemv on the same shapes, in the same run.
 *
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
 *       build/bench/bench-gemm [--device SPEC] [--f16] [--clblast] ...
 *
 * Timing: a warm-up call, then several batches of calls; each batch is
 * enqueued between two clFinish and timed on the wall clock
 * (g_get_monotonic_time); a row reports the median batch time per call.
 * Each shape runs our variants, then OpenBLAS, back to back, so both see
 * the same machine; before each of our rows the program sleeps until
 * OpenBLAS's idle workers (which spin for a while after a call) have gone
 * to sleep.  OpenBLAS is linked into this program only.
 */
#include "mm-ops.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum
{
  KIND_LINEAR,                  /* mm_linear: x [M, K] . w[N, K]^T */
  KIND_BATCHED,                 /* mm_gemm: batch heads, B shared by b_div */
} ShapeKind;

typedef struct
{
  const gchar *name;
  ShapeKind kind;
  gint M, N, K, batch, b_div;
} Shape;

static Shape custom_shapes[16];

static const Shape default_shapes[] = {
  /* ViT-B at 1024 tokens: qkv/out projection, MLP up, MLP down */
  {"vit-b proj", KIND_LINEAR, 1024, 768, 768, 1, 1},
  {"vit-b fc1", KIND_LINEAR, 1024, 3072, 768, 1, 1},
  {"vit-b fc2", KIND_LINEAR, 1024, 768, 3072, 1, 1},
  /* Whisper-tiny encoder, 1500 frames */
  {"whisper-t proj", KIND_LINEAR, 1500, 384, 384, 1, 1},
  {"whisper-t fc1", KIND_LINEAR, 1500, 1536, 384, 1, 1},
  /* SmolLM2-135M decode: GEMV */
  {"smollm2 proj", KIND_LINEAR, 1, 576, 576, 1, 1},
  {"smollm2 ffn", KIND_LINEAR, 1, 1536, 576, 1, 1},
  {"smollm2 lm_head", KIND_LINEAR, 1, 49152, 576, 1, 1},
  /* attention: scores Q.K^T and P.V per head (V pre-transposed) */
  {"vit-b attn qk", KIND_BATCHED, 1024, 1024, 64, 12, 1},
  {"vit-b attn pv", KIND_BATCHED, 1024, 64, 1024, 12, 1},
  {"whisper-t attn qk", KIND_BATCHED, 1500, 1500, 64, 6, 1},
  {"whisper-t attn pv", KIND_BATCHED, 1500, 64, 1500, 6, 1},
  /* SmolLM2 decode attention at 1024 context: 9 heads, 3 KV heads (GQA) */
  {"smollm2 attn qk", KIND_BATCHED, 1, 1024, 64, 9, 3},
};

typedef struct
{
  gchar *label;
  const Shape *s;
  gboolean f16;
  gboolean packed;              /* weight through mm_gemm_pack_weight */
  double ms, blas_ms;
  double cpu_ms, blas_cpu_ms;   /* process CPU time per call (--cpu) */
  double err;                   /* max |ours - OpenBLAS| / max |OpenBLAS| */
} Row;

/* ---- options ---- */
static gchar *opt_device = NULL;
static gboolean opt_f16 = FALSE, opt_clblast = FALSE, opt_no_blas = FALSE;
static gboolean opt_cpu = FALSE, opt_packed = FALSE;
static gint opt_batches = 7, opt_threads = 2;
static gdouble opt_batch_ms = 100;
static gchar *opt_only = NULL;
static gchar **opt_shapes = NULL;

static GOptionEntry entries[] = {
  {"device", 'd', 0, G_OPTION_ARG_STRING, &opt_device,
      "OpenCL device (as MM_DEVICE; default: MM_DEVICE or auto)", "SPEC"},
  {"f16", 0, 0, G_OPTION_ARG_NONE, &opt_f16,
      "Also time F16 weights (B operand) with our kernels", NULL},
  {"packed", 0, 0, G_OPTION_ARG_NONE, &opt_packed,
      "Also time linears with weights packed once (mm_gemm_pack_weight)",
        NULL},
  {"clblast", 0, 0, G_OPTION_ARG_NONE, &opt_clblast,
      "Also time the CLBlast provider (F32; slow to compile on PoCL)", NULL},
  {"no-blas", 0, 0, G_OPTION_ARG_NONE, &opt_no_blas,
      "Skip OpenBLAS", NULL},
  {"batches", 'b', 0, G_OPTION_ARG_INT, &opt_batches,
      "Timed batches per row; the median is reported (default 7)", "N"},
  {"batch-ms", 0, 0, G_OPTION_ARG_DOUBLE, &opt_batch_ms,
      "Target wall time of one batch in ms (default 100)", "MS"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &opt_threads,
      "OpenBLAS threads (default 2)", "N"},
  {"cpu", 0, 0, G_OPTION_ARG_NONE, &opt_cpu,
      "Also report rates per CPU-second of the process (robust to other "
        "load; OpenBLAS's spinning threads inflate its CPU time)", NULL},
  {"shape", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_shapes,
      "Time this linear shape instead of the defaults (repeatable)",
        "M,N,K"},
  {"only", 0, 0, G_OPTION_ARG_STRING, &opt_only,
      "Only shapes whose name contains this", "TEXT"},
  {NULL}
};

/* ---- helpers ---- */
static guint16
f32_to_f16 (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  guint32 sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
  if (exp == 0xff)
    return sign | 0x7c00 | (man ? 0x200 : 0);
  gint e = (gint) exp - 127 + 15;
  if (e >= 31)
    return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10)
      return sign;
    man |= 0x800000;
    guint32 shift = 14 - e, half = man >> shift;
    guint32 rem = man & ((1u << shift) - 1);
    guint32 mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      half++;
    return sign | half;
  }
  guint32 h = sign | (e << 10) | (man >> 13), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;                        /* may carry into the exponent: still right */
  return h;
}

static float
f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f,
      man = h & 0x3ff, x;
  if (exp == 0) {
    float v = ldexpf ((float) man, -24);
    return sign ? -v : v;
  }
  if (exp == 31)
    x = sign | 0x7f800000 | (man << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (man << 13);
  float f;
  memcpy (&f, &x, 4);
  return f;
}

static float *
rand_floats (gsize n, guint32 seed)
{
  float *x = g_new (float, n);
  guint32 s = seed * 2654435761u + 1;
  for (gsize i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = ((s >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
  }
  return x;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* OpenBLAS workers spin ~2^28 cycles (THREAD_TIMEOUT) before sleeping */
#define BLAS_SETTLE_US 300000

/* One call of the thing timed; sync waits for it (NULL for host code). */
typedef void (*CallFn) (gpointer ctx);

static double
cpu_ms_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Median ms per call over opt_batches batches of n calls each, n chosen
 * from a warm-up so that a batch takes about opt_batch_ms.  *cpu_ms gets
 * the median process CPU time per call. */
static double
time_calls (CallFn call, CallFn sync, gpointer ctx, double *cpu_ms)
{
  call (ctx);                   /* warm-up: kernel build, first touch */
  if (sync)
    sync (ctx);
  gint64 t0 = g_get_monotonic_time ();
  call (ctx);
  if (sync)
    sync (ctx);
  double one_ms = MAX (1e-3, (g_get_monotonic_time () - t0) / 1000.0);
  gint n = CLAMP ((gint) (opt_batch_ms / one_ms), 1, 10000);
  double *t = g_new (double, opt_batches), *c = g_new (double, opt_batches);
  for (gint b = 0; b < opt_batches; b++) {
    double c0 = cpu_ms_now ();
    t0 = g_get_monotonic_time ();
    for (gint i = 0; i < n; i++)
      call (ctx);
    if (sync)
      sync (ctx);
    t[b] = (g_get_monotonic_time () - t0) / 1000.0 / n;
    c[b] = (cpu_ms_now () - c0) / n;
  }
  qsort (t, opt_batches, sizeof (double), cmp_double);
  qsort (c, opt_batches, sizeof (double), cmp_double);
  double med = t[opt_batches / 2];
  *cpu_ms = c[opt_batches / 2];
  g_free (t);
  g_free (c);
  return med;
}

/* ---- our side ---- */
typedef struct
{
  MmGraph *g;
  const Shape *s;
  MmTensor *a, *b, *c;          /* c: batched output (owned) */
  MmTensor *y;                  /* last linear output (arena) */
} OurCtx;

static void
our_call (gpointer p)
{
  OurCtx *o = p;
  const Shape *s = o->s;
  if (!mm_graph_ok (o->g))
    return;
  /* one forward per call: the output reuses the same arena bytes */
  mm_graph_reset (o->g);
  if (s->kind == KIND_LINEAR) {
    o->y = mm_linear (o->g, o->a, o->b, NULL);
  } else {
    MmGemmShape gs = { .M = s->M, .N = s->N, .K = s->K, .batch = s->batch,
      .b_div = s->b_div, .lda = s->K, .ldb = s->K, .ldc = s->N,
      .stride_a = (gint64) s->M * s->K, .stride_b = (gint64) s->N * s->K,
      .stride_c = (gint64) s->M * s->N, .alpha = 1.0f
    };
    mm_gemm (o->g, o->a, o->b, NULL, o->c, &gs);
  }
}

static void
our_sync (gpointer p)
{
  OurCtx *o = p;
  GError *err = NULL;
  if (!mm_graph_finish (o->g, &err)) {
    g_printerr ("bench-gemm: %s\n", err->message);
    exit (1);
  }
}

/* Host operands of a shape: A [batch, M, K], B [batch / b_div, N, K]. */
static gsize
a_elems (const Shape * s)
{
  return (gsize) s->batch * s->M * s->K;
}

static gsize
b_elems (const Shape * s)
{
  return (gsize) (s->batch / s->b_div) * s->N * s->K;
}

static gsize
c_elems (const Shape * s)
{
  return (gsize) s->batch * s->M * s->N;
}

static double
run_ours (MmEngine * e, MmGraph * g, const Shape * s, const float *a,
    const float *b, gboolean f16, gboolean packed, float *out,
    double *cpu_ms)
{
  GError *err = NULL;
  gint nb = s->batch / s->b_div;
  gint64 as[3] = { s->batch, s->M, s->K }, bs[3] = { nb, s->N, s->K };
  gint64 cs[3] = { s->batch, s->M, s->N };
  gboolean lin = s->kind == KIND_LINEAR;
  OurCtx o = { .g = g, .s = s };
  o.a = mm_tensor_upload (e, MM_DTYPE_F32, lin ? 2 : 3, lin ? as + 1 : as, a,
      "A", &err);
  if (o.a && f16) {
    guint16 *h = g_new (guint16, b_elems (s));
    for (gsize i = 0; i < b_elems (s); i++)
      h[i] = f32_to_f16 (b[i]);
    o.b = mm_tensor_upload (e, MM_DTYPE_F16, lin ? 2 : 3, lin ? bs + 1 : bs,
        h, "B", &err);
    g_free (h);
  } else if (o.a) {
    o.b = mm_tensor_upload (e, MM_DTYPE_F32, lin ? 2 : 3, lin ? bs + 1 : bs,
        b, "B", &err);
  }
  if (o.b && !lin)
    o.c = mm_tensor_new (e, MM_DTYPE_F32, 3, cs, "C", &err);
  if (o.b && packed && !mm_gemm_pack_weight (e, o.b, &err))
    g_clear_pointer (&o.b, mm_tensor_free);
  if (!o.b || (!lin && !o.c)) {
    g_printerr ("bench-gemm: %s\n", err->message);
    exit (1);
  }
  double ms = time_calls (our_call, our_sync, &o, cpu_ms);
  if (out && !mm_tensor_read_f32 (e, lin ? o.y : o.c, out, &err)) {
    g_printerr ("bench-gemm: %s\n", err->message);
    exit (1);
  }
  mm_tensor_free (o.a);
  mm_tensor_free (o.b);
  if (o.c)
    mm_tensor_free (o.c);
  mm_graph_reset (g);
  return ms;
}

/* ---- OpenBLAS side ---- */
typedef struct
{
  const Shape *s;
  const float *a, *b;
  float *c;
} BlasCtx;

static void
blas_call (gpointer p)
{
  BlasCtx *o = p;
  const Shape *s = o->s;
  for (gint bt = 0; bt < s->batch; bt++) {
    const float *a = o->a + (gsize) bt * s->M * s->K;
    const float *b = o->b + (gsize) (bt / s->b_div) * s->N * s->K;
    float *c = o->c + (gsize) bt * s->M * s->N;
    if (s->M == 1)
      cblas_sgemv (CblasRowMajor, CblasNoTrans, s->N, s->K, 1.0f, b, s->K, a,
          1, 0.0f, c, 1);
    else
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, s->M, s->N, s->K,
          1.0f, a, s->K, b, s->K, 0.0f, c, s->N);
  }
}

static double
max_rel_err (const float *got, const float *want, gsize n)
{
  double d = 0, m = 0;
  for (gsize i = 0; i < n; i++) {
    d = MAX (d, fabs ((double) got[i] - want[i]));
    m = MAX (m, fabs ((double) want[i]));
  }
  return d / MAX (m, 1e-30);
}

static gboolean
shape_selected (const Shape * s)
{
  return opt_only == NULL || strstr (s->name, opt_only) != NULL;
}

static void
print_row (const Row * r, gboolean blas)
{
  const Shape *s = r->s;
  gchar shape[64];
  if (s->batch > 1)
    g_snprintf (shape, sizeof shape, "%dx(%d,%d,%d)%s", s->batch, s->M, s->N,
        s->K, s->b_div > 1 ? "/g" : "");
  else
    g_snprintf (shape, sizeof shape, "(%d,%d,%d)", s->M, s->N, s->K);
  double flop = 2.0 * s->batch * s->M * s->N * s->K;
  /* GEMV is bound by the weight stream: report GB/s of B read */
  double wbytes = (double) b_elems (s) * (r->f16 ? 2 : 4);
  double blas_bytes = (double) b_elems (s) * 4;
  gboolean gemv = s->M == 1;
  double ours = gemv ? wbytes / r->ms / 1e6 : flop / r->ms / 1e6;
  printf ("%-26s %-20s %9.3f %8.1f %s", r->label, shape, r->ms, ours,
      gemv ? "GB/s  " : "GF/s  ");
  if (blas) {
    double theirs = gemv ? blas_bytes / r->blas_ms / 1e6 :
        flop / r->blas_ms / 1e6;
    printf ("%9.3f %8.1f %s %6.2f  %.1e", r->blas_ms, theirs,
        gemv ? "GB/s" : "GF/s", r->blas_ms / r->ms, r->err);
  }
  if (opt_cpu) {
    double work = gemv ? wbytes / 1e6 : flop / 1e6;
    printf ("  | per cpu-s: ours %7.1f", work / r->cpu_ms);
    if (blas)
      printf (" blas %7.1f", (gemv ? blas_bytes / 1e6 : flop / 1e6) /
          r->blas_cpu_ms);
  }
  printf ("\n");
}

int
main (int argc, char **argv)
{
  GError *err = NULL;
  GOptionContext *ctx = g_option_context_new ("- time mm GEMM vs OpenBLAS");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("bench-gemm: %s\n", err->message);
    return 2;
  }
  g_option_context_free (ctx);
  opt_batches = MAX (opt_batches, 1);

  MmEngine *e = mm_engine_get (opt_device, &err);
  if (e == NULL) {
    g_printerr ("bench-gemm: %s\n", err->message);
    return 1;
  }
  MmGraph *g = mm_graph_new (e);
  gboolean blas = !opt_no_blas;
  if (blas)
    openblas_set_num_threads (opt_threads);
  printf ("device: %s\n", mm_engine_device_name (e));
  if (blas)
    printf ("OpenBLAS: %s, core %s, %d threads%s%s\n", openblas_get_config (),
        openblas_get_corename (), opt_threads,
        g_getenv ("OPENBLAS_CORETYPE") ? ", OPENBLAS_CORETYPE=" : "",
        g_getenv ("OPENBLAS_CORETYPE") ? g_getenv ("OPENBLAS_CORETYPE") : "");
  const gchar *env_gemm = g_getenv ("MM_GEMM");
  printf ("GEMM provider: %s%s\n", env_gemm ? env_gemm : "auto",
      mm_gemm_get_provider (e) == MM_GEMM_CLBLAST ? " (clblast)" : " (own)");
  fflush (stdout);

  const Shape *shapes = default_shapes;
  guint n_shapes = G_N_ELEMENTS (default_shapes);
  if (opt_shapes) {
    n_shapes = 0;
    for (gchar ** p = opt_shapes; *p && n_shapes < 16; p++) {
      Shape *s = &custom_shapes[n_shapes];
      *s = (Shape) { "custom", KIND_LINEAR, 0, 0, 0, 1, 1 };
      if (sscanf (*p, "%d,%d,%d", &s->M, &s->N, &s->K) != 3 || s->M <= 0
          || s->N <= 0 || s->K <= 0) {
        g_printerr ("bench-gemm: --shape wants M,N,K, got %s\n", *p);
        return 2;
      }
      n_shapes++;
    }
    shapes = custom_shapes;
  }

  /* variants: own F32 (provider as chosen), own F16, CLBlast F32, and
   * F32 / F16 weights packed at load time */
  GPtrArray *rows = g_ptr_array_new ();
  for (guint i = 0; i < n_shapes; i++) {
    const Shape *s = &shapes[i];
    if (!shape_selected (s))
      continue;
    for (gint v = 0; v < 5; v++) {
      if (((v == 1 || v == 4) && !opt_f16) || (v == 2 && !opt_clblast)
          || (v >= 3 && !opt_packed))
        continue;
      if ((v == 1 || v >= 3) && s->kind != KIND_LINEAR)
        continue;               /* attention operands are F32 activations */
      Row *r = g_new0 (Row, 1);
      r->s = s;
      r->f16 = v == 1 || v == 4;
      r->packed = v >= 3;
      r->label = g_strdup_printf ("%s%s%s", s->name, r->f16 ? " f16" : "",
          v == 2 ? " clblast" : r->packed ? " packed" : "");
      g_ptr_array_add (rows, r);
    }
  }

  gint64 blas_done = 0;
  for (guint i = 0; i < rows->len; i++) {
    Row *r = rows->pdata[i];
    const Shape *s = r->s;
    float *a = rand_floats (a_elems (s), 1 + i);
    float *b = rand_floats (b_elems (s), 1000 + i);
    if (r->f16)
      for (gsize j = 0; j < b_elems (s); j++)
        b[j] = f16_to_f32 (f32_to_f16 (b[j]));
    float *out = g_new (float, c_elems (s));
    gboolean clb = g_str_has_suffix (r->label, " clblast");
    gchar *saved = g_strdup (g_getenv ("MM_GEMM"));
    if (clb)
      g_setenv ("MM_GEMM", "clblast", TRUE);
    /* OpenBLAS's workers spin for a while after a call: let them sleep */
    gint64 idle = g_get_monotonic_time () - blas_done;
    if (blas_done && idle < BLAS_SETTLE_US)
      g_usleep (BLAS_SETTLE_US - idle);
    r->ms = run_ours (e, g, s, a, b, r->f16, r->packed, out, &r->cpu_ms);
    if (clb) {
      if (saved)
        g_setenv ("MM_GEMM", saved, TRUE);
      else
        g_unsetenv ("MM_GEMM");
    }
    g_free (saved);
    if (blas) {
      /* reference result for the error column (untimed) */
      float *want = g_new (float, c_elems (s));
      BlasCtx bc = { s, a, b, want };
      blas_call (&bc);
      r->err = max_rel_err (out, want, c_elems (s));
      /* OpenBLAS times each shape once, F32 (it has no F16 GEMM), right
       * after our last variant of the shape; F16 rows compare with it */
      gboolean last_of_shape = i + 1 == rows->len
          || ((Row *) rows->pdata[i + 1])->s != s;
      if (last_of_shape) {
        g_free (b);
        b = rand_floats (b_elems (s), 1000 + i);        /* plain F32 */
        bc.b = b;
        double ms, cpu_ms;
        ms = time_calls (blas_call, NULL, &bc, &cpu_ms);
        for (guint j = 0; j <= i; j++) {
          Row *q = rows->pdata[j];
          if (q->s == s) {
            q->blas_ms = ms;
            q->blas_cpu_ms = cpu_ms;
          }
        }
      }
      blas_done = g_get_monotonic_time ();
      g_free (want);
    }
    g_free (a);
    g_free (b);
    g_free (out);
    g_printerr (".");
  }
  g_printerr ("\n");

  printf ("%-26s %-20s %9s %13s ", "shape", "batch x (M,N,K)", "ours ms",
      "ours");
  if (blas)
    printf ("%9s %13s %6s  %s", "blas ms", "OpenBLAS", "ratio", "maxerr");
  printf ("\n");
  for (guint i = 0; i < rows->len; i++)
    print_row (rows->pdata[i], blas);
  if (blas)
    printf ("ratio = OpenBLAS ms / ours ms (>1: ours faster); GEMV rows "
        "report GB/s of weights read; maxerr = max|ours - OpenBLAS| / "
        "max|OpenBLAS|\n");

  for (guint i = 0; i < rows->len; i++) {
    Row *r = rows->pdata[i];
    g_free (r->label);
    g_free (r);
  }
  g_ptr_array_free (rows, TRUE);
  mm_graph_free (g);
  mm_engine_unref (e);
  return 0;
}
