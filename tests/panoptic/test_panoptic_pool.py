"""Whole images on fastiou's pool (``_cython.evaluate_pngs``: PNG chunks, libdeflate, count,
match, without the GIL): against the reference kernels image by image, and ``pq_compute``
through it against panopticapi on 1 to 3 threads, in several batches, and in a fork child."""

import io
import multiprocessing
import struct
import sys
import zlib

import numpy as np
import pytest
from panoptic_cases import png_with_filters
from test_panoptic_matching import INDEX, random_image
from test_panoptic_parity import panopticapi_pq

import fastiou.panoptic as fp
from fastiou.bench.panoptic_sets import make_panoptic_set
from fastiou.panoptic import _api, _png, _reference

_cython = pytest.importorskip("fastiou.panoptic._cython")


def _inflater():
    inflater = _png.libdeflate()
    if inflater is None:
        pytest.skip("no libdeflate (imagecodecs or the system's) to inflate on the pool")
    return inflater


def _rgb(ids: np.ndarray, depth: int, rng) -> np.ndarray:
    ids = ids.astype(np.uint32)
    channels = [ids & 255, (ids >> 8) & 255, ids >> 16]
    if depth == 4:  # alpha is no part of the id
        channels.append(rng.integers(0, 256, ids.shape))
    return np.stack(channels, -1).astype(np.uint8)


def split_idat(png: bytes, parts: int) -> bytes:
    """The same PNG with its image data in ``parts`` IDAT chunks."""
    start = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[start : start + 4])[0]
    data = png[start + 8 : start + 8 + length]
    cuts = np.linspace(0, len(data), parts + 1).astype(int)
    chunks = b""
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        body = data[a:b]
        crc = zlib.crc32(b"IDAT" + body) & 0xFFFFFFFF
        chunks += struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", crc)
    return png[:start] + chunks + png[start + 12 + length :]


def test_images_equal_the_reference_kernels():
    inflater = _inflater()
    rng = np.random.default_rng(11)
    gt_pngs, pred_pngs, gt_infos, pred_infos, expected = [], [], [], [], []
    for k in range(60):
        gt, pred, gt_info, pred_info = random_image(rng, 12, 6 + 2 * (k % 20))
        depth = (3, 4)[k % 2]
        filters = rng.integers(0, 5, gt.shape[0]).tolist()  # every filter, mixed
        gt_png = png_with_filters(_rgb(gt, depth, rng), filters)
        pred_png = png_with_filters(_rgb(pred, 7 - depth, rng), filters[::-1])
        gt_pngs.append(split_idat(gt_png, 3) if k % 3 == 0 else gt_png)
        pred_pngs.append(pred_png)
        gt_infos.append(gt_info)
        pred_infos.append(pred_info)
        keys, counts = _reference.pair_counts(gt.reshape(-1), pred.reshape(-1))
        expected.append(tuple(fp.match_image(keys, counts, gt_info, pred_info, INDEX)))
    for threads in (1, 2, 3):
        got = _cython.evaluate_pngs(gt_pngs, pred_pngs, gt_infos, pred_infos, INDEX, inflater,
                                    threads)  # fmt: skip
        assert got == expected  # every IoU bit for bit, in order


