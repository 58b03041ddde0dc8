/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink internals shared with its tests only; not installed.
 *
 * The element reaches the LLM through this small vtable.  The element
 * ships one implementation, over mm_llm_* (opencl/models/mm-llm.h); tests
 * of the output mechanics (bus message, signal, files, prompt changes,
 * eviction, EOS) install their own with gst_mm_llm_sink_set_backend() so
 * they run without an OpenCL device or model files.
 *
 * Ownership: load() returns a handle owned by the element, released with
 * free() from the element's stop (after its worker thread ended).  All
 * other calls borrow it.  generate() returns newly allocated text.  Calls
 * for one handle come from one thread at a time: load/free from the state
 * change, the others from the worker thread, except hidden_size(),
 * context_size() and id(), which may be called from any thread and must
 * only read values fixed at load.
 */
#pragma once

#include "gstmmllmsink.h"
#include "mm-llm.h"

G_BEGIN_DECLS

typedef struct
{
  gpointer (*load) (const gchar * model, const gchar * device,
      GError ** error);
  void (*free) (gpointer llm);
  const gchar *(*id) (gpointer llm);
  gint (*hidden_size) (gpointer llm);
  gint (*context_size) (gpointer llm);
  /* The engine whose device buffers the LLM reads directly, or NULL: media
   * on any other engine are passed as host floats. */
  MmEngine *(*engine) (gpointer llm);
  gint (*count_prompt_tokens) (gpointer llm, const MmLlmRequest * req,
      GError ** error);
  gchar *(*generate) (gpointer llm, const MmLlmRequest * req,
      MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
      GError ** error);
} GstMmLlmSinkBackend;

/* Replaces the backend (NULL: the mm_llm one); call in the NULL state.
 * @backend must outlive the element. */
void gst_mm_llm_sink_set_backend (GstMmLlmSink * self,
    const GstMmLlmSinkBackend * backend);

G_END_DECLS
