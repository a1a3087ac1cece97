"""What the benchmarks compare: fastdrop's backends, the scale-copy bound and the peers.

Each table maps a row name to a zero-argument callable on one input. The asv suite, the
pytest-benchmark suite, ``fastdrop bench`` and ``python -m fastdrop`` time these rows on
the cases of :mod:`fastdrop.testing`, so that what is measured is what is tested. The
peers (the NumPy idiom, PyTorch, JAX) are imported only when a table is made.
"""

from __future__ import annotations

import functools
import importlib.util
import platform
from collections.abc import Callable
from importlib import metadata
from types import ModuleType
from typing import Any

import numpy as np

import fastdrop
from fastdrop._contract import dtypes, stream
from fastdrop._contract.kernels import Kernels
from fastdrop._engine import backends as _backends
from fastdrop._engine import threads as _threads
from fastdrop.testing import BOUND, REFERENCE_LIMIT

FAMILY_SAMPLES = 8  # Monte Carlo samples in the family's speed table
PEERS = ("torch", "jax")  # the packages whose rows peer_rows and family_peer_rows add
# The rows of fastdrop.torch.Dropout and torch.nn.Dropout, forward and forward+backward.
LAYER_ROWS = ("nn.Dropout", "nn.Dropout fwd+bwd", "fastdrop.torch", "fastdrop.torch fwd+bwd")


FRESH_BOUND = "x * s"  # the bound of the rows that return a new array


def bound_kernels() -> ModuleType:
    """The kernels of the scale-copy bound: the first of auto's built-in order, Cython's
    where it is built (its scale-copy took 0.89-0.99x Numba's time, float16 to float64),
    whatever this machine's dispatch table says, so that the bound stays put.

    Returns
    -------
    module
        A backend's kernel module, which implements
        :class:`fastdrop._contract.kernels.Kernels`.
    """
    return _backends.resolve("auto")[1]


def _bound(n: int) -> tuple[Kernels, int]:
    """The kernels of the bound, and the threads that fastdrop's own call on ``n``
    elements gets: those the bound runs on."""
    kernels = bound_kernels()
    return kernels, _threads.for_call(n, kernels)


