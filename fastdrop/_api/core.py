"""The core public functions: validate, normalise, pick a backend, call its kernels.

No arithmetic on the data happens here; it all happens in the backends' kernels, which
see only validated, native-order 2-D views (``fastdrop._engine.plan``). The variants in
``fastdrop._api.family`` are built on the internal entry points below.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Literal, overload

import numpy as np

from fastdrop._contract import stream
from fastdrop._contract.stream import U64
from fastdrop._engine import backends as _backends
from fastdrop._engine import checks as _checks
from fastdrop._engine import plan as _layout
from fastdrop._engine import threads as _threads
from fastdrop._engine.checks import RngLike

NO_BITS = np.empty((0, 0), np.uint8)  # forward: no mask wanted
IDENTITY = -0.0  # x + -0.0 == x for every x: the shift of plain dropout

# What a kernel does to an element: kept -> x * scale + shift, dropped -> fill.
Affine = tuple[float, float, float]

Choice = tuple[str, str, ModuleType]


def backend_for(backend: str | None) -> Choice:
    """``(requested, chosen, kernels)`` for a call with ``backend=backend``.

    Every public call asks this after checking its arguments and before drawing from a
    Generator; so it also reads the thread setting now, and a bad ``FASTDROP_NUM_THREADS``
    fails the call before anything is drawn.
    """
    _threads.get_num_threads()
    requested = _backends.requested(backend)
    return (requested, *_backends.resolve(requested))


def call(choice: Choice, fn, *args) -> None:
    """Run ``fn(kernels, *args)``; under "auto", a Numba that fails at run time (unable to
    compile, say) is dropped with a warning and the call goes to the next backend."""
    requested, name, kernels = choice
    try:
        fn(kernels, *args)
    except Exception as exc:
        if requested != "auto" or name != "numba" or isinstance(exc, ValueError | TypeError):
            raise
        _backends.disable(name, exc)
        call(backend_for("auto"), fn, *args)


# -- kernel orchestration ------------------------------------------------------------------


def run_drawing(kernel, inputs, y, bits, draw, args, lead: int = 0) -> None:
    """``kernel(*views, bits, *args(first, first view))`` over the pieces of
    :func:`fastdrop._engine.plan.prepare`, for kernels that draw a mask and pack it into
    ``bits``. Blocks of an N-D ``out=`` need not start on a mask byte: then ``draw()``
    writes the packed mask on its own first and the kernel packs none."""
    pieces, blocked, finish = _layout.prepare(inputs, y, lead)
    if blocked and bits.size:
        draw()
        bits = bits[:0]
    for views, first in pieces:
        kernel(*views, bits, *args(first, views[0]))
    finish()


def _forward(kernels, x, y, bits, seed, offset, threshold, affine, n_threads) -> None:
    """``y[s]`` (``y`` is ``(samples, *x.shape)``) from positions ``offset + s * x.size`` on;
    each sample's packed mask into ``bits[s]`` unless ``bits`` is empty."""
    n = x.size

    def args(first: int, x2: np.ndarray) -> tuple:
        pos = (offset + first) % U64
        return seed, pos, x2.shape[1], n, threshold, *affine, n_threads

    draw = lambda: draw_masks(kernels, bits, n, seed, offset, threshold, n_threads)  # noqa: E731
    run_drawing(kernels.forward, [x], y, bits, draw, args, lead=1)


def draw_masks(kernels, bits, m, seed, offset, threshold, n_threads) -> None:
    """Packed masks of ``m`` elements into each row ``s`` of ``bits``, from ``offset + s * m``."""
    for s in range(bits.shape[0]):
        kernels.mask(bits[s], 1, m, seed, (offset + s * m) % U64, m, threshold, n_threads)


def _broadcast_apply(kernels, x, y, flags, affine, n_threads) -> None:
    """``y[s] = flags[s] ? x * scale + shift : fill``, each ``flags[s]`` broadcast to ``x``."""
    for s in range(y.shape[0]):
        keep = np.broadcast_to(flags[s], x.shape)
        _layout.run(kernels.apply, [x, keep], y[s, ...], lambda *_: (*affine, n_threads))


