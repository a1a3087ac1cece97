"""fastdrop: fast, reproducible, NaN-safe dropout for CPUs.

Every mask is a pure function of ``(seed, offset, p, shape)``, drawn with Philox4x32-10,
and identical on every backend (Numba, Cython/OpenMP, NumPy), thread count and layout.
"""

try:  # first: the build writes _version.py, so only a built fastdrop has it
    from fastdrop._version import version as __version__  # noqa: F401
except ModuleNotFoundError as missing:
    if missing.name != "fastdrop._version":
        raise
    # An unbuilt source tree, found first because the current directory leads sys.path
    # (`python -m fastdrop`, or `python` in a checkout). Hand over to the first built
    # fastdrop further along sys.path: the import system returns whatever a module leaves
    # in sys.modules under its name. The rest of this file then runs in a module object
    # that nothing refers to, binding the built copy's names.
    import os
    import sys
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    _tree = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    _specs = (
        PathFinder.find_spec("fastdrop", [entry])
        for entry in sys.path
        if os.path.realpath(entry or os.curdir) != _tree
    )
    _built = next(
        (
            spec
            for spec in _specs
            if spec is not None
            and PathFinder.find_spec("fastdrop._version", spec.submodule_search_locations)
        ),
        None,
    )
    if _built is None or _built.loader is None:
        raise ImportError(
            f"fastdrop is imported from its source tree in {_tree}, which is not built, "
            "and no built fastdrop was found on sys.path. Install it first: `pip install .` "
            "(or, to work on it, `pip install --no-build-isolation -e .`)."
        ) from None
    sys.modules["fastdrop"] = module_from_spec(_built)
    _built.loader.exec_module(sys.modules["fastdrop"])

from fastdrop import random
from fastdrop._api import bernoulli_mask, dropout, dropout_backward
from fastdrop._backends import (
    available_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    threads,
    use_backend,
)
from fastdrop._layer import Dropout
from fastdrop._variants import (
    alpha_dropout,
    alpha_dropout_backward,
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

__all__ = [
    "Dropout",
    "alpha_dropout",
    "alpha_dropout_backward",
    "available_backends",
    "bernoulli_mask",
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
