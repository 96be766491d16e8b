"""Finished runs' rows: where they are kept and when one counts as done.

A finished cell's row is kept in its run folder (DONE_FILE) and, with
--record_dir, in <record_dir>/<run_name>.json, which outlives the run
folder: rows recorded in the repository give the tables on any machine. A
row counts for a command only when it holds the command's gin configuration
and number of steps (paths under the out_dir it ran in, such as a
self-alignment's, read under the command's --out_dir: `relocated_config`); the checks here refuse what would overwrite or resume
the rows of another configuration.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

from absl import logging

from tfgt import run_folder
from tfgt.errors import UserInputError
from tools.benchlib import cells as cells_lib
from tools.benchlib import measures

# A finished run's row, in its run folder.
DONE_FILE = "benchmark.json"


def record_path(record_dir: str, cell: cells_lib.Cell) -> str:
  """Where a benchmark keeps the row of a finished run outside its run
  folder (<record_dir>/<run_name>.json)."""
  return os.path.join(record_dir, f"{cell.run_name}.json")


def relocated_config(row: dict, out_dir: str | None) -> str | None:
  """The row's gin configuration (text) as if its run had trained under
  `out_dir`: the paths its bindings quote under the out_dir it ran in (the
  folder of its model_dir, e.g. the self-alignment `ALIGNED =
  '<out_dir>/align_b'` of tools.benchmark_hypermod) read under `out_dir`
  instead, so that a record reports from any --out_dir. The text itself
  without `out_dir` or when the row's out_dir is the same."""
  config = row.get("gin_config")
  ran_in = os.path.dirname(str(row.get("model_dir") or ""))
  if (out_dir is None or not ran_in or not isinstance(config, str) or
      os.path.normpath(ran_in) == os.path.normpath(out_dir)):
    return config
  for quote in ("'", '"'):
    config = config.replace(f"{quote}{ran_in}/", f"{quote}{out_dir}/")
  return config


def _layout_free(config: str | None) -> str | None:
  """A gin configuration's text without its layout: gin breaks a binding
  whose value is long (`NAME = \\` and the value on the next line), so a
  path of another length changes the lines, not the bindings."""
  if not isinstance(config, str):
    return config
  return " ".join(config.replace("\\\n", " ").split())


def same_configuration(row: dict, config: str, num_steps: int,
                       out_dir: str | None = None) -> bool:
  """A stored row was trained with this gin configuration (text, compared
  without its layout) and number of steps, its paths under its own out_dir
  read under `out_dir` (`relocated_config`): the one test of `read_done`
  and `check_records`."""
  return (_layout_free(relocated_config(row, out_dir)) ==
          _layout_free(config) and row.get("num_steps") == num_steps)


def read_done(model_dir: str, config: str, num_steps: int,
              record: str | None = None) -> dict | None:
  """The stored row of a finished run with this exact configuration.

  The run folder's DONE_FILE comes first; without it, the `record` file
  (see `record_path`), which outlives the run folder: a benchmark whose
  rows are recorded in the repository reports them on any machine.
  """
  for path in (os.path.join(model_dir, DONE_FILE), record):
    if not path or not os.path.exists(path):
      continue
    with open(path) as f:
      row = json.load(f)
    if same_configuration(row, config, num_steps,
                          os.path.dirname(model_dir)):
      logging.info("%s: finished before, reading its results from %s.",
                   model_dir, path)
      return row
    logging.info("%s: %s has another configuration.", model_dir, path)
  return None


def missing_scores(row: dict, rescore_samples: int | None,
                   extra_keys: Sequence[str]) -> list[str]:
  """The keys `runs.run_one` still has to score for `row`, in its order:
  the re-scoring (with `rescore_samples` != 0, of a run with a best step),
  the old classes' FID (with `rescore_samples` != 0), then `extra_keys`."""
  keys = []
  if rescore_samples != 0:
    if row.get("best_step") is not None:
      keys.append("rescored")
    keys.append("old_class_fid")
  return [k for k in keys + list(extra_keys) if k not in row]


def is_finished(cell: cells_lib.Cell, out_dir: str, num_steps: int | None,
                eval_gin: Sequence[str], gin_params: Sequence[str],
                extra_keys: Sequence[str] = (),
                record_dir: str | None = None,
                rescore_samples: int | None = (
                    measures.DEFAULT_RESCORE_SAMPLES)) -> bool:
  """The cell's run finished with this configuration and was scored (with
  the `extra_keys` of `runs.run_one`'s extra_scores too), by its run folder
  or its record in `record_dir`."""
  config, steps = cells_lib.cell_config(cell, num_steps, eval_gin,
                                        gin_params)
  row = read_done(os.path.join(out_dir, cell.run_name), config, steps,
                  record_path(record_dir, cell) if record_dir else None)
  return row is not None and not missing_scores(row, rescore_samples,
                                                extra_keys)


