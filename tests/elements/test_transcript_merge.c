/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The merging rule of overlapping transcription windows
 * (elements/mm-transcript-merge.h), on synthetic speech.
 *
 * A script of words with times (sentences separated by pauses) is cut
 * into windows as mmaudioenc cuts audio (window, hop, a partial window at
 * the end).  A simulated Whisper transcribes each window: words inside
 * whole, words that the window edge cuts as a fragment ("word~", never
 * equal to the word) or not at all, segments per sentence (sometimes split
 * inside a sentence, differently in every window), timestamps with a
 * little jitter, the segment that runs into the window's end left open
 * (t1 = the model's 30 s), the first word of a segment capitalised and a
 * full stop after the last word of a sentence.  The merged transcript
 * must hold every word exactly once, in order, and no fragment, for
 * every window/hop with overlap, with and without timestamps; without
 * overlap (or with a dropped window) exactly the words that some window
 * saw whole, once each.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "elements/mm-transcript-merge.h"
#include "mm-test-util.h"

#define NS 1000000000.0
#define MODEL_WINDOW 30.0


static const gchar *vocab[] = {
  "the", "a", "cat", "dog", "sat", "on", "mat", "and", "then", "it", "ran",
  "to", "house", "garden", "red", "blue", "big", "small", "we", "saw",
  "bird", "tree", "under", "over", "quickly", "slowly", "morning",
  "evening", "light", "dark", "river", "stone", "bridge", "window", "door",
  "open", "closed", "happy", "quiet", "loud",
};

typedef struct
{
  const gchar *text;
  gdouble start, end;
  gint sentence;
  gboolean last_of_sentence;
} Word;

static guint32
rnd (guint32 * s)
{
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}

/* (a function: MAX () would evaluate it twice) */
static gdouble
uniform (guint32 * s, gdouble a, gdouble b)
{
  return a + (b - a) * (rnd (s) % 100000) / 100000.0;
}

/* Words of 0.2-0.5 s, gaps of 0.05-0.15 s, sentences of 2-12 words
 * followed by 0.4-1.0 s of silence, until @total seconds.  Words repeat
 * (a vocabulary of 40), but never twice in a row: where windows are
 * stitched by text, "the the" cannot be told from one "the" heard twice
 * (a documented limit of the rule). */
static GArray *
make_script (guint32 seed, gdouble total)
{
  GArray *words = g_array_new (FALSE, FALSE, sizeof (Word));
  gdouble t = uniform (&seed, 0.1, 0.8);
  gint sentence = 0;

  while (TRUE) {
    gint n = 2 + rnd (&seed) % 11, i;

    for (i = 0; i < n; i++) {
      Word w;

      do
        w.text = vocab[rnd (&seed) % G_N_ELEMENTS (vocab)];
      while (words->len > 0 && g_str_equal (w.text,
              g_array_index (words, Word, words->len - 1).text));
      w.start = t;
      w.end = t + uniform (&seed, 0.2, 0.5);
      w.sentence = sentence;
      w.last_of_sentence = i == n - 1;
      if (w.end > total - 0.05) {
        if (words->len > 0)
          g_array_index (words, Word, words->len - 1).last_of_sentence = TRUE;
        return words;
      }
      g_array_append_val (words, w);
      t = w.end + uniform (&seed, 0.05, 0.15);
    }
    t += uniform (&seed, 0.4, 1.0);
    sentence++;
  }
}

/* The windows mmaudioenc makes of @total seconds: [k hop, k hop + window)
 * while they fit, then the audio not covered yet as a partial window from
 * the next start. */
static GArray *
make_windows (gdouble total, gdouble window, gdouble hop)
{
  GArray *w = g_array_new (FALSE, FALSE, sizeof (gdouble) * 2);
  gdouble start = 0.0, covered = 0.0;

  while (start + window <= total + 1e-9) {
    gdouble span[2] = { start, start + window };

    g_array_append_val (w, span);
    covered = start + window;
    start += hop;
  }
  if (total - MAX (covered, start) >= 0.02) {
    gdouble span[2] = { start, total };

    g_array_append_val (w, span);
  }
  return w;
}

static gchar *
word_form (const Word * w, gboolean cut, gboolean capital)
{
  gchar *s = g_strdup_printf ("%s%s", w->text, cut ? "~" :
      w->last_of_sentence ? "." : "");

  if (capital)
    s[0] = g_ascii_toupper (s[0]);
  return s;
}

typedef struct
{
  GArray *segments;             /* MmTranscriptSegment (text owned) */
  GString *text;
} SimResult;

static void
sim_clear (SimResult * r)
{
  guint i;

  for (i = 0; i < r->segments->len; i++)
    g_free ((gchar *) g_array_index (r->segments, MmTranscriptSegment, i).text);
  g_array_unref (r->segments);
  g_string_free (r->text, TRUE);
}

/* What the simulated Whisper hears in [w0, w1). */
static void
transcribe (const GArray * script, gdouble w0, gdouble w1, guint32 seed,
    SimResult * r)
{
  GString *seg = NULL;
  gdouble seg_t0 = 0.0;
  gint seg_sentence = -1;
  gboolean first_cut = FALSE;
  guint i;

  r->segments = g_array_new (FALSE, FALSE, sizeof (MmTranscriptSegment));
  r->text = g_string_new (NULL);
  for (i = 0; i <= script->len; i++) {
    const Word *w = i < script->len ? &g_array_index (script, Word, i) : NULL;
    gdouble inside = 0.0, frac;
    gboolean cut, split, close;

    if (w) {
      inside = MIN (w->end, w1) - MAX (w->start, w0);
      frac = inside / (w->end - w->start);
      if (frac < 0.3)
        w = NULL;               /* not heard (outside, or barely) */
    }
    split = seg && w && seg_sentence == w->sentence && rnd (&seed) % 4 == 0;
    close = seg && (w == NULL || w->sentence != seg_sentence || split);
    if (close) {
      const Word *last = NULL;
      MmTranscriptSegment s;
      guint j;

      /* the segment's last word: the heard word before @i */
      for (j = i; j > 0; j--) {
        const Word *c = &g_array_index (script, Word, j - 1);

        if (MIN (c->end, w1) - MAX (c->start, w0) >= 0.3 * (c->end - c->start)) {
          last = c;
          break;
        }
      }
      s.t0 = seg_t0;
      /* open when speech of the sentence goes on past the window */
      if (last->end > w1 || (!last->last_of_sentence && j < script->len
              && g_array_index (script, Word, j).start < w1 && w == NULL))
        s.t1 = MODEL_WINDOW;
      else
        s.t1 = last->end - w0 + uniform (&seed, -0.06, 0.06);
      s.t1 = MAX (s.t1, seg_t0);
      s.text = g_string_free (seg, FALSE);
      g_array_append_val (r->segments, s);
      seg = NULL;
    }
    if (w == NULL)
      continue;

    cut = w->start < w0 || w->end > w1;
    if (seg == NULL) {
      gchar *form = word_form (w, cut, TRUE);
      gdouble jitter;

      seg = g_string_new (" ");
      g_string_append (seg, form);
      g_free (form);
      seg_sentence = w->sentence;
      first_cut = w->start < w0;
      jitter = uniform (&seed, -0.06, 0.06);
      seg_t0 = first_cut ? 0.0 : MAX (0.0, w->start - w0 + jitter);
    } else {
      gchar *form = word_form (w, cut, FALSE);

      g_string_append_printf (seg, " %s", form);
      g_free (form);
    }
    {
      gchar *form = word_form (w, cut, FALSE);

      g_string_append_printf (r->text, " %s", form);
      g_free (form);
    }
  }
  (void) first_cut;
}

/* Words of the merged transcript, normalised as the truth is. */
static GPtrArray *
merged_words (GArray * pieces)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  guint i, j;

  for (i = 0; i < pieces->len; i++) {
    MmTranscriptPiece *p = &g_array_index (pieces, MmTranscriptPiece, i);
    gchar **parts = g_strsplit (p->text, " ", -1);

    for (j = 0; parts[j]; j++) {
      gchar *w = g_ascii_strdown (parts[j], -1);

      if (g_str_has_suffix (w, "."))
        w[strlen (w) - 1] = '\0';
      g_ptr_array_add (out, w);
    }
    g_strfreev (parts);
  }
  return out;
}

