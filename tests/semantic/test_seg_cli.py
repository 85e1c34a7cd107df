"""``fastiou seg`` on small generated folders of label maps (PNG and .npy)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_peer

from fastiou.cli import main
from fastiou.semantic._reference import oracle

Image = require_peer("PIL.Image")

NUM_CLASSES = 4


def write_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


@pytest.fixture
def dataset(tmp_path):
    """pred/ and gt/ folders with 5 PNG pairs (one in a subfolder); returns (root, arrays)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for i, key in enumerate(["a", "b", "c", "d", "sub/e"]):
        gt = rng.integers(0, NUM_CLASSES, (12, 17)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.1] = 255
        pred = np.where(rng.random(gt.shape) < 0.7, gt % 255, rng.integers(0, NUM_CLASSES))
        pred = np.where(gt == 255, 250 if i == 0 else 0, pred).astype(np.uint8)
        write_png(tmp_path / "gt" / f"{key}.png", gt)
        write_png(tmp_path / "pred" / f"{key}.png", pred)
        arrays[key] = (pred, gt)
    return tmp_path, arrays


def expected(arrays, keys=None, **settings):
    keys = arrays.keys() if keys is None else keys
    settings.setdefault("ignore_index", 255)
    return sum(oracle(arrays[k][0], arrays[k][1], NUM_CLASSES, **settings) for k in keys)


def run(root, *extra):
    return main(
        [
            "seg",
            str(root / "pred"),
            str(root / "gt"),
            "--num-classes",
            str(NUM_CLASSES),
            "--no-progress",
            *map(str, extra),
        ]
    )


def test_table_and_json(dataset, capsys):
    root, arrays = dataset
    assert run(root, "--json", root / "out.json") == 0
    out = capsys.readouterr().out
    assert "| class |" in out and "5 image(s): aAcc" in out and "mIoU" in out
    document = json.loads((root / "out.json").read_text())
    matrix = expected(arrays)
    assert document["confusion_matrix"] == matrix.tolist()
    assert document["images"] == 5 and document["skipped"] == []
    ious = np.diag(matrix) / (matrix.sum(0) + matrix.sum(1) - np.diag(matrix))
    assert document["summary"]["miou"] == pytest.approx(np.nanmean(ious))
    assert document["per_class"]["2"]["iou"] == pytest.approx(ious[2])


def test_jobs_give_the_same_numbers(dataset, capsys):
    root, _ = dataset
    assert run(root, "--json", root / "one.json") == 0
    assert run(root, "--jobs", 3, "--json", root / "three.json") == 0
    one = json.loads((root / "one.json").read_text())
    three = json.loads((root / "three.json").read_text())
    assert one["confusion_matrix"] == three["confusion_matrix"]


def test_missing_prediction_is_an_error_naming_the_file(dataset, capsys):
    root, _ = dataset
    (root / "pred" / "b.png").unlink()
    (root / "out.json").write_text("old")
    assert run(root, "--json", root / "out.json") == 1
    err = capsys.readouterr().err
    assert "gt/b.png: ground truth without a prediction" in err
    assert (root / "out.json").read_text() == "old"  # nothing written


def test_unpaired_prediction_and_duplicates(dataset, capsys):
    root, arrays = dataset
    write_png(root / "pred" / "extra.png", arrays["a"][0])
    np.save(root / "pred" / "a.npy", arrays["a"][0])
    assert run(root) == 1
    err = capsys.readouterr().err
    assert "pred/extra.png: prediction without a ground truth" in err
    assert "a.png: same name as" in err or "a.npy: same name as" in err


