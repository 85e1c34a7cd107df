# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Cython backend of the panoptic family: the area of every (ground-truth id, predicted id) pair.

One pass over the two id maps of an image. Panoptic maps are piecewise constant, so the pass
follows runs of equal pairs and adds a run to an open-addressing hash table (keys
``gt << 32 | pred``, linear probing, grown at half load) only where the pair changes: no
per-segment masks, no sort of the pixels. The RGB variant decodes ``R + 256 G + 256² B`` from
the PNG's bytes in the same pass (channel offsets given, so BGR and RGBA need no copy). The
scanline variant reads inflated PNG data and never rebuilds the pixels: it undoes the PNG
filters on runs (see "PNG scanlines, as runs" below). All release the GIL.

The matching of one image's segments (``match_pairs``) runs here too, and ``evaluate_pngs``
runs whole images (files read, PNGs inflated, counted, matched) on fastiou's pool, one task per
image: what ``pq_compute`` runs (see "whole images on the pool" below). A table that cannot
grow (out of memory) raises MemoryError; the kernels write nothing outside their own buffers.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport abs, calloc, free, malloc, qsort
from libc.stddef cimport ptrdiff_t
from libc.stdio cimport FILE, SEEK_END, SEEK_SET, fclose, fopen, fread, fseek, ftell
from libc.string cimport memcmp, memcpy, memset
from cpython.pyport cimport PY_SSIZE_T_MAX

from fastiou._core._pool cimport parallel_for

import os
import sys

import numpy as np

cdef bint LITTLE_ENDIAN = sys.byteorder == "little"

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


cdef extern from "_lines.h" nogil:
    ptrdiff_t fastiou_diff_pixels(const uint8_t* a, const uint8_t* b, ptrdiff_t nbytes,
                                  ptrdiff_t bpp, ptrdiff_t* out)


# ---------------------------------------------------------------- PNG scanlines, as runs
#
# A COCO panoptic PNG is piecewise constant, and so are its filtered scanlines: almost every
# residual is zero. The kernel never rebuilds the pixels. It keeps each line as its runs of
# equal ids (where each starts, and its id) and builds a line's runs from its residuals and the
# runs of the line above: a pixel equals its left neighbour unless its residual is nonzero, or
# (Up, Paeth) the pixel above differs from the one above-left, or (Up) the residual to its left
# is nonzero; only those pixels are computed (an SSE2 scan finds the nonzero residuals).
# Filters act on each byte alone, so only the R, G, B bytes are followed (alpha is ignored,
# as panopticapi's rgb2id ignores it).

cdef struct Runs:
    Py_ssize_t* starts  # [runs + 1]: where each run starts; starts[runs] is the width
    uint32_t* ids  # [runs]: R + 256 G + 256² B
    Py_ssize_t runs


cdef struct Lines:
    const uint8_t* data  # [H, pitch]: each line's filter type, then its filtered bytes
    Py_ssize_t pitch
    Py_ssize_t bpp
    const uint8_t* zeros  # pitch zero bytes
    Runs* line  # the runs of the current line
    Runs* spare  # room for the next line's runs
    Runs first, second  # the storage of `line` and `spare`
    ptrdiff_t* changed  # [width + 1] scratch: pixels whose bytes differ
    uint32_t* above  # [width] scratch: the line above pixel by pixel (Average filter)


cdef inline uint32_t _residual(const uint8_t* r, Py_ssize_t j, Py_ssize_t bpp) noexcept nogil:
    r += j * bpp
    return <uint32_t>r[0] | (<uint32_t>r[1] << 8) | (<uint32_t>r[2] << 16)


cdef inline uint32_t _add_bytes(uint32_t a, uint32_t b) noexcept nogil:
    # three bytes added each modulo 256 (no carry from one into the next)
    return ((a & 0x7F7F7F) + (b & 0x7F7F7F)) ^ ((a ^ b) & 0x808080)


cdef inline uint32_t _mean_bytes(uint32_t a, uint32_t b) noexcept nogil:
    # floor((a + b) / 2) of each byte
    return (a & b) + (((a ^ b) & 0xFEFEFE) >> 1)


cdef inline uint32_t _paeth_bytes(uint32_t a, uint32_t b, uint32_t c) noexcept nogil:
    cdef uint32_t out = 0
    cdef int shift
    for shift in range(0, 24, 8):
        out |= <uint32_t>_paeth((a >> shift) & 255, (b >> shift) & 255, (c >> shift) & 255) << shift
    return out


cdef inline Py_ssize_t _push(Runs* out, Py_ssize_t runs, Py_ssize_t j, uint32_t x) noexcept nogil:
    """A run of id ``x`` starting at pixel ``j`` after the first ``runs``; the new count."""
    out.starts[runs], out.ids[runs] = j, x
    return runs + 1


cdef inline void _close(Runs* out, Py_ssize_t runs, Py_ssize_t n) noexcept nogil:
    out.starts[runs] = n
    out.runs = runs


