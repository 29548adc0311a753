import keras

from keras_deepblocks.utils import validation

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class DepthScaled(keras.initializers.VarianceScaling):
    """Depth-scaled initialization of residual branches: `Var[w] = scale / (n L)`.

    In a stack of `L` residual blocks without batch normalization, the
    gradient variance grows like `(1 + a n Var[w])^L` (Taki 2017): He
    initialization (`Var[w] = 2 / n`) makes it explode with depth, while
    `Var[w] = c / (n L)` keeps it near `e^{a c}` at any depth. Use it for the
    kernels inside the residual branches; the rest of the network keeps its
    usual initialization.

    It is `keras.initializers.VarianceScaling` with `scale / num_blocks`, so
    `n` is the fan-in (or fan-out, or their mean: `mode`) Keras computes for
    dense and convolution kernels.

    Args:
        num_blocks: `L`, the number of residual blocks in the stack, a
            positive int.
        scale: `c`, a positive float. Defaults to `2.0`: He initialization
            for one block.
        mode: `"fan_in"` (default), `"fan_out"` or `"fan_avg"`.
        distribution: `"truncated_normal"` (default), `"untruncated_normal"`
            or `"uniform"`.
        seed: Integer seed, `keras.random.SeedGenerator` or `None`.

    Example:

    >>> init = DepthScaled(num_blocks=100)
    >>> w = ops.convert_to_numpy(init((400, 400)))
    >>> round(float(w.var() * 400 * 100), 1)  # scale c = 2
    2.0
    """

    def __init__(
        self,
        num_blocks,
        scale=2.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
    ):
        self.num_blocks = validation.positive_int(num_blocks, "num_blocks")
        self.depth_scale = validation.float_in_range(scale, "scale", 0.0, low_open=True)
        super().__init__(
            scale=self.depth_scale / self.num_blocks,
            mode=validation.one_of(mode, "mode", MODES),
            distribution=validation.one_of(distribution, "distribution", DISTRIBUTIONS),
            seed=seed,
        )

    def get_config(self):
        config = super().get_config()
        for key in ("scale", "input_axes", "output_axes"):
            config.pop(key, None)
        return {"num_blocks": self.num_blocks, "scale": self.depth_scale, **config}
