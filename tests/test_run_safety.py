"""A trained run is never lost or mixed: checkpoints found from their files,
fallback from a torn checkpoint, the run folder's lock, best.json and
model/best that agree, temporaries, a full disk, failed starts."""

import os
import shutil
import subprocess
import sys
import textwrap

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import PRETRAIN
from tests.conftest import REPO
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tests.conftest import ScriptedEvaluator
from tests.conftest import run_training
from tfgt import checkpoints
from tfgt import errors
from tfgt import files
from tfgt import images
from tfgt import run_folder
from tfgt import run_lock
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tfgt.models import bundle


def _run(model_dir, steps, extra=()):
  # One device: these tests are about files, and one replica traces faster.
  return run_training(model_dir, steps, extra,
                      strategy=tf.distribute.get_strategy())


def _run_evaluated(model_dir, steps, evaluator):
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}", "train.sample_every = 0"])
  return train_lib.train(str(model_dir), tf.distribute.get_strategy(),
                         evaluator=evaluator, eval_every=1, best_metric="fid")


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory):
  """ckpt-2 and ckpt-4, with their bundles."""
  model_dir = tmp_path_factory.mktemp("shared") / "four_steps"
  _run(model_dir, 4)
  return model_dir


def _copy(run_dir, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(run_dir, copy)
  return copy


def _stamps(model_dir):
  """{relative path: (mtime_ns, size)} of every file of a run folder."""
  out = {}
  for root, _, names in os.walk(model_dir):
    for name in names:
      path = os.path.join(root, name)
      st = os.stat(path)
      out[os.path.relpath(path, model_dir)] = (st.st_mtime_ns, st.st_size)
  return out


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _data_file(model_dir, step):
  return str(model_dir / f"ckpt-{step}.data-00000-of-00001")


# ------------------------------------------------- checkpoints from files
@pytest.mark.parametrize("state", ["missing", "torn", "names a deleted one"])
def test_the_resume_checkpoint_comes_from_the_files(four_step_run, tmp_path,
                                                    state, caplog):
  run = _copy(four_step_run, tmp_path)
  state_file = run / "checkpoint"
  if state == "missing":
    state_file.unlink()
  elif state == "torn":
    state_file.write_text('model_checkpoint_path: "ckpt-4')
  else:
    state_file.write_text('model_checkpoint_path: "ckpt-40"\n'
                          'all_model_checkpoint_paths: "ckpt-40"\n')
  folder = run_folder.RunFolder(str(run))
  assert folder.resume_checkpoint(repair=False) == str(run / "ckpt-4")
  assert folder.resume_checkpoint() == str(run / "ckpt-4")
  assert "resuming from ckpt-4" in caplog.text
  # Written again, so that the checkpoint manager keeps deleting the oldest.
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(), str(run), 3)
  assert manager.checkpoints == [str(run / "ckpt-2"), str(run / "ckpt-4")]


def test_a_deleted_newest_checkpoint_resumes_from_the_older(four_step_run,
                                                            tmp_path):
  # The natural move after a torn ckpt-4: delete its files, while the state
  # file still names it.
  run = _copy(four_step_run, tmp_path)
  for path in checkpoints.files_of(str(run / "ckpt-4")):
    os.remove(path)
  assert run_folder.RunFolder(str(run)).resume_checkpoint() == str(
      run / "ckpt-2")


