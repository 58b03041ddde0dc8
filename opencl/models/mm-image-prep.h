/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal: image preprocessing on the device, the way the Hugging Face
 * image processors of the PIL backend do it.
 *
 *   colour conversion to 8-bit RGB (alpha blended onto white, as
 *   transformers' convert_to_rgb does; Y'CbCr per MmImage's matrix/range)
 *   -> one or two resizes, each Pillow's separable resampling on 8-bit
 *      planes (antialiasing filter taps per output pixel, 22-bit fixed
 *      point, rounded to a byte after each pass, Pillow's pass order)
 *   -> optional centre crop (padding with 0 outside the image)
 *   -> rescale and normalise through a per-channel byte -> float table
 *      computed on the host in numpy's arithmetic (float64 rescale, float32
 *      normalise), so the result matches the processor bit for bit for RGB
 *      input.
 *
 * The filter taps depend only on the input geometry: they are computed on
 * the host once per input size and kept on the device (one geometry is
 * cached; a stream of equal-sized frames uploads nothing but pixels).
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
} MmSizeRule;

typedef struct
{
  MmSizeRule rule;
  gint w, h, edge;
} MmResizeStep;

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
  gint out_w, out_h;            /* the model's input size */
} MmImagePrepSpec;

typedef struct _MmImagePrep MmImagePrep;

MmImagePrep *mm_image_prep_new (MmEngine * engine, const MmImagePrepSpec * spec,
    GError ** error);
void mm_image_prep_free (MmImagePrep * p);

/* Uploads @img (blocking copy of the host pixels) and enqueues the
 * preprocessing on @g.  Returns an arena tensor [3, out_h, out_w] (F32),
 * or the graph's dead tensor after an error (bad image, size mismatch:
 * the sticky error names it). */
MmTensor *mm_image_prep_run (MmImagePrep * p, MmGraph * g,
    const MmImage * img);

/* Output size of resize step rules for an input of @w x @h (exposed for
 * tests). */
void mm_image_prep_step_size (const MmResizeStep * s, gint w, gint h,
    gint * ow, gint * oh);

G_END_DECLS
