import numpy as np
import pytest

from keras_deepblocks import datasets
from keras_deepblocks.data import load_digits


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


def test_tfds_loader_on_locally_generated_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        data = datasets.load("cifar100", batch_size=5, download=False, normalize=False)
        (x_train, _), (x_test, y_test), num_classes = datasets.load_arrays(
            "svhn_cropped", download=False
        )
    assert data.input_shape == (32, 32, 3) and data.num_classes == 100
    assert [len(b[0]) for b in batches(data.train)] == [5, 5, 2]
    assert x_train.dtype == np.uint8 and x_train.max() <= 255 and num_classes == 10
    assert x_test.shape == (12, 32, 32, 3) and y_test.dtype == np.int32


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`name` must be one of"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="`image_size`"):
        datasets.load_arrays("digits", image_size=0)
    with pytest.raises(ValueError, match="`validation_fraction`"):
        datasets.load("digits", validation_fraction=1.5)
