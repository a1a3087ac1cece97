"""The ground layer: what every backend computes, written once.

``stream`` holds the numbers of the random-stream contract (``docs/random-stream.md``):
Philox's constants, the keep threshold and the keep scale. ``kernels`` is the kernel
Protocol: each kernel's name, signature and meaning; ``dtypes``, the element types they
take. The backends (``fastdrop._numpy``, the reference; ``fastdrop._numba``;
``fastdrop._cy``) implement it, and nothing here imports them.
"""
