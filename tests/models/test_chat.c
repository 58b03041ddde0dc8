/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chat templates against transformers' apply_chat_template.
 *
 * tests/fixtures/chat/gen_chat.py renders conversations with the real
 * templates of SmolLM2, Qwen2, Qwen2.5, Llama 3/3.1/3.2 and SmolVLM (with
 * the Idefics3 processor's image expansion) and tokenizes them; the
 * prompts built here must give the same text and ids, image embedding
 * positions as MM_CHAT_MEDIA_ID.
 */
#include "mm-chat.h"

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

  return g_build_filename (dir ? dir : MM_SOURCE_FIXTURES, "chat", name, NULL);
}

static gchar *
read_fixture (const gchar * name)
{
  g_autofree gchar *path = fixture (name);
  g_autoptr (GError) error = NULL;
  gchar *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, &error)) {
    g_printerr ("%s\n", error->message);
    exit (1);
  }
  return text;
}

static MmChatTemplate *
template_for (const gchar * name)
{
  g_autofree gchar *file = g_strconcat (name, ".jinja", NULL);
  g_autofree gchar *text = read_fixture (file);

  return mm_chat_template_new (text);
}

typedef struct
{
  GArray *parts;                /* MmChatPart, all messages */
  GArray *msgs;                 /* MmChatMessage */
} Conversation;

static MmChatRole
role_of (const gchar * s)
{
  if (g_str_equal (s, "system"))
    return MM_CHAT_ROLE_SYSTEM;
  if (g_str_equal (s, "assistant"))
    return MM_CHAT_ROLE_ASSISTANT;
  return MM_CHAT_ROLE_USER;
}

/* The JSON messages of a case (strings stay owned by the JSON). */
static void
conversation_from_json (Conversation * c, JsonArray * messages)
{
  guint i, j, n = 0;

  c->parts = g_array_new (FALSE, TRUE, sizeof (MmChatPart));
  c->msgs = g_array_new (FALSE, TRUE, sizeof (MmChatMessage));
  for (i = 0; i < json_array_get_length (messages); i++) {
    JsonObject *m = json_array_get_object_element (messages, i);
    JsonArray *content = json_object_get_array_member (m, "content");

    for (j = 0; j < json_array_get_length (content); j++) {
      JsonObject *p = json_array_get_object_element (content, j);
      MmChatPart part = { 0 };

      if (g_str_equal (json_object_get_string_member (p, "type"), "text")) {
        part.kind = MM_CHAT_PART_TEXT;
        part.text = json_object_get_string_member (p, "text");
      } else {
        part.kind = MM_CHAT_PART_IMAGE;
        part.n_tokens = json_object_get_int_member (p, "n_tokens");
        part.rows = json_object_get_int_member (p, "rows");
        part.cols = json_object_get_int_member (p, "cols");
      }
      g_array_append_val (c->parts, part);
    }
  }
  for (i = 0; i < json_array_get_length (messages); i++) {
    JsonObject *m = json_array_get_object_element (messages, i);
    MmChatMessage msg = { 0 };

    msg.role = role_of (json_object_get_string_member (m, "role"));
    msg.parts = &g_array_index (c->parts, MmChatPart, n);
    msg.n_parts = json_array_get_length (json_object_get_array_member (m,
            "content"));
    n += msg.n_parts;
    g_array_append_val (c->msgs, msg);
  }
}

