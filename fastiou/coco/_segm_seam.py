"""TEMPORARY stand-in, replaced by ``fastiou.masks.iou_groups`` (and ``fastiou.masks.RLEs``) at
merge: the seam between the COCO engine and the masks family.

The engine calls only :func:`iou_groups` (with :class:`RLEs` made by ``RLEs.from_coco``). This
stand-in computes each group with ``pycocotools.mask.iou`` (slow: one Python call per group);
the masks family's version packs the runs and computes all groups in a compiled kernel.
"""

from __future__ import annotations

import numpy as np

from . import mask as _mask


class RLEs:
    """Many RLEs. The real one packs ``counts`` (uint32, concatenated), ``offsets``
    (int64 [n + 1]), ``heights`` and ``widths``; this stand-in keeps the COCO dicts."""

    def __init__(self, objects: list[dict], heights: np.ndarray, widths: np.ndarray):
        self._objects = objects
        self.heights = heights
        self.widths = widths

    @classmethod
    def from_coco(cls, rles: list[dict]) -> RLEs:
        """From COCO RLE dicts (``{"size": [h, w], "counts": bytes or str}``)."""
        sizes = np.array([r["size"] for r in rles], np.int64).reshape(-1, 2)
        return cls(list(rles), sizes[:, 0].copy(), sizes[:, 1].copy())

    def __len__(self) -> int:
        return len(self._objects)


def iou_groups(
    dt: RLEs,
    dt_index: np.ndarray,
    d_start: np.ndarray,
    d_end: np.ndarray,
    gt: RLEs,
    gt_index: np.ndarray,
    g_start: np.ndarray,
    g_end: np.ndarray,
    gt_iscrowd: np.ndarray,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask IoU per group: group j's D_j x G_j matrix (row-major) is
    ``values[offsets[j]:offsets[j + 1]]`` and equals ``pycocotools.mask.iou(dt_rles, gt_rles,
    iscrowd)`` with ``dt_rles = dt[dt_index[d_start[j]:d_end[j]]]``, ``gt_rles =
    gt[gt_index[g_start[j]:g_end[j]]]`` and ``iscrowd = gt_iscrowd[g_start[j]:g_end[j]]``
    (``gt_iscrowd`` is aligned with ``gt_index``)."""
    del threads  # the stand-in is serial
    sizes = (np.asarray(d_end) - d_start) * (np.asarray(g_end) - g_start)
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    values = np.empty(int(offsets[-1]), np.float64)
    for j in np.flatnonzero(sizes).tolist():
        d = [dt._objects[i] for i in dt_index[d_start[j] : d_end[j]].tolist()]
        g = [gt._objects[i] for i in gt_index[g_start[j] : g_end[j]].tolist()]
        crowd = [int(c) for c in gt_iscrowd[g_start[j] : g_end[j]].tolist()]
        values[offsets[j] : offsets[j + 1]] = np.asarray(_mask.iou(d, g, crowd)).ravel()
    return values, offsets
