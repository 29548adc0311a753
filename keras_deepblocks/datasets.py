"""Image classification data for training and evaluating zoo models.

`load("digits")` (the default) needs no download: scikit-learn's 8x8
handwritten digits, resized as asked (`load_digits` gives them as plain
arrays scaled to `[0, 1]`). `cifar10`, `cifar100`, `svhn_cropped`
and `mnist` come from tensorflow-datasets, which downloads them once into its
data directory (offline, copy a prepared dataset folder there; the error says
how). Every dataset comes back as `tf.data` pipelines with the CIFAR recipe of
the ResNet paper: zero padding and random crops back to the image size plus
(CIFAR only) horizontal flips for training, and per-channel normalization with
the training split's mean and standard deviation, either in the pipeline
(`normalize=True`) or in the model (`normalization_layer`), so that a saved
model takes raw pixels. Pixels are on the `[0, 255]` scale. The pipelines work
with `model.fit` on every Keras backend.
"""

import dataclasses
import os
import pathlib
import shutil
import socket
import urllib.parse
import urllib.request

import numpy as np

from keras_deepblocks.utils import validation

TFDS_DATASETS = ("cifar10", "cifar100", "svhn_cropped", "mnist")
DATASETS = ("digits",) + TFDS_DATASETS
# Flipping changes what a digit means; only natural images get flips.
FLIPPED = ("cifar10", "cifar100")
CIFAR_PADDING = 4
CIFAR_SIZE = 32


@dataclasses.dataclass
class ImageData:
    """Batched `tf.data` pipelines and what a model needs to know about them.

    Attributes:
        train: Shuffled, augmented training batches of `(image, label)`.
        test: Test batches, preprocessed the same way, in a fixed order.
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of labels.
        train_examples: Size of the training split.
        mean: Per-channel mean of the training images.
        std: Per-channel standard deviation of the training images.
        normalized: Whether the pipelines already normalize with them.
        validation: Batches held out from the training split, or `None`.
    """

    train: object
    test: object
    input_shape: tuple
    num_classes: int
    train_examples: int
    mean: np.ndarray
    std: np.ndarray
    normalized: bool
    validation: object = None

    def normalization_layer(self, name="normalization"):
        """A `keras.layers.Normalization` with this data's per-channel statistics."""
        import keras

        return keras.layers.Normalization(
            axis=-1, mean=self.mean, variance=np.square(self.std), name=name
        )


def load(
    name="digits",
    batch_size=128,
    image_size=None,
    augment=True,
    normalize=True,
    validation_fraction=0.0,
    data_dir=None,
    download=True,
    drop_remainder=False,
    seed=0,
):
    """Training and test pipelines of one dataset.

    Args:
        name: One of `"digits"`, `"cifar10"`, `"cifar100"`, `"svhn_cropped"`,
            `"mnist"`. Defaults to `"digits"` (offline).
        batch_size: Examples per batch. Defaults to `128`.
        image_size: Resize images to `image_size x image_size` (e.g. `32`
            for the 8x8 digits in a CIFAR network). `None` keeps the native
            size.
        augment: Pad and randomly crop training images (4 pixels at 32x32,
            scaled with the size), and flip CIFAR images. Defaults to `True`.
        normalize: Normalize in the pipeline. With `False`, images stay raw
            pixels and `ImageData.normalization_layer()` gives the layer to
            put at the start of the model. Defaults to `True`.
        validation_fraction: Fraction of the training split held out (from
            its end) as `ImageData.validation`, e.g. for hyperparameter search.
            Defaults to `0.0` (none).
        data_dir: tensorflow-datasets data directory, the folder that holds
            e.g. `cifar10/3.0.2/`. Defaults to tensorflow-datasets' own
            (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        download: Whether tensorflow-datasets may download and prepare a
            dataset missing from `data_dir`. Without a connection this raises
            a `ConnectionError` at once, and `download=False` a
            `FileNotFoundError`; both say how to get the data.
        drop_remainder: Make every batch full, as data parallel training
            needs: drop the last, smaller training batch, and pad the test and
            validation data with examples of weight 0 (the pipelines then yield
            `(image, label, weight)`, which Keras's metrics respect).
        seed: Seed of the digits split and the training shuffle.

    Returns:
        An `ImageData`.
    """
    (x_train, y_train), (x_test, y_test), num_classes = load_arrays(
        name, image_size=image_size, data_dir=data_dir, download=download, seed=seed
    )
    batch_size = validation.positive_int(batch_size, "batch_size")
    validation_data = None
    if validation_fraction:
        if not 0 < validation_fraction < 1:
            raise ValueError(
                f"`validation_fraction` must be in [0, 1), got {validation_fraction!r}."
            )
        split = len(x_train) - max(1, round(len(x_train) * validation_fraction))
        validation_data = (x_train[split:], y_train[split:])
        x_train, y_train = x_train[:split], y_train[:split]
    mean, std = channel_stats(x_train)
    stats = (mean, std) if normalize else (None, None)
    pad = max(1, round(CIFAR_PADDING * x_train.shape[1] / CIFAR_SIZE)) if augment else 0
    flip = augment and name in FLIPPED
    train = pipeline(
        x_train,
        y_train,
        batch_size,
        *stats,
        shuffle=True,
        pad=pad,
        flip=flip,
        drop_remainder=drop_remainder,
        seed=seed,
    )
    test = pipeline(x_test, y_test, batch_size, *stats, pad_last_batch=drop_remainder)
    if validation_data is not None:
        validation_data = pipeline(
            *validation_data, batch_size, *stats, pad_last_batch=drop_remainder
        )
    return ImageData(
        train,
        test,
        x_train.shape[1:],
        num_classes,
        len(x_train),
        mean,
        std,
        normalize,
        validation_data,
    )


