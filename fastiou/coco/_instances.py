"""Masks and keypoints of COCO annotations, for "segm" and "keypoints" evaluation.

What pycocotools does with the annotation dicts (``annToRLE``, the segmentation and keypoint
branches of ``loadRes``, ``computeOks``), done on columns: the engine (``_evaluate.py``) asks
for each group's overlap matrix through the functions built here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._table import AnnotationError, Annotations, result_table

COCO = Any  # a fastiou.coco.COCO (not imported: _coco imports this module)

# pycocotools' Params.kpt_oks_sigmas (setKpParams): COCO's 17 person keypoints
KPT_OKS_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87,
              0.87, 0.89, 0.89]) / 10.0
)  # fmt: skip
# terms of the OKS computed (and exponentiated by numpy) per chunk: bounds the scratch memory
_OKS_CHUNK_TERMS = 1 << 20
# below this many terms one thread computes them; the 5,000-image keypoints bench set (1.2M
# terms) is computed on the pool's threads (_evaluate.PARALLEL_MIN_DETECTIONS has the figures)
_OKS_PARALLEL_TERMS = 1 << 18


def ann_to_rle(coco: COCO, ann: Mapping[str, Any]) -> dict:
    """pycocotools' ``COCO.annToRLE``: polygons (merged), uncompressed RLE or RLE -> RLE."""
    from . import mask as _mask

    try:
        img = coco.imgs[ann["image_id"]]
        h, w = img["height"], img["width"]
    except KeyError as e:
        raise AnnotationError(
            f"annotation {ann.get('id', '?')!r}: its image needs 'height' and 'width' to "
            f"rasterise the segmentation (missing {e})"
        ) from None
    if "segmentation" not in ann:
        raise AnnotationError(f"annotation {ann.get('id', '?')!r} has no 'segmentation'")
    segm = ann["segmentation"]
    if type(segm) is list:  # polygons: a single object may have several parts
        return _mask.merge(_mask.frPyObjects(segm, h, w))
    if type(segm["counts"]) is list:  # uncompressed RLE
        return _mask.frPyObjects(segm, h, w)
    return segm


def _annotations(coco: COCO) -> list:
    """The annotation dicts of ``coco`` in table-row order (results: as loadRes keeps them)."""
    anns = coco.dataset.get("annotations", [])
    if len(anns) != len(coco._table()):
        raise AnnotationError("the annotations changed since they were indexed: createIndex()")
    return anns


def rles(coco: COCO) -> Any:
    """Every annotation's RLE (cached on ``coco``), packed for ``iou_groups``: pycocotools'
    ``annToRLE`` of each, computed for all annotations at once (every polygon of the set in one
    rasterisation call, every compressed RLE in one parse)."""
    cached = getattr(coco, "_rles_cache", None)
    if cached is None:
        cached = _rles_in_file(coco)
        if cached is None:
            cached = _pack_annotations(coco, _annotations(coco))
        coco._rles_cache = cached
    return cached


def _rles_in_file(coco: COCO) -> Any:
    """``rles(coco)`` read where the segmentations lie in ``coco``'s file (no dict per
    annotation): the results scanner's RLEs, or the ground truth's scanned spans; None where
    the dicts decide (no file, dicts made, or a value the compiled readers decline)."""
    path = _file_of(coco)
    if path is None:
        return None
    if coco._is_results:
        spans, stat = getattr(coco, "_segm_spans", None), getattr(coco, "_result_stat", None)
        if spans is not None and len(spans) == len(coco._table()) and stat == _file_stat(path):
            from ..masks import RLEs
            from ._ext import kernels
            from ._json import _threads, _with_bytes

            strings = _with_bytes(path, lambda buf: kernels().rle_spans(buf, spans, _threads()))
            if strings is not None:  # the masks only (the table is made): no scan, no boxes
                try:
                    masks = RLEs.from_string_chars(*strings)
                except (ValueError, TypeError):
                    masks = None
                if masks is not None:
                    return _remeasured(masks, coco._segm_measured)
        packed: dict = {}
        table = segm_results(path, path, packed)
        return packed["rles"] if table is not None and len(table) == len(coco._table()) else None
    table = coco._table()
    spans = getattr(coco, "_segm_spans", None)
    if spans is None or len(spans) != len(table) or not _unchanged(coco, path):
        return None
    heights, widths = _image_sizes(coco.imgs, table.image_id)
    from ._json import _with_bytes

    return _with_bytes(path, lambda buf: _pack_spans(buf, spans, heights, widths, len(table)))


