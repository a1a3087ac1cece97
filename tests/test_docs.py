"""The examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import pathlib
import re

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


README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.skipif(not README.exists(), reason="run from a source checkout")
def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {}
    threads, backend = fastdrop.get_num_threads(), fastdrop.get_backend()
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    finally:  # the tour changes process-wide settings
        fastdrop.set_num_threads(threads)
        fastdrop.set_backend(backend)
