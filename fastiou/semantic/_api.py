"""Per-pixel confusion counts and the semantic-segmentation metrics built on them.

Conventions (mmseg's and sklearn's unless said otherwise):

- ``matrix[target, prediction]``: rows are ground truth, columns prediction; int64, exact past
  2**32 pixels. A small numpy array whatever the input's array type or device.
- Label maps may have any integer (or bool) dtype and any shape (images, batches, volumes), with
  any strides: they are read in place, never converted to int64 and no per-pixel temporary is
  allocated (big-endian input is the exception: it is converted to native order first).
- Target processing, per pixel and in one pass, in the order of mmseg's ``intersect_and_union``:
  ``label_map`` (a lookup table; values it does not cover keep their value), then
  ``reduce_zero_label`` (ADE20K, as mmseg: 0 becomes 255, 255 stays 255, every other label moves
  down by one), then ``ignore_index`` in that reduced label space (one value or several: the pixel
  is skipped entirely, whatever the prediction there). So with ``reduce_zero_label=True`` pass
  ``ignore_index=255`` (mmseg's default) to skip the zeros. Predictions are used as they are.
- A target or prediction label outside ``[0, num_classes)`` at a counted pixel raises ValueError
  naming the value (a prediction at an ignored pixel is not looked at). Nothing is counted then.
- Scores: a floating-point ``prediction`` with one more dimension than ``target`` holds per-class
  scores or logits, reduced by argmax over its class axis in the same pass (no argmax map is
  materialized). Ties go to the lowest class and a NaN score counts as the maximum (the first NaN
  wins), exactly as ``np.argmax`` and ``torch.argmax``. The class axis is ``class_axis`` if given,
  else axis 1 when removing it leaves the target's shape (``[N, C, H, W]`` against ``[N, H, W]``,
  as torch and mmseg), else axis 0 (``[C, H, W]`` against ``[H, W]``).

This module validates and dispatches; the loops live in this folder's backend modules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import numpy as np

from .._core import arrays as _arrays
from .._core import dispatch as _dispatch
from . import _common as common

Convention = Literal["mmseg", "detectron2", "torchmetrics"]
CONVENTIONS = ("mmseg", "detectron2", "torchmetrics")
# The kernels' histograms have (C + 2) * (C + 1) bins per thread: 134 MB of int64 at this size.
MAX_CLASSES = 4096


# ---------------------------------------------------------------------------------------------
# Settings and inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Settings:
    num_classes: int
    ignores: tuple[int, ...]
    label_map: tuple[np.ndarray, np.ndarray] | None  # sorted int64 keys, int64 values
    reduce_zero_label: bool
    class_axis: int | None

    def same_counts(self, other: _Settings) -> bool:
        """Whether matrices counted under ``self`` and ``other`` may be added."""
        maps = [
            None if m is None else (m[0].tobytes(), m[1].tobytes())
            for m in (self.label_map, other.label_map)
        ]
        return (
            self.num_classes == other.num_classes
            and set(self.ignores) == set(other.ignores)
            and maps[0] == maps[1]
            and self.reduce_zero_label == other.reduce_zero_label
        )

    def describe(self) -> str:
        parts = [f"ignore_index={list(self.ignores) or None}"]
        if self.label_map is not None:
            parts.append("label_map applied")
        if self.reduce_zero_label:
            parts.append("reduce_zero_label=True")
        return ", ".join(parts)


class CountOptions(TypedDict, total=False):
    """The keyword options of :func:`confusion_matrix`, as the functions that forward them
    (``fastiou.dask``) take them: ``**options: Unpack[CountOptions]``."""

    ignore_index: int | Iterable[int] | None
    label_map: Mapping[int, int] | Any | None
    reduce_zero_label: bool
    class_axis: int | None
    backend: str


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _settings(
    num_classes: Any,
    ignore_index: Any,
    label_map: Any,
    reduce_zero_label: Any,
    class_axis: Any,
) -> _Settings:
    c = _integer(num_classes, "num_classes")
    if not 1 <= c <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in [1, {MAX_CLASSES}], got {c}")
    if ignore_index is None:
        ignores: tuple[int, ...] = ()
    elif isinstance(ignore_index, Iterable) and not isinstance(ignore_index, (str, bytes)):
        ignores = tuple(_integer(v, "ignore_index values") for v in ignore_index)
    else:
        ignores = (_integer(ignore_index, "ignore_index"),)
    if not isinstance(reduce_zero_label, (bool, np.bool_)):
        raise TypeError(f"reduce_zero_label must be True or False, got {reduce_zero_label!r}")
    if class_axis is not None:
        class_axis = _integer(class_axis, "class_axis")
    return _Settings(c, ignores, _label_map(label_map), bool(reduce_zero_label), class_axis)


def _label_map(label_map: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``{old: new}`` or a 1-D lookup table (``old`` = index) as sorted int64 (keys, values)."""
    if label_map is None:
        return None
    if isinstance(label_map, Mapping):
        pairs = sorted(
            (_integer(k, "label_map keys"), _integer(v, "label_map values"))
            for k, v in label_map.items()
        )
        try:
            keys = np.array([k for k, _ in pairs], np.int64)
            values = np.array([v for _, v in pairs], np.int64)
        except OverflowError:
            raise ValueError("label_map keys and values must fit in int64") from None
        return keys, values
    table = np.asarray(label_map)
    if table.ndim != 1 or table.dtype.kind not in "iu":
        raise TypeError(
            "label_map must be a mapping {old: new} or a 1-D integer lookup table, "
            f"got {type(label_map).__name__} of shape {table.shape} and dtype {table.dtype}"
        )
    return np.arange(len(table), dtype=np.int64), table.astype(np.int64)


