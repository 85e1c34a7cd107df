"""What the evaluation subcommands share: progress messages, the per-class table and the JSON
report."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def write_json_report(path: str, report: dict[str, Any], prog: str) -> int:
    """Write ``report`` to ``path`` as indented JSON: 0, or 1 with an error on stderr."""
    try:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    except OSError as e:
        print(f"{prog}: error: cannot write {path}: {e}", file=sys.stderr)
        return 1
    return 0


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """A function that prints a progress message on stderr, or nothing if ``quiet``."""

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return progress


def finish_evaluation(args, evaluator, numbers: dict[str, Any], per_class, prog: str) -> int:
    """The end of ``fastiou coco`` and ``fastiou lvis``: the per-class table on ``--per-class``,
    the JSON report (gt, dt, ``numbers``, per class) on ``--json``; the exit status."""
    if args.per_class:
        print()
        print(evaluator.per_class_table())
    if not args.json:
        return 0
    report = {"gt": args.gt, "dt": args.dt, **numbers, "per_class": per_class}
    return write_json_report(args.json, report, prog)
