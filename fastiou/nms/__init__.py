"""Non-maximum suppression: nms, batched_nms, soft_nms with torchvision's semantics.

The API and validation are in ``_api``; the backends in ``_reference`` (numpy), ``_cython``
(+ ``_ckernels.pyx``, the exact greedy grid kernel) and ``_cuda`` (bitmask kernel). "numba" has
no kernel of its own: it falls through to the Cython kernel (the same algorithm ran at the same
speed in both; see docs/ARCHITECTURE.md).
"""

from ._api import batched_nms, nms, soft_nms

__all__ = ["batched_nms", "nms", "soft_nms"]
