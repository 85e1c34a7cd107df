"""Malformed input: every public function raises a clear ValueError or TypeError."""

import numpy as np
import pytest
from conftest import require_peer

import fastiou

BOXES = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
OVERLAPS = [
    fastiou.box_iou,
    fastiou.generalized_box_iou,
    fastiou.distance_box_iou,
    fastiou.complete_box_iou,
    fastiou.box_ioa,
]
WITH_EPS = [fastiou.distance_box_iou, fastiou.complete_box_iou]


def box_convert(boxes, **kwargs):
    return fastiou.box_convert(boxes, "xyxy", "cxcywh", **kwargs)


UNARY = [fastiou.box_area, box_convert]
overlaps = pytest.mark.parametrize("func", OVERLAPS, ids=lambda f: f.__name__)
unary = pytest.mark.parametrize("func", UNARY, ids=["box_area", "box_convert"])

NOT_REAL = {
    "complex": np.zeros((2, 4), np.complex128),
    "bool": np.ones((2, 4), bool),
    "object": np.array([[0, 0, 1, None]] * 2, dtype=object),
    "string": np.array([["0", "0", "1", "1"]] * 2),
    "datetime": np.zeros((2, 4), "datetime64[s]"),
}


@overlaps
@pytest.mark.parametrize("side", ["boxes1", "boxes2"])
@pytest.mark.parametrize("shape", [(2, 5), (2, 3), (3, 2, 0), (4,), (2,)], ids=str)
def test_overlap_wrong_shape(func, side, shape):
    """A last dim other than 4, or 1-D input, names the argument and its shape."""
    bad = np.zeros(shape)
    args = (bad, BOXES) if side == "boxes1" else (BOXES, bad)
    message = rf"{side} must have shape \[\.\.\., N, 4\], got \[{', '.join(map(str, shape))}\]"
    with pytest.raises(ValueError, match=message):
        func(*args)


@overlaps
def test_overlap_scalar(func):
    with pytest.raises(ValueError, match=r"boxes1 must have shape \[\.\.\., N, 4\], got \[\]"):
        func(np.float64(1.0), BOXES)


@overlaps
@pytest.mark.parametrize("kind", NOT_REAL)
@pytest.mark.parametrize("side", ["boxes1", "boxes2"])
def test_overlap_not_real(func, kind, side):
    bad = NOT_REAL[kind]
    args = (bad, BOXES) if side == "boxes1" else (BOXES, bad)
    with pytest.raises(TypeError, match=f"{side} must hold real numbers"):
        func(*args)


@overlaps
def test_overlap_not_an_array(func):
    with pytest.raises(TypeError, match="boxes2 must be an array, got list"):
        func(BOXES, [[0, 0, 1, 1], [0, 0, 1]])


@overlaps
@pytest.mark.parametrize("fmt", ["xyzw", "XYXY", "", None])
def test_overlap_unknown_fmt(func, fmt):
    with pytest.raises(ValueError, match=f"fmt must be one of xyxy, xywh, cxcywh; got {fmt!r}"):
        func(BOXES, BOXES, fmt=fmt)


@overlaps
@pytest.mark.parametrize("offset", [2, -1, 0.5, True, "1", None])
def test_overlap_bad_offset(func, offset):
    with pytest.raises(ValueError, match="offset must be 0 or 1"):
        func(BOXES, BOXES, offset=offset)


@overlaps
@pytest.mark.parametrize("degenerate", ["NaN", "inf", "", None])
def test_overlap_bad_degenerate(func, degenerate):
    with pytest.raises(ValueError, match="degenerate must be 'nan' or 'zero'"):
        func(BOXES, BOXES, degenerate=degenerate)


@overlaps
def test_overlap_aligned_mismatch(func):
    with pytest.raises(
        ValueError, match="aligned=True needs as many boxes1 as boxes2, got 2 and 3"
    ):
        func(BOXES, np.zeros((3, 4)), aligned=True)
    with pytest.raises(
        ValueError, match="aligned=True needs as many boxes1 as boxes2, got 0 and 2"
    ):
        func(np.zeros((5, 0, 4)), BOXES, aligned=True)


