"""PyTorch ResNet-CIFAR state_dict <-> the Keras `resnet_cifar` weights.

The reference implementation (github.com/akamaster/pytorch_resnet_cifar10)
names its parameters `conv1.weight`, `bn1.running_var`,
`layer2.0.conv1.weight`, `layer3.8.bn2.bias`, `linear.weight` (with a
`module.` prefix when saved from `DataParallel`); option-B shortcuts are
`layerS.I.shortcut.0` (conv) and `.1` (BN). Each maps to one Keras variable
path of `resnet_cifar` (`conv1/kernel`, `layer2_0/branch/conv1/kernel`, ...;
a stacked stage holds its units' weights as rows, see `unit_variables`),
with conv kernels moved from `(out, in, h, w)` to `(h, w, in, out)` and
dense kernels transposed.
"""

import re

import keras
import numpy as np

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.zoo import registry

BATCH_NORM_NAMES = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
IGNORED_SUFFIXES = (".num_batches_tracked",)
SHORTCUT_LAYERS = {"0": "projection/proj_conv", "1": "projection/proj_bn"}

_UNIT_KEY = re.compile(r"^layer(\d+)\.(\d+)\.(conv\d|bn\d|shortcut\.[01])\.(\w+)$")
_STEM_KEY = re.compile(r"^(conv1|bn1|linear)\.(\w+)$")
_UNIT_PATH = re.compile(
    r"^layer(\d+)_(\d+)/(branch/conv\d|branch/bn\d|projection/proj_conv|projection/proj_bn)/(\w+)$"
)
_STEM_PATH = re.compile(r"^(conv1|bn1|linear)/(\w+)$")


class WeightsMismatchError(ValueError):
    """A checkpoint's parameters do not fit the model's variables."""


def state_dict_from_checkpoint(checkpoint):
    """The state_dict of a loaded checkpoint, without any `module.` prefix.

    Accepts the reference's `{"state_dict": ..., "best_prec1": ...}`, the
    PyTorch tutorials' `{"model_state_dict": ..., "optimizer_state_dict": ...}`
    and a bare state_dict. Entries that hold no weights (the BatchNorm
    `num_batches_tracked` counters PyTorch >= 0.4.1 saves) are left out.
    """
    state_dict = checkpoint
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(checkpoint.get(key), dict):
                state_dict = checkpoint[key]
                break
    if not isinstance(state_dict, dict) or not state_dict:
        raise WeightsMismatchError(
            "The checkpoint holds no state_dict of tensors (expected a dict of "
            "tensors, or a dict with a 'state_dict' entry)."
        )
    state_dict = {
        _strip_prefix(str(key)): value
        for key, value in state_dict.items()
        if not str(key).endswith(IGNORED_SUFFIXES)
    }
    others = [key for key, value in state_dict.items() if not isinstance(value, np.ndarray)]
    if others:
        raise WeightsMismatchError(
            "The checkpoint holds no state_dict of tensors (expected a dict of "
            "tensors, or a dict with a 'state_dict' entry): "
            f"{others[0]!r} is a {type(state_dict[others[0]]).__name__}."
        )
    return state_dict


def keras_weights_from_state_dict(state_dict):
    """Converts a reference state_dict into `{keras_variable_path: array}`.

    Raises:
        WeightsMismatchError: a key has no counterpart in `resnet_cifar`
            (it is named in the message).
    """
    weights = {}
    for key, value in state_dict.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        path = keras_path(key)
        if path is None:
            raise WeightsMismatchError(
                f"Checkpoint key {key!r} (shape {tuple(value.shape)}) has no "
                "counterpart in the Keras CIFAR ResNet."
            )
        weights[path] = _to_keras_layout(path, np.asarray(value))
    return weights


def architecture(weights, source):
    """`(depth, num_classes, shortcut)` of the `resnet_cifar` network `weights` belong to.

    Args:
        weights: `{keras_variable_path: array}`, as from
            `keras_weights_from_state_dict`.
        source: What the weights were read from, for messages.

    Raises:
        WeightsMismatchError: `weights` hold no CIFAR ResNet, or stages of
            different lengths.
    """
    units = [_units(weights, stage) for stage in (1, 2, 3)]
    if "linear/bias" not in weights or not units[0]:
        raise WeightsMismatchError(
            f"{source} holds no CIFAR ResNet (no linear/bias or layer1 units)"
        )
    if len(set(units)) > 1:
        raise WeightsMismatchError(
            f"{source} holds stages of {', '.join(map(str, units))} residual units; a CIFAR "
            "ResNet has the same number in each of its 3 stages"
        )
    shortcut = "B" if any("/projection/" in path for path in weights) else "A"
    depth = registry.resnet_depth_from_units(units[0])
    return depth, int(weights["linear/bias"].shape[0]), shortcut


def keras_path(torch_key):
    """The Keras variable path of a reference state_dict key, or `None`."""
    match = _STEM_KEY.match(torch_key)
    if match:
        layer, name = match.groups()
        return _variable_path(layer, name, is_norm=layer.startswith("bn"))
    match = _UNIT_KEY.match(torch_key)
    if match:
        stage, index, layer, name = match.groups()
        if layer.startswith("shortcut"):
            layer_path = SHORTCUT_LAYERS[layer[-1]]
        else:
            layer_path = f"branch/{layer}"
        is_norm = layer_path.rsplit("/", 1)[-1].startswith(("bn", "proj_bn"))
        variable = _variable_path(layer_path, name, is_norm)
        return variable and f"layer{stage}_{index}/{variable}"
    return None


