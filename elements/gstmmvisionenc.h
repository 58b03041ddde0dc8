/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef __GST_MM_VISION_ENC_H__
#define __GST_MM_VISION_ENC_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstMmVisionEncLeaky:
 * @GST_MM_VISION_ENC_LEAKY_AUTO: leaky when upstream is live, blocking
 *     otherwise
 * @GST_MM_VISION_ENC_LEAKY_YES: when max-pending frames wait for the
 *     encoder, release the oldest one without tokens
 * @GST_MM_VISION_ENC_LEAKY_NO: when max-pending frames wait for the encoder,
 *     block the streaming thread until there is room
 *
 * What mmvisionenc does when the encoder falls behind.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_VISION_ENC_LEAKY_AUTO = 0,
  GST_MM_VISION_ENC_LEAKY_YES = 1,
  GST_MM_VISION_ENC_LEAKY_NO = 2,
} GstMmVisionEncLeaky;

#define GST_TYPE_MM_VISION_ENC_LEAKY (gst_mm_vision_enc_leaky_get_type ())
GType gst_mm_vision_enc_leaky_get_type (void);

/**
 * GstMmVisionEncSplit:
 * @GST_MM_VISION_ENC_SPLIT_AUTO: split images as the model's image
 *     processor does (Hugging Face folders: do_image_splitting of the
 *     processor config; GGUF idefics3 mmproj files: yes, as llama.cpp)
 * @GST_MM_VISION_ENC_SPLIT_ON: split images into tiles + a global view
 * @GST_MM_VISION_ENC_SPLIT_OFF: one view per image
 *
 * Image splitting of models whose processor splits images (Idefics3 /
 * SmolVLM, Idefics2); other models always encode one view.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_VISION_ENC_SPLIT_AUTO = 0,
  GST_MM_VISION_ENC_SPLIT_ON = 1,
  GST_MM_VISION_ENC_SPLIT_OFF = 2,
} GstMmVisionEncSplit;

#define GST_TYPE_MM_VISION_ENC_SPLIT (gst_mm_vision_enc_split_get_type ())
GType gst_mm_vision_enc_split_get_type (void);

#define GST_TYPE_MM_VISION_ENC (gst_mm_vision_enc_get_type ())
G_DECLARE_FINAL_TYPE (GstMmVisionEnc, gst_mm_vision_enc,
    GST, MM_VISION_ENC, GstBaseTransform);

GST_ELEMENT_REGISTER_DECLARE (mmvisionenc);

G_END_DECLS

#endif /* __GST_MM_VISION_ENC_H__ */
