# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython kernels of the masks family: pycocotools' RLE on packed arrays of many masks.

Masks travel packed (see ``_rles.RLEs``): ``counts`` (uint32, the runs of every mask one after
another) and ``offsets`` (int64 [n + 1]). The per-mask work lives in ``_rle.h``; here are the
loops over masks (on fastiou's pool, ``parallel_for``: each task runs one ``noexcept nogil``
function per item of its chunk) and their allocation. Callers validate first (``_rles.py``): runs
summing to each mask's h * w, h * w < 2^32, indices in range; nothing here checks bounds.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.math cimport fabs, isfinite, trunc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
cimport numpy as cnp

import numpy as np

from fastiou._core._pool cimport grain_for, parallel_for, task_fn

cnp.import_array()

cdef extern from "Python.h":
    int PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)

cdef extern from "_rle.h" nogil:
    int64_t fi_encode_alloc(const uint8_t *px, int64_t n, uint32_t **out)
    void fi_decode(const uint32_t *runs, int64_t m, uint8_t *px)
    uint32_t fi_area(const uint32_t *runs, int64_t m)
    void fi_bbox(const uint32_t *runs, int64_t m, uint32_t h, uint32_t w, double *bb)
    int64_t fi_to_string(const uint32_t *runs, int64_t m, char *s)
    int64_t fi_string_values(const uint8_t *s, int64_t n)
    int fi_from_string(const uint8_t *s, int64_t n, uint32_t *runs, int64_t values)
    int64_t fi_intervals(const uint32_t *runs, int64_t m, uint32_t h, uint32_t *starts,
                         uint32_t *ends)
    int64_t fi_column_index(const uint32_t *starts, const uint32_t *ends, int64_t n, uint32_t h,
                            uint32_t x0, int64_t ncols, int32_t *first, int32_t *y0, int32_t *y1,
                            int32_t *y2, int32_t *y3, int32_t *multi)
    ctypedef struct fi_mask:
        const uint32_t *starts
        const uint32_t *ends
        const int32_t *first
        const int32_t *y0
        const int32_t *y1
        const int32_t *y2
        const int32_t *y3
        const int32_t *multi
        int64_t x0, ncols, nmulti
    uint32_t fi_intersection(const fi_mask *a, const fi_mask *b)
    uint32_t fi_runs_intersection(const uint32_t *a, int64_t ma, const uint32_t *b, int64_t mb)
    double fi_box_iou(const double *d, const double *g, int crowd)
    int fi_boxes_overlap(const double *d, const double *g)
    int64_t fi_merge2(const uint32_t *a, int64_t ma, const uint32_t *b, int64_t mb,
                      int intersect, uint32_t *out)
    int64_t fi_poly_points(const int32_t *x5, const int32_t *y5, int64_t k)
    int64_t fi_polygon(const int32_t *x5, const int32_t *y5, int64_t k, uint64_t h, uint64_t w,
                       int64_t points, int32_t *cols, uint32_t *cuts, uint32_t *runs,
                       uint32_t *buckets)
    int FI_BAD_CHAR, FI_TRUNCATED, FI_TOO_LONG, FI_OUT_OF_RANGE

STRING_ERRORS = {
    FI_BAD_CHAR: "a character outside pycocotools' alphabet '0'..'o'",
    FI_TRUNCATED: "the string ends inside a value",
    FI_TOO_LONG: "a value longer than 7 characters (more than 32 bits)",
    FI_OUT_OF_RANGE: "a run outside 0..2^32-1",
}


cdef inline void _run(task_fn fn, void *ctx, int64_t n, int threads) noexcept nogil:
    # Items (masks, rows) vary in cost: small chunks, claimed as threads come free.
    parallel_for(fn, ctx, n, grain_for(n, threads, 1), threads)


def _offsets(const int64_t[::1] lengths):
    """[0, cumulative sums of lengths], int64 [n + 1]; None when a length is negative (a malloc
    failed)."""
    cdef Py_ssize_t n = lengths.shape[0], i
    out = np.empty(n + 1, np.int64)
    cdef int64_t[::1] at = out
    at[0] = 0
    for i in range(n):
        if lengths[i] < 0:
            return None
        at[i + 1] = at[i] + lengths[i]
    return out


# ---- dense -> runs ----------------------------------------------------------------------------

cdef tuple _joined(uint32_t **parts, const int64_t[::1] lengths, str what):
    # Every item's malloc'd runs (length -1: its malloc failed), one after another: the packed
    # (counts, offsets).
    cdef Py_ssize_t n = lengths.shape[0], i
    offsets = _offsets(lengths)
    if offsets is None:
        raise MemoryError(f"not enough memory to {what}")
    counts = np.empty(offsets[n], np.uint32)
    cdef uint32_t[::1] runs = counts
    cdef const int64_t[::1] at = offsets
    with nogil:
        for i in range(n):
            if lengths[i] > 0:
                memcpy(&runs[at[i]], parts[i], lengths[i] * sizeof(uint32_t))
    return counts, offsets

cdef struct Encode:
    const uint8_t *px
    int64_t pixels
    uint32_t **parts    # per mask: its malloc'd runs
    int64_t *lengths    # per mask: how many, or -1 when malloc failed

cdef void _encode_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Encode *e = <Encode *>ctx
    cdef int64_t i
    for i in range(begin, end):
        e.lengths[i] = fi_encode_alloc(e.px + i * e.pixels, e.pixels, &e.parts[i])

def encode(const uint8_t[:, ::1] masks, int threads):
    """Runs of each row of ``masks`` [N, P] (P pixels of one mask in column-major order)."""
    cdef Py_ssize_t n = masks.shape[0], i
    if masks.shape[1] == 0:  # an empty mask is the one run [0], as pycocotools writes it
        return np.zeros(n, np.uint32), np.arange(n + 1, dtype=np.int64)
    lengths_array = np.zeros(n, np.int64)
    cdef int64_t[::1] lengths = lengths_array
    cdef uint32_t **parts = <uint32_t **>calloc(n + 1, sizeof(uint32_t *))
    if parts == NULL:
        raise MemoryError()
    cdef Encode e
    e.px = &masks[0, 0] if n else NULL
    e.pixels = masks.shape[1]
    e.parts = parts
    e.lengths = &lengths[0] if n else NULL
    try:
        with nogil:
            _run(_encode_task, &e, n, threads)
        return _joined(parts, lengths, "encode the masks")
    finally:
        for i in range(n):
            free(parts[i])
        free(parts)


