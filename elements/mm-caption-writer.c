/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Caption files: JSON Lines, WebVTT and SRT, flushed per caption.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>
#ifdef G_OS_UNIX
#include <unistd.h>
#endif

#include "mm-caption-writer.h"

struct _MmCaptionWriter
{
  gchar *location;
  FILE *file;
  MmCaptionFormat format;
  guint64 n_entries;            /* JSON Lines */
  guint64 n_cues;               /* WebVTT, SRT */
};

MmCaptionFormat
mm_caption_format_resolve (MmCaptionFormat format, const gchar * location)
{
  const gchar *dot;

  if (format != MM_CAPTION_FORMAT_AUTO)
    return format;
  if (location == NULL)
    return MM_CAPTION_FORMAT_JSONL;

  dot = strrchr (location, '.');
  if (dot && strchr (dot, G_DIR_SEPARATOR) == NULL) {
    if (g_ascii_strcasecmp (dot, ".vtt") == 0
        || g_ascii_strcasecmp (dot, ".webvtt") == 0)
      return MM_CAPTION_FORMAT_WEBVTT;
    if (g_ascii_strcasecmp (dot, ".srt") == 0)
      return MM_CAPTION_FORMAT_SRT;
  }
  return MM_CAPTION_FORMAT_JSONL;
}

const gchar *
mm_caption_format_header (MmCaptionFormat format)
{
  return format == MM_CAPTION_FORMAT_WEBVTT ? "WEBVTT\n\n" : "";
}

const gchar *
mm_caption_format_time (GstClockTime t, gchar sep, gchar * buf)
{
  guint64 ms = GST_CLOCK_TIME_IS_VALID (t) ? t / GST_MSECOND : 0;

  g_snprintf (buf, 32, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      sep, (guint) (ms % 1000));
  return buf;
}

/* Appends @s as a JSON string literal (quotes included). */
static void
append_json_string (GString * out, const gchar * s)
{
  const gchar *p;

  if (s == NULL) {
    g_string_append (out, "null");
    return;
  }

  g_string_append_c (out, '"');
  for (p = s; *p; p++) {
    guchar c = (guchar) * p;

    switch (c) {
      case '"':
        g_string_append (out, "\\\"");
        break;
      case '\\':
        g_string_append (out, "\\\\");
        break;
      case '\n':
        g_string_append (out, "\\n");
        break;
      case '\r':
        g_string_append (out, "\\r");
        break;
      case '\t':
        g_string_append (out, "\\t");
        break;
      default:
        if (c < 0x20)
          g_string_append_printf (out, "\\u%04x", c);
        else
          g_string_append_c (out, (gchar) c);
        break;
    }
  }
  g_string_append_c (out, '"');
}

/* Seconds with millisecond precision in the C locale, or null. */
static void
append_json_seconds (GString * out, GstClockTime t)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!GST_CLOCK_TIME_IS_VALID (t)) {
    g_string_append (out, "null");
    return;
  }
  g_string_append (out, g_ascii_formatd (buf, sizeof (buf), "%.3f",
          (gdouble) (t / GST_MSECOND) / 1000.0));
}

