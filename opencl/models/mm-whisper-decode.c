/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whisper transcription on the host side of the decoder: special tokens
 * and rules from generation_config.json, the prompt, language detection,
 * the logit rules of transformers' WhisperForConditionalGeneration.generate
 * (SuppressTokensAtBegin, SuppressTokens, WhisperTimeStamp processors, in
 * that order), greedy search, and segments from timestamp tokens.
 */
#include "mm-whisper-private.h"
#include "mm-format.h"
#include "mm-json.h"

#include <math.h>
#include <string.h>

/* ---- special tokens ---- */

void
mm_whisper_special_clear (MmWhisperSpecial * sp)
{
  g_clear_pointer (&sp->lang_to_id, g_hash_table_unref);
  g_clear_pointer (&sp->suppress, g_array_unref);
  g_clear_pointer (&sp->begin_suppress, g_array_unref);
}

static gint32
token_by_text (MmWhisper * w, const gchar * text)
{
  return w->tokenizer ? mm_tokenizer_token_id (w->tokenizer, text) : -1;
}

/* An integer from generation_config.json, else config.json (an array
 * gives its first element, as eos_token_id may be a list). */
static gint64
get_id (MmJson * gen, MmJson * cfg, const gchar * key, gint64 def,
    GError ** error)
{
  MmJson *src[2] = { gen, cfg };
  for (guint i = 0; i < 2; i++) {
    if (src[i] == NULL || !mm_json_has (src[i], key))
      continue;
    JsonNode *n = mm_json_lookup (src[i], key);
    if (JSON_NODE_HOLDS_NULL (n))
      continue;
    if (JSON_NODE_HOLDS_ARRAY (n)) {
      gchar *first = g_strconcat (key, ".0", NULL);
      gint64 v = mm_json_get_int (src[i], first, def, error);
      g_free (first);
      return v;
    }
    return mm_json_get_int (src[i], key, def, error);
  }
  return def;
}

static GArray *
get_id_list (MmJson * gen, MmJson * cfg, const gchar * key, gint vocab,
    GError ** error)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (gint32));
  MmJson *src = gen && mm_json_get_len (gen, key) >= 0 ? gen
      : cfg && mm_json_get_len (cfg, key) >= 0 ? cfg : NULL;
  gint64 n = src ? mm_json_get_len (src, key) : 0;
  for (gint64 i = 0; i < n; i++) {
    gchar *path = g_strdup_printf ("%s.%" G_GINT64_FORMAT, key, i);
    GError *err = NULL;
    gint64 v = mm_json_get_int (src, path, -1, &err);
    g_free (path);
    if (err) {
      g_propagate_error (error, err);
      g_array_unref (a);
      return NULL;
    }
    gint32 id = v;
    if (v >= 0 && v < vocab)    /* e.g. -1 in old configs: ignored */
      g_array_append_val (a, id);
  }
  return a;
}

/* "<|en|>" -> "en"; NULL unless the text has that form. */
static gchar *
lang_code (const gchar * tok)
{
  gsize n = tok ? strlen (tok) : 0;
  if (n < 5 || n > 9 || !g_str_has_prefix (tok, "<|")
      || !g_str_has_suffix (tok, "|>"))
    return NULL;
  for (gsize i = 2; i < n - 2; i++)
    if (!g_ascii_islower (tok[i]))
      return NULL;
  return g_strndup (tok + 2, n - 4);
}

static void
read_languages (MmWhisper * w, MmJson * gen)
{
  MmWhisperSpecial *sp = &w->sp;
  JsonNode *n = gen ? mm_json_lookup (gen, "lang_to_id") : NULL;
  if (n && JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *o = json_node_get_object (n);
    GList *members = json_object_get_members (o);
    for (GList * l = members; l; l = l->next) {
      JsonNode *v = json_object_get_member (o, l->data);
      gchar *code = lang_code (l->data);
      if (code && JSON_NODE_HOLDS_VALUE (v)
          && json_node_get_value_type (v) == G_TYPE_INT64
          && json_node_get_int (v) >= 0 && json_node_get_int (v) < w->hp.vocab)
        g_hash_table_insert (sp->lang_to_id, code,
            GINT_TO_POINTER ((gint) json_node_get_int (v)));
      else
        g_free (code);
    }
    g_list_free (members);
  }
  /* without lang_to_id: the <|xx|> tokens that follow <|startoftranscript|> */
  gboolean scan = g_hash_table_size (sp->lang_to_id) == 0 && w->tokenizer
      && sp->sot >= 0;
  for (gint32 id = sp->sot + 1; scan && id < w->hp.vocab; id++) {
    gchar *code = lang_code (mm_tokenizer_token_text (w->tokenizer, id));
    if (code == NULL || id == sp->transcribe || id == sp->translate) {
      g_free (code);
      break;
    }
    g_hash_table_insert (sp->lang_to_id, code, GINT_TO_POINTER (id));
  }
}

