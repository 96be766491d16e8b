"""An unconditional StyleGAN through the trainer (with its evaluations), a
resume and an export by the command lines, and sampling, at tiny width; and
the merged-classes data of unconditional models."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import assert_from_z_matches
from tests.conftest import REPO
from tests.conftest import events
from tfgt import export as export_lib
from tfgt import run_folder
from tfgt import sample as sample_lib
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError
from tfgt.models import bundle
from tfgt.models import stylegan

CONFIG = os.path.join("gin_configs", "fashion_mnist", "pretrain_stylegan.gin")
TINY = [
    "StyleGANGenerator.dim_z = 8", "StyleGANGenerator.w_dim = 8",
    "StyleGANGenerator.mapping_layers = 2",
    "StyleGANGenerator.fmap_base = 32", "StyleGANGenerator.fmap_max = 8",
    "StyleGANDiscriminator.fmap_base = 32",
    "StyleGANDiscriminator.fmap_max = 8",
    "load_training_data.images_per_class = 24", "train.batch_size = 8",
    "train.ema_start = 0", "train.log_every = 1", "train.checkpoint_every = 2",
    "train.sample_every = 2", "train.samples_per_class = 2",
    "train.eval_every = 2", "Evaluator.num_samples = 40",
    "Evaluator.metrics = ['fid']", "Adversarial.r1_every = 2",
    # Two merged classes and the test split keep the FID reference small.
    "merged_classes.classes = [8, 9]", "Evaluator.split = 'test'",
]


def _cli(module, *args):
  """Runs `python -m module args` from the repository; its stderr (logs)."""
  result = subprocess.run(
      [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
      text=True, timeout=900, env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stderr


def _train(model_dir, steps, strategy=None):
  gin.clear_config()
  train_lib.parse_config([CONFIG], TINY + [f"train.num_steps = {steps}"])
  return train_lib.train(str(model_dir), strategy=strategy)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_a_tiny_unconditional_stylegan_trains_evaluates_samples_and_exports(
    tmp_path):
  run = tmp_path / "run"
  # Two replicas (the CPU split in two: w_avg is averaged across them).
  _train(run, 2)
  w_avg = tf.train.load_checkpoint(str(run)).get_tensor(
      "generator/w_avg/.ATTRIBUTES/VARIABLE_VALUE")
  # The same call with more steps resumes: the step counter, and w_avg
  # (not a trained weight, but state that truncation needs) continues from
  # the checkpoint instead of restarting from zero. A step updates it twice
  # (the D and the G update call G in training) by w_avg <- d * w_avg +
  # (1 - d) * m (d = 0.995, m a batch's mean w), so w_avg(3) - d^2 w_avg(2)
  # - (1 - d^2) E[w] is (1 - d) times the batch means' noise; after a reset
  # to zero it would be about -d^2 w_avg(2).
  # Through the command line, as a user types it.
  resumed_log = _cli("tfgt.train", f"--gin_file={CONFIG}", f"--model_dir={run}",
                     "--logical_cpus=2",
                     *[f"--gin_param={p}" for p in TINY + [
                         "train.num_steps = 3"]])
  assert f"Resumed from {run}" in resumed_log
  assert tf.train.latest_checkpoint(str(run)).endswith("ckpt-3")
  resumed = tf.train.load_checkpoint(str(run)).get_tensor(
      "generator/w_avg/.ATTRIBUTES/VARIABLE_VALUE")
  plain, _, _ = bundle.load(str(run))
  mean_w = tf.reduce_mean(plain.map(
      tf.random.stateless_normal([4096, 8], [0, 1]),
      tf.zeros([4096], tf.int32)), 0).numpy()
  decay = 0.995**2
  residual = resumed - decay * w_avg - (1 - decay) * mean_w
  # Here: 0.22 restored; about 1 after a reset.
  assert np.linalg.norm(residual) < 0.5 * np.linalg.norm(w_avg)
  tags = events(str(run))
  assert tags["train/g_loss"] == [1, 2, 3]
  assert tags["train/d/r1"] == [1, 2, 3]
  assert 2 in tags["eval/fid"]
  reader = tf.train.load_checkpoint(str(run))
  keys = reader.get_variable_to_shape_map()
  assert {"generator/w_avg/.ATTRIBUTES/VARIABLE_VALUE",
          "ema_generator/w_avg/.ATTRIBUTES/VARIABLE_VALUE"} <= set(keys)

  # One class: the merged source classes, as the data said.
  classes = run_folder.read_json(os.path.join(run, run_folder.CLASSES))
  assert classes["names"] == ["fashion-mnist-0-7"]
  spec = json.loads((run / "model" / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "stylegan"
  generator, discriminator, _ = bundle.load(str(run), with_discriminator=True)
  assert isinstance(generator, stylegan.StyleGANGenerator)
  assert isinstance(discriminator, stylegan.StyleGANDiscriminator)
  assert generator.num_classes == discriminator.num_classes == 1
  # The EMA generator has w_avg (copied from G, which moved it).
  assert np.abs(generator.w_avg.numpy()).sum() > 0

  picture, ids, names = sample_lib.draw_grid(str(run), per_class=3)
  assert ids == [0] and names == ["fashion-mnist-0-7"]
  # One row of three 32x32 samples.
  assert picture.ndim == 3 and picture.shape[-1] == 1
  assert 32 <= picture.shape[0] < 64 and picture.shape[1] >= 3 * 32

  # Rows per truncation: near psi = 0 every column is close to the average
  # image (its noise still differs per sample), untruncated ones are not.
  picture, ids, _ = sample_lib.draw_grid(str(run), per_class=3,
                                         truncations=[1.0, 1e-6])
  assert ids == [0, 0]
  def cell(row, column):  # 32x32 cells with a 1-pixel border (images.grid).
    top, left = 1 + 33 * row, 1 + 33 * column
    return picture[top:top + 32, left:left + 32].astype(int)
  spread = lambda row: np.mean([np.abs(cell(row, a) - cell(row, b)).mean()
                                 for a, b in ((0, 1), (0, 2), (1, 2))])
  assert spread(1) < 0.8 * spread(0)
  with pytest.raises(UserInputError, match="give numbers > 0"):
    sample_lib.parse_truncations(["0.7", "-1"])
  assert sample_lib.parse_truncations(["1", "0.5"]) == [1.0, 0.5]

  # The export truncates in w: psi = 1 is the generator's own image, and
  # the same seed gives the same image in any batch.
  target = export_lib.export(str(run), str(tmp_path / "export"))
  assert target == str(tmp_path / "export" / "1")
  loaded = tf.saved_model.load(target)
  z = tf.constant(np.random.RandomState(0).randn(3, 8), tf.float32)
  labels = tf.zeros([3], tf.int32)
  served = assert_from_z_matches(loaded, generator, z, labels)
  average = loaded.signatures["from_z"](labels=labels, z=z,
                                        truncation=tf.constant(1e-6))["images"]
  assert (np.abs(np.diff(average.numpy().astype(int), axis=0)).mean()
          < np.abs(np.diff(served.numpy().astype(int), axis=0)).mean())
  seeds = tf.constant([5, 6], tf.int64)
  pair = loaded.signatures["serving_default"](
      labels=tf.zeros([2], tf.int32), seeds=seeds,
      truncation=tf.constant(0.7))["images"]
  single = loaded.signatures["serving_default"](
      labels=tf.zeros([1], tf.int32), seeds=seeds[1:],
      truncation=tf.constant(0.7))["images"]
  assert np.abs(pair.numpy()[1].astype(int)
                - single.numpy()[0].astype(int)).max() <= 1
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.load(session, ["serve"], target)
    assert {"serving_default", "unconditional"} <= set(meta.signature_def)
  metadata = json.loads(open(os.path.join(
      target, "assets.extra", "tfgt_model.json")).read())
  assert metadata["truncation"].startswith("psi")


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_merged_classes_are_one_class_of_their_images():
  full = sources.fashion_mnist(split="test")
  merged = sources.merged_classes(split="test", source=sources.fashion_mnist,
                                  classes=["Bag", 9], name="bags-and-boots")
  assert merged.class_names == ["bags-and-boots"]
  keep = np.isin(full.labels, [8, 9])
  np.testing.assert_array_equal(merged.images, full.images[keep])
  assert merged.labels.shape == (keep.sum(),) and not merged.labels.any()
  with pytest.raises(UserInputError, match="give the merged class a name"):
    sources.merged_classes(split="test", name=" ")
  with pytest.raises(UserInputError, match="'Handbag' is not in the dataset"):
    sources.merged_classes(split="test", classes=["Handbag"], name="x")