static gchar *
join (GPtrArray * words)
{
  g_ptr_array_add (words, NULL);
  gchar *s = g_strjoinv (" ", (gchar **) words->pdata);
  g_ptr_array_set_size (words, words->len - 1);
  return s;
}

typedef struct
{
  gdouble window, hop;
  gboolean timestamps;
  gint drop;                    /* index of a window lost on the way, or -1 */
  gboolean loose;               /* count errors instead of failing on one */
} Config;

/* Word edit distance (substitutions, insertions, deletions). */
static guint
edit_distance (GPtrArray * a, GPtrArray * b)
{
  guint *prev = g_new (guint, b->len + 1), *cur = g_new (guint, b->len + 1);
  guint i, j, d;

  for (j = 0; j <= b->len; j++)
    prev[j] = j;
  for (i = 1; i <= a->len; i++) {
    cur[0] = i;
    for (j = 1; j <= b->len; j++) {
      guint sub = prev[j - 1] + (g_str_equal (a->pdata[i - 1],
              b->pdata[j - 1]) ? 0 : 1);

      cur[j] = MIN (sub, MIN (prev[j], cur[j - 1]) + 1);
    }
    memcpy (prev, cur, (b->len + 1) * sizeof (guint));
  }
  d = prev[b->len];
  g_free (prev);
  g_free (cur);
  return d;
}

