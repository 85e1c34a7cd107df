"""The parallel runtime: the work-claiming pool, fork, threads, numba's settings and layers.

Each family's parallel kernel must give the same numbers on 1 and N threads, in a fork child
made after the parent ran it, under concurrent calls from threads, and beside a process that
keeps every core busy. Subprocess tests have a timeout: a hang fails the test instead of CI.
"""

import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import random_boxes, require_peer

import fastiou
from fastiou._core import _pool
from fastiou._core import config as _config

TIMEOUT = 120


def _inputs():
    rng = np.random.default_rng(7)
    boxes = random_boxes(600, np.float32, 7).astype(np.float32)
    scores = rng.random(600, dtype=np.float32)
    labels = rng.integers(0, 20, 600)
    target = rng.integers(0, 19, (300, 400), dtype=np.uint8)
    target[::7] = 255
    prediction = rng.integers(0, 19, (300, 400), dtype=np.uint8)
    return boxes, scores, labels, target, prediction


def _work(backend: str = "cython"):
    """One parallel call of each family's kernel (big enough to go parallel)."""
    boxes, scores, labels, target, prediction = _inputs()
    return (
        fastiou.box_iou(boxes, boxes, backend=backend),
        fastiou.batched_nms(boxes, scores, labels, 0.5, backend=backend),
        fastiou.confusion_matrix(prediction, target, 19, ignore_index=255, backend=backend),
    )


def _oracle():
    return _work("numpy")


def _same(got, want) -> None:
    iou, keep, matrix = got
    np.testing.assert_allclose(iou, want[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(keep, want[1])
    np.testing.assert_array_equal(matrix, want[2])


def _child(backend: str) -> bool:
    _same(_work(backend), _oracle())
    return True


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 100_003])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("grain", [1, 10, 4096])
def test_pool_runs_every_chunk_once(n, threads, grain):
    assert _pool.sum_range(n, threads, grain) == n * (n - 1) // 2


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_results_identical_on_any_thread_count(threads):
    want = _work()
    previous = _config.num_threads()
    try:
        fastiou.set_num_threads(threads)
        got = _work()
    finally:
        fastiou.set_num_threads(previous)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [2, 4])
def test_jobs_run_alone_while_the_cores_are_taken(threads):
    """After a job found the cores taken (here: forced), jobs run on the caller alone for a
    while: every chunk still runs once, results are the same, numba kernels get one thread."""
    want = _work()
    previous = _config.num_threads()
    try:
        fastiou.set_num_threads(threads)
        _pool.hold_alone(60)
        assert _pool.alone()
        assert _pool.sum_range(100_003, threads, 10) == 100_003 * 100_002 // 2
        for a, b in zip(_work(), want, strict=True):
            np.testing.assert_array_equal(a, b)
        if require_peer("numba"):
            from fastiou._core.parallel import numba_threads

            with numba_threads(threads) as used:
                assert used == 1
    finally:
        _pool.hold_alone(0)
        fastiou.set_num_threads(previous)
    assert not _pool.alone()


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_children_after_a_parallel_call(method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    _work()  # the parent has used its pool (and libgomp, for the COCO family) before the fork
    with mp.get_context(method).Pool(2) as pool:
        assert pool.map_async(_child, ["cython", "cython", "auto"]).get(TIMEOUT) == [True] * 3


def _coco_stats(_=None) -> list[float]:
    """COCO bbox stats of a small random set (its kernels still run on OpenMP)."""
    from fastiou.coco import COCO, COCOeval

    rng = np.random.default_rng(3)
    images = [{"id": i, "width": 640, "height": 480} for i in range(40)]
    anns, dets = [], []
    for i in range(40):
        for _ in range(6):
            x, y, w, h = rng.uniform(0, 300, 4).tolist()
            c = int(rng.integers(1, 4))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": c,
                    "bbox": [x, y, w + 5, h + 5],
                    "area": (w + 5) * (h + 5),
                    "iscrowd": 0,
                }
            )
            dets.append(
                {
                    "image_id": i,
                    "category_id": c,
                    "score": float(rng.random()),
                    "bbox": [x + rng.normal(0, 5), y, w + 5, h + 5],
                }
            )
    cats = [{"id": c, "name": str(c)} for c in (1, 2, 3)]
    gt = COCO({"images": images, "annotations": anns, "categories": cats}, verbose=False)
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    return [float(x) for x in ev._stats(echo=False)]


