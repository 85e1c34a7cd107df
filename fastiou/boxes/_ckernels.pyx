# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend for the box-overlap family.

The C twin of ``_formulas.py`` (the same features, the same pair formulas; see that module for
the conventions), parallel over rows on fastiou's thread pool (``fastiou/_core/_pool.h``).
Callers validate shapes; nothing here checks bounds.
"""

from libc.math cimport atan
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp

from fastiou._core._pool cimport grain_for, parallel_for
from fastiou.boxes._geometry cimport clamp0, corners, pmax, pmin, real

# Operation codes, in the order of formulas.OPERATIONS.
cdef enum:
    IOU = 0
    GIOU = 1
    DIOU = 2
    CIOU = 3
    IOA1 = 4
    IOA2 = 5
OPERATIONS = ("iou", "giou", "diou", "ciou", "ioa1", "ioa2")

cnp.import_array()

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    static int fi_cpu_has_avx2(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2"); }
    #else
    static int fi_cpu_has_avx2(void) { return 0; }
    #endif
    """
    int fi_cpu_has_avx2()


def cpu_has_avx2() -> bool:
    """Whether this CPU (and OS) runs AVX2 code: then ``_ckernels_avx2`` is the faster build."""
    return bool(fi_cpu_has_avx2())


cdef inline real ratio(real num, real den, bint zero_div) noexcept nogil:
    cdef real q = num / den
    return 0 if (zero_div and den == 0) else q


cdef inline real amin(real a, real b, bint a_nan) noexcept nogil:
    """pmin(a, b). Where ``a`` is known not to be NaN (a_nan False) that is the plain select, one
    vector min instruction: a NaN ``b`` still comes out."""
    return pmin(a, b) if a_nan else (a if a < b else b)


cdef inline real amax(real a, real b, bint a_nan) noexcept nogil:
    """pmax(a, b), as amin."""
    return pmax(a, b) if a_nan else (a if a > b else b)


cdef inline real pair(int op, bint a_nan, const real* a, Py_ssize_t sa, const real* b,
                      Py_ssize_t sb, real offset, real eps, bint zero_div) noexcept nogil:
    """``op`` between two boxes given as features with strides sa, sb (see formulas.py).

    Called with a constant ``op`` inside each loop of ``_pair_loop``, so the compiler keeps only
    that operation's branch; ``a_nan`` False (a constant too) when no corner of ``a`` is NaN.
    """
    cdef real ax1 = a[0], ay1 = a[sa], ax2 = a[2 * sa], ay2 = a[3 * sa], area_a = a[4 * sa]
    cdef real bx1 = b[0], by1 = b[sb], bx2 = b[2 * sb], by2 = b[3 * sb], area_b = b[4 * sb]
    cdef real inter, union, overlap, ew, eh, dx, dy, d, v
    inter = (clamp0(amin(ax2, bx2, a_nan) - amax(ax1, bx1, a_nan) + offset)
             * clamp0(amin(ay2, by2, a_nan) - amax(ay1, by1, a_nan) + offset))  # inter_area
    if op == IOA1:
        return ratio(inter, area_a, zero_div)
    if op == IOA2:
        return ratio(inter, area_b, zero_div)
    union = area_a + area_b - inter
    overlap = ratio(inter, union, zero_div)
    if op == IOU:
        return overlap
    ew = clamp0(amax(ax2, bx2, a_nan) - amin(ax1, bx1, a_nan) + offset)
    eh = clamp0(amax(ay2, by2, a_nan) - amin(ay1, by1, a_nan) + offset)
    if op == GIOU:
        return overlap - ratio(ew * eh - union, ew * eh, zero_div)
    dx = a[5 * sa] - b[5 * sb]
    dy = a[6 * sa] - b[6 * sb]
    d = overlap - (dx * dx + dy * dy) / (ew * ew + eh * eh + eps)
    if op == DIOU:
        return d
    v = (a[7 * sa] - b[7 * sb]) * (a[7 * sa] - b[7 * sb])
    return d - v / (<real> 1 - overlap + v + eps) * v


cdef inline void _op_loop(int op, bint a_nan, const real* a, const real* b, Py_ssize_t sb,
                          real* out, Py_ssize_t m, real offset, real eps,
                          bint zero_div) noexcept nogil:
    """out[j] = op(a, b + j) for j < m: one loop per constant op, for the vectorizer."""
    cdef Py_ssize_t j
    if op == IOU:
        for j in range(m):
            out[j] = pair(IOU, a_nan, a, 1, b + j, sb, offset, eps, zero_div)
    elif op == GIOU:
        for j in range(m):
            out[j] = pair(GIOU, a_nan, a, 1, b + j, sb, offset, eps, zero_div)
    elif op == DIOU:
        for j in range(m):
            out[j] = pair(DIOU, a_nan, a, 1, b + j, sb, offset, eps, zero_div)
    elif op == CIOU:
        for j in range(m):
            out[j] = pair(CIOU, a_nan, a, 1, b + j, sb, offset, eps, zero_div)
    elif op == IOA1:
        for j in range(m):
            out[j] = pair(IOA1, a_nan, a, 1, b + j, sb, offset, eps, zero_div)
    else:
        for j in range(m):
            out[j] = pair(IOA2, a_nan, a, 1, b + j, sb, offset, eps, zero_div)


