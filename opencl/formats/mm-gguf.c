/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-gguf.h"
#include "mm-format-private.h"

#include <string.h>

#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_NAME_LEN 65535
/* smallest encodings, used to bound counts by the bytes left */
#define GGUF_MIN_KV_BYTES (8 + 1 + 4 + 1)
#define GGUF_MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)

typedef struct
{
  gchar *chars;                 /* every string, each NUL-terminated */
  gsize *offsets;               /* n + 1 entries into chars */
} StrIndex;

struct _MmGgufArray
{
  MmGgufType type;
  guint64 n;
  const guint8 *data;           /* first element, inside the mapping */
  gsize nbytes;
  StrIndex *index;              /* built on first string access (g_once) */
};

typedef struct
{
  gchar *key;
  MmGgufType type;
  union
  {
    guint64 u;                  /* UINT*, BOOL */
    gint64 i;                   /* INT* */
    gdouble f;                  /* FLOAT* */
  } v;
  gchar *str;                   /* STRING, NUL-terminated copy */
  gsize str_len;
  MmGgufArray *arr;             /* ARRAY */
} Kv;

struct _MmGguf
{
  gchar *path;
  GBytes *bytes;
  const guint8 *base;
  gsize size;
  guint32 version;
  guint32 alignment;
  guint64 data_offset;
  GPtrArray *kvs;               /* Kv*, file order */
  GHashTable *kv_by_key;        /* key -> Kv* */
  MmTensorTable tensors;
};

typedef struct
{
  const guint8 *p;
  gsize size;
  gsize pos;
  const gchar *file;
} Reader;

/* ---- type tables ---- */

static const gchar *gguf_type_names[] = {
  "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

/* bytes per scalar element (0: variable) */
static const guint8 gguf_type_size[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8,
  8
};

typedef struct
{
  const gchar *name;
  guint16 block_elems;
  guint16 block_bytes;
} GgmlType;

/* ggml.h enum ggml_type; holes are ids GGML removed. */
static const GgmlType ggml_types[] = {
  [0] = {"F32", 1, 4},[1] = {"F16", 1, 2},[2] = {"Q4_0", 32, 18},
  [3] = {"Q4_1", 32, 20},[6] = {"Q5_0", 32, 22},[7] = {"Q5_1", 32, 24},
  [8] = {"Q8_0", 32, 34},[9] = {"Q8_1", 32, 36},[10] = {"Q2_K", 256, 84},
  [11] = {"Q3_K", 256, 110},[12] = {"Q4_K", 256, 144},
  [13] = {"Q5_K", 256, 176},[14] = {"Q6_K", 256, 210},
  [15] = {"Q8_K", 256, 292},[16] = {"IQ2_XXS", 256, 66},
  [17] = {"IQ2_XS", 256, 74},[18] = {"IQ3_XXS", 256, 98},
  [19] = {"IQ1_S", 256, 50},[20] = {"IQ4_NL", 32, 18},
  [21] = {"IQ3_S", 256, 110},[22] = {"IQ2_S", 256, 82},
  [23] = {"IQ4_XS", 256, 136},[24] = {"I8", 1, 1},[25] = {"I16", 1, 2},
  [26] = {"I32", 1, 4},[27] = {"I64", 1, 8},[28] = {"F64", 1, 8},
  [29] = {"IQ1_M", 256, 56},[30] = {"BF16", 1, 2},
  [34] = {"TQ1_0", 256, 54},[35] = {"TQ2_0", 256, 66},
  [39] = {"MXFP4", 32, 17},
};

const gchar *
mm_gguf_type_name (MmGgufType type)
{
  if ((guint) type < G_N_ELEMENTS (gguf_type_names))
    return gguf_type_names[type];
  return type == MM_GGUF_TYPE_NONE ? "(absent)" : "(invalid)";
}

const gchar *
mm_ggml_type_name (guint32 id)
{
  return id < G_N_ELEMENTS (ggml_types) ? ggml_types[id].name : NULL;
}

static gboolean
ggml_to_dtype (guint32 id, MmDType * dtype)
{
  switch (id) {
    case MM_GGML_TYPE_F32:
      *dtype = MM_DTYPE_F32;
      return TRUE;
    case MM_GGML_TYPE_F16:
      *dtype = MM_DTYPE_F16;
      return TRUE;
    case MM_GGML_TYPE_BF16:
      *dtype = MM_DTYPE_BF16;
      return TRUE;
    case MM_GGML_TYPE_Q8_0:
      *dtype = MM_DTYPE_Q8_0;
      return TRUE;
    case MM_GGML_TYPE_Q4_0:
      *dtype = MM_DTYPE_Q4_0;
      return TRUE;
    case MM_GGML_TYPE_Q4_1:
      *dtype = MM_DTYPE_Q4_1;
      return TRUE;
    default:
      return FALSE;
  }
}

/* ---- reading primitives ---- */

static gboolean
rd_bytes (Reader * r, gsize n, const guint8 ** out, const gchar * what,
    GError ** error)
{
  if (n > r->size - r->pos) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, r->file,
        "truncated: %s needs %" G_GSIZE_FORMAT " bytes at offset %"
        G_GSIZE_FORMAT ", the file has %" G_GSIZE_FORMAT " left", what, n,
        r->pos, r->size - r->pos);
    return FALSE;
  }
  *out = r->p + r->pos;
  r->pos += n;
  return TRUE;
}

