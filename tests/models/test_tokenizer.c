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

#include <glib/gstdio.h>
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
  return a->len == b->len && (a->len == 0 || memcmp (a->data, b->data,
          a->len * sizeof (gint32)) == 0);
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

/* lstrip/rstrip added tokens (HF only) */
static void
test_strip (void)
{
  g_autoptr (JsonNode) refn = load_json ("bpe_strip.ref.json");
  JsonObject *ref = json_node_get_object (refn);
  JsonArray *lines = json_object_get_array_member (ref, "lines");
  g_autoptr (MmTokenizer) t = tokenizer_from_hf ("bpe_strip");
  guint i;

  for (i = 0; i < json_array_get_length (lines); i++)
    check_encode ("bpe_strip", t, json_array_get_string_element (lines, i),
        MM_ENCODE_PARSE_SPECIAL, ref_lines (ref, "ids", i), i);
}

/* Bytes that are not UTF-8 are encoded as bytes and decoded back. */
static void
check_invalid_utf8 (const gchar * what, const MmTokenizer * t)
{
  static const struct
  {
    const gchar *s;
    gsize len;
  } cases[] = {
    {"abc\xff\xfe def", 9}, {"\xc3\x28 x", 4}, {"\xe2\x82 end", 6},
    {"end\xf0\x9f\x98", 6}, {"\xed\xa0\x80 surrogate", 13},
    {"\xc0\xaf overlong", 11}, {"\x80\x80\x80", 3},
    {"ok\xf4\x90\x80\x80 big", 10}, {"a\0b nul", 8},
    {"<|im_start|>\xff<|im_end|>", 23}, {"x \xa0 \xe3\x80", 6},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) bytes = NULL;
    g_autofree gchar *text = NULL, *valid = NULL;
    gboolean ok = mm_tokenizer_encode (t, cases[i].s, cases[i].len,
        MM_ENCODE_PARSE_SPECIAL, ids, &error);

    CHECK (ok, "%s: invalid UTF-8 case %u: %s", what, i,
        error ? error->message : "");
    if (!ok)
      continue;
    bytes = mm_tokenizer_decode_bytes (t, (gint32 *) ids->data, ids->len,
        MM_DECODE_SPECIAL, NULL);
    CHECK (g_bytes_get_size (bytes) == cases[i].len
        && memcmp (g_bytes_get_data (bytes, NULL), cases[i].s,
            cases[i].len) == 0, "%s: invalid UTF-8 case %u: no round trip",
        what, i);
    text = mm_tokenizer_decode (t, (gint32 *) ids->data, ids->len,
        MM_DECODE_SPECIAL, NULL);
    valid = g_utf8_make_valid (cases[i].s, cases[i].len);
    CHECK (g_strcmp0 (text, valid) == 0, "%s: invalid UTF-8 case %u: "
        "decoded text differs from g_utf8_make_valid", what, i);
    check_stream (what, t, ids, MM_DECODE_SPECIAL, text);
  }
}

/* Large inputs finish (one 1 MB word, random bytes); not timed. */
static void
check_large (const gchar * what, const MmTokenizer * t)
{
  gsize n = 1 << 20, i;
  g_autofree gchar *word = g_malloc (n);
  g_autofree gchar *noise = g_malloc (n / 4);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GBytes) back = NULL;

  for (i = 0; i < n; i++)
    word[i] = "ab"[i % 2];
  for (i = 0; i < n / 4; i++)
    noise[i] = (gchar) g_rand_int_range (rand, 0, 256);
  CHECK (mm_tokenizer_encode (t, word, n, MM_ENCODE_NONE, ids, NULL)
      && ids->len > 0 && ids->len < n, "%s: 1 MB word", what);
  g_array_set_size (ids, 0);
  CHECK (mm_tokenizer_encode (t, noise, n / 4, MM_ENCODE_PARSE_SPECIAL, ids,
          NULL), "%s: random bytes", what);
  back = mm_tokenizer_decode_bytes (t, (gint32 *) ids->data, ids->len,
      MM_DECODE_SPECIAL, NULL);
  CHECK (back && g_bytes_get_size (back) == n / 4
      && memcmp (g_bytes_get_data (back, NULL), noise, n / 4) == 0,
      "%s: random bytes do not round-trip", what);
}