cdef void _pair_loop(int op, const real* a, Py_ssize_t sa, const real* b, Py_ssize_t sb,
                     real* out, Py_ssize_t m, real offset, real eps, bint zero_div) noexcept nogil:
    """out[j] = op(a, b + j) for j < m."""
    cdef Py_ssize_t j
    cdef real row[8]  # a local copy cannot alias out, so the loop needs no reloads
    for j in range(8):
        row[j] = a[j * sa]
    if row[0] != row[0] or row[1] != row[1] or row[2] != row[2] or row[3] != row[3]:
        _op_loop(op, True, row, b, sb, out, m, offset, eps, zero_div)
    elif zero_div:  # the common row: NaN-free, so min/max are single instructions
        _op_loop(op, False, row, b, sb, out, m, offset, eps, True)
    else:  # and zero_div a constant: no compare and blend per division
        _op_loop(op, False, row, b, sb, out, m, offset, eps, False)


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
    """feats [B, 8, K] of boxes (x1, y1, x2, y2, area, cx, cy, aspect) for flat boxes lo:hi
    (the aspect for CIoU only: the other operations never read it)."""
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
        if j.op == CIOU:  # the aspect angle: an atan per box, only CIoU reads it
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
        out[r] = pair(j.op, True, f1 + b * 8 * n + k, n, f2 + b * 8 * n + k, n, <real> j.offset,
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


cdef struct Boxes:
    const void *data  # [B, K, 4] boxes
    Py_ssize_t s0, s1, s2  # element strides (0 along a broadcast batch dimension)


cdef void _features_of(Job *j, bint is_double, Boxes x, Py_ssize_t batch, Py_ssize_t k,
                       void *feats, int num_threads) noexcept nogil:
    cdef int64_t rows = batch * k
    j.a, j.out, j.n, j.s0, j.s1, j.s2 = x.data, feats, k, x.s0, x.s1, x.s2
    parallel_for(_features_d if is_double else _features_f, j, rows,
                 grain_for(rows, num_threads, 4096), num_threads)


cdef int _overlap(int op, int fmt, bint aligned, bint is_double, Boxes a, Boxes b,
                  Py_ssize_t batch, Py_ssize_t n, Py_ssize_t m, void *out, double offset,
                  double eps, bint zero_div, int num_threads) except -1 nogil:
    """out [B, N, M] (aligned: [B, N]) = op between boxes a [B, N, 4] and b [B, M, 4].

    The features of both (x1, y1, x2, y2, area, cx, cy, aspect; [B, 8, K] each) go to one heap
    buffer, then the pair loop runs; each step on the pool. Nothing may be empty.
    """
    cdef size_t item = sizeof(double) if is_double else sizeof(float)
    cdef char *feats = <char *> malloc(item * 8 * batch * (n + m))
    cdef char *feats2 = feats + item * 8 * batch * n
    cdef Job j
    cdef int64_t rows
    if feats == NULL:
        with gil:
            raise MemoryError()
    j.op, j.fmt, j.offset, j.eps, j.zero_div = op, fmt, offset, eps, zero_div
    _features_of(&j, is_double, a, batch, n, feats, num_threads)
    _features_of(&j, is_double, b, batch, m, feats2, num_threads)
    j.a, j.b, j.out, j.n, j.m = feats, feats2, out, n, m
    rows = batch * n
    if aligned:
        parallel_for(_aligned_d if is_double else _aligned_f, &j, rows,
                     grain_for(rows, num_threads, 16384), num_threads)
    else:
        parallel_for(_pairwise_d if is_double else _pairwise_f, &j, rows,
                     grain_for(rows, num_threads, max(1, 16384 // m)), num_threads)
    free(feats)
    return 0


cdef Boxes _boxes(const real[:, :, :] boxes) noexcept:
    cdef Boxes view
    view.data = &boxes[0, 0, 0]
    view.s0, view.s1, view.s2 = (boxes.strides[0] // sizeof(real), boxes.strides[1] // sizeof(real),
                                 boxes.strides[2] // sizeof(real))
    return view


def pairwise(int op, const real[:, :, :] boxes1, const real[:, :, :] boxes2, real[:, :, ::1] out,
             int fmt, double offset, double eps, bint zero_div, int num_threads):
    """out[b, i, j] = op(boxes1[b, i], boxes2[b, j]) for boxes [B, N, 4] and [B, M, 4] in ``fmt``."""
    if out.shape[0] == 0 or out.shape[1] == 0 or out.shape[2] == 0:
        return
    cdef Boxes a = _boxes(boxes1), b = _boxes(boxes2)
    with nogil:
        _overlap(op, fmt, False, real is double, a, b, out.shape[0], out.shape[1], out.shape[2],
                 &out[0, 0, 0], offset, eps, zero_div, num_threads)


def aligned(int op, const real[:, :, :] boxes1, const real[:, :, :] boxes2, real[:, ::1] out,
            int fmt, double offset, double eps, bint zero_div, int num_threads):
    """out[b, k] = op(boxes1[b, k], boxes2[b, k]) for boxes [B, K, 4] in ``fmt``."""
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    cdef Boxes a = _boxes(boxes1), b = _boxes(boxes2)
    with nogil:
        _overlap(op, fmt, True, real is double, a, b, out.shape[0], out.shape[1], out.shape[1],
                 &out[0, 0], offset, eps, zero_div, num_threads)


cdef Boxes _array_boxes(cnp.ndarray boxes) noexcept:
    cdef Boxes view
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(boxes)
    view.data = cnp.PyArray_DATA(boxes)
    view.s0, view.s1, view.s2 = 0, cnp.PyArray_STRIDE(boxes, 0) // item, cnp.PyArray_STRIDE(boxes, 1) // item
    return view


def matrix(int op, cnp.ndarray boxes1, cnp.ndarray boxes2, int fmt, double offset, double eps,
           bint zero_div, int num_threads, object out=None):
    """The [N, M] matrix of op between boxes1 [N, 4] and boxes2 [M, 4] (the lean call path):
    new, or written into ``out``; None unless both are native float32, or both float64, numpy
    arrays of that shape (any strides) and ``out`` is None or a writeable, aligned, C-contiguous
    native numpy array of the result's shape and dtype (the general path checks, and says what
    is wrong). Features on the heap (so ``out`` may alias the boxes), no Python object but the
    result.
    """
    cdef int dtype = cnp.PyArray_TYPE(boxes1)
    cdef cnp.npy_intp shape[2]
    if (cnp.PyArray_NDIM(boxes1) != 2 or cnp.PyArray_NDIM(boxes2) != 2
            or cnp.PyArray_DIM(boxes1, 1) != 4 or cnp.PyArray_DIM(boxes2, 1) != 4
            or dtype != cnp.PyArray_TYPE(boxes2)
            or (dtype != cnp.NPY_FLOAT and dtype != cnp.NPY_DOUBLE)
            or not cnp.PyArray_ISNOTSWAPPED(boxes1) or not cnp.PyArray_ISNOTSWAPPED(boxes2)):
        return None
    shape[0], shape[1] = cnp.PyArray_DIM(boxes1, 0), cnp.PyArray_DIM(boxes2, 0)
    if out is None:
        result = cnp.PyArray_EMPTY(2, shape, dtype, 0)
    elif (type(out) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray> out) != 2
            or cnp.PyArray_DIM(<cnp.ndarray> out, 0) != shape[0]
            or cnp.PyArray_DIM(<cnp.ndarray> out, 1) != shape[1]
            or cnp.PyArray_TYPE(<cnp.ndarray> out) != dtype
            or not cnp.PyArray_ISCARRAY(<cnp.ndarray> out)):  # C order, aligned, writeable, native
        return None
    else:
        result = out
    if shape[0] == 0 or shape[1] == 0:
        return result
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(boxes1)
    for s in (cnp.PyArray_STRIDE(boxes1, 0), cnp.PyArray_STRIDE(boxes1, 1),
              cnp.PyArray_STRIDE(boxes2, 0), cnp.PyArray_STRIDE(boxes2, 1)):
        if s % item:  # a view into packed records: the kernels step in whole elements
            boxes1, boxes2 = cnp.PyArray_GETCONTIGUOUS(boxes1), cnp.PyArray_GETCONTIGUOUS(boxes2)
            break
    cdef Boxes a = _array_boxes(boxes1), b = _array_boxes(boxes2)
    cdef void *data = cnp.PyArray_DATA(<cnp.ndarray> result)
    with nogil:
        _overlap(op, fmt, False, dtype == cnp.NPY_DOUBLE, a, b, 1, shape[0], shape[1], data,
                 offset, eps, zero_div, num_threads)
    return result
