"""Many pycocotools RLE masks packed in four arrays, their validation, and the IoU engine seam.

pycocotools' RLE: a mask of h x w pixels read in column-major order (down each column, then the
next column) as runs that alternate background / foreground, starting with background (a first
run of 0 when the first pixel is set). :class:`RLEs` packs n of them::

    counts   uint32 [sum of runs]  every mask's runs, one mask after another
    offsets  int64  [n + 1]        mask i's runs are counts[offsets[i]:offsets[i + 1]]
    heights  int64  [n]
    widths   int64  [n]

Every constructor validates before a kernel reads: sizes are non-negative with h * w < 2^32
(pycocotools counts in uint32), each mask's runs sum to its h * w, compressed strings are well
formed. Anything else is a ValueError (or a TypeError for the wrong kind of object) naming the
mask. The arrays are read-only, so what is computed from them (areas, boxes) is cached.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core import config as _config


class _Kernels:
    """The compiled extension (``_cython.pyx``), imported on first use: ``import fastiou`` works
    without it (a source checkout), and using a mask function then says what is missing."""

    def __getattr__(self, name: str) -> Any:
        try:
            from . import _cython
        except ImportError as e:
            raise ImportError(
                "fastiou.masks needs its compiled extension (fastiou.masks._cython), which is "
                "not built here: `pip install .`, or `python setup.py build_ext --inplace` in a "
                "source checkout"
            ) from e
        value = getattr(_cython, name)
        setattr(self, name, value)  # later reads find it directly: no import per call
        return value


_ext = _Kernels()

MAX_PIXELS = 2**32 - 1  # pycocotools' run lengths and areas are uint32
# Pixels per call below which the Cython kernels run on one thread (waking a thread team costs
# more than it saves on a few small masks).
PARALLEL_MIN_PIXELS = 1 << 20
# Runs below which areas and boxes are computed on one thread (about 0.2 ms of work)
MEASURE_PARALLEL_RUNS = 1 << 16


def threads_for(work: int, threshold: int = _config.PARALLEL_MIN_WORK) -> int:
    """One thread for small work, else the configured thread count (the kernels run on
    fastiou's pool, which a fork child rebuilds on first use)."""
    return 1 if work < threshold else _config.num_threads()


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _index_array(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, not {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _sizes(sizes: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, 2] (h, w) -> int64 heights, widths, checked."""
    try:
        a = np.asarray(sizes) if n else np.zeros((0, 2), np.int64)
    except ValueError:
        a = None
    if a is None or a.shape != (n, 2) or a.dtype.kind not in "iu":
        for i, size in enumerate(sizes):
            s = np.asarray(size)
            if s.shape != (2,) or s.dtype.kind not in "iu":
                raise ValueError(f"mask {i}: 'size' must be [height, width] integers, not {size!r}")
        raise ValueError("'size' must be [height, width] integers")  # pragma: no cover
    a = a.astype(np.int64)
    check_sizes(a[:, 0], a[:, 1])
    return np.ascontiguousarray(a[:, 0]), np.ascontiguousarray(a[:, 1])


def check_sizes(heights: np.ndarray, widths: np.ndarray) -> None:
    negative = (heights < 0) | (widths < 0)
    if negative.any():
        i = np.flatnonzero(negative)[0]
        raise ValueError(f"mask {i}: negative size {heights[i]} x {widths[i]}")
    big = heights.astype(np.uint64) * widths.astype(np.uint64) > MAX_PIXELS
    if big.any():
        i = np.flatnonzero(big)[0]
        raise ValueError(
            f"mask {i}: {heights[i]} x {widths[i]} has 2^32 pixels or more (RLE counts are uint32)"
        )


def _uncompressed(counts: Any, i: int) -> np.ndarray:
    a = np.asarray(counts)
    if a.ndim != 1:
        raise ValueError(f"mask {i}: uncompressed 'counts' must be a flat list of run lengths")
    if a.size == 0:
        return np.zeros(0, np.uint32)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"mask {i}: run lengths must be integers, not {a.dtype}")
    if a.min() < 0 or a.max() > MAX_PIXELS:
        raise ValueError(f"mask {i}: run lengths must lie in 0 .. 2^32 - 1")
    return a.astype(np.uint32)


def _string(counts: bytes | str, i: int) -> bytes:
    if isinstance(counts, str):
        try:
            return counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"mask {i}: corrupt compressed RLE string (not ASCII)") from None
    return counts


def _parse_strings(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    chars = np.frombuffer(b"".join(strings), np.uint8)
    return _parse_chars(chars, np.fromiter(map(len, strings), np.int64, len(strings)))


def _parse_chars(chars: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of compressed strings concatenated in ``chars`` (uint8), ``lengths[i]`` each."""
    char_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=char_offsets[1:])
    if char_offsets[-1] != chars.shape[0]:
        raise ValueError(f"the lengths add up to {char_offsets[-1]}, not {chars.shape[0]} chars")
    threads = threads_for(int(char_offsets[-1]), PARALLEL_MIN_PIXELS)
    return _ext.from_strings(chars, char_offsets, threads)


class RLEs:
    """n pycocotools RLE masks in four arrays (see the module docstring).

    Parameters
    ----------
    counts : array of uint32 (or integers in 0 .. 2^32 - 1)
        Every mask's runs, concatenated.
    offsets : int array [n + 1]
        Mask i's runs are ``counts[offsets[i]:offsets[i + 1]]``.
    heights, widths : int arrays [n]

    Raises
    ------
    ValueError
        When the arrays disagree or a mask's runs do not sum to its h * w.
    """

    __slots__ = ("counts", "offsets", "heights", "widths", "_cache")

    def __init__(self, counts: Any, offsets: Any, heights: Any, widths: Any):
        counts = np.asarray(counts)
        if counts.ndim != 1 or (counts.size and counts.dtype.kind not in "iu"):
            raise ValueError("counts must be a one-dimensional array of run lengths")
        if counts.size and counts.dtype != np.uint32:
            if counts.min() < 0 or counts.max() > MAX_PIXELS:
                raise ValueError("run lengths must lie in 0 .. 2^32 - 1")
        offsets = _index_array(offsets, "offsets")
        heights = _index_array(heights, "heights")
        widths = _index_array(widths, "widths")
        n = heights.shape[0]
        if widths.shape[0] != n or offsets.shape[0] != n + 1:
            raise ValueError(
                f"offsets must have n + 1 entries and heights, widths n: got {offsets.shape[0]}, "
                f"{n}, {widths.shape[0]}"
            )
        if offsets[0] != 0 or offsets[-1] != counts.shape[0] or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must rise from 0 to len(counts)")
        check_sizes(heights, widths)
        self._set(np.ascontiguousarray(counts, np.uint32), offsets, heights, widths)
        self.check_runs()

    def _set(self, counts, offsets, heights, widths) -> None:
        self.counts = _readonly(counts)
        self.offsets = _readonly(offsets)
        self.heights = _readonly(heights)
        self.widths = _readonly(widths)
        self._cache: dict[str, Any] = {}

    @classmethod
    def _trusted(cls, counts, offsets, heights, widths) -> RLEs:
        """From arrays a kernel just made (valid by construction): no checks."""
        self = cls.__new__(cls)
        self._set(counts, offsets, heights, widths)
        return self

    def check_runs(self) -> None:
        """Raise ValueError unless every mask's runs sum to its h * w."""
        sums = _ext.run_sums(self.counts, self.offsets)
        pixels = self.heights.astype(np.uint64) * self.widths.astype(np.uint64)
        wrong = sums != pixels
        if wrong.any():
            i = np.flatnonzero(wrong)[0]
            raise ValueError(
                f"mask {i}: its runs sum to {sums[i]} but its size {self.heights[i]} x "
                f"{self.widths[i]} has {pixels[i]} pixels (corrupt RLE)"
            )

    def __len__(self) -> int:
        return self.heights.shape[0]

    def __repr__(self) -> str:
        return f"RLEs({len(self)} masks, {self.counts.shape[0]} runs)"

    # ---- conversions ------------------------------------------------------------------------

    @classmethod
    def from_coco(cls, objs: Sequence[dict]) -> RLEs:
        """Pack pycocotools-style RLE dicts ``{"size": [h, w], "counts": ...}``; counts may be
        the compressed string (bytes or str) or the list of runs (uncompressed RLE)."""
        if type(objs) is list:
            # the common case, in one compiled pass
            packed = _ext.pack_coco(objs, _config.num_threads(), PARALLEL_MIN_PIXELS)
            if packed is not None:
                return cls._trusted(*packed)
        if isinstance(objs, dict):
            raise TypeError("expected a list of RLE dicts, got one dict")
        objs = list(objs)
        try:
            sizes = [obj["size"] for obj in objs]
            counts = [obj["counts"] for obj in objs]
        except (KeyError, TypeError, IndexError):
            for i, obj in enumerate(objs):
                if not isinstance(obj, dict):
                    raise TypeError(
                        f"mask {i}: an RLE must be a dict with 'size' and 'counts', "
                        f"not {type(obj).__name__}"
                    ) from None
                for key in ("size", "counts"):
                    if key not in obj:
                        raise ValueError(f"mask {i}: the RLE dict has no {key!r}") from None
            raise
        heights, widths = _sizes(sizes, len(objs))
        if set(map(type, counts)) <= {bytes}:
            runs, offsets = _parse_strings(counts)
        else:
            runs, offsets = cls._mixed(counts)
        return cls._checked(runs, offsets, heights, widths)

    @classmethod
    def from_string_chars(cls, chars: Any, lengths: Any, heights: Any, widths: Any) -> RLEs:
        """Masks from their compressed strings, concatenated in ``chars`` (uint8 or bytes;
        ``lengths[i]`` characters for mask i, of ``heights[i]`` x ``widths[i]``)."""
        chars = np.frombuffer(chars, np.uint8) if isinstance(chars, bytes) else chars
        lengths = _index_array(lengths, "lengths")
        sizes = np.stack([_index_array(heights, "heights"), _index_array(widths, "widths")], 1)
        h, w = _sizes(sizes, lengths.shape[0])
        return cls._checked(*_parse_chars(np.ascontiguousarray(chars, np.uint8), lengths), h, w)

    @staticmethod
    def _mixed(counts: list) -> tuple[np.ndarray, np.ndarray]:
        """Runs of a mix of compressed strings and run lists."""
        strings, where, parts = [], [], [None] * len(counts)
        for i, c in enumerate(counts):
            if isinstance(c, (bytes, str)):
                strings.append(_string(c, i))
                where.append(i)
            elif isinstance(c, (list, tuple, np.ndarray)):
                parts[i] = _uncompressed(c, i)
            else:
                raise TypeError(
                    f"mask {i}: 'counts' must be a compressed string (bytes/str) or a list of "
                    f"run lengths, not {type(c).__name__}"
                )
        if strings:
            try:
                runs, offs = _parse_strings(strings)
            except ValueError as e:  # name the mask in the caller's list
                j = int(str(e).split()[1].rstrip(":"))
                raise ValueError(str(e).replace(f"mask {j}", f"mask {where[j]}", 1)) from None
            for k, i in enumerate(where):
                parts[i] = runs[offs[k] : offs[k + 1]]
        lengths = np.fromiter(map(len, parts), np.int64, len(parts))
        offsets = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        runs = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
        return runs.astype(np.uint32, copy=False), offsets

    @classmethod
    def _checked(cls, counts, offsets, heights, widths) -> RLEs:
        self = cls._trusted(counts, offsets, heights, widths)
        self.check_runs()
        return self

    def to_coco(self) -> list[dict]:
        """pycocotools' compressed RLE dicts: ``{"size": [h, w], "counts": bytes}``."""
        threads = threads_for(self.counts.shape[0])
        return _ext.to_coco(self.counts, self.offsets, self.heights, self.widths, threads)

    def strings(self) -> tuple[np.ndarray, np.ndarray]:
        """Every mask's compressed string, concatenated: (uint8 chars, int64 offsets [n + 1])."""
        return _ext.to_strings(self.counts, self.offsets, threads_for(self.counts.shape[0]))

    @classmethod
    def from_dense(cls, masks: Any) -> RLEs:
        """Encode ``masks`` [H, W, N] (pycocotools' layout; any memory order) of uint8 or bool.

        As pycocotools, a run ends where the byte value changes: a uint8 mask holding values
        other than 0 and 1 encodes (and decodes) differently from its boolean version.
        """
        masks = np.asarray(masks)
        if masks.ndim != 3:
            raise ValueError(f"masks must be [H, W, N], got shape {masks.shape}")
        if masks.dtype.char not in "B?b":  # uint8, bool, int8
            raise TypeError(f"masks must be uint8 or bool, not {masks.dtype}")
        h, w, n = masks.shape
        if h * w > MAX_PIXELS:
            check_sizes(np.array([h]), np.array([w]))
        # [N, W, H] C-contiguous = each mask's column-major pixels (a view of Fortran input)
        flat = masks.transpose(2, 1, 0)
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)
        flat = flat.view(np.uint8).reshape(n, w * h)
        return cls.from_pixels(flat, h, w)

    @classmethod
    def from_pixels(cls, flat: np.ndarray, h: int, w: int) -> RLEs:
        """Encode C-contiguous uint8 rows [N, h * w], each a mask's column-major pixels."""
        n = flat.shape[0]
        counts, offsets = _ext.encode(flat, threads_for(flat.size, PARALLEL_MIN_PIXELS))
        return cls._trusted(counts, offsets, np.full(n, h, np.int64), np.full(n, w, np.int64))

    def common_size(self, what: str = "decode") -> tuple[int, int]:
        """(h, w) shared by every mask; ValueError when they differ."""
        if len(self) == 0:
            return 0, 0
        h, w = int(self.heights[0]), int(self.widths[0])
        i = _ext.other_size(self.heights, self.widths)
        if i >= 0:
            raise ValueError(
                f"{what} needs masks of one size: mask 0 is {h} x {w}, mask {i} is "
                f"{self.heights[i]} x {self.widths[i]}"
            )
        return h, w

    def to_pixels(self) -> np.ndarray:
        """uint8 [N, h * w]: each mask's column-major pixels (masks of one size)."""
        h, w = self.common_size()
        return self._pixels(h, w)

    def _pixels(self, h: int, w: int) -> np.ndarray:
        out = np.empty((len(self), h * w), np.uint8)
        _ext.decode(self.counts, self.offsets, out, threads_for(out.size, PARALLEL_MIN_PIXELS))
        return out

    def to_dense(self) -> np.ndarray:
        """uint8 [H, W, N] in Fortran order, as pycocotools' decode."""
        h, w = self.common_size()
        return self._pixels(h, w).reshape(len(self), w, h).transpose(2, 1, 0)

    # ---- per-mask numbers -------------------------------------------------------------------

    def _cached(self, key: str, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def areas(self) -> np.ndarray:
        """Foreground pixels of each mask, uint32 (pycocotools' area)."""
        return self._cached(
            "areas",
            lambda: _readonly(_ext.areas(self.counts, self.offsets, self._measure_threads())),
        )

    def boxes(self) -> np.ndarray:
        """pycocotools' toBbox: float64 [N, 4] xywh."""
        return self._cached(
            "boxes",
            lambda: _readonly(
                _ext.boxes(
                    self.counts, self.offsets, self.heights, self.widths, self._measure_threads()
                )
            ),
        )

    def _measure_threads(self) -> int:
        return threads_for(self.counts.shape[0], MEASURE_PARALLEL_RUNS)

    def _iou_side(self) -> tuple:
        def compute():
            index = _ext.intervals(self.counts, self.offsets, self.heights)
            return (*index, self.areas(), self.boxes())

        return self._cached("iou", compute)

    def subset(self, index: Any) -> RLEs:
        """The masks at ``index`` (an int array), in that order."""
        index = _index_array(index, "index")
        _check_index(index, len(self), "index")
        if index.shape[0] == len(self) and np.array_equal(index, np.arange(len(self))):
            return self
        counts, offsets = _ext.take(self.counts, self.offsets, index)
        return RLEs._trusted(counts, offsets, self.heights[index], self.widths[index])

    def merge(self, intersect: bool = False) -> RLEs:
        """pycocotools' merge of all the masks into one: union, or intersection."""
        n = len(self)
        if n == 0:
            zero = np.zeros(1, np.int64)  # pycocotools: a 0 x 0 mask of no runs
            return RLEs._trusted(np.zeros(0, np.uint32), np.zeros(2, np.int64), zero, zero.copy())
        h, w = self.common_size("merge")
        if n == 1:
            return self
        if h * w == 0:
            counts = np.zeros(1, np.uint32)
        else:
            counts = _ext.merge(self.counts, self.offsets, bool(intersect))
        one = np.ones(1, np.int64)
        return RLEs._trusted(counts, np.array([0, counts.shape[0]], np.int64), one * h, one * w)


def _check_index(index: np.ndarray, n: int, name: str) -> None:
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"{name} holds mask indices outside 0 .. {n - 1}")


def _check_groups(start: np.ndarray, end: np.ndarray, length: int, name: str) -> None:
    if np.any(start < 0) or np.any(end < start) or np.any(end > length):
        raise ValueError(f"{name} groups must satisfy 0 <= start <= end <= len(index)")


def iou_groups(
    dt: RLEs,
    dt_index: Any,
    d_start: Any,
    d_end: Any,
    gt: RLEs,
    gt_index: Any,
    g_start: Any,
    g_end: Any,
    gt_iscrowd: Any,
    threads: int | None = None,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' mask IoU for many (detections x ground truth) groups at once.

    Group j pairs the detections ``dt_index[d_start[j]:d_end[j]]`` (rows) with the ground-truth
    masks ``gt_index[g_start[j]:g_end[j]]`` (columns); ``gt_iscrowd`` is aligned with
    ``gt_index``. ``values[offsets[j]:offsets[j + 1]].reshape(D_j, G_j)`` equals
    ``pycocotools.mask.iou(dt_rles, gt_rles, iscrowd)`` bit for bit: intersection over union,
    over the detection's area for a crowd column, 0 where the masks' boxes do not overlap, and
    -1 for a pair of masks of different sizes whose boxes overlap (pycocotools' marker).

    Parameters
    ----------
    dt, gt : RLEs
    dt_index, gt_index : int arrays
        Indices into ``dt`` / ``gt``, grouped.
    d_start, d_end, g_start, g_end : int arrays [n_groups]
        Each group's slice of ``dt_index`` / ``gt_index``.
    gt_iscrowd : array [len(gt_index)]
        Nonzero for a crowd region.
    threads : int, optional
        Threads for the Cython kernel; default one for small work, else ``num_threads()``.
    method : {"auto", "runs", "columns"}
        "runs" walks each pair's two run lists; "columns" builds (and caches on the RLEs) each
        mask's column index, cheaper per pair; "auto" picks the cheaper for this call
        (``INDEX_STEPS_PER_RUN``). The values are the same.

    Returns
    -------
    values : float64 [sum of D_j * G_j]
    offsets : int64 [n_groups + 1]
    """
    if not isinstance(dt, RLEs) or not isinstance(gt, RLEs):
        raise TypeError("dt and gt must be RLEs")
    if method not in ("auto", "runs", "columns"):
        raise ValueError(f"method must be 'auto', 'runs' or 'columns', not {method!r}")
    dt_index = _index_array(dt_index, "dt_index")
    gt_index = _index_array(gt_index, "gt_index")
    d_start, d_end = _index_array(d_start, "d_start"), _index_array(d_end, "d_end")
    g_start, g_end = _index_array(g_start, "g_start"), _index_array(g_end, "g_end")
    n_groups = d_start.shape[0]
    if not (d_end.shape[0] == g_start.shape[0] == g_end.shape[0] == n_groups):
        raise ValueError("d_start, d_end, g_start and g_end must have one entry per group")
    _check_index(dt_index, len(dt), "dt_index")
    _check_index(gt_index, len(gt), "gt_index")
    _check_groups(d_start, d_end, dt_index.shape[0], "dt")
    _check_groups(g_start, g_end, gt_index.shape[0], "gt")
    crowd = np.asarray(gt_iscrowd)
    if crowd.shape != gt_index.shape:
        raise ValueError(
            f"gt_iscrowd must be aligned with gt_index: shape {crowd.shape} vs {gt_index.shape}"
        )
    crowd = np.ascontiguousarray(crowd != 0, dtype=np.uint8)
    rows_per_group = d_end - d_start
    cols_per_group = g_end - g_start
    offsets = np.zeros(n_groups + 1, np.int64)
    np.cumsum(rows_per_group * cols_per_group, out=offsets[1:])
    values = np.empty(offsets[-1], np.float64)
    if values.size == 0:
        return values, offsets
    row_group = np.repeat(np.arange(n_groups, dtype=np.int64), rows_per_group)
    row_start = np.zeros(n_groups, np.int64)
    np.cumsum(rows_per_group[:-1], out=row_start[1:])
    row_first = d_start[row_group] + np.arange(row_group.shape[0]) - row_start[row_group]
    if threads is None:
        threads = threads_for(values.shape[0])
    if method == "auto":
        method = _groups_method(dt, dt_index, d_start, d_end, gt, gt_index, g_start, g_end)
    if method == "runs":
        _ext.iou_groups_runs(
            _run_side(dt), dt_index, d_start, _run_side(gt), gt_index, g_start, g_end,
            crowd, row_group, row_first, offsets, values, int(threads),
        )  # fmt: skip
    else:
        _ext.iou_groups(
            dt._iou_side(), dt.heights, dt.widths, dt_index, d_start,
            gt._iou_side(), gt.heights, gt.widths, gt_index, g_start, g_end,
            crowd, row_group, row_first, offsets, values, int(threads),
        )  # fmt: skip
    return values, offsets


def _run_side(rles: RLEs) -> tuple:
    return rles.counts, rles.offsets, rles.heights, rles.widths, rles.areas(), rles.boxes()


# Building the column index costs about as much as this many steps of the pair walk per run it
# indexes. The segm bench set (1,500 images, 16,877 dets): 3.2M runs indexed and the groups
# computed in 37 ms, ~11 ns a run; the walk over its 25,890 pairs, 7.1M steps, 9.2 ms (one thread)
INDEX_STEPS_PER_RUN = 6


def _groups_method(dt, dt_index, d_start, d_end, gt, gt_index, g_start, g_end) -> str:
    """Say "runs" when walking every pair's two run lists costs less than building the column
    indexes not built yet (few pairs per mask: detections matched only within their image)."""
    to_index = sum(r.counts.shape[0] for r in {id(dt): dt, id(gt): gt}.values()
                   if "iou" not in r._cache)  # fmt: skip
    if to_index == 0:
        return "columns"

    def group_sums(rles, index, start, end):
        lengths = np.diff(rles.offsets)[index]
        cum = np.zeros(lengths.shape[0] + 1, np.int64)
        np.cumsum(lengths, out=cum[1:])
        return cum[end] - cum[start]

    steps = int(np.dot(d_end - d_start, group_sums(gt, gt_index, g_start, g_end))) + int(
        np.dot(g_end - g_start, group_sums(dt, dt_index, d_start, d_end))
    )
    return "runs" if steps < INDEX_STEPS_PER_RUN * to_index else "columns"


# Pairs per call up to which iou_matrix walks the two run lists of each pair (pycocotools' way)
# rather than building each side's column index first: on small calls building the index costs
# more than it saves (20 x 20 RLEs of 48x64 packed fresh: 32 us against 47 us; at 60 x 60 the
# walk loses, 147 against 118 us: it is slower per pair, more so on large masks).
RUNS_MAX_PAIRS = 1024


def iou_matrix(
    dt: RLEs, gt: RLEs, iscrowd: Any, threads: int | None = None, method: str = "auto"
) -> np.ndarray:
    """pycocotools' mask.iou of every dt mask with every gt mask: float64 [len(dt), len(gt)].

    One group of :func:`iou_groups`, without its index checks (every mask, in order).
    ``method``: "runs" (a walk over both run lists per pair), "columns" (each side's column
    index, cached on the RLEs) or "auto" (runs for small calls whose index is not built yet)."""
    n, m = len(dt), len(gt)
    crowd = np.ascontiguousarray(np.asarray(iscrowd).reshape(-1) != 0, dtype=np.uint8)
    if crowd.shape[0] != m:
        raise ValueError(f"iscrowd has {crowd.shape[0]} entries but gt has {m} masks")
    threads = threads_for(n * m) if threads is None else int(threads)
    if method == "auto":
        indexed = "iou" in dt._cache and "iou" in gt._cache
        method = "runs" if n * m <= RUNS_MAX_PAIRS and not indexed else "columns"
    if method == "runs":
        return _ext.iou_matrix_runs(
            dt.counts, dt.offsets, dt.heights, dt.widths,
            gt.counts, gt.offsets, gt.heights, gt.widths, crowd, threads,
        )  # fmt: skip
    out = np.empty(n * m, np.float64)
    if n == 0 or m == 0:
        return out.reshape(n, m)
    if method == "columns":
        _ext.iou_matrix(
            dt._iou_side(), dt.heights, dt.widths, gt._iou_side(), gt.heights, gt.widths,
            crowd, out, threads,
        )  # fmt: skip
    else:
        raise ValueError(f"method must be 'auto', 'runs' or 'columns', not {method!r}")
    return out.reshape(n, m)


def _flat_polygons(polygons: Sequence[Any]) -> list[np.ndarray]:
    """Each polygon as a float64 vector of an even length (an odd trailing coordinate dropped).
    Flat lists of numbers (COCO's polygons) are read in one pass over all of them."""
    if all(type(p) is list for p in polygons):
        lengths = [len(p) for p in polygons]
        try:
            xy = np.fromiter(itertools.chain.from_iterable(polygons), np.float64, sum(lengths))
        except (TypeError, ValueError):
            xy = None  # not all numbers: find which polygon, below
        if xy is not None:
            ends = np.cumsum(lengths)
            return [xy[e - n : e - n % 2] for e, n in zip(ends.tolist(), lengths, strict=True)]
    arrays = []
    for i, p in enumerate(polygons):
        try:
            a = np.asarray(p, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"polygon {i} must be a flat list of numbers") from None
        arrays.append(a[: (a.shape[0] // 2) * 2])
    return arrays


def polygon_runs(
    polygons: Sequence[Any], heights: Any, widths: Any
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' rleFrPoly of each flat [x0, y0, x1, y1, ...] polygon, with its own h, w:
    (counts, offsets). An odd trailing coordinate is ignored, as pycocotools does."""
    arrays = _flat_polygons(polygons)
    xy = np.concatenate(arrays) if arrays else np.zeros(0)
    lengths = np.fromiter((a.shape[0] for a in arrays), np.int64, len(arrays))
    return polygon_runs_flat(xy, lengths, heights, widths)


def polygon_runs_flat(
    xy: np.ndarray, lengths: np.ndarray, heights: Any, widths: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`polygon_runs` of polygons given as one float64 array of every polygon's
    coordinates, one after another, and each polygon's (even) count of numbers."""
    n = lengths.shape[0]
    heights = _index_array(heights, "heights")
    widths = _index_array(widths, "widths")
    if heights.shape != (n,) or widths.shape != (n,):
        raise ValueError(f"{n} polygons need {n} heights and widths")
    check_sizes(heights, widths)
    at = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=at[1:])
    xy = np.ascontiguousarray(xy, np.float64)
    return _ext.polygons(xy, at, heights, widths, threads_for(int(at[-1]) // 2, 1 << 12))
