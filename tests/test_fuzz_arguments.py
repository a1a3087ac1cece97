"""Every public function's arguments, fuzzed: types, ranges, layouts, subclasses, aliasing.

Each call must, on every backend, either return exactly the NumPy reference backend's bits
(and write the same bytes into ``out``), or raise ValueError or TypeError, the same on
every backend, before anything is written or drawn: the caller's arrays unchanged byte for
byte, a Generator, BitGenerator or SeedSequence passed as ``rng`` as it was.

Hypothesis draws *recipes*, plain data that :func:`build` turns into fresh arguments once
per backend, so that every backend gets equal arrays, equal generators and the same
aliasing between ``out`` and the inputs.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st
from strategies import UNBUFFERED, offsets, rates
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop.testing import DTYPES, LAYOUTS, make_array

pytestmark = [
    pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning"),
    # Masked float16 arrays' default fill value, 1e20, overflows when NumPy casts it.
    pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning:numpy.ma.core"),
]

BACKENDS = fastdrop.available_backends()
REFERENCE = "numpy"


class Omit:
    """The recipe that leaves an argument out, so that its default applies."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT = Omit()


# -- recipes ---------------------------------------------------------------------------------
#
# Each argument has recipes that a demanding user would call valid, and ones that are
# mostly refused. A call takes the second kind for none, one or a few of its arguments
# (which ones, hypothesis draws), so that calls which return are common too.

# How an array argument arrives: a plain ndarray, or a list or subclass read as its data;
# or, bad, something fastdrop must refuse.
GOOD_WRAPS = ["ndarray"] * 6 + ["list", "matrix", "recarray"]
BAD_WRAPS = ["masked", "int", "bool", "complex", "object", "longdouble"]
BAD_WRAPS += [f"unbuffered{i}" for i in range(len(UNBUFFERED))]


@st.composite
def array_recipes(draw, dims: tuple[int, int] = (0, 3), wraps=GOOD_WRAPS, max_side: int = 4):
    ndim = draw(st.integers(*dims))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(range(len(DTYPES))))
    layout, seed = draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 99))
    return ("array", shape, dtype, layout, seed, draw(st.sampled_from(wraps)))


def arrays_of(dims: tuple[int, int]) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    """The primary array (x or grad) of a function taking ``dims`` dimensions."""
    bad_dims = (max(dims[0] - 1, 0), dims[1] + 1)
    bad = st.one_of(array_recipes(dims, BAD_WRAPS), array_recipes(bad_dims, GOOD_WRAPS))
    return array_recipes(dims), bad


