"""fastiou: fast overlap numbers for computer vision.

Box IoU and its family (GIoU, DIoU, CIoU, IoA) as pairwise or aligned matrices, on numpy,
Cython (thread pool), numba and numba-CUDA backends picked per call. ``import fastiou`` does not
import numba: the numba backends load on first use.
"""

from . import boxes as _boxes
from ._core.config import set_num_threads
from ._core.dispatch import BackendStatus, backends, use_backend
from .boxes import *  # noqa: F403 (the box family's API: its __all__, listed once, there)
from .masks import mask_iou
from .nms import batched_nms, nms, soft_nms
from .semantic import (
    ConfusionMatrix,
    confusion_matrix,
    multilabel_confusion_matrix,
    segmentation_metrics,
)

__version__ = "0.1.0"

__all__ = [
    "BackendStatus",
    "ConfusionMatrix",
    "backends",
    "batched_nms",
    "confusion_matrix",
    "mask_iou",
    "multilabel_confusion_matrix",
    "nms",
    "segmentation_metrics",
    "set_num_threads",
    "soft_nms",
    "use_backend",
]
__all__ += _boxes.__all__  # the box family's names (a form type checkers read)