class _Input:
    """A label map or score array: where it lives and what it holds, converted on demand."""

    def __init__(self, x: Any, name: str):
        self.name = name
        self.library = _arrays._library(x)
        if self.library == "numpy" and not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{name} must be an array, got {type(x).__name__}") from e
        if self.library == "torch":
            x = x.detach()
            self.on_gpu = x.device.type != "cpu"
            floating = x.is_floating_point()
            kind = str(x.dtype).replace("torch.", "")
            if not self.on_gpu:
                x = (x.float() if kind in ("bfloat16", "float16") else x).numpy()
                self.library = "numpy"
            dtype = None if floating or kind not in _LABEL_DTYPES else np.dtype(kind)
        else:
            self.on_gpu = self.library != "numpy"
            dtype = np.dtype(x.dtype)
            floating = dtype.kind == "f"
            dtype = dtype.newbyteorder("=") if dtype.kind in "biu" else None
        if not floating and dtype is None:
            raise TypeError(f"{name} must hold integer labels (or float scores), not {x.dtype}")
        # The dtype the kernels' label tables are built for (bool is read as uint8).
        self.label_dtype = None if floating else _UINT8 if dtype == np.bool_ else dtype
        self.x = x
        self.floating = floating
        self.shape = tuple(x.shape)

    def widen_int8(self) -> None:
        """int8 labels as int16 (a copy), for more than 128 classes: the kernels read labels as
        unsigned bits, and a negative int8 label's bits (128..255) would then be classes."""
        x = self.x
        if self.library == "torch":
            import torch

            self.x = x.to(torch.int16)
        elif self.library == "cuda":
            from numba import cuda

            self.x = cuda.to_device(x.copy_to_host().astype(np.int16))
        else:
            self.x = x.astype(np.int16)
        self.label_dtype = np.dtype(np.int16)

    def host(self) -> np.ndarray:
        """A numpy array in native byte order (a view where possible)."""
        x = self.x
        if self.library == "torch":
            x = (x.float() if x.dtype.is_floating_point and x.element_size() == 2 else x).cpu()
            x = x.numpy()
        elif self.library == "cupy":
            x = x.get()
        elif self.library == "cuda":
            x = x.copy_to_host()
        x = np.asarray(x)
        if self.floating and x.dtype.itemsize < 4:
            x = x.astype(np.float32)
        if not x.dtype.isnative:
            x = x.astype(x.dtype.newbyteorder("="))
        if x.dtype == np.bool_:
            x = x.view(np.uint8)
        return x

    def device(self):
        """A C-contiguous numba CUDA array (copied to the GPU or made contiguous if needed)."""
        from numba import cuda

        x = self.x
        if self.library == "torch":
            if x.is_floating_point() and x.element_size() == 2:
                x = x.float()
            import torch

            x = x.contiguous() if x.device.type != "cpu" else x.cuda().contiguous()
            return cuda.as_cuda_array(x.view(torch.uint8) if x.dtype == torch.bool else x)
        if self.library == "cupy":
            import cupy

            x = cupy.ascontiguousarray(x)
            if x.dtype == np.bool_ or (self.floating and x.dtype.itemsize < 4):
                x = x.astype(np.uint8 if x.dtype == np.bool_ else np.float32)
            return cuda.as_cuda_array(x)
        converts = x.dtype == np.bool_ or (self.floating and x.dtype.itemsize < 4)
        if self.library == "cuda" and x.is_c_contiguous() and not converts:
            return x
        return cuda.to_device(np.ascontiguousarray(self.host()))


