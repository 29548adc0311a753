"""The ResNet paper's recipe and the training run of `deepblocks train`, called from Python."""

import functools

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks import training
from keras_deepblocks.datasets import load_digits
from keras_deepblocks.training import add_weight_decay
from keras_deepblocks.training import compile_recipe
from keras_deepblocks.training import step_decay
from keras_deepblocks.utils.gradients import gradients
from keras_deepblocks.zoo import registry


def test_step_decay_divides_by_ten_at_half_and_three_quarters():
    total = 400
    schedule = step_decay(total)
    for step in range(total):
        expected = 0.1 if step < 200 else 0.01 if step < 300 else 0.001
        assert float(schedule(step)) == pytest.approx(expected)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert float(restored(250)) == pytest.approx(0.01)


def test_step_decay_with_warmup_starts_at_a_tenth():
    schedule = step_decay(1000, warmup_steps=40)
    rates = [float(schedule(step)) for step in (0, 39, 40, 499, 500, 750)]
    assert rates == pytest.approx([0.01, 0.01, 0.1, 0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="`warmup_steps`"):
        step_decay(100, warmup_steps=60)
    with pytest.raises(ValueError, match="`warmup_steps`"):
        step_decay(100, warmup_steps=-1)


def test_default_warm_up_is_the_papers_for_deep_nets_and_a_fifth_of_short_runs():
    warmup = training.default_warmup_steps
    assert warmup(64000, depth=110) == 400
    assert warmup(64000, depth=1202) == 400
    assert warmup(64000, depth=56) == 0
    assert warmup(1601, depth=110) == 400
    # Short runs (smoke runs) warm up for their first fifth, whatever the model.
    assert warmup(90, depth=110) == 18
    assert warmup(1600, depth=20) == 320
    assert warmup(3) == 0
    assert warmup(64000) == 0  # depth unknown: no paper warm-up


def test_digits_get_their_own_batch_size_and_learning_rate():
    assert training.recipe_defaults("digits") == (16, 0.05)
    assert training.recipe_defaults("cifar10") == (128, 0.1)  # the paper's
    assert training.recipe_defaults("digits", batch_size=64, learning_rate=0.2) == (64, 0.2)


def tiny_highway_mlp(input_shape, num_classes):
    return registry.build_model("highway_mlp", input_shape, num_classes, depth=2, width=8)


def test_train_on_digits_uses_their_batch_size_and_rate_and_writes_the_run(tmp_path, capsys):
    """Batch 16 and rate 0.05 on the digits; the model, last_epoch.keras and TensorBoard logs."""
    output = tmp_path / "model.keras"
    result = training.train(
        tiny_highway_mlp,
        "digits",
        epochs=1,
        flat_inputs=True,
        output=output,
        log_dir=tmp_path / "runs",
        verbose=2,
    )
    # 1438 training digits in batches of 16: 90 steps, the first fifth at a tenth of the rate.
    assert int(result.model.optimizer.iterations) == 90
    assert "1 epoch of 90 steps" in capsys.readouterr().out
    config = result.model.optimizer.get_config()["learning_rate"]
    schedule = keras.optimizers.schedules.deserialize(config)
    rates = [float(schedule(step)) for step in (0, 17, 18, 44, 45, 68)]
    assert rates == pytest.approx([0.005, 0.005, 0.05, 0.05, 0.005, 0.0005])
    assert result.model.input_shape == (None, 8, 8, 1)  # an MLP: the digits stay 8x8
    assert result.output == str(output)
    loaded = keras.saving.load_model(output)
    _, (x_test, y_test) = load_digits(images=True)
    accuracy = np.mean(np.argmax(loaded.predict(x_test * 255.0, verbose=0), -1) == y_test)
    assert result.accuracy == pytest.approx(accuracy, abs=1e-4)
    assert (tmp_path / "runs" / training.LAST_EPOCH_FILE).is_file()
    assert list((tmp_path / "runs" / "tensorboard").rglob("events.out.tfevents.*"))
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]  # saved in one rename


