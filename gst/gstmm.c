/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:plugin-mm
 *
 * mm: streaming video and audio understanding on OpenCL.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "elements/gstmmframesample.h"
#include "elements/gstmmvisionenc.h"
#include "elements/gstmmaudioenc.h"
#include "elements/gstmmllmsink.h"

/* GST_PLUGIN_DEFINE needs PACKAGE; there is no config.h yet */
#ifndef PACKAGE
#define PACKAGE "mm"
#endif

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ok = FALSE;

  ok |= GST_ELEMENT_REGISTER (mmframesample, plugin);
  ok |= GST_ELEMENT_REGISTER (mmvisionenc, plugin);
  ok |= GST_ELEMENT_REGISTER (mmaudioenc, plugin);
  ok |= GST_ELEMENT_REGISTER (mmllmsink, plugin);

  return ok;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, mm,
    "Streaming video and audio understanding on OpenCL",
    plugin_init, "0.1.0", "LGPL", "mm", "Unknown package origin")
