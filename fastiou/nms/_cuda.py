"""Numba CUDA NMS: torchvision's bitmask scheme, every step on the device.

1. Rank: ``rank[i]`` = the boxes before box i in torch's order (higher score, NaN highest; equal
   scores: lower index), counted by one thread per box, and ``order[rank[i]] = i``. O(N^2)
   comparisons, like the mask itself, and no host round trip.
2. Features: (x1, y1, x2, y2, area) of each box in score order, via ``formulas.box_features``.
3. Mask: for each pair of blocks of BLOCK boxes (row block <= column block), a CUDA block of BLOCK
   threads writes one word per row box: bit k set when column box k comes later, has IoU > t with
   the row box (``formulas.iou``) and, for batched_nms, the same class.
4. Walk: a single CUDA block walks the boxes in score order; a box whose bit is not set in the
   running ``removed`` words is kept and its mask row is OR-ed into ``removed`` by all threads.

The mask takes N * ceil(N / 64) * 8 bytes of device memory (300 MB for 50,000 boxes), as
torchvision's does. batched_nms is the same with the class test in step 3: a kept box only
removes boxes of its class, which is NMS per class merged by score. Soft-NMS runs in a single
CUDA block: a block-wide arg-max per step, then each thread decays its share of the boxes.

Tests run these kernels under ``NUMBA_ENABLE_CUDASIM=1`` with BLOCK and THREADS patched small so
that several blocks and words run on tiny inputs; performance on a real GPU is not measured here.
"""

import math
from functools import cache

import numba
import numpy as np
from numba import cuda

from .._core.devices import cuda_unavailable_reason, describe_cuda
from ..boxes import _formulas as formulas
from ._reference import below

BLOCK = 64  # boxes per mask word (at most 64: the words are uint64)
THREADS = 256  # threads per block of the rank, features, walk and soft-NMS kernels
MAX_BLOCKS = 65535


unavailable_reason = cuda_unavailable_reason
describe = describe_cuda


