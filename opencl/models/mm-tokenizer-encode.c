/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Encoding: added tokens cut out first, then per text fragment the
 * normaliser and space handling, pre-tokenization into words, and BPE per
 * word (by merge rank, as Hugging Face tokenizers) or SentencePiece per
 * fragment (by piece score, as llama.cpp's llm_tokenizer_spm).
 *
 * Work is O(n log n) in the text length; all scratch lives in one
 * EncodeCtx per call, so a tokenizer may encode from several threads.
 */
#include "mm-tokenizer-private.h"

#include <string.h>

#define UTF8_U2581 "\xe2\x96\x81"

typedef struct
{
  gint32 id;                    /* BPE: token; SPM: unused */
  gint32 prev, next;
  guint32 start, len;           /* bytes in the word; len 0: merged away */
} Symbol;

typedef struct
{
  gfloat score;                 /* SPM: higher first */
  gint32 rank;                  /* BPE: lower first */
  gint32 left, right;
  gint32 result;
  guint32 size;
} Bigram;

typedef struct
{
  const MmTokenizer *t;
  GArray *ids;
  GError **error;
  gboolean failed;
  MmCpText cpt;
  GArray *ends[MM_PRE_MAX_STAGES];
  GArray *sym;                  /* Symbol */
  GArray *heap;                 /* Bigram */
  gboolean heap_by_score;
  GString *frag;                /* transformed fragment */
  GString *word;                /* byte-mapped word */
} EncodeCtx;

/* ---- a binary heap of bigrams ----------------------------------------- */

static gboolean
bigram_before (const EncodeCtx * c, const Bigram * a, const Bigram * b)
{
  if (c->heap_by_score) {
    if (a->score != b->score)
      return a->score > b->score;
  } else if (a->rank != b->rank) {
    return a->rank < b->rank;
  }
  return a->left < b->left;
}

static void
heap_push (EncodeCtx * c, const Bigram * bg)
{
  Bigram *h;
  guint i;

  g_array_append_vals (c->heap, bg, 1);
  h = (Bigram *) c->heap->data;
  for (i = c->heap->len - 1; i > 0;) {
    guint parent = (i - 1) / 2;
    Bigram tmp;

    if (!bigram_before (c, &h[i], &h[parent]))
      break;
    tmp = h[i], h[i] = h[parent], h[parent] = tmp;
    i = parent;
  }
}

static Bigram
heap_pop (EncodeCtx * c)
{
  Bigram *h = (Bigram *) c->heap->data, top = h[0];
  guint n = c->heap->len - 1, i = 0;

  h[0] = h[n];
  g_array_set_size (c->heap, n);
  for (;;) {
    guint l = 2 * i + 1, r = l + 1, best = i;
    Bigram tmp;

    if (l < n && bigram_before (c, &h[l], &h[best]))
      best = l;
    if (r < n && bigram_before (c, &h[r], &h[best]))
      best = r;
    if (best == i)
      break;
    tmp = h[i], h[i] = h[best], h[best] = tmp;
    i = best;
  }
  return top;
}

/* ---- BPE on one word ---------------------------------------------------- */

static void
emit (EncodeCtx * c, gint32 id)
{
  g_array_append_val (c->ids, id);
}

static void
sym_push (EncodeCtx * c, gint32 id, guint32 start, guint32 len)
{
  Symbol s = {.id = id,.prev = (gint32) c->sym->len - 1,.next = -1,
    .start = start,.len = len
  };

  if (c->sym->len > 0)
    g_array_index (c->sym, Symbol, c->sym->len - 1).next = c->sym->len;
  g_array_append_val (c->sym, s);
}

static void
bpe_try_pair (EncodeCtx * c, gint32 left)
{
  Symbol *s = (Symbol *) c->sym->data;
  Bigram bg = {.left = left };

  if (left < 0 || s[left].next < 0)
    return;
  bg.right = s[left].next;
  bg.rank = mm_tokenizer_merge_rank (c->t, s[left].id, s[bg.right].id,
      &bg.result);
  if (bg.rank >= 0)
    heap_push (c, &bg);
}

/* The initial symbols of a word that is not byte-mapped: UTF-8 characters,
 * unknown ones as <0xXX> bytes (byte fallback) or the unknown token. */
static void
bpe_chars (EncodeCtx * c, const gchar * w, gsize len)
{
  const MmTokenizer *t = c->t;
  gint32 unk = t->special[MM_SPECIAL_UNK];
  gboolean last_unk = FALSE;
  gsize i = 0, k;

  while (i < len) {
    gunichar ch;
    guint n = mm_utf8_decode ((const guint8 *) w + i, len - i, &ch);
    gint32 id = mm_tokenizer_lookup (t, w + i, n);
    gboolean bytes_ok = t->byte_fallback;

    for (k = 0; id < 0 && bytes_ok && k < n; k++)
      bytes_ok = t->byte_token[(guint8) w[i + k]] >= 0;
    if (id >= 0) {
      sym_push (c, id, i, n);
    } else if (bytes_ok) {
      for (k = 0; k < n; k++)
        sym_push (c, t->byte_token[(guint8) w[i + k]], i + k, 1);
    } else if (unk >= 0 && !(t->fuse_unk && last_unk)) {
      sym_push (c, unk, i, n);
    } else if (unk >= 0) {
      g_array_index (c->sym, Symbol, c->sym->len - 1).len += n;
    }
    last_unk = id < 0 && !bytes_ok;
    i += n;
  }
}

static void
bpe_word (EncodeCtx * c, const gchar * w, gsize len)
{
  const MmTokenizer *t = c->t;
  Symbol *s;
  gsize i;
  gint32 id;

  if (len == 0)
    return;
  if (t->ignore_merges) {
    const gchar *key = w;
    gsize klen = len;

    if (t->byte_level) {
      g_string_truncate (c->word, 0);
      for (i = 0; i < len; i++)
        g_string_append_unichar (c->word, t->byte_char[(guint8) w[i]]);
      key = c->word->str;
      klen = c->word->len;
    }
    if ((id = mm_tokenizer_lookup (t, key, klen)) >= 0) {
      emit (c, id);
      return;
    }
  }
  g_array_set_size (c->sym, 0);
  g_array_set_size (c->heap, 0);
  c->heap_by_score = FALSE;
  if (t->byte_level) {
    /* one symbol per byte: the token of its mapped character */
    for (i = 0; i < len; i++) {
      if (t->byte_token[(guint8) w[i]] >= 0)
        sym_push (c, t->byte_token[(guint8) w[i]], i, 1);
    }
  } else {
    bpe_chars (c, w, len);
  }
  for (i = 0; i + 1 < c->sym->len; i++)
    bpe_try_pair (c, i);
  while (c->heap->len > 0) {
    Bigram top = heap_pop (c);
    gint32 result, nx;

    s = (Symbol *) c->sym->data;
    /* stale entries: the left symbol is gone or its pair changed */
    if (s[top.left].len == 0 || s[top.left].next < 0)
      continue;
    nx = s[top.left].next;
    if (mm_tokenizer_merge_rank (t, s[top.left].id, s[nx].id, &result) < 0
        || result != top.result)
      continue;
    s[top.left].id = top.result;
    s[top.left].len += s[nx].len;
    s[top.left].next = s[nx].next;
    s[nx].len = 0;
    if (s[top.left].next >= 0)
      s[s[top.left].next].prev = top.left;
    bpe_try_pair (c, s[top.left].prev);
    bpe_try_pair (c, top.left);
  }
  s = (Symbol *) c->sym->data;
  for (i = 0; i < c->sym->len; i++) {
    if (s[i].len > 0)
      emit (c, s[i].id);
  }
}

/* ---- SentencePiece on one fragment ------------------------------------ */

static void
spm_try_pair (EncodeCtx * c, const gchar * w, gint32 left, gint32 right)
{
  Symbol *s = (Symbol *) c->sym->data;
  Bigram bg = {.left = left,.right = right };
  gint32 id;

  if (left < 0 || right < 0)
    return;
  bg.size = s[left].len + s[right].len;
  id = mm_tokenizer_lookup (c->t, w + s[left].start, bg.size);
  if (id < 0)
    return;
  bg.score = c->t->score[id];
  heap_push (c, &bg);
}

/* A final symbol: its token, or its bytes as <0xXX> tokens. */
static void
spm_resegment (EncodeCtx * c, const gchar * p, gsize len)
{
  const MmTokenizer *t = c->t;
  gint32 id = mm_tokenizer_lookup (t, p, len);
  gsize i;

  if (id >= 0) {
    emit (c, id);
    return;
  }
  for (i = 0; i < len; i++) {
    id = t->byte_token[(guint8) p[i]];
    if (id < 0)
      id = mm_tokenizer_lookup (t, p + i, 1);
    if (id < 0)
      id = t->special[MM_SPECIAL_UNK];
    if (id < 0) {
      if (!c->failed)
        g_set_error (c->error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_ENCODE,
            "tokenizer: no token for byte 0x%02x (no byte fallback, no "
            "unknown token)", (guint8) p[i]);
      c->failed = TRUE;
      return;
    }
    emit (c, id);
  }
}

static void
spm_fragment (EncodeCtx * c, const gchar * w, gsize len)
{
  Symbol *s;
  gsize i = 0;
  gint32 k;

  g_array_set_size (c->sym, 0);
  g_array_set_size (c->heap, 0);
  c->heap_by_score = TRUE;
  while (i < len) {
    gunichar ch;
    guint n = mm_utf8_decode ((const guint8 *) w + i, len - i, &ch);

    sym_push (c, -1, i, n);
    i += n;
  }
  for (k = 0; k + 1 < (gint32) c->sym->len; k++)
    spm_try_pair (c, w, k, k + 1);
  while (c->heap->len > 0) {
    Bigram top = heap_pop (c);
    Symbol *l, *r;

    s = (Symbol *) c->sym->data;
    l = &s[top.left], r = &s[top.right];
    if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
      continue;
    l->len += r->len;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0)
      s[r->next].prev = top.left;
    spm_try_pair (c, w, l->prev, top.left);
    spm_try_pair (c, w, top.left, l->next);
  }
  s = (Symbol *) c->sym->data;
  for (k = 0; k >= 0 && k < (gint32) c->sym->len && !c->failed; k = s[k].next)
    spm_resegment (c, w + s[k].start, s[k].len);
}

