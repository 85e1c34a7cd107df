"""Benchmarks of COCO box evaluation: fastiou.coco against pycocotools and its fast peers.

Workloads are synthetic COCO-val-like sets (generated deterministically, written once per
process to a temporary directory as JSON): the full one has 5,000 images, about 35k
ground-truth boxes (some crowd, polygon segmentations as in COCO), 80 categories and about
270k detections written as detectors write them (float32 values printed as Python floats).

Tasks: ``coco_evaluate`` (evaluate + accumulate + summarize on loaded data),
``coco_load_evaluate`` (the same, loading both files first), ``coco_load`` (one file into the
evaluation columns: the JSON scanner against json, orjson and msgspec + the table code) and
``coco_load_dicts`` (a ground-truth file as dicts: ``COCO.dataset`` against the libraries).
Peak memory is measured in fresh processes by ``python -m fastiou.bench.coco --memory`` (the
bench table has no memory column).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from typing import Any

import numpy as np

from ._registry import Data, implementation, workload

COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]
SIZES = {"5000 images (COCO val-like)": 5000, "300 images": 300}


def boxes_in(rng, width: np.ndarray, height: np.ndarray, img: np.ndarray, n: int) -> np.ndarray:
    """``n`` xywh boxes inside images ``img`` (sides log-normal around 40 px, so about 40%
    small, 40% medium, 20% large)."""
    side = np.exp(rng.normal(np.log(40), 1.0, n))
    aspect = np.exp(rng.normal(0, 0.5, n))
    w = np.minimum(side * aspect, width[img] - 1)
    h = np.minimum(side / aspect, height[img] - 1)
    x = rng.uniform(0, 1, n) * (width[img] - w)
    y = rng.uniform(0, 1, n) * (height[img] - h)
    return np.stack([x, y, w, h], axis=1)


def areas_below(rng, boxes: np.ndarray) -> np.ndarray:
    """Ground-truth areas: 50-95% of the box area, 1% exactly 32² and 1% exactly 96² (the
    inclusive ends of the area ranges)."""
    n = len(boxes)
    area = (boxes[:, 2] * boxes[:, 3] * rng.uniform(0.5, 0.95, n)).round(2)
    edge = rng.random(n)
    area[edge < 0.01] = 32.0**2
    area[(edge >= 0.01) & (edge < 0.02)] = 96.0**2
    return area


def polygons_in(rng, boxes: np.ndarray) -> list[list[float]]:
    """One polygon of 8-30 random points inside each box (flat x, y lists)."""
    n_pts = rng.integers(8, 30, len(boxes))
    pts = rng.uniform(0, 1, (int(n_pts.sum()), 2))
    owner = np.repeat(np.arange(len(boxes)), n_pts)
    pts = (boxes[owner, :2] + pts * boxes[owner, 2:]).round(2).ravel().tolist()
    offsets = np.concatenate([[0], np.cumsum(2 * n_pts)]).tolist()
    return [pts[offsets[k] : offsets[k + 1]] for k in range(len(boxes))]


def jittered(rng, boxes: np.ndarray) -> np.ndarray:
    """Detections near ``boxes``: each side moved by 10% of the size (normal), sides >= 1."""
    out = boxes + rng.normal(0, 0.1, (len(boxes), 4)) * boxes[:, [2, 3, 2, 3]]
    out[:, 2:] = np.maximum(out[:, 2:], 1)
    out[:, :2] = np.maximum(out[:, :2], 0)
    return out


def make_coco_like(n_images: int = 5000, seed: int = 0) -> tuple[dict, list[dict]]:
    """A synthetic COCO dataset and detections on it: (ground-truth dict, results list).

    About 7 ground-truth boxes per image (negative binomial) over a few categories per image,
    box sizes log-normal around 40 px (about 40% small, 40% medium, 20% large), 1% crowd,
    polygon segmentations, areas below the box area, a few exactly on the 32² and 96² edges.
    Detections: 0-3 jittered copies of each box (10% with a wrong category) and 15-70 random
    false positives per image, at most 100 per image, float32 coordinates and scores.
    """
    rng = np.random.default_rng(seed)
    cats = np.array(COCO_CATEGORY_IDS)
    img_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    width = rng.choice([640, 480, 500, 612], n_images).astype(np.float64)
    height = rng.choice([480, 427, 640, 375], n_images).astype(np.float64)
    n_gt = rng.negative_binomial(1.2, 0.14, n_images)
    pool = np.clip(n_gt // 2 + 1, 1, 6)  # categories per image
    base = rng.integers(0, len(cats), n_images)

    def category_in(img: np.ndarray) -> np.ndarray:
        return cats[(base[img] + rng.integers(0, pool[img])) % len(cats)]

    g_img = np.repeat(np.arange(n_images), n_gt)
    G = len(g_img)
    g_box = boxes_in(rng, width, height, g_img, G).round(2)
    g_cat = category_in(g_img)
    g_crowd = (rng.random(G) < 0.01).astype(int)
    g_area = areas_below(rng, g_box)
    polygons = polygons_in(rng, g_box)
    images = [
        {"id": int(i), "file_name": f"{i:012d}.jpg", "width": int(w), "height": int(h)}
        for i, w, h in zip(img_ids.tolist(), width.tolist(), height.tolist(), strict=True)
    ]
    annotations = [
        {
            "segmentation": [polygons[k]],
            "area": a,
            "iscrowd": c,
            "image_id": int(img_ids[i]),
            "bbox": b,
            "category_id": int(cat),
            "id": k + 1,
        }
        for k, (i, a, c, b, cat) in enumerate(
            zip(
                g_img.tolist(),
                g_area.tolist(),
                g_crowd.tolist(),
                g_box.tolist(),
                g_cat,
                strict=True,
            )
        )
    ]
    # detections: jittered copies of the ground truth, then false positives
    copies = rng.integers(0, 4, G) * (g_crowd == 0)
    src = np.repeat(np.arange(G), copies)
    tp_box = jittered(rng, g_box[src])
    wrong = rng.random(len(src)) < 0.1
    tp_cat = np.where(wrong, rng.choice(cats, len(src)), g_cat[src])
    n_fp = rng.integers(15, 70, n_images)
    f_img = np.repeat(np.arange(n_images), n_fp)
    fp_cat = np.where(
        rng.random(len(f_img)) < 0.3, category_in(f_img), rng.choice(cats, len(f_img))
    )
    d_img = np.concatenate([g_img[src], f_img])
    d_box = np.concatenate([tp_box, boxes_in(rng, width, height, f_img, len(f_img))])
    d_box = d_box.astype(np.float32)
    d_cat = np.concatenate([tp_cat, fp_cat])
    d_score = np.concatenate([rng.beta(4, 2, len(src)), rng.beta(1, 4, len(f_img))])
    d_score = d_score.astype(np.float32)
    order = np.lexsort((-d_score, d_img))  # image by image, best first (as detectors write)
    rank = np.arange(len(order)) - np.searchsorted(d_img[order], d_img[order])
    order = order[rank < 100]
    detections = result_list(img_ids, order, d_img, d_cat, d_box, d_score)
    categories = [{"id": int(c), "name": f"class{c}", "supercategory": "thing"} for c in cats]
    return synthetic_set("COCO", images, annotations, categories), detections


def result_list(img_ids, order, d_img, d_cat, d_box, d_score) -> list[dict]:
    """Detections ``order`` (indices into the d_* columns; d_img indexes ``img_ids``) as a COCO
    results list, float32 boxes and scores written as the float64 numbers they are."""
    return [
        {"image_id": int(img_ids[i]), "category_id": int(c), "bbox": b, "score": s}
        for i, c, b, s in zip(
            d_img[order].tolist(),
            d_cat[order].tolist(),
            d_box[order].astype(np.float64).tolist(),
            d_score[order].astype(np.float64).tolist(),
            strict=True,
        )
    ]


def synthetic_set(kind: str, images: list, annotations: list, categories: list) -> dict:
    """The ground-truth dict of a synthetic ``kind`` ("COCO", "LVIS") set."""
    return {
        "info": {"description": f"fastiou synthetic {kind}-val-like set", "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


@cache
def coco_files(n_images: int) -> tuple[str, str]:
    """Paths of the ground-truth and results JSON files of the synthetic set (made once)."""
    return write_set(f"fastiou_coco_{n_images}_", *make_coco_like(n_images))


def write_set(prefix: str, dataset: dict, detections: list) -> tuple[str, str]:
    """Write a ground truth and its detections as JSON into a new temporary directory (removed
    when the process exits)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    paths = os.path.join(directory, "gt.json"), os.path.join(directory, "dt.json")
    for path, obj in zip(paths, (dataset, detections), strict=True):
        with open(path, "w") as f:
            json.dump(obj, f)
    return paths


