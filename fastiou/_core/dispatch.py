"""Backend registry and the rule that picks one.

Each operation family ("boxes", ...) has one kernel module per backend in its folder
(``fastiou/boxes/_cython.py``, ...), all with the same functions (for "boxes": ``pairwise``
and ``aligned``), or ``None`` where the family has no kernel of its own for that backend.
The choice, strongest first: the ``backend=`` argument when it is not "auto", then
:func:`use_backend`, then the ``FASTIOU_BACKEND`` environment variable, then "auto": CUDA data
goes to ``cuda``; other data goes to ``cython`` below the family's ``config.CYTHON_MAX_WORK``
and to ``numba`` at or above it. An unavailable backend falls through to the next in its
``FALLBACK`` order (with a warning when it was asked for by name), never to an error.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from . import config as _config
from . import parallel

BACKENDS = ("numpy", "cython", "numba", "cuda")
# family -> backend -> kernel module. A family registers its modules here.
MODULES: dict[str, dict[str, str | None]] = {
    "boxes": {
        "numpy": "fastiou.boxes._reference",
        "cython": "fastiou.boxes._cython",
        "numba": "fastiou.boxes._numba",
        "cuda": "fastiou.boxes._cuda",
    },
    "confusion": {
        "numpy": "fastiou.semantic._reference",
        "cython": "fastiou.semantic._cython",
        "numba": "fastiou.semantic._numba",
        "cuda": "fastiou.semantic._cuda",
    },
    "nms": {
        "numpy": "fastiou.nms._reference",
        "cython": "fastiou.nms._cython",
        "numba": None,  # the same greedy grid algorithm ran as fast in numba: one copy, Cython's
        "cuda": "fastiou.nms._cuda",
    },
    # pair areas of panoptic id maps: one serial pass per image (images run as pool tasks), so
    # numba would run the same loop as Cython: None, it falls through.
    "panoptic": {
        "numpy": "fastiou.panoptic._reference",
        "cython": "fastiou.panoptic._cython",
        "numba": None,
        "cuda": "fastiou.panoptic._cuda",
    },
    # None: no kernel of its own for that backend; the call falls through to the next one.
    "masks": {
        "numpy": "fastiou.masks._reference",
        "cython": "fastiou.masks._cython_backend",
        "numba": None,
        "cuda": "fastiou.masks._cuda",
    },
}
FALLBACK = {
    "cuda": ("cuda", "numba", "cython", "numpy"),
    "numba": ("numba", "cython", "numpy"),
    "cython": ("cython", "numba", "numpy"),
    "numpy": ("numpy",),
}
# A backend a family registers as None has no kernel of its own by design: asking for it is
# not an error and warns nothing; the next backend of its FALLBACK order runs.
BY_DESIGN = "no kernel of its own (by design): runs the next backend"
_loaded: dict[str, ModuleType | str] = {}  # module name -> module, or why it cannot load
_source_tree_warned = False
_lock = threading.Lock()


class _Override(threading.local):
    name: str | None = None  # a class default: reading it unset raises nothing (cheaper)


_override = _Override()


class BackendStatus(NamedTuple):
    available: bool
    detail: str


def _load(family: str, backend: str) -> ModuleType | str:
    path = MODULES[family][backend]
    if path is None:
        return BY_DESIGN
    with _lock:
        if path not in _loaded:
            try:
                module = importlib.import_module(path)
                reason = getattr(module, "unavailable_reason", lambda: None)()
                _loaded[path] = module if reason is None else reason
            except ImportError as e:
                _loaded[path] = f"cannot import {path}: {e}{_source_tree_hint()}"
        return _loaded[path]


def _source_tree_hint() -> str:
    """Why a backend module may fail to import here: this fastiou is a source checkout (a
    setup.py beside the package, typically the current directory shadowing an installed
    fastiou) whose compiled extensions were never built in place."""
    package = Path(__file__).resolve().parents[1]
    root = package.parent
    if not (root / "setup.py").is_file():
        return ""
    unbuilt = [
        pyx
        for pyx in package.rglob("*.pyx")
        if not any(pyx.parent.glob(f"{pyx.stem}.*.so"))
        and not any(pyx.parent.glob(f"{pyx.stem}.*.pyd"))
    ]
    if not unbuilt:
        return ""
    return (
        f" ({SOURCE_TREE}: fastiou is imported from the source tree {root}, whose compiled "
        "extensions are not built; run `pip install .` and import fastiou from elsewhere, or, "
        "for development, build them in place with `python setup.py build_ext --inplace`)"
    )


SOURCE_TREE = "source tree without compiled extensions"


def backends() -> dict[str, BackendStatus]:
    """Every backend, whether it is available here, and what it is or why it is not.

    A backend is available when the kernel modules of every family load; otherwise ``detail``
    names the families that do not and why. Probing imports numba (for "numba" and "cuda").
    """
    report = {}
    for name in BACKENDS:
        loaded = {family: _load(family, name) for family in MODULES}
        missing = {f: why for f, why in loaded.items() if isinstance(why, str) and why != BY_DESIGN}
        if missing:
            detail = "; ".join(f"{family}: {why}" for family, why in missing.items())
            report[name] = BackendStatus(False, detail)
        else:
            boxes = loaded["boxes"]
            report[name] = BackendStatus(True, getattr(boxes, "describe", lambda: "available")())
    return report


def _check_name(name: str, source: str) -> str:
    if name != "auto" and name not in BACKENDS:
        choices = ", ".join(("auto",) + BACKENDS)
        raise ValueError(f"{source}: unknown backend {name!r}; choose from {choices}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block (in this thread), ``backend="auto"`` means ``name``."""
    _check_name(name, "use_backend")
    previous = _override.name
    _override.name = name
    try:
        yield
    finally:
        _override.name = previous


