"""Bad input to tfgt.sample, tfgt.evaluate, tfgt.export and tfgt.import_source
gives one line and exit code 2; --help exits 0.

Damaged bundles are copies of the shipped source model in a run folder
(`<run>/model`), so that nothing is trained here.
"""

import json
import os
import shutil
import subprocess
import sys

from absl import app
from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR, REPO
from tfgt import checkpoints
from tfgt import cli
from tfgt import errors
from tfgt import evaluate
from tfgt import export
from tfgt import sample
from tfgt.errors import UserInputError
from tfgt.models import bundle

SHIPPED = os.path.join(REPO, "tfgt", "pretrained", "fashion_mnist_biggan")
SHIPPED_STEP = 5000
DATA = f"ckpt-{SHIPPED_STEP}.data-00000-of-00001"
INDEX = f"ckpt-{SHIPPED_STEP}.index"


def _run_folder(root, steps=(SHIPPED_STEP,)) -> str:
  """A run folder whose bundle holds the shipped checkpoint under `steps`,
  with the config.gin and classes.json that tfgt.evaluate reads."""
  run = root / "run"
  model = run / "model"
  model.mkdir(parents=True)
  for name in ("model.json", "checkpoint"):
    shutil.copy(os.path.join(SHIPPED, name), model / name)
  for step in steps:
    for name in (DATA, INDEX):
      shutil.copy(os.path.join(SHIPPED, name),
                  model / name.replace(str(SHIPPED_STEP), str(step)))
  checkpoints.write_state(str(model), sorted(steps))
  (run / "config.gin").write_text("\n".join([
      f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
      "load_training_data.source = @fashion_mnist",
      "load_training_data.split = 'test'",
      "load_training_data.classes = [0, 1]"]) + "\n")
  (run / "classes.json").write_text(json.dumps(dict(
      source_ids=[0, 1], names=["T-shirt/top", "Trouser"], label_offset=0)))
  return str(run)


def _one_line(error: pytest.ExceptionInfo) -> str:
  message = errors.message(error.value)
  assert "\n" not in message, message
  return message


def _sample(run, tmp_path):
  return sample.draw_grid(run, per_class=2)


def _evaluate(run, tmp_path):
  return evaluate.run(run, "latest", dict(metrics=("fid",), num_samples=4),
                      output=str(tmp_path / "eval.json"))


def _export(run, tmp_path):
  return export.export(run, str(tmp_path / "serving"), verify=False)


COMMANDS = {"sample": _sample, "evaluate": _evaluate, "export": _export}


# ------------------------------------------------- damaged checkpoint files
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damaged", [DATA, INDEX])
def test_truncated_checkpoint_file_is_one_line(tmp_path, command, damaged):
  run = _run_folder(tmp_path)
  path = os.path.join(run, "model", damaged)
  with open(path, "rb") as f:
    content = f.read()
  with open(path, "wb") as f:
    f.write(content[:len(content) // 2])
  with pytest.raises(checkpoints.UnreadableCheckpoint) as error:
    COMMANDS[command](run, tmp_path)
  message = _one_line(error)
  assert os.path.join(run, "model", f"ckpt-{SHIPPED_STEP}") in message
  assert f"The damaged file is {damaged}. Replace the checkpoint's files " in (
      message)
  assert not (tmp_path / "serving").exists()


def test_altered_data_file_is_refused_before_restoring(tmp_path):
  # One flipped byte: TensorFlow's restore alone does not check it.
  run = _run_folder(tmp_path, steps=(10, 20))
  path = os.path.join(run, "model", DATA.replace(str(SHIPPED_STEP), "20"))
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))
  with pytest.raises(checkpoints.UnreadableCheckpoint) as error:
    sample.draw_grid(run, per_class=2)
  assert "Checksum does not match" in _one_line(error)
  assert "or read another one (steps there: 10)" in _one_line(error)


def test_restore_turns_read_errors_into_one_line(tmp_path, monkeypatch):
  # A checkpoint damaged after it was checked (a live run prunes its old
  # ones): the restore's own error is reported the same way.
  run = _run_folder(tmp_path)
  path = os.path.join(run, "model", DATA)
  with open(path, "r+b") as f:
    f.truncate(100)
  monkeypatch.setattr(checkpoints, "verify", lambda prefix: None)
  with pytest.raises(checkpoints.UnreadableCheckpoint) as error:
    bundle.load(run)
  message = _one_line(error)
  assert f"ckpt-{SHIPPED_STEP} cannot be read" in message
  assert "no other checkpoint is there" in message


