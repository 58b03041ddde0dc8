/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GstMmSampleMeta: flags a video frame as sampled by mmframesample.
 */
#ifndef __GST_MM_SAMPLE_META_H__
#define __GST_MM_SAMPLE_META_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_MM_SAMPLE_META_API_TYPE (gst_mm_sample_meta_api_get_type ())
#define GST_MM_SAMPLE_META_INFO (gst_mm_sample_meta_get_info ())

typedef struct _GstMmSampleMeta GstMmSampleMeta;

/**
 * GstMmSampleMeta:
 * @meta: parent #GstMeta
 * @sample_index: running count of sample points since the sampler started,
 *     starting at 0; every frame of one snippet carries the same index
 * @frame_index: position of this frame within its snippet, 0 for the frame
 *     at the sample point, up to @snippet_frames - 1
 * @snippet_frames: length of the snippet this frame belongs to (the
 *     `snippet-frames` setting of the sampler when the snippet started)
 * @running_time: running time of the sample point, i.e. of the first frame
 *     of the snippet, in nanoseconds
 *
 * Marks a frame as sampled. The presence of the meta is the flag: encoders
 * such as mmvisionenc encode only the frames that carry it when any frame
 * of the stream does. The meta is copied along with the buffer (by
 * gst_buffer_copy() and by elements that copy metadata).
 *
 * Since: 0.1
 */
struct _GstMmSampleMeta
{
  GstMeta meta;

  guint64 sample_index;
  guint frame_index;
  guint snippet_frames;
  GstClockTime running_time;
};

GType gst_mm_sample_meta_api_get_type (void);

const GstMetaInfo *gst_mm_sample_meta_get_info (void);

GstMmSampleMeta *gst_buffer_add_mm_sample_meta (GstBuffer * buffer,
    guint64 sample_index, guint frame_index, guint snippet_frames,
    GstClockTime running_time);

GstMmSampleMeta *gst_buffer_get_mm_sample_meta (GstBuffer * buffer);

G_END_DECLS

#endif /* __GST_MM_SAMPLE_META_H__ */