cdef void _walk(Lines* s, const uint8_t* r, uint8_t kind, Py_ssize_t n) noexcept nogil:
    """The runs of a Sub (1), Up (2) or Paeth (4) line from its residuals ``r`` and the runs of
    the line above, looking only at the pixels that can differ from their left neighbour."""
    cdef const Runs* up = s.line
    cdef Runs* out = s.spare
    cdef ptrdiff_t* changed = s.changed
    cdef Py_ssize_t bpp = s.bpp
    cdef Py_ssize_t m = fastiou_diff_pixels(r, NULL, n * bpp, bpp, changed)
    cdef Py_ssize_t ci = 0, ui = 1, runs = 1, j, pending = n
    cdef uint32_t left, x, residual, above, upleft
    cdef bint uses_up = kind != 1
    # pixel 0 has no left neighbour: Paeth predicts the pixel above there, as Up does
    residual = _residual(r, 0, bpp)
    left = residual if kind == 1 else _add_bytes(residual, up.ids[0])
    if m > 0 and changed[0] == 0:
        ci = 1
    if kind == 2 and residual != 0:
        pending = 1
    _push(out, 0, 0, left)
    while True:
        # the next pixel that can differ from its left neighbour
        j = changed[ci] if ci < m else n
        if uses_up and up.starts[ui] < j:
            j = up.starts[ui]
        if pending < j:
            j = pending
        if j >= n:
            break
        if ci < m and changed[ci] == j:
            residual = _residual(r, j, bpp)
            ci += 1
        else:
            residual = 0
        if pending == j:
            pending = n
        if uses_up and up.starts[ui] == j:  # the line above changes here
            ui += 1
        if kind == 1:
            x = _add_bytes(residual, left)
        elif kind == 2:
            x = _add_bytes(residual, up.ids[ui - 1])
            if residual != 0:  # the next pixel differs from this one unless it gets it back
                pending = j + 1
        else:
            above = up.ids[ui - 1]
            upleft = up.ids[ui - 2] if up.starts[ui - 1] == j else above
            x = _add_bytes(residual, _paeth_bytes(left, above, upleft))
        if x != left:
            runs = _push(out, runs, j, x)
            left = x
    _close(out, runs, n)


cdef void _plain(Lines* s, const uint8_t* r, Py_ssize_t n) noexcept nogil:
    """The runs of an unfiltered line (type 0): where a pixel's bytes differ from its left
    neighbour's."""
    cdef Runs* out = s.spare
    cdef Py_ssize_t bpp = s.bpp, m, k, j
    m = fastiou_diff_pixels(r + bpp, r, (n - 1) * bpp, bpp, s.changed)
    _push(out, 0, 0, _residual(r, 0, bpp))
    for k in range(m):
        j = s.changed[k] + 1
        _push(out, k + 1, j, _residual(r, j, bpp))
    _close(out, m + 1, n)


cdef void _average(Lines* s, const uint8_t* r, Py_ssize_t n) noexcept nogil:
    """The runs of an Average line (type 3), pixel by pixel (rare in panoptic PNGs)."""
    cdef const Runs* up = s.line
    cdef Runs* out = s.spare
    cdef Py_ssize_t k, j, runs = 0
    cdef uint32_t left = 0, x
    for k in range(up.runs):
        for j in range(up.starts[k], up.starts[k + 1]):
            s.above[j] = up.ids[k]
    for j in range(n):
        x = _add_bytes(_residual(r, j, s.bpp), _mean_bytes(left, s.above[j]))
        if j == 0 or x != left:
            runs = _push(out, runs, j, x)
        left = x
    _close(out, runs, n)


