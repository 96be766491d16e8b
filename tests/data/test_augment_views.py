"""The contrastive discriminator's two views (tfgt.data.augment): the
official blur and solarisation against NumPy, how often each view blurs and
solarises, the views' determinism (eager, tf.function, two replicas), and
their choice by ContrastiveAdversarial.views."""

import numpy as np
import pytest
import tensorflow as tf

from tfgt import objectives
from tfgt.data import augment
from tfgt.errors import UserInputError
from tfgt.methods import contrastive
from tfgt.models import architectures
from tfgt.models import stylegan


def _seeds(count, salt=3):
  return tf.constant([[i, salt] for i in range(count)], tf.int32)


def _numpy_blur(x, sigma=1.05):
  """3x3 Gaussian blur of x [B, H, W, C]: weights exp(-d^2 / (2 sigma^2))
  at d = -1, 0, 1, normalised, their outer product as the kernel; the
  border reflected without repeating the edge pixel (NumPy's "reflect"),
  which is torch's "reflect" padding, kornia's RandomGaussianBlur default
  border_type."""
  g = np.exp(-np.arange(-1.0, 2.0) ** 2 / (2.0 * sigma ** 2))
  g /= g.sum()
  kernel = np.outer(g, g)
  padded = np.pad(x.astype(np.float64), [(0, 0), (1, 1), (1, 1), (0, 0)],
                  mode="reflect")
  h, w = x.shape[1:3]
  out = np.zeros(x.shape, np.float64)
  for i in range(3):
    for j in range(3):
      out += kernel[i, j] * padded[:, i:i + h, j:j + w]
  return out


def _numpy_solarise(x, threshold):
  """Values at or above the sample's threshold become 1 - value."""
  x = np.clip(x, 0.0, 1.0)
  t = np.asarray(threshold)[:, None, None, None]
  return np.where(x < t, x, 1.0 - x)


@pytest.mark.parametrize("channels", [1, 3])
def test_fixed_blur_is_the_3x3_sigma_1_05_reflect_blur(channels):
  x = tf.random.stateless_uniform([3, 7, 6, channels], [0, 1])
  got = augment.fixed_blur(x).numpy()
  np.testing.assert_allclose(got, _numpy_blur(x.numpy()), atol=1e-6)
  # The kernel itself: 3x3, centre weight 1 / (1 + 2 exp(-1 / 2.205))^2.
  g = augment.gaussian_kernel(1.05, 3)
  np.testing.assert_allclose(g[1], 1.0 / (1.0 + 2.0 * np.exp(-1 / 2.205)))
  # A unit impulse at (1, 1): reflection copies it to the padding's row and
  # column -1, so the corner (0, 0) gets all four diagonal weights, 4 g0^2
  # (zero padding or repeating the edge would give g0^2), and (0, 1) two
  # edge weights, 2 g0 g1.
  impulse = np.zeros([1, 5, 5, 1], np.float32)
  impulse[0, 1, 1, 0] = 1.0
  got = augment.fixed_blur(tf.constant(impulse)).numpy()[0, :, :, 0]
  np.testing.assert_allclose(got[0, 0], 4 * g[0] ** 2, rtol=1e-6)
  np.testing.assert_allclose(got[0, 1], 2 * g[0] * g[1], rtol=1e-6)
  np.testing.assert_allclose(got[1, 1], g[1] ** 2, rtol=1e-6)
  with pytest.raises(UserInputError, match="must be odd"):
    augment.fixed_blur(x, size=4)


def test_solarise_matches_numpy():
  x = tf.random.stateless_uniform([3, 5, 4, 3], [0, 2], -0.1, 1.1)
  # A value equal to its threshold is solarised (kornia keeps v < t).
  x = tf.tensor_scatter_nd_update(x, [[1, 0, 0, 0]], [0.25])
  threshold = np.float32([0.0, 0.25, 0.5])
  got = augment.solarise(x, tf.constant(threshold)).numpy()
  want = _numpy_solarise(x.numpy(), threshold)
  np.testing.assert_allclose(got, want, atol=1e-7)
  assert got[1, 0, 0, 0] == np.float32(0.75)
  # Threshold 0 inverts the whole image (after the clip to [0, 1]); a
  # threshold above every value keeps it.
  np.testing.assert_allclose(got[0], 1.0 - np.clip(x.numpy()[0], 0, 1))
  kept = augment.solarise(x, tf.fill([3], 1.5)).numpy()
  np.testing.assert_allclose(kept, np.clip(x.numpy(), 0, 1))


