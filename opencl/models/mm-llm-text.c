/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An LLM's text side: tokenizer (embedded in GGUF, or tokenizer.json),
 * chat template and end-of-generation tokens. */
#include "mm-llm-load.h"
#include "mm-gguf.h"
#include "mm-safetensors.h"
#include "mm-tokenizer.h"
#include "mm-chat.h"

#include <string.h>

struct _MmLlmText
{
  MmTokenizer *tok;
  MmChatTemplate *chat;
};

/* A GGUF string array as a NULL-terminated vector of borrowed strings. */
static const gchar **
gguf_strv (MmGguf * f, const gchar * key, gsize * n, GError ** error)
{
  MmGgufArray *arr = mm_gguf_get_array (f, key, MM_GGUF_TYPE_STRING, error);
  if (arr == NULL)
    return NULL;
  *n = mm_gguf_array_len (arr);
  const gchar **v = g_new0 (const gchar *, *n + 1);
  for (gsize i = 0; i < *n; i++)
    v[i] = mm_gguf_array_get_str (arr, i, NULL);
  return v;
}

static MmTokenizer *
tokenizer_from_gguf (MmGguf * f, GError ** error)
{
  const gchar *model = mm_gguf_get_str (f, "tokenizer.ggml.model", NULL, NULL);
  gsize n = 0, n_merges = 0;
  const gchar **tokens = gguf_strv (f, "tokenizer.ggml.tokens", &n, error);
  if (tokens == NULL)
    return NULL;
  gint32 *types = NULL;
  MmGgufArray *ta = mm_gguf_get_array (f, "tokenizer.ggml.token_type",
      MM_GGUF_TYPE_INT32, NULL);
  if (ta && mm_gguf_array_len (ta) == n) {
    types = g_new (gint32, n);
    for (gsize i = 0; i < n; i++)
      types[i] = mm_gguf_array_get_int (ta, i);
  }
  MmTokenizer *t = NULL;
  if (g_strcmp0 (model, "gpt2") == 0) {
    const gchar **merges = gguf_strv (f, "tokenizer.ggml.merges", &n_merges,
        error);
    if (merges)
      t = mm_tokenizer_new_bpe (tokens, n, merges, n_merges, types,
          mm_gguf_get_str (f, "tokenizer.ggml.pre", "default", NULL), error);
    g_free (merges);
  } else if (g_strcmp0 (model, "llama") == 0) {
    MmGgufArray *sa = mm_gguf_get_array (f, "tokenizer.ggml.scores",
        MM_GGUF_TYPE_FLOAT32, error);
    if (sa && mm_gguf_array_len (sa) == n) {
      gfloat *scores = g_new (gfloat, n);
      for (gsize i = 0; i < n; i++)
        scores[i] = mm_gguf_array_get_float (sa, i);
      t = mm_tokenizer_new_spm (tokens, scores, types, n, error);
      g_free (scores);
    } else if (sa) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "%s: tokenizer.ggml.scores does not match the vocabulary",
          mm_gguf_path (f));
    }
  } else {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: tokenizer model \"%s\" is not supported (gpt2, llama)",
        mm_gguf_path (f), model ? model : "(none)");
  }
  g_free (tokens);
  g_free (types);
  if (t == NULL)
    return NULL;
  static const struct
  {
    const gchar *key;
    MmSpecialToken which;
  } specials[] = {
    {"tokenizer.ggml.bos_token_id", MM_SPECIAL_BOS},
    {"tokenizer.ggml.eos_token_id", MM_SPECIAL_EOS},
    {"tokenizer.ggml.eot_token_id", MM_SPECIAL_EOT},
    {"tokenizer.ggml.unknown_token_id", MM_SPECIAL_UNK},
    {"tokenizer.ggml.padding_token_id", MM_SPECIAL_PAD},
  };
  for (guint i = 0; i < G_N_ELEMENTS (specials); i++)
    if (mm_gguf_has_key (f, specials[i].key))
      mm_tokenizer_set_special (t, specials[i].which,
          mm_gguf_get_u32 (f, specials[i].key, 0, NULL));
  if (mm_gguf_has_key (f, "tokenizer.ggml.add_bos_token"))
    mm_tokenizer_set_add_bos (t, mm_gguf_get_bool (f,
            "tokenizer.ggml.add_bos_token", FALSE, NULL));
  return t;
}

