"""Small random COCO sets full of pycocotools' edge cases, for the fastiou.coco tests."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from conftest import distinct_ids

EDGE_AREAS = [0.0, 32.0**2, 96.0**2, 1e5**2, 32.0**2 - 1e-9, 96.0**2 + 1e-9]


def random_coco(
    seed: int,
    n_images: int = 24,
    n_cats: int = 5,
    max_gt: int = 8,
    max_dt: int = 40,
    tied_scores: bool = False,
    crowd: float = 0.1,
) -> tuple[dict, list[dict]]:
    """A ground-truth dataset and a results list with the cases pycocotools treats specially.

    Sizes span small/medium/large, some areas sit exactly on the bucket edges, some ground
    truth is crowd, some images have no ground truth or no detections, one category has no
    ground truth, some images get more detections than maxDets, scores may tie, and
    detections are near-copies of the ground truth (so that IoUs land on both sides of the
    thresholds) or random.
    """
    rng = np.random.default_rng(seed)
    cat_ids = distinct_ids(rng, n_cats, 100)
    img_ids = distinct_ids(rng, n_images, 10_000)
    images = [{"id": i, "width": 640, "height": 480} for i in img_ids]
    categories = [{"id": c, "name": f"c{c}", "supercategory": "s"} for c in cat_ids]
    no_gt_cat = cat_ids[-1]
    anns, dets = [], []
    ann_id = 1

    def box():
        side = float(np.exp(rng.uniform(np.log(2), np.log(300))))
        ar = float(np.exp(rng.normal(0, 0.4)))
        w, h = side * ar, side / ar
        return [float(rng.uniform(0, 600)), float(rng.uniform(0, 450)), w, h]

    for img in img_ids:
        n_gt = 0 if rng.random() < 0.15 else int(rng.integers(1, max_gt + 1))
        gts = []
        for _ in range(n_gt):
            b = [round(v, 2) for v in box()]
            if rng.random() < 0.3:  # integer boxes: exact areas, exact IoU ties
                b = [float(round(v)) for v in b]
            area = b[2] * b[3] * float(rng.uniform(0.6, 1.0))
            if rng.random() < 0.15:
                area = float(rng.choice(EDGE_AREAS))
            cat = int(rng.choice(cat_ids[:-1]))
            ann = {
                "id": ann_id,
                "image_id": img,
                "category_id": cat,
                "bbox": b,
                "area": area,
                "iscrowd": int(rng.random() < crowd),
                "segmentation": [[b[0], b[1], b[0] + b[2], b[1], b[0] + b[2], b[1] + b[3]]],
            }
            anns.append(ann)
            gts.append(ann)
            ann_id += 1
        if rng.random() < 0.1:
            continue  # an image without detections
        n_dt = int(rng.integers(0, max_dt + 1))
        if rng.random() < 0.1:
            n_dt = 130  # more than maxDets[-1] in one image (and often one category)
        for _ in range(n_dt):
            if gts and rng.random() < 0.6:
                g = gts[int(rng.integers(len(gts)))]
                jitter = rng.normal(0, 0.08, 4) * np.array(g["bbox"])[[2, 3, 2, 3]]
                b = (np.array(g["bbox"]) + jitter).tolist()
                if rng.random() < 0.2:
                    b = list(g["bbox"])  # an exact copy: IoU 1
                cat = g["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
            else:
                b, cat = box(), int(rng.choice(cat_ids))
            if n_dt == 130 and rng.random() < 0.7:
                cat = cat_ids[0]
            score = (
                float(rng.choice([0.1, 0.5, 0.9]))
                if tied_scores
                else float(np.float32(rng.random()))
            )
            dets.append({"image_id": img, "category_id": cat, "bbox": b, "score": score})
    del no_gt_cat
    gt = {"images": images, "annotations": anns, "categories": categories, "info": {}}
    return gt, dets


def pycocotools_eval(
    gt: dict, dets, configure=None, array: np.ndarray | None = None, iou_type: str = "bbox"
):
    """pycocotools' COCOeval after evaluate, accumulate and summarize (quietly), on copies."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(array if array is not None else copy.deepcopy(dets))
        E = COCOeval(coco, res, iou_type)
        if configure:
            configure(E.params)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def fastiou_eval(gt, dets, configure=None, iou_type: str = "bbox", **options):
    from fastiou.coco import COCO, COCOeval

    coco = gt if isinstance(gt, COCO) else COCO(copy.deepcopy(gt), verbose=False)
    res = coco.loadRes(dets)
    E = COCOeval(coco, res, iou_type, verbose=False, **options)
    if configure:
        configure(E.params)
    E.evaluate()
    E.accumulate()
    with contextlib.redirect_stdout(io.StringIO()):
        E.summarize()
    return E


def assert_same(ours, theirs) -> None:
    """Every cell of precision, recall and scores, and the 12 stats, bit for bit."""
    for key in ("precision", "recall", "scores"):
        a, b = ours.eval[key], theirs.eval[key]
        assert a.shape == b.shape, (key, a.shape, b.shape)
        if not np.array_equal(a, b):
            bad = np.argwhere(a != b)
            raise AssertionError(
                f"{key}: {len(bad)} cells differ, first {bad[0]}: "
                f"{a[tuple(bad[0])]!r} vs {b[tuple(bad[0])]!r}"
            )
    assert np.array_equal(np.asarray(ours.stats), np.asarray(theirs.stats)), (
        ours.stats,
        theirs.stats,
    )
