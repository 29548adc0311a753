"""Character-CNN-with-highway encoders (Kim et al. 2016; ELMo's character encoder).

Configs are dicts shaped like ELMo's `options.json["char_cnn"]`, plus an
optional `"projection_dim"` (ELMo takes it from `options["lstm"]`); the named
ones are in `char_cnn_presets`. Published ELMo weights (bilm-tf HDF5 files,
read by `converters.bilm`) load into the ELMo configs.
"""

import copy
import json
import os

import keras

from keras_deepblocks.layers import CharCNN
from keras_deepblocks.layers import Highway
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.download import get_file
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn_presets import PUBLISHED_ELMO_WEIGHTS
from keras_deepblocks.zoo.converters.bilm import BilmWeightsError
from keras_deepblocks.zoo.converters.bilm import DamagedBilmFileError
from keras_deepblocks.zoo.converters.bilm import load_bilm_weights

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
    path, downloaded = weights_path(weights, config_name, weights_hash)
    ids = keras.Input((None, config["max_characters_per_token"]), dtype="int32", name="char_ids")
    encoder = keras.Model(
        ids, encode_characters(ids, config), name=name or config_name or "char_cnn_highway_encoder"
    )
    load_weights_file(encoder, path, downloaded)
    return encoder


def encode_characters(ids, config):
    """The encoder's layers applied to `ids`: CharCNN, highway layers, projection."""
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
    return x


def load_weights_file(model, path, downloaded):
    """Loads the bilm-tf file at `path` (if any) into `model`; drops a damaged download."""
    if path is None:
        return
    try:
        load_bilm_weights(model, path)
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


def resolve_config(config, name="config"):
    """A complete, checked copy of a char-CNN config (see `char_cnn_highway_encoder`).

    `name` is how messages call the config: the builder's argument.
    """
    source = ""  # " (from PATH)" in messages about an options file
    if isinstance(config, (str, os.PathLike)):
        if isinstance(config, str) and config in CHAR_CNN_CONFIGS:
            return copy.deepcopy(CHAR_CNN_CONFIGS[config])
        if not os.path.isfile(config):
            names = ", ".join(repr(n) for n in CHAR_CNN_CONFIGS)
            raise ValueError(
                f"`{name}` must be one of {names}, a dict or an options.json path; "
                f"got {config!r}, which is neither a known name nor a file."
            )
        path = os.fspath(config)
        config = read_options(path, name)
        source = f" (from {path})"
    if not isinstance(config, dict):
        raise TypeError(f"`{name}` must be a name, dict or path; got {type(config).__name__}.")
    config = copy.deepcopy(config)
    if "char_cnn" in config:  # a whole ELMo options dict
        lstm = config.get("lstm", {})
        if not isinstance(lstm, dict):
            raise ValueError(f"`{name}['lstm']` must be a dict{source}, received: {lstm!r}.")
        projection_dim = lstm.get("projection_dim")
        config, name = config["char_cnn"], f"{name}['char_cnn']"
        if not isinstance(config, dict):
            raise ValueError(
                f"`{name}` must be a dict with the keys {list(_KEYS)}{source}, "
                f"received: {config!r}."
            )
        config.setdefault("projection_dim", projection_dim)
    missing = [key for key in _KEYS if key not in config]
    if missing:
        raise ValueError(f"`{name}` lacks the key(s) {missing}{source}; it needs {list(_KEYS)}.")
    config.setdefault("max_characters_per_token", 50)
    config.setdefault("projection_dim", None)
    embedding = config["embedding"]
    if not isinstance(embedding, dict) or "dim" not in embedding:
        raise ValueError(
            f"`{name}['embedding']` must be a dict like {{'dim': 16}}{source}, "
            f"received: {embedding!r}."
        )
    if config["n_characters"] == 261:
        # bilm-tf trains with 261 ids and adds id 0 for padding at inference.
        config["n_characters"] = 262
    try:
        validation.positive_int(config["n_characters"], f"{name}['n_characters']")
        validation.positive_int(embedding["dim"], f"{name}['embedding']['dim']")
        validation.positive_int(
            config["max_characters_per_token"], f"{name}['max_characters_per_token']"
        )
        if config["n_highway"] != 0:
            validation.positive_int(config["n_highway"], f"{name}['n_highway']")
        if config["projection_dim"] is not None:
            validation.positive_int(config["projection_dim"], f"{name}['projection_dim']")
        if not isinstance(config["activation"], str):
            raise ValueError(
                f"`{name}['activation']` must be an activation name such as 'relu', "
                f"received: {config['activation']!r}."
            )
    except ValueError as error:
        raise ValueError(f"{error}{source}") from None
    return config


def read_options(path, argument="config"):
    """The dict of an options.json file; errors name the file and the builder's `argument`."""
    try:
        with open(path, encoding="utf-8") as file:
            options = json.load(file)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"`{argument}` file {path} is not UTF-8 text ({error}); expected an ELMo options.json."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"`{argument}` file {path} is not valid JSON ({error}); expected an ELMo options.json."
        ) from None
    if not isinstance(options, dict):
        raise ValueError(
            f"`{argument}` file {path} holds a JSON {type(options).__name__}, not an options "
            "object like ELMo's options.json."
        )
    return options


def weights_path(weights, config_name, weights_hash, argument="config"):
    """`(path, downloaded)` of the weight file `weights` names, `(None, False)` for none.

    `argument` is the builder's name for the config, for the error messages.
    """
    if weights is None:
        return None, False
    if weights == "elmo":
        if config_name not in PUBLISHED_ELMO_WEIGHTS:
            names = ", ".join(repr(n) for n in PUBLISHED_ELMO_WEIGHTS)
            raise ValueError(
                f"`weights='elmo'` needs `{argument}` to be one of {names}; got {config_name!r}."
            )
        published = PUBLISHED_ELMO_WEIGHTS[config_name]
        url, weights_hash = published["url"], weights_hash or published["sha256"]
    elif isinstance(weights, str) and "://" in weights:
        url = weights
    elif isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return weights, False
    else:
        missing = " (no such file)" if isinstance(weights, (str, os.PathLike)) else ""
        raise ValueError(
            "`weights` must be None, 'elmo', a URL or the path of a bilm-tf HDF5 file; "
            f"got {weights!r}{missing}."
        )
    fname = url.rsplit("/", 1)[-1]
    path = get_file(
        url,
        fname,
        sha256=weights_hash,
        cache_subdir=os.path.join("models", "elmo"),
        description="the ELMo weights",
        local_hint=f"pass `weights='/path/to/{fname}'`",
    )
    return path, True