def _noise_shaped(choice, x, y, bits, noise, draw, affine, n_threads) -> None:
    """``y[s]`` (``y`` is ``(samples, *x.shape)``) with the mask of shape ``noise`` packed
    in ``bits[s]``, broadcast; ``draw = (seed, offset, threshold)`` draws the masks into
    ``bits`` first, None uses them as given."""
    m = math.prod(noise)
    if draw is not None and m:
        call(choice, draw_masks, bits, m, *draw, n_threads)
    if x.size and y.shape[0]:
        call(choice, _broadcast_apply, x, y, unpack(bits, noise), affine, n_threads)


def unpack(bits: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``uint8`` keep flags of ``(samples, *shape)`` from packed masks ``(samples, nbytes)``."""
    flags = np.unpackbits(bits, axis=-1, count=math.prod(shape), bitorder="little")
    return flags.reshape(bits.shape[0], *shape)


def sample(choice, x, seed, offset, threshold, affine, noise, samples, out, return_mask):
    """The training-mode result of dropout and its affine variants (validated arguments).

    ``noise`` is the mask's shape when it broadcasts (None: ``x.shape``); ``samples`` is
    None for one result of ``x``'s shape or ``k`` for ``(k, *x.shape)``.
    """
    k = 1 if samples is None else samples
    shape = x.shape if samples is None else (k, *x.shape)
    y = np.empty(shape, _checks.native(x.dtype)) if out is None else out
    m = mask_size(x, noise)
    wanted = return_mask or noise is not None
    bits = np.empty((k, (m + 7) // 8) if wanted else (0, 0), np.uint8)
    y3, n_threads = (y if samples is not None else y[None]), _threads.for_call(y.size, choice[2])
    if noise is not None:
        draw = (seed, offset, threshold)
        _noise_shaped(choice, x, y3, bits, noise, draw, affine, n_threads)
    elif x.size and k:
        call(choice, _forward, x, y3, bits, seed, offset, threshold, affine, n_threads)
    if not return_mask:
        return y
    return y, (bits if samples is not None else bits[0])


def regenerate(choice, grad, threshold, scale, mask, seed, offset, noise, out):
    """``out = keep ? grad * scale : +0.0`` with ``keep`` from a packed ``mask`` or redrawn
    from ``(seed, offset)``; ``noise`` as for :func:`sample`."""
    y = np.empty(grad.shape, _checks.native(grad.dtype)) if out is None else out
    n_threads = _threads.for_call(grad.size, choice[2])
    affine = (scale, IDENTITY, 0.0)
    if noise is not None:
        if mask is None:
            bits = np.empty((1, (mask_size(grad, noise) + 7) // 8), np.uint8)
            draw = (seed, offset, threshold)
        else:
            bits, draw = mask[None], None
        _noise_shaped(choice, grad, y[None], bits, noise, draw, affine, n_threads)
    elif grad.size and mask is None:
        call(choice, _forward, grad, y[None], NO_BITS, seed, offset, threshold, affine, n_threads)
    elif grad.size:

        def args(first: int, g2: np.ndarray) -> tuple:
            return _layout.bit_slice(mask, first, g2.size), scale, n_threads

        call(choice, lambda k: _layout.run(k.backward, [grad], y, args))
    return y


def evaluate(choice, x, factor, samples, out):
    """Eval mode: ``x`` itself (``factor`` None, no ``out``, no samples), else ``x`` or
    ``x * factor`` written into ``out`` or a new array, once per sample."""
    if factor is None and out is None and samples is None:
        return x
    shape = x.shape if samples is None else (samples, *x.shape)
    y = np.empty(shape, _checks.native(x.dtype)) if out is None else out
    y3 = y if samples is not None else y[None]
    if factor is None or not y.size:
        np.copyto(y3, x)
        return y
    n_threads = _threads.for_call(x.size, choice[2])
    call(choice, lambda k: _layout.run(k.scale, [x], y3[0, ...], lambda *_: (factor, n_threads)))
    np.copyto(y3[1:], y3[0])
    return y


def common(x, p, rng, offset, backend) -> np.ndarray | None:
    """``dropout(x, p, rng=rng, offset=offset)`` whole in C (Cython's ``common``), when
    ``x``, ``p``, ``rng`` and ``offset`` are of its kind (an aligned, C-contiguous, native
    float32 or float64 array, a float, two ints) and the backend in force for
    ``backend=backend`` runs on Cython; else None, and the caller takes the general path."""
    cython = _backends.common_entry(backend)
    if cython is None:
        return None
    return cython.common(x, p, rng, offset, _threads.usable(), cython.PARALLEL_MIN)


def all_kept(m: int, samples: int | None) -> np.ndarray:
    """The packed mask of ``m`` elements that keeps every one (per sample)."""
    bits = np.full((1 if samples is None else samples, (m + 7) // 8), 0xFF, np.uint8)
    if m % 8:
        bits[:, -1] = (1 << (m % 8)) - 1
    return bits[0] if samples is None else bits


def mask_size(x: np.ndarray, noise: tuple[int, ...] | None) -> int:
    return x.size if noise is None else math.prod(noise)


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
    x : array_like of float16, float32 or float64
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
        and noise_shape is samples is out is None
        and return_mask is False
    ):
        y = common(x, p, rng, offset, backend)
        if y is not None:
            return y
    x = _checks.array(x, "x")
    p = _checks.rate(p)
    training = _checks.flag(training, "training")
    scaling = _checks.scaling(scaling)
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    noise = _checks.noise_shape(noise_shape, x.shape)
    samples = _checks.samples(samples)
    return_mask = _checks.flag(return_mask, "return_mask")
    shape = x.shape if samples is None else (samples, *x.shape)
    out = _checks.out(out, shape, x.dtype, x)
    choice = backend_for(backend)

    if not training:
        y = evaluate(choice, x, 1.0 - p if scaling == "classic" else None, samples, out)
        return (y, all_kept(mask_size(x, noise), samples)) if return_mask else y
    affine = (stream.keep_scale(p, scaling), IDENTITY, 0.0)
    seed = _checks.seed(rng)
    return sample(
        choice, x, seed, offset, stream.threshold(p), affine, noise, samples, out, return_mask
    )


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
    grad : array_like of float16, float32 or float64
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
    grad = _checks.array(grad, "grad")
    p = _checks.rate(p)
    scaling = _checks.scaling(scaling)
    noise = _checks.noise_shape(noise_shape, grad.shape)
    return backward(grad, p, stream.keep_scale(p, scaling), mask, rng, offset, noise, out, backend)


def backward(grad, p, scale, mask, rng, offset, noise, out, backend) -> np.ndarray:
    """Validate the mask-or-seed arguments of a backward call, then :func:`regenerate`."""
    offset = _checks.u64(offset, "offset")
    if (mask is None) == (rng is None):
        raise ValueError("give exactly one of mask= and rng= (the forward call's seed)")
    if mask is not None:
        mask = _checks.packed_mask(mask, ((mask_size(grad, noise) + 7) // 8,))
        if offset != 0:
            raise ValueError("offset= belongs with rng=; a mask is already positioned")
    else:
        rng = _checks.rng(rng)
    read = (grad,) if mask is None else (grad, mask)  # out may be grad, but may not touch mask
    out = _checks.out(out, grad.shape, grad.dtype, *read)
    choice = backend_for(backend)
    seed = None if mask is not None else _checks.seed(rng)  # one draw from a Generator
    return regenerate(choice, grad, stream.threshold(p), scale, mask, seed, offset, noise, out)


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
    shape = _checks.shape(shape)
    p = _checks.rate(p)
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    noise = _checks.noise_shape(noise_shape, shape)
    packed = _checks.flag(packed, "packed")
    drawn = shape if noise is None else noise
    m = math.prod(drawn)
    choice = backend_for(backend)

    bits = np.empty((1, (m + 7) // 8), np.uint8)
    seed = _checks.seed(rng)
    if m:
        n_threads = _threads.for_call(m, choice[2])
        call(choice, draw_masks, bits, m, seed, offset, stream.threshold(p), n_threads)
    if packed:
        return bits[0]
    flags = unpack(bits, drawn).view(bool).reshape(drawn)
    return flags if noise is None else np.broadcast_to(flags, shape).copy()