def torch_key(path):
    """The reference state_dict key of a Keras variable path, or `None`."""
    inverse_norm = {v: k for k, v in BATCH_NORM_NAMES.items()}
    inverse_layer = {v: f"shortcut.{k}" for k, v in SHORTCUT_LAYERS.items()}
    match = _STEM_PATH.match(path)
    if match:
        layer, name = match.groups()
        prefix = layer
    else:
        match = _UNIT_PATH.match(path)
        if not match:
            return None
        stage, index, layer, name = match.groups()
        layer = inverse_layer.get(layer, layer.replace("branch/", ""))
        prefix = f"layer{stage}.{index}.{layer}"
    torch_name = inverse_norm.get(name, {"kernel": "weight"}.get(name, name))
    return f"{prefix}.{torch_name}"


def assign_weights(model, weights, source):
    """Sets every variable of `model` from `weights` (`{path: array}`).

    All checks run before anything is assigned, so a mismatch leaves the
    model untouched.

    Raises:
        WeightsMismatchError: naming the first missing, extra or mis-shaped
            parameters (with both the Keras path and the checkpoint key).
    """
    targets = unit_variables(model)
    # One unit's part of each variable: a row of a stacked one.
    shapes = {path: tuple(v.shape)[0 if i is None else 1 :] for path, (v, i) in targets.items()}
    missing = [path for path in shapes if path not in weights]
    unexpected = [path for path in weights if path not in shapes]
    problems = []
    if missing:
        problems.append(
            f"the model has {len(missing)} weights the file lacks, e.g. {_describe(missing)}"
        )
    if unexpected:
        problems.append(
            f"the file has {len(unexpected)} weights the model lacks, e.g. " + _describe(unexpected)
        )
    for path, shape in shapes.items():
        if path in weights and tuple(weights[path].shape) != shape:
            problems.append(
                f"{_name(path)} has shape {tuple(weights[path].shape)} in the file "
                f"(Keras layout) but {shape} in the model"
            )
    if problems:
        hint = _depth_hint(weights, shapes)
        raise WeightsMismatchError(
            f"{source} does not match model {model.name!r}{hint}: " + "; ".join(problems[:4]) + "."
        )
    stacked = {}
    for path, (variable, index) in targets.items():
        value = weights[path].astype(variable.dtype)
        if index is None:
            variable.assign(value)
        else:
            stacked.setdefault(id(variable), (variable, {}))[1][index] = value
    for variable, values in stacked.values():
        variable.assign(np.stack([values[i] for i in range(len(values))]))


def unit_variables(model):
    """`{per-unit path: (variable, index)}` for the variables of a `resnet_cifar` model.

    Checkpoints and converted files name each unit's weights
    (`layer1_3/branch/conv1/kernel`); a stacked stage (`ResidualStack`
    `layer1`) holds them as rows of one variable (`layer1/conv1_kernel`,
    row 3), after the stage's separate units (`layer2_0`) if any. `index` is
    that row, or `None` for a variable of its own.
    """
    layer_names = {layer.name for layer in model.layers}
    targets = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            targets.update(unit_variables(layer))
        elif isinstance(layer, ResidualStack):
            first = 0
            while f"{layer.name}_{first}" in layer_names:
                first += 1
            for variable, block_path in zip(layer.weights, layer.block_weight_paths):
                # A pre-activation unit's BN sits beside its branch, the stack's in it.
                block_path = block_path.replace("branch/preact_bn/", "preact_bn/")
                for index in range(layer.num_blocks):
                    targets[f"{layer.name}_{first + index}/{block_path}"] = (variable, index)
        else:
            for variable in layer.weights:
                if not _is_rng_state(variable.path):
                    targets[variable.path] = (variable, None)
    return targets


def unit_weights(model):
    """`{per-unit path: array}`: a `resnet_cifar` model's weights as files hold them.

    The inverse of `assign_weights`, stacked stages or not.
    """
    arrays, weights = {}, {}
    for path, (variable, index) in unit_variables(model).items():
        # Once per variable, not once per row of a stacked one.
        if id(variable) not in arrays:
            arrays[id(variable)] = keras.ops.convert_to_numpy(variable.value)
        value = arrays[id(variable)]
        weights[path] = value if index is None else value[index]
    return weights


def _depth_hint(weights, variables):
    """`" (file: ResNet-20, model: ResNet-56)"` when the unit counts differ."""
    units = [_units(paths, 1) for paths in (weights, variables)]
    if units[0] == units[1] or not all(units):
        return ""
    depths = [registry.resnet_depth_from_units(n) for n in units]
    return f" (file: ResNet-{depths[0]}, model: ResNet-{depths[1]})"


def _units(paths, stage):
    """How many residual units of `stage` the variable paths name."""
    return len({p.split("/", 1)[0] for p in paths if p.startswith(f"layer{stage}_")})


def _variable_path(layer, name, is_norm):
    if is_norm:
        keras_name = BATCH_NORM_NAMES.get(name)
    else:
        keras_name = {"weight": "kernel", "bias": "bias"}.get(name)
    return keras_name and f"{layer}/{keras_name}"


def _to_keras_layout(path, value):
    if path.endswith("kernel"):
        if value.ndim == 4:
            return value.transpose(2, 3, 1, 0)
        if value.ndim == 2:
            return value.T
    return value


def _strip_prefix(key):
    return key[len("module.") :] if key.startswith("module.") else key


def _is_rng_state(path):
    return "seed_generator" in path


def _name(path):
    key = torch_key(path)
    return f"{path!r} (checkpoint key {key!r})" if key else repr(path)


def _describe(paths, limit=3):
    text = ", ".join(_name(path) for path in paths[:limit])
    return text + (", ..." if len(paths) > limit else "")
