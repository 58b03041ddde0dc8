/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-tensor.h"

#include <string.h>

#define ARENA_ALIGN 256
#define ARENA_MIN_CHUNK ((gsize) 16 << 20)
#define MM_GRAPH_UPLOAD_COPY_MAX ((gsize) 64 << 10)

typedef struct
{
  cl_mem buf;
  gsize size;
} Chunk;

struct _MmGraph
{
  MmEngine *engine;
  GError *error;
  GArray *chunks;               /* Chunk */
  guint cur_chunk;
  gsize cur_off;
  GPtrArray *tensors;           /* MmTensor descriptors of this forward */
  GHashTable *memo;             /* key -> MmTensor of this forward */
  GPtrArray *host;              /* copies that uploads not yet known to be
                                 * done read from (mm_graph_upload) */
  cl_event pace;                /* mm_graph_pace's marker of the step before */
  MmTensor dead;
};

const gchar *
mm_dtype_name (MmDType d)
{
  static const gchar *names[] = { "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1",
    "I32"
  };
  return (guint) d < G_N_ELEMENTS (names) ? names[d] : "?";
}

gint
mm_dtype_block_elems (MmDType d)
{
  return d == MM_DTYPE_Q8_0 || d == MM_DTYPE_Q4_0 || d == MM_DTYPE_Q4_1 ? 32 : 1;
}

gint
mm_dtype_block_bytes (MmDType d)
{
  switch (d) {
    case MM_DTYPE_F32:
    case MM_DTYPE_I32:
      return 4;
    case MM_DTYPE_F16:
    case MM_DTYPE_BF16:
      return 2;
    case MM_DTYPE_Q8_0:
      return 34;                /* f16 scale + 32 x int8 */
    case MM_DTYPE_Q4_0:
      return 18;                /* f16 scale + 16 bytes of nibbles */
    case MM_DTYPE_Q4_1:
      return 20;                /* f16 scale + f16 min + 16 bytes */
  }
  return 0;
}

gsize
mm_dtype_size (MmDType d, gint64 n)
{
  return (gsize) (n / mm_dtype_block_elems (d)) * mm_dtype_block_bytes (d);
}

gint64
mm_tensor_numel (const MmTensor * t)
{
  gint64 n = 1;
  for (gint i = 0; i < t->n_dims; i++)
    n *= t->shape[i];
  return n;
}

gint64
mm_tensor_cols (const MmTensor * t)
{
  return t->n_dims ? t->shape[t->n_dims - 1] : 1;
}

gint64
mm_tensor_rows (const MmTensor * t)
{
  gint64 c = mm_tensor_cols (t);
  return c ? mm_tensor_numel (t) / c : 0;
}

gsize
mm_tensor_nbytes (const MmTensor * t)
{
  return mm_dtype_size (t->dtype, mm_tensor_numel (t));
}

const gchar *
mm_tensor_shape_str (const MmTensor * t)
{
  static GPrivate key = G_PRIVATE_INIT (g_free);
  gchar *buf = g_private_get (&key);
  if (buf == NULL) {
    buf = g_malloc (128);
    g_private_set (&key, buf);
  }
  gsize n = g_snprintf (buf, 128, "[");
  for (gint i = 0; i < t->n_dims && n < 100; i++)
    n += g_snprintf (buf + n, 128 - n, "%s%" G_GINT64_FORMAT, i ? ", " : "",
        t->shape[i]);
  g_strlcat (buf, "]", 128);
  return buf;
}

static gboolean
check_shape (MmDType dtype, gint n_dims, const gint64 * shape,
    const gchar * what, GError ** error)
{
  if (n_dims < 1 || n_dims > MM_MAX_DIMS) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: %d dims (1..%d supported)", what, n_dims, MM_MAX_DIMS);
    return FALSE;
  }
  gint64 n = 1;
  for (gint i = 0; i < n_dims; i++) {
    if (shape[i] <= 0 || shape[i] > ((gint64) 1 << 40) / n) {
      g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
          "%s: invalid dim %d = %" G_GINT64_FORMAT, what, i, shape[i]);
      return FALSE;
    }
    n *= shape[i];
  }
  if (shape[n_dims - 1] % mm_dtype_block_elems (dtype) != 0) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: row length %" G_GINT64_FORMAT " is not a multiple of the %s "
        "block size %d", what, shape[n_dims - 1], mm_dtype_name (dtype),
        mm_dtype_block_elems (dtype));
    return FALSE;
  }
  return TRUE;
}

