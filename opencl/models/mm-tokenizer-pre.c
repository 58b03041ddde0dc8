/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-tokenization: splitting text into words before BPE.
 *
 * The regexes of the families we run are scanned by hand over Unicode
 * character classes (what \p{L}, \p{N} and \s mean in the Oniguruma regexes
 * of Hugging Face tokenizers), with the regexes' backtracking behaviour:
 *
 *   GPT-2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
 *            |\s+(?!\S)|\s+
 *   Llama 3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *            | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   Qwen2    Llama 3 with \p{N} for \p{N}{1,3}
 *
 * Any other Split pattern of a tokenizer.json goes to GRegex (PCRE2).
 */
#include "mm-tokenizer-private.h"

#include <string.h>

/* ---- Unicode ------------------------------------------------------------ */

static gboolean
is_white_space (gunichar c)
{
  /* The Unicode White_Space property (PropList.txt), which is what \s
   * matches in Oniguruma and Rust's char::is_whitespace. */
  if (c <= 0x20)
    return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85)
    return FALSE;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A)
      || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F
      || c == 0x3000;
}

MmCharClass
mm_unichar_class (gunichar c)
{
  if (c == MM_CP_INVALID)
    return MM_CC_OTHER;
  if (c < 0x80) {
    if (g_ascii_isalpha (c))
      return MM_CC_LETTER;
    if (g_ascii_isdigit (c))
      return MM_CC_NUMBER;
    return is_white_space (c) ? MM_CC_SPACE : MM_CC_OTHER;
  }
  if (is_white_space (c))
    return MM_CC_SPACE;
  switch (g_unichar_type (c)) {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return MM_CC_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return MM_CC_NUMBER;
    default:
      return MM_CC_OTHER;
  }
}

guint
mm_utf8_decode (const guint8 * p, gsize avail, gunichar * out)
{
  guint n, i;
  gunichar c, min;

  *out = MM_CP_INVALID;
  if (p[0] < 0x80) {
    *out = p[0];
    return 1;
  }
  if (p[0] >= 0xC2 && p[0] <= 0xDF) {
    n = 2, c = p[0] & 0x1F, min = 0x80;
  } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
    n = 3, c = p[0] & 0x0F, min = 0x800;
  } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
    n = 4, c = p[0] & 0x07, min = 0x10000;
  } else {
    return 1;
  }
  if (avail < n)
    return 1;
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 1;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 1;
  *out = c;
  return n;
}

void
mm_cp_text_set (MmCpText * t, const gchar * bytes, gsize len)
{
  gsize i = 0, k = 0;

  t->bytes = bytes;
  t->cp = g_renew (gunichar, t->cp, len + 1);
  t->cls = g_renew (guint8, t->cls, len + 1);
  t->off = g_renew (gsize, t->off, len + 1);
  while (i < len) {
    guint n = mm_utf8_decode ((const guint8 *) bytes + i, len - i, &t->cp[k]);
    t->cls[k] = mm_unichar_class (t->cp[k]);
    t->off[k++] = i;
    i += n;
  }
  t->off[k] = len;
  t->n = k;
}

void
mm_cp_text_clear (MmCpText * t)
{
  g_clear_pointer (&t->cp, g_free);
  g_clear_pointer (&t->cls, g_free);
  g_clear_pointer (&t->off, g_free);
  t->n = 0;
}

/* ---- the hand-written regexes ----------------------------------------- */

/* \s+(?!\S)|\s+ at a white-space character. */
static gsize
match_spaces (const MmCpText * t, gsize p, gsize e)
{
  gsize n = p;

  while (n < e && t->cls[n] == MM_CC_SPACE)
    n++;
  /* before a non-space, leave the last space to the next word */
  return (n < e && n - p > 1) ? n - 1 : n;
}

