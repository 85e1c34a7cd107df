#!/usr/bin/env python3
"""fastiou's CUDA backend on one GPU against torchvision's CUDA ops and torch.bincount.

    python3 bench/gpu_bench.py [--out FILE]   # on a machine with an NVIDIA GPU (bench/gpu.sh)
    python3 bench/gpu_bench.py --simulate     # numba's CUDA simulator, tiny sizes (the test)

Every row times one workload with one input type (torch CUDA tensors, cupy arrays): fastiou
with ``backend="cuda"`` and ``backend="auto"`` against the peer on the same device memory
(torchvision's CUDA op; a ``torch.bincount`` confusion matrix), as the median of several calls
after warm-up calls (JIT compile), each call timed between two ``torch.cuda.synchronize()``
(a whole-device synchronize: it waits for numba's and cupy's work too). ``speed-up`` is the
peer's median over fastiou[auto]'s.

Each row also checks, and says PASS or FAIL:

- the result equals the peer's on the same inputs (allclose for overlaps; identical keep lists
  for NMS; identical matrices for confusion counts), for both backends, and both ran the cuda
  kernels (``dispatch.select`` is watched);
- it is the caller's array type on the caller's device (confusion matrices are a small numpy
  array by design);
- no data crosses between host and device during a call: every copying entry point of numba,
  torch and cupy is patched to count bytes (:class:`HostTransfers`), and on a real GPU the CUDA
  profiler (CUPTI, through ``torch.profiler``) counts every memcpy the process issues, whichever
  library issued it (:func:`cupti_transfers`; one pass after all timings, so that profiler
  hooks cannot slow a timed call). Both are calibrated on a known copy first. Small
  bookkeeping copies (a kept count, a label table, the C×C matrix) are allowed up to
  :data:`ALLOWED_BYTES`; the inputs and results are far larger.

Under ``--simulate`` there is no device: torch CPU tensors stand in for CUDA tensors, so their
data must be copied to the simulated device, and the check turns round: the counter must see at
least the inputs' bytes cross (which proves it catches fastiou's copies); cupy rows are skipped.
Timings there mean nothing. The table goes to stdout and, with ``--out`` (default
``$OUT/gpu_table.md`` when OUT is set), to a file. Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALLOWED_BYTES = 64 * 1024  # bookkeeping copies per call: counts, label tables, a C x C matrix
SLOW_S = 3.0  # timed calls of one implementation stop after this many seconds

# (device sizes, simulator sizes)
BOX_SIZES = ([(4000, 4000), (20000, 20000)], [(16, 12), (28, 24)])
NMS_SIZES = ([10_000, 100_000], [24, 48])
BATCHED = ((20_000, 80), (40, 4))  # boxes, classes
MAPS = ((8, 1024, 2048), (2, 8, 12))  # confusion: batch, height, width
NUM_CLASSES = (19, 5)
IGNORE = 255


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------


class Env:
    """What this run works with: the libraries, the device, how to wait for it, the sizes."""

    def __init__(self, simulate: bool):
        import numpy
        import torch
        import torchvision.ops

        import fastiou

        self.simulate = simulate
        self.np, self.torch, self.tv, self.fastiou = numpy, torch, torchvision.ops, fastiou
        side = 1 if simulate else 0
        self.box_sizes, self.nms_sizes = BOX_SIZES[side], NMS_SIZES[side]
        self.batched, self.maps, self.classes = BATCHED[side], MAPS[side], NUM_CLASSES[side]
        # timing per implementation and row: warm-up calls, then calls until the budget is spent
        self.warmup, self.min_runs, self.budget_s = (0, 1, 0.0) if simulate else (2, 3, 0.6)
        self.cupy, self.cupy_note = _import_cupy(simulate)
        if simulate:
            self.device = torch.device("cpu")
            self.gpu = "none: numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1), CPU tensors"
            self.kinds = ["torch (CPU stand-in)", "cupy"]
        else:
            if not torch.cuda.is_available():
                raise SystemExit("gpu_bench: torch sees no CUDA device (use --simulate here)")
            self.device = torch.device("cuda", torch.cuda.current_device())
            self.gpu = torch.cuda.get_device_name(self.device)
            self.kinds = ["torch", "cupy"]
        status = fastiou.backends()["cuda"]
        if not status.available:
            raise SystemExit(f"gpu_bench: fastiou's cuda backend is unavailable: {status.detail}")
        self.cuda_detail = status.detail

    def sync(self) -> None:
        if not self.simulate:
            self.torch.cuda.synchronize()  # cudaDeviceSynchronize: every stream, every library

    def as_kind(self, tensor, kind: str):
        """``tensor`` as input type ``kind``, sharing its memory."""
        if kind.startswith("cupy"):
            return self.cupy.asarray(tensor)  # __cuda_array_interface__: zero-copy
        return tensor

    def to_torch(self, x):
        """A result as a torch tensor for comparison (outside any timed or counted call)."""
        if isinstance(x, self.torch.Tensor):
            return x
        if self.cupy is not None and isinstance(x, self.cupy.ndarray):
            return self.torch.as_tensor(x, device=self.device)
        return self.torch.from_numpy(self.np.asarray(x))


def _import_cupy(simulate: bool):
    if simulate:
        return None, "skipped: no cupy under the simulator (cupy needs a GPU)"
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        return cupy, ""
    except Exception as e:  # noqa: BLE001 - not installed, or no device for it
        return None, f"skipped: cupy unusable ({type(e).__name__}: {e})"


def versions(env: Env) -> str:
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import numba
    import numba.cuda

    cupy = env.cupy.__version__ if env.cupy is not None else "not used"
    numba_cuda = version("numba-cuda")
    return (
        f"torch {env.torch.__version__} (CUDA {env.torch.version.cuda}), torchvision "
        f"{version('torchvision')}, cupy {cupy}, numba {numba.__version__}, numba-cuda "
        f"{numba_cuda} (numba.cuda from {os.path.dirname(numba.cuda.__file__)}), "
        f"fastiou from {os.path.dirname(env.fastiou.__file__)}"
    )


def small_blocks(env: Env) -> None:
    """Under the simulator, small blocks (as the tests use) so that several blocks run."""
    from fastiou._core import dispatch

    patches = {"boxes": {"THREADS": (8, 4)}, "nms": {"THREADS": 32, "BLOCK": 16}}
    patches["confusion"] = {"THREADS": 32, "MAX_BLOCKS": 4}
    for family, values in patches.items():
        path = dispatch.MODULES.get(family, {}).get("cuda")
        if path is None:
            continue
        module = importlib.import_module(path)
        for name, value in values.items():
            if hasattr(module, name):
                setattr(module, name, value)


# ---------------------------------------------------------------------------------------------
# Host <-> device transfers
# ---------------------------------------------------------------------------------------------

_MISSING = object()


class HostTransfers:
    """Counts the bytes copied host -> device and device -> host inside a ``with`` block.

    Patches every copying entry point a caller reaches from Python: numba's ``cuda.to_device``
    and its device arrays' ``copy_to_host`` / ``copy_to_device`` (which numba's kernel launch also
    uses for host arguments), torch's ``Tensor.to / cpu / cuda / item / tolist``, ``torch.tensor``
    and ``torch.as_tensor`` (counted when the data changes sides), and ``cupy.asnumpy``,
    ``cupy.asarray`` and ``cupy.array``. Only the outermost patched call counts (numba's
    ``to_device`` calls ``copy_to_device``). cupy's ``ndarray.get/set`` are C methods that cannot
    be patched: the CUPTI count covers them on a real GPU.
    """

    def __init__(self, env: Env):
        self.env = env
        self.h2d = self.d2h = 0
        self.calls: list[str] = []
        self._patches: list[tuple[Any, str, Any]] = []
        self._local = threading.local()

    # -- bookkeeping
    def _count(self, direction: str, nbytes: int, via: str) -> None:
        if direction == "h2d":
            self.h2d += nbytes
        else:
            self.d2h += nbytes
        self.calls.append(f"{via} {direction} {nbytes} B")

    def _wrap(self, owner: Any, name: str, judge: Callable[..., tuple[str, int] | None]):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            depth = getattr(self._local, "depth", 0)
            self._local.depth = depth + 1
            try:
                result = original(*args, **kwargs)
            finally:
                self._local.depth = depth
            if depth == 0:
                seen = judge(result, *args, **kwargs)
                if seen is not None:
                    self._count(seen[0], seen[1], name)
            return result

        self._patches.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, wrapper)

    def __enter__(self) -> HostTransfers:
        self._patch_numba()
        self._patch_torch()
        if self.env.cupy is not None:
            self._patch_cupy()
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._patches):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._patches.clear()

    # -- numba
    def _patch_numba(self) -> None:
        from numba import cuda

        array_type = type(cuda.device_array(1))
        self._wrap(cuda, "to_device", lambda r, ary, *a, **k: ("h2d", _nbytes(ary)))
        for method in ("copy_to_host", "copy_to_device"):
            owner = next(c for c in array_type.__mro__ if method in c.__dict__)
            judge = self._copy_to_host if method == "copy_to_host" else self._copy_to_device
            self._wrap(owner, method, judge)
        self._device_array_type = array_type

    @staticmethod
    def _copy_to_host(result, array, *args, **kwargs):
        return "d2h", _nbytes(array)

    def _copy_to_device(self, result, array, source, *args, **kwargs):
        on_device = hasattr(source, "__cuda_array_interface__") or isinstance(
            source, self._device_array_type
        )
        return None if on_device else ("h2d", _nbytes(source))

    # -- torch
    def _patch_torch(self) -> None:
        torch = self.env.torch

        def moved(result, tensor, *args, **kwargs):
            if not isinstance(result, torch.Tensor) or not isinstance(tensor, torch.Tensor):
                return None
            src, dst = tensor.device.type, result.device.type
            if src == dst:
                return None
            return ("h2d" if src == "cpu" else "d2h"), result.nbytes

        def scalar(result, tensor, *args, **kwargs):
            if tensor.device.type == "cpu":
                return None
            return "d2h", tensor.nbytes

        for name in ("to", "cpu", "cuda"):
            self._wrap(torch.Tensor, name, moved)
        for name in ("item", "tolist"):
            self._wrap(torch.Tensor, name, scalar)

        def created(result, data, *args, **kwargs):
            host = not isinstance(data, torch.Tensor) and not hasattr(
                data, "__cuda_array_interface__"
            )
            if host and isinstance(result, torch.Tensor) and result.device.type != "cpu":
                return "h2d", result.nbytes
            if isinstance(data, torch.Tensor) and isinstance(result, torch.Tensor):
                return moved(result, data)
            return None

        for name in ("tensor", "as_tensor"):
            self._wrap(torch, name, created)

    # -- cupy
    def _patch_cupy(self) -> None:
        cupy = self.env.cupy

        def from_host(result, data, *args, **kwargs):
            if isinstance(data, cupy.ndarray) or hasattr(data, "__cuda_array_interface__"):
                return None
            return "h2d", int(getattr(result, "nbytes", 0))

        self._wrap(cupy, "asnumpy", lambda r, a, *x, **k: ("d2h", _nbytes(a)))
        for name in ("asarray", "array"):
            self._wrap(cupy, name, from_host)


def _nbytes(x: Any) -> int:
    nbytes = getattr(x, "nbytes", None)
    if nbytes is None:
        return int(getattr(x, "size", 0)) * int(getattr(getattr(x, "dtype", None), "itemsize", 8))
    return int(nbytes)


def cupti_transfers(env: Env, call: Callable[[], Any]) -> tuple[int, int] | str:
    """(host->device bytes, device->host bytes) of every memcpy the CUDA profiler saw during
    ``call``, whichever library issued it; or why the profiler could not say."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            call()
            env.sync()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "trace.json")
            prof.export_chrome_trace(path)
            with open(path) as f:
                events = json.load(f).get("traceEvents", [])
    except Exception as e:  # noqa: BLE001 - no CUPTI: say so, the patch counter still runs
        return f"CUPTI unavailable ({type(e).__name__}: {e})"
    h2d = d2h = 0
    for event in events:
        name = str(event.get("name", ""))
        if "memcpy" not in str(event.get("cat", "")).lower() and "Memcpy" not in name:
            continue
        nbytes = int((event.get("args") or {}).get("bytes", 0))
        if "HtoD" in name:
            h2d += nbytes
        elif "DtoH" in name:
            d2h += nbytes
    return h2d, d2h


