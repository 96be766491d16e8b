"""New classes for a class-conditional StyleGAN2: cGANTransfer's knowledge
propagation on the label embedding, and the TransferGAN / FreezeD
baselines, from a tiny StyleGAN2 source bundle written by the test."""

import json
import math
import os

import gin
import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import REPO
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tfgt.methods import bsa
from tfgt.methods import cgantransfer
from tfgt.methods import finetune
from tfgt.methods import source as source_lib
from tfgt.models import bundle
from tfgt.models import stylegan2
from tfgt.models import stylegan2_transfer as sg2t
from tfgt.models import weights
from tools import plot_similarity

N, M = 8, 2
# 32 px: Fashion-MNIST's smallest size, for the trainer's test.
TINY_G = dict(resolution=32, channels=1, dim_z=8, w_dim=8, mapping_layers=2,
              channel_base=128, channel_max=8, style_mixing_prob=0.0)
TINY_D = dict(resolution=32, channels=1, channel_base=128, channel_max=8,
              mapping_layers=1)
NAMES = [f"old{i}" for i in range(N)]
NEW_NAMES = ["new0", "new1"]


def _write_source(directory, num_classes=N, seed=0):
  keras.utils.set_random_seed(seed)
  g = stylegan2.StyleGAN2Generator(num_classes, **TINY_G)
  d = stylegan2.StyleGAN2Discriminator(num_classes, **TINY_D)
  stylegan2.build_models(g, d)
  # A w_avg away from 0, so that a change of it would show.
  g.w_avg.assign(tf.random.normal([g.w_dim]))
  names = NAMES[:num_classes] if num_classes > 1 else ["all"]
  bundle.BundleWriter(os.path.join(directory, "model"), g, d, names,
                      "scratch").save(1)
  return g, d


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """(bundle folder, its generator, its discriminator), 8 classes."""
  directory = str(tmp_path_factory.mktemp("stylegan2_source"))
  g, d = _write_source(directory)
  return directory, g, d


def _inputs(labels, seed=0):
  labels = tf.constant(labels, tf.int32)
  return tf.random.stateless_normal([len(labels), TINY_G["dim_z"]],
                                    [seed, 1]), labels


def _effective_embedding(g, labels):
  return g.mapping.embed(tf.one_hot(labels, g.num_classes)).numpy()


def test_prescale_gives_the_effective_values_to_one_float32_step():
  values = np.random.RandomState(0).normal(size=[4000]).astype(np.float32)
  for gain in (1 / math.sqrt(10), 1 / math.sqrt(3), 0.7, 1.0):
    stored = sg2t.prescale(values, gain)
    product = stored * np.float32(gain)
    exact = np.mean(product == values)
    assert exact > 0.7, (gain, exact)
    np.testing.assert_array_max_ulp(product, values, maxulp=1)
  with pytest.raises(ValueError, match="not finite"):
    sg2t.prescale(np.array([np.nan], np.float32), 0.5)


