/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision encoders vs transformers, for every fixture family and both file
 * formats: preprocessing vs the processor's pixel_values, every hidden
 * state of the tower, the connector's intermediate and final outputs, and
 * end to end from the uint8 image.
 *
 * Errors are measured as max |got - want| / max |want| (max-abs relative
 * to the tensor's scale) and printed.  Tolerances:
 *   pixel values              1e-6 (the resize is Pillow's integer
 *                             arithmetic, the normalisation numpy's: exact)
 *   F32 weights               1e-4
 *   F16 weights               1e-3 (LLaVA and MiniCPM-V GGUF files keep
 *                             the patch embedding (and LLaVA's projector)
 *                             in F16 while the reference used F32: ~3e-4
 *                             measured)
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-vision.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_PIXELS 1e-6
#define TOL_F32 1e-4
#define TOL_F16 1e-3

static gboolean
compare (const gchar * what, const float *got, gsize n_got, const float *want,
    gsize n_want, double tol)
{
  if (got == NULL || n_got != n_want) {
    g_printerr ("FAIL %s: %" G_GSIZE_FORMAT " values, want %" G_GSIZE_FORMAT
        "\n", what, got ? n_got : 0, n_want);
    return FALSE;
  }
  double err = 0, scale = 0;
  gsize worst = 0;
  for (gsize i = 0; i < n_want; i++) {
    double d = fabs ((double) got[i] - want[i]);
    if (isnan (got[i]))
      d = INFINITY;
    if (d > err)
      err = d, worst = i;
    scale = MAX (scale, fabs (want[i]));
  }
  double rel = err / MAX (scale, 1e-30);
  gboolean ok = rel <= tol;
  g_print ("%s %-52s max-abs %.3g (scale %.3g, rel %.2g, tol %.0e)\n",
      ok ? "ok  " : "FAIL", what, err, scale, rel, tol);
  if (!ok)
    g_printerr ("  worst element %" G_GSIZE_FORMAT ": got %.7g want %.7g\n",
        worst, got[worst], want[worst]);
  return ok;
}

/* A traced tensor of the last forward vs a reference tensor. */
static gboolean
check_trace (MmVisionModel * m, const gchar * label, const gchar * name,
    MmSafetensors * ref, const gchar * ref_name, double tol)
{
  GError *err = NULL;
  gint64 rows = 0, cols = 0;
  float *got = mm_vision_model_trace_get (m, name, &rows, &cols, &err);
  gsize n;
  float *want = mm_test_ref_f32 (ref, ref_name, &n);
  gchar *what = g_strdup_printf ("%s %s", label, ref_name);
  if (got == NULL)
    g_printerr ("FAIL %s: %s\n", what, err->message);
  gboolean ok = got && compare (what, got, rows * cols, want, n, tol);
  g_clear_error (&err);
  g_free (what);
  g_free (got);
  g_free (want);
  return ok;
}

static gboolean
check_output (const gchar * label, MmEngine * e, MmTensor * out,
    GError * err, MmSafetensors * ref, const gchar * ref_name, double tol)
{
  if (out == NULL) {
    g_printerr ("FAIL %s: %s\n", label, err ? err->message : "?");
    g_clear_error (&err);
    return FALSE;
  }
  float *got = mm_tensor_dup_f32 (e, out, NULL);
  gsize n;
  float *want = mm_test_ref_f32 (ref, ref_name, &n);
  gchar *what = g_strdup_printf ("%s %s", label, ref_name);
  gboolean ok = compare (what, got, mm_tensor_numel (out), want, n, tol);
  g_free (what);
  g_free (got);
  g_free (want);
  mm_tensor_free (out);
  return ok;
}

/* An RGB MmImage over a reference uint8 [h, w, 3] tensor. */
static gboolean
ref_image (MmSafetensors * ref, const gchar * name, MmImage * img)
{
  const MmTensorInfo *t = mm_safetensors_find_tensor (ref, name);
  if (t == NULL || t->n_dims != 3 || t->shape[2] != 3)
    return FALSE;
  memset (img, 0, sizeof (*img));
  img->format = MM_PIXEL_RGB;
  img->height = t->shape[0];
  img->width = t->shape[1];
  img->planes[0] = t->data;
  img->strides[0] = img->width * 3;
  return TRUE;
}

static gboolean
check_preprocess (MmVisionModel * m, const gchar * label, MmSafetensors * ref,
    const gchar * img_name, const gchar * pv_name)
{
  MmImage img;
  if (!ref_image (ref, img_name, &img))
    return TRUE;
  GError *err = NULL;
  gsize n, n_got = 0;
  float *got = mm_vision_model_preprocess_views (m, &img, NULL, &n_got, &err);
  float *want = mm_test_ref_f32 (ref, pv_name, &n);
  gchar *what = g_strdup_printf ("%s %s", label, pv_name);
  if (got == NULL)
    g_printerr ("FAIL %s: %s\n", what, err->message);
  gboolean ok = got && compare (what, got, n_got, want, n, TOL_PIXELS);
  g_clear_error (&err);
  g_free (what);
  g_free (got);
  g_free (want);
  return ok;
}

static MmVisionModel *
load (MmEngine * e, const gchar * dir, const gchar * file)
{
  gchar *rel = g_build_filename (dir, file, NULL);
  gchar *path = mm_test_fixture (rel);
  GError *err = NULL;
  MmVisionModel *m = mm_vision_model_load (e, path, &err);
  if (m == NULL)
    g_printerr ("FAIL load %s: %s\n", rel, err->message);
  else
    g_print ("loaded %s: %d tokens x %d, input %d\n", mm_vision_model_id (m),
        mm_vision_model_n_tokens (m), mm_vision_model_dim (m),
        mm_vision_model_image_size (m));
  g_clear_error (&err);
  g_free (rel);
  g_free (path);
  return m;
}

/* Tower hidden states hidden_states.0 .. n under @prefix, from the
 * reference pixel values. */
static gboolean
check_tower (MmEngine * e, MmVisionModel * m, const gchar * label,
    MmSafetensors * ref, const gchar * prefix, gint n_layers, double tol)
{
  gsize n;
  float *pv = mm_test_ref_f32 (ref, "pixel_values", &n);
  GError *err = NULL;
  mm_vision_model_set_trace (m, TRUE);
  MmTensor *out = mm_vision_model_encode_pixels (m, pv, &err);
  g_free (pv);
  gboolean ok = out != NULL;
  if (!ok)
    g_printerr ("FAIL %s forward: %s\n", label, err->message);
  g_clear_error (&err);
  mm_tensor_free (out);
  for (gint i = 0; ok && i <= n_layers; i++) {
    gchar *name = g_strdup_printf ("hidden_states.%d", i);
    gchar *rname = g_strdup_printf ("%shidden_states.%d", prefix, i);
    ok &= check_trace (m, label, name, ref, rname, tol);
    g_free (name);
    g_free (rname);
  }
  return ok;
}

/* End to end from the uint8 image, traced and untraced. */
static gboolean
check_e2e (MmEngine * e, MmVisionModel * m, const gchar * label,
    MmSafetensors * ref, const gchar * img_name, const gchar * want,
    double tol)
{
  MmImage img;
  gboolean ok = TRUE;
  if (!ref_image (ref, img_name, &img))
    return FALSE;
  for (gint traced = 0; traced < 2 && ok; traced++) {
    GError *err = NULL;
    mm_vision_model_set_trace (m, traced);
    MmTensor *out = mm_vision_model_encode (m, &img, &err);
    gchar *what = g_strdup_printf ("%s e2e%s %s ->", label,
        traced ? " (traced)" : "", img_name);
    ok = check_output (what, e, out, err, ref, want, tol);
    g_free (what);
  }
  mm_vision_model_set_trace (m, FALSE);
  return ok;
}

static gboolean
test_tower (MmEngine * e, const gchar * dir, const gchar * file)
{
  MmSafetensors *ref = mm_test_ref_open (dir);
  MmVisionModel *m = load (e, dir, file);
  gchar *label = g_strdup_printf ("%s/%s", dir, file);
  gboolean ok = m != NULL;
  ok = ok && check_preprocess (m, label, ref, "image_rgb", "pixel_values");
  ok = ok && check_preprocess (m, label, ref, "image_rgb_alt",
      "pixel_values_alt");
  ok = ok && check_tower (e, m, label, ref, "", 2, TOL_F32);
  ok = ok && check_trace (m, label, "output", ref, "last_hidden_state",
      TOL_F32);
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "last_hidden_state",
      TOL_F32);
  ok = ok && check_e2e (e, m, label, ref, "image_rgb_alt",
      "last_hidden_state_alt", TOL_F32);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  g_free (label);
  return ok;
}

/* The traced connector output of one view vs rows of the reference's
 * output of all views. */
static gboolean
check_view_output (MmVisionModel * m, const gchar * label,
    MmSafetensors * ref, const gchar * ref_name, gint view)
{
  gint64 rows = 0, cols = 0;
  gsize n;
  GError *err = NULL;
  float *got = mm_vision_model_trace_get (m, "output", &rows, &cols, &err);
  float *want = mm_test_ref_f32 (ref, ref_name, &n);
  gchar *what = g_strdup_printf ("%s %s (view %d)", label, ref_name, view);
  gsize per = (gsize) rows * cols;
  gboolean ok = got && (view + 1) * per <= n
      && compare (what, got, per, want + view * per, per, TOL_F32);
  if (got == NULL)
    g_printerr ("FAIL %s: %s\n", what, err->message);
  g_clear_error (&err);
  g_free (what);
  g_free (got);
  g_free (want);
  return ok;
}

/* The fixture processor splits the 30x50 image into 2 x 3 tiles + the
 * global image: pixels of every view, the tower on view 0, the connector
 * output of all views end to end; without splitting the global image. */
static gboolean
test_idefics3 (MmEngine * e, const gchar * file)
{
  const gchar *dir = "idefics3";
  MmSafetensors *ref = mm_test_ref_open (dir);
  MmVisionModel *m = load (e, dir, file);
  gchar *label = g_strdup_printf ("%s/%s", dir, file);
  gboolean ok = m != NULL;
  ok = ok && check_preprocess (m, label, ref, "image_rgb", "pixel_values");
  ok = ok && check_tower (e, m, label, ref, "vision.", 2, TOL_F32);
  ok = ok && check_trace (m, label, "tower_out", ref,
      "vision.last_hidden_state", TOL_F32);
  ok = ok && check_view_output (m, label, ref, "connector_out", 0);
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "connector_out",
      TOL_F32);
  if (m)
    mm_vision_model_set_splitting (m, FALSE, 0);
  ok = ok && check_preprocess (m, label, ref, "image_rgb",
      "nosplit.pixel_values");
  ok = ok && check_e2e (e, m, label, ref, "image_rgb",
      "nosplit.connector_out", TOL_F32);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  g_free (label);
  return ok;
}

static gboolean
test_llava (MmEngine * e, const gchar * file, double tol)
{
  const gchar *dir = "llava_mlp";
  MmSafetensors *ref = mm_test_ref_open (dir);
  MmVisionModel *m = load (e, dir, file);
  gchar *label = g_strdup_printf ("%s/%s", dir, file);
  gboolean ok = m != NULL;
  ok = ok && check_preprocess (m, label, ref, "image_rgb", "pixel_values");
  /* feature layer -2 of 3: blocks 0 and 1 run */
  ok = ok && check_tower (e, m, label, ref, "vision.", 2, tol);
  ok = ok && check_trace (m, label, "connector.in", ref, "projector_in", tol);
  ok = ok && check_trace (m, label, "output", ref, "image_features", tol);
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "image_features", tol);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  g_free (label);
  return ok;
}

