"""Curves over seeds as pictures, written as PNG and TensorBoard images."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib
matplotlib.use("Agg")
# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from tfgt import images
# pylint: enable=g-import-not-at-top,wrong-import-position


def plot_groups(groups: dict[str, Sequence[Sequence[Sequence[float]]]],
                metric: str, title: str | None = None) -> np.ndarray:
  """Curves over seeds as a uint8 RGB image [H, W, 3]: per label, the mean
  over its runs at each step that all of them evaluated, and the min-max
  band (a single run draws a plain line).

  Args:
    groups: {label: [history, ...]}, a history being [[step, value], ...].
    metric: the y axis label.
    title: the figure's title.

  Returns:
    The picture, uint8 [H, W, 3].
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
