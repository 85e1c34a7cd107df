"""fastiou.lvis' interface: lvis-api's dataset queries and cap, errors, the extras."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from lvis_sets import fastiou_eval, lvis_api, lvis_api_eval, random_lvis, write_json

from fastiou.lvis import LVIS, AnnotationError, LVISEval, LVISResults

pytestmark = [
    pytest.mark.filterwarnings("ignore:results.*category id"),
    pytest.mark.filterwarnings("ignore:The .warn. method is deprecated"),  # lvis-api
]


@pytest.fixture
def lvis_set(tmp_path):
    dataset, dets = random_lvis(7, crowded_images=3, tied_scores=True)
    return write_json(tmp_path / "gt.json", dataset), dataset, dets


def test_results_cap_and_ids_match_lvis_api(lvis_set):
    """Same detections kept, in the same order, with the same ids (ties in file order)."""
    lvis = lvis_api()
    gt_path, _, dets = lvis_set
    for max_dets in (300, 7, 0, -1):
        if max_dets == 0:  # lvis-api fails on the empty list this leaves (IndexError)
            assert LVISResults(LVIS(gt_path), dets, 0).load_anns() == []
            continue
        theirs = lvis.LVISResults(lvis.LVIS(gt_path), copy.deepcopy(dets), max_dets)
        ours = LVISResults(LVIS(gt_path), dets, max_dets)
        keys = ("id", "image_id", "category_id", "bbox", "score", "area")
        got = [[a[k] for k in keys] for a in ours.load_anns()]
        want = [[a[k] for k in keys] for a in theirs.load_anns()]
        assert got == want


def test_limit_dets_per_image_method_matches_lvis_api(lvis_set):
    lvis = lvis_api()
    gt_path, _, dets = lvis_set
    theirs = lvis.LVISResults(lvis.LVIS(gt_path), copy.deepcopy(dets))
    ours = LVISResults(LVIS(gt_path), dets)
    assert ours.limit_dets_per_image(dets, 5) == theirs.limit_dets_per_image(dets, 5)


def test_queries_match_lvis_api(lvis_set):
    lvis = lvis_api()
    gt_path, dataset, _ = lvis_set
    theirs, ours = lvis.LVIS(gt_path), LVIS(gt_path)
    img_ids = [i["id"] for i in dataset["images"]][::3]
    cat_ids = [c["id"] for c in dataset["categories"]][::2]
    assert ours.get_img_ids() == theirs.get_img_ids()
    assert ours.get_cat_ids() == theirs.get_cat_ids()
    for kwargs in (
        {}, {"img_ids": img_ids}, {"cat_ids": cat_ids}, {"img_ids": img_ids, "cat_ids": cat_ids},
        {"cat_ids": cat_ids, "area_rng": [32**2, 96**2]},
    ):  # fmt: skip
        assert ours.get_ann_ids(**kwargs) == theirs.get_ann_ids(**kwargs), kwargs
    ids = theirs.get_ann_ids(img_ids=img_ids)
    assert ours.load_anns(ids) == theirs.load_anns(ids)
    assert ours.load_cats(cat_ids) == theirs.load_cats(cat_ids)
    assert ours.load_imgs(img_ids) == theirs.load_imgs(img_ids)

    def filled(index):  # lvis-api's defaultdicts gain empty entries from the queries above
        return {k: v for k, v in index.items() if v}

    assert filled(ours.img_ann_map) == filled(theirs.img_ann_map)
    assert filled(ours.cat_img_map) == filled(theirs.cat_img_map)


def test_dict_and_array_inputs_give_the_file_numbers(lvis_set):
    gt_path, dataset, dets = lvis_set
    ref = fastiou_eval(gt_path, dets)
    rows = np.array(
        [[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in dets], np.float64
    )
    for gt, dt in ((LVIS(copy.deepcopy(dataset)), dets), (LVIS(gt_path), rows)):
        E = LVISEval(gt, dt, "bbox")
        E.run()
        assert E.results == ref.results
        assert np.array_equal(E.eval["precision"], ref.eval["precision"])


def test_per_class_matches_lvis_api_precision(lvis_set):
    gt_path, dataset, dets = lvis_set
    theirs = lvis_api_eval(gt_path, dets)
    ours = fastiou_eval(gt_path, dets)
    rows = ours.per_class()
    assert [r["category_id"] for r in rows] == theirs.params.cat_ids
    precision, recall = theirs.eval["precision"], theirs.eval["recall"]
    for k, row in enumerate(rows):
        cells = {
            "AP": precision[:, :, k, 0],
            "AR@300": recall[:, k, 0],
            "APs": precision[:, :, k, 1],
            "AP50": precision[0, :, k, 0],
        }
        for name, s in cells.items():
            expected = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
            assert row[name] == expected, (row["category_id"], name)
    n_gt = {c["id"]: 0 for c in dataset["categories"]}
    for a in dataset["annotations"]:
        n_gt[a["category_id"]] += 0 < a["area"] < np.inf and not a.get("ignore", 0)
    assert {r["category_id"]: r["n_gt"] for r in rows} == n_gt
    table = ours.per_class_table()
    assert table.count("\n") == len(rows) + 1 and "AR@300" in table


def test_print_results_matches_lvis_api(lvis_set, capsys):
    gt_path, _, dets = lvis_set
    theirs = lvis_api_eval(gt_path, dets)
    ours = fastiou_eval(gt_path, dets)
    capsys.readouterr()
    theirs.print_results()
    want = capsys.readouterr().out
    ours.print_results()
    assert capsys.readouterr().out == want
    assert list(ours.get_results()) == list(theirs.get_results())


# -- errors -------------------------------------------------------------------------------


def test_missing_neg_category_ids(tmp_path):
    dataset, dets = random_lvis(1)
    del dataset["images"][2]["neg_category_ids"]
    gt = LVIS(dataset)
    E = LVISEval(gt, dets, "bbox")
    with pytest.raises(AnnotationError, match="neg_category_ids"):
        E.evaluate()
    dataset["images"][3]["not_exhaustive_category_ids"] = None
    dataset["images"][2]["neg_category_ids"] = []
    with pytest.raises(AnnotationError, match="not_exhaustive_category_ids"):
        LVISEval(LVIS(dataset), dets, "bbox").evaluate()
    dataset["images"][3]["not_exhaustive_category_ids"] = [1.5]
    with pytest.raises(AnnotationError, match="integer category id"):
        LVISEval(LVIS(dataset), dets, "bbox").evaluate()


def test_bad_frequency_and_missing_keys():
    dataset, dets = random_lvis(1)
    dataset["categories"][4]["frequency"] = "x"
    with pytest.raises(AnnotationError, match="frequency"):
        LVISEval(LVIS(dataset), dets, "bbox").evaluate()
    for key in ("images", "categories", "annotations"):
        broken = {k: v for k, v in dataset.items() if k != key}
        with pytest.raises(AnnotationError, match=key):
            LVIS(broken)


def test_detections_on_unknown_images_and_categories():
    dataset, dets = random_lvis(1)
    gt = LVIS(dataset)
    bad = dets + [{"image_id": 123456789, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]
    with pytest.raises(AnnotationError, match="not in the ground truth: 123456789"):
        LVISResults(gt, bad)
    odd = dets[:5] + [{"image_id": dets[0]["image_id"], "category_id": 77777, "bbox": [0, 0, 1, 1],
                      "score": 1}]  # fmt: skip
    with pytest.warns(UserWarning, match="77777"):
        LVISResults(gt, odd)


def test_bad_detections_and_arguments():
    dataset, dets = random_lvis(1)
    gt = LVIS(dataset)
    with pytest.raises(AnnotationError, match="missing key 'score'"):
        LVISResults(gt, [{k: v for k, v in d.items() if k != "score"} for d in dets])
    with pytest.raises(AnnotationError, match="non-finite score"):
        LVISResults(gt, dets[:3] + [{**dets[3], "score": float("nan")}])
    with pytest.raises(TypeError, match="max_dets"):
        LVISResults(gt, dets, 2.5)
    with pytest.raises(TypeError, match="lvis_gt"):
        LVISEval(42, dets, "bbox")
    with pytest.raises(TypeError, match="lvis_dt"):
        LVISEval(gt, 42, "bbox")
    with pytest.raises(ValueError, match="not supported"):
        LVISEval(gt, dets, "keypoints")
    E = LVISEval(gt, dets, "bbox")
    E.params.use_cats = 0
    with pytest.raises(ValueError, match="use_cats"):
        E.evaluate()
    E = LVISEval(gt, dets, "bbox")
    E.params.img_ids = [5, 6]
    with pytest.raises(AnnotationError, match="not in the ground truth"):
        E.evaluate()
    with pytest.raises(RuntimeError, match="accumulate"):
        LVISEval(gt, dets, "bbox").summarize()
    E = LVISEval(gt, dets, "bbox")
    E.evaluate()
    E.params.cat_ids = E.params.cat_ids[:3]
    with pytest.raises(RuntimeError, match="cat_ids changed"):
        E.accumulate()


def test_segm_bad_inputs_are_named():
    """Segmentation results that are not RLEs, and masks of an image without its size."""
    dataset, dets = random_lvis(1)
    gt = LVIS(dataset)
    polygon = [{"image_id": dets[0]["image_id"], "category_id": 1, "score": 1.0,
                "segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 1.0]]}]  # fmt: skip
    with pytest.raises(AnnotationError, match="must be RLE dicts"):
        LVISResults(gt, polygon)
    del dataset["images"][0]["height"]
    gt = LVIS(dataset)
    with pytest.raises(AnnotationError, match="'height' and 'width'"):
        LVISEval(gt, LVISResults(gt, dets)).evaluate()  # lvis-api's default iou_type: "segm"
