/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision encoder loader: hparams and preprocessing settings from a GGUF
 * mmproj file (llama.cpp's clip.* keys and tensor names) or a Hugging Face
 * folder (config.json, preprocessor_config.json, *.safetensors), then a
 * table of every tensor the graph uses.  The table is checked as a whole
 * (name, dtype, shape against the hparams) before the first upload, so a
 * bad file fails before any device memory is touched; errors name the file
 * and the tensor or key.
 */
#include "mm-vision-private.h"
#include "mm-json.h"

#include <math.h>
#include <string.h>

/* ---- the tensor table ---- */

typedef enum
{
  W_MATRIX,                     /* GEMM weight: F32 / F16 kept, BF16 and
                                 * quantised types -> F32 */
  W_VECTOR,                     /* biases, norms, embeddings: -> F32 */
  W_HOST,                       /* read to host floats (position tables) */
} WantKind;

#define MAX_PARTS 3

/* One device tensor: one file tensor, or several of the same shape
 * concatenated along dim 0 (the fused QKV projection). */
typedef struct
{
  gchar *names[MAX_PARTS];
  gint n_parts;
  WantKind kind;
  MmTensor **dst;
  float **host;
  gint n_dims;
  gint64 shape[MM_MAX_DIMS];    /* of each part */
  const MmTensorInfo *infos[MAX_PARTS];
} Want;

typedef struct
{
  MmWeights *w;
  const gchar *file;
  MmEngine *engine;
  gboolean gguf;
  const gchar *tower;           /* HF tensor prefix of the tower */
  const gchar *conn;            /* HF tensor prefix of the connector */
  const gchar *vcfg;            /* HF config prefix of the vision config */
  GArray *want;                 /* Want */
  GError *error;                /* first error */
} Loader;

/* the loader's first error (mm-format.h) */
#define fail(L, ...) mm_format_fail (&(L)->error, (L)->file, __VA_ARGS__)
#define take_error(L, err) mm_format_keep_error (&(L)->error, (err))

static gchar *
tensor_name (Loader * L, const gchar * fmt, gint il)
{
  gchar *sub = g_strdup_printf (fmt, il);
  gchar *name = g_strconcat (L->gguf ? "" : L->tower, sub, NULL);
  g_free (sub);
  return name;
}

/* Adds a tensor to the table; @fmt may hold one %d (the layer). */
static void
want (Loader * L, WantKind kind, MmTensor ** dst, gint il, const gchar * fmt,
    gint n_dims, gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  Want wt = { 0 };
  wt.names[0] = tensor_name (L, fmt, il);
  wt.n_parts = 1;
  wt.kind = kind;
  wt.dst = dst;
  wt.n_dims = n_dims;
  gint64 s[4] = { d0, d1, d2, d3 };
  memcpy (wt.shape, s, sizeof (s));
  g_array_append_val (L->want, wt);
}

/* Three tensors of one shape, stacked along dim 0 into one. */
static void
want_stacked (Loader * L, WantKind kind, MmTensor ** dst, gint il,
    const gchar * fa, const gchar * fb, const gchar * fc, gint n_dims,
    gint64 d0, gint64 d1)
{
  want (L, kind, dst, il, fa, n_dims, d0, d1, 0, 0);
  Want *wt = &g_array_index (L->want, Want, L->want->len - 1);
  wt->names[1] = tensor_name (L, fb, il);
  wt->names[2] = tensor_name (L, fc, il);
  wt->n_parts = 3;
}

#define WANT_M(L, dst, il, name, a, b) \
  want (L, W_MATRIX, dst, il, name, 2, a, b, 0, 0)
#define WANT_V(L, dst, il, name, n) \
  want (L, W_VECTOR, dst, il, name, 1, n, 0, 0, 0)

/* The connector's tensors: HF names under the connector prefix. */
static void
want_conn (Loader * L, WantKind kind, MmTensor ** dst, gint il,
    const gchar * fmt, gint n_dims, gint64 d0, gint64 d1)
{
  const gchar *tower = L->tower;
  L->tower = L->conn;
  want (L, kind, dst, il, fmt, n_dims, d0, d1, 0, 0);
  L->tower = tower;
}

static gboolean
has_tensor (Loader * L, const gchar * prefix, const gchar * name)
{
  gchar *full = g_strconcat (L->gguf ? "" : prefix, name, NULL);
  gboolean r = mm_weights_has_tensor (L->w, full);
  g_free (full);
  return r;
}

/* The file holding @name: the GGUF, or the safetensors shard. */
static const gchar *
tensor_file (Loader * L, const gchar * name)
{
  MmHfModel *hf = mm_weights_hf (L->w);
  const gchar *f = hf ? mm_hf_model_tensor_file (hf, name) : NULL;
  return f ? f : L->file;
}

static gboolean
check_all (Loader * L)
{
  for (guint i = 0; i < L->want->len && !L->error; i++) {
    Want *wt = &g_array_index (L->want, Want, i);
    guint accept = MM_DTYPES_FLOAT | MM_DTYPES_QUANT;       /* -> F32 */
    for (gint p = 0; p < wt->n_parts && !L->error; p++) {
      GError *err = NULL;
      wt->infos[p] = mm_weights_get_tensor (L->w, wt->names[p], &err);
      if (wt->infos[p] && !mm_tensor_info_check (wt->infos[p],
              tensor_file (L, wt->names[p]), accept, wt->n_dims, wt->shape,
              &err))
        wt->infos[p] = NULL;
      take_error (L, err);
    }
  }
  return L->error == NULL;
}

/* Stacked parts: raw F16 when all are F16, else F32. */
static MmTensor *
upload_stacked (Loader * L, const Want * wt, GError ** error)
{
  gboolean f16 = wt->kind == W_MATRIX;
  for (gint p = 0; p < wt->n_parts; p++)
    f16 &= wt->infos[p]->dtype == MM_DTYPE_F16;
  gint64 numel = wt->infos[0]->numel;
  gsize part_bytes = (gsize) numel * (f16 ? 2 : sizeof (float));
  guint8 *buf = g_try_malloc (part_bytes * wt->n_parts);
  gboolean ok = buf != NULL;
  for (gint p = 0; ok && p < wt->n_parts; p++) {
    if (f16)
      memcpy (buf + p * part_bytes, wt->infos[p]->data, part_bytes);
    else
      ok = mm_tensor_info_to_f32 (wt->infos[p], L->file,
          (float *) (buf + p * part_bytes), error);
  }
  if (buf == NULL)
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "%s: out of host memory stacking '%s'", L->file, wt->names[0]);
  gint64 shape[MM_MAX_DIMS];
  memcpy (shape, wt->shape, sizeof (shape));
  shape[0] *= wt->n_parts;
  gchar *what = g_strdup_printf ("%s: tensors '%s'...", L->file,
      wt->names[0]);
  MmTensor *t = ok ? mm_tensor_upload (L->engine, f16 ? MM_DTYPE_F16 :
      MM_DTYPE_F32, wt->n_dims, shape, buf, what, error) : NULL;
  g_free (what);
  g_free (buf);
  return t;
}

/* Linear weights go to the GEMM's panel layout once here, so no frame
 * repacks them (the patch embedding stays 4-D: mm_linear views it 2-D). */
static gboolean
pack_all (Loader * L)
{
  for (guint i = 0; i < L->want->len && !L->error; i++) {
    Want *wt = &g_array_index (L->want, Want, i);
    GError *err = NULL;
    if (wt->kind == W_MATRIX && wt->n_dims == 2 && *wt->dst
        && !mm_gemm_pack_weight (L->engine, *wt->dst, &err))
      take_error (L, err);
  }
  return L->error == NULL;
}

