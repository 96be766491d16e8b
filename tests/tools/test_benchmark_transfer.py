"""`tools.benchmark_transfer`'s machinery without training: input checks,
the claims' verdicts, the tables of the shipped records, cells and the
commands of child processes. Its runs through the full trainer are in
tests/methods/test_methods.py (the tiny cGANTransfer benchmark run)."""

import glob
import importlib.util
import os
import re
import sys
import types

import gin
import numpy as np
import pytest

from tests.conftest import REPO
from tfgt import config as config_lib
from tfgt.errors import UserInputError
from tools import benchmark_transfer
from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import processes
from tools.benchlib import rows as rows_lib
from tools.benchlib import stats


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
  # Gin files include each other by paths relative to the repository.
  monkeypatch.chdir(REPO)


def test_benchmark_bad_input_says_the_fix(tmp_path):
  assert cli.whole_numbers("seeds", ["0", "2"]) == [0, 2]
  for flag, values in (("images_per_class", ["abc"]), ("seeds", [""]),
                       ("images_per_class", ["0"])):
    with pytest.raises(UserInputError, match=f"--{flag}=.*give whole numbers"):
      cli.whole_numbers(flag, values, 1)
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  for path in (a_file, a_file / "runs"):
    with pytest.raises(UserInputError, match=f"{path} is a file.*give a "
                       "folder"):
      cli.make_out_dir(str(path))
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    out_dir = str(tmp_path / "runs")
    # A misspelt method: the choices, and no folder made.
    with pytest.raises(UserInputError, match=r"'cgantransfr'\. The nearest "
                       r"configs there are cgantransfer, "):
      benchmark_transfer.run_benchmark(out_dir, ["cgantransfr"], [10])
    # A report from a record folder that does not exist.
    with pytest.raises(UserInputError, match=r"--record_dir=docs/benchmark/"
                       r"transfer does not exist"):
      benchmark_transfer.run_benchmark(
          out_dir, ["cgantransfer"], [10], report_only=True,
          record_dir="docs/benchmark/transfer")
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert not os.path.exists(out_dir)


def test_benchmark_claims_compare_variants_with_cgantransfer():
  """A method outside the paper's table (DiffAugment) is compared with
  cGANTransfer seed by seed, on FID (lower is better) and recall."""

  def row(method, seed, fid, recall):
    return dict(method=method, images_per_class=10, seed=seed, best_fid=fid,
                best_step=100, final_fid=fid, fid_history=[[100, fid]],
                rescored=dict(best=dict(fid=fid, recall=recall)))

  rows = [row("cgantransfer", s, f, r) for s, f, r in
          ((0, 7.0, 0.02), (1, 8.0, 0.03), (2, 12.0, 0.01))]
  rows += [row("cgantransfer_diffaugment", s, f, r) for s, f, r in
           ((0, 6.0, 0.06), (1, 7.1, 0.07), (2, 10.9, 0.05))]
  lines = benchmark_transfer.transfer_claims(rows, 10)
  line, = [l for l in lines if "cgantransfer_diffaugment" in l]
  assert line.startswith(
      "- 10/class: cgantransfer_diffaugment against cGANTransfer, over the "
      "seeds both have (0, 1, 2): FID 8.00 ± 2.57 vs 9.00 ± 2.65: better "
      "(paired over 3 seeds: difference -1.00 ± 0.10")
  assert "; recall 0.06 ± 0.01 vs 0.02 ± 0.01: better (" in line
  # Over the seeds both have: cGANTransfer's seed 2 is left out of its mean.
  line, = [l for l in benchmark_transfer.transfer_claims(rows[:-1], 10)
           if "cgantransfer_diffaugment" in l]
  assert "have (0, 1): FID 6.55 ± 0.78 vs 7.50 ± 0.71: " in line
  # The paper's own methods are not compared this way.
  assert not benchmark_transfer.transfer_claims(rows[:3], 10)


# The records kept in the repository and the report that rebuilds
# docs/RESULTS.md's tables from them: (record folder, methods, sizes, steps).
SHIPPED_RECORDS = (
    ("transfer", ("cgantransfer", "bsa", "transfergan", "scratch"),
     (10, 25, 100), None),
    ("transfer_2400", ("cgantransfer", "bsa", "scratch"), (100,), 2400),
    ("transfer_diffaugment", ("cgantransfer", "cgantransfer_diffaugment"),
     (10,), None),
)


@pytest.mark.parametrize("folder,methods,sizes,num_steps", SHIPPED_RECORDS,
                         ids=[r[0] for r in SHIPPED_RECORDS])