seeds = st.integers(0, 2**64 - 1)
KEYS = st.one_of(  # every kind of rng that fixes or draws a key
    st.tuples(st.sampled_from(["int", "uint64", "Generator"]), seeds),
    st.tuples(st.sampled_from(["BitGenerator", "SeedSequence"]), seeds),
    st.tuples(st.just("list"), st.lists(st.integers(0, 2**70), max_size=3)),
)
PARAMS = {  # name: (valid recipes, bad recipes)
    "rng": (
        st.one_of(KEYS, KEYS, st.tuples(st.just("None"))),
        st.one_of(
            st.tuples(st.just("RandomState"), st.integers(0, 2**32 - 1)),
            st.tuples(
                st.just("raw"),
                st.sampled_from([-1, 2**64, 1.5, "7", True, np.bool_(False), [-1], [0.5]]),
            ),
        ),
    ),
    "p": (
        st.one_of(rates, st.sampled_from([np.float32(0.25), np.float16(0.5), 0, 1])),
        st.sampled_from([-0.1, 1.5, math.nan, "0.5", True, None, np.array(0.5)]),
    ),
    "offset": (
        st.one_of(offsets, st.just(np.uint64(5))),
        st.sampled_from([-1, 2**64, 1.0, True, None, np.timedelta64(1, "s")]),
    ),
    "flag": (
        st.sampled_from([True, False, np.True_, np.False_]),
        st.sampled_from([None, 0, 1, "yes", np.array([True])]),
    ),
    "scaling": (st.sampled_from(["inverted", "classic"]), st.sampled_from(["upscale", None, 1])),
    "samples": (
        st.sampled_from([None, 0, 1, 2, np.int64(2)]),
        st.sampled_from([-1, 2.0, True, "2"]),
    ),
    # An axis in range (the k-th allowed, counted from the end if negative), or a bad one.
    "axis": (
        st.tuples(st.just("axis"), st.integers(0, 5), st.booleans()),
        st.sampled_from([True, 1.0, None, "1", 9, -9]),
    ),
    "noise_shape": (
        st.one_of(
            st.none(),
            # One pick per axis: the axis's length, 1, or None (its length, Keras-style).
            st.tuples(st.just("fits"), st.lists(st.sampled_from(["n", "1", "None"]), min_size=6)),
        ),
        st.sampled_from([("wrong length",), ("raw", 4), ("raw", (1.0,)), ("raw", (-1,))]),
    ),
    "out": (
        # Where a result may go: a fresh array in any layout, or an input itself (in place).
        st.sampled_from([None, "fresh", "fortran", "strided", "primary", "residual", "disjoint"]),
        st.sampled_from(
            [
                "bias",
                "mask",
                "reversed",
                "shifted",
                "wrong dtype",
                "wrong shape",
                "read-only",
                "matrix",
                "masked",
                "recarray",
                "list",
                "zero stride",
                "byteswapped",
            ]
        ),
    ),
    "mask": (st.just("fits"), st.sampled_from(["short", "int64", "bool", "masked", "list", "2-d"])),
    "residual": (
        st.tuples(st.just("like"), st.integers(0, 99), st.sampled_from(LAYOUTS)),
        array_recipes(wraps=GOOD_WRAPS + BAD_WRAPS),
    ),
    "bias": (
        st.one_of(
            st.none(),
            # The trailing k axes of x, each x's length or 1 as the bits of `ones` say.
            st.tuples(st.just("tail"), st.integers(0, 3), st.integers(0, 7), st.integers(0, 99)),
        ),
        array_recipes(wraps=GOOD_WRAPS + BAD_WRAPS),
    ),
    "shape": (
        st.one_of(st.lists(st.integers(0, 4), max_size=3).map(tuple), st.integers(0, 9)),
        st.sampled_from([(-1,), (2.0,), (True, 2), "3", None, np.array([2, 3])]),
    ),
    "backend": (st.sampled_from(["each"] * 5 + [None]), st.sampled_from(["fortran", 3])),
    "block_size": (
        st.one_of(st.integers(1, 6), st.just(np.int64(3))),
        st.sampled_from([0, -1, 2.0, True, None, "3"]),
    ),
    "gamma_scale": (
        st.sampled_from([1.0, 0.5, 2, 0.0, np.float32(1.5)]),
        st.sampled_from([-1.0, math.inf, math.nan, "1", True, None]),
    ),
}
KIND = {  # arguments that share another's recipes
    "training": "flag",
    "return_mask": "flag",
    "packed": "flag",
    "store_mask": "flag",
    "batchwise": "flag",
    "scale_by_keep": "flag",
    "channel_axis": "axis",
    "time_axis": "axis",
}
# Never left out: the arrays, p (which the backward functions need) and the backend (each
# backend in turn, but for a few bad names and None, "auto").
REQUIRED = {"x", "grad", "shape", "residual", "p", "backend"}


@st.composite
def recipes(draw, names, arrays=None, required=()):
    """A recipe for each of ``names``, bad for a few of them (none a third of the time);
    ``arrays`` are the (valid, bad) recipes of the first, when it is the array worked on.
    Optional arguments are left out (default) a fifth of the time when valid."""
    n_bad = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))
    bad = draw(st.sets(st.sampled_from(names), min_size=n_bad, max_size=n_bad))
    recipe = {}
    for k, name in enumerate(names):
        good, wrong = arrays if k == 0 and arrays else PARAMS[KIND.get(name, name)]
        if name in bad:
            recipe[name] = draw(wrong)
        elif name not in (*REQUIRED, *required) and draw(st.integers(0, 4)) == 0:
            recipe[name] = OMIT
        else:
            recipe[name] = draw(good)
    if "mask" in names and "mask" not in bad:  # a backward call: from a mask or from rng
        from_mask = draw(st.booleans())
        recipe["mask"] = "fits" if from_mask else OMIT
        if "rng" not in bad:
            recipe["rng"] = OMIT if from_mask else draw(KEYS)
        if from_mask and "offset" not in bad:
            recipe["offset"] = OMIT
    return recipe


