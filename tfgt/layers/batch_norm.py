"""Batch normalisation with cross-replica statistics, and its conditional forms.

All layers here normalise NHWC (or [B, C]) inputs over every axis but the last.
In training mode the batch statistics are summed over all replicas of the
current `tf.distribute` strategy, so that a global batch split over devices is
normalised exactly as it would be on one device (BigGAN's synchronised BN).

The conditional layers take a second input, `cond`:
  * `ClassConditionalBatchNorm`: class weights [B, num_classes] (one-hot rows
    for labels, soft rows to draw between classes). Each class owns a gain
    offset and a shift per channel: gain = 1 + cond @ gain_offset,
    shift = cond @ shift (BigGAN's CIFAR generator).
  * `ProjectedConditionalBatchNorm`: a conditioning vector [B, cond_dim] (shared
    class embedding, optionally concatenated with a chunk of z), linearly
    projected per layer: gain = 1 + cond @ W_gain, shift = cond @ W_shift
    (BigGAN's ImageNet generator).

Under a mixed precision policy (`tfgt.precision`) the statistics, their sums
across replicas, the moving averages and the normalisation are float32; the
normalised values are cast back to the compute dtype before the gain and
shift.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgt import precision
from tfgt.layers import spectral_norm


def _replica_context():
  """The replica context, or None when called in cross-replica context."""
  if not tf.distribute.has_strategy():
    return None
  return tf.distribute.get_replica_context()


def batch_moments(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Mean and variance of `x` over all axes but the last, across replicas.

  Args:
    x: float tensor [B, ..., C] (of any float dtype: the sums are float32).

  Returns:
    (mean, variance), each float32 of shape [C].
  """
  x = precision.float32(x)
  axes = list(range(len(x.shape) - 1))
  count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
  local_sum = tf.reduce_sum(x, axis=axes)
  local_sq = tf.reduce_sum(tf.square(x), axis=axes)
  ctx = _replica_context()
  if ctx is not None and ctx.num_replicas_in_sync > 1:
    local_sum, local_sq, count = ctx.all_reduce(
        tf.distribute.ReduceOp.SUM, [local_sum, local_sq, count])
  mean = local_sum / count
  variance = tf.maximum(local_sq / count - tf.square(mean), 0.0)
  return mean, variance


class SyncBatchNorm(keras.layers.Layer):
  """Batch norm with cross-replica statistics and an optional affine part.

  Input [B, ..., C] -> same shape. In inference mode the moving averages are
  used. With `affine=True` a learned per-channel gain and shift follow.
  """

  def __init__(self, momentum: float = 0.9, epsilon: float = 1e-4,
               affine: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.momentum = momentum
    self.epsilon = epsilon
    self.affine = affine

  def _build_stats(self, channels: int) -> None:
    self.moving_mean = self.add_weight(
        name="moving_mean", shape=(channels,), initializer="zeros",
        trainable=False, aggregation="mean", autocast=False)
    self.moving_variance = self.add_weight(
        name="moving_variance", shape=(channels,), initializer="ones",
        trainable=False, aggregation="mean", autocast=False)

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self._build_stats(channels)
    if self.affine:
      self.gamma = self.add_weight(name="gamma", shape=(channels,),
                                   initializer="ones")
      self.beta = self.add_weight(name="beta", shape=(channels,),
                                  initializer="zeros")

  def standardize(self, x: tf.Tensor, training) -> tf.Tensor:
    """(x - mean) / sqrt(var + eps) with batch or moving statistics,
    computed in float32 and returned in x's dtype."""
    inputs = x
    x = precision.float32(x)
    if training:
      mean, variance = batch_moments(x)
      m = self.momentum
      self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * mean)
      self.moving_variance.assign(
          m * self.moving_variance + (1.0 - m) * variance)
    else:
      mean = tf.convert_to_tensor(self.moving_mean)
      variance = tf.convert_to_tensor(self.moving_variance)
    return precision.like((x - mean) * tf.math.rsqrt(variance + self.epsilon),
                          inputs)

  def call(self, inputs, training=None):
    x = self.standardize(inputs, training)
    if self.affine:
      x = x * self.gamma + self.beta
    return x


