/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tokenizers for the LLM families we run.
 *
 * Two algorithms:
 *  - BPE: merges ranked by order.  Byte-level (GPT-2 style: SmolLM2, Qwen2,
 *    Llama 3), the GGUF "gpt2" tokenizer model; or on plain characters with
 *    SentencePiece byte fallback, as a Hugging Face tokenizer.json describes
 *    Llama-2-style vocabularies.
 *  - SPM: SentencePiece BPE by piece score with <0xXX> byte fallback, the
 *    GGUF "llama" tokenizer model (llama.cpp's algorithm).
 *
 * A tokenizer is built from plain data (the arrays a GGUF file holds), or
 * from a Hugging Face tokenizer.json.  It is immutable once configured:
 * encode and decode may run from several threads at once.
 *
 * Added tokens (control tokens such as <|im_start|> and user-defined ones
 * such as <image>) are cut out of the text verbatim, leftmost-longest, before
 * pre-tokenization.  Control tokens are only matched with
 * MM_ENCODE_PARSE_SPECIAL; user-defined tokens always are.
 *
 * Text is UTF-8; invalid bytes are encoded as bytes (never an error) and
 * come back unchanged from mm_tokenizer_decode_bytes().
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MM_TOKENIZER_ERROR (mm_tokenizer_error_quark ())
GQuark mm_tokenizer_error_quark (void);

typedef enum
{
  MM_TOKENIZER_ERROR_INVALID,   /* inconsistent vocabulary or file */
  MM_TOKENIZER_ERROR_UNSUPPORTED,       /* a feature we do not implement */
  MM_TOKENIZER_ERROR_ENCODE,    /* text has no representation */
  MM_TOKENIZER_ERROR_TOKEN,     /* token id out of range */
} MmTokenizerError;

/* The values of GGUF's tokenizer.ggml.token_type. */
typedef enum
{
  MM_TOKEN_TYPE_UNDEFINED = 0,
  MM_TOKEN_TYPE_NORMAL = 1,
  MM_TOKEN_TYPE_UNKNOWN = 2,
  MM_TOKEN_TYPE_CONTROL = 3,
  MM_TOKEN_TYPE_USER_DEFINED = 4,
  MM_TOKEN_TYPE_UNUSED = 5,
  MM_TOKEN_TYPE_BYTE = 6,
} MmTokenType;

typedef enum
{
  MM_TOKENIZER_KIND_BPE,        /* merges by rank (GGUF "gpt2") */
  MM_TOKENIZER_KIND_SPM,        /* merges by score (GGUF "llama") */
} MmTokenizerKind;

typedef enum
{
  MM_SPECIAL_BOS,
  MM_SPECIAL_EOS,
  MM_SPECIAL_EOT,
  MM_SPECIAL_UNK,
  MM_SPECIAL_PAD,
  MM_SPECIAL_SEP,
  MM_SPECIAL_N,
} MmSpecialToken;

typedef enum
{
  MM_ENCODE_NONE = 0,
  MM_ENCODE_PARSE_SPECIAL = 1 << 0,     /* match control tokens in text */
  MM_ENCODE_ADD_SPECIAL = 1 << 1,       /* add BOS/EOS as configured */
} MmEncodeFlags;

typedef enum
{
  MM_DECODE_NONE = 0,
  MM_DECODE_SPECIAL = 1 << 0,   /* render control/unknown tokens' text */
} MmDecodeFlags;

typedef struct _MmTokenizer MmTokenizer;

/* Byte-level BPE from GGUF-style arrays.  @merges are "left right" strings
 * (tokenizer.ggml.merges), rank = index.  @token_types (nullable: all
 * normal) are MmTokenType values.  @pre is tokenizer.ggml.pre: "gpt-2",
 * "llama-bpe", "qwen2", "smollm", "starcoder", ... (NULL or "default": the
 * GPT-2 split).  An unknown @pre is an error. */
MmTokenizer *mm_tokenizer_new_bpe (const gchar * const *tokens,
    gsize n_tokens, const gchar * const *merges, gsize n_merges,
    const gint32 * token_types, const gchar * pre, GError ** error);

/* SentencePiece from GGUF-style arrays (tokenizer.ggml.model "llama").
 * @token_types: nullable.  add_space_prefix defaults to TRUE. */
MmTokenizer *mm_tokenizer_new_spm (const gchar * const *tokens,
    const gfloat * scores, const gint32 * token_types, gsize n_tokens,
    GError ** error);

/* A Hugging Face tokenizer.json (model type "BPE").  BOS/add_bos come from
 * a TemplateProcessing post-processor; EOS and friends live in
 * tokenizer_config.json: see mm_tokenizer_load_hf_config(). */
MmTokenizer *mm_tokenizer_new_from_hf_json (const gchar * path,
    GError ** error);
MmTokenizer *mm_tokenizer_new_from_hf_json_data (const gchar * data,
    gssize length, GError ** error);

/* Reads tokenizer_config.json next to a tokenizer.json: bos_token,
 * eos_token, pad_token, unk_token, add_bos_token, add_eos_token, and
 * returns chat_template in @chat_template (transfer full, nullable). */
gboolean mm_tokenizer_load_hf_config (MmTokenizer * t, const gchar * path,
    gchar ** chat_template, GError ** error);

void mm_tokenizer_free (MmTokenizer * t);

MmTokenizerKind mm_tokenizer_get_kind (const MmTokenizer * t);
gsize mm_tokenizer_get_n_tokens (const MmTokenizer * t);
/* (transfer none) (nullable): the vocabulary text; NULL when out of range. */
const gchar *mm_tokenizer_token_text (const MmTokenizer * t, gint32 id);
MmTokenType mm_tokenizer_token_type (const MmTokenizer * t, gint32 id);
/* Exact vocabulary lookup ("<|im_end|>", "Ġthe"); -1 when absent. */
gint32 mm_tokenizer_token_id (const MmTokenizer * t, const gchar * text);

/* Special ids, -1 = none.  Setting EOS or EOT also marks it end-of-gen. */
void mm_tokenizer_set_special (MmTokenizer * t, MmSpecialToken which,
    gint32 id);
gint32 mm_tokenizer_get_special (const MmTokenizer * t,
    MmSpecialToken which);
/* Looks @text up and sets it; FALSE (nothing set) when absent. */
gboolean mm_tokenizer_set_special_by_text (MmTokenizer * t,
    MmSpecialToken which, const gchar * text);
void mm_tokenizer_set_add_bos (MmTokenizer * t, gboolean add_bos);
gboolean mm_tokenizer_get_add_bos (const MmTokenizer * t);
void mm_tokenizer_set_add_eos (MmTokenizer * t, gboolean add_eos);
gboolean mm_tokenizer_get_add_eos (const MmTokenizer * t);
/* SPM only: prefix each text fragment with a space (GGUF
 * tokenizer.ggml.add_space_prefix, default TRUE). */
void mm_tokenizer_set_add_space_prefix (MmTokenizer * t, gboolean add);

/* End of generation: EOS, EOT, ids added here, and control tokens known to
 * end a turn (<|im_end|>, <|eot_id|>, <end_of_utterance>, <|endoftext|>,
 * <|end|>, <end_of_turn>, <|eom_id|>) found in the vocabulary. */
void mm_tokenizer_add_eog (MmTokenizer * t, gint32 id);
gboolean mm_tokenizer_is_eog (const MmTokenizer * t, gint32 id);

/* Appends the ids of @text (@length bytes, -1: NUL-terminated) to @ids_out
 * (a GArray of gint32). */
gboolean mm_tokenizer_encode (const MmTokenizer * t, const gchar * text,
    gssize length, MmEncodeFlags flags, GArray * ids_out, GError ** error);

/* The bytes of one token, appended to @out.  SPM's leading-space strip is
 * not applied here (see MmDecodeStream). */
gboolean mm_tokenizer_token_to_piece (const MmTokenizer * t, gint32 id,
    MmDecodeFlags flags, GString * out, GError ** error);

/* (transfer full): the bytes of @ids, exactly as encoded. */
GBytes *mm_tokenizer_decode_bytes (const MmTokenizer * t, const gint32 * ids,
    gsize n_ids, MmDecodeFlags flags, GError ** error);
/* (transfer full): valid UTF-8; each invalid byte becomes U+FFFD. */
gchar *mm_tokenizer_decode (const MmTokenizer * t, const gint32 * ids,
    gsize n_ids, MmDecodeFlags flags, GError ** error);

/* Incremental decoding for streaming output: text is released as soon as
 * it is complete UTF-8; a partial character is held back until the next
 * token completes it.  The concatenated output equals mm_tokenizer_decode()
 * of all pushed ids.  The tokenizer must outlive the stream. */
typedef struct _MmDecodeStream MmDecodeStream;

MmDecodeStream *mm_decode_stream_new (const MmTokenizer * t,
    MmDecodeFlags flags);
void mm_decode_stream_free (MmDecodeStream * s);
/* Appends the newly completed text to @out (possibly nothing). */
gboolean mm_decode_stream_push (MmDecodeStream * s, gint32 id, GString * out,
    GError ** error);
/* Emits what is held back (invalid bytes as U+FFFD) and starts over. */
void mm_decode_stream_flush (MmDecodeStream * s, GString * out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmTokenizer, mm_tokenizer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmDecodeStream, mm_decode_stream_free)

G_END_DECLS
