"""Reading COCO JSON files into columns without a Python dict per annotation.

The fast path scans the bytes with the compiled scanner (``_native.h``): annotation arrays
become columns directly, numbers are read exactly as json reads them (``float()``'s correctly
rounded values), and the values the evaluation does not use (segmentations...) are validated as
json validates them (strict UTF-8, no raw control characters) and skipped. Anything the scanner
does not handle (escaped keys, ids written as floats, numbers with more than 19 significant
digits, NaN/Infinity literals, invalid JSON) sends the whole file to a general JSON parser
instead, slower but with the same values, and for invalid JSON an AnnotationError naming the
byte offset (json's own message).

Which parser where, measured in one run (``fastiou bench --task coco_load --task
coco_load_dicts``; numbers in bench/README.md): into columns, the scanner is 13-23x faster
than json, orjson or msgspec followed by the table code (they build a dict per annotation
first), so it stays. For dicts (``COCO.dataset``, the fallback, the small top-level values)
msgspec, where installed, is 1.3x-2x faster than json and gives json's values where it accepts
a document; where it does not (NaN, Infinity, numbers beyond float, lone surrogate escapes,
invalid JSON) json reads the document or names the error. An optional dependency
(``pip install fastiou[json]``), not a hard one: the gain is modest and only where dicts are
built; evaluation never needs them. orjson is not used: it reads integers beyond 64 bits as
floats, silently.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from . import _table
from ._table import AnnotationError, Annotations

# The smallest object the scanner can accept for a results row / a ground-truth annotation
# (every required key, one-character values): an upper bound on the rows a chunk can hold.
MIN_RESULT_BYTES = len('{"image_id":0,"category_id":0,"bbox":[0,0,0,0],"score":0}')
MIN_GT_BYTES = len('{"id":0,"image_id":0,"category_id":0,"bbox":[0,0,0,0],"area":0}')


_FLAGS = ("iscrowd", "ignore")
# what a ground-truth file's scan reads: the columns, and where each segmentation, keypoints
# and num_keypoints value lies (read when "segm" or "keypoints" evaluation needs them)
_GT_SCANNED = _table.GT_KEYS + _FLAGS + ("segmentation", "keypoints", "num_keypoints")


class ArrayLocation(NamedTuple):
    """Where a ground-truth file's annotations array is: bytes [start, end), the position of
    the "annotations" key among the top-level keys (json keeps the first one's place), and the
    file's (size, mtime_ns) when it was read."""

    start: int
    end: int
    key_position: int
    file_stat: tuple[int, int] | None = None


@cache
def pow5_table() -> np.ndarray:
    """128-bit truncated powers of five, 5**q for q in [-342, 308], as (hi, lo) uint64 pairs:
    the table of the Eisel-Lemire algorithm (fast_float's script/table_generation.py)."""
    rows = []
    for q in range(-342, 0):
        p5 = 5**-q
        z = p5.bit_length()  # smallest z with 2**z >= 5**-q (never a power of two)
        if q >= -27:
            c = (1 << (z + 127)) // p5 + 1
        else:
            c = (1 << (2 * z + 128)) // p5 + 1
            c >>= max(0, c.bit_length() - 128)
        rows.append(c)
    for q in range(0, 309):
        p5 = 5**q
        n = p5.bit_length()
        rows.append(p5 << (128 - n) if n < 128 else p5 >> (n - 128))
    table = np.empty(2 * len(rows), np.uint64)
    table[0::2] = [r >> 64 for r in rows]
    table[1::2] = [r & ((1 << 64) - 1) for r in rows]
    return table


def _threads() -> int:
    from .._core.config import num_threads

    return num_threads()


def _with_bytes(path: str | os.PathLike, use: Callable[[np.ndarray], Any]) -> Any:
    """``use(the file's bytes as a uint8 array)``: memory-mapped (no copy of the file) where
    the file can be mapped, else read."""
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # an empty file, or one that cannot be mapped (a pipe)
            return use(np.frombuffer(f.read(), np.uint8))
    try:
        return use(np.frombuffer(mapped, np.uint8))
    finally:
        try:
            mapped.close()
        except BufferError:  # still referenced: unmapped when collected
            pass


def is_mapped(buf: np.ndarray) -> bool:
    """Whether ``buf`` (from :func:`_with_bytes`) is a file's memory map, not bytes read: the
    pages a scanner has read may then be given back to the OS (they read as the file again)."""
    return isinstance(buf.base, memoryview) and isinstance(buf.base.obj, mmap.mmap)


@cache
def _msgspec_decode() -> Callable[[bytes], Any] | None:
    """msgspec's JSON decoder where it is installed (the optional extra ``fastiou[json]``)."""
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec.json.Decoder().decode


def _loads(raw: bytes) -> Any:
    """``json.loads`` of UTF-8 bytes; through msgspec where installed (1.3x to 2x faster on
    COCO files, ``fastiou bench --task coco_load_dicts``). Where msgspec reads a document it gives
    json's values (tests/coco/test_json_fuzz.py); it rejects all json rejects, and also NaN,
    Infinity, numbers beyond float and lone surrogate escapes, which json reads: so on any
    msgspec error json reads the document, or raises its own error."""
    decode = _msgspec_decode()
    if decode is not None:
        try:
            return decode(raw)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            pass
    return json.loads(raw.decode("utf-8"))


def _parse(raw: bytes, source: str, offset: int = 0) -> Any:
    """``_loads(raw)`` with an AnnotationError naming the byte (``offset`` + position in raw)
    where ``raw`` is not UTF-8 JSON, as ``json.load`` of the file opened as UTF-8 text."""
    try:
        return _loads(raw)
    except UnicodeDecodeError as e:
        at = offset + e.start
        raise AnnotationError(
            f"{source}: not a UTF-8 text file: byte {at} ({raw[e.start : e.start + 1]!r}) "
            f"{e.reason}"
        ) from e
    except json.JSONDecodeError as e:
        byte = offset + len(e.doc[: e.pos].encode("utf-8", "surrogatepass"))
        line = "" if offset else f" (line {e.lineno}, column {e.colno})"  # of raw, not the file
        raise AnnotationError(f"{source}: not valid JSON at byte {byte}{line}: {e.msg}") from e
    except RecursionError as e:
        raise AnnotationError(f"{source}: not readable JSON: nested too deeply") from e


def _load_python(path: str | os.PathLike) -> Any:
    """The whole file parsed into Python values (see :func:`_parse`)."""
    with open(path, "rb") as f:
        return _parse(f.read(), os.fspath(path))


def scan_results(buf: np.ndarray, wanted: tuple[str, ...] = _table.RESULT_KEYS) -> dict | None:
    """The scanner's columns of a results file's bytes (the ``wanted`` keys), or None where it
    declines."""
    from ._ext import kernels

    _ckernels = kernels()
    if not len(buf):
        return None
    scanned = _ckernels.parse_object_array(
        buf, 0, pow5_table(), MIN_RESULT_BYTES, _threads(), wanted
    )
    if scanned is None or _ckernels.skip_ws(buf, scanned[1]) != len(buf):
        return None
    return scanned[0]


def load_results(
    path: str | os.PathLike, segm: Callable[[np.ndarray, dict], Annotations | None] | None = None
) -> tuple[Annotations, list | None]:
    """A results file (a JSON list of detections) as columns.

    Returns ``(table, dicts)``: ``dicts`` is the parsed list when the file went through Python's
    json module (so it need not be parsed again), else None. ``segm(bytes, columns)``: the
    columns of pycocotools' segm branch from the same scan (which then also records where each
    "segmentation" lies), or None for the box path.
    """
    source = os.fspath(path)

    def scan(buf: np.ndarray):
        wanted = _table.RESULT_KEYS + (("segmentation",) if segm is not None else ())
        columns = scan_results(buf, wanted)
        if columns is not None and segm is not None:
            table = segm(buf, columns)
            if table is not None:
                return table
        return columns

    got = _with_bytes(path, scan)
    if isinstance(got, Annotations):
        return got, None
    if got is not None:
        return _table.from_scanned(got, results=True, source=source), None
    anns = _load_python(path)
    if not isinstance(anns, list):
        raise AnnotationError(
            f"{source}: a results file must hold a JSON list of detections, not a "
            f"{type(anns).__name__}"
        )
    return _table.from_dicts(anns, results=True, source=source), anns


def load_dataset(path: str | os.PathLike) -> tuple[dict[str, Any], Any, bool]:
    """A ground-truth file: ``(dataset, annotations, complete)``.

    On the fast path ``dataset`` holds every top-level key except "annotations" (parsed into
    Python values, they are small), ``annotations`` is the scanner's columns (validated later,
    when evaluation needs them) and ``complete`` is False. On the fallback path ``dataset`` is
    the whole parsed file, ``annotations`` its list and ``complete`` True.
    """
    from ._ext import kernels

    _ckernels = kernels()
    source = os.fspath(path)
    stat = os.stat(path)
    parsed = _with_bytes(path, lambda buf: _scan_dataset(buf, _ckernels) if len(buf) else None)
    if parsed is not None:
        if isinstance(parsed[1], _table.ScannedColumns):
            parsed[1].location = parsed[1].location._replace(
                file_stat=(stat.st_size, stat.st_mtime_ns)
            )
        return parsed[0], parsed[1], False
    dataset = _load_python(path)
    if not isinstance(dataset, dict):
        raise AnnotationError(
            f"{source}: a COCO annotation file must hold a JSON object, not a "
            f"{type(dataset).__name__}"
        )
    return dataset, dataset.get("annotations"), True


def _scan_dataset(buf: np.ndarray, kernels) -> tuple[dict[str, Any], Any] | None:
    """The top-level object, key by key; None where the scanner declines."""
    view = memoryview(buf)
    n = len(buf)
    p = kernels.skip_ws(buf, 0)
    if p >= n or buf[p] != ord("{"):
        return None
    header: dict[str, Any] = {}
    annotations = None
    position = None  # of the first "annotations" key among the others
    p = kernels.skip_ws(buf, p + 1)
    if p < n and buf[p] == ord("}"):
        return (header, None) if kernels.skip_ws(buf, p + 1) == n else None
    while True:
        if p >= n or buf[p] != ord('"'):
            return None
        key_end = kernels.skip_value(buf, p)
        if key_end < 0:
            return None
        key = _loads(bytes(view[p:key_end]))
        p = kernels.skip_ws(buf, key_end)
        if p >= n or buf[p] != ord(":"):
            return None
        start = kernels.skip_ws(buf, p + 1)
        if key == "annotations" and position is None:
            position = len(header)
        if key == "annotations" and start < n and buf[start] == ord("["):
            scanned = kernels.parse_object_array(
                buf, start, pow5_table(), MIN_GT_BYTES, _threads(), _GT_SCANNED
            )
            if scanned is None:
                return None
            annotations, end = _table.ScannedColumns(scanned[0]), scanned[1]
            annotations.location = ArrayLocation(start, end, position)
            header.pop("annotations", None)
        else:
            end = kernels.skip_value(buf, start)
            if end < 0:
                return None
            try:
                header[key] = _loads(bytes(view[start:end]))
            except ValueError:
                return None
            if key == "annotations":
                annotations = header.pop("annotations")
        p = kernels.skip_ws(buf, end)
        if p >= n:
            return None
        if buf[p] == ord("}"):
            return (header, annotations) if kernels.skip_ws(buf, p + 1) == n else None
        if buf[p] != ord(","):
            return None
        p = kernels.skip_ws(buf, p + 1)


def dataset_dicts(
    path: str | os.PathLike, header: dict[str, Any], location: ArrayLocation | None
) -> dict:
    """The whole dataset as pycocotools holds it, for ``COCO.dataset`` after a fast load:
    ``header`` (the same objects, so that ``imgs`` and ``dataset["images"]`` stay one) with the
    annotations array parsed from its bytes at ``location``; without a location (the file had
    no annotations array), the whole file parsed again."""
    source = os.fspath(path)
    changed = AnnotationError(f"{source}: the file changed since it was loaded: load it again")
    if location is None:
        dataset = _load_python(path)
        if not isinstance(dataset, dict) or dataset.keys() - {"annotations"} != header.keys():
            raise changed
        return {**dataset, **header}
    stat = os.stat(path)
    if (stat.st_size, stat.st_mtime_ns) != location.file_stat:
        raise changed
    with open(path, "rb") as f:
        f.seek(location.start)
        raw = f.read(location.end - location.start)
    items = list(header.items())
    items.insert(location.key_position, ("annotations", _parse(raw, source, location.start)))
    return dict(items)
