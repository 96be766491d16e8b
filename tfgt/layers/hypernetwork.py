"""The hypernetwork of Hyper-Modulation (Laria et al., CVPRW 2022, 3.2).

A class network C maps a class (or a mix of classes) to a point v of the
class space V; per modulated layer, a modulator maps v to AdaFM's
parameters (eq. 3):

    v = C(class weights)                       [.., width]
    gamma_v, beta_v = g(v)                     [.., in, out] each
    b_v = g_b(v)                               [.., out]

`tfgt.layers.adafm` then builds the class's kernel from them (eq. 4-5).

Scale ("official", as GitHub hecoding/Hyper-Modulation computes it): the
class embedding is an equalised-learning-rate embedding, its N(0, 1) rows
times sqrt(2 / width) at run time, and every dense layer (C's, g, g_b) is an
equalised linear layer of gain sqrt(2). "unit" is an earlier tfgt
parametrisation (no embedding scale, g and g_b of gain 1): about 4x the
spread of gamma and beta at the start, and about 4x their class-dependent
change per Adam step at the same learning rate. `SCALES` lists both.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfgt.layers import style

SCALES = ("official", "unit")


def check_scale(scale: str) -> None:
  """Raises ValueError unless `scale` is one of SCALES."""
  if scale not in SCALES:
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")


class ClassNetwork(keras.layers.Layer):
  """C: class weights [B, num_classes] -> v [B, width].

  An embedding of every class (N(0, 1) rows; with scale "official" times
  sqrt(2 / width) at run time), mixed by the class weights (one-hot for a
  label; any convex mix for interpolation), then `depth` equalised dense
  layers of `width` (gain sqrt(2)) with leaky ReLU 0.2 (the paper: 4 of
  width 64, the "V space"; depth 0 gives the embeddings themselves, the
  paper's configuration A).

  Args:
    num_classes: rows of the embedding, >= 1.
    width: width of the embedding and the dense layers, >= 1.
    depth: number of dense layers, >= 0.
    scale: one of SCALES (see the module docstring).

  Raises:
    ValueError: an argument out of range.
  """

  def __init__(self, num_classes: int, width: int = 64, depth: int = 4,
               scale: str = "official", **kwargs):
    super().__init__(**kwargs)
    if num_classes < 1 or width < 1 or depth < 0:
      raise ValueError(f"ClassNetwork needs num_classes >= 1, width >= 1 and "
                       f"depth >= 0; got {num_classes}, {width}, {depth}.")
    check_scale(scale)
    self.num_classes = num_classes
    self.width = width
    self.depth = depth
    self.scale = scale
    # The official embedding's equalised learning rate: its fan-in is the
    # width (one input per row element).
    self.embedding_scale = (math.sqrt(2.0 / width) if scale == "official"
                            else 1.0)
    for i in range(depth):
      setattr(self, f"dense{i}", style.EqualizedDense(width,
                                                      name=f"Dense{i}"))

  def build(self, input_shape=None):
    self.embedding = self.add_weight(
        name="embedding", shape=(self.num_classes, self.width),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    for i in range(self.depth):
      getattr(self, f"dense{i}").build((None, self.width))
    self.built = True

  def call(self, class_weights):
    v = tf.matmul(tf.cast(class_weights, self.compute_dtype), self.embedding)
    if self.embedding_scale != 1.0:
      v *= self.embedding_scale
    for i in range(self.depth):
      v = style.leaky_relu(getattr(self, f"dense{i}")(v))
    return v


class Modulator(keras.layers.Layer):
  """g and g_b of one modulated layer: v [.., width] -> (gamma [.., in,
  out], beta [.., in, out], bias shift [.., out]).

  g is one equalised dense layer to 2 * in * out values with gamma and beta
  interleaved (gamma at even, beta at odd positions), as the official code;
  `hidden` > 0 puts a linear dense layer of that width before it (our
  reading of the paper's "fully connected layer ... to a dimensionality of
  512"; the composition stays affine, as eq. 3 says). g_b is one equalised
  dense layer to `out`. All have zero-initialised biases and gain sqrt(2)
  (scale "official", the official code's equalised linear layers) or 1
  ("unit").

  The official code orders g's outputs (out, in, 2) for a plain modulated
  convolution and (in, out, 2) for a fused upsampling one; tfgt uses (in,
  out, 2) for both. With N(0, 1) weights that is a relabelling of g's rows:
  the same distribution, the same training; only a weight-for-weight import
  of an official checkpoint would need the permutation.

  Args:
    fan_in, fan_out: the modulated kernel's in and out channels.
    hidden: None or 0 (the official code), or the width of the extra layer.
    scale: one of SCALES.

  Raises:
    ValueError: hidden < 0 or an unknown scale.
  """

  def __init__(self, fan_in: int, fan_out: int, hidden: int | None = None,
               scale: str = "official", **kwargs):
    super().__init__(**kwargs)
    if hidden is not None and hidden < 0:
      raise ValueError(f"hidden must be None or >= 0, got {hidden}.")
    check_scale(scale)
    self.fan_in = fan_in
    self.fan_out = fan_out
    gain = style.RELU_GAIN if scale == "official" else 1.0
    self.hidden = (style.EqualizedDense(hidden, gain=gain, name="hidden")
                   if hidden else None)
    self.g = style.EqualizedDense(2 * fan_in * fan_out, gain=gain, name="g")
    self.g_b = style.EqualizedDense(fan_out, gain=gain, name="g_b")

  def build(self, input_shape):
    width = int(input_shape[-1])
    if self.hidden is not None:
      self.hidden.build((None, width))
    self.g.build((None, width if self.hidden is None else self.hidden.units))
    self.g_b.build((None, width))
    self.built = True

  def call(self, v):
    h = v if self.hidden is None else self.hidden(v)
    lead = tf.shape(v)[:-1]
    pairs = tf.reshape(self.g(h), tf.concat(
        [lead, [self.fan_in, self.fan_out, 2]], axis=0))
    return pairs[..., 0], pairs[..., 1], self.g_b(v)
