"""fastiou.lvis LVISEval(iou_type="segm") against lvis-api 0.5.3: the 13 results and every
precision / recall cell, bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from lvis_sets import (
    assert_same,
    fastiou_eval,
    lvis_api,
    lvis_api_eval,
    random_lvis,
    with_masks,
    write_json,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:results.*category id"),
    pytest.mark.filterwarnings("ignore:The .warn. method is deprecated"),  # lvis-api
]


@pytest.mark.parametrize(
    ("seed", "box_results"),
    [(0, "all"), (1, "some"), (2, "none"), (3, "all"), (4, "none"), (5, "some")],
)
def test_segm_parity_random_sets(tmp_path, seed, box_results):
    """Polygon ground truth of several parts (and uncompressed RLEs), RLE results with and
    without boxes or without masks, neg / not-exhaustive lists, images over the 300 cap,
    repeated scores, area-0 and empty masks."""
    lvis_api()
    dataset, dets = random_lvis(seed, tied_scores=seed % 2 == 1, ignore_flags=seed % 3 == 2)
    dataset, dets = with_masks(dataset, dets, seed, box_results)
    gt = write_json(tmp_path / "gt.json", dataset)
    ours = fastiou_eval(gt, dets, iou_type="segm")
    theirs = lvis_api_eval(gt, dets, iou_type="segm")
    assert_same(ours, theirs)
    assert theirs.results["AP"] > 0  # the masks match somewhere: a real comparison


@pytest.mark.parametrize("box_results", ["all", "none"])
def test_segm_parity_results_file(tmp_path, box_results):
    """Results read from a file (the fast box reader, or the segmentation branch)."""
    lvis_api()
    dataset, dets = random_lvis(7, crowded_images=3)
    dataset, dets = with_masks(dataset, dets, 7, box_results)
    gt = write_json(tmp_path / "gt.json", dataset)
    dt = write_json(tmp_path / "dt.json", dets)
    assert_same(fastiou_eval(gt, dt, iou_type="segm"), lvis_api_eval(gt, dt, iou_type="segm"))


@pytest.mark.parametrize("max_dets", [10, -1])
def test_segm_parity_other_caps(tmp_path, max_dets):
    lvis_api()
    dataset, dets = with_masks(*random_lvis(8), 8, "none")
    gt = write_json(tmp_path / "gt.json", dataset)
    assert_same(
        fastiou_eval(gt, dets, max_dets, iou_type="segm"),
        lvis_api_eval(gt, dets, max_dets, iou_type="segm"),
    )


def test_segm_parity_params_subset_and_repeated_ids(tmp_path):
    """A subset of images and categories and ground truth sharing ids: the selected ground
    truth's masks are looked up by their rows in the dataset."""
    lvis_api()
    dataset, dets = with_masks(*random_lvis(9), 9, "some")
    anns = dataset["annotations"]
    for a, b in zip(anns[3:40:6], anns[5:40:6], strict=False):
        b["id"] = a["id"]  # lvis-api keeps the last annotation with an id
    gt = write_json(tmp_path / "gt.json", dataset)
    cats = [c["id"] for c in dataset["categories"]]
    imgs = [i["id"] for i in dataset["images"]]

    def configure(p):
        p.cat_ids = [cats[5], cats[2], cats[9]] + cats[12:20]
        p.img_ids = imgs[2:12]
        p.iou_thrs = np.array([0.3, 0.5, 0.7])

    assert_same(
        fastiou_eval(gt, dets, configure=configure, iou_type="segm"),
        lvis_api_eval(gt, dets, configure=configure, iou_type="segm"),
    )


def test_segm_is_the_default_and_masks_are_lvis_apis(tmp_path):
    """LVISEval's default iou_type is "segm"; ann_to_rle / ann_to_mask equal lvis-api's."""
    lvis = lvis_api()
    from fastiou.lvis import LVIS, LVISEval, LVISResults

    dataset, dets = with_masks(*random_lvis(10), 10, "all")
    path = write_json(tmp_path / "gt.json", dataset)
    gt, theirs = LVIS(path), lvis.LVIS(path)
    E = LVISEval(gt, LVISResults(gt, dets))
    assert E.params.iou_type == "segm"
    E.run()
    assert_same(E, lvis_api_eval(path, dets, iou_type="segm"))
    for ann in dataset["annotations"][:20]:
        assert gt.ann_to_rle(ann) == theirs.ann_to_rle(ann)
        np.testing.assert_array_equal(gt.ann_to_mask(ann), theirs.ann_to_mask(ann))


def test_segm_branch_chosen_by_the_first_result_after_the_cap(tmp_path):
    """The file's first result has a box, but its image is over the cap and its best-scored
    result has none: lvis-api reads every result as a segmentation result (area = mask area),
    and so does fastiou."""
    lvis_api()
    dataset, dets = with_masks(*random_lvis(7, crowded_images=3), 7, "none")
    first_image = [d for d in dets if d["image_id"] == dets[0]["image_id"]]
    assert len(first_image) > 300
    best = max(first_image, key=lambda d: d["score"])
    assert best is not dets[0]
    dets[0]["bbox"] = [1.0, 2.0, 30.0, 40.0]  # w * h is not its mask's area
    gt = write_json(tmp_path / "gt.json", dataset)
    ours, theirs = fastiou_eval(gt, dets, iou_type="segm"), lvis_api_eval(gt, dets, iou_type="segm")
    assert_same(ours, theirs)
    assert ours.lvis_dt.anns[1]["area"] == theirs.lvis_dt.anns[1]["area"]


@pytest.mark.parametrize("box_results", ["all", "none"])
def test_segm_given_lvis_api_objects(tmp_path, box_results):
    """lvis-api's own LVIS and LVISResults (areas it computed, toBbox arrays) are read as is."""
    lvis = lvis_api()
    from fastiou.lvis import LVISEval

    dataset, dets = with_masks(*random_lvis(2), 2, box_results)
    path = write_json(tmp_path / "gt.json", dataset)
    theirs = lvis_api_eval(path, dets, iou_type="segm")
    gt = lvis.LVIS(path)
    ours = LVISEval(gt, lvis.LVISResults(gt, copy.deepcopy(dets)), "segm")
    ours.run()
    assert_same(ours, theirs)
