"""fastdrop.torch against torch's own semantics and against fastdrop's NumPy functions.

Every family member runs through one table, ``MEMBERS``: its fastdrop.torch function,
its NumPy twin (the specification of its bits), torch's function where torch has one, an
input shape of the rank it takes, and its modules.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import fastdrop

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastdrop.torch")
functional = torch.nn.functional

U64 = 1 << 64
SEED = 1234


class Member(NamedTuple):
    """One member of the family, as the tests see it.

    Attributes
    ----------
    fn : callable
        fastdrop.torch's function, called ``fn(input, p, training, rng=, offset=)``.
    numpy : callable
        Its NumPy twin, ``numpy(array, p, rng=, offset=)``.
    backward : callable
        The twin's backward, ``backward(grad, p, rng=, offset=)``.
    peer : callable or None
        torch's (or timm's) function, called as ``fn`` is, without ``rng`` and ``offset``.
    shape : tuple
        An input shape of the rank the member takes.
    module : type
        fastdrop.torch's module.
    peer_module : type or None
        torch's module.
    mask_axes : int or None
        How many leading axes the mask spans, each mask element a block of the axes after
        them; None: every axis.
    """

    fn: Callable[..., Any]
    numpy: Callable[..., np.ndarray]
    backward: Callable[..., np.ndarray]
    peer: Callable[..., Any] | None
    shape: tuple[int, ...]
    module: type
    peer_module: type | None
    mask_axes: int | None = None


def _unbatched(front: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A spatial NumPy front on an input of a batch of one where it has no batch axis."""
    return lambda a, p, **kw: front(a[None], p, **kw)[0]


def _block(x: Any, p: float, training: bool = True, inplace: bool = False, **kw: Any) -> Any:
    """drop_block2d (of 3 x 3 blocks) called as the others are: timm's has no training."""
    return ft.drop_block2d(x, p, 3, inplace=inplace, **kw) if training else x


MEMBERS = {
    "dropout": Member(
        ft.dropout, fastdrop.dropout, fastdrop.dropout_backward, functional.dropout,
        (6, 5, 7), ft.Dropout, torch.nn.Dropout, None,
    ),
    "dropout1d": Member(
        ft.dropout1d, fastdrop.spatial_dropout, fastdrop.spatial_dropout_backward,
        functional.dropout1d, (40, 9, 6), ft.Dropout1d, torch.nn.Dropout1d, 2,
    ),
    "dropout1d unbatched": Member(
        ft.dropout1d, _unbatched(fastdrop.spatial_dropout),
        _unbatched(fastdrop.spatial_dropout_backward), functional.dropout1d, (300, 6),
        ft.Dropout1d, torch.nn.Dropout1d, 1,
    ),
    "dropout2d": Member(
        ft.dropout2d, fastdrop.spatial_dropout, fastdrop.spatial_dropout_backward,
        functional.dropout2d, (20, 15, 4, 3), ft.Dropout2d, torch.nn.Dropout2d, 2,
    ),
    "dropout3d": Member(
        ft.dropout3d, fastdrop.spatial_dropout, fastdrop.spatial_dropout_backward,
        functional.dropout3d, (10, 30, 2, 3, 2), ft.Dropout3d, torch.nn.Dropout3d, 2,
    ),
    "dropout3d unbatched": Member(
        ft.dropout3d, _unbatched(fastdrop.spatial_dropout),
        _unbatched(fastdrop.spatial_dropout_backward), functional.dropout3d, (300, 2, 3, 2),
        ft.Dropout3d, torch.nn.Dropout3d, 1,
    ),
    "alpha_dropout": Member(
        ft.alpha_dropout, fastdrop.alpha_dropout, fastdrop.alpha_dropout_backward,
        functional.alpha_dropout, (6, 5, 7), ft.AlphaDropout, torch.nn.AlphaDropout,
    ),
    "feature_alpha_dropout": Member(
        ft.feature_alpha_dropout, fastdrop.feature_alpha_dropout,
        fastdrop.feature_alpha_dropout_backward, functional.feature_alpha_dropout,
        (20, 15, 4, 3), ft.FeatureAlphaDropout, torch.nn.FeatureAlphaDropout, 2,
    ),
    "drop_path": Member(
        ft.drop_path, fastdrop.drop_path, fastdrop.drop_path_backward, None, (300, 4, 3),
        ft.DropPath, None, 1,
    ),
    "gaussian_dropout": Member(
        ft.gaussian_dropout, fastdrop.gaussian_dropout, fastdrop.gaussian_dropout_backward,
        None, (6, 5, 7), ft.GaussianDropout, None,
    ),
    "drop_block2d": Member(
        _block, functools.partial(fastdrop.drop_block, block_size=3),
        functools.partial(fastdrop.drop_block_backward, block_size=3), None, (8, 6, 9, 9),
        functools.partial(ft.DropBlock2d, block_size=3), None, None,
    ),
}  # fmt: skip
# Masks of zeros at rate p. Gaussian dropout's is noise, and DropBlock's p is timm's: its
# seed rate follows from p, and its blocks overlap.
DROPPING = [name for name in MEMBERS if name not in ("gaussian_dropout", "drop_block2d")]

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# Layouts of a tensor: each a function of a contiguous tensor giving one of the same values.
LAYOUTS: dict[str, Callable[[Any], Any]] = {
    "contiguous": lambda t: t,
    "channels_last": lambda t: (
        t.permute(0, *range(2, t.dim()), 1)
        .contiguous()
        .permute(0, t.dim() - 1, *range(1, t.dim() - 1))
    ),
    "strided": lambda t: torch.zeros(*(2 * d for d in t.shape), dtype=t.dtype)[
        tuple(slice(None, None, 2) for _ in t.shape)
    ].copy_(t),
    "transposed": lambda t: t.transpose(0, -1).contiguous().transpose(0, -1),
}


