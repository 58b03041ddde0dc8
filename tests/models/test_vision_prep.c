/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision preprocessing of every pixel format, with the SigLIP and CLIP
 * fixtures' processors (bicubic resize; shortest edge + centre crop):
 *   - packed RGB orders, padding bytes and padded strides give exactly the
 *     pixels of the plain RGB image;
 *   - alpha is blended onto white as transformers' convert_to_rgb does
 *     (exact, against the blend computed here);
 *   - GRAY8 equals the gray image replicated to RGB (exact);
 *   - I420 / NV12 (BT.601 and BT.709, limited and full range, odd sizes)
 *     equal the RGB path of the image converted here in double precision
 *     with the same chroma upsampling, within one 8-bit level before the
 *     resize (float vs double rounding at .5): max-abs 1/255/std after
 *     normalisation;
 *   - the Pillow resize itself is checked against the processors'
 *     pixel_values in test_vision, and here on pattern images of many
 *     sizes and aspects (image_prep/reference.safetensors, inputs
 *     recomputed by pattern_image()): every view of Idefics3's splitting
 *     (tiles + global image; without splitting; under a tile cap, which
 *     must equal the processor with the lowered longest edge), Idefics2's
 *     aspect-keeping resize with and without its quarters, SigLIP's square
 *     and CLIP's shortest edge + centre crop on 480x640 and 101x57: all
 *     exact (0 difference);
 *   - MiniCPM-V's slicing: the geometry (grid, overview, slice sizes) of
 *     700 sizes and settings, and every view's bytes of 7 pattern images
 *     (extreme aspects included), against the reference written from the
 *     processor's code in generate.py: exact.
 */
#include "mm-test-util.h"
#include "mm-test-ref.h"
#include "mm-vision.h"
#include "mm-image-prep.h"

#include <math.h>
#include <string.h>

static float *
prep (MmVisionModel * m, const MmImage * img)
{
  GError *err = NULL;
  float *p = mm_vision_model_preprocess (m, img, &err);
  if (p == NULL) {
    g_printerr ("preprocess: %s\n", err->message);
    g_error_free (err);
  }
  return p;
}

static gboolean
same (const gchar * what, const float *got, const float *want, gsize n,
    double tol)
{
  if (got == NULL || want == NULL) {
    g_printerr ("FAIL %s: no output\n", what);
    return FALSE;
  }
  double err = 0;
  for (gsize i = 0; i < n; i++)
    err = MAX (err, fabs ((double) got[i] - want[i]));
  gboolean ok = err <= tol;
  g_print ("%s %-40s max-abs %.3g (tol %.3g)\n", ok ? "ok  " : "FAIL", what,
      err, tol);
  return ok;
}

static MmImage
rgb_image (const guint8 * rgb, gint w, gint h)
{
  MmImage img = { 0 };
  img.format = MM_PIXEL_RGB;
  img.width = w;
  img.height = h;
  img.planes[0] = rgb;
  img.strides[0] = w * 3;
  return img;
}

/* Packed 4-byte layouts: byte offsets of R, G, B, A/X. */
static const struct
{
  MmPixelFormat f;
  const gchar *name;
  gint r, g, b, a;
  gboolean alpha;
} packed4[] = {
  {MM_PIXEL_RGBA, "RGBA", 0, 1, 2, 3, TRUE},
  {MM_PIXEL_BGRA, "BGRA", 2, 1, 0, 3, TRUE},
  {MM_PIXEL_ARGB, "ARGB", 1, 2, 3, 0, TRUE},
  {MM_PIXEL_ABGR, "ABGR", 3, 2, 1, 0, TRUE},
  {MM_PIXEL_RGBX, "RGBx", 0, 1, 2, 3, FALSE},
  {MM_PIXEL_BGRX, "BGRx", 2, 1, 0, 3, FALSE},
  {MM_PIXEL_XRGB, "xRGB", 1, 2, 3, 0, FALSE},
  {MM_PIXEL_XBGR, "xBGR", 3, 2, 1, 0, FALSE},
};