# -- building arguments from recipes ----------------------------------------------------------


def build_array(recipe):
    _, shape, dtype, layout, seed, wrap = recipe
    a = make_array(shape, DTYPES[dtype], layout, seed)
    if wrap == "ndarray":
        return a
    if wrap == "list":
        return a.tolist()
    if wrap == "matrix":
        return np.asmatrix(a) if a.ndim == 2 else a
    if wrap == "masked":
        masked = np.ma.masked_invalid(a)
        if a.dtype.kind != "f":  # bfloat16: NumPy's default fill value, b"N/A", will not cast
            masked.fill_value = 0
        return masked
    if wrap == "recarray":
        return a.view(np.recarray)
    if wrap.startswith("unbuffered"):
        return np.zeros(shape, UNBUFFERED[int(wrap.removeprefix("unbuffered"))])
    return np.zeros(shape, {"int": int, "bool": bool}.get(wrap, wrap))


def build_rng(recipe):
    kind, *value = recipe
    makers = {
        "int": int,
        "uint64": np.uint64,
        "Generator": np.random.default_rng,
        "BitGenerator": np.random.PCG64,
        "SeedSequence": np.random.SeedSequence,
        "list": list,
        "None": lambda: None,
        "RandomState": np.random.RandomState,
        "raw": lambda v: v,
    }
    return makers[kind](*value)


def build_noise(recipe, shape):
    if recipe[0] == "fits":
        picks = zip(recipe[1], shape, strict=False)  # six picks, for up to six axes
        return tuple({"n": n, "1": 1, "None": None}[c] for c, n in picks)
    if recipe[0] == "wrong length":
        return (*shape, 1)
    return recipe[1]


def build_axis(recipe, name, ndim):
    """The k-th axis that ``name`` may be (a channel axis is never the batch axis 0)."""
    _, k, negative = recipe
    first = 1 if name == "channel_axis" else 0
    axis = first + k % max(ndim - first, 1)
    return axis - ndim if negative else axis


def as_array(value):
    """``value`` as an ndarray, or None where it is not one (a list, say)."""
    return np.ma.getdata(value) if isinstance(value, np.ndarray) else None


def float_type(a: np.ndarray | None):
    """``a``'s dtype (either byte order) where it is a float one fastdrop takes, else float64."""
    return a.dtype if a is not None and a.dtype.char in "efd" else np.float64


def primary_shape(kw: dict, primary: str) -> tuple:
    """The shape the primary argument stands for (a shape, for bernoulli_mask), or ()."""
    value = kw.get(primary)
    if primary == "shape":
        value = (value,) if isinstance(value, int) else value
        return value if isinstance(value, tuple) and all(type(d) is int for d in value) else ()
    a = as_array(value)
    return a.shape if a is not None else ()


def result_kind(kw, primary):
    """The shape and dtype a successful call's result has (float64 when unclear)."""
    a = as_array(kw.get(primary))
    shape, dtype = (() if a is None else a.shape), np.dtype(float_type(a))
    samples = kw.get("samples")
    if type(samples) is int and samples >= 0:
        shape = (samples, *shape)
    return shape, dtype if dtype.isnative else dtype.newbyteorder("=")


def shared(shape, dtype, n_primary, kind):
    """A primary array and an out in one buffer: overlapping by an element, or disjoint."""
    size = math.prod(shape)
    base = np.full(n_primary + size + 1, 3.0, dtype)
    start = 1 if kind == "shifted" else n_primary + 1
    return base[:n_primary], base[start : start + size].reshape(shape)


