"""Transfer methods, their configs and the transfer benchmark, at tiny size.

A tiny source bundle stands in for the shipped Fashion-MNIST model: a random
8-class BigGAN (ch=4) whose classes differ. The full trainer runs once for
cGANTransfer (through `tools.benchmark_transfer`) and once for its
fine-tuning stage; every other config trains two steps in a short loop.
The benchmark's machinery without training is tested in
tests/tools/test_benchmark_transfer.py.
"""

import glob
import json
import os
import re

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO, TINY
from tfgt import distribute
from tfgt import losses
from tfgt import objectives
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.methods import bsa
from tfgt.methods import cgantransfer
from tfgt.methods import finetune
from tfgt.methods import scratch
from tfgt.methods import source as source_lib
from tfgt.models import biggan
from tfgt.models import bundle
from tfgt.models import transfer_generator as tg
from tfgt.models import weights
from tools import benchmark_transfer
from tools import machine
from tools import plot_similarity
from tools.benchlib import cells as cells_lib
from tools.benchlib import records as records_lib
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs

DIM_Z = 16
FM_DIR = os.path.join(REPO, "gin_configs", "fashion_mnist")
# Configs of other features in the same folder.
NOT_TRANSFER = ("base.gin", "pretrain_biggan.gin", "eval.gin",
                "trust_scores.gin",
                # Trained at tiny width in models/test_stylegan_train.py,
                # models/test_stylegan2.py, models/test_path_length.py and
                # data/test_ada.py.
                "pretrain_stylegan.gin", "pretrain_stylegan2.gin",
                "pretrain_stylegan2_unconditional.gin",
                # The StyleGAN family, built and trained in test_hypermod.py.
                "hypermod_align.gin", "hypermod.gin", "hypermod_base.gin",
                "gan_memory.gin")
# cgantransfer.gin and cgantransfer_ft.gin run in the full trainer below;
# transfer_base.gin is included by the others and names no method.


def _write_source(directory, num_classes, names, seed=0, **kwargs):
  keras.utils.set_random_seed(seed)
  g = biggan.BigGANGenerator(num_classes, ch=4, dim_z=kwargs.pop("dim_z",
                                                                 DIM_Z),
                             **kwargs)
  d = biggan.BigGANDiscriminator(num_classes, ch=4,
                                 resolution=g.resolution, channels=g.channels)
  biggan.build_models(g, d)
  for v in g.variables:
    if v.path.endswith(("gain_offset", "/shift")):
      v.assign(tf.random.normal(v.shape, stddev=0.3))
  bundle.BundleWriter(os.path.join(directory, "model"), g, d, names,
                      "scratch").save(1)
  return g


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
  """(bundle folder, its generator): Fashion-MNIST classes 0-7, 32x32x1."""
  directory = str(tmp_path_factory.mktemp("source"))
  g = _write_source(directory, 8, list(sources.FASHION_MNIST_CLASSES[:8]))
  return directory, g


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
  # Gin files include each other by paths relative to the repository.
  monkeypatch.chdir(REPO)


def _parse(files, params):
  train_lib.parse_config(files, TINY + list(params))
  return gin.query_parameter("train.method").scoped_configurable_fn()


def _train_two_steps(method: base.Method,
                     check_before=None) -> base.GANSetup:
  """Builds the method's models on its data and takes two D and G steps.

  `check_before(setup)`, if given, runs on the models before training.
  """
  info = method.source_info()
  images, labels, selection = pipeline.load_training_data(
      resolution=info.resolution, channels=info.channels,
      label_offset=len(info.class_names))
  setup = method.build(info.class_names + selection.names)
  if check_before is not None:
    check_before(setup)
  g, d = setup.generator, setup.discriminator
  frozen = [v for v in g.variables
            if id(v) not in {id(w) for w in setup.g_variables}]
  frozen_before = [v.numpy() for v in frozen]
  trained_before = [v.numpy() for v in setup.g_variables]
  g_opt, d_opt = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)
  pick = np.random.RandomState(0).choice(len(images), 8, replace=False)
  real = pipeline.to_float(images[pick])
  y = tf.constant(labels[pick])
  for step in range(2):
    z = tf.random.normal([8, g.dim_z], seed=step)
    batch = objectives.Batch(
        images=real, labels=y, z_d=z, y_d=y, z_g=z, y_g=y,
        index=tf.constant(step, tf.int64), global_batch_size=8,
        num_replicas=1)
    with tf.GradientTape() as tape:
      d_loss, _ = setup.objective.d_loss(batch, g, d)
    d_opt.apply_gradients(zip(tape.gradient(d_loss, setup.d_variables),
                              setup.d_variables))
    with tf.GradientTape() as tape:
      g_loss, _ = setup.objective.g_loss(batch, g, d)
    grads = tape.gradient(g_loss, setup.g_variables)
    for v, grad in zip(setup.g_variables, grads):
      assert grad is not None, f"no gradient for {v.path}"
    g_opt.apply_gradients(zip(grads, setup.g_variables))
  assert np.isfinite(float(g_loss)) and np.isfinite(float(d_loss))
  for before, v in zip(trained_before, setup.g_variables):
    assert not np.array_equal(before, v.numpy()), f"{v.path} did not train"
  if isinstance(g, tg.KnowledgeTransferGenerator) and (
      not g.train_backbone):
    for before, v in zip(frozen_before, frozen):
      np.testing.assert_array_equal(before, v.numpy(), err_msg=v.path)
  folded = setup.fold(g)
  assert type(folded).__name__ == "BigGANGenerator"
  assert folded.num_classes == len(setup.class_names)
  samples = folded((tf.random.normal([2, g.dim_z]), y[:2]), training=False)
  assert np.all(np.isfinite(samples))
  return setup


