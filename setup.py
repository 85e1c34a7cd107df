"""Build the Cython kernels: -O3, and OpenMP when the compiler can do it.

``FASTIOU_OPENMP`` chooses: ``probe`` (default) compiles a tiny OpenMP program and uses OpenMP
when that works, ``1`` requires OpenMP (the build fails without it), ``0`` builds serial kernels.
"""

import glob
import os
import platform
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n > 0 ? 0 : 1; }
"""


def _openmp_flags(compiler) -> tuple[list[str], list[str]] | None:
    """Compile and link the probe; return (compile, link) flags that work, or None."""
    if sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, lflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=lflags)
            except Exception:  # noqa: BLE001 - any compiler/linker failure means "no OpenMP"
                continue
        return cflags, lflags
    return None


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        mode = os.environ.get("FASTIOU_OPENMP", "probe").strip().lower()
        if mode not in ("0", "1", "probe"):
            raise SystemExit(f"FASTIOU_OPENMP must be 0, 1 or probe, not {mode!r}")
        flags = None if mode == "0" else _openmp_flags(self.compiler)
        if mode == "1" and flags is None:
            raise SystemExit("FASTIOU_OPENMP=1 but the compiler cannot build an OpenMP program")
        if flags is None:
            why = "FASTIOU_OPENMP=0" if mode == "0" else "the OpenMP probe compile failed"
            print(f"fastiou: building SERIAL Cython kernels ({why}); numba stays parallel")
        else:
            print(f"fastiou: building Cython kernels with OpenMP ({' '.join(flags[0])})")
        # -fno-trapping-math lets GCC turn the NaN-propagating selects of the kernels into
        # vector code (nothing here reads floating-point exception flags).
        opt = ["/O2"] if sys.platform == "win32" else ["-O3", "-fno-trapping-math"]
        threads = [] if sys.platform == "win32" else ["-pthread"]
        for ext in self.extensions:
            # OpenMP only where a kernel still uses prange; the others run on fastiou's pool
            omp = flags if flags and _uses_openmp(ext.sources[0]) else ([], [])
            # *_avx2 modules: the same kernels for AVX2 CPUs, chosen at import (not FMA: that
            # would change the roundings)
            simd = (["/arch:AVX2"] if sys.platform == "win32" else ["-mavx2"]) * _is_avx2(ext)
            ext.extra_compile_args = opt + threads + omp[0] + simd
            ext.extra_link_args = threads + omp[1]
        super().build_extensions()


def _is_avx2(ext: Extension) -> bool:
    return ext.name.endswith("_avx2")


X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _uses_openmp(pyx: str) -> bool:
    with open(pyx) as f:
        return "cython.parallel" in f.read()


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
