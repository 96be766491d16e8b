"""One cell trained, resumed or read back, and scored; and all of a
benchmark's cells, the one way every benchmark of runs over seeds runs them.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

from absl import logging
import gin

from tfgt import evaluate
from tfgt import files
from tfgt import run_events
from tfgt import run_folder
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tools import machine
from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import measures
from tools.benchlib import processes
from tools.benchlib import records


def _trained_row(cell: cells_lib.Cell, model_dir: str, config: str,
                 steps: int, metrics: dict) -> dict:
  """The row of a run that has just trained: its cell, configuration,
  wall time and rate, CPU, best and final FID and FID history, and the
  method's trained values (`measures.trainable_parameters`, with gin still
  bound to the run's configuration)."""
  row = dict(method=cell.name, images_per_class=cell.images_per_class,
             seed=cell.seed, model_dir=model_dir, num_steps=steps,
             gin_config=config,
             wall_time_s=run_events.training_wall_time(model_dir),
             steps_per_sec=metrics.get("steps_per_sec"),
             intra_op_threads=measures.intra_op_threads(),
             cpu=machine.cpu_description(),
             best_fid=None, best_step=None, final_fid=None)
  best_path = os.path.join(model_dir, run_folder.BEST)
  if os.path.exists(best_path):
    with open(best_path) as f:
      best = json.load(f)
    row.update(best_fid=best.get("fid"), best_step=best.get("step"))
  history = run_events.history(model_dir)
  if history:
    row["final_fid"] = history[-1][1]
    row["fid_history"] = history
  row.update(measures.trainable_parameters(model_dir))
  return row


def run_one(cell: cells_lib.Cell, out_dir: str, num_steps: int | None,
            eval_gin: Sequence[str], gin_params: Sequence[str],
            rescore_samples: int | None = measures.DEFAULT_RESCORE_SAMPLES,
            train_fn: Callable[[str], dict] | None = None,
            extra_scores: dict[str, Callable[[str], object]] | None = None,
            record_dir: str | None = None) -> dict:
  """Trains (or reads) one run and returns its row.

  A run whose row (`records.DONE_FILE`) was written with the same gin
  configuration is read back; an interrupted run resumes from its
  checkpoint. The wall time comes from the run's TensorBoard events, so it
  covers every session of a resumed run. With `rescore_samples`, the best
  and the final generator are scored again on that many samples (None: as
  many as real images) with the run's evaluator and
  `measures.RESCORE_METRICS`: the best FID during training is the minimum
  of noisy estimates on fewer samples.

  Args:
    cell: the run.
    out_dir: the benchmark's folder; the run's is <out_dir>/<run_name>.
    num_steps: overrides train.num_steps (None: the config's).
    eval_gin: gin files binding the evaluator.
    gin_params: the benchmark's gin bindings (`cells.cell_params`).
    rescore_samples: samples of the re-scoring (0: none).
    train_fn: trains the configured run into a folder (default
      `tfgt.train.train`); returns the trainer's metrics.
    extra_scores: {row key: fn(model_dir) -> JSON-able value}, computed
      for a finished run that does not have the key yet.
    record_dir: also keep the finished row in <record_dir>/<run_name>.json
      and read it from there when the run folder is gone
      (`records.read_done`).

  Returns:
    The row (JSON-able dict).

  Raises:
    ValueError: the row lacks scores and its run folder is gone.
    UserInputError: a bad config or binding.
  """
  model_dir = os.path.join(out_dir, cell.run_name)
  record = records.record_path(record_dir, cell) if record_dir else None
  cells_lib.parse(cell, num_steps, eval_gin, gin_params)
  config = gin.config_str()
  steps = gin.query_parameter("train.num_steps")
  done_path = os.path.join(model_dir, records.DONE_FILE)
  row = records.read_done(model_dir, config, steps, record)
  if row is None:
    metrics = (train_fn or train_lib.train)(model_dir)
    row = _trained_row(cell, model_dir, config, steps, metrics)
    files.write_json(done_path, row)
  missing = records.missing_scores(row, rescore_samples,
                                   tuple(extra_scores or ()))
  if missing and not os.path.isdir(model_dir):
    raise ValueError(
        f"{cell.run_name}: its row in {record} has no {', '.join(missing)}, "
        f"and its run folder {model_dir} (which those are scored from) is "
        "gone. Delete the record to train the run again, or run without the "
        "options that ask for those scores.")
  scorers = {"rescored": lambda d: measures.rescore(d, rescore_samples),
             "old_class_fid": lambda d: evaluate.old_class_fid(
                 d, rescore_samples),
             **(extra_scores or {})}
  for key in missing:
    logging.info("%s: scoring %s.", cell.run_name, key)
    row[key] = scorers[key](model_dir)
    files.write_json(done_path, row)
  if record:
    cli.make_out_dir(record_dir, "record_dir")
    files.write_json(record, row)
  gin.clear_config()
  return row


