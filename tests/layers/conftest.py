"""Makes `tests/layer_testing.py` importable as `layer_testing` in these tests.

pytest runs with `--import-mode=importlib`, which puts no test folder on `sys.path`.
"""

import importlib.util
import pathlib
import sys

if "layer_testing" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "layer_testing", pathlib.Path(__file__).parents[1] / "layer_testing.py"
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["layer_testing"] = _module
    _spec.loader.exec_module(_module)
