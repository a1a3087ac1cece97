"""The dropout family on the core: structured masks, alpha and Gaussian dropout, and the
fused bias-dropout-add of transformer blocks.

Each structured helper is :func:`fastdrop.dropout` with a ``noise_shape`` worked out from
the array's shape (``fastdrop._engine.request`` has the rules, which ``fastdrop.dask``
shares), and its backward is :func:`fastdrop.dropout_backward` with the same.
"""

from __future__ import annotations

import numpy as np

from fastdrop._api.core import backward, dropout, dropout_backward
from fastdrop._engine import blocks, checks, request
from fastdrop._engine.checks import RngLike
from fastdrop._engine.plan import Window
from fastdrop._engine.run import run, sum_to


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
    x = checks.array(x, "x")
    return dropout(x, p, noise_shape=request.spatial_noise(x.shape, channel_axis), **options)


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
    grad = checks.array(grad, "grad")
    return dropout_backward(
        grad, p, noise_shape=request.spatial_noise(grad.shape, channel_axis), **options
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
    x = checks.array(x, "x")
    return dropout(x, p, noise_shape=request.time_noise(x.shape, time_axis), **options)


def locked_dropout_backward(grad, p: float, *, time_axis: int = 0, **options):
    """The gradient of :func:`locked_dropout`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.locked_dropout_backward(np.ones((2, 4)), 0.5, rng=42)
    array([[2., 0., 0., 0.],
           [2., 0., 0., 0.]])
    """
    grad = checks.array(grad, "grad")
    noise = request.time_noise(grad.shape, time_axis)
    return dropout_backward(grad, p, noise_shape=noise, **options)


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
    x = checks.array(x, "x")
    return dropout(x, p, noise_shape=request.path_noise(x.shape), **options)


def drop_path_backward(grad, p: float, **options):
    """The gradient of :func:`drop_path`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> fastdrop.drop_path_backward(np.ones((2, 3)), 0.5, rng=42)
    array([[2., 2., 2.],
           [0., 0., 0.]])
    """
    grad = checks.array(grad, "grad")
    return dropout_backward(grad, p, noise_shape=request.path_noise(grad.shape), **options)


# -- alpha dropout -------------------------------------------------------------------------


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
    Kept elements are ``x * a + b`` in the compute precision (float32 for float16,
    bfloat16 and float32, float64 for float64), dropped ones ``a * alpha' + b`` in the
    same precision: a dropped ``inf`` or ``NaN`` gives that finite value. The mask is the
    one :func:`dropout` draws for the same ``(rng, offset, p)``. ``p = 1`` gives zeros, as
    in PyTorch; ``p = 0`` and ``training=False`` return ``x``.

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
    x = checks.array(x, "x")
    req = request.dropout(
        x, p, rng=rng, offset=offset, training=training, noise_shape=noise_shape, out=out,
        return_mask=return_mask, backend=backend, alpha=True,
    )  # fmt: skip
    return run(req, [x]).returned()


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
    grad = checks.array(grad, "grad")
    p, scale = request.alpha_scale(p, grad.dtype)
    return backward(grad, p, scale, mask, rng, offset, noise_shape, out, backend)


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
    x = checks.array(x, "x")
    return alpha_dropout(x, p, noise_shape=request.feature_noise(x.shape, channel_axis), **options)


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
    grad = checks.array(grad, "grad")
    noise = request.feature_noise(grad.shape, channel_axis)
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
    x : array_like of float16, bfloat16, float32 or float64
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
    x = checks.array(x, "x")
    req = request.gaussian(
        x, p, rng=rng, offset=offset, training=training, out=out, backend=backend
    )
    return run(req, [x]).y


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
    grad = checks.array(grad, "grad")
    req = request.gaussian(grad, p, rng=rng, offset=offset, out=out, backend=backend, gradient=True)
    return run(req, [grad]).y


# -- fused bias-dropout-add ----------------------------------------------------------------


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
    x : array_like of float16, bfloat16, float32 or float64
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
    x = checks.array(x, "x")
    residual = checks.array(residual, "residual")
    request.same_kind(residual, x, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"residual must have x's shape {x.shape}, got {residual.shape}")
    if bias is not None:
        bias = checks.array(bias, "bias")
        request.same_kind(bias, x, "bias")
        request.bias_shape(bias.shape, x.shape)
    req = request.add(
        x, residual, bias, p, rng=rng, offset=offset, training=training, scaling=scaling,
        out=out, return_mask=return_mask, backend=backend,
    )  # fmt: skip
    return run(req, [x, residual, bias]).returned()


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
        float16 and bfloat16), in ``grad``'s dtype; None without a bias.

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
    grad = checks.array(grad, "grad")
    shape = None if bias is None else request.bias_shape(np.shape(bias), grad.shape)
    # With out=grad, grad's values are overwritten: the residual's gradient keeps a copy.
    grad_residual = grad.copy() if out is not None and np.may_share_memory(out, grad) else grad
    grad_x = dropout_backward(
        grad, p, mask=mask, rng=rng, offset=offset, scaling=scaling, out=out, backend=backend
    )
    return grad_x, grad_residual, None if shape is None else sum_to(grad_x, shape)


