"""Raw access to fastdrop's generator, Philox4x32-10 (Salmon et al., SC'11)."""

from __future__ import annotations

import numpy as np

from fastdrop._numpy.philox import philox4x32 as _philox4x32

__all__ = ["philox4x32"]


def philox4x32(counter: np.typing.ArrayLike, key: np.typing.ArrayLike) -> np.ndarray:
    """Philox4x32-10, vectorised over leading axes.

    Parameters
    ----------
    counter : array_like of uint32, shape (..., 4)
    key : array_like of uint32, shape (..., 2)
        Broadcast against ``counter`` over the leading axes.

    Returns
    -------
    ndarray of uint32, shape (..., 4)

    Examples
    --------
    >>> import numpy as np
    >>> from fastdrop.random import philox4x32
    >>> philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32))
    array([1713891541, 3781805453, 3159862348, 2600524760], dtype=uint32)
    """
    counter = _as_words(counter, 4, "counter")
    key = _as_words(key, 2, "key")
    try:
        shape = np.broadcast_shapes(counter.shape[:-1], key.shape[:-1])
    except ValueError:
        raise ValueError(
            f"counter and key do not broadcast: {counter.shape} and {key.shape}"
        ) from None
    counter = np.broadcast_to(counter, (*shape, 4))
    key = np.broadcast_to(key, (*shape, 2))
    return _philox4x32(counter, key)


def _as_words(a: np.typing.ArrayLike, width: int, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "ui":
        raise TypeError(f"{name} must hold unsigned 32-bit integers, got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), got {a.shape}")
    if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
        raise ValueError(f"{name} words must be in [0, 2**32)")
    return a.astype(np.uint32, copy=False)
