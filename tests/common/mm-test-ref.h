/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reference outputs of fixtures (reference.safetensors, from transformers). */
#pragma once

#include "mm-safetensors.h"

/* $MM_FIXTURES/<rel>; exits 77 (skipped) when the file is missing. */
gchar *mm_test_fixture (const gchar * rel);

/* Opens <dir>/reference.safetensors (exits 77 if missing). */
MmSafetensors *mm_test_ref_open (const gchar * dir);
/* Opens the fixture file $MM_FIXTURES/<rel> (exits 77 if missing). */
MmSafetensors *mm_test_ref_open_file (const gchar * rel);
/* Greedy ids against the reference's: prints both side by side; FALSE
 * and a FAIL line naming @what unless they are equal. */
gboolean mm_test_same_ids (const gchar * what, const gint32 * got,
    gsize n_got, const gint32 * want, gsize n_want);
/* A reference tensor as F32 (newly allocated); *n gets its element count.
 * Exits 1 when missing. */
float *mm_test_ref_f32 (MmSafetensors * ref, const gchar * name, gsize * n);
/* An I32/I64 reference tensor as gint32 (newly allocated). */
gint32 *mm_test_ref_i32 (MmSafetensors * ref, const gchar * name, gsize * n);
