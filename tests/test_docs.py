"""The examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest

import pytest

import fastdrop
import fastdrop._api
import fastdrop._backends
import fastdrop.random


@pytest.mark.parametrize("module", [fastdrop._api, fastdrop._backends, fastdrop.random])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
