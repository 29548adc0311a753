"""Saved models load where users load them: in a fresh process, on every backend, across backends.

Each backend saves every case of `saving_roundtrip.CASES` (each public layer with
non-default options, each zoo builder at a small size) to `.keras` in a process of its
own. Then, per loading backend, a fresh process that imports only keras and
`keras_deepblocks` loads its own backend's files and another backend's
(TF -> JAX, JAX -> torch, torch -> TF) with the default `safe_mode=True`. The tests
compare what the loading process got (outputs, config, variables, compiled metrics) with
what the saving process had.

The module starts its own backends (six processes, run once for all its tests), so it
runs in the TensorFlow pass of the suite only: it lives outside `tests/layers` and
`tests/zoo`, which CI reruns on JAX and PyTorch.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import saving_roundtrip as roundtrip

HELPER = pathlib.Path(roundtrip.__file__)
CASES = list(roundtrip.CASES)

BACKENDS = ("tensorflow", "jax", "torch")
# The backend each loading process reads besides its own.
CROSS_SOURCE = {"jax": "tensorflow", "torch": "jax", "tensorflow": "torch"}
PAIRS = [(backend, backend) for backend in BACKENDS] + [
    (source, loader) for loader, source in CROSS_SOURCE.items()
]
TIMEOUT_S = 900


class Runs:
    """The save and load processes of the module, started once, run concurrently."""

    def __init__(self, root):
        self.root = root
        self.returncodes = {}
        self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        # XLA's CPU compiler spends seconds optimizing each of the many small
        # programs an eager JAX process compiles (most of them weight
        # initializers); optimization level 0 compiles them about 3x faster, and
        # the JAX save and load processes share a compilation cache. Both JAX
        # processes run with these settings.
        self.jax_env = dict(
            XLA_FLAGS=(
                os.environ.get("XLA_FLAGS", "")
                + " --xla_backend_optimization_level=0"
                + " --xla_llvm_disable_expensive_passes=true"
            ),
            JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        )
        self._run()

    def saved_dir(self, backend):
        return self.root / "saved" / backend

    def loaded_dir(self, loader, source):
        return self.root / "loaded" / loader / source

    def log(self, name):
        text = (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        return text[-6000:]

    def _command(self, name):
        kind, backend = name.split("_", 1)
        if kind == "save":
            return [str(self.saved_dir(backend))]
        sources = [self.saved_dir(backend), self.saved_dir(CROSS_SOURCE[backend])]
        return [*map(str, sources), str(self.root / "loaded" / backend)]

    def _popen(self, name):
        kind, backend = name.split("_", 1)
        env = dict(self.env, KERAS_BACKEND=backend)
        if backend == "jax":
            env.update(self.jax_env)
        log = open(self.root / f"{name}.log", "wb")
        command = [sys.executable, str(HELPER), kind, *self._command(name)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return process

    def _run(self):
        running = {f"save_{backend}": self._popen(f"save_{backend}") for backend in BACKENDS}
        started = time.monotonic()
        waiting = {f"load_{backend}" for backend in BACKENDS}
        while running:
            for name, process in list(running.items()):
                if process.poll() is not None:
                    self.returncodes[name] = process.returncode
                    del running[name]
            # A loading process starts once both backends it reads have saved.
            for name in sorted(waiting):
                backend = name.split("_", 1)[1]
                if {f"save_{backend}", f"save_{CROSS_SOURCE[backend]}"} <= set(self.returncodes):
                    running[name] = self._popen(name)
                    waiting.discard(name)
            if time.monotonic() - started > TIMEOUT_S:
                for process in running.values():
                    process.kill()
                    process.wait()
                pytest.fail(f"{sorted(running)} still running after {TIMEOUT_S} s")
            time.sleep(0.2)

    def check_saved(self, backend):
        name = f"save_{backend}"
        assert self.returncodes[name] == 0, f"saving on {backend} failed:\n{self.log(name)}"

    def check_loaded(self, loader):
        name = f"load_{loader}"
        assert self.returncodes[name] == 0, f"the loading process failed:\n{self.log(name)}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    missing = [name for name in ("jax", "torch") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} for its backends: pip install -e '.[test]'")
    return Runs(tmp_path_factory.mktemp("saving"))


def read(path):
    with np.load(path.with_suffix(".npz")) as arrays:
        arrays = dict(arrays)
    return arrays, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def saved_and_loaded(runs, saved_on, loaded_on, case):
    runs.check_saved(saved_on)
    runs.check_loaded(loaded_on)
    target = runs.loaded_dir(loaded_on, saved_on) / case
    error = target.with_suffix(".error")
    if error.exists():
        pytest.fail(
            f"{case}.keras saved on {saved_on} does not load on {loaded_on} after "
            f"`import keras_deepblocks`:\n{error.read_text(encoding='utf-8')}"
        )
    return read(runs.saved_dir(saved_on) / case), read(target)


def comparable(compile_config):
    """A compile config without the optimizer's backend class (torch has its own Adam)."""
    config = json.loads(json.dumps(compile_config))
    optimizer = config.get("optimizer") if config else None
    if isinstance(optimizer, dict):
        optimizer.pop("module", None)
        optimizer.pop("registered_name", None)
    return config


def pair_id(pair):
    return f"{pair[0]}->{pair[1]}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("saved_on, loaded_on", PAIRS, ids=[pair_id(p) for p in PAIRS])
def test_saved_model_loads_in_a_fresh_process(runs, saved_on, loaded_on, case):
    (saved, saved_meta), (loaded, loaded_meta) = saved_and_loaded(runs, saved_on, loaded_on, case)
    # Same backend: the same kernels (measured: identical). Across backends:
    # the backends' kernels, relative to the outputs' scale.
    tolerance = 1e-6 if saved_on == loaded_on else 1e-5
    np.testing.assert_array_equal(loaded["inputs"], saved["inputs"])
    expected, actual = saved["outputs"], loaded["outputs"]
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(1.0, float(np.max(np.abs(expected))))
    difference = float(np.max(np.abs(actual.astype("float64") - expected)))
    assert (
        difference <= tolerance * scale
    ), f"outputs differ by up to {difference:.3g} (outputs up to {scale:.3g})"
    if "model_outputs" in loaded:  # CharacterIds: the model itself on TF
        np.testing.assert_array_equal(loaded["model_outputs"], expected)

    assert loaded_meta["config"] == saved_meta["config"]
    assert comparable(loaded_meta["compile_config"]) == comparable(saved_meta["compile_config"])

    paths = saved_meta["variable_paths"]
    assert len(loaded_meta["variable_paths"]) == len(paths)
    for index, path in enumerate(paths):
        np.testing.assert_array_equal(
            loaded[f"variable_{index}"], saved[f"variable_{index}"], err_msg=path
        )

    if saved_meta["metrics"] is not None:
        assert loaded_meta["metrics"].keys() == saved_meta["metrics"].keys()
        for name, value in saved_meta["metrics"].items():
            assert loaded_meta["metrics"][name] == pytest.approx(value, rel=tolerance), name


@pytest.mark.parametrize("case", CASES)
def test_variable_paths_survive_loading(runs, case):
    # Paths name weights in converted checkpoints (`deepblocks convert`), layout
    # maps and optimizer variables; they must not depend on how a model was made.
    for saved_on, loaded_on in PAIRS:
        (_, saved_meta), (_, loaded_meta) = saved_and_loaded(runs, saved_on, loaded_on, case)
        assert loaded_meta["variable_paths"] == saved_meta["variable_paths"], pair_id(
            (saved_on, loaded_on)
        )
