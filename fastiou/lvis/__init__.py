"""LVIS evaluation: lvis-api 0.5.3's numbers, bit for bit, on fastiou.coco's engine.

A drop-in for lvis-api's box and mask evaluation::

    from fastiou.lvis import LVIS, LVISResults, LVISEval

    gt = LVIS("lvis_v1_val.json")            # a path, or the dataset as a dict
    dt = LVISResults(gt, "detections.json")  # a path, a list or an N x 7 array; 300 per image
    E = LVISEval(gt, dt, "bbox")             # or "segm" (lvis-api's default): mask IoU
    E.run(); E.print_results()
    E.results["AP"], E.eval["precision"]     # [T, R, K, A]; E.eval["recall"]: [T, K, A]

plus :meth:`LVISEval.per_class` / :meth:`LVISEval.per_class_table` (the results per category)
and ``fastiou lvis GT DT`` on the command line. Matching and accumulation are fastiou.coco's
(bit-identical to pycocotools, whose formulas lvis-api copies); this package adds LVIS' rules.
``iou_type="segm"`` matches masks (pycocotools' RLE IoU, on fastiou.masks): the ground truth's
polygons (parts merged), uncompressed or compressed RLEs, the results' compressed RLEs.

lvis-api's behaviour, kept because users compare against its numbers (none is changed; the
differences at the end are on inputs lvis-api cannot evaluate):

- Area 0 drops an annotation entirely: lvis-api selects ground truth and detections with
  ``get_ann_ids(..., cat_ids)``, which keeps ``0 < area < inf`` only (also negative, infinite
  and NaN areas). A detection's area: see Results below.
- Federated evaluation: a detection counts only when its category is present in the image's
  (selected) ground truth or listed in its ``neg_category_ids``; any other is dropped.
- An unmatched detection of a category in the image's ``not_exhaustive_category_ids`` is
  ignored instead of a false positive; so is one matched to a ground truth whose id is 0
  (lvis-api, like pycocotools, reads the matched id 0 as "no match").
- No crowd regions: ``iscrowd`` is not read (box and mask IoU alike); a ground truth's own
  ``ignore`` flag is honoured.
- Results: the first result after the cap chooses how all are read. With a ``bbox``: area =
  w * h (also for "segm"), a result without ``segmentation`` is its box's polygon. Without
  (segmentation results, compressed RLEs): area = the mask's area, a missing ``bbox`` the
  mask's box.
- The cap is per image, in ``LVISResults``: images in order of first appearance, an image with
  more than ``max_dets`` detections keeps its best by a stable sort on score (ties in file
  order), ids 1..N in that order. ``LVISEval`` matches every detection of an (image, category):
  ``params.max_dets`` only names the AR results ("AR@300").
- Annotations sharing an id all become the last one with that id (lvis-api loads through a
  dict by id), grouped by that one's image and category.
- Precision and recall are pycocotools': ``tp / (fp + tp + eps)``, the envelope from the right,
  ``searchsorted(recall, rec_thrs, "left")``, precision 0 past the last recall reached, recall
  the last one reached, -1 for a category without ground truth in an area range.
- Summary: each number is the mean of the selected cells > -1 (numpy's summation order);
  APr/APc/APf over the categories of each frequency group (by position in ``params.cat_ids``),
  AR over all categories; AP50/AP75 select the threshold by exact float equality.
- ``params.img_ids`` is sorted and made unique by ``evaluate()``; ``params.cat_ids`` is used as
  given: its order (and any repeat) is the category axis of ``eval``.
- ``params.use_cats = 0`` makes lvis-api evaluate nothing (it looks categories up as -1): here
  it raises ``ValueError``.

Different from lvis-api, where lvis-api fails or cannot be given the input: an empty results
list evaluates (AP 0; lvis-api raises IndexError); missing ``neg_category_ids`` /
``not_exhaustive_category_ids`` / ``frequency``, detections on images not in the ground truth
and non-finite boxes or scores raise a clear ``AnnotationError``; detections of category ids not
in the ground truth give a warning (lvis-api ignores them silently; ``fastiou lvis`` makes them
an error); result dicts passed as a list are not modified; lvis-api's per-image intermediates
(``eval_imgs``, ``ious``, ``eval["dt_pointers"]``) are not kept.
"""

from ..coco import AnnotationError
from ._eval import LVISEval, Params
from ._lvis import LVIS, LVISResults

__all__ = ["LVIS", "LVISResults", "LVISEval", "Params", "AnnotationError"]
