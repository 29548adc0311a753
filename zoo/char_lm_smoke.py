"""Offline smoke run of the character-aware LM.

`python -m keras_deepblocks.zoo.char_lm_smoke [FILE] [--epochs N] [--encoder NAME]`
"""


def main(argv=None):
    """Trains a small model on a PTB-style file (or the tiny corpus) and prints perplexity."""
    import argparse

    import keras

    from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder
    from keras_deepblocks.zoo.char_language_model import char_aware_language_model
    from keras_deepblocks.metrics.perplexity import Perplexity
    from keras_deepblocks.zoo.text_corpus import build_vocabulary
    from keras_deepblocks.zoo.text_corpus import language_model_arrays
    from keras_deepblocks.zoo.text_corpus import read_sentences
    from keras_deepblocks.zoo.text_corpus import tiny_corpus

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("corpus", nargs="?", help="one tokenized sentence per line")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--encoder", default="kim_small")
    args = parser.parse_args(argv)
    sentences = read_sentences(args.corpus if args.corpus else tiny_corpus())
    vocabulary = build_vocabulary(sentences, max_size=10000)
    encoder = char_cnn_highway_encoder(args.encoder)
    x, y = language_model_arrays(
        sentences, vocabulary, 35, max_characters_per_token=encoder.input_shape[-1]
    )
    model = char_aware_language_model(len(vocabulary), encoder)
    model.compile(
        # Kim et al. use SGD at 1.0 for many epochs; Adam shows progress in a few.
        keras.optimizers.Adam(0.005, global_clipnorm=5.0),
        "sparse_categorical_crossentropy",
        metrics=[Perplexity()],
    )
    print(f"{len(vocabulary)} words, {x.shape[0]} sequences of 35 words")
    print(f"perplexity before training: {model.evaluate(x, y, verbose=0)[1]:.1f}")
    model.fit(x, y, batch_size=20, epochs=args.epochs, verbose=2)
    print(f"perplexity after training: {model.evaluate(x, y, verbose=0)[1]:.1f}")


if __name__ == "__main__":
    main()