def _input(shape: tuple[int, ...], dtype: Any = torch.float32, seed: int = 0) -> Any:
    """Normal values with an inf, a -inf and a NaN."""
    t = torch.from_numpy(np.random.default_rng(seed).standard_normal(shape)).to(dtype)
    t.view(-1)[:3] = torch.tensor([np.inf, -np.inf, np.nan])
    return t


def _array(t: Any) -> np.ndarray:
    """A tensor's values as NumPy's, bfloat16 as ml_dtypes'."""
    if t.dtype == torch.bfloat16:
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.detach().contiguous().numpy()


def _bits(t: Any) -> Any:
    """The bits of a tensor's or an array's values, as a contiguous integer tensor."""
    if isinstance(t, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(t).view(f"i{t.itemsize}"))
    return (
        t.detach()
        .contiguous()
        .view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
    )


def _p(name: str) -> float:
    return 0.2 if name == "gaussian_dropout" else 0.4


# -- the same bits as fastdrop's NumPy functions --------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MEMBERS)
def test_output_is_the_numpy_result_bit_for_bit_in_the_input_layout(name, dtype, layout):
    member = MEMBERS[name]
    x = LAYOUTS[layout](_input(member.shape, dtype))
    y = member.fn(x, _p(name), True, rng=SEED, offset=77)
    expected = member.numpy(_array(x), _p(name), rng=SEED, offset=77)
    assert y.dtype == x.dtype and y.stride() == torch.empty_like(x).stride()
    assert torch.equal(_bits(y), _bits(expected))


@pytest.mark.parametrize("name", MEMBERS)
def test_the_gradient_is_the_numpy_backward_bit_for_bit(name):
    member = MEMBERS[name]
    x = _input(member.shape).requires_grad_()
    grad = _input(member.shape, seed=1)
    member.fn(x, _p(name), True, rng=SEED, offset=5).backward(grad)
    expected = member.backward(grad.numpy(), _p(name), rng=SEED, offset=5)
    assert torch.equal(_bits(x.grad), _bits(expected))


@pytest.mark.parametrize("name", MEMBERS)
def test_gradcheck_and_gradgradcheck(name):
    member = MEMBERS[name]
    shape = tuple(min(d, 3) for d in member.shape)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)

    def fn(t):
        return member.fn(t, _p(name), True, rng=SEED)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_a_key_from_torch_generators_is_one_full_range_int64_draw():
    # The documented draw: torch's default generator, or a torch.Generator given as rng.
    x = _input((64, 32))

    def draw(generator=None):
        t = torch.empty((), dtype=torch.int64).random_(-(2**63), None, generator=generator)
        return int(t) % U64

    torch.manual_seed(3)
    key, following = draw(), draw()
    torch.manual_seed(3)
    y = ft.dropout(x, 0.5)
    assert torch.equal(_bits(y), _bits(fastdrop.dropout(x.numpy(), 0.5, rng=key)))
    assert draw() == following  # the call drew one value, no more
    a, b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(
        _bits(ft.dropout(x, 0.5, rng=a)), _bits(fastdrop.dropout(x.numpy(), 0.5, rng=draw(b)))
    )


