"""COCOeval(gt, dt, "segm") against pycocotools 2.0.11, cell by cell; annToRLE, annToMask and
loadRes' segmentation branch."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
from conftest import require_peer
from instance_sets import fastiou_run, pycocotools_run, random_segm

require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from coco_sets import assert_same  # noqa: E402

from fastiou.coco import COCO  # noqa: E402


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_bbox", [False, True], ids=["rle", "rle+bbox"])
def test_segm_matches_pycocotools(seed, with_bbox):
    gt, dt = random_segm(seed, with_bbox=with_bbox)
    assert_same(fastiou_run(gt, dt, "segm"), pycocotools_run(gt, dt, "segm"))


@pytest.mark.parametrize("seed", range(2))
def test_segm_tied_scores_and_no_categories(seed):
    gt, dt = random_segm(10 + seed, tied_scores=True)

    def configure(p):
        p.useCats = 0

    assert_same(fastiou_run(gt, dt, "segm"), pycocotools_run(gt, dt, "segm"))
    assert_same(fastiou_run(gt, dt, "segm", configure), pycocotools_run(gt, dt, "segm", configure))


CONFIGS = {
    "maxDets": lambda p: setattr(p, "maxDets", [1, 3, 7]),
    "iouThrs": lambda p: setattr(p, "iouThrs", np.array([0.1, 0.5, 0.66, 0.9])),
    "areaRng": lambda p: (
        setattr(p, "areaRng", [[0, 1e10], [0, 200], [200, 1024], [1024, 1e10]]),
        setattr(p, "areaRngLbl", ["all", "small", "medium", "large"]),
    ),
    "imgIds": lambda p: setattr(p, "imgIds", p.imgIds[::2]),
    "catIds": lambda p: setattr(p, "catIds", p.catIds[1:]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_segm_custom_params(name):
    gt, dt = random_segm(21)
    configure = CONFIGS[name]
    assert_same(fastiou_run(gt, dt, "segm", configure), pycocotools_run(gt, dt, "segm", configure))


def test_segm_category_without_detections():
    gt, dt = random_segm(5)
    first = gt["annotations"][0]["category_id"]
    dt = [d for d in dt if d["category_id"] != first]
    assert_same(fastiou_run(gt, dt, "segm"), pycocotools_run(gt, dt, "segm"))


def test_segm_from_files(tmp_path):
    gt, dt = random_segm(7)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    coco = COCO(str(tmp_path / "gt.json"), verbose=False)
    ours = fastiou_run(coco, str(tmp_path / "dt.json"), "segm")
    assert_same(ours, pycocotools_run(gt, dt, "segm"))


def _same_results(a, b):
    from fastiou.coco._instances import rles

    for name in ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "score"):
        np.testing.assert_array_equal(getattr(a._table(), name), getattr(b._table(), name))
    assert rles(a).to_coco() == rles(b).to_coco()
    assert a.dataset["annotations"] == b.dataset["annotations"]


def test_segm_results_file_read_in_place(tmp_path):
    # a results file of RLE detections is read by the JSON scanner, each RLE object where it lies
    # (escaped backslashes undone), without a dict per detection: the same as the dict path
    from fastiou.coco._instances import segm_results

    gt, dt = random_segm(8)
    for i in range(1, len(dt), 3):  # later results may carry their own box
        dt[i]["bbox"] = [1.0, 2.0, 3.0, 4.0]
    coco = COCO(copy.deepcopy(gt), verbose=False)
    shuffled = [{"x": [1, {"y": "}"}], **dict(reversed(list(d.items())))} for d in dt]
    for d in shuffled:
        d["segmentation"] = {"z": None, **dict(reversed(list(d["segmentation"].items())))}
    for name, text in (("plain", json.dumps(dt)), ("shuffled", json.dumps(shuffled, indent=1))):
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        assert "\\\\" in text  # strings with an escaped backslash
        assert segm_results(str(path), name, {}) is not None
        from_file = coco.loadRes(str(path))
        assert from_file._result_source == str(path)  # no dicts made
        _same_results(from_file, coco.loadRes(json.loads(text)))
        # masks dropped (as an evaluation that starts afresh): read again at their spans,
        # without scanning the file again
        from fastiou.coco import _instances

        want = _instances.rles(from_file).to_coco()
        from_file._rles_cache = None
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_instances, "segm_results", None)  # would fail if called
            again = _instances.rles(from_file)
            assert again.to_coco() == want
            fresh = type(again)(again.counts, again.offsets, again.heights, again.widths)
            assert np.array_equal(again.boxes(), fresh.boxes())  # measured before: the same
            assert np.array_equal(again.areas(), fresh.areas())
        # the file changed since (same bytes, a new mtime): scanned again, the same masks
        from_file._rles_cache = None
        path.write_text(text)
        os.utime(path, ns=(1, from_file._result_stat[1] + 10**9))
        assert _instances.rles(from_file).to_coco() == want


@pytest.mark.parametrize("change", ["run list", "polygon", "float id", "escaped key", "corrupt"])
def test_segm_results_file_declines_what_it_does_not_read(tmp_path, change):
    # anything else in a results file goes to the dict path, which reads it or names the problem
    from fastiou.coco import AnnotationError
    from fastiou.coco._instances import segm_results

    gt, dt = random_segm(9)
    segm = dt[2]["segmentation"]
    if change == "run list":
        h, w = segm["size"]
        dt[2]["segmentation"] = {"size": [h, w], "counts": [h * w]}
    elif change == "polygon":
        dt[2]["segmentation"] = [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]
    elif change == "float id":
        dt[2]["image_id"] = float(dt[2]["image_id"])
    elif change == "corrupt":
        dt[2]["segmentation"] = {"size": segm["size"], "counts": segm["counts"][:-1]}
    path = tmp_path / "dt.json"
    text = json.dumps(dt)
    if change == "escaped key":
        text = text.replace('"counts"', '"\\u0063ounts"', 1)
    path.write_text(text)
    assert segm_results(str(path), "dt", {}) is None
    coco = COCO(copy.deepcopy(gt), verbose=False)
    if change in ("polygon", "corrupt"):
        with pytest.raises(AnnotationError):
            coco.loadRes(str(path))
        return
    _same_results(coco.loadRes(str(path)), coco.loadRes(json.loads(text)))


def _gt_file(tmp_path, gt, text=None):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt) if text is None else text)
    coco = COCO(str(path), verbose=False)
    coco._table()
    return coco


def test_gt_segmentations_read_in_place(tmp_path):
    # a ground-truth file's polygons and RLEs are read where they lie in the file (its numbers
    # as json reads them): the same masks as from its dicts, which are never made
    from fastiou.coco._instances import _pack_annotations, _rles_in_file

    gt, _ = random_segm(12)
    polygons = [a for a in gt["annotations"] if type(a["segmentation"]) is list]
    polygons[0]["segmentation"] = [[round(v) for v in p] for p in polygons[0]["segmentation"]]
    polygons[1]["segmentation"][0] = polygons[1]["segmentation"][0] + [7.5]  # odd: dropped
    text = json.dumps(gt, indent=1).replace(".5,", ".50e0,")  # exponents too
    coco = _gt_file(tmp_path, gt, text)
    packed = _rles_in_file(coco)
    assert packed is not None and coco._dataset is None  # no dicts made
    want = _pack_annotations(coco, coco.dataset["annotations"])
    assert packed.to_coco() == want.to_coco()


@pytest.mark.parametrize(
    "change", ["no height", "nan", "long number", "no segmentation", "file changed"]
)
def test_gt_segmentations_in_place_decline(tmp_path, change):
    from fastiou.coco import AnnotationError
    from fastiou.coco._instances import _rles_in_file, rles

    gt, _ = random_segm(13)
    ann = next(a for a in gt["annotations"] if type(a["segmentation"]) is list)
    text = None
    if change == "no height":
        next(i for i in gt["images"] if i["id"] == ann["image_id"]).pop("height")
    elif change == "nan":
        ann["segmentation"][0][0] = float("nan")
    elif change == "long number":
        ann["segmentation"][0][0] = 3.0
        text = json.dumps(gt).replace("[[3.0,", "[[3.00000000000000000000001,", 1)
    elif change == "no segmentation":
        del ann["segmentation"]
    coco = _gt_file(tmp_path, gt, text)
    if change == "file changed":
        (tmp_path / "gt.json").write_text(json.dumps(gt) + " ")
    assert _rles_in_file(coco) is None
    if change == "long number":  # the dicts read it
        assert len(rles(coco)) == len(gt["annotations"])
    else:
        with pytest.raises(AnnotationError):
            rles(coco)


def test_ann_to_rle_and_mask_match_pycocotools():
    from pycocotools.coco import COCO as PyCOCO

    gt, _ = random_segm(3)
    theirs = PyCOCO()
    theirs.dataset = copy.deepcopy(gt)
    theirs.createIndex()
    ours = COCO(copy.deepcopy(gt), verbose=False)
    kinds = set()
    for ann in gt["annotations"]:
        kinds.add(type(ann["segmentation"]).__name__ + str(ann["iscrowd"]))
        a, b = ours.annToRLE(ann), theirs.annToRLE(copy.deepcopy(ann))
        assert a["size"] == b["size"] and a["counts"] == b["counts"]
        m1, m2 = ours.annToMask(ann), theirs.annToMask(copy.deepcopy(ann))
        assert m1.dtype == m2.dtype and np.array_equal(m1, m2)
    assert kinds >= {"list0", "dict0", "dict1"}  # polygons, RLE, uncompressed crowd RLE


def test_packed_segmentations_match_ann_to_rle():
    # what evaluate rasterises: every annotation at once, Python floats and ints read in one
    # compiled pass; anything else (numpy numbers here) one by one as annToRLE
    from pycocotools.coco import COCO as PyCOCO

    from fastiou.coco._instances import rles

    gt, _ = random_segm(6)
    polygons = [a for a in gt["annotations"] if type(a["segmentation"]) is list]
    polygons[0]["segmentation"] = [[round(v) for v in p] for p in polygons[0]["segmentation"]]
    polygons[1]["segmentation"] = [[np.float64(v) for v in p] for p in polygons[1]["segmentation"]]
    polygons[2]["segmentation"] = polygons[2]["segmentation"] * 2  # two parts
    theirs = PyCOCO()
    theirs.dataset = copy.deepcopy(gt)
    theirs.createIndex()
    packed = rles(COCO(copy.deepcopy(gt), verbose=False)).to_coco()
    assert len(packed) == len(gt["annotations"])
    for ann, got in zip(gt["annotations"], packed, strict=True):
        want = theirs.annToRLE(copy.deepcopy(ann))
        counts = want["counts"]  # a compressed RLE of the file comes back as it is (str)
        counts = counts.encode() if isinstance(counts, str) else counts
        assert got["size"] == list(want["size"]) and got["counts"] == counts


@pytest.mark.parametrize("with_bbox", [False, True])
def test_load_res_segmentation_branch(with_bbox):
    from pycocotools.coco import COCO as PyCOCO

    gt, dt = random_segm(4, with_bbox=with_bbox)
    theirs = PyCOCO()
    theirs.dataset = copy.deepcopy(gt)
    theirs.createIndex()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        res_theirs = theirs.loadRes(copy.deepcopy(dt))
    res_ours = COCO(copy.deepcopy(gt), verbose=False).loadRes(copy.deepcopy(dt))
    a, b = res_ours.dataset["annotations"], res_theirs.dataset["annotations"]
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x["id"] == y["id"] and x["iscrowd"] == y["iscrowd"]
        assert float(x["area"]) == float(y["area"])
        assert np.array_equal(np.asarray(x["bbox"], float), np.asarray(y["bbox"], float))
        assert x["segmentation"] == y["segmentation"]


def test_segm_errors():
    from fastiou.coco import AnnotationError, COCOeval

    gt, dt = random_segm(2)
    image = next(i for i in gt["images"] if i["id"] == gt["annotations"][0]["image_id"])
    del image["height"]
    coco = COCO(copy.deepcopy(gt), verbose=False)
    E = COCOeval(coco, coco.loadRes(dt), "segm", verbose=False)
    with pytest.raises(AnnotationError, match="height"):
        E.evaluate()
    with pytest.raises(AnnotationError, match="RLE"):
        coco.loadRes([{"image_id": gt["images"][0]["id"], "category_id": 1, "score": 0.5,
                       "segmentation": {"counts": "x"}}])  # fmt: skip
    with pytest.raises(AnnotationError, match="annotation 1: image_id must be an integer"):
        coco.loadRes([{"image_id": 1.0, "segmentation": 0}, {"image_id": []}])  # ragged ids


def test_box_results_evaluated_as_masks():
    """Box results evaluated with "segm" (pycocotools' default): loadRes gives each a box
    polygon, rasterised as the detection's mask."""
    from coco_sets import random_coco

    gt, dt = random_coco(4, n_images=10)
    assert_same(fastiou_run(gt, dt, "segm"), pycocotools_run(gt, dt, "segm"))


def test_rle_spans_on_threads_read_what_json_reads():
    # the compiled reader of RLE objects at their byte spans, on one and on three threads
    # (chunks of 512 spans): json's strings, escapes undone; a bad escape or object declines
    from fastiou.coco._ext import kernels

    rng = np.random.default_rng(1)
    alphabet = [chr(c) for c in range(48, 112)]
    objs = []
    for i in range(1500):
        counts = "".join(rng.choice(alphabet, int(rng.integers(1, 40))))
        objs.append({"size": [int(rng.integers(1, 99)), i + 1], "counts": counts})
    pieces, spans, at = [], [], 1
    for o in objs:
        text = json.dumps(o)
        spans.append([at, at + len(text)])
        pieces.append(text)
        at += len(text) + 2
    buf = np.frombuffer(("[" + ", ".join(pieces) + "]").encode(), np.uint8)
    spans = np.array(spans, np.int64)
    for threads in (1, 3):
        chars, lengths, h, w = kernels().rle_spans(buf, spans, threads)
        ends = np.cumsum(lengths)
        got = [bytes(chars[e - n : e]).decode() for e, n in zip(ends, lengths, strict=True)]
        assert got == [o["counts"] for o in objs]
        assert h.tolist() == [o["size"][0] for o in objs]
        assert w.tolist() == [o["size"][1] for o in objs]
    bad = buf.copy()
    k = int(np.flatnonzero((bad[:-1] == 92) & (bad[1:] == 92))[0])  # the first escape...
    bad[k + 1] = ord("n")  # ... turned into \\n
    assert kernels().rle_spans(bad, spans, 3) is None
    assert kernels().rle_spans(buf, spans + np.array([0, 10**9]), 3) is None