/* Merges the simulated windows of one script; checks the result, or
 * (loose) adds the word errors to @errors and the words to @words. */
static void
run_one (const Config * c, guint32 seed, gdouble total, guint * errors,
    guint * words)
{
  GArray *script = make_script (seed, total);
  GArray *spans = make_windows (total, c->window, c->hop);
  GArray *pieces = mm_transcript_pieces_new ();
  GPtrArray *want = g_ptr_array_new (), *got, *got_whole;
  MmTranscriptMerge *m = mm_transcript_merge_new ();
  gboolean overlap = c->hop < c->window && c->drop < 0;
  guint i, k, n_cut = 0, n_before;
  gboolean debug = g_getenv ("MERGE_DEBUG") != NULL;

  for (k = 0; k < spans->len; k++) {
    gdouble *span = &g_array_index (spans, gdouble, 2 * k);
    SimResult r;
    MmTranscriptWindow w = { 0, };

    if ((gint) k == c->drop)
      continue;
    transcribe (script, span[0], span[1], seed * 31 + k, &r);
    w.start = (gint64) (span[0] * NS + 0.5);
    w.end = (gint64) (span[1] * NS + 0.5);
    if (c->timestamps) {
      w.segments = (MmTranscriptSegment *) r.segments->data;
      w.n_segments = r.segments->len;
    }
    w.text = r.text->str;
    n_before = pieces->len;
    mm_transcript_merge_add (m, &w, pieces);
    if (debug) {
      g_print ("window [%.2f, %.2f)\n", span[0], span[1]);
      for (i = 0; i < r.segments->len; i++) {
        MmTranscriptSegment *s = &g_array_index (r.segments,
            MmTranscriptSegment, i);
        g_print ("  seg [%.2f, %.2f) %s\n", span[0] + s->t0, span[0] + s->t1,
            s->text);
      }
      for (i = n_before; i < pieces->len; i++) {
        MmTranscriptPiece *p = &g_array_index (pieces, MmTranscriptPiece, i);
        g_print ("  => [%.2f, %.2f) %s\n", p->start / NS, p->end / NS, p->text);
      }
    }
    sim_clear (&r);
  }
  mm_transcript_merge_flush (m, pieces);

  /* the words some window heard whole */
  for (i = 0; i < script->len; i++) {
    const Word *w = &g_array_index (script, Word, i);

    for (k = 0; k < spans->len; k++) {
      gdouble *span = &g_array_index (spans, gdouble, 2 * k);

      if ((gint) k != c->drop && w->start >= span[0] && w->end <= span[1]) {
        g_ptr_array_add (want, (gpointer) w->text);
        break;
      }
    }
  }

  got = merged_words (pieces);
  got_whole = g_ptr_array_new ();
  for (i = 0; i < got->len; i++) {
    if (g_str_has_suffix (got->pdata[i], "~"))
      n_cut++;
    else
      g_ptr_array_add (got_whole, got->pdata[i]);
  }
  if (c->loose) {
    *errors += edit_distance (got_whole, want) + n_cut;
    *words += want->len;
  } else {
    gchar *a = join (got_whole), *b = join (want);

    mm_check (g_strcmp0 (a, b) == 0, "window %.2f hop %.2f %s drop %d seed %u:"
        "\n got  %s\n want %s", c->window, c->hop, c->timestamps ?
        "timestamps" : "text", c->drop, seed, a, b);
    g_free (a);
    g_free (b);
  }
  if (overlap && !c->loose)
    mm_check (n_cut == 0, "window %.2f hop %.2f %s seed %u: %u cut word(s)",
        c->window, c->hop, c->timestamps ? "timestamps" : "text", seed, n_cut);

  /* pieces in order, never overlapping, inside the stream */
  for (i = 0; i < pieces->len; i++) {
    MmTranscriptPiece *p = &g_array_index (pieces, MmTranscriptPiece, i);

    mm_check (p->start <= p->end && p->start >= 0
        && p->end <= (gint64) (total * NS + 0.5), "piece %u: %" G_GINT64_FORMAT
        " - %" G_GINT64_FORMAT, i, p->start, p->end);
    mm_check (p->text[0] != '\0' && p->text[0] != ' ', "piece %u: \"%s\"", i,
        p->text);
    if (i > 0)
      mm_check (p->start >= g_array_index (pieces, MmTranscriptPiece,
              i - 1).end, "piece %u starts before the previous one ends", i);
  }

  g_ptr_array_unref (got_whole);
  g_ptr_array_unref (got);
  g_ptr_array_unref (want);
  mm_transcript_merge_free (m);
  g_array_unref (pieces);
  g_array_unref (spans);
  g_array_unref (script);
}

