/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sampler and stop criteria on crafted logits: greedy, the repetition
 * penalty, temperature, top-k and top-p as transformers' logits processors
 * define them (checked against a plain reference written here), the
 * frequencies of draws, seed determinism, stop ids and stop strings.
 */
#include "mm-sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gint failures, checks;

#define CHECK(cond, ...) G_STMT_START {                 \
    checks++;                                           \
    if (!(cond)) {                                      \
      g_printerr ("FAIL %s:%d: ", __FILE__, __LINE__);  \
      g_printerr (__VA_ARGS__);                         \
      g_printerr ("\n");                                \
      failures++;                                       \
    }                                                   \
  } G_STMT_END

static MmSampler *
sampler (gfloat temperature, gint top_k, gfloat top_p, gfloat penalty,
    guint64 seed)
{
  MmSamplerParams p;

  mm_sampler_params_init (&p);
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.repetition_penalty = penalty;
  p.seed = seed;
  return mm_sampler_new (&p, NULL);
}

static gint32
pick (MmSampler * s, const gfloat * logits, gsize n)
{
  gint32 id = -1;

  if (!mm_sampler_sample (s, logits, n, &id, NULL))
    CHECK (FALSE, "sample failed");
  return id;
}

static void
test_greedy (void)
{
  const gfloat ties[] = { 1, 5, 3, 5 };
  const gfloat a[] = { 2.0f, 1.9f, -1, 0.5f };
  const gfloat neg[] = { -0.1f, -0.2f };
  const gfloat two[] = { 5, 4 };
  const gint32 zero = 0;
  g_autoptr (MmSampler) s = sampler (0, 0, 1, 1, 0);
  g_autoptr (MmSampler) pen = sampler (0, 0, 1, 1.5f, 0);
  g_autoptr (MmSampler) pneg = sampler (0, 0, 1, 3, 0);
  g_autoptr (MmSampler) hist = sampler (0, 0, 1, 100, 0);

  CHECK (pick (s, ties, 4) == 1, "greedy takes the first maximum");
  /* 2.0 / 1.5 = 1.33 < 1.9 */
  mm_sampler_add_history (pen, &zero, 1);
  CHECK (pick (pen, a, 4) == 1, "positive logit divided by the penalty");
  /* -0.1 * 3 = -0.3 < -0.2 */
  mm_sampler_add_history (pneg, &zero, 1);
  CHECK (pick (pneg, neg, 2) == 1, "negative logit multiplied");
  /* generated ids join the history: 0, then 1 (0.05 < 4), then 0 */
  CHECK (pick (hist, two, 2) == 0, "history 1");
  CHECK (pick (hist, two, 2) == 1, "history 2");
  CHECK (pick (hist, two, 2) == 0, "history 3 (0.05 > 0.04)");
  mm_sampler_reset (hist);
  CHECK (pick (hist, two, 2) == 0, "reset forgets the history");
}

/* The distribution by the book: penalty, /T, top-k (ties kept), top-p
 * (ascending cumulative <= 1 - p removed, the best kept), softmax. */
