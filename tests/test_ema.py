"""tfgt.ema: the EMA generator's update, its warm-up, frozen weights kept
bit for bit, and the variables it copies instead of averaging."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt import ema as ema_lib


class _Net(keras.Model):
  """Two weights: one trained, one frozen; `ema_copies` names a third."""

  def __init__(self):
    super().__init__()
    self.w = self.add_weight(shape=(3,), initializer="zeros", name="w")
    self.frozen = self.add_weight(shape=(3,), initializer="ones",
                                  name="frozen", trainable=False)
    self.state = self.add_weight(shape=(2,), initializer="zeros",
                                 name="state", trainable=False)

  def ema_copies(self, variable):
    return variable is self.state

  def call(self, x):
    return x * self.w + self.frozen


def test_update_is_the_moving_average_after_the_warm_up():
  model, average = _Net(), _Net()
  model.w.assign([1.0, 2.0, 3.0])
  model.frozen.assign([0.1, 0.2, 0.3])
  ema = ema_lib.ExponentialMovingAverage(average, model, decay=0.9, start=2)
  # It starts as the model.
  np.testing.assert_array_equal(average.w.numpy(), [1.0, 2.0, 3.0])
  model.w.assign([2.0, 4.0, 6.0])
  model.state.assign([5.0, 6.0])
  ema.update(tf.constant(1, tf.int64))  # Before `start`: a copy.
  np.testing.assert_array_equal(average.w.numpy(), [2.0, 4.0, 6.0])
  model.w.assign([12.0, 14.0, 16.0])
  ema.update(tf.constant(2, tf.int64))  # a + 0.1 (v - a).
  np.testing.assert_allclose(average.w.numpy(), [3.0, 5.0, 7.0], rtol=1e-6)
  # A weight that does not change stays bit for bit; copied state follows.
  np.testing.assert_array_equal(average.frozen.numpy(),
                                np.float32([0.1, 0.2, 0.3]))
  np.testing.assert_array_equal(average.state.numpy(), [5.0, 6.0])
  model.state.assign([7.0, 8.0])
  ema.update(tf.constant(3, tf.int64))
  np.testing.assert_array_equal(average.state.numpy(), [7.0, 8.0])


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_a_decay_outside_zero_one_is_refused(decay):
  with pytest.raises(ValueError, match="decay must be in"):
    ema_lib.ExponentialMovingAverage(_Net(), _Net(), decay=decay)
