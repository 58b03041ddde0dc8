/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef __GST_MM_AUDIO_ENC_H__
#define __GST_MM_AUDIO_ENC_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS
/**
 * GstMmAudioEncLeaky:
 * @GST_MM_AUDIO_ENC_LEAKY_AUTO: leaky when upstream is live, blocking
 *     otherwise
 * @GST_MM_AUDIO_ENC_LEAKY_YES: when max-pending windows wait for the
 *     encoder, release the oldest one without tokens
 * @GST_MM_AUDIO_ENC_LEAKY_NO: when max-pending windows wait for the
 *     encoder, block the streaming thread until there is room
 *
 * What mmaudioenc does when the encoder falls behind.
 *
 * Since: 0.1
 */
    typedef enum
{
  GST_MM_AUDIO_ENC_LEAKY_AUTO = 0,
  GST_MM_AUDIO_ENC_LEAKY_YES = 1,
  GST_MM_AUDIO_ENC_LEAKY_NO = 2,
} GstMmAudioEncLeaky;

#define GST_TYPE_MM_AUDIO_ENC_LEAKY (gst_mm_audio_enc_leaky_get_type ())
GType gst_mm_audio_enc_leaky_get_type (void);

#define GST_TYPE_MM_AUDIO_ENC (gst_mm_audio_enc_get_type ())
G_DECLARE_FINAL_TYPE (GstMmAudioEnc, gst_mm_audio_enc,
    GST, MM_AUDIO_ENC, GstBaseTransform);

GST_ELEMENT_REGISTER_DECLARE (mmaudioenc);

G_END_DECLS
#endif /* __GST_MM_AUDIO_ENC_H__ */
