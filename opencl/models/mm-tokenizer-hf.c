/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hugging Face tokenizer.json (model type "BPE") and tokenizer_config.json.
 *
 * Understood: model.{vocab, merges ("a b" strings or ["a", "b"] pairs),
 * ignore_merges, byte_fallback, fuse_unk, unk_token}, added_tokens,
 * normalizer {NFC, NFD, NFKC, NFKD, Prepend("▁"), Replace(" ", "▁"),
 * Sequence}, pre_tokenizer {ByteLevel, Split (Isolated), Digits, Metaspace,
 * Sequence}, decoder {ByteLevel, Replace("▁", " "), ByteFallback, Fuse,
 * Strip, Metaspace, Sequence}, post_processor {TemplateProcessing, Sequence,
 * ByteLevel}.  Anything else is reported as unsupported, never ignored
 * silently where it would change the ids.
 */
#include "mm-tokenizer-private.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define U2581 "\xe2\x96\x81"

typedef struct
{
  MmTokenizer *t;
  const gchar *what;            /* file name for messages */
  GError **error;
} HfLoad;

static JsonObject *
obj_member (JsonObject * o, const gchar * name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static JsonArray *
arr_member (JsonObject * o, const gchar * name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static const gchar *
str_member (JsonObject * o, const gchar * name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
bool_member (JsonObject * o, const gchar * name, gboolean dflt)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return dflt;
  return json_node_get_boolean (n);
}

static gint64
int_member (JsonObject * o, const gchar * name, gint64 dflt)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_INT64)
    return dflt;
  return json_node_get_int (n);
}

static gboolean
unsupported (HfLoad * l, const gchar * section, const gchar * type)
{
  g_set_error (l->error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_UNSUPPORTED,
      "%s: %s '%s' is not supported", l->what, section, type ? type : "?");
  return FALSE;
}

/* A Split/Replace pattern: {"String": s} or {"Regex": r}. */
static const gchar *
pattern_of (JsonObject * o, gboolean * is_regex)
{
  JsonObject *p = obj_member (o, "pattern");
  const gchar *s = str_member (p, "String");

  *is_regex = s == NULL;
  return s ? s : str_member (p, "Regex");
}

/* ---- normalizer -------------------------------------------------------- */

static gboolean
parse_normalizer (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  const gchar *type = str_member (o, "type");
  static const struct
  {
    const gchar *name;
    GNormalizeMode mode;
  } forms[] = { {"NFC", G_NORMALIZE_NFC}, {"NFD", G_NORMALIZE_NFD},
  {"NFKC", G_NORMALIZE_NFKC}, {"NFKD", G_NORMALIZE_NFKD}
  };
  gboolean re;
  guint i;

  if (o == NULL)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0) {
    JsonArray *a = arr_member (o, "normalizers");

    for (i = 0; a && i < json_array_get_length (a); i++) {
      if (!parse_normalizer (l, json_array_get_object_element (a, i)))
        return FALSE;
    }
    return TRUE;
  }
  for (i = 0; type && i < G_N_ELEMENTS (forms); i++) {
    if (g_str_equal (type, forms[i].name)) {
      t->normalize = TRUE;
      t->normalize_mode = forms[i].mode;
      return TRUE;
    }
  }
  if (g_strcmp0 (type, "Prepend") == 0
      && g_strcmp0 (str_member (o, "prepend"), U2581) == 0) {
    t->prefix = U2581;
    t->prefix_scheme = MM_PREFIX_ALWAYS;
    t->prefix_unless_present = FALSE;
    return TRUE;
  }
  if (g_strcmp0 (type, "Replace") == 0
      && g_strcmp0 (pattern_of (o, &re), " ") == 0 && !re
      && g_strcmp0 (str_member (o, "content"), U2581) == 0) {
    t->escape_spaces = TRUE;
    return TRUE;
  }
  return unsupported (l, "normalizer", type);
}

/* ---- pre-tokenizer ----------------------------------------------------- */

static MmPreStage *
add_stage (HfLoad * l, MmPreKind kind, gint param)
{
  MmTokenizer *t = l->t;
  MmPreStage *st;

  if (t->n_pre >= MM_PRE_MAX_STAGES) {
    unsupported (l, "pre_tokenizer", "Sequence (too many stages)");
    return NULL;
  }
  st = &t->pre[t->n_pre++];
  memset (st, 0, sizeof (*st));
  st->kind = kind;
  st->param = param;
  return st;
}