def test_shipped_records_give_the_tables_of_results(folder, methods, sizes,
                                                    num_steps, tmp_path):
  """Every record of seeds 0-2 in docs/benchmarks/<folder> is a finished run
  of today's configs, and --report_only on them gives the FID figures
  docs/RESULTS.md prints: the tables are measured, not typed. (Seeds added
  later, 3 and up, are reported beside those tables.)"""
  records = os.path.join(REPO, "docs", "benchmarks", folder)
  rows = benchmark_transfer.run_benchmark(
      str(tmp_path), list(methods), list(sizes), num_steps=num_steps,
      eval_gin=[os.path.join(cells_lib.CONFIG_DIR, "eval.gin")],
      seeds=(0, 1, 2), report_only=True, record_dir=records)
  assert len(rows) == len(methods) * len(sizes) * 3
  assert len(glob.glob(os.path.join(records, "*_s[012].json"))) == len(rows)
  with open(os.path.join(REPO, "docs", "RESULTS.md")) as f:
    results = f.read()
  for (method, size), group in rows_lib.group(rows).items():
    fid = stats.fmt_stats([rows_lib.score(r) for r in group])
    assert re.search(rf"^\| [^|]+ \| (3 \| )?{re.escape(fid)} \|", results,
                     re.MULTILINE), (folder, method, size, fid)


def test_benchmark_claims_compare_convergence():

  def row(method, history, seed=0):
    best_step, best_fid = min(history, key=lambda sf: sf[1])
    return dict(method=method, images_per_class=100, seed=seed,
                best_fid=best_fid, best_step=best_step, wall_time_s=60.0,
                g_trainable=20, g_per_new_class=10.0,
                final_fid=history[-1][1],
                fid_history=[list(h) for h in history])

  ours = row("cgantransfer", [[100, 30.0], [200, 12.0], [300, 13.0]])
  bsa = row("bsa", [[100, 50.0], [200, 25.0], [300, 16.0], [400, 11.0],
                    [500, 14.0]])
  assert rows_lib.fid_at(bsa, 200) == 25.0 and rows_lib.fid_at(bsa, 250) == 25.0
  assert rows_lib.fid_at(bsa, 50) is None
  assert rows_lib.first_step_reaching(bsa, 12.0) == 400
  assert rows_lib.first_step_reaching(ours, 11.0) is None
  # float32 history against a float64 best of the same value.
  assert rows_lib.first_step_reaching(
      bsa, float(np.float32(11.0)) - 1e-7) == 400
  text = benchmark_transfer.markdown([ours, bsa], "cmd")
  assert "| cgantransfer | 1 | 12.00 | - | - | - | - | 200 | 13.00 |" in text
  assert "| bsa | 1 | 11.00 |" in text
  assert "cGANTransfer FID 12.00 vs BSA 11.00: fewer than 2 seeds." in text
  assert ("seed 0: iterations to reach FID 12.00 during training: "
          "cGANTransfer 200, BSA 400; iteration of the best FID 200 vs 400; "
          "BSA at iteration 200 (BSA-early): 25.00.") in text
  assert "BSA needed 2.0x the iterations (the paper reports >= 3x)." in text
  # Two more seeds: the spreads decide.
  rows = [ours, bsa,
          row("cgantransfer", [[100, 20.0], [200, 13.0]], seed=1),
          row("cgantransfer", [[100, 20.0], [200, 14.0]], seed=2),
          row("bsa", [[100, 40.0], [200, 21.0]], seed=1),
          row("bsa", [[100, 40.0], [200, 23.0]], seed=2)]
  text = benchmark_transfer.markdown(rows, "cmd")
  assert "| cgantransfer | 3 | 13.00 ± 1.00 |" in text
  # Seed by seed: 12 vs 11, 13 vs 21, 14 vs 23: the seeds disagree.
  assert ("vs BSA 18.33 ± 6.43: within the spread (paired over 3 seeds: "
          "difference -5.33 ± 5.51, p = 0.24).") in text
  rows[1] = row("bsa", [[100, 50.0], [200, 22.0]])
  # 12 vs 22, 13 vs 21, 14 vs 23: -10, -8, -9.
  assert ("BSA 22.00 ± 1.00: better (paired over 3 seeds: difference "
          "-9.00 ± 1.00, p = 0.0041).") in benchmark_transfer.markdown(
              rows, "cmd")
  # Means within each other's spread, differences all of one sign: decided.
  assert stats.compare_paired({0: 5.0, 1: 8.0, 2: 11.0},
                               {0: 6.0, 1: 9.1, 2: 11.9})[0] == "better"
  assert stats.compare_paired({0: 1.0, 1: 2.0}, {0: 5.0, 1: 6.0},
                               higher_is_better=True)[0] == "worse"
  assert stats.compare_paired({0: 1.0, 1: 2.0}, {0: 1.0, 2: 6.0}) == (
      "fewer than 2 seeds", "")
  # A best at the last evaluation is marked: the run stopped improving only
  # because it stopped.
  bsa["fid_history"][-1][1] = 10.0
  bsa.update(best_fid=10.0, best_step=500)
  text = benchmark_transfer.markdown([ours, bsa], "cmd")
  assert "| bsa | 1 | 10.00 | - | - | - | - | 500 (1 at the end) |" in text
  assert "the run length bounds these figures" in text
  # Re-scored results win over the training estimates.
  ours["rescored"] = dict(num_samples=99, best=dict(fid=9.5, recall=0.25))
  text = benchmark_transfer.markdown([ours, bsa], "cmd")
  assert "| cgantransfer | 1 | 9.50 | - | 0.25 |" in text
  assert "99 samples" in text


