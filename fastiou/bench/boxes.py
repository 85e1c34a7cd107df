"""Box-overlap workloads and implementations for ``fastiou bench``: box_iou, giou, diou, ciou,
the auto-threshold sweeps, the cold start and the first large call in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from ._registry import Data, implementation, random_boxes, workload


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
# The auto threshold: the same kernel on Cython and numba around CYTHON_MAX_WORK["boxes"], up to
# the 7.5M pairs of the first-call rows below (2739 x 2739).
for _n in (128, 256, 362, 512, 724, 1024, 2739):
    workload("box_iou_sweep", f"{_n}x{_n} float32")(_pair(_n, _n))
workload("giou_sweep", "2739x2739 float32")(_pair(2739, 2739))


def _fastiou_box(task: str, backend: str, use_out: bool = False, torch_in: bool = False):
    def prepare(data: Data):
        import fastiou

        f = getattr(fastiou, BOX_TASKS.get(task.removesuffix("_sweep"), BOX_TASKS["box_iou"])[0])
        a, b = data["boxes1"], data["boxes2"]
        if torch_in:
            import torch

            a, b = torch.from_numpy(a), torch.from_numpy(b)
        if use_out:
            out = np.empty((len(a), len(b)), a.dtype)
            return lambda: f(a, b, out=out, backend=backend)
        return lambda: f(a, b, backend=backend)

    return prepare


for _task in BOX_TASKS:
    implementation(_task, "fastiou")(_fastiou_box(_task, "auto"))
    implementation(_task, "fastiou out=")(_fastiou_box(_task, "auto", use_out=True))
    implementation(_task, "fastiou, torch tensors")(_fastiou_box(_task, "auto", torch_in=True))
    implementation(_task, "fastiou[cython]")(_fastiou_box(_task, "cython"))
    implementation(_task, "fastiou[numba]")(_fastiou_box(_task, "numba"))
for _task in ("box_iou_sweep", "giou_sweep"):
    implementation(_task, "fastiou[cython] out=")(_fastiou_box(_task, "cython", True))
    implementation(_task, "fastiou[numba] out=")(_fastiou_box(_task, "numba", True))


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
        cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return lambda: subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=cwd)

    return prepare


implementation("cold_start", "python -c 'import numpy'", peer=True)(_subprocess("import numpy"))
implementation("cold_start", "import fastiou + box_iou")(_subprocess(COLD_FASTIOU))


# The first call in a fresh process: a 2739 x 2739 IoU matrix (7.5M pairs), import included,
# per backend; against the same process making its boxes without fastiou (the difference is
# what importing fastiou and the first call cost). Later calls: box_iou_sweep, 2739x2739.
FIRST_CALL_BOXES = (
    "import numpy as np\n"
    "rng = np.random.default_rng(0)\n"
    "xy = rng.uniform(0, 1000, (2739, 2)); wh = rng.uniform(1, 100, (2739, 2))\n"
    "a = np.concatenate([xy, xy + wh], 1).astype(np.float32); b = a[::-1].copy()\n"
)
workload("first_call", "fresh python, box_iou 2739x2739 (7.5M pairs)")(lambda: {})
implementation("first_call", "python: numpy + boxes only", peer=True)(_subprocess(FIRST_CALL_BOXES))
for _backend in ("auto", "cython", "numba"):
    _code = FIRST_CALL_BOXES + f"import fastiou\nfastiou.box_iou(a, b, backend={_backend!r})\n"
    implementation("first_call", f"import fastiou + box_iou[{_backend}]")(_subprocess(_code))
