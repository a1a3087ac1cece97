"""fastdrop: fast, reproducible, NaN-safe dropout for CPUs.

Every mask is a pure function of ``(seed, offset, p, shape)``, drawn with Philox4x32-10,
and identical on every backend (Numba, Cython, NumPy), thread count and layout.
"""

try:  # first: the build writes _version.py, so only a built fastdrop has it
    from fastdrop._version import version as __version__  # noqa: F401
except ModuleNotFoundError as missing:
    if missing.name != "fastdrop._version":
        raise
    from fastdrop._source_tree import hand_over

    hand_over(__file__)  # to a built fastdrop, or an ImportError that says how to build

from fastdrop import random
from fastdrop._api.core import bernoulli_mask, dropout, dropout_backward
from fastdrop._api.family import (
    alpha_dropout,
    alpha_dropout_backward,
    drop_block,
    drop_block_backward,
    drop_path,
    drop_path_backward,
    dropout_add,
    dropout_add_backward,
    feature_alpha_dropout,
    feature_alpha_dropout_backward,
    gaussian_dropout,
    gaussian_dropout_backward,
    locked_dropout,
    locked_dropout_backward,
    spatial_dropout,
    spatial_dropout_backward,
)
from fastdrop._api.layer import (
    AlphaDropout,
    DropBlock,
    Dropout,
    DropPath,
    FeatureAlphaDropout,
    GaussianDropout,
    LockedDropout,
    SpatialDropout,
)
from fastdrop._engine import threadpool as _threadpool
from fastdrop._engine.backends import available_backends, get_backend, set_backend, use_backend
from fastdrop._engine.threads import get_num_threads, set_num_threads, threads

_threadpool.register()  # threadpoolctl, where installed, sees fastdrop's threads

__all__ = [
    "AlphaDropout",
    "DropBlock",
    "DropPath",
    "Dropout",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "LockedDropout",
    "SpatialDropout",
    "alpha_dropout",
    "alpha_dropout_backward",
    "available_backends",
    "bernoulli_mask",
    "drop_block",
    "drop_block_backward",
    "drop_path",
    "drop_path_backward",
    "dropout",
    "dropout_add",
    "dropout_add_backward",
    "dropout_backward",
    "feature_alpha_dropout",
    "feature_alpha_dropout_backward",
    "gaussian_dropout",
    "gaussian_dropout_backward",
    "get_backend",
    "get_num_threads",
    "locked_dropout",
    "locked_dropout_backward",
    "random",
    "set_backend",
    "set_num_threads",
    "spatial_dropout",
    "spatial_dropout_backward",
    "threads",
    "use_backend",
]