def test_manual_seed_replays_and_successive_calls_differ():
    x = torch.ones(1000)
    torch.manual_seed(0)
    first, second = ft.dropout(x), ft.dropout(x)
    torch.manual_seed(0)
    assert torch.equal(ft.dropout(x), first) and torch.equal(ft.dropout(x), second)
    assert not torch.equal(first, second)


def test_rng_takes_numpy_seeds_as_fastdrop_does():
    x = _input((50,))
    for rng in (np.random.default_rng(5), np.random.SeedSequence(5), [1, 2], 2**64 - 1):
        expected = fastdrop.dropout(x.numpy(), 0.3, rng=rng, offset=2**64 - 1)
        if isinstance(rng, np.random.Generator):  # the draw advanced it: draw again
            rng = np.random.default_rng(5)
        y = ft.dropout(x, 0.3, rng=rng, offset=2**64 - 1)
        assert torch.equal(_bits(y), _bits(expected))


# -- torch's semantics ----------------------------------------------------------------------


@pytest.mark.parametrize("name", DROPPING)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_statistics_like_torchs_own_dropout_tests(name, p):
    # Each mask element drops a whole block (an element, a channel, a sample), a fraction
    # p of them (within 5 standard errors), and the kept elements of an input of ones are
    # all one value: torch's 1 / (1 - p), or alpha dropout's affine map.
    member = MEMBERS[name]
    shape = (member.shape[0] * 4, *member.shape[1:])
    y = member.fn(torch.ones(shape, dtype=torch.float64), p, True, rng=SEED)
    dropped = y == y.min() if "alpha" in name else y == 0
    axes = len(shape) if member.mask_axes is None else member.mask_axes
    blocks = dropped.reshape(int(np.prod(shape[:axes])), -1)
    assert torch.equal(blocks.all(1), blocks.any(1))
    n = blocks.shape[0]
    assert abs(blocks[:, 0].double().mean() - p) < 5 * (p * (1 - p) / n) ** 0.5, n
    kept = torch.unique(y[~dropped])
    assert kept.numel() == 1
    if "alpha" not in name:
        assert kept.item() == 1 / (1 - p)


@pytest.mark.parametrize("name", MEMBERS)
def test_eval_and_p_zero_return_the_input_itself(name):
    member = MEMBERS[name]
    x = _input(member.shape)
    assert member.fn(x, 0.5, False) is x and member.fn(x, 0.0, True) is x
    layer = member.module(0.5).eval()
    assert layer(x) is x and not layer.training


@pytest.mark.parametrize("name", DROPPING)
def test_p_one_gives_positive_zeros_even_for_inf_and_nan(name):
    member = MEMBERS[name]
    y = member.fn(_input(member.shape), 1.0, True, rng=SEED)
    assert torch.equal(_bits(y), torch.zeros_like(_bits(y)))


@pytest.mark.parametrize("p", [-0.1, 1.1])
@pytest.mark.parametrize("name", [n for n in MEMBERS if MEMBERS[n].peer is not None])
def test_a_bad_p_is_torchs_value_error(name, p):
    member = MEMBERS[name]
    x = torch.ones(member.shape)
    with pytest.raises(ValueError) as theirs:
        member.peer(x, p, True)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        member.fn(x, p, True)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        member.module(p)


