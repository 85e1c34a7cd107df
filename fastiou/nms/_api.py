"""Non-maximum suppression: nms and batched_nms as drop-ins for torchvision.ops, and soft_nms.

Conventions (torchvision's exact behaviour for nms and batched_nms):

- Boxes are ``[N, 4]`` in ``fmt`` "xyxy" (default), "xywh" or "cxcywh"; scores are ``[N]``.
- Boxes are visited by score, high to low, with a stable sort: equal scores keep the lower index
  first. NaN scores sort first, as ``torch.sort(descending=True)`` puts them; -0.0 equals 0.0.
- A box is dropped when its IoU with an already *kept* box is strictly greater than
  ``iou_threshold``. The IoU is the box family's (``fastiou.box_iou``): ``inter / union`` in the
  boxes' dtype, so a degenerate pair gives NaN, and NaN never suppresses. It is compared with
  the threshold in float64, as torchvision compares its ``float`` IoU with a ``double``.
- The result is int64 indices of the kept boxes in descending score order; empty in gives an
  empty int64 result. torch tensors in give a torch tensor on the same device, numpy gives numpy,
  cupy gives cupy.
- float32 boxes compute in float32, float64 in float64; integer and float16/bfloat16 boxes in
  float32. float32 and float64 scores are sorted as they are; other scores as float64.
- ``batched_nms`` is NMS run independently within each class and merged in descending score
  order (stable), computed per class: never the coordinate-offset trick, which breaks with
  negative coordinates and in low precision.

This module validates and dispatches; the loops live in this folder's backend modules.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from .._core import arrays as _arrays
from .._core import dispatch as _dispatch
from ..boxes._api import Format, _format_code

_SOFT_METHODS = {"linear": False, "gaussian": True}  # method -> the kernels' ``gaussian`` flag


def _real(value: Any, name: str) -> float:
    """``value`` as a finite float, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _max_output(value: Any, n: int) -> int:
    if value is None:
        return n
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"max_output must be None or an integer >= 0, got {value!r}")
    return min(int(value), n)


class _Inputs:
    """Checked boxes, scores and (for batched_nms) class labels, and the chosen backend."""

    def __init__(self, boxes, scores, idxs, backend: str, joint_dtype: bool = False):
        # nms and batched_nms return indices, which carry no gradient (torchvision's nms takes
        # tensors that require grad just so); soft_nms returns new scores, which would silently
        # lose the graph: refused there.
        caller, autograd = ("soft_nms", "raise") if joint_dtype else ("nms", "detach")
        self.boxes = _arrays.Operand(boxes, "boxes", caller=caller, autograd=autograd)
        self.scores = _arrays.Operand(scores, "scores", caller=caller, autograd=autograd)
        shape, score_shape = self.boxes.shape, self.scores.shape
        if len(shape) != 2 or shape[1] != 4:
            raise ValueError(f"boxes must have shape [N, 4], got {list(shape)}")
        if len(score_shape) != 1:
            raise ValueError(f"scores must have shape [N], got {list(score_shape)}")
        if score_shape[0] != shape[0]:
            raise ValueError(
                f"boxes and scores must have the same length, got {shape[0]} boxes "
                f"and {score_shape[0]} scores"
            )
        operands = [self.boxes, self.scores]
        self.idxs = None
        if idxs is not None:
            self.idxs = _arrays.Operand(idxs, "idxs", autograd="detach")
            if not _is_integer(self.idxs):
                raise TypeError(f"idxs must hold integer class labels, not {self.idxs.x.dtype}")
            if self.idxs.shape != score_shape:
                raise ValueError(
                    f"idxs must have shape [N] = [{shape[0]}], got {list(self.idxs.shape)}"
                )
            operands.append(self.idxs)
        if len({op.on_gpu for op in operands}) > 1:
            names = ", ".join(op.name for op in operands)
            raise ValueError(f"{names} must all be on the CPU or all on a GPU")
        self.n = shape[0]
        self.dtype = np.dtype(np.float64 if self.boxes.float64 else np.float32)
        self.score_dtype = np.dtype(np.float32 if _is_float32(self.scores) else np.float64)
        if joint_dtype:  # soft-NMS multiplies scores by IoU decays: one dtype for both
            both64 = self.boxes.float64 or self.scores.float64
            self.dtype = self.score_dtype = np.dtype(np.float64 if both64 else np.float32)
        self.backend, self.kernels = _dispatch.select("nms", backend, self.n, self.boxes.on_gpu)
        self.on_gpu = self.backend == "cuda"

    def arrays(self):
        """boxes, scores (and labels) as the kernels take them: host numpy or CUDA views."""
        convert = _device if self.on_gpu else _host
        out = [convert(self.boxes, self.dtype), convert(self.scores, self.score_dtype)]
        if self.idxs is not None:
            out.append(convert(self.idxs, np.dtype(np.int64)))
        return out

    def result(self, x):
        """A kernel's result (numpy or CUDA) as the caller's array type on the caller's device."""
        return _to_caller(x, self.boxes)


