"""The engine: one layer between the fronts and the backends.

``checks`` validates arguments; ``request`` turns a public call's arguments into one typed
request object; ``plan`` covers a *window* of a logical array (its shape, and where it
sits in the whole array's stream) with native 2-D views; ``run`` picks the backend and
calls its kernels over the plan. ``backends`` and ``threads`` hold the process-wide
choices a run reads. The NumPy front (``fastdrop._api``) hands the engine a whole array;
the Dask front (``fastdrop.dask``) hands it one chunk's window at a time.
"""
