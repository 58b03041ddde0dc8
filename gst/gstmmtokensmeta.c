/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:gstmmtokensmeta
 * @title: GstMmTokensMeta
 * @short_description: LLM-ready tokens attached to the buffer they describe
 *
 * Encoders (mmvisionenc, mmaudioenc) attach a #GstMmTokensMeta to the
 * buffer whose content they encoded; consumers (mmllmsink, applications)
 * read the tokens from the device buffer without a host round trip, or ask
 * for a host copy with gst_mm_tokens_get_host().
 *
 * |[<!-- language="C" -->
 * gpointer state = NULL;
 * GstMmTokensMeta *meta;
 *
 * while ((meta = gst_buffer_iterate_mm_tokens_meta (buf, &state))) {
 *   g_autoptr (GError) err = NULL;
 *   const gfloat *x = gst_mm_tokens_get_host (meta->tokens, &err);
 *   // x[t * meta->dim + d], t < meta->n_tokens
 * }
 * ]|
 *
 * This file is the only place in gst/ that calls OpenCL: a payload retains
 * its `cl_mem` and `cl_command_queue` and reads the buffer for the host
 * copy.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmmtokensmeta.h"

#include <string.h>
#include <gst/video/video.h>

struct _GstMmTokens
{
  gatomicrefcount refcount;

  guint n_tokens;
  guint dim;
  GstMmTokensDType dtype;

  cl_mem mem;                   /* retained, NULL for host payloads */
  gsize offset;                 /* bytes into @mem */
  cl_command_queue queue;       /* retained, NULL for host payloads */
  GDestroyNotify notify;
  gpointer user_data;

  GMutex lock;                  /* guards @host for device payloads */
  gfloat *host;                 /* owned; set once, then immutable */
};

G_DEFINE_ENUM_TYPE (GstMmModality, gst_mm_modality,
    G_DEFINE_ENUM_VALUE (GST_MM_MODALITY_VIDEO, "video"),
    G_DEFINE_ENUM_VALUE (GST_MM_MODALITY_AUDIO, "audio"));

G_DEFINE_ENUM_TYPE (GstMmTokensDType, gst_mm_tokens_dtype,
    G_DEFINE_ENUM_VALUE (GST_MM_TOKENS_DTYPE_F32, "f32"));

G_DEFINE_BOXED_TYPE (GstMmTokens, gst_mm_tokens, gst_mm_tokens_ref,
    gst_mm_tokens_unref);

static const gchar *
cl_status_name (cl_int code)
{
  switch (code) {
    case CL_INVALID_VALUE:
      return "CL_INVALID_VALUE";
    case CL_INVALID_MEM_OBJECT:
      return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_COMMAND_QUEUE:
      return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_CONTEXT:
      return "CL_INVALID_CONTEXT";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
      return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES:
      return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY:
      return "CL_OUT_OF_HOST_MEMORY";
    case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST:
      return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    default:
      return "OpenCL error";
  }
}

static gsize
dtype_size (GstMmTokensDType dtype)
{
  switch (dtype) {
    case GST_MM_TOKENS_DTYPE_F32:
    default:
      return sizeof (gfloat);
  }
}

static GstMmTokens *
tokens_alloc (guint n_tokens, guint dim, GstMmTokensDType dtype)
{
  GstMmTokens *tokens = g_new0 (GstMmTokens, 1);

  g_atomic_ref_count_init (&tokens->refcount);
  g_mutex_init (&tokens->lock);
  tokens->n_tokens = n_tokens;
  tokens->dim = dim;
  tokens->dtype = dtype;
  return tokens;
}

/**
 * gst_mm_tokens_new_device:
 * @mem: the device buffer holding the tokens; retained
 * @offset: byte offset of the first token in @mem
 * @queue: a command queue of @mem's context, used to read the host copy;
 *     retained
 * @n_tokens: number of tokens (rows), > 0
 * @dim: embedding dimension (columns), > 0
 * @dtype: element type
 * @notify: (nullable): called with @user_data when the last reference is
 *     dropped, before the payload releases its references on @mem and
 *     @queue; a producer that recycles @mem through a pool keeps its own
 *     reference on @mem and returns it to the pool here
 * @user_data: (closure notify): data for @notify
 *
 * Wraps tokens that live on an OpenCL device.  The payload takes its own
 * references on @mem and @queue (clRetainMemObject, clRetainCommandQueue):
 * the caller keeps its references and releases them as it sees fit.  The
 * contents of @mem in [@offset, @offset + gst_mm_tokens_get_size()) must be
 * final (all writes enqueued before any read through @queue) and must not be
 * written again while the payload is alive.
 *
 * Returns: (transfer full): a new payload
 *
 * Since: 0.1
 */
