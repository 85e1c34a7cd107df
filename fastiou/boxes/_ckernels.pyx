# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend for the box-overlap family.

The C twin of ``formulas.py`` (the same features, the same pair formulas; see that module for the
conventions) with OpenMP ``prange`` over rows. It compiles with or without OpenMP: Cython guards
its pragmas with ``#ifdef _OPENMP``. Callers validate shapes; nothing here checks bounds.
"""

from cython.parallel cimport prange
from libc.math cimport atan

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTIOU_OPENMP 1
    #else
    #define FASTIOU_OPENMP 0
    #endif
    """
    int FASTIOU_OPENMP

ctypedef fused real:
    float
    double

# Operation codes, in the order of formulas.OPERATIONS.
cdef enum:
    IOU = 0
    GIOU = 1
    DIOU = 2
    CIOU = 3
    IOA1 = 4
    IOA2 = 5
OPERATIONS = ("iou", "giou", "diou", "ciou", "ioa1", "ioa2")


def has_openmp() -> bool:
    return bool(FASTIOU_OPENMP)


# NaN-propagating min/max (as torch.min/max), written as two selects so the compiler emits
# branch-free vector code: a branch on random box coordinates mispredicts half the time.
cdef inline real pmin(real a, real b) noexcept nogil:
    cdef real m = a if a < b else b
    return a if a != a else m

cdef inline real pmax(real a, real b) noexcept nogil:
    cdef real m = a if a > b else b
    return a if a != a else m

cdef inline real clamp0(real x) noexcept nogil:
    return 0 if x < 0 else x

cdef inline real ratio(real num, real den, bint zero_div) noexcept nogil:
    cdef real q = num / den
    return 0 if (zero_div and den == 0) else q


cdef inline real inter_area(real ax1, real ay1, real ax2, real ay2,
                            real bx1, real by1, real bx2, real by2, real offset) noexcept nogil:
    return (clamp0(pmin(ax2, bx2) - pmax(ax1, bx1) + offset)
            * clamp0(pmin(ay2, by2) - pmax(ay1, by1) + offset))


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


def features(const real[:, :, :] boxes, int fmt, real offset, bint zero_div,
             real[:, :, ::1] feats, int num_threads):
    """boxes [B, K, 4] in format ``fmt`` -> feats [B, 8, K] (x1, y1, x2, y2, area, cx, cy, aspect)."""
    cdef Py_ssize_t k = boxes.shape[1], r, b, i
    cdef real c0, c1, c2, c3, x1, y1, x2, y2, w, h
    cdef real half = 0.5
    cdef real two_over_pi = 0.63661977236758134308
    for r in prange(boxes.shape[0] * k, nogil=True, num_threads=num_threads, schedule="static"):
        b = r // k
        i = r - b * k
        c0 = boxes[b, i, 0]
        c1 = boxes[b, i, 1]
        c2 = boxes[b, i, 2]
        c3 = boxes[b, i, 3]
        if fmt == 1:
            x1 = c0
            y1 = c1
            x2 = c0 + c2
            y2 = c1 + c3
        elif fmt == 2:
            x1 = c0 - half * c2
            y1 = c1 - half * c3
            x2 = c0 + half * c2
            y2 = c1 + half * c3
        else:
            x1 = c0
            y1 = c1
            x2 = c2
            y2 = c3
        w = x2 - x1 + offset
        h = y2 - y1 + offset
        feats[b, 0, i] = x1
        feats[b, 1, i] = y1
        feats[b, 2, i] = x2
        feats[b, 3, i] = y2
        feats[b, 4, i] = w * h
        feats[b, 5, i] = (x1 + x2) * half
        feats[b, 6, i] = (y1 + y2) * half
        feats[b, 7, i] = <real> atan(ratio(w, h, zero_div)) * two_over_pi


def pairwise(int op, const real[:, :, ::1] f1, const real[:, :, ::1] f2, real[:, :, ::1] out,
             real offset, real eps, bint zero_div, int num_threads):
    """out[b, i, j] = op(f1[b, :, i], f2[b, :, j]) for features f1 [B, 8, N], f2 [B, 8, M]."""
    cdef Py_ssize_t n = out.shape[1], m = out.shape[2], r, b, i
    if m == 0:
        return
    for r in prange(out.shape[0] * n, nogil=True, num_threads=num_threads, schedule="static"):
        b = r // n
        i = r - b * n
        _pair_loop(op, &f1[b, 0, i], n, &f2[b, 0, 0], m, &out[b, i, 0], m, offset, eps, zero_div)


def aligned(int op, const real[:, :, ::1] f1, const real[:, :, ::1] f2, real[:, ::1] out,
            real offset, real eps, bint zero_div, int num_threads):
    """out[b, k] = op(f1[b, :, k], f2[b, :, k]) for features f1, f2 [B, 8, K]."""
    cdef Py_ssize_t n = out.shape[1], r, b, k
    for r in prange(out.shape[0] * n, nogil=True, num_threads=num_threads, schedule="static"):
        b = r // n
        k = r - b * n
        out[b, k] = pair(op, &f1[b, 0, k], n, &f2[b, 0, k], n, offset, eps, zero_div)
