"""The contrastive discriminator's pieces: seeded views (tfgt.data.augment;
the official pair's blur and solarisation: tests/data/test_augment_views.py),
the Barlow Twins loss (eq. 7) against NumPy and across two replicas, and a
contrastive term that reaches D only."""

import numpy as np
import pytest
import tensorflow as tf

from tfgt import objectives
from tfgt.data import augment
from tfgt.errors import UserInputError
from tfgt.methods import contrastive
from tfgt.models import architectures
from tfgt.models import stylegan


def _numpy_barlow_twins(z1, z2, off=5e-3, eps=1e-5):
  n1 = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)
  n2 = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
  c = n1.T @ n2 / len(z1)
  total = 0.0
  for i in range(c.shape[0]):
    for j in range(c.shape[1]):
      total += (1 - c[i, j]) ** 2 if i == j else off * c[i, j] ** 2
  return total


def test_barlow_twins_is_eq_7_on_one_device_and_two_replicas():
  rng = np.random.RandomState(0)
  z1 = rng.randn(8, 5).astype(np.float32)
  z2 = (z1 + 0.5 * rng.randn(8, 5)).astype(np.float32)
  want = _numpy_barlow_twins(z1.astype(np.float64), z2.astype(np.float64))
  got = contrastive.barlow_twins_loss(tf.constant(z1), tf.constant(z2))
  np.testing.assert_allclose(float(got), want, rtol=1e-4)
  # Identical, decorrelated views: C = I, the loss is 0.
  eye = np.eye(4, dtype=np.float32)
  white = (np.concatenate([eye, -eye]) * np.sqrt(2.0)).astype(np.float32)
  assert float(contrastive.barlow_twins_loss(white, white)) < 1e-4

  # Each replica gets half of the rows; every replica returns the global
  # loss, and the gradients summed over replicas are the one-device ones.
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
  strategy = tf.distribute.MirroredStrategy(
      cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  def rows(ctx):
    i = ctx.replica_id_in_sync_group
    return tf.constant(z1[4 * i:4 * i + 4]), tf.constant(z2[4 * i:4 * i + 4])
  inputs = strategy.experimental_distribute_values_from_function(rows)

  @tf.function
  def step(pair):
    a, b = pair
    with tf.GradientTape() as tape:
      tape.watch(a)
      loss = contrastive.barlow_twins_loss(a, b) / 2.0  # A replica's share.
    return loss, tape.gradient(loss, a)
  losses, grads = strategy.run(step, args=(inputs,))
  total = sum(float(x) for x in strategy.experimental_local_results(losses))
  np.testing.assert_allclose(total, want, rtol=1e-4)
  z1_var = tf.constant(z1)
  with tf.GradientTape() as tape:
    tape.watch(z1_var)
    one = contrastive.barlow_twins_loss(z1_var, tf.constant(z2))
  want_grad = tape.gradient(one, z1_var).numpy()
  got_grad = np.concatenate([g.numpy() for g in
                             strategy.experimental_local_results(grads)])
  np.testing.assert_allclose(got_grad, want_grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("view", [1, 2, "symmetric"])
@pytest.mark.parametrize("channels", [1, 3])
def test_views_are_seeded_per_sample_and_stay_in_range(channels, view):
  images = tf.random.stateless_uniform([5, 32, 32, channels], [0, 1],
                                       minval=-1.0, maxval=1.0)
  seeds = tf.constant([[i, 7] for i in range(5)], tf.int32)
  views = augment.random_view(images, seeds, view)
  assert views.shape == images.shape
  assert float(tf.reduce_min(views)) >= -1.0 - 1e-6
  assert float(tf.reduce_max(views)) <= 1.0 + 1e-6
  # A sample's view depends on its image and seed, not on its batch.
  alone = augment.random_view(images[3:4], seeds[3:4], view)
  np.testing.assert_allclose(alone.numpy()[0], views.numpy()[3], atol=1e-5)
  assert not np.allclose(augment.random_view(images, seeds + 1, view).numpy(),
                         views.numpy())


def test_crop_and_blur_limits():
  images = tf.random.stateless_uniform([2, 16, 16, 3], [0, 2])
  ones = tf.ones([2])
  # The whole image at aspect 1 is the image.
  full = augment.resized_crop(images, ones, 0.0 * ones, ones, ones)
  np.testing.assert_allclose(full.numpy(), images.numpy(), atol=1e-5)
  # A tiny sigma leaves the image; a constant image stays constant.
  np.testing.assert_allclose(augment.blur(images, 0.05 * ones).numpy(),
                             images.numpy(), atol=1e-5)
  flat = tf.fill([2, 16, 16, 3], 0.3)
  np.testing.assert_allclose(augment.blur(flat, 2.0 * ones).numpy(),
                             flat.numpy(), atol=1e-6)


def test_contrastive_term_reaches_d_only():
  with pytest.raises(UserInputError, match="must be >= 0"):
    contrastive.ContrastiveAdversarial(weight=-1.0)
  g = stylegan.StyleGANGenerator(2, resolution=8, channels=1, dim_z=8,
                                 w_dim=8, mapping_layers=1, fmap_base=32,
                                 fmap_max=8)
  d = stylegan.StyleGANDiscriminator(2, resolution=8, channels=1,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  z = tf.random.stateless_normal([4, 8], [0, 5])
  y = tf.constant([0, 1, 0, 1])
  batch = objectives.Batch(
      images=tf.random.stateless_uniform([4, 8, 8, 1], [0, 6], -1.0, 1.0),
      labels=y, z_d=z, y_d=y, z_g=z, y_g=y,
      index=tf.zeros([4], tf.int64), global_batch_size=4, num_replicas=1)
  objective = contrastive.ContrastiveAdversarial(r1_gamma=1.0, weight=1e-2)
  with tf.GradientTape(persistent=True) as tape:
    loss, parts = objective.d_loss(batch, g, d)
    term = parts["contrastive_real"] + parts["contrastive_fake"]
  base, _ = objectives.Adversarial(r1_gamma=1.0).d_loss(batch, g, d)
  np.testing.assert_allclose(float(loss), float(base) + 1e-2 * float(term),
                             rtol=1e-4)
  assert float(parts["contrastive_fake"]) > 0
  assert all(x is None for x in tape.gradient(term, g.trainable_variables))
  d_grads = tape.gradient(term, d.trainable_variables)
  assert sum(float(tf.reduce_sum(tf.abs(x))) for x in d_grads
             if x is not None) > 0