@pytest.mark.parametrize("p", [-0.1, 1.1, float("nan")])
def test_a_bad_p_of_the_members_torch_lacks_is_a_value_error(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        ft.drop_path(torch.ones(3), p, True)
    with pytest.raises(ValueError, match=r"between 0 and 1|below 1"):
        ft.gaussian_dropout(torch.ones(3), p)
    with pytest.raises(ValueError, match="below 1"):
        ft.gaussian_dropout(torch.ones(3), 1.0)


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"])
@pytest.mark.parametrize("rank", range(7))
def test_ranks_raise_and_warn_as_torch(name, rank):
    # torch's errors and warnings, for every rank: the same type and the same message.
    member = MEMBERS[name]
    x = torch.ones((2,) * rank)
    outcomes = []
    for fn in (member.peer, member.fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                y = fn(x, 0.5, True)
            except RuntimeError as error:
                outcome: Any = ("error", str(error).splitlines()[0])
            else:
                outcome = ("shape", tuple(y.shape))
        outcomes.append((outcome, [str(w.message) for w in caught]))
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("name", [n for n in MEMBERS if MEMBERS[n].peer_module is not None])
def test_modules_are_torchs_subclasses_with_its_repr(name):
    member = MEMBERS[name]
    for args in ((), (0.25,), (0.25, True)):
        ours, theirs = member.module(*args), member.peer_module(*args)
        assert isinstance(ours, member.peer_module)
        assert repr(ours) == repr(theirs) and ours.extra_repr() == theirs.extra_repr()


def test_the_modules_of_their_own_have_timm_and_torch_style_reprs():
    assert repr(ft.DropPath(0.1)) == "DropPath(drop_prob=0.100)"
    assert repr(ft.DropBlock2d()) == "DropBlock2d(drop_prob=0.100, block_size=7)"
    assert repr(ft.GaussianDropout(0.2)) == "GaussianDropout(p=0.2, inplace=False)"


@pytest.mark.parametrize("name", MEMBERS)
def test_modules_follow_train_and_eval(name):
    member = MEMBERS[name]
    layer = member.module(_p(name))
    x = torch.ones(member.shape)
    torch.manual_seed(2)
    y = layer(x)
    torch.manual_seed(2)
    assert torch.equal(y, member.fn(x, _p(name), True))
    assert not torch.equal(y, x)
    assert layer.eval()(x) is x and layer.train()(x).shape == x.shape


def test_drop_block2d_refuses_noise_and_other_ranks():
    x = torch.ones(2, 3, 8, 8)
    with pytest.raises(NotImplementedError, match="with_noise=True"):
        ft.drop_block2d(x, 0.1, with_noise=True)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) input, got a 3-D"):
        ft.drop_block2d(x[0], 0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ft.DropBlock2d(1.5)(x)


# -- tensors: in place, no copy, autograd modes, devices and dtypes ---------------------------


@pytest.mark.parametrize("name", [n for n in MEMBERS if n != "drop_path"])  # timm's has none
def test_inplace_writes_into_the_input_and_returns_it(name):
    member = MEMBERS[name]
    x = LAYOUTS["strided"](_input(member.shape))
    expected = member.fn(x, _p(name), True, rng=SEED)
    base = x._base
    assert member.fn(x, _p(name), True, True, rng=SEED) is x
    assert torch.equal(_bits(x), _bits(expected)) and x._base is base


def test_inplace_with_autograd_marks_the_input_dirty():
    leaf = torch.randn(30, requires_grad=True)
    h = leaf * 1
    version = h._version
    y = ft.dropout(h, 0.5, inplace=True, rng=SEED)
    assert y is h and h._version > version
    y.backward(torch.ones(30))
    expected = fastdrop.dropout_backward(np.ones(30, np.float32), 0.5, rng=SEED)
    assert torch.equal(leaf.grad, torch.from_numpy(expected))
    with pytest.raises(RuntimeError) as theirs:
        functional.dropout(leaf, 0.5, inplace=True)
    with pytest.raises(RuntimeError, match=re.escape(str(theirs.value))):
        ft.dropout(leaf, 0.5, inplace=True)


def test_reads_the_tensors_memory_without_a_copy(monkeypatch):
    # The NumPy function gets a view of the tensor's own memory, strides and all.
    seen = []

    def spy(a, p, **kw):
        seen.append(a)
        return fastdrop.dropout(a, p, **kw)

    monkeypatch.setitem(ft.MEMBERS, "dropout", ft._Member(spy, fastdrop.dropout_backward))
    x = LAYOUTS["channels_last"](_input((2, 3, 4, 5)))
    ft.dropout(x, 0.5, rng=SEED)
    assert np.shares_memory(seen[0], x.numpy()) and seen[0].strides == x.numpy().strides


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("inplace", [False, True])
def test_no_grad_and_inference_mode(mode, inplace):
    x = _input((40,))
    expected = ft.dropout(x, 0.5, rng=SEED)
    with getattr(torch, mode)():
        t = x.clone()
        y = ft.dropout(t, 0.5, inplace=inplace, rng=SEED)
    assert torch.equal(_bits(y), _bits(expected)) and (y is t) == inplace and not y.requires_grad


@pytest.mark.parametrize("device", ["meta", "cuda"])
def test_another_device_is_a_clear_error(device):
    try:
        x = torch.ones(4, device=device)
    except (RuntimeError, AssertionError):
        pytest.skip(f"no {device} here")
    with pytest.raises(RuntimeError, match=f"runs on CPU tensors, got one on {device}"):
        ft.dropout(x, 0.5)
    with pytest.raises(RuntimeError, match="runs on CPU tensors"):
        ft.Dropout2d().eval()(x.reshape(1, 4, 1, 1))


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.complex64])
def test_other_dtypes_are_a_type_error(dtype):
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        ft.dropout(torch.ones(4, dtype=dtype), 0.5)