def _fashion_mnist_configs():
  paths = sorted(glob.glob(os.path.join(FM_DIR, "*.gin")) +
                 glob.glob(os.path.join(FM_DIR, "ablations", "*.gin")))
  return [os.path.relpath(p, REPO) for p in paths
          if os.path.basename(p) not in NOT_TRANSFER and
          not p.endswith(("cgantransfer.gin", "cgantransfer_ft.gin",
                          "transfer_base.gin"))]


def _expected(setup: base.GANSetup, config: str) -> None:
  """What each config is about, checked on its built models."""
  name = os.path.basename(config)
  paths = [v.path for v in setup.g_variables]
  g = setup.generator
  if name in ("cgantransfer.gin", "no_l1.gin", "no_l2.gin",
              "no_regularizers.gin"):
    assert any("prior" in p for p in paths)
    assert any("residual" in p for p in paths)
    regularized = isinstance(setup.objective, objectives.Regularized)
    assert regularized == (name != "no_regularizers.gin")
    if regularized:
      weights = {term: w for term, (w, _) in setup.objective.g_terms.items()}
      assert list(weights) == ["scores_l1", "residuals_l2"]
      assert (weights["scores_l1"] == 0) == (name == "no_l1.gin")
      assert (weights["residuals_l2"] == 0) == (name == "no_l2.gin")
  elif name == "cgantransfer_diffaugment.gin":
    assert any("prior" in p for p in paths)
    adversarial = setup.objective.objective
    assert type(adversarial.augment).__name__ == "DiffAugment"
    assert adversarial.augment.policy == ("color", "translation", "cutout")
  elif name.startswith("frozen_prior"):
    assert not any("prior" in p for p in paths)
    assert any("residual" in p for p in paths) == ("no_residual" not in name)
  elif name == "tunable_prior_no_residual.gin":
    assert any("prior" in p for p in paths)
    assert not any("residual" in p for p in paths)
  elif name == "shared_scores_no_residual.gin":
    assert sum("scores" in p for p in paths) == 2
  elif name == "bsa.gin":
    assert paths and all("independent" in p for p in paths)
  elif name in ("transfergan.gin", "scratch.gin"):
    assert len(setup.d_variables) == len(
        setup.discriminator.trainable_variables)
    assert len(setup.g_variables) == len(g.trainable_variables)
  elif name == "freezed.gin":
    frozen = {id(v) for b in setup.discriminator.blocks[:2]
              for v in b.variables}
    assert frozen and not frozen & {id(v) for v in setup.d_variables}
  else:
    raise AssertionError(f"No expectation for {config}.")
  if name != "scratch.gin":
    assert setup.class_names[-2:] == ["Bag", "Ankle boot"]
    assert len(setup.class_names) == 10


@pytest.mark.parametrize("config", _fashion_mnist_configs())
def test_fashion_mnist_config_trains_two_steps(config, tiny_source):
  method = _parse([config], [f"SOURCE = '{tiny_source[0]}'",
                             "IMAGES_PER_CLASS = 10"])
  setup = _train_two_steps(method)
  _expected(setup, config)


