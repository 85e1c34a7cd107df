"""Small random COCO sets with masks and keypoints, full of pycocotools' special cases, and the
two evaluations (pycocotools and fastiou) run side by side on copies."""

from __future__ import annotations

import numpy as np
from conftest import distinct_ids

EDGE_AREAS = [0.0, 32.0**2, 96.0**2, 1e5**2, 32.0**2 - 1e-9, 96.0**2 + 1e-9]
N_KEYPOINTS = 17


def _uncompressed(mask: np.ndarray) -> dict:
    """The uncompressed RLE ({"size", "counts": [runs]}) of a binary mask, column-major."""
    flat = mask.reshape(-1, order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"size": list(mask.shape), "counts": runs}


def _compressed(mask: np.ndarray) -> dict:
    from pycocotools import mask as pm

    rle = pm.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # as JSON files hold it
    return rle


def _blob(rng, h: int, w: int) -> np.ndarray:
    """A random elliptic blob, sometimes empty or the full image."""
    r = rng.random()
    if r < 0.05:
        return np.zeros((h, w), bool)
    if r < 0.1:
        return np.ones((h, w), bool)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(1, h / 1.5), rng.uniform(1, w / 1.5)
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _polygon(rng, h: int, w: int) -> list[float]:
    """A random polygon, sometimes partly outside the image or degenerate."""
    n = int(rng.integers(3, 9))
    cx, cy = rng.uniform(-0.2 * w, 1.2 * w), rng.uniform(-0.2 * h, 1.2 * h)
    radius = rng.uniform(1, max(h, w) / 1.5, n)
    angle = np.sort(rng.uniform(0, 2 * np.pi, n))
    pts = np.stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)], 1)
    r = rng.random()
    if r < 0.08:  # collinear: no area
        pts = np.stack([np.linspace(0, w, n), np.linspace(0, h, n)], 1)
    elif r < 0.12:  # all points equal
        pts = np.repeat(pts[:1], n, 0)
    return [round(float(v), 2) for v in pts.reshape(-1)]


def _images(rng, n_images: int) -> list[dict]:
    ids = distinct_ids(rng, n_images, 10_000)
    return [
        {"id": i, "height": int(rng.integers(20, 130)), "width": int(rng.integers(20, 130))}
        for i in ids
    ]


def _area(rng, exact: float) -> float:
    if rng.random() < 0.15:
        return float(rng.choice(EDGE_AREAS))
    return float(exact * rng.uniform(0.8, 1.2))


