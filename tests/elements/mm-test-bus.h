/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The final mm-encoder-stats message on a test's bus.  The encoders post
 * one every stats-interval and one after EOS; a slow run (a loaded
 * machine) posts some before the last, so tests take the last one.
 */
#pragma once

#include <gst/gst.h>

/* The last element message on @bus once EOS was handled (waiting up to
 * @timeout for the first); NULL if none came.  Unref it. */
static inline GstMessage *
mm_test_pop_last_element_message (GstBus * bus, GstClockTime timeout)
{
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, timeout,
      GST_MESSAGE_ELEMENT);
  GstMessage *m;
  while (msg && (m = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    gst_message_unref (msg);
    msg = m;
  }
  return msg;
}
