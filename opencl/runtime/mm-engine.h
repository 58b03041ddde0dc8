/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MmEngine: one OpenCL device, its context, one in-order queue and the
 * program holding every mm kernel.  Engines are shared process-wide through
 * a registry keyed by device, so several elements use one context and hand
 * cl_mem buffers to each other without a host copy.
 *
 * Thread safety: an engine may be used from several threads.  Enqueueing
 * (setting kernel arguments and launching) happens under the engine's queue
 * lock, taken by the op wrappers; callers never touch cl_kernel objects.
 */
#pragma once

#include <glib.h>
#include <CL/cl.h>

G_BEGIN_DECLS

#define MM_ENGINE_ERROR (mm_engine_error_quark ())
GQuark mm_engine_error_quark (void);

typedef enum
{
  MM_ENGINE_ERROR_NO_DEVICE,
  MM_ENGINE_ERROR_OPENCL,
  MM_ENGINE_ERROR_BUILD,
  MM_ENGINE_ERROR_OUT_OF_MEMORY,
  MM_ENGINE_ERROR_INVALID,
} MmEngineError;

typedef enum
{
  MM_DEVICE_CLASS_CPU,
  MM_DEVICE_CLASS_GPU,
  MM_DEVICE_CLASS_OTHER,
} MmDeviceClass;

typedef struct _MmEngine MmEngine;

/* Device spec: NULL or "" or "auto" (MM_DEVICE env var, else the first GPU,
 * else the first device), "cpu", "gpu", a decimal index into the list of all
 * devices (platform order), or a case-insensitive substring of
 * "platform name: device name". */
MmEngine *mm_engine_get (const gchar * device_spec, GError ** error);
MmEngine *mm_engine_ref (MmEngine * engine);
void mm_engine_unref (MmEngine * engine);

/* A newline-separated list of all devices seen ("index: platform: device"). */
gchar *mm_engine_list_devices (void);

const gchar *mm_engine_device_name (MmEngine * engine);
MmDeviceClass mm_engine_device_class (MmEngine * engine);
cl_context mm_engine_context (MmEngine * engine);
cl_command_queue mm_engine_queue (MmEngine * engine);
cl_device_id mm_engine_device (MmEngine * engine);
gsize mm_engine_max_alloc (MmEngine * engine);
guint mm_engine_compute_units (MmEngine * engine);

/* The counter kernels that spread their work dynamically claim units
 * from (claim_unit / claim_end in common.cl): MM_WORK_COUNTER_UINTS
 * zeroed uints, zero again after each such kernel.  Kernels of the
 * engine's one in-order queue never overlap, so one counter serves all. */
#define MM_WORK_COUNTER_UINTS 48
cl_mem mm_engine_work_counter (MmEngine * engine);

/* Kernel lookup by name ("kernel_add" ...).  The returned kernel belongs to
 * the engine; use it only between mm_engine_lock() and mm_engine_unlock(). */
cl_kernel mm_engine_kernel (MmEngine * engine, const gchar * name,
    GError ** error);
void mm_engine_lock (MmEngine * engine);
void mm_engine_unlock (MmEngine * engine);

gboolean mm_engine_finish (MmEngine * engine, GError ** error);

/* Latency-bound work in progress on the engine (an LLM generating a
 * caption: a prefill, then a launch a token, each waiting on the host):
 * between begin and end, long forwards of other threads hold back their
 * next layers (mm_graph_pace -> mm_engine_wait_urgent), so the tokens do
 * not queue behind a whole vision or audio encode.  Calls nest. */
void mm_engine_urgent_begin (MmEngine * engine);
void mm_engine_urgent_end (MmEngine * engine);
/* Waits while urgent work is in progress, @max_us at most. */
void mm_engine_wait_urgent (MmEngine * engine, gint64 max_us);

/* Device buffer helpers; errors name @what.  On CPU devices buffers of 2
 * MiB and more sit on transparent huge pages (fewer TLB misses when a
 * kernel streams them); MM_NO_HUGE_PAGES set: never. */
cl_mem mm_engine_alloc (MmEngine * engine, gsize size, const gchar * what,
    GError ** error);
/* mm_engine_alloc for a buffer most of whose pages may stay untouched for
 * long (a KV cache sized for the longest context): never on huge pages,
 * which would make all of it resident at once. */
cl_mem mm_engine_alloc_sparse (MmEngine * engine, gsize size,
    const gchar * what, GError ** error);
gboolean mm_engine_write (MmEngine * engine, cl_mem buf, gsize offset,
    gsize size, const void *src, GError ** error);
gboolean mm_engine_read (MmEngine * engine, cl_mem buf, gsize offset,
    gsize size, void *dst, GError ** error);
/* Device-to-device copy, finished on return. */
gboolean mm_engine_copy (MmEngine * engine, cl_mem src, gsize src_offset,
    cl_mem dst, gsize dst_offset, gsize size, GError ** error);

const gchar *mm_cl_strerror (cl_int code);

/* Sets @error from an OpenCL status code, naming @what.  Returns FALSE when
 * @code is an error. */
gboolean mm_cl_check (cl_int code, const gchar * what, GError ** error);

/* Profiling (MM_PROFILE set in the environment): device time per kernel,
 * for bench/ programs. */
gboolean mm_engine_profiling (MmEngine * engine);
void mm_engine_profile_add (MmEngine * engine, const gchar * kernel,
    cl_event ev);
gchar *mm_engine_profile_report (MmEngine * engine, gboolean reset);

/* Where compiled program binaries are cached ($XDG_CACHE_HOME/mm/kernels,
 * or $MM_KERNEL_CACHE_DIR when set). */
gchar *mm_engine_cache_dir (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MmEngine, mm_engine_unref)

G_END_DECLS
