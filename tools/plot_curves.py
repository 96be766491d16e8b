r"""Evaluation curves of several runs against the training step.

    python -m tools.plot_curves --metric=mfid --out=curves.png \
        --runs="aligned=runs/hypermod/transfer,unaligned=runs/unaligned" \
        [--logdir=<TensorBoard dir>]

Reads the metric every run's trainer logged (`eval/<metric>` in its
TensorBoard events, all sessions of a resumed run) and draws one line per run,
metric against step: the paper's Fig. 7d (mFID with and without
self-alignment) or any comparison of runs. Writes the PNG and, with
--logdir, the same picture as a TensorBoard image (`curves/<metric>`).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from tfgt import errors
from tfgt import run_events
from tfgt import run_folder
from tfgt.errors import UserInputError
from tools.benchlib import figures


def parse_runs(values: Sequence[str]) -> list[tuple[str, str]]:
  """--runs values "label=model_dir" (or a bare model_dir, labelled by its
  folder name) as (label, model_dir) pairs.

  Raises:
    UserInputError: no runs, or a label given twice.
  """
  runs = []
  for value in values or []:
    label, sep, path = value.partition("=")
    if not sep:
      label, path = os.path.basename(os.path.normpath(value)), value
    runs.append((label.strip(), path.strip()))
  labels = [label for label, _ in runs]
  if not runs or len(set(labels)) != len(labels):
    raise UserInputError(
        f"--runs={','.join(values or [])!r}: give one or more distinct "
        "label=model_dir pairs, e.g. "
        "--runs=\"aligned=runs/a,unaligned=runs/b\".")
  return runs


def curves(runs: Sequence[tuple[str, str]], metric: str
           ) -> dict[str, list[list]]:
  """{label: [[step, value], ...]} of `eval/<metric>` of each run.

  Raises:
    UserInputError: a run with no evaluation of that metric.
  """
  out = {}
  for label, model_dir in runs:
    history = run_events.history(model_dir, metric)
    if not history:
      raise UserInputError(
          f"{model_dir!r} ({label}) has no eval/{metric} in its TensorBoard "
          f"events ({os.path.join(model_dir, run_folder.EVENTS)}): was it "
          "trained with an evaluator that computes that metric "
          "(train.evaluator, Evaluator.metrics)?")
    out[label] = history
  return out


def plot(lines: dict[str, list[list]], metric: str) -> np.ndarray:
  """The curves, one run per label, as a uint8 RGB image [H, W, 3]."""
  return figures.plot_groups({label: [h] for label, h in lines.items()},
                             metric)


def write(runs: Sequence[tuple[str, str]], metric: str, out: str,
          logdir: str | None = None) -> np.ndarray:
  """Draws the curves of `runs` into `out` (PNG) and `logdir` (TensorBoard).

  Returns:
    The picture, uint8 [H, W, 3].
  """
  picture = plot(curves(runs, metric), metric)
  figures.save(picture, out, logdir, f"curves/{metric}")
  return picture


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_list("runs", None, "label=model_dir pairs, one line each.")
  flags.DEFINE_string("metric", "fid", "An evaluated metric: fid, mfid, kid.")
  flags.DEFINE_string("out", "curves.png", "Output PNG.")
  flags.DEFINE_string("logdir", None, "Also write a TensorBoard image here.")


def main(argv: Sequence[str]) -> None:
  del argv
  flag = flags.FLAGS
  try:
    write(parse_runs(flag.runs), flag.metric, flag.out, flag.logdir)
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  print(f"Wrote {flag.out}.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
