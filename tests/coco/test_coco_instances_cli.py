"""``fastiou coco GT DT --iou-type segm|keypoints``: pycocotools' summary lines."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from conftest import require_peer
from instance_sets import pycocotools_run, random_keypoints, random_segm

from fastiou.cli import main


@pytest.mark.parametrize("iou_type", ["segm", "keypoints"])
def test_cli_summary_matches_pycocotools(iou_type, tmp_path, capsys):
    require_peer("pycocotools")
    gt, dt = (random_segm if iou_type == "segm" else random_keypoints)(17)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    out_json = tmp_path / "out.json"
    args = ["coco", str(tmp_path / "gt.json"), str(tmp_path / "dt.json"), "--quiet",
            "--iou-type", iou_type, "--json", str(out_json)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    theirs = pycocotools_run(gt, dt, iou_type)
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        theirs.summarize()
    assert out == buf.getvalue()
    stats = list(json.loads(out_json.read_text())["stats"].values())
    assert stats == theirs.stats.tolist()


def test_cli_keypoints_without_keypoints_is_an_error(tmp_path, capsys):
    gt, dt = random_segm(1)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    args = ["coco", str(tmp_path / "gt.json"), str(tmp_path / "dt.json"), "--quiet",
            "--iou-type", "keypoints"]  # fmt: skip
    assert main(args) == 1
    assert "keypoints" in capsys.readouterr().err
