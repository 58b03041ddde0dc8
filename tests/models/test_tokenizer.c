/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tokenizers against Hugging Face `tokenizers` and `sentencepiece`.
 *
 * tests/fixtures/tokenizer/gen_tokenizer.py trains tiny tokenizers and
 * writes the reference ids of every corpus line.  Each byte-level BPE is
 * loaded twice, from tokenizer.json and from the GGUF-style plain arrays,
 * and both must give the reference ids; decoding must give the reference
 * text and the original bytes back; streaming decode must give the same
 * text in valid UTF-8 pieces.
 */
#include "mm-tokenizer-private.h"

#include <json-glib/json-glib.h>
#include <string.h>

static gint failures, checks;

#define CHECK(cond, ...) G_STMT_START {                 \
    checks++;                                           \
    if (!(cond)) {                                      \
      g_printerr ("FAIL %s:%d: ", __FILE__, __LINE__);  \
      g_printerr (__VA_ARGS__);                         \
      g_printerr ("\n");                                \
      failures++;                                       \
    }                                                   \
  } G_STMT_END

static gchar *
fixture (const gchar * name)
{
  const gchar *dir = g_getenv ("MM_FIXTURES");

  return g_build_filename (dir ? dir : MM_SOURCE_FIXTURES, "tokenizer", name,
      NULL);
}

static JsonNode *
load_json (const gchar * name)
{
  g_autofree gchar *path = fixture (name);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_file (p, path, &error)) {
    g_printerr ("cannot read %s: %s\n", path, error->message);
    exit (1);
  }
  return json_node_copy (json_parser_get_root (p));
}

/* JSON array of ints -> GArray of gint32 */
static GArray *
ids_of (JsonArray * a)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  guint i;

  for (i = 0; i < json_array_get_length (a); i++) {
    gint32 v = json_array_get_int_element (a, i);

    g_array_append_val (ids, v);
  }
  return ids;
}

static gchar *
ids_str (const GArray * ids)
{
  GString *s = g_string_new ("[");
  guint i;

  for (i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? "," : "", g_array_index (ids,
            gint32, i));
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
ids_equal (const GArray * a, const GArray * b)
{
  return a->len == b->len && memcmp (a->data, b->data,
      a->len * sizeof (gint32)) == 0;
}

static void
check_encode (const gchar * what, const MmTokenizer * t, const gchar * line,
    MmEncodeFlags flags, JsonArray * want_json, guint i)
{
  g_autoptr (GArray) got = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) want = ids_of (want_json);
  g_autoptr (GError) error = NULL;

  if (!mm_tokenizer_encode (t, line, -1, flags, got, &error)) {
    CHECK (FALSE, "%s line %u: %s", what, i, error->message);
    return;
  }
  if (!ids_equal (got, want)) {
    g_autofree gchar *g = ids_str (got), *w = ids_str (want);

    CHECK (FALSE, "%s line %u (flags %d):\n  text %s\n  got  %s\n  want %s",
        what, i, flags, line, g, w);
  }
}

/* Streaming decode: valid UTF-8 pieces adding up to the full decode. */
static void
check_stream (const gchar * what, const MmTokenizer * t, const GArray * ids,
    MmDecodeFlags flags, const gchar * want)
{
  g_autoptr (MmDecodeStream) s = mm_decode_stream_new (t, flags);
  g_autoptr (GString) all = g_string_new (NULL);
  guint i;

  for (i = 0; i < ids->len; i++) {
    g_autoptr (GString) piece = g_string_new (NULL);

    CHECK (mm_decode_stream_push (s, g_array_index (ids, gint32, i), piece,
            NULL), "%s: stream push", what);
    CHECK (g_utf8_validate_len (piece->str, piece->len, NULL),
        "%s: stream piece %u is not valid UTF-8", what, i);
    g_string_append_len (all, piece->str, piece->len);
  }
  mm_decode_stream_flush (s, all);
  CHECK (g_strcmp0 (all->str, want) == 0, "%s: stream gave '%s', want '%s'",
      what, all->str, want);
}