def test_cgantransfer_keeps_old_classes_bit_for_bit_and_learns_embeddings(
    source):
  directory, src_g, src_d = source
  method = cgantransfer.CGANTransfer(source=directory, score_bias=True)
  setup = method.build(NAMES + NEW_NAMES)
  g, d = setup.generator, setup.discriminator
  assert isinstance(g, sg2t.StyleGAN2TransferGenerator)
  assert g.num_classes == N + M and g.architecture == "stylegan2"
  # Only the propagation's variables train: scores [M, N], their bias [N],
  # pseudo-classes [N, E], residuals [M, E].
  e = TINY_G["w_dim"]
  assert sorted(weights.relative_path(v) for v in setup.g_variables) == [
      "mapping/embed/pseudo_classes", "mapping/embed/residuals",
      "mapping/embed/score_bias", "mapping/embed/scores"]
  assert sum(math.prod(v.shape) for v in setup.g_variables) == (
      M * N + N + N * e + M * e)
  old = list(range(N))
  # At the start a new class's embedding is the mean of the old ones'.
  np.testing.assert_allclose(
      _effective_embedding(g, [N, N + 1]),
      np.repeat(_effective_embedding(src_g, old).mean(0, keepdims=True), 2,
                axis=0), rtol=1e-5, atol=1e-6)

  # Train the propagation a little, in training mode.
  w_avg = g.w_avg.numpy()
  optimizer = keras.optimizers.Adam(0.05)
  for step in range(3):
    z, y = _inputs([N, N + 1, 0, N + 1], seed=step)
    with tf.GradientTape() as tape:
      images = g((z, y), training=True)
      loss = (tf.reduce_mean(tf.square(images - 0.5)) +
              0.01 * g.scores_l1() + 0.01 * g.residuals_l2())
    grads = tape.gradient(loss, setup.g_variables)
    assert all(grad is not None for grad in grads)
    optimizer.apply_gradients(zip(grads, setup.g_variables))
  # Truncation's centre stays the source's.
  np.testing.assert_array_equal(g.w_avg.numpy(), w_avg)
  # The old classes draw the source's images bit for bit; new ones moved.
  z, y = _inputs(old + old)
  np.testing.assert_array_equal(g((z, y), training=False).numpy(),
                                src_g((z, y), training=False).numpy())
  np.testing.assert_array_equal(g.truncated_call((z, y), 0.7).numpy(),
                                src_g.truncated_call((z, y), 0.7).numpy())
  embedding = g.embedding
  assert not np.allclose(embedding.scores.numpy(), 1 / N)
  assert np.abs(embedding.residuals.numpy()).max() > 0
  # eq. 7's regularisers as the per-tensor means.
  np.testing.assert_allclose(float(g.scores_l1()),
                             np.abs(embedding.scores.numpy()).mean(),
                             rtol=1e-6)
  np.testing.assert_allclose(float(g.residuals_l2()),
                             np.square(embedding.residuals.numpy()).mean(),
                             rtol=1e-6)
  # The new rows are S @ P + r, the score bias added to every new class.
  np.testing.assert_allclose(
      _effective_embedding(g, [N, N + 1]) - embedding.bias.numpy(),
      (embedding.scores.numpy() + embedding.score_bias.numpy()) @
      embedding.pseudo_classes.numpy() + embedding.residuals.numpy(),
      rtol=1e-5, atol=1e-6)

  # The fold is a plain StyleGAN2 for N + M classes drawing the same images.
  folded = setup.fold(g)
  assert type(folded) is stylegan2.StyleGAN2Generator
  assert folded.num_classes == N + M
  assert folded.ctor_kwargs == src_g.ctor_kwargs
  z, y = _inputs(list(range(N + M)) * 2, seed=4)
  np.testing.assert_allclose(folded((z, y), training=False).numpy(),
                             g((z, y), training=False).numpy(), atol=1e-5)
  # D: the source's, its label mapping grown by M rows; an old class's
  # logit is the source's (to the rounding of the rescaled rows).
  assert d.num_classes == N + M
  images = src_g(_inputs(old), training=False)
  np.testing.assert_allclose(d((images, tf.constant(old))).numpy(),
                             src_d((images, tf.constant(old))).numpy(),
                             rtol=1e-5, atol=1e-6)
  assert weights.relative_path(d.mapping.embed.weight) in {
      weights.relative_path(v) for v in setup.d_variables}


def test_equalized_tables_grow_with_their_effective_rows_kept(source):
  _, src_g, _ = source
  for rows in ("mean", "zeros", "random"):
    grown = stylegan2.StyleGAN2Generator(N + M, **TINY_G)
    stylegan2.build_models(grown)
    assert not weights.copy_weights(src_g, grown, N, rows)
    old = _effective_embedding(src_g, list(range(N)))
    np.testing.assert_allclose(_effective_embedding(grown, list(range(N))),
                               old, rtol=1e-5, atol=1e-6)
    new = _effective_embedding(grown, [N, N + 1])
    if rows == "mean":
      np.testing.assert_allclose(new, np.repeat(
          old.mean(0, keepdims=True), 2, axis=0), rtol=1e-5, atol=1e-6)
    elif rows == "zeros":
      np.testing.assert_allclose(new, np.tile(
          grown.mapping.embed.bias.numpy(), [2, 1]), atol=1e-7)


@pytest.mark.parametrize("method_class,frozen_blocks",
                         [(finetune.TransferGAN, 0), (finetune.FreezeD, 2)])
def test_transfergan_and_freezed_fine_tune_a_grown_stylegan2(
    source, method_class, frozen_blocks):
  directory, src_g, _ = source
  setup = method_class(source=directory).build(NAMES + NEW_NAMES)
  g, d = setup.generator, setup.discriminator
  assert type(g) is stylegan2.StyleGAN2Generator and g.num_classes == N + M
  assert len(setup.g_variables) == len(g.trainable_variables)
  # Old classes start where the source is (the grown embedding rescaled).
  z, y = _inputs(list(range(N)))
  np.testing.assert_allclose(g((z, y), training=False).numpy(),
                             src_g((z, y), training=False).numpy(),
                             atol=1e-5)
  frozen = {id(v) for block in d.blocks[:frozen_blocks]
            for v in block.variables}
  assert {id(v) for v in setup.d_variables} == {
      id(v) for v in d.trainable_variables if id(v) not in frozen}
  assert len(d.blocks) == 4  # b32, b16, b8 and the epilogue b4.


