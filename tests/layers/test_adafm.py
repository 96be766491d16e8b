"""AdaFM kernel modulation and its convolution formulations."""

import numpy as np
import pytest
import tensorflow as tf

from tfgt.layers import adafm


def _numpy_adafm(kernel, gamma, beta):
  """Eq. 4 written out: gamma * (W - mu) / sigma + beta per class."""
  mu = kernel.mean(axis=(0, 1))
  sigma = kernel.std(axis=(0, 1), ddof=1)
  return gamma[:, None, None] * ((kernel - mu) / sigma)[None] + \
      beta[:, None, None]


@pytest.fixture(name="case")
def fixture_case():
  rng = np.random.RandomState(0)
  kernel = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
  gamma = rng.standard_normal((3, 4, 5)).astype(np.float32)
  beta = rng.standard_normal((3, 4, 5)).astype(np.float32)
  x = rng.standard_normal((6, 8, 8, 4)).astype(np.float32)
  labels = np.array([2, 0, 2, 1, 0, 2], np.int32)
  return kernel, gamma, beta, x, labels


def test_modulate_kernel_is_eq4(case):
  kernel, gamma, beta, _, _ = case
  got = adafm.modulate_kernel(tf.constant(kernel), gamma, beta).numpy()
  np.testing.assert_allclose(got, _numpy_adafm(kernel, gamma, beta),
                             rtol=1e-5, atol=1e-5)
  standard = adafm.standardize_kernel(tf.constant(kernel)).numpy()
  np.testing.assert_allclose(standard.mean(axis=(0, 1)), 0, atol=1e-6)
  np.testing.assert_allclose(standard.std(axis=(0, 1), ddof=1), 1, rtol=1e-5)


def test_gan_memory_start_is_the_source_kernel_bit_for_bit(case):
  kernel = tf.constant(case[0])
  mu, sigma = adafm.kernel_statistics(kernel)
  got = adafm.modulate_kernel(kernel, sigma[None], mu[None])
  assert np.array_equal(got.numpy()[0], case[0])


def test_one_tap_kernel_refused():
  with pytest.raises(ValueError, match="one"):
    adafm.kernel_statistics(tf.zeros([1, 1, 2, 2]))
  with pytest.raises(ValueError, match="formulation"):
    adafm.modulated_conv2d(tf.zeros([1, 4, 4, 2]), tf.zeros([1, 3, 3, 2, 2]),
                           tf.zeros([1], tf.int32), "grouped")


def test_standardize_bias():
  got = adafm.standardize_bias(tf.constant([1.0, 2.0, 3.0, 6.0])).numpy()
  np.testing.assert_allclose(got.mean(), 0, atol=1e-6)
  np.testing.assert_allclose(got.std(ddof=1), 1, rtol=1e-5)


@pytest.mark.parametrize("formulation",
                         ["partition", "stacked", "patches", "auto"])
def test_formulations_match_the_per_sample_reference(case, formulation):
  kernel, gamma, beta, x, labels = case
  x = tf.constant(x)
  gamma, beta = tf.Variable(gamma), tf.Variable(beta)

  def run(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      kernels = adafm.modulate_kernel(tf.constant(kernel), gamma, beta)
      y = fn(kernels)
      loss = tf.reduce_sum(tf.sin(y))
    return [y] + tape.gradient(loss, [x, gamma, beta])

  def reference(kernels):
    return tf.concat([tf.nn.conv2d(x[i:i + 1], kernels[labels[i]], 1, "SAME")
                      for i in range(len(labels))], axis=0)

  want = run(reference)
  got = run(lambda k: adafm.modulated_conv2d(x, k, labels, formulation))
  for g, w in zip(got, want):
    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)
  # Per-sample kernels (class interpolation) through the same entry point.
  per_sample = run(lambda k: adafm.modulated_conv2d(
      x, tf.gather(k, labels)))
  for g, w in zip(per_sample, want):
    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)