static gboolean
test_packed (MmVisionModel * m, const guint8 * rgb, gint w, gint h)
{
  gsize n = 3 * (gsize) mm_vision_model_image_size (m)
      * mm_vision_model_image_size (m);
  MmImage img = rgb_image (rgb, w, h);
  float *want = prep (m, &img);
  gboolean ok = want != NULL;
  /* padded stride, BGR */
  gint stride = w * 3 + 7;
  guint8 *buf = g_malloc0 ((gsize) stride * h);
  for (gint y = 0; y < h; y++)
    memcpy (buf + (gsize) y * stride, rgb + (gsize) y * w * 3, w * 3);
  img.strides[0] = stride;
  img.planes[0] = buf;
  float *got = prep (m, &img);
  ok &= same ("RGB, stride +7", got, want, n, 0);
  g_free (got);
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++)
      for (gint c = 0; c < 3; c++)
        buf[(gsize) y * stride + x * 3 + 2 - c] = rgb[((gsize) y * w + x) * 3
            + c];
  img.format = MM_PIXEL_BGR;
  got = prep (m, &img);
  ok &= same ("BGR, stride +7", got, want, n, 0);
  g_free (got);
  g_free (buf);

  /* 4-byte layouts: opaque alpha or junk in X, then real alpha */
  guint8 *b4 = g_malloc ((gsize) w * h * 4);
  guint8 *blend = g_malloc ((gsize) w * h * 3);
  for (guint f = 0; f < G_N_ELEMENTS (packed4); f++) {
    for (gint pass = 0; pass < (packed4[f].alpha ? 2 : 1); pass++) {
      for (gsize i = 0; i < (gsize) w * h; i++) {
        guint a = packed4[f].alpha ? (pass ? (i * 37) % 256 : 255) :
            (i * 91) % 256;
        b4[i * 4 + packed4[f].r] = rgb[i * 3];
        b4[i * 4 + packed4[f].g] = rgb[i * 3 + 1];
        b4[i * 4 + packed4[f].b] = rgb[i * 3 + 2];
        b4[i * 4 + packed4[f].a] = a;
        for (gint c = 0; c < 3; c++)    /* numpy's blend onto white */
          blend[i * 3 + c] = packed4[f].alpha ?
              (guint8) nearbyint (a / 255.0 * rgb[i * 3 + c]
              + (1.0 - a / 255.0) * 255.0) : rgb[i * 3 + c];
      }
      MmImage im4 = { 0 };
      im4.format = packed4[f].f;
      im4.width = w;
      im4.height = h;
      im4.planes[0] = b4;
      im4.strides[0] = w * 4;
      MmImage ib = rgb_image (blend, w, h);
      float *exp = prep (m, &ib);
      got = prep (m, &im4);
      gchar *what = g_strdup_printf ("%s%s", packed4[f].name,
          packed4[f].alpha ? (pass ? " (alpha)" : " (opaque)") : " (junk x)");
      ok &= same (what, got, exp, n, 0);
      g_free (what);
      g_free (got);
      g_free (exp);
    }
  }
  g_free (b4);
  g_free (blend);

  /* GRAY8 */
  guint8 *gray = g_malloc ((gsize) w * h), *g3 = g_malloc ((gsize) w * h * 3);
  for (gsize i = 0; i < (gsize) w * h; i++) {
    gray[i] = (rgb[i * 3] * 3 + rgb[i * 3 + 1] * 5 + rgb[i * 3 + 2]) / 9;
    g3[i * 3] = g3[i * 3 + 1] = g3[i * 3 + 2] = gray[i];
  }
  MmImage ig = { 0 };
  ig.format = MM_PIXEL_GRAY8;
  ig.width = w;
  ig.height = h;
  ig.planes[0] = gray;
  ig.strides[0] = w;
  MmImage ig3 = rgb_image (g3, w, h);
  float *exp = prep (m, &ig3);
  got = prep (m, &ig);
  ok &= same ("GRAY8", got, exp, n, 0);
  g_free (got);
  g_free (exp);
  g_free (gray);
  g_free (g3);
  g_free (want);
  return ok;
}

/* ---- Y'CbCr ---- */

typedef struct
{
  double kr, kb;
  gboolean full;
} Matrix;

static guint8
clamp8 (double v)
{
  return (guint8) CLAMP (nearbyint (v), 0, 255);
}

static void
rgb_to_ycbcr (const Matrix * mx, double r, double g, double b, double *y,
    double *cb, double *cr)
{
  double kg = 1 - mx->kr - mx->kb;
  double yy = mx->kr * r + kg * g + mx->kb * b;
  double u = (b - yy) / (2 * (1 - mx->kb)), v = (r - yy) / (2 * (1 - mx->kr));
  if (mx->full) {
    *y = yy, *cb = u + 128, *cr = v + 128;
  } else {
    *y = 16 + yy * 219 / 255, *cb = 128 + u * 224 / 255;
    *cr = 128 + v * 224 / 255;
  }
}

