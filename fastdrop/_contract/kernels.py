"""The kernel contract: what each backend's kernels take and compute, written once.

Every backend package (``fastdrop._numpy``, the executable reference; ``fastdrop._numba``;
``fastdrop._cy``) is a module that implements :class:`Kernels`, and
``tests/test_contract.py`` checks that each has exactly these kernels with exactly these
signatures. The backends' own docstrings say how they compute, not what.

**Arrays** arrive validated by the engine, in native byte order and aligned, as 2-D views
``(rows, cols)`` with any strides (zero strides too, for inputs that broadcast, and
negative ones); an output may be the very view of an input (in place), never partly
overlap one. Element ``(r, c)`` sits at stream position ``pos0 + r * row_step + c``
(mod 2**64) and at packed-mask index ``r * cols + c``.

**Packed masks** (``bits``) are C-contiguous ``uint8``: bit ``i % 8`` of byte ``i // 8``
is 1 where element ``i`` is kept, ``ceil(rows * cols / 8)`` bytes (``forward``: one such
row per sample), or empty when no mask is wanted. An element is kept iff the
Philox4x32-10 word at its position, keyed by ``seed`` under the Bernoulli purpose, is at
least ``threshold`` (``fastdrop._contract.stream.threshold``).

**Values** are computed in float32 for float16, bfloat16 and float32 arrays and in float64
for float64 arrays (the *compute precision*), each operation rounded there in the order
written (no fused multiply-adds, no reassociation), and rounded once more, to nearest
even, to the array's dtype at the end: bfloat16 as ``ml_dtypes`` rounds, a NaN becoming
the quiet NaN of its sign (``docs/random-stream.md``). ``inf * 0`` and overflow give what
IEEE says, with no warning. A dropped element is its ``fill`` whatever the input held, NaN
included.

**Threads:** ``n_threads`` is how many threads a kernel may use. The engine passes 1 for
calls that produce fewer than the backend's ``PARALLEL_MIN`` elements. A result never
depends on it: every element's draw depends on its stream position alone.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Kernels(Protocol):
    """The kernels of one backend, and the size from which it runs them on threads.

    A backend is a module, not a class: its kernels are functions with these methods'
    parameters, less ``self``, and they write their results into the arrays they are
    given.
    """

    PARALLEL_MIN: int

    def mask(
        self,
        bits: np.ndarray,
        rows: int,
        cols: int,
        seed: int,
        pos0: int,
        row_step: int,
        threshold: int,
        n_threads: int,
    ) -> None:
        """Write the packed keep-mask of the ``(rows, cols)`` grid of positions ``pos0 + r *
        row_step + c`` into ``bits``, element ``(r, c)`` at mask index ``r * cols + c``."""

    def forward(
        self,
        x: np.ndarray,
        y: np.ndarray,
        bits: np.ndarray,
        seed: int,
        pos0: int,
        row_step: int,
        sample_step: int,
        threshold: int,
        scale: float,
        shift: float,
        fill: float,
        n_threads: int,
    ) -> None:
        """``y[s] = keep ? x * scale + shift : fill`` for each sample ``s`` of ``y``, which
        is ``(samples, rows, cols)``; sample ``s`` draws from ``pos0 + s * sample_step``
        on. Packs each sample's ``keep`` into ``bits[s]`` unless ``bits`` is empty. ``x``
        is read once, whatever the number of samples."""

    def apply(
        self,
        x: np.ndarray,
        keep: np.ndarray,
        y: np.ndarray,
        scale: float,
        shift: float,
        fill: float,
        n_threads: int,
    ) -> None:
        """``y = keep ? x * scale + shift : fill`` with ``keep`` a ``uint8`` array (nonzero =
        kept) of the same 2-D shape, usually a broadcast mask with zero strides."""

    def backward(
        self, g: np.ndarray, out: np.ndarray, bits: np.ndarray, scale: float, n_threads: int
    ) -> None:
        """``out = keep ? g * scale : +0.0`` with ``keep`` read from the packed ``bits``."""

    def scale(self, x: np.ndarray, y: np.ndarray, factor: float, n_threads: int) -> None:
        """``y = x * factor``: classic-scaling eval, and the speed baseline."""

    def gaussian(
        self,
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        pos0: int,
        row_step: int,
        sigma: float,
        n_threads: int,
    ) -> None:
        """``y = x * f`` with ``f = 1 + sigma * z`` computed in float64 and rounded to the
        compute precision, ``z`` the standard normal at each element's stream position
        under the Gaussian purpose (``docs/random-stream.md``)."""

    def add(
        self,
        x: np.ndarray,
        bias: np.ndarray,
        residual: np.ndarray,
        y: np.ndarray,
        bits: np.ndarray,
        seed: int,
        pos0: int,
        row_step: int,
        threshold: int,
        scale: float,
        n_threads: int,
    ) -> None:
        """``y = keep ? residual + (x + bias) * scale : residual``, the fused
        bias-dropout-add, packing ``keep`` into ``bits`` unless it is empty. A dropped
        element is ``residual``'s own value, bit for bit, whatever ``x`` held."""
