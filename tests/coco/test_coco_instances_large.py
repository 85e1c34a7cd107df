"""Bigger sets (the bench generators, scaled down): segm and keypoints equal pycocotools."""

from __future__ import annotations

import pytest
from conftest import require_peer
from instance_sets import fastiou_run, pycocotools_run

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from coco_sets import assert_same  # noqa: E402

from fastiou.bench.coco import make_keypoints_set, make_segm_set  # noqa: E402


@pytest.mark.slow
def test_segm_bench_like_set():
    gt, dt = make_segm_set(n_images=200, n_gt=1000, n_dt=2250, seed=3)
    assert_same(fastiou_run(gt, dt, "segm"), pycocotools_run(gt, dt, "segm"))


@pytest.mark.slow
def test_keypoints_bench_like_set():
    gt, dt = make_keypoints_set(n_images=800, seed=3)
    assert_same(fastiou_run(gt, dt, "keypoints"), pycocotools_run(gt, dt, "keypoints"))
