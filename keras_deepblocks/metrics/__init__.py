from keras_deepblocks.metrics.perplexity import Perplexity

__all__ = ["Perplexity"]