/* Idefics2's views: the processor's sizes, and the pixels of each equal
 * the unpadded part of the processor's padded batch. */
static gboolean
check_idefics2_views (MmVisionModel * m, const gchar * label,
    MmSafetensors * ref, const gchar * prefix)
{
  MmImage img;
  GError *err = NULL;
  MmVisionLayout lay;
  gchar *kp = g_strconcat (prefix, "pixel_values", NULL);
  gchar *ks = g_strconcat (prefix, "sizes", NULL);
  const MmTensorInfo *pi = mm_safetensors_find_tensor (ref, kp);
  gsize n, ns;
  float *want = mm_test_ref_f32 (ref, kp, &n);
  gint32 *sizes = mm_test_ref_i32 (ref, ks, &ns);
  float *got = ref_image (ref, "image_rgb", &img) ?
      mm_vision_model_preprocess_views (m, &img, &lay, NULL, &err) : NULL;
  gint nv = pi->shape[0], H = pi->shape[2], W = pi->shape[3];
  gboolean ok = got && lay.n_views == nv;
  double d = 0;
  gsize off = 0;
  for (gint v = 0; ok && v < nv; v++) {
    gint w, h;
    ok = mm_vision_model_view_size (m, v, &w, &h) && h == sizes[2 * v]
        && w == sizes[2 * v + 1];
    for (gint c = 0; ok && c < 3; c++)
      for (gint y = 0; y < h; y++)
        for (gint x = 0; x < w; x++)
          d = MAX (d, fabs (got[off + ((gsize) c * h + y) * w + x]
                  - want[(((gsize) v * 3 + c) * H + y) * W + x]));
    off += (gsize) 3 * w * h;
  }
  ok = ok && d == 0;
  g_print ("%s %s %s%d views, first %dx%d: pixels max-abs %.3g (tol 0)\n",
      ok ? "ok  " : "FAIL", label, prefix, got ? lay.n_views : 0,
      sizes[1], sizes[0], d);
  if (err)
    g_printerr ("  %s\n", err->message);
  g_clear_error (&err);
  g_free (got);
  g_free (want);
  g_free (sizes);
  g_free (kp);
  g_free (ks);
  return ok;
}