gboolean
mm_whisper_special_load (MmWhisper * w, const gchar * dir, GError ** error)
{
  MmWhisperSpecial *sp = &w->sp;
  sp->lang_to_id = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  gchar *gpath = g_build_filename (dir, "generation_config.json", NULL);
  gchar *cpath = g_build_filename (dir, "config.json", NULL);
  MmJson *gen = NULL, *cfg = mm_json_new_from_file (cpath, 1 << 24, NULL);
  GError *err = NULL;
  if (g_file_test (gpath, G_FILE_TEST_EXISTS))
    gen = mm_json_new_from_file (gpath, 1 << 24, &err);
  sp->sot = get_id (gen, cfg, "decoder_start_token_id",
      token_by_text (w, "<|startoftranscript|>"), err ? NULL : &err);
  sp->eot = get_id (gen, cfg, "eos_token_id", token_by_text (w,
          "<|endoftext|>"), err ? NULL : &err);
  sp->no_timestamps = get_id (gen, NULL, "no_timestamps_token_id",
      token_by_text (w, "<|notimestamps|>"), err ? NULL : &err);
  sp->prev_sot = get_id (gen, NULL, "prev_sot_token_id",
      token_by_text (w, "<|startofprev|>"), err ? NULL : &err);
  sp->transcribe = get_id (gen, NULL, "task_to_id.transcribe",
      token_by_text (w, "<|transcribe|>"), err ? NULL : &err);
  sp->translate = get_id (gen, NULL, "task_to_id.translate",
      token_by_text (w, "<|translate|>"), err ? NULL : &err);
  sp->max_initial_timestamp_index = get_id (gen, NULL,
      "max_initial_timestamp_index", -1, err ? NULL : &err);
  sp->suppress = err ? NULL : get_id_list (gen, cfg, "suppress_tokens",
      w->hp.vocab, &err);
  sp->begin_suppress = err ? NULL : get_id_list (gen, cfg,
      "begin_suppress_tokens", w->hp.vocab, &err);
  if (!err) {
    read_languages (w, gen);
    sp->multilingual = g_hash_table_size (sp->lang_to_id) > 0;
    if (gen && mm_json_has (gen, "is_multilingual"))
      sp->multilingual = mm_json_get_bool (gen, "is_multilingual",
          sp->multilingual, &err);
  }
  gint32 *ids[] = { &sp->sot, &sp->eot, &sp->no_timestamps, &sp->prev_sot,
    &sp->transcribe, &sp->translate
  };
  for (guint i = 0; !err && i < G_N_ELEMENTS (ids); i++)
    if (*ids[i] >= w->hp.vocab)
      g_set_error (&err, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISMATCH,
          "%s: special token id %d outside the vocabulary of %d", gpath,
          *ids[i], w->hp.vocab);
  sp->timestamp_begin = sp->no_timestamps >= 0 ? sp->no_timestamps + 1 : -1;
  if (gen)
    mm_json_free (gen);
  if (cfg)
    mm_json_free (cfg);
  g_free (gpath);
  g_free (cpath);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  return TRUE;
}

gboolean
mm_whisper_can_transcribe (MmWhisper * w)
{
  return w->tok_embd && w->tokenizer && w->sp.sot >= 0 && w->sp.eot >= 0;
}

gint32
mm_whisper_token_sot (MmWhisper * w)
{
  return w->sp.sot;
}

gint32
mm_whisper_token_eot (MmWhisper * w)
{
  return w->sp.eot;
}

gint32
mm_whisper_token_no_timestamps (MmWhisper * w)
{
  return w->sp.no_timestamps;
}

/* ---- logit rules ---- */

static void
fill_inf (float *s, gint from, gint to)
{
  for (gint i = MAX (from, 0); i < to; i++)
    s[i] = -INFINITY;
}

static double
log_sum_exp (const float *s, gint from, gint to)
{
  float m = -INFINITY;
  for (gint i = from; i < to; i++)
    m = MAX (m, s[i]);
  if (isinf (m))
    return -INFINITY;
  double sum = 0;
  for (gint i = from; i < to; i++)
    sum += exp ((double) s[i] - m);
  return m + log (sum);
}

