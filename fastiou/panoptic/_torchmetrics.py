"""torchmetrics' panoptic quality for ``(category, instance)`` maps, on fastiou's pair kernel.

The rules are torchmetrics' ``PanopticQuality`` (``functional/detection/_panoptic_quality_
common.py``), which differ from panopticapi's: no crowd; a category outside ``things`` and
``stuffs`` is VOID (in predictions only with ``allow_unknown_preds_category``, else an error);
a stuff segment is the whole category (instance ids ignored); the union leaves out both the
prediction's pixels on ground-truth VOID and the ground truth's pixels predicted VOID; a ground
truth more than half predicted VOID is no false negative; PQ = SQ * RQ per class, averaged over
the classes that occur. IoU sums are added per image and then over images as torchmetrics
does (each IoU rounded to float32, as torch divides int64 areas), in another order within an
image: results agree to ~1e-15, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from .._core.arrays import _library, to_numpy
from ._pairs import ID_LIMIT, pair_counts


def _colors_to_ids(colors: np.ndarray, continuous: dict[int, int], stuffs: set[int],
                   allow_unknown: bool, what: str, scale: int) -> np.ndarray:  # fmt: skip
    """[N, 2] (category, instance) -> ids ``(continuous category + 1) * scale + instance``,
    0 for VOID."""
    category = colors[:, 0].astype(np.int64)
    instance = colors[:, 1].astype(np.int64)
    known = np.zeros(category.shape, bool)
    code = np.zeros(category.shape, np.int64)
    for c, i in continuous.items():
        here = category == c
        known |= here
        code[here] = i + 1
        if c in stuffs:
            instance[here] = 0
    if not allow_unknown and not known.all():
        raise ValueError(f"Unknown categories found in {what}: {np.unique(category[~known])}")
    return np.where(known, code * scale + instance, 0)


def panoptic_quality(
    preds: Any,
    target: Any,
    things: Collection[int],
    stuffs: Collection[int],
    *,
    allow_unknown_preds_category: bool = False,
    return_sq_and_rq: bool = False,
    return_per_class: bool = False,
    backend: str = "auto",
):
    """torchmetrics' ``panoptic_quality`` (and ``PanopticQuality().compute()``), faster.

    Parameters
    ----------
    preds, target : array [B, *spatial, 2] of (category_id, instance_id)
        numpy or torch (a torch input gives a torch result).
    things, stuffs : sets of category ids (disjoint)

    Returns
    -------
    The average PQ (0-d), or [PQ, SQ, RQ] with ``return_sq_and_rq``; with ``return_per_class``
    per class (things sorted, then stuffs sorted) as [1, C], or [C, 3] with SQ and RQ; float64.
    """
    things, stuffs = {int(c) for c in things}, {int(c) for c in stuffs}
    if things & stuffs:
        raise ValueError(f"things and stuffs share categories {sorted(things & stuffs)}")
    if not things | stuffs:
        raise ValueError("things and stuffs are both empty")
    torch_out = _library(preds) == "torch"
    p, t = to_numpy(preds), to_numpy(target)
    if p.shape != t.shape or p.ndim < 3 or p.shape[-1] != 2:
        raise ValueError(
            f"preds and target must have the same shape [B, *spatial, 2], got {list(p.shape)} "
            f"and {list(t.shape)}"
        )
    if p.dtype.kind not in "iu" or t.dtype.kind not in "iu":
        raise TypeError("preds and target must hold integer (category, instance) pairs")
    continuous = {c: i for i, c in enumerate(sorted(things))}
    continuous.update({c: i + len(things) for i, c in enumerate(sorted(stuffs))})
    n = len(continuous)
    iou_sum = np.zeros(n)
    tp, fp, fn = (np.zeros(n, np.int64) for _ in range(3))
    for ps, ts in zip(p.reshape(p.shape[0], -1, 2), t.reshape(t.shape[0], -1, 2), strict=True):
        instances = max(int(ps[:, 1].max(initial=0)), int(ts[:, 1].max(initial=0)))
        if min(int(ps[:, 1].min(initial=0)), int(ts[:, 1].min(initial=0))) < 0:
            raise ValueError("instance ids must not be negative")
        scale = instances + 1
        if (n + 1) * scale >= ID_LIMIT:
            raise ValueError(f"instance ids up to {instances} are too large for {n} categories")
        allow = allow_unknown_preds_category
        pred_ids = _colors_to_ids(ps, continuous, stuffs, allow, "preds", scale)
        gt_ids = _colors_to_ids(ts, continuous, stuffs, True, "target", scale)
        keys, counts = pair_counts(gt_ids, pred_ids, backend=backend)
        sample = np.zeros(n)  # summed per image, then over images, as torchmetrics
        _sample(keys, counts, scale, sample, tp, fp, fn)
        iou_sum += sample
    pq, sq, rq, averages = _final(iou_sum, tp, fp, fn)
    if return_per_class:
        out = np.stack((pq, sq, rq), axis=-1) if return_sq_and_rq else pq.reshape(1, -1)
    else:
        out = averages if return_sq_and_rq else averages[0]
    if torch_out:
        import torch

        return torch.from_numpy(np.asarray(out, np.float64))
    return out


def _final(iou_sum, tp, fp, fn):
    """torchmetrics' ``_panoptic_quality_compute``: per-class PQ, SQ, RQ and their means.

    With torch's dtypes: SQ in float64; the denominator and RQ in float32 (int counts times 0.5
    give float32); PQ = SQ * RQ in float64; the RQ mean in float32. With torch installed its own
    ops run (the same float32 summation as torchmetrics); else numpy emulates them.
    """
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        iou_sum = torch.from_numpy(iou_sum)
        tp, fp, fn = (torch.from_numpy(x.astype(np.int32)) for x in (tp, fp, fn))
        sq = torch.where(tp > 0.0, iou_sum / tp, 0.0)
        denominator = tp + 0.5 * fp + 0.5 * fn
        rq = torch.where(denominator > 0.0, tp / denominator, 0.0)
        pq = sq * rq
        seen = denominator > 0
        averages = [torch.mean(x[seen]).double().item() for x in (pq, sq, rq)]
        return pq.numpy(), sq.numpy(), rq.double().numpy(), np.array(averages)
    sq = np.where(tp > 0, iou_sum / np.maximum(tp, 1), 0.0)
    half = np.float32(0.5)
    tp32, fp32, fn32 = (x.astype(np.float32) for x in (tp, fp, fn))
    denominator = tp32 + half * fp32 + half * fn32
    seen = denominator > 0
    rq = np.where(seen, tp32 / np.where(seen, denominator, 1), np.float32(0))
    pq = sq * rq.astype(np.float64)
    if not seen.any():  # torch.mean of nothing
        return pq, sq, rq.astype(np.float64), np.full(3, np.nan)
    rq_mean = np.float32(rq[seen].astype(np.float64).mean())  # torch may round differently
    averages = np.array([pq[seen].mean(), sq[seen].mean(), rq_mean])
    return pq, sq, rq.astype(np.float64), averages


def _sample(keys, counts, scale, iou_sum, tp, fp, fn) -> None:
    gt_of = (keys >> np.uint64(32)).astype(np.int64).tolist()
    pred_of = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64).tolist()
    areas = counts.tolist()
    pred_area: dict[int, int] = {}
    gt_area: dict[int, int] = {}
    on_void_gt: dict[int, int] = {}  # predicted id -> its pixels on VOID ground truth
    void_predicted: dict[int, int] = {}  # ground-truth id -> its pixels predicted VOID
    for g, p, a in zip(gt_of, pred_of, areas, strict=True):
        pred_area[p] = pred_area.get(p, 0) + a
        gt_area[g] = gt_area.get(g, 0) + a
        if g == 0:
            on_void_gt[p] = a
        if p == 0:
            void_predicted[g] = a
    gt_matched, pred_matched = set(), set()
    for g, p, a in zip(gt_of, pred_of, areas, strict=True):
        if g == 0 or p == 0 or g // scale != p // scale:
            continue
        union = pred_area[p] - on_void_gt.get(p, 0) + gt_area[g] - void_predicted.get(g, 0) - a
        iou = float(np.float32(a) / np.float32(union))  # torch divides int64 areas in float32
        if iou > 0.5:
            c = g // scale - 1
            gt_matched.add(g)
            pred_matched.add(p)
            iou_sum[c] += iou
            tp[c] += 1
    for g, area in gt_area.items():
        if g != 0 and g not in gt_matched and _ratio(void_predicted.get(g, 0), area) <= 0.5:
            fn[g // scale - 1] += 1
    for p, area in pred_area.items():
        if p != 0 and p not in pred_matched and _ratio(on_void_gt.get(p, 0), area) <= 0.5:
            fp[p // scale - 1] += 1


def _ratio(a: int, b: int) -> np.float32:
    return np.float32(a) / np.float32(b)
