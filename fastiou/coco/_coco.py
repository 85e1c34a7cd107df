"""``COCO``: pycocotools' dataset API, backed by columns.

The evaluation reads :class:`~fastiou.coco._table.Annotations` columns; the dict views that
pycocotools users reach into (``dataset``, ``anns``, ``imgToAnns``, ``catToImgs``) are built on
first access only. A file's ``dataset`` then needs its annotations array parsed again into dicts
(the fast loader skips what evaluation does not need: segmentations...); once, then kept.
"""

from __future__ import annotations

import copy
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _instances, _json, _table
from ._table import AnnotationError, Annotations


def _is_array_like(obj: Any) -> bool:
    return hasattr(obj, "__iter__") and hasattr(obj, "__len__")


def _listify(x: Any) -> Sequence:
    return x if _is_array_like(x) else [x]


class COCO:
    """pycocotools' ``COCO`` for box evaluation: load a dataset, query it, load results.

    Parameters
    ----------
    annotation_file : str, os.PathLike, dict or None
        A COCO annotation file, or the dataset as a dict (used as is, not copied).
    verbose : bool
        Print pycocotools' progress messages ("loading annotations into memory...").

    Notes
    -----
    The annotation columns are read once, at load time (or by :meth:`createIndex`): after
    changing ``dataset`` in place, call ``createIndex()`` before evaluating again.
    For a file, ``dataset`` is built on first access (its annotations array parsed into dicts,
    the rest already parsed at load) and kept: every read returns the same dict, in-place
    changes stay, and ``imgs`` / ``cats`` / ``anns`` hold the same dict objects as
    ``dataset``, as in pycocotools. Until then only the columns are in memory; after, both
    (the dicts cost what pycocotools' do). Assign ``dataset`` to replace it.
    A ground truth without ``iscrowd`` counts as not crowd (pycocotools fails on it).
    """

    def __init__(self, annotation_file: str | os.PathLike | dict | None = None, *, verbose=True):
        self._verbose = verbose
        self._dataset: dict | None = {}
        self._path: str | None = None
        self._location: _json.ArrayLocation | None = None  # of the annotations, in the file
        self._segm_spans: np.ndarray | None = None  # of each annotation's segmentation, too
        self._keypoint_spans: tuple = (None, None)  # and of its keypoints and num_keypoints
        self._is_results = False
        self._raw: Any = None  # scanned columns or a list of dicts, made into _columns on demand
        self._columns: Annotations | None = None
        self._anns: dict | None = None
        self._img_to_anns: defaultdict | None = None
        self._cat_to_imgs: defaultdict | None = None
        self.imgs: dict = {}
        self.cats: dict = {}
        if annotation_file is None:
            return
        if isinstance(annotation_file, dict):
            self._dataset = annotation_file
            self.createIndex()
            return
        self._log("loading annotations into memory...")
        tic = time.time()
        dataset, annotations, complete = _json.load_dataset(annotation_file)
        self._log(f"Done (t={time.time() - tic:0.2f}s)")
        self._path = os.fspath(annotation_file)
        if complete:
            self._dataset = dataset
            self.createIndex()
        else:
            self._dataset = None
            self._header = dataset
            self._location = getattr(annotations, "location", None)
            self._index_header(dataset, annotations)

    # -- construction ---------------------------------------------------------------------

    def _log(self, message: str) -> None:
        if self._verbose:
            print(message)

    def createIndex(self) -> None:
        """(Re)build the indexes and the evaluation columns from ``self.dataset``."""
        self._log("creating index...")
        dataset = self.dataset
        self._header = {k: v for k, v in dataset.items() if k != "annotations"}
        self._index_header(self._header, dataset.get("annotations"))
        self._log("index created!")

    def _index_header(self, header: dict, annotations: Any) -> None:
        self.imgs = {img["id"]: img for img in header.get("images", [])}
        self.cats = {cat["id"]: cat for cat in header.get("categories", [])}
        self._raw = annotations
        self._columns = None
        self._scored: Annotations | None = None
        self._anns = self._img_to_anns = self._cat_to_imgs = None
        self._rows_by_image = None
        self._rles_cache = self._keypoints_cache = None

    @classmethod
    def _from_table(
        cls, table: Annotations, images: list, categories: list, results: bool, verbose=False
    ) -> COCO:
        coco = cls(verbose=verbose)
        coco._dataset = None
        coco._header = {"images": images, "categories": categories}
        coco._index_header(coco._header, None)
        coco._columns = table
        coco._is_results = results
        return coco

    # -- the columns evaluation reads -------------------------------------------------------

    @property
    def _source(self) -> str:
        return self._path or ("results" if self._is_results else "dataset")

    def _table(self, scored: bool = False) -> Annotations:
        """The annotations as columns (validated here, on first use, with clear errors).

        ``scored``: this COCO holds detections (COCOeval's cocoDt). One made by loadRes has
        its columns; any other (a dataset of scored annotations) is read with its own ids,
        areas and scores, as pycocotools reads it.
        """
        if scored and not self._is_results:
            if self._scored is None:
                anns = self.dataset.get("annotations", [])
                self._scored = _table.from_dicts(anns, False, self._source, scored=True)
            return self._scored
        if self._columns is None:
            raw = self._raw
            if raw is None:  # no "annotations": nothing to evaluate against
                self._columns = Annotations.empty(self._is_results)
            elif isinstance(raw, _table.ScannedColumns):
                self._columns = _table.from_scanned(raw, self._is_results, self._source)
                self._segm_spans = raw.get("segmentation")  # where each one is in the file
                self._keypoint_spans = (raw.get("keypoints"), raw.get("num_keypoints"))
                self._raw = None
            else:
                self._columns = _table.from_dicts(raw, self._is_results, self._source)
        return self._columns

    # -- pycocotools' attributes, built on first access -------------------------------------

    @property
    def dataset(self) -> dict:
        if self._dataset is None:
            if self._path is not None and not self._is_results:
                self._dataset = _json.dataset_dicts(self._path, self._header, self._location)
            else:
                self._dataset = {**self._header, "annotations": self._result_dicts()}
        return self._dataset

    @dataset.setter
    def dataset(self, value: dict) -> None:
        self._dataset = value

    def _result_dicts(self) -> list[dict]:
        """The annotations as dicts, for a COCO made from columns (results: as pycocotools'
        loadRes leaves them, with area, id, iscrowd and a box polygon)."""
        t = self._table()
        source = getattr(self, "_result_source", None)
        if source is not None:  # loadRes kept the results (or their file): as it leaves them
            anns = _json._load_python(source) if isinstance(source, str) else source
            return _instances.loaded_results(anns, t)
        anns = []
        for i, (x, y, w, h) in enumerate(t.bbox.tolist()):
            ann = {
                "image_id": int(t.image_id[i]),
                "category_id": int(t.category_id[i]),
                "bbox": [x, y, w, h],
                "area": float(t.area[i]),
                "id": int(t.id[i]),
                "iscrowd": int(t.iscrowd[i]),
            }
            if t.score is not None:
                ann["score"] = float(t.score[i])
                ann["segmentation"] = [[x, y, x, y + h, x + w, y + h, x + w, y]]
            anns.append(ann)
        return anns

    @property
    def anns(self) -> dict:
        if self._anns is None:
            self._anns = {ann["id"]: ann for ann in self.dataset.get("annotations", [])}
        return self._anns

    @anns.setter
    def anns(self, value: dict) -> None:
        self._anns = value

    @property
    def imgToAnns(self) -> defaultdict:
        if self._img_to_anns is None:
            self._img_to_anns = defaultdict(list)
            for ann in self.dataset.get("annotations", []):
                self._img_to_anns[ann["image_id"]].append(ann)
        return self._img_to_anns

    @imgToAnns.setter
    def imgToAnns(self, value) -> None:
        self._img_to_anns = value

    @property
    def catToImgs(self) -> defaultdict:
        if self._cat_to_imgs is None:
            self._cat_to_imgs = defaultdict(list)
            if "categories" in self._header:
                t = self._table()
                for cat, img in zip(t.category_id.tolist(), t.image_id.tolist(), strict=True):
                    self._cat_to_imgs[cat].append(img)
        return self._cat_to_imgs

    @catToImgs.setter
    def catToImgs(self, value) -> None:
        self._cat_to_imgs = value

    # -- queries ----------------------------------------------------------------------------

    def info(self) -> None:
        for key, value in self._header["info"].items():
            print(f"{key}: {value}")

    def _rows_of_images(self, img_ids: Iterable) -> np.ndarray:
        """Rows of the annotations of these images, image by image, file order within one."""
        t = self._table()
        if self._rows_by_image is None:
            order = np.argsort(t.image_id, kind="stable")
            ids, starts = np.unique(t.image_id[order], return_index=True)
            bounds = np.append(starts, len(order))
            self._rows_by_image = (
                order,
                {int(i): (int(bounds[k]), int(bounds[k + 1])) for k, i in enumerate(ids)},
            )
        order, where = self._rows_by_image
        pieces = [order[slice(*where[i])] for i in img_ids if _is_int(i) and int(i) in where]
        return np.concatenate(pieces) if pieces else np.empty(0, np.int64)

    def getAnnIds(self, imgIds=(), catIds=(), areaRng=(), iscrowd=None) -> list:
        """Ids of the annotations that pass every filter given (pycocotools' order)."""
        imgIds, catIds = _listify(imgIds), _listify(catIds)
        t = self._table()
        if len(imgIds) == len(catIds) == len(areaRng) == 0:
            rows = np.arange(len(t))
        else:
            rows = self._rows_of_images(imgIds) if len(imgIds) else np.arange(len(t))
            if len(catIds):
                wanted = np.asarray([c for c in catIds if _is_int(c)], dtype=np.int64)
                rows = rows[np.isin(t.category_id[rows], wanted)]
            if len(areaRng):
                area = t.area[rows]
                rows = rows[(area > areaRng[0]) & (area < areaRng[1])]
        if iscrowd is not None:
            rows = rows[t.iscrowd[rows] == iscrowd]
        return t.id[rows].tolist()

    def getCatIds(self, catNms=(), supNms=(), catIds=()) -> list:
        """Ids of the categories with these names, supercategory names and ids."""
        catNms, supNms, catIds = _listify(catNms), _listify(supNms), _listify(catIds)
        cats = self._header["categories"]
        if len(catNms):
            cats = [cat for cat in cats if cat["name"] in catNms]
        if len(supNms):
            cats = [cat for cat in cats if cat["supercategory"] in supNms]
        if len(catIds):
            cats = [cat for cat in cats if cat["id"] in catIds]
        return [cat["id"] for cat in cats]

    def getImgIds(self, imgIds=(), catIds=()) -> list:
        """Ids of the images given that hold every category given (all images by default)."""
        imgIds, catIds = _listify(imgIds), _listify(catIds)
        if len(imgIds) == len(catIds) == 0:
            return list(self.imgs.keys())
        ids = set(imgIds)
        for i, catId in enumerate(catIds):
            if i == 0 and len(ids) == 0:
                ids = set(self.catToImgs[catId])
            else:
                ids &= set(self.catToImgs[catId])
        return list(ids)

    def loadAnns(self, ids=()) -> list:
        if _is_array_like(ids):
            return [self.anns[i] for i in ids]
        if type(ids) is int:
            return [self.anns[ids]]

    def loadCats(self, ids=()) -> list:
        if _is_array_like(ids):
            return [self.cats[i] for i in ids]
        if type(ids) is int:
            return [self.cats[ids]]

    def loadImgs(self, ids=()) -> list:
        if _is_array_like(ids):
            return [self.imgs[i] for i in ids]
        if type(ids) is int:
            return [self.imgs[ids]]

    # -- results ----------------------------------------------------------------------------

    def loadRes(self, resFile: str | os.PathLike | list | np.ndarray) -> COCO:
        """Load detections: a results file, a list of dicts or an N x 7 array
        ``[image_id, x, y, w, h, score, category_id]``, as pycocotools' ``loadRes`` does
        (ids 1..N in order, area = w * h, not crowd) for box results.

        Raises
        ------
        AnnotationError
            A detection lacks a key, has a non-finite box or score, or names an image that is
            not in this dataset.
        """
        self._log("Loading and preparing results...")
        tic = time.time()
        kept: str | list | None = None  # the results' dicts (or their file), for masks etc.
        scanned = None
        packed: dict = {}  # segm results: their packed RLEs, made once
        stat = None  # of a results file, before it is read (its segmentations are read again)
        if isinstance(resFile, (str, os.PathLike)):
            source = os.fspath(resFile)
            stat = _instances._file_stat(source)
            scanned = _instances.keypoint_results(source, source)  # no dict per result
            if scanned is not None:
                table, kept = scanned[0], source
            else:
                try:  # boxes, or RLE results read in the same scan (no dicts)
                    table, anns = _json.load_results(
                        resFile,
                        lambda buf, cols: _instances.segm_scanned(buf, cols, source, packed),
                    )
                    kept = source if anns is None else anns
                except AnnotationError:  # no boxes: the segmentation / keypoint branches
                    anns = _json._load_python(resFile)
                    if not isinstance(anns, list) or _instances.result_branch(anns) == "bbox":
                        raise
                    table, kept = _instances.results_table(anns, source, packed), anns
        elif isinstance(resFile, np.ndarray):
            self._log("Converting ndarray to lists...")
            table = _table.from_numpy(resFile)
            source = "result array"
        else:
            source = "results"
            if isinstance(resFile, list) and _instances.result_branch(resFile) != "bbox":
                table = _instances.results_table(resFile, source, packed)
            else:
                table = _table.from_dicts(resFile, results=True, source=source)
            kept = resFile
        check_result_images(table, self.imgs, source)
        self._log(f"DONE (t={time.time() - tic:0.2f}s)")
        header = {
            "info": copy.deepcopy(self._header.get("info", {})),
            "images": list(self._header.get("images", [])),
            "categories": copy.deepcopy(self._header.get("categories", [])),
        }
        res = COCO._from_table(table, header["images"], header["categories"], True, self._verbose)
        res._header = header
        res._result_source = kept
        if isinstance(kept, str) and scanned is not None:
            res._keypoints_cache = scanned[1]  # the keypoints the scan read, for evaluation
        res._rles_cache = packed.get("rles")
        if stat is not None and "spans" in packed and stat == _instances._file_stat(source):
            res._segm_spans, res._result_stat = packed["spans"], stat  # unchanged while read
            measured = packed["rles"]._cache  # the masks' boxes and areas, for a second reading
            res._segm_measured = {k: measured[k] for k in ("boxes", "areas") if k in measured}
        return res

    def loadNumpyAnnotations(self, data: np.ndarray) -> list[dict]:
        """pycocotools' conversion of an N x 7 array to result dicts."""
        assert type(data) is np.ndarray
        assert data.shape[1] == 7
        return [
            {
                "image_id": int(row[0]),
                "bbox": [row[1], row[2], row[3], row[4]],
                "score": row[5],
                "category_id": int(row[6]),
            }
            for row in data
        ]

    def showAnns(self, anns, draw_bbox=False):
        raise NotImplementedError("fastiou.coco.COCO does not draw; use pycocotools for that")

    def annToRLE(self, ann: dict) -> dict:
        """The annotation's segmentation (polygons, uncompressed RLE or RLE) as an RLE, as
        pycocotools' ``annToRLE`` (the image's height and width from ``imgs``)."""
        return _instances.ann_to_rle(self, ann)

    def annToMask(self, ann: dict) -> np.ndarray:
        """The annotation's segmentation as a binary mask (uint8 [height, width])."""
        from . import mask as _mask

        return _mask.decode(self.annToRLE(ann))


def check_result_images(table: Annotations, imgs: dict, source: str) -> None:
    """Raise AnnotationError when a detection names an image that is not a key of ``imgs``."""
    from ._ext import kernels

    keys = list(imgs)
    known = None
    if set(map(type, keys)) <= {int}:  # the usual: Python ints (a C-speed test)
        try:
            known = np.sort(np.array(keys, np.int64))
        except OverflowError:
            known = None
    if known is None:
        known = np.asarray(sorted(i for i in imgs if _is_int(i)), dtype=np.int64)
    missing = kernels().positions(table.image_id, known) < 0
    if missing.any():
        bad = np.unique(table.image_id[missing])
        shown = ", ".join(map(str, bad[:10].tolist())) + (" ..." if len(bad) > 10 else "")
        raise AnnotationError(
            f"{source}: {int(missing.sum())} detection(s) on {len(bad)} image id(s) that "
            f"are not in the ground truth: {shown}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
