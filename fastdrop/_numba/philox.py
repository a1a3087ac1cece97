"""Philox4x32-10, the contract's stream positions and its normal transform, in Numba.

Mirrors ``fastdrop/_numpy/philox.py`` (the specification) and ``fastdrop/_cy/philox.h``:
the same numbers, from ``fastdrop._contract.stream``, and the normal transform's operations in the
same order, each rounded in double precision (no fastmath, so no fused multiply-adds).
"""

import math
import sys

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from fastdrop._contract import stream as _stream
from fastdrop._contract.stream import BERNOULLI
from fastdrop._numba.jit import compiled

M0 = np.uint64(_stream.M0)
M1 = np.uint64(_stream.M1)
W0 = np.uint64(_stream.W0)
W1 = np.uint64(_stream.W1)
LOW = np.uint64(2**32 - 1)
HIGH = np.uint64(32)
# Where byte k of a uint32 sits: its shift in bits, in this machine's byte order.
BYTE = tuple(np.uint32(8 * (k if sys.byteorder == "little" else 3 - k)) for k in range(4))
BLOCK_MASK = np.uint64((1 << 62) - 1)  # blocks of positions mod 2**64
MANTISSA = np.uint64((1 << 52) - 1)
ONE_BITS = np.uint64(1023 << 52)  # the bits of 1.0
LANES = 8  # blocks in a vector of counters (vector_words), one to a 64-bit lane
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


@intrinsic
def _f64_bits(typingctx, f):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, b):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@compiled(inline="always")
def _rounds(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 with each 32-bit word in the low half of a ``uint64``.

    Written for the vectoriser: a product of two words whose high halves are known to be
    zero is one ``vpmuludq``, with no packing between rounds. The high halves collect
    junk that no multiply reads; the results are the low halves.
    """
    for _ in range(10):
        p0 = (c0 & LOW) * M0
        p1 = (c2 & LOW) * M1
        c0, c1, c2, c3 = (p1 >> HIGH) ^ c1 ^ k0, p1, (p0 >> HIGH) ^ c3 ^ k1, p0
        k0 = (k0 + W0) & LOW  # the bump after the last round is never used
        k1 = (k1 + W1) & LOW
    return c0 & LOW, c1 & LOW, c2 & LOW, c3 & LOW


@compiled
def philox_block(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on one counter; every argument and result is a ``uint32``."""
    w = _rounds(
        np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3), np.uint64(k0), np.uint64(k1)
    )
    return np.uint32(w[0]), np.uint32(w[1]), np.uint32(w[2]), np.uint32(w[3])


@compiled(inline="always")
def block_words(block, seed, purpose):
    """The four words of stream block ``block`` (mod 2**62), as ``uint64``: counter
    ``(lo32(block), hi32(block), purpose, 0)``, key ``(lo32(seed), hi32(seed))``."""
    b = block & BLOCK_MASK
    return _rounds(b & LOW, b >> HIGH, np.uint64(purpose), np.uint64(0), seed & LOW, seed >> HIGH)


