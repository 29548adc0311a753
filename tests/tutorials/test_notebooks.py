"""Executes every notebook in tutorials/ top to bottom in its small-budget mode."""

import json
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = pathlib.Path(__file__).resolve().parents[2] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL = "deepblocks-tests"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernelspec for this interpreter, so notebooks run in the test's environment."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "keras-deepblocks tests",
                "language": "python",
            }
        )
    )
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), previous]))
    yield KERNEL
    if previous is None:
        os.environ.pop("JUPYTER_PATH")
    else:
        os.environ["JUPYTER_PATH"] = previous


def test_every_tutorial_is_found():
    assert len(NOTEBOOKS) >= 6, NOTEBOOKS


async def _execute_all(paths, kernel_name, concurrency):
    """Runs notebooks `concurrency` at a time: much of a kernel's start and of graph
    compilation is single-threaded, so two at once use both CPU cores."""
    import asyncio

    semaphore = asyncio.Semaphore(concurrency)

    async def execute(path):
        async with semaphore:
            notebook = nbformat.read(path, as_version=4)
            client = nbclient.NotebookClient(
                notebook,
                kernel_name=kernel_name,
                timeout=240,
                resources={"metadata": {"path": str(TUTORIALS)}},
            )
            try:
                await client.async_execute()
            except Exception as error:  # CellExecutionError names the cell and traceback
                return notebook, error
            return notebook, None

    results = await asyncio.gather(*(execute(path) for path in paths))
    return dict(zip(paths, results))


@pytest.fixture(scope="module")
def executed(kernel_name):
    import asyncio

    saved = {
        name: os.environ.get(name)
        for name in ("DEEPBLOCKS_TUTORIAL_SMALL", "MPLBACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    os.environ.update(DEEPBLOCKS_TUTORIAL_SMALL="1", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    try:
        yield asyncio.run(_execute_all(NOTEBOOKS, kernel_name, concurrency=2))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_committed_outputs(path):
    # Outputs are not kept in the repository: notebooks stay small and diffable.
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert (
        notebook.cells[1].cell_type == "code"
        and "DEEPBLOCKS_TUTORIAL_SMALL" in notebook.cells[1].source
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, executed):
    notebook, error = executed[path]
    if error is not None:
        raise error
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")
