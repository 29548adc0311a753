"""Word-level language-model data from PTB-style text (one tokenized sentence per line).

Reads sentences, builds a vocabulary and cuts the text into the character-id
inputs and next-word targets of a character-aware language model (see
`keras_deepblocks.zoo.char_aware_language_model`):

>>> sentences = read_sentences(["the cat sat .", "", "the dog sat ."])
>>> build_vocabulary(sentences)
['<unk>', '</s>', '.', 'sat', 'the', 'cat', 'dog']
>>> x, y = language_model_arrays(sentences, build_vocabulary(sentences), sequence_length=4)
>>> x.shape, y.tolist()
((2, 4, 50), [[5, 3, 2, 1], [4, 6, 3, 2]])
"""

import collections
import os

import keras
import numpy as np

from keras_deepblocks.layers import char_ids
from keras_deepblocks.utils import validation

UNKNOWN = "<unk>"
END_OF_SENTENCE = "</s>"


def read_sentences(source):
    """Sentences as token lists, from a file path or an iterable of lines.

    Tokens are separated by whitespace; blank lines are skipped.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as file:
            return [line.split() for line in file if line.strip()]
    return [line.split() for line in source if line.strip()]


def build_vocabulary(sentences, max_size=None):
    """Word list: `"<unk>"`, `"</s>"`, then words by falling count (ties alphabetical).

    Args:
        sentences: Token lists, as from `read_sentences`.
        max_size: Keep at most this many words (the two specials included).
    """
    counts = collections.Counter(token for sentence in sentences for token in sentence)
    for special in (UNKNOWN, END_OF_SENTENCE):
        counts.pop(special, None)
    words = sorted(counts, key=lambda word: (-counts[word], word))
    vocabulary = [UNKNOWN, END_OF_SENTENCE] + words
    if max_size is not None:
        vocabulary = vocabulary[: max(validation.positive_int(max_size, "max_size"), 2)]
    return vocabulary


def language_model_arrays(
    sentences,
    vocabulary,
    sequence_length=35,
    scheme="elmo",
    max_characters_per_token=50,
):
    """Inputs and next-word targets for `char_aware_language_model`.

    The sentences are joined into one stream, each followed by `"</s>"`, and
    cut into sequences of `sequence_length` words (the remainder is dropped),
    as in Kim et al. 2016. Inputs keep the spelling of every word, also of
    words missing from `vocabulary`; targets map those to `"<unk>"`.

    Returns:
        `(char_ids, targets)`: int32 arrays of shapes
        `(sequences, sequence_length, max_characters_per_token)` and
        `(sequences, sequence_length)`.
    """
    validation.positive_int(sequence_length, "sequence_length")
    stream = [token for sentence in sentences for token in (*sentence, END_OF_SENTENCE)]
    num_sequences = (len(stream) - 1) // sequence_length
    if num_sequences < 1:
        raise ValueError(
            f"The corpus has {len(stream)} tokens, too few for one sequence of "
            f"`sequence_length`={sequence_length} plus its next-word target."
        )
    used = num_sequences * sequence_length
    index = {word: i for i, word in enumerate(vocabulary)}
    unknown = index[UNKNOWN] if UNKNOWN in index else None
    missing = [w for w in set(stream[1 : used + 1]) if w not in index]
    if missing and unknown is None:
        raise ValueError(f"`vocabulary` has no {UNKNOWN!r} for words such as {missing[:3]}.")
    targets = np.array([index.get(w, unknown) for w in stream[1 : used + 1]], "int32")
    distinct, inverse = np.unique(np.array(stream[:used], dtype=object), return_inverse=True)
    spelled = keras.ops.convert_to_numpy(char_ids(list(distinct), scheme, max_characters_per_token))
    inputs = spelled[inverse]
    shape = (num_sequences, sequence_length)
    return inputs.reshape(*shape, max_characters_per_token), targets.reshape(shape)


def tiny_corpus(num_sentences=300, seed=0):
    """A generated corpus of simple sentences, for tests and offline smoke runs.

    Returns:
        Lines of space-separated tokens, like a PTB-style file.
    """
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "she", "he", "the children"]
    verbs = ["sees", "likes", "finds", "chased", "wants", "paints"]
    objects = ["the ball", "a red apple", "the big house", "some water", "a small bird"]
    endings = ["", "today", "in the park", "again", "every morning"]
    lines = []
    for _ in range(validation.positive_int(num_sentences, "num_sentences")):
        parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(endings)]
        lines.append(" ".join(part for part in parts if part) + " .")
    return lines
