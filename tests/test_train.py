"""The trainer: checkpoints and resume, seeds, distribution, refusals.

The CLI and SIGTERM are tested in test_train_cli.py, evaluation during
training in test_train_eval.py.
"""

import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import PRETRAIN
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tests.conftest import event_values
from tests.conftest import model_variables
from tests.conftest import run_training as _run
from tests.conftest import run_evaluated
from tests.conftest import ScriptedEvaluator
from tfgt import distribute
from tfgt import train as train_lib
from tfgt.errors import UserInputError


def _first_losses(model_dir):
  """(d_loss, g_loss) logged at step 1, read from the run's events."""
  values = event_values(str(model_dir))
  return tuple(float(dict(values[tag])[1])
               for tag in ("train/d_loss", "train/g_loss"))


# Training runs shared by the tests of this module (each costs a model build
# and a trace); a test that continues or damages a run works on a copy.
@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("shared") / "two_steps"
  _run(model_dir, 2)
  return model_dir


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("shared") / "four_steps"
  _run(model_dir, 4)
  return model_dir


def _copy_run(run_dir, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(run_dir, copy)
  return copy


def test_resume_continues_with_identical_variables(two_step_run,
                                                   four_step_run, tmp_path):
  assert tf.train.latest_checkpoint(str(two_step_run)).endswith("ckpt-2")
  resumed = _copy_run(two_step_run, tmp_path)
  _run(resumed, 4)
  straight = model_variables(four_step_run)
  resumed_variables = model_variables(resumed)
  assert straight.keys() == resumed_variables.keys() and len(straight) > 100
  for k in straight:
    np.testing.assert_allclose(resumed_variables[k], straight[k], rtol=1e-5,
                               atol=1e-6, err_msg=k)
  reader = tf.train.load_checkpoint(str(resumed))
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4


def test_same_seed_same_first_losses(two_step_run, four_step_run, tmp_path):
  # Two separate runs with seed 0 (of 2 and 4 steps) start identically.
  assert _first_losses(two_step_run) == _first_losses(four_step_run)
  other = _run(tmp_path / "other_seed", 1, ["train.seed = 4"])
  assert other["d_loss"] != _first_losses(two_step_run)[0]


def test_two_replicas_match_one_device(two_step_run, tmp_path):
  # two_step_run ran on one device; the same run on the CPU split in two
  # (MirroredStrategy, 2 replicas, what strategy "auto" makes of it).
  cpus = tf.config.list_logical_devices("CPU")
  assert len(cpus) == 2
  two = distribute.make_strategy()
  assert two.num_replicas_in_sync == 2
  m2 = _run(tmp_path / "two", 2, strategy=two)
  d_loss = float(dict(event_values(str(two_step_run))["train/d_loss"])[2])
  assert m2["d_loss"] == pytest.approx(d_loss, rel=1e-4)
  v1, v2 = model_variables(two_step_run), model_variables(tmp_path / "two")
  for k in v1:
    np.testing.assert_allclose(v2[k], v1[k], atol=2e-4, err_msg=k)
  # The BN statistics are those of the global batch: with per-replica
  # statistics the moving means would differ far more than float noise.
  key = "generator/block0/bn1/moving_mean/.ATTRIBUTES/VARIABLE_VALUE"
  assert np.abs(v1[key]).max() > 1e-3
  np.testing.assert_allclose(v2[key], v1[key], atol=1e-5)


def test_changed_classes_refused_and_checkpoints_kept(two_step_run,
                                                      tmp_path):
  model_dir = _copy_run(two_step_run, tmp_path)
  before = sorted(os.listdir(model_dir))
  with pytest.raises(UserInputError, match="8 classes.*this config trains 3"):
    _run(model_dir, 4, ["load_training_data.classes = [0, 1, 2]"])
  assert sorted(os.listdir(model_dir)) == before
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")


def test_xla_with_several_replicas_is_refused(tmp_path):
  cpus = tf.config.list_logical_devices("CPU")
  two = tf.distribute.MirroredStrategy(
      [d.name for d in cpus],
      cross_device_ops=tf.distribute.ReductionToOneDevice())
  with pytest.raises(UserInputError, match="use_xla=True needs a single"):
    _run(tmp_path / "xla", 1, ["train.use_xla = True"], strategy=two)
  assert not (tmp_path / "xla").exists()



def test_changed_trajectory_settings_refused(two_step_run, tmp_path):
  model_dir = _copy_run(two_step_run, tmp_path)
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


def test_bad_training_settings_are_explained(two_step_run, tmp_path):
  with pytest.raises(UserInputError, match="log_every must be >= 1"):
    _run(tmp_path / "a", 1, ["train.log_every = 0"])
  from tfgt.eval import evaluator as evaluator_lib  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA)
  with pytest.raises(UserInputError, match="best_metric='kid'.*fid"):
    train_lib.train(str(tmp_path / "b"),
                    evaluator=evaluator_lib.Evaluator(metrics="fid"),
                    best_metric="kid")
  # A value of the real images alone (the same at every evaluation).
  with pytest.raises(UserInputError, match="best_metric='mdiversity_real' "
                     "describes the real images alone.*choose 'mdiversity'"):
    train_lib.train(str(tmp_path / "c"), evaluator=evaluator_lib.Evaluator(
        metrics="fid,mdiversity"), best_metric="mdiversity_real")
  assert not (tmp_path / "c").exists()
  with pytest.raises(UserInputError, match="features_separation' describes "
                     "the real images alone"):
    train_lib.train(str(tmp_path / "c"), evaluator=evaluator_lib.Evaluator(
        metrics="fid"), best_metric="features_separation")
  model_dir = _copy_run(two_step_run, tmp_path)
  (model_dir / "best.json").write_text('{"fid": 1.')
  with pytest.raises(UserInputError, match="best.json is not valid JSON"):
    run_evaluated(model_dir, 3, ScriptedEvaluator("fid", [1.0]), "fid")
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")

