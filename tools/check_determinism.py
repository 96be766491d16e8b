r"""Trains one configuration twice, each time in a fresh process, and lists
the variables whose final checkpoints differ: does a run reproduce bit for bit?

    python -m tools.check_determinism --out_dir=runs/determinism \
        --gin_file=gin_configs/fashion_mnist/scratch.gin --num_steps=100 \
        [--gin_param=IMAGES_PER_CLASS=10] [--deterministic]

Both runs (<out_dir>/run0 and run1) train with `python -m tfgt.train` and one
intra-op and one inter-op thread, as each run of `tools.benchmark_transfer
--jobs` does, without an evaluator and with no sample grid before the last
step (neither draws training randomness, and the comparison needs neither).
`--deterministic` passes TensorFlow's op determinism on to both;
`--fixed_addresses` runs both without address-space layout randomisation
(`setarch -R`), for configurations whose round-off depends on where buffers
lie (scratch.gin's D update: docs/RESULTS.md). Printed: every
variable (checkpoint key) whose values differ, with its largest absolute
difference, then "N of M variables differ". Exit code 0 when none differs, 1
when some do, 2 when there is nothing to compare: bad input (no --gin_file,
--num_steps < 1, an out_dir that holds runs already) or a run that failed (its
log, <out_dir>/run<i>.log, ends with the trainer's message, printed here too).

Bisect with --num_steps: a difference that appears only after many steps is an
op whose round-off changes between processes; one after the first step is a
draw that is not seeded.
"""

import os
import subprocess
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from tools import machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bindings that keep the runs to training: no evaluator, no sample grids,
# one checkpoint at the end.
NO_EXTRAS = ("train.evaluator = None", "train.sample_every = 0")


def train_command(gin_files: Sequence[str], gin_params: Sequence[str],
                  model_dir: str, num_steps: int,
                  deterministic: bool) -> list[str]:
  """The `tfgt.train` command of one run."""
  command = [sys.executable, "-m", "tfgt.train", f"--model_dir={model_dir}"]
  command += [f"--gin_file={f}" for f in gin_files]
  params = list(gin_params) + list(NO_EXTRAS) + [
      f"train.num_steps = {num_steps}",
      f"train.checkpoint_every = {num_steps}"]
  command += [f"--gin_param={p}" for p in params]
  if deterministic:
    command.append("--deterministic")
  return command


def checkpoint_differences(dir_a: str, dir_b: str
                           ) -> tuple[list[tuple[str, float]], int]:
  """([(checkpoint key, largest absolute difference)], keys compared) of the
  latest checkpoints of two runs, over their numeric values (keys sorted).

  Raises:
    ValueError: a folder has no checkpoint, or the two hold other keys or
      shapes (not two runs of one configuration).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  readers = []
  for directory in (dir_a, dir_b):
    latest = tf.train.latest_checkpoint(directory)
    if latest is None:
      raise ValueError(f"No checkpoint in {directory}: did its run finish? "
                       "Its log is beside it.")
    readers.append(tf.train.load_checkpoint(latest))
  shapes = [r.get_variable_to_shape_map() for r in readers]
  if shapes[0] != shapes[1]:
    raise ValueError(f"{dir_a} and {dir_b} hold other variables or shapes: "
                     "they are not two runs of one configuration.")
  differences, compared = [], 0
  for key in sorted(shapes[0]):
    a, b = (np.asarray(r.get_tensor(key)) for r in readers)
    if a.dtype.kind not in "fiub":
      continue
    compared += 1
    if not np.array_equal(a, b):
      gap = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
      differences.append((key, float(gap)))
  return differences, compared


def run_twice(out_dir: str, gin_files: Sequence[str],
              gin_params: Sequence[str], num_steps: int,
              deterministic: bool = False,
              fixed_addresses: bool = False) -> tuple[list[str], list[str]]:
  """Trains <out_dir>/run0 and run1, one after the other in fresh processes
  with one thread each (and with `fixed_addresses`, without address-space
  layout randomisation); returns (their model dirs, their log paths).

  Raises:
    ValueError: out_dir holds runs already (the comparison needs two new
      runs), a run failed (its log is named), or fixed addresses cannot be
      had here.
  """
  dirs = [os.path.join(out_dir, f"run{i}") for i in range(2)]
  existing = [d for d in dirs if os.path.exists(d)]
  if existing:
    raise ValueError(f"{existing[0]} exists: give a new --out_dir, or remove "
                     "it, so that both runs start from nothing.")
  os.makedirs(out_dir, exist_ok=True)
  env = machine.one_thread_env()
  logs = []
  for directory in dirs:
    log = directory + ".log"
    logs.append(log)
    logging.info("Training %s (log %s).", directory, log)
    with open(log, "w") as f:
      command = train_command(gin_files, gin_params, directory, num_steps,
                              deterministic)
      if fixed_addresses:
        command = machine.with_fixed_addresses(command)
      code = subprocess.call(
          command,
          cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    if code:
      raise ValueError(f"The run {directory} failed (exit code {code}). The "
                       f"end of its log {log}:\n{_tail(log)}")
  return dirs, logs


def _tail(path: str, lines: int = 5) -> str:
  """The last lines of a log (the trainer's error is the last it writes)."""
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:]).rstrip()


def report(differences: Sequence[tuple[str, float]], compared: int) -> str:
  """The lines the tool prints."""
  lines = [f"differs: {key} (largest absolute difference {gap:.3g})"
           for key, gap in differences]
  lines.append(f"{len(differences)} of {compared} variables differ.")
  return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("out_dir", "runs/determinism",
                      "A new folder for the two runs.")
  flags.DEFINE_multi_string("gin_file", [], "Gin files of the runs.")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings.")
  flags.DEFINE_integer("num_steps", 100, "Training steps of each run.")
  flags.DEFINE_bool("deterministic", False,
                    "Train both with TensorFlow's op determinism.")
  flags.DEFINE_bool("fixed_addresses", False,
                    "Train both without address-space layout randomisation "
                    "(setarch -R), so that a kernel whose round-off depends "
                    "on buffer alignment repeats too.")


def main(argv: Sequence[str]) -> None:
  problems = []
  if len(argv) > 1:
    problems.append(f"Unexpected arguments: {argv[1:]}.")
  if not FLAGS.gin_file:
    problems.append("Give the configuration to check with --gin_file=FILE.gin.")
  if FLAGS.num_steps < 1:
    problems.append(f"--num_steps must be 1 or more, got {FLAGS.num_steps}.")
  if problems:
    logging.error("%s", " ".join(problems))
    sys.exit(2)
  try:
    dirs, _ = run_twice(FLAGS.out_dir, FLAGS.gin_file, FLAGS.gin_param,
                        FLAGS.num_steps, FLAGS.deterministic,
                        FLAGS.fixed_addresses)
    differences, compared = checkpoint_differences(*dirs)
  except ValueError as e:
    logging.error("%s", e)
    sys.exit(2)
  print(report(differences, compared))
  sys.exit(1 if differences else 0)


if __name__ == "__main__":
  define_flags()
  app.run(main)
