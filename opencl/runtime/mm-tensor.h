/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tensors and graphs.
 *
 * An MmTensor is a view of a cl_mem: dtype, up to 4 dims written outermost
 * first (the last dim is contiguous), and a byte offset.  Weights own their
 * buffer (mm_tensor_new / mm_tensor_upload, freed with mm_tensor_free).
 * Activations come from an MmGraph's scratch arena and live until the next
 * mm_graph_reset(); they are never freed one by one.
 *
 * An MmGraph is one forward pass: ops enqueue without waiting; the first
 * failure is kept as a sticky GError, later ops do nothing, and
 * mm_graph_finish() reports it.  Layer code therefore has no error checks.
 */
#pragma once

#include "mm-engine.h"

G_BEGIN_DECLS

typedef enum
{
  MM_DTYPE_F32,
  MM_DTYPE_F16,
  MM_DTYPE_BF16,
  MM_DTYPE_Q8_0,
  MM_DTYPE_Q4_0,
  MM_DTYPE_Q4_1,
  MM_DTYPE_I32,
} MmDType;

#define MM_MAX_DIMS 4

typedef struct
{
  cl_mem buf;
  gsize offset;                 /* bytes */
  MmDType dtype;
  gint n_dims;
  gint64 shape[MM_MAX_DIMS];    /* outermost first */
  gboolean owns_buf;
  /* Quantised matrices for GEMM are stored in the panel layout of
   * gemm_quant.cl (mm_tensor_upload_planar): per 32 rows and 32 columns,
   * the codes interleaved by column, then the scales (then the mins);
   * rows padded to a multiple of 32. */
  gboolean planar;
} MmTensor;

const gchar *mm_dtype_name (MmDType dtype);
/* Elements per block and bytes per block (1 and sizeof for plain types). */
gint mm_dtype_block_elems (MmDType dtype);
gint mm_dtype_block_bytes (MmDType dtype);
/* Bytes for @n elements; @n must be a multiple of the block size. */
gsize mm_dtype_size (MmDType dtype, gint64 n);

gint64 mm_tensor_numel (const MmTensor * t);
/* Number of rows: product of all dims but the last. */
gint64 mm_tensor_rows (const MmTensor * t);
gint64 mm_tensor_cols (const MmTensor * t);
gsize mm_tensor_nbytes (const MmTensor * t);
/* "[3, 7, 13]" (static buffer per thread) */
const gchar *mm_tensor_shape_str (const MmTensor * t);

/* Owned device tensors. */
MmTensor *mm_tensor_new (MmEngine * e, MmDType dtype, gint n_dims,
    const gint64 * shape, const gchar * what, GError ** error);
MmTensor *mm_tensor_upload (MmEngine * e, MmDType dtype, gint n_dims,
    const gint64 * shape, const void *data, const gchar * what,
    GError ** error);
/* A quantised 2-D matrix from ggml's interleaved blocks (@data, as in a
 * GGUF file) into the panel layout our GEMM kernels read (see
 * MmTensor.planar; the buffer holds @rows rounded up to 32 rows). */
MmTensor *mm_tensor_upload_planar (MmEngine * e, MmDType dtype, gint64 rows,
    gint64 cols, const void *data, const gchar * what, GError ** error);
/* An owned tensor with @t's dtype, shape and layout at byte @offset of
 * @buf (which it keeps a reference to). */
MmTensor *mm_tensor_new_in (const MmTensor * t, cl_mem buf, gsize offset);
/* Bytes of its buffer @t's data spans (panels: rows rounded up to 32). */
gsize mm_tensor_span (const MmTensor * t);
void mm_tensor_free (MmTensor * t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmTensor, mm_tensor_free)

/* Reads an F32 tensor to host memory (blocking). */
gboolean mm_tensor_read_f32 (MmEngine * e, const MmTensor * t, float *dst,
    GError ** error);
/* Same as above, returns a newly allocated array of numel floats. */
float *mm_tensor_dup_f32 (MmEngine * e, const MmTensor * t, GError ** error);

/* A view with another shape of the same elements (no copy). */
MmTensor mm_tensor_view (const MmTensor * t, gint n_dims, const gint64 * shape);

