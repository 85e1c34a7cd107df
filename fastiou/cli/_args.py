"""argparse types shared by the subcommands: bad values are usage errors (exit 2)."""

from __future__ import annotations

import argparse

from .._core.dispatch import BACKENDS


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def subcommand(sub, name: str, run, *, help: str, description: str):
    """Register ``fastiou NAME``: its parser (``help`` for ``fastiou --help``, ``description``
    for its own) and the function that runs it; returns the parser for its arguments."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=run)
    return p


_SHARED_HELP = {
    "per_class": "also print a per-category table",
    "json": "also write the results as JSON to OUT",
    "quiet": "no progress messages on stderr",
    "no_progress": "no progress bar",
    "backend": "kernel backend (default auto)",
}


def shared_options(p, *names: str, **helps: str) -> None:
    """Add options several subcommands share: ``per_class``, ``quiet``, ``no_progress`` (flags),
    ``json`` (``--json OUT``) and ``backend`` (``--backend``, default auto); named alone they
    take the common help text, as keywords the command's own."""
    for name, text in {**dict.fromkeys(names), **helps}.items():
        text = text or _SHARED_HELP[name]
        flag = "--" + name.replace("_", "-")
        if name == "json":
            p.add_argument(flag, metavar="OUT", help=text)
        elif name == "backend":
            p.add_argument(flag, default="auto", choices=("auto", *BACKENDS), help=text)
        else:
            p.add_argument(flag, action="store_true", help=text)