def test_main_job_rate_is_for_the_scores_only(tiny_source):
  """cgantransfer.gin's 10x G rate trains a few thousand values; the
  fine-tuning stage, which trains all of G, is back at the baselines'."""
  _parse([os.path.join(FM_DIR, "cgantransfer.gin")],
         [f"SOURCE = '{tiny_source[0]}'"])
  assert gin.query_parameter("train.g_lr") == 2e-3
  assert gin.query_parameter("train.num_steps") == 300
  gin.clear_config()
  _parse([os.path.join(FM_DIR, "transfergan.gin")],
         [f"SOURCE = '{tiny_source[0]}'"])
  full_rate = gin.query_parameter("train.g_lr")
  gin.clear_config()
  _parse([os.path.join(FM_DIR, "cgantransfer_ft.gin")],
         [f"SOURCE = '{tiny_source[0]}'", "STAGE1_DIR = '/nonexistent'"])
  assert gin.query_parameter("train.g_lr") == full_rate == 2e-4


def test_fine_tune_config_needs_a_first_stage(tiny_source):
  with pytest.raises(UserInputError, match="STAGE1_DIR"):
    _parse([os.path.join(FM_DIR, "cgantransfer_ft.gin")],
           [f"SOURCE = '{tiny_source[0]}'"])


def test_cgantransfer_objective_adds_the_weighted_regularizers(tiny_source):
  """G loss = adversarial + (l_s L1 + l_r L2) / replicas, bit for bit."""
  method = cgantransfer.CGANTransfer(source=tiny_source[0],
                                     lambda_scores=0.01,
                                     lambda_residuals=0.03, residual="random")
  setup = method.build(list(sources.FASHION_MNIST_CLASSES[:8]) +
                       ["Bag", "Ankle boot"])
  g, d = setup.generator, setup.discriminator
  for i, v in enumerate(g.transfer_variables()):
    v.assign(tf.random.normal(v.shape, stddev=0.3, seed=20 + i))
  z = tf.random.normal([4, DIM_Z], seed=21)
  y = tf.constant([8, 9, 0, 8])
  batch = objectives.Batch(
      images=tf.zeros([4, 32, 32, 1]), labels=y, z_d=z, y_d=y, z_g=z, y_g=y,
      index=tf.constant(0, tf.int64), global_batch_size=8, num_replicas=2)
  d_state = [v.numpy() for v in d.variables]  # D's call updates sn_u.
  loss, parts = setup.objective.g_loss(batch, g, d)
  for v, value in zip(d.variables, d_state):
    v.assign(value)
  adversarial = tf.reduce_sum(losses.generator_loss(
      d((g((z, y), training=True), y), training=True))) / 8
  l1, l2 = g.regularization()
  extra = 0.01 * l1 + 0.03 * l2
  np.testing.assert_array_equal(loss, adversarial + extra / 2)
  np.testing.assert_array_equal(parts["adversarial"], adversarial)
  np.testing.assert_array_equal(parts["scores_l1"], l1 / 2)
  np.testing.assert_array_equal(parts["residuals_l2"], l2 / 2)
  np.testing.assert_array_equal(parts["regularizer"], extra / 2)
  assert float(l1) > 0 and float(l2) > 0
  # The fine-tuning stage freezes the scores: their term stays, weighted 0.
  fine_tune = cgantransfer.CGANTransfer(
      source=tiny_source[0], fine_tune=True, init_from="stage1",
      lambda_residuals=0.03)
  terms = fine_tune._objective(g).g_terms  # pylint: disable=protected-access
  assert [(name, w) for name, (w, _) in terms.items()] == [
      ("scores_l1", 0.0), ("residuals_l2", 0.03)]


def test_new_row_options_name_the_option_and_the_words():
  all_words = r"\('mean', 'zeros', 'random'\)"
  cases = [
      (lambda: bsa.BSA(source="s", row_init="random"),
       r"BSA.row_init must be one of \('mean', 'zeros'\), got 'random'"),
      (lambda: bsa.BSA(source="s", d_new_rows="avg"),
       f"BSA.d_new_rows must be one of {all_words}, got 'avg'"),
      (lambda: cgantransfer.CGANTransfer(source="s", d_new_rows="avg"),
       f"CGANTransfer.d_new_rows must be one of {all_words}"),
      (lambda: finetune.TransferGAN(source="s", g_new_rows="avg"),
       f"TransferGAN.g_new_rows must be one of {all_words}"),
      (lambda: finetune.FreezeD(source="s", d_new_rows="avg"),
       f"FreezeD.d_new_rows must be one of {all_words}"),
  ]
  for make, message in cases:
    with pytest.raises(UserInputError, match=message):
      make()
  # Every word of the vocabulary is accepted where it applies.
  for word in ("mean", "zeros"):
    bsa.BSA(source="s", row_init=word)
  for word in ("mean", "zeros", "random"):
    finetune.TransferGAN(source="s", g_new_rows=word, d_new_rows=word)
    cgantransfer.CGANTransfer(source="s", d_new_rows=word)


