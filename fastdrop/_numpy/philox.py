"""Philox4x32-10, the contract's stream positions and its normal transform, in plain NumPy."""

import numpy as np

from fastdrop._contract import stream as _stream

M0 = np.uint64(_stream.M0)
M1 = np.uint64(_stream.M1)
W0 = np.uint64(_stream.W0)
W1 = np.uint64(_stream.W1)
LO32 = np.uint64(0xFFFFFFFF)
ROUNDS = 10
MANTISSA = np.uint64((1 << 52) - 1)
ONE_BITS = np.uint64(1023 << 52)  # the bits of 1.0


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


def _block_words(positions: np.ndarray, seed: int, purpose: int) -> np.ndarray:
    """The four words of the block holding each position: counter
    ``(lo32(j >> 2), hi32(j >> 2), purpose, 0)``, key ``(lo32(seed), hi32(seed))``."""
    block = positions >> np.uint64(2)
    counter = np.zeros((*positions.shape, 4), np.uint32)
    counter[..., 0] = block & LO32
    counter[..., 1] = block >> np.uint64(32)
    counter[..., 2] = purpose
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], np.uint32)
    return philox4x32(counter, key)


def draw(positions: np.ndarray, seed: int, purpose: int = _stream.BERNOULLI) -> np.ndarray:
    """The 32-bit draw at each stream position (``uint64`` array) for ``seed``: output
    word ``j & 3`` of position ``j``'s block."""
    words = _block_words(positions, seed, purpose)
    lane = (positions & np.uint64(3)).astype(np.intp)
    return np.take_along_axis(words, lane[..., None], axis=-1)[..., 0]


def _series(coeffs: tuple[float, ...], z: np.ndarray) -> np.ndarray:
    """``sum_k coeffs[k] * z**k`` by Horner's rule, highest power first."""
    acc = np.full(z.shape, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * z + c
    return acc


def _radius(u: np.ndarray) -> np.ndarray:
    """``sqrt(-2 ln U)`` for ``U = (2u + 1) / 2**33``, in ``(0, 1)``."""
    y = (2 * u.astype(np.uint64) + 1).astype(np.float64)  # exact: below 2**33
    bits = y.view(np.uint64)
    e = (bits >> np.uint64(52)).astype(np.int64) - 1023  # y = m * 2**e, m in [1, 2)
    m = ((bits & MANTISSA) | ONE_BITS).view(np.float64)
    big = m > _stream.SQRT2
    m = np.where(big, m * 0.5, m)  # now m in [sqrt(1/2), sqrt(2))
    e = e + big
    s = (m - 1.0) / (m + 1.0)
    ln_m = (2.0 * s) * _series(_stream.LOG, s * s)
    ln_u = (e - 33).astype(np.float64) * _stream.LN2 + ln_m
    return np.sqrt(-2.0 * ln_u)


def _cos_sin(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of ``2 pi V`` for ``V = (2v + 1) / 2**33``, in ``(0, 1)``."""
    q = 2 * v.astype(np.int64) + 1  # theta = pi * q / 2**32 = k * pi/2 + a
    k = (q + (1 << 30)) >> 31
    a = (q - (k << 31)).astype(np.float64) * _stream.PI_2M32  # exact integer, |a| <= pi/4
    a2 = a * a
    sin_a = a * _series(_stream.SIN, a2)
    cos_a = _series(_stream.COS, a2)
    quadrant = k & 3
    cos_t = np.choose(quadrant, [cos_a, -sin_a, -cos_a, sin_a])
    sin_t = np.choose(quadrant, [sin_a, cos_a, -sin_a, -cos_a])
    return cos_t, sin_t


def normal(positions: np.ndarray, seed: int) -> np.ndarray:
    """The standard normal at each stream position (``uint64`` array) for ``seed``.

    Positions draw under purpose ``GAUSSIAN``. Words 0 and 1 of a block give the normals
    of its positions 0 and 1, words 2 and 3 those of positions 2 and 3, by Box-Muller:
    ``(u, v)`` gives ``r cos t`` (even position) and ``r sin t`` (odd position), with
    ``r = sqrt(-2 ln((2u + 1) / 2**33))`` and ``t = 2 pi (2v + 1) / 2**33``.
    """
    words = _block_words(positions, seed, _stream.GAUSSIAN)
    first = (positions & np.uint64(2)).astype(np.intp)[..., None]
    u = np.take_along_axis(words, first, axis=-1)[..., 0]
    v = np.take_along_axis(words, first + 1, axis=-1)[..., 0]
    cos_t, sin_t = _cos_sin(v)
    r = _radius(u)
    return np.where(positions & np.uint64(1), r * sin_t, r * cos_t)
