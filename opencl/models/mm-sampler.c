/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sampling (transformers' logits processors, in generate()'s order) and
 * stop criteria.
 */
#include "mm-sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

GQuark
mm_sampler_error_quark (void)
{
  return g_quark_from_static_string ("mm-sampler-error-quark");
}

struct _MmSampler
{
  MmSamplerParams p;
  guint64 rng[4];               /* xoshiro256** */
  GArray *history;              /* gint32 */
  guint8 *seen;                 /* [seen_len]: id in history */
  gsize seen_len;
  gfloat *scores;               /* [cap] scratch */
  gint32 *idx;                  /* [cap] scratch */
  gfloat *vals;                 /* [cap] scratch */
  gsize cap;
};

/* ---- random numbers ------------------------------------------------------ */

static guint64
splitmix64 (guint64 * x)
{
  guint64 z = (*x += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static guint64
rotl (guint64 x, gint k)
{
  return (x << k) | (x >> (64 - k));
}

static guint64
rng_next (MmSampler * s)
{
  guint64 *r = s->rng;
  guint64 out = rotl (r[1] * 5, 7) * 9, t = r[1] << 17;

  r[2] ^= r[0];
  r[3] ^= r[1];
  r[1] ^= r[2];
  r[0] ^= r[3];
  r[2] ^= t;
  r[3] = rotl (r[3], 45);
  return out;
}

/* uniform in [0, 1) */
static gdouble
rng_uniform (MmSampler * s)
{
  return (rng_next (s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- construction -------------------------------------------------------- */

void
mm_sampler_params_init (MmSamplerParams * p)
{
  memset (p, 0, sizeof (*p));
  p->temperature = 1.0f;
  p->top_p = 1.0f;
  p->repetition_penalty = 1.0f;
}

MmSampler *
mm_sampler_new (const MmSamplerParams * params, GError ** error)
{
  MmSampler *s;

  g_return_val_if_fail (params != NULL, NULL);
  if (isnan (params->temperature) || isnan (params->top_p)
      || !(params->top_p > 0) || !(params->repetition_penalty > 0)
      || isinf (params->repetition_penalty)) {
    g_set_error (error, MM_SAMPLER_ERROR, MM_SAMPLER_ERROR_INVALID,
        "sampler: invalid parameters (temperature %g, top_p %g, "
        "repetition_penalty %g)", params->temperature, params->top_p,
        params->repetition_penalty);
    return NULL;
  }
  s = g_new0 (MmSampler, 1);
  s->p = *params;
  s->history = g_array_new (FALSE, FALSE, sizeof (gint32));
  mm_sampler_reset (s);
  return s;
}

void
mm_sampler_free (MmSampler * s)
{
  if (s == NULL)
    return;
  g_array_unref (s->history);
  g_free (s->seen);
  g_free (s->scores);
  g_free (s->idx);
  g_free (s->vals);
  g_free (s);
}

void
mm_sampler_reset (MmSampler * s)
{
  guint64 x = s->p.seed;
  guint i;

  for (i = 0; i < 4; i++)
    s->rng[i] = splitmix64 (&x);
  g_array_set_size (s->history, 0);
  if (s->seen)
    memset (s->seen, 0, s->seen_len);
}

static void
remember (MmSampler * s, gint32 id)
{
  if (id < 0)
    return;
  if ((gsize) id >= s->seen_len) {
    gsize n = MAX ((gsize) id + 1, s->seen_len * 2);

    s->seen = g_realloc (s->seen, n);
    memset (s->seen + s->seen_len, 0, n - s->seen_len);
    s->seen_len = n;
  }
  if (!s->seen[id])
    g_array_append_val (s->history, id);
  s->seen[id] = 1;
}

void
mm_sampler_add_history (MmSampler * s, const gint32 * ids, gsize n)
{
  gsize i;

  for (i = 0; i < n; i++)
    remember (s, ids[i]);
}

/* ---- logits processing ---------------------------------------------------- */

/* RepetitionPenaltyLogitsProcessor: once per distinct id seen. */
static void
apply_penalty (MmSampler * s, gfloat * x, gsize n)
{
  gfloat pen = s->p.repetition_penalty;
  guint i;

  if (pen == 1.0f)
    return;
  for (i = 0; i < s->history->len; i++) {
    gint32 id = g_array_index (s->history, gint32, i);

    if ((gsize) id < n)
      x[id] = x[id] < 0 ? x[id] * pen : x[id] / pen;
  }
}

static gint
cmp_desc (const void *a, const void *b, void *scores)
{
  const gfloat *x = scores;
  gfloat va = x[*(const gint32 *) a], vb = x[*(const gint32 *) b];

  if (va != vb)
    return va > vb ? -1 : 1;
  return *(const gint32 *) a - *(const gint32 *) b;
}

/* The k-th largest (1-based) of v[0..n); reorders v (quickselect). */
static gfloat
kth_largest (gfloat * v, gssize n, gssize k)
{
  gssize lo = 0, hi = n - 1, target = k - 1;

  while (lo < hi) {
    gfloat pivot = v[lo + (hi - lo) / 2], t;
    gssize i = lo, j = hi;

    while (i <= j) {            /* descending Hoare partition */
      while (v[i] > pivot)
        i++;
      while (v[j] < pivot)
        j--;
      if (i <= j) {
        t = v[i], v[i] = v[j], v[j] = t;
        i++, j--;
      }
    }
    if (target <= j)
      hi = j;
    else if (target >= i)
      lo = i;
    else
      return v[target];         /* between the parts: equal to the pivot */
  }
  return v[target];
}

/* TopKLogitsWarper: remove scores below the k-th largest (ties kept). */
static void
apply_top_k (MmSampler * s, gfloat * x, gsize n)
{
  gsize i;
  gfloat kth;

  if (s->p.top_k <= 0 || (gsize) s->p.top_k >= n)
    return;
  memcpy (s->vals, x, n * sizeof (gfloat));
  kth = kth_largest (s->vals, n, s->p.top_k);
  for (i = 0; i < n; i++) {
    if (x[i] < kth)
      x[i] = -INFINITY;
  }
}

/* TopPLogitsWarper: in ascending order, remove tokens whose cumulative
 * probability is <= 1 - top_p (the most likely one always stays).  Only
 * the candidates above max - 20 are sorted when the mass below them is
 * removed anyway. */
static void
apply_top_p (MmSampler * s, gfloat * x, gsize n, gfloat max)
{
  gdouble total = 0, tail = 0, cum, limit = 1.0 - s->p.top_p;
  gsize i, m = 0;
  gfloat cut = max - 20.0f;

  if (s->p.top_p >= 1.0f)
    return;
  for (i = 0; i < n; i++)
    total += isinf (x[i]) ? 0 : exp ((gdouble) x[i] - max);
  for (i = 0; i < n; i++) {
    gdouble e = isinf (x[i]) ? 0 : exp ((gdouble) x[i] - max) / total;

    if (x[i] >= cut)
      s->idx[m++] = i;
    else
      tail += e;
  }
  if (tail > limit) {           /* the tail matters: sort everything */
    for (i = 0, m = 0; i < n; i++)
      s->idx[m++] = i;
    tail = 0;
  }
  g_qsort_with_data (s->idx, m, sizeof (gint32), cmp_desc, x);
  /* walk ascending: idx[m-1] is the least likely candidate */
  cum = tail;
  for (i = m; i > 1; i--) {
    gint32 id = s->idx[i - 1];

    cum += isinf (x[id]) ? 0 : exp ((gdouble) x[id] - max) / total;
    if (cum > limit)
      break;
    x[id] = -INFINITY;
  }
  for (i = 0; tail > 0 && i < n; i++) {
    if (x[i] < cut)
      x[i] = -INFINITY;
  }
}

static gsize
argmax (const gfloat * x, gsize n)
{
  gsize i, best = 0;

  for (i = 1; i < n; i++) {
    if (x[i] > x[best] || (isnan (x[best]) && !isnan (x[i])))
      best = i;
  }
  return best;
}

/* Penalty, temperature, top-k, top-p into s->scores; FALSE when greedy
 * (then s->scores holds the penalised logits). */
static gboolean
process (MmSampler * s, const gfloat * logits, gsize n, GError ** error)
{
  gsize i;
  gfloat max;

  if (n == 0 || n > G_MAXINT32) {
    g_set_error (error, MM_SAMPLER_ERROR, MM_SAMPLER_ERROR_INVALID,
        "sampler: vocabulary of %" G_GSIZE_FORMAT " logits", n);
    return FALSE;
  }
  if (n > s->cap) {
    s->scores = g_renew (gfloat, s->scores, n);
    s->idx = g_renew (gint32, s->idx, n);
    s->vals = g_renew (gfloat, s->vals, n);
    s->cap = n;
  }
  for (i = 0; i < n; i++)
    s->scores[i] = isnan (logits[i]) ? -INFINITY : logits[i];
  apply_penalty (s, s->scores, n);
  max = s->scores[argmax (s->scores, n)];
  if (isinf (max) && max < 0) {
    g_set_error (error, MM_SAMPLER_ERROR, MM_SAMPLER_ERROR_INVALID,
        "sampler: no finite logit among %" G_GSIZE_FORMAT, n);
    return FALSE;
  }
  return TRUE;
}

static void
warp (MmSampler * s, gsize n)
{
  gfloat *x = s->scores;
  gsize i;

  for (i = 0; i < n; i++)
    x[i] /= s->p.temperature;
  apply_top_k (s, x, n);
  apply_top_p (s, x, n, x[argmax (x, n)]);
}

gboolean
mm_sampler_get_probs (MmSampler * s, const gfloat * logits, gsize n_vocab,
    gfloat * probs, GError ** error)
{
  gdouble total = 0;
  gfloat max;
  gsize i;

  if (!process (s, logits, n_vocab, error))
    return FALSE;
  if (s->p.temperature <= 0) {
    memset (probs, 0, n_vocab * sizeof (gfloat));
    probs[argmax (s->scores, n_vocab)] = 1.0f;
    return TRUE;
  }
  warp (s, n_vocab);
  max = s->scores[argmax (s->scores, n_vocab)];
  for (i = 0; i < n_vocab; i++)
    total += exp ((gdouble) s->scores[i] - max);
  for (i = 0; i < n_vocab; i++)
    probs[i] = exp ((gdouble) s->scores[i] - max) / total;
  return TRUE;
}

gboolean
mm_sampler_sample (MmSampler * s, const gfloat * logits, gsize n_vocab,
    gint32 * id, GError ** error)
{
  gdouble total = 0, u, acc = 0;
  gfloat max;
  gsize i, pick;

  if (!process (s, logits, n_vocab, error))
    return FALSE;
  pick = argmax (s->scores, n_vocab);
  if (s->p.temperature > 0) {
    warp (s, n_vocab);
    max = s->scores[pick];      /* top-k/top-p keep the argmax */
    for (i = 0; i < n_vocab; i++)
      total += exp ((gdouble) s->scores[i] - max);
    u = rng_uniform (s) * total;
    for (i = 0; i < n_vocab; i++) {
      gdouble e = exp ((gdouble) s->scores[i] - max);

      if (e == 0)
        continue;
      pick = i;
      acc += e;
      if (u < acc)
        break;
    }
  }
  *id = pick;
  remember (s, *id);
  return TRUE;
}

/* ---- stop criteria --------------------------------------------------------- */

struct _MmStopper
{
  guint max_tokens, n_tokens;
  GArray *ids;                  /* gint32 */
  GPtrArray *strings;
  GString *text;
  gsize shown;                  /* bytes of text handed out */
  MmStopReason stopped;
};

MmStopper *
mm_stopper_new (guint max_tokens)
{
  MmStopper *st = g_new0 (MmStopper, 1);

  st->max_tokens = max_tokens;
  st->ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  st->strings = g_ptr_array_new_with_free_func (g_free);
  st->text = g_string_new (NULL);
  return st;
}

void
mm_stopper_free (MmStopper * st)
{
  if (st == NULL)
    return;
  g_array_unref (st->ids);
  g_ptr_array_unref (st->strings);
  g_string_free (st->text, TRUE);
  g_free (st);
}

void
mm_stopper_add_id (MmStopper * st, gint32 id)
{
  g_array_append_val (st->ids, id);
}

void
mm_stopper_add_string (MmStopper * st, const gchar * stop)
{
  if (stop && *stop)
    g_ptr_array_add (st->strings, g_strdup (stop));
}

void
mm_stopper_reset (MmStopper * st)
{
  g_string_truncate (st->text, 0);
  st->shown = 0;
  st->n_tokens = 0;
  st->stopped = MM_STOP_NONE;
}

static void
show (MmStopper * st, gsize upto, GString * out)
{
  if (out && upto > st->shown)
    g_string_append_len (out, st->text->str + st->shown, upto - st->shown);
  st->shown = MAX (st->shown, upto);
}

/* The longest end of the text that a stop string starts with. */
static gsize
held_back (const MmStopper * st)
{
  gsize avail = st->text->len - st->shown, best = 0, k;
  guint i;

  for (i = 0; i < st->strings->len; i++) {
    const gchar *s = st->strings->pdata[i];
    gsize n = strlen (s);

    for (k = MIN (n - 1, avail); k > best; k--) {
      if (memcmp (st->text->str + st->text->len - k, s, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

static MmStopReason
stop (MmStopper * st, MmStopReason why, GString * out)
{
  show (st, st->text->len, out);
  st->stopped = why;
  return why;
}

MmStopReason
mm_stopper_push (MmStopper * st, gint32 id, const gchar * text, gssize len,
    GString * out)
{
  const gchar *first = NULL;
  guint i;

  if (st->stopped != MM_STOP_NONE)
    return st->stopped;
  st->n_tokens++;
  for (i = 0; i < st->ids->len; i++) {
    if (g_array_index (st->ids, gint32, i) == id)
      return stop (st, MM_STOP_EOG, out);
  }
  if (text)
    g_string_append_len (st->text, text, len < 0 ? (gssize) strlen (text)
        : len);
  /* no stop string starts before st->shown: that text was never held */
  for (i = 0; i < st->strings->len; i++) {
    const gchar *hit = strstr (st->text->str + st->shown,
        st->strings->pdata[i]);

    if (hit && (first == NULL || hit < first))
      first = hit;
  }
  if (first) {
    g_string_truncate (st->text, first - st->text->str);
    return stop (st, MM_STOP_STRING, out);
  }
  if (st->max_tokens > 0 && st->n_tokens >= st->max_tokens)
    return stop (st, MM_STOP_MAX_TOKENS, out);
  show (st, st->text->len - held_back (st), out);
  return MM_STOP_NONE;
}

const gchar *
mm_stopper_get_text (const MmStopper * st)
{
  return st->text->str;
}

guint
mm_stopper_get_n_tokens (const MmStopper * st)
{
  return st->n_tokens;
}
