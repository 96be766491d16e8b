"""Adaptive filter modulation (AdaFM) of frozen convolution kernels.

Hyper-Modulation (Laria et al., CVPRW 2022, eq. 1 and 4-5) and GAN Memory
(Cong et al., NeurIPS 2020) give each class its own version of a frozen
source kernel W [k, k, in, out] (Keras layout):

    W_c = gamma_c * (W - mu) / sigma + beta_c          (eq. 1 / eq. 4)
    b_c = b + b_shift_c                                (eq. 5)

with mu and sigma [in, out] the mean and the (unbiased) standard deviation of
each (in, out) slice of W over its k * k taps, and gamma_c, beta_c [in, out]
broadcast over the taps. `modulate_kernel` evaluates eq. 1 in the equal form
W * a + (beta - mu * a) with a = gamma / sigma: with gamma = sigma and
beta = mu (GAN Memory's start) a is exactly 1 and the kernel exactly W, so a
modulated generator starts as the source bit for bit.

A batch mixes classes, so the convolution has one kernel per sample.
TensorFlow has no gradient for grouped convolutions on the CPU, so three
formulations are offered (`modulated_conv2d`), all with the same output and
gradients:

  "partition"  per-class kernels [K, ...] and labels: the batch is split by
               class (`tf.dynamic_partition`), each part is convolved with
               its class's kernel and the parts are put back in order. The
               work is one convolution of the batch, in up to K pieces.
  "stacked"    per-class kernels and labels: one convolution with all K
               kernels side by side (K * out output channels), then each
               sample keeps its class's channels. K times the work, in one
               large convolution.
  "patches"    per-sample kernels [B, ...]: the k x k patches of the input
               (`tf.image.extract_patches`) times each sample's kernel
               (an einsum). The only one for class interpolation, where
               every sample has its own kernel.

`tools.benchmark_modulation` measures them side by side; "auto" picks the
measured fastest (`AUTO_FORMULATION`).

Under a mixed precision policy (`tfgt.precision`) the statistics and the
modulation are float32 whatever the dtype of their inputs (a division by a
per-slice deviation of a few taps); `modulated_conv2d` casts the kernels to
the dtype of the feature maps.
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from tfgt import precision

FORMULATIONS = ("auto", "partition", "stacked", "patches")


def kernel_statistics(kernel: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Mean and unbiased standard deviation of each (in, out) kernel slice.

  Args:
    kernel: float32 [k, k, in, out] with k * k >= 2.

  Returns:
    (mu, sigma), float32 [in, out] each, over the k * k taps.

  Raises:
    ValueError: a kernel with a single tap (1x1), whose deviation is
      undefined.
  """
  taps = kernel.shape[0] * kernel.shape[1]
  if taps < 2:
    raise ValueError(f"AdaFM standardises a kernel over its taps; a "
                     f"{kernel.shape[0]}x{kernel.shape[1]} kernel has one.")
  kernel = precision.float32(kernel)
  mu = tf.reduce_mean(kernel, axis=[0, 1])
  variance = tf.reduce_sum(tf.square(kernel - mu), axis=[0, 1]) / (taps - 1)
  return mu, tf.sqrt(variance)


def standardize_kernel(kernel: tf.Tensor) -> tf.Tensor:
  """(W - mu) / sigma per (in, out) slice: eq. 4's normalised source kernel.

  kernel: float32 [k, k, in, out] -> the same shape (float32).
  """
  kernel = precision.float32(kernel)
  mu, sigma = kernel_statistics(kernel)
  return (kernel - mu) / sigma


def modulate_kernel(kernel: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor,
                    statistics: tuple[tf.Tensor, tf.Tensor] | None = None
                    ) -> tf.Tensor:
  """AdaFM (eq. 1 / 4): gamma * (W - mu) / sigma + beta.

  Args:
    kernel: the source kernel W, float32 [k, k, in, out].
    gamma, beta: float32 [..., in, out] (leading axes: classes or samples).
    statistics: (mu, sigma) of `kernel` if already computed.

  Returns:
    float32 [..., k, k, in, out]: one kernel per leading index.
  """
  kernel, gamma, beta = (precision.float32(t) for t in (kernel, gamma, beta))
  mu, sigma = statistics or kernel_statistics(kernel)
  a = gamma / sigma
  b = beta - mu * a
  return kernel * a[..., None, None, :, :] + b[..., None, None, :, :]