for _name, _n in SIZES.items():
    for _task in ("coco_evaluate", "coco_load_evaluate"):
        workload(_task, _name, quick=_n < 1000)(
            lambda n=_n: dict(zip(("gt", "dt"), coco_files(n), strict=True))
        )


# The loader: one file into the evaluation columns. The scanner (fastiou's own, on every core
# and on one) against Python's json, orjson and msgspec, each followed by the table code that
# makes the same columns from their dicts.
for _name, _n in SIZES.items():
    for _kind, _index in (("ground truth", 0), ("results", 1)):
        workload("coco_load", f"{_name}: {_kind}", quick=_n < 1000)(
            lambda n=_n, kind=_kind, index=_index: {"path": coco_files(n)[index], "kind": kind}
        )


def _scanner_columns(threads: int | None):
    def prepare(data: Data):
        from .._core import config
        from ..coco import _json, _table

        def run():
            before = config._num_threads
            config.set_num_threads(threads)
            try:
                if data["kind"] == "results":
                    return _json.load_results(data["path"])[0]
                _, annotations, complete = _json.load_dataset(data["path"])
                assert not complete, "the scanner declined the benchmark file"
                return _table.from_scanned(annotations, results=False, source=data["path"])
            finally:
                config.set_num_threads(before)

        return run

    return prepare


