"""The examples in the public docstrings and in the docs run and print what they say."""

from __future__ import annotations

import doctest
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

import fastdrop
import fastdrop._api.core
import fastdrop._api.family
import fastdrop._api.layer
import fastdrop._engine.backends
import fastdrop._engine.threads
import fastdrop.random

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"
MODULES = [
    fastdrop._api.core,
    fastdrop._api.family,
    fastdrop._api.layer,
    fastdrop._engine.backends,
    fastdrop._engine.threads,
    fastdrop.random,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_dask_docstring_examples():
    module = pytest.importorskip("fastdrop.dask")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= len(module.__all__)
    assert result.failed == 0
    for name in module.__all__:
        assert ">>> " in (inspect.getdoc(getattr(module, name)) or ""), name
        if API.exists():
            assert name in API.read_text(), f"docs/api.md does not list fastdrop.dask.{name}"


def test_torch_docstring_examples():
    module = pytest.importorskip("fastdrop.torch")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= len(module.__all__)
    assert result.failed == 0
    for name in module.__all__:
        assert ">>> " in (inspect.getdoc(getattr(module, name)) or ""), name
        if API.exists():
            assert f"`{name}" in API.read_text(), f"docs/api.md does not list fastdrop.torch.{name}"


@pytest.mark.parametrize("name", [n for n in fastdrop.__all__ if n != "random"])
def test_every_public_function_has_a_reference_with_an_example(name):
    obj = getattr(fastdrop, name)
    doc = inspect.getdoc(obj) or ""
    assert ">>> " in doc, f"fastdrop.{name} has no example"
    assert inspect.getmodule(obj) in MODULES
    if API.exists():  # a source checkout
        assert f"`{name}" in API.read_text(), f"docs/api.md does not list fastdrop.{name}"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    pytest.param(
        match.group(1), id=f"{path.name}:{path.read_text()[: match.start()].count(chr(10)) + 1}"
    )
    for path in DOCS
    if path.exists()
    for match in re.finditer(r"```python\n(.*?)```", path.read_text(), flags=re.S)
]


@pytest.mark.skipif(not BLOCKS, reason="run from a source checkout")
@pytest.mark.parametrize("block", BLOCKS)
def test_each_python_block_in_the_docs_runs_on_its_own(block, tmp_path):
    # A fresh interpreter per block: a block that needs another one's names fails, as it
    # would for a reader who pastes it alone, and settings a block changes end with it.
    result = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
