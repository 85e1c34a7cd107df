"""The lean call path of nms (``_api._lean_nms``): the same keep list as the general path on
every input, taken only where ``backend="auto"`` would pick the Cython kernel."""

import numpy as np
import pytest
from conftest import random_boxes, require_peer, spy_on

import fastiou
from fastiou._core import config as _config
from fastiou.nms import _cython as nms_cython

torch = require_peer("torch")

pytestmark = pytest.mark.usefixtures("plain_auto")


def scored(n: int, seed: int = 0):
    boxes = random_boxes(n, np.float32, seed)  # dense: many suppressions
    scores = np.random.default_rng(seed).random(n, dtype=np.float32)
    scores[::5] = scores[1::5]  # ties: the lower index first
    scores[3] = np.nan  # NaN sorts first
    return boxes, scores


def inputs():
    b, s = scored(60)
    yield "float32", b, s
    yield "float64", b.astype(np.float64), s.astype(np.float64)
    yield "float32 boxes, float64 scores", b, s.astype(np.float64)
    yield "non-contiguous", np.asfortranarray(b), s[::-1].copy()[::-1]
    yield "strided scores", b[::2], s[::2]
    yield "int boxes", b.astype(np.int32), s
    yield "float16 scores", b, s.astype(np.float16)
    yield "big-endian", b.astype(">f4"), s.astype(">f4")
    yield "one box", b[:1], s[:1]
    yield "empty", b[:0], s[:0]
    yield "torch", torch.from_numpy(b), torch.from_numpy(s)
    yield "torch float64 strided", torch.from_numpy(b).double()[::3], torch.from_numpy(s)[::3]
    yield "numpy boxes, torch scores", b, torch.from_numpy(s)


@pytest.mark.parametrize(("name", "boxes", "scores"), list(inputs()))
@pytest.mark.parametrize("fmt", ["xyxy", "cxcywh"])
def test_same_as_general_path(name, boxes, scores, fmt):
    got = fastiou.nms(boxes, scores, 0.3, fmt=fmt)
    want = fastiou.nms(boxes, scores, 0.3, fmt=fmt, backend="cython")
    assert type(got) is type(want) and got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    reference = fastiou.nms(boxes, scores, 0.3, fmt=fmt, backend="numpy")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(reference))


def test_torchvision_keep_list():
    tv_ops = pytest.importorskip("torchvision.ops")
    boxes, scores = scored(300, 3)
    scores[3] = 0.5  # torchvision's own NaN order is not the contract here
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    keep = fastiou.nms(tb, ts, 0.5)
    assert keep.dtype == torch.int64
    torch.testing.assert_close(keep, tv_ops.nms(tb, ts, 0.5))


def test_taken_for_the_common_case_only(monkeypatch):
    calls = spy_on(monkeypatch, nms_cython, "nms", lambda args, _: args[0])
    boxes, scores = scored(20)
    fastiou.nms(boxes, scores, 0.5)
    fastiou.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5)
    assert len(calls) == 2 and np.shares_memory(calls[1], boxes)
    fastiou.nms(boxes, scores, 0.5, max_output=3)  # the general path
    with fastiou.use_backend("numpy"):
        fastiou.nms(boxes, scores, 0.5)
    monkeypatch.setitem(_config.CYTHON_MAX_WORK, "nms", 10)
    fastiou.nms(boxes, scores, 0.5)  # numba's work, which falls through to Cython
    assert len(calls) == 4  # max_output and the fall-through ran the general path's call


def test_errors_unchanged():
    boxes, scores = scored(5)
    with pytest.raises(ValueError, match="boxes and scores must have the same length"):
        fastiou.nms(boxes, scores[:4], 0.5)
    with pytest.raises(TypeError, match="iou_threshold must be a real number"):
        fastiou.nms(boxes, scores, "0.5")
    with pytest.raises(ValueError, match=r"boxes must have shape \[N, 4\]"):
        fastiou.nms(boxes[None], scores, 0.5)
