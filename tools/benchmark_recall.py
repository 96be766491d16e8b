r"""Which setting of the main job raises recall without losing FID.

    python -m tools.benchmark_recall --out_dir=runs/benchmark_recall \
        [--settings=main,no_ema,ema_0.995,d_lr_4e-4,diffaugment] \
        [--seeds=0,1,2] [--images_per_class=100] [--num_steps=500] [--jobs=2] \
        [--report_only]

The main job (gin_configs/fashion_mnist/cgantransfer.gin: cGANTransfer,
100 images per class, G lr 2e-3) reaches a low FID at a recall far below
the source model's: its samples cover a small part of the new classes.
Every setting below changes one thing of the main job and trains it over
the same seeds (the seed of the image subset and of training), for
--num_steps steps with an evaluation every 50 (so that the best is rarely
the last); each run's best generator is re-scored on 10,000 samples
(precision, recall, density, coverage beside FID) as
`tools.benchmark_transfer` does, and each setting is compared with the
main job seed by seed (paired t-test; a difference counts at p < 0.05):

  main         the main job as shipped (EMA decay 0.99, D lr 1e-4)
  no_ema       the raw generator: train.ema_decay = 0
  ema_0.995    a longer EMA horizon: about 200 steps instead of 100
  d_lr_4e-4    D's learning rate x4
  diffaugment  DiffAugment (colour, translation, cutout) on D's inputs
               (cgantransfer_diffaugment.gin)
  mixed_bfloat16  the main job trained in mixed precision
               (train.precision = "mixed_bfloat16", docs/TRAINING.md):
               whether bfloat16 training loses FID or recall

Truncation is not a setting: the evaluator draws z ~ N(0, 1) untruncated.
Writes <out_dir>/results.{json,md} and curves_<size>.png; runs resume
across sessions like the other benchmarks'.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from absl import app
from absl import flags
import gin

from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import measures
from tools.benchlib import report
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs
from tools.benchlib import stats

# Setting -> (config under gin_configs/fashion_mnist/, its gin bindings).
SETTINGS = {
    "main": ("cgantransfer", ()),
    "no_ema": ("cgantransfer", ("train.ema_decay = 0.0",)),
    "ema_0.995": ("cgantransfer", ("train.ema_decay = 0.995",)),
    "d_lr_4e-4": ("cgantransfer", ("train.d_lr = 4e-4",)),
    "diffaugment": ("cgantransfer_diffaugment", ()),
    "mixed_bfloat16": ("cgantransfer",
                       ("train.precision = 'mixed_bfloat16'",)),
}
BASELINE = "main"
DEFAULT_SIZES = (100,)
DEFAULT_NUM_STEPS = 500
EVAL_EVERY = 50
CLAIMS_INTRO = (
    f"Each setting against {BASELINE}, seed by seed (the same image subsets "
    "and training seeds): the mean difference, its standard deviation and a "
    "two-sided paired t-test; a difference counts at p < 0.05 (recall: "
    "higher is better; FID: lower is better):")


def cells(settings: Sequence[str], sizes: Sequence[int],
          seeds: Sequence[int]) -> list[cells_lib.Cell]:
  """Every (setting, size, seed), sizes then seeds then settings.

  Raises:
    UserInputError: an unknown setting.
  """
  cli.check_known("settings", settings, list(SETTINGS))
  return [dataclasses.replace(
      cell, config=SETTINGS[cell.name][0],
      params=SETTINGS[cell.name][1] + (f"train.eval_every = {EVAL_EVERY}",))
          for cell in cells_lib.method_cells(settings, sizes, seeds)]


def recall_claims(rows: Sequence[dict], size: int) -> list[str]:
  """Every setting against the main job at one size: recall (higher is
  better) and FID (lower is better) of the best generator, seed by seed."""
  def values(setting: str, key: str) -> dict[int, float | None]:
    return {seed: rows_lib.result(r, key)
            for seed, r in rows_lib.by_seed(rows, setting, size).items()}
  lines = []
  settings = sorted({r["method"] for r in rows} - {BASELINE},
                    key=list(SETTINGS).index)
  for setting in settings:
    parts = []
    for key, name, higher in (("recall", "recall", True),
                              ("fid", "FID", False)):
      a, b = values(setting, key), values(BASELINE, key)
      if not any(v is not None for v in a.values()) or not any(
          v is not None for v in b.values()):
        continue
      verdict, detail = stats.compare_paired(a, b, higher_is_better=higher)
      parts.append(f"{name} {stats.fmt_stats(list(a.values()))} vs "
                   f"{stats.fmt_stats(list(b.values()))}: {verdict}"
                   f"{f' ({detail})' if detail else ''}")
    if parts:
      lines.append(f"- {size}/class, {setting} against {BASELINE}: " +
                   "; ".join(parts) + ".")
  return lines


def run_benchmark(out_dir: str, settings: Sequence[str] = tuple(SETTINGS),
                  sizes: Sequence[int] = DEFAULT_SIZES,
                  seeds: Sequence[int] = cells_lib.DEFAULT_SEEDS,
                  num_steps: int | None = DEFAULT_NUM_STEPS,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (), command: str = "",
                  rescore_samples: int | None = (
                      measures.DEFAULT_RESCORE_SAMPLES),
                  jobs: int = 1, only: str | None = None,
                  argv: Sequence[str] | None = None,
                  report_only: bool = False,
                  record_dir: str | None = None) -> list[dict]:
  """Runs every cell and writes the tables and curves (see the module
  docstring; `only`, `report_only` and `record_dir` as in
  `tools.benchmark_transfer.run_benchmark`)."""
  todo = cells(settings, sizes, seeds)
  rows = runs.train_cells(todo, out_dir, num_steps, eval_gin, gin_params,
                          rescore_samples, jobs, only, argv, report_only,
                          record_dir=record_dir)
  if not only:
    report.write_results(out_dir, rows, report.markdown(
        rows, command, report.COLUMNS, recall_claims, CLAIMS_INTRO,
        cells_lib.unfinished(todo, rows)))
    report.write_curves(rows, out_dir)
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  cli.define_common_flags("runs/benchmark_recall")
  flags.adopt_module_key_flags(cli)
  FLAGS.set_default("images_per_class", [str(s) for s in DEFAULT_SIZES])
  FLAGS.set_default("num_steps", DEFAULT_NUM_STEPS)
  flags.DEFINE_list("settings", list(SETTINGS),
                    f"Rows of the table: {', '.join(SETTINGS)}.")


def main(argv: Sequence[str]) -> None:
  cli.run_main(argv, run_benchmark, settings=FLAGS.settings)


if __name__ == "__main__":
  define_flags()
  app.run(main)
