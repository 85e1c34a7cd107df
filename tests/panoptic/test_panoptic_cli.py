"""``fastiou panoptic`` on small hand-made COCO panoptic sets."""

import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import require_peer
from panoptic_cases import write_cases

import fastiou.panoptic as fp
from fastiou.cli import main


@pytest.fixture
def dataset(tmp_path):
    gt_json, pred_json = write_cases(tmp_path / "set")
    return Path(gt_json), Path(pred_json)


def test_table_and_json(dataset, tmp_path, capsys):
    gt_json, pred_json = dataset
    out = tmp_path / "result.json"
    assert main(["panoptic", str(gt_json), str(pred_json), "--per-class", "--json", str(out),
                 "--jobs", "2", "--no-progress"]) == 0  # fmt: skip
    expected = fp.pq_compute(gt_json, pred_json)
    text = capsys.readouterr().out
    all_line = next(line for line in text.splitlines() if line.startswith("All"))
    assert all_line.split()[2:5] == [f"{100 * expected['All'][k]:.1f}" for k in ("pq", "sq", "rq")]
    assert "| thing1 " in text  # the per-class table
    document = json.loads(out.read_text())
    assert document["All"] == expected["All"] and document["images"] == 8
    assert document["per_class"] == {str(k): v for k, v in expected["per_class"].items()}


def test_the_table_is_panopticapis(dataset, capsys):
    evaluation = require_peer("panopticapi.evaluation")
    gt_json, pred_json = dataset
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        evaluation.pq_compute(str(gt_json), str(pred_json))
    theirs = [line for line in printed.getvalue().splitlines() if "|" in line or "---" in line]
    assert main(["panoptic", str(gt_json), str(pred_json), "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines() == theirs


def test_folders_given(dataset, tmp_path, capsys):
    gt_json, pred_json = dataset
    moved = tmp_path / "elsewhere"
    pred_json.with_suffix("").rename(moved)
    assert main(["panoptic", str(gt_json), str(pred_json), "--no-progress"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["panoptic", str(gt_json), str(pred_json), "--pred-folder", str(moved),
                 "--no-progress"]) == 0  # fmt: skip


def test_bad_data_exits_1_and_writes_nothing(dataset, tmp_path, capsys):
    gt_json, pred_json = dataset
    data = json.loads(pred_json.read_text())
    data["annotations"][0]["segments_info"].pop()
    pred_json.write_text(json.dumps(data))
    out = tmp_path / "result.json"
    code = main(["panoptic", str(gt_json), str(pred_json), "--json", str(out), "--no-progress"])
    assert code == 1
    assert "image 1: predicted segment(s)" in capsys.readouterr().err
    assert not out.exists()


def test_bad_arguments_exit_2_before_reading(tmp_path, capsys):
    missing = str(tmp_path / "missing.json")
    assert main(["panoptic", missing, missing, "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    for bad in (["--backend", "tpu"], ["--decoder", "gif"]):  # argparse's usage errors
        with pytest.raises(SystemExit) as e:
            main(["panoptic", missing, missing, *bad])
        assert e.value.code == 2
    assert main(["panoptic", missing, missing, "--no-progress"]) == 1  # read: bad data
