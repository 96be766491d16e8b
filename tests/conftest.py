"""Shared test set-up.

The CPU is split into two logical devices before TensorFlow starts, so that
tests can run MirroredStrategy over two replicas on a CPU-only machine. The
in-process training runs of `run_training` and `run_evaluated` still train
on one device (TensorFlow's default strategy, what `python -m tfgt.train`
uses without --logical_cpus): the tests of the replicas give a
MirroredStrategy, or bind `make_strategy.name`, themselves.

Every TensorFlow process of the suite (the test workers and the processes
they start, which inherit the environment) runs its ops on one thread:
`make test` runs one pytest-xdist worker per core, and the tiny test models
gain nothing from a second thread (tests/test_export.py alone: 62 s on one
thread against 72 s on two, AMD EPYC), while two workers of two threads each
contend for two cores. A variable already set in the environment wins.

Graphs traced in the test processes run without Grappler's rewrites: on the
tiny test models they cost more than they save (a two-step training run took
32 s without them against 38 s with them, AMD EPYC). Tests that start
`python -m tfgt.*` or a tool as a child process (the command lines, the
multi-worker run, the determinism checks, the notebook) run the optimised
graphs that users run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _threads in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                 "OMP_NUM_THREADS"):
  os.environ.setdefault(_threads, "1")

import glob  # pylint: disable=g-import-not-at-top
import json  # pylint: disable=g-import-not-at-top

import gin  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tfgt import distribute  # pylint: disable=g-import-not-at-top

distribute.split_cpu(2)
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

from tfgt import train as train_lib  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The folder of the tests.
TESTS = os.path.join(REPO, "tests")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Gin bindings that shrink the Fashion-MNIST configs to test size.
TINY = [
    "BigGANGenerator.ch = 4",
    "BigGANDiscriminator.ch = 4",
    "BigGANGenerator.dim_z = 16",
    "train.batch_size = 8",
    "train.log_every = 1",
    "train.sample_every = 2",
    "train.checkpoint_every = 2",
    "train.samples_per_class = 2",
]


# Test files (paths under tests/) by decreasing run time (their tests'
# durations summed, measured on 2 cores: TFGT_TEST_TIMES, below; files under
# 7 s are left to the end). `make test` runs each file on one
# of several workers (pytest-xdist --dist loadfile --no-loadscope-reorder) in
# collection order: starting the longest first keeps every worker busy until
# the end. Without --no-loadscope-reorder, pytest-xdist 3.8 orders files by
# their number of tests instead, and a long file of few tests starts last.
# The two files whose tests run two training processes at once (the
# multi-worker test, the Hyper-Modulation benchmark's) are kept apart, with
# test_precision.py and test_train.py between them: side by side they put
# four processes on two cores and took 1.4x and 2x their time alone.
_LONGEST_FIRST = (
    "test_train_multi_worker.py", "test_precision.py", "test_train.py",
    "methods/test_hypermod.py", "methods/test_methods.py",
    "tools/test_check_determinism.py", "test_notebook.py", "test_train_cli.py",
    "test_export.py", "methods/test_hypermod_stylegan2.py", "data/test_ada.py",
    "models/test_stylegan_train.py", "test_api.py", "models/test_stylegan2.py",
    "test_run_safety.py", "methods/test_hypermod_256.py",
    "models/test_path_length.py", "test_evaluate.py",
    "importers/test_tfhub_biggan.py", "test_config.py", "test_cli.py",
    "test_train_eval.py", "models/test_contract.py", "tools/test_benchlib.py",
    "models/test_stylegan2_transfer.py", "data/test_augment.py",
    "models/test_stylegan.py", "importers/test_stylegan.py",
    "tools/test_feature_check_tools.py", "tools/test_benchmark_step.py",
    "models/test_architectures.py", "eval/test_features.py",
    "importers/test_biggan.py", "importers/test_rosinality.py",
    "eval/test_registry.py", "importers/test_hostile.py",
    "eval/test_evaluator.py", "models/test_hypermod_fidelity.py",
    "data/test_pipeline.py", "layers/test_knowledge_transfer.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = os.path.relpath(str(item.fspath), TESTS).replace(os.sep, "/")
    return (_LONGEST_FIRST.index(name) if name in _LONGEST_FIRST
            else len(_LONGEST_FIRST))
  items.sort(key=rank)  # Stable: tests keep their order within a file.


# Seconds per test file (set-up, call and tear-down summed), written as JSON
# to $TFGT_TEST_TIMES at the end of a run when that is set, e.g.
#   TFGT_TEST_TIMES=/tmp/times.json make test
# for keeping _LONGEST_FIRST in order. Under pytest-xdist the controller
# receives every worker's reports and writes the file once.
_FILE_SECONDS = {}


def pytest_runtest_logreport(report):
  name = report.nodeid.split("::", 1)[0]
  if name.startswith("tests/"):
    name = name[len("tests/"):]
  _FILE_SECONDS[name] = _FILE_SECONDS.get(name, 0.0) + report.duration


def pytest_sessionfinish(session):
  path = os.environ.get("TFGT_TEST_TIMES")
  if path and not hasattr(session.config, "workerinput"):
    ordered = dict(sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]))
    with open(path, "w") as f:
      json.dump({k: round(v, 1) for k, v in ordered.items()}, f, indent=1)


@pytest.fixture(autouse=True)
def clear_gin():
  """Every test starts from an empty gin config."""
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def repo_dir():
  return REPO


def load_tool(name):
  """The module tools.<name> (e.g. "benchmark_transfer", "benchlib.cells"),
  imported as the commands import each other."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"tools.{name}")


