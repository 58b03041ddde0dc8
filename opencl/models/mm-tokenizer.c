/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tokenizer core: vocabulary, construction from plain data, special tokens
 * and decoding.  Encoding is in mm-tokenizer-encode.c, pre-tokenization in
 * mm-tokenizer-pre.c, tokenizer.json in mm-tokenizer-hf.c.
 */
#include "mm-tokenizer-private.h"

#include <stdio.h>
#include <string.h>

GQuark
mm_tokenizer_error_quark (void)
{
  return g_quark_from_static_string ("mm-tokenizer-error-quark");
}

/* ---- hash maps ------------------------------------------------------- */

static guint32
hash_bytes (const gchar * s, gsize len)
{
  guint64 h = 0xcbf29ce484222325ull;
  gsize i;

  for (i = 0; i < len; i++) {
    h ^= (guint8) s[i];
    h *= 0x100000001b3ull;
  }
  return (guint32) (h ^ (h >> 29));
}

static guint32
hash_pair (guint64 k)
{
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return (guint32) k;
}

static guint32
table_size (gsize n)
{
  guint32 size = 16;

  while (size < 2 * n + 1)
    size <<= 1;
  return size;
}

static void
vocab_build (MmTokenizer * t)
{
  guint32 size = table_size (t->n_tokens);
  guint i;

  t->vocab.slots = g_new (gint32, size);
  memset (t->vocab.slots, 0xff, size * sizeof (gint32));
  t->vocab.mask = size - 1;
  for (i = 0; i < t->n_tokens; i++) {
    guint32 h = hash_bytes (t->text[i], t->text_len[i]) & t->vocab.mask;

    while (t->vocab.slots[h] >= 0) {
      gint32 o = t->vocab.slots[h];

      if (t->text_len[o] == t->text_len[i]
          && memcmp (t->text[o], t->text[i], t->text_len[i]) == 0)
        break;                  /* duplicate text: the last id wins */
      h = (h + 1) & t->vocab.mask;
    }
    t->vocab.slots[h] = i;
  }
}

gint32
mm_tokenizer_lookup (const MmTokenizer * t, const gchar * s, gsize len)
{
  guint32 h = hash_bytes (s, len) & t->vocab.mask;

  while (t->vocab.slots[h] >= 0) {
    gint32 id = t->vocab.slots[h];

    if (t->text_len[id] == len && memcmp (t->text[id], s, len) == 0)
      return id;
    h = (h + 1) & t->vocab.mask;
  }
  return -1;
}

static void
pairs_grow (MmPairMap * m)
{
  guint32 size = table_size (MAX (m->n, 8u) * 2), i;
  MmPairMap old = *m;

  m->keys = g_new (guint64, size);
  memset (m->keys, 0xff, size * sizeof (guint64));
  m->rank = g_new (gint32, size);
  m->result = g_new (gint32, size);
  m->mask = size - 1;
  for (i = 0; old.keys && i <= old.mask; i++) {
    guint32 h;

    if (old.keys[i] == G_MAXUINT64)
      continue;
    h = hash_pair (old.keys[i]) & m->mask;
    while (m->keys[h] != G_MAXUINT64)
      h = (h + 1) & m->mask;
    m->keys[h] = old.keys[i];
    m->rank[h] = old.rank[i];
    m->result[h] = old.result[i];
  }
  g_free (old.keys);
  g_free (old.rank);
  g_free (old.result);
}

static void
pairs_insert (MmPairMap * m, gint32 a, gint32 b, gint32 rank, gint32 result)
{
  guint64 k = ((guint64) (guint32) a << 32) | (guint32) b;
  guint32 h;

  if (m->keys == NULL || (m->n + 1) * 2 > m->mask + 1)
    pairs_grow (m);
  h = hash_pair (k) & m->mask;
  while (m->keys[h] != G_MAXUINT64) {
    if (m->keys[h] == k)
      return;                   /* a pair listed twice keeps its best rank */
    h = (h + 1) & m->mask;
  }
  m->keys[h] = k;
  m->rank[h] = rank;
  m->result[h] = result;
  m->n++;
}

