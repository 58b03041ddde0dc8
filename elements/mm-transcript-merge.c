/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Merging the transcripts of overlapping audio windows (the rule is in
 * mm-transcript-merge.h).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "mm-transcript-merge.h"

#define NS_PER_S G_GINT64_CONSTANT (1000000000)
#define TIME_NONE G_MININT64
/* newest committed words kept for the overlap match */
#define TAIL_WORDS 64
#define MAX_TOL (NS_PER_S / 5)
#define MAX_EDGE (NS_PER_S / 2)

/* Words of a piece of text: as written, and normalised for matching. */
typedef struct
{
  GPtrArray *text;              /* gchar* */
  GPtrArray *norm;              /* gchar* */
} Words;

/* A committed word, with its time estimated in proportion to the
 * characters of its piece (untimed: the piece had no timestamps). */
typedef struct
{
  gchar *norm;
  gint64 t0, t1;
  gboolean timed;
} TailWord;

/* A piece: words and the span they were heard in. */
typedef struct
{
  gint64 start, end;
  gboolean cut_start;           /* starts with its window */
  gboolean timed;               /* from a timestamped segment */
  gint64 window_end;            /* end of the window it came from */
  Words words;
} Piece;

struct _MmTranscriptMerge
{
  gint64 committed_end;         /* TIME_NONE: nothing committed */
  gboolean end_estimated;       /* committed_end is a word estimate, not a
                                 * timestamp */
  gint64 out_end;               /* end of the last piece given out */
  GArray *tail;                 /* TailWord, oldest first */
  GPtrArray *held;              /* Piece*, in order */
  gint64 tol, edge;             /* of the current window */
};

/* ---- words ---- */

/* Lower case letters and digits; a word without any (noise, symbols)
 * stays as written, so that it only matches itself. */
static gchar *
normalise (const gchar * word)
{
  GString *s = g_string_new (NULL);
  const gchar *p;

  for (p = word; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (g_unichar_isalnum (c))
      g_string_append_unichar (s, g_unichar_tolower (c));
  }
  if (s->len == 0)
    g_string_assign (s, word);
  return g_string_free (s, FALSE);
}

static void
words_init (Words * w)
{
  w->text = g_ptr_array_new_with_free_func (g_free);
  w->norm = g_ptr_array_new_with_free_func (g_free);
}

static void
words_clear (Words * w)
{
  g_clear_pointer (&w->text, g_ptr_array_unref);
  g_clear_pointer (&w->norm, g_ptr_array_unref);
}

static void
words_split (Words * w, const gchar * text)
{
  gchar *valid = g_utf8_make_valid (text ? text : "", -1);
  gchar **parts = g_strsplit_set (valid, " \t\r\n\f\v", -1);
  guint i;

  words_init (w);
  for (i = 0; parts[i]; i++) {
    if (parts[i][0] == '\0')
      continue;
    g_ptr_array_add (w->text, g_strdup (parts[i]));
    g_ptr_array_add (w->norm, normalise (parts[i]));
  }
  g_strfreev (parts);
  g_free (valid);
}

static gchar *
words_join (const Words * w, guint from, guint to)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = from; i < to; i++) {
    if (s->len > 0)
      g_string_append_c (s, ' ');
    g_string_append (s, w->text->pdata[i]);
  }
  return g_string_free (s, FALSE);
}

/* Where the words of @p begin: n + 1 times from start to end, in
 * proportion to characters (a space counted with each word). */
static gint64 *
word_bounds (const Piece * p)
{
  guint n = p->words.text->len, i;
  gint64 *b = g_new (gint64, n + 1);
  glong total = 0, cum = 0;

  for (i = 0; i < n; i++)
    total += g_utf8_strlen (p->words.text->pdata[i], -1) + 1;
  for (i = 0; i <= n; i++) {
    b[i] = p->start + (gint64) ((gdouble) (p->end - p->start) * cum /
        MAX (total, 1));
    if (i < n)
      cum += g_utf8_strlen (p->words.text->pdata[i], -1) + 1;
  }
  b[n] = p->end;
  return b;
}

static Piece *
piece_new (gint64 start, gint64 end, gboolean cut_start, gboolean timed,
    gint64 window_end, const gchar * text)
{
  Piece *p = g_new0 (Piece, 1);

  p->start = start;
  p->end = MAX (end, start);
  p->cut_start = cut_start;
  p->timed = timed;
  p->window_end = window_end;
  words_split (&p->words, text);
  return p;
}

static void
piece_free (Piece * p)
{
  words_clear (&p->words);
  g_free (p);
}

static void
tail_word_clear (TailWord * t)
{
  g_free (t->norm);
}

/* ---- the overlap rule ---- */

static TailWord *
tail_word (MmTranscriptMerge * m, guint from_end)
{
  return &g_array_index (m->tail, TailWord, m->tail->len - from_end);
}

