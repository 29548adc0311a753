"""Published PyTorch ResNet-CIFAR checkpoints in the Keras builders: fidelity, download, refusal."""

import hashlib
import itertools
import pathlib

import keras
import numpy as np
import pytest

from keras_deepblocks.zoo import resnet20
from keras_deepblocks.zoo import resnet56
from keras_deepblocks.zoo import resnet_cifar
from keras_deepblocks.zoo import resnet_cifar_weights
from keras_deepblocks.zoo.converters.resnet_cifar import WeightsMismatchError
from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights
from keras_deepblocks.zoo.resnet_cifar_presets import RESNET_CIFAR_PRESETS

torch = pytest.importorskip("torch")

RESNET20 = "resnet20-12fca82f.th"
RESNET56 = "resnet56-4bfd9763.th"
# Written out, not imported: the reference's training normalization (ImageNet's values).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


class TorchBasicBlock(torch.nn.Module):
    """The reference's basic block: option-A shortcut by subsampling and zero channels."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.extra = planes - in_planes

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            half = self.extra // 2
            shortcut = torch.nn.functional.pad(shortcut, (0, 0, 0, 0, half, self.extra - half))
        return torch.relu(out + shortcut)


class TorchResNet(torch.nn.Module):
    def __init__(self, depth, num_classes=10):
        super().__init__()
        nn = torch.nn
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64), start=1):
            blocks = []
            for index in range(n):
                stride = 2 if stage > 1 and index == 0 else 1
                blocks.append(TorchBasicBlock(in_planes, planes, stride))
                in_planes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean(dim=(2, 3)))


def torch_logits(checkpoint_path, depth, images):
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
    network = TorchResNet(depth)
    network.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return network_logits(network, images)


def network_logits(network, images):
    network.eval()
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    with torch.no_grad():
        return network(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def fine_tuned_resnet20(seed):
    """A torch ResNet-20 as a user leaves it: random weights, BatchNorm that has seen batches.

    Training-mode passes move the running statistics and count
    `num_batches_tracked`, which PyTorch >= 0.4.1 saves in the state_dict.
    """
    torch.manual_seed(seed)
    network = TorchResNet(20)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        network.train()
        for _ in range(2):
            network(torch.rand(4, 3, 32, 32) * 4 - 2)
    return network


def logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def raw_images(count=3, size=32):
    return np.random.default_rng(7).integers(0, 256, (count, size, size, 3)).astype(np.uint8)


@pytest.mark.parametrize(
    "builder, depth, name", [(resnet20, 20, RESNET20), (resnet56, 56, RESNET56)]
)
def test_converted_checkpoint_matches_pytorch_reference(shared_fixtures, builder, depth, name):
    path = shared_fixtures / "resnet_cifar_torch" / name
    images = raw_images()
    model = builder(weights=str(path))
    keras_logits = np.asarray(model.predict(images, verbose=0))
    reference = torch_logits(path, depth, images)
    # Float32 on both sides: measured up to 1.9e-5 apart, on logits of size ~10.
    np.testing.assert_allclose(keras_logits, reference, rtol=1e-5, atol=1e-5)
    # Not trivially equal: the logits separate the images.
    assert np.abs(reference[0] - reference[1]).max() > 0.1


def test_wrong_architecture_names_the_mismatch(shared_fixtures):
    path = shared_fixtures / "resnet_cifar_torch" / RESNET20
    expected = r"ResNet-20.*ResNet-56.*layer1\.3\.conv1\.weight"
    with pytest.raises(WeightsMismatchError, match=expected):
        resnet56(weights=str(path))
    with pytest.raises(WeightsMismatchError, match=r"linear\.weight.*\(64, 10\).*\(64, 100\)"):
        resnet20(num_classes=100, weights=str(path))


def _serve(base_url, monkeypatch, **changes):
    """Points every preset's URL at `base_url` (a local folder's file:// URL, or nowhere)."""
    if isinstance(base_url, pathlib.Path):
        base_url = base_url.as_uri() + "/"
    for key, preset in RESNET_CIFAR_PRESETS.items():
        filename = preset["url"].rsplit("/", 1)[-1]
        edited = {**preset, "url": base_url + filename}
        if preset["depth"] == changes.get("depth"):
            edited.update(changes)
        monkeypatch.setitem(RESNET_CIFAR_PRESETS, key, edited)


def _cache_files(keras_home):
    models = keras_home / "models"
    return sorted(p.name for p in models.glob("*")) if models.exists() else []