static gboolean
upload_all (Loader * L)
{
  for (guint i = 0; i < L->want->len && !L->error; i++) {
    Want *wt = &g_array_index (L->want, Want, i);
    const MmTensorInfo *info = wt->infos[0];
    GError *err = NULL;
    if (wt->kind == W_HOST) {
      *wt->host = g_new (float, info->numel);
      mm_tensor_info_to_f32 (info, L->file, *wt->host, &err);
    } else if (wt->n_parts > 1) {
      *wt->dst = upload_stacked (L, wt, &err);
    } else {
      MmConvert cv = wt->kind == W_MATRIX && (info->dtype == MM_DTYPE_F32
          || info->dtype == MM_DTYPE_F16) ? MM_CONVERT_NONE : MM_CONVERT_F32;
      *wt->dst = mm_tensor_info_upload (info, L->file, L->engine, 0, cv, 0,
          NULL, &err);
    }
    take_error (L, err);
  }
  return L->error == NULL;
}

static void
loader_clear (Loader * L)
{
  for (guint i = 0; L->want && i < L->want->len; i++)
    for (gint p = 0; p < MAX_PARTS; p++)
      g_free (g_array_index (L->want, Want, i).names[p]);
  if (L->want)
    g_array_unref (L->want);
  g_clear_error (&L->error);
}

/* ---- metadata ---- */

static gint64
get_int (Loader * L, const gchar * key, gint64 def, gboolean required)
{
  if (required && !mm_weights_has_key (L->w, key)) {
    fail (L, "missing key '%s'", key);
    return def;
  }
  GError *err = NULL;
  gint64 v = mm_weights_get_int (L->w, key, def, &err);
  take_error (L, err);
  return v;
}

static gdouble
get_float (Loader * L, const gchar * key, gdouble def, gboolean required)
{
  if (required && !mm_weights_has_key (L->w, key)) {
    fail (L, "missing key '%s'", key);
    return def;
  }
  GError *err = NULL;
  gdouble v = mm_weights_get_float (L->w, key, def, &err);
  take_error (L, err);
  return v;
}

static gboolean
get_bool (Loader * L, const gchar * key, gboolean def)
{
  GError *err = NULL;
  gboolean v = mm_weights_get_bool (L->w, key, def, &err);
  take_error (L, err);
  return v;
}

static const gchar *
get_str (Loader * L, const gchar * key, const gchar * def)
{
  GError *err = NULL;
  const gchar *v = mm_weights_get_str (L->w, key, def, &err);
  take_error (L, err);
  return v;
}

/* HF key under the vision config. */
static gint64
vget_int (Loader * L, const gchar * key, gint64 def, gboolean required)
{
  gchar *k = g_strconcat (L->vcfg, key, NULL);
  gint64 v = get_int (L, k, def, required);
  g_free (k);
  return v;
}

static gboolean
parse_act (const gchar * s, MmAct * act)
{
  static const struct
  {
    const gchar *name;
    MmAct act;
  } acts[] = {
    {"gelu", MM_ACT_GELU}, {"gelu_pytorch_tanh", MM_ACT_GELU_TANH},
    {"gelu_new", MM_ACT_GELU_TANH}, {"gelu_fast", MM_ACT_GELU_TANH},
    {"quick_gelu", MM_ACT_QUICK_GELU}, {"silu", MM_ACT_SILU},
    {"swish", MM_ACT_SILU},
  };
  for (guint i = 0; s && i < G_N_ELEMENTS (acts); i++)
    if (g_strcmp0 (s, acts[i].name) == 0) {
      *act = acts[i].act;
      return TRUE;
    }
  return FALSE;
}

static MmAct
hf_act (Loader * L, const gchar * key, const gchar * def)
{
  const gchar *s = get_str (L, key, def);
  MmAct act = MM_ACT_GELU;
  if (!parse_act (s, &act))
    fail (L, "activation '%s' (%s) is not supported", s, key);
  return act;
}

/* "image_mean" etc.: 3 floats from a GGUF array or a JSON array. */
static gboolean
get_floats3 (Loader * L, MmJson * j, const gchar * key, gfloat * v)
{
  if (j) {
    if (mm_json_get_len (j, key) != 3)
      return FALSE;
    for (gint i = 0; i < 3; i++) {
      gchar *k = g_strdup_printf ("%s.%d", key, i);
      GError *err = NULL;
      v[i] = mm_json_get_float (j, k, 0.0, &err);
      g_free (k);
      take_error (L, err);
    }
    return TRUE;
  }
  MmGguf *gg = mm_weights_gguf (L->w);
  MmGgufArray *a = gg ? mm_gguf_get_array (gg, key, MM_GGUF_TYPE_NONE, NULL)
      : NULL;
  if (a == NULL || mm_gguf_array_len (a) < 3)
    return FALSE;
  for (gint i = 0; i < 3; i++)
    v[i] = mm_gguf_array_get_float (a, i);
  return TRUE;
}

static void probe_tower (Loader * L, MmVisionHp * hp);

/* image_processing_minicpmv.py's max_slice_nums default */
#define MINICPMV_MAX_SLICES 9

/* ---- hparams: GGUF ---- */

static void
gguf_hparams (Loader * L, MmVisionHp * hp, MmImagePrepSpec * prep)
{
  hp->d = get_int (L, "clip.vision.embedding_length", 0, TRUE);
  hp->n_ff = get_int (L, "clip.vision.feed_forward_length", 0, TRUE);
  hp->n_layer = get_int (L, "clip.vision.block_count", 0, TRUE);
  hp->n_head = get_int (L, "clip.vision.attention.head_count", 0, TRUE);
  hp->head_dim = get_int (L, "clip.vision.attention.head_dim",
      hp->n_head > 0 ? hp->d / hp->n_head : 0, FALSE);
  hp->eps = get_float (L, "clip.vision.attention.layer_norm_epsilon", 0, TRUE);
  hp->image_size = get_int (L, "clip.vision.image_size", 0, TRUE);
  hp->patch = get_int (L, "clip.vision.patch_size", 0, TRUE);
  if (get_bool (L, "clip.use_gelu", FALSE))
    hp->act = MM_ACT_GELU_TANH; /* ggml_gelu */
  else if (get_bool (L, "clip.use_silu", FALSE))
    hp->act = MM_ACT_SILU;
  else
    hp->act = MM_ACT_QUICK_GELU;
  if (!get_floats3 (L, NULL, "clip.vision.image_mean", prep->mean)
      || !get_floats3 (L, NULL, "clip.vision.image_std", prep->std))
    fail (L, "missing or short 'clip.vision.image_mean' / 'image_std'");

  const gchar *pt = get_str (L, "clip.projector_type", NULL);
  if (pt == NULL)
    pt = get_str (L, "clip.vision.projector_type", NULL);
  if (pt == NULL)
    hp->proj = MM_PROJ_NONE;
  else if (g_str_equal (pt, "mlp"))
    hp->proj = MM_PROJ_MLP;
  else if (g_str_equal (pt, "idefics3"))
    hp->proj = MM_PROJ_IDEFICS3;
  else if (g_str_equal (pt, "resampler"))
    hp->proj = MM_PROJ_MINICPMV;
  else
    fail (L, "projector type '%s' is not supported (mlp, idefics3, "
        "resampler)", pt);

  /* explicit feature layers (hidden_states indices), else every stored
   * block: converters cut the tower at the feature layer */
  MmGguf *gg = mm_weights_gguf (L->w);
  MmGgufArray *fl = mm_gguf_get_array (gg, "clip.vision.feature_layer",
      MM_GGUF_TYPE_NONE, NULL);
  hp->n_feature_layers = 0;
  for (guint64 i = 0; fl && i < mm_gguf_array_len (fl); i++)
    if (hp->n_feature_layers < MM_VISION_MAX_FEATURE_LAYERS)
      hp->feature_layers[hp->n_feature_layers++] =
          mm_gguf_array_get_int (fl, i);
  hp->drop_cls = TRUE;
  hp->mlp_act = MM_ACT_GELU;    /* LLaVA's projector_hidden_act default */
  hp->mlp_bias = TRUE;
  hp->scale_factor = get_int (L, "clip.vision.projector.scale_factor", 0,
      hp->proj == MM_PROJ_IDEFICS3);
  hp->r_queries = get_int (L, "clip.minicpmv_query_num", 0,
      hp->proj == MM_PROJ_MINICPMV);
  hp->r_eps = 1e-6f;            /* resampler.py: LayerNorm(eps=1e-6) */

  /* preprocessing as the HF processor of the family does it */
  prep->do_resize = prep->do_rescale = prep->do_normalize = TRUE;
  prep->rescale_factor = 1.0 / 255.0;
  probe_tower (L, hp);
  gboolean clip_like = hp->has_cls;
  if (hp->proj == MM_PROJ_IDEFICS3) {
    /* SmolVLM's converter writes size.longest_edge as preproc_image_size
     * and max_image_size as image_size; llama.cpp always splits */
    prep->resample = MM_RESAMPLE_LANCZOS;
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_LONGEST_EDGE, 0, 0,
          get_int (L, "clip.vision.preproc_image_size", hp->image_size,
          FALSE), 0};
    prep->split_kind = MM_SPLIT_IDEFICS3;
    prep->tile = hp->image_size;
    prep->do_split = TRUE;
  } else if (hp->proj == MM_PROJ_MINICPMV) {
    /* MiniCPM-V's processor (llama.cpp's llava-uhd slicing): slices and
     * overview of about image_size^2 pixels (scale_resolution), edges
     * multiples of the patch, at most 9 slices (max_slice_nums, which
     * llama.cpp fixes too); Pillow's bicubic */
    prep->resample = MM_RESAMPLE_BICUBIC;
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_FIXED, hp->image_size, hp->image_size, 0, 0};
    prep->split_kind = MM_SPLIT_MINICPMV;
    prep->tile = hp->image_size;
    prep->patch = hp->patch;
    prep->max_slices = MINICPMV_MAX_SLICES;
    prep->do_split = TRUE;
  } else if (clip_like) {
    prep->resample = MM_RESAMPLE_BICUBIC;
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_SHORTEST_EDGE, 0, 0, hp->image_size, 0};
    prep->do_center_crop = TRUE;
    prep->crop_w = prep->crop_h = hp->image_size;
  } else {
    prep->resample = MM_RESAMPLE_BICUBIC;
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_FIXED, hp->image_size, hp->image_size, 0, 0};
  }
}

