"""Panoptic quality of one image from its pair areas, and the dataset accumulator.

The rules are panopticapi's (``panopticapi/evaluation.py``, ``pq_compute_single_core``):

- a ground-truth segment and a predicted one match when they have the same category, the ground
  truth is not crowd, and IoU > 0.5, with the predicted segment's pixels on ground-truth VOID
  (id 0) taken out of the union; matches are unique by construction;
- the ground truth's area is the ``area`` of its ``segments_info`` entry (the PNG's count when
  absent), the prediction's is counted in its PNG;
- unmatched non-crowd ground truth is a false negative; an unmatched prediction is a false
  positive unless more than half of it lies on VOID plus the crowd region of its category (the
  last crowd segment of that category in ``segments_info``, as panopticapi's dict keeps it).

:func:`match_image` is the reference, in Python. The Cython kernels (``match_pairs`` for the
pair areas of id maps, ``evaluate_pngs`` for whole PNG files on fastiou's pool) follow it rule
for rule with the same IoUs bit for bit (integer areas, one correctly rounded division each) in
the same order, and leave every image whose data breaks a rule to it, which raises the error.

Float order: IoUs are added one by one into a per-category running sum, image after image and,
within an image, in the order of the sorted pair keys (ground-truth id, then predicted id), which
is the order of panopticapi's ``np.unique``; :meth:`PanopticQuality.merge` adds two running sums.
panopticapi runs ``os.cpu_count()`` processes over ``np.array_split`` chunks of the images and
adds their sums in chunk order; ``pq_compute`` groups the images the same way, so its numbers
equal panopticapi's bit for bit on the same machine. Any other grouping (a Dask bag, merged
accumulators, another core count) rounds differently: at most a few ulps of each category's
IoU sum (relative 1e-15 for COCO sizes), far below 1e-12.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .._core import dispatch as _dispatch
from ._pairs import ID_LIMIT, VOID, PanopticDataError, pair_counts


class ImageStats(NamedTuple):
    """One image's counts: category indices of its TPs, FPs and FNs, and its matched IoUs."""

    tp: list[int]
    fp: list[int]
    fn: list[int]
    iou: list[float]  # IoU of each TP, in tp's order


