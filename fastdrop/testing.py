"""Case tables and awkward inputs shared by fastdrop's tests and benchmarks.

One table drives the correctness tests, the asv suite, the pytest-benchmark suite and
``python -m fastdrop``, so what is measured is what is tested.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

import fastdrop
from fastdrop._engine import backends as _backends
from fastdrop._engine import threads as _threads

DTYPES = (np.float16, np.float32, np.float64)
RATES = (0.0, 0.1, 0.5, 0.9, 1.0)
BENCH_RATES = (0.1, 0.5, 0.9)
BENCH_SIZES = (1_000, 100_000, 10_000_000, 100_000_000)
LAYOUTS = ("C", "F", "strided", "reversed", "byteswapped", "sliced", "transposed")

# The fastest the hardware can stream x into y: dropout's lower bound.
BOUND = "scale-copy"
# The NumPy backend is the specification, not a fast path: benchmarks stop at this size.
REFERENCE_LIMIT = 100_000

Key = TypeVar("Key", bound=Hashable)  # names the rows of best_times


def make_array(shape: tuple[int, ...], dtype: type, layout: str = "C", seed: int = 0) -> np.ndarray:
    """An array of logical ``shape`` and ``dtype`` laid out in memory as ``layout``.

    Values are normal with a sprinkling of ``inf``, ``-inf``, ``nan`` and ``-0.0``.
    Layouts: ``"C"``, ``"F"`` (Fortran), ``"strided"`` (every other element of a larger
    buffer along each axis), ``"reversed"`` (negative strides), ``"byteswapped"``
    (non-native byte order), ``"sliced"`` (a slice of a larger buffer along axis 1, so
    the leading axes do not collapse), ``"transposed"`` (a transposed C array).
    """
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    values: np.ndarray = (rng.standard_normal(n) * 4).astype(dtype)
    if n:
        special = rng.integers(0, n, size=max(1, n // 16))
        values[special] = rng.choice(np.array([np.inf, -np.inf, np.nan, -0.0], dtype), special.size)
    x = values.reshape(shape)
    if layout == "C" or (x.ndim == 0 and layout != "byteswapped"):
        return x
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        big: np.ndarray = np.zeros(tuple(2 * d for d in shape), dtype)
        view = big[tuple(slice(None, None, 2) for _ in shape)]
        view[...] = x
        return view
    if layout == "reversed":
        return np.ascontiguousarray(x[tuple(slice(None, None, -1) for _ in shape)])[
            tuple(slice(None, None, -1) for _ in shape)
        ]
    if layout == "byteswapped":
        return x.astype(x.dtype.newbyteorder("S"))
    if layout == "sliced":
        if x.ndim < 2:
            return make_array(shape, dtype, "strided", seed)
        pad = list(shape)
        pad[1] += 3
        big = np.zeros(pad, dtype)
        view = big[:, 1 : 1 + shape[1]]
        view[...] = x
        return view
    if layout == "transposed":
        return np.ascontiguousarray(x.T).T
    raise ValueError(f"unknown layout {layout!r}")


def bound_kernels():
    """The kernels of the scale-copy bound: those auto takes, Cython's where it is built
    (its scale-copy took 0.89-0.99x Numba's time, float16 to float64)."""
    return _backends.resolve("auto")[1]


def implementations(
    x: np.ndarray, p: float, *, peers: bool = True
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument callable, for every implementation to compare on ``x``.

    The first entry is the bound, a parallel scale-copy ``y = x * s`` with the threads
    fastdrop's own call on ``x`` gets (:func:`bound_kernels`), writing into a preallocated
    array. Then
    ``fastdrop <backend>`` for auto and every available backend, each returning a new
    array like the peers do (the NumPy reference only up to ``REFERENCE_LIMIT``
    elements), the NumPy idiom
    ``x * (rng.random(x.shape) >= p) / (1 - p)``, and, if ``peers``, PyTorch and JAX when
    they are installed.
    """
    y = np.empty_like(x)
    n_threads = _threads.for_call(x.size, bound_kernels())  # what dropout of x gets
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    bound = bound_kernels()
    x2, y2 = x.reshape(1, -1), y.reshape(1, -1)
    rows: dict[str, Callable[[], object]] = {BOUND: lambda: bound.scale(x2, y2, scale, n_threads)}
    for name in ("auto", *_backends.available_backends()):
        if name == "numpy" and x.size > REFERENCE_LIMIT:
            continue
        rows[f"fastdrop {name}"] = functools.partial(fastdrop.dropout, x, p, rng=1, backend=name)
    rng = np.random.default_rng(0)
    rows["numpy idiom"] = lambda: x * (rng.random(x.shape) >= p) / (1 - p)
    if peers:
        rows.update(_peers(x, p, fastdrop.get_num_threads()))
    return rows


SAMPLES = 8  # Monte Carlo samples in the family's speed table


def family_implementations(
    x: np.ndarray, p: float, *, peers: bool = True
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument callable, for the dropout family on ``x`` (1-D, a multiple of
    4096 elements, viewed as ``(-1, 1024)`` rows or ``(-1, 64, 8, 8)`` feature maps).

    The first entry is the same scale-copy bound as in :func:`implementations`; then
    ``SAMPLES`` scale-copies (the write traffic of ``SAMPLES`` Monte Carlo samples),
    dropout, the packed mask alone (what drawing costs, with almost nothing written),
    then the training passes writing into preallocated outputs as the
    scale-copies do (dropout alone and with its packed mask, the backward pass from that
    mask and redrawn, and ``SAMPLES`` samples), so that their ratios are the kernels'
    against the bound, then fastdrop's variants with their unfused or NumPy equivalents,
    and PyTorch's where it has one and is installed. The other fastdrop rows return a new
    array, as the peers do.
    """
    if x.ndim != 1 or x.size % 4096:
        raise ValueError(f"x must be 1-D with a multiple of 4096 elements, got shape {x.shape}")
    rows = {BOUND: implementations(x, p, peers=False)[BOUND]}
    n_threads = _threads.for_call(x.size, bound_kernels())  # what dropout of x gets
    bound = bound_kernels()
    ys = np.empty((SAMPLES, 1, x.size), x.dtype)
    rows[f"{BOUND} x{SAMPLES}"] = lambda: [
        bound.scale(x[None], ys[s], 2.0, n_threads) for s in range(SAMPLES)
    ]
    x2, maps = x.reshape(-1, 1024), x.reshape(-1, 64, 8, 8)
    residual = np.random.default_rng(1).standard_normal(x2.shape).astype(x.dtype)
    bias = np.zeros(1024, x.dtype)
    sigma = np.sqrt(p / (1 - p))
    rng = np.random.default_rng(0)
    _, mask = fastdrop.dropout(x, p, rng=1, return_mask=True)
    y, samples = np.empty_like(x), ys.reshape(SAMPLES, x.size)
    rows.update(
        {
            "dropout": lambda: fastdrop.dropout(x, p, rng=1),
            "bernoulli_mask": lambda: fastdrop.bernoulli_mask(x.shape, p, rng=1),
            "dropout out=": lambda: fastdrop.dropout(x, p, rng=1, out=y),
            "dropout out= return_mask": lambda: fastdrop.dropout(
                x, p, rng=1, out=y, return_mask=True
            ),
            "backward out= from mask": lambda: fastdrop.dropout_backward(x, p, mask=mask, out=y),
            "backward out= regenerated": lambda: fastdrop.dropout_backward(x, p, rng=1, out=y),
            f"dropout out= samples={SAMPLES}": lambda: fastdrop.dropout(
                x, p, rng=1, samples=SAMPLES, out=samples
            ),
            "dropout_add": lambda: fastdrop.dropout_add(x2, residual, p, bias=bias, rng=1),
            "r + dropout(x + b)": lambda: residual + fastdrop.dropout(x2 + bias, p, rng=1),
            "alpha_dropout": lambda: fastdrop.alpha_dropout(x, p, rng=1),
            "spatial_dropout": lambda: fastdrop.spatial_dropout(maps, p, rng=1),
            "gaussian_dropout": lambda: fastdrop.gaussian_dropout(x, p, rng=1),
            "numpy gaussian idiom": lambda: x * (1 + sigma * rng.standard_normal(x.shape)),
        }
    )
    if peers:
        try:
            import torch
        except ImportError:
            return rows
        torch.set_num_threads(fastdrop.get_num_threads())
        xt, rt, bt = (torch.from_numpy(a) for a in (x2, residual, bias))
        functional = torch.nn.functional
        rows["torch r + dropout(x + b)"] = lambda: rt + functional.dropout(xt + bt, p)
        rows["torch alpha_dropout"] = lambda: functional.alpha_dropout(xt, p, True)
        rows["torch dropout2d"] = lambda: functional.dropout2d(torch.from_numpy(maps), p)
    return rows


def _peers(x: np.ndarray, p: float, n_threads: int) -> dict[str, Callable[[], object]]:
    rows: dict[str, Callable[[], object]] = {}
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(n_threads)
        xt = torch.from_numpy(x)
        rows["torch"] = lambda: torch.nn.functional.dropout(xt, p, training=True)
    try:
        import jax
    except ImportError:
        pass
    else:
        cpu = jax.devices("cpu")[0]  # where an accelerator is present, JAX would use it
        xj = jax.device_put(x, cpu)
        key = jax.device_put(jax.random.key(0), cpu)
        fn = jax.jit(
            lambda k, v: jax.numpy.where(jax.random.bernoulli(k, 1 - p, v.shape), v / (1 - p), 0)
        )
        rows["jax"] = lambda: fn(key, xj).block_until_ready()
    return rows


def best_times(
    rows: dict[Key, Callable[[], object]],
    budget: float = 0.0,
    *,
    number: int = 1,
    percentile: float = 0.0,
) -> dict[Key, float]:
    """Best time per call of each callable, in seconds, over interleaved rounds.

    Every round times ``number`` calls of each callable in turn, so that drifts in clock
    speed, cache state or background load fall on all rows alike: this is how every
    ratio fastdrop reports is measured. Each round starts one row later than the last,
    so that no row always follows the same one (PyTorch's threads, say, spin on the
    cores for a while after its call). After one warm-up call each, rounds go on for
    about ``budget`` seconds, at least 3 and at most 200. "Best" is the round's
    ``percentile`` (0, the default: the fastest round).
    """
    for fn in rows.values():
        fn()
    times: dict[Key, list[float]] = {name: [] for name in rows}
    deadline = time.perf_counter() + budget
    rounds = 0
    names = list(rows)
    while rounds < 3 or (time.perf_counter() < deadline and rounds < 200):
        k = rounds % len(names)
        for name in names[k:] + names[:k]:
            fn = rows[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t0) / number)
        rounds += 1
    return {name: float(np.percentile(ts, percentile)) for name, ts in times.items()}


# -- real pipelines ------------------------------------------------------------------------

MLP_SIZES = (64, 256, 256, 10)  # scikit-learn's digits: 8x8 images, 10 classes
MLP_BATCH = 64
MLP_P = 0.2
MC_SAMPLES = 32  # Monte Carlo dropout samples per inference batch
# Each pipeline of pipelines(), and the same pipeline without dropout.
PIPELINES = {
    "mlp step": "mlp step",
    "mlp step dropout": "mlp step",
    "mlp step dropout threads(1)": "mlp step",
    "mc inference": "mc inference",
    "mc inference dropout": "mc inference",
}


def digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: scikit-learn's bundled digits (1797 images of 8x8 pixels,
    0-16, as float32 rows of 64 scaled to [0, 1]) when scikit-learn is installed, else a
    random stand-in of the same shape and range. The pipelines' speed depends on the
    shapes alone; the data only makes the training real."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        images, labels = rng.integers(0, 17, (1797, 64)), rng.integers(0, 10, 1797)
    else:
        images, labels = load_digits(return_X_y=True)
    return (images / 16).astype(np.float32), labels