/* ---- hparams: Hugging Face ---- */

static const gchar *
find_prefix (Loader * L, const gchar * const *prefixes, const gchar * probe)
{
  for (gint i = 0; prefixes[i]; i++) {
    gchar *n = g_strconcat (prefixes[i], probe, NULL);
    gboolean ok = mm_weights_has_tensor (L->w, n);
    g_free (n);
    if (ok)
      return prefixes[i];
  }
  return NULL;
}

static MmJson *
hf_processor_config (Loader * L, const gchar ** root)
{
  gchar *p = g_build_filename (L->file, "preprocessor_config.json", NULL);
  MmJson *j = NULL;
  *root = "";
  if (g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
    GError *err = NULL;
    j = mm_json_new_from_file (p, 1 << 20, &err);
    take_error (L, err);
  } else {
    /* transformers 5 may nest it in processor_config.json */
    g_free (p);
    p = g_build_filename (L->file, "processor_config.json", NULL);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
      GError *err = NULL;
      j = mm_json_new_from_file (p, 1 << 20, &err);
      take_error (L, err);
      *root = "image_processor.";
    }
  }
  g_free (p);
  return j;
}

static gint64
jint (Loader * L, MmJson * j, const gchar * root, const gchar * key,
    gint64 def)
{
  gchar *k = g_strconcat (root, key, NULL);
  GError *err = NULL;
  gint64 v = j ? mm_json_get_int (j, k, def, &err) : def;
  g_free (k);
  take_error (L, err);
  return v;
}

/* @key's value when it is a plain number, else 0. */
static gint
json_number (MmJson * j, const gchar * root, const gchar * key)
{
  gchar *k = g_strconcat (root, key, NULL);
  JsonNode *n = j ? mm_json_lookup (j, k) : NULL;
  g_free (k);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_INT64)
    return 0;
  return json_node_get_int (n);
}

static gboolean
jbool (Loader * L, MmJson * j, const gchar * root, const gchar * key,
    gboolean def)
{
  gchar *k = g_strconcat (root, key, NULL);
  GError *err = NULL;
  gboolean v = j ? mm_json_get_bool (j, k, def, &err) : def;
  g_free (k);
  take_error (L, err);
  return v;
}

/* Processor settings: preprocessor_config.json when the folder has one,
 * else the defaults of the family's processor class. */
static void
hf_prep (Loader * L, const MmVisionHp * hp, const gchar * model_type,
    MmImagePrepSpec * prep)
{
  const gchar *root;
  MmJson *j = hf_processor_config (L, &root);
  gboolean idefics3 = hp->proj == MM_PROJ_IDEFICS3;
  gboolean clip = hp->has_cls;
  /* processor class defaults (transformers' image processors) */
  static const gfloat clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  static const gfloat clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  for (gint c = 0; c < 3; c++) {
    prep->mean[c] = clip ? clip_mean[c] : 0.5f;
    prep->std[c] = clip ? clip_std[c] : 0.5f;
  }
  MmResample def_resample = idefics3 ? MM_RESAMPLE_LANCZOS :
      hp->proj == MM_PROJ_PERCEIVER ? MM_RESAMPLE_BILINEAR :
      MM_RESAMPLE_BICUBIC;
  prep->resample = jint (L, j, root, "resample", def_resample);
  prep->do_resize = jbool (L, j, root, "do_resize", TRUE);
  prep->do_rescale = jbool (L, j, root, "do_rescale", TRUE);
  prep->do_normalize = jbool (L, j, root, "do_normalize", TRUE);
  gchar *k = g_strconcat (root, "rescale_factor", NULL);
  GError *err = NULL;
  prep->rescale_factor = j ? mm_json_get_float (j, k, 1.0 / 255.0, &err) :
      1.0 / 255.0;
  take_error (L, err);
  g_free (k);
  if (j) {
    gchar *km = g_strconcat (root, "image_mean", NULL);
    gchar *ks = g_strconcat (root, "image_std", NULL);
    if (mm_json_has (j, km) && !get_floats3 (L, j, km, prep->mean))
      fail (L, "preprocessor config: image_mean is not 3 numbers");
    if (mm_json_has (j, ks) && !get_floats3 (L, j, ks, prep->std))
      fail (L, "preprocessor config: image_std is not 3 numbers");
    g_free (km);
    g_free (ks);
  }
  gint S = hp->image_size;
  gint height = jint (L, j, root, "size.height", 0);
  gint width = jint (L, j, root, "size.width", 0);
  gint shortest = jint (L, j, root, "size.shortest_edge", 0);
  gint longest = jint (L, j, root, "size.longest_edge", 0);
  /* older processors save "size": 224 and "crop_size": 224 */
  gint size_int = json_number (j, root, "size");
  if (size_int > 0)
    shortest = size_int;
  if (idefics3) {
    /* Idefics3ImageProcessor: longest edge to size.longest_edge; with
     * do_image_splitting tiles of max_image_size + the global image, else
     * a square of max_image_size (class defaults: 4 * 364, 364, split) */
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_LONGEST_EDGE, 0, 0, longest > 0 ? longest : j ? 4 * 364 : S, 0};
    prep->split_kind = MM_SPLIT_IDEFICS3;
    prep->tile = jint (L, j, root, "max_image_size.longest_edge", S);
    prep->do_split = jbool (L, j, root, "do_image_splitting", TRUE);
  } else if (hp->proj == MM_PROJ_PERCEIVER) {
    /* Idefics2ImageProcessor: the longest edge down to size.longest_edge,
     * each edge at least size.shortest_edge (class defaults 980, 378), no
     * padding for one image: views keep their aspect; with
     * do_image_splitting (default off) the quarters first */
    prep->n_steps = 1;
    if (height > 0 && width > 0)
      prep->steps[0] = (MmResizeStep) {
      MM_SIZE_FIXED, width, height, 0, 0};
    else
      prep->steps[0] = (MmResizeStep) {
      MM_SIZE_MIN_MAX_EDGE, 0, 0, longest > 0 ? longest : 980, 0};
    prep->steps[0].min_edge = shortest > 0 ? shortest : 378;
    prep->split_kind = MM_SPLIT_IDEFICS2;
    prep->do_split = jbool (L, j, root, "do_image_splitting", FALSE);
  } else if (height > 0 && width > 0) {
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_FIXED, width, height, 0, 0};
  } else if (shortest > 0 && clip) {
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_SHORTEST_EDGE, 0, 0, shortest, 0};
    prep->do_center_crop = jbool (L, j, root, "do_center_crop", TRUE);
    gint crop_int = json_number (j, root, "crop_size");
    prep->crop_w = jint (L, j, root, "crop_size.width",
        crop_int > 0 ? crop_int : shortest);
    prep->crop_h = jint (L, j, root, "crop_size.height",
        crop_int > 0 ? crop_int : shortest);
  } else {
    /* no processor config: a square of the tower's size */
    prep->n_steps = 1;
    prep->steps[0] = (MmResizeStep) {
    MM_SIZE_FIXED, S, S, 0, 0};
  }
  (void) model_type;
  if (j)
    mm_json_free (j);
}

