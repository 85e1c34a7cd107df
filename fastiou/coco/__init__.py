"""COCO detection evaluation: pycocotools' numbers, bit for bit, many times faster.

A drop-in for pycocotools' evaluation of boxes, instance masks and keypoints::

    from fastiou.coco import COCO, COCOeval

    gt = COCO("instances_val2017.json")
    dt = gt.loadRes("detections.json")
    E = COCOeval(gt, dt, "bbox")  # or "segm", "keypoints"
    E.evaluate(); E.accumulate(); E.summarize()
    E.stats, E.eval["precision"]

and a front end for arrays (:func:`evaluate_detections`, :func:`evaluate_arrays`). Beyond
pycocotools: :meth:`COCOeval.per_class`, :meth:`COCOeval.pr_curve` (raw PR and F1 curves) and
:meth:`COCOeval.counts` (TP/FP/FN at an IoU and score threshold);
:func:`install_pycocotools_shim` routes ``import pycocotools...`` to these.
"""

from . import mask
from ._arrays import evaluate_arrays, evaluate_detections
from ._coco import COCO
from ._eval import KEYPOINT_SUMMARY_NAMES, SUMMARY_NAMES, COCOeval, Params, PRCurve
from ._shim import PycocotoolsShim, install_pycocotools_shim
from ._table import AnnotationError

__all__ = [
    "COCO",
    "COCOeval",
    "Params",
    "PRCurve",
    "AnnotationError",
    "SUMMARY_NAMES",
    "KEYPOINT_SUMMARY_NAMES",
    "install_pycocotools_shim",
    "PycocotoolsShim",
    "evaluate_detections",
    "evaluate_arrays",
    "mask",
]
