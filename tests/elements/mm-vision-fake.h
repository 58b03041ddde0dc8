/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A scripted stand-in for the vision encoders (mm-vision.h), linked into
 * test_mmvisionenc_queue together with the element's source, so the
 * element's queueing, ordering, dropping, flushing and error paths are
 * tested without a real model.
 *
 * A fake model file is a text file:
 *   fake-vision n_tokens=<n> dim=<d> delay_ms=<ms> fail_value=<v>
 * (dim >= 5; fail_value -1 = never).  Encoding waits for the gate (open by
 * default), sleeps delay_ms and returns a device tensor [n, dim] whose row t
 * is { first byte of plane 0, width, height, MmPixelFormat, t, 0, ... }.
 * A frame whose first byte equals fail_value fails to encode.
 */
#pragma once

#include "mm-vision.h"

/* Writes a fake model file into a new temporary folder; g_free the path. */
gchar *fake_vision_write (gint n_tokens, gint dim, gint delay_ms,
    gint fail_value);

/* While closed, encodes wait (after taking their frame). */
void fake_vision_gate_close (void);
void fake_vision_gate_open (void);
/* Encodes started since the process began. */
guint fake_vision_started (void);
/* Waits (up to 10 s) until at least @n encodes have started. */
gboolean fake_vision_wait_started (guint n);
/* Deletes a file made by fake_vision_write() and its folder. */
void fake_vision_remove (const gchar * path);
