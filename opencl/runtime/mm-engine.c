/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-engine.h"

#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <glib/gstdio.h>

extern const char mm_kernels_source[];

#define MM_BUILD_OPTIONS "-cl-std=CL1.2 -cl-mad-enable"

struct _MmEngine
{
  gint refcount;
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_program program;
  gchar *name;
  MmDeviceClass klass;
  gsize max_alloc;
  guint compute_units;
  cl_mem work_counter;          /* claim_unit / claim_end (common.cl) */
  GMutex lock;                  /* queue lock: kernel args + enqueue */
  GHashTable *kernels;          /* name -> cl_kernel */
  gboolean profiling;           /* MM_PROFILE set: per-kernel device time */
  GHashTable *prof;             /* kernel name -> ProfEntry */
  GMutex urgent_lock;           /* mm_engine_urgent_begin / end */
  GCond urgent_cond;
  gint urgent;
};

typedef struct
{
  gdouble ms;
  guint64 calls;
} ProfEntry;

G_DEFINE_QUARK (mm - engine - error - quark, mm_engine_error);

/* process-wide registry: cl_device_id -> MmEngine (not ref'd: engines
 * remove themselves on their last unref) */
static GMutex registry_lock;
static GHashTable *registry;

typedef struct
{
  cl_platform_id platform;
  cl_device_id device;
  gchar *label;                 /* "platform: device" */
  cl_device_type type;
} DevInfo;

const gchar *
mm_cl_strerror (cl_int code)
{
  switch (code) {
#define C(x) case x: return #x;
      C (CL_SUCCESS) C (CL_DEVICE_NOT_FOUND) C (CL_DEVICE_NOT_AVAILABLE)
      C (CL_COMPILER_NOT_AVAILABLE) C (CL_MEM_OBJECT_ALLOCATION_FAILURE)
      C (CL_OUT_OF_RESOURCES) C (CL_OUT_OF_HOST_MEMORY)
      C (CL_BUILD_PROGRAM_FAILURE) C (CL_INVALID_VALUE)
      C (CL_INVALID_DEVICE) C (CL_INVALID_CONTEXT) C (CL_INVALID_MEM_OBJECT)
      C (CL_INVALID_BINARY) C (CL_INVALID_BUILD_OPTIONS)
      C (CL_INVALID_PROGRAM) C (CL_INVALID_KERNEL_NAME)
      C (CL_INVALID_KERNEL) C (CL_INVALID_ARG_INDEX) C (CL_INVALID_ARG_VALUE)
      C (CL_INVALID_ARG_SIZE) C (CL_INVALID_KERNEL_ARGS)
      C (CL_INVALID_WORK_DIMENSION) C (CL_INVALID_WORK_GROUP_SIZE)
      C (CL_INVALID_WORK_ITEM_SIZE) C (CL_INVALID_GLOBAL_OFFSET)
      C (CL_INVALID_BUFFER_SIZE) C (CL_INVALID_GLOBAL_WORK_SIZE)
      C (CL_INVALID_COMMAND_QUEUE) C (CL_INVALID_EVENT_WAIT_LIST)
      C (CL_MISALIGNED_SUB_BUFFER_OFFSET) C (CL_INVALID_PLATFORM)
#undef C
    default:
      return "unknown OpenCL error";
  }
}

gboolean
mm_cl_check (cl_int code, const gchar * what, GError ** error)
{
  if (code == CL_SUCCESS)
    return TRUE;
  g_set_error (error, MM_ENGINE_ERROR,
      code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_HOST_MEMORY
      ? MM_ENGINE_ERROR_OUT_OF_MEMORY : MM_ENGINE_ERROR_OPENCL,
      "%s failed: %s (%d)", what, mm_cl_strerror (code), code);
  return FALSE;
}

