import json
import math

import keras
import numpy as np
import pytest

from keras_deepblocks.datasets import load_digits
from keras_deepblocks.experiments import init
from keras_deepblocks.zoo.residual_mlp import residual_mlp


def _numpy(value):
    return keras.ops.convert_to_numpy(value).astype("float64")


def _batch_norm(z, gamma, beta, epsilon):
    """Training-mode BN (biased batch variance, as Keras): output, and what its backward needs."""
    variance = z.var(axis=0)
    normalized = (z - z.mean(axis=0)) / np.sqrt(variance + epsilon)
    return gamma * normalized + beta, (normalized, gamma, variance, epsilon)


def _batch_norm_backward(grad, cache):
    normalized, gamma, variance, epsilon = cache
    g = grad * gamma
    count = len(g)
    return (count * g - g.sum(0) - normalized * (g * normalized).sum(0)) / (
        count * np.sqrt(variance + epsilon)
    )


def _maybe_batch_norm(z, layer):
    if layer is None:
        return z, None
    return _batch_norm(z, _numpy(layer.gamma), _numpy(layer.beta), layer.epsilon)


def numpy_forward_backward(model, x, y):
    """`(probabilities, [dLoss/dz_l for l = 1..L])` of a residual_mlp, in NumPy (float64).

    z_0 = x P + p; z_l = z_{l-1} + relu(BN(z_{l-1})) W_l + b_l; logits = relu(BN(z_L)) C + c;
    loss = mean cross-entropy; BN (where present) on the batch statistics.
    """
    stack = model.get_layer("blocks")
    blocks = [
        dict(zip(stack.block_weight_paths, map(np.float64, stack.get_block_weights(i))))
        for i in range(stack.num_blocks)
    ]
    block_bn = stack.block.get_layer("bn") if "branch/bn/gamma" in blocks[0] else None
    head_bn = model.get_layer("final_bn") if block_bn else None
    projection, classifier = model.get_layer("projection"), model.get_layer("classifier")
    z = x.astype("float64") @ _numpy(projection.kernel) + _numpy(projection.bias)
    caches = []
    for weights in blocks:
        if block_bn:
            a, cache = _batch_norm(
                z, weights["branch/bn/gamma"], weights["branch/bn/beta"], block_bn.epsilon
            )
        else:
            a, cache = z, None
        caches.append((a, cache))
        z = z + np.maximum(a, 0.0) @ weights["branch/dense/kernel"] + weights["branch/dense/bias"]
    a, head_cache = _maybe_batch_norm(z, head_bn)
    logits = np.maximum(a, 0.0) @ _numpy(classifier.kernel) + _numpy(classifier.bias)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    # Backward: d(mean cross-entropy)/d logits = (p - onehot) / batch.
    grad = (probabilities - np.eye(logits.shape[1])[y]) / len(y)
    grad = (grad @ _numpy(classifier.kernel).T) * (a > 0)
    grad = _batch_norm_backward(grad, head_cache) if head_cache else grad  # dLoss/dz_L
    gradients = [grad]
    for weights, (a, cache) in zip(blocks[:0:-1], caches[:0:-1]):
        branch = (grad @ weights["branch/dense/kernel"].T) * (a > 0)
        if cache:
            branch = _batch_norm_backward(branch, cache)
        grad = grad + branch
        gradients.append(grad)
    return probabilities, gradients[::-1]


@pytest.mark.parametrize(
    "initializer, batch_norm",
    [("he_normal", False), ("depth_scaled", False), ("he_normal", True)],
)
def test_block_gradients_match_a_numpy_backward_pass(initializer, batch_norm):
    (x, y), _ = load_digits()
    x, y = x[:48], y[:48]
    model = residual_mlp(
        (64,), 10, num_blocks=10, width=24, kernel_initializer=initializer, batch_norm=batch_norm
    )
    if batch_norm:  # BN parameters away from 1 and 0, so that each one counts
        rng = np.random.default_rng(1)
        for variable in model.weights:
            if variable.path.endswith(("gamma", "beta")):
                variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
    state = [_numpy(v) for v in model.non_trainable_variables]

    gradients = init.block_gradients(model, x, y)
    # Measuring leaves the model as it was (BN moving statistics included).
    for variable, before in zip(model.non_trainable_variables, state):
        np.testing.assert_array_equal(_numpy(variable), before)

    probabilities, expected = numpy_forward_backward(model, x, y)
    # The NumPy forward pass is the model's (in training mode), so its backward pass is a reference.
    np.testing.assert_allclose(_numpy(model(x, training=True)), probabilities, rtol=1e-3, atol=1e-6)
    assert gradients.shape == (10, 48, 24)
    for block, (measured, reference) in enumerate(zip(gradients, expected), 1):
        scale = np.abs(reference).max()
        assert np.abs(measured - reference).max() <= 1e-3 * scale, f"block {block}"
    np.testing.assert_allclose(
        init.block_gradient_variances(model, x, y),
        [g.reshape(-1).var() for g in expected],
        rtol=2e-3,
    )