# os.environ.get costs ~1 µs a call (it encodes the key and raises KeyError when the variable is
# unset): the mapping's own dict answers the same at a dict lookup's cost, and sees every change
# made through os.environ (as os.environ.get does).
_ENV = "FASTIOU_BACKEND"
try:
    _environ, _env_key = os.environ._data, os.environ.encodekey(_ENV)
except AttributeError:  # not CPython's os.environ
    _environ, _env_key = None, None


@functools.lru_cache(maxsize=8)
def _parse_env(raw: str | bytes) -> str:
    value = raw.decode() if isinstance(raw, bytes) else raw
    return _check_name(value.strip().lower() or "auto", _ENV)


def _auto_means() -> str:
    """What ``backend="auto"`` means here: use_backend's name, else FASTIOU_BACKEND, else auto."""
    name = _override.name
    if name:
        return name
    raw = _environ.get(_env_key) if _environ is not None else os.environ.get(_ENV)
    return "auto" if raw is None else _parse_env(raw)


_CYTHON_MODULES = {family: paths["cython"] for family, paths in MODULES.items()}


def lean(family: str, work: int) -> ModuleType | None:
    """The Cython kernel module if ``select(family, "auto", work, on_gpu=False)`` picks it,
    else None; cheap, for the lean call paths (no warning to give: nobody asked by name)."""
    if work >= _config.CYTHON_MAX_WORK[family]:
        return None
    name = _override.name  # _auto_means() inlined (a call saved on a ~5 us path)
    if name:
        if name != "auto":
            return None
    elif _environ is not None:
        raw = _environ.get(_env_key)
        if raw is not None and _parse_env(raw) != "auto":
            return None
    elif _auto_means() != "auto":
        return None
    module = _loaded.get(_CYTHON_MODULES[family])
    if module is None:  # not loaded yet: load it once
        module = _load(family, "cython")
    return None if isinstance(module, str) else module


def select(family: str, backend: str, work: int, on_gpu: bool) -> tuple[str, ModuleType]:
    """The backend to run ``work`` (pairs, pixels...) of ``family`` with, and its kernel module."""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, not {type(backend).__name__}")
    name = _check_name(backend, "backend")
    if name == "auto":
        name = _auto_means()
    asked = name != "auto"  # by argument, use_backend or FASTIOU_BACKEND: warn on fall-through
    if name == "auto":
        small = work < _config.CYTHON_MAX_WORK[family]
        name = "cuda" if on_gpu else "cython" if small else "numba"
    reasons = []
    for candidate in FALLBACK[name]:
        loaded = _load(family, candidate)
        if candidate == "numba" and not isinstance(loaded, str):
            loaded = parallel.numba_unusable() or loaded  # e.g. in a fork child
        if not isinstance(loaded, str):
            if candidate != name and any(SOURCE_TREE in r for r in reasons):
                _warn_source_tree(name, candidate, reasons)
            elif asked and candidate != name and any(r != BY_DESIGN for r in reasons):
                warnings.warn(
                    f"fastiou backend {name!r} is unavailable ({'; '.join(reasons)}); "
                    f"using {candidate!r}",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return candidate, loaded
        reasons.append(loaded)
    raise AssertionError("unreachable: the numpy backend always loads")


def _warn_source_tree(name: str, candidate: str, reasons: list[str]) -> None:
    """Warn once per process, even under "auto": running without the compiled kernels from a
    source checkout is a set-up mistake, not a choice (the numbers are right, only slower)."""
    global _source_tree_warned
    if _source_tree_warned:
        return
    _source_tree_warned = True
    why = next(r for r in reasons if SOURCE_TREE in r)
    warnings.warn(
        f"fastiou backend {name!r} is unavailable ({why}); using {candidate!r}",
        RuntimeWarning,
        stacklevel=5,  # the caller of the public function (this, select, its helper, it)
    )
