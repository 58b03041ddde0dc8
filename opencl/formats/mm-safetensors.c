/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-safetensors.h"
#include "mm-format-private.h"

#include <string.h>

#define HF_MAX_JSON ((gsize) 64 << 20)  /* config.json, index.json */

struct _MmSafetensors
{
  gchar *path;
  GBytes *bytes;
  const guint8 *base;
  gsize size;
  guint64 data_offset;
  MmJson *header;
  JsonObject *metadata;         /* (nullable), inside header */
  MmTensorTable tensors;
};

typedef struct
{
  const gchar *name;
  guint8 size;                  /* bytes per element, 0: sub-byte */
  gboolean supported;
  MmDType dtype;
} StDType;

static const StDType st_dtypes[] = {
  {"F32", 4, TRUE, MM_DTYPE_F32}, {"F16", 2, TRUE, MM_DTYPE_F16},
  {"BF16", 2, TRUE, MM_DTYPE_BF16}, {"F64", 8}, {"I64", 8}, {"U64", 8},
  {"I32", 4}, {"U32", 4}, {"I16", 2}, {"U16", 2}, {"I8", 1}, {"U8", 1},
  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
  {"F6_E2M3", 0}, {"F6_E3M2", 0}, {"F4", 0},
};

/* ---- header parsing ---- */

static gboolean
json_uint (JsonNode * n, guint64 * out)
{
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_INT64
      || json_node_get_int (n) < 0)
    return FALSE;
  *out = (guint64) json_node_get_int (n);
  return TRUE;
}

static JsonNode *
member (JsonObject * o, const gchar * name)
{
  return json_object_has_member (o, name) ? json_object_get_member (o, name)
      : NULL;
}

static gboolean
parse_shape (MmSafetensors * st, const gchar * name, JsonNode * n,
    MmTensorInfo * info, GError ** error)
{
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': \"shape\" is missing or not an array", name);
    return FALSE;
  }
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  if (len > MM_MAX_DIMS) {
    mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, st->path,
        "tensor '%s' has %u dims (at most %d supported)", name, len,
        MM_MAX_DIMS);
    return FALSE;
  }
  info->n_dims = (gint) len;
  for (guint i = 0; i < len; i++) {
    guint64 d;
    if (!json_uint (json_array_get_element (a, i), &d) || d > G_MAXINT64) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
          "tensor '%s': shape entry %u is not a non-negative integer", name, i);
      return FALSE;
    }
    info->shape[i] = (gint64) d;
  }
  if (!mm_shape_numel (info->n_dims, info->shape, &info->numel)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': element count overflows", name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_offsets (MmSafetensors * st, const gchar * name, JsonNode * n,
    guint64 * begin, guint64 * end, GError ** error)
{
  JsonArray *a = n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) :
      NULL;
  gsize data_size = st->size - st->data_offset;
  if (a == NULL || json_array_get_length (a) != 2
      || !json_uint (json_array_get_element (a, 0), begin)
      || !json_uint (json_array_get_element (a, 1), end)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': \"data_offsets\" is not [begin, end]", name);
    return FALSE;
  }
  if (*begin > *end || *end > data_size) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
        G_GUINT64_FORMAT "] are outside the data section (%" G_GSIZE_FORMAT
        " bytes)", name, *begin, *end, data_size);
    return FALSE;
  }
  return TRUE;
}

static const StDType *
lookup_dtype (MmSafetensors * st, const gchar * name, JsonNode * n,
    const gchar ** dtype_name, GError ** error)
{
  static const StDType unknown = { NULL, 0 };
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_STRING) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': \"dtype\" is missing or not a string", name);
    return NULL;
  }
  *dtype_name = json_node_get_string (n);
  for (guint i = 0; i < G_N_ELEMENTS (st_dtypes); i++)
    if (strcmp (st_dtypes[i].name, *dtype_name) == 0)
      return &st_dtypes[i];
  return &unknown;
}

static gboolean
parse_entry (MmSafetensors * st, const gchar * name, JsonNode * node,
    GError ** error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': entry is not a JSON object", name);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (node);
  MmTensorInfo info = { 0 };
  info.name = name;
  info.type_id = -1;
  const StDType *dt = lookup_dtype (st, name, member (o, "dtype"),
      &info.type_name, error);
  guint64 begin, end, want;
  if (dt == NULL || !parse_shape (st, name, member (o, "shape"), &info, error)
      || !parse_offsets (st, name, member (o, "data_offsets"), &begin, &end,
          error))
    return FALSE;
  if (dt->size && (!g_uint64_checked_mul (&want, info.numel, dt->size)
          || want != end - begin)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "tensor '%s': %" G_GUINT64_FORMAT " bytes do not hold %"
        G_GINT64_FORMAT " %s elements", name, end - begin, info.numel,
        info.type_name);
    return FALSE;
  }
  info.supported = dt->supported;
  info.dtype = dt->dtype;
  info.offset = st->data_offset + begin;
  info.nbytes = (gsize) (end - begin);
  info.data = st->base + info.offset;
  return mm_tensor_table_add (&st->tensors, &info, st->path, error);
}

