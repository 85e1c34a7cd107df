"""Backend registry and selection: backends(), use_backend, FASTIOU_BACKEND, fallbacks, threads."""

import contextlib
import importlib
import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, ensure_available, random_boxes

import fastiou
from fastiou._core import config as _config
from fastiou._core import dispatch as _dispatch

CYTHON = _dispatch.MODULES["boxes"]["cython"]
NUMBA = _dispatch.MODULES["boxes"]["numba"]
CUDA = _dispatch.MODULES["boxes"]["cuda"]


@pytest.fixture
def ran(monkeypatch, small_cuda_blocks) -> list[str]:
    """Spy on every available backend's kernels: the list of backends that ran, in order."""
    monkeypatch.delenv("FASTIOU_BACKEND", raising=False)
    calls: list[str] = []
    for name in BACKENDS:
        if not fastiou.backends()[name].available:
            continue
        module = importlib.import_module(_dispatch.MODULES["boxes"][name])
        for function in ("pairwise", "aligned"):
            original = getattr(module, function)

            def spy(*args, _original=original, _name=name):
                calls.append(_name)
                return _original(*args)

            monkeypatch.setattr(module, function, spy)
    return calls


def run_iou(**kwargs) -> np.ndarray:
    """A 2 x 2 IoU whose values are known: [[1, 1/7], [1/7, 1]] (aligned: [1/7, 1/7])."""
    boxes = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    if kwargs.get("aligned"):
        result = fastiou.box_iou(boxes, boxes[::-1], **kwargs)
        np.testing.assert_allclose(result, [1 / 7, 1 / 7], rtol=1e-12)
        return result
    result = fastiou.box_iou(boxes, boxes, **kwargs)
    np.testing.assert_allclose(result, [[1, 1 / 7], [1 / 7, 1]], rtol=1e-12)
    return result


def test_backends_report():
    report = fastiou.backends()
    assert tuple(report) == ("numpy", "cython", "numba", "cuda")
    for status in report.values():
        assert isinstance(status, fastiou.BackendStatus)
        assert isinstance(status.available, bool)
        assert isinstance(status.detail, str) and status.detail
    assert report["numpy"].available
    if report["cython"].available:
        assert "thread pool" in report["cython"].detail


def test_backend_runs(backend, ran):
    """Each backend (required ones must be available) runs when asked for, with no fallback."""
    assert _dispatch.select("boxes", backend, 1, False)[0] == backend
    run_iou(backend=backend)
    run_iou(backend=backend, aligned=True)
    assert ran == [backend, backend]


def test_use_backend(ran):
    ensure_available("cython")
    ensure_available("numba")
    with fastiou.use_backend("numpy"):
        run_iou()
        with fastiou.use_backend("numba"):
            run_iou()
        run_iou()
    run_iou()  # back to auto: tiny work goes to cython
    assert ran == ["numpy", "numba", "numpy", "cython"]


def test_use_backend_is_per_thread(ran):
    """use_backend affects its own thread only."""
    ensure_available("cython")
    with fastiou.use_backend("numpy"):
        worker = threading.Thread(target=run_iou)
        worker.start()
        worker.join()
        run_iou()
    assert ran == ["cython", "numpy"]


def test_environment_variable(ran, monkeypatch):
    ensure_available("numba")
    monkeypatch.setenv("FASTIOU_BACKEND", "numpy")
    run_iou()
    monkeypatch.setenv("FASTIOU_BACKEND", " Numba ")
    run_iou()
    assert ran == ["numpy", "numba"]


def test_precedence(ran, monkeypatch):
    """backend= beats use_backend, which beats FASTIOU_BACKEND."""
    ensure_available("cython")
    ensure_available("numba")
    monkeypatch.setenv("FASTIOU_BACKEND", "numba")
    run_iou()
    with fastiou.use_backend("numpy"):
        run_iou()
        run_iou(backend="cython")
    run_iou(backend="cython")
    assert ran == ["numba", "numpy", "cython", "cython"]


def test_auto_threshold(ran, monkeypatch):
    """auto: work below CYTHON_MAX_WORK goes to cython, at or above it to numba."""
    ensure_available("cython")
    ensure_available("numba")
    monkeypatch.setitem(_config.CYTHON_MAX_WORK, "boxes", 6)
    boxes = random_boxes(3, np.float64, 1)
    want = fastiou.box_iou(boxes, boxes, backend="numpy")
    np.testing.assert_allclose(fastiou.box_iou(boxes[:2], boxes[:2]), want[:2, :2], rtol=1e-12)
    np.testing.assert_allclose(fastiou.box_iou(boxes[:2], boxes), want[:2], rtol=1e-12)
    np.testing.assert_allclose(fastiou.box_iou(boxes, boxes[:2]), want[:, :2], rtol=1e-12)
    assert ran == ["numpy", "cython", "numba", "numba"]


def test_unknown_backend(monkeypatch):
    monkeypatch.delenv("FASTIOU_BACKEND", raising=False)
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        run_iou(backend="tensorrt")
    with pytest.raises(ValueError, match="unknown backend 'Numpy'"):
        run_iou(backend="Numpy")
    with pytest.raises(ValueError, match="use_backend: unknown backend 'gpu'"):
        with fastiou.use_backend("gpu"):
            pass
    with pytest.raises(TypeError, match="backend must be a string"):
        run_iou(backend=None)
    monkeypatch.setenv("FASTIOU_BACKEND", "opencl")
    with pytest.raises(ValueError, match="FASTIOU_BACKEND: unknown backend 'opencl'"):
        run_iou()


