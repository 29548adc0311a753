"""The lesion experiment: the published ResNet on real CIFAR-10 images, its table and figure,
where its images come from, and what it refuses."""

import json

import keras
import numpy as np
import pytest

from keras_deepblocks.experiments import lesion
from keras_deepblocks.zoo import resnet_cifar

FIXTURE_IMAGES = ("cifar10_partial", "cifar10_train_4660.npz")


@pytest.fixture
def random_resnet14(tmp_path):
    """The weights file of a random resnet_cifar(14), and the model."""
    model = resnet_cifar(14)
    path = tmp_path / "resnet14.weights.h5"
    model.save_weights(path)
    return str(path), model


def pixels(count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3)).astype("uint8"), rng.integers(0, 10, count)


def test_small_run_of_the_published_resnet20_on_real_images(shared_fixtures, tmp_path):
    results = lesion.run(
        small=True,
        depth=20,
        weights=shared_fixtures / "resnet_cifar_torch" / "resnet20-12fca82f.th",
        images=shared_fixtures.joinpath(*FIXTURE_IMAGES),
    )
    results = json.loads(json.dumps(results))  # plain values, as the CLI stores them
    blocks = [f"layer{s}_{i}" for s in (1, 2, 3) for i in range(3)]
    assert results["blocks"] == blocks
    assert [b for b, d in zip(blocks, results["downsampling"]) if d] == ["layer2_0", "layer3_0"]
    assert results["num_examples"] == 200 and results["full"] >= 0.99
    # Of the small run's 2 and 8 swaps, ResNet-20 has pairs for 2 (5 pairs).
    assert list(results["shuffle"]) == ["2"] and results["num_pairs"] == 5
    assert [len(v) for v in results["shuffle_trials"].values()] == [2]
    assert results["most_harmful"] == blocks[int(np.argmin(results["delete"]))]
    assert (results["depth"], results["images"]) == (20, "cifar10_train_4660.npz")

    table = lesion.summary(results)
    assert "ResNet-20 on 200 images" in table and f"{results['full']:.4f}" in table
    for name, accuracy in zip(blocks, results["delete"]):
        assert f"{accuracy:.4f}" in next(line for line in table.splitlines() if name in line)
    assert f"most harmful deletion: {results['most_harmful']}" in table
    assert "layer2_0 (down)" in table
    path = lesion.plot(results, tmp_path / "lesion.png")
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[:2][1] > 600


def test_given_images_a_seeded_subset_and_the_options(random_resnet14):
    weights, model = random_resnet14
    x, y = pixels(30)
    options = dict(weights=weights, depth=14, images=(x, y), num_images=12, trials=2, swaps=(1,))
    results = lesion.run(seed=4, **options)
    assert results["num_examples"] == 12 and results["images"] == "given images"
    assert results == lesion.run(seed=4, **options)
    # The study on the same 12 images, chosen by the seed, directly.
    chosen = np.sort(np.random.default_rng(4).permutation(30)[:12])
    scores = model.predict(x[chosen], verbose=0)
    assert results["full"] == np.mean(np.argmax(scores, axis=-1) == y[chosen])
    assert len(results["delete"]) == 6 and results["num_pairs"] == 1


def test_cifar10_reads_the_test_split(random_resnet14, tmp_path, offline, write_cifar10_download):
    weights, _ = random_resnet14
    train, test = pixels(15, seed=1), pixels(6, seed=2)
    write_cifar10_download(tmp_path / "tfds", train, test)
    tfds = pytest.importorskip("tensorflow_datasets")
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    tfds.builder("cifar10", data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=config
    )
    results = lesion.run(
        dataset="cifar10", data_dir=tmp_path / "tfds", weights=weights, depth=14, swaps=(0,)
    )
    assert (results["num_examples"], results["images"]) == (6, "CIFAR-10 test split")


def test_images_must_be_cifar10_or_an_npz_file(random_resnet14, tmp_path):
    weights, _ = random_resnet14
    with pytest.raises(ValueError, match=r"`dataset` must be 'cifar10'.*received: 'digits'"):
        lesion.run(dataset="digits", weights=weights)
    with pytest.raises(ValueError, match=r"`images` must be None, the path of a \.npz.*'x\.npy'"):
        lesion.run(images="x.npy", weights=weights)
    with pytest.raises(TypeError, match="`images` must be None.*received: a ndarray"):
        lesion.run(images=np.zeros((2, 32, 32, 3)), weights=weights)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        lesion.run(images=str(tmp_path / "missing.npz"), weights=weights)
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 32, 32, 3)), y=np.zeros(2))
    with pytest.raises(ValueError, match=r"wrong\.npz.*`images` and `labels`.*\['x', 'y'\]"):
        lesion.run(images=str(tmp_path / "wrong.npz"), weights=weights)
    np.savez(tmp_path / "gray.npz", images=np.zeros((2, 32, 32)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"gray\.npz.*\(n, height, width, 3\)"):
        lesion.run(images=str(tmp_path / "gray.npz"), weights=weights)
    with pytest.raises(TypeError, match="`weights` must be None"):
        lesion.run(images=pixels(4), weights=3)
    with pytest.raises(ValueError, match="`num_images` must be a positive integer"):
        lesion.run(images=pixels(4), weights=weights, num_images=0)
    keras.backend.clear_session()
