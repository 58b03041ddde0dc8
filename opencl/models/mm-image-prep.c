/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image preprocessing: the host computes Pillow's filter taps per output
 * pixel (cheap, once per input geometry); the device converts colours and
 * runs the passes (kernels in kernels/image.cl).
 */
#include "mm-image-prep.h"
#include "mm-launch.h"

#include <math.h>
#include <string.h>

/* transformers' Idefics3 processor: MAX_IMAGE_SIZE */
#define IDEFICS3_MAX_IMAGE_SIZE 4096
#define PRECISION_BITS 22

typedef struct
{
  gboolean horizontal;
  gint in_w, in_h, out_w, out_h;
  gint ksize;
  MmTensor *bounds, *coeffs;    /* I32 [out, 2], I32 [out, ksize] */
} Pass;

/* One view of the plan: a region of the base image (the whole image after
 * the base resizes), further passes, and the crop the normalisation
 * takes. */
typedef struct
{
  gboolean from_source;         /* the region is of the input image, not of
                                 * the base */
  gint src_x, src_y, src_w, src_h;      /* region of the base image */
  guint first_pass, n_passes;   /* into passes */
  gint crop_top, crop_left;     /* after the passes */
  MmImageView out;
} View;

struct _MmImagePrep
{
  MmEngine *engine;
  MmImagePrepSpec spec;
  MmTensor *lut;                /* F32 [3, 256] */
  /* plan for the cached input geometry (plan_w 0: none) */
  gint plan_w, plan_h;
  GArray *passes;               /* Pass: the base's first, then the views' */
  guint n_base_passes;
  GArray *views;                /* View */
  GArray *out_views;            /* MmImageView, what callers see */
  MmImageLayout layout;
  gsize total;                  /* floats of the output */
};

/* ---- Pillow's filters (libImaging/Resample.c) ---- */

