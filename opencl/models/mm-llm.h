/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Llama-family decoder LLMs (Llama, SmolLM2, Qwen2) with tokenizer, chat
 * template and sampler, from GGUF or Hugging Face folders.
 *
 * A MmLlm keeps one KV cache and the token sequence it holds, so a request
 * whose leading tokens (system prompt, unchanged context) match the
 * previous one only computes the new suffix.  One request at a time per
 * model (callers serialise; the element runs generations on one worker
 * thread).
 */
#pragma once

#include "mm-ops.h"

G_BEGIN_DECLS

typedef struct _MmLlm MmLlm;

typedef enum
{
  MM_MEDIA_IMAGE,
  MM_MEDIA_AUDIO,
} MmMediaKind;

/* Encoder output spliced into the prompt where the template puts media.
 * Either @buf (a device buffer of the same engine, F32 [n_tokens, dim] at
 * byte @offset) or @host is set.  @id identifies the content (e.g. a
 * sequence number) so unchanged media keep their KV cache entries.
 * An image split into tiles (Idefics3 / SmolVLM layout, MiniCPM-V
 * slices) sets @rows x @cols: its n_tokens are rows * cols + 1 equal
 * views, the tiles row by row then the global image, and the Idefics3
 * template splices them with their <row_r_col_c> / <global-img> markers,
 * a tokenizer with MiniCPM-V's markers with <image> (the global image
 * first) and <slice> (see mm-chat.h); other templates take the tokens as
 * one run; 0 x 0: one view. */
typedef struct
{
  MmMediaKind kind;
  gint n_tokens, dim;
  cl_mem buf;
  gsize offset;
  const float *host;
  guint64 id;
  gint rows, cols;
} MmLlmMedia;

typedef struct
{
  gint max_tokens;              /* <= 0: until EOS or the context is full */
  gfloat temperature;           /* 0: greedy */
  gint top_k;                   /* 0: off */
  gfloat top_p;                 /* 1: off */
  gfloat repetition_penalty;    /* 1: off */
  guint64 seed;
  const gchar *const *stop;     /* nullable, NULL-terminated stop strings */
} MmLlmSampling;

void mm_llm_sampling_init (MmLlmSampling * s);

typedef struct
{
  const gchar *system_prompt;   /* nullable */
  const gchar *prompt;          /* the user's question / instruction */
  const MmLlmMedia *media;      /* placed before the prompt, in order */
  gint n_media;
  MmLlmSampling sampling;
} MmLlmRequest;

typedef struct
{
  gint prompt_tokens;           /* tokens in the full prompt */
  gint reused_tokens;           /* of which came from the KV cache */
  gint generated_tokens;
  gdouble prefill_ms, decode_ms;
} MmLlmStats;

/* Called with each new piece of text (valid UTF-8); return FALSE to stop. */
typedef gboolean (*MmLlmTokenFunc) (const gchar * piece, gpointer user_data);

MmLlm *mm_llm_load (MmEngine * engine, const gchar * path, GError ** error);
void mm_llm_free (MmLlm * llm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmLlm, mm_llm_free)

gint mm_llm_hidden_size (MmLlm * llm);
gint mm_llm_context_size (MmLlm * llm);
const gchar *mm_llm_id (MmLlm * llm);
/* Tokens the prompt would take (template included), for budget checks. */
gint mm_llm_count_prompt_tokens (MmLlm * llm, const MmLlmRequest * req,
    GError ** error);

/* Runs one request; returns the generated text (newly allocated) or NULL
 * with @error set.  @stats and @func are optional. */
gchar *mm_llm_generate (MmLlm * llm, const MmLlmRequest * req,
    MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
    GError ** error);

G_END_DECLS
