"""The pair-area kernel on every backend against the numpy reference, and the fused PNG path."""

import io

import numpy as np
import pytest
from conftest import require_peer
from panoptic_cases import png_with_filters

import fastiou.panoptic as fp
from fastiou.panoptic import _cython, _png, _reference


@pytest.fixture
def panoptic_backend(backend, monkeypatch):
    """Each backend; CUDA (the simulator) with tiny blocks, chunks and a table that must grow."""
    if backend == "cuda":
        from fastiou.panoptic import _cuda

        monkeypatch.setattr(_cuda, "THREADS", 4)
        monkeypatch.setattr(_cuda, "CHUNK", 3)
        monkeypatch.setattr(_cuda, "FIRST_CAPACITY", 4)
    return backend


def _maps(shape, seed, high=5, dtype=np.int64):
    rng = np.random.default_rng(seed)
    # blocky maps (runs) with random ids, some large
    values = [0, 1, 7, 255, 256, 65535, 1 << 24, (1 << 32) - 2][:high]
    values = [v for v in values if v <= np.iinfo(dtype).max]
    return rng.choice(values, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.uint32, np.uint64])
def test_pair_counts_ids(panoptic_backend, dtype):
    shape = (9, 11) if panoptic_backend == "cuda" else (37, 53)
    high = 4 if dtype == np.uint8 else 8
    gt, pred = _maps(shape, 1, high, dtype), _maps(shape, 2, high, dtype)
    gt[:, : shape[1] // 2] = gt[:1, : shape[1] // 2]  # long runs down the columns too
    keys, counts = fp.pair_counts(gt, pred, backend=panoptic_backend)
    ref_keys, ref_counts = _reference.pair_counts(gt, pred)
    np.testing.assert_array_equal(keys, ref_keys)
    np.testing.assert_array_equal(counts, ref_counts)
    assert counts.sum() == gt.size


@pytest.mark.parametrize("channels", [((0, 1, 2), (0, 1, 2)), ((2, 1, 0), (0, 1, 2))])
@pytest.mark.parametrize("depth", [3, 4])
def test_pair_counts_rgb(panoptic_backend, channels, depth):
    rng = np.random.default_rng(3)
    shape = (7, 6) if panoptic_backend == "cuda" else (31, 45)
    gt = rng.integers(0, 3, shape + (depth,)).astype(np.uint8)
    pred = rng.integers(0, 2, shape + (3,)).astype(np.uint8)
    keys, counts = fp.pair_counts(gt, pred, backend=panoptic_backend, channels=channels)
    ref = _reference.pair_counts(_reference.rgb_to_ids(gt, channels[0]),
                                 _reference.rgb_to_ids(pred, channels[1]))  # fmt: skip
    np.testing.assert_array_equal(keys, ref[0])
    np.testing.assert_array_equal(counts, ref[1])


def test_one_pixel_and_empty(panoptic_backend):
    keys, counts = fp.pair_counts(np.array([[5]]), np.array([[9]]), backend=panoptic_backend)
    assert keys.tolist() == [(5 << 32) | 9] and counts.tolist() == [1]
    keys, counts = fp.pair_counts(np.zeros((0, 4), int), np.zeros((0, 4), int),
                                  backend=panoptic_backend)  # fmt: skip
    assert keys.size == 0 and counts.size == 0


def test_many_pairs_grow_the_table():
    rng = np.random.default_rng(4)
    gt = rng.integers(0, 1 << 20, (300, 300)).astype(np.uint32)  # ~90k distinct pairs
    pred = rng.integers(0, 3, (300, 300)).astype(np.uint32)
    keys, counts = fp.pair_counts(gt, pred, backend="cython")
    ref = _reference.pair_counts(gt, pred)
    np.testing.assert_array_equal(keys, ref[0])
    np.testing.assert_array_equal(counts, ref[1])


@pytest.mark.parametrize("bad", [-1, (1 << 32) - 1, 1 << 40])
def test_ids_out_of_range(panoptic_backend, bad):
    gt = np.zeros((3, 4), np.int64)
    gt[1, 2] = bad
    with pytest.raises(ValueError, match=f"id {bad} is not in"):
        fp.pair_counts(gt, np.zeros_like(gt), backend=panoptic_backend, image_id=7)


def test_bad_maps():
    with pytest.raises(ValueError, match="differ in size"):
        fp.pair_counts(np.zeros((3, 4), int), np.zeros((4, 3), int))
    with pytest.raises(TypeError, match="integers"):
        fp.pair_counts(np.zeros((3, 4)), np.zeros((3, 4)))


def test_torch_tensors():
    torch = require_peer("torch")
    gt, pred = _maps((10, 12), 5), _maps((10, 12), 6)
    keys, counts = fp.pair_counts(torch.from_numpy(gt), torch.from_numpy(pred))
    np.testing.assert_array_equal(keys, _reference.pair_counts(gt, pred)[0])


# ------------------------------------------------------------------ the fused PNG path


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 2, 2, 3, 1]])
def test_scanlines_undo_every_filter(filters, depth):
    from PIL import Image

    rng = np.random.default_rng(sum(filters) + depth)
    gt = rng.integers(0, 4, (13, 17, depth)).astype(np.uint8) * 60
    gt[4:9] = gt[4]  # equal lines: the "Up, nothing added" shortcut
    pred = np.repeat(rng.integers(0, 3, (13, 1, depth)), 17, axis=1).astype(np.uint8)
    pred[:, 5:9] = 250  # lines equal in both images: runs replayed
    gt_png, pred_png = png_with_filters(gt, filters), png_with_filters(pred, filters[::-1])
    # Pillow decodes the same bytes: the PNGs are valid
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(gt_png))), gt)
    g, p = _png.scanlines(gt_png), _png.scanlines(pred_png)
    keys, counts = _cython.pair_counts_scanlines(g.raw, g.bpp, p.raw, p.bpp, g.width)
    ref = _reference.pair_counts_rgb(gt, pred, (0, 1, 2), (0, 1, 2))
    np.testing.assert_array_equal(keys, ref[0])
    np.testing.assert_array_equal(counts, ref[1])


