"""Test settings and fixtures; strategies live in strategies.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import fastdrop
from fastdrop._engine import backends as _backends

settings.register_profile(
    "fastdrop",
    deadline=None,  # the first call of a Numba signature compiles
    max_examples=int(os.environ.get("FASTDROP_HYPOTHESIS_EXAMPLES", "60")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("fastdrop")

FAST = [name for name in ("numba", "cython") if name in fastdrop.available_backends()]


@pytest.fixture(params=FAST, scope="session")
def fast_backend(request) -> str:
    """Each compiled backend in turn."""
    return request.param


@pytest.fixture(autouse=True, scope="session")
def _cache_dir_of_the_session(tmp_path_factory):
    """Point the cache directory, for this process and those it starts, at an empty one:
    no test reads a dispatch table of the machine's (auto runs its built-in order unless
    a test writes a table), or writes one there."""
    os.environ["FASTDROP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    _backends.retune()  # in case collection made an auto call
