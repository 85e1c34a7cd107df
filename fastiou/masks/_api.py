"""mask_iou: the N x M IoU of instance masks, dense or run-length, through the dispatch layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import arrays as _arrays
from .._core import dispatch as _dispatch
from ._rles import RLEs


def _is_rle(x: Any) -> bool:
    if isinstance(x, RLEs):
        return True
    return isinstance(x, (list, tuple)) and all(isinstance(o, dict) for o in x)


def _as_rles(x: Any, name: str) -> RLEs:
    if isinstance(x, RLEs):
        return x
    if not _is_rle(x):
        raise TypeError(f"{name}: give both sides as RLEs / lists of RLE dicts, or both as dense")
    return RLEs.from_coco(x)


def _crowd(iscrowd: Any, m: int) -> np.ndarray:
    if iscrowd is None:
        return np.zeros(m, np.uint8)
    crowd = _arrays.to_numpy(iscrowd).reshape(-1)
    if crowd.shape[0] != m:
        raise ValueError(f"iscrowd has {crowd.shape[0]} entries but masks2 has {m} masks")
    return np.ascontiguousarray(crowd != 0, dtype=np.uint8)


def _binary(x: Any, name: str):
    """x as 0/1 uint8 in its own library (no copy for bool and 0/1 uint8), and its shape."""
    library = _arrays._library(x)
    if library == "numpy" and not isinstance(x, np.ndarray):
        x = np.asarray(x)
    shape = tuple(x.shape)
    if len(shape) != 3:
        raise ValueError(f"{name} must be masks [N, H, W], got shape {list(shape)}")
    if library == "torch":
        import torch

        if x.is_complex():
            raise TypeError(f"{name} must be boolean or numeric masks, not {x.dtype}")
        x = x.detach()
        return (x if x.dtype == torch.bool else x != 0).view(torch.uint8), shape
    dtype = np.dtype(x.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must be boolean or numeric masks, not {dtype}")
    if dtype == np.bool_:
        return x.view(np.uint8), shape
    if dtype == np.uint8 and (x.size == 0 or int(x.max()) <= 1):
        return x, shape
    return (x != 0).view(np.uint8), shape


def _device_rows(op: _arrays.Operand, x: Any, n: int):
    """0/1 uint8 masks as a C-contiguous [N, H * W] numba CUDA array (on the GPU already, or
    copied there)."""
    from numba import cuda

    if op.library == "torch" and op.on_gpu:
        return cuda.as_cuda_array(x.contiguous().reshape(n, -1))
    if op.library == "cupy":
        import cupy

        return cuda.as_cuda_array(cupy.ascontiguousarray(x).reshape(n, -1))
    if op.library == "cuda" and x.is_c_contiguous():
        return x.reshape(n, -1)
    return cuda.to_device(np.ascontiguousarray(_arrays.to_numpy(x)).reshape(n, -1))


def mask_iou(masks1: Any, masks2: Any, *, iscrowd: Any = None, backend: str = "auto") -> Any:
    """IoU of every mask in ``masks1`` with every mask in ``masks2``: an N x M matrix.

    Parameters
    ----------
    masks1, masks2 : dense masks [N, H, W] / [M, H, W], or RLEs
        Dense: numpy, torch (CPU or CUDA) or cupy arrays, boolean or numeric (nonzero is
        foreground), one H x W for both. RLE: :class:`fastiou.masks.RLEs` or lists of
        pycocotools RLE dicts (``{"size": [h, w], "counts": ...}``).
    iscrowd : array [M], optional
        Nonzero marks a crowd region of ``masks2``: its column scores intersection over the
        ``masks1`` mask's area (pycocotools' crowd rule).
    backend : {"auto", "numpy", "cython", "numba", "cuda"}
        "auto": dense masks on a GPU go to the CUDA kernel, everything else to Cython (the
        masks family has no numba kernel: "numba" falls through to Cython).

    Returns
    -------
    Dense input: float32 [N, M] in the caller's array type and device (as torchvision's and
    torchmetrics' mask IoU users get). RLE input: numpy float64 [N, M], equal to
    ``pycocotools.mask.iou`` bit for bit (-1 for a pair of RLEs of different sizes whose boxes
    overlap). Either way a pair without common pixels scores 0 (two empty masks too, where
    union 0 would give NaN), as pycocotools.
    """
    if _is_rle(masks1) or _is_rle(masks2):
        dt, gt = _as_rles(masks1, "masks1"), _as_rles(masks2, "masks2")
        crowd = _crowd(iscrowd, len(gt))
        _, kernels = _dispatch.select("masks", backend, len(dt) * len(gt), False)
        return kernels.pairwise_rle(dt, gt, crowd)
    a, shape1 = _binary(masks1, "masks1")
    b, shape2 = _binary(masks2, "masks2")
    if shape1[1:] != shape2[1:]:
        raise ValueError(
            f"masks1 and masks2 must have one H x W: {list(shape1[1:])} vs {list(shape2[1:])}"
        )
    op1, op2 = _arrays.Operand(a, "masks1"), _arrays.Operand(b, "masks2")
    if op1.on_gpu != op2.on_gpu:
        raise ValueError("masks1 and masks2 must both be on the CPU or both on a GPU")
    crowd = _crowd(iscrowd, shape2[0])
    n, m = shape1[0], shape2[0]
    name, kernels = _dispatch.select("masks", backend, n * m, op1.on_gpu)
    on_gpu = name == "cuda"
    like = op1 if op1.library != "numpy" else op2
    result = _arrays.Result(like, (n, m), np.float32, None, on_gpu)
    if n and m:
        if on_gpu:
            x1, x2 = _device_rows(op1, a, n), _device_rows(op2, b, m)
            kernels.pairwise_dense_device(x1, x2, crowd, result.view)
        else:
            x1 = np.ascontiguousarray(_arrays.to_numpy(a)).reshape(n, -1)
            x2 = np.ascontiguousarray(_arrays.to_numpy(b)).reshape(m, -1)
            result.view[...] = kernels.pairwise_dense(x1, x2, crowd, shape1[1:])
    return result.finish()
