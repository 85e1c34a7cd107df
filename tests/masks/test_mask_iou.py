"""fastiou.mask_iou on every backend against the numpy reference (one body), hand-computed
cases, pycocotools on RLE input, torch in and out, and the errors."""

import warnings

import numpy as np
import pytest
from conftest import require_peer

import fastiou
from fastiou.masks import RLEs


@pytest.fixture
def mask_backend(backend, monkeypatch) -> str:
    """Each backend; CUDA (under the simulator) with tiny tiles so that several blocks run."""
    if backend == "cuda":
        import fastiou.masks._cuda as masks_cuda

        monkeypatch.setattr(masks_cuda, "TILE", 4)
        monkeypatch.setattr(masks_cuda, "CHUNK", 8)
        monkeypatch.setattr(masks_cuda, "AREA_THREADS", 8)
    return backend


def dense_case(n, m, h, w, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((n, h, w)) < rng.uniform(0.05, 0.6, (n, 1, 1))
    b = rng.random((m, h, w)) < rng.uniform(0.05, 0.6, (m, 1, 1))
    a[0] = False  # an empty mask
    b[-1] = True  # a full one
    if n > 2 and m > 2:
        b[1] = a[2]  # an identical pair
    return a, b, rng.integers(0, 2, m)


def by_hand():
    # 3 x 3 masks: a covers the top row (3 px), b the left column (3 px): 1 px in common.
    a = np.zeros((2, 3, 3), bool)
    a[0, 0, :] = True
    b = np.zeros((2, 3, 3), bool)
    b[0, :, 0] = True
    return a, b


@pytest.mark.parametrize("shape", [(5, 7, 6, 9), (3, 4, 1, 11), (4, 3, 11, 1), (1, 1, 1, 1)])
def test_dense_matches_reference(mask_backend, shape):
    a, b, crowd = dense_case(*shape, seed=sum(shape))
    want = fastiou.mask_iou(a, b, iscrowd=crowd, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every backend runs (or falls through quietly)
        got = fastiou.mask_iou(a, b, iscrowd=crowd, backend=mask_backend)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == shape[:2]
    np.testing.assert_array_equal(got, want)


def test_hand_computed(mask_backend):
    a, b = by_hand()
    got = fastiou.mask_iou(a, b, iscrowd=[0, 1], backend=mask_backend)
    # iou 1 / (3 + 3 - 1); empty masks: 0 (not NaN, as pycocotools); crowd column: 1 / area(a)
    np.testing.assert_array_equal(got, np.float32([[1 / 5, 0], [0, 0]]))
    a[1] = True  # full: crowd over an empty region scores 0; over itself 0 intersection
    got = fastiou.mask_iou(a, b, iscrowd=[1, 1], backend=mask_backend)
    np.testing.assert_array_equal(got, np.float32([[1 / 3, 0], [3 / 9, 0]]))


def test_dense_equals_pycocotools_in_float32(mask_backend):
    P = require_peer("pycocotools.mask")
    a, b, crowd = dense_case(6, 5, 8, 10, seed=3)
    enc = [P.encode(np.asfortranarray(x.transpose(1, 2, 0).astype(np.uint8))) for x in (a, b)]
    want = P.iou(enc[0], enc[1], crowd).astype(np.float32)
    np.testing.assert_array_equal(fastiou.mask_iou(a, b, iscrowd=crowd, backend=mask_backend), want)


def test_rle_input_equals_pycocotools(mask_backend):
    P = require_peer("pycocotools.mask")
    a, b, crowd = dense_case(6, 5, 8, 10, seed=4)
    dt = P.encode(np.asfortranarray(a.transpose(1, 2, 0).astype(np.uint8)))
    gt = P.encode(np.asfortranarray(b.transpose(1, 2, 0).astype(np.uint8)))
    gt.append(P.encode(np.ones((9, 10, 1), np.uint8, order="F"))[0])  # another size: -1
    crowd = np.r_[crowd, 0]
    want = P.iou(dt, gt, crowd)
    for x, y in ((dt, gt), (RLEs.from_coco(dt), RLEs.from_coco(gt))):
        got = fastiou.mask_iou(x, y, iscrowd=crowd, backend=mask_backend)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
    assert (want == -1).any()


def test_numeric_and_multivalued_masks():
    a, b, crowd = dense_case(4, 3, 5, 6, seed=5)
    want = fastiou.mask_iou(a, b, backend="numpy")
    np.testing.assert_array_equal(fastiou.mask_iou(a * np.uint8(3), b.astype(np.float32)), want)
    np.testing.assert_array_equal(fastiou.mask_iou(a.astype(np.int64), b), want)


def test_empty_sides():
    a, b, _ = dense_case(3, 3, 4, 4)
    assert fastiou.mask_iou(a[:0], b).shape == (0, 3)
    assert fastiou.mask_iou(a, b[:0]).shape == (3, 0)
    assert fastiou.mask_iou(np.zeros((2, 0, 5), bool), np.zeros((1, 0, 5), bool)).shape == (2, 1)


def test_torch_in_torch_out():
    torch = require_peer("torch")
    a, b, crowd = dense_case(4, 5, 6, 7, seed=6)
    want = fastiou.mask_iou(a, b, iscrowd=crowd, backend="numpy")
    got = fastiou.mask_iou(torch.from_numpy(a), torch.from_numpy(b), iscrowd=torch.tensor(crowd))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), want)


def test_errors():
    a, b, _ = dense_case(2, 2, 4, 4)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        fastiou.mask_iou(a[0], b)
    with pytest.raises(ValueError, match="one H x W"):
        fastiou.mask_iou(a, b[:, :3])
    with pytest.raises(ValueError, match="iscrowd"):
        fastiou.mask_iou(a, b, iscrowd=[0, 1, 0])
    with pytest.raises(TypeError, match="boolean or numeric"):
        fastiou.mask_iou(a.astype(complex), b)
    with pytest.raises(TypeError, match="both"):
        fastiou.mask_iou([{"size": [4, 4], "counts": b"`0"}], b)
    with pytest.raises(ValueError, match="unknown backend"):
        fastiou.mask_iou(a, b, backend="gpu")