def test_gradient_variance_grows_as_the_theory_says():
    """Var[g_l] ~ (1 + n Var[w] / 2)^(L - l): 2^9 over 10 He blocks, 1.1^9 depth-scaled."""
    x = np.random.default_rng(0).normal(size=(256, 16)).astype("float32")
    y = np.arange(256) % 10
    ratios = {}
    for initializer, batch_norm in [
        ("he_normal", False),
        ("depth_scaled", False),
        ("he_normal", True),
    ]:
        keras.utils.set_random_seed(3)
        model = residual_mlp(
            (16,),
            10,
            num_blocks=10,
            width=256,
            kernel_initializer=initializer,
            batch_norm=batch_norm,
        )
        variances = init.block_gradient_variances(model, x, y)
        ratios[initializer, batch_norm] = variances[0] / variances[-1]
    assert math.log2(ratios["he_normal", False]) == pytest.approx(9, abs=1.0)
    assert ratios["depth_scaled", False] == pytest.approx(1.1**9, rel=0.15)
    # With BN: sub-exponential, between the two.
    assert 1.1**9 * 1.5 < ratios["he_normal", True] < 2**9 / 4


def test_small_run_shows_the_claim_and_draws_it(tmp_path):
    results = init.run(small=True, gradient_examples=128)

    json.dumps(results, allow_nan=False)  # plain JSON, no NaN
    assert results["num_blocks"] == 50 and results["epochs"] == 3
    variants = results["variants"]
    assert list(variants) == ["he", "depth_scaled", "he_bn"]
    he, scaled, bn = variants["he"], variants["depth_scaled"], variants["he_bn"]
    for variant in variants.values():
        assert len(variant["gradient_variance"]) == 50 and len(variant["theory"]) == 50
        assert len(variant["train_loss"]) == 3
    assert he["n_var_w"] == pytest.approx(2.0, rel=0.05)
    assert scaled["n_var_w"] == pytest.approx(2.0 / 50, rel=0.05)
    # At initialization: He's gradient grows ~2^49 from the last block to the first,
    # the depth-scaled one at most e, BN's in between; each as its theory says (log scale).
    assert he["gradient_ratio"] > 1e10 * scaled["gradient_ratio"]
    assert 1.5 < scaled["gradient_ratio"] < 3.5
    assert 10 * scaled["gradient_ratio"] < bn["gradient_ratio"] < he["gradient_ratio"] / 1e8
    for variant in variants.values():  # exponents within 15 % (width 64 fluctuates)
        predicted = math.log(variant["theory_ratio"])
        assert abs(math.log(variant["gradient_ratio"]) - predicted) < 0.15 * predicted + 0.2
    # Training: depth-scaled (and BN) learn, He without BN does not.
    assert scaled["final_loss"] < 0.5 and scaled["test_accuracy"] > 0.85
    assert bn["final_loss"] < 0.8 and bn["test_accuracy"] > 0.8
    # Loss above a uniform guess's (log 10) after starting in the 1e4s, no better than chance.
    assert he["final_loss"] is None or he["final_loss"] > math.log(10)
    assert he["test_accuracy"] < 0.25

    path = init.plot(results, tmp_path / "init.png")
    assert path == str(tmp_path / "init.png")
    assert (tmp_path / "init.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = init.summary(results)
    assert len(table.splitlines()) == 4 and "depth-scaled, no BN" in table


def test_plot_and_summary_mark_a_loss_that_is_not_finite(tmp_path):
    import matplotlib.image

    variant = {
        "label": "He, no BN",
        "n_var_w": 2.0,
        "gradient_variance": [4.0, 2.0, 1.0],
        "gradient_ratio": 4.0,
        "theory": [4.0, 2.0, 1.0],
        "theory_ratio": 4.0,
        "train_loss": [3.0, 50.0, None],
        "diverged_epoch": 3,
        "final_loss": None,
        "test_accuracy": 0.1,
    }
    results = {
        "num_blocks": 3,
        "width": 4,
        "dataset": "digits",
        "learning_rate": 0.01,
        "batch_size": 32,
        "variants": {"he": variant},
    }
    path = init.plot(results, tmp_path / "diverged.png")
    assert matplotlib.image.imread(path).shape[1] > 800
    assert "not finite from epoch 3" in init.summary(results)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        init.run(dataset="imagenet")
    with pytest.raises(ValueError, match="`num_blocks` must be a positive integer"):
        init.run(num_blocks=0)
    with pytest.raises(ValueError, match="`learning_rate` must be"):
        init.run(learning_rate=-1.0)
    with pytest.raises(ValueError, match="`path` must end in an image extension"):
        init.plot({}, "figure.txt")