static void
hf_hparams (Loader * L, MmVisionHp * hp, MmImagePrepSpec * prep)
{
  static const gchar *const tower_prefixes[] = { "", "vision_model.",
    "model.vision_model.", "vision_tower.", "vision_tower.vision_model.",
    "model.vision_tower.", "model.vision_tower.vision_model.", NULL
  };
  const gchar *model_type = get_str (L, "model_type", "");
  L->vcfg = mm_weights_has_key (L->w, "vision_config") ? "vision_config." : "";
  L->tower = find_prefix (L, tower_prefixes,
      "embeddings.patch_embedding.weight");
  if (L->tower == NULL) {
    fail (L, "no vision tower (no '*embeddings.patch_embedding.weight')");
    return;
  }
  hp->d = vget_int (L, "hidden_size", 0, TRUE);
  hp->n_ff = vget_int (L, "intermediate_size", 0, TRUE);
  hp->n_layer = vget_int (L, "num_hidden_layers", 0, TRUE);
  hp->n_head = vget_int (L, "num_attention_heads", 0, TRUE);
  hp->head_dim = hp->n_head > 0 ? hp->d / hp->n_head : 0;
  hp->image_size = vget_int (L, "image_size", 0, TRUE);
  hp->patch = vget_int (L, "patch_size", 0, TRUE);
  if (vget_int (L, "num_channels", 3, FALSE) != 3)
    fail (L, "only 3-channel towers are supported");
  probe_tower (L, hp);
  /* config class defaults: CLIP 1e-5 / quick_gelu, SigLIP-family 1e-6 /
   * gelu_pytorch_tanh */
  gchar *k = g_strconcat (L->vcfg, "layer_norm_eps", NULL);
  hp->eps = get_float (L, k, hp->has_cls ? 1e-5 : 1e-6, FALSE);
  g_free (k);
  k = g_strconcat (L->vcfg, "hidden_act", NULL);
  hp->act = hf_act (L, k, hp->has_cls ? "quick_gelu" : "gelu_pytorch_tanh");
  g_free (k);

  static const gchar *const llava_conn[] = { "multi_modal_projector.",
    "model.multi_modal_projector.", NULL
  };
  static const gchar *const idefics_conn[] = { "model.connector.",
    "connector.", NULL
  };
  if (g_str_equal (model_type, "llava")) {
    hp->proj = MM_PROJ_MLP;
    L->conn = find_prefix (L, llava_conn, "linear_1.weight");
    hp->mlp_act = hf_act (L, "projector_hidden_act", "gelu");
    hp->mlp_bias = get_bool (L, "multimodal_projector_bias", TRUE);
    const gchar *st = get_str (L, "vision_feature_select_strategy",
        "default");
    hp->drop_cls = g_strcmp0 (st, "full") != 0;
    gint64 n = mm_weights_has_key (L->w, "vision_feature_layer.0") ? 0 : -1;
    if (n < 0) {
      hp->feature_layers[0] = get_int (L, "vision_feature_layer", -2, FALSE);
      hp->n_feature_layers = 1;
    } else {
      for (gint i = 0; i < MM_VISION_MAX_FEATURE_LAYERS; i++) {
        gchar *key = g_strdup_printf ("vision_feature_layer.%d", i);
        if (mm_weights_has_key (L->w, key))
          hp->feature_layers[hp->n_feature_layers++] = get_int (L, key, 0,
              TRUE);
        g_free (key);
      }
    }
  } else if (g_str_equal (model_type, "idefics3")
      || g_str_equal (model_type, "smolvlm")) {
    hp->proj = MM_PROJ_IDEFICS3;
    L->conn = find_prefix (L, idefics_conn, "modality_projection.proj.weight");
    hp->scale_factor = get_int (L, "scale_factor", 2, FALSE);
  } else if (g_str_equal (model_type, "idefics2")) {
    hp->proj = MM_PROJ_PERCEIVER;
    L->conn = find_prefix (L, idefics_conn,
        "modality_projection.gate_proj.weight");
    hp->mp_act = hf_act (L, "text_config.hidden_act", "silu");
    hp->p_latents = get_int (L, "perceiver_config.resampler_n_latents", 64,
        FALSE);
    hp->p_depth = get_int (L, "perceiver_config.resampler_depth", 3, FALSE);
    hp->p_n_head = get_int (L, "perceiver_config.resampler_n_heads", 16,
        FALSE);
    hp->p_head_dim = get_int (L, "perceiver_config.resampler_head_dim", 96,
        FALSE);
    hp->p_n_kv_head = get_int (L, "perceiver_config.num_key_value_heads", 4,
        FALSE);
    hp->p_eps = get_float (L, "perceiver_config.rms_norm_eps", 1e-6, FALSE);
    hp->p_act = hf_act (L, "perceiver_config.hidden_act", "silu");
  } else if (!g_str_has_suffix (model_type, "vision_model")
      && !g_str_equal (model_type, "siglip") && !g_str_equal (model_type,
          "clip")) {
    fail (L, "model_type '%s' is not a supported vision model (SigLIP / CLIP "
        "towers, llava, idefics2, idefics3, smolvlm)", model_type);
  }
  if (hp->proj != MM_PROJ_NONE && L->conn == NULL)
    fail (L, "no connector tensors for model_type '%s'", model_type);
  hf_prep (L, hp, model_type, prep);
}

/* ---- derived hparams ---- */

