/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LLM hparams and tensors from GGUF (llama.cpp names) or HF folders. */
#include "mm-llm-load.h"
#include "mm-gguf.h"
#include "mm-safetensors.h"

#include <string.h>

struct _MmLlmSource
{
  gchar *path;
  MmGguf *gguf;
  MmHfModel *hf;
  gchar *arch;                  /* GGUF general.architecture / HF model_type */
  gboolean neox;
  /* HF multimodal folders (Idefics3, LLaVA) nest the text model: the
   * prefix of its tensors, of lm_head, and of its config keys */
  gchar *hf_prefix, *hf_head, *cfg;
};

/* Finds where an HF folder keeps the decoder (plain CausalLM or the text
 * model of a VLM). */
static gboolean
hf_locate (MmLlmSource * src, GError ** error)
{
  static const gchar *prefixes[] = { "model.", "model.text_model.",
    "model.language_model.", "language_model.model."
  };
  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++) {
    gchar *n = g_strconcat (prefixes[i], "embed_tokens.weight", NULL);
    gboolean found = mm_hf_model_find_tensor (src->hf, n) != NULL;
    g_free (n);
    if (found) {
      src->hf_prefix = g_strdup (prefixes[i]);
      src->hf_head = g_strdup (g_str_has_prefix (prefixes[i], "language_model")
          ? "language_model.lm_head.weight" : "lm_head.weight");
      src->cfg = g_strdup (mm_json_has (mm_hf_model_config (src->hf),
              "text_config") ? "text_config." : "");
      return TRUE;
    }
  }
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
      "%s: no decoder embedding (embed_tokens.weight) found: not a "
      "Llama-family model folder", src->path);
  return FALSE;
}

MmLlmSource *
mm_llm_source_open (const gchar * path, GError ** error)
{
  MmLlmSource *src = g_new0 (MmLlmSource, 1);
  src->path = g_strdup (path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    src->hf = mm_hf_model_open (path, error);
    if (src->hf == NULL || !hf_locate (src, error))
      goto fail;
    gchar *key = g_strconcat (src->cfg, "model_type", NULL);
    src->arch = g_strdup (mm_json_get_str (mm_hf_model_config (src->hf), key,
            "llama", NULL));
    g_free (key);
    src->neox = TRUE;           /* HF checkpoints use rotate_half */
  } else {
    src->gguf = mm_gguf_open (path, error);
    if (src->gguf == NULL)
      goto fail;
    const gchar *arch = mm_gguf_get_str (src->gguf, "general.architecture",
        NULL, NULL);
    if (arch == NULL) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "%s: no general.architecture key: not an LLM GGUF file", path);
      goto fail;
    }
    src->arch = g_strdup (arch);
    /* llama.cpp's converter permutes Q/K of llama-arch models for its
     * "normal" rope; qwen2 keeps the HF layout (neox) */
    src->neox = g_strcmp0 (arch, "llama") != 0;
  }
  const gchar *ok_arch[] = { "llama", "qwen2", "mistral", NULL };
  if (!g_strv_contains (ok_arch, src->arch)) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: architecture \"%s\" is not supported (llama, qwen2)", path,
        src->arch);
    goto fail;
  }
  return src;
fail:
  mm_llm_source_free (src);
  return NULL;
}

MmGguf *
mm_llm_source_gguf (MmLlmSource * src)
{
  return src->gguf;
}

MmHfModel *
mm_llm_source_hf (MmLlmSource * src)
{
  return src->hf;
}

const gchar *
mm_llm_source_path (MmLlmSource * src)
{
  return src->path;
}

void
mm_llm_source_free (MmLlmSource * src)
{
  if (src == NULL)
    return;
  g_clear_pointer (&src->gguf, mm_gguf_free);
  g_clear_pointer (&src->hf, mm_hf_model_free);
  g_free (src->arch);
  g_free (src->hf_prefix);
  g_free (src->hf_head);
  g_free (src->cfg);
  g_free (src->path);
  g_free (src);
}

