"""Bad COCO panoptic data: each gives a clear error naming the image and the segment or file."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from panoptic_cases import write_cases

import fastiou.panoptic as fp
from fastiou.panoptic import PanopticDataError


@pytest.fixture
def dataset(tmp_path):
    gt_json, pred_json = write_cases(tmp_path, ["void", "crowd", "split_merge"])
    return Path(gt_json), Path(pred_json)


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _pred_segments(data, image_id=1):
    return next(a for a in data["annotations"] if a["image_id"] == image_id)["segments_info"]


def test_segment_in_png_not_in_json(dataset):
    gt_json, pred_json = dataset
    dropped = {}
    _edit(pred_json, lambda d: dropped.update(_pred_segments(d).pop(1)))
    with pytest.raises(PanopticDataError, match=rf"image 1: .*\[{dropped['id']}\] are in the PNG"):
        fp.pq_compute(gt_json, pred_json)


def test_segment_in_json_not_in_png(dataset):
    gt_json, pred_json = dataset
    _edit(pred_json, lambda d: _pred_segments(d, 2).append({"id": 4242, "category_id": 1}))
    with pytest.raises(PanopticDataError, match=r"image 2: .*\[4242\] are in segments_info"):
        fp.pq_compute(gt_json, pred_json)


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_unknown_category(dataset, which):
    gt_json, pred_json = dataset
    path = gt_json if which == "gt" else pred_json

    def change(d):
        _pred_segments(d, 3)[0]["category_id"] = 999

    _edit(path, change)
    with pytest.raises(PanopticDataError, match="image 3: .* segment .* unknown category_id 999"):
        fp.pq_compute(gt_json, pred_json)


def test_png_of_the_wrong_size(dataset):
    from PIL import Image

    gt_json, pred_json = dataset
    png = pred_json.with_suffix("") / "crowd.png"
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(png)
    with pytest.raises(PanopticDataError, match=r"image 2: .*\[20, 24\] .*\[5, 6\] differ in size"):
        fp.pq_compute(gt_json, pred_json)


def test_image_without_prediction(dataset):
    gt_json, pred_json = dataset
    _edit(pred_json, lambda d: d["annotations"].pop(1))
    with pytest.raises(PanopticDataError, match="no prediction for 1 ground-truth image.*: 2"):
        fp.pq_compute(gt_json, pred_json)


def test_image_without_prediction_as_panopticapi(dataset):
    # panopticapi raises too (a bare Exception naming the image): the same case, the same verdict
    from conftest import require_peer

    evaluation = require_peer("panopticapi.evaluation", reason="panopticapi-lite missing")
    gt_json, pred_json = dataset
    _edit(pred_json, lambda d: d["annotations"].pop(0))
    with pytest.raises(Exception, match="no prediction for the image with id: 1"):
        evaluation.pq_compute(str(gt_json), str(pred_json))
    with pytest.raises(PanopticDataError, match="no prediction for 1 ground-truth image.*: 1$"):
        fp.pq_compute(gt_json, pred_json)


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_image_listed_twice(dataset, which):
    # panopticapi would count a repeated ground-truth image twice and keep the last of two
    # predictions of an image: both are errors here
    gt_json, pred_json = dataset
    path = gt_json if which == "gt" else pred_json
    _edit(path, lambda d: d["annotations"].append(dict(d["annotations"][1])))
    with pytest.raises(PanopticDataError, match=f"{path.name}: image 2 has two annotations"):
        fp.pq_compute(gt_json, pred_json)


def test_missing_png_folder_and_json(dataset):
    gt_json, pred_json = dataset
    (pred_json.with_suffix("") / "void.png").unlink()
    with pytest.raises(FileNotFoundError, match="image 1: predicted PNG .*void.png"):
        fp.pq_compute(gt_json, pred_json)
    shutil.rmtree(pred_json.with_suffix(""))
    with pytest.raises(FileNotFoundError, match="folder .*pred .* does not exist"):
        fp.pq_compute(gt_json, pred_json)
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.json"):
        fp.pq_compute(gt_json, gt_json.parent / "nope.json")


def test_corrupt_png_and_json(dataset):
    gt_json, pred_json = dataset
    png = gt_json.with_suffix("") / "split_merge.png"
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(PanopticDataError, match="image 3: cannot decode ground-truth PNG"):
        fp.pq_compute(gt_json, pred_json)
    pred_json.write_text("{not json")
    with pytest.raises(PanopticDataError, match="not valid JSON"):
        fp.pq_compute(gt_json, pred_json)


@pytest.mark.parametrize(
    "segment, message",
    [
        ({"id": 0, "category_id": 1}, "id 0 is not in"),
        ({"category_id": 1}, "needs an integer 'id'"),
    ],
)
def test_bad_segment_entries(dataset, segment, message):
    gt_json, pred_json = dataset
    _edit(pred_json, lambda d: _pred_segments(d).append(segment))
    with pytest.raises(PanopticDataError, match=f"image 1: predicted segment .*{message}"):
        fp.pq_compute(gt_json, pred_json)


def test_segment_listed_twice(dataset):
    gt_json, pred_json = dataset
    _edit(pred_json, lambda d: _pred_segments(d).append(dict(_pred_segments(d)[0])))
    with pytest.raises(PanopticDataError, match="image 1: predicted segment .* listed twice"):
        fp.pq_compute(gt_json, pred_json)


def test_ground_truth_area_too_small(dataset):
    gt_json, pred_json = dataset

    def change(d):
        for s in _pred_segments(d, 2):
            s["area"] = 0

    _edit(gt_json, change)
    with pytest.raises(PanopticDataError, match="image 2: ground-truth segment .* has area 0"):
        fp.pq_compute(gt_json, pred_json)


def test_accumulator_errors():
    quality = fp.PanopticQuality([{"id": 1, "isthing": 1}])
    info = [{"id": 1, "category_id": 1}]
    with pytest.raises(PanopticDataError, match="image 9: ground-truth id -3"):
        quality.update(np.array([[1, -3]]), np.array([[1, 1]]), info, info, image_id=9)
    with pytest.raises(PanopticDataError, match="differ in size"):
        quality.update(np.ones((2, 2), int), np.ones((2, 3), int), info, info)
    with pytest.raises(PanopticDataError, match="segments_info must be a list"):
        quality.update(np.ones((2, 2), int), np.ones((2, 2), int), None, info)
    with pytest.raises(PanopticDataError, match="category id twice"):
        fp.PanopticQuality([{"id": 1}, {"id": 1}])
    assert quality.images == 0  # nothing was added by the failed updates
    with pytest.raises(PanopticDataError, match="category 1 has no 'isthing'"):
        fp.PanopticQuality([{"id": 1}]).compute()
