"""`tools.check_determinism`: two fresh runs of one configuration and the
variables whose checkpoints differ."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import PRETRAIN
from tests.conftest import REPO
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tools import check_determinism
from tools import machine


def _checkpoint(directory, **values):
  variables = {k: tf.Variable(v) for k, v in values.items()}
  tf.train.Checkpoint(**variables).save(str(directory / "ckpt"))


def test_differences_name_the_variable_and_its_gap(tmp_path):
  module = check_determinism
  _checkpoint(tmp_path / "a", w=[1.0, 2.0, 3.0], step=tf.constant(4))
  _checkpoint(tmp_path / "b", w=[1.0, 2.5, 3.0], step=tf.constant(4))
  _checkpoint(tmp_path / "c", w=[1.0, 2.0, 3.0], step=tf.constant(4))
  differences, compared = module.checkpoint_differences(
      str(tmp_path / "a"), str(tmp_path / "b"))
  assert [key for key, _ in differences] == ["w/.ATTRIBUTES/VARIABLE_VALUE"]
  assert differences[0][1] == pytest.approx(0.5)
  assert compared >= 2  # w and step (and the save counter).
  assert module.checkpoint_differences(str(tmp_path / "a"),
                                       str(tmp_path / "c"))[0] == []
  assert module.report(differences, compared).endswith(
      f"1 of {compared} variables differ.")
  # Not two runs of one configuration, or no checkpoint: said, not compared.
  _checkpoint(tmp_path / "d", w=[1.0, 2.0])
  with pytest.raises(ValueError, match="other variables or shapes"):
    module.checkpoint_differences(str(tmp_path / "a"), str(tmp_path / "d"))
  with pytest.raises(ValueError, match="No checkpoint in"):
    module.checkpoint_differences(str(tmp_path / "a"), str(tmp_path))


def test_two_fresh_runs_of_a_pretraining_are_bit_identical(tmp_path):
  """Every weight of G and D trained from a random start, three steps, each
  run in its own process: the checkpoints agree bit for bit."""
  module = check_determinism
  out_dir = str(tmp_path / "check")
  dirs, logs = module.run_twice(out_dir, [PRETRAIN], TINY + SMALL_DATA, 3)
  for log in logs:
    with open(log) as f:
      assert "step 3/3 (100%)" in f.read()
  differences, compared = module.checkpoint_differences(*dirs)
  assert compared > 20
  assert differences == []
  # The same folder again: refused, as its runs would resume, not restart.
  with pytest.raises(ValueError, match="exists: give a new --out_dir"):
    module.run_twice(out_dir, [PRETRAIN], TINY + SMALL_DATA, 3)


def test_bad_input_exits_2_and_says_the_fix(tmp_path):
  """No configuration: exit 2 (not 1, which means "differs"), and the fix.
  A bad binding: the run fails and the trainer's message reaches the user."""
  result = subprocess.run(
      [sys.executable, "-m", "tools.check_determinism",
       f"--out_dir={tmp_path / 'none'}"], capture_output=True, text=True,
      cwd=REPO, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Give the configuration to check with --gin_file" in result.stderr
  module = check_determinism
  with pytest.raises(ValueError, match=r"(?s)run0 failed \(exit code 2\).*"
                     r"train has no parameter nonsense"):
    module.run_twice(str(tmp_path / "bad"), [PRETRAIN],
                     TINY + ["train.nonsense = 3"], 2)


def test_fixed_addresses_run_a_child_without_address_randomisation():
  probe = [sys.executable, "-c",
           "print(open('/proc/self/personality').read().strip())"]
  try:
    command = machine.with_fixed_addresses(probe)
  except ValueError as e:
    pytest.skip(f"not available here: {e}")
  flags = int(subprocess.run(command, capture_output=True, text=True,
                             check=True).stdout, 16)
  assert flags & 0x0040000  # ADDR_NO_RANDOMIZE
  plain = int(subprocess.run(probe, capture_output=True, text=True,
                             check=True).stdout, 16)
  assert bool(plain & 0x0040000) == machine.addresses_fixed()



# A child process (the test processes run without Grappler) trains one step
# of scratch.gin at width 16, the smallest at which Grappler's memory
# optimizer rewrites a gradient sum, under TensorFlow's single-threaded
# executor, which refuses the temporary buffer that the rewrite adds: first
# with the rewrite allowed (the refusal shows that this model still gets
# it), then as the trainer runs its step.
_SUMMATION_PROBE = """
import os, sys
import gin
from tensorflow.python.eager import context
from tfgt import steps, train
trainer_runs = steps.fixed_summation_order
for mode in ("allowed", "trainer"):
  steps.fixed_summation_order = (
      trainer_runs if mode == "trainer" else lambda: None)
  gin.clear_config()
  train.parse_config(["gin_configs/fashion_mnist/scratch.gin"], [
      "IMAGES_PER_CLASS = 8", "BigGANGenerator.ch = 16",
      "BigGANDiscriminator.ch = 16", "train.num_steps = 1",
      "train.sample_every = 0", "train.evaluator = None"])
  with context.function_executor_type("SINGLE_THREADED_EXECUTOR"):
    try:
      train.train(os.path.join(sys.argv[1], mode))
    except Exception as e:  # pylint: disable=broad-except
      print(mode, "refused" if "reference-typed" in str(e) else repr(e))
    else:
      print(mode, "ran")
"""


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_the_step_sums_gradients_in_a_fixed_order(tmp_path):
  done = subprocess.run(
      [sys.executable, "-c", _SUMMATION_PROBE, str(tmp_path)], cwd=REPO,
      capture_output=True, text=True, timeout=600, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  lines = [line for line in done.stdout.splitlines()
           if line.startswith(("allowed ", "trainer "))]
  assert lines == ["allowed refused", "trainer ran"], (
      done.stdout + done.stderr[-3000:])
