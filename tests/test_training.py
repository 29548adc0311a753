import keras
import numpy as np
import pytest

from keras_deepblocks.training import add_weight_decay
from keras_deepblocks.training import compile_recipe
from keras_deepblocks.training import step_decay


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


def test_train_warms_deep_resnets_up_as_the_paper_does():
    from keras_deepblocks.cli import build_parser
    from keras_deepblocks.cli.train import _warmup_steps

    def warmup(argv, total_steps):
        return _warmup_steps(build_parser().parse_args(["train", *argv]), total_steps)

    assert warmup(["resnet110"], 64000) == 400
    assert warmup(["resnet1202"], 64000) == 400
    assert warmup(["resnet56"], 64000) == 0
    assert warmup(["resnet110"], 1601) == 400
    assert warmup(["resnet20", "--warmup-steps", "7"], 100) == 7
    # Short runs (smoke runs) warm up for their first fifth, whatever the model.
    assert warmup(["resnet110"], 90) == 18
    assert warmup(["resnet20"], 1600) == 320
    assert warmup(["highway_mlp"], 3) == 0


def test_digits_get_their_own_batch_size_and_learning_rate():
    from keras_deepblocks.cli import build_parser
    from keras_deepblocks.cli.train import apply_dataset_defaults

    def defaults(argv):
        args = apply_dataset_defaults(build_parser().parse_args(["train", *argv]))
        return args.batch_size, args.learning_rate

    assert defaults(["resnet20"]) == (16, 0.05)
    assert defaults(["resnet20", "--dataset", "cifar10"]) == (128, 0.1)  # the paper's
    assert defaults(["resnet20", "--batch-size", "64", "--learning-rate", "0.2"]) == (64, 0.2)


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
    """Gradient of the data loss alone, computed on a twin with the same weights."""
    import tensorflow as tf

    twin = small_model()
    twin.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, twin(x, training=True))
        )
    return tape.gradient(loss, twin.layers[2].kernel.value).numpy()


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
