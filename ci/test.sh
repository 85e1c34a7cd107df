#!/usr/bin/env bash
# The test command of README.md, and what CI (.ci/run) runs: a fresh virtual environment, the
# project installed exactly as README says, lint, the test suite (CUDA kernels under numba's
# simulator) and a smoke run of the benchmark suite.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FASTIOU_VENV:-.venv-ci}
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q ".[test,lint]"
# Peers for the parity tests, best effort: without them those tests skip with a reason.
"$venv/bin/pip" install -q ${FASTIOU_PEERS:-torch==2.14.1 torchvision==0.29.1 cython_bbox} \
    || echo "ci: peers not installed; their parity tests will skip"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
# The tests import the installed package (not ./fastiou, which has no compiled extension), and
# fail if a backend is missing: CUDA runs under NUMBA_ENABLE_CUDASIM=1 (set by tests/conftest.py).
FASTIOU_REQUIRE_BACKENDS=numpy,cython,numba,cuda "$venv/bin/pytest" -q tests
"$venv/bin/pytest" -q -p no:cacheprovider bench --benchmark-disable -m quick
