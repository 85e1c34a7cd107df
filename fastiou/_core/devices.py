"""What the CUDA backends run on: the one availability probe their kernel modules share.

Imported only by the ``_cuda`` modules (it imports numba.cuda).
"""

from numba import config, cuda


def cuda_unavailable_reason() -> str | None:
    """None when a CUDA GPU (or numba's simulator) is usable, else why not."""
    if cuda.is_available():
        return None
    return "no usable CUDA GPU (numba.cuda.is_available() is False)"


def describe_cuda() -> str:
    if config.ENABLE_CUDASIM:
        return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): correctness only, no speed"
    return f"CUDA device {cuda.get_current_device().name!s}"
