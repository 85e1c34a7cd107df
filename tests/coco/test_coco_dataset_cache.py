"""``COCO(path).dataset``: built once (the annotations array parsed, the header reused), then
the same dict on every read; what pycocotools users do with it (mutate, createIndex) works."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import require_peer

from fastiou.coco import COCO, AnnotationError, _json


def _dataset() -> dict:
    anns = [
        {"id": k, "image_id": 1 + k % 3, "category_id": 7, "bbox": [k, 2.5, 10, 20.25],
         "area": 200.0 + k, "iscrowd": k % 5 == 0, "segmentation": [[k, 1, 2, 3, 4, 5]]}
        for k in range(1, 30)
    ]  # fmt: skip
    return {
        "info": {"description": "t", "version": "1"},
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 640} for i in (1, 2, 3)],
        "annotations": anns,
        "categories": [{"id": 7, "name": "seven", "supercategory": "s"}],
        "licenses": [],
    }


@pytest.fixture
def gt_file(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(_dataset()))
    return str(path)


def test_dataset_is_the_file_read_once(gt_file, monkeypatch):
    parsed = []
    loads = _json._loads
    monkeypatch.setattr(_json, "_loads", lambda raw: parsed.append(len(raw)) or loads(raw))
    coco = COCO(gt_file, verbose=False)
    parsed.clear()
    first = coco.dataset
    with open(gt_file) as f:
        expected = json.load(f)
    assert first == expected and list(first) == list(expected)  # values and key order
    # only the annotations array was parsed again, not the whole file
    array = json.dumps(expected["annotations"]).encode()
    assert parsed == [len(array)] and len(array) < os.path.getsize(gt_file)
    os.remove(gt_file)
    assert coco.dataset is first  # the second read is the cached dict: no file needed


def test_dataset_shares_objects_and_keeps_changes_as_pycocotools(gt_file):
    pycoco = require_peer("pycocotools.coco", reason="pycocotools is the oracle")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        theirs = pycoco.COCO(gt_file)
    ours = COCO(gt_file, verbose=False)
    for coco in (ours, theirs):
        coco.dataset["images"][0]["width"] = 1
        coco.dataset["categories"][0]["name"] = "renamed"
        coco.dataset["annotations"][0]["bbox"][0] = -5.0
    for coco in (ours, theirs):  # the same objects behind the views, in both
        assert coco.imgs[1]["width"] == 1 and coco.loadImgs(1)[0] is coco.dataset["images"][0]
        assert coco.cats[7]["name"] == "renamed"
        assert coco.loadAnns(1)[0]["bbox"][0] == -5.0
    assert ours.dataset == theirs.dataset


def test_mutated_dataset_reaches_evaluation_after_create_index(gt_file):
    coco = COCO(gt_file, verbose=False)
    assert len(coco.getAnnIds()) == 29
    del coco.dataset["annotations"][10:]
    coco.dataset["annotations"][0]["area"] = 1.5
    coco.createIndex()
    assert coco.getAnnIds() == list(range(1, 11))
    assert coco._table().area[0] == 1.5 and coco.dataset is coco.dataset


def test_key_order_and_duplicate_annotations_as_json(tmp_path):
    data = _dataset()
    text = json.dumps(data)
    # a first "annotations" that a later one replaces: json keeps the first place, last value
    last = json.dumps(data["annotations"][:3])
    text = '{"annotations": null, ' + text[1:-1] + ', "annotations": ' + last + "}"
    path = tmp_path / "dup.json"
    path.write_text(text)
    coco = COCO(str(path), verbose=False)
    expected = json.loads(text)
    assert coco.dataset == expected and list(coco.dataset) == list(expected)
    assert list(coco._table().id) == [1, 2, 3]


def test_changed_file_is_an_error_not_other_data(gt_file):
    coco = COCO(gt_file, verbose=False)
    data = _dataset()
    data["annotations"] = data["annotations"][:2]
    with open(gt_file, "w") as f:
        json.dump(data, f)
    os.utime(gt_file, ns=(1, 1))  # a different mtime even on coarse clocks
    with pytest.raises(AnnotationError, match="changed since it was loaded"):
        _ = coco.dataset


def test_dataset_without_msgspec_is_the_same(gt_file, monkeypatch):
    monkeypatch.setattr(_json, "_msgspec_decode", lambda: None)
    coco = COCO(gt_file, verbose=False)
    with open(gt_file) as f:
        assert coco.dataset == json.load(f)
    assert np.array_equal(coco._table().id, np.arange(1, 30))