/* ---- fragments --------------------------------------------------------- */

static void
pre_run (EncodeCtx * c, guint stage, gsize s, gsize e)
{
  const MmTokenizer *t = c->t;
  GArray *ends;
  guint base, i;
  gsize p = s;

  if (stage == t->n_pre) {
    bpe_word (c, c->cpt.bytes + c->cpt.off[s], c->cpt.off[e] - c->cpt.off[s]);
    return;
  }
  ends = c->ends[stage];
  base = ends->len;
  mm_pre_split (&t->pre[stage], &c->cpt, s, e, ends);
  for (i = base; i < ends->len; i++) {
    gsize q = g_array_index (ends, gsize, i);

    pre_run (c, stage + 1, p, q);
    p = q;
  }
  g_array_set_size (ends, base);
}

/* Normaliser, prefix and space escaping; returns the text to tokenize. */
static const gchar *
prepare (EncodeCtx * c, const gchar * s, gsize len, gboolean at_start,
    gsize * out_len)
{
  const MmTokenizer *t = c->t;
  g_autofree gchar *norm = NULL;
  gboolean prefix;
  gsize i;

  if (t->normalize && g_utf8_validate_len (s, len, NULL)) {
    norm = g_utf8_normalize (s, len, t->normalize_mode);
    if (norm) {
      s = norm;
      len = strlen (norm);
    }
  }
  prefix = t->prefix && (t->prefix_scheme == MM_PREFIX_ALWAYS
      || (t->prefix_scheme == MM_PREFIX_FIRST && at_start));
  if (prefix && t->prefix_unless_present) {
    gsize pl = strlen (t->prefix);

    prefix = !((len >= pl && memcmp (s, t->prefix, pl) == 0)
        || (t->escape_spaces && len > 0 && s[0] == ' '));
  }
  if (!prefix && !t->escape_spaces && norm == NULL) {
    *out_len = len;
    return s;
  }
  g_string_truncate (c->frag, 0);
  if (prefix)
    g_string_append (c->frag, t->prefix);
  g_string_append_len (c->frag, s, len);
  if (t->escape_spaces) {
    for (i = 0; i < c->frag->len; i++) {
      if (c->frag->str[i] == ' ') {
        c->frag->str[i] = UTF8_U2581[0];
        g_string_insert_len (c->frag, i + 1, UTF8_U2581 + 1, 2);
        i += 2;
      }
    }
  }
  *out_len = c->frag->len;
  return c->frag->str;
}

