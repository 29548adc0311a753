"""Gradient checkpointing of the CIFAR ResNets: same training step, less memory."""

import keras
import numpy as np
import pytest

from keras_deepblocks.zoo import resnet_cifar


def one_sgd_step(gradient_checkpointing, **kwargs):
    """All variables after one SGD step (learning rate 1: the update is the gradient)."""
    keras.utils.set_random_seed(3)
    model = resnet_cifar(
        8, input_shape=(8, 8, 3), gradient_checkpointing=gradient_checkpointing, **kwargs
    )
    model.compile(
        optimizer=keras.optimizers.SGD(1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    model.fit(images, np.array([0, 1, 2, 3]), batch_size=4, epochs=1, verbose=0)
    after = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    return before, after


@pytest.mark.parametrize(
    "kwargs", [{}, {"shortcut": "B", "preactivation": True, "final_survival_probability": 0.5}]
)
def test_checkpointing_gives_identical_gradients_and_statistics(kwargs):
    before, plain = one_sgd_step(False, **kwargs)
    _, checkpointed = one_sgd_step(True, **kwargs)
    assert plain.keys() == checkpointed.keys()
    for path in plain:
        # Gradients (the SGD updates) and BN moving statistics (updated once,
        # not again by the recomputation) agree.
        np.testing.assert_allclose(checkpointed[path], plain[path], atol=2e-6, err_msg=path)
    moved = [p for p in plain if "moving_mean" in p and not np.allclose(plain[p], before[p])]
    assert moved, "the training step should update the BN statistics"


def saved_activation_bytes(gradient_checkpointing):
    """Bytes the forward pass of a training step keeps for the backward pass."""
    model = resnet_cifar(14, input_shape=(16, 16, 3), gradient_checkpointing=gradient_checkpointing)
    images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(trainable):
            logits, _ = model.stateless_call(trainable, non_trainable, images, training=True)
            return (logits**2).mean()

        # The residuals closed over by the VJP are what the forward pass
        # saves; eval_shape gives their shapes without running the network.
        backward = jax.eval_shape(lambda params: jax.vjp(loss, params)[1], trainable)
        return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(backward))
    if backend == "torch":
        import torch

        saved = {}

        def pack(tensor):
            saved[(tensor.data_ptr(), tuple(tensor.shape))] = tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(images, training=True)
        return sum(saved.values())
    pytest.skip(f"counts saved tensors with JAX's VJP or PyTorch's autograd hooks, not {backend}")


def test_checkpointing_keeps_fewer_activations():
    plain = saved_activation_bytes(False)
    checkpointed = saved_activation_bytes(True)
    assert checkpointed < 0.5 * plain, (checkpointed, plain)
