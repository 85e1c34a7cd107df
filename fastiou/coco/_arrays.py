"""COCO evaluation from arrays: per-image dicts (torchmetrics' convention) or N x 7 rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._core.arrays import to_numpy
from ._coco import COCO
from ._eval import COCOeval
from ._table import AnnotationError, Annotations, check_finite, from_numpy, result_table


def _xywh(boxes: Any, box_format: str, where: str) -> np.ndarray:
    b = to_numpy(boxes).astype(np.float64).reshape(-1, 4) if np.size(boxes) else np.empty((0, 4))
    if box_format == "xywh":
        return b
    if box_format == "xyxy":
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    if box_format == "cxcywh":
        w, h = b[:, 2], b[:, 3]
        return np.stack([b[:, 0] - w / 2, b[:, 1] - h / 2, w, h], axis=1)
    raise ValueError(f"box_format must be 'xyxy', 'xywh' or 'cxcywh', not {box_format!r}")


def _column(d: Mapping, key: str, n: int, where: str, default=None) -> np.ndarray:
    if key not in d:
        if default is None:
            raise AnnotationError(f"{where}: missing key {key!r}")
        return np.full(n, default)
    values = to_numpy(d[key]).reshape(-1)
    if len(values) != n:
        raise AnnotationError(f"{where}: {key!r} has {len(values)} values for {n} boxes")
    return values


def _params(
    E: COCOeval, iou_thresholds, rec_thresholds, max_detection_thresholds, area_ranges
) -> None:
    p = E.params
    if iou_thresholds is not None:
        p.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
    if rec_thresholds is not None:
        p.recThrs = np.asarray(rec_thresholds, dtype=np.float64)
    if max_detection_thresholds is not None:
        p.maxDets = list(max_detection_thresholds)
    if area_ranges is not None:
        p.areaRngLbl = list(area_ranges)
        p.areaRng = [list(r) for r in area_ranges.values()]


def _run(
    gt: Annotations, dt: Annotations, image_ids, use_categories: bool, iou_type: str = "bbox",
    masks: tuple[list, list] | None = None, **params,
) -> COCOeval:  # fmt: skip
    cats = np.union1d(gt.category_id, dt.category_id).tolist()
    images = [{"id": int(i)} for i in image_ids]
    categories = [{"id": int(c), "name": str(c)} for c in cats]
    coco_gt = COCO._from_table(gt, images, categories, results=False)
    coco_dt = COCO._from_table(dt, images, categories, results=True)
    if masks is not None:  # the RLEs of every row, as the segm evaluation reads them
        from ..masks import RLEs

        coco_gt._rles_cache, coco_dt._rles_cache = (RLEs.from_coco(m) for m in masks)
    E = COCOeval(coco_gt, coco_dt, iou_type, verbose=False)
    _params(E, **params)
    E.params.useCats = int(use_categories)
    E.evaluate()
    E.accumulate()
    E.stats = E._stats(echo=False)
    return E


def evaluate_detections(
    preds: Sequence[Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]],
    *,
    box_format: str = "xyxy",
    iou_thresholds: Sequence[float] | None = None,
    rec_thresholds: Sequence[float] | None = None,
    max_detection_thresholds: Sequence[int] | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    use_categories: bool = True,
    iou_type: str = "bbox",
) -> COCOeval:
    """COCO box (or mask) evaluation of per-image predictions, as pycocotools would score them.

    Parameters
    ----------
    preds : sequence of dicts, one per image
        ``"boxes"`` [N, 4], ``"scores"`` [N], ``"labels"`` [N] (numpy, lists or torch tensors).
    targets : sequence of dicts, one per image (same order)
        ``"boxes"`` [G, 4], ``"labels"`` [G]; optional ``"iscrowd"`` [G] and ``"area"`` [G]
        (default: the box area, as torchmetrics).
    box_format : {"xyxy", "xywh", "cxcywh"}
        Format of the boxes; converted to COCO's xywh in float64.
    iou_thresholds, rec_thresholds, max_detection_thresholds
        pycocotools' ``iouThrs``, ``recThrs``, ``maxDets`` (defaults: COCO's).
    area_ranges : dict label -> (min, max), optional
        ``areaRngLbl``/``areaRng``; the summary reads "all", "small", "medium" and "large".
    use_categories : bool
        False pools all labels (pycocotools' ``useCats = 0``).
    iou_type : {"bbox", "segm"}
        "segm": compare instance masks, ``"masks"`` in each pred and target instead of
        ``"boxes"``: dense ``[N, H, W]`` (bool or 0/1; numpy, torch...) or a list of COCO RLE
        dicts. Areas default to the mask areas (as ``loadRes`` computes them for results).

    Returns
    -------
    COCOeval
        Evaluated and accumulated: ``.stats`` (the 12 numbers, not printed), ``.eval`` with
        ``precision``, ``recall``, ``scores``, and :meth:`~COCOeval.metrics`,
        :meth:`~COCOeval.per_class`, :meth:`~COCOeval.pr_curve`, :meth:`~COCOeval.counts`.
        Image ids are the positions in the lists, category ids the labels.
    """
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets (one per image)")
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', not {iou_type!r}")
    segm = iou_type == "segm"
    gt_rles: list[dict] = []
    dt_rles: list[dict] = []
    gt_cols: list[list[np.ndarray]] = [[], [], [], [], []]  # image, label, box, area, crowd
    dt_cols: list[list[np.ndarray]] = [[], [], [], []]  # image, label, box, score
    dt_areas: list[np.ndarray] = []  # segm: the masks' areas
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        where = f"targets[{i}]"
        if segm:
            boxes, area = _masks(target, where, gt_rles)
            n = len(boxes)
            area = np.where(np.isnan(given := _float_column(target, "area", n, where)), area, given)
        else:
            boxes = _xywh(target.get("boxes", []), box_format, where)
            n = len(boxes)
            area = _float_column(target, "area", n, where)
            area = np.where(np.isnan(area), boxes[:, 2] * boxes[:, 3], area)
        crowd = _column(target, "iscrowd", n, where, default=0)
        values = (np.full(n, i), _column(target, "labels", n, where), boxes, area, crowd)
        for col, value in zip(gt_cols, values, strict=True):
            col.append(value)
        where = f"preds[{i}]"
        if segm:
            boxes, dt_area = _masks(pred, where, dt_rles)
            dt_areas.append(dt_area)
        else:
            boxes = _xywh(pred.get("boxes", []), box_format, where)
        n = len(boxes)
        scores = _column(pred, "scores", n, where)
        values = (np.full(n, i), _column(pred, "labels", n, where), boxes, scores)
        for col, value in zip(dt_cols, values, strict=True):
            col.append(value)
    image, label, boxes, area, crowd = (_concat(c) for c in gt_cols)
    n = len(image)
    gt = Annotations(
        id=np.arange(1, n + 1, dtype=np.int64),
        image_id=image.astype(np.int64),
        category_id=_labels(label, "targets"),
        bbox=boxes.astype(np.float64).reshape(n, 4),
        area=area.astype(np.float64),
        iscrowd=(crowd != 0).astype(np.uint8),
        ignore=np.zeros(n, np.uint8),
    )
    check_finite(gt, "targets")
    image, label, boxes, score = (_concat(c) for c in dt_cols)
    dt = result_table(
        image.astype(np.int64), _labels(label, "preds"), boxes.reshape(-1, 4),
        score.astype(np.float64),
        area=_concat(dt_areas) if segm else None,
    )  # fmt: skip
    check_finite(dt, "preds")
    return _run(
        gt, dt, range(len(targets)), use_categories, iou_type=iou_type,
        masks=(gt_rles, dt_rles) if segm else None, iou_thresholds=iou_thresholds,
        rec_thresholds=rec_thresholds, max_detection_thresholds=max_detection_thresholds,
        area_ranges=area_ranges,
    )  # fmt: skip


def _float_column(d: Mapping, key: str, n: int, where: str) -> np.ndarray:
    return _column(d, key, n, where, default=np.nan).astype(np.float64)


def _masks(d: Mapping, where: str, out: list) -> tuple[np.ndarray, np.ndarray]:
    """The ``"masks"`` of a pred or target as COCO RLEs (appended to ``out``), with their
    boxes (xywh) and areas, as pycocotools' mask API computes them."""
    from . import mask as _mask

    if "masks" not in d:
        raise AnnotationError(f"{where}: missing key 'masks' (iou_type='segm')")
    masks = d["masks"]
    if isinstance(masks, (list, tuple)) and all(isinstance(m, Mapping) for m in masks):
        try:
            rles = [
                _mask.frPyObjects(dict(m), *m["size"]) if isinstance(m["counts"], list)
                else dict(m)
                for m in masks
            ]  # fmt: skip
        except (KeyError, TypeError) as e:
            raise AnnotationError(f"{where}: masks must be COCO RLE dicts ({e})") from None
    else:
        arr = to_numpy(masks)
        if arr.ndim != 3:
            raise AnnotationError(f"{where}: masks must be [N, H, W], got shape {arr.shape}")
        if arr.dtype.kind not in "biu" or (arr.dtype.kind != "b" and ((arr < 0) | (arr > 1)).any()):
            raise AnnotationError(f"{where}: masks must be boolean or 0/1, got {arr.dtype}")
        rles = (
            list(_mask.encode(np.asfortranarray(arr.astype(np.uint8).transpose(1, 2, 0))))
            if len(arr) else []
        )  # fmt: skip
    out.extend(rles)
    if not rles:
        return np.empty((0, 4)), np.empty(0)
    boxes = np.asarray(_mask.toBbox(rles), np.float64).reshape(-1, 4)
    area = np.asarray(_mask.area(rles), np.float64).reshape(-1)
    return boxes, area


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def _labels(values: np.ndarray, where: str) -> np.ndarray:
    values = np.asarray(values)
    if values.size and values.dtype.kind not in "iu":
        as_int = values.astype(np.int64)
        if values.dtype.kind not in "fb" or not np.array_equal(as_int, values):
            raise AnnotationError(f"{where}: labels must be integers, got {values.dtype}")
        values = as_int
    return values.astype(np.int64)


def evaluate_arrays(
    gt: Any,
    dt: Any,
    *,
    image_ids: Sequence[int] | None = None,
    iou_thresholds: Sequence[float] | None = None,
    rec_thresholds: Sequence[float] | None = None,
    max_detection_thresholds: Sequence[int] | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    use_categories: bool = True,
) -> COCOeval:
    """COCO box evaluation of row arrays, as pycocotools would score them.

    Parameters
    ----------
    gt : array [G, 6], [G, 7] or [G, 8]
        ``[image_id, x, y, w, h, category_id]`` (xywh), then optionally ``iscrowd`` and
        ``area`` (default: ``w * h``).
    dt : array [N, 7]
        pycocotools' ``loadRes`` array: ``[image_id, x, y, w, h, score, category_id]``.
    image_ids : sequence of int, optional
        The evaluated images (default: every image id in ``gt`` or ``dt``): images without
        ground truth count, as pycocotools counts the dataset's images.
    iou_thresholds, rec_thresholds, max_detection_thresholds, area_ranges, use_categories
        As in :func:`evaluate_detections`.

    Returns
    -------
    COCOeval
        Evaluated and accumulated, with ``.stats`` set (see :func:`evaluate_detections`).
    """
    g = to_numpy(gt)
    if g.ndim != 2 or g.shape[1] not in (6, 7, 8):
        raise AnnotationError(f"ground truth: expected a G x 6, 7 or 8 array, got {g.shape}")
    g = g.astype(np.float64)
    n = len(g)
    ids = g[:, [0, 5]]
    if not (np.isfinite(ids).all() and np.array_equal(ids, np.floor(ids))):
        raise AnnotationError("ground truth: image and category ids must be integers")
    table = Annotations(
        id=np.arange(1, n + 1, dtype=np.int64),
        image_id=g[:, 0].astype(np.int64),
        category_id=g[:, 5].astype(np.int64),
        bbox=np.ascontiguousarray(g[:, 1:5]),
        area=g[:, 7].copy() if g.shape[1] == 8 else g[:, 3] * g[:, 4],
        iscrowd=(g[:, 6] != 0).astype(np.uint8) if g.shape[1] >= 7 else np.zeros(n, np.uint8),
        ignore=np.zeros(n, np.uint8),
    )
    check_finite(table, "ground truth")
    results = from_numpy(to_numpy(dt), "detections")
    if image_ids is None:
        image_ids = np.union1d(table.image_id, results.image_id).tolist()
    else:
        known = set(int(i) for i in image_ids)
        unknown = sorted(set(results.image_id.tolist()) - known)
        if unknown:
            raise AnnotationError(f"detections on image ids not in image_ids: {unknown[:10]}")
    return _run(
        table, results, image_ids, use_categories, iou_thresholds=iou_thresholds,
        rec_thresholds=rec_thresholds, max_detection_thresholds=max_detection_thresholds,
        area_ranges=area_ranges,
    )  # fmt: skip