def test_corrupt_png_is_an_error_naming_the_file(dataset, capsys):
    root, _ = dataset
    (root / "pred" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert run(root, "--json", root / "out.json") == 1
    err = capsys.readouterr().err
    assert "pred/c.png: not a readable PNG image" in err
    assert not (root / "out.json").exists()


def test_skip_bad_reports_and_counts_the_rest(dataset, capsys):
    root, arrays = dataset
    (root / "pred" / "c.png").write_bytes(b"garbage")
    (root / "pred" / "b.png").unlink()
    assert run(root, "--skip-bad", "--json", root / "out.json") == 0
    captured = capsys.readouterr()
    assert "skipped 2 file(s)" in captured.err
    assert "3 image(s) (2 file(s) skipped)" in captured.out
    document = json.loads((root / "out.json").read_text())
    assert document["confusion_matrix"] == expected(arrays, ["a", "d", "sub/e"]).tolist()
    skipped = {Path(item["file"]).relative_to(root).as_posix(): item["reason"]
               for item in document["skipped"]}  # fmt: skip
    assert skipped["gt/b.png"] == "ground truth without a prediction"
    assert skipped["pred/c.png"].startswith("not a readable PNG image")


def test_mis_sized_pair(dataset, capsys):
    root, arrays = dataset
    write_png(root / "pred" / "d.png", arrays["d"][0][:, :10])
    assert run(root) == 1
    err = capsys.readouterr().err
    assert "pred/d.png: is 12x10 but its ground truth" in err and "is 12x17" in err


def test_out_of_range_label_names_file_and_value(dataset, capsys):
    root, arrays = dataset
    gt = arrays["b"][1].copy()
    gt[0, 0] = 9
    write_png(root / "gt" / "b.png", gt)
    assert run(root) == 1
    err = capsys.readouterr().err
    assert "gt/b.png: target label 9 is outside [0, 4)" in err


def test_rgb_png_is_refused(dataset, capsys):
    root, arrays = dataset
    write_png(root / "pred" / "a.png", np.stack([arrays["a"][0]] * 3, axis=-1))
    assert run(root) == 1
    assert "pred/a.png: is a RGB image" in capsys.readouterr().err


def test_npy_labels_and_scores(tmp_path, capsys):
    rng = np.random.default_rng(1)
    gt = rng.integers(0, NUM_CLASSES, (2, 9, 11)).astype(np.int32)
    scores = rng.standard_normal((NUM_CLASSES, 9, 11)).astype(np.float32)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    np.save(tmp_path / "gt" / "x.npy", gt[0])
    np.save(tmp_path / "pred" / "x.npy", scores)  # scores [C, H, W]: argmax on the fly
    np.save(tmp_path / "gt" / "y.npy", gt[1])
    np.save(tmp_path / "pred" / "y.npy", gt[1][::-1].astype(np.int64))
    assert run(tmp_path, "--json", tmp_path / "out.json") == 0
    want = oracle(scores, gt[0], NUM_CLASSES, class_axis=0) + oracle(
        gt[1][::-1], gt[1], NUM_CLASSES
    )
    assert json.loads((tmp_path / "out.json").read_text())["confusion_matrix"] == want.tolist()


def test_class_names_reduce_zero_label_and_ignores(dataset, capsys):
    root, arrays = dataset
    names = root / "names.txt"
    names.write_text("road\nsky\ncar\nperson\n")
    # With --reduce-zero-label, ground truth 1..4 are the classes: shift the generated maps up.
    for key, (_, gt) in arrays.items():
        write_png(root / "gt" / f"{key}.png", np.where(gt == 255, 0, gt + 1).astype(np.uint8))
    args = ("--reduce-zero-label", "--class-names", names, "--json", root / "out.json")
    assert run(root, *args) == 0
    assert "| person |" in capsys.readouterr().out
    document = json.loads((root / "out.json").read_text())
    assert list(document["per_class"]) == ["road", "sky", "car", "person"]
    assert document["confusion_matrix"] == expected(arrays).tolist()
    names.write_text("road\nsky\n")
    assert run(root, "--class-names", names) == 2
    assert "has 2 class names, --num-classes is 4" in capsys.readouterr().err


def test_pairing_suffixes(tmp_path, capsys):
    gt = np.zeros((4, 5), np.uint8)
    write_png(tmp_path / "gt" / "x_gtFine_labelTrainIds.png", gt)
    write_png(tmp_path / "pred" / "x_leftImg8bit.png", gt)
    args = ("--gt-suffix", "_gtFine_labelTrainIds", "--pred-suffix", "_leftImg8bit")
    assert run(tmp_path, *args) == 0
    assert "1 image(s)" in capsys.readouterr().out


def test_usage_errors(tmp_path, capsys):
    assert run(tmp_path) == 2  # no folders
    assert "folder does not exist" in capsys.readouterr().err
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    assert run(tmp_path) == 1
    assert "no .png or .npy pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["seg", str(tmp_path / "pred"), str(tmp_path / "gt")])  # --num-classes missing
