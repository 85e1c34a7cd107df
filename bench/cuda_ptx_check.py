#!/usr/bin/env python3
"""Compile every CUDA kernel fastiou launches to PTX with numba-cuda, on a machine without a GPU.

numba's CUDA simulator runs kernels as Python: it never types or compiles them, so a kernel the
simulator passes may still not compile for a device. This compiles each one, as launched:

    pip install --target DIR numba-cuda nvidia-cuda-nvcc   # NVVM comes with nvidia-cuda-nvcc
    python3 bench/cuda_ptx_check.py --site DIR [--cc 9.0]

fastiou's public functions are called with ``backend="cuda"`` on tiny inputs, one call per
kernel variant (operation, dtype, label width, shared or global histogram); CUDA arrays are
replaced by numpy arrays and every kernel launch is intercepted: typed from its real arguments
and compiled to PTX for ``--cc``, not run (the "results" are garbage and ignored). Exit status 1
when a kernel does not compile. It patches numba-cuda internals (the launch configuration's
``__call__``, the dispatcher's ``get_current_device``): written against numba-cuda 0.30.
"""

from __future__ import annotations

import argparse
import os
import site
import sys
from collections.abc import Callable


def _install_fakes(cc: tuple[int, int]) -> dict:
    """Host stand-ins for the device, and a launch that compiles; returns the results dict."""
    import numba
    import numba.cuda.dispatcher as dispatcher
    import numpy as np
    from numba import cuda

    class HostArray(np.ndarray):
        """A numpy array with the device-array methods fastiou calls."""

        def copy_to_host(self, ary=None, stream=0):
            return np.array(self)

        def copy_to_device(self, ary, stream=0):
            self[...] = ary

        def is_c_contiguous(self):
            return self.flags.c_contiguous

    class Device:
        compute_capability = cc
        name = f"no device: PTX for sm_{cc[0]}{cc[1]}"

    cuda.device_array = lambda shape, dtype=np.float64, **k: np.zeros(shape, dtype).view(HostArray)
    cuda.to_device = lambda ary, **k: np.array(ary).view(HostArray)
    cuda.is_available = lambda: True
    dispatcher.get_current_device = Device  # device functions compile for its capability
    results: dict[tuple, str] = {}

    def launch(self, *args):
        func = self.dispatcher.py_func
        sig = tuple(numba.typeof(np.asarray(a) if isinstance(a, HostArray) else a) for a in args)
        key = (f"{func.__module__}.{func.__qualname__}", id(func), sig)
        if key not in results:
            try:
                cuda.compile_ptx(func, sig, cc=cc)
                results[key] = "ok"
            except Exception as e:  # noqa: BLE001 - every failure is reported
                results[key] = f"FAIL {type(e).__name__}: {e}"

    dispatcher._LaunchConfiguration.__call__ = launch
    return results


def _calls() -> list[Callable[[], object]]:
    """One call per kernel variant of fastiou's CUDA backend."""
    import numpy as np

    import fastiou

    rng = np.random.default_rng(0)
    calls = []
    for dtype in (np.float32, np.float64):
        corner = rng.uniform(0, 100, (7, 2))
        a = np.concatenate([corner, corner + rng.uniform(1, 30, (7, 2))], 1).astype(dtype)
        b = a[:5] + 3
        scores = rng.random(7).astype(dtype)
        for func in (fastiou.box_iou, fastiou.generalized_box_iou, fastiou.distance_box_iou,
                     fastiou.complete_box_iou):  # fmt: skip
            calls.append(lambda f=func, a=a, b=b: f(a, b, backend="cuda"))
            calls.append(lambda f=func, a=a: f(a, a, aligned=True, backend="cuda"))
        for over in ("boxes1", "boxes2"):
            calls.append(lambda a=a, b=b, o=over: fastiou.box_ioa(a, b, over=o, backend="cuda"))
        calls.append(lambda a=a, s=scores: fastiou.nms(a, s, 0.5, backend="cuda"))
        labels = np.arange(7) % 2
        calls.append(
            lambda a=a, s=scores, c=labels: fastiou.batched_nms(a, s, c, 0.5, backend="cuda")
        )
        for method in ("linear", "gaussian"):
            calls.append(
                lambda a=a, s=scores, m=method: fastiou.soft_nms(a, s, method=m, backend="cuda")
            )
    logits = rng.random((2, 5, 3, 4)).astype(np.float32)
    for dtype in (np.bool_, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint64):
        t = (np.arange(24).reshape(2, 3, 4) % (2 if dtype == np.bool_ else 5)).astype(dtype)
        calls.append(lambda t=t: fastiou.confusion_matrix(t, t, 5, backend="cuda"))
        calls.append(lambda t=t: fastiou.confusion_matrix(logits, t, 5, backend="cuda"))
    t = np.zeros((2, 3), np.uint8)
    options = [{"ignore_index": 255}, {"label_map": {0: 1, 7: 2}}, {"reduce_zero_label": True}]
    for kw in options:
        calls.append(lambda kw=kw: fastiou.confusion_matrix(t, t, 5, backend="cuda", **kw))
    calls.append(lambda: fastiou.confusion_matrix(t, t, 200, backend="cuda"))  # global histogram
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", help="a directory holding numba-cuda (pip install --target)")
    parser.add_argument("--cc", default="9.0", help="compute capability (default 9.0: Hopper)")
    args = parser.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        parser.error("unset NUMBA_ENABLE_CUDASIM: this compiles, the simulator does not")
    if args.site:
        site.addsitedir(args.site)  # runs numba-cuda's .pth redirector
    major, minor = (int(x) for x in args.cc.split("."))
    results = _install_fakes((major, minor))
    from numba import cuda

    print(f"numba.cuda from {os.path.dirname(cuda.__file__)}; PTX for sm_{major}{minor}")
    for call in _calls():
        try:
            call()
        except Exception:  # noqa: BLE001, S110 - after the launches; the results are garbage
            pass
    failed = 0
    for (name, _, sig), result in results.items():
        failed += result != "ok"
        print(f"{result.splitlines()[0][:200]:8} {name}({', '.join(map(str, sig))})")
        if result != "ok":
            print("    " + "\n    ".join(result.splitlines()[1:40]))
    print(f"{len(results)} kernel signatures, {failed} failed to compile")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
