"""What every confusion backend shares: the label table, the array layout and the checks.

The kernels never see ignore values, label maps or class counts directly. A :class:`LabelPlan`
turns each possible target value into a *row code* once per (dtype, settings): ``row * (C + 1)``
for a class row, ``C * (C + 1)`` for an ignored pixel and ``(C + 1) * (C + 1)`` for an invalid
label. A prediction ``p`` becomes the column ``min(p, C)`` (its bits read as unsigned, so a
negative label is huge). The kernels count ``row_code + column`` in a histogram of
``(C + 2) * (C + 1)`` bins:

- rows ``0 .. C-1``, columns ``0 .. C-1``: the confusion matrix;
- row ``C``: ignored pixels, whatever the prediction (a prediction there is not looked at);
- row ``C + 1``: targets outside ``[0, C)`` that are not ignored;
- column ``C`` of a class row: predictions outside ``[0, C)`` at a counted pixel.

So no label can index outside the histogram, and an invalid label is found after the pass, before
anything reaches the caller's accumulator.

Tables: for 1- and 2-byte labels the table covers every bit pattern (``full``; 256 or 65536
entries) and the kernels index it without a check. For wider labels it covers ``[0, L)`` (the
classes, and the ignore values and label-map keys below ``2**20``); a value at or above ``L`` is
looked up in a short list of extra keys (large or negative ignore values and label-map keys) and
is invalid otherwise.

Layout: the target and prediction views are collapsed together into 3-D ``[R0, R1, K]`` views
(merging dimensions that are contiguous with each other in *both* arrays, dropping length-1
ones), so the kernels handle any shape, any strides (zero strides of ``np.broadcast_to``
included) with one 3-D loop. Logits become ``[R0, R1, C, K]`` views (the class axis just before
the last pixel axis, which keeps ``[B, C, H, W]`` input C-contiguous).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import config as _config

# Work below this many pixels runs on one thread: waking a thread team costs more than it saves.
# (`fastiou bench --task confusion_sweep`: at 64 Ki pixels one uint8 pass takes ~40 µs.)
PARALLEL_MIN_PIXELS = 1 << 16

_TABLE_MAX = 1 << 20  # wide labels: values below this are looked up in the table
_UNSIGNED = {n: np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


@dataclass(eq=False)
class LabelPlan:
    """Row codes for the target values of one dtype under one set of label settings."""

    num_classes: int
    table: np.ndarray  # int32 [L]: row code of the target whose bits (unsigned) are < L
    full: bool  # the table covers every bit pattern of the dtype
    extra_keys: np.ndarray  # unsigned, dtype of the label view: bit patterns >= L with a code
    extra_codes: np.ndarray  # int32, their row codes
    label_map: dict  # {old: new}, for messages
    reduce_zero_label: bool

    @functools.cached_property
    def extra_keys64(self) -> np.ndarray:
        return self.extra_keys.astype(np.uint64)

    def final_label(self, value: int) -> int:
        """The class a target value becomes after label_map and reduce_zero_label."""
        return final_label(value, self.label_map, self.reduce_zero_label)

    @property
    def columns(self) -> int:
        return self.num_classes + 1

    @property
    def invalid_code(self) -> int:
        """The row code of a target label that is neither a class nor ignored."""
        return (self.num_classes + 1) * self.columns

    @property
    def bins(self) -> int:
        return (self.num_classes + 2) * (self.num_classes + 1)

    @property
    def sub_histograms(self) -> int:
        """Histograms per thread: several, so that one dominant class does not chain every
        increment on the store of the previous one; fewer when they would not fit a cache."""
        return 4 if self.bins <= 4096 else 2 if self.bins <= 1 << 20 else 1

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Row codes of an array of unsigned label bits, with numpy (the reference backend)."""
        if self.full:
            return self.table[values]
        inside = values < len(self.table)
        codes = self.table[np.where(inside, values, 0)]
        invalid = (self.num_classes + 1) * self.columns
        outside = np.full(values.shape, invalid, np.int32)
        for key, code in zip(self.extra_keys.tolist(), self.extra_codes.tolist(), strict=True):
            outside[values == key] = code
        return np.where(inside, codes, outside)


def reduce_zero(values):
    """mmseg's ``reduce_zero_label`` of target values (array or int): 0 -> 255, 255 stays 255
    (its ignore value), every other value v -> v - 1 (ADE20K's classes 1..150 become 0..149).

    mmseg (``intersect_and_union``, ``LoadAnnotations``) writes it as
    ``label[label == 0] = 255; label = label - 1; label[label == 254] = 255``.
    """
    return np.where((values == 0) | (values == 255), 255, values - 1)