/* Feature layers, executed blocks, post-LN, input size, tokens out. */
static void
finish_hparams (Loader * L, MmVisionHp * hp, MmImagePrepSpec * prep,
    const MmVisionOptions * opts)
{
  if (L->error)
    return;
  if (hp->d <= 0 || hp->n_head <= 0 || hp->head_dim <= 0 || hp->n_ff <= 0
      || hp->n_layer <= 0 || hp->patch <= 0 || hp->image_size < hp->patch
      || hp->n_head * hp->head_dim != hp->d || hp->n_layer > 1024
      || hp->d > 65536 || hp->image_size > 16384 || !(hp->eps > 0)) {
    fail (L, "implausible vision hparams (d %d, heads %d x %d, ff %d, "
        "layers %d, patch %d, image %d, eps %g)", hp->d, hp->n_head,
        hp->head_dim, hp->n_ff, hp->n_layer, hp->patch, hp->image_size,
        hp->eps);
    return;
  }
  if (opts && opts->set_feature_layer) {
    hp->feature_layers[0] = opts->feature_layer;
    hp->n_feature_layers = 1;
  }
  if (hp->n_feature_layers == 0) {
    hp->feature_layers[0] = hp->n_layer;
    hp->n_feature_layers = 1;
  }
  hp->n_run = 0;
  for (gint i = 0; i < hp->n_feature_layers; i++) {
    gint f = hp->feature_layers[i];
    if (f < 0)
      f += hp->n_layer + 1;     /* HF: hidden_states[-k] */
    if (f < 0 || f > hp->n_layer) {
      fail (L, "feature layer %d outside the %d blocks of the tower",
          hp->feature_layers[i], hp->n_layer);
      return;
    }
    hp->feature_layers[i] = f;
    hp->n_run = MAX (hp->n_run, f);
  }
  /* SigLIP's last_hidden_state (and the Idefics / MiniCPM-V connectors'
   * input) is post-LN'd; CLIP applies it to the pooled CLS only, LLaVA
   * reads raw hidden_states */
  hp->apply_post_ln = hp->has_post_ln && !hp->has_cls
      && hp->proj != MM_PROJ_MLP && hp->n_feature_layers == 1
      && hp->feature_layers[0] == hp->n_layer;
  if (!hp->has_cls)
    hp->drop_cls = FALSE;

  if (prep->split_kind != MM_SPLIT_NONE && opts
      && opts->split != MM_VISION_SPLIT_DEFAULT)
    prep->do_split = opts->split == MM_VISION_SPLIT_ON;
  prep->max_tiles = opts ? MAX (opts->max_tiles, 0) : 0;
  if (opts && opts->image_size > 0 && hp->proj != MM_PROJ_PERCEIVER) {
    /* scale the processor to the asked resolution */
    gint S = opts->image_size;
    for (gint i = 0; i < prep->n_steps; i++)
      if (prep->steps[i].rule == MM_SIZE_FIXED)
        prep->steps[i].w = prep->steps[i].h = S;
      else
        prep->steps[i].edge = S;
    prep->crop_w = prep->crop_h = S;
    prep->tile = S;
  }
  gint ow = hp->image_size, oh = hp->image_size;
  if (prep->split_kind == MM_SPLIT_IDEFICS3)
    ow = oh = prep->tile;
  else if (prep->n_steps > 0)
    mm_image_prep_step_size (&prep->steps[prep->n_steps - 1], 1000, 1000, &ow,
        &oh);
  if (prep->do_center_crop)
    ow = prep->crop_w, oh = prep->crop_h;
  if (hp->proj == MM_PROJ_PERCEIVER) {
    /* bucketed positions: views of any size (at least one patch) */
    prep->out_w = prep->out_h = 0;
  } else if (prep->split_kind == MM_SPLIT_MINICPMV) {
    /* bucketed positions, resampler positions per view: views of any
     * size; the scale resolution is the model's size */
    hp->image_size = prep->tile;
    prep->out_w = prep->out_h = 0;
  } else if (ow != oh || ow < hp->patch) {
    fail (L, "processor output %dx%d: only square inputs are supported", ow,
        oh);
    return;
  } else {
    hp->image_size = ow;
    prep->out_w = prep->out_h = ow;
  }

  gint g = hp->image_size / hp->patch, n_patch = g * g;
  gint n_tok = n_patch + (hp->has_cls ? 1 : 0);
  switch (hp->proj) {
    case MM_PROJ_NONE:
      hp->n_tokens = n_tok;
      hp->out_dim = hp->d;
      break;
    case MM_PROJ_MLP:
      hp->n_tokens = hp->drop_cls ? n_patch : n_tok;
      break;
    case MM_PROJ_IDEFICS3:
      if (hp->scale_factor <= 0 || g % hp->scale_factor != 0)
        fail (L, "pixel shuffle: a %dx%d patch grid is not divisible by the "
            "scale factor %d", g, g, hp->scale_factor);
      else
        hp->n_tokens = n_patch / (hp->scale_factor * hp->scale_factor);
      break;
    case MM_PROJ_PERCEIVER:
      hp->n_tokens = hp->p_latents;
      break;
    case MM_PROJ_MINICPMV:
      hp->n_tokens = hp->r_queries;
      break;
  }
}

/* ---- position tables ---- */

/* torch's cubic convolution weights, A = -0.75 */
static void
cubic_weights (double t, double w[4])
{
  const double A = -0.75;
  double x;
  x = t + 1.0;
  w[0] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
  x = t;
  w[1] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
  x = 1.0 - t;
  w[2] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
  x = 2.0 - t;
  w[3] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
}

/* nn.functional.interpolate(mode="bicubic", align_corners=False) of a
 * [gi, gi, d] grid to [go, go, d], out of range taps clamped. */
static void
interp_bicubic (const float *src, gint gi, gint go, gint d, float *dst)
{
  double scale = (double) gi / go;
  gint *idx = g_new (gint, go * 4);
  double *wt = g_new (double, go * 4);
  for (gint o = 0; o < go; o++) {
    double real = scale * (o + 0.5) - 0.5;
    double fl = floor (real);
    cubic_weights (real - fl, wt + 4 * o);
    for (gint k = 0; k < 4; k++)
      idx[4 * o + k] = CLAMP ((gint) fl - 1 + k, 0, gi - 1);
  }
  for (gint oy = 0; oy < go; oy++)
    for (gint ox = 0; ox < go; ox++)
      for (gint c = 0; c < d; c++) {
        double acc = 0.0;
        for (gint ky = 0; ky < 4; ky++) {
          double row = 0.0;
          for (gint kx = 0; kx < 4; kx++)
            row += wt[4 * ox + kx] * src[((gsize) idx[4 * oy + ky] * gi
                    + idx[4 * ox + kx]) * d + c];
          acc += wt[4 * oy + ky] * row;
        }
        dst[((gsize) oy * go + ox) * d + c] = acc;
      }
  g_free (idx);
  g_free (wt);
}

/* Idefics2/3 (and MiniCPM-V's NaViT SigLIP) position ids of @go patches on
 * a @gi-wide table: torch.bucketize (right=True) of the float32
 * fractional coordinates i * (1 / go), clamped below 1 - 1e-6, against
 * the boundaries torch.arange (1 / gi, 1, 1 / gi) (computed in double,
 * stored as float32), as modeling_idefics3.py does. */
void
mm_vision_bucket_ids (gint gi, gint go, gint * ids)
{
  double step_b = 1.0 / gi;
  gint nb = (gint) ceil ((1.0 - step_b) / step_b);
  float *bounds = g_new (float, MAX (nb, 1));
  for (gint k = 0; k < nb; k++)
    bounds[k] = (float) (step_b + k * step_b);
  float step = 1.0f / (float) go;
  for (gint i = 0; i < go; i++) {
    float frac = MIN ((float) i * step, (float) (1.0 - 1e-6));
    gint b = 0;
    while (b < nb && bounds[b] <= frac)
      b++;
    ids[i] = b;
  }
  g_free (bounds);
}

/* The position table for the input grid, [n_tok, d] (CLS row first). */
static float *
position_table (const MmVisionHp * hp, const float *trained, GError ** error)
{
  gint cls = hp->has_cls ? 1 : 0, d = hp->d;
  gint n_grid = hp->n_pos_trained - cls;
  gint gi = (gint) lround (sqrt (n_grid)), go = hp->image_size / hp->patch;
  gsize n_out = (gsize) go * go + cls;
  if (gi * gi != n_grid) {
    g_set_error (error, MM_FORMAT_ERROR, MM_FORMAT_ERROR_MISMATCH,
        "position embeddings: %d rows are not a square grid%s",
        hp->n_pos_trained, cls ? " plus a class token" : "");
    return NULL;
  }
  float *out = g_new (float, n_out * d);
  memcpy (out, trained, (gsize) cls * d * sizeof (float));
  if (gi == go) {
    memcpy (out, trained, n_out * d * sizeof (float));
  } else if (hp->pos_mode == MM_POS_INTERPOLATE) {
    interp_bicubic (trained + cls * d, gi, go, d, out + cls * d);
  } else {
    gint *ids = g_new (gint, go);
    mm_vision_bucket_ids (gi, go, ids);
    for (gint y = 0; y < go; y++)
      for (gint x = 0; x < go; x++)
        memcpy (out + ((gsize) cls + y * go + x) * d,
            trained + ((gsize) cls + ids[y] * gi + ids[x]) * d,
            d * sizeof (float));
    g_free (ids);
  }
  return out;
}

