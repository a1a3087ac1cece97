# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Cython kernels: :class:`fastdrop._contract.kernels.Kernels` in C, and
``philox4x32``; and ``common``, the public ``dropout`` of the common call without the
Python layer in between.

They have the structure of ``fastdrop/_numba/kernels.py``: work is split into tiles of
``TILE`` flat elements (a multiple of 8, so each tile owns whole bytes of a packed mask);
each tile is drawn, applied and packed while it sits in L1 (``forward`` runs all its
samples over a tile of ``x`` before the next, so ``x`` is read from memory once). A call
describes its kernel, arrays and scalars in a ``Job``, and ``pool.h`` runs its tiles on
``n_threads`` threads, each a contiguous run of them, through ``_tiles``: the one place
that bounds a tile and picks the element type. Within a tile, helpers walk runs: the part
of a row that falls in the tile, contiguous in flat index and stream position.

Where the CPU has AVX2 or AVX-512, a contiguous float32 or float64 run of ``forward`` or
``mask`` goes to ``drop.h``, which draws, compares, selects and packs in the registers, so
that no word or flag reaches memory. Other contiguous runs go to ``affine.h``'s select
loops, with flags from Philox words drawn many counters at a time (``philox.h``), all
compiled for each instruction set and picked at run time; other runs take strided loops
here. The build turns off FMA contraction, so
each operation rounds where the contract says. float16 travels as its uint16 bit pattern,
bfloat16 as its int16 one (the type tells the two apart).
"""

cimport numpy as cnp
from libc.math cimport floor
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np

from fastdrop._contract.dtypes import NAMES, is_bfloat16

cnp.import_array()

cdef extern from "philox.h" nogil:
    void fd_philox(uint32_t *out, const uint32_t *counter, const uint32_t *key, int64_t n)
    int fd_keep(uint8_t *flags, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose,
                uint64_t threshold)
    int fd_normal(double *z, uint64_t pos, int64_t n, uint64_t seed)
    float fd_h2f(uint16_t h)
    uint16_t fd_f2h(float f)
    float fd_b2f(uint16_t b)
    uint16_t fd_f2b(float f)
    int fd_use_simd(int level)

cdef extern from "affine.h" nogil:
    void fd_affine_f32(const float *x, float *y, const uint8_t *keep, int64_t n, float scale,
                       float shift, float fill)
    void fd_affine_f64(const double *x, double *y, const uint8_t *keep, int64_t n, double scale,
                       double shift, double fill)
    void fd_affine_f16(const uint16_t *x, uint16_t *y, const uint8_t *keep, int64_t n,
                       float scale, float shift, uint16_t fill)
    void fd_affine_bf16(const uint16_t *x, uint16_t *y, const uint8_t *keep, int64_t n,
                        float scale, float shift, uint16_t fill)

cdef extern from "drop.h" nogil:
    ctypedef struct fd_run:
        const void *x
        void *y
        uint8_t *bits
        int64_t bit0
        uint64_t pos
        int64_t n
        uint64_t seed
        uint32_t threshold
        double scale
        double shift
        double fill
    bint fd_fused(uint64_t threshold)
    void fd_drop(const fd_run *r, int f64)

cdef extern from "pool.h" nogil:
    ctypedef void (*fd_task)(void *ctx, int64_t begin, int64_t end) noexcept nogil
    void fd_parallel(fd_task task, void *ctx, int64_t ntasks, int nthreads)
    int fastdrop_pool_workers()

cdef extern from *:
    """
    #define FD_IDENTITY (-0.0) /* x + -0.0 == x for every x: the shift of a plain scale */
    """
    const double FD_IDENTITY

cdef enum:
    TILE = 4096
    SCRATCH = 6  # fd_keep and fd_normal write whole blocks: a run of n needs n + 6 values

# float16 travels as its uint16 bit pattern, bfloat16 as its int16 one; both are computed
# in float32.
ctypedef fused real:
    float
    double
    uint16_t
    int16_t


cdef struct Grid:
    # A 2-D view: element (r, c) at data + (r * rs + c * cs) elements; any strides.
    char *data
    int64_t cols
    int64_t rs
    int64_t cs


cdef enum Kernel:
    MASK
    FORWARD
    APPLY
    BACKWARD
    SCALE
    GAUSSIAN
    ADD


cdef struct Job:
    # One kernel call: which kernel, its arrays and its scalars. Each kernel reads the
    # fields it needs.
    Kernel kernel
    int kind  # NPY_FLOAT, NPY_DOUBLE, NPY_FLOAT16 or bfloat16's: the grids' dtype (not mask)
    int64_t n  # elements of x (mask: of the mask)
    Grid x
    Grid y  # forward: sample 0, the others samples apart
    Grid keep
    Grid bias
    Grid res
    int64_t samples
    int64_t sample_stride  # in elements of y
    uint8_t *bits  # packed masks (forward: one row of bits_row bytes per sample), or NULL
    int64_t bits_row
    uint64_t seed
    uint64_t pos0
    uint64_t row_step
    uint64_t sample_step
    uint64_t threshold
    double scale
    double shift
    double fill


SIMD_LEVELS = ("portable", "avx2", "avx512")


def use_simd(level="avx512"):
    """Draw Philox words with at most ``level``'s instructions (``"avx512"``, ``"avx2"`` or
    ``"portable"`` C), convert float16 eight lanes at a time with F16C from ``"avx2"``
    on, where the CPU has them, and run bfloat16's select loop compiled for the level.
    Returns the level now in use. The results are the same at every level: the tests run
    each one."""
    return SIMD_LEVELS[fd_use_simd(SIMD_LEVELS.index(level))]


use_simd()


def pool_workers():
    """The worker threads the pool has started so far (besides the calling thread)."""
    return fastdrop_pool_workers()


cdef inline float _single(real v) noexcept nogil:
    """A float16 or bfloat16 v in float32, exactly (the other reals as they convert)."""
    if real is uint16_t:
        return fd_h2f(v)
    elif real is int16_t:
        return fd_b2f(<uint16_t>v)
    else:
        return <float>v


cdef inline real _affine(real v, double scale, double shift) noexcept nogil:
    """v * scale + shift in the compute precision, rounded to real."""
    cdef real out
    if real is double:
        return v * scale + shift
    elif real is float:
        return v * <float>scale + <float>shift
    else:
        _round(&out, _single(v) * <float>scale + <float>shift)
        return out


cdef inline real _biased(real v, real bias, real res, double scale) noexcept nogil:
    """res + (v + bias) * scale in the compute precision, rounded to real."""
    cdef real out
    if real is double:
        return res + (v + bias) * scale
    elif real is float:
        return res + (v + bias) * <float>scale
    else:
        _round(&out, _single(res) + (_single(v) + _single(bias)) * <float>scale)
        return out


cdef inline void _round(real *out, double v) noexcept nogil:
    """*out = v rounded to the compute precision, then to real."""
    if real is double:
        out[0] = v
    elif real is float:
        out[0] = <float>v
    elif real is uint16_t:
        out[0] = fd_f2h(<float>v)
    else:
        out[0] = <int16_t>fd_f2b(<float>v)


cdef inline int64_t _run_from(int64_t i, int64_t i1, int64_t cols, int64_t *r,
                              int64_t *c) noexcept nogil:
    """The run from flat index i: its row r and column c, and its length (to the end of the
    row or to i1, whichever comes first)."""
    r[0] = i // cols
    c[0] = i % cols
    return min(cols - c[0], i1 - i)


cdef inline int64_t _at(const Grid *g, int64_t r, int64_t c) noexcept nogil:
    """Where element (r, c) of g is, in elements from (0, 0)."""
    return r * g.rs + c * g.cs


cdef inline void _draw_keep(uint8_t *keep, uint64_t seed, uint64_t pos0, uint64_t row_step,
                            int64_t cols, uint64_t threshold, int64_t i0,
                            int64_t i1) noexcept nogil:
    """keep[i - i0] = draw(position of flat index i) >= threshold, for i0 <= i < i1."""
    cdef uint8_t flags[TILE + SCRATCH]
    cdef int64_t i = i0, r, c, n
    cdef int skip
    while i < i1:
        n = _run_from(i, i1, cols, &r, &c)
        skip = fd_keep(flags, pos0 + <uint64_t>r * row_step + <uint64_t>c, n, seed, 0, threshold)
        memcpy(keep + (i - i0), flags + skip, n)
        i += n


cdef inline void _gather(const Grid *g, uint8_t *out, int64_t i0, int64_t i1) noexcept nogil:
    """out[i - i0] = the byte of g at flat index i, for i0 <= i < i1: any strides."""
    cdef int64_t i = i0, r, c, n, k
    cdef const uint8_t *ap
    while i < i1:
        n = _run_from(i, i1, g.cols, &r, &c)
        ap = <const uint8_t *>g.data + _at(g, r, c)
        for k in range(n):
            out[i - i0 + k] = ap[k * g.cs]
        i += n


cdef inline void _affine_run(const real *xp, real *yp, const uint8_t *kp, int64_t n,
                             double scale, double shift, real fill) noexcept nogil:
    """yp[k] = kp[k] ? xp[k] * scale + shift : fill for k < n, contiguous; all kept if kp
    is NULL: affine.h's loop for the dtype, the same arithmetic as _affine."""
    if real is double:
        fd_affine_f64(xp, yp, kp, n, scale, shift, fill)
    elif real is float:
        fd_affine_f32(xp, yp, kp, n, <float>scale, <float>shift, fill)
    elif real is uint16_t:
        fd_affine_f16(xp, yp, kp, n, <float>scale, <float>shift, fill)
    else:
        fd_affine_bf16(<const uint16_t *>xp, <uint16_t *>yp, kp, n, <float>scale, <float>shift,
                       <uint16_t>fill)


