"""The core public functions: :func:`dropout`, :func:`dropout_backward` and
:func:`bernoulli_mask`.

Each is its docstring, a parse of its arguments into a request
(``fastdrop._engine.request``) and a run of it over the whole array
(``fastdrop._engine.run``); no arithmetic on the data happens here.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np

from fastdrop._contract.stream import keep_scale
from fastdrop._engine import checks, request
from fastdrop._engine.checks import RngLike
from fastdrop._engine.plan import Window
from fastdrop._engine.run import common, run

# -- public API ----------------------------------------------------------------------------


@overload
def dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    samples: int | None = None,
    out: np.ndarray | None = None,
    return_mask: Literal[False] = False,
    backend: str | None = None,
) -> np.ndarray: ...


@overload
def dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    samples: int | None = None,
    out: np.ndarray | None = None,
    return_mask: Literal[True],
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    samples: int | None = None,
    out: np.ndarray | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...


def dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    samples: int | None = None,
    out: np.ndarray | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Zero each element of ``x`` with probability ``p`` and rescale the rest.

    The mask is a pure function of ``(seed, offset, p, mask shape)``: mask element ``i``
    (flat C order) keeps iff the Philox4x32-10 draw at stream position ``offset + i`` is
    at least ``floor(p * 2**32 + 0.5)``. Backend, threads and memory layout never change it.

    Parameters
    ----------
    x : array_like of float16, bfloat16, float32 or float64
        Any shape and memory layout, either byte order. An ndarray subclass (a memmap, a
        matrix) is read as its data; a masked array is refused, its mask would be lost.
    p : float
        Drop probability, in ``[0, 1]``.
    rng : int, Generator, BitGenerator, SeedSequence, sequence of int or None
        Where the 64-bit Philox key comes from, as ``numpy.random.default_rng`` takes
        seeds (SPEC 7). An int in ``[0, 2**64)`` is the key itself. A
        ``numpy.random.Generator`` gives one draw,
        ``rng.integers(0, 2**64, dtype=np.uint64)``, and so advances; a ``BitGenerator``
        is wrapped in a Generator and drawn from the same way (it advances too). A
        ``SeedSequence``, or a sequence of non-negative ints, gives the first such draw
        of ``numpy.random.default_rng(rng)``: the same key every time. None reads fresh
        OS entropy. A legacy ``RandomState`` is a TypeError.
    offset : int
        Stream position of the first mask element, in ``[0, 2**64)``. ``dropout(x[a:b],
        p, rng=s, offset=a)`` equals ``dropout(x, p, rng=s)[a:b]``.
    training : bool
        If False, no element is dropped: ``"inverted"`` returns ``x`` itself (or copies
        it into ``out``), ``"classic"`` returns ``x * (1 - p)``.
    scaling : {"inverted", "classic"}
        ``"inverted"`` trains with ``x * keep / (1 - p)``; ``"classic"`` with ``x * keep``.
    noise_shape : tuple, optional
        The mask's shape, Keras-style: one entry per axis of ``x``, each ``x``'s length or
        1 (None means ``x``'s length). The mask is drawn over ``noise_shape``, one stream
        position per mask element, and broadcast over the axes where it is 1.
    samples : int, optional
        Monte Carlo dropout: return ``(samples, *x.shape)``, sample ``s`` drawn from
        ``offset + s * m`` on (``m`` the mask's size), exactly as ``samples`` separate
        calls would be. Without ``noise_shape``, ``x`` is read once, not once per sample.
    out : ndarray, optional
        Where to write the result: a plain ``numpy.ndarray`` (not a subclass) of the
        result's shape and ``x``'s dtype in native byte order, writeable, no two elements
        in the same memory. May be ``x`` itself, for in-place dropout, but may not
        otherwise overlap it.
    return_mask : bool
        Also return the packed mask: ``uint8``, ``ceil(m / 8)`` bytes (one row of them
        per sample), bit ``i % 8`` of byte ``i // 8`` is 1 where mask element ``i`` kept.
    backend : {"auto", "numba", "cython", "numpy"}, optional
        Overrides ``use_backend`` / ``set_backend`` / ``FASTDROP_BACKEND``.

    Returns
    -------
    y : ndarray
        Same shape (with a leading ``samples`` axis if asked) and dtype as ``x``, in
        native byte order (but ``x`` itself in eval mode with inverted scaling). Dropped
        elements are ``+0.0``, even where ``x`` is inf or NaN.
    mask : ndarray of uint8
        Only with ``return_mask=True``.

    Raises
    ------
    TypeError
        For a non-float or masked ``x``, a mistyped argument (a switch such as
        ``training`` that is not a bool, say), or an ``out`` that is not a plain
        ``numpy.ndarray`` of the right dtype.
    ValueError
        For ``p``, ``rng``, ``offset``, ``scaling``, ``noise_shape``, ``samples`` or
        ``backend`` out of range, or a bad ``out`` (wrong shape, read-only, overlapping
        ``x`` or itself). Nothing is written, and nothing drawn from a Generator, when an
        error is raised.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.dropout(np.ones(8, np.float32), 0.5, rng=42)
    array([2., 0., 0., 0., 2., 0., 2., 0.], dtype=float32)
    >>> y, mask = fastdrop.dropout(np.ones(8), 0.5, rng=42, return_mask=True)
    >>> np.unpackbits(mask, bitorder="little")
    array([1, 0, 0, 0, 1, 0, 1, 0], dtype=uint8)

    A mask shared along axis 1, and three Monte Carlo samples:

    >>> fastdrop.dropout(np.ones((2, 3)), 0.5, rng=42, noise_shape=(2, 1))
    array([[2., 2., 2.],
           [0., 0., 0.]])
    >>> fastdrop.dropout(np.ones(4), 0.5, rng=42, samples=3)
    array([[2., 0., 0., 0.],
           [2., 0., 2., 0.],
           [2., 2., 2., 2.]])
    """
    if (
        training is True
        and type(scaling) is str  # not an ndarray, whose == would be elementwise
        and scaling == "inverted"
        and noise_shape is samples is None
        and return_mask is False
    ):
        y = common(x, p, rng, offset, backend, out)
        if y is not None:
            return y
    x = checks.array(x, "x")
    req = request.dropout(
        x, p, rng=rng, offset=offset, training=training, scaling=scaling,
        noise_shape=noise_shape, samples=samples, out=out, return_mask=return_mask,
        backend=backend,
    )  # fmt: skip
    return run(req, [x]).returned()