def fused_upsampling_kernel(kernel: tf.Tensor, gamma: tf.Tensor,
                            beta: tf.Tensor,
                            statistics: tuple[tf.Tensor, tf.Tensor] | None
                            = None) -> tf.Tensor:
  """AdaFM of a fused upsampling convolution, as the official code computes
  it, as the 3x3 kernel to run after a nearest 2x upsampling.

  StyleGAN's upsampling layers at 128 px and above are one transposed
  convolution of stride 2 whose 4x4 kernel is the mean of the 3x3 kernel's
  four 2x2 shifts. The official Hyper-Modulation layer there (its
  `FusedUpsampleAdaFM`) modulates that 4x4 kernel:

      K4 = sqrt(2 / (16 out)) * (gamma * avg4(W_n) + beta)

  with W_n = (W - mu) / sigma the standardised 3x3 kernel, avg4 the mean
  of its four shifts, beta added to all 16 taps and the equalised-learning-
  rate scale taken with the fan-in 16 * out that the official `equalize`
  computes for this layout. Since avg4(A) = (A * box2) / 4 and the 4x4 ones
  = P * box2 (full convolutions, P = [[1, 0, 1], [0, 0, 0], [1, 0, 1]]), and
  a stride-2 transposed convolution with X * box2 is a nearest upsampling
  followed by X, that layer equals a nearest upsampling followed by the 3x3
  kernel

      sqrt(2 / (16 out)) / 4 * (gamma * W_n + 4 beta P)

  returned here, in the layout of `kernel` (a flip of the official layout
  changes nothing: the standardisation and P are symmetric). It cannot be
  written as eq. 4 of the 3x3 kernel when beta != 0 (beta reaches only the
  corner taps), which is why a modulated upsampling layer at these
  resolutions has its own form.

  Args:
    kernel: the source kernel W, float32 [3, 3, in, out] (any scale: it is
      standardised).
    gamma, beta: float32 [..., in, out].
    statistics: (mu, sigma) of `kernel` if already computed.

  Returns:
    float32 [..., 3, 3, in, out], the runtime scale included.

  Raises:
    ValueError: a kernel that is not 3x3.
  """
  if tuple(kernel.shape[:2]) != (3, 3):
    raise ValueError(f"The fused upsampling modulation is defined for 3x3 "
                     f"kernels; got {tuple(kernel.shape[:2])}.")
  kernel, gamma, beta = (precision.float32(t) for t in (kernel, gamma, beta))
  mu, sigma = statistics or kernel_statistics(kernel)
  normalised = (kernel - mu) / sigma
  corners = tf.constant([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]],
                        kernel.dtype)[:, :, None, None]
  scale = math.sqrt(2.0 / (16 * int(kernel.shape[-1]))) / 4.0
  return scale * (gamma[..., None, None, :, :] * normalised +
                  4.0 * beta[..., None, None, :, :] * corners)


def standardize_bias(bias: tf.Tensor) -> tf.Tensor:
  """The bias standardised over its channels (mean 0, unbiased std 1), as
  the official Hyper-Modulation code does before adding the shift.

  bias: float32 [out] with out >= 2 -> float32 [out].
  """
  bias = precision.float32(bias)
  mean, variance = tf.nn.moments(bias, axes=[0])
  n = tf.cast(tf.size(bias), bias.dtype)
  return (bias - mean) / tf.sqrt(variance * n / (n - 1.0))


def _conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  return tf.nn.conv2d(x, kernel, 1, "SAME")


