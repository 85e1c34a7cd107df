"""Scale-out over Dask: every family's dataset-level entry points that run on a Dask cluster.

Workers read and count their own data; only the per-class sums travel. Needs
``pip install 'fastiou[dask]'``.
"""

from .panoptic._dask import pq_compute
from .semantic._dask import confusion_matrix, confusion_matrix_files, tree_sum

__all__ = ["confusion_matrix", "confusion_matrix_files", "pq_compute", "tree_sum"]
