"""The numpy confusion backend (np.bincount over blocks), and the oracle the tests trust.

:func:`labels` and :func:`logits` are the backend: the same :class:`~.confusion_common.LabelPlan`
row codes as the compiled kernels, counted with ``np.bincount`` one block of pixels at a time, so
temporaries stay a few MB whatever the input size.

:func:`oracle` shares nothing with the backends: it converts every label to a Python int and
applies the conventions step by step in mmseg's ``intersect_and_union`` order (label map, then
reduce-zero-label, then the ignore check in the reduced label space, then the count). Slow; for
tests only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ._common import LabelPlan, column_limit, row_blocks


def labels(target: np.ndarray, prediction: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of 3-D unsigned label views ``target`` and ``prediction`` to ``hist``."""
    limit = column_limit(plan, prediction.dtype)
    for index in row_blocks(target.shape):
        codes = plan.lookup(target[index]).astype(np.intp)
        columns = np.minimum(prediction[index], limit).astype(np.intp)
        hist += np.bincount((codes + columns).ravel(), minlength=plan.bins)


def logits(target: np.ndarray, scores: np.ndarray, plan: LabelPlan, hist: np.ndarray) -> None:
    """Add the counts of ``target`` [R0, R1, K] against ``argmax(scores [R0, R1, C, K], 2)``."""
    for r0, r1, k in row_blocks(target.shape, 1 << 16):
        codes = plan.lookup(target[r0, r1, k]).astype(np.intp)
        columns = np.argmax(scores[r0, r1, :, k], axis=1)  # np.argmax: first NaN, first max
        hist += np.bincount((codes + columns).ravel(), minlength=plan.bins)


def describe() -> str:
    return f"numpy {np.__version__} (np.bincount per block)"


def oracle(
    prediction: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    *,
    ignore_index: int | Iterable[int] | None = None,
    label_map: Mapping[int, int] | np.ndarray | None = None,
    reduce_zero_label: bool = False,
    class_axis: int | None = None,
) -> np.ndarray:
    """The confusion matrix ``[target, prediction]`` written the obvious way (tests only).

    Integer ``prediction`` of the target's shape, or float scores with a class axis
    ``class_axis`` reduced by ``np.argmax``. Raises ValueError on labels outside the classes.
    """
    target = np.asarray(target)
    prediction = np.asarray(prediction)
    if prediction.dtype.kind == "f":
        prediction = np.argmax(prediction, axis=class_axis)
    t = [int(v) for v in target.ravel().tolist()]
    p = [int(v) for v in prediction.ravel().tolist()]
    if label_map is not None:
        mapping = dict(enumerate(label_map)) if not isinstance(label_map, Mapping) else label_map
        t = [int(mapping.get(v, v)) for v in t]
    if ignore_index is None:
        ignores = set()
    elif isinstance(ignore_index, (int, np.integer)):
        ignores = {int(ignore_index)}
    else:
        ignores = {int(v) for v in ignore_index}
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for tv, pv in zip(t, p, strict=True):
        if reduce_zero_label:  # mmseg: 0 -> 255, 255 stays 255, the others move down by one
            tv = 255 if tv in (0, 255) else tv - 1
        if tv in ignores:
            continue
        if not (0 <= tv < num_classes):
            raise ValueError(f"target label {tv} out of range")
        if not (0 <= pv < num_classes):
            raise ValueError(f"prediction label {pv} out of range")
        matrix[tv, pv] += 1
    return matrix
