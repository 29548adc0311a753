"""Models saved by keras-deepblocks 0.1.0 still load.

`data/deepblocks_0_1_0.keras` was saved by version 0.1.0 (commit f1003d2) on TensorFlow:
a `StochasticDepth` whose config names its wrapped layer `branch` (now `layer`), and a
`GateBias` initializer whose config names the bias `gate_value` (now `transform_bias`).
(Files with a `CheckpointedResidualUnit`, now `ResidualUnit(gradient_checkpointing=True)`,
do not load: Keras stores weights under the class's name.)
"""

import pathlib

import keras
import numpy as np

from keras_deepblocks.layers import StochasticDepth

DATA = pathlib.Path(__file__).parent / "data"


def test_a_model_saved_by_version_0_1_0_loads_and_predicts_the_same():
    model = keras.saving.load_model(DATA / "deepblocks_0_1_0.keras")  # safe_mode=True
    with np.load(DATA / "deepblocks_0_1_0.npz") as saved:
        inputs, expected = saved["inputs"], saved["outputs"]
    got = keras.ops.convert_to_numpy(model(inputs, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    block = model.get_layer("block")
    assert isinstance(block, StochasticDepth) and block.survival_probability == 0.7
    assert block.get_config()["layer"]["class_name"] == "Sequential"
    bias_initializer = model.get_layer("head").bias_initializer.get_config()
    assert bias_initializer["transform_bias"] == -2.0