/* 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive: the match length. */
static guint
match_contraction (const MmCpText * t, gsize p, gsize e, gboolean fold)
{
  gunichar c1, c2;

  if (t->cp[p] != '\'' || p + 1 >= e)
    return 0;
  c1 = t->cp[p + 1];
  c2 = p + 2 < e ? t->cp[p + 2] : 0;
  if (fold) {
    c1 = c1 < 0x80 ? (gunichar) g_ascii_tolower (c1) : c1;
    c2 = c2 < 0x80 ? (gunichar) g_ascii_tolower (c2) : c2;
  }
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
    return 2;
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e')
      || (c1 == 'l' && c2 == 'l'))
    return 3;
  return 0;
}

static gsize
match_gpt2 (const MmCpText * t, gsize p, gsize e)
{
  guint n = match_contraction (t, p, e, FALSE);
  gsize q;
  guint8 c;

  if (n > 0)
    return p + n;
  /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" */
  q = (t->cp[p] == ' ' && p + 1 < e) ? p + 1 : p;
  c = t->cls[q];
  if (c != MM_CC_SPACE) {
    while (q < e && t->cls[q] == c)
      q++;
    return q;
  }
  return match_spaces (t, p, e);
}

static gboolean
is_crlf (gunichar c)
{
  return c == '\r' || c == '\n';
}

static gsize
match_llama3 (const MmCpText * t, gsize p, gsize e, gint max_digits)
{
  guint n = match_contraction (t, p, e, TRUE);
  guint8 c = t->cls[p];
  gsize q, last_nl = 0;

  if (n > 0)
    return p + n;
  /* [^\r\n\p{L}\p{N}]?\p{L}+ */
  if (c == MM_CC_LETTER || (c != MM_CC_NUMBER && !is_crlf (t->cp[p])
          && p + 1 < e && t->cls[p + 1] == MM_CC_LETTER)) {
    q = p + 1;
    while (q < e && t->cls[q] == MM_CC_LETTER)
      q++;
    return q;
  }
  /* \p{N}{1,max_digits} */
  if (c == MM_CC_NUMBER) {
    q = p;
    while (q < e && t->cls[q] == MM_CC_NUMBER
        && (max_digits <= 0 || q - p < (gsize) max_digits))
      q++;
    return q;
  }
  /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
  q = (t->cp[p] == ' ' && p + 1 < e) ? p + 1 : p;
  if (t->cls[q] == MM_CC_OTHER) {
    while (q < e && t->cls[q] == MM_CC_OTHER)
      q++;
    while (q < e && is_crlf (t->cp[q]))
      q++;
    return q;
  }
  /* \s*[\r\n]+ : up to the last line break of the white-space run */
  for (q = p; q < e && t->cls[q] == MM_CC_SPACE; q++) {
    if (is_crlf (t->cp[q]))
      last_nl = q + 1;
  }
  if (last_nl > 0)
    return last_nl;
  return match_spaces (t, p, e);
}

static void
split_digits (const MmCpText * t, gsize s, gsize e, gboolean individual,
    GArray * ends)
{
  gsize p = s;

  while (p < e) {
    gboolean num = t->cls[p] == MM_CC_NUMBER;
    gsize q = p + 1;

    if (!num || !individual) {
      while (q < e && (t->cls[q] == MM_CC_NUMBER) == num)
        q++;
    }
    g_array_append_val (ends, q);
    p = q;
  }
}

static void
split_metaspace (const MmCpText * t, gsize s, gsize e, GArray * ends)
{
  gsize p;

  for (p = s + 1; p < e; p++) {
    if (t->cp[p] == 0x2581)
      g_array_append_val (ends, p);
  }
  if (e > s)
    g_array_append_val (ends, e);
}

/* Code point index of byte offset @b within [s, e]. */
static gsize
cp_at_byte (const MmCpText * t, gsize s, gsize e, gsize b)
{
  while (s < e) {
    gsize mid = s + (e - s) / 2;

    if (t->off[mid] < b)
      s = mid + 1;
    else
      e = mid;
  }
  return s;
}

