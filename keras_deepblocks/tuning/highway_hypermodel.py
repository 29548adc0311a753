from keras_deepblocks.training import compile_recipe
from keras_deepblocks.tuning import space
from keras_deepblocks.tuning.space import keras_tuner
from keras_deepblocks.zoo.registry import build_model


class HighwayHyperModel(keras_tuner.HyperModel):
    """Searches the depth, width, gate bias, activation and learning rate of a highway MLP.

    Builds the zoo's `highway_mlp` models (`keras_deepblocks.zoo.build_model`) compiled with
    SGD (momentum 0.9) at a constant learning rate. Each search dimension is
    given as a fixed value, a `(low, high)` range (`(low, high, step)` for
    integers) or a list of choices.

    Args:
        input_shape: Shape of one example (images are flattened).
        num_classes: Number of classes.
        depth: Highway layers. Defaults to `(2, 50)`, searched in steps of
            `depth_step`.
        width: Units per layer. Defaults to `50`.
        transform_bias: Initial gate bias. Defaults to `(-4.0, 0.0)`.
        activation: Transform activation(s). Defaults to `"relu"`.
        learning_rate: SGD learning rate, searched log-uniformly. Defaults to
            `(1e-3, 1e-1)`.
        depth_step: Step of a depth range. Defaults to `4`.
        momentum: SGD momentum. Defaults to `0.9`.
        name: Name of the HyperModel.

    Example:

    >>> x, y = np.random.rand(64, 8), np.random.randint(0, 3, 64)
    >>> tuner = keras_tuner.RandomSearch(
    ...     HighwayHyperModel((8,), 3, depth=(2, 6), width=8, transform_bias=(-4.0, 0.0)),
    ...     objective="val_accuracy", max_trials=2, directory="tuning", seed=0)
    >>> tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    >>> sorted(tuner.get_best_hyperparameters()[0].values)
    ['activation', 'depth', 'learning_rate', 'transform_bias', 'width']
    """

    def __init__(
        self,
        input_shape,
        num_classes,
        depth=(2, 50),
        width=50,
        transform_bias=(-4.0, 0.0),
        activation="relu",
        learning_rate=(1e-3, 1e-1),
        depth_step=4,
        momentum=0.9,
        name="highway_mlp",
    ):
        super().__init__(name=name)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.depth = depth
        self.width = width
        self.transform_bias = transform_bias
        self.activation = activation
        self.learning_rate = learning_rate
        self.depth_step = depth_step
        self.momentum = momentum

    def build(self, hp):
        model = build_model(
            "highway_mlp",
            self.input_shape,
            self.num_classes,
            depth=space.integer(hp, "depth", self.depth, step=self.depth_step),
            width=space.integer(hp, "width", self.width),
            transform_bias=space.real(hp, "transform_bias", self.transform_bias),
            activation=space.choice(hp, "activation", self.activation),
        )
        return compile_recipe(
            model,
            total_steps=1,
            learning_rate=space.real(hp, "learning_rate", self.learning_rate, log=True),
            momentum=self.momentum,
            weight_decay=0.0,
            milestones=(),
        )
