/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-vision: ms per frame and achieved GFLOP/s of a vision encoder
 * (GGUF mmproj or HF folder), end to end from a host RGB frame.
 *
 *   bench-vision MODEL [--frames 5] [--width 640] [--height 480]
 *                [--format rgb|rgbx|i420|nv12]
 *
 * Each frame: upload + preprocessing on the device + tower + connector +
 * clFinish (what mm_vision_model_encode() does per sampled video frame).
 * With MM_PROFILE set, per-kernel device times of the encode loop follow
 * (profiling serialises the queue: use it to see shares, not speed).
 * The first encode (program build, arena growth) is reported apart; the
 * others give median / min / mean.  GFLOP/s counts the GEMMs (patch
 * embedding, QKV/O, attention, MLP, connector) of one frame.  Further
 * lines time the preprocessing alone (with the read-back of the pixels)
 * and the tower + connector alone from preprocessed pixels.  The CPU
 * time of the encode loop (all threads of the process) tells apart a slow
 * encoder from a machine shared with other work.
 */
#include "mm-vision.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* CPU seconds of this process (all threads: PoCL's workers too). */
static double
cpu_seconds (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
      + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
report (const gchar * what, double *ms, gint n, double flops)
{
  qsort (ms, n, sizeof (double), cmp_double);
  double mean = 0;
  for (gint i = 0; i < n; i++)
    mean += ms[i] / n;
  double med = ms[n / 2];
  g_print ("%-28s median %8.1f ms  min %8.1f  mean %8.1f  (%d runs)", what,
      med, ms[0], mean, n);
  if (flops > 0)
    g_print ("  %.1f GFLOP/s", flops / (med * 1e6));
  g_print ("\n");
}

int
main (int argc, char **argv)
{
  gint frames = 5, width = 640, height = 480;
  const gchar *format = "rgb";
  if (argc < 2) {
    g_printerr ("usage: %s MODEL [--frames N] [--width W] [--height H] "
        "[--format rgb|rgbx|i420|nv12]\n", argv[0]);
    return 2;
  }
  for (gint i = 2; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--frames"))
      frames = MAX (1, atoi (argv[i + 1]));
    else if (!strcmp (argv[i], "--width"))
      width = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--height"))
      height = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--format"))
      format = argv[i + 1];
  }
  GError *err = NULL;
  MmEngine *e = mm_engine_get (NULL, &err);
  if (!e) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  gint64 t0 = g_get_monotonic_time ();
  MmVisionModel *m = mm_vision_model_load (e, argv[1], &err);
  if (!m) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  gint S = mm_vision_model_image_size (m);
  double flops = mm_vision_model_flops (m);
  g_print ("model %s: input %dx%d, %d tokens x %d, %.1f GFLOP/frame; "
      "load %.0f ms on %s\n", mm_vision_model_id (m), S, S,
      mm_vision_model_n_tokens (m), mm_vision_model_dim (m), flops / 1e9,
      (g_get_monotonic_time () - t0) / 1000.0, mm_engine_device_name (e));

  /* a synthetic camera frame */
  MmImage img = { 0 };
  img.width = width;
  img.height = height;
  guint8 *buf = g_malloc ((gsize) width * height * 4);
  for (gint y = 0; y < height; y++)
    for (gint x = 0; x < width * 4; x++)
      buf[(gsize) y * width * 4 + x] = (x * 7 + y * 3 + (x * y) % 13) & 0xff;
  if (!strcmp (format, "rgbx")) {
    img.format = MM_PIXEL_RGBX;
    img.planes[0] = buf, img.strides[0] = width * 4;
  } else if (!strcmp (format, "i420")) {
    img.format = MM_PIXEL_I420;
    gint cw = (width + 1) / 2, ch = (height + 1) / 2;
    img.planes[0] = buf, img.strides[0] = width;
    img.planes[1] = buf + (gsize) width * height, img.strides[1] = cw;
    img.planes[2] = img.planes[1] + (gsize) cw * ch, img.strides[2] = cw;
  } else if (!strcmp (format, "nv12")) {
    img.format = MM_PIXEL_NV12;
    img.planes[0] = buf, img.strides[0] = width;
    img.planes[1] = buf + (gsize) width * height;
    img.strides[1] = ((width + 1) / 2) * 2;
  } else {
    img.format = MM_PIXEL_RGB;
    img.planes[0] = buf, img.strides[0] = width * 3;
  }

  t0 = g_get_monotonic_time ();
  MmVisionLayout lay;
  MmTensor *out = mm_vision_model_encode_views (m, &img, &lay, &err);
  if (!out) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  mm_tensor_free (out);
  if (lay.n_views > 1)
    g_print ("image splitting: %d views (%d x %d tiles + global), %d tokens "
        "per frame\n", lay.n_views, lay.rows, lay.cols,
        lay.n_views * lay.tokens_per_view);
  g_print ("first frame %.1f ms (kernel build / cache load, arena growth)\n",
      (g_get_monotonic_time () - t0) / 1000.0);

  double *ms = g_new (double, frames);
  double cpu0 = cpu_seconds ();
  gint64 wall0 = g_get_monotonic_time ();
  for (gint i = 0; i < frames; i++) {
    out = mm_vision_model_encode (m, &img, &err);
    if (!out) {
      g_printerr ("%s\n", err->message);
      return 1;
    }
    ms[i] = mm_vision_model_last_ms (m);
    mm_tensor_free (out);
  }
  double cpu = (cpu_seconds () - cpu0) / frames;
  double wall = (g_get_monotonic_time () - wall0) / 1e6 / frames;
  gchar *what = g_strdup_printf ("encode %dx%d %s", width, height, format);
  report (what, ms, frames, flops * MAX (lay.n_views, 1));
  g_free (what);
  g_print ("  CPU time %.2f s/frame over %.2f s wall: %.2f cores busy "
      "(other load on the machine stretches the wall time)\n", cpu, wall,
      cpu / wall);

  if (mm_engine_profiling (e)) {
    gchar *prof = mm_engine_profile_report (e, TRUE);
    g_print ("MM_PROFILE, device time of the %d frames above:\n%s", frames,
        prof);
    g_free (prof);
  }

  float *pixels = NULL;
  for (gint i = 0; i < frames; i++) {
    g_free (pixels);
    gint64 t1 = g_get_monotonic_time ();
    pixels = mm_vision_model_preprocess (m, &img, &err);
    ms[i] = (g_get_monotonic_time () - t1) / 1000.0;
    if (!pixels) {
      g_printerr ("%s\n", err->message);
      return 1;
    }
  }
  report ("preprocess (+ read back)", ms, frames, 0);
  for (gint i = 0; pixels && i < frames; i++) {
    out = mm_vision_model_encode_pixels (m, pixels, &err);
    if (!out)
      break;
    ms[i] = mm_vision_model_last_ms (m);
    mm_tensor_free (out);
  }
  if (err) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  report ("tower+connector (pixels)", ms, frames, flops);
  g_print ("scratch arena %.1f MiB\n",
      mm_vision_model_scratch_bytes (m) / 1048576.0);
  g_free (pixels);
  g_free (ms);
  g_free (buf);
  mm_vision_model_free (m);
  mm_engine_unref (e);
  return 0;
}
