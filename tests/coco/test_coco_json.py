"""The JSON loader of fastiou.coco: numbers read exactly as float() reads them, the columnar
scanner equal to Python's json module (or falling back to it), clear errors for bad files."""

from __future__ import annotations

import json
import math
import random
import struct

import numpy as np
import pytest

from fastiou.coco import COCO, AnnotationError, _ckernels, _json, _table

HARD_NUMBERS = [
    "0", "-0", "1", "0.1", "0.30000000000000004", "9007199254740993", "9007199254740992",
    "9007199254740994.5", "2.2250738585072011e-308", "2.2250738585072012e-308",
    "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e-400",
    "1e400", "1e23", "8.988465674311579e+307", "5e-324", "7.2057594037927933e16",
    "1234567890123456789", "0.000000000000000000000000000001", "1.5e-323",
    "0.50000000000000000000", "100000000000000000000000.000", "481.3135070800781",
    "0.000000000000000000001234567890123456789",
]  # fmt: skip


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _parse(text: str):
    return _ckernels.parse_number(text.encode(), _json.pow5_table())


def test_hard_numbers_exact():
    for text in HARD_NUMBERS:
        value = _parse(text)
        assert value is not None, text
        # as json reads it ("-0" is the integer 0, so +0.0), else as float() reads it
        assert _bits(value) == _bits(float(json.loads(text))), text


def test_random_numbers_exact():
    rng = random.Random(0)
    texts = []
    for _ in range(20000):
        bits = rng.getrandbits(64)
        x = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if math.isfinite(x):
            texts.append(repr(x))
        texts.append(repr(float(np.float32(rng.uniform(0, 1000)))))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
        digits = digits.lstrip("0") or "0"
        texts.append(f"{digits}e{rng.randint(-340, 320)}")
        texts.append(f"{digits[:3]}.{digits[3:] or '0'}")
    declined = 0
    for text in texts:
        value = _parse(text)
        if value is None:  # only for > 19 significant digits
            declined += 1
            continue
        assert _bits(value) == _bits(float(text)), text
    assert declined == 0


def test_numbers_that_are_not_json():
    for text in ["01", "1.", ".5", "-", "1e", "1e+", "+1", "NaN", "Infinity", "--1", "1.e5"]:
        assert _parse(text) is None, text


def test_more_than_19_digits_declined():
    assert _parse("1234567890.12345678901") is None  # the caller falls back to Python
    assert _parse("1.00000000000000011102230246251565404236316680908203125") is None


def _scan(text: str, chunk_bytes: int = 1 << 20, threads: int = 1):
    buf = np.frombuffer(text.encode(), np.uint8)
    return _ckernels.parse_object_array(
        buf, 0, _json.pow5_table(), _json.MIN_RESULT_BYTES, threads, min_chunk_bytes=chunk_bytes
    )