def test_a_damaged_run_folder_resumes_from_its_newest_readable_checkpoint(
    four_step_run, tmp_path, caplog):
  """End to end: a torn state file, a torn newest checkpoint and the
  temporaries of killed writers; the run resumes from ckpt-2, keeps the
  torn files aside, and rewrites none of what it keeps."""
  run = _copy(four_step_run, tmp_path)
  (run / "checkpoint").write_text('model_checkpoint_path: "ckpt-4')
  _truncate(_data_file(run, 4))
  torn = open(_data_file(run, 4), "rb").read()
  stale = [run / "best.json.tmp-123-0123abcd",
           run / "model" / "model.json.tmp-9-deadbeef",
           run / ("checkpoint.tmp" + "ab" * 16)]
  for path in stale:
    path.write_bytes(b"")
  (run / "ckpt-6_temp").mkdir()
  (run / "ckpt-6_temp" / "part-00000-of-00001.index").write_bytes(b"")
  keep = run / "notes.tmp-mine"
  keep.write_text("a user's file")
  before = _stamps(run)
  _run(run, 5)
  after = _stamps(run)
  for name in ("ckpt-2.index", "ckpt-2.data-00000-of-00001", "run.json"):
    assert after[name] == before[name], name
  assert "ckpt-4 cannot be read" in caplog.text
  assert "Resuming from ckpt-2" in caplog.text
  assert int(tf.train.load_checkpoint(str(run / "ckpt-5")).get_tensor(
      "step/.ATTRIBUTES/VARIABLE_VALUE")) == 5
  # The torn files are kept, out of the way of the next save of step 4.
  kept = run / run_folder.UNREADABLE
  assert sorted(os.listdir(kept)) == ["ckpt-4.data-00000-of-00001",
                                      "ckpt-4.index"]
  assert (kept / "ckpt-4.data-00000-of-00001").read_bytes() == torn
  assert checkpoints.steps_on_disk(str(run)) == [2, 4, 5]
  checkpoints.verify(str(run / "ckpt-4"))
  for path in stale + [run / "ckpt-6_temp"]:
    assert not path.exists(), path
  assert keep.exists()


def test_no_readable_checkpoint_refuses_and_changes_nothing(four_step_run,
                                                            tmp_path):
  run = _copy(four_step_run, tmp_path)
  _truncate(_data_file(run, 4))
  (run / "ckpt-2.index").write_bytes(b"not an index")
  before = _stamps(run)
  with pytest.raises(UserInputError) as e:
    _run(run, 6)
  message = errors.message(e.value)
  assert "\n" not in message
  assert "ckpt-4" in message and "ckpt-2" in message
  assert "restore the files" in message
  after = _stamps(run)
  after.pop(run_lock.LOCK_FILE, None)
  before.pop(run_lock.LOCK_FILE, None)
  assert after == before


def test_a_trained_bundle_without_training_checkpoints_is_not_overwritten(
    four_step_run, tmp_path):
  run = _copy(four_step_run, tmp_path)
  for name in os.listdir(run):
    if name.startswith("ckpt-") or name == "checkpoint":
      os.remove(run / name)
  before = _stamps(run)
  with pytest.raises(UserInputError, match="model/ holds trained models"):
    _run(run, 6)
  after = _stamps(run)
  after.pop(run_lock.LOCK_FILE, None)
  before.pop(run_lock.LOCK_FILE, None)
  assert after == before


# ------------------------------------------------------------ bad starts
def test_a_model_dir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  with pytest.raises(UserInputError, match="is a file, not a folder"):
    _run(path, 2)
  assert path.read_text() == "x"


@pytest.mark.parametrize("binding,named", [
    ("train.num_steps = 'abc'", "train.num_steps = 'abc' (give a whole"),
    ("train.evaluator = 3", "train.evaluator = 3 (give an evaluator"),
    ("train.g_lr = 'fast'", "train.g_lr = 'fast' (give a number)"),
])
def test_settings_of_the_wrong_type_are_refused_before_anything_runs(
    tmp_path, binding, named):
  run = tmp_path / "new"
  with pytest.raises(UserInputError) as e:
    _run(run, 2, [binding])
  message = errors.message(e.value)
  assert named in message and "\n" not in message
  assert not run.exists()


def test_a_failed_start_leaves_no_empty_model_dir(tmp_path):
  run = tmp_path / "new"
  with pytest.raises(UserInputError):
    _run(run, 2, ["load_training_data.classes = [0, 1, 2, 3, 4, 5, 6, 70]"])
  assert not run.exists()


