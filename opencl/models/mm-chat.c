/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chat templates: recognised from the Jinja text, rendered in C.
 *
 * Rendering appends text to one buffer and records each media run (the
 * markers standing for encoder embeddings) with its byte range; then the
 * text between runs is tokenized (special tokens parsed) and each run
 * becomes MM_CHAT_MEDIA_ID positions.  Runs sit between added tokens
 * (<image>, <fake_token_around_image>, ...), so tokenizing around them
 * gives the ids the whole string would.
 */
#include "mm-chat.h"

#include <string.h>

struct _MmChatTemplate
{
  MmChatFormat format;
  gchar *default_system;
  gchar *preamble;              /* IDEFICS3: literal text the template starts with */
  gboolean llama31;             /* "Cutting Knowledge Date" system header */
  gchar *knowledge_date;
  gchar *date;
  gchar *media_prefix[3], *media_token[3], *media_suffix[3];
  MmChatImageStyle image_style;
};

typedef struct
{
  gsize start, end;             /* bytes of the rendered text */
  MmChatPartKind kind;
  guint message, part, tile, n_tokens;
} MediaRun;

typedef struct
{
  const MmChatTemplate *t;
  const MmTokenizer *tok;
  GString *text;
  GArray *runs;                 /* MediaRun */
} Render;

/* ---- recognising a template ------------------------------------------- */

const gchar *
mm_chat_format_name (MmChatFormat format)
{
  switch (format) {
    case MM_CHAT_FORMAT_CHATML:
      return "chatml";
    case MM_CHAT_FORMAT_LLAMA3:
      return "llama3";
    case MM_CHAT_FORMAT_IDEFICS3:
      return "idefics3";
    case MM_CHAT_FORMAT_PLAIN:
    default:
      return "plain";
  }
}

/* The text of a Jinja string literal after @at, up to @end_marker, or NULL
 * when the literal ends (or is concatenated) before it.  @escaped: the
 * template source still has backslash escapes ("\n" as two characters). */
static gchar *
literal_until (const gchar * at, const gchar * end_marker, gboolean escaped)
{
  const gchar *end = strstr (at, end_marker);
  gchar *raw, *out;

  if (end == NULL || end == at)
    return NULL;
  raw = g_strndup (at, end - at);
  if (strpbrk (raw, "'\"{}+") != NULL) {
    g_free (raw);
    return NULL;
  }
  if (!escaped)
    return raw;
  out = g_strcompress (raw);
  g_free (raw);
  return out;
}

/* ChatML templates that insert a system turn when there is none:
 * '<|im_start|>system\nYou are ...<|im_end|>\n' */
static gchar *
find_default_system (const gchar * tt)
{
  const gchar *key = "<|im_start|>system", *p = tt;

  while ((p = strstr (p, key)) != NULL) {
    gchar *s = NULL;

    p += strlen (key);
    if (p[0] == '\n')
      s = literal_until (p + 1, "<|im_end|>", FALSE);
    else if (p[0] == '\\' && p[1] == 'n')
      s = literal_until (p + 2, "<|im_end|>", TRUE);
    if (s)
      return s;
  }
  return NULL;
}

/* The literal text after @key, up to a quote, backslash or newline. */
static gchar *
text_after (const gchar * tt, const gchar * key)
{
  const gchar *p = strstr (tt, key);
  gsize n;

  if (p == NULL)
    return NULL;
  p += strlen (key);
  n = strcspn (p, "\"'\\\n");
  return n > 0 ? g_strndup (p, n) : NULL;
}

/* strftime_now ("%d %b %Y") in the C locale */
static gchar *
today (void)
{
  static const gchar *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
  };
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  return g_strdup_printf ("%02d %s %04d", g_date_time_get_day_of_month (now),
      months[(g_date_time_get_month (now) + 11) % 12],
      g_date_time_get_year (now));
}

