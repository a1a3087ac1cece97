"""Case tables and awkward inputs shared by fastdrop's tests and benchmarks.

One table of cases (dtypes, rates, sizes, layouts, pipelines) drives the correctness
tests, the asv suite, the pytest-benchmark suite and ``python -m fastdrop``, so what is
measured is what is tested. The implementations that the benchmarks compare on these
cases, the peers among them, live with the tools, in ``fastdrop._tools.peers``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

import fastdrop


def _dtypes() -> tuple[type, ...]:
    """float16, bfloat16 (where ml_dtypes is installed: NumPy has none of its own), float32
    and float64."""
    try:
        from ml_dtypes import bfloat16
    except ImportError:
        return (np.float16, np.float32, np.float64)
    return (np.float16, bfloat16, np.float32, np.float64)


DTYPES = _dtypes()
RATES = (0.0, 0.1, 0.5, 0.9, 1.0)
BENCH_RATES = (0.1, 0.5, 0.9)
BENCH_SIZES = (1_000, 100_000, 10_000_000, 100_000_000)
# fastdrop.torch.Dropout against torch.nn.Dropout: the README's sizes, and a small one.
LAYER_SIZES = (1_000, 1_000_000, 10_000_000)
LAYOUTS = ("C", "F", "strided", "reversed", "byteswapped", "sliced", "transposed")

# The fastest the hardware can stream x into y: dropout's lower bound.
BOUND = "scale-copy"
# The NumPy backend is the specification, not a fast path: benchmarks stop at this size.
REFERENCE_LIMIT = 100_000


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
