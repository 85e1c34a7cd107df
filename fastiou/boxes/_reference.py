"""The numpy backend: slow, obviously-correct versions of every operation.

This is the oracle of the test suite and the fallback backend. It follows torchvision's formulas
line by line on broadcast arrays and shares no code with the compiled kernels. To keep memory
bounded it works on blocks of rows: temporaries are a few ``block x M`` arrays, never ``N x M``.
"""

import numpy as np

_BLOCK_ELEMENTS = 1 << 18  # rows per block = this // M: a few MB of temporaries


def to_xyxy(boxes: np.ndarray, fmt: int) -> np.ndarray:
    """Convert [..., 4] boxes from format code ``fmt`` (0 xyxy, 1 xywh, 2 cxcywh) to xyxy."""
    c0, c1, c2, c3 = (boxes[..., k] for k in range(4))
    half = boxes.dtype.type(0.5)
    if fmt == 1:
        return np.stack([c0, c1, c0 + c2, c1 + c3], axis=-1)
    if fmt == 2:
        return np.stack([c0 - half * c2, c1 - half * c3, c0 + half * c2, c1 + half * c3], axis=-1)
    return boxes


def _divide(num: np.ndarray, den: np.ndarray, zero_div: bool) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        q = num / den
    if zero_div:
        q = np.where(den == 0, 0, q).astype(q.dtype, copy=False)
    return q


def _overlap(op: str, a: np.ndarray, b: np.ndarray, offset, eps, zero_div: bool) -> np.ndarray:
    """``op`` between xyxy boxes a [..., 4] and b [..., 4] that broadcast against each other."""
    dt = np.result_type(a, b)
    offset, eps = dt.type(offset), dt.type(eps)
    wa, ha = a[..., 2] - a[..., 0] + offset, a[..., 3] - a[..., 1] + offset
    wb, hb = b[..., 2] - b[..., 0] + offset, b[..., 3] - b[..., 1] + offset
    area_a, area_b = wa * ha, wb * hb
    # np.maximum / np.minimum propagate NaN, as torch.max / torch.min do.
    lo, hi = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    wh = np.maximum(hi - lo + offset, 0)
    inter = (wh[..., 0] * wh[..., 1]).astype(dt, copy=False)
    if op == "ioa1":
        return _divide(inter, np.broadcast_to(area_a, inter.shape), zero_div)
    if op == "ioa2":
        return _divide(inter, np.broadcast_to(area_b, inter.shape), zero_div)
    union = area_a + area_b - inter
    iou = _divide(inter, union, zero_div)
    if op == "iou":
        return iou
    lo, hi = np.minimum(a[..., :2], b[..., :2]), np.maximum(a[..., 2:], b[..., 2:])
    ewh = np.maximum(hi - lo + offset, 0)
    ewh = ewh.astype(dt, copy=False)
    if op == "giou":
        enclosing = ewh[..., 0] * ewh[..., 1]
        return iou - _divide(enclosing - union, enclosing, zero_div)
    diagonal = ewh[..., 0] ** 2 + ewh[..., 1] ** 2 + eps
    half = dt.type(0.5)
    dx = (a[..., 0] + a[..., 2]) * half - (b[..., 0] + b[..., 2]) * half
    dy = (a[..., 1] + a[..., 3]) * half - (b[..., 1] + b[..., 3]) * half
    diou = iou - (dx**2 + dy**2) / diagonal
    if op == "diou":
        return diou
    if op == "ciou":
        with np.errstate(invalid="ignore"):
            atan_a = np.arctan(_divide(wa, ha, zero_div))
            atan_b = np.arctan(_divide(wb, hb, zero_div))
        v = dt.type(4 / np.pi**2) * (atan_a - atan_b) ** 2
        alpha = v / (1 - iou + v + eps)
        return diou - alpha * v
    raise ValueError(f"unknown operation {op!r}")


def pairwise(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, N, M] with ``op`` between boxes1 [B, N, 4] and boxes2 [B, M, 4]."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, out.shape[2]))
    with np.errstate(all="ignore"):
        a, b = to_xyxy(boxes1, fmt), to_xyxy(boxes2, fmt)
        for batch in range(out.shape[0]):
            for start in range(0, out.shape[1], rows):
                block = a[batch, start : start + rows, None, :]
                out[batch, start : start + rows] = _overlap(
                    op, block, b[batch, None, :, :], offset, eps, zero_div
                )


def aligned(op, boxes1, boxes2, out, fmt, offset, eps, zero_div) -> None:
    """Fill ``out`` [B, K] with ``op`` between boxes1[b, k] and boxes2[b, k] ([B, K, 4] each)."""
    with np.errstate(all="ignore"):
        out[...] = _overlap(op, to_xyxy(boxes1, fmt), to_xyxy(boxes2, fmt), offset, eps, zero_div)
