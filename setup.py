from setuptools import find_packages
from setuptools import setup

# `zoo/` sits at the top of the repository and installs as keras_deepblocks.zoo;
# `deepblocks/` is the command, apart from the package it calls.
ZOO_PACKAGES = ["zoo"] + [f"zoo.{name}" for name in find_packages("zoo")]
PACKAGES = find_packages(include=["keras_deepblocks", "keras_deepblocks.*", "deepblocks"])
PACKAGES += ["keras_deepblocks." + name for name in ZOO_PACKAGES]

TFDS = [
    "tensorflow-datasets>=4.9",
    # tensorflow-datasets 4.9.10 imports it to prepare any dataset but declares it only for
    # Python < 3.9, and etils no longer brings it in.
    "importlib_resources",
]

TEST_EXTRAS = [
    "pytest>=8",
    "pytest-xdist",
    # The CPU build; a plain `torch` requirement would pull a multi-GB CUDA one.
    "torch==2.13.0",
    "jax[cpu]>=0.4.30",
    "scikit-learn",
    "h5py",
    "nbclient>=0.10",
    "nbformat",
    "ipykernel",
]

setup(
    name="keras-deepblocks",
    version="0.1.0",
    description=(
        "Highway layers, residual units and stochastic depth for Keras 3, "
        "with a model zoo of very deep networks."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"keras_deepblocks.zoo": "zoo"},
    install_requires=[
        "keras>=3.8,<4",
        "tensorflow>=2.16",
        # TensorFlow 2.21 no longer pulls it in; `deepblocks train` logs to it
        # and KerasTuner's TensorFlow trials need it.
        "tensorboard",
        "numpy",
        "scikit-learn",
        "matplotlib",
    ],
    extras_require={
        "tuner": ["keras-tuner>=1.4"],
        "datasets": TFDS + ["scikit-learn"],
        "test": TEST_EXTRAS + ["keras-tuner>=1.4"] + TFDS,
    },
    entry_points={"console_scripts": ["deepblocks=deepblocks:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
