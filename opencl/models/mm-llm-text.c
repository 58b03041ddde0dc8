/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An LLM's text side: tokenizer (embedded in GGUF, or tokenizer.json),
 * chat template and end-of-generation tokens. */
#include "mm-llm-load.h"
#include "mm-gguf.h"
#include "mm-safetensors.h"
#include "mm-tokenizer.h"

#include <math.h>
#include <string.h>

typedef enum
{
  CHAT_PLAIN,                   /* no template: system + prompt as text */
  CHAT_CHATML,                  /* <|im_start|>role\n...<|im_end|> (Qwen2, SmolLM2) */
  CHAT_LLAMA3,                  /* <|start_header_id|>role<|end_header_id|> */
  CHAT_IDEFICS3,                /* "<|im_start|>User:...<end_of_utterance>\n
                                 * Assistant:" (SmolVLM) */
} ChatKind;

struct _MmLlmText
{
  MmTokenizer *tok;
  ChatKind chat;
};

/* The chat family is recognised from markers in the model's template
 * (GGUF tokenizer.chat_template or tokenizer_config.json): mm renders the
 * families it runs itself rather than evaluating Jinja. */
static ChatKind
chat_kind (const gchar * tmpl)
{
  if (tmpl == NULL)
    return CHAT_PLAIN;
  /* SmolVLM's template also opens with <|im_start|>: test it first */
  if (strstr (tmpl, "<end_of_utterance>"))
    return CHAT_IDEFICS3;
  if (strstr (tmpl, "<|im_start|>"))
    return CHAT_CHATML;
  if (strstr (tmpl, "<|start_header_id|>"))
    return CHAT_LLAMA3;
  return CHAT_PLAIN;
}

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
  text->chat = chat_kind (tmpl);
  if (text->chat == CHAT_CHATML)
    mm_tokenizer_add_eog (tok, mm_tokenizer_token_id (tok, "<|im_end|>"));
  else if (text->chat == CHAT_LLAMA3)
    mm_tokenizer_add_eog (tok, mm_tokenizer_token_id (tok, "<|eot_id|>"));
  else if (text->chat == CHAT_IDEFICS3)
    mm_tokenizer_add_eog (tok, mm_tokenizer_token_id (tok,
            "<end_of_utterance>"));
  g_free (tmpl);
  return text;
}

