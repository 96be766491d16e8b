"""StyleGAN: layers, generator, discriminator and the R1 objective."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt import losses
from tfgt import objectives
from tfgt.errors import UserInputError
from tfgt.layers import style
from tfgt.models import architectures
from tfgt.models import stylegan

TINY_G = dict(dim_z=8, w_dim=8, mapping_layers=2, fmap_base=32, fmap_max=8)
TINY_D = dict(fmap_base=32, fmap_max=8)


def _tiny(num_classes=1, resolution=8, channels=1, **kwargs):
  # Tiny widths that leave channels at the highest resolution.
  base = dict(fmap_base=max(32, resolution))
  g = stylegan.StyleGANGenerator(num_classes, resolution=resolution,
                                 channels=channels,
                                 **{**TINY_G, **base, **kwargs})
  d = stylegan.StyleGANDiscriminator(num_classes, resolution=resolution,
                                     channels=channels, **dict(TINY_D, **base))
  stylegan.build_models(g, d)
  return g, d


def _latents(batch, dim=8, seed=0):
  return tf.constant(np.random.RandomState(seed).randn(batch, dim),
                     tf.float32)


# The smallest, the shipped source's and the Hyper-Modulation paper's.
@pytest.mark.parametrize("resolution", [8, 32, 256])
def test_shapes_and_layer_names_at_every_resolution(resolution):
  g, d = _tiny(resolution=resolution, channels=3)
  z, y = _latents(2), tf.zeros([2], tf.int32)
  images = g((z, y), training=True)
  assert images.shape == (2, resolution, resolution, 3)
  assert d((images, y)).shape == (2,)
  assert d.features(images).shape == (2, 8)
  log2 = int(math.log2(resolution))
  assert g.num_ws == 2 * log2 - 2
  paths = {v.path for v in g.variables}
  assert "generator/G_mapping/Dense1/kernel" in paths
  assert (f"generator/G_synthesis/{resolution}x{resolution}_Conv0_up/conv/"
          "kernel") in paths
  assert "generator/G_synthesis/ToRGB_lod0/kernel" in paths
  assert {"discriminator/FromRGB_lod0/kernel",
          f"discriminator/{resolution}x{resolution}_Conv1_down/kernel",
          "discriminator/4x4_Dense1/kernel"} <= {v.path for v in d.variables}


def test_widths_follow_fmap_base_and_max():
  # NVlabs' nf(stage) = min(fmap_base / 2^stage, fmap_max).
  assert [stylegan.num_features(s, 8192, 512) for s in range(1, 10)] == [
      512, 512, 512, 512, 256, 128, 64, 32, 16]
  g = stylegan.StyleGANGenerator(1, resolution=32,
                                 **{**TINY_G, "fmap_base": 64,
                                    "fmap_max": 16})
  stylegan.build_models(g)
  # 32x32_Conv1 (stage 4): 64 / 16 channels in and out.
  assert tuple(g.synthesis.layer7.conv.kernel.shape) == (3, 3, 4, 4)
  # 8x8_Conv0_up (stage 2): 16 (capped) in, 16 out.
  assert tuple(g.synthesis.layer2.conv.kernel.shape) == (3, 3, 16, 16)


@pytest.mark.parametrize("bad, message", [
    (dict(resolution=48), "power of 2"), (dict(resolution=4), "power of 2"),
    (dict(channels=2), "channels"), (dict(dim_z=1), "dim_z"),
    (dict(style_mixing_prob=1.5), "style_mixing_prob"),
    (dict(noise_mode="random"), "noise_mode"),
    (dict(resolution=256, fmap_base=64), "raise fmap_base to at least 128")])
def test_bad_arguments_are_refused(bad, message):
  with pytest.raises(ValueError, match=message):
    stylegan.StyleGANGenerator(1, **dict(TINY_G, **bad))


def test_equalized_layers_scale_their_weights_at_run_time():
  dense = style.EqualizedDense(3, gain=2.0, lr_multiplier=0.01)
  x = tf.constant(np.random.RandomState(1).randn(4, 5), tf.float32)
  dense(x)
  # Stored as N(0, 1 / lr_multiplier): 100x the effective weight.
  assert 50 < np.std(dense.kernel.numpy()) < 200
  dense.bias.assign([1.0, 2.0, 3.0])
  expected = (x.numpy() @ (dense.kernel.numpy() * 2.0 / math.sqrt(5) * 0.01)
              + 0.01 * np.array([1.0, 2.0, 3.0]))
  np.testing.assert_allclose(dense(x), expected, rtol=1e-5, atol=1e-5)
  # The gradient of the stored kernel carries the same scale: Adam's step
  # on it moves the effective weight lr_multiplier times as fast.
  with tf.GradientTape() as tape:
    out = tf.reduce_sum(dense(x))
  grad = tape.gradient(out, dense.kernel).numpy()
  np.testing.assert_allclose(
      grad, np.tile(x.numpy().sum(0)[:, None], [1, 3]) * 2.0 / math.sqrt(5)
      * 0.01, rtol=1e-5)

  conv = style.EqualizedConv2D(2, 3, gain=1.0, use_bias=True)
  images = tf.constant(np.random.RandomState(2).randn(1, 5, 5, 4), tf.float32)
  conv(images)
  scaled = conv.kernel.numpy() / math.sqrt(3 * 3 * 4)
  np.testing.assert_allclose(
      conv(images), tf.nn.conv2d(images, scaled, 1, "SAME"), rtol=1e-5,
      atol=1e-5)


def test_truncation_zero_gives_the_image_of_the_average_w():
  g, _ = _tiny(truncation_cutoff=None)
  g.w_avg.assign(np.linspace(-1.0, 1.0, 8).astype(np.float32))
  z, y = _latents(3), tf.zeros([3], tf.int32)
  average = tf.tile(g.w_avg[None, None], [3, g.num_ws, 1])
  np.testing.assert_allclose(g.truncated_call((z, y), 0.0),
                             g.synthesize(average, z), atol=1e-6)
  # psi = 1 is no truncation.
  np.testing.assert_allclose(g.truncated_call((z, y), 1.0),
                             g((z, y), training=False), atol=1e-5)
  # Per-image psi, and the cutoff: layers from truncation_cutoff keep w.
  g2, _ = _tiny(truncation_cutoff=2)
  ws = g2._broadcast(g2.map(z, y))
  truncated = g2.truncate(ws, tf.constant([0.0, 0.5, 1.0]))
  np.testing.assert_allclose(truncated[0, :2], tf.tile(g2.w_avg[None], [2, 1]))
  np.testing.assert_allclose(truncated[0, 2:], ws[0, 2:])
  np.testing.assert_allclose(truncated[1, 0],
                             g2.w_avg + 0.5 * (ws[1, 0] - g2.w_avg),
                             atol=1e-6)
  np.testing.assert_allclose(truncated[2], ws[2])
  assert not architectures.truncates_z(g)
  assert architectures.no_truncation(g) == 1.0


def test_style_mixing_switches_w_at_one_crossover_layer():
  g, _ = _tiny(resolution=16, style_mixing_prob=1.0)
  z, y = _latents(16), tf.zeros([16], tf.int32)
  w = g.map(z, y)
  _, z2, uniform = g._random_draws(z)
  w2 = g.map(z2, y)
  mixed = g._mix_styles(g._broadcast(w), w2, uniform).numpy()
  w2 = w2.numpy()
  crossovers = []
  for i in range(16):
    first = np.all(np.isclose(mixed[i], w.numpy()[i]), axis=-1)
    second = np.all(np.isclose(mixed[i], w2[i]), axis=-1)
    cut = int(np.argmin(first))
    assert 1 <= cut < g.num_ws
    assert first[:cut].all() and second[cut:].all()
    crossovers.append(cut)
  assert len(set(crossovers)) > 1  # The crossover layer is drawn per sample.
  # Probability 0 never mixes; inference never mixes.
  g0, _ = _tiny(resolution=16, style_mixing_prob=0.0)
  np.testing.assert_array_equal(g0((z, y), training=True),
                                g0((z, y), training=True))


def test_training_updates_w_avg_and_the_ema_copies_it():
  g, _ = _tiny(w_avg_decay=0.5, style_mixing_prob=0.0)
  z, y = _latents(4), tf.zeros([4], tf.int32)
  before = g.w_avg.numpy().copy()
  g((z, y), training=False)
  np.testing.assert_array_equal(g.w_avg, before)
  g((z, y), training=True)
  batch_mean = g.map(z, y).numpy().mean(0)
  np.testing.assert_allclose(g.w_avg, 0.5 * before + 0.5 * batch_mean,
                             atol=1e-6)
  copied = {v.path for v in g.variables if g.ema_copies(v)}
  assert "generator/dlatent_avg" in copied
  assert "generator/G_synthesis/noise0" in copied
  assert not any("Noise/weight" in p or "kernel" in p for p in copied)


def test_noise_is_a_function_of_z_or_fixed_buffers():
  g, _ = _tiny(resolution=16)
  for layer in g.synthesis.layers_in_order:
    layer.noise_strength.weight.assign(tf.ones_like(
        layer.noise_strength.weight))
  z, y = _latents(4), tf.zeros([4], tf.int32)
  first = g((z, y), training=False)
  # The same z gives the same image, in any batch and any order.
  np.testing.assert_array_equal(first, g((z, y), training=False))
  np.testing.assert_allclose(g((z[::-1], y), training=False), first[::-1],
                             atol=1e-5)
  np.testing.assert_allclose(g((z[:1], y[:1]), training=False), first[:1],
                             atol=1e-5)
  # Another z of the same w-image gets other noise: the strength matters.
  noise_a = g.synthesis_noise(z)
  noise_b = g.synthesis_noise(z + 1e-3)
  assert not np.allclose(noise_a[0], noise_b[0])
  # Fixed buffers: every sample gets the same noise map.
  g_const, _ = _tiny(resolution=16, noise_mode="const")
  buffers = g_const.synthesis_noise(z)
  assert buffers[-1].shape == (1, 16, 16, 1)
  np.testing.assert_array_equal(buffers[0], g_const.synthesis.noise0)


def test_minibatch_stddev_matches_numpy():
  x = np.random.RandomState(3).randn(8, 2, 2, 4).astype(np.float32)
  out = style.MinibatchStddev(group_size=4, num_features=2)(x).numpy()
  assert out.shape == (8, 2, 2, 6)
  np.testing.assert_array_equal(out[..., :4], x)
  groups = x.reshape(4, 2, 2, 2, 2, 2)  # [group, member, H, W, f, C/f]
  std = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 4))  # [2, f]
  for i in range(8):
    np.testing.assert_allclose(out[i, :, :, 4:],
                               np.broadcast_to(std[i % 2], (2, 2, 2)),
                               rtol=1e-5)
  # A batch that 4 does not divide uses the largest group that divides it.
  odd = style.MinibatchStddev(group_size=4)(x[:6]).numpy()
  std3 = np.sqrt(x[:6].reshape(3, 2, 2, 2, 1, 4).var(0) + 1e-8).mean(
      axis=(1, 2, 4))
  np.testing.assert_allclose(odd[0, 0, 0, 4], std3[0, 0], rtol=1e-5)


def test_conditional_head_reads_the_labels_output():
  _, d = _tiny(num_classes=3)
  images = tf.constant(np.random.RandomState(4).randn(4, 8, 8, 1), tf.float32)
  labels = tf.constant([2, 0, 1, 2])
  outputs = d.dense1(d.features(images)).numpy()
  np.testing.assert_allclose(d((images, labels)),
                             outputs[np.arange(4), labels.numpy()], rtol=1e-6)
  weights = tf.constant([[0.5, 0.5, 0.0]] * 4)
  np.testing.assert_allclose(d((images, weights)),
                             0.5 * (outputs[:, 0] + outputs[:, 1]), rtol=1e-5)


def test_conditional_generator_depends_on_the_label():
  g, _ = _tiny(num_classes=3)
  z = _latents(2)
  a = g((z, tf.constant([0, 0])), training=False)
  b = g((z, tf.constant([1, 1])), training=False)
  assert not np.allclose(a, b)


def test_r1_equals_the_input_gradient_norm_by_finite_differences():
  # Seeded: float32 central differences err by up to 0.8 % on some random
  # initialisations (a small gradient against the sums' round-off), 0.1 %
  # on this one.
  keras.utils.set_random_seed(2)
  _, d = _tiny()
  images = np.random.RandomState(5).randn(2, 8, 8, 1)
  labels = tf.zeros([2], tf.int32)
  total = tf.function(lambda x: tf.reduce_sum(d((x, labels))))
  penalty = losses.r1_penalty(lambda x: d((x, labels)),
                              tf.constant(images, tf.float32)).numpy()
  eps = 1e-3
  numeric = np.zeros_like(images)
  for index in np.ndindex(images.shape):
    up, down = images.copy(), images.copy()
    up[index] += eps
    down[index] -= eps
    numeric[index] = (float(total(tf.constant(up, tf.float32)))
                      - float(total(tf.constant(down, tf.float32)))) / (2 * eps)
  np.testing.assert_allclose(penalty, (numeric ** 2).sum(axis=(1, 2, 3)),
                             rtol=1e-2)


def _batch(index, images, z):
  b = images.shape[0]
  labels = tf.zeros([b], tf.int32)
  return objectives.Batch(images=images, labels=labels, z_d=z, y_d=labels,
                          z_g=z, y_g=labels, index=tf.fill([b], index),
                          global_batch_size=b, num_replicas=1)


def test_lazy_r1_weighs_every_kth_batch_k_times():
  g, d = _tiny(style_mixing_prob=0.0)
  images = tf.constant(np.random.RandomState(6).randn(4, 8, 8, 1), tf.float32)
  z = _latents(4)
  every = objectives.Adversarial(r1_gamma=10.0)
  lazy = objectives.Adversarial(r1_gamma=10.0, r1_every=4)
  r1 = every.d_loss(_batch(0, images, z), g, d)[1]["r1"]
  assert float(r1) > 0
  for index in range(8):
    parts = lazy.d_loss(_batch(index, images, z), g, d)[1]
    expected = 4 * float(r1) if (index + 1) % 4 == 0 else 0.0
    np.testing.assert_allclose(float(parts["r1"]), expected, rtol=1e-5)
  with pytest.raises(UserInputError, match="r1_every must be an int >= 1"):
    objectives.Adversarial(r1_gamma=1.0, r1_every=0)


def test_registered_and_cloned():
  arch = architectures.get("stylegan")
  assert arch.generator is stylegan.StyleGANGenerator
  g, d = _tiny(num_classes=2)
  g2, d2 = g.clone(num_classes=5), d.clone()
  assert g2.num_classes == 5 and g2.ctor_kwargs == g.ctor_kwargs
  assert d2.num_classes == 2 and d2.ctor_kwargs == d.ctor_kwargs


def test_an_unconditional_export_needs_no_labels():
  from tfgt import export as export_lib  # pylint: disable=g-import-not-at-top
  from tfgt.data import pipeline  # pylint: disable=g-import-not-at-top
  g, _ = _tiny()
  table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
      tf.constant([0], tf.int64), tf.constant(["all"])), "")
  functions = export_lib.make_serving_functions(g, table)
  assert export_lib.signatures_of(g) == tuple(functions)
  assert "unconditional" in functions
  seeds, psi = tf.constant([3, 4], tf.int64), tf.constant(0.7)
  images = functions["unconditional"][0](seeds, psi)["images"]
  labelled = functions["serving_default"][0](tf.zeros([2], tf.int32), seeds,
                                             psi)["images"]
  np.testing.assert_array_equal(images, labelled)
  # psi = 1 draws the generator's own images of the untruncated z.
  z = _latents(2)
  served = functions["from_z"][0](tf.zeros([2], tf.int32), z,
                                  tf.constant(1.0))["images"]
  own = pipeline.to_uint8(g((z, tf.zeros([2], tf.int32)), training=False))
  assert np.abs(served.numpy().astype(int) - own.numpy().astype(int)).max() <= 1
  g2, _ = _tiny(num_classes=2)
  assert "unconditional" not in export_lib.signatures_of(g2)


def test_unconditional_discriminator_ignores_labels_and_mbstd_can_be_off():
  _, d = _tiny()
  images = tf.constant(np.random.RandomState(7).randn(3, 8, 8, 1), tf.float32)
  np.testing.assert_array_equal(d((images, tf.constant([0, 1, 5]))),
                                d((images, tf.zeros([3], tf.int32))))
  off = stylegan.StyleGANDiscriminator(1, resolution=8, mbstd_group_size=1,
                                       **TINY_D)
  off((images, tf.zeros([3], tf.int32)))
  assert off.minibatch_stddev is None
  assert off.conv.kernel.shape[2] == 8  # No statistic channel appended.


def test_lazy_r1_runs_on_two_replicas_with_a_stateful_discriminator():
  # BigGAN's D updates spectral-norm state in training mode, which replicas
  # could not synchronise inside the lazy penalty's conditional.
  from tfgt.models import biggan  # pylint: disable=g-import-not-at-top
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
  strategy = tf.distribute.MirroredStrategy(
      cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  with strategy.scope():
    g = biggan.BigGANGenerator(2, ch=4, dim_z=8)
    d = biggan.BigGANDiscriminator(2, ch=4)
    biggan.build_models(g, d)
  lazy = objectives.Adversarial(r1_gamma=1.0, r1_every=2)
  images = tf.constant(np.random.RandomState(8).randn(4, 32, 32, 1),
                       tf.float32)

  @tf.function
  def step(index):
    def replica(images):
      b = tf.shape(images)[0]
      labels = tf.zeros([b], tf.int32)
      z = tf.random.stateless_normal([b, 8], seed=[1, 2])
      batch = objectives.Batch(images=images, labels=labels, z_d=z,
                               y_d=labels, z_g=z, y_g=labels,
                               index=tf.fill([b], index),
                               global_batch_size=4, num_replicas=2)
      with tf.GradientTape() as tape:
        loss, parts = lazy.d_loss(batch, g, d)
      grads = tape.gradient(loss, d.trainable_variables)
      return parts["r1"], tf.add_n([tf.reduce_sum(x) for x in grads])
    r1, _ = strategy.run(replica, args=(images[:2],))
    return strategy.reduce("SUM", r1, axis=None)

  assert float(step(tf.constant(0, tf.int64))) == 0.0
  assert float(step(tf.constant(1, tf.int64))) > 0.0


def test_lazy_r1_and_the_contrastive_d_are_refused_with_xla():
  from tfgt import steps as steps_lib  # pylint: disable=g-import-not-at-top
  from tfgt.methods import base  # pylint: disable=g-import-not-at-top
  lazy = objectives.Adversarial(r1_gamma=10.0, r1_every=4)
  assert not lazy.supports_xla
  assert not objectives.Regularized(lazy).supports_xla
  assert objectives.Adversarial(r1_gamma=10.0).supports_xla
  g, d = _tiny()
  setup = base.GANSetup(g, d, g.trainable_variables, d.trainable_variables,
                        ["all"], objective=lazy)
  with pytest.raises(UserInputError, match="r1_every = 1"):
    steps_lib.TrainStep(tf.distribute.get_strategy(), setup, {}, None, None,
                        d_steps=1, global_batch_size=4, use_xla=True)
  # The contrastive D's views crop with an op XLA has no kernel for.
  from tfgt.methods import contrastive  # pylint: disable=g-import-not-at-top
  assert not contrastive.ContrastiveAdversarial(weight=1e-3).supports_xla
  assert contrastive.ContrastiveAdversarial(weight=0.0).supports_xla
  setup = base.GANSetup(g, d, g.trainable_variables, d.trainable_variables,
                        ["all"], objective=contrastive.ContrastiveAdversarial())
  with pytest.raises(UserInputError, match="ContrastiveAdversarial.weight = 0"):
    steps_lib.TrainStep(tf.distribute.get_strategy(), setup, {}, None, None,
                        d_steps=1, global_batch_size=4, use_xla=True)


def test_the_shipped_stylegan_loads_and_draws():
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  g, d, spec = bundle.load("pretrained:fashion_mnist_stylegan",
                           with_discriminator=True)
  assert isinstance(g, stylegan.StyleGANGenerator)
  assert spec["class_names"] == ["fashion-mnist-0-7"]
  z = _latents(4, dim=g.dim_z)
  images = g((z, tf.zeros([4], tf.int32)), training=False)
  assert images.shape == (4, 32, 32, 1)
  assert np.all(np.isfinite(images)) and float(tf.math.reduce_std(images)) > 0.1
  assert np.abs(g.w_avg.numpy()).sum() > 0  # Trained: w_avg moved.
  assert np.all(np.isfinite(d((images, tf.zeros([4], tf.int32)))))


def test_instance_norm_epsilon_is_the_generators():
  # Small activations (kernels and noise scaled down) make the epsilon of
  # the instance norm visible: 1e-5 (PyTorch's) is not 1e-8 (NVlabs').
  a, _ = _tiny()
  b, _ = _tiny(instance_norm_epsilon=1e-5)
  assert b.ctor_kwargs["instance_norm_epsilon"] == 1e-5
  for va, vb in zip(a.variables, b.variables):
    value = va.numpy()
    if "conv/kernel" in va.path or va.path.endswith("const"):
      value = value * 1e-3
    va.assign(value)
    vb.assign(value)
  z = _latents(2)
  y = tf.zeros([2], tf.int32)
  assert not np.allclose(a((z, y), training=False),
                         b((z, y), training=False), atol=1e-3)
  with pytest.raises(ValueError, match="instance_norm_epsilon must be > 0"):
    stylegan.StyleGANGenerator(1, instance_norm_epsilon=0.0)
