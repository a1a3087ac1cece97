"""A public call's arguments, validated, as one typed request.

Each front (the NumPy API in ``fastdrop._api``, and ``fastdrop.dask``) turns its
arguments into a request with one of the functions below, and hands the request to
:func:`fastdrop._engine.run.run` with its arrays. The functions check every argument
before anything is drawn: a call that raises leaves the caller's arrays, and a Generator
passed as ``rng``, as they were. The seed is drawn last, once; so a Dask graph holds a
fixed seed, and every computation of it gives the same answer.

The arrays are not part of a request (a Dask front makes one request for all its
chunks), except ``out``, which only the NumPy front has. The rules that turn a family
member's arguments into kernel parameters (noise shapes, alpha dropout's affine map) live
here too, so that both fronts share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fastdrop._contract.stream import IDENTITY, U64, keep_scale, threshold
from fastdrop._engine import backends, checks, threads

# The SELU fixed point's negative saturation, -lambda * alpha (Klambauer et al. 2017),
# the value torch.nn.functional.alpha_dropout sets dropped elements to before its affine.
ALPHA_PRIME = -1.7580993408473766


class ArrayLike(Protocol):
    """What a request is checked against: an ndarray, or a Dask array (shape and dtype)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...


@dataclass(slots=True)
class Stream:
    """Where a mask is drawn from: the Philox key, the stream position of the whole
    array's first element, and the keep threshold (keep iff the word is at least it)."""

    seed: int
    offset: int
    threshold: int

    def sample(self, s: int, size: int) -> Stream:
        """The stream of sample ``s`` of ``size``-element masks: ``s * size`` positions on."""
        return Stream(self.seed, (self.offset + s * size) % U64, self.threshold)


@dataclass(slots=True)
class Affine:
    """What a kernel makes of an element: kept, ``x * scale + shift``; dropped, ``fill``."""

    scale: float
    shift: float = IDENTITY
    fill: float = 0.0


@dataclass(slots=True)
class Call:
    """What every request has: the backend asked for (``"auto"`` or a name)."""

    backend: str


@dataclass(slots=True)
class Sampled(Call):
    """What a result of dropout's shape has, drawn or in eval mode: ``noise``, the mask's
    shape when it broadcasts (None: the array's); ``samples``, None for one result of the
    array's shape or ``k`` for ``(k, *shape)``; whether the packed mask is returned; and
    where the result goes (None: a new array)."""

    noise: tuple[int, ...] | None
    samples: int | None
    return_mask: bool
    out: np.ndarray | None


@dataclass(slots=True)
class Drop(Sampled):
    """Draw a mask and apply it: dropout, alpha dropout, and a backward that redraws."""

    stream: Stream
    affine: Affine


@dataclass(slots=True)
class Evaluate(Sampled):
    """Eval mode: the array itself (``factor`` None, no ``out``, no samples), else the array
    or ``array * factor`` written once per sample; a returned mask keeps every element."""

    factor: float | None


@dataclass(slots=True)
class FromMask(Call):
    """``keep ? grad * scale : +0.0`` with ``keep`` read from a packed mask, the call's
    second array (of ``noise`` elements when that is given, broadcast)."""

    scale: float
    noise: tuple[int, ...] | None
    out: np.ndarray | None


@dataclass(slots=True)
class Noise(Call):
    """Gaussian dropout: ``x * (1 + sigma * z)``, ``z`` the normal at each position."""

    seed: int
    offset: int
    sigma: float
    out: np.ndarray | None


@dataclass(slots=True)
class Add(Call):
    """The fused bias-dropout-add: ``keep ? residual + (x + bias) * scale : residual``."""

    stream: Stream
    scale: float
    return_mask: bool
    out: np.ndarray | None


@dataclass(slots=True)
class Mask(Call):
    """The keep-mask of a window: packed (bits in the window's C order) or ``bool``,
    broadcast from ``noise`` when that is given."""

    stream: Stream
    noise: tuple[int, ...] | None
    packed: bool


Request = Drop | Evaluate | FromMask | Noise | Add | Mask


