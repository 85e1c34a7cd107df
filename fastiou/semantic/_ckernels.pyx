# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend for confusion counts (see ``_common.py`` for the row codes).

``CHUNKS_PER_THREAD`` contiguous ranges of pixels per thread, claimed on fastiou's thread pool
(``fastiou/_core/_pool.h``: the caller works too, a thread the OS delays on a busy machine takes
fewer or none), each thread slot counting into its own histograms (several, used in turn: one
dominant class then does not chain every increment on the previous store), merged at the end.
The ``[R0, R1, K]`` views may have any strides (zero included); the kernels walk them with byte
strides. Callers build the tables; the row codes keep every increment inside the histogram.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

cimport numpy as cnp

from fastiou._core._pool cimport parallel_for

ctypedef fused label_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

ctypedef fused pred_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

ctypedef fused score_t:
    float
    double

cdef enum:
    BLOCK = 256  # pixels per argmax block
    CHUNKS_PER_THREAD = 8

ctypedef uint32_t count_t  # private counters (see Counters)
cdef Py_ssize_t COUNT_MAX = 0xFFFFFFFF  # pixels a count_t counter can take


cnp.import_array()


cdef struct Table:
    const int32_t* codes      # row code of each unsigned target value below `length`
    uint64_t length
    bint full                 # `codes` covers every value of the label type: no check
    const uint64_t* keys      # larger values with a code of their own
    const int32_t* key_codes
    Py_ssize_t nkeys
    int64_t invalid           # the code of every other value


cdef struct Layout:
    const char* base          # element [0, 0, 0]
    Py_ssize_t s0, s1, s2     # byte strides


cdef struct Span:
    Py_ssize_t r0, r1, k0, k1  # pixels k0:k1 of row (r0, r1)


cdef inline Span row_span(Py_ssize_t i, Py_ssize_t end, Py_ssize_t r1_count,
                          Py_ssize_t k_count) noexcept nogil:
    """Where pixels [i, end) of an [R0, R1, K] array begin: the range walk takes one row's
    part, ``k1 - k0`` pixels, at a time."""
    cdef Span sp
    cdef Py_ssize_t r = i // k_count
    sp.k0 = i - r * k_count
    sp.k1 = min(k_count, sp.k0 + (end - i))
    sp.r0 = r // r1_count
    sp.r1 = r - sp.r0 * r1_count
    return sp


cdef inline const char* at(const Layout* l, Span sp) noexcept nogil:
    """The address of the first pixel of ``sp`` in layout ``l``."""
    return l.base + sp.r0 * l.s0 + sp.r1 * l.s1 + sp.k0 * l.s2


cdef inline int64_t row_code(uint64_t u, const Table* tab) noexcept nogil:
    cdef Py_ssize_t e
    if tab.full or u < tab.length:
        return tab.codes[u]
    for e in range(tab.nkeys):
        if tab.keys[e] == u:
            return tab.key_codes[e]
    return tab.invalid


cdef inline uint64_t column(uint64_t p, uint64_t num_classes) noexcept nogil:
    return p if p < num_classes else num_classes


cdef void count_row(const label_t* t, Py_ssize_t ts, const pred_t* p, Py_ssize_t ps,
                    Py_ssize_t n, const Table* tab, uint64_t num_classes,
                    count_t* h0, count_t* h1, count_t* h2, count_t* h3) noexcept nogil:
    """Count n pixels t[k * ts], p[k * ps] (strides in elements) into h0..h3 in turn."""
    cdef Py_ssize_t k, n4 = n - n % 4
    cdef const int32_t* codes = tab.codes
    if tab.full:
        if ts == 1 and ps == 1:  # the common case, written for the compiler
            for k in range(0, n4, 4):
                h0[codes[t[k]] + column(p[k], num_classes)] += 1
                h1[codes[t[k + 1]] + column(p[k + 1], num_classes)] += 1
                h2[codes[t[k + 2]] + column(p[k + 2], num_classes)] += 1
                h3[codes[t[k + 3]] + column(p[k + 3], num_classes)] += 1
        else:
            for k in range(0, n4, 4):
                h0[codes[t[k * ts]] + column(p[k * ps], num_classes)] += 1
                h1[codes[t[(k + 1) * ts]] + column(p[(k + 1) * ps], num_classes)] += 1
                h2[codes[t[(k + 2) * ts]] + column(p[(k + 2) * ps], num_classes)] += 1
                h3[codes[t[(k + 3) * ts]] + column(p[(k + 3) * ps], num_classes)] += 1
        for k in range(n4, n):
            h0[codes[t[k * ts]] + column(p[k * ps], num_classes)] += 1
    else:
        for k in range(0, n4, 4):
            h0[row_code(t[k * ts], tab) + column(p[k * ps], num_classes)] += 1
            h1[row_code(t[(k + 1) * ts], tab) + column(p[(k + 1) * ps], num_classes)] += 1
            h2[row_code(t[(k + 2) * ts], tab) + column(p[(k + 2) * ps], num_classes)] += 1
            h3[row_code(t[(k + 3) * ts], tab) + column(p[(k + 3) * ps], num_classes)] += 1
        for k in range(n4, n):
            h0[row_code(t[k * ts], tab) + column(p[k * ps], num_classes)] += 1