static gboolean
parse_metadata (MmSafetensors * st, JsonNode * node, GError ** error)
{
  gboolean ok = JSON_NODE_HOLDS_OBJECT (node);
  if (ok) {
    st->metadata = json_node_get_object (node);
    g_autoptr (GList) names = json_object_get_members (st->metadata);
    for (GList * l = names; l && ok; l = l->next) {
      JsonNode *v = json_object_get_member (st->metadata, l->data);
      ok = JSON_NODE_HOLDS_VALUE (v)
          && json_node_get_value_type (v) == G_TYPE_STRING;
    }
  }
  if (!ok)
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "\"__metadata__\" is not an object of strings");
  return ok;
}

static gboolean
parse (MmSafetensors * st, GError ** error)
{
  guint64 n;
  if (st->size < 8) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "truncated: %" G_GSIZE_FORMAT " bytes, no header length", st->size);
    return FALSE;
  }
  memcpy (&n, st->base, 8);
  n = GUINT64_FROM_LE (n);
  if (n > st->size - 8 || n > MM_SAFETENSORS_MAX_HEADER) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "header length %" G_GUINT64_FORMAT " exceeds the %s (%"
        G_GSIZE_FORMAT " bytes)", n, n > st->size - 8 ? "file" : "limit",
        n > st->size - 8 ? st->size - 8 : (gsize) MM_SAFETENSORS_MAX_HEADER);
    return FALSE;
  }
  st->data_offset = 8 + n;
  st->header = mm_json_new_from_data ((const gchar *) st->base + 8, n,
      st->path, error);
  if (st->header == NULL)
    return FALSE;
  JsonNode *root = mm_json_root (st->header);
  if (!JSON_NODE_HOLDS_OBJECT (root)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, st->path,
        "header is not a JSON object");
    return FALSE;
  }
  JsonObject *o = json_node_get_object (root);
  g_autoptr (GList) names = json_object_get_members (o);
  for (GList * l = names; l; l = l->next) {
    JsonNode *node = json_object_get_member (o, l->data);
    gboolean ok = strcmp (l->data, "__metadata__") == 0 ?
        parse_metadata (st, node, error) :
        parse_entry (st, l->data, node, error);
    if (!ok)
      return FALSE;
  }
  return mm_tensor_table_check_overlap (&st->tensors, st->path, error);
}

MmSafetensors *
mm_safetensors_open_from_bytes (GBytes * bytes, const gchar * name,
    GError ** error)
{
  MmSafetensors *st = g_new0 (MmSafetensors, 1);
  st->path = g_strdup (name ? name : "<memory>");
  st->bytes = g_bytes_ref (bytes);
  st->base = g_bytes_get_data (bytes, &st->size);
  mm_tensor_table_init (&st->tensors);
  if (st->base == NULL)
    st->size = 0;
  if (!parse (st, error)) {
    mm_safetensors_free (st);
    return NULL;
  }
  return st;
}

MmSafetensors *
mm_safetensors_open (const gchar * path, GError ** error)
{
  GBytes *bytes = mm_format_map_file (path, error);
  if (bytes == NULL)
    return NULL;
  MmSafetensors *st = mm_safetensors_open_from_bytes (bytes, path, error);
  g_bytes_unref (bytes);
  return st;
}

void
mm_safetensors_free (MmSafetensors * st)
{
  if (st == NULL)
    return;
  mm_tensor_table_clear (&st->tensors);
  mm_json_free (st->header);
  g_bytes_unref (st->bytes);
  g_free (st->path);
  g_free (st);
}

const gchar *
mm_safetensors_path (MmSafetensors * st)
{
  return st->path;
}

const gchar *
mm_safetensors_get_metadata (MmSafetensors * st, const gchar * key)
{
  if (st->metadata == NULL || !json_object_has_member (st->metadata, key))
    return NULL;
  return json_object_get_string_member (st->metadata, key);
}

guint
mm_safetensors_n_tensors (MmSafetensors * st)
{
  return mm_tensor_table_len (&st->tensors);
}

const MmTensorInfo *
mm_safetensors_tensor_nth (MmSafetensors * st, guint i)
{
  return mm_tensor_table_nth (&st->tensors, i);
}

