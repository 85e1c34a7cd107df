"""torch interop and parity with torchvision.ops."""

import importlib

import numpy as np
import pytest
from conftest import (
    DTYPE_PAIRS,
    ensure_available,
    max_boxes,
    overlap_dtype,
    random_boxes,
    require_peer,
)

import fastiou
from fastiou._core import dispatch as _dispatch

torch = require_peer("torch", reason="torch is not installed")
tv_ops = require_peer("torchvision.ops", reason="torchvision is not installed")

PEERS = [
    (fastiou.box_iou, tv_ops.box_iou),
    (fastiou.generalized_box_iou, tv_ops.generalized_box_iou),
    (fastiou.distance_box_iou, tv_ops.distance_box_iou),
    (fastiou.complete_box_iou, tv_ops.complete_box_iou),
]
PEER_IDS = ["iou", "giou", "diou", "ciou"]


def tolerance(dtype, name: str = "iou") -> dict:
    """fastiou against torchvision: the same formulas, evaluated in a slightly different order."""
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    if name == "complete_box_iou":  # atan and the alpha * v term round differently in float32
        return {"rtol": 1e-5, "atol": 1e-5}
    return {"rtol": 1e-5, "atol": 1e-6}


def assert_tensor_close(got, want, **tol):
    assert isinstance(got, torch.Tensor)
    assert got.dtype == want.dtype and got.shape == want.shape and got.device == want.device
    torch.testing.assert_close(got, want, equal_nan=True, **tol)


def tensor_boxes(n, dtype, seed, batch=()):
    return torch.from_numpy(random_boxes(n, np.float64, seed, batch=batch)).to(dtype)


@pytest.mark.parametrize("fastiou_func, peer", PEERS, ids=PEER_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("batch", [(), (3,)], ids=["flat", "batched"])
def test_parity_with_torchvision(backend, fastiou_func, peer, dtype, batch):
    """box_iou & family on torch tensors equal torchvision.ops on the same tensors."""
    boxes1 = tensor_boxes(max_boxes(backend, 30), dtype, 1, batch)
    boxes2 = tensor_boxes(max_boxes(backend, 20), dtype, 2, batch)
    boxes2[..., :3, :] = boxes1[..., :3, :]  # some identical pairs
    want = peer(boxes1, boxes2)
    got = fastiou_func(boxes1, boxes2, backend=backend)
    assert_tensor_close(got, want, **tolerance(dtype, fastiou_func.__name__))
    assert (want > 0).any() and (want < 1).any()


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_parity_box_iou_formats(backend, fmt, dtype):
    """box_iou(fmt=...) equals torchvision's box_iou(fmt=...), batched too."""
    gen = torch.Generator().manual_seed(4)
    n, m = max_boxes(backend, 16), max_boxes(backend, 9)
    boxes1 = (torch.rand(2, n, 4, generator=gen, dtype=torch.float64) * 50).to(dtype)
    boxes2 = (torch.rand(2, m, 4, generator=gen, dtype=torch.float64) * 50).to(dtype)
    want = tv_ops.box_iou(boxes1, boxes2, fmt=fmt)
    assert_tensor_close(
        fastiou.box_iou(boxes1, boxes2, fmt=fmt, backend=backend), want, **tolerance(dtype)
    )


def test_parity_degenerate_nan(backend):
    """Zero-area boxes give NaN where torchvision gives NaN (0/0), and the same elsewhere."""
    boxes = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0]])
    for fastiou_func, peer in PEERS:
        want = peer(boxes, boxes)
        assert torch.isnan(want).any()
        got = fastiou_func(boxes, boxes, backend=backend)
        assert_tensor_close(got, want, **tolerance(torch.float32, fastiou_func.__name__))


@pytest.mark.parametrize(
    "dtype1, dtype2",
    [*DTYPE_PAIRS, ("bfloat16", "bfloat16"), ("bfloat16", "float64"), ("uint8", "int32")],
)
def test_tensor_in_tensor_out(backend, dtype1, dtype2):
    """A CPU tensor in gives a CPU tensor out, with the dtype rules of numpy input."""
    result = getattr(torch, overlap_dtype(dtype1, dtype2))
    dtype1, dtype2 = getattr(torch, dtype1), getattr(torch, dtype2)
    boxes1 = torch.from_numpy(random_boxes(max_boxes(backend, 7), np.float64, 5, integer=True))
    boxes2 = torch.from_numpy(random_boxes(max_boxes(backend, 5), np.float64, 6, integer=True))
    got = fastiou.box_iou(boxes1.to(dtype1), boxes2.to(dtype2), backend=backend)
    assert isinstance(got, torch.Tensor) and got.dtype == result and got.device.type == "cpu"
    want = fastiou.box_iou(boxes1.to(result).numpy(), boxes2.to(result).numpy(), backend="numpy")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_mixed_numpy_and_tensor(backend):
    """numpy with torch gives torch, whichever side the tensor is on; float64 still wins."""
    a = random_boxes(max_boxes(backend, 6), np.float32, 7)
    b = random_boxes(max_boxes(backend, 4), np.float64, 8)
    want = fastiou.box_iou(a.astype(np.float64), b, backend="numpy")
    for boxes1, boxes2 in [(a, torch.from_numpy(b)), (torch.from_numpy(a), b)]:
        got = fastiou.box_iou(boxes1, boxes2, backend=backend)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_requires_grad(backend):
    """Tensors that require grad are refused on every backend (the overlaps are not
    differentiable); under torch.no_grad they are read, and the result is a plain tensor."""
    boxes1 = tensor_boxes(max_boxes(backend, 6), torch.float32, 9).requires_grad_()
    boxes2 = tensor_boxes(max_boxes(backend, 5), torch.float32, 10).requires_grad_()
    for fastiou_func, peer in PEERS:
        with pytest.raises(TypeError, match="requires grad.*not differentiable"):
            fastiou_func(boxes1, boxes2, backend=backend)
        with torch.no_grad():
            got = fastiou_func(boxes1, boxes2, backend=backend)
        assert not got.requires_grad
        want = peer(boxes1, boxes2).detach()
        assert_tensor_close(got, want, **tolerance(torch.float32, fastiou_func.__name__))


