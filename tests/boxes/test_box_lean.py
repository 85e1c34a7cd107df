"""The lean call path of the box family (``_api._lean``): the same results as the general path
on every input, and taken only where ``backend="auto"`` would pick the Cython kernel."""

import importlib

import numpy as np
import pytest
from conftest import random_boxes, require_peer, spy_on

import fastiou
from fastiou._core import config as _config
from fastiou.boxes import _cython

torch = require_peer("torch")

FUNCTIONS = [
    fastiou.box_iou,
    fastiou.generalized_box_iou,
    fastiou.distance_box_iou,
    fastiou.complete_box_iou,
    fastiou.box_ioa,
]


pytestmark = pytest.mark.usefixtures("plain_auto")


@pytest.fixture
def lean_calls(monkeypatch) -> list:
    """The boxes1 argument of each call the compiled lean entry took (None: it declined)."""
    return spy_on(monkeypatch, _cython._ext, "matrix", lambda a, r: None if r is None else a[1])


def taken(calls: list) -> list:
    return [c for c in calls if c is not None]


def odd_boxes(n: int, seed: int) -> np.ndarray:
    """Random float64 boxes with the cases kernels get wrong: degenerate, NaN and inf corners."""
    boxes = random_boxes(n, np.float64, seed)
    boxes[1, 2:] = boxes[1, :2]  # zero area
    boxes[2, 0] = np.nan  # a NaN corner (the kernel's NaN-row loop)
    boxes[3, 3] = np.inf
    boxes[4] = boxes[5]  # a duplicate: IoU 1
    return boxes


def inputs():
    """(name, boxes1, boxes2): the common case and every odd one, against its general path."""
    a, b = odd_boxes(9, 1), odd_boxes(7, 2)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    packed = np.zeros(9, dtype=[("flag", "u1"), ("box", "<f4", 4)])  # strides of 17 bytes
    packed["box"] = a32
    yield "float32", a32, b32
    yield "float64", a, b
    yield "mixed float32/float64", a32, b
    yield "non-contiguous rows", a32[::2], b32[1::2]
    yield "fortran order", np.asfortranarray(a32), b32
    yield "unaligned record field", packed["box"], b32
    yield "big-endian", a.astype(">f8"), b.astype(">f8")
    ints = [np.nan_to_num(x, nan=0, posinf=9).astype(np.int32) for x in (a, b)]
    yield "int32", *ints
    yield "float16", a.astype(np.float16), b.astype(np.float16)
    yield "empty boxes1", a32[:0], b32
    yield "empty boxes2", a32, b32[:0]
    yield "batch dims", np.stack([a32, a32[::-1]]), b32
    yield "list input", a.tolist(), b.tolist()
    yield "torch float32", torch.from_numpy(a32), torch.from_numpy(b32)
    yield "torch float64 strided", torch.from_numpy(a)[::2], torch.from_numpy(b).t().t()
    yield "torch bfloat16", torch.from_numpy(a32).bfloat16(), torch.from_numpy(b32).bfloat16()
    yield "numpy with torch", a32, torch.from_numpy(b32)


def general(f, boxes1, boxes2, **kwargs):
    """The general path: the same Cython kernels, asked for by name."""
    return f(boxes1, boxes2, backend="cython", **kwargs)


def assert_same(got, want):
    assert type(got) is type(want)
    assert got.dtype == want.dtype and tuple(got.shape) == tuple(want.shape)
    if isinstance(got, torch.Tensor):
        assert got.device == want.device and not got.requires_grad
        got, want = got.numpy(), want.detach().numpy()
    np.testing.assert_array_equal(got, want)  # NaN where NaN; bit-for-bit otherwise