@pytest.mark.parametrize("view, p_blur, p_solarise", [(1, 0.5, 0.0),
                                                      (2, 0.1, 0.2)])
def test_official_views_blur_and_solarise_as_often_as_the_official_code(
    view, p_blur, p_solarise):
  count = 2000
  images = tf.random.stateless_uniform([count, 4, 4, 3], [0, 4], -1.0, 1.0)

  @tf.function
  def views(seeds):
    params = augment.view_parameters(seeds, view)
    no = tf.zeros([count], tf.bool)
    base = augment.apply_view(images, dict(params, blur=no, solarise=no),
                              view)
    return params, base, augment.random_view(images, seeds, view)
  params, base, full = views(_seeds(count))
  base, full = base.numpy(), full.numpy()
  blurred = params["blur"].numpy()
  solarised = params["solarise"].numpy()
  threshold = params["threshold"].numpy()
  # The views are the unfinished view, blurred where "blur" says and then
  # solarised where "solarise" says, each as NumPy does it.
  x = (base + 1.0) / 2.0
  want = np.where(blurred[:, None, None, None], _numpy_blur(x), x)
  want = np.where(solarised[:, None, None, None],
                  _numpy_solarise(want, threshold), want)
  np.testing.assert_allclose(full, want * 2.0 - 1.0, atol=2e-5)
  # ... and the finishing steps do change the images they are applied to.
  changed = np.abs(full - base).max(axis=(1, 2, 3)) > 1e-3
  assert changed[blurred | solarised].mean() > 0.95
  assert not changed[~(blurred | solarised)].any()

  # Each within 5 binomial standard deviations of the official rate.
  for decided, p in ((blurred, p_blur), (solarised, p_solarise)):
    tolerance = 5.0 * np.sqrt(p * (1.0 - p) / count)
    assert abs(decided.mean() - p) <= tolerance, (decided.mean(), p)
  if not p_solarise:
    assert not solarised.any()
  else:
    # The threshold is uniform in [0, 0.5).
    assert threshold.min() >= 0.0 and threshold.max() < 0.5
    assert abs(threshold.mean() - 0.25) < 0.01
  np.testing.assert_array_equal(params["sigma"].numpy(), np.float32(1.05))
  # The shared steps keep the official rates as well.
  for name, p in (("flip", 0.5), ("jitter", 0.8), ("grey", 0.2)):
    rate = params[name].numpy().mean()
    assert abs(rate - p) <= 5.0 * np.sqrt(p * (1.0 - p) / count), name


def test_the_symmetric_view_blurs_half_with_sigma_up_to_2_and_never_solarises():
  params = tf.function(augment.view_parameters)(_seeds(2000), "symmetric")
  assert abs(params["blur"].numpy().mean() - 0.5) < 0.06
  sigma = params["sigma"].numpy()
  assert sigma.min() >= 0.1 and sigma.max() <= 2.0 and sigma.std() > 0.4
  assert not params["solarise"].numpy().any()


