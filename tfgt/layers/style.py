"""The layers of StyleGAN (Karras et al., CVPR 2019), channels last.

Equalised learning rate (Karras et al. 2018, section 4.1): a weight is stored
as N(0, 1 / lr_multiplier) and multiplied at run time by
`gain / sqrt(fan_in) * lr_multiplier`, so that Adam's per-weight step is the
same for every layer and a layer with `lr_multiplier` 0.01 (the mapping
network) learns 100x slower with one optimizer. Biases are stored divided by
`lr_multiplier` too.

Shapes: images and feature maps are float32 [B, H, W, C]; w is [B, w_dim].
Under a mixed precision policy (`tfgt.precision`) they are in the compute
dtype; pixel norm, instance norm and the minibatch standard deviation take
their statistics in float32, and a convolution's kernel is read in float32
(AdaFM standardises it) and cast for the convolution.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfgt import precision
from tfgt.layers import building

LEAKY_RELU_SLOPE = 0.2
# He gain for leaky ReLU layers (sqrt(2)), as NVlabs' StyleGAN uses.
RELU_GAIN = math.sqrt(2.0)


def leaky_relu(x: tf.Tensor) -> tf.Tensor:
  """Leaky ReLU with StyleGAN's slope 0.2."""
  return tf.nn.leaky_relu(x, LEAKY_RELU_SLOPE)


def pixel_norm(x: tf.Tensor, epsilon: float = 1e-8) -> tf.Tensor:
  """x / sqrt(mean(x^2) + eps) over the last axis (Karras et al. 2018, 4.2),
  computed in float32 and returned in x's dtype."""
  inputs, x = x, precision.float32(x)
  return precision.like(x * tf.math.rsqrt(
      tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + epsilon), inputs)


def instance_norm(x: tf.Tensor, epsilon: float = 1e-8) -> tf.Tensor:
  """Per-sample, per-channel normalisation over H and W of [B, H, W, C],
  computed in float32 and returned in x's dtype."""
  inputs, x = x, precision.float32(x)
  x = x - tf.reduce_mean(x, axis=[1, 2], keepdims=True)
  x *= tf.math.rsqrt(
      tf.reduce_mean(tf.square(x), axis=[1, 2], keepdims=True) + epsilon)
  return precision.like(x, inputs)


def upsample_nearest(x: tf.Tensor) -> tf.Tensor:
  """[B, H, W, C] -> [B, 2H, 2W, C], every pixel repeated 2x2."""
  return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def downsample_box(x: tf.Tensor) -> tf.Tensor:
  """[B, H, W, C] -> [B, H/2, W/2, C], the mean of each 2x2 block."""
  return tf.nn.avg_pool2d(x, 2, 2, "VALID")


def blur(x: tf.Tensor) -> tf.Tensor:
  """The [1, 2, 1] x [1, 2, 1] / 16 low-pass filter of StyleGAN, per channel.

  [B, H, W, C] -> same shape (zero padding at the borders).
  """
  k = np.array([1.0, 2.0, 1.0], np.float32)
  k = np.outer(k, k)
  k /= k.sum()
  channels = x.shape[-1]
  kernel = tf.constant(np.tile(k[:, :, None, None], [1, 1, channels, 1]),
                       dtype=x.dtype)
  return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")


class EqualizedDense(keras.layers.Layer):
  """Dense layer with an equalised learning rate.

  [B, in] -> [B, units]: x @ (kernel * gain / sqrt(in) * lr_multiplier)
  + bias * lr_multiplier.

  Args:
    units: output width.
    gain: the He gain (sqrt(2) before a leaky ReLU, 1 before none).
    lr_multiplier: > 0; scales this layer's effective learning rate.
    use_bias: whether a bias is added.

  Raises:
    ValueError: lr_multiplier <= 0.
  """

  def __init__(self, units: int, gain: float = RELU_GAIN,
               lr_multiplier: float = 1.0, use_bias: bool = True, **kwargs):
    super().__init__(**kwargs)
    if not lr_multiplier > 0:
      raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}.")
    self.units = units
    self.gain = gain
    self.lr_multiplier = lr_multiplier
    self.use_bias = use_bias

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    self.kernel = self.add_weight(
        name="kernel", shape=(fan_in, self.units),
        initializer=keras.initializers.RandomNormal(
            stddev=1.0 / self.lr_multiplier))
    self.runtime_scale = self.gain / math.sqrt(fan_in) * self.lr_multiplier
    self.bias = (self.add_weight(name="bias", shape=(self.units,),
                                 initializer="zeros")
                 if self.use_bias else None)

  def call(self, x):
    y = tf.matmul(x, self.kernel * self.runtime_scale)
    if self.bias is not None:
      y += self.bias * self.lr_multiplier
    return y


