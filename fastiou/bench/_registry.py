"""The benchmark registry: workloads, implementations (fastiou per backend and the peers), a timer.

One registry drives ``fastiou bench`` (a markdown table of medians and ratios measured in one
run) and the pytest-benchmark suite in ``bench/``. A peer that is not installed is reported as
missing, never silently dropped. Each family registers its workloads and implementations with
:func:`workload` and :func:`implementation`; the box family's are at the bottom of this file.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Data = dict[str, Any]


@dataclass(frozen=True)
class Workload:
    task: str  # what is computed, e.g. "box_iou"; implementations register per task
    name: str  # e.g. "4000x4000 float32"
    make: Callable[[], Data]  # builds the (seeded) inputs
    quick: bool = False  # part of `fastiou bench --quick` and the CI smoke run
    unit: tuple[str, float] | None = None  # e.g. ("Mpairs/s", 16.0): work in millions


@dataclass(frozen=True)
class Implementation:
    task: str
    name: str
    prepare: Callable[[Data], Callable[[], Any]]  # returns the call to time; ImportError = absent
    peer: bool = False
    slow: bool = False  # seconds per run on the big workloads: timed only with `--slow`


@dataclass
class Row:
    task: str
    workload: str
    implementation: str
    peer: bool
    median_s: float | None  # None: not available
    runs: int = 0
    note: str = ""
    ratio: float | None = field(default=None)  # best peer median / this median


WORKLOADS: list[Workload] = []
IMPLEMENTATIONS: list[Implementation] = []


def workload(task: str, name: str, *, quick: bool = False, unit=None):
    """Register the decorated input factory as a workload of ``task``."""

    def register(make: Callable[[], Data]) -> Callable[[], Data]:
        WORKLOADS.append(Workload(task, name, make, quick, unit))
        return make

    return register


def implementation(task: str, name: str, *, peer: bool = False, slow: bool = False):
    """Register the decorated ``prepare(data) -> call`` as an implementation of ``task``."""

    def register(prepare):
        IMPLEMENTATIONS.append(Implementation(task, name, prepare, peer, slow))
        return prepare

    return register


def time_call(call: Callable[[], Any], min_time: float = 0.3, max_runs: int = 30) -> list[float]:
    """Run ``call`` once to warm up (JIT, caches), then time runs until ``min_time`` has passed."""
    start = time.perf_counter()
    call()
    if time.perf_counter() - start > 2 * min_time:  # slow: a warm-up plus three runs is enough
        max_runs = 3
    times: list[float] = []
    while len(times) < max_runs and (len(times) < 5 or sum(times) < min_time):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def run(
    tasks: Iterable[str] | None = None,
    *,
    quick: bool = False,
    slow: bool = False,
    min_time: float = 0.3,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Time every available implementation on every selected workload, all in this one run.

    Implementations marked slow are timed on the big workloads only when ``slow`` is true.
    """
    tasks = set(tasks) if tasks is not None else None
    rows: list[Row] = []
    for w in WORKLOADS:
        if (tasks is not None and w.task not in tasks) or (quick and not w.quick):
            continue
        data = w.make()
        group = []
        for impl in (i for i in IMPLEMENTATIONS if i.task == w.task):
            if progress:
                progress(f"{w.task} {w.name}: {impl.name}")
            row = Row(w.task, w.name, impl.name, impl.peer, None)
            if impl.slow and not (slow or w.quick):
                row.note = "not timed: slow (fastiou bench --slow)"
                group.append(row)
                continue
            try:
                times = time_call(impl.prepare(data), min_time)
                row.median_s, row.runs = statistics.median(times), len(times)
            except ImportError as e:
                row.note = f"not installed ({e.name or e})"
            group.append(row)
        peers = [r.median_s for r in group if r.peer and r.median_s is not None]
        for r in group:
            if peers and r.median_s:
                r.ratio = min(peers) / r.median_s
        rows.extend(group)
    return rows