GstMmTokens *
gst_mm_tokens_new_device (cl_mem mem, gsize offset, cl_command_queue queue,
    guint n_tokens, guint dim, GstMmTokensDType dtype, GDestroyNotify notify,
    gpointer user_data)
{
  GstMmTokens *tokens;
  size_t mem_size = 0;
  cl_int status;

  g_return_val_if_fail (mem != NULL, NULL);
  g_return_val_if_fail (queue != NULL, NULL);
  g_return_val_if_fail (n_tokens > 0 && dim > 0, NULL);

  status = clGetMemObjectInfo (mem, CL_MEM_SIZE, sizeof mem_size, &mem_size,
      NULL);
  g_return_val_if_fail (status == CL_SUCCESS, NULL);
  g_return_val_if_fail (offset + (gsize) n_tokens * dim * dtype_size (dtype)
      <= mem_size, NULL);

  tokens = tokens_alloc (n_tokens, dim, dtype);
  clRetainMemObject (mem);
  clRetainCommandQueue (queue);
  tokens->mem = mem;
  tokens->offset = offset;
  tokens->queue = queue;
  tokens->notify = notify;
  tokens->user_data = user_data;
  return tokens;
}

/**
 * gst_mm_tokens_new_host:
 * @data: (array) (transfer none): @n_tokens × @dim floats, row-major
 * @n_tokens: number of tokens (rows), > 0
 * @dim: embedding dimension (columns), > 0
 *
 * Makes a host-only F32 payload holding a copy of @data.
 * gst_mm_tokens_get_device() returns %NULL for it.
 *
 * Returns: (transfer full): a new payload
 *
 * Since: 0.1
 */
GstMmTokens *
gst_mm_tokens_new_host (const gfloat * data, guint n_tokens, guint dim)
{
  GstMmTokens *tokens;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (n_tokens > 0 && dim > 0, NULL);

  tokens = tokens_alloc (n_tokens, dim, GST_MM_TOKENS_DTYPE_F32);
  tokens->host = g_memdup2 (data, gst_mm_tokens_get_size (tokens));
  return tokens;
}

/**
 * gst_mm_tokens_ref:
 * @tokens: a #GstMmTokens
 *
 * Returns: (transfer full): @tokens
 *
 * Since: 0.1
 */
GstMmTokens *
gst_mm_tokens_ref (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, NULL);

  g_atomic_ref_count_inc (&tokens->refcount);
  return tokens;
}

/**
 * gst_mm_tokens_unref:
 * @tokens: (transfer full): a #GstMmTokens
 *
 * Drops a reference.  The last one calls the destroy notify given at
 * construction, then releases the device buffer and queue and frees the
 * host copy.
 *
 * Since: 0.1
 */
void
gst_mm_tokens_unref (GstMmTokens * tokens)
{
  g_return_if_fail (tokens != NULL);

  if (!g_atomic_ref_count_dec (&tokens->refcount))
    return;

  if (tokens->notify)
    tokens->notify (tokens->user_data);
  if (tokens->mem)
    clReleaseMemObject (tokens->mem);
  if (tokens->queue)
    clReleaseCommandQueue (tokens->queue);
  g_free (tokens->host);
  g_mutex_clear (&tokens->lock);
  g_free (tokens);
}

/**
 * gst_mm_tokens_get_n_tokens:
 * @tokens: a #GstMmTokens
 *
 * Returns: the number of tokens (rows)
 *
 * Since: 0.1
 */
guint
gst_mm_tokens_get_n_tokens (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, 0);
  return tokens->n_tokens;
}

/**
 * gst_mm_tokens_get_dim:
 * @tokens: a #GstMmTokens
 *
 * Returns: the embedding dimension (columns)
 *
 * Since: 0.1
 */
guint
gst_mm_tokens_get_dim (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, 0);
  return tokens->dim;
}

/**
 * gst_mm_tokens_get_dtype:
 * @tokens: a #GstMmTokens
 *
 * Returns: the element type
 *
 * Since: 0.1
 */
GstMmTokensDType
gst_mm_tokens_get_dtype (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, GST_MM_TOKENS_DTYPE_F32);
  return tokens->dtype;
}

/**
 * gst_mm_tokens_get_size:
 * @tokens: a #GstMmTokens
 *
 * Returns: the payload size in bytes (n_tokens × dim × element size)
 *
 * Since: 0.1
 */
gsize
gst_mm_tokens_get_size (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, 0);
  return (gsize) tokens->n_tokens * tokens->dim * dtype_size (tokens->dtype);
}