def test_what_the_pool_leaves_over(tmp_path):
    """None for what the Python path must decode otherwise or name an error; the rest of the
    batch is evaluated all the same."""
    from PIL import Image

    inflater = _inflater()
    rng = np.random.default_rng(5)
    gt, pred, gt_info, pred_info = random_image(rng)
    gt_png = png_with_filters(_rgb(gt, 3, rng), [1])
    pred_png = png_with_filters(_rgb(pred, 3, rng), [2])
    grey = io.BytesIO()
    Image.fromarray(gt.astype(np.uint8)).save(grey, format="PNG")
    bad_filter = bytearray(zlib.decompress(gt_png[gt_png.index(b"IDAT") + 4 : -16]))
    bad_filter[0] = 9
    narrow = png_with_filters(_rgb(gt[:, :-2], 3, rng), [0])
    (tmp_path / "gt.png").write_bytes(gt_png)

    def header(width: int, height: int, png: bytes = gt_png) -> bytes:
        at = png.index(b"IHDR") + 4  # the IHDR's size changed (no CRC check)
        return png[:at] + struct.pack(">II", width, height) + png[at + 8 :]

    cases = [
        (gt_png, pred_png, gt_info, pred_info),  # fine
        (str(tmp_path / "gt.png"), pred_png, gt_info, pred_info),  # fine: a path, read there
        (str(tmp_path / "missing.png"), pred_png, gt_info, pred_info),  # cannot be read
        (str(tmp_path), pred_png, gt_info, pred_info),  # a folder
        (grey.getvalue(), pred_png, gt_info, pred_info),  # a full decoder's
        (gt_png[:-30], pred_png, gt_info, pred_info),  # truncated
        (gt_png.replace(zlib.compress(zlib.decompress(gt_png[gt_png.index(b"IDAT") + 4 : -16])),
                        zlib.compress(bytes(bad_filter))), pred_png, gt_info, pred_info),
        (narrow, pred_png, gt_info, pred_info),  # sizes differ
        (None, pred_png, gt_info, pred_info),  # not read
        (gt_png, pred_png, gt_info, pred_info[1:]),  # a segment in the PNG, not listed
        (gt_png, pred_png, "nope", pred_info),  # not a list
        (b"GIF89a", pred_png, gt_info, pred_info),
        (header(gt.shape[1] + 1, gt.shape[0]), header(gt.shape[1] + 1, gt.shape[0], pred_png),
         gt_info, pred_info),  # both inflate short
        (header(2**31 - 1, 2**31 - 1), pred_png, gt_info, pred_info),  # beyond any buffer
        (header(0, gt.shape[0]), pred_png, gt_info, pred_info),
    ]  # fmt: skip
    assert cases[6][0] != gt_png and _png.scanlines(cases[6][0]).raw[0, 0] == 9
    got = _cython.evaluate_pngs(*(list(c) for c in zip(*cases, strict=True)), INDEX, inflater, 2)
    keys, counts = _reference.pair_counts(gt.reshape(-1), pred.reshape(-1))
    assert got[0] == got[1] == tuple(fp.match_image(keys, counts, gt_info, pred_info, INDEX))
    assert got[2:] == [None] * (len(cases) - 2)
    with pytest.raises(ValueError, match="one PNG pair"):
        _cython.evaluate_pngs([gt_png], [], [], [], INDEX, inflater, 1)
    with pytest.raises(ValueError, match="threads must be"):
        _cython.evaluate_pngs([], [], [], [], INDEX, inflater, 0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated set with some PNGs rewritten: RGBA, several IDAT chunks."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pool")
    gt_json, pred_json = make_panoptic_set(root, 30, (40, 56), seed=9)
    _, pairs = fp.load_pairs(gt_json, pred_json)
    rng = np.random.default_rng(0)
    for pair in pairs[::4]:
        rgb = np.asarray(Image.open(pair.gt_png))
        alpha = rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)
        Image.fromarray(np.dstack([rgb, alpha])).save(pair.gt_png)
    for pair in pairs[1::4]:
        with open(pair.pred_png, "rb") as f:
            png = f.read()
        with open(pair.pred_png, "wb") as f:
            f.write(split_idat(png, 4))
    return gt_json, pred_json


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_pq_compute_on_the_pool_equals_panopticapi(generated, monkeypatch, jobs):
    _inflater()
    left_over = []
    evaluate_pair = _api.evaluate_pair
    monkeypatch.setattr(_api, "evaluate_pair", lambda *a: left_over.append(a) or evaluate_pair(*a))
    monkeypatch.setattr(_api, "_IMAGES_PER_THREAD", 4)  # several batches, one short
    assert fp.pq_compute(*generated, jobs=jobs) == panopticapi_pq(*generated)
    assert left_over == []  # every image went through the pool


def test_without_libdeflate_the_thread_path_gives_the_same(generated, monkeypatch):
    expected = fp.pq_compute(*generated)
    monkeypatch.setattr(_png, "libdeflate", lambda: None)
    assert fp.pq_compute(*generated, jobs=2) == expected


def test_grey_pngs_go_to_pillow(tmp_path):
    """A grey PNG (the value is the id) is left to the Python path: the same numbers as the
    Pillow decoder gives for the whole set."""
    import json

    from PIL import Image

    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    rng = np.random.default_rng(2)
    gt_annotations, pred_annotations = [], []
    for image_id in range(6):
        gt, pred, gt_info, pred_info = random_image(rng, 16, 18)
        name = f"{image_id}.png"
        present = np.unique(np.r_[0, gt.ravel()])  # ids renumbered 1, 2, ...: grey values
        gt_small = np.searchsorted(present, gt)
        gt_info = [{**s, "id": int(np.searchsorted(present, s["id"]))} for s in gt_info
                   if s["id"] in present]  # fmt: skip
        Image.fromarray(gt_small.astype(np.uint8)).save(tmp_path / "gt" / name)  # grey
        Image.fromarray(_rgb(pred, 3, rng)).save(tmp_path / "pred" / name)
        gt_annotations.append({"image_id": image_id, "file_name": name, "segments_info": gt_info})
        pred_annotations.append({"image_id": image_id, "file_name": name,
                                 "segments_info": pred_info})  # fmt: skip
    categories = [{"id": c, "isthing": int(c < 50)} for c in INDEX]
    (tmp_path / "gt.json").write_text(json.dumps({"annotations": gt_annotations,
                                                  "categories": categories}))  # fmt: skip
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": pred_annotations}))
    paths = str(tmp_path / "gt.json"), str(tmp_path / "pred.json")
    assert fp.pq_compute(*paths) == fp.pq_compute(*paths, decoder="pillow", jobs=1)


def _pq_in_child(paths, queue):
    queue.put(fp.pq_compute(*paths, jobs=2))


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_pool_in_a_fork_child(generated):
    _inflater()
    parent = fp.pq_compute(*generated, jobs=2)  # the pool's threads exist before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_pq_in_child, args=(generated, queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert got == parent == panopticapi_pq(*generated)
