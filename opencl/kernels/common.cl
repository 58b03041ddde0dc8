/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for every kernel file (all files build as one program).
 * Tensors are passed as (buffer, offset in elements). F16 data is read with
 * vload_half, which needs no cl_khr_fp16. */

#define GID0 ((uint) get_global_id (0))
#define GID1 ((uint) get_global_id (1))
#define GID2 ((uint) get_global_id (2))

inline float
hsum16 (float16 v)
{
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

inline float
bf16_to_f32 (ushort h)
{
  return as_float (((uint) h) << 16);
}
