"""Make code written for pycocotools use fastiou: ``sys.modules`` entries for ``pycocotools``,
``pycocotools.coco``, ``pycocotools.cocoeval`` and ``pycocotools.mask``, reversibly."""

from __future__ import annotations

import sys
import types

_NAMES = ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval", "pycocotools.mask")
_MISSING = object()


class PycocotoolsShim:
    """The installed shim: :meth:`uninstall` (or leaving the ``with`` block) puts back the
    ``sys.modules`` entries that were there before."""

    def __init__(self, saved: dict[str, object]):
        self._saved = saved
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        for name, module in self._saved.items():
            if module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        self.installed = False

    def __enter__(self) -> PycocotoolsShim:
        return self

    def __exit__(self, *exc) -> None:
        self.uninstall()


def install_pycocotools_shim() -> PycocotoolsShim:
    """Route ``import pycocotools...`` to fastiou: afterwards ``from pycocotools.coco import
    COCO``, ``from pycocotools.cocoeval import COCOeval`` and ``from pycocotools import mask``
    (as detectron2, mmdet and ultralytics evaluators write them) give fastiou's classes and
    module, with pycocotools' interface and numbers.

    Modules that imported pycocotools before the call keep what they imported. Returns a
    handle whose ``uninstall()`` restores the previous entries (also a context manager)::

        import fastiou.coco
        with fastiou.coco.install_pycocotools_shim():
            run_the_evaluator()
    """
    from . import _coco, _eval, mask

    saved = {name: sys.modules.get(name, _MISSING) for name in _NAMES}
    package = types.ModuleType("pycocotools", "fastiou.coco standing in for pycocotools")
    package.__path__ = []  # a package: its submodules come from sys.modules
    package.coco, package.cocoeval, package.mask = _coco, _eval, mask
    package.__fastiou__ = True
    sys.modules.update({
        "pycocotools": package, "pycocotools.coco": _coco, "pycocotools.cocoeval": _eval,
        "pycocotools.mask": mask,
    })  # fmt: skip
    return PycocotoolsShim(saved)
