/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Picking the next token from logits, and knowing when to stop.
 *
 * MmSampler follows transformers' generate() logits processing, in its
 * order: repetition penalty (over every id seen: prompt and generated),
 * then temperature, top-k, top-p, softmax and a draw.  Temperature <= 0
 * means greedy (argmax of the penalised logits, first index on ties).
 * Each sampler owns its random state (xoshiro256**, seeded from
 * params.seed): the same seed, history and logits give the same tokens.
 *
 * MmStopper decides when generation ends: an end-of-generation id, a stop
 * string in the decoded text (trimmed from the output), or max tokens.  It
 * holds back text that may be the start of a stop string, so streamed
 * output never shows part of one.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MM_SAMPLER_ERROR (mm_sampler_error_quark ())
GQuark mm_sampler_error_quark (void);

typedef enum
{
  MM_SAMPLER_ERROR_INVALID,     /* bad parameters or logits */
} MmSamplerError;

typedef struct
{
  gfloat temperature;           /* <= 0: greedy */
  gint top_k;                   /* <= 0: off */
  gfloat top_p;                 /* >= 1: off */
  gfloat repetition_penalty;    /* 1: off; > 1 discourages repeats */
  guint64 seed;
} MmSamplerParams;

/* temperature 1, top_k off, top_p 1, repetition_penalty 1, seed 0 */
void mm_sampler_params_init (MmSamplerParams * p);

typedef struct _MmSampler MmSampler;

/* (transfer full) (nullable): NULL with @error on invalid parameters
 * (NaN, top_p <= 0, repetition_penalty <= 0). */
MmSampler *mm_sampler_new (const MmSamplerParams * params, GError ** error);
void mm_sampler_free (MmSampler * s);
/* Forgets the history and restarts the random sequence from the seed. */
void mm_sampler_reset (MmSampler * s);
/* Ids the repetition penalty applies to (the prompt). */
void mm_sampler_add_history (MmSampler * s, const gint32 * ids, gsize n);

/* Picks a token from @logits[n_vocab] (not modified) and adds it to the
 * history.  Fails on an empty vocabulary or when no logit is a number. */
gboolean mm_sampler_sample (MmSampler * s, const gfloat * logits,
    gsize n_vocab, gint32 * id, GError ** error);
/* The distribution sample() would draw from: @probs[n_vocab], 0 for what
 * top-k/top-p removed; one-hot when greedy.  Draws nothing. */
gboolean mm_sampler_get_probs (MmSampler * s, const gfloat * logits,
    gsize n_vocab, gfloat * probs, GError ** error);

typedef enum
{
  MM_STOP_NONE,                 /* go on */
  MM_STOP_EOG,                  /* an end-of-generation id */
  MM_STOP_STRING,               /* a stop string appeared */
  MM_STOP_MAX_TOKENS,
} MmStopReason;

typedef struct _MmStopper MmStopper;

/* @max_tokens: 0 for no limit. */
MmStopper *mm_stopper_new (guint max_tokens);
void mm_stopper_free (MmStopper * st);
void mm_stopper_add_id (MmStopper * st, gint32 id);
void mm_stopper_add_string (MmStopper * st, const gchar * stop);
/* Clears the text and the token count (not the stop ids and strings). */
void mm_stopper_reset (MmStopper * st);
/* Feeds one generated token and its text (from MmDecodeStream; @len -1:
 * NUL-terminated).  Appends the text now safe to show to @out (nullable):
 * never any part of a stop string.  When it returns a reason to stop,
 * everything up to the stop string has been appended. */
MmStopReason mm_stopper_push (MmStopper * st, gint32 id, const gchar * text,
    gssize len, GString * out);
/* (transfer none): the text so far, held-back text included; once
 * stopped, the answer (stop string trimmed). */
const gchar *mm_stopper_get_text (const MmStopper * st);
guint mm_stopper_get_n_tokens (const MmStopper * st);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmSampler, mm_sampler_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmStopper, mm_stopper_free)

G_END_DECLS