/* WhisperTimeStampLogitsProcessor on the tokens @seq generated so far. */
static void
timestamp_rules (const MmWhisperSpecial * sp, float *s, gint vocab,
    const gint32 * seq, gint n)
{
  gint tb = sp->timestamp_begin;
  s[sp->no_timestamps] = -INFINITY;
  gboolean last_ts = n >= 1 && seq[n - 1] >= tb;
  gboolean pen_ts = n < 2 || seq[n - 2] >= tb;
  if (last_ts) {
    if (pen_ts)
      fill_inf (s, tb, vocab);  /* a pair closed: text must follow */
    else
      fill_inf (s, 0, sp->eot); /* a single one: no text now */
  }
  gint ts_last = tb;
  for (gint i = n - 1; i >= 0; i--)
    if (seq[i] >= tb) {
      /* timestamps never decrease, and <|t|> is not repeated after a pair */
      ts_last = last_ts && !pen_ts ? seq[i] : seq[i] + 1;
      break;
    }
  fill_inf (s, tb, MIN (ts_last, vocab));
  if (n == 0) {
    fill_inf (s, 0, tb);
    if (sp->max_initial_timestamp_index >= 0)
      fill_inf (s, tb + sp->max_initial_timestamp_index + 1, vocab);
  }
  /* all timestamps together more probable than any text token: take one */
  float max_text = -INFINITY;
  for (gint i = 0; i < tb; i++)
    max_text = MAX (max_text, s[i]);
  if (log_sum_exp (s, tb, vocab) > max_text)
    fill_inf (s, 0, tb);
}

static void
apply_rules (MmWhisper * w, float *s, const gint32 * seq, gint n,
    gboolean timestamps)
{
  const MmWhisperSpecial *sp = &w->sp;
  if (n == 0)
    for (guint i = 0; i < sp->begin_suppress->len; i++)
      s[g_array_index (sp->begin_suppress, gint32, i)] = -INFINITY;
  for (guint i = 0; i < sp->suppress->len; i++)
    s[g_array_index (sp->suppress, gint32, i)] = -INFINITY;
  if (timestamps)
    timestamp_rules (sp, s, w->hp.vocab, seq, n);
}

/* First index of the largest value, as torch.argmax. */
static gint32
argmax (const float *s, gint n)
{
  gint32 best = 0;
  for (gint i = 1; i < n; i++)
    if (s[i] > s[best])
      best = i;
  return best;
}

/* ---- transcription ---- */

void
mm_whisper_options_init (MmWhisperOptions * o)
{
  memset (o, 0, sizeof (*o));
  o->task = MM_WHISPER_TASK_TRANSCRIBE;
}

void
mm_whisper_result_clear (MmWhisperResult * r)
{
  if (r->ids)
    g_array_unref (r->ids);
  for (guint i = 0; r->segments && i < r->segments->len; i++)
    g_free (g_array_index (r->segments, MmWhisperSegment, i).text);
  if (r->segments)
    g_array_unref (r->segments);
  g_free (r->text);
  g_free (r->language);
  memset (r, 0, sizeof (*r));
}

/* Language token: from @opt, or the most probable after the start token. */
static gint32
language_token (MmWhisperDecoder * d, const MmWhisperOptions * opt,
    gchar ** code, GError ** error)
{
  MmWhisperSpecial *sp = &d->w->sp;
  if (opt->language && *opt->language) {
    gchar *c = g_str_has_prefix (opt->language, "<|") ?
        lang_code (opt->language) : g_ascii_strdown (opt->language, -1);
    gpointer id;
    if (c && g_hash_table_lookup_extended (sp->lang_to_id, c, NULL, &id)) {
      *code = c;
      return GPOINTER_TO_INT (id);
    }
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: language \"%s\" is not in the model's vocabulary", d->w->id,
        opt->language);
    g_free (c);
    return -1;
  }
  float *logits = mm_whisper_decoder_forward (d, &sp->sot, 1, 0, error);
  if (logits == NULL)
    return -1;
  GHashTableIter it;
  gpointer k, v;
  gint32 best = -1;
  g_hash_table_iter_init (&it, sp->lang_to_id);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    gint32 id = GPOINTER_TO_INT (v);
    if (best < 0 || logits[id] > logits[best]
        || (logits[id] == logits[best] && id < best)) {
      best = id;
      g_free (*code);
      *code = g_strdup (k);
    }
  }
  g_free (logits);
  return best;
}

