"""The benchmark registry: workloads, implementations (fastiou per backend and the peers), a timer.

One registry drives ``fastiou bench`` (a markdown table of medians and ratios measured in one
run) and the pytest-benchmark suite in ``bench/``. A peer that is not installed is reported as
missing, never silently dropped. Each family registers its workloads and implementations with
:func:`workload` and :func:`implementation` in its own module of this package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
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
    # what runs beside the timed calls (a context manager), e.g. a torch job holding every core
    beside: Callable[[], contextlib.AbstractContextManager] | None = None


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


def workload(task: str, name: str, *, quick: bool = False, unit=None, beside=None):
    """Register the decorated input factory as a workload of ``task``; ``beside`` (a context
    manager factory) runs around the timing of all its implementations."""

    def register(make: Callable[[], Data]) -> Callable[[], Data]:
        WORKLOADS.append(Workload(task, name, make, quick, unit, beside))
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
        with w.beside() if w.beside else contextlib.nullcontext():
            _time_group(w, data, group, slow, min_time, progress)
        peers = [r.median_s for r in group if r.peer and r.median_s is not None]
        for r in group:
            if peers and r.median_s:
                r.ratio = min(peers) / r.median_s
        rows.extend(group)
    return rows


ROUNDS = 5  # implementations of one workload are timed in turns, so load hits them alike


def _time_group(w: Workload, data: Data, group: list[Row], slow, min_time, progress) -> None:
    """Time the implementations of one workload in ``ROUNDS`` interleaved turns: on a shared
    machine a burst of load then lands on every implementation rather than on one row. Calls
    under ~0.1 ms are timed in batches (a sample is the mean of a batch) so that a median of
    thousands of calls costs no more than the timer's resolution allows."""
    timed: list[tuple[Row, Callable[[], Any], int, bool]] = []
    for impl in (i for i in IMPLEMENTATIONS if i.task == w.task):
        if progress:
            progress(f"{w.task} {w.name}: {impl.name}")
        row = Row(w.task, w.name, impl.name, impl.peer, None)
        group.append(row)
        if impl.slow and not (slow or w.quick):
            row.note = "not timed: slow (fastiou bench --slow)"
            continue
        try:
            call = impl.prepare(data)
            start = time.perf_counter()
            call()  # warm-up: JIT, caches
            first = time.perf_counter() - start
        except ImportError as e:
            row.note = f"not installed ({e.name or e})"
            continue
        start = time.perf_counter()
        call()
        once = min(first, time.perf_counter() - start)
        batch = max(1, int(1e-4 / once)) if once > 0 else 1
        timed.append((row, call, batch, first > 2 * min_time))
    samples: dict[int, list[float]] = {id(row): [] for row, *_ in timed}
    for turn in range(ROUNDS):
        for row, call, batch, is_slow in timed:
            got = samples[id(row)]
            if is_slow and turn >= 3:  # a slow call: three runs are enough
                continue
            end = time.perf_counter() + min_time / ROUNDS
            while True:
                t0 = time.perf_counter()
                for _ in range(batch):
                    call()
                got.append((time.perf_counter() - t0) / batch)
                if is_slow or time.perf_counter() >= end:
                    break
    for row, *_ in timed:
        row.median_s, row.runs = statistics.median(samples[id(row)]), len(samples[id(row)])


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


@contextlib.contextmanager
def torch_job() -> Iterator[None]:
    """A torch job holding every core beside the timed calls (the case of evaluating next to
    training): a subprocess with ``torch.set_num_threads(cores)`` running a matmul loop, stopped
    on exit. Nothing runs beside when torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    code = (
        f"import torch\ntorch.set_num_threads({cores})\na = torch.randn(512, 512)\na @ a\n"
        "print('ready', flush=True)\nwhile True:\n    a @ a\n"
    )
    job = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    try:
        job.stdout.readline()  # its threads are running
        yield
    finally:
        job.kill()
        job.wait()


def random_boxes(n: int, dtype=np.float32, seed: int = 0, canvas: float = 1000.0) -> np.ndarray:
    """``n`` xyxy boxes with corners in [0, canvas] and sides in [1, canvas / 10)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, canvas, (n, 2))
    wh = rng.uniform(1, canvas / 10, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)
