r"""Evaluation curves of several runs against the training step.

    python tools/plot_curves.py --metric=mfid --out=curves.png \
        --runs="aligned=runs/hypermod/transfer,unaligned=runs/hypermod_unaligned" \
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
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmark_transfer import eval_history  # pylint: disable=g-import-not-at-top
from tfgt import errors  # pylint: disable=g-import-not-at-top
from tfgt import images  # pylint: disable=g-import-not-at-top
from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top


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
        "label=model_dir pairs, e.g. --runs=\"aligned=runs/a,unaligned=runs/b\".")
  return runs


def curves(runs: Sequence[tuple[str, str]], metric: str
           ) -> dict[str, list[list]]:
  """{label: [[step, value], ...]} of `eval/<metric>` of each run.

  Raises:
    UserInputError: a run with no evaluation of that metric.
  """
  out = {}
  for label, model_dir in runs:
    history = eval_history(model_dir, f"eval/{metric}")
    if not history:
      raise UserInputError(
          f"{model_dir!r} ({label}) has no eval/{metric} in its TensorBoard "
          f"events ({os.path.join(model_dir, 'train')}): was it trained with "
          "an evaluator that computes that metric (train.evaluator, "
          "Evaluator.metrics)?")
    out[label] = history
  return out


def plot(lines: dict[str, list[list]], metric: str) -> np.ndarray:
  """The curves, one run per label, as a uint8 RGB image [H, W, 3]."""
  return plot_groups({label: [h] for label, h in lines.items()}, metric)


def plot_groups(groups: dict[str, Sequence[Sequence[Sequence[float]]]],
                metric: str, title: str | None = None) -> np.ndarray:
  """Curves over seeds as a uint8 RGB image [H, W, 3]: per label, the mean
  over its runs at each step that all of them evaluated, and the min-max
  band (a single run draws a plain line).

  Args:
    groups: {label: [history, ...]}, a history being [[step, value], ...].
    metric: the y axis label.
    title: the figure's title.
  """
  figure, axis = plt.subplots(figsize=(6, 4))
  for label, histories in groups.items():
    common = sorted(set.intersection(*[{s for s, _ in h} for h in histories]))
    if not common:
      continue
    values = np.array([[dict(h)[s] for s in common] for h in histories],
                      np.float64)
    line, = axis.plot(common, values.mean(axis=0), marker="o",
                      label=f"{label} ({len(histories)} runs)"
                      if len(histories) > 1 else label)
    if len(histories) > 1:
      axis.fill_between(common, values.min(axis=0), values.max(axis=0),
                        color=line.get_color(), alpha=0.2)
  axis.set_xlabel("training step")
  axis.set_ylabel(metric)
  if title:
    axis.set_title(title)
  axis.grid(alpha=0.3)
  axis.legend()
  return images.figure_to_array(figure)


def save(picture: np.ndarray, out: str, logdir: str | None = None,
         tag: str = "curves") -> None:
  """Writes `picture` as a PNG to `out` and, with `logdir`, as a TensorBoard
  image `tag`."""
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  images.save_png(picture, out)
  if logdir:
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default(step=0):
      tf.summary.image(tag, picture[None], max_outputs=1)
    writer.flush()


def write(runs: Sequence[tuple[str, str]], metric: str, out: str,
          logdir: str | None = None) -> np.ndarray:
  """Draws the curves of `runs` into `out` (PNG) and `logdir` (TensorBoard).

  Returns:
    The picture, uint8 [H, W, 3].
  """
  picture = plot(curves(runs, metric), metric)
  save(picture, out, logdir, f"curves/{metric}")
  return picture


def define_flags() -> None:
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
