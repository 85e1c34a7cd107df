"""The parallel runtime seen from Python: the Cython kernels' thread pool, numba's threads, fork.

- Cython kernels run on fastiou's own work-claiming pool (``_pool.h``): the caller works too and
  never waits for a thread the OS has not run, and a fork child gets a fresh pool.
- numba kernels run on numba's threading layer. Around each call :func:`numba_threads` sets
  numba's thread count (1 while the pool sees the cores taken by another process) and puts the
  caller's back afterwards; with the ``workqueue`` layer
  (not thread-safe: concurrent launches abort the process) calls are serialized by a lock.
- After ``fork``, a child of a process that had launched numba's threads must not launch them
  again (GNU OpenMP aborts, "fork() called from a process already using GNU OpenMP"): there the
  numba backend is reported unavailable and calls fall through to the Cython kernels.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_numba_lock = threading.Lock()
_numba_layer: str | None = None  # the threading layer once numba has launched its threads
_forked_after_numba = False
FORKED = "numba's threads do not survive fork (this process was forked after using them)"


def _numba_launched() -> bool:
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return bool(getattr(parallel, "_is_initialized", False))


def _after_fork_in_child() -> None:
    global _numba_lock, _forked_after_numba
    _numba_lock = threading.Lock()  # a lock another thread held at the fork stays held
    if _numba_launched():
        _forked_after_numba = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def numba_unusable() -> str | None:
    """Why the numba CPU kernels must not run in this process, or None."""
    return FORKED if _forked_after_numba else None


def _serialize_numba() -> bool:
    """Whether numba launches need the lock: the workqueue layer, or not known yet."""
    global _numba_layer
    if _numba_layer is None and _numba_launched():
        import numba

        _numba_layer = numba.threading_layer()
    if _numba_layer is not None:
        return _numba_layer == "workqueue"
    import numba

    return numba.config.THREADING_LAYER in ("workqueue", "default", "safe", "threadsafe")


def _cores_taken() -> bool:
    """Whether the thread pool saw the cores taken by another process lately (then its jobs run
    on the caller alone, and numba kernels run on one thread too)."""
    try:
        from . import _pool
    except ImportError:  # not compiled: no pool to ask
        return False
    return _pool.alone()


@contextlib.contextmanager
def numba_threads(n: int) -> Iterator[int]:
    """Run a numba parallel kernel on ``n`` threads (capped at numba's maximum), leaving the
    caller's own ``numba.set_num_threads`` setting as it was; yields the count used."""
    import numba

    if n > 1 and _cores_taken():
        n = 1
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    lock = _numba_lock if _serialize_numba() else contextlib.nullcontext()
    with lock:
        previous = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            yield n
        finally:
            numba.set_num_threads(previous)


def describe_cython() -> str:
    """What the Cython backend runs on, for ``fastiou.backends()``."""
    from . import _pool

    if _pool.threaded():
        return f"compiled; fastiou thread pool ({_pool.workers()} workers started)"
    return "compiled WITHOUT threads (serial)"
