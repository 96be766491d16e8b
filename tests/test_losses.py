"""GAN losses."""

import numpy as np
import pytest
import tensorflow as tf

from tfgt import losses


def test_hinge_and_non_saturating_values():
  real = tf.constant([2.0, 0.5])
  fake = tf.constant([-2.0, 0.5])
  np.testing.assert_allclose(losses.discriminator_loss(real, fake),
                             [0.0, 2.0])
  np.testing.assert_allclose(losses.generator_loss(fake), [2.0, -0.5])
  ns = losses.discriminator_loss(real, fake, name="non_saturating")
  np.testing.assert_allclose(
      ns, np.log1p(np.exp(-real.numpy())) + np.log1p(np.exp(fake.numpy())),
      rtol=1e-6)
  with pytest.raises(ValueError, match="Unknown GAN loss"):
    losses.generator_loss(fake, name="wasserstein")


def test_r1_penalty_is_the_squared_input_gradient():
  w = tf.random.normal([1, 4, 4, 2])
  images = tf.random.normal([3, 4, 4, 2])
  penalty = losses.r1_penalty(
      lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]) ** 2 / 2.0, images)
  # d/dx (w.x)^2 / 2 = (w.x) w
  dots = tf.reduce_sum(images * w, axis=[1, 2, 3]).numpy()
  expected = dots**2 * float(tf.reduce_sum(w * w))
  np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-4)
