#!/usr/bin/env bash
# The main job of README.md: a fresh virtual environment with fastiou and the peers it is
# measured against, then `fastiou bench` on the built-in workloads. Arguments go to fastiou bench.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FASTIOU_VENV:-.venv-bench}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q ".[bench]"
"$venv/bin/pip" install -q ${FASTIOU_PEERS:-torch==2.14.1 torchvision==0.29.1} \
    || echo "bench: torch/torchvision not installed; they are listed as missing"
"$venv/bin/fastiou" bench "$@"
