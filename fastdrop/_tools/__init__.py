"""Tools on top of the package: the command line (``cli``) and the benchmark (``bench``),
with the peers they compare against. Nothing in the library imports them."""
