"""Character-CNN-with-highway encoders (Kim et al. 2016; ELMo's character encoder).

Configs are dicts shaped like ELMo's `options.json["char_cnn"]`, plus an
optional `"projection_dim"` (ELMo takes it from `options["lstm"]`). Published
ELMo weights (bilm-tf HDF5 files) load into the ELMo configs.
"""

import copy
import json
import os

import keras
import numpy as np

from keras_deepblocks.layers import Highway
from keras_deepblocks.utils import validation
from keras_deepblocks.layers.char_cnn import CharCNN

_ELMO_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]


def _elmo_config(n_highway, projection_dim):
    return {
        "embedding": {"dim": 16},
        "filters": _ELMO_FILTERS,
        "n_highway": n_highway,
        "activation": "relu",
        "n_characters": 262,
        "max_characters_per_token": 50,
        "projection_dim": projection_dim,
    }


def _kim_config(filters, n_highway):
    # Kim et al. 2016, Table 2: 15-dim characters, tanh feature maps, no
    # projection. PTB's longest word is 19 characters, + 2 word markers.
    return {
        "embedding": {"dim": 15},
        "filters": filters,
        "n_highway": n_highway,
        "activation": "tanh",
        "n_characters": 262,
        "max_characters_per_token": 21,
        "projection_dim": None,
    }


CHAR_CNN_CONFIGS = {
    # LSTM-Char-Small: widths 1-6 with 25 * width filters, one highway layer.
    "kim_small": _kim_config([[w, 25 * w] for w in range(1, 7)], 1),
    # LSTM-Char-Large: widths 1-7 with min(200, 50 * width) filters, two highway layers.
    "kim_large": _kim_config([[w, min(200, 50 * w)] for w in range(1, 8)], 2),
    "elmo_original": _elmo_config(2, 512),  # elmo_2x4096_512_2048cnn_2xhighway
    "elmo_medium": _elmo_config(1, 256),  # elmo_2x2048_256_2048cnn_1xhighway
    "elmo_small": _elmo_config(1, 128),  # elmo_2x1024_128_2048cnn_1xhighway
}

_ELMO_ROOT = "https://allennlp.s3.amazonaws.com/models/elmo"
_ELMO_FILES = {
    "elmo_original": "2x4096_512_2048cnn_2xhighway",
    "elmo_medium": "2x2048_256_2048cnn_1xhighway",
    "elmo_small": "2x1024_128_2048cnn_1xhighway",
}
# Published bilm-tf weight files of the named ELMo configs (options match
# CHAR_CNN_CONFIGS). AllenNLP publishes no checksums; pass `weights_hash` to
# have the download verified.
PUBLISHED_ELMO_WEIGHTS = {
    name: f"{_ELMO_ROOT}/{stem}/elmo_{stem}_weights.hdf5" for name, stem in _ELMO_FILES.items()
}

_KEYS = ("embedding", "filters", "n_highway", "activation", "n_characters")