def _mask_iou(_=None) -> list:
    """mask_iou of random dense masks, big enough for the parallel kernel (still OpenMP)."""
    rng = np.random.default_rng(5)
    masks = rng.random((40, 120, 160)) < 0.3
    return fastiou.mask_iou(masks, masks[:30]).tolist()


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("work", [_coco_stats, _mask_iou])
def test_coco_and_masks_in_children_after_a_parallel_call(method, work):
    want = work()
    with mp.get_context(method).Pool(2) as pool:
        assert pool.map_async(work, range(2)).get(TIMEOUT) == [want, want]


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=full,
        # not the repository root: `-c` imports from the working directory, and the source tree
        # (without compiled extensions in CI) would shadow the fastiou under test
        cwd=tempfile.gettempdir(),
    )


def test_numba_in_a_fork_child_falls_through_to_cython():
    # The parent launches numba's threads (GNU OpenMP layer when available); a forked child
    # must neither abort ("fork() called from a process already using GNU OpenMP") nor hang.
    code = """
        import multiprocessing as mp, numpy as np, warnings, fastiou
        b = np.random.default_rng(0).uniform(0, 50, (300, 4)).astype(np.float32)
        b[:, 2:] += b[:, :2]
        want = fastiou.box_iou(b, b, backend="numpy")
        np.testing.assert_allclose(fastiou.box_iou(b, b, backend="numba"), want, rtol=1e-6)

        def child(_):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = fastiou.box_iou(b, b, backend="numba")
            np.testing.assert_allclose(got, want, rtol=1e-6)
            return [str(w.message) for w in caught]

        with mp.get_context("fork").Pool(2) as pool:
            messages = pool.map_async(child, range(2)).get(60)
        assert all(any("fork" in m for m in ms) for ms in messages), messages
        print("ok")
    """
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_concurrent_numba_calls_with_the_workqueue_layer():
    code = """
        import numpy as np, fastiou
        from concurrent.futures import ThreadPoolExecutor
        b = np.random.default_rng(0).uniform(0, 50, (400, 4)).astype(np.float32)
        b[:, 2:] += b[:, :2]
        want = fastiou.box_iou(b, b, backend="numpy")
        def call(_):
            return fastiou.box_iou(b, b, backend="numba")
        with ThreadPoolExecutor(4) as pool:
            for got in pool.map(call, range(16)):
                np.testing.assert_allclose(got, want, rtol=1e-6)
        import numba
        assert numba.threading_layer() == "workqueue", numba.threading_layer()
        print("ok")
    """
    result = _run(code, {"NUMBA_THREADING_LAYER": "workqueue"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_concurrent_calls_from_threads_share_the_pool_correctly():
    want = _oracle()
    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(lambda _: _work(), range(8)):
            _same(got, want)


@pytest.mark.parametrize("family", ["boxes", "confusion"])
def test_the_callers_numba_thread_count_is_left_as_found(family):
    numba = require_peer("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    boxes, _, _, target, prediction = _inputs()
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        fastiou.set_num_threads(1)
        if family == "boxes":
            fastiou.box_iou(boxes[:20], boxes[:20], backend="numba")
        else:
            fastiou.confusion_matrix(
                prediction[:8], target[:8], 19, ignore_index=255, backend="numba"
            )
        assert numba.get_num_threads() == 2
    finally:
        fastiou.set_num_threads(None)
        numba.set_num_threads(previous)


def test_results_beside_a_process_that_holds_every_core():
    spin = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import threading, time\n"
            "def spin():\n"
            "    end = time.time() + 60\n"
            "    while time.time() < end: pass\n"
            f"ts = [threading.Thread(target=spin) for _ in range({_config.usable_cores()})]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n",
        ]
    )
    try:
        want = _oracle()
        for _ in range(3):
            _same(_work(), want)
    finally:
        spin.kill()
        spin.wait()


def test_torch_dataloader_workers():
    torch = require_peer("torch")
    _work()

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            _same(_work(), _oracle())
            return torch.tensor(i)

    loader = torch.utils.data.DataLoader(
        Data(), num_workers=2, multiprocessing_context="fork", timeout=TIMEOUT
    )
    assert sorted(int(x) for x in loader) == [0, 1, 2, 3]
