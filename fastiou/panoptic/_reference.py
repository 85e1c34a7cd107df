"""numpy reference of the panoptic kernels (the "numpy" backend and the tests' oracle).

Same interface as ``_cython.pyx``: sorted pair keys ``gt << 32 | pred`` and their pixel counts.
"""

from __future__ import annotations

import numpy as np


def pair_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``gt << 32 | pred`` (uint64) of the pairs present and their pixel counts."""
    keys = (gt.astype(np.uint64) << np.uint64(32)) | pred.astype(np.uint64)
    keys, counts = np.unique(keys, return_counts=True)
    return keys, counts.astype(np.int64)


def rgb_to_ids(rgb: np.ndarray, channels: tuple[int, int, int]) -> np.ndarray:
    """``R + 256 G + 256² B`` of ``[..., C]`` uint8 pixels, R, G, B at ``channels`` (uint32)."""
    r, g, b = (rgb[..., c].astype(np.uint32) for c in channels)
    return r | (g << np.uint32(8)) | (b << np.uint32(16))


def pair_counts_rgb(gt, pred, gt_channels, pred_channels) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pair_counts` of ``[N, C]`` uint8 RGB pixels (R, G, B at the channel indices)."""
    return pair_counts(rgb_to_ids(gt, gt_channels), rgb_to_ids(pred, pred_channels))


def describe() -> str:
    return "numpy reference"