def _broadcast(per_example: tf.Tensor, rank: int) -> tf.Tensor:
  """Reshapes [B, C] to [B, 1, ..., 1, C] for an input of the given rank."""
  shape = tf.concat([tf.shape(per_example)[:1], tf.ones([rank - 2], tf.int32),
                     tf.shape(per_example)[1:]], axis=0)
  return tf.reshape(per_example, shape)


class ClassConditionalBatchNorm(SyncBatchNorm):
  """Batch norm whose gain and shift are looked up per class.

  call(x, class_weights): x [B, ..., C], class_weights [B, num_classes] ->
  same shape as x. Variables: `gain_offset` and `shift`, both
  [num_classes, C], zero at init (every class starts as plain BN).
  """

  def __init__(self, num_classes: int, momentum: float = 0.9,
               epsilon: float = 1e-4, **kwargs):
    super().__init__(momentum=momentum, epsilon=epsilon, affine=False, **kwargs)
    self.num_classes = num_classes

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self._build_stats(channels)
    self.gain_offset = self.add_weight(
        name="gain_offset", shape=(self.num_classes, channels),
        initializer="zeros")
    self.shift = self.add_weight(name="shift",
                                 shape=(self.num_classes, channels),
                                 initializer="zeros")

  def class_tables(self) -> tuple[tf.Tensor, tf.Tensor]:
    """(gain_offset, shift) tables, each [num_classes, C].

    Subclasses that derive some classes' parameters from others (knowledge
    transfer) override this; `call` only ever reads the tables through it.
    """
    return (tf.convert_to_tensor(self.gain_offset),
            tf.convert_to_tensor(self.shift))

  def call(self, inputs, class_weights, training=None):
    if class_weights.shape[-1] is not None and (
        class_weights.shape[-1] != self.num_classes):
      raise ValueError(
          f"{self.name}: class weights have {class_weights.shape[-1]} columns "
          f"but the layer has {self.num_classes} classes.")
    x = self.standardize(inputs, training)
    gain_offset, shift = (precision.like(t, x) for t in self.class_tables())
    rank = len(inputs.shape)
    gain = 1.0 + _broadcast(tf.matmul(class_weights, gain_offset), rank)
    bias = _broadcast(tf.matmul(class_weights, shift), rank)
    return x * gain + bias


class ProjectedConditionalBatchNorm(SyncBatchNorm):
  """Batch norm whose gain and shift are linear projections of a vector.

  call(x, cond): x [B, ..., C], cond [B, cond_dim] -> same shape as x.
  gain = 1 + cond @ gain_projection, shift = cond @ shift_projection (both
  bias-free, spectrally normalised as in BigGAN).
  """

  def __init__(self, momentum: float = 0.9, epsilon: float = 1e-4,
               use_sn: bool = True, init: str = "orthogonal", **kwargs):
    super().__init__(momentum=momentum, epsilon=epsilon, affine=False, **kwargs)
    self.use_sn = use_sn
    self.init = init

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self._build_stats(channels)
    self.gain_projection = spectral_norm.SNDense(
        channels, use_bias=False, use_sn=self.use_sn, init=self.init,
        name="gain_projection")
    self.shift_projection = spectral_norm.SNDense(
        channels, use_bias=False, use_sn=self.use_sn, init=self.init,
        name="shift_projection")

  def call(self, inputs, cond, training=None):
    x = self.standardize(inputs, training)
    rank = len(inputs.shape)
    gain = 1.0 + _broadcast(self.gain_projection(cond, training=training), rank)
    bias = _broadcast(self.shift_projection(cond, training=training), rank)
    return x * gain + bias