cdef void count_labels(const Layout* tl, const Layout* pl, Py_ssize_t r1_count,
                       Py_ssize_t k_count, Py_ssize_t i, Py_ssize_t end, const Table* tab,
                       uint64_t num_classes, count_t* h, Py_ssize_t bins, Py_ssize_t subs,
                       label_t* t_type, pred_t* p_type) noexcept nogil:
    """Count pixels [i, end) (t_type, p_type only select the specialization)."""
    cdef Span sp
    cdef count_t* h1 = h + (1 % subs) * bins
    cdef count_t* h2 = h + (2 % subs) * bins
    cdef count_t* h3 = h + (3 % subs) * bins
    cdef Py_ssize_t ts = tl.s2 // <Py_ssize_t> sizeof(label_t)
    cdef Py_ssize_t ps = pl.s2 // <Py_ssize_t> sizeof(pred_t)
    while i < end:
        sp = row_span(i, end, r1_count, k_count)
        count_row(<const label_t*> at(tl, sp), ts, <const pred_t*> at(pl, sp), ps, sp.k1 - sp.k0,
                  tab, num_classes, h, h1, h2, h3)
        i += sp.k1 - sp.k0


cdef void argmax_row(const score_t* s, Py_ssize_t ks, Py_ssize_t cs, Py_ssize_t num_classes,
                     Py_ssize_t n, int32_t* arg) noexcept nogil:
    """arg[j] = argmax over c of s[j * ks + c * cs] for j < n <= BLOCK (strides in elements).

    NaN is the maximum and the first NaN wins, ties go to the lowest class (np.argmax).
    """
    cdef score_t best[BLOCK]
    cdef score_t v, m
    cdef Py_ssize_t j, c
    cdef const score_t* sc
    cdef bint take
    for j in range(n):
        best[j] = s[j * ks]
        arg[j] = 0
    for c in range(1, num_classes):
        sc = s + c * cs
        if ks == 1:  # contiguous pixels: a loop the compiler vectorizes
            for j in range(n):
                v = sc[j]
                m = best[j]
                take = (not (v <= m)) & (m == m)
                best[j] = v if take else m
                arg[j] = <int32_t> c if take else arg[j]
        else:
            for j in range(n):
                v = sc[j * ks]
                m = best[j]
                take = (not (v <= m)) & (m == m)
                best[j] = v if take else m
                arg[j] = <int32_t> c if take else arg[j]


cdef void count_logits(const Layout* tl, const Layout* sl, Py_ssize_t sc_stride,
                       Py_ssize_t num_classes, Py_ssize_t r1_count, Py_ssize_t k_count,
                       Py_ssize_t i, Py_ssize_t end, const Table* tab, count_t* h,
                       Py_ssize_t bins, Py_ssize_t subs, label_t* t_type,
                       score_t* s_type) noexcept nogil:
    """Count pixels [i, end) against the argmax of their scores."""
    cdef int32_t arg[BLOCK]
    cdef Py_ssize_t b0, n, j, row_pixels
    cdef Span sp
    cdef Py_ssize_t ts = tl.s2 // <Py_ssize_t> sizeof(label_t)
    cdef Py_ssize_t ks = sl.s2 // <Py_ssize_t> sizeof(score_t)
    cdef Py_ssize_t cs = sc_stride // <Py_ssize_t> sizeof(score_t)
    cdef const label_t* t
    cdef const score_t* s
    cdef count_t* hs[4]
    for j in range(4):
        hs[j] = h + (j % subs) * bins
    while i < end:
        sp = row_span(i, end, r1_count, k_count)
        row_pixels = sp.k1 - sp.k0
        t = <const label_t*> at(tl, sp)
        s = <const score_t*> at(sl, sp)
        b0 = 0
        while b0 < row_pixels:
            n = min(<Py_ssize_t> BLOCK, row_pixels - b0)
            argmax_row(s + b0 * ks, ks, cs, num_classes, n, arg)
            for j in range(n):
                hs[j & 3][row_code(t[(b0 + j) * ts], tab) + arg[j]] += 1
            b0 += n
        i += row_pixels


