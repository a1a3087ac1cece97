"""PyTorch drop-ins on the CPU: the dropout family of ``torch.nn.functional`` and its
modules, on fastdrop's kernels, with masks drawn again in the backward pass, not stored.

Swap ``torch.nn.Dropout`` for ``fastdrop.torch.Dropout`` (and so on for ``Dropout1d``,
``Dropout2d``, ``Dropout3d``, ``AlphaDropout`` and ``FeatureAlphaDropout``): the same
arguments, ``repr``, ``train()`` and ``eval()``, and they are subclasses of torch's, so
code that looks for ``nn.Dropout`` finds them. ``DropPath`` and ``DropBlock2d`` follow
timm's; ``GaussianDropout`` is Keras's multiplicative noise.

Seeds. Each training call takes one 64-bit Philox key: from ``rng`` when given (an int
is the key itself; a ``torch.Generator`` gives one draw; anything else as
:func:`fastdrop.dropout` takes it), else one draw from torch's default CPU generator,
``torch.empty((), dtype=torch.int64).random_(-2**63, None)`` read as unsigned, so that
``torch.manual_seed`` makes a run reproducible. ``offset`` is 0 unless given. The mask is
then the one fastdrop's NumPy function draws for ``(key, offset, p, shape)``, bit for bit.

Memory. The forward pass saves the key (one 8-byte tensor) for autograd, not a mask; the
backward pass draws the mask again (``fastdrop.dropout_backward`` and its kin).

Tensors. CPU tensors of float16, bfloat16, float32 and float64, of any strides
(``channels_last`` among them), are read in place through NumPy views; the result has the
input's layout (``torch.empty_like``). ``inplace=True`` writes into the input and returns
it. The functions are ``torch.library`` custom ops (``fastdrop::drop``, ``drop_`` and
``drop_backward``), so ``torch.compile(..., fullgraph=True)`` traces them whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

try:
    import torch
    import torch.library  # the ops' registry: a torch without it is no PyTorch
except ImportError as missing:
    raise ImportError('fastdrop.torch needs PyTorch: pip install "fastdrop[torch]"') from missing

from torch import Generator, Tensor

import fastdrop
from fastdrop._contract.stream import U64
from fastdrop._engine import checks, request
from fastdrop._engine.checks import RngLike

__all__ = [
    "AlphaDropout",
    "DropBlock2d",
    "DropPath",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "alpha_dropout",
    "drop_block2d",
    "drop_path",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
    "gaussian_dropout",
]

Rng: TypeAlias = RngLike | Generator
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
SIGN = 1 << 63  # keys and offsets travel through the ops' schema as signed 64-bit ints


# -- the family, on NumPy arrays -------------------------------------------------------------


def _channels(front: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``front`` (dropout or its backward) with one mask element per (sample, channel):
    ``torch.nn.functional.feature_dropout``'s mask, for any rank from 2."""

    def call(a: np.ndarray, p: float, **options: Any) -> np.ndarray:
        return front(a, p, noise_shape=request.feature_noise(a.shape, 1), **options)

    return call