def record_clashes(cells: Sequence[cells_lib.Cell], num_steps: int | None,
                   eval_gin: Sequence[str], gin_params: Sequence[str],
                   record_dir: str, out_dir: str | None = None) -> list[str]:
  """The records of `cells` in <record_dir> that hold another configuration
  than this command's (under `out_dir`: `relocated_config`), as "<path>
  (<steps> steps)"."""
  clashes = []
  for cell in cells:
    path = record_path(record_dir, cell)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      row = json.load(f)
    if not same_configuration(row, *cells_lib.cell_config(
        cell, num_steps, eval_gin, gin_params), out_dir):
      clashes.append(f"{path} ({row.get('num_steps')} steps)")
  return clashes


def check_records(cells: Sequence[cells_lib.Cell], num_steps: int | None,
                  eval_gin: Sequence[str], gin_params: Sequence[str],
                  record_dir: str, out_dir: str | None = None) -> None:
  """Refuses to train a cell whose record holds another configuration.

  A finished run's row in <record_dir> is the only trace of it once its
  run folder is gone (the rows kept in the repository); training the cell
  again with other settings (e.g. --num_steps) would overwrite it.

  Raises:
    UserInputError: naming the records and the two ways out.
  """
  clashes = record_clashes(cells, num_steps, eval_gin, gin_params,
                           record_dir, out_dir)
  if clashes:
    raise UserInputError(
        f"The records {', '.join(clashes)} hold finished runs of another "
        "configuration than this command's, and training would overwrite "
        "them. Give another --record_dir (e.g. one per --num_steps) to keep "
        "both, or delete those records to replace them.")


def check_run_folders(cells: Sequence[cells_lib.Cell], out_dir: str,
                      num_steps: int | None, eval_gin: Sequence[str],
                      gin_params: Sequence[str],
                      record_dir: str | None = None) -> None:
  """Refuses to resume a run folder trained with another configuration.

  The trainer resumes a folder from its last checkpoint whatever the
  command's configuration: a cell asked for with another --num_steps or
  --gin_param would continue (or stop at once past) the old run and record
  it as the new one. A cell read back from a row of this configuration
  (its DONE_FILE or its record) trains nothing and is not refused.

  Raises:
    UserInputError: naming the folders and the two ways out.
  """
  clashes = []
  for cell in cells:
    model_dir = os.path.join(out_dir, cell.run_name)
    path = os.path.join(model_dir, run_folder.CONFIG)
    if not os.path.isfile(path):
      continue
    config, steps = cells_lib.cell_config(cell, num_steps, eval_gin,
                                          gin_params)
    with open(path, encoding="utf-8") as f:
      if f.read() == config:
        continue
    record = record_path(record_dir, cell) if record_dir else None
    if read_done(model_dir, config, steps, record) is None:
      clashes.append(model_dir)
  if clashes:
    raise UserInputError(
        ("The run folder {} holds a run" if len(clashes) == 1 else
         "The run folders {} hold runs").format(", ".join(clashes)) +
        " of another configuration than this command's (config.gin differs, "
        "e.g. another --num_steps or --gin_param); training would go on from "
        "the last checkpoint as this command's run. Give another --out_dir "
        "(one per protocol, like --record_dir) to keep both, or delete the "
        "folder to train again.")


def check_reportable(cells: Sequence[cells_lib.Cell],
                     is_done: Callable[[cells_lib.Cell], bool],
                     out_dir: str, num_steps: int | None,
                     eval_gin: Sequence[str], gin_params: Sequence[str],
                     record_dir: str | None = None) -> None:
  """Refuses a report (--report_only) in which no run finished with this
  command's configuration (`is_done`, the test `processes.run_cells`
  reports by): an empty table would look like a result.

  Raises:
    UserInputError: saying where it looked and, when records of another
      configuration are there, what to give to read them.
  """
  if any(is_done(c) for c in cells):
    return
  clashes = (record_clashes(cells, num_steps, eval_gin, gin_params,
                            record_dir, out_dir) if record_dir else [])
  raise UserInputError(
      f"Nothing to report: none of the {len(cells)} runs finished with this "
      f"command's configuration in --out_dir={out_dir}" +
      (f" or --record_dir={record_dir}" if record_dir else "") + "." +
      (f" The records {', '.join(clashes)} hold runs of another "
       "configuration: give the --num_steps, --gin_param and --eval_gin they "
       "ran with (each record's num_steps and gin_config)." if clashes else
       " Train them first (the same command without --report_only)."))