def test_sources_the_methods_cannot_take_are_refused(tmp_path, source):
  unconditional = str(tmp_path / "unconditional")
  _write_source(unconditional, num_classes=1)
  with pytest.raises(UserInputError, match="unconditional stylegan2.*"
                     "class-conditional source"):
    finetune.TransferGAN(source=unconditional).build(["all"] + NEW_NAMES)
  with pytest.raises(UserInputError, match="class-conditional StyleGAN2"):
    cgantransfer.CGANTransfer(source=unconditional).build(
        ["all"] + NEW_NAMES)
  directory = source[0]
  with pytest.raises(UserInputError, match="BN parameters of a BigGAN.*"
                     "stylegan2"):
    bsa.BSA(source=directory).build(NAMES + NEW_NAMES)
  with pytest.raises(UserInputError, match="shared_scores"):
    cgantransfer.CGANTransfer(source=directory, shared_scores=True).build(
        NAMES + NEW_NAMES)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_the_main_job_config_transfers_a_stylegan2_source(source, tmp_path,
                                                          monkeypatch):
  """cgantransfer.gin with SOURCE set to a StyleGAN2 bundle, through the
  trainer, as docs/STYLEGAN2.md tells a user."""
  directory, src_g, _ = source
  monkeypatch.chdir(REPO)
  gin.clear_config()
  train_lib.parse_config(
      [os.path.join("gin_configs", "fashion_mnist", "cgantransfer.gin")],
      [f"SOURCE = '{directory}'", "IMAGES_PER_CLASS = 8",
       "train.batch_size = 8", "train.num_steps = 2",
       "train.eval_every = 0", "train.sample_every = 0",
       "train.checkpoint_every = 2", "train.log_every = 1",
       "train.samples_per_class = 2"])
  try:
    train_lib.train(str(tmp_path), strategy=tf.distribute.get_strategy())
  finally:
    gin.clear_config()
  spec = json.loads((tmp_path / "model" / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "stylegan2"
  assert spec["class_names"][:N] == NAMES
  assert spec["class_names"][N:] == ["Bag", "Ankle boot"]
  g, _, _ = bundle.load(str(tmp_path), with_discriminator=True)
  assert type(g) is stylegan2.StyleGAN2Generator and g.num_classes == N + M
  z, y = _inputs(list(range(N)))
  np.testing.assert_allclose(g((z, y), training=False).numpy(),
                             src_g((z, y), training=False).numpy(),
                             atol=1e-5)
  # The new classes' embeddings trained away from the old classes' mean.
  embedding = source_lib.load(directory).generator.mapping.embed
  start = embedding(tf.one_hot(list(range(N)), N)).numpy().mean(0)
  assert not np.allclose(_effective_embedding(g, [N, N + 1]), start,
                         atol=1e-6)
  # What the run learned, as pictures: one table of scores, the
  # pseudo-classes; no layer substitution (one layer).
  paths = plot_similarity.plot(str(tmp_path), samples=2)
  assert sorted(paths) == ["pseudo_classes", "scores", "scores_json"]
  scores = json.loads(open(paths["scores_json"]).read())
  assert list(scores["scores"]) == ["mapping/embed"]
  table = np.array(scores["scores"]["mapping/embed"]["embedding"])
  assert table.shape == (M, N) and not np.allclose(table, 1 / N)
  heatmap = np.asarray(Image.open(paths["scores"]))
  assert heatmap.ndim == 3 and heatmap.shape[0] > 100
  # The fine-tuning stage (paper 5.4) starts from this run's EMA generator:
  # scores and pseudo-classes frozen, residuals and the rest of G (the old
  # classes' rows too) trained.
  stage2 = cgantransfer.CGANTransfer(source=directory, fine_tune=True,
                                     init_from=str(tmp_path)).build(
                                         NAMES + ["Bag", "Ankle boot"])
  trained = {weights.relative_path(v) for v in stage2.g_variables}
  assert "mapping/embed/residuals" in trained
  assert "mapping/fc0/weight" in trained and "synthesis/b32/conv1/weight" in (
      trained)
  assert "mapping/embed/weight" in trained  # Old classes change, as BigGAN's.
  assert not trained & {"mapping/embed/scores",
                        "mapping/embed/pseudo_classes"}
  np.testing.assert_array_equal(stage2.generator.embedding.scores.numpy(),
                                np.array(table, np.float32))
