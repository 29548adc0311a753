"""Process side of `tests/test_saving.py`: save every public layer and zoo model, or load them.

    python tests/saving_roundtrip.py save OUT          # build, save OUT/<case>.keras + .npz
    python tests/saving_roundtrip.py load SAVED... OUT # load SAVED/*.keras into OUT/<SAVED name>/

`save` builds each case with random weights (every float variable, so that a
weight that fails to load changes the outputs), runs it and records its
inputs, outputs, weights (by path), config and compiled metrics. `load` runs
in a fresh process that imports only keras and `keras_deepblocks`, as a user
does: it loads each file with the default `safe_mode=True`, runs it on the
saved inputs and records the same things, or the error. The backend is
`KERAS_BACKEND`'s. The comparisons are made by the test.
"""

import json
import pathlib
import resource
import sys
import time
import traceback

import keras
import numpy as np

CHARACTER_TOKENS = np.array([["naïve", "cat", ""], ["<S>", "Hi", "x" * 12]])
TINY_CHAR_CNN = {
    "embedding": {"dim": 4},
    "filters": [[1, 4], [2, 6], [3, 6]],
    "n_highway": 2,
    "activation": "relu",
    "n_characters": 262,
    "max_characters_per_token": 8,
    "projection_dim": 6,
}


# ------------------------------------------------------------------- the cases
# Each returns (model, inputs, evaluation data or None). Builders import the
# package inside, so that `load` imports nothing but `keras_deepblocks`.


def highway(rng):
    from keras_deepblocks.layers import Highway

    inputs = keras.Input((3, 6))
    x = Highway(
        activation="tanh",
        transform_bias=-3.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        bias_constraint=keras.constraints.MaxNorm(2.0),
    )(inputs)
    outputs = Highway()(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 3, 6)), None


def highway_conv2d(rng):
    from keras_deepblocks.layers import HighwayConv2D

    inputs = keras.Input((5, 6, 3))
    x = HighwayConv2D(
        kernel_size=(3, 1), dilation_rate=(1, 2), activation="tanh", transform_bias=-2.0
    )(inputs)
    outputs = HighwayConv2D()(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 5, 6, 3)), None


def highway_conv2d_channels_first(rng):
    from keras_deepblocks.layers import HighwayConv2D

    # Square images: issue 10 item 7 (non-square channels_first on TF CPU) is not this test's.
    inputs = keras.Input((3, 5, 5))
    outputs = HighwayConv2D(3, data_format="channels_first", transform_bias=-1.5)(inputs)
    return keras.Model(inputs, outputs), _normal(rng, (2, 3, 5, 5)), None


def residual_unit(rng):
    from keras_deepblocks.layers import ResidualUnit

    inputs = keras.Input((8, 8, 4))
    x = ResidualUnit(8, strides=2, shortcut="A")(inputs)
    outputs = ResidualUnit(
        4,
        bottleneck=True,
        preactivation=True,
        shortcut="B",
        momentum=0.8,
        epsilon=1e-3,
        kernel_regularizer=keras.regularizers.L2(1e-4),
    )(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 8, 8, 4)), None


def residual_unit_stochastic_depth(rng):
    from keras_deepblocks.layers import ResidualUnit

    inputs = keras.Input((6, 6, 4))
    x = ResidualUnit(4, survival_probability=0.7, drop_mode="sample", seed=3)(inputs)
    outputs = ResidualUnit(
        8,
        strides=2,
        preactivation=True,
        survival_probability=0.4,
        rescale="training",
        skip_strategy="multiply",
        seed=4,
    )(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 6, 6, 4)), None


def stochastic_depth(rng):
    from keras_deepblocks.layers import StochasticDepth

    layers = keras.layers
    sequential = keras.Sequential([layers.Dense(6), layers.BatchNormalization(), layers.ReLU()])
    branch_in = keras.Input((6,))
    functional = keras.Model(branch_in, layers.Dense(6, activation="tanh")(branch_in))
    inputs = keras.Input((6,))
    x = StochasticDepth(sequential, 0.6, drop_mode="sample", seed=5)(inputs)
    x = StochasticDepth(layers.Dense(6), 0.8, rescale="training", skip_strategy="skip", seed=7)(x)
    outputs = StochasticDepth(functional, 0.3, skip_strategy="multiply")(x)
    return keras.Model(inputs, outputs), _normal(rng, (3, 6)), None


