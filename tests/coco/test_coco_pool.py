"""The COCO kernels on fastiou's thread pool: forced parallel (several threads, every work
threshold at 0, many chunks) they give pycocotools' numbers cell for cell, and the chunked
keypoint scanner gives the serial scanner's columns."""

from __future__ import annotations

import json

import numpy as np
import pytest
from coco_sets import assert_same, fastiou_eval, pycocotools_eval, random_coco
from conftest import require_peer
from instance_sets import random_keypoints, random_segm

import fastiou
import fastiou.coco._evaluate as engine
import fastiou.coco._instances as instances

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")


@pytest.fixture
def parallel(monkeypatch):
    """Every COCO kernel on 4 pool threads, whatever the work."""
    monkeypatch.setattr(engine, "PARALLEL_MIN_DETECTIONS", 0)
    monkeypatch.setattr(instances, "_OKS_PARALLEL_TERMS", 0)
    fastiou.set_num_threads(4)
    yield
    fastiou.set_num_threads(None)


# enough (image, category) groups for several chunks of matching (64 groups) and sorting (256)
SETS = {
    "bbox": lambda seed: random_coco(seed, n_images=120, n_cats=5),
    "segm": lambda seed: random_segm(seed, n_images=100, n_cats=4),
    "keypoints": lambda seed: random_keypoints(seed, n_images=150, n_cats=2),
}


@pytest.mark.parametrize("iou_type", sorted(SETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_parallel_evaluation_matches_pycocotools(parallel, iou_type, seed):
    gt, dets = SETS[iou_type](seed)
    ours = fastiou_eval(gt, dets, iou_type=iou_type)
    assert_same(ours, pycocotools_eval(gt, dets, iou_type=iou_type))


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_chunked_keypoint_scan_matches_one_chunk(tmp_path, threads):
    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    _, dets = random_keypoints(3, n_images=60)
    buf = np.frombuffer(json.dumps(dets).encode(), np.uint8)
    k = kernels()
    one = k.scan_keypoints(buf, pow5_table(), 51, False, 1)
    many = k.scan_keypoints(buf, pow5_table(), 51, False, threads)
    assert one is not None and len(one["count"]) == len(dets)
    assert many.keys() == one.keys()
    for key in one:
        np.testing.assert_array_equal(many[key], one[key], err_msg=key)
    # and the keypoints are the file's numbers
    np.testing.assert_array_equal(one["keypoints"], np.array([d["keypoints"] for d in dets]))
