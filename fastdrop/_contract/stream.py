"""The numbers and rules of the random-stream contract (``docs/random-stream.md``), in one
place: Philox's constants, the keep threshold and the keep scale.

The NumPy reference, the Numba kernels and the engine import them from here;
``fastdrop/_cy/philox.h`` spells the same numbers as C hexadecimal literals (and
``common`` in ``fastdrop/_cy/kernels.pyx`` the two rules), and the bit-exact agreement
tests hold them together.
"""

import math

U64 = 1 << 64  # stream positions and keys are taken modulo 2**64
IDENTITY = -0.0  # x + -0.0 == x for every x, -0.0 included: the shift of plain dropout

# Philox4x32-10: round multipliers and key bumps.
M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85

# Counter word 2: which kind of draw a position feeds.
BERNOULLI = 0  # keep/drop decisions: dropout, alpha dropout, masks
GAUSSIAN = 1  # standard normals: Gaussian dropout

# The Box-Muller transform from two 32-bit words to two standard normals uses only
# +, -, *, / and sqrt, each correctly rounded in IEEE double precision, so every backend
# gets the same bits on every machine. ln, sin and cos are these series:
#   ln m  = 2s * sum_k LOG[k] * s**(2k),  s = (m - 1) / (m + 1),  m in [sqrt(1/2), sqrt(2))
#   sin a = a  * sum_k SIN[k] * a**(2k),  cos a = sum_k COS[k] * a**(2k),  |a| <= pi/4
LOG = tuple(
    float.fromhex(h)
    for h in (
        "0x1p+0",
        "0x1.5555555555555p-2",
        "0x1.999999999999ap-3",
        "0x1.2492492492492p-3",
        "0x1.c71c71c71c71cp-4",
        "0x1.745d1745d1746p-4",
        "0x1.3b13b13b13b14p-4",
        "0x1.1111111111111p-4",
        "0x1.e1e1e1e1e1e1ep-5",
        "0x1.af286bca1af28p-5",
        "0x1.8618618618618p-5",
    )
)  # 1 / (2k + 1)
SIN = tuple(
    float.fromhex(h)
    for h in (
        "0x1p+0",
        "-0x1.5555555555555p-3",
        "0x1.1111111111111p-7",
        "-0x1.a01a01a01a01ap-13",
        "0x1.71de3a556c734p-19",
        "-0x1.ae64567f544e4p-26",
        "0x1.6124613a86d09p-33",
        "-0x1.ae7f3e733b81fp-41",
        "0x1.952c77030ad4ap-49",
    )
)  # (-1)**k / (2k + 1)!
COS = tuple(
    float.fromhex(h)
    for h in (
        "0x1p+0",
        "-0x1p-1",
        "0x1.5555555555555p-5",
        "-0x1.6c16c16c16c17p-10",
        "0x1.a01a01a01a01ap-16",
        "-0x1.27e4fb7789f5cp-22",
        "0x1.1eed8eff8d898p-29",
        "-0x1.93974a8c07c9dp-37",
        "0x1.ae7f3e733b81fp-45",
    )
)  # (-1)**k / (2k)!
LN2 = float.fromhex("0x1.62e42fefa39efp-1")
SQRT2 = float.fromhex("0x1.6a09e667f3bcdp+0")
PI_2M32 = float.fromhex("0x1.921fb54442d18p-31")  # pi / 2**32, exactly the double of pi scaled


def threshold(p: float) -> int:
    """``floor(p * 2**32 + 0.5)``, exactly: keep an element iff its draw is at least this."""
    v = p * 2.0**32  # exact: a power-of-two scaling
    f = math.floor(v)
    return int(f) + (v - f >= 0.5)


def keep_scale(p: float, scaling: str) -> float:
    """What a kept element is multiplied by: ``1 / (1 - p)`` for inverted scaling (0 at
    ``p = 1``, where nothing is kept), 1 for classic scaling."""
    if scaling == "classic" or p == 0.0:
        return 1.0
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)
