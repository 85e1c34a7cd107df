"""nms, batched_nms and soft_nms on every backend: the numpy reference (the plain greedy loop),
hand-built boxes around the threshold, degenerate boxes, torchvision parity, bad inputs."""

import math

import numpy as np
import pytest
from conftest import BACKENDS, ensure_available, require_peer, required_backends
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastiou
from fastiou._core import dispatch as _dispatch

NAN, INF = math.nan, math.inf
CUDA_MAX = 32  # boxes per CUDA case: the simulator runs every thread as Python code


@pytest.fixture
def nms_backend(backend, monkeypatch) -> str:
    """The ``backend`` fixture, checked for the NMS family; small CUDA blocks and words."""
    return _nms_backend(backend, monkeypatch)


@pytest.fixture(params=[name for name in BACKENDS if name != "numpy"])
def compiled_nms(request, monkeypatch) -> str:
    """As ``nms_backend``, without the numpy backend: for tests whose oracle IS the numpy
    backend (soft-NMS; its numpy backend is checked against hand-computed decays instead)."""
    ensure_available(request.param)
    return _nms_backend(request.param, monkeypatch)


def _nms_backend(backend: str, monkeypatch) -> str:
    loaded = _dispatch._load("nms", backend)
    if loaded == _dispatch.BY_DESIGN:
        pytest.skip(f"{backend!r} has no NMS kernel by design: it runs the next backend's")
    if isinstance(loaded, str):
        if backend in required_backends():
            pytest.fail(f"NMS backend {backend!r} is required but unavailable: {loaded}")
        pytest.skip(f"NMS backend {backend!r} unavailable: {loaded}")
    if backend == "cuda":
        # 4 threads and 8-box words: several blocks, words and walk threads on tiny inputs.
        monkeypatch.setattr(loaded, "BLOCK", 8)
        monkeypatch.setattr(loaded, "THREADS", 4)
    return backend


def size_for(backend: str, n: int) -> int:
    return min(n, CUDA_MAX) if backend == "cuda" else n


def cases_for(backend: str, cases: tuple, cuda_cases: tuple) -> tuple:
    """The cases to loop over: fewer under the (slow) CUDA simulator."""
    return cuda_cases if backend == "cuda" else cases


