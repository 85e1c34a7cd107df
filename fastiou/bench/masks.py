"""Mask workloads for ``fastiou bench``: pycocotools.mask's iou, encode and decode on 400 RLEs of
480 x 640 (the issue's set), and mask_iou on dense masks.

The masks are random star-shaped polygons (6 to 19 vertices, radius 10 to 150 px) rasterised as
pycocotools does, so runs and overlaps look like instance masks. Peers: pycocotools.mask and
hotcoco.mask (the same functions, the same inputs); for dense mask_iou, the numpy reference
(a float matmul) and a bit-packed numpy popcount.
"""

from __future__ import annotations

import numpy as np

from ._registry import Data, implementation, workload


def _polygons(n: int, h: int, w: int, rng) -> list[list[float]]:
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 150) * min(h, w) / 480
        k = int(rng.integers(6, 20))
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = r * rng.uniform(0.5, 1, k)
        out.append(np.stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)], 1).ravel())
    return [p.tolist() for p in out]


def _rles(n: int, h: int, w: int, seed: int = 0):
    def make() -> Data:
        from fastiou.coco import mask

        rng = np.random.default_rng(seed)
        dt = mask.frPyObjects(_polygons(n, h, w, rng), h, w)
        gt = mask.frPyObjects(_polygons(n, h, w, rng), h, w)
        return {"dt": dt, "gt": gt, "crowd": np.zeros(n, np.uint8), "dense": mask.decode(dt)}

    return make


def _dense(n: int, h: int, w: int, seed: int = 0):
    def make() -> Data:
        data = _rles(2 * n, h, w, seed)()
        masks = np.ascontiguousarray(data["dense"].transpose(2, 0, 1)).astype(bool)
        return {"a": masks[:n], "b": masks[n:]}

    return make


for _task in ("mask_rle_iou", "mask_encode", "mask_decode"):
    workload(_task, "400 RLEs of 480x640")(_rles(400, 480, 640))
    workload(_task, "20 RLEs of 48x64", quick=True)(_rles(20, 48, 64))
workload("mask_iou", "100x100 dense masks of 480x640")(_dense(100, 480, 640))
workload("mask_iou", "10x10 dense masks of 48x64", quick=True)(_dense(10, 48, 64))


def _module(name: str):
    if name == "fastiou":
        from fastiou.coco import mask
    elif name == "pycocotools":
        from pycocotools import mask
    else:
        import hotcoco.mask as mask
    return mask


def _register(name: str, peer: bool) -> None:
    @implementation("mask_rle_iou", name, peer=peer)
    def iou(data: Data):
        m = _module(name)
        return lambda: m.iou(data["dt"], data["gt"], data["crowd"])

    @implementation("mask_encode", name, peer=peer)
    def encode(data: Data):
        m = _module(name)
        return lambda: m.encode(data["dense"])

    @implementation("mask_decode", name, peer=peer)
    def decode(data: Data):
        m = _module(name)
        return lambda: m.decode(data["dt"])


_register("fastiou", False)
_register("pycocotools", True)
_register("hotcoco", True)


def _mask_iou(backend: str):
    def prepare(data: Data):
        import fastiou

        return lambda: fastiou.mask_iou(data["a"], data["b"], backend=backend)

    return prepare


implementation("mask_iou", "fastiou")(_mask_iou("auto"))
implementation("mask_iou", "fastiou numpy reference (float matmul)", peer=True)(_mask_iou("numpy"))


@implementation("mask_iou", "numpy bit-packed popcount", peer=True)
def _packed(data: Data):
    def call():
        a = np.packbits(data["a"].reshape(len(data["a"]), -1), axis=1).view(np.uint8)
        b = np.packbits(data["b"].reshape(len(data["b"]), -1), axis=1).view(np.uint8)
        inter = np.array([np.bitwise_count(a & row).sum(1) for row in b]).T
        area_a, area_b = np.bitwise_count(a).sum(1), np.bitwise_count(b).sum(1)
        union = area_a[:, None] + area_b[None, :] - inter
        return np.where(inter > 0, inter / np.maximum(union, 1), 0).astype(np.float32)

    return call
