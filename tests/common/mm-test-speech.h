/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Speech for the real-weights Whisper tests: sentences synthesised with
 * espeak-ng, a WAV reader, and transcripts compared word by word.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS
/* The espeak-ng program ($MM_ESPEAK, else espeak-ng in $PATH), or NULL. */
gchar *mm_test_espeak_find (void);

/* Speaks @text into @wav with espeak-ng's American English voice at its
 * default speed (a 22.05 kHz mono 16-bit WAV file). */
gboolean mm_test_espeak (const gchar * espeak, const gchar * text,
    const gchar * wav, GError ** error);

/* The samples of a 16-bit PCM WAV file as floats in [-1, 1), channels
 * averaged: (transfer full) g_free() them. */
float *mm_test_wav_read (const gchar * path, gint * rate, gsize * n,
    GError ** error);

/* The words of @text in lower case: runs of ASCII letters and digits;
 * apostrophes vanish ("It's" -> "its"), anything else separates.
 * (transfer full) g_strfreev(). */
gchar **mm_test_words (const gchar * text);

/* Word errors of @got against @want: the Levenshtein distance over words
 * (substitutions, insertions and deletions each count 1). */
guint mm_test_word_errors (gchar ** want, gchar ** got);

/* How often @word occurs in @words. */
guint mm_test_word_count (gchar ** words, const gchar * word);

G_END_DECLS
