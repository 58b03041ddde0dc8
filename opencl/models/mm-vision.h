/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision encoders: a ViT tower (SigLIP or CLIP) plus a connector
 * (Perceiver resampler, MiniCPM-V resampler, Idefics3 pixel shuffle, LLaVA
 * MLP), loaded from a GGUF mmproj file or a Hugging Face folder.  All
 * hparams come from the file.
 *
 *   file                                      output tokens
 *   GGUF mmproj, no projector / HF Siglip-    HF last_hidden_state (SigLIP:
 *     or CLIPVisionModel                      post-LN'd; CLIP: with the class
 *                                             token, no post-LN)
 *   GGUF "mlp" / HF LlavaForConditional...    projector(hidden_states[f])
 *                                             without the class token; f =
 *                                             clip.vision.feature_layer or
 *                                             every block the file holds /
 *                                             vision_feature_layer
 *   GGUF "idefics3" / HF Idefics3 (SmolVLM)   pixel shuffle + linear
 *   HF Idefics2ForConditionalGeneration       MLP + Perceiver resampler
 *   GGUF "resampler" (MiniCPM-V 2.5/2.6)      one cross-attention layer
 *                                             per view (slices + overview)
 *
 * Preprocessing follows the HF image processor of the family (PIL
 * backend): pixel-exact for RGB input.  Processors that split an image
 * into several views are followed too: Idefics3 / SmolVLM (tiles of
 * max_image_size, row by row, then the global image) and Idefics2 (four
 * quarters, then the whole image, each resized with the aspect-keeping
 * shortest / longest edge rule) and MiniCPM-V (image_processing_minicpmv.py
 * slice_image, llama.cpp's llava-uhd: the grid of up to max_slice_nums
 * slices closest to the image's aspect, slices of the image resized to
 * patch multiples, then the overview resized keeping the aspect; without
 * splitting the overview alone, the processor's never_split); every view
 * goes through tower and connector and the tokens of all views come out
 * one after the other (see MmVisionLayout).  Views of MiniCPM-V run the
 * tower on their own patch grid (NaViT bucketed positions) and the
 * resampler with that grid's sin-cos positions.  Not done: LLaVA-NeXT
 * (anyres) is not loaded at all; MiniCPM-V HF folders (no transformers
 * class); Idefics2's five views go into the LLM as one run of tokens.
 *
 * Ownership: the model is owned by whoever loaded it and keeps a reference
 * on its engine.  mm_vision_model_encode() may be called from one thread at
 * a time per model (it owns one MmGraph); two models may run concurrently.
 */
#pragma once

#include "mm-ops.h"

G_BEGIN_DECLS

typedef enum
{
  MM_PIXEL_RGB,
  MM_PIXEL_BGR,
  MM_PIXEL_RGBA,
  MM_PIXEL_BGRA,
  MM_PIXEL_RGBX,
  MM_PIXEL_BGRX,
  MM_PIXEL_XRGB,
  MM_PIXEL_XBGR,
  MM_PIXEL_ARGB,
  MM_PIXEL_ABGR,
  MM_PIXEL_I420,
  MM_PIXEL_NV12,
  MM_PIXEL_GRAY8,
} MmPixelFormat;

/* Y'CbCr to RGB matrix of I420 / NV12 images. */
typedef enum
{
  MM_COLOR_MATRIX_BT601,        /* GStreamer's default for SD video */
  MM_COLOR_MATRIX_BT709,
  MM_COLOR_MATRIX_BT2020,
  MM_COLOR_MATRIX_SMPTE240M,
  MM_COLOR_MATRIX_FCC,
} MmColorMatrix;

/* Luma coefficients Kr, Kb of @matrix (R' = Y' + 2 (1 - Kr) Cr, ...). */
void mm_color_matrix_coefficients (MmColorMatrix matrix, double *kr,
    double *kb);

/* A host image; planes/strides as in GstVideoFrame.  @matrix and
 * @full_range apply to I420 / NV12 only; zero-initialised means BT.601,
 * limited range. */
typedef struct
{
  MmPixelFormat format;
  gint width, height;
  const guint8 *planes[3];
  gint strides[3];
  MmColorMatrix matrix;
  gboolean full_range;
} MmImage;

typedef struct _MmVisionModel MmVisionModel;

/* Settings that override what the file says.  Zero-initialise, then set
 * what you need. */
/* Image splitting (the processor's do_image_splitting). */
typedef enum
{
  MM_VISION_SPLIT_DEFAULT,      /* as the model's processor does: HF folders
                                 * do_image_splitting of the processor
                                 * config (class default when absent);
                                 * GGUF idefics3 mmproj files split (as
                                 * llama.cpp), tiles of clip.vision.image_size
                                 * from clip.vision.preproc_image_size;
                                 * GGUF resampler (MiniCPM-V) files slice
                                 * (as llama.cpp): slices of about
                                 * clip.vision.image_size^2 pixels, at most
                                 * 9 (the processor's max_slice_nums) */
  MM_VISION_SPLIT_ON,
  MM_VISION_SPLIT_OFF,
} MmVisionSplit;

typedef struct
{
  /* Input resolution (square; MiniCPM-V: the slices' scale resolution);
   * 0: the model's own.  Position embeddings follow (interpolated for
   * SigLIP / CLIP, bucketed for Idefics and MiniCPM-V). */
  gint image_size;
  /* Tower output as an index into HF's hidden_states (0: embeddings,
   * n_layer: last block; negative counts from the end like
   * vision_feature_layer); 0 with @set_feature_layer FALSE: the file's. */
  gint feature_layer;
  gboolean set_feature_layer;
  /* Image splitting, for models whose processor splits (Idefics3 /
   * SmolVLM, Idefics2, MiniCPM-V); ignored by the others. */
  MmVisionSplit split;
  /* Idefics3 / SmolVLM, MiniCPM-V: at most this many tiles (slices) per
   * image (0: no cap); see mm_vision_model_set_splitting(). */
  gint max_tiles;
} MmVisionOptions;

/* How the tokens of one image are laid out: @n_views views of
 * @tokens_per_view tokens each, one after the other: @rows x @cols tiles
 * row by row (0 x 0: no tiles), and the view of the whole image at index
 * @global_view (Idefics3's global image, Idefics2's whole image,
 * MiniCPM-V's overview: after the tiles, although MiniCPM-V's processor
 * and prompt put the overview first; without tiles the one view, index
 * 0). */
typedef struct
{
  gint n_views;
  gint tokens_per_view;
  gint rows, cols;
  gint global_view;
} MmVisionLayout;

/* @path: a GGUF mmproj file or a Hugging Face model folder.  Hparams,
 * preprocessing and every tensor's name and shape are checked before
 * anything runs; errors name the file and the tensor or key. */
MmVisionModel *mm_vision_model_load (MmEngine * engine, const gchar * path,
    GError ** error);
/* Same, with @opts (nullable). */
MmVisionModel *mm_vision_model_load_with_options (MmEngine * engine,
    const gchar * path, const MmVisionOptions * opts, GError ** error);
void mm_vision_model_free (MmVisionModel * m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmVisionModel, mm_vision_model_free)

/* Output tokens per view and their dimension (the LLM's hidden size for
 * models with a connector).  An image split into views gives n_tokens
 * times the number of views. */
gint mm_vision_model_n_tokens (MmVisionModel * m);
gint mm_vision_model_dim (MmVisionModel * m);
/* The model's input resolution. */
gint mm_vision_model_image_size (MmVisionModel * m);
/* A short identifier: file or folder name plus tower/projector kind. */
const gchar *mm_vision_model_id (MmVisionModel * m);
/* Milliseconds the last encode took, measured with clFinish. */
gdouble mm_vision_model_last_ms (MmVisionModel * m);

/* Preprocesses @img on the device (colour conversion, resize, rescale,
 * normalise as the model's image processor does), runs tower + connector
 * and returns a new owned device tensor [n_tokens, dim] (F32).  Blocks until
 * the result is ready. */
MmTensor *mm_vision_model_encode (MmVisionModel * m, const MmImage * img,
    GError ** error);
/* Same, and the layout of the views the tokens come from (nullable):
 * [n_views * tokens_per_view, dim]. */
MmTensor *mm_vision_model_encode_views (MmVisionModel * m,
    const MmImage * img, MmVisionLayout * layout, GError ** error);

/* Whether the model's processor knows how to split images (Idefics3 /
 * SmolVLM, Idefics2, MiniCPM-V), and whether it does now. */
gboolean mm_vision_model_can_split (MmVisionModel * m);
gboolean mm_vision_model_get_splitting (MmVisionModel * m);
/* Turns splitting on or off for the next encodes (no effect on models that
 * cannot split).  @max_tiles (Idefics3 / SmolVLM, MiniCPM-V; 0: no cap)
 * bounds the work per image for live use: when the processor's
 * longest-edge setting would give more tiles, it is lowered to the
 * largest multiple of the tile size that gives at most @max_tiles
 * (exactly the processor run with that size.longest_edge); MiniCPM-V's
 * max_slice_nums is lowered to @max_tiles. */
void mm_vision_model_set_splitting (MmVisionModel * m, gboolean split,
    gint max_tiles);

/* Output tensors come from a small per-model pool: free them with
 * mm_tensor_free() as usual; a pooled buffer is handed out again once only
 * the pool holds it (steady-state encoding allocates nothing). */

/* ---- lower levels, for tests and tools ---- */

/* The preprocessed pixels of @img (host, g_free): every view [3, h, w]
 * one after the other ([3, S, S] for one view of a square model). */
float *mm_vision_model_preprocess (MmVisionModel * m, const MmImage * img,
    GError ** error);
/* Same, with the layout (nullable; tokens_per_view is 0 here) and the
 * number of floats (nullable). */
float *mm_vision_model_preprocess_views (MmVisionModel * m,
    const MmImage * img, MmVisionLayout * layout, gsize * n_floats,
    GError ** error);
/* Size of view @i of the last preprocessing or encode. */
gboolean mm_vision_model_view_size (MmVisionModel * m, gint i, gint * w,
    gint * h);
/* Tower + connector on preprocessed pixels [3, S, S] (host). */
MmTensor *mm_vision_model_encode_pixels (MmVisionModel * m,
    const float *pixels, GError ** error);
/* Connector alone on tower features [n, d_tower] (host).  n must be what
 * the connector takes (Idefics2 takes any n). */
MmTensor *mm_vision_model_encode_features (MmVisionModel * m,
    const float *features, gint n, GError ** error);

/* With tracing on, the next forwards keep intermediate tensors under the
 * names of the reference files ("hidden_states.N", "connector.layer_out.N",
 * ...) until the following forward; tracing costs memory, not time. */
void mm_vision_model_set_trace (MmVisionModel * m, gboolean trace);
/* A traced tensor of the last forward as host floats [rows, cols]
 * (g_free); NULL with an error when the name was not traced. */
float *mm_vision_model_trace_get (MmVisionModel * m, const gchar * name,
    gint64 * rows, gint64 * cols, GError ** error);
/* Floating-point operations of one forward's GEMMs (tower + connector),
 * for benchmarks. */
gdouble mm_vision_model_flops (MmVisionModel * m);
/* Device bytes of the model's scratch arena (high-water mark). */
gsize mm_vision_model_scratch_bytes (MmVisionModel * m);

G_END_DECLS
