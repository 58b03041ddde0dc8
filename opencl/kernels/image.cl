/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image preprocessing for vision encoders: colour conversion to planar RGB
 * bytes, PIL-exact separable resampling on bytes, crop + rescale +
 * normalise to planar floats.
 *
 * Byte images live in F32 arena tensors; kernels take the tensor as
 * (float buffer, element offset) and address bytes from there.  Planar RGB
 * bytes are [3][h][w].
 */

#define BYTES(p, o) ((__global uchar *) ((p) + (o)))
#define CBYTES(p, o) ((__global const uchar *) ((p) + (o)))

/* Blends a pixel with alpha onto opaque white the way transformers'
 * convert_to_rgb does for uint8 arrays: round (a/255 c + (1 - a/255) 255).
 * The numerator below is an integer and never an exact tie, so integer
 * rounding is exact. */
inline uint
over_white (uint c, uint a)
{
  return (a * c + 255 * (255 - a) + 127) / 255;
}

/* Packed 3- or 4-byte pixels: @bpp bytes per pixel, channel byte offsets
 * @ro, @go, @bo and alpha offset @ao (-1: none). */
__kernel void
kernel_image_packed_to_rgb (__global const float *src, uint so, uint pitch,
    uint bpp, uint ro, uint go, uint bo, int ao, __global float *dst,
    uint dsto, uint w, uint h)
{
  uint x = GID0, y = GID1;
  if (x >= w)
    return;
  __global const uchar *p = CBYTES (src, so) + (ulong) y * pitch + x * bpp;
  __global uchar *d = BYTES (dst, dsto) + (ulong) y * w + x;
  ulong plane = (ulong) w * h;
  uint r = p[ro], g = p[go], b = p[bo];
  if (ao >= 0) {
    uint a = p[ao];
    r = over_white (r, a);
    g = over_white (g, a);
    b = over_white (b, a);
  }
  d[0] = r;
  d[plane] = g;
  d[2 * plane] = b;
}

__kernel void
kernel_image_gray_to_rgb (__global const float *src, uint so, uint pitch,
    __global float *dst, uint dsto, uint w, uint h)
{
  uint x = GID0, y = GID1;
  if (x >= w)
    return;
  uchar v = CBYTES (src, so)[(ulong) y * pitch + x];
  __global uchar *d = BYTES (dst, dsto) + (ulong) y * w + x;
  ulong plane = (ulong) w * h;
  d[0] = v;
  d[plane] = v;
  d[2 * plane] = v;
}

/* Y'CbCr 4:2:0 (I420: separate U and V planes, NV12: interleaved UV) to
 * RGB bytes.  Chroma is upsampled linearly with MPEG-2 siting
 * (horizontally co-sited, vertically between two luma rows), as
 * GStreamer's default linear chroma resampler does.  m: row-major 3x3
 * matrix applied to (Y - yoff, U - 128, V - 128) with the range scaling
 * folded in; results rounded to nearest and saturated.  A work-item makes
 * the two pixels (2 cx, y) and (2 cx + 1, y) that share chroma column
 * cx: @cpitch is the chroma row pitch in bytes, @cstep 1 (I420) or 2
 * (NV12). */
inline uchar
to_u8 (float v)
{
  return (uchar) (int) clamp (v + 0.5f, 0.0f, 255.0f);
}

__kernel void
kernel_image_yuv420_to_rgb (__global const float *src, uint so, uint ypitch,
    uint uoff, uint voff, uint cpitch, uint cstep, __global float *dst,
    uint dsto, uint w, uint h, float yoff, float m0, float m1, float m2,
    float m3, float m4, float m5, float m6, float m7, float m8)
{
  uint cx = GID0, y = GID1;
  uint cw = (w + 1) / 2, ch = (h + 1) / 2;
  if (cx >= cw)
    return;
  __global const uchar *base = CBYTES (src, so);
  /* vertical: this chroma row 3/4, the one on the other side 1/4 */
  uint r0 = y / 2, r1 = (y & 1) ? min (r0 + 1, ch - 1) : (r0 ? r0 - 1 : 0);
  uint c1 = min (cx + 1, cw - 1);
  __global const uchar *u0 = base + uoff + r0 * cpitch;
  __global const uchar *u1 = base + uoff + r1 * cpitch;
  __global const uchar *v0 = base + voff + r0 * cpitch;
  __global const uchar *v1 = base + voff + r1 * cpitch;
  float ua = 0.75f * u0[cx * cstep] + 0.25f * u1[cx * cstep] - 128.0f;
  float ub = 0.75f * u0[c1 * cstep] + 0.25f * u1[c1 * cstep] - 128.0f;
  float va = 0.75f * v0[cx * cstep] + 0.25f * v1[cx * cstep] - 128.0f;
  float vb = 0.75f * v0[c1 * cstep] + 0.25f * v1[c1 * cstep] - 128.0f;
  ulong plane = (ulong) w * h;
  uint x = 2 * cx;
  __global const uchar *yr = base + (ulong) y * ypitch;
  __global uchar *d = BYTES (dst, dsto) + (ulong) y * w + x;
  float Y = yr[x] - yoff;       /* even pixel: co-sited chroma */
  d[0] = to_u8 (m0 * Y + m1 * ua + m2 * va);
  d[plane] = to_u8 (m3 * Y + m4 * ua + m5 * va);
  d[2 * plane] = to_u8 (m6 * Y + m7 * ua + m8 * va);
  if (x + 1 < w) {              /* odd pixel: halfway to the next column */
    float U = 0.5f * (ua + ub), V = 0.5f * (va + vb);
    Y = yr[x + 1] - yoff;
    d[1] = to_u8 (m0 * Y + m1 * U + m2 * V);
    d[plane + 1] = to_u8 (m3 * Y + m4 * U + m5 * V);
    d[2 * plane + 1] = to_u8 (m6 * Y + m7 * U + m8 * V);
  }
}

