# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend of the panoptic family: the area of every (ground-truth id, predicted id) pair.

One pass over the two id maps of an image. Panoptic maps are piecewise constant, so the pass
follows runs of equal pairs and adds a run to an open-addressing hash table (keys
``gt << 32 | pred``, linear probing, grown at half load) only where the pair changes: no
per-segment masks, no sort of the pixels. The RGB variant decodes ``R + 256 G + 256² B`` from
the PNG's bytes in the same pass (channel offsets given, so BGR and RGBA need no copy). Both
release the GIL, so the folder evaluation runs images in parallel threads. A table that cannot
grow (out of memory) raises MemoryError; the kernels write nothing outside their own table.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport abs, calloc, free
from libc.string cimport memcmp, memcpy

import sys

import numpy as np

cdef bint LITTLE_ENDIAN = sys.byteorder == "little"
cdef Py_ssize_t[3] RGB_ORDER = [0, 1, 2]

cdef enum:
    FIRST_CAPACITY = 256  # slots; a 480x640 COCO image has ~100 pairs


cdef struct Table:
    uint64_t* keys
    int64_t* counts  # 0: an empty slot (every run has at least one pixel)
    Py_ssize_t capacity  # a power of two
    Py_ssize_t used


cdef inline Py_ssize_t _slot(uint64_t key, Py_ssize_t mask) noexcept nogil:
    key ^= key >> 33  # the murmur3 finaliser: ids differing in a few bits spread out
    key *= 0xFF51AFD7ED558CCDULL
    key ^= key >> 33
    return <Py_ssize_t>(key & <uint64_t>mask)


cdef int _allocate(Table* t, Py_ssize_t capacity) noexcept nogil:
    t.keys = <uint64_t*>calloc(capacity, sizeof(uint64_t))
    t.counts = <int64_t*>calloc(capacity, sizeof(int64_t))
    t.capacity, t.used = capacity, 0
    if t.keys == NULL or t.counts == NULL:
        free(t.keys)
        free(t.counts)
        t.keys, t.counts = NULL, NULL
        return -1
    return 0


cdef void _release(Table* t) noexcept nogil:
    free(t.keys)
    free(t.counts)
    t.keys, t.counts = NULL, NULL


cdef inline void _put(Table* t, uint64_t key, int64_t n) noexcept nogil:
    cdef Py_ssize_t mask = t.capacity - 1
    cdef Py_ssize_t i = _slot(key, mask)
    while t.counts[i] != 0:
        if t.keys[i] == key:
            t.counts[i] += n
            return
        i = (i + 1) & mask
    t.keys[i] = key
    t.counts[i] = n
    t.used += 1


cdef int _add(Table* t, uint64_t key, int64_t n) noexcept nogil:
    """Add ``n`` pixels to pair ``key``; -1 if the table had to grow and could not."""
    cdef Table old
    cdef Py_ssize_t i
    if n == 0:  # an empty run (a pass over no pixels): a count of 0 would mark an empty slot
        return 0
    if 2 * (t.used + 1) > t.capacity:
        old = t[0]
        if _allocate(t, 2 * old.capacity) < 0:
            t[0] = old
            return -1
        for i in range(old.capacity):
            if old.counts[i] != 0:
                _put(t, old.keys[i], old.counts[i])
        _release(&old)
    _put(t, key, n)
    return 0


cdef struct Run:
    uint64_t key  # the pair of the current run of equal pixels
    int64_t length


cdef inline int _step(Table* t, Run* run, uint64_t key) noexcept nogil:
    """One more pixel of pair ``key``: a new run adds the finished one to the table."""
    if key != run.key:
        if _add(t, run.key, run.length) < 0:
            return -1
        run.key, run.length = key, 0
    run.length += 1
    return 0


cdef int _count_ids(const uint32_t* gt, const uint32_t* pred, Py_ssize_t n, Table* t) noexcept nogil:
    cdef Py_ssize_t i
    cdef Run run = Run((<uint64_t>gt[0] << 32) | pred[0], 0)
    for i in range(n):
        if _step(t, &run, (<uint64_t>gt[i] << 32) | pred[i]) < 0:
            return -1
    return _add(t, run.key, run.length)