/* The merge of (a, b): its rank, or -1 when there is none. */
gint32
mm_tokenizer_merge_rank (const MmTokenizer * t, gint32 a, gint32 b,
    gint32 * result)
{
  const MmPairMap *m = &t->merges;
  guint64 k = ((guint64) (guint32) a << 32) | (guint32) b;
  guint32 h;

  if (m->keys == NULL)
    return -1;
  h = hash_pair (k) & m->mask;
  while (m->keys[h] != G_MAXUINT64) {
    if (m->keys[h] == k) {
      *result = m->result[h];
      return m->rank[h];
    }
    h = (h + 1) & m->mask;
  }
  return -1;
}

/* ---- construction ---------------------------------------------------- */

MmTokenizer *
mm_tokenizer_alloc (MmTokenizerKind kind, const gchar * const *tokens,
    gsize n_tokens, const gint32 * types, GError ** error)
{
  MmTokenizer *t;
  gsize i;

  if (n_tokens == 0 || n_tokens > G_MAXINT32) {
    g_set_error (error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_INVALID,
        "tokenizer: %" G_GSIZE_FORMAT " tokens", n_tokens);
    return NULL;
  }
  t = g_new0 (MmTokenizer, 1);
  t->kind = kind;
  t->n_tokens = n_tokens;
  t->text = g_new0 (gchar *, n_tokens + 1);
  t->text_len = g_new (guint32, n_tokens);
  t->type = g_new (guint8, n_tokens);
  t->added_flags = g_new0 (guint8, n_tokens);
  for (i = 0; i < MM_SPECIAL_N; i++)
    t->special[i] = -1;
  t->eog = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (i = 0; i < n_tokens; i++) {
    gint32 ty = types ? types[i] : MM_TOKEN_TYPE_NORMAL;

    t->text[i] = g_strdup (tokens[i] ? tokens[i] : "");
    t->text_len[i] = strlen (t->text[i]);
    t->type[i] = (ty >= MM_TOKEN_TYPE_NORMAL && ty <= MM_TOKEN_TYPE_BYTE)
        ? ty : MM_TOKEN_TYPE_NORMAL;
  }
  vocab_build (t);
  return t;
}

void
mm_tokenizer_add_merges (MmTokenizer * t, const gchar * const *lefts,
    const gchar * const *rights, gsize n)
{
  GString *both = g_string_new (NULL);
  gsize i;

  for (i = 0; i < n; i++) {
    const gchar *l = lefts[i], *r, *sp;
    gsize llen;
    gint32 a, b, c;

    if (l == NULL)
      continue;
    if (rights) {
      r = rights[i];
      llen = strlen (l);
    } else {
      /* "left right"; like llama.cpp, the separator is searched from the
       * second byte so a left part may start with a space */
      sp = l[0] ? strchr (l + 1, ' ') : NULL;
      if (sp == NULL)
        continue;
      llen = sp - l;
      r = sp + 1;
    }
    if (r == NULL)
      continue;
    a = mm_tokenizer_lookup (t, l, llen);
    b = mm_tokenizer_lookup (t, r, strlen (r));
    g_string_truncate (both, 0);
    g_string_append_len (both, l, llen);
    g_string_append (both, r);
    c = mm_tokenizer_lookup (t, both->str, both->len);
    if (a >= 0 && b >= 0 && c >= 0)
      pairs_insert (&t->merges, a, b, (gint32) MIN (i, G_MAXINT32), c);
  }
  g_string_free (both, TRUE);
}

void
mm_tokenizer_mark_added (MmTokenizer * t, gint32 id, gboolean special,
    gboolean lstrip, gboolean rstrip)
{
  if (id < 0 || (guint) id >= t->n_tokens)
    return;
  t->added_flags[id] = MM_ADDED | (special ? MM_ADDED_SPECIAL : 0)
      | (lstrip ? MM_ADDED_LSTRIP : 0) | (rstrip ? MM_ADDED_RSTRIP : 0);
}

/* GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the
 * others are moved to U+0100 and up. */
static void
byte_tables_build (MmTokenizer * t)
{
  guint b, n = 0;

  for (b = 0; b < G_N_ELEMENTS (t->char_byte); b++)
    t->char_byte[b] = -1;
  for (b = 0; b < 256; b++) {
    gboolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC)
        || (b >= 0xAE);
    gchar buf[8];
    gint len;

    t->byte_char[b] = printable ? b : 256 + n++;
    t->char_byte[t->byte_char[b]] = b;
    if (t->byte_level) {
      len = g_unichar_to_utf8 (t->byte_char[b], buf);
    } else {
      len = g_snprintf (buf, sizeof (buf), "<0x%02X>", b);
    }
    t->byte_token[b] = mm_tokenizer_lookup (t, buf, len);
  }
}

