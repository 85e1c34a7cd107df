"""fastiou.lvis against lvis-api 0.5.3: the 13 results and every precision / recall cell."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from lvis_sets import assert_same, fastiou_eval, lvis_api, lvis_api_eval, random_lvis, write_json

pytestmark = [
    pytest.mark.filterwarnings("ignore:results.*category id"),
    pytest.mark.filterwarnings("ignore:The .warn. method is deprecated"),  # lvis-api
]


@pytest.mark.parametrize("seed", range(12))
def test_parity_random_sets(tmp_path, seed):
    lvis_api()
    dataset, dets = random_lvis(seed, tied_scores=seed % 2 == 1, ignore_flags=seed % 3 == 2)
    gt = write_json(tmp_path / "gt.json", dataset)
    assert_same(fastiou_eval(gt, dets), lvis_api_eval(gt, dets))


def test_parity_results_file_and_tied_scores_over_the_cap(tmp_path):
    """Every score tied on the crowded images: the cap keeps file order among ties."""
    lvis_api()
    dataset, dets = random_lvis(11, crowded_images=4, tied_scores=True)
    for d in dets:
        d["score"] = round(d["score"], 1)
    gt = write_json(tmp_path / "gt.json", dataset)
    dt = write_json(tmp_path / "dt.json", dets)
    assert_same(fastiou_eval(gt, dt), lvis_api_eval(gt, dt))


@pytest.mark.parametrize("max_dets", [10, -1])
def test_parity_other_caps(tmp_path, max_dets):
    lvis_api()
    dataset, dets = random_lvis(5)
    gt = write_json(tmp_path / "gt.json", dataset)
    assert_same(fastiou_eval(gt, dets, max_dets), lvis_api_eval(gt, dets, max_dets))


def test_parity_params_subset(tmp_path):
    """A subset of images and categories, unsorted and repeated; other thresholds."""
    lvis_api()
    dataset, dets = random_lvis(3)
    gt = write_json(tmp_path / "gt.json", dataset)
    cats = [c["id"] for c in dataset["categories"]]
    imgs = [i["id"] for i in dataset["images"]]

    def configure(p):
        p.cat_ids = [cats[5], cats[2], cats[9], cats[2]] + cats[12:20]
        p.img_ids = imgs[3:12] + [imgs[4]]
        p.iou_thrs = np.array([0.3, 0.5, 0.7])
        p.rec_thrs = np.linspace(0, 1, 11)
        p.area_rng = [[0, 1e10], [0, 32**2], [32**2, 1e10], [0, 1e10]]
        p.area_rng_lbl = ["all", "small", "medium", "large"]

    assert_same(
        fastiou_eval(gt, dets, configure=configure), lvis_api_eval(gt, dets, configure=configure)
    )


def test_parity_no_evaluated_detection(tmp_path):
    """Only detections of categories the images are not annotated for: nothing counts (what an
    empty results list means; lvis-api itself fails on an empty list)."""
    lvis_api()
    dataset, _ = random_lvis(2)
    gt = write_json(tmp_path / "gt.json", dataset)
    image = dataset["images"][1]
    annotated = {a["category_id"] for a in dataset["annotations"] if a["image_id"] == image["id"]}
    annotated |= set(image["neg_category_ids"])
    other = next(c["id"] for c in dataset["categories"] if c["id"] not in annotated)
    dets = [{"image_id": image["id"], "category_id": other, "bbox": [1, 2, 3, 4], "score": 0.5}]
    ours, theirs = fastiou_eval(gt, dets), lvis_api_eval(gt, dets)
    assert_same(ours, theirs)
    empty = fastiou_eval(gt, [])
    assert_same(empty, theirs)


def test_parity_duplicate_ids_and_id_zero(tmp_path):
    """Annotations sharing an id (each becomes the last of them) and a ground truth with id 0
    (lvis-api reads a match to it as no match)."""
    lvis_api()
    dataset, dets = random_lvis(4)
    anns = dataset["annotations"]
    anns[3]["id"] = anns[10]["id"]
    anns[20]["id"] = anns[21]["id"] = anns[7]["id"]
    anns[15]["id"] = 0
    gt = write_json(tmp_path / "gt.json", dataset)
    assert_same(fastiou_eval(gt, dets), lvis_api_eval(gt, dets))


def test_parity_lvis_api_objects(tmp_path):
    """lvis-api's own LVIS / LVISResults objects are accepted and read as they are."""
    lvis = lvis_api()
    from fastiou.lvis import LVISEval

    dataset, dets = random_lvis(8)
    gt_path = write_json(tmp_path / "gt.json", dataset)
    theirs = lvis_api_eval(gt_path, dets)
    gt = lvis.LVIS(gt_path)
    dt = lvis.LVISResults(gt, copy.deepcopy(dets))
    ours = LVISEval(gt, dt, "bbox")
    ours.run()
    assert_same(ours, theirs)


def test_parity_lvis_like_set(tmp_path):
    """The benchmark's generator at a small size: LVIS-like proportions, ties, over the cap."""
    lvis_api()
    from fastiou.bench.lvis import make_lvis_like

    dataset, dets = make_lvis_like(80, 300, seed=1, over_cap=0.15, tie_share=0.3)
    gt = write_json(tmp_path / "gt.json", dataset)
    dt = write_json(tmp_path / "dt.json", dets)
    assert_same(fastiou_eval(gt, dt), lvis_api_eval(gt, dt))


@pytest.mark.parametrize("empty", ["img_ids", "cat_ids"])
def test_parity_nothing_selected(tmp_path, empty):
    """No image or no category selected: every cell -1, every result -1, as lvis-api."""
    lvis_api()
    dataset, dets = random_lvis(6)
    gt = write_json(tmp_path / "gt.json", dataset)

    def configure(p):
        setattr(p, empty, [])

    ours = fastiou_eval(gt, dets, configure=configure)
    assert_same(ours, lvis_api_eval(gt, dets, configure=configure))
    assert all(v == -1 for v in ours.results.values())
