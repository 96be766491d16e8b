"""Spectral normalisation as defined by Miyato et al. (2018), used by BigGAN.

The kernel W is divided by an estimate of its largest singular value sigma(W) at
call time. sigma is obtained by power iteration with a persistent vector `u`
(non-trainable state, one iteration per training call). Unlike
`keras.layers.SpectralNormalization`, the stored kernel is never overwritten and
the gradient flows through sigma (only `u` and `v` are treated as constants).

Under a mixed precision policy (`tfgt.precision`) the kernel and `u` are read
in float32, the power iteration and sigma are float32, and W / sigma is cast
to the compute dtype for the matmul or convolution.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgt import precision

_EPS = 1e-12


def kernel_initializer(name: str) -> keras.initializers.Initializer:
  """Returns the weight initializer called `name`.

  Args:
    name: "orthogonal" (BigGAN), "normal" (N(0, 0.02), as in compare_gan and
      DCGAN) or "glorot" (Keras' default).

  Raises:
    ValueError: for any other name.
  """
  if name == "orthogonal":
    return keras.initializers.Orthogonal()
  if name == "normal":
    return keras.initializers.RandomNormal(stddev=0.02)
  if name == "glorot":
    return keras.initializers.GlorotUniform()
  raise ValueError(
      f"Unknown initializer {name!r}: use 'orthogonal', 'normal' or 'glorot'.")


def spectral_normalize(matrix: tf.Tensor, u: tf.Variable, num_iterations: int,
                       update_u: bool) -> tf.Tensor:
  """Divides a 2-D `matrix` [rows, cols] by its estimated top singular value.

  Args:
    matrix: float tensor of shape [rows, cols] (computed in float32).
    u: float32 variable of shape [1, cols], the running estimate of the top
      right singular vector of `matrix`.
    num_iterations: power iterations run in this call (0 reuses `u` as is).
    update_u: whether the refined `u` is written back.

  Returns:
    `matrix / sigma`, float32, where sigma = v^T W u with `u`, `v` held
    constant, so gradients reach `matrix` through sigma too.
  """
  matrix = precision.float32(matrix)
  u_hat = tf.math.l2_normalize(precision.float32(u), epsilon=_EPS)
  for _ in range(num_iterations):
    v_hat = tf.math.l2_normalize(tf.matmul(u_hat, matrix, transpose_b=True),
                                 epsilon=_EPS)
    u_hat = tf.math.l2_normalize(tf.matmul(v_hat, matrix), epsilon=_EPS)
  u_hat = tf.stop_gradient(u_hat)
  v_hat = tf.stop_gradient(tf.math.l2_normalize(
      tf.matmul(u_hat, matrix, transpose_b=True), epsilon=_EPS))
  if update_u and num_iterations > 0:
    u.assign(u_hat)
  sigma = tf.reduce_sum(tf.matmul(v_hat, matrix) * u_hat)
  return matrix / sigma


class _SpectralNormMixin:
  """Shared state handling of the spectrally normalised layers."""

  def _build_sn(self, cols: int) -> None:
    if self.use_sn:
      self.sn_u = self.add_weight(
          name="sn_u", shape=(1, cols),
          initializer=keras.initializers.RandomNormal(stddev=1.0),
          trainable=False, aggregation="mean", autocast=False)

  def _normalized(self, matrix: tf.Tensor, training: bool | None) -> tf.Tensor:
    """The (normalised) float32 `matrix`, read without autocasting."""
    if not self.use_sn:
      return matrix
    return spectral_normalize(matrix, self.sn_u,
                              self.power_iterations if training else 0,
                              update_u=bool(training))

  def _weight(self, name: str, shape, init: str):
    # Read as float32 inside the layer (no autocast): spectral norm runs on
    # the float32 values; `call` casts the result to the compute dtype.
    return self.add_weight(name=name, shape=shape,
                           initializer=kernel_initializer(init),
                           autocast=False)


class SNDense(_SpectralNormMixin, keras.layers.Layer):
  """Dense layer with optional spectral normalisation of its kernel.

  Input [..., in_features] -> output [..., units].
  """

  def __init__(self, units: int, use_bias: bool = True, use_sn: bool = True,
               init: str = "orthogonal", power_iterations: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.use_bias = use_bias
    self.use_sn = use_sn
    self.init = init
    self.power_iterations = power_iterations

  def build(self, input_shape):
    in_features = int(input_shape[-1])
    self.kernel = self._weight("kernel", (in_features, self.units), self.init)
    if self.use_bias:
      self.bias = self.add_weight(name="bias", shape=(self.units,),
                                  initializer="zeros")
    self._build_sn(self.units)

  def call(self, inputs, training=None):
    kernel = precision.like(self._normalized(self.kernel, training), inputs)
    outputs = tf.matmul(inputs, kernel)
    if self.use_bias:
      outputs = outputs + self.bias
    return outputs


class SNConv2D(_SpectralNormMixin, keras.layers.Layer):
  """2-D convolution (NHWC, stride 1, 'SAME') with optional spectral norm.

  Input [B, H, W, C_in] -> output [B, H, W, filters]. The kernel
  [k, k, C_in, filters] is normalised as the matrix [k*k*C_in, filters].
  """

  def __init__(self, filters: int, kernel_size: int = 3, use_bias: bool = True,
               use_sn: bool = True, init: str = "orthogonal",
               power_iterations: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.use_bias = use_bias
    self.use_sn = use_sn
    self.init = init
    self.power_iterations = power_iterations

  def build(self, input_shape):
    in_channels = int(input_shape[-1])
    k = self.kernel_size
    self.kernel = self._weight("kernel", (k, k, in_channels, self.filters),
                               self.init)
    if self.use_bias:
      self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                  initializer="zeros")
    self._build_sn(self.filters)

  def call(self, inputs, training=None):
    kernel = self.kernel
    if self.use_sn:
      shape = tf.shape(kernel)
      matrix = tf.reshape(kernel, [-1, self.filters])
      kernel = tf.reshape(self._normalized(matrix, training), shape)
    outputs = tf.nn.conv2d(inputs, precision.like(kernel, inputs), strides=1,
                           padding="SAME")
    if self.use_bias:
      outputs = outputs + self.bias
    return outputs


class SNEmbedding(_SpectralNormMixin, keras.layers.Layer):
  """Class embedding table [num_classes, dim] with optional spectral norm.

  Called on class weights y of shape [B, num_classes] (one-hot rows select a
  class; soft rows mix classes) and returns y @ table, shape [B, dim].
  """

  def __init__(self, num_classes: int, dim: int, use_sn: bool = True,
               init: str = "orthogonal", power_iterations: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    self.dim = dim
    self.use_sn = use_sn
    self.init = init
    self.power_iterations = power_iterations

  def build(self, input_shape):
    self.embeddings = self._weight("embeddings", (self.num_classes, self.dim),
                                   self.init)
    self._build_sn(self.dim)

  def normalized_table(self, training=None) -> tf.Tensor:
    """The (normalised) table, float32 [num_classes, dim]."""
    return self._normalized(self.embeddings, training)

  def call(self, class_weights, training=None):
    return tf.matmul(class_weights, precision.like(
        self.normalized_table(training), class_weights))
