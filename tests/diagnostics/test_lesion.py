"""lesion_study: deleted and swapped blocks against NumPy references, both resnet_cifar layouts,
the model left unchanged, the published ResNet-56 on real CIFAR-10 images, the figure."""

import json

import keras
import numpy as np
import pytest

from keras_deepblocks.diagnostics import lesion_study
from keras_deepblocks.diagnostics import lesion as lesion_module
from keras_deepblocks.diagnostics import plot_lesion_study
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.zoo import resnet_cifar
from keras_deepblocks.zoo import resnet_cifar_weights
from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights

EPSILON = 1e-5  # of every BN in ResidualUnit and resnet_cifar


def randomize(model, seed=0):
    """Draws every weight in NumPy: the same model on every backend, with BN that is not
    the identity (random scales, offsets and statistics) and He-scaled kernels."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name, shape = variable.name, tuple(variable.shape)
        if name == "gamma":
            value = rng.uniform(0.5, 2.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.3, shape)
        elif name == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        else:  # kernels: (..., fan_in, units), or highway's (width, 2 * width)
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        variable.assign(value.astype(variable.dtype))
    return model


def amplify_branch(unit, factor=4.0):
    """Scales the last weights of a unit's branch (BN scale or conv kernel): a branch that
    counts, so that deleting or moving the unit changes predictions."""
    last = [layer for layer in unit.branch.layers if layer.weights][-1]
    last.weights[0].assign(last.weights[0] * factor)


def numpy_weights(model):
    return [keras.ops.convert_to_numpy(v.value).copy() for v in model.weights]


def classes(logits):
    return np.argmax(logits, axis=-1)


def batch_norm(x, layer):
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    return (x - mean) / np.sqrt(variance + EPSILON) * gamma + beta


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def option_a(x, channels, strides):
    x = x[:, ::strides, ::strides, :]
    extra = channels - x.shape[-1]
    return np.pad(x, [(0, 0)] * 3 + [(extra // 2, extra - extra // 2)])


def tiny_resnet(stacked, seed=0):
    """A random resnet_cifar(14) on 12x12 images (layer1_0, layer1_1, layer2_0, ...)."""
    keras.utils.set_random_seed(seed)
    model = resnet_cifar(
        14, input_shape=(12, 12, 3), include_preprocessing=False, stacked_stages=stacked
    )
    return randomize(model, seed)


def images(count=64, shape=(12, 12, 3), seed=1):
    return np.random.default_rng(seed).normal(size=(count, *shape)).astype("float32")


def test_deleting_each_unit_matches_the_network_run_without_its_branch():
    model = tiny_resnet(stacked=False)
    x = images()
    labels = classes(model.predict(x, verbose=0))
    # The reference: the chain of layers run by hand, the deleted unit replaced by
    # relu(option-A shortcut) in NumPy.
    chain = model.layers[1:]
    expected = []
    for deleted in [layer.name for layer in chain if isinstance(layer, ResidualUnit)]:
        h = x
        for layer in chain:
            if layer.name == deleted:
                h = relu(option_a(h, layer.filters, layer.strides))
            else:
                h = keras.ops.convert_to_numpy(layer(h, training=False))
        expected.append(float(np.mean(classes(h) == labels)))
    # Deletions differ, so a lesion of the wrong block or of none cannot match.
    assert len(set(expected)) >= 4 and min(expected) < 0.9, expected

    results = lesion_study(model, x, labels, batch_size=20)
    assert results["full"] == 1.0
    assert results["blocks"] == [f"layer{s}_{i}" for s in (1, 2, 3) for i in (0, 1)]
    assert results["downsampling"] == [False, False, True, False, True, False]
    np.testing.assert_allclose(results["delete"], expected, atol=1.5 / len(x))
    assert (results["num_examples"], results["num_classes"]) == (len(x), 10)
    json.dumps(results)  # plain Python values


def test_stacked_and_per_unit_layouts_give_the_same_study(tmp_path):
    per_unit = tiny_resnet(stacked=False)
    path = str(tmp_path / "tiny.weights.npz")
    resnet_cifar_weights.write_converted(unit_weights(per_unit), path)
    stacked = resnet_cifar(14, input_shape=(12, 12, 3), include_preprocessing=False, weights=path)
    assert [type(stacked.get_layer(n)) for n in ("layer1", "layer2", "layer2_0")] == [
        ResidualStack,
        ResidualStack,
        ResidualUnit,
    ]
    x = images()
    logits = per_unit.predict(x, verbose=0)
    np.testing.assert_allclose(stacked.predict(x, verbose=0), logits, atol=1e-4)
    labels = classes(logits)
    kwargs = dict(mode="both", trials=3, swaps=(1, 0), seed=3)
    expected = lesion_study(per_unit, x, labels, **kwargs)
    assert lesion_study(stacked, x, labels, **kwargs) == expected
    assert min(expected["delete"]) < 0.9  # the lesions change the predictions


@pytest.mark.parametrize("preactivation", [False, True], ids=["post", "pre"])
def test_units_and_stack_blocks_name_their_weights_alike(preactivation):
    """What lets a unit and a block of a stack of its branch swap weights."""
    signatures = {}
    for stacked in (False, True):
        model = resnet_cifar(
            14, input_shape=(8, 8, 3), preactivation=preactivation, stacked_stages=stacked
        )
        blocks = lesion_module.find_blocks(model)
        signatures[stacked] = [block.signature for block in blocks]
        block = blocks[0]
        assert len(set(block.keys)) == len(block.keys) == len(block.get_weights())
    assert signatures[False] == signatures[True]
    keys = dict(signatures[True][0])
    assert ("conv2/kernel" in keys) and (("preact_bn/gamma" in keys) == preactivation)


@pytest.mark.parametrize(
    "kwargs, channels",
    [
        (dict(filters=8, strides=2, shortcut="A"), 4),
        (dict(filters=8, strides=2, shortcut="B"), 4),
        (dict(filters=4, preactivation=True), 4),
        (dict(filters=8, strides=2, preactivation=True, shortcut="B"), 4),
        (dict(filters=2, bottleneck=True, shortcut="B"), 4),
        (dict(filters=2, bottleneck=True, preactivation=True), 8),
    ],
    ids=["post-A", "post-B", "pre-identity", "pre-B", "bottleneck-post-B", "bottleneck-pre"],
)
def test_a_deleted_unit_computes_its_shortcut(kwargs, channels):
    inputs = keras.Input((6, 6, channels))
    unit = ResidualUnit(**kwargs, name="unit")
    # Flattened, not pooled: an average over positions would leave mostly the BN offsets,
    # the same for every image.
    flat = keras.layers.Flatten()(unit(inputs))
    dense = keras.layers.Dense(7, name="dense")
    model = randomize(keras.Model(inputs, dense(flat)))
    x = images(48, (6, 6, channels))

    # NumPy: what the unit computes with its branch at zero.
    shortcut_input = x
    if unit.preactivation and not unit.has_identity_shortcut:
        shortcut_input = relu(batch_norm(x, unit.preact_norm))
    if unit.has_identity_shortcut:
        shortcut = shortcut_input
    elif unit.shortcut == "A":
        shortcut = option_a(shortcut_input, unit.output_channels, unit.strides)
    else:
        conv, *norm = unit.projection.layers
        kernel = keras.ops.convert_to_numpy(conv.kernel)[0, 0]
        shortcut = shortcut_input[:, :: unit.strides, :: unit.strides, :] @ kernel
        shortcut = batch_norm(shortcut, norm[0]) if norm else shortcut
    if not unit.preactivation:
        shortcut = relu(shortcut)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
    labels = classes(shortcut.reshape(len(x), -1) @ kernel + bias)

    results = lesion_study(model, x, labels)
    assert results["delete"] == [1.0]
    assert results["full"] < 0.9  # the branch mattered
    assert results["downsampling"] == [not unit.has_identity_shortcut]


def dense_stack_model(num_blocks=2, seed=0):
    keras.utils.set_random_seed(seed)
    template = keras.Sequential(
        [keras.layers.Dense(6, name="fc1"), keras.layers.ReLU(), keras.layers.Dense(6, name="fc2")],
        name="f",
    )
    inputs = keras.Input((5,))
    x = keras.layers.Dense(6, name="stem")(inputs)
    x = ResidualStack(template, num_blocks, activation="relu", name="stage")(x)
    return randomize(keras.Model(inputs, keras.layers.Dense(4, name="head")(x)), seed)


def dense_stack_logits(model, x, order):
    """NumPy: the stem, blocks `order` of the stack (`None`: a deleted block), the head."""
    stem, head, stack = (model.get_layer(n) for n in ("stem", "head", "stage"))
    stem_kernel, stem_bias = (keras.ops.convert_to_numpy(w) for w in stem.weights)
    h = x @ stem_kernel + stem_bias
    for index in order:
        residual = 0.0
        if index is not None:
            k1, b1, k2, b2 = stack.get_block_weights(index)
            residual = relu(h @ k1 + b1) @ k2 + b2
        h = relu(h + residual)
    head_kernel, head_bias = (keras.ops.convert_to_numpy(w) for w in head.weights)
    return h @ head_kernel + head_bias


def test_stack_blocks_delete_to_the_activated_input_and_swap():
    model = dense_stack_model(num_blocks=2)
    x = images(64, (5,))
    # Deleting block 1 leaves relu(h): the stem's output is not >= 0, so the activation shows.
    deleted = classes(dense_stack_logits(model, x, [0, None]))
    results = lesion_study(model, x, deleted, mode="both", swaps=(1,), trials=2, seed=0)
    assert results["blocks"] == ["stage_0", "stage_1"]
    assert results["delete"][1] == 1.0
    assert results["full"] < 0.9
    swapped = classes(dense_stack_logits(model, x, [1, 0]))
    results = lesion_study(model, x, swapped, mode="shuffle", swaps=(1, 0), trials=2, seed=0)
    assert results["shuffle"][1] == 1.0 and results["full"] < 0.9
    assert results["shuffle"][0] == results["full"]
    assert (results["swappable"], results["num_pairs"]) == (["stage_0", "stage_1"], 1)


def test_highway_blocks_carry_their_input_when_deleted():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    highway = HighwayStack(3, transform_bias=0.0, name="highway")
    model = keras.Model(inputs, keras.layers.Dense(4)(highway(inputs)))
    randomize(model)
    x = images(64, (6,))

    h = x
    for index in (0, 2):  # block 1 deleted: it carries h unchanged
        kernel, bias = highway.get_block_weights(index)
        fused = h @ kernel + bias
        transform, gate = np.split(fused, 2, axis=-1)
        h = h + sigmoid(gate) * (relu(transform) - h)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.layers[-1].weights)
    labels = classes(h @ kernel + bias)
    results = lesion_study(model, x, labels)
    assert results["blocks"] == ["highway_0", "highway_1", "highway_2"]
    assert results["delete"][1] == 1.0 and results["full"] < 0.9


@pytest.mark.parametrize("failing_call", [3, 9], ids=["during-deletions", "during-swaps"])
def test_the_model_is_left_bit_identical_also_after_a_failure(monkeypatch, failing_call):
    model = tiny_resnet(stacked=True)
    x = images(16)
    labels = np.zeros(len(x), "int64")
    before = numpy_weights(model)
    lesion_study(model, x, labels, mode="both", trials=2, swaps=(1,), seed=0)
    for value, variable in zip(before, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)

    accuracy, calls = lesion_module._accuracy, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == failing_call:  # 1 full + 6 deletions, then the swaps
            raise RuntimeError("evaluation failed")
        return accuracy(*args, **kwargs)

    monkeypatch.setattr(lesion_module, "_accuracy", failing)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        lesion_study(model, x, labels, mode="both", trials=2, swaps=(1,), seed=0)
    assert len(calls) == failing_call
    for value, variable in zip(before, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)


def test_shuffle_swaps_same_shaped_blocks_only():
    model = tiny_resnet(stacked=False)
    for name in ("layer1_0", "layer1_1"):
        amplify_branch(model.get_layer(name))
    x = images()
    labels = classes(model.predict(x, verbose=0))
    results = lesion_study(model, x, labels, mode="shuffle", trials=2, swaps=[1, 0], seed=0)
    # In resnet_cifar(14) only layer1_0 and layer1_1 share a shape (layer2_1 and layer3_1
    # have no partner; layer2_0 and layer3_0 change the shape).
    assert (results["swappable"], results["num_pairs"]) == (["layer1_0", "layer1_1"], 1)
    assert results["shuffle"][0] == results["full"] == 1.0
    trials = results["shuffle_trials"][1]
    assert len(trials) == 2 and trials[0] == trials[1] < 1.0
    assert "delete" not in results
    # The default numbers of swaps are those the model allows.
    assert list(lesion_study(model, x, labels, mode="shuffle", trials=1)["shuffle"]) == [1]


def test_bad_arguments_are_refused_by_name():
    model = tiny_resnet(stacked=True)
    x, labels = images(8), np.zeros(8, "int64")
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        lesion_study(model.get_layer("layer1"), x, labels)
    with pytest.raises(ValueError, match="`mode` must be one of 'delete', 'shuffle', 'both'"):
        lesion_study(model, x, labels, mode="prune")
    with pytest.raises(ValueError, match="same length.*8 images and 7 labels"):
        lesion_study(model, x, labels[:7])
    with pytest.raises(ValueError, match="at least one image"):
        lesion_study(model, x[:0], labels[:0])
    with pytest.raises(TypeError, match="`labels` must be integer class labels"):
        lesion_study(model, x, labels.astype("float32"))
    with pytest.raises(ValueError, match="`trials` must be a positive integer"):
        lesion_study(model, x, labels, mode="shuffle", trials=0)
    with pytest.raises(ValueError, match="`swaps` must be an integer >= 0"):
        lesion_study(model, x, labels, mode="shuffle", swaps=-1)
    with pytest.raises(TypeError, match="`swaps` must be an int or a sequence"):
        lesion_study(model, x, labels, mode="shuffle", swaps="2")
    with pytest.raises(ValueError, match=r"at most the number of pairs.*\(1 in this model\)"):
        lesion_study(model, x, labels, mode="shuffle", swaps=[1, 2])
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        lesion_study(model, x, labels, batch_size=0)

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="plain")
    with pytest.raises(ValueError, match="must contain residual blocks.*'plain'"):
        lesion_study(plain, np.zeros((2, 4)), [0, 1])
    one_unit = keras.Sequential(
        [keras.Input((4, 4, 2)), ResidualUnit(2), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    with pytest.raises(ValueError, match=r"one output of shape \(batch, num_classes\)"):
        lesion_study(one_unit, np.zeros((2, 4, 4, 2)), [0, 1])
    # A branch ending in a sigmoid cannot be silenced by zeroing its weights.
    sigmoid_branch = keras.Sequential([keras.layers.Dense(4, activation="sigmoid")])
    gated = keras.Sequential(
        [keras.Input((4,)), ResidualStack(sigmoid_branch, 2, name="s"), keras.layers.Dense(3)]
    )
    with pytest.raises(ValueError, match="cannot delete block 's_0'.*mode='shuffle'"):
        lesion_study(gated, np.zeros((2, 4)), [0, 1])
    assert lesion_study(gated, np.zeros((2, 4)), [0, 1], mode="shuffle", swaps=1)["num_pairs"]


RESULTS = {
    "full": 0.96,
    "blocks": ["layer1_0", "layer1_1", "layer2_0", "layer2_1"],
    "downsampling": [False, False, True, False],
    "num_examples": 100,
    "num_classes": 10,
    "delete": [0.95, 0.9, 0.4, 0.93],
    "shuffle": {1: 0.9, 4: 0.6},
    "shuffle_trials": {1: [0.88, 0.92], 4: [0.5, 0.7]},
}


def test_the_figure_shows_the_study(tmp_path):
    figure = lesion_module.lesion_figure(json.loads(json.dumps(RESULTS)), title="Study")
    deletions, shuffles = figure.axes
    bars = deletions.patches
    assert [round(b.get_height(), 6) for b in bars] == RESULTS["delete"]
    red = [tuple(b.get_facecolor()) for b in bars]
    assert red[2] != red[0] and red[0] == red[1] == red[3]
    lines = {line.get_linestyle(): line.get_ydata()[0] for line in deletions.get_lines()}
    assert lines == {"--": 0.96, ":": 0.1}
    assert deletions.get_ylabel() == "accuracy" and "deleted block" in deletions.get_xlabel()
    assert [t.get_text() for t in deletions.get_xticklabels()] == RESULTS["blocks"]
    curve = shuffles.get_lines()[0]
    assert list(curve.get_xdata()) == [0, 1, 4]  # from the intact model on
    np.testing.assert_allclose(np.asarray(curve.get_ydata(), float), [0.96, 0.9, 0.6])
    assert "swaps" in shuffles.get_xlabel() and figure.get_suptitle() == "Study"
    assert deletions.get_legend() is not None and shuffles.get_legend() is not None

    path = plot_lesion_study(
        {k: RESULTS[k] for k in RESULTS if "shuffle" not in k}, tmp_path / "d.png"
    )
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[2] in (3, 4)
    with pytest.raises(ValueError, match="`path` must end in an image extension"):
        plot_lesion_study(RESULTS, tmp_path / "figure.txt")
    with pytest.raises(ValueError, match="'delete' or 'shuffle'"):
        plot_lesion_study({"full": 0.5}, tmp_path / "empty.png")


def test_published_resnet56_survives_deletions_except_at_downsampling(shared_fixtures):
    """Veit et al. (2016) on the published weights and 128 real CIFAR-10 images."""
    data = np.load(shared_fixtures / "cifar10_partial" / "cifar10_train_4660.npz")
    chosen = np.sort(np.random.default_rng(0).permutation(len(data["labels"]))[:128])
    x, y = data["images"][chosen], data["labels"][chosen]
    checkpoint = shared_fixtures / "resnet_cifar_torch" / "resnet56-4bfd9763.th"
    model = resnet_cifar(56, weights=str(checkpoint))
    results = lesion_study(
        model, x, y, mode="both", trials=1, swaps=(1, 12), batch_size=128, seed=0
    )
    assert results["full"] >= 0.99  # images the network was trained on
    delete = np.array(results["delete"])
    down = np.array(results["downsampling"])
    assert [b for b, d in zip(results["blocks"], down) if d] == ["layer2_0", "layer3_0"]
    # Measured on these 128 images: the 25 other blocks cost 0 to 12 points (mean 1.6),
    # layer2_0 22 and layer3_0 9 (on all 4,660 images: 0.1 to 8.4, mean 1.2; 19.1 and 9.8).
    assert delete[~down].mean() >= results["full"] - 0.03
    assert delete[~down].min() >= results["full"] - 0.15
    assert results["blocks"][int(np.argmin(delete))] == "layer2_0"
    assert delete[down].min() < delete[~down].min() - 0.05
    # Shuffling degrades smoothly: one swap costs little, twelve a lot.
    assert results["shuffle"][1] >= results["full"] - 0.1
    assert results["shuffle"][12] < results["shuffle"][1] - 0.3