static void
check_decode (const gchar * what, const MmTokenizer * t, const gchar * line,
    const gchar * want_text, MmDecodeFlags flags, gboolean round_trip)
{
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree gchar *text = NULL;
  g_autoptr (GBytes) bytes = NULL;

  mm_tokenizer_encode (t, line, -1, MM_ENCODE_PARSE_SPECIAL, ids, NULL);
  text = mm_tokenizer_decode (t, (gint32 *) ids->data, ids->len, flags, NULL);
  CHECK (g_strcmp0 (text, want_text) == 0, "%s: decode '%s', want '%s'",
      what, text, want_text);
  bytes = mm_tokenizer_decode_bytes (t, (gint32 *) ids->data, ids->len,
      flags, NULL);
  if (round_trip)
    CHECK (g_bytes_get_size (bytes) == strlen (line)
        && memcmp (g_bytes_get_data (bytes, NULL), line, strlen (line)) == 0,
        "%s: bytes do not round-trip '%s'", what, line);
  check_stream (what, t, ids, flags, text);
}

/* GGUF-style arrays from <name>.plain.json */
static MmTokenizer *
tokenizer_from_plain (const gchar * name)
{
  g_autofree gchar *file = g_strconcat (name, ".plain.json", NULL);
  g_autoptr (JsonNode) root = load_json (file);
  JsonObject *o = json_node_get_object (root);
  JsonArray *tok = json_object_get_array_member (o, "tokens");
  JsonArray *ty = json_object_get_array_member (o, "token_type");
  guint n = json_array_get_length (tok), i;
  g_autofree const gchar **tokens = g_new0 (const gchar *, n + 1);
  g_autofree gint32 *types = g_new0 (gint32, n);
  g_autoptr (GError) error = NULL;
  MmTokenizer *t;

  for (i = 0; i < n; i++) {
    tokens[i] = json_array_get_string_element (tok, i);
    types[i] = json_array_get_int_element (ty, i);
  }
  if (g_str_equal (json_object_get_string_member (o, "model"), "llama")) {
    JsonArray *sc = json_object_get_array_member (o, "scores");
    g_autofree gfloat *scores = g_new0 (gfloat, n);

    for (i = 0; i < n; i++)
      scores[i] = json_array_get_double_element (sc, i);
    t = mm_tokenizer_new_spm (tokens, scores, types, n, &error);
  } else {
    JsonArray *mg = json_object_get_array_member (o, "merges");
    guint nm = json_array_get_length (mg);
    g_autofree const gchar **merges = g_new0 (const gchar *, nm + 1);

    for (i = 0; i < nm; i++)
      merges[i] = json_array_get_string_element (mg, i);
    t = mm_tokenizer_new_bpe (tokens, n, merges, nm, types,
        json_object_get_string_member (o, "pre"), &error);
  }
  if (t == NULL) {
    g_printerr ("%s: %s\n", file, error->message);
    exit (1);
  }
  if (json_object_has_member (o, "bos_token_id"))
    mm_tokenizer_set_special (t, MM_SPECIAL_BOS,
        json_object_get_int_member (o, "bos_token_id"));
  if (json_object_has_member (o, "eos_token_id"))
    mm_tokenizer_set_special (t, MM_SPECIAL_EOS,
        json_object_get_int_member (o, "eos_token_id"));
  if (json_object_has_member (o, "unknown_token_id"))
    mm_tokenizer_set_special (t, MM_SPECIAL_UNK,
        json_object_get_int_member (o, "unknown_token_id"));
  mm_tokenizer_set_add_bos (t, json_object_get_boolean_member_with_default (o,
          "add_bos_token", FALSE));
  return t;
}

static MmTokenizer *
tokenizer_from_hf (const gchar * name)
{
  g_autofree gchar *file = g_strconcat (name, ".tokenizer.json", NULL);
  g_autofree gchar *path = fixture (file);
  g_autoptr (GError) error = NULL;
  MmTokenizer *t = mm_tokenizer_new_from_hf_json (path, &error);

  if (t == NULL) {
    g_printerr ("%s\n", error->message);
    exit (1);
  }
  return t;
}

static JsonArray *
ref_lines (JsonObject * ref, const gchar * key, guint i)
{
  return json_array_get_array_element (json_object_get_array_member (ref,
          key), i);
}