static gboolean
parse_split (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  gboolean is_regex;
  const gchar *pat = pattern_of (o, &is_regex);
  MmPreStage st;
  g_autofree gchar *escaped = NULL;

  if (pat == NULL || bool_member (o, "invert", FALSE)
      || g_strcmp0 (str_member (o, "behavior"), "Isolated") != 0)
    return unsupported (l, "pre_tokenizer Split with", pat ? pat : "?");
  if (is_regex && mm_pre_stage_from_pattern (pat, &st)) {
    MmPreStage *dst = add_stage (l, st.kind, st.param);

    return dst != NULL;
  }
  if (t->n_pre >= MM_PRE_MAX_STAGES)
    return unsupported (l, "pre_tokenizer", "Sequence (too many stages)");
  if (!is_regex)
    pat = escaped = g_regex_escape_string (pat, -1);
  st.kind = MM_PRE_REGEX;
  st.param = 0;
  st.regex = mm_pre_regex_new (pat, l->error);
  if (st.regex == NULL) {
    g_prefix_error (l->error, "%s: Split pattern: ", l->what);
    return FALSE;
  }
  t->pre[t->n_pre++] = st;
  return TRUE;
}

static gboolean
parse_metaspace (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  const gchar *scheme = str_member (o, "prepend_scheme");

  if (g_strcmp0 (str_member (o, "replacement"), U2581) != 0)
    return unsupported (l, "Metaspace replacement", str_member (o,
            "replacement"));
  t->escape_spaces = TRUE;
  t->prefix = U2581;
  t->prefix_unless_present = TRUE;
  if (scheme == NULL)           /* older files: add_prefix_space */
    scheme = bool_member (o, "add_prefix_space", TRUE) ? "always" : "never";
  if (g_str_equal (scheme, "first"))
    t->prefix_scheme = MM_PREFIX_FIRST;
  else if (g_str_equal (scheme, "always"))
    t->prefix_scheme = MM_PREFIX_ALWAYS;
  else
    t->prefix_scheme = MM_PREFIX_NEVER;
  if (bool_member (o, "split", TRUE))
    return add_stage (l, MM_PRE_METASPACE, 0) != NULL;
  return TRUE;
}

static gboolean
parse_pre_tokenizer (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  const gchar *type = str_member (o, "type");
  guint i;

  if (o == NULL)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0) {
    JsonArray *a = arr_member (o, "pretokenizers");

    for (i = 0; a && i < json_array_get_length (a); i++) {
      if (!parse_pre_tokenizer (l, json_array_get_object_element (a, i)))
        return FALSE;
    }
    return TRUE;
  }
  if (g_strcmp0 (type, "ByteLevel") == 0) {
    t->byte_level = TRUE;
    if (bool_member (o, "add_prefix_space", FALSE)) {
      /* HF prepends to every piece seen so far: fragments, when first */
      if (t->n_pre > 0 || t->prefix)
        return unsupported (l, "pre_tokenizer",
            "ByteLevel add_prefix_space after another split");
      t->prefix = " ";
      t->prefix_scheme = MM_PREFIX_ALWAYS;
      t->prefix_unless_present = TRUE;
    }
    if (bool_member (o, "use_regex", TRUE))
      return add_stage (l, MM_PRE_GPT2, 0) != NULL;
    return TRUE;
  }
  if (g_strcmp0 (type, "Split") == 0)
    return parse_split (l, o);
  if (g_strcmp0 (type, "Digits") == 0)
    return add_stage (l, MM_PRE_DIGITS, bool_member (o, "individual_digits",
            FALSE) ? 1 : 0) != NULL;
  if (g_strcmp0 (type, "Metaspace") == 0)
    return parse_metaspace (l, o);
  return unsupported (l, "pre_tokenizer", type);
}

/* ---- decoder and post-processor ------------------------------------------ */

