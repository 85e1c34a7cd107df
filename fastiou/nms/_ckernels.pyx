# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython NMS kernels: exact greedy NMS through a uniform grid, batched NMS in parallel over
classes, soft-NMS with a heap and the same grid, and the radix sort giving torch's score order.

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

Every IoU is the same IoU as ``fastiou.boxes._formulas.iou``, in the boxes' dtype. torchvision compares its float IoU with a
double threshold; the kernels compare with ``_reference.below`` (the largest value of the dtype <= t),
which gives the same answer for every value of the dtype. The order is a stable LSD radix sort of
the scores mapped to unsigned keys (NaN first, -0.0 equal to 0.0: ``torch.sort(descending=True,
stable=True)``). batched_nms groups the boxes by class (a stable counting sort of the score
order) and runs the classes in parallel on fastiou's thread pool. soft-NMS keeps the remaining boxes in a max-heap and
decays only those in the grid cells of the selected box: any other has IoU 0 with it, whose decay
is exactly 1.

Callers validate shapes; nothing here checks bounds. Scratch memory comes from malloc; if malloc
fails, greedy NMS falls back to the allocation-free loop over kept boxes and the other kernels
raise MemoryError. (A numba twin of these kernels ran at the same speed; it was removed, and
``backend="numba"`` runs these.)
"""

from libc.math cimport INFINITY, ceil, exp, expf, nextafterf, pow
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

import numpy as np

from fastiou._core._pool cimport parallel_for
from fastiou.boxes._geometry cimport corners, inter_area, real

ctypedef fused score_t:  # scores keep their own dtype: converting them could create ties
    float
    double

# Classes of at most DENSE_MAX boxes use the plain loop over kept boxes: a grid costs more there.
# Set by timing both loops on 8 to 256 boxes, uniform (the bench's) and clustered (detector-like):
# the grid wins from ~64 boxes (uniform) to ~200 (clustered).
# Cell side, in median longer box sides: CELL_SCALE / density ** 0.25 within [CELL_MIN, CELL_MAX],
# density being how many median boxes pile up on a point. Smaller cells pay off where boxes pile
# up: a suppressed candidate meets its suppressor sooner. Set with callgrind instruction counts
# and `fastiou bench --task nms` (1k, 10k, 50k boxes; best ~1.4, ~0.8, ~0.55 median sides).
# Then: cells per active box at most (bounds memory when boxes are sparse over a large extent),
# and cells a box may cover before it counts as "big".
cdef enum:
    DENSE_MAX = 96
    CELLS_PER_BOX = 2
    MAX_SPAN = 64
    CHUNK = 32
cdef double CELL_SCALE = 2.0
cdef double CELL_MIN = 0.5
cdef double CELL_MAX = 1.5
cdef double INF = float("inf")


# The IoU of pair(IOU, ...) in boxes/_ckernels.pyx with offset 0 (the same operations in the same
# order, from the shared _geometry.pxd). Features are (x1, y1, x2, y2, area).

cdef inline real box_iou(real ax1, real ay1, real ax2, real ay2, real area_a,
                         const real* b) noexcept nogil:
    """IoU of kept box a with candidate features b."""
    cdef real offset = 0
    cdef real inter = inter_area(ax1, ay1, ax2, ay2, b[0], b[1], b[2], b[3], offset)
    return inter / (area_a + b[4] - inter)


cdef void features(const real[:, ::1] boxes, const int64_t* order, Py_ssize_t n, int fmt,
                   real* feats) noexcept nogil:
    """feats[5 r : 5 r + 5] = (x1, y1, x2, y2, area) of box order[r] (boxes' ``_features``)."""
    cdef Py_ssize_t r, i
    cdef real x1, y1, x2, y2, offset = 0
    cdef real xyxy[4]
    for r in range(n):
        i = order[r]
        corners(fmt, boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3], xyxy)
        x1, y1, x2, y2 = xyxy[0], xyxy[1], xyxy[2], xyxy[3]
        feats[5 * r] = x1
        feats[5 * r + 1] = y1
        feats[5 * r + 2] = x2
        feats[5 * r + 3] = y2
        feats[5 * r + 4] = (x2 - x1 + offset) * (y2 - y1 + offset)


# ---------------------------------------------------------------------------------------------
# The score order: torch.sort(descending=True, stable=True)
# ---------------------------------------------------------------------------------------------

