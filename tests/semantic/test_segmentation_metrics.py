"""Segmentation metrics against hand-computed values, and the ConfusionMatrix accumulator."""

import math
import pickle

import numpy as np
import pytest
from conftest import require_peer

import fastiou
from fastiou.semantic._reference import oracle

# Rows ground truth, columns prediction. Class 2 is absent from both; class 3 is only predicted.
MATRIX = np.array(
    [
        [5, 1, 0, 2],
        [2, 3, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)
NAN = math.nan


def assert_close(got, want):
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=1e-12)


def test_mmseg_convention():
    m = fastiou.segmentation_metrics(MATRIX)
    assert_close(m["iou"], [5 / 10, 3 / 6, NAN, 0])
    assert_close(m["dice"], [10 / 15, 6 / 9, NAN, 0])
    assert_close(m["precision"], [5 / 7, 3 / 4, NAN, 0])
    assert_close(m["recall"], [5 / 8, 3 / 5, NAN, NAN])
    assert_close(m["fscore"], m["dice"])  # beta = 1
    assert m["miou"] == pytest.approx((0.5 + 0.5 + 0) / 3)  # the predicted-only class counts
    assert m["mdice"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert m["mprecision"] == pytest.approx((5 / 7 + 3 / 4 + 0) / 3)
    assert m["macc"] == m["mrecall"] == pytest.approx((5 / 8 + 3 / 5) / 2)
    assert m["aacc"] == pytest.approx(8 / 13)
    assert m["fwiou"] == pytest.approx((8 * 0.5 + 5 * 0.5) / 13)
    np.testing.assert_array_equal(m["support"], [8, 5, 0, 0])
    assert isinstance(m["miou"], float)


def test_detectron2_convention():
    # SemSegEvaluator: per-class values only for classes with ground truth.
    m = fastiou.segmentation_metrics(MATRIX, convention="detectron2")
    assert_close(m["iou"], [0.5, 0.5, NAN, NAN])
    assert m["miou"] == pytest.approx(0.5)
    assert m["macc"] == pytest.approx((5 / 8 + 3 / 5) / 2)
    assert m["aacc"] == pytest.approx(8 / 13)
    assert m["fwiou"] == pytest.approx(0.5)
    assert_close(m["precision"], [5 / 7, 3 / 4, NAN, NAN])


def test_torchmetrics_convention():
    # average="macro": undefined -> zero_division, classes with TP+FP+FN == 0 left out of means.
    m = fastiou.segmentation_metrics(MATRIX, convention="torchmetrics")
    assert_close(m["iou"], [0.5, 0.5, 0, 0])
    assert m["miou"] == pytest.approx(1 / 3)
    assert_close(m["recall"], [5 / 8, 3 / 5, 0, 0])
    assert m["mrecall"] == pytest.approx((5 / 8 + 3 / 5 + 0) / 3)
    m = fastiou.segmentation_metrics(MATRIX, convention="torchmetrics", zero_division=1.0)
    assert_close(m["recall"], [5 / 8, 3 / 5, 1, 1])


def test_torchmetrics_peer_when_installed():
    torch = require_peer("torch")
    tm = require_peer("torchmetrics.functional.classification")
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, (4, 16, 16))
    prediction = rng.integers(0, 6, (4, 16, 16)) % 5
    target[target == 3] = 4  # class 3 only predicted
    matrix = fastiou.confusion_matrix(prediction, target, 6)  # class 5 absent from both
    ours = fastiou.segmentation_metrics(matrix, convention="torchmetrics")
    theirs = tm.multiclass_jaccard_index(
        torch.from_numpy(prediction), torch.from_numpy(target), 6, average="macro"
    )
    assert ours["miou"] == pytest.approx(float(theirs), rel=1e-6)


def test_fbeta():
    m = fastiou.segmentation_metrics(MATRIX, beta=2.0)
    assert m["fscore"][0] == pytest.approx(5 * 5 / (5 * 5 + 4 * 3 + 2))
    assert m["fscore"][3] == 0


def test_all_ignored_and_empty():
    m = fastiou.segmentation_metrics(np.zeros((3, 3), np.int64))
    assert math.isnan(m["miou"]) and math.isnan(m["aacc"]) and math.isnan(m["fwiou"])
    m = fastiou.segmentation_metrics(np.zeros((3, 3), np.int64), convention="torchmetrics")
    assert m["miou"] == 0 and m["aacc"] == 0


def test_leading_dimensions():
    stack = np.stack([MATRIX, MATRIX.T, np.eye(4, dtype=int)])
    m = fastiou.segmentation_metrics(stack)
    assert m["iou"].shape == (3, 4) and m["miou"].shape == (3,)
    assert m["miou"][0] == pytest.approx(fastiou.segmentation_metrics(MATRIX)["miou"])
    assert m["miou"][2] == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"matrix": np.zeros((2, 3))}, "square"),
        ({"matrix": np.zeros(3)}, "square"),
        ({"matrix": MATRIX, "convention": "sklearn"}, "convention"),
        ({"matrix": MATRIX, "beta": 0}, "beta"),
    ],
)
def test_metric_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastiou.segmentation_metrics(**kwargs)