cdef Table make_table(const int32_t[::1] codes, bint full, const uint64_t[::1] keys,
                      const int32_t[::1] key_codes, int64_t num_classes):
    cdef Table tab
    tab.codes = &codes[0]
    tab.length = codes.shape[0]
    tab.full = full
    tab.nkeys = keys.shape[0]
    tab.keys = &keys[0] if tab.nkeys else NULL
    tab.key_codes = &key_codes[0] if tab.nkeys else NULL
    tab.invalid = (num_classes + 1) * (num_classes + 1)
    return tab


# ---------------------------------------------------------------------------------------------
# Private counters: 32-bit (half the cache footprint of int64 on many classes), flushed into a
# thread's int64 totals before the pixels counted since the last flush could overflow them.
# ---------------------------------------------------------------------------------------------

cdef struct Counters:
    count_t* counts      # [threads, subs, bins]
    int64_t* totals      # [threads, bins]; only for more than COUNT_MAX pixels in all
    int64_t* pending     # [threads]: pixels counted since the last flush
    Py_ssize_t threads, subs, bins


cdef int open_counters(Counters* c, Py_ssize_t threads, Py_ssize_t subs, Py_ssize_t bins,
                       Py_ssize_t pixels) except -1 nogil:
    c.threads, c.subs, c.bins = threads, subs, bins
    c.counts = <count_t*> calloc(threads * subs * bins, sizeof(count_t))
    c.pending = <int64_t*> calloc(threads, sizeof(int64_t))
    c.totals = NULL
    if pixels > COUNT_MAX:
        c.totals = <int64_t*> calloc(threads * bins, sizeof(int64_t))
    if c.counts == NULL or c.pending == NULL or (pixels > COUNT_MAX and c.totals == NULL):
        free(c.counts)
        free(c.pending)
        free(c.totals)
        with gil:
            raise MemoryError()
    return 0


cdef void flush(Counters* c, Py_ssize_t tid) noexcept nogil:
    """Move thread ``tid``'s 32-bit counts into its int64 totals."""
    cdef Py_ssize_t sub, b
    cdef count_t* h
    cdef int64_t* total = c.totals + tid * c.bins
    for sub in range(c.subs):
        h = c.counts + (tid * c.subs + sub) * c.bins
        for b in range(c.bins):
            total[b] += h[b]
            h[b] = 0
    c.pending[tid] = 0


cdef count_t* claim(Counters* c, Py_ssize_t tid, Py_ssize_t pixels) noexcept nogil:
    """Thread ``tid``'s counters, ready to count ``pixels`` more (<= COUNT_MAX)."""
    if c.pending[tid] + pixels > COUNT_MAX:
        flush(c, tid)
    c.pending[tid] += pixels
    return c.counts + tid * c.subs * c.bins


cdef void close_counters(Counters* c, int64_t* hist) noexcept nogil:
    """hist += everything counted; frees the counters."""
    cdef Py_ssize_t b, copy, copies = c.threads * c.subs
    cdef count_t* h
    for copy in range(copies):
        h = c.counts + copy * c.bins
        for b in range(c.bins):
            hist[b] += h[b]
    if c.totals != NULL:
        for copy in range(c.threads):
            for b in range(c.bins):
                hist[b] += c.totals[copy * c.bins + b]
    free(c.counts)
    free(c.totals)
    free(c.pending)


