"""StyleGAN2's path-length regularisation: the lengths against their
closed form for a linear synthesis, the penalty and the running mean on a
tiny StyleGAN2 (lazily too), its gradient, the refusals, and two training
steps on two replicas with the mean checkpointed."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import events
from tests.models.test_stylegan2 import UNCONDITIONAL
from tests.models.test_stylegan2 import train_tiny_stylegan2
from tfgt import losses
from tfgt import objectives
from tfgt.errors import UserInputError
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import inputs as inputs_lib
from tfgt.models import stylegan2

TINY = dict(resolution=8, channels=1, dim_z=8, w_dim=6, mapping_layers=1,
            channel_base=32, channel_max=4, style_mixing_prob=0.5)


def test_path_lengths_of_a_linear_synthesis():
  rng = np.random.RandomState(0)
  a = rng.randn(3, 6, 4 * 4 * 2).astype(np.float32)  # [L, w_dim, pixels]
  ws = tf.constant(rng.randn(5, 3, 6), tf.float32)
  seeds = tf.constant(rng.randint(0, 1000, (5, 2)), tf.int32)

  def synthesize(w):
    return tf.reshape(tf.einsum("blw,lwk->bk", w, a), [-1, 4, 4, 2])

  lengths = losses.path_lengths(synthesize, ws, seeds).numpy()
  y = losses.path_length_noise(tf.constant([5, 4, 4, 2]), seeds).numpy()
  np.testing.assert_allclose(y.std(), 1 / 4, rtol=0.2)
  grads = np.einsum("lwk,bk->blw", a, y.reshape(5, -1))
  want = np.sqrt((grads ** 2).sum(axis=2).mean(axis=1))
  np.testing.assert_allclose(lengths, want, rtol=1e-5)
  # A row's y depends on its seed only.
  np.testing.assert_array_equal(
      losses.path_length_noise(tf.constant([2, 4, 4, 2]), seeds[3:]).numpy(),
      y[3:])


def _models(track=True):
  tf.keras.utils.set_random_seed(1)
  g = stylegan2.StyleGAN2Generator(1, track_path_length=track, **TINY)
  d = stylegan2.StyleGAN2Discriminator(1, resolution=8, channels=1,
                                       channel_base=32, channel_max=4)
  architectures.build_by_calling(g, d)
  return g, d


def _batch(index, rows=4, batches_per_step=1):
  z = tf.random.stateless_normal([rows, 8], [index, 3])
  y = tf.zeros([rows], tf.int32)
  return objectives.Batch(
      images=None, labels=None, z_d=z, y_d=y, z_g=z, y_g=y,
      index=tf.fill([rows], tf.constant(index, tf.int64)),
      global_batch_size=rows, num_replicas=1,
      batches_per_step=batches_per_step)


def test_the_penalty_and_the_running_mean():
  g, d = _models()
  assert g.pl_mean is not None and float(g.pl_mean) == 0.0
  assert g.ema_copies(g.pl_mean)
  objective = objectives.Adversarial(pl_weight=2.0, pl_every=1,
                                     pl_decay=0.1)
  batch = _batch(0, rows=3)
  # The rows regularised (every 2nd: 2 of 3) and their lengths, drawn as
  # the objective draws them.
  z = batch.z_g[::2]
  ws, noise = g.styles(z, batch.y_g[::2], training=True, update_w_avg=False)
  lengths = losses.path_lengths(
      lambda w: g.synthesize(w, z, training=True, noise=noise), ws,
      inputs_lib.sample_seeds(z) + objectives.Adversarial._PL_SALT).numpy()
  assert np.all(lengths > 0)
  w_avg = g.w_avg.numpy()
  with tf.GradientTape() as tape:
    loss, parts = objective.g_loss(batch, g, d)
  mean = 0.1 * lengths.mean()
  np.testing.assert_allclose(float(g.pl_mean), mean, rtol=1e-5)
  # pl_weight * pl_every * the mean over the regularised rows.
  assert lengths.shape == (2,)
  np.testing.assert_allclose(float(parts["pl"]),
                             2.0 * np.mean((lengths - mean) ** 2), rtol=1e-4)
  np.testing.assert_allclose(float(loss),
                             float(parts["adversarial"] + parts["pl"]),
                             rtol=1e-6)
  # The penalty's gradient (a gradient of a gradient) reaches the synthesis
  # kernels and the mapping network.
  variables = [g.synthesis.b8.conv0.weight, g.mapping.fc0.weight]
  grads = tape.gradient(parts["pl"], variables)
  assert all(gr is not None and np.all(np.isfinite(gr.numpy())) and
             np.abs(gr.numpy()).sum() > 0 for gr in grads)
  # The extra draw leaves w_avg alone (the G pass above moved it once).
  g2, d2 = _models()
  g2((batch.z_g, batch.y_g), training=True)
  np.testing.assert_array_equal(g.w_avg.numpy(), g2.w_avg.numpy())
  assert not np.array_equal(g.w_avg.numpy(), w_avg)
  del d2


@pytest.mark.parametrize("d_steps", [1, 2])
def test_lazy_schedule_counts_g_updates(d_steps):
  g, d = _models()
  objective = objectives.Adversarial(pl_weight=1.0, pl_every=2)
  # The G update takes the last of the step's d_steps batches.
  first, second = d_steps - 1, 2 * d_steps - 1
  _, parts = objective.g_loss(_batch(first, batches_per_step=d_steps), g, d)
  assert float(parts["pl"]) == 0.0 and float(g.pl_mean) == 0.0  # 1 of 2.
  _, parts = objective.g_loss(_batch(second, batches_per_step=d_steps), g,
                              d)
  assert float(parts["pl"]) > 0.0 and float(g.pl_mean) > 0.0  # 2 of 2.
  assert objective.xla_blocker and "pl_weight" in objective.xla_blocker


def test_refusals():
  g, d = _models(track=False)
  with pytest.raises(UserInputError, match="track_path_length = True"):
    objectives.Adversarial(pl_weight=2.0).g_loss(_batch(3), g, d)
  # Off: no part, no state needed.
  _, parts = objectives.Adversarial().g_loss(_batch(3), g, d)
  assert set(parts) == {"adversarial"} and g.pl_mean is None
  for options, match in ((dict(pl_weight=-1.0), "pl_weight must be >= 0"),
                         (dict(pl_every=0), "pl_every must be an int"),
                         (dict(pl_batch_shrink=1.5), "pl_batch_shrink"),
                         (dict(pl_decay=0.0), r"pl_decay must be in \(0")):
    with pytest.raises(UserInputError, match=match):
      objectives.Adversarial(**options)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_two_steps_on_two_replicas_keep_the_mean(tmp_path):
  train_tiny_stylegan2(tmp_path, 2, [
      "StyleGAN2Generator.track_path_length = True",
      "Adversarial.pl_weight = 2.0", "Adversarial.pl_every = 2",
      "load_training_data.images_per_class = 8",
      "train.checkpoint_every = 2"], config=UNCONDITIONAL, replicas=2)
  tags = events(str(tmp_path))
  assert tags["train/g/pl"] == [1, 2]
  # Both networks' bundle copy holds the mean that step 2 wrote.
  g, _, spec = bundle.load(str(tmp_path))
  assert spec["generator"]["track_path_length"] is True
  assert float(g.pl_mean) > 0.0
