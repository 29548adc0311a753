"""Character-CNN encoders: named configs, bilm-tf weights (files, URLs, damage) and masking.

`CharCNN` and `CharacterIds` as layers are tested in tests/layers.
"""

import hashlib
import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder
from keras_deepblocks.zoo.char_cnn import resolve_config
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.converters.bilm import load_bilm_weights
from keras_deepblocks.layers.character_ids import char_ids
from bilm_reference import numpy_elmo_encoder

# The fixture's char_cnn options (its projection comes from options["lstm"]).
# Tests build encoders of these shapes only: JAX compiles each new shape.
FIXTURE_CONFIG = {
    "embedding": {"dim": 4},
    "filters": [[1, 4], [2, 8], [3, 16], [4, 32], [5, 64]],
    "n_highway": 2,
    "activation": "relu",
    "n_characters": 262,
    "max_characters_per_token": 50,
    "projection_dim": 16,
}


def elmo_fixture(shared_fixtures):
    folder = shared_fixtures / "elmo"
    words = (folder / "vocab_test.txt").read_text(encoding="utf-8").split()
    return folder / "options.json", folder / "lm_weights.hdf5", words


# --- encoder with the published-format fixture ------------------------------


def test_fixture_encoder_matches_numpy_reference(shared_fixtures):
    h5py = pytest.importorskip("h5py")
    options, weights, words = elmo_fixture(shared_fixtures)
    encoder = char_cnn_highway_encoder(str(options), weights=str(weights))
    ids = ops.convert_to_numpy(char_ids([words]))  # checked in tests/layers/test_character_ids.py
    embedded = ops.convert_to_numpy(encoder(ids))[0]
    with h5py.File(weights, "r") as h5:
        expected = numpy_elmo_encoder(ids[0], h5)
    assert embedded.shape == (len(words), 16)
    assert np.abs(embedded - expected).max() <= 1e-5


def test_fixture_options_dict_and_round_trip(shared_fixtures, tmp_path):
    options, weights, words = elmo_fixture(shared_fixtures)
    assert resolve_config(str(options)) == FIXTURE_CONFIG  # projection_dim from options["lstm"]
    config = json.loads(options.read_text())["char_cnn"]
    config["projection_dim"] = 16
    encoder = char_cnn_highway_encoder(config, weights=str(weights))
    ids = char_ids([words[:7], words[7:10]])
    before = ops.convert_to_numpy(encoder(ids))
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(ops.convert_to_numpy(restored(ids)), before)


def test_fixture_mismatches_name_the_key(shared_fixtures, edited_copy):
    _, weights, _ = elmo_fixture(shared_fixtures)
    with pytest.raises(ValueError, match="CNN_high_1/W_carry"):
        char_cnn_highway_encoder({**FIXTURE_CONFIG, "n_highway": 1}, weights=str(weights))
    with pytest.raises(ValueError, match="CNN_proj/W_proj"):
        char_cnn_highway_encoder({**FIXTURE_CONFIG, "projection_dim": None}, weights=str(weights))
    encoder = char_cnn_highway_encoder(FIXTURE_CONFIG)
    before = [w.copy() for w in encoder.get_weights()]

    def narrower_filter(h5):
        del h5["CNN/W_cnn_4"]
        h5["CNN/W_cnn_4"] = np.zeros((1, 5, 4, 63), "float32")

    def without(key):
        return lambda h5: h5.__delitem__(key)

    cases = [
        (narrower_filter, r"'CNN/W_cnn_4'.*\(1, 5, 4, 63\).*\(1, 5, 4, 64\)"),
        (without("char_embed"), "'char_embed'"),
        (without("CNN_high_1/b_transform"), "'CNN_high_1/b_transform'"),
        (lambda h5: h5.copy("CNN/W_cnn_4", "CNN/W_cnn_5"), "'CNN/W_cnn_5'.*filters"),
    ]
    for edit, message in cases:
        with pytest.raises(ValueError, match=message):
            load_bilm_weights(encoder, edited_copy(weights, edit))
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)  # a failed load assigns nothing


