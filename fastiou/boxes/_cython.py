"""Cython backend: the compiled extension ``_ckernels.pyx`` behind the backend interface."""

import numpy as np

from .._core import config as _config
from .._core.parallel import describe_cython
from . import _ckernels as _ext

OPERATIONS = {name: code for code, name in enumerate(_ext.OPERATIONS)}


def _threads(work: int) -> int:
    # One thread for small work: waking pool threads costs more than it saves there.
    return 1 if work < _config.PARALLEL_MIN_WORK else _config.num_threads()


def _features(boxes: np.ndarray, fmt: int, offset, zero_div: bool) -> np.ndarray:
    """[B, K, 4] boxes -> [B, 8, K] features of the same dtype."""
    feats = np.empty((boxes.shape[0], 8, boxes.shape[1]), boxes.dtype)
    t = boxes.dtype.type
    _ext.features(boxes, fmt, t(offset), zero_div, feats, _threads(boxes.shape[0] * boxes.shape[1]))
    return feats


def pairwise(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, N, M] with ``op`` between boxes1 [B, N, 4] and boxes2 [B, M, 4]."""
    f1 = _features(boxes1, fmt, offset, zero_div)
    f2 = _features(boxes2, fmt, offset, zero_div)
    t = out.dtype.type
    threads = _threads(out.size)
    _ext.pairwise(OPERATIONS[op], f1, f2, out, t(offset), t(eps), zero_div, threads)


def aligned(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, K] with ``op`` between boxes1[b, k] and boxes2[b, k] ([B, K, 4] each)."""
    f1 = _features(boxes1, fmt, offset, zero_div)
    f2 = _features(boxes2, fmt, offset, zero_div)
    t = out.dtype.type
    threads = _threads(out.size)
    _ext.aligned(OPERATIONS[op], f1, f2, out, t(offset), t(eps), zero_div, threads)


describe = describe_cython