static gchar *
platform_str (cl_platform_id p, cl_platform_info what)
{
  gsize n = 0;
  if (clGetPlatformInfo (p, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return g_strdup ("?");
  gchar *s = g_malloc0 (n + 1);
  clGetPlatformInfo (p, what, n, s, NULL);
  return s;
}

static gchar *
device_str (cl_device_id d, cl_device_info what)
{
  gsize n = 0;
  if (clGetDeviceInfo (d, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return g_strdup ("?");
  gchar *s = g_malloc0 (n + 1);
  clGetDeviceInfo (d, what, n, s, NULL);
  return s;
}

static void
dev_info_clear (DevInfo * d)
{
  g_free (d->label);
}

/* Every device of every platform, in platform order. */
static GArray *
enumerate_devices (void)
{
  GArray *devs = g_array_new (FALSE, TRUE, sizeof (DevInfo));
  g_array_set_clear_func (devs, (GDestroyNotify) dev_info_clear);
  cl_uint np = 0;
  if (clGetPlatformIDs (0, NULL, &np) != CL_SUCCESS || np == 0)
    return devs;
  cl_platform_id *plats = g_new0 (cl_platform_id, np);
  clGetPlatformIDs (np, plats, NULL);
  for (cl_uint i = 0; i < np; i++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs (plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) !=
        CL_SUCCESS || nd == 0)
      continue;
    cl_device_id *ids = g_new0 (cl_device_id, nd);
    clGetDeviceIDs (plats[i], CL_DEVICE_TYPE_ALL, nd, ids, NULL);
    gchar *pname = platform_str (plats[i], CL_PLATFORM_NAME);
    for (cl_uint j = 0; j < nd; j++) {
      DevInfo d = { plats[i], ids[j], NULL, 0 };
      gchar *dname = device_str (ids[j], CL_DEVICE_NAME);
      d.label = g_strdup_printf ("%s: %s", pname, dname);
      clGetDeviceInfo (ids[j], CL_DEVICE_TYPE, sizeof (d.type), &d.type, NULL);
      g_array_append_val (devs, d);
      g_free (dname);
    }
    g_free (pname);
    g_free (ids);
  }
  g_free (plats);
  return devs;
}

static gchar *
format_devices (GArray * devs)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < devs->len; i++) {
    DevInfo *d = &g_array_index (devs, DevInfo, i);
    g_string_append_printf (s, "%s%u: %s (%s)", i ? "\n" : "", i, d->label,
        d->type & CL_DEVICE_TYPE_GPU ? "gpu" :
        d->type & CL_DEVICE_TYPE_CPU ? "cpu" : "other");
  }
  if (devs->len == 0)
    g_string_append (s, "(no OpenCL devices: is an ICD such as pocl-opencl-icd "
        "installed?)");
  return g_string_free (s, FALSE);
}

gchar *
mm_engine_list_devices (void)
{
  GArray *devs = enumerate_devices ();
  gchar *s = format_devices (devs);
  g_array_unref (devs);
  return s;
}

static gint
find_device (GArray * devs, const gchar * spec)
{
  if (devs->len == 0)
    return -1;
  if (spec == NULL || *spec == '\0' || g_ascii_strcasecmp (spec, "auto") == 0) {
    for (guint i = 0; i < devs->len; i++)
      if (g_array_index (devs, DevInfo, i).type & CL_DEVICE_TYPE_GPU)
        return i;
    return 0;
  }
  gboolean want_cpu = g_ascii_strcasecmp (spec, "cpu") == 0;
  if (want_cpu || g_ascii_strcasecmp (spec, "gpu") == 0) {
    cl_device_type t = want_cpu ? CL_DEVICE_TYPE_CPU : CL_DEVICE_TYPE_GPU;
    for (guint i = 0; i < devs->len; i++)
      if (g_array_index (devs, DevInfo, i).type & t)
        return i;
    return -1;
  }
  guint64 idx;
  if (g_ascii_string_to_unsigned (spec, 10, 0, G_MAXINT, &idx, NULL))
    return idx < devs->len ? (gint) idx : -1;
  gchar *needle = g_utf8_casefold (spec, -1);
  gint found = -1;
  for (guint i = 0; i < devs->len && found < 0; i++) {
    gchar *hay = g_utf8_casefold (g_array_index (devs, DevInfo, i).label, -1);
    if (strstr (hay, needle))
      found = i;
    g_free (hay);
  }
  g_free (needle);
  return found;
}

gchar *
mm_engine_cache_dir (void)
{
  const gchar *env = g_getenv ("MM_KERNEL_CACHE_DIR");
  if (env && *env)
    return g_strdup (env);
  return g_build_filename (g_get_user_cache_dir (), "mm", "kernels", NULL);
}

/* MM_BUILD_OPTIONS, then $MM_CL_OPTIONS (tuning: e.g. "-DQPF=4" to try
 * another value of a kernel constant; part of the cache key). */
static gchar *
build_options (void)
{
  const gchar *extra = g_getenv ("MM_CL_OPTIONS");
  return g_strconcat (MM_BUILD_OPTIONS, extra ? " " : "", extra, NULL);
}

static gchar *
cache_path (MmEngine * e)
{
  gchar *pname = platform_str (e->platform, CL_PLATFORM_NAME);
  gchar *pver = platform_str (e->platform, CL_PLATFORM_VERSION);
  gchar *dver = device_str (e->device, CL_DRIVER_VERSION);
  GChecksum *ck = g_checksum_new (G_CHECKSUM_SHA256);
  gchar *opts = build_options ();
  const gchar *parts[] = { pname, pver, e->name, dver, opts,
    mm_kernels_source
  };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    g_checksum_update (ck, (const guchar *) parts[i], strlen (parts[i]) + 1);
  g_free (opts);
  gchar *dir = mm_engine_cache_dir ();
  gchar *file = g_strdup_printf ("%s.bin", g_checksum_get_string (ck));
  gchar *path = g_build_filename (dir, file, NULL);
  g_checksum_free (ck);
  g_free (pname);
  g_free (pver);
  g_free (dver);
  g_free (dir);
  g_free (file);
  return path;
}

static gboolean
build_program (MmEngine * e, cl_program p, GError ** error)
{
  gchar *opts = build_options ();
  cl_int err = clBuildProgram (p, 1, &e->device, opts, NULL, NULL);
  g_free (opts);
  if (err == CL_SUCCESS)
    return TRUE;
  gsize n = 0;
  clGetProgramBuildInfo (p, e->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  gchar *log = g_malloc0 (n + 1);
  clGetProgramBuildInfo (p, e->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_BUILD,
      "building the mm kernels for %s failed: %s (%d)\n%s", e->name,
      mm_cl_strerror (err), err, log);
  g_free (log);
  return FALSE;
}

/* Try the on-disk binary; any failure means "rebuild", never an error. */
static cl_program
load_cached (MmEngine * e, const gchar * path)
{
  gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, NULL) || len == 0) {
    g_free (data);
    return NULL;
  }
  cl_int err, status;
  const unsigned char *bin = (const unsigned char *) data;
  cl_program p = clCreateProgramWithBinary (e->context, 1, &e->device, &len,
      &bin, &status, &err);
  g_free (data);
  if (err != CL_SUCCESS || status != CL_SUCCESS) {
    if (p)
      clReleaseProgram (p);
    return NULL;
  }
  gchar *opts = build_options ();
  cl_int rc = clBuildProgram (p, 1, &e->device, opts, NULL, NULL);
  g_free (opts);
  if (rc != CL_SUCCESS) {
    clReleaseProgram (p);
    return NULL;
  }
  return p;
}

