/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for EOS, and the final mm-encoder-stats message on a test's
 * bus.  The encoders post one every stats-interval and one just before EOS
 * goes on; a slow run (a loaded machine) posts some before the last, so
 * tests wait for EOS and take the last one.
 */
#pragma once

#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

/* Pulls events from the harness's sink until EOS (the element has handed
 * on everything before it, and posted its final stats); fails without. */
static inline void
mm_test_wait_eos (GstHarness * h)
{
  GstEvent *ev;

  while ((ev = gst_harness_pull_event (h))) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;

    gst_event_unref (ev);
    if (eos)
      return;
  }
  fail ("no EOS");
}

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
