"""Semantic segmentation: per-pixel confusion counts, the metrics built on them, the dataset
accumulator, folder evaluation (``_files``) and Dask scale-out (``_dask``, public as
:mod:`fastiou.dask`).

The backends: ``_reference`` (numpy), ``_cython`` (+ ``_ckernels.pyx``), ``_numba``, ``_cuda``;
``_common`` holds the label plan (ignore values, lookup table) they share.
"""

from ._api import (
    ConfusionMatrix,
    confusion_matrix,
    multilabel_confusion_matrix,
    segmentation_metrics,
)

__all__ = [
    "ConfusionMatrix",
    "confusion_matrix",
    "multilabel_confusion_matrix",
    "segmentation_metrics",
]