static gint
added_cmp (gconstpointer pa, gconstpointer pb)
{
  const MmAddedToken *a = pa, *b = pb;
  guint8 fa = a->text[0], fb = b->text[0];

  if (fa != fb)
    return fa < fb ? -1 : 1;
  if (a->len != b->len)
    return a->len > b->len ? -1 : 1;    /* longest first */
  return a->id < b->id ? -1 : (a->id > b->id);
}

static void
added_build (MmTokenizer * t)
{
  guint i, n = 0, b;

  for (i = 0; i < t->n_tokens; i++) {
    guint8 ty = t->type[i];

    if (t->added_flags[i] == 0 && (ty == MM_TOKEN_TYPE_CONTROL
            || ty == MM_TOKEN_TYPE_UNKNOWN))
      t->added_flags[i] = MM_ADDED | MM_ADDED_SPECIAL;
    else if (t->added_flags[i] == 0 && ty == MM_TOKEN_TYPE_USER_DEFINED)
      t->added_flags[i] = MM_ADDED;
    if ((t->added_flags[i] & MM_ADDED) && t->text_len[i] > 0)
      n++;
  }
  t->added = g_new0 (MmAddedToken, MAX (n, 1));
  for (i = 0; i < t->n_tokens; i++) {
    guint8 f = t->added_flags[i];
    MmAddedToken *a;

    if (!(f & MM_ADDED) || t->text_len[i] == 0)
      continue;
    a = &t->added[t->n_added++];
    a->id = i;
    a->len = t->text_len[i];
    a->text = t->text[i];
    a->special = (f & MM_ADDED_SPECIAL) != 0;
    a->lstrip = (f & MM_ADDED_LSTRIP) != 0;
    a->rstrip = (f & MM_ADDED_RSTRIP) != 0;
  }
  qsort (t->added, t->n_added, sizeof (MmAddedToken), added_cmp);
  for (b = 0, i = 0; b <= 256; b++) {
    while (i < t->n_added && (guint8) t->added[i].text[0] < b)
      i++;
    t->added_first[b] = i;
  }
}

/* <0xXX> -> XX, or -1. */
static gint
parse_byte_token (const gchar * s, gsize len)
{
  if (len != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>'
      || !g_ascii_isxdigit (s[3]) || !g_ascii_isxdigit (s[4]))
    return -1;
  return g_ascii_xdigit_value (s[3]) * 16 + g_ascii_xdigit_value (s[4]);
}

/* What a normal token decodes to. */
static void
piece_of_normal (const MmTokenizer * t, guint id, GString * out)
{
  const gchar *s = t->text[id], *end = s + t->text_len[id], *p;
  gsize start = out->len;

  if (t->byte_level) {
    for (p = s; p < end; p = g_utf8_next_char (p)) {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c >= G_N_ELEMENTS (t->char_byte) || t->char_byte[c] < 0) {
        /* not a byte-level token: its text as is (as HF does) */
        g_string_truncate (out, start);
        g_string_append_len (out, s, end - s);
        return;
      }
      g_string_append_c (out, (gchar) t->char_byte[c]);
    }
    return;
  }
  for (p = s; p < end; p++) {
    if (t->unescape_spaces && end - p >= 3 && memcmp (p, "\xe2\x96\x81",
            3) == 0) {
      g_string_append_c (out, ' ');
      p += 2;
    } else {
      g_string_append_c (out, *p);
    }
  }
}

static void
pieces_build (MmTokenizer * t)
{
  GString *all = g_string_new (NULL);
  guint i;

  t->piece_off = g_new (guint32, t->n_tokens + 1);
  for (i = 0; i < t->n_tokens; i++) {
    gint byte = parse_byte_token (t->text[i], t->text_len[i]);

    t->piece_off[i] = all->len;
    if (t->type[i] == MM_TOKEN_TYPE_BYTE && byte >= 0)
      g_string_append_c (all, (gchar) byte);
    else if (t->type[i] == MM_TOKEN_TYPE_NORMAL)
      piece_of_normal (t, i, all);
    else if (t->type[i] != MM_TOKEN_TYPE_UNUSED)
      g_string_append_len (all, t->text[i], t->text_len[i]);
  }
  t->piece_off[t->n_tokens] = all->len;
  t->piece = (guint8 *) g_string_free (all, FALSE);
}

