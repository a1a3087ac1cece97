"""This machine's dispatch table: which backend ``"auto"`` runs, by dtype and size.

``fastdrop tune`` (``fastdrop._tools.tune``) times the compiled backends here and writes
the table with :func:`write`, into the user's cache directory, as FFTW keeps its wisdom.
The table is keyed by the CPU (model, and a hash of its feature flags) and by the
versions of fastdrop, NumPy, Numba and Python: a table written under another key is
stale, and ignored, as is a file that cannot be read or does not parse. Then auto
follows its built-in order (``fastdrop._engine.backends.AUTO_ORDER``).

On disk (JSON)::

    {"format": 1,
     "key": {"cpu": ..., "flags": ..., "machine": ..., "fastdrop": ..., "numpy": ...,
             "numba": ..., "python": ...},
     "rules": {"float32": [[0, "cython"], [32768, "numba"]], ...},
     "threads": 2, "measured": "2026-12-01 10:00", "seconds": [...]}

``rules`` is the table: per dtype, the sizes (in elements) from which each backend runs,
the first from 0. ``threads``, ``measured`` and ``seconds`` (each case's median times)
say how it was measured, for people and ``fastdrop tune --show``; auto reads only the
key and the rules. This module is imported at the first auto call, not with fastdrop.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

import fastdrop
from fastdrop._engine.backends import AUTO_ORDER, NAMES, Lookups

FORMAT = 1
FILE = "dispatch.json"
DTYPES = ("float16", "float32", "float64")

Rules = dict[str, list[tuple[int, str]]]  # dtype name -> [(from size, backend)], from 0 up


def cache_dir() -> Path:
    """Where fastdrop keeps what it measured on this machine.

    ``$FASTDROP_CACHE_DIR`` if set; else ``%LOCALAPPDATA%\\fastdrop\\Cache`` on Windows,
    ``~/Library/Caches/fastdrop`` on macOS, and ``$XDG_CACHE_HOME/fastdrop`` (an
    absolute one) or ``~/.cache/fastdrop`` elsewhere.

    Returns
    -------
    pathlib.Path
        The directory; it need not exist.
    """
    own = os.environ.get("FASTDROP_CACHE_DIR")
    if own:
        return Path(own)
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else Path.home() / "AppData" / "Local") / "fastdrop" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fastdrop"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "fastdrop"


def path() -> Path:
    """The dispatch table's file, in :func:`cache_dir`."""
    return cache_dir() / FILE


def cpu() -> tuple[str, frozenset[str]]:
    """This CPU's model and feature flags, as the OS names them.

    Returns
    -------
    tuple
        The model name (the architecture where the OS does not say) and the flags (none
        where the OS does not list them: only Linux's ``/proc/cpuinfo`` does).
    """
    model, flags = "", frozenset[str]()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                field, _, value = line.partition(":")
                field = field.strip()
                if field == "model name" and not model:
                    model = value.strip()
                elif field in ("flags", "Features"):  # x86's; Arm's
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def machine_key() -> dict[str, str]:
    """What a table measured in this process is keyed by.

    Returns
    -------
    dict
        The CPU model, a hash of its flags, the architecture, and the versions of
        fastdrop, NumPy, Python and Numba (where installed).
    """
    model, flags = cpu()
    key = {
        "cpu": model,
        "flags": hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:16],
        "machine": platform.machine(),
        "fastdrop": fastdrop.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        key["numba"] = metadata.version("numba")  # without importing it
    except metadata.PackageNotFoundError:
        pass
    return key


def check_rules(rules: object) -> Rules:
    """``rules`` as read from JSON, once each dtype's rule is a list of ``[from size,
    backend]`` pairs from size 0 up, with known dtypes and backends.

    Raises
    ------
    ValueError
        Saying what is wrong.
    """
    if not isinstance(rules, dict):
        raise ValueError("rules is not an object")
    checked: Rules = {}
    for dtype, rule in rules.items():
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}")
        if not isinstance(rule, list) or not rule:
            raise ValueError(f"{dtype}: not a list of [size, backend] pairs")
        pairs = []
        for pair in rule:
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or type(pair[0]) is not int
                or pair[1] not in NAMES
            ):
                raise ValueError(f"{dtype}: {pair!r} is not a [size, backend] pair")
            pairs.append((pair[0], pair[1]))
        sizes = [size for size, _ in pairs]
        if sizes[0] != 0 or any(a >= b for a, b in itertools.pairwise(sizes)):
            raise ValueError(f"{dtype}: the sizes do not rise from 0")
        checked[dtype] = pairs
    return checked


def read(file: Path) -> dict:
    """The table in ``file``, its rules checked (:func:`check_rules`).

    Raises
    ------
    OSError
        If the file cannot be read (FileNotFoundError: there is none).
    ValueError
        If it is not a table of this format.
    """
    with open(file, encoding="utf-8") as f:
        table = json.load(f)  # a JSONDecodeError is a ValueError
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        raise ValueError(f"not a format-{FORMAT} dispatch table")
    if not isinstance(table.get("key"), dict):
        raise ValueError("no key")
    table["rules"] = check_rules(table.get("rules"))
    return table


def stale(table: dict) -> list[str]:
    """How the key of ``table`` differs from this process's: one phrase per field, none
    when the table holds here."""
    here = machine_key()
    return [
        f"{field} {table['key'].get(field)!r} there, {here.get(field)!r} here"
        for field in sorted(set(here) | set(table["key"]))
        if table["key"].get(field) != here.get(field)
    ]


def write(rules: Rules, **about: object) -> Path:
    """Store ``rules`` as this machine's table, keyed by :func:`machine_key`, replacing
    any table there was at once (a process reading it sees the old one or the new one).

    Parameters
    ----------
    rules : dict
        Dtype name -> ``[(from size, backend), ...]``, from size 0 up.
    **about
        What else to store, for people to read: how it was measured.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    check_rules(rules)
    file = path()
    file.parent.mkdir(parents=True, exist_ok=True)
    table = {"format": FORMAT, "key": machine_key(), "rules": rules, **about}
    fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=".dispatch-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(table, f, indent=1)
        os.replace(temporary, file)
    except BaseException:
        os.unlink(temporary)
        raise
    return file


def clear() -> bool:
    """Remove this machine's table; True if there was one."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


def compile_rules(rules: Rules) -> Lookups:
    """``rules`` as lookups read them: by dtype, in either byte order, the sizes where the
    choice changes and the choices, for :func:`bisect.bisect_right`. A dtype whose rule
    names only auto's built-in first choice is left out: without a rule auto takes the
    same, and the lookup is skipped."""
    compiled: Lookups = {}
    for name, rule in rules.items():
        if any(backend != AUTO_ORDER[0] for _, backend in rule):
            lookup = (tuple(size for size, _ in rule[1:]), tuple(b for _, b in rule))
            dtype = np.dtype(name)
            compiled[dtype] = compiled[dtype.newbyteorder()] = lookup
    return compiled


def in_force() -> Lookups:
    """The lookups of this machine's table, or none (``{}``) if there is no table,
    or it is stale; a table that cannot be read or parsed is ignored with a
    ``RuntimeWarning``. Never raises: auto then follows its built-in order."""
    file: Path | str = FILE
    try:
        file = path()
        table = read(file)
        return {} if stale(table) else compile_rules(table["rules"])
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a broken cache must not break a dropout call
        warnings.warn(
            f"fastdrop: ignoring the dispatch table {file} ({type(exc).__name__}: {exc}); "
            "auto runs its built-in order. `fastdrop tune` measures a new one.",
            RuntimeWarning,
            stacklevel=2,
        )
        return {}
