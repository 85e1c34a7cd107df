"""The evaluation pipeline on columns: pycocotools' evaluate() and accumulate(), same numbers.

evaluate:
1. map image and category ids to positions; drop annotations outside ``params``;
2. order ground truth and detections by group (category, image) as pycocotools lists them,
   the detections of a group by score (stable) and cut to ``maxDets[-1]``; and the detections
   of each category in pycocotools' accumulate order (score, then image, then rank in image).
   Counting sorts, then stable sorts by score within groups and within categories;
3. per group: the IoU matrix once, then the greedy matching for every area range and IoU
   threshold (compiled, parallel over groups): each kept detection gets, per area range, a
   word of bits "true positive at threshold t" and "false positive at threshold t" (neither:
   ignored).

accumulate: per (category, area range), in parallel, the detections counted at some threshold
are listed once, then each threshold walks that list for all maxDets at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import config as _config
from ._ext import kernels
from ._table import Annotations

# overlaps(dt_rows, d_start, d_end, gt_rows, g_start, g_end, gt_iscrowd, threads)
#   -> (values, offsets): group s holds the kept detections dt_rows[d_start[s]:d_end[s]] (rows
#   of the results, in score order) and the ground truth gt_rows[g_start[s]:g_end[s]] (rows of
#   the dataset, pycocotools' order; gt_iscrowd is aligned with gt_rows); its overlap matrix is
#   values[offsets[s]:offsets[s + 1]] as D x G, row-major (empty where D or G is 0). Matching
#   only compares values with the thresholds: a value below the lowest (best_threshold) may be
#   given as any value below it (OKS: -1 where it is surely below, not computed).
Overlaps = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass
class GroupMatches:
    """The matching of every (category, image) group with detections, in group order, as
    evalImgs needs it: per kept detection and area range, the matched ground truth of each
    IoU threshold (its position in the group's ground truth, -1: none)."""

    det_keys: np.ndarray  # [S] category position * n_images + image position
    d_start: np.ndarray  # [S]
    d_end: np.ndarray
    det_id: np.ndarray  # [N] kept detections in group order
    det_area: np.ndarray
    det_score: np.ndarray
    gt_keys: np.ndarray  # [S'] the ground-truth groups' keys
    gt_starts: np.ndarray  # [S' + 1]
    gt_id: np.ndarray  # ground truth in group order
    gt_ignore: np.ndarray  # before area ranges
    gt_area: np.ndarray
    matched: np.ndarray  # [N, A, T] int32
    n_images: int


def _original(rows: np.ndarray, src: np.ndarray | None) -> np.ndarray:
    return np.ascontiguousarray(rows if src is None else src[rows], np.int64)


@dataclass
class Evaluation:
    """What evaluate() leaves for accumulate() and the extras; detections in category order."""

    img_ids: np.ndarray  # evaluated image ids, sorted
    cat_ids: np.ndarray  # evaluated category ids in evaluation order ([-1] without categories)
    area_rng: np.ndarray  # [A, 2]
    iou_thrs: np.ndarray  # [T]
    max_det: int  # maxDets[-1]: detections kept per image and category
    state: np.ndarray  # [N, A, ceil(T / 32)] uint64: true / false positive bits, group order
    cat_start: np.ndarray  # [K + 1]: category c's detections are cat_start[c]:cat_start[c+1]
    grp: np.ndarray  # [N] int64: the detection's row in state
    rank: np.ndarray  # [N] int32: rank of the detection in its (image, category) by score
    score: np.ndarray  # [N] float64
    image: np.ndarray  # [N] int32: image position
    det_row: np.ndarray  # [N] int64: row in the results columns
    gt_row: np.ndarray  # ground-truth rows evaluated, in group order
    gt_k: np.ndarray  # [rows of gt] int32: category position (-1: not evaluated)
    gt_i: np.ndarray  # [rows of gt] int32: image position (-1: not evaluated)
    gt_area: np.ndarray
    gt_ignore: np.ndarray  # uint8: ignored before area ranges (crowd, or "ignore" when asked)
    # only with evaluate(..., matches=True), for evalImgs (group order, see GroupMatches)
    groups: GroupMatches | None = None

    def codes(self, a: int, t: int) -> np.ndarray:
        """[N] uint8 in category order: 1 true positive, 2 false positive, 0 ignored, for area
        range a and IoU threshold t."""
        words = self.state[self.grp, a, t // 32]
        bit = np.uint64(1) << np.uint64(t % 32)
        tp = (words & bit) != 0
        fp = (words & (bit << np.uint64(32))) != 0
        return tp.astype(np.uint8) + 2 * fp.astype(np.uint8)

    def regular_gt(self, image_mask: np.ndarray | None = None) -> np.ndarray:
        """[K, A] int64: ground truth not ignored, per category and area range."""
        if image_mask is None:
            image_mask = np.ones(len(self.img_ids), np.uint8)
        return kernels().count_regular_gt(
            self.gt_row, self.gt_k, self.gt_i, self.gt_area, self.gt_ignore, self.area_rng,
            image_mask, len(self.cat_ids),
        )  # fmt: skip


def sorted_unique(values: Any) -> np.ndarray:
    """``np.unique(values)``, without its sort and hash where the values already are strictly
    increasing numbers (the usual ids: sorted lists of thousands)."""
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.dtype.kind in "iuf" and (arr.size < 2 or (arr[1:] > arr[:-1]).all()):
        return arr.copy()
    return np.unique(arr)


def _unique_int64(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size and arr.dtype.kind not in "iu":
        as_int = arr.astype(np.int64) if arr.dtype.kind == "f" else None
        if as_int is None or not np.array_equal(as_int, arr):
            raise ValueError(f"params.{name} must be integers, got {arr.dtype}")
        arr = as_int
    return sorted_unique(arr.astype(np.int64))


def _resolve_repeated_ids(table, i_pos, k_pos, use_cats, pre):
    """pycocotools' treatment of annotations sharing an id (a malformed file): each selected
    annotation (by its own image and category) is replaced by the last one with its id,
    grouped by that one's image and category. Returns (table, image pos, category pos, src):
    row r of the new table is row src[r] of the given one (None: the same table)."""
    ids = table.id
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):  # increasing: all distinct
        return table, i_pos, k_pos, None
    unique, inverse = np.unique(ids, return_inverse=True)
    if len(unique) == len(ids):
        return table, i_pos, k_pos, None
    last = np.zeros(len(unique), np.int64)
    np.maximum.at(last, inverse, np.arange(len(ids)))
    src = last[inverse]
    selected = (i_pos >= 0) & (k_pos >= 0 if use_cats else True)
    table = Annotations(
        *(None if v is None else np.ascontiguousarray(v[src]) for v in (
            table.id, table.image_id, table.category_id, table.bbox, table.area, table.iscrowd,
            table.ignore, table.score,
        ))
    )  # fmt: skip
    i_pos = np.where(selected, i_pos[src], -1).astype(np.int32)
    k_pos = np.where(selected, k_pos[src], -1).astype(np.int32)
    if pre is not None:  # without categories: the category must still be in params.catIds
        pre[:] = pre[src]
        k_pos = np.where(selected & (pre >= 0), 0, -1).astype(np.int32)
    return table, i_pos, k_pos, src


# Below this many detections the kernels run on one thread (a pool job costs tens of
# microseconds). On the pool (no OpenMP barrier: a preempted worker is noticed and the caller
# works alone), two threads against one on the shared 2-core machine, 2026-12-02, medians of
# 11: segm set (16,877 detections) 126-150 -> 110-125 ms, keypoints (24,082) 64-66 -> 41-53 ms
# with the OKS on two threads too, bbox (5,000 images) 137-153 -> 117-161 ms (noise).
PARALLEL_MIN_DETECTIONS = 1 << 13


def _threads(n_detections: int) -> int:
    return 1 if n_detections < PARALLEL_MIN_DETECTIONS else _config.num_threads()


def best_threshold(iou_thrs: np.ndarray) -> np.ndarray:
    """pycocotools' ``min([t, 1 - 1e-10])`` per threshold (Python's min: t unless 1-1e-10 < t)."""
    cap = 1 - 1e-10
    return np.array([cap if cap < t else t for t in np.asarray(iou_thrs, np.float64).tolist()])


def evaluate(
    gt: Annotations,
    dt: Annotations,
    img_ids: Any,
    cat_ids: Any,
    use_cats: bool,
    area_rng: Any,
    iou_thrs: Any,
    max_det: int,
    *,
    use_ignore_flag: bool = False,
    positional_ids: bool = False,
    overlaps: Overlaps | None = None,
    gt_extra_ignore: np.ndarray | None = None,
    matches: bool = False,
    dt_keep: np.ndarray | None = None,
) -> Evaluation:
    """Match detections to ground truth for every group, area range and IoU threshold.

    ``overlaps``: None for box IoU (computed inside the matching), else the function that
    gives every group's overlap matrix (mask IoU, OKS; see :data:`Overlaps`).
    ``gt_extra_ignore``: per ground-truth row, more ground truth to ignore before area
    ranges (keypoints: ``num_keypoints == 0``). ``matches``: also record which ground truth
    each detection matched (``Evaluation.groups``, for evalImgs).
    ``dt_keep``: None, or one bool per detection row; rows False are not evaluated at all, as
    if their category were not in ``cat_ids`` (LVIS drops detections of categories an image is
    not annotated for).
    """
    k = kernels()
    threads = _threads(len(dt))
    images = _unique_int64(img_ids, "imgIds")
    n_img = len(images)
    if use_cats:
        cats = _unique_int64(cat_ids, "catIds")
        gt_k = k.positions(gt.category_id, cats)
        dt_k = k.positions(dt.category_id, cats)
        gt_pre = dt_pre = None
        evaluated_cats = cats
    else:
        # all categories pooled; within an image pycocotools lists annotations category by
        # category in params.catIds order, then in file order
        order = list(dict.fromkeys(np.asarray(cat_ids).tolist()))
        cats = _unique_int64(order, "catIds")
        # one more slot, -1, for position -1 (a category not in params.catIds, possibly empty)
        cat_rank = np.full(len(cats) + 1, -1, np.int32)
        cat_rank[np.searchsorted(cats, order)] = np.arange(len(order), dtype=np.int32)

        def pre(category_id):
            return cat_rank[k.positions(category_id, cats)]

        gt_pre, dt_pre = pre(gt.category_id), pre(dt.category_id)
        gt_k = np.where(gt_pre >= 0, 0, -1).astype(np.int32)
        dt_k = np.where(dt_pre >= 0, 0, -1).astype(np.int32)
        evaluated_cats = np.array([-1], np.int64)
    if dt_keep is not None:
        dt_k = np.where(dt_keep, dt_k, -1).astype(np.int32)
        if dt_pre is not None:
            dt_pre = np.where(dt_keep, dt_pre, -1).astype(np.int32)
    n_cat = len(evaluated_cats)
    gt_i = k.positions(gt.image_id, images)
    dt_i = k.positions(dt.image_id, images)
    # pycocotools loads annotations through a dict by id: with a repeated id, every copy
    # becomes the last annotation of that id, in the places the originals were selected
    gt, gt_i, gt_k, gt_src = _resolve_repeated_ids(gt, gt_i, gt_k, use_cats, gt_pre)
    dt, dt_i, dt_k, dt_src = _resolve_repeated_ids(dt, dt_i, dt_k, use_cats, dt_pre)

    # Ground truth in group order: (category, image, pycocotools' order within).
    gt_rows = np.arange(len(gt), dtype=np.int64)
    if gt_pre is not None:
        gt_rows = k.counting_order(gt_pre, len(cats), gt_rows)
    gt_rows = k.counting_order(gt_k, n_cat, k.counting_order(gt_i, n_img, gt_rows))
    gt_keys, gt_starts = k.segment_starts(gt_k, gt_i, gt_rows, n_img)

    # Detections in group order (k, i, -score, P): stable counting sorts by image and category
    # of pycocotools' order within an image (P), then a stable sort by score within each group.
    rows = np.arange(len(dt), dtype=np.int64)
    if dt_pre is not None:
        rows = k.counting_order(dt_pre, len(cats), rows)
    det_rows = k.counting_order(dt_k, n_cat, k.counting_order(dt_i, n_img, rows))
    det_keys, det_starts = k.segment_starts(dt_k, dt_i, det_rows, n_img)
    k.sort_segments(det_rows, dt.score, det_starts, threads)
    lengths = np.diff(det_starts)
    rank = np.arange(len(det_rows), dtype=np.int64) - np.repeat(det_starts[:-1], lengths)
    keep = rank < max_det  # pycocotools keeps maxDets[-1] per image and category
    det_rows, rank = det_rows[keep], rank[keep].astype(np.int32)
    kept_starts = np.concatenate([[0], np.cumsum(np.minimum(lengths, max(max_det, 0)))])
    det_score = dt.score[det_rows]
    det_cat = dt_k[det_rows]
    cat_start = np.searchsorted(det_cat, np.arange(n_cat + 1)).astype(np.int64)
    # Category order (k, -score, i, P) for accumulate: within each category the group order is
    # (i, -score, P), so a stable sort by score gives it. grp: the group-order position.
    grp = np.arange(len(det_rows), dtype=np.int64)
    k.sort_segments(grp, det_score, cat_start, threads)

    # the ground truth of each detection group
    where = np.searchsorted(gt_keys, det_keys)
    found = where < len(gt_keys)
    found[found] = gt_keys[where[found]] == det_keys[found]
    g_start = np.where(found, gt_starts[np.minimum(where, len(gt_keys))], 0).astype(np.int64)
    g_end = np.where(found, gt_starts[np.minimum(where + 1, len(gt_keys))], 0).astype(np.int64)

    area_rng = np.ascontiguousarray(area_rng, dtype=np.float64).reshape(-1, 2)
    iou_thrs = np.asarray(iou_thrs, dtype=np.float64)
    gt_ignore = gt.iscrowd | gt.ignore if use_ignore_flag else gt.iscrowd
    if gt_extra_ignore is not None:
        extra = np.asarray(gt_extra_ignore, np.uint8)
        gt_ignore = gt_ignore | (extra if gt_src is None else extra[gt_src])
    if positional_ids:  # the fix: an annotation id 0 (or a detection id <= 0) is a real id
        gt_id = np.arange(1, len(gt) + 1, dtype=np.int64)
        dt_id = np.arange(1, len(dt) + 1, dtype=np.int64)
    else:
        gt_id, dt_id = gt.id, dt.id
    # columns in group order, so that the kernel reads them sequentially
    words = max(1, -(-len(iou_thrs) // 32))
    state = np.empty((len(det_rows), len(area_rng), words), np.uint64)
    matched = (
        np.full((len(det_rows), len(area_rng), len(iou_thrs)), -1, np.int32) if matches else None
    )
    d_start, d_end = kept_starts[:-1].astype(np.int64), kept_starts[1:].astype(np.int64)
    if overlaps is None:
        k.match(
            d_start, d_end, g_start, g_end,
            np.take(dt.bbox, det_rows, axis=0), dt.area[det_rows], dt_id[det_rows],
            np.take(gt.bbox, gt_rows, axis=0), gt.area[gt_rows], gt.iscrowd[gt_rows],
            np.ascontiguousarray(gt_ignore[gt_rows], np.uint8), gt_id[gt_rows], area_rng,
            best_threshold(iou_thrs), state, threads, matched,
        )  # fmt: skip
    else:
        values, offsets = overlaps(
            _original(det_rows, dt_src), d_start, d_end, _original(gt_rows, gt_src), g_start,
            g_end, np.ascontiguousarray(gt.iscrowd[gt_rows], np.uint8), threads,
        )  # fmt: skip
        k.match_values(
            d_start, d_end, g_start, g_end,
            np.ascontiguousarray(values, np.float64), np.ascontiguousarray(offsets, np.int64),
            dt.area[det_rows], dt_id[det_rows], gt.area[gt_rows], gt.iscrowd[gt_rows],
            np.ascontiguousarray(gt_ignore[gt_rows], np.uint8), gt_id[gt_rows], area_rng,
            best_threshold(iou_thrs), state, threads, matched,
        )  # fmt: skip
    groups = None
    if matches:
        groups = GroupMatches(
            det_keys=det_keys, d_start=d_start, d_end=d_end,
            det_id=dt.id[det_rows], det_area=dt.area[det_rows], det_score=det_score,
            gt_keys=gt_keys, gt_starts=gt_starts, gt_id=gt.id[gt_rows],
            gt_ignore=np.ascontiguousarray(gt_ignore[gt_rows], np.uint8),
            gt_area=gt.area[gt_rows], matched=matched, n_images=n_img,
        )  # fmt: skip
    cat_rows = det_rows[grp]
    return Evaluation(
        img_ids=images,
        cat_ids=evaluated_cats,
        area_rng=area_rng,
        iou_thrs=iou_thrs,
        max_det=max_det,
        state=state,
        cat_start=cat_start,
        grp=grp,
        rank=rank[grp],
        score=det_score[grp],
        image=dt_i[cat_rows],
        det_row=cat_rows,
        gt_row=gt_rows,
        gt_k=gt_k,
        gt_i=gt_i,
        gt_area=gt.area,
        gt_ignore=np.ascontiguousarray(gt_ignore, np.uint8),
        groups=groups,
    )


def accumulate(
    ev: Evaluation,
    k_map: list[int],
    a_map: list[int],
    max_dets: list[int],
    rec_thrs: np.ndarray,
    image_mask: np.ndarray,
    n_t: int,
    n_k: int,
    n_a: int,
    n_m: int,
    *,
    with_scores: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """precision [T,R,K,A,M], recall [T,K,A,M], scores [T,R,K,A,M] as pycocotools' accumulate.

    Output cell (t, k, a, m), for k < len(k_map), a < len(a_map), m < len(max_dets), reads
    evaluated category ``k_map[k]``, area range ``a_map[a]`` and ``max_dets[m]`` detections per
    image; the other cells, and those without ground truth, stay -1. ``with_scores`` False:
    scores are not computed (None; LVIS has none, and it saves a precision-sized array).
    """
    rec_thrs = np.ascontiguousarray(rec_thrs, dtype=np.float64)
    R = len(rec_thrs)
    T = min(n_t, len(ev.iou_thrs))
    K, A, M = len(k_map), len(a_map), len(max_dets)
    if M > 255:
        raise ValueError(f"at most 255 maxDets values, got {M}")
    # The kernel writes cell-major arrays ([K, A, T, M, R]: one contiguous block per category
    # and area range); the results are transposed views of them, [T, R, K, A, M] as
    # pycocotools' (same values, same iteration order).
    direct = (T, K, A, M) == (n_t, n_k, n_a, n_m)
    shape = (n_k, n_a, n_t, n_m) if direct else (K, A, T, M)
    precision = np.full((*shape, R), -1.0)
    recall = np.full(shape, -1.0)
    # without scores the kernel writes none: a one-cell stand-in
    scores = np.full((*shape, R) if with_scores else (1, 1, 1, 1, 1), -1.0)
    if T and K and A and M:
        # the kernel takes maxDets ascending: m_first[j] = the first m whose maxDets covers
        # the detection's rank in its image
        order = np.argsort(np.asarray(max_dets, np.int64), kind="stable")
        ascending = np.asarray(max_dets, np.int64)[order]
        m_first = np.searchsorted(ascending, ev.rank, side="right").astype(np.uint8)
        kernels().accumulate(
            ev.cat_start, ev.grp, m_first, ev.score, ev.image, ev.state,
            ev.regular_gt(image_mask), np.asarray(k_map, np.int64),
            np.asarray(a_map, np.int64), M, rec_thrs, np.ascontiguousarray(image_mask, np.uint8),
            precision, recall, scores, _threads(len(ev.score)), with_scores,
        )  # fmt: skip
        if not np.array_equal(order, np.arange(M)):  # back to the caller's maxDets order
            back = np.argsort(order)
            precision, recall = precision[..., back, :], recall[..., back]
            scores = scores[..., back, :] if with_scores else scores
    precision = precision.transpose(2, 4, 0, 1, 3)
    recall = recall.transpose(2, 0, 1, 3)
    scores = scores.transpose(2, 4, 0, 1, 3) if with_scores else None
    if not direct:  # a selection of the evaluated settings: the rest stays -1
        full = [np.full(s, -1.0) for s in ((n_t, R, n_k, n_a, n_m), (n_t, n_k, n_a, n_m))]
        full.append(np.full((n_t, R, n_k, n_a, n_m), -1.0) if with_scores else None)
        full[0][:T, :, :K, :A, :M] = precision
        full[1][:T, :K, :A, :M] = recall
        if with_scores:
            full[2][:T, :, :K, :A, :M] = scores
        precision, recall, scores = full
    return precision, recall, scores