def char_cnn(rng):
    from keras_deepblocks.layers import CharCNN

    inputs = keras.Input((None, 7), dtype="int32")
    x = CharCNN(
        [[1, 3], [2, 4], [3, 5]],
        embedding_dim=4,
        num_characters=30,
        activation="tanh",
        embeddings_initializer="normal",
    )(inputs)
    # Mask-aware pooling: the output also checks the padding-token mask.
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    ids = rng.integers(1, 30, size=(2, 4, 7)).astype("int32")
    ids[0, 2:] = 0
    return keras.Model(inputs, outputs), ids, None


def character_ids(rng):
    from keras_deepblocks.layers import CharacterIds

    inputs = keras.Input((None,), dtype="string")
    outputs = CharacterIds(max_characters_per_token=8, sentence_boundaries=True)(inputs)
    return keras.Model(inputs, outputs), CHARACTER_TOKENS, None


def residual_unit_gradient_checkpointing(rng):
    from keras_deepblocks.layers import ResidualUnit

    inputs = keras.Input((8, 8, 4))
    x = ResidualUnit(8, strides=2, shortcut="B", gradient_checkpointing=True)(inputs)
    outputs = ResidualUnit(
        8, preactivation=True, survival_probability=0.6, seed=2, gradient_checkpointing=True
    )(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 8, 8, 4)), None


def residual_stack(rng):
    from keras_deepblocks.layers import ResidualStack
    from keras_deepblocks.layers import ResidualUnit

    layers = keras.layers
    # A Sequential template: a post-activation unit's conv-BN-ReLU-conv-BN.
    post = ResidualUnit(4).residual_branch()
    # A functional template, built from its own Input.
    branch_in = keras.Input((6, 6, 4))
    x = layers.ReLU()(layers.BatchNormalization(name="preact_bn")(branch_in))
    conv = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")
    pre = keras.Model(branch_in, conv(x), name="preact")
    inputs = keras.Input((6, 6, 4))
    x = ResidualStack(post, 3, [0.9, 0.7, 0.5], activation="relu", seed=3, name="layer1")(inputs)
    outputs = ResidualStack(
        pre,
        2,
        0.6,
        sampling="independent",
        rescale="training",
        gradient_checkpointing=True,
        name="layer2",
    )(x)
    return keras.Model(inputs, outputs), _normal(rng, (2, 6, 6, 4)), None


def initializers(rng):
    from keras_deepblocks.initializers import FusedKernel
    from keras_deepblocks.initializers import GateBias

    dense = keras.layers.Dense(
        8,
        kernel_initializer=FusedKernel("glorot_uniform"),
        bias_initializer=GateBias(-2.0, transform_initializer="ones"),
    )
    inputs = keras.Input((4,))
    return keras.Model(inputs, dense(inputs)), _normal(rng, (2, 4)), None


def perplexity(rng):
    from keras_deepblocks.metrics import Perplexity

    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(7)(inputs))
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity(from_logits=True, name="ppl")],
    )
    x = _normal(rng, (8, 5))
    y = rng.integers(0, 7, size=(8,))
    return model, x, (x, y)


def resnet20(rng):
    from keras_deepblocks.zoo import resnet20

    return resnet20(input_shape=(16, 16, 3)), _pixels(rng, (2, 16, 16, 3)), None


def resnet20_checkpointed_stochastic_depth(rng):
    from keras_deepblocks.zoo import resnet20

    model = resnet20(
        input_shape=(16, 16, 3), gradient_checkpointing=True, final_survival_probability=0.5
    )
    return model, _pixels(rng, (2, 16, 16, 3)), None


def resnet20_preactivation_b(rng):
    from keras_deepblocks.zoo import resnet20

    model = resnet20(
        input_shape=(16, 16, 3),
        preactivation=True,
        shortcut="B",
        num_classes=3,
        classifier_activation="softmax",
    )
    return model, _pixels(rng, (2, 16, 16, 3)), None


def char_encoder_dict(rng):
    from keras_deepblocks.zoo import char_cnn_highway_encoder

    model = char_cnn_highway_encoder(TINY_CHAR_CNN, name="tiny_encoder")
    return model, _char_ids(rng, (2, 3, 8)), None


def char_encoder_kim_small(rng):
    from keras_deepblocks.zoo import char_cnn_highway_encoder

    return char_cnn_highway_encoder("kim_small"), _char_ids(rng, (2, 3, 21)), None