def build_out(recipe, kw, primary):
    shape, dtype = result_kind(kw, primary)
    fresh = np.full(shape, 7.0, dtype)
    a = as_array(kw.get(primary))
    if recipe == "primary":
        return kw.get(primary)
    if recipe == "reversed" and a is not None:
        return a[::-1] if a.ndim else a
    if recipe in ("shifted", "disjoint") and type(kw.get(primary)) is np.ndarray:
        x = kw[primary]
        flat, out = shared(shape, x.dtype if x.dtype.isnative else dtype, x.size, recipe)
        flat[...] = x.ravel()
        kw[primary] = flat.reshape(x.shape)
        return out
    if recipe in ("residual", "bias") and recipe in kw:
        return kw[recipe]
    mask = kw.get("mask")
    if recipe == "mask" and type(mask) is np.ndarray and fresh.nbytes >= mask.nbytes:
        kw["mask"] = fresh.reshape(-1).view(np.uint8)[: mask.size]  # out's own bytes
        kw["mask"][...] = mask
        return fresh
    others = {
        "fortran": lambda: np.asfortranarray(fresh),
        "strided": lambda: np.repeat(fresh[..., None], 2, axis=-1)[..., 0],
        "wrong dtype": lambda: fresh.astype(np.float32 if dtype == np.float64 else np.float64),
        "wrong shape": lambda: fresh[..., None],
        "read-only": lambda: np.lib.stride_tricks.as_strided(fresh, writeable=False),
        "matrix": lambda: np.asmatrix(fresh) if fresh.ndim == 2 else fresh.view(np.recarray),
        "masked": lambda: np.ma.array(fresh),
        "recarray": lambda: fresh.view(np.recarray),
        "list": fresh.tolist,
        "zero stride": lambda: np.lib.stride_tricks.as_strided(
            fresh, strides=(0,) * fresh.ndim, writeable=True
        ),
        "byteswapped": lambda: fresh.astype(dtype.newbyteorder("S")),
    }
    return others.get(recipe, lambda: fresh)()


def build_mask(recipe, kw, spec):
    """A packed mask for a backward call: the forward call's, or a spoilt one."""
    g = as_array(kw.get("grad"))
    try:
        bits = spec.mask_of(np.zeros(g.shape, g.dtype), kw)
    except (AttributeError, TypeError, ValueError):  # no usable grad or structure: any bytes
        bits = np.arange(3, dtype=np.uint8)
    spoilt = {
        "short": lambda: bits[:-1],
        "int64": lambda: bits.astype(np.int64),
        "bool": lambda: bits.astype(bool),
        "masked": lambda: np.ma.array(bits),
        "list": bits.tolist,
        "2-d": lambda: bits[None],
    }
    return spoilt.get(recipe, lambda: bits)()


def build_bias(recipe, kw):
    if recipe[0] != "tail":
        return build_array(recipe)
    x = as_array(kw.get("x"))
    _, k, ones, seed = recipe
    tail = x.shape[max(x.ndim - k, 0) :] if x is not None else (k,)
    shape = tuple(1 if ones >> i & 1 else n for i, n in enumerate(tail))
    return make_array(shape, float_type(x), seed=seed)


# The order build() makes arguments in: each may need earlier ones.
ORDER = [
    "x",
    "grad",
    "shape",
    "residual",
    "bias",
    "p",
    "rng",
    "offset",
    "training",
    "scaling",
    "noise_shape",
    "samples",
    "channel_axis",
    "time_axis",
    "block_size",
    "gamma_scale",
    "batchwise",
    "scale_by_keep",
    "return_mask",
    "packed",
    "mask",
    "out",
    "backend",
]


def build(spec, recipe) -> dict:
    """Fresh keyword arguments from a recipe, in an order that lets each see the others."""
    kw: dict = {}
    primary = spec.primary
    for name in sorted(recipe, key=ORDER.index):
        r = recipe[name]
        if r is OMIT:
            continue
        if name == "shape":
            kw[name] = r
        elif name == primary or (name == "residual" and r[0] == "array"):
            kw[name] = build_array(r)
        elif name == "residual":
            x = as_array(kw.get(primary))
            kw[name] = [] if x is None else make_array(x.shape, float_type(x), r[2], r[1])
        elif name == "bias":
            kw[name] = None if r is None else build_bias(r, kw)
        elif name == "rng":
            kw[name] = build_rng(r)
        elif name == "noise_shape":
            kw[name] = None if r is None else build_noise(r, primary_shape(kw, primary))
        elif name in ("channel_axis", "time_axis") and isinstance(r, tuple):
            kw[name] = build_axis(r, name, len(primary_shape(kw, primary)))
        elif name == "mask":
            kw[name] = None if r is None else build_mask(r, kw, spec)
        elif name == "out":
            kw[name] = None if r is None else build_out(r, kw, primary)
        else:
            kw[name] = r
    return kw


