"""Importing fastdrop from its unbuilt source tree.

``python -m fastdrop`` (or ``python`` started in a checkout) finds the source tree first,
because the current directory leads ``sys.path``; the tree lacks what the build writes
(``_version.py``, the compiled kernels). :func:`hand_over` then runs the first built
fastdrop further along ``sys.path`` instead, or says how to build one.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder
from importlib.util import module_from_spec


def hand_over(init_file: str) -> None:
    """Put the first built fastdrop on ``sys.path``, outside the tree of ``init_file``, in
    ``sys.modules["fastdrop"]`` and run it: the import system returns whatever a module
    leaves there under its name. The rest of the tree's ``__init__`` then runs in a module
    object that nothing refers to, binding the built copy's names.

    Raises
    ------
    ImportError
        When no built fastdrop is on ``sys.path``, saying how to build one.
    """
    tree = os.path.dirname(os.path.dirname(os.path.realpath(init_file)))
    specs = (
        PathFinder.find_spec("fastdrop", [entry])
        for entry in sys.path
        if os.path.realpath(entry or os.curdir) != tree
    )
    built = next(
        (
            spec
            for spec in specs
            if spec is not None
            and PathFinder.find_spec("fastdrop._version", spec.submodule_search_locations)
        ),
        None,
    )
    if built is None or built.loader is None:
        raise ImportError(
            f"fastdrop is imported from its source tree in {tree}, which is not built, "
            "and no built fastdrop was found on sys.path. Install it first: `pip install .` "
            "(or, to work on it, `pip install --no-build-isolation -e .`)."
        ) from None
    del sys.modules[__name__]  # this tree's: the built fastdrop has its own
    sys.modules["fastdrop"] = module_from_spec(built)
    built.loader.exec_module(sys.modules["fastdrop"])