# ------------------------------------------------ "latest" and "best" by file
@pytest.mark.parametrize("state", [None, 'model_checkpoint_path: "ckpt-2',
                                   'model_checkpoint_path: "ckpt-30"\n'])
def test_latest_is_found_from_the_files(tmp_path, state):
  run = _run_folder(tmp_path, steps=(10, 20))
  model = os.path.join(run, "model")
  os.remove(os.path.join(model, checkpoints.STATE_FILE))
  if state is not None:  # torn, or naming a deleted checkpoint
    with open(os.path.join(model, checkpoints.STATE_FILE), "w") as f:
      f.write(state)
  assert bundle.checkpoint_path(model) == os.path.join(model, "ckpt-20")
  assert bundle.checkpoint_path(run.rstrip("/") + "/model/", "latest") == (
      os.path.join(model, "ckpt-20"))
  with pytest.raises(UserInputError, match=r"No checkpoint 15 in .*; steps "
                     r"available: \[10, 20\]"):
    bundle.checkpoint_path(model, 15)


def test_latest_follows_a_valid_state_file(tmp_path):
  run = _run_folder(tmp_path, steps=(10, 20))
  model = os.path.join(run, "model")
  checkpoints.write_state(model, [10])
  assert bundle.checkpoint_path(model) == os.path.join(model, "ckpt-10")


def _best_bundle(run: str, steps, named) -> str:
  model = os.path.join(run, "model")
  best = os.path.join(model, "best")
  os.makedirs(best)
  shutil.copy(os.path.join(SHIPPED, "model.json"), best)
  for step in steps:
    for name in (DATA, INDEX):
      shutil.copy(os.path.join(model, name),
                  os.path.join(best, name.replace(str(SHIPPED_STEP),
                                                  str(step))))
  checkpoints.write_state(best, [max(steps)])
  if named is not None:
    with open(os.path.join(run, "best.json"), "w") as f:
      json.dump({"fid": 3.0, "step": named}, f)
  return best


@pytest.mark.parametrize("steps,named,expected", [
    # The new best bundle is written, best.json does not name it yet.
    ((20, 30), 20, 20),
    # best.json names a bundle that is gone, or there is no best.json.
    ((30,), 20, 30),
    ((20, 30), None, 30),
])
def test_best_is_the_bundle_best_json_names(tmp_path, steps, named,
                                             expected):
  run = _run_folder(tmp_path)
  best = _best_bundle(run, steps, named)
  model = os.path.join(run, "model")
  assert bundle.checkpoint_path(model, "best") == os.path.join(
      best, f"ckpt-{expected}")
  directory, prefix = evaluate.resolve_checkpoint(run, "auto")
  assert (directory, prefix) == (best, os.path.join(best, f"ckpt-{expected}"))


def test_auto_is_latest_when_the_best_folder_is_empty(tmp_path):
  run = _run_folder(tmp_path)
  os.makedirs(os.path.join(run, "model", "best"))
  _, prefix = evaluate.resolve_checkpoint(run, "auto")
  assert prefix == os.path.join(run, "model", f"ckpt-{SHIPPED_STEP}")