/* One tokenizer against its reference, every corpus line. */
static void
check_against_ref (const gchar * what, const MmTokenizer * t,
    JsonArray * corpus, JsonObject * ref, const gchar * ids_key,
    gboolean round_trip, MmDecodeFlags dflags)
{
  guint i, n = json_array_get_length (corpus);

  for (i = 0; i < n; i++) {
    const gchar *line = json_array_get_string_element (corpus, i);
    JsonArray *want = ref_lines (ref, ids_key, i);
    g_autoptr (GArray) a = ids_of (want);
    g_autoptr (GArray) b = ids_of (ref_lines (ref, "ids", i));
    gboolean same = ids_equal (a, b);

    check_encode (what, t, line, MM_ENCODE_PARSE_SPECIAL, want, i);
    /* the other references hold where the primary ones agree */
    if (same && json_object_has_member (ref, "ids_nospec"))
      check_encode (what, t, line, MM_ENCODE_NONE, ref_lines (ref,
              "ids_nospec", i), i);
    if (json_object_has_member (ref, "ids_bos"))
      check_encode (what, t, line, MM_ENCODE_PARSE_SPECIAL |
          MM_ENCODE_ADD_SPECIAL, ref_lines (ref, "ids_bos", i), i);
    if (same && g_str_equal (ids_key, "ids"))
      check_decode (what, t, line, json_array_get_string_element
          (json_object_get_array_member (ref, "text"), i), dflags, round_trip);
  }
}

static void
test_bpe (const gchar * name, JsonArray * corpus)
{
  g_autofree gchar *reff = g_strconcat (name, ".ref.json", NULL);
  g_autoptr (JsonNode) refn = load_json (reff);
  JsonObject *ref = json_node_get_object (refn);
  g_autoptr (MmTokenizer) hf = tokenizer_from_hf (name);
  g_autoptr (MmTokenizer) plain = tokenizer_from_plain (name);
  g_autofree gchar *w_hf = g_strconcat (name, " (tokenizer.json)", NULL);
  g_autofree gchar *w_pl = g_strconcat (name, " (plain)", NULL);
  gboolean nfc = json_object_has_member (ref, "ids_plain");

  check_against_ref (w_hf, hf, corpus, ref, "ids", !nfc, MM_DECODE_SPECIAL);
  check_against_ref (w_pl, plain, corpus, ref, nfc ? "ids_plain" : "ids",
      TRUE, MM_DECODE_SPECIAL);
  CHECK (mm_tokenizer_get_n_tokens (hf) == mm_tokenizer_get_n_tokens (plain),
      "%s: vocab sizes differ", name);
  CHECK (mm_tokenizer_token_id (hf, "<|im_end|>") >= 0
      && mm_tokenizer_token_id (hf, "<|im_end|>") ==
      mm_tokenizer_token_id (plain, "<|im_end|>"), "%s: <|im_end|> id", name);
  CHECK (mm_tokenizer_is_eog (hf, mm_tokenizer_token_id (hf, "<|im_end|>")),
      "%s: <|im_end|> ends generation", name);
  CHECK (mm_tokenizer_token_type (plain, mm_tokenizer_token_id (plain,
              "<image>")) == MM_TOKEN_TYPE_USER_DEFINED, "%s: <image>", name);
}

static void
test_spm (JsonArray * corpus)
{
  g_autoptr (JsonNode) refn = load_json ("spm.ref.json");
  g_autoptr (MmTokenizer) spm = tokenizer_from_plain ("spm");
  const gchar *hf_names[] = { "spm_legacy", "spm_meta" };
  guint k;

  check_against_ref ("spm (plain)", spm, corpus, json_node_get_object (refn),
      "ids", FALSE, MM_DECODE_NONE);
  CHECK (mm_tokenizer_get_kind (spm) == MM_TOKENIZER_KIND_SPM, "spm kind");
  for (k = 0; k < G_N_ELEMENTS (hf_names); k++) {
    g_autofree gchar *reff = g_strconcat (hf_names[k], ".ref.json", NULL);
    g_autoptr (JsonNode) r = load_json (reff);
    g_autoptr (MmTokenizer) hf = tokenizer_from_hf (hf_names[k]);

    check_against_ref (hf_names[k], hf, corpus, json_node_get_object (r),
        "ids", FALSE, MM_DECODE_SPECIAL);
  }
}

