"""pq_compute against panopticapi (bit for bit), and the accumulator against pq_compute."""

import contextlib
import io
import math
import pickle

import numpy as np
import pytest
from conftest import require_peer
from panoptic_cases import CASES, STUFF, THING, write_cases

import fastiou.panoptic as fp
from fastiou.bench.panoptic_sets import make_panoptic_set
from fastiou.panoptic._api import accumulate


def panopticapi_pq(gt_json, pred_json, gt_folder=None, pred_folder=None):
    evaluation = require_peer("panopticapi.evaluation", reason="panopticapi-lite missing")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress and its table
        return evaluation.pq_compute(gt_json, pred_json, gt_folder, pred_folder)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    return make_panoptic_set(root, 40, (48, 64), seed=3)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("cases"))


def assert_close(a: dict, b: dict, tol: float = 1e-12) -> None:
    for group in ("All", "Things", "Stuff"):
        assert a[group]["n"] == b[group]["n"]
        for k in ("pq", "sq", "rq"):
            assert abs(a[group][k] - b[group][k]) <= tol, (group, k)
    assert a["per_class"].keys() == b["per_class"].keys()
    for c in a["per_class"]:
        for k in ("pq", "sq", "rq"):
            assert abs(a["per_class"][c][k] - b["per_class"][c][k]) <= tol


def test_generated_set_equals_panopticapi(generated):
    gt_json, pred_json = generated
    assert fp.pq_compute(gt_json, pred_json) == panopticapi_pq(gt_json, pred_json)


def test_hand_made_cases_equal_panopticapi(cases):
    gt_json, pred_json = cases
    ours = fp.pq_compute(gt_json, pred_json)
    assert ours == panopticapi_pq(gt_json, pred_json)
    assert ours["All"]["n"] > 0 and ours["Things"]["n"] > 0 and ours["Stuff"]["n"] > 0


@pytest.mark.parametrize("decoder", ["pillow", "imagecodecs", "opencv", "pyspng"])
def test_every_decoder_and_backend_gives_the_same(generated, decoder):
    gt_json, pred_json = generated
    expected = fp.pq_compute(gt_json, pred_json)
    try:
        assert fp.pq_compute(gt_json, pred_json, decoder=decoder, jobs=1) == expected
    except ImportError as e:
        pytest.skip(str(e))
    assert fp.pq_compute(gt_json, pred_json, backend="numpy", jobs=3) == expected
    assert fp.pq_compute(gt_json, pred_json, jobs=2) == expected


def test_folders_given_explicitly(tmp_path, cases):
    import shutil
    from pathlib import Path

    gt_json, pred_json = cases
    shutil.copytree(Path(gt_json).with_suffix(""), tmp_path / "g")
    shutil.copytree(Path(pred_json).with_suffix(""), tmp_path / "p")
    got = fp.pq_compute(gt_json, pred_json, str(tmp_path / "g"), str(tmp_path / "p"))
    assert got == panopticapi_pq(gt_json, pred_json, str(tmp_path / "g"), str(tmp_path / "p"))


def test_crowd_rule_by_hand(tmp_path):
    # "crowd": thing A lies inside the crowd region (ignored), thing B is 4/16 on it (a false
    # positive), thing C matches its ground truth exactly: TP 1, FP 1, FN 0 for THING
    gt_json, pred_json = write_cases(tmp_path, ["crowd"])
    r = fp.pq_compute(gt_json, pred_json)["per_class"][THING]
    assert r["sq"] == 1.0 and r["rq"] == 1 / 1.5 and r["pq"] == 1 / 1.5


def test_void_rule_by_hand(tmp_path):
    # "void": rows 14-20 are VOID in the ground truth; the predicted stuff covers them, which
    # leaves them out of the union: stuff IoU = (gt stuff pixels predicted stuff) / gt stuff
    gt_json, pred_json = write_cases(tmp_path, ["void"])
    gt, gt_segments, pred, pred_segments = CASES["void"]
    stuff_gt, stuff_pred = gt == 1, pred == 1
    inter = (stuff_gt & stuff_pred).sum()
    union = stuff_gt.sum() + stuff_pred.sum() - inter - (stuff_pred & (gt == 0)).sum()
    r = fp.pq_compute(gt_json, pred_json)["per_class"][STUFF]
    assert r["sq"] == inter / union and r["rq"] == 1.0


# ------------------------------------------------------------------ float summation order


def test_other_groupings_stay_within_1e12(generated):
    gt_json, pred_json = generated
    categories, pairs = fp.load_pairs(gt_json, pred_json)
    exact = fp.pq_compute(gt_json, pred_json)
    for chunks in (1, 3, 7, 40):
        assert_close(accumulate(categories, pairs, chunks=chunks).compute(), exact)


# ------------------------------------------------------------------ the accumulator


def _id_maps(pair):
    from PIL import Image

    def ids(path):
        rgb = np.asarray(Image.open(path), dtype=np.uint32)
        return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]

    return ids(pair.gt_png), ids(pair.pred_png)


def test_accumulator_equals_the_files(generated):
    gt_json, pred_json = generated
    categories, pairs = fp.load_pairs(gt_json, pred_json)
    quality = fp.PanopticQuality(categories)
    for pair in pairs:
        gt, pred = _id_maps(pair)
        quality.update(gt, pred, pair.gt_segments, pair.pred_segments, image_id=pair.image_id)
    assert quality.images == len(pairs)
    # one running sum over all images: the grouping of accumulate(chunks=1)
    assert quality.compute() == accumulate(categories, pairs, chunks=1).compute()
    assert_close(quality.compute(), fp.pq_compute(gt_json, pred_json))