def _imported(module: str, function: str):
    """``module.function`` (a dotted name inside the module); ImportError where absent."""
    import importlib

    found = importlib.import_module(module)
    for attribute in function.split("."):
        found = getattr(found, attribute)
    return found


def _library_columns(module: str, function: str):
    """``module.function(the file's bytes)``, then the columns from the dicts."""

    def prepare(data: Data):
        from ..coco import _table

        parse = _imported(module, function)

        def run():
            with open(data["path"], "rb") as f:
                value = parse(f.read())
            if data["kind"] == "results":
                return _table.from_dicts(value, results=True, source=data["path"])
            return _table.from_dicts(value["annotations"], results=False, source=data["path"])

        return run

    return prepare


implementation("coco_load", "fastiou scanner")(_scanner_columns(None))
implementation("coco_load", "fastiou scanner, 1 thread")(_scanner_columns(1))
for _name, _module, _function in (
    ("json.loads + table", "json", "loads"),
    ("orjson.loads + table", "orjson", "loads"),
    ("msgspec.json.decode + table", "msgspec", "json.decode"),
):
    implementation("coco_load", _name, peer=True)(_library_columns(_module, _function))


# The dicts (``COCO.dataset``, and the loader's fallback for files the scanner declines): the
# whole ground-truth file as Python values. fastiou: load, then ``dataset`` (the annotations
# array parsed again, by msgspec where installed), against the libraries on the whole file.
for _name, _n in SIZES.items():
    workload("coco_load_dicts", f"{_name}: ground truth", quick=_n < 1000)(
        lambda n=_n: {"path": coco_files(n)[0]}
    )


@implementation("coco_load_dicts", "fastiou COCO(path).dataset")
def _fastiou_dataset(data: Data):
    from ..coco import COCO

    return lambda: COCO(data["path"], verbose=False).dataset


def _library_dicts(module: str, function: str):
    def prepare(data: Data):
        parse = _imported(module, function)

        def run():
            with open(data["path"], "rb") as f:
                return parse(f.read())

        return run

    return prepare


for _name, _module, _function in (
    ("json.loads", "json", "loads"),
    ("orjson.loads", "orjson", "loads"),
    ("msgspec.json.decode", "msgspec", "json.decode"),
):
    implementation("coco_load_dicts", _name, peer=True)(_library_dicts(_module, _function))