def _is_integer(op: _arrays.Operand) -> bool:
    if op.library == "torch":
        return not op.x.is_floating_point()
    return np.dtype(op.x.dtype).kind in "iu"


def _is_float32(op: _arrays.Operand) -> bool:
    if op.library == "torch":
        import torch

        return op.x.dtype == torch.float32
    return op.x.dtype == np.float32  # False for big-endian: those scores sort as float64


def _torch_dtype(dtype: np.dtype):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}.get(dtype.name, torch.int64)


def _host(op: _arrays.Operand, dtype: np.dtype) -> np.ndarray:
    """The operand as a C-contiguous, native-order numpy array of ``dtype`` (no copy if it is)."""
    x = op.x
    if op.library == "torch":
        x = x.to(_torch_dtype(dtype)).cpu().numpy()
    elif op.library == "cupy":
        x = x.get()
    elif op.library == "cuda":
        x = x.copy_to_host()
    return np.ascontiguousarray(x, dtype=dtype)


def _device(op: _arrays.Operand, dtype: np.dtype):
    """The operand as a C-contiguous numba CUDA array of ``dtype``, converted on its device."""
    from numba import cuda

    x = op.x
    if op.library == "torch" and op.on_gpu:
        return cuda.as_cuda_array(x.to(_torch_dtype(dtype)).contiguous())
    if op.library == "cupy":
        import cupy

        return cuda.as_cuda_array(cupy.ascontiguousarray(x.astype(dtype, copy=False)))
    if op.library == "cuda" and np.dtype(x.dtype) == dtype and x.is_c_contiguous():
        return x
    return cuda.to_device(_host(op, dtype))


def _to_caller(x, like: _arrays.Operand):
    """``x`` (numpy, or a numba CUDA array) in ``like``'s array library and device."""
    on_host = isinstance(x, np.ndarray)
    if like.library == "torch":
        import torch

        if not on_host and (x.size == 0 or like.device.type != "cuda"):
            x, on_host = x.copy_to_host(), True  # CPU tensors in, or nothing to share
        if on_host:
            return torch.from_numpy(x).to(like.device)
        return torch.as_tensor(x, device=like.device)  # zero-copy: __cuda_array_interface__
    if like.library == "cupy":
        import cupy

        return cupy.asarray(x)
    if like.library == "cuda":
        from numba import cuda

        return cuda.to_device(x) if on_host else x
    return x if on_host else x.copy_to_host()


