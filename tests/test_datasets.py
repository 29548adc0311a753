import os
import pathlib
import time

import numpy as np
import pytest

from keras_deepblocks import datasets
from keras_deepblocks.datasets import load_digits

# As in conftest.py; these tests use random pixels where the folder is absent.
SHARED_FIXTURES = pathlib.Path(
    os.environ.get(
        "DEEPBLOCKS_SHARED_FIXTURES",
        pathlib.Path(__file__).resolve().parents[2] / "shared/fixtures",
    )
)


def batches(dataset):
    return [tuple(np.asarray(t) for t in batch) for batch in dataset.as_numpy_iterator()]


def test_digits_arrays_are_raw_pixels_resized_on_request():
    (x_train, y_train), (x_test, y_test), num_classes = datasets.load_arrays(
        "digits", image_size=16
    )
    (ref_train, ref_labels), _ = load_digits(images=True)
    assert (
        num_classes == 10 and x_train.shape == (1438, 16, 16, 1) and x_test.shape[1:] == (16, 16, 1)
    )
    np.testing.assert_array_equal(y_train, ref_labels)
    # Bilinear resizing keeps the mean brightness of a smooth image, on the 0..255 scale.
    np.testing.assert_allclose(x_train.mean(), ref_train.mean() * 255, rtol=0.05)
    assert 0 <= x_train.min() and x_train.max() <= 255.0 + 1e-3


def test_channel_stats_match_numpy(rng):
    images = rng.uniform(0, 255, size=(9000, 4, 4, 3)).astype("float32") * [1, 0.5, 0.1]
    mean, std = datasets.channel_stats(images)
    np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(std, images.std(axis=(0, 1, 2), dtype="float64"), rtol=1e-5)