/* Every configuration on many scripts: exact from 5 s windows up; with
 * 3 s windows (sentences longer than the window, an overlap of four
 * words) at most 1 word in 100 wrong. */
static void
test_scripts (void)
{
  static const Config configs[] = {
    {10, 5, TRUE, -1}, {10, 5, FALSE, -1},
    {10, 2, TRUE, -1}, {10, 2, FALSE, -1},
    {10, 7, TRUE, -1}, {10, 7, FALSE, -1},
    {30, 10, TRUE, -1}, {30, 10, FALSE, -1},
    {5, 2.5, TRUE, -1}, {5, 2.5, FALSE, -1},
    {3, 1.5, TRUE, -1, TRUE}, {3, 1.5, FALSE, -1, TRUE},
    /* no overlap, and a window lost (leaky) */
    {10, 10, TRUE, -1}, {10, 10, FALSE, -1},
    {10, 5, TRUE, 3}, {10, 5, FALSE, 3},
  };
  guint i, seed, errors, words;

  const gchar *only = g_getenv ("MERGE_DEBUG");

  if (only) {                   /* "window hop timestamps drop seed" */
    Config c;
    gint ts;

    if (sscanf (only, "%lf %lf %d %d %u", &c.window, &c.hop, &ts, &c.drop,
            &seed) == 5) {
      c.timestamps = ts;
      c.loose = FALSE;
      run_one (&c, seed, 20.0 + seed % 7 * 3.3, NULL, NULL);
    }
    return;
  }
  for (i = 0; i < G_N_ELEMENTS (configs); i++) {
    errors = words = 0;
    for (seed = 1; seed <= 40; seed++)
      run_one (&configs[i], seed, 20.0 + seed % 7 * 3.3, &errors, &words);
    if (configs[i].loose) {
      g_print ("window %.1f hop %.1f %s: %u word errors in %u words\n",
          configs[i].window, configs[i].hop, configs[i].timestamps ?
          "timestamps" : "text", errors, words);
      mm_check (errors * 100 <= words, "more than 1 %% of the words wrong");
    }
  }
}