@dataclass(slots=True)
class Blocks(Call):
    """DropBlock, run by ``fastdrop._engine.blocks``: a block seed at each corner drawn
    from ``stream`` (a seed where an element of the Bernoulli mask of shape
    :attr:`seeds` drops), each grown into a ``kernel`` block of the keep mask of
    ``shape``; kept elements are multiplied by timm's normalisation when
    ``scale_by_keep``, else by 1."""

    stream: Stream
    shape: tuple[int, ...]  # the keep mask's: x's, or with a batch of 1 when batchwise
    axes: tuple[int, int]  # the spatial axes
    kernel: tuple[int, int]  # the block's extent along each, clipped to the array
    scale_by_keep: bool

    @property
    def seeds(self) -> tuple[int, ...]:
        return corners(self.shape, self.axes, self.kernel)


def backend_named(backend: object) -> str:
    """The backend in force for ``backend=backend``, once it can run here. It also reads
    the thread setting, so that a bad ``FASTDROP_NUM_THREADS`` fails before a draw."""
    threads.get_num_threads()
    name = backends.requested(backend)
    backends.resolve(name)
    return name


def dropout(
    x: ArrayLike,
    p: object,
    *,
    rng: object,
    offset: object,
    training: object,
    scaling: object = "inverted",
    noise_shape: object = None,
    samples: object = None,
    out: object = None,
    return_mask: object = False,
    backend: object = None,
    alpha: bool = False,
) -> Drop | Evaluate:
    """The request of :func:`fastdrop.dropout` (or, with ``alpha``, of
    :func:`fastdrop.alpha_dropout`, whose ``p = 0`` is eval mode) on ``x``."""
    p = checks.rate(p)
    training = checks.flag(training, "training")
    scaling = checks.scaling(scaling)
    seed_from = checks.rng(rng)
    start = checks.u64(offset, "offset")
    noise = checks.noise_shape(noise_shape, x.shape)
    samples = checks.samples(samples)
    return_mask = checks.flag(return_mask, "return_mask")
    shape = x.shape if samples is None else (samples, *x.shape)
    target = checks.out(out, shape, x.dtype, x)
    name = backend_named(backend)
    if not training or (alpha and p == 0.0):
        factor = 1.0 - p if scaling == "classic" else None
        return Evaluate(name, noise, samples, return_mask, target, factor)
    affine = alpha_affine(p, x.dtype) if alpha else Affine(keep_scale(p, scaling))
    stream = Stream(checks.seed(seed_from), start, threshold(p))
    return Drop(name, noise, samples, return_mask, target, stream, affine)


def backward(
    grad: ArrayLike,
    p: float,
    scale: float,
    *,
    mask: ArrayLike | None,
    rng: object,
    offset: object,
    noise: tuple[int, ...] | None,
    out: object = None,
    backend: object = None,
) -> Drop | FromMask:
    """The request of a dropout-like backward on ``grad``: redraw the mask from ``rng``
    and ``offset``, or read it from ``mask`` (which the front has checked)."""
    start = checks.u64(offset, "offset")
    if (mask is None) == (rng is None):
        raise ValueError("give exactly one of mask= and rng= (the forward call's seed)")
    if mask is not None and start != 0:
        raise ValueError("offset= belongs with rng=; a mask is already positioned")
    seed_from = None if mask is not None else checks.rng(rng)
    read = (grad,) if mask is None else (grad, mask)  # out may be grad, but may not touch mask
    target = checks.out(out, grad.shape, grad.dtype, *read)
    name = backend_named(backend)
    if mask is not None:
        return FromMask(name, scale, noise, target)
    stream = Stream(checks.seed(seed_from), start, threshold(p))
    return Drop(name, noise, None, False, target, stream, Affine(scale))


def gaussian(
    x: ArrayLike,
    p: object,
    *,
    rng: object,
    offset: object,
    training: object = True,
    out: object = None,
    backend: object = None,
    gradient: bool = False,
) -> Noise | Evaluate:
    """The request of :func:`fastdrop.gaussian_dropout` on ``x`` (with ``gradient``, of its
    backward, whose ``p = 0`` gives ``x * 1.0`` rather than ``x`` itself)."""
    p = checks.rate(p, below_one=True)
    training = checks.flag(training, "training")
    if gradient and rng is None:
        raise ValueError("rng= must be the forward call's seed: the noise is drawn again")
    seed_from = checks.rng(rng)
    start = checks.u64(offset, "offset")
    target = checks.out(out, x.shape, x.dtype, x)
    name = backend_named(backend)
    if not training or p == 0.0:
        return Evaluate(name, None, None, False, target, 1.0 if gradient else None)
    return Noise(name, checks.seed(seed_from), start, math.sqrt(p / (1.0 - p)), target)


