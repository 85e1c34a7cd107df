"""Numba CPU confusion kernels: ``prange`` over ranges of pixels, private histograms per thread.

Each thread takes :data:`CHUNKS_PER_THREAD` ranges of pixels one at a time (a thread that the OS
delays on a busy machine takes fewer) and counts into its own histograms (``plan.sub_histograms``
of them, consecutive pixels going to different ones: when one class dominates, consecutive
increments hit different counters instead of waiting on each other's stores), 32-bit counters
flushed into int64 totals before they can overflow, merged after the loop. The ``[R0, R1, K]``
views may have any strides; a range is walked row by row, each row sliced first so that indices
start at 0 (LLVM then drops numba's negative-index checks, which otherwise cost a third of the
time).

Logits are reduced in blocks of :data:`BLOCK` pixels: the running maximum and its class are kept
for a block while the class loop streams over the scores, a loop LLVM vectorizes when the pixel
axis is contiguous. NaN counts as the maximum (the first NaN wins), as ``np.argmax``; ties go to
the lowest class.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .._core.parallel import numba_threads, numba_unusable
from ._common import COUNT_MAX, LabelPlan, column_limit, sub_histograms, thread_count

_JIT = {"parallel": True, "cache": True, "nogil": True, "error_model": "numpy"}
BLOCK = 256  # pixels per argmax block (the block's maxima stay in L1)
CHUNKS_PER_THREAD = 8  # pixel ranges per thread, handed out one at a time


@register_jitable(inline="always")
def row_code(u, table, full, table_len, keys, codes, invalid):
    """The row code of unsigned target value ``u`` (shared with the CUDA kernels)."""
    if full or u < table_len:
        return np.intp(table[u])
    for e in range(keys.shape[0]):
        if keys[e] == u:
            return np.intp(codes[e])
    return invalid


@register_jitable(inline="always")
def takes_over(v, m):
    """Whether score ``v`` replaces the running maximum ``m``: greater, or the first NaN."""
    return ((v > m) | (v != v)) & (m == m)


@njit(inline="always")
def _thread_range(total, chunk, chunks):
    return total * chunk // chunks, total * (chunk + 1) // chunks


@njit(inline="always")
def _row_span(i, end, r1_count, k_count):
    """(r0, r1, k0, k1): pixels [i, end) of an [R0, R1, K] array begin with k0:k1 of row
    (r0, r1); the range walk takes ``k1 - k0`` pixels at a time."""
    r = i // k_count
    k0 = i - r * k_count
    r0 = r // r1_count
    return r0, r - r0 * r1_count, k0, min(k_count, k0 + (end - i))


@njit(inline="always")
def _count_full(t, p, table, num_classes, h0, h1, h2, h3):
    # Four histograms in turn, unrolled: separate arrays let LLVM keep four increments in flight.
    n = t.shape[0]
    n4 = n // 4 * 4
    for k in range(0, n4, 4):
        h0[table[t[k]] + np.intp(min(p[k], num_classes))] += 1
        h1[table[t[k + 1]] + np.intp(min(p[k + 1], num_classes))] += 1
        h2[table[t[k + 2]] + np.intp(min(p[k + 2], num_classes))] += 1
        h3[table[t[k + 3]] + np.intp(min(p[k + 3], num_classes))] += 1
    for k in range(n4, n):
        h0[table[t[k]] + np.intp(min(p[k], num_classes))] += 1


@njit(inline="always")
def _count_checked(t, p, table, table_len, keys, codes, invalid, num_classes, h0, h1):
    n = t.shape[0]
    n2 = n // 2 * 2
    for k in range(0, n2, 2):
        row = row_code(t[k], table, False, table_len, keys, codes, invalid)
        h0[row + np.intp(min(p[k], num_classes))] += 1
        row = row_code(t[k + 1], table, False, table_len, keys, codes, invalid)
        h1[row + np.intp(min(p[k + 1], num_classes))] += 1
    for k in range(n2, n):
        row = row_code(t[k], table, False, table_len, keys, codes, invalid)
        h0[row + np.intp(min(p[k], num_classes))] += 1


@njit(inline="always")
def _flush(counts, total):
    """total (int64) += counts (uint32 [subs, bins]); counts = 0."""
    for sub in range(counts.shape[0]):
        for b in range(total.shape[0]):
            total[b] += counts[sub, b]
            counts[sub, b] = 0


@njit(inline="always")
def _claim(hists, totals, pending, tid, pixels):
    """Thread ``tid``'s 32-bit histograms, flushed first if ``pixels`` more could overflow."""
    if pending[tid] + pixels > COUNT_MAX:
        _flush(hists[tid], totals[tid])
        pending[tid] = 0
    pending[tid] += pixels
    return hists[tid]


@njit(nogil=True, cache=True)
def _close(hists, totals, hist):
    """hist += everything counted (totals has 0 bins unless there were flushes)."""
    for tid in range(hists.shape[0]):
        for sub in range(hists.shape[1]):
            for b in range(hist.shape[0]):
                hist[b] += hists[tid, sub, b]
        for b in range(totals.shape[1]):
            hist[b] += totals[tid, b]