# -- DropBlock -----------------------------------------------------------------------------


def drop_block(
    x: np.typing.ArrayLike,
    p: float = 0.1,
    *,
    block_size: int = 7,
    gamma_scale: float = 1.0,
    batchwise: bool = False,
    scale_by_keep: bool = True,
    channel_axis: int = 1,
    rng: RngLike = None,
    offset: int = 0,
    backend: str | None = None,
) -> np.ndarray:
    """DropBlock (Ghiasi et al. 2018): drop contiguous ``block_size x block_size`` regions
    of convolutional feature maps, like timm's ``drop_block_2d``.

    Each feature map (each sample and channel; with ``batchwise``, each channel, shared by
    the whole batch) of size ``H x W`` takes blocks of ``kh x kw``, ``kh = min(block_size,
    H)`` and ``kw = min(block_size, W)``. A block's top-left corner may be any of the
    ``(H - kh + 1) x (W - kw + 1)`` places that keep the block inside the map (the
    paper's valid region, timm's ``clip_mask_2d``), and each is a *seed* with the
    paper's rate ``gamma = gamma_scale * p * H * W / (kh * kw) / ((H - kh + 1) * (W - kw +
    1))`` (clipped to 1), timm's formula. The seed mask is the drop pattern of
    ``bernoulli_mask(seeds, gamma, rng=rng, offset=offset, packed=False)``, a seed
    where it is False, for ``seeds`` the mask shape with ``H - kh + 1`` and ``W - kw + 1``
    on the spatial axes (and a batch of 1 with ``batchwise``), in ``x``'s axis order: the
    same bits on every backend, from ``(rng, offset)`` alone. Every element of a seed's
    block is dropped (``+0.0``, even where ``x`` held inf or NaN); with
    ``scale_by_keep`` the rest are multiplied by timm's normalisation
    ``numel / (kept + 1e-7)``, ``numel`` and ``kept`` counted exactly over the mask (of
    ``x``'s shape, or of one sample with ``batchwise``; timm's float32 sum agrees below
    ``2**24`` kept elements), computed in float32 as torch
    does (``float32(numel) * (1 / (float32(kept) + float32(1e-7)))``) and rounded to
    ``x``'s dtype; the product with ``x`` is rounded once.

    Given the same seed mask, the result is timm's ``drop_block_2d``, bit for bit: put
    each seed at its block's centre (``kh // 2`` and ``kw // 2`` after the corner) in a
    mask of the map's shape and feed that for timm's Bernoulli draw; timm keeps seeds
    inside ``clip_mask_2d``, grows them with ``max_pool2d`` (stride 1, padding ``k // 2``,
    the first row and column cropped for an even ``k``, as timm does since 1.0.23) and
    scales by the same float32 expression. One difference: a dropped element is ``+0.0``
    where timm computes ``x * 0`` (``-0.0`` for a negative ``x``, NaN for inf or NaN).
    Where timm's versions differ: ``batchwise`` is old timm's flag (one seed mask of
    ``(1, C, H, W)``; current timm has dropped it); masks are per channel, as in old timm
    and in current timm's ``couple_channels=False`` (there is no coupled mode); the block
    clips to each axis on its own, as current timm does (old timm clipped it to
    ``min(block_size, H, W)`` on both, and its ``gamma`` used the unclipped size); the
    valid-centre region is old timm's and the paper's (current timm lets blocks cross
    the edge); ``with_noise`` and ``inplace`` are not offered.

    Parameters
    ----------
    x : array_like of float16, float32 or float64, shape ``(N, C, H, W)`` or ``(N, H, W, C)``
        Other ranks are a ValueError.
    p : float
        The drop probability the seed rate aims at, in ``[0, 1]``; overlapping blocks
        drop a little less. ``p = 0`` returns ``x`` itself, as timm's ``DropBlock2d``
        does.
    block_size : int
        The block's side, at least 1; clipped to ``H`` and ``W``.
    gamma_scale : float
        A finite factor of at least 0 on the seed rate.
    batchwise : bool
        One seed mask for the whole batch, broadcast along axis 0.
    scale_by_keep : bool
        Multiply kept elements by ``numel / (kept + 1e-7)``; else keep them as they are.
    channel_axis : int
        1 for channels first, -1 or 3 for channels last.
    rng, offset, backend
        As for :func:`dropout`; the seed mask starts at stream position ``offset``.

    Returns
    -------
    ndarray
        ``x``'s shape and dtype, native byte order.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> y = fastdrop.drop_block(np.ones((1, 1, 6, 6)), 0.3, block_size=3, rng=5)
    >>> y[0, 0]  # two 3 x 3 blocks; 18 of 36 kept, times 36 / 18
    array([[2., 0., 0., 0., 2., 2.],
           [2., 0., 0., 0., 2., 2.],
           [2., 0., 0., 0., 2., 2.],
           [2., 2., 0., 0., 0., 2.],
           [2., 2., 0., 0., 0., 2.],
           [2., 2., 0., 0., 0., 2.]])
    """
    x = checks.array(x, "x")
    req = request.drop_block(
        x, p, block_size=block_size, gamma_scale=gamma_scale, batchwise=batchwise,
        scale_by_keep=scale_by_keep, channel_axis=channel_axis, rng=rng, offset=offset,
        backend=backend,
    )  # fmt: skip
    return _drop_block(x, req)