def _quiet(call):
    """Run ``call`` with stdout discarded (pycocotools and its peers print)."""

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            return call()

    return run


# Each peer: (load ground truth, load results, evaluate + accumulate + summarize).
def _fastiou_api():
    from ..coco import COCO, COCOeval

    def evaluate(gt, dt):
        E = COCOeval(gt, dt, "bbox", verbose=False)
        E.evaluate()
        E.accumulate()
        E.summarize()
        return E.stats

    return lambda path: COCO(path, verbose=False), lambda gt, path: gt.loadRes(path), evaluate


def _pycocotools_like(module: str, coco: str, cocoeval: str, evaluator: str = "COCOeval"):
    def api():
        import importlib

        COCO = importlib.import_module(f"{module}{coco}").COCO
        COCOeval = getattr(importlib.import_module(f"{module}{cocoeval}"), evaluator)

        def evaluate(gt, dt):
            E = COCOeval(gt, dt, "bbox")
            E.evaluate()
            E.accumulate()
            E.summarize()
            return E.stats

        return COCO, lambda gt, path: gt.loadRes(path), evaluate

    return api


def _hotcoco_api():
    import hotcoco

    def evaluate(gt, dt):
        E = hotcoco.COCOeval(gt, dt, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
        return E.stats

    return hotcoco.COCO, lambda gt, path: gt.load_res(path), evaluate


PEERS: dict[str, Any] = {
    "pycocotools 2.0.11": _pycocotools_like("pycocotools", ".coco", ".cocoeval"),
    "faster-coco-eval": _pycocotools_like("faster_coco_eval", "", "", "COCOeval_faster"),
    "hotcoco": _hotcoco_api,
    "ultrafast-pycocotools": _pycocotools_like("ultrafast_pycocotools", "", ""),
}
IMPLEMENTATIONS = {"fastiou": _fastiou_api, **PEERS}


def _evaluate_only(api):
    def prepare(data: Data):
        load_gt, load_dt, evaluate = api()
        with contextlib.redirect_stdout(io.StringIO()):
            gt = load_gt(data["gt"])
            dt = load_dt(gt, data["dt"])
        return _quiet(lambda: evaluate(gt, dt))

    return prepare


def _load_and_evaluate(api):
    def prepare(data: Data):
        load_gt, load_dt, evaluate = api()

        def run():
            gt = load_gt(data["gt"])
            return evaluate(gt, load_dt(gt, data["dt"]))

        return _quiet(run)

    return prepare


for _name, _api in IMPLEMENTATIONS.items():
    _peer = _name != "fastiou"
    _slow = _name in ("pycocotools 2.0.11", "faster-coco-eval")  # 5-80 s a run on 5,000 images
    implementation("coco_evaluate", _name, peer=_peer, slow=_slow)(_evaluate_only(_api))
    implementation("coco_load_evaluate", _name, peer=_peer, slow=_slow)(_load_and_evaluate(_api))

# Peak memory runs each implementation alone in a fresh interpreter: only its own imports.
_MEMORY_CODE = {
    "fastiou": "from fastiou.coco import COCO, COCOeval\n"
    "gt = COCO(GT, verbose=False); dt = gt.loadRes(DT)\n"
    "E = COCOeval(gt, dt, IOU, verbose=False)",
    "pycocotools 2.0.11": "from pycocotools.coco import COCO\n"
    "from pycocotools.cocoeval import COCOeval\n"
    "gt = COCO(GT); dt = gt.loadRes(DT); E = COCOeval(gt, dt, IOU)",
    "faster-coco-eval": "from faster_coco_eval import COCO, COCOeval_faster\n"
    "gt = COCO(GT); dt = gt.loadRes(DT); E = COCOeval_faster(gt, dt, IOU)",
    "hotcoco": "import hotcoco\n"
    "gt = hotcoco.COCO(GT); dt = gt.load_res(DT); E = hotcoco.COCOeval(gt, dt, IOU)",
    "ultrafast-pycocotools": "from ultrafast_pycocotools import COCO, COCOeval\n"
    "gt = COCO(GT); dt = gt.loadRes(DT); E = COCOeval(gt, dt, IOU)",
}
# VmHWM, not ru_maxrss: ru_maxrss of a forked child starts at its parent's peak.
_MEMORY_SCRIPT = """
import contextlib, io
GT, DT, IOU = {gt!r}, {dt!r}, {iou_type!r}
with contextlib.redirect_stdout(io.StringIO()):
{code}
    E.evaluate(); E.accumulate(); E.summarize()
    if {read_eval!r}:  # what per-class AP code reads (hotcoco makes these arrays on access)
        arrays = E.eval["precision"], E.eval["recall"], E.eval["scores"]
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]))
"""


def measure_peak_memory(
    code: str, gt: str, dt: str, iou_type: str = "bbox", read_eval: bool = False
) -> float | None:
    """Peak resident memory (MB, Linux) of a fresh process running ``code`` (which loads
    ``GT`` and ``DT`` and makes the evaluator ``E`` of type ``IOU``), then evaluating (and with
    ``read_eval``, reading ``E.eval``'s precision, recall and scores); None when the code's
    imports are not installed."""
    code = "\n".join("    " + line for line in code.splitlines())
    script = _MEMORY_SCRIPT.format(
        gt=gt, dt=dt, iou_type=iou_type, code=code, read_eval=bool(read_eval)
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr:
            return None
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return int(done.stdout.split()[-1]) / 1024  # VmHWM is in KiB


def memory_main(prog: str, names, measure, default_images: int, argv=None) -> int:
    """``python -m PROG --memory [--images N] [--skip NAME]``: a markdown table of
    ``measure(name, images)`` for each implementation name."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--memory", action="store_true", help="peak memory of load + evaluate")
    parser.add_argument("--images", type=int, default=default_images)
    parser.add_argument("--skip", action="append", default=[], help="skip an implementation")
    args = parser.parse_args(argv)
    if not args.memory:
        parser.print_help()
        return 0
    print("| implementation | peak memory, load + evaluate |")
    print("|---|---:|")
    for name in names:
        if name in args.skip:
            continue
        mb = measure(name, args.images)
        print(f"| {name} | {'not installed' if mb is None else f'{mb:.0f} MB'} |", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fastiou.bench.coco --memory [--iou-type bbox|segm|keypoints] [--read-eval]
    [--images N]``: peak memory per implementation (segm and keypoints: the fixed sets of the
    bench rows, fastiou, hotcoco and pycocotools; ``--read-eval``: and reading ``E.eval``'s
    arrays after summarize)."""
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--iou-type", choices=("bbox", "segm", "keypoints"), default="bbox")
    pre.add_argument("--read-eval", action="store_true")
    known, rest = pre.parse_known_args(argv)
    prog, iou_type, read = "python -m fastiou.bench.coco", known.iou_type, known.read_eval

    def measure(name: str, images: int) -> float | None:
        files = coco_files(images) if iou_type == "bbox" else instance_files(iou_type)
        return measure_peak_memory(_MEMORY_CODE[name], *files, iou_type, read)

    if iou_type == "bbox":
        return memory_main(prog, IMPLEMENTATIONS, measure, 5000, rest)

    names = ("fastiou", "hotcoco", "pycocotools 2.0.11")
    return memory_main(prog, names, measure, INSTANCE_SETS[iou_type][1], rest)


# -- instance masks ("segm") and keypoints ----------------------------------------------------
# The synthetic sets: 1,500 images with 7,508 polygon ground truths and 16,877 RLE
# detections; 5,000 images of person keypoints. fastiou's "evaluate" rows start from loaded
# COCO objects without the ground truth's masks / keypoints (read lazily, on first evaluate)
# nor the detections' masks (pycocotools converts them in evaluate); the detections' keypoints
# were read by loadRes. "load_evaluate" rows evaluate fresh objects as a user does: loadRes's
# packed detection masks are kept.
INSTANCE_SETS = {"segm": ("1500 images, 16,877 RLE dets", 1500), "keypoints": ("5000 images", 5000)}


def _polygon_of(rng, box) -> list[float]:
    x, y, w, h = box
    n = int(rng.integers(8, 20))
    angle = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(0.6, 1.0, n)
    px = x + w / 2 + radius * np.cos(angle) * w / 2
    py = y + h / 2 + radius * np.sin(angle) * h / 2
    return np.stack([px, py], 1).round(2).ravel().tolist()


def make_segm_set(n_images: int = 1500, n_gt: int = 7508, n_dt: int = 16877, seed: int = 0):
    """Ground truth with one polygon per object (1% crowd, as uncompressed RLE), detections as
    compressed RLEs of jittered ground truth (about 60%) or random blobs; no boxes in the results
    (pycocotools' segmentation branch of loadRes)."""
    from ..coco import mask as mask_api

    rng = np.random.default_rng(seed)
    cats = np.array(COCO_CATEGORY_IDS)
    img_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    per_img = rng.multinomial(n_gt, np.full(n_images, 1 / n_images))
    dt_per_img = rng.multinomial(n_dt, np.full(n_images, 1 / n_images))
    images, anns, dets = [], [], []
    for i, image_id in enumerate(img_ids.tolist()):
        h, w = 480, 640
        images.append({"id": image_id, "width": w, "height": h, "file_name": f"{image_id}.jpg"})
        base = int(rng.integers(0, len(cats)))
        objects = []
        for _ in range(per_img[i]):
            side = float(np.exp(rng.normal(np.log(50), 0.9)))
            bw, bh = min(side * np.exp(rng.normal(0, 0.4)), w - 2), min(side, h - 2)
            box = [float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), bw, bh]
            cat = int(cats[(base + int(rng.integers(0, 4))) % len(cats)])
            poly = _polygon_of(rng, box)
            rle = mask_api.merge(mask_api.frPyObjects([poly], h, w))
            crowd = int(rng.random() < 0.01)
            segm: Any = [poly]
            if crowd:  # crowd regions as uncompressed RLE, as in COCO
                flat = mask_api.decode(rle).reshape(-1, order="F")
                change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
                runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
                segm = {"size": [h, w], "counts": ([0] + runs) if flat[0] else runs}
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": cat, "iscrowd": crowd,
                "segmentation": segm, "area": float(mask_api.area(rle)),
                "bbox": [round(v, 2) for v in box],
            })  # fmt: skip
            objects.append((box, cat))
        for _ in range(dt_per_img[i]):
            if objects and rng.random() < 0.6:
                box, cat = objects[int(rng.integers(len(objects)))]
                box = np.array(box) + rng.normal(0, 0.08, 4) * np.array(box)[[2, 3, 2, 3]]
                box = np.maximum(box, 1).tolist()
            else:
                side = float(np.exp(rng.normal(np.log(50), 0.9)))
                box = [float(rng.uniform(0, w - 20)), float(rng.uniform(0, h - 20)), side, side]
                cat = int(cats[(base + int(rng.integers(0, 6))) % len(cats)])
            rle = mask_api.merge(mask_api.frPyObjects([_polygon_of(rng, box)], h, w))
            score = float(np.float32(rng.beta(2, 2)))
            dets.append({"image_id": image_id, "category_id": cat, "score": score,
                         "segmentation": {"size": rle["size"],
                                          "counts": rle["counts"].decode("ascii")}})  # fmt: skip
    categories = [{"id": int(c), "name": f"class{c}", "supercategory": "thing"} for c in cats]
    return {"images": images, "annotations": anns, "categories": categories}, dets


