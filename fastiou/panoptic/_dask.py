"""Panoptic quality of COCO panoptic folders on a Dask cluster (a ``dask.bag`` of images).

The client reads the two JSON files; each partition of images is read, counted and matched on a
worker (the PNGs must be readable there under the same paths), which returns one small
:class:`PanopticQuality` (four numbers per category); those are merged in a tree. Float order:
partition sums are added instead of panopticapi's per-process sums, so PQ/SQ can differ from
panopticapi in the last bits (at most ~1e-15, documented bound 1e-12).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from ._api import evaluate_pairs, load_pairs
from ._quality import PanopticQuality


def _partition(pairs, categories, decoder: str, backend: str) -> PanopticQuality:
    quality = PanopticQuality(categories)
    index = quality._categories.index
    for stats in evaluate_pairs(list(pairs), index, jobs=1, decoder=decoder, backend=backend):
        quality.add(stats)
    return quality


def _merge(parts) -> PanopticQuality:
    parts = list(parts)
    return functools.reduce(PanopticQuality.merge, parts[1:], parts[0])


def pq_compute(
    gt_json_file: str | os.PathLike,
    pred_json_file: str | os.PathLike,
    gt_folder: str | os.PathLike | None = None,
    pred_folder: str | os.PathLike | None = None,
    *,
    npartitions: int | None = None,
    split_every: int = 8,
    decoder: str = "auto",
    backend: str = "auto",
    compute: bool = True,
) -> Any:
    """:func:`fastiou.panoptic.pq_compute` on the current Dask scheduler.

    Parameters
    ----------
    npartitions : int, optional
        Partitions of images (default: about 8 images each, at most 1000).
    compute : bool
        False: return the delayed merged :class:`PanopticQuality` instead of the result dict.

    Returns
    -------
    dict (panopticapi's result), or a dask object of the accumulator if ``compute=False``.
    """
    try:
        import dask.bag
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise ImportError("fastiou.dask needs dask: pip install 'fastiou[dask]'") from e
    categories, pairs = load_pairs(gt_json_file, pred_json_file, gt_folder, pred_folder)
    if not pairs:
        empty = PanopticQuality(categories)
        return empty.compute() if compute else empty
    partitions = npartitions or max(1, min(1000, len(pairs) // 8))
    bag = dask.bag.from_sequence(pairs, npartitions=min(partitions, len(pairs)))
    merged = bag.reduction(
        functools.partial(_partition, categories=categories, decoder=decoder, backend=backend),
        _merge,
        split_every=split_every,
    )
    return merged.compute().compute() if compute else merged
