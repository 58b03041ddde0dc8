/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Caption files for mmllmsink: JSON Lines, WebVTT and SRT.
 *
 * Each caption is written and flushed (fflush + fsync) as soon as it is
 * known, so a crash loses nothing already written.  WebVTT and SRT files
 * are valid after every cue; JSON Lines files hold one complete JSON
 * object per line.
 *
 * The formatting functions are separate from the file so tests check the
 * exact text without touching the disk.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* Values are those of the element's `format` enum property. */
typedef enum
{
  MM_CAPTION_FORMAT_AUTO = 0,
  MM_CAPTION_FORMAT_JSONL = 1,
  MM_CAPTION_FORMAT_WEBVTT = 2,
  MM_CAPTION_FORMAT_SRT = 3,
} MmCaptionFormat;

/* A timed part of a caption: the segments of a transcript. */
typedef struct
{
  GstClockTime start, end;      /* PTS */
  gchar *text;
} MmCaptionSegment;

/* One caption; times are PTS in nanoseconds (GST_CLOCK_TIME_NONE when
 * unknown).  Strings are borrowed. */
typedef struct
{
  const gchar *text;
  const gchar *prompt;          /* nullable */
  const gchar *model;           /* nullable */
  GstClockTime start, end;
  GstClockTime latency;
  gint prompt_tokens, generated_tokens, reused_tokens;
  /* transcripts (Whisper) only, else NULL/0 */
  const MmCaptionSegment *segments;
  guint n_segments;
  const gchar *task;            /* "transcribe" or "translate" */
  const gchar *language;        /* nullable */
} MmCaption;

/* Shortest cue written to WebVTT/SRT when a caption's span is empty or
 * its end is unknown. */
#define MM_CAPTION_MIN_CUE (GST_SECOND)

/* @format, or for AUTO the format named by the file extension of
 * @location (.vtt/.webvtt, .srt; anything else is JSON Lines). */
MmCaptionFormat mm_caption_format_resolve (MmCaptionFormat format,
    const gchar * location);

/* Text written once at the start of a file ("WEBVTT\n\n"), or "". */
const gchar *mm_caption_format_header (MmCaptionFormat format);

/* The text of one entry, newly allocated.  JSON Lines: one line, whose
 * "index" is @index (the entries written before); with segments it also
 * holds "task", "language" and "segments" (start, end, text of each).
 * WebVTT and SRT: one cue, or with segments one cue per segment with the
 * segment's times; SRT numbers them from @index + 1 (@index counts the
 * cues written before).  *@n_cues (nullable) is set to the cues
 * written.  Returns NULL for a caption that has no text to show in a cue
 * format. */
gchar *mm_caption_format_entry (MmCaptionFormat format, const MmCaption * c,
    guint64 index);
gchar *mm_caption_format_entry_full (MmCaptionFormat format,
    const MmCaption * c, guint64 index, guint * n_cues);

/* "HH:MM:SS.mmm" (WebVTT, @sep '.') or "HH:MM:SS,mmm" (SRT, @sep ','),
 * into @buf of at least 32 bytes. */
const gchar *mm_caption_format_time (GstClockTime t, gchar sep, gchar * buf);

typedef struct _MmCaptionWriter MmCaptionWriter;

/* Creates (truncates) @location and writes the format's header.  @format
 * may be AUTO. */
MmCaptionWriter *mm_caption_writer_open (const gchar * location,
    MmCaptionFormat format, GError ** error);
MmCaptionFormat mm_caption_writer_format (MmCaptionWriter * w);
/* Appends @c and flushes it to the disk. */
gboolean mm_caption_writer_write (MmCaptionWriter * w, const MmCaption * c,
    GError ** error);
void mm_caption_writer_close (MmCaptionWriter * w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmCaptionWriter, mm_caption_writer_close)

G_END_DECLS
