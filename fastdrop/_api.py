"""The public functions: validate, normalise layout and dtype, pick a backend, call a kernel.

No arithmetic on the data happens here; it all happens in the backends' kernels
(``mask``, ``forward``, ``backward``, ``scale``), which see only validated, native-order,
2-D views.
"""

from __future__ import annotations

import math
import operator
import os
from types import ModuleType

import numpy as np

from fastdrop import _backends

U64 = 1 << 64
SCALINGS = ("inverted", "classic")
_NO_BITS = np.empty(0, np.uint8)


# -- validation ----------------------------------------------------------------------------


def _check_array(x: object, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.char not in "efd":  # float16, float32, float64, in either byte order
        raise TypeError(f"{name} must be a float16, float32 or float64 array, got dtype {a.dtype}")
    return a


def _check_p(p: object) -> float:
    if type(p) is not float and (
        isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating)
    ):
        raise TypeError(f"p must be a real number, got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:  # also catches NaN
        raise ValueError(f"p must be in [0, 1], got {p}")
    return p


def _check_u64(v: object, name: str) -> int:
    if type(v) is not int and (isinstance(v, bool) or not isinstance(v, int | np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    v = int(v)
    if not 0 <= v < U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def _check_scaling(scaling: object) -> str:
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be 'inverted' or 'classic', got {scaling!r}")
    return scaling


def _check_rng(rng: object) -> None:
    if rng is None or isinstance(rng, np.random.Generator):
        return
    _check_u64(rng, "rng (an integer seed)")


def _seed(rng: object) -> int:
    """The 64-bit Philox key for ``rng``: an int seed, a Generator's next draw, or OS entropy."""
    if rng is None:
        return int.from_bytes(os.urandom(8), "little")
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, U64, dtype=np.uint64))
    return operator.index(rng)


def _check_out(out: object, x: np.ndarray) -> np.ndarray | None:
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != _native(x.dtype):
        raise TypeError(f"out must have dtype {_native(x.dtype)}, got {out.dtype}")
    if out.shape != x.shape:
        raise ValueError(f"out must have shape {x.shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if out is not x and np.may_share_memory(out, x) and not _same_view(out, x) and _overlap(out, x):
        raise ValueError("out partially overlaps the input; pass the input itself for in-place")
    return out


def _native(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` share an element (assumed so when that is too hard to tell)."""
    try:
        return np.shares_memory(a, b, max_work=100_000)
    except np.exceptions.TooHardError:
        return True


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    )


def _check_mask(mask: object, n: int) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8:
        raise TypeError("mask must be the packed uint8 array returned with return_mask=True")
    nbytes = (n + 7) // 8
    if mask.shape != (nbytes,):
        raise ValueError(f"mask must have shape ({nbytes},) for {n} elements, got {mask.shape}")
    return np.ascontiguousarray(mask)


def _threshold(p: float) -> int:
    """``floor(p * 2**32 + 0.5)``, exactly: keep an element iff its draw is at least this."""
    v = p * 2.0**32  # exact: a power-of-two scaling
    f = math.floor(v)
    return int(f) + (v - f >= 0.5)


def _keep_scale(p: float, scaling: str) -> float:
    if scaling == "classic" or p == 0.0:
        return 1.0
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


Choice = tuple[str, int, str, ModuleType]


def _backend(backend: str | None, n: int) -> Choice:
    """``(requested, n, chosen, kernels)`` for a call on ``n`` elements."""
    requested = _backends.requested(backend)
    return (requested, n, *_backends.resolve(requested, n))


# -- layout --------------------------------------------------------------------------------


def _pair_2d(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Matching 2-D views of ``x`` and ``y`` whose C order is the arrays' C order, if any."""
    if x.flags.c_contiguous and y.flags.c_contiguous:
        n = x.size
        return x.reshape(1, n), y.reshape(1, n)
    if x.ndim == 1:
        return x[None], y[None]
    if x.ndim == 2:
        return x, y
    shape = (-1, x.shape[-1])
    try:
        return x.reshape(shape, copy=False), y.reshape(shape, copy=False)
    except ValueError:  # the leading axes do not collapse without a copy
        return None


def _blocks(x: np.ndarray, y: np.ndarray):
    """``(x2, y2, first)`` for every 2-D trailing block of N-D ``x`` and ``y``."""
    step = x.shape[-2] * x.shape[-1]
    for k, idx in enumerate(np.ndindex(x.shape[:-2])):
        yield x[idx], y[idx], k * step


def _bit_slice(bits: np.ndarray, start: int, count: int) -> np.ndarray:
    """Bits ``[start, start + count)`` of a packed mask, realigned to start a byte."""
    head, shift = divmod(start, 8)
    chunk = bits[head : head + (count + 7) // 8 + 1]
    if not shift:
        return chunk
    words = np.append(chunk, np.uint8(0)).astype(np.uint16)
    return ((words[:-1] >> shift) | (words[1:] << (8 - shift))).astype(np.uint8)


def _run(kernel, x: np.ndarray, y: np.ndarray, args) -> None:
    """Call ``kernel(x2, y2, *args(first, x2))`` over 2-D views of ``x`` and ``y``.

    ``first`` is the flat C index of the view's first element; ``args`` turns it into the
    view's stream position or its share of a mask. When ``x`` is in another byte order,
    or its axes do not collapse to 2-D but ``y``'s do (a fresh output always does), ``x``
    is first copied into ``y`` and processed in place, so no temporary the size of the
    input is ever made. Only an ``out=`` whose own axes do not collapse is processed in
    blocks, one per index of its leading axes.
    """
    if not y.flags.aligned:  # e.g. a packed structured field: kernels need whole-item strides
        aligned = np.empty(y.shape, y.dtype)
        _run(kernel, x, aligned, args)
        np.copyto(y, aligned)
        return
    if not (x.dtype.isnative and x.flags.aligned):
        np.copyto(y, x)
        x = y
    pair = _pair_2d(x, y)
    if pair is None and _pair_2d(y, y) is not None:
        np.copyto(y, x)
        pair = _pair_2d(y, y)
    views = [(pair[0], pair[1], 0)] if pair is not None else _blocks(x, y)
    for x2, y2, first in views:
        kernel(x2, y2, *args(first, x2))


def _forward(kernels, x, y, bits, seed, offset, threshold, scale, n_threads) -> None:
    if bits.size and _pair_2d(y, y) is None:
        # 2-D blocks of an N-D out= do not start on mask bytes: draw the mask on its own.
        kernels.mask(bits, x.size, seed, offset, threshold, n_threads)
        bits = _NO_BITS

    def args(first, x2):
        return bits, seed, (offset + first) % U64, x2.shape[1], threshold, scale, n_threads

    _run(kernels.forward, x, y, args)


def _all_kept(n: int) -> np.ndarray:
    bits = np.full((n + 7) // 8, 0xFF, np.uint8)
    if n % 8:
        bits[-1] = (1 << (n % 8)) - 1
    return bits


def _call(choice: Choice, fn, *args) -> None:
    """Run ``fn(kernels, *args)``; under "auto", a Numba that fails at run time (unable to
    compile, say) is dropped with a warning and the call goes to the next backend."""
    requested, n, name, kernels = choice
    try:
        fn(kernels, *args)
    except Exception as exc:
        if requested != "auto" or name != "numba" or isinstance(exc, ValueError | TypeError):
            raise
        _backends.disable(name, exc)
        _call(_backend("auto", n), fn, *args)


# -- public API ----------------------------------------------------------------------------


def dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    out: np.ndarray | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Zero each element of ``x`` with probability ``p`` and rescale the rest.

    The mask is a pure function of ``(seed, offset, p, x.shape)``: element ``i`` (flat C
    order) keeps iff the Philox4x32-10 draw at stream position ``offset + i`` is at least
    ``floor(p * 2**32 + 0.5)``. Backend, threads and memory layout never change it.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Any shape and memory layout, either byte order.
    p : float
        Drop probability, in ``[0, 1]``.
    rng : int, numpy.random.Generator or None
        A seed in ``[0, 2**64)``; a Generator, from which one 64-bit seed is drawn; or
        None for fresh OS entropy.
    offset : int
        Stream position of the first element, in ``[0, 2**64)``. ``dropout(x[a:b], p,
        rng=s, offset=a)`` equals ``dropout(x, p, rng=s)[a:b]``.
    training : bool
        If False, no element is dropped: ``"inverted"`` returns ``x`` itself (or copies
        it into ``out``), ``"classic"`` returns ``x * (1 - p)``.
    scaling : {"inverted", "classic"}
        ``"inverted"`` trains with ``x * keep / (1 - p)``; ``"classic"`` with ``x * keep``.
    out : ndarray, optional
        Where to write the result: same shape, native dtype of ``x``, writeable. May be
        ``x`` itself, for in-place dropout, but may not otherwise overlap it.
    return_mask : bool
        Also return the packed mask: ``uint8``, ``ceil(x.size / 8)`` bytes, bit ``i % 8`` of
        byte ``i // 8`` is 1 where element ``i`` was kept.
    backend : {"auto", "numba", "cython", "numpy"}, optional
        Overrides ``use_backend`` / ``set_backend`` / ``FASTDROP_BACKEND``.

    Returns
    -------
    y : ndarray
        Same shape and dtype (native byte order) as ``x``. Dropped elements are ``+0.0``,
        even where ``x`` is inf or NaN.
    mask : ndarray of uint8
        Only with ``return_mask=True``.

    Raises
    ------
    TypeError
        For a non-float ``x``, a mistyped argument or an ``out`` of the wrong dtype.
    ValueError
        For ``p``, ``rng``, ``offset``, ``scaling`` or ``backend`` out of range, or a bad
        ``out``. Nothing is written when an error is raised.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.dropout(np.ones(8, np.float32), 0.5, rng=42)
    array([2., 0., 0., 0., 2., 0., 2., 0.], dtype=float32)
    >>> y, mask = fastdrop.dropout(np.ones(8), 0.5, rng=42, return_mask=True)
    >>> np.unpackbits(mask, bitorder="little")
    array([1, 0, 0, 0, 1, 0, 1, 0], dtype=uint8)
    """
    x = _check_array(x, "x")
    p = _check_p(p)
    scaling = _check_scaling(scaling)
    _check_rng(rng)
    offset = _check_u64(offset, "offset")
    out = _check_out(out, x)
    choice = _backend(backend, x.size)
    n_threads = _backends.get_num_threads()

    if not training:
        if scaling == "classic":
            y = np.empty(x.shape, _native(x.dtype)) if out is None else out
            if x.size:
                _call(choice, lambda k: _run(k.scale, x, y, lambda *_: (1.0 - p, n_threads)))
        elif out is None:
            y = x
        else:
            np.copyto(out, x)
            y = out
        return (y, _all_kept(x.size)) if return_mask else y

    seed = _seed(rng)
    y = np.empty(x.shape, _native(x.dtype)) if out is None else out
    bits = np.empty((x.size + 7) // 8, np.uint8) if return_mask else _NO_BITS
    if x.size:
        args = (x, y, bits, seed, offset, _threshold(p), _keep_scale(p, scaling), n_threads)
        _call(choice, _forward, *args)
    return (y, bits) if return_mask else y


def dropout_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    mask: np.ndarray | None = None,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    scaling: str = "inverted",
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
    rng : int or numpy.random.Generator, optional
        The forward call's seed, when ``mask`` is not given. A Generator must be in the
        state the forward call found it in (it gives the same seed only then).
    offset : int
        The forward call's ``offset``, when ``mask`` is not given.
    scaling : {"inverted", "classic"}
        The forward call's ``scaling``.
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
    grad = _check_array(grad, "grad")
    p = _check_p(p)
    scaling = _check_scaling(scaling)
    offset = _check_u64(offset, "offset")
    if (mask is None) == (rng is None):
        raise ValueError("give exactly one of mask= and rng= (the forward call's seed)")
    if mask is not None:
        mask = _check_mask(mask, grad.size)
        if offset != 0:
            raise ValueError("offset= belongs with rng=; a mask is already positioned")
    else:
        _check_rng(rng)
    out = _check_out(out, grad)
    choice = _backend(backend, grad.size)
    n_threads = _backends.get_num_threads()

    y = np.empty(grad.shape, _native(grad.dtype)) if out is None else out
    seed = None if mask is not None else _seed(rng)  # one draw from a Generator, as forward
    if grad.size:
        scale = _keep_scale(p, scaling)
        if mask is None:
            regenerate = (grad, y, _NO_BITS, seed, offset, _threshold(p), scale, n_threads)
            _call(choice, _forward, *regenerate)
        else:

            def args(first: int, g2: np.ndarray) -> tuple:
                return _bit_slice(mask, first, g2.size), scale, n_threads

            _call(choice, lambda k: _run(k.backward, grad, y, args))
    return y


def bernoulli_mask(
    shape: int | tuple[int, ...],
    p: float,
    *,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    packed: bool = True,
    backend: str | None = None,
) -> np.ndarray:
    """The keep-mask that :func:`dropout` would use for an array of ``shape``.

    Parameters
    ----------
    shape : int or tuple of int
    p : float
        Drop probability, in ``[0, 1]``.
    rng : int, numpy.random.Generator or None
    offset : int
    packed : bool
        True: ``uint8``, ``ceil(size / 8)`` bytes, little bit order, 1 = kept. False: a
        ``bool`` array of ``shape``, True = kept.
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
    """
    shape = _check_shape(shape)
    p = _check_p(p)
    _check_rng(rng)
    offset = _check_u64(offset, "offset")
    n = math.prod(shape)
    choice = _backend(backend, n)
    n_threads = _backends.get_num_threads()

    bits = np.empty((n + 7) // 8, np.uint8)
    seed = _seed(rng)
    if n:
        args = (bits, n, seed, offset, _threshold(p), n_threads)
        _call(choice, lambda k: k.mask(*args))
    if packed:
        return bits
    return np.unpackbits(bits, count=n, bitorder="little").view(bool).reshape(shape)


def _check_shape(shape: object) -> tuple[int, ...]:
    try:
        dims = (
            (operator.index(shape),)
            if not isinstance(shape, tuple | list)
            else tuple(operator.index(d) for d in shape)
        )
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must not have negative dimensions, got {dims}")
    return dims
