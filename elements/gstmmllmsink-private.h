/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmllmsink internals shared with its tests only; not installed.
 *
 * The element reaches the LLM through MmCaptionBackend
 * (mm-caption-llm.h) and ships one backend, over mm_llm_*.  Tests of the
 * output mechanics (bus message, signal, files, prompt changes, eviction,
 * EOS) compile the element into the test program and install their own
 * backend with gst_mm_llm_sink_set_backend(), so they run without an
 * OpenCL device or model files.
 */
#pragma once

#include "gstmmllmsink.h"
#include "mm-caption-llm.h"

G_BEGIN_DECLS

/* Replaces the backend (NULL: the mm_llm one); call in the NULL state.
 * @backend must outlive the element. */
void gst_mm_llm_sink_set_backend (GstMmLlmSink * self,
    const MmCaptionBackend * backend);

G_END_DECLS
