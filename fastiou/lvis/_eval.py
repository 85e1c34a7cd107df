"""``LVISEval`` and ``Params``: lvis-api 0.5.3's evaluation on fastiou.coco's engine.

The matching and accumulation are fastiou.coco's (``_evaluate.evaluate`` / ``accumulate``,
bit-identical to pycocotools, whose formulas lvis-api copies). LVIS adds only its rules, here:
which ground truth and detections enter (:func:`federated_selection`), crowd-free matching
with the annotations' own ``ignore`` flag, no per-(image, category) cut, unmatched detections
of not-exhaustive categories ignored (their false-positive bits cleared), frequency groups, and
lvis-api's summary.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import logging
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from ..coco import _evaluate, _instances
from ..coco._eval import per_class_markdown
from ..coco._ext import kernels
from ..coco._table import AnnotationError, Annotations
from ._lvis import LVIS, LVISResults, _as_dataset_source, from_lvis_api_results

# lvis-api cuts detections per image (LVISResults), never per (image, category): no rank cut.
_NO_CUT = np.iinfo(np.int32).max
# in a state word, bits 0-31 are "true positive at threshold t", bits 32-63 "false positive"
_TRUE_POSITIVE_BITS = np.uint64(0xFFFFFFFF)


class Params:
    """lvis-api's evaluation parameters (``max_dets`` only names the AR results: the cap is
    applied by :class:`LVISResults`)."""

    def __init__(self, iou_type: str):
        self.img_ids: list = []
        self.cat_ids: list = []
        # np.arange causes trouble (lvis-api, after pycocotools): linspace gives exact values
        self.iou_thrs = np.linspace(
            0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True
        )
        self.rec_thrs = np.linspace(
            0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True
        )
        self.max_dets = 300
        self.area_rng = [[0**2, 1e5**2], [0**2, 32**2], [32**2, 96**2], [96**2, 1e5**2]]
        self.area_rng_lbl = ["all", "small", "medium", "large"]
        self.use_cats = 1
        # frequency groups: r rare (< 10 training images), c common (< 100), f frequent
        self.img_count_lbl = ["r", "c", "f"]
        self.iou_type = iou_type


@dataclasses.dataclass
class Selection:
    """What lvis-api's ``_prepare`` lets into the evaluation, as columns."""

    gt: Annotations  # the ground truth evaluated, in lvis-api's order; iscrowd all 0
    gt_rows: np.ndarray  # per row of ``gt``: its row in the dataset's table (int64)
    dt_keep: np.ndarray  # bool per detection row: evaluated
    dt_not_exhaustive: np.ndarray  # bool per detection row: category not exhaustive there


