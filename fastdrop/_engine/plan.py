"""How a kernel call covers arrays of any layout with 2-D views.

Kernels see ``(rows, cols)`` views whose C order is the arrays' C order; outputs may carry
leading sample axes. Arrays whose axes collapse that way are covered by one call; the
rest are covered in blocks, one call per index of their leading axes, with ``first``,
the flat C index of the block's first element, telling the kernel where it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

Piece = tuple[list[np.ndarray], int]


def views_2d(arrays: Sequence[np.ndarray], leads: Sequence[int]) -> list[np.ndarray] | None:
    """Views of ``arrays`` (shape ``lead axes + core``) as ``lead axes + (rows, cols)``, all
    with the same ``(rows, cols)`` and C order, or None when every split needs a copy.

    The core axes split into leading ones (collapsed into rows) and trailing ones (into
    columns) wherever every array allows it, trying the longest rows first: a C-contiguous
    array is one row, and a mask broadcast along trailing axes splits where it starts.
    """
    core = arrays[0].shape[leads[0] :]
    if all(a.flags.c_contiguous for a in arrays):  # one row; reshape cannot copy these
        row = (1, math.prod(core))
        return [a.reshape(a.shape[:lead] + row) for a, lead in zip(arrays, leads, strict=True)]
    for d in range(max(len(core), 1)):
        shape_2d = (math.prod(core[:d]), math.prod(core[d:]))
        try:
            return [
                a.reshape(a.shape[:lead] + shape_2d, copy=False)
                for a, lead in zip(arrays, leads, strict=True)
            ]
        except ValueError:  # some axes do not collapse without a copy
            continue
    return None


def _blocks(arrays: Sequence[np.ndarray], leads: Sequence[int]) -> Iterator[Piece]:
    core = arrays[0].shape[leads[0] :]
    step = core[-2] * core[-1]
    for k, idx in enumerate(np.ndindex(core[:-2])):
        views = [a[(slice(None),) * lead + idx] for a, lead in zip(arrays, leads, strict=True)]
        yield views, k * step


def native(a: np.ndarray) -> np.ndarray:
    """``a`` itself if native and aligned, else a native C-order copy (0-d stays 0-d)."""
    if a.dtype.isnative and a.flags.aligned:
        return a
    return a.astype(a.dtype.newbyteorder("="), order="C")


def _nothing() -> None:
    pass


def prepare(
    inputs: Sequence[np.ndarray], y: np.ndarray, lead: int = 0
) -> tuple[Iterator[Piece] | list[Piece], bool, Callable[[], None]]:
    """``(pieces, blocked, finish)`` for a kernel reading ``inputs`` and writing ``y``.

    Each piece is ``([*input views, y view], first)``; ``blocked`` says whether the pieces
    are blocks of an N-D array (whose first elements need not start a mask byte); call
    ``finish()`` after the kernels have run. ``y`` has ``lead`` extra leading axes.

    Inputs in another byte order or misaligned are converted first: the first input, when
    ``y`` holds a single sample and aliases no other input, by copying it into ``y`` and
    working in place, so no temporary the size of the input is made; others into native
    copies. The same copy into ``y`` serves when the first input's axes do not collapse
    but ``y``'s do (a fresh output always does). A misaligned ``y`` is computed in an
    aligned buffer and copied back by ``finish``.
    """
    leads = [0] * len(inputs) + [lead]
    clean = y.flags.aligned and all(a.dtype.isnative and a.flags.aligned for a in inputs)
    views = views_2d([*inputs, y], leads) if clean else None  # the common case, first
    if views is not None:
        return [(views, 0)], False, _nothing
    finish: Callable[[], None] = _nothing
    if not y.flags.aligned:  # e.g. a packed structured field: kernels need whole-item strides
        target, y = y, np.empty(y.shape, y.dtype)
        finish = lambda: np.copyto(target, y)  # noqa: E731
    inputs = list(inputs)
    single = y.shape[:lead] == (1,) * lead
    into_y = single and not any(np.may_share_memory(a, y) for a in inputs[1:])
    y_core = y[(0,) * lead + (Ellipsis,)] if into_y else None
    for i, a in enumerate(inputs):
        if a.dtype.isnative and a.flags.aligned:
            continue
        if i == 0 and y_core is not None:
            np.copyto(y_core, a)
            inputs[0] = y_core
        else:
            inputs[i] = native(a)
    if not clean:  # else nothing was converted, and views_2d has answered already
        views = views_2d([*inputs, y], leads)
    if views is None and y_core is not None and inputs[0] is not y_core:
        trial = views_2d([y_core, *inputs[1:], y], leads)
        if trial is not None:
            np.copyto(y_core, inputs[0])
            views = trial
    if views is not None:
        return [(views, 0)], False, finish
    return _blocks([*inputs, y], leads), True, finish


def run(kernel, inputs: Sequence[np.ndarray], y: np.ndarray, args, lead: int = 0) -> None:
    """Call ``kernel(*input views, y view, *args(first, first input's view))`` over ``y``."""
    pieces, _, finish = prepare(inputs, y, lead)
    for views, first in pieces:
        kernel(*views, *args(first, views[0]))
    finish()


def bit_slice(bits: np.ndarray, start: int, count: int) -> np.ndarray:
    """Bits ``[start, start + count)`` of a packed mask, realigned to start a byte."""
    head, shift = divmod(start, 8)
    chunk = bits[head : head + (count + 7) // 8 + 1]
    if not shift:
        return chunk
    words = np.append(chunk, np.uint8(0)).astype(np.uint16)
    return ((words[:-1] >> shift) | (words[1:] << (8 - shift))).astype(np.uint8)
