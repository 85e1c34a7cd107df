"""``fastiou seg``: evaluate a folder of predicted label maps against a folder of ground truth.

Pairs files by name (see ``fastiou.semantic._files``), counts every pair with fastiou's kernels (in
``--jobs`` threads, or on a Dask cluster with ``--dask-scheduler``), prints a per-class table and
the summary, and writes JSON on request (atomically: a complete file or none). A missing,
unpaired, mis-sized, corrupt or out-of-range file stops the run with an error naming it and exit
status 1, before anything is written; ``--skip-bad`` skips such files and reports them instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from ..semantic import _files as _seg_files
from ..semantic._files import BadFile, Pair, Totals
from ._args import positive_int, shared_options, subcommand

EXIT_OK, EXIT_BAD_FILES, EXIT_USAGE = 0, 1, 2


HELP = "semantic segmentation metrics of a folder of predictions against ground truth"
DESCRIPTION = """Compares predicted label maps (PNG or .npy) with ground-truth ones paired by file
name, and prints per-class IoU, accuracy (recall), Dice and precision, then aAcc, mIoU, mAcc, mDice
and fwIoU, with mmseg's conventions unless --convention says otherwise. Exit status: 0 done, 1 bad
or unpaired files, 2 bad arguments."""


def add_seg(sub) -> None:
    """Register ``fastiou seg``."""
    p = subcommand(sub, "seg", run, help=HELP, description=DESCRIPTION)
    p.add_argument("pred_dir", help="folder of predicted label maps (searched recursively)")
    p.add_argument("gt_dir", help="folder of ground-truth label maps (searched recursively)")
    p.add_argument(
        "--num-classes", type=positive_int, required=True, metavar="C", help="classes 0..C-1"
    )
    p.add_argument(
        "--ignore-index",
        type=int,
        action="append",
        metavar="V",
        help="ground-truth value to ignore (repeatable; default 255)",
    )
    p.add_argument("--no-ignore", action="store_true", help="ignore no value (not even 255)")
    p.add_argument(
        "--reduce-zero-label",
        action="store_true",
        help="ADE20K, as mmseg: ground truth 0 and 255 become 255 (ignored by default), other "
        "labels move down by one; --ignore-index values are in the reduced labels",
    )
    p.add_argument("--class-names", metavar="FILE", help="one class name per line")
    p.add_argument("--pred-suffix", default="", help="strip this from prediction names to pair")
    p.add_argument("--gt-suffix", default="", help="strip this from ground-truth names to pair")
    p.add_argument(
        "--convention",
        choices=("mmseg", "detectron2", "torchmetrics"),
        default="mmseg",
        help="how absent classes count (see fastiou.segmentation_metrics); default mmseg",
    )
    p.add_argument(
        "--jobs", type=positive_int, default=1, metavar="N", help="read and count N pairs at once"
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable, unpaired, mis-sized or out-of-range files and report them",
    )
    p.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="count on this Dask cluster (needs dask[distributed]; the workers must see the files)",
    )
    shared_options(p, "json", "backend", "no_progress")


def _fail(message: str, code: int) -> int:
    print(f"fastiou seg: error: {message}", file=sys.stderr)
    return code


def _missing_extra(pairs: list[Pair], args: argparse.Namespace) -> str | None:
    """What to install, if an optional dependency this run needs is missing."""
    if args.dask_scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            return "--dask-scheduler needs dask.distributed: pip install 'fastiou[dask]'"
    paths = [path for pair in pairs for path in (pair.prediction, pair.target)]
    if any(str(path).lower().endswith(".png") for path in paths):
        try:
            import PIL.Image  # noqa: F401
        except ImportError:
            return "reading PNG label maps needs Pillow: pip install 'fastiou[seg]'"
    return None


def run(args: argparse.Namespace) -> int:
    try:
        names = _class_names(args.class_names, args.num_classes)
    except (OSError, ValueError) as e:
        return _fail(str(e), EXIT_USAGE)
    ignores = [] if args.no_ignore else (args.ignore_index or [255])
    options = {
        "num_classes": args.num_classes,
        "ignore_index": ignores,
        "reduce_zero_label": args.reduce_zero_label,
        "backend": args.backend,
    }
    try:
        pairs, problems = _seg_files.pair_files(
            args.pred_dir,
            args.gt_dir,
            prediction_suffix=args.pred_suffix,
            target_suffix=args.gt_suffix,
        )
    except BadFile as e:
        return _fail(str(e), EXIT_USAGE)
    missing = _missing_extra(pairs, args)
    if missing:
        return _fail(missing, EXIT_USAGE)
    if problems and not args.skip_bad:
        _report(problems, "cannot pair")
        return _fail(
            f"{len(problems)} file(s) cannot be paired (--skip-bad skips them)", EXIT_BAD_FILES
        )
    if not pairs:
        return _fail(f"no .png or .npy pairs found in {args.pred_dir} and {args.gt_dir}", 1)
    try:
        if args.dask_scheduler:
            totals = _count_on_dask(pairs, options, args)
        else:
            totals = _count_here(pairs, options, args)
    except BadFile as e:
        return _fail(f"{e} (--skip-bad skips such files)", EXIT_BAD_FILES)
    skipped = problems + (totals.skipped or [])
    if skipped:
        _report(skipped, "skipped")
    if totals.images == 0:
        return _fail("no pair could be evaluated", EXIT_BAD_FILES)
    from ..semantic import segmentation_metrics

    metrics = segmentation_metrics(totals.matrix, convention=args.convention)
    print(_table(metrics, names))
    print()
    print(_summary(metrics, totals.images, len(skipped)))
    if args.json:
        document = _document(metrics, totals, names, skipped, options, args)
        try:
            _write_atomically(args.json, json.dumps(document, indent=1) + "\n")
        except OSError as e:
            return _fail(f"cannot write {args.json}: {e}", EXIT_BAD_FILES)
    return EXIT_OK


def _class_names(path: str | None, num_classes: int) -> list[str]:
    if path is None:
        return [str(c) for c in range(num_classes)]
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != num_classes:
        raise ValueError(f"{path} has {len(names)} class names, --num-classes is {num_classes}")
    return names


def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr if tqdm is installed, else a plain counter (only on a terminal)."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
    return _Counter(total, enabled and sys.stderr.isatty())


class _Counter:
    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.shown = total, 0, enabled, 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and (time.monotonic() - self.shown > 0.5 or self.done == self.total):
            self.shown = time.monotonic()
            print(f"\r{self.done}/{self.total} images", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def _count_here(pairs: list[Pair], options: dict, args: argparse.Namespace) -> Totals:
    from .._core import config as _config

    c = options["num_classes"]
    totals = Totals(np.zeros((c, c), np.int64), 0, [])
    bar = _progress(len(pairs), not args.no_progress)
    previous_threads = _config._num_threads
    if args.jobs > 1:  # the jobs share the cores instead of each starting a full team
        _config.set_num_threads(max(1, _config.usable_cores() // args.jobs))
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            pending = {pool.submit(_seg_files.count_pair, pair, options) for pair in pairs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    try:
                        totals.matrix += future.result()
                        totals.images += 1
                    except BadFile as bad:
                        if not args.skip_bad:
                            for other in pending:
                                other.cancel()
                            raise
                        totals.skipped.append(bad)
                    bar.update(1)
    finally:
        bar.close()
        _config.set_num_threads(previous_threads)
    return totals


def _count_on_dask(pairs: list[Pair], options: dict, args: argparse.Namespace) -> Totals:
    try:
        from distributed import Client
    except ImportError:
        raise BadFile(
            args.dask_scheduler, "--dask-scheduler needs dask[distributed] installed"
        ) from None
    from .. import dask as fastiou_dask

    options = dict(options)
    c = options.pop("num_classes")
    with Client(args.dask_scheduler) as client:
        if not args.no_progress:
            workers = len(client.scheduler_info().get("workers", {}))
            print(f"counting {len(pairs)} pairs on {workers} Dask worker(s)", file=sys.stderr)
        return fastiou_dask.confusion_matrix_files(pairs, c, skip_bad=args.skip_bad, **options)


def _report(problems: list[BadFile], what: str) -> None:
    print(f"fastiou seg: {what} {len(problems)} file(s):", file=sys.stderr)
    for bad in problems:
        print(f"  {bad}", file=sys.stderr)


def _percent(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:.2f}"


def _table(metrics: dict, names: list[str]) -> str:
    width = max(5, *(len(n) for n in names))
    lines = [
        f"| {'class':{width}s} |    IoU |    Acc |   Dice | Precision | GT pixels |",
        f"|{'-' * (width + 2)}|-------:|-------:|-------:|----------:|----------:|",
    ]
    for c, name in enumerate(names):
        cells = [
            _percent(metrics[k][c]).rjust(6) for k in ("iou", "recall", "dice")
        ]  # fmt: skip
        precision = _percent(metrics["precision"][c]).rjust(9)
        lines.append(
            f"| {name:{width}s} | {' | '.join(cells)} | {precision} | "
            f"{int(metrics['support'][c]):9d} |"
        )
    return "\n".join(lines)


def _summary(metrics: dict, images: int, skipped: int) -> str:
    parts = [
        f"aAcc {_percent(metrics['aacc'])}",
        f"mIoU {_percent(metrics['miou'])}",
        f"mAcc {_percent(metrics['macc'])}",
        f"mDice {_percent(metrics['mdice'])}",
        f"fwIoU {_percent(metrics['fwiou'])}",
    ]
    tail = f" ({skipped} file(s) skipped)" if skipped else ""
    return f"{images} image(s){tail}: " + "  ".join(parts)


def _json_value(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_json_value(v) for v in x.tolist()]
    if isinstance(x, list):
        return [_json_value(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None  # JSON has no NaN
    return x


def _document(metrics, totals, names, skipped, options, args) -> dict:
    per_class_keys = ("iou", "recall", "dice", "precision", "fscore", "support")
    return {
        "pred_dir": str(args.pred_dir),
        "gt_dir": str(args.gt_dir),
        "num_classes": options["num_classes"],
        "ignore_index": list(options["ignore_index"]),
        "reduce_zero_label": options["reduce_zero_label"],
        "convention": args.convention,
        "images": totals.images,
        "summary": {
            k: _json_value(metrics[k])
            for k in ("aacc", "miou", "macc", "mdice", "mprecision", "mfscore", "fwiou")
        },
        "per_class": {
            name: {k: _json_value(metrics[k][c].item()) for k in per_class_keys}
            for c, name in enumerate(names)
        },
        "confusion_matrix": totals.matrix.tolist(),
        "skipped": [{"file": bad.path, "reason": bad.reason} for bad in skipped],
    }


def _write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = Path(path).resolve().parent
    fd, temporary = tempfile.mkstemp(prefix=".fastiou-", suffix=".json.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