static gchar *
format_jsonl (const MmCaption * c, guint64 index)
{
  GString *out = g_string_new (NULL);
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, "{\"index\":%" G_GUINT64_FORMAT ",\"start\":",
      index);
  append_json_seconds (out, c->start);
  g_string_append (out, ",\"end\":");
  append_json_seconds (out, c->end);
  g_string_append (out, ",\"text\":");
  append_json_string (out, c->text ? c->text : "");
  g_string_append (out, ",\"prompt\":");
  append_json_string (out, c->prompt);
  g_string_append (out, ",\"model\":");
  append_json_string (out, c->model);
  g_string_append (out, ",\"latency_ms\":");
  if (GST_CLOCK_TIME_IS_VALID (c->latency))
    g_string_append (out, g_ascii_formatd (buf, sizeof (buf), "%.1f",
            (gdouble) c->latency / GST_MSECOND));
  else
    g_string_append (out, "null");
  g_string_append_printf (out, ",\"prompt_tokens\":%d,\"generated_tokens\":%d"
      ",\"reused_tokens\":%d", c->prompt_tokens, c->generated_tokens,
      c->reused_tokens);
  if (c->task) {
    guint i;

    g_string_append (out, ",\"task\":");
    append_json_string (out, c->task);
    g_string_append (out, ",\"language\":");
    append_json_string (out, c->language);
    g_string_append (out, ",\"segments\":[");
    for (i = 0; i < c->n_segments; i++) {
      g_string_append (out, i > 0 ? ",{\"start\":" : "{\"start\":");
      append_json_seconds (out, c->segments[i].start);
      g_string_append (out, ",\"end\":");
      append_json_seconds (out, c->segments[i].end);
      g_string_append (out, ",\"text\":");
      append_json_string (out, c->segments[i].text ? c->segments[i].text : "");
      g_string_append_c (out, '}');
    }
    g_string_append_c (out, ']');
  }
  g_string_append (out, "}\n");

  return g_string_free (out, FALSE);
}

/* Cue text: control characters dropped (tabs become spaces), trimmed,
 * no empty lines (they end a cue), and for WebVTT with '&', '<' and '>'
 * escaped (which also rules out "-->").  NULL when nothing is left to
 * show. */