static gboolean
parse_decoder (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  const gchar *type = str_member (o, "type");
  gboolean re;
  guint i;

  if (o == NULL || g_strcmp0 (type, "ByteLevel") == 0
      || g_strcmp0 (type, "ByteFallback") == 0 || g_strcmp0 (type, "Fuse") == 0)
    return TRUE;
  if (g_strcmp0 (type, "Sequence") == 0) {
    JsonArray *a = arr_member (o, "decoders");

    for (i = 0; a && i < json_array_get_length (a); i++) {
      if (!parse_decoder (l, json_array_get_object_element (a, i)))
        return FALSE;
    }
    return TRUE;
  }
  if (g_strcmp0 (type, "Replace") == 0
      && g_strcmp0 (pattern_of (o, &re), U2581) == 0 && !re
      && g_strcmp0 (str_member (o, "content"), " ") == 0) {
    t->unescape_spaces = TRUE;
    return TRUE;
  }
  if (g_strcmp0 (type, "Strip") == 0
      && g_strcmp0 (str_member (o, "content"), " ") == 0) {
    t->strip_leading_space = int_member (o, "start", 0) > 0;
    return TRUE;
  }
  if (g_strcmp0 (type, "Metaspace") == 0) {
    t->unescape_spaces = TRUE;
    t->strip_leading_space =
        g_strcmp0 (str_member (o, "prepend_scheme"), "never") != 0;
    return TRUE;
  }
  return unsupported (l, "decoder", type);
}

static gint32
template_special (JsonObject * pp, JsonObject * item)
{
  JsonObject *sp = obj_member (item, "SpecialToken");
  const gchar *name = str_member (sp, "id");
  JsonObject *entry;
  JsonArray *ids;

  if (name == NULL)
    return -1;
  entry = obj_member (obj_member (pp, "special_tokens"), name);
  ids = arr_member (entry, "ids");
  if (ids == NULL || json_array_get_length (ids) != 1)
    return -1;
  return json_array_get_int_element (ids, 0);
}

static void
parse_post_processor (HfLoad * l, JsonObject * o)
{
  MmTokenizer *t = l->t;
  const gchar *type = str_member (o, "type");
  JsonArray *a;
  guint i, n;
  gint32 id;

  if (g_strcmp0 (type, "Sequence") == 0) {
    a = arr_member (o, "processors");
    for (i = 0; a && i < json_array_get_length (a); i++)
      parse_post_processor (l, json_array_get_object_element (a, i));
    return;
  }
  if (g_strcmp0 (type, "TemplateProcessing") != 0)
    return;
  a = arr_member (o, "single");
  n = a ? json_array_get_length (a) : 0;
  if (n >= 2 && (id = template_special (o, json_array_get_object_element (a,
                  0))) >= 0) {
    mm_tokenizer_set_special (t, MM_SPECIAL_BOS, id);
    t->add_bos = TRUE;
  }
  if (n >= 2 && (id = template_special (o, json_array_get_object_element (a,
                  n - 1))) >= 0) {
    mm_tokenizer_set_special (t, MM_SPECIAL_EOS, id);
    t->add_eos = TRUE;
  }
}

/* ---- model ------------------------------------------------------------- */

/* Vocabulary and added tokens into id-indexed arrays. */
static MmTokenizer *
build_vocab (HfLoad * l, JsonObject * vocab, JsonArray * added)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) types = g_array_new (FALSE, TRUE, sizeof (gint32));
  GList *members = json_object_get_members (vocab), *m;
  MmTokenizer *t;
  guint i;

  for (m = members; m; m = m->next) {
    gint64 id = json_object_get_int_member (vocab, m->data);

    if (id < 0 || id >= G_MAXINT32)
      continue;
    if (id >= names->len) {
      g_ptr_array_set_size (names, id + 1);
      g_array_set_size (types, id + 1);
    }
    g_free (names->pdata[id]);
    names->pdata[id] = g_strdup (m->data);
    g_array_index (types, gint32, id) = MM_TOKEN_TYPE_NORMAL;
  }
  g_list_free (members);
  for (i = 0; added && i < json_array_get_length (added); i++) {
    JsonObject *a = json_array_get_object_element (added, i);
    gint64 id = int_member (a, "id", -1);
    const gchar *content = str_member (a, "content");

    if (id < 0 || id >= G_MAXINT32 || content == NULL)
      continue;
    if (id >= names->len) {
      g_ptr_array_set_size (names, id + 1);
      g_array_set_size (types, id + 1);
    }
    g_free (names->pdata[id]);
    names->pdata[id] = g_strdup (content);
    g_array_index (types, gint32, id) = bool_member (a, "special", FALSE)
        ? MM_TOKEN_TYPE_CONTROL : MM_TOKEN_TYPE_USER_DEFINED;
  }
  for (i = 0; i < names->len; i++) {
    if (names->pdata[i] == NULL) {
      names->pdata[i] = g_strdup_printf ("[PAD%u]", i);
      g_array_index (types, gint32, i) = MM_TOKEN_TYPE_UNUSED;
    }
  }
  t = mm_tokenizer_alloc (MM_TOKENIZER_KIND_BPE,
      (const gchar * const *) names->pdata, names->len,
      (const gint32 *) types->data, l->error);
  for (i = 0; t && added && i < json_array_get_length (added); i++) {
    JsonObject *a = json_array_get_object_element (added, i);

    mm_tokenizer_mark_added (t, int_member (a, "id", -1),
        bool_member (a, "special", FALSE), bool_member (a, "lstrip", FALSE),
        bool_member (a, "rstrip", FALSE));
  }
  return t;
}