static void
eog_build (MmTokenizer * t)
{
  static const gchar *const ends[] = { "<|eot_id|>", "<|im_end|>",
    "<|end|>", "<end_of_turn>", "<|endoftext|>", "<end_of_utterance>",
    "<|eom_id|>", "<EOT>", NULL
  };
  guint i;

  for (i = 0; ends[i]; i++) {
    gint32 id = mm_tokenizer_token_id (t, ends[i]);

    if (id >= 0 && (t->added_flags[id] & MM_ADDED))
      mm_tokenizer_add_eog (t, id);
  }
}

/* Bytes without a token are dropped by BPE (as HF does) and fall back to
 * the unknown token in SPM. */
gboolean
mm_tokenizer_finish (MmTokenizer * t, GError ** error)
{
  byte_tables_build (t);
  added_build (t);
  pieces_build (t);
  eog_build (t);
  return TRUE;
}

MmTokenizer *
mm_tokenizer_new_bpe (const gchar * const *tokens, gsize n_tokens,
    const gchar * const *merges, gsize n_merges, const gint32 * token_types,
    const gchar * pre, GError ** error)
{
  g_autoptr (MmTokenizer) t = NULL;

  g_return_val_if_fail (tokens != NULL, NULL);
  t = mm_tokenizer_alloc (MM_TOKENIZER_KIND_BPE, tokens, n_tokens,
      token_types, error);
  if (t == NULL)
    return NULL;
  t->byte_level = TRUE;
  if (!mm_pre_stages_for_name (pre, t->pre, &t->n_pre, &t->ignore_merges,
          error))
    return NULL;
  if (merges)
    mm_tokenizer_add_merges (t, merges, NULL, n_merges);
  if (!mm_tokenizer_finish (t, error))
    return NULL;
  return g_steal_pointer (&t);
}

MmTokenizer *
mm_tokenizer_new_spm (const gchar * const *tokens, const gfloat * scores,
    const gint32 * token_types, gsize n_tokens, GError ** error)
{
  g_autoptr (MmTokenizer) t = NULL;

  g_return_val_if_fail (tokens != NULL, NULL);
  t = mm_tokenizer_alloc (MM_TOKENIZER_KIND_SPM, tokens, n_tokens,
      token_types, error);
  if (t == NULL)
    return NULL;
  t->score = g_new0 (gfloat, n_tokens);
  if (scores)
    memcpy (t->score, scores, n_tokens * sizeof (gfloat));
  t->escape_spaces = TRUE;
  t->unescape_spaces = TRUE;
  mm_tokenizer_set_add_space_prefix (t, TRUE);
  if (!mm_tokenizer_finish (t, error))
    return NULL;
  return g_steal_pointer (&t);
}

void
mm_tokenizer_free (MmTokenizer * t)
{
  guint i;

  if (t == NULL)
    return;
  g_strfreev (t->text);
  g_free (t->text_len);
  g_free (t->type);
  g_free (t->score);
  g_free (t->vocab.slots);
  g_free (t->merges.keys);
  g_free (t->merges.rank);
  g_free (t->merges.result);
  for (i = 0; i < t->n_pre; i++)
    g_clear_pointer (&t->pre[i].regex, g_regex_unref);
  g_free (t->piece);
  g_free (t->piece_off);
  g_array_unref (t->eog);
  g_free (t->added_flags);
  g_free (t->added);
  g_free (t);
}

/* ---- accessors --------------------------------------------------------- */

MmTokenizerKind
mm_tokenizer_get_kind (const MmTokenizer * t)
{
  return t->kind;
}

gsize
mm_tokenizer_get_n_tokens (const MmTokenizer * t)
{
  return t->n_tokens;
}

const gchar *
mm_tokenizer_token_text (const MmTokenizer * t, gint32 id)
{
  if (id < 0 || (guint) id >= t->n_tokens)
    return NULL;
  return t->text[id];
}

