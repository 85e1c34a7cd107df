"""Panoptic quality (PQ, SQ, RQ; Kirillov et al. 2019) with panopticapi's numbers.

- :func:`pq_compute`: panopticapi's ``pq_compute`` over COCO panoptic JSON + PNG folders.
- :class:`PanopticQuality`: the same over id maps in memory, image by image (merge, pickle).
- :func:`panoptic_quality`: torchmetrics' ``PanopticQuality`` for ``(category, instance)`` maps.
- :func:`pair_counts`: the kernel, the area of every (ground-truth id, predicted id) pair.
"""

from ._api import ImagePair, load_pairs, pq_compute
from ._pairs import PanopticDataError, pair_counts
from ._quality import ImageStats, PanopticQuality, match_image
from ._torchmetrics import panoptic_quality

__all__ = [
    "ImagePair",
    "ImageStats",
    "PanopticDataError",
    "PanopticQuality",
    "load_pairs",
    "match_image",
    "pair_counts",
    "panoptic_quality",
    "pq_compute",
]