static void
check_splits (const gchar * what, const MmTokenizer * t, JsonObject * pre,
    const gchar * key)
{
  JsonArray *strings = json_object_get_array_member (pre, "strings");
  JsonArray *want_all = json_object_get_array_member (pre, key);
  guint i, j;

  for (i = 0; i < json_array_get_length (strings); i++) {
    const gchar *s = json_array_get_string_element (strings, i);
    JsonArray *want = json_array_get_array_element (want_all, i);
    g_autoptr (GArray) got = g_array_new (FALSE, FALSE, sizeof (gsize));
    gboolean ok;

    mm_tokenizer_split_words (t, s, strlen (s), got);
    checks++;
    ok = got->len == json_array_get_length (want);
    for (j = 0; ok && j < got->len; j++)
      ok = g_array_index (got, gsize, j) ==
          (gsize) json_array_get_int_element (want, j);
    if (!ok) {
      g_autoptr (GString) g = g_string_new (NULL);
      g_autofree gchar *esc = g_strescape (s, NULL);

      for (j = 0; j < got->len; j++)
        g_string_append_printf (g, "%" G_GSIZE_FORMAT " ",
            g_array_index (got, gsize, j));
      CHECK (FALSE, "%s: split of string %u \"%s\": got %s", what, i, esc,
          g->str);
    }
  }
}

/* The hand-written regex scanners (and GRegex) against HF's splits of
 * random strings over a palette of tricky characters. */
static void
test_pre_tokenizers (void)
{
  g_autoptr (JsonNode) pre = load_json ("pretok.json");
  JsonObject *o = json_node_get_object (pre);
  const gchar *names[] = { "gpt2", "llama3", "qwen2", "smollm" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree gchar *name = g_strconcat ("bpe_", names[i], NULL);
    g_autoptr (MmTokenizer) hf = tokenizer_from_hf (name);
    g_autoptr (MmTokenizer) plain = tokenizer_from_plain (name);

    check_splits (name, hf, o, names[i]);
    check_splits (name, plain, o, names[i]);
  }
}

/* An equivalent Split pattern that is not recognised goes to GRegex. */
static void
test_regex_fallback (void)
{
  g_autoptr (JsonNode) pre = load_json ("pretok.json");
  const gchar *names[] = { "llama3", "qwen2" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree gchar *file = g_strconcat ("bpe_", names[i],
        ".tokenizer.json", NULL);
    g_autofree gchar *path = fixture (file);
    g_autofree gchar *data = NULL, *what = NULL;
    g_auto (GStrv) parts = NULL;
    g_autofree gchar *changed = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (MmTokenizer) t = NULL;

    g_file_get_contents (path, &data, NULL, NULL);
    parts = g_strsplit (data, "(?i:'s|", 2);
    CHECK (parts[1] != NULL, "%s: pattern not found", file);
    if (parts[1] == NULL)
      continue;
    changed = g_strjoin ("(?i:'s|'s|", parts[0], parts[1], NULL);
    t = mm_tokenizer_new_from_hf_json_data (changed, -1, &error);
    CHECK (t != NULL, "%s: %s", file, error ? error->message : "");
    if (t == NULL)
      continue;
    what = g_strconcat (names[i], " (GRegex)", NULL);
    check_splits (what, t, json_node_get_object (pre), names[i]);
  }
}

int
main (int argc, char **argv)
{
  g_autoptr (JsonNode) corpus = load_json ("corpus.json");
  JsonArray *lines = json_node_get_array (corpus);
  const gchar *bpe[] = { "bpe_gpt2", "bpe_llama3", "bpe_qwen2", "bpe_smollm" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bpe); i++)
    test_bpe (bpe[i], lines);
  test_spm (lines);
  test_pre_tokenizers ();
  test_regex_fallback ();
  if (failures) {
    g_printerr ("%d check(s) failed\n", failures);
    return 1;
  }
  g_print ("%d tokenizer checks passed\n", checks);
  return 0;
}