static gchar *
cue_text (const gchar * text, gboolean webvtt)
{
  gchar **lines, *clean;
  GString *out;
  guint i, j;

  if (text == NULL)
    return NULL;

  clean = g_strdup (text);
  for (i = j = 0; clean[i]; i++) {
    guchar c = (guchar) clean[i];

    if (c == '\t')
      clean[j++] = ' ';
    else if ((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\r')
      clean[j++] = clean[i];
  }
  clean[j] = '\0';

  out = g_string_new (NULL);
  lines = g_strsplit_set (clean, "\r\n", -1);
  g_free (clean);
  for (i = 0; lines[i]; i++) {
    const gchar *p;

    g_strstrip (lines[i]);
    if (lines[i][0] == '\0')
      continue;
    if (out->len > 0)
      g_string_append_c (out, '\n');
    for (p = lines[i]; *p; p++) {
      if (webvtt && *p == '&')
        g_string_append (out, "&amp;");
      else if (webvtt && *p == '<')
        g_string_append (out, "&lt;");
      else if (webvtt && *p == '>')
        g_string_append (out, "&gt;");
      else
        g_string_append_c (out, *p);
    }
  }
  g_strfreev (lines);

  if (out->len == 0) {
    g_string_free (out, TRUE);
    return NULL;
  }
  return g_string_free (out, FALSE);
}

/* One cue of @text over [start, end) numbered @index + 1 (SRT); NULL
 * when @text has nothing to show. */
static gchar *
format_cue (MmCaptionFormat format, const gchar * cue, GstClockTime start,
    GstClockTime end, guint64 index)
{
  gboolean webvtt = format == MM_CAPTION_FORMAT_WEBVTT;
  gchar sep = webvtt ? '.' : ',';
  gchar a[32], b[32];
  gchar *text, *entry;

  text = cue_text (cue, webvtt);
  if (text == NULL)
    return NULL;

  start = GST_CLOCK_TIME_IS_VALID (start) ? start : 0;
  /* a cue must end after it starts, in whole milliseconds */
  if (!GST_CLOCK_TIME_IS_VALID (end)
      || end / GST_MSECOND <= start / GST_MSECOND)
    end = start + MM_CAPTION_MIN_CUE;

  mm_caption_format_time (start, sep, a);
  mm_caption_format_time (end, sep, b);
  if (webvtt)
    entry = g_strdup_printf ("%s --> %s\n%s\n\n", a, b, text);
  else
    entry = g_strdup_printf ("%" G_GUINT64_FORMAT "\n%s --> %s\n%s\n\n",
        index + 1, a, b, text);
  g_free (text);

  return entry;
}

/* The cues of @c: one, or one per segment. */
static gchar *
format_cues (MmCaptionFormat format, const MmCaption * c, guint64 index,
    guint * n_cues)
{
  GString *out;
  guint i;

  if (c->n_segments == 0) {
    gchar *cue = format_cue (format, c->text, c->start, c->end, index);

    *n_cues = cue ? 1 : 0;
    return cue;
  }

  out = g_string_new (NULL);
  *n_cues = 0;
  for (i = 0; i < c->n_segments; i++) {
    gchar *cue = format_cue (format, c->segments[i].text,
        c->segments[i].start, c->segments[i].end, index + *n_cues);

    if (cue) {
      g_string_append (out, cue);
      (*n_cues)++;
      g_free (cue);
    }
  }
  if (*n_cues == 0) {
    g_string_free (out, TRUE);
    return NULL;
  }
  return g_string_free (out, FALSE);
}

gchar *
mm_caption_format_entry_full (MmCaptionFormat format, const MmCaption * c,
    guint64 index, guint * n_cues)
{
  guint n = 0;
  gchar *entry;

  g_return_val_if_fail (c != NULL, NULL);

  switch (format) {
    case MM_CAPTION_FORMAT_WEBVTT:
    case MM_CAPTION_FORMAT_SRT:
      entry = format_cues (format, c, index, &n);
      break;
    case MM_CAPTION_FORMAT_AUTO:
    case MM_CAPTION_FORMAT_JSONL:
    default:
      entry = format_jsonl (c, index);
      break;
  }
  if (n_cues)
    *n_cues = n;
  return entry;
}

gchar *
mm_caption_format_entry (MmCaptionFormat format, const MmCaption * c,
    guint64 index)
{
  return mm_caption_format_entry_full (format, c, index, NULL);
}

/* Writes @s and pushes it to the disk. */
static gboolean
writer_put (MmCaptionWriter * w, const gchar * s, GError ** error)
{
  gsize len = strlen (s);

  if ((len > 0 && fwrite (s, 1, len, w->file) != len)
      || fflush (w->file) != 0) {
    int err = errno;

    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not write to caption file \"%s\": %s", w->location,
        g_strerror (err));
    return FALSE;
  }
#ifdef G_OS_UNIX
  /* best effort: some files (pipes, /dev/stdout) cannot be synced */
  (void) fsync (fileno (w->file));
#endif
  return TRUE;
}

MmCaptionWriter *
mm_caption_writer_open (const gchar * location, MmCaptionFormat format,
    GError ** error)
{
  MmCaptionWriter *w;
  FILE *file;

  g_return_val_if_fail (location != NULL, NULL);

  file = g_fopen (location, "wb");
  if (file == NULL) {
    int err = errno;

    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not open caption file \"%s\" for writing: %s", location,
        g_strerror (err));
    return NULL;
  }

  w = g_new0 (MmCaptionWriter, 1);
  w->location = g_strdup (location);
  w->file = file;
  w->format = mm_caption_format_resolve (format, location);

  if (!writer_put (w, mm_caption_format_header (w->format), error)) {
    mm_caption_writer_close (w);
    return NULL;
  }
  return w;
}

MmCaptionFormat
mm_caption_writer_format (MmCaptionWriter * w)
{
  return w->format;
}

gboolean
mm_caption_writer_write (MmCaptionWriter * w, const MmCaption * c,
    GError ** error)
{
  gboolean jsonl = w->format != MM_CAPTION_FORMAT_WEBVTT
      && w->format != MM_CAPTION_FORMAT_SRT;
  gchar *entry;
  guint n_cues;
  gboolean ok;

  g_return_val_if_fail (w != NULL && c != NULL, FALSE);

  entry = mm_caption_format_entry_full (w->format, c, jsonl ? w->n_entries :
      w->n_cues, &n_cues);
  if (entry == NULL)
    return TRUE;                /* nothing to show in a cue */

  ok = writer_put (w, entry, error);
  g_free (entry);
  if (ok) {
    w->n_entries++;
    w->n_cues += n_cues;
  }
  return ok;
}

void
mm_caption_writer_close (MmCaptionWriter * w)
{
  if (w == NULL)
    return;
  if (w->file)
    fclose (w->file);
  g_free (w->location);
  g_free (w);
}
