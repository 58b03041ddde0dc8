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

/* Dynamic work distribution over a launch's work-items (on CPU devices
 * one per core): each claims units 0, 1, ... from the engine's counter
 * (mm_engine_work_counter) until none is left, so a core that starts
 * late (a thread waking up, or a core another process holds) just takes
 * fewer units; PoCL's own scheduler hands each thread half of a small
 * launch's work-groups up front.  The last work-item out zeroes the
 * counter for the next launch (the queue is in order).  Which work-item
 * computes a unit never changes its result.
 *   for (uint u; (u = claim_unit (ctr)) < n_units;) { ... }
 *   claim_end (ctr);
 * Every work-item must reach claim_end exactly once. */
#define CLAIM_DONE 16           /* the exit count, a cache line away */

inline uint
claim_unit (volatile __global uint *ctr)
{
  return atomic_inc (ctr);
}

inline void
claim_end (volatile __global uint *ctr)
{
  uint nwi = get_global_size (0) * get_global_size (1) * get_global_size (2);
  if (atomic_inc (ctr + CLAIM_DONE) == nwi - 1) {
    atomic_xchg (ctr, 0u);
    atomic_xchg (ctr + CLAIM_DONE, 0u);
  }
}
