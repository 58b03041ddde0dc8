/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal: image preprocessing on the device, the way the Hugging Face
 * image processors of the PIL backend do it.
 *
 *   colour conversion to 8-bit RGB (alpha blended onto white, as
 *   transformers' convert_to_rgb does; Y'CbCr per MmImage's matrix/range)
 *   -> resizes of the whole image, each Pillow's separable resampling on
 *      8-bit planes (antialiasing filter taps per output pixel, 22-bit
 *      fixed point, rounded to a byte after each pass, Pillow's pass order)
 *   -> one or several views of that image (the processor's image
 *      splitting: Idefics3's tiles + global image, Idefics2's quarters +
 *      whole image), each a crop and / or further resizes
 *   -> optional centre crop (padding with 0 outside the image)
 *   -> rescale and normalise through a per-channel byte -> float table
 *      computed on the host in numpy's arithmetic (float64 rescale, float32
 *      normalise), so the result matches the processor bit for bit for RGB
 *      input.
 *
 * The filter taps and the views depend only on the input geometry: they
 * are computed on the host once per input size and kept on the device (one
 * geometry is cached; a stream of equal-sized frames uploads nothing but
 * pixels).
 */
#pragma once

#include "mm-vision.h"

G_BEGIN_DECLS

/* Pillow's resampling filter ids (PIL.Image.Resampling). */
typedef enum
{
  MM_RESAMPLE_NEAREST = 0,
  MM_RESAMPLE_LANCZOS = 1,
  MM_RESAMPLE_BILINEAR = 2,
  MM_RESAMPLE_BICUBIC = 3,
  MM_RESAMPLE_BOX = 4,
  MM_RESAMPLE_HAMMING = 5,
} MmResample;

typedef enum
{
  MM_SIZE_FIXED,                /* to w x h */
  MM_SIZE_SHORTEST_EDGE,        /* shortest edge to @edge, aspect kept
                                 * (transformers' default_to_square=False) */
  MM_SIZE_LONGEST_EDGE,         /* Idefics3: longest edge to @edge, other
                                 * edge rounded up to even, at most 4096 */
  MM_SIZE_MULTIPLE_OF,          /* Idefics3's resize_for_vision_encoder: both
                                 * edges up to multiples of @edge */
  MM_SIZE_MIN_MAX_EDGE,         /* Idefics2: longest edge down to @edge when
                                 * above it (aspect kept), then each edge at
                                 * least @min_edge */
} MmSizeRule;

typedef struct
{
  MmSizeRule rule;
  gint w, h, edge;
  gint min_edge;
} MmResizeStep;

/* How the processor cuts an image into several views when splitting is
 * on (MmImagePrepSpec.do_split). */
typedef enum
{
  MM_SPLIT_NONE,                /* one view */
  MM_SPLIT_IDEFICS3,            /* Idefics3ImageProcessor: steps[0] (longest
                                 * edge), both edges up to multiples of
                                 * @tile, tiles of @tile x @tile row by row,
                                 * then the whole image resized to
                                 * @tile x @tile (the global image) */
  MM_SPLIT_IDEFICS2,            /* Idefics2ImageProcessor: the four quarters
                                 * (h // 2, w // 2), then the whole image,
                                 * each through the resize steps */
  MM_SPLIT_MINICPMV,            /* MiniCPM-V's slice_image (llava-uhd): a
                                 * grid of slices of the image resized to a
                                 * patch-multiple refine size, row by row,
                                 * then the overview (the image resized
                                 * keeping its aspect to about @tile^2
                                 * pixels, edges multiples of @patch);
                                 * without splitting or when the image
                                 * holds at most @tile^2 pixels, the
                                 * overview alone (upscaled) */
} MmSplitKind;

typedef struct
{
  gboolean do_resize;
  MmResizeStep steps[3];
  gint n_steps;
  MmResample resample;
  gboolean do_center_crop;
  gint crop_w, crop_h;
  gboolean do_rescale, do_normalize;
  gdouble rescale_factor;
  gfloat mean[3], std[3];
  /* The model's input size: every view must come out this size; 0 x 0:
   * views keep the size the steps give them (Idefics2's aspect-keeping
   * resize, for towers with bucketed positions). */
  gint out_w, out_h;
  /* splitting */
  MmSplitKind split_kind;
  gboolean do_split;
  gint tile;                    /* IDEFICS3: max_image_size.longest_edge;
                                 * MINICPMV: scale_resolution */
  gint max_tiles;               /* IDEFICS3: at most this many tiles (0: no
                                 * cap); more would come out of the longest
                                 * edge setting, it is lowered to the largest
                                 * multiple of @tile that gives at most this
                                 * many (the processor with a smaller
                                 * size.longest_edge); MINICPMV: at most
                                 * this many slices (max_slice_nums lowered
                                 * to it) */
  gint patch;                   /* MINICPMV: edges are multiples of this */
  gint max_slices;              /* MINICPMV: the processor's max_slice_nums */
} MmImagePrepSpec;

/* Where the views of the last run sit in its output. */
typedef struct
{
  gint w, h;                    /* pixels */
  gsize offset;                 /* floats into the output tensor */
} MmImageView;

/* The layout of the last run: @n_views views (tiles row by row, then the
 * global image for IDEFICS3; quarters then the whole image for
 * IDEFICS2; slices row by row then the overview for MINICPMV, whose
 * processor puts the overview first); @rows x @cols tiles (0 x 0: none); @global_view: index of the
 * view of the whole image, -1 when none. */
typedef struct
{
  gint n_views;
  gint rows, cols;
  gint global_view;
} MmImageLayout;

typedef struct _MmImagePrep MmImagePrep;

MmImagePrep *mm_image_prep_new (MmEngine * engine, const MmImagePrepSpec * spec,
    GError ** error);
void mm_image_prep_free (MmImagePrep * p);

/* Splitting on or off and the tile cap, for the next runs (the spec's
 * other settings stay). */
void mm_image_prep_set_split (MmImagePrep * p, gboolean do_split,
    gint max_tiles);
const MmImagePrepSpec *mm_image_prep_get_spec (MmImagePrep * p);

/* Uploads @img (blocking copy of the host pixels) and enqueues the
 * preprocessing on @g.  Returns an arena tensor holding every view, each
 * [3, h, w] F32 at its offset (see mm_image_prep_views(); a single view is
 * shaped [3, h, w]), or the graph's dead tensor after an error (bad image,
 * size mismatch: the sticky error names it). */
MmTensor *mm_image_prep_run (MmImagePrep * p, MmGraph * g,
    const MmImage * img);

/* The views and layout of the last successful run's plan (valid until the
 * next run). */
const MmImageView *mm_image_prep_views (MmImagePrep * p,
    MmImageLayout * layout);

/* MiniCPM-V's slicing of a @w x @h image (image_processing_minicpmv.py
 * get_sliced_grid, find_best_resize, get_refine_size): the overview size,
 * the grid (@cols x @rows, 0 x 0: no slices) and the size of each slice
 * (the refine size divided by the grid).  @scale: scale_resolution,
 * @patch: patch_size; @never_split: the overview alone. */
typedef struct
{
  gint ov_w, ov_h;
  gint cols, rows;
  gint slice_w, slice_h;
} MmSliceGeometry;

void mm_image_prep_minicpmv_geometry (gint w, gint h, gint scale, gint patch,
    gint max_slices, gboolean never_split, MmSliceGeometry * geo);

/* Output size of resize step rules for an input of @w x @h (exposed for
 * tests). */
void mm_image_prep_step_size (const MmResizeStep * s, gint w, gint h,
    gint * ow, gint * oh);

G_END_DECLS
