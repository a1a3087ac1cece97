"""What a user gets from an install: every module, an import that works from a source
checkout too, type hints, and metadata that the README and the license agree with; and
the checkout's pre-commit hooks."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources

import numpy as np
import pytest

import fastdrop

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = pathlib.Path(fastdrop.__file__).parent
# numpy's directory: site-packages, to reach with `python -S`, which skips its .pth files
# (an editable install's among them).
SITE = str(pathlib.Path(np.__file__).parent.parent)


SOURCE = pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs a checkout")


def _python(*args: str, cwd: pathlib.Path, path: list[str]) -> subprocess.CompletedProcess:
    """``python -S *args`` in ``cwd``, with only ``path`` before the standard library."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    command = [sys.executable, "-S", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _copy_package(parent: pathlib.Path, version: str | None) -> pathlib.Path:
    """fastdrop's Python files under ``parent``, built (with a ``_version.py`` giving
    ``version``) or not (``None``: as in a fresh clone)."""
    shutil.copytree(
        PACKAGE,
        parent / "fastdrop",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "_version.py"),
    )
    if version is not None:
        (parent / "fastdrop" / "_version.py").write_text(f"version = {version!r}\n")
    return parent


@SOURCE
def test_python_m_fastdrop_from_the_checkout_root():
    # The README's command runs here, where the source tree comes first on sys.path.
    result = subprocess.run(
        [sys.executable, "-m", "fastdrop", "--version"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"fastdrop {fastdrop.__version__}\n"


def test_an_unbuilt_tree_hands_over_to_a_built_fastdrop(tmp_path):
    tree = _copy_package(tmp_path / "clone", None)
    built = _copy_package(tmp_path / "site", "0.0.0+built")
    result = _python("-m", "fastdrop", "--version", cwd=tree, path=[str(built), SITE])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fastdrop 0.0.0+built\n"
    code = (
        "import sys, fastdrop\n"
        "print(fastdrop.__version__)\n"
        "print([name for name, m in sys.modules.items() if name.startswith('fastdrop')"
        f" and not getattr(m, '__file__', '').startswith({str(built / 'fastdrop')!r})])\n"
    )
    result = _python("-c", code, cwd=tree, path=[str(built), SITE])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0.0.0+built", "[]"]  # every module from there


def test_an_unbuilt_tree_alone_says_how_to_build_it(tmp_path):
    tree = _copy_package(tmp_path / "clone", None)
    result = _python("-c", "import fastdrop", cwd=tree, path=[])
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("ImportError: fastdrop is imported from its source tree"), last
    assert "pip install ." in last
    assert "ModuleNotFoundError" not in result.stderr


def test_the_package_is_typed():
    assert resources.files("fastdrop").joinpath("py.typed").is_file()


def test_the_license_is_in_the_metadata():
    meta = metadata.metadata("fastdrop")
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    text = metadata.distribution("fastdrop").read_text("licenses/LICENSE")
    assert text is not None and text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, The fastdrop developers" in text


@SOURCE
def test_the_readme_states_what_the_metadata_requires():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up") :].split("\n## ")[0]
    meta = metadata.metadata("fastdrop")
    assert f"Python {meta['Requires-Python'].removeprefix('>=')} or later" in setup
    requirements = [r.partition(";") for r in metadata.requires("fastdrop") or []]
    runtime = [r for r, _, marker in requirements if not marker]
    assert runtime and all(f"`{r}`" in setup for r in runtime), runtime
    for extra in meta.get_all("Provides-Extra") or []:
        assert f"`{extra}`" in setup, extra
    pins = [r for r, _, _ in requirements if "==" in r]  # torch for the bench extra
    assert pins and all(f"`{pin}`" in setup for pin in pins), pins


@SOURCE
def test_the_changelog_has_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(
        rf"^## \[{re.escape(fastdrop.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )


@SOURCE
def test_the_build_installs_every_module():
    # fastdrop/meson.build names each file to install: a module left out of it is missing
    # from a wheel, while an editable install still finds it in the source tree.
    source = ROOT / "fastdrop"
    listed = set(re.findall(r"'([^']+\.py)'", (source / "meson.build").read_text()))
    modules = {path.relative_to(source).as_posix() for path in source.rglob("*.py")}
    missing = modules - listed - {"_version.py"}  # written by the build
    assert not missing, f"fastdrop/meson.build does not install {sorted(missing)}"


@SOURCE
def test_the_pre_commit_hooks_lint_and_format_with_ruff():
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hooks = re.findall(r"^\s*- id: (\S+)$", config, re.M)
    assert {"ruff-check", "ruff-format"} <= set(hooks), hooks


@SOURCE
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_the_c_headers_compile_without_the_x86_paths(tmp_path):
    """The Cython backend's headers pick AVX-512 and AVX2 intrinsics on x86-64 and plain C
    elsewhere: with the x86-64 test renamed away, as on an ARM machine, every kernel the
    extension calls must still compile (the fused loops are then never taken)."""
    for header in (ROOT / "fastdrop" / "_cy").glob("*.h"):
        text = header.read_text().replace("__x86_64__", "__not_x86_64__")
        (tmp_path / header.name).write_text(text)
    (tmp_path / "use.c").write_text(
        '#include "drop.h"\n#include "pool.h"\n'
        "int use(fd_run *r, uint8_t *flags, double *z, float *x, uint16_t *h) {\n"
        "    if (fd_fused(r->threshold)) fd_drop(r, 0);\n"
        "    fd_affine_f32(x, x, flags, 4, 2.0f, -0.0f, 0.0f);\n"
        "    fd_affine_f16(h, h, flags, 4, 2.0f, -0.0f, 0);\n"
        "    fd_affine_bf16(h, h, flags, 4, 2.0f, -0.0f, 0);\n"
        "    return fd_keep(flags, 0, 4, 1, 0, 7) + fd_normal(z, 0, 4, 1) + fd_use_simd(2);\n"
        "}\n"
    )
    flags = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-Wno-unused-function"]  # as Python.h
    result = subprocess.run(
        ["cc", *flags, "-c", "use.c", "-o", "use.o"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
