/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-json.h"
#include "mm-format-private.h"

#include <stdlib.h>
#include <string.h>

struct _MmJson
{
  gchar *file;
  JsonNode *root;
};

gboolean
mm_json_check_depth (const gchar * data, gsize len, guint max_depth,
    const gchar * file, GError ** error)
{
  guint depth = 0;
  gboolean in_str = FALSE;
  for (gsize i = 0; i < len; i++) {
    gchar c = data[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = FALSE;
    } else if (c == '"') {
      in_str = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
            "JSON nested deeper than %u levels (byte %" G_GSIZE_FORMAT ")",
            max_depth, i);
        return FALSE;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return TRUE;
}

typedef struct
{
  GHashTable *counts;           /* JsonObject* -> members seen */
  gchar *dup;
} DupCheck;

static void
on_object_member (JsonParser * parser, JsonObject * object,
    const gchar * name, DupCheck * dc)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (dc->counts, object)) + 1;
  g_hash_table_insert (dc->counts, object, GUINT_TO_POINTER (n));
  /* a duplicated key replaces the old member: the size does not grow */
  if (dc->dup == NULL && json_object_get_size (object) < n)
    dc->dup = g_strdup (name);
}

MmJson *
mm_json_new_from_data (const gchar * data, gsize len, const gchar * file,
    GError ** error)
{
  if (len == 0 || data == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "empty JSON document");
    return NULL;
  }
  if (len > G_MAXSSIZE) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file, "too large");
    return NULL;
  }
  if (!mm_json_check_depth (data, len, MM_JSON_MAX_DEPTH, file, error))
    return NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  DupCheck dc = { g_hash_table_new (NULL, NULL), NULL };
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member),
      &dc);
  GError *err = NULL;
  gboolean ok = json_parser_load_from_data (parser, data, (gssize) len, &err);
  g_hash_table_unref (dc.counts);
  if (!ok) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "invalid JSON: %s", err->message);
    g_error_free (err);
    g_free (dc.dup);
    return NULL;
  }
  if (dc.dup) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "duplicate JSON key '%s'", dc.dup);
    g_free (dc.dup);
    return NULL;
  }
  if (json_parser_get_root (parser) == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "empty JSON document");
    return NULL;
  }
  MmJson *j = g_new0 (MmJson, 1);
  j->file = g_strdup (file);
  j->root = json_parser_steal_root (parser);
  return j;
}

MmJson *
mm_json_new_from_file (const gchar * path, gsize max_size, GError ** error)
{
  g_autoptr (GMappedFile) mf = NULL;
  GError *err = NULL;
  mf = g_mapped_file_new (path, FALSE, &err);
  if (mf == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_IO, path, "%s", err->message);
    g_error_free (err);
    return NULL;
  }
  if (g_mapped_file_get_length (mf) > max_size) {
    mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, path,
        "%" G_GSIZE_FORMAT " bytes is more than the %" G_GSIZE_FORMAT
        " accepted for this JSON file", g_mapped_file_get_length (mf),
        max_size);
    return NULL;
  }
  return mm_json_new_from_data (g_mapped_file_get_contents (mf),
      g_mapped_file_get_length (mf), path, error);
}

void
mm_json_free (MmJson * j)
{
  if (j == NULL)
    return;
  json_node_unref (j->root);
  g_free (j->file);
  g_free (j);
}

const gchar *
mm_json_file (MmJson * j)
{
  return j->file;
}

JsonNode *
mm_json_root (MmJson * j)
{
  return j->root;
}

static JsonNode *
child (JsonNode * node, const gchar * seg)
{
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObject *o = json_node_get_object (node);
    return json_object_has_member (o, seg) ? json_object_get_member (o, seg)
        : NULL;
  }
  if (JSON_NODE_HOLDS_ARRAY (node) && g_ascii_isdigit (seg[0])) {
    gchar *end;
    guint64 i = g_ascii_strtoull (seg, &end, 10);
    JsonArray *a = json_node_get_array (node);
    if (*end == '\0' && i < json_array_get_length (a))
      return json_array_get_element (a, (guint) i);
  }
  return NULL;
}

JsonNode *
mm_json_lookup (MmJson * j, const gchar * path)
{
  JsonNode *node = j->root;
  if (path == NULL || *path == '\0')
    return node;
  g_auto (GStrv) segs = g_strsplit (path, ".", -1);
  for (guint i = 0; segs[i] && node; i++)
    node = child (node, segs[i]);
  return node;
}

gboolean
mm_json_has (MmJson * j, const gchar * path)
{
  JsonNode *n = mm_json_lookup (j, path);
  return n != NULL && !JSON_NODE_HOLDS_NULL (n);
}

/* The value node at @path if it is present and a scalar of GType @want
 * (G_TYPE_DOUBLE also takes integers); NULL otherwise, with an error when
 * present with another type. */
static JsonNode *
typed (MmJson * j, const gchar * path, GType want, const gchar * what,
    GError ** error)
{
  JsonNode *n = mm_json_lookup (j, path);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (n)) {
    GType t = json_node_get_value_type (n);
    if (t == want || (want == G_TYPE_DOUBLE && t == G_TYPE_INT64)
        || (want == G_TYPE_INT64 && t == G_TYPE_DOUBLE))
      return n;
  }
  mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, j->file,
      "'%s' is not %s", path, what);
  return NULL;
}

gint64
mm_json_get_int (MmJson * j, const gchar * path, gint64 def, GError ** error)
{
  JsonNode *n = typed (j, path, G_TYPE_INT64, "an integer", error);
  if (n == NULL)
    return def;
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return json_node_get_int (n);
  gdouble d = json_node_get_double (n); /* 1e3 style integers */
  if (d >= -9.0e18 && d <= 9.0e18 && d == (gdouble) (gint64) d)
    return (gint64) d;
  mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, j->file,
      "'%s' is not an integer", path);
  return def;
}

gdouble
mm_json_get_float (MmJson * j, const gchar * path, gdouble def, GError ** error)
{
  JsonNode *n = typed (j, path, G_TYPE_DOUBLE, "a number", error);
  return n ? json_node_get_double (n) : def;
}

gboolean
mm_json_get_bool (MmJson * j, const gchar * path, gboolean def, GError ** error)
{
  JsonNode *n = typed (j, path, G_TYPE_BOOLEAN, "a boolean", error);
  return n ? json_node_get_boolean (n) : def;
}

const gchar *
mm_json_get_str (MmJson * j, const gchar * path, const gchar * def,
    GError ** error)
{
  JsonNode *n = typed (j, path, G_TYPE_STRING, "a string", error);
  return n ? json_node_get_string (n) : def;
}

gint64
mm_json_get_len (MmJson * j, const gchar * path)
{
  JsonNode *n = mm_json_lookup (j, path);
  if (n && JSON_NODE_HOLDS_ARRAY (n))
    return json_array_get_length (json_node_get_array (n));
  if (n && JSON_NODE_HOLDS_OBJECT (n))
    return json_object_get_size (json_node_get_object (n));
  return -1;
}
