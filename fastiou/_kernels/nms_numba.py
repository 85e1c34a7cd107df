"""Numba CPU NMS: exact greedy NMS through a uniform grid, soft-NMS, and the sort they share.

Greedy NMS keeps a box unless an already kept box overlaps it with IoU > t. For t >= 0 that
needs a positive intersection, so a candidate only has to be tested against the kept boxes that
share a grid cell with it:

- Only *active* boxes can suppress or be suppressed: x2 > x1, y2 > y1 and a finite area. Any
  other box has a zero (or NaN) intersection with everything, or an infinite area, so its IoU is
  0, -0 or NaN and never > t >= 0. Inactive boxes are kept without a test.
- Cells are squares over the active boxes' bounding box, sized from the median longer box side
  (see CELL_SCALE), at most CELLS_PER_BOX cells per box. The cell of a coordinate is a monotone
  function of it, so two boxes whose interiors overlap both cover the cell of the lower-left
  corner of their overlap (``max(x1)``, ``max(y1)``): a kept box registered in every cell it
  covers is found by every candidate it could suppress.
- Each cell holds copies of its kept boxes' features (structure of arrays), and a candidate scans
  a cell in a branch-free loop that vectorizes; a pair sharing several cells may be tested more
  than once, which is harmless.
- A kept box covering more than MAX_SPAN cells is "big": it goes on a list that every candidate
  scans, and a big candidate scans every kept box. Nothing is ever missed; odd distributions only
  cost more tests.
- t < 0 (boxes apart have IoU 0 > t) and small classes use the plain loop over the kept boxes.

Every IoU is ``formulas.iou`` in the boxes' dtype. torchvision compares its float IoU with a
double threshold; the kernels compare with :func:`below` (the largest value of the dtype <= t),
which gives the same answer for every value of the dtype. The order is a stable LSD radix sort of
the scores mapped to unsigned keys (NaN first, -0.0 equal to 0.0: ``torch.sort(descending=True,
stable=True)``). batched_nms groups the boxes by class (a stable counting sort of the score
order) and runs the classes in ``prange``. soft-NMS keeps the remaining boxes in a max-heap and
decays only those in the grid cells of the selected box: any other has IoU 0 with it, whose decay
is exactly 1.
"""

import math

import numba
import numpy as np
from numba import njit, prange

from .._core import config as _config
from . import formulas

_JIT = {"cache": True, "error_model": "numpy", "nogil": True}

# Classes of at most this many boxes use the plain loop over kept boxes: a grid costs more there.
# Set by timing both loops on 8 to 256 boxes, uniform (the bench's) and clustered (detector-like):
# the grid wins from ~64 boxes (uniform) to ~200 (clustered).
DENSE_MAX = 96
# Cell side, in median longer box sides: CELL_SCALE / density ** 0.25 within [CELL_MIN, CELL_MAX],
# density being how many median boxes pile up on a point. Smaller cells pay off where boxes pile
# up: a suppressed candidate meets its suppressor sooner. Set with callgrind instruction counts
# and `fastiou bench --task nms` (1k, 10k, 50k boxes; best ~1.4, ~0.8, ~0.55 median sides).
# Then: cells per active box at most (bounds memory when boxes are sparse over a large extent),
# and cells a box may cover before it counts as "big".
CELL_SCALE = 2.0
CELL_MIN = 0.5
CELL_MAX = 1.5
CELLS_PER_BOX = 2
MAX_SPAN = 64

# ---------------------------------------------------------------------------------------------
# The score order
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def descending_keys(scores, bits, sign):
    """Unsigned keys whose ascending order is torch's descending order of ``scores``.

    ``bits`` is ``scores`` viewed as unsigned integers of the same width and ``sign`` the sign
    bit of that width. NaN (any payload) maps to 0, first; -0.0 maps to the key of 0.0.
    """
    full = sign | (sign - np.uint64(1))
    keys = np.empty(scores.shape[0], np.uint64)
    for i in range(scores.shape[0]):
        s = scores[i]
        if s != s:
            keys[i] = 0
        elif s == 0:
            keys[i] = full ^ sign
        else:
            u = np.uint64(bits[i])
            ascending = (full ^ u) if (u & sign) else (u | sign)
            keys[i] = full ^ ascending
    return keys


