/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GstMmTokensMeta: LLM-ready tokens (embeddings) attached to the buffer they
 * describe, with a ref-counted, immutable payload (GstMmTokens) that lives
 * on an OpenCL device, on the host, or both.
 */
#ifndef __GST_MM_TOKENS_META_H__
#define __GST_MM_TOKENS_META_H__

#include <gst/gst.h>
#include <CL/cl.h>

G_BEGIN_DECLS

/**
 * GstMmModality:
 * @GST_MM_MODALITY_VIDEO: tokens describe a video frame
 * @GST_MM_MODALITY_AUDIO: tokens describe an audio window
 *
 * What the tokens of a #GstMmTokensMeta were computed from.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_MODALITY_VIDEO,
  GST_MM_MODALITY_AUDIO,
} GstMmModality;

GType gst_mm_modality_get_type (void);
#define GST_TYPE_MM_MODALITY (gst_mm_modality_get_type ())

/**
 * GstMmTokensDType:
 * @GST_MM_TOKENS_DTYPE_F32: 32-bit IEEE floats
 *
 * Element type of a token payload.  Rows are tokens, columns the embedding
 * dimension, row-major and contiguous.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_MM_TOKENS_DTYPE_F32,
} GstMmTokensDType;

GType gst_mm_tokens_dtype_get_type (void);
#define GST_TYPE_MM_TOKENS_DTYPE (gst_mm_tokens_dtype_get_type ())

/**
 * GstMmTokens:
 *
 * An immutable, thread-safe, ref-counted block of @n_tokens × @dim values.
 * Producers fill it before handing it out and never write it afterwards, so
 * sharing it between buffers and threads needs no copy.  The data lives on
 * an OpenCL device (a retained `cl_mem` plus a byte offset, read through a
 * retained command queue of the same context) or on the host; a device
 * payload makes its host copy on demand, once, and caches it.
 *
 * Since: 0.1
 */
typedef struct _GstMmTokens GstMmTokens;

GType gst_mm_tokens_get_type (void);
#define GST_TYPE_MM_TOKENS (gst_mm_tokens_get_type ())

GstMmTokens *gst_mm_tokens_new_device (cl_mem mem, gsize offset,
    cl_command_queue queue, guint n_tokens, guint dim,
    GstMmTokensDType dtype, GDestroyNotify notify, gpointer user_data);
GstMmTokens *gst_mm_tokens_new_host (const gfloat * data, guint n_tokens,
    guint dim);

GstMmTokens *gst_mm_tokens_ref (GstMmTokens * tokens);
void gst_mm_tokens_unref (GstMmTokens * tokens);

guint gst_mm_tokens_get_n_tokens (GstMmTokens * tokens);
guint gst_mm_tokens_get_dim (GstMmTokens * tokens);
GstMmTokensDType gst_mm_tokens_get_dtype (GstMmTokens * tokens);
gsize gst_mm_tokens_get_size (GstMmTokens * tokens);

const gfloat *gst_mm_tokens_get_host (GstMmTokens * tokens, GError ** error);
cl_mem gst_mm_tokens_get_device (GstMmTokens * tokens, gsize * offset);
cl_command_queue gst_mm_tokens_get_queue (GstMmTokens * tokens);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstMmTokens, gst_mm_tokens_unref)

#define GST_MM_TOKENS_META_API_TYPE (gst_mm_tokens_meta_api_get_type ())
#define GST_MM_TOKENS_META_INFO (gst_mm_tokens_meta_get_info ())

typedef struct _GstMmTokensMeta GstMmTokensMeta;

/**
 * GstMmTokensMeta:
 * @meta: parent #GstMeta
 * @modality: what the tokens were computed from
 * @n_tokens: number of tokens (rows of @tokens)
 * @dim: embedding dimension (columns of @tokens)
 * @dtype: element type of @tokens
 * @pts: presentation timestamp of the start of the span the tokens describe
 *     (the frame's PTS for video, the window start for audio)
 * @duration: length of that span, or %GST_CLOCK_TIME_NONE
 * @model_id: (nullable): identifier of the model that produced the tokens
 * @tokens: the payload, shared by every copy of the meta
 * @n_views: number of views the tokens come from (Since: 0.1): an image
 *     split into tiles by the encoder's image processor gives one view per
 *     tile plus a view of the whole image; 1 otherwise
 * @tokens_per_view: tokens of each view, one view after the other
 *     (@n_views × @tokens_per_view = @n_tokens) (Since: 0.1)
 * @rows: tile rows, 0 without tiles (Since: 0.1)
 * @cols: tile columns, 0 without tiles (Since: 0.1)
 * @global_view: index of the view of the whole image (after the tiles:
 *     @rows × @cols for Idefics3 / SmolVLM splitting), -1 when there is
 *     none; 0 for a single view (Since: 0.1)
 *
 * Tokens computed from the content of the buffer that carries the meta.
 * Several metas may sit on one buffer (e.g. two encoders, or an audio
 * window closing on a video frame); walk them with
 * gst_buffer_iterate_mm_tokens_meta().
 *
 * Tiles come first, row by row (tile r, c is view r × @cols + c), each
 * @tokens_per_view rows of @tokens; gst_buffer_add_mm_tokens_meta() makes
 * a single-view layout and gst_mm_tokens_meta_set_layout() describes
 * another.
 *
 * Copying the meta (gst_buffer_copy(), elements that copy metadata, video
 * scaling) shares @tokens by reference: the payload is immutable, so a
 * shared payload behaves exactly like a deep copy.  Other transforms drop
 * the meta.
 *
 * Since: 0.1
 */
struct _GstMmTokensMeta
{
  GstMeta meta;

  GstMmModality modality;
  guint n_tokens;
  guint dim;
  GstMmTokensDType dtype;
  GstClockTime pts;
  GstClockTime duration;
  gchar *model_id;
  GstMmTokens *tokens;

  /* appended: the fields above keep their offsets */
  guint n_views;
  guint tokens_per_view;
  guint rows;
  guint cols;
  gint global_view;
};

GType gst_mm_tokens_meta_api_get_type (void);
const GstMetaInfo *gst_mm_tokens_meta_get_info (void);

GstMmTokensMeta *gst_buffer_add_mm_tokens_meta (GstBuffer * buffer,
    GstMmModality modality, GstMmTokens * tokens, GstClockTime pts,
    GstClockTime duration, const gchar * model_id);
GstMmTokensMeta *gst_buffer_get_mm_tokens_meta (GstBuffer * buffer);
gboolean gst_mm_tokens_meta_set_layout (GstMmTokensMeta * meta, guint rows,
    guint cols, guint n_views, gint global_view);
GstMmTokensMeta *gst_buffer_iterate_mm_tokens_meta (GstBuffer * buffer,
    gpointer * state);

G_END_DECLS

#endif /* __GST_MM_TOKENS_META_H__ */