def test_weights_from_url_check_their_hash(shared_fixtures, tmp_path, monkeypatch):
    options, weights, words = elmo_fixture(shared_fixtures)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    url = weights.resolve().as_uri()
    cached = tmp_path / "models" / "elmo" / weights.name
    with pytest.raises(ValueError, match="hash"):
        char_cnn_highway_encoder(str(options), weights=url, weights_hash="0" * 64)
    assert not cached.exists()
    encoder = char_cnn_highway_encoder(str(options), weights=url, weights_hash=sha256)
    assert cached.exists()
    reference = char_cnn_highway_encoder(str(options), weights=str(weights))
    ids = char_ids([words[:4]])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(encoder(ids)), ops.convert_to_numpy(reference(ids))
    )


def test_published_weights_offline_say_where_to_put_the_file(tmp_path, monkeypatch):
    requests = []

    def offline_get_file(fname, origin, **kwargs):
        # What keras.utils.get_file raises for a URLError (here: no DNS).
        requests.append(origin)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    stem = "2x1024_128_2048cnn_1xhighway"
    fname = f"elmo_{stem}_weights.hdf5"
    url = f"https://allennlp.s3.amazonaws.com/models/elmo/{stem}/{fname}"
    with pytest.raises(ConnectionError) as info:
        char_cnn_highway_encoder("elmo_small", weights="elmo", weights_hash="ab" * 32)
    assert requests == [url]
    assert str(info.value) == (
        f"Could not download the ELMo weights from {url}: [Errno -3] name resolution. Without "
        "network access, download the file on another machine and put it at "
        f"{tmp_path / 'models' / 'elmo' / fname}, or pass `weights='/path/to/{fname}'`."
    )
    assert [p.name for p in (tmp_path / "models" / "elmo").iterdir()] == []


