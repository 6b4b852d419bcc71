"""The walkthrough notebooks in notebooks/: stored without outputs, and each runs top to bottom without an error."""

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
NAMES = ["01_generate_poster.ipynb", "02_data_prep.ipynb", "03_training.ipynb", "04_edit.ipynb"]


def test_the_walkthroughs_exist():
    assert [path.name for path in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for i, cell in enumerate(book.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: cell {i} has outputs"
    assert "widgets" not in book.metadata


@pytest.fixture
def model_env(monkeypatch, tmp_path_factory):
    """The notebooks use the shipped model; where it is not there (a checkout before its export), a tiny random one."""
    from textgen.pipeline import SHIPPED_MODEL

    if not (SHIPPED_MODEL / "model_index.json").is_file():
        from tests.textgen.test_ui import _tiny_pipeline_folder

        monkeypatch.setenv("TEXTGEN_MODEL", str(_tiny_pipeline_folder(tmp_path_factory.mktemp("nb") / "tiny")))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, model_env):
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    # The kernel is the running interpreter (ipykernel's native "python3"), so it sees this environment's packages.
    client = NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    errors = [
        out for cell in book.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"
    ]
    assert not errors
    assert os.listdir(tmp_path) == []  # notebooks write into their own temporary folders, not the working directory
