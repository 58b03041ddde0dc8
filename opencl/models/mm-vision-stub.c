/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stand-in for mm-vision.c until the vision encoders land: the loader fails
 * with a clear message, so elements built against mm-vision.h link and
 * report the missing piece on the bus.  Built only while mm-vision.c does
 * not exist (see meson.build); delete it with that condition when it does.
 */
#include "mm-vision.h"

MmVisionModel *
mm_vision_model_load (MmEngine * engine, const gchar * path, GError ** error)
{
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
      "mm_vision_model_load: %s: vision encoders are not built in this "
      "version (opencl/models/mm-vision.c is missing)", path);
  return NULL;
}

void
mm_vision_model_free (MmVisionModel * m)
{
}

gint
mm_vision_model_n_tokens (MmVisionModel * m)
{
  return 0;
}

gint
mm_vision_model_dim (MmVisionModel * m)
{
  return 0;
}

gint
mm_vision_model_image_size (MmVisionModel * m)
{
  return 0;
}

const gchar *
mm_vision_model_id (MmVisionModel * m)
{
  return "none";
}

gdouble
mm_vision_model_last_ms (MmVisionModel * m)
{
  return 0.0;
}

MmTensor *
mm_vision_model_encode (MmVisionModel * m, const MmImage * img, GError ** error)
{
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID,
      "mm_vision_model_encode: vision encoders are not built in");
  return NULL;
}