/* MiniCPM-V resampler.py get_2d_sincos_pos_embed for a @gh x @gw grid:
 * [gh * gw, D] row-major over (row, column); the first D/2 channels follow
 * the column, the last D/2 the row; float32 as numpy computes it. */
float *
mm_vision_sincos_2d (gint gh, gint gw, gint D)
{
  gint half = D / 2, quarter = D / 4;
  float *omega = g_new (float, quarter);
  for (gint i = 0; i < quarter; i++)
    omega[i] = 1.0f / powf (10000.0f, (float) i / (float) (half / 2.0));
  float *out = g_new (float, (gsize) gh * gw * D);
  for (gint y = 0; y < gh; y++)
    for (gint x = 0; x < gw; x++) {
      float *row = out + ((gsize) y * gw + x) * D;
      for (gint i = 0; i < quarter; i++) {
        float ax = (float) x * omega[i], ay = (float) y * omega[i];
        row[i] = sinf (ax);
        row[quarter + i] = cosf (ax);
        row[half + i] = sinf (ay);
        row[half + quarter + i] = cosf (ay);
      }
    }
  g_free (omega);
  return out;
}

/* ---- tensor tables ---- */

typedef struct
{
  const gchar *patch_w, *patch_b, *pos, *cls, *pre_ln_w, *pre_ln_b;
  const gchar *post_ln_w, *post_ln_b, *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b;
  const gchar *v_w, *v_b, *o_w, *o_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b;
  const gchar *fc2_w, *fc2_b;
} TowerNames;

static const TowerNames gguf_names = {
  "v.patch_embd.weight", "v.patch_embd.bias", "v.position_embd.weight",
  "v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias", "v.post_ln.weight",
  "v.post_ln.bias", "v.blk.%d.ln1.weight", "v.blk.%d.ln1.bias",
  "v.blk.%d.attn_q.weight", "v.blk.%d.attn_q.bias", "v.blk.%d.attn_k.weight",
  "v.blk.%d.attn_k.bias", "v.blk.%d.attn_v.weight", "v.blk.%d.attn_v.bias",
  "v.blk.%d.attn_out.weight", "v.blk.%d.attn_out.bias", "v.blk.%d.ln2.weight",
  "v.blk.%d.ln2.bias", "v.blk.%d.ffn_up.weight", "v.blk.%d.ffn_up.bias",
  "v.blk.%d.ffn_down.weight", "v.blk.%d.ffn_down.bias",
};

/* Legacy converters (LLaVA surgery, MiniCPM-V) name fc1 ffn_down. */
static const TowerNames gguf_names_swapped = {
  "v.patch_embd.weight", "v.patch_embd.bias", "v.position_embd.weight",
  "v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias", "v.post_ln.weight",
  "v.post_ln.bias", "v.blk.%d.ln1.weight", "v.blk.%d.ln1.bias",
  "v.blk.%d.attn_q.weight", "v.blk.%d.attn_q.bias", "v.blk.%d.attn_k.weight",
  "v.blk.%d.attn_k.bias", "v.blk.%d.attn_v.weight", "v.blk.%d.attn_v.bias",
  "v.blk.%d.attn_out.weight", "v.blk.%d.attn_out.bias", "v.blk.%d.ln2.weight",
  "v.blk.%d.ln2.bias", "v.blk.%d.ffn_down.weight", "v.blk.%d.ffn_down.bias",
  "v.blk.%d.ffn_up.weight", "v.blk.%d.ffn_up.bias",
};

static const TowerNames hf_names = {
  "embeddings.patch_embedding.weight", "embeddings.patch_embedding.bias",
  "embeddings.position_embedding.weight", "embeddings.class_embedding",
  "pre_layrnorm.weight", "pre_layrnorm.bias", "post_layernorm.weight",
  "post_layernorm.bias", "encoder.layers.%d.layer_norm1.weight",
  "encoder.layers.%d.layer_norm1.bias",
  "encoder.layers.%d.self_attn.q_proj.weight",
  "encoder.layers.%d.self_attn.q_proj.bias",
  "encoder.layers.%d.self_attn.k_proj.weight",
  "encoder.layers.%d.self_attn.k_proj.bias",
  "encoder.layers.%d.self_attn.v_proj.weight",
  "encoder.layers.%d.self_attn.v_proj.bias",
  "encoder.layers.%d.self_attn.out_proj.weight",
  "encoder.layers.%d.self_attn.out_proj.bias",
  "encoder.layers.%d.layer_norm2.weight",
  "encoder.layers.%d.layer_norm2.bias",
  "encoder.layers.%d.mlp.fc1.weight", "encoder.layers.%d.mlp.fc1.bias",
  "encoder.layers.%d.mlp.fc2.weight", "encoder.layers.%d.mlp.fc2.bias",
};

/* clip.cpp's test: fc1 stored as ffn_down when ffn_down takes n_embd in. */
static gboolean
gguf_ffn_swapped (Loader * L, const MmVisionHp * hp)
{
  const MmTensorInfo *t = NULL;
  if (mm_weights_has_tensor (L->w, "v.blk.0.ffn_down.weight"))
    t = mm_weights_get_tensor (L->w, "v.blk.0.ffn_down.weight", NULL);
  return t && t->n_dims == 2 && t->shape[1] == hp->d && t->shape[0] == hp->n_ff
      && hp->n_ff != hp->d;
}

static const TowerNames *
tower_names (Loader * L, const MmVisionHp * hp)
{
  return !L->gguf ? &hf_names : gguf_ffn_swapped (L, hp) ?
      &gguf_names_swapped : &gguf_names;
}

/* Which optional parts the tower has, and its trained position grid. */
static void
probe_tower (Loader * L, MmVisionHp * hp)
{
  const TowerNames *N = tower_names (L, hp);
  hp->has_patch_bias = has_tensor (L, L->tower, N->patch_b);
  hp->has_pre_ln = has_tensor (L, L->tower, N->pre_ln_w);
  hp->has_post_ln = has_tensor (L, L->tower, N->post_ln_w);
  hp->has_cls = has_tensor (L, L->tower, N->cls);
  gchar *n = g_strconcat (L->gguf ? "" : L->tower, N->pos, NULL);
  GError *err = NULL;
  const MmTensorInfo *pi = mm_weights_get_tensor (L->w, n, &err);
  take_error (L, err);
  g_free (n);
  hp->n_pos_trained = pi && pi->n_dims == 2 ? pi->shape[0] : 0;
}