def write_bilm_weights(path, seed=0):
    """A bilm-tf weight file of the FIXTURE_CONFIG shapes, with random arrays."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(seed)
    width = sum(n for _, n in FIXTURE_CONFIG["filters"])
    arrays = {"char_embed": (261, 4), "CNN_proj/W_proj": (width, 16), "CNN_proj/b_proj": (16,)}
    for i, (w, n) in enumerate(FIXTURE_CONFIG["filters"]):
        arrays.update({f"CNN/W_cnn_{i}": (1, w, 4, n), f"CNN/b_cnn_{i}": (n,)})
    for k in range(FIXTURE_CONFIG["n_highway"]):
        for part in ("carry", "transform"):
            arrays[f"CNN_high_{k}/W_{part}"] = (width, width)
            arrays[f"CNN_high_{k}/b_{part}"] = (width,)
    with h5py.File(path, "w") as h5:
        for key, shape in arrays.items():
            h5[key] = rng.normal(size=shape).astype("float32") * 0.1
    return path


def test_damaged_options_and_weight_files_name_their_path(tmp_path, load_problems):
    good = write_bilm_weights(tmp_path / "good.hdf5")
    files = {
        "not_json.json": b'{"char_cnn": ',
        "latin1.json": '{"char_cnn": {"activation": "relu\u00e9"}}'.encode("latin-1"),
        "list.json": b"[1, 2]",
        "char_cnn_none.json": json.dumps({"char_cnn": None}).encode(),
        "lstm_none.json": json.dumps({"char_cnn": FIXTURE_CONFIG, "lstm": None}).encode(),
        "embedding_4.json": json.dumps({"char_cnn": {**FIXTURE_CONFIG, "embedding": 4}}).encode(),
        "empty.hdf5": b"",
        "garbage.hdf5": b"not an HDF5 file\n" * 100,
        "truncated.hdf5": good.read_bytes()[: good.stat().st_size // 2],
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)

    def load(path):
        if path.suffix == ".json":
            char_cnn_highway_encoder(str(path))
        else:
            char_cnn_highway_encoder(FIXTURE_CONFIG, weights=str(path))

    assert load_problems([tmp_path / name for name in files], load) == []
    for config, message in (
        ({**FIXTURE_CONFIG, "embedding": 4}, r"`config\['embedding'\]` must be a dict"),
        ({"char_cnn": None}, r"`config\['char_cnn'\]` must be a dict"),
        ({**FIXTURE_CONFIG, "activation": None}, r"`config\['activation'\]`"),
    ):
        with pytest.raises(ValueError, match=message):
            char_cnn_highway_encoder(config)


def test_a_damaged_download_is_removed_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    server = tmp_path / "server"
    server.mkdir()
    served = server / "weights.hdf5"
    served.write_bytes(b"<html>503 Service Unavailable</html>")  # what a proxy may answer
    cached = tmp_path / "keras_home" / "models" / "elmo" / "weights.hdf5"
    with pytest.raises(ValueError, match=f"{cached}.*removed: the next call downloads it again"):
        char_cnn_highway_encoder(FIXTURE_CONFIG, weights=served.as_uri())
    assert not cached.exists()
    write_bilm_weights(served)
    encoder = char_cnn_highway_encoder(FIXTURE_CONFIG, weights=served.as_uri())
    reference = char_cnn_highway_encoder(FIXTURE_CONFIG, weights=str(served))
    for got, expected in zip(encoder.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)


# --- configs and masking ----------------------------------------


def test_named_configs_hold_the_published_sizes():
    elmo = {name: CHAR_CNN_CONFIGS[f"elmo_{name}"] for name in ("original", "medium", "small")}
    for config in elmo.values():
        assert sum(n for _, n in config["filters"]) == 2048
        assert config["embedding"]["dim"] == 16 and config["max_characters_per_token"] == 50
    assert [elmo[n]["n_highway"] for n in elmo] == [2, 1, 1]
    assert [elmo[n]["projection_dim"] for n in elmo] == [512, 256, 128]
    assert sum(n for _, n in CHAR_CNN_CONFIGS["kim_small"]["filters"]) == 525
    assert sum(n for _, n in CHAR_CNN_CONFIGS["kim_large"]["filters"]) == 1100
    # Published training options say 261 characters; inference adds padding id 0.
    assert resolve_config({**FIXTURE_CONFIG, "n_characters": 261})["n_characters"] == 262
    assert resolve_config({**FIXTURE_CONFIG, "n_characters": 257})["n_characters"] == 257


def test_bad_configs_and_weights_raise():
    with pytest.raises(ValueError, match="kim_small"):
        char_cnn_highway_encoder("kim_medium")
    with pytest.raises(ValueError, match="n_highway"):
        char_cnn_highway_encoder({"embedding": {"dim": 4}, "filters": [[1, 2]]})
    with pytest.raises(ValueError, match="filters"):
        char_cnn_highway_encoder({**FIXTURE_CONFIG, "filters": [[1, 0]]})
    with pytest.raises(ValueError, match="elmo_original"):
        char_cnn_highway_encoder(FIXTURE_CONFIG, weights="elmo")
    with pytest.raises(ValueError, match="weights"):
        char_cnn_highway_encoder(FIXTURE_CONFIG, weights="no/such/file.hdf5")


def test_padding_tokens_are_masked_for_the_next_layer():
    encoder = char_cnn_highway_encoder(FIXTURE_CONFIG)
    ids = keras.Input((None, 50), dtype="int32")
    # Averaging skips masked steps: padding tokens must not change the mean.
    model = keras.Model(ids, keras.layers.GlobalAveragePooling1D()(encoder(ids)))
    short = ops.convert_to_numpy(char_ids([["ab", "cde"]]))
    padded = ops.convert_to_numpy(char_ids([["ab", "cde", "", ""]]))
    np.testing.assert_allclose(
        ops.convert_to_numpy(model(padded)), ops.convert_to_numpy(model(short)), atol=1e-6
    )
    mask = encoder.get_layer("char_cnn").compute_mask(padded)
    np.testing.assert_array_equal(ops.convert_to_numpy(mask), [[True, True, False, False]])
