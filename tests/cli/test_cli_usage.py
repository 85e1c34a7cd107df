"""The ``fastiou`` command as a new user meets it: help, version, bad arguments, missing extras.

A bad argument is exit status 2 with a one-line message before any file is read, for every
subcommand; a missing optional dependency names the extra that brings it.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastiou
from fastiou import cli
from fastiou.bench import WORKLOADS
from fastiou.semantic import _files as seg_files

SUBCOMMANDS = ("bench", "backends", "seg", "coco")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``fastiou *argv`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse: --help, --version, usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand_with_a_line(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "``" not in out  # no RST markup in a terminal
    for name in SUBCOMMANDS:
        line = re.search(rf"^\s+{name}\s+(\S.*)$", out, re.M)
        assert line, f"{name} is not listed with a description:\n{out}"


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"fastiou {fastiou.__version__}"


def test_bench_help_lists_the_tasks(capsys):
    code, out, _ = run_cli(capsys, "bench", "--help")
    assert code == 0
    flat = " ".join(out.split())  # argparse wraps lines
    for task in {w.task for w in WORKLOADS}:
        assert task in flat


@pytest.fixture
def npy_pairs(tmp_path) -> tuple[Path, Path]:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for name in ("a", "b"):
        np.save(pred / f"{name}.npy", np.zeros((4, 4), np.uint8))
        np.save(gt / f"{name}.npy", np.zeros((4, 4), np.uint8))
    return pred, gt


@pytest.fixture
def no_file_is_read(monkeypatch):
    """Fail the test if the seg command pairs, reads or counts any file."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a file was looked at before the arguments were checked")

    for name in ("pair_files", "read_label_map", "count_pair"):
        if hasattr(seg_files, name):
            monkeypatch.setattr(seg_files, name, forbidden)


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--backend", "nope"), "--backend: invalid choice: 'nope'"),
        (("--jobs", "0"), "--jobs: must be at least 1"),
        (("--num-classes", "0"), "--num-classes: must be at least 1"),
        (("--convention", "sklearn"), "--convention: invalid choice"),
    ],
)
def test_seg_bad_argument_is_exit_2_before_any_file(
    capsys, npy_pairs, no_file_is_read, extra, message
):
    pred, gt = npy_pairs
    argv = ["seg", pred, gt, "--num-classes", "3", *extra]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    # --skip-bad does not turn it into "every file skipped".
    code, _, err = run_cli(capsys, *argv, "--skip-bad")
    assert code == 2 and message in err


def test_seg_good_arguments_still_run(capsys, npy_pairs):
    pred, gt = npy_pairs
    code, out, _ = run_cli(capsys, "seg", pred, gt, "--num-classes", "3", "--no-progress")
    assert code == 0 and "mIoU" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (("bench", "--task", "nope"), "--task: invalid choice: 'nope'"),
        (("bench", "--min-time", "0"), "--min-time: must be a number > 0"),
        (("coco", "gt.json", "dt.json", "--max-dets", "1", "0", "100"), "must be at least 1"),
        (("nope",), "invalid choice: 'nope'"),
    ],
)
def test_other_subcommands_bad_arguments_are_exit_2(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err


def test_seg_without_pillow_names_the_extra(capsys, tmp_path, monkeypatch):
    """`pip install .` has no Pillow: PNG label maps give one line naming fastiou[seg], exit 2,
    and no file is opened (these PNGs are not even images)."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    (pred / "a.png").write_bytes(b"not read")
    (gt / "a.png").write_bytes(b"not read")
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL -> ImportError
    code, _, err = run_cli(capsys, "seg", pred, gt, "--num-classes", "3")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'fastiou[seg]'" in lines[0], err


def test_the_installed_entry_point_answers_help():
    """`python -m fastiou.cli` (what the `fastiou` script calls) runs from a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "fastiou.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(fastiou.__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in SUBCOMMANDS)