def test_augmentation_is_a_shifted_window_of_the_zero_padded_image(rng):
    x = rng.uniform(1, 255, size=(6, 8, 8, 3)).astype("float32")
    y = np.arange(6, dtype="int32")
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])
    ((images, labels),) = batches(datasets.pipeline(x, y, 6, pad=2, flip=True))
    for image, label in zip(images, labels):
        windows = [padded[label, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        windows += [w[:, ::-1] for w in windows]
        assert any(np.array_equal(image, w) for w in windows)


def test_normalized_pipeline_and_padded_last_batch(rng):
    x = rng.uniform(0, 255, size=(10, 4, 4, 2)).astype("float32")
    y = np.arange(10, dtype="int32")
    mean, std = datasets.channel_stats(x)
    result = batches(datasets.pipeline(x, y, 4, mean, std, pad_last_batch=True))
    images, labels, weights = (np.concatenate(parts) for parts in zip(*result))
    assert [len(b[0]) for b in result] == [4, 4, 4]
    np.testing.assert_allclose(images[:10], (x - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(weights, [1] * 10 + [0, 0])
    np.testing.assert_array_equal(labels[:10], y)


def test_load_splits_validation_and_reports_shapes():
    data = datasets.load("digits", batch_size=100, validation_fraction=0.25, augment=False)
    assert data.input_shape == (8, 8, 1) and data.num_classes == 10
    train_images = np.concatenate([b[0] for b in batches(data.train)])
    validation_images = np.concatenate([b[0] for b in batches(data.validation)])
    assert len(train_images) == data.train_examples == 1078 and len(validation_images) == 360
    # Normalized with the statistics of the training part only.
    np.testing.assert_allclose(train_images.mean(), 0.0, atol=1e-4)
    np.testing.assert_allclose(train_images.std(), 1.0, atol=1e-3)


def cifar10_examples(count, seed):
    """Real CIFAR-10 images and labels where ../shared is present, random pixels elsewhere."""
    if (SHARED_FIXTURES / "cifar10_partial").is_dir():
        with np.load(SHARED_FIXTURES / "cifar10_partial" / "cifar10_train_4660.npz") as data:
            start = seed * count
            return data["images"][start : start + count], data["labels"][start : start + count]
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3), "uint8"), rng.integers(0, 10, count)


def as_sorted_examples(images, labels):
    """Examples as sorted (label, pixel bytes) pairs: tfds stores them in a shuffled order."""
    images = np.asarray(images).astype("uint8")
    return sorted(zip(np.asarray(labels).tolist(), (image.tobytes() for image in images)))


def test_cifar10_prepared_by_tfds_from_local_files_loads_exactly(
    tmp_path, offline, monkeypatch, write_cifar10_download
):
    tfds = pytest.importorskip("tensorflow_datasets")
    train, test = cifar10_examples(15, seed=0), cifar10_examples(6, seed=1)
    write_cifar10_download(tmp_path / "tfds", train, test)
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    builder = tfds.builder("cifar10", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=config)

    # `~` as users write it: tfds.builder keeps it, and its is_prepared() then finds nothing.
    monkeypatch.setenv("HOME", str(tmp_path))
    (x_train, y_train), (x_test, y_test), num_classes = datasets.load_arrays(
        "cifar10", data_dir="~/tfds"
    )
    assert x_train.dtype == np.uint8 and x_train.shape == (15, 32, 32, 3) and num_classes == 10
    assert y_test.dtype == np.int32
    assert as_sorted_examples(x_train, y_train) == as_sorted_examples(*train)
    assert as_sorted_examples(x_test, y_test) == as_sorted_examples(*test)

    data = datasets.load(
        "cifar10", batch_size=4, augment=False, normalize=False, data_dir=tmp_path / "tfds"
    )
    assert (data.input_shape, data.num_classes, data.train_examples) == ((32, 32, 3), 10, 15)
    test_images, test_labels = (np.concatenate(part) for part in zip(*batches(data.test)))
    assert as_sorted_examples(test_images, test_labels) == as_sorted_examples(*test)
    np.testing.assert_allclose(data.mean, train[0].mean(axis=(0, 1, 2)), rtol=1e-5)


def test_unprepared_dataset_offline_fails_at_once_saying_how_to_get_it(tmp_path, offline):
    pytest.importorskip("tensorflow_datasets")
    start = time.monotonic()
    with pytest.raises(ConnectionError) as error:
        datasets.load("cifar10", data_dir=tmp_path)
    assert time.monotonic() - start < 15
    message = str(error.value)
    assert "\n" not in message and f"not prepared in {tmp_path}" in message
    assert "tfds.builder('cifar10').download_and_prepare()" in message
    assert "--data-dir" in message and "--dataset digits" in message
    with pytest.raises(FileNotFoundError, match="`download=False`. To get it"):
        datasets.load_arrays("cifar10", data_dir=tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


def test_failed_preparation_leaves_the_data_dir_as_it_was(tmp_path, offline):
    """A wrong archive in tfds's manual folder: tfds itself fails, after creating folders."""
    pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    manual = tmp_path / "downloads" / "manual" / "cifar-10-binary.tar.gz"
    manual.parent.mkdir(parents=True)
    manual.write_bytes(b"not the CIFAR-10 archive")
    with pytest.raises(OSError, match="preparing it failed [(]NonMatchingChecksumError") as error:
        datasets.load("cifar10", data_dir=tmp_path)
    assert isinstance(error.value.__cause__, NonMatchingChecksumError)
    assert not isinstance(error.value, ConnectionError) and "\n" not in str(error.value)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "downloads",
        "downloads/manual",
        "downloads/manual/cifar-10-binary.tar.gz",
    ]


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`name` must be one of"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="`image_size`"):
        datasets.load_arrays("digits", image_size=0)
    with pytest.raises(ValueError, match="`validation_fraction`"):
        datasets.load("digits", validation_fraction=1.5)


def test_data_dir_must_be_a_path():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(TypeError, match="`data_dir` must be a folder path .*received: 3"):
        datasets.load_arrays("cifar10", data_dir=3)
