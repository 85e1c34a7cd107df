"""The array front end of fastiou.coco and the extras: per-class table, raw PR/F1 curves,
TP/FP/FN counts."""

from __future__ import annotations

import numpy as np
import pytest
from coco_sets import assert_same, fastiou_eval, pycocotools_eval, random_coco
from conftest import require_peer

from fastiou.coco import AnnotationError, evaluate_arrays, evaluate_detections


def _per_image(gt: dict, dt: list[dict], fmt: str = "xyxy"):
    """torchmetrics-style dicts from a COCO set; image i is gt["images"][i]."""
    index = {im["id"]: i for i, im in enumerate(gt["images"])}
    preds = [{"boxes": [], "scores": [], "labels": []} for _ in index]
    targets = [{"boxes": [], "labels": [], "iscrowd": [], "area": []} for _ in index]

    def convert(b):
        x, y, w, h = b
        return [x, y, x + w, y + h] if fmt == "xyxy" else [x, y, w, h]

    for a in gt["annotations"]:
        t = targets[index[a["image_id"]]]
        t["boxes"].append(convert(a["bbox"]))
        t["labels"].append(a["category_id"])
        t["iscrowd"].append(a["iscrowd"])
        t["area"].append(a["area"])
    for d in dt:
        p = preds[index[d["image_id"]]]
        p["boxes"].append(convert(d["bbox"]))
        p["scores"].append(d["score"])
        p["labels"].append(d["category_id"])
    return preds, targets


def _renumbered(gt: dict, dt: list[dict]):
    """The same set with image ids 0..n-1 (the front end numbers images by position), and
    the categories seen in ground truth or detections."""
    index = {im["id"]: i for i, im in enumerate(gt["images"])}
    gt = {
        "images": [{"id": i} for i in range(len(index))],
        "annotations": [{**a, "image_id": index[a["image_id"]]} for a in gt["annotations"]],
        "categories": [
            {"id": c} for c in sorted({a["category_id"] for a in gt["annotations"]}
                                     | {d["category_id"] for d in dt})
        ],
    }  # fmt: skip
    return gt, [{**d, "image_id": index[d["image_id"]]} for d in dt]


def test_per_image_dicts_xywh_match_pycocotools():
    require_peer("pycocotools")
    gt, dt = random_coco(31)
    preds, targets = _per_image(gt, dt, "xywh")
    ours = evaluate_detections(preds, targets, box_format="xywh")
    assert_same(ours, pycocotools_eval(*_renumbered(gt, dt)))


def test_per_image_dicts_xyxy_close_to_xywh():
    gt, dt = random_coco(32)
    a = evaluate_detections(*_per_image(gt, dt, "xyxy"), box_format="xyxy")
    b = evaluate_detections(*_per_image(gt, dt, "xywh"), box_format="xywh")
    # xyxy -> xywh rounds (x + w) - x: the numbers agree up to those last bits
    np.testing.assert_allclose(a.stats, b.stats, atol=1e-3)


def test_torch_tensors():
    torch = require_peer("torch")
    preds = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1]),
        }
    ]
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}]
    E = evaluate_detections(preds, targets)
    assert E.metrics()["AP50"] == pytest.approx(1.0)
    assert E.counts(iou=0.5)["fp"].tolist() == [1]


def test_n_by_7_arrays_match_pycocotools():
    require_peer("pycocotools")
    gt, dt = random_coco(33)
    rows = np.array([[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in dt])
    g = np.array([[a["image_id"], *a["bbox"], a["category_id"], a["iscrowd"], a["area"]]
                  for a in gt["annotations"]])  # fmt: skip
    ids = [im["id"] for im in gt["images"]]
    ours = evaluate_arrays(g, rows, image_ids=ids)
    cats = sorted({a["category_id"] for a in gt["annotations"]} | set(rows[:, 6].astype(int)))
    ref = {**gt, "categories": [{"id": c} for c in cats]}
    assert_same(ours, pycocotools_eval(ref, None, array=rows))


def test_array_errors():
    with pytest.raises(AnnotationError, match="G x 6"):
        evaluate_arrays(np.zeros((2, 5)), np.zeros((0, 7)))
    with pytest.raises(AnnotationError, match="N x 7"):
        evaluate_arrays(np.zeros((0, 6)), np.zeros((2, 6)))
    with pytest.raises(AnnotationError, match="missing key 'scores'"):
        evaluate_detections([{"boxes": [[0, 0, 1, 1]], "labels": [1]}],
                            [{"boxes": [], "labels": []}])  # fmt: skip
    with pytest.raises(AnnotationError, match="non-finite bbox"):
        evaluate_detections([{"boxes": [[0, 0, np.nan, 1]], "labels": [1], "scores": [1]}],
                            [{"boxes": [], "labels": []}])  # fmt: skip
    with pytest.raises(ValueError, match="one per image"):
        evaluate_detections([], [{"boxes": [], "labels": []}])


def test_per_class_matches_summary_per_category():
    gt, dt = random_coco(34)
    E = fastiou_eval(gt, dt)
    rows = E.per_class()
    assert [r["category_id"] for r in rows] == E.params.catIds
    precision = E.eval["precision"]
    for k, row in enumerate(rows):
        s = precision[:, :, k, 0, -1]
        expected = np.mean(s[s > -1]) if (s > -1).any() else -1
        assert row["AP"] == expected
        assert row["n_gt"] == sum(
            1 for a in gt["annotations"] if a["category_id"] == row["category_id"]
            and not a["iscrowd"]
        )  # fmt: skip
    assert "| category |" in E.per_class_table()


def test_pr_curve_and_counts_consistent():
    gt, dt = random_coco(35)
    E = fastiou_eval(gt, dt)
    t = 0  # IoU 0.5
    for k, cat in enumerate(E.params.catIds):
        curve = E.pr_curve(cat, iou=0.5)
        recall = E.eval["recall"][t, k, 0, -1]
        if recall < 0:
            assert curve.n_gt == 0
            continue
        final = curve.recall[-1] if len(curve.recall) else 0.0
        assert final == recall  # the raw curve ends at pycocotools' recall
        assert np.all(np.diff(curve.scores) <= 0)
        counts = E.counts(iou=0.5, score_threshold=0.0)
        i = list(counts["category_id"]).index(cat)
        assert counts["tp"][i] + counts["fn"][i] == curve.n_gt
        assert counts["tp"][i] + counts["fp"][i] == len(curve.precision)
        if len(curve.f1):
            p, r = curve.precision, curve.recall
            with np.errstate(invalid="ignore"):
                f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0)
            np.testing.assert_allclose(curve.f1, f1)
    high = E.counts(iou=0.5, score_threshold=0.9)
    low = E.counts(iou=0.5, score_threshold=0.0)
    assert (high["tp"] <= low["tp"]).all() and (high["fp"] <= low["fp"]).all()
    with pytest.raises(ValueError, match="not evaluated"):
        E.counts(iou=0.42)