def _no_options(options: Sequence[float]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class _Member:
    """One member of the family on NumPy arrays.

    Attributes
    ----------
    forward, backward : callable
        ``(array, p, *, rng, offset, **keywords) -> array``: fastdrop's NumPy function and
        its backward.
    keywords : callable
        The member's options, floats in the ops' schema, as the keywords of both.
    writes_out : bool
        Whether both take ``out=``; if not, a new result is their own array, and an
        in-place one is copied into ``source``.
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    keywords: Callable[[Sequence[float]], dict[str, Any]] = field(default=_no_options)
    writes_out: bool = True

    def run(
        self,
        gradient: bool,
        source: Tensor,
        p: float,
        options: Sequence[float],
        key: Tensor,
        offset: int,
        inplace: bool = False,
    ) -> Tensor:
        """The forward (or, if ``gradient``, the backward) of ``source`` from the key in
        ``key`` and the signed ``offset``: a new tensor in ``source``'s layout, or
        ``source`` itself, written over, if ``inplace``."""
        front = self.backward if gradient else self.forward
        kw = dict(rng=int(key) % U64, offset=offset % U64, **self.keywords(options))
        a = _numpy(source)
        if not self.writes_out:
            y = front(a, p, **kw)  # a new array, in a's layout
            if not inplace:
                return _tensor(y, source.dtype)
            np.copyto(a, y)
            return source
        target = source if inplace else _empty_like(source)
        front(a, p, out=_numpy(target), **kw)
        return target


MEMBERS = {
    "dropout": _Member(fastdrop.dropout, fastdrop.dropout_backward),
    "feature": _Member(_channels(fastdrop.dropout), _channels(fastdrop.dropout_backward)),
    "alpha": _Member(fastdrop.alpha_dropout, fastdrop.alpha_dropout_backward),
    "feature_alpha": _Member(
        fastdrop.feature_alpha_dropout, fastdrop.feature_alpha_dropout_backward
    ),
    "path": _Member(
        fastdrop.drop_path,
        fastdrop.drop_path_backward,
        lambda options: {"scaling": "inverted" if options[0] else "classic"},
    ),
    "gaussian": _Member(fastdrop.gaussian_dropout, fastdrop.gaussian_dropout_backward),
    "block": _Member(
        fastdrop.drop_block,
        fastdrop.drop_block_backward,
        lambda options: {
            "block_size": int(options[0]),
            "gamma_scale": options[1],
            "batchwise": bool(options[2]),
            "scale_by_keep": bool(options[3]),
        },
        writes_out=False,
    ),
}


def _numpy(t: Tensor) -> np.ndarray:
    """A NumPy view of CPU tensor ``t``, strides and all: no copy."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        try:
            import ml_dtypes
        except ImportError as missing:
            raise TypeError(
                'bfloat16 tensors need ml_dtypes: pip install ml_dtypes (or "fastdrop[torch]")'
            ) from missing
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


HUGE = 1 << 22  # bytes from which NumPy asks the kernel for huge pages


def _tensor(a: np.ndarray, dtype: torch.dtype) -> Tensor:
    """The tensor of ``dtype`` on ``a``'s memory, strides and all (the inverse of
    :func:`_numpy`)."""
    if dtype == torch.bfloat16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _empty_like(t: Tensor) -> Tensor:
    """``torch.empty_like(t)``: its shape, dtype and strides (``t``'s own where ``t`` is
    dense), in memory that NumPy allocates from ``HUGE`` bytes on. NumPy asks the kernel
    for huge pages for such an array, which makes the first touch of a fresh output about
    2.5x faster than in torch's (1e7 float32 elements, here); below, torch's allocator is
    as fast, and 14 us a call quicker to ask."""
    if t.numel() * t.element_size() < HUGE:
        return torch.empty_like(t)
    strides = torch.empty_like(t, device="meta").stride()
    memory = torch.from_numpy(np.empty(t.numel() * t.element_size(), np.uint8))
    # set_, not a view (as_strided): autograd takes a view for an alias of its base.
    return t.new_empty((0,)).set_(memory.untyped_storage(), 0, t.shape, strides)


def _key(seed: int | None) -> Tensor:
    """The call's Philox key as a 0-d int64 tensor: ``seed``, or a draw from torch's
    default CPU generator."""
    if seed is None:
        return torch.empty((), dtype=torch.int64).random_(-SIGN, None)
    return torch.tensor(seed, dtype=torch.int64)


# -- the ops ---------------------------------------------------------------------------------

SEEDED = (torch.Tag.nondeterministic_seeded,)  # never merged with a twin, nor recomputed


def _forward(
    x: Tensor, member: str, p: float, options: list[float], seed: int | None, offset: int
) -> tuple[Tensor, Tensor]:
    """Family ``member`` of ``x`` into a new tensor of ``x``'s layout, and the key: the body
    of ``fastdrop::drop``, which eager calls that autograd does not record run directly."""
    key = _key(seed)
    return MEMBERS[member].run(False, x, p, options, key, offset), key


def _forward_inplace(
    x: Tensor, member: str, p: float, options: list[float], seed: int | None, offset: int
) -> Tensor:
    """Family ``member`` of ``x`` written into ``x``; returns the key: the body of
    ``fastdrop::drop_``."""
    key = _key(seed)
    MEMBERS[member].run(False, x, p, options, key, offset, inplace=True)
    return key


_drop = torch.library.custom_op(
    "fastdrop::drop", _forward, mutates_args=(), device_types="cpu", tags=SEEDED
)
_drop_inplace = torch.library.custom_op(
    "fastdrop::drop_", _forward_inplace, mutates_args=("x",), device_types="cpu", tags=SEEDED
)


def _backward(
    grad: Tensor, member: str, p: float, options: list[float], key: Tensor, offset: int
) -> Tensor:
    """The gradient of ``fastdrop::drop``: the mask drawn again from ``key`` and ``offset``;
    the body of ``fastdrop::drop_backward``."""
    return MEMBERS[member].run(True, grad, p, options, key, offset)


_drop_backward = torch.library.custom_op(
    "fastdrop::drop_backward", _backward, mutates_args=(), device_types="cpu"
)


@_drop.register_fake
def _(x, member, p, options, seed, offset):
    return torch.empty_like(x), x.new_empty((), dtype=torch.int64)


@_drop_inplace.register_fake
def _(x, member, p, options, seed, offset):
    return x.new_empty((), dtype=torch.int64)


@_drop_backward.register_fake
def _(grad, member, p, options, key, offset):
    return torch.empty_like(grad)


def _save(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    """What the backward of ``drop`` and of ``drop_backward`` keeps: the key, a 0-d
    tensor, and the call's arguments; no mask."""
    _, ctx.member, ctx.p, ctx.options, _, ctx.offset = inputs
    key = output[1] if isinstance(output, tuple) else inputs[4]
    ctx.save_for_backward(key)


def _gradient(backward: Callable[..., Tensor]) -> Callable[..., tuple[Tensor | None, ...]]:
    """The autograd formula that runs ``backward`` (the op, or the eager Function). Every
    member's gradient is its mask (or noise) times ``grad``, elementwise: the backward of
    the backward is the backward again."""

    def gradient(ctx: Any, grad: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        (key,) = ctx.saved_tensors
        g = backward(grad, ctx.member, ctx.p, ctx.options, key, ctx.offset)
        return g, None, None, None, None, None

    return gradient


_drop.register_autograd(_gradient(torch.ops.fastdrop.drop_backward), setup_context=_save)
_drop_backward.register_autograd(_gradient(torch.ops.fastdrop.drop_backward), setup_context=_save)


class _EagerBackward(torch.autograd.Function):
    """``fastdrop::drop_backward`` with its autograd formula, for eager calls: through the
    ops, a forward and backward of 64 elements took about 230 us, through these Functions
    about 110 (``torch.nn.Dropout``'s: 35-50)."""

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # grad, member, p, options, key, offset
        _save(ctx, inputs, None)
        return _backward(*inputs)

    backward = staticmethod(_gradient(lambda *a: _EagerBackward.apply(*a)))


class _Eager(torch.autograd.Function):
    """``fastdrop::drop`` with its autograd formula, for eager calls that autograd records
    (``torch.compile`` traces the op)."""

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # x, member, p, options, seed, offset
        y, key = _forward(*inputs)
        _save(ctx, inputs, (y, key))
        return y

    backward = staticmethod(_gradient(_EagerBackward.apply))


# -- the one front of every function ----------------------------------------------------------


def _rate(p: float) -> None:
    if not 0.0 <= p <= 1.0:  # NaN too, which torch's ATen refuses
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _cpu_float(input: Tensor) -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if input.device.type != "cpu":
        raise RuntimeError(
            f"fastdrop.torch runs on CPU tensors, got one on {input.device}: move it with "
            ".cpu(), or use torch.nn.functional's dropout on that device"
        )
    if input.dtype not in DTYPES:
        raise TypeError(
            f"fastdrop.torch takes float16, bfloat16, float32 or float64 tensors, got {input.dtype}"
        )


def _seed(rng: Rng) -> int | None:
    """The key ``rng`` gives, as a signed int for the ops' schema; None: torch's generator
    is drawn from inside the op."""
    if rng is None:
        return None
    if isinstance(rng, Generator):
        return int(torch.empty((), dtype=torch.int64).random_(-SIGN, None, generator=rng))
    return _signed(checks.seed(checks.rng(rng)))


def _signed(value: int) -> int:
    return value - U64 if value >= SIGN else value


def _apply(
    member: str,
    input: Tensor,
    p: float,
    training: bool,
    inplace: bool,
    rng: Rng,
    offset: int,
    options: tuple[float, ...] = (),
    batched: bool = True,
) -> Tensor:
    """Family ``member`` of ``input`` (given a batch axis of 1 if not ``batched``), as
    ``torch.nn.functional`` runs dropout: ``input`` itself when nothing is to drop (eval,
    ``p = 0``, no elements)."""
    _cpu_float(input)
    if not training or p == 0 or input.numel() == 0:
        return input
    x = input if batched else input.unsqueeze(0)
    args = (member, p, list(options), _seed(rng), _signed(checks.u64(offset, "offset")))
    recorded = torch.is_grad_enabled() and input.requires_grad
    compiling = torch.compiler.is_compiling()
    # Eager calls skip the ops' dispatch, tens of microseconds a call: the ops' bodies
    # where autograd does not record (inference, say), autograd.Functions where it does.
    if inplace and not recorded:
        (torch.ops.fastdrop.drop_ if compiling else _forward_inplace)(x, *args)
        return input
    if compiling:
        y = torch.ops.fastdrop.drop(x, *args)[0]
    else:
        y = _Eager.apply(x, *args) if recorded else _forward(x, *args)[0]
    y = y if batched else y.squeeze(0)
    # Autograd takes no formula for a mutating op: the functional one's result, copied
    # back, marks input dirty as an in-place op does.
    return input.copy_(y) if inplace else y


def _warn(message: str) -> None:
    """torch's warning, from eager calls: ``torch.compile`` cannot trace ``warnings.warn``
    into a graph, and would break it there."""
    if not torch.compiler.is_compiling():
        warnings.warn(message, UserWarning, stacklevel=3)


def _feature(input: Tensor, p: float, training: bool) -> None:
    if training and p > 0 and input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")


# -- torch.nn.functional ----------------------------------------------------------------------


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.dropout`` on fastdrop: zero each element with probability
    ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    input : Tensor
        A CPU tensor of float16, bfloat16, float32 or float64, any shape and strides.
    p : float
        Drop probability, in ``[0, 1]``.
    training : bool
        If False, ``input`` itself is returned.
    inplace : bool
        Write into ``input`` and return it.
    rng : int, torch.Generator, numpy Generator, SeedSequence or None
        The key's source (see the module's docstring); None: torch's default generator.
        Under ``torch.compile(fullgraph=True)``, None or an int: drawing from a
        Generator in Python breaks the graph.
    offset : int
        Stream position of the first element, in ``[0, 2**64)``.

    Returns
    -------
    Tensor
        ``fastdrop.dropout(input.numpy(), p, rng=key, offset=offset)``, bit for bit, in
        ``input``'s layout; dropped elements are ``+0.0`` even where ``input`` is inf or NaN.

    Raises
    ------
    ValueError
        For ``p`` outside ``[0, 1]``, torch's message.
    RuntimeError
        For a tensor that is not on the CPU.
    TypeError
        For a tensor of another dtype.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> fastdrop.torch.dropout(torch.ones(8), 0.5, rng=42)
    tensor([2., 0., 0., 0., 2., 0., 2., 0.])
    """
    _rate(p)
    return _apply("dropout", input, p, training, inplace, rng, offset)


def dropout1d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.dropout1d``: zero whole channels of ``(N, C, L)`` or
    unbatched ``(C, L)`` input, each with probability ``p``.

    The mask has one element per (sample, channel), ``fastdrop.spatial_dropout``'s.
    Arguments, returns and errors as for :func:`dropout`; other ranks are a RuntimeError,
    as in torch.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> fastdrop.torch.dropout1d(torch.ones(4, 2), 0.5, rng=42)
    tensor([[2., 2.],
            [0., 0.],
            [0., 0.],
            [0., 0.]])
    """
    _rate(p)
    if input.dim() not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )
    return _apply("feature", input, p, training, inplace, rng, offset, batched=input.dim() == 3)


def dropout2d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.dropout2d``: zero whole channels of ``(N, C, H, W)`` input.

    As in torch, other ranks warn, and a 3-D input is taken as ``(N, C, L)``. Arguments,
    returns and errors as for :func:`dropout`.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> y = fastdrop.torch.dropout2d(torch.ones(1, 4, 2, 2), 0.5, rng=42)
    >>> y[0, :, 0, 0]
    tensor([2., 0., 0., 0.])
    """
    _rate(p)
    if input.dim() not in (3, 4):
        _warn(
            f"dropout2d: Received a {input.dim()}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs)."
        )
    if input.dim() == 3:
        _warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead."
        )
    _feature(input, p, training)
    return _apply("feature", input, p, training, inplace, rng, offset)


def dropout3d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.dropout3d``: zero whole channels of ``(N, C, D, H, W)`` or
    unbatched ``(C, D, H, W)`` input.

    As in torch, other ranks warn and are taken as unbatched. Arguments, returns and
    errors as for :func:`dropout`.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> y = fastdrop.torch.dropout3d(torch.ones(4, 1, 2, 2), 0.5, rng=42)
    >>> y[:, 0, 0, 0]
    tensor([2., 0., 0., 0.])
    """
    _rate(p)
    if input.dim() not in (4, 5):
        _warn(
            f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs)."
        )
    batched = input.dim() == 5
    _feature(input if batched else input.unsqueeze(0), p, training)
    return _apply("feature", input, p, training, inplace, rng, offset, batched=batched)


def alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.alpha_dropout``, for SELU networks: torch's constants,
    ``fastdrop.alpha_dropout``'s bits. ``training`` defaults to False, as in torch.

    Arguments, returns and errors as for :func:`dropout`.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> fastdrop.torch.alpha_dropout(torch.zeros(4, dtype=torch.float64), 0.5, True, rng=42)
    tensor([ 0.7792, -0.7792, -0.7792, -0.7792], dtype=torch.float64)
    """
    _rate(p)
    return _apply("alpha", input, p, training, inplace, rng, offset)


def feature_alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """``torch.nn.functional.feature_alpha_dropout``: alpha dropout of whole channels
    (axis 1). ``training`` defaults to False, as in torch.

    Arguments, returns and errors as for :func:`dropout`.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> x = torch.zeros(1, 2, 3, dtype=torch.float64)
    >>> fastdrop.torch.feature_alpha_dropout(x, 0.5, True, rng=42)[0]
    tensor([[ 0.7792,  0.7792,  0.7792],
            [-0.7792, -0.7792, -0.7792]], dtype=torch.float64)
    """
    _rate(p)
    _feature(input, p, training)
    return _apply("feature_alpha", input, p, training, inplace, rng, offset)


def gaussian_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """Multiplicative Gaussian noise, ``input * (1 + sqrt(p / (1 - p)) * z)``:
    ``fastdrop.gaussian_dropout``, like Keras ``GaussianDropout``.

    Arguments, returns and errors as for :func:`dropout`, but ``p`` must be below 1.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> fastdrop.torch.gaussian_dropout(torch.ones(4, dtype=torch.float64), 0.2, rng=42)
    tensor([2.0638, 2.0807, 0.7959, 0.1701], dtype=torch.float64)
    """
    _rate(p)
    if p == 1:
        raise ValueError("gaussian dropout probability has to be below 1, but got 1")
    return _apply("gaussian", input, p, training, inplace, rng, offset)


def drop_path(
    x: Tensor,
    drop_prob: float = 0.0,
    training: bool = False,
    scale_by_keep: bool = True,
    *,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """Stochastic depth per sample, as ``timm.layers.drop_path``: keep or drop each
    sample's whole residual branch.

    Parameters
    ----------
    x : Tensor
        ``(N, ...)``, as for :func:`dropout`.
    drop_prob : float
        Probability of dropping a sample, in ``[0, 1]``.
    training : bool
        If False (the default, as in timm), ``x`` itself is returned.
    scale_by_keep : bool
        Scale kept samples by ``1 / (1 - drop_prob)``.
    rng, offset
        As for :func:`dropout`.

    Returns
    -------
    Tensor
        ``fastdrop.drop_path``'s result, bit for bit.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> fastdrop.torch.drop_path(torch.ones(4, 2), 0.5, True, rng=42)
    tensor([[2., 2.],
            [0., 0.],
            [0., 0.],
            [0., 0.]])
    """
    _rate(drop_prob)
    return _apply("path", x, drop_prob, training, False, rng, offset, (float(scale_by_keep),))


def drop_block2d(
    x: Tensor,
    drop_prob: float = 0.1,
    block_size: int = 7,
    gamma_scale: float = 1.0,
    with_noise: bool = False,
    inplace: bool = False,
    batchwise: bool = False,
    *,
    scale_by_keep: bool = True,
    rng: Rng = None,
    offset: int = 0,
) -> Tensor:
    """DropBlock, as ``timm.layers.drop_block_2d``: drop ``block_size x block_size``
    regions of each ``(N, C, H, W)`` feature map, with ``fastdrop.drop_block``'s bits.

    Parameters
    ----------
    x : Tensor
        ``(N, C, H, W)``, as for :func:`dropout`.
    drop_prob : float
        Drop probability of an element, in ``[0, 1]``; timm's seed rate follows from it.
    block_size : int
        A block's side (clipped to the map's).
    gamma_scale : float
        timm's adjustment of the seed rate.
    with_noise : bool
        timm's Gaussian fill of the dropped blocks: not implemented, a
        NotImplementedError.
    inplace : bool
        Write into ``x`` and return it.
    batchwise : bool
        One mask for every sample of the batch.
    scale_by_keep : bool
        Scale the kept elements by timm's normalisation, total over kept.
    rng, offset
        As for :func:`dropout`.

    Returns
    -------
    Tensor
        ``fastdrop.drop_block(x, drop_prob, ...)``, bit for bit, in ``x``'s layout.

    Examples
    --------
    >>> import numpy as np, torch, fastdrop.torch
    >>> x = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    >>> y = fastdrop.torch.drop_block2d(x, 0.5, block_size=3, rng=7)
    >>> expected = fastdrop.drop_block(x.numpy(), 0.5, block_size=3, rng=7)
    >>> bool(np.array_equal(y.numpy(), expected))
    True
    """
    _rate(drop_prob)
    if with_noise:
        raise NotImplementedError(
            "drop_block2d(with_noise=True), timm's Gaussian fill of the dropped blocks, is "
            "not implemented: fastdrop's DropBlock drops them to +0.0"
        )
    if x.dim() != 4:
        raise ValueError(f"drop_block2d takes (N, C, H, W) input, got a {x.dim()}-D tensor")
    options = (float(block_size), float(gamma_scale), float(batchwise), float(scale_by_keep))
    return _apply("block", x, drop_prob, True, inplace, rng, offset, options)


# -- torch.nn ---------------------------------------------------------------------------------


class Dropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` on :func:`dropout`: a subclass, with torch's arguments and repr.

    Examples
    --------
    >>> import torch, fastdrop.torch
    >>> layer = fastdrop.torch.Dropout(p=0.5)
    >>> layer
    Dropout(p=0.5, inplace=False)
    >>> torch.equal(layer.eval()(torch.ones(3)), torch.ones(3))
    True
    """

    def forward(self, input: Tensor) -> Tensor:
        return dropout(input, self.p, self.training, self.inplace)


