"""A benchmark's cells in child processes, `--jobs` at a time.

Each child is the benchmark's own command (`cli.own_command`) for one cell
(`--only=<run>`), with one intra-op and one inter-op thread
(`tools.machine.one_thread_env`), so that two runs share 2 cores without
contention; it inherits this process's working directory, where
`python -m tools.<name>` finds the package.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
from typing import Callable, Sequence

from absl import logging

from tools import machine
from tools.benchlib import cells as cells_lib
from tools.benchlib import cli


def child_command(command: Sequence[str], cell: cells_lib.Cell) -> list[str]:
  """The command line of a child process that runs one cell: the
  benchmark's `command` (as `cli.own_command` gives it: interpreter,
  `-m`, module, flags) without --jobs and --only, plus --only=<cell> and
  --jobs=1."""
  keep = [a for a in command if not a.startswith(("--jobs", "--only"))]
  return keep + [f"--only={cell.run_name}", "--jobs=1"]


def run_in_children(cells: Sequence[cells_lib.Cell], command: Sequence[str],
                    out_dir: str, jobs: int) -> None:
  """Runs every cell in a child process (`child_command`), `jobs` at a
  time, each logging to <out_dir>/<run_name>.log.

  Raises:
    RuntimeError: a child process failed (its log is named).
  """
  env = machine.one_thread_env()

  def child(cell: cells_lib.Cell) -> tuple[cells_lib.Cell, int]:
    log = os.path.join(out_dir, f"{cell.run_name}.log")
    logging.info("Benchmark: %s in a child process (log %s).",
                 cell.run_name, log)
    with open(log, "a") as f:
      return cell, subprocess.call(child_command(command, cell), stdout=f,
                                   stderr=subprocess.STDOUT, env=env)

  failed = []
  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    for cell, code in pool.map(child, cells):
      if code:
        failed.append(f"{cell.run_name} (exit code {code}, log "
                      f"{os.path.join(out_dir, cell.run_name + '.log')})")
  if failed:
    raise RuntimeError("Benchmark runs failed: " + "; ".join(failed) +
                       ". Their checkpoints are kept: fix the cause and run "
                       "the same command again to resume them.")


def run_cells(cells: Sequence[cells_lib.Cell],
              run_fn: Callable[[cells_lib.Cell], dict],
              is_done: Callable[[cells_lib.Cell], bool], out_dir: str,
              jobs: int = 1, command: Sequence[str] | None = None,
              report_only: bool = False) -> list[dict]:
  """Runs every cell and returns their rows, in the order of `cells`.

  With jobs > 1, the cells that `is_done` does not accept run in child
  processes (`run_in_children` with `command`, by default this program's
  own), and their rows are then read back with `run_fn`. With
  `report_only`, nothing trains: the rows are those of the finished cells
  (the others are logged as pending).

  Raises:
    RuntimeError: a child process failed (its log is named).
  """
  if report_only:
    pending = [c.run_name for c in cells if not is_done(c)]
    if pending:
      logging.warning("Benchmark: not finished, left out of the report: %s.",
                      ", ".join(pending))
    cells = [c for c in cells if c.run_name not in pending]
  elif jobs > 1:
    run_in_children([c for c in cells if not is_done(c)],
                    command or cli.own_command(), out_dir, jobs)
  rows = []
  for cell in cells:
    logging.info("Benchmark: %s.", cell.run_name)
    rows.append(run_fn(cell))
  return rows