cdef void descending_keys(const real* scores, Py_ssize_t n, uint64_t* keys) noexcept nogil:
    """Unsigned keys ascending in torch's descending order: NaN first, -0.0 equal to 0.0."""
    cdef uint64_t sign, full, u, ascending
    cdef uint32_t u32
    cdef Py_ssize_t i
    cdef real s
    if real is float:
        sign = <uint64_t> 1 << 31
    else:
        sign = <uint64_t> 1 << 63
    full = sign | (sign - 1)
    for i in range(n):
        s = scores[i]
        if s != s:
            keys[i] = 0
        elif s == 0:
            keys[i] = full ^ sign
        else:
            if real is float:
                memcpy(&u32, &scores[i], 4)
                u = u32
            else:
                memcpy(&u, &scores[i], 8)
            ascending = (full ^ u) if (u & sign) else (u | sign)
            keys[i] = full ^ ascending


cdef int radix_argsort(uint64_t* keys, Py_ssize_t n, int nbytes, int64_t* order) noexcept nogil:
    """order = the stable ascending argsort of keys (which it reorders). -1 if out of memory."""
    cdef Py_ssize_t i, total, d
    cdef int p
    cdef uint64_t k
    cdef int shift
    cdef int64_t* counts = <int64_t*> malloc(8 * 256 * sizeof(int64_t))
    cdef int64_t* tmp = <int64_t*> malloc(n * sizeof(int64_t) + 1)
    cdef uint64_t* tmp_keys = <uint64_t*> malloc(n * sizeof(uint64_t) + 1)
    cdef int64_t* swap_order
    cdef uint64_t* swap_keys
    cdef int64_t offsets[256]
    cdef int64_t* start_order = order
    if counts == NULL or tmp == NULL or tmp_keys == NULL:
        free(counts)
        free(tmp)
        free(tmp_keys)
        return -1
    memset(counts, 0, 8 * 256 * sizeof(int64_t))
    for i in range(n):
        order[i] = i
        k = keys[i]
        for p in range(nbytes):
            counts[256 * p + ((k >> (8 * p)) & 255)] += 1
    for p in range(nbytes):
        shift = 8 * p
        if n == 0 or counts[256 * p + ((keys[0] >> shift) & 255)] == n:
            continue  # every key has this byte: the pass would not move anything
        total = 0
        for d in range(256):
            offsets[d] = total
            total += counts[256 * p + d]
        for i in range(n):
            k = keys[i]
            d = (k >> shift) & 255
            tmp[offsets[d]] = order[i]
            tmp_keys[offsets[d]] = k
            offsets[d] += 1
        swap_order = order
        order = tmp
        tmp = swap_order
        swap_keys = keys
        keys = tmp_keys
        tmp_keys = swap_keys
    if order != start_order:  # an odd number of passes ran: the result is in the scratch array
        memcpy(start_order, order, n * sizeof(int64_t))
        tmp = order
        tmp_keys = keys
    free(counts)
    free(tmp)
    free(tmp_keys)
    return 0


cdef int descending_order(const real* scores, Py_ssize_t n, int64_t* order) noexcept nogil:
    cdef uint64_t* keys = <uint64_t*> malloc(n * sizeof(uint64_t) + 1)
    cdef int status
    if keys == NULL:
        return -1
    descending_keys(scores, n, keys)
    status = radix_argsort(keys, n, sizeof(real), order)
    free(keys)
    return status


# ---------------------------------------------------------------------------------------------
# Greedy NMS
# ---------------------------------------------------------------------------------------------

cdef inline real below(double threshold, real like) noexcept nogil:
    """The largest ``real`` <= threshold: for any ``real`` x, x > below(t) exactly when
    (double) x > t, so the vector loops compare in the boxes' dtype (GCC does not vectorize a
    float loop with a double comparison) with torchvision's result."""
    cdef float f
    if real is float:
        f = <float> threshold
        if <double> f > threshold:
            f = nextafterf(f, -INFINITY)
        return f
    else:
        return threshold


