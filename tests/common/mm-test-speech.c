/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-test-speech.h"

#include <string.h>

gchar *
mm_test_espeak_find (void)
{
  const gchar *env = g_getenv ("MM_ESPEAK");

  if (env && *env)
    return g_find_program_in_path (env);
  return g_find_program_in_path ("espeak-ng");
}

gboolean
mm_test_espeak (const gchar * espeak, const gchar * text, const gchar * wav,
    GError ** error)
{
  const gchar *argv[] = { espeak, "-v", "en-us", "-w", wav, text, NULL };
  gchar *err_out = NULL;
  gint status = 0;
  gboolean ok;

  ok = g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
      NULL, NULL, NULL, &err_out, &status, error)
      && g_spawn_check_wait_status (status, error);
  if (!ok && error && *error)
    g_prefix_error (error, "%s -v en-us -w %s: %s", espeak, wav,
        err_out ? err_out : "");
  g_free (err_out);
  return ok;
}

static guint32
le32 (const guint8 * p)
{
  return p[0] | p[1] << 8 | p[2] << 16 | (guint32) p[3] << 24;
}

static guint16
le16 (const guint8 * p)
{
  return p[0] | p[1] << 8;
}

float *
mm_test_wav_read (const gchar * path, gint * rate, gsize * n, GError ** error)
{
  guint8 *d = NULL;
  gsize len = 0, o = 12;
  guint16 fmt = 0, channels = 0, bits = 0;
  const guint8 *data = NULL;
  gsize data_len = 0;
  float *out;

  if (!g_file_get_contents (path, (gchar **) & d, &len, error))
    return NULL;
  if (len < 12 || memcmp (d, "RIFF", 4) || memcmp (d + 8, "WAVE", 4)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s: not a RIFF WAVE file", path);
    g_free (d);
    return NULL;
  }
  while (o + 8 <= len) {
    guint32 size = le32 (d + o + 4);
    gsize avail = MIN ((gsize) size, len - o - 8);

    if (!memcmp (d + o, "fmt ", 4) && avail >= 16) {
      fmt = le16 (d + o + 8);
      channels = le16 (d + o + 10);
      *rate = le32 (d + o + 12);
      bits = le16 (d + o + 22);
    } else if (!memcmp (d + o, "data", 4)) {
      data = d + o + 8;
      data_len = avail;         /* a streamed header may claim more */
      break;
    }
    o += 8 + (gsize) size + (size & 1);
  }
  if (fmt != 1 || bits != 16 || channels == 0 || *rate <= 0 || !data) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s: not 16-bit PCM (format %u, %u bits, %u channels) or no data",
        path, fmt, bits, channels);
    g_free (d);
    return NULL;
  }
  *n = data_len / (2u * channels);
  out = g_new (float, MAX (*n, 1));
  for (gsize i = 0; i < *n; i++) {
    float s = 0;

    for (guint c = 0; c < channels; c++)
      s += (gint16) le16 (data + 2 * (i * channels + c)) / 32768.0f;
    out[i] = s / channels;
  }
  g_free (d);
  return out;
}

gchar **
mm_test_words (const gchar * text)
{
  GPtrArray *words = g_ptr_array_new ();
  GString *w = g_string_new (NULL);

  for (const gchar * p = text;; p++) {
    if (*p && g_ascii_isalnum (*p)) {
      g_string_append_c (w, g_ascii_tolower (*p));
      continue;
    }
    if (*p == '\'')
      continue;
    if (w->len)
      g_ptr_array_add (words, g_strdup (w->str));
    g_string_truncate (w, 0);
    if (!*p)
      break;
  }
  g_string_free (w, TRUE);
  g_ptr_array_add (words, NULL);
  return (gchar **) g_ptr_array_free (words, FALSE);
}

guint
mm_test_word_errors (gchar ** want, gchar ** got)
{
  guint n = g_strv_length (want), m = g_strv_length (got);
  guint *prev = g_new (guint, m + 1), *cur = g_new (guint, m + 1), *t;
  guint d;

  for (guint j = 0; j <= m; j++)
    prev[j] = j;
  for (guint i = 1; i <= n; i++) {
    cur[0] = i;
    for (guint j = 1; j <= m; j++) {
      guint sub = prev[j - 1] + (strcmp (want[i - 1], got[j - 1]) != 0);

      cur[j] = MIN (sub, MIN (prev[j], cur[j - 1]) + 1);
    }
    t = prev;
    prev = cur;
    cur = t;
  }
  d = prev[m];
  g_free (prev);
  g_free (cur);
  return d;
}

guint
mm_test_word_count (gchar ** words, const gchar * word)
{
  guint n = 0;

  for (guint i = 0; words[i]; i++)
    n += strcmp (words[i], word) == 0;
  return n;
}