@njit(inline="always")
def _chunk_count(total, threads):
    chunks = threads * CHUNKS_PER_THREAD if threads > 1 else 1
    return max(chunks, (total + COUNT_MAX - 1) // COUNT_MAX)


_SERIAL = {"cache": True, "nogil": True, "error_model": "numpy"}


# The work of one range of pixels is a separate (serial) function: compiled on its own it keeps
# the tight loops LLVM makes of it, which it does not inside the parallel region's outlined body.
@njit(**_SERIAL)
def _count_labels(
    target, prediction, table, full, table_len, keys, codes, invalid, num_classes, h, i, end
):
    r1_count, k_count = target.shape[1], target.shape[2]
    subs = h.shape[0]
    h0, h1, h2, h3 = h[0], h[1 % subs], h[2 % subs], h[3 % subs]
    while i < end:
        r0, r1, k0, k1 = _row_span(i, end, r1_count, k_count)
        t = target[r0, r1, k0:k1]
        p = prediction[r0, r1, k0:k1]
        if full:  # 1- and 2-byte labels: the table covers every value
            _count_full(t, p, table, num_classes, h0, h1, h2, h3)
        else:
            _count_checked(t, p, table, table_len, keys, codes, invalid, num_classes, h0, h1)
        i += k1 - k0


@njit(**_SERIAL)
def _count_logits(target, scores, table, full, table_len, keys, codes, h, i, end):
    r1_count, k_count = target.shape[1], target.shape[2]
    num_classes = scores.shape[2]
    mask = h.shape[0] - 1
    invalid = np.intp((num_classes + 1) * (num_classes + 1))
    best = np.empty(BLOCK, scores.dtype)
    arg = np.empty(BLOCK, np.intp)
    while i < end:
        r0, r1, k0, k1 = _row_span(i, end, r1_count, k_count)
        t = target[r0, r1, k0:k1]
        s = scores[r0, r1]  # [C, K]: C-contiguous rows when scores are
        for b0 in range(0, k1 - k0, BLOCK):
            n = min(BLOCK, k1 - k0 - b0)
            lo = k0 + b0
            first = s[0, lo : lo + n]
            for j in range(n):
                best[j] = first[j]
                arg[j] = 0
            for c in range(1, num_classes):
                sc = s[c, lo : lo + n]
                for j in range(n):
                    v = sc[j]
                    m = best[j]
                    take = takes_over(v, m)
                    best[j] = v if take else m
                    arg[j] = c if take else arg[j]
            tb = t[b0 : b0 + n]
            for j in range(n):
                row = row_code(tb[j], table, full, table_len, keys, codes, invalid)
                h[j & mask, row + arg[j]] += 1
        i += k1 - k0


@njit(**_JIT)
def _labels_kernel(
    target,
    prediction,
    table,
    full,
    table_len,
    keys,
    codes,
    invalid,
    num_classes,
    hists,
    totals,
    pending,
):
    total = target.size
    chunks = _chunk_count(total, hists.shape[0])
    for chunk in prange(chunks):
        i, end = _thread_range(total, chunk, chunks)
        h = _claim(hists, totals, pending, numba.get_thread_id(), end - i)
        _count_labels(
            target, prediction, table, full, table_len, keys, codes, invalid, num_classes, h, i, end
        )


@njit(**_JIT)
def _logits_kernel(target, scores, table, full, table_len, keys, codes, hists, totals, pending):
    total = target.size
    chunks = _chunk_count(total, hists.shape[0])
    for chunk in prange(chunks):
        i, end = _thread_range(total, chunk, chunks)
        h = _claim(hists, totals, pending, numba.get_thread_id(), end - i)
        _count_logits(target, scores, table, full, table_len, keys, codes, h, i, end)


def _table_args(target: np.ndarray, plan: LabelPlan):
    dtype = target.dtype.type
    table_len = dtype(0) if plan.full else dtype(len(plan.table))
    return plan.table, plan.full, table_len, plan.extra_keys.astype(target.dtype), plan.extra_codes


def _counters(pixels: int, plan: LabelPlan, threads: int):
    totals = np.zeros((threads, plan.bins if pixels > COUNT_MAX else 0), np.int64)
    return sub_histograms(threads, plan), totals, np.zeros(threads, np.int64)


def labels(target: np.ndarray, prediction: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of 3-D unsigned label views ``target`` and ``prediction`` to ``hist``."""
    invalid = np.intp(plan.invalid_code)
    limit = column_limit(plan, prediction.dtype)  # the clamp of min(p, C), in p's dtype
    with numba_threads(thread_count(target.size)) as threads, numba.parallel_chunksize(1):
        counters = _counters(target.size, plan, threads)  # ranges handed out one at a time
        _labels_kernel(target, prediction, *_table_args(target, plan), invalid, limit, *counters)
    _close(counters[0], counters[1], hist)


def logits(target: np.ndarray, scores: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of ``target`` [R0, R1, K] against ``argmax(scores [R0, R1, C, K], 2)``."""
    with numba_threads(thread_count(target.size)) as threads, numba.parallel_chunksize(1):
        counters = _counters(target.size, plan, threads)
        _logits_kernel(target, scores, *_table_args(target, plan), *counters)
    _close(counters[0], counters[1], hist)


def unavailable_reason() -> str | None:
    return numba_unusable()


def describe() -> str:
    return f"numba {numba.__version__}, threading layer {numba.config.THREADING_LAYER}"
