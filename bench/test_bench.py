"""Every (workload, implementation) pair of the registry as a pytest-benchmark case."""

import functools

import pytest

from fastiou import bench as _bench


@functools.cache
def _data(index: int):
    return _bench.WORKLOADS[index].make()


CASES = [
    pytest.param(
        index,
        impl,
        id=f"{w.task}[{w.name}]-{impl.name}",
        marks=[pytest.mark.quick] if w.quick else [],
    )
    for index, w in enumerate(_bench.WORKLOADS)
    for impl in _bench.IMPLEMENTATIONS
    if impl.task == w.task
]


@pytest.mark.parametrize(("index", "impl"), CASES)
def test_bench(benchmark, index, impl):
    try:
        call = impl.prepare(_data(index))
    except ImportError as e:
        pytest.skip(f"{impl.name}: not installed ({e.name or e})")
    benchmark(call)
