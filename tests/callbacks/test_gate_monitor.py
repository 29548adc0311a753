import keras
import numpy as np
import pytest

from keras_deepblocks.callbacks import GateMonitor
from keras_deepblocks.zoo.highway_nets import highway_mlp


@pytest.mark.parametrize("stacked", [False, True], ids=["layers", "stack"])
def test_gate_monitor_records_the_gate_half_of_each_highway_bias(rng, stacked):
    model = highway_mlp((6,), 3, depth=3, width=4, transform_bias=-2.0, stacked=stacked)
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    monitor = GateMonitor()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[monitor])

    assert len(monitor.history) == 2
    final = monitor.history[-1]
    if stacked:
        assert list(final) == ["highway/0", "highway/1", "highway/2"]
        biases = keras.ops.convert_to_numpy(model.get_layer("highway").weights[1])
    else:
        assert list(final) == ["highway_0", "highway_1", "highway_2"]
        biases = [keras.ops.convert_to_numpy(model.get_layer(n).bias) for n in final]
    for value, bias in zip(final.values(), biases):
        assert value == pytest.approx(bias[4:].mean(), abs=1e-6)  # [b_H | b_T]: the gate half
    assert any(abs(v + 2.0) > 1e-4 for v in final.values())  # training moved the gates
    assert history.history["transform_bias"][-1] == pytest.approx(np.mean(list(final.values())))
