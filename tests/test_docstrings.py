"""Every `>>>` example in the package's docstrings runs and prints what it shows.

Examples written as plain ```python blocks are illustrations (a download, a
long training run) and are not run.
"""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_deepblocks
import keras_deepblocks.zoo


def _modules():
    # The zoo installs as keras_deepblocks.zoo from its own folder (not under
    # keras_deepblocks/ in an editable install), so it is walked on its own.
    names = set()
    for package in (keras_deepblocks, keras_deepblocks.zoo):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.add(info.name)
    return sorted(names)


def _doctests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    globs = {"keras": keras, "np": np, "ops": keras.ops, **vars(module)}
    return [test for test in finder.find(module, globs=globs) if test.examples]


MODULES_WITH_EXAMPLES = [name for name in _modules() if _doctests(name)]


def test_the_package_and_the_zoo_have_examples_to_run():
    assert len(MODULES_WITH_EXAMPLES) >= 10, MODULES_WITH_EXAMPLES
    assert "keras_deepblocks.zoo.resnet_cifar" in MODULES_WITH_EXAMPLES


@pytest.mark.parametrize("module_name", MODULES_WITH_EXAMPLES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    failures = []
    for test in _doctests(module_name):
        result = runner.run(test, out=failures.append)
        assert result.attempted > 0
    assert not failures, "".join(failures)
