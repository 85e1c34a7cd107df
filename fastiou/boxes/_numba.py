"""Numba CPU backend: ``prange`` kernels around the scalar formulas of ``formulas.py``.

The pairwise kernel is a row loop: ``prange`` over the rows of all batches, and for each row a
plain loop over the columns of boxes2, whose features are separate contiguous arrays so LLVM
vectorizes it. Results are written into an array allocated by the caller (numpy allocates huge
pages for large results; ``np.empty`` inside an njit function does not, and page faults then cost
more than the arithmetic).
"""

from functools import cache

import numba
import numpy as np
from numba import njit, prange

from .._core import config as _config
from .._core.parallel import numba_threads, numba_unusable
from . import _formulas as formulas

_JIT = {"parallel": True, "cache": True, "error_model": "numpy", "nogil": True}


@njit(**_JIT)
def _features_kernel(boxes, fmt, offset, half, two_over_pi, zero_div, feats):
    # boxes [B, K, 4] (any strides) -> feats [B, 8, K]
    k = boxes.shape[1]
    for r in prange(boxes.shape[0] * k):
        b = r // k
        formulas.write_features(
            boxes, b, r - b * k, fmt, offset, half, two_over_pi, zero_div, feats
        )


@cache
def _kernel(op: str, aligned: bool):
    """``op``'s kernel: every pair (out [B, N, M]) or, ``aligned``, box k with box k (out [B, K]).

    ``aligned`` is a constant of the closure: numba compiles only its branch.
    """
    formula = getattr(formulas, op)

    @njit(**_JIT)
    def kernel(f1, f2, out, offset, eps, one, zero_div):
        # f1 [B, 8, N], f2 [B, 8, M] box features (M = N when aligned)
        n = out.shape[1]
        for r in prange(out.shape[0] * n):
            b, i, a = formulas.read_row(f1, r, n)
            if aligned:
                c = formulas.read_features(f2, b, i)
                out[b, i] = formula(a, c, offset, eps, one, zero_div)
            else:
                c0, c1, c2, c3 = f2[b, 0], f2[b, 1], f2[b, 2], f2[b, 3]
                c4, c5, c6, c7 = f2[b, 4], f2[b, 5], f2[b, 6], f2[b, 7]
                row = out[b, i]
                for j in range(row.shape[0]):
                    row[j] = formula(
                        a, (c0[j], c1[j], c2[j], c3[j], c4[j], c5[j], c6[j], c7[j]),
                        offset, eps, one, zero_div,
                    )  # fmt: skip

    return kernel


def _features(boxes: np.ndarray, fmt: int, offset, zero_div: bool) -> np.ndarray:
    """[B, K, 4] boxes -> [B, 8, K] features of the same dtype."""
    t = boxes.dtype.type
    feats = np.empty((boxes.shape[0], 8, boxes.shape[1]), boxes.dtype)
    with numba_threads(_config.num_threads()):
        _features_kernel(boxes, fmt, t(offset), t(0.5), t(2 / np.pi), zero_div, feats)
    return feats


def _run(aligned: bool, op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    f1 = _features(boxes1, fmt, offset, zero_div)
    f2 = _features(boxes2, fmt, offset, zero_div)
    t = out.dtype.type
    with numba_threads(_config.num_threads()):
        _kernel(op, aligned)(f1, f2, out, t(offset), t(eps), t(1), zero_div)


def pairwise(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, N, M] with ``op`` between boxes1 [B, N, 4] and boxes2 [B, M, 4]."""
    _run(False, op, boxes1, boxes2, out, fmt, offset, eps, zero_div)


def aligned(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, K] with ``op`` between boxes1[b, k] and boxes2[b, k] ([B, K, 4] each)."""
    _run(True, op, boxes1, boxes2, out, fmt, offset, eps, zero_div)


def unavailable_reason() -> str | None:
    return numba_unusable()


def describe() -> str:
    return f"numba {numba.__version__}, threading layer {numba.config.THREADING_LAYER}"
