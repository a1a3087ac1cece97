"""``fastdrop.Dropout``: a dropout layer for NumPy networks, like ``torch.nn.Dropout``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, cast

import numpy as np

from fastdrop._api.core import dropout, dropout_backward
from fastdrop._contract.stream import U64
from fastdrop._engine import checks
from fastdrop._engine.checks import RngLike


class _Call(NamedTuple):
    """What :meth:`Dropout.backward` needs of the last call, as the call was."""

    shape: tuple[int, ...]
    training: bool
    offset: int
    noise: tuple[int, ...] | None
    mask: np.ndarray | None
    p: float
    scaling: str


class Dropout:
    """A dropout layer with its own stream: successive calls draw fresh masks, and two
    layers built with the same seed replay the same sequence of masks.

    The layer takes one 64-bit seed from ``rng`` when it is built and then walks the
    stream: each training call uses the next ``m`` positions, ``m`` being the mask's size.
    :meth:`backward` redraws the last call's mask from its ``(seed, offset)``, so nothing
    is stored, unless ``store_mask=True`` keeps the packed mask (one bit per element).

    Parameters
    ----------
    p : float
        Drop probability, in ``[0, 1]``.
    scaling : {"inverted", "classic"}
        As for :func:`fastdrop.dropout`.
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

    Attributes
    ----------
    training : bool
        True (the default) drops; False passes inputs through, as :meth:`eval` sets.
    seed : int
        The layer's Philox key.
    offset : int
        The stream position the next training call starts from.

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
    """

    def __init__(
        self,
        p: float = 0.5,
        *,
        scaling: str = "inverted",
        noise_shape: tuple[int | None, ...] | None = None,
        rng: RngLike = None,
        store_mask: bool = False,
    ) -> None:
        self.p = checks.rate(p)
        self.scaling = checks.scaling(scaling)
        self.noise_shape = checks.noise_template(noise_shape)
        rng = checks.rng(rng)
        self.store_mask = checks.flag(store_mask, "store_mask")
        self.training = True
        self._seed = checks.seed(rng)
        self._offset = 0
        # The last call: (shape, training, offset, noise_shape, mask, p, scaling).
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

    def train(self, mode: bool = True) -> Dropout:
        """Switch training on (or off with ``mode=False``); returns the layer."""
        self.training = mode
        return self

    def eval(self) -> Dropout:
        """Switch training off; returns the layer."""
        return self.train(False)

    def _noise(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        if self.noise_shape is None:
            return None
        return checks.noise_shape(self.noise_shape, shape)

    def __call__(self, x: np.typing.ArrayLike) -> np.ndarray:
        """Dropout of ``x`` from the layer's next stream positions (training), or ``x``
        itself (eval; ``x * (1 - p)`` with classic scaling)."""
        x = checks.array(x, "x")
        noise = self._noise(x.shape)
        kw: dict[str, Any] = dict(scaling=self.scaling, noise_shape=noise)
        if not self.training:
            self._last = _Call(x.shape, False, 0, noise, None, self.p, self.scaling)
            return cast(np.ndarray, dropout(x, self.p, training=False, **kw))
        offset = self._offset
        y = dropout(x, self.p, rng=self._seed, offset=offset, return_mask=self.store_mask, **kw)
        y, mask = y if isinstance(y, tuple) else (y, None)
        self._last = _Call(x.shape, True, offset, noise, mask, self.p, self.scaling)
        self._offset = (offset + (x.size if noise is None else math.prod(noise))) % U64
        return y

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
        if not last.training:
            return cast(np.ndarray, dropout(grad, last.p, training=False, scaling=last.scaling))
        if last.mask is not None:
            return dropout_backward(
                grad, last.p, mask=last.mask, scaling=last.scaling, noise_shape=last.noise
            )
        return dropout_backward(
            grad, last.p, rng=self._seed, offset=last.offset, scaling=last.scaling,
            noise_shape=last.noise,
        )  # fmt: skip

    def __repr__(self) -> str:
        extra = "" if self.noise_shape is None else f", noise_shape={self.noise_shape}"
        return f"Dropout(p={self.p}, scaling={self.scaling!r}{extra})"
