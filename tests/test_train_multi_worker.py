"""Multi-worker training for real: worker processes on loopback ports
(`tools.launch_local_workers`), MultiWorkerMirroredStrategy from TF_CONFIG.

Two workers train like one process on the same global batch, only the chief
writes the run folder, and a killed worker stops the run without losing the
last checkpoint; the same command on both workers then resumes and ends
where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import tensorflow as tf

from tests.conftest import PRETRAIN
from tests.conftest import REPO
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tfgt import train as train_lib
from tools import launch_local_workers

STEPS = 8
# With an evaluator, as the shipped configs have: gin builds it (and loads
# its classifier) before the trainer's body, which is why the command line
# makes the strategy first.
EVAL_GIN = os.path.join(REPO, "gin_configs", "fashion_mnist", "eval.gin")
SETTINGS = TINY + SMALL_DATA + [
    "Evaluator.split = 'test'", "Evaluator.num_samples = 40",
    "Evaluator.metrics = ['fid']", "train.eval_every = 4",
    f"train.num_steps = {STEPS}", "train.checkpoint_every = 4",
    "train.keep_checkpoints = 10", "train.sample_every = 0"]


def _train_command(model_dir, settings=SETTINGS):
  return ([sys.executable, "-m", "tfgt.train", f"--gin_file={PRETRAIN}",
           f"--gin_file={EVAL_GIN}", f"--model_dir={model_dir}"] +
          [f"--gin_param={p}" for p in settings])


def _env(tmp_dir):
  # TMPDIR: where a worker's private folder goes (it must be gone after).
  return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2",
              TMPDIR=str(tmp_dir))


def _launch(tmp_path, name, model_dir, settings=SETTINGS):
  log = tmp_path / f"{name}.log"
  with open(log, "w") as out:
    code = subprocess.run(
        [sys.executable, "-m", "tools.launch_local_workers",
         "--num_workers=2", "--timeout=600",
         f"--worker_logs={tmp_path / (name + '_workers')}", "--"] +
        _train_command(model_dir, settings), cwd=REPO,
        env=_env(tmp_path / "tmp"),
        stdout=out, stderr=out, timeout=900, check=False).returncode
  return code, log.read_text()


def _variables(path):
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name)
          for name, _ in tf.train.list_variables(path)
          if "OBJECT_GRAPH" not in name and
          not name.startswith("save_counter")}  # Bookkeeping of saves.


def _assert_same(a, b, tolerance):
  va, vb = _variables(a), _variables(b)
  assert va.keys() == vb.keys()
  for name, x in va.items():
    if x.dtype.kind == "f":
      np.testing.assert_allclose(x, vb[name], rtol=tolerance, atol=tolerance,
                                 err_msg=name)
    else:
      np.testing.assert_array_equal(x, vb[name], err_msg=name)


def _private_folders(tmp_dir):
  return [n for n in os.listdir(tmp_dir) if n.startswith("tfgt_")]


def _wait_for(path, text, seconds):
  deadline = time.time() + seconds
  while time.time() < deadline:
    if path.exists() and text in path.read_text():
      return
    time.sleep(0.3)
  raise AssertionError(f"{text!r} not in {path} after {seconds} s:\n"
                       f"{path.read_text()[-3000:]}")


def test_two_workers_train_as_one_process_and_resume_after_a_lost_worker(
    tmp_path):
  (tmp_path / "tmp").mkdir()
  # One process, one device: the reference for the first steps (trained
  # here, in the test's process).
  single = tmp_path / "single"
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], SETTINGS[:-4] + [
      "train.num_steps = 4", "train.sample_every = 0",
      "train.eval_every = 0"])
  train_lib.train(str(single), strategy=tf.distribute.get_strategy())
  gin.clear_config()

  # Two workers, uninterrupted.
  whole = tmp_path / "whole"
  code, log = _launch(tmp_path, "whole", whole)
  assert code == 0, log[-3000:]
  assert "global batch 8 on 2 replica(s) of 2 worker processes" in log
  # Same global batch, same data and latents: the same variables after 4
  # steps, to the float error of a different all-reduce order.
  _assert_same(str(whole / "ckpt-4"), str(single / "ckpt-4"), 1e-3)
  # One writer: the run folder is the chief's alone, and the other worker's
  # private folder is gone.
  worker_log = (tmp_path / "whole_workers" / "worker_1.log").read_text()
  assert "This process is worker 1 of 2" in worker_log
  # The chief evaluates (steps 4 and 8), the other worker does not.
  assert "Step 4 evaluation: fid" in log
  assert f"Step {STEPS} evaluation: fid" in log
  assert "evaluation" not in worker_log
  assert os.path.isdir(whole / "model" / "best")
  assert not _private_folders(tmp_path / "tmp")
  # One TensorBoard writer, and nothing in the run folder but the run.
  assert len(os.listdir(whole / "train")) == 1
  assert sorted(os.listdir(whole)) == sorted(
      ["checkpoint", "classes.json", "config.gin", "model",
       "operative_config.gin", "run.json", "samples.png", "train",
       "best.json", "eval_state.json", "train.lock"] +
      [f"ckpt-{s}.{ext}" for s in range(4, STEPS + 1, 4)
       for ext in ("index", "data-00000-of-00001")])
  assert tf.train.latest_checkpoint(str(whole)).endswith(f"ckpt-{STEPS}")
  assert json.loads((whole / "model" / "model.json").read_text())[
      "class_names"][0] == "T-shirt/top"

  # Two workers; worker 1 is killed after step 6 (checkpoint at 4).
  resumed = tmp_path / "resumed"
  ports = launch_local_workers.free_ports(2)
  logs = [tmp_path / f"killed_{i}.log" for i in range(2)]
  procs = []
  for i in range(2):
    with open(logs[i], "w") as out:
      procs.append(subprocess.Popen(
          _train_command(resumed), cwd=REPO, stdout=out, stderr=out,
          env=dict(_env(tmp_path / "tmp"),
                   TF_CONFIG=launch_local_workers.tf_config(ports, i))))
  try:
    _wait_for(logs[0], f"step 6/{STEPS}", 600)
    procs[1].send_signal(signal.SIGKILL)
    # The chief notices the lost peer, stops without saving the step in
    # flight and says how to go on.
    assert procs[0].wait(timeout=300) == 75
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  chief_log = logs[0].read_text()
  assert "A process of the cluster stopped" in chief_log
  assert "start every worker again with the same command" in chief_log
  last = tf.train.latest_checkpoint(str(resumed))
  assert last is not None and int(last.rsplit("-", 1)[1]) % 4 == 0
  # The same command on both workers resumes and ends where the
  # uninterrupted run ends.
  code, log = _launch(tmp_path, "again", resumed)
  assert code == 0, log[-3000:]
  assert f"Resumed from {last}" in log
  _assert_same(str(resumed / f"ckpt-{STEPS}"), str(whole / f"ckpt-{STEPS}"),
               1e-6)
  # The killed worker's folder was replaced by its successor's, then removed.
  assert not _private_folders(tmp_path / "tmp")


def test_tf_config_is_read_and_a_broken_one_says_what_to_write(monkeypatch):
  import pytest  # pylint: disable=g-import-not-at-top
  from tfgt import distribute  # pylint: disable=g-import-not-at-top
  from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv("TF_CONFIG", raising=False)
  assert distribute.cluster_size() == 0
  monkeypatch.setenv("TF_CONFIG",
                     launch_local_workers.tf_config([1234, 1235, 1236], 2))
  assert distribute.cluster_size() == 3
  assert json.loads(os.environ["TF_CONFIG"])["task"] == {"type": "worker",
                                                         "index": 2}
  monkeypatch.setenv("TF_CONFIG", "{'cluster': []}")
  with pytest.raises(UserInputError, match="TF_CONFIG is not valid.*"
                     "docs/DISTRIBUTED.md"):
    distribute.cluster_size()
  # Outside a cluster every process is the chief.
  assert distribute.worker_role(tf.distribute.get_strategy()).is_chief
  ports = launch_local_workers.free_ports(3)
  assert len(set(ports)) == 3


def test_two_workers_train_in_bfloat16_as_one_process(tmp_path):
  """mixed_bfloat16 across worker processes: the gradients' all-reduces
  between processes (float32, as the variables) give one process's
  variables after 2 steps, to bfloat16's accuracy."""
  (tmp_path / "tmp").mkdir()
  settings = TINY + SMALL_DATA + [
      "train.num_steps = 2", "train.checkpoint_every = 1",
      "train.sample_every = 0", "train.eval_every = 0",
      "train.evaluator = None", "train.precision = 'mixed_bfloat16'"]
  single = tmp_path / "single"
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], settings)
  train_lib.train(str(single), strategy=tf.distribute.get_strategy())
  gin.clear_config()
  code, log = _launch(tmp_path, "bf16", tmp_path / "bf16", settings)
  assert code == 0, log[-3000:]
  assert ("global batch 8 on 2 replica(s) of 2 worker processes, in "
          "mixed_bfloat16") in log
  # The weights to bfloat16's accuracy (as two replicas in one process,
  # tests/test_precision.py): their difference is small against what the
  # second step changed (an Adam step moves every weight by about the
  # learning rate, so an elementwise tolerance would say nothing). Adam's
  # moments hold single gradients, whose bfloat16 round-off differs
  # element by element, and are not compared.
  a, b = (_variables(str(d / "ckpt-2")) for d in (tmp_path / "bf16", single))
  before = _variables(str(single / "ckpt-1"))
  assert a.keys() == b.keys()
  weights = [k for k in a if not k.startswith("optimizers/") and
             a[k].dtype.kind == "f"]
  assert len(weights) > 100
  norm = lambda vs: np.sqrt(sum(float(np.sum(np.square(v))) for v in vs))
  step = norm(b[k] - before[k] for k in weights)
  assert norm(a[k] - b[k] for k in weights) < 0.1 * step, step