static void
encode_fragment (EncodeCtx * c, const gchar * s, gsize len, gboolean at_start)
{
  const gchar *text;
  gsize n;

  if (len == 0)
    return;
  text = prepare (c, s, len, at_start, &n);
  if (c->t->kind == MM_TOKENIZER_KIND_SPM) {
    spm_fragment (c, text, n);
    return;
  }
  mm_cp_text_set (&c->cpt, text, n);
  pre_run (c, 0, 0, c->cpt.n);
}

/* ---- added tokens ------------------------------------------------------ */

static gboolean
space_before (const gchar * text, gsize lo, gsize p, gsize * start)
{
  gsize q = p;
  gunichar ch;

  if (p <= lo)
    return FALSE;
  q--;
  while (q > lo && ((guint8) text[q] & 0xC0) == 0x80 && p - q < 4)
    q--;
  mm_utf8_decode ((const guint8 *) text + q, p - q, &ch);
  if (mm_unichar_class (ch) != MM_CC_SPACE)
    return FALSE;
  *start = q;
  return TRUE;
}

/* The leftmost-longest added token in text[pos..len), with the white space
 * lstrip/rstrip tokens swallow. */
static gboolean
find_added (const MmTokenizer * t, const gchar * text, gsize len, gsize pos,
    gboolean parse_special, gsize * ms, gsize * me, gint32 * id)
{
  gsize p, q;
  guint i;

  for (p = pos; p < len; p++) {
    guint8 b = text[p];

    for (i = t->added_first[b]; i < t->added_first[b + 1]; i++) {
      const MmAddedToken *a = &t->added[i];
      gunichar ch;

      if ((a->special && !parse_special) || a->len > len - p
          || memcmp (text + p, a->text, a->len) != 0)
        continue;
      *id = a->id;
      *ms = p;
      *me = p + a->len;
      while (a->lstrip && space_before (text, pos, *ms, &q))
        *ms = q;
      while (a->rstrip && *me < len) {
        guint n = mm_utf8_decode ((const guint8 *) text + *me, len - *me, &ch);

        if (mm_unichar_class (ch) != MM_CC_SPACE)
          break;
        *me += n;
      }
      return TRUE;
    }
  }
  return FALSE;
}