static void
detect_llama3 (MmChatTemplate * t, const gchar * tt)
{
  t->llama31 = strstr (tt, "Cutting Knowledge Date") != NULL;
  if (!t->llama31)
    return;
  t->knowledge_date = text_after (tt, "Cutting Knowledge Date: ");
  if (t->knowledge_date == NULL)
    t->knowledge_date = g_strdup ("December 2023");
  if (strstr (tt, "strftime_now"))
    t->date = today ();
  else
    t->date = text_after (tt, "date_string = \"");
  if (t->date == NULL)
    t->date = g_strdup ("26 Jul 2024");
}

MmChatTemplate *
mm_chat_template_new_for_format (MmChatFormat format)
{
  MmChatTemplate *t = g_new0 (MmChatTemplate, 1);

  t->format = format;
  mm_chat_template_set_media_markers (t, MM_CHAT_PART_IMAGE, NULL, "<image>",
      NULL);
  mm_chat_template_set_media_markers (t, MM_CHAT_PART_AUDIO, NULL, "<audio>",
      NULL);
  if (format == MM_CHAT_FORMAT_IDEFICS3)
    t->preamble = g_strdup ("<|im_start|>");
  return t;
}

MmChatTemplate *
mm_chat_template_new (const gchar * tt)
{
  MmChatTemplate *t;
  MmChatFormat f = MM_CHAT_FORMAT_PLAIN;

  if (tt && strstr (tt, "<end_of_utterance>"))
    f = MM_CHAT_FORMAT_IDEFICS3;        /* SmolVLM: <|im_start|> is its BOS */
  else if (tt && strstr (tt, "<|im_start|>"))
    f = MM_CHAT_FORMAT_CHATML;
  else if (tt && strstr (tt, "<|start_header_id|>"))
    f = MM_CHAT_FORMAT_LLAMA3;
  t = mm_chat_template_new_for_format (f);
  if (f == MM_CHAT_FORMAT_CHATML)
    t->default_system = find_default_system (tt);
  else if (f == MM_CHAT_FORMAT_LLAMA3)
    detect_llama3 (t, tt);
  else if (f == MM_CHAT_FORMAT_IDEFICS3) {
    g_free (t->preamble);
    t->preamble = g_strndup (tt, strcspn (tt, "{"));
  }
  if (tt && strstr (tt, "<|vision_start|>"))
    mm_chat_template_set_media_markers (t, MM_CHAT_PART_IMAGE,
        "<|vision_start|>", "<|image_pad|>", "<|vision_end|>");
  if (tt && strstr (tt, "<|audio_bos|>"))
    mm_chat_template_set_media_markers (t, MM_CHAT_PART_AUDIO,
        "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>");
  return t;
}

void
mm_chat_template_free (MmChatTemplate * t)
{
  guint i;

  if (t == NULL)
    return;
  g_free (t->default_system);
  g_free (t->preamble);
  g_free (t->knowledge_date);
  g_free (t->date);
  for (i = 0; i < 3; i++) {
    g_free (t->media_prefix[i]);
    g_free (t->media_token[i]);
    g_free (t->media_suffix[i]);
  }
  g_free (t);
}

MmChatFormat
mm_chat_template_get_format (const MmChatTemplate * t)
{
  return t->format;
}

const gchar *
mm_chat_template_get_default_system (const MmChatTemplate * t)
{
  return t->default_system;
}

void
mm_chat_template_set_default_system (MmChatTemplate * t, const gchar * system)
{
  g_free (t->default_system);
  t->default_system = g_strdup (system);
}

void
mm_chat_template_set_date (MmChatTemplate * t, const gchar * date)
{
  g_free (t->date);
  t->date = g_strdup (date);
}

MmChatImageStyle
mm_chat_template_image_style_for (const MmChatTemplate * t,
    const MmTokenizer * tok)
{
  static const gchar *const need[] = { "<image>", "</image>", "<slice>",
    "</slice>"
  };
  guint i;

  if (t->format != MM_CHAT_FORMAT_CHATML && t->format != MM_CHAT_FORMAT_LLAMA3)
    return MM_CHAT_IMAGE_MARKERS;
  for (i = 0; i < G_N_ELEMENTS (need); i++)
    if (tok == NULL || mm_tokenizer_token_id (tok, need[i]) < 0)
      return MM_CHAT_IMAGE_MARKERS;
  return t->format == MM_CHAT_FORMAT_LLAMA3 ? MM_CHAT_IMAGE_MINICPMV_25 :
      MM_CHAT_IMAGE_MINICPMV_26;
}