MmTokenType
mm_tokenizer_token_type (const MmTokenizer * t, gint32 id)
{
  if (id < 0 || (guint) id >= t->n_tokens)
    return MM_TOKEN_TYPE_UNDEFINED;
  return t->type[id];
}

gint32
mm_tokenizer_token_id (const MmTokenizer * t, const gchar * text)
{
  g_return_val_if_fail (text != NULL, -1);
  return mm_tokenizer_lookup (t, text, strlen (text));
}

void
mm_tokenizer_set_special (MmTokenizer * t, MmSpecialToken which, gint32 id)
{
  g_return_if_fail (which < MM_SPECIAL_N);
  if (id < 0 || (guint) id >= t->n_tokens)
    id = -1;
  t->special[which] = id;
  if (id >= 0 && (which == MM_SPECIAL_EOS || which == MM_SPECIAL_EOT))
    mm_tokenizer_add_eog (t, id);
}

gint32
mm_tokenizer_get_special (const MmTokenizer * t, MmSpecialToken which)
{
  g_return_val_if_fail (which < MM_SPECIAL_N, -1);
  return t->special[which];
}

gboolean
mm_tokenizer_set_special_by_text (MmTokenizer * t, MmSpecialToken which,
    const gchar * text)
{
  gint32 id = text ? mm_tokenizer_token_id (t, text) : -1;

  if (id < 0)
    return FALSE;
  mm_tokenizer_set_special (t, which, id);
  return TRUE;
}

void
mm_tokenizer_set_add_bos (MmTokenizer * t, gboolean add_bos)
{
  t->add_bos = add_bos;
}

gboolean
mm_tokenizer_get_add_bos (const MmTokenizer * t)
{
  return t->add_bos;
}

void
mm_tokenizer_set_add_eos (MmTokenizer * t, gboolean add_eos)
{
  t->add_eos = add_eos;
}

gboolean
mm_tokenizer_get_add_eos (const MmTokenizer * t)
{
  return t->add_eos;
}

void
mm_tokenizer_set_add_space_prefix (MmTokenizer * t, gboolean add)
{
  if (t->kind != MM_TOKENIZER_KIND_SPM)
    return;
  /* llama.cpp: every text fragment (they all follow the start or a special
   * token) gets a leading space, which decoding strips again */
  t->prefix = add ? " " : NULL;
  t->prefix_scheme = add ? MM_PREFIX_ALWAYS : MM_PREFIX_NEVER;
  t->prefix_unless_present = FALSE;
  t->strip_leading_space = add;
}

void
mm_tokenizer_add_eog (MmTokenizer * t, gint32 id)
{
  guint i;

  if (id < 0 || (guint) id >= t->n_tokens)
    return;
  for (i = 0; i < t->eog->len; i++) {
    if (g_array_index (t->eog, gint32, i) == id)
      return;
  }
  g_array_append_val (t->eog, id);
}

gboolean
mm_tokenizer_is_eog (const MmTokenizer * t, gint32 id)
{
  guint i;

  for (i = 0; i < t->eog->len; i++) {
    if (g_array_index (t->eog, gint32, i) == id)
      return TRUE;
  }
  return FALSE;
}

/* ---- decoding ---------------------------------------------------------- */

gboolean
mm_tokenizer_token_to_piece (const MmTokenizer * t, gint32 id,
    MmDecodeFlags flags, GString * out, GError ** error)
{
  guint8 ty;

  if (id < 0 || (guint) id >= t->n_tokens) {
    g_set_error (error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_TOKEN,
        "tokenizer: token id %d out of range (%u tokens)", id, t->n_tokens);
    return FALSE;
  }
  ty = t->type[id];
  if ((ty == MM_TOKEN_TYPE_CONTROL || ty == MM_TOKEN_TYPE_UNKNOWN)
      && !(flags & MM_DECODE_SPECIAL))
    return TRUE;
  g_string_append_len (out, (const gchar *) t->piece + t->piece_off[id],
      t->piece_off[id + 1] - t->piece_off[id]);
  return TRUE;
}