/* The converter's chroma sample at luma (x, y): horizontal co-sited,
 * vertical between rows, linear. */
static double
chroma_at (const guint8 * c, gint cstride, gint cstep, gint cw, gint ch,
    gint x, gint y)
{
  gint cx0 = x / 2, cx1 = (x & 1) ? MIN (cx0 + 1, cw - 1) : cx0;
  gint cy0 = y / 2, cy1 = CLAMP ((y & 1) ? cy0 + 1 : cy0 - 1, 0, ch - 1);
  double r0 = 0.5 * (c[cy0 * cstride + cx0 * cstep]
      + c[cy0 * cstride + cx1 * cstep]);
  double r1 = 0.5 * (c[cy1 * cstride + cx0 * cstep]
      + c[cy1 * cstride + cx1 * cstep]);
  return 0.75 * r0 + 0.25 * r1;
}

static gboolean
test_yuv (MmVisionModel * m, const guint8 * rgb, gint w, gint h,
    const Matrix * mx, MmColorMatrix cm, gboolean nv12, double tol)
{
  gsize n = 3 * (gsize) mm_vision_model_image_size (m)
      * mm_vision_model_image_size (m);
  gint cw = (w + 1) / 2, ch = (h + 1) / 2;
  guint8 *Y = g_malloc ((gsize) w * h), *U = g_malloc ((gsize) cw * ch);
  guint8 *V = g_malloc ((gsize) cw * ch), *UV = g_malloc ((gsize) cw * ch * 2);
  /* 4:2:0 by averaging each 2x2 block */
  for (gint y = 0; y < ch; y++)
    for (gint x = 0; x < cw; x++) {
      double su = 0, sv = 0;
      gint k = 0;
      for (gint dy = 0; dy < 2; dy++)
        for (gint dx = 0; dx < 2; dx++) {
          gint yy = MIN (2 * y + dy, h - 1), xx = MIN (2 * x + dx, w - 1);
          const guint8 *p = rgb + ((gsize) yy * w + xx) * 3;
          double l, u, v;
          rgb_to_ycbcr (mx, p[0], p[1], p[2], &l, &u, &v);
          su += u, sv += v, k++;
        }
      U[y * cw + x] = UV[y * cw * 2 + 2 * x] = clamp8 (su / k);
      V[y * cw + x] = UV[y * cw * 2 + 2 * x + 1] = clamp8 (sv / k);
    }
  for (gint i = 0; i < w * h; i++) {
    double l, u, v;
    rgb_to_ycbcr (mx, rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], &l, &u, &v);
    Y[i] = clamp8 (l);
  }
  /* the expected RGB: decoded here in double precision */
  guint8 *dec = g_malloc ((gsize) w * h * 3);
  double kg = 1 - mx->kr - mx->kb;
  double sy = mx->full ? 1 : 255.0 / 219, sc = mx->full ? 1 : 255.0 / 224;
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++) {
      double l = (Y[y * w + x] - (mx->full ? 0 : 16)) * sy;
      double u = (chroma_at (U, cw, 1, cw, ch, x, y) - 128) * sc;
      double v = (chroma_at (V, cw, 1, cw, ch, x, y) - 128) * sc;
      guint8 *o = dec + ((gsize) y * w + x) * 3;
      o[0] = clamp8 (l + 2 * (1 - mx->kr) * v);
      o[1] = clamp8 (l - 2 * mx->kb * (1 - mx->kb) / kg * u
          - 2 * mx->kr * (1 - mx->kr) / kg * v);
      o[2] = clamp8 (l + 2 * (1 - mx->kb) * u);
    }
  MmImage id = rgb_image (dec, w, h);
  float *want = prep (m, &id);
  MmImage img = { 0 };
  img.format = nv12 ? MM_PIXEL_NV12 : MM_PIXEL_I420;
  img.width = w;
  img.height = h;
  img.matrix = cm;
  img.full_range = mx->full;
  img.planes[0] = Y;
  img.strides[0] = w;
  if (nv12) {
    img.planes[1] = UV;
    img.strides[1] = cw * 2;
  } else {
    img.planes[1] = U;
    img.planes[2] = V;
    img.strides[1] = img.strides[2] = cw;
  }
  float *got = prep (m, &img);
  gchar *what = g_strdup_printf ("%s %dx%d %s %s range", nv12 ? "NV12" :
      "I420", w, h, cm == MM_COLOR_MATRIX_BT709 ? "BT.709" : "BT.601",
      mx->full ? "full" : "limited");
  gboolean ok = same (what, got, want, n, tol);
  g_free (what);
  g_free (got);
  g_free (want);
  g_free (Y);
  g_free (U);
  g_free (V);
  g_free (UV);
  g_free (dec);
  return ok;
}