# --------------------------------------------------------- invalid model.json
@pytest.mark.parametrize("content,problem", [
    ("{\"generator\": ", "is not valid JSON"),
    ("[1, 2]", "it holds a JSON list, not an object"),
    (b"\xff\xfe{}", "is not valid JSON"),
    ({"generator": {"num_classes": 1}}, "it has no \"class_names\""),
    ({"class_names": ["a"]}, "it has no \"generator\""),
    ({"class_names": "a", "generator": {"num_classes": 1}},
     "\"class_names\" is not a list of one or more strings"),
    ({"class_names": ["a"], "generator": [1]},
     "\"generator\" is not an object of constructor options"),
    ({"class_names": ["a"], "generator": {"num_classes": "1"}},
     "\"generator\".num_classes is '1', not a count"),
    ({"class_names": ["a", "b"], "generator": {"num_classes": 1}},
     "\"generator\".num_classes is 1, but there are 2 class names"),
    ({"class_names": ["a"], "generator": {"num_classes": 1},
      "discriminator": 3}, "\"discriminator\" is not an object"),
    ({"class_names": ["caf\udce9"], "generator": {"num_classes": 1}},
     "the class name \"caf\\xe9\" is not valid Unicode text"),
])
def test_invalid_model_json_is_one_line(tmp_path, content, problem):
  path = tmp_path / bundle.SPEC_FILE
  if isinstance(content, bytes):
    path.write_bytes(content)
  elif isinstance(content, str):
    path.write_text(content)
  else:
    path.write_text(json.dumps(content))
  with pytest.raises(UserInputError) as error:
    bundle.read_spec(str(tmp_path))
  message = _one_line(error)
  assert message.startswith(f"{path} ")
  assert problem in message


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("broken", ["not json", "option type"])
def test_commands_name_an_invalid_model_json(tmp_path, command, broken):
  run = _run_folder(tmp_path)
  path = os.path.join(run, "model", bundle.SPEC_FILE)
  if broken == "not json":
    with open(path, "w") as f:
      f.write("{\"class_names\": [")
  else:
    with open(path) as f:
      spec = json.load(f)
    spec["generator"]["ch"] = "sixteen"
    with open(path, "w") as f:
      json.dump(spec, f)
  with pytest.raises(UserInputError) as error:
    COMMANDS[command](run, tmp_path)
  message = _one_line(error)
  assert path in message
  assert "Put back the model.json written with the bundle's" in message
  assert not (tmp_path / "serving").exists()


# --------------------------------------------------------------- other input
def test_evaluate_says_a_file_is_not_a_run_folder(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("not a run")
  with pytest.raises(UserInputError) as error:
    evaluate.run(str(path))
  assert f"{path} is a file, not a run folder" in _one_line(error)
  with pytest.raises(UserInputError, match="is a file, not a folder"):
    sample.draw_grid(str(path))


@pytest.mark.parametrize("draw", [
    lambda run: sample.draw_grid(run, per_class=1_000_000_000),
    lambda run: sample.draw_grid(run, classes=["0"] * 300, per_class=1000),
    lambda run: sample.draw_interpolation(run, ["0", "1"],
                                          steps=1_000_000_000),
])
def test_sample_refuses_a_grid_too_large_to_write(tmp_path, draw):
  run = _run_folder(tmp_path)
  with pytest.raises(UserInputError) as error:
    draw(run)
  message = _one_line(error)
  assert "more than the 67,108,864 (as many as 8192 x 8192)" in message
  assert "--per_class" in message


def test_sample_draws_in_batches(monkeypatch):
  batches = []

  def draw(inputs):
    batches.append(int(inputs.shape[0]))
    return tf.zeros([inputs.shape[0], 4, 4, 1]) + inputs[:, :1, None, None]

  monkeypatch.setattr(sample, "BATCH_SIZE", 3)
  drawn = sample._in_batches(draw, tf.linspace(-1.0, 1.0, 7)[:, None])
  assert batches == [3, 3, 1]
  assert drawn.shape == (7, 4, 4, 1) and drawn.dtype == np.uint8
  assert drawn[:, 0, 0, 0].tolist() == sorted(drawn[:, 0, 0, 0].tolist())


# ------------------------------------------------------------ command lines
@pytest.mark.parametrize("module,flag", [
    ("sample", "--per_class"), ("evaluate", "--metrics"),
    ("export", "--export_dir"), ("import_source", "--from"),
    ("train", "--gin_file")])
def test_help_exits_0(module, flag):
  result = subprocess.run(
      [sys.executable, "-m", f"tfgt.{module}", "--help"], cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert flag in result.stdout and "Traceback" not in result.stderr
  if module == "sample":
    assert "67,108,864 pixels" in result.stdout
  if module in ("evaluate", "train"):
    # Both evaluate: the same --features.
    assert "--features: Feature extractor of the evaluations" in (
        result.stdout)
  if module in ("sample", "evaluate", "export"):
    # The commands that read a bundle build it in a chosen precision.
    assert ("--precision: <float32|mixed_bfloat16|mixed_float16|auto>"
            in result.stdout)


def test_train_refuses_features_that_do_not_exist_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "tfgt.train",
       "--gin_file=gin_configs/fashion_mnist/cgantransfer.gin",
       f"--model_dir={tmp_path / 'run'}",
       f"--features={tmp_path / 'nope.keras'}"], cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = [l for l in result.stderr.splitlines() if "nope.keras" in l]
  assert len(lines) == 1 and "is neither one of ['classifier', " in lines[0]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "run").exists()


