"""Executes every notebook in tutorials/: all in small mode, and those whose last cell states
claims at full size, where the claims are checked against the numbers the notebook printed."""

import contextlib
import json
import math
import os
import pathlib
import re
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


async def _execute_all(paths, kernel_name, concurrency, timeout=240):
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
                timeout=timeout,
                resources={"metadata": {"path": str(TUTORIALS)}},
            )
            try:
                await client.async_execute()
            except Exception as error:  # CellExecutionError names the cell and traceback
                return notebook, error
            return notebook, None

    results = await asyncio.gather(*(execute(path) for path in paths))
    return dict(zip(paths, results))


@contextlib.contextmanager
def _environment(**values):
    """Sets (or, for None, unsets) environment variables, which the kernels inherit."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def executed(kernel_name):
    import asyncio

    with _environment(DEEPBLOCKS_TUTORIAL_SMALL="1", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3"):
        yield asyncio.run(_execute_all(NOTEBOOKS, kernel_name, concurrency=2))


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


def test_tutorial_06_checks_its_elmo_section_on_the_fixture(executed, shared_fixtures):
    # The ELMo biLM section is the same in small and full mode; it is skipped only where the
    # fixture is absent, so here it must have run and checked every statement of its text.
    notebook, error = executed[TUTORIALS / "06_char_cnn_highway_encoder.ipynb"]
    if error is not None:
        raise error
    text = "".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream"
    )
    assert "not found" not in text, text
    claims = re.findall(r"^\[(yes|NO)\] (.+)$", text, re.M)
    assert len(claims) >= 20 and all(mark == "yes" for mark, _ in claims), text
    assert re.search(r'token layer: cosine similarity of the two "bank" vectors 1\.000000', text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_says_up_front_how_long_it_takes(path):
    # A CPU user must know before running it what full size costs and what small mode is.
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    time_note = re.search(r"\*\*Time:\*\*(.*?)(\n\n|$)", first.source, re.S)
    assert time_note, first.source
    note = " ".join(time_note.group(1).split())  # as rendered: line breaks are spaces
    assert re.search(r"\d+(-\d+)? minutes?", note) and "2-core CPU" in note, note
    assert "**Small mode**" in first.source and "DEEPBLOCKS_TUTORIAL_SMALL=1" in first.source


# Notebooks whose last code cell (tagged "results") prints a table and states claims; at full
# size the notebook asserts them itself, and the tests below check them again from the table.
CLAIMING = {"02_why_depth_needs_highways", "03_resnet_stochastic_depth"}


@pytest.fixture(scope="module")
def executed_full_size(kernel_name):
    """The claiming notebooks at full size, two at a time: about 4 minutes on 2 CPU cores."""
    import asyncio

    paths = [path for path in NOTEBOOKS if path.stem in CLAIMING]
    with _environment(DEEPBLOCKS_TUTORIAL_SMALL=None, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3"):
        results = asyncio.run(_execute_all(paths, kernel_name, concurrency=2, timeout=1500))
    return {path.stem: result for path, result in results.items()}


def _results_output(executed_full_size, stem):
    notebook, error = executed_full_size[stem]
    if error is not None:
        raise error  # an assertion of the notebook's own claims fails here, with its table
    cells = [cell for cell in notebook.cells if "results" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"{stem} needs one code cell tagged 'results'"
    text = "".join(out.get("text", "") for out in cells[0].outputs if out.output_type == "stream")
    assert "[NO]" not in text and "small mode" not in text, text
    return text


@pytest.mark.slow
def test_tutorial_02_full_size_shows_what_its_text_says(executed_full_size):
    text = _results_output(executed_full_size, "02_why_depth_needs_highways")
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("plain", "highway_fixed", "highway_scaled"):
            kind, depth, bias, signal, loss, accuracy, change = fields
            rows[kind, int(depth)] = {
                "bias": None if bias == "-" else float(bias),
                "signal": None if signal == "-" else float(signal),
                "accuracy": float(accuracy),
                "change": None if change == "-" else float(change),
            }
    depths = [10, 20, 50, 100]
    kinds = ("plain", "highway_fixed", "highway_scaled")
    assert sorted(rows) == sorted((kind, depth) for kind in kinds for depth in depths), text
    for depth in depths:
        # The depth-scaled gate bias is logit(1/L), and the fixed one -2.
        logit = math.log(1 / (depth - 1))
        assert rows["highway_scaled", depth]["bias"] == pytest.approx(logit, abs=0.006)
        assert rows["highway_fixed", depth]["bias"] == -2.0
        # Highway nets with logit(1/L) train at every depth; before training they pass > 20 %
        # of the signal; their gate biases barely move.
        assert rows["highway_scaled", depth]["accuracy"] >= 0.9, text
        assert rows["highway_scaled", depth]["signal"] > 0.2, text
        assert rows["highway_scaled", depth]["change"] < 0.5, text
    # Plain nets: train at 10 layers, are behind both highway nets at 20, fail at 50 and 100.
    assert rows["plain", 10]["accuracy"] >= 0.9, text
    highway_20 = min(rows[kind, 20]["accuracy"] for kind in ("highway_fixed", "highway_scaled"))
    assert rows["plain", 20]["accuracy"] < highway_20, text
    assert rows["plain", 50]["accuracy"] <= 0.5 and rows["plain", 100]["accuracy"] <= 0.5, text
    # A fixed gate bias of -2: trains at 10 and 20 layers, fails at 50 and 100.
    assert min(rows["highway_fixed", d]["accuracy"] for d in (10, 20)) >= 0.9, text
    assert max(rows["highway_fixed", d]["accuracy"] for d in (50, 100)) <= 0.5, text
    assert rows["highway_fixed", 100]["signal"] < 0.01, text


@pytest.mark.slow
def test_tutorial_03_full_size_shows_what_its_text_says(executed_full_size):
    text = _results_output(executed_full_size, "03_resnet_stochastic_depth")
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("baseline", "stochastic"):
            rows[fields[0]] = [float(value) for value in fields[1:]]
    assert sorted(rows) == ["baseline", "stochastic"], text
    # Both learn the digits (test accuracy >= 0.9) ...
    assert min(rows[key][0] for key in rows) >= 0.9, text
    # ... and a step with stochastic depth takes less CPU time than one without (dropped blocks
    # are skipped), by the median of per-round ratios: rounds alternate the two models, so
    # load from other processes hits both alike (the medians of raw times do not cancel it).
    assert float(re.search(r"step time ratio (\S+)", text).group(1)) < 1, text