def test_unavailable_backend_falls_through(ran, monkeypatch):
    """A backend that cannot load is reported as such; asked for by name, the next one in its
    fallback order runs, with a RuntimeWarning pointing at the caller."""
    ensure_available("numba")
    monkeypatch.setitem(_dispatch._loaded, CYTHON, "simulated: extension not built")
    assert fastiou.backends()["cython"] == (False, "boxes: simulated: extension not built")
    with pytest.warns(RuntimeWarning, match="'cython' is unavailable.*simulated") as record:
        run_iou(backend="cython")
    assert record[0].filename == __file__
    assert ran == ["numba"]
    with pytest.warns(RuntimeWarning, match="unavailable"), fastiou.use_backend("cython"):
        run_iou()
    # auto falls through silently: nobody asked for cython.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_iou()
    assert ran == ["numba", "numba", "numba"]


def test_unavailable_chain_reaches_numpy(ran, monkeypatch):
    monkeypatch.setitem(_dispatch._loaded, CUDA, "simulated: no GPU")
    monkeypatch.setitem(_dispatch._loaded, NUMBA, "simulated: no numba")
    monkeypatch.setitem(_dispatch._loaded, CYTHON, "simulated: not built")
    with pytest.warns(RuntimeWarning, match="no GPU; simulated: no numba; simulated: not built"):
        run_iou(backend="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_iou()
    assert ran == ["numpy", "numpy"]
    assert [s.available for s in fastiou.backends().values()] == [True, False, False, False]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match="positive integer"):
        fastiou.set_num_threads(bad)


def test_set_num_threads(ran):
    """One thread still gives the right numbers on the cython and numba kernels (the spy shows
    they ran, not a fallback), the caller's own numba setting is left as it was, and None
    restores."""
    ensure_available("cython")
    ensure_available("numba")
    import numba

    boxes1, boxes2 = random_boxes(50, np.float32, 2), random_boxes(40, np.float32, 3)
    want = fastiou.box_iou(boxes1, boxes2, backend="numpy")
    numba_before = numba.get_num_threads()
    try:
        fastiou.set_num_threads(1)
        assert _config.num_threads() == 1
        for name in ("cython", "numba"):
            got = fastiou.box_iou(boxes1, boxes2, backend=name)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert numba.get_num_threads() == numba_before
    finally:
        fastiou.set_num_threads(None)
    assert ran == ["numpy", "cython", "numba"]
    assert _config.num_threads() == _config.usable_cores()


def test_import_and_small_call_do_not_import_numba():
    """`import fastiou` and a small box_iou (the cython backend) never import numba."""
    ensure_available("cython")
    code = (
        "import sys, numpy as np, fastiou\n"
        "rng = np.random.default_rng(0)\n"
        "b = rng.uniform(0, 100, (100, 4)); b[:, 2:] += b[:, :2]\n"
        "r = fastiou.box_iou(b, b)\n"
        "assert r.shape == (100, 100) and np.allclose(np.diag(r), 1), r\n"
        "print('numba' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FASTIOU_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(fastiou.__file__).parents[1],  # `-c` imports from cwd: the fastiou under test
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_concurrent_calls():
    """box_iou from 4 threads at once on the numba and cython backends gives the reference."""
    names = [name for name in ("numba", "cython") if fastiou.backends()[name].available]
    if not names:
        pytest.skip("neither numba nor cython is available")
    cases = []
    for seed in range(16):
        dtype = np.float32 if seed % 2 else np.float64
        # 200 x 180 pairs: above the size where the Cython kernels go parallel (OpenMP).
        b1, b2 = random_boxes(200, dtype, seed), random_boxes(180, dtype, seed + 100)
        cases.append((names[seed % len(names)], b1, b2))
    want = [fastiou.box_iou(b1, b2, backend="numpy") for _, b1, b2 in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda case: fastiou.box_iou(case[1], case[2], backend=case[0]), cases))
    for (_, b1, _), g, w in zip(cases, got, want, strict=True):
        assert g.dtype == b1.dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_a_backend_registered_as_none_falls_through_silently():
    # NMS has no numba kernel by design: asking for it runs Cython's, with no warning.
    assert _dispatch.MODULES["nms"]["numba"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        name, module = _dispatch.select("nms", "numba", 10, False)
    assert name == "cython"
    assert module is _dispatch._load("nms", "cython")
    assert fastiou.backends()["numba"].available


@pytest.mark.parametrize("override", [None, "auto", "numpy", "cython"])
@pytest.mark.parametrize("env", [None, "auto", "numpy", " Cython "])
def test_lean_follows_what_auto_means(monkeypatch, override, env):
    """dispatch.lean inlines _auto_means(): it offers the Cython kernels exactly when "auto"
    means auto (use_backend first, then FASTIOU_BACKEND), and never past the work threshold."""
    if env is None:
        monkeypatch.delenv("FASTIOU_BACKEND", raising=False)
    else:
        monkeypatch.setenv("FASTIOU_BACKEND", env)
    with fastiou.use_backend(override) if override else contextlib.nullcontext():
        expected = _dispatch._auto_means() == "auto"
        assert (_dispatch.lean("boxes", 1) is not None) == expected
        assert _dispatch.lean("boxes", _config.CYTHON_MAX_WORK["boxes"]) is None