# ---- runs -> dense ----------------------------------------------------------------------------

cdef struct Packed:
    const uint32_t *counts
    const int64_t *offsets

cdef inline const uint32_t *_runs(const Packed *p, Py_ssize_t i) noexcept nogil:
    return p.counts + p.offsets[i]

cdef inline int64_t _len(const Packed *p, Py_ssize_t i) noexcept nogil:
    return p.offsets[i + 1] - p.offsets[i]

cdef Packed _packed(const uint32_t[::1] counts, const int64_t[::1] offsets):
    cdef Packed p
    p.counts = &counts[0] if counts.shape[0] else NULL
    p.offsets = &offsets[0]
    return p

cdef struct Decode:
    Packed rles
    uint8_t *out
    int64_t pixels

cdef void _decode_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Decode *d = <Decode *>ctx
    cdef int64_t i
    for i in range(begin, end):
        fi_decode(_runs(&d.rles, i), _len(&d.rles, i), d.out + i * d.pixels)

def decode(const uint32_t[::1] counts, const int64_t[::1] offsets, uint8_t[:, ::1] out,
           int threads):
    """Write mask i into row i of ``out`` [N, P] (column-major pixels)."""
    cdef Py_ssize_t n = out.shape[0], i
    if n == 0 or out.shape[1] == 0:
        return
    cdef Decode d
    d.rles = _packed(counts, offsets)
    d.out = &out[0, 0]
    d.pixels = out.shape[1]
    with nogil:
        _run(_decode_task, &d, n, threads)


# ---- per-mask numbers -------------------------------------------------------------------------

def other_size(const int64_t[::1] heights, const int64_t[::1] widths):
    """The first mask whose size differs from mask 0's, or -1."""
    cdef Py_ssize_t i
    for i in range(1, heights.shape[0]):
        if heights[i] != heights[0] or widths[i] != widths[0]:
            return i
    return -1

def run_sums(const uint32_t[::1] counts, const int64_t[::1] offsets):
    """The sum of each mask's runs (its pixel count when valid), uint64."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i, j
    sums = np.zeros(n, np.uint64)
    cdef uint64_t[::1] s = sums
    for i in range(n):
        for j in range(offsets[i], offsets[i + 1]):
            s[i] += counts[j]
    return sums

def take(const uint32_t[::1] counts, const int64_t[::1] offsets, const int64_t[::1] index):
    """The runs of the masks at ``index`` (checked in range by the caller), one after another:
    (counts, offsets)."""
    cdef Py_ssize_t n = index.shape[0], i
    out_offsets = np.empty(n + 1, np.int64)
    cdef int64_t[::1] at = out_offsets
    at[0] = 0
    for i in range(n):
        at[i + 1] = at[i] + offsets[index[i] + 1] - offsets[index[i]]
    out = np.empty(at[n], np.uint32)
    cdef uint32_t[::1] runs = out
    with nogil:
        for i in range(n):
            if at[i + 1] > at[i]:
                memcpy(&runs[at[i]], &counts[offsets[index[i]]],
                       (at[i + 1] - at[i]) * sizeof(uint32_t))
    return out, out_offsets

cdef struct Measures:
    Packed rles
    const int64_t *heights
    const int64_t *widths
    uint32_t *areas         # NULL: not asked for
    double *boxes           # NULL: not asked for

cdef void _measure_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Measures *q = <Measures *>ctx
    cdef int64_t i
    for i in range(begin, end):
        if q.areas != NULL:
            q.areas[i] = fi_area(_runs(&q.rles, i), _len(&q.rles, i))
        if q.boxes != NULL:
            fi_bbox(_runs(&q.rles, i), _len(&q.rles, i), <uint32_t>q.heights[i],
                    <uint32_t>q.widths[i], &q.boxes[4 * i])

cdef void _measure(Measures *q, const uint32_t[::1] counts, const int64_t[::1] offsets,
                   int threads):
    cdef Py_ssize_t n = offsets.shape[0] - 1
    q.rles = _packed(counts, offsets)
    if n == 0:
        return
    with nogil:
        _run(_measure_task, q, n, threads)

def areas(const uint32_t[::1] counts, const int64_t[::1] offsets, int threads=1):
    """pycocotools' area of each mask, uint32."""
    out = np.empty(offsets.shape[0] - 1, np.uint32)
    cdef uint32_t[::1] a = out
    cdef Measures q
    q.areas = &a[0] if a.shape[0] else NULL
    q.boxes = NULL
    _measure(&q, counts, offsets, threads)
    return out

def boxes(const uint32_t[::1] counts, const int64_t[::1] offsets, const int64_t[::1] heights,
          const int64_t[::1] widths, int threads=1):
    """pycocotools' toBbox of each mask, float64 [N, 4] xywh."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    if heights.shape[0] != n or widths.shape[0] != n:
        raise ValueError("heights and widths need one entry per mask")
    out = np.empty((n, 4), np.float64)
    cdef double[:, ::1] bb = out
    cdef Measures q
    q.areas = NULL
    q.boxes = &bb[0, 0] if n else NULL
    q.heights = &heights[0] if n else NULL
    q.widths = &widths[0] if n else NULL
    _measure(&q, counts, offsets, threads)
    return out


# ---- the compressed strings -------------------------------------------------------------------

cdef struct Strings:
    Packed rles
    char *chars          # NULL in the sizing pass
    const int64_t *at
    int64_t *lengths

cdef void _to_string_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Strings *s = <Strings *>ctx
    cdef char *dst
    cdef int64_t i, k
    for i in range(begin, end):
        dst = s.chars + s.at[i] if s.chars != NULL else NULL
        k = fi_to_string(_runs(&s.rles, i), _len(&s.rles, i), dst)
        if dst == NULL:
            s.lengths[i] = k

cdef Strings _string_lengths(const uint32_t[::1] counts, const int64_t[::1] offsets,
                            int64_t[::1] lengths, int threads):
    """The sizing pass: each mask's string length into ``lengths``."""
    cdef Strings s
    s.rles = _packed(counts, offsets)
    s.chars = NULL
    s.lengths = &lengths[0] if lengths.shape[0] else NULL
    with nogil:
        _run(_to_string_task, &s, lengths.shape[0], threads)
    return s

