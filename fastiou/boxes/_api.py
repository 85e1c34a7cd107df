"""The box-overlap family: IoU, GIoU, DIoU, CIoU and IoA matrices, box_area, box_convert.

Conventions (torchvision's, unless said otherwise):

- Boxes are ``[..., N, 4]`` arrays in ``fmt`` "xyxy" ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and
  ``y1 <= y2``, "xywh" ``(x1, y1, w, h)`` or "cxcywh" ``(cx, cy, w, h)``. Leading batch
  dimensions broadcast against each other.
- Pairwise results are ``[..., N, M]``; with ``aligned=True`` both inputs have N boxes and the
  result is ``[..., N]``, the overlap of box k with box k.
- float32 in gives float32 out, float64 gives float64 (float64 wins when the two differ);
  integer and float16/bfloat16 boxes compute in float32.
- ``offset=1`` is the legacy pixel convention of cython_bbox / old Detectron: a box covers
  ``x2 - x1 + 1`` pixels.
- ``degenerate="nan"`` keeps IEEE arithmetic, so 0/0 from zero-area boxes is NaN exactly as in
  torchvision; ``degenerate="zero"`` makes every ratio with a zero denominator 0. NaN coordinates
  give NaN either way.

This module validates and dispatches; the loops live in this folder's backend modules.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from .._core import arrays as _arrays
from .._core import dispatch as _dispatch

Format = Literal["xyxy", "xywh", "cxcywh"]
_FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}  # the codes of _formulas.FORMATS
_DEGENERATE = {"nan": False, "zero": True}
_CALLERS = {
    "iou": "box_iou",
    "giou": "generalized_box_iou",
    "diou": "distance_box_iou",
    "ciou": "complete_box_iou",
    "ioa1": "box_ioa",
    "ioa2": "box_ioa",
}


def _format_code(fmt: str, name: str = "fmt") -> int:
    if not isinstance(fmt, str) or fmt not in _FORMATS:
        raise ValueError(f"{name} must be one of {', '.join(_FORMATS)}; got {fmt!r}")
    return _FORMATS[fmt]


def _check_eps(eps: Any) -> None:
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def _check_boxes(operand: _arrays.Operand) -> None:
    if len(operand.shape) < 2 or operand.shape[-1] != 4:
        raise ValueError(f"{operand.name} must have shape [..., N, 4], got {list(operand.shape)}")


def _overlap(
    op: str,
    boxes1: Any,
    boxes2: Any,
    fmt: Format,
    aligned: bool,
    offset: int,
    degenerate: str,
    eps: float,
    out: Any,
    backend: str,
) -> Any:
    """Validate, pick a backend, allocate the result and run ``op``'s kernel (``eps``: checked
    by the callers that take it from the user)."""
    fmt_code = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if fmt_code is None:
        _format_code(fmt)  # raises
    if offset not in (0, 1) or isinstance(offset, bool):
        raise ValueError(f"offset must be 0 or 1 (the legacy +1 pixel convention), got {offset!r}")
    zero_div = _DEGENERATE.get(degenerate) if isinstance(degenerate, str) else None
    if zero_div is None:
        raise ValueError(f"degenerate must be 'nan' or 'zero', got {degenerate!r}")
    if backend == "auto" and not aligned:
        matrix = _lean(op, boxes1, boxes2, fmt_code, offset, eps, zero_div, out)
        if matrix is not None:
            return matrix
    a = _arrays.Operand(boxes1, "boxes1", caller=_CALLERS[op])
    b = _arrays.Operand(boxes2, "boxes2", caller=_CALLERS[op])
    _check_boxes(a)
    _check_boxes(b)
    if a.on_gpu != b.on_gpu:
        raise ValueError("boxes1 and boxes2 must both be on the CPU or both on a GPU")
    try:
        batch = a.shape[:-2]
        if batch != b.shape[:-2]:
            batch = np.broadcast_shapes(batch, b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch dimensions of boxes1 {list(a.shape)} and boxes2 {list(b.shape)} "
            "do not broadcast"
        ) from None
    n, m = a.shape[-2], b.shape[-2]
    if aligned and n != m:
        raise ValueError(f"aligned=True needs as many boxes1 as boxes2, got {n} and {m}")
    shape = batch + ((n,) if aligned else (n, m))
    dtype = np.dtype(np.float64 if (a.float64 or b.float64) else np.float32)
    work = _arrays.size(shape)
    name, kernels = _dispatch.select("boxes", backend, work, a.on_gpu)
    on_gpu = name == "cuda"
    result = _arrays.Result(a if a.library != "numpy" else b, shape, dtype, out, on_gpu)
    if work:
        x1 = a.prepare(dtype, batch, on_gpu)
        x2 = b.prepare(dtype, batch, on_gpu)
        view = result.view.reshape((-1,) + shape[len(batch) :])
        run = kernels.aligned if aligned else kernels.pairwise
        run(op, x1, x2, view, fmt_code, offset, eps, zero_div)
    return result.finish()


def _lean(op: str, boxes1, boxes2, fmt: int, offset: int, eps: float, zero_div: bool, out):
    """The common call in one compiled step, or None for the general path (same numbers).

    Taken for [N, 4] and [M, 4] numpy arrays or CPU tensors (both one kind, native float32 or
    float64 of one dtype, any strides; ``out`` None or a C-contiguous array of that kind, the
    result's shape and dtype; the compiled entry checks, or declines) when ``backend="auto"``
    means Cython for this work. The general path's Operand/Result layers, feature arrays and
    dispatch cost 2x the kernel of a 100 x 100 matrix (bench/README.md, "Small calls").
    """
    if type(boxes1) is not type(boxes2):
        return None
    if type(boxes1) is np.ndarray:  # numpy: itself (lean_view's first test, without the call)
        a, b = boxes1, boxes2
    else:
        a, b = _arrays.lean_view(boxes1), _arrays.lean_view(boxes2)
        if a is None or b is None:
            return None
    view = None if out is None else _arrays.lean_view(out)
    if out is not None and (view is None or type(out) is not type(boxes1)):
        return None
    kernels = _dispatch.lean("boxes", (a.size * b.size) >> 4)  # N * M pairs for [N, 4], [M, 4]
    if kernels is None:
        return None
    matrix = kernels.pairwise(op, a, b, view, fmt, offset, eps, zero_div, True)  # lean
    if matrix is None:
        return None
    if out is not None:
        return out
    return matrix if type(boxes1) is np.ndarray else _arrays.lean_result(matrix, boxes1)


_COMMON_DOC = """
    Parameters
    ----------
    boxes1 : array_like, shape [..., N, 4]
        Boxes in format ``fmt``; numpy, torch (CPU or CUDA), cupy or anything ``np.asarray`` takes.
    boxes2 : array_like, shape [..., M, 4]
        Boxes in format ``fmt``; batch dimensions broadcast against those of ``boxes1``.
    fmt : {"xyxy", "xywh", "cxcywh"}
        Box format of both inputs.
    aligned : bool
        If True, N == M and the result is [..., N]: box k of boxes1 against box k of boxes2.
    offset : {0, 1}
        1 for the legacy pixel convention (width = x2 - x1 + 1) of cython_bbox.
    degenerate : {"nan", "zero"}
        What a ratio with a zero denominator gives: NaN (IEEE, as torchvision) or 0.
    out : array, optional
        Result array of the right shape and dtype, in the caller's array type.
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend; see :func:`fastiou.backends`.

    Returns
    -------
    array, shape [..., N, M] (or [..., N] if aligned)
        float32, or float64 if either input is float64; the caller's array type and device.
"""


def _documented(summary: str):
    def wrap(f):
        f.__doc__ = summary + _COMMON_DOC
        return f

    return wrap


@_documented(
    """Intersection over union of every pair of boxes (torchvision.ops.box_iou).

    ``inter / (area1 + area2 - inter)``.
"""
)
def box_iou(
    boxes1: Any,
    boxes2: Any,
    *,
    fmt: Format = "xyxy",
    aligned: bool = False,
    offset: int = 0,
    degenerate: Literal["nan", "zero"] = "nan",
    out: Any = None,
    backend: str = "auto",
) -> Any:
    return _overlap("iou", boxes1, boxes2, fmt, aligned, offset, degenerate, 0.0, out, backend)


@_documented(
    """Generalized IoU of every pair of boxes (torchvision.ops.generalized_box_iou).

    ``iou - (C - union) / C`` with C the area of the smallest box enclosing both; in [-1, 1].
"""
)
def generalized_box_iou(
    boxes1: Any,
    boxes2: Any,
    *,
    fmt: Format = "xyxy",
    aligned: bool = False,
    offset: int = 0,
    degenerate: Literal["nan", "zero"] = "nan",
    out: Any = None,
    backend: str = "auto",
) -> Any:
    return _overlap("giou", boxes1, boxes2, fmt, aligned, offset, degenerate, 0.0, out, backend)


@_documented(
    """Distance IoU of every pair of boxes (torchvision.ops.distance_box_iou).

    ``iou - d^2 / (c^2 + eps)`` with d the distance between the centres and c the diagonal of the
    enclosing box; ``eps`` (keyword, default 1e-7) as torchvision.
"""
)
def distance_box_iou(
    boxes1: Any,
    boxes2: Any,
    *,
    eps: float = 1e-7,
    fmt: Format = "xyxy",
    aligned: bool = False,
    offset: int = 0,
    degenerate: Literal["nan", "zero"] = "nan",
    out: Any = None,
    backend: str = "auto",
) -> Any:
    _check_eps(eps)
    return _overlap("diou", boxes1, boxes2, fmt, aligned, offset, degenerate, eps, out, backend)


@_documented(
    """Complete IoU of every pair of boxes (torchvision.ops.complete_box_iou).

    ``diou - alpha * v`` with ``v = 4 / pi^2 (atan(w1/h1) - atan(w2/h2))^2`` and
    ``alpha = v / (1 - iou + v + eps)``; ``eps`` (keyword, default 1e-7) as torchvision.
"""
)
def complete_box_iou(
    boxes1: Any,
    boxes2: Any,
    *,
    eps: float = 1e-7,
    fmt: Format = "xyxy",
    aligned: bool = False,
    offset: int = 0,
    degenerate: Literal["nan", "zero"] = "nan",
    out: Any = None,
    backend: str = "auto",
) -> Any:
    _check_eps(eps)
    return _overlap("ciou", boxes1, boxes2, fmt, aligned, offset, degenerate, eps, out, backend)


@_documented(
    """Intersection over the area of one box of each pair (IoA; mmdet's "iof").

    ``over="boxes1"`` (default) divides by the area of the boxes1 box, ``over="boxes2"`` by that
    of the boxes2 box: the fraction of that box covered by the other.
"""
)
def box_ioa(
    boxes1: Any,
    boxes2: Any,
    *,
    over: Literal["boxes1", "boxes2"] = "boxes1",
    fmt: Format = "xyxy",
    aligned: bool = False,
    offset: int = 0,
    degenerate: Literal["nan", "zero"] = "nan",
    out: Any = None,
    backend: str = "auto",
) -> Any:
    ops = {"boxes1": "ioa1", "boxes2": "ioa2"}
    if not isinstance(over, str) or over not in ops:
        raise ValueError(f"over must be 'boxes1' or 'boxes2', got {over!r}")
    return _overlap(ops[over], boxes1, boxes2, fmt, aligned, offset, degenerate, 0.0, out, backend)


def _namespace(x: Any):
    """The array library of ``x`` for the small elementwise functions below."""
    library = _arrays._library(x)
    if library == "torch":
        import torch

        return torch
    if library == "cupy":
        import cupy

        return cupy
    return np


def _as_boxes(boxes: Any, name: str = "boxes"):
    """``boxes`` as an array of its own library (torch tensors as they are, autograd graph
    included), checked to be ``[..., 4]``."""
    operand = _arrays.Operand(boxes, name, autograd="keep")
    if len(operand.shape) < 1 or operand.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4], got {list(operand.shape)}")
    if operand.library == "cuda":
        raise TypeError(f"{name}: use a torch or cupy array here, not {type(boxes).__name__}")
    return operand.x


def _upcast(x: Any) -> Any:
    """torchvision's ``_upcast`` (against overflow in products): floats other than float32 and
    float64 become float32, integers other than int32 and int64 become int32 (uint32 and uint64,
    which torch lacks or rarely has, int64 here rather than a wrapping int32)."""
    if _arrays._library(x) == "torch":
        import torch

        if x.is_floating_point():
            return x if x.dtype in (torch.float32, torch.float64) else x.float()
        if x.dtype in (torch.int32, torch.int64):
            return x
        return x.long() if x.dtype in (torch.uint32, torch.uint64) else x.int()
    kind, size = x.dtype.kind, x.dtype.itemsize
    if kind == "f":
        return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    if x.dtype in (np.int32, np.int64):
        return x
    return x.astype(np.int64 if kind == "u" and size >= 4 else np.int32)


def box_area(boxes: Any, *, fmt: Format = "xyxy", offset: int = 0) -> Any:
    """Area of each box: ``(x2 - x1 + offset) * (y2 - y1 + offset)`` (torchvision.ops.box_area).

    Parameters
    ----------
    boxes : array_like, shape [..., 4]
        Boxes in format ``fmt``.
    fmt : {"xyxy", "xywh", "cxcywh"}
        Box format.
    offset : {0, 1}
        1 for the legacy pixel convention.

    Returns
    -------
    array, shape [...]
        In the caller's array type, with torchvision's dtype: float32 and float64 and int32 and
        int64 boxes keep their dtype, other floats give float32, other integers int32 (uint32 and
        uint64: int64). Torch tensors keep their autograd graph (this is torch arithmetic).
    """
    code = _format_code(fmt)
    if offset not in (0, 1) or isinstance(offset, bool):
        raise ValueError(f"offset must be 0 or 1, got {offset!r}")
    x = _upcast(_as_boxes(boxes))
    if code == 0:
        return (x[..., 2] - x[..., 0] + offset) * (x[..., 3] - x[..., 1] + offset)
    return (x[..., 2] + offset) * (x[..., 3] + offset)


def box_convert(boxes: Any, in_fmt: Format, out_fmt: Format) -> Any:
    """Convert boxes between "xyxy", "xywh" and "cxcywh" (torchvision.ops.box_convert).

    Parameters
    ----------
    boxes : array_like, shape [..., 4]
        Boxes in ``in_fmt``.
    in_fmt, out_fmt : {"xyxy", "xywh", "cxcywh"}
        Source and target formats.

    Returns
    -------
    array, shape [..., 4]
        A new array in the caller's array type, with torchvision's dtype: the boxes' own, except
        that integer boxes give float32 when "cxcywh" is either format (its halves). Torch
        tensors keep their autograd graph (this is torch arithmetic).
    """
    src, dst = _format_code(in_fmt, "in_fmt"), _format_code(out_fmt, "out_fmt")
    x = _as_boxes(boxes)
    xp = _namespace(x)
    is_torch = xp is not np and xp.__name__ == "torch"
    if src == dst:
        return x.clone() if is_torch else x.copy()
    if not is_torch and x.dtype.kind in "iu" and 2 in (src, dst):
        x = x.astype(np.float32)  # torch's int / 2 and 0.5 * int are float32; numpy's float64
    c0, c1, c2, c3 = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    if src == 1:  # xywh -> xyxy
        c2, c3 = c0 + c2, c1 + c3
    elif src == 2:  # cxcywh -> xyxy
        c0, c1, c2, c3 = c0 - 0.5 * c2, c1 - 0.5 * c3, c0 + 0.5 * c2, c1 + 0.5 * c3
    if dst == 1:
        c2, c3 = c2 - c0, c3 - c1
    elif dst == 2:
        c0, c1, c2, c3 = (c0 + c2) / 2, (c1 + c3) / 2, c2 - c0, c3 - c1
    return xp.stack([c0, c1, c2, c3], -1)
