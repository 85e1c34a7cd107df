"""Columnar annotations: what evaluation reads, built from JSON columns, dicts or N x 7 arrays.

pycocotools keeps one dict per annotation; evaluation here reads these arrays instead. Each
builder validates what evaluation needs and names the offending annotation in its error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from ._ext import kernels

# The keys evaluation needs, for ground truth and for results (detections). "iscrowd" and
# "ignore" are optional: a ground truth without "iscrowd" is not a crowd.
GT_KEYS = ("id", "image_id", "category_id", "bbox", "area")
RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


class AnnotationError(ValueError):
    """An annotation file or list that evaluation cannot use (missing keys, bad values)."""


class ScannedColumns(dict):
    """The JSON scanner's raw columns of an annotation array (not yet validated); ``location``:
    where the array is in its file (set by the loader, see ``_json.ArrayLocation``)."""

    location: Any = None


@dataclass
class Annotations:
    """One row per annotation, in file order.

    Attributes
    ----------
    id, image_id, category_id : int64 arrays
    bbox : float64 array [N, 4], ``[x, y, width, height]`` (COCO's xywh)
    area : float64 array; for results ``width * height`` as pycocotools' ``loadRes`` sets it
    iscrowd : uint8 array, nonzero for crowd regions
    ignore : uint8 array, the annotation's own ``ignore`` flag (read only when asked for)
    score : float64 array for results, None for ground truth
    """

    id: np.ndarray
    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    ignore: np.ndarray
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def empty(cls, results: bool = False) -> Annotations:
        i, f, u = np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.uint8)
        return cls(i, i, i, np.empty((0, 4)), f, u, u, f if results else None)


def _where(source: str, index: int, ids: np.ndarray | None) -> str:
    ident = f" (id {int(ids[index])})" if ids is not None and index < len(ids) else ""
    return f"{source}: annotation {index}{ident}"


def check_finite(table: Annotations, source: str, ids: np.ndarray | None = None) -> None:
    """Raise AnnotationError for a non-finite box, area or score, naming the first one."""
    checks = [("bbox", table.bbox), ("area", table.area)]
    if table.score is not None:
        checks.append(("score", table.score))
    for name, values in checks:
        bad = ~np.isfinite(values)
        if bad.ndim == 2:
            bad = bad.any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise AnnotationError(
                f"{_where(source, i, ids)}: non-finite {name} {values[i].tolist()!r} "
                f"({int(bad.sum())} annotation(s) affected)"
            )


def _integral(values: np.ndarray, name: str, source: str, ids: np.ndarray | None) -> np.ndarray:
    """float64 values that must be integers (iscrowd, ignore) -> the same as int64."""
    bad = ~(np.abs(values) < 2.0**63) | (values != np.floor(values))  # NaN too: not < 2**63
    if bad.any():
        i = int(np.argmax(bad))
        raise AnnotationError(
            f"{_where(source, i, ids)}: {name} must be an integer, not {values[i]}"
        )
    return values.astype(np.int64)


def from_scanned(columns: dict[str, np.ndarray], results: bool, source: str) -> Annotations:
    """Annotations from the JSON scanner's columns (``_ckernels.parse_object_array``)."""
    seen = columns["seen"]
    keys = kernels().KEYS
    n = len(seen)
    required = RESULT_KEYS if results else GT_KEYS
    for key in required:
        bit = np.uint8(1 << keys.index(key))
        missing = (seen & bit) == 0
        if missing.any():
            i = int(np.argmax(missing))
            ids = None if results or key == "id" else columns["id"]
            raise AnnotationError(
                f"{_where(source, i, ids)}: missing key {key!r} "
                f"({int(missing.sum())} of {n} annotations lack it)"
            )

    def flag(key: str) -> np.ndarray:
        present = (seen & np.uint8(1 << keys.index(key))) != 0
        values = np.where(present, columns[key], 0.0)
        ids = None if results else columns["id"]
        return (_integral(values, key, source, ids) != 0).astype(np.uint8)

    bbox = columns["bbox"]
    if results:
        table = result_table(columns["image_id"], columns["category_id"], bbox, columns["score"])
    else:
        table = Annotations(
            id=columns["id"],
            image_id=columns["image_id"],
            category_id=columns["category_id"],
            bbox=bbox,
            area=columns["area"],
            iscrowd=flag("iscrowd"),
            ignore=flag("ignore"),
        )
    check_finite(table, source, None if results else table.id)
    return table


def result_table(image_id, category_id, bbox, score, area=None) -> Annotations:
    """Results as pycocotools' ``loadRes`` makes them: ids 1..N in order, area = w * h, not
    crowd. ``area`` overrides w * h (an N x 7 array computes it in its own dtype)."""
    n = len(image_id)
    bbox = np.ascontiguousarray(bbox, dtype=np.float64).reshape(n, 4)
    if area is None:
        area = bbox[:, 2] * bbox[:, 3]
    zeros = np.zeros(n, np.uint8)
    return Annotations(
        id=np.arange(1, n + 1, dtype=np.int64),
        image_id=np.ascontiguousarray(image_id, dtype=np.int64),
        category_id=np.ascontiguousarray(category_id, dtype=np.int64),
        bbox=bbox,
        area=np.ascontiguousarray(area, dtype=np.float64),
        iscrowd=zeros,
        ignore=zeros,
        score=np.ascontiguousarray(score, dtype=np.float64),
    )


def _as_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise AnnotationError(f"{where}: {key} must be an integer, not {value!r}")
    try:
        as_int = int(value)
        if as_int == value:
            return as_int
    except (TypeError, ValueError, OverflowError):
        pass
    raise AnnotationError(f"{where}: {key} must be an integer, not {value!r}")


def _int_column(values: Sequence[Any], key: str, source: str) -> np.ndarray:
    try:
        column = np.array(values)
    except (TypeError, ValueError):  # ragged (a list among numbers): named value by value below
        column = np.zeros(0, object)
    if column.dtype.kind == "i" or (column.dtype.kind == "u" and column.dtype.itemsize < 8):
        return column.astype(np.int64, copy=False)
    # floats, integers beyond int64 (numpy makes them uint64, float64 or objects, silently
    # losing digits), bools, strings, None, mixtures: value by value, exactly
    out = np.empty(len(values), np.int64)
    for i, value in enumerate(values):
        as_int = _as_int(value, key, _where(source, i, None))
        if not -(2**63) <= as_int < 2**63:
            raise AnnotationError(f"{_where(source, i, None)}: {key} {as_int} is beyond int64")
        out[i] = as_int
    return out


def from_dicts(
    anns: Sequence[Mapping[str, Any]], results: bool, source: str, scored: bool = False
) -> Annotations:
    """Annotations from a list of dicts (a COCO dataset's "annotations", or loadRes input).

    For results, ids and areas are set as ``loadRes`` sets them; for ground truth they are read.
    ``scored``: ground-truth-like dicts used as detections (a dataset whose annotations carry
    ids, areas and scores, e.g. made by another loadRes): read all of them.
    """
    if not isinstance(anns, (list, tuple)):
        raise AnnotationError(f"{source}: annotations must be a list, not {type(anns).__name__}")
    required = RESULT_KEYS if results else GT_KEYS + (("score",) if scored else ())
    try:
        rows = list(map(itemgetter(*required), anns))
    except (KeyError, TypeError) as e:
        i = next(i for i, a in enumerate(anns) if not _has_keys(a, required))
        _explain(anns[i], i, required, results, source, e)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(required)
    get = dict(zip(required, columns, strict=True))
    try:
        image_id = _int_column(get["image_id"], "image_id", source)
        category_id = _int_column(get["category_id"], "category_id", source)
        bbox = np.array(get["bbox"], dtype=np.float64).reshape(len(anns), 4)
        number = np.array(get["score" if results else "area"], dtype=np.float64)
        if not results:
            ids = _int_column(get["id"], "id", source)
            crowd = _int_column(_flag_values(anns, "iscrowd"), "iscrowd", source)
            ignore = _int_column(_flag_values(anns, "ignore"), "ignore", source)
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: an int beyond float
        if isinstance(e, AnnotationError):
            raise
        for i, ann in enumerate(anns):  # the slow path: find the culprit and say what is wrong
            try:
                np.array(ann["bbox"], dtype=np.float64).reshape(4)
                float(ann["score" if results else "area"])
            except (TypeError, ValueError, OverflowError) as e2:
                _explain(ann, i, required, results, source, e2)
        raise AnnotationError(f"{source}: {e}") from e
    if results:
        table = result_table(image_id, category_id, bbox, number)
    else:
        table = Annotations(
            ids, image_id, category_id, bbox, number, (crowd != 0).astype(np.uint8),
            (ignore != 0).astype(np.uint8),
        )  # fmt: skip
        if scored:
            try:
                table.score = np.array(get["score"], dtype=np.float64)
            except (TypeError, ValueError, OverflowError) as e:
                raise AnnotationError(f"{source}: every score must be a number ({e})") from e
    check_finite(table, source, None if results else table.id)
    return table


def _flag_values(anns: Sequence[Mapping[str, Any]], key: str) -> list:
    """An iscrowd / ignore flag per annotation (0 where absent), true / false as 1 / 0: Python's
    bool is an int (pycocotools tests the flag for truth), as the JSON scanner reads them."""
    return [int(v) if isinstance(v, bool) else v for v in (a.get(key, 0) for a in anns)]


def _has_keys(ann: Any, keys: Sequence[str]) -> bool:
    return isinstance(ann, Mapping) and all(k in ann for k in keys)


def _explain(ann: Any, i: int, required: Sequence[str], results: bool, source: str, e) -> None:
    where = f"{source}: annotation {i}"
    if not isinstance(ann, Mapping):
        raise AnnotationError(f"{where} is a {type(ann).__name__}, not an object") from e
    if not results and "id" in ann:
        where += f" (id {ann['id']!r})"
    for key in required:
        if key not in ann:
            raise AnnotationError(f"{where}: missing key {key!r}") from e
    for key in ("image_id", "category_id") + (() if results else ("id",)):
        if key in ann:
            _as_int(ann[key], key, where)
    for key in () if results else ("iscrowd", "ignore"):
        if key in ann:
            _as_int(_flag_values([ann], key)[0], key, where)
    box = ann["bbox"]
    if not isinstance(box, (list, tuple, np.ndarray)) or len(box) != 4:
        raise AnnotationError(f"{where}: bbox must be [x, y, width, height], not {box!r}") from e
    for key in ("bbox", "score" if results else "area"):
        try:
            np.asarray(ann[key], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise AnnotationError(f"{where}: {key} must be numeric, not {ann[key]!r}") from e
    raise AnnotationError(f"{where}: {e}") from e


def from_numpy(data: np.ndarray, source: str = "result array") -> Annotations:
    """Results from pycocotools' N x 7 array ``[image_id, x, y, w, h, score, category_id]``.

    As ``loadNumpyAnnotations``: ids are ``int()`` of the values (truncation), and the area is
    ``w * h`` computed in the array's own dtype (float32 arrays give float32 areas).
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 7:
        raise AnnotationError(f"{source}: expected an N x 7 array, got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise AnnotationError(f"{source}: expected a real numeric array, got {data.dtype}")
    for col, name in ((0, "image_id"), (6, "category_id")):
        bad = ~np.isfinite(data[:, col].astype(np.float64))
        if bad.any():
            i = int(np.argmax(bad))
            raise AnnotationError(f"{source}: row {i}: non-finite {name} {data[i, col]!r}")
    area = data[:, 3] * data[:, 4]
    table = result_table(
        data[:, 0].astype(np.int64), data[:, 6].astype(np.int64), data[:, 1:5], data[:, 5], area
    )
    check_finite(table, source)
    return table