def splat(builder, value, lanes):
    """IR: a vector of ``lanes`` copies of the scalar ``value``."""
    vector = ir.VectorType(value.type, lanes)
    first = builder.insert_element(ir.Constant(vector, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(
        first, first, ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes)
    )


def _round_keys(builder, seed):
    """IR: the keys of Philox's ten rounds, from the ``i64`` ``seed``, as ``LANES`` copies
    of each 32-bit word in the low halves of ``i64`` lanes: ``(k0 + r W0, k1 + r W1)``
    mod 2**32 for round ``r``, as ``_rounds`` bumps them."""
    words = (builder.trunc(seed, _I32), builder.trunc(builder.lshr(seed, _I64(32)), _I32))
    return [
        [
            splat(builder, builder.zext(builder.add(k, _I32(int(bump) * r % 2**32)), _I64), LANES)
            for k, bump in zip(words, (W0, W1), strict=True)
        ]
        for r in range(10)
    ]


def vector_words(builder, block, seed, purpose, vectors):
    """IR: the words of the ``LANES * vectors`` stream blocks from ``block`` (an ``i64``)
    on, mod 2**62, in position order, as ``2 * vectors`` vectors of sixteen ``i32``.

    Vector ``2u`` holds the words of blocks ``block + 8u`` to ``block + 8u + 3``, vector
    ``2u + 1`` those of the next four; counters and key as ``block_words``, the key from
    the ``i64`` ``seed`` and ``purpose`` an ``int``. ``fastdrop/_cy/philox.h``'s
    ``fd_step_avx512`` in generic IR, which LLVM splits where vectors are narrower: each
    word in the low half of a 64-bit lane, so that a round's products are one
    ``vpmuludq`` each on x86 (LLVM's pattern for a product of two masked words), and
    its three-way XORs one ``vpternlogq`` each under AVX-512. The high halves collect
    junk that no multiply reads. A shuffle of 32-bit elements then puts words ``2i`` and
    ``2i + 1`` of each block side by side, and a second the blocks in order: under
    AVX-512 a ``vpermt2d`` and a ``vpermt2q``. No product is shifted into a high half,
    which LLVM would fold into a 64-bit multiply (``vpmullq``, three uops).
    """
    lanes = ir.VectorType(_I64, LANES)

    def const(c):
        return ir.Constant(lanes, [int(c)] * LANES)

    def low(v):
        return builder.and_(v, const(LOW))

    def xor3(a, b, c):
        return builder.xor(builder.xor(a, b), c)

    def shuffle(a, b, order):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(order)), order))

    keys = _round_keys(builder, seed)
    c = []
    for u in range(vectors):
        first = splat(builder, builder.add(block, _I64(LANES * u)), LANES)
        b = builder.and_(
            builder.add(first, ir.Constant(lanes, list(range(LANES)))), const(BLOCK_MASK)
        )
        c.append([b, builder.lshr(b, const(HIGH)), const(purpose), const(0)])
    for k0, k1 in keys:
        for s in c:
            p0 = builder.mul(low(s[0]), const(M0))
            p1 = builder.mul(low(s[2]), const(M1))
            high0, high1 = builder.lshr(p0, const(HIGH)), builder.lshr(p1, const(HIGH))
            s[:] = xor3(high1, s[1], k0), p1, xor3(high0, s[3], k1), p0
    low_half = 0 if sys.byteorder == "little" else 1  # lane l's low half: element 2l + this
    halves = ir.VectorType(_I32, 2 * LANES)
    side_by_side = [2 * q + low_half + 2 * LANES * j for q in range(LANES) for j in range(2)]
    words = []
    for s in c:
        a = [builder.bitcast(w, halves) for w in s]
        pairs = [shuffle(a[2 * i], a[2 * i + 1], side_by_side) for i in range(2)]
        for half in range(2):
            blocks = range(4 * half, 4 * half + 4)
            order = [2 * q + j + 2 * LANES * i for q in blocks for i in range(2) for j in range(2)]
            words.append(shuffle(pairs[0], pairs[1], order))
    return words


@compiled
def draw(buf, pos, n, seed, purpose):
    """Fill ``buf`` with the words of every block covering positions ``[pos, pos + n)``.

    Returns ``pos & 3``, the index in ``buf`` of the word for ``pos``; ``buf`` holds at
    least ``n + 6`` words.
    """
    block = pos >> np.uint64(2)
    skip = np.int64(pos & np.uint64(3))
    for q in range((skip + n + 3) >> 2):
        w = block_words(block + np.uint64(q), seed, purpose)
        buf[4 * q], buf[4 * q + 1], buf[4 * q + 2], buf[4 * q + 3] = w
    return skip


@compiled
def keep_flags(flags, pos, n, seed, threshold):
    """Keep flags for positions ``[pos, pos + n)``, four to a ``uint32`` of ``flags``:
    byte ``(pos & 3) + k`` of ``flags`` (in memory order) is ``draw(pos + k) >= threshold``.

    Returns ``pos & 3``; ``flags`` holds at least ``(n + 6) / 4`` values. One 32-bit
    store a block vectorises where four byte stores do not.
    """
    block = pos >> np.uint64(2)
    skip = np.int64(pos & np.uint64(3))
    for q in range((skip + n + 3) >> 2):
        w0, w1, w2, w3 = block_words(block + np.uint64(q), seed, BERNOULLI)
        flags[q] = (
            (np.uint32(w0 >= threshold) << BYTE[0])
            | (np.uint32(w1 >= threshold) << BYTE[1])
            | (np.uint32(w2 >= threshold) << BYTE[2])
            | (np.uint32(w3 >= threshold) << BYTE[3])
        )
    return skip


def _series(coeffs, z):
    """``sum_k coeffs[k] * z**k`` by Horner's rule, highest power first (a typed stub)."""


