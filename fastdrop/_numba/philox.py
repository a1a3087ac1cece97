"""Philox4x32-10 and the contract's stream positions, in Numba.

Mirrors ``fastdrop/_numpy/philox.py`` (the specification) and ``fastdrop/_cy/philox.h``:
counters run through Philox ``LANES`` at a time, side by side, so that LLVM turns each
round into SIMD multiplies.
"""

import numpy as np
from numba import njit

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint32(0x9E3779B9)
W1 = np.uint32(0xBB67AE85)
BLOCK_MASK = np.uint64((1 << 62) - 1)
LANES = 16


@njit(cache=True, nogil=True)
def philox_lanes(c, k):
    """Philox4x32-10 on ``LANES`` counters at once, in place.

    ``c`` is ``uint32[4, LANES]`` (counter words in, output words out) and ``k`` is
    ``uint32[2, LANES]`` (key words; they come back bumped ten times).
    """
    for _ in range(10):
        for lane in range(LANES):
            p0 = M0 * np.uint64(c[0, lane])
            p1 = M1 * np.uint64(c[2, lane])
            n0 = np.uint32(p1 >> np.uint64(32)) ^ c[1, lane] ^ k[0, lane]
            n2 = np.uint32(p0 >> np.uint64(32)) ^ c[3, lane] ^ k[1, lane]
            c[0, lane] = n0
            c[1, lane] = np.uint32(p1)
            c[2, lane] = n2
            c[3, lane] = np.uint32(p0)
            k[0, lane] += W0
            k[1, lane] += W1


@njit(cache=True, nogil=True)
def keep_flags(flags, scratch, pos, n, seed, purpose, threshold):
    """``flags[(pos & 3) + k] = draw(pos + k) >= threshold`` for ``0 <= k < n``.

    Returns ``pos & 3``. ``flags`` holds at least ``n + 4 * LANES`` bytes (the extra ones
    are scratch), and ``scratch`` is ``uint32[6, LANES]``.
    """
    block = pos >> np.uint64(2)
    skip = np.int64(pos & np.uint64(3))
    nblocks = (skip + n + 3) >> 2
    if threshold > np.uint64(0xFFFFFFFF):  # p = 1: no 32-bit draw reaches 2**32
        flags[: 4 * nblocks] = 0
        return skip
    t = np.uint32(threshold)
    c = scratch[:4]
    k = scratch[4:]
    for q0 in range(0, nblocks, LANES):
        for lane in range(LANES):
            b = (block + np.uint64(q0 + lane)) & BLOCK_MASK
            c[0, lane] = np.uint32(b)
            c[1, lane] = np.uint32(b >> np.uint64(32))
            c[2, lane] = purpose
            c[3, lane] = 0
            k[0, lane] = np.uint32(seed)
            k[1, lane] = np.uint32(seed >> np.uint64(32))
        philox_lanes(c, k)
        for lane in range(LANES):
            for w in range(4):
                flags[4 * (q0 + lane) + w] = c[w, lane] >= t
    return skip


@njit(cache=True, nogil=True)
def philox4x32(counter, key):
    """Philox4x32-10 on ``uint32`` arrays of shape ``(n, 4)`` and ``(n, 2)``."""
    n = counter.shape[0]
    out = np.empty((n, 4), np.uint32)
    c = np.zeros((4, LANES), np.uint32)
    k = np.zeros((2, LANES), np.uint32)
    for i0 in range(0, n, LANES):
        m = min(LANES, n - i0)
        for lane in range(m):
            c[:, lane] = counter[i0 + lane]
            k[:, lane] = key[i0 + lane]
        philox_lanes(c, k)
        for lane in range(m):
            out[i0 + lane] = c[:, lane]
    return out