MmTensor *
mm_tensor_new (MmEngine * e, MmDType dtype, gint n_dims, const gint64 * shape,
    const gchar * what, GError ** error)
{
  if (!check_shape (dtype, n_dims, shape, what, error))
    return NULL;
  MmTensor *t = g_new0 (MmTensor, 1);
  t->dtype = dtype;
  t->n_dims = n_dims;
  memcpy (t->shape, shape, n_dims * sizeof (gint64));
  t->owns_buf = TRUE;
  t->buf = mm_engine_alloc (e, mm_tensor_nbytes (t), what, error);
  if (t->buf == NULL) {
    g_free (t);
    return NULL;
  }
  return t;
}

MmTensor *
mm_tensor_upload (MmEngine * e, MmDType dtype, gint n_dims,
    const gint64 * shape, const void *data, const gchar * what,
    GError ** error)
{
  MmTensor *t = mm_tensor_new (e, dtype, n_dims, shape, what, error);
  if (t && !mm_engine_write (e, t->buf, 0, mm_tensor_nbytes (t), data, error)) {
    mm_tensor_free (t);
    return NULL;
  }
  return t;
}

/* ggml blocks to the panel layout of gemm_quant.cl: for each panel of 32
 * rows and block of 32 columns, the 32 rows' codes interleaved by column,
 * then their scales (then mins).  Rows past @rows up to the panel are
 * zero.  A ggml Q4 block's 16 code bytes (element j low, j + 16 high)
 * move as they are. */
#define QP 32

MmTensor *
mm_tensor_upload_planar (MmEngine * e, MmDType dtype, gint64 rows,
    gint64 cols, const void *data, const gchar * what, GError ** error)
{
  gint bb = mm_dtype_block_bytes (dtype);
  gint64 shape[2] = { rows, cols };
  if (mm_dtype_block_elems (dtype) != 32) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "%s: %s is not a block-quantised type", what, mm_dtype_name (dtype));
    return NULL;
  }
  if (!check_shape (dtype, 2, shape, what, error))
    return NULL;
  /* Q8_0: 2-byte scale + 32 codes; Q4_0: scale + 16; Q4_1: scale, min + 16 */
  gint hdr = dtype == MM_DTYPE_Q4_1 ? 4 : 2, qb = bb - hdr;
  gint64 nblk = cols / 32, np = (rows + QP - 1) / QP;
  gsize rec = (gsize) QP * bb, size = (gsize) np * nblk * rec;
  guint8 *out = g_try_malloc0 (size);
  if (out == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "%s: out of host memory packing %" G_GSIZE_FORMAT " bytes", what,
        size);
    return NULL;
  }
  const guint8 *in = data;
  for (gint64 p = 0; p < np; p++)
    for (gint64 b = 0; b < nblk; b++) {
      guint8 *r = out + (p * nblk + b) * rec;
      guint8 *scales = r + QP * qb, *mins = scales + QP * 2;
      for (gint i = 0; i < QP && p * QP + i < rows; i++) {
        const guint8 *blk = in + ((p * QP + i) * nblk + b) * bb;
        for (gint j = 0; j < qb; j++)
          r[j * QP + i] = blk[hdr + j];
        memcpy (scales + i * 2, blk, 2);
        if (hdr == 4)
          memcpy (mins + i * 2, blk + 2, 2);
      }
    }
  gint64 padded[2] = { np * QP, cols };
  MmTensor *t = mm_tensor_upload (e, dtype, 2, padded, out, what, error);
  g_free (out);
  if (t) {
    t->shape[0] = rows;
    t->planar = TRUE;
  }
  return t;
}

MmTensor *
mm_tensor_new_in (const MmTensor * t, cl_mem buf, gsize offset)
{
  MmTensor *v = g_memdup2 (t, sizeof *t);
  clRetainMemObject (buf);
  v->buf = buf;
  v->offset = offset;
  v->owns_buf = TRUE;
  return v;
}

gsize
mm_tensor_span (const MmTensor * t)
{
  if (!t->planar)
    return mm_tensor_nbytes (t);
  return mm_dtype_size (t->dtype, (mm_tensor_rows (t) + 31) / 32 * 32 *
      mm_tensor_cols (t));
}

