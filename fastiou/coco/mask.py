"""TEMPORARY in this branch: ``pycocotools.mask`` re-exported (replaced at merge by the masks
engineer's own ``fastiou.coco.mask``, the pycocotools.mask drop-in). The COCO evaluation code
uses only pycocotools.mask's public API through this module: frPyObjects, merge, area, toBbox,
decode, iou (and encode for the array front end)."""

from pycocotools.mask import area, decode, encode, frPyObjects, iou, merge, toBbox

__all__ = ["area", "decode", "encode", "frPyObjects", "iou", "merge", "toBbox"]