def test_accumulator_merge_and_pickle(generated):
    gt_json, pred_json = generated
    categories, pairs = fp.load_pairs(gt_json, pred_json)
    half = len(pairs) // 2
    parts = [fp.PanopticQuality(categories), fp.PanopticQuality(categories)]
    for i, pair in enumerate(pairs):
        gt, pred = _id_maps(pair)
        parts[i >= half].update(gt, pred, pair.gt_segments, pair.pred_segments)
    parts = [pickle.loads(pickle.dumps(p)) for p in parts]
    merged = parts[0] + parts[1]
    assert merged.images == len(pairs)
    # two running sums added: panopticapi's grouping on a 2-core machine
    assert merged.compute() == accumulate(categories, pairs, chunks=2).compute()
    assert parts[0].merge(parts[1]).counts()["tp"].tolist() == merged.counts()["tp"].tolist()
    with pytest.raises(ValueError, match="different categories"):
        parts[0] + fp.PanopticQuality([{"id": 1, "isthing": 1}])


def test_accumulator_takes_rgb_and_torch():
    torch = require_peer("torch")
    categories = [{"id": 1, "isthing": 1}, {"id": 2, "isthing": 0}]
    gt = np.array([[5, 5, 7, 7], [5, 5, 7, 0]])
    pred = np.array([[3, 3, 3, 9], [3, 3, 9, 9]])
    gt_info = [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 2}]
    pred_info = [{"id": 3, "category_id": 1}, {"id": 9, "category_id": 2}]
    a = fp.PanopticQuality(categories).update(gt, pred, gt_info, pred_info)
    rgb = lambda x: np.stack([x % 256, x // 256 % 256, x // 65536], -1).astype(np.uint8)  # noqa: E731
    b = fp.PanopticQuality(categories).update(rgb(gt), rgb(pred), gt_info, pred_info)
    c = fp.PanopticQuality(categories).update(torch.from_numpy(gt), torch.from_numpy(pred),
                                              gt_info, pred_info)  # fmt: skip
    assert a.compute() == b.compute() == c.compute()
    # by hand: thing 5 (4 px) vs pred 3 (5 px): IoU 4/5; stuff 7 (3 px) vs pred 9 (3 px, one
    # on VOID): inter 2, union 3 + 3 - 2 - 1 = 3
    assert a.compute()["per_class"][1]["sq"] == 4 / 5
    assert a.compute()["per_class"][2]["sq"] == 2 / 3
    assert a.compute()["All"]["n"] == 2


def test_no_category_of_a_kind():
    quality = fp.PanopticQuality([{"id": 1, "isthing": 1}])
    result = quality.compute()
    assert result["Stuff"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
    assert not math.isnan(result["All"]["pq"])


def test_predictions_of_images_not_in_the_ground_truth_are_ignored(tmp_path):
    # panopticapi evaluates the ground truth's images and ignores other predictions: evaluating
    # a subset of a prediction file is allowed, and gives the subset's numbers
    import json
    from pathlib import Path

    gt_json, pred_json = (Path(p) for p in write_cases(tmp_path))
    gt = json.loads(gt_json.read_text())
    dropped = gt["annotations"].pop(0)["image_id"]
    subset = tmp_path / "gt_subset.json"
    subset.write_text(json.dumps(gt))
    ours = fp.pq_compute(subset, pred_json, gt_folder=gt_json.with_suffix(""))
    assert ours == panopticapi_pq(str(subset), str(pred_json), str(gt_json.with_suffix("")))
    pred = json.loads(pred_json.read_text())
    pred["annotations"] = [a for a in pred["annotations"] if a["image_id"] != dropped]
    trimmed = tmp_path / "pred_trimmed.json"
    trimmed.write_text(json.dumps(pred))
    folders = gt_json.with_suffix(""), pred_json.with_suffix("")
    assert ours == fp.pq_compute(subset, trimmed, *folders)


@pytest.mark.parametrize("threshold", [0.0, 1e9])
def test_default_jobs_probe_gives_the_same(generated, monkeypatch, threshold):
    """On the Python thread path (no libdeflate for the pool path), by default the first images
    are timed on the calling thread, then the rest go to threads (threshold 0) or stay there (a
    huge threshold): the same result, equal to panopticapi's."""
    from fastiou.panoptic import _api

    gt_json, pred_json = generated
    expected = fp.pq_compute(gt_json, pred_json, jobs=1)
    monkeypatch.setattr(_api._png, "libdeflate", lambda: None)
    threads = []
    pool = _api.ThreadPoolExecutor
    monkeypatch.setattr(
        _api, "ThreadPoolExecutor", lambda *a, **k: threads.append(a) or pool(*a, **k)
    )
    monkeypatch.setattr(_api._config, "num_threads", lambda: 2)
    monkeypatch.setattr(_api, "_THREADS_MIN_SECONDS", threshold)
    assert fp.pq_compute(gt_json, pred_json) == expected
    assert threads == ([(2,)] if threshold == 0.0 else [])  # the probe's choice
    assert expected == panopticapi_pq(gt_json, pred_json)