class Dropout1d(torch.nn.Dropout1d):
    """``torch.nn.Dropout1d`` on :func:`dropout1d`.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.Dropout1d(0.2)
    Dropout1d(p=0.2, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(torch.nn.Dropout2d):
    """``torch.nn.Dropout2d`` on :func:`dropout2d`.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.Dropout2d(0.2, inplace=True)
    Dropout2d(p=0.2, inplace=True)
    """

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(torch.nn.Dropout3d):
    """``torch.nn.Dropout3d`` on :func:`dropout3d`.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.Dropout3d()
    Dropout3d(p=0.5, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(torch.nn.AlphaDropout):
    """``torch.nn.AlphaDropout`` on :func:`alpha_dropout` (which, as torch's module does,
    it calls out of place whatever ``inplace`` says).

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.AlphaDropout(0.1)
    AlphaDropout(p=0.1, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(torch.nn.FeatureAlphaDropout):
    """``torch.nn.FeatureAlphaDropout`` on :func:`feature_alpha_dropout` (out of place,
    as torch's).

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.FeatureAlphaDropout(0.1)
    FeatureAlphaDropout(p=0.1, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return feature_alpha_dropout(input, self.p, self.training)


class GaussianDropout(torch.nn.modules.dropout._DropoutNd):
    """Multiplicative Gaussian noise, :func:`gaussian_dropout`, with the arguments and
    repr of torch's dropout modules.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.GaussianDropout(0.1)
    GaussianDropout(p=0.1, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return gaussian_dropout(input, self.p, self.training, self.inplace)


class DropPath(torch.nn.Module):
    """Stochastic depth, as ``timm.layers.DropPath``: :func:`drop_path` in training.

    Parameters
    ----------
    drop_prob : float
        Probability of dropping a sample's branch.
    scale_by_keep : bool
        Scale kept samples by ``1 / (1 - drop_prob)``.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.DropPath(0.1)
    DropPath(drop_prob=0.100)
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class DropBlock2d(torch.nn.Module):
    """DropBlock, as ``timm.layers.DropBlock2d``: :func:`drop_block2d` in training.

    Parameters
    ----------
    drop_prob, block_size, gamma_scale, with_noise, inplace, batchwise, scale_by_keep
        As for :func:`drop_block2d`; ``with_noise=True`` is a NotImplementedError here.

    Examples
    --------
    >>> import fastdrop.torch
    >>> fastdrop.torch.DropBlock2d(0.1, block_size=5)
    DropBlock2d(drop_prob=0.100, block_size=5)
    """

    def __init__(
        self,
        drop_prob: float = 0.1,
        block_size: int = 7,
        gamma_scale: float = 1.0,
        with_noise: bool = False,
        inplace: bool = False,
        batchwise: bool = False,
        scale_by_keep: bool = True,
    ) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.block_size = block_size
        self.gamma_scale = gamma_scale
        self.with_noise = with_noise
        self.inplace = inplace
        self.batchwise = batchwise
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not self.drop_prob:
            return x
        return drop_block2d(
            x, self.drop_prob, self.block_size, self.gamma_scale, self.with_noise,
            self.inplace, self.batchwise, scale_by_keep=self.scale_by_keep,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}, block_size={self.block_size}"
