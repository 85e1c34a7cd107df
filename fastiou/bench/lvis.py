"""Benchmarks of LVIS evaluation: fastiou.lvis against lvis-api 0.5.3 and hotcoco.

The workload is a synthetic LVIS-v1-val-like set (generated deterministically, written once per
process to a temporary directory as JSON): 4,000 images, 1,203 categories (rare, common and
frequent in LVIS v1's proportions), about 48.5k ground-truth boxes with polygons, per-image
``neg_category_ids`` and ``not_exhaustive_category_ids``, and about 684k detections over all
categories as a detector writes them (float32 values printed as Python floats, some images over
the 300-per-image cap).

Tasks: ``lvis_evaluate`` (evaluate + accumulate + summarize on loaded data) and
``lvis_load_evaluate`` (the same, loading both files first, cap included). lvis-api (with the
``np.float`` shim it needs on numpy 2) takes about 80 s a run: timed only under ``--slow``.
Peak memory is measured in fresh processes by ``python -m fastiou.bench.lvis --memory``.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

import numpy as np

from ._registry import implementation, workload
from .coco import (
    _evaluate_only,
    _load_and_evaluate,
    areas_below,
    boxes_in,
    jittered,
    measure_peak_memory,
    memory_main,
    polygons_in,
    result_list,
    synthetic_set,
    write_set,
)

# LVIS v1: 337 rare, 461 common, 405 frequent categories out of 1,203
FREQUENCY_SHARE = {"r": 337 / 1203, "c": 461 / 1203, "f": 405 / 1203}
SIZES = {"4000 images, 1203 categories (LVIS val-like)": (4000, 1203), "200 images": (200, 1203)}


def make_lvis_like(
    n_images: int = 4000,
    n_categories: int = 1203,
    seed: int = 0,
    gt_per_image: float = 12.1,
    dets_per_image: float = 171.0,
    over_cap: float = 0.06,
    tie_share: float = 0.0,
) -> tuple[dict, list[dict]]:
    """A synthetic LVIS dataset and detections on it: (ground-truth dict, results list).

    Categories get a frequency (r/c/f) and a sampling weight by it; each image has a few
    positive categories (its ground truth: log-normal box sizes, areas below the box area, a
    few exactly on the 32² and 96² edges, polygons), ``neg_category_ids`` (verified absent) and
    ``not_exhaustive_category_ids`` (mostly positive categories, sometimes others).
    Detections: 0-3 jittered copies of each box (10% with a wrong category) and false positives
    over the image's categories or any category; about ``dets_per_image`` per image, an
    ``over_cap`` share of images above 300 (so that the cap matters). ``tie_share``: that
    share of scores rounded to two decimals (ties).
    """
    rng = np.random.default_rng(seed)
    cat_ids = np.arange(1, n_categories + 1)
    freq = rng.choice(list(FREQUENCY_SHARE), n_categories, p=list(FREQUENCY_SHARE.values()))
    weight = np.select([freq == "f", freq == "c"], [30.0, 4.0], 0.5)
    weight /= weight.sum()
    img_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    width = rng.choice([640, 480, 500, 612], n_images).astype(np.float64)
    height = rng.choice([480, 427, 640, 375], n_images).astype(np.float64)

    n_pos = 1 + rng.poisson(2.5, n_images)
    per_category = min(1.0, 3.5 / gt_per_image)  # instances per positive category: geometric
    images, g_img, g_cat = [], [], []
    for i in range(n_images):
        chosen = rng.choice(n_categories, n_pos[i] + 1 + rng.poisson(6), replace=False, p=weight)
        pos, neg = chosen[: n_pos[i]], chosen[n_pos[i] :]
        counts = rng.geometric(per_category, len(pos))
        nel = pos[rng.random(len(pos)) < 0.15].tolist()
        if rng.random() < 0.05:  # a not-exhaustive category without ground truth here
            nel.append(int(rng.integers(n_categories)))
        g_img.append(np.full(int(counts.sum()), i))
        g_cat.append(np.repeat(pos, counts))
        images.append(
            {
                "id": int(img_ids[i]),
                "width": int(width[i]),
                "height": int(height[i]),
                "coco_url": f"http://images.cocodataset.org/val2017/{img_ids[i]:012d}.jpg",
                "neg_category_ids": sorted(int(cat_ids[c]) for c in neg),
                "not_exhaustive_category_ids": sorted({int(cat_ids[c]) for c in nel}),
            }
        )
    g_img = np.concatenate(g_img)
    g_cat = cat_ids[np.concatenate(g_cat)]
    G = len(g_img)

    g_box = boxes_in(rng, width, height, g_img, G).round(2)
    g_area = areas_below(rng, g_box)
    polygons = polygons_in(rng, g_box)
    annotations = [
        {
            "area": a,
            "id": k + 1,
            "segmentation": [polygons[k]],
            "image_id": int(img_ids[i]),
            "bbox": b,
            "category_id": int(c),
        }
        for k, (i, a, b, c) in enumerate(
            zip(g_img.tolist(), g_area.tolist(), g_box.tolist(), g_cat.tolist(), strict=True)
        )
    ]

    # detections: jittered copies of the ground truth, then false positives
    copies = rng.integers(0, 4, G)
    src = np.repeat(np.arange(G), copies)
    tp_box = jittered(rng, g_box[src])
    wrong = rng.random(len(src)) < 0.1
    tp_cat = np.where(wrong, rng.choice(cat_ids, len(src), p=weight), g_cat[src])
    per_image = np.bincount(g_img[src], minlength=n_images)
    over = rng.random(n_images) < over_cap
    wanted = rng.poisson(max(dets_per_image - 360 * over_cap, 0) / (1 - over_cap), n_images)
    wanted[over] = rng.integers(301, 420, int(over.sum()))
    n_fp = np.maximum(wanted - per_image, 0)
    f_img = np.repeat(np.arange(n_images), n_fp)
    own = [np.array(im["neg_category_ids"] + [int(c) for c in g_cat[g_img == i][:3]])
           for i, im in enumerate(images)]  # fmt: skip
    pick = rng.random(len(f_img))
    fp_cat = rng.choice(cat_ids, len(f_img), p=weight)
    near = pick < 0.3  # a category the image is annotated for (positive or negative)
    fp_cat[near] = [
        own[i][int(u * 1e6) % len(own[i])] for i, u in zip(f_img[near], pick[near], strict=True)
    ]
    d_img = np.concatenate([g_img[src], f_img])
    d_box = np.concatenate([tp_box, boxes_in(rng, width, height, f_img, len(f_img))])
    d_box = d_box.astype(np.float32)
    d_cat = np.concatenate([tp_cat, fp_cat])
    d_score = np.concatenate([rng.beta(4, 2, len(src)), rng.beta(1, 4, len(f_img))])
    tied = rng.random(len(d_score)) < tie_share
    d_score[tied] = d_score[tied].round(2)
    d_score = d_score.astype(np.float32)
    order = np.lexsort((rng.random(len(d_img)), d_img))  # image by image, any order within
    detections = result_list(img_ids, order, d_img, d_cat, d_box, d_score)
    counts = np.bincount(np.searchsorted(cat_ids, g_cat), minlength=n_categories)
    categories = [
        {
            "id": int(c),
            "name": f"class{c}",
            "synset": f"class{c}.n.01",
            "frequency": str(f),
            "image_count": int(n),
            "instance_count": int(n),
        }
        for c, f, n in zip(cat_ids.tolist(), freq.tolist(), counts.tolist(), strict=True)
    ]
    return synthetic_set("LVIS", images, annotations, categories), detections


@cache
def lvis_files(n_images: int, n_categories: int) -> tuple[str, str]:
    """Paths of the ground-truth and results JSON files of the synthetic set (made once)."""
    prefix = f"fastiou_lvis_{n_images}_"
    return write_set(prefix, *make_lvis_like(n_images, n_categories))


for _name, (_n, _k) in SIZES.items():
    for _task in ("lvis_evaluate", "lvis_load_evaluate"):
        workload(_task, _name, quick=_n < 1000)(
            lambda n=_n, k=_k: dict(zip(("gt", "dt"), lvis_files(n, k), strict=True))
        )


# Each implementation: (load ground truth, load results with the cap, evaluate + summarize).
def _fastiou_api():
    from ..lvis import LVIS, LVISEval, LVISResults

    def evaluate(gt, dt):
        E = LVISEval(gt, dt, "bbox")
        E.run()
        return E.get_results()

    return LVIS, LVISResults, evaluate


def lvis_api_shims() -> None:
    """What lvis-api 0.5.3 needs to import here: ``np.float`` (removed in numpy 1.24), and
    its ``lvis.vis`` (imported by ``lvis/__init__``) stubbed out where matplotlib is missing."""
    import importlib.util
    import types

    if not hasattr(np, "float"):
        np.float = float  # noqa: NPY001
    if importlib.util.find_spec("matplotlib") is None and "lvis.vis" not in sys.modules:
        vis = types.ModuleType("lvis.vis")
        vis.LVISVis = None
        sys.modules["lvis.vis"] = vis


def _lvis_api():
    lvis_api_shims()
    from lvis import LVIS, LVISEval, LVISResults

    def evaluate(gt, dt):
        E = LVISEval(gt, dt, "bbox")
        E.run()
        return E.get_results()

    return LVIS, LVISResults, evaluate


def _hotcoco_api():
    import hotcoco

    def evaluate(gt, dt):
        E = hotcoco.LVISEval(gt, dt, "bbox")
        E.run()
        return E.get_results()

    return hotcoco.LVIS, hotcoco.LVISResults, evaluate


PEERS: dict[str, Any] = {"lvis-api 0.5.3": _lvis_api, "hotcoco": _hotcoco_api}
IMPLEMENTATIONS = {"fastiou": _fastiou_api, **PEERS}


for _name, _api in IMPLEMENTATIONS.items():
    _peer = _name != "fastiou"
    _slow = _name == "lvis-api 0.5.3"  # about 80 s a run on 4,000 images
    implementation("lvis_evaluate", _name, peer=_peer, slow=_slow)(_evaluate_only(_api))
    implementation("lvis_load_evaluate", _name, peer=_peer, slow=_slow)(_load_and_evaluate(_api))

# Peak memory runs each implementation alone in a fresh interpreter: only its own imports.
_MEMORY_CODE = {
    "fastiou": "from fastiou.lvis import LVIS, LVISResults, LVISEval\n"
    "gt = LVIS(GT); dt = LVISResults(gt, DT); E = LVISEval(gt, dt, 'bbox')",
    "lvis-api 0.5.3": "import sys, types, numpy; numpy.float = float\n"
    "vis = types.ModuleType('lvis.vis'); vis.LVISVis = None; sys.modules['lvis.vis'] = vis\n"
    "from lvis import LVIS, LVISResults, LVISEval\n"
    "gt = LVIS(GT); dt = LVISResults(gt, DT); E = LVISEval(gt, dt, 'bbox')",
    "hotcoco": "import hotcoco\n"
    "gt = hotcoco.LVIS(GT); dt = hotcoco.LVISResults(gt, DT)\n"
    "E = hotcoco.LVISEval(gt, dt, 'bbox')",
}


def peak_memory_mb(name: str, n_images: int = 4000, n_categories: int = 1203) -> float | None:
    """Peak resident memory (MB, Linux) of a fresh process that imports ``name``, loads both
    files of the synthetic set and evaluates; None when the implementation is not installed."""
    return measure_peak_memory(_MEMORY_CODE[name], *lvis_files(n_images, n_categories))


def main(argv: list[str] | None = None) -> int:
    """``python -m fastiou.bench.lvis --memory [--images N]``: peak memory per implementation."""
    return memory_main("python -m fastiou.bench.lvis", IMPLEMENTATIONS, peak_memory_mb, 4000, argv)


if __name__ == "__main__":
    sys.exit(main())
