"""Cython backend: the compiled extension ``_ckernels.pyx`` behind the backend interface."""

import numpy as np

from .._core import config as _config
from .._core.parallel import describe_cython
from . import _ckernels as _ext

if _ext.cpu_has_avx2():
    try:
        from . import _ckernels_avx2 as _ext
    except ImportError:  # not built here (not x86): the portable build it is
        pass

OPERATIONS = {name: code for code, name in enumerate(_ext.OPERATIONS)}


def _threads(work: int) -> int:
    # One thread for small work: waking pool threads costs more than it saves there.
    return 1 if work < _config.PARALLEL_MIN_WORK else _config.num_threads()


def _whole_elements(boxes: np.ndarray) -> np.ndarray:
    # The kernels step through boxes in elements: a byte stride that is not a whole number of
    # elements (a view into packed records) gets an aligned copy.
    if all(s % boxes.itemsize == 0 for s in boxes.strides):
        return boxes
    return np.ascontiguousarray(boxes)


def pairwise(op, boxes1, boxes2, out, fmt, offset, eps, zero_div, lean=False):
    """Fill ``out`` [B, N, M] with ``op`` between boxes1 [B, N, 4] and boxes2 [B, M, 4].

    ``lean=True`` is the lean call of ``backend="auto"`` (``_api._lean``): the caller's numpy
    arrays as they are; returns the [N, M] matrix (new, or ``out``), or None unless they are
    [N, 4] and [M, 4] native float32 or float64 arrays of one dtype (any strides) and ``out`` is
    None or a C-contiguous, aligned, writeable numpy array of the result's shape and dtype.
    """
    if lean:  # _threads(N * M), inlined: the lean path's calls are a few microseconds
        small = (boxes1.size * boxes2.size) >> 4 < _config.PARALLEL_MIN_WORK
        threads = 1 if small else _config.num_threads()
        return _ext.matrix(OPERATIONS[op], boxes1, boxes2, fmt, offset, eps, zero_div, threads, out)
    threads = _threads(out.size)
    boxes1, boxes2 = _whole_elements(boxes1), _whole_elements(boxes2)
    _ext.pairwise(OPERATIONS[op], boxes1, boxes2, out, fmt, offset, eps, zero_div, threads)


def aligned(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, K] with ``op`` between boxes1[b, k] and boxes2[b, k] ([B, K, 4] each)."""
    threads = _threads(out.size)
    boxes1, boxes2 = _whole_elements(boxes1), _whole_elements(boxes2)
    _ext.aligned(OPERATIONS[op], boxes1, boxes2, out, fmt, offset, eps, zero_div, threads)


def describe() -> str:
    build = "AVX2" if _ext.__name__.endswith("_avx2") else "portable (SSE2)"
    return f"{describe_cython()}; box kernels: {build} build"
