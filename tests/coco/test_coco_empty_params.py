"""Empty evaluation parameters (imgIds, catIds, areaRng, maxDets, iouThrs, recThrs), with and
without categories: pycocotools 2.0.11's arrays and stats where it gives them, an error of the
same type at the same step where it fails."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from conftest import require_peer

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")


from fastiou.coco import COCO, COCOeval  # noqa: E402


def _small_set(seed: int = 3) -> tuple[dict, list[dict]]:
    """Three categories over six images; detections are jittered ground truth and noise."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "width": 100, "height": 100} for i in range(1, 7)]
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 5)]
    anns, dets = [], []
    for img in range(1, 7):
        for _ in range(int(rng.integers(0, 5))):
            box = [float(v) for v in rng.uniform(0, 60, 2).round(1)]
            box += [float(v) for v in rng.uniform(2, 40, 2).round(1)]
            cat = int(rng.choice([1, 2, 5]))
            anns.append({
                "id": len(anns) + 1, "image_id": img, "category_id": cat, "bbox": box,
                "area": box[2] * box[3], "iscrowd": int(rng.random() < 0.1),
            })  # fmt: skip
            for _ in range(int(rng.integers(0, 3))):
                jittered = (np.array(box) + rng.normal(0, 2, 4)).tolist()
                dets.append({"image_id": img, "category_id": cat, "bbox": jittered,
                             "score": float(rng.random())})  # fmt: skip
        dets.append({"image_id": img, "category_id": int(rng.choice([1, 2, 5])),
                     "bbox": [10.0, 10.0, 20.0, 20.0], "score": float(rng.random())})  # fmt: skip
    return {"images": images, "annotations": anns, "categories": categories}, dets


EMPTY = {
    "imgIds": {"imgIds": []},
    "catIds": {"catIds": []},
    "imgIds+catIds": {"imgIds": [], "catIds": []},
    "areaRng": {"areaRng": []},
    "areaRng+areaRngLbl": {"areaRng": [], "areaRngLbl": []},
    "maxDets": {"maxDets": []},
    "iouThrs": {"iouThrs": np.array([])},
    "iouThrs list": {"iouThrs": []},
    "recThrs": {"recThrs": np.array([])},
    "all but maxDets": {
        "imgIds": [], "catIds": [], "areaRng": [], "areaRngLbl": [], "iouThrs": np.array([]),
        "recThrs": np.array([]),
    },
}  # fmt: skip


def _steps(E) -> list:
    """evaluate, accumulate, summarize in turn: the arrays after accumulate, the stats after
    summarize, or (step, exception type) where a step fails (and nothing after it)."""
    out = []
    for step in ("evaluate", "accumulate", "summarize"):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                getattr(E, step)()
        except Exception as e:  # the step that fails and its exception type are compared
            return [*out, (step, type(e))]
        if step == "accumulate":
            out.append({k: E.eval[k] for k in ("precision", "recall", "scores")})
    return [*out, np.asarray(E.stats)]


def _configured(E, use_cats: int, empty: dict):
    E.params.useCats = use_cats
    for key, value in empty.items():
        setattr(E.params, key, copy.copy(value))
    return E


@pytest.mark.parametrize("use_cats", [1, 0])
@pytest.mark.parametrize("case", EMPTY)
def test_empty_params_as_pycocotools(case, use_cats):
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval as PyCOCOeval

    gt, dt = _small_set()
    coco = COCO(copy.deepcopy(gt), verbose=False)
    ours = _steps(_configured(
        COCOeval(coco, coco.loadRes(copy.deepcopy(dt)), "bbox", verbose=False), use_cats,
        EMPTY[case],
    ))  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        ref = PyCOCO()
        ref.dataset = copy.deepcopy(gt)
        ref.createIndex()
        E = PyCOCOeval(ref, ref.loadRes(copy.deepcopy(dt)), "bbox")
    theirs = _steps(_configured(E, use_cats, EMPTY[case]))
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs, strict=True):
        if isinstance(b, tuple):  # the same step fails, with an error pycocotools' callers catch
            assert a[0] == b[0] and issubclass(a[1], b[1]), (a, b)
        elif isinstance(b, dict):
            for key in b:
                assert a[key].shape == b[key].shape and np.array_equal(a[key], b[key]), key
        else:
            assert np.array_equal(a, b), (a, b)


def test_use_cats_0_without_categories_gives_minus_ones():
    gt, dt = _small_set()
    coco = COCO(gt, verbose=False)
    E = COCOeval(coco, coco.loadRes(dt), "bbox", verbose=False)
    E.params.useCats, E.params.catIds = 0, []
    E.evaluate()
    E.accumulate()
    assert E.eval["precision"].shape == (10, 101, 1, 4, 3)
    assert (E.eval["precision"] == -1).all() and (E.eval["recall"] == -1).all()


def test_empty_max_dets_is_a_value_error_too():
    gt, dt = _small_set()
    coco = COCO(gt, verbose=False)
    E = COCOeval(coco, coco.loadRes(dt), "bbox", verbose=False)
    E.params.maxDets = []
    with pytest.raises(ValueError, match="maxDets is empty"):
        E.evaluate()


@pytest.mark.parametrize(
    "values",
    [[], [5], [1, 2, 3], [3, 1, 2, 2], [1.0, 2.5], [2.0, float("nan"), 1.0], [True, False],
     list(np.arange(10, dtype=np.int32)), [np.int64(4), np.int64(9)], [1, 1]],
)  # fmt: skip
def test_sorted_unique_is_numpys_unique(values):
    from fastiou.coco._evaluate import sorted_unique

    got, want = sorted_unique(values), np.unique(values)
    assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)


def test_positions_with_and_without_the_table():
    from fastiou.coco._ext import kernels

    rng = np.random.default_rng(0)
    for ids, n in ((np.arange(100, 200), 50), (np.sort(rng.choice(10**6, 300, replace=False)), 50)):
        ids = ids.astype(np.int64)
        values = np.concatenate([rng.choice(ids, n), [ids[0] - 1, ids[-1] + 1, -(2**62)]])
        got = kernels().positions(values.astype(np.int64), ids)
        want = np.where(np.isin(values, ids), np.searchsorted(ids, values), -1)
        assert np.array_equal(got, want)