class EqualizedConv2D(keras.layers.Layer):
  """Square convolution (stride 1, SAME padding) with an equalised learning
  rate.

  [B, H, W, in] -> [B, H, W, filters]. The synthesis network's convolutions
  have no bias of their own (StyleGAN adds it after the noise, `Bias`); the
  discriminator's add it here.

  Args:
    filters: output channels.
    kernel_size: odd, the kernel's side.
    gain: the He gain.
    use_bias: whether a bias [filters] (initialised to 0) is added.

  Raises:
    ValueError: an even kernel_size.
  """

  def __init__(self, filters: int, kernel_size: int = 3,
               gain: float = RELU_GAIN, use_bias: bool = False, **kwargs):
    super().__init__(**kwargs)
    if kernel_size < 1 or kernel_size % 2 == 0:
      raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
    self.filters = filters
    self.kernel_size = kernel_size
    self.gain = gain
    self.use_bias = use_bias

  def build(self, input_shape):
    fan_in = int(input_shape[-1]) * self.kernel_size ** 2
    # Read as float32 inside layers (no autocast): AdaFM standardises it;
    # `call` casts it to the compute dtype.
    self.kernel = self.add_weight(
        name="kernel",
        shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]),
               self.filters),
        initializer=keras.initializers.RandomNormal(stddev=1.0),
        autocast=False)
    self.runtime_scale = self.gain / math.sqrt(fan_in)
    self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                 initializer="zeros")
                 if self.use_bias else None)

  def scaled_kernel(self) -> tf.Tensor:
    """The kernel as the convolution uses it, float32 [k, k, in, filters]."""
    return self.kernel * self.runtime_scale

  def call(self, x):
    y = tf.nn.conv2d(x, precision.like(self.scaled_kernel(), x), 1, "SAME")
    return y if self.bias is None else y + self.bias


class Bias(keras.layers.Layer):
  """A per-channel bias [C] added to [B, ..., C], stored / lr_multiplier."""

  def __init__(self, lr_multiplier: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.lr_multiplier = lr_multiplier

  def build(self, input_shape):
    # Float32 under every precision (no autocast): Hyper-Modulation
    # standardises it; `call` casts it to the compute dtype.
    self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),),
                                initializer="zeros", autocast=False)

  def call(self, x):
    return x + precision.like(self.bias * self.lr_multiplier, x)


class NoiseStrength(keras.layers.Layer):
  """Adds per-pixel noise [B, H, W, 1] scaled by a learned per-channel
  strength (initialised to 0): x + strength * noise, x [B, H, W, C]."""

  def build(self, input_shape):
    self.weight = self.add_weight(name="weight", shape=(int(input_shape[-1]),),
                                  initializer="zeros")

  def call(self, x, noise):
    return x + noise * self.weight


class StyleModulation(building.BuildsOnCall, keras.layers.Layer):
  """AdaIN's style: x * (1 + y_s) + y_b with (y_s, y_b) an affine map of w.

  x [B, H, W, C], w [B, w_dim] -> [B, H, W, C]. The affine map is an
  equalised dense layer of gain 1 to 2C values (scales first, then biases),
  as in StyleGAN's `style_mod`.
  """

  def __init__(self, channels: int, **kwargs):
    super().__init__(**kwargs)
    self.channels = channels
    self.dense = EqualizedDense(2 * channels, gain=1.0, name="dense")

  def call(self, x, w):
    style = self.dense(w)
    scale = style[:, None, None, :self.channels]
    shift = style[:, None, None, self.channels:]
    return x * (scale + 1.0) + shift


def _group_size(batch: tf.Tensor, max_group: int) -> tf.Tensor:
  """The largest g <= max_group that divides the batch (1 at worst)."""
  size = tf.constant(1)
  for g in range(2, max_group + 1):
    size = tf.where(tf.equal(batch % g, 0), g, size)
  return size


class MinibatchStddev(building.BuildsOnCall, keras.layers.Layer):
  """Appends the mean standard deviation over a group of samples as extra
  feature maps (Karras et al. 2018, section 3; StyleGAN's D at 4x4).

  [B, H, W, C] -> [B, H, W, C + num_features]. Samples i and j share a group
  when i = j mod (B / g). The group size g is the largest number up to
  `group_size` that divides the (per-replica) batch, so any batch works
  (NVlabs uses min(group_size, B) and needs a batch it divides); a batch of
  one gets sqrt(1e-8) = 1e-4. Groups are formed within a replica's batch.

  Args:
    group_size: the largest group (4 in StyleGAN); None: the whole batch is
      one group (rosinality's port of StyleGAN).
    num_features: how many channel groups get their own statistic; C must
      divide by it.
  """

  def __init__(self, group_size: int | None = 4, num_features: int = 1,
               **kwargs):
    super().__init__(**kwargs)
    self.group_size = group_size
    self.num_features = num_features

  def call(self, x):
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    c = x.shape[-1]
    f = self.num_features
    if c % f:
      raise ValueError(f"{c} channels do not divide into {f} groups.")
    g = b if self.group_size is None else _group_size(b, self.group_size)
    y = tf.reshape(precision.float32(x), [g, -1, h, w, f, c // f])
    y -= tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
    y = tf.reduce_mean(y, axis=[1, 2, 4])  # [B / g, f]
    y = tf.tile(y[:, None, None, :], [g, h, w, 1])
    return tf.concat([x, precision.like(y, x)], axis=-1)
