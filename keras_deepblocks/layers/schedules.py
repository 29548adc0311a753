"""Survival-probability schedules for stochastic depth."""

from keras_deepblocks.utils import validation
from keras_deepblocks.layers.stochastic_depth import survival_probability_arg


def linear_decay(block_index, num_blocks, final_survival_probability=0.5):
    """Linear decay rule of Huang et al. (2016): `p_l = 1 - l / L (1 - p_L)`.

    The input (block 0) is always kept; survival falls linearly to `p_L` at
    the last block.

    Args:
        block_index: `l`, the block's position, counted from `1` to
            `num_blocks` over all blocks of the network.
        num_blocks: `L`, the number of residual blocks.
        final_survival_probability: `p_L`, in `(0, 1]`. Defaults to `0.5`
            (the paper's choice).

    Returns:
        The survival probability `p_l` as a Python float.

    Example:

    >>> [linear_decay(l, 4, 0.5) for l in range(1, 5)]
    [0.875, 0.75, 0.625, 0.5]
    """
    num_blocks = validation.positive_int(num_blocks, "num_blocks")
    block_index = validation.positive_int(block_index, "block_index")
    if block_index > num_blocks:
        raise ValueError(
            f"`block_index` must be in [1, num_blocks={num_blocks}], " f"got {block_index}."
        )
    final = survival_probability_arg(final_survival_probability, "final_survival_probability")
    return 1.0 - block_index / num_blocks * (1.0 - final)
