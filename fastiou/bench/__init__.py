"""The benchmark registry and its workloads: what ``fastiou bench`` and the pytest-benchmark suite
in ``bench/`` time. Importing this package registers every family's workloads."""

from . import boxes, coco, lvis, masks, nms, panoptic, semantic  # noqa: F401 - registers workloads
from ._registry import (
    IMPLEMENTATIONS,
    WORKLOADS,
    Data,
    Implementation,
    Row,
    Workload,
    implementation,
    markdown,
    random_boxes,
    run,
    time_call,
    workload,
)

__all__ = [
    "IMPLEMENTATIONS",
    "WORKLOADS",
    "Data",
    "Implementation",
    "Row",
    "Workload",
    "implementation",
    "markdown",
    "random_boxes",
    "run",
    "time_call",
    "workload",
]