def _quiet():
    """The simulator runs kernels as numpy scalar code: silence its 0/0 warnings (IEEE is meant)."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def _grid(n: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-n // THREADS)))


@cuda.jit(device=True)
def _higher(a, b):
    """Score a ranks before score b (NaN highest)."""
    return a > b or (a != a and b == b)


@cuda.jit(device=True)
def _same(a, b):
    return a == b or (a != a and b != b)


@cuda.jit
def _rank_kernel(scores, order):
    n = scores.shape[0]
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        s = scores[i]
        rank = 0
        for j in range(n):
            if _higher(scores[j], s) or (j < i and _same(scores[j], s)):
                rank += 1
        order[rank] = i


@cuda.jit
def _iota_kernel(out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = i


@cuda.jit
def _features_kernel(boxes, order, labels, fmt, zero, half, two_over_pi, feats, sorted_labels):
    for r in range(cuda.grid(1), order.shape[0], cuda.gridsize(1)):
        i = order[r]
        f = formulas.box_features(
            boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3],
            fmt, zero, half, two_over_pi, False,
        )  # fmt: skip
        for c in range(5):
            feats[r, c] = f[c]
        sorted_labels[r] = labels[i]


@cache
def _mask_kernel(block: int, float64: bool):
    real = numba.float64 if float64 else numba.float32

    @cuda.jit
    def kernel(feats, labels, use_labels, threshold, zero, one, mask):
        n = feats.shape[0]
        row_block, col_block = cuda.blockIdx.y, cuda.blockIdx.x
        if row_block > col_block:
            return  # the walk never reads words left of a row's own block
        t = cuda.threadIdx.x
        col_start = col_block * block
        col_size = min(n - col_start, block)
        shared = cuda.shared.array((block, 5), real)
        shared_labels = cuda.shared.array(block, numba.int64)
        if t < col_size:
            for c in range(5):
                shared[t, c] = feats[col_start + t, c]
            shared_labels[t] = labels[col_start + t]
        cuda.syncthreads()
        i = row_block * block + t
        if i >= n:
            return
        a = (feats[i, 0], feats[i, 1], feats[i, 2], feats[i, 3], feats[i, 4])
        bits = numba.uint64(0)
        first = t + 1 if row_block == col_block else 0
        for k in range(first, col_size):
            if use_labels and shared_labels[k] != labels[i]:
                continue
            b = (shared[k, 0], shared[k, 1], shared[k, 2], shared[k, 3], shared[k, 4])
            if formulas.iou(a, b, zero, zero, one, False) > threshold:
                bits |= numba.uint64(1) << numba.uint64(k)
        mask[i, col_block] = bits

    return kernel


@cache
def _walk_kernel(block: int):
    @cuda.jit
    def kernel(mask, order, max_out, removed, out, count):
        n, words = mask.shape
        t, threads = cuda.threadIdx.x, cuda.blockDim.x
        for w in range(t, words, threads):
            removed[w] = 0
        cuda.syncthreads()
        kept = 0  # every thread counts the same
        for w in range(words):
            for k in range(block):
                i = w * block + k
                if i >= n or kept >= max_out:
                    break
                if (removed[w] >> numba.uint64(k)) & numba.uint64(1):
                    continue
                if t == 0:
                    out[kept] = order[i]
                kept += 1
                for v in range(w + t, words, threads):
                    removed[v] |= mask[i, v]
                cuda.syncthreads()  # every thread took this branch: removed[w] was the same
        if t == 0:
            count[0] = kept

    return kernel


def _greedy(boxes, scores, labels, use_labels: bool, iou_threshold: float, fmt: int, max_out):
    n = boxes.shape[0]
    dtype = np.dtype(boxes.dtype)
    t = dtype.type
    order = cuda.device_array(n, np.int64)
    feats = cuda.device_array((n, 5), dtype)
    sorted_labels = cuda.device_array(n, np.int64)
    words = -(-n // BLOCK)
    mask = cuda.device_array((n, words), np.uint64)
    removed = cuda.device_array(words, np.uint64)
    out = cuda.device_array(min(n, max_out), np.int64)
    count = cuda.device_array(1, np.int64)
    threshold = below(iou_threshold, dtype)
    with _quiet():
        _rank_kernel[_grid(n), THREADS](scores, order)
        _features_kernel[_grid(n), THREADS](
            boxes, order, labels, fmt, t(0), t(0.5), t(2 / np.pi), feats, sorted_labels
        )
        _mask_kernel(BLOCK, dtype == np.float64)[(words, words), BLOCK](
            feats, sorted_labels, use_labels, threshold, t(0), t(1), mask
        )
        _walk_kernel(BLOCK)[1, THREADS](mask, order, out.shape[0], removed, out, count)
    return out[: int(count.copy_to_host()[0])]


def nms(boxes, scores, iou_threshold: float, fmt: int, max_output: int):
    """Device int64 indices of the boxes greedy NMS keeps, in descending score order."""
    no_labels = cuda.device_array(boxes.shape[0], np.int64)  # read, never compared
    return _greedy(boxes, scores, no_labels, False, iou_threshold, fmt, max_output)


def batched_nms(boxes, scores, labels, iou_threshold: float, fmt: int, max_output: int):
    """NMS within each class (any int64 labels), merged in descending score order."""
    return _greedy(boxes, scores, labels, True, iou_threshold, fmt, max_output)


@cache
def _soft_kernel(threads: int, float64: bool):
    real = numba.float64 if float64 else numba.float32

    @cuda.jit
    def kernel(feats, current, alive, threshold, sigma, score_threshold, gaussian, zero, one,
               keep, kept_scores, count):  # fmt: skip
        n = current.shape[0]
        t = cuda.threadIdx.x
        best_score = cuda.shared.array(threads, real)
        best_index = cuda.shared.array(threads, numba.int64)
        for i in range(t, n, threads):
            alive[i] = not current[i] < score_threshold
        cuda.syncthreads()
        kept = 0
        while kept < keep.shape[0]:
            # Block-wide arg-max: highest score (NaN highest), then lowest index.
            index = -1
            score = zero
            for i in range(t, n, threads):  # increasing i: ties keep the first
                if alive[i] and (index < 0 or _higher(current[i], score)):
                    index = i
                    score = current[i]
            best_score[t] = score
            best_index[t] = index
            cuda.syncthreads()
            stride = threads // 2
            while stride > 0:
                if t < stride:
                    other = best_index[t + stride]
                    if other >= 0:
                        mine = best_index[t]
                        s = best_score[t + stride]
                        if (
                            mine < 0
                            or _higher(s, best_score[t])
                            or (_same(s, best_score[t]) and other < mine)
                        ):
                            best_index[t] = other
                            best_score[t] = s
                cuda.syncthreads()
                stride //= 2
            best = best_index[0]
            if best < 0:
                break
            if t == 0:
                keep[kept] = best
                kept_scores[kept] = current[best]
                alive[best] = 0
            kept += 1
            a = (feats[best, 0], feats[best, 1], feats[best, 2], feats[best, 3], feats[best, 4])
            for i in range(t, n, threads):
                if i == best or not alive[i]:
                    continue
                b = (feats[i, 0], feats[i, 1], feats[i, 2], feats[i, 3], feats[i, 4])
                iou = formulas.iou(a, b, zero, zero, one, False)
                if iou != iou:
                    continue  # NaN IoU does not decay
                if gaussian:
                    decay = math.exp(-(iou * iou) / sigma)
                elif iou >= threshold:
                    decay = one - iou
                else:
                    continue
                current[i] = current[i] * decay
                if current[i] < score_threshold:
                    alive[i] = 0
            cuda.syncthreads()
        if t == 0:
            count[0] = kept

    return kernel


def soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, gaussian, fmt, max_output):
    """Soft-NMS (see nms_reference.soft_nms) on the device: kept indices and their scores."""
    n = boxes.shape[0]
    dtype = np.dtype(boxes.dtype)
    t = dtype.type
    identity = cuda.device_array(n, np.int64)  # 0..n-1, filled on the device (no host copy)
    feats = cuda.device_array((n, 5), dtype)
    no_labels = cuda.device_array(n, np.int64)  # copied along by the features kernel, unused
    current = cuda.device_array(n, dtype)
    current.copy_to_device(scores)
    alive = cuda.device_array(n, np.int8)
    keep = cuda.device_array(min(n, max_output), np.int64)
    kept_scores = cuda.device_array(min(n, max_output), dtype)
    count = cuda.device_array(1, np.int64)
    threads = 1 << (THREADS.bit_length() - 1)  # the tree reduction needs a power of two
    with _quiet():
        _iota_kernel[_grid(n), THREADS](identity)
        _features_kernel[_grid(n), THREADS](
            boxes, identity, no_labels, fmt, t(0), t(0.5), t(2 / np.pi), feats, no_labels
        )
        _soft_kernel(threads, dtype == np.float64)[1, threads](
            feats, current, alive, float(iou_threshold), t(sigma), float(score_threshold),
            bool(gaussian), t(0), t(1), keep, kept_scores, count,
        )  # fmt: skip
    k = int(count.copy_to_host()[0])
    return keep[:k], kept_scores[:k]