static void
reference_probs (const gfloat * logits, gsize n, const gint32 * hist,
    gsize n_hist, gfloat t, gint k, gfloat p, gfloat penalty, gdouble * out)
{
  gdouble *x = g_new (gdouble, n), *sorted = g_new (gdouble, n);
  gdouble max = -INFINITY, total = 0, kth, cum = 0, cut = -INFINITY;
  gsize i, j;

  for (i = 0; i < n; i++)
    x[i] = logits[i];
  for (i = 0; i < n_hist; i++)
    x[hist[i]] = logits[hist[i]] < 0 ? logits[hist[i]] * penalty
        : logits[hist[i]] / penalty;
  for (i = 0; i < n; i++)
    x[i] = (gfloat) ((gfloat) x[i] / t);
  for (i = 0; i < n; i++)
    sorted[i] = x[i];
  /* descending insertion sort is fine for test sizes */
  for (i = 1; i < n; i++)
    for (j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
      gdouble tmp = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = tmp;
    }
  kth = k > 0 && (gsize) k < n ? sorted[k - 1] : -INFINITY;
  for (i = 0; i < n; i++) {
    if (x[i] < kth)
      x[i] = -INFINITY;
    max = MAX (max, x[i]);
  }
  for (i = 0; i < n; i++)
    total += exp (x[i] - max);
  if (p < 1) {
    /* ascending walk over the sorted values */
    for (i = n; i > 1; i--) {
      gdouble v = sorted[i - 1] < kth ? -INFINITY : sorted[i - 1];

      cum += exp (v - max) / total;
      if (cum > 1.0 - p)
        break;
      cut = v;
    }
    for (i = 0; i < n; i++)
      if (x[i] <= cut)
        x[i] = -INFINITY;
    total = 0;
    for (i = 0; i < n; i++)
      total += exp (x[i] - max);
  }
  for (i = 0; i < n; i++)
    out[i] = exp (x[i] - max) / total;
  g_free (x);
  g_free (sorted);
}

static void
check_probs (const gchar * what, const gfloat * logits, gsize n,
    const gint32 * hist, gsize n_hist, gfloat t, gint k, gfloat p,
    gfloat penalty)
{
  g_autoptr (MmSampler) s = sampler (t, k, p, penalty, 1);
  g_autofree gfloat *got = g_new (gfloat, n);
  g_autofree gdouble *want = g_new (gdouble, n);
  gdouble worst = 0;
  gsize i, bad = 0;

  mm_sampler_add_history (s, hist, n_hist);
  CHECK (mm_sampler_get_probs (s, logits, n, got, NULL), "%s", what);
  reference_probs (logits, n, hist, n_hist, t, k, p, penalty, want);
  for (i = 0; i < n; i++) {
    worst = MAX (worst, fabs (got[i] - want[i]));
    bad += (got[i] == 0) != (want[i] == 0);
  }
  CHECK (worst < 1e-6 && bad == 0, "%s: max |p - ref| %g, %" G_GSIZE_FORMAT
      " tokens kept/removed differently", what, worst, bad);
}

