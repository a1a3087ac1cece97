"""How kernel calls cover a window of an array with native 2-D views.

A :class:`Window` is a block of a logical array: the whole array's shape, where the block
starts in it, and the block's own shape. The NumPy front's window is the whole array; the
Dask front's is one chunk. An element's stream position is its C-order index in the
whole array (plus the call's offset), so a block's positions form rows: the block's
trailing axes that span the whole array run on in C order, and each step along the axis
before them jumps by a fixed number of positions (:meth:`Window.layouts`).

:func:`plan` sees the arrays of a kernel call (inputs, then the output, which may carry
leading sample axes) as ``(rows, cols)`` views with such rows, in as few pieces as their
memory layouts allow without a copy. Kernels read a piece's positions from
``Piece.position`` and ``Piece.row_step``, and its place in a packed mask of the block
from ``Piece.first``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class Rows:
    """A block seen as rows of consecutive positions: for each index ``idx`` of the
    ``lead`` axes, a ``(rows, cols)`` grid whose element ``(r, c)`` sits ``r * row_step +
    c`` positions after the grid's first element."""

    lead: tuple[int, ...]
    rows: int
    cols: int
    row_step: int
    split: int  # the block's first axis in the columns: rows are axes len(lead) to split - 1


@dataclass(slots=True)
class Window:
    """The block of shape ``block`` that starts at index ``start`` of an array of ``shape``."""

    shape: tuple[int, ...]
    start: tuple[int, ...]
    block: tuple[int, ...]
    _steps: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def whole(cls, shape: tuple[int, ...]) -> Window:
        """The window that covers all of an array of ``shape``."""
        return cls(shape, (0,) * len(shape), shape)

    @property
    def size(self) -> int:
        """The block's number of elements."""
        return math.prod(self.block)

    @property
    def total(self) -> int:
        """The whole array's number of elements: the positions one sample takes."""
        return math.prod(self.shape)

    @property
    def steps(self) -> tuple[int, ...]:
        """The whole array's C-order steps, in elements."""
        if self._steps is None:
            self._steps = tuple(math.prod(self.shape[k + 1 :]) for k in range(len(self.shape)))
        return self._steps

    @property
    def base(self) -> int:
        """The position of the block's first element, relative to the call's offset."""
        return sum(a * g for a, g in zip(self.start, self.steps, strict=True))

    def layouts(self) -> list[Rows]:
        """The ways to see the block as rows, longest rows first, each in as few grids as
        it can be; the last, the block's own last two axes, fits any memory layout.

        Rows may span the block's trailing axes that span the whole array (they run on in
        C order), and may collapse the axes before them that also span it.
        """
        shape, block, ndim, steps = self.shape, self.block, len(self.shape), self.steps
        first = ndim - 1  # axes after it span the whole array: they run on in C order
        while first > 0 and block[first] == shape[first]:
            first -= 1
        found = []
        for j in range(max(first, 0), max(ndim, 1)):
            i = max(j - 1, 0)
            while i > 0 and block[i] == shape[i]:  # axis i collapses into the rows
                i -= 1
            found.append(_rows(block, steps, i, j))
        if ndim > 1 and i != ndim - 2:
            found.append(_rows(block, steps, ndim - 2, ndim - 1))
        return found

    def places(self, rows: Rows) -> Iterator[tuple[tuple[int, ...], int, int]]:
        """``(idx, position, first)`` for each grid of ``rows``: its index along the lead
        axes, the position of its first element (relative to the call's offset) and that
        element's C-order index in the block."""
        base = self.base
        if not rows.lead:  # one grid, the common case
            yield (), base, 0
            return
        size, steps = rows.rows * rows.cols, self.steps
        for k, idx in enumerate(np.ndindex(rows.lead)):
            yield idx, base + sum(a * g for a, g in zip(idx, steps, strict=False)), k * size

    def within(self, noise: tuple[int, ...]) -> Window:
        """The part of a mask of shape ``noise`` (broadcast to ``shape``) that this block
        reads: its window in the mask."""
        broadcast = [n == 1 and s != 1 for n, s in zip(noise, self.shape, strict=True)]
        start = tuple(0 if b else a for b, a in zip(broadcast, self.start, strict=True))
        block = tuple(1 if b else d for b, d in zip(broadcast, self.block, strict=True))
        return Window(noise, start, block)

    @property
    def index(self) -> tuple[slice, ...]:
        """The block's slices of the whole array."""
        return tuple(slice(a, a + d) for a, d in zip(self.start, self.block, strict=True))


def _rows(block: tuple[int, ...], steps: tuple[int, ...], i: int, j: int) -> Rows:
    """Rows over axes ``i`` to ``j - 1`` of ``block``, columns over axes ``j`` on."""
    cols = math.prod(block[j:])
    if j == 0:
        return Rows((), 1, cols, cols, 0)
    return Rows(block[:i], math.prod(block[i:j]), cols, steps[j - 1], j)


@dataclass(slots=True)
class Piece:
    """One kernel call's views (the inputs', then the output's) and where they sit."""

    views: tuple[np.ndarray, ...]
    position: int  # of element (0, 0), relative to the call's offset
    row_step: int
    first: int  # element (0, 0)'s C-order index in the block: where its mask bits start


