"""Confusion counts on a Dask cluster: over dask arrays, and over a bag of label-map files.

Both run fastiou's kernel once per piece of data (an array block, or a partition of file pairs)
where the data lives, and add the small ``[C, C]`` matrices up in a tree (``split_every`` at a
time), so only matrices travel. Needs ``dask`` (``pip install fastiou[dask]``; ``dask[distributed]``
for a cluster). Computations use the current Dask scheduler: create a ``distributed.Client`` first
to run on a cluster.

Example::

    from dask.distributed import Client
    import dask.array as da
    import fastiou.dask

    client = Client("tcp://scheduler:8786")
    target = da.from_zarr("labels.zarr")          # e.g. a huge 3-D volume
    prediction = da.from_zarr("prediction.zarr")
    matrix = fastiou.dask.confusion_matrix(prediction, target, 5, ignore_index=255)
    fastiou.segmentation_metrics(matrix)["miou"]
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _files as _seg_files
from ._api import CountOptions, _Input, _score_axis, _Settings, _settings

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _dask():
    try:
        import dask
        import dask.array
        import dask.bag
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise ImportError(
            "fastiou.dask needs dask: pip install 'fastiou[dask]' (or 'dask[distributed]')"
        ) from e
    return dask


def _block_counts(prediction: np.ndarray, target: np.ndarray, options: dict) -> np.ndarray:
    from ._api import confusion_matrix

    return confusion_matrix(prediction, target, **options)


def _add(*matrices: np.ndarray) -> np.ndarray:
    return functools.reduce(np.add, matrices)


def tree_sum(items: Sequence[Any], split_every: int = 8):
    """Add delayed matrices (or Totals) in a tree: ``split_every`` at a time, level by level."""
    dask = _dask()
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    items = list(items)
    while len(items) > 1:
        items = [
            dask.delayed(_add, pure=True)(*items[i : i + split_every])
            for i in range(0, len(items), split_every)
        ]
    return items[0]


def confusion_matrix(
    prediction: Any,
    target: Any,
    num_classes: int,
    *,
    split_every: int = 8,
    compute: bool = True,
    **options: Unpack[CountOptions],
) -> Any:
    """:func:`fastiou.confusion_matrix` of dask arrays (or anything ``dask.array.asarray`` takes).

    The prediction is rechunked like the target (score arrays: one chunk along the class axis),
    each block pair is counted by fastiou's kernels on a worker, and the block matrices are
    added in a tree of ``split_every``-way sums. ``options``: those of
    :func:`fastiou.confusion_matrix` (``ignore_index``, ``label_map``, ``reduce_zero_label``,
    ``class_axis``, ``backend``), checked here before anything is scheduled.

    Returns
    -------
    numpy.ndarray, int64 [C, C], or a ``dask.delayed`` object of it if ``compute=False``.
    """
    dask = _dask()
    da = dask.array
    settings, options = _worker_options("confusion_matrix", num_classes, options)
    prediction, target = da.asarray(prediction), da.asarray(target)
    p, t = _Input(prediction._meta, "prediction"), _Input(target._meta, "target")
    p.shape, t.shape = prediction.shape, target.shape
    if p.floating:
        axis = _score_axis(p, t, settings)
        chunks = target.chunks[:axis] + ((prediction.shape[axis],),) + target.chunks[axis:]
        prediction = prediction.rechunk(chunks)
    else:
        axis = None
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction {list(prediction.shape)} and target {list(target.shape)} must have "
                "the same shape"
            )
        prediction = prediction.rechunk(target.chunks)
    options["class_axis"] = axis
    p_blocks = prediction.to_delayed()
    if axis is not None:
        p_blocks = np.take(p_blocks, 0, axis=axis)
    count = dask.delayed(_block_counts, pure=True)
    blocks = [
        count(pb, tb, options)
        for pb, tb in zip(p_blocks.ravel(), target.to_delayed().ravel(), strict=True)
    ]
    if not blocks:
        return np.zeros((num_classes, num_classes), np.int64)
    total = tree_sum(blocks, split_every)
    return total.compute() if compute else total


def _worker_options(caller: str, num_classes: Any, options: dict) -> tuple[_Settings, dict]:
    """Check ``confusion_matrix``'s keyword options on the client; return the settings and the
    options each worker's call takes (checked values, label map as a plain dict)."""
    unknown = sorted(set(options) - set(CountOptions.__annotations__))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments: {', '.join(unknown)}")
    settings = _settings(
        num_classes,
        options.get("ignore_index"),
        options.get("label_map"),
        options.get("reduce_zero_label", False),
        options.get("class_axis"),
    )
    label_map = settings.label_map
    if label_map is not None:
        label_map = dict(zip(label_map[0].tolist(), label_map[1].tolist(), strict=True))
    return settings, {
        "num_classes": settings.num_classes,
        "ignore_index": settings.ignores,
        "label_map": label_map,
        "reduce_zero_label": settings.reduce_zero_label,
        "class_axis": settings.class_axis,
        "backend": options.get("backend", "auto"),
    }


def _count_partition(pairs, options: dict, skip_bad: bool) -> _seg_files.Totals:
    return _seg_files.count_pairs(pairs, options, skip_bad)


def _merge(parts) -> _seg_files.Totals:
    parts = list(parts)
    return functools.reduce(_seg_files.Totals.add, parts[1:], parts[0])


def confusion_matrix_files(
    pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]] | Iterable[_seg_files.Pair],
    num_classes: int,
    *,
    skip_bad: bool = False,
    npartitions: int | None = None,
    split_every: int = 8,
    compute: bool = True,
    **options: Unpack[CountOptions],
) -> Any:
    """Confusion counts of (prediction file, ground-truth file) pairs, as a ``dask.bag``.

    Each partition of pairs is read (PNG or .npy, see ``fastiou seg``) and counted on a worker;
    the partitions' totals are added in a tree.

    Parameters
    ----------
    pairs : iterable of (prediction_path, target_path)
        The files; they must be readable by the workers under these paths.
    skip_bad : bool
        Skip unreadable, mis-sized or out-of-range files and report them, instead of failing
        on the first one (a ``BadFile`` error naming it).
    npartitions : int, optional
        Number of partitions (default: about 4 pairs per partition, at most 1000 partitions).
    split_every : int
        Partition totals added at a time (at least 2).
    compute : bool
        False: return the delayed total instead of computing it.
    **options
        Those of :func:`fastiou.confusion_matrix` (``ignore_index``, ``label_map``,
        ``reduce_zero_label``, ``class_axis``, ``backend``), checked before anything is
        scheduled.

    Returns
    -------
    Totals
        ``.matrix`` (int64 [C, C]), ``.images`` counted and ``.skipped`` (BadFile errors), or a
        delayed of it if ``compute=False``.
    """
    dask = _dask()
    _, options = _worker_options("confusion_matrix_files", num_classes, options)
    items = [
        p if isinstance(p, _seg_files.Pair) else _seg_files.Pair(str(p[1]), str(p[0]), str(p[1]))
        for p in pairs
    ]
    if not items:
        return _seg_files.Totals(np.zeros((num_classes, num_classes), np.int64), 0, [])
    partitions = npartitions or max(1, min(1000, len(items) // 4))
    bag = dask.bag.from_sequence(items, npartitions=min(partitions, len(items)))
    result = bag.reduction(
        functools.partial(_count_partition, options=options, skip_bad=skip_bad),
        _merge,
        split_every=split_every,
    )
    return result.compute() if compute else result