static void
conversation_clear (Conversation * c)
{
  g_array_unref (c->parts);
  g_array_unref (c->msgs);
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

/* Spans cover exactly the media positions, in order. */
static void
check_spans (const gchar * what, const MmChatPrompt * p)
{
  guint i, k, n_media = 0, covered = 0, last_end = 0;

  for (i = 0; i < p->ids->len; i++)
    n_media += g_array_index (p->ids, gint32, i) == MM_CHAT_MEDIA_ID;
  for (i = 0; i < p->spans->len; i++) {
    const MmChatMediaSpan *s = &g_array_index (p->spans, MmChatMediaSpan, i);

    CHECK (s->pos >= last_end && s->pos + s->n_tokens <= p->ids->len,
        "%s: span %u out of order or range", what, i);
    for (k = 0; k < s->n_tokens && s->pos + k < p->ids->len; k++)
      covered += g_array_index (p->ids, gint32, s->pos + k) == MM_CHAT_MEDIA_ID;
    last_end = s->pos + s->n_tokens;
  }
  CHECK (covered == n_media, "%s: spans cover %u of %u media positions",
      what, covered, n_media);
}

static void
check_case (JsonObject * c, const MmTokenizer * tok)
{
  const gchar *name = json_object_get_string_member (c, "template");
  g_autofree gchar *what = g_strdup_printf ("%s/%s", name,
      json_object_get_string_member (c, "case"));
  g_autoptr (MmChatTemplate) tmpl = template_for (name);
  g_autoptr (MmChatPrompt) p = NULL;
  g_autoptr (GError) error = NULL;
  JsonArray *want_ids = json_object_get_array_member (c, "ids");
  Conversation conv;
  gboolean same;
  guint i;

  conversation_from_json (&conv, json_object_get_array_member (c, "messages"));
  mm_chat_template_set_date (tmpl, json_object_get_string_member (c, "date"));
  if (json_object_has_member (c, "image_style")) {
    const gchar *style = json_object_get_string_member (c, "image_style");
    MmChatImageStyle st = g_str_equal (style, "minicpmv25") ?
        MM_CHAT_IMAGE_MINICPMV_25 : MM_CHAT_IMAGE_MINICPMV_26;

    /* the chat tokenizer has MiniCPM-V's markers: the style found */
    CHECK (mm_chat_template_image_style_for (tmpl, tok) == st,
        "%s: image style from the tokenizer", what);
    gchar *w = g_strconcat (what, " (", style, ")", NULL);

    mm_chat_template_set_image_style (tmpl, st);
    g_free (what);
    what = w;
  }
  p = mm_chat_template_apply (tmpl, tok, (MmChatMessage *) conv.msgs->data,
      conv.msgs->len, json_object_get_boolean_member (c,
          "add_generation_prompt"), &error);
  conversation_clear (&conv);
  CHECK (p != NULL, "%s: %s", what, error ? error->message : "");
  if (p == NULL)
    return;
  CHECK (g_strcmp0 (p->text, json_object_get_string_member (c, "text")) == 0,
      "%s:\n  got  '%s'\n  want '%s'", what, p->text,
      json_object_get_string_member (c, "text"));
  same = p->ids->len == json_array_get_length (want_ids);
  for (i = 0; same && i < p->ids->len; i++)
    same = g_array_index (p->ids, gint32, i) ==
        json_array_get_int_element (want_ids, i);
  if (!same) {
    g_autofree gchar *got = ids_str (p->ids);

    CHECK (FALSE, "%s: ids differ: got %s", what, got);
  }
  check_spans (what, p);
  /* MiniCPM-V: the overview (tile rows * cols) first, then the slices */
  for (i = 0; json_object_has_member (c, "image_style") && i < p->spans->len;
      i++) {
    const MmChatMediaSpan *sp = &g_array_index (p->spans, MmChatMediaSpan, i);
    guint first = i;

    while (i + 1 < p->spans->len && g_array_index (p->spans,
            MmChatMediaSpan, i + 1).part == sp->part
        && g_array_index (p->spans, MmChatMediaSpan, i + 1).message ==
        sp->message)
      i++;
    for (guint k = first; k <= i; k++) {
      const MmChatMediaSpan *t = &g_array_index (p->spans, MmChatMediaSpan, k);
      guint n = i - first;      /* slices */

      CHECK (t->tile == (k == first ? n : k - first - 1),
          "%s: span %u is tile %u", what, k, t->tile);
    }
  }
}

static void
check_recognition (JsonObject * templates)
{
  GList *names = json_object_get_members (templates), *l;

  for (l = names; l; l = l->next) {
    JsonObject *o = json_object_get_object_member (templates, l->data);
    g_autoptr (MmChatTemplate) t = template_for (l->data);
    const gchar *sys = json_object_get_null_member (o, "default_system")
        ? NULL : json_object_get_string_member (o, "default_system");

    CHECK (g_str_equal (mm_chat_format_name (mm_chat_template_get_format (t)),
            json_object_get_string_member (o, "format")), "%s: format %s",
        (gchar *) l->data,
        mm_chat_format_name (mm_chat_template_get_format (t)));
    CHECK (g_strcmp0 (mm_chat_template_get_default_system (t), sys) == 0,
        "%s: default system '%s'", (gchar *) l->data,
        mm_chat_template_get_default_system (t));
  }
  g_list_free (names);
}

/* Dates: the template's literal (3.1) or today (3.2, strftime_now). */
static void
test_dates (void)
{
  g_autoptr (MmChatTemplate) t31 = template_for ("llama3.1");
  g_autoptr (MmChatTemplate) t32 = template_for ("llama3.2");
  MmChatPart part = {.kind = MM_CHAT_PART_TEXT,.text = "hi" };
  g_autoptr (MmChatPrompt) p31 = mm_chat_template_apply_simple (t31, NULL,
      NULL, &part, 1, TRUE, NULL);
  g_autoptr (MmChatPrompt) p32 = mm_chat_template_apply_simple (t32, NULL,
      NULL, &part, 1, TRUE, NULL);
  g_autoptr (GRegex) re = g_regex_new ("Today Date: [0-3][0-9] [A-Z][a-z][a-z]"
      " 20[0-9][0-9]\n", 0, 0, NULL);

  CHECK (strstr (p31->text, "Today Date: 26 Jul 2024\n") != NULL,
      "llama3.1 default date: %s", p31->text);
  CHECK (g_regex_match (re, p32->text, 0, NULL), "llama3.2 date: %s",
      p32->text);
  CHECK (p31->ids->len == 0, "no tokenizer, no ids");
}

/* Media outside Idefics3: markers, spans, Qwen2-VL markers. */
static void
test_media (const MmTokenizer * tok)
{
  g_autoptr (MmChatTemplate) chatml = template_for ("qwen2");
  g_autoptr (MmChatTemplate) vl =
      mm_chat_template_new ("{{'<|im_start|>'}}<|vision_start|><|image_pad|>"
      "<|vision_end|>");
  MmChatPart parts[] = {
    {.kind = MM_CHAT_PART_IMAGE,.n_tokens = 4},
    {.kind = MM_CHAT_PART_TEXT,.text = "What is this?"},
    {.kind = MM_CHAT_PART_AUDIO,.n_tokens = 3},
  };
  g_autoptr (MmChatPrompt) p = mm_chat_template_apply_simple (chatml, tok,
      "S", parts, 3, TRUE, NULL);
  g_autoptr (MmChatPrompt) q = mm_chat_template_apply_simple (vl, NULL, NULL,
      parts, 1, FALSE, NULL);
  const MmChatMediaSpan *s0, *s1;

  CHECK (g_str_equal (p->text, "<|im_start|>system\nS<|im_end|>\n"
          "<|im_start|>user\n<image><image><image><image>What is this?"
          "<audio><audio><audio><|im_end|>\n<|im_start|>assistant\n"),
      "chatml media text: %s", p->text);
  CHECK (p->spans->len == 2, "two spans");
  check_spans ("chatml media", p);
  s0 = &g_array_index (p->spans, MmChatMediaSpan, 0);
  s1 = &g_array_index (p->spans, MmChatMediaSpan, 1);
  CHECK (s0->kind == MM_CHAT_PART_IMAGE && s0->n_tokens == 4
      && s0->message == 1 && s0->part == 0, "image span");
  CHECK (s1->kind == MM_CHAT_PART_AUDIO && s1->n_tokens == 3
      && s1->part == 2 && s1->pos > s0->pos + 4, "audio span");
  CHECK (g_str_equal (q->text, "<|im_start|>user\n<|vision_start|>"
          "<|image_pad|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>"
          "<|im_end|>\n"), "qwen2-vl markers: %s", q->text);
}

static void
test_plain (MmTokenizer * tok)
{
  g_autoptr (MmChatTemplate) t = mm_chat_template_new (NULL);
  MmChatPart parts[] = {
    {.kind = MM_CHAT_PART_IMAGE,.n_tokens = 2},
    {.kind = MM_CHAT_PART_TEXT,.text = "Describe."},
  };
  g_autoptr (MmChatPrompt) p = NULL;
  gint32 bos = mm_tokenizer_get_special (tok, MM_SPECIAL_BOS);

  CHECK (mm_chat_template_get_format (t) == MM_CHAT_FORMAT_PLAIN, "plain");
  mm_tokenizer_set_add_bos (tok, TRUE);
  p = mm_chat_template_apply_simple (t, tok, "Sys", parts, 2, TRUE, NULL);
  mm_tokenizer_set_add_bos (tok, FALSE);
  CHECK (g_str_equal (p->text, "Sys\n<image><image>Describe."), "plain: %s",
      p->text);
  CHECK (p->ids->len > 3 && g_array_index (p->ids, gint32, 0) == bos,
      "plain starts with BOS");
  check_spans ("plain", p);
}

int
main (int argc, char **argv)
{
  g_autofree gchar *tok_path = fixture ("tokenizer.json");
  g_autofree gchar *exp_path = fixture ("expected.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (MmTokenizer) tok = mm_tokenizer_new_from_hf_json (tok_path,
      &error);
  JsonObject *root;
  JsonArray *cases;
  guint i;

  if (tok == NULL || !json_parser_load_from_file (parser, exp_path, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  mm_tokenizer_set_special_by_text (tok, MM_SPECIAL_BOS, "<|begin_of_text|>");
  root = json_node_get_object (json_parser_get_root (parser));
  check_recognition (json_object_get_object_member (root, "templates"));
  cases = json_object_get_array_member (root, "cases");
  for (i = 0; i < json_array_get_length (cases); i++)
    check_case (json_array_get_object_element (cases, i), tok);
  test_dates ();
  test_media (tok);
  test_plain (tok);
  if (failures) {
    g_printerr ("%d check(s) failed\n", failures);
    return 1;
  }
  g_print ("%d chat checks passed\n", checks);
  return 0;
}