def char_cnn_highway_encoder(config, weights=None, weights_hash=None, name=None):
    """Character CNN -> highway layers -> optional linear projection.

    Input: character ids `(batch, tokens, max_characters_per_token)` (see
    `CharacterIds`), 0 for padding tokens. Output: `(batch, tokens, dim)`,
    with a mask that is False on padding tokens, so a following LSTM or
    attention layer skips them.

    Args:
        config: A name in `CHAR_CNN_CONFIGS` (`"kim_small"`, `"kim_large"`,
            `"elmo_original"`, `"elmo_medium"`, `"elmo_small"`); a dict shaped
            like ELMo's `options.json["char_cnn"]` (`embedding.dim`,
            `filters`, `n_highway`, `activation`, `n_characters`,
            `max_characters_per_token`) with an optional `projection_dim`;
            a whole ELMo options dict; or the path of an `options.json`.
        weights: `None` (random initialization); `"elmo"` for the published
            weights of a named ELMo config (downloaded once into
            `$KERAS_HOME/models/elmo`, see `keras_deepblocks.utils.download`);
            or the path or URL of a bilm-tf HDF5 weight file matching
            `config`. A damaged file raises a `ValueError` naming it (and a
            damaged download is removed from the cache).
        weights_hash: Expected SHA-256 of a downloaded weight file (or its
            first 8 or more hex digits); a cached copy that does not match
            is downloaded again.
        name: Model name. Defaults to the config name or
            `"char_cnn_highway_encoder"`.

    Returns:
        A functional `keras.Model` with layers `char_cnn` (`CharCNN`),
        `highway_0` ... (`Highway`) and `projection` (`Dense`, if any).

    Example:

    >>> from keras_deepblocks.layers import char_ids
    >>> encoder = char_cnn_highway_encoder("elmo_small")
    >>> tuple(encoder(char_ids([["Hello", "world"]])).shape)
    (1, 2, 128)
    """
    config_name = config if isinstance(config, str) and config in CHAR_CNN_CONFIGS else None
    config = resolve_config(config)
    path, downloaded = _weights_path(weights, config_name, weights_hash)
    ids = keras.Input((None, config["max_characters_per_token"]), dtype="int32", name="char_ids")
    x = CharCNN(
        config["filters"],
        embedding_dim=config["embedding"]["dim"],
        num_characters=config["n_characters"],
        activation=config["activation"],
        name="char_cnn",
    )(ids)
    for i in range(config["n_highway"]):
        # Kim et al. and bilm-tf both start the gate bias at -2 and use ReLU.
        x = Highway("relu", transform_bias=-2.0, name=f"highway_{i}")(x)
    if config["projection_dim"]:
        x = keras.layers.Dense(config["projection_dim"], name="projection")(x)
    encoder = keras.Model(ids, x, name=name or config_name or "char_cnn_highway_encoder")
    if path is not None:
        try:
            load_bilm_weights(encoder, path)
        except DamagedBilmFileError as error:
            if not downloaded:
                raise
            # Without a hash, a damaged download is only found here: do not
            # leave it in the cache for the next call to trust.
            os.remove(path)
            raise BilmWeightsError(
                f"{error} It was a cached download and has been removed: the next call "
                "downloads it again."
            ) from None
    return encoder


def resolve_config(config):
    """A complete, checked copy of a char-CNN config (see `char_cnn_highway_encoder`)."""
    source = ""  # " (from PATH)" in messages about an options file
    if isinstance(config, (str, os.PathLike)):
        if isinstance(config, str) and config in CHAR_CNN_CONFIGS:
            return copy.deepcopy(CHAR_CNN_CONFIGS[config])
        if not os.path.isfile(config):
            names = ", ".join(repr(n) for n in CHAR_CNN_CONFIGS)
            raise ValueError(
                f"`config` must be one of {names}, a dict or an options.json path; "
                f"got {config!r}, which is neither a known name nor a file."
            )
        path = os.fspath(config)
        config = _read_options(path)
        source = f" (from {path})"
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a name, dict or path; got {type(config).__name__}.")
    config = copy.deepcopy(config)
    if "char_cnn" in config:  # a whole ELMo options dict
        lstm = config.get("lstm", {})
        if not isinstance(lstm, dict):
            raise ValueError(f"`config['lstm']` must be a dict{source}, received: {lstm!r}.")
        projection_dim = lstm.get("projection_dim")
        config = config["char_cnn"]
        if not isinstance(config, dict):
            raise ValueError(
                f"`config['char_cnn']` must be a dict with the keys {list(_KEYS)}{source}, "
                f"received: {config!r}."
            )
        config.setdefault("projection_dim", projection_dim)
    missing = [key for key in _KEYS if key not in config]
    if missing:
        raise ValueError(f"`config` lacks the key(s) {missing}{source}; it needs {list(_KEYS)}.")
    config.setdefault("max_characters_per_token", 50)
    config.setdefault("projection_dim", None)
    embedding = config["embedding"]
    if not isinstance(embedding, dict) or "dim" not in embedding:
        raise ValueError(
            f"`config['embedding']` must be a dict like {{'dim': 16}}{source}, "
            f"received: {embedding!r}."
        )
    if config["n_characters"] == 261:
        # bilm-tf trains with 261 ids and adds id 0 for padding at inference.
        config["n_characters"] = 262
    try:
        validation.positive_int(config["n_characters"], "config['n_characters']")
        validation.positive_int(embedding["dim"], "config['embedding']['dim']")
        validation.positive_int(
            config["max_characters_per_token"], "config['max_characters_per_token']"
        )
        if config["n_highway"] != 0:
            validation.positive_int(config["n_highway"], "config['n_highway']")
        if config["projection_dim"] is not None:
            validation.positive_int(config["projection_dim"], "config['projection_dim']")
        if not isinstance(config["activation"], str):
            raise ValueError(
                "`config['activation']` must be an activation name such as 'relu', "
                f"received: {config['activation']!r}."
            )
    except ValueError as error:
        raise ValueError(f"{error}{source}") from None
    return config


