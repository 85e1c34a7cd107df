"""The "cuda" backend of the masks family: dense mask IoU on the GPU with numba CUDA.

One block scores TILE x TILE mask pairs: its threads stage CHUNK pixels of TILE masks of each
side in shared memory (coalesced loads), then each thread adds up its pair's common pixels. The
areas come from a block-per-mask reduction. The ratio follows pycocotools' rules exactly as the
CPU backends (float64, then the float32 result). RLE input has no GPU kernel: it runs on the
Cython backend.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda, uint32

from .._core.devices import cuda_unavailable_reason, describe_cuda
from . import _cython_backend

TILE = 16  # masks per block side (tests patch it smaller so that several blocks run)
CHUNK = 64  # pixels staged per step
AREA_THREADS = 256


unavailable_reason = cuda_unavailable_reason
describe = describe_cuda


def pairwise_rle(dt, gt, crowd):
    return _cython_backend.pairwise_rle(dt, gt, crowd)


@cuda.jit(cache=True)
def _areas(masks, out):
    i = cuda.blockIdx.x
    total = uint32(0)
    for p in range(cuda.threadIdx.x, masks.shape[1], cuda.blockDim.x):
        total += masks[i, p]
    cuda.atomic.add(out, i, total)


@functools.cache
def _pairs_kernel(tile: int, chunk: int):
    @cuda.jit
    def pairs(a, b, area_a, area_b, crowd, out):
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row0, col0 = cuda.blockIdx.x * tile, cuda.blockIdx.y * tile
        sa = cuda.shared.array((tile, chunk), np.uint8)
        sb = cuda.shared.array((tile, chunk), np.uint8)
        n, m, pixels = a.shape[0], b.shape[0], a.shape[1]
        t = ty * tile + tx
        inter = uint32(0)
        for base in range(0, pixels, chunk):
            for k in range(t, tile * chunk, tile * tile):
                r, c = k // chunk, k % chunk
                inside = base + c < pixels
                sa[r, c] = a[row0 + r, base + c] if inside and row0 + r < n else 0
                sb[r, c] = b[col0 + r, base + c] if inside and col0 + r < m else 0
            cuda.syncthreads()
            for c in range(chunk):
                inter += sa[tx, c] & sb[ty, c]
            cuda.syncthreads()
        i, j = row0 + tx, col0 + ty
        if i < n and j < m:
            value = 0.0
            if inter > 0:
                union = area_a[i] if crowd[j] else area_a[i] + area_b[j] - inter
                value = float(inter) / float(union)
            out[i, j] = value

    return pairs


def pairwise_dense_device(a, b, crowd: np.ndarray, out) -> None:
    """Fill the device array ``out`` [N, M] (float32) with the IoU of 0/1 uint8 device rows
    ``a`` [N, P] and ``b`` [M, P]; ``crowd`` [M] on the host."""
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        return
    area_a = cuda.to_device(np.zeros(n, np.uint32))
    area_b = cuda.to_device(np.zeros(m, np.uint32))
    if a.shape[1]:
        _areas[n, AREA_THREADS](a, area_a)
        _areas[m, AREA_THREADS](b, area_b)
    grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE)
    kernel = _pairs_kernel(TILE, CHUNK)
    kernel[grid, (TILE, TILE)](a, b, area_a, area_b, cuda.to_device(crowd), out)
