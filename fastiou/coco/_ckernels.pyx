# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled kernels of fastiou.coco: JSON columns, grouping and sorting, matching, accumulation.

Everything here works on columnar arrays and index arrays; ``_evaluate.py`` owns the semantics
and calls these in order. The arithmetic that decides results (pycocotools' box IoU and its
precision formula, the decimal parser) lives in ``_native.h``. fastiou's pool
(``_core/_pool.h``) runs over chunks of a file, groups (image, category) and accumulation
cells: each loop has a C job struct (pointers into the arrays) and a task over a range of
items; per-thread scratch is indexed by the pool's slot (slots never run concurrently).
"""

import numpy as np

from fastiou._core._pool cimport parallel_for
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.math cimport INFINITY, NAN
from libc.string cimport memchr, memcmp, memcpy, memmove, memset

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
        int64_t *segm
        int64_t *kpts
        int64_t *nkpts
        const char *base
    double fi_precision(double tp, double fp)
    int fi_parse_rle(const char *p, const char *end, int64_t *h, int64_t *w, const char **s,
                     const char **s_end)
    int64_t fi_parse_polygons(const char *p, const char *end, const uint64_t *pow5, double *xy,
                              int64_t *counts, int64_t *nxy)
    const char *fi_parse_number(const char *p, const char *end, const uint64_t *pow5, double *out)
    const char *fi_release_pages(const void *p, size_t n)
    const char *fi_ws(const char *p, const char *end)
    const char *fi_skip_value(const char *p, const char *end, int depth)
    const char *fi_next_boundary(const char *p, const char *end)
    const char *fi_skip_string(const char *p, const char *end)
    int fi_group_iou(const double *det, int64_t D, const double *gt, const uint8_t *crowd,
                     int64_t G, double lowest, double *iou, int32_t *cand, int64_t *cand_start)
    int fi_parse_array_chunk(const char *p, const char *end, const char *stop,
                             const uint64_t *pow5, fi_columns *c, int64_t row0, int64_t cap,
                             int64_t *nrows, const char **stop_at)

cdef extern from "_keypoints.h" nogil:
    void fi_oks_counts(const double *dk, const int64_t *drow, int64_t D, const double *gk,
                       const double *gbox, const double *garea, const int64_t *grow, int64_t G,
                       const double *inv, int64_t K, double lowest, int safe_vars,
                       const double *dbox, int32_t *idx, int32_t *n)
    void fi_oks_terms(const double *dk, const int64_t *drow, int64_t D, const double *gk,
                      const double *gbox, const double *garea, const int64_t *grow, int64_t G,
                      const double *vars, int64_t K, int32_t *idx, const int32_t *n,
                      const int64_t *pos, double *e)
    void fi_oks_sum(double *x, const double *e, const int32_t *n, const int64_t *pos, int64_t P,
                    double *ious)

# Per detection, area range and IoU threshold: what accumulate() counts it as.
cdef enum:
    IGN = 0
    TP = 1
    FP = 2

# The keys the scanner reads, in the order of _native.h's enum (bit i of "seen": KEYS[i]).
KEYS = ("image_id", "category_id", "bbox", "score", "area", "iscrowd", "id", "ignore")
# keys whose values parse_object_array records as byte spans (n x 2, -1: absent), where wanted
SPAN_KEYS = ("segmentation", "keypoints", "num_keypoints")


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


cdef _check_start(const unsigned char[::1] buf, Py_ssize_t start):
    if buf.shape[0] == 0 or not 0 <= start <= buf.shape[0]:
        raise ValueError(f"start {start} outside the {buf.shape[0]}-byte buffer")


def skip_value(const unsigned char[::1] buf, Py_ssize_t start):
    """Offset just past the JSON value at ``start`` (whitespace skipped first), or -1."""
    _check_start(buf, start)
    cdef const char *b = <const char *> &buf[0]
    cdef const char *end = b + buf.shape[0]
    cdef const char *p = fi_ws(b + start, end)
    p = fi_skip_value(p, end, 1)
    return -1 if p == NULL else p - b


def skip_ws(const unsigned char[::1] buf, Py_ssize_t start):
    _check_start(buf, start)
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
    _check_start(buf, start)
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
    # the "segmentation" values' byte spans, where asked for (-1: none; each row's written by
    # the parser, so the pages of rows beyond the last are never touched)
    segm = np.empty((cap if "segmentation" in wanted else 1, 2), np.int64)
    kpts = np.empty((cap if "keypoints" in wanted else 1, 2), np.int64)
    nkpts = np.empty((cap if "num_keypoints" in wanted else 1, 2), np.int64)
    cdef int64_t[:, ::1] v_segm = segm, v_kpts = kpts, v_nkpts = nkpts
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
    cols.segm = &v_segm[0, 0] if "segmentation" in wanted else NULL
    cols.kpts = &v_kpts[0, 0] if "keypoints" in wanted else NULL
    cols.nkpts = &v_nkpts[0, 0] if "num_keypoints" in wanted else NULL
    cols.base = b
    cdef int64_t[::1] nrows = np.zeros(n, dtype=np.int64)
    cdef int64_t[::1] stop_at = np.zeros(n, dtype=np.int64)
    cdef int32_t[::1] status = np.zeros(n, dtype=np.int32)
    cdef ChunkJob job
    job.b = b
    job.end = end
    job.st = &st[0]
    job.base = &base[0]
    job.n = n
    job.pw = &pow5[0]
    job.cols = &cols
    job.nrows = &nrows[0]
    job.stop_at = &stop_at[0]
    job.status = &status[0]
    with nogil:
        parallel_for(_chunk_task, &job, n, 1, n)
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
    for name, arr in zip(KEYS + ("seen",) + SPAN_KEYS, (image_id, category_id, bbox, score, area,
                                                        iscrowd, ids, ignore, seen, segm, kpts,
                                                        nkpts)):
        if name in wanted or name == "seen":
            _compact(arr, pieces)  # spans: copied (cap rows were made, few touched)
            columns[name] = arr[:total] if name not in SPAN_KEYS else arr[:total].copy()
    return columns, end_offset


def keypoint_spans(const unsigned char[::1] buf, const int64_t[:, ::1] kpts,
                   const int64_t[:, ::1] nkpts, const uint64_t[::1] pow5, Py_ssize_t k3,
                   int nthreads):
    """The scanner's "keypoints" and "num_keypoints" spans (``parse_object_array``) read on the
    pool: a dict like ``scan_keypoints``' (``keypoints`` [n, k3] float64 (the first k3 numbers),
    ``count`` int32 (numbers in the array, -1: absent), ``num_keypoints`` (NaN: absent)), or
    None where a value is not what the scanner reads (an array of JSON numbers; a number)."""
    cdef Py_ssize_t n = kpts.shape[0], i
    if nkpts.shape[0] != n or k3 < 0:
        raise ValueError("keypoint_spans: one span of each per annotation")
    for i in range(n):  # every span inside the buffer, before a kernel reads it
        if not ((kpts[i, 0] == -1 and kpts[i, 1] == -1)
                or 0 <= kpts[i, 0] <= kpts[i, 1] <= buf.shape[0]):
            return None
        if not ((nkpts[i, 0] == -1 and nkpts[i, 1] == -1)
                or 0 <= nkpts[i, 0] <= nkpts[i, 1] <= buf.shape[0]):
            return None
    keypoints = np.zeros((n, k3), np.float64)
    count = np.empty(n, np.int32)
    num_keypoints = np.empty(n, np.float64)
    cdef double[:, ::1] kp = keypoints
    cdef int32_t[::1] kc = count
    cdef double[::1] nk = num_keypoints
    cdef SpanJob job
    job.b = <const char *> &buf[0] if buf.shape[0] else NULL
    job.pow5 = &pow5[0]
    job.kpts = &kpts[0, 0] if n else NULL
    job.nkpts = &nkpts[0, 0] if n else NULL
    job.k3 = k3
    job.kp = &kp[0, 0] if n and k3 else NULL
    job.kc = &kc[0] if n else NULL
    job.nk = &nk[0] if n else NULL
    with nogil:
        parallel_for(_span_task, &job, n, 1024, max(1, nthreads))
    if n and (count < -1).any():
        return None
    return {"keypoints": keypoints, "count": count, "num_keypoints": num_keypoints}


cdef struct SpanJob:
    const char *b
    const uint64_t *pow5
    const int64_t *kpts
    const int64_t *nkpts
    Py_ssize_t k3
    double *kp
    int32_t *kc  # -2: declined
    double *nk


cdef void _span_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef SpanJob *j = <SpanJob *> ctx
    cdef const char *p
    cdef const char *end
    cdef const char *q
    cdef const uint64_t *pow5 = j.pow5
    cdef double v
    cdef int32_t c
    cdef int64_t r
    cdef Py_ssize_t k3 = j.k3
    for r in range(lo, hi):
        j.nk[r] = NAN
        if j.nkpts[2 * r] >= 0:
            p, end = j.b + j.nkpts[2 * r], j.b + j.nkpts[2 * r + 1]
            q = fi_parse_number(p, end, pow5, &v)
            if q != end:
                j.kc[r] = -2
                continue
            j.nk[r] = v
        if j.kpts[2 * r] < 0:
            j.kc[r] = -1
            continue
        p, end = j.b + j.kpts[2 * r], j.b + j.kpts[2 * r + 1]
        q = _number_array(p, end, pow5, k3, j.kp + r * k3, &c)
        j.kc[r] = c if q == end else -2


cdef const char *_number_array(const char *p, const char *end, const uint64_t *pow5,
                               Py_ssize_t k3, double *row, int32_t *count) noexcept nogil:
    """The JSON array of numbers at p ('['): its first k3 numbers into row, how many it holds
    into count; the position after its ']', or NULL where it is anything else."""
    cdef const char *q
    cdef double v
    cdef int32_t c = 0
    cdef bint ints = True  # no number of this array has needed the full parser yet
    if p >= end or p[0] != b'[':
        return NULL
    p = fi_ws(p + 1, end)
    if p < end and p[0] == b']':
        count[0] = 0
        return p + 1
    while True:
        # ground truth: small integers (the short loop); results: floats, after the first of
        # which the full parser reads the rest (it reads integers too, as json does)
        q = _small_int(p, end, &v) if ints else NULL
        if q == NULL:
            q = fi_parse_number(p, end, pow5, &v)
            ints = False
            if q == NULL:
                return NULL
        if c < k3:
            row[c] = v
        c += 1
        p = fi_ws(q, end)
        if p < end and p[0] == b']':
            count[0] = c
            return p + 1
        if p >= end or p[0] != b',':
            return NULL
        p = fi_ws(p + 1, end)


cdef inline const char *_small_int(const char *p, const char *end, double *out) noexcept nogil:
    """A JSON integer of 1 to 15 digits (no leading zero) followed by a delimiter, as json
    reads it (exact as a double; "-0" is 0); NULL for anything else (fi_parse_number then
    reads it, or declines)."""
    cdef const char *q = p
    cdef bint neg = q < end and q[0] == b'-'
    cdef int64_t w = 0
    cdef int nd = 0
    if neg:
        q += 1
    while q < end and b'0' <= q[0] <= b'9' and nd < 16:
        w = w * 10 + (q[0] - 48)
        q += 1
        nd += 1
    if nd == 0 or nd > 15 or (nd > 1 and q[-nd] == b'0'):
        return NULL
    if q < end and (q[0] == b'.' or q[0] == b'e' or q[0] == b'E' or b'0' <= q[0] <= b'9'):
        return NULL
    out[0] = -<double> w if (neg and w != 0) else <double> w
    return q


def rle_spans(const unsigned char[::1] buf, const int64_t[:, ::1] spans, int nthreads=1):
    """The compressed RLE objects at ``buf[spans[i, 0]:spans[i, 1]]`` (the scanner's
    "segmentation" spans): (chars, lengths, heights, widths), every string's characters with
    its JSON escapes undone (only a backslash can be escaped in pycocotools' alphabet), one after
    another. None where one is not such an object, or a string holds another escape. Both
    passes (parse, then copy) run on the pool."""
    cdef Py_ssize_t n = spans.shape[0], i
    cdef int64_t total = 0
    for i in range(n):  # every span inside the buffer, before a kernel reads it
        if spans[i, 0] < 0 or not (spans[i, 0] < spans[i, 1] <= buf.shape[0]):
            return None
    heights = np.empty(n, np.int64)
    widths = np.empty(n, np.int64)
    lengths = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    raw = np.empty(n, np.int64)
    at = np.empty(n + 1, np.int64)
    cdef int64_t[::1] h = heights, w = widths, length = lengths, start = starts, rl = raw
    cdef int64_t[::1] at_v = at
    cdef RleSpanJob job
    job.b = <const char *> &buf[0] if buf.shape[0] else NULL
    job.spans = &spans[0, 0] if n else NULL
    job.h = &h[0] if n else NULL
    job.w = &w[0] if n else NULL
    job.start = &start[0] if n else NULL
    job.raw = &rl[0] if n else NULL
    job.length = &length[0] if n else NULL
    job.out = NULL
    job.at = &at_v[0]
    with nogil:
        parallel_for(_rle_span_task, &job, n, 512, max(1, nthreads))
        for i in range(n):
            at_v[i] = total
            total += job.length[i] if job.length[i] >= 0 else 0
        at_v[n] = total
    if n and (lengths < 0).any():
        return None
    chars = np.empty(max(total, 1), np.uint8)
    cdef unsigned char[::1] chars_view = chars
    job.out = <char *> &chars_view[0]
    with nogil:
        parallel_for(_rle_span_task, &job, n, 512, max(1, nthreads))
    return chars[:total], lengths, heights, widths


cdef struct RleSpanJob:
    const char *b
    const int64_t *spans  # n x 2
    int64_t *h
    int64_t *w
    int64_t *start  # of each string's characters (after the quote)
    int64_t *raw  # their count, escapes included
    int64_t *length  # with the escapes undone; -1: declined
    char *out  # NULL: pass 1 (parse, count); else pass 2 (copy each string to out + at[i])
    const int64_t *at


cdef void _rle_span_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef RleSpanJob *j = <RleSpanJob *> ctx
    cdef const char *s
    cdef const char *se
    cdef const char *q
    cdef char *o
    cdef int64_t i, escapes
    for i in range(lo, hi):
        if j.out == NULL:
            j.length[i] = -1
            if fi_parse_rle(j.b + j.spans[2 * i], j.b + j.spans[2 * i + 1], &j.h[i], &j.w[i],
                            &s, &se) < 0:
                continue
            j.start[i] = s - j.b
            j.raw[i] = se - s
            escapes = 0
            while s < se:  # "\\" is one backslash; any other escape declines
                q = <const char *> memchr(s, b'\\', se - s)
                if q == NULL:
                    break
                if q + 1 >= se or q[1] != b'\\':
                    escapes = -1
                    break
                escapes += 1
                s = q + 2
            if escapes >= 0:
                j.length[i] = j.raw[i] - escapes
        else:
            s = j.b + j.start[i]
            se = s + j.raw[i]
            o = j.out + j.at[i]
            while s < se:  # copy, undoing the escapes
                q = <const char *> memchr(s, b'\\', se - s)
                if q == NULL:
                    q = se
                memcpy(o, s, q - s)
                o += q - s
                if q == se:
                    break
                o[0] = q[0]
                o += 1
                s = q + 2


def polygon_spans(const unsigned char[::1] buf, const int64_t[:, ::1] spans,
                  const uint64_t[::1] pow5, const int64_t[::1] heights,
                  const int64_t[::1] widths):
    """``segmentations`` for the scanner's "segmentation" spans of a file: (kind uint8 [n]:
    0 polygons, 1 an object (an RLE), 2 anything else; parts, coordinates, counts, and each
    polygon's image height and width, from ``heights`` / ``widths`` per annotation)."""
    cdef Py_ssize_t n = spans.shape[0], k, room = 1, at = 0, j = 0, q
    cdef int64_t parts, nxy
    cdef const char *b = <const char *> &buf[0] if buf.shape[0] else NULL
    for k in range(n):
        if spans[k, 0] < 0 or not (spans[k, 0] < spans[k, 1] <= buf.shape[0]):
            raise ValueError("polygon_spans: a span outside the file")
        room += (spans[k, 1] - spans[k, 0]) // 2 + 1
    kind_array = np.empty(n, np.uint8)
    parts_array = np.zeros(n, np.int64)
    xy_array = np.empty(room, np.float64)
    lengths_array = np.empty(room, np.int64)
    cdef uint8_t[::1] kind = kind_array
    cdef int64_t[::1] n_parts = parts_array, lengths = lengths_array
    cdef double[::1] xy = xy_array
    for k in range(n):
        if b[spans[k, 0]] == b'{':
            kind[k] = 1
            continue
        parts = fi_parse_polygons(b + spans[k, 0], b + spans[k, 1], &pow5[0], &xy[at],
                                  &lengths[j], &nxy)
        if parts < 0 or heights[k] < 0 or widths[k] < 0:
            kind[k] = 2
            continue
        kind[k] = 0
        n_parts[k] = parts
        at += nxy
        j += parts
    part_h = np.empty(j, np.int64)
    part_w = np.empty(j, np.int64)
    cdef int64_t[::1] ph = part_h, pw = part_w
    j = 0
    for k in range(n):
        for q in range(n_parts[k]):
            ph[j] = heights[k]
            pw[j] = widths[k]
            j += 1
    return kind_array, parts_array, xy_array[:at], lengths_array[:j], part_h, part_w


cdef _compact(arr, list pieces):
    """Move the chunks' rows (start, count) down to one run from row 0, in place, and give the
    pages after it back (rows a chunk wrote before they moved: a view of the run keeps the
    whole allocation, sized for the most rows the chunks could hold)."""
    cdef unsigned char[::1] raw = arr.reshape(-1).view(np.uint8)
    cdef Py_ssize_t row_bytes = arr.itemsize * (arr.size // max(1, arr.shape[0]))
    cdef Py_ssize_t dst = 0, start, count
    for start, count in pieces:
        if count and start != dst:
            memmove(&raw[dst * row_bytes], &raw[start * row_bytes], count * row_bytes)
        dst += count
    if dst * row_bytes < raw.shape[0]:
        fi_release_pages(&raw[dst * row_bytes], raw.shape[0] - dst * row_bytes)


cdef struct ChunkJob:
    const char *b
    const char *end
    const int64_t *st  # chunk c: bytes from b + st[c], rows from base[c] (base[c + 1] - base[c])
    const int64_t *base
    int64_t n
    const uint64_t *pw
    fi_columns *cols
    int64_t *nrows  # per chunk: rows read, where it stopped, status
    int64_t *stop_at
    int32_t *status


cdef void _chunk_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef ChunkJob *j = <ChunkJob *> ctx
    cdef const char *stop
    cdef const char *at
    cdef int64_t rows, c
    for c in range(lo, hi):
        stop = NULL
        at = NULL
        rows = 0
        if c + 1 < j.n:
            stop = j.b + j.st[c + 1]
        j.status[c] = fi_parse_array_chunk(j.b + j.st[c], j.end, stop, j.pw, j.cols, j.base[c],
                                           j.base[c + 1] - j.base[c], &rows, &at)
        j.nrows[c] = rows
        j.stop_at[c] = (at - j.b) if at != NULL else 0


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
    # a table where its filling (span) costs less than the binary searches it saves (n log m):
    # dense ids, or many values (COCO's image ids span 581k: 24k lookups search)
    if 0 < span <= 4 * m + 2 * n:
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
    cdef SortJob job
    job.order = &order[0]
    job.score = &score[0]
    job.starts = &starts[0]
    job.narrow = narrow
    job.longest = longest
    job.keys = &keys[0, 0]
    job.tmp = &tmp[0, 0]
    job.counts = &counts[0, 0]
    with nogil:
        parallel_for(_sort_task, &job, nseg, 256, nthreads)


cdef struct SortJob:
    int64_t *order
    const double *score
    const int64_t *starts
    bint narrow
    Py_ssize_t longest
    uint64_t *keys  # per slot: 2 * longest keys, longest indices, 6 * 2049 counts
    int64_t *tmp
    int64_t *counts


cdef void _sort_task(void *ctx, int64_t s0, int64_t s1, int slot) noexcept nogil:
    cdef SortJob *job = <SortJob *> ctx
    cdef Py_ssize_t L = job.longest, s, j, lo, hi
    cdef uint64_t *keys = job.keys + slot * 2 * L
    cdef int64_t *tmp = job.tmp + slot * L
    cdef int64_t *counts = job.counts + slot * 6 * 2049
    for s in range(s0, s1):
        lo = job.starts[s]
        hi = job.starts[s + 1]
        if hi - lo < 2:
            continue
        for j in range(lo, hi):
            keys[j - lo] = (_sort_key32(job.score[job.order[j]]) if job.narrow
                            else _sort_key64(job.score[job.order[j]]))
        _sort_desc(&job.order[lo], keys, tmp, keys + L, counts, hi - lo,
                   3 if job.narrow else 6)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def match(const int64_t[::1] d_start, const int64_t[::1] d_end, const int64_t[::1] g_start,
          const int64_t[::1] g_end, const double[:, ::1] dt_box, const double[::1] dt_area,
          const int64_t[::1] dt_id, const double[:, ::1] gt_box, const double[::1] gt_area,
          const uint8_t[::1] gt_crowd, const uint8_t[::1] gt_ignore, const int64_t[::1] gt_id,
          const double[:, ::1] area_rng, const double[::1] best_thr, uint64_t[:, :, ::1] state,
          int nthreads, matches=None):
    """pycocotools' evaluateImg for every group (image, category), every area range and every
    IoU threshold. For detection j and area range a, word ``state[j, a, t // 32]`` holds bit
    t % 32 set for "true positive at threshold t" and bit 32 + t % 32 for "false positive";
    neither: ignored.

    Detections and ground truth come in group order: group s holds detections
    ``d_start[s]:d_end[s]`` (sorted by score, cut to maxDets[-1]) and ground truth
    ``g_start[s]:g_end[s]`` (in pycocotools' order). ``gt_ignore``: the ignore flag before area
    ranges (iscrowd). ``best_thr[t]`` = min(iouThrs[t], 1 - 1e-10). A group's IoU matrix is
    computed once; area ranges whose ground-truth ignore flags equal an earlier range's reuse
    its matching. ``matches``: None, or an int32 [N, A, T] array (filled with -1) that
    receives each detection's matched ground truth (its position in the group).
    """
    cdef int32_t *out = _match_out(matches, state)
    cdef Py_ssize_t nseg = d_start.shape[0], s, max_d = 1, max_g = 1, max_dg = 1
    for s in range(nseg):
        max_d = max(max_d, d_end[s] - d_start[s])
        max_g = max(max_g, g_end[s] - g_start[s])
        max_dg = max(max_dg, (d_end[s] - d_start[s]) * (g_end[s] - g_start[s]))
    _match_groups(d_start, d_end, g_start, g_end, dt_box, dt_area, dt_id, gt_box, gt_area,
                  gt_crowd, gt_ignore, gt_id, area_rng, best_thr, state, nthreads, out, NULL,
                  NULL, max_d, max_g, max_dg)


cdef _match_groups(const int64_t[::1] d_start, const int64_t[::1] d_end,
                   const int64_t[::1] g_start, const int64_t[::1] g_end,
                   const double[:, ::1] dt_box, const double[::1] dt_area,
                   const int64_t[::1] dt_id, const double[:, ::1] gt_box,
                   const double[::1] gt_area, const uint8_t[::1] gt_crowd,
                   const uint8_t[::1] gt_ignore, const int64_t[::1] gt_id,
                   const double[:, ::1] area_rng, const double[::1] best_thr,
                   uint64_t[:, :, ::1] state, int nthreads, int32_t *out, const double *values,
                   const int64_t *offsets, Py_ssize_t max_d, Py_ssize_t max_g,
                   Py_ssize_t max_dg):
    """The parallel loop of :func:`match` (``values`` NULL: box IoU) and :func:`match_values`
    (group s's matrix at ``values + offsets[s]``), with per-thread scratch."""
    cdef Py_ssize_t nseg = d_start.shape[0], s
    cdef int A = area_rng.shape[0], T = best_thr.shape[0]
    cdef double lowest = min(best_thr) if T else 0.0
    nthreads = max(1, nthreads)
    iou_arr = np.empty((nthreads, max_dg if values == NULL else 1), np.float64)
    gtm_arr = np.empty((nthreads, max(1, T) * max_g), np.int64)
    cand_start_arr = np.empty((nthreads, max_d + 1), np.int64)
    cand_arr = np.empty((nthreads, max_dg), np.int32)
    ig_arr = np.empty((nthreads, A * max_g), np.uint8)
    matched_arr = np.empty((nthreads, A * T * max_d), np.int32)
    cdef double[:, ::1] iou = iou_arr
    cdef int64_t[:, ::1] gtm = gtm_arr, cand_start = cand_start_arr
    cdef int32_t[:, ::1] cand = cand_arr, matched = matched_arr
    cdef uint8_t[:, ::1] ig = ig_arr
    cdef MatchJob job
    job.d_start = &d_start[0]
    job.d_end = &d_end[0]
    job.g_start = &g_start[0]
    job.g_end = &g_end[0]
    job.dt_box = &dt_box[0, 0]
    job.dt_area = &dt_area[0]
    job.dt_id = &dt_id[0]
    job.gt_box = &gt_box[0, 0]
    job.gt_area = &gt_area[0]
    job.gt_crowd = &gt_crowd[0]
    job.gt_ignore = &gt_ignore[0]
    job.gt_id = &gt_id[0]
    job.area_rng = &area_rng[0, 0]
    job.best_thr = &best_thr[0]
    job.A = A
    job.T = T
    job.state_row = state.shape[1] * state.shape[2]
    job.state_words = state.shape[2]
    job.lowest = lowest
    job.state = &state[0, 0, 0]
    job.match_out = out
    job.values = values
    job.offsets = offsets
    job.iou = &iou[0, 0]
    job.gtm = &gtm[0, 0]
    job.cand_start = &cand_start[0, 0]
    job.cand = &cand[0, 0]
    job.ig = &ig[0, 0]
    job.matched = &matched[0, 0]
    job.n_iou = iou.shape[1]
    job.n_gtm = gtm.shape[1]
    job.n_cand_start = cand_start.shape[1]
    job.n_cand = cand.shape[1]
    job.n_ig = ig.shape[1]
    job.n_matched = matched.shape[1]
    with nogil:
        parallel_for(_match_task, &job, nseg, 64, nthreads)


cdef struct MatchJob:
    const int64_t *d_start  # group s: detections d_start[s]:d_end[s], gt g_start[s]:g_end[s]
    const int64_t *d_end
    const int64_t *g_start
    const int64_t *g_end
    const double *dt_box  # N x 4
    const double *dt_area
    const int64_t *dt_id
    const double *gt_box
    const double *gt_area
    const uint8_t *gt_crowd
    const uint8_t *gt_ignore
    const int64_t *gt_id
    const double *area_rng  # A x 2
    const double *best_thr
    int A
    int T
    Py_ssize_t state_row  # state words per detection, and per (detection, area range)
    Py_ssize_t state_words
    double lowest
    uint64_t *state
    int32_t *match_out
    const double *values  # NULL: box IoU; else group s's matrix at values + offsets[s]
    const int64_t *offsets
    double *iou  # per slot scratch (n_* values each)
    int64_t *gtm
    int64_t *cand_start
    int32_t *cand
    uint8_t *ig
    int32_t *matched
    Py_ssize_t n_iou
    Py_ssize_t n_gtm
    Py_ssize_t n_cand_start
    Py_ssize_t n_cand
    Py_ssize_t n_ig
    Py_ssize_t n_matched


cdef void _match_task(void *ctx, int64_t s0, int64_t s1, int slot) noexcept nogil:
    cdef MatchJob *j = <MatchJob *> ctx
    cdef int64_t s
    cdef const double *values
    for s in range(s0, s1):
        values = NULL
        if j.values != NULL:
            values = j.values + j.offsets[s]
        _match_group(j, slot, j.d_start[s], j.d_end[s] - j.d_start[s], j.g_start[s],
                     j.g_end[s] - j.g_start[s], values)


cdef int32_t *_match_out(matches, uint64_t[:, :, ::1] state) except? NULL:
    """The pointer to ``matches`` (int32 [N, A, T], C-contiguous), or NULL for None."""
    cdef int32_t[:, :, ::1] view
    if matches is None:
        return NULL
    view = matches
    if view.shape[0] != state.shape[0] or view.shape[1] != state.shape[1]:
        raise ValueError("matches must be [detections, area ranges, IoU thresholds]")
    if view.shape[0] * view.shape[1] * view.shape[2] == 0:
        return NULL
    return &view[0, 0, 0]


cdef int _candidates(const double *values, Py_ssize_t D, Py_ssize_t G, double lowest,
                     int32_t *cand, int64_t *cand_start) noexcept nogil:
    """fi_group_iou's candidates for a precomputed D x G matrix: per detection the ground truths
    with a value not below ``lowest`` (or NaN), in ground-truth order; 1 when a value is NaN."""
    cdef Py_ssize_t d, g, n = 0
    cdef int has_nan = 0
    cdef double v
    for d in range(D):
        cand_start[d] = n
        for g in range(G):
            v = values[d * G + g]
            if not (v < lowest):
                cand[n] = <int32_t> g
                n += 1
            has_nan |= v != v
    cand_start[D] = n
    return has_nan


def match_values(const int64_t[::1] d_start, const int64_t[::1] d_end,
                 const int64_t[::1] g_start, const int64_t[::1] g_end,
                 const double[::1] values, const int64_t[::1] offsets,
                 const double[::1] dt_area, const int64_t[::1] dt_id, const double[::1] gt_area,
                 const uint8_t[::1] gt_crowd, const uint8_t[::1] gt_ignore,
                 const int64_t[::1] gt_id, const double[:, ::1] area_rng,
                 const double[::1] best_thr, uint64_t[:, :, ::1] state, int nthreads,
                 matches=None):
    """:func:`match` on precomputed overlaps (mask IoU, OKS) instead of box IoU.

    Group s's matrix is ``values[offsets[s]:offsets[s + 1]]``, row-major D_s x G_s: rows its
    kept detections in score order, columns its ground truth in group order (as ``match``).
    """
    cdef Py_ssize_t nseg = d_start.shape[0], s, max_d = 1, max_g = 1, max_dg = 1, D, G
    if offsets.shape[0] != nseg + 1 or g_start.shape[0] != nseg or d_end.shape[0] != nseg:
        raise ValueError("match_values: one offset per group plus one, and one range per group")
    for s in range(nseg):
        D = d_end[s] - d_start[s]
        G = g_end[s] - g_start[s]
        if (D < 0 or G < 0 or d_start[s] < 0 or d_end[s] > state.shape[0] or g_start[s] < 0
                or g_end[s] > gt_area.shape[0]):
            raise ValueError(f"match_values: group {s} has bad detection/ground-truth ranges")
        if offsets[s] < 0 or offsets[s + 1] > values.shape[0] or (
                D and G and offsets[s + 1] - offsets[s] != D * G):
            raise ValueError(f"match_values: group {s}'s matrix is not {D} x {G} values")
        max_d = max(max_d, D)
        max_g = max(max_g, G)
        max_dg = max(max_dg, D * G)
    if dt_area.shape[0] < state.shape[0] or dt_id.shape[0] < state.shape[0]:
        raise ValueError("match_values: one area and id per detection")
    cdef int32_t *out = _match_out(matches, state)
    dummy_box = np.zeros((1, 4), np.float64)
    cdef double[:, ::1] box = dummy_box
    cdef const double *vals = &values[0] if values.shape[0] else &box[0, 0]  # unread if empty
    _match_groups(d_start, d_end, g_start, g_end, box, dt_area, dt_id, box, gt_area, gt_crowd,
                  gt_ignore, gt_id, area_rng, best_thr, state, nthreads, out, vals,
                  &offsets[0], max_d, max_g, max_dg)


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


cdef void _match_group(const MatchJob *job, int slot, Py_ssize_t d0, Py_ssize_t D,
                       Py_ssize_t g0, Py_ssize_t G, const double *values) noexcept nogil:
    """One group's matching. ``values``: the group's precomputed D x G overlap matrix (mask
    IoU, OKS), or NULL to compute box IoU from ``dt_box``/``gt_box``. ``match_out``: NULL, or
    the [N, A, T] matched ground-truth positions (in the group, -1: none) to fill."""
    cdef Py_ssize_t d, g, c, c0, c1, n_cand
    cdef int A = job.A, T = job.T, a, a2, src, t, j
    cdef const double *dt_area = job.dt_area
    cdef const int64_t *dt_id = job.dt_id
    cdef const uint8_t *gt_ignore = job.gt_ignore
    cdef const int64_t *gt_id = job.gt_id
    cdef const double *area_rng = job.area_rng
    cdef const double *best_thr = job.best_thr
    cdef double lowest = job.lowest
    cdef uint64_t *state = job.state
    cdef Py_ssize_t row = job.state_row, words = job.state_words
    cdef int32_t *match_out = job.match_out
    cdef double *iou = job.iou + slot * job.n_iou
    cdef int64_t *gtm = job.gtm + slot * job.n_gtm
    cdef int64_t *cand_start = job.cand_start + slot * job.n_cand_start
    cdef int32_t *cand = job.cand + slot * job.n_cand
    cdef uint8_t *ig = job.ig + slot * job.n_ig
    cdef int32_t *matched = job.matched + slot * job.n_matched
    cdef int64_t m
    cdef double lo, hi, best, v, area
    cdef bint outside
    cdef uint8_t st
    cdef uint64_t *out
    cdef uint8_t *iga
    cdef const uint8_t *crowd = job.gt_crowd + g0
    cdef const double *gt_ar = job.gt_area + g0
    cdef int32_t *mt
    cdef const double *mat = values
    if values == NULL:
        mat = iou
    if D == 0:
        return
    if G == 0:  # no ground truth: nothing matches
        for d in range(D):
            for a in range(A):
                _unmatched(state + (d0 + d) * row + a * words, dt_area[d0 + d],
                           area_rng[2 * a], area_rng[2 * a + 1], T)
        return
    if (_candidates(values, D, G, lowest, cand, cand_start) if values != NULL else
            fi_group_iou(job.dt_box + 4 * d0, D, job.gt_box + 4 * g0, crowd, G, lowest, iou,
                         cand, cand_start)):
        # a NaN IoU: every ground truth is a candidate (see fi_group_iou)
        for d in range(D):
            cand_start[d] = d * G
            for g in range(G):
                cand[d * G + g] = <int32_t> g
        cand_start[D] = D * G
    n_cand = cand_start[D]
    for a in range(A):
        lo = area_rng[2 * a]
        hi = area_rng[2 * a + 1]
        if n_cand == 0:  # no detection can match: no matching to run
            for d in range(D):
                _unmatched(state + (d0 + d) * row + a * words, dt_area[d0 + d], lo, hi, T)
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
                            v = mat[d * G + g]
                            if v < best:
                                continue
                            best = v
                            m = g
                    matched[(a * T + t) * D + d] = <int32_t> m
                    if m >= 0:
                        gtm[t * G + m] = dt_id[d0 + d]
        for d in range(D):
            out = state + (d0 + d) * row + a * words
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
                if match_out != NULL:
                    match_out[((d0 + d) * A + a) * T + t] = <int32_t> m


# ---------------------------------------------------------------------------------------------
# Keypoints: pycocotools' OKS per group (the arithmetic is in _keypoints.h)
# ---------------------------------------------------------------------------------------------


cdef inline bint _key_is(const char *p, const char *q, const char *name,
                         Py_ssize_t n) noexcept nogil:
    """The JSON string p..q (quotes included) is exactly ``name`` (n bytes)."""
    return q - p - 2 == n and memcmp(p + 1, name, n) == 0


cdef const char *_annotation_array(const char *p, const char *end) noexcept nogil:
    """The array to scan: the top-level array, or the top-level object's "annotations" (found
    once, with no escaped key); NULL where the scanner declines."""
    cdef const char *q
    cdef const char *found = NULL
    cdef bint is_ann
    p = fi_ws(p, end)
    if p < end and p[0] == b'[':
        return p
    if p >= end or p[0] != b'{':
        return NULL
    p = fi_ws(p + 1, end)
    if p < end and p[0] == b'}':
        return NULL
    while True:
        if p >= end or p[0] != b'"':
            return NULL
        q = fi_skip_string(p, end)
        if q == NULL or memchr(p, b'\\', q - p) != NULL:
            return NULL
        is_ann = _key_is(p, q, "annotations", 11)
        p = fi_ws(q, end)
        if p >= end or p[0] != b':':
            return NULL
        p = fi_ws(p + 1, end)
        if is_ann:
            if found != NULL or p >= end or p[0] != b'[':
                return NULL
            found = p
        p = fi_skip_value(p, end, 1)
        if p == NULL:
            return NULL
        p = fi_ws(p, end)
        if p < end and p[0] == b'}':
            return found if fi_ws(p + 1, end) == end else NULL
        if p >= end or p[0] != b',':
            return NULL
        p = fi_ws(p + 1, end)


cdef Py_ssize_t _scan_object(const char *p, const char *end, const uint64_t *pow5,
                             Py_ssize_t k3, double *kp, int32_t *kcount, double *nkp,
                             uint8_t *flags, double *numbers, const char **after) noexcept nogil:
    """One annotation object (p at '{'): its "keypoints" (the first k3 numbers; kcount = how
    many, -1 absent), "num_keypoints" (NaN absent), flags (1: "bbox", 2: "segmentation",
    4: "bbox" is []) and numbers[0:3] = "image_id", "category_id", "score" (NaN absent).
    Returns 0, or -1 where the scanner declines."""
    cdef const char *q
    cdef const char *key
    cdef const char *key_end
    cdef double v
    cdef int32_t c
    kcount[0] = -1
    nkp[0] = NAN
    flags[0] = 0
    numbers[0] = numbers[1] = numbers[2] = NAN
    p = fi_ws(p + 1, end)
    if p < end and p[0] == b'}':
        after[0] = p + 1
        return 0
    while True:
        if p >= end or p[0] != b'"':
            return -1
        q = fi_skip_string(p, end)
        if q == NULL or memchr(p, b'\\', q - p) != NULL:
            return -1
        key, key_end = p, q
        p = fi_ws(q, end)
        if p >= end or p[0] != b':':
            return -1
        p = fi_ws(p + 1, end)
        if _key_is(key, key_end, "keypoints", 9):
            p = _number_array(p, end, pow5, k3, kp, &c)
            if p == NULL:
                return -1
            kcount[0] = c
        elif (_key_is(key, key_end, "num_keypoints", 13) or _key_is(key, key_end, "image_id", 8)
              or _key_is(key, key_end, "category_id", 11) or _key_is(key, key_end, "score", 5)):
            q = fi_parse_number(p, end, pow5, &v)
            if q == NULL:
                return -1
            if key_end - key == 15:
                nkp[0] = v
            else:
                numbers[0 if key_end - key == 10 else 1 if key_end - key == 13 else 2] = v
            p = q
        else:
            if _key_is(key, key_end, "bbox", 4):
                flags[0] |= 1
                if p < end and p[0] == b'[':
                    q = fi_ws(p + 1, end)
                    if q < end and q[0] == b']':
                        flags[0] |= 4
            elif _key_is(key, key_end, "segmentation", 12):
                flags[0] |= 2
            p = fi_skip_value(p, end, 1)
            if p == NULL:
                return -1
        p = fi_ws(p, end)
        if p < end and p[0] == b'}':
            after[0] = p + 1
            return 0
        if p >= end or p[0] != b',':
            return -1
        p = fi_ws(p + 1, end)


def scan_keypoints(const unsigned char[::1] buf, const uint64_t[::1] pow5, Py_ssize_t k3,
                   bint first_only=False, int nthreads=1, Py_ssize_t min_object_bytes=0,
                   Py_ssize_t min_chunk_bytes=1 << 21, bint release_input=False):
    """Keypoint columns of a COCO file's annotations (a results list, or a dataset's
    "annotations"), one row per object: ``keypoints`` [n, k3] float64 (the first k3 numbers),
    ``count`` int32 (numbers in the object's "keypoints", -1: absent), ``num_keypoints``,
    ``image_id``, ``category_id``, ``score`` float64 (NaN: absent) and ``flags`` uint8
    (1 "bbox", 2 "segmentation", 4 "bbox" is []). None where the scanner declines (the caller
    reads the file with Python's json). ``first_only``: read only the first object (a peek at
    what the file holds). ``min_object_bytes`` > 0 (a lower bound on every object's size, e.g.
    from its keypoints): one pass over the file into columns sized by that bound (declining if
    it is broken); a top-level array (a results file) of ``2 * min_chunk_bytes`` or more is
    split into up to ``nthreads`` chunks at guessed object boundaries, parsed in parallel (each
    chunk confirms the next one's start, else one serial pass). Else a counting pass (skipping
    values) splits the objects into up to ``nthreads`` chunks of bytes, parsed in parallel.
    ``release_input``: ``buf`` is a file's memory map, whose pages the one-pass chunks give back
    to the OS as they read them (the file need not stay resident beside its columns)."""
    if buf.shape[0] == 0 or k3 < 0:
        return None
    cdef const char *b = <const char *> &buf[0]
    cdef const char *end = b + buf.shape[0]
    if min_object_bytes > 0 and not first_only:
        if nthreads > 1:
            found = _scan_guessed(b, end, &pow5[0], k3, min_object_bytes, nthreads,
                                  max(1, min_chunk_bytes), release_input)
            if found is not None:
                return found
        return _scan_single_pass(b, end, &pow5[0], k3, buf.shape[0] // min_object_bytes + 1)
    cdef const char *start = _annotation_array(b, end)
    cdef const char *p
    cdef Py_ssize_t n = 0, c, n_chunks = max(1, nthreads), filled = 1
    if start == NULL:
        return None
    chunk_row_arr = np.zeros(n_chunks + 1, np.int64)
    chunk_at_arr = np.zeros(n_chunks + 1, np.int64)
    cdef int64_t[::1] chunk_row = chunk_row_arr, chunk_at = chunk_at_arr
    cdef Py_ssize_t total = end - start
    p = fi_ws(start + 1, end)
    chunk_at[0] = p - b
    if first_only:
        n = 0 if (p < end and p[0] == b']') else 1
    with nogil:  # count the objects, noting where each chunk of bytes starts
        if not first_only and p < end and p[0] != b']':
            while True:
                if filled < n_chunks and p - start >= total * filled // n_chunks:
                    chunk_row[filled] = n
                    chunk_at[filled] = p - b
                    filled += 1
                p = fi_skip_value(p, end, 1)
                if p == NULL:
                    break
                n += 1
                p = fi_ws(p, end)
                if p < end and p[0] == b',':
                    p = fi_ws(p + 1, end)
                    continue
                break
    if not first_only and (p == NULL or p >= end or p[0] != b']'):
        return None
    if not first_only and start == fi_ws(b, end) and fi_ws(p + 1, end) != end:
        return None  # a top-level array with bytes after it
    chunk_row[filled] = n
    if first_only or n == 0:  # a peek at the first object, or none
        columns = _keypoint_columns(n, k3)
        keypoints, count, num_keypoints, flags, numbers = columns
        if n and _peek(p, end, &pow5[0], k3, keypoints, count, num_keypoints, flags,
                       numbers) < 0:
            return None
        return _keypoint_result(columns, n, k3)
    chunk_at[filled] = end - b
    return _chunks(b, end, &pow5[0], k3, chunk_at_arr[: filled + 1], chunk_row_arr[: filled + 1],
                   False, False)


cdef int _peek(const char *p, const char *end, const uint64_t *pow5, Py_ssize_t k3,
               double[:, ::1] kp, int32_t[::1] kc, double[::1] nkp, uint8_t[::1] fl,
               double[:, ::1] nums):
    """The object at p into row 0 of the columns: 0, or -1 where the scanner declines."""
    if p >= end or p[0] != b'{':
        return -1
    return _scan_object(p, end, pow5, k3, &kp[0, 0], &kc[0], &nkp[0], &fl[0], &nums[0, 0], &p)


cdef _scan_guessed(const char *b, const char *end, const uint64_t *pow5, Py_ssize_t k3,
                   Py_ssize_t min_object_bytes, int nthreads, Py_ssize_t min_chunk_bytes,
                   bint release):
    """scan_keypoints' one pass over a top-level array, in chunks split at guessed object
    boundaries (``fi_next_boundary``) and parsed on the pool; None where it is not such a file,
    too small to split, or a guess was wrong (the caller then parses in one serial pass)."""
    cdef const char *p = fi_ws(b, end)
    if p >= end or p[0] != b'[':
        return None
    p = fi_ws(p + 1, end)
    if p >= end or p[0] != b'{':
        return None
    cdef Py_ssize_t total = end - p, c, n = 1
    cdef Py_ssize_t nchunks = min(nthreads, total // min_chunk_bytes)
    if nchunks < 2:
        return None
    cdef const char *prev = p
    cdef const char *s
    st_arr = np.zeros(nchunks + 1, np.int64)
    base_arr = np.zeros(nchunks + 1, np.int64)
    cdef int64_t[::1] st = st_arr, base = base_arr
    st[0] = p - b
    for c in range(1, nchunks):
        s = fi_next_boundary(p + total * c // nchunks, end)
        if s > prev and s < end:
            st[n] = s - b
            n += 1
            prev = s
    if n < 2:
        return None
    st[n] = end - b
    for c in range(n):
        base[c + 1] = base[c] + (st[c + 1] - st[c]) // min_object_bytes + 1
    return _chunks(b, end, pow5, k3, st_arr[: n + 1], base_arr[: n + 1], True, release)


cdef _chunks(const char *b, const char *end, const uint64_t *pow5, Py_ssize_t k3,
             const int64_t[::1] st, const int64_t[::1] base, bint array_to_end, bint release):
    """Keypoint columns of the objects in chunks parsed on the pool: chunk c from b + st[c],
    into rows base[c] up to base[c + 1] (exact counts, or room), reaching the next chunk's
    start exactly; the last one the closing ']' (``array_to_end``: and then the end of the
    file). None where a chunk did not (a wrong guess, or what the scanner declines)."""
    cdef Py_ssize_t n = st.shape[0] - 1, c
    columns = _keypoint_columns(base[n], k3)
    keypoints, count, num_keypoints, flags, numbers = columns
    nrows_arr = np.zeros(n, np.int64)
    status_arr = np.full(n, -1, np.int32)
    cdef double[:, ::1] kp = keypoints, nums = numbers
    cdef int32_t[::1] kc = count, status = status_arr
    cdef double[::1] nkp = num_keypoints
    cdef uint8_t[::1] fl = flags
    cdef int64_t[::1] nrows = nrows_arr
    cdef GuessJob job
    job.b = b
    job.end = end
    job.pow5 = pow5
    job.k3 = k3
    job.kp_row = kp.shape[1]
    job.n = n
    job.st = &st[0]
    job.base = &base[0]
    job.kp = &kp[0, 0]
    job.kc = &kc[0]
    job.nkp = &nkp[0]
    job.fl = &fl[0]
    job.nums = &nums[0, 0]
    job.nrows = &nrows[0]
    job.status = &status[0]
    job.after = NULL
    job.release = release
    with nogil:
        parallel_for(_guess_task, &job, n, 1, n)
    for c in range(n):  # each chunk reached the next one's start; the last, the closing ']'
        if status[c] != (1 if c == n - 1 else 0):
            return None
    if job.after == NULL or (array_to_end and fi_ws(job.after, end) != end):
        return None
    pieces = [(int(base[c]), int(nrows[c])) for c in range(n)]
    for arr in columns:
        _compact(arr, pieces)
    return _keypoint_result(columns, sum(r for _, r in pieces), k3)


cdef enum:
    _RELEASE_BYTES = 1 << 20  # how much of a mapped file a chunk reads between madvise calls

cdef struct GuessJob:
    const char *b
    const char *end
    const uint64_t *pow5
    Py_ssize_t k3
    Py_ssize_t kp_row  # values per row of kp
    Py_ssize_t n
    const int64_t *st  # chunk c: objects from b + st[c] up to b + st[c + 1], rows from base[c]
    const int64_t *base
    double *kp
    int32_t *kc
    double *nkp
    uint8_t *fl
    double *nums  # rows of 3
    int64_t *nrows  # per chunk: rows read; status 0: reached the next chunk, 1: the ']', -1
    int32_t *status
    const char *after  # past the ']' (the last chunk)
    bint release  # give the bytes read back to the OS as it goes (b: a file's memory map)


cdef void _guess_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef GuessJob *j = <GuessJob *> ctx
    cdef const char *p
    cdef const char *nxt
    cdef const char *end = j.end
    cdef const char *kept
    cdef int64_t r, c
    for c in range(lo, hi):
        p = kept = j.b + j.st[c]
        nxt = j.b + j.st[c + 1]
        r = j.base[c]
        j.status[c] = -1
        while True:
            if r >= j.base[c + 1] or p >= end or p[0] != b'{' or _scan_object(
                    p, end, j.pow5, j.k3, j.kp + r * j.kp_row, j.kc + r, j.nkp + r, j.fl + r,
                    j.nums + 3 * r, &p) < 0:
                break
            r += 1
            if j.release and p - kept >= _RELEASE_BYTES:  # read: the file's pages out of RSS
                kept = fi_release_pages(kept, p - kept)
            p = fi_ws(p, end)
            if p < end and p[0] == b',':
                p = fi_ws(p + 1, end)
                if c < j.n - 1 and p >= nxt:
                    if p == nxt:
                        j.status[c] = 0
                    break
            elif p < end and p[0] == b']':
                if c == j.n - 1:
                    j.status[c] = 1
                    j.after = p + 1
                break
            else:
                break
        j.nrows[c] = r - j.base[c]


cdef tuple _keypoint_columns(Py_ssize_t n, Py_ssize_t k3):
    return (np.zeros((n, max(k3, 1)), np.float64), np.empty(n, np.int32),
            np.empty(n, np.float64), np.empty(n, np.uint8), np.empty((n, 3), np.float64))


cdef dict _keypoint_result(tuple columns, Py_ssize_t n, Py_ssize_t k3):
    keypoints, count, num_keypoints, flags, numbers = (c[:n] for c in columns)
    return {"keypoints": keypoints[:, :k3], "count": count, "num_keypoints": num_keypoints,
            "flags": flags, "image_id": numbers[:, 0], "category_id": numbers[:, 1],
            "score": numbers[:, 2]}


cdef _scan_single_pass(const char *b, const char *end, const uint64_t *pow5, Py_ssize_t k3,
                       Py_ssize_t cap):
    """scan_keypoints in one pass: the top-level array, or the top-level object's
    "annotations" (once, no escaped key), parsed where it stands; the file checked to its end."""
    columns = _keypoint_columns(cap, k3)
    keypoints, count, num_keypoints, flags, numbers = columns
    cdef double[:, ::1] kp = keypoints, nums = numbers
    cdef int32_t[::1] kc = count
    cdef double[::1] nkp = num_keypoints
    cdef uint8_t[::1] fl = flags
    cdef const char *p = fi_ws(b, end)
    cdef const char *q
    cdef Py_ssize_t n = -1
    cdef bint is_ann
    with nogil:
        if p < end and p[0] == b'[':
            n = _scan_serial(fi_ws(p + 1, end), end, pow5, k3, cap, kp, kc, nkp, fl, nums, &p)
            if n >= 0 and fi_ws(p, end) != end:
                n = -1
        elif p < end and p[0] == b'{':
            p = fi_ws(p + 1, end)
            while True:
                if p >= end or p[0] != b'"':
                    n = -1
                    break
                q = fi_skip_string(p, end)
                if q == NULL or memchr(p, b'\\', q - p) != NULL:
                    n = -1
                    break
                is_ann = _key_is(p, q, "annotations", 11)
                p = fi_ws(q, end)
                if p >= end or p[0] != b':':
                    n = -1
                    break
                p = fi_ws(p + 1, end)
                if is_ann:
                    if n >= 0 or p >= end or p[0] != b'[':  # a second "annotations"
                        n = -1
                        break
                    n = _scan_serial(fi_ws(p + 1, end), end, pow5, k3, cap, kp, kc, nkp, fl,
                                     nums, &p)
                    if n < 0:
                        break
                else:
                    p = fi_skip_value(p, end, 1)
                    if p == NULL:
                        n = -1
                        break
                p = fi_ws(p, end)
                if p < end and p[0] == b'}':
                    if fi_ws(p + 1, end) != end:
                        n = -1
                    break
                if p >= end or p[0] != b',':
                    n = -1
                    break
                p = fi_ws(p + 1, end)
    if n < 0:
        return None
    return _keypoint_result(columns, n, k3)


cdef Py_ssize_t _scan_serial(const char *p, const char *end, const uint64_t *pow5,
                             Py_ssize_t k3, Py_ssize_t cap, double[:, ::1] kp, int32_t[::1] kc,
                             double[::1] nkp, uint8_t[::1] fl, double[:, ::1] nums,
                             const char **after) noexcept nogil:
    """Parse the array's objects from p (after '[') to its ']' (after: past it): their count,
    or -1."""
    cdef Py_ssize_t r = 0
    if p < end and p[0] == b']':
        after[0] = p + 1
        return 0
    while True:
        if r >= cap or p >= end or p[0] != b'{' or _scan_object(
                p, end, pow5, k3, &kp[r, 0], &kc[r], &nkp[r], &fl[r], &nums[r, 0], &p) < 0:
            return -1
        r += 1
        p = fi_ws(p, end)
        if p < end and p[0] == b',':
            p = fi_ws(p + 1, end)
        elif p < end and p[0] == b']':
            after[0] = p + 1
            return r
        else:
            return -1


def keypoint_boxes(const double[:, ::1] kp):
    """Per row of keypoints (x, y, v, ...), np.min / np.max of its x = row[0::3] and its
    y = row[1::3]: [n, 4] float64 (x min, x max, y min, y max), NaN where one of them is NaN
    (numpy's min and max). For loadRes' keypoint boxes and ``oks_counts``' bound."""
    cdef Py_ssize_t n = kp.shape[0], m = kp.shape[1], i, c, axis
    out = np.empty((n, 4), np.float64)
    cdef double[:, ::1] o = out
    cdef double v, lo, hi
    cdef bint nan
    with nogil:
        for i in range(n):
            for axis in range(2):
                lo = INFINITY
                hi = -INFINITY
                nan = m <= axis
                for c in range(axis, m, 3):
                    v = kp[i, c]
                    if v != v:
                        nan = True
                    lo = v if v < lo else lo
                    hi = v if v > hi else hi
                o[i, 2 * axis] = NAN if nan else lo
                o[i, 2 * axis + 1] = NAN if nan else hi
    return out


cdef struct OksJob:
    Py_ssize_t s0  # the first group; its first pair is offsets[s0] = base
    Py_ssize_t base
    Py_ssize_t K
    double lowest
    const int64_t *d_start
    const int64_t *d_end
    const int64_t *g_start
    const int64_t *g_end
    const int64_t *offsets
    const double *dt_kp
    const int64_t *dt_rows
    const double *gt_kp
    const double *gt_box
    const double *gt_area
    const int64_t *gt_rows
    const double *variances
    const double *inverses  # 1 / variances: pass 1 (counts) when set, else pass 2 (terms)
    int safe_vars  # every variance and inverse finite and > 0 (pass 1's shortcuts)
    const double *dt_box  # pass 1: per detection row, the box of its keypoints
    int32_t *counts
    const int64_t *pos
    double *terms
    int32_t *scratch  # K ints per thread slot


cdef OksJob _oks_job(const int64_t[::1] d_start, const int64_t[::1] d_end,
                     const int64_t[::1] g_start, const int64_t[::1] g_end,
                     const int64_t[::1] offsets, Py_ssize_t s0, Py_ssize_t s1,
                     const double[:, ::1] dt_kp, const int64_t[::1] dt_rows,
                     const double[:, ::1] gt_kp, const double[:, ::1] gt_box,
                     const double[::1] gt_area, const int64_t[::1] gt_rows,
                     const double[::1] variances, int32_t[::1] counts) except *:
    """The checked job of ``oks_counts`` / ``oks_terms`` (every index the kernels follow)."""
    cdef Py_ssize_t K = variances.shape[0], s, j
    if K < 1 or dt_kp.shape[1] != 3 * K or gt_kp.shape[1] != 3 * K or gt_box.shape[1] != 4:
        raise ValueError(f"keypoints must hold 3 x {K} values (one sigma per keypoint)")
    if not (0 <= s0 <= s1 <= d_start.shape[0]) or offsets.shape[0] != d_start.shape[0] + 1:
        raise ValueError("oks: bad group range")
    if gt_box.shape[0] < gt_kp.shape[0] or gt_area.shape[0] < gt_kp.shape[0]:
        raise ValueError("oks: one box and area per ground truth")
    for j in range(dt_rows.shape[0]):
        if not (0 <= dt_rows[j] < dt_kp.shape[0]):
            raise ValueError("oks: detection row out of range")
    for j in range(gt_rows.shape[0]):
        if not (0 <= gt_rows[j] < gt_kp.shape[0]):
            raise ValueError("oks: ground-truth row out of range")
    for s in range(s0, s1):
        if (d_start[s] < 0 or d_end[s] > dt_rows.shape[0] or g_start[s] < 0
                or g_end[s] > gt_rows.shape[0] or offsets[s + 1] - offsets[s]
                != (d_end[s] - d_start[s]) * (g_end[s] - g_start[s])):
            raise ValueError(f"oks: group {s} has bad ranges")
    if counts.shape[0] < offsets[s1] - offsets[s0]:
        raise ValueError("oks: counts buffer too small")
    cdef OksJob job
    job.s0 = s0
    job.base = offsets[s0]
    job.K = K
    job.lowest = 0.0
    job.d_start = &d_start[0] if d_start.shape[0] else NULL
    job.d_end = &d_end[0] if d_end.shape[0] else NULL
    job.g_start = &g_start[0] if g_start.shape[0] else NULL
    job.g_end = &g_end[0] if g_end.shape[0] else NULL
    job.offsets = &offsets[0]
    job.dt_kp = &dt_kp[0, 0] if dt_kp.shape[0] else NULL
    job.dt_rows = &dt_rows[0] if dt_rows.shape[0] else NULL
    job.gt_kp = &gt_kp[0, 0] if gt_kp.shape[0] else NULL
    job.gt_box = &gt_box[0, 0] if gt_box.shape[0] else NULL
    job.gt_area = &gt_area[0] if gt_area.shape[0] else NULL
    job.gt_rows = &gt_rows[0] if gt_rows.shape[0] else NULL
    job.variances = &variances[0]
    job.inverses = NULL
    job.safe_vars = 0
    job.dt_box = NULL
    job.counts = &counts[0] if counts.shape[0] else NULL
    job.pos = NULL
    job.terms = NULL
    job.scratch = NULL
    return job


def oks_counts(const int64_t[::1] d_start, const int64_t[::1] d_end, const int64_t[::1] g_start,
               const int64_t[::1] g_end, const int64_t[::1] offsets, Py_ssize_t s0, Py_ssize_t s1,
               const double[:, ::1] dt_kp, const int64_t[::1] dt_rows,
               const double[:, ::1] gt_kp, const double[:, ::1] gt_box,
               const double[::1] gt_area, const int64_t[::1] gt_rows,
               const double[::1] variances, int32_t[::1] counts, int64_t[::1] pos,
               int nthreads, double lowest=0.0, const double[:, ::1] dt_box=None):
    """Pass 1 of the OKS of groups s0..s1-1 (``fi_oks_counts``). Pair p of group s (row-major
    D x G, p from ``offsets[s] - offsets[s0]``) gets its term count at ``counts[p]``, -1 where
    its OKS is surely below ``lowest`` > 0 (not worth computing), -2 where it is exactly 1
    (no visible keypoint, every detected one in the doubled box), and the start of its
    terms at ``pos[p]`` (the counted pairs' terms packed in order). Group s's detections are
    rows ``dt_rows[d_start[s]:d_end[s]]`` of ``dt_kp``, its ground truth rows
    ``gt_rows[g_start[s]:g_end[s]]`` of ``gt_kp``, ``gt_box`` and ``gt_area``. Keypoints rows
    are ``x1, y1, v1, ...`` (3K values); ``dt_box`` their boxes (``keypoint_boxes``, made
    here when None). Returns the number of terms (pass 2's buffer)."""
    cdef OksJob job = _oks_job(d_start, d_end, g_start, g_end, offsets, s0, s1, dt_kp, dt_rows,
                               gt_kp, gt_box, gt_area, gt_rows, variances, counts)
    cdef Py_ssize_t P = offsets[s1] - offsets[s0], p
    cdef int64_t total = 0
    if pos.shape[0] < P:
        raise ValueError("oks_counts: pos buffer too small")
    inverses = np.reciprocal(np.asarray(variances))
    cdef const double[::1] inv = inverses
    nthreads = max(1, nthreads)
    cdef int32_t[:, ::1] scratch = np.empty((nthreads, job.K), np.int32)
    if dt_box is None:
        dt_box = keypoint_boxes(dt_kp)
    if dt_box.shape[0] != dt_kp.shape[0] or dt_box.shape[1] != 4:
        raise ValueError("oks_counts: one keypoint box per detection row")
    job.inverses = &inv[0]
    job.dt_box = &dt_box[0, 0] if dt_box.shape[0] else NULL
    v = np.asarray(variances)
    job.safe_vars = bool(np.all(np.isfinite(v) & (v > 0) & np.isfinite(inverses) & (inverses > 0)))
    job.lowest = lowest
    job.scratch = &scratch[0, 0]
    with nogil:
        parallel_for(_oks_task, &job, s1 - s0, 16, nthreads)
        for p in range(P):
            pos[p] = total
            if job.counts[p] > 0:
                total += job.counts[p]
    return total


def oks_terms(const int64_t[::1] d_start, const int64_t[::1] d_end, const int64_t[::1] g_start,
              const int64_t[::1] g_end, const int64_t[::1] offsets, Py_ssize_t s0, Py_ssize_t s1,
              const double[:, ::1] dt_kp, const int64_t[::1] dt_rows,
              const double[:, ::1] gt_kp, const double[:, ::1] gt_box,
              const double[::1] gt_area, const int64_t[::1] gt_rows,
              const double[::1] variances, int32_t[::1] counts, const int64_t[::1] pos,
              double[::1] terms, int nthreads):
    """Pass 2 (``fi_oks_terms``): the terms e_k of every pair that ``oks_counts`` counted, at
    ``terms[pos[p]:pos[p] + counts[p]]``; the arguments as there, unchanged since."""
    cdef OksJob job = _oks_job(d_start, d_end, g_start, g_end, offsets, s0, s1, dt_kp, dt_rows,
                               gt_kp, gt_box, gt_area, gt_rows, variances, counts)
    cdef Py_ssize_t P = offsets[s1] - offsets[s0], p
    cdef int64_t total = 0
    if pos.shape[0] < P:
        raise ValueError("oks_terms: pos buffer too small")
    for p in range(P):  # the positions oks_counts gave: every write lands in terms
        if pos[p] != total or counts[p] > job.K:
            raise ValueError("oks_terms: counts and positions are not those of oks_counts")
        if counts[p] > 0:
            total += counts[p]
    if terms.shape[0] < total:
        raise ValueError("oks_terms: terms buffer too small")
    nthreads = max(1, nthreads)
    cdef int32_t[:, ::1] scratch = np.empty((nthreads, job.K), np.int32)
    job.pos = &pos[0] if P else NULL
    job.terms = &terms[0] if terms.shape[0] else NULL
    job.scratch = &scratch[0, 0]
    with nogil:
        parallel_for(_oks_task, &job, s1 - s0, 16, nthreads)


cdef void _oks_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef OksJob *j = <OksJob *> ctx
    cdef Py_ssize_t s, D, G, p
    for s in range(j.s0 + lo, j.s0 + hi):
        D = j.d_end[s] - j.d_start[s]
        G = j.g_end[s] - j.g_start[s]
        p = j.offsets[s] - j.base
        if D == 0 or G == 0:
            continue
        if j.inverses != NULL:
            fi_oks_counts(j.dt_kp, j.dt_rows + j.d_start[s], D, j.gt_kp, j.gt_box, j.gt_area,
                          j.gt_rows + j.g_start[s], G, j.inverses, j.K, j.lowest,
                          j.safe_vars, j.dt_box, j.scratch + slot * j.K, j.counts + p)
        else:
            fi_oks_terms(j.dt_kp, j.dt_rows + j.d_start[s], D, j.gt_kp, j.gt_box, j.gt_area,
                         j.gt_rows + j.g_start[s], G, j.variances, j.K, j.scratch + slot * j.K,
                         j.counts + p, j.pos + p, j.terms)


def oks_sum(double[::1] exp_terms, const double[::1] terms, const int32_t[::1] counts,
            const int64_t[::1] pos, double[::1] out):
    """``out[p] = sum(exp_terms[pos[p]:][:counts[p]]) / counts[p]`` in numpy's summation order,
    -1 where ``counts[p]`` is -1 (not computed), 1 where it is -2 (exactly 1); ``exp_terms = np.exp(-terms)`` where
    ``oks_terms`` marked a term -1 counting as 0."""
    cdef Py_ssize_t P = out.shape[0], p
    if counts.shape[0] < P or pos.shape[0] < P or exp_terms.shape[0] < terms.shape[0]:
        raise ValueError("oks_sum: buffers too small")
    for p in range(P):
        if counts[p] == -1 or counts[p] == -2:
            continue
        if not (1 <= counts[p] and 0 <= pos[p] <= terms.shape[0] - counts[p]):
            raise ValueError("oks_sum: bad term count or position")
    if P:
        with nogil:
            fi_oks_sum(&exp_terms[0] if exp_terms.shape[0] else NULL,
                       &terms[0] if terms.shape[0] else NULL, &counts[0], &pos[0], P, &out[0])


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
    cdef AccJob job
    job.A = A
    job.M = M
    job.longest = longest
    job.masked = masked
    job.with_scores = with_scores
    job.cat_start = &cat_start[0]
    job.grp = &grp[0]
    job.m_first = &m_first[0]
    job.score = &score[0]
    job.image = &image[0]
    job.image_mask = &image_mask[0]
    job.state = &state[0, 0, 0]
    job.state_areas = state.shape[1]
    job.state_words = state.shape[2]
    job.npig = &npig[0, 0]
    job.npig_areas = npig.shape[1]
    job.k_map = &k_map[0]
    job.a_map = &a_map[0]
    job.rec_thrs = &rec_thrs[0]
    job.R = rec_thrs.shape[0]
    job.T = precision.shape[2]
    job.precision = &precision[0, 0, 0, 0, 0]
    job.recall = &recall[0, 0, 0, 0]
    job.scores = &scores[0, 0, 0, 0, 0]
    job.p_shape = &precision.shape[0]
    job.r_shape = &recall.shape[0]
    job.s_shape = &scores.shape[0]
    job.list_j = &list_j[0, 0]
    job.list_bits = &list_bits[0, 0]
    job.ev_fp = &ev_fp[0, 0]
    job.ev_j = &ev_j[0, 0]
    job.env = &env[0, 0]
    job.counters = &counters[0, 0]
    with nogil:
        parallel_for(_accumulate_task, &job, K * A, 1, nthreads)


cdef struct AccJob:
    Py_ssize_t A  # output area ranges
    Py_ssize_t M
    Py_ssize_t longest
    bint masked
    bint with_scores
    const int64_t *cat_start
    const int64_t *grp
    const uint8_t *m_first
    const double *score
    const int32_t *image
    const uint8_t *image_mask
    const uint64_t *state  # [N, state_areas, state_words]
    Py_ssize_t state_areas
    Py_ssize_t state_words
    const int64_t *npig  # [categories, npig_areas]
    Py_ssize_t npig_areas
    const int64_t *k_map
    const int64_t *a_map
    const double *rec_thrs
    Py_ssize_t R
    Py_ssize_t T
    double *precision  # C-contiguous, shapes p_shape, r_shape, s_shape
    double *recall
    double *scores
    Py_ssize_t *p_shape
    Py_ssize_t *r_shape
    Py_ssize_t *s_shape
    int64_t *list_j  # per slot scratch (see accumulate)
    uint64_t *list_bits
    int64_t *ev_fp
    int64_t *ev_j
    double *env
    int64_t *counters


cdef void _accumulate_task(void *ctx, int64_t lo, int64_t hi, int slot) noexcept nogil:
    cdef AccJob *j = <AccJob *> ctx
    cdef int64_t cell
    for cell in range(lo, hi):
        _accumulate_cell(j, slot, cell // j.A, cell % j.A)


cdef inline Py_ssize_t _cell(const Py_ssize_t *shape, Py_ssize_t k, Py_ssize_t a, Py_ssize_t t,
                             Py_ssize_t m) noexcept nogil:
    """The flat index of [k, a, t, m] in a C-contiguous array of ``shape`` (4 dims and up)."""
    return ((k * shape[1] + a) * shape[2] + t) * shape[3] + m


cdef inline uint64_t _state_word(const AccJob *j, int64_t row, Py_ssize_t a0,
                                 Py_ssize_t blk) noexcept nogil:
    return j.state[(row * j.state_areas + a0) * j.state_words + blk]


cdef void _accumulate_cell(const AccJob *job, int slot, Py_ssize_t k,
                           Py_ssize_t a) noexcept nogil:
    cdef Py_ssize_t M = job.M, longest = job.longest
    cdef bint masked = job.masked
    cdef const int64_t *cat_start = job.cat_start
    cdef const int64_t *grp = job.grp
    cdef const uint8_t *m_first = job.m_first
    cdef const int32_t *image = job.image
    cdef const uint8_t *image_mask = job.image_mask
    cdef int64_t *list_j = job.list_j + slot * longest
    cdef uint64_t *list_bits = job.list_bits + slot * 2 * longest
    cdef int64_t *ev_fp = job.ev_fp + slot * M * longest
    cdef int64_t *ev_j = job.ev_j + slot * M * longest
    cdef double *env = job.env + slot * longest
    cdef int64_t *counters = job.counters + slot * (4 * M + 1)
    cdef Py_ssize_t c = job.k_map[k], a0 = job.a_map[a], T = job.T, n, e, j, m, t, blk
    cdef Py_ssize_t nt
    cdef int64_t n_gt = job.npig[c * job.npig_areas + a0], f
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
    for blk in range(job.state_words):  # thresholds in blocks of 32, one bit each
        nt = min(32, T - 32 * blk)
        if nt <= 0:
            break
        n = 0  # the detections counted (true or false positive) somewhere in the block
        for j in range(cat_start[c], cat_start[c + 1]):
            if masked and not image_mask[image[j]]:
                continue
            word = _state_word(job, grp[j], a0, blk)
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
                _finish(job, 32 * blk + t, k, a, m, first[m], tp[m], n_gt,
                        &ev_fp[m * longest], &ev_j[m * longest], env, a0)


cdef void _finish(const AccJob *job, Py_ssize_t t, Py_ssize_t k, Py_ssize_t a, Py_ssize_t m,
                  int64_t first, int64_t ntp, int64_t n_gt, const int64_t *ev_fp,
                  const int64_t *ev_j, double *env, Py_ssize_t a0) noexcept nogil:
    """Recall, and precision and score at each recall threshold, from the true positives
    (each with the false positives before it) of one cell."""
    cdef Py_ssize_t R = job.R, e, r, filled = 0
    cdef const double *rec_thrs = job.rec_thrs
    cdef const double *score = job.score
    cdef bint with_scores = job.with_scores
    cdef double *precision = job.precision + _cell(job.p_shape, k, a, t, m) * job.p_shape[4]
    cdef double *scores = NULL
    if with_scores:
        scores = job.scores + _cell(job.s_shape, k, a, t, m) * job.s_shape[4]
    cdef double ngt = <double> n_gt, rc0, thr, prev_thr = -1.0, q, ss, p_e
    cdef bint first_tp
    job.recall[_cell(job.r_shape, k, a, t, m)] = (<double> ntp) / ngt if first >= 0 else 0.0
    if first >= 0:
        # Precision at each true positive, then its running max from the right. Between true
        # positives precision only falls, so the envelope at a true positive (or at index 0)
        # is all that np.searchsorted(rc, recThrs, "left") can land on.
        for e in range(ntp - 1, -1, -1):
            p_e = fi_precision(<double> (e + 1), <double> ev_fp[e])
            env[e] = p_e if (e == ntp - 1 or p_e > env[e + 1]) else env[e + 1]
        # recall at index 0: 1/npig when the first detection is a true positive
        first_tp = (_state_word(job, job.grp[first], a0, t // 32) >> (t % 32)) & 1
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
            precision[r] = q
            if with_scores:
                scores[r] = ss
            filled = r + 1
    for r in range(filled, R):
        precision[r] = 0.0
        if with_scores:
            scores[r] = 0.0


# ---------------------------------------------------------------------------------------------
# Segmentations of annotation dicts ("segm")
# ---------------------------------------------------------------------------------------------

cdef object _KEY_SEGM = "segmentation", _KEY_IMAGE = "image_id", _KEY_COUNTS = "counts"
cdef object _KEY_H = "height", _KEY_W = "width"

cdef inline bint _numbers(list part):
    cdef object v
    for v in part:
        if type(v) is not float and type(v) is not int:
            return False
    return True

cdef int _kind(object ann, dict imgs, int64_t *h, int64_t *w):
    # 0: polygon parts (lists of Python floats / ints) of an image with int height and width;
    # 1: an RLE dict; 2: anything else (pycocotools' annToRLE in Python, or its error)
    if type(ann) is not dict:
        return 2
    segm = (<dict>ann).get(_KEY_SEGM)
    if type(segm) is dict:
        counts = (<dict>segm).get(_KEY_COUNTS)  # a compressed string or the runs (crowd)
        return 1 if type(counts) is bytes or type(counts) is str or type(counts) is list else 2
    if type(segm) is not list or not segm:
        return 2
    for part in <list>segm:
        if type(part) is not list or not _numbers(<list>part):
            return 2
    try:
        img = imgs.get((<dict>ann).get(_KEY_IMAGE))
    except TypeError:  # an unhashable image id
        return 2
    if type(img) is not dict:
        return 2
    height, width = (<dict>img).get(_KEY_H), (<dict>img).get(_KEY_W)
    if type(height) is not int or type(width) is not int:
        return 2
    h[0] = height
    w[0] = width
    return 0

def segmentations(list anns, dict imgs):
    """How ``annToRLE`` would read each annotation, in one pass over the dicts: (kind uint8 [n]:
    0 polygons, 1 an RLE dict (compressed or not), 2 anything else; parts int64 [n], the
    number of polygons of each kind-0 annotation; their coordinates float64, each polygon's
    count int64 (an odd last number dropped, as pycocotools), and each polygon's image height
    and width)."""
    cdef Py_ssize_t n = len(anns), k, total = 0, n_parts = 0, at = 0, j = 0, m, c
    kind_array = np.empty(n, np.uint8)
    parts_array = np.zeros(n, np.int64)
    cdef uint8_t[::1] kind = kind_array
    cdef int64_t[::1] parts = parts_array
    cdef int64_t h = 0, w = 0
    sizes = np.empty((n, 2), np.int64)
    cdef int64_t[:, ::1] size = sizes
    for k in range(n):
        kind[k] = _kind(anns[k], imgs, &h, &w)
        if kind[k] == 0:
            size[k, 0] = h
            size[k, 1] = w
            segm = (<dict>anns[k])[_KEY_SEGM]
            parts[k] = len(<list>segm)
            n_parts += parts[k]
            for part in <list>segm:
                total += len(<list>part) // 2 * 2
    xy_array = np.empty(total, np.float64)
    lengths_array = np.empty(n_parts, np.int64)
    part_h_array = np.empty(n_parts, np.int64)
    part_w_array = np.empty(n_parts, np.int64)
    cdef double[::1] xy = xy_array
    cdef int64_t[::1] lengths = lengths_array, part_h = part_h_array, part_w = part_w_array
    for k in range(n):
        if kind[k] != 0:
            continue
        for part in <list>(<dict>anns[k])[_KEY_SEGM]:
            m = len(<list>part) // 2 * 2
            if j >= n_parts or at + m > total or not _numbers(<list>part):
                raise RuntimeError("the segmentations changed while they were read")
            for c in range(m):
                xy[at + c] = <double>(<list>part)[c]  # a float or an int: checked above
            at += m
            lengths[j] = m
            part_h[j] = size[k, 0]
            part_w[j] = size[k, 1]
            j += 1
    return kind_array, parts_array, xy_array, lengths_array, part_h_array, part_w_array
