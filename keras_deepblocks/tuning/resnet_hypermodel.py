from keras_deepblocks.training import compile_recipe
from keras_deepblocks.tuning import space
from keras_deepblocks.tuning.space import keras_tuner

PAPER_DEPTHS = [20, 32, 44, 56, 110]


class ResNetCifarHyperModel(keras_tuner.HyperModel):
    """Searches the depth, stochastic-depth survival probability and learning rate of a CIFAR ResNet.

    Builds `keras_deepblocks.zoo.resnet_cifar.resnet_cifar` models (softmax
    outputs, no built-in preprocessing: feed normalized images) compiled with
    the paper's recipe: SGD with momentum 0.9, weight decay 1e-4 and the
    learning rate divided by 10 at 50 % and 75 % of `total_steps` (a constant
    rate if `total_steps` is `None`). Each search dimension is a fixed value,
    a `(low, high)` range or a list of choices.

    Args:
        input_shape: Shape of one image. Defaults to `(32, 32, 3)`.
        num_classes: Number of classes. Defaults to `10`.
        depth: Depths `6n + 2`. Defaults to `[20, 32, 44, 56, 110]`.
        final_survival_probability: `p_L` of the linear decay rule; `1.0`
            means no stochastic depth. Defaults to `(0.5, 1.0)`.
        learning_rate: Initial learning rate, searched log-uniformly.
            Defaults to `(0.01, 0.3)`.
        total_steps: Optimizer steps of one trial's training, for the step
            schedule. Defaults to `None` (constant rate).
        weight_decay: L2 weight decay of the kernels. Defaults to `1e-4`.
        name: Name of the HyperModel.

    Example:

    >>> tuner = keras_tuner.Hyperband(
    ...     ResNetCifarHyperModel(depth=[20, 56, 110]),
    ...     objective="val_accuracy", max_epochs=30)
    >>> tuner.search(train_ds, validation_data=val_ds)
    """

    def __init__(
        self,
        input_shape=(32, 32, 3),
        num_classes=10,
        depth=PAPER_DEPTHS,
        final_survival_probability=(0.5, 1.0),
        learning_rate=(0.01, 0.3),
        total_steps=None,
        weight_decay=1e-4,
        name="resnet_cifar",
    ):
        super().__init__(name=name)
        depths = depth if isinstance(depth, list) else [depth]
        if isinstance(depth, tuple) or any(
            not isinstance(d, int) or d < 8 or (d - 2) % 6 for d in depths
        ):
            raise ValueError(
                "`depth` must be a depth 6n + 2 or a list of them (e.g. [20, 32, 44, 56, 110]), "
                f"got {depth!r}."
            )
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.depth = depth
        self.final_survival_probability = final_survival_probability
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.weight_decay = weight_decay

    def build(self, hp):
        from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

        survival = space.real(hp, "final_survival_probability", self.final_survival_probability)
        model = resnet_cifar(
            space.integer(hp, "depth", self.depth),
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            final_survival_probability=None if survival >= 1.0 else survival,
            include_preprocessing=False,
            classifier_activation="softmax",
        )
        return compile_recipe(
            model,
            total_steps=self.total_steps or 1,
            learning_rate=space.real(hp, "learning_rate", self.learning_rate, log=True),
            weight_decay=self.weight_decay,
            milestones=(0.5, 0.75) if self.total_steps else (),
        )
