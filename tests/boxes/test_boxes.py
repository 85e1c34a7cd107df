"""The box-overlap family on every backend: hand-computed values, the numpy reference, shapes,
dtypes, formats, ``out=`` and array layouts; box_area and box_convert."""

import itertools
import math
import os
import warnings

import numpy as np
import pytest
from conftest import (
    BACKENDS,
    DTYPE_PAIRS,
    OPERATIONS,
    ensure_available,
    max_boxes,
    overlap_dtype,
    random_boxes,
    require_peer,
)

import fastiou
from fastiou._core import config as _config

EPS = 1e-7  # DIoU / CIoU default eps, as torchvision
NAN = math.nan
INF = math.inf
COMPILED = [name for name in BACKENDS if name != "numpy"]


def tolerance(dtype) -> dict:
    """Agreement expected between two implementations of the same formula in ``dtype``."""
    if np.dtype(dtype) == np.float32:
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-12}


def assert_matches(got, want, dtype) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, equal_nan=True, **tolerance(dtype))


@pytest.fixture(params=COMPILED)
def compiled_backend(request, small_cuda_blocks, monkeypatch) -> str:
    """Each backend other than the numpy reference (compared against it), with the Cython
    kernels' small-work serial shortcut off so that their OpenMP path runs on small inputs."""
    ensure_available(request.param)
    monkeypatch.setattr(_config, "PARALLEL_MIN_WORK", 0, raising=False)
    return request.param


def ciou_by_hand(iou, d2, c2, wh_a, wh_b, eps=EPS):
    v = 4 / math.pi**2 * (math.atan(wh_a[0] / wh_a[1]) - math.atan(wh_b[0] / wh_b[1])) ** 2
    alpha = v / (1 - iou + v + eps)
    return iou - d2 / (c2 + eps) - alpha * v


