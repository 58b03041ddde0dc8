/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-whisper: Whisper speed on one window (HF folder, e.g. the
 * whisper-tiny / whisper-base sized folders of make_bench_models.py).
 *
 *   bench-whisper MODEL [--reps 3] [--tokens 32]
 *
 * Features: log-mel of a full window (30 s for real models).  Encoder:
 * features + encoder of a full window, median of --reps runs after a
 * warm-up.  Decoder: cross K/V once per window, then the 4-token prompt
 * and --tokens single-token steps with argmax feedback (ms/token, tokens/s
 * of the steps).  Audio is white noise: speed does not depend on it.
 */
#include "mm-whisper.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v, gint n)
{
  qsort (v, n, sizeof (double), cmp_double);
  return v[n / 2];
}

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

/* Process CPU time (all threads, PoCL's workers included): on a shared
 * machine wall time depends on the other processes, CPU time much less. */
static double
cpu_ms (void)
{
  struct rusage r;
  getrusage (RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3
      + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
}

static gboolean
fail (GError * err)
{
  g_printerr ("%s\n", err ? err->message : "failed");
  return FALSE;
}

static gint32
argmax (const float *x, gint n)
{
  gint32 b = 0;
  for (gint i = 1; i < n; i++)
    if (x[i] > x[b])
      b = i;
  return b;
}

static gboolean
bench_decoder (MmWhisper * w, MmTensor * enc, gint tokens, gint reps)
{
  GError *err = NULL;
  MmWhisperDecoder *d = mm_whisper_decoder_new (w, &err);
  if (d == NULL)
    return fail (err);
  gint vocab = mm_whisper_vocab_size (w);
  gint32 sot = mm_whisper_token_sot (w);
  gint32 prompt[4] = { sot, sot + 1, sot + 101, sot + 105 };
  for (gint i = 0; i < 4; i++)
    prompt[i] = MIN (MAX (prompt[i], 0), vocab - 1);
  double *cross = g_new (double, reps), *step = g_new (double, reps);
  double *first = g_new (double, reps), *step_cpu = g_new (double, reps);
  for (gint r = 0; r < reps; r++) {
    double t0 = now_ms ();
    if (!mm_whisper_decoder_set_audio (d, enc, &err))
      return fail (err);
    cross[r] = now_ms () - t0;
    t0 = now_ms ();
    float *logits = mm_whisper_decoder_forward (d, prompt, 4, 0, &err);
    first[r] = now_ms () - t0;
    t0 = now_ms ();
    double c0 = cpu_ms ();
    for (gint i = 0; i < tokens && logits; i++) {
      gint32 id = argmax (logits, vocab);
      g_free (logits);
      logits = mm_whisper_decoder_forward (d, &id, 1, 4 + i, &err);
    }
    if (logits == NULL)
      return fail (err);
    g_free (logits);
    step[r] = (now_ms () - t0) / tokens;
    step_cpu[r] = (cpu_ms () - c0) / tokens;
  }
  double ms = median (step, reps);
  g_print ("decoder: cross K/V %.1f ms, prompt (4 tokens) %.1f ms, "
      "%.2f ms/token = %.1f tokens/s (%d steps; CPU %.2f ms/token)\n",
      median (cross, reps), median (first, reps), ms, 1000.0 / ms, tokens,
      median (step_cpu, reps));
  g_free (step_cpu);
  g_free (cross);
  g_free (step);
  g_free (first);
  mm_whisper_decoder_free (d);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gint reps = 3, tokens = 32;
  if (argc < 2) {
    g_printerr ("usage: %s MODEL [--reps N] [--tokens N]\n", argv[0]);
    return 2;
  }
  for (gint i = 2; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--reps"))
      reps = MAX (1, atoi (argv[i + 1]));
    else if (!strcmp (argv[i], "--tokens"))
      tokens = MAX (1, atoi (argv[i + 1]));
  }
  GError *err = NULL;
  MmEngine *e = mm_engine_get (NULL, &err);
  if (!e)
    return !fail (err);
  double t0 = now_ms ();
  MmWhisper *w = mm_whisper_load (e, argv[1], &err);
  if (!w)
    return !fail (err);
  gint n = mm_whisper_n_samples (w);
  g_print ("model %s: d=%d, %d audio tokens per %.1f s window; load %.0f ms "
      "on %s\n", argv[1], mm_whisper_d_model (w), mm_whisper_n_audio_tokens (w),
      (double) n / mm_whisper_sampling_rate (w), now_ms () - t0,
      mm_engine_device_name (e));
  float *audio = g_new (float, n);
  guint32 s = 1;
  for (gint i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    audio[i] = ((s >> 8) / 16777216.0f - 0.5f) * 0.2f;
  }
  MmGraph *g = mm_graph_new (e);
  MmWhisperEncoder *encoder = mm_whisper_encoder_new (w, &err);
  gint64 shape = n, s_out[2] = { mm_whisper_n_output_tokens (w),
    mm_whisper_output_dim (w)
  };
  MmTensor *y = encoder ? mm_tensor_new (e, MM_DTYPE_F32, 2, s_out,
      "encoder output", &err) : NULL;
  if (y == NULL)
    return !fail (err);
  double *mel = g_new (double, reps), *enc = g_new (double, reps);
  double *enc_cpu = g_new (double, reps);
  for (gint r = -1; r < reps; r++) {    /* r = -1: warm-up */
    mm_graph_reset (g);
    t0 = now_ms ();
    mm_mel_compute (mm_whisper_mel (w), g, mm_graph_input_f32 (g, 1, &shape,
            audio));
    if (!mm_graph_finish (g, &err))
      return !fail (err);
    if (r >= 0)
      mel[r] = now_ms () - t0;
    t0 = now_ms ();
    double c0 = cpu_ms ();
    if (!mm_whisper_encoder_run (encoder, audio, n, y, &err))
      return !fail (err);
    if (r >= 0) {
      enc[r] = now_ms () - t0;
      enc_cpu[r] = cpu_ms () - c0;
    }
  }
  g_print ("features: %.1f ms per window\n", median (mel, reps));
  g_print ("encoder (features included): %.1f ms per window (median of %d; "
      "CPU %.0f ms; scratch arena %.0f MB)\n", median (enc, reps), reps,
      median (enc_cpu, reps), mm_whisper_encoder_arena_size (encoder)
      / 1048576.0);
  if (mm_engine_profiling (e)) {
    gchar *rep = mm_engine_profile_report (e, TRUE);
    g_print ("device time per kernel (features + encoder, all runs):\n%s", rep);
    g_free (rep);
  }
  gboolean ok = bench_decoder (w, y, tokens, reps);
  if (mm_engine_profiling (e)) {
    gchar *rep = mm_engine_profile_report (e, TRUE);
    g_print ("device time per kernel (decoder):\n%s", rep);
    g_free (rep);
  }
  mm_tensor_free (y);
  mm_whisper_encoder_free (encoder);
  mm_graph_free (g);
  mm_whisper_free (w);
  g_free (audio);
  g_free (mel);
  g_free (enc);
  g_free (enc_cpu);
  mm_engine_unref (e);
  return ok ? 0 : 1;
}
