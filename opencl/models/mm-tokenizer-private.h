/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals shared by mm-tokenizer.c, mm-tokenizer-pre.c and
 * mm-tokenizer-hf.c.  Not installed, not API. */
#pragma once

#include "mm-tokenizer.h"

G_BEGIN_DECLS

/* ---- Unicode text as code points (mm-tokenizer-pre.c) ---------------- */

/* A byte that is not part of valid UTF-8: one "character" of class OTHER. */
#define MM_CP_INVALID ((gunichar) 0xFFFFFFFFu)

typedef enum
{
  MM_CC_OTHER = 0,              /* [^\s\p{L}\p{N}] */
  MM_CC_LETTER = 1,             /* \p{L} */
  MM_CC_NUMBER = 2,             /* \p{N} */
  MM_CC_SPACE = 3,              /* \s: Unicode White_Space */
} MmCharClass;

typedef struct
{
  const gchar *bytes;           /* not owned */
  gsize n;                      /* code points */
  gunichar *cp;                 /* [n] */
  guint8 *cls;                  /* [n] MmCharClass */
  gsize *off;                   /* [n + 1] byte offsets */
} MmCpText;

/* Decodes @len bytes (strict UTF-8; each invalid byte is one MM_CP_INVALID
 * character). Reuses @t's arrays. */
void mm_cp_text_set (MmCpText * t, const gchar * bytes, gsize len);
void mm_cp_text_clear (MmCpText * t);
MmCharClass mm_unichar_class (gunichar c);
/* Decodes one strict UTF-8 character; returns its length (1..4) and
 * MM_CP_INVALID with length 1 for an invalid byte. */
guint mm_utf8_decode (const guint8 * p, gsize avail, gunichar * out);

/* ---- pre-tokenizer stages ------------------------------------------- */

typedef enum
{
  MM_PRE_GPT2,                  /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
                                 * ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
  MM_PRE_LLAMA3,                /* (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|
                                 * \p{N}{1,param}| ?[^\s\p{L}\p{N}]+[\r\n]*|
                                 * \s*[\r\n]+|\s+(?!\S)|\s+  (param 0: \p{N}+) */
  MM_PRE_DIGITS,                /* isolate \p{N}: one each (param 1) or runs */
  MM_PRE_METASPACE,             /* split before each U+2581 */
  MM_PRE_REGEX,                 /* any other pattern, GRegex, "Isolated" */
} MmPreKind;

typedef struct
{
  MmPreKind kind;
  gint param;
  GRegex *regex;                /* MM_PRE_REGEX only, owned */
} MmPreStage;

#define MM_PRE_MAX_STAGES 6

/* Splits code points [s, e) of @t; appends the end index of each piece to
 * @ends (a GArray of gsize).  Pieces cover [s, e) without gaps. */
void mm_pre_split (const MmPreStage * st, const MmCpText * t, gsize s,
    gsize e, GArray * ends);

/* Recognises the regexes of known families (HF Split patterns and the
 * llama.cpp forms); FALSE when @pattern is none of them. */
gboolean mm_pre_stage_from_pattern (const gchar * pattern, MmPreStage * st);
/* A GRegex for a Split pattern, with \s meaning Unicode White_Space. */
GRegex *mm_pre_regex_new (const gchar * pattern, GError ** error);
/* Stages for a GGUF tokenizer.ggml.pre name. */
gboolean mm_pre_stages_for_name (const gchar * name, MmPreStage * stages,
    guint * n_stages, gboolean * ignore_merges, GError ** error);

/* ---- hash maps ------------------------------------------------------- */

typedef struct
{
  gint32 *slots;                /* token id or -1 */
  guint32 mask;
} MmStrMap;

typedef struct
{
  guint64 *keys;                /* (left << 32 | right), G_MAXUINT64 empty */
  gint32 *rank;
  gint32 *result;
  guint32 mask;
  guint32 n;
} MmPairMap;

/* ---- the tokenizer --------------------------------------------------- */

