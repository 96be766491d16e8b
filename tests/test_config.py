"""Gin mistakes become one-line errors that say the fix (tfgt.config)."""

import glob
import os
import shutil
import subprocess
import sys

import gin
import pytest

from tests.conftest import REPO
from tfgt import config
from tfgt import errors
from tfgt import evaluate as evaluate_lib
# Registers train with gin.
from tfgt import train  # pylint: disable=unused-import
from tfgt.errors import UserInputError

BUNDLE = os.path.join(REPO, "tfgt", "pretrained", "fashion_mnist_biggan")


def parse_error(*params, **kwargs) -> str:
  with pytest.raises(UserInputError) as info:
    config.parse((), params, **kwargs)
  message = str(info.value)
  assert "\n" not in message
  return message


@pytest.mark.parametrize("binding, expected", [
    # A string whose quotes a shell removed.
    ("image_folder.root=/tmp/x",
     "Gin binding \"image_folder.root=/tmp/x\": /tmp/x is not a gin value: "
     "put strings in quotes: image_folder.root = '/tmp/x' (in a shell: "
     "--gin_param=\"image_folder.root = '/tmp/x'\")."),
    ("load_training_data.classes=[Bag, Sandal]",
     "Bag is not a gin value: put strings in quotes: "
     "load_training_data.classes = ['Bag', 'Sandal']"),
    ("image_folder.root = /tmp/my photos",
     "image_folder.root = '/tmp/my photos'"),
    ("load_training_data.source = fashion_mnist",
     "fashion_mnist is a configurable: write @fashion_mnist to refer to it"),
    ("image_folder.root = '/tmp/x", "closing quote (') is missing"),
    ("load_training_data.classes = [1, 2", "a bracket or a quote is not "
     "closed"),
    ("train.num_steps", "expected ':' or '='. A binding reads "
     "configurable.parameter = value"),
    # Misspelt parameter: the existing ones, nearest first.
    ("train.num_step=5",
     "Gin binding \"train.num_step=5\": train has no parameter num_step; its "
     "parameters, nearest first: num_steps, d_steps, "),
    ("image_folder.rot = 'x'", "image_folder has no parameter rot; its "
     "parameters, nearest first: root, background."),
    ("BigGANGenerator.num_classes = 3", "BigGANGenerator.num_classes is set "
     "by the library, not by gin; remove the binding."),
    ("Scratch.strength = 3", "Scratch has no parameter strength; its "
     "parameters, nearest first: architecture."),
    # Unknown configurables and references: the nearest names.
    ("trian.num_steps = 5", "no configurable is named trian; the nearest "
     "names are train, "),
    ("load_training_data.source=@ImageFolder",
     "Gin binding \"load_training_data.source=@ImageFolder\": @ImageFolder "
     "names no configurable; the nearest names are image_folder, "),
    ("train.method = @Scratc()", "@Scratc() names no configurable; the "
     "nearest names are Scratch, "),
    ("train.num_steps = %STEPS", "no binding defines the macro %STEPS; add "
     "one (STEPS = value)"),
    ("import no_such_module_of_tfgt", "module no_such_module_of_tfgt cannot "
     "be imported"),
    ("include 'no/such/file.gin'", "the included file no/such/file.gin does "
     "not exist; include paths are relative to the working directory"),
])
def test_mistakes_name_the_binding_and_the_fix(binding, expected):
  assert expected in parse_error(binding)


@pytest.mark.parametrize("binding, expected", [
    ("train.num_steps = [1, foo(", 'Gin binding "train.num_steps = [1, foo(": '
     "foo is not a gin value. A binding reads configurable.parameter = "
     "value, with strings in quotes"),
    ("train.num_steps = {1: foo}", "foo is not a gin value. A binding reads"),
    ("train.num_steps = {foo(: 1}", "foo is not a gin value. A binding reads"),
    # A binding over several lines is named whole.
    ("train.num_steps = [1,\n  foo(\n]",
     'Gin binding "train.num_steps = [1, foo( ]": foo is not a gin value.'),
])
def test_syntax_errors_show_the_text_not_an_object_address(binding,
                                                           expected):
  message = parse_error(binding)
  assert expected in message
  assert " at 0x" not in message and "ast." not in message