static MmTokenizer *
tokenizer_from_hf (const gchar * dir, gchar ** chat_template, GError ** error)
{
  gchar *path = g_build_filename (dir, "tokenizer.json", NULL);
  MmTokenizer *t = mm_tokenizer_new_from_hf_json (path, error);
  g_free (path);
  if (t == NULL)
    return NULL;
  gchar *cfg = g_build_filename (dir, "tokenizer_config.json", NULL);
  gboolean ok = !g_file_test (cfg, G_FILE_TEST_EXISTS)
      || mm_tokenizer_load_hf_config (t, cfg, chat_template, error);
  g_free (cfg);
  if (ok && *chat_template == NULL) {
    /* transformers >= 4.4x may keep the template in its own file */
    gchar *jinja = g_build_filename (dir, "chat_template.jinja", NULL);
    g_file_get_contents (jinja, chat_template, NULL, NULL);
    g_free (jinja);
  }
  if (!ok)
    g_clear_pointer (&t, mm_tokenizer_free);
  return t;
}

MmLlmText *
mm_llm_text_new (MmLlmSource * src, gint vocab, GError ** error)
{
  gchar *tmpl = NULL;
  MmGguf *f = mm_llm_source_gguf (src);
  MmTokenizer *tok = f ? tokenizer_from_gguf (f, error) :
      tokenizer_from_hf (mm_llm_source_path (src), &tmpl, error);
  if (tok == NULL)
    return NULL;
  if (f)
    tmpl = g_strdup (mm_gguf_get_str (f, "tokenizer.chat_template", NULL,
            NULL));
  if ((gint) mm_tokenizer_get_n_tokens (tok) > vocab) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: the tokenizer has %" G_GSIZE_FORMAT " tokens, the model's "
        "vocabulary %d", mm_llm_source_path (src),
        mm_tokenizer_get_n_tokens (tok), vocab);
    mm_tokenizer_free (tok);
    g_free (tmpl);
    return NULL;
  }
  MmLlmText *text = g_new0 (MmLlmText, 1);
  text->tok = tok;
  text->chat = mm_chat_template_new (tmpl);
  mm_chat_template_set_image_style (text->chat,
      mm_chat_template_image_style_for (text->chat, text->tok));
  /* the end-of-turn token of the family ends a generation */
  const gchar *eot[] = { "<|im_end|>", "<|eot_id|>", "<end_of_utterance>" };
  for (guint i = 0; i < G_N_ELEMENTS (eot); i++)
    if (mm_tokenizer_token_id (tok, eot[i]) >= 0)
      mm_tokenizer_add_eog (tok, mm_tokenizer_token_id (tok, eot[i]));
  g_free (tmpl);
  return text;
}

void
mm_llm_text_free (MmLlmText * text)
{
  if (text == NULL)
    return;
  mm_tokenizer_free (text->tok);
  mm_chat_template_free (text->chat);
  g_free (text);
}

gboolean
mm_llm_text_is_end (MmLlmText * text, gint32 id)
{
  return mm_tokenizer_is_eog (text->tok, id)
      || id == mm_tokenizer_get_special (text->tok, MM_SPECIAL_EOS)
      || id == mm_tokenizer_get_special (text->tok, MM_SPECIAL_EOT);
}

MmDecodeStream *
mm_llm_text_decoder (MmLlmText * text)
{
  return mm_decode_stream_new (text->tok, MM_DECODE_NONE);
}


/* Views the template splices @m as: rows * cols + 1 for a tiled image
 * under the Idefics3 template of a tokenizer that has its markers (not
 * Idefics2's, whose template looks the same) or with MiniCPM-V's markers,
 * else 1. */
static gint
media_views (MmLlmText * text, const MmLlmMedia * m)
{
  gboolean idefics3 =
      mm_chat_template_get_format (text->chat) == MM_CHAT_FORMAT_IDEFICS3
      && mm_tokenizer_token_id (text->tok, "<global-img>") >= 0;
  gboolean minicpmv = mm_chat_template_get_format (text->chat) !=
      MM_CHAT_FORMAT_IDEFICS3
      && mm_chat_template_get_image_style (text->chat) !=
      MM_CHAT_IMAGE_MARKERS;
  if (m->kind != MM_MEDIA_IMAGE || m->rows <= 0 || m->cols <= 0
      || !(idefics3 || minicpmv))
    return 1;
  return m->rows * m->cols + 1;
}

