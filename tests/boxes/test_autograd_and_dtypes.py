"""Torch tensors that require grad, and the dtypes of box_area / box_convert, against torchvision.

fastiou's overlap kernels compute values only: a tensor that requires grad is refused at the call
(a clear TypeError) instead of coming back silently detached (which a GIoU-loss user would only
find at ``.backward()``). NMS indices carry no gradient, so nms / batched_nms take such tensors
as torchvision's do. box_area and box_convert are torch arithmetic on torch input: they keep the
graph, and torchvision's dtypes.
"""

import itertools

import numpy as np
import pytest
from conftest import require_peer

import fastiou

torch = require_peer("torch")
tv_ops = require_peer("torchvision.ops")

FORMATS = ("xyxy", "xywh", "cxcywh")
OVERLAPS = {
    "box_iou": fastiou.box_iou,
    "generalized_box_iou": fastiou.generalized_box_iou,
    "distance_box_iou": fastiou.distance_box_iou,
    "complete_box_iou": fastiou.complete_box_iou,
    "box_ioa": fastiou.box_ioa,
}
BOXES = [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [0.5, 0.0, 2.5, 1.0]]
SCORES = [0.9, 0.8, 0.7]


def boxes(requires_grad: bool = True):
    return torch.tensor(BOXES, requires_grad=requires_grad)


@pytest.mark.parametrize("name", list(OVERLAPS))
@pytest.mark.parametrize("which", ["boxes1", "boxes2"])
@pytest.mark.parametrize("aligned", [False, True])
def test_overlaps_refuse_tensors_that_require_grad(name, which, aligned):
    func = OVERLAPS[name]
    a, b = (boxes(which == "boxes1"), boxes(which == "boxes2"))
    message = (
        rf"{name}: {which} requires grad, but fastiou's {name} is not differentiable.*"
        r"torchvision\.ops.*generalized_box_iou_loss.*\.detach\(\).*torch\.no_grad"
    )
    with pytest.raises(TypeError, match=message):
        func(a, b, aligned=aligned)
    # Values only: detached input, or grad mode off, give the values (and no graph).
    want = func(a.detach(), b.detach(), aligned=aligned)
    with torch.no_grad():
        got = func(a, b, aligned=aligned)
    assert not got.requires_grad
    torch.testing.assert_close(got, want)
    if name != "box_ioa":  # the other four are torchvision's functions
        peer = getattr(tv_ops, name)
        expected = peer(a.detach(), b.detach())
        torch.testing.assert_close(want, expected.diagonal() if aligned else expected)


def test_nms_takes_tensors_that_require_grad_as_torchvision():
    """Indices carry no gradient: torchvision's nms / batched_nms take such tensors and return
    indices that do not require grad; fastiou's return the same indices."""
    b, s = boxes(), torch.tensor(SCORES, requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    for got, want in [
        (fastiou.nms(b, s, 0.1), tv_ops.nms(b, s, 0.1)),
        (fastiou.batched_nms(b, s, labels, 0.1), tv_ops.batched_nms(b, s, labels, 0.1)),
    ]:
        assert not got.requires_grad and not want.requires_grad
        torch.testing.assert_close(got, want)
    # Selecting with the indices keeps the caller's graph.
    keep = fastiou.nms(b, s, 0.1)
    s[keep].sum().backward()
    assert keep.tolist() == [0]  # boxes 1 and 2 overlap box 0 with IoU 1/7 and 1/3
    torch.testing.assert_close(s.grad, torch.tensor([1.0, 0.0, 0.0]))


@pytest.mark.parametrize("which", ["boxes", "scores"])
def test_soft_nms_refuses_tensors_that_require_grad(which):
    """soft_nms returns new scores, which would silently lose the graph: refused, naming the
    way to keep it."""
    b = boxes(which == "boxes")
    s = torch.tensor(SCORES, requires_grad=which == "scores")
    with pytest.raises(TypeError, match=rf"soft_nms: {which} requires grad.*scores\[keep\]"):
        fastiou.soft_nms(b, s)
    keep, new_scores = fastiou.soft_nms(b.detach(), s.detach())
    with torch.no_grad():
        keep2, new_scores2 = fastiou.soft_nms(b, s)
    torch.testing.assert_close(keep, keep2)
    torch.testing.assert_close(new_scores, new_scores2)


@pytest.mark.parametrize("in_fmt, out_fmt", list(itertools.product(FORMATS, FORMATS)))
def test_box_convert_and_area_keep_the_graph(in_fmt, out_fmt):
    """The gradients of box_convert and box_area are torchvision's."""
    ours, theirs = boxes(), boxes()
    weights = torch.arange(12.0).reshape(3, 4)
    (fastiou.box_convert(ours, in_fmt, out_fmt) * weights).sum().backward()
    (tv_ops.box_convert(theirs, in_fmt, out_fmt) * weights).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)
    ours, theirs = boxes(), boxes()
    fastiou.box_area(ours).sum().backward()
    tv_ops.box_area(theirs).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


TORCH_DTYPES = [
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
]
INT_BOXES = [[1, 2, 5, 7], [0, 0, 3, 3], [2, 2, 2, 9]]


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_box_area_and_convert_dtypes_are_torchvisions(dtype):
    """Integer boxes keep an integer dtype where torchvision does (box_area upcasts to int32,
    box_convert keeps the dtype unless cxcywh's halves make it float32); the values too. numpy
    input of the same dtype gets the same dtype."""
    t = torch.tensor(INT_BOXES, dtype=getattr(torch, dtype))
    host = None if dtype == "bfloat16" else t.numpy()
    got, want = fastiou.box_area(t), tv_ops.box_area(t)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got, want)
    if host is not None:
        got_np = fastiou.box_area(host)
        assert isinstance(got_np, np.ndarray) and got_np.dtype == want.numpy().dtype
        np.testing.assert_array_equal(got_np, want.numpy())
    for in_fmt, out_fmt in itertools.product(FORMATS, FORMATS):
        got, want = fastiou.box_convert(t, in_fmt, out_fmt), tv_ops.box_convert(t, in_fmt, out_fmt)
        assert got.dtype == want.dtype, (in_fmt, out_fmt)
        torch.testing.assert_close(got, want)
        if host is not None:
            got_np = fastiou.box_convert(host, in_fmt, out_fmt)
            assert got_np.dtype == want.numpy().dtype, (in_fmt, out_fmt)
            np.testing.assert_array_equal(got_np, want.numpy())


def test_box_area_wide_unsigned_is_int64():
    """uint32 / uint64 boxes (no torchvision counterpart): int64, never a wrapping int32."""
    for dtype in (np.uint32, np.uint64):
        area = fastiou.box_area(np.array([[0, 0, 70000, 70000]], dtype))
        assert area.dtype == np.int64 and area[0] == 70000 * 70000
