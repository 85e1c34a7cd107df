"""A drop-in for ``pycocotools.mask``: the same functions, outputs byte for byte, much faster.

``encode``, ``decode``, ``area``, ``toBbox``, ``merge``, ``iou`` and ``frPyObjects`` return what
pycocotools 2.0.11 returns (the same compressed ``counts`` bytes, uint8 Fortran-ordered masks,
uint32 areas, float64 boxes, the same shapes and the same single-dict-versus-list behaviour), on
the packed RLEs of :mod:`fastiou.masks`.

Where pycocotools crashes, reads out of bounds or silently returns garbage, this module raises a
ValueError or TypeError naming the problem: runs that do not sum to h * w, corrupt compressed
strings, masks of different sizes given to ``decode`` or ``merge`` (pycocotools merges those into
an empty 0 x 0 mask), non-finite polygon coordinates, an ``iscrowd`` of the wrong length
(pycocotools: AssertionError). A few inputs pycocotools rejects are accepted, with the result its
code intends: masks in C order or bool for ``encode``; a list of boxes, a single box, a single
polygon and compressed RLE dicts for ``frPyObjects``; integer box arrays; tuples for lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..masks import RLEs, _rles
from ..masks._rles import _ext

__all__ = ["area", "decode", "encode", "frPyObjects", "iou", "merge", "toBbox"]

RLE = dict[str, Any]


def _is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def _pack(rle_objs: Any, name: str = "rleObjs") -> RLEs:
    if not _is_list(rle_objs):
        kind = type(rle_objs).__name__
        raise TypeError(f"{name} must be an RLE dict or a list of them, not {kind}")
    return RLEs.from_coco(rle_objs)


def encode(bimask: np.ndarray) -> RLE | list[RLE]:
    """Compressed RLE of a binary mask [H, W] (one dict) or [H, W, N] (a list of N dicts).

    uint8 or bool, any memory order (pycocotools needs Fortran order). As pycocotools, a run
    ends wherever the byte value changes.
    """
    masks = np.asarray(bimask)
    if masks.ndim == 2:
        return RLEs.from_dense(masks[:, :, None]).to_coco()[0]
    if masks.ndim == 3:
        return RLEs.from_dense(masks).to_coco()
    raise ValueError(f"encode takes a mask [H, W] or [H, W, N], got shape {masks.shape}")


def decode(rleObjs: RLE | Sequence[RLE]) -> np.ndarray:  # noqa: N803 - pycocotools' name
    """The binary masks: uint8 [H, W] (Fortran order) for one dict, [H, W, N] for a list."""
    if isinstance(rleObjs, dict):
        return RLEs.from_coco([rleObjs]).to_dense()[:, :, 0]
    rles = _pack(rleObjs)
    if len(rles) == 0:
        return np.zeros((0, 0, 0), np.uint8, order="F")
    return rles.to_dense()


def area(rleObjs: RLE | Sequence[RLE]) -> np.uint32 | np.ndarray:  # noqa: N803
    """Foreground pixels: a uint32 for one dict, uint32 [N] for a list."""
    if isinstance(rleObjs, dict):
        return RLEs.from_coco([rleObjs]).areas()[0]
    return _pack(rleObjs).areas().copy()


def toBbox(rleObjs: RLE | Sequence[RLE]) -> np.ndarray:  # noqa: N802, N803
    """Bounding boxes [x, y, w, h]: float64 [4] for one dict, [N, 4] for a list."""
    if isinstance(rleObjs, dict):
        return RLEs.from_coco([rleObjs]).boxes()[0].copy()
    return _pack(rleObjs).boxes().copy()


def merge(rleObjs: Sequence[RLE], intersect: int = 0) -> RLE:  # noqa: N803
    """One RLE: the union of the masks, or their intersection when ``intersect``."""
    if isinstance(rleObjs, dict):
        rleObjs = [rleObjs]
    rles = _pack(rleObjs)
    return rles.merge(bool(intersect)).to_coco()[0]


def _boxes(objs: Any, name: str) -> np.ndarray:
    boxes = np.asarray(objs)
    if boxes.ndim == 1 and boxes.shape[0] == 4:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.dtype.kind not in "fiub":
        raise ValueError(f"{name}: boxes must be a numeric [N, 4] array of [x, y, w, h]")
    return np.ascontiguousarray(boxes, dtype=np.float64)


def _iou_operand(objs: Any, name: str) -> tuple[str, Any, int]:
    """('rle' | 'box' | 'empty', packed operand, count), as pycocotools' iou sorts its inputs."""
    if isinstance(objs, np.ndarray):
        if len(objs) == 0:
            return "empty", None, 0
        boxes = _boxes(objs, name)
        return "box", boxes, boxes.shape[0]
    if type(objs) is list and objs and type(objs[0]) is dict:
        packed = _ext.pack_coco(objs)  # the common case; None: the checks below name the problem
        if packed is not None:
            return "rle", RLEs._trusted(*packed), len(objs)
    if not _is_list(objs):
        raise TypeError(
            f"{name} must be a list of RLE dicts, a list of boxes or an [N, 4] array, "
            f"not {type(objs).__name__}"
        )
    if len(objs) == 0:
        return "empty", None, 0
    if all(isinstance(o, dict) for o in objs):
        rles = RLEs.from_coco(objs)
        return "rle", rles, len(rles)
    if all(isinstance(o, (list, tuple, np.ndarray)) and len(o) == 4 for o in objs):
        boxes = _boxes(objs, name)
        return "box", boxes, boxes.shape[0]
    raise TypeError(f"{name} must be all RLE dicts or all [x, y, w, h] boxes")


