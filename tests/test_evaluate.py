"""End to end: a tiny run scored by the trainer and by `tfgt.evaluate`."""

import json
import os
import shutil
import subprocess
import sys

import gin
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR, REPO, TINY
import tfgt.eval  # pylint: disable=unused-import  (registers Evaluator)
from tfgt import evaluate
from tfgt import train as train_lib
from tfgt.errors import UserInputError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A 2-step Scratch run on Bag and Ankle boot, evaluated at step 2."""
  root = tmp_path_factory.mktemp("eval_run")
  model_dir = str(root / "run")
  cache_dir = str(root / "cache")
  gin.clear_config()
  train_lib.parse_config(
      [os.path.join(REPO, "gin_configs/fashion_mnist/base.gin")],
      TINY + [
          f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
          "train.method = @Scratch()",
          # The test split keeps the reference small (2 x 1000 images).
          "load_training_data.split = 'test'",
          "load_training_data.classes = [8, 9]",
          "load_training_data.images_per_class = 16",
          "train.num_steps = 2",
          "train.eval_every = 2",
          "train.evaluator = @Evaluator()",
          "Evaluator.num_samples = 64",
          f"Evaluator.cache_dir = '{cache_dir}'",
      ])
  # One replica: tracing the mirrored train step would take most of the
  # test's time, and the strategy is not what this test is about.
  train_lib.train(model_dir, strategy=tf.distribute.get_strategy())
  gin.clear_config()
  return model_dir, cache_dir


def test_trainer_keeps_the_best_fid(tiny_run):
  model_dir, cache_dir = tiny_run
  with open(os.path.join(model_dir, "best.json")) as f:
    best = json.load(f)
  assert best["step"] == 2 and best["fid"] > 0 and "mfid" in best
  assert os.path.exists(os.path.join(model_dir, "model", "best",
                                     "model.json"))
  # The reference features and the feature check's spread unit (the
  # classifier's own test images).
  assert len(os.listdir(cache_dir)) == 2


def test_evaluate_command(tiny_run):
  model_dir, cache_dir = tiny_run
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "tfgt.evaluate", f"--model_dir={model_dir}",
       "--checkpoint=best", "--metrics=fid,kid,mfid,kmmd,prdc",
       "--num_samples=40", f"--cache_dir={cache_dir}",
       "--precision=mixed_bfloat16"],
      capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
      check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  for word in ("fid", "kid x100", "mfid", "kmmd", "precision", "coverage",
               "Bag", "Ankle boot"):
    assert word in out.stdout
  path = os.path.join(model_dir, "model", "best", "ckpt-2.eval.json")
  with open(path) as f:
    written = json.load(f)
  assert set(written["metrics"]) >= {"fid", "kid", "mfid", "kmmd",
                                     "precision", "recall", "density",
                                     "coverage"}
  assert written["settings"]["generated"] == 40
  assert written["settings"]["precision"] == "mixed_bfloat16"
  assert written["settings"]["real"] == 2000
  assert written["settings"]["model_ids"] == [0, 1]
  assert list(written["per_class"]) == ["Bag", "Ankle boot"]


def test_evaluate_in_process_and_bad_input(tiny_run, tmp_path):
  model_dir, cache_dir = tiny_run
  gin.parse_config("Evaluator.seed = 5")  # replaced by the run's config
  result, path = evaluate.run(
      model_dir, "latest", dict(metrics=("fid",), num_samples=30,
                                cache_dir=cache_dir),
      output=str(tmp_path / "eval.json"))
  assert set(result.metrics) == {"fid", "features_separation",
                                 "features_min_spread"}
  assert os.path.exists(path)
  assert result.settings["seed"] == 0
  assert result.settings["precision"] == "float32"
  assert "fid" in evaluate.format_table(result)
  with pytest.raises(UserInputError, match="config.gin"):
    evaluate.run(str(tmp_path))
  with pytest.raises(UserInputError, match="No checkpoint 7"):
    evaluate.run(model_dir, "7")


def test_bad_checkpoint_name_lists_the_choices(tmp_path):
  with pytest.raises(UserInputError, match="--checkpoint='bset' names no "
                     "checkpoint: use 'best', 'latest', 'auto' or a step"):
    evaluate.resolve_checkpoint(str(tmp_path), "bset")


def test_evaluate_a_bare_bundle(tiny_run, tmp_path):
  model_dir, cache_dir = tiny_run
  bundle_dir = os.path.join(model_dir, "model")  # no config.gin here
  with pytest.raises(UserInputError, match="without the config.gin"):
    evaluate.run(bundle_dir)
  data = [f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
          "load_training_data.source = @fashion_mnist",
          "load_training_data.split = 'test'",
          # A training config's own bindings are accepted and ignored.
          "train.num_steps = 5"]
  overrides = dict(metrics=("fid",), num_samples=20, cache_dir=cache_dir)
  result, _ = evaluate.run(
      bundle_dir, "latest", overrides,
      gin_params=data + ["load_training_data.classes = [8, 9]"],
      output=str(tmp_path / "bundle.json"))
  assert result.settings["classes"] == ["Bag", "Ankle boot"]
  # Data whose classes are not the model's is refused before sampling.
  with pytest.raises(UserInputError, match="do not match"):
    evaluate.run(bundle_dir, "latest", overrides,
                 gin_params=data + ["load_training_data.classes = [7, 9]"],
                 output=str(tmp_path / "wrong.json"))


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
  """A run folder made of the shipped bundle, without training, whose
  config.gin binds what this version of tfgt does not know."""
  root = tmp_path_factory.mktemp("old_run")
  model_dir = root / "run"
  shutil.copytree(os.path.join(REPO, "tfgt", "pretrained",
                               "fashion_mnist_biggan"), model_dir / "model")
  (model_dir / "config.gin").write_text("\n".join([
      f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
      "load_training_data.source = @fashion_mnist",
      "load_training_data.split = 'test'",
      "load_training_data.classes = [0, 1]",
      "load_training_data.retired_option = 3",
      "RetiredMethod.strength = 0.5",
      "Evaluator.extractor = @RetiredExtractor()",
      "train.method = @RetiredMethod()",
  ]) + "\n")
  (model_dir / "classes.json").write_text(json.dumps(dict(
      source_ids=[0, 1], names=["T-shirt/top", "Trouser"], label_offset=0)))
  return str(model_dir), str(root / "cache")


def test_evaluate_skips_what_the_code_no_longer_knows(old_run, tmp_path):
  model_dir, cache_dir = old_run
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "tfgt.evaluate", f"--model_dir={model_dir}",
       "--metrics=fid", "--num_samples=20", f"--cache_dir={cache_dir}",
       f"--output={tmp_path / 'eval.json'}"],
      capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
      check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  config = os.path.join(model_dir, "config.gin")
  for line, reason in (
      (5, "load_training_data has no parameter retired_option"),
      (6, "no configurable is named RetiredMethod"),
      (7, "@RetiredExtractor() names no configurable")):
    assert f"{config} line {line}, " in out.stderr
    assert f"skipped ({reason})" in out.stderr
  assert "train.method" not in out.stderr  # train.* is not for evaluate
  assert "T-shirt/top" in out.stdout and "fid" in out.stdout
  with open(tmp_path / "eval.json") as f:
    assert json.load(f)["settings"]["classes"] == ["T-shirt/top", "Trouser"]


def test_evaluate_run_keeps_the_callers_gin_config(old_run, tmp_path):
  model_dir, cache_dir = old_run
  gin.parse_config(["Evaluator.seed = 5",
                    "load_training_data.images_per_class = 3"])
  before = gin.config_str()
  result, _ = evaluate.run(
      model_dir, overrides=dict(metrics=("fid",), num_samples=20,
                                cache_dir=cache_dir),
      output=str(tmp_path / "eval.json"))
  assert result.settings["seed"] == 0  # the caller's bindings do not apply
  assert gin.config_str() == before
  assert gin.query_parameter("Evaluator.seed") == 5
  gin.finalize()
  with pytest.raises(UserInputError, match="Evaluator has no parameter "
                     "num_sample; its parameters, nearest first: "
                     "num_samples"):
    evaluate.run(model_dir, gin_params=["Evaluator.num_sample = 5"])
  assert gin.config_str() == before and gin.config_is_locked()