/**
 * gst_mm_tokens_get_host:
 * @tokens: a #GstMmTokens
 * @error: return location for a #GError
 *
 * Returns the tokens in host memory, row-major: token t, component d is at
 * index t × dim + d.  For a device payload the first call reads the device
 * buffer (a blocking read on the payload's queue) and caches the result;
 * later calls, from any thread, return the cached copy.  Safe to call from
 * several threads at once.
 *
 * Returns: (transfer none) (nullable): n_tokens × dim values, valid as long
 *     as @tokens is alive, or %NULL with @error set when the device read
 *     failed (a later call tries again)
 *
 * Since: 0.1
 */
const gfloat *
gst_mm_tokens_get_host (GstMmTokens * tokens, GError ** error)
{
  gfloat *host;
  gsize size;
  cl_int status;

  g_return_val_if_fail (tokens != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (tokens->mem == NULL)
    return tokens->host;

  g_mutex_lock (&tokens->lock);
  if (tokens->host == NULL) {
    size = gst_mm_tokens_get_size (tokens);
    host = g_malloc (size);
    status = clEnqueueReadBuffer (tokens->queue, tokens->mem, CL_TRUE,
        tokens->offset, size, host, 0, NULL, NULL);
    if (status == CL_SUCCESS) {
      tokens->host = host;
    } else {
      g_free (host);
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
          "GstMmTokens: clEnqueueReadBuffer of %" G_GSIZE_FORMAT
          " bytes at offset %" G_GSIZE_FORMAT " failed: %s (%d)", size,
          tokens->offset, cl_status_name (status), status);
    }
  }
  host = tokens->host;
  g_mutex_unlock (&tokens->lock);

  return host;
}

/**
 * gst_mm_tokens_get_device:
 * @tokens: a #GstMmTokens
 * @offset: (out) (optional): byte offset of the first token in the buffer
 *
 * The device buffer, for consumers that share the producer's OpenCL context
 * (check with clGetMemObjectInfo (CL_MEM_CONTEXT)).  Read it only; take your
 * own reference with clRetainMemObject() to keep it beyond the payload's
 * life.
 *
 * Returns: (transfer none) (nullable): the buffer, or %NULL for a host-only
 *     payload
 *
 * Since: 0.1
 */
cl_mem
gst_mm_tokens_get_device (GstMmTokens * tokens, gsize * offset)
{
  g_return_val_if_fail (tokens != NULL, NULL);

  if (offset)
    *offset = tokens->offset;
  return tokens->mem;
}

/**
 * gst_mm_tokens_get_queue:
 * @tokens: a #GstMmTokens
 *
 * Returns: (transfer none) (nullable): the queue the payload reads through
 *     (the producer's), or %NULL for a host-only payload
 *
 * Since: 0.1
 */
cl_command_queue
gst_mm_tokens_get_queue (GstMmTokens * tokens)
{
  g_return_val_if_fail (tokens != NULL, NULL);
  return tokens->queue;
}

static gboolean
gst_mm_tokens_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstMmTokensMeta *tmeta = (GstMmTokensMeta *) meta;

  tmeta->modality = GST_MM_MODALITY_VIDEO;
  tmeta->n_tokens = 0;
  tmeta->dim = 0;
  tmeta->dtype = GST_MM_TOKENS_DTYPE_F32;
  tmeta->pts = GST_CLOCK_TIME_NONE;
  tmeta->duration = GST_CLOCK_TIME_NONE;
  tmeta->model_id = NULL;
  tmeta->tokens = NULL;
  tmeta->n_views = 1;
  tmeta->tokens_per_view = 0;
  tmeta->rows = 0;
  tmeta->cols = 0;
  tmeta->global_view = 0;
  return TRUE;
}

static void
gst_mm_tokens_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstMmTokensMeta *tmeta = (GstMmTokensMeta *) meta;

  g_clear_pointer (&tmeta->tokens, gst_mm_tokens_unref);
  g_clear_pointer (&tmeta->model_id, g_free);
}

static gboolean
gst_mm_tokens_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstMmTokensMeta *src = (GstMmTokensMeta *) meta;
  GstMmTokensMeta *copy;

  /* The payload is immutable: every copy shares it.  A scaled picture still
   * shows what the tokens describe; other transforms (crops, ...) do not
   * keep the meta. */
  if (!GST_META_TRANSFORM_IS_COPY (type)
      && type != gst_video_meta_transform_scale_get_quark ())
    return FALSE;

  copy = gst_buffer_add_mm_tokens_meta (dest, src->modality, src->tokens,
      src->pts, src->duration, src->model_id);
  if (copy == NULL)
    return FALSE;
  copy->n_views = src->n_views;
  copy->tokens_per_view = src->tokens_per_view;
  copy->rows = src->rows;
  copy->cols = src->cols;
  copy->global_view = src->global_view;
  return TRUE;
}

/**
 * gst_mm_tokens_meta_api_get_type:
 *
 * Returns: the #GType of the GstMmTokensMeta API
 *
 * Since: 0.1
 */
