/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hardened JSON documents (config.json, model.safetensors.index.json,
 * safetensors headers, tokenizer.json) on top of json-glib, with getters
 * by dotted path: "vision_config.hidden_size", "architectures.0".
 *
 * Parsing refuses input nested deeper than MM_JSON_MAX_DEPTH (json-glib
 * recurses per level and would overflow the stack) and objects with a
 * duplicated key (json-glib would silently keep the last one).
 *
 * Getters: an absent path or a JSON null returns @def with no error; a
 * value of the wrong type returns @def and sets @error naming the file and
 * the path.  Strings and nodes returned belong to the MmJson.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define MM_JSON_MAX_DEPTH 128

typedef struct _MmJson MmJson;

/* @file names the document in error messages. */
MmJson *mm_json_new_from_data (const gchar * data, gsize len,
    const gchar * file, GError ** error);
/* Reads at most @max_size bytes (larger files are an error). */
MmJson *mm_json_new_from_file (const gchar * path, gsize max_size,
    GError ** error);
void mm_json_free (MmJson * j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmJson, mm_json_free)

const gchar *mm_json_file (MmJson * j);
/* (transfer none) */
JsonNode *mm_json_root (MmJson * j);
/* (transfer none) (nullable): NULL when absent; an empty path is the root. */
JsonNode *mm_json_lookup (MmJson * j, const gchar * path);
gboolean mm_json_has (MmJson * j, const gchar * path);

gint64 mm_json_get_int (MmJson * j, const gchar * path, gint64 def,
    GError ** error);
gdouble mm_json_get_float (MmJson * j, const gchar * path, gdouble def,
    GError ** error);
gboolean mm_json_get_bool (MmJson * j, const gchar * path, gboolean def,
    GError ** error);
const gchar *mm_json_get_str (MmJson * j, const gchar * path,
    const gchar * def, GError ** error);
/* Number of elements of an array or members of an object; -1 when absent
 * or neither. */
gint64 mm_json_get_len (MmJson * j, const gchar * path);

/* Checks nesting depth and string/bracket balance without parsing. */
gboolean mm_json_check_depth (const gchar * data, gsize len, guint max_depth,
    const gchar * file, GError ** error);

G_END_DECLS
