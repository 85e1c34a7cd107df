"""Benchmarks of the panoptic family: ``pq_compute`` against hotcoco and panopticapi, and PNG
decoders.

The set: 400 images of 480x640 (``panoptic_sets``: stuff, things, crowd, VOID, split, merged,
mislabelled and spurious segments), generated once with a fixed seed and kept in the temporary
folder between runs. Tasks: ``panoptic`` (the whole evaluation from the JSON files and PNG
folders; panopticapi runs its own process pool and takes seconds: timed only with ``--slow``)
and ``panoptic_png`` (decoding the set's 800 PNGs with each decoder on one thread and on the
usable cores, and fastiou's fused path that inflates and counts without a decoded image).
"""

from __future__ import annotations

import contextlib
import io
from concurrent.futures import ThreadPoolExecutor

from ._registry import Data, implementation, workload
from .panoptic_sets import cached_panoptic_set

FULL = "400 images 480x640"


def _set(n: int, shape=(480, 640)) -> Data:
    gt, pred = cached_panoptic_set(n, shape)
    return {"gt_json": gt, "pred_json": pred}


workload("panoptic", FULL, unit=("images/s", 400e-6))(lambda: _set(400))
workload("panoptic", "20 images 120x160", quick=True)(lambda: _set(20, (120, 160)))


@implementation("panoptic", "fastiou")
def _fastiou(data: Data):
    from fastiou.panoptic import pq_compute

    return lambda: pq_compute(data["gt_json"], data["pred_json"])


@implementation("panoptic", "hotcoco", peer=True)
def _hotcoco(data: Data):
    from hotcoco.panoptic import pq_compute

    def call():
        with contextlib.redirect_stdout(io.StringIO()):  # it prints panopticapi's table
            return pq_compute(data["gt_json"], data["pred_json"])

    return call


@implementation("panoptic", "panopticapi", peer=True, slow=True)
def _panopticapi(data: Data):
    from panopticapi.evaluation import pq_compute

    def call():
        with contextlib.redirect_stdout(io.StringIO()):
            return pq_compute(data["gt_json"], data["pred_json"])

    return call


# --------------------------------------------------------------------- PNG decoders


@workload("panoptic_png", f"{FULL}: 800 PNGs", unit=("PNGs/s", 800e-6))
def _pngs() -> Data:
    import glob
    import os

    gt, _ = cached_panoptic_set(400)
    root = os.path.dirname(gt)
    files = sorted(glob.glob(os.path.join(root, "gt", "*.png")))
    files += sorted(glob.glob(os.path.join(root, "pred", "*.png")))
    blobs = []
    for name in files:
        with open(name, "rb") as f:
            blobs.append(f.read())
    return {"blobs": blobs}


def _decoding(name: str, threads: int):
    def prepare(data: Data):
        from fastiou._core.config import usable_cores
        from fastiou.panoptic import _png

        decode = _png.decoder(name)  # ImportError when not installed: reported as such
        n = usable_cores() if threads == 0 else threads
        blobs = data["blobs"]
        if n == 1:
            return lambda: [decode(b) for b in blobs]

        def call():
            with ThreadPoolExecutor(n) as pool:
                return list(pool.map(decode, blobs))

        return call

    return prepare


def _fused_counting(data: Data):
    # inflate + unfilter + count of each (gt, pred) pair: what pq_compute runs per image
    from fastiou.panoptic import _cython, _png

    blobs = data["blobs"]
    half = len(blobs) // 2

    def one(i: int):
        g, p = _png.scanlines(blobs[i]), _png.scanlines(blobs[half + i])
        return _cython.pair_counts_scanlines(g.raw, g.bpp, p.raw, p.bpp, g.width)

    return lambda: [one(i) for i in range(half)]


for _name in ("imagecodecs", "pyspng", "opencv", "pillow"):
    implementation("panoptic_png", f"{_name} (1 thread)")(_decoding(_name, 1))
    implementation("panoptic_png", f"{_name} (all cores)")(_decoding(_name, 0))
implementation("panoptic_png", "fastiou fused inflate+count (1 thread)")(_fused_counting)