def test_views_are_deterministic_in_graphs_and_on_two_replicas():
  images = tf.random.stateless_uniform([4, 8, 8, 3], [0, 5], -1.0, 1.0)
  seeds_1, seeds_2 = _seeds(4, 11), _seeds(4, 13)
  eager = augment.contrastive_views(images, seeds_1, seeds_2)
  graph = tf.function(augment.contrastive_views)(images, seeds_1, seeds_2)
  again = augment.contrastive_views(images, seeds_1, seeds_2)
  for a, b, c in zip(eager, graph, again):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), c.numpy())
  other = augment.contrastive_views(images, seeds_1 + 1, seeds_2 + 1)
  for a, b in zip(eager, other):
    assert np.abs(a.numpy() - b.numpy()).max() > 0.1
  for view in (1, 2, "symmetric"):
    np.testing.assert_array_equal(
        augment.random_view(images, seeds_1, view).numpy(),
        augment.random_view(images, seeds_1, view).numpy())
  # The pair is view 1 with the first seeds and view 2 with the second.
  np.testing.assert_array_equal(
      eager[1].numpy(), augment.random_view(images, seeds_2, 2).numpy())
  symmetric = augment.contrastive_views(images, seeds_1, seeds_2,
                                        "symmetric")
  np.testing.assert_array_equal(
      symmetric[0].numpy(),
      augment.random_view(images, seeds_1, "symmetric").numpy())

  # Each of two replicas takes half of the batch: the same views.
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
  strategy = tf.distribute.MirroredStrategy(
      cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  def rows(ctx):
    i = ctx.replica_id_in_sync_group
    return (images[2 * i:2 * i + 2], seeds_1[2 * i:2 * i + 2],
            seeds_2[2 * i:2 * i + 2])
  inputs = strategy.experimental_distribute_values_from_function(rows)
  replicated = strategy.run(tf.function(augment.contrastive_views),
                            args=inputs)
  for a, b in zip(eager, replicated):
    got = np.concatenate([x.numpy() for x in
                          strategy.experimental_local_results(b)])
    np.testing.assert_array_equal(got, a.numpy())


def test_unknown_views_are_refused():
  images = tf.zeros([1, 4, 4, 3])
  for view in (0, 3, True, "official"):
    with pytest.raises(UserInputError, match="must be one of"):
      augment.random_view(images, _seeds(1), view)
  with pytest.raises(UserInputError, match="'official'"):
    augment.contrastive_views(images, _seeds(1), _seeds(1), "kornia")
  with pytest.raises(UserInputError, match="ContrastiveAdversarial.views"):
    contrastive.ContrastiveAdversarial(views="asymmetric")


def test_the_objective_compares_the_official_views_by_default():
  g = stylegan.StyleGANGenerator(2, resolution=8, channels=3, dim_z=8,
                                 w_dim=8, mapping_layers=1, fmap_base=32,
                                 fmap_max=8)
  d = stylegan.StyleGANDiscriminator(2, resolution=8, channels=3,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  images = tf.random.stateless_uniform([6, 8, 8, 3], [0, 7], -1.0, 1.0)
  seeds = _seeds(6, 0)
  salts = (11, 13)

  def want(views):
    v1, v2 = augment.contrastive_views(images, seeds + salts[0],
                                       seeds + salts[1], views)
    return contrastive.barlow_twins_loss(d.features(v1, training=True),
                                         d.features(v2, training=True))
  official = contrastive.ContrastiveAdversarial(weight=1e-2)
  assert official.views == "official"
  got = official.contrastive(images, seeds, salts, d)
  np.testing.assert_allclose(float(got), float(want("official")), rtol=1e-5)
  symmetric = contrastive.ContrastiveAdversarial(weight=1e-2,
                                                 views="symmetric")
  got_symmetric = symmetric.contrastive(images, seeds, salts, d)
  np.testing.assert_allclose(float(got_symmetric), float(want("symmetric")),
                             rtol=1e-5)
  assert abs(float(got) - float(got_symmetric)) > 1e-6

  # The whole D loss runs with either.
  z = tf.random.stateless_normal([4, 8], [0, 5])
  y = tf.constant([0, 1, 0, 1])
  batch = objectives.Batch(
      images=images[:4], labels=y, z_d=z, y_d=y, z_g=z, y_g=y,
      index=tf.zeros([4], tf.int64), global_batch_size=4, num_replicas=1)
  for objective in (official, symmetric):
    loss, parts = objective.d_loss(batch, g, d)
    assert np.isfinite(float(loss))
    assert float(parts["contrastive_real"]) > 0
