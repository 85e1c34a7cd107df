"""The packed RLEs and the iou_groups engine seam: round trips, validation before any kernel
reads, and every group equal to pycocotools.mask.iou bit for bit (crowd, empty groups, masks of
different sizes, the parallel path)."""

import numpy as np
import pytest
from conftest import require_peer

from fastiou.masks import RLEs, iou_groups
from fastiou.masks import _reference as reference

P = require_peer("pycocotools.mask")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def rle_objs(n, seed=0, sizes=((20, 30),)):
    """Rectangles and blobs (some empty, some full) on images of the given sizes."""
    rng = np.random.default_rng(seed)
    objs = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        m = np.zeros((h, w), np.uint8)
        kind = i % 5
        if kind == 1:
            m[:] = 1
        elif kind in (2, 3):
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y : y + rng.integers(1, 14), x : x + rng.integers(1, 14)] = 1
        elif kind == 4:
            m[:] = rng.random((h, w)) < 0.3
        objs.append(P.encode(np.asfortranarray(m)))
    return objs


def test_from_coco_to_coco_round_trip():
    objs = rle_objs(25, sizes=((20, 30), (7, 1), (1, 9)))
    rles = RLEs.from_coco(objs)
    assert len(rles) == 25
    assert rles.counts.dtype == np.uint32 and rles.offsets.dtype == np.int64
    assert rles.offsets.shape == (26,) and rles.heights.dtype == np.int64
    assert rles.to_coco() == objs
    np.testing.assert_array_equal(rles.areas(), P.area(objs))
    np.testing.assert_array_equal(rles.boxes(), P.toBbox(objs))
    again = RLEs(rles.counts, rles.offsets, rles.heights, rles.widths)
    assert again.to_coco() == objs
    assert rles.subset([3, 0, 3]).to_coco() == [objs[3], objs[0], objs[3]]


def test_dense_round_trip_and_reference_decode():
    objs = rle_objs(10, seed=2)
    rles = RLEs.from_coco(objs)
    dense = rles.to_dense()
    np.testing.assert_array_equal(dense, P.decode(objs))
    for i, m in enumerate(reference.decode(rles)):
        np.testing.assert_array_equal(m, dense[:, :, i])
    assert RLEs.from_dense(dense).to_coco() == objs


def test_arrays_are_read_only():
    rles = RLEs.from_coco(rle_objs(3))
    with pytest.raises(ValueError):
        rles.counts[0] = 5


@pytest.mark.parametrize(
    "counts, offsets, heights, widths, match",
    [
        ([1, 2, 3], [0, 3], [2], [3], None),  # valid: sums to 6
        ([1, 2, 3], [0, 3], [2], [2], "sum to 6"),
        ([1, 2, 3], [0, 2], [2], [3], "rise from 0"),
        ([1, 2, 3], [0, 3, 3], [2], [3], "n \\+ 1"),
        ([1, 2, 3], [0, 3], [2], [-3], "negative"),
        ([1, -2, 7], [0, 3], [2], [3], "0 .. 2"),
        ([1.5], [0, 1], [1], [1], "run lengths"),
    ],
)
def test_constructor_validation(counts, offsets, heights, widths, match):
    if match is None:
        assert len(RLEs(counts, offsets, heights, widths)) == 1
        return
    with pytest.raises(ValueError, match=match):
        RLEs(counts, offsets, heights, widths)


def test_from_coco_names_the_bad_mask():
    objs = rle_objs(4)
    objs[2] = {"size": [20, 30], "counts": objs[2]["counts"][:-1] + b"\x7f"}
    with pytest.raises(ValueError, match="mask 2"):
        RLEs.from_coco(objs)
    objs[2] = {"size": [20, 30], "counts": [5, 5]}  # a run list among strings, too short
    with pytest.raises(ValueError, match="mask 2"):
        RLEs.from_coco(objs)
    with pytest.raises(TypeError, match="mask 1"):
        RLEs.from_coco([objs[0], "x"])
    with pytest.raises(TypeError, match="one dict"):
        RLEs.from_coco(objs[0])


