/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Vision encoders: a ViT tower (SigLIP or CLIP) plus a connector
 * (Perceiver resampler, MiniCPM-V resampler, Idefics3 pixel shuffle, LLaVA
 * MLP), loaded from a GGUF mmproj file or a Hugging Face folder.  All
 * hparams come from the file.
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

/* A host image; planes/strides as in GstVideoFrame. */
typedef struct
{
  MmPixelFormat format;
  gint width, height;
  const guint8 *planes[3];
  gint strides[3];
} MmImage;

typedef struct _MmVisionModel MmVisionModel;

/* @path: a GGUF mmproj file or a Hugging Face model folder. */
MmVisionModel *mm_vision_model_load (MmEngine * engine, const gchar * path,
    GError ** error);
void mm_vision_model_free (MmVisionModel * m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmVisionModel, mm_vision_model_free)

/* Output tokens per image and their dimension (the LLM's hidden size for
 * models with a connector). */
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

G_END_DECLS