def to_strings(const uint32_t[::1] counts, const int64_t[::1] offsets, int threads):
    """The compressed string of every mask, concatenated: (uint8 chars, int64 offsets)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef int64_t[::1] lengths = np.empty(n, np.int64)
    cdef Strings s = _string_lengths(counts, offsets, lengths, threads)
    at_array = _offsets(lengths)
    chars = np.empty(at_array[n], np.uint8)
    cdef uint8_t[::1] c = chars
    cdef const int64_t[::1] at = at_array
    if c.shape[0]:
        s.chars = <char *>&c[0]
        s.at = &at[0]
        with nogil:
            _run(_to_string_task, &s, n, threads)
    return chars, at_array

cdef struct Parse:
    const uint8_t *chars
    const uint8_t **strings  # or each string's own characters (chars unused)
    const int64_t *char_at
    uint32_t *runs       # NULL: count string i's values into status[i] (or an FI_ error); else
    const int64_t *at    # decode those of a string counted without error to runs + at[i]
    int64_t *status      # (an FI_ error, if one is found then)

cdef void _parse_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Parse *p = <Parse *>ctx
    cdef const uint8_t *s
    cdef int64_t i, n
    cdef int err
    for i in range(begin, end):
        s = p.strings[i] if p.strings != NULL else p.chars + p.char_at[i]
        n = p.char_at[i + 1] - p.char_at[i]
        if p.runs == NULL:
            p.status[i] = fi_string_values(s, n)
        elif p.status[i] > 0:
            err = fi_from_string(s, n, p.runs + p.at[i], p.status[i])
            if err < 0:
                p.status[i] = err

cdef tuple _parse(Parse *p, Py_ssize_t n, int threads):
    """Two passes over the strings of ``p``: their values counted, then decoded straight into
    counts of that size (no scratch of one value per character: its pages, and the holes it
    would leave in the heap, are the peak memory of loading results). (counts, offsets,
    status): status[i] < 0 is string i's FI_ error (the results are then not to be used)."""
    status_array = np.empty(n, np.int64)
    offsets = np.empty(n + 1, np.int64)
    cdef int64_t[::1] status = status_array, at = offsets
    cdef Py_ssize_t i
    p.runs = NULL
    p.status = &status[0] if n else NULL
    with nogil:
        _run(_parse_task, p, n, threads)
        at[0] = 0
        for i in range(n):
            at[i + 1] = at[i] + max(status[i], 0)
    counts = np.empty(at[n], np.uint32)
    cdef uint32_t[::1] runs = counts
    if at[n]:
        p.runs = &runs[0]
        p.at = &at[0]
        with nogil:
            _run(_parse_task, p, n, threads)
    return counts, offsets, status_array

def from_strings(const uint8_t[::1] chars, const int64_t[::1] char_offsets, int threads):
    """Runs of each compressed string (``chars[char_offsets[i]:char_offsets[i + 1]]``); a
    ValueError naming the first corrupt one."""
    cdef Parse p
    p.chars = &chars[0] if chars.shape[0] else NULL
    p.strings = NULL
    p.char_at = &char_offsets[0]
    counts, offsets, status = _parse(&p, char_offsets.shape[0] - 1, threads)
    bad = np.flatnonzero(status < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"mask {i}: corrupt compressed RLE string: {STRING_ERRORS[int(status[i])]}"
        )
    return counts, offsets


cdef int _chars(object c, const uint8_t **s, Py_ssize_t *n):
    """The characters of a compressed string (bytes, or an ASCII str): 0, else -1."""
    if type(c) is bytes:
        s[0] = <const uint8_t *>PyBytes_AS_STRING(c)
        n[0] = len(<bytes>c)
        return 0
    if type(c) is str and PyUnicode_IS_ASCII(c):
        s[0] = <const uint8_t *>PyUnicode_DATA(c)
        n[0] = len(<str>c)
        return 0
    return -1

cdef object _KEY_SIZE = "size", _KEY_COUNTS = "counts"

def pack_coco(list objs, int threads=1, int64_t parallel_chars=0):
    """The common case of ``RLEs.from_coco`` in one pass: a list of dicts whose "size" is a list
    or tuple of two Python ints and whose "counts" is a compressed string (bytes or ASCII str),
    every string well formed and every mask's runs summing to its h * w. Returns (counts,
    offsets, heights, widths), or None for anything else: the Python path then runs and names
    the problem. The strings are parsed on ``threads`` threads from ``parallel_chars`` on."""
    cdef Py_ssize_t n = len(objs), i, total = 0
    cdef PyObject *size
    cdef PyObject *c
    cdef object h, w
    heights_array = np.empty(n, np.int64)
    widths_array = np.empty(n, np.int64)
    char_at_array = np.empty(n + 1, np.int64)
    cdef int64_t[::1] heights = heights_array, widths = widths_array, char_at = char_at_array
    keep = [None] * n  # the strings stay alive (and unchanged) while the parse runs without the GIL
    cdef const uint8_t **chars = <const uint8_t **>malloc(sizeof(uint8_t *) * (n + 1))
    if chars == NULL:
        raise MemoryError()
    cdef Py_ssize_t length
    try:
        char_at[0] = 0
        for i in range(n):
            obj = objs[i]
            if type(obj) is not dict:
                return None
            size = PyDict_GetItem(obj, _KEY_SIZE)
            c = PyDict_GetItem(obj, _KEY_COUNTS)
            if size == NULL or c == NULL:
                return None
            if type(<object>size) is list or type(<object>size) is tuple:
                if len(<object>size) != 2:
                    return None
                h = (<object>size)[0]
                w = (<object>size)[1]
            else:
                return None
            if type(h) is not int or type(w) is not int or h < 0 or w < 0:
                return None
            if h * w > 0xFFFFFFFF:
                return None
            heights[i] = h
            widths[i] = w
            if _chars(<object>c, &chars[i], &length) < 0:
                return None
            keep[i] = <object>c
            total += length
            char_at[i + 1] = total
        return _parse_packed(chars, char_at, heights, widths, heights_array, widths_array,
                             threads if total >= parallel_chars else 1)
    finally:
        free(chars)