static gboolean
rd_u32 (Reader * r, guint32 * v, const gchar * what, GError ** error)
{
  const guint8 *p;
  if (!rd_bytes (r, 4, &p, what, error))
    return FALSE;
  memcpy (v, p, 4);
  *v = GUINT32_FROM_LE (*v);
  return TRUE;
}

static gboolean
rd_u64 (Reader * r, guint64 * v, const gchar * what, GError ** error)
{
  const guint8 *p;
  if (!rd_bytes (r, 8, &p, what, error))
    return FALSE;
  memcpy (v, p, 8);
  *v = GUINT64_FROM_LE (*v);
  return TRUE;
}

/* A length-prefixed string; @max bounds the length (0: the file). */
static gboolean
rd_str (Reader * r, const guint8 ** s, gsize * len, guint64 max,
    const gchar * what, GError ** error)
{
  guint64 n;
  gsize at = r->pos;
  if (!rd_u64 (r, &n, what, error))
    return FALSE;
  if (n > r->size - r->pos || (max && n > max)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, r->file,
        "%s at offset %" G_GSIZE_FORMAT " has length %" G_GUINT64_FORMAT
        " (%" G_GSIZE_FORMAT " bytes left in the file, at most %"
        G_GUINT64_FORMAT " allowed)", what, at, n, r->size - r->pos,
        max ? max : (guint64) (r->size - r->pos));
    return FALSE;
  }
  *len = (gsize) n;
  return rd_bytes (r, (gsize) n, s, what, error);
}

static inline guint64
load_le (const guint8 * p, guint size)
{
  guint64 v = 0;
  for (guint i = 0; i < size; i++)
    v |= (guint64) p[i] << (8 * i);
  return v;
}

static gboolean
is_int_type (MmGgufType t)
{
  return t <= MM_GGUF_TYPE_INT32 || t == MM_GGUF_TYPE_UINT64
      || t == MM_GGUF_TYPE_INT64;
}

static gboolean
is_signed_type (MmGgufType t)
{
  return t == MM_GGUF_TYPE_INT8 || t == MM_GGUF_TYPE_INT16
      || t == MM_GGUF_TYPE_INT32 || t == MM_GGUF_TYPE_INT64;
}

