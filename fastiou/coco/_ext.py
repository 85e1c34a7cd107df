"""The COCO family's compiled kernels (``_ckernels.pyx``), loaded on first use with a clear error
when the extension was not built."""

from types import ModuleType


def kernels() -> ModuleType:
    try:
        from . import _ckernels
    except ImportError as e:  # pragma: no cover - a build without the extension
        raise ImportError(
            "fastiou.coco needs its compiled extension (fastiou.coco._ckernels), which is not "
            "built here; reinstall fastiou with a C compiler available"
        ) from e
    return _ckernels