def _format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def markdown(rows: list[Row]) -> str:
    """The table: one line per (workload, implementation); ratio = best peer / this (× faster)."""
    lines = [
        "| task | workload | implementation | median | vs best peer |",
        "|---|---|---|---:|---:|",
    ]
    for r in rows:
        name = r.implementation + (" (peer)" if r.peer else "")
        median = _format_time(r.median_s) if r.median_s is not None else r.note or "n/a"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        lines.append(f"| {r.task} | {r.workload} | {name} | {median} | {ratio} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The box family
# ---------------------------------------------------------------------------------------------


def random_boxes(n: int, dtype=np.float32, seed: int = 0, canvas: float = 1000.0) -> np.ndarray:
    """``n`` xyxy boxes with corners in [0, canvas] and sides in [1, canvas / 10)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, canvas, (n, 2))
    wh = rng.uniform(1, canvas / 10, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def _pair(n: int, m: int, dtype=np.float32):
    return lambda: {"boxes1": random_boxes(n, dtype, 1), "boxes2": random_boxes(m, dtype, 2)}


BOX_TASKS = {  # task -> fastiou function name, torchvision function name
    "box_iou": ("box_iou", "box_iou"),
    "giou": ("generalized_box_iou", "generalized_box_iou"),
    "diou": ("distance_box_iou", "distance_box_iou"),
    "ciou": ("complete_box_iou", "complete_box_iou"),
}

for _n in (4000, 1000, 100):
    workload("box_iou", f"{_n}x{_n} float32", quick=_n == 100, unit=("Mpairs/s", _n * _n / 1e6))(
        _pair(_n, _n)
    )
for _task in ("giou", "diou", "ciou"):
    workload(_task, "4000x4000 float32", unit=("Mpairs/s", 16.0))(_pair(4000, 4000))
    workload(_task, "100x100 float32", quick=True)(_pair(100, 100))
# The auto threshold: the same kernel on Cython and numba around CYTHON_MAX_WORK["boxes"].
for _n in (128, 256, 362, 512, 724, 1024):
    workload("box_iou_sweep", f"{_n}x{_n} float32")(_pair(_n, _n))


def _fastiou_box(task: str, backend: str, use_out: bool = False):
    def prepare(data: Data):
        import fastiou

        f = getattr(fastiou, BOX_TASKS.get(task, BOX_TASKS["box_iou"])[0])
        a, b = data["boxes1"], data["boxes2"]
        if use_out:
            out = np.empty((len(a), len(b)), a.dtype)
            return lambda: f(a, b, out=out, backend=backend)
        return lambda: f(a, b, backend=backend)

    return prepare


for _task in BOX_TASKS:
    implementation(_task, "fastiou")(_fastiou_box(_task, "auto"))
    implementation(_task, "fastiou out=")(_fastiou_box(_task, "auto", use_out=True))
    implementation(_task, "fastiou[cython]")(_fastiou_box(_task, "cython"))
    implementation(_task, "fastiou[numba]")(_fastiou_box(_task, "numba"))
implementation("box_iou_sweep", "fastiou[cython] out=")(_fastiou_box("box_iou", "cython", True))
implementation("box_iou_sweep", "fastiou[numba] out=")(_fastiou_box("box_iou", "numba", True))


def _torchvision(task: str):
    def prepare(data: Data):
        import torch
        import torchvision.ops

        f = getattr(torchvision.ops, BOX_TASKS[task][1])
        a, b = torch.from_numpy(data["boxes1"]), torch.from_numpy(data["boxes2"])
        return lambda: f(a, b)

    return prepare


for _task in BOX_TASKS:
    implementation(_task, "torchvision.ops", peer=True)(_torchvision(_task))


def _fastbbox(function: str):
    def prepare(data: Data):
        import fastbbox

        f = getattr(fastbbox, function)
        return lambda: f(data["boxes1"], data["boxes2"])

    return prepare


def _powerboxes(function: str):
    def prepare(data: Data):
        import powerboxes

        f = getattr(powerboxes, function)
        return lambda: f(data["boxes1"], data["boxes2"])

    return prepare


@implementation("box_iou", "cython_bbox (float64)", peer=True)
def _cython_bbox(data: Data):
    from cython_bbox import bbox_overlaps

    # cython_bbox takes float64 only and uses the +1 pixel convention: same work per pair.
    a, b = data["boxes1"].astype(np.float64), data["boxes2"].astype(np.float64)
    return lambda: bbox_overlaps(a, b)


@implementation("box_iou", "numpy broadcast", peer=True)
def _numpy_broadcast(data: Data):
    a, b = data["boxes1"], data["boxes2"]

    def iou():
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
        inter = np.prod(np.clip(wh, 0, None), axis=2)
        return inter / (area_a[:, None] + area_b[None, :] - inter)

    return iou


implementation("box_iou", "fastbbox.bbox_overlaps", peer=True)(_fastbbox("bbox_overlaps"))
implementation("giou", "fastbbox.generalized_iou", peer=True)(_fastbbox("generalized_iou"))
implementation("diou", "fastbbox.distance_iou", peer=True)(_fastbbox("distance_iou"))
implementation("ciou", "fastbbox.complete_iou", peer=True)(_fastbbox("complete_iou"))
implementation("box_iou", "powerboxes.parallel_iou_distance", peer=True)(
    _powerboxes("parallel_iou_distance")
)
implementation("giou", "powerboxes.parallel_giou_distance", peer=True)(
    _powerboxes("parallel_giou_distance")
)

# Cold start: a fresh interpreter importing fastiou and computing one 100x100 IoU matrix,
# against a fresh interpreter importing numpy (the baseline the target is stated in).
COLD_FASTIOU = (
    "import numpy as np, fastiou; b = np.random.default_rng(0).uniform(0, 1, (100, 4)); "
    "b[:, 2:] += b[:, :2]; fastiou.box_iou(b, b)"
)
workload("cold_start", "fresh python, 100x100", quick=True)(lambda: {})


def _subprocess(code: str):
    def prepare(data: Data):
        env = {**os.environ}
        env.pop("FASTIOU_BACKEND", None)
        # `python -c` imports from the working directory: run beside the fastiou being timed.
        cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return lambda: subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=cwd)

    return prepare


implementation("cold_start", "python -c 'import numpy'", peer=True)(_subprocess("import numpy"))
implementation("cold_start", "import fastiou + box_iou")(_subprocess(COLD_FASTIOU))

from . import (  # noqa: E402 - each module registers its family's workloads
    _bench_coco,  # noqa: F401 - COCO evaluation
    _bench_nms,  # noqa: F401 - nms, batched_nms, soft_nms
    _bench_seg,  # noqa: F401 - the confusion family
)
