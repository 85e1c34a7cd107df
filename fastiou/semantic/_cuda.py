"""Numba CUDA confusion kernels: privatized histograms in shared memory.

Each block counts its pixels (a grid-stride loop) into its own ``uint32`` histogram in shared
memory with shared-memory atomics, then adds each non-zero bin to the global ``uint64``
histogram with one atomic: global atomics drop from one per pixel to one per bin per block.
A block counts at most 2**31 pixels (the grid grows with the input), so its counters cannot
overflow. When the histogram does not fit in shared memory (more than :data:`SHARED_MAX_BINS`
bins, about 108 classes), the kernel counts straight into global memory.

The row codes and the argmax step are the CPU kernels' functions (``confusion_numba``), compiled
for the device. Inputs arrive C-contiguous on the device (the caller copies otherwise), viewed as
``[1, R1, K]`` labels or ``[1, R1, C, K]`` scores, so a warp reads consecutive pixels.

Tests run these kernels under ``NUMBA_ENABLE_CUDASIM=1`` with :data:`THREADS` and
:data:`MAX_BLOCKS` patched small so that several blocks run.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda, uint32, uint64

from .._core.devices import cuda_unavailable_reason, describe_cuda
from . import _numba
from ._common import LabelPlan, column_limit, unsigned_dtype

# The CPU kernels' helpers are register_jitable(inline="always"); numba-cuda (0.30) fails to
# compile a kernel that calls such an overload (AssertionError / "gt(omitted, omitted)" typing
# errors, which the simulator never shows). The same Python functions as CUDA device functions:
row_code = cuda.jit(device=True)(_numba.row_code)
takes_over = cuda.jit(device=True)(_numba.takes_over)

THREADS = 256  # threads per block
MAX_BLOCKS = 1024  # more blocks than the GPU holds at once only adds flushes
SHARED_MAX_BINS = 12288  # 48 KB of uint32 counters
_BLOCK_PIXELS_MAX = 1 << 31


unavailable_reason = cuda_unavailable_reason
describe = describe_cuda


@cuda.jit(device=True)
def _pixel(i, r1_count, k_count):
    r = i // k_count
    return r // r1_count, r - (r // r1_count) * r1_count, i - r * k_count


@cuda.jit(device=True)
def _column(p, limit):
    # intp: uint64 + int64 would be float64 in numba's typing
    return np.intp(p if p < limit else limit)


@cuda.jit(device=True)
def _label_column(prediction, r0, r1, k, limit):
    """The predicted column of a pixel of labels [1, R1, K]: the label, clamped to ``limit``."""
    return _column(prediction[r0, r1, k], limit)


@cuda.jit(device=True)
def _argmax_column(scores, r0, r1, k, limit):
    """The predicted column of a pixel of scores [1, R1, C, K]: the argmax (``limit`` unused)."""
    best = scores[r0, r1, 0, k]
    arg = 0
    for c in range(1, scores.shape[2]):
        v = scores[r0, r1, c, k]
        if takes_over(v, best):
            best = v
            arg = c
    return arg


@cache
def _kernel(bins: int, shared: bool, column):
    """The counting kernel of labels (``column`` :func:`_label_column`) or scores
    (:func:`_argmax_column`): into a block's shared-memory histogram first (``shared``), or
    straight into the global one."""
    if shared:

        @cuda.jit
        def kernel(target, prediction, table, full, table_len, keys, codes, invalid, limit, hist):
            local = cuda.shared.array(bins, uint32)
            for b in range(cuda.threadIdx.x, bins, cuda.blockDim.x):
                local[b] = 0
            cuda.syncthreads()
            r1_count, k_count = target.shape[1], target.shape[2]
            for i in range(cuda.grid(1), target.size, cuda.gridsize(1)):
                r0, r1, k = _pixel(i, r1_count, k_count)
                row = row_code(target[r0, r1, k], table, full, table_len, keys, codes, invalid)
                cuda.atomic.add(local, row + column(prediction, r0, r1, k, limit), uint32(1))
            cuda.syncthreads()
            for b in range(cuda.threadIdx.x, bins, cuda.blockDim.x):
                if local[b]:
                    cuda.atomic.add(hist, b, uint64(local[b]))

    else:

        @cuda.jit
        def kernel(target, prediction, table, full, table_len, keys, codes, invalid, limit, hist):
            r1_count, k_count = target.shape[1], target.shape[2]
            for i in range(cuda.grid(1), target.size, cuda.gridsize(1)):
                r0, r1, k = _pixel(i, r1_count, k_count)
                row = row_code(target[r0, r1, k], table, full, table_len, keys, codes, invalid)
                cuda.atomic.add(hist, row + column(prediction, r0, r1, k, limit), uint64(1))

    return kernel


def _grid(pixels: int) -> int:
    wanted = min(MAX_BLOCKS, -(-pixels // THREADS))
    return max(1, wanted, -(-pixels // _BLOCK_PIXELS_MAX))


def count(prediction, target, plan: LabelPlan, class_axis: int | None) -> np.ndarray:
    """The ``[C + 2, C + 1]`` int64 histogram of C-contiguous device arrays.

    ``prediction`` holds labels of the target's shape (``class_axis`` None) or scores with the
    classes along ``class_axis``.
    """
    pixels = math.prod(target.shape)
    label_type = unsigned_dtype(target.dtype)
    target = target.view(label_type)
    full = plan.full
    table_len = label_type.type(0 if full else len(plan.table))
    tables = (
        cuda.to_device(plan.table),
        full,
        table_len,
        cuda.to_device(plan.extra_keys.astype(label_type)),
        cuda.to_device(plan.extra_codes),
    )
    hist = cuda.to_device(np.zeros(plan.bins, np.uint64))
    shared = plan.bins <= SHARED_MAX_BINS
    launch = (_grid(pixels), THREADS)
    invalid = np.intp(plan.invalid_code)
    if class_axis is None:
        prediction = prediction.view(unsigned_dtype(prediction.dtype)).reshape(1, 1, pixels)
        limit = column_limit(plan, prediction.dtype)  # the clamp of min(p, C), in p's dtype
        kernel = _kernel(plan.bins, shared, _label_column)
        kernel[launch](target.reshape(1, 1, pixels), prediction, *tables, invalid, limit, hist)
    else:
        shape = prediction.shape
        before = math.prod(shape[:class_axis])
        after = math.prod(shape[class_axis + 1 :])
        scores = prediction.reshape(1, before, shape[class_axis], after)
        with np.errstate(invalid="ignore"):  # the simulator compares NaN scores in numpy
            kernel = _kernel(plan.bins, shared, _argmax_column)
            kernel[launch](target.reshape(1, before, after), scores, *tables, invalid, 0, hist)
    return hist.copy_to_host().view(np.int64).reshape(plan.num_classes + 2, plan.columns)