def char_language_model(rng):
    from keras_deepblocks.metrics import Perplexity
    from keras_deepblocks.zoo import char_aware_language_model

    model = char_aware_language_model(11, TINY_CHAR_CNN, lstm_units=6, dropout=0.2)
    # Compiled (the file holds its Perplexity metric); `perplexity` evaluates one.
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[Perplexity()])
    # The shapes of char_encoder_dict: JAX compiles each new shape (seconds).
    return model, _char_ids(rng, (2, 3, 8)), None


def highway_mlp(rng):
    from keras_deepblocks.zoo.highway_nets import highway_mlp

    return highway_mlp((4, 4), 3, depth=3, width=6), _normal(rng, (2, 4, 4)), None


def plain_mlp(rng):
    from keras_deepblocks.zoo.highway_nets import plain_mlp

    return plain_mlp((5,), 3, depth=2, width=4), _normal(rng, (2, 5)), None


def highway_conv_net(rng):
    from keras_deepblocks.zoo.highway_nets import highway_conv_net

    model = highway_conv_net((8, 8, 3), 3, depth=2, filters=(4, 8))
    return model, _normal(rng, (2, 8, 8, 3)), None


def plain_conv_net(rng):
    from keras_deepblocks.zoo.highway_nets import plain_conv_net

    model = plain_conv_net((8, 8, 3), 3, depth=2, filters=(4, 8))
    return model, _normal(rng, (2, 8, 8, 3)), None


def elmo_lstm(rng):
    from keras_deepblocks.layers import ElmoLSTM

    inputs = keras.Input((4, 3))
    layers = ElmoLSTM(
        5,
        projection_dim=3,
        num_layers=2,
        cell_clip=3.0,
        projection_clip=2.0,
        skip_connections=True,
        max_batch_size=3,
    )(keras.layers.Masking(0.0)(inputs))
    # Stateless: a stateful layer's states change when `record` runs the model, and
    # backends compute them differently in the last bits, which the exact comparison
    # of variables across backends rejects. tests/layers/test_elmo_lstm.py checks that
    # a loaded stateful layer continues from the saved states.
    outputs = keras.layers.Concatenate()(layers)
    x = _normal(rng, (2, 4, 3))
    x[1, 2:] = 0.0  # padding
    return keras.Model(inputs, outputs), x, None


def projected_lstm(rng):
    from keras_deepblocks.layers import ProjectedLSTMCell

    inputs = keras.Input((4, 3))
    cell = ProjectedLSTMCell(5, projection_dim=3, cell_clip=1.0, projection_clip=0.5)
    outputs = keras.layers.RNN(cell, return_sequences=True, name="lm")(
        keras.layers.Masking(0.0)(inputs)
    )
    x = _normal(rng, (2, 4, 3))
    x[1, 3:] = 0.0  # padding
    return keras.Model(inputs, outputs), x, None


