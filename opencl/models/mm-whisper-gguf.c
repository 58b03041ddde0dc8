/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whisper encoders + connectors from GGUF audio projector files, as
 * llama.cpp's convert_hf_to_gguf.py --mmproj writes them
 * (WhisperEncoderModel for Qwen2-Audio and its subclasses for Ultravox and
 * Voxtral; names from gguf-py's constants.py / tensor_mapping.py, graphs
 * from tools/mtmd/models/whisper-enc.cpp and the transformers classes).
 *
 * Keys: general.architecture "clip", clip.has_audio_encoder (true),
 * clip.audio.projector_type (files with two encoders) or
 * clip.projector_type, clip.audio.{embedding_length, feed_forward_length,
 * block_count, attention.head_count, attention.layer_norm_epsilon,
 * num_mel_bins, projection_dim (checked when present),
 * projector.stack_factor (ultravox, voxtral)}.
 *
 * Tensors (shapes outermost first, as PyTorch's):
 *   a.conv1d.1.weight [d, n_mels, 3], a.conv1d.2.weight [d, d, 3]
 *     (the converter forces F16), a.conv1d.{1,2}.bias [d, 1] (unsqueezed
 *     by the converter; [d] is accepted too), a.position_embd.weight
 *     [n_ctx, d] (n_ctx, the encoder's positions, is read from it),
 *   a.blk.N.{ln1, ln2}.{weight, bias} [d], a.blk.N.attn_{q, v, out}.weight
 *     [d, d] + .bias [d], a.blk.N.attn_k.weight (no bias),
 *     a.blk.N.ffn_up (fc1) [ff, d] / ffn_down (fc2) [d, ff] .{weight, bias},
 *   a.post_ln.{weight, bias} [d] (the encoder's final LayerNorm),
 *   ultravox: mm.a.norm_pre.weight [s d], mm.a.mlp.1.weight [2 F, s d],
 *     mm.a.norm_mid.weight [F], mm.a.mlp.2.weight [out, F];
 *   voxtral: mm.a.mlp.1.weight [out, s d], mm.a.mlp.2.weight [out, out]
 *     (biases optional);
 *   qwen2a: mm.a.fc.weight [out, d], mm.a.fc.bias [out].
 *
 * No mel filter bank is stored for these types: clip.cpp uses Whisper's
 * (16 kHz, n_fft 400, hop 160) with n_mels from the file, and so do we.
 * The window is 2 x n_ctx frames (30 s for the 1500 positions of released
 * models).
 *
 * Voxtral: llama.cpp's graph also average-pools frame pairs before
 * stacking (audio_has_avgpool()); transformers' VoxtralEncoder defines
 * avg_pooler but never calls it (1500 frames -> 375 tokens).  We follow
 * transformers, the reference.
 *
 * The table of every tensor is checked as a whole (present, a loadable
 * type, shape against the hparams) before the first upload; errors name
 * the file and the tensor or key.
 */
#include "mm-whisper-private.h"
#include "mm-gguf.h"

#include <stdio.h>
#include <string.h>

typedef enum
{
  W_MATRIX,                     /* mm_linear weight: F32/F16 kept, quantised
                                 * kept (GEMM panels) when in % 32 == 0,
                                 * else F32 */
  W_CONV,                       /* conv kernel: F32/F16 kept, else F32 */
  W_F32,                        /* everything else: F32 */
} Kind;

typedef struct
{
  gchar *name;
  Kind kind;
  MmTensor **dst;
  gint n_dims;
  gint64 shape[3];
  gboolean optional;
  gboolean conv_bias;           /* [d, 1] or [d] */
  const MmTensorInfo *info;
} Want;

typedef struct
{
  MmGguf *gguf;
  const gchar *file;
  MmEngine *engine;
  GArray *want;                 /* Want */
  GError *error;                /* the first failure */
} Loader;

/* the loader's first error (mm-format.h) */
#define fail(L, ...) mm_format_fail (&(L)->error, (L)->file, __VA_ARGS__)
#define take_error(L, err) mm_format_keep_error (&(L)->error, (err))

gboolean
mm_whisper_is_gguf (const gchar * path)
{
  gchar magic[4] = { 0 };
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return FALSE;
  FILE *f = fopen (path, "rb");
  if (f == NULL)
    return FALSE;
  gboolean ok = fread (magic, 1, 4, f) == 4 && memcmp (magic, "GGUF", 4) == 0;
  fclose (f);
  return ok;
}

/* ---- metadata ---- */

static gint64
get_int (Loader * L, const gchar * key, gint64 def, gboolean required)
{
  if (L->error)
    return def;
  if (required && !mm_gguf_has_key (L->gguf, key)) {
    fail (L, "missing key '%s'", key);
    return def;
  }
  GError *err = NULL;
  gint64 v = mm_gguf_get_i64 (L->gguf, key, def, &err);
  take_error (L, err);
  return v;
}

static MmWhisperProj
parse_projector (Loader * L)
{
  GError *err = NULL;
  gboolean audio = mm_gguf_get_bool (L->gguf, "clip.has_audio_encoder",
      FALSE, &err);
  const gchar *arch = mm_gguf_get_str (L->gguf, "general.architecture", "",
      err ? NULL : &err);
  const gchar *pt = mm_gguf_get_str (L->gguf, "clip.audio.projector_type",
      NULL, err ? NULL : &err);
  if (pt == NULL && !err)
    pt = mm_gguf_get_str (L->gguf, "clip.projector_type", NULL, &err);
  take_error (L, err);
  if (L->error)
    return MM_WHISPER_PROJ_NONE;
  if (g_strcmp0 (arch, "clip") != 0 || !audio) {
    fail (L, "not an audio projector file (general.architecture '%s', "
        "clip.has_audio_encoder %s)", arch, audio ? "true" : "absent/false");
    return MM_WHISPER_PROJ_NONE;
  }
  static const struct
  {
    const gchar *name;
    MmWhisperProj proj;
  } types[] = {
    {"ultravox", MM_WHISPER_PROJ_ULTRAVOX},
    {"voxtral", MM_WHISPER_PROJ_VOXTRAL},
    {"qwen2a", MM_WHISPER_PROJ_QWEN2A},
  };
  for (guint i = 0; pt && i < G_N_ELEMENTS (types); i++)
    if (g_str_equal (pt, types[i].name))
      return types[i].proj;
  fail (L, "audio projector type '%s' is not supported (ultravox, voxtral, "
      "qwen2a)", pt ? pt : "(none)");
  return MM_WHISPER_PROJ_NONE;
}

/* Rows and columns of 2-D tensor @name (the encoder's positions and the
 * connector's widths, which no key gives); an error when it is absent or
 * not 2-D. */
static void
dims_of (Loader * L, const gchar * name, gint64 * rows, gint64 * cols)
{
  const MmTensorInfo *t = mm_gguf_find_tensor (L->gguf, name);
  *rows = t && t->n_dims == 2 ? t->shape[0] : 0;
  if (cols)
    *cols = t && t->n_dims == 2 ? t->shape[1] : 0;
  if (t == NULL)
    fail (L, "tensor '%s' is missing", name);
  else if (t->n_dims != 2)
    fail (L, "tensor '%s' has %d dims, expected 2", name, t->n_dims);
}

static void
read_hparams (Loader * L, MmWhisperHp * hp)
{
  hp->proj = parse_projector (L);
  hp->d = get_int (L, "clip.audio.embedding_length", 0, TRUE);
  hp->enc_ffn = get_int (L, "clip.audio.feed_forward_length", 0, TRUE);
  hp->n_enc_layer = get_int (L, "clip.audio.block_count", 0, TRUE);
  hp->n_enc_head = get_int (L, "clip.audio.attention.head_count", 0, TRUE);
  hp->n_mels = get_int (L, "clip.audio.num_mel_bins", 0, TRUE);
  hp->stack = hp->proj == MM_WHISPER_PROJ_QWEN2A ? 1 :
      get_int (L, "clip.audio.projector.stack_factor", 0, TRUE);
  GError *err = NULL;
  if (!L->error)
    hp->eps = mm_gguf_get_f32 (L->gguf,
        "clip.audio.attention.layer_norm_epsilon", 1e-5f, &err);
  take_error (L, err);
  gint64 rows = 0;
  if (!L->error)
    dims_of (L, "a.position_embd.weight", &rows, NULL);
  hp->n_audio_ctx = rows;
  if (L->error)
    return;
  if (hp->d <= 0 || hp->d > 65536 || hp->enc_ffn <= 0
      || hp->enc_ffn > (1 << 20) || hp->n_enc_layer <= 0
      || hp->n_enc_layer > 1024 || hp->n_enc_head <= 0
      || hp->d % hp->n_enc_head || hp->n_mels <= 0 || hp->n_mels > 1024
      || hp->stack <= 0 || hp->stack > 64 || !(hp->eps > 0)
      || hp->n_audio_ctx <= 0 || hp->n_audio_ctx > (1 << 16)
      || (hp->proj == MM_WHISPER_PROJ_QWEN2A && hp->n_audio_ctx < 2))
    fail (L, "implausible audio hparams (d %d, ff %d, blocks %d, heads %d, "
        "mel bins %d, stack %d, eps %g, a.position_embd.weight rows %d)",
        hp->d, hp->enc_ffn, hp->n_enc_layer, hp->n_enc_head, hp->n_mels,
        hp->stack, hp->eps, hp->n_audio_ctx);
}

/* Connector widths from the tensors, checked against projection_dim. */
static void
connector_dims (Loader * L, MmWhisperHp * hp)
{
  gint64 r1, r2, c2;
  hp->n_enc_out = hp->n_audio_ctx;
  hp->n_out = (hp->n_audio_ctx + hp->stack - 1) / hp->stack;
  switch (hp->proj) {
    case MM_WHISPER_PROJ_ULTRAVOX:
      dims_of (L, "mm.a.mlp.1.weight", &r1, NULL);
      dims_of (L, "mm.a.mlp.2.weight", &r2, &c2);
      if (!L->error && (r1 % 2 || r1 / 2 != c2))
        fail (L, "mm.a.mlp.1.weight has %" G_GINT64_FORMAT " rows: SwiGLU "
            "needs twice the %" G_GINT64_FORMAT " inputs of mm.a.mlp.2.weight",
            r1, c2);
      hp->proj_ff = c2;
      hp->out_dim = r2;
      break;
    case MM_WHISPER_PROJ_VOXTRAL:
      dims_of (L, "mm.a.mlp.1.weight", &r1, NULL);
      dims_of (L, "mm.a.mlp.2.weight", &r2, NULL);
      hp->proj_ff = r1;
      hp->out_dim = r2;
      break;
    case MM_WHISPER_PROJ_QWEN2A:
      hp->n_enc_out = hp->n_out = hp->n_audio_ctx / 2;
      dims_of (L, "mm.a.fc.weight", &r1, NULL);
      hp->out_dim = r1;
      break;
    case MM_WHISPER_PROJ_NONE:
      break;
  }
  gint64 pd = get_int (L, "clip.audio.projection_dim", 0, FALSE);
  if (!L->error && (hp->out_dim <= 0 || (pd > 0 && pd != hp->out_dim)))
    fail (L, "connector output width %d (from its last matrix) differs from "
        "clip.audio.projection_dim %" G_GINT64_FORMAT " or is missing",
        hp->out_dim, pd);
}

/* ---- the tensor table ---- */

static void
want (Loader * L, Kind kind, MmTensor ** dst, gboolean optional,
    const gchar * name, gint n_dims, gint64 d0, gint64 d1, gint64 d2)
{
  Want wt = { 0 };
  wt.name = g_strdup (name);
  wt.kind = kind;
  wt.dst = dst;
  wt.optional = optional;
  wt.n_dims = n_dims;
  wt.shape[0] = d0;
  wt.shape[1] = d1;
  wt.shape[2] = d2;
  g_array_append_val (L->want, wt);
}

#define WANT_M(L, dst, name, a, b) want (L, W_MATRIX, dst, FALSE, name, 2, a, b, 0)
#define WANT_V(L, dst, name, n) want (L, W_F32, dst, FALSE, name, 1, n, 0, 0)

static void
want_layer (Loader * L, MmWhisperLayer * l, gint il, gint64 d, gint64 ff)
{
  gchar *n;
#define LAYER(macro, dst, suffix, ...) \
  n = g_strdup_printf ("a.blk.%d." suffix, il); \
  macro (L, dst, n, __VA_ARGS__); \
  g_free (n)
  LAYER (WANT_V, &l->attn_ln_w, "ln1.weight", d);
  LAYER (WANT_V, &l->attn_ln_b, "ln1.bias", d);
  LAYER (WANT_M, &l->attn.q_w, "attn_q.weight", d, d);
  LAYER (WANT_V, &l->attn.q_b, "attn_q.bias", d);
  LAYER (WANT_M, &l->attn.k_w, "attn_k.weight", d, d);
  /* V is the A side of a GEMM (values transposed): F32 */
  n = g_strdup_printf ("a.blk.%d.attn_v.weight", il);
  want (L, W_F32, &l->attn.v_w, FALSE, n, 2, d, d, 0);
  g_free (n);
  LAYER (WANT_V, &l->attn.v_b, "attn_v.bias", d);
  LAYER (WANT_M, &l->attn.o_w, "attn_out.weight", d, d);
  LAYER (WANT_V, &l->attn.o_b, "attn_out.bias", d);
  LAYER (WANT_V, &l->ffn_ln_w, "ln2.weight", d);
  LAYER (WANT_V, &l->ffn_ln_b, "ln2.bias", d);
  LAYER (WANT_M, &l->fc1_w, "ffn_up.weight", ff, d);
  LAYER (WANT_V, &l->fc1_b, "ffn_up.bias", ff);
  LAYER (WANT_M, &l->fc2_w, "ffn_down.weight", d, ff);
  LAYER (WANT_V, &l->fc2_b, "ffn_down.bias", d);
#undef LAYER
}

static void
want_encoder (Loader * L, MmWhisper * w)
{
  const MmWhisperHp *hp = &w->hp;
  gint64 d = hp->d;
  want (L, W_CONV, &w->conv1_w, FALSE, "a.conv1d.1.weight", 3, d, hp->n_mels,
      3);
  want (L, W_F32, &w->conv1_b, FALSE, "a.conv1d.1.bias", 2, d, 1, 0);
  g_array_index (L->want, Want, L->want->len - 1).conv_bias = TRUE;
  want (L, W_CONV, &w->conv2_w, FALSE, "a.conv1d.2.weight", 3, d, d, 3);
  want (L, W_F32, &w->conv2_b, FALSE, "a.conv1d.2.bias", 2, d, 1, 0);
  g_array_index (L->want, Want, L->want->len - 1).conv_bias = TRUE;
  want (L, W_F32, &w->enc_pos, FALSE, "a.position_embd.weight", 2,
      hp->n_audio_ctx, d, 0);
  w->enc = g_new0 (MmWhisperLayer, hp->n_enc_layer);
  for (gint i = 0; i < hp->n_enc_layer; i++)
    want_layer (L, &w->enc[i], i, d, hp->enc_ffn);
  WANT_V (L, &w->enc_ln_w, "a.post_ln.weight", d);
  WANT_V (L, &w->enc_ln_b, "a.post_ln.bias", d);
}

static void
want_connector (Loader * L, MmWhisper * w)
{
  const MmWhisperHp *hp = &w->hp;
  gint64 sd = (gint64) hp->stack * hp->d, F = hp->proj_ff, out = hp->out_dim;
  switch (hp->proj) {
    case MM_WHISPER_PROJ_ULTRAVOX:
      WANT_V (L, &w->mm_norm_pre, "mm.a.norm_pre.weight", sd);
      WANT_M (L, &w->mm_1_w, "mm.a.mlp.1.weight", 2 * F, sd);
      WANT_V (L, &w->mm_norm_mid, "mm.a.norm_mid.weight", F);
      WANT_M (L, &w->mm_2_w, "mm.a.mlp.2.weight", out, F);
      break;
    case MM_WHISPER_PROJ_VOXTRAL:
      WANT_M (L, &w->mm_1_w, "mm.a.mlp.1.weight", F, sd);
      want (L, W_F32, &w->mm_1_b, TRUE, "mm.a.mlp.1.bias", 1, F, 0, 0);
      WANT_M (L, &w->mm_2_w, "mm.a.mlp.2.weight", out, F);
      want (L, W_F32, &w->mm_2_b, TRUE, "mm.a.mlp.2.bias", 1, out, 0, 0);
      break;
    case MM_WHISPER_PROJ_QWEN2A:
      WANT_M (L, &w->mm_fc_w, "mm.a.fc.weight", out, hp->d);
      WANT_V (L, &w->mm_fc_b, "mm.a.fc.bias", out);
      break;
    case MM_WHISPER_PROJ_NONE:
      break;
  }
}

static gboolean
check_all (Loader * L)
{
  for (guint i = 0; i < L->want->len && !L->error; i++) {
    Want *wt = &g_array_index (L->want, Want, i);
    GError *err = NULL;
    const MmTensorInfo *info = mm_gguf_find_tensor (L->gguf, wt->name);
    if (info == NULL) {
      if (!wt->optional)
        fail (L, "tensor '%s' is missing", wt->name);
      continue;
    }
    /* a conv bias [d] as well as the converter's [d, 1] */
    gint n_dims = wt->conv_bias && info->n_dims == 1 ? 1 : wt->n_dims;
    if (mm_tensor_info_check (info, L->file, MM_DTYPES_FLOAT |
            MM_DTYPES_QUANT, n_dims, wt->shape, &err))
      wt->info = info;
    take_error (L, err);
  }
  return L->error == NULL;
}

static MmTensor *
upload_one (Loader * L, const Want * wt, GError ** error)
{
  const MmTensorInfo *info = wt->info;
  gboolean plain = info->dtype == MM_DTYPE_F32 || info->dtype == MM_DTYPE_F16;
  gboolean quant = mm_dtype_block_elems (info->dtype) > 1;
  if (wt->kind == W_MATRIX && quant && info->shape[1] % 32 == 0)
    return mm_tensor_upload_planar (L->engine, info->dtype, info->shape[0],
        info->shape[1], info->data, info->name, error);
  MmConvert cv = wt->kind != W_F32 && plain ? MM_CONVERT_NONE : MM_CONVERT_F32;
  return mm_tensor_info_upload (info, L->file, L->engine, 0, cv, 0, NULL,
      error);
}

static gboolean
upload_all (Loader * L)
{
  for (guint i = 0; i < L->want->len && !L->error; i++) {
    Want *wt = &g_array_index (L->want, Want, i);
    GError *err = NULL;
    if (wt->info)
      *wt->dst = upload_one (L, wt, &err);
    take_error (L, err);
  }
  return L->error == NULL;
}

static void
loader_clear (Loader * L)
{
  for (guint i = 0; L->want && i < L->want->len; i++)
    g_free (g_array_index (L->want, Want, i).name);
  if (L->want)
    g_array_unref (L->want);
  g_clear_error (&L->error);
}

/* Zero frames that complete the last stack. */
static gboolean
make_stack_zeros (MmWhisper * w, GError ** error)
{
  if (w->hp.proj == MM_WHISPER_PROJ_QWEN2A || w->hp.stack < 2)
    return TRUE;
  gint64 s[2] = { w->hp.stack - 1, w->hp.d };
  float *zeros = g_new0 (float, s[0] * s[1]);
  w->stack_zeros = mm_tensor_upload (w->engine, MM_DTYPE_F32, 2, s, zeros,
      "whisper stack padding", error);
  g_free (zeros);
  return w->stack_zeros != NULL;
}

gboolean
mm_whisper_gguf_load (MmWhisper * w, const gchar * path, GError ** error)
{
  MmGguf *gguf = mm_gguf_open (path, error);
  if (gguf == NULL)
    return FALSE;
  Loader L = { 0 };
  L.gguf = gguf;
  L.file = path;
  L.engine = w->engine;
  L.want = g_array_new (FALSE, TRUE, sizeof (Want));
  MmWhisperHp *hp = &w->hp;

  read_hparams (&L, hp);
  if (!L.error)
    connector_dims (&L, hp);
  if (!L.error) {
    want_encoder (&L, w);
    want_connector (&L, w);
  }
  gboolean ok = check_all (&L) && upload_all (&L);
  if (!ok) {
    g_propagate_error (error, L.error);
    L.error = NULL;
  }
  loader_clear (&L);
  mm_gguf_free (gguf);
  if (ok) {
    MmMelParams mp;
    mm_mel_params_init (&mp, hp->n_mels);
    mp.n_samples = 2 * hp->n_audio_ctx * mp.hop;
    w->mel = mm_mel_new (w->engine, &mp, error);
    ok = w->mel != NULL && make_stack_zeros (w, error)
        && mm_whisper_pack_weights (w, error);
  }
  return ok;
}