def calibrate(env: Env) -> tuple[str, bool]:
    """Check the patch counter on copies of known size; (report line, whether it counted them)."""
    np = env.np
    from numba import cuda

    size = 16384
    probe = np.ones(size // 8)
    with HostTransfers(env) as counter:
        device = cuda.to_device(probe)
        device.copy_to_host()
    patch_ok = counter.h2d == size and counter.d2h == size
    line = f"patch counter on a known {size} B round trip: h2d {counter.h2d}, d2h {counter.d2h}"
    if not env.simulate:
        tensor = env.torch.ones(size // 4, device=env.device)
        with HostTransfers(env) as counter:
            tensor.cpu()
        patch_ok = patch_ok and counter.d2h == size
        line += f" and torch .cpu() {counter.d2h} B"
    return line + (" ok" if patch_ok else " WRONG"), patch_ok


def cupti_pass(env: Env, pending: list) -> str:
    """The CUPTI count of one fastiou[auto] call of each measured row, after all timings (the
    profiler may leave CUPTI hooks that slow later launches); adds to the rows, returns the
    calibration line."""
    if env.simulate:
        return "CUPTI: not under the simulator"
    from numba import cuda

    size = 16384
    probe, tensor = env.np.ones(size // 8), env.torch.ones(size // 4, device=env.device)
    seen = cupti_transfers(env, lambda: (cuda.to_device(probe), tensor.cpu()))
    ok = not isinstance(seen, str) and seen[0] >= size and seen[1] >= size
    line = f"CUPTI on a numba h2d and a torch d2h of {size} B each: {seen} "
    line += "ok" if ok else "NOT SEEN (rows judged by the patch counter alone)"
    for row, w, arrays in pending:
        if not ok:
            row.transfers += "; CUPTI: unavailable"
            continue
        seen = cupti_transfers(env, lambda w=w, arrays=arrays: w.run("auto", *arrays))
        row.transfers += f"; CUPTI memcpy h2d, d2h: {seen}"
        if isinstance(seen, str) or sum(seen) > ALLOWED_BYTES:
            row.problems += (f"CUPTI saw memcpy {seen}",)
    return line


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------


@dataclass
class Workload:
    task: str
    workload: str
    inputs: Callable[[], tuple]  # seeded torch tensors on env.device
    run: Callable[..., Any]  # (backend, *arrays) -> fastiou's result
    peer_name: str
    peer: Callable[..., Any]  # (*torch tensors) -> the peer's result
    compare: Callable[[Any, Any], str | None]  # (fastiou result as torch, peer's) -> problem
    goal: float | None = None
    numpy_result: bool = False  # the result is a small numpy array by design


def random_boxes(env: Env, n: int, seed: int, image: float = 1000.0):
    torch = env.torch
    gen = torch.Generator(device=env.device).manual_seed(seed)
    corner = torch.rand(n, 2, generator=gen, device=env.device) * image
    size = 8 + torch.rand(n, 2, generator=gen, device=env.device) * (image / 10)
    return torch.cat([corner, corner + size], 1)


def distinct_scores(env: Env, n: int, seed: int):
    """Scores without ties (torchvision's CUDA sort is not stable), in (0, 1]."""
    torch = env.torch
    gen = torch.Generator(device=env.device).manual_seed(seed)
    return (torch.randperm(n, generator=gen, device=env.device) + 1).float() / n


def close(env: Env):
    def compare(got, want):
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"shape/dtype {tuple(got.shape)} {got.dtype} vs {tuple(want.shape)} {want.dtype}"
        if not env.torch.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True):
            worst = (got - want).abs().nan_to_num(0).max().item()
            return f"values differ (max abs {worst:.3g})"
        return None

    return compare


def identical(got, want) -> str | None:
    if got.shape != want.shape or not bool((got.cpu() == want.cpu()).all()):
        return f"keep lists differ ({got.numel()} vs {want.numel()} kept)"
    return None


def same_matrix(env: Env):
    def compare(got, want):
        if not env.np.array_equal(got.cpu().numpy(), want.cpu().numpy()):
            return "matrices differ"
        return None

    return compare


def bincount_confusion(torch, prediction, target, classes: int):
    """torch's confusion matrix: rows target, columns prediction, ignored targets skipped."""
    keep = target != IGNORE
    codes = target[keep].long() * classes + prediction[keep].long()
    return torch.bincount(codes, minlength=classes * classes).reshape(classes, classes)


def workloads(env: Env) -> list[Workload]:
    fi, tv, torch = env.fastiou, env.tv, env.torch
    rows = []
    for name, func, peer, goal in (
        ("box_iou", fi.box_iou, tv.box_iou, 5.0),
        ("generalized_box_iou", fi.generalized_box_iou, tv.generalized_box_iou, None),
    ):
        for n, m in env.box_sizes:
            rows.append(
                Workload(
                    name,
                    f"{n}x{m} float32",
                    lambda n=n, m=m: (random_boxes(env, n, 1), random_boxes(env, m, 2)),
                    lambda backend, a, b, func=func: func(a, b, backend=backend),
                    f"torchvision.ops.{peer.__name__}",
                    peer,
                    close(env),
                    goal,
                )
            )
    for i, n in enumerate(env.nms_sizes):
        rows.append(
            Workload(
                "nms",
                f"{n} boxes, iou 0.5",
                lambda n=n: (random_boxes(env, n, 3), distinct_scores(env, n, 4)),
                lambda backend, b, s: fi.nms(b, s, 0.5, backend=backend),
                "torchvision.ops.nms",
                lambda b, s: tv.nms(b, s, 0.5),
                identical,
                2.0 if i == len(env.nms_sizes) - 1 else None,
            )
        )
    n, classes = env.batched

    def batched_inputs():
        gen = torch.Generator(device=env.device).manual_seed(5)
        labels = torch.randint(0, classes, (n,), generator=gen, device=env.device)
        return random_boxes(env, n, 6), distinct_scores(env, n, 7), labels

    rows.append(
        Workload(
            "batched_nms",
            f"{n} boxes, {classes} classes",
            batched_inputs,
            lambda backend, b, s, c: fi.batched_nms(b, s, c, 0.5, backend=backend),
            "torchvision.ops.batched_nms",
            lambda b, s, c: tv.batched_nms(b, s, c, 0.5),
            identical,
        )
    )
    rows += confusion_workloads(env)
    return rows


def confusion_workloads(env: Env) -> list[Workload]:
    torch, fi, c = env.torch, env.fastiou, env.classes
    batch, h, w = env.maps

    def labels(seed: int):
        gen = torch.Generator(device=env.device).manual_seed(seed)
        target = torch.randint(0, c, (batch, h, w), generator=gen, device=env.device)
        target = target.to(torch.uint8)
        ignored = torch.rand(batch, h, w, generator=gen, device=env.device) < 0.03
        target[ignored] = IGNORE
        return gen, target

    def label_inputs():
        gen, target = labels(8)
        noise = torch.randint(0, c, target.shape, generator=gen, device=env.device)
        right = torch.rand(target.shape, generator=gen, device=env.device) < 0.7
        prediction = torch.where(right & (target != IGNORE), target, noise.to(torch.uint8))
        return prediction, target

    def logit_inputs():
        gen, target = labels(9)
        logits = torch.randn(batch, c, h, w, generator=gen, device=env.device)
        return logits, target

    def run(backend, prediction, target):
        return fi.confusion_matrix(prediction, target, c, ignore_index=IGNORE, backend=backend)

    maps = f"{batch}x{h}x{w}, {c} classes"
    return [
        Workload(
            "confusion labels",
            f"{maps}, uint8",
            label_inputs,
            run,
            "torch.bincount",
            lambda p, t: bincount_confusion(torch, p, t, c),
            same_matrix(env),
            3.0,
            numpy_result=True,
        ),
        Workload(
            "confusion logits",
            f"{maps}, float32 logits",
            logit_inputs,
            run,
            "torch.argmax + bincount",
            lambda p, t: bincount_confusion(torch, p.argmax(1), t, c),
            same_matrix(env),
            3.0,
            numpy_result=True,
        ),
    ]


def absent_families(env: Env) -> list[tuple[str, str]]:
    """(task, note) for the families this script has no workload for yet."""
    notes = []
    if getattr(env.fastiou, "mask_iou", None) is None:
        notes.append(("mask_iou", "not built in this tree"))
    else:
        notes.append(("mask_iou", "fastiou.mask_iou exists: add its workload to gpu_bench.py"))
    if importlib.util.find_spec("fastiou.panoptic") is None:
        notes.append(("panoptic pair counts", "not built in this tree"))
    else:
        notes.append(("panoptic pair counts", "fastiou.panoptic exists: add its workload"))
    return notes


# ---------------------------------------------------------------------------------------------
# Measuring one row
# ---------------------------------------------------------------------------------------------


def median_seconds(env: Env, call: Callable[[], Any]) -> float:
    """Median wall time of ``call`` (synchronized), after ``env.warmup`` calls; as many calls as
    fit in ``env.budget_s``, at least ``env.min_runs`` (unless they take :data:`SLOW_S`), at
    most 25."""
    for _ in range(env.warmup):
        call()
        env.sync()
    times = []
    while True:
        env.sync()
        start = time.perf_counter()
        call()
        env.sync()
        times.append(time.perf_counter() - start)
        spent = sum(times)
        enough = len(times) >= env.min_runs and spent >= env.budget_s
        if len(times) >= 25 or enough or spent >= SLOW_S:  # a slow call: fewer runs
            return statistics.median(times)


def on_callers_device(env: Env, result, like) -> str | None:
    """Why ``result`` is not ``like``'s array type on ``like``'s device, or None."""
    torch = env.torch
    if isinstance(like, torch.Tensor):
        if not isinstance(result, torch.Tensor) or result.device != like.device:
            return f"result is {type(result).__name__} on {getattr(result, 'device', '?')}"
        return None
    if not isinstance(result, env.cupy.ndarray) or result.device.id != like.device.id:
        return f"result is {type(result).__name__}, not a cupy array on device {like.device.id}"
    return None


@contextlib.contextmanager
def chosen_backends():
    """The backend names ``fastiou._core.dispatch.select`` returns inside the block."""
    from fastiou._core import dispatch

    names: list[str] = []
    select = dispatch.select

    def spy(*args, **kwargs):
        name, module = select(*args, **kwargs)
        names.append(name)
        return name, module

    dispatch.select = spy
    try:
        yield names
    finally:
        dispatch.select = select


@dataclass
class Row:
    task: str
    workload: str
    kind: str
    peer_name: str = ""
    t_cuda: float = math.nan
    t_auto: float = math.nan
    t_peer: float = math.nan
    goal: float | None = None
    problems: tuple[str, ...] = ()  # empty: PASS
    transfers: str = ""
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.t_peer / self.t_auto

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def measure(env: Env, w: Workload, tensors: tuple, kind: str, patch_ok: bool) -> Row:
    row = Row(w.task, w.workload, kind, w.peer_name, goal=w.goal)
    arrays = tuple(env.as_kind(t, kind) for t in tensors)
    problems = []
    want = w.peer(*tensors)
    env.sync()
    for backend in ("cuda", "auto"):
        with chosen_backends() as chosen:
            got = w.run(backend, *arrays)
            env.sync()
        if not env.simulate and set(chosen) != {"cuda"}:
            problems.append(f"{backend}: dispatched to {chosen}, not cuda")
        where = None if w.numpy_result else on_callers_device(env, got, arrays[0])
        if w.numpy_result and not isinstance(got, env.np.ndarray):
            where = f"result is {type(got).__name__}, expected a numpy matrix"
        diff = w.compare(env.to_torch(got), want)
        problems += [f"{backend}: {p}" for p in (where, diff) if p]
        del got
    del want
    problems += check_transfers(env, w, arrays, tensors, row, patch_ok)
    row.problems = tuple(problems)
    row.t_cuda = median_seconds(env, lambda: w.run("cuda", *arrays))
    row.t_auto = median_seconds(env, lambda: w.run("auto", *arrays))
    row.t_peer = median_seconds(env, lambda: w.peer(*tensors))
    return row


def check_transfers(env: Env, w: Workload, arrays, tensors, row: Row, patch_ok) -> list[str]:
    """Count the host<->device bytes of one fastiou call with the patch counter; the problems.

    On the device the call is ``backend="auto"`` (what users run; CUDA input picks cuda); under
    the simulator it is ``backend="cuda"`` (auto picks a CPU backend for CPU tensors).
    """
    backend = "cuda" if env.simulate else "auto"
    input_bytes = sum(int(t.nbytes) for t in tensors)
    with HostTransfers(env) as counter:
        w.run(backend, *arrays)
        env.sync()
    row.transfers = f"patched calls: h2d {counter.h2d} B, d2h {counter.d2h} B"
    problems = [] if patch_ok else ["the patch counter failed its calibration"]
    if env.simulate:  # CPU stand-ins: their data must be seen crossing to the simulated device
        if counter.h2d < input_bytes:
            problems.append(f"counter saw {counter.h2d} B h2d of {input_bytes} B host inputs")
        return problems
    if counter.h2d + counter.d2h > ALLOWED_BYTES:
        problems.append(f"host transfers {counter.calls[:4]}")
    return problems


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def table(env: Env, rows: list[Row], header: list[str]) -> str:
    lines = list(header) + [
        "",
        "| task | workload | input | fastiou cuda | fastiou auto | peer | peer median "
        "| speed-up | goal | met | check |",
        "|---|---|---|---:|---:|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        if r.note:
            lines.append(f"| {r.task} | {r.workload} | {r.kind} | — | — | — | — | — | — | — "
                         f"| {r.note} |")  # fmt: skip
            continue
        goal = f"≥{r.goal:g}×" if r.goal else "—"
        met = "—" if not r.goal else "yes" if r.speedup >= r.goal else "no"
        if env.simulate and r.goal:
            met = "n/a (simulator)"
        check = ("FAIL: " + "; ".join(r.problems)) if r.failed else "PASS"
        check += f" ({r.transfers})"
        lines.append(
            f"| {r.task} | {r.workload} | {r.kind} | {fmt_time(r.t_cuda)} | {fmt_time(r.t_auto)} "
            f"| {r.peer_name} | {fmt_time(r.t_peer)} | {r.speedup:.2f}× | {goal} | {met} "
            f"| {check} |"
        )
    return "\n".join(lines) + "\n"


def write(path: str | None, text: str) -> None:
    if path:
        with open(path, "w") as f:
            f.write(text)


def commit() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", action="store_true", help="numba's CUDA simulator, tiny")
    default_out = os.path.join(os.environ["OUT"], "gpu_table.md") if os.environ.get("OUT") else None
    parser.add_argument("--out", default=default_out, help="also write the table here")
    parser.add_argument("--only", default="", help="run only tasks containing this text")
    args = parser.parse_args(argv)
    if args.simulate:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
    elif os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        parser.error("NUMBA_ENABLE_CUDASIM=1 is set: unset it, or pass --simulate")
    env = Env(args.simulate)
    if env.simulate:
        small_blocks(env)
    started = time.perf_counter()
    calibration, patch_ok = calibrate(env)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"**GPU:** {env.gpu}. **Date:** {when}. **Commit:** {commit()}.",
        f"**Versions:** {versions(env)}.",
        f"**fastiou cuda backend:** {env.cuda_detail}.",
        f"**Transfer counters:** {calibration}",
        f"Medians of synchronized calls after {env.warmup} warm-up calls; "
        "speed-up = peer median / fastiou auto median."
        + (" Simulator: times mean nothing, auto runs a CPU backend." if env.simulate else ""),
    ]
    rows: list[Row] = []
    pending = []  # (row, workload, inputs) for the CUPTI pass
    for w in workloads(env):
        if args.only and args.only not in w.task:
            continue
        tensors = w.inputs()
        env.sync()
        for kind in env.kinds:
            if kind.startswith("cupy") and env.cupy is None:
                rows.append(Row(w.task, w.workload, kind, note=env.cupy_note))
                continue
            try:
                row = measure(env, w, tensors, kind, patch_ok)
                pending.append((row, w, tuple(env.as_kind(t, kind) for t in tensors)))
            except Exception as e:  # noqa: BLE001 - one broken row must not hide the others
                row = Row(w.task, w.workload, kind, w.peer_name, goal=w.goal)
                row.problems = (f"raised {type(e).__name__}: {e}",)
            rows.append(row)
            # The table so far, in case the run is stopped (gpu.sh's time limit) before the end.
            write(args.out, table(env, rows, header + ["(partial: the run had not finished)"]))
            print(f"  {w.task} {w.workload} [{kind}]: {'FAIL' if row.failed else 'ok'} "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
        del tensors
    header[3] += f"; {cupti_pass(env, pending)}."
    del pending
    for task, note in absent_families(env):
        rows.append(Row(task, "—", "—", note=note))
    text = table(env, rows, header)
    print(text)
    write(args.out, text)
    failed = [r for r in rows if r.failed]
    print(f"gpu_bench: {len(rows) - len(failed)} rows ok, {len(failed)} failed, "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
