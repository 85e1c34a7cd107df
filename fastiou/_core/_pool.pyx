# cython: language_level=3
"""The parallel runtime of the Cython kernels: a work-claiming thread pool, fork-safe (see
``_pool.h`` for the design and docs/ARCHITECTURE.md for the measurements behind it)."""

from libc.stdint cimport int64_t

cdef extern from "_pool.h" nogil:
    ctypedef void (*fi_task_fn)(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil
    int fi_parallel_for(fi_task_fn fn, void *ctx, int64_t n, int64_t grain, int threads)
    int fi_pool_workers()
    int fi_pool_alone()
    void fi_pool_hold_alone(int64_t ns)
    void fi_pool_init()
    int FASTIOU_POOL_THREADED

fi_pool_init()


cdef int parallel_for(task_fn fn, void *ctx, int64_t n, int64_t grain, int threads) noexcept nogil:
    """Run ``fn(ctx, begin, end, slot)`` over ``[0, n)`` in chunks of ``grain`` on up to
    ``threads`` threads, the caller included; returns the number of slots that may be used."""
    return fi_parallel_for(<fi_task_fn> fn, ctx, n, grain, threads)


cdef int64_t grain_for(int64_t n, int threads, int64_t min_grain) noexcept nogil:
    """A chunk size giving each thread ~8 chunks to claim (so that a late or preempted thread
    leaves little to wait for), but never below ``min_grain`` items."""
    cdef int64_t g = n // (8 * threads if threads > 0 else 8)
    return g if g > min_grain else min_grain


def workers() -> int:
    """Worker threads started in this process (0 in a fresh fork child until its first call)."""
    return fi_pool_workers()


def alone() -> bool:
    """Whether parallel jobs run on the caller alone now: a recent job found the cores taken by
    another process (a worker preempted after claiming a chunk); see ``_pool.h``."""
    return bool(fi_pool_alone())


def hold_alone(double seconds):
    """Run jobs on the caller alone for ``seconds`` (0: end that now) as if load had been seen;
    for tests."""
    fi_pool_hold_alone(<int64_t> (seconds * 1e9))


def threaded() -> bool:
    """Whether the pool runs threads (False: built without pthreads, everything serial)."""
    return bool(FASTIOU_POOL_THREADED)


cdef void _sum_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef int64_t *c = <int64_t *> ctx
    cdef int64_t i, s = 0
    for i in range(begin, end):
        s += i
    # slot-private accumulation: c[0] = n, then one sum per slot
    c[1 + slot] += s


def sum_range(int64_t n, int threads, int64_t grain=1):
    """Sum of range(n) computed on the pool (a self-test for fork/thread tests): every chunk
    must run exactly once whatever threads join."""
    import numpy as np
    cdef int64_t[::1] acc = np.zeros(2 + threads, np.int64)
    with nogil:
        parallel_for(_sum_task, &acc[0], n, grain, threads)
    return int(np.asarray(acc)[1:].sum())