def _file_stat(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _unchanged(coco: COCO, path: str) -> bool:
    """Whether ``coco``'s file is as it was loaded (its scanned spans still point at its
    values); else the dict path reads it, or says it changed."""
    location = coco._location
    if location is None:
        return False
    stat = os.stat(path)
    return (stat.st_size, stat.st_mtime_ns) == location.file_stat


def _image_sizes(imgs: dict, image_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each annotation's image height and width (int64; -1 where not a Python int, or the
    image is not in ``imgs``)."""
    heights, widths = [], []
    for img in imgs.values():
        h, w = (img.get("height"), img.get("width")) if type(img) is dict else (None, None)
        ok = type(h) is int and type(w) is int and -(2**62) < h < 2**62 and -(2**62) < w < 2**62
        heights.append(h if ok else -1)
        widths.append(w if ok else -1)
    keys = list(imgs)
    if not all(type(i) is int and -(2**63) <= i < 2**63 for i in keys):  # str ids...
        sizes = dict(zip(keys, zip(heights, widths, strict=True), strict=True))
        hw = np.array([sizes.get(i, (-1, -1)) for i in image_id.tolist()], np.int64)
        hw = hw.reshape(-1, 2)
        return np.ascontiguousarray(hw[:, 0]), np.ascontiguousarray(hw[:, 1])
    if not keys:
        return np.full(len(image_id), -1, np.int64), np.full(len(image_id), -1, np.int64)
    ids = np.array(keys, np.int64)
    order = np.argsort(ids, kind="stable")
    rows = order[np.minimum(np.searchsorted(ids, image_id, sorter=order), len(ids) - 1)]
    found = ids[rows] == image_id
    h = np.where(found, np.array(heights, np.int64)[rows], -1)
    w = np.where(found, np.array(widths, np.int64)[rows], -1)
    return h, w


def _pack_spans(buf, spans: np.ndarray, heights, widths, n: int) -> Any:
    from ..masks import RLEs
    from ._ext import kernels
    from ._json import _loads, pow5_table

    if (spans[:, 0] < 0).any():
        return None  # an annotation without a segmentation: the dict path names it
    k = kernels()
    kind, n_parts, xy, lengths, part_h, part_w = k.polygon_spans(
        buf, spans, pow5_table(), heights, widths
    )
    if (kind == 2).any():
        return None  # what only Python reads (or an error it names)
    pieces = _polygon_pieces(xy, lengths, part_h, part_w, n_parts)
    rle_at = np.flatnonzero(kind == 1)
    if rle_at.shape[0]:
        objs = [_loads(bytes(buf[a:b])) for a, b in spans[rle_at].tolist()]
        try:
            pieces.append((RLEs.from_coco(objs), rle_at))
        except (TypeError, ValueError, KeyError):
            return None
    return _in_order(pieces, n)


def _pack_annotations(coco: COCO, anns: list) -> Any:
    from ..masks import RLEs
    from ._ext import kernels

    imgs = coco.imgs if type(coco.imgs) is dict else dict(coco.imgs)
    # kind 0: polygon parts, 1: an RLE dict, 2: anything else (one by one, below)
    kind, n_parts, xy, lengths, part_h, part_w = kernels().segmentations(anns, imgs)
    pieces = _polygon_pieces(xy, lengths, part_h, part_w, n_parts)
    rle_at = np.flatnonzero(kind == 1)
    if rle_at.shape[0]:
        pieces.append((RLEs.from_coco([anns[k]["segmentation"] for k in rle_at.tolist()]), rle_at))
    other_at = np.flatnonzero(kind == 2)
    if other_at.shape[0]:  # an empty polygon list, numpy numbers, or an error
        other = [ann_to_rle(coco, anns[k]) for k in other_at.tolist()]
        pieces.append((RLEs.from_coco(other), other_at))
    return _in_order(pieces, len(anns))


def _polygon_pieces(xy, lengths, part_h, part_w, n_parts) -> list:
    """[(RLEs, annotation positions)] of the polygon annotations: their parts rasterised at
    once, an annotation of several parts merged (pycocotools' annToRLE)."""
    from ..masks import RLEs
    from ..masks._rles import polygon_runs_flat

    if not lengths.shape[0]:
        return []
    try:
        counts, offsets = polygon_runs_flat(xy, lengths, part_h, part_w)
    except ValueError as e:
        raise AnnotationError(f"a polygon segmentation: {e}") from None
    polys = RLEs._trusted(counts, offsets, part_h, part_w)
    owners = np.flatnonzero(n_parts)
    first = np.zeros(len(owners) + 1, np.int64)
    np.cumsum(n_parts[owners], out=first[1:])
    single = n_parts[owners] == 1
    if single.all():  # one polygon per annotation (the usual): the parts are the masks
        return [(polys, owners)]
    pieces = [(polys.subset(first[:-1][single]), owners[single])]
    for k, a, b in zip(owners[~single], first[:-1][~single], first[1:][~single], strict=True):
        pieces.append((polys.subset(np.arange(a, b)).merge(), np.array([k])))
    return pieces


def _in_order(pieces: list, n: int) -> Any:
    """One RLEs of n masks from pieces (RLEs, the positions its masks take)."""
    from ..masks import RLEs

    if not pieces:
        return RLEs._trusted(np.zeros(0, np.uint32), np.zeros(1, np.int64),
                             np.zeros(0, np.int64), np.zeros(0, np.int64))  # fmt: skip
    if len(pieces) == 1 and np.array_equal(pieces[0][1], np.arange(n)):
        return pieces[0][0]  # every annotation of one kind (the detections: RLE strings)
    counts = np.concatenate([r.counts for r, _ in pieces])
    lengths = np.concatenate([np.diff(r.offsets) for r, _ in pieces])
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pooled = RLEs._trusted(
        counts, offsets, np.concatenate([r.heights for r, _ in pieces]),
        np.concatenate([r.widths for r, _ in pieces]),
    )  # fmt: skip
    order = np.empty(n, np.int64)
    order[np.concatenate([at for _, at in pieces])] = np.arange(n)
    return pooled.subset(order)


def _file_of(coco: COCO) -> str | None:
    """The JSON file whose annotation array still is ``coco``'s annotations (rows in table
    order), or None: then the dicts are read."""
    if coco._is_results:
        source = getattr(coco, "_result_source", None)
        return source if isinstance(source, str) else None
    return coco._path if coco._path is not None and coco._dataset is None else None


def _scan(path: str, k3: int) -> dict | None:
    """The keypoint columns of a file: one pass with columns sized for objects that hold the
    keys evaluation requires and k3 keypoints; else (a smaller object) counting them first."""
    from ._ext import kernels
    from ._json import MIN_GT_BYTES, _threads, _with_bytes, pow5_table

    def scan(buf):
        k = kernels()
        smallest = MIN_GT_BYTES + len(',"keypoints":[]') + max(0, 2 * k3 - 1)
        found = k.scan_keypoints(buf, pow5_table(), k3, False, 1, smallest)
        return (
            k.scan_keypoints(buf, pow5_table(), k3, False, _threads()) if found is None else found
        )

    return _with_bytes(path, scan)


def _scan_spans(coco: COCO, path: str, k3: int) -> dict | None:
    """The keypoint columns read at the spans the ground truth's load recorded (no second scan
    of the file), or None."""
    from ._ext import kernels
    from ._json import _threads, _with_bytes, pow5_table

    n = len(coco._table())  # the spans are kept when the table is made
    kpts, nkpts = getattr(coco, "_keypoint_spans", (None, None))
    if kpts is None or nkpts is None or len(kpts) != n or len(nkpts) != n:
        return None
    if not _unchanged(coco, path):
        return None
    read = kernels().keypoint_spans
    return _with_bytes(path, lambda buf: read(buf, kpts, nkpts, pow5_table(), k3, _threads()))


def _scanned(coco: COCO, k3: int) -> dict | None:
    """The keypoint columns of ``coco``'s file (cached), without a dict per annotation."""
    cached = getattr(coco, "_keypoints_cache", None)
    if isinstance(cached, dict) and cached["keypoints"].shape[1] == k3:
        return cached
    path = _file_of(coco)
    scan = None if path is None else _scan_spans(coco, path, k3)
    if scan is None and path is not None:
        scan = _scan(path, k3)
    if scan is None or len(scan["count"]) != len(coco._table()):
        return None
    coco._keypoints_cache = scan
    return scan


def keypoints(coco: COCO, k: int) -> np.ndarray:
    """[N, 3k] float64: every annotation's ``keypoints`` (x, y, v per keypoint)."""
    scan = _scanned(coco, 3 * k)
    if scan is not None:
        bad = scan["count"] != 3 * k
        if bad.any():
            i = int(np.argmax(bad))
            if scan["count"][i] < 0:
                raise AnnotationError(f"annotation {i} has no 'keypoints'")
            raise AnnotationError(
                f"annotation {i}: keypoints must be {3 * k} numbers (x, y, v for each of the "
                f"{k} sigmas), got {int(scan['count'][i])}"
            )
        return scan["keypoints"]
    cached = getattr(coco, "_keypoints_cache", None)
    if isinstance(cached, np.ndarray) and cached.shape[1] == 3 * k:
        return cached
    anns = _annotations(coco)
    try:
        values = [ann["keypoints"] for ann in anns]
    except KeyError:
        i = next(i for i, a in enumerate(anns) if "keypoints" not in a)
        raise AnnotationError(
            f"annotation {i} (id {anns[i].get('id', '?')!r}) has no 'keypoints'"
        ) from None
    try:
        out = np.array(values, dtype=np.float64).reshape(len(anns), -1)
    except (TypeError, ValueError):
        out = None
    if out is None or out.shape[1] != 3 * k:
        i = next((i for i, v in enumerate(values) if np.size(v) != 3 * k), 0 if out is None else -1)
        raise AnnotationError(
            f"annotation {i}: keypoints must be {3 * k} numbers (x, y, v for each of the {k} "
            f"sigmas), got {np.size(values[i]) if i >= 0 else '?'}"
        )
    coco._keypoints_cache = out
    return out


def num_keypoints_zero(coco: COCO, k: int) -> np.ndarray:
    """uint8 per ground truth: ``num_keypoints == 0`` (pycocotools ignores those)."""
    scan = _scanned(coco, 3 * k)
    if scan is not None:
        missing = np.isnan(scan["num_keypoints"])
        if missing.any():
            raise AnnotationError(f"ground truth {int(np.argmax(missing))} has no 'num_keypoints'")
        return (scan["num_keypoints"] == 0).astype(np.uint8)
    anns = _annotations(coco)
    try:
        return np.array([ann["num_keypoints"] == 0 for ann in anns], np.uint8).reshape(-1)
    except KeyError:
        i = next(i for i, a in enumerate(anns) if "num_keypoints" not in a)
        raise AnnotationError(
            f"ground truth {i} (id {anns[i].get('id', '?')!r}) has no 'num_keypoints'"
        ) from None


def _keypoint_boxes(points: Any, keep: dict | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """loadRes' keypoint boxes and areas from x = s[0::3], y = s[1::3] (np.min / np.max), for
    rows of one length (a 2-D array); None otherwise. ``keep["extents"]`` gets the kernel's
    [N, 4] (x0, x1, y0, y1), which the OKS bound reads again (:func:`oks_overlaps`)."""
    try:
        kp = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if kp.ndim != 2 or kp.shape[1] < 2:
        return None
    from ._ext import kernels

    # np.min / np.max of x = s[0::3] and y = s[1::3], in one compiled pass
    extents = kernels().keypoint_boxes(np.ascontiguousarray(kp))
    if keep is not None:
        keep["extents"] = extents
    x0, x1, y0, y1 = extents.T
    return np.stack([x0, y0, x1 - x0, y1 - y0], 1), (x1 - x0) * (y1 - y0)


def _keypoint_branch(scan: dict) -> bool:
    if not len(scan["count"]):
        return False
    flags = int(scan["flags"][0])
    has_box = bool(flags & 1) and not flags & 4
    return not has_box and not flags & 2 and scan["count"][0] >= 0


def keypoint_results(path: str, source: str) -> tuple[Annotations, dict] | None:
    """A results file of pycocotools' keypoint branch (the first result has keypoints, no box
    and no segmentation) as columns, without a dict per detection; its keypoint columns are
    returned too, for the evaluation. None where the box path or Python's json must decide."""
    from ._ext import kernels
    from ._json import _threads, _with_bytes, is_mapped, pow5_table
    from ._table import check_finite

    k = kernels()

    def scan(buf):
        if not len(buf):
            return None
        first = k.scan_keypoints(buf, pow5_table(), 0, first_only=True)
        if first is None or not _keypoint_branch(first) or first["count"][0] <= 0:
            return None
        k3 = int(first["count"][0])
        # each result has k3 numbers (else the vectorised path declines): a bound on its size
        smallest = len('{"keypoints":[]}') + 2 * k3 - 1
        return k.scan_keypoints(
            buf, pow5_table(), k3, False, _threads(), smallest, release_input=is_mapped(buf)
        )

    kp = _with_bytes(path, scan)
    if kp is None or not len(kp["count"]):
        return None
    k3 = int(kp["count"][0])
    if k3 % 3 or (kp["count"] != k3).any():
        return None  # rows the vectorised path does not cover: the dict path decides
    ids = np.stack([kp["image_id"], kp["category_id"]])
    if not (
        np.isfinite(ids).all()
        and (ids == np.round(ids)).all()
        and np.abs(ids).max(initial=0) < 2**53
        and not np.isnan(kp["score"]).any()
    ):
        return None
    bbox, area = _keypoint_boxes(kp["keypoints"], kp)
    table = result_table(ids[0].astype(np.int64), ids[1].astype(np.int64), bbox, kp["score"], area)
    check_finite(table, source)
    return table, kp


def segm_results(path: str, source: str, packed: dict) -> Annotations | None:
    """A results file of pycocotools' segm branch (compressed RLE results, the first without a
    box) as columns, without a dict per detection (see :func:`segm_scanned`)."""
    from ._json import _with_bytes, scan_results

    def scan(buf):
        columns = scan_results(buf, _SEGM_KEYS + ("segmentation",))
        return None if columns is None else segm_scanned(buf, columns, source, packed)

    return _with_bytes(path, scan)


_SEGM_KEYS = ("image_id", "category_id", "score", "bbox")  # the last one optional


def segm_scanned(buf, columns: dict, source: str, packed: dict) -> Annotations | None:
    """pycocotools' segm-branch loadRes columns of a scanned results file (``columns`` with the
    "segmentation" spans into ``buf``): area and box from each mask, a result's own box kept,
    each RLE object read where it lies; ``packed["rles"]`` receives the masks. None where it
    is not that branch or holds anything else (a key missing, a run list, a polygon, a corrupt
    string...): the dict path then decides, and names any problem."""
    from ..masks import RLEs
    from ._ext import kernels
    from ._json import _threads
    from ._table import check_finite

    k = kernels()
    seen = columns["seen"]
    bit = {key: np.uint8(1 << k.KEYS.index(key)) for key in _SEGM_KEYS}
    if not len(seen) or seen[0] & bit["bbox"]:  # empty, or the box branch
        return None
    for key in _SEGM_KEYS[:3]:
        if ((seen & bit[key]) == 0).any():
            return None
    if (columns["segmentation"][:, 0] < 0).any():
        return None
    strings = k.rle_spans(buf, columns["segmentation"], _threads())
    if strings is None:
        return None
    try:
        masks = RLEs.from_string_chars(*strings)
    except (ValueError, TypeError):
        return None
    boxed = (seen & bit["bbox"]) != 0
    bbox = masks.boxes().astype(np.float64)
    bbox[boxed] = columns["bbox"][boxed]  # pycocotools keeps a result's own box
    table = result_table(
        columns["image_id"], columns["category_id"], bbox, columns["score"],
        masks.areas().astype(np.float64),
    )  # fmt: skip
    check_finite(table, source)
    packed["rles"] = masks
    packed["spans"] = columns["segmentation"]  # where each one lies: read again from there
    return table


def _remeasured(masks: Any, known: dict) -> Any:
    """``masks`` (read again from an unchanged file) with the boxes and areas ``known`` of the
    same masks, read before, already measured."""
    masks._cache.update({k: v for k, v in known.items() if len(v) == len(masks)})
    return masks


def segm_overlaps(gt: COCO, dt: COCO):
    """The engine's ``overlaps`` for "segm": mask IoU per group (fastiou.masks.iou_groups)."""
    from ..masks import iou_groups

    gt_rles, dt_rles = rles(gt), rles(dt)

    def overlaps(dt_rows, d_start, d_end, gt_rows, g_start, g_end, gt_iscrowd, threads):
        return iou_groups(
            dt_rles, dt_rows, d_start, d_end, gt_rles, gt_rows, g_start, g_end, gt_iscrowd,
            threads,
        )  # fmt: skip

    return overlaps


def oks_overlaps(gt: COCO, dt: COCO, sigmas: Any, use_cats: bool, lowest: float = 0.0):
    """The engine's ``overlaps`` for "keypoints": pycocotools' computeOks per group. With
    ``lowest`` > 0 (the lowest matching threshold), a pair whose OKS is surely below it gets
    -1 instead (``fi_oks_counts``): matching never takes it, and its exp is not computed."""
    from ._ext import kernels

    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    variances = np.ascontiguousarray((sigmas * 2) ** 2)  # as pycocotools: vars = (sigmas*2)**2
    k_count = len(variances)
    gt_table = gt._table()
    gt_kp, dt_kp = keypoints(gt, k_count), keypoints(dt, k_count)
    k = kernels()
    scan = getattr(dt, "_keypoints_cache", None)  # loadRes' extents of these same keypoints
    if isinstance(scan, dict) and scan["keypoints"] is dt_kp and "extents" in scan:
        dt_box = scan["extents"]
    else:
        dt_box = k.keypoint_boxes(dt_kp)  # for the bound of fi_oks_counts

    def overlaps(dt_rows, d_start, d_end, gt_rows, g_start, g_end, gt_iscrowd, threads):
        sizes = (d_end - d_start) * (g_end - g_start)
        offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        if not use_cats:
            # pycocotools' computeOks reads the groups of category -1 (none): no OKS at all,
            # nothing matches (-inf is below every threshold)
            return np.full(int(offsets[-1]), -np.inf), offsets
        values = np.empty(int(offsets[-1]), np.float64)
        if offsets[-1] * k_count < _OKS_PARALLEL_TERMS:
            threads = 1
        s0, n_groups = 0, len(sizes)
        while s0 < n_groups:  # chunks of groups, so that the terms fit the scratch bound
            limit = offsets[s0] + max(1, _OKS_CHUNK_TERMS // k_count)
            s1 = max(s0 + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
            s1 = min(s1, n_groups)
            pairs = int(offsets[s1] - offsets[s0])
            if pairs:
                args = (
                    d_start, d_end, g_start, g_end, offsets, s0, s1, dt_kp, dt_rows, gt_kp,
                    gt_table.bbox, gt_table.area, gt_rows, variances,
                )  # fmt: skip
                counts = np.empty(pairs, np.int32)
                pos = np.empty(pairs, np.int64)
                total = k.oks_counts(*args, counts, pos, threads, lowest, dt_box)
                terms = np.empty(total, np.float64)
                k.oks_terms(*args, counts, pos, terms, threads)
                exp_terms = np.exp(np.negative(terms))  # numpy's exp: pycocotools' np.exp(-e)
                k.oks_sum(exp_terms, terms, counts, pos, values[offsets[s0] : offsets[s1]])
            s0 = s1
        return values, offsets

    return overlaps


# -- loadRes: pycocotools' segmentation and keypoint branches --------------------------------


def _column(anns: Sequence[Mapping], key: str, source: str) -> list:
    try:
        return [ann[key] for ann in anns]
    except KeyError:
        i = next(i for i, a in enumerate(anns) if key not in a)
        raise AnnotationError(f"{source}: annotation {i}: missing key {key!r}") from None
    except TypeError:
        i = next(i for i, a in enumerate(anns) if not isinstance(a, Mapping))
        raise AnnotationError(f"{source}: annotation {i} is not an object") from None


def result_branch(anns: Sequence[Mapping]) -> str:
    """Which branch of pycocotools' loadRes the results take (it looks at the first one)."""
    first = anns[0] if len(anns) else {}
    if not isinstance(first, Mapping):
        return "bbox"  # the box path names the problem
    if "bbox" in first and not first["bbox"] == []:
        return "bbox"
    if "segmentation" in first:
        return "segm"
    if "keypoints" in first:
        return "keypoints"
    return "bbox"


def results_table(
    anns: Sequence[Mapping], source: str, packed: dict | None = None, branch: str | None = None
) -> Annotations:
    """Results columns of the "segm" or "keypoints" loadRes branch: ids 1..N, not crowd;
    segm: area = mask area, bbox = the given box or the mask's; keypoints: area and box
    from the keypoints' extent. segm: ``packed["rles"]`` receives the results' packed RLEs
    (what :func:`rles` would make of them: the evaluation reuses them). ``branch``: default
    :func:`result_branch` (lvis-api decides on another result: it says "segm")."""
    from ._table import _int_column

    branch = result_branch(anns) if branch is None else branch

    image_id = _int_column(_column(anns, "image_id", source), "image_id", source)
    category_id = _int_column(_column(anns, "category_id", source), "category_id", source)
    try:
        score = np.array(_column(anns, "score", source), dtype=np.float64).reshape(len(anns))
    except (TypeError, ValueError) as e:
        raise AnnotationError(f"{source}: every score must be a number ({e})") from None
    if branch == "segm":
        segms = _column(anns, "segmentation", source)
        try:
            # pycocotools' per-result area(segm) and toBbox(segm), on all RLEs at once
            from ..masks import RLEs

            masks = RLEs.from_coco(segms)
            if packed is not None:
                packed["rles"] = masks
            area = masks.areas().astype(np.float64)
            bbox = masks.boxes().astype(np.float64).reshape(len(anns), 4)
            for i, ann in enumerate(anns):
                if "bbox" in ann:
                    bbox[i] = np.asarray(ann["bbox"], dtype=np.float64).reshape(4)
        except (TypeError, ValueError, KeyError) as e:
            raise AnnotationError(
                f"{source}: segmentation results must be RLE dicts ({{'size', 'counts'}}): {e}"
            ) from None
    else:
        points = _column(anns, "keypoints", source)
        boxes = _keypoint_boxes(points)
        if boxes is not None:
            bbox, area = boxes
        else:
            bbox, area = np.empty((len(anns), 4)), np.empty(len(anns))
        for i, s in enumerate(
            points if boxes is None else ()
        ):  # as loadRes: np.min / np.max of x = s[0::3], y = s[1::3]
            try:
                x, y = s[0::3], s[1::3]
                x0, x1, y0, y1 = np.min(x), np.max(x), np.min(y), np.max(y)
            except (TypeError, ValueError) as e:
                raise AnnotationError(f"{source}: annotation {i}: bad keypoints ({e})") from None
            area[i] = (x1 - x0) * (y1 - y0)
            bbox[i] = [x0, y0, x1 - x0, y1 - y0]
    table = result_table(image_id, category_id, bbox, score, area)
    from ._table import check_finite

    check_finite(table, source)
    return table


def loaded_results(anns: Sequence[Mapping], table: Annotations) -> list[dict]:
    """The result dicts as pycocotools' loadRes leaves them (copies; the caller's are not
    changed): ``id``, ``area``, and per branch ``iscrowd``, ``bbox``, a box polygon as
    ``segmentation`` for box results without one."""
    if len(anns) != len(table):
        raise AnnotationError("the results changed since loadRes read them")
    branch = result_branch(anns)
    area, bbox = table.area.tolist(), table.bbox.tolist()
    out = []
    for i, ann in enumerate(anns):
        new = dict(ann)
        if branch == "bbox":
            x, y, w, h = new["bbox"]
            new.setdefault("segmentation", [[x, y, x, y + h, x + w, y + h, x + w, y]])
            new["iscrowd"] = 0
        elif branch == "segm":
            new.setdefault("bbox", bbox[i])
            new["iscrowd"] = 0
        else:
            new["bbox"] = bbox[i]
        new["area"] = area[i]
        new["id"] = i + 1
        out.append(new)
    return out