def test_cifar10_without_network_fails_cleanly(tmp_path, monkeypatch):
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _serve("http://127.0.0.1:9/unreachable/", monkeypatch)
    expected = (
        r"Could not download the pretrained ResNet-20 weights from http://127\.0\.0\.1:9/"
        r".*put it at .*keras_home/models/resnet20-12fca82f\.th"
        r".*weights='/path/to/resnet20-12fca82f\.th'"
    )
    with pytest.raises(ConnectionError, match=expected):
        resnet20(weights="cifar10")
    assert _cache_files(keras_home) == []


@pytest.mark.parametrize("name", [RESNET20, "resnet110-1d1ed7c2.th"])
def test_corrupted_download_is_deleted(tmp_path, monkeypatch, name):
    # resnet20 has a full SHA-256, resnet110 only the prefix in its name.
    server = tmp_path / "server"
    server.mkdir()
    (server / name).write_bytes(b"not a checkpoint" * 100)
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _serve(server, monkeypatch)
    preset = resnet_cifar_weights.find_preset(int(name[6:].split("-")[0]), "cifar10")
    with pytest.raises(resnet_cifar_weights.WeightsUnavailableError):
        resnet_cifar_weights.fetch_checkpoint(preset)
    assert _cache_files(keras_home) == []


def test_cifar10_downloads_verifies_converts_once(shared_fixtures, tmp_path, monkeypatch):
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _serve(shared_fixtures / "resnet_cifar_torch", monkeypatch)
    images = raw_images(2)
    first = logits(resnet20(weights="cifar10"), images)
    assert _cache_files(keras_home) == [RESNET20, "resnet20-12fca82f.weights.npz"]
    digest = hashlib.sha256((keras_home / "models" / RESNET20).read_bytes()).hexdigest()
    assert digest == RESNET_CIFAR_PRESETS["resnet20_cifar10"]["sha256"]

    def no_second_conversion(path):
        raise AssertionError("converted twice")

    monkeypatch.setattr(resnet_cifar_weights, "convert_checkpoint", no_second_conversion)
    _serve("http://127.0.0.1:9/unreachable/", monkeypatch)
    second = resnet20(weights="cifar10", include_preprocessing=False, gradient_checkpointing=True)
    from keras_deepblocks.zoo import cifar_preprocess

    np.testing.assert_allclose(logits(second, cifar_preprocess(images)), first, atol=1e-5)
    reference = torch_logits(keras_home / "models" / RESNET20, 20, images)
    np.testing.assert_allclose(first, reference, atol=1e-4)


def test_cifar10_rejects_unpublished_configurations():
    for kwargs, name in (
        ({"num_classes": 100}, "num_classes"),
        ({"shortcut": "B"}, "shortcut"),
        ({"preactivation": True}, "preactivation"),
    ):
        with pytest.raises(ValueError, match=name):
            resnet_cifar(20, weights="cifar10", **kwargs)
    with pytest.raises(ValueError, match="depth"):
        resnet_cifar(26, weights="cifar10")
    with pytest.raises(ValueError, match="weights"):
        resnet_cifar(20, weights="imagenet")
    with pytest.raises(FileNotFoundError, match="missing.th"):
        resnet_cifar(20, weights="missing.th")


def test_keras_weights_file_and_converted_file(shared_fixtures, tmp_path):
    source = resnet20(weights=str(shared_fixtures / "resnet_cifar_torch" / RESNET20))
    images = raw_images(2)
    expected = logits(source, images)
    source.save_weights(tmp_path / "r20.weights.h5")
    restored = resnet20(weights=str(tmp_path / "r20.weights.h5"))
    np.testing.assert_array_equal(logits(restored, images), expected)
    converted = resnet_cifar_weights.convert_checkpoint(
        shared_fixtures / "resnet_cifar_torch" / RESNET20
    )
    resnet_cifar_weights.write_converted(converted, str(tmp_path / "r20.weights.npz"))
    restored = resnet20(weights=str(tmp_path / "r20.weights.npz"))
    np.testing.assert_array_equal(logits(restored, images), expected)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_checkpoints_saved_by_modern_pytorch_load(tmp_path, zip_format):
    """Files written by torch 2.x: num_batches_tracked, DataParallel prefix, wrapped or not."""
    images = raw_images(3)
    layouts = itertools.product((False, True), repeat=2)
    model = previous = None
    for seed, (data_parallel, wrapped) in enumerate(layouts):
        network = fine_tuned_resnet20(seed)
        state = (torch.nn.DataParallel(network) if data_parallel else network).state_dict()
        assert int(state[("module." if data_parallel else "") + "bn1.num_batches_tracked"]) == 2
        saved = {"epoch": 3, "state_dict": state, "best_prec1": 40.5} if wrapped else state
        path = tmp_path / f"fine_tuned_{seed}.pth"
        torch.save(saved, path, _use_new_zipfile_serialization=zip_format)
        if model is None:
            model = resnet20(weights=str(path))
        else:  # what resnet20(weights=path) does once built, without building again
            resnet_cifar_weights.load_weights(model, str(path), 20)
        expected = network_logits(network, images)
        np.testing.assert_allclose(logits(model, images), expected, atol=1e-4)
        # A different network each time: a stale or partial load cannot pass.
        assert previous is None or np.abs(expected - previous).max() > 0.05
        previous = expected