def make_keypoints_set(n_images: int = 5000, seed: int = 0):
    """Person keypoints like COCO val: about 2.2 people per image, 40% without keypoints
    (num_keypoints 0), 1% crowd; detections with 17 keypoints and a score, no box (the
    keypoint branch of loadRes): 1-2 jittered copies per person and a few random ones."""
    rng = np.random.default_rng(seed)
    img_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    images, anns, dets = [], [], []
    for image_id in img_ids.tolist():
        images.append({"id": image_id, "width": 640, "height": 480})
        people = []
        for _ in range(int(rng.poisson(2.2))):
            bw, bh = float(np.exp(rng.normal(4, 0.7))), float(np.exp(rng.normal(4.5, 0.7)))
            x, y = float(rng.uniform(0, 600)), float(rng.uniform(0, 440))
            xs, ys = rng.uniform(x, x + bw, 17).round(), rng.uniform(y, y + bh, 17).round()
            v = rng.choice([0, 1, 2], 17, p=[0.3, 0.1, 0.6])
            crowd = int(rng.random() < 0.01)
            if crowd or rng.random() < 0.4:
                v[:] = 0
            kp = np.stack([np.where(v > 0, xs, 0), np.where(v > 0, ys, 0), v], 1)
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": crowd,
                "keypoints": kp.astype(int).ravel().tolist(), "num_keypoints": int((v > 0).sum()),
                "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                "area": round(bw * bh * 0.6, 2),
            })  # fmt: skip
            people.append((xs, ys))
        candidates = [p for p in people for _ in range(int(rng.integers(1, 3)))]
        candidates += [None] * int(rng.integers(0, 4))
        for person in candidates:
            if person is None:
                xs, ys = rng.uniform(0, 640, 17), rng.uniform(0, 480, 17)
            else:
                spread = float(rng.uniform(1, 10))
                xs, ys = (
                    person[0] + rng.normal(0, spread, 17),
                    person[1] + rng.normal(0, spread, 17),
                )
            kp = np.stack([xs, ys, np.ones(17)], 1).astype(np.float32).astype(np.float64)
            dets.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(),
                         "score": float(np.float32(rng.random()))})  # fmt: skip
    categories = [{"id": 1, "name": "person", "supercategory": "person"}]
    return {"images": images, "annotations": anns, "categories": categories}, dets