def load_arrays(name="digits", image_size=None, data_dir=None, download=True, seed=0):
    """A dataset as NumPy arrays: `((x_train, y_train), (x_test, y_test), num_classes)`.

    Images are `(n, height, width, channels)` pixels in `[0, 255]`: uint8 as
    tensorflow-datasets stores them (a quarter of the memory), float32 for
    the digits and resized images. Labels are int32.
    """
    validation.one_of(name, "name", DATASETS)
    if image_size is not None:
        image_size = validation.positive_int(image_size, "image_size")
    if name == "digits":
        (x_train, y_train), (x_test, y_test) = load_digits(seed=seed, images=True)
        # load_digits scales the 0..16 grey levels to [0, 1].
        x_train, x_test = x_train * 255.0, x_test * 255.0
        num_classes = 10
    else:
        (x_train, y_train), (x_test, y_test), num_classes = _tfds_arrays(name, data_dir, download)
    if image_size is not None:
        x_train, x_test = _resize(x_train, image_size), _resize(x_test, image_size)
    return (x_train, y_train), (x_test, y_test), num_classes


def load_vectors(name="digits", data_dir=None, seed=0):
    """A dataset as flat float32 vectors in `[0, 1]`, for MLPs.

    Returns `((x_train, y_train), (x_test, y_test), num_classes)`; the digits
    are the `(n, 64)` of `load_digits`, other datasets' images are flattened.

    Args:
        name: `"digits"` (offline) or another name of `DATASETS`, loaded
            through tensorflow-datasets.
        data_dir: tensorflow-datasets data directory, or `None` for its
            default.
        seed: Seed of the digits' split.
    """
    validation.one_of(name, "name", DATASETS)
    if name == "digits":
        return (*load_digits(seed=seed), 10)
    (x_train, y_train), (x_test, y_test), num_classes = load_arrays(
        name, data_dir=data_dir, seed=seed
    )

    def flat(images):
        return (np.asarray(images, dtype="float32") / 255.0).reshape(len(images), -1)

    return (flat(x_train), y_train), (flat(x_test), y_test), num_classes