static gboolean
test_model (MmEngine * e, const gchar * dir)
{
  gchar *rel = g_build_filename (dir, "hf", NULL);
  gchar *path = mm_test_fixture (rel);
  MmSafetensors *ref = mm_test_ref_open (dir);
  GError *err = NULL;
  MmVisionModel *m = mm_vision_model_load (e, path, &err);
  g_free (rel);
  g_free (path);
  if (m == NULL) {
    g_printerr ("FAIL load %s: %s\n", dir, err->message);
    g_error_free (err);
    mm_safetensors_free (ref);
    return FALSE;
  }
  g_print ("%s:\n", mm_vision_model_id (m));
  gboolean ok = TRUE;
  const gchar *names[] = { "image_rgb", "image_rgb_alt" };
  /* one 8-bit level of the normalised pixels: 1 / 255 / min std */
  double level = 1.0 / 255.0 / (g_str_equal (dir, "clip") ? 0.26130258 : 0.5)
      + 1e-6;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    const MmTensorInfo *t = mm_safetensors_find_tensor (ref, names[i]);
    gint h = t->shape[0], w = t->shape[1];
    const guint8 *rgb = t->data;
    ok &= test_packed (m, rgb, w, h);
    const Matrix bt601 = { 0.299, 0.114, FALSE }, bt709 = {
    0.2126, 0.0722, FALSE}, bt601f = {
    0.299, 0.114, TRUE};
    for (gint nv12 = 0; nv12 < 2; nv12++) {
      ok &= test_yuv (m, rgb, w, h, &bt601, MM_COLOR_MATRIX_BT601, nv12,
          level);
      ok &= test_yuv (m, rgb, w, h, &bt709, MM_COLOR_MATRIX_BT709, nv12,
          level);
      ok &= test_yuv (m, rgb, w, h, &bt601f, MM_COLOR_MATRIX_BT601, nv12,
          level);
    }
  }
  /* a bad image is an error, not a crash */
  MmImage bad = { 0 };
  bad.format = MM_PIXEL_RGB;
  bad.width = 8;
  bad.height = 8;
  float *p = mm_vision_model_preprocess (m, &bad, &err);
  if (p != NULL || err == NULL) {
    g_printerr ("FAIL: an image without planes was accepted\n");
    ok = FALSE;
  } else {
    g_print ("ok   missing plane: %s\n", err->message);
  }
  g_clear_error (&err);
  g_free (p);
  mm_vision_model_free (m);
  mm_safetensors_free (ref);
  return ok;
}

/* ---- processors on images of many sizes ---- */

/* tests/fixtures/generate.py pattern_image(): uint8 [h, w, 3]. */
static guint8 *
pattern_image (gint h, gint w)
{
  guint8 *img = g_malloc ((gsize) h * w * 3);
  for (guint32 y = 0; y < (guint32) h; y++)
    for (guint32 x = 0; x < (guint32) w; x++)
      for (guint32 c = 0; c < 3; c++) {
        guint32 hsh = (x * 73856093u) ^ (y * 19349663u) ^ (c * 83492791u);
        hsh = (hsh ^ (hsh >> 13)) * 1274126177u;
        hsh ^= hsh >> 16;
        guint32 v = x * 255u / (guint32) MAX (w - 1, 1) * (c + 1)
            + y * 255u / (guint32) MAX (h - 1, 1) + (hsh & 63u);
        img[((gsize) y * w + x) * 3 + c] = v & 255u;
      }
  return img;
}

