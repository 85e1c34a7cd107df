"""Seeded synthetic COCO-panoptic sets: PNG folders and JSON files, for benchmarks and tests.

Each ground-truth image has stuff regions (a coarse Voronoi tiling), things drawn over them
(ellipses, some crowd), VOID rectangles and, now and then, nothing at all. Its prediction is the
ground truth moved by a few pixels with segments split, merged, relabelled with a wrong category,
dropped to VOID or dropped into a neighbour, spurious segments (some over VOID), VOID holes, and
now and then an empty prediction. Segment ids are random 24-bit values, written as
``R + 256 G + 256² B`` as COCO panoptic PNGs are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

THING_CATEGORIES = [1, 2, 3, 5, 8, 13, 21, 34]
STUFF_CATEGORIES = [100, 101, 105, 120, 144, 190]


def categories() -> list[dict]:
    return [
        {"id": c, "name": f"thing{c}", "supercategory": "thing", "isthing": 1}
        for c in THING_CATEGORIES
    ] + [
        {"id": c, "name": f"stuff{c}", "supercategory": "stuff", "isthing": 0}
        for c in STUFF_CATEGORIES
    ]


def _ellipse(shape, rng) -> np.ndarray:
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(4, h / 4), rng.uniform(4, w / 4)
    y = (np.arange(h)[:, None] - cy) / ry
    x = (np.arange(w)[None, :] - cx) / rx
    return y * y + x * x <= 1.0


def _ground_truth(shape, rng) -> tuple[np.ndarray, list[dict]]:
    """A map of segment indices (0 = VOID, i = segments[i - 1]) and its segments."""
    h, w = shape
    index = np.zeros(shape, np.int32)
    segments: list[dict] = []
    if rng.random() < 0.03:  # an image with no segments at all
        return index, segments
    n_stuff = int(rng.integers(2, 6))
    seeds = rng.uniform(0, 1, (n_stuff, 2)) * [h, w]
    step = 8  # a coarse tiling, upsampled: blocky boundaries like real masks
    gy, gx = np.mgrid[0:h:step, 0:w:step]
    d = (gy[..., None] - seeds[:, 0]) ** 2 + (gx[..., None] - seeds[:, 1]) ** 2
    tiles = np.argmin(d, axis=2).repeat(step, 0).repeat(step, 1)[:h, :w]
    stuff = rng.choice(STUFF_CATEGORIES, n_stuff, replace=n_stuff > len(STUFF_CATEGORIES))
    for k in range(n_stuff):  # a stuff category is one segment per image: merge repeats
        first = int(np.flatnonzero(stuff == stuff[k])[0])
        if first == k:
            segments.append({"category_id": int(stuff[k]), "iscrowd": 0})
        index[tiles == k] = [s["category_id"] for s in segments].index(int(stuff[k])) + 1
    for _ in range(int(rng.integers(0, 12))):
        segments.append(
            {"category_id": int(rng.choice(THING_CATEGORIES)), "iscrowd": int(rng.random() < 0.08)}
        )
        index[_ellipse(shape, rng)] = len(segments)
    for _ in range(int(rng.integers(0, 4))):  # VOID regions
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        index[y : y + int(rng.integers(2, h // 4)), x : x + int(rng.integers(2, w // 4))] = 0
    return index, segments


def _prediction(index: np.ndarray, segments: list[dict], rng) -> tuple[np.ndarray, list[dict]]:
    h, w = index.shape
    if rng.random() < 0.03:  # an empty prediction
        return np.zeros_like(index), []
    dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
    moved = np.roll(index, (dy, dx), axis=(0, 1))
    pred = np.zeros_like(index)
    out: list[dict] = []
    for k, seg in enumerate(segments, start=1):
        mask = moved == k
        r = rng.random()
        category = seg["category_id"]
        if r < 0.08:  # dropped: VOID in the prediction
            continue
        if r < 0.16 and out:  # merged into the previous predicted segment
            pred[mask] = len(out)
            continue
        if r < 0.26:  # a wrong category
            category = int(rng.choice(THING_CATEGORIES + STUFF_CATEGORIES))
        out.append({"category_id": category})
        pred[mask] = len(out)
        if 0.26 <= r < 0.36 and mask.any():  # split at its centre column
            cols = np.flatnonzero(mask.any(axis=0))
            right = mask & (np.arange(w)[None, :] > (cols[0] + cols[-1]) // 2)
            if right.any() and right.sum() < mask.sum():
                out.append({"category_id": category})
                pred[right] = len(out)
    for _ in range(int(rng.integers(0, 4))):  # spurious segments (over VOID, too)
        out.append({"category_id": int(rng.choice(THING_CATEGORIES + STUFF_CATEGORIES))})
        pred[_ellipse((h, w), rng)] = len(out)
    for _ in range(int(rng.integers(0, 3))):  # VOID holes in the prediction
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        pred[y : y + int(rng.integers(2, h // 5)), x : x + int(rng.integers(2, w // 5))] = 0
    return pred, out


def write_png(folder: Path, name: str, index: np.ndarray, segments: list[dict], rng) -> list[dict]:
    """Give the segments that show random 24-bit ids, write the PNG, return their infos."""
    from PIL import Image

    counts = np.bincount(index.ravel(), minlength=len(segments) + 1)
    ids = rng.choice(np.arange(1, 1 << 24), len(segments), replace=False).astype(np.uint32)
    lut = np.concatenate([[0], ids]).astype(np.uint32)
    id_map = lut[index]
    rgb = np.stack([id_map & 255, (id_map >> 8) & 255, id_map >> 16], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(folder / name, compress_level=1)
    infos = []
    for k, seg in enumerate(segments, start=1):
        if counts[k] == 0:
            continue  # a segment covered by others or VOID: not in the PNG, not listed
        infos.append({"id": int(ids[k - 1]), **seg, "area": int(counts[k])})
    return infos


def make_panoptic_set(
    folder: str | os.PathLike, n_images: int, shape=(480, 640), seed: int = 0
) -> tuple[str, str]:
    """Write ``gt.json`` + ``gt/`` and ``pred.json`` + ``pred/`` under ``folder``.

    Returns the two JSON paths (panopticapi's default folders: the JSON path without .json).
    """
    root = Path(folder)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    images, gt_annotations, pred_annotations = [], [], []
    for i in range(n_images):
        image_id = 1000 + 7 * i
        name = f"{image_id:012d}.png"
        index, segments = _ground_truth(shape, rng)
        pred_index, pred_segments = _prediction(index, segments, rng)
        gt_infos = write_png(root / "gt", name, index, segments, rng)
        pred_infos = write_png(root / "pred", name, pred_index, pred_segments, rng)
        for info in pred_infos:  # predictions carry no crowd flag or area
            info.pop("area")
        images.append({"id": image_id, "file_name": name.replace(".png", ".jpg"),
                       "height": shape[0], "width": shape[1]})  # fmt: skip
        gt_annotations.append({"image_id": image_id, "file_name": name, "segments_info": gt_infos})
        pred_annotations.append(
            {"image_id": image_id, "file_name": name, "segments_info": pred_infos}
        )
    gt = {"images": images, "annotations": gt_annotations, "categories": categories()}
    pred = {"annotations": pred_annotations}
    gt_json, pred_json = root / "gt.json", root / "pred.json"
    gt_json.write_text(json.dumps(gt))
    pred_json.write_text(json.dumps(pred))
    return str(gt_json), str(pred_json)


def cached_panoptic_set(n_images: int, shape=(480, 640), seed: int = 0) -> tuple[str, str]:
    """:func:`make_panoptic_set` in a temporary folder kept between runs (by its parameters)."""
    import tempfile

    root = Path(tempfile.gettempdir()) / f"fastiou-panoptic-{n_images}-{shape[0]}x{shape[1]}-{seed}"
    done = root / "complete"
    if not done.exists():
        make_panoptic_set(root, n_images, shape, seed)
        done.touch()
    return str(root / "gt.json"), str(root / "pred.json")
