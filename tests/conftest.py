"""Shared fixtures: the backend matrix, the overlap operations and random boxes.

The ``cuda`` backend runs under numba's CUDA simulator unless ``FASTIOU_TEST_REAL_GPU=1``; this
must be decided before anything imports numba, hence the environment set-up at the top.
``FASTIOU_REQUIRE_BACKENDS=numpy,cython,...`` turns "backend unavailable" from a skip into a
failure for the backends it names (CI uses it to prove the Cython extension was built).
``FASTIOU_REQUIRE_PEERS=torch,torchvision,...`` does the same for the peer libraries of the parity
tests (see :func:`require_peer`), so that a CI run cannot pass by skipping its peer checks.
"""

import importlib
import os

if os.environ.get("FASTIOU_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

from collections.abc import Callable  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastiou  # noqa: E402
from fastiou._core import dispatch as _dispatch  # noqa: E402

BACKENDS = _dispatch.BACKENDS
# Under the simulator every CUDA thread is Python code: cuda cases stay at or below this many
# boxes per side.
CUDA_MAX_BOXES = 12


def required_backends() -> set[str]:
    """The backends FASTIOU_REQUIRE_BACKENDS says must be available."""
    names = os.environ.get("FASTIOU_REQUIRE_BACKENDS", "")
    return {name.strip().lower() for name in names.split(",") if name.strip()}


def required_peers() -> set[str]:
    """The peers (top-level module names, lower case) FASTIOU_REQUIRE_PEERS says must import."""
    names = os.environ.get("FASTIOU_REQUIRE_PEERS", "")
    return {name.strip().lower() for name in names.split(",") if name.strip()}


def require_peer(module: str, reason: str | None = None) -> Any:
    """Import and return ``module`` of a peer library for a parity test, or skip the test.

    Use this instead of ``pytest.importorskip`` in every test that checks fastiou against a
    peer (torch, torchvision, cython_bbox, pycocotools, lvis, panopticapi, torchmetrics...):
    when the peer's top-level module name (``"torchvision"`` for ``"torchvision.ops"``, ``"PIL"``
    for Pillow) is listed in ``FASTIOU_REQUIRE_PEERS`` (comma-separated, case-insensitive), a
    failed import fails the test instead of skipping it. CI sets it for the peers it installs.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"torchvision.ops"``.
    reason : str, optional
        The skip message when the peer is missing (default: "<module> is not installed").
    """
    peer = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if peer.lower() in required_peers():
            pytest.fail(
                f"peer {peer!r} is required (FASTIOU_REQUIRE_PEERS) but {module} does not "
                f"import: {e}",
                pytrace=False,
            )
        pytest.skip(reason or f"{module} is not installed ({e})", allow_module_level=True)


def pytest_configure(config):
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        # The simulator runs each CUDA thread as a Python thread, outside the np.errstate that
        # numba_cuda sets around a launch (errstate is per thread): its IEEE 0/0 and x/0 then
        # warn. They are the intended NaN/inf, checked by the tests.
        config.addinivalue_line("filterwarnings", "ignore::RuntimeWarning:fastiou.boxes._formulas")
    unknown = required_backends() - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(
            f"FASTIOU_REQUIRE_BACKENDS names unknown backends {sorted(unknown)}; "
            f"choose from {', '.join(BACKENDS)}"
        )


def pytest_report_header(config):
    lines = [f"fastiou parity peers required: {sorted(required_peers()) or 'none'}"]
    lines.append(f"fastiou backends (required: {sorted(required_backends()) or 'none'}):")
    for name, status in fastiou.backends().items():
        state = "available" if status.available else "UNAVAILABLE"
        lines.append(f"  {name}: {state} - {status.detail}")
    return lines


def ensure_available(name: str) -> None:
    """Skip (or fail, if FASTIOU_REQUIRE_BACKENDS names it) when backend ``name`` is missing."""
    status = fastiou.backends()[name]
    if status.available:
        return
    if name in required_backends():
        pytest.fail(f"backend {name!r} is required but unavailable: {status.detail}")
    pytest.skip(f"backend {name!r} unavailable: {status.detail}")


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    """Each backend name in turn; cuda runs with tiny blocks so that several blocks run."""
    name = request.param
    ensure_available(name)
    if name == "cuda":
        _small_cuda_blocks(monkeypatch)
    return name


def _small_cuda_blocks(monkeypatch) -> None:
    import fastiou.boxes._cuda as numba_cuda

    monkeypatch.setattr(numba_cuda, "THREADS", (4, 2))


@pytest.fixture
def small_cuda_blocks(monkeypatch) -> None:
    """Patch the CUDA kernels' threads per block to (4, 2), as the ``backend`` fixture does."""
    if fastiou.backends()["cuda"].available:
        _small_cuda_blocks(monkeypatch)


def max_boxes(backend: str, n: int) -> int:
    """``n``, cut down to what the CUDA simulator runs quickly."""
    return min(n, CUDA_MAX_BOXES) if backend == "cuda" else n


class Op(NamedTuple):
    """One operation of the box family: a public function and the keywords that select it."""

    name: str
    func: Callable[..., Any]
    kwargs: dict

    def __call__(self, boxes1, boxes2, **kwargs):
        return self.func(boxes1, boxes2, **self.kwargs, **kwargs)


OPERATIONS = (
    Op("iou", fastiou.box_iou, {}),
    Op("giou", fastiou.generalized_box_iou, {}),
    Op("diou", fastiou.distance_box_iou, {}),
    Op("ciou", fastiou.complete_box_iou, {}),
    Op("ioa1", fastiou.box_ioa, {"over": "boxes1"}),
    Op("ioa2", fastiou.box_ioa, {"over": "boxes2"}),
)


# Input dtype pairs (by name: numpy's and torch's dtypes share them) for the dtype rule of the
# overlap matrices, overlap_dtype (numpy and torch input alike).
DTYPE_PAIRS = [
    ("float32", "float32"),
    ("float64", "float64"),
    ("float32", "float64"),
    ("float64", "float32"),
    ("int64", "int64"),
    ("int32", "float32"),
    ("uint8", "uint8"),
    ("float16", "float16"),
    ("float16", "float64"),
]


def overlap_dtype(name1: str, name2: str) -> str:
    """The documented rule (boxes/_api.py): float64 wins; everything else computes in float32."""
    return "float64" if "float64" in (name1, name2) else "float32"


@pytest.fixture(params=OPERATIONS, ids=[op.name for op in OPERATIONS])
def op(request) -> Op:
    """Each overlap operation in turn (IoA once over boxes1 and once over boxes2)."""
    return request.param


def random_boxes(
    n: int,
    dtype=np.float64,
    seed: int = 0,
    *,
    batch: tuple[int, ...] = (),
    scale: float = 100.0,
    integer: bool = False,
) -> np.ndarray:
    """Seeded random xyxy boxes [*batch, n, 4] with x1 <= x2, y1 <= y2 inside [0, 1.5 * scale].

    ``integer`` rounds the coordinates (pixel boxes, as cython_bbox expects).
    """
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, scale, size=batch + (n, 2))
    size = rng.uniform(0, scale / 2, size=batch + (n, 2))
    boxes = np.concatenate([corner, corner + size], axis=-1)
    if integer:
        boxes = np.round(boxes)
    return boxes.astype(dtype)


def distinct_ids(rng: np.random.Generator, n: int, below: int) -> list[int]:
    """``n`` distinct ids in ``[1, below)``, sorted: the image and category ids of the random
    COCO and LVIS sets."""
    return sorted(rng.choice(np.arange(1, below), n, replace=False).tolist())


@pytest.fixture
def plain_auto(monkeypatch) -> None:
    """``backend="auto"`` as a user gets it: the Cython backend there, no FASTIOU_BACKEND."""
    ensure_available("cython")
    monkeypatch.delenv("FASTIOU_BACKEND", raising=False)


def spy_on(monkeypatch, owner: Any, name: str, record: Callable[[tuple, Any], Any]) -> list:
    """Wrap ``owner.name``: each call appends ``record(args, result)`` to the list returned."""
    calls = []
    original = getattr(owner, name)

    def spy(*args):
        result = original(*args)
        calls.append(record(args, result))
        return result

    monkeypatch.setattr(owner, name, spy)
    return calls