void
mm_chat_template_set_image_style (MmChatTemplate * t, MmChatImageStyle style)
{
  t->image_style = style;
}

MmChatImageStyle
mm_chat_template_get_image_style (const MmChatTemplate * t)
{
  return t->image_style;
}

void
mm_chat_template_set_media_markers (MmChatTemplate * t, MmChatPartKind kind,
    const gchar * prefix, const gchar * token, const gchar * suffix)
{
  g_return_if_fail (kind == MM_CHAT_PART_IMAGE || kind == MM_CHAT_PART_AUDIO);
  g_free (t->media_prefix[kind]);
  g_free (t->media_token[kind]);
  g_free (t->media_suffix[kind]);
  t->media_prefix[kind] = g_strdup (prefix ? prefix : "");
  t->media_token[kind] = g_strdup (token ? token : "");
  t->media_suffix[kind] = g_strdup (suffix ? suffix : "");
}

/* ---- rendering ---------------------------------------------------------- */

static void
add_run (Render * r, MmChatPartKind kind, const gchar * token, guint n,
    guint message, guint part, guint tile)
{
  MediaRun run = {.start = r->text->len,.kind = kind,.message = message,
    .part = part,.tile = tile,.n_tokens = n
  };
  guint i;

  for (i = 0; i < n; i++)
    g_string_append (r->text, token);
  run.end = r->text->len;
  g_array_append_val (r->runs, run);
}

/* transformers' Idefics3Processor.replace_image_token() */
static void
render_idefics3_image (Render * r, const MmChatPart * p, guint m, guint k)
{
  const gchar *img = r->t->media_token[MM_CHAT_PART_IMAGE];
  guint row, col;

  if (p->rows > 0 && p->cols > 0) {
    for (row = 0; row < p->rows; row++) {
      for (col = 0; col < p->cols; col++) {
        g_string_append_printf (r->text,
            "<fake_token_around_image><row_%u_col_%u>", row + 1, col + 1);
        add_run (r, MM_CHAT_PART_IMAGE, img, p->n_tokens, m, k,
            row * p->cols + col);
      }
      g_string_append_c (r->text, '\n');
    }
    g_string_append_c (r->text, '\n');
  }
  g_string_append (r->text, "<fake_token_around_image><global-img>");
  add_run (r, MM_CHAT_PART_IMAGE, img, p->n_tokens, m, k,
      p->rows > 0 && p->cols > 0 ? p->rows * p->cols : 0);
  g_string_append (r->text, "<fake_token_around_image>");
}

/* MiniCPM-V (llama.cpp's mtmd slice templates, the processors'
 * get_slice_image_placeholder): the overview, then the slices row by row,
 * a newline between rows; 2.5 wraps every view in <image></image> and all
 * slices in one <slice></slice>, 2.6 each slice in <slice></slice>. */
static void
render_minicpmv_image (Render * r, const MmChatPart * p, guint m, guint k)
{
  gboolean v25 = r->t->image_style == MM_CHAT_IMAGE_MINICPMV_25;
  gboolean tiled = p->rows > 0 && p->cols > 0;
  guint row, col;

  g_string_append (r->text, "<image>");
  add_run (r, MM_CHAT_PART_IMAGE, "<unk>", p->n_tokens, m, k,
      tiled ? p->rows * p->cols : 0);
  g_string_append (r->text, "</image>");
  if (!tiled)
    return;
  if (v25)
    g_string_append (r->text, "<slice>");
  for (row = 0; row < p->rows; row++) {
    for (col = 0; col < p->cols; col++) {
      g_string_append (r->text, v25 ? "<image>" : "<slice>");
      add_run (r, MM_CHAT_PART_IMAGE, "<unk>", p->n_tokens, m, k,
          row * p->cols + col);
      g_string_append (r->text, v25 ? "</image>" : "</slice>");
    }
    if (row + 1 < p->rows)
      g_string_append_c (r->text, '\n');
  }
  if (v25)
    g_string_append (r->text, "</slice>");
}