def test_tensor_out(backend):
    """A tensor out= is filled and returned, contiguous or a transposed view."""
    boxes1 = tensor_boxes(max_boxes(backend, 6), torch.float32, 11)
    boxes2 = tensor_boxes(max_boxes(backend, 6), torch.float32, 12)
    want = tv_ops.box_iou(boxes1, boxes2)
    out = torch.full(want.shape, -7.0)
    assert fastiou.box_iou(boxes1, boxes2, out=out, backend=backend) is out
    assert_tensor_close(out, want, **tolerance(torch.float32))
    transposed = torch.full(want.shape[::-1], -7.0).t()
    assert not transposed.is_contiguous()
    assert fastiou.box_iou(boxes1, boxes2, out=transposed, backend=backend) is transposed
    assert_tensor_close(transposed, want, **tolerance(torch.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        fastiou.box_iou(boxes1, boxes2, out=torch.empty(want.shape, dtype=torch.float64))


class KernelSpy:
    """Wraps a kernel module's ``pairwise`` to record the arrays it was given."""

    def __init__(self, monkeypatch, backend: str):
        module = importlib.import_module(_dispatch.MODULES["boxes"][backend])
        self.original = module.pairwise
        self.calls = []
        monkeypatch.setattr(module, "pairwise", self)

    def __call__(self, op, boxes1, boxes2, out, *args):
        self.calls.append((boxes1, boxes2, out))
        return self.original(op, boxes1, boxes2, out, *args)


@pytest.mark.parametrize("backend_name", ["numpy", "cython", "numba"])
def test_no_copy_of_contiguous_float32_input(backend_name, monkeypatch):
    """Contiguous float32 numpy arrays and tensors reach the kernel as they are, and the kernel
    writes straight into the result (a fresh array, not one of the inputs)."""
    ensure_available(backend_name)
    spy = KernelSpy(monkeypatch, backend_name)
    a, b = random_boxes(8, np.float32, 13), random_boxes(5, np.float32, 14)
    result = fastiou.box_iou(a, b, backend=backend_name)
    kernel_a, kernel_b, kernel_out = spy.calls[-1]
    assert np.shares_memory(kernel_a, a) and np.shares_memory(kernel_b, b)
    assert np.shares_memory(kernel_out, result)
    assert not np.shares_memory(result, a) and not np.shares_memory(result, b)

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    result = fastiou.box_iou(ta, tb, backend=backend_name)
    kernel_a, kernel_b, kernel_out = spy.calls[-1]
    assert np.shares_memory(kernel_a, a) and np.shares_memory(kernel_b, b)
    assert np.shares_memory(kernel_out, result.numpy())

    out = np.empty((8, 5), np.float32)
    fastiou.box_iou(a, b, out=out, backend=backend_name)
    assert np.shares_memory(spy.calls[-1][2], out)
    np.testing.assert_allclose(out, tv_ops.box_iou(ta, tb).numpy(), rtol=1e-6)


def test_box_area_and_convert_tensors():
    """box_area and box_convert keep tensors as tensors and match torchvision."""
    boxes = tensor_boxes(10, torch.float64, 15, batch=(2,))
    assert_tensor_close(fastiou.box_area(boxes), tv_ops.box_area(boxes), rtol=1e-14, atol=0)
    for fmt in ("xywh", "cxcywh"):
        want = tv_ops.box_convert(boxes, "xyxy", fmt)
        assert_tensor_close(fastiou.box_convert(boxes, "xyxy", fmt), want, rtol=1e-14, atol=0)
    ints = boxes.round().to(torch.int64)
    area = fastiou.box_area(ints)
    assert area.dtype == torch.int64  # torchvision keeps integer areas integer
    torch.testing.assert_close(area, tv_ops.box_area(ints))
    assert fastiou.box_convert(ints, "xyxy", "cxcywh").dtype == torch.float32


@pytest.mark.skipif(
    not (torch.cuda.is_available() and fastiou.backends()["cuda"].available),
    reason="needs a CUDA GPU for torch and numba (set FASTIOU_TEST_REAL_GPU=1)",
)
def test_cuda_tensor_in_cuda_tensor_out():
    """A CUDA tensor runs on the cuda backend and comes back on its device."""
    boxes1 = tensor_boxes(300, torch.float32, 16).cuda()
    boxes2 = tensor_boxes(200, torch.float32, 17).cuda()
    for fastiou_func, peer in PEERS:
        got = fastiou_func(boxes1, boxes2)
        assert_tensor_close(
            got, peer(boxes1, boxes2), **tolerance(torch.float32, fastiou_func.__name__)
        )
    out = torch.empty(200, 300, device="cuda").t()
    assert fastiou.box_iou(boxes1, boxes2, out=out) is out
    assert_tensor_close(out, tv_ops.box_iou(boxes1, boxes2), **tolerance(torch.float32))
