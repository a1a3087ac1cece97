# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Cython/OpenMP kernels: ``mask``, ``forward``, ``backward``, ``scale`` and ``philox4x32``.

Same signatures and results as the reference in ``fastdrop._numpy.kernels``. Work is
split into tiles of ``TILE`` flat elements (a multiple of 8, so each tile owns whole
bytes of a packed mask); OpenMP threads take tiles, and each tile is drawn, applied and
packed while it sits in L1. The tiling never changes a result: every element's draw
depends on its stream position alone.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

cdef extern from "philox.h" nogil:
    enum: FD_LANES
    void fd_philox(uint32_t *out, const uint32_t *counter, const uint32_t *key, int64_t n)
    int fd_keep(uint8_t *flags, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose,
                uint64_t threshold)
    float fd_h2f(uint16_t h)
    uint16_t fd_f2h(float f)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FD_OPENMP 1
    #else
    #define FD_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    const int FD_OPENMP
    int omp_get_max_threads() nogil

cdef enum:
    TILE = 4096

# float16 travels as its uint16 bit pattern and is scaled in float32.
ctypedef fused real:
    float
    double
    uint16_t

OPENMP = bool(FD_OPENMP)


def max_threads():
    """OpenMP's default thread count (1 when built without OpenMP)."""
    return omp_get_max_threads()


cdef inline real _kept(real v, double scale) noexcept nogil:
    if real is double:
        return v * scale
    elif real is float:
        return v * <float>scale
    else:
        return fd_f2h(fd_h2f(v) * <float>scale)


cdef inline void _draw_keep(uint8_t *keep, uint64_t seed, uint64_t pos0, uint64_t row_step,
                            int64_t cols, uint64_t threshold, int64_t i0, int64_t i1) noexcept nogil:
    """keep[i - i0] = draw(position of flat index i) >= threshold, for i0 <= i < i1."""
    cdef uint8_t flags[TILE + 4 * FD_LANES]
    cdef int64_t i = i0, r, c, n
    cdef int skip
    while i < i1:
        r = i // cols
        c = i % cols
        n = min(cols - c, i1 - i)
        skip = fd_keep(flags, pos0 + <uint64_t>r * row_step + <uint64_t>c, n, seed, 0, threshold)
        memcpy(keep + (i - i0), flags + skip, n)
        i += n


cdef inline void _apply(const real[:, :] x, real[:, :] y, const uint8_t *keep, double scale,
                        int64_t i0, int64_t i1) noexcept nogil:
    """y = keep ? x * scale : +0.0 over flat indices i0 <= i < i1; all kept if keep is NULL."""
    cdef int64_t cols = x.shape[1], i = i0, r, c, n, k
    cdef int64_t sx = x.strides[1] // <int64_t>sizeof(real), sy = y.strides[1] // <int64_t>sizeof(real)
    cdef const real *xp
    cdef real *yp
    cdef real v
    cdef const uint8_t *kp
    while i < i1:
        r = i // cols
        c = i % cols
        n = min(cols - c, i1 - i)
        xp = &x[r, c]
        yp = &y[r, c]
        kp = keep + (i - i0)
        if sx == 1 and sy == 1 and keep == NULL:
            for k in range(n):
                yp[k] = _kept(xp[k], scale)
        elif sx == 1 and sy == 1:
            for k in range(n):  # load and multiply always, then select: this vectorises
                v = _kept(xp[k], scale)
                yp[k] = v if kp[k] else 0
        else:
            for k in range(n):
                yp[k * sy] = _kept(xp[k * sx], scale) if keep == NULL or kp[k] else 0
        i += n


