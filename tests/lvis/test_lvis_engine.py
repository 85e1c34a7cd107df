"""The two additions fastiou.lvis makes to fastiou.coco's engine keep COCO's numbers:
``evaluate(dt_keep=...)`` equals evaluating the kept rows alone, and
``accumulate(with_scores=False)`` gives the same precision and recall without scores."""

from __future__ import annotations

import numpy as np
import pytest
from lvis_sets import random_lvis

from fastiou.coco import _evaluate
from fastiou.coco._table import Annotations, from_dicts

pytestmark = pytest.mark.filterwarnings("ignore:results.*category id")

AREAS = [[0, 1e10], [0, 32**2], [32**2, 96**2], [96**2, 1e10]]
IOUS = np.linspace(0.5, 0.95, 10)


def _tables(seed):
    dataset, dets = random_lvis(seed)
    gt = from_dicts(dataset["annotations"], results=False, source="gt")
    dt = from_dicts(dets, results=True, source="dt")
    images = [i["id"] for i in dataset["images"]]
    cats = [c["id"] for c in dataset["categories"]]
    return gt, dt, images, cats


def _accumulate(ev, n_cats, max_dets, **kwargs):
    mask = np.ones(len(ev.img_ids), np.uint8)
    n = len(max_dets)
    return _evaluate.accumulate(
        ev, list(range(n_cats)), [0, 1, 2, 3], max_dets, np.linspace(0, 1, 101), mask, 10,
        n_cats, 4, n, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
def test_dt_keep_equals_evaluating_the_kept_rows(seed):
    gt, dt, images, cats = _tables(seed)
    keep = np.random.default_rng(seed).random(len(dt)) < 0.6
    rows = np.flatnonzero(keep)
    subset = Annotations(
        *(None if v is None else v[rows] for v in (
            dt.id, dt.image_id, dt.category_id, dt.bbox, dt.area, dt.iscrowd, dt.ignore,
            dt.score,
        ))
    )  # fmt: skip
    args = (images, cats, True, AREAS, IOUS, 100)
    masked = _evaluate.evaluate(gt, dt, *args, dt_keep=keep)
    alone = _evaluate.evaluate(gt, subset, *args)
    assert np.array_equal(rows[alone.det_row], masked.det_row)
    for ours, theirs in zip(
        _accumulate(masked, len(cats), [1, 10, 100]),
        _accumulate(alone, len(cats), [1, 10, 100]),
        strict=True,
    ):
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("max_dets", [[1, 10, 100], [100, 1, 10]])
def test_accumulate_without_scores(max_dets):
    gt, dt, images, cats = _tables(3)
    ev = _evaluate.evaluate(gt, dt, images, cats, True, AREAS, IOUS, 100)
    precision, recall, scores = _accumulate(ev, len(cats), max_dets)
    p2, r2, s2 = _accumulate(ev, len(cats), max_dets, with_scores=False)
    assert s2 is None and scores is not None
    assert np.array_equal(precision, p2) and np.array_equal(recall, r2)
    # a selection of the evaluated categories (the other cells stay -1)
    mask = np.ones(len(ev.img_ids), np.uint8)
    picked = np.flatnonzero(ev.regular_gt()[:, 0] > 0)[[0, 2]].tolist()  # with ground truth
    sel = _evaluate.accumulate(ev, picked, [0, 1], [100], np.linspace(0, 1, 101), mask, 10,
                               len(cats), 4, 1, with_scores=False)  # fmt: skip
    assert sel[2] is None
    m = max_dets.index(100)
    assert np.array_equal(sel[0][:, :, :2, :2, 0], precision[:, :, picked][:, :, :, :2, m])
    assert np.array_equal(sel[1][:, :2, :2, 0], recall[:, picked][:, :, :2, m])
    assert (sel[0][:, :, :2, 0] > -1).all()
    assert (sel[0][:, :, 2:] == -1).all() and (sel[0][:, :, :, 2:] == -1).all()