static void
test_robustness (void)
{
  const gchar *hf[] = { "bpe_gpt2", "bpe_llama3", "bpe_qwen2", "bpe_smollm",
    "spm_legacy", "spm_meta"
  };
  const gchar *plain[] = { "bpe_gpt2", "bpe_llama3", "bpe_qwen2",
    "bpe_smollm", "spm"
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (hf); i++) {
    g_autoptr (MmTokenizer) t = tokenizer_from_hf (hf[i]);

    check_invalid_utf8 (hf[i], t);
  }
  for (i = 0; i < G_N_ELEMENTS (plain); i++) {
    g_autoptr (MmTokenizer) t = tokenizer_from_plain (plain[i]);

    check_invalid_utf8 (plain[i], t);
    check_large (plain[i], t);
  }
}

static void
expect_error (const gchar * what, gpointer obj, GError * error, gint code)
{
  CHECK (obj == NULL && error != NULL && error->domain == MM_TOKENIZER_ERROR
      && error->code == code, "%s: expected error %d, got %s", what, code,
      error ? error->message : "none");
  if (error)
    g_print ("  expected error: %s\n", error->message);
}

static void
test_errors (void)
{
  const gchar *tokens[] = { "a", "b", "ab", "\xe2\x96\x81" };
  const gchar *merges[] = { "a b" };
  const gchar *wp =
      "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}";
  const gchar *lower =
      "{\"normalizer\": {\"type\": \"Lowercase\"}, "
      "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
  g_autoptr (MmTokenizer) spm = NULL, bpe = NULL;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint32 bad = 99999;
  GError *error = NULL;
  gpointer obj;
  GString *out = g_string_new (NULL);

  obj = mm_tokenizer_new_from_hf_json ("/nonexistent/tokenizer.json", &error);
  CHECK (obj == NULL && error != NULL, "missing file");
  g_clear_error (&error);
  obj = mm_tokenizer_new_from_hf_json_data ("{ not json", -1, &error);
  CHECK (obj == NULL && error != NULL, "bad JSON");
  g_clear_error (&error);
  obj = mm_tokenizer_new_from_hf_json_data (wp, -1, &error);
  expect_error ("WordPiece", obj, error, MM_TOKENIZER_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  obj = mm_tokenizer_new_from_hf_json_data (lower, -1, &error);
  expect_error ("Lowercase", obj, error, MM_TOKENIZER_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  obj = mm_tokenizer_new_bpe (tokens, 3, merges, 1, NULL, "no-such-pre",
      &error);
  expect_error ("unknown pre", obj, error, MM_TOKENIZER_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  obj = mm_tokenizer_new_bpe (tokens, 0, merges, 1, NULL, "gpt2", &error);
  expect_error ("no tokens", obj, error, MM_TOKENIZER_ERROR_INVALID);
  g_clear_error (&error);

  /* SentencePiece without byte tokens or <unk>: 'c' cannot be encoded */
  spm = mm_tokenizer_new_spm (tokens, NULL, NULL, 4, &error);
  CHECK (spm != NULL, "tiny spm");
  CHECK (!mm_tokenizer_encode (spm, "abc", -1, MM_ENCODE_NONE, ids, &error)
      && ids->len == 0, "spm: unencodable text must fail, leave ids alone");
  expect_error ("spm unencodable", NULL, error, MM_TOKENIZER_ERROR_ENCODE);
  g_clear_error (&error);

  bpe = tokenizer_from_plain ("bpe_gpt2");
  CHECK (mm_tokenizer_decode (bpe, &bad, 1, MM_DECODE_NONE, &error) == NULL,
      "decode of a bad id");
  g_clear_error (&error);
  bad = -5;
  CHECK (!mm_tokenizer_token_to_piece (bpe, bad, 0, out, &error), "piece");
  expect_error ("bad id", NULL, error, MM_TOKENIZER_ERROR_TOKEN);
  g_clear_error (&error);
  CHECK (mm_tokenizer_token_text (bpe, 1 << 30) == NULL, "token_text range");
  CHECK (mm_tokenizer_token_id (bpe, "no such token") == -1, "token_id");
  g_string_free (out, TRUE);
}

/* Special ids, flags and end-of-generation. */
static void
test_specials (void)
{
  g_autoptr (MmTokenizer) t = tokenizer_from_plain ("bpe_llama3");
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint32 bot = mm_tokenizer_token_id (t, "<|begin_of_text|>");
  gint32 eot = mm_tokenizer_token_id (t, "<|endoftext|>");

  CHECK (mm_tokenizer_get_special (t, MM_SPECIAL_BOS) == bot && bot >= 0,
      "BOS");
  CHECK (mm_tokenizer_get_add_bos (t), "add_bos");
  CHECK (mm_tokenizer_set_special_by_text (t, MM_SPECIAL_EOS, "<|im_end|>"),
      "EOS by text");
  CHECK (!mm_tokenizer_set_special_by_text (t, MM_SPECIAL_EOT, "<|nope|>"),
      "EOT by missing text");
  CHECK (mm_tokenizer_is_eog (t, eot), "<|endoftext|> ends generation");
  CHECK (!mm_tokenizer_is_eog (t, bot), "BOS does not end generation");
  mm_tokenizer_set_add_eos (t, TRUE);
  mm_tokenizer_encode (t, "hi", -1, MM_ENCODE_ADD_SPECIAL, ids, NULL);
  CHECK (ids->len >= 3 && g_array_index (ids, gint32, 0) == bot
      && g_array_index (ids, gint32, ids->len - 1) ==
      mm_tokenizer_token_id (t, "<|im_end|>"), "BOS ... EOS");
  mm_tokenizer_add_eog (t, 5);
  CHECK (mm_tokenizer_is_eog (t, 5), "added EOG");
}

/* tokenizer_config.json: token strings or AddedToken objects, flags, the
 * chat template inline, as a named list, or in chat_template.jinja. */
static void
test_hf_config (void)
{
  g_autoptr (MmTokenizer) t = tokenizer_from_hf ("bpe_gpt2");
  g_autofree gchar *dir = g_dir_make_tmp ("mm-tok-XXXXXX", NULL);
  g_autofree gchar *cfg = g_build_filename (dir, "tokenizer_config.json",
      NULL);
  g_autofree gchar *jinja = g_build_filename (dir, "chat_template.jinja",
      NULL);
  gchar *tmpl = NULL;
  g_autoptr (GError) error = NULL;

  g_file_set_contents (cfg, "{\"bos_token\": \"<|im_start|>\", "
      "\"eos_token\": {\"__type\": \"AddedToken\", \"content\": "
      "\"<|im_end|>\"}, \"add_bos_token\": true, \"chat_template\": "
      "[{\"name\": \"tool_use\", \"template\": \"T\"}, "
      "{\"name\": \"default\", \"template\": \"D\"}]}", -1, NULL);
  CHECK (mm_tokenizer_load_hf_config (t, cfg, &tmpl, &error), "config: %s",
      error ? error->message : "");
  CHECK (mm_tokenizer_get_special (t, MM_SPECIAL_BOS) ==
      mm_tokenizer_token_id (t, "<|im_start|>"), "config bos");
  CHECK (mm_tokenizer_get_special (t, MM_SPECIAL_EOS) ==
      mm_tokenizer_token_id (t, "<|im_end|>"), "config eos");
  CHECK (mm_tokenizer_get_add_bos (t), "config add_bos");
  CHECK (g_strcmp0 (tmpl, "D") == 0, "config default template: %s", tmpl);
  g_clear_pointer (&tmpl, g_free);
  g_file_set_contents (cfg, "{\"add_bos_token\": false}", -1, NULL);
  g_file_set_contents (jinja, "J", -1, NULL);
  CHECK (mm_tokenizer_load_hf_config (t, cfg, &tmpl, NULL)
      && !mm_tokenizer_get_add_bos (t), "config 2");
  CHECK (g_strcmp0 (tmpl, "J") == 0, "chat_template.jinja: %s", tmpl);
  g_clear_pointer (&tmpl, g_free);
  g_file_set_contents (cfg, "[1, 2]", -1, NULL);
  CHECK (!mm_tokenizer_load_hf_config (t, cfg, &tmpl, NULL), "not object");
  g_unlink (cfg);
  g_unlink (jinja);
  g_rmdir (dir);
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
  test_strip ();
  test_robustness ();
  test_errors ();
  test_specials ();
  test_hf_config ();
  if (failures) {
    g_printerr ("%d check(s) failed\n", failures);
    return 1;
  }
  g_print ("%d tokenizer checks passed\n", checks);
  return 0;
}
