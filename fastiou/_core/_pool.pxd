# The shared thread pool (``_pool.h``): kernels of every family ``cimport`` it from here.
from libc.stdint cimport int64_t

ctypedef void (*task_fn)(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil

cdef int parallel_for(task_fn fn, void *ctx, int64_t n, int64_t grain, int threads) noexcept nogil
cdef int64_t grain_for(int64_t n, int threads, int64_t min_grain) noexcept nogil