def test_dynamic_registration_errors_show_the_text(tmp_path):
  path = tmp_path / "dynamic.gin"
  path.write_text("from __gin__ import dynamic_registration\n"
                  "train.num_steps = [1, foo]\n")
  with pytest.raises(UserInputError) as info:
    config.parse([str(path)])
  assert str(info.value) == (
      f'{path} line 2, "train.num_steps = [1, foo]": foo is not a gin value. '
      "A binding reads configurable.parameter = value, with strings in "
      "quotes, references as @name or @name() and macros as %NAME.")


def test_repository_configs_parse_from_any_working_directory(
    tmp_path, monkeypatch):
  # cgantransfer.gin includes "gin_configs/fashion_mnist/transfer_base.gin",
  # which includes base.gin: found from the folder that holds gin_configs/.
  monkeypatch.chdir(tmp_path)
  config.parse([os.path.join(REPO, "gin_configs", "fashion_mnist",
                             "cgantransfer.gin")], ["train.num_steps = 3"])
  assert gin.query_parameter("train.num_steps") == 3
  assert gin.query_parameter("train.batch_size") == 64  # From base.gin.
  gin.clear_config()
  # In a tree of one's own: found from the folder that holds gin_configs/,
  # and from a config outside any gin_configs/ only by the working directory
  # (and gin's search path).
  configs = tmp_path / "project" / "gin_configs"
  configs.mkdir(parents=True)
  (configs / "part.gin").write_text("train.num_steps = 7\n")
  (configs / "whole.gin").write_text('include "gin_configs/part.gin"\n')
  config.parse([str(configs / "whole.gin")])
  assert gin.query_parameter("train.num_steps") == 7
  gin.clear_config()
  (tmp_path / "mine.gin").write_text('include "gin_configs/part.gin"\n')
  with pytest.raises(UserInputError, match="the included file gin_configs/"
                     "part.gin does not exist"):
    config.parse([str(tmp_path / "mine.gin")])


def test_no_message_shows_an_object_address():
  assert config._readable(
      "f is <function f at 0x7f3a2c1d0540>, x is <ast.Name object at "
      "0x7f9b29029270>") == "f is <function f>, x is <ast.Name>"


def test_the_shell_form_survives_backslashes():
  message = parse_error(r"image_folder.root = C:\data")
  assert "image_folder.root = 'C:\\\\data'" in message
  assert "'--gin_param=image_folder.root = '\"'\"'C:\\\\data'" in message


def test_missing_file(tmp_path):
  with pytest.raises(UserInputError, match="Gin file .*nope.gin does not "
                     "exist: give the path of a .gin file"):
    config.parse([str(tmp_path / "nope.gin")])
  with pytest.raises(UserInputError, match="is a directory"):
    config.parse([str(tmp_path)])


def test_errors_in_files_name_the_file_and_line(tmp_path):
  inner = tmp_path / "inner.gin"
  inner.write_text("# Comment\n\ntrain.num_steps = 5\nimage_folder.root = "
                   "/data/cats\n")
  outer = tmp_path / "outer.gin"
  outer.write_text(f"include '{inner}'\ntrain.batch_size = 8\n")
  with pytest.raises(UserInputError) as info:
    config.parse([str(outer)])
  assert str(info.value).startswith(
      f"{inner} line 4, \"image_folder.root = /data/cats\": /data/cats is "
      "not a gin value: put strings in quotes: image_folder.root = "
      "'/data/cats'.")
  inner.write_text("train.num_steps = 5\n\ntrain.num_step = 5\n")
  with pytest.raises(UserInputError, match=(
      f"^{inner} line 3, \"train.num_step = 5\": train has no parameter "
      "num_step; its parameters, nearest first: num_steps")):
    config.parse([str(outer)])
  inner.write_text(f"include '{outer}'\n")
  with pytest.raises(UserInputError, match="includes itself"):
    config.parse([str(outer)])