# -- memory: the key is saved, not a mask ----------------------------------------------------


def saved_bytes(layer: Any, x: Any) -> int:
    """Bytes of the tensors autograd saves for ``layer(x)``'s backward."""
    total = 0

    def pack(t: Any) -> Any:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    return total


@pytest.mark.parametrize("name", MEMBERS)
def test_no_input_sized_tensor_is_saved(name):
    member = MEMBERS[name]
    x = torch.randn(member.shape, requires_grad=True)
    assert saved_bytes(member.module(_p(name)), x) == 8  # the key: one int64
    if member.peer_module is not None and member.mask_axes is None:  # torch's mask: x's size
        assert saved_bytes(member.peer_module(_p(name)), x) >= x.numel()


# -- torch.compile ----------------------------------------------------------------------------


def _model() -> Any:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        ft.DropBlock2d(0.2, block_size=3),
        ft.Dropout2d(0.2),
        torch.nn.SELU(),
        ft.FeatureAlphaDropout(0.1),
        ft.DropPath(0.2),
        ft.GaussianDropout(0.1),
        torch.nn.Flatten(),
        ft.AlphaDropout(0.1),
        ft.Dropout(0.3, inplace=True),
        torch.nn.Linear(8 * 6 * 6, 16),
        torch.nn.ReLU(),
        torch.nn.Unflatten(1, (4, 4)),
        ft.Dropout1d(0.2),
    )


def _pass(model: Any, x: Any) -> tuple[Any, Any]:
    torch.manual_seed(11)
    y = model(x)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    return y, grad


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_fullgraph_equals_eager_forward_and_backward(backend):
    # fullgraph=True: any graph break is an error. aot_eager runs torch's own kernels
    # between the ops, so every bit is eager's; inductor fuses SELU and the like into its
    # own code, which rounds otherwise, so there the masks are eager's and the values
    # close. inductor compiles for tens of seconds.
    torch._dynamo.reset()
    model = _model().train()
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last).requires_grad_()
    eager = _pass(model, x)
    compiled = _pass(torch.compile(model, fullgraph=True, backend=backend), x)
    for ours, theirs in zip(compiled, eager, strict=True):
        assert torch.equal(ours == 0, theirs == 0)
        if backend == "aot_eager":
            assert torch.equal(ours, theirs)
        torch.testing.assert_close(ours, theirs)


def test_compiled_without_grad_and_in_eval():
    torch._dynamo.reset()
    model = _model()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.manual_seed(4)
        eager = model(x.clone())
        torch.manual_seed(4)
        assert torch.equal(compiled(x.clone()), eager)
        model.eval()
        assert torch.equal(compiled(x), model(x))


# -- training --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["fastdrop.torch", "torch"])
def test_a_small_model_learns(family):
    nn = ft if family == "fastdrop.torch" else torch.nn
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 64), torch.nn.ReLU(), nn.Dropout(0.2), torch.nn.Linear(64, 4)
    )
    x = torch.randn(128, 16)
    labels = (x[:, :4] > 0).long().sum(1) % 4
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


# -- packaging --------------------------------------------------------------------------------


def test_without_torch_the_import_error_names_the_extra():
    code = "import sys; sys.modules['torch'] = None; import fastdrop.torch"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert 'pip install "fastdrop[torch]"' in result.stderr.splitlines()[-1]


def test_import_fastdrop_does_not_import_torch():
    code = "import sys, fastdrop; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
