"""Tools on top of the package: the command line (``cli``), its ``bench`` command, the
implementations and peers that the benchmarks compare (``peers``) and how they are timed
(``timing``). Nothing in the library imports them."""