void
mm_tensor_free (MmTensor * t)
{
  if (t == NULL)
    return;
  if (t->owns_buf && t->buf)
    clReleaseMemObject (t->buf);
  g_free (t);
}

gboolean
mm_tensor_read_f32 (MmEngine * e, const MmTensor * t, float *dst,
    GError ** error)
{
  if (t->dtype != MM_DTYPE_F32 || t->buf == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
        "mm_tensor_read_f32: tensor %s is %s%s", mm_tensor_shape_str (t),
        mm_dtype_name (t->dtype), t->buf ? "" : " (dead)");
    return FALSE;
  }
  return mm_engine_read (e, t->buf, t->offset, mm_tensor_nbytes (t), dst,
      error);
}

float *
mm_tensor_dup_f32 (MmEngine * e, const MmTensor * t, GError ** error)
{
  float *d = g_try_new (float, MAX (mm_tensor_numel (t), 1));
  if (d == NULL) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "mm_tensor_dup_f32: out of host memory");
    return NULL;
  }
  if (!mm_tensor_read_f32 (e, t, d, error)) {
    g_free (d);
    return NULL;
  }
  return d;
}

MmTensor
mm_tensor_view (const MmTensor * t, gint n_dims, const gint64 * shape)
{
  MmTensor v = *t;
  v.owns_buf = FALSE;
  v.n_dims = n_dims;
  memset (v.shape, 0, sizeof (v.shape));
  memcpy (v.shape, shape, n_dims * sizeof (gint64));
  return v;
}

/* ---- graph ---- */

/* A marker after everything enqueued on the engine's queue so far (the
 * queue is in order), flushed; NULL if it could not be enqueued. */
static cl_event
graph_marker (MmGraph * g, cl_int * rc)
{
  cl_event ev = NULL;
  mm_engine_lock (g->engine);
  *rc = clEnqueueMarkerWithWaitList (mm_engine_queue (g->engine), 0, NULL,
      &ev);
  if (*rc == CL_SUCCESS)
    clFlush (mm_engine_queue (g->engine));
  mm_engine_unlock (g->engine);
  return *rc == CL_SUCCESS ? ev : NULL;
}

/* Waits until the queue has run what was enqueued on it so far.  The
 * queue lock is held only to enqueue the marker, not while waiting:
 * other threads' work (another element's model on the same device) is
 * enqueued meanwhile rather than held up. */
static cl_int
graph_wait_queue (MmGraph * g)
{
  cl_int rc;
  cl_event ev = graph_marker (g, &rc);
  if (ev) {
    rc = clWaitForEvents (1, &ev);
    clReleaseEvent (ev);
  }
  return rc;
}

static void
graph_drop_pace (MmGraph * g)
{
  if (g->pace)
    clReleaseEvent (g->pace);
  g->pace = NULL;
}

/* Frees the host copies of uploads, once the queue has run them. */
static void
graph_drop_host (MmGraph * g)
{
  if (g->host->len == 0)
    return;
  graph_wait_queue (g);
  g_ptr_array_set_size (g->host, 0);
}

MmGraph *
mm_graph_new (MmEngine * engine)
{
  MmGraph *g = g_new0 (MmGraph, 1);
  g->engine = mm_engine_ref (engine);
  g->chunks = g_array_new (FALSE, TRUE, sizeof (Chunk));
  g->tensors = g_ptr_array_new_with_free_func (g_free);
  g->memo = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g->host = g_ptr_array_new_with_free_func (g_free);
  g->dead.n_dims = 1;
  g->dead.shape[0] = 1;
  return g;
}

void
mm_graph_free (MmGraph * g)
{
  if (g == NULL)
    return;
  graph_drop_host (g);
  graph_drop_pace (g);
  g_ptr_array_unref (g->host);
  for (guint i = 0; i < g->chunks->len; i++)
    clReleaseMemObject (g_array_index (g->chunks, Chunk, i).buf);
  g_array_unref (g->chunks);
  g_ptr_array_unref (g->tensors);
  g_hash_table_destroy (g->memo);
  g_clear_error (&g->error);
  mm_engine_unref (g->engine);
  g_free (g);
}

MmEngine *
mm_graph_engine (MmGraph * g)
{
  return g->engine;
}

void
mm_graph_reset (MmGraph * g)
{
  graph_drop_host (g);
  graph_drop_pace (g);
  g->cur_chunk = 0;
  g->cur_off = 0;
  g_ptr_array_set_size (g->tensors, 0);
  g_hash_table_remove_all (g->memo);
  g_clear_error (&g->error);
}