def test_missing_pretrained_source_is_explained():
  method = cgantransfer.CGANTransfer(source="pretrained:no_such_model")
  with pytest.raises(UserInputError, match="not installed"):
    method.source_info()


def test_copy_weights_grows_class_tables(tiny_source):
  _, src = tiny_source
  target = biggan.BigGANGenerator(10, **src.ctor_kwargs)
  biggan.build_models(target)
  assert not weights.copy_weights(src, target, 8, new_rows="mean")
  table = target.block0.bn1.gain_offset.numpy()
  np.testing.assert_array_equal(table[:8], src.block0.bn1.gain_offset.numpy())
  np.testing.assert_allclose(
      table[8:], np.tile(table[:8].mean(0, keepdims=True), [2, 1]), rtol=1e-6)
  wrong = biggan.BigGANGenerator(10, **dict(src.ctor_kwargs, ch=8))
  biggan.build_models(wrong)
  with pytest.raises(ValueError, match="Cannot carry"):
    weights.copy_weights(src, wrong, 8)


def test_bad_source_checkpoint_names_the_binding(tiny_source):
  with pytest.raises(UserInputError, match="CGANTransfer.checkpoint='bset' "
                     "names no checkpoint: use 'best', 'latest' or a step"):
    cgantransfer.CGANTransfer(source=tiny_source[0], checkpoint="bset")
  # A step number given as a string (e.g. from gin) is a step.
  method = cgantransfer.CGANTransfer(source=tiny_source[0], checkpoint="1")
  assert method.checkpoint == 1
  with pytest.raises(UserInputError, match="'bset' names no checkpoint"):
    source_lib.load(tiny_source[0], "bset")


def test_new_rows_do_not_depend_on_the_source_cache(tiny_source):
  # A process that trains several runs (the benchmark with --jobs=1) takes
  # the source from its cache after the first: a seed must still give the
  # same new discriminator rows as in a fresh process.
  names = list(sources.FASHION_MNIST_CLASSES[:10])

  def embedding(seed):
    keras.utils.set_random_seed(seed)
    setup = cgantransfer.CGANTransfer(source=tiny_source[0]).build(names)
    return setup.discriminator.embedding.embeddings.numpy()

  source_lib._LOADED.clear()
  fresh = embedding(1)
  assert len(source_lib._LOADED) == 1
  embedding(0)
  np.testing.assert_array_equal(embedding(1), fresh)
  # The third build was served from the cache.
  assert len(source_lib._LOADED) == 2


def test_scratch_resolution_mismatch_names_the_bindings():
  gin.parse_config(["BigGANGenerator.resolution = 64",
                    "BigGANDiscriminator.resolution = 32"])
  with pytest.raises(UserInputError, match="BigGANGenerator.resolution = 64 "
                     "but BigGANDiscriminator.resolution = 32. Bind both"):
    scratch.Scratch()


def test_unknown_strategy_lists_the_valid_names():
  with pytest.raises(UserInputError, match="make_strategy.name='mirored' is "
                     "not a strategy: use one of 'auto', 'mirrored', "
                     "'multi_worker', 'default'"):
    distribute.make_strategy("mirored")


# ------------------------------------------------------------ full trainer
BENCHMARK_EVAL_GIN = [os.path.join("gin_configs", "fashion_mnist", "eval.gin")]


def benchmark_params(tiny_source):
  # One replica: the trainer's multi-replica path is tested with it.
  return TINY + ["make_strategy.name = 'default'",
                 f"SOURCE = '{tiny_source[0]}'",
                 "train.eval_every = 2",
                 "Evaluator.split = 'test'",
                 "Evaluator.num_samples = 40",
                 "Evaluator.metrics = ['fid']"]


@pytest.fixture(scope="module")
def benchmark_run(tiny_source, tmp_path_factory):
  """`tools.benchmark_transfer` at tiny size: cGANTransfer, 10 images per
  class, 3 steps, the real evaluator on the test split."""
  out_dir = str(tmp_path_factory.mktemp("benchmark"))
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    gin.clear_config()
    rows = benchmark_transfer.run_benchmark(
        out_dir, ["cgantransfer"], [10], num_steps=3,
        eval_gin=BENCHMARK_EVAL_GIN, gin_params=benchmark_params(tiny_source),
        command="pytest", rescore_samples=60,
        record_dir=os.path.join(out_dir, "records"))
  finally:
    os.chdir(cwd)
    gin.clear_config()
  return out_dir, rows


