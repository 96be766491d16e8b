"""The operations and layers of StyleGAN2 (Karras et al., CVPR 2020) and
StyleGAN2-ADA (Karras et al., NeurIPS 2020), channels last.

Mixed precision (`tfgt.precision`): every layer computes in its dtype
policy's compute dtype, with float32 islands where low precision loses what
matters: the second-moment normalisation of z and of the label embedding,
the demodulation coefficients (a sum of squares over k * k * in terms), the
minibatch standard deviation's statistics, and the stored kernels of the
modulated convolutions, read in float32 (`SynthesisLayer.weight`, which
AdaFM standardises) and cast for the convolution. Under float32 every cast
is the identity.

Conventions that follow NVlabs' stylegan2-ada-pytorch (`training/networks.py`
and `torch_utils/ops`), so that its weights mean the same here:
  * Equalised learning rate (Karras et al. 2018, section 4.1): weights are
    stored N(0, 1 / lr_multiplier) and scaled at run time by
    lr_multiplier / sqrt(fan_in); a bias is stored / lr_multiplier. The gain
    of an activation (sqrt(2) for leaky ReLU) multiplies its output, after
    the bias (`bias_act`), not the weight as in StyleGAN v1.
  * FIR resampling (`upfirdn2d`): zero insertion, padding, a 2D FIR filter
    (the outer product of `resample_filter` taps, normalised to sum 1),
    decimation; upsampling by 2 multiplies the filter by 4 so that a
    constant keeps its value.
  * Kernels are stored [kh, kw, in, out] (NVlabs: [out, in, kh, kw]). An
    upsampling convolution is a true convolution (kernel flipped, as
    NVlabs' transposed convolution computes it); every other one is a
    cross-correlation, as `tf.nn.conv2d`.

Shapes: feature maps [B, H, W, C]; w [B, w_dim] (in the compute dtype).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfgt import precision
from tfgt.layers import adafm
from tfgt.layers import building
from tfgt.layers import style

LEAKY_RELU_SLOPE = 0.2
# The gain that keeps the magnitude of a leaky ReLU's output (NVlabs' 'lrelu'
# def_gain).
LRELU_GAIN = math.sqrt(2.0)
ACTIVATIONS = ("linear", "lrelu")
# NVlabs' resampling filter: the binomial [1, 3, 3, 1].
DEFAULT_FILTER = (1, 3, 3, 1)


class StyleGAN2Layer(building.BuildsOnCall, keras.layers.Layer):
  """The base of StyleGAN2's layers: built by its first call
  (`building.BuildsOnCall`), computing in its dtype policy's compute dtype
  (Keras casts the float inputs and reads the variables in it)."""


def setup_filter(taps: Sequence[float]) -> np.ndarray:
  """The 2D FIR filter of separable taps: outer(taps, taps) / its sum.

  Args:
    taps: 1D, at least one value, with a positive sum.

  Returns:
    float32 [len(taps), len(taps)] summing to 1 (a constant keeps its value).

  Raises:
    ValueError: empty taps or a sum that is not positive.
  """
  taps = np.asarray(taps, np.float64)
  if taps.ndim != 1 or taps.size == 0 or not np.sum(taps) > 0:
    raise ValueError(f"resample_filter must be a non-empty list of taps with "
                     f"a positive sum, got {list(taps)}.")
  f = np.outer(taps, taps)
  return (f / f.sum()).astype(np.float32)


def _pad4(padding) -> tuple[int, int, int, int]:
  """(x0, x1, y0, y1) from an int, (x, y) or (x0, x1, y0, y1)."""
  if isinstance(padding, int):
    return padding, padding, padding, padding
  if len(padding) == 2:
    return padding[0], padding[0], padding[1], padding[1]
  return tuple(padding)


def upfirdn2d(x: tf.Tensor, f: np.ndarray, up: int = 1, down: int = 1,
              padding=0, gain: float = 1.0) -> tf.Tensor:
  """Upsample, pad, FIR-filter and downsample each channel (NVlabs'
  `upfirdn2d`, after scipy.signal.upfirdn).

  1. insert up - 1 zeros after every pixel; 2. pad with zeros (negative:
  crop); 3. convolve with f * gain, keeping the outputs whose footprint lies
  inside the padded image; 4. keep every down-th pixel.

  Args:
    x: float32 [B, H, W, C] with static H, W, C.
    f: the 2D filter [fh, fw] (`setup_filter`).
    up, down: integer factors >= 1.
    padding: int, (x, y) or (x0, x1, y0, y1), in pixels of the upsampled
      image.
    gain: multiplies the filter.

  Returns:
    [B, (H * up + y0 + y1 - fh + 1) / down, (W * up + x0 + x1 - fw + 1) /
    down, C] (divisions rounding up).
  """
  _, h, w, c = x.shape
  px0, px1, py0, py1 = _pad4(padding)
  if up > 1:
    x = tf.reshape(x, [-1, h, 1, w, 1, c])
    x = tf.pad(x, [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1], [0, 0]])
    x = tf.reshape(x, [-1, h * up, w * up, c])
  x = tf.pad(x, [[0, 0], [max(py0, 0), max(py1, 0)],
                 [max(px0, 0), max(px1, 0)], [0, 0]])
  height, width = x.shape[1], x.shape[2]
  x = x[:, max(-py0, 0):height - max(-py1, 0),
        max(-px0, 0):width - max(-px1, 0), :]
  # A convolution, not a correlation: the filter is flipped.
  kernel = np.asarray(f, np.float32)[::-1, ::-1] * gain
  kernel = np.tile(kernel[:, :, None, None], [1, 1, c, 1])
  return tf.nn.depthwise_conv2d(x, tf.constant(kernel, x.dtype),
                                [1, down, down, 1], "VALID")


def upsample2d(x: tf.Tensor, f: np.ndarray, up: int = 2) -> tf.Tensor:
  """[B, H, W, C] -> [B, up H, up W, C] through `upfirdn2d` (gain up^2)."""
  fh = f.shape[0]
  p0, p1 = (fh + up - 1) // 2, (fh - up) // 2
  return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: tf.Tensor, f: np.ndarray, down: int = 2) -> tf.Tensor:
  """[B, H, W, C] -> [B, H / down, W / down, C] through `upfirdn2d`."""
  fh = f.shape[0]
  p0, p1 = (fh - down + 1) // 2, (fh - down) // 2
  return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def conv2d_resample(x: tf.Tensor, kernel: tf.Tensor, f: np.ndarray,
                    up: int = 1, down: int = 1) -> tf.Tensor:
  """A convolution with an odd square kernel and 'same' padding, with FIR
  up- or downsampling by 2 (NVlabs' `conv2d_resample` as its layers call
  it).

  up = 2: a true convolution of the zero-upsampled input, then the filter
  with gain 4 (a strided transposed convolution). down = 2: the filter,
  then a strided cross-correlation. Otherwise a cross-correlation.

  Args:
    x: float32 [B, H, W, in].
    kernel: float32 [k, k, in, out], k odd.
    f: the 2D resampling filter.
    up, down: 1 or 2, not both 2.

  Returns:
    [B, H * up / down, W * up / down, out].
  """
  k = kernel.shape[0]
  fh = f.shape[0]
  pad = k // 2
  if up > 1:
    if k == 1:
      x = tf.nn.conv2d(x, kernel, 1, "VALID")
      return upsample2d(x, f, up)
    batch = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    out = kernel.shape[-1]
    # Padding of the upsampled image (NVlabs' bookkeeping), less what the
    # transposed convolution's full output already covers.
    p0 = pad + (fh + up - 1) // 2 - (k - 1)
    p1 = pad + (fh - up) // 2 - (k - up)
    x = tf.nn.conv2d_transpose(
        x, tf.transpose(kernel, [0, 1, 3, 2]),
        tf.stack([batch, (h - 1) * up + k, (w - 1) * up + k, out]),
        up, "VALID")
    x = tf.ensure_shape(x, [None, (h - 1) * up + k, (w - 1) * up + k, out])
    return upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=up * up)
  if down > 1:
    p0 = pad + (fh - down + 1) // 2
    p1 = pad + (fh - down) // 2
    if k == 1:
      x = upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))
      return tf.nn.conv2d(x, kernel, 1, "VALID")
    x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
    return tf.nn.conv2d(x, kernel, down, "VALID")
  return tf.nn.conv2d(x, kernel, 1, "SAME")


def bias_act(x: tf.Tensor, bias: tf.Tensor | None, activation: str = "linear",
             gain: float | None = None,
             clamp: float | None = None) -> tf.Tensor:
  """x + bias, then the activation, times the gain, clamped to +-clamp
  (NVlabs' `bias_act`).

  Args:
    x: float32 [..., C].
    bias: None or [C].
    activation: "linear" or "lrelu" (slope 0.2).
    gain: None: the activation's own (1 or sqrt(2)).
    clamp: None or > 0.
  """
  if bias is not None:
    x = x + bias
  if activation == "lrelu":
    x = tf.nn.leaky_relu(x, LEAKY_RELU_SLOPE)
    gain = LRELU_GAIN if gain is None else gain
  elif activation != "linear":
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got "
                     f"{activation!r}.")
  if gain is not None and gain != 1:
    x = x * gain
  if clamp is not None:
    x = tf.clip_by_value(x, -clamp, clamp)
  return x


def normalize_2nd_moment(x: tf.Tensor, epsilon: float = 1e-8) -> tf.Tensor:
  """x / sqrt(mean(x^2) + eps) over the last axis of [B, F], computed in
  float32 and returned in x's dtype: NVlabs' name for StyleGAN's pixel norm
  (`style.pixel_norm`)."""
  return style.pixel_norm(x, epsilon)


def _check_activation(activation: str) -> None:
  if activation not in ACTIVATIONS:
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got "
                     f"{activation!r}.")


class FullyConnected(StyleGAN2Layer):
  """An equalised dense layer: [B, in] -> [B, units],
  act(x @ (weight * lr_multiplier / sqrt(in)) + bias * lr_multiplier) times
  the activation's gain (NVlabs' `FullyConnectedLayer`).

  Args:
    units: output width.
    activation: "linear" or "lrelu".
    lr_multiplier: > 0, this layer's learning-rate multiplier.
    bias_init: the bias's initial effective value (1 for the style affines,
      so that styles start around 1).

  Raises:
    ValueError: lr_multiplier <= 0 or an unknown activation.
  """

  def __init__(self, units: int, activation: str = "linear",
               lr_multiplier: float = 1.0, bias_init: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if not lr_multiplier > 0:
      raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}.")
    _check_activation(activation)
    self.units = units
    self.activation = activation
    self.lr_multiplier = lr_multiplier
    self.bias_init = bias_init

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    self.weight = self.add_weight(
        name="weight", shape=(fan_in, self.units),
        initializer=keras.initializers.RandomNormal(
            stddev=1.0 / self.lr_multiplier))
    self.bias = self.add_weight(
        name="bias", shape=(self.units,),
        initializer=keras.initializers.Constant(
            self.bias_init / self.lr_multiplier))
    self.weight_gain = self.lr_multiplier / math.sqrt(fan_in)

  def call(self, x):
    x = tf.matmul(x, self.weight * self.weight_gain)
    return bias_act(x, self.bias * self.lr_multiplier, self.activation)


class Conv2DLayer(StyleGAN2Layer):
  """An equalised convolution with optional FIR resampling, bias, activation
  and clamping (NVlabs' `Conv2dLayer`): [B, H, W, in] -> [B, H * up / down,
  W * up / down, filters].

  call(x, gain=1): the activation's gain and the clamp are multiplied by
  `gain` (sqrt(0.5) on the two branches of a residual block).

  Args:
    filters: output channels.
    kernel_size: odd.
    activation: "linear" or "lrelu".
    use_bias: whether a bias (initialised to 0) is added.
    up, down: 1 or 2.
    resample_filter: taps of the FIR filter.
    conv_clamp: None or > 0, the clamp of the output.
  """

  def __init__(self, filters: int, kernel_size: int,
               activation: str = "linear", use_bias: bool = True,
               up: int = 1, down: int = 1,
               resample_filter: Sequence[float] = DEFAULT_FILTER,
               conv_clamp: float | None = None, **kwargs):
    super().__init__(**kwargs)
    _check_activation(activation)
    if kernel_size < 1 or kernel_size % 2 == 0:
      raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
    self.filters = filters
    self.kernel_size = kernel_size
    self.activation = activation
    self.use_bias = use_bias
    self.up = up
    self.down = down
    self.filter = setup_filter(resample_filter)
    self.conv_clamp = conv_clamp

  def build(self, input_shape):
    fan_in = int(input_shape[-1]) * self.kernel_size ** 2
    self.weight = self.add_weight(
        name="weight",
        shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]),
               self.filters),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                 initializer="zeros")
                 if self.use_bias else None)
    self.weight_gain = 1.0 / math.sqrt(fan_in)

  def call(self, x, gain: float = 1.0):
    x = conv2d_resample(x, self.weight * self.weight_gain, self.filter,
                        up=self.up, down=self.down)
    act_gain = (LRELU_GAIN if self.activation == "lrelu" else 1.0) * gain
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(x, self.bias, self.activation, act_gain, clamp)


def _sum_of_squares(kernel: tf.Tensor) -> tf.Tensor:
  """[k, k, in, out] -> [in, out]: the sum over the taps of the squares."""
  return tf.reduce_sum(tf.square(kernel), axis=[0, 1])


def modulated_conv2d(x: tf.Tensor, weight: tf.Tensor, styles: tf.Tensor,
                     f: np.ndarray, up: int = 1,
                     demodulate: bool = True) -> tf.Tensor:
  """Modulated convolution with weight demodulation (StyleGAN2, section
  2.2, eq. 1-3), computed without per-sample kernels: the input is scaled by
  the styles, convolved with the shared kernel, and the output scaled by the
  demodulation coefficients, which equals the convolution with
  w'_ijk = s_i w_ijk / sqrt(sum_ik (s_i w_ijk)^2 + 1e-8) (NVlabs'
  `fused_modconv=False`; also the path with gradients on a CPU).

  Args:
    x: [B, H, W, in] in the compute dtype.
    weight: [k, k, in, out], float32 or the compute dtype (NVlabs scales it
      by nothing: the demodulation normalises it); cast to x's dtype for
      the convolution.
    styles: [B, in] in x's dtype.
    f: the 2D resampling filter.
    up: 1 or 2.
    demodulate: False for to-RGB.

  Returns:
    [B, H * up, W * up, out] in x's dtype; the demodulation coefficients
    are computed in float32.
  """
  x = x * styles[:, None, None, :]
  x = conv2d_resample(x, precision.like(weight, x), f, up=up)
  if demodulate:
    # sum over (k, k, in) of (s_i w_ijk)^2, per sample and output channel.
    energy = tf.matmul(tf.square(precision.float32(styles)),
                       _sum_of_squares(precision.float32(weight)))
    x = x * precision.like(tf.math.rsqrt(energy + 1e-8)[:, None, None, :], x)
  return x


class KernelModulation(NamedTuple):
  """What a weight-modulating method (Hyper-Modulation, GAN Memory) puts in
  place of a `SynthesisLayer`'s shared kernel: per-class kernels with
  labels, or per-sample kernels, and a per-sample bias shift.

  kernels: float32 [K, k, k, in, out] with `labels` int [B] in [0, K), or
    [B, k, k, in, out] with labels None.
  bias_shift: float32 [B, out] added to the layer's bias, or None.
  """
  kernels: tf.Tensor
  labels: tf.Tensor | None
  bias_shift: tf.Tensor | None = None


def kernel_modulated_conv2d(x: tf.Tensor, modulation: KernelModulation,
                            styles: tf.Tensor, f: np.ndarray,
                            up: int = 1) -> tf.Tensor:
  """`modulated_conv2d` (demodulated) with a kernel per class or per sample
  instead of the shared one.

  Per-class kernels: the batch is split by class and each part convolved
  with its class's kernel (`adafm.conv_partition`); the demodulation
  coefficients come from each class's kernel by the same operations as the
  shared kernel's, so a kernel equal to the shared one gives its output
  bit for bit. Per-sample kernels (class interpolation): one convolution
  per sample (`tf.map_fn`).

  Args:
    x: float32 [B, H, W, in].
    modulation: the kernels (see `KernelModulation`).
    styles: float32 [B, in].
    f: the 2D resampling filter.
    up: 1 or 2.

  Returns:
    [B, H * up, W * up, out].
  """
  kernels, labels = precision.float32(modulation.kernels), modulation.labels
  x = x * styles[:, None, None, :]
  conv = lambda part, kernel: conv2d_resample(part, precision.like(kernel, x),
                                              f, up=up)
  squares = tf.square(precision.float32(styles))
  if labels is not None:
    labels = tf.cast(labels, tf.int32)
    x = adafm.conv_partition(x, kernels, labels, conv=conv, up=up)
    # [B, K, out]: every class's coefficients, then each sample's class's.
    energy = tf.stack([tf.matmul(squares, _sum_of_squares(kernels[c]))
                       for c in range(kernels.shape[0])], axis=1)
    energy = tf.gather(energy, labels, axis=1, batch_dims=1)
  else:
    x = tf.map_fn(lambda a: conv(a[0][None], a[1])[0], (x, kernels),
                  fn_output_signature=x.dtype)
    energy = tf.einsum("bi,bio->bo", squares,
                       tf.reduce_sum(tf.square(kernels), axis=[1, 2]))
  return x * precision.like(tf.math.rsqrt(energy + 1e-8)[:, None, None, :], x)


class SynthesisLayer(StyleGAN2Layer):
  """One modulated 3x3 convolution of the synthesis network (NVlabs'
  `SynthesisLayer`): style affine (bias initialised to 1), modulated and
  demodulated convolution (FIR upsampling when `up`), per-pixel noise times
  a learned scalar strength (initialised to 0), bias, leaky ReLU with gain
  sqrt(2), optional clamp.

  call(x [B, H, W, in], w [B, w_dim], noise, gain=1) -> [B, R, R, filters]
  with R = `resolution` (= H * up); noise: [B or 1, R, R, 1], or None: the
  fixed buffer `noise_const` [R, R] with `use_const_noise` (NVlabs'
  noise_mode="const"), no noise otherwise.
  """

  def __init__(self, filters: int, resolution: int, up: int = 1,
               kernel_size: int = 3,
               resample_filter: Sequence[float] = DEFAULT_FILTER,
               conv_clamp: float | None = None,
               use_const_noise: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.use_const_noise = use_const_noise
    self.filters = filters
    self.resolution = resolution
    self.up = up
    self.kernel_size = kernel_size
    self.filter = setup_filter(resample_filter)
    self.conv_clamp = conv_clamp

  def build(self, x_shape, w_shape=None):
    in_channels = int(x_shape[-1])
    self.affine = FullyConnected(in_channels, bias_init=1.0, name="affine")
    self.affine.build(w_shape)
    # Read as float32 under every precision (no autocast): AdaFM
    # standardises it and the demodulation sums its squares;
    # `modulated_conv2d` casts it for the convolution.
    self.weight = self.add_weight(
        name="weight",
        shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
        initializer=keras.initializers.RandomNormal(stddev=1.0),
        autocast=False)
    self.noise_strength = self.add_weight(name="noise_strength", shape=(),
                                          initializer="zeros")
    self.noise_const = self.add_weight(
        name="noise_const", shape=(self.resolution, self.resolution),
        initializer=keras.initializers.RandomNormal(stddev=1.0),
        trainable=False)
    self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                initializer="zeros")

  def call(self, x, w, noise=None, gain: float = 1.0,
           modulation: KernelModulation | None = None):
    """`modulation`: None (the layer's own kernel), or the kernels and bias
    shift of a weight-modulating method (`kernel_modulated_conv2d`)."""
    styles = self.affine(w)
    if modulation is None:
      x = modulated_conv2d(x, self.weight, styles, self.filter, up=self.up)
    else:
      x = kernel_modulated_conv2d(x, modulation, styles, self.filter,
                                  up=self.up)
    if noise is None and self.use_const_noise:
      noise = self.noise_const[None, :, :, None]
    if noise is not None:
      x = x + noise * self.noise_strength
    if modulation is not None and modulation.bias_shift is not None:
      x = x + precision.like(modulation.bias_shift[:, None, None, :], x)
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(x, self.bias, "lrelu", LRELU_GAIN * gain, clamp)


class ToRGBLayer(StyleGAN2Layer):
  """A modulated 1x1 convolution without demodulation, the styles scaled by
  1 / sqrt(in), then a bias and the optional clamp (NVlabs' `ToRGBLayer`):
  x [B, H, W, in], w [B, w_dim] -> [B, H, W, channels]."""

  def __init__(self, channels: int, conv_clamp: float | None = None,
               **kwargs):
    super().__init__(**kwargs)
    self.channels = channels
    self.conv_clamp = conv_clamp
    self.filter = setup_filter([1])

  def build(self, x_shape, w_shape=None):
    in_channels = int(x_shape[-1])
    self.affine = FullyConnected(in_channels, bias_init=1.0, name="affine")
    self.affine.build(w_shape)
    self.weight = self.add_weight(
        name="weight", shape=(1, 1, in_channels, self.channels),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = self.add_weight(name="bias", shape=(self.channels,),
                                initializer="zeros")
    self.weight_gain = 1.0 / math.sqrt(in_channels)

  def call(self, x, w):
    styles = self.affine(w) * self.weight_gain
    x = modulated_conv2d(x, self.weight, styles, self.filter,
                         demodulate=False)
    return bias_act(x, self.bias, "linear", clamp=self.conv_clamp)


def _group_size(batch: tf.Tensor, max_group: int) -> tf.Tensor:
  """The largest g <= max_group that divides the batch (1 at worst)."""
  size = tf.constant(1)
  for g in range(2, max_group + 1):
    size = tf.where(tf.equal(batch % g, 0), g, size)
  return size


class MinibatchStd(StyleGAN2Layer):
  """Minibatch standard deviation (Karras et al. 2018, section 3; NVlabs'
  `MinibatchStdLayer`): [B, H, W, C] -> [B, H, W, C + num_channels].

  Samples i and j share a group when i = j mod (B / g); the channels split
  into `num_channels` consecutive groups, each giving one statistic: the
  standard deviation over the group (eps 1e-8 inside the root), averaged
  over its channels and pixels. g is the largest number up to `group_size`
  that divides the (per-replica) batch, so any batch works; where NVlabs'
  min(group_size, B) divides the batch, the two agree.

  Args:
    group_size: the largest group; None: the whole batch is one group.
    num_channels: >= 1; C must divide by it.
  """

  def __init__(self, group_size: int | None = 4, num_channels: int = 1,
               **kwargs):
    super().__init__(**kwargs)
    self.group_size = group_size
    self.num_channels = num_channels

  def call(self, x):
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    c = x.shape[-1]
    f = self.num_channels
    g = b if self.group_size is None else _group_size(b, self.group_size)
    # Statistics in float32 (a variance over the group).
    y = tf.reshape(precision.float32(x), [g, -1, h, w, f, c // f])
    y -= tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
    y = tf.reduce_mean(y, axis=[1, 2, 4])  # [B / g, f]
    y = tf.tile(y[:, None, None, :], [g, h, w, 1])
    return tf.concat([x, precision.like(y, x)], axis=-1)
