"""``COCOeval`` and ``Params``: pycocotools' evaluation interface, on compiled kernels."""

from __future__ import annotations

import copy
import datetime
import time
from typing import Any, NamedTuple

import numpy as np

from . import _evaluate, _instances
from ._coco import COCO

_NUMBERS = (int, float, np.generic)
SUMMARY_NAMES = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
# pycocotools' _summarizeKps: the 10 keypoint numbers
KEYPOINT_SUMMARY_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


class ParamsError(ValueError, IndexError):
    """Evaluation parameters pycocotools cannot run with. An IndexError as well, because that
    is what pycocotools raises there (as numpy's AxisError is both)."""


class Params:
    """pycocotools' evaluation parameters: ``setDetParams`` for "bbox" and "segm",
    ``setKpParams`` for "keypoints"."""

    def setDetParams(self) -> None:
        self.imgIds: list = []
        self.catIds: list = []
        # np.arange causes trouble (pycocotools): linspace gives the exact thresholds
        self.iouThrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
        self.recThrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
        self.maxDets = [1, 10, 100]
        self.areaRng = [[0**2, 1e5**2], [0**2, 32**2], [32**2, 96**2], [96**2, 1e5**2]]
        self.areaRngLbl = ["all", "small", "medium", "large"]
        self.useCats = 1

    def setKpParams(self) -> None:
        self.imgIds = []
        self.catIds = []
        self.iouThrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
        self.recThrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
        self.maxDets = [20]
        self.areaRng = [[0**2, 1e5**2], [32**2, 96**2], [96**2, 1e5**2]]
        self.areaRngLbl = ["all", "medium", "large"]
        self.useCats = 1
        self.kpt_oks_sigmas = _instances.KPT_OKS_SIGMAS.copy()

    def __init__(self, iouType: str = "segm"):
        if iouType not in ("bbox", "segm", "keypoints"):
            raise ValueError(f"iouType {iouType!r} not supported")
        if iouType == "keypoints":
            self.setKpParams()
        else:
            self.setDetParams()
        self.iouType = iouType
        self.useSegm = None  # deprecated in pycocotools

    def __deepcopy__(self, memo: dict) -> Params:
        # Lists of numbers (imgIds: thousands of numpy scalars) need no element copies: numbers
        # are immutable. A plain deepcopy spends milliseconds on them.
        new = object.__new__(type(self))
        for key, value in self.__dict__.items():
            # the types first (a C-speed pass): a list holds few distinct types
            if isinstance(value, list) and all(
                issubclass(t, _NUMBERS) for t in set(map(type, value))
            ):
                new.__dict__[key] = list(value)
            else:
                new.__dict__[key] = copy.deepcopy(value, memo)
        return new