def test_train_checks_its_arguments_before_anything_is_written(tmp_path):
    run = functools.partial(training.train, tiny_highway_mlp, log_dir=tmp_path / "runs")
    with pytest.raises(ValueError, match="`dataset` must be one of 'digits', 'cifar10'"):
        run("imagenet", output=tmp_path / "m.keras")
    with pytest.raises(ValueError, match="`output` must end in .keras, received: '.*m.h5'"):
        run(output=str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        run(output=tmp_path / "m.keras", epochs=0)
    assert not list(tmp_path.iterdir())


class StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_training_resumes_from_backup(tmp_path):
    run = functools.partial(
        training.train,
        tiny_highway_mlp,
        epochs=3,
        steps_per_epoch=2,
        batch_size=16,
        flat_inputs=True,
        output=tmp_path / "m.keras",
        log_dir=tmp_path / "runs",
        verbose=0,
    )
    with pytest.raises(KeyboardInterrupt):
        run(callbacks=[StopAfterEpoch(1)])
    assert (tmp_path / "runs" / "backup").is_dir()
    assert not (tmp_path / "m.keras").exists()

    keras.backend.clear_session()
    record = RecordEpochs()
    run(callbacks=[record])
    assert record.epochs == [2]  # epochs 0 and 1 were restored, not run again
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert int(model.optimizer.iterations) == 3 * 2
    assert not (tmp_path / "runs" / "backup").exists()  # removed after a finished run


def test_step_decay_rejects_bad_milestones():
    with pytest.raises(ValueError, match="`milestones`"):
        step_decay(10, milestones=(0.75, 0.5))
    with pytest.raises(ValueError, match="`total_steps`"):
        step_decay(0)


def small_model():
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def test_weight_decay_penalizes_kernels_only(rng):
    model = small_model()
    assert add_weight_decay(model, 1e-2) == 2
    kernels = [model.layers[0].kernel, model.layers[2].kernel]
    expected = 0.5 * 1e-2 * sum(np.sum(np.square(k.numpy())) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def data_gradient(model, x, y):
    """Gradient of the data loss alone (no L2 penalty) for the last kernel, on any backend."""
    twin = small_model()  # same weights; the model's own BN statistics stay untouched
    twin.set_weights(model.get_weights())
    grads = gradients(
        twin,
        x,
        loss_fn=lambda probabilities: ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, probabilities)
        ),
    )
    index = [id(v) for v in twin.trainable_variables].index(id(twin.layers[2].kernel))
    return grads[index]


def test_recipe_sgd_steps_match_coupled_l2_through_momentum(rng):
    """Two steps of `v = 0.9 v - lr (g + wd w); w = w + v`, the reference implementations' rule.

    Keras's own (decoupled) `weight_decay` would agree on the first step only.
    """
    model = small_model()
    compile_recipe(model, total_steps=10, learning_rate=0.5, weight_decay=0.1)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.integers(0, 2, size=8)
    kernel = model.layers[2].kernel
    expected, velocity = kernel.numpy().copy(), 0.0
    for _ in range(2):
        velocity = 0.9 * velocity - 0.5 * (data_gradient(model, x, y) + 0.1 * expected)
        expected = expected + velocity
        model.train_on_batch(x, y)
        np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_recompute_batch_norm_statistics_averages_the_final_weights_batch_statistics(rng):
    from keras_deepblocks.training import recompute_batch_norm_statistics

    model = small_model()
    bn = model.layers[1]
    kernel, bias = (w.numpy() for w in model.layers[0].weights)
    batches = [rng.normal(2.0, 3.0, size=(16, 3)).astype("float32") for _ in range(5)]
    labels = np.zeros(16, "int32")
    weights_before = [w.copy() for w in model.get_weights()]

    count = recompute_batch_norm_statistics(model, [(x, labels) for x in batches], max_batches=4)

    assert count == 4
    hidden = [x @ kernel + bias for x in batches[:4]]  # the BN inputs, computed independently
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), np.mean([h.mean(axis=0) for h in hidden], axis=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), np.mean([h.var(axis=0) for h in hidden], axis=0), rtol=1e-4
    )
    assert bn.momentum == pytest.approx(0.99)  # restored
    trainable = [w.numpy() for w in model.trainable_weights]
    np.testing.assert_array_equal(trainable[0], weights_before[0])
    assert recompute_batch_norm_statistics(keras.Sequential([keras.layers.Dense(2)]), []) == 0


def test_recompute_batch_norm_statistics_reaches_the_blocks_of_stacked_stages(rng):
    from keras_deepblocks.training import recompute_batch_norm_statistics
    from keras_deepblocks.zoo import resnet_cifar
    from keras_deepblocks.zoo.converters.resnet_cifar import assign_weights
    from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights

    separate = resnet_cifar(14, input_shape=(8, 8, 3), stacked_stages=False)
    stacked = resnet_cifar(14, input_shape=(8, 8, 3))
    assign_weights(stacked, unit_weights(separate), "separate")
    batches = [rng.uniform(0, 255, (4, 8, 8, 3)).astype("float32") for _ in range(3)]
    for model in (separate, stacked):
        assert recompute_batch_norm_statistics(model, batches) == 3
    expected, got = unit_weights(separate), unit_weights(stacked)
    moving = [path for path in expected if "layer1_1/branch/bn2/moving" in path]
    assert len(moving) == 2  # the mean and variance of a unit inside a stack
    for path in expected:
        np.testing.assert_allclose(got[path], expected[path], rtol=1e-4, atol=1e-5, err_msg=path)