/* Whether @k words of @p from @at equal the tail's newest @k words. */
static gboolean
tail_matches (MmTranscriptMerge * m, const Piece * p, guint at, guint k)
{
  guint i;

  for (i = 0; i < k; i++)
    if (strcmp (tail_word (m, k - i)->norm, p->words.norm->pdata[at + i]))
      return FALSE;
  return TRUE;
}

/* The first word of @p that is not committed yet.  Candidates are runs
 * of its words equal to the tail's newest words, where times allow it:
 * the run starts before the committed end (or is the first word of a
 * piece that starts with its window, which may have begun before it) and
 * the tail's words end after the piece starts; without times, a run of
 * one word only as the piece's first or second word.  The longest run wins,
 * then the one ending nearest the estimate (the words whose middle falls
 * before the committed end).  Without any, the words that end before the
 * committed end; none with times estimated over a whole window (no
 * timestamps) or for a piece that starts with its window (its first
 * timestamp is the window's start, not its speech's): the text of the
 * window did not meet the tail. */
static guint
skip_committed (MmTranscriptMerge * m, const Piece * p, const gint64 * b)
{
  guint n = p->words.text->len, k, i, expect = 0, before = 0;
  gint64 c = m->committed_end;
  /* a run must start before the committed end: clearly so when that is a
   * timestamp, within the tolerance when it was estimated */
  gint64 limit = m->end_estimated ? c + m->tol : c - m->tol / 2;

  while (expect < n && (b[expect] + b[expect + 1]) / 2 < c)
    expect++;
  while (before < n && b[before + 1] <= c)
    before++;
  for (k = MIN (m->tail->len, n); k > 0; k--) {
    const TailWord *oldest = tail_word (m, k);
    gint best = -1;

    if (p->timed && oldest->timed && oldest->t1 < p->start - m->tol)
      continue;                 /* the run would reach before the piece */
    for (i = 0; i + k <= n; i++) {
      if (p->timed && b[i] > limit && !(i == 0 && p->cut_start))
        break;
      /* without times, one word is weak evidence: only at the start
       * (after one fragment at most) */
      if (!p->timed && k == 1 && i > 1)
        break;
      if (!tail_matches (m, p, i, k))
        continue;
      if (best < 0 || ABS ((gint) (i + k) - (gint) expect) <
          ABS (best - (gint) expect))
        best = i + k;
    }
    if (best >= 0)
      return best;
  }
  /* a piece that starts with its window: Whisper puts its first
   * timestamp at the window's start whatever the audio there holds, so
   * its word times say nothing about the overlap */
  return p->timed && !p->cut_start ? before : 0;
}

static void
tail_push (MmTranscriptMerge * m, const Piece * p, const gint64 * b,
    guint from, guint to)
{
  guint i;

  for (i = from; i < to; i++) {
    TailWord t = { g_strdup (p->words.norm->pdata[i]), b[i], b[i + 1],
      p->timed
    };
    g_array_append_val (m->tail, t);
  }
  if (m->tail->len > TAIL_WORDS)
    g_array_remove_range (m->tail, 0, m->tail->len - TAIL_WORDS);
}

/* Commits the words of @p (without the last one with @drop_last) that
 * are not committed yet; returns the pieces given out (0 or 1). */
static guint
commit (MmTranscriptMerge * m, const Piece * p, gboolean drop_last,
    GArray * out)
{
  guint n = p->words.text->len, first = 0, last;
  gint64 *b, done;
  MmTranscriptPiece o;

  if (n == 0)
    return 0;
  if (m->committed_end != TIME_NONE && p->end < m->committed_end - m->tol)
    return 0;                   /* an earlier window committed it */

  b = word_bounds (p);
  if (m->committed_end != TIME_NONE && p->start < m->committed_end)
    first = skip_committed (m, p, b);
  last = drop_last ? n - 1 : n;
  /* with the last word held, the committed time ends where it starts */
  done = b[last];
  if (m->committed_end == TIME_NONE || done > m->committed_end) {
    m->committed_end = done;
    m->end_estimated = drop_last || !p->timed;
  }
  if (first < last) {
    /* from the first new word's estimated start, never before the last
     * piece given out ends */
    o.start = m->out_end != TIME_NONE ? MAX (b[first], m->out_end) : b[first];
    o.end = MAX (done, o.start);
    o.text = words_join (&p->words, first, last);
    g_array_append_val (out, o);
    m->out_end = o.end;
    tail_push (m, p, b, first, last);
  }
  g_free (b);
  return first < last ? 1 : 0;
}

/* Rule 3: what the previous window held back, now that @w arrived. */
static guint
settle_held (MmTranscriptMerge * m, const MmTranscriptWindow * w, GArray * out)
{
  guint i, n = 0;

  for (i = 0; i < m->held->len; i++) {
    Piece *h = m->held->pdata[i];

    if (w->start <= h->start - m->tol)
      break;                    /* @w has this and the rest whole */
    n += commit (m, h, w->start < h->window_end - m->tol, out);
  }
  g_ptr_array_set_size (m->held, 0);
  return n;
}

