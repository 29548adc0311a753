import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deepblocks.datasets import load_digits

ACCURACY = re.compile(r"top-1 accuracy (\d\.\d+)")


def reported_accuracy(text):
    return float(ACCURACY.findall(text)[-1])


def digits_test_pixels(size):
    """The evaluation data as an independent reference: digits test images, 0..255, resized."""
    _, (x_test, y_test) = load_digits(images=True)
    x_test = x_test * 255.0
    if size != 8:
        x_test = tf.image.resize(x_test, (size, size)).numpy()
    return x_test, y_test


def run_deepblocks(argv, cwd):
    """The installed `deepblocks` script (or `python -m deepblocks`), as a user runs it."""
    script = shutil.which("deepblocks", path=os.path.dirname(sys.executable))
    command = [sys.executable, script] if script else [sys.executable, "-m", "deepblocks"]
    return subprocess.run(
        command + argv, capture_output=True, text=True, timeout=600, cwd=cwd, env=dict(os.environ)
    )


@pytest.mark.slow
def test_offline_smoke_run_learns_then_evaluates_in_a_fresh_process(tmp_path):
    """The README's `deepblocks train resnet20 --epochs 1 && deepblocks evaluate resnet20.keras`."""
    train = run_deepblocks(["train", "resnet20", "--epochs", "1"], cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    trained = reported_accuracy(train.stdout)
    output = tmp_path / "resnet20.keras"
    log_dir = tmp_path / "runs" / "resnet20"
    assert output.is_file() and (log_dir / "last_epoch.keras").is_file()
    assert list((log_dir / "tensorboard").rglob("events.out.tfevents.*"))

    evaluate = run_deepblocks(["evaluate", "resnet20.keras"], cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    evaluated = reported_accuracy(evaluate.stdout)
    # The saved model, fed raw test pixels in a fresh process, scores what training reported,
    # and one epoch visibly learned: chance is 0.1 (the old defaults gave 0.075). TensorFlow's
    # threaded CPU kernels make runs of one seed differ: 0.37 to 0.69 measured, hence 0.25.
    assert evaluated == pytest.approx(trained, abs=1e-4)
    assert evaluated > 0.25, train.stdout[-2000:]

    model = keras.saving.load_model(output)
    assert model.input_shape == (None, 32, 32, 1)  # digits resized for the CIFAR network
    x_test, y_test = digits_test_pixels(32)
    reference = np.mean(np.argmax(model.predict(x_test, verbose=0), axis=-1) == y_test)
    assert evaluated == pytest.approx(reference, abs=1e-4)
    # The saved model normalizes with the training split's per-channel statistics.
    (x_train, _), _ = load_digits(images=True)
    normalization = model.get_layer("normalization")
    train_pixels = tf.image.resize(x_train * 255.0, (32, 32)).numpy()
    np.testing.assert_allclose(np.ravel(normalization.mean), train_pixels.mean(), rtol=1e-4)
    np.testing.assert_allclose(
        np.sqrt(np.ravel(normalization.variance)), train_pixels.std(), rtol=1e-4
    )


TF_TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from deepblocks import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distribute_on_two_virtual_cpu_devices(backend, tmp_path):
    output = tmp_path / "model.keras"
    argv = [
        "train",
        "highway_mlp",
        "--depth",
        "2",
        "--width",
        "8",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "4",
        "--batch-size",
        "32",
        "--distribute",
        "--output",
        str(output),
        "--log-dir",
        str(tmp_path / "runs"),
        "--verbose",
        "2",  # the summary line, with the replicas
    ]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        command = [sys.executable, "-m", "deepblocks", *argv]
    else:
        command = [sys.executable, "-c", TF_TWO_CPUS, *argv]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas" in result.stdout
    # The test split (359 images, not a multiple of 32) is padded with zero-weight
    # examples: the reported accuracy is exactly the full test set's.
    model = keras.saving.load_model(output)
    x_test, y_test = digits_test_pixels(8)
    reference = np.mean(np.argmax(model.predict(x_test, verbose=0), axis=-1) == y_test)
    assert reported_accuracy(result.stdout) == pytest.approx(reference, abs=1e-4)


def test_evaluate_zoo_resnet_with_checkpoint_weights(
    shared_fixtures, tmp_path, offline, write_cifar10_download
):
    """`deepblocks evaluate resnet20 --weights FILE --dataset cifar10`, on real CIFAR-10 images.

    tensorflow-datasets prepares the data from local files; the command runs in a fresh
    process and must report what the reference model computes on the same images.
    """
    import tensorflow_datasets as tfds

    from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

    checkpoint = shared_fixtures / "resnet_cifar_torch" / "resnet20-12fca82f.th"
    with np.load(shared_fixtures / "cifar10_partial" / "cifar10_train_4660.npz") as images:
        x, y = images["images"][:60], images["labels"][:60]
    write_cifar10_download(tmp_path / "tfds", (x[:10], y[:10]), (x[10:], y[10:]))
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    tfds.builder("cifar10", data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=config
    )

    argv = ["evaluate", "resnet20", "--weights", str(checkpoint), "--dataset", "cifar10"]
    result = run_deepblocks(argv + ["--data-dir", str(tmp_path / "tfds")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on cifar10 test (50 images)" in result.stdout
    reference_model = resnet_cifar(20, weights=str(checkpoint))  # logits, raw pixels in
    predictions = np.argmax(reference_model.predict(x[10:], verbose=0), axis=-1)
    reference = np.mean(predictions == y[10:])
    assert reported_accuracy(result.stdout) == pytest.approx(reference, abs=1e-4)
    assert reference > 0.9  # the checkpoint was trained on these images