# (id, box a, box b, keywords, {operation: expected}, dtypes). Every number is worked out from
# the definitions: inter, union, enclosing box C, centre distance d^2, C's diagonal c^2.
HAND_CASES = [
    # inter 1, areas 4 + 4, union 7; C = [0, 0, 3, 3]: area 9, c^2 18; d^2 = 2.
    (
        "overlap",
        [0, 0, 2, 2],
        [1, 1, 3, 3],
        {},
        {
            "iou": 1 / 7,
            "giou": 1 / 7 - 2 / 9,
            "diou": 1 / 7 - 2 / (18 + EPS),
            "ciou": 1 / 7 - 2 / (18 + EPS),  # same aspect ratio: v = 0
            "ioa1": 1 / 4,
            "ioa2": 1 / 4,
        },
        (np.float32, np.float64),
    ),
    # The same two boxes moved to negative coordinates, one straddling zero.
    (
        "negative",
        [-1, -21, 1, -19],
        [0, -20, 2, -18],
        {},
        {
            "iou": 1 / 7,
            "giou": 1 / 7 - 2 / 9,
            "diou": 1 / 7 - 2 / (18 + EPS),
            "ciou": 1 / 7 - 2 / (18 + EPS),
            "ioa1": 1 / 4,
            "ioa2": 1 / 4,
        },
        (np.float32, np.float64),
    ),
    # Scaled by 1e30: areas 4e60, c^2 1.8e61 — fine in float64, eps negligible.
    (
        "huge",
        [0, 0, 2e30, 2e30],
        [1e30, 1e30, 3e30, 3e30],
        {},
        {
            "iou": 1 / 7,
            "giou": 1 / 7 - 2 / 9,
            "diou": 1 / 7 - 1 / 9,
            "ciou": 1 / 7 - 1 / 9,
            "ioa1": 1 / 4,
            "ioa2": 1 / 4,
        },
        (np.float64,),
    ),
    # Sharing an edge: inter 0; C = [0, 0, 2, 1] area 2 = union; d^2 1, c^2 5.
    (
        "touching_edge",
        [0, 0, 1, 1],
        [1, 0, 2, 1],
        {},
        {"iou": 0, "giou": 0, "diou": -1 / (5 + EPS), "ciou": -1 / (5 + EPS), "ioa1": 0, "ioa2": 0},
        (np.float32, np.float64),
    ),
    # Sharing a corner: inter 0, union 2; C = [0, 0, 2, 2] area 4; d^2 2, c^2 8.
    (
        "touching_corner",
        [0, 0, 1, 1],
        [1, 1, 2, 2],
        {},
        {
            "iou": 0,
            "giou": -0.5,
            "diou": -2 / (8 + EPS),
            "ciou": -2 / (8 + EPS),
            "ioa1": 0,
            "ioa2": 0,
        },
        (np.float32, np.float64),
    ),
    # Apart: union 2; C = [0, 0, 3, 3] area 9; d^2 8, c^2 18.
    (
        "disjoint",
        [0, 0, 1, 1],
        [2, 2, 3, 3],
        {},
        {
            "iou": 0,
            "giou": -7 / 9,
            "diou": -8 / (18 + EPS),
            "ciou": -8 / (18 + EPS),
            "ioa1": 0,
            "ioa2": 0,
        },
        (np.float32, np.float64),
    ),
    # b (1 x 2) inside a (4 x 4): inter 2, union 16, C = a; d^2 0.25, c^2 32; aspects differ.
    (
        "containment",
        [0, 0, 4, 4],
        [1, 1, 2, 3],
        {},
        {
            "iou": 1 / 8,
            "giou": 1 / 8,
            "diou": 1 / 8 - 0.25 / (32 + EPS),
            "ciou": ciou_by_hand(1 / 8, 0.25, 32, (4, 4), (1, 2)),
            "ioa1": 1 / 8,
            "ioa2": 1,
        },
        (np.float32, np.float64),
    ),
    (
        "identical",
        [1, 2, 4, 8],
        [1, 2, 4, 8],
        {},
        {"iou": 1, "giou": 1, "diou": 1, "ciou": 1, "ioa1": 1, "ioa2": 1},
        (np.float32, np.float64),
    ),
    # offset=1: a point box covers one pixel, b four; inter 1, union 4; C 2 x 2; d^2 0.5, c^2 8.
    (
        "pixel_offset",
        [0, 0, 0, 0],
        [0, 0, 1, 1],
        {"offset": 1},
        {
            "iou": 1 / 4,
            "giou": 1 / 4,
            "diou": 1 / 4 - 0.5 / (8 + EPS),
            "ciou": 1 / 4 - 0.5 / (8 + EPS),
            "ioa1": 1,
            "ioa2": 1 / 4,
        },
        (np.float32, np.float64),
    ),
    # A point against itself: every ratio is 0/0 -> NaN (torchvision).
    (
        "point_self_nan",
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        {},
        {op.name: NAN for op in OPERATIONS},
        (np.float32, np.float64),
    ),
    # ... and 0 under degenerate="zero" (CIoU: both aspect ratios 0/0 -> 0, so v = 0).
    (
        "point_self_zero",
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        {"degenerate": "zero"},
        {op.name: 0 for op in OPERATIONS},
        (np.float32, np.float64),
    ),
    # A zero-height line inside a 2 x 2 box: only IoA over the line has a zero denominator.
    # union 4 = C; d^2 1, c^2 8; aspects: atan(2/0) = pi/2 vs pi/4 -> v = 1/4.
    (
        "line_vs_box_nan",
        [0, 0, 2, 0],
        [0, 0, 2, 2],
        {},
        {
            "iou": 0,
            "giou": 0,
            "diou": -1 / (8 + EPS),
            "ciou": -1 / (8 + EPS) - 0.25 / (1.25 + EPS) * 0.25,
            "ioa1": NAN,
            "ioa2": 0,
        },
        (np.float32, np.float64),
    ),
    # degenerate="zero": IoA over the line is 0; its aspect ratio 2/0 becomes 0, so v is
    # 4/pi^2 (0 - pi/4)^2 = 1/4 again.
    (
        "line_vs_box_zero",
        [0, 0, 2, 0],
        [0, 0, 2, 2],
        {"degenerate": "zero"},
        {
            "iou": 0,
            "giou": 0,
            "diou": -1 / (8 + EPS),
            "ciou": -1 / (8 + EPS) - 0.25 / (1.25 + EPS) * 0.25,
            "ioa1": 0,
            "ioa2": 0,
        },
        (np.float32, np.float64),
    ),
    # NaN in -> NaN out, under either policy and on either side.
    (
        "nan_first",
        [NAN, 0, 1, 1],
        [0, 0, 1, 1],
        {},
        {op.name: NAN for op in OPERATIONS},
        (np.float32, np.float64),
    ),
    (
        "nan_second_zero",
        [0, 0, 1, 1],
        [0, 0, 1, NAN],
        {"degenerate": "zero"},
        {op.name: NAN for op in OPERATIONS},
        (np.float32, np.float64),
    ),
    # An infinitely wide box: inter 1, its area inf -> IoU 0, IoA over it 0, over b 1;
    # C has infinite area and (inf - inf) / inf is NaN, as are the centre terms of DIoU/CIoU.
    (
        "inf",
        [0, 0, INF, 1],
        [0, 0, 1, 1],
        {},
        {"iou": 0, "giou": NAN, "diou": NAN, "ciou": NAN, "ioa1": 0, "ioa2": 1},
        (np.float32, np.float64),
    ),
    (
        "minus_inf",
        [0, 0, 1, 1],
        [-INF, 0, 1, 1],
        {},
        {"iou": 0, "giou": NAN, "diou": NAN, "ciou": NAN, "ioa1": 1, "ioa2": 0},
        (np.float32, np.float64),
    ),
]


