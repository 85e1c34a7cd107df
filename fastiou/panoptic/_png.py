"""PNG decoding for COCO panoptic files: the fastest installed decoder, Pillow as the fallback.

``fastiou bench --task panoptic_png`` compares them on this machine. On the 480x640 benchmark
set (2 shared cores, one run) pyspng decodes fastest on one thread but holds the GIL, so threads
do not help it; imagecodecs (libpng, GIL released) runs as many decodes at once as there are
threads; OpenCV and Pillow are slower on one thread. ``"auto"`` takes the first installed of
:data:`PREFERENCE`.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import io
import os
import struct
import threading
import zlib
from collections.abc import Callable

import numpy as np

RGB, BGR = (0, 1, 2), (2, 1, 0)
# decoder name -> (module it needs, decode(bytes) -> (pixels, channel indices of R, G, B))
Decoded = tuple[np.ndarray, tuple[int, int, int]]


def _imagecodecs(data: bytes) -> Decoded:
    import imagecodecs

    return imagecodecs.png_decode(data), RGB


def _pyspng(data: bytes) -> Decoded:
    import pyspng

    return pyspng.load(data), RGB


def _opencv(data: bytes) -> Decoded:
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError("OpenCV cannot decode it")
    return pixels, BGR  # BGR(A) order: the kernel reads the channels where they are


def _pillow(data: bytes) -> Decoded:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image), RGB  # as panopticapi reads them: np.array(Image.open(...))


DECODERS: dict[str, tuple[str, Callable[[bytes], Decoded]]] = {
    "imagecodecs": ("imagecodecs", _imagecodecs),
    "pyspng": ("pyspng", _pyspng),
    "opencv": ("cv2", _opencv),
    "pillow": ("PIL", _pillow),
}
PREFERENCE = ("imagecodecs", "pyspng", "opencv", "pillow")


def decoder(name: str = "auto") -> Callable[[bytes], Decoded]:
    """The decode function called ``name`` ("auto": the first of PREFERENCE installed)."""
    if name == "auto":
        for candidate in PREFERENCE:
            if importlib.util.find_spec(DECODERS[candidate][0]) is not None:
                return DECODERS[candidate][1]
        raise ImportError("no PNG decoder: pip install 'fastiou[panoptic]' (or Pillow)")
    if name not in DECODERS:
        raise ValueError(f"unknown PNG decoder {name!r}; choose from auto, {', '.join(DECODERS)}")
    module = DECODERS[name][0]
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"PNG decoder {name!r} needs {module}, which is not installed")
    return DECODERS[name][1]


def ids_of(pixels: np.ndarray, channels: tuple[int, int, int]) -> np.ndarray:
    """Segment ids ``R + 256 G + 256² B`` of decoded ``[H, W, C]`` pixels (uint32)."""
    from ._reference import rgb_to_ids

    return rgb_to_ids(pixels, channels)


class Scanlines:
    """An 8-bit RGB(A) PNG inflated, its filters not yet undone: ``raw`` [H, 1 + W * bpp]."""

    __slots__ = ("raw", "bpp", "width", "height")

    def __init__(self, raw: np.ndarray, bpp: int, width: int, height: int):
        self.raw, self.bpp, self.width, self.height = raw, bpp, width, height


_SIGNATURE = b"\x89PNG\r\n\x1a\n"


_scratch = threading.local()


def _buffer(slot: int, size: int) -> np.ndarray:
    """A reused uint8 buffer of at least ``size`` bytes, per thread and slot: a fresh ~1 MB
    array per PNG costs page faults (and the kernel's memory-map lock, shared by threads)."""
    buffers = _scratch.__dict__.setdefault("buffers", {})
    buffer = buffers.get(slot)
    if buffer is None or buffer.size < size:
        buffer = buffers[slot] = np.empty(size, np.uint8)
    return buffer[:size]


def _inflate(stream: bytes, size: int, slot: int | None) -> np.ndarray | None:
    try:
        import imagecodecs

        out = np.empty(size, np.uint8) if slot is None else _buffer(slot, size)
        got = imagecodecs.deflate_decode(stream, out=out)  # libdeflate; drops the GIL
        return out if len(got) == size else None
    except ImportError:
        data = bytearray(zlib.decompress(stream))  # drops the GIL too, slower
        return np.frombuffer(data, np.uint8) if len(data) == size else None


def scanlines(data: bytes, slot: int | None = None) -> Scanlines | None:
    """The inflated scanlines of an 8-bit, non-interlaced RGB or RGBA PNG, else None.

    ``slot``: inflate into this thread's reused buffer number ``slot`` (valid until the next
    call with the same slot in the same thread), instead of a new array.

    COCO panoptic PNGs are all of that kind; others (palette, grey, 16-bit, interlaced) go to a
    full decoder. Raises ValueError for a truncated or corrupt file.
    """
    if data[:8] != _SIGNATURE:
        raise ValueError("not a PNG file")
    pos, end = 8, len(data)
    header = None
    stream = []
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise ValueError("truncated PNG chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            stream.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not stream:
        raise ValueError("PNG without IHDR or IDAT")
    width, height, depth, color, compression, filtering, interlace = header
    if depth != 8 or color not in (2, 6) or compression or filtering or interlace:
        return None
    bpp = 3 if color == 2 else 4
    raw = _inflate(b"".join(stream), height * (1 + width * bpp), slot)
    if raw is None:
        raise ValueError("the PNG's image data has the wrong size")
    return Scanlines(raw.reshape(height, 1 + width * bpp), bpp, width, height)


_LIBRARIES: list = []  # the libdeflate loaded by libdeflate(): kept loaded


@functools.cache
def libdeflate() -> tuple[int, int, int] | None:
    """The addresses of libdeflate's ``libdeflate_alloc_decompressor``,
    ``libdeflate_zlib_decompress`` and ``libdeflate_free_decompressor``, for the Cython kernel
    that inflates PNGs on fastiou's pool (``_cython.evaluate_pngs``); None without libdeflate.

    The library is the one imagecodecs ships (its deflate codec is built on it), else the
    system's. Its ABI (``libdeflate.so.0``) has been stable since 2016.
    """
    import ctypes
    import ctypes.util

    if os.name == "nt" and struct.calcsize("P") == 4:
        return None  # 32-bit Windows: libdeflate's functions may be __stdcall there
    candidates = []
    spec = importlib.util.find_spec("imagecodecs")
    if spec is not None and spec.origin is not None:
        root = os.path.dirname(spec.origin)
        for pattern in (root + ".libs/libdeflate*", root + "/.dylibs/libdeflate*",
                        root + "/*deflate*.dll"):  # fmt: skip
            candidates += sorted(glob.glob(pattern))
    system = ctypes.util.find_library("deflate")
    if system is not None:
        candidates.append(system)
    for path in candidates:
        try:
            library = ctypes.CDLL(path)
            names = ("libdeflate_alloc_decompressor", "libdeflate_zlib_decompress",
                     "libdeflate_free_decompressor")  # fmt: skip
            addresses = tuple(
                ctypes.cast(getattr(library, n), ctypes.c_void_p).value for n in names
            )
        except (OSError, AttributeError):
            continue
        _LIBRARIES.append(library)
        return addresses
    return None