const MmTensorInfo *
mm_safetensors_find_tensor (MmSafetensors * st, const gchar * name)
{
  return mm_tensor_table_find (&st->tensors, name);
}

const MmTensorInfo *
mm_safetensors_get_tensor (MmSafetensors * st, const gchar * name,
    GError ** error)
{
  return mm_tensor_table_get (&st->tensors, name, st->path, error);
}

MmTensor *
mm_safetensors_upload_tensor (MmSafetensors * st, MmEngine * engine,
    const gchar * name, guint accept, MmConvert convert, gint n_dims,
    const gint64 * shape, GError ** error)
{
  const MmTensorInfo *info = mm_safetensors_get_tensor (st, name, error);
  if (info == NULL)
    return NULL;
  return mm_tensor_info_upload (info, st->path, engine, accept, convert,
      n_dims, shape, error);
}

/* ---- model folders ---- */

struct _MmHfModel
{
  gchar *path;
  MmJson *config;
  GPtrArray *shards;            /* MmSafetensors* */
  MmTensorTable tensors;        /* copies of the shards' infos */
  GArray *shard_of;             /* guint, parallel to tensors */
};

static gboolean
add_shard (MmHfModel * m, const gchar * file, GError ** error)
{
  MmSafetensors *st = mm_safetensors_open (file, error);
  if (st == NULL)
    return FALSE;
  g_ptr_array_add (m->shards, st);
  guint idx = m->shards->len - 1;
  for (guint i = 0; i < mm_safetensors_n_tensors (st); i++) {
    if (!mm_tensor_table_add (&m->tensors, mm_safetensors_tensor_nth (st, i),
            m->path, error))
      return FALSE;
    g_array_append_val (m->shard_of, idx);
  }
  return TRUE;
}

static gboolean
valid_shard_name (const gchar * f)
{
  return *f && strcmp (f, ".") != 0 && strcmp (f, "..") != 0
      && strchr (f, '/') == NULL && strchr (f, '\\') == NULL;
}

/* Checks every weight_map entry names a shard that holds the tensor. */
static gboolean
check_weight_map (MmHfModel * m, const gchar * index_path, JsonObject * map,
    GError ** error)
{
  g_autoptr (GList) names = json_object_get_members (map);
  for (GList * l = names; l; l = l->next) {
    const gchar *file = json_object_get_string_member (map, l->data);
    const MmTensorInfo *info = mm_tensor_table_find (&m->tensors, l->data);
    guint s = info ? g_array_index (m->shard_of, guint,
        info - (const MmTensorInfo *) m->tensors.infos->data) : 0;
    g_autofree gchar *base = info ?
        g_path_get_basename (mm_safetensors_path (m->shards->pdata[s])) : NULL;
    if (info == NULL || strcmp (base, file) != 0) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, index_path,
          "weight_map puts tensor '%s' in '%s', which does not hold it",
          (const gchar *) l->data, file);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
open_index (MmHfModel * m, const gchar * index_path, GError ** error)
{
  g_autoptr (MmJson) idx = mm_json_new_from_file (index_path, HF_MAX_JSON,
      error);
  if (idx == NULL)
    return FALSE;
  JsonNode *wm = mm_json_lookup (idx, "weight_map");
  if (wm == NULL || !JSON_NODE_HOLDS_OBJECT (wm)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, index_path,
        "\"weight_map\" is missing or not an object");
    return FALSE;
  }
  JsonObject *map = json_node_get_object (wm);
  g_autoptr (GList) names = json_object_get_members (map);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (GList * l = names; l; l = l->next) {
    JsonNode *v = json_object_get_member (map, l->data);
    const gchar *file = JSON_NODE_HOLDS_VALUE (v)
        && json_node_get_value_type (v) == G_TYPE_STRING ?
        json_node_get_string (v) : NULL;
    if (file == NULL || !valid_shard_name (file)) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, index_path,
          "weight_map entry '%s' is not a file name in the folder",
          (const gchar *) l->data);
      return FALSE;
    }
    if (!g_hash_table_add (seen, (gpointer) file))
      continue;
    g_autofree gchar *path = g_build_filename (m->path, file, NULL);
    if (!add_shard (m, path, error))
      return FALSE;
  }
  return check_weight_map (m, index_path, map, error);
}

static gint
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar * const *) a, *(const gchar * const *) b);
}