static gboolean
test_idefics2 (MmEngine * e)
{
  const gchar *dir = "idefics2_resampler";
  MmSafetensors *ref = mm_test_ref_open (dir);
  MmVisionModel *m = load (e, dir, "hf");
  gchar *label = g_strdup ("idefics2_resampler/hf");
  gboolean ok = m != NULL;
  if (ok) {
    gsize n;
    float *feat = mm_test_ref_f32 (ref, "features", &n);
    GError *err = NULL;
    mm_vision_model_set_trace (m, TRUE);
    MmTensor *out = mm_vision_model_encode_features (m, feat, n / 36, &err);
    g_free (feat);
    ok = out != NULL;
    if (!ok)
      g_printerr ("FAIL %s: %s\n", label, err->message);
    g_clear_error (&err);
    mm_tensor_free (out);
  }
  ok = ok && check_trace (m, label, "connector.projected", ref, "projected",
      TOL_F32);
  ok = ok && check_trace (m, label, "connector.layer_out.0", ref,
      "resampler.layer_out.0", TOL_F32);
  ok = ok && check_trace (m, label, "connector.layer_out.1", ref,
      "resampler.layer_out.1", TOL_F32);
  ok = ok && check_trace (m, label, "output", ref, "latents_out", TOL_F32);
  /* from the image: aspect kept (30x50 -> 21x35, a 3x5 grid on the 4x4
   * table) */
  ok = ok && check_idefics2_views (m, label, ref, "");
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "image_features",
      TOL_F32);
  /* split: four 15x25 quarters (2x3 patches; HF pads them in its batch and
   * masks the padding) + the whole image */
  mm_vision_model_set_splitting (m, TRUE, 0);
  ok = ok && check_idefics2_views (m, label, ref, "split.");
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "split.image_features",
      TOL_F32);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  g_free (label);
  return ok;
}

