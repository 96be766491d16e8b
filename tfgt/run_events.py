"""What a run's TensorBoard events say: its evaluations and its wall time.

The trainer writes one events file per session into the run folder's
`train/` (`tfgt.run_folder.EVENTS`); a resumed run has several, read in file
name order (their names begin with the session's start time). Evaluations
are logged as scalars tagged `eval/<metric>` (KID and mKID as computed, not
x100). A live run's file may end in a record being written: reading stops
there, as TensorBoard does.
"""

from __future__ import annotations

import os
from typing import Iterator

import tensorflow as tf

from tfgt import run_folder

EVAL_PREFIX = "eval/"


def sessions(model_dir: str) -> Iterator[list]:
  """Per events file of the run (one per trainer session), the list of its
  `tf.compat.v1.Event`s; nothing for a run without `train/`."""
  directory = os.path.join(model_dir, run_folder.EVENTS)
  names = sorted(n for n in os.listdir(directory)
                 if "tfevents" in n) if os.path.isdir(directory) else []
  for name in names:
    events = []
    try:
      for record in tf.data.TFRecordDataset(os.path.join(directory, name)):
        events.append(tf.compat.v1.Event.FromString(record.numpy()))
    except tf.errors.DataLossError:
      pass  # A torn last record: what came before it stands.
    yield events


def scores(model_dir: str) -> dict[int, dict[str, float]]:
  """Every evaluation the trainer logged: {step: {metric: value}}, steps
  ascending; a step evaluated in two sessions keeps the later values.
  {} without evaluations."""
  found = {}
  for events in sessions(model_dir):
    for event in events:
      for value in event.summary.value:
        if value.tag.startswith(EVAL_PREFIX):
          found.setdefault(int(event.step), {})[
              value.tag[len(EVAL_PREFIX):]] = float(
                  tf.make_ndarray(value.tensor))
  return dict(sorted(found.items()))


def history(model_dir: str, metric: str = "fid") -> list[list]:
  """[[step, value], ...] of one logged metric (`eval/<metric>`), by step
  (lists, as they read back from JSON); [] when it was never logged."""
  return [[step, values[metric]]
          for step, values in scores(model_dir).items() if metric in values]


def training_wall_time(model_dir: str) -> float:
  """Seconds of training and evaluation, summed over the run's sessions:
  each session's span from its first event to its last."""
  total = 0.0
  for events in sessions(model_dir):
    if events:
      times = [event.wall_time for event in events]
      total += max(times) - min(times)
  return total
