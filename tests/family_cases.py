"""The family's members as forward and backward pairs of one call each: a case table that
tests of gradients and of memory layouts share."""

import fastdrop

# name: (forward(x), backward(grad)) with the same rate, seed and offset
FAMILY = {
    "dropout": (
        lambda x: fastdrop.dropout(x, 0.3, rng=1, offset=5),
        lambda g: fastdrop.dropout_backward(g, 0.3, rng=1, offset=5),
    ),
    "spatial": (
        lambda x: fastdrop.spatial_dropout(x, 0.3, rng=1),
        lambda g: fastdrop.spatial_dropout_backward(g, 0.3, rng=1),
    ),
    "locked": (
        lambda x: fastdrop.locked_dropout(x, 0.3, rng=1, time_axis=2),
        lambda g: fastdrop.locked_dropout_backward(g, 0.3, rng=1, time_axis=2),
    ),
    "drop_path": (
        lambda x: fastdrop.drop_path(x, 0.3, rng=1, scaling="classic"),
        lambda g: fastdrop.drop_path_backward(g, 0.3, rng=1, scaling="classic"),
    ),
    "alpha": (
        lambda x: fastdrop.alpha_dropout(x, 0.3, rng=1),
        lambda g: fastdrop.alpha_dropout_backward(g, 0.3, rng=1),
    ),
    "feature_alpha": (
        lambda x: fastdrop.feature_alpha_dropout(x, 0.3, rng=1),
        lambda g: fastdrop.feature_alpha_dropout_backward(g, 0.3, rng=1),
    ),
    "gaussian": (
        lambda x: fastdrop.gaussian_dropout(x, 0.3, rng=1),
        lambda g: fastdrop.gaussian_dropout_backward(g, 0.3, rng=1),
    ),
    "drop_block": (
        lambda x: fastdrop.drop_block(x, 0.3, block_size=2, rng=1),
        lambda g: fastdrop.drop_block_backward(g, 0.3, block_size=2, rng=1),
    ),
}