cdef inline uint64_t _rgb(const uint8_t* px, Py_ssize_t r, Py_ssize_t g, Py_ssize_t b) noexcept nogil:
    return <uint64_t>px[r] | (<uint64_t>px[g] << 8) | (<uint64_t>px[b] << 16)


cdef inline uint64_t _load24(const uint8_t* px) noexcept nogil:
    # R + 256 G + 256² B of RGB bytes in order, as one unaligned little-endian load (reads one
    # byte past the pixel: the caller keeps the last pixel of a map off this path)
    cdef uint32_t v
    memcpy(&v, px, 4)
    return <uint64_t>(v & 0xFFFFFF)


cdef inline bint _same8(const uint8_t* x, Py_ssize_t bpp) noexcept nogil:
    """The 8 pixels at ``x`` each equal the pixel to their left: 8 * bpp bytes against the same
    bytes one pixel earlier, a word at a time (equal bytes, so equal ids, whatever the order)."""
    cdef uint64_t a, b, d = 0
    cdef Py_ssize_t k
    for k in range(bpp):
        memcpy(&a, x + 8 * k, 8)
        memcpy(&b, x + 8 * k - bpp, 8)
        d |= a ^ b
    return d == 0


cdef inline uint64_t _key_at(const uint8_t* g, Py_ssize_t gbpp, const Py_ssize_t* gc,
                             const uint8_t* p, Py_ssize_t pbpp, const Py_ssize_t* pc,
                             Py_ssize_t j, bint fast) noexcept nogil:
    g += j * gbpp
    p += j * pbpp
    if fast:  # 4-byte loads: the caller keeps the last pixel of a buffer off this path
        return (_load24(g) << 32) | _load24(p)
    return (_rgb(g, gc[0], gc[1], gc[2]) << 32) | _rgb(p, pc[0], pc[1], pc[2])


cdef Py_ssize_t _runs(const uint8_t* g, Py_ssize_t gbpp, const Py_ssize_t* gc,
                      const uint8_t* p, Py_ssize_t pbpp, const Py_ssize_t* pc,
                      Py_ssize_t n, bint in_order,
                      uint64_t* run_keys, int64_t* run_lengths) noexcept nogil:
    """The runs of equal (gt, pred) pairs among ``n >= 1`` consecutive pixels, into
    ``run_keys``/``run_lengths`` (room for n); returns how many.

    Panoptic maps are piecewise constant: where 8 pixels in both maps repeat their left
    neighbours (a few word compares) the run grows by 8 without looking at the pixels; after
    a block that does not, 8 pixels are looked at one by one. ``in_order``: R, G, B at 0, 1, 2
    on a little-endian machine, read with 4-byte loads except for the last pixel (which would
    read one byte past it)."""
    cdef Py_ssize_t j = 1, stop, runs = 0
    cdef uint64_t key, run_key = _key_at(g, gbpp, gc, p, pbpp, pc, 0, in_order and n > 1)
    cdef int64_t run = 1
    while j < n:
        if j + 8 <= n and _same8(g + j * gbpp, gbpp) and _same8(p + j * pbpp, pbpp):
            run += 8
            j += 8
            continue
        stop = j + 8 if j + 8 < n else n
        while j < stop:
            key = _key_at(g, gbpp, gc, p, pbpp, pc, j, in_order and j < n - 1)
            if key != run_key:
                run_keys[runs], run_lengths[runs] = run_key, run
                runs += 1
                run_key, run = key, 0
            run += 1
            j += 1
    run_keys[runs], run_lengths[runs] = run_key, run
    return runs + 1


cdef enum:
    RGB_CHUNK = 4096  # pixels of a decoded map per _runs call