def test_a_failed_parse_leaves_the_config_as_it_was():
  config.parse((), ["Evaluator.seed = 5"], finalize=False)
  parse_error("Evaluator.batch_size = 3", "Evaluator.sed = 1",
              finalize=False)
  assert gin.query_parameter("Evaluator.seed") == 5
  with pytest.raises(ValueError):
    gin.query_parameter("Evaluator.batch_size")


def test_skip_unknown_warns_and_binds_the_rest(tmp_path):
  path = tmp_path / "old.gin"
  path.write_text("\n".join([
      "import a_module_that_was_removed",
      "Evaluator.seed = 3",
      "RetiredMethod.strength = 0.5",
      "Evaluator.retired_option = 1",
      "Evaluator.extractor = @RetiredExtractor()",
      "train.whatever = 1",  # ignored: neither bound nor reported
      "load_training_data.split = 'test'",
  ]) + "\n")
  skipped = config.parse([str(path)], skip_unknown=True, ignore=["train"])
  assert len(skipped) == 4, skipped
  assert skipped[1] == (f"{path} line 3, \"RetiredMethod.strength = 0.5\": "
                        "skipped (no configurable is named RetiredMethod).")
  assert "Evaluator has no parameter retired_option" in skipped[2]
  assert "@RetiredExtractor() names no configurable" in skipped[3]
  assert gin.query_parameter("Evaluator.seed") == 3
  assert gin.query_parameter("load_training_data.split") == "test"
  assert gin.config_is_locked()


def test_skip_unknown_skips_the_users_of_a_skipped_macro():
  skipped = config.parse((), [
      "EXTRACTOR = @RetiredExtractor()", "Evaluator.extractor = %EXTRACTOR",
      "SEED = 4", "Evaluator.seed = %SEED"], skip_unknown=True)
  assert [m.split(": skipped ")[1] for m in skipped] == [
      "(@RetiredExtractor() names no configurable).",
      "(it uses %EXTRACTOR, whose binding was skipped)."]
  assert gin.query_parameter("Evaluator.seed").scoped_configurable_fn() == 4


def test_ignored_configurables_are_dropped_unchecked():
  config.parse((), ["train.num_step = 5", "Evaluator.seed = 2"],
               ignore=["train"])
  assert gin.query_parameter("Evaluator.seed") == 2
  with pytest.raises(ValueError):
    gin.query_parameter("train.num_steps")


@pytest.mark.parametrize("path", sorted(
    glob.glob(os.path.join(REPO, "gin_configs", "**", "*.gin"),
              recursive=True)), ids=lambda path: os.path.relpath(path, REPO))
def test_shipped_configs_parse_as_gin_parses_them(path, monkeypatch):
  monkeypatch.chdir(REPO)  # Their includes are relative to the repository.
  params = ["train.num_steps = 3"]
  config.parse([path], params)
  ours = gin.config_str()
  gin.clear_config()
  gin.parse_config_files_and_bindings([path], params)
  assert ours == gin.config_str()


def test_isolated_restores_the_callers_config():
  gin.parse_config(["Evaluator.seed = 5", "LR = 0.5",
                    "Evaluator.batch_size = %LR"])
  gin.finalize()
  before = gin.config_str()
  with config.isolated():
    assert not gin.config_is_locked()
    with pytest.raises(ValueError):
      gin.query_parameter("Evaluator.seed")
    config.parse((), ["Evaluator.seed = 7"])
  assert gin.config_str() == before and gin.config_is_locked()
  with pytest.raises(KeyError):
    with config.isolated():
      gin.bind_parameter("Evaluator.seed", 8)
      raise KeyError("any error")
  assert gin.config_str() == before and gin.config_is_locked()
  assert gin.query_parameter("Evaluator.seed") == 5