static void
split_regex (const MmPreStage * st, const MmCpText * t, gsize s, gsize e,
    GArray * ends)
{
  const gchar *str = t->bytes + t->off[s];
  gsize len = t->off[e] - t->off[s], p, last = s;
  GMatchInfo *mi = NULL;

  for (p = s; p < e; p++) {
    if (t->cp[p] == MM_CP_INVALID) {
      g_array_append_val (ends, e);     /* GRegex needs valid UTF-8 */
      return;
    }
  }
  g_regex_match_full (st->regex, str, len, 0, 0, &mi, NULL);
  while (g_match_info_matches (mi)) {
    gint ms, me;
    gsize cs, ce;

    g_match_info_fetch_pos (mi, 0, &ms, &me);
    cs = cp_at_byte (t, s, e, t->off[s] + ms);
    ce = cp_at_byte (t, s, e, t->off[s] + me);
    if (ce > cs) {
      if (cs > last)
        g_array_append_val (ends, cs);
      g_array_append_val (ends, ce);
      last = ce;
    }
    if (!g_match_info_next (mi, NULL))
      break;
  }
  g_match_info_free (mi);
  if (e > last)
    g_array_append_val (ends, e);
}

void
mm_pre_split (const MmPreStage * st, const MmCpText * t, gsize s, gsize e,
    GArray * ends)
{
  gsize p = s, q;

  switch (st->kind) {
    case MM_PRE_DIGITS:
      split_digits (t, s, e, st->param == 1, ends);
      return;
    case MM_PRE_METASPACE:
      split_metaspace (t, s, e, ends);
      return;
    case MM_PRE_REGEX:
      split_regex (st, t, s, e, ends);
      return;
    case MM_PRE_GPT2:
    case MM_PRE_LLAMA3:
      break;
  }
  while (p < e) {
    if (st->kind == MM_PRE_GPT2)
      q = match_gpt2 (t, p, e);
    else
      q = match_llama3 (t, p, e, st->param);
    q = MAX (q, p + 1);
    g_array_append_val (ends, q);
    p = q;
  }
}

/* ---- recognising patterns and names ----------------------------------- */

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+" \
  "| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