static void
render_parts (Render * r, const MmChatMessage * msg, guint m)
{
  const MmChatTemplate *t = r->t;
  guint k;

  for (k = 0; k < msg->n_parts; k++) {
    const MmChatPart *p = &msg->parts[k];

    if (p->kind == MM_CHAT_PART_TEXT) {
      g_string_append (r->text, p->text ? p->text : "");
    } else if (p->kind == MM_CHAT_PART_IMAGE
        && t->format == MM_CHAT_FORMAT_IDEFICS3) {
      render_idefics3_image (r, p, m, k);
    } else if (p->kind == MM_CHAT_PART_IMAGE
        && t->image_style != MM_CHAT_IMAGE_MARKERS) {
      render_minicpmv_image (r, p, m, k);
    } else {
      g_string_append (r->text, t->media_prefix[p->kind]);
      add_run (r, p->kind, t->media_token[p->kind], p->n_tokens, m, k, 0);
      g_string_append (r->text, t->media_suffix[p->kind]);
    }
  }
}

/* Python's str.isspace(), which Jinja's trim filter strips. */
static gboolean
py_isspace (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85
      || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A)
      || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F
      || c == 0x3000;
}

/* Strips white space around text[from..] (the content just rendered);
 * media runs never hold white space. */
static void
trim_from (Render * r, gsize from)
{
  GString *s = r->text;
  gsize lead = from, i;

  while (s->len > from) {
    const gchar *prev = g_utf8_find_prev_char (s->str + from,
        s->str + s->len);

    if (prev == NULL || !py_isspace (g_utf8_get_char_validated (prev,
                s->str + s->len - prev)))
      break;
    g_string_truncate (s, prev - s->str);
  }
  while (lead < s->len && py_isspace (g_utf8_get_char_validated (s->str +
              lead, s->len - lead)))
    lead = g_utf8_next_char (s->str + lead) - s->str;
  if (lead == from)
    return;
  g_string_erase (s, from, lead - from);
  for (i = 0; i < r->runs->len; i++) {
    MediaRun *run = &g_array_index (r->runs, MediaRun, i);

    if (run->start >= lead) {
      run->start -= lead - from;
      run->end -= lead - from;
    }
  }
}

static const gchar *
role_name (MmChatRole role, gboolean capital)
{
  switch (role) {
    case MM_CHAT_ROLE_SYSTEM:
      return capital ? "System" : "system";
    case MM_CHAT_ROLE_ASSISTANT:
      return capital ? "Assistant" : "assistant";
    case MM_CHAT_ROLE_USER:
    default:
      return capital ? "User" : "user";
  }
}

/* A system turn made of the default system prompt. */
static const MmChatMessage *
default_system_turn (const MmChatTemplate * t, MmChatPart * part,
    MmChatMessage * msg)
{
  if (t->default_system == NULL)
    return NULL;
  memset (part, 0, sizeof (*part));
  part->kind = MM_CHAT_PART_TEXT;
  part->text = t->default_system;
  msg->role = MM_CHAT_ROLE_SYSTEM;
  msg->parts = part;
  msg->n_parts = 1;
  return msg;
}

static void
render_chatml (Render * r, const MmChatMessage * msgs, guint n, gboolean gen)
{
  MmChatPart dpart;
  MmChatMessage dmsg;
  const MmChatMessage *sys = NULL;
  guint i;

  if (n == 0 || msgs[0].role != MM_CHAT_ROLE_SYSTEM)
    sys = default_system_turn (r->t, &dpart, &dmsg);
  for (i = 0; i < n + 1; i++) {
    const MmChatMessage *m = i == 0 ? sys : &msgs[i - 1];

    if (m == NULL)
      continue;
    g_string_append_printf (r->text, "<|im_start|>%s\n",
        role_name (m->role, FALSE));
    render_parts (r, m, i == 0 ? G_MAXUINT : i - 1);
    g_string_append (r->text, "<|im_end|>\n");
  }
  if (gen)
    g_string_append (r->text, "<|im_start|>assistant\n");
}

