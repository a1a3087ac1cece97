"""The NumPy front: the public functions (``core``, ``family``) and layers (``layer``).

Each public function is its docstring, a parse of its arguments into a request
(``fastdrop._engine.request``) and a run of that request over the whole array.
"""