gboolean
mm_pre_stage_from_pattern (const gchar * pattern, MmPreStage * st)
{
  static const gchar *const contractions[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
  };
  static const struct
  {
    const gchar *n;
    gint digits;
  } numbers[] = { {"\\p{N}{1,3}", 3}, {"\\p{N}", 1}, {"\\p{N}+", 0} };
  guint i, j;

  memset (st, 0, sizeof (*st));
  if (g_str_equal (pattern, GPT2_PATTERN)
      || g_str_equal (pattern, GPT2_PATTERN "|\\s+")) {
    st->kind = MM_PRE_GPT2;
    return TRUE;
  }
  if (g_str_equal (pattern, "\\p{N}") || g_str_equal (pattern, "\\p{N}+")) {
    st->kind = MM_PRE_DIGITS;
    st->param = g_str_equal (pattern, "\\p{N}") ? 1 : 0;
    return TRUE;
  }
  for (i = 0; i < G_N_ELEMENTS (contractions); i++) {
    for (j = 0; j < G_N_ELEMENTS (numbers); j++) {
      g_autofree gchar *p = g_strconcat (contractions[i],
          "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|", numbers[j].n,
          "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          NULL);

      if (g_str_equal (pattern, p)) {
        st->kind = MM_PRE_LLAMA3;
        st->param = numbers[j].digits;
        return TRUE;
      }
    }
  }
  return FALSE;
}

static gboolean
name_in (const gchar * name, const gchar * const *list)
{
  return g_strv_contains (list, name);
}

/* \s as Unicode White_Space: PCRE2's \s also takes U+180E, which Unicode
 * (and Oniguruma, which HF tokenizers use) no longer count as space. */
#define WS_CLASS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}" \
  "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

GRegex *
mm_pre_regex_new (const gchar * pattern, GError ** error)
{
  GString *p = g_string_new (NULL);
  gboolean in_class = FALSE;
  const gchar *c;
  GRegex *re;

  for (c = pattern; *c; c++) {
    if (c[0] == '\\' && c[1] == 's') {
      g_string_append (p, in_class ? WS_CLASS : "[" WS_CLASS "]");
      c++;
    } else if (c[0] == '\\' && c[1] == 'S' && !in_class) {
      g_string_append (p, "[^" WS_CLASS "]");
      c++;
    } else if (c[0] == '\\' && c[1]) {
      g_string_append_len (p, c, 2);
      c++;
    } else {
      if (*c == '[')
        in_class = TRUE;
      else if (*c == ']')
        in_class = FALSE;
      g_string_append_c (p, *c);
    }
  }
  re = g_regex_new (p->str, G_REGEX_OPTIMIZE, 0, error);
  g_string_free (p, TRUE);
  return re;
}

static gboolean
regex_stage (const gchar * pattern, MmPreStage * st, GError ** error)
{
  memset (st, 0, sizeof (*st));
  st->kind = MM_PRE_REGEX;
  st->regex = mm_pre_regex_new (pattern, error);
  return st->regex != NULL;
}

gboolean
mm_pre_stages_for_name (const gchar * name, MmPreStage * stages,
    guint * n_stages, gboolean * ignore_merges, GError ** error)
{
  static const gchar *const gpt2[] = { "gpt2", "gpt-2", "phi-2", "mpt",
    "olmo", "jais", "roberta-bpe", "jina-es", "jina-de", "jina-v1-en",
    "jina-v2-es", "jina-v2-de", "jina-v2-code", "gigachat", "mellum",
    "modern-bert", "trillion", "granite-docling", "a.x-4.0", NULL
  };
  static const gchar *const starcoder[] = { "starcoder", "smollm", "refact",
    "command-r", "codeshell", "exaone", "minerva", NULL
  };
  static const gchar *const llama3[] = { "llama3", "llama-v3", "llama-bpe",
    "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "glm4", NULL
  };
  static const gchar *const llama3_merges[] = { "dbrx", "smaug-bpe",
    "chatglm-bpe", NULL
  };
  static const gchar *const qwen2[] = { "qwen2", "deepseek-r1-qwen",
    "stablelm2", "hunyuan", NULL
  };

  *n_stages = 0;
  *ignore_merges = FALSE;
  memset (stages, 0, sizeof (MmPreStage) * MM_PRE_MAX_STAGES);
  if (name == NULL || *name == '\0' || g_str_equal (name, "default")) {
    /* llama.cpp's fallback for vocabularies without a known pre-tokenizer */
    if (!regex_stage ("[\\p{P}\\$\\+<=>\\^~\\|]+", &stages[0], error))
      return FALSE;
    stages[1].kind = MM_PRE_GPT2;
    stages[2].kind = MM_PRE_DIGITS;
    *n_stages = 3;
    if (!regex_stage ("[0-9][0-9][0-9]", &stages[3], error))
      return FALSE;
    *n_stages = 4;
  } else if (name_in (name, gpt2)) {
    stages[(*n_stages)++].kind = MM_PRE_GPT2;
  } else if (name_in (name, starcoder)) {
    stages[0].kind = MM_PRE_DIGITS;
    stages[0].param = 1;
    stages[1].kind = MM_PRE_GPT2;
    *n_stages = 2;
  } else if (name_in (name, llama3) || name_in (name, llama3_merges)) {
    stages[0].kind = MM_PRE_LLAMA3;
    stages[0].param = 3;
    *n_stages = 1;
    *ignore_merges = name_in (name, llama3);
  } else if (name_in (name, qwen2)) {
    stages[0].kind = MM_PRE_LLAMA3;
    stages[0].param = 1;
    *n_stages = 1;
  } else {
    g_set_error (error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_UNSUPPORTED,
        "tokenizer: unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", name);
    return FALSE;
  }
  return TRUE;
}
