/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer entry point for the GGUF reader.
 * Run: ./fuzz_gguf -max_len=65536 ../fuzz/corpus/gguf */
#include "mm-fuzz-targets.h"

#include <stdint.h>
#include <stddef.h>

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  mm_fuzz_gguf_one (data, size);
  return 0;
}