static void
llama3_turn (Render * r, const MmChatMessage * m, guint index)
{
  gsize from;

  g_string_append_printf (r->text,
      "<|start_header_id|>%s<|end_header_id|>\n\n", role_name (m->role, FALSE));
  from = r->text->len;
  render_parts (r, m, index);
  trim_from (r, from);
  g_string_append (r->text, "<|eot_id|>");
}

static void
render_llama3 (Render * r, const MmChatMessage * msgs, guint n, gboolean gen)
{
  const MmChatTemplate *t = r->t;
  gint32 bos = r->tok ? mm_tokenizer_get_special (r->tok, MM_SPECIAL_BOS) : -1;
  const gchar *bos_text = bos >= 0 ? mm_tokenizer_token_text (r->tok, bos)
      : "<|begin_of_text|>";
  MmChatPart dpart;
  MmChatMessage dmsg;
  const MmChatMessage *sys = NULL;
  guint i = 0;
  gsize from;

  if (n > 0 || t->llama31)
    g_string_append (r->text, bos_text);
  if (t->llama31) {
    /* the 3.1+ system turn is always there */
    if (n > 0 && msgs[0].role == MM_CHAT_ROLE_SYSTEM)
      sys = &msgs[i++];
    else
      sys = default_system_turn (t, &dpart, &dmsg);
    g_string_append_printf (r->text, "<|start_header_id|>system"
        "<|end_header_id|>\n\nCutting Knowledge Date: %s\nToday Date: %s\n\n",
        t->knowledge_date, t->date);
    from = r->text->len;
    if (sys)
      render_parts (r, sys, i == 1 ? 0 : G_MAXUINT);
    trim_from (r, from);
    g_string_append (r->text, "<|eot_id|>");
  }
  for (; i < n; i++)
    llama3_turn (r, &msgs[i], i);
  if (gen)
    g_string_append (r->text, "<|start_header_id|>assistant"
        "<|end_header_id|>\n\n");
}

static void
render_idefics3 (Render * r, const MmChatMessage * msgs, guint n, gboolean gen)
{
  MmChatPart dpart;
  MmChatMessage dmsg;
  const MmChatMessage *sys = NULL;
  guint i;

  g_string_append (r->text, r->t->preamble);
  if (n == 0 || msgs[0].role != MM_CHAT_ROLE_SYSTEM)
    sys = default_system_turn (r->t, &dpart, &dmsg);
  for (i = 0; i < n + 1; i++) {
    const MmChatMessage *m = i == 0 ? sys : &msgs[i - 1];
    gboolean image_first;

    if (m == NULL)
      continue;
    image_first = m->n_parts > 0 && m->parts[0].kind == MM_CHAT_PART_IMAGE;
    g_string_append (r->text, role_name (m->role, TRUE));
    g_string_append (r->text, image_first ? ":" : ": ");
    render_parts (r, m, i == 0 ? G_MAXUINT : i - 1);
    g_string_append (r->text, "<end_of_utterance>\n");
  }
  if (gen)
    g_string_append (r->text, "Assistant:");
}

static void
render_plain (Render * r, const MmChatMessage * msgs, guint n)
{
  MmChatPart dpart;
  MmChatMessage dmsg;
  const MmChatMessage *sys = NULL;
  guint i;

  if (n == 0 || msgs[0].role != MM_CHAT_ROLE_SYSTEM)
    sys = default_system_turn (r->t, &dpart, &dmsg);
  for (i = 0; i < n + 1; i++) {
    const MmChatMessage *m = i == 0 ? sys : &msgs[i - 1];

    if (m == NULL)
      continue;
    if (r->text->len > 0)
      g_string_append_c (r->text, '\n');
    render_parts (r, m, i == 0 ? G_MAXUINT : i - 1);
  }
}

/* ---- tokenizing --------------------------------------------------------- */

