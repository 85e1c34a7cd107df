"""Build the Cython kernels: -O3, pthreads for fastiou's thread pool (``fastiou/_core/_pool.h``).

No kernel uses OpenMP any more (every parallel loop runs on the pool), so the build needs no
OpenMP runtime and the extensions link none. ``FASTIOU_SERIAL=1`` builds the pool without
threads (every kernel on the calling thread; the same numbers).
"""

import glob
import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        serial = os.environ.get("FASTIOU_SERIAL", "0").strip() not in ("", "0")
        if serial:
            print("fastiou: building SERIAL Cython kernels (FASTIOU_SERIAL); numba stays parallel")
        # -fno-trapping-math lets GCC turn the NaN-propagating selects of the kernels into
        # vector code (nothing here reads floating-point exception flags).
        opt = ["/O2"] if sys.platform == "win32" else ["-O3", "-fno-trapping-math"]
        threads = [] if sys.platform == "win32" or serial else ["-pthread"]
        for ext in self.extensions:
            # *_avx2 modules: the same kernels for AVX2 CPUs, chosen at import (not FMA: that
            # would change the roundings)
            ext.extra_compile_args = opt + threads + _simd_flags(ext)
            ext.extra_link_args = list(threads)
            if serial:
                ext.define_macros = [*ext.define_macros, ("FASTIOU_SERIAL", "1")]
        super().build_extensions()


def _simd_flags(ext: Extension) -> list[str]:
    """-mavx2 for the ``*_avx2`` modules (x86 only), nothing for the others."""
    if not ext.name.endswith("_avx2"):
        return []
    return ["/arch:AVX2"] if sys.platform == "win32" else ["-mavx2"]


X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _extensions() -> list[Extension]:
    """One extension per ``.pyx`` under fastiou/: ``fastiou/boxes/_cython.pyx`` builds
    ``fastiou.boxes._cython``. A family adds a kernel by adding its ``.pyx`` file."""
    exts = []
    for pyx in sorted(glob.glob("fastiou/**/*.pyx", recursive=True)):
        if pyx.endswith("_avx2.pyx") and not X86:
            continue
        name = os.path.splitext(pyx)[0].replace("/", ".").replace(os.sep, ".")
        exts.append(
            Extension(
                name,
                [pyx],
                include_dirs=[np.get_include(), os.path.dirname(pyx), "fastiou/_core"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return exts


setup(
    ext_modules=cythonize(_extensions(), compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
)