/* Runs @spec on a pattern image of @h x @w; returns the views' floats. */
static float *
run_spec (MmEngine * e, const MmImagePrepSpec * spec, gint h, gint w,
    MmImageLayout * lay, const MmImageView ** views, MmImagePrep ** keep)
{
  GError *err = NULL;
  MmImagePrep *p = mm_image_prep_new (e, spec, &err);
  MmGraph *g = mm_graph_new (e);
  guint8 *rgb = pattern_image (h, w);
  MmImage img = rgb_image (rgb, w, h);
  float *out = NULL;
  MmTensor *t = p ? mm_image_prep_run (p, g, &img) : NULL;
  if (p && mm_graph_finish (g, &err))
    out = mm_tensor_dup_f32 (e, t, &err);
  if (out) {
    *views = mm_image_prep_views (p, lay);
    *keep = p;
  } else {
    g_printerr ("FAIL preprocessing %dx%d: %s\n", w, h, err ? err->message
        : "?");
    mm_image_prep_free (p);
  }
  g_clear_error (&err);
  mm_graph_free (g);
  g_free (rgb);
  return out;
}

static MmImagePrepSpec
idefics_spec (MmSplitKind kind, MmResample resample)
{
  MmImagePrepSpec s = { 0 };
  s.do_resize = s.do_rescale = s.do_normalize = TRUE;
  s.rescale_factor = 1.0 / 255.0;
  for (gint c = 0; c < 3; c++)
    s.mean[c] = s.std[c] = 0.5f;
  s.resample = resample;
  s.n_steps = 1;
  s.split_kind = kind;
  return s;
}

/* Idefics3ImageProcessor, tiles of 14 from a longest edge of 42. */
static gboolean
test_idefics3_sizes (MmEngine * e, MmSafetensors * ref, const gchar * name,
    gint h, gint w, gboolean split, gint max_tiles)
{
  MmImagePrepSpec s = idefics_spec (MM_SPLIT_IDEFICS3, MM_RESAMPLE_LANCZOS);
  s.steps[0] = (MmResizeStep) {
  MM_SIZE_LONGEST_EDGE, 0, 0, 42, 0};
  s.tile = 14;
  s.out_w = s.out_h = 14;
  s.do_split = split;
  s.max_tiles = max_tiles;
  gchar *kp = g_strdup_printf ("%s.%dx%d.pixel_values", name, h, w);
  gchar *kl = g_strdup_printf ("%s.%dx%d.layout", name, h, w);
  gsize n, nl;
  float *want = mm_test_ref_f32 (ref, kp, &n);
  gint32 *lay_want = mm_test_ref_i32 (ref, kl, &nl);
  MmImageLayout lay = { 0 };
  const MmImageView *views = NULL;
  MmImagePrep *p = NULL;
  float *got = run_spec (e, &s, h, w, &lay, &views, &p);
  gchar *what = g_strdup_printf ("%s %dx%d%s: %d x %d tiles, %d views", name,
      w, h, max_tiles ? " (max 4 tiles)" : "", lay.rows, lay.cols,
      lay.n_views);
  gboolean ok = got && lay.rows == lay_want[0] && lay.cols == lay_want[1]
      && lay.n_views == lay_want[2] && lay.global_view == (lay.rows ?
      lay.rows * lay.cols : 0)
      && views[lay.n_views - 1].offset + 3 * 14 * 14 == n;
  if (got && !ok)
    g_printerr ("FAIL %s: layout differs from the processor's %d x %d, %d "
        "views\n", what, lay_want[0], lay_want[1], lay_want[2]);
  ok = ok && same (what, got, want, n, 0);
  g_free (what);
  g_free (got);
  g_free (want);
  g_free (lay_want);
  g_free (kp);
  g_free (kl);
  mm_image_prep_free (p);
  return ok;
}

/* Idefics2ImageProcessor (shortest 8, longest 20): each view equals the
 * processor's unpadded region of it. */
