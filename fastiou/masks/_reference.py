"""The numpy oracle of the masks family (the "numpy" backend): plain array code, no kernels.

``pairwise_dense`` scores boolean pixel rows; ``pairwise_rle`` decodes RLEs with ``np.repeat``
and applies pycocotools' rleIou rules on the dense masks: 0 where the boxes do not overlap,
intersection over union, over the detection's area for a crowd column, -1 for masks of different
sizes whose boxes overlap.
"""

from __future__ import annotations

import numpy as np

from ._rles import RLEs


def iou_from_counts(inter, area1, area2, crowd) -> np.ndarray:
    """pycocotools' ratio from integer counts: 0 without overlap, crowd columns over area1."""
    inter = np.asarray(inter, np.float64)
    a1 = np.asarray(area1, np.float64)[:, None]
    union = np.where(np.asarray(crowd, bool)[None, :], a1, a1 + np.asarray(area2)[None, :] - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inter > 0, inter / np.where(inter > 0, union, 1), 0.0)


def pairwise_dense(masks1: np.ndarray, masks2: np.ndarray, crowd: np.ndarray, shape) -> np.ndarray:
    """IoU of 0/1 uint8 rows [N, P] x [M, P] ([H, W] = ``shape``) -> float64 [N, M]."""
    a = masks1.astype(np.float64)
    b = masks2.astype(np.float64)
    return iou_from_counts(a @ b.T, a.sum(1), b.sum(1), crowd)


def decode(rles: RLEs) -> list[np.ndarray]:
    """Each mask as a bool [h, w] array, from its runs alone."""
    out = []
    for i in range(len(rles)):
        runs = rles.counts[rles.offsets[i] : rles.offsets[i + 1]].astype(np.int64)
        values = np.arange(runs.shape[0]) % 2 == 1
        h, w = int(rles.heights[i]), int(rles.widths[i])
        out.append(np.repeat(values, runs).reshape(w, h).T)
    return out


def bbox(mask: np.ndarray) -> np.ndarray:
    """[x, y, w, h] of a dense mask's foreground (zeros when empty)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros(4)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)


def box_iou(d: np.ndarray, g: np.ndarray, crowd: bool) -> float:
    """pycocotools' bbIou of two xywh boxes."""
    w = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
    h = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / (d[2] * d[3] if crowd else d[2] * d[3] + g[2] * g[3] - w * h)


def pairwise_rle(dt: RLEs, gt: RLEs, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' mask.iou of two RLE lists -> float64 [len(dt), len(gt)]."""
    dm, gm = decode(dt), decode(gt)
    out = np.zeros((len(dm), len(gm)))
    for i, a in enumerate(dm):
        for j, b in enumerate(gm):
            if box_iou(bbox(a), bbox(b), bool(crowd[j])) <= 0:
                continue
            if a.shape != b.shape:
                out[i, j] = -1.0
                continue
            inter = np.count_nonzero(a & b)
            out[i, j] = iou_from_counts([[inter]], [a.sum()], [b.sum()], [crowd[j]])[0, 0]
    return out
