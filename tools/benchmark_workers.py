r"""Images per second of one process against two local worker processes.

    python -m tools.benchmark_workers [--settings=fashion_mnist,cifar]
        [--steps=20] [--repeats=2] [--out=FILE.md]

Each case trains `--steps` measured steps (after one tracing step) of a
setting of `tools.benchmark_step` on synthetic data of its shape, with the
real trainer: once in one process (one device), once as two workers of a
MultiWorkerMirroredStrategy cluster on loopback ports
(`tools.launch_local_workers`) with the same global batch. The two kinds of
run alternate, `--repeats` times each, and the table gives each rate and
the ratio two workers / one process, per repeat and as the mean.

On one machine the workers share its cores, so the ratio measures what the
collective path costs (gRPC all-reduces of gradients and batch-norm
statistics between processes), not a speed-up; on a cluster each worker
brings its own cores (docs/DISTRIBUTED.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging
import gin

from tools import benchmark_step
from tools import launch_local_workers
from tools import machine
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools): `tools.benchmark_step`'s (--settings, --steps and
  --out are this tool's too) and its own."""
  benchmark_step.define_flags()
  flags.DEFINE_integer("repeats", 2, "Runs of each kind per setting.")
  flags.DEFINE_string("case", None, "Internal: train this setting in this "
                      "process (a worker or the single process).")
  flags.DEFINE_string("result", None, "Internal: where the chief writes its "
                      "rate.")


def train_case(setting: str, steps: int, result: str) -> None:
  """Trains one case in this process; the chief writes {"images_per_sec"}."""
  # pylint: disable=g-import-not-at-top
  from tfgt import distribute
  from tfgt import files
  from tfgt import train as train_lib
  # pylint: enable=g-import-not-at-top
  gin.parse_config(benchmark_step.case_bindings(setting, steps))
  strategy = distribute.make_strategy()
  with tempfile.TemporaryDirectory() as model_dir:
    metrics = train_lib.train(model_dir, strategy=strategy)
  if distribute.worker_role(strategy).is_chief:
    files.write_json(result, {
        "images_per_sec": metrics["images_per_sec"],
        "replicas": strategy.num_replicas_in_sync})


def _run(setting: str, workers: int, out_dir: str) -> float:
  result = os.path.join(out_dir, f"{setting}_{workers}_{time.time():.0f}.json")
  command = [sys.executable, "-m", __spec__.name, f"--case={setting}",
             f"--steps={FLAGS.steps}", f"--result={result}"]
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  start = time.time()
  if workers == 1:
    code = subprocess.run(command, env=env, check=False).returncode
  else:
    code = launch_local_workers.launch(
        command, workers, os.path.join(out_dir, "worker_logs"), env=env)
  if code:
    raise RuntimeError(f"{setting} with {workers} process(es) failed "
                       f"(status {code}).")
  with open(result) as f:
    rate = json.load(f)["images_per_sec"]
  logging.info("%s, %d process(es): %.1f images/s (%.0f s in all).", setting,
               workers, rate, time.time() - start)
  return rate


def main(argv):
  del argv
  if FLAGS.case:
    train_case(FLAGS.case, FLAGS.steps, FLAGS.result)
    return
  rows = []
  with tempfile.TemporaryDirectory() as out_dir:
    for setting in FLAGS.settings:
      ratios = []
      for repeat in range(FLAGS.repeats):
        # Alternate which kind goes first, so that a drift of the machine's
        # load does not favour one.
        order = (1, 2) if repeat % 2 == 0 else (2, 1)
        rates = {w: _run(setting, w, out_dir) for w in order}
        ratios.append(rates[2] / rates[1])
        rows.append(f"| {setting} | {repeat + 1} | {rates[1]:.1f} | "
                     f"{rates[2]:.1f} | {ratios[-1]:.2f} |")
      rows.append(f"| {setting} | mean | | | "
                  f"{sum(ratios) / len(ratios):.2f} |")
  table = "\n".join(
      ["Images/s, one process vs two local workers on "
       f"{machine.cpu_description()} ({FLAGS.steps} measured steps per run):",
       "",
       "| setting | run | 1 process | 2 workers | 2 workers / 1 process |",
       "|---|---|---|---|---|"] + rows)
  print(table)
  if FLAGS.out:
    from tfgt import files  # pylint: disable=g-import-not-at-top
    files.write_text(FLAGS.out, table + "\n")


if __name__ == "__main__":
  define_flags()
  app.run(main)