cdef int _next_line(Lines* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Line ``i``'s runs into ``s.line``: 1 if the line equals the previous one (the runs stay),
    0 if not, -1 for a bad filter type."""
    cdef const uint8_t* row = s.data + i * s.pitch
    cdef uint8_t kind = row[0]
    cdef Runs* done
    if kind > 4:
        return -1
    if i > 0 and kind == 2 and memcmp(row + 1, s.zeros, s.pitch - 1) == 0:
        return 1  # "Up" with nothing added: the previous line again
    if kind == 0:
        _plain(s, row + 1, n)
    elif kind == 3:
        _average(s, row + 1, n)
    else:
        _walk(s, row + 1, kind, n)
    done = s.spare
    s.spare = s.line
    s.line = done
    return 0


cdef Py_ssize_t _merge_runs(const Runs* gt, const Runs* pred, uint64_t* run_keys,
                            int64_t* run_lengths) noexcept nogil:
    """The runs of equal (gt, pred) pairs of a line from the two maps' runs; returns how many."""
    cdef Py_ssize_t i = 0, k = 0, runs = 0, at = 0, end
    while i < gt.runs:  # both end at the width together
        end = gt.starts[i + 1] if gt.starts[i + 1] < pred.starts[k + 1] else pred.starts[k + 1]
        run_keys[runs] = (<uint64_t>gt.ids[i] << 32) | pred.ids[k]
        run_lengths[runs] = end - at
        runs += 1
        at = end
        i += gt.starts[i + 1] == end
        k += pred.starts[k + 1] == end
    return runs


cdef int _add_runs(Table* t, const uint64_t* run_keys, const int64_t* run_lengths,
                   Py_ssize_t runs, int64_t lines) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(runs):
        if _add(t, run_keys[r], run_lengths[r] * lines) < 0:
            return -1
    return 0


cdef int _count_scanlines(Lines* gt, Lines* pred, Py_ssize_t height, Py_ssize_t width,
                          uint64_t* run_keys, int64_t* run_lengths, Table* t) noexcept nogil:
    """Both images' runs line by line, merged into pair runs; a line equal to the previous one
    in both repeats the pair runs, which go to the table once per stretch of equal lines
    (times its height). -1: out of memory, -2: a bad ground-truth filter type, -3: a bad
    predicted one."""
    cdef Py_ssize_t i, runs = 0
    cdef int64_t lines = 0  # lines of the current pair runs not yet in the table
    cdef int same_gt, same_pred
    for i in range(height):
        same_gt = _next_line(gt, i, width)
        same_pred = _next_line(pred, i, width)
        if same_gt < 0:
            return -2
        if same_pred < 0:
            return -3
        if same_gt and same_pred:
            lines += 1
            continue
        if _add_runs(t, run_keys, run_lengths, runs, lines) < 0:
            return -1
        runs = _merge_runs(gt.line, pred.line, run_keys, run_lengths)
        lines = 1
    return _add_runs(t, run_keys, run_lengths, runs, lines)


cdef int _runs_storage(Runs* runs, Py_ssize_t width) noexcept nogil:
    runs.starts = <Py_ssize_t*>calloc(width + 1, sizeof(Py_ssize_t))
    runs.ids = <uint32_t*>calloc(width, sizeof(uint32_t))
    if runs.starts == NULL or runs.ids == NULL:
        return -1
    runs.starts[1], runs.runs = width, 1  # the line above the first: all zero
    return 0


cdef int _lines(Lines* s, const uint8_t* data, Py_ssize_t pitch, Py_ssize_t bpp,
                const uint8_t* zeros, Py_ssize_t width) noexcept nogil:
    """The line state of ``[H, pitch]`` scanlines; -1 when out of memory (then, as always,
    :func:`_free_lines` frees what was allocated; ``s`` starts zeroed)."""
    s.data, s.pitch, s.bpp, s.zeros = data, pitch, bpp, zeros
    s.line, s.spare = &s.first, &s.second
    s.changed = <ptrdiff_t*>calloc(width + 1, sizeof(ptrdiff_t))
    s.above = <uint32_t*>calloc(width, sizeof(uint32_t))
    if s.changed == NULL or s.above == NULL:
        return -1
    if _runs_storage(&s.first, width) < 0 or _runs_storage(&s.second, width) < 0:
        return -1
    return 0


cdef void _free_lines(Lines* s) noexcept nogil:
    free(s.changed)
    free(s.above)
    free(s.first.starts)
    free(s.first.ids)
    free(s.second.starts)
    free(s.second.ids)


cdef int _count_png_lines(const uint8_t* gt, Py_ssize_t gt_bpp, const uint8_t* pred,
                          Py_ssize_t pred_bpp, Py_ssize_t height, Py_ssize_t width,
                          Table* t) noexcept nogil:
    """:func:`_count_scanlines` of two ``[height, 1 + width * bpp]`` scanline buffers into the
    (started) table ``t``, its scratch allocated and freed here; the same status codes."""
    cdef Lines g, p
    cdef int status = -1
    cdef Py_ssize_t gt_pitch = 1 + width * gt_bpp, pred_pitch = 1 + width * pred_bpp
    memset(&g, 0, sizeof(Lines))  # every pointer NULL: freed below whatever happens
    memset(&p, 0, sizeof(Lines))
    cdef uint8_t* zeros = <uint8_t*>calloc(gt_pitch if gt_pitch > pred_pitch else pred_pitch, 1)
    # a line has at most 2 * width - 1 pair runs (each boundary of either map starts one)
    cdef uint64_t* run_keys = <uint64_t*>calloc(2 * width, sizeof(uint64_t))
    cdef int64_t* run_lengths = <int64_t*>calloc(2 * width, sizeof(int64_t))
    if (zeros != NULL and run_keys != NULL and run_lengths != NULL
            and _lines(&g, gt, gt_pitch, gt_bpp, zeros, width) == 0
            and _lines(&p, pred, pred_pitch, pred_bpp, zeros, width) == 0):
        status = _count_scanlines(&g, &p, height, width, run_keys, run_lengths, t)
    free(zeros)
    free(run_keys)
    free(run_lengths)
    _free_lines(&g)
    _free_lines(&p)
    return status


def pair_counts_scanlines(const uint8_t[:, ::1] gt, Py_ssize_t gt_bpp,
                          const uint8_t[:, ::1] pred, Py_ssize_t pred_bpp, Py_ssize_t width):
    """:func:`pair_counts_rgb` of two inflated 8-bit RGB(A) PNG streams, PNG filters undone
    on the way (the arrays are not written): ``[H, 1 + W * bpp]`` scanlines, ``bpp`` 3 (RGB)
    or 4 (RGBA).

    Raises ValueError naming "ground truth" or "prediction" for a bad filter type.
    """
    cdef Py_ssize_t height = gt.shape[0]
    cdef Table t
    cdef int status = 0
    if gt_bpp not in (3, 4) or pred_bpp not in (3, 4):
        raise ValueError("scanlines must be 8-bit RGB or RGBA")
    if (pred.shape[0] != height or gt.shape[1] != 1 + width * gt_bpp
            or pred.shape[1] != 1 + width * pred_bpp):
        raise ValueError("scanline arrays do not match the image size")
    if height == 0 or width == 0:
        return _no_pairs()
    _start(&t)
    try:
        with nogil:
            status = _count_png_lines(&gt[0, 0], gt_bpp, &pred[0, 0], pred_bpp, height, width,
                                      &t)
        if status == -1:
            raise MemoryError("cannot grow the pair table")
        if status < 0:
            raise ValueError(f"bad PNG filter type in the {'ground truth' if status == -2 else 'prediction'}")
        return _collect(&t)
    finally:
        _release(&t)


# ---------------------------------------------------------------- matching one image
#
# panopticapi's rules as ``_quality.match_image`` (the reference) states them, on C arrays: the
# pairs sorted by key (so the IoUs of the true positives come in panopticapi's order), each
# image's segments looked up by id in a sorted copy. Anything the rules reject (an unlisted or
# absent predicted segment, a ground-truth area below an intersection) and anything odd in the
# segment entries (a missing field, an id out of range, an unknown category, a repeated id, an
# area beyond 2^52) is left to the reference, which raises the error naming it: these kernels
# report "not here" and write nothing outside their own buffers.

cdef enum:
    CROWD = 1  # Segments.flags
    HAS_AREA = 2

cdef int64_t AREA_LIMIT = 1LL << 52  # sums of areas stay exact in doubles and int64
cdef uint64_t LOW32 = 0xFFFFFFFFULL

cdef struct Segments:
    Py_ssize_t n
    uint32_t* ids  # in segments_info order
    int32_t* category  # index into the categories
    uint8_t* flags  # CROWD, HAS_AREA
    int64_t* area  # the entry's area (where HAS_AREA)
    uint64_t* lookup  # id << 32 | position, sorted by _match


cdef struct Pair:
    uint64_t key  # gt << 32 | pred
    int64_t count


cdef struct Stats:
    int32_t* tp  # [pairs]: category of each true positive, in pair order
    double* iou  # [pairs]: its IoU
    int32_t* fp  # [predicted segments]
    int32_t* fn  # [ground-truth segments]
    Py_ssize_t n_tp, n_fp, n_fn


cdef void _free_segments(Segments* s) noexcept nogil:
    free(s.ids)
    free(s.category)
    free(s.flags)
    free(s.area)
    free(s.lookup)
    memset(s, 0, sizeof(Segments))


cdef void _free_stats(Stats* st) noexcept nogil:
    free(st.tp)
    free(st.iou)
    free(st.fp)
    free(st.fn)
    memset(st, 0, sizeof(Stats))


cdef int _segments(object infos, dict index, Segments* s, bint gt) except -2:
    """``segments_info`` into ``s`` (zeroed before; freed by the caller): 0, or -1 when the
    reference must judge the entries. MemoryError when out of memory."""
    cdef Py_ssize_t i, n, c
    if not isinstance(infos, (list, tuple)):
        return -1
    n = len(infos)
    s.n = n
    s.ids = <uint32_t*>calloc(n + 1, sizeof(uint32_t))
    s.category = <int32_t*>calloc(n + 1, sizeof(int32_t))
    s.flags = <uint8_t*>calloc(n + 1, sizeof(uint8_t))
    s.area = <int64_t*>calloc(n + 1, sizeof(int64_t))
    s.lookup = <uint64_t*>calloc(n + 1, sizeof(uint64_t))
    if s.ids == NULL or s.category == NULL or s.flags == NULL or s.area == NULL or s.lookup == NULL:
        raise MemoryError("cannot allocate segment tables")
    for i in range(n):
        info = infos[i]
        try:  # the conversions of the reference (int(), get(), == 1), whatever the types
            segment, category = int(info["id"]), int(info["category_id"])
            if not 0 < segment < 0xFFFFFFFF:
                return -1
            found = index.get(category)
            if found is None:
                return -1
            c = found
            if not 0 <= c < len(index):
                return -1
            s.ids[i], s.category[i] = segment, c
            s.lookup[i] = (<uint64_t>segment << 32) | <uint64_t>i
            if gt:
                if info.get("iscrowd", 0) == 1:
                    s.flags[i] |= CROWD
                if "area" in info:
                    area = int(info["area"])
                    if not -AREA_LIMIT < area < AREA_LIMIT:
                        return -1
                    s.area[i] = area
                    s.flags[i] |= HAS_AREA
        except Exception:  # noqa - the reference raises what it raises
            return -1
    return 0


cdef int _cmp_keys(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*>a)[0], y = (<const uint64_t*>b)[0]
    return (x > y) - (x < y)


cdef int _cmp_pairs(const void* a, const void* b) noexcept nogil:
    return _cmp_keys(&(<const Pair*>a).key, &(<const Pair*>b).key)


cdef Py_ssize_t _position(const Segments* s, uint64_t segment) noexcept nogil:
    """Where segment id ``segment`` is in segments_info, or -1 (binary search of the lookup)."""
    cdef Py_ssize_t lo = 0, hi = s.n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if (s.lookup[mid] >> 32) < segment:
            lo = mid + 1
        else:
            hi = mid
    if lo < s.n and (s.lookup[lo] >> 32) == segment:
        return <Py_ssize_t>(s.lookup[lo] & LOW32)
    return -1


cdef int64_t _pair_count(const Pair* pairs, Py_ssize_t n, uint64_t key) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if pairs[mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return pairs[lo].count if lo < n and pairs[lo].key == key else 0


cdef int _sorted_unique(Segments* s) noexcept nogil:
    cdef Py_ssize_t i
    qsort(s.lookup, s.n, sizeof(uint64_t), _cmp_keys)
    for i in range(1, s.n):
        if (s.lookup[i] >> 32) == (s.lookup[i - 1] >> 32):
            return -1
    return 0


cdef struct Scratch:
    int64_t* gt_area  # [gt]: counted in the PNG
    int64_t* pred_area  # [pred]
    int64_t* pred_void  # [pred]: on ground-truth VOID
    int32_t* pair_gt  # [pairs]: the pair's gt position in segments_info, or -1
    int32_t* pair_pred  # [pairs]
    int32_t* crowd_of  # [categories]: its last crowd segment's gt position, or -1
    uint8_t* gt_matched  # [gt]
    uint8_t* pred_matched  # [pred]


cdef int _rules(const Pair* pairs, Py_ssize_t n_pairs, const Segments* gt,
                const Segments* pred, Py_ssize_t n_categories, Scratch* w,
                Stats* out) noexcept nogil:
    """panopticapi's rules on zeroed scratch: 0, or -2 where the reference raises."""
    cdef Py_ssize_t k, i, g, p
    cdef int64_t n, area, union, ignored
    cdef double iou
    cdef uint64_t gt_id, pred_id
    for k in range(n_pairs):
        gt_id, pred_id, n = pairs[k].key >> 32, pairs[k].key & LOW32, pairs[k].count
        g = _position(gt, gt_id) if gt_id != 0 else -1
        p = _position(pred, pred_id) if pred_id != 0 else -1
        w.pair_gt[k], w.pair_pred[k] = g, p
        if p >= 0:
            w.pred_area[p] += n
            if gt_id == 0:
                w.pred_void[p] = n
        elif pred_id != 0:
            return -2  # in the PNG, not in segments_info
        if g >= 0:
            w.gt_area[g] += n
    for p in range(pred.n):
        if w.pred_area[p] == 0:
            return -2  # in segments_info, not in the PNG
    for k in range(n_pairs):
        g, p, n = w.pair_gt[k], w.pair_pred[k], pairs[k].count
        if g < 0 or p < 0 or gt.flags[g] & CROWD or gt.category[g] != pred.category[p]:
            continue
        area = gt.area[g] if gt.flags[g] & HAS_AREA else w.gt_area[g]
        union = w.pred_area[p] + area - n - w.pred_void[p]
        if union <= 0:
            return -2  # a ground-truth area below the intersection
        iou = <double>n / <double>union  # both exact: Python's n / union, correctly rounded
        if iou > 0.5:
            out.tp[out.n_tp], out.iou[out.n_tp] = gt.category[g], iou
            out.n_tp += 1
            w.gt_matched[g] = w.pred_matched[p] = 1
    for i in range(n_categories):
        w.crowd_of[i] = -1
    for g in range(gt.n):
        if w.gt_matched[g]:
            continue
        if gt.flags[g] & CROWD:
            w.crowd_of[gt.category[g]] = g  # the last crowd segment of its category
            continue
        out.fn[out.n_fn] = gt.category[g]
        out.n_fn += 1
    for p in range(pred.n):
        if w.pred_matched[p]:
            continue
        ignored = w.pred_void[p]
        g = w.crowd_of[pred.category[p]]
        if g >= 0:
            ignored += _pair_count(pairs, n_pairs, (<uint64_t>gt.ids[g] << 32) | pred.ids[p])
        if <double>ignored / <double>w.pred_area[p] > 0.5:  # mostly VOID or crowd: ignored
            continue
        out.fp[out.n_fp] = pred.category[p]
        out.n_fp += 1
    return 0


cdef int _match(const Pair* pairs, Py_ssize_t n_pairs, Segments* gt, Segments* pred,
                Py_ssize_t n_categories, Stats* out) noexcept nogil:
    """One image's true positives, false positives and false negatives into ``out`` (zeroed
    before; allocated here, freed by the caller). 0; -1 out of memory; -2 left to the
    reference (which names the error)."""
    cdef Py_ssize_t k, ng = gt.n, npred = pred.n
    cdef Scratch w
    cdef int status
    for k in range(ng):
        if not 0 <= gt.category[k] < n_categories:
            return -2
    for k in range(npred):
        if not 0 <= pred.category[k] < n_categories:
            return -2
    if _sorted_unique(gt) < 0 or _sorted_unique(pred) < 0:
        return -2
    for k in range(1, n_pairs):
        if pairs[k].key <= pairs[k - 1].key or pairs[k].count <= 0:
            return -2  # not what pair_counts gives
    if n_pairs > 0 and pairs[0].count <= 0:
        return -2
    out.tp = <int32_t*>calloc(n_pairs + 1, sizeof(int32_t))
    out.iou = <double*>calloc(n_pairs + 1, sizeof(double))
    out.fp = <int32_t*>calloc(npred + 1, sizeof(int32_t))
    out.fn = <int32_t*>calloc(ng + 1, sizeof(int32_t))
    cdef char* block = <char*>calloc(
        8 * (ng + 2 * npred) + 4 * (2 * n_pairs + n_categories) + ng + npred + 8, 1)
    if out.tp == NULL or out.iou == NULL or out.fp == NULL or out.fn == NULL or block == NULL:
        free(block)
        return -1
    w.gt_area = <int64_t*>block
    w.pred_area = w.gt_area + ng
    w.pred_void = w.pred_area + npred
    w.pair_gt = <int32_t*>(w.pred_void + npred)
    w.pair_pred = w.pair_gt + n_pairs
    w.crowd_of = w.pair_pred + n_pairs
    w.gt_matched = <uint8_t*>(w.crowd_of + n_categories)
    w.pred_matched = w.gt_matched + ng
    status = _rules(pairs, n_pairs, gt, pred, n_categories, &w, out)
    free(block)
    return status


cdef tuple _stats_lists(const Stats* st):
    """(tp, fp, fn, iou) lists: the fields of ``_quality.ImageStats``."""
    return ([st.tp[i] for i in range(st.n_tp)], [st.fp[i] for i in range(st.n_fp)],
            [st.fn[i] for i in range(st.n_fn)], [st.iou[i] for i in range(st.n_tp)])


def match_pairs(const uint64_t[::1] keys, const int64_t[::1] counts, gt_infos, pred_infos,
                dict index):
    """``_quality.match_image`` of sorted pair keys and their counts: (tp, fp, fn, iou) lists,
    or None where the reference must judge (and name the error)."""
    cdef Py_ssize_t k, n_pairs = keys.shape[0]
    cdef Segments gt, pred
    cdef Stats st
    cdef int status = -2
    cdef Py_ssize_t n_categories = len(index)
    if counts.shape[0] != n_pairs:
        raise ValueError(f"{n_pairs} keys and {counts.shape[0]} counts")
    memset(&gt, 0, sizeof(Segments))
    memset(&pred, 0, sizeof(Segments))
    memset(&st, 0, sizeof(Stats))
    cdef Pair* pairs = <Pair*>calloc(n_pairs + 1, sizeof(Pair))
    try:
        if pairs == NULL:
            raise MemoryError("cannot allocate the pairs")
        for k in range(n_pairs):
            pairs[k].key, pairs[k].count = keys[k], counts[k]
        if _segments(gt_infos, index, &gt, True) < 0 or _segments(pred_infos, index, &pred,
                                                                  False) < 0:
            return None
        with nogil:
            status = _match(pairs, n_pairs, &gt, &pred, n_categories, &st)
        if status == -1:
            raise MemoryError("cannot allocate the matching scratch")
        return None if status < 0 else _stats_lists(&st)
    finally:
        free(pairs)
        _free_segments(&gt)
        _free_segments(&pred)
        _free_stats(&st)


# ---------------------------------------------------------------- whole images on the pool
#
# evaluate_pngs runs read-in PNG files image by image on fastiou's pool, one image per task and
# every step of it without the GIL: the chunks parsed, the zlib stream inflated (by libdeflate,
# whose functions the caller found: the library imagecodecs ships or the system's), the
# scanlines counted, the pairs sorted and matched. Each image writes only its own slot of the
# batch; each thread slot has its own decompressor and buffers. An image that is not an 8-bit
# RGB(A) PNG, does not inflate to its size, or breaks a rule is left to the Python path
# (``_api.evaluate_pair``), which decodes it otherwise or raises the error naming it.

ctypedef void* (*inflater_alloc_t)() noexcept nogil
ctypedef int (*inflate_t)(void* decompressor, const void* data, size_t size, void* out,
                          size_t avail, size_t* actual) noexcept nogil
ctypedef void (*inflater_free_t)(void* decompressor) noexcept nogil

cdef enum:
    GT = 0
    PRED = 1

cdef uint64_t RAW_LIMIT = 1ULL << 36  # inflated bytes of one PNG taken here (64 GiB)


cdef struct Png:
    Py_ssize_t width, height, bpp
    const uint8_t* stream  # the zlib stream: the IDAT chunks' data
    size_t stream_size


cdef struct Slot:
    void* decompressor
    uint8_t* raw[2]  # inflated scanlines, ground truth and prediction
    size_t raw_size[2]
    uint8_t* joined[2]  # the IDATs of a PNG with several, joined
    size_t joined_size[2]
    uint8_t* file[2]  # the PNG files, where paths were given
    size_t file_size[2]


cdef struct Image:
    const char* path[2]  # the PNG file's path, or NULL: its bytes are at png
    const uint8_t* png[2]
    Py_ssize_t png_size[2]
    Segments gt, pred
    Stats stats
    int status  # 0: evaluated (or to be); 1: left to the Python path


cdef struct Batch:
    Image* images
    Slot* slots
    Py_ssize_t n_categories
    inflater_alloc_t alloc
    inflate_t inflate


cdef inline uint32_t _be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef int _grow(uint8_t** buffer, size_t* size, size_t wanted) noexcept nogil:
    if wanted <= size[0]:
        return 0
    free(buffer[0])
    buffer[0] = <uint8_t*>malloc(wanted)
    size[0] = wanted if buffer[0] != NULL else 0
    return 0 if buffer[0] != NULL else -1


cdef int _parse_png(const uint8_t* data, Py_ssize_t size, Png* png, uint8_t** joined,
                    size_t* joined_size) noexcept nogil:
    """The header and zlib stream of an 8-bit, non-interlaced RGB(A) PNG (as ``_png.scanlines``
    reads it); -1 for any other file."""
    cdef Py_ssize_t pos = 8, length, at
    cdef size_t total = 0
    cdef uint64_t raw
    cdef int idats = 0, header = 0
    cdef const uint8_t* body
    if size < 8 or memcmp(data, b"\x89PNG\r\n\x1a\n", 8) != 0:
        return -1
    while pos + 8 <= size:
        length = _be32(data + pos)
        body = data + pos + 8
        if length > size - pos - 8:
            return -1  # truncated
        if memcmp(data + pos + 4, b"IHDR", 4) == 0:
            if length < 13:
                return -1
            png.width, png.height = _be32(body), _be32(body + 4)
            if body[8] != 8 or (body[9] != 2 and body[9] != 6) or body[10] or body[11] or body[12]:
                return -1  # not 8-bit RGB(A), or interlaced: a full decoder's
            png.bpp = 3 if body[9] == 2 else 4
            header = 1
        elif memcmp(data + pos + 4, b"IDAT", 4) == 0:
            if idats == 0:
                png.stream = body
            total += length
            idats += 1
        elif memcmp(data + pos + 4, b"IEND", 4) == 0:
            break
        pos += 12 + length
    if not header or idats == 0 or png.width <= 0 or png.height <= 0:
        return -1
    raw = <uint64_t>png.height * (1 + <uint64_t>png.width * png.bpp)
    if raw > RAW_LIMIT or raw > <uint64_t>PY_SSIZE_T_MAX:  # (the latter: 32-bit builds)
        return -1
    png.stream_size = total
    if idats > 1:  # join them (a second pass over the chunks)
        if _grow(joined, joined_size, total) < 0:
            return -1
        pos, at = 8, 0
        while pos + 8 <= size:
            length = _be32(data + pos)
            if memcmp(data + pos + 4, b"IDAT", 4) == 0:
                memcpy(joined[0] + at, data + pos + 8, length)
                at += length
            elif memcmp(data + pos + 4, b"IEND", 4) == 0:
                break
            pos += 12 + length
        png.stream = joined[0]
    return 0


cdef int _inflate_png(const Batch* b, Slot* slot, int which, const Png* png) noexcept nogil:
    cdef size_t size = png.height * (1 + png.width * png.bpp)
    if _grow(&slot.raw[which], &slot.raw_size[which], size) < 0:
        return -1
    # NULL for the actual size: libdeflate fails unless the stream fills exactly `size` bytes
    return -1 if b.inflate(slot.decompressor, png.stream, png.stream_size, slot.raw[which],
                           size, NULL) != 0 else 0


cdef int _read_file(const char* path, uint8_t** buffer, size_t* buffer_size,
                    Py_ssize_t* size) noexcept nogil:
    """A whole (regular) file into the slot's buffer: 0, or -1 (the Python path reads it again
    and raises what it raises)."""
    cdef FILE* f = fopen(path, "rb")
    cdef long length
    cdef int status = -1
    if f == NULL:
        return -1
    if fseek(f, 0, SEEK_END) == 0:
        length = ftell(f)
        if length >= 0 and fseek(f, 0, SEEK_SET) == 0 and _grow(buffer, buffer_size, length + 1) == 0:
            if fread(buffer[0], 1, length, f) == <size_t>length:
                size[0] = length
                status = 0
    fclose(f)
    return status


cdef int _evaluate(const Batch* b, Image* im, Slot* slot) noexcept nogil:
    """One image, start to end: 0, or 1 to leave it to the Python path."""
    cdef Png gt, pred
    cdef Table t
    cdef Pair* pairs
    cdef Py_ssize_t i, j = 0
    cdef int status, which
    if slot.decompressor == NULL:
        slot.decompressor = b.alloc()
        if slot.decompressor == NULL:
            return 1
    for which in range(2):
        if im.path[which] != NULL:
            if _read_file(im.path[which], &slot.file[which], &slot.file_size[which],
                          &im.png_size[which]) < 0:
                return 1
            im.png[which] = slot.file[which]
    if (_parse_png(im.png[GT], im.png_size[GT], &gt, &slot.joined[GT], &slot.joined_size[GT]) < 0
            or _parse_png(im.png[PRED], im.png_size[PRED], &pred, &slot.joined[PRED],
                          &slot.joined_size[PRED]) < 0
            or gt.width != pred.width or gt.height != pred.height):
        return 1
    if _inflate_png(b, slot, GT, &gt) < 0 or _inflate_png(b, slot, PRED, &pred) < 0:
        return 1
    if _allocate(&t, FIRST_CAPACITY) < 0:
        return 1
    status = _count_png_lines(slot.raw[GT], gt.bpp, slot.raw[PRED], pred.bpp, gt.height,
                              gt.width, &t)
    pairs = <Pair*>malloc((t.used + 1) * sizeof(Pair)) if status == 0 else NULL
    if pairs != NULL:
        for i in range(t.capacity):
            if t.counts[i] != 0:
                pairs[j].key, pairs[j].count = t.keys[i], t.counts[i]
                j += 1
        qsort(pairs, j, sizeof(Pair), _cmp_pairs)
        status = _match(pairs, j, &im.gt, &im.pred, b.n_categories, &im.stats)
    else:
        status = -1
    free(pairs)
    _release(&t)
    return 0 if status == 0 else 1


cdef void _images_task(void* ctx, int64_t begin, int64_t end, int slot) noexcept nogil:
    cdef Batch* b = <Batch*>ctx
    cdef int64_t i
    for i in range(begin, end):
        if b.images[i].status == 0:
            b.images[i].status = _evaluate(b, &b.images[i], &b.slots[slot])


def evaluate_pngs(list gt_pngs, list pred_pngs, list gt_infos, list pred_infos, dict index,
                  tuple inflater, int threads):
    """Each image's (tp, fp, fn, iou) lists (``_quality.ImageStats``) from its two PNG files
    (their bytes, or their paths as str, read here; anything else: left over) and segments_info, on ``threads`` threads of fastiou's
    pool; None for an image left to the Python path.

    ``inflater``: the addresses of libdeflate's ``libdeflate_alloc_decompressor``,
    ``libdeflate_zlib_decompress`` and ``libdeflate_free_decompressor``.
    """
    cdef Py_ssize_t i, n = len(gt_pngs)
    cdef Batch b
    cdef inflater_free_t release = <inflater_free_t><uintptr_t>inflater[2]
    cdef Image* im
    cdef int which
    cdef list paths = []
    if not (len(pred_pngs) == len(gt_infos) == len(pred_infos) == n):
        raise ValueError("one PNG pair and one segments_info pair per image")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    b.alloc = <inflater_alloc_t><uintptr_t>inflater[0]
    b.inflate = <inflate_t><uintptr_t>inflater[1]
    b.n_categories = len(index)
    b.images = <Image*>calloc(n + 1, sizeof(Image))
    b.slots = <Slot*>calloc(threads, sizeof(Slot))
    try:
        if b.images == NULL or b.slots == NULL:
            raise MemoryError("cannot allocate the batch")
        for i in range(n):
            im = &b.images[i]
            for which, data in enumerate((gt_pngs[i], pred_pngs[i])):
                if type(data) is bytes:
                    im.png[which], im.png_size[which] = <const uint8_t*><char*>data, len(<bytes>data)
                elif isinstance(data, str):
                    data = os.fsencode(data)
                    paths.append(data)  # alive until the end
                    im.path[which] = <const char*>(<bytes>data)
                else:
                    im.status = 1
            if (_segments(gt_infos[i], index, &im.gt, True) < 0
                    or _segments(pred_infos[i], index, &im.pred, False) < 0):
                im.status = 1
        with nogil:
            parallel_for(_images_task, &b, n, 1, threads)
        return [_stats_lists(&b.images[i].stats) if b.images[i].status == 0 else None
                for i in range(n)]
    finally:
        if b.images != NULL:
            for i in range(n):
                _free_segments(&b.images[i].gt)
                _free_segments(&b.images[i].pred)
                _free_stats(&b.images[i].stats)
        if b.slots != NULL:
            for i in range(threads):
                if b.slots[i].decompressor != NULL:
                    release(b.slots[i].decompressor)
                for which in range(2):
                    free(b.slots[i].raw[which])
                    free(b.slots[i].joined[which])
                    free(b.slots[i].file[which])
        free(b.images)
        free(b.slots)


def describe() -> str:
    return "compiled (one image per task on fastiou's pool)"
