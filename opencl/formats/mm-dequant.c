/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mm-dequant.h"
#include "mm-launch.h"

#include <string.h>

float
mm_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);    /* inf / nan */
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    /* subnormal: normalise */
    exp = 113;
    while (!(mant & 0x400)) {
      mant <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

guint16
mm_f32_to_f16 (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  guint32 sign = (x >> 16) & 0x8000;
  guint32 exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
  if (exp == 0xff)              /* inf / nan (keep a quiet nan) */
    return sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0);
  gint e = (gint) exp - 127 + 15;
  if (e >= 31)
    return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10)
      return sign;
    mant |= 0x800000;
    guint32 shift = 14 - e;
    guint32 h = mant >> shift, rem = mant & ((1u << shift) - 1);
    guint32 half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
      h++;
    return sign | h;
  }
  guint32 h = ((guint32) e << 10) | (mant >> 13), rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;                        /* may carry into the exponent: still right */
  return sign | h;
}

float
mm_bf16_to_f32 (guint16 h)
{
  guint32 bits = (guint32) h << 16;
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

static inline guint16
rd16 (const guint8 * p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

static void
dequant_q8_0 (const guint8 * s, gint64 nb, float *y)
{
  for (gint64 b = 0; b < nb; b++, s += 34, y += 32) {
    float d = mm_f16_to_f32 (rd16 (s));
    for (gint j = 0; j < 32; j++)
      y[j] = d * (float) (gint8) s[2 + j];
  }
}

static void
dequant_q4 (const guint8 * s, gint64 nb, float *y, gboolean with_min)
{
  gint bytes = with_min ? 20 : 18, qo = with_min ? 4 : 2;
  for (gint64 b = 0; b < nb; b++, s += bytes, y += 32) {
    float d = mm_f16_to_f32 (rd16 (s));
    float m = with_min ? mm_f16_to_f32 (rd16 (s + 2)) : 0.0f;
    for (gint j = 0; j < 16; j++) {
      gint lo = s[qo + j] & 0x0f, hi = s[qo + j] >> 4;
      if (with_min) {
        y[j] = d * (float) lo + m;
        y[j + 16] = d * (float) hi + m;
      } else {
        y[j] = d * (float) (lo - 8);
        y[j + 16] = d * (float) (hi - 8);
      }
    }
  }
}

gboolean
mm_dequantize_host (MmDType dtype, const void *src, gint64 n, float *dst)
{
  const guint8 *s = src;
  if (n < 0 || n % mm_dtype_block_elems (dtype) != 0)
    return FALSE;
  switch (dtype) {
    case MM_DTYPE_F32:
      memcpy (dst, s, (gsize) n * 4);
      return TRUE;
    case MM_DTYPE_F16:
      for (gint64 i = 0; i < n; i++)
        dst[i] = mm_f16_to_f32 (rd16 (s + 2 * i));
      return TRUE;
    case MM_DTYPE_BF16:
      for (gint64 i = 0; i < n; i++)
        dst[i] = mm_bf16_to_f32 (rd16 (s + 2 * i));
      return TRUE;
    case MM_DTYPE_Q8_0:
      dequant_q8_0 (s, n / 32, dst);
      return TRUE;
    case MM_DTYPE_Q4_0:
    case MM_DTYPE_Q4_1:
      dequant_q4 (s, n / 32, dst, dtype == MM_DTYPE_Q4_1);
      return TRUE;
    case MM_DTYPE_I32:
      break;
  }
  return FALSE;
}

MmTensor *
mm_dequantize (MmGraph * g, MmTensor * x)
{
  static const gchar *kernels[] = {
    [MM_DTYPE_F16] = "kernel_dequant_f16",
    [MM_DTYPE_BF16] = "kernel_dequant_bf16",
    [MM_DTYPE_Q8_0] = "kernel_dequant_q8_0",
    [MM_DTYPE_Q4_0] = "kernel_dequant_q4_0",
    [MM_DTYPE_Q4_1] = "kernel_dequant_q4_1",
  };
  if (!mm_graph_ok (g))
    return mm_graph_dead (g);
  if (x->dtype == MM_DTYPE_F32)
    return x;
  if ((guint) x->dtype >= G_N_ELEMENTS (kernels) || !kernels[x->dtype]) {
    mm_graph_failf (g, "dequantize: %s input not supported",
        mm_dtype_name (x->dtype));
    return mm_graph_dead (g);
  }
  gint64 n = mm_tensor_numel (x);
  /* kernels index bytes and elements with 32-bit uints */
  if (n > G_MAXUINT32 || x->offset + mm_tensor_nbytes (x) > G_MAXUINT32
      || mm_tensor_cols (x) % mm_dtype_block_elems (x->dtype) != 0) {
    mm_graph_failf (g, "dequantize: %s %s at byte %" G_GSIZE_FORMAT
        " is out of range or not whole blocks", mm_dtype_name (x->dtype),
        mm_tensor_shape_str (x), x->offset);
    return mm_graph_dead (g);
  }
  MmTensor *y = mm_graph_tensor (g, MM_DTYPE_F32, x->n_dims, x->shape);
  if (mm_graph_ok (g) && mm_tensor_elem_offset (y) + (guint64) n > G_MAXUINT32) {
    mm_graph_failf (g, "dequantize: output of %" G_GINT64_FORMAT " elements "
        "does not fit 32-bit indexing", n);
    return mm_graph_dead (g);
  }
  gsize gws[1] = { (gsize) n };
  MM_LAUNCH (g, kernels[x->dtype], 1, gws, FALSE, MM_TENSOR (x), MM_TENSOR (y));
  return y;
}
