"""Layers: spectral norm, conditional batch norm, attention."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt.layers import attention
from tfgt.layers import batch_norm
from tfgt.layers import spectral_norm


def _top_singular_value(matrix):
  return np.linalg.svd(np.asarray(matrix), compute_uv=False)[0]


def test_spectral_norm_dense_converges_to_unit_sigma():
  # Power iteration converges at the rate of the gap between the top two
  # singular values: 30 steps left 1 in 20 random kernels 1-2 % off, 100
  # none (seeds 0-19).
  keras.utils.set_random_seed(0)
  layer = spectral_norm.SNDense(32, init="glorot")
  x = tf.random.normal([4, 48])
  for _ in range(100):
    layer(x, training=True)
  w = spectral_norm.spectral_normalize(layer.kernel, layer.sn_u, 0, False)
  assert _top_singular_value(w) == pytest.approx(1.0, abs=1e-2)
  # The stored kernel is never overwritten by the normalised one.
  assert _top_singular_value(layer.kernel) > 1.2


def test_spectral_norm_conv_normalises_the_reshaped_kernel():
  keras.utils.set_random_seed(0)  # 40 steps left seed 8 of 0-19 off; 100 none.
  layer = spectral_norm.SNConv2D(8, 3, init="glorot")
  x = tf.random.normal([2, 6, 6, 5])
  for _ in range(100):
    y = layer(x, training=True)
  assert y.shape == (2, 6, 6, 8)
  matrix = tf.reshape(layer.kernel, [-1, 8])
  w = spectral_norm.spectral_normalize(matrix, layer.sn_u, 0, False)
  assert _top_singular_value(w) == pytest.approx(1.0, abs=1e-2)


def test_spectral_norm_gradient_flows_through_sigma():
  kernel = tf.Variable(tf.random.normal([6, 4]))
  u = tf.Variable(tf.random.normal([1, 4]))
  for _ in range(50):
    spectral_norm.spectral_normalize(kernel, u, 1, True)
  with tf.GradientTape() as tape:
    w = spectral_norm.spectral_normalize(kernel, u, 0, False)
    loss = tf.reduce_sum(w)
  grad = tape.gradient(loss, kernel)
  # Without the sigma term the gradient of sum(W / sigma) would be 1 / sigma
  # everywhere; the sigma term makes it -sum(W)/sigma^2 * u v^T + 1 / sigma.
  sigma = _top_singular_value(kernel)
  assert not np.allclose(grad.numpy(), 1.0 / sigma, atol=1e-4)
  vecs_u, _, vecs_v = np.linalg.svd(kernel.numpy())
  expected = (1.0 / sigma - kernel.numpy().sum() / sigma**2
              * np.outer(vecs_u[:, 0], vecs_v[0]))
  np.testing.assert_allclose(grad.numpy(), expected, atol=2e-3)


def test_spectral_norm_u_updates_only_in_training():
  layer = spectral_norm.SNDense(3)
  x = tf.random.normal([2, 5])
  layer(x, training=False)
  before = layer.sn_u.numpy().copy()
  layer(x, training=False)
  np.testing.assert_array_equal(before, layer.sn_u.numpy())
  layer(x, training=True)
  assert not np.array_equal(before, layer.sn_u.numpy())


def test_class_conditional_bn_uses_each_class_parameters():
  layer = batch_norm.ClassConditionalBatchNorm(3)
  x = tf.random.normal([6, 4, 4, 2])
  layer(x, tf.one_hot([0, 1, 2, 0, 1, 2], 3), training=False)
  layer.gain_offset.assign([[0.0, 0.0], [1.0, 1.0], [-0.5, 2.0]])
  layer.shift.assign([[0.0, 0.0], [3.0, -3.0], [0.5, 0.5]])
  labels = tf.one_hot([0, 1, 2, 0, 1, 2], 3)
  y = layer(x, labels, training=True).numpy()
  mean = x.numpy().mean(axis=(0, 1, 2))
  var = x.numpy().var(axis=(0, 1, 2))
  xn = (x.numpy() - mean) / np.sqrt(var + layer.epsilon)
  gains = 1.0 + layer.gain_offset.numpy()
  shifts = layer.shift.numpy()
  for i, c in enumerate([0, 1, 2, 0, 1, 2]):
    np.testing.assert_allclose(y[i], xn[i] * gains[c] + shifts[c], atol=1e-4)


def test_class_conditional_bn_rejects_wrong_class_count():
  layer = batch_norm.ClassConditionalBatchNorm(3)
  with pytest.raises(ValueError, match="3 classes"):
    layer(tf.zeros([2, 4, 4, 2]), tf.zeros([2, 5]), training=False)


def test_projected_conditional_bn_depends_on_condition():
  layer = batch_norm.ProjectedConditionalBatchNorm()
  x = tf.random.normal([2, 4, 4, 8])
  cond = tf.random.normal([2, 6])
  a = layer(x, cond, training=False)
  b = layer(x, cond * 2.0, training=False)
  assert a.shape == x.shape
  assert not np.allclose(a.numpy(), b.numpy())


def test_sync_batch_norm_moving_statistics():
  layer = batch_norm.SyncBatchNorm(momentum=0.0)
  x = tf.random.normal([16, 3]) * 2.0 + 5.0
  layer(x, training=True)
  np.testing.assert_allclose(layer.moving_mean.numpy(), x.numpy().mean(0),
                             atol=1e-4)
  np.testing.assert_allclose(layer.moving_variance.numpy(), x.numpy().var(0),
                             rtol=1e-3)


def test_self_attention_shape_and_identity_at_init():
  layer = attention.SelfAttention()
  x = tf.random.normal([2, 8, 8, 16])
  y = layer(x, training=True)
  assert y.shape == x.shape
  np.testing.assert_allclose(y.numpy(), x.numpy())  # gate starts at 0
  layer.gate.assign(1.0)
  assert not np.allclose(layer(x).numpy(), x.numpy())