@njit(**_JIT)
def radix_argsort(keys, nbytes):
    """Stable ascending argsort (int64) of unsigned ``keys`` using their low ``nbytes`` bytes."""
    n = keys.shape[0]
    counts = np.zeros((nbytes, 256), np.int64)
    for i in range(n):
        k = keys[i]
        for p in range(nbytes):
            counts[p, (k >> np.uint64(8 * p)) & np.uint64(255)] += 1
    order = np.arange(n)
    tmp = np.empty(n, np.int64)
    sorted_keys = keys.copy()
    tmp_keys = np.empty(n, np.uint64)
    offsets = np.empty(256, np.int64)
    for p in range(nbytes):
        shift = np.uint64(8 * p)
        if n == 0 or counts[p, (sorted_keys[0] >> shift) & np.uint64(255)] == n:
            continue  # every key has this byte: the pass would not move anything
        total = 0
        for d in range(256):
            offsets[d] = total
            total += counts[p, d]
        for i in range(n):
            k = sorted_keys[i]
            d = (k >> shift) & np.uint64(255)
            tmp[offsets[d]] = order[i]
            tmp_keys[offsets[d]] = k
            offsets[d] += 1
        order, tmp = tmp, order
        sorted_keys, tmp_keys = tmp_keys, sorted_keys
    return order


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting float32/float64 ``scores`` as torch.sort(descending=True, stable=True)."""
    width = scores.dtype.itemsize
    bits = scores.view(np.uint32 if width == 4 else np.uint64)
    keys = descending_keys(scores, bits, np.uint64(1 << (8 * width - 1)))
    return radix_argsort(keys, width)


# ---------------------------------------------------------------------------------------------
# Greedy NMS
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _features(boxes, order, fmt, zero, half, two_over_pi, feats):
    """feats[r] = (x1, y1, x2, y2, area) of box order[r], via formulas.box_features."""
    for r in range(order.shape[0]):
        i = order[r]
        f = formulas.box_features(
            boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3],
            fmt, zero, half, two_over_pi, False,
        )  # fmt: skip
        for c in range(5):
            feats[r, c] = f[c]


@njit(**_JIT)
def _row(feats, r):
    return (feats[r, 0], feats[r, 1], feats[r, 2], feats[r, 3], feats[r, 4])


@njit(**_JIT)
def _put(boxes, e, b):
    """Store features ``b`` as entry e of the [5, capacity] structure-of-arrays ``boxes``."""
    for c in range(5):
        boxes[c, e] = b[c]


@njit(**_JIT)
def _suppressed_by(boxes, lo, hi, b, threshold, zero, one):
    """Whether a kept box among entries [lo, hi) of ``boxes`` has IoU > threshold with ``b``.

    Chunks of 32 without an early exit inside: the inner loop is branch-free and vectorizes.
    """
    x1, y1, x2, y2, area = boxes[0], boxes[1], boxes[2], boxes[3], boxes[4]
    for chunk in range(lo, hi, 32):
        hit = False
        for e in range(chunk, min(chunk + 32, hi)):
            a = (x1[e], y1[e], x2[e], y2[e], area[e])
            hit |= formulas.iou(a, b, zero, zero, one, False) > threshold
        if hit:
            return True
    return False


@njit(**_JIT)
def _greedy_dense(feats, start, stop, threshold, max_out, kept, zero, one):
    """Greedy NMS of rows [start, stop) of ``feats`` (score order), each against all kept rows.

    Writes the kept rows to ``kept`` and returns how many.
    """
    kept_boxes = np.empty((5, stop - start), feats.dtype)
    count = 0
    for r in range(start, stop):
        if count >= max_out:
            break
        b = _row(feats, r)
        if not _suppressed_by(kept_boxes, 0, count, b, threshold, zero, one):
            _put(kept_boxes, count, b)
            kept[count] = r
            count += 1
    return count


@njit(**_JIT)
def _cells_along(extent, cell, cap):
    """How many cells of side ``cell`` cover ``extent``: in [1, cap]."""
    c = extent / cell
    if not c < cap:  # also inf and NaN
        return cap
    return max(1, int(math.ceil(c)))


@njit(**_JIT)
def _cell_scale(n_active, median, half_extent_x, half_extent_y):
    """Cell side / median box side: smaller where boxes pile up (see CELL_SCALE)."""
    density = n_active * (median / (2 * half_extent_x)) * (median / (2 * half_extent_y))
    if not density > 0:  # an infinite extent
        return CELL_MAX
    return min(CELL_MAX, max(CELL_MIN, CELL_SCALE / density**0.25))


@njit(**_JIT)
def _cell(v, lo, scale, cells):
    """The cell of coordinate v: monotone non-decreasing in v, in [0, cells).

    ``lo`` is the grid origin halved: half coordinates cannot overflow float64.
    """
    t = (np.float64(v) * 0.5 - lo) * scale
    if t >= cells - 1:
        return cells - 1
    if t > 0:
        return int(t)
    return 0


INACTIVE, GRID, BIG = 0, 1, 2  # what _layout makes of a box


@njit(**_JIT)
def _layout(feats, start, stop):
    """The grid over rows [start, stop) of ``feats``: (kind, span, nx, starts).

    kind[q]: INACTIVE, GRID (registered in the cells of its span) or BIG; span[q]: first and last
    column, first and last row; cell (row, col) is ``row * nx + col``; ``starts`` [cells + 1]
    delimits each cell's entries when every GRID box is registered (a capacity, for greedy NMS).
    """
    m = stop - start
    kind = np.zeros(m, np.int8)
    sides = np.empty(m, np.float64)
    n_active = 0
    xlo, ylo, xhi, yhi = np.inf, np.inf, -np.inf, -np.inf
    for q in range(m):
        x1, y1, x2, y2, area = _row(feats, start + q)
        if x2 > x1 and y2 > y1 and area < np.inf:
            kind[q] = GRID
            w = np.float64(x2) - np.float64(x1)
            h = np.float64(y2) - np.float64(y1)
            sides[n_active] = max(w, h)
            n_active += 1
            xlo = min(xlo, np.float64(x1))
            ylo = min(ylo, np.float64(y1))
            xhi = max(xhi, np.float64(x2))
            yhi = max(yhi, np.float64(y2))
    span = np.zeros((m, 4), np.int32)
    if n_active == 0:
        return kind, span, 1, np.zeros(2, np.int64)
    median = np.median(sides[:n_active])
    lo_x, lo_y = xlo * 0.5, ylo * 0.5
    extent_x, extent_y = xhi * 0.5 - lo_x, yhi * 0.5 - lo_y
    half_cell = median * _cell_scale(n_active, median, extent_x, extent_y) * 0.5
    max_cells = CELLS_PER_BOX * n_active + 16
    nx = _cells_along(extent_x, half_cell, max_cells)
    ny = _cells_along(extent_y, half_cell, max(1, max_cells // nx))
    scale_x = nx / extent_x if extent_x > 0 else 0.0
    scale_y = ny / extent_y if extent_y > 0 else 0.0
    starts = np.zeros(nx * ny + 1, np.int64)
    for q in range(m):
        if kind[q] == INACTIVE:
            continue
        x1, y1, x2, y2, _ = _row(feats, start + q)
        c0, c1 = _cell(x1, lo_x, scale_x, nx), _cell(x2, lo_x, scale_x, nx)
        r0, r1 = _cell(y1, lo_y, scale_y, ny), _cell(y2, lo_y, scale_y, ny)
        span[q, 0], span[q, 1], span[q, 2], span[q, 3] = c0, c1, r0, r1
        if (c1 - c0 + 1) * (r1 - r0 + 1) > MAX_SPAN:
            kind[q] = BIG
            continue
        for row in range(r0, r1 + 1):
            for col in range(c0, c1 + 1):
                starts[row * nx + col + 1] += 1
    for c in range(nx * ny):
        starts[c + 1] += starts[c]
    return kind, span, nx, starts


@njit(**_JIT)
def _greedy_grid(feats, start, stop, threshold, max_out, kept, zero, one):
    """Greedy NMS of rows [start, stop) for threshold >= 0, through a uniform grid.

    The same contract and result as _greedy_dense (see the module docstring for why). Each cell
    holds copies of its kept boxes' features, so a candidate scans contiguous memory.
    """
    m = stop - start
    kind, span, nx, starts = _layout(feats, start, stop)
    fill = starts[:-1].copy()  # next free entry of each cell: kept boxes register as they come
    cells = np.empty((5, starts[-1]), feats.dtype)
    big_kept = np.empty((5, m), feats.dtype)
    all_kept = np.empty((5, m), feats.dtype)  # what a big candidate scans
    n_big = 0
    n_all = 0
    count = 0
    for q in range(m):
        if count >= max_out:
            break
        r = start + q
        if kind[q] == INACTIVE:
            kept[count] = r
            count += 1
            continue
        b = _row(feats, r)
        c0, c1, r0, r1 = span[q, 0], span[q, 1], span[q, 2], span[q, 3]
        if kind[q] == BIG:
            suppressed = _suppressed_by(all_kept, 0, n_all, b, threshold, zero, one)
        else:
            suppressed = _suppressed_by(big_kept, 0, n_big, b, threshold, zero, one)
            row = r0
            while row <= r1 and not suppressed:
                col = c0
                while col <= c1 and not suppressed:
                    cell = row * nx + col
                    suppressed = _suppressed_by(
                        cells, starts[cell], fill[cell], b, threshold, zero, one
                    )
                    col += 1
                row += 1
        if suppressed:
            continue
        kept[count] = r
        count += 1
        _put(all_kept, n_all, b)
        n_all += 1
        if kind[q] == BIG:
            _put(big_kept, n_big, b)
            n_big += 1
        else:
            for row in range(r0, r1 + 1):
                for col in range(c0, c1 + 1):
                    cell = row * nx + col
                    _put(cells, fill[cell], b)
                    fill[cell] += 1
    return count


@njit(**_JIT)
def _greedy(feats, start, stop, threshold, max_out, kept, zero, one):
    if threshold < 0 or stop - start <= DENSE_MAX:
        return _greedy_dense(feats, start, stop, threshold, max_out, kept, zero, one)
    return _greedy_grid(feats, start, stop, threshold, max_out, kept, zero, one)


@njit(**_JIT)
def _nms_kernel(boxes, order, fmt, threshold, max_out, zero, half, two_over_pi, one):
    n = order.shape[0]
    feats = np.empty((n, 5), boxes.dtype)
    _features(boxes, order, fmt, zero, half, two_over_pi, feats)
    kept = np.empty(n, np.int64)
    count = _greedy(feats, 0, n, threshold, max_out, kept, zero, one)
    out = np.empty(count, np.int64)
    for p in range(count):
        out[p] = order[kept[p]]
    return out


@njit(parallel=True, **_JIT)
def _batched_kernel(boxes, order, labels, n_classes, fmt, threshold, max_out, zero, half, tp, one):
    n = order.shape[0]
    # Group the score order by class (stable counting sort): each class is a contiguous run.
    starts = np.zeros(n_classes + 1, np.int64)
    for i in range(n):
        starts[labels[i] + 1] += 1
    for c in range(n_classes):
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    grouped = np.empty(n, np.int64)
    for r in range(n):
        i = order[r]
        grouped[fill[labels[i]]] = i
        fill[labels[i]] += 1
    feats = np.empty((n, 5), boxes.dtype)
    _features(boxes, grouped, fmt, zero, half, tp, feats)
    kept = np.empty(n, np.int64)
    counts = np.zeros(n_classes, np.int64)
    for c in prange(n_classes):
        s, e = starts[c], starts[c + 1]
        if e > s:
            counts[c] = _greedy(feats, s, e, threshold, max_out, kept[s:e], zero, one)
    keep = np.zeros(n, np.bool_)
    for c in range(n_classes):
        for p in range(counts[c]):
            keep[grouped[kept[starts[c] + p]]] = True
    out = np.empty(min(n, max_out), np.int64)
    count = 0
    for r in range(n):
        if count >= out.shape[0]:
            break
        if keep[order[r]]:
            out[count] = order[r]
            count += 1
    return out[:count]


def _constants(dtype: np.dtype):
    t = dtype.type
    return t(0), t(0.5), t(2 / np.pi), t(1)


def below(threshold: float, dtype: np.dtype):
    """The largest value of ``dtype`` <= threshold: for any x of that dtype, x > below(t) exactly
    when float64(x) > t. The kernels compare in the boxes' dtype (fewer conversions in the
    vector loops) with torchvision's float64 result."""
    with np.errstate(over="ignore"):  # beyond the dtype's range: +-inf, then the largest below
        t = dtype.type(threshold)
        if float(t) > threshold:
            t = np.nextafter(t, dtype.type(-np.inf))
    return t