GBytes *
mm_tokenizer_decode_bytes (const MmTokenizer * t, const gint32 * ids,
    gsize n_ids, MmDecodeFlags flags, GError ** error)
{
  GString *out = g_string_new (NULL);
  gsize i;

  for (i = 0; i < n_ids; i++) {
    if (!mm_tokenizer_token_to_piece (t, ids[i], flags, out, error)) {
      g_string_free (out, TRUE);
      return NULL;
    }
  }
  if (t->strip_leading_space && out->len > 0 && out->str[0] == ' ')
    g_string_erase (out, 0, 1);
  return g_string_free_to_bytes (out);
}

/* Is [p, p + n) the start of a valid UTF-8 character cut short? */
static gboolean
utf8_incomplete (const guint8 * p, gsize n)
{
  guint need;
  guint8 lo = 0x80, hi = 0xBF;
  gsize i;

  if (p[0] >= 0xC2 && p[0] <= 0xDF)
    need = 2;
  else if (p[0] >= 0xE0 && p[0] <= 0xEF)
    need = 3;
  else if (p[0] >= 0xF0 && p[0] <= 0xF4)
    need = 4;
  else
    return FALSE;
  if (n >= need)
    return FALSE;
  if (p[0] == 0xE0)
    lo = 0xA0;
  else if (p[0] == 0xED)
    hi = 0x9F;
  else if (p[0] == 0xF0)
    lo = 0x90;
  else if (p[0] == 0xF4)
    hi = 0x8F;
  for (i = 1; i < n; i++) {
    if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xBF))
      return FALSE;
  }
  return TRUE;
}

/* Appends the valid UTF-8 of @p[0..n) to @out, U+FFFD for each invalid byte
 * (and NUL).  Unless @final, an incomplete character at the end is not
 * consumed; returns the number of bytes consumed. */
static gsize
append_lossy (GString * out, const gchar * p, gsize n, gboolean final)
{
  const guint8 *u = (const guint8 *) p;
  gsize i = 0;

  while (i < n) {
    gunichar c;
    guint len = mm_utf8_decode (u + i, n - i, &c);

    if (c != MM_CP_INVALID && c != 0) {
      g_string_append_len (out, p + i, len);
      i += len;
      continue;
    }
    if (!final && utf8_incomplete (u + i, n - i))
      break;
    g_string_append (out, "\xef\xbf\xbd");
    i++;
  }
  return i;
}

gchar *
mm_tokenizer_decode (const MmTokenizer * t, const gint32 * ids, gsize n_ids,
    MmDecodeFlags flags, GError ** error)
{
  g_autoptr (GBytes) bytes = mm_tokenizer_decode_bytes (t, ids, n_ids, flags,
      error);
  GString *out;
  gsize len;
  const gchar *p;

  if (bytes == NULL)
    return NULL;
  p = g_bytes_get_data (bytes, &len);
  out = g_string_sized_new (len + 1);
  append_lossy (out, p, len, TRUE);
  return g_string_free (out, FALSE);
}

struct _MmDecodeStream
{
  const MmTokenizer *t;
  MmDecodeFlags flags;
  GString *pending;             /* bytes of an incomplete character */
  gboolean started;             /* some byte was produced */
};

MmDecodeStream *
mm_decode_stream_new (const MmTokenizer * t, MmDecodeFlags flags)
{
  MmDecodeStream *s = g_new0 (MmDecodeStream, 1);

  s->t = t;
  s->flags = flags;
  s->pending = g_string_new (NULL);
  return s;
}

void
mm_decode_stream_free (MmDecodeStream * s)
{
  if (s == NULL)
    return;
  g_string_free (s->pending, TRUE);
  g_free (s);
}

gboolean
mm_decode_stream_push (MmDecodeStream * s, gint32 id, GString * out,
    GError ** error)
{
  gsize used;

  if (!mm_tokenizer_token_to_piece (s->t, id, s->flags, s->pending, error))
    return FALSE;
  if (!s->started && s->pending->len > 0) {
    s->started = TRUE;
    if (s->t->strip_leading_space && s->pending->str[0] == ' ')
      g_string_erase (s->pending, 0, 1);
  }
  used = append_lossy (out, s->pending->str, s->pending->len, FALSE);
  g_string_erase (s->pending, 0, used);
  return TRUE;
}

void
mm_decode_stream_flush (MmDecodeStream * s, GString * out)
{
  append_lossy (out, s->pending->str, s->pending->len, TRUE);
  g_string_truncate (s->pending, 0);
  s->started = FALSE;
}