def dropout_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    mask: np.ndarray | None = None,
    rng: RngLike = None,
    offset: int = 0,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """The gradient of :func:`dropout` with respect to its input.

    Give either the packed ``mask`` that the forward call returned, or the forward call's
    ``rng`` and ``offset``: then the mask is drawn again and nothing had to be stored.

    Parameters
    ----------
    grad : array_like of float16, bfloat16, float32 or float64
        Gradient with respect to the forward output; the shape of the forward ``x``.
    p : float
        The forward call's ``p``.
    mask : ndarray of uint8, optional
        The packed mask from ``dropout(..., return_mask=True)``.
    rng : int, Generator, BitGenerator, SeedSequence or sequence of int, optional
        The forward call's ``rng``, when ``mask`` is not given. An int, a SeedSequence or
        a sequence of ints gives the same key every time; a Generator or BitGenerator
        must be in the state the forward call found it in (it gives the same key only
        then).
    offset : int
        The forward call's ``offset``, when ``mask`` is not given.
    scaling : {"inverted", "classic"}
        The forward call's ``scaling``.
    noise_shape : tuple, optional
        The forward call's ``noise_shape``.
    out : ndarray, optional
        As for :func:`dropout`; may be ``grad`` itself.
    backend : {"auto", "numba", "cython", "numpy"}, optional

    Returns
    -------
    ndarray
        ``grad * keep * scale``, with ``+0.0`` wherever the forward call dropped.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> x = np.arange(1.0, 9.0)
    >>> y = fastdrop.dropout(x, 0.5, rng=7)
    >>> g = fastdrop.dropout_backward(np.ones(8), 0.5, rng=7)
    >>> bool(np.array_equal(g != 0, y != 0))
    True
    """
    if (
        mask is None
        and type(scaling) is str  # not an ndarray, whose == would be elementwise
        and scaling == "inverted"
        and noise_shape is out is None
    ):
        g = common(grad, p, rng, offset, backend)  # the forward call's own arithmetic
        if g is not None:
            return g
    grad = checks.array(grad, "grad")
    p = checks.rate(p)
    scale = keep_scale(p, checks.scaling(scaling))
    return backward(grad, p, scale, mask, rng, offset, noise_shape, out, backend)


def backward(grad, p, scale, mask, rng, offset, noise_shape, out, backend) -> np.ndarray:
    """A dropout-like backward on ``grad``: the mask redrawn, or read from ``mask``."""
    noise = checks.noise_shape(noise_shape, grad.shape)
    if mask is not None:
        m = grad.size if noise is None else math.prod(noise)
        mask = checks.packed_mask(mask, ((m + 7) // 8,))
    req = request.backward(
        grad, p, scale, mask=mask, rng=rng, offset=offset, noise=noise, out=out, backend=backend
    )
    return run(req, [grad] if mask is None else [grad, mask]).y


def bernoulli_mask(
    shape: int | tuple[int, ...],
    p: float,
    *,
    rng: RngLike = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | None = None,
    packed: bool = True,
    backend: str | None = None,
) -> np.ndarray:
    """The keep-mask that :func:`dropout` would use for an array of ``shape``.

    Parameters
    ----------
    shape : int or tuple of int
    p : float
        Drop probability, in ``[0, 1]``.
    rng : int, Generator, BitGenerator, SeedSequence, sequence of int or None
        As for :func:`dropout`.
    offset : int
    noise_shape : tuple, optional
        As for :func:`dropout`: the mask is drawn over ``noise_shape``.
    packed : bool
        True: ``uint8``, ``ceil(m / 8)`` bytes for the ``m`` mask elements, little bit
        order, 1 = kept. False: a ``bool`` array of ``shape``, True = kept (broadcast
        from ``noise_shape``).
    backend : {"auto", "numba", "cython", "numpy"}, optional

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import fastdrop
    >>> fastdrop.bernoulli_mask((2, 4), 0.5, rng=42, packed=False)
    array([[ True, False, False, False],
           [ True, False,  True, False]])
    >>> fastdrop.bernoulli_mask((2, 4), 0.5, rng=42, noise_shape=(2, 1), packed=False)
    array([[ True,  True,  True,  True],
           [False, False, False, False]])
    """
    shape = checks.shape(shape)
    req = request.mask(
        shape, p, rng=rng, offset=offset, noise_shape=noise_shape, packed=packed, backend=backend
    )
    return run(req, window=Window.whole(shape)).y