cdef object _parse_packed(const uint8_t **chars, const int64_t[::1] char_at,
                          const int64_t[::1] heights, const int64_t[::1] widths,
                          heights_array, widths_array, int threads):
    cdef Py_ssize_t n = heights.shape[0], i
    cdef Parse p
    p.chars = NULL
    p.strings = chars
    p.char_at = &char_at[0]
    counts, offsets, status_array = _parse(&p, n, threads)
    cdef const uint32_t[::1] runs = counts
    cdef const int64_t[::1] at = offsets, status = status_array
    cdef int64_t k
    cdef uint64_t total
    cdef bint bad = False
    with nogil:
        for i in range(n):  # each mask's runs summing to its h * w
            if status[i] < 0:
                bad = True
                break
            total = 0
            for k in range(at[i], at[i + 1]):
                total += runs[k]
            if total != <uint64_t>heights[i] * <uint64_t>widths[i]:
                bad = True
                break
    if bad:
        return None
    return counts, offsets, heights_array, widths_array

cdef struct ToBytes:
    Packed rles
    char **dst

cdef void _to_bytes_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef ToBytes *t = <ToBytes *>ctx
    cdef int64_t i
    for i in range(begin, end):
        fi_to_string(_runs(&t.rles, i), _len(&t.rles, i), t.dst[i])


