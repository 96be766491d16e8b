"""The command line of a benchmark: shared flags, input checks, exit codes.

Every benchmark runs as `python -m tools.<name>` from the repository root;
`own_command` is that command, which child processes (--jobs) and a restart
without address randomisation (--fixed_addresses) run again.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
from absl import logging

from tfgt import distribute
from tfgt import errors
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tools import machine
from tools.benchlib import cells as cells_lib
from tools.benchlib import measures
from tools.benchlib import report

FLAGS = flags.FLAGS


def define_common_flags(out_dir: str) -> None:
  """Flags that every benchmark of runs over seeds shares; `out_dir` is
  the default of --out_dir. A benchmark lists them in its --help with
  `flags.adopt_module_key_flags(cli)`."""
  flags.DEFINE_string("out_dir", out_dir, "Where the runs and results go.")
  flags.DEFINE_list("images_per_class",
                    [str(s) for s in cells_lib.DEFAULT_SIZES],
                    "Images per target class.")
  flags.DEFINE_list("seeds", [str(s) for s in cells_lib.DEFAULT_SEEDS],
                    "Seeds of the image subset and of training, per cell.")
  flags.DEFINE_integer("num_steps", None,
                       "Overrides train.num_steps of every config.")
  flags.DEFINE_multi_string(
      "eval_gin", [os.path.join(cells_lib.CONFIG_DIR, "eval.gin")],
      "Gin files binding train.evaluator (empty: none).")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings.")
  flags.DEFINE_integer("rescore_samples", measures.DEFAULT_RESCORE_SAMPLES,
                       "Samples for re-scoring the best and the final "
                       "generator of each run (0: none; -1: as many as "
                       "real images).")
  flags.DEFINE_integer("jobs", 1, "Runs at a time, in child processes with "
                       "one intra-op thread each (1: in this process).")
  flags.DEFINE_string("only", None, "Run this one cell (<method>_<images>_s"
                      "<seed>) and write no tables (used by --jobs).")
  flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many "
                       "logical devices.")
  flags.DEFINE_bool("report_only", False, "Train nothing: write the tables "
                    "and figures of the runs finished so far.")
  flags.DEFINE_bool("fixed_addresses", False, "Run this benchmark and its "
                    "child processes without address-space layout "
                    "randomisation (setarch -R), so that a run repeats bit "
                    "for bit where a kernel's round-off depends on buffer "
                    "alignment (docs/RESULTS.md).")
  flags.DEFINE_string("record_dir", None, "Also keep each finished run's row "
                      "in <record_dir>/<run>.json, and count a run recorded "
                      "there with the same configuration as finished when "
                      "its folder is gone (e.g. a folder of the repository, "
                      "so that the tables come back on another machine).")


def rescore_flag() -> int | None:
  """--rescore_samples as `runs.run_one` takes it (-1: None, all)."""
  return None if FLAGS.rescore_samples < 0 else FLAGS.rescore_samples


def own_command() -> list[str]:
  """The command line that started this program, as a child runs it:
  [python, "-m", <module>, <arguments>...] (the script's path for a
  program not started with -m)."""
  spec = getattr(sys.modules["__main__"], "__spec__", None)
  program = ["-m", spec.name] if spec and spec.name else sys.argv[:1]
  return [sys.executable] + program + sys.argv[1:]


def command_text() -> str:
  """This program's command line as a user types it, for the reports:
  "python -m tools.benchmark_transfer --out_dir=..."."""
  return " ".join(["python"] + own_command()[1:])


def whole_numbers(flag: str, values: Sequence[str],
                  minimum: int = 0) -> list[int]:
  """The integers of a list flag (e.g. --seeds=0,1,2).

  Raises:
    UserInputError: a value is not a whole number >= `minimum`.
  """
  try:
    numbers = [int(v) for v in values]
  except ValueError:
    numbers = None
  if not numbers or min(numbers) < minimum:
    raise UserInputError(
        f"--{flag}={','.join(values)}: give whole numbers >= {minimum} "
        "separated by commas, e.g. --images_per_class=10,25,100 or "
        "--seeds=0,1,2.")
  return numbers


def make_out_dir(path: str, flag: str = "out_dir") -> None:
  """Creates a folder a flag names.

  Raises:
    UserInputError: the path (or a parent) is a file.
  """
  try:
    os.makedirs(path, exist_ok=True)
  except (FileExistsError, NotADirectoryError) as e:
    raise UserInputError(f"--{flag}={path} is a file, or inside one: give "
                         "a folder.") from e


def check_known(kind: str, names: Sequence[str], known: Sequence[str]
                ) -> None:
  """Refuses names (of `kind`, e.g. "methods") that are not in `known`.

  Raises:
    UserInputError: naming the unknown ones and the choices.
  """
  unknown = [n for n in names if n not in known]
  if unknown:
    raise UserInputError(f"Unknown {kind} {unknown}; choose from "
                         f"{', '.join(known)}.")


@contextlib.contextmanager
def command_line_errors():
  """Exits as tfgt.train does: 2 with the message for bad input, 130 on
  Ctrl-C and 143 on SIGTERM (the runs have saved their checkpoints)."""
  try:
    yield
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  except KeyboardInterrupt:
    sys.exit(130)
  except train_lib.Interrupted:
    sys.exit(143)


def fix_addresses_if_asked() -> None:
  """With --fixed_addresses, runs this program again under `setarch -R`
  (once: the new process has the personality already); its child processes
  inherit it. Exits 2 where that cannot be had."""
  if not FLAGS.fixed_addresses or machine.addresses_fixed():
    return
  try:
    command = machine.with_fixed_addresses(own_command())
  except ValueError as e:
    logging.error("%s", e)
    sys.exit(2)
  logging.info("Running again without address randomisation: %s",
               " ".join(command[:3]))
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(command[0], command)


def run_main(argv: Sequence[str], run_benchmark: Callable[..., Any],
             **own: Any) -> None:
  """The `main` of a benchmark over seeds: refuses extra arguments, honours
  --fixed_addresses and --logical_cpus, calls `run_benchmark` with the
  shared flags (`define_common_flags`) as its keyword arguments and `own`
  (the benchmark's own flags), exits as `command_line_errors` says, and
  prints the results unless --only ran one cell.

  Raises:
    app.UsageError: arguments besides the flags.
  """
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  fix_addresses_if_asked()
  distribute.split_cpu(FLAGS.logical_cpus)
  with command_line_errors():
    run_benchmark(
        FLAGS.out_dir,
        sizes=whole_numbers("images_per_class", FLAGS.images_per_class, 1),
        seeds=whole_numbers("seeds", FLAGS.seeds),
        num_steps=FLAGS.num_steps,
        eval_gin=[g for g in FLAGS.eval_gin if g],
        gin_params=FLAGS.gin_param, command=command_text(),
        rescore_samples=rescore_flag(), jobs=FLAGS.jobs, only=FLAGS.only,
        argv=own_command(), report_only=FLAGS.report_only,
        record_dir=FLAGS.record_dir, **own)
  if not FLAGS.only:
    report.print_results(FLAGS.out_dir)
