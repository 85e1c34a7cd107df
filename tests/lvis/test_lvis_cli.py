"""``fastiou lvis GT.json DT.json``: lvis-api's results lines, per-class table, JSON, errors."""

from __future__ import annotations

import json
import re

import pytest
from lvis_sets import lvis_api_eval, random_lvis, with_masks, write_json

from fastiou.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The .warn. method is deprecated")  # lvis-api


@pytest.fixture
def files(tmp_path):
    dataset, dets = random_lvis(9)
    known = {c["id"] for c in dataset["categories"]}
    dets = [d for d in dets if d["category_id"] in known]  # only known categories
    gt = write_json(tmp_path / "gt.json", dataset)
    return gt, write_json(tmp_path / "dt.json", dets), dataset, dets


def test_results_match_lvis_api(files, capsys, tmp_path):
    gt, dt, _, _ = files
    out_path = tmp_path / "out.json"
    assert main(["lvis", gt, dt, "--json", str(out_path)]) == 0
    captured = capsys.readouterr()
    assert "evaluating" in captured.err and "done in" in captured.err
    theirs = lvis_api_eval(gt, dt)
    theirs.print_results()
    assert captured.out == capsys.readouterr().out
    report = json.loads(out_path.read_text())
    assert report["results"] == {k: float(v) for k, v in theirs.results.items()}
    assert len(report["per_class"]) == len(theirs.params.cat_ids)


def test_segm_results_match_lvis_api(files, capsys, tmp_path):
    _, _, dataset, dets = files
    dataset, dets = with_masks(dataset, dets, 9, "none")
    gt, dt = write_json(tmp_path / "gt_m.json", dataset), write_json(tmp_path / "dt_m.json", dets)
    assert main(["lvis", gt, dt, "--iou-type", "segm", "--quiet"]) == 0
    captured = capsys.readouterr()
    theirs = lvis_api_eval(gt, dt, iou_type="segm")
    theirs.print_results()
    assert captured.out == capsys.readouterr().out


def test_per_class_and_quiet(files, capsys):
    gt, dt, dataset, _ = files
    assert main(["lvis", gt, dt, "--per-class", "--quiet", "--max-dets", "50"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "| category | freq | n_gt |" in captured.out
    rows = re.findall(r"^\| c\d+ \| [rcf] \|", captured.out, re.MULTILINE)
    assert len(rows) == len(dataset["categories"])


def test_bad_data_exits_1(files, capsys, tmp_path):
    gt, dt, dataset, dets = files
    broken = json.loads(json.dumps(dataset))
    del broken["images"][0]["neg_category_ids"]
    assert main(["lvis", write_json(tmp_path / "bad.json", broken), dt]) == 1
    assert "neg_category_ids" in capsys.readouterr().err
    unknown = dets + [{**dets[0], "category_id": 424242}]
    unknown_path = write_json(tmp_path / "unknown.json", unknown)
    assert main(["lvis", gt, unknown_path]) == 1
    assert "424242" in capsys.readouterr().err
    assert main(["lvis", gt, unknown_path, "--allow-unknown-categories", "--quiet"]) == 0
    capsys.readouterr()
    elsewhere = dets + [{**dets[0], "image_id": 987654321}]
    assert main(["lvis", gt, write_json(tmp_path / "elsewhere.json", elsewhere)]) == 1
    assert "987654321" in capsys.readouterr().err
    (tmp_path / "garbage.json").write_text("{not json")
    assert main(["lvis", str(tmp_path / "garbage.json"), dt]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_bad_arguments_exit_2(files, capsys, tmp_path):
    gt, dt, _, _ = files
    assert main(["lvis", gt, str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["lvis", gt, dt, "--max-dets", "many"])
    assert exc.value.code == 2