@overload(_series, inline="always")
def _series_impl(coeffs, z):
    # Written out term by term: a loop over the tuple would stay a loop once its trip
    # count passes LLVM's unrolling threshold, and keep the caller's loop from vectorising.
    steps = "".join(f"    acc = acc * z + coeffs[{k}]\n" for k in range(len(coeffs) - 2, -1, -1))
    namespace = {}
    exec(
        f"def series(coeffs, z):\n    acc = coeffs[{len(coeffs) - 1}]\n{steps}    return acc\n",
        namespace,
    )
    return namespace["series"]


@compiled(error_model="numpy")  # no ZeroDivisionError branch
def _radius(u):
    """``sqrt(-2 ln U)`` for ``U = (2u + 1) / 2**33``, in ``(0, 1)``.

    Written for the vectoriser: NumPy's error model (Python's checks ``m + 1`` for zero,
    a branch), ``math.sqrt`` (``np.sqrt`` stops LLVM from vectorising the loop) and
    exponents as doubles (AVX2 has no vector int64-to-double conversion).
    """
    bits = _f64_bits(np.float64(u) * 2.0 + 1.0)  # exact: below 2**33
    m = _bits_f64((bits & MANTISSA) | ONE_BITS)  # 2u + 1 = m * 2**e, m in [1, 2)
    e33 = np.float64(np.uint32(bits >> np.uint64(52))) - (1023.0 + 33.0)  # e - 33, exact
    big = m > _stream.SQRT2
    m = m * 0.5 if big else m  # now m in [sqrt(1/2), sqrt(2))
    e33 = e33 + 1.0 if big else e33
    s = (m - 1.0) / (m + 1.0)
    ln_m = (2.0 * s) * _series(_stream.LOG, s * s)
    ln_u = e33 * _stream.LN2 + ln_m
    return math.sqrt(-2.0 * ln_u)


@compiled
def _cos_sin(v):
    """``cos`` and ``sin`` of ``2 pi V`` for ``V = (2v + 1) / 2**33``, in ``(0, 1)``."""
    # theta = pi * (2v + 1) / 2**32 = k * pi/2 + a, |a| <= pi/4, k = (v + 2**29) >> 30
    # (0 to 4; 32-bit arithmetic wraps 4 to 0, the same quadrant, and d below to match).
    k = np.uint32(v + np.uint32(1 << 29)) >> np.uint32(30)
    d = np.int32(np.uint32(v - (k << np.uint32(30))))  # (2v + 1 - k * 2**31 - 1) / 2
    a = (np.float64(d) * 2.0 + 1.0) * _stream.PI_2M32  # an exact odd integer times pi/2**32
    a2 = a * a
    sin_a = a * _series(_stream.SIN, a2)
    cos_a = _series(_stream.COS, a2)
    # Rotate by the quadrant k & 3 with selects, not branches, so that loops vectorise:
    # (cos a, sin a), (-sin a, cos a), (-cos a, -sin a), (sin a, -cos a).
    quadrant = k & np.uint32(3)
    swap = (quadrant & np.uint32(1)) == 1
    c = sin_a if swap else cos_a
    s = cos_a if swap else sin_a
    cos_t = -c if quadrant == 1 or quadrant == 2 else c
    sin_t = -s if quadrant >= 2 else s
    return cos_t, sin_t


@compiled
def normals(buf, words, pos, n, seed):
    """Fill ``buf`` with the standard normals of every position of the blocks covering
    ``[pos, pos + n)``, drawn under purpose ``GAUSSIAN``: words 0 and 1 of a block give
    its positions 0 and 1, words 2 and 3 its positions 2 and 3.

    Returns ``pos & 3``, the index in ``buf`` of the normal at ``pos``; ``buf`` and the
    scratch ``words`` (``uint32``) hold at least ``n + 6`` values. The words are drawn
    first and transformed in a second loop, which has no branches and vectorises.
    """
    skip = draw(words, pos, n, seed, _stream.GAUSSIAN)
    for i in range((skip + n + 3) >> 2 << 1):  # words (u, v): r cos t, then r sin t
        r = _radius(words[2 * i])
        cos_t, sin_t = _cos_sin(words[2 * i + 1])
        buf[2 * i] = r * cos_t
        buf[2 * i + 1] = r * sin_t
    return skip


@compiled
def philox4x32(counter, key):
    """Philox4x32-10 on ``uint32`` arrays of shape ``(n, 4)`` and ``(n, 2)``."""
    out = np.empty_like(counter)
    for i in range(counter.shape[0]):
        c = counter[i]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = philox_block(
            c[0], c[1], c[2], c[3], key[i, 0], key[i, 1]
        )
    return out