@pytest.mark.parametrize(("name", "boxes1", "boxes2"), list(inputs()), ids=lambda x: x)
@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_same_as_general_path(f, name, boxes1, boxes2):
    assert_same(f(boxes1, boxes2), general(f, boxes1, boxes2))


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("degenerate", ["nan", "zero"])
@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_options_same_as_general_path_and_reference(f, fmt, offset, degenerate):
    a, b = odd_boxes(11, 3).astype(np.float32), odd_boxes(6, 4).astype(np.float32)
    options = {"fmt": fmt, "offset": offset, "degenerate": degenerate}
    got = f(a, b, **options)
    assert_same(got, general(f, a, b, **options))
    want = f(a, b, backend="numpy", **options)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_requires_grad_is_refused_on_both_paths(f):
    """A tensor that requires grad is refused with the same error by "auto" (the lean path
    declines it) and by an explicit backend: the overlaps are not differentiable."""
    a = torch.from_numpy(odd_boxes(7, 1)).requires_grad_()
    b = torch.from_numpy(odd_boxes(6, 2))
    with pytest.raises(TypeError, match="differentiable") as lean:
        f(a, b)
    with pytest.raises(TypeError, match="differentiable") as general_path:
        f(a, b, backend="cython")
    assert str(lean.value) == str(general_path.value)


def test_unaligned_record_field_matches_reference():
    """A view into packed records (byte strides not whole floats) is read right on both paths."""
    a = odd_boxes(9, 1).astype(np.float32)
    packed = np.zeros(9, dtype=[("flag", "u1"), ("box", "<f4", 4)])
    packed["box"] = a
    want = fastiou.box_iou(a, a, backend="numpy")
    for backend in ("auto", "cython"):
        got = fastiou.box_iou(packed["box"], packed["box"], backend=backend)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7, equal_nan=True)
    got = fastiou.box_iou(packed["box"], packed["box"], aligned=True, backend="cython")
    np.testing.assert_allclose(got, np.diagonal(want), rtol=2e-6, equal_nan=True)


def test_ioa_over_boxes2_and_eps():
    a, b = odd_boxes(8, 5), odd_boxes(8, 6)
    assert_same(fastiou.box_ioa(a, b, over="boxes2"), general(fastiou.box_ioa, a, b, over="boxes2"))
    got = fastiou.complete_box_iou(a, b, eps=1e-3)
    assert_same(got, general(fastiou.complete_box_iou, a, b, eps=1e-3))


def test_taken_for_the_common_case_only(lean_calls, monkeypatch):
    a, b = random_boxes(5, np.float32, 1), random_boxes(4, np.float32, 2)
    fastiou.box_iou(a, b)
    fastiou.box_iou(torch.from_numpy(a), torch.from_numpy(b))
    assert len(taken(lean_calls)) == 2
    assert np.shares_memory(taken(lean_calls)[1], a)  # the tensor's memory, not a copy
    out = np.empty((5, 4), np.float32)
    assert fastiou.box_iou(a, b, out=out) is out  # a plain out= is lean too
    assert len(taken(lean_calls)) == 3
    fastiou.box_iou(a, b, out=np.empty((4, 5), np.float32).T)  # not C order: general path
    fastiou.box_iou(a[:4], b, aligned=True)
    fastiou.box_iou(a, b, backend="cython")
    fastiou.box_iou(a.astype(np.float16), b)
    fastiou.box_iou(a[None], b)
    with fastiou.use_backend("numpy"):
        fastiou.box_iou(a, b)
    monkeypatch.setenv("FASTIOU_BACKEND", "numpy")
    fastiou.box_iou(a, b)
    monkeypatch.setenv("FASTIOU_BACKEND", "auto")
    fastiou.box_iou(a, b)
    monkeypatch.delenv("FASTIOU_BACKEND")
    monkeypatch.setitem(_config.CYTHON_MAX_WORK, "boxes", 20)
    fastiou.box_iou(a, b)  # 20 pairs: numba's work now
    assert len(taken(lean_calls)) == 4  # only the FASTIOU_BACKEND=auto call joined them