def implementations(
    x: np.ndarray, p: float, *, peers: bool = True
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument callable, for every implementation to compare on ``x``.

    The first entry is the bound, a parallel scale-copy ``y = x * s`` with the threads
    fastdrop's own call on ``x`` gets (:func:`bound_kernels`), writing into a preallocated
    array. Then ``fastdrop <backend>`` for auto and every available backend, each
    returning a new array like the peers do (the NumPy reference only up to
    ``REFERENCE_LIMIT`` elements); ``x * s`` (``FRESH_BOUND``), NumPy's scale returning a
    new array, the like-for-like bound of those rows (a new array of 1e8 elements costs
    its page faults); ``fastdrop <backend> out=`` for the same backends, writing into a
    preallocated array as the bound does; the NumPy idiom
    ``x * (rng.random(x.shape) >= p) / (1 - p)``, and, if ``peers``, PyTorch and JAX when
    they are installed.

    Parameters
    ----------
    x : ndarray
        The input of every row.
    p : float
        The drop rate.
    peers : bool
        Whether to add the rows of PyTorch and JAX.

    Returns
    -------
    dict
        The rows, the bound first.
    """
    bound, n_threads = _bound(x.size)
    scale = stream.keep_scale(p, "inverted")
    out = np.empty_like(x)  # every row writing into a preallocated array: one at a time
    x2, y2 = x.reshape(1, -1), out.reshape(1, -1)
    rows: dict[str, Callable[[], object]] = {BOUND: lambda: bound.scale(x2, y2, scale, n_threads)}
    names = [
        name
        for name in ("auto", *fastdrop.available_backends())
        if name != "numpy" or x.size <= REFERENCE_LIMIT
    ]
    for name in names:
        rows[f"fastdrop {name}"] = functools.partial(fastdrop.dropout, x, p, rng=1, backend=name)
    like_x = x.dtype.type(scale)  # bfloat16 times a Python float would give float32
    rows[FRESH_BOUND] = lambda: x * like_x
    for name in names:
        rows[f"fastdrop {name} out="] = functools.partial(
            fastdrop.dropout, x, p, rng=1, out=out, backend=name
        )
    rng = np.random.default_rng(0)
    rows["numpy idiom"] = lambda: x * (rng.random(x.shape) >= p) / (1 - p)
    if peers:
        rows.update(peer_rows(x, p, fastdrop.get_num_threads()))
    return rows


def family_implementations(
    x: np.ndarray, p: float, *, peers: bool = True
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument callable, for the dropout family on ``x`` (1-D, a multiple of
    4096 elements, viewed as ``(-1, 1024)`` rows or ``(-1, 64, 8, 8)`` feature maps).

    The first entry is the same scale-copy bound as in :func:`implementations`; then
    ``FAMILY_SAMPLES`` scale-copies (the write traffic of ``FAMILY_SAMPLES`` Monte Carlo
    samples), dropout, the packed mask alone (what drawing costs, with almost nothing
    written), then the training passes writing into preallocated outputs as the
    scale-copies do (dropout alone and with its packed mask, the backward pass from that
    mask and redrawn, and ``FAMILY_SAMPLES`` samples), so that their ratios are the
    kernels' against the bound, then fastdrop's variants with their unfused or NumPy
    equivalents, and PyTorch's where it has one and is installed. The other fastdrop rows
    return a new array, as the peers do.

    Parameters
    ----------
    x : ndarray
        The input of every row: 1-D, a multiple of 4096 elements.
    p : float
        The drop rate.
    peers : bool
        Whether to add PyTorch's rows.

    Returns
    -------
    dict
        The rows, the bound first.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D with a multiple of 4096 elements.
    """
    if x.ndim != 1 or x.size % 4096:
        raise ValueError(f"x must be 1-D with a multiple of 4096 elements, got shape {x.shape}")
    rows = {BOUND: implementations(x, p, peers=False)[BOUND]}
    bound, n_threads = _bound(x.size)
    ys = np.empty((FAMILY_SAMPLES, 1, x.size), x.dtype)

    def scale_copies() -> None:
        for s in range(FAMILY_SAMPLES):
            bound.scale(x[None], ys[s], 2.0, n_threads)

    rows[f"{BOUND} x{FAMILY_SAMPLES}"] = scale_copies
    x2, maps, residual, bias = _family_operands(x)
    sigma = np.sqrt(p / (1 - p))
    rng = np.random.default_rng(0)
    _, mask = fastdrop.dropout(x, p, rng=1, return_mask=True)
    y, samples = np.empty_like(x), ys.reshape(FAMILY_SAMPLES, x.size)
    rows.update(
        {
            "dropout": lambda: fastdrop.dropout(x, p, rng=1),
            "bernoulli_mask": lambda: fastdrop.bernoulli_mask(x.shape, p, rng=1),
            "dropout out=": lambda: fastdrop.dropout(x, p, rng=1, out=y),
            "dropout out= return_mask": lambda: fastdrop.dropout(
                x, p, rng=1, out=y, return_mask=True
            ),
            "backward out= from mask": lambda: fastdrop.dropout_backward(x, p, mask=mask, out=y),
            "backward out= regenerated": lambda: fastdrop.dropout_backward(x, p, rng=1, out=y),
            f"dropout out= samples={FAMILY_SAMPLES}": lambda: fastdrop.dropout(
                x, p, rng=1, samples=FAMILY_SAMPLES, out=samples
            ),
            "dropout_add": lambda: fastdrop.dropout_add(x2, residual, p, bias=bias, rng=1),
            "r + dropout(x + b)": lambda: residual + fastdrop.dropout(x2 + bias, p, rng=1),
            "alpha_dropout": lambda: fastdrop.alpha_dropout(x, p, rng=1),
            "spatial_dropout": lambda: fastdrop.spatial_dropout(maps, p, rng=1),
            "gaussian_dropout": lambda: fastdrop.gaussian_dropout(x, p, rng=1),
            "numpy gaussian idiom": lambda: x * (1 + sigma * rng.standard_normal(x.shape)),
        }
    )
    if peers:
        rows.update(family_peer_rows(x, p, fastdrop.get_num_threads()))
    return rows


def _family_operands(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x`` as ``(-1, 1024)`` rows and ``(-1, 64, 8, 8)`` feature maps, a residual like
    the rows and a zero bias of one row: the operands of the family's rows."""
    x2 = x.reshape(-1, 1024)
    residual = np.random.default_rng(1).standard_normal(x2.shape).astype(x.dtype)
    return x2, x.reshape(-1, 64, 8, 8), residual, np.zeros(1024, x.dtype)


def installed() -> list[str]:
    """The peers of ``PEERS`` that are installed, found without importing them.

    Returns
    -------
    list of str
        Their package names.
    """
    return [name for name in PEERS if importlib.util.find_spec(name) is not None]


def versions() -> list[tuple[str, str]]:
    """fastdrop's, Python's and NumPy's versions, then those of Numba and the installed
    peers, read from package metadata so that none of them is imported.

    Returns
    -------
    list of tuple
        (name, version) pairs.
    """
    rows = [("fastdrop", fastdrop.__version__), ("python", platform.python_version())]
    rows.append(("numpy", np.__version__))
    for name in ("numba", *PEERS):
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return rows


def family_peer_rows(x: np.ndarray, p: float, n_threads: int) -> dict[str, Callable[[], object]]:
    """The rows of PyTorch's dropout family (on ``n_threads`` threads) that
    :func:`family_implementations` adds, where PyTorch is installed.

    Parameters
    ----------
    x : ndarray
        The input of every row: 1-D, a multiple of 4096 elements.
    p : float
        The drop rate.
    n_threads : int
        PyTorch's thread count.

    Returns
    -------
    dict
        Name -> zero-argument callable; empty without PyTorch.
    """
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(n_threads)
    x2, maps, residual, bias = _family_operands(x)
    xt, rt, bt, mt = (_tensor(torch, a) for a in (x2, residual, bias, maps))
    functional = torch.nn.functional
    return {
        "torch r + dropout(x + b)": lambda: rt + functional.dropout(xt + bt, p),
        "torch alpha_dropout": lambda: functional.alpha_dropout(xt, p, True),
        "torch dropout2d": lambda: functional.dropout2d(mt, p),
    }


def _tensor(torch: ModuleType, a: np.ndarray) -> Any:
    """``a`` as a PyTorch tensor on its memory; a bfloat16 array through its bits, as
    ``torch.from_numpy`` takes no ml_dtypes array."""
    if dtypes.is_bfloat16(a.dtype):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def peer_rows(x: np.ndarray, p: float, n_threads: int) -> dict[str, Callable[[], object]]:
    """The rows of PyTorch's dropout (on ``n_threads`` threads) with those of
    :func:`layer_rows`, and of JAX's idiom (on the CPU), where they are installed: the
    rows that ``fastdrop bench`` times in a process of their own.

    Parameters
    ----------
    x : ndarray
        The input of every row.
    p : float
        The drop rate.
    n_threads : int
        PyTorch's thread count.

    Returns
    -------
    dict
        Name -> zero-argument callable; empty without either.
    """
    rows: dict[str, Callable[[], object]] = {}
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(n_threads)
        xt = _tensor(torch, x)
        rows["torch"] = lambda: torch.nn.functional.dropout(xt, p, training=True)
        rows.update(layer_rows(x, p, n_threads))
    try:
        import jax
    except ImportError:
        pass
    else:
        cpu = jax.devices("cpu")[0]  # where an accelerator is present, JAX would use it
        xj = jax.device_put(x, cpu)
        key = jax.device_put(jax.random.key(0), cpu)
        fn = jax.jit(
            lambda k, v: jax.numpy.where(jax.random.bernoulli(k, 1 - p, v.shape), v / (1 - p), 0)
        )
        rows["jax"] = lambda: fn(key, xj).block_until_ready()
    return rows


def layer_rows(x: np.ndarray, p: float, n_threads: int) -> dict[str, Callable[[], object]]:
    """The rows ``LAYER_ROWS``: ``torch.nn.Dropout`` and ``fastdrop.torch.Dropout`` in
    training mode (on ``n_threads`` threads, both), forward on ``x`` as a tensor, and
    forward and backward (``torch.autograd.grad`` of a gradient of ones) on a tensor that
    requires grad, where PyTorch is installed.

    Parameters
    ----------
    x : ndarray
        The input of every row.
    p : float
        The drop rate.
    n_threads : int
        PyTorch's thread count: fastdrop's, ``fastdrop.get_num_threads()``.

    Returns
    -------
    dict
        Name -> zero-argument callable; empty without PyTorch.
    """
    try:
        import torch

        import fastdrop.torch
    except ImportError:
        return {}
    torch.set_num_threads(n_threads)
    xt = _tensor(torch, x)
    xg, grad = xt.clone().requires_grad_(), torch.ones_like(xt)
    rows: dict[str, Callable[[], object]] = {}
    for name, layer in zip(
        LAYER_ROWS[::2], (torch.nn.Dropout(p), fastdrop.torch.Dropout(p)), strict=True
    ):
        rows[name] = functools.partial(layer, xt)
        rows[f"{name} fwd+bwd"] = functools.partial(
            lambda layer: torch.autograd.grad(layer(xg), xg, grad), layer
        )
    return rows
