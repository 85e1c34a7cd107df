"""``LVIS`` and ``LVISResults``: lvis-api's dataset and results classes, backed by columns.

Both wrap a :class:`fastiou.coco.COCO` (the fast columnar JSON loader, the lazy dict views) and
expose lvis-api 0.5.3's names. ``LVISResults`` keeps at most ``max_dets`` detections per image
exactly as lvis-api's ``limit_dets_per_image`` does, on columns.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from ..coco import COCO, AnnotationError, _instances, _json, _table
from ..coco._coco import check_result_images
from ..coco._ext import kernels
from ..coco._table import Annotations, result_table


def _as_dataset_source(obj: Any, name: str) -> Any:
    """A path or dict for :class:`LVIS`: ours, a path, a dict, or lvis-api's object (its
    ``dataset``)."""
    if isinstance(obj, (str, os.PathLike, dict)):
        return obj
    dataset = getattr(obj, "dataset", None)
    if isinstance(dataset, dict):  # e.g. lvis-api's LVIS
        return dataset
    raise TypeError(f"Unsupported type {type(obj).__name__} of {name}")


def _coco_attribute(name: str, doc: str) -> property:
    """An lvis-api attribute read from the wrapped fastiou.coco.COCO's ``name``."""
    return property(lambda self: getattr(self._coco, name), doc=doc)


