"""Panoptic quality: the kernels behind dispatch, and ``pq_compute`` over COCO panoptic files."""

from __future__ import annotations

import functools
import itertools
import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from .._core import config as _config
from .._core import dispatch as _dispatch
from . import _png
from ._pairs import PanopticDataError, pair_counts
from ._quality import ImageStats, PanopticQuality, image_stats

# ----------------------------------------------------------------------------- files


class ImagePair(NamedTuple):
    """One image to evaluate: its id, the two PNG paths, the two ``segments_info``."""

    image_id: Any
    gt_png: str
    pred_png: str
    gt_segments: list
    pred_segments: list


def _read_json(path) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PanopticDataError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise PanopticDataError(f"{path} has no 'annotations' list (COCO panoptic format)")
    return data


def _by_image(annotations: list, path) -> dict:
    out = {}
    for a in annotations:
        if not isinstance(a, dict) or "image_id" not in a or "file_name" not in a:
            raise PanopticDataError(f"{path}: an annotation needs 'image_id' and 'file_name'")
        if a["image_id"] in out:
            raise PanopticDataError(f"{path}: image {a['image_id']} has two annotations")
        out[a["image_id"]] = a
    return out


def load_pairs(gt_json_file, pred_json_file, gt_folder=None, pred_folder=None):
    """The categories and the :class:`ImagePair` list of two COCO panoptic JSON files.

    As panopticapi: the folders default to the JSON paths without ``.json``; every ground-truth
    image needs a prediction (predictions of other images are ignored). An image with two
    annotations in either file is an error (see :func:`pq_compute`).
    """
    gt_json, pred_json = _read_json(gt_json_file), _read_json(pred_json_file)
    if not isinstance(gt_json.get("categories"), list):
        raise PanopticDataError(f"{gt_json_file} has no 'categories' list")
    gt_folder = str(gt_json_file).replace(".json", "") if gt_folder is None else gt_folder
    pred_folder = str(pred_json_file).replace(".json", "") if pred_folder is None else pred_folder
    for folder, what in ((gt_folder, "ground truth"), (pred_folder, "predicted")):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"folder {folder} with {what} segmentations does not exist")
    gt_by_image = _by_image(gt_json["annotations"], gt_json_file)
    pred_by_image = _by_image(pred_json["annotations"], pred_json_file)
    missing = [i for i in gt_by_image if i not in pred_by_image]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise PanopticDataError(
            f"{pred_json_file} has no prediction for {len(missing)} ground-truth image(s): {shown}"
        )
    pairs = []
    for image_id, gt in gt_by_image.items():
        pred = pred_by_image[image_id]
        pairs.append(
            ImagePair(
                image_id,
                os.path.join(gt_folder, gt["file_name"]),
                os.path.join(pred_folder, pred["file_name"]),
                gt.get("segments_info", []),
                pred.get("segments_info", []),
            )
        )
    return gt_json["categories"], pairs


def _read(path: str, image_id, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"image {image_id}: {what} PNG {path} does not exist") from None


def _decode(data: bytes, decode, path: str, image_id, what: str):
    try:
        return decode(data)
    except Exception as e:  # noqa: BLE001 - every decoder has its own error types
        raise PanopticDataError(f"image {image_id}: cannot decode {what} PNG {path}: {e}") from e


def _fused(pair: ImagePair, gt_data: bytes, pred_data: bytes):
    """Pair counts straight from the PNG streams (inflate, then unfilter + count in one pass),
    or None when a PNG is not 8-bit RGB(A) or the sizes differ (the full decoders report it)."""
    from . import _cython

    def inflate(slot: int):
        return lambda data: _png.scanlines(data, slot)  # reused buffers: consumed right here

    gt = _decode(gt_data, inflate(0), pair.gt_png, pair.image_id, "ground-truth")
    pred = _decode(pred_data, inflate(1), pair.pred_png, pair.image_id, "predicted")
    if gt is None or pred is None or (gt.height, gt.width) != (pred.height, pred.width):
        return None
    try:
        return _cython.pair_counts_scanlines(gt.raw, gt.bpp, pred.raw, pred.bpp, gt.width)
    except ValueError as e:
        path = pair.gt_png if "ground truth" in str(e) else pair.pred_png
        raise PanopticDataError(f"image {pair.image_id}: cannot decode {path}: {e}") from None