def final_label(value: int, label_map: dict, reduce_zero_label: bool) -> int:
    """A target value after ``label_map`` and then ``reduce_zero_label``: the label that the
    ignore check and the class range see (mmseg's order)."""
    value = label_map.get(value, value)
    return int(reduce_zero(value)) if reduce_zero_label else value


def column_limit(plan: LabelPlan, dtype: np.dtype) -> np.generic:
    """The clamp ``C`` of ``min(p, C)`` as a scalar of the (unsigned) prediction ``dtype``.

    ``C`` itself when it fits; otherwise the dtype's largest value, which clamps nothing: every
    prediction is then below ``C`` and is its own column. (``dtype.type(C)`` would overflow: an
    OverflowError on numpy 2, a silently wrapped clamp on numpy 1.x, with 8-bit predictions and
    256 or more classes.)
    """
    dtype = np.dtype(dtype)
    return dtype.type(min(plan.num_classes, np.iinfo(dtype).max))


def unsigned_dtype(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype whose view the kernels read labels of ``dtype`` through."""
    return _UNSIGNED[np.dtype(dtype).itemsize]


def as_unsigned(x: np.ndarray) -> np.ndarray:
    """``x`` (integer or bool, native byte order) viewed as unsigned integers of its width."""
    return x if x.dtype.kind == "u" else x.view(_UNSIGNED[x.dtype.itemsize])


@functools.lru_cache(maxsize=64)
def _cached_plan(dtype_str, num_classes, ignores, map_keys, map_values, reduce_zero_label):
    dtype = np.dtype(dtype_str)
    bits = 8 * dtype.itemsize
    keys = np.frombuffer(map_keys, np.int64)
    values = np.frombuffer(map_values, np.int64)
    mapping = dict(zip(keys.tolist(), values.tolist(), strict=True))
    reduce = bool(reduce_zero_label)
    int64_ignores = np.array([v for v in ignores if -(1 << 63) <= v < 1 << 63], np.int64)

    def codes_of(v: np.ndarray) -> np.ndarray:
        """The row code of each target value (int64): label_map, then reduce_zero_label, then
        the ignore check in the reduced label space (mmseg's intersect_and_union order)."""
        mapped = v
        if len(keys):
            at = np.minimum(np.searchsorted(keys, v), len(keys) - 1)
            mapped = np.where(keys[at] == v, values[at], v)
        if reduce_zero_label:
            mapped = reduce_zero(mapped)
        ignored = np.isin(mapped, int64_ignores)
        valid = ~ignored & (mapped >= 0) & (mapped < num_classes)
        c = num_classes + 1
        return np.where(ignored, num_classes * c, np.where(valid, mapped * c, c * c))

    def value_of(bits_: np.ndarray) -> np.ndarray:
        """The signed/unsigned value of each bit pattern (int64: patterns here are < 2**20)."""
        if dtype.kind == "i" and bits <= 32:
            signed = bits_.astype(np.int64)
            return np.where(signed >= 1 << (bits - 1), signed - (1 << bits), signed)
        return bits_.astype(np.int64)

    if bits <= 16:
        patterns = np.arange(1 << bits, dtype=np.int64)
        table = codes_of(value_of(patterns)).astype(np.int32)
        empty = np.empty(0, unsigned_dtype(dtype))
        return LabelPlan(num_classes, table, True, empty, np.empty(0, np.int32), mapping, reduce)

    # Wide labels: a table over [0, L), and the few larger bit patterns that matter.
    def pattern(v: int) -> int | None:
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if dtype.kind == "i" else (0, 1 << bits)
        return v % (1 << bits) if lo <= v < hi else None

    # The values whose code is not "invalid" beyond the classes: label-map keys, and the values
    # that become an ignore value (under reduce_zero_label, g + 1, and 0 and 255 for g = 255).
    sources = list(ignores)
    if reduce_zero_label:
        sources = [g + 1 for g in ignores] + ([0, 255] if 255 in ignores else [])
    special = {pattern(int(v)) for v in (*sources, *keys.tolist())} - {None}
    small = [u for u in special if u < _TABLE_MAX]
    length = max([num_classes + int(reduce_zero_label), *(u + 1 for u in small)])
    table = codes_of(np.arange(length, dtype=np.int64)).astype(np.int32)
    large = sorted(u for u in special if u >= length)

    def signed(u: int) -> int:
        return u - (1 << bits) if dtype.kind == "i" and u >= 1 << (bits - 1) else u

    # Python ints: a uint64 pattern >= 2**63 does not fit the int64 of codes_of.
    extra = []
    c = num_classes + 1
    for u in large:
        row = final_label(signed(u), mapping, reduce)
        if row in ignores:
            extra.append(num_classes * c)
        else:
            extra.append(row * c if 0 <= row < num_classes else c * c)
    return LabelPlan(
        num_classes,
        table,
        False,
        np.asarray(large, unsigned_dtype(dtype)),
        np.asarray(extra, np.int32),
        mapping,
        reduce,
    )


def label_plan(
    dtype: np.dtype,
    num_classes: int,
    ignores: tuple[int, ...],
    label_map: tuple[np.ndarray, np.ndarray] | None,
    reduce_zero_label: bool,
) -> LabelPlan:
    """The (cached) plan for target labels of ``dtype``.

    ``label_map`` is ``(keys, values)``, int64 arrays with sorted unique keys.
    """
    keys, values = (b"", b"") if label_map is None else (m.tobytes() for m in label_map)
    ignores = ignores if len(ignores) < 2 else tuple(sorted(set(ignores)))
    return _cached_plan(dtype.str, num_classes, ignores, keys, values, bool(reduce_zero_label))


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def collapse(
    shape: tuple[int, ...], strides: list[tuple[int, ...]]
) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Merge the dimensions of arrays sharing ``shape`` where every array allows it.

    Length-1 dimensions are dropped; dimensions i and i + 1 merge when, in every array,
    ``stride[i] == shape[i + 1] * stride[i + 1]``. Returns the new shape and strides (at least
    one dimension).
    """
    keep = [d for d in range(len(shape)) if shape[d] != 1]
    if any(shape[d] == 0 for d in keep):
        return (0,), [(0,) for _ in strides]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for d in keep:
        mergeable = out_shape and all(
            s_out[-1] == shape[d] * s[d] for s_out, s in zip(out_strides, strides, strict=True)
        )
        if mergeable:
            out_shape[-1] *= shape[d]
            for s_out, s in zip(out_strides, strides, strict=True):
                s_out[-1] = s[d]
        else:
            out_shape.append(shape[d])
            for s_out, s in zip(out_strides, strides, strict=True):
                s_out.append(s[d])
    if not out_shape:
        return (1,), [(0,) for _ in strides]
    return tuple(out_shape), [tuple(s) for s in out_strides]


def _view(x: np.ndarray, shape, strides) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def _pad3(shape: tuple[int, ...], strides: tuple[int, ...]):
    pad = 3 - len(shape)
    return (1,) * pad + shape, (0,) * pad + strides


def label_views(target: np.ndarray, prediction: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """3-D ``[R0, R1, K]`` views of two equally shaped label arrays, covering every pixel once.

    One pair of views, unless more than three dimensions stay apart after collapsing: then the
    views of each ``target[i], prediction[i]`` in turn.
    """
    if target.flags.c_contiguous and prediction.flags.c_contiguous:
        yield target.reshape(1, 1, -1), prediction.reshape(1, 1, -1)
        return
    shape, (ts, ps) = collapse(target.shape, [target.strides, prediction.strides])
    if len(shape) > 3:
        for i in range(target.shape[0]):
            yield from label_views(target[i], prediction[i])
        return
    (shape3, ts3), (_, ps3) = _pad3(shape, ts), _pad3(shape, ps)
    yield _view(target, shape3, ts3), _view(prediction, shape3, ps3)


def logit_views(
    target: np.ndarray, scores: np.ndarray, class_axis: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``[R0, R1, K]`` target views and ``[R0, R1, C, K]`` score views, as :func:`label_views`.

    ``class_axis`` is the axis of ``scores`` holding the classes; the others match ``target``.
    """
    if target.flags.c_contiguous and scores.flags.c_contiguous:
        before, after = (
            math.prod(scores.shape[:class_axis]),
            math.prod(scores.shape[class_axis + 1 :]),
        )
        yield (
            target.reshape(1, before, after),
            scores.reshape(1, before, scores.shape[class_axis], after),
        )
        return
    moved = np.moveaxis(scores, class_axis, -1)
    yield from _logit_views(target, moved)


def _logit_views(target: np.ndarray, moved: np.ndarray):
    num_classes, class_stride = moved.shape[-1], moved.strides[-1]
    shape, (ts, ss) = collapse(target.shape, [target.strides, moved.strides[:-1]])
    if len(shape) > 3:
        for i in range(target.shape[0]):
            yield from _logit_views(target[i], moved[i])
        return
    (shape3, ts3), (_, ss3) = _pad3(shape, ts), _pad3(shape, ss)
    score_shape = shape3[:2] + (num_classes, shape3[2])
    score_strides = ss3[:2] + (class_stride, ss3[2])
    yield _view(target, shape3, ts3), _view(moved, score_shape, score_strides)


def row_blocks(shape: tuple[int, int, int], block: int = 1 << 18) -> Iterator[tuple]:
    """Index tuples covering a 3-D ``[R0, R1, K]`` array in blocks of about ``block`` elements."""
    r0_count, r1_count, k_count = shape
    if k_count >= block:
        for r0 in range(r0_count):
            for r1 in range(r1_count):
                for k in range(0, k_count, block):
                    yield r0, slice(r1, r1 + 1), slice(k, k + block)
    else:
        rows = max(1, block // max(k_count, 1))
        for r0 in range(r0_count):
            for r1 in range(0, r1_count, rows):
                yield r0, slice(r1, r1 + rows), slice(None)


def thread_count(pixels: int) -> int:
    """How many threads ``pixels`` of work get (the setting is not even read for small work)."""
    return 1 if pixels < PARALLEL_MIN_PIXELS else max(1, _config.num_threads())


def run(
    kernel: Callable[..., None],
    views: Iterator[tuple[Any, ...]],
    plan: LabelPlan,
) -> np.ndarray:
    """Run ``kernel(target_view, other_view, plan, hist)`` over ``views``; the int64 histogram
    ``[C + 2, C + 1]``."""
    hist = np.zeros(plan.bins, np.int64)
    for target, other in views:
        if target.size:
            kernel(target, other, plan, hist)
    return hist.reshape(plan.num_classes + 2, plan.columns)


# Private histograms count in 32 bits (half the cache footprint of int64 with many classes) and
# are flushed into int64 totals before the pixels counted since the last flush reach this.
COUNT_MAX = (1 << 32) - 1


def sub_histograms(count: int, plan: LabelPlan) -> np.ndarray:
    """Zeroed 32-bit private histograms ``[count, plan.sub_histograms, plan.bins]``."""
    return np.zeros((count, plan.sub_histograms, plan.bins), np.uint32)


def _example(views: Iterator[tuple[np.ndarray, ...]], bad: Callable) -> int | None:
    """The first value that ``bad(target_block, other_block)`` returns, scanning in blocks."""
    for target, other in views:
        for index in row_blocks(target.shape):
            found = bad(target[index], other[index])
            if found is not None:
                return found
    return None


def raise_for_invalid(
    hist: np.ndarray,
    make_views: Callable[[], Iterator[tuple[np.ndarray, ...]]],
    plan: LabelPlan,
    target_dtype: np.dtype,
    prediction_dtype: np.dtype | None,
    settings: str,
) -> None:
    """Raise ValueError naming a label outside ``[0, C)`` that was counted, if ``hist`` saw one.

    ``hist`` is the ``[C + 2, C + 1]`` histogram of a pass; ``make_views`` gives that pass's
    (unsigned) views again, scanned here with numpy only when something was invalid;
    ``prediction_dtype`` is None for logits (an argmax is always a class).
    """
    c = plan.num_classes
    bad_targets = int(hist[c + 1].sum())
    bad_predictions = int(hist[:c, c].sum())
    if bad_targets:

        def first_bad_target(t, _):
            hits = t[plan.lookup(t) == (c + 1) * (c + 1)]
            return hits[0] if hits.size else None

        value = _example(make_views(), first_bad_target)
        shown = "?"
        if value is not None:
            raw = np.asarray(value).view(target_dtype).item()
            final = plan.final_label(raw)
            shown = f"{raw} (becoming {final})" if final != raw else f"{raw}"
            if plan.reduce_zero_label and final == 255:
                shown += " (reduce_zero_label makes 0 and 255 into 255, as mmseg: ignore_index=255)"
        raise ValueError(
            f"target label {shown} is outside [0, {c}) and not ignored ({settings}); "
            f"{bad_targets} target pixel(s) have such labels"
        )
    if bad_predictions:

        def first_bad_prediction(t, p):
            hits = p[(plan.lookup(t) < c * (c + 1)) & (p >= c)]
            return hits[0] if hits.size else None

        value = _example(make_views(), first_bad_prediction)
        dtype = prediction_dtype if prediction_dtype is not None else np.int64
        shown = np.asarray(value).view(dtype).item() if value is not None else "?"
        raise ValueError(
            f"prediction label {shown} is outside [0, {c}); {bad_predictions} counted pixel(s) "
            "have such predictions (predictions at ignored pixels are not looked at)"
        )
