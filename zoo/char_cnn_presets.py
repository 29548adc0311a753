"""Named char-CNN-with-highway encoder configs and the published ELMo weights, as data.

Configs are dicts shaped like ELMo's `options.json["char_cnn"]`, plus
`"projection_dim"` (ELMo takes it from `options["lstm"]`); see
`char_cnn_highway_encoder`.
"""

# Kim et al. 2016, Table 2: 15-dim characters, tanh feature maps, no
# projection. PTB's longest word is 19 characters, + 2 word markers.
_KIM = {
    "embedding": {"dim": 15},
    "activation": "tanh",
    "n_characters": 262,
    "max_characters_per_token": 21,
    "projection_dim": None,
}
# bilm-tf's options.json: a character CNN of 2048 filters of widths 1-7.
_ELMO = {
    "embedding": {"dim": 16},
    "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
    "activation": "relu",
    "n_characters": 262,
    "max_characters_per_token": 50,
}

CHAR_CNN_CONFIGS = {
    # LSTM-Char-Small: widths 1-6 with 25 * width filters, one highway layer.
    "kim_small": {
        **_KIM,
        "filters": [[1, 25], [2, 50], [3, 75], [4, 100], [5, 125], [6, 150]],
        "n_highway": 1,
    },
    # LSTM-Char-Large: widths 1-7 with min(200, 50 * width) filters, two highway layers.
    "kim_large": {
        **_KIM,
        "filters": [[1, 50], [2, 100], [3, 150], [4, 200], [5, 200], [6, 200], [7, 200]],
        "n_highway": 2,
    },
    # The published ELMo models elmo_2x4096_512_2048cnn_2xhighway (and its 5.5B),
    # 2x2048_256_..._1xhighway and 2x1024_128_..._1xhighway: their highway
    # layers and projection.
    "elmo_original": {**_ELMO, "n_highway": 2, "projection_dim": 512},
    # The same model trained on 5.5B tokens (Wikipedia and news crawl), ELMo's best.
    "elmo_original_5.5b": {**_ELMO, "n_highway": 2, "projection_dim": 512},
    "elmo_medium": {**_ELMO, "n_highway": 1, "projection_dim": 256},
    "elmo_small": {**_ELMO, "n_highway": 1, "projection_dim": 128},
}

_ELMO_ROOT = "https://allennlp.s3.amazonaws.com/models/elmo"


def _published(model):
    """The weight and options files AllenNLP publishes for `model`."""
    return {
        "url": f"{_ELMO_ROOT}/{model}/elmo_{model}_weights.hdf5",
        "options_url": f"{_ELMO_ROOT}/{model}/elmo_{model}_options.json",
        "sha256": None,
    }


# bilm-tf HDF5 weight files of the named ELMo configs (their options match
# CHAR_CNN_CONFIGS and ELMO_LSTM_CONFIGS), for `weights="elmo"`. AllenNLP
# publishes no checksums: `sha256` is None, and `weights_hash=` has a
# download verified.
PUBLISHED_ELMO_WEIGHTS = {
    "elmo_original": _published("2x4096_512_2048cnn_2xhighway"),
    "elmo_original_5.5b": _published("2x4096_512_2048cnn_2xhighway_5.5B"),
    "elmo_medium": _published("2x2048_256_2048cnn_1xhighway"),
    "elmo_small": _published("2x1024_128_2048cnn_1xhighway"),
}

# The `"lstm"` part of the published options files: two layers per
# direction, projections clipped like the cells, residual connections.
_ELMO_LSTM = {"n_layers": 2, "cell_clip": 3, "proj_clip": 3, "use_skip_connections": True}
ELMO_LSTM_CONFIGS = {
    "elmo_original": {**_ELMO_LSTM, "dim": 4096, "projection_dim": 512},
    "elmo_original_5.5b": {**_ELMO_LSTM, "dim": 4096, "projection_dim": 512},
    "elmo_medium": {**_ELMO_LSTM, "dim": 2048, "projection_dim": 256},
    "elmo_small": {**_ELMO_LSTM, "dim": 1024, "projection_dim": 128},
}