/* Segments that can place text in time: times in order. */
static gboolean
segments_usable (const MmTranscriptWindow * w)
{
  gdouble prev = 0.0;
  guint i;

  if (w->segments == NULL || w->n_segments == 0)
    return FALSE;
  for (i = 0; i < w->n_segments; i++) {
    const MmTranscriptSegment *s = &w->segments[i];

    if (!(s->t0 >= 0.0 && s->t1 >= s->t0 && s->t0 >= prev - 0.02))
      return FALSE;
    prev = s->t0;
  }
  return TRUE;
}

/* @t seconds into @w, clamped to its audio (NaN: its start). */
static gint64
abs_time (const MmTranscriptWindow * w, gdouble t)
{
  gdouble ns = t * NS_PER_S;

  if (!(ns > 0.0))
    return w->start;
  if (ns >= (gdouble) (w->end - w->start))
    return w->end;
  return w->start + (gint64) (ns + 0.5);
}

/* Rule 2. */
static guint
add_segments (MmTranscriptMerge * m, const MmTranscriptWindow * w, GArray * out)
{
  gboolean holding = FALSE;
  guint i, n = 0;

  for (i = 0; i < w->n_segments; i++) {
    const MmTranscriptSegment *s = &w->segments[i];
    gint64 a0 = abs_time (w, s->t0), a1 = abs_time (w, s->t1);
    Piece *p;

    /* text placed after the audio (in the padding of a short window) */
    if (s->t0 * NS_PER_S >= (gdouble) (w->end - w->start))
      break;
    p = piece_new (a0, a1, a0 <= w->start + m->tol / 2, TRUE, w->end, s->text);
    if (p->words.text->len == 0) {
      piece_free (p);
      continue;
    }
    holding |= a1 >= w->end - m->edge;
    if (holding) {
      g_ptr_array_add (m->held, p);
      continue;
    }
    n += commit (m, p, FALSE, out);
    piece_free (p);
  }
  return n;
}

/* Rule 4. */
static guint
add_text (MmTranscriptMerge * m, const MmTranscriptWindow * w, GArray * out)
{
  Piece *p = piece_new (w->start, w->end, TRUE, FALSE, w->end, w->text);
  guint n = p->words.text->len, count;
  gint64 *b;

  if (n == 0) {
    piece_free (p);
    return 0;
  }
  count = commit (m, p, TRUE, out);
  /* the last word, held */
  b = word_bounds (p);
  g_ptr_array_remove_range (p->words.text, 0, n - 1);
  g_ptr_array_remove_range (p->words.norm, 0, n - 1);
  p->start = b[n - 1];
  p->cut_start = n == 1;
  g_ptr_array_add (m->held, p);
  g_free (b);
  return count;
}

/* ---- API ---- */

static void
piece_clear (MmTranscriptPiece * p)
{
  g_free (p->text);
}

GArray *
mm_transcript_pieces_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (MmTranscriptPiece));

  g_array_set_clear_func (a, (GDestroyNotify) piece_clear);
  return a;
}

MmTranscriptMerge *
mm_transcript_merge_new (void)
{
  MmTranscriptMerge *m = g_new0 (MmTranscriptMerge, 1);

  m->tail = g_array_new (FALSE, FALSE, sizeof (TailWord));
  g_array_set_clear_func (m->tail, (GDestroyNotify) tail_word_clear);
  m->held = g_ptr_array_new_with_free_func ((GDestroyNotify) piece_free);
  mm_transcript_merge_reset (m);
  return m;
}

void
mm_transcript_merge_free (MmTranscriptMerge * m)
{
  if (m == NULL)
    return;
  g_array_unref (m->tail);
  g_ptr_array_unref (m->held);
  g_free (m);
}

void
mm_transcript_merge_reset (MmTranscriptMerge * m)
{
  m->committed_end = TIME_NONE;
  m->end_estimated = FALSE;
  m->out_end = TIME_NONE;
  g_array_set_size (m->tail, 0);
  g_ptr_array_set_size (m->held, 0);
  m->tol = MAX_TOL;
  m->edge = MAX_EDGE;
}

guint
mm_transcript_merge_add (MmTranscriptMerge * m, const MmTranscriptWindow * w,
    GArray * out)
{
  MmTranscriptWindow win = *w;
  guint n;

  g_return_val_if_fail (m != NULL && w != NULL && out != NULL, 0);

  if (win.end < win.start)
    win.end = win.start;
  m->tol = MIN (MAX_TOL, (win.end - win.start) / 20);
  m->edge = MIN (MAX_EDGE, (win.end - win.start) / 8);

  n = settle_held (m, &win, out);
  if (segments_usable (&win))
    n += add_segments (m, &win, out);
  else
    n += add_text (m, &win, out);
  return n;
}

guint
mm_transcript_merge_flush (MmTranscriptMerge * m, GArray * out)
{
  guint i, n = 0;

  g_return_val_if_fail (m != NULL && out != NULL, 0);

  for (i = 0; i < m->held->len; i++) {
    n += commit (m, m->held->pdata[i], FALSE, out);
  }
  mm_transcript_merge_reset (m);
  return n;
}