_UINT8 = np.dtype(np.uint8)
_LABEL_DTYPES = {
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
}


def _score_axis(scores: _Input, target: _Input, settings: _Settings) -> int:
    """The class axis of ``scores``, checked against the target's shape and num_classes."""
    shape, want = scores.shape, target.shape
    if len(shape) != len(want) + 1:
        raise ValueError(
            f"float {scores.name} of shape {list(shape)} must have one more dimension (the class "
            f"axis) than {target.name} {list(want)}"
        )
    axis = settings.class_axis
    if axis is None:
        candidates = [a for a in (1, 0) if a < len(shape) and shape[:a] + shape[a + 1 :] == want]
        if not candidates:
            raise ValueError(
                f"cannot find the class axis of {scores.name} {list(shape)} for {target.name} "
                f"{list(want)}: removing axis 1 or 0 must leave the target's shape; pass class_axis"
            )
        axis = candidates[0]
    else:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"class_axis {axis} is out of range for {len(shape)}-D scores")
        axis %= len(shape)
        if shape[:axis] + shape[axis + 1 :] != want:
            raise ValueError(
                f"{scores.name} {list(shape)} without its class axis {axis} must have the shape "
                f"of {target.name} {list(want)}"
            )
    if shape[axis] != settings.num_classes:
        raise ValueError(
            f"{scores.name} has {shape[axis]} classes along axis {axis}, "
            f"expected num_classes={settings.num_classes}"
        )
    return axis


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


def _count(prediction: Any, target: Any, settings: _Settings, backend: str) -> np.ndarray:
    """The checked ``[C, C]`` int64 confusion matrix of one prediction/target pair."""
    p, t = _Input(prediction, "prediction"), _Input(target, "target")
    if t.floating:
        raise TypeError(f"target must hold integer labels, not {t.x.dtype}")
    if p.on_gpu != t.on_gpu:
        raise ValueError("prediction and target must both be on the CPU or both on a GPU")
    axis = _score_axis(p, t, settings) if p.floating else None
    if axis is None and p.shape != t.shape:
        raise ValueError(
            f"prediction {list(p.shape)} and target {list(t.shape)} must have the same shape"
        )
    c = settings.num_classes
    pixels = math.prod(t.shape)
    if pixels == 0:
        return np.zeros((c, c), np.int64)
    if p.label_dtype == np.int8 and c > 128:
        p.widen_int8()
    name, kernels = _dispatch.select("confusion", backend, pixels, t.on_gpu)
    on_gpu = name == "cuda"
    t_host = None if on_gpu else t.host()
    plan = common.label_plan(
        t.label_dtype, c, settings.ignores, settings.label_map, settings.reduce_zero_label
    )
    if on_gpu:
        hist = kernels.count(p.device(), t.device(), plan, axis)
    else:
        kernel = kernels.labels if axis is None else kernels.logits
        hist = common.run(kernel, _host_views(p.host(), t_host, axis), plan)
    if np.count_nonzero(hist[c + 1]) or np.count_nonzero(hist[:c, c]):  # (faster than .any())
        p_host, t_host = p.host(), t.host() if t_host is None else t_host
        common.raise_for_invalid(
            hist,
            lambda: _host_views(p_host, t_host, axis),
            plan,
            t_host.dtype,
            None if axis is not None else p_host.dtype,
            settings.describe(),
        )
    return np.ascontiguousarray(hist[:c, :c])


