"""Figures: one way to check an image path and to write a Matplotlib figure atomically."""

import os

from keras_deepblocks.utils.files import atomic_path


def image_formats():
    """The file extensions Matplotlib's Agg canvas writes (`png`, `pdf`, `svg`, ...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return sorted(FigureCanvasAgg.get_supported_filetypes())


def check_image_path(path, argument):
    """Raises a `ValueError` naming `argument` unless `path` ends in an image extension."""
    formats = image_formats()
    extension = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if extension not in formats:
        raise ValueError(
            f"`{argument}` must end in an image extension "
            f"({', '.join('.' + f for f in formats)}), received: {os.fspath(path)!r}."
        )
    return os.fspath(path)


def new_figure(*args, **kwargs):
    """`matplotlib.pyplot.subplots` on the Agg canvas: no display needed, in any process."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(figure, path, dpi=120):
    """Writes `figure` to `path` (format from its extension) in one rename, then closes it."""
    import matplotlib.pyplot as plt

    path = check_image_path(path, "path")
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi, format=extension, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path