void
mm_llm_text_free (MmLlmText * text)
{
  if (text == NULL)
    return;
  mm_tokenizer_free (text->tok);
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

/* Appends the tokens of @str (special tokens parsed). */
static gboolean
put_text (MmLlmText * text, GArray * ids, const gchar * str, GError ** error)
{
  return mm_tokenizer_encode (text->tok, str, -1, MM_ENCODE_PARSE_SPECIAL, ids,
      error);
}

/* Media go where the family's template puts images: SmolVLM wraps each
 * image in <fake_token_around_image><global-img> ... markers; the other
 * families take the embeddings in place in the user turn. */
static gboolean
put_media (MmLlmText * text, GArray * ids, const MmLlmRequest * req,
    GError ** error)
{
  for (gint m = 0; m < req->n_media; m++) {
    gboolean img = req->media[m].kind == MM_MEDIA_IMAGE;
    if (text->chat == CHAT_IDEFICS3 && img
        && !put_text (text, ids, "<fake_token_around_image><global-img>",
            error))
      return FALSE;
    gint32 media = -1;
    for (gint i = 0; i < req->media[m].n_tokens; i++)
      g_array_append_val (ids, media);
    if (text->chat == CHAT_IDEFICS3 && img
        && !put_text (text, ids, "<fake_token_around_image>", error))
      return FALSE;
  }
  return TRUE;
}

gboolean
mm_llm_text_prompt (MmLlmText * text, const MmLlmRequest * req, GArray * ids,
    GError ** error)
{
  const gchar *sys = req->system_prompt && *req->system_prompt ?
      req->system_prompt : NULL;
  const gchar *prompt = req->prompt ? req->prompt : "";
  gint32 bos = mm_tokenizer_get_special (text->tok, MM_SPECIAL_BOS);
  if (mm_tokenizer_get_add_bos (text->tok) && bos >= 0)
    g_array_append_val (ids, bos);
  gchar *pre = NULL, *post = NULL;
  switch (text->chat) {
    case CHAT_CHATML:
      pre = sys ? g_strdup_printf ("<|im_start|>system\n%s<|im_end|>\n"
          "<|im_start|>user\n", sys) : g_strdup ("<|im_start|>user\n");
      post = g_strdup_printf ("%s<|im_end|>\n<|im_start|>assistant\n",
          prompt);
      break;
    case CHAT_LLAMA3:
      pre = sys ? g_strdup_printf ("<|start_header_id|>system"
          "<|end_header_id|>\n\n%s<|eot_id|><|start_header_id|>user"
          "<|end_header_id|>\n\n", sys) :
          g_strdup ("<|start_header_id|>user<|end_header_id|>\n\n");
      post = g_strdup_printf ("%s<|eot_id|><|start_header_id|>assistant"
          "<|end_header_id|>\n\n", prompt);
      break;
    case CHAT_IDEFICS3:
      pre = sys ? g_strdup_printf ("<|im_start|>System: %s<end_of_utterance>\n"
          "User:", sys) : g_strdup ("<|im_start|>User:");
      post = g_strdup_printf ("%s<end_of_utterance>\nAssistant:", prompt);
      break;
    default:
      pre = sys ? g_strdup_printf ("%s\n\n", sys) : g_strdup ("");
      post = g_strdup_printf ("%s\n", prompt);
      break;
  }
  gboolean ok = put_text (text, ids, pre, error)
      && put_media (text, ids, req, error) && put_text (text, ids, post, error);
  g_free (pre);
  g_free (post);
  return ok;
}

/* ---- sampling ---- */

struct _MmLlmSampler
{
  MmLlmSampling p;
  GRand *rand;
  gint32 *order;
  gint n_order;
};

MmLlmSampler *
mm_llm_sampler_new (const MmLlmSampling * p)
{
  MmLlmSampler *s = g_new0 (MmLlmSampler, 1);
  s->p = *p;
  s->rand = g_rand_new_with_seed ((guint32) (p->seed ^ (p->seed >> 32)));
  return s;
}

void
mm_llm_sampler_free (MmLlmSampler * s)
{
  if (s == NULL)
    return;
  g_rand_free (s->rand);
  g_free (s->order);
  g_free (s);
}

static gint
argmax (const float *x, gint n)
{
  gint best = 0;
  for (gint i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

static gint
cmp_desc (gconstpointer a, gconstpointer b, gpointer logits)
{
  float x = ((float *) logits)[*(const gint32 *) a];
  float y = ((float *) logits)[*(const gint32 *) b];
  return x > y ? -1 : x < y;
}

/* HF's repetition penalty: positive logits of seen tokens divided by the
 * penalty, negative ones multiplied. */
static void
penalize (float *logits, gint vocab, const gint32 * hist, gint n, float pen)
{
  for (gint i = 0; i < n; i++) {
    gint32 id = hist[i];
    if (id < 0 || id >= vocab)
      continue;
    float v = logits[id];
    if (v > 0 && v == v)
      logits[id] = v / pen;
    else if (v < 0)
      logits[id] = v * pen;
  }
}

gint32
mm_llm_sampler_sample (MmLlmSampler * s, float *logits, gint vocab,
    const gint32 * hist, gint n_hist)
{
  if (s->p.repetition_penalty > 0 && s->p.repetition_penalty != 1.0f) {
    /* a token seen twice is still penalised once */
    gint32 *uniq = g_new (gint32, MAX (n_hist, 1));
    gint nu = 0;
    for (gint i = 0; i < n_hist; i++) {
      gboolean dup = FALSE;
      for (gint j = 0; j < nu && !dup; j++)
        dup = uniq[j] == hist[i];
      if (!dup)
        uniq[nu++] = hist[i];
    }
    penalize (logits, vocab, uniq, nu, s->p.repetition_penalty);
    g_free (uniq);
  }
  if (s->p.temperature <= 0)
    return argmax (logits, vocab);
  if (s->n_order != vocab) {
    g_free (s->order);
    s->order = g_new (gint32, vocab);
    s->n_order = vocab;
  }
  for (gint i = 0; i < vocab; i++)
    s->order[i] = i;
  g_qsort_with_data (s->order, vocab, sizeof (gint32), cmp_desc, logits);
  gint n = s->p.top_k > 0 ? MIN (s->p.top_k, vocab) : vocab;
  double mx = logits[s->order[0]], sum = 0;
  double *prob = g_new (double, n);
  for (gint i = 0; i < n; i++) {
    prob[i] = exp ((logits[s->order[i]] - mx) / s->p.temperature);
    sum += prob[i];
  }
  /* top-p: the smallest prefix whose mass reaches p */
  gint keep = n;
  if (s->p.top_p > 0 && s->p.top_p < 1) {
    double acc = 0;
    for (gint i = 0; i < n; i++) {
      acc += prob[i] / sum;
      if (acc >= s->p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (gint i = 0; i < keep; i++)
    total += prob[i];
  double r = g_rand_double (s->rand) * total;
  gint pick = keep - 1;
  for (gint i = 0; i < keep; i++) {
    r -= prob[i];
    if (r <= 0) {
      pick = i;
      break;
    }
  }
  g_free (prob);
  return s->order[pick];
}
