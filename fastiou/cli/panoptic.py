"""``fastiou panoptic``: panoptic quality of COCO panoptic predictions, as panopticapi.

Reads the two JSON files and PNG folders, evaluates ``--jobs`` images at once, prints
panopticapi's summary table (and a per-class one with ``--per-class``), and writes the result
dict as JSON on request (atomically: a complete file or none). Exit status: 0 done, 1 bad or
missing data (the message names the image and segment), 2 bad arguments (before any file is
read).
"""

from __future__ import annotations

import argparse
import json
import sys

from ._args import shared_options, subcommand
from .seg import _progress, _write_atomically

EXIT_OK, EXIT_BAD_DATA, EXIT_USAGE = 0, 1, 2


HELP = "panoptic quality (PQ, SQ, RQ) of COCO panoptic predictions, as panopticapi"
DESCRIPTION = """Evaluates COCO panoptic predictions (JSON + PNG folder) against ground truth with
panopticapi's rules and numbers, and prints PQ, SQ and RQ for All, Things and Stuff. Exit status: 0
done, 1 bad or missing data, 2 bad arguments."""


def add_panoptic(sub) -> None:
    """Register ``fastiou panoptic``."""
    p = subcommand(sub, "panoptic", run, help=HELP, description=DESCRIPTION)
    p.add_argument("gt_json", help="ground-truth JSON (COCO panoptic format)")
    p.add_argument("pred_json", help="predictions JSON (COCO panoptic format)")
    p.add_argument(
        "--gt-folder", metavar="D", help="ground-truth PNGs (default: GT_JSON without .json)"
    )
    p.add_argument(
        "--pred-folder", metavar="D", help="predicted PNGs (default: PRED_JSON without .json)"
    )
    p.add_argument("--jobs", type=int, metavar="N", help="images at once (default: the cores)")
    p.add_argument(
        "--decoder",
        default="auto",
        choices=("auto", "imagecodecs", "pyspng", "opencv", "pillow"),
        help="PNG decoder (default auto: fastiou's fused path, Pillow for unusual PNGs)",
    )
    shared_options(
        p, "json", "backend", "no_progress", per_class="also print PQ, SQ, RQ per category"
    )


def _fail(message: str, code: int) -> int:
    print(f"fastiou panoptic: error: {message}", file=sys.stderr)
    return code


def summary_table(results: dict) -> str:
    """panopticapi's table: PQ, SQ, RQ in percent and N for All, Things and Stuff."""
    lines = ["{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N")]
    lines.append("-" * (10 + 7 * 4))
    for name in ("All", "Things", "Stuff"):
        r = results[name]
        lines.append(
            f"{name:10s}| {100 * r['pq']:5.1f}  {100 * r['sq']:5.1f}  {100 * r['rq']:5.1f} "
            f"{r['n']:5d}"
        )
    return "\n".join(lines)


def per_class_table(results: dict, names: dict) -> str:
    width = max([8, *(len(str(n)) for n in names.values())])
    lines = [f"| {'category':{width}s} |    id |    PQ |    SQ |    RQ |", f"|{'-' * (width + 2)}|"
             "------:|------:|------:|------:|"]  # fmt: skip
    for category, r in results["per_class"].items():
        name = str(names.get(category, category))
        lines.append(
            f"| {name:{width}s} | {category:5d} | {100 * r['pq']:5.1f} | {100 * r['sq']:5.1f} | "
            f"{100 * r['rq']:5.1f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be at least 1, got {args.jobs}", EXIT_USAGE)

    from ..panoptic import PanopticDataError, load_pairs
    from ..panoptic._api import accumulate

    try:
        categories, pairs = load_pairs(args.gt_json, args.pred_json, args.gt_folder,
                                       args.pred_folder)  # fmt: skip
        bar = _progress(len(pairs), not args.no_progress)
        try:
            total = accumulate(categories, pairs, jobs=args.jobs, decoder=args.decoder,
                               backend=args.backend, progress=bar.update)  # fmt: skip
        finally:
            bar.close()
        results = total.compute()
    except (PanopticDataError, OSError, ImportError) as e:
        return _fail(str(e), EXIT_BAD_DATA)
    print(summary_table(results))
    if args.per_class:
        print()
        print(per_class_table(results, {c["id"]: c.get("name", c["id"]) for c in categories}))
    if args.json:
        document = {
            "gt_json": str(args.gt_json),
            "pred_json": str(args.pred_json),
            "images": total.images,
            **{k: results[k] for k in ("All", "Things", "Stuff")},
            "per_class": {str(k): v for k, v in results["per_class"].items()},
        }
        try:
            _write_atomically(args.json, json.dumps(document, indent=1) + "\n")
        except OSError as e:
            return _fail(f"cannot write {args.json}: {e}", EXIT_BAD_DATA)
    return EXIT_OK
