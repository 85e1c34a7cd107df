"""Property tests: every backend agrees with the numpy reference on arbitrary boxes and layouts."""

import math

import numpy as np
import pytest
from conftest import BACKENDS, CUDA_MAX_BOXES, OPERATIONS, ensure_available
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastiou

MAX_EXAMPLES = 40
CUDA_MAX_EXAMPLES = 15  # each simulated launch runs its threads as Python code
CPU_MAX_BOXES = 12
CUDA_PROPERTY_BOXES = min(8, CUDA_MAX_BOXES)

# Coordinates exactly representable in float32 (so float32 and float64 runs see the same boxes):
# small integers make coincident edges, zero-area and inverted boxes common; the float range
# gives arbitrary overlaps; NaN and +-inf appear now and then.
COORDINATES = st.one_of(
    st.integers(-4, 4).map(float),
    st.floats(-1e3, 1e3, width=32),
    st.floats(-1e3, 1e3, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
FINITE_COORDINATES = st.one_of(st.integers(-4, 4).map(float), st.floats(-1e3, 1e3, width=32))
LAYOUTS = ("contiguous", "strided", "fortran", "reversed_columns", "big_endian")


def tolerance(dtype) -> dict:
    if np.dtype(dtype) == np.float32:
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-12}


def with_layout(boxes: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``boxes`` in another memory layout."""
    if layout == "strided":  # every other row of a bigger array
        bigger = np.full((2 * boxes.shape[0],) + boxes.shape[1:], 12345.0, boxes.dtype)
        bigger[::2] = boxes
        return bigger[::2]
    if layout == "fortran":
        return np.asfortranarray(boxes)
    if layout == "reversed_columns":
        return np.ascontiguousarray(boxes[:, ::-1])[:, ::-1]
    if layout == "big_endian":
        return boxes.astype(boxes.dtype.newbyteorder(">"))
    return boxes


def _settings(backend: str):
    examples = CUDA_MAX_EXAMPLES if backend == "cuda" else MAX_EXAMPLES
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _boxes(n: int, elements) -> st.SearchStrategy:
    return arrays(np.float64, (n, 4), elements=elements)


@pytest.fixture(params=[name for name in BACKENDS if name != "numpy"])
def compiled(request, small_cuda_blocks) -> str:
    """Each backend but numpy, for the tests whose oracle is the numpy backend itself (numpy's
    own numbers are checked by hand and against torchvision in test_boxes.py, test_torch.py)."""
    ensure_available(request.param)
    return request.param


def test_backend_agrees_with_reference(compiled):
    """Any layout, dtype, format and option: the result of the reference on plain arrays."""
    max_boxes = CUDA_PROPERTY_BOXES if compiled == "cuda" else CPU_MAX_BOXES

    @_settings(compiled)
    @given(data=st.data())
    def check(data):
        op = data.draw(st.sampled_from(OPERATIONS), label="op")
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        aligned = data.draw(st.booleans(), label="aligned")
        n = data.draw(st.integers(0, max_boxes), label="n")
        m = n if aligned else data.draw(st.integers(0, max_boxes), label="m")
        boxes1 = data.draw(_boxes(n, COORDINATES), label="boxes1").astype(dtype)
        boxes2 = data.draw(_boxes(m, COORDINATES), label="boxes2").astype(dtype)
        kwargs = {
            "aligned": aligned,
            "fmt": data.draw(st.sampled_from(["xyxy", "xywh", "cxcywh"]), label="fmt"),
            "offset": data.draw(st.sampled_from([0, 1]), label="offset"),
            "degenerate": data.draw(st.sampled_from(["nan", "zero"]), label="degenerate"),
        }
        layout1 = data.draw(st.sampled_from(LAYOUTS), label="layout1")
        layout2 = data.draw(st.sampled_from(LAYOUTS), label="layout2")
        want = op(boxes1, boxes2, backend="numpy", **kwargs)
        got = op(
            with_layout(boxes1, layout1), with_layout(boxes2, layout2), backend=compiled, **kwargs
        )
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, equal_nan=True, **tolerance(dtype))

    check()


def test_backend_agrees_batched(compiled):
    """Broadcast batch dimensions on any backend give the reference result."""
    max_boxes = 4 if compiled == "cuda" else 8

    @_settings(compiled)
    @given(data=st.data())
    def check(data):
        op = data.draw(st.sampled_from(OPERATIONS), label="op")
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        n = data.draw(st.integers(0, max_boxes), label="n")
        m = data.draw(st.integers(0, max_boxes), label="m")
        batch1 = data.draw(st.sampled_from([(), (1,), (2, 1), (2, 3)]), label="batch1")
        batch2 = data.draw(st.sampled_from([(), (1,), (3,), (1, 3)]), label="batch2")
        boxes1 = data.draw(arrays(np.float64, batch1 + (n, 4), elements=FINITE_COORDINATES))
        boxes2 = data.draw(arrays(np.float64, batch2 + (m, 4), elements=FINITE_COORDINATES))
        boxes1, boxes2 = boxes1.astype(dtype), boxes2.astype(dtype)
        got = op(boxes1, boxes2, backend=compiled)
        batch = np.broadcast_shapes(batch1, batch2)
        assert got.shape == batch + (n, m) and got.dtype == dtype
        b1 = np.broadcast_to(boxes1, batch + (n, 4))
        b2 = np.broadcast_to(boxes2, batch + (m, 4))
        for index in np.ndindex(*batch):
            want = op(b1[index], b2[index], backend="numpy")
            np.testing.assert_allclose(got[index], want, equal_nan=True, **tolerance(dtype))

    check()


def test_overlap_identities(backend):
    """On proper boxes (positive width and height): IoU in [0, 1] and symmetric, GIoU in
    [-1, IoU], DIoU and CIoU at most IoU, IoA over boxes2 is IoA over boxes1 of the swapped
    pair, and IoA is at least IoU."""
    max_boxes = CUDA_PROPERTY_BOXES if backend == "cuda" else CPU_MAX_BOXES
    corner = st.floats(-1e3, 1e3, width=32)
    size = st.one_of(st.integers(1, 4).map(float), st.floats(2**-6, 1e3, width=32))

    @_settings(backend)
    @given(data=st.data())
    def check(data):
        def draw_boxes(label):
            n = data.draw(st.integers(1, max_boxes), label=f"n_{label}")
            corners = data.draw(arrays(np.float64, (n, 2), elements=corner), label=label)
            sizes = data.draw(arrays(np.float64, (n, 2), elements=size), label=f"{label}_wh")
            return np.concatenate([corners, corners + sizes], axis=1)

        a, b = draw_boxes("boxes1"), draw_boxes("boxes2")
        tol = {"rtol": 1e-12, "atol": 1e-12}
        iou = fastiou.box_iou(a, b, backend=backend)
        assert ((iou >= 0) & (iou <= 1 + 1e-12)).all()
        np.testing.assert_allclose(fastiou.box_iou(b, a, backend=backend).T, iou, **tol)
        giou = fastiou.generalized_box_iou(a, b, backend=backend)
        assert ((giou >= -1 - 1e-12) & (giou <= iou + 1e-12)).all()
        assert (fastiou.distance_box_iou(a, b, backend=backend) <= iou + 1e-12).all()
        assert (fastiou.complete_box_iou(a, b, backend=backend) <= iou + 1e-12).all()
        ioa1 = fastiou.box_ioa(a, b, backend=backend)
        ioa2 = fastiou.box_ioa(b, a, over="boxes2", backend=backend)
        np.testing.assert_allclose(ioa2.T, ioa1, **tol)
        assert (ioa1 >= iou - 1e-12).all()

    check()


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_convert_round_trip(fmt):
    """xyxy -> fmt -> xyxy gives the boxes back, with the same areas."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None)
    @given(
        boxes=arrays(
            np.float64, st.tuples(st.integers(0, 6), st.just(4)), elements=st.floats(-1e3, 1e3)
        )
    )
    def check(boxes):
        there = fastiou.box_convert(boxes, "xyxy", fmt)
        np.testing.assert_allclose(fastiou.box_convert(there, fmt, "xyxy"), boxes, atol=1e-9)
        np.testing.assert_allclose(
            fastiou.box_area(there, fmt=fmt), fastiou.box_area(boxes), rtol=1e-9, atol=1e-6
        )

    check()