# -- watching what a call touches ------------------------------------------------------------


def state(value):
    """What a call may change in an argument: an array's bytes, a generator's state."""
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return np.array(np.ma.getdata(value), copy=True)
    if isinstance(value, list | np.ndarray):
        return pickle.dumps(value)
    if isinstance(value, np.random.Generator):
        return pickle.dumps(value.bit_generator.state)
    if isinstance(value, np.random.BitGenerator | np.random.SeedSequence):
        return pickle.dumps(value.state)
    if isinstance(value, np.random.RandomState):
        return pickle.dumps(value.get_state())
    return None


def same_state(a, b, nan_payloads: bool = True) -> None:
    if isinstance(a, np.ndarray):
        assert_bits_equal(a, b, nan_payloads=nan_payloads)
    else:
        assert a == b


@contextlib.contextmanager
def fixed_entropy():
    """rng=None reads OS entropy: made fixed, so its results compare across backends."""
    with mock.patch("os.urandom", lambda n: bytes(range(1, n + 1))):
        yield


@dataclass
class Outcome:
    error: tuple[type, str] | None = None
    result: object = None
    after: dict = field(default_factory=dict)


def outcome(call: Callable[[], object], kw: dict) -> Outcome:
    """Run ``call``; on an error, check that it wrote and drew nothing."""
    before = {name: state(v) for name, v in kw.items()}
    try:
        with fixed_entropy():
            result = call()
    except (ValueError, TypeError) as exc:
        for name, v in kw.items():
            same_state(state(v), before[name])  # nothing written, nothing drawn
        return Outcome(error=(type(exc), str(exc)))
    out = kw.get("out")
    for name, v in kw.items():  # inputs other than out (and what it aliases) are untouched
        if isinstance(v, np.ndarray) and name != "out" and not np.may_share_memory(v, out):
            same_state(state(v), before[name])
    return Outcome(result=result, after={name: state(v) for name, v in kw.items()})


def note(got: Outcome) -> None:
    """Tell hypothesis's statistics how the call ended (returned, or raised what)."""
    event("raised " + got.error[0].__name__ if got.error else "returned")


def assert_same_result(a, b, nan_payloads: bool) -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            assert_same_result(u, v, nan_payloads)
    elif not isinstance(a, np.ndarray):  # None, or a layer's (offset, training, seed)
        assert not isinstance(a, np.generic), f"a NumPy scalar, not an array: {a!r}"
        assert a == b
    else:
        assert type(a) is type(b) is np.ndarray
        assert_bits_equal(a, b, nan_payloads=nan_payloads)


def assert_same_outcome(got: Outcome, want: Outcome, nan_payloads: bool) -> None:
    assert got.error == want.error
    if want.error is None:
        assert_same_result(got.result, want.result, nan_payloads)
        for name, value in want.after.items():  # what out received, what rng gave
            same_state(got.after[name], value, nan_payloads)


# -- the public functions --------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    fn: Callable
    names: tuple[str, ...]  # the arguments; the first is the array (or shape) worked on
    dims: tuple[int, int] = (0, 3)  # the first array's valid dimensions
    mask_of: Callable | None = None  # backward: the forward's packed mask for zeros like grad
    nan_payloads: bool = True  # False where NaN + NaN may give either NaN (dropout_add)
    required: tuple[str, ...] = ()  # keyword arguments without a default

    @property
    def primary(self) -> str:
        return self.names[0]

    @property
    def arrays(self) -> tuple[st.SearchStrategy, st.SearchStrategy]:
        return PARAMS["shape"] if self.primary == "shape" else arrays_of(self.dims)


def forward_mask(forward):
    """``mask_of`` for the backward of ``forward``: its packed mask with the same structure."""

    def mask_of(g, kw):
        options = {k: kw[k] for k in ("noise_shape", "channel_axis", "time_axis") if k in kw}
        return forward(g, 0.5, rng=1, return_mask=True, backend=REFERENCE, **options)[1]

    return mask_of


