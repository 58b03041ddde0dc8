/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:gstmmsamplemeta
 * @title: GstMmSampleMeta
 * @short_description: flags a video frame as sampled
 * @see_also: mmframesample
 *
 * mmframesample attaches a #GstMmSampleMeta to every frame it selects, in
 * both of its modes. It carries the running count of sample points, the
 * position of the frame inside its snippet (Apollo-style runs of contiguous
 * frames), the snippet length and the running time of the sample point.
 *
 * Consumers such as mmvisionenc check for the meta with
 * gst_buffer_get_mm_sample_meta(): when a stream carries sample metas, only
 * the flagged frames are encoded.
 *
 * The meta has no tags, so it survives gst_buffer_copy() and the metadata
 * copying of transforms such as videoconvert or videoscale.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmmsamplemeta.h"

static gboolean
gst_mm_sample_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstMmSampleMeta *smeta = (GstMmSampleMeta *) meta;

  smeta->sample_index = 0;
  smeta->frame_index = 0;
  smeta->snippet_frames = 1;
  smeta->running_time = GST_CLOCK_TIME_NONE;

  return TRUE;
}

static void
gst_mm_sample_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  /* plain values only, nothing to release */
}

/* The meta describes where a frame sits in time, not its pixels, so it
 * stays valid for every transform (copy, scale, colour conversion). */
static gboolean
gst_mm_sample_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstMmSampleMeta *smeta = (GstMmSampleMeta *) meta;
  GstMmSampleMeta *dmeta;

  dmeta = gst_buffer_get_mm_sample_meta (dest);
  if (dmeta == NULL) {
    dmeta = (GstMmSampleMeta *) gst_buffer_add_meta (dest,
        GST_MM_SAMPLE_META_INFO, NULL);
    if (dmeta == NULL)
      return FALSE;
  }

  dmeta->sample_index = smeta->sample_index;
  dmeta->frame_index = smeta->frame_index;
  dmeta->snippet_frames = smeta->snippet_frames;
  dmeta->running_time = smeta->running_time;

  return TRUE;
}

/**
 * gst_mm_sample_meta_api_get_type:
 *
 * Returns: the #GType of the #GstMmSampleMeta API.
 *
 * Since: 0.1
 */
GType
gst_mm_sample_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType _type = gst_meta_api_type_register ("GstMmSampleMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

/**
 * gst_mm_sample_meta_get_info:
 *
 * Returns: (transfer none): the #GstMetaInfo of #GstMmSampleMeta.
 *
 * Since: 0.1
 */
const GstMetaInfo *
gst_mm_sample_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *meta =
        gst_meta_register (gst_mm_sample_meta_api_get_type (),
        "GstMmSampleMeta", sizeof (GstMmSampleMeta),
        gst_mm_sample_meta_init, gst_mm_sample_meta_free,
        gst_mm_sample_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) meta);
  }
  return info;
}

/**
 * gst_buffer_add_mm_sample_meta:
 * @buffer: a writable #GstBuffer
 * @sample_index: running count of sample points, from 0
 * @frame_index: position of the frame in its snippet, below @snippet_frames
 * @snippet_frames: snippet length, at least 1
 * @running_time: running time of the sample point, or %GST_CLOCK_TIME_NONE
 *
 * Flags @buffer as a sampled frame.
 *
 * Returns: (transfer none) (nullable): the #GstMmSampleMeta added to
 * @buffer, owned by @buffer, or %NULL on invalid arguments.
 *
 * Since: 0.1
 */
GstMmSampleMeta *
gst_buffer_add_mm_sample_meta (GstBuffer * buffer, guint64 sample_index,
    guint frame_index, guint snippet_frames, GstClockTime running_time)
{
  GstMmSampleMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (snippet_frames >= 1, NULL);
  g_return_val_if_fail (frame_index < snippet_frames, NULL);

  meta = (GstMmSampleMeta *) gst_buffer_add_meta (buffer,
      GST_MM_SAMPLE_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  meta->sample_index = sample_index;
  meta->frame_index = frame_index;
  meta->snippet_frames = snippet_frames;
  meta->running_time = running_time;

  return meta;
}

/**
 * gst_buffer_get_mm_sample_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the #GstMmSampleMeta of @buffer,
 * owned by @buffer, or %NULL when the frame was not sampled.
 *
 * Since: 0.1
 */
GstMmSampleMeta *
gst_buffer_get_mm_sample_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstMmSampleMeta *) gst_buffer_get_meta (buffer,
      GST_MM_SAMPLE_META_API_TYPE);
}