/* The encoder's view (tiles row by row, then the global image) that the
 * prompt's @i-th run of a @v-view image takes: MiniCPM-V's markers put the
 * overview first. */
static gint
run_view (MmLlmText * text, gint i, gint v)
{
  if (v > 1 && mm_chat_template_get_format (text->chat) !=
      MM_CHAT_FORMAT_IDEFICS3)
    return i == 0 ? v - 1 : i - 1;
  return i;
}

MmLlmMedia *
mm_llm_text_media_runs (MmLlmText * text, const MmLlmRequest * req,
    gint * n_runs)
{
  gint n = 0;
  for (gint m = 0; m < req->n_media; m++)
    n += media_views (text, &req->media[m]);
  *n_runs = n;
  if (n == req->n_media)
    return (MmLlmMedia *) req->media;
  MmLlmMedia *runs = g_new0 (MmLlmMedia, n);
  n = 0;
  for (gint m = 0; m < req->n_media; m++) {
    const MmLlmMedia *src = &req->media[m];
    gint v = media_views (text, src), per = src->n_tokens / v;
    for (gint i = 0; i < v; i++) {
      MmLlmMedia *r = &runs[n++];
      gint view = run_view (text, i, v);
      *r = *src;
      r->rows = r->cols = 0;
      r->n_tokens = per;
      if (r->buf)
        r->offset += (gsize) view * per * src->dim * sizeof (float);
      else if (r->host)
        r->host += (gsize) view * per * src->dim;
    }
  }
  return runs;
}

gboolean
mm_llm_text_prompt (MmLlmText * text, const MmLlmRequest * req, GArray * ids,
    GError ** error)
{
  /* media first, then the question, in one user turn */
  for (gint m = 0; m < req->n_media; m++) {
    gint v = media_views (text, &req->media[m]);
    if (req->media[m].n_tokens <= 0 || req->media[m].n_tokens % v != 0) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "an image of %d x %d tiles + global view cannot hold %d tokens",
          req->media[m].rows, req->media[m].cols, req->media[m].n_tokens);
      return FALSE;
    }
  }
  MmChatPart *parts = g_new0 (MmChatPart, req->n_media + 1);
  for (gint m = 0; m < req->n_media; m++) {
    gint v = media_views (text, &req->media[m]);
    parts[m].kind = req->media[m].kind == MM_MEDIA_AUDIO ? MM_CHAT_PART_AUDIO
        : MM_CHAT_PART_IMAGE;
    parts[m].n_tokens = req->media[m].n_tokens / v;
    if (v > 1) {
      parts[m].rows = req->media[m].rows;
      parts[m].cols = req->media[m].cols;
    }
  }
  parts[req->n_media].kind = MM_CHAT_PART_TEXT;
  parts[req->n_media].text = req->prompt ? req->prompt : "";
  const gchar *sys = req->system_prompt && *req->system_prompt ?
      req->system_prompt : NULL;
  MmChatPrompt *p = mm_chat_template_apply_simple (text->chat, text->tok, sys,
      parts, req->n_media + 1, TRUE, error);
  g_free (parts);
  if (p == NULL)
    return FALSE;
  /* each media position says which media it holds (-1 - its index), so
   * two media side by side (audio windows without markers between them)
   * stay two spans */
  for (guint k = 0; k < p->spans->len; k++) {
    const MmChatMediaSpan *sp = &g_array_index (p->spans, MmChatMediaSpan, k);
    for (guint i = 0; i < sp->n_tokens; i++)
      g_array_index (p->ids, gint32, sp->pos + i) = -1 - (gint32) sp->part;
  }
  g_array_append_vals (ids, p->ids->data, p->ids->len);
  mm_chat_prompt_free (p);
  return TRUE;
}

MmTokenizer *
mm_llm_text_tokenizer (MmLlmText * text)
{
  return text->tok;
}