static void
want_tower (Loader * L, MmVisionHp * hp, MmVisionWeights * w,
    float **pos_host)
{
  const TowerNames *N = tower_names (L, hp);
  gint64 d = hp->d, ff = hp->n_ff, p = hp->patch;
  hp->pos_mode = hp->proj == MM_PROJ_IDEFICS3 || hp->proj == MM_PROJ_PERCEIVER
      || hp->proj == MM_PROJ_MINICPMV ? MM_POS_BUCKET : MM_POS_INTERPOLATE;

  want (L, W_MATRIX, &w->patch_w, 0, N->patch_w, 4, d, 3, p, p);
  if (hp->has_patch_bias)
    WANT_V (L, &w->patch_b, 0, N->patch_b, d);
  if (hp->has_cls)
    WANT_V (L, &w->cls, 0, N->cls, d);
  want (L, W_HOST, NULL, 0, N->pos, 2, MAX (hp->n_pos_trained, 1), d, 0, 0);
  g_array_index (L->want, Want, L->want->len - 1).host = pos_host;
  if (hp->has_pre_ln) {
    WANT_V (L, &w->pre_ln_w, 0, N->pre_ln_w, d);
    WANT_V (L, &w->pre_ln_b, 0, N->pre_ln_b, d);
  }
  if (hp->has_post_ln) {
    WANT_V (L, &w->post_ln_w, 0, N->post_ln_w, d);
    WANT_V (L, &w->post_ln_b, 0, N->post_ln_b, d);
  }
  w->layers = g_new0 (MmVitLayer, hp->n_layer);
  for (gint i = 0; i < hp->n_run; i++) {
    MmVitLayer *l = &w->layers[i];
    WANT_V (L, &l->ln1_w, i, N->ln1_w, d);
    WANT_V (L, &l->ln1_b, i, N->ln1_b, d);
    /* one [3d, d] projection: Q, K, V rows stacked */
    want_stacked (L, W_MATRIX, &l->qkv_w, i, N->q_w, N->k_w, N->v_w, 2, d, d);
    want_stacked (L, W_VECTOR, &l->qkv_b, i, N->q_b, N->k_b, N->v_b, 1, d, 0);
    WANT_M (L, &l->o_w, i, N->o_w, d, d);
    WANT_V (L, &l->o_b, i, N->o_b, d);
    WANT_V (L, &l->ln2_w, i, N->ln2_w, d);
    WANT_V (L, &l->ln2_b, i, N->ln2_b, d);
    WANT_M (L, &l->fc1_w, i, N->fc1_w, ff, d);
    WANT_V (L, &l->fc1_b, i, N->fc1_b, ff);
    WANT_M (L, &l->fc2_w, i, N->fc2_w, d, ff);
    WANT_V (L, &l->fc2_b, i, N->fc2_b, d);
  }
}

/* The output dim of a connector matrix, read from the file (the LLM's
 * hidden size is not a key of mmproj files). */
static gint64
rows_of (Loader * L, const gchar * prefix, const gchar * name)
{
  gchar *n = g_strconcat (L->gguf ? "" : prefix, name, NULL);
  const MmTensorInfo *t = mm_weights_has_tensor (L->w, n) ?
      mm_weights_get_tensor (L->w, n, NULL) : NULL;
  g_free (n);
  return t && t->n_dims == 2 ? t->shape[0] : 0;
}

/* LLaVA: linear_1 (mm.0), act, linear_2 (mm.2). */
static void
want_mlp (Loader * L, MmVisionHp * hp, MmVisionWeights * w)
{
  gint64 in = (gint64) hp->d * hp->n_feature_layers;
  const gchar *n0w = L->gguf ? "mm.0.weight" : "linear_1.weight";
  const gchar *n0b = L->gguf ? "mm.0.bias" : "linear_1.bias";
  const gchar *n2w = L->gguf ? "mm.2.weight" : "linear_2.weight";
  const gchar *n2b = L->gguf ? "mm.2.bias" : "linear_2.bias";
  gint64 h = rows_of (L, L->conn, n0w);
  hp->out_dim = rows_of (L, L->conn, n2w);
  want_conn (L, W_MATRIX, &w->mm0_w, 0, n0w, 2, h, in);
  want_conn (L, W_MATRIX, &w->mm2_w, 0, n2w, 2, hp->out_dim, h);
  if (hp->mlp_bias) {
    want_conn (L, W_VECTOR, &w->mm0_b, 0, n0b, 1, h, 0);
    want_conn (L, W_VECTOR, &w->mm2_b, 0, n2b, 1, hp->out_dim, 0);
  }
}

/* Idefics3: one projection of the shuffled s^2 d features. */
static void
want_idefics3 (Loader * L, MmVisionHp * hp, MmVisionWeights * w)
{
  const gchar *n = L->gguf ? "mm.model.fc.weight" :
      "modality_projection.proj.weight";
  hp->out_dim = rows_of (L, L->conn, n);
  want_conn (L, W_MATRIX, &w->fc_w, 0, n, 2, hp->out_dim,
      (gint64) hp->d * hp->scale_factor * hp->scale_factor);
}

/* Idefics2: modality projection (gated MLP) + Perceiver resampler. */
static void
want_perceiver (Loader * L, MmVisionHp * hp, MmVisionWeights * w)
{
  gint64 d = hp->d;
  gint64 pd = rows_of (L, L->conn, "modality_projection.down_proj.weight");
  hp->mp_ff = rows_of (L, L->conn, "modality_projection.gate_proj.weight");
  hp->p_ff = rows_of (L, L->conn,
      "perceiver_resampler.layers.0.mlp.gate_proj.weight");
  hp->out_dim = pd;
  gint64 qd = (gint64) hp->p_n_head * hp->p_head_dim;
  gint64 kvd = (gint64) hp->p_n_kv_head * hp->p_head_dim;
  if (hp->p_n_kv_head <= 0 || hp->p_n_head % hp->p_n_kv_head != 0)
    fail (L, "perceiver: %d heads do not group into %d kv heads",
        hp->p_n_head, hp->p_n_kv_head);
  want_conn (L, W_MATRIX, &w->mp_gate_w, 0,
      "modality_projection.gate_proj.weight", 2, hp->mp_ff, d);
  want_conn (L, W_MATRIX, &w->mp_up_w, 0,
      "modality_projection.up_proj.weight", 2, hp->mp_ff, d);
  want_conn (L, W_MATRIX, &w->mp_down_w, 0,
      "modality_projection.down_proj.weight", 2, pd, hp->mp_ff);
  want_conn (L, W_VECTOR, &w->latents, 0, "perceiver_resampler.latents", 2,
      hp->p_latents, pd);
  want_conn (L, W_VECTOR, &w->p_norm, 0, "perceiver_resampler.norm.weight",
      1, pd, 0);
  w->p_layers = g_new0 (MmPerceiverLayer, MAX (hp->p_depth, 1));
  for (gint i = 0; i < hp->p_depth; i++) {
    MmPerceiverLayer *l = &w->p_layers[i];
    struct
    {
      MmTensor **t;
      const gchar *name;
      WantKind kind;
      gint n_dims;
      gint64 d0, d1;
    } t[] = {
      {&l->latents_norm, "input_latents_norm.weight", W_VECTOR, 1, pd, 0},
      {&l->context_norm, "input_context_norm.weight", W_VECTOR, 1, pd, 0},
      {&l->q_w, "self_attn.q_proj.weight", W_MATRIX, 2, qd, pd},
      {&l->k_w, "self_attn.k_proj.weight", W_MATRIX, 2, kvd, pd},
      {&l->v_w, "self_attn.v_proj.weight", W_MATRIX, 2, kvd, pd},
      {&l->o_w, "self_attn.o_proj.weight", W_MATRIX, 2, pd, qd},
      {&l->post_norm, "post_attention_layernorm.weight", W_VECTOR, 1, pd, 0},
      {&l->gate_w, "mlp.gate_proj.weight", W_MATRIX, 2, hp->p_ff, pd},
      {&l->up_w, "mlp.up_proj.weight", W_MATRIX, 2, hp->p_ff, pd},
      {&l->down_w, "mlp.down_proj.weight", W_MATRIX, 2, pd, hp->p_ff},
    };
    for (guint j = 0; j < G_N_ELEMENTS (t); j++) {
      gchar *fmt = g_strconcat ("perceiver_resampler.layers.%d.", t[j].name,
          NULL);
      want_conn (L, t[j].kind, t[j].t, i, fmt, t[j].n_dims, t[j].d0, t[j].d1);
      g_free (fmt);
    }
  }
}

/* MiniCPM-V resampler.py: kv_proj is an identity when kv_dim == embed_dim;
 * heads of 128 (num_heads = embed_dim // 128, as clip.cpp). */