typedef struct _MmGraph MmGraph;

MmGraph *mm_graph_new (MmEngine * engine);
void mm_graph_free (MmGraph * g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmGraph, mm_graph_free)

MmEngine *mm_graph_engine (MmGraph * g);
/* Starts a new forward: all arena tensors of the previous one become
 * invalid, the sticky error is cleared. */
void mm_graph_reset (MmGraph * g);
gboolean mm_graph_ok (MmGraph * g);
/* Takes @err as the sticky error unless one is already set. */
void mm_graph_fail (MmGraph * g, GError * err);
void mm_graph_failf (MmGraph * g, const gchar * format, ...) G_GNUC_PRINTF (2,
    3);
/* Waits for the queue and reports the sticky error, if any. */
gboolean mm_graph_finish (MmGraph * g, GError ** error);
/* Paces a long forward that shares the engine's queue (in order) with
 * latency-bound work of other threads (an LLM decoding a token at a time
 * while a vision or audio encoder runs): waits until what this graph had
 * enqueued by the previous call has run.  Called once per layer, it keeps
 * at most about two layers of this forward queued, so another thread's
 * step waits behind those, not behind the whole forward; the device stays
 * busy with the layer still queued.  While another thread does urgent
 * work (mm_engine_urgent_begin), it then waits for that to end too (2 s
 * at most). */
void mm_graph_pace (MmGraph * g);

/* Arena tensor (invalid after the next reset).  On failure the graph's
 * sticky error is set and a dead tensor (buf NULL) is returned. */
MmTensor *mm_graph_tensor (MmGraph * g, MmDType dtype, gint n_dims,
    const gint64 * shape);
MmTensor *mm_graph_tensor_2d (MmGraph * g, gint64 rows, gint64 cols);
/* A graph-owned copy of a view descriptor (e.g. from mm_tensor_view). */
MmTensor *mm_graph_keep (MmGraph * g, MmTensor view);
/* Reshape without copy; numel must match. */
MmTensor *mm_reshape (MmGraph * g, MmTensor * t, gint n_dims,
    const gint64 * shape);
MmTensor *mm_reshape_2d (MmGraph * g, MmTensor * t, gint64 rows, gint64 cols);
MmTensor *mm_reshape_3d (MmGraph * g, MmTensor * t, gint64 d0, gint64 d1,
    gint64 d2);
/* Uploads host floats into an arena tensor.  Small uploads (up to 64 KiB)
 * here and in mm_graph_upload do not wait: the graph keeps a copy of
 * @data until the queue has run (mm_graph_finish, or the next reset). */
MmTensor *mm_graph_input_f32 (MmGraph * g, gint n_dims, const gint64 * shape,
    const float *data);
/* Writes @size bytes of @data at the start of @t (a tensor of this
 * forward), after the ops enqueued so far.  FALSE (and the sticky error)
 * on failure. */
gboolean mm_graph_upload (MmGraph * g, MmTensor * t, const void *data,
    gsize size);

/* A point of the arena to go back to. */
typedef struct
{
  guint chunk;
  gsize offset;
  guint n_tensors;
} MmGraphMark;

MmGraphMark mm_graph_mark (MmGraph * g);
/* Gives the arena memory taken since @mark back to later ops of the same
 * forward: tensors taken since then must not be used any more.  Kernels
 * already enqueued that still read or write them are safe, the queue being
 * in order.  Bounds a deep model's arena by one layer's worth of
 * temporaries (copy what must survive into a tensor taken before @mark). */
void mm_graph_rewind (MmGraph * g, MmGraphMark mark);

/* A per-forward memo: returns the tensor stored under @key in this forward
 * (NULL if none); with @t non-NULL stores it and returns @t.  Cleared by
 * mm_graph_reset(). */
MmTensor *mm_graph_memo (MmGraph * g, const gchar * key, MmTensor * t);

/* The graph's dead tensor, returned by ops after a failure. */
MmTensor *mm_graph_dead (MmGraph * g);

/* Bytes the arena holds on the device (high-water mark). */
gsize mm_graph_arena_size (MmGraph * g);

G_END_DECLS
