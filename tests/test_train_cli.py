"""The training command line: files it writes, SIGTERM, resuming, one
trainer per run folder."""

import json
import os
import signal
import subprocess
import sys
import time

import tensorflow as tf

from tests.conftest import PRETRAIN
from tests.conftest import REPO
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tests.conftest import events as _events


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
  # A second trainer on the same folder is refused at once, in one line that
  # names the first, and changes nothing.
  second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)
  assert second.returncode == 2, second.stderr[-2000:]
  refusal = [line for line in second.stderr.splitlines()
             if "is being trained by" in line]
  assert len(refusal) == 1 and f"process {proc.pid}" in refusal[0]
  assert proc.poll() is None
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