FORWARD = ("p", "rng", "offset", "training", "out", "backend")
BACKWARD = ("p", "rng", "offset", "mask", "out", "backend")
DROP_BLOCK = (
    "p", "rng", "offset", "backend", "block_size", "gamma_scale", "batchwise", "scale_by_keep",
    "channel_axis",
)  # fmt: skip
SPECS = {
    "dropout": Spec(
        fastdrop.dropout, ("x", *FORWARD, "scaling", "noise_shape", "samples", "return_mask")
    ),
    "dropout_backward": Spec(
        fastdrop.dropout_backward,
        ("grad", *BACKWARD, "scaling", "noise_shape"),
        mask_of=forward_mask(fastdrop.dropout),
    ),
    "bernoulli_mask": Spec(
        fastdrop.bernoulli_mask, ("shape", "p", "rng", "offset", "noise_shape", "packed", "backend")
    ),
    "spatial_dropout": Spec(
        fastdrop.spatial_dropout,
        ("x", *FORWARD, "channel_axis", "scaling", "samples", "return_mask"),
        dims=(3, 5),
    ),
    "spatial_dropout_backward": Spec(
        fastdrop.spatial_dropout_backward,
        ("grad", *BACKWARD, "channel_axis", "scaling"),
        dims=(3, 5),
        mask_of=forward_mask(fastdrop.spatial_dropout),
    ),
    "locked_dropout": Spec(
        fastdrop.locked_dropout, ("x", *FORWARD, "time_axis", "samples", "return_mask"), (1, 3)
    ),
    "locked_dropout_backward": Spec(
        fastdrop.locked_dropout_backward,
        ("grad", *BACKWARD, "time_axis"),
        dims=(1, 3),
        mask_of=forward_mask(fastdrop.locked_dropout),
    ),
    "drop_path": Spec(fastdrop.drop_path, ("x", *FORWARD, "scaling", "return_mask"), (1, 4)),
    "drop_path_backward": Spec(
        fastdrop.drop_path_backward,
        ("grad", *BACKWARD, "scaling"),
        dims=(1, 4),
        mask_of=forward_mask(fastdrop.drop_path),
    ),
    "alpha_dropout": Spec(fastdrop.alpha_dropout, ("x", *FORWARD, "noise_shape", "return_mask")),
    "alpha_dropout_backward": Spec(
        fastdrop.alpha_dropout_backward,
        ("grad", *BACKWARD, "noise_shape"),
        mask_of=forward_mask(fastdrop.alpha_dropout),
    ),
    "feature_alpha_dropout": Spec(
        fastdrop.feature_alpha_dropout, ("x", *FORWARD, "channel_axis", "return_mask"), (2, 4)
    ),
    "feature_alpha_dropout_backward": Spec(
        fastdrop.feature_alpha_dropout_backward,
        ("grad", *BACKWARD, "channel_axis"),
        dims=(2, 4),
        mask_of=forward_mask(fastdrop.feature_alpha_dropout),
    ),
    "gaussian_dropout": Spec(fastdrop.gaussian_dropout, ("x", *FORWARD)),
    "gaussian_dropout_backward": Spec(
        fastdrop.gaussian_dropout_backward,
        ("grad", "p", "rng", "offset", "out", "backend"),
        required=("rng",),
    ),
    "drop_block": Spec(fastdrop.drop_block, ("x", *DROP_BLOCK), dims=(4, 4)),
    "drop_block_backward": Spec(
        fastdrop.drop_block_backward, ("grad", *DROP_BLOCK), dims=(4, 4), required=("rng",)
    ),
    "dropout_add": Spec(
        fastdrop.dropout_add,
        ("x", "residual", *FORWARD, "bias", "scaling", "return_mask"),
        nan_payloads=False,
    ),
    "dropout_add_backward": Spec(
        fastdrop.dropout_add_backward,
        ("grad", *BACKWARD, "bias", "scaling"),
        mask_of=lambda g, kw: fastdrop.dropout_add(g, g, 0.5, rng=1, return_mask=True)[1],
    ),
}


def call_on(spec: Spec, kw: dict, backend: str) -> Callable[[], object]:
    chosen = kw.pop("backend")
    if chosen == "each":
        chosen = backend
    return lambda: spec.fn(**kw, backend=chosen)


