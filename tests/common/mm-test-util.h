/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for engine tests: device or skip, deterministic data, compare. */
#pragma once

#include "mm-ops.h"

#define MM_TEST_SKIP 77

/* Soft assertions for tests that go on after a failure: mm_check (cond,
 * printf-style message) prints a FAIL line with the place and sets
 * mm_test_failed; main returns mm_test_failed ? 1 : 0. */
extern gboolean mm_test_failed;
#define mm_check(cond, ...) G_STMT_START {                                  \
  if (!(cond)) {                                                            \
    g_printerr ("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
    g_printerr (__VA_ARGS__);                                               \
    g_printerr ("\n");                                                      \
    mm_test_failed = TRUE;                                                  \
  }                                                                         \
} G_STMT_END

/* Runs a command line (printed first) and waits for it: TRUE when it
 * exited with status 0, else a failed check with its output. */
gboolean mm_test_run (const gchar * cmd);

/* Returns the engine for $MM_DEVICE / auto; exits 77 (skipped) when no
 * OpenCL device exists. */
MmEngine *mm_test_engine (void);

/* Deterministic uniform values in [lo, hi). */
void mm_test_fill (float *x, gsize n, guint32 seed, float lo, float hi);
float *mm_test_rand (gsize n, guint32 seed, float lo, float hi);

/* Max |a-b| / (atol + rtol |b|) style check; prints the worst element and
 * returns FALSE if any exceeds. */
gboolean mm_test_close (const gchar * what, const float *got,
    const float *want, gsize n, float atol, float rtol);

/* Finishes the graph's queue; FALSE (and a FAIL line naming @what) on
 * its error. */
gboolean mm_test_graph_ok (MmGraph * g, const gchar * what);
/* An F32 tensor of @n elements read to the host (g_free), or NULL and a
 * FAIL line naming @what when it has another size or cannot be read. */
float *mm_test_read_tensor (MmEngine * e, const gchar * what, MmTensor * t,
    gsize n);
/* Finishes the graph, reads an F32 tensor and compares it with @want. */
gboolean mm_test_check_tensor (MmGraph * g, const gchar * what, MmTensor * t,
    const float *want, gsize n, float atol, float rtol);

/* Uploads host floats to an owned F32 weight tensor (aborts the test on
 * failure). */
MmTensor *mm_test_weight (MmEngine * e, gint n_dims, const gint64 * shape,
    const float *data);

/* What a GEMV with quantised weights on @e's device multiplies for a row
 * x of K values (mm_gemm_quant_int16_max_k): where it takes int16
 * activations, x in place becomes each block's q s as the device computes
 * them (exact up to a rounding tie); otherwise x is left as it is.  Plain
 * C references of quantised GEMVs call it on their (normalised) rows. */
void mm_test_gemv_act (MmEngine * e, float *x, gsize K);

/* IEEE half conversion (round to nearest even), for F16 test weights. */
guint16 mm_test_f32_to_f16 (float f);
float mm_test_f16_to_f32 (guint16 h);

/* A WebVTT time, "HH:MM:SS.mmm" or "MM:SS.mmm", in seconds; -1 when it is
 * neither. */
gdouble mm_test_webvtt_time (const gchar * s);
