"""Cython confusion backend: the compiled ``_ckernels.pyx`` behind the backend interface."""

from __future__ import annotations

import numpy as np

from .._core.parallel import describe_cython
from . import _ckernels as _ext
from ._common import LabelPlan, thread_count

_C_TYPES = {"u1": "uint8_t", "u2": "uint16_t", "u4": "uint32_t", "u8": "uint64_t",
            "f4": "float", "f8": "double"}  # fmt: skip


def _specialized(function, *arrays: np.ndarray):
    """The fused Cython function's version for these arrays' dtypes (skips its dispatcher)."""
    key = "|".join(_C_TYPES[a.dtype.str[1:]] for a in arrays)
    return function.__signatures__[key]


def _element_strides(x: np.ndarray) -> np.ndarray:
    # The kernels step through rows in elements; a byte stride that is not a whole number of
    # elements (a view into a packed record array) gets an aligned copy.
    if x.flags.c_contiguous or all(s % x.itemsize == 0 for s in x.strides):
        return x
    return np.ascontiguousarray(x)


def labels(target: np.ndarray, prediction: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of 3-D unsigned label views ``target`` and ``prediction`` to ``hist``."""
    threads = thread_count(target.size)
    target, prediction = _element_strides(target), _element_strides(prediction)
    tables = plan.table, plan.full, plan.extra_keys64, plan.extra_codes
    count = _specialized(_ext.labels, target, prediction)
    count(target, prediction, *tables, plan.num_classes, plan.sub_histograms, hist, threads)


def logits(target: np.ndarray, scores: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of ``target`` [R0, R1, K] against ``argmax(scores [R0, R1, C, K], 2)``."""
    threads = thread_count(target.size)
    target, scores = _element_strides(target), _element_strides(scores)
    tables = plan.table, plan.full, plan.extra_keys64, plan.extra_codes
    count = _specialized(_ext.logits, target, scores)
    count(target, scores, *tables, plan.sub_histograms, hist, threads)


_TABLES: dict[LabelPlan, _ext.LabelTable] = {}  # label plans are few and cached themselves


def lean_labels(target: np.ndarray, prediction: np.ndarray, plan: LabelPlan) -> np.ndarray | None:
    """The [C, C] matrix of two label arrays in one call (``_api._lean_count``), or None when
    they are not C-contiguous native integer arrays of one dtype and shape, or a label is out of
    range (the general path then runs and says which)."""
    table = _TABLES.get(plan)
    if table is None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        tables = plan.table, plan.full, plan.extra_keys64, plan.extra_codes
        table = _TABLES[plan] = _ext.LabelTable(*tables, plan.num_classes, plan.sub_histograms)
    return _ext.lean_labels(table, target, prediction, thread_count(target.size))


describe = describe_cython
