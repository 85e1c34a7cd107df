# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend for the box-overlap family.

The C twin of ``_formulas.py`` (the same features, the same pair formulas; see that module for
the conventions), parallel over rows on fastiou's thread pool (``fastiou/_core/_pool.h``).
Callers validate shapes; nothing here checks bounds.
"""

from libc.math cimport atan
from libc.stdint cimport int64_t

from fastiou._core._pool cimport grain_for, parallel_for
from fastiou.boxes._geometry cimport clamp0, corners, inter_area, pmax, pmin, real

# Operation codes, in the order of formulas.OPERATIONS.
cdef enum:
    IOU = 0
    GIOU = 1
    DIOU = 2
    CIOU = 3
    IOA1 = 4
    IOA2 = 5
OPERATIONS = ("iou", "giou", "diou", "ciou", "ioa1", "ioa2")


cdef inline real ratio(real num, real den, bint zero_div) noexcept nogil:
    cdef real q = num / den
    return 0 if (zero_div and den == 0) else q


cdef inline real pair(int op, const real* a, Py_ssize_t sa, const real* b, Py_ssize_t sb,
                      real offset, real eps, bint zero_div) noexcept nogil:
    """``op`` between two boxes given as features with strides sa, sb (see formulas.py).

    Called with a constant ``op`` inside each loop of ``_pair_loop``, so the compiler keeps only
    that operation's branch.
    """
    cdef real ax1 = a[0], ay1 = a[sa], ax2 = a[2 * sa], ay2 = a[3 * sa], area_a = a[4 * sa]
    cdef real bx1 = b[0], by1 = b[sb], bx2 = b[2 * sb], by2 = b[3 * sb], area_b = b[4 * sb]
    cdef real inter, union, overlap, ew, eh, dx, dy, d, v
    inter = inter_area(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2, offset)
    if op == IOA1:
        return ratio(inter, area_a, zero_div)
    if op == IOA2:
        return ratio(inter, area_b, zero_div)
    union = area_a + area_b - inter
    overlap = ratio(inter, union, zero_div)
    if op == IOU:
        return overlap
    ew = clamp0(pmax(ax2, bx2) - pmin(ax1, bx1) + offset)
    eh = clamp0(pmax(ay2, by2) - pmin(ay1, by1) + offset)
    if op == GIOU:
        return overlap - ratio(ew * eh - union, ew * eh, zero_div)
    dx = a[5 * sa] - b[5 * sb]
    dy = a[6 * sa] - b[6 * sb]
    d = overlap - (dx * dx + dy * dy) / (ew * ew + eh * eh + eps)
    if op == DIOU:
        return d
    v = (a[7 * sa] - b[7 * sb]) * (a[7 * sa] - b[7 * sb])
    return d - v / (<real> 1 - overlap + v + eps) * v


cdef inline void _pair_loop(int op, const real* a, Py_ssize_t sa, const real* b, Py_ssize_t sb,
                            real* out, Py_ssize_t m, real offset, real eps,
                            bint zero_div) noexcept nogil:
    """out[j] = op(a, b + j) for j < m: one loop per constant op, for the vectorizer."""
    cdef Py_ssize_t j
    cdef real row[8]  # a local copy cannot alias out, so the loop needs no reloads
    for j in range(8):
        row[j] = a[j * sa]
    a = row
    sa = 1
    if op == IOU:
        for j in range(m):
            out[j] = pair(IOU, a, sa, b + j, sb, offset, eps, zero_div)
    elif op == GIOU:
        for j in range(m):
            out[j] = pair(GIOU, a, sa, b + j, sb, offset, eps, zero_div)
    elif op == DIOU:
        for j in range(m):
            out[j] = pair(DIOU, a, sa, b + j, sb, offset, eps, zero_div)
    elif op == CIOU:
        for j in range(m):
            out[j] = pair(CIOU, a, sa, b + j, sb, offset, eps, zero_div)
    elif op == IOA1:
        for j in range(m):
            out[j] = pair(IOA1, a, sa, b + j, sb, offset, eps, zero_div)
    else:
        for j in range(m):
            out[j] = pair(IOA2, a, sa, b + j, sb, offset, eps, zero_div)


cdef struct Job:
    int op, fmt
    const void *a   # boxes [B, K, 4] (strided, in elements) or features f1 [B, 8, N]
    const void *b   # features f2 [B, 8, M]
    void *out
    Py_ssize_t n, m  # rows (N or K) and columns (M) per batch item
    Py_ssize_t s0, s1, s2  # element strides of the boxes, for features
    double offset, eps
    bint zero_div


cdef void _features(const real *boxes, real *feats, const Job *j, int64_t lo,
                    int64_t hi) noexcept nogil:
    """feats [B, 8, K] of boxes (x1, y1, x2, y2, area, cx, cy, aspect) for flat boxes lo:hi."""
    cdef Py_ssize_t k = j.n, b, i
    cdef int64_t r
    cdef real x1, y1, x2, y2, w, h, offset = <real> j.offset
    cdef real xyxy[4]
    cdef real half = 0.5
    cdef real two_over_pi = 0.63661977236758134308
    cdef const real *box
    cdef real *f
    for r in range(lo, hi):
        b = r // k
        i = r - b * k
        box = boxes + b * j.s0 + i * j.s1
        corners(j.fmt, box[0], box[j.s2], box[2 * j.s2], box[3 * j.s2], xyxy)
        x1, y1, x2, y2 = xyxy[0], xyxy[1], xyxy[2], xyxy[3]
        w = x2 - x1 + offset
        h = y2 - y1 + offset
        f = feats + b * 8 * k + i
        f[0] = x1
        f[k] = y1
        f[2 * k] = x2
        f[3 * k] = y2
        f[4 * k] = w * h
        f[5 * k] = (x1 + x2) * half
        f[6 * k] = (y1 + y2) * half
        f[7 * k] = <real> atan(ratio(w, h, j.zero_div)) * two_over_pi


cdef void _pairwise(const real *f1, const real *f2, real *out, const Job *j, int64_t lo,
                    int64_t hi) noexcept nogil:
    cdef Py_ssize_t n = j.n, m = j.m, b, i
    cdef int64_t r
    for r in range(lo, hi):
        b = r // n
        i = r - b * n
        _pair_loop(j.op, f1 + b * 8 * n + i, n, f2 + b * 8 * m, m, out + r * m, m,
                   <real> j.offset, <real> j.eps, j.zero_div)


cdef void _aligned(const real *f1, const real *f2, real *out, const Job *j, int64_t lo,
                   int64_t hi) noexcept nogil:
    cdef Py_ssize_t n = j.n, b, k
    cdef int64_t r
    for r in range(lo, hi):
        b = r // n
        k = r - b * n
        out[r] = pair(j.op, f1 + b * 8 * n + k, n, f2 + b * 8 * n + k, n, <real> j.offset,
                      <real> j.eps, j.zero_div)


# The pool's tasks: one per (loop, dtype), each a cast of the job to the fused loop above.
cdef void _features_f(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    _features(<const float *> (<Job *> c).a, <float *> (<Job *> c).out, <Job *> c, lo, hi)
cdef void _features_d(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    _features(<const double *> (<Job *> c).a, <double *> (<Job *> c).out, <Job *> c, lo, hi)
cdef void _pairwise_f(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef Job *j = <Job *> c
    _pairwise(<const float *> j.a, <const float *> j.b, <float *> j.out, j, lo, hi)
cdef void _pairwise_d(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef Job *j = <Job *> c
    _pairwise(<const double *> j.a, <const double *> j.b, <double *> j.out, j, lo, hi)
cdef void _aligned_f(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef Job *j = <Job *> c
    _aligned(<const float *> j.a, <const float *> j.b, <float *> j.out, j, lo, hi)
cdef void _aligned_d(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef Job *j = <Job *> c
    _aligned(<const double *> j.a, <const double *> j.b, <double *> j.out, j, lo, hi)


def features(const real[:, :, :] boxes, int fmt, real offset, bint zero_div,
             real[:, :, ::1] feats, int num_threads):
    """boxes [B, K, 4] in format ``fmt`` -> feats [B, 8, K] (x1, y1, x2, y2, area, cx, cy, aspect)."""
    cdef Job j
    cdef int64_t total = boxes.shape[0] * boxes.shape[1]
    if total == 0:
        return
    j.fmt, j.offset, j.zero_div, j.n = fmt, offset, zero_div, boxes.shape[1]
    j.s0, j.s1, j.s2 = (boxes.strides[0] // sizeof(real), boxes.strides[1] // sizeof(real),
                        boxes.strides[2] // sizeof(real))
    j.a, j.out = &boxes[0, 0, 0], &feats[0, 0, 0]
    with nogil:
        parallel_for(_features_f if real is float else _features_d, &j, total,
                     grain_for(total, num_threads, 4096), num_threads)


def pairwise(int op, const real[:, :, ::1] f1, const real[:, :, ::1] f2, real[:, :, ::1] out,
             real offset, real eps, bint zero_div, int num_threads):
    """out[b, i, j] = op(f1[b, :, i], f2[b, :, j]) for features f1 [B, 8, N], f2 [B, 8, M]."""
    cdef Job j
    cdef int64_t rows = out.shape[0] * out.shape[1]
    if rows == 0 or out.shape[2] == 0:
        return
    j.op, j.offset, j.eps, j.zero_div, j.n, j.m = op, offset, eps, zero_div, out.shape[1], out.shape[2]
    j.a, j.b, j.out = &f1[0, 0, 0], &f2[0, 0, 0], &out[0, 0, 0]
    with nogil:
        parallel_for(_pairwise_f if real is float else _pairwise_d, &j, rows,
                     grain_for(rows, num_threads, max(1, 16384 // j.m)), num_threads)


def aligned(int op, const real[:, :, ::1] f1, const real[:, :, ::1] f2, real[:, ::1] out,
            real offset, real eps, bint zero_div, int num_threads):
    """out[b, k] = op(f1[b, :, k], f2[b, :, k]) for features f1, f2 [B, 8, K]."""
    cdef Job j
    cdef int64_t total = out.shape[0] * out.shape[1]
    if total == 0:
        return
    j.op, j.offset, j.eps, j.zero_div, j.n = op, offset, eps, zero_div, out.shape[1]
    j.a, j.b, j.out = &f1[0, 0, 0], &f2[0, 0, 0], &out[0, 0]
    with nogil:
        parallel_for(_aligned_f if real is float else _aligned_d, &j, total,
                     grain_for(total, num_threads, 16384), num_threads)
