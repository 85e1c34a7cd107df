"""fastiou.coco against pycocotools 2.0.11: every cell of precision, recall and scores, and the
12 stats, bit for bit (np.array_equal), on small random sets full of edge cases."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from coco_sets import assert_same, fastiou_eval, pycocotools_eval, random_coco
from conftest import require_peer

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from fastiou.coco import COCO, AnnotationError, COCOeval  # noqa: E402

CONFIGS = {
    "default": None,
    "useCats=0": lambda p: setattr(p, "useCats", 0),
    "maxDets 1,3,7": lambda p: setattr(p, "maxDets", [1, 3, 7]),
    "maxDets unsorted": lambda p: setattr(p, "maxDets", [100, 5, 20]),
    "maxDets 0,1,100": lambda p: setattr(p, "maxDets", [0, 1, 100]),
    "iouThrs": lambda p: setattr(p, "iouThrs", np.array([0.0, 0.1, 0.5, 0.55, 0.9, 1.0])),
    "40 iouThrs": lambda p: setattr(p, "iouThrs", np.linspace(0.05, 0.99, 40)),
    "recThrs unsorted": lambda p: setattr(p, "recThrs", np.array([0.0, 0.3, 0.2, 0.999, 1.0])),
    "areaRng": lambda p: setattr(
        p, "areaRng", [[0, 1e10], [100, 2000], [1024, 1024], [2000, 1e10]]
    ),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_pycocotools(seed, config):
    gt, dt = random_coco(seed)
    assert_same(fastiou_eval(gt, dt, CONFIGS[config]), pycocotools_eval(gt, dt, CONFIGS[config]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("use_cats", [1, 0])
def test_tied_scores(seed, use_cats):
    gt, dt = random_coco(100 + seed, tied_scores=True)

    def configure(p):
        p.useCats = use_cats

    assert_same(fastiou_eval(gt, dt, configure), pycocotools_eval(gt, dt, configure))


def test_crowd_heavy_and_many_detections():
    gt, dt = random_coco(7, n_images=10, max_gt=20, max_dt=150, crowd=0.5)
    assert_same(fastiou_eval(gt, dt), pycocotools_eval(gt, dt))


@pytest.mark.parametrize(
    "name",
    ["image subset", "unknown images", "category subset", "categories reordered, useCats=0"],
)
def test_params_selections(name):
    gt, dt = random_coco(11)
    imgs = [im["id"] for im in gt["images"]]
    cats = [c["id"] for c in gt["categories"]]
    configure = {
        "image subset": lambda p: setattr(p, "imgIds", imgs[::2] + [imgs[1], imgs[1]]),
        "unknown images": lambda p: setattr(p, "imgIds", imgs + [10**6, 10**6 + 1]),
        "category subset": lambda p: setattr(p, "catIds", cats[1:3]),
        "categories reordered, useCats=0": lambda p: (
            setattr(p, "catIds", cats[::-1][:3]),
            setattr(p, "useCats", 0),
        ),
    }[name]
    assert_same(fastiou_eval(gt, dt, configure), pycocotools_eval(gt, dt, configure))


def test_ground_truth_id_zero_quirk_and_fix():
    """pycocotools reads a match to annotation id 0 as "unmatched"; positional_ids fixes it."""
    gt, dt = random_coco(3)
    quirky = copy.deepcopy(gt)
    quirky["annotations"][0]["id"] = 0
    ours = fastiou_eval(quirky, dt)
    assert_same(ours, pycocotools_eval(quirky, dt))
    fixed = fastiou_eval(quirky, dt, positional_ids=True)
    assert_same(fixed, pycocotools_eval(gt, dt))  # ids 1..N: nothing special


def test_ignore_flag_option():
    """pycocotools overwrites "ignore" with iscrowd; use_ignore_flag honours it."""
    gt, dt = random_coco(4)
    flagged = copy.deepcopy(gt)
    crowd = copy.deepcopy(gt)
    for i, (a, b) in enumerate(zip(flagged["annotations"], crowd["annotations"], strict=True)):
        if i % 3 == 0:
            a["ignore"] = 1
            b["iscrowd"] = max(b["iscrowd"], 0)  # same box, ignored but not a crowd region
    assert_same(fastiou_eval(flagged, dt), pycocotools_eval(gt, dt))  # the flag is overwritten
    honoured = fastiou_eval(flagged, dt, use_ignore_flag=True)
    assert not np.array_equal(honoured.eval["precision"], fastiou_eval(gt, dt).eval["precision"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_results(dtype):
    """loadRes(N x 7 array), including a float32 array (areas in float32, as pycocotools)."""
    gt, dt = random_coco(5)
    rows = [[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in dt]
    array = np.array(rows, dtype=dtype).reshape(-1, 7)
    assert_same(fastiou_eval(gt, array), pycocotools_eval(gt, None, array=array))


def test_accumulate_with_other_params():
    """accumulate(p) selects evaluated settings by position, as pycocotools does."""
    gt, dt = random_coco(9)
    ours, theirs = fastiou_eval(gt, dt), pycocotools_eval(gt, dt)
    for E in (ours, theirs):
        p = copy.deepcopy(E.params)
        p.catIds = p.catIds[:2]
        p.areaRng = p.areaRng[:2]
        p.areaRngLbl = p.areaRngLbl[:2]
        p.maxDets = [10, 100]
        p.recThrs = np.linspace(0, 1, 11)
        with contextlib.redirect_stdout(io.StringIO()):
            E.accumulate(p)
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(ours.eval[key], theirs.eval[key]), key
    # image ids: a subset, and an array (what pycocotools' set lookup takes too)
    for ids in (lambda q: q[: len(q) // 2], np.asarray):
        for E in (ours, theirs):
            p = copy.deepcopy(E.params)
            p.imgIds = ids(list(E.params.imgIds))
            with contextlib.redirect_stdout(io.StringIO()):
                E.accumulate(p)
        for key in ("precision", "recall", "scores"):
            assert np.array_equal(ours.eval[key], theirs.eval[key]), key


def test_files_and_dicts_agree(tmp_path):
    """The fast file loader and the dict path give the same evaluation."""
    import json

    gt, dt = random_coco(2)
    (tmp_path / "gt.json").write_text(json.dumps(gt, indent=1))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    coco = COCO(str(tmp_path / "gt.json"), verbose=False)
    from_files = fastiou_eval(coco, str(tmp_path / "dt.json"))
    assert_same(from_files, pycocotools_eval(gt, dt))


def test_summary_lines_and_stats(capsys):
    gt, dt = random_coco(1)
    theirs = pycocotools_eval(gt, dt)
    coco = COCO(copy.deepcopy(gt), verbose=False)
    E = COCOeval(coco, coco.loadRes(dt), "bbox", verbose=False)
    E.evaluate()
    E.accumulate()
    capsys.readouterr()
    E.summarize()
    ours_lines = capsys.readouterr().out
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        theirs.summarize()
    assert ours_lines == buf.getvalue()
    assert len(ours_lines.splitlines()) == 12
    assert np.array_equal(E.stats, theirs.stats)


def test_shapes_and_minus_one():
    gt, dt = random_coco(0)
    E = fastiou_eval(gt, dt)
    T, R, K, A, M = 10, 101, len(gt["categories"]), 4, 3
    assert E.eval["precision"].shape == (T, R, K, A, M)
    assert E.eval["recall"].shape == (T, K, A, M)
    assert E.eval["scores"].shape == (T, R, K, A, M)
    assert E.eval["counts"] == [T, R, K, A, M]
    # the last category has no ground truth: -1 everywhere
    assert (E.eval["precision"][:, :, -1] == -1).all()
    assert (E.eval["recall"][:, -1] == -1).all()


def test_empty_results_and_empty_dataset():
    gt, _ = random_coco(0)
    E = fastiou_eval(gt, [])
    assert E.stats[0] == 0  # ground truth but no detections: AP 0 (pycocotools fails on [])
    empty = {"images": [], "annotations": [], "categories": []}
    E = fastiou_eval(empty, [])
    assert list(E.stats) == [-1] * 12


def test_coco_queries():
    gt, dt = random_coco(6)
    ours = COCO(copy.deepcopy(gt), verbose=False)
    from pycocotools.coco import COCO as PyCOCO

    with contextlib.redirect_stdout(io.StringIO()):
        theirs = PyCOCO()
        theirs.dataset = copy.deepcopy(gt)
        theirs.createIndex()
    imgs = sorted(theirs.getImgIds())
    cats = theirs.getCatIds()
    assert sorted(ours.getImgIds()) == imgs
    assert ours.getCatIds() == cats
    assert ours.getCatIds(catNms=["c" + str(cats[0])]) == [cats[0]]
    for kwargs in (
        {},
        {"imgIds": imgs[:5]},
        {"imgIds": imgs[3], "catIds": cats[:2]},
        {"catIds": cats[1:]},
        {"areaRng": [100, 5000]},
        {"iscrowd": 1},
        {"imgIds": imgs[:4], "iscrowd": 0},
    ):
        assert ours.getAnnIds(**kwargs) == theirs.getAnnIds(**kwargs), kwargs
    assert sorted(ours.getImgIds(catIds=cats[:1])) == sorted(theirs.getImgIds(catIds=cats[:1]))
    ids = theirs.getAnnIds(imgIds=imgs[:3])
    assert ours.loadAnns(ids) == theirs.loadAnns(ids)
    assert ours.loadCats(cats[0]) == theirs.loadCats(cats[0])
    assert ours.loadImgs(imgs[:2]) == theirs.loadImgs(imgs[:2])
    res = ours.loadRes(copy.deepcopy(dt))
    with contextlib.redirect_stdout(io.StringIO()):
        their_res = theirs.loadRes(copy.deepcopy(dt))
    assert res.getAnnIds(imgIds=imgs[:3]) == their_res.getAnnIds(imgIds=imgs[:3])
    assert res.loadAnns([1, 2]) == their_res.loadAnns([1, 2])


def test_accepts_pycocotools_objects():
    from pycocotools.coco import COCO as PyCOCO

    gt, dt = random_coco(8)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = PyCOCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(copy.deepcopy(dt))
    E = COCOeval(coco, res, "bbox", verbose=False)
    E.evaluate()
    E.accumulate()
    with contextlib.redirect_stdout(io.StringIO()):
        E.summarize()
    assert_same(E, pycocotools_eval(gt, dt))


# -- malformed input ------------------------------------------------------------------------


def _gt():
    return copy.deepcopy(random_coco(0)[0])


@pytest.mark.parametrize("key", ["bbox", "image_id", "category_id", "score"])
def test_result_missing_key(key):
    gt, dt = random_coco(0)
    dt = copy.deepcopy(dt)
    del dt[3][key]
    with pytest.raises(AnnotationError, match=f"annotation 3.*missing key '{key}'"):
        COCO(gt, verbose=False).loadRes(dt)


@pytest.mark.parametrize("key", ["bbox", "area", "id"])
def test_ground_truth_missing_key(key):
    gt = _gt()
    del gt["annotations"][2][key]
    coco = COCO(gt, verbose=False)
    with pytest.raises(AnnotationError, match=f"missing key '{key}'"):
        COCOeval(coco, coco.loadRes([]), "bbox", verbose=False).evaluate()


def test_results_on_unknown_images():
    gt, dt = random_coco(0)
    dt = copy.deepcopy(dt) + [{"image_id": 123456789, "category_id": 1, "bbox": [0, 0, 1, 1],
                               "score": 0.5}]  # fmt: skip
    with pytest.raises(AnnotationError, match="not in the ground truth: 123456789"):
        COCO(gt, verbose=False).loadRes(dt)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_boxes_and_scores(bad):
    gt, dt = random_coco(0)
    coco = COCO(gt, verbose=False)
    for key in ("bbox", "score"):
        d = copy.deepcopy(dt)
        if key == "bbox":
            d[1]["bbox"][2] = bad
        else:
            d[1]["score"] = bad
        with pytest.raises(AnnotationError, match=f"annotation 1: non-finite {key}"):
            coco.loadRes(d)
    with pytest.raises(AnnotationError, match="non-finite bbox"):
        coco.loadRes(np.array([[gt["images"][0]["id"], 0, 0, bad, 1, 0.5, 1]]))


@pytest.mark.parametrize(
    "box, message",
    [([1, 2, 3], "bbox must be"), ("1,2,3,4", "bbox must be"), ([1, 2, "x", 4], "numeric")],
)
def test_bad_boxes(box, message):
    gt, dt = random_coco(0)
    dt = copy.deepcopy(dt)
    dt[0]["bbox"] = box
    with pytest.raises(AnnotationError, match=message):
        COCO(gt, verbose=False).loadRes(dt)


def test_bad_ids_and_types():
    gt, dt = random_coco(0)
    coco = COCO(gt, verbose=False)
    d = copy.deepcopy(dt)
    d[0]["image_id"] = "abc"
    with pytest.raises(AnnotationError, match="image_id must be an integer"):
        coco.loadRes(d)
    with pytest.raises(AnnotationError, match="N x 7"):
        coco.loadRes(np.zeros((3, 6)))
    with pytest.raises(AnnotationError, match="must be a list"):
        COCO({"images": [], "annotations": {"a": 1}, "categories": []}, verbose=False)._table()
    with pytest.raises(ValueError, match="not supported"):
        COCOeval(coco, coco.loadRes(dt), "obb")
    with pytest.raises(ValueError, match="maxDets"):
        E = COCOeval(coco, coco.loadRes(dt), "bbox", verbose=False)
        E.params.maxDets = []
        E.evaluate()


@pytest.mark.parametrize("use_cats", [1, 0])
def test_repeated_annotation_ids(use_cats):
    """pycocotools loads annotations through a dict by id: a repeated id makes every copy the
    last annotation with that id (a malformed file, but the numbers must still agree)."""
    gt, dt = random_coco(12)
    repeated = copy.deepcopy(gt)
    anns = repeated["annotations"]
    for i, j in ((0, 5), (3, 17), (8, 2), (20, 21)):
        anns[i]["id"] = anns[j]["id"]
    imgs = [im["id"] for im in gt["images"]]

    def configure(p):
        p.useCats = use_cats
        p.imgIds = imgs[::2] + imgs[1:4]

    ours = fastiou_eval(repeated, dt, configure)
    assert_same(ours, pycocotools_eval(repeated, dt, configure))
    assert not np.array_equal(
        ours.eval["precision"], fastiou_eval(gt, dt, configure).eval["precision"]
    )