static gboolean
test_idefics2_sizes (MmEngine * e, MmSafetensors * ref, const gchar * name,
    gint h, gint w, gboolean split)
{
  MmImagePrepSpec s = idefics_spec (MM_SPLIT_IDEFICS2, MM_RESAMPLE_BILINEAR);
  s.steps[0] = (MmResizeStep) {
  MM_SIZE_MIN_MAX_EDGE, 0, 0, 20, 8};
  s.do_split = split;
  gchar *kp = g_strdup_printf ("%s.%dx%d.pixel_values", name, h, w);
  gchar *ks = g_strdup_printf ("%s.%dx%d.sizes", name, h, w);
  const MmTensorInfo *pi = mm_safetensors_find_tensor (ref, kp);
  gsize n, ns;
  float *want = mm_test_ref_f32 (ref, kp, &n);
  gint32 *sizes = mm_test_ref_i32 (ref, ks, &ns);
  MmImageLayout lay = { 0 };
  const MmImageView *views = NULL;
  MmImagePrep *p = NULL;
  float *got = run_spec (e, &s, h, w, &lay, &views, &p);
  gint nv = pi->shape[0], H = pi->shape[2], W = pi->shape[3];
  gboolean ok = got && lay.n_views == nv && lay.rows == (split ? 2 : 0)
      && lay.global_view == (split ? 4 : 0);
  double err = 0;
  for (gint v = 0; ok && v < nv; v++) {
    ok = views[v].h == sizes[2 * v] && views[v].w == sizes[2 * v + 1];
    for (gint c = 0; ok && c < 3; c++)
      for (gint y = 0; y < views[v].h; y++)
        for (gint x = 0; x < views[v].w; x++)
          err = MAX (err, fabs (got[views[v].offset + ((gsize) c * views[v].h
                          + y) * views[v].w + x] - want[(((gsize) v * 3 + c)
                          * H + y) * W + x]));
  }
  ok = ok && err == 0;
  g_print ("%s %s %dx%d: %d views (%dx%d first)%*s max-abs %.3g (tol 0)\n",
      ok ? "ok  " : "FAIL", name, w, h, lay.n_views, got ? views[0].w : 0,
      got ? views[0].h : 0, 4, "", err);
  g_free (got);
  g_free (want);
  g_free (sizes);
  g_free (kp);
  g_free (ks);
  mm_image_prep_free (p);
  return ok;
}

/* MiniCPM-V's slicing geometry vs the processor's code (MiniCPMVSlicer
 * in generate.py) on 700 sizes (1 to 3999 pixels a side, extreme
 * aspects), scale resolutions 448 / 28 / 36, patches 14 / 7 / 5, 1 to 9
 * slices, with and without never_split: all equal. */
static gboolean
test_minicpmv_geometry (MmSafetensors * ref)
{
  const MmTensorInfo *t = mm_safetensors_find_tensor (ref,
      "minicpmv.geometry");
  gsize n;
  gint32 *g = mm_test_ref_i32 (ref, "minicpmv.geometry", &n);
  gint bad = 0, sliced = 0, cols = t ? t->shape[1] : 0;
  for (gsize i = 0; cols == 12 && i < n / 12; i++) {
    const gint32 *r = g + i * 12;
    MmSliceGeometry geo;
    mm_image_prep_minicpmv_geometry (r[0], r[1], r[2], r[3], r[4], r[5],
        &geo);
    gint got[6] = { geo.ov_w, geo.ov_h, geo.cols, geo.rows, geo.slice_w,
      geo.slice_h
    };
    sliced += geo.cols > 0;
    if (memcmp (got, r + 6, sizeof (got)) != 0 && bad++ < 5)
      g_printerr ("FAIL %dx%d (scale %d, patch %d, max %d%s): overview "
          "%dx%d, %d x %d slices of %dx%d; want %dx%d, %d x %d of %dx%d\n",
          r[0], r[1], r[2], r[3], r[4], r[5] ? ", never split" : "", got[0],
          got[1], got[2], got[3], got[4], got[5], r[6], r[7], r[8], r[9],
          r[10], r[11]);
  }
  gboolean ok = cols == 12 && n > 0 && bad == 0;
  g_print ("%s MiniCPM-V slicing geometry: %" G_GSIZE_FORMAT " sizes (%d "
      "sliced), %d differ\n", ok ? "ok  " : "FAIL", cols ? n / 12 : 0,
      sliced, bad);
  g_free (g);
  return ok;
}

static MmImagePrepSpec
minicpmv_spec (gint scale, gint patch)
{
  MmImagePrepSpec s = idefics_spec (MM_SPLIT_MINICPMV, MM_RESAMPLE_BICUBIC);
  s.steps[0] = (MmResizeStep) {
  MM_SIZE_FIXED, scale, scale, 0, 0};
  s.tile = scale;
  s.patch = patch;
  s.max_slices = 9;
  s.do_split = TRUE;
  return s;
}

/* MiniCPM-V's views of pattern images (scale 28, patch 7): sizes and
 * bytes of every view equal the processor's (ours: slices, then the
 * overview; the processor's: the overview first). */