def conv_partition(x: tf.Tensor, kernels: tf.Tensor, labels: tf.Tensor,
                   conv: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None
                   = None, up: int = 1) -> tf.Tensor:
  """Each sample convolved with its class's kernel, the batch split by class.

  Args:
    x: float32 [B, H, W, in].
    kernels: float32 [K, k, k, in, out], one per class (K static).
    labels: int [B] in [0, K).
    conv: (part [b, H, W, in], kernel [k, k, in, out]) -> [b, H * up,
      W * up, out]; None: a stride-1 SAME convolution.
    up: the spatial factor of `conv` (2 for an upsampling convolution).

  Returns:
    float32 [B, H * up, W * up, out].
  """
  conv = conv or _conv
  num_classes = kernels.shape[0]
  labels = tf.cast(labels, tf.int32)
  positions = tf.dynamic_partition(tf.range(tf.shape(x)[0]), labels,
                                   num_classes)
  parts = tf.dynamic_partition(x, labels, num_classes)
  shape = tf.shape(x)
  empty = tf.zeros([0, shape[1] * up, shape[2] * up, kernels.shape[-1]],
                   x.dtype)

  # An empty part's convolution keeps the input's channels (TF 2.21, CPU),
  # and a reshape to the right shape is optimised away in a graph: a class
  # absent from the batch is not convolved at all.
  def convolve(part, kernel):
    return tf.cond(tf.shape(part)[0] > 0, lambda: conv(part, kernel),
                   lambda: empty)
  outputs = [convolve(part, kernels[c]) for c, part in enumerate(parts)]
  return tf.dynamic_stitch(positions, outputs)


def conv_stacked(x: tf.Tensor, kernels: tf.Tensor,
                 labels: tf.Tensor) -> tf.Tensor:
  """Each sample convolved with its class's kernel, all K kernels in one
  convolution. Arguments and result as `conv_partition`."""
  num_classes, k1, k2, fan_in, out = kernels.shape
  stacked = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]),
                       [k1, k2, fan_in, num_classes * out])
  y = _conv(x, stacked)
  shape = tf.shape(y)
  y = tf.reshape(y, [shape[0], shape[1], shape[2], num_classes, out])
  return tf.gather(y, tf.cast(labels, tf.int32), axis=3, batch_dims=1)


def conv_patches(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
  """Each sample convolved with its own kernel, as patches times kernel.

  Args:
    x: float32 [B, H, W, in].
    kernels: float32 [B, k, k, in, out].

  Returns:
    float32 [B, H, W, out] (stride 1, SAME padding).
  """
  _, k1, k2, fan_in, out = kernels.shape
  patches = tf.image.extract_patches(x, [1, k1, k2, 1], [1, 1, 1, 1],
                                     [1, 1, 1, 1], "SAME")
  # Patch values are ordered (row, column, channel), as the kernel's axes.
  flat = tf.reshape(kernels, [-1, k1 * k2 * fan_in, out])
  return tf.einsum("bhwp,bpo->bhwo", patches, flat)


# The formulation "auto" uses for per-class kernels: "partition" was the
# fastest and the smallest of the three in every case measured by
# tools.benchmark_modulation (docs/RESULTS.md: 32 px blocks at batch 10
# and 64 with 2 and 10 classes; a 256 px block at batch 10 with 2 classes).
AUTO_FORMULATION = "partition"


def modulated_conv2d(x: tf.Tensor, kernels: tf.Tensor,
                     labels: tf.Tensor | None = None,
                     formulation: str = "auto") -> tf.Tensor:
  """A convolution whose kernel depends on the sample's class (or sample).

  Args:
    x: float32 [B, H, W, in].
    kernels: float32 [K, k, k, in, out] per class, with `labels`; or
      [B, k, k, in, out] per sample, with labels None.
    labels: int [B] in [0, K), or None.
    formulation: one of FORMULATIONS; per-sample kernels always use
      "patches", and "auto" is `AUTO_FORMULATION`.

  Returns:
    float32 [B, H, W, out] (stride 1, SAME padding).

  Raises:
    ValueError: an unknown formulation.
  """
  if formulation not in FORMULATIONS:
    raise ValueError(f"formulation must be one of {FORMULATIONS}, got "
                     f"{formulation!r}.")
  kernels = precision.like(kernels, x)
  if labels is None:
    return conv_patches(x, kernels)
  if formulation == "auto":
    formulation = AUTO_FORMULATION
  if formulation == "partition":
    return conv_partition(x, kernels, labels)
  if formulation == "stacked":
    return conv_stacked(x, kernels, labels)
  return conv_patches(x, tf.gather(kernels, tf.cast(labels, tf.int32)))
