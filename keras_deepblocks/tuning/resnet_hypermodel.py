from keras_deepblocks.training import compile_recipe
from keras_deepblocks.tuning import space
from keras_deepblocks.tuning.space import keras_tuner
from keras_deepblocks.zoo.registry import PAPER_RESNET_DEPTHS
from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.registry import resnet_units_per_stage

# The paper's depths but 1202, whose trials would take hours each.
DEFAULT_DEPTHS = [depth for depth in PAPER_RESNET_DEPTHS if depth <= 110]


class ResNetCifarHyperModel(keras_tuner.HyperModel):
    """Searches the depth, stochastic-depth survival probability and learning rate of a CIFAR ResNet.

    Builds the zoo's `resnet{depth}` models (`keras_deepblocks.zoo.build_model`;
    softmax outputs, no built-in preprocessing: feed normalized images) compiled with
    the paper's recipe: SGD with momentum 0.9, weight decay 1e-4 and the
    learning rate divided by 10 at 50 % and 75 % of `total_steps` (a constant
    rate if `total_steps` is `None`). Each search dimension is a fixed value,
    a `(low, high)` range or a list of choices.

    Args:
        input_shape: Shape of one image. Defaults to `(32, 32, 3)`.
        num_classes: Number of classes. Defaults to `10`.
        depth: A depth `6n + 2` or a list of them. Defaults to
            `[20, 32, 44, 56, 110]`.
        final_survival_probability: `p_L` of the linear decay rule; `1.0`
            means no stochastic depth. Defaults to `(0.5, 1.0)`.
        learning_rate: Initial learning rate, searched log-uniformly.
            Defaults to `(0.01, 0.3)`.
        total_steps: Optimizer steps of one trial's training, for the step
            schedule. Defaults to `None` (constant rate).
        weight_decay: L2 weight decay of the kernels. Defaults to `1e-4`.
        name: Name of the HyperModel.

    Example (`train_ds`, `val_ds`: batches of normalized CIFAR images and labels):

    ```python
    tuner = keras_tuner.Hyperband(
        ResNetCifarHyperModel(depth=[20, 56, 110], total_steps=30 * 390),
        objective="val_accuracy", max_epochs=30)
    tuner.search(train_ds, validation_data=val_ds)
    ```
    """

    def __init__(
        self,
        input_shape=(32, 32, 3),
        num_classes=10,
        depth=DEFAULT_DEPTHS,
        final_survival_probability=(0.5, 1.0),
        learning_rate=(0.01, 0.3),
        total_steps=None,
        weight_decay=1e-4,
        name="resnet_cifar",
    ):
        super().__init__(name=name)
        if isinstance(depth, tuple):  # a range: most of its integers are no depth
            raise ValueError(
                "`depth` must be a CIFAR ResNet depth 6n + 2 or a list of them (e.g. "
                f"[20, 32, 44, 56, 110]), not a range; received: {depth!r}"
            )
        for value in depth if isinstance(depth, list) else [depth]:
            resnet_units_per_stage(value)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.depth = depth
        self.final_survival_probability = final_survival_probability
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.weight_decay = weight_decay

    def build(self, hp):
        survival = space.real(hp, "final_survival_probability", self.final_survival_probability)
        model = build_model(
            f"resnet{space.integer(hp, 'depth', self.depth)}",
            self.input_shape,
            self.num_classes,
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
