"""Layers for NumPy networks, like ``torch.nn.Dropout``: one per member of the family.

Every layer is :class:`Layer` run with a :class:`Member`, the family function it calls,
that function's backward, and the shape of the mask one call draws (the stream
positions it takes). A layer holds a seed and walks its stream; its keyword arguments
are the member's, checked when it is built and passed down unchanged to each call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np

from fastdrop._api.core import dropout, dropout_backward
from fastdrop._api.family import (
    alpha_dropout,
    alpha_dropout_backward,
    drop_block,
    drop_block_backward,
    drop_path,
    drop_path_backward,
    feature_alpha_dropout,
    feature_alpha_dropout_backward,
    gaussian_dropout,
    gaussian_dropout_backward,
    locked_dropout,
    locked_dropout_backward,
    spatial_dropout,
    spatial_dropout_backward,
)
from fastdrop._contract.stream import U64
from fastdrop._engine import checks, request
from fastdrop._engine.checks import RngLike

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """What a layer calls: ``forward(x, p, rng=, offset=, **options)``, its ``backward``
    (the same keywords), and ``noise(shape, options)``, the shape of the mask a call on
    an input of ``shape`` draws. ``trains``: whether ``forward`` takes ``training=False``
    (else eval mode is the identity); ``below_one``: whether ``p = 1`` is refused."""

    forward: Callable[..., Any]
    backward: Callable[..., np.ndarray]
    noise: Callable[[Shape, dict[str, Any]], Shape]
    trains: bool = True
    below_one: bool = False


def _noise_shape(shape: Shape, options: dict[str, Any]) -> Shape:
    """``noise_shape`` (None entries following the input) resolved for ``shape``."""
    return checks.noise_shape(options["noise_shape"], shape) or shape


def _own_shape(shape: Shape, options: dict[str, Any]) -> Shape:
    return shape


def _block_corners(shape: Shape, options: dict[str, Any]) -> Shape:
    geometry = request.block_geometry(
        shape, options["block_size"], options["batchwise"], options["channel_axis"]
    )
    return request.corners(*geometry)


class _Call(NamedTuple):
    """What :meth:`Layer.backward` needs of the last call, as the call was."""

    shape: Shape
    training: bool
    offset: int
    mask: np.ndarray | None
    p: float
    options: dict[str, Any]


def _axis(value: object, name: str) -> int:
    """An axis, checked for its type only: its range depends on the input."""
    if not checks.integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


class Layer:
    """The engine of the layers: a seed, a stream position and a training switch, and the
    calls of a :class:`Member` with the layer's options.

    Each training call draws from the next stream positions, one per element of its mask,
    so successive calls draw fresh masks and two layers built with the same seed replay
    the same sequence. :meth:`backward` redraws the last call's mask from its ``(seed,
    offset)``, unless the layer keeps the packed mask (``store_mask=True``, where the
    member has one).

    Attributes
    ----------
    p : float
        The rate.
    training : bool
        True (the default) draws; False is eval mode, as :meth:`eval` sets.
    seed : int
        The layer's Philox key.
    offset : int
        The stream position the next training call starts from.
    """

    member: ClassVar[Member]

    def __init__(self, p: float, rng: RngLike, store_mask: bool = False, **options: Any) -> None:
        self.p = checks.rate(p, below_one=self.member.below_one)
        for name, value in options.items():
            setattr(self, name, value)
        self._options = tuple(options)
        self.store_mask = checks.flag(store_mask, "store_mask")
        self.training = True
        self._seed = checks.seed(checks.rng(rng))
        self._offset = 0
        self._last: _Call | None = None

    @property
    def training(self) -> bool:
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = checks.flag(mode, "training")

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def offset(self) -> int:
        return self._offset

    def train(self, mode: bool = True) -> Layer:
        """Switch training on (or off with ``mode=False``); returns the layer."""
        self.training = mode
        return self

    def eval(self) -> Layer:
        """Switch training off; returns the layer."""
        return self.train(False)

    def _eval(self, x: np.ndarray, p: float, options: dict[str, Any]) -> np.ndarray:
        if not self.member.trains:
            return x
        return cast(np.ndarray, self.member.forward(x, p, training=False, **options))

    def __call__(self, x: np.typing.ArrayLike, training: bool | None = None) -> np.ndarray:
        """The member on ``x`` from the layer's next stream positions, or its eval mode.

        ``training`` overrides the layer's mode for this call alone, as in Keras (None:
        the layer's own)."""
        x = checks.array(x, "x")
        training = self.training if training is None else checks.flag(training, "training")
        p, options = self.p, {name: getattr(self, name) for name in self._options}
        if not training:
            y = self._eval(x, p, options)
            self._last = _Call(x.shape, False, 0, None, p, options)
            return y
        offset = self._offset
        store = self.store_mask
        extra = {"return_mask": True} if store else {}
        y = self.member.forward(x, p, rng=self._seed, offset=offset, **extra, **options)
        y, mask = y if store else (y, None)
        self._last = _Call(x.shape, True, offset, mask, p, options)
        m = math.prod(self.member.noise(x.shape, options))
        self._offset = (offset + m) % U64
        return cast(np.ndarray, y)

    def backward(self, grad: np.typing.ArrayLike) -> np.ndarray:
        """The gradient with respect to the last call's input, given ``grad`` with respect
        to its output."""
        last = self._last
        if last is None:
            raise RuntimeError("backward() needs a forward call first")
        grad = checks.array(grad, "grad")
        if grad.shape != last.shape:
            raise ValueError(
                f"grad must have the last input's shape {last.shape}, got {grad.shape}"
            )
        if not last.training:  # eval mode is linear: the gradient is the same map
            return self._eval(grad, last.p, last.options)
        if last.mask is not None:
            return self.member.backward(grad, last.p, mask=last.mask, **last.options)
        return self.member.backward(
            grad, last.p, rng=self._seed, offset=last.offset, **last.options
        )

    def __repr__(self) -> str:
        shown = [f"p={self.p}"]
        shown += [
            f"{n}={getattr(self, n)!r}" for n in self._options if getattr(self, n) is not None
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


class Dropout(Layer):
    """A dropout layer, like ``torch.nn.Dropout``: :func:`fastdrop.dropout` with fresh
    masks per call.

    Parameters
    ----------
    p : float
        Drop probability, in ``[0, 1]``.
    scaling : {"inverted", "classic"}
        As for :func:`fastdrop.dropout`; eval mode returns ``x`` (``x * (1 - p)`` with
        classic scaling).
    noise_shape : tuple, optional
        As for :func:`fastdrop.dropout`; None entries follow the input (a varying batch
        size, say), as in Keras.
    rng : int, Generator, BitGenerator, SeedSequence, sequence of int or None
        Where the layer's seed comes from, once, when it is built: as for
        :func:`fastdrop.dropout` (an int is the seed itself, a Generator or BitGenerator
        gives one draw, a SeedSequence or a sequence of ints the same seed every time,
        None OS entropy).
    store_mask : bool
        Keep the packed mask for :meth:`backward` instead of redrawing it.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.Dropout(0.5, rng=42)
    >>> layer(np.ones(4))
    array([2., 0., 0., 0.])
    >>> layer(np.ones(4))  # the next four stream positions: a fresh mask
    array([2., 0., 2., 0.])
    >>> layer.backward(np.ones(4))
    array([2., 0., 2., 0.])
    >>> layer.eval()(np.ones(4))
    array([1., 1., 1., 1.])
    >>> layer(np.ones(4), training=True)  # this call alone
    array([2., 2., 2., 2.])
    """

    member = Member(dropout, dropout_backward, _noise_shape)

    def __init__(
        self,
        p: float = 0.5,
        *,
        scaling: str = "inverted",
        noise_shape: tuple[int | None, ...] | None = None,
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        scaling = checks.scaling(scaling)
        noise_shape = checks.noise_template(noise_shape)
        super().__init__(p, rng, store_mask, scaling=scaling, noise_shape=noise_shape)


class SpatialDropout(Layer):
    """:func:`fastdrop.spatial_dropout` as a layer (``torch.nn.Dropout1d/2d/3d``): whole
    feature maps, fresh per call. ``p``, ``rng``, ``store_mask`` and the eval mode as
    for :class:`Dropout`; ``channel_axis`` and ``scaling`` as for the function.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.SpatialDropout(0.5, rng=42)
    >>> layer(np.ones((1, 4, 2)))[0]
    array([[2., 2.],
           [0., 0.],
           [0., 0.],
           [0., 0.]])
    """

    member = Member(
        spatial_dropout,
        spatial_dropout_backward,
        lambda shape, o: request.spatial_noise(shape, o["channel_axis"]),
    )

    def __init__(
        self,
        p: float = 0.5,
        *,
        channel_axis: int = 1,
        scaling: str = "inverted",
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        channel_axis = _axis(channel_axis, "channel_axis")
        scaling = checks.scaling(scaling)
        super().__init__(p, rng, store_mask, channel_axis=channel_axis, scaling=scaling)


class LockedDropout(Layer):
    """:func:`fastdrop.locked_dropout` as a layer: one mask per sequence, shared by every
    time step, fresh per call. ``p``, ``rng``, ``store_mask`` and the eval mode as for
    :class:`Dropout`; ``time_axis`` and ``scaling`` as for the function.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.LockedDropout(0.5, rng=42)
    >>> layer(np.ones((2, 1, 4)))[:, 0]
    array([[2., 0., 0., 0.],
           [2., 0., 0., 0.]])
    """

    member = Member(
        locked_dropout,
        locked_dropout_backward,
        lambda shape, o: request.time_noise(shape, o["time_axis"]),
    )

    def __init__(
        self,
        p: float = 0.5,
        *,
        time_axis: int = 0,
        scaling: str = "inverted",
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        time_axis = _axis(time_axis, "time_axis")
        scaling = checks.scaling(scaling)
        super().__init__(p, rng, store_mask, time_axis=time_axis, scaling=scaling)


class DropPath(Layer):
    """:func:`fastdrop.drop_path` as a layer, like timm's ``DropPath``: whole samples'
    residual branches, fresh per call. ``p``, ``rng``, ``store_mask`` and the eval mode
    as for :class:`Dropout`; ``scaling="classic"`` is timm's ``scale_by_keep=False``.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.DropPath(0.5, rng=42)
    >>> layer(np.ones((4, 2)))
    array([[2., 2.],
           [0., 0.],
           [0., 0.],
           [0., 0.]])
    """

    member = Member(drop_path, drop_path_backward, lambda shape, o: request.path_noise(shape))

    def __init__(
        self,
        p: float = 0.5,
        *,
        scaling: str = "inverted",
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        super().__init__(p, rng, store_mask, scaling=checks.scaling(scaling))


class AlphaDropout(Layer):
    """:func:`fastdrop.alpha_dropout` as a layer, like ``torch.nn.AlphaDropout``: eval
    mode returns ``x`` itself. ``p``, ``rng`` and ``store_mask`` as for
    :class:`Dropout`; ``noise_shape`` as there (None entries follow the input).

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.AlphaDropout(0.5, rng=42)
    >>> layer(np.zeros(4))
    array([ 0.77919393, -0.77919393, -0.77919393, -0.77919393])
    """

    member = Member(alpha_dropout, alpha_dropout_backward, _noise_shape)

    def __init__(
        self,
        p: float = 0.5,
        *,
        noise_shape: tuple[int | None, ...] | None = None,
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        noise_shape = checks.noise_template(noise_shape)
        super().__init__(p, rng, store_mask, noise_shape=noise_shape)


class FeatureAlphaDropout(Layer):
    """:func:`fastdrop.feature_alpha_dropout` as a layer, like
    ``torch.nn.FeatureAlphaDropout``: alpha dropout of whole channels; eval mode returns
    ``x`` itself. ``p``, ``rng`` and ``store_mask`` as for :class:`Dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.FeatureAlphaDropout(0.5, rng=42)
    >>> layer(np.zeros((1, 2, 3)))[0]
    array([[ 0.77919393,  0.77919393,  0.77919393],
           [-0.77919393, -0.77919393, -0.77919393]])
    """

    member = Member(
        feature_alpha_dropout,
        feature_alpha_dropout_backward,
        lambda shape, o: request.feature_noise(shape, o["channel_axis"]),
    )

    def __init__(
        self,
        p: float = 0.5,
        *,
        channel_axis: int = 1,
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        channel_axis = _axis(channel_axis, "channel_axis")
        super().__init__(p, rng, store_mask, channel_axis=channel_axis)


class GaussianDropout(Layer):
    """:func:`fastdrop.gaussian_dropout` as a layer, like Keras ``GaussianDropout``:
    fresh noise per call, redrawn by :meth:`backward`; eval mode returns ``x`` itself.
    ``p`` is in ``[0, 1)``; ``rng`` as for :class:`Dropout`. There is no packed mask to
    store.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.GaussianDropout(0.2, rng=42)
    >>> layer(np.ones(4))
    array([2.06384546, 2.08068696, 0.79586458, 0.17012344])
    """

    member = Member(gaussian_dropout, gaussian_dropout_backward, _own_shape, below_one=True)

    def __init__(self, p: float = 0.5, *, rng: RngLike = None) -> None:
        super().__init__(p, rng)


class DropBlock(Layer):
    """:func:`fastdrop.drop_block` as a layer, like timm's ``DropBlock2d``: fresh blocks
    per call, redrawn by :meth:`backward`; eval mode (and ``p = 0``) returns ``x``
    itself. Each call takes one stream position per block corner of its seed mask. The
    keywords are the function's; ``rng`` as for :class:`Dropout`.

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> layer = fastdrop.DropBlock(0.3, block_size=3, rng=5)
    >>> y = layer(np.ones((1, 1, 6, 6)))
    >>> int((y == 0).sum()), layer.offset  # two 3 x 3 blocks; 4 x 4 corners drawn
    (18, 16)
    """

    member = Member(drop_block, drop_block_backward, _block_corners, trains=False)

    def __init__(
        self,
        p: float = 0.1,
        *,
        block_size: int = 7,
        gamma_scale: float = 1.0,
        batchwise: bool = False,
        scale_by_keep: bool = True,
        channel_axis: int = 1,
        rng: RngLike = None,
    ) -> None:
        super().__init__(
            p,
            rng,
            block_size=checks.positive(block_size, "block_size"),
            gamma_scale=checks.nonnegative(gamma_scale, "gamma_scale"),
            batchwise=checks.flag(batchwise, "batchwise"),
            scale_by_keep=checks.flag(scale_by_keep, "scale_by_keep"),
            channel_axis=_axis(channel_axis, "channel_axis"),
        )
