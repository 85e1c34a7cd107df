"""LVIS evaluation: lvis-api 0.5.3's numbers, bit for bit, on fastiou.coco's engine.

A drop-in for lvis-api's box evaluation::

    from fastiou.lvis import LVIS, LVISResults, LVISEval

    gt = LVIS("lvis_v1_val.json")
    dt = LVISResults(gt, "detections.json")  # at most 300 per image, as lvis-api
    E = LVISEval(gt, dt, "bbox")
    E.run(); E.print_results()
    E.results["AP"], E.eval["precision"]

The federated rules (negative and not-exhaustive categories, frequency groups) and every
lvis-api quirk kept are listed in :class:`LVISEval`'s notes; :meth:`LVISEval.per_class` gives
the per-category table. ``iou_type="segm"`` is not available yet (NotImplementedError).
"""

from ..coco import AnnotationError
from ._eval import SUMMARY_NAMES, LVISEval, Params
from ._lvis import LVIS, LVISResults

__all__ = ["LVIS", "LVISResults", "LVISEval", "Params", "AnnotationError", "SUMMARY_NAMES"]
