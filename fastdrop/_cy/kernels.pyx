# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Cython/OpenMP kernels: ``mask``, ``forward``, ``apply``, ``backward``, ``scale``,
``gaussian``, ``add`` and ``philox4x32``; and ``small``, the public ``dropout`` of a small
array without the Python layer in between.

Same signatures and results as the reference in ``fastdrop._numpy.kernels``: 2-D views
with any strides (zero and negative too), outputs that may be the very view of an input,
values computed in float32 (float16, float32) or float64, one rounding per operation in
the reference's order (the build turns off FMA contraction) and a final one to the dtype.
float16 travels as its uint16 bit pattern.

Work is split into tiles of ``TILE`` flat elements (a multiple of 8, so each tile owns
whole bytes of a packed mask); OpenMP threads take tiles, and each tile is drawn, applied
and packed while it sits in L1 (``forward`` runs all its samples over a tile of ``x``
before the next, so ``x`` is read from memory once). Within a tile, helpers walk runs:
the part of a row that falls in the tile, contiguous in flat index and stream position.
The tiling never changes a result: every element's draw depends on its stream position
alone.
"""

from cpython.buffer cimport (
    PyBUF_FORMAT,
    PyBUF_STRIDES,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cython.parallel cimport prange
from libc.math cimport floor
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy

import numpy as np

cdef extern from "philox.h" nogil:
    void fd_philox(uint32_t *out, const uint32_t *counter, const uint32_t *key, int64_t n)
    int fd_keep(uint8_t *flags, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose,
                uint64_t threshold)
    int fd_normal(double *z, uint64_t pos, int64_t n, uint64_t seed)
    float fd_h2f(uint16_t h)
    uint16_t fd_f2h(float f)
    int fd_use_simd(int on)

cdef extern from "affine.h" nogil:
    void fd_affine_f32(const float *x, float *y, const uint8_t *keep, int64_t n, float scale,
                       float shift, float fill)
    void fd_affine_f64(const double *x, double *y, const uint8_t *keep, int64_t n, double scale,
                       double shift, double fill)
    void fd_affine_f16(const uint16_t *x, uint16_t *y, const uint8_t *keep, int64_t n,
                       float scale, float shift, uint16_t fill)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FD_OPENMP 1
    #else
    #define FD_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #define FD_IDENTITY (-0.0) /* x + -0.0 == x for every x: the shift of a plain scale */
    """
    const int FD_OPENMP
    const double FD_IDENTITY
    int omp_get_max_threads() nogil

cdef enum:
    TILE = 4096  # also the largest call ``small`` takes: one tile, one thread, as forward
    SCRATCH = 6  # fd_keep and fd_normal write whole blocks: a run of n needs n + 6 values

# float16 travels as its uint16 bit pattern and is computed in float32.
ctypedef fused real:
    float
    double
    uint16_t

OPENMP = bool(FD_OPENMP)


def use_simd(on):
    """Draw Philox words with AVX2 intrinsics, and convert float16 eight lanes at a time
    with F16C (where the CPU has them), if ``on``; else portable C for both. Returns
    whether AVX2 is now in use. The results are the same either way: the tests run both."""
    return bool(fd_use_simd(on))


use_simd(True)


def max_threads():
    """OpenMP's default thread count (1 when built without OpenMP)."""
    return omp_get_max_threads()


cdef inline real _affine(real v, double scale, double shift) noexcept nogil:
    """v * scale + shift in the compute precision, rounded to real."""
    if real is double:
        return v * scale + shift
    elif real is float:
        return v * <float>scale + <float>shift
    else:
        return fd_f2h(fd_h2f(v) * <float>scale + <float>shift)


cdef inline real _biased(real v, real bias, real res, double scale) noexcept nogil:
    """res + (v + bias) * scale in the compute precision, rounded to real."""
    if real is double:
        return res + (v + bias) * scale
    elif real is float:
        return res + (v + bias) * <float>scale
    else:
        return fd_f2h(fd_h2f(res) + (fd_h2f(v) + fd_h2f(bias)) * <float>scale)


