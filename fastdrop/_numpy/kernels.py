"""Reference kernels: the executable specification of the kernel contract.

These implement :class:`fastdrop._contract.kernels.Kernels`, which says what each kernel
takes and computes; every fast backend is tested bit for bit against them. The code
favours being obviously right over being fast: a kernel works through the flat indices in
chunks of ``CHUNK`` elements, so that it never holds temporaries the size of its input;
it draws a chunk at its stream positions with ``fastdrop._numpy.philox`` and computes it
with whole-chunk NumPy operations, one per operation the contract writes, each cast to the
compute precision. It ignores ``n_threads``: it always runs on the calling thread.
"""

import numpy as np

from fastdrop._numpy.philox import draw, normal

CHUNK = 1 << 16  # elements per step; a multiple of 8 so that chunks own whole mask bytes
IDENTITY = -0.0  # x + -0.0 == x for every x, -0.0 included: the shift of plain dropout


def _compute_dtype(dtype: np.dtype) -> type:
    return np.float64 if dtype.char == "d" else np.float32


def _chunks(rows: int, cols: int):
    """Yield ``(i0, r, c)``: a chunk's first flat index and the 2-D indices of its elements."""
    n = rows * cols
    for i0 in range(0, n, CHUNK):
        i = np.arange(i0, min(i0 + CHUNK, n), dtype=np.uint64)
        yield i0, (i // np.uint64(cols)).astype(np.intp), (i % np.uint64(cols)).astype(np.intp)


def _positions(pos0: int, row_step: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.uint64(pos0) + r.astype(np.uint64) * np.uint64(row_step) + c.astype(np.uint64)


def _affine(v, keep, scale, shift, fill, dtype) -> np.ndarray:
    """``keep ? v * scale + shift : fill`` in the compute precision, rounded to ``dtype``."""
    ctype = _compute_dtype(dtype)
    with np.errstate(all="ignore"):  # inf * 0 and 16-bit overflow are the contract's results
        kept = v.astype(ctype) * ctype(scale) + ctype(shift)
        return np.where(keep, kept, ctype(fill)).astype(dtype)


def _pack(bits: np.ndarray, i0: int, keep: np.ndarray) -> None:
    bits[i0 // 8 : i0 // 8 + (keep.size + 7) // 8] = np.packbits(keep, bitorder="little")


def mask(bits, rows, cols, seed, pos0, row_step, threshold, n_threads):
    """:meth:`Kernels.mask`: each chunk's flags packed by ``np.packbits``."""
    for i0, r, c in _chunks(rows, cols):
        _pack(bits, i0, draw(_positions(pos0, row_step, r, c), seed) >= threshold)


def forward(
    x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill, n_threads
):
    """:meth:`Kernels.forward`: one sample after the other, chunk by chunk."""
    rows, cols = x.shape
    for s in range(y.shape[0]):
        start = (pos0 + s * sample_step) % 2**64
        for i0, r, c in _chunks(rows, cols):
            keep = draw(_positions(start, row_step, r, c), seed) >= threshold
            y[s, r, c] = _affine(x[r, c], keep, scale, shift, fill, y.dtype)
            if bits.size:
                _pack(bits[s], i0, keep)


def apply(x, keep, y, scale, shift, fill, n_threads):
    """:meth:`Kernels.apply`: ``keep`` read chunk by chunk through its own strides."""
    rows, cols = x.shape
    for _, r, c in _chunks(rows, cols):
        y[r, c] = _affine(x[r, c], keep[r, c] != 0, scale, shift, fill, y.dtype)


def backward(g, out, bits, scale, n_threads):
    """:meth:`Kernels.backward`: each chunk's flags unpacked by ``np.unpackbits``."""
    rows, cols = g.shape
    for i0, r, c in _chunks(rows, cols):
        keep = np.unpackbits(bits[i0 // 8 :], count=r.size, bitorder="little").view(bool)
        out[r, c] = _affine(g[r, c], keep, scale, IDENTITY, 0.0, out.dtype)


def scale(x, y, factor, n_threads):
    """:meth:`Kernels.scale`: ``_affine`` keeping every element, shifted by ``IDENTITY``."""
    rows, cols = x.shape
    for _, r, c in _chunks(rows, cols):
        y[r, c] = _affine(x[r, c], True, factor, IDENTITY, 0.0, y.dtype)


def gaussian(x, y, seed, pos0, row_step, sigma, n_threads):
    """:meth:`Kernels.gaussian`: each chunk's normals from ``fastdrop._numpy.philox``."""
    rows, cols = x.shape
    ctype = _compute_dtype(y.dtype)
    for _, r, c in _chunks(rows, cols):
        f = (1.0 + sigma * normal(_positions(pos0, row_step, r, c), seed)).astype(ctype)
        with np.errstate(all="ignore"):
            y[r, c] = (x[r, c].astype(ctype) * f).astype(y.dtype)


def add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """:meth:`Kernels.add`: ``np.where`` takes a dropped element from ``residual`` itself,
    never through the compute precision."""
    rows, cols = x.shape
    ctype = _compute_dtype(y.dtype)
    for i0, r, c in _chunks(rows, cols):
        keep = draw(_positions(pos0, row_step, r, c), seed) >= threshold
        res = residual[r, c]
        with np.errstate(all="ignore"):
            t = x[r, c].astype(ctype) + bias[r, c].astype(ctype)
            kept = (res.astype(ctype) + t * ctype(scale)).astype(y.dtype)
        y[r, c] = np.where(keep, kept, res)
        if bits.size:
            _pack(bits, i0, keep)