class MLP:
    """A NumPy MLP (``MLP_SIZES``: ReLU hidden layers, softmax cross-entropy, plain SGD)
    with a :class:`fastdrop.Dropout` after each hidden layer, or none (``p=None``): the
    real pipeline the benchmarks time dropout in, between OpenBLAS (or MKL) matrix
    products.

    Parameters
    ----------
    p : float or None
        The layers' drop rate; None for no dropout layers at all.
    seed : int
        Seeds the weights and the layers' streams.
    """

    def __init__(self, p: float | None, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        pairs = list(itertools.pairwise(MLP_SIZES))
        self.weights = [
            rng.standard_normal((a, b), dtype=np.float32) * np.float32(np.sqrt(2 / a))
            for a, b in pairs
        ]
        self.biases = [np.zeros(b, np.float32) for _, b in pairs]
        self.p = p
        hidden = len(pairs) - 1
        self.drops = [] if p is None else [fastdrop.Dropout(p, rng=seed + k) for k in range(hidden)]

    def _hidden(self, x: np.ndarray, k: int) -> np.ndarray:
        return np.maximum(x @ self.weights[k] + self.biases[k], 0)

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float = 0.1) -> float:
        """One SGD step on the batch ``x`` (``(n, 64)``); returns the batch's mean loss."""
        acts = [x]
        for k in range(len(self.weights) - 1):
            h = self._hidden(acts[-1], k)
            acts.append(self.drops[k](h) if self.drops else h)
        logits = acts[-1] @ self.weights[-1] + self.biases[-1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.arange(len(x))
        loss = float(-np.log(probs[rows, labels] + 1e-12).mean())
        grad = probs
        grad[rows, labels] -= 1
        grad /= len(x)
        for k in range(len(self.weights) - 1, -1, -1):
            back = grad @ self.weights[k].T if k else None
            self.weights[k] -= np.float32(lr) * (acts[k].T @ grad)
            self.biases[k] -= np.float32(lr) * grad.sum(axis=0)
            if back is not None:
                if self.drops:
                    back = self.drops[k - 1].backward(back)
                grad = back * (acts[k] > 0)  # ReLU's gradient: dropout keeps its zeros
        return loss

    def predict(self, x: np.ndarray, samples: int) -> np.ndarray:
        """``samples`` Monte Carlo predictions ``(samples, n, 10)`` of the batch ``x``:
        dropout kept on at inference, each hidden layer's samples drawn in one call
        (``samples=`` for the first, one call over all samples for the next). Without
        dropout layers, the same batched products on ``samples`` copies."""
        h = self._hidden(x, 0)
        if self.p is None:
            h = np.broadcast_to(h, (samples, *h.shape))
        else:
            h = fastdrop.dropout(h, self.p, rng=1, samples=samples)
        for k in range(1, len(self.weights) - 1):
            h = self._hidden(h, k)
            if self.p is not None:
                h = fastdrop.dropout(h, self.p, rng=1, offset=k * h.size)
        return h @ self.weights[-1] + self.biases[-1]


def pipelines() -> dict[str, Callable[[], object]]:
    """Name -> zero-argument callable: a training step of :class:`MLP` on a batch of
    ``MLP_BATCH`` digits, and Monte Carlo inference of ``MC_SAMPLES`` samples on one,
    without and with dropout (the training step also with ``fastdrop.threads(1)``), at
    the settings in force (threads, backend)."""
    images, labels = digits()
    x, y = images[:MLP_BATCH], labels[:MLP_BATCH]
    plain, dropped = MLP(None), MLP(MLP_P)

    def step_one_thread() -> float:
        with fastdrop.threads(1):
            return dropped.step(x, y)

    return {
        "mlp step": lambda: plain.step(x, y),
        "mlp step dropout": lambda: dropped.step(x, y),
        "mlp step dropout threads(1)": step_one_thread,
        "mc inference": lambda: plain.predict(x, MC_SAMPLES),
        "mc inference dropout": lambda: dropped.predict(x, MC_SAMPLES),
    }