cdef inline void _pack(const uint8_t *keep, uint8_t *bits, int64_t n) noexcept nogil:
    """Pack n keep flags into ceil(n / 8) bytes, little bit order."""
    cdef int64_t b, j
    cdef uint8_t v
    for b in range((n + 7) // 8):
        v = 0
        for j in range(min(8, n - 8 * b)):
            v |= keep[8 * b + j] << j
        bits[b] = v


cdef inline void _unpack(const uint8_t *bits, uint8_t *keep, int64_t n) noexcept nogil:
    cdef int64_t i
    for i in range(n):
        keep[i] = (bits[i >> 3] >> (i & 7)) & 1


cdef void _mask_tile(uint8_t *bits, int64_t n, uint64_t seed, uint64_t offset,
                     uint64_t threshold, int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t i1 = min(i0 + TILE, n)
    _draw_keep(keep, seed, offset, 0, n, threshold, i0, i1)
    _pack(keep, bits + i0 // 8, i1 - i0)


cdef void _forward_tile(const real[:, :] x, real[:, :] y, uint8_t *bits, uint64_t seed,
                        uint64_t pos0, uint64_t row_step, uint64_t threshold, double scale,
                        int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t i1 = min(i0 + TILE, x.shape[0] * x.shape[1])
    _draw_keep(keep, seed, pos0, row_step, x.shape[1], threshold, i0, i1)
    _apply(x, y, keep, scale, i0, i1)
    if bits != NULL:
        _pack(keep, bits + i0 // 8, i1 - i0)


cdef void _backward_tile(const real[:, :] g, real[:, :] out, const uint8_t *bits, double scale,
                         int64_t i0) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t i1 = min(i0 + TILE, g.shape[0] * g.shape[1])
    _unpack(bits + i0 // 8, keep, i1 - i0)
    _apply(g, out, keep, scale, i0, i1)


cdef void _scale(const real[:, :] x, real[:, :] y, double factor, int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _apply(x, y, NULL, factor, t * TILE, min(t * TILE + TILE, n))


# One tile per prange step; each tile keeps its flags on its own thread's stack. No more
# threads than tiles: a small call stays on the calling thread.
cdef void _mask(uint8_t[::1] bits, int64_t n, uint64_t seed, uint64_t offset, uint64_t threshold,
                int n_threads) noexcept nogil:
    cdef int64_t t, ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _mask_tile(&bits[0], n, seed, offset, threshold, t * TILE)


cdef void _forward(const real[:, :] x, real[:, :] y, uint8_t[::1] bits, uint64_t seed,
                   uint64_t pos0, uint64_t row_step, uint64_t threshold, double scale,
                   int n_threads) noexcept nogil:
    cdef int64_t t, n = x.shape[0] * x.shape[1], ntiles = (n + TILE - 1) // TILE
    cdef uint8_t *bp = &bits[0] if bits.shape[0] else NULL
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _forward_tile(x, y, bp, seed, pos0, row_step, threshold, scale, t * TILE)


cdef void _backward(const real[:, :] g, real[:, :] out, const uint8_t[::1] bits, double scale,
                    int n_threads) noexcept nogil:
    cdef int64_t t, n = g.shape[0] * g.shape[1], ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles, schedule="static", num_threads=min(n_threads, ntiles)):
        _backward_tile(g, out, &bits[0], scale, t * TILE)


def mask(bits, n, seed, offset, threshold, n_threads):
    """Write the packed keep-mask of positions ``offset + i``, ``0 <= i < n``, into ``bits``."""
    _mask(bits, n, seed, offset, threshold, n_threads)


def forward(x, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """``y = keep ? x * scale : +0.0``, drawing ``keep`` from the stream; pack it into ``bits``."""
    kind = x.dtype.char
    if kind == "f":
        _forward[float](x, y, bits, seed, pos0, row_step, threshold, scale, n_threads)
    elif kind == "d":
        _forward[double](x, y, bits, seed, pos0, row_step, threshold, scale, n_threads)
    else:
        _forward[uint16_t](x.view(np.uint16), y.view(np.uint16), bits, seed, pos0, row_step,
                           threshold, scale, n_threads)


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
