"""The zoo's models by name: what `deepblocks train NAME`, the tuner and the benchmarks build.

Names are `resnet{depth}` for any CIFAR ResNet depth `6n + 2` (resnet20 ...
resnet1202 are the paper's), and the highway and plain networks of
`highway_nets`. Builders are imported when first asked for, so that reading
the names costs nothing.

Example:

>>> model_names()[:3]
('resnet20', 'resnet32', 'resnet44')
>>> resnet_units_per_stage(110)
18
>>> build_model("resnet14", input_shape=(32, 32, 3), num_classes=10).output_shape
(None, 10)
"""

import importlib
import re

PAPER_RESNET_DEPTHS = (20, 32, 44, 56, 110, 1202)
# Name -> "module:function" of its builder, relative to this package.
HIGHWAY_MODELS = {
    "highway_mlp": "highway_nets:highway_mlp",
    "plain_mlp": "highway_nets:plain_mlp",
    "highway_conv_net": "highway_nets:highway_conv_net",
    "plain_conv_net": "highway_nets:plain_conv_net",
}
_RESNET_NAME = re.compile(r"resnet(\d+)")


def model_names():
    """The names `build_model` knows: the paper's ResNets, then the highway and plain nets."""
    return tuple(f"resnet{depth}" for depth in PAPER_RESNET_DEPTHS) + tuple(HIGHWAY_MODELS)


def resnet_depth(name):
    """The depth of a `resnet{depth}` name (not checked), or `None` for other names."""
    match = _RESNET_NAME.fullmatch(name) if isinstance(name, str) else None
    return int(match.group(1)) if match else None


def resnet_units_per_stage(depth, name="depth"):
    """`n` of a CIFAR ResNet depth `6n + 2`: the one place that rule is checked.

    Raises:
        ValueError: `depth` is not an integer `6n + 2` with `n >= 1`.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        examples = ", ".join(str(d) for d in PAPER_RESNET_DEPTHS)
        raise ValueError(
            f"`{name}` must be a CIFAR ResNet depth 6n + 2 for an integer n >= 1 "
            f"(e.g. {examples}), received: {depth!r}"
        )
    return (depth - 2) // 6


def resnet_depth_from_units(units_per_stage):
    """The CIFAR ResNet depth `6n + 2` of `n` residual units per stage (read from weights).

    Raises:
        ValueError: `units_per_stage` is not a positive integer.
    """
    if isinstance(units_per_stage, bool) or not isinstance(units_per_stage, int):
        raise ValueError(
            f"`units_per_stage` must be a positive integer, received: {units_per_stage!r}"
        )
    depth = 6 * units_per_stage + 2
    resnet_units_per_stage(depth, "units_per_stage")
    return depth


def get_builder(name):
    """The builder function of the model `name`.

    ResNet names give `resnet_cifar` with the depth bound
    (`builder(num_classes=..., input_shape=..., ...)`); highway and plain
    names give their `highway_nets` function
    (`builder(input_shape, num_classes, ...)`). Use `build_model` for one
    signature across all of them.

    Raises:
        ValueError: an unknown name, or a ResNet depth that is not `6n + 2`.
    """
    depth = resnet_depth(name)
    if depth is not None:
        try:
            resnet_units_per_stage(depth)
        except ValueError as error:
            raise ValueError(f"unknown model {name!r}: {error}") from None
        resnet_cifar = _import("resnet_cifar:resnet_cifar")
        return lambda **kwargs: resnet_cifar(depth, **kwargs)
    if name in HIGHWAY_MODELS:
        return _import(HIGHWAY_MODELS[name])
    raise ValueError(
        f"unknown model {name!r}; choose from {', '.join(model_names())} (or any resnet{{6n+2}})"
    )


def build_model(name, input_shape, num_classes, **kwargs):
    """Builds the zoo model `name` for images (or vectors) of `input_shape`.

    Args:
        name: A name from `model_names()`, or `resnet{6n+2}`.
        input_shape: Shape of one example, without the batch axis.
        num_classes: Units of the classifier.
        **kwargs: Further arguments of the builder, e.g. `depth`,
            `transform_bias` (highway nets) or `final_survival_probability`,
            `weights` (ResNets).
    """
    builder = get_builder(name)
    if resnet_depth(name) is not None:
        return builder(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
    return builder(tuple(input_shape), num_classes, **kwargs)


def _import(reference):
    module, function = reference.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)