def test_nearest():
  assert config.nearest("ImageFolder", ["train", "image_folder", "Scratch"],
                        1) == ["image_folder"]
  assert config.nearest("num_step", ["seed", "num_steps", "d_steps"]) == [
      "num_steps", "d_steps", "seed"]


# Command lines: exit code 2, one line on stderr, no traceback.

ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")


def run_command(args, expected):
  out = subprocess.run([sys.executable] + args, capture_output=True,
                       text=True, env=ENV, cwd=REPO, timeout=600,
                       check=False)
  assert out.returncode == 2, out.stderr[-3000:]
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  lines = [line for line in out.stderr.splitlines() if expected in line]
  assert len(lines) == 1, out.stderr[-3000:]
  return lines[0]


@pytest.mark.parametrize("param, expected", [
    ("image_folder.root=/tmp/x", "put strings in quotes: image_folder.root "
     "= '/tmp/x'"),
    ("Evaluator.num_sample=5", "Evaluator has no parameter num_sample; its "
     "parameters, nearest first: num_samples"),
    ("load_training_data.source=@ImageFolder", "@ImageFolder names no "
     "configurable; the nearest names are image_folder"),
])
def test_evaluate_command(param, expected):
  line = run_command(
      ["-m", "tfgt.evaluate", "--model_dir=pretrained:fashion_mnist_biggan",
       "--gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin",
       f"--gin_param={param}"], expected)
  assert f'Gin binding "{param}"' in line


@pytest.fixture
def run_folder(tmp_path):
  """A run folder made of the shipped bundle, without training."""
  shutil.copytree(BUNDLE, tmp_path / "run" / "model")
  (tmp_path / "run" / "config.gin").write_text(
      "load_training_data.split = 'test'\ntrain.method = @CGANTransfer()\n")
  return str(tmp_path / "run")


def test_plot_similarity_command(run_folder):
  line = run_command(
      ["-m", "tools.plot_similarity",
       f"--model_dir={run_folder}", "--gin_param=CGANTransfer.source=runs/x"],
      "put strings in quotes")
  assert "CGANTransfer.source = 'runs/x'" in line


def test_benchmark_transfer_command(tmp_path):
  run_command(
      ["-m", "tools.benchmark_transfer", "--methods=scratch",
       "--images_per_class=8", f"--out_dir={tmp_path}",
       "--gin_param=train.num_step=5"],
      "train has no parameter num_step; its parameters, nearest first: "
      "num_steps")



def test_train_command(tmp_path):
  # Each kind of mistake is checked on `config.parse` above; the command
  # line turns any of them into one line and exit code 2.
  run_command(
      ["-m", "tfgt.train", f"--model_dir={tmp_path / 'run'}",
       "--gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin",
       "--gin_param=train.num_step=5"],
      "train has no parameter num_step; its parameters, nearest first: "
      "num_steps")
  assert not (tmp_path / "run").exists()  # Nothing written.


def test_evaluating_a_shipped_model_writes_outside_the_package():
  prefix = os.path.join(BUNDLE, "ckpt-5000")
  assert evaluate_lib.default_output("pretrained:fashion_mnist_biggan",
                                     prefix) == (
                                         "fashion_mnist_biggan-ckpt-5000"
                                         ".eval.json")
  assert evaluate_lib.default_output("/runs/a", "/runs/a/model/ckpt-7") == (
      "/runs/a/model/ckpt-7.eval.json")


def test_errors_reach_people_without_gin_call_lines():
  error = UserInputError("Class 'solo' has 1 image.\n  In call to "
                         "configurable 'train' (<function train at 0x1>)")
  assert errors.message(error) == "Class 'solo' has 1 image."