/* A window without any text (silence) commits nothing and keeps nothing;
 * the held segment of the window before it is dropped when the silent
 * window covers it, committed when there is no overlap. */
static void
test_silence_and_flush (void)
{
  MmTranscriptMerge *m = mm_transcript_merge_new ();
  GArray *out = mm_transcript_pieces_new ();
  MmTranscriptSegment a[] = { {0.5, 2.0, " One two."}, {7.0, 30.0,
      " three four"}
  };
  MmTranscriptWindow w = { 0, 10 * 1000000000LL, a, 2, NULL };

  mm_check (mm_transcript_merge_add (m, &w, out) == 1, "first segment");
  mm_check (out->len == 1 && g_str_equal (g_array_index (out, MmTranscriptPiece,
              0).text, "One two."), "text");
  mm_check (g_array_index (out, MmTranscriptPiece, 0).start == 500000000LL
      && g_array_index (out, MmTranscriptPiece, 0).end == 2000000000LL,
      "absolute times");

  /* the open segment is held; EOS commits it whole, ending at the audio */
  mm_check (mm_transcript_merge_flush (m, out) == 1, "flush");
  mm_check (out->len == 2 && g_str_equal (g_array_index (out, MmTranscriptPiece,
              1).text, "three four"), "held text");
  mm_check (g_array_index (out, MmTranscriptPiece, 1).end == 10000000000LL,
      "open segment ends with the audio");

  /* after the flush, a new stream starts from nothing */
  g_array_set_size (out, 0);
  w.start = 0;
  w.end = 10 * 1000000000LL;
  mm_transcript_merge_add (m, &w, out);
  mm_check (out->len == 1, "new stream");

  /* silence covering the held segment: nothing */
  g_array_set_size (out, 0);
  w.start = 5 * 1000000000LL;
  w.end = 15 * 1000000000LL;
  w.segments = NULL;
  w.n_segments = 0;
  w.text = "";
  mm_check (mm_transcript_merge_add (m, &w, out) == 0, "silence");
  mm_check (mm_transcript_merge_flush (m, out) == 0, "nothing held");

  g_array_unref (out);
  mm_transcript_merge_free (m);
}

/* Real tiny.en output on espeak-ng speech, windows of 10 s every 8 s: the
 * second window's first segment starts at the window's start (Whisper's
 * first timestamp) although the speech it holds starts later; its words
 * before the committed end are new, not repeats, and must stay. */