def test_benchmark_writes_its_table(benchmark_run, tiny_source):
  out_dir, rows = benchmark_run
  (row,) = rows
  assert row["method"] == "cgantransfer" and row["images_per_class"] == 10
  # Trained at the benchmark's protocol, not the main job's faster rate.
  assert "train.g_lr = 0.0002\n" in row["gin_config"]
  assert row["num_steps"] == 3 and row["wall_time_s"] > 0
  # The best and the final generator scored again on more samples.
  assert row["rescored"]["num_samples"] == 60
  assert row["rescored"]["best"]["fid"] > 0
  assert row["rescored"]["final"]["fid"] > 0
  # The 8 source classes, scored on the test split, are untouched.
  assert row["old_class_fid"] > 0
  # FID at steps 2 and 3 (the end); the best of them is kept.
  steps = [s for s, _ in row["fid_history"]]
  assert steps == [2, 3]
  # (TensorBoard keeps float32, best.json float64.)
  best_step, best_fid = min(row["fid_history"], key=lambda sf: sf[1])
  assert row["best_step"] == best_step
  assert row["best_fid"] == pytest.approx(best_fid, rel=1e-6)
  # Per new class: 6 BN layers x 2 (gain, shift) x (8 scores + C residual),
  # plus the shared pseudo-classes 6 x 2 x 8 x C, divided by 2 classes.
  channels = 4 * 4
  assert row["g_class_specific"] == 6 * 2 * (8 + channels)
  assert row["g_per_new_class"] == (6 * 2 * (8 + channels) +
                                    6 * 2 * 8 * channels / 2)
  with open(os.path.join(out_dir, "results.json")) as f:
    assert json.load(f)[0]["best_fid"] == row["best_fid"]
  with open(os.path.join(out_dir, "results.md")) as f:
    text = f.read()
  assert "Command: `pytest`" in text
  assert f"| cgantransfer | 1 | {row['rescored']['best']['fid']:.2f} |" in text
  # The re-scoring adds per-class and diversity results.
  for key in ("kid", "mfid", "mkid", "precision", "recall", "density",
              "coverage", "mprecision", "mcoverage"):
    assert np.isfinite(row["rescored"]["best"][key]), key
  assert set(row["rescored"]["best"]["per_class"]) == {"Bag", "Ankle boot"}
  assert row["seed"] == 0 and row["model_dir"].endswith("cgantransfer_10_s0")
  # The CPU it trained on, named in the tables beside the wall times.
  assert row["cpu"] == machine.cpu_description()
  assert f"Trained on {row['cpu']} (1 run)." in text
  # Training images/s: the run's steps/s x its batch.
  batch = int(re.search(r"^train\.batch_size = (\d+)$", row["gin_config"],
                        re.M).group(1))
  assert rows_lib.images_per_sec(row) == pytest.approx(
      row["steps_per_sec"] * batch)
  line, = [l for l in text.splitlines() if l.startswith("| cgantransfer |")]
  assert f" | {row['steps_per_sec'] * batch:.0f} | " in line
  assert rows_lib.images_per_sec({"steps_per_sec": 2.0}) is None
  assert os.path.exists(os.path.join(out_dir, "curves_10.png"))
  # A finished run with the same configuration is read back, not trained or
  # scored again.
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    cell, = cells_lib.method_cells(["cgantransfer"], [10], [0])
    again = runs.run_one(cell, out_dir, 3, BENCHMARK_EVAL_GIN,
                           benchmark_params(tiny_source))
    assert records_lib.is_finished(cell, out_dir, 3, BENCHMARK_EVAL_GIN,
                              benchmark_params(tiny_source))
    assert not records_lib.is_finished(cell, out_dir, 4, BENCHMARK_EVAL_GIN,
                                  benchmark_params(tiny_source))
    # --report_only: the tables of the finished runs; seed 1 does not train.
    reported = benchmark_transfer.run_benchmark(
        out_dir, ["cgantransfer"], [10], num_steps=3,
        eval_gin=BENCHMARK_EVAL_GIN, gin_params=benchmark_params(tiny_source),
        command="pytest --report_only", rescore_samples=60, seeds=(0, 1),
        report_only=True)
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert again == row
  assert reported == [row]
  assert not os.path.exists(os.path.join(out_dir, "cgantransfer_10_s1"))
  with open(os.path.join(out_dir, "results.md")) as f:
    text = f.read()
  assert "Command: `pytest --report_only`" in text
  assert ("Not finished, left out of these tables (1 run): "
          "cgantransfer_10_s1.") in text