# ---------------------------------------------------------------------------------------------
# Accumulator
# ---------------------------------------------------------------------------------------------


def images(n, shape=(6, 7), num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        target = rng.integers(0, num_classes, shape).astype(np.uint8)
        target[rng.random(shape) < 0.1] = 255
        yield rng.integers(0, num_classes, shape).astype(np.uint8), target


def test_accumulates_dataset_level():
    acc = fastiou.ConfusionMatrix(4, ignore_index=255)
    want = np.zeros((4, 4), np.int64)
    for prediction, target in images(5):
        got = acc.update(prediction, target)
        np.testing.assert_array_equal(got, oracle(prediction, target, 4, ignore_index=255))
        want += got
    np.testing.assert_array_equal(acc.matrix, want)
    assert acc.images == 5
    assert acc.compute()["miou"] == fastiou.segmentation_metrics(want)["miou"]
    assert "images=5" in repr(acc)


def test_per_image_and_batches():
    pairs = list(images(4, seed=1))
    acc = fastiou.ConfusionMatrix(4, ignore_index=255, per_image=True)
    acc.update(pairs[0][0], pairs[0][1])
    acc.update(np.stack([p for p, _ in pairs[1:]]), np.stack([t for _, t in pairs[1:]]), batch=True)
    per_image = acc.per_image_matrices
    assert per_image.shape == (4, 4, 4) and acc.images == 4
    for (prediction, target), m in zip(pairs, per_image, strict=True):
        np.testing.assert_array_equal(m, oracle(prediction, target, 4, ignore_index=255))
    np.testing.assert_array_equal(per_image.sum(0), acc.matrix)
    metrics = acc.compute_per_image()
    assert metrics["iou"].shape == (4, 4) and metrics["miou"].shape == (4,)
    with pytest.raises(ValueError, match="per_image=False"):
        fastiou.ConfusionMatrix(4).per_image_matrices  # noqa: B018


def test_merge_add_sum_and_pickle():
    pairs = list(images(6, seed=2))
    shards = []
    for part in (pairs[:2], pairs[2:5], pairs[5:]):
        acc = fastiou.ConfusionMatrix(4, ignore_index=255, per_image=True)
        for prediction, target in part:
            acc.update(prediction, target)
        shards.append(pickle.loads(pickle.dumps(acc)))
    whole = fastiou.ConfusionMatrix(4, ignore_index=255, per_image=True)
    for prediction, target in pairs:
        whole.update(prediction, target)
    total = shards[0] + shards[1] + shards[2]
    np.testing.assert_array_equal(total.matrix, whole.matrix)
    np.testing.assert_array_equal(total.per_image_matrices, whole.per_image_matrices)
    np.testing.assert_array_equal(sum(shards).matrix, whole.matrix)
    assert shards[0].images == 2  # + made a new accumulator
    shards[0] += shards[1]
    assert shards[0].images == 5


def test_merge_refuses_other_settings():
    a = fastiou.ConfusionMatrix(4, ignore_index=255)
    with pytest.raises(ValueError, match="different settings"):
        a.merge(fastiou.ConfusionMatrix(4, ignore_index=0))
    with pytest.raises(ValueError, match="different settings"):
        a + fastiou.ConfusionMatrix(5, ignore_index=255)
    with pytest.raises(ValueError, match="per-image"):
        a + fastiou.ConfusionMatrix(4, ignore_index=255, per_image=True)
    with pytest.raises(TypeError):
        a + 1
    b = fastiou.ConfusionMatrix(4, ignore_index=[255], label_map=np.arange(4))
    c = fastiou.ConfusionMatrix(4, ignore_index=255, label_map={0: 0, 1: 1, 2: 2, 3: 3})
    assert (b + c).images == 0


def test_failed_update_changes_nothing():
    acc = fastiou.ConfusionMatrix(3, per_image=True)
    acc.update(np.array([0, 1]), np.array([0, 1]))
    batch_target = np.array([[0, 1], [2, 7]])
    with pytest.raises(ValueError, match="target label 7"):
        acc.update(np.zeros((2, 2), int), batch_target, batch=True)
    assert acc.images == 1 and acc.matrix.sum() == 2 and len(acc.per_image_matrices) == 1
    acc.reset()
    assert acc.images == 0 and acc.matrix.sum() == 0
