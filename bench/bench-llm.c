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
    t0 = g_get_monotonic_time ();
    c0 = cpu_ms ();
    for (gint s = 0; s < steps && !err; s++) {
      MmLlmBatch one = { ids + s, 1, NULL, 0 };
      g_free (mm_llm_forward (llm, &one, context + s, FALSE, &err));
    }
    dec[r] = (g_get_monotonic_time () - t0) / 1000.0 / steps;
    dec_cpu[r] = (cpu_ms () - c0) / steps;
    if (err) {
      g_printerr ("%s\n", err->message);
      return 1;
    }
  }
  qsort (pre, reps, sizeof (double), cmp_double);
  qsort (dec, reps, sizeof (double), cmp_double);
  qsort (pre_cpu, reps, sizeof (double), cmp_double);
  qsort (dec_cpu, reps, sizeof (double), cmp_double);
  g_print ("prefill %d tokens: %.1f ms (%.1f tokens/s), cpu %.1f ms\n",
      prefill_n, pre[reps / 2], prefill_n * 1000.0 / pre[reps / 2],
      pre_cpu[reps / 2]);
  g_print ("decode at context %d: %.2f ms/token (%.1f tokens/s), cpu %.2f "
      "ms/token\n", context, dec[reps / 2], 1000.0 / dec[reps / 2],
      dec_cpu[reps / 2]);
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
  return 0;
}