def _empty(inputs: _Inputs, dtype) -> Any:
    return _to_caller(np.empty(0, dtype), inputs.boxes)


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Class labels as int64 in [0, C), and C; classes keep the order of their labels."""
    lo, hi = int(labels.min()), int(labels.max())
    if hi - lo <= 4 * labels.size + 1024:  # a label range this small indexes an array directly
        return labels - lo, hi - lo + 1
    values, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64, copy=False), len(values)


def nms(
    boxes: Any,
    scores: Any,
    iou_threshold: float,
    *,
    fmt: Format = "xyxy",
    max_output: int | None = None,
    backend: str = "auto",
) -> Any:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms`` (the same keep list).

    Visits the boxes by score, high to low (stable: equal scores keep the lower index first),
    and drops every box whose IoU with an already kept box is greater than ``iou_threshold``.

    Parameters
    ----------
    boxes : array_like, shape [N, 4]
        Boxes in format ``fmt``; numpy, torch (CPU or CUDA), cupy or anything ``np.asarray``
        takes.
    scores : array_like, shape [N]
        A score per box; NaN sorts first, as in ``torch.sort(descending=True)``.
    iou_threshold : float
        Drop boxes whose IoU with a kept box is strictly greater than this (finite).
    fmt : {"xyxy", "xywh", "cxcywh"}
        Box format.
    max_output : int, optional
        Keep at most this many boxes: the first ``max_output`` of the full result.
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend; see :func:`fastiou.backends`.

    Returns
    -------
    array of int64, shape [K]
        Indices of the kept boxes in descending score order, in the caller's array type and on
        its device.
    """
    fmt_code = _format_code(fmt)
    threshold = _real(iou_threshold, "iou_threshold")
    if backend == "auto" and max_output is None:
        keep = _lean_nms(boxes, scores, threshold, fmt_code)
        if keep is not None:
            return keep
    inputs = _Inputs(boxes, scores, None, backend)
    cap = _max_output(max_output, inputs.n)
    if cap == 0:
        return _empty(inputs, np.int64)
    boxes_k, scores_k = inputs.arrays()
    return inputs.result(inputs.kernels.nms(boxes_k, scores_k, threshold, fmt_code, cap))


_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _lean_nms(boxes: Any, scores: Any, threshold: float, fmt: int):
    """The common call straight to the Cython kernel, or None for the general path (the same
    keep list): [N, 4] boxes and [N] scores, N > 0, both numpy or both CPU tensors, native
    float32/float64, when ``backend="auto"`` means Cython. The general path's wrappers, dtype
    conversions and dispatch cost as much as the kernel on 300 boxes (bench/README.md)."""
    b, s = _arrays.lean_view(boxes), _arrays.lean_view(scores)
    if (
        b is None
        or s is None
        or type(boxes) is not type(scores)
        or b.ndim != 2
        or s.ndim != 1
        or b.shape[1] != 4
        or not 0 < len(b) == len(s)
        or b.dtype not in _NATIVE_FLOATS
        or s.dtype not in _NATIVE_FLOATS
    ):
        return None
    kernels = _dispatch.lean("nms", len(b))
    if kernels is None:
        return None
    b, s = np.ascontiguousarray(b), np.ascontiguousarray(s)
    return _arrays.lean_result(kernels.nms(b, s, threshold, fmt, len(b)), boxes)


def batched_nms(
    boxes: Any,
    scores: Any,
    idxs: Any,
    iou_threshold: float,
    *,
    fmt: Format = "xyxy",
    max_output: int | None = None,
    backend: str = "auto",
) -> Any:
    """NMS within each class, as ``torchvision.ops.batched_nms`` (the same keep list).

    Boxes of different classes never suppress each other. The result is that of :func:`nms` run
    on each class, merged in descending score order (stable), computed class by class (classes
    run in parallel on the CPU backends), never with the coordinate-offset trick.

    Parameters
    ----------
    boxes : array_like, shape [N, 4]
        Boxes in format ``fmt``.
    scores : array_like, shape [N]
        A score per box.
    idxs : array_like of integers, shape [N]
        The class of each box (any integers).
    iou_threshold : float
        Drop boxes whose IoU with a kept box of their class is greater than this (finite).
    fmt : {"xyxy", "xywh", "cxcywh"}
        Box format.
    max_output : int, optional
        Keep at most this many boxes in all: the first ``max_output`` of the full result.
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend; see :func:`fastiou.backends`.

    Returns
    -------
    array of int64, shape [K]
        Indices of the kept boxes in descending score order, in the caller's array type.

    Notes
    -----
    torchvision sorts the merged result of large inputs with an unstable sort, so where two
    kept boxes have exactly equal scores its order may differ from this one (lower index first).
    """
    fmt_code = _format_code(fmt)
    threshold = _real(iou_threshold, "iou_threshold")
    inputs = _Inputs(boxes, scores, idxs, backend)
    cap = _max_output(max_output, inputs.n)
    if cap == 0:
        return _empty(inputs, np.int64)
    boxes_k, scores_k, labels = inputs.arrays()
    if inputs.on_gpu:  # the CUDA kernel compares labels for equality: any int64 values do
        keep = inputs.kernels.batched_nms(boxes_k, scores_k, labels, threshold, fmt_code, cap)
    else:
        labels, n_classes = _dense_labels(labels)
        keep = inputs.kernels.batched_nms(
            boxes_k, scores_k, labels, n_classes, threshold, fmt_code, cap
        )
    return inputs.result(keep)


