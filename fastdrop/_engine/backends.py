"""Backend registry and selection.

Selection order for a call: the ``backend=`` argument, then the innermost
``use_backend(...)`` block of the calling thread, then ``set_backend(...)``, then the
``FASTDROP_BACKEND`` environment variable, then ``"auto"``. Under auto, each call goes
by this machine's dispatch table (``fastdrop tune``, ``fastdrop._engine.tuning``) for its
dtype and size, else by ``AUTO_ORDER``. Thread counts are ``fastdrop._engine.threads``'s.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import warnings
from bisect import bisect_right
from collections.abc import Iterator
from types import ModuleType

import numpy as np

NAMES = ("numba", "cython", "numpy")
_MODULES = {"numba": "fastdrop._numba", "cython": "fastdrop._cy", "numpy": "fastdrop._numpy"}

# Without a dispatch table for the call's dtype (or when the backend it names cannot
# load), "auto" takes the first available backend of AUTO_ORDER. Side by side on a 2-core
# AVX2 machine (fastdrop bench, 64 to 1e7 elements), Cython took 0.04-1.0x Numba's time
# on every dtype at every size; it has the lower call overhead and needs no JIT, so a
# process without a table never imports Numba under auto. See README "Dispatch".
AUTO_ORDER = ("cython", "numba", "numpy")

_loaded: dict[str, ModuleType] = {}
_failed: dict[str, str] = {}

# A dispatch table as lookups read it: dtype (either byte order) -> (the sizes from which
# auto's choice changes, the choices: one more, the first for sizes below the first size).
Lookups = dict[np.dtype, tuple[tuple[int, ...], tuple[str, ...]]]
# This machine's (fastdrop._engine.tuning.in_force); {} without a table in force; None
# until the first auto call reads it.
_tuned: Lookups | None = None

_backend_default = os.environ.get("FASTDROP_BACKEND", "auto") or "auto"
_backend_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fastdrop_backend", default=None
)


def load(name: str) -> ModuleType | None:
    """Import a backend's kernel module, or return None (remembering why) if it cannot."""
    module = _loaded.get(name)
    if module is not None or name in _failed:
        return module
    try:
        module = importlib.import_module(_MODULES[name])
    except Exception as exc:  # a broken Numba or a missing extension must not break fastdrop
        _failed[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = module
    return module


def disable(name: str, exc: BaseException) -> None:
    """Take a backend out of "auto" after it failed at run time (e.g. Numba cannot compile)."""
    _loaded.pop(name, None)
    _failed[name] = f"{type(exc).__name__}: {exc}"
    warnings.warn(
        f"fastdrop: the {name} backend failed ({_failed[name]}); using another one.",
        RuntimeWarning,
        stacklevel=3,
    )


def why_unavailable(name: str) -> str | None:
    """The reason a backend could not be loaded, or None."""
    return _failed.get(name)


def available_backends() -> list[str]:
    """The backends that work in this process, in the order of ``NAMES`` (without a
    dispatch table, auto prefers Cython, then Numba, then the NumPy reference).

    Returns
    -------
    list of str
        A subset of ``["numba", "cython", "numpy"]``.

    Examples
    --------
    >>> import fastdrop
    >>> "numpy" in fastdrop.available_backends()
    True
    """
    return [name for name in NAMES if load(name) is not None]


def check_name(name: object, source: str = "backend") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{source} must be a string, got {type(name).__name__}")
    if name != "auto" and name not in NAMES:
        choices = ", ".join(repr(n) for n in ("auto", *NAMES))
        raise ValueError(f"unknown {source} {name!r}; expected one of {choices}")
    return name


def requested(backend: object) -> str:
    """The backend name in force for a call whose ``backend=`` argument is ``backend``."""
    if backend is not None:
        return check_name(backend)
    scoped = _backend_scope.get()
    if scoped is not None:
        return scoped
    return check_name(_backend_default, "FASTDROP_BACKEND")


def _read_tuned() -> Lookups:
    global _tuned
    from fastdrop._engine import tuning  # at the first auto call: import fastdrop stays quick

    _tuned = {}  # what auto follows if reading fails (a warning turned into an error, say)
    _tuned = tuning.in_force()
    return _tuned


def retune() -> None:
    """Read this machine's dispatch table again at the next auto call (once ``fastdrop
    tune`` has written or removed it, say)."""
    global _tuned
    _tuned = None


def tuned(dtype: np.dtype, n: int) -> str | None:
    """The backend that this machine's dispatch table names for ``n`` elements of
    ``dtype``, or None where it names none (no table, or none for this dtype).

    The table is measured on the forward kernel; for the other kernels (the mask, the
    backward, Gaussian noise, the fused add, eval mode's scale) the forward kernel's
    choice for the same dtype and size stands in: they stream the same data through the
    same Philox draws and thread pools.
    """
    table = _tuned if _tuned is not None else _read_tuned()
    rule = table.get(dtype)
    if rule is None:
        return None
    return rule[1][bisect_right(rule[0], n)]


def resolve(name: str, dtype: np.dtype | None = None, n: int = 0) -> tuple[str, ModuleType]:
    """The backend that runs a call of ``n`` elements of ``dtype``: ``name`` itself, or
    auto's choice (the dispatch table's, else the first of ``AUTO_ORDER`` that loads;
    without a ``dtype``, the latter)."""
    if name != "auto":
        module = load(name)
        if module is None:
            raise ValueError(f"the {name!r} backend is not available: {_failed[name]}")
        return name, module
    chosen = None if dtype is None else tuned(dtype, n)
    if chosen is not None:
        module = load(chosen)
        if module is not None:
            return chosen, module
    for candidate in AUTO_ORDER:
        module = load(candidate)
        if module is not None:
            return candidate, module
    raise RuntimeError("no fastdrop backend can be loaded")  # numpy always can


def common_entry(backend: object, x: object) -> ModuleType | None:
    """The Cython backend, whose ``common`` runs the whole of the common ``dropout`` call
    in C, when the backend in force for a call on ``x`` with ``backend=backend`` would run
    it on Cython (``"cython"``, or ``"auto"`` where the dispatch table does not name
    another backend for ``x``); None otherwise."""
    # requested(backend), inlined for the names that need no check: a hot path
    name = backend if backend is not None else _backend_scope.get() or _backend_default
    if type(name) is not str or name not in ("auto", "cython"):
        name = requested(backend)  # checks the name: raises for a bad one
    if name == "auto":
        table = _tuned if _tuned is not None else _read_tuned()
        if table and type(x) is np.ndarray:  # Cython's common takes no other x
            rule = table.get(x.dtype)  # tuned(x.dtype, x.size), inlined: a hot path
            if rule is not None and rule[1][bisect_right(rule[0], x.size)] != "cython":
                return None
    elif name != "cython":
        return None
    return _loaded.get("cython") or load("cython")


def get_backend() -> str:
    """The backend name in force for this thread: ``"auto"`` or one of ``NAMES``.

    Examples
    --------
    >>> import fastdrop
    >>> with fastdrop.use_backend("numpy"):
    ...     fastdrop.get_backend()
    'numpy'
    """
    return requested(None)


def set_backend(name: str) -> None:
    """Set the default backend for the process.

    Parameters
    ----------
    name : {"auto", "numba", "cython", "numpy"}

    Raises
    ------
    ValueError
        For an unknown name, or a backend that cannot be loaded here.

    Examples
    --------
    >>> import fastdrop
    >>> previous = fastdrop.get_backend()
    >>> fastdrop.set_backend("cython" if "cython" in fastdrop.available_backends() else "numpy")
    >>> fastdrop.set_backend(previous)
    """
    global _backend_default
    _backend_default = _usable(name)


def _usable(name: object) -> str:
    name = check_name(name)
    if name != "auto" and load(name) is None:
        raise ValueError(f"the {name!r} backend is not available: {_failed[name]}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the calls in a ``with`` block on one backend (this thread and context only).

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> with fastdrop.use_backend("numpy"):
    ...     y = fastdrop.dropout(np.ones(4), 0.5, rng=1)
    """
    token = _backend_scope.set(_usable(name))
    try:
        yield
    finally:
        _backend_scope.reset(token)