/* Decodes a fixed-size scalar of type @t at @p into @kv->v. */
static void
decode_scalar (MmGgufType t, const guint8 * p, Kv * kv)
{
  guint size = gguf_type_size[t];
  guint64 raw = load_le (p, size);
  if (t == MM_GGUF_TYPE_FLOAT32) {
    guint32 b = (guint32) raw;
    gfloat f;
    memcpy (&f, &b, 4);
    kv->v.f = f;
  } else if (t == MM_GGUF_TYPE_FLOAT64) {
    memcpy (&kv->v.f, &raw, 8);
  } else if (is_signed_type (t)) {
    guint shift = 64 - 8 * size;
    kv->v.i = (gint64) (raw << shift) >> shift; /* sign-extend */
  } else {
    kv->v.u = t == MM_GGUF_TYPE_BOOL ? raw != 0 : raw;
  }
}

/* ---- metadata parsing ---- */

static void
kv_free (Kv * kv)
{
  if (kv->arr && kv->arr->index) {
    g_free (kv->arr->index->chars);
    g_free (kv->arr->index->offsets);
    g_free (kv->arr->index);
  }
  g_free (kv->arr);
  g_free (kv->str);
  g_free (kv->key);
  g_free (kv);
}

static gboolean
parse_array (Reader * r, Kv * kv, GError ** error)
{
  guint32 et;
  guint64 n;
  if (!rd_u32 (r, &et, "array type", error) || !rd_u64 (r, &n, "array length",
          error))
    return FALSE;
  if (et == MM_GGUF_TYPE_ARRAY || et >= G_N_ELEMENTS (gguf_type_names)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, r->file,
        "key '%s': %s arrays are not supported", kv->key,
        et == MM_GGUF_TYPE_ARRAY ? "nested" : "invalid element type of");
    return FALSE;
  }
  guint esize = et == MM_GGUF_TYPE_STRING ? 8 : gguf_type_size[et];
  if (n > (r->size - r->pos) / esize) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, r->file,
        "key '%s': array of %" G_GUINT64_FORMAT " %s does not fit in the "
        "%" G_GSIZE_FORMAT " bytes left", kv->key, n, gguf_type_names[et],
        r->size - r->pos);
    return FALSE;
  }
  MmGgufArray *a = kv->arr = g_new0 (MmGgufArray, 1);
  a->type = et;
  a->n = n;
  a->data = r->p + r->pos;
  gsize start = r->pos;
  if (et != MM_GGUF_TYPE_STRING) {
    r->pos += (gsize) n *esize;
  } else {
    for (guint64 i = 0; i < n; i++) {
      const guint8 *s;
      gsize len;
      if (!rd_str (r, &s, &len, 0, "array string", error))
        return FALSE;
    }
  }
  a->nbytes = r->pos - start;
  return TRUE;
}

static gboolean
parse_value (Reader * r, Kv * kv, GError ** error)
{
  const guint8 *p;
  if (kv->type == MM_GGUF_TYPE_ARRAY)
    return parse_array (r, kv, error);
  if (kv->type == MM_GGUF_TYPE_STRING) {
    if (!rd_str (r, &p, &kv->str_len, 0, "string value", error))
      return FALSE;
    kv->str = g_malloc (kv->str_len + 1);
    memcpy (kv->str, p, kv->str_len);
    kv->str[kv->str_len] = '\0';
    return TRUE;
  }
  if (!rd_bytes (r, gguf_type_size[kv->type], &p, "value", error))
    return FALSE;
  decode_scalar (kv->type, p, kv);
  return TRUE;
}

static gboolean
parse_kv (MmGguf * g, Reader * r, GError ** error)
{
  const guint8 *s;
  gsize len;
  guint32 type;
  if (!rd_str (r, &s, &len, GGUF_MAX_KEY_LEN, "key", error))
    return FALSE;
  if (len == 0 || memchr (s, 0, len)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "key at offset %" G_GSIZE_FORMAT " is empty or holds a NUL byte",
        r->pos - len - 8);
    return FALSE;
  }
  Kv *kv = g_new0 (Kv, 1);
  kv->key = g_strndup ((const gchar *) s, len);
  if (g_hash_table_contains (g->kv_by_key, kv->key)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "duplicate key '%s'", kv->key);
    kv_free (kv);
    return FALSE;
  }
  g_ptr_array_add (g->kvs, kv);
  g_hash_table_insert (g->kv_by_key, kv->key, kv);
  if (!rd_u32 (r, &type, "value type", error))
    return FALSE;
  if (type >= G_N_ELEMENTS (gguf_type_names)) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "key '%s' has invalid value type %u", kv->key, type);
    kv->type = MM_GGUF_TYPE_NONE;
    return FALSE;
  }
  kv->type = (MmGgufType) type;
  return parse_value (r, kv, error);
}

