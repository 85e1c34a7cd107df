"""fastiou.coco.mask against pycocotools.mask, function by function: the same bytes, dtypes,
shapes and single-versus-list behaviour, on random and structured masks, odd sizes, long runs,
polygons partly outside the image and degenerate ones; and the clear errors for bad input."""

import numpy as np
import pytest
from conftest import require_peer
from hypothesis import given, settings
from hypothesis import strategies as st

from fastiou.coco import mask as F

P = require_peer("pycocotools.mask")
# pycocotools' decode under numpy 2 (its __array__ lacks the copy keyword)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def fortran(masks) -> np.ndarray:
    return np.asfortranarray(np.asarray(masks, dtype=np.uint8))


def random_masks(h, w, n, seed=0, p=0.5) -> np.ndarray:
    return fortran(np.random.default_rng(seed).random((h, w, n)) < p)


def blob_masks(h, w, n, seed=0) -> np.ndarray:
    """Ellipses of random size and place (long runs, as real instance masks)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, h / 2 + 1), rng.uniform(1, w / 2 + 1)
        out.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1)
    return fortran(np.stack(out, -1))


def structured_masks(h, w) -> np.ndarray:
    """Empty, full, first pixel only, last pixel only, one column, one row, checkerboard."""
    masks = np.zeros((h, w, 7), np.uint8)
    masks[..., 1] = 1
    masks[0, 0, 2] = 1
    masks[-1, -1, 3] = 1
    masks[:, w // 2, 4] = 1
    masks[h // 2, :, 5] = 1
    masks[..., 6] = (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(np.uint8)
    return fortran(masks)


SHAPES = [(1, 1), (1, 17), (17, 1), (5, 5), (31, 23), (64, 48)]


def mask_sets():
    for h, w in SHAPES:
        yield f"random{h}x{w}", random_masks(h, w, 6, seed=h * w)
        yield f"sparse{h}x{w}", random_masks(h, w, 6, seed=h + w, p=0.05)
        yield f"structured{h}x{w}", structured_masks(h, w)
    yield "blobs", blob_masks(120, 90, 12)
    long = np.zeros((1, 70_000, 3), np.uint8)  # runs longer than 2^16
    long[0, :, 0] = 1
    long[0, 100:69_000, 1] = 1
    yield "long_runs", fortran(long)
    tall = np.zeros((300, 300, 2), np.uint8)
    tall[:, 20:280, 0] = 1  # one foreground run of 78,000 pixels crossing columns
    yield "tall", fortran(tall)


SETS = dict(mask_sets())


@pytest.fixture(params=list(SETS), ids=list(SETS))
def masks(request) -> np.ndarray:
    return SETS[request.param]


def test_encode_decode_area_bbox_match_pycocotools(masks):
    want = P.encode(masks)
    got = F.encode(masks)
    assert got == want  # same sizes (Python ints) and the same compressed bytes
    assert all(type(r["counts"]) is bytes and type(r["size"][0]) is int for r in got)
    decoded = F.decode(got)
    assert decoded.dtype == np.uint8 and decoded.flags.f_contiguous
    np.testing.assert_array_equal(decoded, P.decode(want))
    np.testing.assert_array_equal(decoded, masks)
    area = F.area(got)
    assert area.dtype == np.uint32
    np.testing.assert_array_equal(area, P.area(want))
    boxes = F.toBbox(got)
    assert boxes.dtype == np.float64 and boxes.shape == (masks.shape[2], 4)
    np.testing.assert_array_equal(boxes, P.toBbox(want))


def test_single_mask_forms(masks):
    one = masks[:, :, 0]
    want = P.encode(fortran(one))
    got = F.encode(one)
    assert got == want and isinstance(got, dict)
    d = F.decode(got)
    assert d.shape == one.shape and d.flags.f_contiguous
    np.testing.assert_array_equal(d, P.decode(want))
    a = F.area(got)
    assert isinstance(a, np.uint32) and a == P.area(want)
    b = F.toBbox(got)
    assert b.shape == (4,)
    np.testing.assert_array_equal(b, P.toBbox(want))


def test_iou_and_merge_match_pycocotools(masks):
    rles = P.encode(masks)
    n = len(rles)
    crowd = np.arange(n) % 2
    other = rles[::-1]
    want = P.iou(rles, other, crowd)
    got = F.iou(rles, other, crowd)
    assert got.dtype == np.float64 and got.shape == (n, n)
    np.testing.assert_array_equal(got, want)
    for intersect in (0, 1):
        assert F.merge(rles, intersect) == P.merge(rles, intersect)
        assert F.merge(rles[:1], intersect) == P.merge(rles[:1], intersect)


def test_encode_compares_byte_values_as_pycocotools():
    # pycocotools starts a run wherever the byte changes, 1 -> 2 included
    m = fortran([[0], [1], [2], [2], [0]])
    assert F.encode(m) == P.encode(m)


def test_encode_accepts_c_order_and_bool():
    m = random_masks(9, 7, 3, seed=4)
    want = P.encode(m)
    assert F.encode(np.ascontiguousarray(m)) == want
    assert F.encode(m.astype(bool)) == want


def test_empty_image_and_empty_lists():
    m = np.zeros((0, 5, 2), np.uint8, order="F")
    assert F.encode(m) == P.encode(m)
    assert F.area([]).dtype == np.uint32 and F.area([]).shape == (0,)
    assert F.toBbox([]).shape == (0, 4)
    assert F.merge([]) == P.merge([])
    r = F.encode(random_masks(4, 4, 1))
    assert F.iou([], r, [0]) == [] == P.iou([], r, [0])
    assert F.iou(r, [], []) == []


def test_iou_of_masks_of_different_sizes_is_minus_one_where_boxes_overlap():
    a = F.encode(fortran(np.eye(4)[:, :, None]))
    b = F.encode(fortran(np.ones((5, 4, 1))))
    c = F.encode(fortran(np.pad(np.ones((2, 2)), ((0, 4), (5, 0)))[:, :, None]))  # 6 x 7
    for crowd in ([0, 0], [1, 0]):
        np.testing.assert_array_equal(F.iou(a, b + c, crowd), P.iou(a, b + c, crowd))


def test_box_iou_matches_pycocotools():
    rng = np.random.default_rng(5)
    dt = rng.uniform(-5, 50, (17, 4))
    gt = rng.uniform(-5, 50, (11, 4))
    dt[:3, 2:] = 0  # degenerate boxes
    crowd = rng.integers(0, 2, 11)
    want = P.iou(dt, gt, crowd)
    np.testing.assert_array_equal(F.iou(dt, gt, crowd), want)
    np.testing.assert_array_equal(F.iou(dt.tolist(), gt.tolist(), crowd), want)
    np.testing.assert_array_equal(
        F.iou(dt.astype(np.float32), gt, crowd),
        P.iou(dt.astype(np.float32).astype(np.float64), gt, crowd),
    )


def random_polygon(rng, h, w, k) -> list[float]:
    return rng.uniform(-0.3 * w, 1.3 * w, 2 * k).tolist()


@pytest.mark.parametrize("h, w", [(1, 1), (1, 30), (30, 1), (13, 17), (64, 80)])
def test_polygons_match_pycocotools(h, w):
    rng = np.random.default_rng(h * 100 + w)
    polys = []
    for k in (3, 4, 5, 8, 12):
        polys.append(random_polygon(rng, h, w, k))  # partly outside the image
        polys.append(np.round(rng.uniform(0, max(h, w), 2 * k) * 2).tolist())  # on .5 steps
        polys.append(rng.uniform(w + 1, w + 10, 2 * k).tolist())  # wholly outside
    want = P.frPyObjects(polys, h, w)
    assert F.frPyObjects(polys, h, w) == want
    assert F.frPyObjects(polys[0], h, w) == want[0]  # one polygon -> one dict
    assert F.frPyObjects([np.array(p) for p in polys], h, w) == want


def test_degenerate_polygons_match_pycocotools():
    h, w = 20, 20
    polys = [
        [5, 5, 12, 3, 9, 14, 5, 5, 5, 5],  # repeated vertices
        [3, 3, 3, 3, 3, 3],  # one point
        [2, 2, 10, 10, 6, 6],  # collinear
        [4, 4, 15, 4, 15, 4.0, 4, 4],  # zero area
        [1, 2, 3, 4, 5, 6, 7],  # odd length: the last number is ignored
        [1, 2],  # later polygons may be short
        [],
    ]
    assert F.frPyObjects(polys, h, w) == P.frPyObjects(polys, h, w)


def test_boxes_match_pycocotools():
    rng = np.random.default_rng(7)
    boxes = rng.uniform(-10, 60, (20, 4))
    boxes[:, 2:] = np.abs(boxes[:, 2:])
    boxes[:5] = np.round(boxes[:5])
    want = P.frPyObjects(boxes, 40, 50)
    assert F.frPyObjects(boxes, 40, 50) == want
    assert F.frPyObjects(boxes.tolist(), 40, 50) == want  # pycocotools: TypeError
    assert F.frPyObjects(boxes[0].tolist(), 40, 50) == want[0]


def test_rle_dicts_in_frpyobjects():
    unc = {"size": [3, 3], "counts": [1, 2, 6]}
    assert F.frPyObjects(unc, 10, 10) == P.frPyObjects(unc, 10, 10)
    assert F.frPyObjects([unc, unc], 10, 10) == P.frPyObjects([unc, unc], 10, 10)
    compressed = P.frPyObjects(unc, 10, 10)
    assert F.frPyObjects(compressed, 10, 10) == compressed  # pycocotools raises here
    as_str = {"size": [3, 3], "counts": compressed["counts"].decode()}
    assert F.frPyObjects([as_str], 1, 1) == [compressed]


def test_functions_take_str_and_uncompressed_counts():
    m = blob_masks(30, 40, 3, seed=2)
    rles = P.encode(m)
    strs = [{"size": r["size"], "counts": r["counts"].decode()} for r in rles]
    np.testing.assert_array_equal(F.decode(strs), m)
    runs = [{"size": [30, 40], "counts": _runs(m[:, :, i])} for i in range(3)]
    np.testing.assert_array_equal(F.area(runs), P.area(rles))
    assert F.merge(runs) == P.merge(rles)


def _runs(mask) -> list[int]:
    flat = np.asarray(mask).ravel(order="F")
    change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))
    return np.diff(np.r_[0, change]).tolist()[: len(change)]


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    p=st.floats(0, 1),
)
def test_random_masks_property(h, w, n, seed, p):
    m = random_masks(h, w, n, seed=seed, p=p)
    want = P.encode(m)
    got = F.encode(m)
    assert got == want
    np.testing.assert_array_equal(F.decode(got), m)
    np.testing.assert_array_equal(F.toBbox(got), P.toBbox(want))
    crowd = [seed % 2] * n
    np.testing.assert_array_equal(F.iou(got, got[::-1], crowd), P.iou(want, want[::-1], crowd))
    assert F.merge(got, seed % 2) == P.merge(want, seed % 2)


@pytest.mark.parametrize("h, w", [(5, 0), (0, 5), (0, 0), (3_000_000, 0)])
def test_polygons_on_empty_images_match_pycocotools(h, w):
    # w = 0: maskApi.c's w - 1 wraps, so it keeps every column and its values wrap mod 2^32
    rng = np.random.default_rng(h + w)
    polys = [rng.uniform(-3, 8, 2 * int(rng.integers(3, 8))).tolist() for _ in range(20)]
    assert F.frPyObjects(polys, h, w) == P.frPyObjects(polys, h, w)


def test_polygons_by_column_match_pycocotools():
    # fastiou sorts a polygon's cuts column by column; a zigzag across one pixel centre puts
    # 100 cuts in one column (sorted another way), a long thin sliver one in each of 300 columns
    rng = np.random.default_rng(3)
    zigzag = np.stack([np.tile([9.2, 10.8], 100), np.linspace(0, 40, 200)], 1).ravel().tolist()
    sliver = [0.3, 5.0, 299.6, 5.4, 299.6, 6.9, 0.3, 6.1]
    jittered = np.stack([10 + rng.uniform(-0.7, 0.7, 150), rng.uniform(-3, 43, 150)], 1)
    polys = [zigzag, sliver, jittered.ravel().tolist()]
    assert F.frPyObjects(polys, 40, 300) == P.frPyObjects(polys, 40, 300)


@settings(max_examples=150, deadline=None)
@given(
    xy=st.lists(st.floats(-20, 60, allow_nan=False), min_size=6, max_size=24),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
)
def test_polygon_property(xy, h, w):
    assert F.frPyObjects([xy], h, w) == P.frPyObjects([xy], h, w)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rle, match",
    [
        ({"size": [3, 3], "counts": b"1"}, "sum to 1"),  # too short (pycocotools: garbage)
        ({"size": [3, 3], "counts": b"<"}, "sum to 12"),
        ({"size": [3, 3], "counts": b"1\x7f"}, "alphabet"),
        ({"size": [3, 3], "counts": b"1Q"}, "ends inside"),  # continuation bit on the last
        ({"size": [3, 3], "counts": b"QQQQQQQ0"}, "7 characters"),
        ({"size": [3, 3], "counts": "12é"}, "not ASCII"),
        ({"size": [3, 3], "counts": [1, -2, 8]}, "0 .. 2"),
        ({"size": [3, 3], "counts": [1, 2, 3]}, "sum to 6"),
        ({"size": [-3, 3], "counts": b""}, "negative size"),
        ({"size": [3], "counts": b"9"}, "size"),
        ({"size": [3, 3.5], "counts": b"9"}, "size"),
        ({"size": [2**16, 2**16], "counts": b"0"}, "2\\^32"),
        ({"counts": b"9"}, "no 'size'"),
    ],
)
def test_corrupt_rle_is_a_value_error(rle, match):
    for fn in (F.decode, F.area, F.toBbox, lambda r: F.merge([r, r])):
        with pytest.raises(ValueError, match=match):
            fn(rle)
    with pytest.raises(ValueError, match=match):
        F.iou([rle], [rle], [0])


def test_size_disagreements_are_value_errors():
    a = F.encode(random_masks(4, 5, 1))[0]
    b = F.encode(random_masks(5, 4, 1))[0]
    with pytest.raises(ValueError, match="one size"):
        F.decode([a, b])
    with pytest.raises(ValueError, match="one size"):
        F.merge([a, b])  # pycocotools: an empty 0 x 0 mask


def test_bad_types_and_shapes():
    r = F.encode(random_masks(4, 4, 1))[0]
    with pytest.raises(ValueError, match="iscrowd"):
        F.iou([r], [r], [0, 1])
    with pytest.raises(TypeError, match="same kind"):
        F.iou([r], np.zeros((1, 4)), [0])
    with pytest.raises(TypeError):
        F.iou(r, [r], [0])
    with pytest.raises(TypeError, match="dict"):
        F.area([r, 3])
    with pytest.raises(ValueError, match="shape"):
        F.encode(np.zeros(5, np.uint8))
    with pytest.raises(TypeError, match="uint8 or bool"):
        F.encode(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="not finite"):
        F.frPyObjects([[0, 0, 1, np.nan, 2, 2]], 5, 5)
    with pytest.raises(ValueError, match="2e8"):
        F.frPyObjects([[0, 0, 1e12, 0, 2, 2]], 5, 5)
    with pytest.raises(ValueError, match="more than 4"):
        F.frPyObjects([[1, 2], [3, 4]], 5, 5)
    with pytest.raises(TypeError, match="not supported|takes"):
        F.frPyObjects(3, 5, 5)
    with pytest.raises(TypeError, match="integers"):
        F.frPyObjects([[0, 0, 1, 1, 2, 2]], "a", 5)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        F.frPyObjects(np.zeros((2, 5)), 5, 5)
