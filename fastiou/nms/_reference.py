"""The numpy NMS backend: the plain greedy loops, written for clarity. The oracle of the tests.

Every function takes host arrays already checked by ``fastiou.nms``: ``boxes`` [N, 4] of the
compute dtype (float32 or float64) in format code ``fmt``, ``scores`` [N] (float32 or float64),
``labels`` [N] int64 class labels. They share no code with the compiled kernels except the format
conversion of ``reference.py``; the IoU below is torchvision's, operation for operation:
``inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))``,
``iou = inter / (area_kept + area_other - inter)``, in the compute dtype, compared with the
threshold in float64 (torchvision compares ``float`` IoU with a ``double`` threshold).
"""

import numpy as np

from ..boxes._reference import to_xyxy


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` high to low, stable, NaN first: ``torch.sort``'s order."""
    nan = np.isnan(scores)
    # -0.0 and 0.0 compare equal, so the stable sort keeps them in index order, as torch does.
    finite_order = np.argsort(-scores[~nan], kind="stable")
    return np.concatenate([np.flatnonzero(nan), np.flatnonzero(~nan)[finite_order]])


def _features(boxes: np.ndarray, fmt: int):
    zero = boxes.dtype.type(0)  # formulas.py adds the (zero) offset: the same operations
    with np.errstate(all="ignore"):
        xyxy = to_xyxy(boxes, fmt)
        x1, y1, x2, y2 = (np.ascontiguousarray(xyxy[:, k]) for k in range(4))
        return x1, y1, x2, y2, (x2 - x1 + zero) * (y2 - y1 + zero)


def _iou_with(i: int, x1, y1, x2, y2, area) -> np.ndarray:
    """IoU of box ``i`` (the kept one) with every box, NaN-propagating min/max as formulas.py."""
    zero = area.dtype.type(0)
    with np.errstate(all="ignore"):
        w = np.maximum(np.minimum(x2[i], x2) - np.maximum(x1[i], x1) + zero, zero)
        h = np.maximum(np.minimum(y2[i], y2) - np.maximum(y1[i], y1) + zero, zero)
        inter = w * h
        return inter / (area[i] + area - inter)


def nms(boxes, scores, iou_threshold: float, fmt: int, max_output: int) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (int64)."""
    feats = _features(boxes, fmt)
    threshold = np.float64(iou_threshold)  # a float64 scalar: float32 IoU is compared in float64
    suppressed = np.zeros(len(scores), dtype=bool)
    keep = []
    for i in descending_order(scores):
        if len(keep) >= max_output:
            break
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= _iou_with(i, *feats) > threshold  # NaN > t is False: NaN never suppresses
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, labels, n_classes, iou_threshold: float, fmt: int, max_output):
    """NMS within each class, merged in descending score order (stable); int64 indices.

    ``labels`` may be any integers (``n_classes`` is not used here).
    """
    kept = np.zeros(len(scores), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        kept[members[nms(boxes[members], scores[members], iou_threshold, fmt, len(members))]] = 1
    order = descending_order(scores)
    return order[kept[order]][:max_output]


def soft_nms(
    boxes,
    scores,
    iou_threshold: float,
    sigma: float,
    score_threshold: float,
    gaussian: bool,
    fmt: int,
    max_output: int,
):
    """Soft-NMS: (kept indices int64, their scores at selection) in selection order.

    Repeatedly select the remaining box with the highest current score (NaN highest, ties to the
    lower index), then multiply the score of every other remaining box by the decay of its IoU
    with the selected one: linear ``1 - iou`` where ``iou >= iou_threshold`` (else 1), gaussian
    ``exp(-iou**2 / sigma)``; a NaN IoU does not decay. A box whose score is below
    ``score_threshold`` (initially or after a decay) is discarded.
    """
    dtype = boxes.dtype
    feats = _features(boxes, fmt)
    current = scores.astype(dtype)
    with np.errstate(invalid="ignore"):
        alive = ~(current < np.float64(score_threshold))
    one, sigma_t = dtype.type(1), dtype.type(sigma)
    keep, kept_scores = [], []
    while alive.any() and len(keep) < max_output:
        candidates = np.flatnonzero(alive)
        i = candidates[descending_order(current[candidates])[0]]
        keep.append(i)
        kept_scores.append(current[i])
        alive[i] = False
        iou = _iou_with(i, *feats)
        with np.errstate(all="ignore"):
            if gaussian:
                decay = np.exp(-(iou * iou) / sigma_t)
            else:
                decay = np.where(iou >= np.float64(iou_threshold), one - iou, one)
            decay = np.where(np.isnan(iou), one, decay).astype(dtype)
            current = np.where(alive, current * decay, current)
            alive &= ~(current < np.float64(score_threshold))
    return np.array(keep, dtype=np.int64), np.array(kept_scores, dtype=dtype)


def below(threshold: float, dtype: np.dtype):
    """The largest value of ``dtype`` <= threshold: for any x of that dtype, x > below(t) exactly
    when float64(x) > t. The kernels compare in the boxes' dtype (fewer conversions in the
    vector loops) with torchvision's float64 result."""
    with np.errstate(over="ignore"):  # beyond the dtype's range: +-inf, then the largest below
        t = dtype.type(threshold)
        if float(t) > threshold:
            t = np.nextafter(t, dtype.type(-np.inf))
    return t
