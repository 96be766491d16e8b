"""`tools.benchmark_recall`: its cells, configs and verdicts."""

import gin
import pytest

from tests.conftest import REPO
from tfgt import config as config_lib
from tfgt.errors import UserInputError
from tools import benchmark_recall
from tools.benchlib import cells as cells_lib
from tools.benchlib import report


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
  # Gin files include each other by paths relative to the repository.
  monkeypatch.chdir(REPO)


def test_recall_benchmark_cells_configs_and_verdicts(monkeypatch):
  module = benchmark_recall
  cells = module.cells(["main", "no_ema", "diffaugment"], [100], [0, 1])
  assert [c.run_name for c in cells[:3]] == [
      "main_100_s0", "no_ema_100_s0", "diffaugment_100_s0"]
  with pytest.raises(UserInputError, match="Unknown settings \\['ema'\\]"):
    module.cells(["ema"], [100], [0])
  # Each setting is the main job (G lr 2e-3, not the transfer benchmark's
  # protocol) with its one change, evaluated every 50 steps.
  monkeypatch.chdir(REPO)
  bound = {}
  for cell in cells[:3]:
    gin.clear_config()
    config_lib.parse([cells_lib.config_path(cell.config)],
                     cells_lib.cell_params(cell, 500, []))
    bound[cell.name] = (gin.query_parameter("train.g_lr"),
                        gin.query_parameter("train.ema_decay"),
                        gin.query_parameter("train.eval_every"),
                        gin.query_parameter("train.num_steps"),
                        "DiffAugment" in gin.config_str())
  gin.clear_config()
  assert bound == {"main": (2e-3, 0.99, 50, 500, False),
                   "no_ema": (2e-3, 0.0, 50, 500, False),
                   "diffaugment": (2e-3, 0.99, 50, 500, True)}

  def row(setting, seed, fid, recall):
    return dict(method=setting, images_per_class=100, seed=seed,
                wall_time_s=60.0, best_fid=fid, best_step=500,
                rescored=dict(best=dict(fid=fid, recall=recall)))
  rows = [row("main", s, 5.0 + s, 0.10 + 0.01 * s) for s in range(3)] + [
      row("no_ema", s, 5.1 + s, 0.20 + 0.01 * s + 0.001 * s * s)
      for s in range(3)]
  (line,) = module.recall_claims(rows, 100)
  assert line.startswith("- 100/class, no_ema against main: recall "
                         "0.21 ± 0.01 vs 0.11 ± 0.01: better")
  assert "FID 6.10 ± 1.00 vs 6.00 ± 1.00: worse" in line
  text = report.markdown(rows, "cmd", report.COLUMNS, module.recall_claims,
                         module.CLAIMS_INTRO)
  assert "Each setting against main" in text and line in text
  assert "Claims of the paper" not in text
  # Mixed precision is one binding on the main job.
  (cell,) = module.cells(["mixed_bfloat16"], [100], [0])
  gin.clear_config()
  config_lib.parse([cells_lib.config_path(cell.config)],
                   cells_lib.cell_params(cell, 500, []))
  assert gin.query_parameter("train.precision") == "mixed_bfloat16"
  assert gin.query_parameter("train.g_lr") == 2e-3
  gin.clear_config()