cdef inline bint suppressed_by(const real* boxes, Py_ssize_t stride, Py_ssize_t lo,
                               Py_ssize_t hi, const real* b, real threshold) noexcept nogil:
    """Whether an entry in [lo, hi) of the [5, stride] structure-of-arrays ``boxes`` has
    IoU > threshold with b (``below(t)``). Chunks without an early exit inside: the inner loop
    vectorizes."""
    cdef const real* x1 = boxes
    cdef const real* y1 = boxes + stride
    cdef const real* x2 = boxes + 2 * stride
    cdef const real* y2 = boxes + 3 * stride
    cdef const real* area = boxes + 4 * stride
    cdef Py_ssize_t chunk, e, end
    cdef bint hit
    chunk = lo
    while chunk < hi:
        end = chunk + CHUNK if chunk + CHUNK < hi else hi
        hit = 0
        for e in range(chunk, end):
            hit |= box_iou(x1[e], y1[e], x2[e], y2[e], area[e], b) > threshold
        if hit:
            return 1
        chunk = end
    return 0


cdef inline void put(real* boxes, Py_ssize_t stride, Py_ssize_t e, const real* b) noexcept nogil:
    cdef int c
    for c in range(5):
        boxes[c * stride + e] = b[c]


cdef Py_ssize_t greedy_dense(const real* feats, Py_ssize_t start, Py_ssize_t stop,
                             double threshold, Py_ssize_t max_out,
                             int64_t* kept) noexcept nogil:
    """Greedy NMS of rows [start, stop) of feats (score order), each against all kept rows."""
    cdef Py_ssize_t count = 0, r, p
    cdef const real* a
    cdef const real* b
    cdef bint suppressed
    for r in range(start, stop):
        if count >= max_out:
            break
        b = feats + 5 * r
        suppressed = 0
        for p in range(count):
            a = feats + 5 * kept[p]
            if box_iou(a[0], a[1], a[2], a[3], a[4], b) > threshold:
                suppressed = 1
                break
        if not suppressed:
            kept[count] = r
            count += 1
    return count


cdef inline Py_ssize_t cells_along(double extent, double cell, Py_ssize_t cap) noexcept nogil:
    cdef double c = extent / cell
    if not c < cap:  # also inf and NaN
        return cap
    return max(1, <Py_ssize_t> ceil(c))


cdef inline int32_t cell_of(double v, double lo, double scale, Py_ssize_t cells) noexcept nogil:
    """Monotone non-decreasing in v, in [0, cells); lo is the halved origin (no overflow)."""
    cdef double t = (v * 0.5 - lo) * scale
    if t >= cells - 1:
        return <int32_t> (cells - 1)
    if t > 0:
        return <int32_t> t
    return 0


cdef double cell_scale(Py_ssize_t n_active, double median, double half_extent_x,
                       double half_extent_y) noexcept nogil:
    """Cell side / median box side."""
    cdef double density = n_active * (median / (2 * half_extent_x)) * (median / (2 * half_extent_y))
    if not density > 0:
        return CELL_MAX
    return min(CELL_MAX, max(CELL_MIN, CELL_SCALE / pow(density, 0.25)))