/* ---- tensor infos ---- */

static gboolean
tensor_nbytes (const gchar * file, const gchar * name, guint32 type,
    const guint64 * ne, guint32 n_dims, MmTensorInfo * info, GError ** error)
{
  const GgmlType *gt = &ggml_types[type];
  for (guint32 d = 0; d < n_dims; d++) {
    if (ne[d] > G_MAXINT64) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
          "tensor '%s': dim %u is %" G_GUINT64_FORMAT, name, d, ne[d]);
      return FALSE;
    }
    info->shape[n_dims - 1 - d] = (gint64) ne[d];
  }
  guint64 nbytes;
  if (!mm_shape_numel (n_dims, info->shape, &info->numel)
      || !g_uint64_checked_mul (&nbytes, (guint64) info->numel /
          gt->block_elems, gt->block_bytes) || nbytes > G_MAXSIZE) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "tensor '%s': the size of its %u dims overflows", name, n_dims);
    return FALSE;
  }
  if (ne[0] % gt->block_elems != 0) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, file,
        "tensor '%s': row length %" G_GUINT64_FORMAT " is not a multiple "
        "of the %s block size %u", name, ne[0], gt->name, gt->block_elems);
    return FALSE;
  }
  info->nbytes = (gsize) nbytes;
  return TRUE;
}

static gboolean
parse_tensor_info (MmGguf * g, Reader * r, GError ** error)
{
  const guint8 *s;
  gsize len;
  guint32 n_dims, type;
  guint64 ne[MM_MAX_DIMS], offset;
  if (!rd_str (r, &s, &len, GGUF_MAX_NAME_LEN, "tensor name", error))
    return FALSE;
  g_autofree gchar *name = g_strndup ((const gchar *) s, len);
  if (len == 0 || strlen (name) != len) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "tensor name at offset %" G_GSIZE_FORMAT " is empty or holds a NUL "
        "byte", r->pos - len - 8);
    return FALSE;
  }
  if (!rd_u32 (r, &n_dims, "tensor dim count", error))
    return FALSE;
  if (n_dims < 1 || n_dims > MM_MAX_DIMS) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "tensor '%s' has %u dims (1..%d supported)", name, n_dims, MM_MAX_DIMS);
    return FALSE;
  }
  for (guint32 d = 0; d < n_dims; d++)
    if (!rd_u64 (r, &ne[d], "tensor dims", error))
      return FALSE;
  if (!rd_u32 (r, &type, "tensor type", error)
      || !rd_u64 (r, &offset, "tensor offset", error))
    return FALSE;
  if (mm_ggml_type_name (type) == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, g->path,
        "tensor '%s' has unknown GGML type %u", name, type);
    return FALSE;
  }
  MmTensorInfo info = { 0 };
  info.name = name;
  info.n_dims = (gint) n_dims;
  info.type_name = ggml_types[type].name;
  info.type_id = (gint) type;
  info.supported = ggml_to_dtype (type, &info.dtype);
  info.offset = offset;         /* relative until the data section is known */
  if (!tensor_nbytes (g->path, name, type, ne, n_dims, &info, error))
    return FALSE;
  return mm_tensor_table_add (&g->tensors, &info, g->path, error);
}

