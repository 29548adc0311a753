"""The presets of the published CIFAR-10 weights: data that agrees with the paper and the files."""

import hashlib

import pytest

from keras_deepblocks.zoo import RESNET_CIFAR_PRESETS
from keras_deepblocks.zoo.converters import load_torch_checkpoint

# He et al. 2015, Table 6: parameters (millions) and CIFAR-10 test error (%) by depth.
PAPER = {20: (0.27, 8.75), 32: (0.46, 7.51), 44: (0.66, 7.17), 56: (0.85, 6.97)}
PAPER.update({110: (1.7, 6.43), 1202: (19.4, 7.93)})


def test_one_preset_per_paper_depth_with_the_papers_numbers():
    by_depth = {preset["depth"]: (name, preset) for name, preset in RESNET_CIFAR_PRESETS.items()}
    assert sorted(by_depth) == sorted(PAPER) and len(by_depth) == len(RESNET_CIFAR_PRESETS)
    for depth, (millions, error) in PAPER.items():
        name, preset = by_depth[depth]
        assert name == f"resnet{depth}_cifar10" and preset["dataset"] == "cifar10"
        assert preset["paper_error"] == error
        assert round(preset["parameters"] / 1e6, 1 if millions >= 1 else 2) == millions
        # The published names carry the start of the file's SHA-256.
        filename = preset["url"].rsplit("/", 1)[-1]
        assert filename == f"resnet{depth}-{preset['sha256'][:8]}.th"
        assert preset["url"].startswith("https://github.com/akamaster/pytorch_resnet_cifar10/")


@pytest.mark.parametrize("depth", [20, 56])
def test_presets_describe_the_published_files(shared_fixtures, depth):
    (preset,) = [p for p in RESNET_CIFAR_PRESETS.values() if p["depth"] == depth]
    path = shared_fixtures / "resnet_cifar_torch" / preset["url"].rsplit("/", 1)[-1]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == preset["sha256"]
    # The test accuracy the file records, read without torch.
    assert load_torch_checkpoint(path)["best_prec1"] == pytest.approx(preset["accuracy"])