def _read_options(path):
    """The dict of an options.json file; errors name the file."""
    try:
        with open(path, encoding="utf-8") as file:
            options = json.load(file)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"`config` file {path} is not UTF-8 text ({error}); expected an ELMo options.json."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"`config` file {path} is not valid JSON ({error}); expected an ELMo options.json."
        ) from None
    if not isinstance(options, dict):
        raise ValueError(
            f"`config` file {path} holds a JSON {type(options).__name__}, not an options "
            "object like ELMo's options.json."
        )
    return options


def load_bilm_weights(encoder, path):
    """Loads the character encoder of a bilm-tf HDF5 weight file into `encoder`.

    bilm-tf stores matrices as `(inputs, outputs)`, the orientation of Keras
    kernels. Its highway "carry" weights feed the gate applied to the
    transformed path, so `[W_transform | W_carry]` becomes our fused
    `[W_h | W_t]`. `char_embed` lacks the padding row 0, which is set to
    zeros. All arrays are checked before any weight is assigned; a missing
    key or a wrong shape raises a `ValueError` naming the key.

    Args:
        encoder: A model from `char_cnn_highway_encoder`.
        path: Path of the HDF5 file.
    """
    import h5py

    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as file:
            reader = _ArrayReader(file, path)
            values = _char_cnn_values(reader, encoder.get_layer("char_cnn"))
            highways = [layer for layer in encoder.layers if isinstance(layer, Highway)]
            values += _highway_values(reader, highways)
            values += _projection_values(reader, _optional_layer(encoder, "projection"))
    except BilmWeightsError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as error:
        # h5py's messages for a truncated or foreign file do not name it.
        raise DamagedBilmFileError(
            f"Could not read the bilm-tf weight file {path}: {type(error).__name__}: {error}. "
            "It is truncated or not an HDF5 file; get it again."
        ) from error
    for variable, value in values:
        variable.assign(value)


class BilmWeightsError(ValueError):
    """A bilm-tf weight file is damaged or does not fit the encoder (the message names it)."""


class DamagedBilmFileError(BilmWeightsError):
    """The file itself cannot be read (as opposed to not fitting the config)."""


def _char_cnn_values(reader, char_cnn):
    rows = (char_cnn.num_characters - 1, char_cnn.embedding_dim)
    embedding = reader.read("char_embed", rows)
    padding_row = np.zeros_like(embedding[:1])
    values = [(char_cnn.embedding.embeddings, np.concatenate([padding_row, embedding]))]
    for i, conv in enumerate(char_cnn.convolutions):
        # bilm-tf's Conv2D kernels are (1, width, embedding, filters).
        kernel = reader.read(f"CNN/W_cnn_{i}", (1, *conv.kernel.shape))[0]
        values.append((conv.kernel, kernel))
        values.append((conv.bias, reader.read(f"CNN/b_cnn_{i}", conv.bias.shape)))
    reader.expect_absent(f"CNN/W_cnn_{len(char_cnn.convolutions)}", "filters")
    return values


