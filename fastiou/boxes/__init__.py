"""Box overlaps (IoU, GIoU, DIoU, CIoU, IoA; pairwise and aligned), box_area and box_convert.

The API and validation are in ``_api``; the scalar formulas shared by the numba CPU and CUDA
kernels in ``_formulas``; the backends in ``_reference`` (numpy), ``_cython`` (+ ``_ckernels.pyx``),
``_numba`` and ``_cuda``.
"""

from ._api import (
    box_area,
    box_convert,
    box_ioa,
    box_iou,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
)

__all__ = [
    "box_area",
    "box_convert",
    "box_ioa",
    "box_iou",
    "complete_box_iou",
    "distance_box_iou",
    "generalized_box_iou",
]
