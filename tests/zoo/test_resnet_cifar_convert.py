"""`deepblocks convert`: offline conversion of the published checkpoints."""

import keras
import numpy as np
import pytest

from keras_deepblocks.cli import main
from keras_deepblocks.zoo import resnet20
from keras_deepblocks.zoo import resnet_cifar_weights as registry

RESNET20 = "resnet20-12fca82f.th"


def logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def test_convert_writes_a_model_that_predicts_like_the_checkpoint(
    shared_fixtures, tmp_path, capsys
):
    checkpoint = shared_fixtures / "resnet_cifar_torch" / RESNET20
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    expected = logits(resnet20(weights=str(checkpoint)), images)

    main(["convert", str(checkpoint), "-o", str(tmp_path / "r20.keras")])
    assert "ResNet-20 (10 classes" in capsys.readouterr().out
    restored = keras.models.load_model(tmp_path / "r20.keras")
    np.testing.assert_allclose(logits(restored, images), expected, atol=1e-6)

    main(["convert", str(checkpoint), "-o", str(tmp_path / "r20.weights.h5"), "--depth", "20"])
    np.testing.assert_allclose(
        logits(resnet20(weights=str(tmp_path / "r20.weights.h5")), images), expected, atol=1e-6
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r20.keras", "r20.weights.h5"]


def test_convert_cache_enables_offline_cifar10_weights(shared_fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(registry, "BASE_URL", "http://127.0.0.1:9/unreachable/")
    checkpoint = shared_fixtures / "resnet_cifar_torch" / RESNET20
    main(["convert", str(checkpoint), "-o", str(tmp_path / "r20.weights.npz"), "--cache"])
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(
        logits(resnet20(weights="cifar10"), images),
        logits(resnet20(weights=str(checkpoint)), images),
        atol=1e-6,
    )


def test_convert_rejects_wrong_depth_and_unknown_files(shared_fixtures, tmp_path):
    checkpoint = shared_fixtures / "resnet_cifar_torch" / RESNET20
    with pytest.raises(SystemExit, match="ResNet-20, not the ResNet-56"):
        main(["convert", str(checkpoint), "-o", str(tmp_path / "x.keras"), "--depth", "56"])
    with pytest.raises(SystemExit, match="no such file"):
        main(["convert", str(tmp_path / "missing.th")])
    with pytest.raises(SystemExit, match="--output must end"):
        main(["convert", str(checkpoint), "-o", str(tmp_path / "x.onnx")])
    assert list(tmp_path.iterdir()) == []