static gboolean
hp_check (MmLlmSource * src, MmLlmHp * hp, GError ** error)
{
  if (hp->n_layer <= 0 || hp->n_layer > 1024 || hp->d <= 0 || hp->d > 65536
      || hp->n_head <= 0 || hp->n_kv_head <= 0 || hp->n_head % hp->n_kv_head
      || hp->head_dim <= 0 || hp->head_dim > 1024 || hp->ffn <= 0
      || hp->ffn > 1 << 20 || hp->vocab <= 0 || hp->vocab > 1 << 22
      || hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2
      || !(hp->eps > 0) || !(hp->rope_base > 0) || hp->n_ctx_train <= 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: invalid hyper-parameters (layers %d, hidden %d, heads %d/%d, "
        "head dim %d, ffn %d, vocab %d, rope dims %d)", src->path, hp->n_layer,
        hp->d, hp->n_head, hp->n_kv_head, hp->head_dim, hp->ffn, hp->vocab,
        hp->n_rot);
    return FALSE;
  }
  return TRUE;
}

static gboolean
hparams_gguf (MmLlmSource * src, MmLlmHp * hp, GError ** error)
{
  MmGguf *f = src->gguf;
  GError *err = NULL;
#define K(name) (g_snprintf (key, sizeof (key), "%s." name, src->arch), key)
  gchar key[128];
  hp->n_layer = mm_gguf_get_u32 (f, K ("block_count"), 0, &err);
  if (!err)
    hp->d = mm_gguf_get_u32 (f, K ("embedding_length"), 0, &err);
  if (!err)
    hp->ffn = mm_gguf_get_u32 (f, K ("feed_forward_length"), 0, &err);
  if (!err)
    hp->n_head = mm_gguf_get_u32 (f, K ("attention.head_count"), 0, &err);
  if (!err)
    hp->n_kv_head = mm_gguf_get_u32 (f, K ("attention.head_count_kv"),
        hp->n_head, &err);
  if (!err)
    hp->eps = mm_gguf_get_f32 (f, K ("attention.layer_norm_rms_epsilon"),
        1e-5f, &err);
  if (!err)
    hp->rope_base = mm_gguf_get_f32 (f, K ("rope.freq_base"), 10000.0f, &err);
  if (!err)
    hp->n_ctx_train = mm_gguf_get_u32 (f, K ("context_length"), 2048, &err);
  if (!err && hp->n_head > 0)
    hp->head_dim = mm_gguf_get_u32 (f, K ("attention.key_length"),
        hp->d / hp->n_head, &err);
  if (!err)
    hp->n_rot = mm_gguf_get_u32 (f, K ("rope.dimension_count"), hp->head_dim,
        &err);
  hp->rope_freq_scale = 1.0f;
  if (!err && g_strcmp0 (mm_gguf_get_str (f, K ("rope.scaling.type"), "none",
              NULL), "linear") == 0) {
    gfloat factor = mm_gguf_get_f32 (f, K ("rope.scaling.factor"), 1.0f, &err);
    if (factor > 0)
      hp->rope_freq_scale = 1.0f / factor;
  }
#undef K
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  const MmTensorInfo *emb = mm_gguf_find_tensor (f, "token_embd.weight");
  hp->vocab = emb && emb->n_dims == 2 ? emb->shape[0] : 0;
  return TRUE;
}

static gboolean
hparams_hf (MmLlmSource * src, MmLlmHp * hp, GError ** error)
{
  MmJson *c = mm_hf_model_config (src->hf);
  gchar k[128];
#define C(name) (g_snprintf (k, sizeof (k), "%s%s", src->cfg, name), k)
  hp->n_layer = mm_json_get_int (c, C ("num_hidden_layers"), 0, NULL);
  hp->d = mm_json_get_int (c, C ("hidden_size"), 0, NULL);
  hp->ffn = mm_json_get_int (c, C ("intermediate_size"), 0, NULL);
  hp->n_head = mm_json_get_int (c, C ("num_attention_heads"), 0, NULL);
  hp->n_kv_head = mm_json_get_int (c, C ("num_key_value_heads"), hp->n_head,
      NULL);
  hp->eps = mm_json_get_float (c, C ("rms_norm_eps"), 1e-6, NULL);
  hp->vocab = mm_json_get_int (c, C ("vocab_size"), 0, NULL);
  hp->n_ctx_train = mm_json_get_int (c, C ("max_position_embeddings"), 2048,
      NULL);
  hp->head_dim = mm_json_get_int (c, C ("head_dim"),
      hp->n_head > 0 ? hp->d / hp->n_head : 0, NULL);
  hp->n_rot = hp->head_dim;
  /* transformers < 4.5x: rope_theta; newer: rope_parameters.rope_theta */
  gdouble theta = mm_json_get_float (c, C ("rope_parameters.rope_theta"),
      10000.0, NULL);
  hp->rope_base = mm_json_get_float (c, C ("rope_theta"), theta, NULL);
  hp->rope_freq_scale = 1.0f;
  const gchar *rtype = mm_json_get_str (c, C ("rope_scaling.rope_type"), NULL,
      NULL);
  rtype = mm_json_get_str (c, C ("rope_scaling.type"), rtype, NULL);
  if (g_strcmp0 (rtype, "linear") == 0) {
    gdouble f = mm_json_get_float (c, C ("rope_scaling.factor"), 1.0, NULL);
    if (f > 0)
      hp->rope_freq_scale = 1.0 / f;
  }
#undef C
  return TRUE;
}