def load_digits(test_fraction=0.2, seed=0, images=False):
    """scikit-learn's 8x8 handwritten digits, scaled to `[0, 1]`, split in two.

    Offline: the data ships with scikit-learn.

    Args:
        test_fraction: Fraction of the 1797 examples held out for testing.
        seed: Seed of the shuffle before the split.
        images: Return `(n, 8, 8, 1)` images instead of `(n, 64)` vectors.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, float32 inputs and int32
        labels.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape, float(x_train.max())
    ((1438, 64), (359, 64), 1.0)
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:
        raise ImportError(
            "The built-in digits data needs scikit-learn: pip install scikit-learn"
        ) from error
    digits = sklearn_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    if images:
        x = x.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(round(len(x) * (1 - test_fraction)))
    train, test = order[:split], order[split:]
    return (x[train], y[train]), (x[test], y[test])


def channel_stats(images):
    """Per-channel mean and standard deviation of `(n, h, w, c)` images."""
    # Sums over chunks in float64: exact enough, without a float64 copy of CIFAR.
    total = np.zeros(images.shape[-1])
    total_squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), 4096):
        chunk = np.asarray(images[start : start + 4096], dtype="float64")
        total += chunk.sum(axis=(0, 1, 2))
        total_squares += np.square(chunk).sum(axis=(0, 1, 2))
    count = len(images) * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - np.square(mean), 0.0))
    # A constant channel (e.g. digit borders only) must not divide by zero.
    return mean.astype("float32"), np.maximum(std, 1e-3).astype("float32")


def pipeline(
    x,
    y,
    batch_size,
    mean=None,
    std=None,
    shuffle=False,
    pad=0,
    flip=False,
    drop_remainder=False,
    pad_last_batch=False,
    seed=0,
):
    """A batched `tf.data.Dataset` of `(image, label)` pairs, normalized if `mean` is given.

    Training augmentation, applied before normalization as in the reference
    implementations: `pad` zero pixels on every side and a random crop back to
    the original size, then a random horizontal flip if `flip`.
    `pad_last_batch` fills the last batch up with zero images of weight 0 and
    makes the pairs `(image, label, weight)` triples.
    """
    import tensorflow as tf

    height, width, channels = x.shape[1:]

    def prepare(image, label, *weight):
        image = tf.cast(image, tf.float32)
        if pad:
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.random_crop(image, (height, width, channels))
        if flip:
            image = tf.image.random_flip_left_right(image)
        if mean is not None:
            image = (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
        return (image, label, *weight)

    tensors = (x, y)
    if pad_last_batch:
        missing = -len(x) % batch_size
        weights = np.concatenate([np.ones(len(x), "float32"), np.zeros(missing, "float32")])
        x = np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])
        y = np.concatenate([y, np.zeros(missing, y.dtype)])
        tensors = (x, y, weights)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _tfds_arrays(name, data_dir, download):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            f"Dataset {name!r} needs tensorflow-datasets: "
            "pip install 'keras-deepblocks[datasets]'"
        ) from error
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(
                f"`data_dir` must be a folder path (str or os.PathLike), received: {data_dir!r}"
            )
        data_dir = os.path.expanduser(os.fspath(data_dir))
    builder = tfds.builder(name, data_dir=data_dir)
    # Checked first: tfds's own download_and_prepare would go to the network
    # (and retry for minutes offline) before noticing nothing can be fetched.
    # (is_prepared() alone logs a warning about a missing folder.)
    if not (os.path.isdir(builder.data_dir) and builder.is_prepared()):
        if not download:
            raise FileNotFoundError(
                f"Dataset {name!r} is not prepared in {builder.data_dir_root} and "
                f"`download=False`. {_how_to_get(name, builder.data_dir_root)}"
            )
        _download_and_prepare(builder, name)
    splits = []
    for split in ("train", "test"):
        batches = builder.as_dataset(split=split, as_supervised=True).batch(4096)
        images, labels = zip(*tfds.as_numpy(batches))
        images = np.concatenate(images)
        splits.append((images, np.concatenate(labels).astype("int32")))
    return splits[0], splits[1], builder.info.features["label"].num_classes


def _how_to_get(name, root):
    return (
        'To get it, run `python -c "import tensorflow_datasets as tfds; '
        f"tfds.builder('{name}').download_and_prepare()\"` on a machine with internet access, "
        f"then copy the `{name}` folder it writes in ~/tensorflow_datasets into {root} "
        "(or pass the folder that holds it as --data-dir, `data_dir=` in Python). "
        "`--dataset digits` works offline."
    )


def _download_and_prepare(builder, name):
    """`builder.download_and_prepare()`, failing fast offline and leaving nothing behind."""
    root = pathlib.Path(builder.data_dir_root)
    unreachable = _unreachable_source(builder, root)
    if unreachable:
        raise ConnectionError(
            f"Dataset {name!r} is not prepared in {root} and cannot be downloaded: "
            f"{unreachable}. {_how_to_get(name, root)}"
        )
    # The folders tfds writes in: the dataset's own, whose new entries all come
    # from this call, and shared ones, removed only if this call made them and
    # they are empty again.
    downloads = root / "downloads"
    own = [root / name, downloads / name, downloads / "extracted"]
    shared = [downloads, root]
    before = {folder: _entries(folder) for folder in own + shared}
    try:
        builder.download_and_prepare()
    except BaseException as error:
        for folder in own:
            for entry in (_entries(folder) or set()) - (before[folder] or set()):
                shutil.rmtree(folder / entry, ignore_errors=True)  # a folder
                (folder / entry).unlink(missing_ok=True)  # a file
        for folder in own + shared:
            if before[folder] is None and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not isinstance(error, Exception):  # KeyboardInterrupt
            raise
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        failure = ConnectionError if _network_error(error) else OSError
        raise failure(
            f"Dataset {name!r} is not prepared in {root} and downloading and preparing it "
            f"failed ({reason}); nothing was left there. {_how_to_get(name, root)}"
        ) from error


def _entries(folder):
    """Names in `folder`, or `None` where it does not exist."""
    return set(os.listdir(folder)) if folder.is_dir() else None


def _unreachable_source(builder, root, timeout=5.0):
    """Why a download host (or the proxy to it) of `builder` cannot be reached, or `None`."""
    url_infos = type(builder).url_infos or {}
    proxies = urllib.request.getproxies()
    targets = {}
    for url, info in url_infos.items():
        # A file put in the manual folder is used without any download.
        if info.filename and (root / "downloads" / "manual" / info.filename).exists():
            continue
        parts = urllib.parse.urlsplit(url)
        what = ""
        proxy = proxies.get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            what = f", the proxy to {parts.hostname}"
            parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        targets[parts.hostname, port] = what
    for (host, port), what in sorted(targets.items()):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            return f"no connection to {host}:{port}{what} ({error})"
    return None


def _network_error(error):
    """Whether `error` or one of its causes is a failed connection."""
    network = (ConnectionError, TimeoutError, socket.gaierror)
    try:
        import requests

        network += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    except ImportError:
        pass
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, network):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _resize(images, size):
    import tensorflow as tf

    if images.shape[1:3] == (size, size):
        return images
    return tf.image.resize(images, (size, size), method="bilinear").numpy()