def _highway_values(reader, highways):
    values = []
    for i, highway in enumerate(highways):
        width = highway.kernel.shape[0]
        parts = ("transform", "carry")  # -> [W_h | W_t]
        kernel = [reader.read(f"CNN_high_{i}/W_{part}", (width, width)) for part in parts]
        bias = [reader.read(f"CNN_high_{i}/b_{part}", (width,)) for part in parts]
        values.append((highway.kernel, np.concatenate(kernel, axis=1)))
        values.append((highway.bias, np.concatenate(bias)))
    reader.expect_absent(f"CNN_high_{len(highways)}/W_carry", "n_highway")
    return values


def _projection_values(reader, projection):
    if projection is None:
        reader.expect_absent("CNN_proj/W_proj", "projection_dim")
        return []
    return [
        (projection.kernel, reader.read("CNN_proj/W_proj", projection.kernel.shape)),
        (projection.bias, reader.read("CNN_proj/b_proj", projection.bias.shape)),
    ]


class _ArrayReader:
    def __init__(self, file, path):
        self.file = file
        self.path = path

    def read(self, key, shape):
        dataset = self.file.get(key)
        if dataset is None:
            raise BilmWeightsError(f"bilm-tf weight file {self.path} has no array {key!r}.")
        if not hasattr(dataset, "shape") or not np.issubdtype(dataset.dtype, np.number):
            raise BilmWeightsError(
                f"{key!r} of bilm-tf weight file {self.path} is not a numeric array."
            )
        if tuple(dataset.shape) != tuple(shape):
            raise BilmWeightsError(
                f"Array {key!r} of {self.path} has shape {tuple(dataset.shape)}; the encoder "
                f"config needs {tuple(shape)}."
            )
        return dataset[...].astype("float32")

    def expect_absent(self, key, config_key):
        if key in self.file:
            raise BilmWeightsError(
                f"bilm-tf weight file {self.path} holds {key!r}, which the encoder "
                f"config has no place for: check config[{config_key!r}]."
            )


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _weights_path(weights, config_name, weights_hash):
    """`(path, downloaded)` of the weight file `weights` names, `(None, False)` for none."""
    if weights is None:
        return None, False
    if weights == "elmo":
        if config_name not in PUBLISHED_ELMO_WEIGHTS:
            names = ", ".join(repr(n) for n in PUBLISHED_ELMO_WEIGHTS)
            raise ValueError(
                f"`weights='elmo'` needs `config` to be one of {names}; got {config_name!r}."
            )
        return download(PUBLISHED_ELMO_WEIGHTS[config_name], weights_hash), True
    if isinstance(weights, str) and "://" in weights:
        return download(weights, weights_hash), True
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError(
            "`weights` must be None, 'elmo', a URL or the path of a bilm-tf HDF5 file; "
            f"got {weights!r}."
        )
    return weights, False


def download(url, file_hash=None):
    """The cached copy of `url` in `$KERAS_HOME/models/elmo` (default `~/.keras`).

    Downloaded once (see `keras_deepblocks.utils.download.get_file`): checked
    against `file_hash` (SHA-256) when given, written atomically, and a
    damaged cached copy is fetched again. Offline, the error names the URL
    and where to put the file by hand.
    """
    from keras_deepblocks.utils.download import get_file

    fname = url.rsplit("/", 1)[-1]
    return get_file(
        url,
        fname,
        sha256=file_hash,
        cache_subdir=os.path.join("models", "elmo"),
        description="the ELMo weights",
        local_hint=f"pass `weights='/path/to/{fname}'`",
    )
