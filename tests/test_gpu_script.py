"""bench/gpu_bench.py, the GPU benchmark, runs end to end under numba's CUDA simulator.

The real run needs a GPU (bench/gpu.sh); here every code path but the device calls runs: the
workloads, the result and transfer checks, the timing loop and the table. The checks are
also shown to fail when a result is wrong or data does not cross as it must.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastiou

torch = pytest.importorskip("torch", reason="gpu_bench.py compares against torch")
pytest.importorskip("torchvision", reason="gpu_bench.py compares against torchvision")

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"
TASKS = [
    "box_iou",
    "box_iou",
    "generalized_box_iou",
    "generalized_box_iou",
    "nms",
    "nms",
    "batched_nms",
    "confusion labels",
    "confusion logits",
]


@pytest.fixture(scope="module")
def gpu_bench():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_bench
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return gpu_bench


def table_rows(text: str) -> list[list[str]]:
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the header row


def test_simulated_run_has_every_row(tmp_path):
    """The whole script under the simulator: exit 0, one row per task and input type, every
    measured row PASS, cupy rows skipped with a note, the same table on stdout and in --out."""
    out = tmp_path / "gpu_table.md"
    env = dict(os.environ, PYTHONPATH=str(Path(fastiou.__file__).parents[1]))
    env.pop("OUT", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--simulate", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # not the repository: the fastiou under test comes from PYTHONPATH
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    assert text in done.stdout
    assert re.search(r"\*\*GPU:\*\* none: numba CUDA simulator", text)
    assert "patch counter on a known 16384 B round trip: h2d 16384, d2h 16384 ok" in text
    rows = table_rows(text)
    measured = [r for r in rows if r[2].startswith("torch")]
    assert [r[0] for r in measured] == TASKS
    assert all(r[-1].startswith("PASS") for r in measured), measured
    skipped = [r for r in rows if r[2] == "cupy"]
    assert [r[0] for r in skipped] == TASKS
    assert all(r[-1].startswith("skipped: ") for r in skipped)
    families = {r[0]: r[-1] for r in rows if r[2] == "—"}
    assert set(families) == {"mask_iou", "panoptic pair counts"}
    goals = {r[0]: r[8] for r in measured if r[8] != "—"}
    assert goals == {"box_iou": "≥5×", "nms": "≥2×", "confusion labels": "≥3×",
                     "confusion logits": "≥3×"}  # fmt: skip


def box_workload(gpu_bench, env, run):
    def inputs():
        return gpu_bench.random_boxes(env, 6, 1), gpu_bench.random_boxes(env, 5, 2)

    return gpu_bench.Workload(
        "box_iou", "6x5", inputs, run, "tv", env.tv.box_iou, gpu_bench.close(env)
    )


def test_checks_fail_on_a_wrong_result(gpu_bench):
    """A result that differs from torchvision's is a FAIL naming the difference."""
    env = gpu_bench.Env(simulate=True)

    def wrong(backend, a, b):
        return fastiou.box_iou(a, b, backend=backend) + 0.01

    w = box_workload(gpu_bench, env, wrong)
    row = gpu_bench.measure(env, w, w.inputs(), env.kinds[0], True)
    assert row.failed and any("values differ" in p for p in row.problems), row.problems


def test_transfer_check_is_real(gpu_bench):
    """The simulator's check fails when no input crosses to the (simulated) device; the
    device's check fails when more than the allowance crosses."""
    env = gpu_bench.Env(simulate=True)
    on_host = box_workload(gpu_bench, env, lambda backend, a, b: fastiou.box_iou(a, b))
    row = gpu_bench.Row("box_iou", "6x5", "torch")
    problems = gpu_bench.check_transfers(
        env, on_host, on_host.inputs(), on_host.inputs(), row, True
    )
    assert any("h2d of" in p for p in problems), problems

    from numba import cuda

    def leaks(backend, a, b):
        cuda.to_device(torch.zeros(gpu_bench.ALLOWED_BYTES // 4 + 1).numpy())
        return fastiou.box_iou(a, b, backend="numpy")

    env.simulate = False  # judge as on a device (no CUPTI here; the patched calls still count)
    env.sync = lambda: None
    leaky = box_workload(gpu_bench, env, leaks)
    problems = gpu_bench.check_transfers(env, leaky, leaky.inputs(), leaky.inputs(), row, True)
    assert any("host transfers" in p for p in problems), problems
    clean = box_workload(gpu_bench, env, lambda backend, a, b: a[:, :1] + 0)
    assert gpu_bench.check_transfers(env, clean, clean.inputs(), clean.inputs(), row, True) == []
