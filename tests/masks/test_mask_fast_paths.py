"""The compiled fast paths of fastiou.coco.mask against pycocotools and against the general path:
RLE dicts packed in one pass (``pack_coco``, with its fall-back to the checked Python path),
compressed strings written straight into bytes (``to_coco``), and both IoU kernels (the walk over
two run lists, the column index), on odd sizes (1 x N, N x 1), runs longer than 2^16 and empty
lists."""

import numpy as np
import pytest
from conftest import require_peer
from test_mask_api import SETS, blob_masks, random_masks

from fastiou.coco import mask as F
from fastiou.masks import RLEs, _rles
from fastiou.masks._rles import _ext

P = require_peer("pycocotools.mask")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _same(a: RLEs, b: RLEs) -> None:
    for name in ("counts", "offsets", "heights", "widths"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", list(SETS))
@pytest.mark.parametrize("method", ["runs", "columns"])
def test_both_iou_kernels_equal_pycocotools(name, method):
    rles = P.encode(SETS[name])
    other = rles[::-1]
    crowd = np.arange(len(other)) % 2
    want = P.iou(rles, other, crowd)
    got = _rles.iou_matrix(RLEs.from_coco(rles), RLEs.from_coco(other), crowd, method=method)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", ["runs", "columns"])
def test_both_iou_kernels_on_mixed_sizes_and_many_pairs(method):
    dt = P.encode(blob_masks(60, 45, 40, seed=1)) + P.encode(random_masks(45, 60, 3, p=0.2))
    gt = P.encode(blob_masks(60, 45, 37, seed=2))
    crowd = np.arange(len(gt)) % 3 == 0
    a, b = RLEs.from_coco(dt), RLEs.from_coco(gt)
    for threads in (1, 2):
        got = _rles.iou_matrix(a, b, crowd, threads=threads, method=method)
        np.testing.assert_array_equal(got, P.iou(dt, gt, crowd))  # -1 for the 45 x 60 rows


def test_auto_iou_picks_by_size_and_matches_pycocotools():
    small = P.encode(blob_masks(30, 20, 10))
    big = P.encode(blob_masks(30, 20, 2 * int(_rles.RUNS_MAX_PAIRS**0.5)))
    for dt in (small, big):
        crowd = np.zeros(len(dt))
        np.testing.assert_array_equal(F.iou(dt, dt, crowd), P.iou(dt, dt, crowd))
    with pytest.raises(ValueError, match="method"):
        _rles.iou_matrix(RLEs.from_coco(small), RLEs.from_coco(small), np.zeros(10), method="x")


def _variants(objs):
    """The same masks as str counts, tuple sizes, numpy-int sizes, uncompressed runs."""
    as_str = [{"size": o["size"], "counts": o["counts"].decode()} for o in objs]
    as_tuple = [{"size": tuple(o["size"]), "counts": o["counts"]} for o in objs]
    numpy_ints = [{"size": list(np.array(o["size"])), "counts": o["counts"]} for o in objs]
    runs = [{"size": o["size"], "counts": P.decode(o).ravel(order="F")} for o in objs]
    return as_str, as_tuple, numpy_ints, runs


@pytest.mark.parametrize("name", ["random1x17", "structured17x1", "long_runs", "tall", "blobs"])
def test_pack_coco_equals_the_checked_path(name):
    objs = P.encode(SETS[name])
    fast = RLEs.from_coco(objs)
    assert _ext.pack_coco(objs) is not None  # the compiled pass took it
    _same(fast, RLEs.from_coco(tuple(objs)))  # a tuple takes the Python path
    parallel = _ext.pack_coco(objs, 3, 0)  # the strings parsed on three threads
    _same(fast, RLEs._trusted(*parallel))
    corrupt = objs[:-1] + [{"size": objs[-1]["size"], "counts": objs[-1]["counts"][:-1]}]
    assert _ext.pack_coco(corrupt, 3, 0) is None  # the Python path names the problem
    as_str, as_tuple, numpy_ints, _ = _variants(objs)
    assert _ext.pack_coco(as_str) is not None and _ext.pack_coco(as_tuple) is not None
    assert _ext.pack_coco(numpy_ints) is None  # not Python ints: the Python path packs them
    for variant in (as_str, as_tuple, numpy_ints):
        _same(fast, RLEs.from_coco(variant))
        np.testing.assert_array_equal(F.decode(variant), P.decode(objs))
    if name == "long_runs":
        assert fast.counts.max() > 2**16


def test_uncompressed_counts_are_encoded_as_pycocotools():
    objs = P.encode(SETS["random17x1"])
    runs = [{"size": o["size"], "counts": [int(v) for v in RLEs.from_coco([o]).counts]}
            for o in objs]  # fmt: skip
    assert _ext.pack_coco(runs) is None
    assert F.frPyObjects(runs, 17, 1) == P.frPyObjects(runs, 17, 1)


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [True, 3], "counts": b"9"},
        {"size": [3.0, 3], "counts": b"9"},
        {"size": [3, 3, 1], "counts": b"9"},
        {"size": [3, 3], "counts": b"8"},  # runs sum to 8
        {"size": [3, 3], "counts": b"9\x7f"},
        {"size": [3, 3], "counts": "9\u00e9"},
        {"size": [2**16, 2**16], "counts": b"0"},
        {"size": [-1, 3], "counts": b""},
        {"counts": b"9"},
        {"size": [3, 3]},
    ],
)
def test_pack_coco_leaves_anything_unusual_to_the_checked_path(rle):
    assert _ext.pack_coco([rle]) is None
    assert _ext.pack_coco([P.encode(random_masks(3, 3, 1))[0], rle]) is None
    assert _ext.pack_coco([rle, 5]) is None


def test_pack_coco_of_an_empty_list_and_empty_masks():
    packed = RLEs.from_coco([])
    assert len(packed) == 0 and packed.offsets.tolist() == [0]
    empty = np.zeros((0, 4, 3), np.uint8, order="F")
    objs = P.encode(empty)
    assert F.encode(empty) == objs
    _same(RLEs.from_coco(objs), RLEs.from_coco(tuple(objs)))
    assert F.encode(np.zeros((4, 5, 0), np.uint8, order="F")) == []


def test_to_coco_equals_pycocotools_on_every_set():
    for masks in SETS.values():
        got = RLEs.from_dense(masks).to_coco()
        want = P.encode(masks)
        assert got == want
        assert all(type(r["counts"]) is bytes and type(r["size"][1]) is int for r in got)
