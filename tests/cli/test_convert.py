"""`deepblocks convert`: offline conversion of the published checkpoints."""

import keras
import numpy as np
import pytest

from deepblocks import main
from keras_deepblocks.zoo import resnet20
from keras_deepblocks.zoo.converters.resnet_cifar import torch_key
from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights
from keras_deepblocks.zoo.resnet_cifar_presets import RESNET_CIFAR_PRESETS

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
    for key, preset in RESNET_CIFAR_PRESETS.items():  # offline: the same files, unreachable
        unreachable = "http://127.0.0.1:9/" + preset["url"].rsplit("/", 1)[-1]
        monkeypatch.setitem(RESNET_CIFAR_PRESETS, key, {**preset, "url": unreachable})
    checkpoint = shared_fixtures / "resnet_cifar_torch" / RESNET20
    main(["convert", str(checkpoint), "-o", str(tmp_path / "r20.weights.npz"), "--cache"])
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(
        logits(resnet20(weights="cifar10"), images),
        logits(resnet20(weights=str(checkpoint)), images),
        atol=1e-6,
    )


def test_convert_rejects_wrong_depth_and_unknown_files(shared_fixtures, tmp_path, capsys):
    checkpoint = shared_fixtures / "resnet_cifar_torch" / RESNET20
    cases = [
        (["-o", str(tmp_path / "x.keras"), "--depth", "56"], "ResNet-20, not the ResNet-56"),
        (["-o", str(tmp_path / "x.onnx")], "`--output` must end in .keras or .weights.h5"),
    ]
    for options, message in cases:
        assert main(["convert", str(checkpoint), *options]) == 1
        assert message in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.th")]) == 1
    assert f"No such checkpoint file: {tmp_path / 'missing.th'}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_convert_reads_modern_checkpoints_and_names_bad_ones(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    source = resnet20()
    state = {}  # the reference's layout, as DataParallel in torch >= 0.4.1 saves it
    for path, value in unit_weights(source).items():
        key = "module." + torch_key(path)
        value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
        if key.endswith("running_var"):
            state[key.replace("running_var", "num_batches_tracked")] = torch.tensor(100)
    torch.save({"epoch": 10, "state_dict": state}, tmp_path / "modern.pth")
    output = tmp_path / "modern.weights.h5"
    assert main(["convert", str(tmp_path / "modern.pth"), "-o", str(output)]) == 0
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(
        logits(resnet20(weights=str(output)), images), logits(source, images), atol=1e-6
    )
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x02not a checkpoint" * 10)
    capsys.readouterr()
    assert main(["convert", str(bad), "-o", str(tmp_path / "bad.keras")]) == 1
    error = capsys.readouterr().err
    assert str(bad) in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "bad.keras").exists()