# ------------------------------------------------------------------ lock
def test_a_second_trainer_is_refused_while_the_first_holds_the_folder(
    four_step_run, tmp_path):
  run = _copy(four_step_run, tmp_path)
  before = _stamps(run)
  with run_lock.RunLock(str(run)):
    with pytest.raises(run_lock.RunFolderBusy) as e:
      _run(run, 6)
  message = errors.message(e.value)
  assert f"process {os.getpid()}" in message and "\n" not in message
  after = _stamps(run)
  assert {k: v for k, v in after.items() if k != run_lock.LOCK_FILE} == {
      k: v for k, v in before.items() if k != run_lock.LOCK_FILE}


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
  script = textwrap.dedent(f"""
      import os, signal, sys
      sys.path.insert(0, {REPO!r})
      from tfgt import run_lock
      run_lock.RunLock({str(tmp_path)!r}).acquire()
      print("held", flush=True)
      os.kill(os.getpid(), signal.SIGKILL)
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == -9 and "held" in result.stdout
  assert (tmp_path / run_lock.LOCK_FILE).exists()
  lock = run_lock.RunLock(str(tmp_path))
  lock.acquire()
  assert lock.held
  # Held: another holder (another open file, as another process) is refused.
  with pytest.raises(run_lock.RunFolderBusy, match="being trained by"):
    run_lock.RunLock(str(tmp_path)).acquire()
  lock.release()
  run_lock.RunLock(str(tmp_path)).acquire()


# ------------------------------------------------------- best and final
def test_best_json_always_names_a_bundle_that_exists(tmp_path, monkeypatch):
  run = tmp_path / "run"
  evaluator = ScriptedEvaluator("fid", [5.0, 3.0, 2.0])
  real_write = files.write_json
  seen = {}

  def kill_at_the_second_best(path, value):
    if path.endswith(run_folder.BEST) and value["step"] == 2:
      # A kill here, after the new best bundle and before best.json: both
      # bundles are on disk and best.json still names step 1.
      seen["steps"] = checkpoints.steps_on_disk(str(run / "model" / "best"))
      seen["best"] = bundle.checkpoint_path(str(run / "model"), "best")
      raise KeyboardInterrupt
    real_write(path, value)

  monkeypatch.setattr(files, "write_json", kill_at_the_second_best)
  with pytest.raises(KeyboardInterrupt):
    _run_evaluated(run, 3, evaluator)
  assert seen["steps"] == [1, 2]
  assert seen["best"].endswith("ckpt-1")
  assert bundle.checkpoint_path(str(run / "model"), "best").endswith("ckpt-1")
  # What the next start does first (before training) finishes the job.
  run_folder.RunFolder(str(run)).prune_best_bundle()
  assert checkpoints.steps_on_disk(str(run / "model" / "best")) == [1]
  assert tf.train.latest_checkpoint(str(run / "model" / "best")).endswith(
      "ckpt-1")


def test_png_writes_are_atomic(tmp_path, monkeypatch):
  path = str(tmp_path / "samples.png")
  images.save_png(np.zeros([4, 4, 1], np.uint8), path)
  before = open(path, "rb").read()

  def killed(*unused):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "replace", killed)
  with pytest.raises(KeyboardInterrupt):
    images.save_png(np.full([8, 8, 3], 9, np.uint8), path)
  assert open(path, "rb").read() == before
  assert os.listdir(tmp_path) == ["samples.png"]


# -------------------------------------------------------------- full disk
@pytest.fixture
def small_disk(tmp_path):
  """A 16 MiB tmpfs (root only: skipped where mounts are not allowed)."""
  mount = tmp_path / "disk"
  mount.mkdir()
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                           str(mount)], capture_output=True, text=True)
  if result.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_in_one_line_and_keeps_the_last_checkpoint(
    four_step_run, small_disk):
  run = small_disk / "run"
  shutil.copytree(four_step_run, run)
  stamp = _stamps(run)["ckpt-4.index"]
  filler = small_disk / "filler"
  with open(filler, "wb", buffering=0) as f:
    try:
      while True:
        f.write(b"\0" * (1 << 16))
        f.flush()
    except OSError:
      pass
  with pytest.raises(UserInputError) as e:
    _run(run, 6)
  message = errors.message(e.value)
  assert "disk is full" in message and "ckpt-4" in message
  assert "\n" not in message
  assert _stamps(run)["ckpt-4.index"] == stamp
  checkpoints.verify(str(run / "ckpt-4"))
  filler.unlink()
  # The same command resumes from it once there is space.
  assert run_folder.RunFolder(str(run)).resume_checkpoint() == str(
      run / "ckpt-4")
