"""The lean call path of confusion_matrix (``_api._lean_count``): the same counts and the same
errors as the general path on every input, taken only where "auto" would pick Cython."""

import re

import numpy as np
import pytest
from conftest import require_peer, spy_on

import fastiou
from fastiou._core import config as _config
from fastiou.semantic import _common
from fastiou.semantic import _cython as confusion_cython

torch = require_peer("torch")

pytestmark = pytest.mark.usefixtures("plain_auto")


@pytest.fixture
def lean_calls(monkeypatch) -> list:
    """Whether each call of the compiled lean entry took its inputs (or declined them)."""
    return spy_on(
        monkeypatch, confusion_cython._ext, "lean_labels", lambda _, result: result is not None
    )


def maps(shape, num_classes=5, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, shape).astype(dtype)
    prediction = rng.integers(0, num_classes, shape).astype(dtype)
    if target.size > 4:
        target.flat[::7] = 255 if np.iinfo(dtype).max >= 255 else 0  # some ignored pixels
    return prediction, target


def inputs():
    p, t = maps((16, 24))
    yield "uint8", p, t % 5, {}
    yield "uint8 ignore 255", p, t, {"ignore_index": 255}
    for dtype in (np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64):
        p2, t2 = maps((9, 11), dtype=dtype)
        yield f"{np.dtype(dtype)} ignore 255", p2, t2, {"ignore_index": 255}
    t64 = t.astype(np.int64)
    yield "int64 ignore -1", p.astype(np.int64), np.where(t64 == 255, -1, t64), {"ignore_index": -1}
    yield "bool", p > 2, t > 2, {}
    yield "ignore outside the dtype", p, t % 5, {"ignore_index": 300}
    yield "big-endian", p.astype(">i2"), t.astype(">i2"), {"ignore_index": 255}
    yield "transposed", p.T, t.T, {"ignore_index": 255}
    yield "sliced", p[::2, 1:], t[::2, 1:], {"ignore_index": 255}
    yield "different dtypes", p.astype(np.int64), t, {"ignore_index": 255}
    yield "batch", np.stack([p, p[::-1]]), np.stack([t, t]), {"ignore_index": 255}
    yield "empty", p[:0], t[:0], {}
    yield "scalar maps", p[0, 0], t[0, 0] % 5, {}
    yield "lists", p.tolist(), t.tolist(), {"ignore_index": 255}
    yield "ignore as np.int64", p, t, {"ignore_index": np.int64(255)}
    yield "several ignores", p, t, {"ignore_index": [255, 4]}
    yield "torch uint8", torch.from_numpy(p), torch.from_numpy(t), {"ignore_index": 255}
    yield (
        "torch int64",
        torch.from_numpy(p).long(),
        torch.from_numpy(t).long(),
        {"ignore_index": 255},
    )
    yield "numpy with torch", p, torch.from_numpy(t), {"ignore_index": 255}


@pytest.mark.parametrize(("name", "prediction", "target", "options"), list(inputs()))
def test_same_as_general_path(name, prediction, target, options):
    got = fastiou.confusion_matrix(prediction, target, 5, **options)
    want = fastiou.confusion_matrix(prediction, target, 5, backend="cython", **options)
    assert type(got) is np.ndarray and got.dtype == np.int64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    reference = fastiou.confusion_matrix(prediction, target, 5, backend="numpy", **options)
    np.testing.assert_array_equal(got, reference)


def error_cases():
    p, t = maps((8, 8))
    yield "target label out of range", p, np.where(t == 255, 9, t).astype(np.uint8), {}
    yield (
        "prediction out of range",
        np.where(p == 0, 7, p).astype(np.uint8),
        t,
        {"ignore_index": 255},
    )
    yield "negative target", p.astype(np.int64), np.where(t == 255, -3, t.astype(np.int64)), {}
    yield "shapes differ", p[:4], t, {}
    yield "num_classes 0", p, t, {"num_classes": 0}
    yield "num_classes bool", p, t, {"num_classes": True}
    yield "ignore_index float", p, t, {"ignore_index": 2.5}
    yield "float target", p, t.astype(np.float32), {}


@pytest.mark.parametrize(("name", "prediction", "target", "options"), list(error_cases()))
def test_same_errors_as_general_path(name, prediction, target, options):
    options = {"num_classes": 5, **options}
    with pytest.raises((ValueError, TypeError)) as general:
        fastiou.confusion_matrix(prediction, target, backend="cython", **options)
    with pytest.raises(general.type, match=f"^{re.escape(str(general.value))}$"):
        fastiou.confusion_matrix(prediction, target, **options)


def test_taken_for_the_common_case_only(lean_calls, monkeypatch):
    p, t = maps((32, 32))
    fastiou.confusion_matrix(p, t, 5, ignore_index=255)
    fastiou.confusion_matrix(torch.from_numpy(p), torch.from_numpy(t), 5, ignore_index=255)
    fastiou.confusion_matrix(p.T, t.T, 5, ignore_index=255)  # not C-contiguous: declined
    assert lean_calls == [True, True, False]
    fastiou.confusion_matrix(p, t, 5, ignore_index=255, backend="cython")
    fastiou.confusion_matrix(p, t, 5, ignore_index=255, label_map={1: 2})
    fastiou.confusion_matrix(p, t, 5, ignore_index=255, reduce_zero_label=True)
    with fastiou.use_backend("numpy"):
        fastiou.confusion_matrix(p, t, 5, ignore_index=255)
    monkeypatch.setitem(_config.CYTHON_MAX_WORK, "confusion", 100)
    fastiou.confusion_matrix(p, t, 5, ignore_index=255)
    assert len(lean_calls) == 3


def test_parallel_lean_call_same_counts(monkeypatch):
    p, t = maps((300, 301), num_classes=7)
    want = fastiou.confusion_matrix(p, t, 7, ignore_index=255, backend="numpy")
    monkeypatch.setattr(_common, "PARALLEL_MIN_PIXELS", 0)
    for threads in (1, 2, 3):
        fastiou.set_num_threads(threads)
        try:
            np.testing.assert_array_equal(fastiou.confusion_matrix(p, t, 7, ignore_index=255), want)
        finally:
            fastiou.set_num_threads(None)
