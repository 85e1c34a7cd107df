"""Label-map files: pairing prediction and ground-truth folders, reading PNG and .npy label maps,
counting one pair. Shared by ``fastiou seg`` and :mod:`fastiou.dask`.

Pairing: every ``.png`` and ``.npy`` file under a folder (recursively) is keyed by its path
relative to the folder, without the extension and without an optional suffix (``--gt-suffix
_gtFine_labelTrainIds`` pairs Cityscapes' ``x_gtFine_labelTrainIds.png`` with ``x.png``). A key
present on one side only, or twice on one side (``a.png`` and ``a.npy``), is a problem naming the
file.

Reading: PNG through Pillow, modes ``L``/``P`` (palette index = label)/``I;16``/``I``/``1``; an
RGB(A) PNG is refused (a colour-coded map needs a palette conversion first). ``.npy`` through
``np.load`` (memory-mapped, no pickles); integer labels, or float scores with a class axis for
predictions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXTENSIONS = (".png", ".npy")
_PNG_MODES = {"L", "P", "I;16", "I;16B", "I;16L", "I", "1"}


class BadFile(ValueError):
    """A file that cannot be evaluated: ``path`` and ``reason``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(str(path), reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Pair:
    key: str
    prediction: str
    target: str


def _index(folder: Path, suffix: str, problems: list[BadFile]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        key = path.relative_to(folder).with_suffix("").as_posix()
        if suffix and key.endswith(suffix):
            key = key[: -len(suffix)]
        if key in found:
            problems.append(BadFile(path, f"same name as {found[key]}: which one to evaluate?"))
            continue
        found[key] = path
    return found


def pair_files(
    prediction_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    *,
    prediction_suffix: str = "",
    target_suffix: str = "",
) -> tuple[list[Pair], list[BadFile]]:
    """The (prediction, ground truth) pairs of two folders, by name; and the files left over."""
    problems: list[BadFile] = []
    folders = {"prediction": Path(prediction_dir), "ground truth": Path(target_dir)}
    for what, folder in folders.items():
        if not folder.is_dir():
            raise BadFile(folder, f"the {what} folder does not exist")
    predictions = _index(folders["prediction"], prediction_suffix, problems)
    targets = _index(folders["ground truth"], target_suffix, problems)
    for key in sorted(targets.keys() - predictions.keys()):
        problems.append(BadFile(targets[key], "ground truth without a prediction"))
    for key in sorted(predictions.keys() - targets.keys()):
        problems.append(BadFile(predictions[key], "prediction without a ground truth"))
    pairs = [
        Pair(key, str(predictions[key]), str(targets[key]))
        for key in sorted(predictions.keys() & targets.keys())
    ]
    return pairs, problems


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """A label map (or a score array) from a ``.png`` or ``.npy`` file; BadFile if unreadable."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise BadFile(path, f"not a readable .npy file ({e})") from None
        if array.dtype.kind not in "biuf":
            raise BadFile(path, f"holds {array.dtype}, not integer labels or float scores")
        return array
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in _PNG_MODES:
                raise BadFile(
                    path,
                    f"is a {image.mode} image; a label map has one channel (PNG mode L, P, "
                    "I;16 or I)",
                )
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, BadFile):
            raise
        raise BadFile(path, f"not a readable PNG image ({e})") from None


def count_pair(pair: Pair, options: dict[str, Any]) -> np.ndarray:
    """The confusion matrix of one pair; BadFile naming the file at fault if it cannot be had.

    ``options`` are :func:`fastiou.confusion_matrix`'s keywords, ``num_classes`` included.
    """
    from ._api import confusion_matrix

    prediction = read_label_map(pair.prediction)
    target = read_label_map(pair.target)
    if target.dtype.kind == "f":
        raise BadFile(pair.target, f"ground truth holds {target.dtype}, not integer labels")
    if prediction.dtype.kind != "f" and prediction.shape != target.shape:
        raise BadFile(
            pair.prediction,
            f"is {_size(prediction.shape)} but its ground truth {pair.target} is "
            f"{_size(target.shape)}",
        )
    try:
        return confusion_matrix(prediction, target, **options)
    except ValueError as e:
        at_fault = pair.target if str(e).startswith("target") else pair.prediction
        raise BadFile(at_fault, str(e)) from None


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@dataclass
class Totals:
    """What a set of pairs added up to: the matrix, images counted, files skipped."""

    matrix: np.ndarray
    images: int = 0
    skipped: list[BadFile] | None = None

    def add(self, other: Totals) -> Totals:
        return Totals(
            self.matrix + other.matrix,
            self.images + other.images,
            (self.skipped or []) + (other.skipped or []),
        )


def count_pairs(pairs: Iterable[Pair], options: dict[str, Any], skip_bad: bool) -> Totals:
    """Count pairs one after the other (a Dask partition, or a test)."""
    c = options["num_classes"]
    totals = Totals(np.zeros((c, c), np.int64), 0, [])
    for pair in pairs:
        try:
            totals.matrix += count_pair(pair, options)
            totals.images += 1
        except BadFile as bad:
            if not skip_bad:
                raise
            totals.skipped.append(bad)
    return totals