/* Places every tensor in the data section: aligned, inside the file. */
static gboolean
place_tensors (MmGguf * g, GError ** error)
{
  if (g->tensors.infos->len > 0 && g->data_offset > g->size) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "truncated: the data section would start at byte %" G_GUINT64_FORMAT
        ", past the end of the file (%" G_GSIZE_FORMAT " bytes)",
        g->data_offset, g->size);
    return FALSE;
  }
  gsize data_size = g->size > g->data_offset ? g->size - g->data_offset : 0;
  for (guint i = 0; i < g->tensors.infos->len; i++) {
    MmTensorInfo *t = &g_array_index (g->tensors.infos, MmTensorInfo, i);
    if (t->offset % g->alignment != 0) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
          "tensor '%s': offset %" G_GUINT64_FORMAT " is not a multiple of "
          "the alignment %u", t->name, t->offset, g->alignment);
      return FALSE;
    }
    if (t->offset > data_size || t->nbytes > data_size - t->offset) {
      mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
          "tensor '%s': bytes %" G_GUINT64_FORMAT "..+%" G_GSIZE_FORMAT
          " of the data section lie outside the file (the data section has "
          "%" G_GSIZE_FORMAT " bytes)", t->name, t->offset, t->nbytes,
          data_size);
      return FALSE;
    }
    t->offset += g->data_offset;
    t->data = g->base + t->offset;
  }
  return mm_tensor_table_check_overlap (&g->tensors, g->path, error);
}

static gboolean
read_alignment (MmGguf * g, GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, "general.alignment");
  g->alignment = MM_GGUF_DEFAULT_ALIGNMENT;
  if (kv == NULL)
    return TRUE;
  if (kv->type != MM_GGUF_TYPE_UINT32 || kv->v.u == 0
      || (kv->v.u & (kv->v.u - 1)) != 0) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "key 'general.alignment' must be a UINT32 power of two (is %s %"
        G_GUINT64_FORMAT ")", mm_gguf_type_name (kv->type), kv->v.u);
    return FALSE;
  }
  g->alignment = (guint32) kv->v.u;
  return TRUE;
}

/* ---- open ---- */

static gboolean
parse_header (MmGguf * g, Reader * r, guint64 * n_tensors, guint64 * n_kv,
    GError ** error)
{
  const guint8 *magic;
  if (!rd_bytes (r, 4, &magic, "magic", error))
    return FALSE;
  if (memcmp (magic, "GGUF", 4) != 0) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "not a GGUF file (bad magic)");
    return FALSE;
  }
  if (!rd_u32 (r, &g->version, "version", error))
    return FALSE;
  if (g->version != 2 && g->version != 3) {
    gboolean swapped = (g->version & 0xffff) == 0;
    mm_format_set_error (error, MM_FORMAT_ERROR_UNSUPPORTED, g->path,
        "GGUF version %u is not supported (2 and 3 are%s)", g->version,
        swapped ? "; this looks like a big-endian file" : "");
    return FALSE;
  }
  if (!rd_u64 (r, n_tensors, "tensor count", error)
      || !rd_u64 (r, n_kv, "key/value count", error))
    return FALSE;
  gsize left = r->size - r->pos;
  if (*n_kv > left / GGUF_MIN_KV_BYTES || *n_tensors > left /
      GGUF_MIN_TENSOR_BYTES || *n_kv + *n_tensors > G_MAXUINT) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path,
        "%" G_GUINT64_FORMAT " keys and %" G_GUINT64_FORMAT " tensors "
        "cannot fit in the %" G_GSIZE_FORMAT " bytes left", *n_kv,
        *n_tensors, left);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse (MmGguf * g, GError ** error)
{
  Reader r = { g->base, g->size, 0, g->path };
  guint64 n_tensors, n_kv;
  if (!parse_header (g, &r, &n_tensors, &n_kv, error))
    return FALSE;
  for (guint64 i = 0; i < n_kv; i++)
    if (!parse_kv (g, &r, error))
      return FALSE;
  if (!read_alignment (g, error))
    return FALSE;
  for (guint64 i = 0; i < n_tensors; i++)
    if (!parse_tensor_info (g, &r, error))
      return FALSE;
  g->data_offset = r.pos + (g->alignment - r.pos % g->alignment)
      % g->alignment;
  return place_tensors (g, error);
}