def evaluate_pair(pair: ImagePair, index: dict[int, int], decode, backend: str) -> ImageStats:
    """Read, count and match one image (runs in a worker thread: the heavy parts drop the GIL).

    ``decode`` None: the fused path (:func:`_fused`) where it applies, else Pillow.
    """
    gt_data = _read(pair.gt_png, pair.image_id, "ground-truth")
    pred_data = _read(pair.pred_png, pair.image_id, "predicted")
    if decode is None:
        counted = _fused(pair, gt_data, pred_data)
        if counted is not None:
            return image_stats(*counted, pair.gt_segments, pair.pred_segments, index,
                               pair.image_id, backend)  # fmt: skip
        decode = _png.decoder("pillow")
    gt, gc = _decode(gt_data, decode, pair.gt_png, pair.image_id, "ground-truth")
    pred, pc = _decode(pred_data, decode, pair.pred_png, pair.image_id, "predicted")
    if gt.ndim == 3 and pred.ndim == 3:
        keys, counts = pair_counts(gt, pred, backend=backend, image_id=pair.image_id,
                                   channels=(gc, pc))  # fmt: skip
    else:  # grayscale PNGs: the value is the id (panopticapi's rgb2id of a 2-D array)
        gt = gt if gt.ndim == 2 else _png.ids_of(gt, gc)
        pred = pred if pred.ndim == 2 else _png.ids_of(pred, pc)
        keys, counts = pair_counts(gt, pred, backend=backend, image_id=pair.image_id)
    return image_stats(
        keys, counts, pair.gt_segments, pair.pred_segments, index, pair.image_id, backend
    )


# Images of one pool job per thread. Each thread holds one image's files and scanlines at a time,
# so memory does not grow with this; fewer jobs wait less on the last image of each (bench
# "panoptic", 2 threads: 16 -> 64 per thread, 98 -> 93 ms).
_IMAGES_PER_THREAD = 64


def _evaluate_on_pool(
    pairs: Iterator[ImagePair], index: dict[int, int], inflater, jobs: int, backend: str
) -> Iterator[ImageStats]:
    """Batches of images, each image read, inflated, counted and matched on fastiou's pool
    without the GIL (``_cython.evaluate_pngs``); the few it leaves over (not 8-bit RGB(A), bad
    data, a file it cannot read) go through :func:`evaluate_pair`, which decodes them otherwise
    or raises the error naming them."""
    from . import _cython

    while batch := list(itertools.islice(pairs, _IMAGES_PER_THREAD * jobs)):
        results = _cython.evaluate_pngs(
            [os.fsdecode(p.gt_png) for p in batch],  # paths: read by the kernel
            [os.fsdecode(p.pred_png) for p in batch],
            [p.gt_segments for p in batch],
            [p.pred_segments for p in batch],
            index,
            inflater,
            jobs,
        )
        for pair, stats in zip(batch, results, strict=True):
            yield ImageStats(*stats) if stats is not None else evaluate_pair(pair, index, None,
                                                                             backend)  # fmt: skip


_PROBE_IMAGES = 8  # images timed on the calling thread before threads are started
_THREADS_MIN_SECONDS = 4e-4  # per image: below this, one thread is faster (bench "panoptic")


def evaluate_pairs(
    pairs: Sequence[ImagePair],
    index: dict[int, int],
    *,
    jobs: int | None = None,
    decoder: str = "auto",
    backend: str = "auto",
) -> Iterator[ImageStats]:
    """Each image's :class:`ImageStats`, in order; ``jobs`` threads, a few images in flight.

    8-bit RGB(A) PNGs go to fastiou's pool (:func:`_evaluate_on_pool`) where libdeflate is
    found; otherwise (or with another decoder) images run in Python threads.
    """
    fused = decoder == "auto" and _dispatch.select("panoptic", backend, 0, False)[0] == "cython"
    decode = None if fused else _png.decoder(decoder)
    chosen = jobs is not None
    jobs = _config.num_threads() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    pairs = iter(pairs)
    inflater = _png.libdeflate() if fused else None
    if inflater is not None:
        yield from _evaluate_on_pool(pairs, index, inflater, jobs, backend)
        return
    if jobs > 1 and not chosen:
        # Python threads. By default the first images run on this thread, timed: small images
        # (~0.2 ms each) then stay here, where handing them to threads costs more than it saves
        # (20 images of 120x160: 4.3 ms on one thread, 9.4 ms on two); 480x640 ones (~0.6 ms)
        # go parallel.
        first = list(itertools.islice(pairs, _PROBE_IMAGES))
        start = time.perf_counter()
        for pair in first:
            yield evaluate_pair(pair, index, decode, backend)
        spent = time.perf_counter() - start
        if len(first) < _PROBE_IMAGES or spent < _THREADS_MIN_SECONDS * len(first):
            jobs = 1
    if jobs == 1:
        for pair in pairs:
            yield evaluate_pair(pair, index, decode, backend)
        return
    window = 2 * jobs  # decoded maps of at most this many images are alive at once
    with ThreadPoolExecutor(jobs, thread_name_prefix="fastiou-panoptic") as pool:
        pending: deque = deque()
        try:
            for pair in pairs:
                pending.append(pool.submit(evaluate_pair, pair, index, decode, backend))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@functools.cache