def drop_block_backward(
    grad: np.typing.ArrayLike,
    p: float,
    *,
    block_size: int = 7,
    gamma_scale: float = 1.0,
    batchwise: bool = False,
    scale_by_keep: bool = True,
    channel_axis: int = 1,
    rng: RngLike = None,
    offset: int = 0,
    backend: str | None = None,
) -> np.ndarray:
    """The gradient of :func:`drop_block`: ``grad`` times the same block mask and scale,
    drawn again from the forward call's ``rng`` (required) and ``offset``; the other
    arguments are the forward call's.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> x = np.arange(64.0).reshape(1, 1, 8, 8)
    >>> y = fastdrop.drop_block(x, 0.5, block_size=3, rng=7)
    >>> g = fastdrop.drop_block_backward(np.ones_like(x), 0.5, block_size=3, rng=7)
    >>> bool(np.array_equal(y, x * g))
    True
    """
    grad = checks.array(grad, "grad")
    req = request.drop_block(
        grad, p, block_size=block_size, gamma_scale=gamma_scale, batchwise=batchwise,
        scale_by_keep=scale_by_keep, channel_axis=channel_axis, rng=rng, offset=offset,
        backend=backend, gradient=True,
    )  # fmt: skip
    return _drop_block(grad, req)


def _drop_block(x: np.ndarray, req: request.Blocks | request.Evaluate) -> np.ndarray:
    """``x`` times the whole block mask and its scale (or ``x`` itself at ``p = 0``)."""
    if isinstance(req, request.Evaluate):
        return run(req, [x]).y
    flags = blocks.keep(req, Window.whole(req.shape))
    return blocks.apply(req, x, flags, int(np.count_nonzero(flags)))
