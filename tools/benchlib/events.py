"""What a run's TensorBoard events say: its evaluations and its wall time.

The trainer writes one events file per session into the run's `train/`
folder (`tfgt.run_folder.EVENTS`); a resumed run has several.
"""

from __future__ import annotations

import os
from typing import Iterator

from tfgt import run_folder


def session_events(model_dir: str) -> Iterator[list]:
  """Per TensorBoard events file of the run (one per trainer session), the
  list of its events, in file name order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory = os.path.join(model_dir, run_folder.EVENTS)
  names = sorted(tf.io.gfile.listdir(directory)) if os.path.isdir(
      directory) else []
  for name in names:
    if "tfevents" in name:
      yield list(tf.compat.v1.train.summary_iterator(
          os.path.join(directory, name)))


def training_wall_time(model_dir: str) -> float:
  """Seconds of training, summed over the sessions of a (resumed) run.

  Each session of the trainer writes its own TensorBoard events file; its
  span (first to last event) is that session's training and evaluation time.
  """
  total = 0.0
  for events in session_events(model_dir):
    if events:
      times = [event.wall_time for event in events]
      total += max(times) - min(times)
  return total


def eval_history(model_dir: str, tag: str = "eval/fid") -> list[list]:
  """[step, value] of a metric the trainer logged to TensorBoard, by step
  (lists, as they read back from JSON); a step logged in two sessions
  keeps the later value."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = {}
  for events in session_events(model_dir):
    for event in events:
      for v in event.summary.value:
        if v.tag == tag:
          values[int(event.step)] = float(tf.make_ndarray(v.tensor))
  return [[step, value] for step, value in sorted(values.items())]
