/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chat templates of the families we run, recognised from the Jinja template
 * text a model carries (GGUF tokenizer.chat_template, tokenizer_config.json
 * chat_template) and rendered in C, byte-for-byte as transformers'
 * apply_chat_template (+ the Idefics3 processor's image expansion) does:
 *
 *   CHATML    <|im_start|>role\ncontent<|im_end|>\n ...  (Qwen2, SmolLM2;
 *             the template's default system prompt is found and used)
 *   LLAMA3    [BOS]<|start_header_id|>role<|end_header_id|>\n\ncontent
 *             <|eot_id|> ...  (content trimmed; the 3.1+ "Cutting Knowledge
 *             Date" system header when the template has one)
 *   IDEFICS3  <|im_start|>User: content<end_of_utterance>\nAssistant:
 *             (SmolVLM), images as <fake_token_around_image><global-img>
 *             <image>*N<fake_token_around_image>, tiles with <row_r_col_c>
 *   PLAIN     no template: [BOS] and the contents joined by "\n"
 *
 * Images under CHATML / LLAMA3 may take MiniCPM-V's markers (see
 * MmChatImageStyle; llama.cpp's mtmd forms): 2.6 and later
 *   <image>overview</image><slice>s</slice><slice>s</slice>\n<slice>...
 * 2.5
 *   <image>overview</image><slice><image>s</image><image>s</image>\n...
 *   </slice>
 * a newline between rows of slices, embedding positions as <unk>.
 *
 * The result is a token id sequence in which media embedding positions hold
 * MM_CHAT_MEDIA_ID, and a list of spans saying which media part fills
 * which positions, so the LLM can splice encoder outputs there.
 */
#pragma once

#include "mm-tokenizer.h"

G_BEGIN_DECLS

#define MM_CHAT_MEDIA_ID (-1)

typedef enum
{
  MM_CHAT_FORMAT_PLAIN,
  MM_CHAT_FORMAT_CHATML,
  MM_CHAT_FORMAT_LLAMA3,
  MM_CHAT_FORMAT_IDEFICS3,
} MmChatFormat;

/* How images are marked up outside the IDEFICS3 format. */
typedef enum
{
  MM_CHAT_IMAGE_MARKERS,        /* the media markers: prefix, token x n,
                                 * suffix; an image's views in one run */
  MM_CHAT_IMAGE_MINICPMV_25,    /* MiniCPM-Llama3-V 2.5 */
  MM_CHAT_IMAGE_MINICPMV_26,    /* MiniCPM-V 2.6, MiniCPM-o 2.6, 4.x */
} MmChatImageStyle;

typedef enum
{
  MM_CHAT_ROLE_SYSTEM,
  MM_CHAT_ROLE_USER,
  MM_CHAT_ROLE_ASSISTANT,
} MmChatRole;

typedef enum
{
  MM_CHAT_PART_TEXT,
  MM_CHAT_PART_IMAGE,
  MM_CHAT_PART_AUDIO,
} MmChatPartKind;

typedef struct
{
  MmChatPartKind kind;
  const gchar *text;            /* TEXT */
  guint n_tokens;               /* IMAGE/AUDIO: embeddings (per tile) */
  guint rows, cols;             /* IMAGE, IDEFICS3 or MiniCPM-V: tile (slice)
                                 * grid; 0: none */
} MmChatPart;

typedef struct
{
  MmChatRole role;
  const MmChatPart *parts;
  guint n_parts;
} MmChatMessage;

/* Where one media part's embeddings go: positions [pos, pos + n_tokens) of
 * the ids.  An image split into tiles has one span per tile, in the
 * prompt's order: IDEFICS3 tiles row by row, then the global image;
 * MiniCPM-V the overview (the global image), then the slices. */
typedef struct
{
  MmChatPartKind kind;
  guint message, part;          /* indices into the messages given */
  guint tile;                   /* 0 .. rows*cols - 1: the tile, row by
                                 * row; rows*cols: the global image */
  guint pos, n_tokens;
} MmChatMediaSpan;

typedef struct
{
  gchar *text;                  /* the rendered prompt, media as markers */
  GArray *ids;                  /* gint32; MM_CHAT_MEDIA_ID at media */
  GArray *spans;                /* MmChatMediaSpan */
} MmChatPrompt;

typedef struct _MmChatTemplate MmChatTemplate;

/* Recognises @template_text (nullable: PLAIN).  Never fails: an unknown
 * template falls back to PLAIN; see mm_chat_template_get_format(). */
MmChatTemplate *mm_chat_template_new (const gchar * template_text);
MmChatTemplate *mm_chat_template_new_for_format (MmChatFormat format);
void mm_chat_template_free (MmChatTemplate * t);

MmChatFormat mm_chat_template_get_format (const MmChatTemplate * t);
const gchar *mm_chat_format_name (MmChatFormat format);
/* (nullable): the system prompt used when the messages have none. */
const gchar *mm_chat_template_get_default_system (const MmChatTemplate * t);
void mm_chat_template_set_default_system (MmChatTemplate * t,
    const gchar * system);
/* Llama 3.1+: "Today Date: ..." (default: the template's literal, or today
 * as "%d %b %Y" when the template asks strftime_now, as transformers does). */
void mm_chat_template_set_date (MmChatTemplate * t, const gchar * date);
/* The text a media part is rendered as: @prefix, @token n_tokens times,
 * @suffix (IDEFICS3 images use their own fixed markers).  Defaults: image
 * "<image>", audio "<audio>"; Qwen2-VL's <|vision_start|><|image_pad|>
 * <|vision_end|> when the template has them. */
void mm_chat_template_set_media_markers (MmChatTemplate * t,
    MmChatPartKind kind, const gchar * prefix, const gchar * token,
    const gchar * suffix);

/* MiniCPM-V markers for images when @tok has <image>, </image>, <slice>
 * and </slice> (2.5's under the LLAMA3 format: MiniCPM-Llama3-V 2.5, 2.6's
 * otherwise), the media markers else; IDEFICS3 keeps its own. */
MmChatImageStyle mm_chat_template_image_style_for (const MmChatTemplate * t,
    const MmTokenizer * tok);
void mm_chat_template_set_image_style (MmChatTemplate * t,
    MmChatImageStyle style);
MmChatImageStyle mm_chat_template_get_image_style (const MmChatTemplate * t);

/* Renders @messages and tokenizes the text (special tokens parsed, nothing
 * added but what the template writes; PLAIN adds BOS when @tok says so).
 * @tok may be NULL: then only text is produced. */
MmChatPrompt *mm_chat_template_apply (const MmChatTemplate * t,
    const MmTokenizer * tok, const MmChatMessage * messages, guint n_messages,
    gboolean add_generation_prompt, GError ** error);
/* One user turn: optional system prompt (NULL: the template default). */
MmChatPrompt *mm_chat_template_apply_simple (const MmChatTemplate * t,
    const MmTokenizer * tok, const gchar * system, const MmChatPart * parts,
    guint n_parts, gboolean add_generation_prompt, GError ** error);
void mm_chat_prompt_free (MmChatPrompt * p);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmChatTemplate, mm_chat_template_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmChatPrompt, mm_chat_prompt_free)

G_END_DECLS
