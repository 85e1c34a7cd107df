"""COCOeval(gt, dt, "keypoints") against pycocotools 2.0.11, cell by cell, and the compiled OKS
against a numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_peer
from instance_sets import fastiou_run, pycocotools_run, random_keypoints

from fastiou.coco import COCO, AnnotationError, COCOeval, Params


def oks_oracle(dt_kp, gt_kp, gt_box, gt_area, sigmas):
    """pycocotools' computeOks for one group, written with numpy (D x 3K, G x 3K)."""
    variances = (sigmas * 2) ** 2
    out = np.zeros((len(dt_kp), len(gt_kp)))
    for j, g in enumerate(gt_kp):
        xg, yg, vg = g[0::3], g[1::3], g[2::3]
        visible = vg > 0
        bb = gt_box[j]
        x0, x1 = bb[0] - bb[2], bb[0] + bb[2] * 2
        y0, y1 = bb[1] - bb[3], bb[1] + bb[3] * 2
        for i, d in enumerate(dt_kp):
            xd, yd = d[0::3], d[1::3]
            if visible.any():
                dx, dy = xd - xg, yd - yg
            else:
                dx = np.maximum(0, x0 - xd) + np.maximum(0, xd - x1)
                dy = np.maximum(0, y0 - yd) + np.maximum(0, yd - y1)
            e = (dx**2 + dy**2) / variances / (gt_area[j] + np.spacing(1)) / 2
            if visible.any():
                e = e[visible]
            out[i, j] = np.sum(np.exp(-e)) / e.shape[0]
    return out


@pytest.mark.parametrize("seed", range(8))
def test_oks_kernel_matches_numpy_oracle(seed):
    from fastiou.coco._ext import kernels

    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 20))
    sigmas = rng.uniform(0.02, 0.2, k)
    groups = [(int(rng.integers(0, 5)), int(rng.integers(0, 4))) for _ in range(6)]
    n_d, n_g = sum(d for d, _ in groups), sum(g for _, g in groups)
    dt_kp = rng.uniform(0, 100, (n_d, 3 * k)).round(1)
    gt_kp = rng.uniform(0, 100, (n_g, 3 * k)).round()
    gt_kp[:, 2::3] = rng.choice([0, 1, 2], (n_g, k), p=[0.5, 0.2, 0.3])
    gt_kp[::3, 2::3] = 0  # no visible keypoint: the distance to the doubled box
    gt_box = np.concatenate([rng.uniform(0, 80, (n_g, 2)), rng.uniform(1, 50, (n_g, 2))], 1)
    gt_area = rng.uniform(0, 3000, n_g)
    gt_area[1::4] = rng.uniform(0, 0.05, len(gt_area[1::4]))  # tiny: exp underflows
    if seed >= 3 and n_d > 1 and n_g > 1:  # NaN and infinite terms: never pruned, never "1"
        dt_kp[0, 3 * int(rng.integers(k))] = np.nan
        dt_kp[1, 1] = np.inf
        gt_kp[1, 0] = -np.inf
    d_end = np.cumsum([d for d, _ in groups]).astype(np.int64)
    g_end = np.cumsum([g for _, g in groups]).astype(np.int64)
    d_start = np.concatenate([[0], d_end[:-1]]).astype(np.int64)
    g_start = np.concatenate([[0], g_end[:-1]]).astype(np.int64)
    sizes = (d_end - d_start) * (g_end - g_start)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    variances = (sigmas * 2) ** 2
    kern = kernels()
    # rows given in reverse: the kernel reads them through the index arrays
    d_rows, g_rows = np.arange(n_d)[::-1].copy(), np.arange(n_g)[::-1].copy()
    rev = [x[::-1].copy() for x in (dt_kp, gt_kp, gt_box, gt_area)]
    args = (d_start, d_end, g_start, g_end, offsets, 0, len(groups), rev[0], d_rows, *rev[1:],
            g_rows, variances)  # fmt: skip

    def oks(lowest):
        counts, pos = np.empty(offsets[-1], np.int32), np.empty(offsets[-1], np.int64)
        terms = np.empty(kern.oks_counts(*args, counts, pos, 2, lowest))
        kern.oks_terms(*args, counts, pos, terms, 2)
        values = np.empty(offsets[-1])
        kern.oks_sum(np.exp(-terms), terms, counts, pos, values)
        return values, counts

    values, counts = oks(0.0)
    # -2: every term 0 (no visible keypoint, all detected ones in the doubled box), OKS 1
    assert ((counts >= 1) | (counts == -2)).all()
    assert (values[counts == -2] == 1).all()
    for s in range(len(groups)):
        want = oks_oracle(
            dt_kp[d_start[s] : d_end[s]],
            gt_kp[g_start[s] : g_end[s]],
            gt_box[g_start[s] : g_end[s]],
            gt_area[g_start[s] : g_end[s]],
            sigmas,
        )
        got = values[offsets[s] : offsets[s + 1]].reshape(want.shape)
        assert np.array_equal(got, want, equal_nan=True)
    # with a lowest threshold, a pair may be marked -1 (not computed) only where its OKS is
    # below it; every other pair's count and value are as before
    pruned, marked = oks(0.3)
    assert (values[marked == -1] < 0.3).all() and (marked == -1).any()
    assert (pruned[marked == -1] == -1).all()
    assert np.array_equal(marked[marked != -1], counts[marked != -1])
    assert np.array_equal(pruned[marked != -1], values[marked != -1], equal_nan=True)