cdef int _count_rgb(
    const uint8_t* gt, Py_ssize_t gt_step, const Py_ssize_t* gc,
    const uint8_t* pred, Py_ssize_t pred_step, const Py_ssize_t* pc,
    Py_ssize_t n, bint in_order, uint64_t* run_keys, int64_t* run_lengths, Table* t,
) noexcept nogil:
    """Pairs of ``n`` RGB pixels (R, G, B at the channel offsets), a chunk of runs at a time."""
    cdef Py_ssize_t chunk, start, size, r, runs
    for chunk in range((n + RGB_CHUNK - 1) // RGB_CHUNK):
        start = chunk * RGB_CHUNK
        size = RGB_CHUNK if start + RGB_CHUNK < n else n - start
        # 4-byte loads only where the chunk's last pixel is not the map's last one
        runs = _runs(gt + start * gt_step, gt_step, gc, pred + start * pred_step, pred_step, pc,
                     size, in_order and start + size < n, run_keys, run_lengths)
        for r in range(runs):
            if _add(t, run_keys[r], run_lengths[r]) < 0:
                return -1
    return 0


cdef tuple _collect(Table* t):
    keys = np.empty(t.used, np.uint64)
    counts = np.empty(t.used, np.int64)
    cdef uint64_t[::1] k = keys
    cdef int64_t[::1] c = counts
    cdef Py_ssize_t i, j = 0
    for i in range(t.capacity):
        if t.counts[i] != 0:
            k[j] = t.keys[i]
            c[j] = t.counts[i]
            j += 1
    order = np.argsort(keys)
    return keys[order], counts[order]


cdef int _start(Table* t) except -1:
    if _allocate(t, FIRST_CAPACITY) < 0:
        raise MemoryError("cannot allocate the pair table")
    return 0


cdef tuple _no_pairs():
    return np.empty(0, np.uint64), np.empty(0, np.int64)


def pair_counts(const uint32_t[::1] gt, const uint32_t[::1] pred):
    """Sorted keys ``gt << 32 | pred`` (uint64) of the pairs present, and their pixel counts.

    ``gt`` and ``pred`` are flattened id maps of the same length.
    """
    cdef Py_ssize_t n = gt.shape[0]
    cdef Table t
    cdef int status = 0
    if pred.shape[0] != n:
        raise ValueError(f"id maps of {n} and {pred.shape[0]} pixels")
    if n == 0:
        return _no_pairs()
    _start(&t)
    try:
        with nogil:
            status = _count_ids(&gt[0], &pred[0], n, &t)
        if status < 0:
            raise MemoryError("cannot grow the pair table")
        return _collect(&t)
    finally:
        _release(&t)


def pair_counts_rgb(const uint8_t[:, ::1] gt, const uint8_t[:, ::1] pred, gt_channels, pred_channels):
    """:func:`pair_counts` of RGB pixels ``[N, C]`` (uint8), decoding ``R + 256 G + 256² B``.

    ``gt_channels`` / ``pred_channels`` are the (R, G, B) channel indices (``(2, 1, 0)`` for BGR).
    """
    cdef Py_ssize_t n = gt.shape[0]
    cdef Table t
    cdef int status = 0
    cdef Py_ssize_t gc[3]
    cdef Py_ssize_t pc[3]
    if pred.shape[0] != n:
        raise ValueError(f"id maps of {n} and {pred.shape[0]} pixels")
    for i in range(3):
        gc[i], pc[i] = gt_channels[i], pred_channels[i]
        if not (0 <= gc[i] < gt.shape[1] and 0 <= pc[i] < pred.shape[1]):
            raise ValueError(f"channel indices {gt_channels}, {pred_channels} out of range")
    cdef bint in_order = LITTLE_ENDIAN and tuple(gt_channels) == tuple(pred_channels) == (0, 1, 2)
    if n == 0:
        return _no_pairs()
    _start(&t)
    cdef uint64_t* run_keys = <uint64_t*>calloc(RGB_CHUNK, sizeof(uint64_t))
    cdef int64_t* run_lengths = <int64_t*>calloc(RGB_CHUNK, sizeof(int64_t))
    try:
        if run_keys == NULL or run_lengths == NULL:
            raise MemoryError("cannot allocate run buffers")
        with nogil:
            status = _count_rgb(&gt[0, 0], gt.shape[1], gc, &pred[0, 0], pred.shape[1], pc,
                                n, in_order, run_keys, run_lengths, &t)
        if status < 0:
            raise MemoryError("cannot grow the pair table")
        return _collect(&t)
    finally:
        _release(&t)
        free(run_keys)
        free(run_lengths)


cdef inline uint8_t _paeth(int a, int b, int c) noexcept nogil:
    # branch-free (selects compile to conditional moves): p - a = b - c, p - b = a - c
    cdef int pa = abs(b - c)
    cdef int pb = abs(a - c)
    cdef int pc = abs(a + b - 2 * c)
    cdef int other = c if pc < pb else b
    return <uint8_t>(a if ((pa <= pb) & (pa <= pc)) else other)


cdef inline void _sub_line(uint8_t* x, Py_ssize_t length, Py_ssize_t bpp) noexcept nogil:
    # called with a constant bpp (3 or 4): the channel loop unrolls and the left pixel stays in
    # registers (a store-to-load round trip per byte otherwise)
    cdef Py_ssize_t j, c
    cdef uint8_t left[4]
    for c in range(bpp):
        left[c] = x[c]
    j = bpp
    while j < length:  # (a range with a variable step is a Python range in Cython)
        for c in range(bpp):
            left[c] = <uint8_t>(x[j + c] + left[c])
            x[j + c] = left[c]
        j += bpp


cdef inline void _average_line(uint8_t* x, const uint8_t* up, Py_ssize_t length,
                               Py_ssize_t bpp) noexcept nogil:
    cdef Py_ssize_t j, c
    cdef uint8_t left[4]
    for c in range(bpp):
        left[c] = <uint8_t>(x[c] + ((up[c] if up != NULL else 0) >> 1))
        x[c] = left[c]
    j = bpp
    while j < length:  # (a range with a variable step is a Python range in Cython)
        for c in range(bpp):
            left[c] = <uint8_t>(x[j + c] + ((left[c] + (up[j + c] if up != NULL else 0)) >> 1))
            x[j + c] = left[c]
        j += bpp


cdef inline void _paeth_line(uint8_t* x, const uint8_t* up, Py_ssize_t length,
                             Py_ssize_t bpp) noexcept nogil:
    cdef Py_ssize_t j, c
    cdef uint8_t left[4]
    cdef uint8_t upleft[4]
    cdef uint8_t above
    for c in range(bpp):
        left[c] = <uint8_t>(x[c] + up[c])  # no left neighbour: Paeth picks the one above
        upleft[c] = up[c]
        x[c] = left[c]
    cdef bint flat
    j = bpp
    while j < length:  # (a range with a variable step is a Python range in Cython)
        # above == upper-left (the line above is flat here, as in most of a panoptic map):
        # Paeth predicts the left pixel, no need to wait for the full predictor on the chain
        flat = True
        for c in range(bpp):
            flat = flat & (up[j + c] == up[j + c - bpp])
        if flat:
            for c in range(bpp):
                left[c] = <uint8_t>(x[j + c] + left[c])
                x[j + c] = left[c]
                upleft[c] = up[j + c]
        else:
            for c in range(bpp):
                above = up[j + c]
                left[c] = <uint8_t>(x[j + c] + _paeth(left[c], above, upleft[c]))
                upleft[c] = above
                x[j + c] = left[c]
        j += bpp


cdef int _unfilter(uint8_t* row, const uint8_t* prior, Py_ssize_t length, Py_ssize_t bpp) noexcept nogil:
    """Undo the PNG filter of one scanline in place (``row[0]`` is the filter type; ``prior``
    the previous scanline's bytes, already unfiltered, or NULL on the first line)."""
    cdef Py_ssize_t j
    cdef uint8_t kind = row[0]
    cdef uint8_t* x = row + 1
    if kind == 0:
        return 0
    if kind == 2:
        if prior != NULL:
            for j in range(length):
                x[j] = <uint8_t>(x[j] + prior[j])
        return 0
    if kind > 4:
        return -1
    if kind == 4 and prior == NULL:  # Paeth on the first line is Sub
        kind = 1
    if bpp == 3:  # constant arguments: each call compiles to its own unrolled loop
        if kind == 1:
            _sub_line(x, length, 3)
        elif kind == 3:
            _average_line(x, prior, length, 3)
        else:
            _paeth_line(x, prior, length, 3)
    else:
        if kind == 1:
            _sub_line(x, length, 4)
        elif kind == 3:
            _average_line(x, prior, length, 4)
        else:
            _paeth_line(x, prior, length, 4)
    return 0


cdef struct Lines:
    # one image's scanlines: ``data`` [H, pitch] (filter byte first), unfiltered one at a time
    uint8_t* data
    Py_ssize_t pitch
    Py_ssize_t bpp
    const uint8_t* zeros  # pitch - 1 zero bytes
    const uint8_t* line  # the current line's unfiltered pixels (maybe an earlier line's buffer)


cdef int _next_line(Lines* s, Py_ssize_t i) noexcept nogil:
    """Unfilter line ``i``: 1 if it equals the previous line, 0 if not, -1 for a bad filter."""
    cdef uint8_t* row = s.data + i * s.pitch
    if i > 0 and row[0] == 2 and memcmp(row + 1, s.zeros, s.pitch - 1) == 0:
        return 1  # "Up" with nothing added: the previous line again, nothing to undo
    if _unfilter(row, s.line if i > 0 else NULL, s.pitch - 1, s.bpp) < 0:
        return -1
    s.line = row + 1
    return 0


cdef int _count_scanlines(Lines* gt, Lines* pred, Py_ssize_t height, Py_ssize_t width,
                          uint64_t* run_keys, int64_t* run_lengths, Table* t) noexcept nogil:
    """Unfilter both images line by line and count the pairs of each line as it is done; a
    line equal to the previous one in both images adds the previous line's runs again.

    -1: out of memory, -2: a bad ground-truth filter type, -3: a bad predicted one."""
    cdef Py_ssize_t i, r, runs = 0
    cdef int same_gt, same_pred
    for i in range(height):
        same_gt = _next_line(gt, i)
        same_pred = _next_line(pred, i)
        if same_gt < 0:
            return -2
        if same_pred < 0:
            return -3
        if not (same_gt and same_pred):
            # 4-byte loads but for the last pixel of a line: after the last line of an RGB
            # image there is nothing to read
            runs = _runs(gt.line, gt.bpp, RGB_ORDER, pred.line, pred.bpp, RGB_ORDER, width,
                         True, run_keys, run_lengths)
        for r in range(runs):
            if _add(t, run_keys[r], run_lengths[r]) < 0:
                return -1
    return 0


def pair_counts_scanlines(uint8_t[:, ::1] gt, Py_ssize_t gt_bpp, uint8_t[:, ::1] pred,
                          Py_ssize_t pred_bpp, Py_ssize_t width):
    """:func:`pair_counts_rgb` of two inflated 8-bit RGB(A) PNG streams, PNG filters undone
    in place in the same pass: ``[H, 1 + W * bpp]`` scanlines, ``bpp`` 3 (RGB) or 4 (RGBA).

    Raises ValueError naming "ground truth" or "prediction" for a bad filter type.
    """
    cdef Py_ssize_t height = gt.shape[0]
    cdef Table t
    cdef int status = 0
    if not LITTLE_ENDIAN:
        raise ValueError("the scanline kernel needs a little-endian machine")
    if gt_bpp not in (3, 4) or pred_bpp not in (3, 4):
        raise ValueError("scanlines must be 8-bit RGB or RGBA")
    if (pred.shape[0] != height or gt.shape[1] != 1 + width * gt_bpp
            or pred.shape[1] != 1 + width * pred_bpp):
        raise ValueError("scanline arrays do not match the image size")
    if height == 0 or width == 0:
        return _no_pairs()
    cdef Lines g, p
    cdef uint8_t* zeros = <uint8_t*>calloc(max(gt.shape[1], pred.shape[1]), 1)
    cdef uint64_t* run_keys = <uint64_t*>calloc(width, sizeof(uint64_t))
    cdef int64_t* run_lengths = <int64_t*>calloc(width, sizeof(int64_t))
    t.keys, t.counts = NULL, NULL  # released in `finally` whatever happens
    g.data, g.pitch, g.bpp, g.zeros, g.line = &gt[0, 0], gt.shape[1], gt_bpp, zeros, NULL
    p.data, p.pitch, p.bpp, p.zeros, p.line = &pred[0, 0], pred.shape[1], pred_bpp, zeros, NULL
    try:
        if zeros == NULL or run_keys == NULL or run_lengths == NULL:
            raise MemoryError("cannot allocate line buffers")
        _start(&t)
        with nogil:
            status = _count_scanlines(&g, &p, height, width, run_keys, run_lengths, &t)
        if status == -1:
            raise MemoryError("cannot grow the pair table")
        if status < 0:
            raise ValueError(f"bad PNG filter type in the {'ground truth' if status == -2 else 'prediction'}")
        return _collect(&t)
    finally:
        _release(&t)
        free(zeros)
        free(run_keys)
        free(run_lengths)


def describe() -> str:
    return "compiled (serial per image; images run in parallel threads)"