def soft_nms(
    boxes: Any,
    scores: Any,
    iou_threshold: float = 0.3,
    *,
    method: Literal["linear", "gaussian"] = "linear",
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    fmt: Format = "xyxy",
    max_output: int | None = None,
    backend: str = "auto",
) -> tuple[Any, Any]:
    """Soft-NMS (Bodla et al., ICCV 2017): decay the scores of overlapping boxes, drop low ones.

    Repeatedly selects the remaining box with the highest current score (NaN highest, equal
    scores: lower index first) and multiplies the score of every other remaining box by a decay
    of its IoU with the selected one:

    - ``"linear"``: ``1 - iou`` where ``iou >= iou_threshold``, else 1 (the paper's and mmcv's
      ``>=``);
    - ``"gaussian"``: ``exp(-iou**2 / sigma)`` (as the paper's code and mmcv; no factor 2).

    A NaN IoU does not decay. A box whose score is below ``score_threshold``, at the start or
    after a decay, is discarded. Defaults are mmcv's (``iou_threshold=0.3``, ``sigma=0.5``,
    ``min_score=1e-3``), without the legacy ``+1`` pixel offset.

    Parameters
    ----------
    boxes : array_like, shape [N, 4]
        Boxes in format ``fmt``.
    scores : array_like, shape [N]
        A score per box.
    iou_threshold : float
        The linear decay applies from this IoU on (unused by the gaussian decay).
    method : {"linear", "gaussian"}
        The decay.
    sigma : float
        Gaussian width (> 0).
    score_threshold : float
        Boxes scoring below this are discarded.
    fmt : {"xyxy", "xywh", "cxcywh"}
        Box format.
    max_output : int, optional
        Stop after selecting this many boxes.
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend; see :func:`fastiou.backends`.

    Returns
    -------
    keep : array of int64, shape [K]
        Indices of the kept boxes in selection order (non-increasing decayed score).
    scores : array, shape [K]
        Their scores when selected; float32, or float64 if boxes or scores are float64.

    Notes
    -----
    Differences from mmcv's ``soft_nms``: mmcv always returns the top box even when its score is
    below ``min_score``, and breaks exact ties of decayed scores by its internal swap order; here
    the top box is filtered like any other and ties go to the lower index. The original
    ``cpu_soft_nms`` of the paper's code also uses the ``+1`` pixel convention and ``iou > Nt``
    for the linear decay, and never discards a box that overlaps nothing.
    """
    if method not in _SOFT_METHODS:
        raise ValueError(f"method must be 'linear' or 'gaussian', got {method!r}")
    fmt_code = _format_code(fmt)
    threshold = _real(iou_threshold, "iou_threshold")
    sigma = _real(sigma, "sigma")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    min_score = _real(score_threshold, "score_threshold")
    inputs = _Inputs(boxes, scores, None, backend, joint_dtype=True)
    cap = _max_output(max_output, inputs.n)
    if cap == 0:
        return _empty(inputs, np.int64), _empty(inputs, inputs.dtype)
    boxes_k, scores_k = inputs.arrays()
    keep, new_scores = inputs.kernels.soft_nms(
        boxes_k, scores_k, threshold, sigma, min_score, _SOFT_METHODS[method], fmt_code, cap
    )
    return inputs.result(keep), inputs.result(new_scores)