def outs(shape, dtype, like):
    """(name, out): out= arrays the lean path takes, and ones it leaves to the general path."""
    torch_like = isinstance(like, torch.Tensor)
    wrap = torch.from_numpy if torch_like else (lambda x: x)
    yield "plain", wrap(np.full(shape, 7, dtype))
    yield "transposed", wrap(np.full(shape[::-1], 7, dtype)).T
    yield "wrong dtype", wrap(np.full(shape, 7, np.float16 if dtype == np.float64 else np.float64))
    yield "wrong shape", wrap(np.full((shape[0] + 1, shape[1]), 7, dtype))
    if not torch_like:
        read_only = np.full(shape, 7, dtype)
        read_only.flags.writeable = False
        yield "read-only", read_only
        yield "big-endian", np.full(shape, 7, np.dtype(dtype).newbyteorder(">"))
        yield "a tensor for numpy boxes", torch.from_numpy(np.full(shape, 7, dtype))


@pytest.mark.parametrize("kind", ["numpy float32", "numpy float64", "torch float32"])
@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_out_same_as_general_path(f, kind):
    """out= gives what the general path gives: the same numbers written into the same object,
    or the same error."""
    dtype = np.float64 if "64" in kind else np.float32
    a, b = odd_boxes(9, 1).astype(dtype), odd_boxes(7, 2).astype(dtype)
    if kind.startswith("torch"):
        a, b = torch.from_numpy(a), torch.from_numpy(b)
    want = general(f, a, b)
    for name, out in outs((9, 7), dtype, a):
        if isinstance(out, torch.Tensor):
            twin = out.clone()  # the same strides
        else:
            twin = out.copy(order="K")
            twin.flags.writeable = out.flags.writeable
        try:
            expected = general(f, a, b, out=twin)
        except (ValueError, TypeError) as e:
            with pytest.raises(type(e)) as lean:
                f(a, b, out=out)
            assert str(lean.value) == str(e), name
            continue
        assert f(a, b, out=out) is out, name
        assert expected is twin, name
        assert_same(out, twin)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(want))


def test_out_may_alias_the_boxes():
    """out= over the boxes' own memory: the features are read before the matrix is written."""
    a = random_boxes(4, np.float32, 1)
    want = fastiou.box_iou(a, a)
    got = fastiou.box_iou(a, a, out=a)
    assert got is a
    np.testing.assert_array_equal(a, want)


def test_errors_unchanged():
    a = random_boxes(3, np.float32, 1)
    with pytest.raises(ValueError, match=r"boxes1 must have shape \[..., N, 4\], got \[3, 3\]"):
        fastiou.box_iou(a[:, :3], a)
    with pytest.raises(ValueError, match="fmt must be one of"):
        fastiou.box_iou(a, a, fmt="yxyx")
    with pytest.raises(ValueError, match="offset must be 0 or 1"):
        fastiou.box_iou(a, a, offset=2)


def test_parallel_lean_call_same_numbers(monkeypatch):
    """Above PARALLEL_MIN_WORK the lean entry runs on the pool: the same numbers."""
    a, b = odd_boxes(300, 7).astype(np.float32), odd_boxes(200, 8).astype(np.float32)
    want = fastiou.box_iou(a, b)
    monkeypatch.setattr(_config, "PARALLEL_MIN_WORK", 0)
    np.testing.assert_array_equal(fastiou.box_iou(a, b), want)
    reference = fastiou.box_iou(a, b, backend="numpy")
    np.testing.assert_allclose(want, reference, rtol=2e-6, atol=1e-7, equal_nan=True)


def test_avx2_build_gives_the_same_bits():
    """The AVX2 build of the kernels (chosen where the CPU has it) rounds as the portable one."""
    try:
        avx2 = importlib.import_module("fastiou.boxes._ckernels_avx2")
    except ImportError:
        pytest.skip("no AVX2 build here (not x86)")
    portable = importlib.import_module("fastiou.boxes._ckernels")
    if not portable.cpu_has_avx2():
        pytest.skip("this CPU has no AVX2")
    for dtype in (np.float32, np.float64):
        a, b = odd_boxes(37, 9).astype(dtype), odd_boxes(29, 10).astype(dtype)
        for op in range(len(portable.OPERATIONS)):
            for fmt, offset, zero_div in [(0, 0.0, False), (1, 1.0, True), (2, 0.0, True)]:
                args = (op, a, b, fmt, offset, 1e-7, zero_div, 1)
                np.testing.assert_array_equal(avx2.matrix(*args), portable.matrix(*args))