static void
want_minicpmv (Loader * L, MmVisionHp * hp, MmVisionWeights * w)
{
  gint64 d = hp->d, D = rows_of (L, "", "resampler.attn.q.weight");
  hp->r_dim = D;
  hp->r_kv_dim = d;
  hp->r_has_kv_proj = has_tensor (L, "", "resampler.kv.weight");
  hp->r_n_head = D >= 128 ? D / 128 : 1;
  hp->out_dim = rows_of (L, "", "resampler.proj.weight");
  if (!hp->r_has_kv_proj && D != d)
    fail (L, "resampler: no resampler.kv.weight although the tower width %"
        G_GINT64_FORMAT " differs from %" G_GINT64_FORMAT, d, D);
  if (D % hp->r_n_head != 0)
    fail (L, "resampler: width %" G_GINT64_FORMAT " is not a multiple of "
        "128", D);
  want (L, W_VECTOR, &w->r_query, 0, "resampler.query", 2, hp->r_queries, D,
      0, 0);
  if (hp->r_has_kv_proj)
    WANT_M (L, &w->r_kv_w, 0, "resampler.kv.weight", D, d);
  WANT_M (L, &w->r_q_w, 0, "resampler.attn.q.weight", D, D);
  WANT_V (L, &w->r_q_b, 0, "resampler.attn.q.bias", D);
  WANT_M (L, &w->r_k_w, 0, "resampler.attn.k.weight", D, D);
  WANT_V (L, &w->r_k_b, 0, "resampler.attn.k.bias", D);
  WANT_M (L, &w->r_v_w, 0, "resampler.attn.v.weight", D, D);
  WANT_V (L, &w->r_v_b, 0, "resampler.attn.v.bias", D);
  WANT_M (L, &w->r_o_w, 0, "resampler.attn.out.weight", D, D);
  WANT_V (L, &w->r_o_b, 0, "resampler.attn.out.bias", D);
  WANT_V (L, &w->r_ln_q_w, 0, "resampler.ln_q.weight", D);
  WANT_V (L, &w->r_ln_q_b, 0, "resampler.ln_q.bias", D);
  WANT_V (L, &w->r_ln_kv_w, 0, "resampler.ln_kv.weight", D);
  WANT_V (L, &w->r_ln_kv_b, 0, "resampler.ln_kv.bias", D);
  WANT_V (L, &w->r_ln_post_w, 0, "resampler.ln_post.weight", D);
  WANT_V (L, &w->r_ln_post_b, 0, "resampler.ln_post.bias", D);
  WANT_M (L, &w->r_proj_w, 0, "resampler.proj.weight", hp->out_dim, D);
}

static void
want_connector (Loader * L, MmVisionHp * hp, MmVisionWeights * w)
{
  switch (hp->proj) {
    case MM_PROJ_NONE:
      break;
    case MM_PROJ_MLP:
      want_mlp (L, hp, w);
      break;
    case MM_PROJ_IDEFICS3:
      want_idefics3 (L, hp, w);
      break;
    case MM_PROJ_PERCEIVER:
      want_perceiver (L, hp, w);
      break;
    case MM_PROJ_MINICPMV:
      want_minicpmv (L, hp, w);
      break;
  }
  if (hp->proj != MM_PROJ_NONE && hp->out_dim <= 0)
    fail (L, "cannot tell the connector's output size");
}

void
mm_vision_weights_clear (MmVisionWeights * w, const MmVisionHp * hp)
{
  MmTensor **top[] = { &w->patch_w, &w->patch_b, &w->cls, &w->pos,
    &w->pre_ln_w, &w->pre_ln_b, &w->post_ln_w, &w->post_ln_b, &w->mm0_w,
    &w->mm0_b, &w->mm2_w, &w->mm2_b, &w->fc_w, &w->mp_gate_w, &w->mp_up_w,
    &w->mp_down_w, &w->latents, &w->p_norm, &w->r_query, &w->r_kv_w,
    &w->r_q_w, &w->r_q_b, &w->r_k_w, &w->r_k_b, &w->r_v_w, &w->r_v_b,
    &w->r_o_w, &w->r_o_b, &w->r_ln_q_w, &w->r_ln_q_b, &w->r_ln_kv_w,
    &w->r_ln_kv_b, &w->r_ln_post_w, &w->r_ln_post_b, &w->r_proj_w, &w->r_pos,
    &w->pos_trained
  };
  for (guint i = 0; i < G_N_ELEMENTS (top); i++)
    g_clear_pointer (top[i], mm_tensor_free);
  for (gint i = 0; w->layers && i < hp->n_layer; i++) {
    MmTensor **t = (MmTensor **) & w->layers[i];
    for (guint j = 0; j < sizeof (MmVitLayer) / sizeof (MmTensor *); j++)
      g_clear_pointer (&t[j], mm_tensor_free);
  }
  g_clear_pointer (&w->layers, g_free);
  for (gint i = 0; w->p_layers && i < hp->p_depth; i++) {
    MmTensor **t = (MmTensor **) & w->p_layers[i];
    for (guint j = 0; j < sizeof (MmPerceiverLayer) / sizeof (MmTensor *); j++)
      g_clear_pointer (&t[j], mm_tensor_free);
  }
  g_clear_pointer (&w->p_layers, g_free);
}

static gchar *
kind_name (const MmVisionHp * hp)
{
  static const gchar *proj[] = { "", "+mlp", "+idefics3", "+perceiver",
    "+resampler"
  };
  return g_strconcat (hp->has_cls ? "clip" : "siglip", proj[hp->proj], NULL);
}

gboolean
mm_vision_load_file (MmEngine * engine, const gchar * path,
    const MmVisionOptions * opts, MmVisionLoaded * out, GError ** error)
{
  memset (out, 0, sizeof (*out));
  MmWeights *w = mm_weights_open (path, error);
  if (w == NULL)
    return FALSE;
  Loader L = { 0 };
  L.w = w;
  L.file = mm_weights_path (w);
  L.engine = engine;
  L.gguf = mm_weights_kind (w) == MM_WEIGHTS_GGUF;
  L.tower = L.conn = L.vcfg = "";
  L.want = g_array_new (FALSE, TRUE, sizeof (Want));
  MmVisionHp *hp = &out->hp;
  MmImagePrepSpec *prep = &out->prep;
  float *pos_trained = NULL, *r_pos = NULL;

  if (L.gguf)
    gguf_hparams (&L, hp, prep);
  else
    hf_hparams (&L, hp, prep);
  finish_hparams (&L, hp, prep, opts);
  if (!L.error) {
    want_tower (&L, hp, &out->w, &pos_trained);
    want_connector (&L, hp, &out->w);
  }
  if (check_all (&L) && upload_all (&L) && pack_all (&L)) {
    GError *err = NULL;
    gint g = hp->image_size / hp->patch;
    gint64 s[2] = { (gint64) g * g + (hp->has_cls ? 1 : 0), hp->d };
    float *pos = position_table (hp, pos_trained, &err);
    if (pos)
      out->w.pos = mm_tensor_upload (engine, MM_DTYPE_F32, 2, s, pos,
          "position embeddings", &err);
    g_free (pos);
    if (prep->out_w == 0 && out->w.pos) {
      /* views of any size: positions looked up per grid */
      gint64 ts[2] = { hp->n_pos_trained, hp->d };
      out->w.pos_trained = mm_tensor_upload (engine, MM_DTYPE_F32, 2, ts,
          pos_trained, "position embeddings", &err);
    }
    if (hp->proj == MM_PROJ_MINICPMV && out->w.pos) {
      gint64 rs[2] = { (gint64) g * g, hp->r_dim };
      r_pos = mm_vision_sincos_2d (g, g, hp->r_dim);
      out->w.r_pos = mm_tensor_upload (engine, MM_DTYPE_F32, 2, rs, r_pos,
          "resampler position embeddings", &err);
    }
    take_error (&L, err);
  }
  g_free (pos_trained);
  g_free (r_pos);
  gboolean ok = L.error == NULL;
  if (!ok) {
    g_propagate_error (error, L.error);
    L.error = NULL;
    mm_vision_weights_clear (&out->w, hp);
  } else {
    out->kind = kind_name (hp);
  }
  loader_clear (&L);
  mm_weights_free (w);
  return ok;
}