@dataclass(slots=True)
class Plan:
    """The pieces of a call, and where its output goes: the kernels write ``y``; when that
    stands in for a misaligned output ``target``, :func:`finish` copies it there."""

    pieces: list[Piece]
    y: np.ndarray
    target: np.ndarray | None

    def finish(self) -> None:
        """Call once the kernels have run."""
        if self.target is not None:
            np.copyto(self.target, self.y)


def native(a: np.ndarray) -> np.ndarray:
    """``a`` itself if native and aligned, else a native C-order copy (0-d stays 0-d)."""
    if a.dtype.isnative and a.flags.aligned:
        return a
    return a.astype(a.dtype.newbyteorder("="), order="C")


def _clean(a: np.ndarray) -> bool:
    return a.dtype.isnative and a.flags.aligned


def _collapse(a: np.ndarray, lead: int, rows: Rows, ndim: int) -> bool:
    """Whether ``a`` (``lead`` axes, then ``ndim`` of the block) takes the layout ``rows``
    without a copy: the axes of the rows, and those of the columns, each collapse into
    one (each axis's stride is the next one's times its length, axes of length 1 aside),
    as ``reshape(..., copy=False)`` needs."""
    if a.size == 0 or a.flags.c_contiguous:
        return True
    shape, strides = a.shape[lead:], a.strides[lead:]
    for lo, hi in ((len(rows.lead), rows.split), (rows.split, ndim)):
        outer = -1
        for k in range(lo, hi):
            if shape[k] == 1:
                continue
            if outer >= 0 and strides[outer] != strides[k] * shape[k]:
                return False
            outer = k
    return True


def _fit(
    window: Window, arrays: Sequence[np.ndarray], leads: Sequence[int], single: bool
) -> list[Piece] | None:
    """Pieces in the first layout that every array takes without a copy (with ``single``,
    only layouts of one piece), or None."""
    pairs = list(zip(arrays, leads, strict=True))
    ndim = len(window.block)
    for rows in window.layouts():
        if single and rows.lead:
            continue
        for a, n in pairs:
            if not _collapse(a, n, rows, ndim):
                break
        else:
            core = (*rows.lead, rows.rows, rows.cols)
            views = [a.reshape(a.shape[:n] + core, copy=False) for a, n in pairs]
            if not rows.lead:  # one piece, the common case
                return [Piece(tuple(views), window.base, rows.row_step, 0)]
            lead_of = [n for _, n in pairs]
            return [
                Piece(
                    tuple(v[(slice(None),) * n + idx] for v, n in zip(views, lead_of, strict=True)),
                    position,
                    rows.row_step,
                    first,
                )
                for idx, position, first in window.places(rows)
            ]
    return None


def plan(window: Window, inputs: Sequence[np.ndarray], y: np.ndarray, lead: int = 0) -> Plan:
    """The pieces of a kernel call that reads ``inputs`` (each of the block's shape) and
    writes ``y`` (``lead`` sample axes, then the block's shape).

    Inputs in another byte order or misaligned are converted first: the first input, when
    ``y`` holds a single sample and aliases no other input, by copying it into ``y`` and
    working in place, so no temporary the size of the input is made; others into native
    copies. The same copy into ``y`` serves when the first input's axes do not collapse
    but ``y``'s do (a fresh output always does), so that the call is one piece. A
    misaligned ``y`` is computed in an aligned buffer (see :class:`Plan`).
    """
    if window.block == window.shape and y.flags.c_contiguous and y.flags.aligned:
        if all(a.flags.c_contiguous and _clean(a) for a in inputs):  # the commonest case
            n = window.size
            views = [a.reshape(1, n) for a in inputs]
            views.append(y.reshape((*y.shape[:lead], 1, n)))
            return Plan([Piece(tuple(views), 0, n, 0)], y, None)
    leads = [0] * len(inputs) + [lead]
    clean = y.flags.aligned and all(_clean(a) for a in inputs)
    pieces = _fit(window, [*inputs, y], leads, single=True) if clean else None
    if pieces is not None:  # the common case, first
        return Plan(pieces, y, None)
    target = None
    if not y.flags.aligned:  # e.g. a packed structured field: kernels need whole-item strides
        target, y = y, np.empty(y.shape, y.dtype)
    arrays = list(inputs)
    single_sample = y.shape[:lead] == (1,) * lead
    into_y = single_sample and not any(np.may_share_memory(a, y) for a in arrays[1:])
    y_core = y[(0,) * lead + (Ellipsis,)] if into_y else None
    for i, a in enumerate(arrays):
        if _clean(a):
            continue
        if i == 0 and y_core is not None:
            np.copyto(y_core, a)
            arrays[0] = y_core
        else:
            arrays[i] = native(a)
    if not clean:  # else nothing was converted, and the first try has answered already
        pieces = _fit(window, [*arrays, y], leads, single=True)
    if pieces is None and y_core is not None and arrays[0] is not y_core:
        pieces = _fit(window, [y_core, *arrays[1:], y], leads, single=True)
        if pieces is not None:
            np.copyto(y_core, arrays[0])
    if pieces is None:
        pieces = _fit(window, [*arrays, y], leads, single=False)
    assert pieces is not None, "the last layout fits every array"
    return Plan(pieces, y, target)
