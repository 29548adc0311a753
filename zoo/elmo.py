"""ELMo (Peters et al. 2018): the bidirectional language model and its mixed embeddings.

`elmo_bilm` is the whole biLM of bilm-tf and AllenNLP (character encoder,
forward and backward LSTMs) and loads their published HDF5 weight files;
`elmo_embedder` adds the learned `ElmoScalarMix` that downstream models use.
Options are dicts shaped like bilm-tf's `options.json` (`"char_cnn"` and
`"lstm"`); the published ones are named in `char_cnn_presets`.
"""

import copy
import os

import keras

from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.layers import ElmoScalarMix
from keras_deepblocks.layers import RemoveSentenceBoundaries
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.download import get_file
from keras_deepblocks.zoo.char_cnn import encode_characters
from keras_deepblocks.zoo.char_cnn import load_weights_file
from keras_deepblocks.zoo.char_cnn import read_options
from keras_deepblocks.zoo.char_cnn import resolve_config
from keras_deepblocks.zoo.char_cnn import weights_path
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn_presets import ELMO_LSTM_CONFIGS

_LSTM_KEYS = ("dim", "projection_dim")


def elmo_bilm(
    options, weights=None, stateful=False, max_batch_size=128, weights_hash=None, name=None
):
    """ELMo's biLM: character encoder, then forward and backward LSTM language models.

    Input: character ids `(batch, tokens, max_characters_per_token)` from
    `char_ids(sentences, sentence_boundaries=True)` (each sentence between
    `<S>` and `</S>`, padded with `""`). Output: the list of the biLM's
    layers, `[token layer, lstm layer 1, ..., lstm layer n]`, each
    `(batch, words, 2 * projection_dim)` with the forward half first. The
    token layer is the encoder output repeated for both directions. As in
    AllenNLP, the sentence boundaries are removed (`words = tokens - 2`) and
    padding is zero and masked.

    Args:
        options: A name in `ELMO_LSTM_CONFIGS` (`"elmo_original"`,
            `"elmo_medium"`, `"elmo_small"`: the published models); a dict
            like bilm-tf's `options.json` (`"char_cnn"` and `"lstm"` with
            `dim`, `projection_dim`, `n_layers`, `cell_clip`, `proj_clip`,
            `use_skip_connections`); or the path or URL of an `options.json`.
        weights: `None` (random initialization); `"elmo"` for the published
            weights of a named model (downloaded once into
            `$KERAS_HOME/models/elmo`); or the path or URL of a bilm-tf
            HDF5 weight file matching `options`. A missing or misshapen
            array raises a `ValueError` naming its HDF5 key.
        stateful: Carry each row's LSTM states from one call to the next,
            as bilm-tf and AllenNLP do (see `ElmoLSTM`); reset them with
            `keras_deepblocks.utils.reset_states(model)`. Defaults to
            `False`.
        max_batch_size: Rows of state kept when `stateful`. Defaults to
            `128`.
        weights_hash: Expected SHA-256 (or its first 8+ hex digits) of
            downloaded weights.
        name: Model name. Defaults to the options name or `"elmo_bilm"`.

    Returns:
        A functional `keras.Model` with layers `char_cnn`, `highway_i`,
        `projection`, `elmo_lstm` (`ElmoLSTM`), `token_layer` and
        `remove_sentence_boundaries`.

    Example:

    >>> from keras_deepblocks.layers import char_ids
    >>> bilm = elmo_bilm("elmo_small")
    >>> ids = char_ids([["Hello", "world", "!"]], sentence_boundaries=True)
    >>> [tuple(layer.shape) for layer in bilm(ids)]
    [(1, 3, 256), (1, 3, 256), (1, 3, 256)]
    """
    options_name = options if isinstance(options, str) and options in ELMO_LSTM_CONFIGS else None
    options = resolve_options(options)
    path, downloaded = weights_path(weights, options_name, weights_hash, argument="options")
    char_cnn, lstm = options["char_cnn"], options["lstm"]
    ids = keras.Input((None, char_cnn["max_characters_per_token"]), dtype="int32", name="char_ids")
    tokens = encode_characters(ids, char_cnn)  # projected to lstm["projection_dim"]
    lstm_layers = ElmoLSTM(
        lstm["dim"],
        projection_dim=lstm["projection_dim"] if lstm["projection_dim"] < lstm["dim"] else None,
        num_layers=lstm["n_layers"],
        cell_clip=lstm["cell_clip"],
        projection_clip=lstm["proj_clip"],
        skip_connections=lstm["use_skip_connections"],
        stateful=stateful,
        max_batch_size=max_batch_size,
        name="elmo_lstm",
    )(tokens)
    token_layer = keras.layers.Concatenate(name="token_layer")([tokens, tokens])
    remove_boundaries = RemoveSentenceBoundaries(name="remove_sentence_boundaries")
    outputs = [remove_boundaries(layer) for layer in [token_layer, *lstm_layers]]
    bilm = keras.Model(ids, outputs, name=name or options_name or "elmo_bilm")
    load_weights_file(bilm, path, downloaded)
    return bilm