MmTensor *
mm_graph_memo (MmGraph * g, const gchar * key, MmTensor * t)
{
  if (t && t->buf)
    g_hash_table_replace (g->memo, g_strdup (key), t);
  return t ? t : g_hash_table_lookup (g->memo, key);
}

gboolean
mm_graph_ok (MmGraph * g)
{
  return g->error == NULL;
}

void
mm_graph_fail (MmGraph * g, GError * err)
{
  if (g->error == NULL)
    g->error = err;
  else
    g_error_free (err);
}

void
mm_graph_failf (MmGraph * g, const gchar * format, ...)
{
  va_list args;
  if (g->error)
    return;
  va_start (args, format);
  g->error = g_error_new_valist (MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
      format, args);
  va_end (args);
}

gboolean
mm_graph_finish (MmGraph * g, GError ** error)
{
  graph_drop_pace (g);
  if (g->error == NULL) {
    GError *err = NULL;
    cl_int rc = graph_wait_queue (g);
    if (!mm_cl_check (rc, "waiting for the queue", &err))
      g->error = err;
    else
      g_ptr_array_set_size (g->host, 0);
  }
  if (g->error) {
    g_propagate_error (error, g_error_copy (g->error));
    return FALSE;
  }
  return TRUE;
}

/* Bump allocation from the chunk list; chunks persist across resets so a
 * steady-state forward allocates nothing on the device. */
static gboolean
arena_alloc (MmGraph * g, gsize size, cl_mem * buf, gsize * off)
{
  size = (size + ARENA_ALIGN - 1) & ~(gsize) (ARENA_ALIGN - 1);
  while (g->cur_chunk < g->chunks->len) {
    Chunk *c = &g_array_index (g->chunks, Chunk, g->cur_chunk);
    if (g->cur_off + size <= c->size) {
      *buf = c->buf;
      *off = g->cur_off;
      g->cur_off += size;
      return TRUE;
    }
    g->cur_chunk++;
    g->cur_off = 0;
  }
  gsize total = mm_graph_arena_size (g);
  gsize csize = MAX (MAX (size, ARENA_MIN_CHUNK), total);
  csize = MIN (csize, mm_engine_max_alloc (g->engine));
  if (size > csize) {
    mm_graph_failf (g, "scratch tensor of %" G_GSIZE_FORMAT " bytes exceeds "
        "the device's largest allocation (%" G_GSIZE_FORMAT ")", size, csize);
    return FALSE;
  }
  GError *err = NULL;
  Chunk c = { mm_engine_alloc (g->engine, csize, "scratch arena", &err), csize };
  if (c.buf == NULL) {
    mm_graph_fail (g, err);
    return FALSE;
  }
  g_array_append_val (g->chunks, c);
  g->cur_chunk = g->chunks->len - 1;
  *buf = c.buf;
  *off = 0;
  g->cur_off = size;
  return TRUE;
}

/* The longest mm_graph_pace holds a forward back for urgent work of
 * another thread (a long caption must not stall an encoder for good) */
#define PACE_URGENT_MAX_US (2 * G_USEC_PER_SEC)

void
mm_graph_pace (MmGraph * g)
{
  cl_int rc;
  if (g->error)
    return;
  cl_event ev = graph_marker (g, &rc);
  if (g->pace)
    clWaitForEvents (1, &g->pace);
  graph_drop_pace (g);
  g->pace = ev;
  mm_engine_wait_urgent (g->engine, PACE_URGENT_MAX_US);
}

MmGraphMark
mm_graph_mark (MmGraph * g)
{
  MmGraphMark m = { g->cur_chunk, g->cur_off, g->tensors->len };
  return m;
}

void
mm_graph_rewind (MmGraph * g, MmGraphMark mark)
{
  if (mark.chunk > g->cur_chunk || mark.n_tensors > g->tensors->len
      || (mark.chunk == g->cur_chunk && mark.offset > g->cur_off))
    return;                     /* not a mark of this forward */
  g->cur_chunk = mark.chunk;
  g->cur_off = mark.offset;
  /* memo entries taken since the mark go with their tensors */
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, g->memo);
  while (g_hash_table_iter_next (&it, &key, &value))
    for (guint i = mark.n_tensors; i < g->tensors->len; i++)
      if (g_ptr_array_index (g->tensors, i) == value) {
        g_hash_table_iter_remove (&it);
        break;
      }
  g_ptr_array_set_size (g->tensors, mark.n_tensors);
}

