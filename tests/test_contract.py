"""Every backend is a module that implements the kernel contract,
``fastdrop._contract.kernels.Kernels``: each kernel with the Protocol's parameters, in
its order, and nothing exported beyond the contract but a short list of extras. A kernel
added to one backend alone, or a parameter renamed in one, fails here."""

from __future__ import annotations

import inspect

import pytest

import fastdrop
from fastdrop._contract.kernels import Kernels
from fastdrop._engine import backends as _backends

KERNELS = sorted(
    name
    for name, member in vars(Kernels).items()
    if inspect.isfunction(member) and not name.startswith("_")
)
ATTRIBUTES = sorted(Kernels.__annotations__)  # PARALLEL_MIN
# What each backend exports besides the contract: its Philox for the known-answer tests,
# and its own controls.
EXTRAS = {
    "numpy": ["draw", "normal", "philox4x32"],
    "numba": ["philox4x32", "pool_workers"],
    "cython": ["SIMD_LEVELS", "common", "philox4x32", "pool_workers", "use_simd"],
}
BACKENDS = fastdrop.available_backends()


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_protocol_documents_each_kernel():
    assert KERNELS, "no kernel found in the Protocol"
    assert ATTRIBUTES == ["PARALLEL_MIN"]
    undocumented = [name for name in KERNELS if not inspect.getdoc(getattr(Kernels, name))]
    assert undocumented == []


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_kernel_takes_the_protocols_parameters(backend, kernel):
    module = _backends.load(backend)
    assert hasattr(module, kernel), f"the {backend} backend has no {kernel}"
    self, *expected = _parameters(getattr(Kernels, kernel))
    assert self == "self"
    assert _parameters(getattr(module, kernel)) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_min_is_a_non_negative_int(backend):
    value = _backends.load(backend).PARALLEL_MIN
    assert type(value) is int and value >= 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_is_the_contract_and_the_backends_extras(backend):
    module = _backends.load(backend)
    assert sorted(module.__all__) == sorted([*ATTRIBUTES, *KERNELS, *EXTRAS[backend]])
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