class _Categories:
    def __init__(self, categories: Iterable[Mapping[str, Any]] | Mapping[int, Mapping]):
        if isinstance(categories, Mapping):
            categories = [{"id": k, **v} for k, v in categories.items()]
        self.ids: list[int] = []
        self.isthing: list[bool | None] = []
        for c in categories:
            if not isinstance(c, Mapping) or "id" not in c:
                raise PanopticDataError(f"a category must be a dict with an 'id', got {c!r}")
            self.ids.append(int(c["id"]))
            self.isthing.append(None if c.get("isthing") is None else c["isthing"] == 1)
        self.index = {c: i for i, c in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise PanopticDataError("the categories list has a category id twice")


def _label(image_id) -> str:
    return "" if image_id is None else f"image {image_id}: "


def _segments(infos, index: dict[int, int], image_id, which: str) -> dict[int, dict]:
    """``segments_info`` as {id: info}, with ids, categories and duplicates checked."""
    if not isinstance(infos, list | tuple):
        raise PanopticDataError(f"{_label(image_id)}{which} segments_info must be a list")
    out: dict[int, dict] = {}
    for info in infos:
        try:
            segment, category = int(info["id"]), int(info["category_id"])
        except (KeyError, TypeError, ValueError):
            raise PanopticDataError(
                f"{_label(image_id)}{which} segment {info!r} needs an integer 'id' and "
                "'category_id'"
            ) from None
        if not 0 < segment < ID_LIMIT:
            raise PanopticDataError(
                f"{_label(image_id)}{which} segment id {segment} is not in [1, 2^32 - 1) "
                "(0 is VOID)"
            )
        if segment in out:
            raise PanopticDataError(f"{_label(image_id)}{which} segment {segment} is listed twice")
        if category not in index:
            raise PanopticDataError(
                f"{_label(image_id)}{which} segment {segment} has unknown category_id {category}"
            )
        out[segment] = info
    return out


def image_stats(keys: np.ndarray, counts: np.ndarray, gt_infos, pred_infos, index: dict,
                image_id=None, backend: str = "auto") -> ImageStats:  # fmt: skip
    """:func:`match_image` by the compiled kernel (``_cython.match_pairs``), the reference
    where the kernel leaves an image to it (bad data: it raises the error naming it), where
    fastiou is not compiled, or with ``backend="numpy"``."""
    name, module = _dispatch.select("panoptic", "numpy" if backend == "numpy" else "auto", 0,
                                    False)  # fmt: skip
    if name == "cython":
        got = module.match_pairs(np.ascontiguousarray(keys, np.uint64),
                                 np.ascontiguousarray(counts, np.int64), gt_infos, pred_infos,
                                 index)  # fmt: skip
        if got is not None:
            return ImageStats(*got)
    return match_image(keys, counts, gt_infos, pred_infos, index, image_id)


def match_image(
    keys: np.ndarray,
    counts: np.ndarray,
    gt_infos,
    pred_infos,
    index: dict[int, int],
    image_id=None,
) -> ImageStats:
    """Match one image's segments from its sorted pair keys ``gt << 32 | pred`` and areas.

    The reference (pure Python): the compiled kernels follow it rule for rule, and leave to it
    every image whose data breaks a rule, so that the errors are raised here.
    """
    gt_of = (keys >> np.uint64(32)).tolist()
    pred_of = (keys & np.uint64(0xFFFFFFFF)).tolist()
    areas = counts.tolist()
    gt = _segments(gt_infos, index, image_id, "ground-truth")
    pred = _segments(pred_infos, index, image_id, "predicted")
    pred_area: dict[int, int] = {}
    gt_area: dict[int, int] = {}
    void: dict[int, int] = {}  # predicted id -> its pixels on ground-truth VOID
    for g, p, n in zip(gt_of, pred_of, areas, strict=True):
        pred_area[p] = pred_area.get(p, 0) + n
        gt_area[g] = gt_area.get(g, 0) + n
        if g == VOID:
            void[p] = n
    unlisted = [p for p in pred_area if p not in pred and p != VOID]
    if unlisted:
        raise PanopticDataError(
            f"{_label(image_id)}predicted segment(s) {sorted(unlisted)} are in the PNG and not "
            "in segments_info"
        )
    absent = [p for p in pred if p not in pred_area]
    if absent:
        raise PanopticDataError(
            f"{_label(image_id)}predicted segment(s) {absent} are in segments_info and not in "
            "the PNG"
        )
    tp: list[int] = []
    ious: list[float] = []
    gt_matched: set[int] = set()
    pred_matched: set[int] = set()
    for g, p, n in zip(gt_of, pred_of, areas, strict=True):
        info = gt.get(g)
        if info is None or p not in pred or info.get("iscrowd", 0) == 1:
            continue
        category = int(info["category_id"])
        if category != int(pred[p]["category_id"]):
            continue
        area = int(info["area"]) if "area" in info else gt_area[g]
        union = pred_area[p] + area - n - void.get(p, 0)
        if union <= 0:
            raise PanopticDataError(
                f"{_label(image_id)}ground-truth segment {g} has area {area} in segments_info, "
                f"less than the {n} pixels it shares with predicted segment {p}"
            )
        iou = n / union
        if iou > 0.5:
            tp.append(index[category])
            ious.append(iou)
            gt_matched.add(g)
            pred_matched.add(p)
    fn: list[int] = []
    crowd_of: dict[int, int] = {}  # category -> its last crowd segment, as panopticapi keeps it
    for g, info in gt.items():
        if g in gt_matched:
            continue
        category = int(info["category_id"])
        if info.get("iscrowd", 0) == 1:
            crowd_of[category] = g
            continue
        fn.append(index[category])
    fp: list[int] = []
    pairs = None
    for p, info in pred.items():
        if p in pred_matched:
            continue
        category = int(info["category_id"])
        ignored = void.get(p, 0)
        if category in crowd_of:
            if pairs is None:
                pairs = dict(zip(zip(gt_of, pred_of, strict=True), areas, strict=True))
            ignored += pairs.get((crowd_of[category], p), 0)
        if ignored / pred_area[p] > 0.5:  # mostly VOID or crowd: ignored
            continue
        fp.append(index[category])
    return ImageStats(tp, fp, fn, ious)


class PanopticQuality:
    """Panoptic quality over a dataset, image by image: PQ, SQ and RQ as panopticapi computes.

    Parameters
    ----------
    categories : list of dict, or dict
        COCO panoptic ``categories``: dicts with ``id`` and ``isthing`` (1 for things), or
        ``{id: {"isthing": ...}}``. Segments of other categories are an error.

    Examples
    --------
    >>> pq = PanopticQuality([{"id": 1, "isthing": 1}, {"id": 2, "isthing": 0}])
    >>> gt = np.array([[5, 5, 7, 7]]); pred = np.array([[3, 3, 3, 9]])
    >>> pq.update(gt, pred, [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 2}],
    ...           [{"id": 3, "category_id": 1}, {"id": 9, "category_id": 2}])
    >>> pq.compute()["All"]["n"]
    2

    Accumulators of parts of a dataset add up with :meth:`merge` or ``+`` and pickle (for
    multiprocessing or Dask).
    """

    def __init__(self, categories):
        self._categories = _Categories(categories)
        c = len(self._categories.ids)
        self.tp, self.fp, self.fn = [0] * c, [0] * c, [0] * c
        self.iou = [0.0] * c
        self.images = 0

    @property
    def category_ids(self) -> list[int]:
        return list(self._categories.ids)

    def update(
        self,
        gt,
        pred,
        gt_segments_info,
        pred_segments_info,
        *,
        image_id=None,
        backend: str = "auto",
    ) -> PanopticQuality:
        """Add one image.

        Parameters
        ----------
        gt, pred : array [H, W] of segment ids, or [H, W, 3|4] uint8 RGB(A) as in the PNGs
            Segment id maps (numpy, torch or cupy; CUDA arrays are counted on the GPU). Id 0 is
            VOID; ids are below 2^32 - 1.
        gt_segments_info, pred_segments_info : list of dict
            The images' ``segments_info``: ``id``, ``category_id``, and for the ground truth
            ``iscrowd`` (default 0) and ``area`` (default: counted in ``gt``).
        image_id : optional
            Named in errors.
        """
        keys, counts = pair_counts(gt, pred, backend=backend, image_id=image_id)
        self.add(image_stats(keys, counts, gt_segments_info, pred_segments_info,
                             self._categories.index, image_id, backend))  # fmt: skip
        return self

    def add(self, stats: ImageStats) -> None:
        """Add one image's :class:`ImageStats` (from :func:`match_image`)."""
        for c, iou in zip(stats.tp, stats.iou, strict=True):
            self.tp[c] += 1
            self.iou[c] += iou
        for c in stats.fp:
            self.fp[c] += 1
        for c in stats.fn:
            self.fn[c] += 1
        self.images += 1

    def merge(self, other: PanopticQuality) -> PanopticQuality:
        """A new accumulator holding both (this one's IoU sums first, then ``other``'s)."""
        if not isinstance(other, PanopticQuality):
            return NotImplemented
        if other._categories.ids != self._categories.ids:
            raise ValueError("cannot merge PanopticQuality accumulators of different categories")
        out = PanopticQuality.__new__(PanopticQuality)
        out._categories = self._categories
        out.tp = [a + b for a, b in zip(self.tp, other.tp, strict=True)]
        out.fp = [a + b for a, b in zip(self.fp, other.fp, strict=True)]
        out.fn = [a + b for a, b in zip(self.fn, other.fn, strict=True)]
        out.iou = [a + b for a, b in zip(self.iou, other.iou, strict=True)]
        out.images = self.images + other.images
        return out

    __add__ = merge

    def _average(self, isthing: bool | None) -> tuple[dict, dict]:
        # panopticapi's PQStat.pq_average, operation for operation (the same float results)
        pq = sq = rq = 0.0
        n = 0
        per_class = {}
        categories = self._categories
        for i, label in enumerate(categories.ids):
            if isthing is not None:
                if categories.isthing[i] is None:
                    raise PanopticDataError(f"category {label} has no 'isthing'")
                if categories.isthing[i] != isthing:
                    continue
            iou, tp, fp, fn = self.iou[i], self.tp[i], self.fp[i], self.fn[i]
            if tp + fp + fn == 0:
                per_class[label] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            pq_class = iou / (tp + 0.5 * fp + 0.5 * fn)
            sq_class = iou / tp if tp != 0 else 0.0
            rq_class = tp / (tp + 0.5 * fp + 0.5 * fn)
            per_class[label] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
            pq += pq_class
            sq += sq_class
            rq += rq_class
        if n == 0:  # panopticapi divides by zero here; no category of the kind was seen
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, per_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class

    def compute(self) -> dict:
        """panopticapi's result: ``{"All"|"Things"|"Stuff": {"pq", "sq", "rq", "n"},
        "per_class": {category_id: {"pq", "sq", "rq"}}}`` (values in [0, 1]).

        A group with no category seen (no segments of that kind anywhere) gives zeros and
        ``n = 0``, where panopticapi raises ZeroDivisionError.
        """
        results: dict = {}
        for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            results[name], per_class = self._average(isthing)
            if name == "All":
                results["per_class"] = per_class
        return results

    def counts(self) -> dict[str, np.ndarray]:
        """Per-category ``tp``, ``fp``, ``fn`` (int64) and ``iou`` sums (float64), in order."""
        return {
            "category_id": np.array(self._categories.ids, np.int64),
            "tp": np.array(self.tp, np.int64),
            "fp": np.array(self.fp, np.int64),
            "fn": np.array(self.fn, np.int64),
            "iou": np.array(self.iou, np.float64),
        }
