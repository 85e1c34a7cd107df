"""Settings: the size thresholds that steer ``backend="auto"``, and the thread count.

Each threshold names the benchmark that set it; rerun that benchmark (``fastiou bench``) on new
hardware before changing one.
"""

import functools
import os

# backend="auto" on CPU data sends work below this to Cython, at or above it to numba, per
# operation family. Below it, Cython also avoids importing numba (~0.3 s) and loading its cached
# kernels.
CYTHON_MAX_WORK = {
    # Pairs of boxes. `fastiou bench --task box_iou_sweep --task giou_sweep --task first_call`
    # (bench/README.md, "Small calls and busy cores"; 2026-12-01, shared machine): at 2739x2739
    # (7.5M pairs) the Cython kernels (AVX2 build) ran IoU in 2.8 ms against numba's 26 ms and
    # GIoU in 11 ms against 42 ms (an earlier, busier run: 20 vs 80 and 28 vs 51 ms; numba's
    # threads suffer most from other jobs), and a fresh process paid 0.95 s for its first numba
    # call against 0.07 s for import + first Cython call. So Cython up to ~2900x2900 pairs: the
    # 7.5M-pair first call never imports numba.
    "boxes": 1 << 23,
    # Pixels of label maps. `fastiou bench --task confusion_sweep` (19 classes, uint8): Cython
    # and numba run the same loop at the same speed (within noise) from 256x256 to 4096x4096;
    # numba only gains on logits (AVX-512 argmax, ~7%), and its first call of a process costs
    # ~0.3 s of import. So Cython up to a 4096x4096 map (or a batch of 8 Cityscapes frames).
    "confusion": 1 << 24,
    # Boxes given to nms / batched_nms / soft_nms: always Cython. `fastiou bench --task nms --task
    # batched_nms` (1k to 50k boxes): the same algorithm in Cython and numba runs as fast (one
    # class is serial on both), and Cython needs no numba import or JIT warm-up.
    "nms": 1 << 62,
    # Pixels of a pair of panoptic id maps: always Cython on the CPU (numba has no panoptic
    # kernel; the entry falls through). `fastiou bench --task panoptic`.
    "panoptic": 1 << 62,
    # Mask pairs (N x M) of mask_iou on the CPU: always Cython (the masks family has no numba
    # kernel: `fastiou bench --task mask_iou` shows the run-length Cython kernel far ahead of a
    # dense bitwise pass, and numba would only add its import).
    "masks": 1 << 62,
}

# Below this many pairs (or boxes) the Cython kernels run on one thread: waking the pool's
# threads costs more than the second core gives back. Set with `fastiou bench --sweep`.
PARALLEL_MIN_WORK = 1 << 15

_num_threads: int | None = None


@functools.cache
def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity at first use), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def num_threads() -> int:
    """Threads the CPU kernels use: set_num_threads(n), else all usable cores."""
    return _num_threads if _num_threads is not None else usable_cores()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads in the Cython (pool) and numba kernels; None restores the default."""
    global _num_threads
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"number of threads must be a positive integer or None, not {n!r}")
    _num_threads = n
