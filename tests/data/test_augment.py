"""DiffAugment (tfgt.data.augment.DiffAugment) and its use by the
adversarial objective: the transformations against NumPy, per-sample seeds,
the refusals, gradients through the augmentation, the same loss on one
device and on two replicas, and a training run that uses it."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_training
from tfgt import objectives
from tfgt.data import augment
from tfgt.errors import UserInputError
from tfgt.models import architectures
from tfgt.models import stylegan


def _images(shape, seed=0):
  return tf.random.stateless_uniform(shape, [seed, 1], -1.0, 1.0)


def _numpy_translate(x, dy, dx):
  out = np.zeros_like(x)
  h, w = x.shape[:2]
  for i in range(h):
    for j in range(w):
      if 0 <= i - dy < h and 0 <= j - dx < w:
        out[i, j] = x[i - dy, j - dx]
  return out


def test_translate_and_cutout_match_numpy():
  x = _images([4, 7, 5, 2]).numpy()
  dy, dx = [1, -3, 0, 9], [2, 0, -4, -1]
  got = augment.translate(tf.constant(x), tf.constant(dy),
                          tf.constant(dx)).numpy()
  for b in range(4):
    np.testing.assert_array_equal(got[b], _numpy_translate(x[b], dy[b], dx[b]))
  assert not got[3].any()  # Shifted out entirely.

  top, left = [-2, 3, 0, 6], [1, 4, -1, 0]
  got = augment.cutout(tf.constant(x), tf.constant(top), tf.constant(left),
                       3).numpy()
  for b in range(4):
    want = x[b].copy()
    want[max(top[b], 0):max(top[b] + 3, 0),
         max(left[b], 0):max(left[b] + 3, 0)] = 0.0
    np.testing.assert_array_equal(got[b], want)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_matches_its_formula(channels):
  x = _images([2, 4, 4, channels]).numpy()
  b, s, c = np.float32([0.3, -0.2]), np.float32([1.5, 0.2]), np.float32(
      [0.7, 1.4])
  got = augment.color(tf.constant(x), b, s, c).numpy()
  for i in range(2):
    y = x[i] + b[i]
    if channels == 3:
      y = (y - y.mean(-1, keepdims=True)) * s[i] + y.mean(-1, keepdims=True)
    want = (y - y.mean()) * c[i] + y.mean()
    np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)


def test_diffaugment_is_seeded_per_sample_and_stays_in_its_ranges():
  images = _images([6, 32, 32, 1])
  seeds = tf.constant([[i, 3] for i in range(6)], tf.int32)
  full = augment.DiffAugment()
  views = full(images, seeds)
  assert views.shape == images.shape
  # A sample's augmentation depends on its image and seed, not its batch.
  np.testing.assert_allclose(full(images[4:5], seeds[4:5]).numpy()[0],
                             views.numpy()[4], atol=1e-6)
  assert not np.allclose(full(images, seeds + 1).numpy(), views.numpy())
  # Cutout alone zeroes a 16 x 16 square, whole or cut by the border.
  zeros = (augment.DiffAugment("cutout")(tf.ones([64, 32, 32, 1]),
                                         _seeds(64)).numpy() == 0)
  counts = zeros.sum(axis=(1, 2, 3))
  assert counts.max() == 256 and counts.min() >= 64
  # Translation alone: shifts in [-4, 4] (1/8 of 32), both extremes drawn.
  impulse = np.zeros([64, 32, 32, 1], np.float32)
  impulse[:, 16, 16] = 1.0
  moved = augment.DiffAugment(["translation"])(tf.constant(impulse),
                                               _seeds(64)).numpy()
  rows, cols = np.nonzero(moved[..., 0])[1:]
  assert len(rows) == 64
  shifts = np.concatenate([rows - 16, cols - 16])
  assert shifts.min() == -4 and shifts.max() == 4
  # Colour alone: a flat image moves by the brightness, in [-0.5, 0.5);
  # a pattern's deviations scale by the contrast, in [0.5, 1.5).
  flat = augment.DiffAugment("color")(tf.zeros([64, 4, 4, 1]), _seeds(64))
  shift = flat.numpy()[:, 0, 0, 0]
  assert np.allclose(flat.numpy(), shift[:, None, None, None], atol=1e-6)
  assert -0.5 <= shift.min() < -0.4 and 0.4 < shift.max() < 0.5
  pattern = np.float32([[1, -1], [-1, 1]])[None, :, :, None].repeat(64, 0)
  scaled = augment.DiffAugment("color")(tf.constant(pattern), _seeds(64))
  spread = scaled.numpy().std(axis=(1, 2, 3))
  assert 0.5 <= spread.min() < 0.6 and 1.4 < spread.max() < 1.5
  # No policy: the images as they are.
  assert augment.DiffAugment("")(images, seeds) is images


def _seeds(n):
  return tf.constant([[i, 11] for i in range(n)], tf.int32)


def test_diffaugment_refuses_unknown_policies_and_ratios():
  with pytest.raises(UserInputError, match="unknown \\['colour'\\]"):
    augment.DiffAugment("colour,cutout")
  with pytest.raises(UserInputError, match="translation must be"):
    augment.DiffAugment(translation=1.5)
  with pytest.raises(UserInputError, match="cutout must be"):
    augment.DiffAugment(cutout=-0.1)


def _tiny_gan():
  # No minibatch-stddev layer: its groups would depend on the replica split.
  g = stylegan.StyleGANGenerator(2, resolution=8, channels=1, dim_z=8,
                                 w_dim=8, mapping_layers=1, fmap_base=32,
                                 fmap_max=8)
  d = stylegan.StyleGANDiscriminator(2, resolution=8, channels=1,
                                     fmap_base=32, fmap_max=8,
                                     mbstd_group_size=1)
  architectures.build_by_calling(g, d)
  return g, d


def _batch(rows, replicas=1, total=None):
  z = tf.random.stateless_normal([8, 8], [0, 5])[rows]
  y = tf.constant([0, 1] * 4)[rows]
  images = _images([8, 8, 8, 1], seed=6)[rows]
  return objectives.Batch(images=images, labels=y, z_d=z, y_d=y, z_g=-z,
                          y_g=y, index=tf.zeros([len(range(8)[rows])],
                                                tf.int64),
                          global_batch_size=total or 8,
                          num_replicas=replicas)


def test_augmented_objective_reaches_g_and_the_r1_reals():
  g, d = _tiny_gan()
  batch = _batch(slice(0, 8))
  plain = objectives.Adversarial(r1_gamma=1.0)
  augmented = objectives.Adversarial(r1_gamma=1.0,
                                     augment=augment.DiffAugment())
  d_plain, _ = plain.d_loss(batch, g, d)
  d_aug, parts = augmented.d_loss(batch, g, d)
  assert float(d_plain) != pytest.approx(float(d_aug))
  assert float(parts["r1"]) > 0
  # R1 is taken through the augmentation: not the plain penalty.
  assert float(parts["r1"]) != pytest.approx(
      float(plain.d_loss(batch, g, d)[1]["r1"]))
  # G's loss sees its fakes augmented.
  assert float(augmented.g_loss(batch, g, d)[0]) != pytest.approx(
      float(plain.g_loss(batch, g, d)[0]))
  with tf.GradientTape() as tape:
    g_aug, _ = augmented.g_loss(batch, g, d)
  grads = tape.gradient(g_aug, g.trainable_variables)
  assert sum(float(tf.reduce_sum(tf.abs(x))) for x in grads
             if x is not None) > 0
  # The same rows augment the same way: the loss repeats.
  assert float(augmented.d_loss(batch, g, d)[0]) == pytest.approx(
      float(d_aug), rel=1e-6)


def test_augmented_loss_is_the_same_on_two_replicas():
  g, d = _tiny_gan()
  objective = objectives.Adversarial(augment=augment.DiffAugment())
  one, _ = objective.d_loss(_batch(slice(0, 8)), g, d)
  cpus = [x.name for x in tf.config.list_logical_devices("CPU")][:2]
  strategy = tf.distribute.MirroredStrategy(
      cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())

  def replica():
    i = tf.distribute.get_replica_context().replica_id_in_sync_group
    halves = [_batch(slice(0, 4), 2), _batch(slice(4, 8), 2)]
    return tf.switch_case(i, [lambda h=h: objective.d_loss(h, g, d)[0]
                              for h in halves])
  shares = strategy.experimental_local_results(strategy.run(replica))
  assert sum(float(x) for x in shares) == pytest.approx(float(one),
                                                        rel=1e-5)


def test_training_with_diffaugment_on_two_replicas(tmp_path):
  plain = run_training(tmp_path / "plain", 2)
  augmented = run_training(tmp_path / "augmented", 2,
                           ["Adversarial.augment = @DiffAugment()",
                            "DiffAugment.policy = 'translation,cutout'"])
  assert np.isfinite(augmented["d_loss"]) and np.isfinite(
      augmented["g_loss"])
  assert augmented["d_loss"] != pytest.approx(plain["d_loss"])
