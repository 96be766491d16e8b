"""docs/notebooks/quickstart.ipynb runs, cell by cell, in a real kernel.

The notebook is executed as Jupyter executes it: nbformat reads the file,
nbclient starts a Python 3 kernel (ipykernel) in the notebook's folder and
runs every cell in order; a cell that raises fails the test with the cell
and its traceback. It runs in its tiny mode (TFGT_NOTEBOOK_TINY=1: a handful
of steps per training, small evaluations), its runs in a temporary folder.
nbclient and nbformat are Jupyter's own libraries for this (what
`jupyter nbconvert --execute` runs), kept by the Jupyter project; they and
ipykernel are test requirements in setup.cfg.
"""

import json
import os

import nbclient
import nbformat

from tests.conftest import REPO

NOTEBOOK = os.path.join(REPO, "docs", "notebooks", "quickstart.ipynb")
# Seconds a cell may take before the test fails (its longest takes under a
# minute on 2 busy cores).
CELL_TIMEOUT = 300


def _text(cell) -> str:
  """What a cell printed (stdout and stderr) and returned, as text."""
  parts = []
  for output in cell.get("outputs", []):
    if output.output_type == "stream":
      parts.append(output.text)
    elif "data" in output:
      parts.append(output.data.get("text/plain", ""))
  return "".join(parts)


def test_the_notebook_is_stored_without_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  assert notebook.metadata.kernelspec.name == "python3"
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, cell.id


def test_quickstart_runs_in_tiny_mode(tmp_path, monkeypatch):
  # The kernel inherits the environment.
  monkeypatch.setenv("TFGT_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("TFGT_NOTEBOOK_DIR", str(tmp_path / "work"))
  monkeypatch.setenv("TFGT_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
  monkeypatch.delenv("TFGT_REPO_DIR", raising=False)
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(
      notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
      # The kernel starts in the notebook's folder, as under Jupyter.
      resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}})
  try:
    client.execute()  # Raises CellExecutionError for a cell that fails.
  finally:
    # The executed notebook, to read when it failed.
    nbformat.write(notebook, str(tmp_path / "quickstart.ipynb"))
  cells = {cell.id: cell for cell in notebook.cells}
  # What the runs left: the cGANTransfer run evaluated and kept its best,
  # both Hyper-Modulation stages trained, the export has a first version.
  runs = tmp_path / "work" / "tiny"
  best = json.loads((runs / "cgantransfer" / "best.json").read_text())
  assert best["step"] == 2 and best["fid"] > 0
  assert (runs / "cgantransfer" / "model" / "best" /
          "ckpt-2.eval.json").is_file()
  for stage in ("hypermod_align", "hypermod"):
    assert (runs / stage / "model" / "model.json").is_file(), stage
  assert (runs / "export" / "1" / "saved_model.pb").is_file()
  # What it showed: the pictures inline, the scores, the served images.
  pictures = [output for cell in notebook.cells
              for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
  assert len(pictures) == 7
  assert "best: {" in _text(cells["scores"])
  assert "fid" in _text(cells["evaluate"])
  assert "images: (8, 32, 32, 1) uint8" in _text(cells["export"])
  assert "labels: ['Bag', 'Bag'" in _text(cells["export"])
