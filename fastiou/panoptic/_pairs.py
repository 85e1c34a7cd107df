"""The pair-area kernel behind dispatch: checks the id maps, picks a backend, runs it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import dispatch as _dispatch
from .._core.arrays import _library, to_numpy

VOID = 0
ID_LIMIT = (1 << 32) - 1  # ids are below this (the CUDA table uses all ones as "empty")


class PanopticDataError(ValueError):
    """Bad panoptic data: names the image, and the segment or file where there is one."""


RGB = (0, 1, 2)


def _on_gpu(x: Any) -> bool:
    library = _library(x)
    if library == "torch":
        return x.device.type != "cpu"
    return library in ("cupy", "cuda")


def _host_ids(x: Any, name: str, image_id) -> np.ndarray:
    """A host id map as flat uint32, checked: integer, in [0, 2^32 - 1)."""
    x = to_numpy(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name} id map must hold integers, not {x.dtype}")
    if x.size and (x.dtype.kind == "i" or x.dtype.itemsize >= 4):  # else always in range
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= ID_LIMIT:
            bad = low if low < 0 else high
            where = f"image {image_id}: " if image_id is not None else ""
            raise PanopticDataError(f"{where}{name} id {bad} is not in [0, 2^32 - 1)")
    return np.ascontiguousarray(x, dtype=np.uint32).reshape(-1)


def _is_rgb(x: Any) -> bool:
    return (
        len(getattr(x, "shape", ())) == 3
        and x.shape[-1] in (3, 4)
        and str(x.dtype).endswith("uint8")
    )


def pair_counts(gt, pred, *, backend: str = "auto", image_id=None, channels=None):
    """The area of every (ground-truth id, predicted id) pair of two id maps.

    Parameters
    ----------
    gt, pred : array [H, W] of ids, or [H, W, 3|4] uint8 RGB(A) pixels (id = R + 256 G + 256² B)
        numpy, torch or cupy arrays; maps on a GPU are counted there (``backend="auto"``).
    channels : pair of (R, G, B) channel indices, optional
        Where R, G and B sit in RGB inputs (default ``(0, 1, 2)`` for both).

    Returns
    -------
    keys : uint64 [K]
        ``gt_id << 32 | pred_id`` of the pairs present, sorted (by ground truth, then prediction).
    counts : int64 [K]
        Their pixel counts.
    """
    rgb = _is_rgb(gt) and _is_rgb(pred)
    gt_shape, pred_shape = tuple(gt.shape), tuple(pred.shape)
    if (gt_shape[:2] if rgb else gt_shape) != (pred_shape[:2] if rgb else pred_shape):
        where = f"image {image_id}: " if image_id is not None else ""
        raise PanopticDataError(
            f"{where}ground truth {list(gt_shape[:2])} and prediction {list(pred_shape[:2])} "
            "differ in size"
        )
    on_gpu = _on_gpu(gt) and _on_gpu(pred)
    pixels = int(np.prod(gt_shape[:2] if rgb else gt_shape))
    name, module = _dispatch.select("panoptic", backend, pixels, on_gpu)
    if rgb and name != "cuda":
        g, p = to_numpy(gt), to_numpy(pred)
        gc, pc = channels or (RGB, RGB)
        g = np.ascontiguousarray(g).reshape(-1, g.shape[-1])
        p = np.ascontiguousarray(p).reshape(-1, p.shape[-1])
        return module.pair_counts_rgb(g, p, gc, pc)
    if name == "cuda":
        return module.pair_counts(gt, pred, image_id=image_id, channels=channels)
    if rgb:  # pragma: no cover - handled above
        raise AssertionError
    return module.pair_counts(_host_ids(gt, "ground-truth", image_id),
                              _host_ids(pred, "predicted", image_id))  # fmt: skip