static gboolean
build_prompt (MmWhisperDecoder * d, const MmWhisperOptions * opt,
    GArray * prompt, gchar ** lang, GError ** error)
{
  MmWhisperSpecial *sp = &d->w->sp;
  g_array_append_val (prompt, sp->sot);
  if (sp->multilingual) {
    gint32 l = language_token (d, opt, lang, error);
    gint32 task = opt->task == MM_WHISPER_TASK_TRANSLATE ? sp->translate
        : sp->transcribe;
    if (l < 0)
      return FALSE;
    g_array_append_val (prompt, l);
    if (task >= 0)
      g_array_append_val (prompt, task);
  }
  if (opt->timestamps && sp->no_timestamps < 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: the model has no timestamp tokens", d->w->id);
    return FALSE;
  }
  if (!opt->timestamps && sp->no_timestamps >= 0)
    g_array_append_val (prompt, sp->no_timestamps);
  return TRUE;
}

static gchar *
decode_text (MmWhisper * w, const gint32 * ids, gint n)
{
  GArray *text = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (gint i = 0; i < n; i++)
    if (ids[i] < w->sp.eot)
      g_array_append_val (text, ids[i]);
  gchar *s = mm_tokenizer_decode (w->tokenizer, (gint32 *) text->data,
      text->len, MM_DECODE_NONE, NULL);
  g_array_unref (text);
  return s ? s : g_strdup ("");
}

/* Segments from <|t0|> text <|t1|> runs; text without a closing timestamp
 * runs to the end of the window. */
static void
make_segments (MmWhisper * w, MmWhisperResult * r)
{
  const MmMelParams *mp = mm_mel_params (w->mel);
  gdouble step = 2.0 * mp->hop / mp->sampling_rate;     /* 20 ms */
  gdouble window = (gdouble) mp->n_samples / mp->sampling_rate;
  const gint32 *ids = (const gint32 *) r->ids->data;
  gint tb = w->sp.timestamp_begin, n = r->ids->len, text0 = -1;
  gdouble start = -1, last_end = 0;
  for (gint i = 0; i <= n; i++) {
    gboolean end = i == n;
    if (!end && ids[i] < tb) {
      if (text0 < 0)
        text0 = i;
      continue;
    }
    gdouble t = end ? window : (ids[i] - tb) * step;
    if (text0 >= 0) {
      MmWhisperSegment seg = { start >= 0 ? start : last_end, t,
        decode_text (w, ids + text0, i - text0)
      };
      g_array_append_val (r->segments, seg);
      last_end = t;
      text0 = -1;
      start = -1;
    } else if (!end) {
      start = t;
    }
  }
}

gboolean
mm_whisper_decoder_transcribe (MmWhisperDecoder * d,
    const MmWhisperOptions * opt, MmWhisperResult * r, GError ** error)
{
  MmWhisper *w = d->w;
  memset (r, 0, sizeof (*r));
  if (!mm_whisper_can_transcribe (w)) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: no tokenizer.json or start/end tokens: cannot transcribe", w->id);
    return FALSE;
  }
  gint64 t0 = g_get_monotonic_time ();
  /* a transcript is waited for (mm_engine_urgent_begin) */
  mm_engine_urgent_begin (w->engine);
  r->ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  r->segments = g_array_new (FALSE, FALSE, sizeof (MmWhisperSegment));
  GArray *prompt = g_array_new (FALSE, FALSE, sizeof (gint32));
  gboolean ok = build_prompt (d, opt, prompt, &r->language, error);
  r->n_forward = ok && r->language && !opt->language ? 1 : 0;
  gint pos = prompt->len;
  gint max = w->hp.n_text_ctx - pos;
  if (opt->max_tokens > 0)
    max = MIN (max, opt->max_tokens);
  float *logits = ok ? mm_whisper_decoder_forward (d, (gint32 *) prompt->data,
      prompt->len, 0, error) : NULL;
  ok = logits != NULL;
  while (logits) {
    r->n_forward++;
    apply_rules (w, logits, (gint32 *) r->ids->data, r->ids->len,
        opt->timestamps);
    gint32 id = argmax (logits, w->hp.vocab);
    gboolean none = isinf (logits[id]); /* every token ruled out */
    g_clear_pointer (&logits, g_free);
    if (id == w->sp.eot || none)
      break;
    g_array_append_val (r->ids, id);
    if ((gint) r->ids->len >= max)
      break;
    logits = mm_whisper_decoder_forward (d, &id, 1, pos++, error);
    ok = logits != NULL;
  }
  mm_engine_urgent_end (w->engine);
  g_array_unref (prompt);
  if (ok) {
    r->text = decode_text (w, (gint32 *) r->ids->data, r->ids->len);
    if (opt->timestamps)
      make_segments (w, r);
  }
  r->decode_ms = (g_get_monotonic_time () - t0) / 1000.0;
  if (!ok)
    mm_whisper_result_clear (r);
  return ok;
}