def nms(boxes, scores, iou_threshold: float, fmt: int, max_output: int) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (int64)."""
    zero, half, two_over_pi, one = _constants(boxes.dtype)
    order = descending_order(scores)
    threshold = below(iou_threshold, boxes.dtype)
    return _nms_kernel(boxes, order, fmt, threshold, max_output, zero, half, two_over_pi, one)


def batched_nms(boxes, scores, labels, n_classes, iou_threshold: float, fmt: int, max_output):
    """NMS within each class (labels in [0, n_classes)), merged in descending score order."""
    zero, half, two_over_pi, one = _constants(boxes.dtype)
    order = descending_order(scores)
    _threads(len(boxes))
    threshold = below(iou_threshold, boxes.dtype)
    return _batched_kernel(
        boxes, order, labels, n_classes, fmt, threshold, max_output, zero, half, two_over_pi, one
    )


# ---------------------------------------------------------------------------------------------
# Soft-NMS
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _before(scores, i, j):
    """Box i is selected before box j: a higher score (NaN highest), or the same and i < j."""
    a, b = scores[i], scores[j]
    if a > b or (a != a and b == b):
        return True
    if a < b or (b != b and a == a):
        return False
    return i < j


@njit(**_JIT)
def _sift_down(heap, pos, scores, k, size):
    i = heap[k]
    while True:
        c = 2 * k + 1
        if c >= size:
            break
        if c + 1 < size and _before(scores, heap[c + 1], heap[c]):
            c += 1
        if not _before(scores, heap[c], i):
            break
        heap[k] = heap[c]
        pos[heap[k]] = k
        k = c
    heap[k] = i
    pos[i] = k


@njit(**_JIT)
def _sift(heap, pos, scores, k, size):
    """Restore the heap order around position k, whose score moved either way."""
    i = heap[k]
    while k > 0 and _before(scores, i, heap[(k - 1) >> 1]):
        parent = heap[(k - 1) >> 1]
        heap[k] = parent
        pos[parent] = k
        k = (k - 1) >> 1
    heap[k] = i
    pos[i] = k
    _sift_down(heap, pos, scores, k, size)


@njit(**_JIT)
def _soft_kernel(
    boxes, scores, fmt, threshold, sigma, score_threshold, gaussian, max_out,
    zero, half, two_over_pi, one,
):  # fmt: skip
    """Soft-NMS with a max-heap of the remaining boxes and the grid of nms.

    Only boxes that overlap the selected one can change score (IoU 0 decays by exactly 1), so
    the decay visits the grid cells of the selected box; a pair is decayed once, in the cell of
    the lower-left corner of its overlap. Scores may rise (a negative score times a decay < 1),
    so a changed box sifts both ways.
    """
    n = scores.shape[0]
    feats = np.empty((n, 5), boxes.dtype)
    _features(boxes, np.arange(n), fmt, zero, half, two_over_pi, feats)
    kind, span, nx, starts = _layout(feats, 0, n)
    fill = starts[:-1].copy()
    entries = np.empty(starts[-1], np.int64)
    bigs = np.empty(n, np.int64)
    n_big = 0
    for i in range(n):
        if kind[i] == BIG:
            bigs[n_big] = i
            n_big += 1
        elif kind[i] == GRID:
            for row in range(span[i, 2], span[i, 3] + 1):
                for col in range(span[i, 0], span[i, 1] + 1):
                    entries[fill[row * nx + col]] = i
                    fill[row * nx + col] += 1
    current = np.empty(n, boxes.dtype)
    heap = np.empty(n, np.int64)
    pos = np.full(n, -1, np.int64)  # position in the heap; -1 once selected or discarded
    size = 0
    for i in range(n):
        current[i] = scores[i]
        if not current[i] < score_threshold:
            heap[size] = i
            pos[i] = size
            size += 1
    for k in range(size // 2 - 1, -1, -1):
        _sift_down(heap, pos, current, k, size)
    keep = np.empty(min(n, max_out), np.int64)
    kept_scores = np.empty(min(n, max_out), boxes.dtype)
    targets = np.empty(n, np.int64)
    count = 0
    while size > 0 and count < keep.shape[0]:
        best = heap[0]
        keep[count] = best
        kept_scores[count] = current[best]
        count += 1
        pos[best] = -1
        size -= 1
        if size > 0:
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift(heap, pos, current, 0, size)
        # The remaining boxes whose score this selection can change.
        n_targets = 0
        if kind[best] == BIG:
            for i in range(n):
                if pos[i] >= 0 and kind[i] != INACTIVE:
                    targets[n_targets] = i
                    n_targets += 1
        elif kind[best] == GRID:
            for p in range(n_big):
                if pos[bigs[p]] >= 0:
                    targets[n_targets] = bigs[p]
                    n_targets += 1
            c0, c1, r0, r1 = span[best, 0], span[best, 1], span[best, 2], span[best, 3]
            for row in range(r0, r1 + 1):
                for col in range(c0, c1 + 1):
                    cell = row * nx + col
                    for e in range(starts[cell], starts[cell + 1]):
                        i = entries[e]
                        if pos[i] >= 0 and (col == c0 or col == span[i, 0]):
                            if row == r0 or row == span[i, 2]:
                                targets[n_targets] = i
                                n_targets += 1
        a = _row(feats, best)
        for p in range(n_targets):
            i = targets[p]
            iou = formulas.iou(a, _row(feats, i), zero, zero, one, False)
            if iou != iou:
                continue  # NaN IoU does not decay
            if gaussian:
                decay = math.exp(-(iou * iou) / sigma)
            elif iou >= threshold:
                decay = one - iou
            else:
                continue
            current[i] = current[i] * decay
            k = pos[i]
            if current[i] < score_threshold:  # discard: move the last heap entry here
                pos[i] = -1
                size -= 1
                if k < size:
                    heap[k] = heap[size]
                    pos[heap[k]] = k
                    _sift(heap, pos, current, k, size)
            else:
                _sift(heap, pos, current, k, size)
    return keep[:count], kept_scores[:count]


def soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, gaussian, fmt, max_output):
    """Soft-NMS (see nms_reference.soft_nms): kept indices and their scores at selection."""
    zero, half, two_over_pi, one = _constants(boxes.dtype)
    return _soft_kernel(
        boxes, scores, fmt, float(iou_threshold), boxes.dtype.type(sigma),
        float(score_threshold), bool(gaussian), max_output, zero, half, two_over_pi, one,
    )  # fmt: skip


def _threads(boxes: int) -> None:
    # One thread for small work: a parallel region costs more than it saves there, and far more
    # when another process holds the other core (the region waits for every thread).
    threads = 1 if boxes < _config.PARALLEL_MIN_WORK else _config.num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def describe() -> str:
    return f"numba {numba.__version__}, threading layer {numba.config.THREADING_LAYER}"
