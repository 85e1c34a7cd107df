"""evaluate_detections(..., iou_type="segm"): dense masks and RLE dicts, pycocotools' numbers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_peer
from instance_sets import pycocotools_run

from fastiou.coco import AnnotationError, evaluate_detections

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from coco_sets import assert_same  # noqa: E402
from pycocotools import mask as pm  # noqa: E402


def _case(seed: int):
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(8):
        h, w = int(rng.integers(10, 60)), int(rng.integers(10, 60))
        n_gt, n_dt = int(rng.integers(0, 4)), int(rng.integers(0, 6))
        gt = rng.random((n_gt, h, w)) < rng.uniform(0.05, 0.9)
        dt = np.concatenate([np.roll(gt, 1, axis=2), rng.random((n_dt, h, w)) < 0.3])
        targets.append({"masks": gt, "labels": rng.integers(1, 3, n_gt),
                        "iscrowd": (rng.random(n_gt) < 0.2).astype(int)})  # fmt: skip
        preds.append({"masks": dt, "labels": rng.integers(1, 3, len(dt)),
                      "scores": rng.random(len(dt)).round(2)})  # fmt: skip
    return preds, targets


def _as_coco(preds, targets):
    """The same data as a COCO dataset and results (areas = mask areas)."""
    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        h, w = p["masks"].shape[1:] if len(p["masks"]) else t["masks"].shape[1:]
        images.append({"id": i, "height": h, "width": w})
        for m, label, crowd in zip(t["masks"], t["labels"], t["iscrowd"], strict=True):
            rle = pm.encode(np.asfortranarray(m.astype(np.uint8)))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(label),
                         "segmentation": rle, "area": float(pm.area(rle)),
                         "bbox": pm.toBbox(rle).tolist(), "iscrowd": int(crowd)})  # fmt: skip
        for m, label, score in zip(p["masks"], p["labels"], p["scores"], strict=True):
            rle = pm.encode(np.asfortranarray(m.astype(np.uint8)))
            dets.append({"image_id": i, "category_id": int(label), "segmentation": rle,
                         "score": float(score)})  # fmt: skip
    cats = [{"id": c, "name": str(c)} for c in (1, 2)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


@pytest.mark.parametrize("seed", range(3))
def test_dense_masks_match_pycocotools(seed):
    preds, targets = _case(seed)
    ours = evaluate_detections(preds, targets, iou_type="segm")
    theirs = pycocotools_run(*_as_coco(preds, targets), "segm")
    assert_same(ours, theirs)
    rle_preds = [
        {**p, "masks": [pm.encode(np.asfortranarray(m.astype(np.uint8))) for m in p["masks"]]}
        for p in preds
    ]
    assert_same(evaluate_detections(rle_preds, targets, iou_type="segm"), theirs)


def test_mask_errors():
    preds, targets = _case(0)
    with pytest.raises(AnnotationError, match="masks"):
        evaluate_detections([{"scores": [], "labels": []}] * 8, targets, iou_type="segm")
    bad = [{**p, "masks": p["masks"].astype(np.uint8) * 3} for p in preds]
    with pytest.raises(AnnotationError, match="0/1"):
        evaluate_detections(bad, targets, iou_type="segm")
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_detections(preds, targets, iou_type="keypoints")