def detections(n: int, seed: int = 0, dtype=np.float32, canvas=200.0, clusters=None):
    """Detector-like boxes: jittered copies around cluster centres, so NMS has work to do.

    Scores are rounded to 1/16 so many are exactly equal (the stable order matters).
    """
    rng = np.random.default_rng(seed)
    clusters = clusters or max(1, n // 8)
    centres = rng.uniform(0, canvas, (clusters, 2))
    sizes = rng.uniform(4, canvas / 8, (clusters, 2))
    which = rng.integers(0, clusters, n)
    centre = centres[which] + rng.normal(0, 1, (n, 2)) * sizes[which] / 6
    size = sizes[which] * rng.uniform(0.7, 1.3, (n, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(dtype)
    scores = (np.round(rng.uniform(0, 1, n) * 16) / 16).astype(dtype)
    return boxes, scores


def visiting_order(scores) -> np.ndarray:
    """Indices by score, high to low, NaN first, equal scores by index (the NMS convention)."""
    scores = np.asarray(scores, np.float64)
    nan = np.isnan(scores)
    return np.lexsort((np.arange(len(scores)), -np.where(nan, 0, scores), ~nan))


def expected(boxes, scores, threshold, fmt="xyxy", max_output=None):
    """The greedy definition written out, independent of every NMS backend (the numpy one
    included): visit by score; keep a box unless its IoU (fastiou.box_iou, checked against
    torchvision in tests/boxes) with a kept box is > threshold, compared in float64."""
    iou = fastiou.box_iou(boxes, boxes, fmt=fmt, backend="numpy").astype(np.float64)
    kept: list[int] = []
    for i in visiting_order(scores):
        if not any(iou[k, i] > threshold for k in kept):
            kept.append(int(i))
    return np.array(kept[:max_output], np.int64)


def expected_batched(boxes, scores, labels, threshold) -> np.ndarray:
    """:func:`expected` within each class, merged in the visiting order of all the boxes."""
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        kept.extend(members[expected(boxes[members], scores[members], threshold)])
    kept = np.sort(np.array(kept, np.int64))  # by index, so that ties go to the lower one
    return kept[visiting_order(np.asarray(scores)[kept])] if len(kept) else kept


def assert_keep(got, want):
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# nms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0, -0.2])
def test_nms_matches_reference(nms_backend, dtype, threshold):
    for seed in range(3):
        boxes, scores = detections(size_for(nms_backend, 300), seed, dtype)
        want = expected(boxes, scores, threshold)
        assert_keep(fastiou.nms(boxes, scores, threshold, backend=nms_backend), want)


def test_oracle_is_the_greedy_definition():
    """The oracle itself: each kept box has IoU <= t with every kept box visited before it, each
    dropped box has IoU > t with one (checked pair by pair from the IoU matrix)."""
    boxes, scores = detections(120, seed=7, dtype=np.float64)
    keep = expected(boxes, scores, 0.5)
    iou = fastiou.box_iou(boxes, boxes, backend="numpy")
    position = {int(i): rank for rank, i in enumerate(visiting_order(scores))}
    kept = set(keep.tolist())
    for i in range(len(boxes)):
        earlier_kept = [k for k in kept if position[k] < position[i]]
        assert (i in kept) == all(iou[k, i] <= 0.5 for k in earlier_kept)
    assert [position[k] for k in keep] == sorted(position[k] for k in keep)


def box_pair(iou_height: float, dtype):
    """A [0, 0, 10, 10] box (score 0.9) and [0, 0, 10, h] (score 0.8): IoU = h / 10."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, iou_height]], dtype)
    return boxes, np.array([0.9, 0.8], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_iou_just_above_and_below_threshold(nms_backend, dtype):
    boxes, scores = box_pair(5, dtype)  # IoU exactly 0.5
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), [0, 1])  # not > 0.5
    just_below = math.nextafter(0.5, 0)
    assert_keep(fastiou.nms(boxes, scores, just_below, backend=nms_backend), [0])
    # IoU 70 / 100: 0.7 in float64 but 0.699999988 in float32; the threshold is compared in
    # float64 (torchvision compares float IoU with a double threshold).
    boxes, scores = box_pair(7, dtype)
    assert_keep(fastiou.nms(boxes, scores, 0.7, backend=nms_backend), [0, 1])
    between = 0.69999999  # above float32(0.7), below float64 0.7
    want = [0, 1] if dtype == np.float32 else [0]
    assert_keep(fastiou.nms(boxes, scores, between, backend=nms_backend), want)
    assert_keep(fastiou.nms(boxes, scores, 0.6999999, backend=nms_backend), [0])


def test_heavy_ties_keep_lower_index_first(nms_backend):
    # Disjoint boxes, scores with ties: the result is the stable descending order.
    n = size_for(nms_backend, 100)
    x = np.arange(n, dtype=np.float32) * 10
    boxes = np.stack([x, x, x + 5, x + 5], axis=1)
    scores = np.array([1.0, 2.0, 2.0, 1.0] * n, np.float32)[:n]
    want = np.lexsort((np.arange(n), -scores))
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), want)
    # A chain of overlapping equal-score boxes: the lowest index wins each overlap.
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [20, 0, 30, 10]], np.float32)
    scores = np.ones(4, np.float32)
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), [0, 3])


@pytest.mark.parametrize("n", [5, 200])
def test_identical_boxes(nms_backend, n):
    n = size_for(nms_backend, n)
    boxes = np.tile(np.array([[3, 4, 13, 24]], np.float32), (n, 1))
    scores = np.linspace(0, 1, n, dtype=np.float32)
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), [n - 1])
    assert_keep(fastiou.nms(boxes, np.ones(n, np.float32), 0.99, backend=nms_backend), [0])
    # IoU is exactly 1, never > 1: nothing is suppressed at threshold 1.
    keep = fastiou.nms(boxes, scores, 1.0, backend=nms_backend)
    assert_keep(keep, np.arange(n)[::-1])


def test_degenerate_boxes_never_suppress(nms_backend):
    boxes = np.array(
        [
            [0, 0, 0, 0],  # a point: area 0
            [0, 0, 0, 0],  # the same point: 0 / 0 = NaN never suppresses
            [0, 0, 10, 0],  # a line
            [0, 0, 10, 10],
            [5, 5, 5, 8],  # zero width inside the box above: IoU 0
            [8, 8, 2, 2],  # inverted: negative area
            [NAN, 0, 10, 10],  # NaN coordinate
            [0, 0, 10, 10],  # a duplicate of box 3, suppressed at any threshold < 1
        ],
        np.float32,
    )
    scores = np.linspace(1, 0.2, len(boxes)).astype(np.float32)
    for threshold in (0.0, 0.5):
        keep = fastiou.nms(boxes, scores, threshold, backend=nms_backend)
        assert_keep(keep, [0, 1, 2, 3, 4, 5, 6])
        assert_keep(keep, expected(boxes, scores, threshold))
    # A negative threshold: IoU 0 > t, so every non-NaN pair suppresses.
    keep = fastiou.nms(boxes, scores, -0.5, backend=nms_backend)
    assert_keep(keep, expected(boxes, scores, -0.5))


def test_threshold_zero_and_touching_boxes(nms_backend):
    # Boxes sharing an edge have intersection 0: not suppressed even at threshold 0.
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [9.5, 0, 19.5, 10]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    assert_keep(fastiou.nms(boxes, scores, 0.0, backend=nms_backend), [0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_and_huge_coordinates(nms_backend, dtype):
    boxes, scores = detections(size_for(nms_backend, 200), seed=3, dtype=np.float64)
    cases = [boxes - 1e4, -boxes[:, [2, 3, 0, 1]], boxes + 1e6, boxes * 1e15, boxes * 1e-30]
    if dtype == np.float32:
        cases.append(boxes * 1e18)  # some areas overflow float32 to inf: those never suppress
    else:
        cases.append(boxes * 1e160)  # areas overflow float64
        cases.append(boxes * 1e-170)  # areas underflow float64
    for case in cases:
        case = case.astype(dtype)
        for threshold in cases_for(nms_backend, (0.0, 0.5), (0.5,)):
            want = expected(case, scores, threshold)
            assert_keep(fastiou.nms(case, scores, threshold, backend=nms_backend), want)


def grid_cases(n: int) -> tuple[dict, np.ndarray]:
    """Box sets that stress the grid (it must never miss an overlapping box), and scores."""
    rng = np.random.default_rng(11)
    boxes, scores = detections(n, seed=5, dtype=np.float64)
    cases = {
        # A few boxes far larger than the median, some of them overlapping each other.
        "giants": np.concatenate([boxes[:-8], [[-50, -50, 400, 400]] * 4, [[0, 0, 300, 390]] * 4]),
        # Two far-apart clusters: the cell count hits its cap.
        "sparse": np.concatenate([boxes[: n // 2], boxes[n // 2 :] + 1e7]),
        # All boxes on one horizontal line.
        "line": np.column_stack([boxes[:, 0], np.zeros(n), boxes[:, 2], np.ones(n)]),
        # Tiny and huge boxes mixed.
        "scales": boxes * rng.choice([1e-3, 1.0, 1e3], (n, 1)),
        # Every box the same but for a small jitter.
        "pile": np.array([0, 0, 10, 10]) + rng.normal(0, 0.3, (n, 4)),
        # Zero-area and inverted boxes among normal ones.
        "degenerate": np.where(rng.random((n, 1)) < 0.2, boxes[:, [2, 3, 0, 1]], boxes),
    }
    return cases, scores


def test_grid_edge_cases(nms_backend):
    cases, scores = grid_cases(size_for(nms_backend, 400))
    for name, case in cases.items():
        for dtype in cases_for(nms_backend, (np.float32, np.float64), (np.float32,)):
            b = case.astype(dtype)
            s = scores.astype(dtype)
            for threshold in cases_for(nms_backend, (0.0, 0.1, 0.5, 0.9), (0.5,)):
                want = expected(b, s, threshold)
                got = fastiou.nms(b, s, threshold, backend=nms_backend)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {dtype} {threshold}")


def test_nan_scores_sort_first_as_torch(nms_backend):
    boxes = np.array([[0, 0, 10, 10]] * 4 + [[50, 50, 60, 60]] * 2, np.float32)
    scores = np.array([0.5, NAN, INF, NAN, -0.0, 0.0], np.float32)
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), [1, 4])
    assert_keep(fastiou.nms(boxes, scores, 1.0, backend=nms_backend), [1, 3, 2, 0, 4, 5])


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_formats(nms_backend, fmt):
    boxes, scores = detections(size_for(nms_backend, 200), seed=2, dtype=np.float64)
    converted = fastiou.box_convert(boxes, "xyxy", fmt)
    want = expected(fastiou.box_convert(converted, fmt, "xyxy"), scores, 0.5)
    assert_keep(fastiou.nms(converted, scores, 0.5, fmt=fmt, backend=nms_backend), want)


def test_max_output(nms_backend):
    boxes, scores = detections(size_for(nms_backend, 200), seed=4)
    full = expected(boxes, scores, 0.5)
    for cap in (0, 1, 7, len(full), len(full) + 5):
        got = fastiou.nms(boxes, scores, 0.5, max_output=cap, backend=nms_backend)
        assert_keep(got, full[:cap])


def test_dtypes_and_layouts(nms_backend):
    boxes, scores = detections(size_for(nms_backend, 120), seed=6, dtype=np.float64)
    want = expected(boxes.astype(np.float32), scores.astype(np.float32), 0.5)
    cases = [
        (boxes.astype(np.float32), scores.astype(np.float32)),
        (np.asfortranarray(boxes.astype(np.float32)), scores.astype(np.float32)),
        (boxes.astype(">f4"), scores.astype(">f4")),
    ]
    for b, s in cases:
        assert_keep(fastiou.nms(b, s, 0.5, backend=nms_backend), want)
    # float64 scores with float32 boxes: sorted as float64 (no ties created by a conversion).
    s64 = np.array([0.5 + 1e-12, 0.5, 0.5 - 1e-12])
    b = np.array([[0, 0, 10, 10]] * 3, np.float32)
    assert_keep(fastiou.nms(b, s64[::-1].copy(), 0.5, backend=nms_backend), [2])
    # Integer boxes compute in float32, integer scores are compared exactly.
    ints = np.round(boxes * 10).astype(np.int32)
    want = expected(ints.astype(np.float32), scores, 0.5)
    assert_keep(fastiou.nms(ints, scores, 0.5, backend=nms_backend), want)


def test_empty_and_single(nms_backend):
    keep = fastiou.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert_keep(keep, np.zeros(0, np.int64))
    keep = fastiou.nms(np.array([[0, 0, 1, 1.0]]), np.array([0.3]), 0.5, backend=nms_backend)
    assert_keep(keep, [0])


def test_torch_in_torch_out(nms_backend):
    torch = require_peer("torch")
    boxes, scores = detections(size_for(nms_backend, 100), seed=8)
    want = expected(boxes, scores, 0.5)
    keep = fastiou.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, backend=nms_backend)
    assert isinstance(keep, torch.Tensor) and keep.dtype == torch.int64
    assert keep.device.type == "cpu"
    np.testing.assert_array_equal(keep.numpy(), want)
    empty = fastiou.nms(torch.zeros(0, 4), torch.zeros(0), 0.5, backend=nms_backend)
    assert isinstance(empty, torch.Tensor) and empty.dtype == torch.int64 and empty.numel() == 0
    kept, new_scores = fastiou.soft_nms(torch.from_numpy(boxes), torch.from_numpy(scores))
    assert isinstance(kept, torch.Tensor) and kept.dtype == torch.int64
    assert isinstance(new_scores, torch.Tensor) and new_scores.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# batched_nms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_nms_matches_reference(nms_backend, dtype):
    rng = np.random.default_rng(9)
    for seed, classes in ((0, 1), (1, 5), (2, 40)):
        boxes, scores = detections(size_for(nms_backend, 400), seed, dtype)
        # Labels: a few classes, as arbitrary (negative, sparse) integers.
        labels = rng.choice(np.array([-7, 0, 3, 10**12, 5])[: max(1, min(5, classes))], len(boxes))
        if classes == 40:
            labels = rng.integers(0, 40, len(boxes))
        for threshold in cases_for(nms_backend, (0.0, 0.5, 0.8), (0.5,)):
            want = expected_batched(boxes, scores, labels, threshold)
            got = fastiou.batched_nms(boxes, scores, labels, threshold, backend=nms_backend)
            assert_keep(got, want)
            got = fastiou.batched_nms(
                boxes, scores, labels, threshold, max_output=5, backend=nms_backend
            )
            assert_keep(got, want[:5])


def test_batched_nms_is_per_class(nms_backend):
    # Overlapping boxes of different classes do not suppress each other; with negative
    # coordinates the offset trick of old implementations would make classes collide.
    boxes = np.array([[-10, -10, 0, 0], [-10, -10, 0, 0], [-9, -10, 0, 0], [-20, -20, -10, -10]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    idxs = np.array([0, 1, 0, 1])
    assert_keep(fastiou.batched_nms(boxes, scores, idxs, 0.5, backend=nms_backend), [0, 1, 3])
    labels_uint = np.array([2**64 - 1, 0, 2**64 - 1, 0], np.uint64)
    keep = fastiou.batched_nms(boxes, scores, labels_uint, 0.5, backend=nms_backend)
    assert_keep(keep, [0, 1, 3])


def test_batched_nms_empty(nms_backend):
    empty = fastiou.batched_nms(
        np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5, backend=nms_backend
    )
    assert_keep(empty, np.zeros(0, np.int64))


# ---------------------------------------------------------------------------------------------
# torchvision parity
# ---------------------------------------------------------------------------------------------


def torchvision_ops():
    torch = require_peer("torch", reason="torch is not installed")
    tv = require_peer("torchvision", reason="torchvision is not installed")
    return torch, tv.ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_torchvision(nms_backend, dtype):
    torch, ops = torchvision_ops()
    for seed in range(12 if nms_backend != "cuda" else 2):
        n = size_for(nms_backend, [10, 200, 1500][seed % 3])
        boxes, scores = detections(n, seed, dtype, clusters=max(1, n // (2 + seed % 9)))
        threshold = [0.0, 0.3, 0.5, 0.7, 0.95][seed % 5]
        want = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        assert_keep(fastiou.nms(boxes, scores, threshold, backend=nms_backend), want)
    # Heavy ties, NaN scores, degenerate boxes.
    boxes, scores = detections(size_for(nms_backend, 300), 42, dtype)
    scores[::7] = NAN
    boxes[::11, 2] = boxes[::11, 0]
    want = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert_keep(fastiou.nms(boxes, scores, 0.5, backend=nms_backend), want)


def test_batched_nms_matches_torchvision(nms_backend):
    torch, ops = torchvision_ops()
    rng = np.random.default_rng(0)
    for seed in range(8 if nms_backend != "cuda" else 2):
        n = size_for(nms_backend, [50, 800, 3000][seed % 3])  # both torchvision code paths
        boxes, _ = detections(n, seed, np.float32)
        # Distinct scores: for large inputs torchvision orders the merged result with an
        # unstable sort, so equally scored kept boxes may come in any order there.
        scores = (rng.permutation(n) / n).astype(np.float32)
        idxs = rng.integers(0, [1, 5, 80][seed % 3], n)
        want = ops.batched_nms(
            torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5
        ).numpy()
        assert_keep(fastiou.batched_nms(boxes, scores, idxs, 0.5, backend=nms_backend), want)


# ---------------------------------------------------------------------------------------------
# soft_nms
# ---------------------------------------------------------------------------------------------

# A [0,0,10,10] 0.9; B [0,0,10,5] 0.8 (IoU with A 0.5); C [20,20,30,30] 0.7 (apart);
# D [0,0,10,8] 0.85 (IoU with A 0.8, with B 50 / 80 = 0.625).
SOFT_BOXES = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30], [0, 0, 10, 8]], float)
SOFT_SCORES = np.array([0.9, 0.8, 0.7, 0.85])


def test_soft_nms_by_hand(nms_backend):
    # Linear: A; then D = 0.85 * (1 - 0.8) = 0.17, B = 0.8 * 0.5 = 0.4; C 0.7; B 0.4;
    # then D = 0.17 * (1 - 0.625) = 0.06375.
    keep, scores = fastiou.soft_nms(SOFT_BOXES, SOFT_SCORES, 0.3, backend=nms_backend)
    assert_keep(keep, [0, 2, 1, 3])
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.4, 0.06375], rtol=1e-12)
    assert scores.dtype == np.float64
    # The score threshold drops D (0.06375 < 0.1); an IoU threshold above 0.8 decays nothing.
    keep, scores = fastiou.soft_nms(
        SOFT_BOXES, SOFT_SCORES, 0.3, score_threshold=0.1, backend=nms_backend
    )
    assert_keep(keep, [0, 2, 1])
    keep, scores = fastiou.soft_nms(SOFT_BOXES, SOFT_SCORES, 0.81, backend=nms_backend)
    assert_keep(keep, [0, 3, 1, 2])
    np.testing.assert_allclose(scores, SOFT_SCORES[[0, 3, 1, 2]], rtol=1e-12)
    # Gaussian, sigma 0.5: D = 0.85 e^(-0.64 / 0.5), B = 0.8 e^(-0.25 / 0.5); then C, B, and
    # D decays by e^(-0.625^2 / 0.5) once more.
    keep, scores = fastiou.soft_nms(SOFT_BOXES, SOFT_SCORES, method="gaussian", backend=nms_backend)
    assert_keep(keep, [0, 2, 1, 3])
    d = 0.85 * math.exp(-0.64 / 0.5) * math.exp(-(0.625**2) / 0.5)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.8 * math.exp(-0.5), d], rtol=1e-12)
    # Boxes scoring below the threshold from the start are dropped, the top one included.
    keep, _ = fastiou.soft_nms(SOFT_BOXES, SOFT_SCORES * 1e-3, backend=nms_backend)
    assert_keep(keep, np.zeros(0, np.int64))
    keep, _ = fastiou.soft_nms(SOFT_BOXES, SOFT_SCORES, max_output=2, backend=nms_backend)
    assert_keep(keep, [0, 2])


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_nms_matches_reference(compiled_nms, method, dtype):
    for seed in range(3):
        boxes, scores = detections(size_for(compiled_nms, 150), seed, dtype)
        scores[::13] = NAN if seed == 1 else scores[::13]
        kwargs = {"method": method, "sigma": 0.3, "score_threshold": 0.05}
        want_keep, want_scores = fastiou.soft_nms(boxes, scores, 0.4, backend="numpy", **kwargs)
        keep, new_scores = fastiou.soft_nms(boxes, scores, 0.4, backend=compiled_nms, **kwargs)
        assert_keep(keep, want_keep)
        assert new_scores.dtype == np.dtype(dtype)
        # exp may differ in its last bit between libm, numpy and CUDA.
        tol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(new_scores, want_scores, rtol=tol, equal_nan=True)


def test_soft_nms_grid_edge_cases(compiled_nms):
    cases, scores = grid_cases(size_for(compiled_nms, 300))
    # Negative scores rise when decayed (-0.5 * 0.5 = -0.25): kept with a negative threshold.
    scores = scores - 0.5
    for name, case in cases.items():
        for method in cases_for(compiled_nms, ("linear", "gaussian"), ("linear",)):
            kwargs = {"method": method, "score_threshold": -0.3, "iou_threshold": 0.2}
            want_keep, want_scores = fastiou.soft_nms(case, scores, backend="numpy", **kwargs)
            keep, new_scores = fastiou.soft_nms(case, scores, backend=compiled_nms, **kwargs)
            np.testing.assert_array_equal(keep, want_keep, err_msg=f"{name} {method}")
            np.testing.assert_allclose(new_scores, want_scores, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Backend agreement on arbitrary small inputs
# ---------------------------------------------------------------------------------------------

COORDINATE = st.one_of(st.integers(-3, 3).map(float), st.floats(-100, 100, width=32), st.just(NAN))


@pytest.mark.parametrize("compiled", ["cython"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.tuples(*[COORDINATE] * 4, st.integers(0, 4)), min_size=1, max_size=150),
    threshold=st.sampled_from([-0.1, 0.0, 0.25, 0.5, 1.0]),
)
def test_property_backends_agree(compiled, data, threshold):
    if isinstance(_dispatch._load("nms", compiled), str):
        pytest.skip(f"NMS backend {compiled!r} unavailable")
    boxes = np.array([row[:4] for row in data], np.float32)
    scores = np.array([row[4] / 4 for row in data], np.float32)
    labels = np.array([row[4] % 2 for row in data])
    want = expected(boxes, scores, threshold)
    assert_keep(fastiou.nms(boxes, scores, threshold, backend=compiled), want)
    want = expected_batched(boxes, scores, labels, threshold)
    assert_keep(fastiou.batched_nms(boxes, scores, labels, threshold, backend=compiled), want)


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------

BOXES = np.array([[0, 0, 1, 1], [0, 0, 2, 2]], np.float32)
SCORES = np.array([0.5, 0.6], np.float32)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: fastiou.nms(BOXES[:, :3], SCORES, 0.5), ValueError, r"boxes must have shape"),
        (lambda: fastiou.nms(BOXES[None], SCORES, 0.5), ValueError, r"boxes must have shape"),
        (lambda: fastiou.nms(BOXES, SCORES[:, None], 0.5), ValueError, r"scores must have"),
        (lambda: fastiou.nms(BOXES, SCORES[:1], 0.5), ValueError, r"same length"),
        (lambda: fastiou.nms(BOXES, SCORES, NAN), ValueError, r"iou_threshold must be finite"),
        (lambda: fastiou.nms(BOXES, SCORES, INF), ValueError, r"iou_threshold must be finite"),
        (lambda: fastiou.nms(BOXES, SCORES, "0.5"), TypeError, r"iou_threshold must be a real"),
        (lambda: fastiou.nms(BOXES, SCORES, None), TypeError, r"iou_threshold must be a real"),
        (lambda: fastiou.nms(BOXES.astype(bool), SCORES, 0.5), TypeError, r"real numbers"),
        (lambda: fastiou.nms(BOXES, SCORES, 0.5, fmt="yxyx"), ValueError, r"fmt must be"),
        (lambda: fastiou.nms(BOXES, SCORES, 0.5, max_output=-1), ValueError, r"max_output"),
        (lambda: fastiou.nms(BOXES, SCORES, 0.5, max_output=1.5), ValueError, r"max_output"),
        (lambda: fastiou.nms(BOXES, SCORES, 0.5, backend="gpu"), ValueError, r"unknown backend"),
        (
            lambda: fastiou.batched_nms(BOXES, SCORES, np.array([0.0, 1.0]), 0.5),
            TypeError,
            r"idxs must hold integer",
        ),
        (
            lambda: fastiou.batched_nms(BOXES, SCORES, np.array([0, 1, 2]), 0.5),
            ValueError,
            r"idxs must have shape \[N\] = \[2\]",
        ),
        (
            lambda: fastiou.batched_nms(BOXES, SCORES, np.array([[0, 1]]), 0.5),
            ValueError,
            r"idxs must have shape",
        ),
        (lambda: fastiou.soft_nms(BOXES, SCORES, method="hard"), ValueError, r"method must be"),
        (lambda: fastiou.soft_nms(BOXES, SCORES, sigma=0.0), ValueError, r"sigma must be > 0"),
        (
            lambda: fastiou.soft_nms(BOXES, SCORES, score_threshold=NAN),
            ValueError,
            r"score_threshold must be finite",
        ),
    ],
)
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mixed_devices_rejected():
    torch = require_peer("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device for torch")
    with pytest.raises(ValueError, match="all be on the CPU or all on a GPU"):
        fastiou.nms(torch.from_numpy(BOXES).cuda(), torch.from_numpy(SCORES), 0.5)