MmGguf *
mm_gguf_open_from_bytes (GBytes * bytes, const gchar * name, GError ** error)
{
  MmGguf *g = g_new0 (MmGguf, 1);
  g->path = g_strdup (name ? name : "<memory>");
  g->bytes = g_bytes_ref (bytes);
  g->base = g_bytes_get_data (bytes, &g->size);
  g->kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_free);
  g->kv_by_key = g_hash_table_new (g_str_hash, g_str_equal);
  mm_tensor_table_init (&g->tensors);
  if (g->size == 0 || g->base == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_CORRUPT, g->path, "empty file");
    mm_gguf_free (g);
    return NULL;
  }
  if (!parse (g, error)) {
    mm_gguf_free (g);
    return NULL;
  }
  return g;
}

MmGguf *
mm_gguf_open (const gchar * path, GError ** error)
{
  GBytes *bytes = mm_format_map_file (path, error);
  if (bytes == NULL)
    return NULL;
  MmGguf *g = mm_gguf_open_from_bytes (bytes, path, error);
  g_bytes_unref (bytes);
  return g;
}

void
mm_gguf_free (MmGguf * g)
{
  if (g == NULL)
    return;
  mm_tensor_table_clear (&g->tensors);
  g_hash_table_unref (g->kv_by_key);
  g_ptr_array_unref (g->kvs);
  g_bytes_unref (g->bytes);
  g_free (g->path);
  g_free (g);
}

const gchar *
mm_gguf_path (MmGguf * g)
{
  return g->path;
}

guint32
mm_gguf_version (MmGguf * g)
{
  return g->version;
}

guint32
mm_gguf_alignment (MmGguf * g)
{
  return g->alignment;
}

guint64
mm_gguf_data_offset (MmGguf * g)
{
  return g->data_offset;
}

/* ---- metadata getters ---- */

guint
mm_gguf_n_keys (MmGguf * g)
{
  return g->kvs->len;
}

const gchar *
mm_gguf_key_nth (MmGguf * g, guint i)
{
  return i < g->kvs->len ? ((Kv *) g->kvs->pdata[i])->key : NULL;
}

gboolean
mm_gguf_has_key (MmGguf * g, const gchar * key)
{
  return g_hash_table_contains (g->kv_by_key, key);
}

MmGgufType
mm_gguf_key_type (MmGguf * g, const gchar * key)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  return kv ? kv->type : MM_GGUF_TYPE_NONE;
}

gboolean
mm_gguf_require_key (MmGguf * g, const gchar * key, GError ** error)
{
  if (mm_gguf_has_key (g, key))
    return TRUE;
  mm_format_set_error (error, MM_FORMAT_ERROR_MISSING, g->path,
      "missing key '%s'", key);
  return FALSE;
}

static void
type_error (MmGguf * g, const Kv * kv, const gchar * want, GError ** error)
{
  if (kv->type == MM_GGUF_TYPE_ARRAY || kv->type == MM_GGUF_TYPE_STRING
      || kv->type == MM_GGUF_TYPE_FLOAT32 || kv->type == MM_GGUF_TYPE_FLOAT64)
    mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, g->path,
        "key '%s' is %s, not %s", kv->key, mm_gguf_type_name (kv->type), want);
  else if (is_signed_type (kv->type))
    mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, g->path,
        "key '%s' is %s %" G_GINT64_FORMAT ", not %s", kv->key,
        mm_gguf_type_name (kv->type), kv->v.i, want);
  else
    mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, g->path,
        "key '%s' is %s %" G_GUINT64_FORMAT ", not %s", kv->key,
        mm_gguf_type_name (kv->type), kv->v.u, want);
}

