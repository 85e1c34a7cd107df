"""COCOeval.evalImgs (built on request) equals pycocotools' per-image records: the same list,
None in the same places, the same keys, values and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_peer
from instance_sets import fastiou_run, pycocotools_run, random_keypoints, random_segm

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from coco_sets import random_coco  # noqa: E402


def assert_same_records(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if b is None:
            assert a is None, n
            continue
        assert a is not None and a.keys() == b.keys(), n
        for key, want in b.items():
            got = a[key]
            if isinstance(want, np.ndarray):
                assert isinstance(got, np.ndarray) and got.dtype == want.dtype, (n, key)
                assert got.shape == want.shape and np.array_equal(got, want), (n, key, got, want)
            else:
                assert got == want and type(got) is type(want), (n, key, got, want)


def _no_cats(p):
    p.useCats = 0


def _small(p):
    p.maxDets = [1, 4, 9]
    p.iouThrs = np.array([0.3, 0.75])


@pytest.mark.parametrize(
    "configure", [None, _no_cats, _small], ids=["default", "useCats0", "small"]
)
def test_evalimgs_bbox(configure):
    gt, dt = random_coco(3, n_images=12)
    ours, theirs = (
        fastiou_run(gt, dt, "bbox", configure),
        pycocotools_run(gt, dt, "bbox", configure),
    )
    assert ours._evalImgs is None  # not built by evaluate()
    assert_same_records(ours.evalImgs, theirs.evalImgs)


@pytest.mark.parametrize("configure", [None, _no_cats], ids=["default", "useCats0"])
def test_evalimgs_segm(configure):
    gt, dt = random_segm(8, n_images=10)
    ours, theirs = (
        fastiou_run(gt, dt, "segm", configure),
        pycocotools_run(gt, dt, "segm", configure),
    )
    assert_same_records(ours.evalImgs, theirs.evalImgs)


def test_evalimgs_keypoints():
    gt, dt = random_keypoints(4)
    ours, theirs = fastiou_run(gt, dt, "keypoints"), pycocotools_run(gt, dt, "keypoints")
    assert_same_records(ours.evalImgs, theirs.evalImgs)