def test_every_public_function_is_fuzzed():
    functions = {n for n in fastdrop.__all__ if callable(getattr(fastdrop, n))}
    layers = {n for n in fastdrop.__all__ if isinstance(getattr(fastdrop, n), type)}
    not_fuzzed = {*layers, *SETTINGS, "available_backends", "get_backend", "get_num_threads"}
    assert functions - not_fuzzed == set(SPECS)  # the layers and the settings: tests below


@pytest.mark.parametrize("name", list(SPECS))
@given(data=st.data())
def test_backends_agree_or_reject_up_front(name, data):
    spec = SPECS[name]
    recipe = data.draw(recipes(spec.names, spec.arrays, spec.required), label="recipe")
    outcomes = {}
    for backend in [REFERENCE, *(b for b in BACKENDS if b != REFERENCE)]:
        kw = build(spec, recipe)
        outcomes[backend] = outcome(call_on(spec, kw, backend), kw)
    want = outcomes[REFERENCE]
    note(want)
    for got in outcomes.values():
        assert_same_outcome(got, want, spec.nan_payloads)


# -- the Dropout layer -----------------------------------------------------------------------

LAYER_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("call"), array_recipes()),
        st.tuples(st.just("call"), array_recipes(wraps=BAD_WRAPS)),
        st.tuples(st.just("backward"), st.integers(0, 99)),
        st.tuples(st.sampled_from(["train", "set training"]), st.one_of(*PARAMS["flag"])),
    ),
    min_size=1,
    max_size=4,
)


def layer_state(layer):
    return (layer.offset, layer.training, layer.seed)


def run_layer(options: dict, steps: list) -> list:
    """The outcome of building a layer, then of each step, for the backend in force."""
    kw = {k: build_rng(v) if k == "rng" else v for k, v in options.items() if v is not OMIT}
    if "noise_shape" in kw and kw["noise_shape"] is not None:
        kw["noise_shape"] = build_noise(kw["noise_shape"], (3, 2, 4))
    built = outcome(lambda: fastdrop.Dropout(**kw), kw)
    if built.error:
        return [built]
    layer, log = built.result, [Outcome(result=layer_state(built.result), after=built.after)]
    shape = None
    for step, value in steps:
        before = layer_state(layer)
        if step == "call":
            args = {"x": build_array(value)}
            got = outcome(lambda a=args: layer(a["x"]), args)
            shape = np.shape(np.ma.getdata(args["x"])) if got.error is None else shape
        elif step == "backward" and shape is None:  # no forward call yet: a RuntimeError
            continue
        elif step == "backward":
            args = {"grad": make_array(shape or (2,), np.float64, seed=value)}
            got = outcome(lambda a=args: layer.backward(a["grad"]), args)
        elif step == "train":
            got = outcome(lambda v=value: layer.train(v) and None, {})
        else:
            got = outcome(lambda v=value: setattr(layer, "training", v), {})
        if got.error:
            assert layer_state(layer) == before  # a failed step moves nothing on
        log.append(got)
        log.append(Outcome(result=layer_state(layer)))
    return log


@given(options=recipes(["p", "scaling", "noise_shape", "rng", "store_mask"]), steps=LAYER_STEPS)
def test_dropout_layer_backends_agree_or_reject_up_front(options, steps):
    logs = {}
    for backend in BACKENDS:
        with fastdrop.use_backend(backend):
            logs[backend] = run_layer(options, steps)
    for log in logs.values():
        assert len(log) == len(logs[REFERENCE])
        for got, want in zip(log, logs[REFERENCE], strict=True):
            assert_same_outcome(got, want, nan_payloads=True)


# -- settings and raw Philox -----------------------------------------------------------------

SETTINGS = {
    "set_backend": fastdrop.get_backend,
    "use_backend": fastdrop.get_backend,
    "set_num_threads": fastdrop.get_num_threads,
    "threads": fastdrop.get_num_threads,
}
SETTING_VALUES = st.one_of(
    st.sampled_from(["auto", *BACKENDS, "gpu", "", None, 1.5, True, np.True_]),
    st.integers(-2, 4),
    st.sampled_from([np.int64(2), "2", 2.0]),
)