cdef inline Py_ssize_t chunk_count(Py_ssize_t total, int num_threads) noexcept nogil:
    cdef Py_ssize_t chunks = num_threads * CHUNKS_PER_THREAD if num_threads > 1 else 1
    return max(chunks, (total + COUNT_MAX - 1) // COUNT_MAX)


cdef struct Job:
    Table tab
    Layout t, other       # the target, and the prediction or the scores
    Py_ssize_t class_stride, num_classes, r1_count, k_count, total, chunks, bins, subs
    Counters *counters
    # the specialization of _labels_chunk / _logits_chunk for the arrays' dtypes; the dtype
    # pointers it takes are never read (they only select the specialization)
    void (*count)(const Job *j, Py_ssize_t chunk, int slot, const void *a, const void *b) noexcept nogil


cdef void _labels_chunk(const Job *j, Py_ssize_t chunk, int slot, const label_t *t_type,
                        const pred_t *p_type) noexcept nogil:
    cdef Py_ssize_t start = j.total * chunk // j.chunks, end = j.total * (chunk + 1) // j.chunks
    count_labels(&j.t, &j.other, j.r1_count, j.k_count, start, end, &j.tab,
                 <uint64_t> j.num_classes, claim(j.counters, slot, end - start), j.bins, j.subs,
                 <label_t *> NULL, <pred_t *> NULL)


cdef void _logits_chunk(const Job *j, Py_ssize_t chunk, int slot, const label_t *t_type,
                        const score_t *s_type) noexcept nogil:
    cdef Py_ssize_t start = j.total * chunk // j.chunks, end = j.total * (chunk + 1) // j.chunks
    count_logits(&j.t, &j.other, j.class_stride, j.num_classes, j.r1_count, j.k_count, start,
                 end, &j.tab, claim(j.counters, slot, end - start), j.bins, j.subs,
                 <label_t *> NULL, <score_t *> NULL)


cdef void _task(void *c, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef const Job *j = <const Job *> c
    cdef int64_t chunk
    for chunk in range(lo, hi):
        j.count(j, chunk, slot, NULL, NULL)


cdef Layout _layout(const char *base, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2) noexcept nogil:
    cdef Layout layout
    layout.base, layout.s0, layout.s1, layout.s2 = base, s0, s1, s2
    return layout


cdef int _run(Job *j, Counters *counters, int64_t* hist, int num_threads) except -1 nogil:
    """Count on the pool into thread-slot counters, then add them into ``hist``."""
    j.chunks = chunk_count(j.total, num_threads)
    open_counters(counters, num_threads, j.subs, j.bins, j.total)
    j.counters = counters
    parallel_for(_task, j, j.chunks, 1, num_threads)
    close_counters(counters, hist)
    return 0


def labels(const label_t[:, :, :] target, const pred_t[:, :, :] prediction,
           const int32_t[::1] codes, bint full, const uint64_t[::1] keys,
           const int32_t[::1] key_codes, int64_t num_classes, int subs, int64_t[::1] hist,
           int num_threads):
    """hist += the counts of target [R0, R1, K] against prediction (same shape).

    ``num_threads`` threads, ``subs`` private histograms each, added into ``hist`` at the end.
    """
    cdef Job j
    cdef Counters counters
    j.total = target.shape[0] * target.shape[1] * target.shape[2]
    if j.total == 0:
        return
    j.tab = make_table(codes, full, keys, key_codes, num_classes)
    j.t = _layout(<const char *> &target[0, 0, 0], target.strides[0], target.strides[1],
                  target.strides[2])
    j.other = _layout(<const char *> &prediction[0, 0, 0], prediction.strides[0],
                      prediction.strides[1], prediction.strides[2])
    j.num_classes, j.r1_count, j.k_count = num_classes, target.shape[1], target.shape[2]
    j.bins, j.subs = hist.shape[0], subs
    # see Job.count: the same arguments, the dtype pointers passed as void *
    j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
        _labels_chunk[label_t, pred_t])
    with nogil:
        _run(&j, &counters, &hist[0], num_threads)


def logits(const label_t[:, :, :] target, const score_t[:, :, :, :] scores,
           const int32_t[::1] codes, bint full, const uint64_t[::1] keys,
           const int32_t[::1] key_codes, int subs, int64_t[::1] hist, int num_threads):
    """hist += the counts of target [R0, R1, K] against argmax over axis 2 of scores
    [R0, R1, C, K]."""
    cdef Job j
    cdef Counters counters
    j.total = target.shape[0] * target.shape[1] * target.shape[2]
    j.num_classes = scores.shape[2]
    if j.total == 0 or j.num_classes == 0:
        return
    j.tab = make_table(codes, full, keys, key_codes, j.num_classes)
    j.t = _layout(<const char *> &target[0, 0, 0], target.strides[0], target.strides[1],
                  target.strides[2])
    j.other = _layout(<const char *> &scores[0, 0, 0, 0], scores.strides[0], scores.strides[1],
                      scores.strides[3])
    j.class_stride, j.r1_count, j.k_count = scores.strides[2], target.shape[1], target.shape[2]
    j.bins, j.subs = hist.shape[0], subs
    j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
        _logits_chunk[label_t, score_t])
    with nogil:
        _run(&j, &counters, &hist[0], num_threads)


