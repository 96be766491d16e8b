"""A new benchmark is one module on tools/benchlib (docs/ARCHITECTURE.md,
"Adding a benchmark").

The test is that module: a toy benchmark (does a second D step per G step
cost half the step rate?) of two settings of the tiny Fashion-MNIST
pretraining, written here from benchlib's pieces alone. It trains its
cells, writes its table and claim, reads its rows back instead of training
again, and reports from its records once the run folders are gone.
"""

import dataclasses
import os
import shutil

import gin
import pytest

from tests.conftest import PRETRAIN
from tests.conftest import REPO
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tfgt.errors import UserInputError
from tools.benchlib import cells as cells_lib
from tools.benchlib import report
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs
from tools.benchlib import stats

# ---------------------------------------------------------------- the toy
# Setting -> its gin bindings; every setting trains the same config.
SETTINGS = {"one_d_step": ("train.d_steps = 1",),
            "two_d_steps": ("train.d_steps = 2",)}
NUM_STEPS = 2
# On one device, as `python -m tfgt.train` without --logical_cpus: tracing
# the mirrored step is not what the toy is about (conftest.run_training).
BINDINGS = TINY + SMALL_DATA + ["train.sample_every = 0",
                                "train.checkpoint_every = 2",
                                "make_strategy.name = 'default'"]


def toy_cells(seeds):
  """Every (setting, seed) at 8 images per class."""
  return [dataclasses.replace(cell, config=PRETRAIN,
                              params=SETTINGS[cell.name])
          for cell in cells_lib.method_cells(list(SETTINGS), [8], seeds)]


def toy_claims(rows, size):
  """The step rate of two D steps against one, seed by seed."""
  def rates(setting):
    return {seed: row.get("steps_per_sec") for seed, row in
            rows_lib.by_seed(rows, setting, size).items()}
  verdict, detail = stats.compare_paired(rates("two_d_steps"),
                                         rates("one_d_step"),
                                         higher_is_better=True)
  return [f"- {size}/class, two D steps against one, steps/s: {verdict}"
          f"{f' ({detail})' if detail else ''}."]


def run_toy(out_dir, seeds=(0,), report_only=False, record_dir=None):
  todo = toy_cells(seeds)
  rows = runs.train_cells(todo, out_dir, NUM_STEPS, [], BINDINGS,
                          rescore_samples=0, report_only=report_only,
                          record_dir=record_dir)
  report.write_results(out_dir, rows, report.markdown(
      rows, "pytest", claims=toy_claims, claims_intro="Toy claims:",
      left_out=cells_lib.unfinished(todo, rows)))
  gin.clear_config()
  return rows
# ------------------------------------------------------------ end of toy


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
  # Gin files include each other by paths relative to the repository.
  monkeypatch.chdir(REPO)


def test_a_toy_benchmark_trains_reports_and_reads_its_records(tmp_path):
  out_dir = str(tmp_path / "toy")
  records = str(tmp_path / "records")
  rows = run_toy(out_dir, record_dir=records)
  assert [(r["method"], r["seed"], r["num_steps"]) for r in rows] == [
      ("one_d_step", 0, 2), ("two_d_steps", 0, 2)]
  for row in rows:
    assert row["wall_time_s"] > 0 and row["g_trainable"] > 0
    assert "train.d_steps" in row["gin_config"]
  with open(os.path.join(out_dir, "results.md")) as f:
    text = f.read()
  assert "| one_d_step | 1 |" in text and "| two_d_steps | 1 |" in text
  assert ("Toy claims:\n- 8/class, two D steps against one, steps/s: "
          "fewer than 2 seeds.") in text
  # Run again: the rows are read back, nothing trains.
  assert run_toy(out_dir, record_dir=records) == rows
  # From the records alone, the run folders gone.
  shutil.rmtree(out_dir)
  assert run_toy(out_dir, report_only=True, record_dir=records) == rows
  # A report of runs that never finished is refused, not an empty table.
  with pytest.raises(UserInputError, match="Nothing to report"):
    run_toy(str(tmp_path / "none"), seeds=(5,), report_only=True,
            record_dir=records)