def test_oks_kernels_refuse_inconsistent_buffers():
    from fastiou.coco._ext import kernels

    kern = kernels()
    kp = np.zeros((2, 3))
    kp[:, 2] = 1
    one = np.array([0], np.int64)
    two = np.array([2], np.int64)
    offsets = np.array([0, 4], np.int64)
    args = (one, two, one, two, offsets, 0, 1, kp, np.arange(2), kp, np.ones((2, 4)),
            np.ones(2), np.arange(2), np.ones(1))  # fmt: skip
    counts, pos = np.empty(4, np.int32), np.empty(4, np.int64)
    assert kern.oks_counts(*args, counts, pos, 1) == 4
    with pytest.raises(ValueError, match="terms buffer too small"):
        kern.oks_terms(*args, counts, pos, np.empty(3), 1)
    bad = pos.copy()
    bad[1] = 3
    with pytest.raises(ValueError, match="not those of oks_counts"):
        kern.oks_terms(*args, counts, bad, np.empty(4), 1)
    rows = np.array([0, 5])
    with pytest.raises(ValueError, match="detection row out of range"):
        kern.oks_counts(*args[:8], rows, *args[9:], counts, pos, 1)
    with pytest.raises(ValueError, match="bad term count or position"):
        kern.oks_sum(np.ones(4), np.ones(4), counts, bad + 1, np.empty(4))


require_peer("pycocotools", reason="pycocotools is the oracle (pip install pycocotools)")

from coco_sets import assert_same  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("with_bbox", [False, True], ids=["keypoints", "keypoints+bbox"])
def test_keypoints_match_pycocotools(seed, with_bbox):
    gt, dt = random_keypoints(seed, with_bbox=with_bbox)
    ours, theirs = fastiou_run(gt, dt, "keypoints"), pycocotools_run(gt, dt, "keypoints")
    assert len(ours.stats) == 10
    assert_same(ours, theirs)