static double
filter_box (double x)
{
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

static double
filter_bilinear (double x)
{
  x = fabs (x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double
filter_hamming (double x)
{
  x = fabs (x);
  if (x == 0.0)
    return 1.0;
  if (x >= 1.0)
    return 0.0;
  x = x * G_PI;
  return sin (x) / x * (0.54f + 0.46f * cos (x));
}

static double
filter_bicubic (double x)
{
  const double a = -0.5;
  x = fabs (x);
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double
sinc (double x)
{
  if (x == 0.0)
    return 1.0;
  x = x * G_PI;
  return sin (x) / x;
}

static double
filter_lanczos (double x)
{
  return -3.0 <= x && x < 3.0 ? sinc (x) * sinc (x / 3) : 0.0;
}

static gboolean
get_filter (MmResample r, double (**f) (double), double *support)
{
  switch (r) {
    case MM_RESAMPLE_BOX:
      *f = filter_box, *support = 0.5;
      return TRUE;
    case MM_RESAMPLE_BILINEAR:
      *f = filter_bilinear, *support = 1.0;
      return TRUE;
    case MM_RESAMPLE_HAMMING:
      *f = filter_hamming, *support = 1.0;
      return TRUE;
    case MM_RESAMPLE_BICUBIC:
      *f = filter_bicubic, *support = 2.0;
      return TRUE;
    case MM_RESAMPLE_LANCZOS:
      *f = filter_lanczos, *support = 3.0;
      return TRUE;
    default:
      return FALSE;
  }
}

/* Taps of one pass in 22-bit fixed point: bounds [out, 2] (first input
 * index, count), coeffs [out, ksize].  Pillow's precompute_coeffs() and
 * normalize_coeffs_8bpc(); NEAREST is the 1-tap affine lookup of
 * ImagingTransformAffine (Geometry.c). */
static gint
compute_taps (gint in_size, gint out_size, MmResample r, gint32 ** bounds_out,
    gint32 ** k_out)
{
  double scale = (double) in_size / out_size;
  gint32 *bounds = g_new (gint32, 2 * out_size);
  if (r == MM_RESAMPLE_NEAREST) {
    gint32 *k = g_new (gint32, out_size);
    double xo = scale * 0.5;
    for (gint x = 0; x < out_size; x++, xo += scale) {
      bounds[2 * x] = CLAMP ((gint) xo, 0, in_size - 1);
      bounds[2 * x + 1] = 1;
      k[x] = 1 << PRECISION_BITS;
    }
    *bounds_out = bounds;
    *k_out = k;
    return 1;
  }
  double (*filter) (double) = NULL;
  double fsupport = 0;
  get_filter (r, &filter, &fsupport);
  double filterscale = MAX (scale, 1.0);
  double support = fsupport * filterscale;
  gint ksize = (gint) ceil (support) * 2 + 1;
  double *pre = g_new (double, ksize);
  gint32 *kk = g_new0 (gint32, (gsize) out_size * ksize);
  double inv_filterscale = 1.0 / filterscale;
  for (gint xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0;
    gint xmin = (gint) (center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    gint xmax = (gint) (center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (gint x = 0; x < xmax; x++) {
      pre[x] = filter ((x + xmin - center + 0.5) * inv_filterscale);
      ww += pre[x];
    }
    for (gint x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? pre[x] / ww : pre[x];
      kk[(gsize) xx * ksize + x] = v < 0 ?
          (gint32) (-0.5 + v * (1 << PRECISION_BITS)) :
          (gint32) (0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  g_free (pre);
  *bounds_out = bounds;
  *k_out = kk;
  return ksize;
}

/* ---- sizes (transformers' image processors) ---- */

void
mm_image_prep_step_size (const MmResizeStep * s, gint w, gint h, gint * ow,
    gint * oh)
{
  switch (s->rule) {
    case MM_SIZE_FIXED:
      *ow = s->w, *oh = s->h;
      return;
    case MM_SIZE_SHORTEST_EDGE:{
      /* get_resize_output_image_size(default_to_square=False) */
      gint shrt = MIN (w, h), lng = MAX (w, h);
      gint new_long = (gint) ((double) ((gint64) s->edge * lng) / shrt);
      if (w <= h)
        *ow = s->edge, *oh = new_long;
      else
        *oh = s->edge, *ow = new_long;
      return;
    }
    case MM_SIZE_LONGEST_EDGE:{
      /* _resize_output_size_rescale_to_max_len, then
       * _resize_output_size_scale_below_upper_bound */
      double aspect = (double) w / h;
      if (w >= h) {
        w = s->edge;
        h = (gint) (w / aspect);
        if (h % 2 != 0)
          h++;
      } else {
        h = s->edge;
        w = (gint) (h * aspect);
        if (w % 2 != 0)
          w++;
      }
      h = MAX (h, 1);
      w = MAX (w, 1);
      aspect = (double) w / h;
      if (w >= h && w > IDEFICS3_MAX_IMAGE_SIZE) {
        w = IDEFICS3_MAX_IMAGE_SIZE;
        h = (gint) (w / aspect);
      } else if (h > w && h > IDEFICS3_MAX_IMAGE_SIZE) {
        h = IDEFICS3_MAX_IMAGE_SIZE;
        w = (gint) (h * aspect);
      }
      *ow = MAX (w, 1);
      *oh = MAX (h, 1);
      return;
    }
    case MM_SIZE_MULTIPLE_OF:{
      double aspect = (double) w / h;
      gint e = s->edge;
      if (w >= h) {
        w = (gint) ceil ((double) w / e) * e;
        h = (gint) (w / aspect);
        h = (gint) ceil ((double) h / e) * e;
      } else {
        h = (gint) ceil ((double) h / e) * e;
        w = (gint) (h * aspect);
        w = (gint) ceil ((double) w / e) * e;
      }
      *ow = w, *oh = h;
      return;
    }
    case MM_SIZE_MIN_MAX_EDGE:{
      /* Idefics2's get_resize_output_image_size */
      double aspect = (double) w / h;
      if (w >= h && w > s->edge) {
        w = s->edge;
        h = (gint) (w / aspect);
      } else if (h > w && h > s->edge) {
        h = s->edge;
        w = (gint) (h * aspect);
      }
      *ow = MAX (w, s->min_edge);
      *oh = MAX (h, s->min_edge);
      return;
    }
  }
}

/* ---- object ---- */

static void
clear_plan (MmImagePrep * p)
{
  for (guint i = 0; i < p->passes->len; i++) {
    Pass *ps = &g_array_index (p->passes, Pass, i);
    mm_tensor_free (ps->bounds);
    mm_tensor_free (ps->coeffs);
  }
  g_array_set_size (p->passes, 0);
  g_array_set_size (p->views, 0);
  g_array_set_size (p->out_views, 0);
  p->n_base_passes = 0;
  p->plan_w = p->plan_h = 0;
  p->total = 0;
  memset (&p->layout, 0, sizeof (p->layout));
}

void
mm_image_prep_free (MmImagePrep * p)
{
  if (p == NULL)
    return;
  clear_plan (p);
  g_array_unref (p->passes);
  g_array_unref (p->views);
  g_array_unref (p->out_views);
  mm_tensor_free (p->lut);
  mm_engine_unref (p->engine);
  g_free (p);
}

MmImagePrep *
mm_image_prep_new (MmEngine * engine, const MmImagePrepSpec * spec,
    GError ** error)
{
  double (*f) (double);
  double support;
  if (spec->out_w < 0 || spec->out_h < 0 || (spec->out_w == 0) !=
      (spec->out_h == 0) || spec->n_steps < 0 || spec->n_steps > 3
      || (spec->split_kind == MM_SPLIT_IDEFICS3 && spec->tile <= 0)
      || (spec->split_kind == MM_SPLIT_MINICPMV && (spec->tile <= 0
              || spec->patch <= 0 || spec->max_slices <= 0))
      || spec->max_tiles < 0 || (spec->resample != MM_RESAMPLE_NEAREST
          && !get_filter (spec->resample, &f, &support))) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "image preprocessing: invalid settings (output %dx%d, resample %d, "
        "tile %d)", spec->out_w, spec->out_h, spec->resample, spec->tile);
    return NULL;
  }
  /* numpy: rescale in float64 then cast to float32; normalise in float32 */
  float lut[3 * 256];
  for (gint c = 0; c < 3; c++)
    for (gint v = 0; v < 256; v++) {
      float x = spec->do_rescale ? (float) (v * spec->rescale_factor) : v;
      if (spec->do_normalize)
        x = (x - spec->mean[c]) / spec->std[c];
      lut[c * 256 + v] = x;
    }
  gint64 n = 3 * 256;
  MmTensor *t = mm_tensor_upload (engine, MM_DTYPE_F32, 1, &n, lut,
      "image normalisation table", error);
  if (t == NULL)
    return NULL;
  MmImagePrep *p = g_new0 (MmImagePrep, 1);
  p->engine = mm_engine_ref (engine);
  p->spec = *spec;
  p->lut = t;
  p->passes = g_array_new (FALSE, TRUE, sizeof (Pass));
  p->views = g_array_new (FALSE, TRUE, sizeof (View));
  p->out_views = g_array_new (FALSE, TRUE, sizeof (MmImageView));
  return p;
}

void
mm_image_prep_set_split (MmImagePrep * p, gboolean do_split, gint max_tiles)
{
  max_tiles = MAX (max_tiles, 0);
  if (p->spec.do_split == do_split && p->spec.max_tiles == max_tiles)
    return;
  p->spec.do_split = do_split;
  p->spec.max_tiles = max_tiles;
  clear_plan (p);
}

const MmImagePrepSpec *
mm_image_prep_get_spec (MmImagePrep * p)
{
  return &p->spec;
}

/* ---- planning ---- */

static gboolean
add_pass (MmImagePrep * p, gboolean horizontal, gint in_w, gint in_h,
    gint out_w, gint out_h, GError ** error)
{
  Pass ps = { horizontal, in_w, in_h, out_w, out_h, 0, NULL, NULL };
  gint in = horizontal ? in_w : in_h, out = horizontal ? out_w : out_h;
  gint32 *bounds, *k;
  ps.ksize = compute_taps (in, out, p->spec.resample, &bounds, &k);
  gint64 sb[2] = { out, 2 }, sk[2] = { out, ps.ksize };
  ps.bounds = mm_tensor_upload (p->engine, MM_DTYPE_I32, 2, sb, bounds,
      "resample bounds", error);
  if (ps.bounds)
    ps.coeffs = mm_tensor_upload (p->engine, MM_DTYPE_I32, 2, sk, k,
        "resample taps", error);
  g_free (bounds);
  g_free (k);
  g_array_append_val (p->passes, ps);   /* freed by clear_plan either way */
  return ps.coeffs != NULL;
}

/* One Image.resize: skipped when the size does not change; otherwise
 * Pillow's pass order (vertical first when the height shrinks by more than
 * twice what the width does). */
static gboolean
plan_resize (MmImagePrep * p, gint w, gint h, gint ow, gint oh,
    GError ** error)
{
  gboolean need_h = ow != w, need_v = oh != h;
  gboolean h_first = !((h - oh) > 0 && (h - oh) > (w - ow) * 2);
  if (ow <= 0 || oh <= 0 || ow > 16384 || oh > 16384) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "image preprocessing: a %dx%d image would be resized to %dx%d", w, h,
        ow, oh);
    return FALSE;
  }
  if (!need_h && !need_v)
    return TRUE;
  if (h_first)
    return (!need_h || add_pass (p, TRUE, w, h, ow, h, error))
        && (!need_v || add_pass (p, FALSE, ow, h, ow, oh, error));
  return (!need_v || add_pass (p, FALSE, w, h, w, oh, error))
      && (!need_h || add_pass (p, TRUE, w, oh, ow, oh, error));
}

/* Plans @n resize steps from @w x @h; the result size in @w, @h. */
static gboolean
plan_steps (MmImagePrep * p, const MmResizeStep * steps, gint n, gint * w,
    gint * h, GError ** error)
{
  for (gint i = 0; i < n; i++) {
    gint ow, oh;
    mm_image_prep_step_size (&steps[i], *w, *h, &ow, &oh);
    if (!plan_resize (p, *w, *h, ow, oh, error))
      return FALSE;
    *w = ow, *h = oh;
  }
  return TRUE;
}

/* A view of the region (x, y, w, h) of the base image through @n steps. */
static gboolean
add_view (MmImagePrep * p, gint x, gint y, gint w, gint h,
    const MmResizeStep * steps, gint n, GError ** error)
{
  View v = { FALSE, x, y, w, h, p->passes->len, 0, 0, 0, {0, 0, 0} };
  if (w <= 0 || h <= 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "image preprocessing: the image is too small to split (a %dx%d "
        "part)", w, h);
    return FALSE;
  }
  if (!plan_steps (p, steps, n, &w, &h, error))
    return FALSE;
  v.n_passes = p->passes->len - v.first_pass;
  v.out.w = w, v.out.h = h;
  g_array_append_val (p->views, v);
  return TRUE;
}

/* The Idefics3 processor's grid for an image of @w x @h with the longest
 * edge setting @edge: rows x cols tiles (0 x 0: one view). */
static void
idefics3_grid (gint w, gint h, gint edge, gint tile, gint * rows, gint * cols)
{
  MmResizeStep s0 = { MM_SIZE_LONGEST_EDGE, 0, 0, edge, 0 };
  MmResizeStep s1 = { MM_SIZE_MULTIPLE_OF, 0, 0, tile, 0 };
  mm_image_prep_step_size (&s0, w, h, &w, &h);
  mm_image_prep_step_size (&s1, w, h, &w, &h);
  gboolean split = w > tile || h > tile;
  *rows = split ? h / tile : 0;
  *cols = split ? w / tile : 0;
}

/* Idefics3ImageProcessor with do_image_splitting: the longest edge to the
 * size setting (lowered under the tile cap), edges up to multiples of the
 * tile; when larger than one tile, tiles row by row then the global image
 * (that image resized to tile x tile), else that image alone. */
static gboolean
plan_idefics3_split (MmImagePrep * p, gint w, gint h, GError ** error)
{
  const MmImagePrepSpec *s = &p->spec;
  gint T = s->tile, edge = s->steps[0].edge, rows, cols;
  gboolean resize = s->do_resize && s->n_steps > 0
      && s->steps[0].rule == MM_SIZE_LONGEST_EDGE;
  if (resize) {
    idefics3_grid (w, h, edge, T, &rows, &cols);
    for (gint k = (edge + T - 1) / T - 1; s->max_tiles > 0 && k >= 1
        && rows * cols > s->max_tiles; k--) {
      edge = k * T;
      idefics3_grid (w, h, edge, T, &rows, &cols);
    }
  }
  MmResizeStep base[2] = { {MM_SIZE_LONGEST_EDGE, 0, 0, edge, 0},
  {MM_SIZE_MULTIPLE_OF, 0, 0, T, 0}
  };
  gint bw = w, bh = h;
  if (!plan_steps (p, resize ? base : base + 1, resize ? 2 : 1, &bw, &bh,
          error))
    return FALSE;
  p->n_base_passes = p->passes->len;
  if (bw <= T && bh <= T)
    return add_view (p, 0, 0, bw, bh, NULL, 0, error);
  p->layout.rows = bh / T;
  p->layout.cols = bw / T;
  for (gint r = 0; r < p->layout.rows; r++)
    for (gint c = 0; c < p->layout.cols; c++)
      if (!add_view (p, c * T, r * T, T, T, NULL, 0, error))
        return FALSE;
  MmResizeStep global = { MM_SIZE_FIXED, T, T, 0, 0 };
  p->layout.global_view = p->views->len;
  return add_view (p, 0, 0, bw, bh, &global, 1, error);
}

/* Idefics2ImageProcessor with do_image_splitting: the quarters, then the
 * whole image, each through the resize steps. */
static gboolean
plan_idefics2_split (MmImagePrep * p, gint w, gint h, GError ** error)
{
  const MmImagePrepSpec *s = &p->spec;
  gint n = s->do_resize ? s->n_steps : 0, mw = w / 2, mh = h / 2;
  p->layout.rows = p->layout.cols = 2;
  if (!add_view (p, 0, 0, mw, mh, s->steps, n, error)
      || !add_view (p, mw, 0, w - mw, mh, s->steps, n, error)
      || !add_view (p, 0, mh, mw, h - mh, s->steps, n, error)
      || !add_view (p, mw, mh, w - mw, h - mh, s->steps, n, error))
    return FALSE;
  p->layout.global_view = p->views->len;
  return add_view (p, 0, 0, w, h, s->steps, n, error);
}

/* MiniCPM-V's ensure_divide: Python's round() (half to even) of
 * @length / @patch, times @patch, at least @patch. */
static double
ensure_divide (double length, gint patch)
{
  return MAX (rint (length / patch) * patch, patch);
}

/* find_best_resize: about scale^2 pixels keeping the aspect (only when
 * larger, or @upscale), edges rounded to patch multiples.  Python's
 * int() truncates. */
static void
best_resize (double w, double h, gint scale, gint patch, gboolean upscale,
    gint * ow, gint * oh)
{
  if (w * h > (double) scale * scale || upscale) {
    double r = w / h;
    h = trunc (scale / sqrt (r));
    w = trunc (h * r);
  }
  *ow = (gint) ensure_divide (w, patch);
  *oh = (gint) ensure_divide (h, patch);
}

void
mm_image_prep_minicpmv_geometry (gint w, gint h, gint scale, gint patch,
    gint max_slices, gboolean never_split, MmSliceGeometry * geo)
{
  memset (geo, 0, sizeof (*geo));
  /* get_sliced_grid: about w h / scale^2 slices (one either side too),
   * the grid whose aspect is closest in log (first found on ties) */
  double log_ratio = log ((double) w / h);
  double ratio = (double) w * h / ((double) scale * scale);
  gint multiple = (gint) MIN (ceil (ratio), (double) max_slices);
  if (multiple <= 1 || never_split) {
    best_resize (w, h, scale, patch, TRUE, &geo->ov_w, &geo->ov_h);
    return;
  }
  double min_error = INFINITY;
  for (gint n = multiple - 1; n <= multiple + 1; n++) {
    if (n == 1 || n > max_slices)
      continue;
    for (gint m = 1; m <= n; m++) {
      if (n % m != 0)
        continue;
      double error = fabs (log_ratio - log ((double) m / (n / m)));
      if (error < min_error) {
        min_error = error;
        geo->cols = m;
        geo->rows = n / m;
      }
    }
  }
  best_resize (w, h, scale, patch, FALSE, &geo->ov_w, &geo->ov_h);
  /* get_refine_size: the image to a size the grid divides, each slice
   * then resized (upscaling allowed) like the overview */
  double gw = ensure_divide (w, geo->cols) / geo->cols;
  double gh = ensure_divide (h, geo->rows) / geo->rows;
  best_resize (gw, gh, scale, patch, TRUE, &geo->slice_w, &geo->slice_h);
}

/* MiniCPM-V slice_image: the slices, crops of the input resized to the
 * refine size (the base), row by row, then the overview, resized from the
 * input itself. */
static gboolean
plan_minicpmv_split (MmImagePrep * p, gint w, gint h, GError ** error)
{
  const MmImagePrepSpec *s = &p->spec;
  gint max_slices = s->max_tiles > 0 ? MIN (s->max_tiles, s->max_slices)
      : s->max_slices;
  MmSliceGeometry geo;
  mm_image_prep_minicpmv_geometry (w, h, s->tile, s->patch, max_slices,
      !s->do_split, &geo);
  MmResizeStep ov = { MM_SIZE_FIXED, geo.ov_w, geo.ov_h, 0, 0 };
  if (geo.cols == 0)
    return add_view (p, 0, 0, w, h, &ov, 1, error);
  if (!plan_resize (p, w, h, geo.slice_w * geo.cols, geo.slice_h * geo.rows,
          error))
    return FALSE;
  p->n_base_passes = p->passes->len;
  p->layout.rows = geo.rows;
  p->layout.cols = geo.cols;
  for (gint r = 0; r < geo.rows; r++)
    for (gint c = 0; c < geo.cols; c++)
      if (!add_view (p, c * geo.slice_w, r * geo.slice_h, geo.slice_w,
              geo.slice_h, NULL, 0, error))
        return FALSE;
  p->layout.global_view = p->views->len;
  if (!add_view (p, 0, 0, w, h, &ov, 1, error))
    return FALSE;
  g_array_index (p->views, View, p->views->len - 1).from_source = TRUE;
  return TRUE;
}

static gboolean
plan_views (MmImagePrep * p, gint w, gint h, GError ** error)
{
  const MmImagePrepSpec *s = &p->spec;
  p->layout.rows = p->layout.cols = 0;
  p->layout.global_view = 0;
  if (s->split_kind == MM_SPLIT_MINICPMV)
    return plan_minicpmv_split (p, w, h, error);
  if (s->do_split && s->split_kind == MM_SPLIT_IDEFICS3)
    return plan_idefics3_split (p, w, h, error);
  if (s->do_split && s->split_kind == MM_SPLIT_IDEFICS2)
    return plan_idefics2_split (p, w, h, error);
  if (s->split_kind == MM_SPLIT_IDEFICS3) {
    /* no splitting: longest edge, then tile x tile */
    MmResizeStep st[2] = { s->steps[0], {MM_SIZE_FIXED, s->tile, s->tile, 0,
            0}
    };
    gboolean resize = s->do_resize && s->n_steps > 0;
    return add_view (p, 0, 0, w, h, resize ? st : st + 1, resize ? 2 : 1,
        error);
  }
  return add_view (p, 0, 0, w, h, s->steps, s->do_resize ? s->n_steps : 0,
      error);
}

static gboolean
make_plan (MmImagePrep * p, gint w, gint h, GError ** error)
{
  const MmImagePrepSpec *s = &p->spec;
  clear_plan (p);
  if (!plan_views (p, w, h, error)) {
    clear_plan (p);
    return FALSE;
  }
  for (guint i = 0; i < p->views->len; i++) {
    View *v = &g_array_index (p->views, View, i);
    gint vw = v->out.w, vh = v->out.h;
    if (s->do_center_crop) {
      /* transformers' center_crop: top = (h - crop_h) // 2 (floor) */
      v->crop_top = (gint) floor ((vh - s->crop_h) / 2.0);
      v->crop_left = (gint) floor ((vw - s->crop_w) / 2.0);
      v->out.w = s->crop_w, v->out.h = s->crop_h;
    }
    if (s->out_w > 0 && (v->out.w != s->out_w || v->out.h != s->out_h)) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "image preprocessing: a %dx%d image becomes %dx%d, the model "
          "takes %dx%d", w, h, v->out.w, v->out.h, s->out_w, s->out_h);
      clear_plan (p);
      return FALSE;
    }
    v->out.offset = p->total;
    p->total += (gsize) 3 * v->out.w * v->out.h;
    g_array_append_val (p->out_views, v->out);
  }
  p->layout.n_views = p->views->len;
  if (p->layout.rows == 0)
    p->layout.global_view = 0;
  p->plan_w = w;
  p->plan_h = h;
  return TRUE;
}

const MmImageView *
mm_image_prep_views (MmImagePrep * p, MmImageLayout * layout)
{
  if (layout)
    *layout = p->layout;
  return (const MmImageView *) p->out_views->data;
}

/* ---- running ---- */

static MmTensor *
byte_tensor (MmGraph * g, gsize nbytes)
{
  gint64 n = (nbytes + 3) / 4;
  return mm_graph_tensor (g, MM_DTYPE_F32, 1, &n);
}

typedef struct
{
  gint n_planes;
  gsize row_bytes[3], rows[3];
} Layout;

static gboolean
image_layout (const MmImage * img, Layout * l)
{
  gint w = img->width, h = img->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  memset (l, 0, sizeof (*l));
  switch (img->format) {
    case MM_PIXEL_RGB:
    case MM_PIXEL_BGR:
      l->n_planes = 1, l->row_bytes[0] = (gsize) w * 3, l->rows[0] = h;
      break;
    case MM_PIXEL_RGBA:
    case MM_PIXEL_BGRA:
    case MM_PIXEL_RGBX:
    case MM_PIXEL_BGRX:
    case MM_PIXEL_XRGB:
    case MM_PIXEL_XBGR:
    case MM_PIXEL_ARGB:
    case MM_PIXEL_ABGR:
      l->n_planes = 1, l->row_bytes[0] = (gsize) w * 4, l->rows[0] = h;
      break;
    case MM_PIXEL_GRAY8:
      l->n_planes = 1, l->row_bytes[0] = w, l->rows[0] = h;
      break;
    case MM_PIXEL_I420:
      l->n_planes = 3, l->row_bytes[0] = w, l->rows[0] = h;
      l->row_bytes[1] = l->row_bytes[2] = cw, l->rows[1] = l->rows[2] = ch;
      break;
    case MM_PIXEL_NV12:
      l->n_planes = 2, l->row_bytes[0] = w, l->rows[0] = h;
      l->row_bytes[1] = (gsize) cw * 2, l->rows[1] = ch;
      break;
    default:
      return FALSE;
  }
  return TRUE;
}

/* Copies the planes into one device buffer with tight rows. */
static MmTensor *
upload_image (MmGraph * g, const MmImage * img, const Layout * l,
    gsize * plane_off)
{
  gsize total = 0;
  for (gint i = 0; i < l->n_planes; i++) {
    plane_off[i] = total;
    total += l->row_bytes[i] * l->rows[i];
  }
  MmTensor *raw = byte_tensor (g, total);
  if (!mm_graph_ok (g))
    return raw;
  MmEngine *e = mm_graph_engine (g);
  cl_int rc = CL_SUCCESS;
  mm_engine_lock (e);
  for (gint i = 0; i < l->n_planes && rc == CL_SUCCESS; i++) {
    size_t buf_origin[3] = { raw->offset + plane_off[i], 0, 0 };
    size_t host_origin[3] = { 0, 0, 0 };
    size_t region[3] = { l->row_bytes[i], l->rows[i], 1 };
    rc = clEnqueueWriteBufferRect (mm_engine_queue (e), raw->buf, CL_TRUE,
        buf_origin, host_origin, region, l->row_bytes[i], 0,
        img->strides[i], 0, img->planes[i], 0, NULL, NULL);
  }
  mm_engine_unlock (e);
  GError *err = NULL;
  if (!mm_cl_check (rc, "image upload", &err))
    mm_graph_fail (g, err);
  return raw;
}

/* Byte offsets of R, G, B and alpha (-1: none) in 3/4-byte pixels. */
static void
packed_offsets (MmPixelFormat f, gint * bpp, gint * r, gint * g, gint * b,
    gint * a)
{
  static const gint8 tab[][5] = {
    [MM_PIXEL_RGB] = {3, 0, 1, 2, -1},
    [MM_PIXEL_BGR] = {3, 2, 1, 0, -1},
    [MM_PIXEL_RGBA] = {4, 0, 1, 2, 3},
    [MM_PIXEL_BGRA] = {4, 2, 1, 0, 3},
    [MM_PIXEL_RGBX] = {4, 0, 1, 2, -1},
    [MM_PIXEL_BGRX] = {4, 2, 1, 0, -1},
    [MM_PIXEL_XRGB] = {4, 1, 2, 3, -1},
    [MM_PIXEL_XBGR] = {4, 3, 2, 1, -1},
    [MM_PIXEL_ARGB] = {4, 1, 2, 3, 0},
    [MM_PIXEL_ABGR] = {4, 3, 2, 1, 0},
  };
  *bpp = tab[f][0], *r = tab[f][1], *g = tab[f][2], *b = tab[f][3];
  *a = tab[f][4];
}

/* Luma coefficients (Kr, Kb) of a Y'CbCr matrix (ITU-R BT.601, BT.709,
 * BT.2020; SMPTE 240M; FCC 73.682). */
void
mm_color_matrix_coefficients (MmColorMatrix matrix, double *kr, double *kb)
{
  switch (matrix) {
    case MM_COLOR_MATRIX_BT709:
      *kr = 0.2126, *kb = 0.0722;
      return;
    case MM_COLOR_MATRIX_BT2020:
      *kr = 0.2627, *kb = 0.0593;
      return;
    case MM_COLOR_MATRIX_SMPTE240M:
      *kr = 0.212, *kb = 0.087;
      return;
    case MM_COLOR_MATRIX_FCC:
      *kr = 0.30, *kb = 0.11;
      return;
    case MM_COLOR_MATRIX_BT601:
    default:
      *kr = 0.299, *kb = 0.114;
      return;
  }
}

/* Y'CbCr -> R'G'B' matrix (rows R, G, B; columns Y, Cb, Cr) with the
 * range expansion folded in. */
static void
yuv_matrix (const MmImage * img, float m[9], float *yoff)
{
  double kr, kb;
  mm_color_matrix_coefficients (img->matrix, &kr, &kb);
  double kg = 1.0 - kr - kb;
  double sy = img->full_range ? 1.0 : 255.0 / 219.0;
  double sc = img->full_range ? 1.0 : 255.0 / 224.0;
  *yoff = img->full_range ? 0.0f : 16.0f;
  double mm[9] = {
    sy, 0.0, 2.0 * (1.0 - kr) * sc,
    sy, -2.0 * kb * (1.0 - kb) / kg * sc, -2.0 * kr * (1.0 - kr) / kg * sc,
    sy, 2.0 * (1.0 - kb) * sc, 0.0,
  };
  for (gint i = 0; i < 9; i++)
    m[i] = mm[i];
}

static MmTensor *
to_rgb (MmGraph * g, const MmImage * img, MmTensor * raw, const Layout * l,
    const gsize * off)
{
  gint w = img->width, h = img->height;
  MmTensor *rgb = byte_tensor (g, (gsize) 3 * w * h);
  gsize gws[2] = { w, h };
  if (img->format == MM_PIXEL_GRAY8) {
    MM_LAUNCH (g, "kernel_image_gray_to_rgb", 2, gws, FALSE, MM_TENSOR (raw),
        MM_UINT (l->row_bytes[0]), MM_TENSOR (rgb), MM_UINT (w), MM_UINT (h));
  } else if (img->format == MM_PIXEL_I420 || img->format == MM_PIXEL_NV12) {
    gboolean nv12 = img->format == MM_PIXEL_NV12;
    float m[9], yoff;
    yuv_matrix (img, m, &yoff);
    gsize gws_c[2] = { (w + 1) / 2, h };      /* two pixels per item */
    MM_LAUNCH (g, "kernel_image_yuv420_to_rgb", 2, gws_c, FALSE,
        MM_TENSOR (raw), MM_UINT (l->row_bytes[0]), MM_UINT (off[1]),
        MM_UINT (nv12 ? off[1] + 1 : off[2]), MM_UINT (l->row_bytes[1]),
        MM_UINT (nv12 ? 2 : 1), MM_TENSOR (rgb), MM_UINT (w), MM_UINT (h),
        MM_FLOAT (yoff), MM_FLOAT (m[0]), MM_FLOAT (m[1]), MM_FLOAT (m[2]),
        MM_FLOAT (m[3]), MM_FLOAT (m[4]), MM_FLOAT (m[5]), MM_FLOAT (m[6]),
        MM_FLOAT (m[7]), MM_FLOAT (m[8]));
  } else {
    gint bpp, r, gg, b, a;
    packed_offsets (img->format, &bpp, &r, &gg, &b, &a);
    MM_LAUNCH (g, "kernel_image_packed_to_rgb", 2, gws, FALSE,
        MM_TENSOR (raw), MM_UINT (l->row_bytes[0]), MM_UINT (bpp), MM_UINT (r),
        MM_UINT (gg), MM_UINT (b), MM_INT (a), MM_TENSOR (rgb), MM_UINT (w),
        MM_UINT (h));
  }
  return rgb;
}

static MmTensor *
run_pass (MmGraph * g, const Pass * ps, MmTensor * in)
{
  MmTensor *out = byte_tensor (g, (gsize) 3 * ps->out_w * ps->out_h);
  if (ps->horizontal) {
    gsize gws[2] = { ps->out_w, (gsize) 3 * ps->in_h };
    MM_LAUNCH (g, "kernel_resample_h_u8", 2, gws, FALSE, MM_TENSOR (in),
        MM_TENSOR (out), MM_TENSOR (ps->bounds), MM_TENSOR (ps->coeffs),
        MM_UINT (ps->ksize), MM_UINT (ps->in_w), MM_UINT (ps->out_w));
  } else {
    gsize gws[3] = { ps->in_w, ps->out_h, 3 };
    MM_LAUNCH (g, "kernel_resample_v_u8", 3, gws, FALSE, MM_TENSOR (in),
        MM_TENSOR (out), MM_TENSOR (ps->bounds), MM_TENSOR (ps->coeffs),
        MM_UINT (ps->ksize), MM_UINT (ps->in_w), MM_UINT (ps->in_h),
        MM_UINT (ps->out_h));
  }
  return out;
}

/* One view: crop the region when further passes follow, resize, then
 * crop + normalise into @out at the view's offset.  @base is the image
 * after the base passes, @src the input image (RGB). */
static void
run_view (MmImagePrep * p, MmGraph * g, const View * v, MmTensor * base,
    gint bw, gint bh, MmTensor * src, gint sw, gint sh, MmTensor * out)
{
  if (v->from_source)
    base = src, bw = sw, bh = sh;
  MmTensor *x = base;
  gint w = bw, h = bh, top = v->crop_top, left = v->crop_left;
  gboolean whole = v->src_x == 0 && v->src_y == 0 && v->src_w == bw
      && v->src_h == bh;
  if (v->n_passes == 0) {
    top += v->src_y;
    left += v->src_x;
  } else if (!whole) {
    x = byte_tensor (g, (gsize) 3 * v->src_w * v->src_h);
    gsize gws[3] = { v->src_w, v->src_h, 3 };
    MM_LAUNCH (g, "kernel_image_crop_u8", 3, gws, FALSE, MM_TENSOR (base),
        MM_UINT (bw), MM_UINT (bh), MM_UINT (v->src_x), MM_UINT (v->src_y),
        MM_TENSOR (x), MM_UINT (v->src_w), MM_UINT (v->src_h));
    w = v->src_w, h = v->src_h;
  }
  for (guint i = 0; i < v->n_passes; i++) {
    const Pass *ps = &g_array_index (p->passes, Pass, v->first_pass + i);
    x = run_pass (g, ps, x);
    w = ps->out_w, h = ps->out_h;
  }
  MmTensor y = *out;
  y.offset += v->out.offset * sizeof (float);
  gsize gws[3] = { v->out.w, v->out.h, 3 };
  MM_LAUNCH (g, "kernel_image_normalize", 3, gws, FALSE, MM_TENSOR (x),
      MM_UINT (w), MM_UINT (h), MM_INT (top), MM_INT (left),
      MM_TENSOR (p->lut), MM_TENSOR (&y), MM_UINT (v->out.w),
      MM_UINT (v->out.h));
}

MmTensor *
mm_image_prep_run (MmImagePrep * p, MmGraph * g, const MmImage * img)
{
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  Layout l;
  if (img == NULL || img->width <= 0 || img->height <= 0
      || img->width > 16384 || img->height > 16384
      || !image_layout (img, &l)) {
    mm_graph_failf (g, "image preprocessing: unsupported image (format %d, "
        "%dx%d)", img ? (gint) img->format : -1, img ? img->width : 0,
        img ? img->height : 0);
    return mm_graph_dead (g);
  }
  for (gint i = 0; i < l.n_planes; i++)
    if (img->planes[i] == NULL || img->strides[i] < (gint) l.row_bytes[i]) {
      mm_graph_failf (g, "image preprocessing: plane %d of a %dx%d image "
          "is missing or its stride %d is below %" G_GSIZE_FORMAT, i,
          img->width, img->height, img->strides[i], l.row_bytes[i]);
      return mm_graph_dead (g);
    }
  if (p->plan_w != img->width || p->plan_h != img->height) {
    GError *err = NULL;
    if (!make_plan (p, img->width, img->height, &err)) {
      mm_graph_fail (g, err);
      return mm_graph_dead (g);
    }
  }
  gsize off[3];
  MmTensor *raw = upload_image (g, img, &l, off);
  MmTensor *rgb = to_rgb (g, img, raw, &l, off), *x = rgb;
  gint w = img->width, h = img->height;
  for (guint i = 0; i < p->n_base_passes; i++) {
    const Pass *ps = &g_array_index (p->passes, Pass, i);
    x = run_pass (g, ps, x);
    w = ps->out_w, h = ps->out_h;
  }
  const View *v0 = &g_array_index (p->views, View, 0);
  gint64 s1[3] = { 3, v0->out.h, v0->out.w }, sn = p->total;
  MmTensor *y = p->views->len == 1 ? mm_graph_tensor (g, MM_DTYPE_F32, 3, s1)
      : mm_graph_tensor (g, MM_DTYPE_F32, 1, &sn);
  for (guint i = 0; i < p->views->len && mm_graph_ok (g); i++)
    run_view (p, g, &g_array_index (p->views, View, i), x, w, h, rgb,
        img->width, img->height, y);
  return y;
}