def test_damaged_weight_files_name_their_path(tmp_path, load_problems):
    model = resnet20()
    model.save_weights(tmp_path / "good.weights.h5")
    arrays = unit_weights(model)
    resnet_cifar_weights.write_converted(arrays, str(tmp_path / "good.weights.npz"))
    torch.save(fine_tuned_resnet20(0).state_dict(), tmp_path / "good.pth")

    def damaged(source, name, edit):
        data = (tmp_path / source).read_bytes()
        (tmp_path / name).write_bytes(edit(data))
        return tmp_path / name

    def flip_middle(data):
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

    paths = [
        damaged(source, f"{kind}.{source.split('.', 1)[1]}", edit)
        for source in ("good.weights.h5", "good.weights.npz", "good.pth")
        for kind, edit in (
            ("empty", lambda data: b""),
            ("garbage", lambda data: b"not a weights file\n" * 50),
            ("truncated", lambda data: data[: len(data) // 2]),
            ("flipped", flip_middle),
        )
    ]
    # What resnet20(weights=path) does once built, for each file.
    problems = load_problems(paths, lambda path: resnet_cifar_weights.load_weights(model, path, 20))
    with pytest.raises(ValueError, match="garbage.weights.h5"):
        resnet20(weights=str(tmp_path / "garbage.weights.h5"))
    # A flipped byte inside HDF5 weight data is not detectable (no checksums).
    assert [p for p in problems if not p.startswith("flipped.weights.h5: loaded")] == []


def test_damaged_cache_files_are_fetched_or_converted_again(tmp_path, monkeypatch):
    # A checkpoint written by torch, served from a local folder, stands for a published one.
    server = tmp_path / "server"
    server.mkdir()
    network = fine_tuned_resnet20(5)
    checkpoint = server / "resnet20-published.th"
    state = torch.nn.DataParallel(network).state_dict()
    # Like the published files (torch 0.3), without num_batches_tracked.
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, checkpoint, _use_new_zipfile_serialization=False)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    name = f"resnet20-{digest[:8]}.th"
    checkpoint.rename(server / name)
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _serve(server, monkeypatch, depth=20, url=(server / name).as_uri(), sha256=digest)
    images = raw_images(2)
    expected = network_logits(network, images)
    np.testing.assert_allclose(logits(resnet20(weights="cifar10"), images), expected, atol=1e-4)
    cached = keras_home / "models" / name
    converted = cached.with_name(name.replace(".th", ".weights.npz"))
    assert _cache_files(keras_home) == sorted([name, converted.name])

    for damage in (lambda data: b"", lambda data: data[:1000] + b"x" + data[1001:]):
        converted.write_bytes(damage(converted.read_bytes()))
        with pytest.warns(UserWarning, match=f"{converted}.*damaged.*converted again"):
            model = resnet20(weights="cifar10")
        np.testing.assert_allclose(logits(model, images), expected, atol=1e-4)
        assert resnet_cifar_weights.read_converted(converted)  # a good file again

    cached.write_bytes(cached.read_bytes()[:-100])  # damaged checkpoint: fetched again
    np.testing.assert_allclose(logits(resnet20(weights="cifar10"), images), expected, atol=1e-4)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest

    cached.write_bytes(b"")  # damaged and offline: removed, and the message says where to put it
    _serve(tmp_path / "offline", monkeypatch)
    expected_message = f"{cached} did not match its SHA-256 and was removed"
    with pytest.raises(ConnectionError, match=expected_message):
        resnet20(weights="cifar10")
    assert _cache_files(keras_home) == [converted.name]