def _host_views(prediction: np.ndarray, target: np.ndarray, axis: int | None):
    """The kernels' views: unsigned labels, scores as they are."""
    target = common.as_unsigned(target)
    if axis is None:
        return common.label_views(target, common.as_unsigned(prediction))
    return common.logit_views(target, prediction, axis)


def confusion_matrix(
    prediction: Any,
    target: Any,
    num_classes: int,
    *,
    ignore_index: int | Iterable[int] | None = None,
    label_map: Mapping[int, int] | Any | None = None,
    reduce_zero_label: bool = False,
    class_axis: int | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """Per-pixel confusion counts: ``matrix[t, p]`` = pixels of class t predicted as class p.

    Parameters
    ----------
    prediction : array_like
        Integer (or bool) labels of the target's shape, or float scores/logits with one more
        dimension, the class axis (see ``class_axis``), reduced by argmax in the same pass.
        numpy, torch (CPU or CUDA), cupy, or anything ``np.asarray`` takes.
    target : array_like
        Ground-truth integer (or bool) labels, any shape and strides.
    num_classes : int
        C: the classes are ``0 .. C-1``.
    ignore_index : int or sequence of int, optional
        Target value(s) whose pixels are skipped entirely, checked last: after ``label_map`` and
        ``reduce_zero_label``, in the reduced label space (mmseg's order).
    label_map : mapping or 1-D integer array, optional
        Target remap applied first: ``{old: new}``, or a lookup table ``new = table[old]``;
        values it does not cover keep their value. Map to an ignore value to drop a label.
    reduce_zero_label : bool
        ADE20K convention, applied after ``label_map``, as mmseg: target 0 becomes 255, 255
        stays 255, other labels move down by one. Use it with ``ignore_index=255`` (mmseg's
        default), which then skips the former zeros; otherwise a 0 is an out-of-range label.
    class_axis : int, optional
        The class axis of float scores; by default 1 if removing it leaves the target's shape
        (``[N, C, H, W]``), else 0 (``[C, H, W]``).
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend; see :func:`fastiou.backends`.

    Returns
    -------
    numpy.ndarray, int64, shape [C, C]
        Rows ground truth, columns prediction.

    Raises
    ------
    ValueError
        Mismatched shapes, or a label outside ``[0, C)`` at a counted pixel (the message names
        it); nothing is counted then.
    TypeError
        Non-integer target, complex or object arrays.
    """
    plain = label_map is None and reduce_zero_label is False and class_axis is None
    if backend == "auto" and plain:
        matrix = _lean_count(prediction, target, num_classes, ignore_index)
        if matrix is not None:
            return matrix
    settings = _settings(num_classes, ignore_index, label_map, reduce_zero_label, class_axis)
    return _count(prediction, target, settings, backend)


# (target dtype, num_classes, ignore_index) -> the label plan: the lean path's settings cache
_LEAN_PLANS: dict[tuple, common.LabelPlan] = {}
_LEAN_DTYPES = {np.dtype(name): np.dtype(name) for name in _LABEL_DTYPES - {"bool"}}
_LEAN_DTYPES[np.dtype(np.bool_)] = _UINT8


def _lean_count(prediction: Any, target: Any, num_classes: Any, ignore_index: Any):
    """The common call (two label arrays, at most one ignore value) in one compiled step, or
    None for the general path (same numbers; it also gives every error message).

    The general path's settings, input wrappers, plan lookup, views and histogram post-checks
    cost 8x the kernel of a 64 x 64 map (bench/README.md, "Small calls").
    """
    t, p = _arrays.lean_view(target), _arrays.lean_view(prediction)
    if t is None or p is None or type(num_classes) is not int:
        return None
    if ignore_index is not None and type(ignore_index) is not int:
        return None
    key = (t.dtype, num_classes, ignore_index)
    plan = _LEAN_PLANS.get(key)
    if plan is None:
        label_dtype = _LEAN_DTYPES.get(t.dtype)
        if label_dtype is None or not 1 <= num_classes <= MAX_CLASSES:
            return None
        ignores = () if ignore_index is None else (ignore_index,)
        plan = common.label_plan(label_dtype, num_classes, ignores, None, False)
        if len(_LEAN_PLANS) >= 64:
            _LEAN_PLANS.clear()
        _LEAN_PLANS[key] = plan
    kernels = _dispatch.lean("confusion", t.size)
    return None if kernels is None else kernels.lean_labels(t, p, plan)


def multilabel_confusion_matrix(
    prediction: Any,
    target: Any,
    *,
    class_axis: int = 1,
    ignore_index: int | Iterable[int] | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """Per-class 2x2 counts of binary or multilabel masks (one boolean channel per class).

    Layout as ``sklearn.metrics.multilabel_confusion_matrix``: ``out[c] = [[TN, FP], [FN, TP]]``
    (rows target 0/1, columns prediction 0/1). For a single binary mask pair, call
    :func:`confusion_matrix` with ``num_classes=2`` instead.

    Parameters
    ----------
    prediction, target : array_like
        Masks of the same shape, bool or integer 0/1 (threshold probabilities first, e.g.
        ``probs > 0.5``); the classes run along ``class_axis``.
    class_axis : int
        The class (channel) axis: 1 for ``[N, C, H, W]`` (torchmetrics), 0 for ``[C, H, W]``.
    ignore_index : int or sequence of int, optional
        Target value(s) skipped, per channel (e.g. 255 in a uint8 mask).
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        Kernel backend.

    Returns
    -------
    numpy.ndarray, int64, shape [C, 2, 2]
    """
    settings = _settings(2, ignore_index, None, False, None)
    p, t = _Input(prediction, "prediction"), _Input(target, "target")
    if p.floating or t.floating:
        raise TypeError("multilabel masks must be bool or integer 0/1; threshold scores first")
    if p.shape != t.shape:
        raise ValueError(
            f"prediction {list(p.shape)} and target {list(t.shape)} must have the same shape"
        )
    if not -len(t.shape) <= _integer(class_axis, "class_axis") < len(t.shape):
        raise ValueError(f"class_axis {class_axis} is out of range for {len(t.shape)}-D masks")
    axis = class_axis % len(t.shape)
    channels = [
        _count(_take(p.x, c, axis), _take(t.x, c, axis), settings, backend)
        for c in range(t.shape[axis])
    ]
    return np.stack(channels) if channels else np.zeros((0, 2, 2), np.int64)


def _take(x: Any, index: int, axis: int) -> Any:
    """``x[..., index, ...]`` along ``axis``, a view in x's own array library."""
    return x[(slice(None),) * axis + (index,)]


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _divide(num: np.ndarray, den: np.ndarray, defined: np.ndarray, fill: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        q = num / den
    return np.where(defined, q, fill)


def _mean(values: np.ndarray, weights: np.ndarray | None, fill: float) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN, or weighted) values; ``fill`` if none."""
    if weights is None:
        weights = ~np.isnan(values)
    total = np.where(weights, values, 0).sum(-1)
    count = weights.sum(-1)
    return _divide(total, count, count > 0, fill)


def segmentation_metrics(
    matrix: Any,
    *,
    beta: float = 1.0,
    convention: Convention = "mmseg",
    zero_division: float = 0.0,
) -> dict[str, Any]:
    """Segmentation metrics from confusion counts ``matrix[target, prediction]``.

    Per class c, with TP = M[c, c], FP = column sum - TP, FN = row sum - TP:
    ``iou`` TP/(TP+FP+FN), ``dice`` 2TP/(2TP+FP+FN), ``precision`` TP/(TP+FP), ``recall``
    TP/(TP+FN) (mmseg's per-class "Acc"), ``fscore`` (1+β²)TP/((1+β²)TP+β²FN+FP). Means ``miou``,
    ``mdice``, ``mprecision``, ``mrecall``, ``mfscore``; ``macc`` (mean recall, mmseg's mAcc),
    ``aacc`` ΣTP/Σvalid pixels, ``fwiou`` Σ_c (support_c/Σsupport)·IoU_c, and ``support`` (ground-
    truth pixels per class).

    Conventions for classes where a ratio is undefined:

    - ``"mmseg"`` (default; also the Cityscapes scripts): a per-class value with a zero
      denominator is NaN (IoU of a class absent from both prediction and ground truth, precision
      of a never-predicted class...); means are nanmeans. A class only predicted has IoU 0, which
      counts in the mean. (Fβ here is computed from counts, so it is 0, not mmseg's NaN, when
      precision or recall alone is undefined.)
    - ``"detectron2"`` (``SemSegEvaluator``): per-class values only for classes present in the
      ground truth, NaN for the others *even if predicted* (their false positives do not lower
      the mean); means over the classes present in the ground truth.
    - ``"torchmetrics"`` (``average="macro"``, torchmetrics >= 1.0): an undefined per-class value is
      ``zero_division`` (default 0); the means skip classes with TP+FP+FN = 0, and count the rest
      (so a class only predicted has recall ``zero_division`` in ``mrecall``).

    All three give the same ``aacc`` and, in practice, the same ``fwiou``.

    Parameters
    ----------
    matrix : array_like, shape [..., C, C]
        Counts, rows ground truth; leading dimensions (e.g. per-image matrices) are kept.
    beta : float
        β of the F-score (1: F1, which equals Dice).
    convention : {"mmseg", "detectron2", "torchmetrics"}
        Which library's handling of absent classes to reproduce.
    zero_division : float
        The value of an undefined ratio under ``convention="torchmetrics"``.

    Returns
    -------
    dict
        Per-class float64 arrays [..., C] (``iou``, ``dice``, ``precision``, ``recall``,
        ``fscore``, and int64 ``support``); the means as floats (arrays [...] with leading
        dimensions).
    """
    m = np.asarray(matrix)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.dtype.kind not in "iuf":
        raise ValueError(
            f"matrix must be a square [..., C, C] count array, got {m.shape} {m.dtype}"
        )
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    support = m.sum(-1)
    m = m.astype(np.float64)
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    predicted, gt = m.sum(-2), m.sum(-1)
    fp, fn = predicted - tp, gt - tp
    total = gt.sum(-1)
    b2 = float(beta) ** 2
    terms = {
        "iou": (tp, tp + fp + fn),
        "dice": (2 * tp, 2 * tp + fp + fn),
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "fscore": ((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp),
    }
    fill = zero_division if convention == "torchmetrics" else math.nan
    present = gt > 0
    out: dict[str, Any] = {}
    for name, (num, den) in terms.items():
        defined = den > 0
        if convention == "detectron2":
            defined = defined & present
        out[name] = _divide(num, den, defined, fill)
    weights = (tp + fp + fn > 0) if convention == "torchmetrics" else None
    for name in terms:
        out["m" + name] = _mean(out[name], weights, fill)
    out["macc"] = out["mrecall"]
    out["aacc"] = _divide(tp.sum(-1), total, total > 0, fill)
    iou = np.where(np.isnan(out["iou"]), 0, out["iou"])
    out["fwiou"] = _divide((gt * iou).sum(-1), total, total > 0, fill)
    out["support"] = support.astype(np.int64)
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Accumulator
# ---------------------------------------------------------------------------------------------


class ConfusionMatrix:
    """A running confusion matrix over a dataset: ``update`` per image or batch, then ``compute``.

    Dataset-level accumulation (sum the counts, then compute the metrics) is what mmseg,
    detectron2 and the Cityscapes scripts report. With ``per_image=True`` it also keeps one matrix
    per image for per-image metrics (:meth:`compute_per_image`).

    Accumulators with the same settings merge with ``+`` (or :meth:`merge`), so shards of a dataset
    evaluated in other processes or on a Dask cluster add up; they pickle.

    Parameters
    ----------
    num_classes, ignore_index, label_map, reduce_zero_label, class_axis, backend
        As :func:`confusion_matrix`.
    per_image : bool
        Also keep each image's matrix.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int | Iterable[int] | None = None,
        label_map: Mapping[int, int] | Any | None = None,
        reduce_zero_label: bool = False,
        class_axis: int | None = None,
        per_image: bool = False,
        backend: str = "auto",
    ):
        self._settings = _settings(
            num_classes, ignore_index, label_map, reduce_zero_label, class_axis
        )
        self.backend = backend
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        self.images = 0
        self._per_image: list[np.ndarray] | None = [] if per_image else None

    @property
    def num_classes(self) -> int:
        return self._settings.num_classes

    @property
    def per_image(self) -> bool:
        return self._per_image is not None

    def update(self, prediction: Any, target: Any, *, batch: bool = False) -> np.ndarray:
        """Count one image (or, with ``batch=True``, each item along axis 0 as one image).

        Returns the counts of this call ``[C, C]``. The accumulator is unchanged if it raises.
        """
        if batch:
            n = len(target)
            per_image = [
                _count(prediction[i], target[i], self._settings, self.backend) for i in range(n)
            ]
            counts = np.sum(per_image, axis=0) if per_image else np.zeros_like(self.matrix)
        else:
            n, counts = 1, _count(prediction, target, self._settings, self.backend)
            per_image = [counts]
        self.matrix += counts
        self.images += n
        if self._per_image is not None:
            self._per_image.extend(per_image)
        return counts

    @property
    def per_image_matrices(self) -> np.ndarray:
        """The matrices of the images so far, ``[N, C, C]`` (needs ``per_image=True``)."""
        if self._per_image is None:
            raise ValueError("this ConfusionMatrix was made with per_image=False")
        if not self._per_image:
            return np.zeros((0, self.num_classes, self.num_classes), np.int64)
        return np.stack(self._per_image)

    def compute(self, **options: Any) -> dict[str, Any]:
        """:func:`segmentation_metrics` of the accumulated counts (dataset level)."""
        return segmentation_metrics(self.matrix, **options)

    def compute_per_image(self, **options: Any) -> dict[str, Any]:
        """:func:`segmentation_metrics` of each image: arrays with a leading image axis."""
        return segmentation_metrics(self.per_image_matrices, **options)

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.matrix[...] = 0
        self.images = 0
        if self._per_image is not None:
            self._per_image = []

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts (and per-image matrices) into this accumulator; returns self."""
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"cannot merge a ConfusionMatrix with {type(other).__name__}")
        if not self._settings.same_counts(other._settings):
            raise ValueError("cannot merge confusion matrices counted with different settings")
        if self.per_image != other.per_image:
            raise ValueError("cannot merge a per-image ConfusionMatrix with one that is not")
        self.matrix += other.matrix
        self.images += other.images
        if self._per_image is not None:
            self._per_image.extend(other._per_image or [])
        return self

    def copy(self) -> ConfusionMatrix:
        new = object.__new__(ConfusionMatrix)
        new.__dict__.update(self.__dict__)
        new.matrix = self.matrix.copy()
        new._per_image = None if self._per_image is None else list(self._per_image)
        return new

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.copy().merge(other)

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.merge(other)

    def __radd__(self, other: Any) -> ConfusionMatrix:
        # sum([...]) starts from 0
        if isinstance(other, int) and other == 0:
            return self.copy()
        return NotImplemented

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, images={self.images}, "
            f"pixels={int(self.matrix.sum())}, {self._settings.describe()})"
        )


__all__ = [
    "CONVENTIONS",
    "ConfusionMatrix",
    "confusion_matrix",
    "multilabel_confusion_matrix",
    "segmentation_metrics",
]