def _blocky(rng, shape, depth, values):
    """A piecewise constant RGB(A) map: rectangles of a few colours, alpha noise on top."""
    h, w = shape
    pixels = np.zeros((h, w, depth), np.uint8)
    for _ in range(int(rng.integers(1, 8))):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        colour = values[int(rng.integers(0, len(values)))]
        dy, dx = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        pixels[y : y + dy, x : x + dx, :3] = colour
    if depth == 4:  # alpha is no part of the id, whatever it holds
        pixels[..., 3] = rng.integers(0, 256, (h, w))
    return pixels


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("width", [1, 2, 21, 22, 43, 64, 85, 150])
def test_scanlines_blocky_maps_every_filter_mix(depth, width):
    # wide enough lines for every step of the residual scan (64, then 8 bytes, then single
    # bytes); colours that differ in one byte only; each line its own random filter
    rng = np.random.default_rng(width * 10 + depth)
    values = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (255, 255, 255), (128, 7, 200)]
    for _ in range(6):
        h = int(rng.integers(1, 12))
        gt = _blocky(rng, (h, width), depth, values)
        pred = _blocky(rng, (h, width), int(rng.choice([3, 4])), values)
        gt_png = png_with_filters(gt, rng.integers(0, 5, h).tolist())
        pred_png = png_with_filters(pred, rng.integers(0, 5, h).tolist())
        g, p = _png.scanlines(gt_png), _png.scanlines(pred_png)
        keys, counts = _cython.pair_counts_scanlines(g.raw, g.bpp, p.raw, p.bpp, g.width)
        ref = _reference.pair_counts_rgb(gt, pred, (0, 1, 2), (0, 1, 2))
        np.testing.assert_array_equal(keys, ref[0])
        np.testing.assert_array_equal(counts, ref[1])


def test_scanlines_bad_filter_type():
    png = bytearray(png_with_filters(np.zeros((2, 3, 3), np.uint8), [0]))
    good = _png.scanlines(bytes(png))
    raw = good.raw.copy()
    raw[1, 0] = 7
    with pytest.raises(ValueError, match="filter type in the prediction"):
        _cython.pair_counts_scanlines(good.raw.copy(), 3, raw, 3, 3)


def test_other_pngs_are_left_to_a_decoder():
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(buffer, format="PNG")  # grey
    assert _png.scanlines(buffer.getvalue()) is None
    with pytest.raises(ValueError, match="not a PNG"):
        _png.scanlines(b"GIF89a")


@pytest.mark.parametrize("name", ["imagecodecs", "pyspng", "opencv", "pillow"])
def test_decoders_agree(name):
    rng = np.random.default_rng(8)
    pixels = rng.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    png = png_with_filters(pixels, [0, 1, 2, 3, 4])
    try:
        decode = _png.decoder(name)
    except ImportError as e:
        pytest.skip(str(e))
    decoded, channels = decode(png)
    np.testing.assert_array_equal(decoded[..., list(channels)], pixels)


def test_unknown_decoder():
    with pytest.raises(ValueError, match="unknown PNG decoder"):
        _png.decoder("gif")
