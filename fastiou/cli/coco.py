"""``fastiou coco GT.json DT.json [--iou-type bbox|segm|keypoints]``: pycocotools' evaluation
summary from the shell."""

from __future__ import annotations

import argparse
import sys
import time

from ._args import positive_int, shared_options, subcommand
from ._report import finish_evaluation, progress_printer


def _coco(args: argparse.Namespace) -> int:
    from ..coco import COCO, AnnotationError, COCOeval

    progress = progress_printer(args.quiet)
    start = time.perf_counter()
    try:
        progress(f"loading ground truth {args.gt} ...")
        gt = COCO(args.gt, verbose=False)
        progress(f"loading detections {args.dt} ...")
        dt = gt.loadRes(args.dt)
        E = COCOeval(gt, dt, args.iou_type, verbose=False)
        if args.max_dets:
            E.params.maxDets = args.max_dets
        progress(f"evaluating {len(E.params.imgIds)} images, {len(E.params.catIds)} categories ...")
        E.evaluate()
        E.accumulate()
        progress(f"done in {time.perf_counter() - start:.2f} s")
        E.summarize()
        per_class = E.per_class() if (args.per_class or args.json) else None
    except (AnnotationError, OSError, ValueError, KeyError, TypeError) as e:
        message = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
        print(f"fastiou coco: error: {message}", file=sys.stderr)
        return 1
    numbers = {"stats": dict(E.metrics())} if args.json else {}
    return finish_evaluation(args, E, numbers, per_class, "fastiou coco")


HELP = "COCO evaluation (pycocotools' numbers): print the summary"
DESCRIPTION = """Evaluates detections (a COCO results file) against COCO ground truth exactly as
pycocotools' COCOeval(gt, dt, IOU_TYPE) does and prints its summary."""


def add_coco(sub) -> None:
    """Register ``fastiou coco``."""
    p = subcommand(sub, "coco", _coco, help=HELP, description=DESCRIPTION)
    p.add_argument("gt", help="ground-truth annotation file (COCO JSON)")
    p.add_argument(
        "dt",
        help="detections: a JSON list of {image_id, category_id, score} with bbox, "
        "segmentation (RLE) or keypoints",
    )
    p.add_argument(
        "--iou-type", choices=("bbox", "segm", "keypoints"), default="bbox",
        help="what to compare: boxes (default), instance masks or keypoints (OKS)",
    )  # fmt: skip
    p.add_argument(
        "--max-dets", type=positive_int, nargs=3, metavar=("M1", "M2", "M3"),
        help="params.maxDets (default 1 10 100; keypoints: 20)",
    )  # fmt: skip
    shared_options(p, "per_class", "quiet", json="write the numbers (and per class) as JSON")