typedef enum
{
  MM_PREFIX_NEVER,
  MM_PREFIX_ALWAYS,             /* every text fragment */
  MM_PREFIX_FIRST,              /* only a fragment at the start of the text */
} MmPrefixScheme;

enum
{
  MM_ADDED = 1 << 0,
  MM_ADDED_SPECIAL = 1 << 1,
  MM_ADDED_LSTRIP = 1 << 2,
  MM_ADDED_RSTRIP = 1 << 3,
};

typedef struct
{
  gint32 id;
  guint32 len;
  const gchar *text;            /* t->text[id] */
  gboolean special;             /* control: only with PARSE_SPECIAL */
  gboolean lstrip, rstrip;
} MmAddedToken;

struct _MmTokenizer
{
  MmTokenizerKind kind;
  guint n_tokens;
  gchar **text;                 /* [n_tokens] owned, NUL-terminated */
  guint32 *text_len;
  guint8 *type;                 /* MmTokenType */
  gfloat *score;                /* SPM only */
  MmStrMap vocab;
  MmPairMap merges;

  /* BPE */
  gboolean byte_level;          /* GPT-2 byte <-> unicode mapping */
  gboolean ignore_merges;       /* a word found whole in the vocab wins */
  gboolean byte_fallback;       /* unknown chars -> <0xXX> tokens */
  gboolean fuse_unk;
  gunichar byte_char[256];      /* byte -> mapped char */
  gint16 char_byte[324];        /* mapped char -> byte, -1 */
  gint32 byte_token[256];       /* token of each byte (mapped or <0xXX>) */

  /* text transforms before pre-tokenization */
  gboolean normalize;
  GNormalizeMode normalize_mode;
  gboolean escape_spaces;       /* ' ' -> U+2581 */
  const gchar *prefix;          /* " " or "\u2581" or NULL */
  MmPrefixScheme prefix_scheme;
  gboolean prefix_unless_present;

  MmPreStage pre[MM_PRE_MAX_STAGES];
  guint n_pre;

  /* decoding */
  gboolean strip_leading_space;
  gboolean unescape_spaces;     /* U+2581 -> ' ' */
  guint8 *piece;                /* decoded bytes of all tokens */
  guint32 *piece_off;           /* [n_tokens + 1] */

  gint32 special[MM_SPECIAL_N];
  gboolean add_bos, add_eos;
  GArray *eog;                  /* gint32 */

  guint8 *added_flags;          /* [n_tokens] MM_ADDED_* bits */
  MmAddedToken *added;          /* sorted: first byte, then longest first */
  guint n_added;
  guint32 added_first[257];     /* index range per first byte */
};

/* Allocates a tokenizer owning copies of @tokens; types default NORMAL. */
MmTokenizer *mm_tokenizer_alloc (MmTokenizerKind kind,
    const gchar * const *tokens, gsize n_tokens, const gint32 * types,
    GError ** error);
/* Adds merges "a b" (or a/b pairs when @rights is non-NULL) with rank =
 * index; pairs whose parts or result are not tokens are skipped. */
void mm_tokenizer_add_merges (MmTokenizer * t, const gchar * const *lefts,
    const gchar * const *rights, gsize n);
/* Builds the lookup tables (added tokens, bytes, decode pieces, EOG) once
 * everything else is set. */
gboolean mm_tokenizer_finish (MmTokenizer * t, GError ** error);
/* Marks @id as an added token (matched verbatim in text). */
void mm_tokenizer_mark_added (MmTokenizer * t, gint32 id, gboolean special,
    gboolean lstrip, gboolean rstrip);
gint32 mm_tokenizer_lookup (const MmTokenizer * t, const gchar * s,
    gsize len);
/* Pre-tokenization alone (no added tokens, no normaliser): appends the
 * byte end offset of each word of @text to @ends (GArray of gsize).  For
 * tests. */
void mm_tokenizer_split_words (const MmTokenizer * t, const gchar * text,
    gsize len, GArray * ends);
/* Rank of the merge (a, b) and its result, or -1. */
gint32 mm_tokenizer_merge_rank (const MmTokenizer * t, gint32 a, gint32 b,
    gint32 * result);

G_END_DECLS