cdef double lower_median(double* x, Py_ssize_t n) noexcept nogil:
    """The element of rank (n - 1) // 2 (quickselect; reorders x)."""
    cdef Py_ssize_t lo = 0, hi = n - 1, k = (n - 1) // 2, i, j
    cdef double pivot, t
    while lo < hi:
        pivot = x[lo + (hi - lo) // 2]
        i = lo
        j = hi
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                t = x[i]
                x[i] = x[j]
                x[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return x[k]


cdef enum:  # what layout makes of a box
    INACTIVE = 0
    GRID = 1
    BIG = 2


cdef int layout(const real* feats, Py_ssize_t start, Py_ssize_t stop, char* kind,
                int32_t* span, Py_ssize_t* nx_out, Py_ssize_t* cells_out,
                int64_t** starts_out) noexcept nogil:
    """The grid over rows [start, stop) of feats.

    Fills kind [m] and span [m, 4] (first and last column, first and last row); returns the
    column count, the cell count and a malloc-ed ``starts`` [cells + 1] (the caller frees it):
    each cell's entries when every GRID box is registered. Returns -1 when out of memory.
    """
    cdef Py_ssize_t m = stop - start, q, n_active = 0, nx, ny, max_cells, c, row, col
    cdef double xlo = INF, ylo = INF, xhi = -INF, yhi = -INF, w, h, half_cell, median
    cdef double lo_x, lo_y, extent_x, extent_y, scale_x, scale_y
    cdef const real* b
    cdef int32_t c0, c1, r0, r1
    cdef int64_t* starts
    cdef double* sides = <double*> malloc(m * sizeof(double) + 1)
    if sides == NULL:
        return -1
    for q in range(m):
        b = feats + 5 * (start + q)
        kind[q] = INACTIVE
        if b[2] > b[0] and b[3] > b[1] and b[4] < INF:
            kind[q] = GRID
            w = <double> b[2] - <double> b[0]
            h = <double> b[3] - <double> b[1]
            sides[n_active] = w if w > h else h
            n_active += 1
            xlo = min(xlo, <double> b[0])
            ylo = min(ylo, <double> b[1])
            xhi = max(xhi, <double> b[2])
            yhi = max(yhi, <double> b[3])
    if n_active == 0:
        free(sides)
        nx_out[0] = 1
        cells_out[0] = 1
        starts_out[0] = <int64_t*> calloc(2, sizeof(int64_t))
        return 0 if starts_out[0] != NULL else -1
    median = lower_median(sides, n_active)
    free(sides)
    lo_x = xlo * 0.5
    lo_y = ylo * 0.5
    extent_x = xhi * 0.5 - lo_x
    extent_y = yhi * 0.5 - lo_y
    half_cell = median * cell_scale(n_active, median, extent_x, extent_y) * 0.5
    max_cells = CELLS_PER_BOX * n_active + 16
    nx = cells_along(extent_x, half_cell, max_cells)
    ny = cells_along(extent_y, half_cell, max(1, max_cells // nx))
    scale_x = nx / extent_x if extent_x > 0 else 0.0
    scale_y = ny / extent_y if extent_y > 0 else 0.0
    starts = <int64_t*> calloc(nx * ny + 1, sizeof(int64_t))
    if starts == NULL:
        return -1
    for q in range(m):
        if kind[q] == INACTIVE:
            continue
        b = feats + 5 * (start + q)
        c0 = cell_of(b[0], lo_x, scale_x, nx)
        c1 = cell_of(b[2], lo_x, scale_x, nx)
        r0 = cell_of(b[1], lo_y, scale_y, ny)
        r1 = cell_of(b[3], lo_y, scale_y, ny)
        span[4 * q] = c0
        span[4 * q + 1] = c1
        span[4 * q + 2] = r0
        span[4 * q + 3] = r1
        if (<Py_ssize_t> (c1 - c0 + 1)) * (r1 - r0 + 1) > MAX_SPAN:
            kind[q] = BIG
            continue
        for row in range(r0, r1 + 1):
            for col in range(c0, c1 + 1):
                starts[row * nx + col + 1] += 1
    for c in range(nx * ny):
        starts[c + 1] += starts[c]
    nx_out[0] = nx
    cells_out[0] = nx * ny
    starts_out[0] = starts
    return 0


cdef Py_ssize_t greedy_grid(const real* feats, Py_ssize_t start, Py_ssize_t stop,
                            double threshold, Py_ssize_t max_out, int64_t* kept) noexcept nogil:
    """Greedy NMS of rows [start, stop) for threshold >= 0 through a uniform grid (see
    the module docstring); falls back to greedy_dense when out of memory."""
    cdef Py_ssize_t m = stop - start, q, r, nx = 1, n_cells = 1, cell, total, row, col
    cdef Py_ssize_t n_big = 0, n_all = 0, count = -1
    cdef const real* b
    cdef int32_t c0, c1, r0, r1
    cdef bint suppressed
    cdef real t = below(threshold, feats[0])
    cdef char* kind = <char*> malloc(m)
    cdef int32_t* span = <int32_t*> malloc(4 * m * sizeof(int32_t))
    cdef int64_t* starts = NULL
    cdef int64_t* fill = NULL
    cdef real* cells = NULL
    cdef real* big_kept = <real*> malloc(5 * m * sizeof(real))
    cdef real* all_kept = <real*> malloc(5 * m * sizeof(real))  # what a big candidate scans
    if (kind != NULL and span != NULL and big_kept != NULL and all_kept != NULL
            and layout(feats, start, stop, kind, span, &nx, &n_cells, &starts) == 0):
        total = starts[n_cells]
        fill = <int64_t*> malloc(n_cells * sizeof(int64_t))
        cells = <real*> malloc(5 * total * sizeof(real) + 1)
    if fill != NULL and cells != NULL:
        # next free entry of each cell: kept boxes register as they come
        memcpy(fill, starts, n_cells * sizeof(int64_t))
        count = 0
        for q in range(m):
            if count >= max_out:
                break
            r = start + q
            if kind[q] == INACTIVE:
                kept[count] = r
                count += 1
                continue
            b = feats + 5 * r
            c0 = span[4 * q]
            c1 = span[4 * q + 1]
            r0 = span[4 * q + 2]
            r1 = span[4 * q + 3]
            if kind[q] == BIG:
                suppressed = suppressed_by(all_kept, m, 0, n_all, b, t)
            else:
                suppressed = suppressed_by(big_kept, m, 0, n_big, b, t)
                row = r0
                while row <= r1 and not suppressed:
                    col = c0
                    while col <= c1 and not suppressed:
                        cell = row * nx + col
                        suppressed = suppressed_by(cells, total, starts[cell], fill[cell], b, t)
                        col += 1
                    row += 1
            if suppressed:
                continue
            kept[count] = r
            count += 1
            put(all_kept, m, n_all, b)
            n_all += 1
            if kind[q] == BIG:
                put(big_kept, m, n_big, b)
                n_big += 1
            else:
                for row in range(r0, r1 + 1):
                    for col in range(c0, c1 + 1):
                        cell = row * nx + col
                        put(cells, total, fill[cell], b)
                        fill[cell] += 1
    free(kind)
    free(span)
    free(starts)
    free(fill)
    free(cells)
    free(big_kept)
    free(all_kept)
    if count < 0:
        return greedy_dense(feats, start, stop, threshold, max_out, kept)
    return count


cdef Py_ssize_t greedy(const real* feats, Py_ssize_t start, Py_ssize_t stop, double threshold,
                       Py_ssize_t max_out, int64_t* kept) noexcept nogil:
    if threshold < 0 or stop - start <= DENSE_MAX:
        return greedy_dense(feats, start, stop, threshold, max_out, kept)
    return greedy_grid(feats, start, stop, threshold, max_out, kept)


cdef struct ClassJob:
    const void *feats
    const int64_t *starts
    int64_t *kept
    int64_t *counts
    double threshold
    Py_ssize_t max_out


cdef void _classes(const real *feats, const ClassJob *j, int64_t lo, int64_t hi) noexcept nogil:
    cdef int64_t c, s, e
    for c in range(lo, hi):
        s = j.starts[c]
        e = j.starts[c + 1]
        if e > s:
            j.counts[c] = greedy(feats, s, e, j.threshold, j.max_out, j.kept + s)


cdef void _classes_f(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    _classes(<const float *> (<ClassJob *> c).feats, <ClassJob *> c, lo, hi)
cdef void _classes_d(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    _classes(<const double *> (<ClassJob *> c).feats, <ClassJob *> c, lo, hi)


def nms(const real[:, ::1] boxes, const score_t[::1] scores, int fmt, double threshold,
        Py_ssize_t max_out):
    """Indices (int64) of the boxes greedy NMS keeps, in descending score order."""
    cdef Py_ssize_t n = boxes.shape[0], count = 0, p
    cdef int64_t[::1] order = np.empty(n, np.int64)
    cdef int64_t[::1] kept = np.empty(n, np.int64)
    cdef real* feats = <real*> malloc(5 * n * sizeof(real) + 1)
    cdef int status
    if feats == NULL:
        raise MemoryError()
    with nogil:
        status = descending_order(&scores[0], n, &order[0])
        if status == 0:
            features(boxes, &order[0], n, fmt, feats)
            count = greedy(feats, 0, n, threshold, max_out, &kept[0])
            for p in range(count):
                kept[p] = order[kept[p]]
    free(feats)
    if status != 0:
        raise MemoryError()
    return np.asarray(kept[:count])


def batched_nms(const real[:, ::1] boxes, const score_t[::1] scores, const int64_t[::1] labels,
                Py_ssize_t n_classes, int fmt, double threshold, Py_ssize_t max_out,
                int num_threads):
    """NMS within each class (labels in [0, n_classes)), merged in descending score order."""
    cdef Py_ssize_t n = boxes.shape[0], r, c, p, count = 0, s, e
    cdef int64_t[::1] order = np.empty(n, np.int64)
    cdef int64_t[::1] grouped = np.empty(n, np.int64)
    cdef int64_t[::1] kept = np.empty(n, np.int64)
    cdef int64_t[::1] starts = np.zeros(n_classes + 1, np.int64)
    cdef int64_t[::1] fill = np.empty(n_classes, np.int64)
    cdef int64_t[::1] counts = np.zeros(n_classes, np.int64)
    cdef char[::1] keep = np.zeros(n, np.int8)
    cdef int64_t[::1] out = np.empty(min(n, max_out), np.int64)
    cdef real* feats = <real*> malloc(5 * n * sizeof(real) + 1)
    cdef int status
    cdef ClassJob job
    if feats == NULL:
        raise MemoryError()
    job.feats, job.starts, job.kept, job.counts = feats, &starts[0], &kept[0], &counts[0]
    job.threshold, job.max_out = threshold, max_out
    with nogil:
        status = descending_order(&scores[0], n, &order[0])
        if status == 0:
            # Group the score order by class (stable counting sort): one contiguous run each.
            for r in range(n):
                starts[labels[r] + 1] += 1
            for c in range(n_classes):
                starts[c + 1] += starts[c]
            for c in range(n_classes):
                fill[c] = starts[c]
            for r in range(n):
                grouped[fill[labels[order[r]]]] = order[r]
                fill[labels[order[r]]] += 1
            features(boxes, &grouped[0], n, fmt, feats)
            parallel_for(_classes_f if real is float else _classes_d, &job, n_classes, 1,
                         num_threads)
            for c in range(n_classes):
                for p in range(counts[c]):
                    keep[grouped[kept[starts[c] + p]]] = 1
            for r in range(n):
                if count >= out.shape[0]:
                    break
                if keep[order[r]]:
                    out[count] = order[r]
                    count += 1
    free(feats)
    if status != 0:
        raise MemoryError()
    return np.asarray(out[:count])


# ---------------------------------------------------------------------------------------------
# Soft-NMS
# ---------------------------------------------------------------------------------------------

cdef inline bint before(const real* scores, int64_t i, int64_t j) noexcept nogil:
    """Box i is selected before box j: a higher score (NaN highest), or the same and i < j."""
    cdef real a = scores[i], b = scores[j]
    if a > b or (a != a and b == b):
        return 1
    if a < b or (b != b and a == a):
        return 0
    return i < j


cdef void sift_down(int64_t* heap, int64_t* pos, const real* scores, Py_ssize_t k,
                    Py_ssize_t size) noexcept nogil:
    cdef int64_t i = heap[k]
    cdef Py_ssize_t c
    while True:
        c = 2 * k + 1
        if c >= size:
            break
        if c + 1 < size and before(scores, heap[c + 1], heap[c]):
            c += 1
        if not before(scores, heap[c], i):
            break
        heap[k] = heap[c]
        pos[heap[k]] = k
        k = c
    heap[k] = i
    pos[i] = k


cdef void sift(int64_t* heap, int64_t* pos, const real* scores, Py_ssize_t k,
               Py_ssize_t size) noexcept nogil:
    """Restore the heap order around position k, whose score moved either way."""
    cdef int64_t i = heap[k], parent
    while k > 0 and before(scores, i, heap[(k - 1) >> 1]):
        parent = heap[(k - 1) >> 1]
        heap[k] = parent
        pos[parent] = k
        k = (k - 1) >> 1
    heap[k] = i
    pos[i] = k
    sift_down(heap, pos, scores, k, size)


cdef Py_ssize_t soft_kernel(const real* feats, Py_ssize_t n, real* current, double threshold,
                            real sigma, double score_threshold, bint gaussian,
                            Py_ssize_t max_out, int64_t* keep, real* kept_scores) noexcept nogil:
    """Soft-NMS with a max-heap of the remaining boxes and the grid of nms (see
    the module docstring). Decays ``current`` in place; returns the count kept, -1 when out
    of memory."""
    cdef Py_ssize_t nx = 1, n_cells = 1, i, k, p, e, size = 0, count = 0, n_big = 0
    cdef Py_ssize_t n_targets, row, col, cell
    cdef int64_t best
    cdef int32_t c0, c1, r0, r1
    cdef real iou, decay, one = 1
    cdef const real* a
    cdef char* kind = <char*> malloc(n)
    cdef int32_t* span = <int32_t*> malloc(4 * n * sizeof(int32_t))
    cdef int64_t* starts = NULL
    cdef int64_t* fill = <int64_t*> malloc((n + 1) * sizeof(int64_t))
    cdef int64_t* entries = NULL
    cdef int64_t* bigs = <int64_t*> malloc(n * sizeof(int64_t))
    cdef int64_t* heap = <int64_t*> malloc(n * sizeof(int64_t))
    cdef int64_t* pos = <int64_t*> malloc(n * sizeof(int64_t))
    cdef int64_t* targets = <int64_t*> malloc(n * sizeof(int64_t))
    if (kind == NULL or span == NULL or fill == NULL or bigs == NULL or heap == NULL
            or pos == NULL or targets == NULL
            or layout(feats, 0, n, kind, span, &nx, &n_cells, &starts) != 0):
        count = -1
    else:
        free(fill)
        fill = <int64_t*> malloc(n_cells * sizeof(int64_t) + 1)
        entries = <int64_t*> malloc(starts[n_cells] * sizeof(int64_t) + 1)
        if fill == NULL or entries == NULL:
            count = -1
    if count == 0:
        memcpy(fill, starts, n_cells * sizeof(int64_t))
        for i in range(n):
            if kind[i] == BIG:
                bigs[n_big] = i
                n_big += 1
            elif kind[i] == GRID:
                for row in range(span[4 * i + 2], span[4 * i + 3] + 1):
                    for col in range(span[4 * i], span[4 * i + 1] + 1):
                        entries[fill[row * nx + col]] = i
                        fill[row * nx + col] += 1
        for i in range(n):
            pos[i] = -1  # position in the heap; -1 once selected or discarded
            if not current[i] < score_threshold:
                heap[size] = i
                pos[i] = size
                size += 1
        for k in range(size // 2 - 1, -1, -1):
            sift_down(heap, pos, current, k, size)
        while size > 0 and count < max_out:
            best = heap[0]
            keep[count] = best
            kept_scores[count] = current[best]
            count += 1
            pos[best] = -1
            size -= 1
            if size > 0:
                heap[0] = heap[size]
                pos[heap[0]] = 0
                sift(heap, pos, current, 0, size)
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
                c0 = span[4 * best]
                c1 = span[4 * best + 1]
                r0 = span[4 * best + 2]
                r1 = span[4 * best + 3]
                for row in range(r0, r1 + 1):
                    for col in range(c0, c1 + 1):
                        cell = row * nx + col
                        for e in range(starts[cell], starts[cell + 1]):
                            i = entries[e]
                            # decay each pair once: in the cell of its overlap's corner
                            if (pos[i] >= 0 and (col == c0 or col == span[4 * i])
                                    and (row == r0 or row == span[4 * i + 2])):
                                targets[n_targets] = i
                                n_targets += 1
            a = feats + 5 * best
            for p in range(n_targets):
                i = targets[p]
                iou = box_iou(a[0], a[1], a[2], a[3], a[4], feats + 5 * i)
                if iou != iou:
                    continue  # NaN IoU does not decay
                if gaussian:
                    if real is float:
                        decay = expf(-(iou * iou) / sigma)
                    else:
                        decay = exp(-(iou * iou) / sigma)
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
                        sift(heap, pos, current, k, size)
                else:
                    sift(heap, pos, current, k, size)
    free(kind)
    free(span)
    free(starts)
    free(fill)
    free(entries)
    free(bigs)
    free(heap)
    free(pos)
    free(targets)
    return count


def soft_nms(const real[:, ::1] boxes, const real[::1] scores, int fmt, double threshold,
             real sigma, double score_threshold, bint gaussian, Py_ssize_t max_out):
    """Soft-NMS (see nms_reference.soft_nms): kept indices and their scores at selection."""
    cdef Py_ssize_t n = boxes.shape[0], count
    cdef int64_t[::1] identity = np.arange(n, dtype=np.int64)
    cdef int64_t[::1] keep = np.empty(min(n, max_out), np.int64)
    dtype = np.float32 if real is float else np.float64
    cdef real[::1] kept_scores = np.empty(min(n, max_out), dtype)
    cdef real[::1] current = np.array(scores, dtype)
    cdef real* feats = <real*> malloc(5 * n * sizeof(real) + 1)
    if feats == NULL:
        raise MemoryError()
    with nogil:
        features(boxes, &identity[0], n, fmt, feats)
        count = soft_kernel(feats, n, &current[0], threshold, sigma, score_threshold, gaussian,
                            keep.shape[0], &keep[0], &kept_scores[0])
    free(feats)
    if count < 0:
        raise MemoryError()
    return np.asarray(keep[:count]), np.asarray(kept_scores[:count])