cdef inline void _affine_tile(const real *x, const Grid *gx, real *y, const Grid *gy,
                              const uint8_t *keep, double scale, double shift, double fill,
                              int64_t i0, int64_t i1) noexcept nogil:
    """y = keep ? x * scale + shift : fill over flat indices i0 <= i < i1; all kept if keep
    is NULL. Each element of x is read before its y is written, so y may be x."""
    cdef int64_t i = i0, r, c, n, k, sx = gx.cs, sy = gy.cs
    cdef const real *xp
    cdef real *yp
    cdef real f
    cdef const uint8_t *kp
    _round(&f, fill)
    while i < i1:
        n = _run_from(i, i1, gx.cols, &r, &c)
        xp = x + _at(gx, r, c)
        yp = y + _at(gy, r, c)
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


# -- one tile of each kernel, the flat indices i0 <= i < i1, with its flags or normals in
# -- buffers on its thread's stack; then _tiles, the pool's task, which runs them.

cdef void _mask_tile(const Job *j, int64_t i0, int64_t i1) noexcept nogil:
    cdef uint8_t keep[TILE]
    if fd_fused(j.threshold):
        _drop_runs(NULL, NULL, NULL, NULL, j.bits + i0 // 8, j, j.pos0, False, i0, i1)
        return
    _draw_keep(keep, j.seed, j.pos0, j.row_step, j.x.cols, j.threshold, i0, i1)
    _pack(keep, j.bits + i0 // 8, i1 - i0)


cdef void _drop_runs(const void *x, const Grid *gx, void *y, const Grid *gy, uint8_t *bits,
                     const Job *j, uint64_t pos0, bint f64, int64_t i0,
                     int64_t i1) noexcept nogil:
    """drop.h's fused loop over the runs of flat indices i0 <= i < i1, with unit inner
    strides (x and y float64 if f64, float32 else; NULL for the bits alone), and the tile's
    packed bits from bit 0 at i0, if wanted."""
    cdef fd_run run
    cdef int64_t i = i0, r, c, size = 8 if f64 else 4
    if bits != NULL:
        memset(bits, 0, (i1 - i0 + 7) // 8)
    run.bits, run.seed, run.threshold = bits, j.seed, <uint32_t>j.threshold
    run.scale, run.shift, run.fill = j.scale, j.shift, j.fill
    run.x = run.y = NULL
    while i < i1:
        run.n = _run_from(i, i1, j.x.cols, &r, &c)
        if y != NULL:
            run.x = <const char *>x + _at(gx, r, c) * size
            run.y = <char *>y + _at(gy, r, c) * size
        run.bit0 = i - i0
        run.pos = pos0 + <uint64_t>r * j.row_step + <uint64_t>c
        fd_drop(&run, f64)
        i += run.n


cdef void _forward_tile(const real *x, real *y, const Job *j, int64_t i0,
                        int64_t i1) noexcept nogil:
    cdef uint8_t keep[TILE]
    cdef int64_t s
    cdef uint64_t pos0
    cdef uint8_t *bits
    cdef bint fused = ((real is float or real is double) and j.x.cs == 1 and j.y.cs == 1
                       and fd_fused(j.threshold))
    for s in range(j.samples):  # every sample while this tile of x sits in L1
        pos0 = j.pos0 + <uint64_t>s * j.sample_step
        bits = NULL if j.bits == NULL else j.bits + s * j.bits_row + i0 // 8
        if fused:
            _drop_runs(x, &j.x, y + s * j.sample_stride, &j.y, bits, j, pos0, real is double,
                       i0, i1)
            continue
        _draw_keep(keep, j.seed, pos0, j.row_step, j.x.cols, j.threshold, i0, i1)
        _affine_tile(x, &j.x, y + s * j.sample_stride, &j.y, keep, j.scale, j.shift, j.fill,
                     i0, i1)
        if bits != NULL:
            _pack(keep, bits, i1 - i0)


cdef void _apply_tile(const real *x, real *y, const Job *j, int64_t i0,
                      int64_t i1) noexcept nogil:
    cdef uint8_t flags[TILE]
    _gather(&j.keep, flags, i0, i1)
    _affine_tile(x, &j.x, y, &j.y, flags, j.scale, j.shift, j.fill, i0, i1)


cdef void _backward_tile(const real *g, real *out, const Job *j, int64_t i0,
                         int64_t i1) noexcept nogil:
    cdef uint8_t keep[TILE]
    _unpack(j.bits + i0 // 8, keep, i1 - i0)
    _affine_tile(g, &j.x, out, &j.y, keep, j.scale, FD_IDENTITY, 0.0, i0, i1)


cdef void _gaussian_tile(const real *x, real *y, const Job *j, int64_t i0,
                         int64_t i1) noexcept nogil:
    """y = x * f, f = 1 + sigma * z in float64 rounded to the compute precision (sigma is
    the Job's scale)."""
    cdef double z[TILE + SCRATCH]
    cdef int64_t i = i0, r, c, n, k, sx = j.x.cs, sy = j.y.cs
    cdef const real *xp
    cdef real *yp
    cdef int skip
    while i < i1:
        n = _run_from(i, i1, j.x.cols, &r, &c)
        skip = fd_normal(z, j.pos0 + <uint64_t>r * j.row_step + <uint64_t>c, n, j.seed)
        xp = x + _at(&j.x, r, c)
        yp = y + _at(&j.y, r, c)
        for k in range(n):
            yp[k * sy] = _affine(xp[k * sx], 1.0 + j.scale * z[skip + k], FD_IDENTITY)
        i += n


cdef void _add_tile(const real *x, real *y, const Job *j, int64_t i0,
                    int64_t i1) noexcept nogil:
    """y = keep ? res + (x + bias) * scale : res, a dropped element res's bits as they are."""
    cdef uint8_t keep[TILE]
    cdef const real *bias = <const real *>j.bias.data
    cdef const real *res = <const real *>j.res.data
    cdef int64_t i = i0, r, c, n, k
    cdef int64_t sx = j.x.cs, sb = j.bias.cs, sr = j.res.cs, sy = j.y.cs
    cdef const real *xp
    cdef const real *bp
    cdef const real *rp
    cdef real *yp
    cdef real v, rv
    cdef const uint8_t *kp
    _draw_keep(keep, j.seed, j.pos0, j.row_step, j.x.cols, j.threshold, i0, i1)
    while i < i1:
        n = _run_from(i, i1, j.x.cols, &r, &c)
        xp = x + _at(&j.x, r, c)
        bp = bias + _at(&j.bias, r, c)
        rp = res + _at(&j.res, r, c)
        yp = y + _at(&j.y, r, c)
        kp = keep + (i - i0)
        if sx == 1 and sr == 1 and sy == 1:
            for k in range(n):  # compute always, then select: this vectorises
                rv = rp[k]
                v = _biased(xp[k], bp[k * sb], rv, j.scale)
                yp[k] = v if kp[k] else rv
        else:
            for k in range(n):
                rv = rp[k * sr]
                yp[k * sy] = _biased(xp[k * sx], bp[k * sb], rv, j.scale) if kp[k] else rv
        i += n
    if j.bits != NULL:
        _pack(keep, j.bits + i0 // 8, i1 - i0)


cdef inline void _tile(const real *x, real *y, const Job *j, int64_t i0,
                       int64_t i1) noexcept nogil:
    """The tile i0 <= i < i1 of the Job's kernel, x and y its arrays of real."""
    if j.kernel == FORWARD:
        _forward_tile(x, y, j, i0, i1)
    elif j.kernel == APPLY:
        _apply_tile(x, y, j, i0, i1)
    elif j.kernel == BACKWARD:
        _backward_tile(x, y, j, i0, i1)
    elif j.kernel == SCALE:
        _affine_tile(x, &j.x, y, &j.y, NULL, j.scale, FD_IDENTITY, 0.0, i0, i1)
    elif j.kernel == GAUSSIAN:
        _gaussian_tile(x, y, j, i0, i1)
    else:
        _add_tile(x, y, j, i0, i1)


cdef void _tiles(void *ctx, int64_t begin, int64_t end) noexcept nogil:
    """The pool's task: tiles begin <= t < end of the Job at ctx, tile t the flat indices
    t * TILE <= i < min((t + 1) * TILE, n), on the real that the Job's arrays hold."""
    cdef const Job *j = <const Job *>ctx
    cdef int64_t t, i0, i1
    for t in range(begin, end):
        i0 = t * TILE
        i1 = min(i0 + TILE, j.n)
        if j.kernel == MASK:  # positions only, no elements
            _mask_tile(j, i0, i1)
        elif j.kind == cnp.NPY_FLOAT:
            _tile(<const float *>j.x.data, <float *>j.y.data, j, i0, i1)
        elif j.kind == cnp.NPY_DOUBLE:
            _tile(<const double *>j.x.data, <double *>j.y.data, j, i0, i1)
        elif j.kind == cnp.NPY_FLOAT16:
            _tile(<const uint16_t *>j.x.data, <uint16_t *>j.y.data, j, i0, i1)
        else:  # bfloat16: _job takes no other
            _tile(<const int16_t *>j.x.data, <int16_t *>j.y.data, j, i0, i1)


# -- the calls: describe the arrays in a Job, then run its tiles on the pool. The kernels
# -- take raw pointers, so each array is checked first to be what the tiles will read or
# -- write (the engine only hands over such views; a wrong one must fail, not scribble).

cdef Grid _grid(cnp.ndarray a, cnp.ndarray x, int kind, int ndim, bint writes) except *:
    """The 2-D view of a's last two axes (forward's y: its first sample), once a has ndim
    axes, x's last two, dtype number kind, aligned items, and is writeable if writes."""
    cdef Grid g
    cdef cnp.npy_intp size = cnp.PyArray_ITEMSIZE(a)
    if cnp.PyArray_TYPE(a) != kind:
        raise TypeError(f"kernel array of dtype {a.dtype}, where {x.dtype} or uint8 belongs")
    if (cnp.PyArray_NDIM(a) != ndim or cnp.PyArray_DIM(a, ndim - 2) != cnp.PyArray_DIM(x, 0)
            or cnp.PyArray_DIM(a, ndim - 1) != cnp.PyArray_DIM(x, 1)):
        raise ValueError(f"kernel array of shape {(<object>a).shape} for a view of shape "
                         f"{(<object>x).shape}")
    if not cnp.PyArray_ISALIGNED(a) or (writes and not cnp.PyArray_ISWRITEABLE(a)):
        raise ValueError("kernel arrays must be aligned, and outputs writeable")
    g.data = <char *>cnp.PyArray_DATA(a)
    g.cols = cnp.PyArray_DIM(a, ndim - 1)
    g.rs = cnp.PyArray_STRIDE(a, ndim - 2) // size
    g.cs = cnp.PyArray_STRIDE(a, ndim - 1) // size
    return g


cdef uint8_t *_bits(cnp.ndarray bits, int64_t nbytes, bint optional=True) except? NULL:
    """A packed mask's first byte, once it is C-contiguous uint8 with at least nbytes
    bytes; or, if optional, NULL for an empty one: no mask wanted."""
    if optional and cnp.PyArray_SIZE(bits) == 0:
        return NULL
    if (cnp.PyArray_TYPE(bits) != cnp.NPY_UINT8 or not cnp.PyArray_IS_C_CONTIGUOUS(bits)
            or cnp.PyArray_SIZE(bits) < nbytes):
        raise ValueError(f"a packed mask must be C-contiguous uint8 of {nbytes} bytes or more")
    return <uint8_t *>cnp.PyArray_DATA(bits)


cdef Job _job(Kernel kernel, cnp.ndarray x, cnp.ndarray y, int y_ndim=2) except *:
    """A Job for kernel over x's elements, a float16, bfloat16, float32 or float64 2-D view,
    writing y, x's dtype and shape (forward: y_ndim 3, samples first)."""
    cdef Job j
    j.kernel = kernel
    j.kind = cnp.PyArray_TYPE(x)
    if (j.kind != cnp.NPY_FLOAT16 and j.kind != cnp.NPY_FLOAT and j.kind != cnp.NPY_DOUBLE
            and not is_bfloat16(x.dtype)):
        raise TypeError(f"kernels take {NAMES} arrays, not {x.dtype}")
    j.n = cnp.PyArray_SIZE(x)
    j.x = _grid(x, x, j.kind, 2, False)
    j.y = _grid(y, x, j.kind, y_ndim, True)
    j.bits = NULL
    j.samples = 1
    return j


cdef void _parallel(Job *j, int n_threads):
    with nogil:
        fd_parallel(_tiles, j, (j.n + TILE - 1) // TILE, n_threads)


cdef object _ndarray = np.ndarray


cdef bint _like(object out, cnp.ndarray a):
    """Whether ``out`` can take ``common``'s result for ``a``: an ndarray of its dtype and
    shape, C-contiguous, aligned, writeable and native, that is ``a`` (the same memory
    with the same strides) or shares no byte with it."""
    cdef cnp.ndarray o
    cdef char *lo
    cdef char *hi
    cdef int d
    cdef bint same
    if type(out) is not _ndarray:
        return False
    o = out
    if (cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(a) or not cnp.PyArray_ISCARRAY(o)
            or not cnp.PyArray_ISNOTSWAPPED(o) or cnp.PyArray_NDIM(o) != cnp.PyArray_NDIM(a)):
        return False
    same = True  # the same view of the same memory: in place
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(o, d) != cnp.PyArray_DIM(a, d):
            return False
        same = same and cnp.PyArray_STRIDE(o, d) == cnp.PyArray_STRIDE(a, d)
    lo = <char *>cnp.PyArray_DATA(o)
    hi = <char *>cnp.PyArray_DATA(a)
    if lo == hi:
        return same  # else (strides differing on a length-1 axis) the general path judges
    return lo + cnp.PyArray_NBYTES(o) <= hi or hi + cnp.PyArray_NBYTES(a) <= lo


def common(x, p, rng, offset, out, int n_threads, int64_t parallel_min):
    """``dropout(x, p, rng=rng, offset=offset, out=out)`` for the common call, whole, with
    no Python in between: ``x`` an ndarray, C-contiguous, aligned, native float32 or
    float64, ``p`` a float in ``[0, 1)``, ``rng`` and ``offset`` ints in ``[0, 2**64)``,
    ``out`` None or an ndarray like ``x``, writeable, that is ``x`` itself or shares no
    byte with it. It is also ``dropout_backward(x, p, rng=rng, offset=offset)``, the same
    arithmetic. Runs on
    ``n_threads`` threads from ``parallel_min`` elements on, else on the calling thread
    (``fastdrop._engine.threads.for_call``'s rule; the caller passes its numbers). Returns None
    for anything else, without raising: the caller then takes the general path, which
    gives the same bits (and the errors)."""
    cdef cnp.ndarray a
    cdef Job j
    cdef double v, f, pv
    cdef int kind
    if type(x) is not _ndarray or not isinstance(p, float):
        return None
    if type(rng) is not int or type(offset) is not int or rng < 0 or offset < 0:
        return None
    if rng >= 2**64 or offset >= 2**64:
        return None
    pv = p
    if not (0.0 <= pv < 1.0):
        return None
    a = x
    kind = cnp.PyArray_TYPE(a)  # a dtype's number, whatever it is: bfloat16 too
    if ((kind != cnp.NPY_FLOAT and kind != cnp.NPY_DOUBLE) or not cnp.PyArray_ISCARRAY_RO(a)
            or not cnp.PyArray_ISNOTSWAPPED(a)):
        return None
    if out is None:
        y = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), kind, 0)  # empty_like(a)
    elif not _like(out, a):
        return None
    else:
        y = out
    j.kernel = FORWARD
    j.kind = kind
    j.n = cnp.PyArray_SIZE(a)
    j.x.data, j.x.cols, j.x.rs, j.x.cs = <char *>cnp.PyArray_DATA(a), j.n, j.n, 1  # one row
    j.y = j.x
    j.y.data = <char *>cnp.PyArray_DATA(y)
    j.samples, j.sample_stride, j.bits = 1, 0, NULL
    j.seed, j.pos0, j.row_step, j.sample_step = rng, offset, j.n, 0
    v = pv * 4294967296.0  # threshold and scale exactly as fastdrop._engine.checks has them
    f = floor(v)
    j.threshold = <uint64_t>f + (v - f >= 0.5)
    j.scale = 1.0 if pv == 0.0 else 1.0 / (1.0 - pv)
    j.shift, j.fill = FD_IDENTITY, 0.0
    _parallel(&j, n_threads if j.n >= parallel_min else 1)
    return y


def mask(bits, int64_t rows, int64_t cols, seed, pos0, row_step, threshold, n_threads):
    """:meth:`Kernels.mask`: each tile's flags drawn into a stack buffer, then packed."""
    cdef Job j
    if rows < 0 or cols < 0:
        raise ValueError(f"a mask of {rows} x {cols} elements")
    j.kernel = MASK
    j.n = rows * cols
    j.x.cols = cols
    j.bits = _bits(bits, (j.n + 7) // 8, False)
    j.seed, j.pos0, j.row_step, j.threshold = seed, pos0, row_step, threshold
    _parallel(&j, n_threads)


def forward(x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill,
            n_threads):
    """:meth:`Kernels.forward`: every sample drawn and applied over a tile of ``x`` while
    the tile is in L1."""
    cdef Job j = _job(FORWARD, x, y, 3)
    j.samples = y.shape[0]
    j.sample_stride = y.strides[0] // y.itemsize
    j.bits_row = (j.n + 7) // 8
    j.bits = _bits(bits, j.samples * j.bits_row)
    if j.bits != NULL and bits.shape != (j.samples, j.bits_row):
        raise ValueError(f"forward's packed masks must be {(j.samples, j.bits_row)}")
    j.seed, j.pos0, j.row_step, j.sample_step, j.threshold = (
        seed, pos0, row_step, sample_step, threshold
    )
    j.scale, j.shift, j.fill = scale, shift, fill
    _parallel(&j, n_threads)


def apply(x, keep, y, scale, shift, fill, n_threads):
    """:meth:`Kernels.apply`: each tile's ``keep`` gathered into a flag buffer, then
    applied as ``forward``'s flags are."""
    cdef Job j = _job(APPLY, x, y)
    j.keep = _grid(keep, x, cnp.NPY_UINT8, 2, False)
    j.scale, j.shift, j.fill = scale, shift, fill
    _parallel(&j, n_threads)


def backward(g, out, bits, scale, n_threads):
    """:meth:`Kernels.backward`: each tile's bits unpacked into a flag buffer, then
    applied with a shift of ``-0.0``, which changes no value."""
    cdef Job j = _job(BACKWARD, g, out)
    j.bits = _bits(bits, (j.n + 7) // 8, False)
    j.scale = scale
    _parallel(&j, n_threads)


def scale(x, y, factor, n_threads):
    """:meth:`Kernels.scale`: ``forward``'s select loops with no flags, shifted by
    ``-0.0``, which changes no value."""
    cdef Job j = _job(SCALE, x, y)
    j.scale = factor
    _parallel(&j, n_threads)


def gaussian(x, y, seed, pos0, row_step, sigma, n_threads):
    """:meth:`Kernels.gaussian`: each run's normals drawn into a stack buffer, then
    applied."""
    cdef Job j = _job(GAUSSIAN, x, y)
    j.seed, j.pos0, j.row_step, j.scale = seed, pos0, row_step, sigma
    _parallel(&j, n_threads)


def add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """:meth:`Kernels.add`: every element computed, then kept or replaced by
    ``residual``'s own value, which vectorises where ``x``, ``residual`` and ``y`` are
    contiguous."""
    cdef Job j = _job(ADD, x, y)
    j.bias = _grid(bias, x, j.kind, 2, False)
    j.res = _grid(residual, x, j.kind, 2, False)
    j.bits = _bits(bits, (j.n + 7) // 8)
    j.seed, j.pos0, j.row_step, j.threshold, j.scale = seed, pos0, row_step, threshold, scale
    _parallel(&j, n_threads)


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
