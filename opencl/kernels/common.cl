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
hmax16 (float16 v)
{
  float8 a = fmax (v.lo, v.hi);
  float4 b = fmax (a.lo, a.hi);
  float2 c = fmax (b.lo, b.hi);
  return fmax (c.x, c.y);
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
#define CLAIM_EXIT 16           /* work-items out, a cache line away */
#define CLAIM_UNITS_DONE 32     /* units finished (claim_wait) */

inline uint
claim_unit (volatile __global uint *ctr)
{
  return atomic_inc (ctr);
}

/* Guided runs: sets [*u0, *u0 + return) to the next units for this
 * work-item, a quarter of what is left per work-item (at least 1), so
 * each streams adjacent units and all finish together; 0 when none are
 * left. */
inline uint
claim_guided (volatile __global uint *ctr, uint n_units, uint * u0)
{
  uint nwi = get_global_size (0) * get_global_size (1) * get_global_size (2);
  for (;;) {
    uint u = ctr[0];
    if (u >= n_units)
      return 0;
    uint k = max (1u, (n_units - u) / (2 * nwi));
    if (atomic_cmpxchg (ctr, u, u + k) == u) {
      *u0 = u;
      return k;
    }
  }
}

inline void
claim_end (volatile __global uint *ctr)
{
  uint nwi = get_global_size (0) * get_global_size (1) * get_global_size (2);
  if (atomic_inc (ctr + CLAIM_EXIT) == nwi - 1) {
    atomic_xchg (ctr, 0u);
    atomic_xchg (ctr + CLAIM_UNITS_DONE, 0u);
    atomic_xchg (ctr + CLAIM_EXIT, 0u);
  }
}

/* Phases inside one launch: units are numbered in phase order, and
 * before taking unit u a work-item waits until every unit of the phases
 * before u's (the first `ready` units) is done; claim_phased takes u only
 * then (compare-and-swap), so no work-item ever waits while it holds a
 * unit, and claim_units_done marks units finished after their writes.  A
 * work-item waits at most ~CLAIM_SPIN_CYCLES, then leaves the launch to
 * the others: its partner may be off its core (another process took it),
 * and spinning on would keep it off.  However many work-items run, or
 * leave, the one holding the unit waited on finishes it. */
#ifndef CLAIM_SPIN_CYCLES
#define CLAIM_SPIN_CYCLES 100000UL     /* ~40 us */
#endif

inline void
claim_units_done (volatile __global uint *ctr, uint n)
{
  atomic_add (ctr + CLAIM_UNITS_DONE, n);
}

inline ulong
claim_clock (void)
{
#if defined(__has_builtin)
#if __has_builtin(__builtin_readcyclecounter)
  return __builtin_readcyclecounter ();
#endif
#endif
  return 0;
}

/* Sets [out, out + cnt) to the next run of units for this work-item
 * (cnt 0 and out = n_units when it should leave).  FIRST_OF_PHASE (u):
 * the first unit of u's phase (the units before it must be done before u
 * starts); RUN (u): how many units from u to take at once, all in u's
 * phase (1: one at a time).  Runs let a work-item stream adjacent
 * weights; claim_units_done (ctr, cnt) after the run's writes.  WAIT (u,
 * i) runs at the i-th spin while unit u waits for its phase (e.g. to
 * prefetch u's inputs). */
#define CLAIM_PHASED(ctr, n_units, FIRST_OF_PHASE, RUN, WAIT, out, cnt)     \
  {                                                                         \
    ulong t0_ = 0;                                                          \
    uint spins_ = 0;                                                        \
    out = n_units;                                                          \
    cnt = 0;                                                                \
    for (;;) {                                                              \
      uint u_ = ctr[0];                                                     \
      if (u_ >= n_units)                                                    \
        break;                                                              \
      uint need_ = FIRST_OF_PHASE (u_);                                     \
      if (ctr[CLAIM_UNITS_DONE] < need_) {                                  \
        WAIT (u_, spins_)                                                   \
        ulong t_ = claim_clock ();                                          \
        if (spins_++ == 0)                                                  \
          t0_ = t_;                                                         \
        else if (t_ - t0_ > CLAIM_SPIN_CYCLES || spins_ > (1u << 24))       \
          break;                                                            \
        continue;                                                           \
      }                                                                     \
      uint k_ = max (1u, (uint) (RUN (u_)));                                \
      if (atomic_cmpxchg (ctr, u_, u_ + k_) == u_) {                        \
        (void) atomic_or (ctr + CLAIM_UNITS_DONE, 0u);                      \
        out = u_;                                                           \
        cnt = k_;                                                           \
        break;                                                              \
      }                                                                     \
    }                                                                       \
  }

/* Software prefetch of the @n bytes at @p, a cache line at a time, with
 * locality @loc (3: all cache levels).  OpenCL's prefetch () is a no-op
 * on PoCL; clang's builtin emits prefetcht0/1/2 on x86 CPUs.  Nothing
 * elsewhere. */
#if defined(__x86_64__) && defined(__has_builtin)
#if __has_builtin(__builtin_prefetch)
#define MM_PREFETCH(p, n, loc)                                              \
  for (uint l_ = 0; l_ < (n); l_ += 64)                                     \
    __builtin_prefetch ((__global const char *) (p) + l_, 0, loc);
#endif
#endif
#ifndef MM_PREFETCH
#define MM_PREFETCH(p, n, loc)
#endif