def groups_case(seed, sizes):
    rng = np.random.default_rng(seed)
    dt_objs = rle_objs(40, seed=seed, sizes=sizes)
    gt_objs = rle_objs(30, seed=seed + 1, sizes=sizes)
    dt_index = rng.permutation(40)
    gt_index = rng.integers(0, 30, 50)
    crowd = rng.integers(0, 2, 50)
    d_start = np.array([0, 8, 8, 20, 33, 40])
    d_end = np.array([8, 8, 20, 33, 40, 40])
    g_start = np.array([0, 4, 10, 10, 30, 50])
    g_end = np.array([10, 30, 10, 30, 50, 50])
    return dt_objs, gt_objs, dt_index, gt_index, crowd, (d_start, d_end, g_start, g_end)


@pytest.mark.parametrize("method", ["auto", "runs", "columns"])
@pytest.mark.parametrize("threads", [1, 2, None])
@pytest.mark.parametrize("sizes", [((20, 30),), ((20, 30), (20, 30), (25, 30))])
def test_iou_groups_equal_pycocotools(threads, sizes, method):
    dt_objs, gt_objs, dt_index, gt_index, crowd, (ds, de, gs, ge) = groups_case(7, sizes)
    dt, gt = RLEs.from_coco(dt_objs), RLEs.from_coco(gt_objs)
    values, offsets = iou_groups(
        dt, dt_index, ds, de, gt, gt_index, gs, ge, crowd, threads, method=method
    )
    assert values.dtype == np.float64 and offsets.dtype == np.int64
    assert offsets.shape == (len(ds) + 1,) and offsets[-1] == values.shape[0]
    seen_minus_one = False
    for j in range(len(ds)):
        rows, cols = dt_index[ds[j] : de[j]], gt_index[gs[j] : ge[j]]
        block = values[offsets[j] : offsets[j + 1]].reshape(len(rows), len(cols))
        if len(rows) == 0 or len(cols) == 0:
            assert block.size == 0
            continue
        want = P.iou([dt_objs[i] for i in rows], [gt_objs[i] for i in cols], crowd[gs[j] : ge[j]])
        np.testing.assert_array_equal(block, want)
        ref = reference.pairwise_rle(dt.subset(rows), gt.subset(cols), crowd[gs[j] : ge[j]])
        np.testing.assert_array_equal(block, ref)
        seen_minus_one |= bool((want == -1).any())
    assert seen_minus_one == (len(sizes) > 1)


def test_iou_groups_validates_before_the_kernel():
    dt = RLEs.from_coco(rle_objs(3))
    ok = dict(dt_index=[0, 1], d_start=[0], d_end=[2], gt_index=[2], g_start=[0], g_end=[1])

    def call(**change):
        a = {**ok, **change}
        return iou_groups(
            dt,
            a["dt_index"],
            a["d_start"],
            a["d_end"],
            dt,
            a["gt_index"],
            a["g_start"],
            a["g_end"],
            change.get("crowd", [0] * len(a["gt_index"])),
        )

    assert call()[0].shape == (2,)
    with pytest.raises(ValueError, match="outside"):
        call(dt_index=[0, 3])
    with pytest.raises(ValueError, match="outside"):
        call(gt_index=[-1])
    with pytest.raises(ValueError, match="start <= end"):
        call(d_end=[3])
    with pytest.raises(ValueError, match="start <= end"):
        call(g_start=[1], g_end=[0])
    with pytest.raises(ValueError, match="one entry per group"):
        call(g_end=[1, 1])
    with pytest.raises(ValueError, match="aligned"):
        call(crowd=[0, 1])
    with pytest.raises(TypeError, match="integers"):
        call(dt_index=[0.0, 1.0])
    with pytest.raises(TypeError, match="RLEs"):
        iou_groups([], [], [], [], dt, [], [], [], [])
    with pytest.raises(ValueError, match="method"):
        iou_groups(dt, [], [], [], dt, [], [], [], [], method="pairs")


def test_merge_and_polygons_on_packed():
    objs = rle_objs(6)
    rles = RLEs.from_coco(objs)
    assert rles.merge().to_coco()[0] == P.merge(objs)
    assert rles.merge(True).to_coco()[0] == P.merge(objs, 1)