class PRCurve(NamedTuple):
    """A raw (not interpolated) precision-recall curve: one point per counted detection, in
    descending score order. ``scores[i]`` is the threshold that gives point i."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    scores: np.ndarray
    n_gt: int


def _as_coco(obj: Any, name: str) -> COCO:
    if obj is None or isinstance(obj, COCO):
        return obj
    if hasattr(obj, "dataset") and isinstance(obj.dataset, dict):  # e.g. a pycocotools COCO
        return COCO(obj.dataset, verbose=False)
    raise TypeError(f"{name} must be a fastiou.coco.COCO, not {type(obj).__name__}")


def per_class_markdown(
    rows: list[dict], lead: tuple[tuple[str, str, str], ...], columns: tuple[str, ...]
) -> str:
    """``per_class()`` rows as a markdown table (COCOeval's and LVISEval's): first the ``lead``
    columns, (header, row key, alignment) each, as they are; then the ``columns`` numbers to
    three decimals, "-" where one is -1 (no ground truth)."""
    lines = [
        "| " + " | ".join([head for head, _, _ in lead] + list(columns)) + " |",
        "|" + "".join(f"{align}|" for _, _, align in lead) + "---:|" * len(columns),
    ]
    for row in rows:
        cells = [str(row[key]) for _, key, _ in lead]
        cells += ["-" if row[c] < 0 else f"{row[c]:.3f}" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class COCOeval:
    """pycocotools' ``COCOeval``: the same interface and the same numbers, for boxes
    ("bbox"), instance masks ("segm") and keypoints ("keypoints", OKS).

    Parameters
    ----------
    cocoGt, cocoDt : COCO
        Ground truth and results (``cocoGt.loadRes(...)``). pycocotools ``COCO`` objects are
        accepted too (their ``dataset`` is read).
    iouType : str
        ``"segm"`` (pycocotools' default: mask IoU of the annotations' segmentations),
        ``"bbox"`` or ``"keypoints"`` (OKS with ``params.kpt_oks_sigmas``).
    verbose : bool
        Print pycocotools' progress messages (the summary lines are printed regardless).
    use_ignore_flag : bool
        Fix: honour a ground truth's own ``"ignore"`` flag (pycocotools overwrites it with
        ``iscrowd``). Off by default: pycocotools' numbers.
    positional_ids : bool
        Fix: match by position, so that an annotation with id 0 (which pycocotools reads as
        "unmatched") or a detection with id <= 0 counts normally. Off by default.

    Attributes
    ----------
    params : Params
    eval : dict
        After :meth:`accumulate`: ``precision`` [T, R, K, A, M], ``recall`` [T, K, A, M],
        ``scores`` [T, R, K, A, M], ``params``, ``counts``, ``date``; -1 where there is no
        ground truth.
    stats : numpy.ndarray
        After :meth:`summarize`: the 12 numbers of the summary (10 for keypoints).
    evalImgs : list
        pycocotools' per-image records (``evaluateImg``'s dicts, None for empty groups), built
        on first access after :meth:`evaluate` (the evaluation itself does not need them).
    """

    def __init__(
        self,
        cocoGt: COCO | None = None,
        cocoDt: COCO | None = None,
        iouType: str = "segm",
        *,
        verbose: bool = True,
        use_ignore_flag: bool = False,
        positional_ids: bool = False,
    ):
        if not iouType:
            print("iouType not specified. use default iouType segm")  # as pycocotools
            iouType = "segm"
        self.cocoGt = _as_coco(cocoGt, "cocoGt")
        self.cocoDt = _as_coco(cocoDt, "cocoDt")
        self.params = Params(iouType=iouType)
        self.eval: dict = {}
        self.stats: np.ndarray | list = []
        self._paramsEval: Params | dict = {}
        self._evaluation: _evaluate.Evaluation | None = None
        self._evalImgs: list | None = None
        self.verbose = verbose
        self.use_ignore_flag = use_ignore_flag
        self.positional_ids = positional_ids
        if cocoGt is not None:
            self.params.imgIds = sorted(self.cocoGt.getImgIds())
            self.params.catIds = sorted(self.cocoGt.getCatIds())

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message)

    # -- pycocotools' three steps -----------------------------------------------------------

    def evaluate(self) -> None:
        """Match detections to ground truth per image, category, area range and threshold."""
        tic = time.time()
        self._log("Running per image evaluation...")
        p = self.params
        if p.useSegm is not None:
            p.iouType = "segm" if p.useSegm == 1 else "bbox"
        if p.iouType not in ("bbox", "segm", "keypoints"):
            raise ValueError(f"params.iouType {p.iouType!r} not supported")
        self._log(f"Evaluate annotation type *{p.iouType}*")
        img_ids = _evaluate.sorted_unique(p.imgIds)
        p.imgIds = list(img_ids)
        if p.useCats:
            p.catIds = list(_evaluate.sorted_unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        if not p.maxDets:  # pycocotools: IndexError at maxDets[-1]
            raise ParamsError("params.maxDets is empty: evaluation needs at least one value")
        if p.maxDets[0] < 0:
            raise ValueError(f"params.maxDets must be >= 0, got {p.maxDets}")
        self.params = p
        self._evaluation = self._engine(p, img_ids=img_ids)  # the array: no second conversion
        self._evalImgs = None
        self._paramsEval = copy.deepcopy(self.params)
        self.eval = {}
        self._log(f"DONE (t={time.time() - tic:0.2f}s).")

    def _engine(
        self, p: Params, matches: bool = False, img_ids: np.ndarray | None = None
    ) -> _evaluate.Evaluation:
        """The engine's evaluate() for params ``p`` (box IoU, mask IoU or OKS per group);
        ``img_ids``: ``p.imgIds`` as an array, where the caller has it."""
        overlaps = extra_ignore = None
        if p.iouType == "segm":
            overlaps = _instances.segm_overlaps(self.cocoGt, self.cocoDt)
        elif p.iouType == "keypoints":
            thresholds = _evaluate.best_threshold(p.iouThrs)
            overlaps = _instances.oks_overlaps(
                self.cocoGt, self.cocoDt, p.kpt_oks_sigmas, bool(p.useCats),
                float(thresholds.min()) if thresholds.size else 0.0,
            )  # fmt: skip
            extra_ignore = _instances.num_keypoints_zero(
                self.cocoGt, len(np.reshape(p.kpt_oks_sigmas, -1))
            )
        return _evaluate.evaluate(
            self.cocoGt._table(),
            self.cocoDt._table(scored=True),
            p.imgIds if img_ids is None else img_ids,
            p.catIds,
            bool(p.useCats),
            p.areaRng,
            p.iouThrs,
            int(p.maxDets[-1]),
            use_ignore_flag=self.use_ignore_flag,
            positional_ids=self.positional_ids,
            overlaps=overlaps,
            gt_extra_ignore=extra_ignore,
            matches=matches,
        )

    @property
    def evalImgs(self) -> list:
        """pycocotools' ``evalImgs`` (built on first access: the matching is run again, with
        the parameters of the last :meth:`evaluate`, recording the matches)."""
        if self._evalImgs is None:
            if self._evaluation is None:
                return []
            from ._evalimgs import eval_imgs

            p = self._paramsEval
            ev = self._engine(p, matches=True)
            self._evalImgs = eval_imgs(
                ev.groups, list(p.imgIds), list(p.catIds) if p.useCats else [-1],
                list(p.areaRng), int(p.maxDets[-1]), len(p.iouThrs),
            )  # fmt: skip
        return self._evalImgs

    @evalImgs.setter
    def evalImgs(self, value: list) -> None:
        self._evalImgs = value

    def accumulate(self, p: Params | None = None) -> None:
        """Precision and recall per IoU threshold, recall threshold, category, area, maxDets."""
        self._log("Accumulating evaluation results...")
        tic = time.time()
        if self._evaluation is None:
            self._log("Please run evaluate() first")
            raise RuntimeError("run evaluate() before accumulate()")
        if p is None:
            p = self.params
        p.catIds = p.catIds if p.useCats == 1 else [-1]
        T, R, A, M = len(p.iouThrs), len(p.recThrs), len(p.areaRng), len(p.maxDets)
        K = len(p.catIds) if p.useCats else 1
        # as pycocotools: which evaluated settings each output index reads (by position)
        pe = self._paramsEval
        set_k = set(pe.catIds if pe.useCats else [-1])
        set_a = set(map(tuple, pe.areaRng))
        set_m = set(pe.maxDets)
        k_list = [n for n, k in enumerate(p.catIds) if k in set_k]
        m_list = [m for m in p.maxDets if m in set_m]
        a_list = [n for n, a in enumerate(map(tuple, p.areaRng)) if a in set_a]
        ev = self._evaluation
        if any(k >= len(ev.cat_ids) for k in k_list) or any(a >= len(ev.area_rng) for a in a_list):
            raise ValueError("accumulate(p): p selects settings that were not evaluated")
        mask = np.zeros(len(ev.img_ids), np.uint8)
        same = type(p.imgIds) is list and type(pe.imgIds) is list and p.imgIds == pe.imgIds
        if same:  # the evaluated ids (the same objects: compared by identity first)
            mask[: len(p.imgIds)] = 1
        else:
            set_i = set(pe.imgIds)
            i_list = [n for n, i in enumerate(p.imgIds) if i in set_i]
            mask[[i for i in i_list if i < len(mask)]] = 1
        precision, recall, scores = _evaluate.accumulate(
            ev, k_list, a_list, m_list, p.recThrs, mask, T, K, A, M
        )
        self.eval = {
            "params": p,
            "counts": [T, R, K, A, M],
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": precision,
            "recall": recall,
            "scores": scores,
        }
        self._log(f"DONE (t={time.time() - tic:0.2f}s).")

    def _summarize(self, ap=1, iouThr=None, areaRng="all", maxDets=100, k=None, echo=True):
        p = self.params
        iStr = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
        titleStr = "Average Precision" if ap == 1 else "Average Recall"
        typeStr = "(AP)" if ap == 1 else "(AR)"
        iouStr = f"{p.iouThrs[0]:0.2f}:{p.iouThrs[-1]:0.2f}" if iouThr is None else f"{iouThr:0.2f}"
        aind = [i for i, aRng in enumerate(p.areaRngLbl) if aRng == areaRng]
        mind = [i for i, mDet in enumerate(p.maxDets) if mDet == maxDets]
        # one of each (the usual): a view, not pycocotools' copy (the same cells, in its order)
        aind, mind = (aind[0] if len(aind) == 1 else aind), (mind[0] if len(mind) == 1 else mind)
        if ap == 1:
            s = self.eval["precision"]  # [T, R, K, A, M]
            if iouThr is not None:
                s = s[np.where(iouThr == p.iouThrs)[0]]
            if k is not None:
                s = s[:, :, k : k + 1]
            s = s[:, :, :, aind, mind]
        else:
            s = self.eval["recall"]  # [T, K, A, M]
            if iouThr is not None:
                s = s[np.where(iouThr == p.iouThrs)[0]]
            if k is not None:
                s = s[:, k : k + 1]
            s = s[:, :, aind, mind]
        kept = s[s > -1]
        mean_s = -1 if len(kept) == 0 else np.mean(kept)
        if echo:
            print(iStr.format(titleStr, typeStr, iouStr, areaRng, maxDets, mean_s))
        return mean_s

    def _stats(self, k=None, echo=True) -> np.ndarray:
        """pycocotools' _summarizeDets (the first line hard-codes maxDets=100), or
        _summarizeKps for keypoints (maxDets=20 throughout)."""
        md = self.params.maxDets
        s = self._summarize
        if self.params.iouType == "keypoints":
            return np.array([
                s(ap, iouThr=thr, areaRng=rng, maxDets=20, k=k, echo=echo)
                for ap in (1, 0)
                for thr, rng in ((None, "all"), (0.5, "all"), (0.75, "all"), (None, "medium"),
                                 (None, "large"))
            ])  # fmt: skip
        stats = np.zeros((12,))
        stats[0] = s(1, k=k, echo=echo)
        stats[1] = s(1, iouThr=0.5, maxDets=md[2], k=k, echo=echo)
        stats[2] = s(1, iouThr=0.75, maxDets=md[2], k=k, echo=echo)
        stats[3] = s(1, areaRng="small", maxDets=md[2], k=k, echo=echo)
        stats[4] = s(1, areaRng="medium", maxDets=md[2], k=k, echo=echo)
        stats[5] = s(1, areaRng="large", maxDets=md[2], k=k, echo=echo)
        stats[6] = s(0, maxDets=md[0], k=k, echo=echo)
        stats[7] = s(0, maxDets=md[1], k=k, echo=echo)
        stats[8] = s(0, maxDets=md[2], k=k, echo=echo)
        stats[9] = s(0, areaRng="small", maxDets=md[2], k=k, echo=echo)
        stats[10] = s(0, areaRng="medium", maxDets=md[2], k=k, echo=echo)
        stats[11] = s(0, areaRng="large", maxDets=md[2], k=k, echo=echo)
        return stats

    def summarize(self) -> None:
        """Print pycocotools' 12 summary lines and set ``stats``."""
        if not self.eval:
            raise Exception("Please run accumulate() first")
        self.stats = self._stats()

    def __str__(self) -> str:
        self.summarize()
        return ""

    def run(self) -> np.ndarray:
        """evaluate(), accumulate(), summarize(); returns ``stats``."""
        self.evaluate()
        self.accumulate()
        self.summarize()
        return self.stats

    # -- what pycocotools does not give -----------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """The 12 summary numbers by name ("AP", "AP50", ..., "ARl"), computed if needed."""
        if not self.eval:
            raise RuntimeError("run evaluate() and accumulate() first")
        names = self._names()
        stats = self.stats if len(self.stats) == len(names) else self._stats(echo=False)
        return dict(zip(names, map(float, stats), strict=True))

    def _names(self) -> tuple[str, ...]:
        return KEYPOINT_SUMMARY_NAMES if self.params.iouType == "keypoints" else SUMMARY_NAMES

    def per_class(self) -> list[dict[str, Any]]:
        """The 12 summary numbers for each category (as the summary, restricted to it): a list
        of dicts with ``category_id``, ``name``, ``n_gt`` (regular ground truth, all areas) and
        "AP" ... "ARl"; -1 where the category has no ground truth."""
        if not self.eval:
            raise RuntimeError("run evaluate() and accumulate() first")
        p = self.eval["params"]
        if not p.useCats:
            raise ValueError("per-class results need params.useCats = 1")
        npig = self._evaluation.regular_gt()
        rows = []
        for k, cat_id in enumerate(p.catIds):
            cat = self.cocoGt.cats.get(cat_id, {}) if self.cocoGt is not None else {}
            row = {"category_id": int(cat_id), "name": cat.get("name", str(cat_id))}
            row["n_gt"] = int(npig[k, 0]) if k < len(npig) else 0
            stats = self._stats(k=k, echo=False)
            row.update(zip(self._names(), map(float, stats), strict=True))
            rows.append(row)
        return rows

    def per_class_table(self) -> str:
        """:meth:`per_class` as a markdown table (AP, AP50, AP75, APs/m/l, AR100)."""
        columns = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")
        if self.params.iouType == "keypoints":
            columns = ("AP", "AP50", "AP75", "APm", "APl", "AR")
        lead = (("category", "name", "---"), ("n_gt", "n_gt", "---:"))
        return per_class_markdown(self.per_class(), lead, columns)

    def _setting(self, iou: float, area: str, max_dets: int) -> tuple[int, int]:
        ev = self._evaluation
        if ev is None:
            raise RuntimeError("run evaluate() first")
        t = np.flatnonzero(np.isclose(ev.iou_thrs, iou, rtol=0, atol=1e-12))
        if not len(t):
            raise ValueError(f"IoU threshold {iou} was not evaluated (params.iouThrs)")
        labels = list(self._paramsEval.areaRngLbl)
        if area not in labels:
            raise ValueError(f"area range {area!r} not in params.areaRngLbl {labels}")
        return int(t[0]), labels.index(area)

    def _category_index(self, category_id: int | None) -> list[int]:
        ev = self._evaluation
        if category_id is None:
            return list(range(len(ev.cat_ids)))
        hits = np.flatnonzero(ev.cat_ids == category_id)
        if not len(hits):
            raise ValueError(f"category {category_id} was not evaluated")
        return [int(hits[0])]

    def pr_curve(
        self, category_id: int | None = None, iou: float = 0.5, area: str = "all",
        max_dets: int | None = None,
    ) -> PRCurve | dict[int, PRCurve]:  # fmt: skip
        """Raw precision-recall (and F1) curve from the counted detections of a category, in
        descending score order, at one evaluated IoU threshold (no interpolation, no recall
        thresholds). With ``category_id=None``: a dict of curves by category id."""
        t, a = self._setting(iou, area, max_dets or self._paramsEval.maxDets[-1])
        ev = self._evaluation
        md = max_dets or self._paramsEval.maxDets[-1]
        npig = ev.regular_gt()
        codes = ev.codes(a, t)
        curves = {}
        for c in self._category_index(category_id):
            sl = slice(ev.cat_start[c], ev.cat_start[c + 1])
            state, rank, score = codes[sl], ev.rank[sl], ev.score[sl]
            counted = (rank < md) & (state != 0)
            tp = np.cumsum(state[counted] == 1)
            fp = np.cumsum(state[counted] == 2)
            n_gt = int(npig[c, a])
            with np.errstate(invalid="ignore", divide="ignore"):
                precision = tp / (tp + fp)
                recall = tp / n_gt if n_gt else np.full(len(tp), np.nan)
                f1 = 2 * precision * recall / (precision + recall)
            f1 = np.where(tp == 0, 0.0, f1)
            curves[int(ev.cat_ids[c])] = PRCurve(precision, recall, f1, score[counted], n_gt)
        return curves if category_id is None else curves[int(category_id)]

    def counts(
        self, iou: float = 0.5, score_threshold: float = 0.0, area: str = "all",
        max_dets: int | None = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """True positives, false positives and false negatives per category at one evaluated
        IoU threshold, counting detections with ``score >= score_threshold`` (ignored ones,
        e.g. matched to crowds, are not counted). Returns arrays ``category_id``, ``tp``,
        ``fp``, ``fn`` (``fn`` = regular ground truth not matched)."""
        t, a = self._setting(iou, area, max_dets or self._paramsEval.maxDets[-1])
        ev = self._evaluation
        md = max_dets or self._paramsEval.maxDets[-1]
        counted = (ev.rank < md) & (ev.score >= score_threshold)
        cat = np.repeat(np.arange(len(ev.cat_ids)), np.diff(ev.cat_start))
        state = ev.codes(a, t)
        tp = np.bincount(cat[counted & (state == 1)], minlength=len(ev.cat_ids))
        fp = np.bincount(cat[counted & (state == 2)], minlength=len(ev.cat_ids))
        npig = ev.regular_gt()[:, a]
        return {"category_id": ev.cat_ids.copy(), "tp": tp, "fp": fp, "fn": npig - tp}