void
mm_tokenizer_split_words (const MmTokenizer * t, const gchar * text,
    gsize len, GArray * ends)
{
  MmCpText cpt = { 0 };
  GArray *a[MM_PRE_MAX_STAGES + 1];
  guint i, j, k;
  gsize s;

  mm_cp_text_set (&cpt, text, len);
  a[0] = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_array_append_val (a[0], cpt.n);
  /* each stage splits every piece of the previous one */
  for (k = 0; k < t->n_pre; k++) {
    a[k + 1] = g_array_new (FALSE, FALSE, sizeof (gsize));
    for (i = 0, s = 0; i < a[k]->len; i++) {
      gsize e = g_array_index (a[k], gsize, i);

      if (e > s)
        mm_pre_split (&t->pre[k], &cpt, s, e, a[k + 1]);
      s = e;
    }
  }
  for (j = 0; j < a[t->n_pre]->len; j++) {
    gsize b = cpt.off[g_array_index (a[t->n_pre], gsize, j)];

    if (len > 0)
      g_array_append_val (ends, b);
  }
  for (k = 0; k <= t->n_pre; k++)
    g_array_unref (a[k]);
  mm_cp_text_clear (&cpt);
}

static void
ctx_clear (EncodeCtx * c)
{
  guint i;

  mm_cp_text_clear (&c->cpt);
  for (i = 0; i < MM_PRE_MAX_STAGES; i++)
    g_array_unref (c->ends[i]);
  g_array_unref (c->sym);
  g_array_unref (c->heap);
  g_string_free (c->frag, TRUE);
  g_string_free (c->word, TRUE);
}

gboolean
mm_tokenizer_encode (const MmTokenizer * t, const gchar * text,
    gssize length, MmEncodeFlags flags, GArray * ids_out, GError ** error)
{
  EncodeCtx c = {.t = t,.ids = ids_out,.error = error };
  gboolean parse = (flags & MM_ENCODE_PARSE_SPECIAL) != 0;
  gsize len, pos = 0, ms, me;
  guint start_len, i;
  gint32 id;

  g_return_val_if_fail (t != NULL && ids_out != NULL, FALSE);
  g_return_val_if_fail (text != NULL || length == 0, FALSE);
  len = length < 0 ? strlen (text) : (gsize) length;
  start_len = ids_out->len;
  for (i = 0; i < MM_PRE_MAX_STAGES; i++)
    c.ends[i] = g_array_new (FALSE, FALSE, sizeof (gsize));
  c.sym = g_array_new (FALSE, FALSE, sizeof (Symbol));
  c.heap = g_array_new (FALSE, FALSE, sizeof (Bigram));
  c.frag = g_string_new (NULL);
  c.word = g_string_new (NULL);

  if ((flags & MM_ENCODE_ADD_SPECIAL) && t->add_bos
      && t->special[MM_SPECIAL_BOS] >= 0)
    emit (&c, t->special[MM_SPECIAL_BOS]);
  while (!c.failed && find_added (t, text, len, pos, parse, &ms, &me, &id)) {
    encode_fragment (&c, text + pos, ms - pos, pos == 0);
    emit (&c, id);
    pos = me;
  }
  if (!c.failed)
    encode_fragment (&c, text + pos, len - pos, pos == 0);
  if ((flags & MM_ENCODE_ADD_SPECIAL) && t->add_eos
      && t->special[MM_SPECIAL_EOS] >= 0)
    emit (&c, t->special[MM_SPECIAL_EOS]);
  ctx_clear (&c);
  if (c.failed)
    g_array_set_size (ids_out, start_len);
  return !c.failed;
}
