"""Reference kernels: ``mask``, ``forward``, ``apply``, ``backward``, ``scale``, ``gaussian``
and ``add``.

The signatures are shared by every backend. Arrays arrive validated, in native byte
order, as 2-D views ``(rows, cols)`` with any strides (zero strides too, for inputs that
broadcast); element ``(r, c)`` sits at stream position ``pos0 + r * row_step + c``
(mod 2**64) and at packed-mask index ``r * cols + c``. ``bits`` is a ``uint8`` array of
``ceil(rows * cols / 8)`` bytes (``forward``: one such row per sample), or empty when no
mask is wanted. ``n_threads`` is how many threads a kernel may use (the engine gives 1 to
calls that produce fewer elements than the backend's ``PARALLEL_MIN``, which each backend
package exports); it is accepted for a uniform signature and ignored here.

Values are computed in float32 for float16 and float32 arrays and in float64 for float64
arrays (the *compute precision*), each operation rounded there in the order written, and
rounded once more to the array's dtype at the end.
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
    with np.errstate(all="ignore"):  # inf * 0 and float16 overflow are the contract's results
        kept = v.astype(ctype) * ctype(scale) + ctype(shift)
        return np.where(keep, kept, ctype(fill)).astype(dtype)


def _pack(bits: np.ndarray, i0: int, keep: np.ndarray) -> None:
    bits[i0 // 8 : i0 // 8 + (keep.size + 7) // 8] = np.packbits(keep, bitorder="little")


def mask(bits, rows, cols, seed, pos0, row_step, threshold, n_threads):
    """Write the packed keep-mask of the ``(rows, cols)`` grid of positions into ``bits``."""
    for i0, r, c in _chunks(rows, cols):
        _pack(bits, i0, draw(_positions(pos0, row_step, r, c), seed) >= threshold)


def forward(
    x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill, n_threads
):
    """``y[s] = keep ? x * scale + shift : fill`` for each sample ``s`` of ``y``, which is
    ``(samples, rows, cols)``; sample ``s`` draws from ``pos0 + s * sample_step`` on.
    Packs each sample's ``keep`` into ``bits[s]`` when ``bits`` is not empty."""
    rows, cols = x.shape
    for s in range(y.shape[0]):
        start = (pos0 + s * sample_step) % 2**64
        for i0, r, c in _chunks(rows, cols):
            keep = draw(_positions(start, row_step, r, c), seed) >= threshold
            y[s, r, c] = _affine(x[r, c], keep, scale, shift, fill, y.dtype)
            if bits.size:
                _pack(bits[s], i0, keep)


def apply(x, keep, y, scale, shift, fill, n_threads):
    """``y = keep ? x * scale + shift : fill`` with ``keep`` a ``uint8`` array (nonzero =
    kept) of the same 2-D shape, usually a broadcast mask with zero strides."""
    rows, cols = x.shape
    for _, r, c in _chunks(rows, cols):
        y[r, c] = _affine(x[r, c], keep[r, c] != 0, scale, shift, fill, y.dtype)


def backward(g, out, bits, scale, n_threads):
    """``out = keep ? g * scale : +0.0`` with ``keep`` read from the packed ``bits``."""
    rows, cols = g.shape
    for i0, r, c in _chunks(rows, cols):
        keep = np.unpackbits(bits[i0 // 8 :], count=r.size, bitorder="little").view(bool)
        out[r, c] = _affine(g[r, c], keep, scale, IDENTITY, 0.0, out.dtype)


def scale(x, y, factor, n_threads):
    """``y = x * factor`` in the compute precision: classic-scaling eval, and the speed baseline."""
    rows, cols = x.shape
    for _, r, c in _chunks(rows, cols):
        y[r, c] = _affine(x[r, c], True, factor, IDENTITY, 0.0, y.dtype)


def gaussian(x, y, seed, pos0, row_step, sigma, n_threads):
    """``y = x * f`` with ``f = 1 + sigma * z`` computed in float64 and rounded to the
    compute precision, ``z`` the standard normal at each element's stream position."""
    rows, cols = x.shape
    ctype = _compute_dtype(y.dtype)
    for _, r, c in _chunks(rows, cols):
        f = (1.0 + sigma * normal(_positions(pos0, row_step, r, c), seed)).astype(ctype)
        with np.errstate(all="ignore"):
            y[r, c] = (x[r, c].astype(ctype) * f).astype(y.dtype)


def add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """``y = keep ? residual + (x + bias) * scale : residual``: fused bias-dropout-add.

    A dropped element is ``residual``'s own value, bit for bit, whatever ``x`` held.
    """
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