static gboolean
tokenize (Render * r, MmChatPrompt * p, GError ** error)
{
  gsize last = 0;
  guint i, k;
  gint32 media = MM_CHAT_MEDIA_ID;
  gint32 bos = mm_tokenizer_get_special (r->tok, MM_SPECIAL_BOS);

  if (r->t->format == MM_CHAT_FORMAT_PLAIN && bos >= 0
      && mm_tokenizer_get_add_bos (r->tok))
    g_array_append_val (p->ids, bos);
  for (i = 0; i <= r->runs->len; i++) {
    const MediaRun *run = i < r->runs->len
        ? &g_array_index (r->runs, MediaRun, i) : NULL;
    gsize end = run ? run->start : r->text->len;
    MmChatMediaSpan span;

    if (!mm_tokenizer_encode (r->tok, r->text->str + last, end - last,
            MM_ENCODE_PARSE_SPECIAL, p->ids, error))
      return FALSE;
    if (run == NULL)
      break;
    span.kind = run->kind;
    span.message = run->message;
    span.part = run->part;
    span.tile = run->tile;
    span.pos = p->ids->len;
    span.n_tokens = run->n_tokens;
    for (k = 0; k < run->n_tokens; k++)
      g_array_append_val (p->ids, media);
    g_array_append_val (p->spans, span);
    last = run->end;
  }
  return TRUE;
}

MmChatPrompt *
mm_chat_template_apply (const MmChatTemplate * t, const MmTokenizer * tok,
    const MmChatMessage * messages, guint n_messages,
    gboolean add_generation_prompt, GError ** error)
{
  Render r = {.t = t,.tok = tok };
  MmChatPrompt *p;

  g_return_val_if_fail (t != NULL, NULL);
  g_return_val_if_fail (messages != NULL || n_messages == 0, NULL);
  r.text = g_string_new (NULL);
  r.runs = g_array_new (FALSE, FALSE, sizeof (MediaRun));
  switch (t->format) {
    case MM_CHAT_FORMAT_CHATML:
      render_chatml (&r, messages, n_messages, add_generation_prompt);
      break;
    case MM_CHAT_FORMAT_LLAMA3:
      render_llama3 (&r, messages, n_messages, add_generation_prompt);
      break;
    case MM_CHAT_FORMAT_IDEFICS3:
      render_idefics3 (&r, messages, n_messages, add_generation_prompt);
      break;
    case MM_CHAT_FORMAT_PLAIN:
    default:
      render_plain (&r, messages, n_messages);
      break;
  }
  p = g_new0 (MmChatPrompt, 1);
  p->ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  p->spans = g_array_new (FALSE, FALSE, sizeof (MmChatMediaSpan));
  if (tok && !tokenize (&r, p, error)) {
    g_string_free (r.text, TRUE);
    g_array_unref (r.runs);
    mm_chat_prompt_free (p);
    return NULL;
  }
  p->text = g_string_free (r.text, FALSE);
  g_array_unref (r.runs);
  return p;
}

MmChatPrompt *
mm_chat_template_apply_simple (const MmChatTemplate * t,
    const MmTokenizer * tok, const gchar * system, const MmChatPart * parts,
    guint n_parts, gboolean add_generation_prompt, GError ** error)
{
  MmChatPart sys_part = {.kind = MM_CHAT_PART_TEXT,.text = system };
  MmChatMessage msgs[2] = {
    {.role = MM_CHAT_ROLE_SYSTEM,.parts = &sys_part,.n_parts = 1},
    {.role = MM_CHAT_ROLE_USER,.parts = parts,.n_parts = n_parts},
  };

  if (system == NULL)
    return mm_chat_template_apply (t, tok, &msgs[1], 1,
        add_generation_prompt, error);
  return mm_chat_template_apply (t, tok, msgs, 2, add_generation_prompt, error);
}

void
mm_chat_prompt_free (MmChatPrompt * p)
{
  if (p == NULL)
    return;
  g_free (p->text);
  if (p->ids)
    g_array_unref (p->ids);
  if (p->spans)
    g_array_unref (p->spans);
  g_free (p);
}
