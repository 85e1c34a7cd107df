"""Array interop: the caller's array -> numpy or a CUDA view for a kernel -> the caller's type.

Handles numpy arrays and anything ``np.asarray`` takes, torch tensors (CPU or CUDA), cupy arrays
and other objects exposing ``__cuda_array_interface__`` (numba device arrays). torch and cupy are
never imported here unless the caller passed one of their arrays.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np


def _library(x: Any) -> str:
    """'torch', 'cupy', 'cuda' (another __cuda_array_interface__ object) or 'numpy'."""
    root = type(x).__module__.partition(".")[0]
    if root in ("torch", "cupy"):
        return root
    if hasattr(x, "__cuda_array_interface__"):
        return "cuda"
    return "numpy"


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array of any array: numpy as is (no copy), anything ``np.asarray`` takes, torch
    tensors (detached; CUDA ones copied to the host), cupy and other CUDA arrays (copied)."""
    library = _library(x)
    if library == "torch":
        x = x.detach().cpu().numpy()
    elif library == "cupy":
        x = x.get()
    elif library == "cuda":
        x = x.copy_to_host()
    return np.asarray(x)


def lean_view(x: Any) -> np.ndarray | None:
    """``x`` itself if it is a numpy array, a numpy view of a plain CPU torch tensor (no grad),
    else None: the lean call paths' first test, in a few attribute reads (no copy, no import)."""
    if type(x) is np.ndarray:
        return x
    torch = sys.modules.get("torch")
    if torch is None or type(x) is not torch.Tensor:
        return None
    try:
        return x.numpy()  # only for CPU tensors without grad (checked by numpy() itself)
    except (TypeError, RuntimeError):  # GPU, grad, bfloat16, a conj/neg bit: the general path
        return None


def lean_result(result: np.ndarray, like: Any) -> Any:
    """A lean path's numpy ``result`` in the array type of ``like`` (numpy, or a CPU tensor)."""
    return result if type(like) is np.ndarray else sys.modules["torch"].from_numpy(result)


def _torch_dtype(dtype: np.dtype):
    import torch

    return torch.float64 if dtype == np.float64 else torch.float32


def _refuse_autograd(x: Any, name: str, caller: str) -> None:
    """Raise TypeError if torch tensor ``x`` would need a gradient that fastiou cannot give."""
    import torch

    if not (x.requires_grad and torch.is_grad_enabled()):
        return
    if caller == "soft_nms":
        instead = "to keep the graph, index your own tensors with the kept indices (scores[keep])"
    else:
        instead = (
            "for a loss use torchvision.ops (generalized_box_iou_loss, distance_box_iou_loss, "
            "complete_box_iou_loss, or box_iou and generalized_box_iou on tensors)"
        )
    raise TypeError(
        f"{caller}: {name} requires grad, but fastiou's {caller} is not differentiable (its "
        f"kernels compute values only: the result would be cut from the autograd graph); "
        f"{instead}. To compute values only, pass {name}.detach() or call it under "
        "torch.no_grad()."
    )


class Operand:
    """One input array: checked and described at once, converted for a kernel on demand.

    A torch tensor that requires grad (with grad mode on) is refused with a TypeError naming
    ``caller`` when ``autograd="raise"`` (results that users differentiate: box overlaps), and
    detached silently when ``autograd="detach"`` (results that carry no gradient in torch either,
    such as the int64 indices of NMS, as torchvision.ops.nms), and kept as it is, graph and all,
    when ``autograd="keep"`` (for callers that compute with torch itself).
    """

    def __init__(self, x: Any, name: str, *, caller: str = "fastiou", autograd: str = "raise"):
        self.name = name
        self.library = _library(x)
        if self.library == "numpy" and not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{name} must be an array, got {type(x).__name__}") from e
        self.device = None
        if self.library == "torch":
            import torch

            if autograd == "raise":
                _refuse_autograd(x, name, caller)
            if autograd != "keep":
                x = x.detach()
            self.device = x.device
            self.on_gpu = x.device.type != "cpu"
            real = x.dtype != torch.bool and not x.is_complex()
            self.float64 = x.dtype == torch.float64
        else:
            self.on_gpu = self.library != "numpy"
            dtype = np.dtype(x.dtype)
            kind = dtype.kind
            real = kind in "fiu"
            # float64 in any byte order, and wider floats (longdouble) compute in float64 too
            self.float64 = kind == "f" and dtype.itemsize >= 8
        if not real:
            raise TypeError(f"{name} must hold real numbers (int or float), not {x.dtype}")
        self.x = x
        self.shape = tuple(x.shape)

    def prepare(self, dtype: np.dtype, batch: tuple[int, ...], on_gpu: bool):
        """This [..., K, 4] array as [B, K, 4] of ``dtype``, broadcast to ``batch``, for a kernel.

        On the CPU a numpy array (native byte order; no copy when nothing needs converting); on
        the GPU a numba CUDA view, converted and broadcast by the caller's own library.
        """
        x, shape = self.x, batch + self.shape[-2:]
        flat = (-1,) + self.shape[-2:]
        if on_gpu and self.on_gpu and self.library in ("torch", "cupy"):
            if self.library == "torch":
                x = x.to(_torch_dtype(dtype)).broadcast_to(shape).reshape(flat)
            else:
                import cupy

                x = cupy.broadcast_to(x.astype(dtype, copy=False), shape).reshape(flat)
            from numba import cuda

            return cuda.as_cuda_array(x)
        if self.library == "torch":
            x = x.to(_torch_dtype(dtype)).cpu().numpy()
        elif self.library == "cupy":
            x = x.get()
        elif self.library == "cuda":
            same = np.dtype(x.dtype) == dtype and tuple(x.shape) == shape
            if on_gpu and same and x.is_c_contiguous():
                return x.reshape(flat)
            x = x.copy_to_host()
        x = np.asarray(x, dtype=dtype)
        if x.shape != shape:
            x = np.broadcast_to(x, shape)
        x = x.reshape(flat)
        if on_gpu:
            from numba import cuda

            return cuda.to_device(np.ascontiguousarray(x))  # to_device needs one buffer
        return x