/* One image through MiniCPM-V's slicing vs the reference's views (the
 * processor's order: overview first; ours: slices row by row, then the
 * overview): layout, view sizes, pixels (exact) and each view's tokens
 * (the tower on the view's own grid, the resampler with that grid's
 * positions); the traced tower output of the last view (the overview). */
static gboolean
check_minicpmv_image (MmEngine * e, MmVisionModel * m, const gchar * label,
    MmSafetensors * ref, const gchar * name)
{
  gchar *k = g_strdup_printf ("%s.image_rgb", name);
  MmImage img;
  gboolean ok = ref_image (ref, k, &img);
  g_free (k);
  gsize n_sizes, n_lay, n_pix = 0;
  k = g_strdup_printf ("%s.sizes", name);
  gint32 *sizes = mm_test_ref_i32 (ref, k, &n_sizes);
  g_free (k);
  k = g_strdup_printf ("%s.layout", name);
  gint32 *lay_want = mm_test_ref_i32 (ref, k, &n_lay);
  g_free (k);
  GError *err = NULL;
  MmVisionLayout lay = { 0 };
  float *pix = ok ? mm_vision_model_preprocess_views (m, &img, NULL, &n_pix,
      &err) : NULL;
  mm_vision_model_set_trace (m, TRUE);
  MmTensor *out = pix ? mm_vision_model_encode_views (m, &img, &lay, &err)
      : NULL;
  mm_vision_model_set_trace (m, FALSE);
  float *tok = out ? mm_tensor_dup_f32 (e, out, &err) : NULL;
  gint nv = n_sizes / 2, nt = mm_vision_model_n_tokens (m);
  gint dim = mm_vision_model_dim (m);
  if (tok == NULL)
    g_printerr ("FAIL %s %s: %s\n", label, name, err ? err->message : "?");
  ok = tok && lay.n_views == nv && lay.rows == lay_want[0]
      && lay.cols == lay_want[1] && lay.tokens_per_view == nt
      && lay.global_view == (lay.rows ? lay.rows * lay.cols : 0);
  g_print ("%s %s %s: %d x %d slices, %d views (want %d x %d, %d)\n",
      ok ? "ok  " : "FAIL", label, name, lay.rows, lay.cols, lay.n_views,
      lay_want[0], lay_want[1], nv);
  gsize off = 0;
  for (gint i = 0; ok && i < nv; i++) {
    gint r = i == lay.global_view ? 0 : i + 1, w, h;
    gsize n;
    gchar *kp = g_strdup_printf ("%s.view.%d.pixel_values", name, r);
    gchar *kt = g_strdup_printf ("%s.view.%d.tokens", name, r);
    float *want_p = mm_test_ref_f32 (ref, kp, &n);
    ok = mm_vision_model_view_size (m, i, &w, &h) && w == sizes[2 * r + 1]
        && h == sizes[2 * r] && off + n <= n_pix;
    if (!ok)
      g_printerr ("FAIL %s: view %d is %dx%d, want %dx%d\n", kp, i, w, h,
          sizes[2 * r + 1], sizes[2 * r]);
    ok = ok && compare (kp, pix + off, n, want_p, n, TOL_PIXELS);
    off += n;
    float *want_t = mm_test_ref_f32 (ref, kt, &n);
    ok = ok && compare (kt, tok + (gsize) i * nt * dim, (gsize) nt * dim,
        want_t, n, TOL_F16);
    g_free (want_p);
    g_free (want_t);
    g_free (kp);
    g_free (kt);
  }
  ok = ok && off == n_pix;
  gchar *kt = g_strdup_printf ("%s.view.0.tower_out", name);
  ok = ok && check_trace (m, label, "tower_out", ref, kt, TOL_F16);
  g_free (kt);
  g_clear_error (&err);
  mm_tensor_free (out);
  g_free (tok);
  g_free (pix);
  g_free (sizes);
  g_free (lay_want);
  return ok;
}

