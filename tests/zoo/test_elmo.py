"""The ELMo biLM and embedder: bilm-tf's activations from its weight files, options, errors.

The reference is `tests/bilm_reference.py`, bilm-tf's graph in NumPy read
straight from the HDF5 file. The layers themselves are tested in tests/layers.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from bilm_reference import NumpyBiLM
from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.layers import char_ids
from keras_deepblocks.utils.states import reset_states
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn_presets import ELMO_LSTM_CONFIGS
from keras_deepblocks.zoo.char_cnn_presets import PUBLISHED_ELMO_WEIGHTS
from keras_deepblocks.zoo.converters.bilm import load_bilm_weights
from keras_deepblocks.zoo.elmo import elmo_bilm
from keras_deepblocks.zoo.elmo import elmo_embedder
from keras_deepblocks.zoo.elmo import resolve_options

REPO = pathlib.Path(__file__).resolve().parents[2]
# bilm-tf's test ran batches of 3 sentences; 4 rows of state leave one unused.
MAX_BATCH_SIZE = 4


@pytest.fixture
def elmo(shared_fixtures):
    """`(options path, weights path, options dict, vocabulary)` of the fixture biLM."""
    pytest.importorskip("h5py")
    folder = shared_fixtures / "elmo"
    options = json.loads((folder / "options.json").read_text())
    words = (folder / "vocab_test.txt").read_text(encoding="utf-8").split()
    return folder / "options.json", folder / "lm_weights.hdf5", options, words


def sentence_batches(words, sizes, seed=0, max_words=12):
    """Batches of sentences of random words and lengths (1 to `max_words`)."""
    rng = np.random.default_rng(seed)
    return [
        [[str(w) for w in rng.choice(words, rng.integers(1, max_words + 1))] for _ in range(n)]
        for n in sizes
    ]


def ids_of(sentences):
    return ops.convert_to_numpy(char_ids(sentences, sentence_boundaries=True))


def layers_of(model, ids):
    return [ops.convert_to_numpy(layer) for layer in model(ids)]


# --- the must-show: stateful activations of the published-format fixture ----


def test_stateful_bilm_gives_bilm_tfs_activations_batch_after_batch(elmo):
    import h5py

    options_path, weights, options, words = elmo
    bilm = elmo_bilm(str(options_path), weights=str(weights), stateful=True, max_batch_size=4)
    # A smaller batch in the middle: row 2 keeps its state for the batch after.
    batches = sentence_batches(words, [3, 3, 2, 3, 3])
    worst = 0.0
    with h5py.File(weights, "r") as h5:
        reference = NumpyBiLM(h5, options, max_batch_size=MAX_BATCH_SIZE)
        for sentences in batches:
            ids = ids_of(sentences)
            ours, expected = layers_of(bilm, ids), reference.layers(ids)
            assert len(ours) == 3
            for k, layer in enumerate(ours):
                assert layer.shape == (len(sentences), ids.shape[1] - 2, 32)
                worst = max(worst, np.abs(layer - expected[:, k]).max())
        # The states carried: a fresh stateless pass over the last batch differs.
        stateless = NumpyBiLM(h5, options, stateful=False).layers(ids)
    assert worst <= 1e-5
    assert np.abs(stateless[:, 2] - expected[:, 2]).max() > 1e-3


def test_stateless_bilm_and_reset_states_start_from_zero(elmo):
    import h5py

    options_path, weights, options, words = elmo
    stateful = elmo_bilm(str(options_path), weights=str(weights), stateful=True)
    stateless = elmo_bilm(str(options_path), weights=str(weights))
    first, second = (ids_of(s) for s in sentence_batches(words, [3, 3], seed=1))
    with h5py.File(weights, "r") as h5:
        expected = NumpyBiLM(h5, options, stateful=False).layers(second)
    for k, layer in enumerate(layers_of(stateless, second)):
        assert np.abs(layer - expected[:, k]).max() <= 1e-5
    layers_of(stateful, first)
    carried = layers_of(stateful, second)[2]
    assert np.abs(carried - expected[:, 2]).max() > 1e-3
    assert reset_states(stateful) == 1
    np.testing.assert_allclose(layers_of(stateful, second)[2], expected[:, 2], atol=1e-5)


def test_outputs_are_masked_words_without_the_sentence_boundaries(elmo):
    options_path, weights, _, _ = elmo
    bilm = elmo_bilm(str(options_path), weights=str(weights))
    outputs = bilm(char_ids([["a", "b", "c"], ["d"], []], sentence_boundaries=True))
    expected_mask = [[True, True, True], [True, False, False], [False, False, False]]
    for layer in outputs:
        np.testing.assert_array_equal(ops.convert_to_numpy(layer._keras_mask), expected_mask)
        values = ops.convert_to_numpy(layer)
        assert np.all(values[1, 1:] == 0) and np.all(values[2] == 0)
        assert np.all(np.abs(values[0]).sum(-1) > 0)
    token_layer = ops.convert_to_numpy(outputs[0])
    np.testing.assert_array_equal(token_layer[..., :16], token_layer[..., 16:])


# --- the published expected values, where they are at hand -------------------


def test_bilm_tfs_published_test_activations(shared_fixtures):
    """bilm-tf's own expected top layer for its 10 batches of 3 sentences, fed in order.

    bilm-tf's and AllenNLP's test fixtures hold them as `lm_embeddings_{k}.hdf5`
    (sentence k of each batch; key `i` for batch i: the top layer's forward
    and backward halves, `(2, words, 16)`) with the sentences in
    `sentences.json` (bilm-tf: `lm_embeddings_sentences.json`), a list of 3
    lists of 10 sentences. Where they are at hand, ours must give them.
    """
    h5py = pytest.importorskip("h5py")
    folder = shared_fixtures / "elmo"
    names = [n for n in ("sentences.json", "lm_embeddings_sentences.json") if (folder / n).exists()]
    files = [folder / f"lm_embeddings_{k}.hdf5" for k in range(3)]
    if not names or not all(f.exists() for f in files):
        pytest.skip("bilm-tf's expected activations (lm_embeddings_*.hdf5) are not in the fixture")
    sentences = json.loads((folder / names[0]).read_text())
    bilm = elmo_bilm(
        str(folder / "options.json"), weights=str(folder / "lm_weights.hdf5"), stateful=True
    )
    expected = []
    for path in files:
        with h5py.File(path, "r") as h5:
            expected.append([np.concatenate(list(h5[str(i)][...]), axis=-1) for i in range(10)])
    for i in range(10):
        batch = [sentences[k][i].split() for k in range(3)]
        top = layers_of(bilm, ids_of(batch))[-1]
        for k, sentence in enumerate(batch):
            assert np.abs(top[k, : len(sentence)] - expected[k][i]).max() <= 1e-5, (i, k)


# --- weights: files, URLs, mismatches -----------------------------------------


def test_mismatched_weights_name_their_hdf5_key(elmo, edited_copy):
    options_path, weights, options, _ = elmo
    cell = "RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell"
    with pytest.raises(ValueError, match=r"'RNN_0/RNN/MultiRNNCell/Cell1/LSTMCell/W_0'.*n_layers"):
        elmo_bilm({**options, "lstm": {**options["lstm"], "n_layers": 1}}, weights=str(weights))
    with pytest.raises(
        ValueError, match=r"'RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0'.*\(32, 256\)"
    ):
        elmo_bilm({**options, "lstm": {**options["lstm"], "dim": 32}}, weights=str(weights))
    bilm = elmo_bilm(options)
    before = [w.copy() for w in bilm.get_weights()]

    def reshaped(key, shape):
        def edit(h5):
            del h5[key]
            h5[key] = np.zeros(shape, "float32")

        return edit

    cases = [
        (lambda h5: h5.__delitem__(f"{cell}/W_P_0"), f"'{cell}/W_P_0'"),
        (lambda h5: h5.__delitem__(f"{cell}/B"), f"'{cell}/B'"),
        (reshaped(f"{cell}/W_0", (31, 256)), rf"'{cell}/W_0'.*\(31, 256\).*\(32, 256\)"),
        (reshaped(f"{cell}/W_P_0", (64, 15)), rf"'{cell}/W_P_0'.*\(64, 15\)"),
        (lambda h5: h5.__delitem__("RNN_1"), "'RNN_1/RNN/MultiRNNCell/Cell0/LSTMCell/W_0'"),
    ]
    for edit, message in cases:
        with pytest.raises(ValueError, match=message):
            load_bilm_weights(bilm, edited_copy(weights, edit))
    for old, new in zip(before, bilm.get_weights()):
        np.testing.assert_array_equal(old, new)  # a failed load assigns nothing


def test_lstm_weights_are_converted_to_keras_gate_order(elmo):
    """TF's `[i, j, f, o]` blocks of W_0 and B become Keras's `[i, f, j, o]`, forget bias + 1."""
    import h5py

    options_path, weights, _, _ = elmo
    bilm = elmo_bilm(str(options_path), weights=str(weights))
    lstm = bilm.get_layer("elmo_lstm")
    assert isinstance(lstm, ElmoLSTM)
    cell = lstm.backward_layers[1].cell
    with h5py.File(weights, "r") as h5:
        group = h5["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell"]
        W, B, P = group["W_0"][...], group["B"][...], group["W_P_0"][...]
    u = 64
    tf_blocks = {name: slice(k * u, (k + 1) * u) for k, name in enumerate("ijfo")}
    keras_blocks = {name: slice(k * u, (k + 1) * u) for k, name in enumerate("ifjo")}
    kernel = ops.convert_to_numpy(cell.kernel)
    recurrent = ops.convert_to_numpy(cell.recurrent_kernel)
    bias = ops.convert_to_numpy(cell.bias)
    for gate in "ijfo":
        np.testing.assert_array_equal(kernel[:, keras_blocks[gate]], W[:16, tf_blocks[gate]])
        np.testing.assert_array_equal(recurrent[:, keras_blocks[gate]], W[16:, tf_blocks[gate]])
        forget = 1.0 if gate == "f" else 0.0
        np.testing.assert_allclose(bias[keras_blocks[gate]], B[tf_blocks[gate]] + forget)
    np.testing.assert_array_equal(ops.convert_to_numpy(cell.projection_kernel), P)


def test_options_and_weights_from_urls_go_through_the_download_helper(elmo, tmp_path, monkeypatch):
    options_path, weights, _, words = elmo
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="hash"):
        elmo_bilm(
            options_path.resolve().as_uri(),
            weights=weights.resolve().as_uri(),
            weights_hash="0" * 64,
        )
    cache = tmp_path / "models" / "elmo"
    assert sorted(p.name for p in cache.iterdir()) == ["options.json"]  # no partial weights
    bilm = elmo_bilm(
        options_path.resolve().as_uri(), weights=weights.resolve().as_uri(), weights_hash=sha256
    )
    assert sorted(p.name for p in cache.iterdir()) == ["lm_weights.hdf5", "options.json"]
    reference = elmo_bilm(str(options_path), weights=str(weights))
    ids = ids_of(sentence_batches(words, [2])[0])
    for ours, expected in zip(layers_of(bilm, ids), layers_of(reference, ids)):
        np.testing.assert_array_equal(ours, expected)


def test_published_models_offline_say_where_to_put_the_file(tmp_path, monkeypatch):
    def offline_get_file(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    url = PUBLISHED_ELMO_WEIGHTS["elmo_small"]["url"]
    fname = url.rsplit("/", 1)[-1]
    with pytest.raises(ConnectionError) as info:
        elmo_bilm("elmo_small", weights="elmo")
    message = str(info.value)
    assert url in message and str(tmp_path / "models" / "elmo" / fname) in message
    assert f"weights='/path/to/{fname}'" in message
    with pytest.raises(ValueError, match=r"`weights='elmo'` needs `options` to be one of"):
        elmo_bilm(
            {"char_cnn": CHAR_CNN_CONFIGS["elmo_small"], "lstm": {"dim": 8, "projection_dim": 4}},
            weights="elmo",
        )


# --- options -----------------------------------------------------------------


def test_named_options_are_the_published_models():
    # name: (published model, lstm dim, projection, highway layers)
    published = {
        "elmo_original": ("2x4096_512_2048cnn_2xhighway", 4096, 512, 2),
        "elmo_original_5.5b": ("2x4096_512_2048cnn_2xhighway_5.5B", 4096, 512, 2),
        "elmo_medium": ("2x2048_256_2048cnn_1xhighway", 2048, 256, 1),
        "elmo_small": ("2x1024_128_2048cnn_1xhighway", 1024, 128, 1),
    }
    assert sorted(ELMO_LSTM_CONFIGS) == sorted(PUBLISHED_ELMO_WEIGHTS) == sorted(published)
    for name, (model, dim, projection, highway) in published.items():
        options = resolve_options(name)
        lstm = options["lstm"]
        assert (lstm["dim"], lstm["projection_dim"], lstm["n_layers"]) == (dim, projection, 2)
        assert (lstm["cell_clip"], lstm["proj_clip"], lstm["use_skip_connections"]) == (3, 3, True)
        assert options["char_cnn"]["n_highway"] == highway
        assert options["char_cnn"]["projection_dim"] == projection
        root = f"https://allennlp.s3.amazonaws.com/models/elmo/{model}/elmo_{model}"
        assert PUBLISHED_ELMO_WEIGHTS[name]["url"] == f"{root}_weights.hdf5"
        assert PUBLISHED_ELMO_WEIGHTS[name]["options_url"] == f"{root}_options.json"


def test_named_model_builds_with_the_published_shapes():
    bilm = elmo_bilm("elmo_small")
    layers = bilm(char_ids([["Hello", "world", "!"]], sentence_boundaries=True))
    assert [tuple(layer.shape) for layer in layers] == [(1, 3, 256)] * 3
    cell = bilm.get_layer("elmo_lstm").forward_layers[0].cell
    assert tuple(cell.kernel.shape) == (128, 4096)
    assert tuple(cell.recurrent_kernel.shape) == (128, 4096)
    assert tuple(cell.projection_kernel.shape) == (1024, 128)


def test_bad_options_raise_clear_errors(tmp_path, load_problems):
    base = {"char_cnn": CHAR_CNN_CONFIGS["elmo_small"], "lstm": {"dim": 8, "projection_dim": 4}}
    cases = [
        ("elmo_huge", ValueError, "`options` must be one of 'elmo_original'"),
        (3, TypeError, "`options` must be a name, dict, path or URL"),
        ({"lstm": {}}, ValueError, "must hold a 'char_cnn' and an 'lstm' dict"),
        ({**base, "char_cnn": {}}, ValueError, r"`options\['char_cnn'\]` lacks the key\(s\)"),
        ({**base, "lstm": {"dim": 8}}, ValueError, r"lacks the key\(s\) \['projection_dim'\]"),
        (
            {**base, "lstm": {"dim": 0, "projection_dim": 4}},
            ValueError,
            r"options\['lstm'\]\['dim'\]",
        ),
        ({**base, "lstm": {**base["lstm"], "cell_clip": -1}}, ValueError, "cell_clip"),
        (
            {**base, "lstm": {**base["lstm"], "use_skip_connections": "yes"}},
            TypeError,
            "use_skip_connections",
        ),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            elmo_bilm(options)
    files = {
        "not_json.json": b'{"lstm": ',
        "list.json": b"[1]",
        "no_lstm.json": b'{"char_cnn": {}}',
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert load_problems([tmp_path / n for n in files], lambda p: elmo_bilm(str(p))) == []
    with pytest.raises(ValueError, match="max_batch_size"):
        elmo_bilm(base, stateful=True, max_batch_size=0)


# --- the embedder --------------------------------------------------------------


def test_embedder_mixes_the_frozen_bilm_layers_and_learns_the_mix(elmo):
    options_path, weights, _, words = elmo
    embedder = elmo_embedder(str(options_path), weights=str(weights), dropout=0.5)
    bilm = elmo_bilm(str(options_path), weights=str(weights))
    mix = embedder.get_layer("scalar_mix")
    assert [w.path for w in embedder.trainable_weights] == [
        "scalar_mix/scalar_weights",
        "scalar_mix/gamma",
    ]
    mix.scalar_weights.assign([0.5, -1.0, 2.0])
    mix.gamma.assign(1.5)
    ids = ids_of(sentence_batches(words, [3], seed=2)[0])
    weights_k = np.exp([0.5, -1.0, 2.0]) / np.exp([0.5, -1.0, 2.0]).sum()
    expected = 1.5 * sum(w * layer for w, layer in zip(weights_k, layers_of(bilm, ids)))
    np.testing.assert_allclose(ops.convert_to_numpy(embedder(ids)), expected, atol=1e-6)

    # A downstream model: the mix and the head learn, the biLM stays as loaded.
    words_in = keras.Input((None, 50), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(embedder(words_in))
    model = keras.Model(words_in, keras.layers.Dense(1)(pooled))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    bilm_weights = [w for w in embedder.weights if not w.path.startswith("scalar_mix/")]
    frozen = [ops.convert_to_numpy(w).copy() for w in bilm_weights]
    before = ops.convert_to_numpy(mix.scalar_weights).copy()
    model.fit(ids, np.array([[1.0], [-1.0], [0.5]]), epochs=2, verbose=0)
    assert np.abs(ops.convert_to_numpy(mix.scalar_weights) - before).max() > 1e-4
    for old, new in zip(frozen, bilm_weights):
        np.testing.assert_array_equal(old, ops.convert_to_numpy(new))


# --- saving: a fresh process loads a stateful biLM with its weights and states ---


LOAD_AND_RUN = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    import keras_deepblocks  # registers the layers

    model = keras.saving.load_model(sys.argv[1])
    ids = np.load(sys.argv[2])
    outputs = [keras.ops.convert_to_numpy(y) for y in model(ids)]
    np.savez(sys.argv[3], *outputs)
    """)


def test_a_saved_stateful_bilm_loads_in_a_fresh_process_with_identical_outputs(elmo, tmp_path):
    options_path, weights, _, words = elmo
    bilm = elmo_bilm(str(options_path), weights=str(weights), stateful=True, max_batch_size=4)
    first, second = (ids_of(s) for s in sentence_batches(words, [3, 3], seed=3))
    layers_of(bilm, first)  # the saved file holds the states this left
    bilm.save(tmp_path / "bilm.keras")
    expected = layers_of(bilm, second)
    np.save(tmp_path / "ids.npy", second)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_RUN,
            str(tmp_path / "bilm.keras"),
            str(tmp_path / "ids.npy"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    loaded = np.load(tmp_path / "out.npz")
    for k, layer in enumerate(expected):
        np.testing.assert_array_equal(loaded[f"arr_{k}"], layer)
