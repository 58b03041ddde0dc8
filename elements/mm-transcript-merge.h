/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Merging the transcripts of overlapping audio windows into one running
 * transcript (mmllmsink with a Whisper model).  Plain C over GLib: no
 * GStreamer, no OpenCL, so the rule is tested on synthetic windows.
 *
 * Input: the windows of one stream in order, each with its audio span
 * [start, end) on the stream's timeline (nanoseconds) and what Whisper
 * made of it: segments with timestamps relative to the window's start
 * (seconds), or only the text.  Output: pieces of text with absolute
 * times, each committed once, in order; nothing is repeated and a word
 * cut by a window edge is not committed when a later window sees it
 * whole.
 *
 * The rule.  Times below are absolute (window start + t0/t1, clamped to
 * the window's audio).  `tol` is min(0.2 s, window / 20) and `edge`
 * min(0.5 s, window / 8), window being the window's duration.  Inside a
 * piece, word times are estimated in proportion to characters.
 *
 * 1. Committed: everything up to `committed_end`, and the newest words
 *    committed (the tail: normalised to lower-case letters and digits,
 *    with their estimated times).
 * 2. With timestamps, each segment of the window in order:
 *    - starting after the window's audio (in the zero padding of a short
 *      window): ignored, with the ones after it;
 *    - empty text, or ending before committed_end - tol: skipped (an
 *      earlier window committed it);
 *    - ending within `edge` of the window's end (an open segment, which
 *      Whisper ends at the end of the window, included): this segment and
 *      the ones after it are held back, as they may be cut; the next
 *      window transcribes that audio again;
 *    - otherwise committed.  A segment that starts before committed_end
 *      overlaps committed text: its leading words that repeat the tail
 *      are dropped: after the longest run of its words equal to the tail's
 *      newest words, where the times allow it (the run starts before
 *      committed_end, or is the first word of a segment that starts with
 *      its window; the tail's words end after the segment starts); among
 *      equal runs the one nearest to where committed_end falls.  With no
 *      such run, the words that end before committed_end are dropped.
 * 3. Held segments, when the next window arrives:
 *    - it starts before the held segment (by tol): dropped, the new window
 *      has it whole;
 *    - it starts later but before the old window's end - tol: committed
 *      without its last word (which may be cut; committed_end becomes that
 *      word's estimated start); the new window saw the rest, and its
 *      overlapping segment supplies that word through the rule above;
 *    - it starts after the old window's end (no overlap: a gap, a dropped
 *      window, or hop >= window): committed whole, nothing else saw it.
 * 4. Without usable timestamps (no segments, or times that go
 *    backwards), the window's text is one piece spanning the
 *    window: its words that repeat the tail are dropped as in 2 (a run of
 *    one word only counts as the piece's first or second word, and
 *    without a run nothing is dropped: times estimated over a whole
 *    window are too rough), and its last word is held back as in 3.
 * 5. mm_transcript_merge_flush() (end of stream) commits whatever is
 *    held, whole.
 *
 * Limits: words are split at white space, so scripts written without
 * spaces dedupe per segment; a word said twice in a row where two windows
 * are stitched by text ("the the") may come out once; windows that
 * overlap by less than a word or two cannot repair a word cut at the
 * edge; with no overlap at all (hop >= window) words at the edges stay as
 * cut as Whisper heard them.  tests/elements/test_transcript_merge.c
 * measures the rule on simulated speech: exact with windows of 5 s and
 * more, fewer than 1 word in 300 wrong with 3 s windows.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One timestamped segment of a window. */
typedef struct
{
  gdouble t0, t1;               /* seconds from the window's start */
  const gchar *text;
} MmTranscriptSegment;

/* One window's transcription. */
typedef struct
{
  gint64 start, end;            /* ns: the window's audio */
  const MmTranscriptSegment *segments;  /* in order; NULL/0: none */
  guint n_segments;
  const gchar *text;            /* the whole text, used without usable
                                 * segments (nullable) */
} MmTranscriptWindow;

/* A committed piece of transcript. */
typedef struct
{
  gint64 start, end;            /* ns; pieces never overlap */
  gchar *text;                  /* words separated by single spaces */
} MmTranscriptPiece;

/* A GArray of MmTranscriptPiece that frees their text. */
GArray *mm_transcript_pieces_new (void);

typedef struct _MmTranscriptMerge MmTranscriptMerge;

MmTranscriptMerge *mm_transcript_merge_new (void);
void mm_transcript_merge_free (MmTranscriptMerge * m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmTranscriptMerge, mm_transcript_merge_free)

/* Forgets everything (a new stream, a flush). */
void mm_transcript_merge_reset (MmTranscriptMerge * m);

/* Takes the next window and appends what it commits to @out (a
 * mm_transcript_pieces_new() array); returns how many pieces. */
guint mm_transcript_merge_add (MmTranscriptMerge * m,
    const MmTranscriptWindow * w, GArray * out);

/* End of stream: commits what is held back, then resets. */
guint mm_transcript_merge_flush (MmTranscriptMerge * m, GArray * out);

G_END_DECLS