static void
save_cached (MmEngine * e, cl_program p, const gchar * path)
{
  gsize len = 0;
  if (clGetProgramInfo (p, CL_PROGRAM_BINARY_SIZES, sizeof (len), &len,
          NULL) != CL_SUCCESS || len == 0)
    return;
  unsigned char *bin = g_malloc (len);
  if (clGetProgramInfo (p, CL_PROGRAM_BINARIES, sizeof (bin), &bin,
          NULL) == CL_SUCCESS) {
    gchar *dir = g_path_get_dirname (path);
    if (g_mkdir_with_parents (dir, 0755) == 0)
      g_file_set_contents (path, (const gchar *) bin, len, NULL);       /* atomic */
    g_free (dir);
  }
  g_free (bin);
}

static gboolean
engine_build (MmEngine * e, GError ** error)
{
  gchar *path = cache_path (e);
  e->program = load_cached (e, path);
  if (e->program == NULL) {
    cl_int err;
    const char *src = mm_kernels_source;
    e->program = clCreateProgramWithSource (e->context, 1, &src, NULL, &err);
    if (!mm_cl_check (err, "clCreateProgramWithSource", error)) {
      e->program = NULL;
      g_free (path);
      return FALSE;
    }
    if (!build_program (e, e->program, error)) {
      g_free (path);
      return FALSE;
    }
    save_cached (e, e->program, path);
  }
  g_free (path);
  return TRUE;
}

static void
release_kernel (gpointer k)
{
  clReleaseKernel ((cl_kernel) k);
}

static void
engine_free (MmEngine * e)
{
  if (e->kernels)
    g_hash_table_destroy (e->kernels);
  if (e->prof)
    g_hash_table_destroy (e->prof);
  if (e->program)
    clReleaseProgram (e->program);
  if (e->work_counter)
    clReleaseMemObject (e->work_counter);
  if (e->queue)
    clReleaseCommandQueue (e->queue);
  if (e->context)
    clReleaseContext (e->context);
  g_mutex_clear (&e->lock);
  g_mutex_clear (&e->urgent_lock);
  g_cond_clear (&e->urgent_cond);
  g_free (e->name);
  g_free (e);
}