def elmo_embedder(
    options,
    weights=None,
    layer_norm=False,
    dropout=0.0,
    trainable_bilm=False,
    stateful=False,
    max_batch_size=128,
    weights_hash=None,
    name=None,
):
    """ELMo vectors for a downstream model: the biLM's layers mixed by `ElmoScalarMix`.

    `gamma * sum_k softmax(w)_k * layer_k` (Peters et al. 2018, eq. 1), with
    the mix weights and `gamma` learned by the task and the biLM frozen (as
    in the paper and AllenNLP's `Elmo(requires_grad=False)`).

    Args:
        options, weights, stateful, max_batch_size, weights_hash: As in
            `elmo_bilm`.
        layer_norm: Normalize each layer before mixing. Defaults to `False`.
        dropout: Dropout rate on the mixed vectors while training (AllenNLP
            uses 0.5). Defaults to `0.0`.
        trainable_bilm: Let the task fine-tune the biLM too. Defaults to
            `False`.
        name: Model name. Defaults to `"elmo_embedder"`.

    Returns:
        A functional `keras.Model` from character ids (as for `elmo_bilm`) to
        `(batch, words, 2 * projection_dim)`, masked after each sentence.

    Example:

    >>> from keras_deepblocks.layers import char_ids
    >>> embedder = elmo_embedder("elmo_small")
    >>> tuple(embedder(char_ids([["Hello", "world"]], sentence_boundaries=True)).shape)
    (1, 2, 256)
    """
    dropout = validation.float_in_range(dropout, "dropout", 0.0, 1.0, high_open=True)
    trainable_bilm = validation.boolean(trainable_bilm, "trainable_bilm")
    bilm = elmo_bilm(options, weights, stateful, max_batch_size, weights_hash)
    for layer in bilm.layers:
        layer.trainable = trainable_bilm
    mixed = ElmoScalarMix(layer_norm=layer_norm, name="scalar_mix")(bilm.outputs)
    if dropout:
        mixed = keras.layers.Dropout(dropout, name="dropout")(mixed)
    return keras.Model(bilm.input, mixed, name=name or "elmo_embedder")


def resolve_options(options):
    """A complete, checked copy of ELMo options (see `elmo_bilm`)."""
    source = ""
    if isinstance(options, str) and options in ELMO_LSTM_CONFIGS:
        return {
            "char_cnn": copy.deepcopy(CHAR_CNN_CONFIGS[options]),
            "lstm": dict(ELMO_LSTM_CONFIGS[options]),
        }
    if isinstance(options, str) and "://" in options:
        options = get_file(
            options,
            options.rsplit("/", 1)[-1],
            cache_subdir=os.path.join("models", "elmo"),
            description="the ELMo options",
            local_hint="pass the path of a local options.json",
        )
    if isinstance(options, (str, os.PathLike)):
        if not os.path.isfile(options):
            names = ", ".join(repr(n) for n in ELMO_LSTM_CONFIGS)
            raise ValueError(
                f"`options` must be one of {names}, a dict, or the path or URL of an "
                f"options.json; got {options!r}, which is neither a known name nor a file."
            )
        source = f" (from {os.fspath(options)})"
        options = read_options(os.fspath(options), "options")
    if not isinstance(options, dict):
        raise TypeError(
            f"`options` must be a name, dict, path or URL; got {type(options).__name__}."
        )
    if not isinstance(options.get("lstm"), dict) or "char_cnn" not in options:
        raise ValueError(
            "`options` must hold a 'char_cnn' and an 'lstm' dict, like bilm-tf's "
            f"options.json{source}; received the keys {sorted(options)}."
        )
    char_cnn = resolve_config(options, "options")
    return {"char_cnn": char_cnn, "lstm": _resolve_lstm(options["lstm"], source)}


def _resolve_lstm(lstm, source):
    missing = [key for key in _LSTM_KEYS if key not in lstm]
    if missing:
        raise ValueError(
            f"`options['lstm']` lacks the key(s) {missing}{source}; it needs {list(_LSTM_KEYS)}."
        )
    lstm = {
        "n_layers": 1,  # bilm-tf's defaults
        "cell_clip": None,
        "proj_clip": None,
        "use_skip_connections": False,
        **lstm,
    }
    try:
        for key in ("dim", "projection_dim", "n_layers"):
            validation.positive_int(lstm[key], f"options['lstm']['{key}']")
        for key in ("cell_clip", "proj_clip"):
            if lstm[key] is not None:
                validation.float_in_range(
                    lstm[key], f"options['lstm']['{key}']", 0.0, low_open=True
                )
        validation.boolean(lstm["use_skip_connections"], "options['lstm']['use_skip_connections']")
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error}{source}") from None
    return lstm
