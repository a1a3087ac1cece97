"""Philox4x32-10 and the contract's stream positions, in Numba.

Mirrors ``fastdrop/_numpy/philox.py`` (the specification) and ``fastdrop/_cy/philox.h``.
"""

import numpy as np
from numba import njit

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint32(0x9E3779B9)
W1 = np.uint32(0xBB67AE85)
BLOCK_MASK = np.uint64((1 << 62) - 1)


@njit(cache=True, nogil=True)
def philox_block(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on one counter; every argument and result is a ``uint32``."""
    for r in range(10):
        if r:
            k0 = np.uint32(k0 + W0)
            k1 = np.uint32(k1 + W1)
        p0 = M0 * np.uint64(c0)
        p1 = M1 * np.uint64(c2)
        c0, c1, c2, c3 = (
            np.uint32(p1 >> np.uint64(32)) ^ c1 ^ k0,
            np.uint32(p1),
            np.uint32(p0 >> np.uint64(32)) ^ c3 ^ k1,
            np.uint32(p0),
        )
    return c0, c1, c2, c3


@njit(cache=True, nogil=True)
def draw(buf, pos, n, seed, purpose):
    """Fill ``buf`` with the words of every block covering positions ``[pos, pos + n)``.

    Returns ``pos & 3``, the index in ``buf`` of the word for ``pos``; ``buf`` holds at
    least ``n + 6`` words.
    """
    block = pos >> np.uint64(2)
    skip = np.int64(pos & np.uint64(3))
    k0 = np.uint32(seed)
    k1 = np.uint32(seed >> np.uint64(32))
    zero = np.uint32(0)
    for q in range((skip + n + 3) >> 2):
        b = (block + np.uint64(q)) & BLOCK_MASK
        w = philox_block(
            np.uint32(b), np.uint32(b >> np.uint64(32)), np.uint32(purpose), zero, k0, k1
        )
        buf[4 * q], buf[4 * q + 1], buf[4 * q + 2], buf[4 * q + 3] = w
    return skip


@njit(cache=True, nogil=True)
def philox4x32(counter, key):
    """Philox4x32-10 on ``uint32`` arrays of shape ``(n, 4)`` and ``(n, 2)``."""
    out = np.empty_like(counter)
    for i in range(counter.shape[0]):
        c = counter[i]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = philox_block(
            c[0], c[1], c[2], c[3], key[i, 0], key[i, 1]
        )
    return out