static MmEngine *
engine_new (DevInfo * d, GError ** error)
{
  MmEngine *e = g_new0 (MmEngine, 1);
  cl_int err;
  e->refcount = 1;
  e->platform = d->platform;
  e->device = d->device;
  e->name = g_strdup (d->label);
  e->klass = d->type & CL_DEVICE_TYPE_GPU ? MM_DEVICE_CLASS_GPU :
      d->type & CL_DEVICE_TYPE_CPU ? MM_DEVICE_CLASS_CPU : MM_DEVICE_CLASS_OTHER;
  g_mutex_init (&e->lock);
  g_mutex_init (&e->urgent_lock);
  g_cond_init (&e->urgent_cond);
  e->kernels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      release_kernel);
  cl_ulong maxa = 0;
  clGetDeviceInfo (e->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof (maxa),
      &maxa, NULL);
  e->max_alloc = maxa ? (gsize) maxa : (gsize) 256 << 20;
  cl_uint cu = 0;
  clGetDeviceInfo (e->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof (cu), &cu,
      NULL);
  e->compute_units = MAX (cu, 1);
  cl_context_properties props[] = { CL_CONTEXT_PLATFORM,
    (cl_context_properties) e->platform, 0
  };
  e->context = clCreateContext (props, 1, &e->device, NULL, NULL, &err);
  if (!mm_cl_check (err, "clCreateContext", error))
    goto fail;
  e->profiling = g_getenv ("MM_PROFILE") != NULL;
  e->prof = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e->queue = clCreateCommandQueue (e->context, e->device,
      e->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (!mm_cl_check (err, "clCreateCommandQueue", error))
    goto fail;
  cl_uint zeros[MM_WORK_COUNTER_UINTS] = { 0 };
  e->work_counter = clCreateBuffer (e->context, CL_MEM_READ_WRITE
      | CL_MEM_COPY_HOST_PTR, sizeof (zeros), zeros, &err);
  if (!mm_cl_check (err, "work counter", error))
    goto fail;
  if (!engine_build (e, error))
    goto fail;
  return e;
fail:
  engine_free (e);
  return NULL;
}

MmEngine *
mm_engine_get (const gchar * device_spec, GError ** error)
{
  if ((device_spec == NULL || *device_spec == '\0'
          || g_ascii_strcasecmp (device_spec, "auto") == 0)
      && g_getenv ("MM_DEVICE") && *g_getenv ("MM_DEVICE"))
    device_spec = g_getenv ("MM_DEVICE");

  GArray *devs = enumerate_devices ();
  gint idx = find_device (devs, device_spec);
  if (idx < 0) {
    gchar *list = format_devices (devs);
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_NO_DEVICE,
        "no OpenCL device matches \"%s\"; devices seen:\n%s",
        device_spec ? device_spec : "auto", list);
    g_free (list);
    g_array_unref (devs);
    return NULL;
  }
  DevInfo *d = &g_array_index (devs, DevInfo, idx);

  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new (g_direct_hash, g_direct_equal);
  MmEngine *e = g_hash_table_lookup (registry, d->device);
  if (e)
    g_atomic_int_inc (&e->refcount);
  else {
    e = engine_new (d, error);
    if (e)
      g_hash_table_insert (registry, d->device, e);
  }
  g_mutex_unlock (&registry_lock);
  g_array_unref (devs);
  return e;
}

MmEngine *
mm_engine_ref (MmEngine * engine)
{
  g_atomic_int_inc (&engine->refcount);
  return engine;
}

void
mm_engine_unref (MmEngine * engine)
{
  if (engine == NULL)
    return;
  g_mutex_lock (&registry_lock);
  if (g_atomic_int_dec_and_test (&engine->refcount)) {
    g_hash_table_remove (registry, engine->device);
    g_mutex_unlock (&registry_lock);
    engine_free (engine);
    return;
  }
  g_mutex_unlock (&registry_lock);
}

const gchar *
mm_engine_device_name (MmEngine * e)
{
  return e->name;
}

MmDeviceClass
mm_engine_device_class (MmEngine * e)
{
  return e->klass;
}

cl_context
mm_engine_context (MmEngine * e)
{
  return e->context;
}

cl_command_queue
mm_engine_queue (MmEngine * e)
{
  return e->queue;
}

cl_device_id
mm_engine_device (MmEngine * e)
{
  return e->device;
}

