"""Instance masks: pycocotools' run-length encoding (RLE) on packed arrays of many masks.

:class:`RLEs` holds many masks in four arrays; :func:`iou_groups` is the mask IoU engine of the
COCO evaluation (many detections x ground-truth
groups in one call); :func:`mask_iou` is the N x M IoU of dense masks (numpy, torch, cupy) or of
RLEs, on the numpy, Cython and CUDA backends.
"""

from ._api import mask_iou
from ._rles import RLEs, iou_groups, iou_matrix

__all__ = ["RLEs", "iou_groups", "iou_matrix", "mask_iou"]