/* One separable pass of Pillow's resampling on 8-bit planes (Resample.c):
 * 22-bit fixed-point taps computed on the host, rounding and clipping to
 * a byte after the pass.  Horizontal: output x takes input columns
 * [bounds[2x], bounds[2x] + bounds[2x+1]) of its row. */
#define RESAMPLE_PRECISION_BITS 22

inline uchar
clip8 (int ss)
{
  return (uchar) clamp (ss >> RESAMPLE_PRECISION_BITS, 0, 255);
}

__kernel void
kernel_resample_h_u8 (__global const float *src, uint so, __global float *dst,
    uint dsto, __global const int *bounds, uint bno, __global const int *k,
    uint ko, uint ksize, uint win, uint wout)
{
  uint x = GID0, row = GID1;    /* row = c * h + y */
  if (x >= wout)
    return;
  __global const uchar *in = CBYTES (src, so) + (ulong) row * win;
  int xmin = bounds[bno + 2 * x], n = bounds[bno + 2 * x + 1];
  __global const int *kk = k + ko + (ulong) x * ksize;
  int ss = 1 << (RESAMPLE_PRECISION_BITS - 1);
  for (int i = 0; i < n; i++)
    ss += in[xmin + i] * kk[i];
  BYTES (dst, dsto)[(ulong) row * wout + x] = clip8 (ss);
}

/* Vertical: output row y of plane c takes input rows [bounds[2y],
 * bounds[2y] + bounds[2y+1]). */
__kernel void
kernel_resample_v_u8 (__global const float *src, uint so, __global float *dst,
    uint dsto, __global const int *bounds, uint bno, __global const int *k,
    uint ko, uint ksize, uint w, uint hin, uint hout)
{
  uint x = GID0, y = GID1, c = GID2;
  if (x >= w)
    return;
  __global const uchar *in = CBYTES (src, so) + (ulong) c * hin * w + x;
  int ymin = bounds[bno + 2 * y], n = bounds[bno + 2 * y + 1];
  __global const int *kk = k + ko + (ulong) y * ksize;
  int ss = 1 << (RESAMPLE_PRECISION_BITS - 1);
  for (int i = 0; i < n; i++)
    ss += in[(ulong) (ymin + i) * w] * kk[i];
  BYTES (dst, dsto)[((ulong) c * hout + y) * w + x] = clip8 (ss);
}

/* The region (x0, y0, cw, ch) of planar bytes [3][h][w], as planar bytes
 * [3][ch][cw] (a view cut from the image before it is resized). */
__kernel void
kernel_image_crop_u8 (__global const float *src, uint so, uint w, uint h,
    uint x0, uint y0, __global float *dst, uint dsto, uint cw, uint ch)
{
  uint x = GID0, y = GID1, c = GID2;
  if (x >= cw)
    return;
  BYTES (dst, dsto)[((ulong) c * ch + y) * cw + x] =
      CBYTES (src, so)[((ulong) c * h + y0 + y) * w + x0 + x];
}

/* Crop (top, left may be negative: outside pixels are 0, as transformers'
 * center_crop pads) and map bytes through the per-channel table lut[c][v]
 * (rescale + normalise, computed on the host in the processor's own
 * arithmetic).  Output: planar floats [3][oh][ow]. */
__kernel void
kernel_image_normalize (__global const float *src, uint so, uint w, uint h,
    int top, int left, __global const float *lut, uint lo,
    __global float *dst, uint dsto, uint ow, uint oh)
{
  uint x = GID0, y = GID1, c = GID2;
  if (x >= ow)
    return;
  int sx = (int) x + left, sy = (int) y + top;
  uint v = 0;
  if (sx >= 0 && sx < (int) w && sy >= 0 && sy < (int) h)
    v = CBYTES (src, so)[((ulong) c * h + sy) * w + sx];
  dst[dsto + ((ulong) c * oh + y) * ow + x] = lut[lo + c * 256 + v];
}