def to_coco(const uint32_t[::1] counts, const int64_t[::1] offsets, const int64_t[::1] heights,
            const int64_t[::1] widths, int threads):
    """pycocotools' compressed RLE dicts ``{"size": [h, w], "counts": bytes}`` of every mask:
    the string lengths, then each string written straight into its bytes object."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef int64_t[::1] lengths = np.empty(n, np.int64)
    cdef Strings s = _string_lengths(counts, offsets, lengths, threads)
    out = [None] * n
    cdef char **dst = <char **>malloc(sizeof(char *) * (n + 1))
    if dst == NULL:
        raise MemoryError()
    cdef ToBytes t
    try:
        for i in range(n):
            b = PyBytes_FromStringAndSize(NULL, lengths[i])
            dst[i] = PyBytes_AS_STRING(b)
            out[i] = {"size": [heights[i], widths[i]], "counts": b}
        t.rles = s.rles
        t.dst = dst
        with nogil:  # the bytes objects are new, seen by nobody else yet
            _run(_to_bytes_task, &t, n, threads)
    finally:
        free(dst)
    return out

# ---- IoU --------------------------------------------------------------------------------------

def intervals(const uint32_t[::1] counts, const int64_t[::1] offsets,
              const int64_t[::1] heights):
    """Each mask's foreground as [start, end) pixel intervals cut at column ends, and a column
    index: (starts uint32, ends uint32, interval offsets int64 [n + 1], first int32 (per mask,
    its columns' first interval, relative), column offsets int64 [n + 1], x0 int64 [n], y0 and
    y1 int32 [2, columns] (the rows of each column's first and second interval), multi int32
    (the columns with three or more), nmulti int64 [n]); see ``fi_column_index``."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef Packed p = _packed(counts, offsets)
    at_array = np.empty(n + 1, np.int64)
    col_at_array = np.empty(n + 1, np.int64)
    x0_array = np.zeros(n, np.int64)
    cdef int64_t[::1] at = at_array, col_at = col_at_array, x0 = x0_array
    cdef int64_t found
    at[0] = 0
    with nogil:
        for i in range(n):
            at[i + 1] = at[i] + fi_intervals(_runs(&p, i), _len(&p, i), <uint32_t>heights[i],
                                             NULL, NULL)
    starts = np.empty(at[n], np.uint32)
    ends = np.empty(at[n], np.uint32)
    cdef uint32_t[::1] s = starts, e = ends
    col_at[0] = 0
    with nogil:
        for i in range(n):
            found = at[i + 1] - at[i]
            col_at[i + 1] = col_at[i]
            if found:
                fi_intervals(_runs(&p, i), _len(&p, i), <uint32_t>heights[i], &s[at[i]], &e[at[i]])
                x0[i] = s[at[i]] // heights[i]
                col_at[i + 1] += (e[at[i + 1] - 1] - 1) // heights[i] - x0[i] + 2
    first = np.empty(col_at[n], np.int32)
    y0 = np.zeros((2, col_at[n]), np.int32)  # rows 0, 1: the column's first, second interval
    y1 = np.zeros((2, col_at[n]), np.int32)
    multi = np.empty(col_at[n], np.int32)  # listed at col_at[i], nmulti[i] of them
    nmulti_array = np.zeros(n, np.int64)
    cdef int32_t[::1] f = first, fm = multi
    cdef int32_t[:, ::1] fy0 = y0, fy1 = y1
    cdef int64_t[::1] nmulti = nmulti_array
    with nogil:
        for i in range(n):
            if at[i + 1] > at[i]:
                nmulti[i] = fi_column_index(
                    &s[at[i]], &e[at[i]], at[i + 1] - at[i], <uint32_t>heights[i],
                    <uint32_t>x0[i], col_at[i + 1] - col_at[i] - 1, &f[col_at[i]],
                    &fy0[0, col_at[i]], &fy1[0, col_at[i]], &fy0[1, col_at[i]], &fy1[1, col_at[i]],
                    &fm[col_at[i]])
    return starts, ends, at_array, first, col_at_array, x0_array, y0, y1, multi, nmulti_array


cdef struct Side:
    fi_mask flat            # the packed arrays of every mask (pointers at mask 0)
    const int64_t *at
    const int64_t *nmulti
    const int64_t *col_at
    const int64_t *x0
    const uint32_t *areas
    const double *boxes
    const int64_t *heights
    const int64_t *widths
    const int64_t *index    # which mask each row (dt) / column (gt) is

cdef struct Rows:
    # iou_groups' rows: which group each is, and where its values go
    const uint8_t *crowd    # aligned with the gt index
    const int64_t *row_group
    const int64_t *row_first  # the row's position in the dt index
    const int64_t *g_start
    const int64_t *g_end
    const int64_t *d_start
    const int64_t *out_at     # where each group's D x G block starts
    double *out

cdef Rows _rows(const uint8_t[::1] crowd, const int64_t[::1] row_group,
                const int64_t[::1] row_first, const int64_t[::1] d_start,
                const int64_t[::1] g_start, const int64_t[::1] g_end, const int64_t[::1] out_at,
                double[::1] out):
    cdef Rows r
    r.crowd = &crowd[0] if crowd.shape[0] else NULL
    r.row_group = &row_group[0]
    r.row_first = &row_first[0]
    r.d_start = &d_start[0]
    r.g_start = &g_start[0]
    r.g_end = &g_end[0]
    r.out_at = &out_at[0]
    r.out = &out[0]
    return r

cdef struct Groups:
    Side dt
    Side gt
    Rows r

cdef inline fi_mask _mask(const Side *s, int64_t i) noexcept nogil:
    cdef fi_mask m = s.flat
    m.starts += s.at[i]
    m.ends += s.at[i]
    m.first += s.col_at[i]
    m.y0 += s.col_at[i]
    m.y1 += s.col_at[i]
    m.y2 += s.col_at[i]
    m.y3 += s.col_at[i]
    m.multi += s.col_at[i]
    m.nmulti = s.nmulti[i]
    m.x0 = s.x0[i]
    m.ncols = s.col_at[i + 1] - s.col_at[i] - 1 if s.col_at[i + 1] > s.col_at[i] else 0
    return m

cdef inline double _pair(const Groups *q, const fi_mask *a, int64_t d, int64_t g,
                         int crowd) noexcept nogil:
    # pycocotools' rleIou for one pair: the boxes first, then the runs where they overlap.
    if not fi_boxes_overlap(q.dt.boxes + 4 * d, q.gt.boxes + 4 * g):
        return 0.0
    if q.dt.heights[d] != q.gt.heights[g] or q.dt.widths[d] != q.gt.widths[g]:
        return -1.0
    cdef fi_mask b = _mask(&q.gt, g)
    cdef uint32_t inter = fi_intersection(a, &b)
    if inter == 0:
        return 0.0
    cdef uint32_t union = q.dt.areas[d] if crowd else q.dt.areas[d] + q.gt.areas[g] - inter
    return <double>inter / <double>union

cdef void _iou_row(Py_ssize_t r, Groups *q) noexcept nogil:
    cdef const Rows *w = &q.r
    cdef int64_t j = w.row_group[r], pos = w.row_first[r] - w.d_start[j]
    cdef int64_t d = q.dt.index[w.row_first[r]], c, width = w.g_end[j] - w.g_start[j]
    cdef double *out = w.out + w.out_at[j] + pos * width
    cdef fi_mask a = _mask(&q.dt, d)
    for c in range(width):
        out[c] = _pair(q, &a, d, q.gt.index[w.g_start[j] + c], w.crowd[w.g_start[j] + c] != 0)

cdef void _iou_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef int64_t r
    for r in range(begin, end):
        _iou_row(r, <Groups *>ctx)

cdef Side _side(tuple prepared, const int64_t[::1] heights, const int64_t[::1] widths,
                const int64_t[::1] index):
    cdef const uint32_t[::1] starts = prepared[0], ends = prepared[1], areas = prepared[10]
    cdef const int64_t[::1] at = prepared[2], col_at = prepared[4], x0 = prepared[5]
    cdef const int64_t[::1] nmulti = prepared[9]
    cdef const int32_t[::1] first = prepared[3]
    cdef const int32_t[:, ::1] y0 = prepared[6], y1 = prepared[7]
    cdef const int32_t[::1] multi = prepared[8]
    cdef const double[:, ::1] bb = prepared[11]
    cdef Side s
    s.flat.starts = &starts[0] if starts.shape[0] else NULL
    s.flat.ends = &ends[0] if ends.shape[0] else NULL
    s.at = &at[0]
    s.flat.first = &first[0] if first.shape[0] else NULL
    s.flat.y0 = &y0[0, 0] if y0.shape[1] else NULL
    s.flat.y1 = &y1[0, 0] if y1.shape[1] else NULL
    s.flat.y2 = &y0[1, 0] if y0.shape[1] else NULL
    s.flat.y3 = &y1[1, 0] if y1.shape[1] else NULL
    s.flat.multi = &multi[0] if multi.shape[0] else NULL
    s.nmulti = &nmulti[0] if nmulti.shape[0] else NULL
    s.col_at = &col_at[0]
    s.x0 = &x0[0] if x0.shape[0] else NULL
    s.areas = &areas[0] if areas.shape[0] else NULL
    s.boxes = &bb[0, 0] if bb.shape[0] else NULL
    s.heights = &heights[0] if heights.shape[0] else NULL
    s.widths = &widths[0] if widths.shape[0] else NULL
    s.index = &index[0] if index.shape[0] else NULL
    return s

def iou_groups(tuple dt, const int64_t[::1] dt_heights, const int64_t[::1] dt_widths,
               const int64_t[::1] dt_index, const int64_t[::1] d_start,
               tuple gt, const int64_t[::1] gt_heights, const int64_t[::1] gt_widths,
               const int64_t[::1] gt_index, const int64_t[::1] g_start, const int64_t[::1] g_end,
               const uint8_t[::1] gt_iscrowd, const int64_t[::1] row_group,
               const int64_t[::1] row_first, const int64_t[::1] out_at, double[::1] out,
               int threads):
    """Fill ``out`` with every group's D x G IoU block (see ``_rles.iou_groups``). ``dt`` and
    ``gt`` are ``intervals()`` + (areas, boxes) of every mask of each side."""
    cdef Py_ssize_t rows = row_group.shape[0], r
    if rows == 0 or out.shape[0] == 0:
        return
    cdef Groups q
    q.dt = _side(dt, dt_heights, dt_widths, dt_index)
    q.gt = _side(gt, gt_heights, gt_widths, gt_index)
    q.r = _rows(gt_iscrowd, row_group, row_first, d_start, g_start, g_end, out_at, out)
    with nogil:
        _run(_iou_task, &q, rows, threads)

cdef struct Matrix:
    Groups q
    int64_t m

cdef void _matrix_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Matrix *x = <Matrix *>ctx
    cdef const Groups *q = &x.q
    cdef int64_t d, g
    cdef fi_mask a
    cdef double *out
    for d in range(begin, end):
        a = _mask(&q.dt, d)
        out = q.r.out + d * x.m
        for g in range(x.m):
            out[g] = _pair(q, &a, d, g, q.r.crowd[g] != 0)

_NO_INDEX = np.zeros(0, np.int64)

def iou_matrix(tuple dt, const int64_t[::1] dt_heights, const int64_t[::1] dt_widths,
               tuple gt, const int64_t[::1] gt_heights, const int64_t[::1] gt_widths,
               const uint8_t[::1] gt_iscrowd, double[::1] out, int threads):
    """``out`` [len(dt) * len(gt)] = every dt mask's IoU with every gt mask, row by row (one
    group of ``iou_groups`` holding every mask in order, without its index arrays)."""
    cdef Matrix x
    x.q.dt = _side(dt, dt_heights, dt_widths, _NO_INDEX)
    x.q.gt = _side(gt, gt_heights, gt_widths, _NO_INDEX)
    x.m = gt_heights.shape[0]
    if dt_heights.shape[0] == 0 or x.m == 0:
        return
    x.q.r.crowd = &gt_iscrowd[0]
    x.q.r.out = &out[0]
    with nogil:
        _run(_matrix_task, &x, dt_heights.shape[0], threads)

cdef struct RunSide:
    Packed rles
    const uint32_t *areas
    const double *boxes
    const int64_t *heights
    const int64_t *widths

cdef struct RunMatrix:
    RunSide dt
    RunSide gt
    const uint8_t *crowd
    double *out
    int64_t m

cdef int _rle_arrays(cnp.ndarray counts, cnp.ndarray offsets, cnp.ndarray heights,
                     cnp.ndarray widths, RunSide *s, uint32_t *areas, double *boxes) except -1:
    # Pointers into an RLEs' own arrays (contiguous uint32 / int64 by construction, checked here
    # anyway: cheaper than acquiring four memoryviews), and its areas and boxes computed.
    cdef cnp.ndarray a
    for a, t in ((counts, cnp.NPY_UINT32), (offsets, cnp.NPY_INT64), (heights, cnp.NPY_INT64),
                 (widths, cnp.NPY_INT64)):
        if cnp.PyArray_TYPE(a) != t or not cnp.PyArray_IS_C_CONTIGUOUS(a) or a.ndim != 1:
            raise TypeError("RLE arrays must be contiguous uint32 counts and int64 offsets, sizes")
    cdef Py_ssize_t n = cnp.PyArray_DIM(heights, 0), i
    if cnp.PyArray_DIM(offsets, 0) != n + 1 or cnp.PyArray_DIM(widths, 0) != n:
        raise ValueError("offsets must have n + 1 entries and heights, widths n")
    s.rles.counts = <const uint32_t *>cnp.PyArray_DATA(counts)
    s.rles.offsets = <const int64_t *>cnp.PyArray_DATA(offsets)
    s.heights = <const int64_t *>cnp.PyArray_DATA(heights)
    s.widths = <const int64_t *>cnp.PyArray_DATA(widths)
    s.areas = areas
    s.boxes = boxes
    for i in range(n):
        areas[i] = fi_area(_runs(&s.rles, i), _len(&s.rles, i))
        fi_bbox(_runs(&s.rles, i), _len(&s.rles, i), <uint32_t>s.heights[i],
                <uint32_t>s.widths[i], &boxes[4 * i])
    return 0

cdef inline double _runs_pair(const RunSide *dt, int64_t d, const RunSide *gt, int64_t g,
                             int crowd) noexcept nogil:
    # pycocotools' rleIou as _pair, the intersection by a walk over the two run lists
    if not fi_boxes_overlap(dt.boxes + 4 * d, gt.boxes + 4 * g):
        return 0.0
    if dt.heights[d] != gt.heights[g] or dt.widths[d] != gt.widths[g]:
        return -1.0
    cdef uint32_t inter = fi_runs_intersection(_runs(&dt.rles, d), _len(&dt.rles, d),
                                               _runs(&gt.rles, g), _len(&gt.rles, g))
    if inter == 0:
        return 0.0
    cdef uint32_t union = dt.areas[d] if crowd else dt.areas[d] + gt.areas[g] - inter
    return <double>inter / <double>union

cdef void _run_matrix_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef RunMatrix *x = <RunMatrix *>ctx
    cdef int64_t d, g
    cdef double *out
    for d in range(begin, end):
        out = x.out + d * x.m
        for g in range(x.m):
            out[g] = _runs_pair(&x.dt, d, &x.gt, g, x.crowd[g])

def iou_matrix_runs(cnp.ndarray dt_counts, cnp.ndarray dt_offsets, cnp.ndarray dt_heights,
                    cnp.ndarray dt_widths, cnp.ndarray gt_counts, cnp.ndarray gt_offsets,
                    cnp.ndarray gt_heights, cnp.ndarray gt_widths, const uint8_t[::1] gt_iscrowd,
                    int threads):
    """``iou_matrix`` from the runs alone (no column index; the areas and boxes computed here):
    for small calls. Returns float64 [n, m]."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(dt_heights, 0), m = cnp.PyArray_DIM(gt_heights, 0)
    if gt_iscrowd.shape[0] != m:
        raise ValueError("gt_iscrowd must have one entry per gt mask")
    out = np.empty((n, m), np.float64)
    if n == 0 or m == 0:
        return out
    cdef uint32_t *areas = <uint32_t *>malloc(sizeof(uint32_t) * (n + m))
    cdef double *boxes = <double *>malloc(sizeof(double) * 4 * (n + m))
    cdef RunMatrix x
    try:
        if areas == NULL or boxes == NULL:
            raise MemoryError()
        _rle_arrays(dt_counts, dt_offsets, dt_heights, dt_widths, &x.dt, areas, boxes)
        _rle_arrays(gt_counts, gt_offsets, gt_heights, gt_widths, &x.gt, areas + n,
                    boxes + 4 * n)
        x.m = m
        x.crowd = &gt_iscrowd[0]
        x.out = <double *>cnp.PyArray_DATA(out)
        with nogil:
            _run(_run_matrix_task, &x, n, threads)
    finally:
        free(areas)
        free(boxes)
    return out

cdef struct RunGroups:
    RunSide dt
    RunSide gt
    const int64_t *dt_index
    const int64_t *gt_index
    Rows r

cdef void _run_groups_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef RunGroups *q = <RunGroups *>ctx
    cdef const Rows *w = &q.r
    cdef int64_t r, j, d, c, g0, width
    cdef double *out
    for r in range(begin, end):
        j = w.row_group[r]
        d = q.dt_index[w.row_first[r]]
        g0 = w.g_start[j]
        width = w.g_end[j] - g0
        out = w.out + w.out_at[j] + (w.row_first[r] - w.d_start[j]) * width
        for c in range(width):
            out[c] = _runs_pair(&q.dt, d, &q.gt, q.gt_index[g0 + c], w.crowd[g0 + c])

cdef RunSide _run_side(const uint32_t[::1] counts, const int64_t[::1] offsets,
                       const int64_t[::1] heights, const int64_t[::1] widths,
                       const uint32_t[::1] areas, const double[:, ::1] boxes):
    cdef RunSide s
    s.rles = _packed(counts, offsets)
    s.heights = &heights[0] if heights.shape[0] else NULL
    s.widths = &widths[0] if widths.shape[0] else NULL
    s.areas = &areas[0] if areas.shape[0] else NULL
    s.boxes = &boxes[0, 0] if boxes.shape[0] else NULL
    return s

def iou_groups_runs(tuple dt, const int64_t[::1] dt_index, const int64_t[::1] d_start,
                    tuple gt, const int64_t[::1] gt_index, const int64_t[::1] g_start,
                    const int64_t[::1] g_end, const uint8_t[::1] gt_iscrowd,
                    const int64_t[::1] row_group, const int64_t[::1] row_first,
                    const int64_t[::1] out_at, double[::1] out, int threads):
    """``iou_groups`` by a walk over each pair's two run lists (no column index): for sets where
    few pairs share an image. ``dt`` and ``gt`` are (counts, offsets, heights, widths, areas,
    boxes) of every mask of each side."""
    cdef Py_ssize_t rows = row_group.shape[0]
    if rows == 0 or out.shape[0] == 0:
        return
    cdef RunGroups q
    q.dt = _run_side(dt[0], dt[1], dt[2], dt[3], dt[4], dt[5])
    q.gt = _run_side(gt[0], gt[1], gt[2], gt[3], gt[4], gt[5])
    q.dt_index = &dt_index[0]
    q.gt_index = &gt_index[0] if gt_index.shape[0] else NULL
    q.r = _rows(gt_iscrowd, row_group, row_first, d_start, g_start, g_end, out_at, out)
    with nogil:
        _run(_run_groups_task, &q, rows, threads)

cdef struct BoxIou:
    const double *dt
    const double *gt
    const uint8_t *crowd
    double *out
    Py_ssize_t m

cdef void _box_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef BoxIou *b = <BoxIou *>ctx
    cdef Py_ssize_t d, g
    for d in range(begin, end):
        for g in range(b.m):
            b.out[d * b.m + g] = fi_box_iou(b.dt + 4 * d, b.gt + 4 * g, b.crowd[g] != 0)

def box_iou(const double[:, ::1] dt, const double[:, ::1] gt, const uint8_t[::1] crowd,
            double[:, ::1] out, int threads):
    """pycocotools' bbIou: ``out[d, g]`` for xywh boxes, crowd gt over the detection's area."""
    cdef BoxIou b
    if dt.shape[0] == 0 or gt.shape[0] == 0:
        return
    b.dt = &dt[0, 0]
    b.gt = &gt[0, 0]
    b.crowd = &crowd[0]
    b.out = &out[0, 0]
    b.m = gt.shape[0]
    with nogil:
        _run(_box_task, &b, dt.shape[0], threads)


# ---- merge ------------------------------------------------------------------------------------

def merge(const uint32_t[::1] counts, const int64_t[::1] offsets, bint intersect):
    """pycocotools' rleMerge of all the masks (one size, at least two): the runs, uint32."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef Packed p = _packed(counts, offsets)
    cdef int64_t total = offsets[n], m = _len(&p, 0)
    acc_array = np.empty(total + 1, np.uint32)
    tmp_array = np.empty(total + 1, np.uint32)
    cdef uint32_t[::1] acc = acc_array, tmp = tmp_array, swap
    acc[:m] = counts[:m]
    with nogil:
        for i in range(1, n):
            m = fi_merge2(&acc[0], m, _runs(&p, i), _len(&p, i), intersect, &tmp[0])
            swap = acc
            acc = tmp
            tmp = swap
    return np.asarray(acc)[:m].copy()


# ---- polygons ---------------------------------------------------------------------------------

cdef struct Slot:
    # one thread slot's memory: the runs of the polygons it made, one after another, and its
    # scratch; both grown as needed (a few large blocks, handed back whole when freed)
    uint32_t *runs
    int64_t used
    int64_t room
    uint32_t *scratch
    int64_t scratch_room

cdef struct Polygons:
    const double *xy        # every polygon's coordinates x0, y0, x1, y1, ...
    const int64_t *at       # polygon i's: xy[at[i]] .. xy[at[i + 1] - 1] (an even count)
    const int64_t *heights
    const int64_t *widths
    Slot *slots
    int32_t *slot_of        # per polygon: the slot whose runs hold its runs
    int64_t *pos            # per polygon: where they start there
    int64_t *lengths        # per polygon: how many, or one of the _POLY_ errors

cdef enum:
    _POLY_NO_MEMORY = -1
    _POLY_NOT_FINITE = -2
    _POLY_TOO_FAR = -3      # |5 x + .5| >= 2^30: beyond the int maskApi.c scales into

cdef int _scale(const double *xy, int64_t k, int32_t *x5, int32_t *y5) noexcept nogil:
    # maskApi.c's (int)(5 x + .5) of each vertex (C truncates toward 0), the polygon closed by
    # repeating vertex 0; 0, or an error
    cdef int64_t j
    cdef double x, y
    for j in range(k):
        x = xy[2 * j] * 5 + .5
        y = xy[2 * j + 1] * 5 + .5
        if not (isfinite(x) and isfinite(y)):
            return _POLY_NOT_FINITE
        x = trunc(x)
        y = trunc(y)
        if fabs(x) >= 1073741824.0 or fabs(y) >= 1073741824.0:
            return _POLY_TOO_FAR
        x5[j] = <int32_t>x
        y5[j] = <int32_t>y
    x5[k] = x5[0]
    y5[k] = y5[0]
    return 0

cdef void _polygon_one(Py_ssize_t i, Polygons *p, Slot *t) noexcept nogil:
    # polygon i's runs, appended to its slot's
    cdef int64_t k = (p.at[i + 1] - p.at[i]) // 2, points, m
    cdef uint64_t h = p.heights[i], w = p.widths[i]
    cdef uint32_t *s
    cdef int32_t *x5
    cdef int err
    if not _room(&t.scratch, &t.scratch_room, 2 * k + 2):  # x5, y5 (vertex 0 again at the end)
        p.lengths[i] = _POLY_NO_MEMORY
        return
    x5 = <int32_t *>t.scratch
    err = _scale(p.xy + p.at[i], k, x5, x5 + k + 1) if k > 0 else 0
    if err < 0:
        p.lengths[i] = err
        return
    points = fi_poly_points(x5, x5 + k + 1, k) if k > 0 else 0
    # then columns and cuts of points + 1 and buckets of points + 2; runs: points + 1 at most
    if (not _room(&t.scratch, &t.scratch_room, 2 * k + 2 + 3 * points + 4)
            or not _room(&t.runs, &t.room, t.used + points + 1)):
        p.lengths[i] = _POLY_NO_MEMORY
        return
    x5 = <int32_t *>t.scratch
    s = t.scratch + 2 * k + 2
    m = fi_polygon(x5, x5 + k + 1, k if k > 0 else -1, h, w, points, <int32_t *>s,
                   s + points + 1, t.runs + t.used, s + 2 * points + 2)
    p.pos[i] = t.used
    p.lengths[i] = m
    if m > 0:
        t.used += m

cdef bint _room(uint32_t **block, int64_t *room, int64_t need) noexcept nogil:
    # ``block`` grown to hold at least ``need`` uint32 (doubling; its contents kept); False (the
    # block as it was) when realloc fails
    if need <= room[0]:
        return True
    cdef int64_t size = max(need, 2 * room[0])
    cdef uint32_t *bigger = <uint32_t *>realloc(block[0], sizeof(uint32_t) * size)
    if bigger == NULL and size > need:  # the doubling did not fit: what is needed, then
        size = need
        bigger = <uint32_t *>realloc(block[0], sizeof(uint32_t) * size)
    if bigger == NULL:
        return False
    block[0] = bigger
    room[0] = size
    return True

cdef void _polygon_task(void *ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Polygons *p = <Polygons *>ctx
    cdef int64_t i
    for i in range(begin, end):
        p.slot_of[i] = slot
        _polygon_one(i, p, &p.slots[slot])

def polygons(const double[::1] xy, const int64_t[::1] xy_offsets, const int64_t[::1] heights,
             const int64_t[::1] widths, int threads):
    """pycocotools' rleFrPoly of each polygon ``xy[xy_offsets[i]:xy_offsets[i + 1]]`` (an
    even count of coordinates; its image ``heights[i]`` x ``widths[i]``, checked by the
    caller): (counts uint32, offsets int64). ValueError naming the first polygon with a
    coordinate that is not finite, else the first too far out."""
    cdef Py_ssize_t n = xy_offsets.shape[0] - 1, i
    if heights.shape[0] != n or widths.shape[0] != n:
        raise ValueError("polygons: one height and width per polygon")
    for i in range(n):
        if (xy_offsets[i] < 0 or xy_offsets[i + 1] < xy_offsets[i]
                or xy_offsets[i + 1] > xy.shape[0] or (xy_offsets[i + 1] - xy_offsets[i]) % 2):
            raise ValueError("polygons: bad coordinate offsets")
    threads = max(1, threads)
    lengths_array = np.zeros(n, np.int64)
    pos_array = np.zeros(n, np.int64)
    slot_array = np.zeros(n, np.int32)
    cdef int64_t[::1] lengths = lengths_array, pos = pos_array
    cdef int32_t[::1] slot_of = slot_array
    cdef uint32_t **parts = <uint32_t **>calloc(n + 1, sizeof(uint32_t *))
    cdef Slot *slots = <Slot *>calloc(threads, sizeof(Slot))
    if parts == NULL or slots == NULL:
        free(parts)
        free(slots)
        raise MemoryError()
    cdef Polygons p
    p.xy = &xy[0] if xy.shape[0] else NULL
    p.at = &xy_offsets[0]
    p.heights = &heights[0] if n else NULL
    p.widths = &widths[0] if n else NULL
    p.slots = slots
    p.slot_of = &slot_of[0] if n else NULL
    p.pos = &pos[0] if n else NULL
    p.lengths = &lengths[0] if n else NULL
    try:
        with nogil:
            _run(_polygon_task, &p, n, threads)
            for i in range(n):
                if lengths[i] > 0:
                    parts[i] = slots[slot_of[i]].runs + pos[i]
        for err, what in ((_POLY_NOT_FINITE, "has a coordinate that is not finite"),
                          (_POLY_TOO_FAR, None)):
            bad = np.flatnonzero(lengths_array == err)
            if bad.size and what is None:
                raise ValueError("polygon coordinates must lie within +-2^30 / 5 (about 2e8)")
            if bad.size:
                raise ValueError(f"polygon {bad[0]} {what}")
        return _joined(parts, lengths, "rasterise a polygon")
    finally:
        for i in range(threads):
            free(slots[i].runs)
            free(slots[i].scratch)
        free(slots)
        free(parts)