def _positions(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    return kernels().positions(np.ascontiguousarray(values, np.int64), sorted_ids)


def _group_keys(img_pos, cat_pos, n_cats) -> np.ndarray:
    """int64 key of (image position, category position); -1 where either is -1."""
    key = img_pos.astype(np.int64) * n_cats + cat_pos
    return np.where((img_pos >= 0) & (cat_pos >= 0), key, -1)


# (image, category) lookups through a dense table of flags up to this many pairs, else a search
_DENSE_PAIRS = 1 << 25


def _member(keys: np.ndarray, table: np.ndarray, n_pairs: int) -> np.ndarray:
    """keys >= 0 that are in ``table`` (any order, repeats allowed); keys < ``n_pairs``."""
    table = table[table >= 0]
    if n_pairs <= _DENSE_PAIRS:
        flags = np.zeros(n_pairs + 1, bool)  # the last entry: key -1
        flags[table] = True
        return flags[keys]
    table = np.unique(table)
    if not len(table):
        return np.zeros(len(keys), bool)
    return (_positions(keys, table) >= 0) & (keys >= 0)


def _take_rows(table: Annotations, rows: np.ndarray) -> Annotations:
    """The annotations at ``rows``: every column (so that any the engine adds, e.g. masks for
    segm, comes along)."""
    columns = {}
    for field in dataclasses.fields(table):
        value = getattr(table, field.name)
        if isinstance(value, np.ndarray):
            value = np.ascontiguousarray(np.take(value, rows, axis=0))
        elif value is not None:  # a list column
            value = [value[i] for i in rows.tolist()]
        columns[field.name] = value
    return Annotations(**columns)


def federated_selection(
    gt: LVIS, dt: Annotations, images: np.ndarray, cats: np.ndarray
) -> Selection:
    """lvis-api's ``_prepare`` on columns, for sorted unique ``images`` and ``cats``.

    Ground truth: of these images and categories with ``0 < area < inf`` (lvis-api's
    ``get_ann_ids`` area filter), image by image then in file order, each replaced by the last
    annotation with its id (``load_anns`` goes through a dict by id).
    Detections: of these images and categories with ``0 < w * h < inf``, and whose category
    is in the image's ground truth (as selected) or its ``neg_category_ids``.
    """
    table = gt._table()
    n_img, n_cat = len(images), len(cats)
    k = kernels()
    gi, gk = _positions(table.image_id, images), _positions(table.category_id, cats)
    area_ok = (table.area > 0) & (table.area < np.inf)
    selected = np.where((gi >= 0) & (gk >= 0) & area_ok, gi, -1).astype(np.int32)
    rows = k.counting_order(selected, n_img, np.arange(len(table), dtype=np.int64))
    ids = table.id
    if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        unique, inverse = np.unique(ids, return_inverse=True)
        if len(unique) < len(ids):  # repeated ids: every copy becomes the last one
            last = np.zeros(len(unique), np.int64)
            np.maximum.at(last, inverse, np.arange(len(ids)))
            rows = last[inverse[rows]]
    chosen = _take_rows(table, rows)
    chosen.iscrowd = np.zeros(len(rows), np.uint8)  # lvis-api matches without crowd regions
    positive = _group_keys(
        _positions(chosen.image_id, images), _positions(chosen.category_id, cats), n_cat
    )
    neg_img, neg_cat = gt._image_lists(images, "neg_category_ids")
    nel_img, nel_cat = gt._image_lists(images, "not_exhaustive_category_ids")
    negative = _group_keys(neg_img, _positions(neg_cat, cats), n_cat)
    not_exhaustive = _group_keys(nel_img, _positions(nel_cat, cats), n_cat)

    di, dk = _positions(dt.image_id, images), _positions(dt.category_id, cats)
    dt_key = _group_keys(di, dk, n_cat)
    dt_key[~((dt.area > 0) & (dt.area < np.inf))] = -1
    n_pairs = n_img * n_cat
    keep = _member(dt_key, np.concatenate([positive, negative]), n_pairs)
    dt_key[~keep] = -1
    return Selection(chosen, rows, keep, _member(dt_key, not_exhaustive, n_pairs))


def _check_iou_type(iou_type: str) -> None:
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type: {iou_type} is not supported.")


def segm_overlaps(gt: LVIS, dt: LVISResults, gt_rows: np.ndarray) -> _evaluate.Overlaps:
    """The engine's ``overlaps`` for "segm": mask IoU per group, without crowd regions (as
    lvis-api's ``mask_utils.iou(dt, gt, [0] * len(gt))``). ``gt_rows`` maps the rows of the
    selected ground truth (:attr:`Selection.gt`) to the dataset's; detections are rows of the
    results in file order."""
    from ..masks import iou_groups

    gt_rles, dt_rles = _instances.rles(gt._coco), dt._evaluation_rles()

    def overlaps(dt_rows, d_start, d_end, sel_rows, g_start, g_end, gt_iscrowd, threads):
        return iou_groups(
            dt_rles, dt_rows, d_start, d_end, gt_rles, gt_rows[sel_rows], g_start, g_end,
            gt_iscrowd, threads,
        )  # fmt: skip

    return overlaps


class LVISEval:
    """lvis-api's ``LVISEval``: the same interface, the same numbers bit for bit.

    Parameters
    ----------
    lvis_gt : LVIS or str
        Ground truth (an lvis-api ``LVIS`` is accepted too: its ``dataset`` is read).
    lvis_dt : LVISResults, str, list or numpy.ndarray
        Detections; a path, list or array goes through ``LVISResults(lvis_gt, lvis_dt)`` (the
        300-per-image cap). An lvis-api ``LVISResults`` is read as is (no second cap).
    iou_type : str
        ``"segm"`` (lvis-api's default: mask IoU) or ``"bbox"``.

    Attributes
    ----------
    params : Params
    eval : dict
        After :meth:`accumulate`: ``precision`` [T, R, K, A], ``recall`` [T, K, A] (-1 where a
        category has no ground truth in an area range), ``params``, ``counts``, ``date``.
        lvis-api's ``dt_pointers`` and ``eval_imgs`` are not kept.
    results : OrderedDict
        After :meth:`summarize`: the 13 numbers, "AP" ... "APf", "AR@300", "ARs@300", ...
    freq_groups : list of lists
        Positions in ``params.cat_ids`` of the rare, common and frequent categories.

    Notes
    -----
    Every lvis-api quirk kept (area 0 dropped, federated categories, not-exhaustive categories,
    no crowd, the cap per image, repeated ids, the summary) is listed in :mod:`fastiou.lvis`.
    """

    def __init__(self, lvis_gt: Any, lvis_dt: Any, iou_type: str = "segm"):
        self.logger = logging.getLogger(__name__)
        _check_iou_type(iou_type)
        if isinstance(lvis_gt, LVIS) and not isinstance(lvis_gt, LVISResults):
            self.lvis_gt = lvis_gt
        elif isinstance(lvis_gt, (str, os.PathLike)) or hasattr(lvis_gt, "dataset"):
            self.lvis_gt = LVIS(_as_dataset_source(lvis_gt, "lvis_gt"))
        else:
            raise TypeError(f"Unsupported type {type(lvis_gt).__name__} of lvis_gt.")
        if isinstance(lvis_dt, LVISResults):
            self.lvis_dt = lvis_dt
        elif isinstance(lvis_dt, (str, os.PathLike, list, np.ndarray)):
            self.lvis_dt = LVISResults(self.lvis_gt, lvis_dt)
        elif isinstance(getattr(lvis_dt, "dataset", None), dict):  # lvis-api's LVISResults
            self.lvis_dt = from_lvis_api_results(self.lvis_gt, lvis_dt.dataset["annotations"])
        else:
            raise TypeError(f"Unsupported type {type(lvis_dt).__name__} of lvis_dt.")
        self.eval: dict = {}
        self.params = Params(iou_type=iou_type)
        self.results: OrderedDict = OrderedDict()
        self.freq_groups: list[list[int]] = []
        self._evaluation: _evaluate.Evaluation | None = None
        self._evaluated: dict[str, Any] = {}
        self.params.img_ids = sorted(self.lvis_gt.get_img_ids())
        self.params.cat_ids = sorted(self.lvis_gt.get_cat_ids())

    # -- lvis-api's steps -------------------------------------------------------------------

    def _prepare_freq_group(self) -> list[list[int]]:
        p = self.params
        groups: list[list[int]] = [[] for _ in p.img_count_lbl]
        for idx, cat_id in enumerate(p.cat_ids):
            cat = self.lvis_gt.cats.get(cat_id)
            if cat is None:
                raise AnnotationError(f"params.cat_ids: category {cat_id} is not in the dataset")
            frequency = cat.get("frequency")
            if frequency not in p.img_count_lbl:
                raise AnnotationError(
                    f"category {cat_id}: 'frequency' must be one of {p.img_count_lbl}, not "
                    f"{frequency!r}"
                )
            groups[p.img_count_lbl.index(frequency)].append(idx)
        return groups

    def evaluate(self) -> None:
        """Match the detections to the ground truth per image, category, area range and IoU
        threshold (lvis-api's ``evaluate``)."""
        p = self.params
        self.logger.info("Running per image evaluation.")
        self.logger.info(f"Evaluate annotation type *{p.iou_type}*")
        _check_iou_type(p.iou_type)
        if not p.use_cats:
            raise ValueError(
                "params.use_cats = 0 is not supported: lvis-api 0.5.3 evaluates nothing with it"
            )
        unique = _evaluate.sorted_unique(p.img_ids)
        p.img_ids = list(unique)
        images = unique.astype(np.int64)
        missing = [i for i in p.img_ids if i not in self.lvis_gt.imgs]
        if missing:
            raise AnnotationError(
                f"params.img_ids: {len(missing)} image id(s) not in the ground truth: "
                f"{missing[:10]}"
            )
        cats = np.unique(np.asarray(p.cat_ids, np.int64))
        dt, within_cap = self.lvis_dt._evaluation_input()
        sel = federated_selection(self.lvis_gt, dt, images, cats)
        if within_cap is not None:
            sel.dt_keep &= within_cap
        self.freq_groups = self._prepare_freq_group()
        overlaps = None  # "bbox": box IoU inside the matching
        if p.iou_type == "segm":
            overlaps = segm_overlaps(self.lvis_gt, self.lvis_dt, sel.gt_rows)
        ev = _evaluate.evaluate(
            sel.gt, dt, images, cats, True, p.area_rng, p.iou_thrs, _NO_CUT,
            use_ignore_flag=True, dt_keep=sel.dt_keep, overlaps=overlaps,
        )  # fmt: skip
        # not exhaustively annotated: what would be a false positive is ignored
        not_exhaustive = sel.dt_not_exhaustive[ev.det_row]
        if not_exhaustive.any():
            ev.state[ev.grp[not_exhaustive]] &= _TRUE_POSITIVE_BITS
        self._evaluation = ev
        self._evaluated = {
            "cat_ids": list(p.cat_ids),
            "k_map": _positions(np.asarray(p.cat_ids, np.int64), cats).tolist(),
            "area_rng": copy.deepcopy(p.area_rng),
            "iou_thrs": np.array(p.iou_thrs, np.float64),
            "img_ids": list(p.img_ids),
        }
        self.eval = {}

    def accumulate(self) -> None:
        """Precision [T, R, K, A] and recall [T, K, A] (lvis-api's ``accumulate``)."""
        self.logger.info("Accumulating evaluation results.")
        if self._evaluation is None:
            raise RuntimeError("Please run evaluate() first.")
        p, done = self.params, self._evaluated
        changed = [
            name for name, now in (
                ("cat_ids", list(p.cat_ids)), ("img_ids", list(p.img_ids)),
                ("area_rng", p.area_rng),
            ) if now != done[name]
        ] + (["iou_thrs"] if not np.array_equal(p.iou_thrs, done["iou_thrs"]) else [])  # fmt: skip
        if changed:
            raise RuntimeError(
                f"params.{', '.join(changed)} changed since evaluate(): run it again"
            )
        T, R, K, A = len(p.iou_thrs), len(p.rec_thrs), len(done["k_map"]), len(p.area_rng)
        ev = self._evaluation
        precision, recall, _ = _evaluate.accumulate(
            ev, done["k_map"], list(range(A)), [_NO_CUT], p.rec_thrs,
            np.ones(len(ev.img_ids), np.uint8), T, K, A, 1, with_scores=False,
        )  # fmt: skip
        self.eval = {
            "params": p,
            "counts": [T, R, K, A],
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": precision[..., 0],
            "recall": recall[..., 0],
        }

    def _summarize(
        self, summary_type: str, iou_thr=None, area_rng="all", freq_group_idx=None, k=None
    ):
        """lvis-api's ``_summarize``: the mean of the selected cells > -1 (numpy's summation
        order, so bit for bit); ``k``: one category position only."""
        p = self.params
        aidx = [idx for idx, label in enumerate(p.area_rng_lbl) if label == area_rng]
        # one area range (the usual case): a plain index selects the same cells in the same
        # order as lvis-api's one-element list, without copying them first
        a = aidx[0] if len(aidx) == 1 else aidx
        s = self.eval["precision" if summary_type == "ap" else "recall"]
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iou_thrs)[0]]
        if summary_type == "ap":
            if freq_group_idx is not None:
                s = s[:, :, self.freq_groups[freq_group_idx], a]
            else:
                s = s[:, :, :, a] if k is None else s[:, :, k, a]
        else:
            s = s[:, :, a] if k is None else s[:, k, a]
        valid = s[s > -1]
        return -1 if len(valid) == 0 else np.mean(valid)

    def _summary(self, k: int | None = None) -> OrderedDict:
        s = self._summarize
        max_dets = self.params.max_dets
        out = OrderedDict()
        out["AP"] = s("ap", k=k)
        out["AP50"] = s("ap", iou_thr=0.50, k=k)
        out["AP75"] = s("ap", iou_thr=0.75, k=k)
        out["APs"] = s("ap", area_rng="small", k=k)
        out["APm"] = s("ap", area_rng="medium", k=k)
        out["APl"] = s("ap", area_rng="large", k=k)
        if k is None:
            out["APr"] = s("ap", freq_group_idx=0)
            out["APc"] = s("ap", freq_group_idx=1)
            out["APf"] = s("ap", freq_group_idx=2)
        out[f"AR@{max_dets}"] = s("ar", k=k)
        for area_rng in ("small", "medium", "large"):
            out[f"AR{area_rng[0]}@{max_dets}"] = s("ar", area_rng=area_rng, k=k)
        return out

    def summarize(self) -> None:
        """Compute the 13 results into ``results``."""
        if not self.eval:
            raise RuntimeError("Please run accumulate() first.")
        self.results = self._summary()

    def run(self) -> None:
        """evaluate(), accumulate(), summarize()."""
        self.evaluate()
        self.accumulate()
        self.summarize()

    def print_results(self) -> None:
        """Print the results in lvis-api's format."""
        template = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} catIds={:>3s}] = {:0.3f}"
        for key, value in self.results.items():
            max_dets = self.params.max_dets
            title, kind = (
                ("Average Precision", "(AP)") if "AP" in key else ("Average Recall", "(AR)")
            )
            if len(key) > 2 and key[2].isdigit():
                iou = f"{float(key[2:]) / 100:0.2f}"
            else:
                iou = f"{self.params.iou_thrs[0]:0.2f}:{self.params.iou_thrs[-1]:0.2f}"
            group = key[2] if len(key) > 2 and key[2] in ("r", "c", "f") else "all"
            area = key[2] if len(key) > 2 and key[2] in ("s", "m", "l") else "all"
            print(template.format(title, kind, iou, area, max_dets, group, value))

    def get_results(self) -> OrderedDict:
        if not self.results:
            self.logger.warning("results is empty. Call run().")
        return self.results

    # -- what lvis-api does not give --------------------------------------------------------

    def per_class(self) -> list[dict[str, Any]]:
        """The summary restricted to each category of ``params.cat_ids``: dicts with
        ``category_id``, ``name``, ``frequency``, ``n_gt`` (ground truth not ignored, all
        areas) and "AP", "AP50", "AP75", "APs", "APm", "APl", "AR@300", "ARs@300", ...;
        -1 where the category has no ground truth."""
        if not self.eval:
            raise RuntimeError("run evaluate() and accumulate() first")
        npig = self._evaluation.regular_gt()
        rows = []
        for k, (cat_id, pos) in enumerate(
            zip(self._evaluated["cat_ids"], self._evaluated["k_map"], strict=True)
        ):
            cat = self.lvis_gt.cats.get(cat_id, {})
            row = {
                "category_id": int(cat_id),
                "name": cat.get("name", str(cat_id)),
                "frequency": cat.get("frequency"),
                "n_gt": int(npig[pos, 0]) if len(npig) else 0,
            }
            row.update((key, float(v)) for key, v in self._summary(k).items())
            rows.append(row)
        return rows

    def per_class_table(self) -> str:
        """:meth:`per_class` as a markdown table."""
        ar = f"AR@{self.params.max_dets}"
        columns = ("AP", "AP50", "AP75", "APs", "APm", "APl", ar)
        lead = (("category", "name", "---"), ("freq", "frequency", "---"), ("n_gt", "n_gt", "---:"))
        return per_class_markdown(self.per_class(), lead, columns)