def add(
    x: ArrayLike,
    residual: ArrayLike,
    bias: ArrayLike | None,
    p: object,
    *,
    rng: object,
    offset: object,
    training: object,
    scaling: object,
    out: object = None,
    return_mask: object = False,
    backend: object = None,
) -> Add:
    """The request of :func:`fastdrop.dropout_add`, once ``residual`` and ``bias`` are
    checked to fit ``x`` (:func:`same_kind`, :func:`bias_shape`). Out of training, every
    element is kept and scaled by 1 (``1 - p`` with classic scaling)."""
    p = checks.rate(p)
    training = checks.flag(training, "training")
    scaling = checks.scaling(scaling)
    seed_from = checks.rng(rng)
    start = checks.u64(offset, "offset")
    inputs = (x, residual) if bias is None else (x, residual, bias)
    target = checks.out(out, x.shape, x.dtype, *inputs)
    return_mask = checks.flag(return_mask, "return_mask")
    name = backend_named(backend)
    if not training:
        scale = 1.0 - p if scaling == "classic" else 1.0
        return Add(name, Stream(0, 0, 0), scale, return_mask, target)
    stream = Stream(checks.seed(seed_from), start, threshold(p))
    return Add(name, stream, keep_scale(p, scaling), return_mask, target)


def mask(
    shape: tuple[int, ...],
    p: object,
    *,
    rng: object,
    offset: object,
    noise_shape: object,
    packed: object,
    backend: object,
) -> Mask:
    """The request of :func:`fastdrop.bernoulli_mask` for an array of ``shape``."""
    p = checks.rate(p)
    seed_from = checks.rng(rng)
    start = checks.u64(offset, "offset")
    noise = checks.noise_shape(noise_shape, shape)
    packed = checks.flag(packed, "packed")
    name = backend_named(backend)
    return Mask(name, Stream(checks.seed(seed_from), start, threshold(p)), noise, packed)


def drop_block(
    x: ArrayLike,
    p: object,
    *,
    block_size: object,
    gamma_scale: object,
    batchwise: object,
    scale_by_keep: object,
    channel_axis: object,
    rng: object,
    offset: object,
    backend: object,
    gradient: bool = False,
) -> Blocks | Evaluate:
    """The request of :func:`fastdrop.drop_block` on ``x`` (with ``gradient``, of its
    backward, which needs the forward call's ``rng``). ``p = 0`` is eval mode: ``x``
    itself, as timm's ``DropBlock2d`` returns it."""
    p = checks.rate(p)
    gamma_scale = checks.nonnegative(gamma_scale, "gamma_scale")
    scale_by_keep = checks.flag(scale_by_keep, "scale_by_keep")
    shape, axes, (kh, kw) = block_geometry(x.shape, block_size, batchwise, channel_axis)
    if gradient and rng is None:
        raise ValueError("rng= must be the forward call's seed: the blocks are drawn again")
    seed_from = checks.rng(rng)
    start = checks.u64(offset, "offset")
    name = backend_named(backend)
    if p == 0.0:
        return Evaluate(name, None, None, False, None, None)
    h, w = (shape[a] for a in axes)
    gamma = 0.0  # an empty feature map has no seeds
    if h and w:  # timm's seed rate, operation for operation
        gamma = float(gamma_scale * p * h * w) / float(kh * kw) / float((h - kh + 1) * (w - kw + 1))
    stream = Stream(checks.seed(seed_from), start, threshold(min(gamma, 1.0)))
    return Blocks(name, stream, shape, axes, (kh, kw), scale_by_keep)


# -- the family's rules ------------------------------------------------------------------


def alpha_affine(p: float, dtype: np.dtype) -> Affine:
    """Alpha dropout's map: kept, ``a * x + b``; dropped, ``a * alpha' + b`` computed in the
    compute precision of ``dtype``."""
    if p == 1.0:  # the limit of a * alpha' + b as p -> 1, and torch's answer
        return Affine(0.0, IDENTITY, 0.0)
    a = ((1.0 - p) * (1.0 + p * ALPHA_PRIME**2)) ** -0.5
    b = -a * ALPHA_PRIME * p
    ctype = checks.compute_dtype(dtype)
    return Affine(a, b, float(ctype(a) * ctype(ALPHA_PRIME) + ctype(b)))


def alpha_scale(p: object, dtype: np.dtype) -> tuple[float, float]:
    """``(p, a)``: ``p`` checked, and the gradient's factor of alpha dropout."""
    rate = checks.rate(p)
    return rate, (alpha_affine(rate, dtype).scale if rate else 1.0)


