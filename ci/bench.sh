#!/usr/bin/env bash
# The main job of README.md: a fresh virtual environment with fastiou and the peers it is
# measured against, then `fastiou bench` on the built-in workloads. Arguments go to fastiou bench.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FASTIOU_VENV:-.venv-bench}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q ".[bench]"
# The peers, each best effort: one that cannot be installed is listed as missing in the table.
peers=${FASTIOU_PEERS:-"torch==2.14.1 torchvision==0.29.1|cython_bbox|fastbbox|powerboxes|lsnms|hotcoco|ultrafast-pycocotools|pycocotools==2.0.11|faster-coco-eval|lvis==0.5.3"}
IFS='|' read -ra groups <<< "$peers"
for group in "${groups[@]}"; do
    # shellcheck disable=SC2086 # a group is several requirements
    "$venv/bin/pip" install -q $group || echo "bench: could not install $group; listed as missing"
done
# panopticapi-lite pins numpy<2 but runs on numpy 2: without its dependencies
"$venv/bin/pip" install -q --no-deps panopticapi-lite==0.2.0 \
    || echo "bench: could not install panopticapi-lite; listed as missing"
"$venv/bin/fastiou" bench "$@"
