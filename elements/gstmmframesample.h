/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef __GST_MM_FRAME_SAMPLE_H__
#define __GST_MM_FRAME_SAMPLE_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstMmFrameSampleMode:
 * @GST_MM_FRAME_SAMPLE_MODE_DROP: pass only the sampled frames
 * @GST_MM_FRAME_SAMPLE_MODE_MARK: pass every frame, flag the sampled ones
 *
 * What mmframesample does with the frames it does not sample.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_FRAME_SAMPLE_MODE_DROP = 0,
  GST_MM_FRAME_SAMPLE_MODE_MARK = 1,
} GstMmFrameSampleMode;

#define GST_TYPE_MM_FRAME_SAMPLE_MODE (gst_mm_frame_sample_mode_get_type ())
GType gst_mm_frame_sample_mode_get_type (void);

#define GST_TYPE_MM_FRAME_SAMPLE (gst_mm_frame_sample_get_type ())
G_DECLARE_FINAL_TYPE (GstMmFrameSample, gst_mm_frame_sample,
    GST, MM_FRAME_SAMPLE, GstBaseTransform);

GST_ELEMENT_REGISTER_DECLARE (mmframesample);

G_END_DECLS

#endif /* __GST_MM_FRAME_SAMPLE_H__ */