class LVIS:
    """lvis-api's ``LVIS``: load an LVIS annotation file (or a dataset dict) and query it.

    Parameters
    ----------
    annotation_path : str, os.PathLike or dict
        An LVIS annotation file, or the dataset as a dict (used as is, not copied).

    Notes
    -----
    ``dataset``, ``anns``, ``img_ann_map`` and ``cat_img_map`` are built on first access: the
    evaluation reads columns. A file must hold an object with "images", "categories" and
    "annotations" (lvis-api fails with a KeyError otherwise; here an ``AnnotationError``).
    """

    def __init__(self, annotation_path: str | os.PathLike | dict):
        self.logger = logging.getLogger(__name__)
        self.logger.info("Loading annotations.")
        self._coco = COCO(_as_dataset_source(annotation_path, "annotation_path"), verbose=False)
        self._check_keys(("images", "categories", "annotations"))

    def _check_keys(self, keys: tuple[str, ...]) -> None:
        coco = self._coco
        header = coco._header
        for key in keys:
            if key not in header and not (key == "annotations" and coco._raw is not None):
                source = coco._path or "dataset"
                raise AnnotationError(f"{source}: an LVIS dataset needs {key!r}; it has none")

    # -- lvis-api's attributes --------------------------------------------------------------

    dataset = _coco_attribute("dataset", "The dataset dict (built on first access for a file).")
    anns = _coco_attribute("anns", "Annotations by id.")
    imgs = _coco_attribute("imgs", "Images by id.")
    cats = _coco_attribute("cats", "Categories by id.")
    img_ann_map = _coco_attribute("imgToAnns", "Image id -> its annotations, in file order.")
    cat_img_map = _coco_attribute("catToImgs", "Category id -> the image id of each annotation.")

    def _table(self) -> Annotations:
        """The annotations as columns (validated on first use)."""
        return self._coco._table()

    # -- queries ----------------------------------------------------------------------------

    def get_ann_ids(self, img_ids=None, cat_ids=None, area_rng=None) -> list:
        """Ids of the annotations of these images (all by default) in these categories with
        ``area_rng[0] < area < area_rng[1]`` (default ``[0, inf]``: strict, so an area 0 is
        left out as soon as a category or area filter is given, as lvis-api does)."""
        t = self._table()
        if img_ids is not None:
            rows = self._coco._rows_of_images(img_ids)
        else:
            rows = np.arange(len(t))
        if cat_ids is None and area_rng is None:
            return t.id[rows].tolist()
        if cat_ids is None:
            raise TypeError("get_ann_ids: an area range needs cat_ids (lvis-api reads set(None))")
        wanted = np.asarray([c for c in set(cat_ids) if isinstance(c, (int, np.integer))])
        lo, hi = (0, float("inf")) if area_rng is None else area_rng
        area = t.area[rows]
        keep = np.isin(t.category_id[rows], wanted.astype(np.int64)) & (area > lo) & (area < hi)
        return t.id[rows[keep]].tolist()

    def get_cat_ids(self) -> list:
        """All category ids, in the dataset's order."""
        return list(self.cats.keys())

    def get_img_ids(self) -> list:
        """All image ids, in the dataset's order."""
        return list(self.imgs.keys())

    @staticmethod
    def _load_helper(table: dict, ids) -> list:
        return list(table.values()) if ids is None else [table[i] for i in ids]

    def load_anns(self, ids=None) -> list:
        """The annotations with these ids (all when None)."""
        return self._load_helper(self.anns, ids)

    def load_cats(self, ids) -> list:
        """The categories with these ids (all when None)."""
        return self._load_helper(self.cats, ids)

    def load_imgs(self, ids) -> list:
        """The images with these ids (all when None)."""
        return self._load_helper(self.imgs, ids)

    def download(self, save_dir, img_ids=None):
        raise NotImplementedError("fastiou.lvis does not download images; use lvis-api for it")

    def ann_to_rle(self, ann: dict) -> dict:
        """The annotation's segmentation (polygons, uncompressed RLE or RLE) as an RLE
        (lvis-api's ``ann_to_rle``, which is pycocotools' ``annToRLE``)."""
        return self._coco.annToRLE(ann)

    def ann_to_mask(self, ann: dict) -> np.ndarray:
        """The annotation's segmentation as a binary mask (uint8 [height, width])."""
        return self._coco.annToMask(ann)

    # -- what the federated evaluation reads -------------------------------------------------

    def _image_lists(self, img_ids: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Per image of ``img_ids`` (all in this dataset), its list ``key`` (neg_category_ids
        or not_exhaustive_category_ids) flattened: (image position, category id) int64."""
        imgs = self.imgs
        ids = img_ids.tolist()
        lists = [imgs[i].get(key) for i in ids]
        bad = [i for i, v in zip(ids, lists, strict=True) if not isinstance(v, list)]
        if bad:
            value = imgs[bad[0]].get(key)
            raise AnnotationError(
                f"image {bad[0]} has no {key!r} list (got {value!r}; {len(bad)} image(s) "
                "affected): LVIS evaluation needs neg_category_ids and "
                "not_exhaustive_category_ids on every image"
            )
        flat = list(itertools.chain.from_iterable(lists))
        column = np.array(flat)
        if len(flat) and column.dtype.kind not in "iu":
            wrong = next((c for c in flat if not _is_int(c)), column.dtype)
            raise AnnotationError(f"{key}: every entry must be an integer category id: {wrong!r}")
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        return np.repeat(np.arange(len(lists), dtype=np.int64), lengths), column.astype(np.int64)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _deciding_result(anns: list, max_dets: int) -> list:
    """[the result whose keys choose lvis-api's branch]: its first after the cap, i.e. the
    file's first unless that one's image is over the cap: then its best by score (the first
    of the ties). [] for no results; the file's first where the keys it needs are missing."""
    if not anns or max_dets < 0:
        return anns[:1]
    first = anns[0]
    try:
        same = [a for a in anns if a["image_id"] == first["image_id"]]
        if len(same) > max_dets:
            first = max(same, key=operator.itemgetter("score"))  # the first maximum
    except (KeyError, TypeError):
        pass  # the readers name the problem
    return [first]


def _read_results(results: Any, max_dets: int) -> tuple[Annotations, str | list | None, dict]:
    """Results as columns, as lvis-api reads them (fastiou.coco's loadRes readers): with a
    box, area = w * h; segmentation results without one (lvis-api's first result after the
    cap decides): area = mask area, bbox = the mask's box where missing. Returns (table, the
    result dicts or their file or None for an array, {"rles": the packed RLEs} when the
    segmentation branch made them)."""
    packed: dict = {}

    def segm_branch(anns: list) -> bool:
        return _instances.result_branch(_deciding_result(anns, max_dets)) == "segm"

    if isinstance(results, (str, os.PathLike)):
        source = os.fspath(results)
        try:
            table, anns = _json.load_results(results)
        except AnnotationError:  # no boxes: segmentation results?
            anns = _json._load_python(results)
            if not isinstance(anns, list) or not segm_branch(anns):
                raise
            return _instances.results_table(anns, source, packed, "segm"), anns, packed
        return table, source if anns is None else anns, packed
    if isinstance(results, np.ndarray):
        return _table.from_numpy(results), None, packed
    if isinstance(results, (list, tuple)):
        results = list(results)
        if segm_branch(results):
            return _instances.results_table(results, "results", packed, "segm"), results, packed
        return _table.from_dicts(results, results=True, source="results"), results, packed
    raise TypeError(f"results must be a path, a list or an array, not {type(results).__name__}")


def cap_per_image(
    image_id: np.ndarray, score: np.ndarray, max_dets: int, known: np.ndarray | None = None
) -> np.ndarray:
    """Rows of lvis-api's ``limit_dets_per_image``, in its order.

    Images in order of first appearance; an image with at most ``max_dets`` detections keeps
    them in file order, one with more keeps its ``max_dets`` best by score (a stable sort:
    ties in file order). ``max_dets < 0``: every row, in file order. ``known``: the sorted
    image ids that ``image_id`` takes its values from (default: its distinct values).
    """
    n = len(image_id)
    if max_dets < 0 or n == 0:
        return np.arange(n, dtype=np.int64)
    k = kernels()
    image_id = np.ascontiguousarray(image_id, np.int64)
    known = np.unique(image_id) if known is None else np.ascontiguousarray(known, np.int64)
    pos = k.positions(image_id, known)
    if n and pos.min() < 0:
        raise ValueError("cap_per_image: an image id not in `known`")
    counts = np.bincount(pos, minlength=len(known))
    by_image = k.counting_order(pos, len(known), np.arange(n, dtype=np.int64))
    present = np.flatnonzero(counts)
    first_row = by_image[np.concatenate([[0], np.cumsum(counts)])[present]]
    appearance = present[np.argsort(first_row)]  # image positions in order of first appearance
    rank = np.full(len(known), -1, np.int32)
    rank[appearance] = np.arange(len(appearance), dtype=np.int32)
    order = k.counting_order(rank[pos], len(appearance), np.arange(n, dtype=np.int64))
    counts = counts[appearance]
    starts = np.concatenate([[0], np.cumsum(counts)])
    over = np.flatnonzero(counts > max_dets)
    if not len(over):
        return order
    # the images over the cap: sort their rows by descending score (stably), keep max_dets
    sub = np.concatenate([order[starts[i] : starts[i + 1]] for i in over.tolist()])
    sub_starts = np.concatenate([[0], np.cumsum(counts[over])]).astype(np.int64)
    k.sort_segments(sub, np.ascontiguousarray(score, np.float64), sub_starts, 1)
    keep = np.ones(n, bool)
    for j, i in enumerate(over.tolist()):
        order[starts[i] : starts[i + 1]] = sub[sub_starts[j] : sub_starts[j + 1]]
        keep[starts[i] + max_dets : starts[i + 1]] = False
    return order[keep]


def cap_keep(
    image_id: np.ndarray, score: np.ndarray, max_dets: int, known: np.ndarray
) -> np.ndarray | None:
    """Which rows lvis-api's cap keeps (bool per row), or None when it keeps them all: each
    image's ``max_dets`` best by score, ties in file order. ``known``: the sorted image ids
    that ``image_id`` takes its values from."""
    n = len(image_id)
    if max_dets < 0 or n == 0:
        return None
    k = kernels()
    pos = k.positions(np.ascontiguousarray(image_id, np.int64), known)
    if pos.min() < 0:
        raise ValueError("cap_keep: an image id not in `known`")
    counts = np.bincount(pos, minlength=len(known))
    over = counts > max_dets
    if not over.any():
        return None
    rows = k.counting_order(np.where(over[pos], pos, -1).astype(np.int32), len(known),
                            np.arange(n, dtype=np.int64))  # fmt: skip
    sizes = counts[over]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    k.sort_segments(rows, np.ascontiguousarray(score, np.float64), starts, 1)
    rank = np.arange(len(rows)) - np.repeat(starts[:-1], sizes)
    keep = np.ones(n, bool)
    keep[rows[rank >= max_dets]] = False
    return keep


class LVISResults(LVIS):
    """lvis-api's ``LVISResults``: detections on an LVIS dataset, at most ``max_dets`` per image.

    Parameters
    ----------
    lvis_gt : LVIS or str
        The ground truth (or the path of its file).
    results : str, os.PathLike, list of dict or numpy.ndarray
        A results file (JSON list of ``{image_id, category_id, bbox, score}``, each with a
        ``segmentation`` for mask evaluation, or ``{image_id, category_id, segmentation,
        score}`` with compressed-RLE masks), the list itself, or an N x 7 array
        ``[image_id, x, y, w, h, score, category_id]``.
    max_dets : int
        Detections kept per image (lvis-api's official 300), by score, ties in file order;
        negative: all.

    Notes
    -----
    As lvis-api: ids 1..N in the kept order, detections grouped image by image in order of first
    appearance; when the first result (after the cap) has a ``bbox``: area = w * h and a missing
    ``segmentation`` is the box's polygon, else (segmentation results): area = the mask's area, a
    missing ``bbox`` the mask's box. Unlike lvis-api: an empty list is accepted (lvis-api fails with
    an IndexError), a detection on an image not in the ground truth raises ``AnnotationError``
    (lvis-api: an AssertionError), non-finite boxes and scores are refused, and a category id not in
    the ground truth's categories gives a warning (lvis-api silently never evaluates it).
    """

    def __init__(self, lvis_gt: LVIS | str | os.PathLike, results: Any, max_dets: int = 300):
        if not isinstance(lvis_gt, LVIS):
            lvis_gt = LVIS(_as_dataset_source(lvis_gt, "lvis_gt"))
        self.logger = logging.getLogger(__name__)
        self.logger.info("Loading and preparing results.")
        try:
            max_dets = operator.index(max_dets)
        except TypeError:
            raise TypeError(f"max_dets must be an integer, not {max_dets!r}") from None
        table, self._result_source, packed = _read_results(results, max_dets)
        self._packed_rles = packed.get("rles")  # segmentation results: their RLEs, file order
        source = os.fspath(results) if isinstance(results, (str, os.PathLike)) else "results"
        check_result_images(table, lvis_gt.imgs, source)
        self.max_dets = max_dets
        self._gt_header = lvis_gt._coco._header  # shared with the ground truth, not copied
        self._known = np.asarray(sorted(i for i in lvis_gt.imgs if _is_int(i)), np.int64)
        # The evaluation reads the detections in file order with a mask of those the cap
        # keeps: within an image lvis-api's order differs only by a stable sort by score,
        # which the evaluation applies anyway. lvis-api's order (ids, dataset) is built on use.
        self._file_table = table
        self._cap_keep = cap_keep(table.image_id, table.score, max_dets, self._known)
        self._ordered: COCO | None = None
        _warn_unknown_categories(self._kept_category_ids(), lvis_gt.cats)

    def _kept_category_ids(self) -> np.ndarray:
        """The category id of each detection within the cap (file order)."""
        cats = self._file_table.category_id
        return cats if self._cap_keep is None else cats[self._cap_keep]

    @property
    def _coco(self) -> COCO:
        """The detections in lvis-api's order (ids 1..N) as a fastiou.coco.COCO."""
        if self._ordered is None:
            table = self._file_table
            rows = cap_per_image(table.image_id, table.score, self.max_dets, self._known)
            if not np.array_equal(rows, np.arange(len(table))):
                table = result_table(
                    table.image_id[rows], table.category_id[rows],
                    np.take(table.bbox, rows, axis=0), table.score[rows], table.area[rows],
                )  # fmt: skip
            header = self._gt_header
            images, categories = header.get("images", []), header.get("categories", [])
            coco = COCO._from_table(table, images, categories, True)
            coco._header = {"info": header.get("info", {}), **coco._header}
            anns = self._result_source
            if anns is not None:  # the dicts as lvis-api leaves them, in its order
                anns = _json._load_python(anns) if isinstance(anns, str) else anns
                coco._result_source = [anns[i] for i in rows.tolist()]
            self._ordered = coco
        return self._ordered

    def _evaluation_rles(self) -> Any:
        """The detections' masks (fastiou.masks.RLEs) in file order, as lvis-api's
        ``ann_to_rle`` makes them (a box result without segmentation: its box polygon)."""
        if self._packed_rles is None:
            header = self._gt_header
            coco = COCO._from_table(
                self._file_table, header.get("images", []), header.get("categories", []), True
            )
            coco._result_source = self._result_source
            self._packed_rles = _instances.rles(coco)
        return self._packed_rles

    def _evaluation_input(self) -> tuple[Annotations, np.ndarray | None]:
        """(detections in file order, bool mask of those within the cap or None for all)."""
        return self._file_table, self._cap_keep

    def limit_dets_per_image(self, anns: list[dict], max_dets: int) -> list[dict]:
        """lvis-api's cap on a list of result dicts (what the constructor does on columns)."""
        img_ann: dict = defaultdict(list)
        for ann in anns:
            img_ann[ann["image_id"]].append(ann)
        for img_id, group in img_ann.items():
            if len(group) > max_dets:
                img_ann[img_id] = sorted(group, key=lambda a: a["score"], reverse=True)[:max_dets]
        return [ann for group in img_ann.values() for ann in group]

    def get_top_results(self, img_id, score_thrs) -> list[dict]:
        """The detections of an image with a score above ``score_thrs``."""
        anns = self.load_anns(self.get_ann_ids(img_ids=[img_id]))
        return [ann for ann in anns if ann["score"] > score_thrs]


def from_lvis_api_results(lvis_gt: LVIS, anns: list[dict]) -> LVISResults:
    """lvis-api's ``LVISResults.dataset["annotations"]`` (capped, with its ``area``, and a
    ``bbox`` or ``segmentation`` it may have added) as an :class:`LVISResults`, uncapped and
    with lvis-api's areas (w * h, or the mask's for segmentation results)."""
    anns = [
        {**a, "bbox": np.asarray(a["bbox"], np.float64).tolist()} if "bbox" in a else a
        for a in anns
    ]  # mask_utils.toBbox gives arrays
    res = LVISResults(lvis_gt, anns, -1)
    if anns and all("area" in a for a in anns):
        try:
            res._file_table.area = np.array([a["area"] for a in anns], np.float64)
        except (TypeError, ValueError) as e:
            raise AnnotationError(f"lvis-api results: every area must be a number ({e})") from None
    return res


def unknown_categories(category_id: np.ndarray, cats: dict) -> np.ndarray:
    """The distinct category ids in ``category_id`` that are not keys of ``cats``."""
    known = np.asarray(sorted(c for c in cats if _is_int(c)), np.int64)
    missing = kernels().positions(np.ascontiguousarray(category_id, np.int64), known) < 0
    return np.unique(category_id[missing])


def _warn_unknown_categories(category_id: np.ndarray, cats: dict) -> None:
    bad = unknown_categories(category_id, cats)
    if len(bad):
        shown = ", ".join(map(str, bad[:10].tolist())) + (" ..." if len(bad) > 10 else "")
        warnings.warn(
            f"results: {len(bad)} category id(s) not in the ground truth's categories, never "
            f"evaluated (as in lvis-api): {shown}",
            stacklevel=3,
        )