cdef inline void _round(real *out, double v) noexcept nogil:
    """*out = v rounded to the compute precision, then to real."""
    if real is double:
        out[0] = v
    elif real is float:
        out[0] = <float>v
    else:
        out[0] = fd_f2h(<float>v)


cdef inline int64_t _run(int64_t i, int64_t i1, int64_t cols, int64_t *r,
                         int64_t *c) noexcept nogil:
    """The run from flat index i: its row r and column c, and its length (to the end of the
    row or to i1, whichever comes first)."""
    r[0] = i // cols
    c[0] = i % cols
    return min(cols - c[0], i1 - i)


cdef inline int64_t _step(const real[:, :] a) noexcept nogil:
    """The distance in elements from a[r, c] to a[r, c + 1]: negative or zero too."""
    return a.strides[1] // <int64_t>sizeof(real)


cdef inline void _draw_keep(uint8_t *keep, uint64_t seed, uint64_t pos0, uint64_t row_step,
                            int64_t cols, uint64_t threshold, int64_t i0,
                            int64_t i1) noexcept nogil:
    """keep[i - i0] = draw(position of flat index i) >= threshold, for i0 <= i < i1."""
    cdef uint8_t flags[TILE + SCRATCH]
    cdef int64_t i = i0, r, c, n
    cdef int skip
    while i < i1:
        n = _run(i, i1, cols, &r, &c)
        skip = fd_keep(flags, pos0 + <uint64_t>r * row_step + <uint64_t>c, n, seed, 0, threshold)
        memcpy(keep + (i - i0), flags + skip, n)
        i += n


cdef inline void _gather(const uint8_t[:, :] a, uint8_t *out, int64_t i0,
                         int64_t i1) noexcept nogil:
    """out[i - i0] = a at flat index i, for i0 <= i < i1: any strides, zero ones too."""
    cdef int64_t i = i0, r, c, n, k, sa = a.strides[1]
    cdef const uint8_t *ap
    while i < i1:
        n = _run(i, i1, a.shape[1], &r, &c)
        ap = &a[r, c]
        for k in range(n):
            out[i - i0 + k] = ap[k * sa]
        i += n


cdef inline void _affine_run(const real *xp, real *yp, const uint8_t *kp, int64_t n,
                             double scale, double shift, real fill) noexcept nogil:
    """yp[k] = kp[k] ? xp[k] * scale + shift : fill for k < n, contiguous; all kept if kp
    is NULL: affine.h's loop for the dtype, the same arithmetic as _affine."""
    if real is double:
        fd_affine_f64(xp, yp, kp, n, scale, shift, fill)
    elif real is float:
        fd_affine_f32(xp, yp, kp, n, <float>scale, <float>shift, fill)
    else:
        fd_affine_f16(xp, yp, kp, n, <float>scale, <float>shift, fill)


cdef inline void _affine_tile(const real[:, :] x, real[:, :] y, const uint8_t *keep, double scale,
                              double shift, double fill, int64_t i0, int64_t i1) noexcept nogil:
    """y = keep ? x * scale + shift : fill over flat indices i0 <= i < i1; all kept if keep
    is NULL. Each element of x is read before its y is written, so y may be x."""
    cdef int64_t cols = x.shape[1], i = i0, r, c, n, k, sx = _step(x), sy = _step(y)
    cdef const real *xp
    cdef real *yp
    cdef real f
    cdef const uint8_t *kp
    _round(&f, fill)
    while i < i1:
        n = _run(i, i1, cols, &r, &c)
        xp = &x[r, c]
        yp = &y[r, c]
        kp = keep + (i - i0)
        if sx == 1 and sy == 1:
            _affine_run(xp, yp, NULL if keep == NULL else kp, n, scale, shift, f)
        else:
            for k in range(n):
                yp[k * sy] = _affine(xp[k * sx], scale, shift) if keep == NULL or kp[k] else f
        i += n


