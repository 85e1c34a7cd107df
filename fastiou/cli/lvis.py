"""``fastiou lvis GT.json DT.json``: lvis-api's box evaluation results from the shell.

Exit status: 0 done, 1 bad data (a file that is not LVIS, an image without
``neg_category_ids``, detections on images or of categories the ground truth does not have),
2 bad arguments (argparse's own, or an input file that does not exist).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from ._args import shared_options, subcommand
from ._report import finish_evaluation, progress_printer


def _lvis(args: argparse.Namespace) -> int:
    from ..coco import AnnotationError
    from ..lvis import LVIS, LVISEval, LVISResults
    from ..lvis._lvis import unknown_categories

    progress = progress_printer(args.quiet)

    def fail(message: str, status: int = 1) -> int:
        print(f"fastiou lvis: error: {message}", file=sys.stderr)
        return status

    for path in (args.gt, args.dt):
        if not os.path.isfile(path):
            return fail(f"no such file: {path}", 2)
    start = time.perf_counter()
    try:
        progress(f"loading ground truth {args.gt} ...")
        gt = LVIS(args.gt)
        bad = unknown_categories(gt._table().category_id, gt.cats)
        if len(bad):
            return fail(f"{args.gt}: annotations of category id(s) not in its categories: "
                        f"{bad[:10].tolist()}")  # fmt: skip
        progress(f"loading detections {args.dt} (at most {args.max_dets} per image) ...")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown categories: reported below as errors
            dt = LVISResults(gt, args.dt, max_dets=args.max_dets)
        kept = dt._kept_category_ids()
        bad = unknown_categories(kept, gt.cats)
        if len(bad) and not args.allow_unknown_categories:
            return fail(
                f"{args.dt}: detections of {len(bad)} category id(s) not in the ground truth: "
                f"{bad[:10].tolist()} (lvis-api ignores them: --allow-unknown-categories)"
            )
        E = LVISEval(gt, dt, args.iou_type)
        progress(
            f"evaluating {len(kept)} detections on {len(E.params.img_ids)} images, "
            f"{len(E.params.cat_ids)} categories ..."
        )
        E.run()
        progress(f"done in {time.perf_counter() - start:.2f} s")
        per_class = E.per_class() if (args.per_class or args.json) else None
    except (AnnotationError, OSError, ValueError, KeyError, TypeError) as e:
        return fail(str(e) if not isinstance(e, KeyError) else f"missing key {e}")
    E.print_results()
    numbers = {"results": {key: float(value) for key, value in E.results.items()}}
    return finish_evaluation(args, E, numbers, per_class, "fastiou lvis")


HELP = "LVIS box or mask evaluation (lvis-api's numbers): print the 13 results"
DESCRIPTION = """Evaluates detections (an LVIS results file) against LVIS ground truth exactly as
lvis-api 0.5.3's LVISEval(gt, LVISResults(gt, dt), iou_type) does and prints its results (AP, AP50,
AP75, APs/m/l, APr/c/f, AR@300, ARs/m/l@300)."""


def add_lvis(sub) -> None:
    """Register ``fastiou lvis``."""
    p = subcommand(sub, "lvis", _lvis, help=HELP, description=DESCRIPTION)
    p.add_argument("gt", help="ground-truth annotation file (LVIS JSON)")
    p.add_argument("dt", help="detections: a JSON list of {image_id, category_id, bbox, score}")
    p.add_argument(
        "--iou-type", choices=("bbox", "segm"), default="bbox",
        help="box IoU (default) or mask IoU (results with RLE 'segmentation')",
    )  # fmt: skip
    p.add_argument(
        "--max-dets", type=int, default=300, metavar="N",
        help="detections kept per image, by score (default 300; negative: all)",
    )  # fmt: skip
    p.add_argument(
        "--allow-unknown-categories", action="store_true",
        help="ignore detections of categories not in the ground truth, as lvis-api does",
    )  # fmt: skip
    shared_options(p, "per_class", "quiet", json="write the results (and per class) as JSON")