gboolean
mm_llm_source_hparams (MmLlmSource * src, MmLlmHp * hp, GError ** error)
{
  memset (hp, 0, sizeof (*hp));
  if (!(src->gguf ? hparams_gguf (src, hp, error) : hparams_hf (src, hp,
              error)))
    return FALSE;
  hp->rope_mode = src->neox ? MM_ROPE_NEOX : MM_ROPE_NORMAL;
  return hp_check (src, hp, error);
}

static gchar *
tensor_name (MmLlmSource * src, MmLlmTensorKind kind, gint layer)
{
  static const gchar *gguf[] = { "token_embd.weight", "output_norm.weight",
    "output.weight", "attn_norm.weight", "attn_q.weight", "attn_k.weight",
    "attn_v.weight", "attn_output.weight", "attn_q.bias", "attn_k.bias",
    "attn_v.bias", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight"
  };
  static const gchar *hf[] = { "model.embed_tokens.weight",
    "model.norm.weight", "lm_head.weight", "input_layernorm.weight",
    "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias",
    "self_attn.v_proj.bias", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"
  };
  if (src->gguf)
    return layer < 0 ? g_strdup (gguf[kind]) :
        g_strdup_printf ("blk.%d.%s", layer, gguf[kind]);
  if (kind == MM_LLM_T_OUTPUT)
    return g_strdup (src->hf_head);
  /* hf[] names carry the plain "model." prefix */
  const gchar *n = g_str_has_prefix (hf[kind], "model.") ? hf[kind] + 6 :
      hf[kind];
  return layer < 0 ? g_strconcat (src->hf_prefix, n, NULL) :
      g_strdup_printf ("%slayers.%d.%s", src->hf_prefix, layer, n);
}

/* Uploads one tensor as the graph wants it: vectors in F32; matrices as
 * stored (our GEMMs read F32, F16 and the quantised types), BF16 widened
 * to F32.  Quantised matrices, the embedding table included (the row
 * gather reads them), go to the GEMM's panels; F32/F16 matrices that only
 * the GEMM reads go to its packed layout once, here (the embedding table
 * is also gathered by row, so it stays as it is). */
static MmTensor *
upload (MmEngine * engine, MmLlmTensorKind kind, const MmTensorInfo * info,
    const gchar * file, gint n_dims, const gint64 * shape, GError ** error)
{
  MmConvert conv = MM_CONVERT_NONE;
  if (n_dims == 1 || info->dtype == MM_DTYPE_BF16)
    conv = MM_CONVERT_F32;
  if (conv == MM_CONVERT_NONE && n_dims == 2 && info->supported
      && mm_dtype_block_elems (info->dtype) > 1) {
    if (!mm_tensor_info_check (info, file, MM_DTYPES_QUANT, n_dims, shape,
            error))
      return NULL;
    return mm_tensor_upload_planar (engine, info->dtype, shape[0], shape[1],
        info->data, info->name, error);
  }
  MmTensor *t = mm_tensor_info_upload (info, file, engine, MM_DTYPES_FLOAT |
      MM_DTYPES_QUANT, conv, n_dims, shape, error);
  if (t && n_dims == 2 && kind != MM_LLM_T_TOK_EMBD
      && !mm_gemm_pack_weight (engine, t, error))
    g_clear_pointer (&t, mm_tensor_free);
  return t;
}

