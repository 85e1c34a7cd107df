"""`import fastiou` from a source checkout without built extensions says so, once, with the fix."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ensure_available

import fastiou
from fastiou._core import dispatch as _dispatch

CALLS = (
    "import numpy as np, fastiou\n"
    "b = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])\n"
    "assert np.allclose(fastiou.box_iou(b, b), [[1, 1 / 7], [1 / 7, 1]])\n"
    "assert np.allclose(fastiou.box_iou(b, b), [[1, 1 / 7], [1 / 7, 1]])\n"
    "print(fastiou.backends()['cython'].detail)\n"
)


def test_source_tree_without_extensions_warns_once_naming_the_fix(tmp_path):
    # A checkout: the package's Python and .pyx files (no compiled extension), setup.py beside.
    package = Path(fastiou.__file__).parent
    shutil.copytree(
        package,
        tmp_path / "fastiou",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"),
    )
    (tmp_path / "setup.py").write_text("# a source checkout\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FASTIOU_BACKEND", "PYTHONPATH")}
    env["NUMBA_DISABLE_JIT"] = "1"  # the fallback's kernels run as Python: no compile here
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", CALLS],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # `-c` imports from the working directory: the checkout shadows
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 1, done.stderr  # once, although auto fell through twice
    assert _dispatch.SOURCE_TREE in warnings[0] and str(tmp_path) in warnings[0]
    assert "`pip install .`" in warnings[0]
    assert "`python setup.py build_ext --inplace`" in warnings[0]
    assert "<string>" in done.stderr  # the warning points at the caller's line
    assert _dispatch.SOURCE_TREE in done.stdout  # fastiou.backends() says it too


def test_no_hint_where_the_extensions_are_built():
    """The fastiou under test (built in place, or installed) gets no such hint."""
    ensure_available("cython")
    assert _dispatch._source_tree_hint() == ""