@cache
def instance_files(iou_type: str) -> tuple[str, str]:
    """Paths of the ground-truth and results JSON files of the segm / keypoints set."""
    make = make_segm_set if iou_type == "segm" else make_keypoints_set
    return write_set(f"fastiou_coco_{iou_type}_", *make(INSTANCE_SETS[iou_type][1]))


def _instance_api(iou_type: str, name: str):
    """(load gt, load results, evaluate) of implementation ``name`` for ``iou_type``."""

    def api():
        if name == "fastiou":
            from ..coco import COCO, COCOeval

            def evaluate(gt, dt):
                if getattr(dt, "_bench_evaluated", False):  # evaluated before: a fresh start
                    gt._rles_cache = dt._rles_cache = gt._keypoints_cache = None
                dt._bench_evaluated = True
                E = COCOeval(gt, dt, iou_type, verbose=False)
                E.evaluate()
                E.accumulate()
                E.summarize()
                return E.stats

            return lambda path: COCO(path, verbose=False), lambda gt, p: gt.loadRes(p), evaluate
        if name == "hotcoco":
            import hotcoco

            COCO, COCOeval, load = hotcoco.COCO, hotcoco.COCOeval, "load_res"
        else:
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            load = "loadRes"

        def evaluate(gt, dt):
            E = COCOeval(gt, dt, iou_type)
            E.evaluate()
            E.accumulate()
            E.summarize()
            return E.stats

        return COCO, lambda gt, path: getattr(gt, load)(path), evaluate

    return api


for _iou_type, (_name, _n) in INSTANCE_SETS.items():
    for _task in (f"coco_{_iou_type}_evaluate", f"coco_{_iou_type}_load_evaluate"):
        workload(_task, _name)(
            lambda t=_iou_type: dict(zip(("gt", "dt"), instance_files(t), strict=True))
        )
    for _impl in ("fastiou", "hotcoco", "pycocotools 2.0.11"):
        _api = _instance_api(_iou_type, _impl)
        _peer, _slow = _impl != "fastiou", _impl.startswith("pycocotools")
        implementation(f"coco_{_iou_type}_evaluate", _impl, peer=_peer, slow=_slow)(
            _evaluate_only(_api)
        )
        implementation(f"coco_{_iou_type}_load_evaluate", _impl, peer=_peer, slow=_slow)(
            _load_and_evaluate(_api)
        )


if __name__ == "__main__":
    sys.exit(main())
