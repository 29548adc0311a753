"""`CharCNN` as a Keras layer; its encoders and published weights are `tests/zoo/test_char_cnn.py`'s."""

import numpy as np
import pytest

from keras_deepblocks.layers import CharCNN
from layer_testing import run_layer_test


def test_layer_contract():
    ids = np.random.default_rng(0).integers(1, 30, size=(2, 4, 7)).astype("int32")
    ids[0, 2:] = 0  # padding tokens
    run_layer_test(
        CharCNN,
        {
            "filters": [[1, 3], [2, 4], [3, 5]],
            "embedding_dim": 4,
            "num_characters": 30,
            "activation": "tanh",
            "embeddings_initializer": "normal",
        },
        input_shape=ids.shape,
        expected_output_shape=(2, 4, 12),
        input_data=ids,
        input_dtype="int32",
        expected_num_trainable_weights=1 + 3 * 2,  # the embedding, a kernel and bias per width
        expected_num_non_trainable_weights=0,
    )


def test_too_few_characters_for_the_widest_filter_is_a_clear_error():
    with pytest.raises(ValueError, match=r"must have at least 3 characters per token.*\(2, 4, 2\)"):
        CharCNN([[1, 3], [3, 4]]).build((2, 4, 2))
    with pytest.raises(ValueError, match="at least 3 characters"):  # the first call builds it
        CharCNN([[3, 2]])(np.ones((1, 2, 2), "int32"))