/* Integer value of @kv in [lo, hi] (as signed or unsigned 64-bit). */
static gboolean
kv_int_in (const Kv * kv, guint64 hi, gint64 lo, guint64 * out)
{
  if (!is_int_type (kv->type))
    return FALSE;
  if (is_signed_type (kv->type)) {
    if (kv->v.i < lo || (kv->v.i >= 0 && (guint64) kv->v.i > hi))
      return FALSE;
    *out = (guint64) kv->v.i;
    return TRUE;
  }
  if (kv->v.u > hi)
    return FALSE;
  *out = kv->v.u;
  return TRUE;
}

static gboolean
get_int (MmGguf * g, const gchar * key, guint64 hi, gint64 lo,
    const gchar * want, guint64 * out, GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  if (kv == NULL)
    return FALSE;
  if (kv_int_in (kv, hi, lo, out))
    return TRUE;
  type_error (g, kv, want, error);
  return FALSE;
}

guint32
mm_gguf_get_u32 (MmGguf * g, const gchar * key, guint32 def, GError ** error)
{
  guint64 v;
  return get_int (g, key, G_MAXUINT32, 0, "a UINT32", &v, error) ?
      (guint32) v : def;
}

gint32
mm_gguf_get_i32 (MmGguf * g, const gchar * key, gint32 def, GError ** error)
{
  guint64 v;
  return get_int (g, key, G_MAXINT32, G_MININT32, "an INT32", &v, error) ?
      (gint32) (gint64) v : def;
}

guint64
mm_gguf_get_u64 (MmGguf * g, const gchar * key, guint64 def, GError ** error)
{
  guint64 v;
  return get_int (g, key, G_MAXUINT64, 0, "a UINT64", &v, error) ? v : def;
}

gint64
mm_gguf_get_i64 (MmGguf * g, const gchar * key, gint64 def, GError ** error)
{
  guint64 v;
  return get_int (g, key, G_MAXINT64, G_MININT64, "an INT64", &v, error) ?
      (gint64) v : def;
}

gdouble
mm_gguf_get_f64 (MmGguf * g, const gchar * key, gdouble def, GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  if (kv == NULL)
    return def;
  if (kv->type == MM_GGUF_TYPE_FLOAT32 || kv->type == MM_GGUF_TYPE_FLOAT64)
    return kv->v.f;
  if (is_int_type (kv->type))
    return is_signed_type (kv->type) ? (gdouble) kv->v.i : (gdouble) kv->v.u;
  type_error (g, kv, "a number", error);
  return def;
}

gfloat
mm_gguf_get_f32 (MmGguf * g, const gchar * key, gfloat def, GError ** error)
{
  return (gfloat) mm_gguf_get_f64 (g, key, def, error);
}

gboolean
mm_gguf_get_bool (MmGguf * g, const gchar * key, gboolean def, GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  if (kv == NULL)
    return def;
  if (kv->type == MM_GGUF_TYPE_BOOL)
    return kv->v.u != 0;
  type_error (g, kv, "a BOOL", error);
  return def;
}

const gchar *
mm_gguf_get_str (MmGguf * g, const gchar * key, const gchar * def,
    GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  if (kv == NULL)
    return def;
  if (kv->type == MM_GGUF_TYPE_STRING)
    return kv->str;
  type_error (g, kv, "a STRING", error);
  return def;
}

gsize
mm_gguf_get_str_len (MmGguf * g, const gchar * key)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  return kv && kv->type == MM_GGUF_TYPE_STRING ? kv->str_len : 0;
}

/* ---- arrays ---- */

MmGgufArray *
mm_gguf_get_array (MmGguf * g, const gchar * key, MmGgufType elem_type,
    GError ** error)
{
  Kv *kv = g_hash_table_lookup (g->kv_by_key, key);
  if (kv == NULL) {
    mm_format_set_error (error, MM_FORMAT_ERROR_MISSING, g->path,
        "missing key '%s'", key);
    return NULL;
  }
  if (kv->type != MM_GGUF_TYPE_ARRAY) {
    type_error (g, kv, "an ARRAY", error);
    return NULL;
  }
  if (elem_type != MM_GGUF_TYPE_NONE && kv->arr->type != elem_type) {
    mm_format_set_error (error, MM_FORMAT_ERROR_TYPE, g->path,
        "key '%s' is an array of %s, not of %s", key,
        mm_gguf_type_name (kv->arr->type), mm_gguf_type_name (elem_type));
    return NULL;
  }
  return kv->arr;
}