def test_benchmark_cells_and_child_commands(tmp_path, monkeypatch):
  cells = cells_lib.method_cells(["cgantransfer", "scratch"], [25, 10],
                                 [0, 1])
  # Sizes, then seeds, then methods: a partial run has whole comparisons.
  assert [c.run_name for c in cells[:4]] == [
      "cgantransfer_25_s0", "scratch_25_s0", "cgantransfer_25_s1",
      "scratch_25_s1"]
  params = cells_lib.cell_params(cells[3], 7, ["A = 1"])
  assert params == ["A = 1", "IMAGES_PER_CLASS = 25", "train.seed = 1",
                    "load_training_data.subset_seed = 1",
                    "train.num_steps = 7"]
  # cGANTransfer runs at the paper's protocol, not its config's main-job
  # rate and length; --gin_param and --num_steps still win.
  assert cells_lib.cell_params(cells[2], 7, ["train.g_lr = 1e-3"]) == [
      "train.g_lr = 2e-4", "train.num_steps = 1200", "train.g_lr = 1e-3",
      "IMAGES_PER_CLASS = 25", "train.seed = 1",
      "load_training_data.subset_seed = 1", "train.num_steps = 7"]
  # So does a variant of its config, through its includes, at any depth.
  variant = cells_lib.Cell("cgantransfer_diffaugment",
                           "cgantransfer_diffaugment", 10)
  assert cells_lib.protocol(variant) == cells_lib.PROTOCOL["cgantransfer"]
  deeper = tmp_path / "deeper.gin"
  deeper.write_text(
      "# a user's variant\n"
      "include 'gin_configs/fashion_mnist/cgantransfer_diffaugment.gin'\n")
  assert cells_lib.protocol(cells_lib.Cell("deeper", str(deeper), 10)) == (
      cells_lib.PROTOCOL["cgantransfer"])
  assert cells_lib.protocol(cells_lib.Cell("bsa", "bsa", 10)) == ()
  monkeypatch.chdir(REPO)
  gin.clear_config()
  config_lib.parse([cells_lib.config_path(variant.config)],
                   cells_lib.cell_params(variant, None, []))
  assert (gin.query_parameter("train.g_lr"),
          gin.query_parameter("train.num_steps")) == (2e-4, 1200)
  assert "DiffAugment" in gin.config_str()
  gin.clear_config()
  command = processes.child_command(
      [sys.executable, "-m", "tools.benchmark_transfer", "--jobs=2",
       "--seeds=0,1", "--only=x"], cells[3])
  assert command == [sys.executable, "-m", "tools.benchmark_transfer",
                     "--seeds=0,1", "--only=scratch_25_s1", "--jobs=1"]
  # A benchmark started as `python -m tools.<name>` (whose argv[0] is then
  # the module's path) starts its children, and names itself in its report,
  # with -m too.
  main = types.ModuleType("__main__")
  main.__spec__ = importlib.util.find_spec("tools.benchmark_transfer")
  monkeypatch.setitem(sys.modules, "__main__", main)
  monkeypatch.setattr(sys, "argv", [main.__spec__.origin, "--seeds=0,1"])
  assert cli.own_command() == [sys.executable, "-m",
                               "tools.benchmark_transfer", "--seeds=0,1"]
  assert cli.command_text() == (
      "python -m tools.benchmark_transfer --seeds=0,1")
  assert cells_lib.select(cells, "scratch_10_s0") == [cells[5]]
  with pytest.raises(UserInputError, match="--only='scratch_5_s0' is not a "
                     "run of this benchmark; its runs are cgantransfer_25_s0"):
    cells_lib.select(cells, "scratch_5_s0")