def _check_before_training(cells: Sequence[cells_lib.Cell], out_dir: str,
                           num_steps: int | None, eval_gin: Sequence[str],
                           gin_params: Sequence[str], report_only: bool,
                           record_dir: str | None,
                           is_done: Callable[[cells_lib.Cell], bool]
                           ) -> None:
  """The refusals of `train_cells`, before anything trains or any folder
  is made (but the out_dir).

  Raises:
    UserInputError: see `train_cells`.
  """
  for config in sorted({c.config for c in cells}):
    cells_lib.config_path(config)
  if report_only and record_dir and not os.path.isdir(record_dir):
    raise UserInputError(
        f"--record_dir={record_dir} does not exist, so there are no records "
        "to report: check the path (the repository's records are in "
        "docs/benchmarks/<benchmark>), or leave the flag out to report the "
        "runs of --out_dir.")
  cli.make_out_dir(out_dir)
  if report_only:
    records.check_reportable(cells, is_done, out_dir, num_steps, eval_gin,
                             gin_params, record_dir)
  else:
    if record_dir:
      records.check_records(cells, num_steps, eval_gin, gin_params,
                            record_dir, out_dir)
    records.check_run_folders(cells, out_dir, num_steps, eval_gin,
                              gin_params, record_dir)


def train_cells(cells: Sequence[cells_lib.Cell], out_dir: str,
                num_steps: int | None, eval_gin: Sequence[str],
                gin_params: Sequence[str],
                rescore_samples: int | None = (
                    measures.DEFAULT_RESCORE_SAMPLES),
                jobs: int = 1, only: str | None = None,
                argv: Sequence[str] | None = None, report_only: bool = False,
                extra_scores: dict[str, Callable[[str], object]] | None = None,
                record_dir: str | None = None) -> list[dict]:
  """The rows of `cells` (those `only` names, when given): each trained,
  resumed or read back by `run_one`, `jobs` at a time
  (`processes.run_cells`, whose children run `argv`: by default this
  program's own command, `cli.own_command`).

  The one way every benchmark of this kind runs its cells; the other
  arguments are `run_one`'s. Raises what `run_one` and
  `processes.run_cells` raise, and before anything trains or any folder is
  made, UserInputError for an unknown method, a missing --record_dir of a
  report, a report with nothing finished (`records.check_reportable`), and
  the clashes that `records.check_records` and
  `records.check_run_folders` find.
  """
  cells = cells_lib.select(cells, only)

  def is_done(cell: cells_lib.Cell) -> bool:
    return records.is_finished(cell, out_dir, num_steps, eval_gin,
                               gin_params, tuple(extra_scores or ()),
                               record_dir, rescore_samples)

  _check_before_training(cells, out_dir, num_steps, eval_gin, gin_params,
                         report_only, record_dir, is_done)
  return processes.run_cells(
      cells,
      lambda c: run_one(c, out_dir, num_steps, eval_gin, gin_params,
                        rescore_samples, extra_scores=extra_scores,
                        record_dir=record_dir),
      is_done, out_dir, jobs if not only else 1, argv,
      report_only=report_only)