def random_segm(seed: int, n_images=16, n_cats=4, tied_scores=False, with_bbox=False):
    """Ground truth with polygons (several per object, partly outside, degenerate), crowd
    regions as uncompressed RLE, compressed RLE; detections as compressed RLE (near copies of
    the ground truth, random blobs, empty and full masks). ``with_bbox``: detections carry a
    box too (pycocotools' box branch of loadRes: area = w * h)."""
    from pycocotools import mask as pm

    max_gt, max_dt = 6, 14  # ground truth, detections per image at most
    rng = np.random.default_rng(seed)
    cat_ids = distinct_ids(rng, n_cats, 100)
    images = _images(rng, n_images)
    anns, dets, ann_id = [], [], 1
    for img in images:
        h, w = img["height"], img["width"]
        n_gt = 0 if rng.random() < 0.15 else int(rng.integers(1, max_gt + 1))
        masks = []
        for _ in range(n_gt):
            kind = rng.random()
            crowd = int(rng.random() < 0.12)
            if crowd:
                m = _blob(rng, h, w)
                segm = _uncompressed(m)
            elif kind < 0.6:
                segm = [_polygon(rng, h, w) for _ in range(int(rng.integers(1, 4)))]
                m = pm.decode(pm.merge(pm.frPyObjects(segm, h, w))).astype(bool)
            else:
                m = _blob(rng, h, w)
                segm = _compressed(m)
            area = _area(rng, float(m.sum()))
            ys, xs = np.nonzero(m)
            box = [0.0, 0.0, 0.0, 0.0] if not len(xs) else [
                float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                float(ys.max() - ys.min() + 1),
            ]  # fmt: skip
            anns.append({
                "id": ann_id, "image_id": img["id"], "category_id": int(rng.choice(cat_ids[:-1])),
                "segmentation": segm, "area": area, "bbox": box, "iscrowd": crowd,
            })  # fmt: skip
            masks.append((m, anns[-1]["category_id"]))
            ann_id += 1
        if rng.random() < 0.1:
            continue  # no detections on this image
        for _ in range(int(rng.integers(0, max_dt + 1))):
            if masks and rng.random() < 0.65:
                m, cat = masks[int(rng.integers(len(masks)))]
                m = np.roll(m, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), (0, 1))
                if rng.random() < 0.15:
                    cat = int(rng.choice(cat_ids))
            else:
                m, cat = _blob(rng, h, w), int(rng.choice(cat_ids))
            score = (
                float(rng.choice([0.2, 0.5, 0.9])) if tied_scores
                else float(np.float32(rng.random()))
            )  # fmt: skip
            det = {"image_id": img["id"], "category_id": cat, "segmentation": _compressed(m),
                   "score": score}  # fmt: skip
            if with_bbox:
                det["bbox"] = [round(float(v), 1) for v in rng.uniform(0, 60, 4)]
            dets.append(det)
    categories = [{"id": c, "name": f"c{c}", "supercategory": "s"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": categories}, dets


def random_keypoints(seed: int, n_images=20, n_cats=2, tied_scores=False, with_bbox=False):
    """Person-like keypoints: visibility flags 0/1/2, ground truth without visible keypoints
    (num_keypoints 0, the box-distance case), crowd regions, areas on range edges; detections
    near the ground truth or random, more than maxDets=20 in some images."""
    max_gt, max_dt = 5, 25  # per image at most
    rng = np.random.default_rng(seed)
    cat_ids = distinct_ids(rng, n_cats, 100)
    images = [{"id": i["id"], "height": 480, "width": 640} for i in _images(rng, n_images)]
    anns, dets, ann_id = [], [], 1
    for img in images:
        gts = []
        for _ in range(0 if rng.random() < 0.15 else int(rng.integers(1, max_gt + 1))):
            x, y = rng.uniform(0, 500), rng.uniform(0, 380)
            bw, bh = float(np.exp(rng.uniform(1, 5))), float(np.exp(rng.uniform(1, 5)))
            xs = rng.uniform(x, x + bw, N_KEYPOINTS).round()
            ys = rng.uniform(y, y + bh, N_KEYPOINTS).round()
            v = rng.choice([0, 1, 2], N_KEYPOINTS, p=[0.3, 0.2, 0.5])
            crowd = int(rng.random() < 0.1)
            if rng.random() < 0.2 or crowd:
                v[:] = 0
            kp = np.stack([np.where(v > 0, xs, 0), np.where(v > 0, ys, 0), v], 1)
            ann = {
                "id": ann_id, "image_id": img["id"], "category_id": int(rng.choice(cat_ids)),
                "keypoints": [int(t) for t in kp.reshape(-1)], "num_keypoints": int((v > 0).sum()),
                "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                "area": _area(rng, bw * bh * 0.7), "iscrowd": crowd,
            }  # fmt: skip
            anns.append(ann)
            gts.append((ann, xs, ys))
            ann_id += 1
        if rng.random() < 0.1:
            continue
        n_dt = int(rng.integers(0, max_dt + 1))
        for _ in range(n_dt):
            if gts and rng.random() < 0.7:
                ann, xs, ys = gts[int(rng.integers(len(gts)))]
                spread = rng.uniform(0.2, 6)
                dx = xs + rng.normal(0, spread, N_KEYPOINTS)
                dy = ys + rng.normal(0, spread, N_KEYPOINTS)
                cat = ann["category_id"]
            else:
                dx, dy = rng.uniform(0, 640, N_KEYPOINTS), rng.uniform(0, 480, N_KEYPOINTS)
                cat = int(rng.choice(cat_ids))
            kp = np.stack([dx.round(2), dy.round(2), np.ones(N_KEYPOINTS)], 1)
            score = (
                float(rng.choice([0.3, 0.6])) if tied_scores else float(np.float32(rng.random()))
            )
            det = {"image_id": img["id"], "category_id": cat,
                   "keypoints": [float(t) for t in kp.reshape(-1)], "score": score}  # fmt: skip
            if with_bbox:
                det["bbox"] = [float(dx.min()), float(dy.min()), 30.0, 40.0]
            dets.append(det)
    categories = [{"id": c, "name": f"c{c}", "supercategory": "person"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": categories}, dets


def pycocotools_run(gt: dict, dets, iou_type: str, configure=None):
    """pycocotools' COCOeval after evaluate, accumulate and summarize (quietly), on copies."""
    from coco_sets import pycocotools_eval

    return pycocotools_eval(gt, dets, configure, iou_type=iou_type)


def fastiou_run(gt, dets, iou_type: str, configure=None):
    """fastiou's COCOeval after evaluate, accumulate and summarize (quietly)."""
    from coco_sets import fastiou_eval

    return fastiou_eval(gt, dets, configure, iou_type=iou_type)