gsize
mm_engine_max_alloc (MmEngine * e)
{
  return e->max_alloc;
}

guint
mm_engine_compute_units (MmEngine * e)
{
  return e->compute_units;
}

cl_mem
mm_engine_work_counter (MmEngine * e)
{
  return e->work_counter;
}

void
mm_engine_lock (MmEngine * e)
{
  g_mutex_lock (&e->lock);
}

void
mm_engine_unlock (MmEngine * e)
{
  g_mutex_unlock (&e->lock);
}

/* Call with the engine lock held. */
cl_kernel
mm_engine_kernel (MmEngine * e, const gchar * name, GError ** error)
{
  cl_kernel k = g_hash_table_lookup (e->kernels, name);
  if (k)
    return k;
  cl_int err;
  k = clCreateKernel (e->program, name, &err);
  if (err != CL_SUCCESS) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OPENCL,
        "clCreateKernel(%s) failed: %s (%d)", name, mm_cl_strerror (err), err);
    return NULL;
  }
  g_hash_table_insert (e->kernels, g_strdup (name), k);
  return k;
}

gboolean
mm_engine_finish (MmEngine * e, GError ** error)
{
  return mm_cl_check (clFinish (e->queue), "clFinish", error);
}

void
mm_engine_urgent_begin (MmEngine * e)
{
  g_mutex_lock (&e->urgent_lock);
  e->urgent++;
  g_mutex_unlock (&e->urgent_lock);
}

void
mm_engine_urgent_end (MmEngine * e)
{
  g_mutex_lock (&e->urgent_lock);
  if (e->urgent > 0 && --e->urgent == 0)
    g_cond_broadcast (&e->urgent_cond);
  g_mutex_unlock (&e->urgent_lock);
}

void
mm_engine_wait_urgent (MmEngine * e, gint64 max_us)
{
  gint64 until = g_get_monotonic_time () + max_us;
  g_mutex_lock (&e->urgent_lock);
  while (e->urgent > 0
      && g_cond_wait_until (&e->urgent_cond, &e->urgent_lock, until));
  g_mutex_unlock (&e->urgent_lock);
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
#define MM_HUGE_PAGE ((gsize) 2 << 20)

static void CL_CALLBACK
free_host_mem (cl_mem m, void *p)
{
  free (p);
}

/* On CPU devices a buffer of 2 MiB or more is host memory of ours,
 * 2 MiB-aligned and marked for transparent huge pages (madvise, the
 * default of Debian's kernels), that the device uses in place
 * (CL_MEM_USE_HOST_PTR).  A decode step streams every weight once (143
 * MB for SmolLM2-135M Q8_0); with 4 KiB pages each one is a TLB miss
 * and a page walk on the way (huge pages there: ~12 % less CPU time a
 * token; a plain read of the same bytes ~5 % faster).  NULL (then the
 * plain path) where the driver says no; MM_NO_HUGE_PAGES set: never. */
static cl_mem
alloc_huge (MmEngine * e, gsize size)
{
  if (e->klass != MM_DEVICE_CLASS_CPU || size < MM_HUGE_PAGE
      || g_getenv ("MM_NO_HUGE_PAGES"))
    return NULL;
  /* huge pages for the whole 2 MiB pieces only: a tail on one would be
   * resident whole (2 MiB for a few bytes, per buffer) */
  void *p = NULL;
  if (posix_memalign (&p, MM_HUGE_PAGE, size))
    return NULL;
  madvise (p, size / MM_HUGE_PAGE * MM_HUGE_PAGE, MADV_HUGEPAGE);
  cl_int err;
  cl_mem m = clCreateBuffer (e->context, CL_MEM_READ_WRITE |
      CL_MEM_USE_HOST_PTR, size, p, &err);
  if (err != CL_SUCCESS) {
    free (p);
    return NULL;
  }
  if (clSetMemObjectDestructorCallback (m, free_host_mem, p) != CL_SUCCESS) {
    clReleaseMemObject (m);     /* no way to know when p is free: keep it */
    return NULL;
  }
  return m;
}
#else
#define alloc_huge(e, size) NULL
#endif

static cl_mem
engine_alloc (MmEngine * e, gsize size, gboolean huge, const gchar * what,
    GError ** error)
{
  if (size == 0)
    size = 16;
  if (size > e->max_alloc) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "%s: %" G_GSIZE_FORMAT " bytes exceed the device's largest "
        "allocation (%" G_GSIZE_FORMAT " bytes) on %s", what, size,
        e->max_alloc, e->name);
    return NULL;
  }
  cl_mem m = huge ? alloc_huge (e, size) : NULL;
  if (m)
    return m;
  cl_int err;
  m = clCreateBuffer (e->context, CL_MEM_READ_WRITE, size, NULL, &err);
  if (err != CL_SUCCESS) {
    g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_OUT_OF_MEMORY,
        "%s: clCreateBuffer(%" G_GSIZE_FORMAT " bytes) failed: %s (%d)",
        what, size, mm_cl_strerror (err), err);
    return NULL;
  }
  return m;
}