static gboolean
test_minicpmv (MmEngine * e)
{
  const gchar *dir = "minicpmv_resampler";
  const gchar *file = "mmproj-minicpmv_resampler.gguf";
  MmSafetensors *ref = mm_test_ref_open (dir);
  MmVisionModel *m = load (e, dir, file);
  gchar *label = g_strdup_printf ("%s/%s", dir, file);
  gboolean ok = m != NULL && mm_vision_model_get_splitting (m);
  /* a 20x20 image: one view at the scale resolution, upscaled */
  ok = ok && check_preprocess (m, label, ref, "image_rgb", "pixel_values");
  /* F16 patch embedding in the file */
  ok = ok && check_tower (e, m, label, ref, "vision.", 2, TOL_F16);
  ok = ok && check_trace (m, label, "tower_out", ref,
      "vision.last_hidden_state", TOL_F16);
  ok = ok && check_trace (m, label, "connector.kv", ref, "resampler.kv",
      TOL_F16);
  ok = ok && check_trace (m, label, "connector.attn_out", ref,
      "resampler.attn_out", TOL_F16);
  ok = ok && check_trace (m, label, "output", ref, "resampler_out", TOL_F16);
  ok = ok && check_e2e (e, m, label, ref, "image_rgb", "resampler_out",
      TOL_F16);
  /* slices: 3 x 2 of 35x21 + a 42x21 overview; 1 x 3 + 14x49; no slices
   * (a small image upscaled to 42x21); splitting off */
  ok = ok && check_minicpmv_image (e, m, label, ref, "sliced");
  ok = ok && check_minicpmv_image (e, m, label, ref, "tall");
  ok = ok && check_minicpmv_image (e, m, label, ref, "small");
  if (ok)
    mm_vision_model_set_splitting (m, FALSE, 0);
  ok = ok && check_minicpmv_image (e, m, label, ref, "nosplit");
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  g_free (label);
  return ok;
}