static void
test_first_segment_at_window_start (void)
{
  MmTranscriptMerge *m = mm_transcript_merge_new ();
  GArray *out = mm_transcript_pieces_new ();
  MmTranscriptSegment a[] = { {0.00, 3.20, " Good morning."},
  {3.20, 5.80, " Please open the window and close the door."},
  {5.80, 8.56, " My sister will make some tea for us after lunch."},
  {8.56, 10.12, " We are going to visit our friend."}
  };
  MmTranscriptSegment b[] = {
    {0.00, 3.48, " We are going to visit our friends in the city next week."},
    {3.48, 6.12, " The children like to play football in the park."}
  };
  MmTranscriptWindow w1 = { 0, 10 * 1000000000LL, a, 4, NULL };
  MmTranscriptWindow w2 = { 8 * 1000000000LL, 18 * 1000000000LL, b, 2, NULL };
  GPtrArray *words;
  gchar *text;

  mm_transcript_merge_add (m, &w1, out);
  mm_transcript_merge_add (m, &w2, out);
  mm_transcript_merge_flush (m, out);
  words = merged_words (out);
  text = join (words);
  mm_check (g_str_equal (text, "good morning please open the window and close "
          "the door my sister will make some tea for us after lunch we are "
          "going to visit our friends in the city next week the children "
          "like to play football in the park"), "first segment at the "
      "window start keeps its words: %s", text);
  g_free (text);
  g_ptr_array_unref (words);
  g_array_unref (out);
  mm_transcript_merge_free (m);
}

/* Segments that cannot be placed (backwards, after the window) fall back
 * to the text; the same window twice adds nothing. */
static void
test_unusable_timestamps (void)
{
  MmTranscriptMerge *m = mm_transcript_merge_new ();
  GArray *out = mm_transcript_pieces_new ();
  MmTranscriptSegment bad[] = { {3.0, 1.0, " alpha beta"} };
  MmTranscriptWindow w = { 0, 4 * 1000000000LL, bad, 1,
    " alpha beta gamma"
  };

  mm_transcript_merge_add (m, &w, out);
  mm_check (out->len == 1 && g_str_equal (g_array_index (out, MmTranscriptPiece,
              0).text, "alpha beta"), "text fallback, last word held: %s",
      out->len ? g_array_index (out, MmTranscriptPiece, 0).text : "");
  mm_transcript_merge_add (m, &w, out);
  mm_check (out->len == 1, "the same window again adds nothing");
  mm_transcript_merge_flush (m, out);
  mm_check (out->len == 2 && g_str_equal (g_array_index (out, MmTranscriptPiece,
              1).text, "gamma"), "flush commits the held word");

  /* hostile values: NaN, infinities, a window that ends before it starts,
   * invalid UTF-8; pieces stay inside the windows, in order */
  {
    MmTranscriptSegment odd[] = { {0.0, INFINITY, " one"},
    {1e300, 1e301, " two"}, {NAN, NAN, " three"}
    };
    MmTranscriptSegment huge[] = { {0.5, 1e300, " four \xff five"} };
    MmTranscriptWindow ws[] = {
      {10 * 1000000000LL, 12 * 1000000000LL, odd, 3, " one two three"},
      {11 * 1000000000LL, 13 * 1000000000LL, huge, 1, NULL},
      {14 * 1000000000LL, 13 * 1000000000LL, NULL, 0, " six"},
    };
    guint i;

    g_array_set_size (out, 0);
    for (i = 0; i < G_N_ELEMENTS (ws); i++)
      mm_transcript_merge_add (m, &ws[i], out);
    mm_transcript_merge_flush (m, out);
    mm_check (out->len > 0, "hostile values: no pieces");
    for (i = 0; i < out->len; i++) {
      MmTranscriptPiece *p = &g_array_index (out, MmTranscriptPiece, i);

      mm_check (p->start >= 10 * 1000000000LL && p->end <= 14 * 1000000000LL
          && p->start <= p->end && g_utf8_validate (p->text, -1, NULL),
          "hostile piece %u: %" G_GINT64_FORMAT " - %" G_GINT64_FORMAT
          " \"%s\"", i, p->start, p->end, p->text);
    }
  }

  g_array_unref (out);
  mm_transcript_merge_free (m);
}

int
main (void)
{
  test_silence_and_flush ();
  test_unusable_timestamps ();
  test_first_segment_at_window_start ();
  test_scripts ();
  if (!mm_test_failed)
    g_print ("PASS\n");
  return mm_test_failed ? 1 : 0;
}