def _results(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "image_id": int(rng.integers(1, 50)),
            "category_id": int(rng.integers(1, 9)),
            "bbox": [float(np.float32(v)) for v in rng.uniform(0, 500, 4)],
            "score": float(rng.random()),
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("threads", [1, 3, 8])
def test_scanner_chunks_agree_with_json(threads):
    dets = _results(500)
    dets[7]["extra"] = {"nested": [1, {"a": "}, {"}], "s": 'q"uote\\\\ \u00e9'}
    dets[200]["segmentation"] = {"counts": '}, {"image_id": 1}', "size": [10, 20]}
    text = json.dumps(dets, indent=None if threads != 3 else 2)
    scanned = _scan(text, chunk_bytes=256, threads=threads)
    assert scanned is not None
    columns, end = scanned
    assert end == len(text.encode())
    table = _table.from_scanned(columns, results=True, source="x")
    expected = _table.from_dicts(dets, results=True, source="x")
    for key in ("image_id", "category_id", "bbox", "score", "area", "id"):
        assert np.array_equal(getattr(table, key), getattr(expected, key)), key


@pytest.mark.parametrize(
    "text",
    [
        '[{"image_id": 1.0, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]',
        '[{"image_\\u0069d": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]',
        '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}]',
        '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]',
        '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},]',
        '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}] x',
        '{"image_id": 1}',
    ],
)
def test_scanner_declines_what_it_does_not_read(text):
    scanned = _scan(text)
    assert scanned is None or _ckernels.skip_ws(np.frombuffer(text.encode(), np.uint8),
                                                 scanned[1]) != len(text)  # fmt: skip


def _files(tmp_path, gt: dict, dt) -> tuple[str, str]:
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(dt if isinstance(dt, str) else json.dumps(dt))
    return str(gt_path), str(dt_path)


def _dataset() -> dict:
    return {
        "info": {"description": "t"},
        "images": [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "area": 400,
             "iscrowd": 0, "segmentation": [[10, 10, 30, 10, 30, 30]]},
            {"id": 2, "image_id": 2, "category_id": 7, "bbox": [0.5, 1.25, 50, 60],
             "area": 2999.5, "iscrowd": True, "segmentation": {"counts": "a\\\\b", "size": [9, 9]}},
        ],
        "categories": [{"id": 7, "name": "seven", "supercategory": "s"}],
    }  # fmt: skip


def test_dataset_file_fast_path(tmp_path):
    gt_path, dt_path = _files(tmp_path, _dataset(), _results(20))
    dataset, annotations, complete = _json.load_dataset(gt_path)
    assert not complete
    assert isinstance(annotations, _table.ScannedColumns)
    assert dataset["images"] == _dataset()["images"]
    table = _table.from_scanned(annotations, results=False, source=gt_path)
    assert table.iscrowd.tolist() == [0, 1]
    assert table.area.tolist() == [400.0, 2999.5]
    coco = COCO(gt_path, verbose=False)
    assert coco.dataset == _dataset()  # the annotations parsed again, on demand
    assert coco.loadCats(7) == [{"id": 7, "name": "seven", "supercategory": "s"}]


def test_dataset_fallback_path(tmp_path):
    data = _dataset()
    data["annotations"][0]["image_id"] = 1.0  # a float id: Python's json reads it
    gt_path, _ = _files(tmp_path, data, [])
    _, _, complete = _json.load_dataset(gt_path)
    assert complete
    coco = COCO(gt_path, verbose=False)
    assert coco._table().image_id.tolist() == [1, 2]


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"images": [], "annotations": [{"id": 1}], "categories": []}', "missing key"),
    ],
)
def test_bad_dataset_files(tmp_path, content, message):
    path = tmp_path / "gt.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message):
        coco = COCO(str(path), verbose=False)
        coco._table()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{}", "JSON list of detections"),
        ("[{", "not valid JSON"),
        ('[{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]}]', "missing key 'score'"),
        ('[{"image_id": 9, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1}]',
         "not in the ground truth: 9"),
        ('[{"image_id": 1, "category_id": 7, "bbox": [0, 0, Infinity, 1], "score": 1}]',
         "non-finite bbox"),
        ('[{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": NaN}]',
         "non-finite score"),
    ],
)  # fmt: skip
def test_bad_result_files(tmp_path, content, message):
    gt_path, dt_path = _files(tmp_path, _dataset(), content)
    with pytest.raises(AnnotationError, match=message):
        COCO(gt_path, verbose=False).loadRes(dt_path)


def test_result_file_exact_numbers(tmp_path):
    dets = _results(300, seed=3)
    gt = _dataset()
    gt["images"] = [{"id": i} for i in range(1, 51)]
    gt_path, dt_path = _files(tmp_path, gt, dets)
    res = COCO(gt_path, verbose=False).loadRes(dt_path)
    expected = _table.from_dicts(dets, results=True, source="x")
    table = res._table()
    assert np.array_equal(table.bbox, expected.bbox)
    assert np.array_equal(table.score, expected.score)
    assert res.loadAnns([1])[0]["bbox"] == dets[0]["bbox"]
