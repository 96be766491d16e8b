"""The trainer: CLI, checkpoints and resume, seeds, distribution, summaries."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.conftest import TINY
from tfgt import train as train_lib
from tfgt.errors import UserInputError

PRETRAIN = os.path.join(REPO, "gin_configs/fashion_mnist/pretrain_biggan.gin")
SMALL_DATA = ["load_training_data.images_per_class = 8"]


def _run(model_dir, steps, extra=(), strategy=None):
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}"] + list(extra))
  return train_lib.train(str(model_dir), strategy=strategy)


def _model_variables(model_dir):
  reader = tf.train.load_checkpoint(str(model_dir))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(("generator/", "discriminator/", "ema_generator/"))}


def _events(model_dir):
  tags = {}
  for path in glob.glob(os.path.join(model_dir, "train", "events.out.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  return tags


def test_cli_smoke_writes_checkpoints_config_and_events(tmp_path):
  model_dir = tmp_path / "run"
  cmd = [sys.executable, "-m", "tfgt.train", f"--gin_file={PRETRAIN}",
         f"--model_dir={model_dir}"]
  for p in TINY + SMALL_DATA + ["train.num_steps = 4"]:
    cmd.append(f"--gin_param={p}")
  result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=900, env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step 4/4 (100%)" in result.stderr and "ETA" in result.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-4")
  operative = (model_dir / "operative_config.gin").read_text()
  assert "train.batch_size = 8" in operative
  assert "BigGANGenerator.ch = 4" in operative
  spec = json.loads((model_dir / "model" / "model.json").read_text())
  assert spec["class_names"][0] == "T-shirt/top" and len(
      spec["class_names"]) == 8
  tags = _events(str(model_dir))
  for tag in ("train/d_loss", "train/g_loss", "train/steps_per_sec",
              "train/images_per_sec", "train/g_lr", "samples_ema"):
    assert tag in tags, tag
  assert tags["train/d_loss"] == [1, 2, 3, 4]
  assert (model_dir / "samples.png").exists()


def test_resume_continues_with_identical_variables(tmp_path):
  _run(tmp_path / "straight", 4)
  _run(tmp_path / "resumed", 2)
  assert tf.train.latest_checkpoint(str(tmp_path / "resumed")).endswith(
      "ckpt-2")
  _run(tmp_path / "resumed", 4)
  straight = _model_variables(tmp_path / "straight")
  resumed = _model_variables(tmp_path / "resumed")
  assert straight.keys() == resumed.keys() and len(straight) > 100
  for k in straight:
    np.testing.assert_allclose(resumed[k], straight[k], rtol=1e-5, atol=1e-6,
                               err_msg=k)
  reader = tf.train.load_checkpoint(str(tmp_path / "resumed"))
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4


def test_same_seed_same_first_losses(tmp_path):
  a = _run(tmp_path / "a", 1, ["train.seed = 3"])
  b = _run(tmp_path / "b", 1, ["train.seed = 3"])
  c = _run(tmp_path / "c", 1, ["train.seed = 4"])
  assert (a["d_loss"], a["g_loss"]) == (b["d_loss"], b["g_loss"])
  assert a["d_loss"] != c["d_loss"]


def test_two_replicas_match_one_device(tmp_path):
  cpus = tf.config.list_logical_devices("CPU")
  assert len(cpus) == 2
  one = tf.distribute.OneDeviceStrategy(cpus[0].name)
  two = tf.distribute.MirroredStrategy(
      [d.name for d in cpus],
      cross_device_ops=tf.distribute.ReductionToOneDevice())
  m1 = _run(tmp_path / "one", 2, strategy=one)
  m2 = _run(tmp_path / "two", 2, strategy=two)
  assert m1["d_loss"] == pytest.approx(m2["d_loss"], rel=1e-4)
  v1, v2 = _model_variables(tmp_path / "one"), _model_variables(
      tmp_path / "two")
  for k in v1:
    np.testing.assert_allclose(v2[k], v1[k], atol=2e-4, err_msg=k)
  # The BN statistics are those of the global batch: with per-replica
  # statistics the moving means would differ far more than float noise.
  key = "generator/block0/bn1/moving_mean/.ATTRIBUTES/VARIABLE_VALUE"
  assert np.abs(v1[key]).max() > 1e-3
  np.testing.assert_allclose(v2[key], v1[key], atol=1e-5)


def test_changed_classes_refused_and_checkpoints_kept(tmp_path):
  model_dir = tmp_path / "run"
  _run(model_dir, 2)
  before = sorted(os.listdir(model_dir))
  with pytest.raises(UserInputError, match="8 classes.*this config trains 3"):
    _run(model_dir, 4, ["load_training_data.classes = [0, 1, 2]"])
  assert sorted(os.listdir(model_dir)) == before
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")


def test_sigterm_saves_and_the_same_command_resumes(tmp_path):
  model_dir = tmp_path / "run"
  cmd = [sys.executable, "-m", "tfgt.train", f"--gin_file={PRETRAIN}",
         f"--model_dir={model_dir}"]
  for p in TINY + SMALL_DATA + ["train.num_steps = 100000",
                                "train.checkpoint_every = 1000"]:
    cmd.append(f"--gin_param={p}")
  env = dict(os.environ, PYTHONPATH=REPO)
  log = open(tmp_path / "log.txt", "w")
  proc = subprocess.Popen(cmd, cwd=REPO, stderr=log, stdout=log, env=env)
  deadline = time.time() + 600
  while time.time() < deadline:
    if "step 3/" in (tmp_path / "log.txt").read_text():
      break
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 143
  saved = tf.train.latest_checkpoint(str(model_dir))
  assert saved is not None
  step = tf.train.load_checkpoint(saved).get_tensor(
      "step/.ATTRIBUTES/VARIABLE_VALUE")
  assert saved.endswith(f"ckpt-{step}") and step >= 3
  cmd[-2] = "--gin_param=train.num_steps = %d" % (step + 1)
  result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=900)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Resumed from {saved} at step {step}" in result.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith(
      f"ckpt-{step + 1}")


def test_xla_with_several_replicas_is_refused(tmp_path):
  cpus = tf.config.list_logical_devices("CPU")
  two = tf.distribute.MirroredStrategy(
      [d.name for d in cpus],
      cross_device_ops=tf.distribute.ReductionToOneDevice())
  with pytest.raises(UserInputError, match="use_xla=True needs a single"):
    _run(tmp_path / "xla", 1, ["train.use_xla = True"], strategy=two)
  assert not (tmp_path / "xla").exists()



class ScriptedEvaluator:
  """An evaluator that returns given values in turn and counts its calls."""

  def __init__(self, metric, values):
    self.metric, self.values, self.steps = metric, list(values), []

  def __call__(self, generator):
    assert generator.num_classes == 8
    self.steps.append(len(self.steps))
    return {self.metric: self.values[len(self.steps) - 1]}


def _run_evaluated(model_dir, steps, evaluator, metric, eval_every=1):
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}", "train.sample_every = 0"])
  return train_lib.train(str(model_dir), evaluator=evaluator,
                         eval_every=eval_every, best_metric=metric)


@pytest.mark.parametrize("metric,values,best", [
    ("fid", [3.0, 1.0, 2.0], 1.0), ("precision", [0.5, 0.7, 0.6], 0.7)])
def test_best_checkpoint_follows_the_metric_direction(tmp_path, metric, values,
                                                      best):
  evaluator = ScriptedEvaluator(metric, values)
  _run_evaluated(tmp_path / "run", 3, evaluator, metric)
  assert len(evaluator.steps) == 3
  record = json.loads((tmp_path / "run" / "best.json").read_text())
  assert record == {metric: best, "step": 2}
  assert tf.train.latest_checkpoint(
      str(tmp_path / "run" / "model" / "best")).endswith("ckpt-2")


def test_resume_redoes_a_lost_bundle_and_evaluation(tmp_path):
  model_dir = tmp_path / "run"
  _run_evaluated(model_dir, 2, ScriptedEvaluator("fid", [5.0, 4.0]), "fid",
                 eval_every=2)
  # As if the run had died after its last checkpoint, before the bundle and
  # the evaluation of that step were written.
  bundle_dir = model_dir / "model"
  for path in glob.glob(str(bundle_dir / "ckpt-2.*")):
    os.remove(path)
  (bundle_dir / "checkpoint").unlink()
  (model_dir / "eval_state.json").unlink()
  evaluator = ScriptedEvaluator("fid", [3.0])
  _run_evaluated(model_dir, 2, evaluator, "fid", eval_every=2)
  assert evaluator.steps == [0]
  assert tf.train.latest_checkpoint(str(bundle_dir)).endswith("ckpt-2")
  assert json.loads((model_dir / "best.json").read_text())["fid"] == 3.0
  # Once done, the same command evaluates nothing again.
  again = ScriptedEvaluator("fid", [])
  _run_evaluated(model_dir, 2, again, "fid", eval_every=2)
  assert again.steps == []


def test_changed_trajectory_settings_refused(tmp_path):
  model_dir = tmp_path / "run"
  _run(model_dir, 2)
  config = (model_dir / "config.gin").read_text()
  before = sorted(os.listdir(model_dir))
  with pytest.raises(UserInputError, match="batch_size: 8 before, 16 now"):
    _run(model_dir, 4, ["train.batch_size = 16"])
  with pytest.raises(UserInputError, match="images_per_class|data"):
    _run(model_dir, 4, ["load_training_data.images_per_class = 9"])
  assert sorted(os.listdir(model_dir)) == before
  assert (model_dir / "config.gin").read_text() == config
  # More steps, other intervals: the same run continues.
  _run(model_dir, 3, ["train.log_every = 1"])
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-3")


def test_bad_training_settings_are_explained(tmp_path):
  with pytest.raises(UserInputError, match="log_every must be >= 1"):
    _run(tmp_path / "a", 1, ["train.log_every = 0"])
  from tfgt.eval import evaluator as evaluator_lib  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA)
  with pytest.raises(UserInputError, match="best_metric='kid'.*fid"):
    train_lib.train(str(tmp_path / "b"),
                    evaluator=evaluator_lib.Evaluator(metrics="fid"),
                    best_metric="kid")
  model_dir = tmp_path / "c"
  _run(model_dir, 1)
  (model_dir / "best.json").write_text('{"fid": 1.')
  with pytest.raises(UserInputError, match="best.json is not valid JSON"):
    _run_evaluated(model_dir, 2, ScriptedEvaluator("fid", [1.0]), "fid")
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-1")
