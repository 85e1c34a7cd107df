# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
# The kernels of _ckernels.pyx compiled for AVX2 (setup.py adds -mavx2 to every module named
# *_avx2, on x86 only; no FMA, so the numbers are the same): `_cython.py` loads this one where
# the CPU has AVX2. 8 floats a vector instead of SSE2's 4: the 100 x 100 IoU matrix takes half
# the time (bench/README.md, "Small calls").
include "_ckernels.pyx"
