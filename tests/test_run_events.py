"""tfgt.run_events: a run's evaluations and wall time from its TensorBoard
events, over the sessions of a resumed run, with a torn last record."""

import os

import tensorflow as tf

from tfgt import run_events
from tfgt import run_folder


def _session(model_dir, name, steps_values, wall_start):
  """Writes one session's events file the way the trainer logs: scalars
  `eval/<metric>` and a training scalar, then sets the events' wall times
  by rewriting the file (tf.summary stamps the clock)."""
  directory = os.path.join(model_dir, run_folder.EVENTS)
  os.makedirs(directory, exist_ok=True)
  scratch = os.path.join(model_dir, "scratch_" + name)
  writer = tf.summary.create_file_writer(scratch)
  with writer.as_default():
    for step, values in steps_values:
      tf.summary.scalar("d_loss", 1.0, step=step)
      for metric, value in values.items():
        tf.summary.scalar("eval/" + metric, value, step=step)
  writer.close()
  (written,) = os.listdir(scratch)
  path = os.path.join(directory, f"events.out.tfevents.{name}")
  with tf.io.TFRecordWriter(path) as out:
    for i, record in enumerate(tf.data.TFRecordDataset(
        os.path.join(scratch, written))):
      event = tf.compat.v1.Event.FromString(record.numpy())
      event.wall_time = wall_start + 10.0 * i
      out.write(event.SerializeToString())
  return path


def test_scores_history_and_wall_time_over_two_sessions(tmp_path):
  _session(tmp_path, "1", [(4, {"fid": 9.0, "kid": 0.5}), (8, {"fid": 7.0})],
           1000.0)
  # The resumed session evaluates step 8 again (a lost evaluation redone).
  _session(tmp_path, "2", [(8, {"fid": 6.0}), (12, {"fid": 5.0})], 5000.0)
  assert run_events.scores(tmp_path) == {
      4: {"fid": 9.0, "kid": 0.5}, 8: {"fid": 6.0}, 12: {"fid": 5.0}}
  assert run_events.history(tmp_path) == [[4, 9.0], [8, 6.0], [12, 5.0]]
  assert run_events.history(tmp_path, "kid") == [[4, 0.5]]
  assert run_events.history(tmp_path, "mfid") == []
  # Each file: a version event, then 2 + 2 and 2 + 1 scalars (10 s apart);
  # the spans add up, the pause between sessions does not count.
  assert run_events.training_wall_time(tmp_path) == 50.0 + 40.0


def test_a_torn_last_record_keeps_what_came_before(tmp_path):
  path = _session(tmp_path, "1", [(4, {"fid": 9.0}), (8, {"fid": 7.0})], 0.0)
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:-7])  # A live run: its last record half written.
  assert run_events.scores(tmp_path) == {4: {"fid": 9.0}}
  assert run_events.history(tmp_path) == [[4, 9.0]]


def test_a_run_without_events_has_no_scores(tmp_path):
  assert run_events.scores(tmp_path) == {}
  assert run_events.history(tmp_path) == []
  assert run_events.training_wall_time(tmp_path) == 0.0