@pytest.fixture
def flag_values():
  """Flags of a command, apart from the process's absl.flags.FLAGS."""
  values = flags.FlagValues()
  flags.DEFINE_enum("from", None, ["stylegan_nvlabs", "biggan_pytorch"],
                    "Format.", flag_values=values)
  flags.DEFINE_integer("per_class", 8, "Columns.", flag_values=values)
  cli.define_help_flags(values)
  return values


@pytest.mark.parametrize("argv,expected", [
    (["--from=nonsense"], "flag --from=nonsense: value should be one of "
     "<stylegan_nvlabs|biggan_pytorch>."),
    (["--per_class=many"], "flag --per_class=many: invalid literal"),
    (["--form=biggan_pytorch"], "Unknown command line flag 'form'"),
])
def test_bad_flags_exit_2_with_one_line(flag_values, capsys, argv, expected):
  with pytest.raises(SystemExit) as exit_:
    cli.parse_flags(["prog"] + argv, flag_values)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and expected in err
  assert "--help` for the flags." in err


def test_usage_errors_exit_2_with_one_line(capsys):
  def main(argv):
    del argv
    raise app.UsageError("--from is required.")

  with pytest.raises(SystemExit) as exit_:
    cli.exit_on_usage_errors(main)(["prog"])
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert "error: --from is required. See `" in err


@pytest.mark.parametrize("flag", ["--help", "-?", "--helpshort",
                                  "--helpfull"])
def test_help_flags_exit_0(flag_values, capsys, flag):
  with pytest.raises(SystemExit) as exit_:
    cli.parse_flags(["prog", flag], flag_values)
  assert exit_.value.code == 0
  out = capsys.readouterr().out
  assert "--helpfull" in out or "flags:" in out


def test_every_command_checks_its_arguments_alike(flag_values, caplog):
  flags.DEFINE_string("out", None, "Output.", flag_values=flag_values)
  flag_values(["prog", "--per_class=2"])
  with pytest.raises(app.UsageError, match=r"Unexpected arguments: \['x'\]"):
    cli.check_arguments(["prog", "x"], flag_values=flag_values)
  with pytest.raises(app.UsageError, match="^--from is required.$"):
    cli.check_arguments(["prog"], ("from", "per_class"), flag_values)
  with pytest.raises(app.UsageError, match="^--from and --out are required.$"):
    cli.check_arguments(["prog"], ("from", "out"), flag_values)
  cli.check_arguments(["prog"], ("per_class",), flag_values)
  # Bad input inside the block: one logged line and exit code 2.
  with pytest.raises(SystemExit) as exit_:
    with cli.exit_on_bad_input():
      raise UserInputError("No such run.\n  In call to configurable 'x'")
  assert exit_.value.code == 2
  assert [r.getMessage() for r in caplog.records] == ["No such run."]


def test_tensorflows_own_info_lines_are_hidden_and_its_warnings_kept():
  import logging as pylogging  # pylint: disable=g-import-not-at-top
  from tfgt import cli  # pylint: disable=g-import-not-at-top
  cli.hide_tensorflow_info()
  cli.hide_tensorflow_info()  # Idempotent: one filter.
  logger = pylogging.getLogger("absl")
  assert logger.filters.count(cli._TF_INFO_FILTER) == 1  # pylint: disable=protected-access

  def record(level, path):
    return pylogging.LogRecord("absl", level, path, 1, "m", None, None)

  saver = os.path.join(os.sep, "site-packages", "tensorflow", "python",
                       "checkpoint", "functional_saver.py")
  assert not logger.filter(record(pylogging.INFO, saver))
  assert logger.filter(record(pylogging.WARNING, saver))
  assert logger.filter(record(pylogging.INFO, os.path.join(
      os.sep, "work", "tfgt", "train.py")))