static gboolean
test_minicpmv_sizes (MmEngine * e, MmSafetensors * ref, gint h, gint w)
{
  MmImagePrepSpec s = minicpmv_spec (28, 7);
  gchar *ks = g_strdup_printf ("minicpmv.%dx%d.sizes", h, w);
  gchar *kp = g_strdup_printf ("minicpmv.%dx%d.pixels_u8", h, w);
  const MmTensorInfo *pt = mm_safetensors_find_tensor (ref, kp);
  gsize ns;
  gint32 *sizes = mm_test_ref_i32 (ref, ks, &ns);
  MmImageLayout lay = { 0 };
  const MmImageView *views = NULL;
  MmImagePrep *p = NULL;
  float *got = run_spec (e, &s, h, w, &lay, &views, &p);
  gint nv = ns / 2, bad = -1;
  gboolean ok = got && pt && lay.n_views == nv
      && lay.global_view == (lay.rows ? nv - 1 : 0)
      && lay.rows * lay.cols == (lay.rows ? nv - 1 : 0);
  const guint8 *want = pt ? pt->data : NULL;
  gsize off = 0;
  for (gint r = 0; ok && r < nv; r++) {
    /* the processor's view r is our view i */
    gint i = r == 0 ? lay.global_view : r - 1;
    ok = views[i].h == sizes[2 * r] && views[i].w == sizes[2 * r + 1];
    gsize len = (gsize) 3 * views[i].w * views[i].h;
    for (gsize k = 0; ok && k < len; k++) {
      double v = rint ((got[views[i].offset + k] * 0.5 + 0.5) * 255.0);
      if (v != want[off + k]) {
        bad = r;
        ok = FALSE;
      }
    }
    off += len;
  }
  ok = ok && pt && off == (gsize) pt->shape[0];
  g_print ("%s MiniCPM-V %dx%d: %d x %d slices + overview %dx%d, %d views "
      "exact%s\n", ok ? "ok  " : "FAIL", w, h, lay.rows, lay.cols,
      got ? views[lay.global_view].w : 0, got ? views[lay.global_view].h : 0,
      lay.n_views, bad >= 0 ? " (a view differs)" : "");
  g_free (got);
  g_free (sizes);
  g_free (ks);
  g_free (kp);
  mm_image_prep_free (p);
  return ok;
}

/* The siglip/ and clip/ fixture models' processors (HF folder and GGUF
 * file) on larger and odd images. */
static gboolean
test_square_sizes (MmEngine * e, MmSafetensors * ref, const gchar * dir,
    const gchar * file, gint h, gint w)
{
  gchar *rel = g_build_filename (dir, file, NULL);
  gchar *path = mm_test_fixture (rel);
  GError *err = NULL;
  MmVisionModel *m = mm_vision_model_load (e, path, &err);
  gchar *kp = g_strdup_printf ("%s.%dx%d.pixel_values", dir, h, w);
  gsize n, n_got = 0;
  float *want = mm_test_ref_f32 (ref, kp, &n);
  guint8 *rgb = pattern_image (h, w);
  MmImage img = rgb_image (rgb, w, h);
  float *got = m ? mm_vision_model_preprocess_views (m, &img, NULL, &n_got,
      &err) : NULL;
  gchar *what = g_strdup_printf ("%s %dx%d", rel, w, h);
  if (got == NULL)
    g_printerr ("FAIL %s: %s\n", what, err ? err->message : "?");
  gboolean ok = got && n_got == n && same (what, got, want, n, 0);
  g_clear_error (&err);
  g_free (what);
  g_free (got);
  g_free (want);
  g_free (rgb);
  g_free (kp);
  g_free (rel);
  g_free (path);
  mm_vision_model_free (m);
  return ok;
}

