"""Small random LVIS sets full of lvis-api's edge cases, and lvis-api run beside fastiou.lvis."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import sys
import types

import numpy as np
from conftest import distinct_ids, require_peer

EDGE_AREAS = [0.0, 32.0**2, 96.0**2, 1e5**2, 32.0**2 - 1e-9, 96.0**2 + 1e-9]
RESULT_KEYS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf",
    "AR@300", "ARs@300", "ARm@300", "ARl@300",
)  # fmt: skip


def random_lvis(
    seed: int,
    crowded_images: int = 2,
    tied_scores: bool = False,
    ignore_flags: bool = False,
) -> tuple[dict, list[dict]]:
    """An LVIS ground-truth dataset and a results list with the cases lvis-api treats specially.

    Rare, common and frequent categories (one group may be empty); per image a few positive
    categories, ``neg_category_ids`` (sometimes with ids not in the category table) and
    ``not_exhaustive_category_ids`` (mostly positive categories); some images without ground
    truth or without detections; ground truth with area 0 and areas on the bucket edges;
    detections that are near-copies of the ground truth or random, of positive, negative,
    unverified and unknown categories, some of zero area; ``crowded_images`` images with more
    than 300 detections; one category never detected; scores that may tie.
    """
    n_images, n_cats, max_gt, max_dt = 16, 24, 7, 40  # max_gt, max_dt: per image, bounds
    rng = np.random.default_rng(seed)
    cat_ids = distinct_ids(rng, n_cats, 2000)
    freq = rng.choice(["r", "c", "f"], n_cats, p=[0.3, 0.3, 0.4])
    categories = [
        {"id": c, "name": f"c{c}", "frequency": str(f), "synset": f"c{c}.n.01"}
        for c, f in zip(cat_ids, freq.tolist(), strict=True)
    ]
    never_detected = cat_ids[0]
    img_ids = distinct_ids(rng, n_images, 100_000)
    images, anns, dets = [], [], []
    ann_id = 1

    def box():
        side = float(np.exp(rng.normal(np.log(40), 1.0)))
        aspect = float(np.exp(rng.normal(0, 0.4)))
        w, h = min(side * aspect, 600.0), min(side / aspect, 440.0)
        return [round(float(rng.uniform(0, 640 - w)), 2), round(float(rng.uniform(0, 480 - h)), 2),
                round(w, 2), round(h, 2)]  # fmt: skip

    def score():
        s = float(rng.random())
        return round(s, 1) if tied_scores and rng.random() < 0.6 else s

    for n, img_id in enumerate(img_ids):
        n_pos = int(rng.integers(0, 4)) if n % 5 else 0  # every fifth image: no ground truth
        pos = rng.choice(cat_ids, n_pos, replace=False).tolist()
        others = [c for c in cat_ids if c not in pos]
        neg = rng.choice(others, int(rng.integers(0, 5)), replace=False).tolist()
        if rng.random() < 0.2:
            neg.append(int(rng.integers(5000, 6000)))  # not in the category table
        nel = [c for c in pos if rng.random() < 0.4]
        if rng.random() < 0.2 and others:
            nel.append(int(rng.choice(others)))
        images.append(
            {"id": img_id, "width": 640, "height": 480, "neg_category_ids": neg,
             "not_exhaustive_category_ids": nel}
        )  # fmt: skip
        gts = []
        for c in pos:
            for _ in range(int(rng.integers(1, max_gt))):
                b = box()
                area = round(b[2] * b[3] * float(rng.uniform(0.5, 1.0)), 2)
                if rng.random() < 0.12:
                    area = float(rng.choice(EDGE_AREAS))
                ann = {"id": ann_id, "image_id": img_id, "category_id": c, "bbox": b,
                       "area": area, "segmentation": [[b[0], b[1], b[0] + b[2], b[1]]]}  # fmt: skip
                if ignore_flags and rng.random() < 0.1:
                    ann["ignore"] = 1
                anns.append(ann)
                gts.append(ann)
                ann_id += 1
        n_dt = int(rng.integers(0, max_dt)) if n % 7 != 3 else 0
        if n < crowded_images:
            n_dt = int(rng.integers(301, 360))
        for _ in range(n_dt):
            u = rng.random()
            if gts and u < 0.5:
                g = gts[int(rng.integers(len(gts)))]
                jitter = rng.normal(0, 0.08, 4) * np.array(g["bbox"])[[2, 3, 2, 3]]
                b = [float(v) for v in np.array(g["bbox"]) + jitter]
                b[2], b[3] = max(b[2], 0.5), max(b[3], 0.5)
                c = g["category_id"] if rng.random() < 0.9 else int(rng.choice(cat_ids))
            else:
                b = [float(v) for v in box()]
                pool = pos + neg + nel
                c = int(rng.choice(pool)) if pool and u < 0.8 else int(rng.choice(cat_ids))
                if u > 0.98:
                    c = 9999  # a category not in the table: never evaluated
            if rng.random() < 0.02:
                b[2] = 0.0  # zero area: lvis-api leaves it out
            if c == never_detected:
                c = cat_ids[-1]
            dets.append({"image_id": img_id, "category_id": c, "bbox": b, "score": score()})
    order = rng.permutation(len(dets))  # results in any order: the cap groups by image
    dets = [dets[i] for i in order]
    dataset = {"info": {"description": "fastiou LVIS edge cases"}, "licenses": [],
               "images": images, "annotations": anns, "categories": categories}  # fmt: skip
    return dataset, dets


def _polygon_parts(rng, b, n_parts: int) -> list[list[float]]:
    """``n_parts`` random convex-ish polygons (6 to 10 points) inside the box ``b``."""
    x, y, w, h = b
    parts = []
    for _ in range(n_parts):
        cx, cy = x + w * rng.uniform(0.25, 0.75), y + h * rng.uniform(0.25, 0.75)
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(6, 11))))
        radius = rng.uniform(0.3, 0.7, len(angles))
        px = np.clip(cx + np.cos(angles) * radius * w / 2, x, x + w)
        py = np.clip(cy + np.sin(angles) * radius * h / 2, y, y + h)
        parts.append(np.round(np.stack([px, py], 1).reshape(-1), 2).tolist())
    return parts


def _octagon(b) -> list[float]:
    """The octagon inscribed in the box ``b`` (a detection near a ground-truth box then has a
    mask near its mask)."""
    x, y, w, h = b
    fx, fy = np.array([0.3, 0.7, 1, 1, 0.7, 0.3, 0, 0]), np.array([0, 0, 0.3, 0.7, 1, 1, 0.7, 0.3])
    return np.round(np.stack([x + fx * w, y + fy * h], 1).reshape(-1), 2).tolist()


def with_masks(dataset: dict, dets: list[dict], seed: int, box_results: str) -> tuple:
    """The set of :func:`random_lvis` with masks: ground truth polygons of one to three parts (the
    box's octagon and random ones; some as uncompressed RLE), detections as compressed RLEs of their
    box's octagon or random polygons in it (some empty). ``box_results``: "all" keeps every
    detection's ``bbox`` (lvis-api's box branch: area = w * h), "some" keeps it on the first and
    about half of the others, the rest then without ``segmentation`` (a box polygon), "none" drops
    it from every detection of the first's image (lvis-api decides by its first result after the
    cap) and about half of the others (the segmentation branch: area = mask area, a missing box the
    mask's)."""
    mask = require_peer("pycocotools.mask")
    rng = np.random.default_rng(seed + 1000)
    dataset, dets = copy.deepcopy(dataset), copy.deepcopy(dets)
    h, w = 480, 640
    for ann in dataset["annotations"]:
        parts = [_octagon(ann["bbox"])] + _polygon_parts(rng, ann["bbox"], int(rng.integers(0, 3)))
        if rng.random() < 0.1:  # uncompressed RLE
            m = mask.decode(mask.merge(mask.frPyObjects(parts, h, w)))
            flat = m.reshape(-1, order="F")
            change = np.flatnonzero(np.diff(flat)) + 1
            bounds = np.concatenate([[0], change, [len(flat)]])
            counts = np.diff(bounds).tolist()
            if flat[0]:
                counts = [0] + counts
            ann["segmentation"] = {"size": [h, w], "counts": counts}
        else:
            ann["segmentation"] = parts
    for i, d in enumerate(dets):
        if box_results == "some" and i and rng.random() < 0.5:
            continue  # no segmentation: lvis-api uses the box's polygon
        if rng.random() < 0.03:
            rle = mask.encode(np.zeros((h, w, 1), np.uint8, order="F"))[0]  # empty: area 0
        else:
            parts = (
                _polygon_parts(rng, d["bbox"], 1) if rng.random() < 0.2 else [_octagon(d["bbox"])]
            )
            rle = mask.merge(mask.frPyObjects(parts, h, w))
        d["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        first_image = d["image_id"] == dets[0]["image_id"]
        if box_results == "none" and (first_image or rng.random() < 0.5):
            del d["bbox"]
    return dataset, dets


def lvis_api():
    """lvis-api 0.5.3 importable on numpy 2 without matplotlib (the shims users apply)."""

    if not hasattr(np, "float"):
        np.float = float  # noqa: NPY001 - lvis-api 0.5.3 spells it; gone in numpy 1.24
    if "lvis.vis" not in sys.modules:  # lvis/__init__ imports its matplotlib visualiser
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            vis = types.ModuleType("lvis.vis")
            vis.LVISVis = None
            sys.modules["lvis.vis"] = vis
    lvis = require_peer("lvis")
    logging.getLogger("lvis").setLevel(logging.ERROR)
    return lvis


def write_json(path, obj) -> str:
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def lvis_api_eval(gt_path: str, dets, max_dets: int = 300, configure=None, iou_type: str = "bbox"):
    """lvis-api's LVISEval run on a ground-truth file and results (list or path)."""
    lvis = lvis_api()
    gt = lvis.LVIS(gt_path)
    dt = lvis.LVISResults(gt, copy.deepcopy(dets) if isinstance(dets, list) else dets, max_dets)
    E = lvis.LVISEval(gt, dt, iou_type)
    if configure:
        configure(E.params)
    with contextlib.redirect_stdout(io.StringIO()):
        E.run()
    return E


def fastiou_eval(gt_path: str, dets, max_dets: int = 300, configure=None, iou_type="bbox"):
    from fastiou.lvis import LVIS, LVISEval, LVISResults

    gt = LVIS(gt_path)
    E = LVISEval(gt, LVISResults(gt, dets, max_dets), iou_type)
    if configure:
        configure(E.params)
    E.run()
    return E


def assert_same(ours, theirs) -> None:
    """The 13 results and every precision and recall cell equal, bit for bit."""
    assert list(ours.results) == list(theirs.results)
    for key in theirs.results:
        a, b = ours.results[key], theirs.results[key]
        assert a == b, f"{key}: fastiou {a!r} != lvis-api {b!r}"
    for key in ("precision", "recall"):
        a, b = ours.eval[key], theirs.eval[key]
        assert a.shape == b.shape, key
        bad = np.argwhere(a != b)
        assert not len(bad), f"{key}: {len(bad)} cells differ, first {bad[0].tolist()}"
    assert ours.freq_groups == theirs.freq_groups