def elmo_scalar_mix(rng):
    from keras_deepblocks.layers import ElmoScalarMix

    inputs = keras.Input((4, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    layers = [
        masked,
        keras.layers.Dense(3, activation="tanh")(masked),
        keras.layers.Dense(3)(masked),
    ]
    outputs = ElmoScalarMix(layer_norm=True, initial_weights=[0.5, 0.0, -0.5], initial_gamma=2.0)(
        layers
    )
    x = _normal(rng, (2, 4, 3))
    x[0, 3:] = 0.0
    return keras.Model(inputs, outputs), x, None


CASES = {
    function.__name__: function
    for function in (
        highway,
        highway_conv2d,
        highway_conv2d_channels_first,
        residual_unit,
        residual_unit_stochastic_depth,
        stochastic_depth,
        char_cnn,
        character_ids,
        residual_unit_gradient_checkpointing,
        residual_stack,
        initializers,
        perplexity,
        resnet20,
        resnet20_checkpointed_stochastic_depth,
        resnet20_preactivation_b,
        char_encoder_dict,
        char_encoder_kim_small,
        char_language_model,
        highway_mlp,
        plain_mlp,
        highway_conv_net,
        plain_conv_net,
        elmo_lstm,
        projected_lstm,
        elmo_scalar_mix,
    )
}


def _normal(rng, shape):
    return rng.normal(size=shape).astype("float32")


def _pixels(rng, shape):
    return rng.uniform(0, 255, size=shape).astype("float32")


def _char_ids(rng, shape):
    ids = rng.integers(1, 262, size=shape).astype("int32")
    ids[0, -1] = 0  # a padding token
    return ids


# ------------------------------------------------------------- save and load


def run(model, inputs):
    """Inference outputs. CharacterIds runs on strings, which only TF tensors hold."""
    if inputs.dtype.kind == "U":
        # A functional model converts its inputs to backend tensors: strings
        # pass on TensorFlow only. The layer itself takes Python strings.
        return keras.ops.convert_to_numpy(model.layers[-1](inputs.tolist()))
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def record(model, inputs, evaluation):
    """Arrays and metadata that describe `model`: what save and load compare."""
    arrays = {"inputs": inputs, "outputs": run(model, inputs)}
    if evaluation is not None:
        arrays["eval_x"], arrays["eval_y"] = evaluation
    if inputs.dtype.kind == "U" and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        arrays["model_outputs"] = keras.ops.convert_to_numpy(model(tf.constant(inputs)))
    variables = list(model.weights)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    for index, variable in enumerate(variables):
        arrays[f"variable_{index}"] = keras.ops.convert_to_numpy(variable)
    meta = {
        "config": _json(model.get_config()),
        "compile_config": _json(model.get_compile_config()),
        "variable_paths": [variable.path for variable in variables],
        "metrics": None,
    }
    if evaluation is not None:
        x, y = evaluation
        model.run_eagerly = True  # no tf.function or jit tracing: seconds; not in the file
        meta["metrics"] = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    return arrays, meta


def save(out):
    out.mkdir(parents=True, exist_ok=True)
    for name, build in CASES.items():
        keras.utils.set_random_seed(1234)
        rng = np.random.default_rng(sorted(CASES).index(name))
        model, inputs, evaluation = build(rng)
        _randomize(model, rng)
        if evaluation is not None:
            x, y = evaluation
            model.run_eagerly = True
            model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)  # optimizer state
        elif getattr(model, "optimizer", None) is not None:
            model.optimizer.build(model.trainable_variables)  # as loading does
        model.save(out / f"{name}.keras")
        _write(out / name, *record(model, inputs, evaluation))


def load(sources, out):
    """Loads every `<source>/<case>.keras`; writes `out/<source name>/<case>`."""
    for source in sources:
        (out / source.name).mkdir(parents=True, exist_ok=True)
        for name in CASES:
            target = out / source.name / name
            try:
                model = keras.saving.load_model(source / f"{name}.keras")  # safe_mode=True
                with np.load(source / f"{name}.npz") as saved:
                    saved = dict(saved)
                evaluation = None
                if "eval_x" in saved:
                    evaluation = saved["eval_x"], saved["eval_y"]
                _write(target, *record(model, saved["inputs"], evaluation))
            except Exception as error:  # reported by the test
                message = f"{type(error).__name__}: {error}"
                (target.with_suffix(".error")).write_text(
                    message + "\n\n" + traceback.format_exc(), encoding="utf-8"
                )


def _randomize(model, rng):
    """Moves every float variable off its initial value, so that each must load.

    Scaled, not redrawn, to keep deep models' activations in range; BN's
    gamma and moving variance (initially ones) stay positive.
    """
    for variable in model.weights:
        if "float" not in str(variable.dtype):
            continue
        value = keras.ops.convert_to_numpy(variable)
        value = value * rng.uniform(0.5, 1.5, size=value.shape)
        if variable.name not in ("gamma", "moving_variance"):
            value = value + rng.normal(scale=0.05, size=value.shape)
        variable.assign(value.astype(variable.dtype))


def _write(path, arrays, meta):
    np.savez(path.with_suffix(".npz"), **arrays)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _json(value):
    return json.loads(json.dumps(value, default=repr))


def main(argv):
    start = time.monotonic()
    command, *paths = argv
    if command == "save":
        save(pathlib.Path(paths[0]))
    elif command == "load":
        *sources, out = map(pathlib.Path, paths)
        load(sources, out)
    else:
        raise SystemExit(f"unknown command {command!r}: use save or load")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"{command} on {keras.backend.backend()}: {time.monotonic() - start:.1f} s "
        f"({cpu.ru_utime + cpu.ru_stime:.1f} s CPU since the process started)"
    )


if __name__ == "__main__":
    import keras_deepblocks  # noqa: F401  (what a user imports before load_model)

    main(sys.argv[1:])