guint64
mm_gguf_array_len (const MmGgufArray * a)
{
  return a->n;
}

MmGgufType
mm_gguf_array_type (const MmGgufArray * a)
{
  return a->type;
}

static StrIndex *
build_str_index (const MmGgufArray * a)
{
  /* the parser checked every length, and nbytes >= 8 * n */
  StrIndex *idx = g_new (StrIndex, 1);
  idx->offsets = g_new (gsize, a->n + 1);
  idx->chars = g_malloc (a->nbytes - 8 * a->n + a->n + 1);
  const guint8 *p = a->data;
  gsize o = 0;
  for (guint64 i = 0; i < a->n; i++) {
    gsize len = (gsize) load_le (p, 8);
    idx->offsets[i] = o;
    memcpy (idx->chars + o, p + 8, len);
    o += len;
    idx->chars[o++] = '\0';
    p += 8 + len;
  }
  idx->offsets[a->n] = o;
  return idx;
}

const gchar *
mm_gguf_array_get_str (MmGgufArray * a, guint64 i, gsize * len)
{
  if (a->type != MM_GGUF_TYPE_STRING || i >= a->n)
    return NULL;
  if (g_once_init_enter (&a->index))
    g_once_init_leave (&a->index, build_str_index (a));
  const StrIndex *idx = a->index;
  if (len)
    *len = idx->offsets[i + 1] - idx->offsets[i] - 1;
  return idx->chars + idx->offsets[i];
}

gint64
mm_gguf_array_get_int (const MmGgufArray * a, guint64 i)
{
  if ((!is_int_type (a->type) && a->type != MM_GGUF_TYPE_BOOL) || i >= a->n)
    return 0;
  Kv kv = { 0 };
  guint size = gguf_type_size[a->type];
  decode_scalar (a->type, a->data + i * size, &kv);
  if (is_signed_type (a->type))
    return kv.v.i;
  return kv.v.u > G_MAXINT64 ? G_MAXINT64 : (gint64) kv.v.u;
}

gdouble
mm_gguf_array_get_float (const MmGgufArray * a, guint64 i)
{
  if (a->type == MM_GGUF_TYPE_STRING || i >= a->n)
    return 0.0;
  Kv kv = { 0 };
  guint size = gguf_type_size[a->type];
  decode_scalar (a->type, a->data + i * size, &kv);
  if (a->type == MM_GGUF_TYPE_FLOAT32 || a->type == MM_GGUF_TYPE_FLOAT64)
    return kv.v.f;
  return is_signed_type (a->type) ? (gdouble) kv.v.i : (gdouble) kv.v.u;
}

/* ---- tensors ---- */

guint
mm_gguf_n_tensors (MmGguf * g)
{
  return mm_tensor_table_len (&g->tensors);
}

const MmTensorInfo *
mm_gguf_tensor_nth (MmGguf * g, guint i)
{
  return mm_tensor_table_nth (&g->tensors, i);
}

const MmTensorInfo *
mm_gguf_find_tensor (MmGguf * g, const gchar * name)
{
  return mm_tensor_table_find (&g->tensors, name);
}

const MmTensorInfo *
mm_gguf_get_tensor (MmGguf * g, const gchar * name, GError ** error)
{
  return mm_tensor_table_get (&g->tensors, name, g->path, error);
}

MmTensor *
mm_gguf_upload_tensor (MmGguf * g, MmEngine * engine, const gchar * name,
    guint accept, gint n_dims, const gint64 * shape, GError ** error)
{
  const MmTensorInfo *info = mm_gguf_get_tensor (g, name, error);
  if (info == NULL)
    return NULL;
  return mm_tensor_info_upload (info, g->path, engine, accept,
      MM_CONVERT_NONE, n_dims, shape, error);
}