# Small training runs of the pretraining config, for the trainer tests.
PRETRAIN = os.path.join(REPO, "gin_configs/fashion_mnist/pretrain_biggan.gin")
SMALL_DATA = ["load_training_data.images_per_class = 8"]


def run_training(model_dir, steps, extra=(), strategy=None):
  """A tiny pretraining run of `steps` steps; returns the last losses.

  It trains on one device (TensorFlow's default strategy), as
  `python -m tfgt.train` does without --logical_cpus, unless `strategy` is
  given: the tests of the replicas give a MirroredStrategy over the two
  logical CPUs. Tracing the mirrored step takes about twice as long (a
  2-step run: 27 s against 15 s, AMD EPYC).
  """
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}"] + list(extra))
  return train_lib.train(str(model_dir),
                         strategy=strategy or tf.distribute.get_strategy())


def model_variables(model_dir):
  reader = tf.train.load_checkpoint(str(model_dir))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(("generator/", "discriminator/", "ema_generator/"))}


def event_values(model_dir):
  """{tag: [(step, value as NumPy)]} of a run's TensorBoard events."""
  tags = {}
  for path in sorted(glob.glob(os.path.join(model_dir, "train",
                                            "events.out.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(
            (event.step, tf.make_ndarray(value.tensor)))
  return tags


def events(model_dir):
  """{tag: [steps]} of a run's TensorBoard events."""
  return {tag: [step for step, _ in values]
          for tag, values in event_values(model_dir).items()}


class ScriptedEvaluator:
  """An evaluator that returns given values in turn and counts its calls."""

  def __init__(self, metric, values):
    self.metric, self.values, self.steps = metric, list(values), []

  def __call__(self, generator):
    assert generator.num_classes == 8
    self.steps.append(len(self.steps))
    return {self.metric: self.values[len(self.steps) - 1]}


def run_evaluated(model_dir, steps, evaluator, metric, eval_every=1):
  """A tiny run scored by `evaluator` every `eval_every` steps, on one
  device (as `run_training`)."""
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}", "train.sample_every = 0"])
  return train_lib.train(str(model_dir), evaluator=evaluator,
                         eval_every=eval_every, best_metric=metric,
                         strategy=tf.distribute.get_strategy())


def assert_from_z_matches(loaded, generator, z, labels):
  """The export's `from_z` images at truncation 1 equal the generator's own
  (uint8, within one grey level); returns the served images."""
  from tfgt.data import pipeline  # pylint: disable=g-import-not-at-top
  served = loaded.signatures["from_z"](labels=labels, z=z,
                                       truncation=tf.constant(1.0))["images"]
  own = pipeline.to_uint8(generator((z, labels), training=False))
  assert np.abs(served.numpy().astype(int)
                - own.numpy().astype(int)).max() <= 1
  return served


def import_source_cli(*args):
  """`python -m tfgt.import_source ARGS` in the repository, as a user runs
  it: the finished process (text output captured)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "tfgt.import_source", *args],
                        capture_output=True, text=True, cwd=REPO, env=env,
                        timeout=600, check=False)