def iou(dt: Any, gt: Any, iscrowd: Sequence[int] | np.ndarray) -> np.ndarray | list:
    """IoU of every dt with every gt: float64 [len(dt), len(gt)], RLEs or xywh boxes.

    A crowd gt (``iscrowd`` nonzero) scores intersection over the detection's area. For masks of
    different sizes whose boxes overlap the value is -1, as pycocotools. Either side empty
    returns ``[]`` (a list, as pycocotools).
    """
    crowd = np.array(iscrowd, dtype=np.uint8).reshape(-1)
    dt_kind, dt_obj, m = _iou_operand(dt, "dt")
    gt_kind, gt_obj, n = _iou_operand(gt, "gt")
    if crowd.shape[0] != n:
        raise ValueError(f"iscrowd has {crowd.shape[0]} entries but gt has {n}")
    if m == 0 or n == 0:
        return []
    if dt_kind != gt_kind:
        raise TypeError("dt and gt must be the same kind: both RLE lists or both boxes")
    if dt_kind == "rle":
        return _rles.iou_matrix(dt_obj, gt_obj, crowd)
    out = np.empty((m, n), np.float64)
    _ext.box_iou(dt_obj, gt_obj, crowd, out, _rles.threads_for(m * n))
    return out


def _size(h: Any, w: Any) -> tuple[int, int]:
    try:
        h, w = int(h), int(w)
    except (TypeError, ValueError):
        raise TypeError(f"h and w must be integers, got {h!r} and {w!r}") from None
    _rles.check_sizes(np.array([h]), np.array([w]))
    return h, w


def _from_polygons(polygons: Sequence[Any], h: int, w: int) -> list[RLE]:
    n = len(polygons)
    counts, offsets = _rles.polygon_runs(polygons, np.full(n, h), np.full(n, w))
    full = np.full(n, h, np.int64), np.full(n, w, np.int64)
    return RLEs._trusted(counts, offsets, *full).to_coco()


def _from_boxes(boxes: np.ndarray, h: int, w: int) -> list[RLE]:
    """pycocotools' rleFrBbox: each box as the polygon of its four corners."""
    xs, ys = boxes[:, 0], boxes[:, 1]
    xe, ye = xs + boxes[:, 2], ys + boxes[:, 3]
    corners = np.stack([xs, ys, xs, ye, xe, ye, xe, ys], axis=1)
    return _from_polygons(list(corners), h, w)


def _from_rle_dicts(objs: Sequence[RLE]) -> list[RLE]:
    """Uncompressed (or compressed) RLE dicts -> compressed; each keeps its own 'size'."""
    return RLEs.from_coco(objs).to_coco()


def _is_rle_dict(x: Any) -> bool:
    return isinstance(x, dict) and "counts" in x and "size" in x


def frPyObjects(pyobj: Any, h: int, w: int) -> RLE | list[RLE]:  # noqa: N802
    """Compressed RLEs of polygons, boxes or RLE dicts, on an image of h x w pixels.

    - a list of polygons (each a flat ``[x0, y0, x1, y1, ...]`` of more than 4 numbers; later
      ones may be shorter, as pycocotools) -> a list of dicts;
    - an [N, 4] array or a list of ``[x, y, w, h]`` boxes -> a list of dicts;
    - a list of RLE dicts (uncompressed or compressed; each keeps its own ``size``) -> a list;
    - one polygon, one box or one RLE dict -> one dict.
    """
    h, w = _size(h, w)
    if isinstance(pyobj, np.ndarray):
        return _from_boxes(_boxes(pyobj, "pyobj") if pyobj.size else np.zeros((0, 4)), h, w)
    if _is_rle_dict(pyobj):
        return _from_rle_dicts([pyobj])[0]
    if not _is_list(pyobj):
        raise TypeError(
            "frPyObjects takes polygons, boxes or RLE dicts (a list, an [N, 4] array or a dict), "
            f"not {type(pyobj).__name__}"
        )
    if len(pyobj) == 0:
        return []
    first = pyobj[0]
    if _is_rle_dict(first):
        if not all(isinstance(o, dict) for o in pyobj):
            raise TypeError("a list of RLE dicts must hold only dicts")
        return _from_rle_dicts(pyobj)
    if isinstance(first, (list, tuple, np.ndarray)):
        if len(first) == 4:
            if not all(_is_list(b) or isinstance(b, np.ndarray) for b in pyobj):
                raise TypeError("a list of boxes must hold only [x, y, w, h] lists")
            return _from_boxes(_boxes(pyobj, "pyobj"), h, w)
        if len(first) > 4:
            if not all(_is_list(p) or isinstance(p, np.ndarray) for p in pyobj):
                raise TypeError("a list of polygons must hold only lists of coordinates")
            return _from_polygons(pyobj, h, w)
        raise ValueError(
            "a polygon is a flat list [x0, y0, x1, y1, ...] of more than 4 numbers; "
            f"got {len(first)} numbers"
        )
    if isinstance(first, dict):
        raise ValueError("RLE dicts need both 'size' and 'counts'")
    if len(pyobj) == 4:
        return _from_boxes(_boxes(pyobj, "pyobj"), h, w)[0]
    if len(pyobj) > 4:
        return _from_polygons([pyobj], h, w)[0]
    raise ValueError(f"a single polygon needs more than 4 numbers, got {len(pyobj)}")
