"""Numba CUDA backend of the panoptic family: pair areas of id maps already on the GPU.

Each thread walks :data:`CHUNK` consecutive pixels, merges runs of equal (gt, pred) pairs, and
adds each run to a global open-addressing hash table (uint64 keys ``gt << 32 | pred``, claimed
with ``atomic.cas``; counts with ``atomic.add``). The table starts at :data:`FIRST_CAPACITY`
slots; when it fills up the kernel flags it and runs again on a table of twice the pixel count
(which always holds every pair). Ids are checked in the kernel: an id outside [0, 2^32 - 1)
flags the launch, its table is discarded, and the caller gets an error naming the id. Only the
table (K pairs) comes back to the host.

Tests run it under ``NUMBA_ENABLE_CUDASIM=1`` on tiny maps with :data:`THREADS`, :data:`CHUNK`
and :data:`FIRST_CAPACITY` patched small (several blocks, a table that must grow).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, uint64

from .._core.devices import cuda_unavailable_reason, describe_cuda
from ._pairs import ID_LIMIT, PanopticDataError

THREADS = 128  # threads per block
CHUNK = 32  # pixels per thread
FIRST_CAPACITY = 1 << 14  # slots (16 bytes each); a 480x640 COCO image has ~100 pairs
EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)  # no pair has it: ids are below 2^32 - 1
TABLE_FULL, BAD_ID = 1, 2


unavailable_reason = cuda_unavailable_reason


describe = describe_cuda


@cuda.jit(device=True)
def _insert(keys, counts, key, n, status):
    mask = uint64(keys.shape[0] - 1)
    h = key ^ (key >> uint64(32))
    h ^= h >> uint64(15)
    slot = h & mask
    for _ in range(keys.shape[0]):
        old = cuda.atomic.cas(keys, slot, EMPTY, key)
        if old == EMPTY or old == key:
            cuda.atomic.add(counts, slot, n)
            return
        slot = (slot + uint64(1)) & mask
    cuda.atomic.max(status, 0, TABLE_FULL)


@cuda.jit(device=True)
def _id_at(x, i, channels):
    """(valid, id) of pixel ``i`` of ``x`` [N, C]: an id map (one channel index) or RGB."""
    if channels.shape[0] == 1:
        v = x[i, 0]
        if v >= 0 and v < ID_LIMIT:
            return True, uint64(v)
        return False, uint64(0)
    r, g, b = channels[0], channels[1], channels[2]
    return True, uint64(x[i, r]) | (uint64(x[i, g]) << uint64(8)) | (uint64(x[i, b]) << uint64(16))


@cuda.jit
def _count(gt, pred, gc, pc, keys, counts, status):
    start = cuda.grid(1) * CHUNK
    n = gt.shape[0]
    if start >= n:
        return
    stop = min(start + CHUNK, n)
    run_key = EMPTY
    run = 0
    for i in range(start, stop):
        g_ok, g = _id_at(gt, i, gc)
        p_ok, p = _id_at(pred, i, pc)
        if not (g_ok and p_ok):
            cuda.atomic.max(status, 0, BAD_ID)
            return
        key = (g << uint64(32)) | p
        if key != run_key:
            if run > 0:
                _insert(keys, counts, run_key, run, status)
            run_key = key
            run = 0
        run += 1
    _insert(keys, counts, run_key, run, status)


def _device(x):
    """A C-contiguous numba device view of ``x`` (host arrays are copied over)."""
    if type(x).__module__.partition(".")[0] == "torch" and x.device.type != "cpu":
        return cuda.as_cuda_array(x.detach().contiguous())
    if hasattr(x, "__cuda_array_interface__"):
        if type(x).__module__.partition(".")[0] == "cupy":
            import cupy

            x = cupy.ascontiguousarray(x)
        view = cuda.as_cuda_array(x)
        return view if view.is_c_contiguous() else cuda.to_device(view.copy_to_host())
    from .._core.arrays import to_numpy

    return cuda.to_device(np.ascontiguousarray(to_numpy(x)))


def _pow2(n: int) -> int:
    return 1 << max(1, (n - 1).bit_length())


def pair_counts(gt, pred, *, image_id=None, channels=None):
    """Sorted pair keys ``gt << 32 | pred`` and their pixel counts of two maps on the GPU.

    ``gt``/``pred``: [H, W] integer ids, or [H, W, 3|4] uint8 RGB(A) (R, G, B at ``channels``).
    """
    g, p = _device(gt), _device(pred)
    if g.ndim == 3:  # RGB(A) pixels: [N, C] and where R, G, B are
        h, w, c = g.shape  # the simulator's shapes take no negative index
        g, p = g.reshape(h * w, c), p.reshape(h * w, p.shape[2])
        gc, pc = channels or ((0, 1, 2), (0, 1, 2))
    else:  # ids: [N, 1]
        g, p = g.reshape(g.size, 1), p.reshape(p.size, 1)
        gc = pc = (0,)
    gc, pc = cuda.to_device(np.array(gc, np.int64)), cuda.to_device(np.array(pc, np.int64))
    n = g.shape[0]
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    capacity = min(FIRST_CAPACITY, _pow2(2 * n))
    blocks = max(1, -(-n // (CHUNK * THREADS)))
    while True:
        keys = cuda.to_device(np.full(capacity, EMPTY, np.uint64))
        counts = cuda.to_device(np.zeros(capacity, np.int64))
        status = cuda.to_device(np.zeros(1, np.int64))
        _count[blocks, THREADS](g, p, gc, pc, keys, counts, status)
        code = int(status.copy_to_host()[0])
        if code == BAD_ID:
            _raise_bad_id(g.copy_to_host(), p.copy_to_host(), image_id)
        if code != TABLE_FULL:
            break
        capacity = _pow2(2 * n)  # holds every pair: there are at most n
    k, c = keys.copy_to_host(), counts.copy_to_host()
    used = c != 0
    k, c = k[used], c[used]
    order = np.argsort(k)
    return k[order], c[order]


def _raise_bad_id(gt: np.ndarray, pred: np.ndarray, image_id) -> None:
    for name, x in (("ground-truth", gt), ("predicted", pred)):
        bad = x[(x < 0) | (x >= ID_LIMIT)]
        if bad.size:
            where = f"image {image_id}: " if image_id is not None else ""
            raise PanopticDataError(f"{where}{name} id {bad[0]} is not in [0, 2^32 - 1)")
    raise AssertionError("the kernel flagged an id that is in range")