cl_mem
mm_engine_alloc (MmEngine * e, gsize size, const gchar * what, GError ** error)
{
  return engine_alloc (e, size, TRUE, what, error);
}

cl_mem
mm_engine_alloc_sparse (MmEngine * e, gsize size, const gchar * what,
    GError ** error)
{
  return engine_alloc (e, size, FALSE, what, error);
}

gboolean
mm_engine_write (MmEngine * e, cl_mem buf, gsize offset, gsize size,
    const void *src, GError ** error)
{
  if (size == 0)
    return TRUE;
  mm_engine_lock (e);
  cl_int err = clEnqueueWriteBuffer (e->queue, buf, CL_TRUE, offset, size, src,
      0, NULL, NULL);
  mm_engine_unlock (e);
  return mm_cl_check (err, "clEnqueueWriteBuffer", error);
}

gboolean
mm_engine_read (MmEngine * e, cl_mem buf, gsize offset, gsize size, void *dst,
    GError ** error)
{
  if (size == 0)
    return TRUE;
  mm_engine_lock (e);
  cl_int err = clEnqueueReadBuffer (e->queue, buf, CL_TRUE, offset, size, dst,
      0, NULL, NULL);
  mm_engine_unlock (e);
  return mm_cl_check (err, "clEnqueueReadBuffer", error);
}

gboolean
mm_engine_copy (MmEngine * e, cl_mem src, gsize src_offset, cl_mem dst,
    gsize dst_offset, gsize size, GError ** error)
{
  if (size == 0)
    return TRUE;
  mm_engine_lock (e);
  cl_int err = clEnqueueCopyBuffer (e->queue, src, dst, src_offset,
      dst_offset, size, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clFinish (e->queue);
  mm_engine_unlock (e);
  return mm_cl_check (err, "clEnqueueCopyBuffer", error);
}

gboolean
mm_engine_profiling (MmEngine * e)
{
  return e->profiling;
}

/* Called with the engine lock held, after the event completed. */
void
mm_engine_profile_add (MmEngine * e, const gchar * kernel, cl_event ev)
{
  cl_ulong t0 = 0, t1 = 0;
  clGetEventProfilingInfo (ev, CL_PROFILING_COMMAND_START, sizeof (t0), &t0,
      NULL);
  clGetEventProfilingInfo (ev, CL_PROFILING_COMMAND_END, sizeof (t1), &t1,
      NULL);
  ProfEntry *p = g_hash_table_lookup (e->prof, kernel);
  if (p == NULL) {
    p = g_new0 (ProfEntry, 1);
    g_hash_table_insert (e->prof, g_strdup (kernel), p);
  }
  p->ms += (t1 - t0) / 1e6;
  p->calls++;
}

static gint
cmp_prof (gconstpointer a, gconstpointer b, gpointer table)
{
  ProfEntry *x = g_hash_table_lookup (table, *(const gchar **) a);
  ProfEntry *y = g_hash_table_lookup (table, *(const gchar **) b);
  return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

gchar *
mm_engine_profile_report (MmEngine * e, gboolean reset)
{
  GString *s = g_string_new (NULL);
  mm_engine_lock (e);
  guint n = 0;
  gpointer *keys = g_hash_table_get_keys_as_array (e->prof, &n);
  g_qsort_with_data (keys, n, sizeof (gpointer), cmp_prof, e->prof);
  for (guint i = 0; i < n; i++) {
    ProfEntry *p = g_hash_table_lookup (e->prof, keys[i]);
    g_string_append_printf (s, "%10.2f ms %8" G_GUINT64_FORMAT " calls %8.1f "
        "us/call  %s\n", p->ms, p->calls, p->ms * 1000 / p->calls,
        (gchar *) keys[i]);
  }
  g_free (keys);
  if (reset)
    g_hash_table_remove_all (e->prof);
  mm_engine_unlock (e);
  return g_string_free (s, FALSE);
}
