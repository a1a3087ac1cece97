"""The dropout family on top of the core: structured masks, alpha and Gaussian dropout,
and the fused bias-dropout-add of transformer blocks.

Each structured helper is :func:`fastdrop.dropout` with a ``noise_shape`` worked out from
the array's shape, and its backward is :func:`fastdrop.dropout_backward` with the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from fastdrop._api.core import (
    IDENTITY,
    all_kept,
    backend_for,
    backward,
    call,
    dropout,
    dropout_backward,
    evaluate,
    mask_size,
    run_drawing,
    sample,
)
from fastdrop._contract import stream
from fastdrop._contract.stream import U64
from fastdrop._engine import checks as _checks
from fastdrop._engine import plan as _layout
from fastdrop._engine import threads as _threads
from fastdrop._engine.checks import RngLike

if TYPE_CHECKING:
    import dask.array as da

# The helpers below that fastdrop.dask shares take NumPy or dask arrays alike.
ArrayT = TypeVar("ArrayT", np.ndarray, "da.Array")

# The SELU fixed point's negative saturation, -lambda * alpha (Klambauer et al. 2017),
# the value torch.nn.functional.alpha_dropout sets dropped elements to before its affine.
ALPHA_PRIME = -1.7580993408473766


# -- structured masks ----------------------------------------------------------------------


def _channel_noise(shape: tuple[int, ...], channel_axis: object, name: str, ndims: range):
    if len(shape) not in ndims:
        raise ValueError(
            f"{name} expects an array of {ndims.start} to {ndims.stop - 1} dimensions "
            f"(batch, channels and spatial axes), got shape {shape}"
        )
    c = _checks.axis(channel_axis, len(shape), "channel_axis")
    if c == 0:
        raise ValueError("channel_axis cannot be 0: axis 0 is the batch axis")
    return tuple(d if i in (0, c) else 1 for i, d in enumerate(shape))


def _spatial_noise(shape, channel_axis):
    return _channel_noise(shape, channel_axis, "spatial_dropout", range(3, 6))


def _time_noise(shape, time_axis):
    t = _checks.axis(time_axis, max(len(shape), 1), "time_axis") if shape else None
    if t is None:
        raise ValueError("locked_dropout needs an array with a time axis, got a 0-d array")
    return tuple(1 if i == t else d for i, d in enumerate(shape))


def _path_noise(shape):
    if not shape:
        raise ValueError("drop_path needs an array with a batch axis, got a 0-d array")
    return (shape[0],) + (1,) * (len(shape) - 1)


def spatial_dropout(x, p: float = 0.5, *, channel_axis: int = 1, **options):
    """Drop whole feature maps of a 1-D, 2-D or 3-D convolution's output.

    Like ``torch.nn.Dropout1d/2d/3d`` and Keras ``SpatialDropout1D/2D/3D``: one keep/drop
    per (sample, channel), shared over the spatial axes. It is :func:`dropout` with
    ``noise_shape`` equal to ``x.shape`` with every axis but 0 and ``channel_axis`` set to 1.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(N, *spatial, C)``
        1 to 3 spatial axes.
    p : float
        Probability of dropping a feature map.
    channel_axis : int
        1 for channels-first, -1 for channels-last.
    **options
        ``rng``, ``offset``, ``training``, ``scaling``, ``samples``, ``out``,
        ``return_mask`` and ``backend``, as for :func:`dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> y = fastdrop.spatial_dropout(np.ones((1, 4, 2, 2)), 0.5, rng=42)
    >>> y[0, :, 0, 0], bool((y == y[:, :, :1, :1]).all())
    (array([2., 0., 0., 0.]), True)
    """
    x = _checks.array(x, "x")
    return dropout(x, p, noise_shape=_spatial_noise(x.shape, channel_axis), **options)


def spatial_dropout_backward(grad, p: float, *, channel_axis: int = 1, **options):
    """The gradient of :func:`spatial_dropout`: :func:`dropout_backward` with its noise shape.

    ``**options`` are ``mask`` or ``rng`` (and ``offset``), ``scaling``, ``out`` and
    ``backend``, as for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> g = fastdrop.spatial_dropout_backward(np.ones((1, 4, 3)), 0.5, rng=42)
    >>> g[0]
    array([[2., 2., 2.],
           [0., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    """
    grad = _checks.array(grad, "grad")
    return dropout_backward(
        grad, p, noise_shape=_spatial_noise(grad.shape, channel_axis), **options
    )


def locked_dropout(x, p: float = 0.5, *, time_axis: int = 0, **options):
    """Variational ("locked") dropout for recurrent nets: one mask per sequence, the same
    at every time step (Gal and Ghahramani 2016; Merity et al. 2017).

    It is :func:`dropout` with ``noise_shape`` equal to ``x.shape`` with ``time_axis`` set
    to 1.

    Parameters
    ----------
    x : array_like
        For example ``(T, B, H)`` (``time_axis=0``, PyTorch's default sequence-first
        layout) or ``(B, T, H)`` (``time_axis=1``).
    p : float
    time_axis : int
    **options
        As for :func:`dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> y = fastdrop.locked_dropout(np.ones((3, 1, 4)), 0.5, rng=42)
    >>> y[:, 0]
    array([[2., 0., 0., 0.],
           [2., 0., 0., 0.],
           [2., 0., 0., 0.]])
    """
    x = _checks.array(x, "x")
    return dropout(x, p, noise_shape=_time_noise(x.shape, time_axis), **options)


def locked_dropout_backward(grad, p: float, *, time_axis: int = 0, **options):
    """The gradient of :func:`locked_dropout`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.locked_dropout_backward(np.ones((2, 4)), 0.5, rng=42)
    array([[2., 0., 0., 0.],
           [2., 0., 0., 0.]])
    """
    grad = _checks.array(grad, "grad")
    return dropout_backward(grad, p, noise_shape=_time_noise(grad.shape, time_axis), **options)


def drop_path(x, p: float = 0.5, **options):
    """Stochastic depth: keep or drop each sample's whole residual branch (Huang et al.
    2016), like ``timm.layers.drop_path``.

    It is :func:`dropout` with ``noise_shape = (x.shape[0], 1, ..., 1)``. timm's
    ``scale_by_keep=False`` is ``scaling="classic"``.

    Parameters
    ----------
    x : array_like, shape ``(N, ...)``
        A batch of residual-branch outputs.
    p : float
        Probability of dropping a sample's branch.
    **options
        As for :func:`dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.drop_path(np.ones((4, 2)), 0.5, rng=42)
    array([[2., 2.],
           [0., 0.],
           [0., 0.],
           [0., 0.]])
    """
    x = _checks.array(x, "x")
    return dropout(x, p, noise_shape=_path_noise(x.shape), **options)


def drop_path_backward(grad, p: float, **options):
    """The gradient of :func:`drop_path`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.drop_path_backward(np.ones((2, 3)), 0.5, rng=42)
    array([[2., 2., 2.],
           [0., 0., 0.]])
    """
    grad = _checks.array(grad, "grad")
    return dropout_backward(grad, p, noise_shape=_path_noise(grad.shape), **options)


# -- alpha dropout -------------------------------------------------------------------------


def _alpha_affine(p: float, dtype: np.dtype) -> tuple[float, float, float]:
    """``(a, b, a * alpha' + b)``: kept elements become ``a * x + b``, dropped ones the last,
    computed in the compute precision of ``dtype``."""
    if p == 1.0:  # the limit of a * alpha' + b as p -> 1, and torch's answer
        return 0.0, IDENTITY, 0.0
    a = ((1.0 - p) * (1.0 + p * ALPHA_PRIME**2)) ** -0.5
    b = -a * ALPHA_PRIME * p
    ctype = _checks.compute_dtype(dtype)
    return a, b, float(ctype(a) * ctype(ALPHA_PRIME) + ctype(b))


def alpha_dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    noise_shape: tuple[int | None, ...] | None = None,
    out: np.ndarray | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Alpha dropout for self-normalising (SELU) networks (Klambauer et al. 2017).

    Dropped elements are set to SELU's saturation value ``alpha' = -1.7580993408473766``
    and an affine map restores zero mean and unit variance:
    ``y = a * (keep ? x : alpha') + b`` with ``a = ((1 - p) * (1 + p * alpha'**2))**-0.5``
    and ``b = -a * alpha' * p``, the constants of ``torch.nn.functional.alpha_dropout``.
    Kept elements are ``x * a + b`` in the compute precision (float32 for float16 and
    float32, float64 for float64), dropped ones ``a * alpha' + b`` in the same precision:
    a dropped ``inf`` or ``NaN`` gives that finite value. The mask is the one
    :func:`dropout` draws for the same ``(rng, offset, p)``. ``p = 1`` gives zeros, as in
    PyTorch; ``p = 0`` and ``training=False`` return ``x``.

    Parameters
    ----------
    x, p, rng, offset, training, noise_shape, out, return_mask, backend
        As for :func:`dropout`.

    Returns
    -------
    y : ndarray
    mask : ndarray of uint8
        Only with ``return_mask=True``.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.alpha_dropout(np.zeros(4), 0.5, rng=42)
    array([ 0.77919393, -0.77919393, -0.77919393, -0.77919393])
    """
    x = _checks.array(x, "x")
    p = _checks.rate(p)
    training = _checks.flag(training, "training")
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    noise = _checks.noise_shape(noise_shape, x.shape)
    out = _checks.out(out, x.shape, x.dtype, x)
    return_mask = _checks.flag(return_mask, "return_mask")
    choice = backend_for(backend)
    if not training or p == 0.0:
        y = evaluate(choice, x, None, None, out)
        return (y, all_kept(mask_size(x, noise), None)) if return_mask else y
    affine = _alpha_affine(p, x.dtype)
    seed = _checks.seed(rng)
    return sample(
        choice, x, seed, offset, stream.threshold(p), affine, noise, None, out, return_mask
    )


def alpha_dropout_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    mask: np.ndarray | None = None,
    rng: RngLike = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | None = None,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """The gradient of :func:`alpha_dropout`: ``grad * a`` where kept, ``+0.0`` where dropped.

    Parameters
    ----------
    grad, p, mask, rng, offset, noise_shape, out, backend
        As for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.alpha_dropout_backward(np.ones(4), 0.5, rng=42)
    array([0.88640489, 0.        , 0.        , 0.        ])
    """
    grad = _checks.array(grad, "grad")
    p = _checks.rate(p)
    noise = _checks.noise_shape(noise_shape, grad.shape)
    scale = _alpha_affine(p, grad.dtype)[0] if p else 1.0
    return backward(grad, p, scale, mask, rng, offset, noise, out, backend)


def _feature_noise(shape, channel_axis):
    return _channel_noise(shape, channel_axis, "feature_alpha_dropout", range(2, 65))


def feature_alpha_dropout(x, p: float = 0.5, *, channel_axis: int = 1, **options):
    """Alpha dropout of whole channels, like ``torch.nn.FeatureAlphaDropout``.

    It is :func:`alpha_dropout` with ``noise_shape`` equal to ``x.shape`` with every axis
    but 0 and ``channel_axis`` set to 1.

    Parameters
    ----------
    x : array_like, shape ``(N, C, ...)`` or ``(N, ..., C)``
    p : float
    channel_axis : int
    **options
        As for :func:`alpha_dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.feature_alpha_dropout(np.zeros((1, 2, 3)), 0.5, rng=42)[0]
    array([[ 0.77919393,  0.77919393,  0.77919393],
           [-0.77919393, -0.77919393, -0.77919393]])
    """
    x = _checks.array(x, "x")
    return alpha_dropout(x, p, noise_shape=_feature_noise(x.shape, channel_axis), **options)


def feature_alpha_dropout_backward(grad, p: float, *, channel_axis: int = 1, **options):
    """The gradient of :func:`feature_alpha_dropout`; ``**options`` as for
    :func:`alpha_dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.feature_alpha_dropout_backward(np.ones((1, 2, 2)), 0.5, rng=42)[0]
    array([[0.88640489, 0.88640489],
           [0.        , 0.        ]])
    """
    grad = _checks.array(grad, "grad")
    noise = _feature_noise(grad.shape, channel_axis)
    return alpha_dropout_backward(grad, p, noise_shape=noise, **options)


# -- Gaussian dropout ----------------------------------------------------------------------


def gaussian_dropout(
    x: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Multiplicative Gaussian noise: ``x * (1 + sqrt(p / (1 - p)) * z)``, ``z ~ N(0, 1)``,
    like Keras ``GaussianDropout`` (Srivastava et al. 2014, section 10).

    The noise has the mean and variance of inverted dropout's ``keep / (1 - p)``. Element
    ``i`` (flat C order) takes the normal at stream position ``offset + i`` under the
    stream's Gaussian purpose, through the transform in ``docs/random-stream.md``; the
    factor ``1 + sigma * z`` is computed in float64 and rounded to the compute precision,
    so every backend gives the same bits. ``p = 0`` and ``training=False`` return ``x``.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
    p : float
        In ``[0, 1)``: the noise's standard deviation is ``sqrt(p / (1 - p))``.
    rng, offset, training, out, backend
        As for :func:`dropout`.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.gaussian_dropout(np.ones(4), 0.2, rng=42)
    array([2.06384546, 2.08068696, 0.79586458, 0.17012344])
    """
    x = _checks.array(x, "x")
    p = _checks.rate(p, below_one=True)
    training = _checks.flag(training, "training")
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    out = _checks.out(out, x.shape, x.dtype, x)
    choice = backend_for(backend)
    if not training or p == 0.0:
        return evaluate(choice, x, None, None, out)
    return _gaussian(choice, x, _checks.seed(rng), offset, math.sqrt(p / (1.0 - p)), out)


def _gaussian(choice, x, seed, offset, sigma, out) -> np.ndarray:
    y = np.empty(x.shape, _checks.native(x.dtype)) if out is None else out
    n_threads = _threads.for_call(x.size, choice[2])

    def args(first: int, x2: np.ndarray) -> tuple:
        return seed, (offset + first) % U64, x2.shape[1], sigma, n_threads

    if x.size:
        call(choice, lambda k: _layout.run(k.gaussian, [x], y, args))
    return y


def gaussian_dropout_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    rng: RngLike,
    offset: int = 0,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """The gradient of :func:`gaussian_dropout`: ``grad`` times the same noise factor,
    regenerated from the forward call's ``rng`` and ``offset``.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> x = np.arange(1.0, 5.0)
    >>> y = fastdrop.gaussian_dropout(x, 0.2, rng=42)
    >>> g = fastdrop.gaussian_dropout_backward(np.ones(4), 0.2, rng=42)
    >>> bool(np.array_equal(y, x * g))
    True
    """
    grad = _checks.array(grad, "grad")
    p = _checks.rate(p, below_one=True)
    if rng is None:
        raise ValueError("rng= must be the forward call's seed: the noise is drawn again")
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    out = _checks.out(out, grad.shape, grad.dtype, grad)
    choice = backend_for(backend)
    if p == 0.0:
        return evaluate(choice, grad, 1.0, None, out)
    return _gaussian(choice, grad, _checks.seed(rng), offset, math.sqrt(p / (1.0 - p)), out)


# -- fused bias-dropout-add ----------------------------------------------------------------


def _same_kind(a: ArrayT, x: ArrayT, name: str) -> None:
    if _checks.native(a.dtype) != _checks.native(x.dtype):
        raise TypeError(f"{name} must have x's dtype {_checks.native(x.dtype)}, got {a.dtype}")


def _bias(bias: object, x: np.ndarray) -> np.ndarray:
    """``bias`` broadcast to ``x.shape``; an absent bias is ``-0.0``, the exact identity."""
    if bias is None:
        return np.broadcast_to(np.array(IDENTITY, _checks.native(x.dtype)), x.shape)
    b = _checks.array(bias, "bias")
    _same_kind(b, x, "bias")
    _bias_shape(b.shape, x.shape)
    return np.broadcast_to(b.astype(_checks.native(b.dtype), copy=False), x.shape)


def _bias_shape(shape: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
    try:
        if np.broadcast_shapes(shape, full) == full:
            return shape
    except ValueError:
        pass
    raise ValueError(f"bias of shape {shape} does not broadcast to x's shape {full}")


def _add(kernels, x, bias, residual, y, bits, seed, offset, threshold, scale, n_threads) -> None:
    def args(first: int, x2: np.ndarray) -> tuple:
        return seed, (offset + first) % U64, x2.shape[1], threshold, scale, n_threads

    draw = lambda: kernels.mask(bits, 1, x.size, seed, offset, x.size, threshold, n_threads)  # noqa: E731
    run_drawing(kernels.add, [x, bias, residual], y, bits, draw, args)


def dropout_add(
    x: np.typing.ArrayLike,
    residual: np.typing.ArrayLike,
    p: float = 0.5,
    *,
    bias: np.typing.ArrayLike | None = None,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    out: np.ndarray | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``residual + dropout(x + bias)`` in one pass over memory: the fused
    bias-dropout-add of transformer blocks (Megatron-LM).

    The mask is the one :func:`dropout` draws for ``x`` with the same ``(rng, offset,
    p)``. A kept element is ``residual + (x + bias) * scale`` in the compute precision; a
    dropped one is ``residual``, bit for bit, whatever ``x`` or ``bias`` held.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        The sublayer's output.
    residual : array_like
        Same shape and dtype as ``x``.
    p : float
    bias : array_like, optional
        Same dtype as ``x``, broadcastable to its shape (typically ``(hidden,)``).
    rng, offset, training, scaling, return_mask, backend
        As for :func:`dropout`. With ``training=False`` the result is
        ``residual + (x + bias)`` (times ``1 - p`` with classic scaling).
    out : ndarray, optional
        May be ``x`` or ``residual`` itself (``residual += dropout(x + bias)``), but may
        not otherwise overlap an input.

    Returns
    -------
    y : ndarray
    mask : ndarray of uint8
        Only with ``return_mask=True``.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> h = np.full(4, 10.0)
    >>> fastdrop.dropout_add(np.ones(4), h, 0.5, bias=np.full(4, 0.5), rng=42)
    array([13., 10., 10., 10.])
    """
    x = _checks.array(x, "x")
    residual = _checks.array(residual, "residual")
    _same_kind(residual, x, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"residual must have x's shape {x.shape}, got {residual.shape}")
    bias_b = _bias(bias, x)
    p = _checks.rate(p)
    training = _checks.flag(training, "training")
    scaling = _checks.scaling(scaling)
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    out = _checks.out(out, x.shape, x.dtype, x, residual, bias_b)
    return_mask = _checks.flag(return_mask, "return_mask")
    choice = backend_for(backend)

    if training:
        threshold, scale, seed = stream.threshold(p), stream.keep_scale(p, scaling), None
    else:
        threshold, scale, seed = 0, (1.0 - p if scaling == "classic" else 1.0), 0
    seed = _checks.seed(rng) if seed is None else seed
    y = np.empty(x.shape, _checks.native(x.dtype)) if out is None else out
    bits = np.empty((x.size + 7) // 8 if return_mask else 0, np.uint8)
    if x.size:
        n_threads = _threads.for_call(x.size, choice[2])
        args = (x, bias_b, residual, y, bits, seed, offset, threshold, scale, n_threads)
        call(choice, _add, *args)
    return (y, bits) if return_mask else y


def dropout_add_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    bias: np.typing.ArrayLike | None = None,
    mask: np.ndarray | None = None,
    rng: RngLike = None,
    offset: int = 0,
    scaling: str = "inverted",
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The gradients of :func:`dropout_add` with respect to ``x``, ``residual`` and ``bias``.

    Parameters
    ----------
    grad : array_like
        Gradient with respect to the output.
    p, mask, rng, offset, scaling, backend
        As for :func:`dropout_backward`: the forward call's mask or seed.
    bias : array_like, optional
        The forward call's ``bias`` (only its shape is used), or None.
    out : ndarray, optional
        Where to write the gradient for ``x``; may be ``grad`` itself.

    Returns
    -------
    grad_x : ndarray
        ``grad * keep * scale``.
    grad_residual : ndarray
        ``grad`` itself (a copy of it when ``out`` is ``grad``): the residual path is the
        identity.
    grad_bias : ndarray or None
        ``grad_x`` summed over the axes ``bias`` was broadcast along (in float32 for
        float16), in ``grad``'s dtype; None without a bias.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> gx, gr, gb = fastdrop.dropout_add_backward(np.ones((2, 4)), 0.5, bias=np.zeros(4), rng=42)
    >>> gx
    array([[2., 0., 0., 0.],
           [2., 0., 2., 0.]])
    >>> gb
    array([4., 0., 2., 0.])
    """
    grad = _checks.array(grad, "grad")
    shape = None if bias is None else _bias_shape(np.shape(bias), grad.shape)
    # With out=grad, grad's values are overwritten: the residual's gradient keeps a copy.
    grad_residual = grad.copy() if out is not None and np.may_share_memory(out, grad) else grad
    grad_x = dropout_backward(
        grad, p, mask=mask, rng=rng, offset=offset, scaling=scaling, out=out, backend=backend
    )
    return grad_x, grad_residual, None if shape is None else _sum_to(grad_x, shape)


def _sum_to(a: ArrayT, shape: tuple[int, ...]) -> ArrayT:
    """``a`` summed over the axes along which ``shape`` broadcasts to ``a.shape``."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and a.shape[lead + i] != 1
    )
    ctype = _checks.compute_dtype(a.dtype)
    with np.errstate(all="ignore"):  # inf - inf, float16 overflow: as in the kernels, silent
        total = a.sum(axis=axes, dtype=ctype, keepdims=True).reshape(shape).astype(a.dtype)
    return total[...]  # an array: NumPy sums a 0-d array to a scalar