CONFIGS = {
    "tied": None,
    "useCats0": lambda p: setattr(p, "useCats", 0),
    "maxDets": lambda p: setattr(p, "maxDets", [3, 20]),
    "iouThrs": lambda p: setattr(p, "iouThrs", np.array([0.0, 0.3, 0.5, 0.95])),
    "iouThrsLow": lambda p: setattr(p, "iouThrs", np.array([0.05, 0.2, 0.6])),
    "sigmas": lambda p: setattr(p, "kpt_oks_sigmas", p.kpt_oks_sigmas[::-1] * 2),
    "areaRng": lambda p: setattr(p, "areaRng", [[0, 1e10], [0, 500], [500, 1e10]]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_keypoints_custom(name):
    gt, dt = random_keypoints(31, tied_scores=name == "tied")
    configure = CONFIGS[name]
    ours = fastiou_run(gt, dt, "keypoints", configure)
    assert_same(ours, pycocotools_run(gt, dt, "keypoints", configure))


def test_keypoint_params_are_pycocotools():
    from pycocotools.cocoeval import Params as PyParams

    ours, theirs = Params("keypoints"), PyParams("keypoints")
    for key, value in vars(theirs).items():
        assert np.array_equal(np.asarray(getattr(ours, key)), np.asarray(value)), key
    assert Params().iouType == "segm"


def test_keypoints_errors():
    gt, dt = random_keypoints(1)
    del gt["annotations"][0]["num_keypoints"]
    coco = COCO(gt, verbose=False)
    E = COCOeval(coco, coco.loadRes(dt), "keypoints", verbose=False)
    with pytest.raises(AnnotationError, match="num_keypoints"):
        E.evaluate()
    gt, dt = random_keypoints(1)
    coco = COCO(gt, verbose=False)
    dt[0]["keypoints"] = dt[0]["keypoints"][:-3]
    E = COCOeval(coco, coco.loadRes(dt), "keypoints", verbose=False)
    with pytest.raises(AnnotationError, match="51 numbers"):
        E.evaluate()


@pytest.mark.parametrize("variant", ["columns", "ids as floats", "ragged", "with bbox"])
def test_keypoints_from_files(tmp_path, variant):
    """Files go through the keypoint scanner (no dict per annotation) or, where it declines,
    through Python's json: the same numbers either way."""
    import json

    gt, dt = random_keypoints(12, with_bbox=variant == "with bbox")
    if variant == "ids as floats":
        for d in dt:
            d["image_id"] = float(d["image_id"])
    if variant == "ragged":  # pycocotools' loadRes reads any length: x = s[0::3]
        dt[1]["keypoints"] = dt[1]["keypoints"][:-3] + [1e9, 2.0]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    coco = COCO(str(tmp_path / "gt.json"), verbose=False)
    res = coco.loadRes(str(tmp_path / "dt.json"))
    # the scanner read the columns (no dict per result) where it can
    assert isinstance(res._keypoints_cache, dict) == (variant in ("columns", "ids as floats"))
    from pycocotools.coco import COCO as PyCOCO

    theirs_coco = PyCOCO()
    theirs_coco.dataset = json.loads((tmp_path / "gt.json").read_text())
    theirs_coco.createIndex()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        theirs_res = theirs_coco.loadRes(str(tmp_path / "dt.json"))
    table = res._table()
    want = theirs_res.dataset["annotations"]
    assert np.array_equal(table.area, [a["area"] for a in want])
    assert np.array_equal(table.bbox, np.array([a["bbox"] for a in want], float))
    if variant == "ragged":
        E = COCOeval(coco, res, "keypoints", verbose=False)
        with pytest.raises(AnnotationError, match="51 numbers"):
            E.evaluate()
        return
    ours = fastiou_run(coco, str(tmp_path / "dt.json"), "keypoints")
    assert_same(ours, pycocotools_run(gt, dt, "keypoints"))


@pytest.mark.parametrize(
    "text",
    [
        b'[{"keypoints": [1, 2, 2]}] x',  # trailing bytes
        b'{"annotations": [], "annotations": [{"keypoints": [1, 2, 2]}]}',  # twice: json's last
        b'{"images": []}',  # no annotations
        b'[{"keypoints": [1, null, 2]}]',  # not a number
        b'[{"keyp\\u006fints": [1, 2, 2]}]',  # an escaped key
        b'[{"keypoints": [1, 2, 2]}',  # truncated
    ],
)
def test_keypoint_scanner_declines(text):
    """Where the scanner is not sure to read what Python's json reads, it declines (the caller
    then parses with json), in both of its modes."""
    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    buf = np.frombuffer(text, np.uint8)
    assert kernels().scan_keypoints(buf, pow5_table(), 3, False, 2) is None
    assert kernels().scan_keypoints(buf, pow5_table(), 3, False, 1, 5) is None


def test_keypoint_scanner_reads_what_json_reads():
    import json

    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    gt, _ = random_keypoints(2)
    text = json.dumps(gt, indent=1).encode()
    want = np.array([a["keypoints"] for a in gt["annotations"]], float)
    for args in ((False, 2), (False, 1, 100)):
        got = kernels().scan_keypoints(np.frombuffer(text, np.uint8), pow5_table(), 51, *args)
        assert np.array_equal(got["keypoints"], want)
        assert np.array_equal(got["num_keypoints"], [a["num_keypoints"] for a in gt["annotations"]])


def test_keypoint_scanner_reads_mixed_integers_and_floats_as_json():
    """Integers after floats and floats after integers in one array (the short integer loop is
    tried only after an integer): json's values, "-0" and "-0.0" included."""
    import json

    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    rows = [
        "[1.5, 2, 3, 4.25, -0, 7, 8.0, 9, -0.0, 1e2, 12, 0.1]",
        "[3, 2.5e-3, 17, 123456789012345, 0.3, 1, 22, 23.75, 24, -5, 6.5, 1]",
    ]
    text = ("[" + ", ".join(f'{{"keypoints": {r}}}' for r in rows) + "]").encode()
    got = kernels().scan_keypoints(np.frombuffer(text, np.uint8), pow5_table(), 12, False, 1)
    want = np.array([json.loads(r) for r in rows], float)
    assert np.array_equal(got["keypoints"], want)
    assert np.array_equal(np.signbit(got["keypoints"]), np.signbit(want))  # -0 is 0, -0.0 is -0.0


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_keypoint_scanner_chunks_read_what_one_pass_reads(threads):
    """A results file split at guessed object boundaries: the columns of the one serial pass,
    also where a guess falls inside a string that looks like a boundary (then the serial pass
    reads it) and when a chunk holds a single object."""
    import json

    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    _, dt = random_keypoints(3)
    texts = [json.dumps(dt).encode()]
    tricky = [dict(d) for d in dt]
    for d in tricky[::2]:
        d["note"] = '"}, {"keypoints": [0]}, {' * 3  # a boundary pattern inside a string
    texts.append(json.dumps(tricky).encode())
    for text in texts:
        buf = np.frombuffer(text, np.uint8)
        smallest = len('{"keypoints":[]}') + 2 * 51 - 1
        one = kernels().scan_keypoints(buf, pow5_table(), 51, False, 1, smallest)
        for chunk in (64, 700, len(text) // threads, len(text)):
            got = kernels().scan_keypoints(buf, pow5_table(), 51, False, threads, smallest, chunk)
            assert got.keys() == one.keys()
            for key in one:
                assert np.array_equal(got[key], one[key], equal_nan=True), key
        assert len(one["count"]) == len(dt)


@pytest.mark.parametrize("threads", [2, 3])
def test_keypoint_scanner_gives_a_mapped_file_back_as_it_reads(tmp_path, threads):
    """A memory-mapped results file of several MB, whose pages the chunks give back to the OS
    as they read them (``release_input``): the columns of the one serial pass, and the buffer
    still reads as the file."""
    import json

    from fastiou.coco._ext import kernels
    from fastiou.coco._json import _with_bytes, is_mapped, pow5_table

    _, dt = random_keypoints(3)
    text = json.dumps(dt * (3_500_000 // len(json.dumps(dt)) + 1)).encode()  # > 3 MB
    path = tmp_path / "dt.json"
    path.write_bytes(text)
    smallest = len('{"keypoints":[]}') + 2 * 51 - 1

    def scan(buf):
        assert is_mapped(buf)
        got = kernels().scan_keypoints(
            buf, pow5_table(), 51, False, threads, smallest, 1 << 20, release_input=True
        )
        return got, bytes(buf)

    got, seen = _with_bytes(path, scan)
    assert seen == text
    buf = np.frombuffer(text, np.uint8)
    assert not is_mapped(buf)
    one = kernels().scan_keypoints(buf, pow5_table(), 51, False, 1, smallest)
    assert got.keys() == one.keys()
    for key in one:
        assert np.array_equal(got[key], one[key], equal_nan=True), key


def test_ground_truth_keypoints_read_at_their_spans(tmp_path, monkeypatch):
    """The ground truth's keypoints are read where its load found them (no second scan of the
    file): the values json reads; a file changed since, or a value the reader declines, goes
    through the other readers, which give the same answer."""
    import json

    from fastiou.coco import _instances

    gt, dt = random_keypoints(4)
    gt["annotations"][0]["keypoints"] = [float(v) + 0.25 for v in gt["annotations"][0]["keypoints"]]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt, indent=1))
    coco = COCO(str(path), verbose=False)
    scan = _instances._scan_spans(coco, str(path), 51)
    assert np.array_equal(scan["keypoints"], [a["keypoints"] for a in gt["annotations"]])
    assert np.array_equal(scan["num_keypoints"], [a["num_keypoints"] for a in gt["annotations"]])

    def no_second_scan(*args):
        raise AssertionError("the file was scanned again")

    with monkeypatch.context() as m:
        m.setattr(_instances, "_scan", no_second_scan)
        ours = fastiou_run(coco, dt, "keypoints")
    assert_same(ours, pycocotools_run(gt, dt, "keypoints"))
    # a value the span reader declines (true is no number for it): the scanner / json decide
    gt["annotations"][1]["num_keypoints"] = True
    path.write_text(json.dumps(gt))
    coco = COCO(str(path), verbose=False)
    assert _instances._scan_spans(coco, str(path), 51) is None
    assert_same(fastiou_run(coco, dt, "keypoints"), pycocotools_run(gt, dt, "keypoints"))
    # changed after the load: the spans are not trusted
    coco = COCO(str(path), verbose=False)
    coco._table()
    path.write_text(json.dumps(gt) + " ")
    assert _instances._scan_spans(coco, str(path), 51) is None


def test_keypoint_spans_outside_the_buffer_are_refused():
    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    buf = np.frombuffer(b"[1, 2, 2] 3", np.uint8)
    good = np.array([[0, 9]], np.int64)
    num = np.array([[10, 11]], np.int64)
    got = kernels().keypoint_spans(buf, good, num, pow5_table(), 3, 1)
    assert np.array_equal(got["keypoints"], [[1, 2, 2]]) and got["num_keypoints"][0] == 3
    for bad in ([[0, 12]], [[-5, 3]], [[5, 2]]):
        assert kernels().keypoint_spans(buf, np.array(bad), num, pow5_table(), 3, 1) is None
    assert kernels().keypoint_spans(buf, good, np.array([[0, 9]]), pow5_table(), 3, 1) is None


def test_keypoint_boxes_are_numpys_min_and_max():
    from fastiou.coco._ext import kernels

    for width in (3 * 17, 2, 4, 5, 7):
        kp = np.random.default_rng(width).uniform(-50, 50, (40, width))
        kp[3, 1] = np.nan  # a y: the row's y min and max are NaN, its x ones are not
        kp[5, 0] = -np.inf
        kp[6, :] = np.nan
        x, y = kp[:, 0::3], kp[:, 1::3]
        want = np.stack([x.min(1), x.max(1), y.min(1), y.max(1)], 1)
        assert np.array_equal(kernels().keypoint_boxes(kp), want, equal_nan=True)


@pytest.mark.parametrize(
    "text",
    ["[1, -0, 12, -5, 0]", "[123456789012345, 1234567890123456, 12345678901234567890]",
     "[1.5, 1e2, -0.0, 2E-3, 7]", "[ 3 ,4\\n, 5 ]", "[0]"],
)  # fmt: skip
def test_keypoint_spans_read_numbers_as_json(text):
    import json

    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    buf = np.frombuffer(text.replace("\\n", "\n").encode(), np.uint8)
    want = [float(v) for v in json.loads(buf.tobytes())]
    spans, none = np.array([[0, len(buf)]], np.int64), np.array([[-1, -1]], np.int64)
    got = kernels().keypoint_spans(buf, spans, none, pow5_table(), len(want), 1)
    assert got["count"][0] == len(want)
    assert got["keypoints"][0].tolist() == want
    assert [np.signbit(v) for v in got["keypoints"][0]] == [np.signbit(v) for v in want]


@pytest.mark.parametrize("text", ["[007]", "[1, 2", "[1 2]", "[-]", "[01.5]", "[1,]"])
def test_keypoint_spans_decline_what_json_refuses(text):
    from fastiou.coco._ext import kernels
    from fastiou.coco._json import pow5_table

    buf = np.frombuffer(text.encode(), np.uint8)
    spans, none = np.array([[0, len(buf)]], np.int64), np.array([[-1, -1]], np.int64)
    assert kernels().keypoint_spans(buf, spans, none, pow5_table(), 3, 1) is None