def test_benchmark_rows_recorded_elsewhere_outlive_the_run_folders(
    benchmark_run, tiny_source, tmp_path):
  """--record_dir: on another machine (a new out_dir, no run folder), the
  recorded rows are the finished runs; without the record, nothing is."""
  out_dir, (row,) = benchmark_run
  records = os.path.join(out_dir, "records")
  with open(os.path.join(records, "cgantransfer_10_s0.json")) as f:
    assert json.load(f) == row
  elsewhere = str(tmp_path / "elsewhere")
  cell, = cells_lib.method_cells(["cgantransfer"], [10], [0])
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    args = (cell, elsewhere, 3, BENCHMARK_EVAL_GIN,
            benchmark_params(tiny_source))
    assert records_lib.is_finished(*args, record_dir=records)
    assert not records_lib.is_finished(*args)
    # Another configuration (4 steps) is not the recorded run.
    assert not records_lib.is_finished(cell, elsewhere, 4, BENCHMARK_EVAL_GIN,
                                  benchmark_params(tiny_source),
                                  record_dir=records)
    # Training it (4 steps) would overwrite the record: refused before
    # anything trains, naming the record and the fix.
    with pytest.raises(UserInputError, match=r"cgantransfer_10_s0\.json "
                       r"\(3 steps\).*another --record_dir"):
      benchmark_transfer.run_benchmark(
          elsewhere, ["cgantransfer"], [10], num_steps=4,
          eval_gin=BENCHMARK_EVAL_GIN,
          gin_params=benchmark_params(tiny_source), rescore_samples=60,
          record_dir=records)
    # A report with another --num_steps than the records' finds nothing:
    # an error that says which steps the records ran, not an empty table.
    with pytest.raises(UserInputError, match=r"Nothing to report: none of the "
                       r"1 runs.*cgantransfer_10_s0\.json \(3 steps\) hold "
                       r"runs of another configuration: give the --num_steps"):
      benchmark_transfer.run_benchmark(
          elsewhere, ["cgantransfer"], [10], num_steps=4,
          eval_gin=BENCHMARK_EVAL_GIN,
          gin_params=benchmark_params(tiny_source), rescore_samples=60,
          report_only=True, record_dir=records)
    reported = benchmark_transfer.run_benchmark(
        elsewhere, ["cgantransfer"], [10], num_steps=3,
        eval_gin=BENCHMARK_EVAL_GIN, gin_params=benchmark_params(tiny_source),
        command="pytest elsewhere", rescore_samples=60, report_only=True,
        record_dir=records)
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert reported == [row]
  assert not os.path.exists(os.path.join(elsewhere, "cgantransfer_10_s0"))
  with open(os.path.join(records, "cgantransfer_10_s0.json")) as f:
    assert json.load(f) == row
  with open(os.path.join(elsewhere, "results.md")) as f:
    assert f"| cgantransfer | 1 | {row['rescored']['best']['fid']:.2f} |" in (
        f.read())
  # A record without its scores cannot be scored once its folder is gone:
  # the error names the record and the fix, and writes no folder.
  unscored = {k: v for k, v in row.items() if k != "rescored"}
  bare = str(tmp_path / "bare")
  os.makedirs(bare)
  with open(os.path.join(bare, "cgantransfer_10_s0.json"), "w") as f:
    json.dump(unscored, f)
  os.chdir(REPO)
  try:
    assert not records_lib.is_finished(*args, record_dir=bare)
    with pytest.raises(ValueError, match=r"has no rescored.*is gone\. "
                       r"Delete the record"):
      runs.run_one(cell, elsewhere, 3, BENCHMARK_EVAL_GIN,
                     benchmark_params(tiny_source), rescore_samples=60,
                     record_dir=bare)
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert not os.path.exists(os.path.join(elsewhere, "cgantransfer_10_s0"))


def test_benchmark_refuses_run_folders_of_another_configuration(
    benchmark_run, tiny_source, tmp_path):
  """A run folder trained with 3 steps is not resumed as a 4-step run (the
  trainer would go on from its checkpoint and the row would call it a
  4-step run): refused before anything trains, naming the folder and the
  fix; the same configuration is read back."""
  out_dir, (row,) = benchmark_run
  folder = os.path.join(out_dir, "cgantransfer_10_s0")
  before = sorted(os.listdir(folder))
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    with pytest.raises(UserInputError, match=r"cgantransfer_10_s0 holds a "
                       r"run of another configuration.*another --out_dir"):
      benchmark_transfer.run_benchmark(
          out_dir, ["cgantransfer"], [10], num_steps=4,
          eval_gin=BENCHMARK_EVAL_GIN,
          gin_params=benchmark_params(tiny_source), rescore_samples=60,
          record_dir=str(tmp_path / "new_records"))
    records_lib.check_run_folders(
        cells_lib.method_cells(["cgantransfer"], [10], [0]), out_dir, 3,
        BENCHMARK_EVAL_GIN, benchmark_params(tiny_source))
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert sorted(os.listdir(folder)) == before
  assert not os.path.exists(tmp_path / "new_records")