@pytest.mark.parametrize("name", list(SETTINGS))
@given(value=SETTING_VALUES)
def test_settings_take_a_valid_value_or_change_nothing(name, value):
    fn, current = getattr(fastdrop, name), SETTINGS[name]
    before = current()
    try:
        if name in ("use_backend", "threads"):
            with fn(value):
                assert current() == value
        else:
            fn(value)
            assert current() == value
            fn(before)
    except (ValueError, TypeError):
        pass
    assert current() == before
    assert fastdrop.available_backends() == BACKENDS


WORDS = st.one_of(
    st.tuples(
        st.sampled_from(["uint32", "int64", "uint64", "float64", "bool", "object"]),
        st.lists(st.integers(0, 4), max_size=3).map(tuple),
        st.integers(-1, 2**33),
    ),
    st.sampled_from([None, "abc", 3, [1, 2]]),
)


def build_words(recipe, width):
    if not isinstance(recipe, tuple):
        return recipe
    dtype, lead, value = recipe
    return np.full((*lead, width), value, np.int64).astype(dtype)


@given(counter=WORDS, key=WORDS)
def test_philox_takes_words_or_rejects_them(counter, key):
    kw = {"counter": build_words(counter, 4), "key": build_words(key, 2)}
    got = outcome(lambda: fastdrop.random.philox4x32(**kw), kw)
    if got.error is None:
        assert got.result.dtype == np.uint32 and got.result.shape[-1] == 4


# -- fastdrop.dask ---------------------------------------------------------------------------
#
# The same recipes, with x (and grad, residual) as Dask arrays: where the in-memory call on
# what they hold raises, so does building the graph, before anything is drawn; where it
# returns, the graph computes its result. Not here: out= (Dask has none), and masks and the
# masks return_mask gives (Dask lays them out per chunk; tests/test_dask.py checks them).

DASK_ARRAYS = ("x", "grad", "residual")


def lazy(kw: dict, chunks: int) -> dict:
    """``kw`` with its arrays as Dask arrays of ``chunks`` elements a side (lists as arrays)."""
    import dask.array as da

    for name in DASK_ARRAYS:
        if name in kw:
            value = kw[name] if isinstance(kw[name], np.ndarray) else np.asarray(kw[name])
            # Dask's meta calls a 0-d masked array plain: fastdrop.dask cannot tell.
            assume(not (isinstance(value, np.ma.MaskedArray) and value.ndim == 0))
            kw[name] = da.from_array(value, chunks=chunks)
    return kw


def first(result):
    """The array a dask function's result is compared on: y, or grad_x (not the masks; not
    grad_bias, a Dask reduction that sums in another order)."""
    return result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize("name", [n for n in SPECS if n != "bernoulli_mask"])
@given(data=st.data(), chunks=st.integers(1, 3))
def test_dask_builds_what_memory_computes_or_rejects_up_front(name, data, chunks):
    fdask = pytest.importorskip("fastdrop.dask")
    spec = SPECS[name]
    names = tuple(n for n in spec.names if n not in ("out", "mask"))
    recipe = data.draw(recipes(names, spec.arrays, spec.required), label="recipe")
    if "grad" in names and recipe["rng"] is OMIT:
        recipe["rng"] = ("int", 1)  # no mask here: a backward call needs the forward's seed
    kw = lazy(build(spec, recipe), chunks)
    held = build(spec, recipe)  # fresh generators; the arrays as the Dask arrays hold them
    held.update({n: kw[n].compute() for n in DASK_ARRAYS if n in kw})
    want = outcome(call_on(spec, held, REFERENCE), held)
    got = outcome(call_on(Spec(getattr(fdask, name), spec.names), kw, REFERENCE), kw)
    note(want)
    if want.error or got.error:  # both (which error comes first may differ: not compared)
        assert got.error is not None and want.error is not None, (got.error, want.error)
        return
    computed = np.asarray(first(got.result).compute())  # a 0-d result computes to a scalar
    assert_same_result(computed, first(want.result), spec.nan_payloads)
    if "rng" in want.after:
        assert got.after["rng"] == want.after["rng"]  # drawn from alike, once