static void
test_processors (void)
{
  const gfloat five[] = { 1, 2, 3, 4, 5 };
  const gfloat ties[] = { 1, 3, 3, 2 };
  const gfloat mixed[] = { 2.5f, -1.0f, 0.3f, -3.0f, 1.7f, 0.0f, 2.4f };
  const gint32 hist[] = { 0, 1, 4, 4 };
  gfloat q[4];
  gfloat probs[4];
  gint i;

  check_probs ("softmax", mixed, 7, NULL, 0, 1, 0, 1, 1);
  check_probs ("penalty", mixed, 7, hist, 4, 1, 0, 1, 1.3f);
  check_probs ("temperature", mixed, 7, NULL, 0, 0.7f, 0, 1, 1);
  check_probs ("top-k 2", five, 5, NULL, 0, 1, 2, 1, 1);
  check_probs ("top-k ties", ties, 4, NULL, 0, 1, 1, 1, 1);
  check_probs ("top-p", mixed, 7, NULL, 0, 1, 0, 0.6f, 1);
  check_probs ("all", mixed, 7, hist, 4, 0.8f, 5, 0.9f, 1.2f);
  /* probabilities 0.5 0.3 0.15 0.05, top_p 0.75: ascending cumulative
   * 0.05 0.2 | 0.5 1.0, so 0.3 and 0.5 stay: 0.375 0.625 */
  q[0] = logf (0.3f), q[1] = logf (0.05f), q[2] = logf (0.5f);
  q[3] = logf (0.15f);
  {
    g_autoptr (MmSampler) s = sampler (1, 0, 0.75f, 1, 0);

    mm_sampler_get_probs (s, q, 4, probs, NULL);
    CHECK (fabsf (probs[0] - 0.375f) < 1e-6 && probs[1] == 0
        && fabsf (probs[2] - 0.625f) < 1e-6 && probs[3] == 0,
        "top-p by hand: %g %g %g %g", probs[0], probs[1], probs[2], probs[3]);
  }
  /* a top-p too small still keeps the best token */
  {
    g_autoptr (MmSampler) s = sampler (1, 0, 0.01f, 1, 0);

    mm_sampler_get_probs (s, q, 4, probs, NULL);
    CHECK (probs[2] == 1.0f && probs[0] == 0, "top-p keeps one");
  }
  /* big vocabularies, with and without a long tail, against the reference */
  for (i = 0; i < 6; i++) {
    gsize n = 3001;
    g_autofree gfloat *x = g_new (gfloat, n);
    g_autoptr (GRand) r = g_rand_new_with_seed (i);
    gsize j;
    g_autofree gchar *what = g_strdup_printf ("random vocab %d", i);

    for (j = 0; j < n; j++)
      x[j] = i % 2 ? g_rand_double_range (r, -8, 8)
          : (j % 97 == 0 ? g_rand_double_range (r, 5, 10)
          : g_rand_double_range (r, -40, -20));
    check_probs (what, x, n, NULL, 0, 0.5f + i * 0.3f, i == 4 ? 50 : 0,
        0.5f + i * 0.09f, 1);
  }
  /* top_p so close to 1 that the long tail decides (full sort) */
  {
    gsize n = 3001, j;
    g_autofree gfloat *x = g_new (gfloat, n);

    x[0] = 0;
    for (j = 1; j < n; j++)
      x[j] = -21.0f - j * 1e-3f;
    check_probs ("long tail", x, n, NULL, 0, 1, 0, 0.9999999f, 1);
  }
}

static void
test_draws (void)
{
  gfloat logits[4];
  gint counts[4] = { 0 }, i, n = 40000;
  const gdouble want[4] = { 0.1, 0.2, 0.3, 0.4 };
  g_autoptr (MmSampler) a = sampler (1, 0, 1, 1, 42);
  g_autoptr (MmSampler) b = sampler (1, 0, 1, 1, 42);
  g_autoptr (MmSampler) c = sampler (1, 0, 1, 1, 43);
  gint32 first[64];
  gboolean same_ab = TRUE, same_ac = TRUE, same_reset = TRUE;

  for (i = 0; i < 4; i++)
    logits[i] = logf (want[i]) + 3.0f;  /* shift: softmax ignores it */
  for (i = 0; i < n; i++)
    counts[pick (a, logits, 4)]++;
  for (i = 0; i < 4; i++)
    CHECK (fabs (counts[i] / (gdouble) n - want[i]) < 0.01,
        "draw frequency of %d: %g, want %g", i, counts[i] / (gdouble) n,
        want[i]);
  mm_sampler_reset (a);
  for (i = 0; i < 64; i++) {
    gint32 x = pick (a, logits, 4), y = pick (b, logits, 4);

    first[i] = x;
    same_ab &= x == y;
    same_ac &= x == pick (c, logits, 4);
  }
  CHECK (same_ab, "same seed, same tokens");
  CHECK (!same_ac, "another seed, other tokens");
  mm_sampler_reset (a);
  for (i = 0; i < 64; i++)
    same_reset &= pick (a, logits, 4) == first[i];
  CHECK (same_reset, "reset restarts the sequence");
}