cdef inline void _pack(const uint8_t *keep, uint8_t *bits, int64_t n) noexcept nogil:
    """Pack n keep flags (0 or 1) into ceil(n / 8) bytes, little bit order: whole bytes with
    a fixed count of eight, which vectorises, then the tail."""
    cdef int64_t b, j, whole = n // 8
    cdef uint8_t v
    for b in range(whole):
        v = 0
        for j in range(8):
            v |= keep[8 * b + j] << j
        bits[b] = v
    if n > 8 * whole:
        v = 0
        for j in range(n - 8 * whole):
            v |= keep[8 * whole + j] << j
        bits[whole] = v


cdef inline void _unpack(const uint8_t *bits, uint8_t *keep, int64_t n) noexcept nogil:
    """keep[i] = bit i of the packed bits, nonzero where kept (bit i % 8 of byte i // 8):
    whole bytes with a constant mask per bit, which vectorises, then the tail."""
    cdef int64_t b, j, whole = n // 8
    for b in range(whole):
        for j in range(8):
            keep[8 * b + j] = bits[b] & (1 << j)
    for j in range(n - 8 * whole):
        keep[8 * whole + j] = bits[whole] & (1 << j)


cdef void _mask_tile(uint8_t *bits, int64_t n, uint64_t seed, uint64_t offset,
                     uint64_t threshold, int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t i1 = min(i0 + TILE, n)
    _draw_keep(keep, seed, offset, 0, n, threshold, i0, i1)
    _pack(keep, bits + i0 // 8, i1 - i0)


cdef void _forward_tile(const real[:, :] x, real[:, :, :] y, uint8_t[:, ::1] bits, uint64_t seed,
                        uint64_t pos0, uint64_t row_step, uint64_t sample_step,
                        uint64_t threshold, double scale, double shift, double fill,
                        int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t s, i1 = min(i0 + TILE, x.shape[0] * x.shape[1])
    for s in range(y.shape[0]):  # every sample while this tile of x sits in L1
        _draw_keep(keep, seed, pos0 + <uint64_t>s * sample_step, row_step, x.shape[1],
                   threshold, i0, i1)
        _affine_tile(x, y[s], keep, scale, shift, fill, i0, i1)
        if bits.shape[0]:
            _pack(keep, &bits[s, i0 // 8], i1 - i0)


cdef void _apply_tile(const real[:, :] x, const uint8_t[:, :] keep, real[:, :] y, double scale,
                      double shift, double fill, int64_t i0) noexcept nogil:
    cdef uint8_t flags[TILE]
    cdef int64_t i1 = min(i0 + TILE, x.shape[0] * x.shape[1])
    _gather(keep, flags, i0, i1)
    _affine_tile(x, y, flags, scale, shift, fill, i0, i1)


cdef void _backward_tile(const real[:, :] g, real[:, :] out, const uint8_t *bits, double scale,
                         int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t i1 = min(i0 + TILE, g.shape[0] * g.shape[1])
    _unpack(bits + i0 // 8, keep, i1 - i0)
    _affine_tile(g, out, keep, scale, FD_IDENTITY, 0.0, i0, i1)


cdef void _gaussian_tile(const real[:, :] x, real[:, :] y, uint64_t seed, uint64_t pos0,
                         uint64_t row_step, double sigma, int64_t i0) noexcept nogil:
    """y = x * f, f = 1 + sigma * z in float64 rounded to the compute precision."""
    cdef double z[TILE + SCRATCH]
    cdef int64_t cols = x.shape[1], i = i0, i1 = min(i0 + TILE, x.shape[0] * cols), r, c, n, k
    cdef int64_t sx = _step(x), sy = _step(y)
    cdef const real *xp
    cdef real *yp
    cdef int skip
    while i < i1:
        n = _run(i, i1, cols, &r, &c)
        skip = fd_normal(z, pos0 + <uint64_t>r * row_step + <uint64_t>c, n, seed)
        xp = &x[r, c]
        yp = &y[r, c]
        for k in range(n):
            yp[k * sy] = _affine(xp[k * sx], 1.0 + sigma * z[skip + k], FD_IDENTITY)
        i += n


cdef void _add_tile(const real[:, :] x, const real[:, :] bias, const real[:, :] res,
                    real[:, :] y, uint8_t *bits, uint64_t seed, uint64_t pos0, uint64_t row_step,
                    uint64_t threshold, double scale, int64_t i0) noexcept nogil:
    """y = keep ? res + (x + bias) * scale : res, a dropped element res's bits as they are."""
    cdef uint8_t keep[TILE]
    cdef int64_t cols = x.shape[1], i = i0, i1 = min(i0 + TILE, x.shape[0] * cols), r, c, n, k
    cdef int64_t sx = _step(x), sb = _step(bias), sr = _step(res), sy = _step(y)
    cdef const real *xp
    cdef const real *bp
    cdef const real *rp
    cdef real *yp
    cdef real v, rv
    cdef const uint8_t *kp
    _draw_keep(keep, seed, pos0, row_step, cols, threshold, i0, i1)
    while i < i1:
        n = _run(i, i1, cols, &r, &c)
        xp = &x[r, c]
        bp = &bias[r, c]
        rp = &res[r, c]
        yp = &y[r, c]
        kp = keep + (i - i0)
        if sx == 1 and sr == 1 and sy == 1:
            for k in range(n):  # compute always, then select: this vectorises
                rv = rp[k]
                v = _biased(xp[k], bp[k * sb], rv, scale)
                yp[k] = v if kp[k] else rv
        else:
            for k in range(n):
                rv = rp[k * sr]
                yp[k * sy] = _biased(xp[k * sx], bp[k * sb], rv, scale) if kp[k] else rv
        i += n
    if bits != NULL:
        _pack(keep, bits + i0 // 8, i1 - i0)


cdef void _scale(const real[:, :] x, real[:, :] y, double factor, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _affine_tile(x, y, NULL, factor, FD_IDENTITY, 0.0, t * TILE, min(t * TILE + TILE, n))


# One tile per prange step; each tile keeps its flags on its own thread's stack. No more
# threads than tiles: a small call stays on the calling thread.
cdef void _mask(uint8_t[::1] bits, int64_t n, uint64_t seed, uint64_t offset, uint64_t threshold,
                int n_threads) noexcept nogil:
    cdef int64_t t, ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _mask_tile(&bits[0], n, seed, offset, threshold, t * TILE)


cdef void _forward(const real[:, :] x, real[:, :, :] y, uint8_t[:, ::1] bits, uint64_t seed,
                   uint64_t pos0, uint64_t row_step, uint64_t sample_step, uint64_t threshold,
                   double scale, double shift, double fill, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _forward_tile(x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift,
                      fill, t * TILE)


cdef void _apply(const real[:, :] x, const uint8_t[:, :] keep, real[:, :] y, double scale,
                 double shift, double fill, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _apply_tile(x, keep, y, scale, shift, fill, t * TILE)


cdef void _backward(const real[:, :] g, real[:, :] out, const uint8_t[::1] bits, double scale,
                    int n_threads) noexcept nogil:
    cdef int64_t t, n = g.shape[0] * g.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _backward_tile(g, out, &bits[0], scale, t * TILE)


cdef void _gaussian(const real[:, :] x, real[:, :] y, uint64_t seed, uint64_t pos0,
                    uint64_t row_step, double sigma, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _gaussian_tile(x, y, seed, pos0, row_step, sigma, t * TILE)


cdef void _add(const real[:, :] x, const real[:, :] bias, const real[:, :] res, real[:, :] y,
               uint8_t[::1] bits, uint64_t seed, uint64_t pos0, uint64_t row_step,
               uint64_t threshold, double scale, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    cdef uint8_t *bp = &bits[0] if bits.shape[0] else NULL
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _add_tile(x, bias, res, y, bp, seed, pos0, row_step, threshold, scale, t * TILE)


cdef void _small(const real *x, real *y, int64_t n, uint64_t seed, uint64_t pos0,
                 uint64_t threshold, double scale) noexcept nogil:
    cdef uint8_t keep[TILE]
    _draw_keep(keep, seed, pos0, 0, n, threshold, 0, n)
    _affine_run(x, y, keep, n, scale, FD_IDENTITY, 0)


cdef object _ndarray = np.ndarray
cdef object _empty_like = np.empty_like
# NumPy's dtype classes of float32 and float64 (either byte order): the only ones ``small``
# asks for a buffer of, since others (bfloat16, datetime64) raise instead of exporting one.
cdef object _float32 = type(np.dtype(np.float32))
cdef object _float64 = type(np.dtype(np.float64))


def small(x, p, rng, offset):
    """``dropout(x, p, rng=rng, offset=offset)`` for the common small call, with no Python
    in between: ``x`` an ndarray of at most ``TILE`` elements, C-contiguous, aligned,
    native float32 or float64, ``p`` a float in ``[0, 1)``, ``rng`` and ``offset`` ints in
    ``[0, 2**64)``. Returns None for anything else: the caller then takes the general
    path, which gives the same bits (and the errors)."""
    cdef Py_buffer bx, by
    cdef uint64_t seed, pos, threshold
    cdef double pv, v, f, scale
    cdef int64_t n
    cdef char kind
    if type(x) is not _ndarray or not isinstance(p, float):
        return None
    if type(rng) is not int or type(offset) is not int or rng < 0 or offset < 0:
        return None
    if rng >= 2**64 or offset >= 2**64:
        return None
    pv = p
    if not (0.0 <= pv < 1.0):
        return None
    dtype_class = type(x.dtype)
    if dtype_class is not _float32 and dtype_class is not _float64:
        return None
    seed, pos = rng, offset
    PyObject_GetBuffer(x, &bx, PyBUF_STRIDES | PyBUF_FORMAT)
    try:
        kind = bx.format[0]
        n = bx.len // bx.itemsize if bx.itemsize else 0
        if ((kind != b"f" and kind != b"d") or bx.format[1] != 0 or n > TILE
                or not PyBuffer_IsContiguous(&bx, b"C")
                or (<uintptr_t>bx.buf) % <uintptr_t>bx.itemsize):
            return None
        y = _empty_like(x)
        PyObject_GetBuffer(y, &by, PyBUF_STRIDES)
        v = pv * 4294967296.0  # threshold and scale exactly as fastdrop._checks has them
        f = floor(v)
        threshold = <uint64_t>f + (v - f >= 0.5)
        scale = 1.0 if pv == 0.0 else 1.0 / (1.0 - pv)
        with nogil:
            if kind == b"f":
                _small(<const float *>bx.buf, <float *>by.buf, n, seed, pos, threshold, scale)
            else:
                _small(<const double *>bx.buf, <double *>by.buf, n, seed, pos, threshold, scale)
        PyBuffer_Release(&by)
        return y
    finally:
        PyBuffer_Release(&bx)


def mask(bits, n, seed, offset, threshold, n_threads):
    """Write the packed keep-mask of positions ``offset + i``, ``0 <= i < n``, into ``bits``."""
    _mask(bits, n, seed, offset, threshold, n_threads)


def forward(x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill,
            n_threads):
    """``y[s] = keep ? x * scale + shift : fill`` for each sample ``s`` of ``y``, which is
    ``(samples, rows, cols)``; sample ``s`` draws from ``pos0 + s * sample_step`` on.
    Packs each sample's ``keep`` into ``bits[s]`` when ``bits`` is not empty."""
    kind = x.dtype.char
    if kind == "f":
        _forward[float](x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift,
                        fill, n_threads)
    elif kind == "d":
        _forward[double](x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift,
                         fill, n_threads)
    else:
        _forward[uint16_t](x.view(np.uint16), y.view(np.uint16), bits, seed, pos0, row_step,
                           sample_step, threshold, scale, shift, fill, n_threads)


def apply(x, keep, y, scale, shift, fill, n_threads):
    """``y = keep ? x * scale + shift : fill`` with ``keep`` a ``uint8`` array (nonzero =
    kept) of the same 2-D shape, usually a broadcast mask with zero strides."""
    kind = x.dtype.char
    if kind == "f":
        _apply[float](x, keep, y, scale, shift, fill, n_threads)
    elif kind == "d":
        _apply[double](x, keep, y, scale, shift, fill, n_threads)
    else:
        _apply[uint16_t](x.view(np.uint16), keep, y.view(np.uint16), scale, shift, fill, n_threads)


def backward(g, out, bits, scale, n_threads):
    """``out = keep ? g * scale : +0.0`` with ``keep`` read from the packed ``bits``."""
    kind = g.dtype.char
    if kind == "f":
        _backward[float](g, out, bits, scale, n_threads)
    elif kind == "d":
        _backward[double](g, out, bits, scale, n_threads)
    else:
        _backward[uint16_t](g.view(np.uint16), out.view(np.uint16), bits, scale, n_threads)


def scale(x, y, factor, n_threads):
    """``y = x * factor`` in the compute precision: classic-scaling eval, and the speed baseline."""
    kind = x.dtype.char
    if kind == "f":
        _scale[float](x, y, factor, n_threads)
    elif kind == "d":
        _scale[double](x, y, factor, n_threads)
    else:
        _scale[uint16_t](x.view(np.uint16), y.view(np.uint16), factor, n_threads)


def gaussian(x, y, seed, pos0, row_step, sigma, n_threads):
    """``y = x * f`` with ``f = 1 + sigma * z`` computed in float64 and rounded to the
    compute precision, ``z`` the standard normal at each element's stream position."""
    kind = x.dtype.char
    if kind == "f":
        _gaussian[float](x, y, seed, pos0, row_step, sigma, n_threads)
    elif kind == "d":
        _gaussian[double](x, y, seed, pos0, row_step, sigma, n_threads)
    else:
        _gaussian[uint16_t](x.view(np.uint16), y.view(np.uint16), seed, pos0, row_step, sigma,
                            n_threads)


def add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """``y = keep ? residual + (x + bias) * scale : residual``: fused bias-dropout-add.

    A dropped element is ``residual``'s own value, bit for bit, whatever ``x`` held.
    """
    kind = x.dtype.char
    if kind == "f":
        _add[float](x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads)
    elif kind == "d":
        _add[double](x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads)
    else:
        _add[uint16_t](x.view(np.uint16), bias.view(np.uint16), residual.view(np.uint16),
                       y.view(np.uint16), bits, seed, pos0, row_step, threshold, scale, n_threads)


def philox4x32(counter, key):
    """Philox4x32-10 on ``uint32`` arrays of shape ``(n, 4)`` and ``(n, 2)``."""
    cdef const uint32_t[:, ::1] c = np.ascontiguousarray(counter, dtype=np.uint32)
    cdef const uint32_t[:, ::1] k = np.ascontiguousarray(key, dtype=np.uint32)
    out = np.empty((c.shape[0], 4), np.uint32)
    cdef uint32_t[:, ::1] o = out
    if c.shape[0]:
        with nogil:
            fd_philox(&o[0, 0], &c[0, 0], &k[0, 0], c.shape[0])
    return out
