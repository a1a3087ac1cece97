"""Reference kernels: ``mask``, ``forward``, ``backward`` and ``scale``.

The signatures are shared by every backend. Arrays arrive validated, in native byte
order, as 2-D views ``(rows, cols)`` with any strides; element ``(r, c)`` sits at stream
position ``pos0 + r * row_step + c`` (mod 2**64) and at packed-mask index ``r * cols + c``.
``bits`` is a ``uint8`` array of ``ceil(rows * cols / 8)`` bytes, or empty when no mask is
wanted. ``n_threads`` is accepted for a uniform signature and ignored here.
"""

import numpy as np

from fastdrop._numpy.philox import draw

CHUNK = 1 << 16  # elements per step; a multiple of 8 so that chunks own whole mask bytes


def _compute_dtype(dtype: np.dtype) -> type:
    # float16 and float32 are scaled in float32, float64 in float64.
    return np.float64 if dtype == np.float64 else np.float32


def _chunks(rows: int, cols: int):
    """Yield ``(i0, r, c)``: a chunk's first flat index and the 2-D indices of its elements."""
    n = rows * cols
    for i0 in range(0, n, CHUNK):
        i = np.arange(i0, min(i0 + CHUNK, n), dtype=np.uint64)
        yield i0, (i // np.uint64(cols)).astype(np.intp), (i % np.uint64(cols)).astype(np.intp)


def _scaled(v: np.ndarray, keep: np.ndarray, scale: float, dtype: np.dtype) -> np.ndarray:
    ctype = _compute_dtype(dtype)
    with np.errstate(all="ignore"):  # inf * 0 and float16 overflow are the contract's results
        kept = v.astype(ctype) * ctype(scale)
        return np.where(keep, kept, ctype(0)).astype(dtype)


def mask(bits, n, seed, offset, threshold, n_threads):
    """Write the packed keep-mask of positions ``offset + i``, ``0 <= i < n``, into ``bits``."""
    for i0 in range(0, n, CHUNK):
        i = np.arange(i0, min(i0 + CHUNK, n), dtype=np.uint64)
        keep = draw(np.uint64(offset) + i, seed) >= threshold
        bits[i0 // 8 : i0 // 8 + (keep.size + 7) // 8] = np.packbits(keep, bitorder="little")


def forward(x, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """``y = keep ? x * scale : +0.0``, drawing ``keep`` from the stream; pack it into ``bits``."""
    rows, cols = x.shape
    for i0, r, c in _chunks(rows, cols):
        pos = np.uint64(pos0) + r.astype(np.uint64) * np.uint64(row_step) + c.astype(np.uint64)
        keep = draw(pos, seed) >= threshold
        y[r, c] = _scaled(x[r, c], keep, scale, y.dtype)
        if bits.size:
            bits[i0 // 8 : i0 // 8 + (keep.size + 7) // 8] = np.packbits(keep, bitorder="little")


def backward(g, out, bits, scale, n_threads):
    """``out = keep ? g * scale : +0.0`` with ``keep`` read from the packed ``bits``."""
    rows, cols = g.shape
    for i0, r, c in _chunks(rows, cols):
        keep = np.unpackbits(bits[i0 // 8 :], count=r.size, bitorder="little").view(bool)
        out[r, c] = _scaled(g[r, c], keep, scale, out.dtype)


def scale(x, y, factor, n_threads):
    """``y = x * factor`` in the compute precision: classic-scaling eval, and the speed baseline."""
    rows, cols = x.shape
    for _, r, c in _chunks(rows, cols):
        y[r, c] = _scaled(x[r, c], True, factor, y.dtype)
