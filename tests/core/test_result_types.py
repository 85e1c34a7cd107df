"""What each public function returns for numpy, list, torch (CPU and CUDA) and cupy input.

One test per row of README's "Result types" table: the box family and NMS give the caller's
array type on the caller's device; confusion counts, segmentation metrics and COCO evaluation
always give numpy (small arrays and Python numbers). The CUDA rows need a GPU (torch CUDA or
cupy, with FASTIOU_TEST_REAL_GPU=1) and skip with that reason elsewhere.
"""

import numpy as np
import pytest
from conftest import require_peer

import fastiou

BOXES = [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0]]
SCORES = [0.9, 0.8, 0.7]
LABELS = [0, 1, 0]
TARGET = [[0, 1], [2, 2]]
PREDICTION = [[0, 2], [2, 1]]


def torch_cuda():
    torch = require_peer("torch")
    if not (torch.cuda.is_available() and fastiou.backends()["cuda"].available):
        pytest.skip("needs a CUDA GPU for torch and numba (set FASTIOU_TEST_REAL_GPU=1)")
    return torch


def as_library(library: str, values, dtype=None):
    """``values`` as a numpy array, a list, a torch CPU tensor, a torch CUDA tensor or cupy."""
    array = np.asarray(values, dtype)
    if library == "numpy":
        return array
    if library == "list":
        return array.tolist()
    if library == "torch":
        return require_peer("torch").from_numpy(array)
    if library == "torch-cuda":
        return torch_cuda().from_numpy(array).cuda()
    cupy = require_peer("cupy", reason="cupy is not installed (needs a CUDA GPU)")
    return cupy.asarray(array)


LIBRARIES = ["numpy", "list", "torch", "torch-cuda", "cupy"]


def assert_callers_type(result, library: str) -> None:
    if library in ("numpy", "list"):
        assert isinstance(result, np.ndarray), type(result)
    elif library == "torch":
        assert type(result).__module__.startswith("torch") and result.device.type == "cpu"
    elif library == "torch-cuda":
        assert type(result).__module__.startswith("torch") and result.device.type == "cuda"
    else:
        assert type(result).__module__.startswith("cupy")


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    "func",
    [
        fastiou.box_iou,
        fastiou.generalized_box_iou,
        fastiou.distance_box_iou,
        fastiou.complete_box_iou,
        fastiou.box_ioa,
    ],
    ids=lambda f: f.__name__,
)
def test_overlaps_return_the_callers_type(func, library):
    boxes = as_library(library, BOXES, np.float32)
    result = func(boxes, boxes)
    assert_callers_type(result, library)
    assert tuple(result.shape) == (3, 3)
    want = func(np.asarray(BOXES, np.float32), np.asarray(BOXES, np.float32), backend="numpy")
    np.testing.assert_allclose(fastiou_to_numpy(result), want, rtol=1e-6)


@pytest.mark.parametrize("library", LIBRARIES)
def test_box_area_and_convert_return_the_callers_type(library):
    boxes = as_library(library, BOXES, np.float32)
    area = fastiou.box_area(boxes)
    assert_callers_type(area, library)
    np.testing.assert_allclose(fastiou_to_numpy(area), [4, 4, 2])
    converted = fastiou.box_convert(boxes, "xyxy", "xywh")
    assert_callers_type(converted, library)
    np.testing.assert_allclose(fastiou_to_numpy(converted)[1], [1, 1, 2, 2])


@pytest.mark.parametrize("library", LIBRARIES)
def test_nms_family_returns_the_callers_type(library):
    boxes = as_library(library, BOXES, np.float32)
    scores = as_library(library, SCORES, np.float32)
    labels = as_library(library, LABELS, np.int64)
    keep = fastiou.nms(boxes, scores, 0.4)
    assert_callers_type(keep, library)
    np.testing.assert_array_equal(fastiou_to_numpy(keep), [0, 1])  # box 2 is half of box 0: IoU 0.5
    keep = fastiou.batched_nms(boxes, scores, labels, 0.4)
    assert_callers_type(keep, library)
    np.testing.assert_array_equal(fastiou_to_numpy(keep), [0, 1])
    keep, new_scores = fastiou.soft_nms(boxes, scores)
    assert_callers_type(keep, library)
    assert_callers_type(new_scores, library)


@pytest.mark.parametrize("library", LIBRARIES)
def test_confusion_counts_and_metrics_are_always_numpy(library):
    prediction = as_library(library, PREDICTION, np.int64)
    target = as_library(library, TARGET, np.int64)
    matrix = fastiou.confusion_matrix(prediction, target, 3)
    assert isinstance(matrix, np.ndarray) and matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    multilabel = fastiou.multilabel_confusion_matrix(
        as_library(library, [[[1, 0]], [[0, 1]]], np.uint8),
        as_library(library, [[[1, 1]], [[0, 1]]], np.uint8),
        class_axis=0,
    )
    assert isinstance(multilabel, np.ndarray) and multilabel.shape == (2, 2, 2)
    acc = fastiou.ConfusionMatrix(3)
    counts = acc.update(prediction, target)
    assert isinstance(counts, np.ndarray) and isinstance(acc.matrix, np.ndarray)
    metrics = fastiou.segmentation_metrics(matrix)
    assert isinstance(metrics["iou"], np.ndarray) and isinstance(metrics["miou"], float)


@pytest.mark.parametrize("library", LIBRARIES)
def test_coco_evaluation_is_always_numpy(library):
    require_peer("pycocotools")  # the evaluation's contract; fastiou.coco itself needs no peer
    from fastiou.coco import evaluate_detections

    preds = [
        {
            "boxes": as_library(library, BOXES, np.float32),
            "scores": as_library(library, SCORES, np.float32),
            "labels": as_library(library, LABELS, np.int64),
        }
    ]
    targets = [
        {
            "boxes": as_library(library, BOXES[:2], np.float32),
            "labels": as_library(library, LABELS[:2], np.int64),
        }
    ]
    E = evaluate_detections(preds=preds, targets=targets, box_format="xyxy")
    assert isinstance(E.eval["precision"], np.ndarray)
    assert all(isinstance(v, float) for v in E.metrics().values())


def fastiou_to_numpy(x) -> np.ndarray:
    from fastiou._core.arrays import to_numpy

    return to_numpy(x)
