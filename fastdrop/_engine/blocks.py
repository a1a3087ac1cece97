"""DropBlock's mask: seeds drawn from the stream, grown into blocks, and applied.

A :class:`~fastdrop._engine.request.Blocks` request says where the seeds come from and
how large the blocks are. :func:`keep` gives the keep flags of any window of the mask:
it draws the seeds that can reach the window (their window of the seed mask, through
the same mask drawing as :func:`fastdrop.bernoulli_mask`, so the flags are the same
on every backend and for every window) and grows each into its block with a running OR
along each spatial axis. The NumPy front asks for the whole mask, the Dask front for one
chunk's window; :func:`apply` then runs the kernels on the array with the flags.
"""

from __future__ import annotations

import math

import numpy as np

from fastdrop._engine import checks
from fastdrop._engine.plan import Window
from fastdrop._engine.request import Blocks, FromMask, Mask
from fastdrop._engine.run import run

EPSILON = np.float32(1e-7)  # timm's, added to the kept count before dividing by it


def keep(req: Blocks, window: Window) -> np.ndarray:
    """The ``bool`` keep flags of ``window``, a window of the mask of shape ``req.shape``:
    False where a block covers the element.

    Along a spatial axis of kernel ``k``, the seed at corner ``t`` covers elements ``t``
    to ``t + k - 1``: elements ``a`` to ``b - 1`` are covered by corners ``a - k + 1`` to
    ``b - 1``, those of them in the seed mask. The seeds are drawn there, padded with
    False to that whole range, and ORed over each run of ``k``.
    """
    if not window.size:
        return np.ones(window.block, bool)
    seeds, start, block = req.seeds, list(window.start), list(window.block)
    pads = [(0, 0)] * len(block)
    for a, k in zip(req.axes, req.kernel, strict=True):
        lo, hi = window.start[a] - k + 1, window.start[a] + window.block[a]
        first, last = max(lo, 0), min(hi, seeds[a])
        start[a], block[a] = first, last - first
        pads[a] = (first - lo, hi - last)
    kept = run(
        Mask(req.backend, req.stream, None, False),
        window=Window(seeds, tuple(start), tuple(block)),
    ).y
    covered = np.pad(~kept, pads)
    for a, k in zip(req.axes, req.kernel, strict=True):
        covered = _running_or(covered, k, a)
    return ~covered


def _running_or(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = a[i] | ... | a[i + k - 1]`` along ``axis`` (``k - 1`` shorter than
    ``a``), by doubling: runs of ``w = 1, 2, 4, ...`` while ``2w <= k``, then two runs of
    ``w`` that overlap to cover ``k`` (OR does not mind the overlap)."""

    def part(v: np.ndarray, begin: int, length: int) -> np.ndarray:
        index = [slice(None)] * v.ndim
        index[axis] = slice(begin, begin + length)
        return v[tuple(index)]

    w = 1
    while 2 * w <= k:
        n = a.shape[axis] - w
        a = part(a, 0, n) | part(a, w, n)
        w *= 2
    n = a.shape[axis] - (k - w)
    return part(a, 0, n) | part(a, k - w, n) if k > w else a


def scale(req: Blocks, kept: int, dtype: np.dtype) -> float:
    """What a kept element is multiplied by: with ``scale_by_keep``, timm's
    ``numel / (kept + 1e-7)`` over the mask's own elements, in float32 as torch computes
    it (the reciprocal, then times ``numel``), rounded to ``dtype``; else 1."""
    if not req.scale_by_keep:
        return 1.0
    f32 = np.float32
    numel = f32(math.prod(req.shape))
    with np.errstate(over="ignore"):  # float16 overflows when few elements are kept
        s = numel * (f32(1.0) / (f32(kept) + EPSILON))
        return float(s.astype(checks.native(dtype)))


def apply(req: Blocks, x: np.ndarray, flags: np.ndarray, kept: int) -> np.ndarray:
    """``flags ? x * scale : +0.0``, with ``flags`` the keep flags of ``x``'s window of the
    mask (broadcast along the batch when batchwise) and ``kept`` the whole mask's count."""
    noise = None if flags.shape == x.shape else flags.shape
    bits = np.packbits(flags, axis=None, bitorder="little")
    return run(FromMask(req.backend, scale(req, kept, x.dtype), noise, None), [x, bits]).y
