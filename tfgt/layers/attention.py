"""Self-attention block of SAGAN / BigGAN.

Under a mixed precision policy (`tfgt.precision`) the attention logits and
their softmax are float32 (a softmax of large logits saturates in bfloat16
and overflows in float16); the attention weights are cast back to the
compute dtype for the weighted sum of the values.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgt import precision
from tfgt.layers import spectral_norm


class SelfAttention(keras.layers.Layer):
  """Non-local self-attention with a learned residual gate (init 0).

  Input [B, H, W, C] (H and W even, C divisible by 8) -> same shape.
  Keys and values are max-pooled 2x2, as in BigGAN.
  """

  def __init__(self, use_sn: bool = True, init: str = "orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.use_sn = use_sn
    self.init = init

  def build(self, input_shape):
    channels = int(input_shape[-1])
    if channels % 8:
      raise ValueError(f"SelfAttention needs channels divisible by 8, got "
                       f"{channels}.")
    conv = lambda filters, name: spectral_norm.SNConv2D(  # pylint: disable=g-long-lambda
        filters, 1, use_bias=False, use_sn=self.use_sn, init=self.init,
        name=name)
    self.query = conv(channels // 8, "query")
    self.key = conv(channels // 8, "key")
    self.value = conv(channels // 2, "value")
    self.output_conv = conv(channels, "output_conv")
    self.gate = self.add_weight(name="gate", shape=(), initializer="zeros")

  def call(self, inputs, training=None):
    shape = tf.shape(inputs)
    b, h, w = shape[0], shape[1], shape[2]
    c = inputs.shape[-1]
    query = tf.reshape(self.query(inputs, training=training), [b, h * w, c // 8])
    pool = lambda t: tf.nn.max_pool2d(t, 2, 2, "VALID")
    key = tf.reshape(pool(self.key(inputs, training=training)),
                     [b, -1, c // 8])
    value = tf.reshape(pool(self.value(inputs, training=training)),
                       [b, -1, c // 2])
    logits = tf.matmul(precision.float32(query), precision.float32(key),
                       transpose_b=True)
    attention = precision.like(tf.nn.softmax(logits, axis=-1), value)
    attended = tf.reshape(tf.matmul(attention, value), [b, h, w, c // 2])
    return inputs + self.gate * self.output_conv(attended, training=training)
