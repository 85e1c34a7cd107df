"""Cython NMS backend: the compiled extension ``_ckernels.pyx`` behind the backend interface."""

import numpy as np

from .._core import config as _config
from .._core.parallel import describe_cython
from . import _ckernels as _ext


def nms(boxes, scores, iou_threshold: float, fmt: int, max_output: int) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (int64)."""
    return _ext.nms(boxes, scores, fmt, iou_threshold, max_output)


def batched_nms(boxes, scores, labels, n_classes, iou_threshold: float, fmt: int, max_output):
    """NMS within each class (labels in [0, n_classes)), merged in descending score order."""
    # One thread for small work: waking pool threads costs more than it saves there.
    threads = 1 if len(boxes) < _config.PARALLEL_MIN_WORK else _config.num_threads()
    return _ext.batched_nms(
        boxes, scores, labels, n_classes, fmt, iou_threshold, max_output, threads
    )


def soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, gaussian, fmt, max_output):
    """Soft-NMS (see nms_reference.soft_nms): kept indices and their scores at selection."""
    return _ext.soft_nms(
        boxes, scores, fmt, iou_threshold, sigma, score_threshold, gaussian, max_output
    )


describe = describe_cython
