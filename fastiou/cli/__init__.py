"""The ``fastiou`` command line: ``fastiou bench``, ``backends``, ``seg`` and ``coco``.

Each subcommand is an ``add_<name>(subparsers)`` function that registers its parser (with a
one-line ``help``, which ``fastiou --help`` lists) and sets ``func``; :data:`COMMANDS` lists them.
Every argument is checked before any file is read or any work starts: a bad one is exit status 2
with a one-line message (argparse's ``parser.error``), as for a missing optional dependency.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._args import positive_float
from .coco import add_coco
from .lvis import add_lvis
from .panoptic import add_panoptic
from .seg import add_seg


def _bench(args: argparse.Namespace) -> int:
    from .. import bench as _bench
    from .._core.dispatch import backends

    known = {w.task for w in _bench.WORKLOADS}
    sweeps = {t for t in known if t.endswith("_sweep")}  # threshold sweeps: only with --sweep
    tasks = args.task or sorted(sweeps if args.sweep else known - sweeps)
    status = backends()
    print("backends: " + "; ".join(f"{k}: {v.detail}" for k, v in status.items()), flush=True)
    progress = None if args.no_progress else (lambda s: print(f"  timing {s}", file=sys.stderr))
    rows = _bench.run(
        tasks, quick=args.quick, slow=args.slow, min_time=args.min_time, progress=progress
    )
    print(_bench.markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=1)
    return 0


def add_bench(sub) -> None:
    from ..bench import WORKLOADS  # the registry only: no workload runs, numba is not imported

    tasks = sorted({w.task for w in WORKLOADS})
    p = sub.add_parser(
        "bench",
        help="time fastiou and its peers on built-in workloads; print a markdown table",
        description="Times every available implementation (fastiou per backend and the installed "
        "peers) on built-in synthetic workloads, in this one run, and prints medians and the "
        "ratio to the best peer (× faster). Peers that are not installed are listed as such.",
        epilog="tasks: " + ", ".join(tasks) + " (the *_sweep tasks run only with --sweep)",
    )
    p.add_argument(
        "--task",
        action="append",
        choices=tasks,
        metavar="TASK",
        help="only this task (repeatable): " + ", ".join(tasks),
    )
    p.add_argument("--quick", action="store_true", help="small workloads only (a smoke run)")
    p.add_argument(
        "--sweep", action="store_true", help="Cython vs numba around the auto thresholds"
    )
    p.add_argument("--slow", action="store_true", help="also time peers that take seconds")
    p.add_argument("--min-time", type=positive_float, default=0.3, help="seconds of runs per cell")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--no-progress", action="store_true", help="do not report progress on stderr")
    p.set_defaults(func=_bench)


def _backends(args: argparse.Namespace) -> int:
    from .._core.config import num_threads
    from .._core.dispatch import backends

    for name, status in backends().items():
        print(f"{name:7s} {'yes' if status.available else 'no ':3s} {status.detail}")
    print(f"threads: {num_threads()}")
    return 0


def add_backends(sub) -> None:
    p = sub.add_parser("backends", help="list the backends, which are available and why not")
    p.set_defaults(func=_backends)


COMMANDS = [add_bench, add_backends, add_seg, add_coco, add_lvis, add_panoptic]


def parser() -> argparse.ArgumentParser:
    """The ``fastiou`` parser with every subcommand of :data:`COMMANDS`."""
    from .. import __version__

    top = argparse.ArgumentParser(
        prog="fastiou",
        description="Fast overlap numbers for computer vision: box IoU, NMS, segmentation "
        "metrics and COCO evaluation, with numpy, Cython, numba and CUDA backends.",
    )
    top.add_argument("--version", action="version", version=f"fastiou {__version__}")
    sub = top.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
