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
# The peers of the parity tests (besides pycocotools, Pillow and dask from the test extra). Not
# best effort: a failed install fails the run, and FASTIOU_REQUIRE_PEERS below turns a parity
# test that skips for want of one of these peers into a failure (tests/conftest.py:
# require_peer), so a run cannot pass without its torchvision, cython_bbox... checks.
peers=${FASTIOU_PEERS:-torch==2.14.1 torchvision==0.29.1 cython_bbox torchmetrics}
# shellcheck disable=SC2086
if ! "$venv/bin/pip" install -q $peers; then
    echo "ci: cannot install the parity peers: $peers" >&2
    exit 1
fi
# panopticapi-lite pins numpy<2 but runs on numpy 2: without its dependencies, so the suite
# stays on numpy 2 (lvis, in the test extra, needs np.float = float: the tests set it).
if ! "$venv/bin/pip" install -q --no-deps panopticapi-lite==0.2.0; then
    echo "ci: cannot install panopticapi-lite" >&2
    exit 1
fi
required_peers=torch,torchvision,cython_bbox,torchmetrics,pycocotools,PIL,dask,distributed,lvis
required_peers=$required_peers,panopticapi
export FASTIOU_REQUIRE_PEERS=${FASTIOU_REQUIRE_PEERS:-$required_peers}
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
# The tests import the installed package (the pytest script does not put ./fastiou, which has no
# compiled extension, on sys.path), and fail if a backend is missing: CUDA runs under
# NUMBA_ENABLE_CUDASIM=1 (set by tests/conftest.py). -ra prints every skip with its reason.
FASTIOU_REQUIRE_BACKENDS=numpy,cython,numba,cuda "$venv/bin/pytest" -q -ra tests
"$venv/bin/pytest" -q -ra -p no:cacheprovider bench --benchmark-disable -m quick

# numpy 1.x, which pyproject.toml allows (numpy>=1.24) and much of the field still runs (mmcv /
# mmseg and TensorFlow < 2.18 environments pin numpy<2): integer casting differs there (NEP 50)
# and an overflow wraps silently instead of raising. The semantic and box tests once more, in a
# venv with numpy 1.26 and the newest numba (which supports it); peers are not needed there.
venv1="$venv-numpy1"
rm -rf "$venv1"
python3 -m venv "$venv1"
"$venv1/bin/pip" install -q --upgrade pip
"$venv1/bin/pip" install -q . "numpy==1.26.*" "pytest>=7" "hypothesis>=6"
"$venv1/bin/python" -c "import numpy; assert numpy.__version__[:5] == '1.26.', numpy.__version__"
FASTIOU_REQUIRE_PEERS= FASTIOU_REQUIRE_BACKENDS=numpy,cython,numba,cuda "$venv1/bin/pytest" -q -ra \
    -p no:cacheprovider tests/semantic/test_segmentation.py tests/boxes/test_boxes.py