static void
test_sampler_errors (void)
{
  MmSamplerParams p;
  GError *error = NULL;
  const gfloat nan3[] = { NAN, NAN, -INFINITY };
  const gfloat some_nan[] = { NAN, 1, 2 };
  g_autoptr (MmSampler) s = sampler (1, 0, 1, 1, 0);
  gint32 id = -1;

  mm_sampler_params_init (&p);
  p.top_p = 0;
  CHECK (mm_sampler_new (&p, &error) == NULL && error, "top_p 0");
  g_clear_error (&error);
  mm_sampler_params_init (&p);
  p.repetition_penalty = -1;
  CHECK (mm_sampler_new (&p, &error) == NULL && error, "penalty < 0");
  g_clear_error (&error);
  CHECK (!mm_sampler_sample (s, nan3, 0, &id, &error) && error, "empty");
  g_clear_error (&error);
  CHECK (!mm_sampler_sample (s, nan3, 3, &id, &error) && error, "no number");
  g_clear_error (&error);
  CHECK (mm_sampler_sample (s, some_nan, 3, &id, NULL) && id != 0,
      "NaN never drawn");
}

static void
push (MmStopper * st, gint32 id, const gchar * text, GString * out,
    MmStopReason want, const gchar * want_out)
{
  MmStopReason got = mm_stopper_push (st, id, text, -1, out);

  CHECK (got == want, "push '%s': reason %d, want %d", text, got, want);
  CHECK (g_strcmp0 (out->str, want_out) == 0, "push '%s': shown '%s', "
      "want '%s'", text, out->str, want_out);
}

static void
test_stopper (void)
{
  g_autoptr (MmStopper) st = mm_stopper_new (0);
  g_autoptr (GString) out = g_string_new (NULL);

  mm_stopper_add_id (st, 7);
  mm_stopper_add_string (st, "\nUser:");
  mm_stopper_add_string (st, "<|im_end|>");
  mm_stopper_add_string (st, "。");
  /* a stop string split over tokens is held back, then trimmed */
  push (st, 1, "Hi", out, MM_STOP_NONE, "Hi");
  push (st, 2, " there", out, MM_STOP_NONE, "Hi there");
  push (st, 3, "\nUs", out, MM_STOP_NONE, "Hi there");
  push (st, 4, "er: more", out, MM_STOP_STRING, "Hi there");
  CHECK (g_str_equal (mm_stopper_get_text (st), "Hi there"), "answer");
  push (st, 5, "after", out, MM_STOP_STRING, "Hi there");
  /* held text that is no stop string after all comes out */
  mm_stopper_reset (st);
  g_string_truncate (out, 0);
  push (st, 1, "a\nUs", out, MM_STOP_NONE, "a");
  push (st, 1, "ually <|im", out, MM_STOP_NONE, "a\nUsually ");
  push (st, 1, "_start|>", out, MM_STOP_NONE, "a\nUsually <|im_start|>");
  /* the earliest stop string wins, inside one token */
  push (st, 1, " x。y<|im_end|>z", out, MM_STOP_STRING,
      "a\nUsually <|im_start|> x");
  /* end of generation id: held text is flushed, the id's text is not */
  mm_stopper_reset (st);
  g_string_truncate (out, 0);
  push (st, 1, "ok\n", out, MM_STOP_NONE, "ok");
  push (st, 7, "<eos>", out, MM_STOP_EOG, "ok\n");
  CHECK (mm_stopper_get_n_tokens (st) == 2, "token count");
}

static void
test_max_tokens (void)
{
  g_autoptr (MmStopper) st = mm_stopper_new (3);
  g_autoptr (GString) out = g_string_new (NULL);

  mm_stopper_add_string (st, "\nUser");
  push (st, 1, "one", out, MM_STOP_NONE, "one");
  push (st, 1, " two", out, MM_STOP_NONE, "one two");
  push (st, 1, "\nU", out, MM_STOP_MAX_TOKENS, "one two\nU");
  CHECK (g_str_equal (mm_stopper_get_text (st), "one two\nU"), "max text");
}

int
main (int argc, char **argv)
{
  test_greedy ();
  test_processors ();
  test_draws ();
  test_sampler_errors ();
  test_stopper ();
  test_max_tokens ();
  if (failures) {
    g_printerr ("%d check(s) failed\n", failures);
    return 1;
  }
  g_print ("%d sampler checks passed\n", checks);
  return 0;
}