static gboolean
parse_merges (HfLoad * l, JsonArray * merges)
{
  guint n = merges ? json_array_get_length (merges) : 0, i;
  g_autofree const gchar **lefts = g_new0 (const gchar *, n + 1);
  g_autofree const gchar **rights = g_new0 (const gchar *, n + 1);
  g_autoptr (GPtrArray) owned = g_ptr_array_new_with_free_func (g_free);

  for (i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element (merges, i);

    if (JSON_NODE_HOLDS_ARRAY (node)
        && json_array_get_length (json_node_get_array (node)) == 2) {
      lefts[i] = json_array_get_string_element (json_node_get_array (node), 0);
      rights[i] = json_array_get_string_element (json_node_get_array (node), 1);
    } else if (JSON_NODE_HOLDS_VALUE (node)
        && json_node_get_value_type (node) == G_TYPE_STRING) {
      const gchar *s = json_node_get_string (node);
      const gchar *sp = s[0] ? strchr (s + 1, ' ') : NULL;

      if (sp == NULL)
        continue;
      lefts[i] = g_strndup (s, sp - s);
      g_ptr_array_add (owned, (gpointer) lefts[i]);
      rights[i] = sp + 1;
    } else {
      g_set_error (l->error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_INVALID,
          "%s: model.merges[%u] is neither \"a b\" nor [\"a\", \"b\"]",
          l->what, i);
      return FALSE;
    }
  }
  mm_tokenizer_add_merges (l->t, lefts, rights, n);
  return TRUE;
}

static gboolean
check_model (HfLoad * l, JsonObject * model)
{
  const gchar *type = str_member (model, "type");
  const gchar *cont = str_member (model, "continuing_subword_prefix");
  const gchar *suffix = str_member (model, "end_of_word_suffix");

  if (model == NULL || obj_member (model, "vocab") == NULL) {
    g_set_error (l->error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_INVALID,
        "%s: no model.vocab object", l->what);
    return FALSE;
  }
  if (type && !g_str_equal (type, "BPE"))
    return unsupported (l, "model type", type);
  if ((cont && *cont) || (suffix && *suffix))
    return unsupported (l, "BPE option", cont && *cont ? cont : suffix);
  return TRUE;
}

/* With byte fallback, <0xXX> tokens decode to their byte. */
static void
mark_byte_tokens (MmTokenizer * t)
{
  guint i;

  for (i = 0; i < t->n_tokens; i++) {
    const gchar *s = t->text[i];

    if (t->type[i] == MM_TOKEN_TYPE_NORMAL && t->text_len[i] == 6
        && g_str_has_prefix (s, "<0x") && s[5] == '>'
        && g_ascii_isxdigit (s[3]) && g_ascii_isxdigit (s[4]))
      t->type[i] = MM_TOKEN_TYPE_BYTE;
  }
}