def _channel_noise(shape: tuple[int, ...], channel_axis: object, name: str, ndims: range):
    if len(shape) not in ndims:
        raise ValueError(
            f"{name} expects an array of {ndims.start} to {ndims.stop - 1} dimensions "
            f"(batch, channels and spatial axes), got shape {shape}"
        )
    c = checks.axis(channel_axis, len(shape), "channel_axis")
    if c == 0:
        raise ValueError("channel_axis cannot be 0: axis 0 is the batch axis")
    return tuple(d if i in (0, c) else 1 for i, d in enumerate(shape))


def spatial_noise(shape: tuple[int, ...], channel_axis: object) -> tuple[int, ...]:
    """Spatial dropout's mask shape: one element per (sample, channel)."""
    return _channel_noise(shape, channel_axis, "spatial_dropout", range(3, 6))


def feature_noise(shape: tuple[int, ...], channel_axis: object) -> tuple[int, ...]:
    """Feature alpha dropout's mask shape: one element per (sample, channel)."""
    return _channel_noise(shape, channel_axis, "feature_alpha_dropout", range(2, 65))


def time_noise(shape: tuple[int, ...], time_axis: object) -> tuple[int, ...]:
    """Locked dropout's mask shape: the array's, with the time axis 1."""
    t = checks.axis(time_axis, max(len(shape), 1), "time_axis") if shape else None
    if t is None:
        raise ValueError("locked_dropout needs an array with a time axis, got a 0-d array")
    return tuple(1 if i == t else d for i, d in enumerate(shape))


def path_noise(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop path's mask shape: one element per sample."""
    if not shape:
        raise ValueError("drop_path needs an array with a batch axis, got a 0-d array")
    return (shape[0],) + (1,) * (len(shape) - 1)


def block_geometry(
    shape: tuple[int, ...], block_size: object, batchwise: object, channel_axis: object
) -> tuple[tuple[int, ...], tuple[int, int], tuple[int, int]]:
    """DropBlock's keep mask shape (``shape``, with a batch of 1 when batchwise), spatial
    axes and block extent along them (``block_size`` clipped to each)."""
    size = checks.positive(block_size, "block_size")
    batchwise = checks.flag(batchwise, "batchwise")
    axes = block_axes(shape, channel_axis)
    mask = (1, *shape[1:]) if batchwise else tuple(shape)
    return mask, axes, (min(size, mask[axes[0]]), min(size, mask[axes[1]]))


def corners(
    shape: tuple[int, ...], axes: tuple[int, int], kernel: tuple[int, int]
) -> tuple[int, ...]:
    """The shape of DropBlock's seed mask: one element per block corner that keeps the
    whole block inside the mask of ``shape`` (``n - k + 1`` along a spatial axis of
    ``n``)."""
    dims = list(shape)
    for a, k in zip(axes, kernel, strict=True):
        dims[a] = dims[a] - k + 1 if dims[a] else 0
    return tuple(dims)


def block_axes(shape: tuple[int, ...], channel_axis: object) -> tuple[int, int]:
    """DropBlock's spatial axes: the two of a 4-d array that are neither the batch axis 0
    nor the channel axis, 1 (channels first) or 3 (channels last)."""
    if len(shape) != 4:
        raise ValueError(
            f"drop_block expects a 4-d array, (N, C, H, W) or (N, H, W, C), got shape {shape}"
        )
    c = checks.axis(channel_axis, 4, "channel_axis")
    if c not in (1, 3):
        raise ValueError(
            f"channel_axis must be 1 (channels first) or -1 or 3 (channels last), got "
            f"{channel_axis}: axis 0 is the batch axis, and the spatial axes are adjacent"
        )
    return (2, 3) if c == 1 else (1, 2)


def same_kind(a: ArrayLike, x: ArrayLike, name: str) -> None:
    """Reject an ``a`` whose dtype is not ``x``'s (either byte order)."""
    if checks.native(a.dtype) != checks.native(x.dtype):
        raise TypeError(f"{name} must have x's dtype {checks.native(x.dtype)}, got {a.dtype}")


def bias_shape(shape: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
    """``shape``, once a bias of it broadcasts to ``full``."""
    try:
        if np.broadcast_shapes(shape, full) == full:
            return shape
    except ValueError:
        pass
    raise ValueError(f"bias of shape {shape} does not broadcast to x's shape {full}")
