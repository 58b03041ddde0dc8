/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whisper: log-mel features, the audio encoder, and the text decoder for
 * transcription, from Hugging Face Whisper folders (config.json,
 * model.safetensors, preprocessor_config.json, and for transcription
 * generation_config.json + tokenizer.json).
 *
 * The encoder also loads from GGUF audio projector files as llama.cpp
 * writes them (`convert_hf_to_gguf.py --mmproj`: clip.has_audio_encoder,
 * a.* encoder tensors, mm.a.* connector): a Whisper encoder followed by
 * the connector that turns its output into tokens of an LLM's hidden
 * size, for the projector types
 *
 *   ultravox  stack s frames (zero-padded to whole stacks), RMSNorm,
 *             linear, SwiGLU (silu of the second half times the first),
 *             RMSNorm, linear (Ultravox v0.5 UltravoxProjector)
 *   voxtral   stack s frames, linear, GELU, linear
 *             (VoxtralMultiModalProjector)
 *   qwen2a    average-pool frame pairs before the encoder's final
 *             LayerNorm, linear (Qwen2AudioEncoder + projector)
 *
 * Such a model has no decoder: mm_whisper_load() refuses it.
 *
 * An MmWhisper holds immutable weights: the encoder runs on the caller's
 * graph, so several threads (element instances) may encode at once with
 * one model.  Decoding state (KV caches, cross-attention keys/values) lives
 * in an MmWhisperDecoder, one per thread; the model must outlive it.
 */
#pragma once

#include "mm-ops.h"
#include "mm-mel.h"

G_BEGIN_DECLS typedef struct _MmWhisper MmWhisper;
typedef struct _MmWhisperDecoder MmWhisperDecoder;

MmWhisper *mm_whisper_load (MmEngine * engine, const gchar * path,
    GError ** error);
/* Features and encoder only (no decoder weights, tokenizer or generation
 * config): for elements that only make audio tokens.  @path is a Hugging
 * Face Whisper folder or a GGUF audio projector file. */
MmWhisper *mm_whisper_load_encoder (MmEngine * engine, const gchar * path,
    GError ** error);
void mm_whisper_free (MmWhisper * w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmWhisper, mm_whisper_free)
/* The folder's (or file's) base name. */
     const gchar *mm_whisper_id (MmWhisper * w);
     MmEngine *mm_whisper_engine (MmWhisper * w);
/* Input: mono float samples at this rate, windows of n_samples
 * (preprocessor_config.json: 30 s for released models). */
     gint mm_whisper_sampling_rate (MmWhisper * w);
     gint mm_whisper_n_samples (MmWhisper * w);
/* Encoder positions: n_audio_tokens rows (max_source_positions, one per
 * 20 ms) of d_model. */
     gint mm_whisper_n_audio_tokens (MmWhisper * w);
     gint mm_whisper_d_model (MmWhisper * w);
     MmMel *mm_whisper_mel (MmWhisper * w);

     typedef enum
     {
       MM_WHISPER_PROJ_NONE,    /* a plain Whisper encoder */
       MM_WHISPER_PROJ_ULTRAVOX,
       MM_WHISPER_PROJ_VOXTRAL,
       MM_WHISPER_PROJ_QWEN2A,
     } MmWhisperProj;

     MmWhisperProj mm_whisper_projector (MmWhisper * w);
/* "ultravox", "voxtral", "qwen2a" (llama.cpp's names), "none". */
     const gchar *mm_whisper_projector_name (MmWhisperProj proj);
/* What mm_whisper_encode() and mm_whisper_encoder_run() make: the encoder
 * output (n_audio_tokens x d_model) for a plain Whisper encoder, the
 * connector's output (tokens x the LLM's hidden size) for a projector
 * file. */
     gint mm_whisper_n_output_tokens (MmWhisper * w);
     gint mm_whisper_output_dim (MmWhisper * w);
/* TRUE when the decoder is loaded, and the folder has the tokenizer and
 * the special tokens to transcribe. */
     gboolean mm_whisper_can_transcribe (MmWhisper * w);

/* Encoder graph: features [n_mels, n_frames] (n_frames = n_samples / hop)
 * -> [n_audio_tokens, d_model] (qwen2a: n_audio_tokens / 2 rows, pooled
 * before the final LayerNorm as Qwen2AudioEncoder does), arena tensors of
 * @g: the audio tower's last_hidden_state.  With
 * @hidden_states (nullable, n_layer + 1 entries), also the input of every
 * block and the last block's output (before the final LayerNorm), as
 * transformers' output_hidden_states. */
     MmTensor *mm_whisper_encode_features (MmWhisper * w, MmGraph * g,
    MmTensor * features, MmTensor ** hidden_states);