MmTensor *
mm_graph_dead (MmGraph * g)
{
  return &g->dead;
}

gsize
mm_graph_arena_size (MmGraph * g)
{
  gsize total = 0;
  for (guint i = 0; i < g->chunks->len; i++)
    total += g_array_index (g->chunks, Chunk, i).size;
  return total;
}

MmTensor *
mm_graph_keep (MmGraph * g, MmTensor view)
{
  MmTensor *t = g_new (MmTensor, 1);
  *t = view;
  t->owns_buf = FALSE;
  g_ptr_array_add (g->tensors, t);
  return t;
}

MmTensor *
mm_graph_tensor (MmGraph * g, MmDType dtype, gint n_dims, const gint64 * shape)
{
  if (g->error)
    return &g->dead;
  GError *err = NULL;
  if (!check_shape (dtype, n_dims, shape, "scratch tensor", &err)) {
    mm_graph_fail (g, err);
    return &g->dead;
  }
  MmTensor t = { 0 };
  t.dtype = dtype;
  t.n_dims = n_dims;
  memcpy (t.shape, shape, n_dims * sizeof (gint64));
  if (!arena_alloc (g, mm_tensor_nbytes (&t), &t.buf, &t.offset))
    return &g->dead;
  return mm_graph_keep (g, t);
}

MmTensor *
mm_graph_tensor_2d (MmGraph * g, gint64 rows, gint64 cols)
{
  gint64 s[2] = { rows, cols };
  return mm_graph_tensor (g, MM_DTYPE_F32, 2, s);
}

MmTensor *
mm_reshape (MmGraph * g, MmTensor * t, gint n_dims, const gint64 * shape)
{
  if (g->error)
    return &g->dead;
  MmTensor v = mm_tensor_view (t, n_dims, shape);
  if (n_dims < 1 || n_dims > MM_MAX_DIMS
      || mm_tensor_numel (&v) != mm_tensor_numel (t)) {
    mm_graph_failf (g, "reshape: %s has %" G_GINT64_FORMAT " elements, "
        "target shape has %" G_GINT64_FORMAT, mm_tensor_shape_str (t),
        mm_tensor_numel (t), mm_tensor_numel (&v));
    return &g->dead;
  }
  return mm_graph_keep (g, v);
}

MmTensor *
mm_reshape_2d (MmGraph * g, MmTensor * t, gint64 rows, gint64 cols)
{
  gint64 s[2] = { rows, cols };
  return mm_reshape (g, t, 2, s);
}

MmTensor *
mm_reshape_3d (MmGraph * g, MmTensor * t, gint64 d0, gint64 d1, gint64 d2)
{
  gint64 s[3] = { d0, d1, d2 };
  return mm_reshape (g, t, 3, s);
}

gboolean
mm_graph_upload (MmGraph * g, MmTensor * t, const void *data, gsize size)
{
  if (g->error)
    return FALSE;
  /* small ones (token ids, rope tables) from a copy the queue reads
   * later, so a forward does not wait on its queue before its end; large
   * ones (an image, audio) as they are, waiting, rather than copied twice */
  gboolean small = size <= MM_GRAPH_UPLOAD_COPY_MAX;
  gpointer copy = small ? g_memdup2 (data, size) : NULL;
  if (copy)
    g_ptr_array_add (g->host, copy);
  mm_engine_lock (g->engine);
  cl_int rc = clEnqueueWriteBuffer (mm_engine_queue (g->engine), t->buf,
      small ? CL_FALSE : CL_TRUE, t->offset, size, small ? copy : data, 0,
      NULL, NULL);
  mm_engine_unlock (g->engine);
  GError *err = NULL;
  if (!mm_cl_check (rc, "graph input upload", &err)) {
    mm_graph_fail (g, err);
    return FALSE;
  }
  return TRUE;
}

MmTensor *
mm_graph_input_f32 (MmGraph * g, gint n_dims, const gint64 * shape,
    const float *data)
{
  MmTensor *t = mm_graph_tensor (g, MM_DTYPE_F32, n_dims, shape);
  if (g->error)
    return t;
  mm_graph_upload (g, t, data, mm_tensor_nbytes (t));
  return t;
}
