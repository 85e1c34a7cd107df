# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled kernels of fastiou.coco: JSON columns, grouping and sorting, matching, accumulation.

Everything here works on columnar arrays and index arrays; ``_evaluate.py`` owns the semantics
and calls these in order. The arithmetic that decides results (pycocotools' box IoU and its
precision formula, the decimal parser) lives in ``_native.h``. OpenMP ``prange`` runs over
chunks of a file, groups (image, category) and accumulation cells; without OpenMP it is serial.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset

cdef extern from "_native.h" nogil:
    ctypedef struct fi_columns:
        int64_t *image_id
        int64_t *category_id
        int64_t *id
        double *bbox
        double *score
        double *area
        double *iscrowd
        double *ignore
        uint8_t *seen
    double fi_precision(double tp, double fp)
    const char *fi_parse_number(const char *p, const char *end, const uint64_t *pow5, double *out)
    const char *fi_ws(const char *p, const char *end)
    const char *fi_skip_value(const char *p, const char *end, int depth)
    const char *fi_next_boundary(const char *p, const char *end)
    int fi_group_iou(const double *det, int64_t D, const double *gt, const uint8_t *crowd,
                     int64_t G, double lowest, double *iou, int32_t *cand, int64_t *cand_start)
    int fi_parse_array_chunk(const char *p, const char *end, const char *stop,
                             const uint64_t *pow5, fi_columns *c, int64_t row0, int64_t cap,
                             int64_t *nrows, const char **stop_at)

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTIOU_COCO_OPENMP 1
    #else
    #define FASTIOU_COCO_OPENMP 0
    #endif
    """
    int FASTIOU_COCO_OPENMP

# Per detection, area range and IoU threshold: what accumulate() counts it as.
cdef enum:
    IGN = 0
    TP = 1
    FP = 2

# The keys the scanner reads, in the order of _native.h's enum (bit i of "seen": KEYS[i]).
KEYS = ("image_id", "category_id", "bbox", "score", "area", "iscrowd", "id", "ignore")


def has_openmp() -> bool:
    return bool(FASTIOU_COCO_OPENMP)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def parse_number(bytes text, const uint64_t[::1] pow5):
    """The JSON number ``text`` as a float, or None where the fast parser declines."""
    cdef const char *p = text
    cdef double v
    cdef const char *q = fi_parse_number(p, p + len(text), &pow5[0], &v)
    if q == NULL or q != p + len(text):
        return None
    return v


def skip_value(const unsigned char[::1] buf, Py_ssize_t start):
    """Offset just past the JSON value at ``start`` (whitespace skipped first), or -1."""
    cdef const char *b = <const char *> &buf[0]
    cdef const char *end = b + buf.shape[0]
    cdef const char *p = fi_ws(b + start, end)
    p = fi_skip_value(p, end, 1)
    return -1 if p == NULL else p - b


def skip_ws(const unsigned char[::1] buf, Py_ssize_t start):
    cdef const char *b = <const char *> &buf[0]
    return fi_ws(b + start, b + buf.shape[0]) - b


def parse_object_array(const unsigned char[::1] buf, Py_ssize_t start, const uint64_t[::1] pow5,
                       Py_ssize_t min_object_bytes, int nthreads, wanted=KEYS,
                       Py_ssize_t min_chunk_bytes=1 << 20):
    """Read the JSON array of objects at ``buf[start]`` (after whitespace) into columns.

    The bytes are split into up to ``nthreads`` chunks (of ``min_chunk_bytes`` at least) at
    guessed object boundaries and parsed in parallel; each chunk confirms the next one's start
    (else all is parsed again in one chunk).
    Returns ``(columns, end)``: a dict of arrays (the ``wanted`` ones of ``KEYS``, ``bbox`` as
    N x 4, and ``seen``, the bitmask of keys present per object) and the offset after the
    closing bracket; or None when the scanner declines (bad JSON, strings or >19-digit numbers
    where it reads numbers...).
    """
    cdef const char *b = <const char *> &buf[0]
    cdef const char *end = b + buf.shape[0]
    cdef const char *p = fi_ws(b + start, end)
    if p >= end or p[0] != b'[':
        return None
    p = fi_ws(p + 1, end)
    cdef Py_ssize_t total = end - p
    cdef int nchunks = max(1, min(nthreads, total // max(1, min_chunk_bytes)))
    result = _parse_chunks(b, p, end, pow5, min_object_bytes, nchunks, wanted)
    if result is None and nchunks > 1:
        result = _parse_chunks(b, p, end, pow5, min_object_bytes, 1, wanted)
    return result


cdef _parse_chunks(const char *b, const char *p, const char *end, const uint64_t[::1] pow5,
                   Py_ssize_t min_object_bytes, int nchunks, wanted):
    cdef Py_ssize_t total = end - p
    cdef int c, n = 0
    starts = [0] * (nchunks + 1)
    cdef const char *s
    cdef const char *prev = p
    starts[0] = p - b
    n = 1
    for c in range(1, nchunks):
        s = fi_next_boundary(p + total * c // nchunks, end)
        if s > prev and s < end:
            starts[n] = s - b
            n += 1
            prev = s
    starts[n] = end - b
    cdef int64_t[::1] st = np.asarray(starts[: n + 1], dtype=np.int64)
    cdef int64_t[::1] base = np.zeros(n + 1, dtype=np.int64)
    for c in range(n):
        base[c + 1] = base[c] + (st[c + 1] - st[c]) // min_object_bytes + 1
    cap = int(base[n])
    image_id = np.empty(cap, np.int64)
    category_id = np.empty(cap, np.int64)
    ids = np.empty(cap, np.int64)
    bbox = np.empty((cap, 4), np.float64)
    score = np.empty(cap, np.float64)
    area = np.empty(cap, np.float64)
    iscrowd = np.empty(cap, np.float64)
    ignore = np.empty(cap, np.float64)
    seen = np.empty(cap, np.uint8)
    cdef int64_t[::1] v_img = image_id, v_cat = category_id, v_id = ids
    cdef double[:, ::1] v_bbox = bbox
    cdef double[::1] v_score = score, v_area = area, v_crowd = iscrowd, v_ign = ignore
    cdef uint8_t[::1] v_seen = seen
    cdef fi_columns cols
    cols.image_id = &v_img[0]
    cols.category_id = &v_cat[0]
    cols.id = &v_id[0]
    cols.bbox = &v_bbox[0, 0]
    cols.score = &v_score[0]
    cols.area = &v_area[0]
    cols.iscrowd = &v_crowd[0]
    cols.ignore = &v_ign[0]
    cols.seen = &v_seen[0]
    cdef int64_t[::1] nrows = np.zeros(n, dtype=np.int64)
    cdef int64_t[::1] stop_at = np.zeros(n, dtype=np.int64)
    cdef int32_t[::1] status = np.zeros(n, dtype=np.int32)
    cdef const char *stop_ptr
    cdef const uint64_t *pw = &pow5[0]
    for c in prange(n, nogil=True, num_threads=n, schedule="static", chunksize=1):
        _chunk(b, end, st, base, c, n, pw, &cols, nrows, stop_at, status)
    pieces = []
    for c in range(n):
        if status[c] < 0:
            return None
        pieces.append((int(base[c]), int(nrows[c])))
        if status[c] == 1:
            break
    else:
        return None  # never reached the closing bracket
    end_offset = int(stop_at[c])
    total = sum(rows for _, rows in pieces)
    columns = {}
    for name, arr in zip(KEYS + ("seen",), (image_id, category_id, bbox, score, area, iscrowd,
                                             ids, ignore, seen)):
        if name in wanted or name == "seen":
            _compact(arr, pieces)
            columns[name] = arr[:total]
    return columns, end_offset


cdef _compact(arr, list pieces):
    """Move the chunks' rows (start, count) down to one run from row 0, in place."""
    cdef unsigned char[::1] raw = arr.reshape(-1).view(np.uint8)
    cdef Py_ssize_t row_bytes = arr.itemsize * (arr.size // max(1, arr.shape[0]))
    cdef Py_ssize_t dst = 0, start, count
    for start, count in pieces:
        if count and start != dst:
            memmove(&raw[dst * row_bytes], &raw[start * row_bytes], count * row_bytes)
        dst += count


cdef void _chunk(const char *b, const char *end, int64_t[::1] st, int64_t[::1] base, int c,
                 int n, const uint64_t *pw, fi_columns *cols, int64_t[::1] nrows,
                 int64_t[::1] stop_at, int32_t[::1] status) noexcept nogil:
    cdef const char *stop = NULL
    cdef const char *at = NULL
    cdef int64_t rows = 0
    if c + 1 < n:
        stop = b + st[c + 1]
    status[c] = fi_parse_array_chunk(b + st[c], end, stop, pw, cols, base[c],
                                     base[c + 1] - base[c], &rows, &at)
    nrows[c] = rows
    stop_at[c] = (at - b) if at != NULL else 0


# ---------------------------------------------------------------------------------------------
# Ids to positions, grouping
# ---------------------------------------------------------------------------------------------


def positions(const int64_t[::1] values, const int64_t[::1] sorted_ids):
    """For each value, its index in the sorted, unique ``sorted_ids``; -1 where absent."""
    cdef Py_ssize_t n = values.shape[0], m = sorted_ids.shape[0], j, lo, hi, mid
    out = np.empty(n, np.int32)
    cdef int32_t[::1] o = out
    cdef int64_t v, first, span
    if m == 0:
        out[:] = -1
        return out
    first = sorted_ids[0]
    span = sorted_ids[m - 1] - first + 1
    cdef int32_t[::1] lut
    if 0 < span <= 4 * m + (1 << 20):  # dense ids: one table lookup each
        lut_arr = np.full(span, -1, np.int32)
        lut = lut_arr
        for j in range(m):
            lut[sorted_ids[j] - first] = <int32_t> j
        with nogil:
            for j in range(n):
                v = values[j] - first
                o[j] = lut[v] if 0 <= v < span else -1
        return out
    with nogil:
        for j in range(n):
            v = values[j]
            lo = 0
            hi = m
            while lo < hi:
                mid = (lo + hi) >> 1
                if sorted_ids[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            o[j] = <int32_t> lo if (lo < m and sorted_ids[lo] == v) else -1
    return out


def counting_order(const int32_t[::1] key, Py_ssize_t nbuckets, const int64_t[::1] order):
    """``order`` stably sorted by ``key[order[j]]`` (a counting sort); keys < 0 are dropped."""
    cdef Py_ssize_t n = order.shape[0], j, total = 0
    cdef int32_t k
    counts_arr = np.zeros(nbuckets + 1, np.int64)
    cdef int64_t[::1] counts = counts_arr
    with nogil:
        for j in range(n):
            k = key[order[j]]
            if k >= 0:
                counts[k + 1] += 1
        for j in range(nbuckets):
            counts[j + 1] += counts[j]
    total = counts[nbuckets]
    out_arr = np.empty(total, np.int64)
    cdef int64_t[::1] out = out_arr
    with nogil:
        for j in range(n):
            k = key[order[j]]
            if k >= 0:
                out[counts[k]] = order[j]
                counts[k] += 1
    return out_arr


def segment_starts(const int32_t[::1] k_pos, const int32_t[::1] i_pos, const int64_t[::1] order,
                   int64_t n_images):
    """Boundaries of the runs of equal (k, i) along ``order``: (keys, starts incl. the end)."""
    cdef Py_ssize_t n = order.shape[0], j, s = 0
    keys_arr = np.empty(n, np.int64)
    starts_arr = np.empty(n + 1, np.int64)
    cdef int64_t[::1] keys = keys_arr, starts = starts_arr
    cdef int64_t g, last = -1
    with nogil:
        for j in range(n):
            g = k_pos[order[j]] * n_images + i_pos[order[j]]
            if g != last:
                keys[s] = g
                starts[s] = j
                s += 1
                last = g
        starts[s] = n
    return keys_arr[:s], starts_arr[: s + 1]


cdef inline bint _before(double a, double b) noexcept nogil:
    """numpy's sort order: a strictly before b, NaN last."""
    return a < b or (b != b and a == a)


cdef inline uint64_t _sort_key64(double x) noexcept nogil:
    """An unsigned key ordered as numpy orders -x (ascending; -0.0 ties 0.0; NaN last)."""
    cdef uint64_t u
    x = -x
    if x == 0:
        x = 0.0
    if x != x:
        return 0xFFFFFFFFFFFFFFFFULL
    memcpy(&u, &x, 8)
    return ~u if (u >> 63) else (u | 0x8000000000000000ULL)


cdef inline uint64_t _sort_key32(double x) noexcept nogil:
    """The same order from the float32 bits, for scores that float32 holds exactly (most
    detectors' scores): half the key bits, fewer radix passes."""
    cdef float f = <float> -x
    cdef uint32_t u
    if f == 0:
        f = 0.0
    memcpy(&u, &f, 4)
    return <uint64_t> (~u if (u >> 31) else (u | 0x80000000U))


cdef void _sort_desc(int64_t *idx, uint64_t *key, int64_t *tmp_i, uint64_t *tmp_k,
                     int64_t *counts, Py_ssize_t n, int digits) noexcept nogil:
    """Stable sort of idx[0:n] by key (ascending; ``_sort_key*`` of the scores): insertion sort
    for short runs, else an LSD radix sort on ``digits`` 11-bit digits (3 hold a 32-bit key),
    skipping digits that all keys share."""
    cdef Py_ssize_t j, d, b, i
    cdef int64_t vi
    cdef uint64_t vk
    cdef int64_t *i_src = idx
    cdef int64_t *i_dst = tmp_i
    cdef int64_t *i_swap
    cdef uint64_t *k_src = key
    cdef uint64_t *k_dst = tmp_k
    cdef uint64_t *k_swap
    if n <= 64:
        for i in range(1, n):
            vi = idx[i]
            vk = key[i]
            j = i
            while j > 0 and vk < key[j - 1]:
                idx[j] = idx[j - 1]
                key[j] = key[j - 1]
                j -= 1
            idx[j] = vi
            key[j] = vk
        return
    memset(counts, 0, digits * 2049 * sizeof(int64_t))
    for j in range(n):
        for d in range(digits):
            counts[d * 2049 + ((key[j] >> (11 * d)) & 0x7FF) + 1] += 1
    for d in range(digits):
        if counts[d * 2049 + 1 + ((key[0] >> (11 * d)) & 0x7FF)] == n:
            continue  # every key has this digit: the pass would not move anything
        for b in range(2048):
            counts[d * 2049 + b + 1] += counts[d * 2049 + b]
        for j in range(n):
            b = d * 2049 + ((k_src[j] >> (11 * d)) & 0x7FF)
            k_dst[counts[b]] = k_src[j]
            i_dst[counts[b]] = i_src[j]
            counts[b] += 1
        k_swap = k_src
        k_src = k_dst
        k_dst = k_swap
        i_swap = i_src
        i_src = i_dst
        i_dst = i_swap
    if i_src != idx:
        memcpy(idx, i_src, n * sizeof(int64_t))


def sort_segments(int64_t[::1] order, const double[::1] score, const int64_t[::1] starts,
                  int nthreads):
    """Sort each ``order[starts[s]:starts[s+1]]`` in place by descending ``score[order[j]]``,
    stably, NaN last: numpy's ``argsort(-score, kind="mergesort")`` per segment."""
    cdef Py_ssize_t n = order.shape[0], nseg = starts.shape[0] - 1, s, j, lo, hi, longest = 1
    cdef bint narrow = True  # every score a finite float32 value: 32-bit keys, fewer passes
    cdef double x
    if n < 2:
        return
    with nogil:
        for j in range(n):
            x = score[order[j]]
            if <double> (<float> x) != x:
                narrow = False
                break
    for s in range(nseg):
        longest = max(longest, starts[s + 1] - starts[s])
    nthreads = max(1, nthreads)
    keys_arr = np.empty((nthreads, 2 * longest), np.uint64)
    tmp_arr = np.empty((nthreads, longest), np.int64)
    counts_arr = np.empty((nthreads, 6 * 2049), np.int64)
    cdef uint64_t[:, ::1] keys = keys_arr
    cdef int64_t[:, ::1] tmp = tmp_arr, counts = counts_arr
    cdef int tid
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        for s in prange(nseg, schedule="dynamic", chunksize=256):
            lo = starts[s]
            hi = starts[s + 1]
            if hi - lo < 2:
                continue
            for j in range(lo, hi):
                keys[tid, j - lo] = (_sort_key32(score[order[j]]) if narrow
                                     else _sort_key64(score[order[j]]))
            _sort_desc(&order[lo], &keys[tid, 0], &tmp[tid, 0], &keys[tid, longest],
                       &counts[tid, 0], hi - lo, 3 if narrow else 6)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def match(const int64_t[::1] d_start, const int64_t[::1] d_end, const int64_t[::1] g_start,
          const int64_t[::1] g_end, const double[:, ::1] dt_box, const double[::1] dt_area,
          const int64_t[::1] dt_id, const double[:, ::1] gt_box, const double[::1] gt_area,
          const uint8_t[::1] gt_crowd, const uint8_t[::1] gt_ignore, const int64_t[::1] gt_id,
          const double[:, ::1] area_rng, const double[::1] best_thr, uint64_t[:, :, ::1] state,
          int nthreads):
    """pycocotools' evaluateImg for every group (image, category), every area range and every
    IoU threshold. For detection j and area range a, word ``state[j, a, t // 32]`` holds bit
    t % 32 set for "true positive at threshold t" and bit 32 + t % 32 for "false positive";
    neither: ignored.

    Detections and ground truth come in group order: group s holds detections
    ``d_start[s]:d_end[s]`` (sorted by score, cut to maxDets[-1]) and ground truth
    ``g_start[s]:g_end[s]`` (in pycocotools' order). ``gt_ignore``: the ignore flag before area
    ranges (iscrowd). ``best_thr[t]`` = min(iouThrs[t], 1 - 1e-10). A group's IoU matrix is
    computed once; area ranges whose ground-truth ignore flags equal an earlier range's reuse
    its matching.
    """
    cdef Py_ssize_t nseg = d_start.shape[0], s, max_d = 1, max_g = 1, max_dg = 1
    cdef int A = area_rng.shape[0], T = best_thr.shape[0]
    for s in range(nseg):
        max_d = max(max_d, d_end[s] - d_start[s])
        max_g = max(max_g, g_end[s] - g_start[s])
        max_dg = max(max_dg, (d_end[s] - d_start[s]) * (g_end[s] - g_start[s]))
    cdef double lowest = min(best_thr) if T else 0.0
    nthreads = max(1, nthreads)
    iou_arr = np.empty((nthreads, max_dg), np.float64)
    gtm_arr = np.empty((nthreads, max(1, T) * max_g), np.int64)
    cand_start_arr = np.empty((nthreads, max_d + 1), np.int64)
    cand_arr = np.empty((nthreads, max_dg), np.int32)
    ig_arr = np.empty((nthreads, A * max_g), np.uint8)
    matched_arr = np.empty((nthreads, A * T * max_d), np.int32)
    cdef double[:, ::1] iou = iou_arr
    cdef int64_t[:, ::1] gtm = gtm_arr, cand_start = cand_start_arr
    cdef int32_t[:, ::1] cand = cand_arr, matched = matched_arr
    cdef uint8_t[:, ::1] ig = ig_arr
    cdef int tid
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        for s in prange(nseg, schedule="dynamic", chunksize=64):
            _match_group(d_start[s], d_end[s] - d_start[s], g_start[s], g_end[s] - g_start[s],
                         dt_box, dt_area, dt_id, gt_box, gt_area, gt_crowd, gt_ignore, gt_id,
                         area_rng, best_thr, lowest, state, &iou[tid, 0], &gtm[tid, 0],
                         &cand_start[tid, 0], &cand[tid, 0], &ig[tid, 0], &matched[tid, 0])


cdef inline uint64_t _low_bits(Py_ssize_t n) noexcept nogil:
    """The n lowest bits set (all 32 for n >= 32)."""
    return 0xFFFFFFFFULL if n >= 32 else (((<uint64_t> 1) << n) - 1)


cdef inline void _unmatched(uint64_t *out, double area, double lo, double hi,
                            int T) noexcept nogil:
    """State words of a detection that matches nothing: ignored outside the area range, else
    a false positive at every threshold."""
    cdef int t
    cdef bint outside = area < lo or area > hi
    for t in range(0, T, 32):
        out[t // 32] = 0 if outside else (_low_bits(T - t) << 32)


cdef void _match_group(Py_ssize_t d0, Py_ssize_t D, Py_ssize_t g0, Py_ssize_t G,
                       const double[:, ::1] dt_box, const double[::1] dt_area,
                       const int64_t[::1] dt_id, const double[:, ::1] gt_box,
                       const double[::1] gt_area, const uint8_t[::1] gt_crowd,
                       const uint8_t[::1] gt_ignore, const int64_t[::1] gt_id,
                       const double[:, ::1] area_rng, const double[::1] best_thr, double lowest,
                       uint64_t[:, :, ::1] state, double *iou, int64_t *gtm, int64_t *cand_start,
                       int32_t *cand, uint8_t *ig, int32_t *matched) noexcept nogil:
    cdef Py_ssize_t d, g, c, c0, c1, n_cand
    cdef int A = area_rng.shape[0], T = best_thr.shape[0], a, a2, src, t, j
    cdef int64_t m
    cdef double lo, hi, best, v, area
    cdef bint outside
    cdef uint8_t st
    cdef uint64_t *out
    cdef uint8_t *iga
    cdef const uint8_t *crowd = &gt_crowd[g0]
    cdef const double *gt_ar = &gt_area[g0]
    cdef int32_t *mt
    if D == 0:
        return
    if G == 0:  # no ground truth: nothing matches
        for d in range(D):
            for a in range(A):
                _unmatched(&state[d0 + d, a, 0], dt_area[d0 + d], area_rng[a, 0],
                           area_rng[a, 1], T)
        return
    if fi_group_iou(&dt_box[d0, 0], D, &gt_box[g0, 0], crowd, G, lowest, iou, cand, cand_start):
        # a NaN IoU: every ground truth is a candidate (see fi_group_iou)
        for d in range(D):
            cand_start[d] = d * G
            for g in range(G):
                cand[d * G + g] = <int32_t> g
        cand_start[D] = D * G
    n_cand = cand_start[D]
    for a in range(A):
        lo = area_rng[a, 0]
        hi = area_rng[a, 1]
        if n_cand == 0:  # no detection can match: no matching to run
            for d in range(D):
                _unmatched(&state[d0 + d, a, 0], dt_area[d0 + d], lo, hi, T)
            continue
        iga = ig + a * G
        for g in range(G):
            iga[g] = gt_ignore[g0 + g] or gt_ar[g] < lo or gt_ar[g] > hi
        src = a
        for a2 in range(a):
            if memcmp(ig + a2 * G, iga, G) == 0:
                src = a2
                break
        if src != a:  # same ignore flags as an earlier range: the same matching
            memcpy(matched + a * T * D, matched + src * T * D, T * D * sizeof(int32_t))
        else:
            # Detection by detection (in score order), threshold by threshold: each threshold
            # has its own matched flags gtm[t * G + g], so the order of the loops is free.
            for g in range(T * G):
                gtm[g] = 0
            for d in range(D):
                c0 = cand_start[d]
                c1 = cand_start[d + 1]
                if c0 == c1:
                    continue  # no candidate: unmatched at every threshold (written below)
                for t in range(T):
                    m = -1
                    best = best_thr[t]
                    # pycocotools scans the ground truth sorted by ignore flag (stable): the
                    # regular ones, then the ignored ones, where it stops once it holds a
                    # regular match. Candidates are in ground-truth order: two passes.
                    for j in range(2):
                        if j == 1 and m > -1:
                            break
                        for c in range(c0, c1):
                            g = cand[c]
                            if iga[g] != j:
                                continue
                            # already matched (to a detection id > 0) and not a crowd: next
                            if gtm[t * G + g] > 0 and not crowd[g]:
                                continue
                            v = iou[d * G + g]
                            if v < best:
                                continue
                            best = v
                            m = g
                    matched[(a * T + t) * D + d] = <int32_t> m
                    if m >= 0:
                        gtm[t * G + m] = dt_id[d0 + d]
        for d in range(D):
            out = &state[d0 + d, a, 0]
            if cand_start[d] == cand_start[d + 1]:  # matched nothing at any threshold
                _unmatched(out, dt_area[d0 + d], lo, hi, T)
                continue
            area = dt_area[d0 + d]
            outside = area < lo or area > hi
            for t in range(0, T, 32):
                out[t // 32] = 0
            for t in range(T):
                m = matched[(a * T + t) * D + d]
                if m < 0:
                    st = IGN if outside else FP
                elif gt_id[g0 + m] == 0:  # pycocotools reads gt id 0 as "unmatched"
                    st = IGN if (iga[m] or outside) else FP
                else:
                    st = IGN if iga[m] else TP
                if st != IGN:
                    out[t // 32] |= (<uint64_t> 1) << (t % 32 + (32 if st == FP else 0))


# ---------------------------------------------------------------------------------------------
# Accumulation
# ---------------------------------------------------------------------------------------------


def count_regular_gt(const int64_t[::1] gt_row, const int32_t[::1] gt_k, const int32_t[::1] gt_i,
                     const double[::1] gt_area, const uint8_t[::1] gt_ignore,
                     const double[:, ::1] area_rng, const uint8_t[::1] image_mask,
                     Py_ssize_t n_cats):
    """npig[k, a]: ground truth of category k not ignored in area range a (images in mask)."""
    cdef Py_ssize_t A = area_rng.shape[0], j, a
    cdef int64_t row
    out = np.zeros((n_cats, A), np.int64)
    cdef int64_t[:, ::1] npig = out
    with nogil:
        for j in range(gt_row.shape[0]):
            row = gt_row[j]
            if not image_mask[gt_i[row]] or gt_ignore[row]:
                continue
            for a in range(A):
                if not (gt_area[row] < area_rng[a, 0] or gt_area[row] > area_rng[a, 1]):
                    npig[gt_k[row], a] += 1
    return out


def accumulate(const int64_t[::1] cat_start, const int64_t[::1] grp, const uint8_t[::1] m_first,
               const double[::1] score, const int32_t[::1] image,
               const uint64_t[:, :, ::1] state, const int64_t[:, ::1] npig,
               const int64_t[::1] k_map, const int64_t[::1] a_map, Py_ssize_t n_m,
               const double[::1] rec_thrs, const uint8_t[::1] image_mask,
               double[:, :, :, :, ::1] precision, double[:, :, :, ::1] recall,
               double[:, :, :, :, ::1] scores, int nthreads, bint with_scores=True):
    """pycocotools' accumulate for output cells (k, a, t, m): category ``k_map[k]``, area range
    ``a_map[a]``, IoU threshold t, the m-th of ``n_m`` maxDets (ascending). The outputs are
    cell-major, ``precision[k, a, t, m, r]``, ``recall[k, a, t, m]``: each cell writes one
    contiguous block (the caller transposes to pycocotools' [T, R, K, A, M]).

    Detections of category c are ``cat_start[c]:cat_start[c+1]`` in pycocotools' concatenated
    order (score descending, then image, then rank in image); for each: its row ``grp`` in
    ``state`` (true/false positive bits, see :func:`match`), ``m_first`` (the first m whose
    maxDets covers its rank in its image), score and image position. Only cells with ground
    truth are written; the caller fills the arrays with -1 first. ``image_mask`` limits the
    images. ``with_scores`` False: ``scores`` is not written (any array will do).
    """
    cdef Py_ssize_t K = k_map.shape[0], A = a_map.shape[0], M = n_m, cell, c, longest = 1
    for c in range(cat_start.shape[0] - 1):
        longest = max(longest, cat_start[c + 1] - cat_start[c])
    cdef bint masked = not np.all(np.asarray(image_mask))
    nthreads = max(1, nthreads)
    # per thread: the counted detections (position, m_first, tp bits, fp bits), and the true
    # positives of one threshold (false positives before it per maxDets entry, position)
    list_j_arr = np.empty((nthreads, longest), np.int64)
    list_bits_arr = np.empty((nthreads, 2 * longest), np.uint64)
    ev_fp_arr = np.empty((nthreads, M * longest), np.int64)
    ev_j_arr = np.empty((nthreads, M * longest), np.int64)
    env_arr = np.empty((nthreads, longest), np.float64)
    counters_arr = np.empty((nthreads, 4 * M + 1), np.int64)
    cdef int64_t[:, ::1] list_j = list_j_arr, ev_fp = ev_fp_arr, ev_j = ev_j_arr
    cdef int64_t[:, ::1] counters = counters_arr
    cdef uint64_t[:, ::1] list_bits = list_bits_arr
    cdef double[:, ::1] env = env_arr
    cdef int tid
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        for cell in prange(K * A, schedule="dynamic", chunksize=1):
            _accumulate_cell(cell // A, cell % A, M, longest, masked, cat_start, grp, m_first,
                             score, image, state, npig, k_map, a_map, rec_thrs, image_mask,
                             precision, recall, scores, with_scores, &list_j[tid, 0],
                             &list_bits[tid, 0], &ev_fp[tid, 0], &ev_j[tid, 0], &env[tid, 0],
                             &counters[tid, 0])


cdef void _accumulate_cell(Py_ssize_t k, Py_ssize_t a, Py_ssize_t M, Py_ssize_t longest,
                           bint masked, const int64_t[::1] cat_start, const int64_t[::1] grp,
                           const uint8_t[::1] m_first, const double[::1] score,
                           const int32_t[::1] image, const uint64_t[:, :, ::1] state,
                           const int64_t[:, ::1] npig, const int64_t[::1] k_map,
                           const int64_t[::1] a_map, const double[::1] rec_thrs,
                           const uint8_t[::1] image_mask, double[:, :, :, :, ::1] precision,
                           double[:, :, :, ::1] recall, double[:, :, :, :, ::1] scores,
                           bint with_scores, int64_t *list_j, uint64_t *list_bits,
                           int64_t *ev_fp, int64_t *ev_j, double *env,
                           int64_t *counters) noexcept nogil:
    cdef Py_ssize_t c = k_map[k], a0 = a_map[a], T = precision.shape[2], n, e, j, m, t, blk
    cdef Py_ssize_t nt
    cdef int64_t n_gt = npig[c, a0], f
    cdef int64_t *first = counters  # per maxDets entry: its first detection (-1: none)
    cdef int64_t *tp = counters + M
    cdef int64_t *fp_from = counters + 2 * M  # false positives by m_first (prefix-summed on use)
    cdef int64_t *fp = counters + 3 * M
    cdef uint64_t word, bit
    cdef uint8_t mf
    if n_gt == 0:  # no ground truth (or no evaluated image): stays -1
        return
    for m in range(M):
        first[m] = -1
    for j in range(cat_start[c], cat_start[c + 1]):  # usually the first one: rank 0 in its image
        if masked and not image_mask[image[j]]:
            continue
        for m in range(m_first[j], M):
            if first[m] < 0:
                first[m] = j
        if m_first[j] == 0:
            break
    for blk in range(state.shape[2]):  # thresholds in blocks of 32, one bit each
        nt = min(32, T - 32 * blk)
        if nt <= 0:
            break
        n = 0  # the detections counted (true or false positive) somewhere in the block
        for j in range(cat_start[c], cat_start[c + 1]):
            if masked and not image_mask[image[j]]:
                continue
            word = state[grp[j], a0, blk]
            if word and m_first[j] < M:
                list_j[n] = j
                list_bits[2 * n] = word & 0xFFFFFFFFULL
                list_bits[2 * n + 1] = word >> 32
                n += 1
        for t in range(nt):
            bit = (<uint64_t> 1) << t
            for m in range(M + 1):
                fp_from[m] = 0
            for m in range(M):
                tp[m] = 0
            for e in range(n):
                j = list_j[e]
                mf = m_first[j]
                if list_bits[2 * e] & bit:
                    f = 0
                    for m in range(M):
                        f += fp_from[m]  # false positives so far within maxDets[m]
                        if m >= mf:
                            ev_fp[m * longest + tp[m]] = f
                            ev_j[m * longest + tp[m]] = j
                            tp[m] += 1
                elif list_bits[2 * e + 1] & bit:
                    fp_from[mf] += 1
            for m in range(M):
                _finish(32 * blk + t, k, a, m, first[m], tp[m], n_gt, &ev_fp[m * longest],
                        &ev_j[m * longest], env, score, state, grp, a0, rec_thrs, precision,
                        recall, scores, with_scores)


cdef void _finish(Py_ssize_t t, Py_ssize_t k, Py_ssize_t a, Py_ssize_t m, int64_t first,
                  int64_t ntp, int64_t n_gt, const int64_t *ev_fp, const int64_t *ev_j,
                  double *env, const double[::1] score, const uint64_t[:, :, ::1] state,
                  const int64_t[::1] grp, Py_ssize_t a0, const double[::1] rec_thrs,
                  double[:, :, :, :, ::1] precision, double[:, :, :, ::1] recall,
                  double[:, :, :, :, ::1] scores, bint with_scores) noexcept nogil:
    """Recall, and precision and score at each recall threshold, from the true positives
    (each with the false positives before it) of one cell."""
    cdef Py_ssize_t R = rec_thrs.shape[0], e, r, filled = 0
    cdef double ngt = <double> n_gt, rc0, thr, prev_thr = -1.0, q, ss, p_e
    cdef bint first_tp
    recall[k, a, t, m] = (<double> ntp) / ngt if first >= 0 else 0.0
    if first >= 0:
        # Precision at each true positive, then its running max from the right. Between true
        # positives precision only falls, so the envelope at a true positive (or at index 0)
        # is all that np.searchsorted(rc, recThrs, "left") can land on.
        for e in range(ntp - 1, -1, -1):
            p_e = fi_precision(<double> (e + 1), <double> ev_fp[e])
            env[e] = p_e if (e == ntp - 1 or p_e > env[e + 1]) else env[e + 1]
        # recall at index 0: 1/npig when the first detection is a true positive
        first_tp = (state[grp[first], a0, t // 32] >> (t % 32)) & 1
        rc0 = (1.0 if first_tp else 0.0) / ngt
        e = 0
        for r in range(R):
            thr = rec_thrs[r]
            if not _before(rc0, thr):  # index 0: the envelope over all, the first score
                q = env[0] if ntp > 0 else 0.0
                ss = score[first]
            else:
                if thr < prev_thr:
                    e = 0
                while e < ntp and _before((<double> (e + 1)) / ngt, thr):
                    e += 1
                if e == ntp:  # beyond the recall reached: pycocotools stops filling here
                    break
                q = env[e]
                ss = score[ev_j[e]]
                prev_thr = thr
            precision[k, a, t, m, r] = q
            if with_scores:
                scores[k, a, t, m, r] = ss
            filled = r + 1
    for r in range(filled, R):
        precision[k, a, t, m, r] = 0.0
        if with_scores:
            scores[k, a, t, m, r] = 0.0
