/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-llm: prefill and decode speed of an LLM file (GGUF or HF folder).
 *
 *   bench-llm MODEL [--prefill 96] [--context 128] [--reps 3]
 *
 * Prefill: one forward of N tokens from an empty cache (tokens/s).  Decode:
 * single-token forwards after filling the cache to --context positions
 * (ms/token, tokens/s), median of --reps runs of 16 steps.  Token ids are
 * arbitrary valid ids: speed does not depend on them.  Each figure also
 * comes as the process's CPU time (all threads, OpenCL's included): on a
 * shared machine, wall time grows with other processes' load while CPU
 * time much less.
 *
 * The decode goal is relative to the bandwidth floor: the time to read the
 * bytes of weights one decode step reads (every layer's and the output
 * projection's), measured in each run right before the decode steps by an
 * OpenCL kernel that only streams a buffer of that size (one work-item per
 * compute unit, each a contiguous share, prefetching ahead).  A shared
 * machine's bandwidth changes from minute to minute; the ratio decode /
 * floor, taken within each run, much less.
 */
#include "mm-llm-private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
cpu_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* The bandwidth floor's kernel: work-item w sums (xor) its contiguous
 * share of n16 uint16s. */
static const char stream_src[] =
    "__kernel void stream_read (__global const uint16 *p, ulong n16,\n"
    "    __global uint *out)\n"
    "{\n"
    "  ulong w = get_global_id (0), nw = get_global_size (0);\n"
    "  ulong a = n16 * w / nw, b = n16 * (w + 1) / nw;\n"
    "  uint16 acc = 0;\n"
    "  for (ulong i = a; i < b; i++) {\n"
    "#if defined(__x86_64__) && defined(__has_builtin)\n"
    "#if __has_builtin(__builtin_prefetch)\n"
    "    __builtin_prefetch ((__global const char *) (p + i) + 2048, 0, 3);\n"
    "#endif\n"
    "#endif\n"
    "    acc ^= p[i];\n"
    "  }\n"
    "  uint8 x = acc.lo ^ acc.hi;\n"
    "  uint4 y = x.lo ^ x.hi;\n"
    "  out[w] = y.x ^ y.y ^ y.z ^ y.w;\n"
    "}\n";

typedef struct
{
  cl_kernel k;
  cl_mem buf, out;
  cl_ulong n16;
  gsize items;
  gboolean cpu;
  cl_command_queue q;
} Floor;

static gboolean
floor_init (Floor * f, MmEngine * e, gsize bytes)
{
  cl_int rc;
  cl_context ctx = mm_engine_context (e);
  cl_device_id dev = mm_engine_device (e);
  const char *src = stream_src;
  cl_program prog = clCreateProgramWithSource (ctx, 1, &src, NULL, &rc);
  if (rc != CL_SUCCESS || clBuildProgram (prog, 1, &dev, "", NULL, NULL))
    return FALSE;
  f->k = clCreateKernel (prog, "stream_read", &rc);
  clReleaseProgram (prog);
  if (rc != CL_SUCCESS)
    return FALSE;
  f->n16 = bytes / 64;
  f->cpu = mm_engine_device_class (e) == MM_DEVICE_CLASS_CPU;
  f->items = f->cpu ? mm_engine_compute_units (e) : 65536;
  /* allocated as the engine allocates weights (huge pages on CPUs) */
  f->buf = mm_engine_alloc (e, f->n16 * 64, "bandwidth floor", NULL);
  if (f->buf == NULL)
    return FALSE;
  f->out = clCreateBuffer (ctx, CL_MEM_READ_WRITE, f->items * 4, NULL, &rc);
  if (rc != CL_SUCCESS)
    return FALSE;
  f->q = mm_engine_queue (e);
  cl_uint zero = 0;
  clEnqueueFillBuffer (f->q, f->buf, &zero, 4, 0, f->n16 * 64, 0, NULL, NULL);
  clSetKernelArg (f->k, 0, sizeof f->buf, &f->buf);
  clSetKernelArg (f->k, 1, sizeof f->n16, &f->n16);
  clSetKernelArg (f->k, 2, sizeof f->out, &f->out);
  return clFinish (f->q) == CL_SUCCESS;
}

/* Median ms of @n streams of the buffer. */
static double
floor_ms (Floor * f, gint n)
{
  double t[16];
  n = CLAMP (n, 1, 16);
  for (gint i = 0; i < n; i++) {
    gint64 t0 = g_get_monotonic_time ();
    gsize one = 1;              /* PoCL runs a work-group on one thread */
    clEnqueueNDRangeKernel (f->q, f->k, 1, NULL, &f->items,
        f->cpu ? &one : NULL, 0, NULL, NULL);
    clFinish (f->q);
    t[i] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  qsort (t, n, sizeof (double), cmp_double);
  return t[n / 2];
}

int
main (int argc, char **argv)
{
  gint prefill_n = 96, context = 128, reps = 3;
  if (argc < 2) {
    g_printerr ("usage: %s MODEL [--prefill N] [--context N] [--reps N]\n",
        argv[0]);
    return 2;
  }
  for (gint i = 2; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--prefill"))
      prefill_n = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--context"))
      context = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--reps"))
      reps = MAX (1, atoi (argv[i + 1]));
  }
  GError *err = NULL;
  MmEngine *e = mm_engine_get (NULL, &err);
  if (!e) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  gint64 t0 = g_get_monotonic_time ();
  MmLlm *llm = mm_llm_load_weights_only (e, argv[1], &err);
  if (!llm) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  const MmLlmHp *hp = mm_llm_hparams (llm);
  g_print ("model %s: %d layers, d=%d, heads %d/%d, ffn %d, vocab %d; "
      "load %.0f ms on %s\n", argv[1], hp->n_layer, hp->d, hp->n_head,
      hp->n_kv_head, hp->ffn, hp->vocab,
      (g_get_monotonic_time () - t0) / 1000.0, mm_engine_device_name (e));
  gint n = MAX (prefill_n, context);
  gint32 *ids = g_new (gint32, n + 1);
  for (gint i = 0; i <= n; i++)
    ids[i] = (i * 7919 + 13) % hp->vocab;
  double *pre = g_new (double, reps), *dec = g_new (double, reps);
  double *pre_cpu = g_new (double, reps), *dec_cpu = g_new (double, reps);
  double *flo = g_new (double, reps), *ratio = g_new (double, reps);
  gsize wbytes = mm_llm_decode_weight_bytes (llm);
  Floor fl;
  if (!floor_init (&fl, e, wbytes)) {
    g_printerr ("bench-llm: could not set up the bandwidth-floor kernel\n");
    return 1;
  }
  for (gint r = 0; r < reps; r++) {
    MmLlmBatch b = { ids, prefill_n, NULL, 0 };
    t0 = g_get_monotonic_time ();
    double c0 = cpu_ms ();
    g_free (mm_llm_forward (llm, &b, 0, FALSE, &err));
    pre[r] = (g_get_monotonic_time () - t0) / 1000.0;
    pre_cpu[r] = cpu_ms () - c0;
    MmLlmBatch fill = { ids, context, NULL, 0 };
    g_free (mm_llm_forward (llm, &fill, 0, FALSE, &err));
    const gint steps = 16;
    flo[r] = floor_ms (&fl, 5);
    t0 = g_get_monotonic_time ();
    c0 = cpu_ms ();
    for (gint s = 0; s < steps && !err; s++) {
      MmLlmBatch one = { ids + s, 1, NULL, 0 };
      g_free (mm_llm_forward (llm, &one, context + s, FALSE, &err));
    }
    dec[r] = (g_get_monotonic_time () - t0) / 1000.0 / steps;
    dec_cpu[r] = (cpu_ms () - c0) / steps;
    ratio[r] = dec[r] / flo[r];
    if (err) {
      g_printerr ("%s\n", err->message);
      return 1;
    }
  }
  qsort (pre, reps, sizeof (double), cmp_double);
  qsort (dec, reps, sizeof (double), cmp_double);
  qsort (pre_cpu, reps, sizeof (double), cmp_double);
  qsort (dec_cpu, reps, sizeof (double), cmp_double);
  qsort (flo, reps, sizeof (double), cmp_double);
  qsort (ratio, reps, sizeof (double), cmp_double);
  g_print ("prefill %d tokens: %.1f ms (%.1f tokens/s), cpu %.1f ms\n",
      prefill_n, pre[reps / 2], prefill_n * 1000.0 / pre[reps / 2],
      pre_cpu[reps / 2]);
  g_print ("decode at context %d: %.2f ms/token (%.1f tokens/s), cpu %.2f "
      "ms/token\n", context, dec[reps / 2], 1000.0 / dec[reps / 2],
      dec_cpu[reps / 2]);
  g_print ("bandwidth floor: streaming the %.1f MB of weights a decode step "
      "reads takes %.2f ms (%.1f GB/s); decode / floor %.2f (median of the "
      "runs' ratios)\n", wbytes / 1e6, flo[reps / 2],
      wbytes / flo[reps / 2] / 1e6, ratio[reps / 2]);
  if (mm_engine_profiling (e)) {
    gchar *rep = mm_engine_profile_report (e, FALSE);
    g_print ("device time per kernel (all runs):\n%s", rep);
    g_free (rep);
  }
  mm_llm_free (llm);
  mm_engine_unref (e);
  g_free (ids);
  g_free (pre);
  g_free (dec);
  g_free (pre_cpu);
  g_free (dec_cpu);
  g_free (flo);
  g_free (ratio);
  clReleaseKernel (fl.k);
  clReleaseMemObject (fl.buf);
  clReleaseMemObject (fl.out);
  return 0;
}