/* The connector over an encoder output of mm_whisper_encode_features():
 * -> [n_output_tokens, output_dim] (@encoded itself when there is none). */
     MmTensor *mm_whisper_project (MmWhisper * w, MmGraph * g,
    MmTensor * encoded);
/* Features, encoder and connector: @audio (F32, up to n_samples samples
 * at the model's rate; shorter is zero-padded) -> [n_output_tokens,
 * output_dim]. */
     MmTensor *mm_whisper_encode (MmWhisper * w, MmGraph * g, MmTensor * audio);

/* Encoder state for one thread: the same computation as
 * mm_whisper_encode(), with a scratch arena that holds one block at a time
 * (the residual stream waits in a buffer of its own between blocks), so a
 * 30 s window takes ~130 MB of scratch for whisper-tiny instead of ~1 GB.
 * The model must outlive it. */
     typedef struct _MmWhisperEncoder MmWhisperEncoder;

     MmWhisperEncoder *mm_whisper_encoder_new (MmWhisper * w, GError ** error);
     void mm_whisper_encoder_free (MmWhisperEncoder * e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmWhisperEncoder, mm_whisper_encoder_free)
/* Features, encoder and connector of @n samples of @audio (host, mono at
 * the model's rate; more than a window are ignored, fewer zero-padded) into
 * @out, an F32 [n_output_tokens, output_dim] device tensor of the caller.
 * Blocks until the result is in @out. */
     gboolean mm_whisper_encoder_run (MmWhisperEncoder * e, const float *audio,
    gsize n, MmTensor * out, GError ** error);
/* Device bytes of its scratch arena (high-water mark). */
     gsize mm_whisper_encoder_arena_size (MmWhisperEncoder * e);

/* ---- transcription ---- */

     typedef enum
     {
       MM_WHISPER_TASK_TRANSCRIBE,
       MM_WHISPER_TASK_TRANSLATE,
     } MmWhisperTask;

     typedef struct
     {
       const gchar *language;   /* "en" or "<|en|>"; NULL: detect
                                 * (multilingual models) */
       MmWhisperTask task;
       gboolean timestamps;     /* timestamp tokens and segments */
       gint max_tokens;         /* <= 0: up to the decoder's context */
     } MmWhisperOptions;

     void mm_whisper_options_init (MmWhisperOptions * o);

     typedef struct
     {
       gdouble t0, t1;          /* seconds from the window's start */
       gchar *text;
     } MmWhisperSegment;

     typedef struct
     {
       GArray *ids;             /* gint32: generated tokens, without the
                                 * prompt and the end token */
       gchar *text;             /* the text tokens, decoded */
       GArray *segments;        /* MmWhisperSegment, with timestamps */
       gchar *language;         /* "en", ... (NULL for English-only models) */
       gint n_forward;          /* decoder passes run */
       gdouble decode_ms;
     } MmWhisperResult;

/* Frees the members (not @r itself) and zeroes it. */
     void mm_whisper_result_clear (MmWhisperResult * r);

     MmWhisperDecoder *mm_whisper_decoder_new (MmWhisper * w, GError ** error);
     void mm_whisper_decoder_free (MmWhisperDecoder * d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmWhisperDecoder, mm_whisper_decoder_free)
/* Computes the cross-attention keys and values of every decoder layer from
 * an encoder output [n_audio_tokens, d_model] (any graph's tensor; it is
 * read before this returns) and forgets the text KV cache. */
     gboolean mm_whisper_decoder_set_audio (MmWhisperDecoder * d,
    MmTensor * encoded, GError ** error);
/* Feeds @ids at positions [pos0, pos0 + n) (the KV cache holds what came
 * before) and returns the logits of the last one: (transfer full) vocab
 * floats, g_free() them. */
     float *mm_whisper_decoder_forward (MmWhisperDecoder * d,
    const gint32 * ids, gint n, gint pos0, GError ** error);
/* Greedy decoding of the current audio with Whisper's prompt (start of
 * transcript, language, task, no-timestamps) and the logit rules of
 * generation_config.json as transformers' generate applies them:
 * suppress_tokens, begin_suppress_tokens and, with timestamps, the
 * timestamp rules.  One pass over the window (no seeking). */
     gboolean mm_whisper_decoder_transcribe (MmWhisperDecoder * d,
    const MmWhisperOptions * opt, MmWhisperResult * result, GError ** error);

/* The vocabulary size and the special ids the decoder uses. */
     gint mm_whisper_vocab_size (MmWhisper * w);
     gint32 mm_whisper_token_sot (MmWhisper * w);
     gint32 mm_whisper_token_eot (MmWhisper * w);
     gint32 mm_whisper_token_no_timestamps (MmWhisper * w);

G_END_DECLS