cdef class LabelTable:
    """A label plan's tables held for :func:`lean_labels` (built once per plan)."""
    cdef Table tab
    cdef Py_ssize_t num_classes
    cdef int subs  # private histograms per thread
    cdef object arrays  # the arrays tab points into

    def __init__(self, const int32_t[::1] codes, bint full, const uint64_t[::1] keys,
                 const int32_t[::1] key_codes, int64_t num_classes, int subs):
        self.arrays = (codes, keys, key_codes)
        self.num_classes, self.subs = num_classes, subs
        self.tab = make_table(codes, full, keys, key_codes, num_classes)


def lean_labels(LabelTable table, cnp.ndarray target, cnp.ndarray prediction, int num_threads):
    """The [C, C] int64 counts of two label arrays in one call (the lean call path), or None.

    Taken when both are C-contiguous native integer (or bool) arrays of one dtype and shape,
    and every counted label is in [0, C); None otherwise (the general path then runs, and
    names an invalid label).
    """
    cdef int nd = cnp.PyArray_NDIM(target), d
    cdef int dtype = cnp.PyArray_TYPE(target)
    if (nd != cnp.PyArray_NDIM(prediction) or dtype != cnp.PyArray_TYPE(prediction)
            or not (cnp.PyArray_ISINTEGER(target) or dtype == cnp.NPY_BOOL)
            or not cnp.PyArray_ISNOTSWAPPED(target) or not cnp.PyArray_ISNOTSWAPPED(prediction)
            or not cnp.PyArray_IS_C_CONTIGUOUS(target)
            or not cnp.PyArray_IS_C_CONTIGUOUS(prediction)):
        return None
    for d in range(nd):
        if cnp.PyArray_DIM(target, d) != cnp.PyArray_DIM(prediction, d):
            return None
    cdef Py_ssize_t c = table.num_classes, item = cnp.PyArray_ITEMSIZE(target), row, col
    cdef Job j
    cdef Counters counters
    cdef int64_t *hist
    cdef cnp.npy_intp shape[2]
    shape[0], shape[1] = c, c
    j.tab, j.num_classes = table.tab, c
    result = cnp.PyArray_ZEROS(2, shape, cnp.NPY_INT64, 0)
    j.total = cnp.PyArray_SIZE(target)
    if j.total == 0:
        return result
    j.t = _layout(<const char *> cnp.PyArray_DATA(target), 0, 0, item)
    j.other = _layout(<const char *> cnp.PyArray_DATA(prediction), 0, 0, item)
    j.r1_count, j.k_count = 1, j.total
    j.bins, j.subs = (c + 2) * (c + 1), table.subs
    if item == 1:
        j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
            _labels_chunk[uint8_t, uint8_t])
    elif item == 2:
        j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
            _labels_chunk[uint16_t, uint16_t])
    elif item == 4:
        j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
            _labels_chunk[uint32_t, uint32_t])
    else:
        j.count = <void (*)(const Job *, Py_ssize_t, int, const void *, const void *) noexcept nogil> (
            _labels_chunk[uint64_t, uint64_t])
    hist = <int64_t *> calloc(j.bins, sizeof(int64_t))
    if hist == NULL:
        raise MemoryError()
    cdef int64_t *matrix = <int64_t *> cnp.PyArray_DATA(<cnp.ndarray> result)
    cdef bint invalid = False
    with nogil:
        _run(&j, &counters, hist, num_threads)
        for row in range(c + 2):
            for col in range(c + 1):
                if row < c and col < c:
                    matrix[row * c + col] = hist[row * (c + 1) + col]
                elif row != c and hist[row * (c + 1) + col]:
                    invalid = True  # a target (row C + 1) or prediction (column C) outside [0, C)
    free(hist)
    return None if invalid else result