/* Degenerate images: clear errors or valid views, never a crash. */
static gboolean
test_degenerate (MmEngine * e)
{
  gboolean ok = TRUE;
  static const gint sizes[][2] = { {1, 1}, {1, 3000}, {3000, 1}, {2, 1} };
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    gint h = sizes[i][0], w = sizes[i][1];
    for (gint kind = 0; kind < 4; kind++) {
      MmImagePrepSpec s = kind == 1 ? idefics_spec (MM_SPLIT_IDEFICS2,
          MM_RESAMPLE_BILINEAR) : idefics_spec (MM_SPLIT_IDEFICS3,
          MM_RESAMPLE_LANCZOS);
      if (kind >= 2)
        s = kind == 2 ? minicpmv_spec (28, 7) : minicpmv_spec (448, 14);
      else if (kind)
        s.steps[0] = (MmResizeStep) {
        MM_SIZE_MIN_MAX_EDGE, 0, 0, 20, 8};
      else {
        s.steps[0] = (MmResizeStep) {
        MM_SIZE_LONGEST_EDGE, 0, 0, 42, 0};
        s.tile = 14;
        s.out_w = s.out_h = 14;
      }
      s.do_split = TRUE;
      GError *err = NULL;
      MmImagePrep *p = mm_image_prep_new (e, &s, &err);
      MmGraph *g = mm_graph_new (e);
      guint8 *rgb = pattern_image (h, w);
      MmImage img = rgb_image (rgb, w, h);
      mm_image_prep_run (p, g, &img);
      gboolean done = mm_graph_finish (g, &err);
      MmImageLayout lay = { 0 };
      const MmImageView *v = done ? mm_image_prep_views (p, &lay) : NULL;
      /* a 1-pixel-wide image has no quarters; MiniCPM-V at 448 would
       * upscale a 3000x1 image to 23996x14 (the processor does), past
       * the 16384 limit; everything else works */
      gboolean want_error = (kind == 1 && (w < 2 || h < 2))
          || (kind == 3 && MAX (w, h) == 3000);
      gboolean good = want_error ? !done && err != NULL : done
          && lay.n_views > 0 && v[0].w > 0 && v[0].h > 0;
      g_print ("%s %s split of %dx%d: %s\n", good ? "ok  " : "FAIL",
          kind == 0 ? "Idefics3" : kind == 1 ? "Idefics2" : kind == 2 ?
          "MiniCPM-V 28" : "MiniCPM-V 448", w, h, done ? "done" :
          err->message);
      ok &= good;
      g_clear_error (&err);
      g_free (rgb);
      mm_graph_free (g);
      mm_image_prep_free (p);
    }
  }
  return ok;
}

static gboolean
test_processors (MmEngine * e)
{
  static const gint sizes[][2] = { {30, 50}, {50, 30}, {41, 19}, {61, 97},
  {9, 5}, {14, 14}, {480, 640}
  };
  MmSafetensors *ref = mm_test_ref_open ("image_prep");
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    ok &= test_idefics3_sizes (e, ref, "idefics3", sizes[i][0], sizes[i][1],
        TRUE, 0);
  ok &= test_idefics3_sizes (e, ref, "idefics3_nosplit", 61, 97, FALSE, 0);
  ok &= test_idefics3_sizes (e, ref, "idefics3_nosplit", 9, 5, FALSE, 0);
  ok &= test_idefics3_sizes (e, ref, "idefics3_cap4", 61, 97, TRUE, 4);
  ok &= test_idefics3_sizes (e, ref, "idefics3_cap4", 480, 640, TRUE, 4);
  for (guint i = 0; i < 5; i++) {
    static const gint s2[][2] = { {30, 50}, {9, 5}, {61, 97}, {41, 19},
    {480, 640}
    };
    ok &= test_idefics2_sizes (e, ref, "idefics2", s2[i][0], s2[i][1], FALSE);
    if (i < 4)
      ok &= test_idefics2_sizes (e, ref, "idefics2_split", s2[i][0],
          s2[i][1], TRUE);
  }
  ok &= test_minicpmv_geometry (ref);
  static const gint sm[][2] = { {45, 100}, {100, 45}, {13, 30}, {61, 97},
  {480, 640}, {1, 200}, {3, 1}
  };
  for (guint i = 0; i < G_N_ELEMENTS (sm); i++)
    ok &= test_minicpmv_sizes (e, ref, sm[i][0], sm[i][1]);
  static const gint s3[][2] = { {480, 640}, {101, 57} };
  for (guint i = 0; i < G_N_ELEMENTS (s3); i++) {
    ok &= test_square_sizes (e, ref, "siglip", "hf", s3[i][0], s3[i][1]);
    ok &= test_square_sizes (e, ref, "siglip", "mmproj-siglip.gguf",
        s3[i][0], s3[i][1]);
    ok &= test_square_sizes (e, ref, "clip", "hf", s3[i][0], s3[i][1]);
    ok &= test_square_sizes (e, ref, "clip", "mmproj-clip.gguf", s3[i][0],
        s3[i][1]);
  }
  mm_safetensors_free (ref);
  return ok;
}

int
main (int argc, char **argv)
{
  MmEngine *e = mm_test_engine ();
  gboolean ok = test_processors (e);
  ok &= test_degenerate (e);
  ok &= test_model (e, "siglip");
  ok &= test_model (e, "clip");
  mm_engine_unref (e);
  g_print ("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
