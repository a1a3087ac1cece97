"""Test settings and fixtures; strategies live in strategies.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import fastdrop

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