static const MmTensorInfo *
find_info (MmLlmSource * src, const gchar * name)
{
  return src->gguf ? mm_gguf_find_tensor (src->gguf, name) :
      mm_hf_model_find_tensor (src->hf, name);
}

static const gchar *
info_file (MmLlmSource * src, const gchar * name)
{
  return src->gguf ? src->path : mm_hf_model_tensor_file (src->hf, name);
}

MmTensor *
mm_llm_source_tensor (MmLlmSource * src, MmEngine * engine,
    MmLlmTensorKind kind, gint layer, gint n_dims, const gint64 * shape,
    gboolean optional, GError ** error)
{
  gchar *name = tensor_name (src, kind, layer);
  const MmTensorInfo *info = find_info (src, name);
  MmTensor *t = NULL;
  if (info)
    t = upload (engine, kind, info, info_file (src, name), n_dims, shape,
        error);
  else if (!optional)
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: tensor %s is missing", src->path, name);
  g_free (name);
  return t;
}

MmTensor *
mm_llm_source_tensor_rows (MmLlmSource * src, MmEngine * engine,
    const MmLlmTensorKind * kinds, gint n, gint layer, gint n_dims,
    const gint64 (*shapes)[2], gboolean optional, GError ** error)
{
  const MmTensorInfo *info[4];
  gchar *names[5] = { NULL }, *what = NULL;   /* NULL-terminated */
  gboolean same = n <= (gint) G_N_ELEMENTS (info);
  gint found = 0;
  MmTensor *t = NULL;
  for (gint i = 0; same && i < n; i++) {
    names[i] = tensor_name (src, kinds[i], layer);
    info[i] = find_info (src, names[i]);
    found += info[i] != NULL;
  }
  if (!same || found == 0) {
    if (same && !optional)
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "%s: tensor %s is missing", src->path, names[0]);
    goto out;
  }
  /* matrices of different stored types stay apart: NULL, no error */
  for (gint i = 0; i < n && info[i]; i++)
    if (n_dims == 2 && (!info[i]->supported
            || info[i]->dtype != info[0]->dtype))
      goto out;
  gint64 rows = 0;
  gsize bytes = 0;
  for (gint i = 0; i < n; i++) {
    if (info[i] == NULL) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "%s: tensor %s is missing", src->path, names[i]);
      goto out;
    }
    if (!mm_tensor_info_check (info[i], info_file (src, names[i]),
            MM_DTYPES_FLOAT | MM_DTYPES_QUANT, n_dims, shapes[i], error))
      goto out;
    rows += shapes[i][0];
    bytes += n_dims == 2 ? info[i]->nbytes : shapes[i][0] * sizeof (float);
  }
  /* one host copy of the stack, read as one tensor (vectors as F32) */
  guint8 *data = g_try_malloc (bytes);
  if (data == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "%s: out of host memory stacking %s", src->path, names[0]);
    goto out;
  }
  gsize at = 0;
  gboolean ok = TRUE;
  for (gint i = 0; ok && i < n; i++) {
    if (n_dims == 2) {
      memcpy (data + at, info[i]->data, info[i]->nbytes);
      at += info[i]->nbytes;
    } else {
      ok = mm_tensor_info_to_f32 (info[i], info_file (src, names[i]),
          (float *) (data + at), error);
      at += shapes[i][0] * sizeof (float);
    }
  }
  MmTensorInfo stack = *info[0];
  what = g_strjoinv ("+", names);
  stack.name = what;
  stack.shape[0] = rows;
  stack.numel = rows * (n_dims == 2 ? shapes[0][1] : 1);
  stack.nbytes = bytes;
  stack.data = data;
  if (n_dims == 1)
    stack.dtype = MM_DTYPE_F32;
  gint64 shape[2] = { rows, n_dims == 2 ? shapes[0][1] : 0 };
  if (ok)
    t = upload (engine, kinds[0], &stack, info_file (src, names[0]), n_dims,
        shape, error);
  g_free (data);
out:
  for (gint i = 0; i < n && i < (gint) G_N_ELEMENTS (info); i++)
    g_free (names[i]);
  g_free (what);
  return t;
}