@overlaps
@pytest.mark.parametrize(
    "shape1, shape2", [((2, 2, 4), (3, 2, 4)), ((2, 3, 2, 4), (2, 2, 4)), ((4, 2, 2, 4), (3, 5, 4))]
)
def test_overlap_batch_mismatch(func, shape1, shape2):
    with pytest.raises(ValueError, match="batch dimensions of boxes1 .* do not broadcast"):
        func(np.zeros(shape1), np.zeros(shape2))


@pytest.mark.parametrize("over", ["boxes3", "first", "", None])
def test_box_ioa_bad_over(over):
    with pytest.raises(ValueError, match="over must be 'boxes1' or 'boxes2'"):
        fastiou.box_ioa(BOXES, BOXES, over=over)


@pytest.mark.parametrize("func", WITH_EPS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("eps", [-1e-7, -1.0, float("nan"), float("inf"), None])
def test_bad_eps(func, eps):
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        func(BOXES, BOXES, eps=eps)


@overlaps
def test_overlap_bad_backend(func):
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        func(BOXES, BOXES, backend="fast")


@unary
@pytest.mark.parametrize("shape", [(2, 5), (2, 3), (5,), (3,)], ids=str)
def test_unary_wrong_shape(func, shape):
    """A last dim other than 4 is an error (a single 1-D box of 4 is [..., 4] and allowed)."""
    with pytest.raises(ValueError, match=r"boxes must have shape \[\.\.\., 4\]"):
        func(np.zeros(shape))


@unary
def test_unary_scalar(func):
    with pytest.raises(ValueError, match=r"boxes must have shape \[\.\.\., 4\], got \[\]"):
        func(np.float64(1.0))


@unary
def test_unary_single_box(func):
    """One box as a 1-D array is [..., 4] (as in torchvision): it is accepted, not an error."""
    got = func(np.array([0.0, 0.0, 2.0, 4.0]))
    want = 8.0 if func is fastiou.box_area else [1.0, 2.0, 2.0, 4.0]
    np.testing.assert_array_equal(got, want)


@unary
@pytest.mark.parametrize("kind", NOT_REAL)
def test_unary_not_real(func, kind):
    with pytest.raises(TypeError, match="boxes must hold real numbers"):
        func(NOT_REAL[kind])


def test_box_area_bad_fmt_and_offset():
    with pytest.raises(ValueError, match="fmt must be one of xyxy, xywh, cxcywh; got 'xyzw'"):
        fastiou.box_area(BOXES, fmt="xyzw")
    for offset in (2, -1, 0.5, True):
        with pytest.raises(ValueError, match="offset must be 0 or 1"):
            fastiou.box_area(BOXES, offset=offset)


@pytest.mark.parametrize("side", ["in_fmt", "out_fmt"])
@pytest.mark.parametrize("fmt", ["xyzw", "xywhr", None])
def test_box_convert_bad_fmt(side, fmt):
    formats = {"in_fmt": "xyxy", "out_fmt": "xywh", side: fmt}
    with pytest.raises(ValueError, match=f"{side} must be one of xyxy, xywh, cxcywh; got {fmt!r}"):
        fastiou.box_convert(BOXES, **formats)


def test_torch_not_real():
    """Bool and complex tensors are refused like their numpy twins."""
    torch = require_peer("torch", reason="torch is not installed")
    for bad in (torch.ones(2, 4, dtype=torch.bool), torch.zeros(2, 4, dtype=torch.complex64)):
        for func in OVERLAPS:
            with pytest.raises(TypeError, match="boxes1 must hold real numbers"):
                func(bad, torch.from_numpy(BOXES))
        for func in UNARY:
            with pytest.raises(TypeError, match="boxes must hold real numbers"):
                func(bad)