/* Loading must fail cleanly, naming the file and the tensor or key. */
static gboolean
expect_load_error (MmEngine * e, const gchar * path, const gchar * label,
    const gchar * must_name)
{
  GError *err = NULL;
  MmVisionModel *m = mm_vision_model_load (e, path, &err);
  gboolean ok = m == NULL && err && strstr (err->message, must_name)
      && strstr (err->message, path);
  g_print ("%s %s: %s\n", ok ? "ok  " : "FAIL", label,
      err ? err->message : "loaded");
  mm_vision_model_free (m);
  g_clear_error (&err);
  return ok;
}

static gchar *
copy_dir (const gchar * src)
{
  gchar *dst = g_dir_make_tmp ("mm-vision-XXXXXX", NULL);
  GDir *d = g_dir_open (src, 0, NULL);
  const gchar *name;
  while ((name = g_dir_read_name (d))) {
    gchar *a = g_build_filename (src, name, NULL);
    gchar *b = g_build_filename (dst, name, NULL);
    gchar *data;
    gsize len;
    if (g_file_get_contents (a, &data, &len, NULL)) {
      g_file_set_contents (b, data, len, NULL);
      g_free (data);
    }
    g_free (a);
    g_free (b);
  }
  g_dir_close (d);
  return dst;
}

