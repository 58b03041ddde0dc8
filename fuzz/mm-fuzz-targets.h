/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bodies of the fuzz targets, shared by the libFuzzer entry points
 * (fuzz_gguf.c, fuzz_safetensors.c, built with clang) and by the corpus
 * replay test (tests/formats/test_fuzz_corpus.c, built with any compiler).
 *
 * Each opens the input from memory and, when it opens, walks everything a
 * model loader would touch.  Returns 1 when the input opened, 0 when it was
 * rejected with a proper MM_FORMAT_ERROR; a broken invariant aborts.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int mm_fuzz_gguf_one (const guint8 * data, gsize size);
/* Also parses the input as a config.json-style document. */
int mm_fuzz_safetensors_one (const guint8 * data, gsize size);

G_END_DECLS
