#!/usr/bin/env bash
# fastiou's CUDA backend on a real NVIDIA GPU, offline, in one prepared run (well under 10 min):
#   1. build and install fastiou from this working tree (no network: --no-build-isolation, the
#      machine's own Cython/numpy/setuptools) into a scratch --target directory;
#   2. print nvidia-smi and the versions of torch, cupy, numba, numba-cuda;
#   3. run every CUDA test on the device (FASTIOU_TEST_REAL_GPU=1, no simulator) from another
#      directory, so that they import the installed copy, not ./fastiou;
#   4. run bench/gpu_bench.py: the timing table against torchvision / torch.bincount.
# Results go to $OUT (default bench/gpu-out): gpu_log.txt (everything), gpu_table.md, pytest_cuda.xml.
# PYTHON picks the interpreter (default python3); FASTIOU_GPU_TIMEOUT the global limit (s).
# FASTIOU_GPU_SIMULATE=1 rehearses the whole script without a GPU (numba's CUDA simulator).
set -uo pipefail
if [ -z "${FASTIOU_GPU_INNER:-}" ]; then  # the whole run under one time limit
    FASTIOU_GPU_INNER=1 exec timeout -k 10 "${FASTIOU_GPU_TIMEOUT:-500}" bash "$0" "$@"
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$repo/bench/gpu-out}
mkdir -p "$out"
py=${PYTHON:-python3}
work=$(mktemp -d)
exec > >(tee "$out/gpu_log.txt") 2>&1
status=0
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
bench_args=()
if [ "${FASTIOU_GPU_SIMULATE:-0}" = 1 ]; then
    echo "gpu.sh: FASTIOU_GPU_SIMULATE=1: a rehearsal under numba's CUDA simulator, no GPU"
    export NUMBA_ENABLE_CUDASIM=1
    unset FASTIOU_TEST_REAL_GPU
    bench_args=(--simulate)
else
    unset NUMBA_ENABLE_CUDASIM
    export FASTIOU_TEST_REAL_GPU=1
fi
step() { echo; echo "=== $* ($(date -u +%H:%M:%S), ${SECONDS}s)"; }

step "build and install fastiou from $repo into $work/site"
# A clean copy: pip builds in the source tree. A setuptools older than 77 wants the table form
# of the license field (the SPDX string is newer): patched in the copy only.
mkdir "$work/src"
(cd "$repo" && tar --exclude=./.git --exclude='*.so' --exclude=./build --exclude='./bench/gpu-out' \
    -cf - .) | (cd "$work/src" && tar -xf -)
if ! "$py" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)'; then
    echo "gpu.sh: setuptools < 77: using the table form of project.license in the copy"
    sed -i 's/^license = "\(.*\)"$/license = {text = "\1"}/' "$work/src/pyproject.toml"
fi
# The extensions compile in parallel first (pip's build is serial); pip then finds them built.
required=numpy,cython,numba,cuda
if (cd "$work/src" && timeout 200 "$py" setup.py -q build_ext -j "$(nproc)") \
    && timeout 120 "$py" -m pip install --no-build-isolation --no-deps --no-index \
        --target "$work/site" "$work/src"; then
    export PYTHONPATH=$work/site
else
    # The CUDA kernels are numba (no compile step): still test and time them, from the copy.
    echo "gpu.sh: FAILED to build/install fastiou; going on with the uncompiled copy (no cython)"
    status=1
    required=numpy,numba,cuda
    rm -rf "$work/src/build"
    export PYTHONPATH=$work/src
fi
cd "$work"  # not the repo: `import fastiou` must find the installed copy
"$py" - "$repo" <<'EOF' || { echo "gpu.sh: FAILED: fastiou imports from the source tree"; exit 1; }
import os, sys
import fastiou
print("fastiou imported from", fastiou.__file__)
sys.exit(os.path.abspath(fastiou.__file__).startswith(os.path.abspath(sys.argv[1]) + os.sep))
EOF

step "device and versions"
nvidia-smi || echo "gpu.sh: nvidia-smi failed"
"$py" - <<'EOF'
from importlib import metadata
for dist in ("torch", "torchvision", "numba", "numba-cuda", "Cython", "numpy", "pytest"):
    try:
        print(f"{dist} {metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        print(f"{dist} not installed")
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as e:
    print("cupy unusable:", type(e).__name__, e)
import torch
print("torch CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
import numba.cuda
print("numba.cuda from", numba.cuda.__file__, "available:", numba.cuda.is_available())
import fastiou
for name, s in fastiou.backends().items():
    print(f"fastiou backend {name}: {'available' if s.available else 'UNAVAILABLE'} - {s.detail}")
EOF

step "CUDA tests on the device (-k cuda: boxes, nms, confusion)"
# Every test parametrized with the cuda backend, and the tests that need a real CUDA device.
FASTIOU_REQUIRE_BACKENDS=$required timeout 180 "$py" -m pytest -q \
    -p no:cacheprovider -k cuda --durations=10 --junitxml="$out/pytest_cuda.xml" "$repo/tests"
rc=$?
echo "gpu.sh: CUDA tests exit status $rc"
[ "$rc" -eq 0 ] || status=1

step "benchmark table"
timeout 150 "$py" "$repo/bench/gpu_bench.py" "${bench_args[@]}" --out "$out/gpu_table.md"
rc=$?
echo "gpu.sh: gpu_bench exit status $rc"
[ "$rc" -eq 0 ] || status=1

step "done, status $status"
rm -rf "$work"
exit "$status"