def test_old_classes_bit_identical_after_training(benchmark_run, tiny_source):
  out_dir, rows = benchmark_run
  _, src = tiny_source
  generator, _, spec = bundle.load(rows[0]["model_dir"])
  assert spec["method"] == "cgantransfer"
  assert spec["class_names"][8:] == ["Bag", "Ankle boot"]
  z = tf.random.normal([16, DIM_Z], seed=11)
  old = tf.constant(list(range(8)) * 2)
  np.testing.assert_array_equal(generator((z, old), training=False),
                                src((z, old), training=False))
  best, _, _ = bundle.load(rows[0]["model_dir"], checkpoint="best")
  np.testing.assert_array_equal(best((z, old), training=False),
                                src((z, old), training=False))
  # The new classes did train: their rows left the old classes' mean.
  table = generator.block0.bn1.gain_offset.numpy()
  assert not np.allclose(table[8], table[:8].mean(0), atol=1e-6)
  assert os.path.exists(os.path.join(rows[0]["model_dir"], "samples.png"))


def test_fine_tune_stage_continues_a_run(benchmark_run, tiny_source):
  _, rows = benchmark_run
  stage1 = rows[0]["model_dir"]
  method = _parse([os.path.join(FM_DIR, "cgantransfer_ft.gin")],
                  [f"SOURCE = '{tiny_source[0]}'", f"STAGE1_DIR = '{stage1}'",
                   "IMAGES_PER_CLASS = 10"])
  assert method.name == "cgantransfer_ft"
  stage1_g, _, _ = bundle.load(stage1)

  def starts_from_stage1(setup):
    # Its EMA generator, which the first stage's bundle is the fold of.
    y = tf.constant([8, 9, 8, 9, 0, 1])
    z = tf.random.normal([6, DIM_Z], seed=12)
    np.testing.assert_array_equal(setup.fold(setup.generator)((z, y)),
                                  stage1_g((z, y)))
    paths = [v.path for v in setup.g_variables]
    assert not any("scores" in p or "prior" in p for p in paths)
    assert any("residual" in p for p in paths)
    assert any("conv1/kernel" in p for p in paths)

  _train_two_steps(method, check_before=starts_from_stage1)


# ------------------------------------------------ RGB datasets (no data here)
RGB_DIRS = ("cifar100", "animalface", "places365")
# Included by the others; no method of their own.
RGB_PARTS = ("base.gin", "transfer_base.gin", "ten_classes.gin", "eval.gin")
# Built at tiny width (the rest are parsed and their method constructed): one
# per distinct code path, as 128 px models are slow to build.
RGB_BUILT = ("cifar100/cgantransfer.gin", "cifar100/pretrain_biggan.gin",
             "places365/cgantransfer.gin")


@pytest.fixture(scope="module")
def rgb_sources(tmp_path_factory):
  """Tiny stand-ins: the CIFAR-100 80-class source (32 px, table) and an
  ImageNet-like source imported as the paper's is, from a BigGAN-PyTorch
  checkpoint (128 px, shared embedding, hierarchical z; without attention,
  which transfer does not touch, to keep the build short)."""
  # pylint: disable=g-import-not-at-top
  from tests.importers import test_biggan as biggan_files
  from tfgt import import_source
  # pylint: enable=g-import-not-at-top
  cifar = str(tmp_path_factory.mktemp("cifar_source"))
  _write_source(cifar, 80, [f"class{i}" for i in range(80)], channels=3)
  weights = tmp_path_factory.mktemp("biggan_pytorch")
  biggan_files.save(biggan_files.g_state_dict(128, 2, 6, 24, 8, True, True),
                    str(weights / "G_ema.pth"))
  biggan_files.save(biggan_files.d_state_dict(128, 2, 6),
                    str(weights / "D.pth"))
  imagenet = str(tmp_path_factory.mktemp("imagenet_source"))
  import_source.run("biggan_pytorch", str(weights), imagenet,
                    class_names=[f"synset{i}" for i in range(6)])
  return {"cifar100": cifar, "animalface": imagenet, "places365": imagenet}


def _rgb_configs():
  paths = []
  for folder in RGB_DIRS:
    paths += glob.glob(os.path.join(REPO, "gin_configs", folder, "**",
                                    "*.gin"), recursive=True)
  return sorted(os.path.relpath(p, REPO) for p in paths
                if os.path.basename(p) not in RGB_PARTS)


