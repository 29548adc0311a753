"""Diagnostics of very deep networks: what their blocks contribute once trained.

`lesion_study` deletes or shuffles the residual blocks of a trained network
and measures its accuracy (Veit et al. 2016); `plot_lesion_study` draws it.
"""

from keras_deepblocks.diagnostics.lesion import lesion_study
from keras_deepblocks.diagnostics.lesion import plot_lesion_study

__all__ = ["lesion_study", "plot_lesion_study"]