static void
remove_dir (const gchar * dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;
  while (d && (name = g_dir_read_name (d))) {
    gchar *p = g_build_filename (dir, name, NULL);
    g_remove (p);
    g_free (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

/* Replaces the first @from in @file by @to (same length or not). */
static void
patch_text (const gchar * file, const gchar * from, const gchar * to)
{
  gchar *data;
  g_file_get_contents (file, &data, NULL, NULL);
  gchar **parts = g_strsplit (data, from, 2);
  gchar *out = g_strjoinv (to, parts);
  g_file_set_contents (file, out, -1, NULL);
  g_strfreev (parts);
  g_free (out);
  g_free (data);
}

static gchar *
find_bytes (gchar * data, gsize len, const gchar * what)
{
  gsize n = strlen (what);
  for (gsize i = 0; i + n <= len; i++)
    if (memcmp (data + i, what, n) == 0)
      return data + i;
  g_printerr ("'%s' not in the file\n", what);
  exit (1);
}

static gboolean
test_bad_files (MmEngine * e)
{
  gboolean ok = TRUE;
  gchar *src = mm_test_fixture ("siglip/hf");
  gchar *dir = copy_dir (src);
  gchar *cfg = g_build_filename (dir, "config.json", NULL);
  /* a config that disagrees with the tensors */
  patch_text (cfg, "\"intermediate_size\": 72", "\"intermediate_size\": 80");
  ok &= expect_load_error (e, dir, "HF intermediate_size 80 vs tensors 72",
      "encoder.layers.0.mlp.fc1.weight");
  patch_text (cfg, "\"intermediate_size\": 80", "\"intermediate_size\": 72");
  patch_text (cfg, "gelu_pytorch_tanh", "relu_squared");
  ok &= expect_load_error (e, dir, "HF unknown activation", "hidden_act");
  patch_text (cfg, "relu_squared", "gelu_pytorch_tanh");
  patch_text (cfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
  ok &= expect_load_error (e, dir, "HF a block too many",
      "encoder.layers.2.");
  remove_dir (dir);
  g_free (dir);
  g_free (cfg);
  g_free (src);

  /* GGUF: feed_forward_length patched in place (u32 after its key) */
  gchar *gsrc = mm_test_fixture ("siglip/mmproj-siglip.gguf");
  gchar *data;
  gsize len;
  g_file_get_contents (gsrc, &data, &len, NULL);
  const gchar *key = "clip.vision.feed_forward_length";
  gchar *at = find_bytes (data, len, key);
  guint32 v = 64;
  memcpy (at + strlen (key) + 4, &v, 4);
  gchar *tmp = g_build_filename (g_get_tmp_dir (), "mm-vision-bad.gguf", NULL);
  g_file_set_contents (tmp, data, len, NULL);
  ok &= expect_load_error (e, tmp, "GGUF feed_forward_length 64 vs 72",
      "v.blk.0.ffn_up.weight");
  g_free (data);
  /* another input size on the same grid still loads */
  const gchar *k2 = "clip.vision.image_size";
  g_file_get_contents (gsrc, &data, &len, NULL);
  at = find_bytes (data, len, k2);
  v = 36;                       /* 36 / 7: a 5x5 grid, same table */
  memcpy (at + strlen (k2) + 4, &v, 4);
  g_file_set_contents (tmp, data, len, NULL);
  GError *err = NULL;
  MmVisionModel *m = mm_vision_model_load (e, tmp, &err);
  g_print ("%s GGUF image_size 36 (grid still 5x5): %s\n", m ? "ok  " : "FAIL",
      m ? "loads" : err->message);
  ok &= m != NULL;
  g_clear_error (&err);
  mm_vision_model_free (m);
  g_remove (tmp);
  g_free (tmp);
  g_free (data);
  g_free (gsrc);
  return ok;
}

/* Steady-state encoding reuses the pooled output buffer once the caller
 * freed the previous output, and keeps distinct buffers while it holds
 * them; the arena does not grow after the first frame. */
static gboolean
test_output_pool (MmEngine * e)
{
  MmSafetensors *ref = mm_test_ref_open ("siglip");
  MmVisionModel *m = load (e, "siglip", "hf");
  MmImage img;
  gboolean ok = m && ref_image (ref, "image_rgb", &img);
  GError *err = NULL;
  MmTensor *a = ok ? mm_vision_model_encode (m, &img, &err) : NULL;
  gsize arena = m ? mm_vision_model_scratch_bytes (m) : 0;
  MmTensor *b = a ? mm_vision_model_encode (m, &img, &err) : NULL;
  ok = a && b && a->buf != b->buf;
  cl_mem first = a ? a->buf : NULL;
  mm_tensor_free (a);
  MmTensor *c = ok ? mm_vision_model_encode (m, &img, &err) : NULL;
  ok = ok && c && c->buf == first
      && mm_vision_model_scratch_bytes (m) == arena;
  g_print ("%s output pool: held outputs get distinct buffers, a freed one "
      "is reused, arena stays %" G_GSIZE_FORMAT " bytes\n", ok ? "ok  " :
      "FAIL", arena);
  if (err)
    g_printerr ("  %s\n", err->message);
  g_clear_error (&err);
  mm_tensor_free (b);
  mm_tensor_free (c);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  return ok;
}

int
main (int argc, char **argv)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = TRUE;
  ok &= test_tower (e, "siglip", "mmproj-siglip.gguf");
  ok &= test_tower (e, "siglip", "hf");
  ok &= test_tower (e, "clip", "mmproj-clip.gguf");
  ok &= test_tower (e, "clip", "hf");
  ok &= test_idefics3 (e, "mmproj-idefics3.gguf");
  ok &= test_idefics3 (e, "hf");
  ok &= test_llava (e, "mmproj-llava_mlp.gguf", TOL_F16);
  ok &= test_llava (e, "hf", TOL_F32);
  ok &= test_idefics2 (e);
  ok &= test_minicpmv (e);
  ok &= test_bad_files (e);
  ok &= test_output_pool (e);
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
