"""Numba CUDA backend: the formulas of ``formulas.py`` in CUDA kernels.

Layout for coalescing: threadIdx.x runs along the columns j, so a warp reads consecutive box
features ``f2[b, k, j]`` and writes consecutive ``out[b, i, j]``; every thread of a warp reads the
same row features ``f1[b, k, i]`` (one broadcast transaction). Grid-stride loops keep any size
within the grid limits. The features pass runs on the device too: no host round trip.

Tests run these kernels under ``NUMBA_ENABLE_CUDASIM=1`` with ``THREADS`` patched small so several
blocks run; performance on a real GPU is not measured here.
"""

from functools import cache

import numpy as np
from numba import cuda

from .._core.devices import cuda_unavailable_reason, describe_cuda
from . import _formulas as formulas

THREADS = (32, 8)  # threads per block: (along columns, along rows)
MAX_BLOCKS = 65535  # per grid dimension; grid-stride loops cover the rest


unavailable_reason = cuda_unavailable_reason
describe = describe_cuda


@cuda.jit
def _features_kernel(boxes, fmt, offset, half, two_over_pi, zero_div, feats):
    k = boxes.shape[1]
    for r in range(cuda.grid(1), boxes.shape[0] * k, cuda.gridsize(1)):
        b = r // k
        formulas.write_features(
            boxes, b, r - b * k, fmt, offset, half, two_over_pi, zero_div, feats
        )


@cache
def _kernel(op: str, aligned: bool):
    """``op``'s kernel: every pair (out [B, N, M]) or, ``aligned``, box k with box k (out [B, K]).

    Rows r run along the grid's y; an aligned launch has one thread along x, so its rows are
    consecutive threads. ``aligned`` is a constant of the closure: numba compiles
    only its branch.
    """
    formula = getattr(formulas, op)

    @cuda.jit
    def kernel(f1, f2, out, offset, eps, one, zero_div):
        n = out.shape[1]
        j0, r0 = cuda.grid(2)
        sj, sr = cuda.gridsize(2)
        for r in range(r0, out.shape[0] * n, sr):
            b, i, a = formulas.read_row(f1, r, n)
            if aligned:
                c = formulas.read_features(f2, b, i)
                out[b, i] = formula(a, c, offset, eps, one, zero_div)
            else:
                for j in range(j0, out.shape[2], sj):
                    c = formulas.read_features(f2, b, j)
                    out[b, i, j] = formula(a, c, offset, eps, one, zero_div)

    return kernel


def _blocks(n: int, per_block: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-n // per_block)))


def _launch_1d(n: int):
    per_block = THREADS[0] * THREADS[1]
    return _blocks(n, per_block), per_block


def _quiet():
    """The simulator runs kernels as numpy scalar code: silence its 0/0 warnings (IEEE is meant)."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def _features(boxes, fmt: int, offset, zero_div: bool):
    """[B, K, 4] device boxes -> [B, 8, K] device features."""
    t = np.dtype(boxes.dtype).type
    feats = cuda.device_array((boxes.shape[0], 8, boxes.shape[1]), boxes.dtype)
    grid, block = _launch_1d(boxes.shape[0] * boxes.shape[1])
    with _quiet():
        _features_kernel[grid, block](boxes, fmt, t(offset), t(0.5), t(2 / np.pi), zero_div, feats)
    return feats


def _run(aligned: bool, op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    f1 = _features(boxes1, fmt, offset, zero_div)
    f2 = _features(boxes2, fmt, offset, zero_div)
    t = np.dtype(out.dtype).type
    rows = out.shape[0] * out.shape[1]
    block = (1, THREADS[0] * THREADS[1]) if aligned else THREADS
    grid = (1 if aligned else _blocks(out.shape[2], block[0]), _blocks(rows, block[1]))
    with _quiet():
        _kernel(op, aligned)[grid, block](f1, f2, out, t(offset), t(eps), t(1), zero_div)


def pairwise(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill device ``out`` [B, N, M] with ``op`` between device boxes [B, N, 4], [B, M, 4]."""
    _run(False, op, boxes1, boxes2, out, fmt, offset, eps, zero_div)


def aligned(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill device ``out`` [B, K] with ``op`` between device boxes1[b, k] and boxes2[b, k]."""
    _run(True, op, boxes1, boxes2, out, fmt, offset, eps, zero_div)
