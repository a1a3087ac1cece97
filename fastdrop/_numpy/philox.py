"""Philox4x32-10 and the stream positions of the contract, in plain NumPy."""

import numpy as np

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint64(0x9E3779B9)
W1 = np.uint64(0xBB67AE85)
LO32 = np.uint64(0xFFFFFFFF)
ROUNDS = 10


def philox4x32(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 on ``uint32`` arrays of shape ``(..., 4)`` and ``(..., 2)``.

    Parameters
    ----------
    counter : ndarray of uint32, shape (..., 4)
    key : ndarray of uint32, shape (..., 2)
        Broadcast against ``counter[..., 0]``.

    Returns
    -------
    ndarray of uint32, shape (..., 4)
    """
    c0, c1, c2, c3 = (counter[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = (key[..., i].astype(np.uint64) for i in range(2))
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + W0) & LO32
            k1 = (k1 + W1) & LO32
        p0 = c0 * M0
        p1 = c2 * M1
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & LO32, (p0 >> 32) ^ c3 ^ k1, p0 & LO32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def draw(positions: np.ndarray, seed: int, purpose: int = 0) -> np.ndarray:
    """The 32-bit draw at each stream position (``uint64`` array) for ``seed``.

    Position ``j`` uses counter ``(lo32(j >> 2), hi32(j >> 2), purpose, 0)`` and key
    ``(lo32(seed), hi32(seed))``, and takes output word ``j & 3``.
    """
    block = positions >> np.uint64(2)
    counter = np.zeros((*positions.shape, 4), np.uint32)
    counter[..., 0] = block & LO32
    counter[..., 1] = block >> np.uint64(32)
    counter[..., 2] = purpose
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], np.uint32)
    words = philox4x32(counter, key)
    lane = (positions & np.uint64(3)).astype(np.intp)
    return np.take_along_axis(words, lane[..., None], axis=-1)[..., 0]