def test_partition_with_an_absent_class(case):
  kernel, gamma, beta, x, _ = case
  kernels = adafm.modulate_kernel(tf.constant(kernel), gamma, beta)
  labels = np.zeros([6], np.int32)
  got = adafm.conv_partition(tf.constant(x), kernels, labels)
  want = tf.nn.conv2d(x, kernels[0], 1, "SAME")
  np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)

  # In a graph, with other in and out channels, and its gradient (an empty
  # part's convolution has the input's channels there).
  wide = tf.random.stateless_normal([2, 3, 3, 4, 7], [0, 3])

  @tf.function
  def graph(x, kernels):
    with tf.GradientTape() as tape:
      tape.watch(kernels)
      y = adafm.conv_partition(x, kernels, tf.constant(labels))
      total = tf.reduce_sum(y)
    return y, tape.gradient(total, kernels)
  x4 = tf.random.stateless_normal([6, 5, 5, 4], [0, 4])
  y, grad = graph(x4, wide)
  np.testing.assert_allclose(
      y.numpy(), tf.nn.conv2d(x4, wide[0], 1, "SAME").numpy(), rtol=1e-5,
      atol=1e-5)
  assert not grad.numpy()[1].any() and grad.numpy()[0].any()


def _tiny_stylegan():
  from tfgt.models import stylegan  # pylint: disable=g-import-not-at-top
  generator = stylegan.StyleGANGenerator(
      1, resolution=8, channels=1, dim_z=8, w_dim=8, mapping_layers=1,
      fmap_base=32, fmap_max=8, noise_mode="z")
  generator.build()
  return generator, stylegan


def test_synthesis_modulation_hook_with_gan_memory_start_is_the_source():
  """AdaFM through the StyleGAN synthesis hook: every conv modulated with
  gamma = sigma, beta = mu and a zero bias shift gives the source's images
  bit for bit; another gamma changes them."""
  generator, stylegan = _tiny_stylegan()
  z = tf.random.stateless_normal([4, 8], seed=[1, 2])
  labels = tf.zeros([4], tf.int32)
  ws = tf.tile(generator.map(z, labels)[:, None], [1, generator.num_ws, 1])

  def modulation(scale):
    def conv(layer, x):
      mu, sigma = adafm.kernel_statistics(layer.kernel)
      kernels = adafm.modulate_kernel(layer.kernel, scale * sigma[None],
                                      mu[None])
      return adafm.modulated_conv2d(x, kernels * layer.runtime_scale, labels)
    return [stylegan.Modulation(
        conv=conv, bias_shift=tf.zeros([4, layer.style_mod.channels]))
            for layer in generator.synthesis.layers_in_order]

  source = generator.synthesize(ws, z)
  same = generator.synthesize(ws, z, modulation=modulation(1.0))
  assert np.array_equal(source.numpy(), same.numpy())
  other = generator.synthesize(ws, z, modulation=modulation(0.5))
  assert not np.allclose(source.numpy(), other.numpy())


def test_class_network_and_modulator():
  from tfgt.layers import hypernetwork  # pylint: disable=g-import-not-at-top
  net = hypernetwork.ClassNetwork(3, width=6, depth=2)
  weights = tf.constant([[1.0, 0, 0], [0, 0, 1.0], [0.5, 0, 0.5]])
  v = net(weights)
  assert v.shape == (3, 6)
  # Depth 0 (configuration A): v is the mix of the class embeddings.
  flat = hypernetwork.ClassNetwork(3, width=6, depth=0)
  # (the official code's equalised embedding: times sqrt(2 / width)).
  np.testing.assert_allclose(
      flat(weights).numpy()[2],
      flat.embedding.numpy()[[0, 2]].mean(axis=0) * np.sqrt(2 / 6),
      rtol=1e-6)
  modulator = hypernetwork.Modulator(4, 5)
  gamma, beta, shift = modulator(v)
  assert gamma.shape == beta.shape == (3, 4, 5) and shift.shape == (3, 5)
  raw = modulator.g(v).numpy().reshape(3, 4, 5, 2)  # Interleaved pairs.
  np.testing.assert_allclose(gamma.numpy(), raw[..., 0], rtol=1e-6)
  np.testing.assert_allclose(beta.numpy(), raw[..., 1], rtol=1e-6)
  hidden = hypernetwork.Modulator(4, 5, hidden=7)
  assert hidden(v)[0].shape == (3, 4, 5)
  with pytest.raises(ValueError, match="depth"):
    hypernetwork.ClassNetwork(3, depth=-1)
