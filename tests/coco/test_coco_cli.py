"""``fastiou coco GT.json DT.json``: pycocotools' summary lines, per-class table, JSON, errors."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from coco_sets import pycocotools_eval, random_coco
from conftest import require_peer

from fastiou.cli import main


@pytest.fixture
def files(tmp_path):
    gt, dt = random_coco(21)
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dt))
    return str(gt_path), str(dt_path), gt, dt


def test_summary_matches_pycocotools(files, capsys):
    require_peer("pycocotools")
    gt_path, dt_path, gt, dt = files
    assert main(["coco", gt_path, dt_path, "--quiet"]) == 0
    out = capsys.readouterr().out
    theirs = pycocotools_eval(gt, dt)
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        theirs.summarize()
    assert out == buf.getvalue()


def test_per_class_and_json(files, capsys, tmp_path):
    gt_path, dt_path, gt, _ = files
    out_path = tmp_path / "out.json"
    assert main(["coco", gt_path, dt_path, "--per-class", "--json", str(out_path)]) == 0
    captured = capsys.readouterr()
    assert "| category | n_gt | AP |" in captured.out
    assert "loading ground truth" in captured.err  # progress goes to stderr
    report = json.loads(out_path.read_text())
    assert list(report["stats"])[:3] == ["AP", "AP50", "AP75"]
    assert [row["category_id"] for row in report["per_class"]] == sorted(
        c["id"] for c in gt["categories"]
    )
    assert np.isfinite(report["stats"]["AP"])


@pytest.mark.parametrize(
    "dt_content, message",
    [
        ('[{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]', "missing key 'category_id'"),
        ('[{"image_id": 424242, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]',
         "not in the ground truth"),
        ('[{"image_id": IMG, "category_id": 1, "bbox": [0, NaN, 1, 1], "score": 1}]',
         "non-finite bbox"),
        ("[", "not valid JSON"),
    ],
)  # fmt: skip
def test_errors_exit_non_zero(files, capsys, tmp_path, dt_content, message):
    gt_path, _, gt, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(dt_content.replace("IMG", str(gt["images"][0]["id"])))
    assert main(["coco", gt_path, str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastiou coco: error:") and message in err


def test_missing_file(files, capsys):
    gt_path, _, _, _ = files
    assert main(["coco", gt_path, "/nonexistent/dt.json", "--quiet"]) == 1
    assert "No such file" in capsys.readouterr().err
