/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What sits behind one request pad of mmllmsink: a fakesink (the pad ends
 * in the element), or the application's video sink, with
 * `videoconvert ! textoverlay` in front of it when captions are drawn.
 * The elements live in the element's bin; the request pad is a ghost pad
 * whose target is the first one.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct
{
  GPtrArray *elements;          /* owned by the bin, linked in order */
  GstElement *fakesink;         /* when the pad ends here, else NULL */
  GstElement *textoverlay;      /* when captions are drawn, else NULL */
} MmCaptionChain;

void mm_caption_chain_init (MmCaptionChain * c);
void mm_caption_chain_clear (MmCaptionChain * c);

/* Builds the chain in @bin behind @ghost: @video_sink (nullable: a
 * fakesink named @name with @sync/@async instead), preceded by
 * videoconvert ! textoverlay when @overlay and both exist.  FALSE when an
 * element could not be added to @bin (e.g. @video_sink has a parent). */
gboolean mm_caption_chain_build (MmCaptionChain * c, GstBin * bin,
    GstPad * ghost, const gchar * name, GstElement * video_sink,
    gboolean overlay, gboolean sync, gboolean async);

/* Untargets @ghost and takes the elements out of @bin (a video sink
 * survives when the caller holds a reference). */
void mm_caption_chain_teardown (MmCaptionChain * c, GstBin * bin,
    GstPad * ghost);

G_END_DECLS
