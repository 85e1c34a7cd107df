"""Hand-made COCO panoptic images for the panoptic tests: each case is one image whose segments
exercise one rule of panopticapi (crowd, VOID, split, merge, wrong category, ...)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from fastiou.bench.panoptic_sets import categories, write_png

THING, THING2, STUFF, STUFF2 = 1, 2, 100, 101
H, W = 20, 24


def _case(gt_rects, pred_rects, gt_extra=None):
    """Index maps from (segment info, [y0, y1, x0, x1]) rectangles, painted in order."""
    gt = np.zeros((H, W), np.int32)
    pred = np.zeros((H, W), np.int32)
    gt_segments, pred_segments = [], []
    for k, (info, (y0, y1, x0, x1)) in enumerate(gt_rects, start=1):
        gt[y0:y1, x0:x1] = k
        gt_segments.append(dict(info))
    for k, (info, (y0, y1, x0, x1)) in enumerate(pred_rects, start=1):
        pred[y0:y1, x0:x1] = k
        pred_segments.append(dict(info))
    return gt, gt_segments, pred, pred_segments


def thing(c=THING, crowd=0):
    return {"category_id": c, "iscrowd": crowd}


def pred_of(c):
    return {"category_id": c}


# fmt: off
CASES = {
    # stuff over a VOID band the prediction covers (out of the union), a prediction all on VOID
    # (ignored), one half on it (a false positive), and a ground-truth id the JSON leaves out
    # (panopticapi: neither a segment nor VOID)
    "void": _case(
        [(thing(STUFF), (0, 14, 0, 24)), (thing(), (4, 12, 4, 12)),
         ({**thing(THING2), "unlisted": True}, (0, 2, 20, 24))],
        [(pred_of(STUFF), (0, 20, 0, 24)), (pred_of(THING), (4, 12, 4, 13)),
         (pred_of(THING), (15, 19, 0, 5)), (pred_of(THING2), (12, 16, 18, 22)),
         (pred_of(THING2), (0, 2, 20, 24))],
    ),
    # crowd: a prediction mostly on the crowd region is ignored, one half on it is a FP
    "crowd": _case(
        [(thing(STUFF), (0, 20, 0, 24)), (thing(THING, 1), (2, 10, 2, 10)),
         (thing(), (12, 18, 12, 20))],
        [(pred_of(STUFF), (0, 20, 0, 24)), (pred_of(THING), (3, 9, 3, 9)),
         (pred_of(THING), (8, 12, 0, 4)), (pred_of(THING), (12, 18, 12, 20))],
    ),
    # two crowd segments of one category: panopticapi keeps the last one listed
    "two_crowds": _case(
        [(thing(THING, 1), (0, 8, 0, 8)), (thing(THING, 1), (10, 18, 10, 18))],
        [(pred_of(THING), (1, 7, 1, 7)), (pred_of(THING), (11, 17, 11, 17))],
    ),
    # split: one ground truth, two predictions (one above 0.5, one not); merge: two into one
    "split_merge": _case(
        [(thing(), (0, 10, 0, 10)), (thing(THING2), (12, 16, 0, 6)),
         (thing(THING2), (16, 20, 0, 6)), (thing(STUFF2), (0, 20, 12, 24))],
        [(pred_of(THING), (0, 10, 0, 7)), (pred_of(THING), (0, 10, 7, 10)),
         (pred_of(THING2), (12, 20, 0, 6)), (pred_of(STUFF2), (0, 20, 12, 24))],
    ),
    # a wrong category, and IoU exactly 0.5 (no match: it must exceed 0.5)
    "wrong_and_half": _case(
        [(thing(), (0, 8, 0, 8)), (thing(THING2), (10, 12, 0, 8))],
        [(pred_of(THING2), (0, 8, 0, 8)), (pred_of(THING2), (10, 11, 0, 8))],
    ),
    # an empty prediction
    "empty_prediction": _case([(thing(), (0, 8, 0, 8)), (thing(STUFF), (8, 20, 0, 24))], []),
    # no ground-truth segment at all (all VOID); predictions over it are ignored
    "no_segments": _case([], [(pred_of(THING), (0, 8, 0, 8)), (pred_of(STUFF), (8, 20, 0, 24))]),
    # nothing in either
    "nothing": _case([], []),
}
# fmt: on


def write_cases(root: Path, names=None, seed: int = 0) -> tuple[str, str]:
    """Write the cases as one COCO panoptic set (gt.json + gt/, pred.json + pred/)."""
    rng = np.random.default_rng(seed)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(exist_ok=True)
    gt_annotations, pred_annotations = [], []
    for image_id, name in enumerate(names or CASES, start=1):
        gt, gt_segments, pred, pred_segments = CASES[name]
        file_name = f"{name}.png"
        gt_infos = write_png(root / "gt", file_name, gt, gt_segments, rng)
        pred_infos = write_png(root / "pred", file_name, pred, pred_segments, rng)
        gt_infos = [info for info in gt_infos if not info.pop("unlisted", False)]
        for info in pred_infos:
            info.pop("area")
            info.pop("iscrowd", None)
        gt_annotations.append({"image_id": image_id, "file_name": file_name,
                               "segments_info": gt_infos})  # fmt: skip
        pred_annotations.append({"image_id": image_id, "file_name": file_name,
                                 "segments_info": pred_infos})  # fmt: skip
    gt_json = {"images": [], "annotations": gt_annotations, "categories": categories()}
    (root / "gt.json").write_text(json.dumps(gt_json))
    (root / "pred.json").write_text(json.dumps({"annotations": pred_annotations}))
    return str(root / "gt.json"), str(root / "pred.json")


# ------------------------------------------------------------------ a PNG writer for filters


def _filter_row(kind: int, row: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    x = row.astype(np.int64)
    up = prior.astype(np.int64)
    left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
    if kind == 0:
        out = x
    elif kind == 1:
        out = x - left
    elif kind == 2:
        out = x - up
    elif kind == 3:
        out = x - (left + up) // 2
    else:
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out = x - predictor
    return (out % 256).astype(np.uint8)


def png_with_filters(pixels: np.ndarray, filters) -> bytes:
    """An 8-bit RGB or RGBA PNG of ``pixels`` [H, W, 3|4], line i with filter ``filters[i]``."""
    h, w, c = pixels.shape
    lines, prior = [], np.zeros(w * c, np.uint8)
    for i in range(h):
        row = pixels[i].reshape(-1)
        kind = filters[i % len(filters)]
        lines.append(bytes([kind]) + _filter_row(kind, row, prior, c).tobytes())
        prior = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 6, 0, 0, 0)
    data = zlib.compress(b"".join(lines))
    body = chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body
