"""Confusion counts: every backend against the oracle, on many dtypes, shapes, layouts and settings.

The oracle (``confusion_reference.oracle``) converts to Python ints and applies the conventions
one pixel at a time; it shares no code with the backends. CUDA cases run under the simulator with
tiny blocks (several blocks, each with its shared-memory histogram), on tiny inputs.
"""

import os
import pickle
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import require_peer
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastiou
from fastiou.semantic._reference import oracle

LABEL_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.fixture
def seg_backend(backend, monkeypatch):
    """The ``backend`` fixture's backend; the CUDA confusion kernels with tiny blocks."""
    if backend == "cuda":
        from fastiou.semantic import _cuda as confusion_cuda

        monkeypatch.setattr(confusion_cuda, "THREADS", 4)
        monkeypatch.setattr(confusion_cuda, "MAX_BLOCKS", 3)
    return backend


def small(backend, shape):
    """``shape``, cut down for the CUDA simulator (every CUDA thread is Python code there)."""
    return tuple(min(n, 3) for n in shape) if backend == "cuda" else shape


def labels(shape, num_classes, dtype=np.uint8, seed=0, extra=()):
    """Random labels in [0, num_classes) plus, at ~15% of the pixels, values from ``extra``."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, num_classes, shape)
    if extra:
        mask = rng.random(shape) < 0.15
        x = np.where(mask, rng.choice(np.asarray(extra, dtype=object), shape), x)
    return np.asarray(x).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Against the oracle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", LABEL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (5, 6), (2, 3, 4), (2, 1, 3, 2, 5)], ids=str)
def test_labels_match_oracle(seg_backend, dtype, shape):
    shape = small(seg_backend, shape)
    ignore = -1 if np.dtype(dtype).kind == "i" else 200
    target = labels(shape, 6, dtype, seed=1, extra=[ignore])
    prediction = labels(shape, 6, dtype, seed=2)
    got = fastiou.confusion_matrix(prediction, target, 6, ignore_index=ignore, backend=seg_backend)
    assert got.dtype == np.int64 and got.shape == (6, 6)
    np.testing.assert_array_equal(got, oracle(prediction, target, 6, ignore_index=ignore))


def test_bool_labels(seg_backend):
    target = labels(small(seg_backend, (4, 5)), 2, bool, seed=3)
    prediction = labels(target.shape, 2, bool, seed=4)
    got = fastiou.confusion_matrix(prediction, target, 2, backend=seg_backend)
    np.testing.assert_array_equal(got, oracle(prediction, target, 2))


@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[:, ::2],
        lambda x: x[::-1, 1:],
        lambda x: x.T,
        lambda x: x[1:, ::-3],
        lambda x: np.broadcast_to(x[:1], x.shape),
    ],
    ids=["step", "reversed", "transposed", "negative-step", "broadcast"],
)
def test_non_contiguous_views(seg_backend, view):
    base_t = labels((6, 9), 5, seed=5, extra=[255])
    base_p = labels((6, 9), 5, seed=6)
    target, prediction = view(base_t), view(base_p)
    if seg_backend == "cuda":
        target, prediction = target[:3, :3], prediction[:3, :3]
    got = fastiou.confusion_matrix(prediction, target, 5, ignore_index=255, backend=seg_backend)
    np.testing.assert_array_equal(got, oracle(prediction, target, 5, ignore_index=255))


def test_views_that_do_not_collapse(seg_backend):
    # Four dimensions that stay apart after collapsing: the kernels run once per leading index.
    base = labels((3, 4, 5, 6), 4, np.int16, seed=7, extra=[-7])
    target = base[:, ::2, :, ::3]  # (3, 2, 5, 2), strided everywhere
    swapped = np.ascontiguousarray(labels(target.shape, 4, np.int16, seed=8).transpose(0, 2, 1, 3))
    prediction = swapped.transpose(0, 2, 1, 3)  # same shape, other memory order
    if seg_backend == "cuda":
        target, prediction = target[:2, :, :, :1], prediction[:2, :, :, :1]
    got = fastiou.confusion_matrix(prediction, target, 4, ignore_index=-7, backend=seg_backend)
    np.testing.assert_array_equal(got, oracle(prediction, target, 4, ignore_index=-7))


def test_mixed_dtypes(seg_backend):
    target = labels(small(seg_backend, (4, 6)), 5, np.int32, seed=9, extra=[255])
    prediction = labels(target.shape, 5, np.uint8, seed=10)
    got = fastiou.confusion_matrix(prediction, target, 5, ignore_index=255, backend=seg_backend)
    np.testing.assert_array_equal(got, oracle(prediction, target, 5, ignore_index=255))


def test_invalid_wide_target_with_byte_predictions(seg_backend):
    # 19 classes: (C + 1)**2 = 400 does not fit the predictions' uint8.
    target = np.array([[0, 300, 18], [255, 4, 2]], np.int32)
    prediction = np.array([[0, 1, 18], [7, 4, 2]], np.uint8)
    with pytest.raises(ValueError, match="target label 300"):
        fastiou.confusion_matrix(prediction, target, 19, ignore_index=255, backend=seg_backend)
    target[0, 1] = 255
    got = fastiou.confusion_matrix(prediction, target, 19, ignore_index=255, backend=seg_backend)
    np.testing.assert_array_equal(got, oracle(prediction, target, 19, ignore_index=255))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.uint64])
@pytest.mark.parametrize(
    "settings, high, extra",
    [
        ({"ignore_index": [255, 254]}, 4, [255, 254]),
        ({"label_map": {7: 0, 8: 255, 0: 3}, "ignore_index": 255}, 4, [7, 8, 255]),
        ({"label_map": np.array([2, 2, 1, 0, 9, 255, 3]), "ignore_index": 255}, 4, [5, 6, 255]),
        ({"reduce_zero_label": True, "ignore_index": 255}, 5, [255]),
        ({"label_map": {9: 1}, "reduce_zero_label": True, "ignore_index": [255, 5]}, 5, [9, 6]),
    ],
    ids=["several-ignore", "map-dict", "map-table", "reduce-zero", "map-reduce-ignore"],
)
def test_label_settings(seg_backend, dtype, settings, high, extra):
    target = labels(small(seg_backend, (5, 7)), high, dtype, seed=11, extra=extra)
    prediction = labels(target.shape, 4, np.uint8, seed=12)
    got = fastiou.confusion_matrix(prediction, target, 4, backend=seg_backend, **settings)
    np.testing.assert_array_equal(got, oracle(prediction, target, 4, **settings))


def test_label_map_to_an_invalid_class(seg_backend):
    target = np.array([0, 1, 2], np.uint8)
    with pytest.raises(ValueError, match=r"target label 2 \(becoming 9\) is outside"):
        fastiou.confusion_matrix(target, target, 4, label_map={2: 9}, backend=seg_backend)


@pytest.mark.parametrize(
    "dtype, special",
    [
        (np.int32, [-1, 2**31 - 1, -(2**31)]),
        (np.int64, [-5, 2**40, 2**63 - 1]),
        (np.uint32, [2**32 - 1, 2**20, 100_000]),
        (np.uint64, [2**64 - 1, 2**63 - 7]),
    ],
)
def test_wide_labels_with_far_ignore_values_and_map_keys(seg_backend, dtype, special):
    # Values outside the kernels' table go through the short list of extra keys.
    target = labels(small(seg_backend, (6, 5)), 3, dtype, seed=13, extra=special)
    prediction = labels(target.shape, 3, np.int64, seed=14)
    mapping = {special[-1]: 2}
    ignores = special[:-1]
    got = fastiou.confusion_matrix(
        prediction, target, 3, ignore_index=ignores, label_map=mapping, backend=seg_backend
    )
    want = oracle(prediction, target, 3, ignore_index=ignores, label_map=mapping)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# Scores / logits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "layout",
    ["NCHW", "CHW", "HWC", "NCHW-strided"],
)
def test_logits_match_argmax(seg_backend, dtype, layout):
    rng = np.random.default_rng(15)
    n, c, h, w = (2, 4, 3, 3) if seg_backend == "cuda" else (2, 5, 7, 9)
    target = labels((n, h, w), c, np.uint8, seed=16, extra=[255])
    scores = rng.standard_normal((n, c, h, w)).astype(dtype)
    scores[0, 1, 0, :2] = scores[0, 3, 0, :2]  # ties: the lowest class wins
    axis = 1
    if layout == "CHW":
        scores, target, axis = scores[0], target[0], 0
    elif layout == "HWC":
        scores, target, axis = np.moveaxis(scores[0], 0, -1), target[0], 2
    elif layout == "NCHW-strided":
        scores, target = scores[:, :, ::2, ::-1], target[:, ::2, ::-1]
    kwargs = {"class_axis": axis} if layout == "HWC" else {}
    got = fastiou.confusion_matrix(
        scores, target, c, ignore_index=255, backend=seg_backend, **kwargs
    )
    want = oracle(scores, target, c, ignore_index=255, class_axis=axis)
    np.testing.assert_array_equal(got, want)


def test_logits_nan_is_the_maximum(seg_backend):
    # As np.argmax and torch.argmax: the first NaN along the class axis wins.
    scores = np.array(
        [
            [0.0, 1.0, 2.0, np.nan, np.nan],
            [np.nan, 5.0, 1.0, 0.0, 0.0],
            [3.0, np.nan, 9.0, 1.0, 2.0],
            [1.0, 2.0, np.nan, 7.0, 2.0],
        ],
        np.float32,
    )  # [C=4, K=5]
    target = np.array([0, 1, 2, 3, 0], np.uint8)
    got = fastiou.confusion_matrix(scores, target, 4, class_axis=0, backend=seg_backend)
    want = np.zeros((4, 4), np.int64)
    for t, p in zip(target, np.argmax(scores, axis=0), strict=True):
        want[t, p] += 1
    np.testing.assert_array_equal(got, want)
    assert list(np.argmax(scores, axis=0)) == [1, 2, 3, 0, 0]


def test_logits_float16_and_class_axis_errors():
    scores = np.zeros((3, 4, 5), np.float16)
    target = np.zeros((4, 5), np.uint8)
    assert fastiou.confusion_matrix(scores, target, 3)[0, 0] == 20
    with pytest.raises(ValueError, match="4 classes along axis 1"):
        fastiou.confusion_matrix(np.zeros((2, 4, 5, 6)), np.zeros((2, 5, 6), int), 3)
    with pytest.raises(ValueError, match="one more dimension"):
        fastiou.confusion_matrix(np.zeros((2, 4, 5, 6)), np.zeros((5, 6), int), 4)
    with pytest.raises(ValueError, match="class axis"):
        fastiou.confusion_matrix(np.zeros((5, 4, 6)), np.zeros((5, 7), int), 4)
    with pytest.raises(ValueError, match="class_axis 5 is out of range"):
        fastiou.confusion_matrix(np.zeros((4, 5)), np.zeros(5, int), 4, class_axis=5)


# ---------------------------------------------------------------------------------------------
# Multilabel
# ---------------------------------------------------------------------------------------------


def test_multilabel_masks(seg_backend):
    rng = np.random.default_rng(17)
    shape = (2, 3, 3, 2) if seg_backend == "cuda" else (2, 3, 8, 9)
    target = rng.random(shape) < 0.4
    prediction = rng.random(shape) < 0.5
    got = fastiou.multilabel_confusion_matrix(prediction, target, backend=seg_backend)
    assert got.shape == (3, 2, 2)
    for c in range(3):
        t, p = target[:, c].ravel(), prediction[:, c].ravel()
        tn, fp = np.sum(~t & ~p), np.sum(~t & p)
        fn, tp = np.sum(t & ~p), np.sum(t & p)
        np.testing.assert_array_equal(got[c], [[tn, fp], [fn, tp]])
    # [C, H, W] with an ignore value in a uint8 mask
    t8 = target[0].astype(np.uint8)
    t8[0, 0, :] = 255
    got = fastiou.multilabel_confusion_matrix(
        prediction[0], t8, class_axis=0, ignore_index=255, backend=seg_backend
    )
    assert got[0].sum() == t8[0].size - t8.shape[2]
    assert got[1].sum() == t8[1].size


def test_multilabel_errors():
    with pytest.raises(ValueError, match="prediction label 2"):
        fastiou.multilabel_confusion_matrix(np.full((1, 2, 2), 2), np.zeros((1, 2, 2), int))
    with pytest.raises(TypeError, match="threshold"):
        fastiou.multilabel_confusion_matrix(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match="same shape"):
        fastiou.multilabel_confusion_matrix(np.zeros((1, 2, 2), bool), np.zeros((1, 2), bool))


# ---------------------------------------------------------------------------------------------
# Errors: clear, raised before anything is counted
# ---------------------------------------------------------------------------------------------


def test_out_of_range_target_names_the_value(seg_backend):
    target = np.array([[0, 1], [19, 2]], np.uint8)
    with pytest.raises(ValueError, match=r"target label 19 is outside \[0, 19\)"):
        fastiou.confusion_matrix(np.zeros_like(target), target, 19, backend=seg_backend)


def test_negative_target_label_in_signed_dtype(seg_backend):
    target = np.array([0, -3, 1, -3], np.int16)
    with pytest.raises(ValueError, match=r"target label -3 is outside \[0, 4\).*2 target pixel"):
        fastiou.confusion_matrix(np.zeros_like(target), target, 4, backend=seg_backend)


def test_out_of_range_prediction(seg_backend):
    prediction = np.array([0, 1, -1, 7], np.int32)
    target = np.array([0, 1, 2, 255], np.int32)
    with pytest.raises(ValueError, match="prediction label -1 is outside"):
        fastiou.confusion_matrix(prediction, target, 4, ignore_index=255, backend=seg_backend)
    # A prediction at an ignored pixel is not looked at.
    prediction[2] = 2
    got = fastiou.confusion_matrix(prediction, target, 4, ignore_index=255, backend=seg_backend)
    assert got.trace() == 3


def test_reduce_zero_label_error_names_the_shifted_value():
    target = np.array([1, 2, 200], np.uint8)  # 200 -> 199 after the shift
    with pytest.raises(ValueError, match=r"target label 200 \(becoming 199\)"):
        fastiou.confusion_matrix(np.zeros(3, np.uint8), target, 150, reduce_zero_label=True)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(4, int), 2), ValueError,
         "same shape"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3), 2), TypeError,
         "integer labels"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, complex), np.zeros(3, int), 2), TypeError,
         "integer labels"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 0), ValueError,
         "num_classes"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2.0), TypeError,
         "num_classes"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2,
                                          ignore_index=1.5), TypeError, "ignore_index"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2,
                                          label_map=np.zeros((2, 2), int)), TypeError,
         "label_map"),
        (lambda: fastiou.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2,
                                          backend="gpu"), ValueError, "unknown backend"),
        (lambda: fastiou.confusion_matrix(["a"], [1], 2), TypeError, "integer labels"),
    ],
    ids=["shape", "float-target", "complex", "zero-classes", "float-classes", "float-ignore",
         "2d-map", "backend", "strings"],
)  # fmt: skip
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_empty_input(seg_backend):
    got = fastiou.confusion_matrix(
        np.zeros((0, 5), np.uint8), np.zeros((0, 5), np.uint8), 3, backend=seg_backend
    )
    np.testing.assert_array_equal(got, np.zeros((3, 3)))


# ---------------------------------------------------------------------------------------------
# Scale, memory, interop
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cython", "numba"])
def test_counts_past_2_to_the_32(name, request):
    """2**32 + 2**20 pixels of a zero-stride input: exact int64 counts, no memory.

    On one thread, so that the kernels' 32-bit private counters must be flushed midway.
    """
    from conftest import ensure_available

    ensure_available(name)
    fastiou.set_num_threads(1)
    request.addfinalizer(lambda: fastiou.set_num_threads(None))
    row = np.zeros(1 << 16, np.uint8)
    row[:3] = [1, 2, 255]
    prediction_row = np.zeros(1 << 16, np.uint8)
    prediction_row[:3] = [1, 0, 2]
    rows = (1 << 16) + 16
    target = np.broadcast_to(row, (rows, row.size))
    prediction = np.broadcast_to(prediction_row, (rows, row.size))
    got = fastiou.confusion_matrix(prediction, target, 3, ignore_index=255, backend=name)
    want = oracle(prediction_row, row, 3, ignore_index=255) * rows
    assert want[0, 0] > 2**32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["cython", "numba"])
def test_no_pixel_sized_temporaries(name):
    from conftest import ensure_available

    ensure_available(name)
    target = labels((1024, 2048), 19, np.int32, seed=18, extra=[255])  # 8 MB
    prediction = labels((1024, 2048), 19, np.uint8, seed=19)
    scores = np.zeros((4, 512, 512), np.float32)
    target4 = labels((512, 512), 4, np.uint16, seed=20)
    fastiou.confusion_matrix(prediction, target, 19, ignore_index=255, backend=name)  # compile
    fastiou.confusion_matrix(scores, target4, 4, backend=name)
    tracemalloc.start()
    fastiou.confusion_matrix(prediction, target, 19, ignore_index=255, backend=name)
    fastiou.confusion_matrix(scores, target4, 4, backend=name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, f"peak allocation {peak} bytes"


def test_big_endian_input(seg_backend):
    target = labels(small(seg_backend, (4, 5)), 4, ">i4", seed=20, extra=[-1])
    prediction = labels(target.shape, 4, ">u2", seed=21)
    got = fastiou.confusion_matrix(prediction, target, 4, ignore_index=-1, backend=seg_backend)
    want = oracle(prediction.astype(int), target.astype(int), 4, ignore_index=-1)
    np.testing.assert_array_equal(got, want)


def test_torch_tensors(seg_backend):
    torch = require_peer("torch")
    target = labels(small(seg_backend, (2, 3, 4)), 3, np.int64, seed=22, extra=[255])
    scores = np.random.default_rng(23).standard_normal((target.shape[0], 3) + target.shape[1:])
    got = fastiou.confusion_matrix(
        torch.from_numpy(scores).to(torch.bfloat16),
        torch.from_numpy(target),
        3,
        ignore_index=255,
        backend=seg_backend,
    )
    rounded = torch.from_numpy(scores).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(got, oracle(rounded, target, 3, ignore_index=255, class_axis=1))
    masks = torch.from_numpy(target == 1)
    got = fastiou.confusion_matrix(masks, masks, 2, backend=seg_backend)
    assert got[1, 1] == int((target == 1).sum()) and got[0, 1] == 0


def test_from_threads():
    # The compiled kernels release the GIL; results must not mix between threads.
    inputs = [(labels((64, 80), 7, seed=s), labels((64, 80), 7, seed=s + 100)) for s in range(8)]
    want = [oracle(p, t, 7) for t, p in inputs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda tp: fastiou.confusion_matrix(tp[1], tp[0], 7), inputs))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_small_call_does_not_import_numba():
    code = (
        "import sys, numpy as np, fastiou; "
        "fastiou.confusion_matrix(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), 2); "
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    import subprocess

    # `-c` imports from the working directory: run where the fastiou under test lives.
    cwd = os.path.dirname(os.path.dirname(fastiou.__file__))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=cwd)


def test_accumulator_pickles_without_cached_tables():
    """The label tables (256 KB for uint16 targets) are a process-wide cache, not part of an
    accumulator: its pickle holds the settings and counts only, and the copy counts the same."""
    acc = fastiou.ConfusionMatrix(3, ignore_index=255, label_map={4: 1})
    target = np.array([0, 4, 255], np.uint16)  # builds (and caches) the 65536-entry table
    acc.update(np.array([0, 1, 2], np.uint8), target)
    data = pickle.dumps(acc)
    assert b"LabelPlan" not in data
    assert len(data) < 4096, len(data)  # the uint16 table alone would be 262144 bytes
    again = pickle.loads(data)
    np.testing.assert_array_equal(again.matrix, acc.matrix)
    more = np.array([1, 1, 4], np.uint16)
    np.testing.assert_array_equal(
        again.update(np.array([1, 2, 1], np.uint8), more),
        acc.update(np.array([1, 2, 1], np.uint8), more),
    )
    np.testing.assert_array_equal(again.matrix, acc.matrix)


# ---------------------------------------------------------------------------------------------
# Property: the CPU backends agree with the oracle on arbitrary small inputs
# ---------------------------------------------------------------------------------------------


@st.composite
def label_problems(draw):
    dtype = draw(st.sampled_from(LABEL_DTYPES))
    info = np.iinfo(dtype)
    num_classes = draw(st.integers(1, 7))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    values = st.one_of(st.integers(0, num_classes - 1), st.integers(int(info.min), int(info.max)))
    target = draw(hnp.arrays(dtype, shape, elements=values))
    prediction = draw(hnp.arrays(dtype, shape, elements=st.integers(0, num_classes - 1)))
    present = [int(v) for v in np.unique(target)]
    ignores = draw(st.lists(st.sampled_from(present), max_size=3)) if present else []
    mapping = {}
    if present and draw(st.booleans()):
        mapping = draw(st.dictionaries(st.sampled_from(present), st.integers(0, num_classes - 1)))
    view = draw(st.sampled_from(["plain", "reversed", "transposed"]))
    if view == "reversed" and target.ndim:
        target, prediction = target[::-1], prediction[::-1]
    elif view == "transposed":
        target, prediction = target.T, prediction.T
    return target, prediction, num_classes, ignores, mapping or None


@pytest.mark.parametrize("name", ["numpy", "cython", "numba"])
@settings(max_examples=60, deadline=None)
@given(problem=label_problems())
def test_backends_agree_with_oracle(name, problem):
    from conftest import ensure_available

    ensure_available(name)
    target, prediction, num_classes, ignores, mapping = problem
    kwargs = {"ignore_index": ignores, "label_map": mapping}
    try:
        want = oracle(prediction, target, num_classes, **kwargs)
    except ValueError:
        with pytest.raises(ValueError, match="target label"):
            fastiou.confusion_matrix(prediction, target, num_classes, backend=name, **kwargs)
        return
    got = fastiou.confusion_matrix(prediction, target, num_classes, backend=name, **kwargs)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# 8-bit predictions with 256 or more classes; mmseg's label processing order
# ---------------------------------------------------------------------------------------------


def bincount_matrix(prediction, target, num_classes):
    """The confusion matrix by ``np.bincount`` of ``target * C + prediction`` (int64)."""
    t, p = target.astype(np.int64).ravel(), prediction.astype(np.int64).ravel()
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


@pytest.mark.parametrize("num_classes", [256, 300])
@pytest.mark.parametrize("pred_dtype", [np.uint8, np.int8])
def test_8bit_predictions_with_many_classes(seg_backend, num_classes, pred_dtype):
    """num_classes beyond the prediction dtype: exact counts (the class count is never cast to
    the prediction dtype), labels at the dtype's and the classes' edges included."""
    top = int(np.iinfo(pred_dtype).max)  # 255 or 127: every prediction value is a class
    edges_p = np.array([0, 1, top - 1, top, top, 0, 1, top], pred_dtype)
    edges_t = np.array([0, num_classes - 1, top, top, 255, 256 % num_classes, 1, 0], np.uint16)
    rng = np.random.default_rng(5)
    n = 12 if seg_backend == "cuda" else 5000
    prediction = np.concatenate([edges_p, rng.integers(0, top + 1, n).astype(pred_dtype)])
    target = np.concatenate([edges_t, rng.integers(0, num_classes, n).astype(np.uint16)])
    got = fastiou.confusion_matrix(prediction, target, num_classes, backend=seg_backend)
    np.testing.assert_array_equal(got, bincount_matrix(prediction, target, num_classes))
    # 2-D layouts take the same path as the kernels' 3-D views.
    got = fastiou.confusion_matrix(
        prediction[: 2 * (len(prediction) // 2)].reshape(2, -1),
        target[: 2 * (len(target) // 2)].reshape(2, -1),
        num_classes,
        backend=seg_backend,
    )
    want = bincount_matrix(
        prediction[: 2 * (len(prediction) // 2)], target[: 2 * (len(target) // 2)], num_classes
    )
    np.testing.assert_array_equal(got, want)
    if pred_dtype == np.int8:  # a negative 8-bit prediction is still an error, not class 255
        bad = prediction.copy()
        bad[3] = -1
        with pytest.raises(ValueError, match="prediction label -1 is outside"):
            fastiou.confusion_matrix(bad, target, num_classes, backend=seg_backend)


def mmseg_intersect_and_union(
    pred_label, label, num_classes, ignore_index, label_map=None, reduce_zero_label=False
):
    """mmseg's ``intersect_and_union`` (mmseg/core/evaluation/metrics.py, v0.x; v1.x applies
    the same label_map / reduce_zero_label in LoadAnnotations first), transcribed to numpy.

    ``torch.histc(x.float(), bins=C, min=0, max=C - 1)`` of integer values is
    ``np.bincount`` of the values in ``[0, C)`` (values outside are dropped by histc).
    """
    label = np.array(label, np.int64)
    pred_label = np.asarray(pred_label, np.int64)
    if label_map is not None:
        label_copy = label.copy()
        for old_id, new_id in label_map.items():
            label[label_copy == old_id] = new_id
    if reduce_zero_label:
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
    mask = label != ignore_index
    pred_label = pred_label[mask]
    label = label[mask]
    intersect = pred_label[pred_label == label]

    def histc(x):
        return np.bincount(x[(x >= 0) & (x < num_classes)], minlength=num_classes)

    area_intersect, area_pred_label, area_label = histc(intersect), histc(pred_label), histc(label)
    area_union = area_pred_label + area_label - area_intersect
    return area_intersect, area_union, area_pred_label, area_label


def assert_mmseg_areas(matrix, areas):
    """fastiou's matrix gives mmseg's four per-class areas."""
    intersect, union, pred, label = areas
    np.testing.assert_array_equal(np.diag(matrix), intersect)
    np.testing.assert_array_equal(matrix.sum(0), pred)
    np.testing.assert_array_equal(matrix.sum(1), label)
    np.testing.assert_array_equal(matrix.sum(0) + matrix.sum(1) - np.diag(matrix), union)


@pytest.mark.parametrize(
    "settings",
    [
        {"reduce_zero_label": True, "ignore_index": 100},
        {"reduce_zero_label": True, "ignore_index": 255},
        {"reduce_zero_label": False, "ignore_index": 100},
        {"reduce_zero_label": True, "ignore_index": 100, "label_map": {5: 0, 7: 101, 300: 1}},
        {"reduce_zero_label": True, "ignore_index": 4, "label_map": {5: 255, 6: 0}},
    ],
    ids=["reduce-ignore100", "reduce-ignore255", "ignore100", "map-reduce-ignore", "map-to-255"],
)
@pytest.mark.parametrize("target_dtype", [np.uint16, np.int64])
def test_mmseg_label_order(seg_backend, settings, target_dtype):
    """label_map, then reduce_zero_label, then ignore_index in the reduced label space, exactly
    as mmseg: with reduce_zero_label and ignore_index=100, target 101 is ignored and target 100
    counts as class 99; 0 and 255 both become 255 (a class when C > 255)."""
    num_classes = 302
    specials = np.array([0, 100, 101, 255, 256, 1, 301, 5, 6, 7, 300], target_dtype)
    rng = np.random.default_rng(3)
    n = 0 if seg_backend == "cuda" else 3000
    target = np.concatenate([specials, rng.integers(0, 302, n).astype(target_dtype)])
    prediction = rng.integers(0, num_classes, len(target)).astype(np.uint16)
    prediction[: len(specials)] = [99, 99, 100, 255, 255, 0, 300, 4, 5, 6, 299]
    got = fastiou.confusion_matrix(prediction, target, num_classes, backend=seg_backend, **settings)
    assert_mmseg_areas(got, mmseg_intersect_and_union(prediction, target, num_classes, **settings))
    np.testing.assert_array_equal(got, oracle(prediction, target, num_classes, **settings))
    if settings == {"reduce_zero_label": True, "ignore_index": 100}:
        only = fastiou.confusion_matrix(
            prediction[1:3], target[1:3], num_classes, backend=seg_backend, **settings
        )
        assert only.sum() == 1 and only[99, 99] == 1  # 100 -> class 99; 101 -> 100, ignored


@pytest.mark.parametrize("ignore_index", [255, 100])
def test_mmseg_label_order_ade20k(seg_backend, ignore_index):
    """150 classes (ADE20K): with ignore_index=255 (mmseg's) the zeros and 255s are skipped, as
    mmseg; with ignore_index=100 they become 255, outside the classes: mmseg would count their
    predictions as false positives of no row, fastiou names the label instead."""
    target = np.array([0, 1, 100, 101, 150, 255, 151], np.uint8)
    prediction = np.array([3, 0, 99, 7, 149, 2, 8], np.uint8)
    settings = {"reduce_zero_label": True, "ignore_index": ignore_index}
    if ignore_index == 255:
        want = mmseg_intersect_and_union(prediction[:-1], target[:-1], 150, **settings)
        got = fastiou.confusion_matrix(
            prediction[:-1], target[:-1], 150, backend=seg_backend, **settings
        )
        assert_mmseg_areas(got, want)
        assert got.sum() == 4  # 0 and 255 skipped
        with pytest.raises(ValueError, match=r"target label 151 \(becoming 150\)"):
            fastiou.confusion_matrix(prediction, target, 150, backend=seg_backend, **settings)
    else:
        with pytest.raises(ValueError, match=r"target label 0 \(becoming 255\).*ignore_index=255"):
            fastiou.confusion_matrix(prediction, target, 150, backend=seg_backend, **settings)
        got = fastiou.confusion_matrix(
            prediction[1:5], target[1:5], 150, backend=seg_backend, **settings
        )
        assert_mmseg_areas(
            got, mmseg_intersect_and_union(prediction[1:5], target[1:5], 150, **settings)
        )
        assert got.sum() == 3 and got[0, 0] == 1 and got[99, 99] == 1 and got[149, 149] == 1
