"""The masks kernels on fastiou's thread pool: every parallel kernel gives on 2 and 3 threads
what it gives on one (and what pycocotools gives), also in a fork child."""

import multiprocessing
import sys

import numpy as np
import pytest
from conftest import require_peer

from fastiou.coco import mask as F
from fastiou.masks import RLEs, _rles
from fastiou.masks._rles import _ext

P = require_peer("pycocotools.mask")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _masks(n=37, h=23, w=19, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((h, w, n), np.uint8)
    for i in range(n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        masks[y : y + rng.integers(1, h), x : x + rng.integers(1, w), i] = 1
        if i % 4 == 0:
            masks[..., i] ^= (rng.random((h, w)) < 0.2).astype(np.uint8)
    return np.asfortranarray(masks)


def _every_kernel(threads: int) -> list[np.ndarray]:
    """The output of each pool kernel on one set, on ``threads`` threads."""
    masks = _masks()
    h, w, n = masks.shape
    flat = np.ascontiguousarray(masks.transpose(2, 1, 0)).reshape(n, h * w)
    counts, offsets = _ext.encode(flat, threads)
    decoded = np.empty_like(flat)
    _ext.decode(counts, offsets, decoded, threads)
    chars, at = _ext.to_strings(counts, offsets, threads)
    parsed, parsed_at = _ext.from_strings(chars, at, threads)
    rles = RLEs._trusted(counts, offsets, np.full(n, h), np.full(n, w))
    crowd = (np.arange(n) % 3 == 0).astype(np.uint8)
    iou = _rles.iou_matrix(rles, rles, crowd, threads=threads)
    boxes = rles.boxes()
    box_iou = np.empty((n, n))
    _ext.box_iou(np.ascontiguousarray(boxes), np.ascontiguousarray(boxes), crowd, box_iou, threads)
    rng = np.random.default_rng(1)
    xy = np.stack([rng.uniform(-4, w + 4, (n, 6)), rng.uniform(-4, h + 4, (n, 6))], 2)
    poly = _ext.polygons(xy.ravel(), np.arange(n + 1) * 12, np.full(n, h), np.full(n, w), threads)
    return [counts, offsets, decoded, chars, at, parsed, parsed_at, iou, box_iou, *poly]


@pytest.mark.parametrize("threads", [2, 3])
def test_pool_kernels_equal_one_thread(threads):
    one, many = _every_kernel(1), _every_kernel(threads)
    for a, b in zip(one, many, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_pool_kernels_equal_pycocotools():
    masks = _masks()
    h, w, n = masks.shape
    counts, offsets, decoded, chars, at, *_, iou, _box_iou, _pc, _po = _every_kernel(2)
    ref = P.encode(masks)
    got = [bytes(chars[at[i] : at[i + 1]]) for i in range(n)]
    assert got == [r["counts"] for r in ref]
    np.testing.assert_array_equal(decoded.reshape(n, w, h).transpose(2, 1, 0), P.decode(ref))
    crowd = (np.arange(n) % 3 == 0).astype(np.uint8)
    np.testing.assert_array_equal(iou, P.iou(ref, ref, crowd))


def _child(queue) -> None:
    queue.put([a.tolist() for a in _every_kernel(2)])


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_pool_kernels_in_a_fork_child():
    parent = _every_kernel(2)  # the pool's threads exist before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    for a, b in zip(parent, got, strict=True):
        np.testing.assert_array_equal(a, np.asarray(b, dtype=a.dtype).reshape(a.shape))


def test_large_calls_use_the_pool_and_match_pycocotools():
    # Above the parallel thresholds the API picks several threads; the results stay pycocotools'.
    masks = np.asfortranarray(np.repeat(_masks(n=6, h=480, w=400), 2, axis=2))
    assert masks.size >= _rles.PARALLEL_MIN_PIXELS
    ref = P.encode(masks)
    assert F.encode(masks) == ref
    np.testing.assert_array_equal(F.decode(ref), P.decode(ref))


@pytest.mark.parametrize("threads", [1, 2])
def test_from_strings_names_the_first_corrupt_string(threads):
    # string 1 decodes to a negative run (found in the decoding pass), string 2 has a character
    # outside the alphabet (found in the counting pass): the error names string 1
    strings = [b"1", b"@", b"1\x7f", b"3"]
    chars = np.frombuffer(b"".join(strings), np.uint8)
    at = np.concatenate([[0], np.cumsum([len(s) for s in strings])]).astype(np.int64)
    with pytest.raises(ValueError, match="mask 1: .*a run outside"):
        _ext.from_strings(chars, at, threads)
    counts, offsets = _ext.from_strings(chars[:1], at[:2], threads)  # "1": the one run [1]
    assert counts.tolist() == [1] and offsets.tolist() == [0, 1]
