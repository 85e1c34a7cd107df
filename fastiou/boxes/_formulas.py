"""Scalar box-overlap formulas, written once and compiled by both numba targets.

``numba_cpu`` (prange kernels) and ``numba_cuda`` (CUDA kernels) call these functions; numba
inlines them into each kernel. The Cython backend has the only other copy (C cannot call these),
and ``reference.py`` is an independent numpy oracle.

A box enters the pair formulas as its *feature tuple*, computed once per box by
:func:`box_features` (so an N x M matrix costs O(N + M) areas, centres and arctangents)::

    (x1, y1, x2, y2, area, cx, cy, aspect)

``aspect`` is ``atan(w / h) * 2 / pi``, the CIoU aspect term pre-scaled so that
``(aspect_a - aspect_b) ** 2`` is torchvision's ``4 / pi**2 * (atan_a - atan_b) ** 2``.

Every constant arrives as an argument of the compute dtype (``offset``, ``half``, ``one``,
``eps``...): a Python literal would promote float32 arithmetic to float64 inside numba.
``zero_div`` selects the degenerate-box policy: False keeps IEEE arithmetic (0/0 is NaN, exactly as
torchvision), True makes a ratio with a zero denominator 0. NaN coordinates always give NaN.
"""

import math

from numba.extending import register_jitable

# Box formats, as the integer code the kernels take.
FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}
# Overlap operations; the public module maps its functions onto these names.
OPERATIONS = ("iou", "giou", "diou", "ciou", "ioa1", "ioa2")

jitable = register_jitable(error_model="numpy")


@jitable
def pmin(a, b):
    """min that propagates NaN from either argument (as torch.min does)."""
    return a if (a < b or a != a) else b


@jitable
def pmax(a, b):
    """max that propagates NaN from either argument (as torch.max does)."""
    return a if (a > b or a != a) else b


@jitable
def clamp0(x, zero):
    """max(x, zero) that keeps NaN (as torch.clamp(min=0))."""
    return zero if x < zero else x


@jitable
def ratio(num, den, zero_div):
    """num / den; with ``zero_div`` a zero denominator gives 0 instead of NaN or inf."""
    q = num / den
    if zero_div and den == 0:
        q = den - den  # a +0.0 of den's dtype, even when den is -0.0
    return q


@jitable
def box_features(c0, c1, c2, c3, fmt, offset, half, two_over_pi, zero_div):
    """Convert one box to xyxy and return its feature tuple (see the module docstring)."""
    if fmt == 1:  # xywh, as torchvision: x2 = x + w
        x1, y1, x2, y2 = c0, c1, c0 + c2, c1 + c3
    elif fmt == 2:  # cxcywh, as torchvision: x1 = cx - 0.5 * w
        x1, y1, x2, y2 = c0 - half * c2, c1 - half * c3, c0 + half * c2, c1 + half * c3
    else:
        x1, y1, x2, y2 = c0, c1, c2, c3
    w = x2 - x1 + offset
    h = y2 - y1 + offset
    aspect = math.atan(ratio(w, h, zero_div)) * two_over_pi
    return x1, y1, x2, y2, w * h, (x1 + x2) * half, (y1 + y2) * half, aspect


@jitable
def write_features(boxes, b, i, fmt, offset, half, two_over_pi, zero_div, feats):
    """feats[b, :, i] = the features of box boxes[b, i] ([B, K, 4] -> [B, 8, K])."""
    f = box_features(
        boxes[b, i, 0], boxes[b, i, 1], boxes[b, i, 2], boxes[b, i, 3],
        fmt, offset, half, two_over_pi, zero_div,
    )  # fmt: skip
    for c in range(8):
        feats[b, c, i] = f[c]


@jitable
def read_features(f, b, i):
    """The feature tuple of box i of batch item b in features f [B, 8, K]."""
    return (f[b, 0, i], f[b, 1, i], f[b, 2, i], f[b, 3, i],
            f[b, 4, i], f[b, 5, i], f[b, 6, i], f[b, 7, i])  # fmt: skip


@jitable
def read_row(f, r, n):
    """(b, i, the feature tuple of box i of batch item b) for the flat row ``r = b * n + i`` of
    features f [B, 8, n]: the row loops of the kernels run over all batch items at once."""
    b = r // n
    i = r - b * n
    return b, i, read_features(f, b, i)


@jitable
def intersection(a, b, offset):
    zero = offset - offset
    w = clamp0(pmin(a[2], b[2]) - pmax(a[0], b[0]) + offset, zero)
    h = clamp0(pmin(a[3], b[3]) - pmax(a[1], b[1]) + offset, zero)
    return w * h


@jitable
def enclosing_wh(a, b, offset):
    """Width and height of the smallest box enclosing both."""
    zero = offset - offset
    w = clamp0(pmax(a[2], b[2]) - pmin(a[0], b[0]) + offset, zero)
    h = clamp0(pmax(a[3], b[3]) - pmin(a[1], b[1]) + offset, zero)
    return w, h


@jitable
def iou(a, b, offset, eps, one, zero_div):
    inter = intersection(a, b, offset)
    return ratio(inter, a[4] + b[4] - inter, zero_div)


@jitable
def giou(a, b, offset, eps, one, zero_div):
    inter = intersection(a, b, offset)
    union = a[4] + b[4] - inter
    w, h = enclosing_wh(a, b, offset)
    enclosing = w * h
    return ratio(inter, union, zero_div) - ratio(enclosing - union, enclosing, zero_div)


@jitable
def _diou_and_iou(a, b, offset, eps, zero_div):
    inter = intersection(a, b, offset)
    overlap = ratio(inter, a[4] + b[4] - inter, zero_div)
    w, h = enclosing_wh(a, b, offset)
    dx = a[5] - b[5]
    dy = a[6] - b[6]
    return overlap - (dx * dx + dy * dy) / (w * w + h * h + eps), overlap


@jitable
def diou(a, b, offset, eps, one, zero_div):
    return _diou_and_iou(a, b, offset, eps, zero_div)[0]


@jitable
def ciou(a, b, offset, eps, one, zero_div):
    d, overlap = _diou_and_iou(a, b, offset, eps, zero_div)
    dv = a[7] - b[7]
    v = dv * dv
    return d - v / (one - overlap + v + eps) * v


@jitable
def ioa1(a, b, offset, eps, one, zero_div):
    """Intersection over the area of the first box."""
    return ratio(intersection(a, b, offset), a[4], zero_div)


@jitable
def ioa2(a, b, offset, eps, one, zero_div):
    """Intersection over the area of the second box."""
    return ratio(intersection(a, b, offset), b[4], zero_div)
