/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GGUF audio projector files (tests/fixtures/audio_mmproj, written as
 * llama.cpp's converter writes them) against their references:
 *  - ultravox (torch reference after fixie-ai's UltravoxProjector),
 *    voxtral (transformers VoxtralForConditionalGeneration), qwen2a
 *    (transformers Qwen2AudioForConditionalGeneration): from the
 *    reference log-mel features, the input of block 0, the audio tower's
 *    output and the connector's output; from the raw audio through the
 *    device log-mel (mm_whisper_encode and MmWhisperEncoder);
 *  - the ultravox weights as Q8_0 / Q4_0 files (F16 convolutions, as in
 *    every file), against the reference model holding the weights as those
 *    files store them (dequantised): the quantised GEMM paths, not just
 *    "close";
 *  - broken files: a missing tensor, a wrong shape, an unknown projector
 *    type, a missing key, a vision mmproj, a truncated file, and
 *    mm_whisper_load() (which needs a decoder) on a projector file.
 *
 * Error measure: max |got - want| / max |want| over the tensor (printed
 * for every check).  Tolerance 1e-4 from the reference features (measured
 * ~1e-6), 1e-3 through the device log-mel (the features differ from the
 * extractor's by ~1e-5 and the encoder may amplify that; measured ~1e-6).
 * How far the stored weights take a file from the F32 model is printed
 * too (measured: Q8_0 4e-2, Q4_0 4e-1 on these tiny random weights).
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-test-writers.h"
#include "mm-whisper.h"
#include "mm-gguf.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define TOL_F32 1e-4
#define TOL_MEL 1e-3

typedef struct
{
  const gchar *type;            /* file and reference names */
  MmWhisperProj proj;
  gint n_mels, n_ctx, d, n_out, out_dim;
} Fixture;

static const Fixture fixtures[] = {
  {"ultravox", MM_WHISPER_PROJ_ULTRAVOX, 80, 45, 32, 6, 40},
  {"voxtral", MM_WHISPER_PROJ_VOXTRAL, 128, 28, 24, 7, 64},
  {"qwen2a", MM_WHISPER_PROJ_QWEN2A, 80, 25, 28, 12, 64},
};

static gboolean
check_rel (MmEngine * e, const gchar * what, MmTensor * t, const float *want,
    gsize n, double tol)
{
  float *got = mm_test_read_tensor (e, what, t, n);
  if (got == NULL)
    return FALSE;
  double worst = 0, scale = 0;
  gboolean finite = TRUE;
  for (gsize i = 0; i < n; i++) {
    worst = MAX (worst, fabs ((double) got[i] - want[i]));
    scale = MAX (scale, fabs ((double) want[i]));
    finite &= isfinite (got[i]);
  }
  double rel = worst / MAX (scale, 1e-30);
  gboolean ok = finite && rel <= tol;
  if (isinf (tol))
    g_print ("%s: max-abs %.3g, relative %.3g\n", what, worst, rel);
  else
    g_print ("%s: max-abs %.3g, relative %.3g (tolerance %.0e)%s\n", what,
        worst, rel, tol, ok ? "" : " FAIL");
  if (!ok)
    g_printerr ("FAIL %s\n", what);
  g_free (got);
  return ok;
}

static MmSafetensors *
open_ref (const gchar * type)
{
  gchar *rel = g_strdup_printf ("audio_mmproj/reference-%s.safetensors", type);
  MmSafetensors *st = mm_test_ref_open_file (rel);
  g_free (rel);
  return st;
}

static MmWhisper *
load (MmEngine * e, const gchar * type, const gchar * suffix)
{
  gchar *rel = g_strdup_printf ("audio_mmproj/mmproj-%s%s.gguf", type, suffix);
  gchar *path = mm_test_fixture (rel);
  GError *err = NULL;
  MmWhisper *w = mm_whisper_load_encoder (e, path, &err);
  if (w == NULL) {
    g_printerr ("FAIL load %s: %s\n", path, err->message);
    g_error_free (err);
  }
  g_free (rel);
  g_free (path);
  return w;
}

/* Reference features -> tower -> connector, each stage against the
 * reference (the tower's stages for the F32 file only: @tag ""); the
 * connector output against "projected<tag>". */
static gboolean
check_features (MmEngine * e, MmWhisper * w, const Fixture * f,
    MmSafetensors * ref, const gchar * tag)
{
  gsize n_feat, n_h0, n_enc, n_proj, n_f32;
  gboolean stages = *tag == '\0';
  gchar *pname = g_strconcat ("projected", tag, NULL);
  float *feat = mm_test_ref_f32 (ref, "input_features", &n_feat);
  float *h0 = mm_test_ref_f32 (ref, "encoder.hidden_states.0", &n_h0);
  float *enc = mm_test_ref_f32 (ref, "encoder_out", &n_enc);
  float *proj = mm_test_ref_f32 (ref, pname, &n_proj);
  float *proj_f32 = mm_test_ref_f32 (ref, "projected", &n_f32);
  MmGraph *g = mm_graph_new (e);
  gint64 s[2] = { f->n_mels, n_feat / f->n_mels };
  MmTensor *hidden[8] = { 0 };
  MmTensor *y = mm_whisper_encode_features (w, g,
      mm_graph_input_f32 (g, 2, s, feat), hidden);
  MmTensor *p = mm_whisper_project (w, g, y);
  gchar *what = g_strdup_printf ("%s%s", f->type, tag);
  gboolean ok = mm_test_graph_ok (g, what);
  gchar *n0 = g_strconcat (what, " encoder.hidden_states.0", NULL);
  gchar *n1 = g_strconcat (what, " encoder_out", NULL);
  gchar *n2 = g_strconcat (what, " projected", NULL);
  if (ok && stages)
    ok = check_rel (e, n0, hidden[0], h0, n_h0, TOL_F32)
        & check_rel (e, n1, y, enc, n_enc, TOL_F32);
  ok = ok && check_rel (e, n2, p, proj, n_proj, TOL_F32);
  if (ok && !stages) {
    /* informational: what the stored weights cost against the F32 model */
    gchar *n3 = g_strconcat (what, " vs the F32 model", NULL);
    check_rel (e, n3, p, proj_f32, n_f32, INFINITY);
    g_free (n3);
  }
  g_free (pname);
  g_free (proj_f32);
  g_free (n0);
  g_free (n1);
  g_free (n2);
  g_free (what);
  mm_graph_free (g);
  g_free (feat);
  g_free (h0);
  g_free (enc);
  g_free (proj);
  return ok;
}

/* Raw audio -> device log-mel -> tower -> connector, in one graph and
 * through MmWhisperEncoder (twice: the state is reused). */
static gboolean
check_audio (MmEngine * e, MmWhisper * w, const Fixture * f,
    MmSafetensors * ref)
{
  gsize n_audio, n_proj;
  float *audio = mm_test_ref_f32 (ref, "audio", &n_audio);
  float *proj = mm_test_ref_f32 (ref, "projected", &n_proj);
  MmGraph *g = mm_graph_new (e);
  gint64 s = n_audio;
  MmTensor *y = mm_whisper_encode (w, g, mm_graph_input_f32 (g, 1, &s, audio));
  gchar *what = g_strdup_printf ("%s audio -> projected", f->type);
  gboolean ok = mm_test_graph_ok (g, what) && check_rel (e, what, y, proj, n_proj,
      TOL_MEL);
  GError *err = NULL;
  MmWhisperEncoder *enc = mm_whisper_encoder_new (w, &err);
  gint64 so[2] = { mm_whisper_n_output_tokens (w), mm_whisper_output_dim (w) };
  MmTensor *out = enc ? mm_tensor_new (e, MM_DTYPE_F32, 2, so, "test", &err)
      : NULL;
  g_free (what);
  what = g_strdup_printf ("%s MmWhisperEncoder -> projected", f->type);
  for (gint i = 0; ok && i < 2; i++)
    ok = out && mm_whisper_encoder_run (enc, audio, n_audio, out, &err)
        && check_rel (e, what, out, proj, n_proj, TOL_MEL);
  if (err) {
    g_printerr ("FAIL %s: %s\n", what, err->message);
    g_clear_error (&err);
    ok = FALSE;
  }
  mm_tensor_free (out);
  mm_whisper_encoder_free (enc);
  mm_graph_free (g);
  g_free (what);
  g_free (audio);
  g_free (proj);
  return ok;
}

static gboolean
check_fixture (MmEngine * e, const Fixture * f)
{
  MmSafetensors *ref = open_ref (f->type);
  MmWhisper *w = load (e, f->type, "");
  gboolean ok = w != NULL;
  if (ok && (mm_whisper_projector (w) != f->proj
          || mm_whisper_n_output_tokens (w) != f->n_out
          || mm_whisper_output_dim (w) != f->out_dim
          || mm_whisper_n_audio_tokens (w) != f->n_ctx
          || mm_whisper_d_model (w) != f->d
          || mm_whisper_sampling_rate (w) != 16000
          || mm_whisper_n_samples (w) != 2 * f->n_ctx * 160
          || mm_mel_params (mm_whisper_mel (w))->n_mels != f->n_mels)) {
    g_printerr ("FAIL %s: projector %s, %d tokens x %d, %d positions x %d, "
        "%d samples\n", f->type,
        mm_whisper_projector_name (mm_whisper_projector (w)),
        mm_whisper_n_output_tokens (w), mm_whisper_output_dim (w),
        mm_whisper_n_audio_tokens (w), mm_whisper_d_model (w),
        mm_whisper_n_samples (w));
    ok = FALSE;
  }
  ok = ok && check_features (e, w, f, ref, "");
  ok = ok && check_audio (e, w, f, ref);
  mm_whisper_free (w);
  mm_safetensors_free (ref);
  return ok;
}

static gboolean
check_variant (MmEngine * e, const Fixture * f, const gchar * suffix)
{
  MmSafetensors *ref = open_ref (f->type);
  MmWhisper *w = load (e, f->type, suffix);
  gboolean ok = w && check_features (e, w, f, ref, suffix);
  mm_whisper_free (w);
  mm_safetensors_free (ref);
  return ok;
}

/* ---- broken files ---- */

typedef struct
{
  const gchar *drop_tensor;     /* left out */
  const gchar *reshape_tensor;  /* written with its dims reversed */
  const gchar *drop_key;
  const gchar *projector_type;  /* replaces clip.projector_type */
} Edit;

/* A copy of GGUF @src with @ed applied, as a temp file. */
static gchar *
edited_copy (const gchar * src, const Edit * ed)
{
  GError *err = NULL;
  MmGguf *in = mm_gguf_open (src, &err);
  g_assert_no_error (err);
  MmtGguf *out = mmt_gguf_new (3);
  for (guint i = 0; i < mm_gguf_n_keys (in); i++) {
    const gchar *k = mm_gguf_key_nth (in, i);
    if (g_strcmp0 (k, ed->drop_key) == 0)
      continue;
    switch (mm_gguf_key_type (in, k)) {
      case MM_GGUF_TYPE_UINT32:
        mmt_gguf_kv_u32 (out, k, mm_gguf_get_u32 (in, k, 0, NULL));
        break;
      case MM_GGUF_TYPE_FLOAT32:
        mmt_gguf_kv_f32 (out, k, mm_gguf_get_f32 (in, k, 0, NULL));
        break;
      case MM_GGUF_TYPE_BOOL:
        mmt_gguf_kv_bool (out, k, mm_gguf_get_bool (in, k, FALSE, NULL));
        break;
      case MM_GGUF_TYPE_STRING:
        mmt_gguf_kv_str (out, k, ed->projector_type
            && g_str_equal (k, "clip.projector_type") ? ed->projector_type :
            mm_gguf_get_str (in, k, "", NULL));
        break;
      default:
        g_error ("key %s of type %d: extend edited_copy", k,
            mm_gguf_key_type (in, k));
    }
  }
  for (guint i = 0; i < mm_gguf_n_tensors (in); i++) {
    const MmTensorInfo *t = mm_gguf_tensor_nth (in, i);
    gint64 shape[MM_MAX_DIMS];
    if (g_strcmp0 (t->name, ed->drop_tensor) == 0)
      continue;
    for (gint d = 0; d < t->n_dims; d++)
      shape[d] = g_strcmp0 (t->name, ed->reshape_tensor) == 0 ?
          t->shape[t->n_dims - 1 - d] : t->shape[d];
    mmt_gguf_tensor (out, t->name, t->type_id, t->n_dims, shape, t->data,
        t->nbytes);
  }
  GBytes *b = mmt_gguf_finish (out, 32);
  gchar *path = mmt_write (b, NULL, NULL);
  g_bytes_unref (b);
  mmt_gguf_free (out);
  mm_gguf_free (in);
  return path;
}

/* Loading @path fails with an error holding each of @needles. */
static gboolean
expect_error (MmEngine * e, const gchar * what, const gchar * path,
    const gchar * const *needles)
{
  GError *err = NULL;
  MmWhisper *w = mm_whisper_load_encoder (e, path, &err);
  gboolean ok = w == NULL && err != NULL;
  for (gint i = 0; ok && needles[i]; i++)
    ok = strstr (err->message, needles[i]) != NULL;
  g_print ("%s: %s%s\n", what, err ? err->message : "(loaded)",
      ok ? "" : " FAIL");
  if (!ok)
    g_printerr ("FAIL %s\n", what);
  g_clear_error (&err);
  mm_whisper_free (w);
  return ok;
}

static gboolean
check_broken (MmEngine * e)
{
  gchar *src = mm_test_fixture ("audio_mmproj/mmproj-ultravox.gguf");
  const struct
  {
    const gchar *what;
    Edit ed;
    const gchar *needles[3];
  } cases[] = {
    {"missing tensor", {"a.blk.1.attn_q.weight", NULL, NULL, NULL},
        {"a.blk.1.attn_q.weight", "missing", NULL}},
    {"missing connector tensor", {"mm.a.norm_mid.weight", NULL, NULL, NULL},
        {"mm.a.norm_mid.weight", "missing", NULL}},
    {"missing connector matrix", {"mm.a.mlp.2.weight", NULL, NULL, NULL},
        {"mm.a.mlp.2.weight", "missing", NULL}},
    {"missing positions", {"a.position_embd.weight", NULL, NULL, NULL},
        {"a.position_embd.weight", "missing", NULL}},
    {"wrong connector shape", {NULL, "mm.a.mlp.1.weight", NULL, NULL},
        {"mm.a.mlp.1.weight", NULL, NULL}},
    {"wrong shape", {NULL, "a.blk.0.ffn_up.weight", NULL, NULL},
        {"a.blk.0.ffn_up.weight", "shape", NULL}},
    {"wrong conv shape", {NULL, "a.conv1d.1.weight", NULL, NULL},
        {"a.conv1d.1.weight", "shape", NULL}},
    {"unknown projector", {NULL, NULL, NULL, "glma"},
        {"'glma'", "not supported", NULL}},
    {"missing key", {NULL, NULL, "clip.audio.block_count", NULL},
        {"clip.audio.block_count", NULL, NULL}},
    {"missing stack factor", {NULL, NULL, "clip.audio.projector.stack_factor",
            NULL}, {"stack_factor", NULL, NULL}},
    {"no audio encoder", {NULL, NULL, "clip.has_audio_encoder", NULL},
        {"not an audio projector", NULL, NULL}},
  };
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gchar *p = edited_copy (src, &cases[i].ed);
    gchar *base = g_path_get_basename (p);
    const gchar *needles[4] = { base, cases[i].needles[0],
      cases[i].needles[1], NULL
    };
    ok &= expect_error (e, cases[i].what, p, needles);
    g_unlink (p);
    g_free (base);
    g_free (p);
  }
  /* a vision mmproj, a truncated file */
  gchar *vis = mm_test_fixture ("idefics3/mmproj-idefics3.gguf");
  const gchar *n_vis[] = { "mmproj-idefics3.gguf", "not an audio projector",
    NULL
  };
  ok &= expect_error (e, "vision mmproj", vis, n_vis);
  gchar *data;
  gsize len;
  g_file_get_contents (src, &data, &len, NULL);
  GBytes *b = g_bytes_new_take (data, len);
  GBytes *cut = mmt_prefix (b, len / 2);
  gchar *trunc = mmt_write (cut, NULL, NULL);
  gchar *tbase = g_path_get_basename (trunc);
  const gchar *n_trunc[] = { tbase, NULL };
  ok &= expect_error (e, "truncated", trunc, n_trunc);
  g_unlink (trunc);
  /* transcription needs a decoder */
  GError *err = NULL;
  MmWhisper *w = mm_whisper_load (e, src, &err);
  gboolean dec = w == NULL && err && strstr (err->message, "decoder");
  g_print ("mm_whisper_load on a projector file: %s%s\n",
      err ? err->message : "(loaded)", dec ? "" : " FAIL");
  ok &= dec;
  g_clear_error (&err);
  mm_whisper_free (w);
  g_free (tbase);
  g_free (trunc);
  g_bytes_unref (b);
  g_bytes_unref (cut);
  g_free (vis);
  g_free (src);
  return ok;
}

int
main (void)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (fixtures); i++)
    ok &= check_fixture (e, &fixtures[i]);
  ok &= check_variant (e, &fixtures[0], "-q8_0");
  ok &= check_variant (e, &fixtures[0], "-q4_0");
  ok &= check_broken (e);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