/* Without an index: model.safetensors, else every *.safetensors. */
static gboolean
open_unindexed (MmHfModel * m, GError ** error)
{
  g_autofree gchar *single = g_build_filename (m->path, "model.safetensors",
      NULL);
  if (g_file_test (single, G_FILE_TEST_IS_REGULAR))
    return add_shard (m, single, error);
  GError *err = NULL;
  g_autoptr (GDir) dir = g_dir_open (m->path, 0, &err);
  if (dir == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_IO, m->path, "%s",
        err->message);
    g_error_free (err);
    return FALSE;
  }
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  const gchar *f;
  while ((f = g_dir_read_name (dir)))
    if (g_str_has_suffix (f, ".safetensors"))
      g_ptr_array_add (files, g_build_filename (m->path, f, NULL));
  if (files->len == 0) {
    mm_format_set_error (error, MM_FORMAT_ERROR_MISSING, m->path,
        "no *.safetensors file in this folder");
    return FALSE;
  }
  g_ptr_array_sort (files, cmp_str);
  for (guint i = 0; i < files->len; i++)
    if (!add_shard (m, files->pdata[i], error))
      return FALSE;
  return TRUE;
}

static gboolean
open_folder (MmHfModel * m, GError ** error)
{
  g_autofree gchar *cfg = g_build_filename (m->path, "config.json", NULL);
  if (g_file_test (cfg, G_FILE_TEST_EXISTS)) {
    m->config = mm_json_new_from_file (cfg, HF_MAX_JSON, error);
    if (m->config == NULL)
      return FALSE;
    if (!JSON_NODE_HOLDS_OBJECT (mm_json_root (m->config))) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, cfg,
          "not a JSON object");
      return FALSE;
    }
  }
  g_autofree gchar *index = g_build_filename (m->path,
      "model.safetensors.index.json", NULL);
  if (g_file_test (index, G_FILE_TEST_EXISTS))
    return open_index (m, index, error);
  return open_unindexed (m, error);
}

MmHfModel *
mm_hf_model_open (const gchar * path, GError ** error)
{
  MmHfModel *m = g_new0 (MmHfModel, 1);
  m->path = g_strdup (path);
  m->shards = g_ptr_array_new_with_free_func ((GDestroyNotify)
      mm_safetensors_free);
  m->shard_of = g_array_new (FALSE, FALSE, sizeof (guint));
  mm_tensor_table_init (&m->tensors);
  gboolean ok = g_file_test (path, G_FILE_TEST_IS_DIR) ?
      open_folder (m, error) : add_shard (m, path, error);
  if (!ok) {
    mm_hf_model_free (m);
    return NULL;
  }
  return m;
}

void
mm_hf_model_free (MmHfModel * m)
{
  if (m == NULL)
    return;
  mm_tensor_table_clear (&m->tensors);
  g_array_unref (m->shard_of);
  g_ptr_array_unref (m->shards);
  mm_json_free (m->config);
  g_free (m->path);
  g_free (m);
}

const gchar *
mm_hf_model_path (MmHfModel * m)
{
  return m->path;
}

MmJson *
mm_hf_model_config (MmHfModel * m)
{
  return m->config;
}

guint
mm_hf_model_n_shards (MmHfModel * m)
{
  return m->shards->len;
}

MmSafetensors *
mm_hf_model_shard (MmHfModel * m, guint i)
{
  return i < m->shards->len ? m->shards->pdata[i] : NULL;
}

guint
mm_hf_model_n_tensors (MmHfModel * m)
{
  return mm_tensor_table_len (&m->tensors);
}

const MmTensorInfo *
mm_hf_model_tensor_nth (MmHfModel * m, guint i)
{
  return mm_tensor_table_nth (&m->tensors, i);
}

const MmTensorInfo *
mm_hf_model_find_tensor (MmHfModel * m, const gchar * name)
{
  return mm_tensor_table_find (&m->tensors, name);
}

const gchar *
mm_hf_model_tensor_file (MmHfModel * m, const gchar * name)
{
  const MmTensorInfo *info = mm_tensor_table_find (&m->tensors, name);
  if (info == NULL)
    return NULL;
  guint i = info - (const MmTensorInfo *) m->tensors.infos->data;
  return mm_safetensors_path (m->shards->pdata[g_array_index (m->shard_of,
              guint, i)]);
}

const MmTensorInfo *
mm_hf_model_get_tensor (MmHfModel * m, const gchar * name, GError ** error)
{
  const gchar *file = mm_hf_model_tensor_file (m, name);
  return mm_tensor_table_get (&m->tensors, name, file ? file : m->path, error);
}

MmTensor *
mm_hf_model_upload_tensor (MmHfModel * m, MmEngine * engine,
    const gchar * name, guint accept, MmConvert convert, gint n_dims,
    const gint64 * shape, GError ** error)
{
  const MmTensorInfo *info = mm_hf_model_get_tensor (m, name, error);
  if (info == NULL)
    return NULL;
  return mm_tensor_info_upload (info, mm_hf_model_tensor_file (m, name),
      engine, accept, convert, n_dims, shape, error);
}
