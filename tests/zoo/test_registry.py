"""The zoo's models by name, and the one check of the CIFAR ResNet depth 6n + 2."""

import pathlib
import re

import pytest

from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.zoo import registry

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_names_are_the_papers_resnets_then_the_highway_nets():
    assert registry.model_names() == (
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "resnet110",
        "resnet1202",
        "highway_mlp",
        "plain_mlp",
        "highway_conv_net",
        "plain_conv_net",
    )
    assert [registry.resnet_depth(n) for n in ("resnet14", "resnet21", "resnet", "plain_mlp")] == [
        14,
        21,  # parsed, not checked
        None,
        None,
    ]


@pytest.mark.parametrize("depth, units", [(8, 1), (20, 3), (110, 18), (1202, 200)])
def test_units_per_stage_and_back(depth, units):
    assert registry.resnet_units_per_stage(depth) == units
    assert registry.resnet_depth_from_units(units) == depth


@pytest.mark.parametrize("depth", [21, 2, 0, -4, 20.0, "20", True, None])
def test_depths_that_are_not_6n_plus_2_name_the_argument(depth):
    with pytest.raises(ValueError, match=r"`--depth` must be a CIFAR ResNet depth 6n \+ 2"):
        registry.resnet_units_per_stage(depth, "--depth")
    for units in (0, 1.0, True):
        with pytest.raises(ValueError, match="`units_per_stage`"):
            registry.resnet_depth_from_units(units)


def test_build_model_builds_each_kind_by_name():
    resnet = registry.build_model("resnet14", (16, 16, 3), 7, final_survival_probability=0.5)
    stages = [layer for layer in resnet.layers if isinstance(layer, (ResidualUnit, ResidualStack))]
    assert resnet.name == "resnet14" and len(stages) == 5 and resnet.output_shape == (None, 7)
    assert stages[-1].survival_probabilities[-1] == pytest.approx(0.5)
    mlp = registry.build_model("highway_mlp", (8, 8), 3, depth=4, width=6, transform_bias=-1.5)
    stack = mlp.get_layer("highway")
    assert isinstance(stack, HighwayStack) and mlp.output_shape == (None, 3)
    assert stack.num_layers == 4 and stack.initial_transform_bias == -1.5
    assert registry.get_builder("plain_conv_net").__name__ == "plain_conv_net"


@pytest.mark.parametrize("name", ["resnet21", "resnet2", "vgg16", "", None])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(ValueError, match=r"unknown model .*resnet20.*|unknown model .*6n \+ 2"):
        registry.build_model(name, (32, 32, 3), 10)


def test_the_6n_plus_2_rule_is_written_only_in_the_registry():
    """Builders, converters, tuner, command and benchmarks call the registry instead."""
    rule = re.compile(r"\(\s*\w+\s*-\s*2\s*\)\s*(//|%)\s*6|6\s*\*\s*[\w()]+\s*\+\s*2")
    sources = [
        p
        for d in ("zoo", "keras_deepblocks", "deepblocks", "benchmarks")
        for p in (REPO / d).rglob("*.py")
    ]
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sources
        if path.name != "registry.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if rule.search(line.split("#")[0])
    ]
    assert found == []