static MmTokenizer *
from_root (JsonNode * root, const gchar * what, GError ** error)
{
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root)
      ? json_node_get_object (root) : NULL;
  JsonObject *model = obj_member (o, "model");
  HfLoad l = {.what = what,.error = error };
  g_autoptr (MmTokenizer) t = NULL;
  const gchar *unk;

  if (!check_model (&l, model))
    return NULL;
  t = l.t = build_vocab (&l, obj_member (model, "vocab"),
      arr_member (o, "added_tokens"));
  if (t == NULL)
    return NULL;
  t->ignore_merges = bool_member (model, "ignore_merges", FALSE);
  t->byte_fallback = bool_member (model, "byte_fallback", FALSE);
  t->fuse_unk = bool_member (model, "fuse_unk", FALSE);
  unk = str_member (model, "unk_token");
  if (unk)
    mm_tokenizer_set_special_by_text (t, MM_SPECIAL_UNK, unk);
  if (t->byte_fallback)
    mark_byte_tokens (t);
  if (!parse_merges (&l, arr_member (model, "merges"))
      || !parse_normalizer (&l, obj_member (o, "normalizer"))
      || !parse_pre_tokenizer (&l, obj_member (o, "pre_tokenizer"))
      || !parse_decoder (&l, obj_member (o, "decoder")))
    return NULL;
  parse_post_processor (&l, obj_member (o, "post_processor"));
  if (!mm_tokenizer_finish (t, error))
    return NULL;
  return g_steal_pointer (&t);
}

MmTokenizer *
mm_tokenizer_new_from_hf_json (const gchar * path, GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();

  g_return_val_if_fail (path != NULL, NULL);
  if (!json_parser_load_from_file (parser, path, error)) {
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  return from_root (json_parser_get_root (parser), path, error);
}

MmTokenizer *
mm_tokenizer_new_from_hf_json_data (const gchar * data, gssize length,
    GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();

  g_return_val_if_fail (data != NULL, NULL);
  if (!json_parser_load_from_data (parser, data, length, error)) {
    g_prefix_error (error, "tokenizer.json: ");
    return NULL;
  }
  return from_root (json_parser_get_root (parser), "tokenizer.json", error);
}

/* ---- tokenizer_config.json ------------------------------------------------ */

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const gchar *
token_member (JsonObject * o, const gchar * name)
{
  const gchar *s = str_member (o, name);

  return s ? s : str_member (obj_member (o, name), "content");
}

static gchar *
chat_template_of (JsonObject * o, const gchar * config_path)
{
  JsonArray *list = arr_member (o, "chat_template");
  const gchar *s = str_member (o, "chat_template");
  g_autofree gchar *dir = NULL, *jinja = NULL;
  gchar *text = NULL;
  guint i;

  if (s)
    return g_strdup (s);
  for (i = 0; list && i < json_array_get_length (list); i++) {
    JsonObject *e = json_array_get_object_element (list, i);

    if (g_strcmp0 (str_member (e, "name"), "default") == 0)
      return g_strdup (str_member (e, "template"));
  }
  /* transformers >= 4.43 may keep it in chat_template.jinja */
  dir = g_path_get_dirname (config_path);
  jinja = g_build_filename (dir, "chat_template.jinja", NULL);
  if (g_file_get_contents (jinja, &text, NULL, NULL))
    return text;
  return NULL;
}

gboolean
mm_tokenizer_load_hf_config (MmTokenizer * t, const gchar * path,
    gchar ** chat_template, GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  static const struct
  {
    const gchar *key;
    MmSpecialToken which;
  } keys[] = { {"bos_token", MM_SPECIAL_BOS}, {"eos_token", MM_SPECIAL_EOS},
  {"unk_token", MM_SPECIAL_UNK}, {"pad_token", MM_SPECIAL_PAD},
  {"sep_token", MM_SPECIAL_SEP}
  };
  JsonObject *o;
  guint i;

  g_return_val_if_fail (t != NULL && path != NULL, FALSE);
  if (chat_template)
    *chat_template = NULL;
  if (!json_parser_load_from_file (parser, path, error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  o = JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
      ? json_node_get_object (json_parser_get_root (parser)) : NULL;
  if (o == NULL) {
    g_set_error (error, MM_TOKENIZER_ERROR, MM_TOKENIZER_ERROR_INVALID,
        "%s: not a JSON object", path);
    return FALSE;
  }
  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    const gchar *text = token_member (o, keys[i].key);

    if (text)
      mm_tokenizer_set_special_by_text (t, keys[i].which, text);
  }
  t->add_bos = bool_member (o, "add_bos_token", t->add_bos);
  t->add_eos = bool_member (o, "add_eos_token", t->add_eos);
  if (chat_template)
    *chat_template = chat_template_of (o, path);
  return TRUE;
}