class Result:
    """The result array in the caller's type, and the numpy/CUDA view a kernel writes into.

    When the caller's array cannot be written by the kernel directly (a strided ``out``, or data
    on the other side of the PCIe bus from the backend), the kernel writes a scratch array that
    :meth:`finish` copies into it.
    """

    def __init__(self, like: Operand, shape: tuple[int, ...], dtype: np.dtype, out: Any, on_gpu):
        self.shape, self.dtype, self.on_gpu = shape, np.dtype(dtype), on_gpu
        if out is None:
            self.value = _empty(like, shape, self.dtype)
        else:
            self.value = out
            _check_out(out, shape, self.dtype)
        view = self._kernel_view(self.value)
        self._copy_back = None
        if view is None or not _is_c_contiguous(view):
            self._copy_back = self.value
            if on_gpu:
                from numba import cuda

                view = cuda.device_array(shape, self.dtype)
            else:
                view = np.empty(shape, self.dtype)
        self.view = view

    def _kernel_view(self, value):
        lib = _library(value)
        if lib == "torch" and value.device.type == "cpu":
            return None if self.on_gpu else value.numpy()
        if lib == "numpy":
            return None if self.on_gpu else value
        if not self.on_gpu:
            return None
        from numba import cuda

        return cuda.as_cuda_array(value)

    def finish(self):
        """Copy a scratch result into the caller's array if one was used; return the result."""
        if self._copy_back is not None:
            _copy_into(self._copy_back, self.view)
        return self.value


def _empty(like: Operand, shape: tuple[int, ...], dtype: np.dtype):
    if like.library == "torch":
        import torch

        if like.device.type == "cpu":
            # numpy's allocator asks the kernel for huge pages on big arrays (torch's does not):
            # a 4000 x 4000 float32 result costs ~7 ms of page faults instead of ~17. The lean
            # paths return numpy-backed tensors too (torch.from_numpy).
            return torch.from_numpy(np.empty(shape, dtype))
        return torch.empty(shape, dtype=_torch_dtype(dtype), device=like.device)
    if like.library == "cupy":
        import cupy

        with cupy.cuda.Device(like.x.device):
            return cupy.empty(shape, dtype)
    if like.library == "cuda":
        from numba import cuda

        return cuda.device_array(shape, dtype)
    return np.empty(shape, dtype)


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
    out_dtype = str(getattr(out, "dtype", type(out).__name__)).replace("torch.", "")
    if tuple(getattr(out, "shape", ())) != shape or out_dtype != str(dtype):
        raise ValueError(
            f"out must have shape {shape} and dtype {dtype}, "
            f"got shape {tuple(getattr(out, 'shape', ()))} and dtype {out_dtype}"
        )
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError("out is read-only")


def _is_c_contiguous(view) -> bool:
    if isinstance(view, np.ndarray):
        return view.flags.c_contiguous
    return view.is_c_contiguous()


def _copy_into(dst, src) -> None:
    lib = _library(dst)
    host = src if isinstance(src, np.ndarray) else src.copy_to_host()
    if lib == "numpy":
        dst[...] = host
    elif lib == "torch":
        import torch

        dst.copy_(torch.from_numpy(host))
    elif lib == "cupy":
        dst.set(host)
    else:
        dst.copy_to_device(host)


def size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