def _cpu_count() -> int:
    return multiprocessing.cpu_count()  # as panopticapi (os.cpu_count(); ~1 ms a call)


def chunk_sizes(n: int, parts: int) -> list[int]:
    """The sizes of ``np.array_split(range(n), parts)`` (how panopticapi shares out images)."""
    base, extra = divmod(n, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def pq_compute(
    gt_json_file: str | os.PathLike,
    pred_json_file: str | os.PathLike,
    gt_folder: str | os.PathLike | None = None,
    pred_folder: str | os.PathLike | None = None,
    *,
    jobs: int | None = None,
    decoder: str = "auto",
    backend: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Panoptic quality of COCO panoptic predictions: panopticapi's ``pq_compute``, faster.

    Parameters
    ----------
    gt_json_file, pred_json_file : path
        COCO panoptic JSON files (``annotations`` with ``image_id``, ``file_name`` and
        ``segments_info``; the ground truth also ``categories`` with ``isthing``).
    gt_folder, pred_folder : path, optional
        Folders of the PNGs (``R + 256 G + 256² B`` encodes the segment id); default: the JSON
        path without ``.json``, as panopticapi.
    jobs : int, optional
        Threads (images evaluated at once). Default: the usable cores (``set_num_threads``).
        Without libdeflate, or with another decoder, images run in Python threads, and by
        default one thread when the first 8 images take under 0.4 ms each.
    decoder : str
        "auto": fastiou's own path for 8-bit RGB(A) PNGs (each image read, inflated by
        libdeflate, counted and matched in one task on fastiou's pool; without libdeflate the
        Python path inflates with zlib), Pillow for other PNGs; or a full decoder:
        "imagecodecs", "pyspng", "opencv", "pillow".
    progress : callable, optional
        Called with 1 after each image.

    Returns
    -------
    dict
        ``{"All"|"Things"|"Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id:
        {"pq", "sq", "rq"}}}``, equal to panopticapi's numbers (see ``fastiou.panoptic._quality``
        for the rules and the float summation order). Nothing is printed.

    Raises
    ------
    PanopticDataError (a ValueError)
        A segment in a predicted PNG and not in its ``segments_info`` or the reverse, an unknown
        category, PNGs of different sizes, a ground-truth image without a prediction (named;
        panopticapi raises there too), an image with two annotations in either file, bad JSON;
        the message names the image and the segment.
    FileNotFoundError
        A missing JSON file, folder or PNG (named).

    Notes
    -----
    The images evaluated are the ground truth's. Predictions of images that are not in the
    ground truth are ignored, as panopticapi ignores them: a prediction file may cover more
    images than the ground truth evaluated (a subset, a split). An image listed twice is an
    error here, where panopticapi is silent: it would count a repeated ground-truth image twice
    and keep the last of two predictions of an image.
    """
    categories, pairs = load_pairs(gt_json_file, pred_json_file, gt_folder, pred_folder)
    quality = accumulate(categories, pairs, jobs=jobs, decoder=decoder, backend=backend,
                         progress=progress)  # fmt: skip
    return quality.compute()


def accumulate(
    categories,
    pairs: Sequence[ImagePair],
    *,
    jobs: int | None = None,
    decoder: str = "auto",
    backend: str = "auto",
    progress: Callable[[int], None] | None = None,
    chunks: int | None = None,
) -> PanopticQuality:
    """The :class:`PanopticQuality` of ``pairs`` (see :func:`pq_compute` for the arguments).

    The images' IoUs are summed in ``chunks`` consecutive groups (default ``os.cpu_count()``,
    as panopticapi's process pool) whose sums are then added in order: panopticapi's float
    order, so its numbers come out bit for bit.
    """
    total = PanopticQuality(categories)
    index = total._categories.index
    stats = evaluate_pairs(pairs, index, jobs=jobs, decoder=decoder, backend=backend)
    for size in chunk_sizes(len(pairs), chunks or _cpu_count()):
        part = PanopticQuality(categories)
        for _ in range(size):
            part.add(next(stats))
            if progress is not None:
                progress(1)
        total = total + part
    return total