@pytest.mark.parametrize(
    "a, b, kwargs, expected, dtypes", [pytest.param(*case[1:], id=case[0]) for case in HAND_CASES]
)
def test_hand_computed_values(op, backend, a, b, kwargs, expected, dtypes):
    """Pairwise and aligned results on box pairs worked out by hand."""
    want = expected[op.name]
    for dtype in dtypes:
        boxes_a = np.array([a], dtype=dtype)
        boxes_b = np.array([b], dtype=dtype)
        rtol, atol = (2e-6, 1e-6) if dtype == np.float32 else (1e-13, 1e-15)
        pairwise = op(boxes_a, boxes_b, backend=backend, **kwargs)
        assert pairwise.shape == (1, 1) and pairwise.dtype == dtype
        np.testing.assert_allclose(pairwise[0, 0], want, rtol=rtol, atol=atol, equal_nan=True)
        aligned = op(boxes_a, boxes_b, aligned=True, backend=backend, **kwargs)
        assert aligned.shape == (1,) and aligned.dtype == dtype
        np.testing.assert_allclose(aligned[0], want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eps(backend, dtype):
    """eps enters the DIoU/CIoU denominators: touching unit squares with eps=1 give -1/6."""
    a = np.array([[0, 0, 1, 1]], dtype)
    b = np.array([[1, 0, 2, 1]], dtype)
    for func in (fastiou.distance_box_iou, fastiou.complete_box_iou):
        np.testing.assert_allclose(func(a, b, eps=1.0, backend=backend), [[-1 / 6]], rtol=1e-6)
        np.testing.assert_allclose(func(a, b, eps=0.0, backend=backend), [[-1 / 5]], rtol=1e-6)
    # Two coincident points: the centre term is 0 / (0 + eps); with eps = 0 it is 0/0.
    point = np.array([[1, 1, 1, 1]], dtype)
    assert fastiou.distance_box_iou(point, point, degenerate="zero", backend=backend)[0, 0] == 0
    assert np.isnan(
        fastiou.distance_box_iou(point, point, eps=0.0, degenerate="zero", backend=backend)[0, 0]
    )


def test_no_floating_point_warnings(op, backend):
    """NaN, inf and zero-area boxes give NaN/inf results quietly, as IEEE arithmetic (no numpy
    RuntimeWarning reaches the caller)."""
    if backend == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("the CUDA simulator runs kernel threads outside numpy's errstate")
    boxes = np.array(
        [[0, 0, 0, 0], [NAN, 0, 1, 1], [0, 0, INF, 1], [-INF, 0, INF, INF], [0, 0, 1, 1]]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fmt, aligned, degenerate in itertools.product(
            ("xyxy", "xywh", "cxcywh"), (False, True), ("nan", "zero")
        ):
            result = op(
                boxes, boxes, fmt=fmt, aligned=aligned, degenerate=degenerate, backend=backend
            )
            assert np.isnan(result).any()


def _mixed_boxes(n: int, m: int, dtype, seed: int = 0):
    """Random boxes with some identical pairs, a zero-width box, a point and an inverted box."""
    b1 = random_boxes(n, np.float64, seed)
    b2 = random_boxes(m, np.float64, seed + 1)
    b2[:2] = b1[:2]
    b1[2, 2] = b1[2, 0]
    b2[3] = b2[3, [0, 1, 0, 1]]
    b1[4] = b1[4, [2, 3, 0, 1]]
    return b1.astype(dtype), b2.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aligned", [False, True], ids=["pairwise", "aligned"])
@pytest.mark.parametrize(
    "degenerate, offset", [("nan", 0), ("zero", 0), ("nan", 1)], ids=["nan", "zero", "offset1"]
)
def test_matches_reference(op, compiled_backend, dtype, aligned, degenerate, offset):
    """Each compiled backend against the numpy reference on random and degenerate boxes."""
    n = max_boxes(compiled_backend, 37)
    m = n if aligned else max_boxes(compiled_backend, 23)
    b1, b2 = _mixed_boxes(n, m, dtype)
    kwargs = {"aligned": aligned, "degenerate": degenerate, "offset": offset}
    want = op(b1, b2, backend="numpy", **kwargs)
    got = op(b1, b2, backend=compiled_backend, **kwargs)
    assert_matches(got, want, dtype)
    if degenerate == "nan" and offset == 0 and not aligned:
        assert np.isnan(want).any()  # the degenerate boxes did reach a 0/0


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_formats(op, backend, fmt, dtype):
    """fmt= gives what converting with box_convert and computing in xyxy gives."""
    n, m = max_boxes(backend, 9), max_boxes(backend, 7)
    rng = np.random.default_rng(3)
    boxes1 = rng.uniform(0, 50, (n, 4)).astype(dtype)
    boxes2 = rng.uniform(0, 50, (m, 4)).astype(dtype)
    got = op(boxes1, boxes2, fmt=fmt, backend=backend)
    xyxy1 = fastiou.box_convert(boxes1, fmt, "xyxy")
    xyxy2 = fastiou.box_convert(boxes2, fmt, "xyxy")
    assert_matches(got, op(xyxy1, xyxy2, backend="numpy"), dtype)
    got_aligned = op(boxes1, boxes2[:1].repeat(n, 0), fmt=fmt, aligned=True, backend=backend)
    assert_matches(
        got_aligned, op(xyxy1, xyxy2[:1].repeat(n, 0), aligned=True, backend="numpy"), dtype
    )


def test_offset_matches_cython_bbox(backend):
    """offset=1 IoU equals cython_bbox.bbox_overlaps (the legacy +1 pixel convention)."""
    cython_bbox = require_peer("cython_bbox", reason="cython_bbox is not installed")
    n, m = max_boxes(backend, 20), max_boxes(backend, 11)
    boxes1 = random_boxes(n, np.float64, 5, scale=40, integer=True)
    boxes2 = random_boxes(m, np.float64, 6, scale=40, integer=True)
    boxes2[:2] = boxes1[:2]
    want = cython_bbox.bbox_overlaps(boxes1, boxes2)
    assert (want > 0).any() and (want == 0).any()
    got = fastiou.box_iou(boxes1, boxes2, offset=1, backend=backend)
    assert_matches(got, want, np.float64)
    assert not np.allclose(fastiou.box_iou(boxes1, boxes2, backend=backend), want)


@pytest.mark.parametrize("batch", [(), (3,)], ids=["flat", "batched"])
def test_aligned_is_diagonal(op, backend, batch):
    """aligned=True gives the diagonal of the pairwise matrix."""
    n = max_boxes(backend, 10)
    b1, b2 = _mixed_boxes(n, n, np.float64, seed=7)
    if batch:
        b1 = np.stack([b1, b1 + 1, b1 - 2])
    aligned = op(b1, b2, aligned=True, backend=backend)
    assert aligned.shape == batch + (n,)
    pairwise = op(b1, b2, backend=backend)
    np.testing.assert_array_equal(aligned, np.diagonal(pairwise, axis1=-2, axis2=-1))


@pytest.mark.parametrize(
    "shape1, shape2, result",
    [
        ((2, 3, 5, 4), (4, 4), (2, 3, 5, 4)),
        ((2, 1, 5, 4), (3, 4, 4), (2, 3, 5, 4)),
        ((5, 4), (2, 4, 4), (2, 5, 4)),
    ],
    ids=["batch-vs-flat", "broadcast", "flat-vs-batch"],
)
def test_batch_dims(op, backend, shape1, shape2, result):
    """Leading batch dimensions broadcast; each slice is the unbatched reference result."""
    rng = np.random.default_rng(11)
    b1 = random_boxes(int(np.prod(shape1[:-1])), np.float64, 12).reshape(shape1)
    b2 = random_boxes(int(np.prod(shape2[:-1])), np.float64, 13).reshape(shape2)
    b2 += rng.uniform(-20, 20, shape2[:-2] + (1, 1))
    got = op(b1, b2, backend=backend)
    assert got.shape == result
    bb1 = np.broadcast_to(b1, result[:-2] + shape1[-2:])
    bb2 = np.broadcast_to(b2, result[:-2] + shape2[-2:])
    for index in np.ndindex(*result[:-2]):
        want = op(bb1[index], bb2[index], backend="numpy")
        assert_matches(got[index], want, np.float64)


def test_batch_dims_aligned(op, backend):
    """[2, 1, N, 4] against [3, N, 4] aligned gives [2, 3, N], slice by slice."""
    b1 = random_boxes(10, np.float64, 21).reshape(2, 1, 5, 4)
    b2 = random_boxes(15, np.float64, 22).reshape(3, 5, 4)
    got = op(b1, b2, aligned=True, backend=backend)
    assert got.shape == (2, 3, 5)
    for i in range(2):
        for j in range(3):
            want = op(b1[i, 0], b2[j], aligned=True, backend="numpy")
            assert_matches(got[i, j], want, np.float64)


@pytest.mark.parametrize("dtype1, dtype2", DTYPE_PAIRS)
def test_dtype_rules(backend, dtype1, dtype2):
    """float32 -> float32, float64 wins, integers and float16 compute in float32 (the rule is
    the dispatcher's, common to the family: one test runs every operation)."""
    result = np.dtype(overlap_dtype(dtype1, dtype2))
    b1 = random_boxes(max_boxes(backend, 8), np.float64, 31, integer=True)
    b2 = random_boxes(max_boxes(backend, 6), np.float64, 32, integer=True)
    for op in OPERATIONS:
        got = op(b1.astype(dtype1), b2.astype(dtype2), backend=backend)
        assert isinstance(got, np.ndarray) and got.dtype == result, op.name
        want = op(b1.astype(result), b2.astype(result), backend="numpy")
        assert_matches(got, want, result)


@pytest.mark.parametrize(
    "shape1, shape2, aligned, result",
    [
        ((0, 4), (5, 4), False, (0, 5)),
        ((5, 4), (0, 4), False, (5, 0)),
        ((0, 4), (0, 4), False, (0, 0)),
        ((0, 4), (0, 4), True, (0,)),
        ((2, 0, 4), (3, 4), False, (2, 0, 3)),
        ((3, 4), (2, 0, 4), False, (2, 3, 0)),
        ((0, 5, 4), (3, 4), False, (0, 5, 3)),
        ((2, 0, 4), (1, 0, 4), True, (2, 0)),
    ],
)
def test_empty(backend, shape1, shape2, aligned, result):
    """Empty inputs give an empty result of the right shape and dtype (also into out=), for
    every operation."""
    for op, dtype in itertools.product(OPERATIONS, (np.float32, np.float64, np.int64)):
        b1, b2 = np.zeros(shape1, dtype), np.zeros(shape2, dtype)
        got = op(b1, b2, aligned=aligned, backend=backend)
        want_dtype = np.float64 if dtype == np.float64 else np.float32
        assert isinstance(got, np.ndarray)
        assert got.shape == result and got.dtype == want_dtype
        out = np.empty(result, want_dtype)
        assert op(b1, b2, aligned=aligned, out=out, backend=backend) is out


@pytest.mark.parametrize("aligned", [False, True], ids=["pairwise", "aligned"])
def test_out(op, backend, aligned):
    """out= is filled with the result and returned."""
    n = max_boxes(backend, 9)
    b1, b2 = _mixed_boxes(n, n, np.float64, seed=41)
    b1 = np.stack([b1, b1 + 3])  # batched: [2, n, 4] against [n, 4]
    want = op(b1, b2, aligned=aligned, backend="numpy")
    out = np.full(want.shape, -7.0)
    got = op(b1, b2, aligned=aligned, out=out, backend=backend)
    assert got is out
    assert_matches(out, want, np.float64)


def test_out_noncontiguous(op, backend):
    """A strided or Fortran-ordered out is filled correctly, and nothing around it is touched."""
    n, m = max_boxes(backend, 9), max_boxes(backend, 6)
    b1, b2 = _mixed_boxes(n, m, np.float32, seed=43)
    want = op(b1, b2, backend="numpy")
    big = np.full((n, 2 * m), -7.0, np.float32)
    view = big[:, ::2]
    assert op(b1, b2, out=view, backend=backend) is view
    assert_matches(view, want, np.float32)
    assert (big[:, 1::2] == -7.0).all()
    fortran = np.full((n, m), -7.0, np.float32, order="F")
    assert op(b1, b2, out=fortran, backend=backend) is fortran
    assert_matches(fortran, want, np.float32)


def test_out_wrong(op, backend):
    """out= with the wrong shape, the wrong dtype or read-only raises ValueError."""
    b1, b2 = random_boxes(3, np.float64, 1), random_boxes(2, np.float64, 2)
    with pytest.raises(ValueError, match="out must have shape"):
        op(b1, b2, out=np.empty((2, 3)), backend=backend)
    with pytest.raises(ValueError, match="out must have shape"):
        op(b1, b2, out=np.empty((3, 2), np.float32), backend=backend)
    with pytest.raises(ValueError, match="out must have shape"):
        op(b1.astype(np.float32), b2.astype(np.float32), out=np.empty((3, 2)), backend=backend)
    with pytest.raises(ValueError, match="out must have shape"):
        op(b1, b1, aligned=True, out=np.empty((3, 3)), backend=backend)
    readonly = np.empty((3, 2))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        op(b1, b2, out=readonly, backend=backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous_inputs(op, backend, dtype):
    """Strided, reversed and Fortran-ordered inputs give the result of contiguous copies."""
    n, m = max_boxes(backend, 9), max_boxes(backend, 7)
    b1, b2 = _mixed_boxes(2 * n, m, dtype, seed=51)
    strided = b1[::2]
    fortran = np.asfortranarray(b2[::-1])
    assert not strided.flags.c_contiguous and not fortran.flags.c_contiguous
    want = op(np.ascontiguousarray(strided), np.ascontiguousarray(fortran), backend="numpy")
    assert_matches(op(strided, fortran, backend=backend), want, dtype)
    columns = np.ascontiguousarray(b1[:n, ::-1])[:, ::-1]  # negative stride along coordinates
    want = op(b1[:n], b1[:n], aligned=True, backend="numpy")
    assert_matches(op(columns, b1[:n], aligned=True, backend=backend), want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_endian_inputs(op, backend, dtype):
    """Big-endian boxes compute as their native twins, in the same precision."""
    n, m = max_boxes(backend, 9), max_boxes(backend, 7)
    b1, b2 = _mixed_boxes(n, m, dtype, seed=61)
    swapped = np.dtype(dtype).newbyteorder(">")
    got = op(b1.astype(swapped), b2.astype(swapped), backend=backend)
    assert_matches(got, op(b1, b2, backend="numpy"), dtype)


def test_list_inputs(op, backend):
    """Nested lists work: floats compute in float64, integers in float32."""
    floats = [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [0.5, 0.0, 1.5, 4.0]]
    got = op(floats, floats[:2], backend=backend)
    assert_matches(got, op(np.array(floats), np.array(floats[:2]), backend="numpy"), np.float64)
    ints = [[0, 0, 2, 2], [1, 1, 3, 3]]
    got = op(ints, tuple(ints), backend=backend)
    want = op(np.array(ints, np.float32), np.array(ints, np.float32), backend="numpy")
    assert_matches(got, want, np.float32)


# --- box_area and box_convert ---------------------------------------------------------------


def test_box_area_hand_values():
    boxes = np.array([[0, 0, 2, 3], [1, 1, 1, 5], [-4, -2, -1, 2]], np.float64)
    np.testing.assert_array_equal(fastiou.box_area(boxes), [6, 0, 12])
    np.testing.assert_array_equal(fastiou.box_area(boxes, offset=1), [12, 5, 20])
    wh = np.array([[5, 6, 2, 3]], np.float64)
    np.testing.assert_array_equal(fastiou.box_area(wh, fmt="xywh"), [6])
    np.testing.assert_array_equal(fastiou.box_area(wh, fmt="cxcywh"), [6])
    np.testing.assert_array_equal(fastiou.box_area(wh, fmt="xywh", offset=1), [12])


@pytest.mark.parametrize(
    "dtype, area_dtype, halves_dtype",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.int64, np.int64, np.float32),
        (np.int32, np.int32, np.float32),
        (np.uint8, np.int32, np.float32),
        (np.float16, np.float32, np.float16),
    ],
    ids=lambda d: np.dtype(d).name,
)
def test_box_area_and_convert_dtypes(dtype, area_dtype, halves_dtype):
    """torchvision's dtypes (checked against torchvision itself in test_autograd_and_dtypes.py):
    box_area upcasts narrow types (int32, float32), box_convert keeps the dtype except for the
    halves of cxcywh, which make integers float32."""
    boxes = random_boxes(6, np.float64, 71, integer=True).astype(dtype)
    area = fastiou.box_area(boxes)
    assert area.dtype == area_dtype and area.shape == (6,)
    w, h = boxes[:, 2].astype(float) - boxes[:, 0], boxes[:, 3].astype(float) - boxes[:, 1]
    np.testing.assert_allclose(area, w * h, rtol=1e-3)
    converted = fastiou.box_convert(boxes, "xyxy", "cxcywh")
    assert converted.dtype == halves_dtype and converted.shape == (6, 4)
    assert fastiou.box_convert(boxes, "xyxy", "xywh").dtype == dtype


def test_box_area_batched():
    boxes = random_boxes(12, np.float64, 72).reshape(2, 3, 2, 4)
    area = fastiou.box_area(boxes)
    assert area.shape == (2, 3, 2)
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    np.testing.assert_allclose(area, w * h, rtol=1e-15)


def test_box_convert_hand_values():
    xyxy = np.array([[0.0, 0.0, 2.0, 4.0], [-3.0, 1.0, -1.0, 2.0]])
    xywh = np.array([[0.0, 0.0, 2.0, 4.0], [-3.0, 1.0, 2.0, 1.0]])
    cxcywh = np.array([[1.0, 2.0, 2.0, 4.0], [-2.0, 1.5, 2.0, 1.0]])
    formats = {"xyxy": xyxy, "xywh": xywh, "cxcywh": cxcywh}
    for src, boxes in formats.items():
        for dst, want in formats.items():
            got = fastiou.box_convert(boxes, src, dst)
            np.testing.assert_array_equal(got, want, err_msg=f"{src} -> {dst}")
            assert not np.shares_memory(got, boxes)


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_convert_round_trip(fmt, dtype):
    boxes = random_boxes(20, dtype, 73, batch=(2,))
    there = fastiou.box_convert(boxes, "xyxy", fmt)
    back = fastiou.box_convert(there, fmt, "xyxy")
    assert back.shape == boxes.shape and back.dtype == dtype
    np.testing.assert_allclose(back, boxes, **tolerance(dtype))
    np.testing.assert_allclose(
        fastiou.box_area(there, fmt=fmt), fastiou.box_area(boxes), **tolerance(dtype)
    )


@pytest.mark.parametrize("in_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("out_fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_convert_and_area_match_torchvision(in_fmt, out_fmt):
    torch = require_peer("torch", reason="torch is not installed")
    ops = require_peer("torchvision.ops", reason="torchvision is not installed")
    boxes = np.random.default_rng(74).uniform(-50, 50, (15, 4))
    want = ops.box_convert(torch.from_numpy(boxes), in_fmt, out_fmt).numpy()
    np.testing.assert_allclose(fastiou.box_convert(boxes, in_fmt, out_fmt), want, rtol=1e-14)
    want_area = ops.box_area(torch.from_numpy(boxes), fmt=in_fmt).numpy()
    np.testing.assert_allclose(fastiou.box_area(boxes, fmt=in_fmt), want_area, rtol=1e-14)
