import keras
import numpy as np
from keras import ops

from keras_deepblocks.callbacks._probes import ProbeCallback
from keras_deepblocks.callbacks._probes import block_names
from keras_deepblocks.callbacks._probes import figure_grid
from keras_deepblocks.callbacks._probes import plot_profiles
from keras_deepblocks.callbacks._probes import weighted_layers
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.utils.gradients import gradient_function
from keras_deepblocks.utils.figures import save_figure


class GradientFlow(ProbeCallback):
    """Records the mean absolute gradient of the loss for each layer's weights over training.

    On a fixed probe batch `(x, y)`, at the start of training and every
    `frequency` epochs, the gradient of the model's compiled loss (without
    regularization terms) is taken with respect to every trainable weight,
    and each layer gets the mean of `|dL/dw|` over all of its trainable
    weights. Layers come in network order; a `ResidualStack` or
    `HighwayStack` gives one entry per block (`"highway/0"`,
    `"highway/1"`, ...). This is the view of the stochastic-depth paper's
    "vanishing gradients" figure: in a deep plain network the first layers'
    gradients fall by orders of magnitude below the last ones'.

    `self.epochs` lists the recorded epochs (0: before the first epoch;
    `e`: after epoch `e`, the end of training always included);
    `self.history` holds one `{name: mean |gradient|}` dict of Python floats
    per recorded epoch, and `self.layer_names` the names in network order.

    Args:
        data: The probe batch, a tuple `(x, y)` or `(x, y, sample_weight)` of
            arrays or tensors, evaluated in one call.
        frequency: Record every `frequency` epochs. Defaults to `1`.
        log_dir: Directory for TensorBoard summaries, or `None` (default):
            a scalar `gradient_flow/<name>` per entry and, with `histograms`,
            a histogram of the gradient values, at step = epoch. Needs
            TensorFlow installed, on any backend.
        figure: Path of an image (`.png`, `.pdf`, `.svg`, ...) written at the
            end of training, or `None` (default).
        histograms: Whether TensorBoard gets histograms too. Defaults to
            `True`.
        training: The `training` argument of the model's call on the probe
            (`True` makes BatchNormalization use the probe's statistics; the
            model's state is restored after). Defaults to `False`.

    Example:

    >>> model = keras.Sequential(
    ...     [keras.Input((4,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(1, name="b")]
    ... )
    >>> model.compile("sgd", "mse")
    >>> x, y = np.ones((16, 4)), np.ones((16, 1))
    >>> flow = GradientFlow((x, y))
    >>> _ = model.fit(x, y, epochs=2, callbacks=[flow], verbose=0)
    >>> flow.epochs, flow.layer_names
    ([0, 1, 2], ['a', 'b'])
    """

    summary_prefix = "gradient_flow"

    def __init__(
        self, data, frequency=1, log_dir=None, figure=None, histograms=True, training=False
    ):
        super().__init__(
            data,
            frequency=frequency,
            log_dir=log_dir,
            figure=figure,
            histograms=histograms,
            training=training,
            needs_targets=True,
        )
        self.layer_names = []

    def _setup(self):
        model = self.model
        # The compiled loss alone: `compute_loss` would add `model.losses`,
        # which JAX's stateless gradient sees as constants (TF and torch not).
        if getattr(model, "_compile_loss", None) is None:
            raise ValueError(
                "GradientFlow takes the gradient of the model's compiled loss: compile the model "
                f"with a `loss`, received: model {model.name!r} compiled without one."
            )
        self._layers = [
            (n, layer) for n, layer in weighted_layers(model) if layer.trainable_weights
        ]
        if not self._layers:
            raise ValueError(
                f"GradientFlow found no layer with trainable weights in model {model.name!r}."
            )
        self.layer_names = [n for name, layer in self._layers for n in block_names(name, layer)]
        if not model._compile_loss.built:
            # Built outside the gradient trace and the stateless scope below: a
            # multi-output loss creates its per-output trackers when built.
            model._compile_loss(self._targets(), model(self.x), self._weights())
        targets, weights = self._targets(), self._weights()

        def loss_fn(outputs):
            # A scope that drops assignments: the per-output loss trackers of
            # a multi-output model keep the training's values.
            with keras.StatelessScope():
                return model._compile_loss(targets, outputs, weights)

        # JAX compiles the step once (op by op, its first eager call takes longer).
        self._step = gradient_function(
            model, loss_fn, training=self.training, compiled=keras.backend.backend() == "jax"
        )

    def _targets(self):
        return keras.tree.map_structure(ops.convert_to_tensor, self.y)

    def _weights(self):
        if self.sample_weight is None:
            return None
        return keras.tree.map_structure(ops.convert_to_tensor, self.sample_weight)

    def _measure(self):
        model = self.model
        gradients = self._step(self.x)
        position = {id(v): i for i, v in enumerate(model.trainable_variables)}
        record, histograms = {}, {}
        for name, layer in self._layers:
            grads = [gradients[position[id(v)]] for v in layer.trainable_weights]
            if isinstance(layer, ResidualStack):
                # Stacked weights: axis 0 is the block.
                sums = sum(
                    ops.sum(ops.reshape(ops.abs(g), (layer.num_blocks, -1)), axis=1) for g in grads
                )
                count = sum(int(np.prod(g.shape[1:])) for g in grads)
                means = ops.convert_to_numpy(sums) / count
                for index, block in enumerate(block_names(name, layer)):
                    record[block] = float(means[index])
                    if self.log_dir is not None and self.histograms:
                        histograms[block] = np.concatenate(
                            [ops.convert_to_numpy(g[index]).ravel() for g in grads]
                        )
            else:
                total = sum(ops.sum(ops.abs(g)) for g in grads)
                count = sum(int(np.prod(g.shape)) for g in grads)
                record[name] = float(ops.convert_to_numpy(total)) / count
                if self.log_dir is not None and self.histograms:
                    histograms[name] = np.concatenate(
                        [ops.convert_to_numpy(g).ravel() for g in grads]
                    )
        return record, dict(record), histograms

    def _draw(self, path):
        figure, (profile, ends) = figure_grid(2)
        names = self.layer_names
        plot_profiles(
            profile,
            names,
            self.epochs,
            [[record[n] for n in names] for record in self.history],
            "mean |dL/dw|",
            title="Gradient flow: mean absolute gradient per layer",
        )
        for name, style in ((names[0], "o-"), (names[-1], "s--")):
            ends.plot(self.epochs, [record[name] for record in self.history], style, label=name)
        ends.set_yscale("log")
        ends.set_xlabel("epoch (0: initialization)")
        ends.set_ylabel("mean |dL/dw|")
        ends.set_title("First and last layer over training")
        ends.legend(fontsize="small")
        ends.grid(True, alpha=0.3)
        figure.tight_layout()
        return save_figure(figure, path)