GType
gst_mm_tokens_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType _type = gst_meta_api_type_register ("GstMmTokensMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

/**
 * gst_mm_tokens_meta_get_info:
 *
 * Returns: (transfer none): the #GstMetaInfo of #GstMmTokensMeta
 *
 * Since: 0.1
 */
const GstMetaInfo *
gst_mm_tokens_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *meta =
        gst_meta_register (GST_MM_TOKENS_META_API_TYPE, "GstMmTokensMeta",
        sizeof (GstMmTokensMeta), gst_mm_tokens_meta_init,
        gst_mm_tokens_meta_free, gst_mm_tokens_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) meta);
  }
  return info;
}

/**
 * gst_buffer_add_mm_tokens_meta:
 * @buffer: a writable #GstBuffer
 * @modality: what the tokens were computed from
 * @tokens: (transfer none): the payload; the meta takes a reference
 * @pts: start of the span the tokens describe, or %GST_CLOCK_TIME_NONE
 * @duration: length of that span, or %GST_CLOCK_TIME_NONE
 * @model_id: (nullable): identifier of the producing model; copied
 *
 * Attaches tokens to @buffer.  @n_tokens, @dim and @dtype of the meta are
 * those of @tokens; the layout is one view of all of them (see
 * gst_mm_tokens_meta_set_layout()).
 *
 * Returns: (transfer none): the new meta, owned by @buffer
 *
 * Since: 0.1
 */
GstMmTokensMeta *
gst_buffer_add_mm_tokens_meta (GstBuffer * buffer, GstMmModality modality,
    GstMmTokens * tokens, GstClockTime pts, GstClockTime duration,
    const gchar * model_id)
{
  GstMmTokensMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (tokens != NULL, NULL);

  meta = (GstMmTokensMeta *) gst_buffer_add_meta (buffer,
      GST_MM_TOKENS_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  meta->modality = modality;
  meta->tokens = gst_mm_tokens_ref (tokens);
  meta->n_tokens = tokens->n_tokens;
  meta->dim = tokens->dim;
  meta->dtype = tokens->dtype;
  meta->pts = pts;
  meta->duration = duration;
  meta->model_id = g_strdup (model_id);
  meta->n_views = 1;
  meta->tokens_per_view = meta->n_tokens;
  return meta;
}

/**
 * gst_mm_tokens_meta_set_layout:
 * @meta: a #GstMmTokensMeta
 * @rows: tile rows, 0 without tiles
 * @cols: tile columns, 0 without tiles
 * @n_views: views the tokens come from, > 0
 * @global_view: index of the view of the whole image, -1 for none
 *
 * Describes tokens made of several views of an image (an image processor's
 * splitting): @n_views equal runs of tokens, @rows × @cols tiles row by row
 * among them, and the whole image at @global_view.  The meta's n_tokens
 * must divide into @n_views; rows and cols are both 0 or both > 0 with
 * rows × cols tiles fitting in the views.
 *
 * Returns: %TRUE when the layout was valid and set; %FALSE leaves the meta
 *     unchanged
 *
 * Since: 0.1
 */
gboolean
gst_mm_tokens_meta_set_layout (GstMmTokensMeta * meta, guint rows, guint cols,
    guint n_views, gint global_view)
{
  g_return_val_if_fail (meta != NULL, FALSE);

  if (n_views == 0 || meta->n_tokens % n_views != 0 || (rows == 0) !=
      (cols == 0) || (guint64) rows * cols > n_views
      || global_view < -1 || global_view >= (gint) n_views)
    return FALSE;
  meta->n_views = n_views;
  meta->tokens_per_view = meta->n_tokens / n_views;
  meta->rows = rows;
  meta->cols = cols;
  meta->global_view = global_view;
  return TRUE;
}

/**
 * gst_buffer_get_mm_tokens_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the first #GstMmTokensMeta on
 *     @buffer, or %NULL
 *
 * Since: 0.1
 */
GstMmTokensMeta *
gst_buffer_get_mm_tokens_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstMmTokensMeta *) gst_buffer_get_meta (buffer,
      GST_MM_TOKENS_META_API_TYPE);
}

/**
 * gst_buffer_iterate_mm_tokens_meta:
 * @buffer: a #GstBuffer
 * @state: (inout) (nullable): an opaque iteration state, %NULL to start
 *
 * Walks every #GstMmTokensMeta on @buffer.
 *
 * Returns: (transfer none) (nullable): the next meta, or %NULL when done
 *
 * Since: 0.1
 */
GstMmTokensMeta *
gst_buffer_iterate_mm_tokens_meta (GstBuffer * buffer, gpointer * state)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (state != NULL, NULL);

  return (GstMmTokensMeta *) gst_buffer_iterate_meta_filtered (buffer, state,
      GST_MM_TOKENS_META_API_TYPE);
}
