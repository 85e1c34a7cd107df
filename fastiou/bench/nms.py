"""NMS workloads and implementations for ``fastiou bench``: tasks nms, batched_nms, soft_nms.

The workloads are the issue's: boxes with corners uniform over a 1000 x 1000 canvas and sides in
[1, 100) (``_registry.random_boxes``), uniform float32 scores, IoU threshold 0.5. Every peer here
returns torchvision's keep set on them (checked in tests/test_nms.py for torchvision). The
fastiou rows per backend also show where Cython or numba wins (``_config.CYTHON_MAX_WORK``).
"""

from __future__ import annotations

import numpy as np

from ._registry import Data, implementation, random_boxes, workload

THRESHOLD = 0.5


def _data(n: int, classes: int | None = None, seed: int = 0):
    def make() -> Data:
        rng = np.random.default_rng(seed + 100)
        data = {
            "boxes": random_boxes(n, np.float32, seed + 1),
            "scores": rng.random(n, dtype=np.float32),
        }
        if classes:
            data["idxs"] = rng.integers(0, classes, n)
        return data

    return make


for _n in (1000, 10_000, 50_000):
    workload("nms", f"{_n} boxes, IoU 0.5")(_data(_n))
workload("nms", "200 boxes, IoU 0.5", quick=True)(_data(200))
workload("nms", "300 boxes, IoU 0.5 (a detector's per-image NMS)", quick=True)(_data(300))
workload("batched_nms", "10000 boxes, 80 classes")(_data(10_000, 80))
workload("batched_nms", "1000 boxes, 10 classes", quick=True)(_data(1000, 10))
workload("soft_nms", "2000 boxes, linear")(_data(2000))
workload("soft_nms", "200 boxes, linear", quick=True)(_data(200))


def _fastiou(task: str, backend: str, torch_in: bool = False):
    def prepare(data: Data):
        import fastiou

        boxes, scores, idxs = data["boxes"], data["scores"], data.get("idxs")
        if torch_in:
            import torch

            boxes, scores = torch.from_numpy(boxes), torch.from_numpy(scores)
        if task == "nms":
            return lambda: fastiou.nms(boxes, scores, THRESHOLD, backend=backend)
        if task == "batched_nms":
            return lambda: fastiou.batched_nms(boxes, scores, idxs, THRESHOLD, backend=backend)
        return lambda: fastiou.soft_nms(boxes, scores, THRESHOLD, backend=backend)

    return prepare


for _task in ("nms", "batched_nms", "soft_nms"):
    implementation(_task, "fastiou")(_fastiou(_task, "auto"))
    implementation(_task, "fastiou[cython]")(_fastiou(_task, "cython"))
    implementation(_task, "fastiou[numba]")(_fastiou(_task, "numba"))
implementation("nms", "fastiou, torch tensors")(_fastiou("nms", "auto", torch_in=True))


@implementation("nms", "torchvision.ops.nms", peer=True)
def _torchvision_nms(data: Data):
    import torch
    import torchvision.ops

    boxes, scores = torch.from_numpy(data["boxes"]), torch.from_numpy(data["scores"])
    return lambda: torchvision.ops.nms(boxes, scores, THRESHOLD)


@implementation("batched_nms", "torchvision.ops.batched_nms", peer=True)
def _torchvision_batched(data: Data):
    import torch
    import torchvision.ops

    boxes, scores = torch.from_numpy(data["boxes"]), torch.from_numpy(data["scores"])
    idxs = torch.from_numpy(data["idxs"])
    return lambda: torchvision.ops.batched_nms(boxes, scores, idxs, THRESHOLD)


def _powerboxes(function: str):
    def prepare(data: Data):
        import powerboxes

        f = getattr(powerboxes, function)
        boxes, scores = data["boxes"], data["scores"].astype(np.float64)  # it takes float64
        return lambda: f(boxes, scores, THRESHOLD, 0.0)

    return prepare


implementation("nms", "powerboxes.rtree_nms", peer=True)(_powerboxes("rtree_nms"))
implementation("nms", "powerboxes.nms", peer=True)(_powerboxes("nms"))


def _lsnms(batched: bool):
    def prepare(data: Data):
        import lsnms

        boxes, scores = data["boxes"], data["scores"]
        classes = data["idxs"] if batched else None
        return lambda: lsnms.nms(boxes, scores, THRESHOLD, 0.0, class_ids=classes)

    return prepare


implementation("nms", "lsnms.nms", peer=True)(_lsnms(False))
implementation("batched_nms", "lsnms.nms class_ids", peer=True)(_lsnms(True))