def test_rgb_configs_are_complete():
  names = {os.path.relpath(p, "gin_configs") for p in _rgb_configs()}
  for folder in ("animalface", "places365"):
    assert {f"{folder}/cgantransfer.gin", f"{folder}/cgantransfer_ft.gin",
            f"{folder}/bsa.gin"} <= names
  assert {"cifar100/pretrain_biggan.gin", "cifar100/cgantransfer.gin",
          "cifar100/bsa.gin", "cifar100/transfergan.gin",
          "cifar100/scratch.gin"} <= names
  assert len([n for n in names if n.startswith("places365/ablations/")]) == 7


@pytest.mark.parametrize("config", _rgb_configs())
def test_rgb_config_parses_and_builds(config, rgb_sources):
  dataset = config.split(os.sep)[1]
  params = [f"SOURCE = '{rgb_sources[dataset]}'"]
  if config.endswith("_ft.gin"):
    with pytest.raises(UserInputError, match="STAGE1_DIR"):
      _parse([config], params)
    return
  method = _parse([config], params)
  info = method.source_info()
  assert (info.resolution, info.channels) == (
      (32, 3) if dataset == "cifar100" else (128, 3))
  data_source = gin.query_parameter("load_training_data.source")
  if dataset == "cifar100":
    assert data_source.selector == "tfds_dataset"
    assert gin.query_parameter("tfds_dataset.name") == "cifar100"
    part = "first" if "pretrain" in config else "rest"
    assert gin.query_parameter("load_training_data.random_split") == (
        80, 0, part)
    assert gin.query_parameter("train.d_steps") == 4
    assert gin.query_parameter("train.g_lr") == 2e-4
  else:
    assert data_source.selector == "image_folder"
    assert gin.query_parameter("train.g_lr") == 1e-4
    assert gin.query_parameter("train.d_lr") == 4e-4
  if os.path.relpath(config, "gin_configs") not in RGB_BUILT:
    return
  if info.class_names:
    names = info.class_names + ["new_a", "new_b"]
  else:
    names = [f"class{i}" for i in range(80 if "pretrain" in config else 20)]
  setup = method.build(names)
  g = setup.generator
  if dataset != "cifar100":
    # Hierarchical z: the noise-to-BN projections train too (paper 5.1).
    paths = [v.path for v in setup.g_variables]
    assert any("gain_projection/kernel" in p for p in paths)
  folded = setup.fold(g)
  assert folded.num_classes == len(names)
  z = tf.random.normal([2, g.dim_z], seed=13)
  y = tf.constant([0, len(names) - 1])
  images = folded((z, y), training=False)
  assert images.shape == (2, info.resolution, info.resolution, 3)
  np.testing.assert_allclose(images, g((z, y), training=False), atol=1e-5)


def test_cifar100_ten_classes_are_part_of_the_twenty():
  _, rest = pipeline.split_classes(100, 80, 0)
  train_lib.parse_config([os.path.join("gin_configs", "cifar100",
                                       "cgantransfer.gin"),
                          os.path.join("gin_configs", "cifar100",
                                       "ten_classes.gin")], [])
  assert gin.query_parameter("load_training_data.classes") == rest[:10]
  assert gin.query_parameter("load_training_data.random_split") is None


def test_plot_similarity_of_a_run(benchmark_run):
  _, rows = benchmark_run
  model_dir = rows[0]["model_dir"]
  module = plot_similarity
  paths = module.plot(model_dir, samples=2)
  for name in ("scores", "pseudo_classes", "layer_substitution"):
    image = tf.io.decode_png(tf.io.read_file(paths[name])).numpy()
    assert image.shape[0] > 100 and image.shape[1] > 100, name
    assert image.std() > 0, name
  assert glob.glob(os.path.join(model_dir, "similarity", "events",
                                "*tfevents*"))
  # The heatmaps show the trained EMA generator's scores.
  generator, _ = module.load_run(model_dir)
  with open(paths["scores_json"]) as f:
    saved = json.load(f)
  assert saved["new_classes"] == ["Bag", "Ankle boot"]
  gain, _ = generator.score_tables()[3]
  np.testing.assert_allclose(saved["scores"]["block1/bn2"]["gain"], gain,
                             rtol=1e-6)
  assert not np.allclose(gain, 1.0 / 8, atol=1e-7)
  # A method without scores is refused with a clear message.
  gin.clear_config()
  with pytest.raises(UserInputError, match="not a training run"):
    module.load_run(os.path.dirname(model_dir))
