"""Seeded image augmentations for contrastive views (SimCLR-style).

`random_view(images, seeds)` draws one view of every image: a random resized
crop (area 8-100 %, aspect 3/4-4/3, resized back), a horizontal flip
(p 0.5), colour jitter (p 0.8: brightness 0.4, contrast 0.4, and for RGB
saturation 0.2 and hue 0.1), grey-scale (RGB, p 0.2) and a Gaussian blur
(p 0.5, sigma 0.1-2 pixels, `blur`): the augmentations of
Barlow Twins that Hyper-Modulation's contrastive discriminator uses
(Laria et al. 2022, section 3.4).

Every random value of a sample comes from its own stateless seed, so a
view depends on the sample and its seed only: not on the batch it is in,
nor on how a batch is split over replicas. Everything is a TensorFlow op
(graph- and replica-safe); the crop and the colour changes pass gradients
to the images.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Random values drawn per sample (see `random_view`).
_NUM_DRAWS = 13


def _draws(seeds: tf.Tensor) -> tf.Tensor:
  """Uniforms [B, _NUM_DRAWS] in [0, 1), one stateless draw per seed [B, 2]."""
  return tf.map_fn(
      lambda s: tf.random.stateless_uniform([_NUM_DRAWS], seed=s),
      tf.cast(seeds, tf.int32), fn_output_signature=tf.float32)


def resized_crop(images: tf.Tensor, area: tf.Tensor, log_ratio: tf.Tensor,
                 u_y: tf.Tensor, u_x: tf.Tensor) -> tf.Tensor:
  """Crops of relative `area` (in (0, 1]) and aspect exp(log_ratio) (width
  over height) at relative offsets u_y, u_x in [0, 1], resized (bilinear)
  to the image size. images [B, H, W, C]; the other arguments [B]."""
  ratio = tf.exp(log_ratio)
  width = tf.minimum(tf.sqrt(area * ratio), 1.0)
  height = tf.minimum(tf.sqrt(area / ratio), 1.0)
  top = u_y * (1.0 - height)
  left = u_x * (1.0 - width)
  boxes = tf.stack([top, left, top + height, left + width], axis=1)
  size = tf.shape(images)[1:3]
  return tf.image.crop_and_resize(images, boxes,
                                  tf.range(tf.shape(images)[0]), size)


def _per_sample(factor: tf.Tensor) -> tf.Tensor:
  return factor[:, None, None, None]


def _grey(images: tf.Tensor) -> tf.Tensor:
  if images.shape[-1] == 1:
    return images
  return tf.image.rgb_to_grayscale(images)


def colour_jitter(images: tf.Tensor, brightness: tf.Tensor,
                  contrast: tf.Tensor, saturation: tf.Tensor,
                  hue: tf.Tensor) -> tf.Tensor:
  """Per-sample colour changes of images in [0, 1], [B, H, W, C]:
  x * brightness, then contrast about the image's mean grey level, then
  (RGB only) saturation about the pixel's grey and a hue rotation by `hue`
  (a fraction of the circle). All factors [B]; the result is clipped to
  [0, 1]."""
  x = images * _per_sample(brightness)
  mean = tf.reduce_mean(_grey(x), axis=[1, 2, 3], keepdims=True)
  x = tf.clip_by_value((x - mean) * _per_sample(contrast) + mean, 0.0, 1.0)
  if images.shape[-1] == 3:
    grey = _grey(x)
    x = tf.clip_by_value((x - grey) * _per_sample(saturation) + grey, 0.0,
                         1.0)
    hsv = tf.image.rgb_to_hsv(x)
    h = tf.math.floormod(hsv[..., :1] + _per_sample(hue), 1.0)
    x = tf.image.hsv_to_rgb(tf.concat([h, hsv[..., 1:]], axis=-1))
  return tf.clip_by_value(x, 0.0, 1.0)


def blur(images: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
  """Separable Gaussian blur with a per-sample sigma [B] (pixels), kernel
  side an odd number near 10 % of the image side (at least 3: 3 at 32 px,
  25 at 256 px); at the borders the weights inside the image are
  renormalised. images [B, H, W, C] with static H, W, C."""
  side = int(images.shape[1])
  k = max(3, 2 * int(0.05 * side) + 1)
  offsets = tf.range(k, dtype=tf.float32) - (k - 1) / 2.0
  weights = tf.exp(-0.5 * tf.square(offsets[None] / sigma[:, None]))
  weights /= tf.reduce_sum(weights, axis=1, keepdims=True)  # [B, k]
  channels = int(images.shape[-1])

  def along(x, sizes):
    ones = tf.ones_like(x[..., :1])
    patches = tf.image.extract_patches(x, sizes, [1, 1, 1, 1], [1, 1, 1, 1],
                                       "SAME")
    mass = tf.image.extract_patches(ones, sizes, [1, 1, 1, 1], [1, 1, 1, 1],
                                    "SAME")
    shape = tf.concat([tf.shape(x)[:3], [k, channels]], axis=0)
    patches = tf.reshape(patches, shape)
    total = tf.einsum("bhwkc,bk->bhwc", patches, weights)
    norm = tf.einsum("bhwk,bk->bhw", mass, weights)[..., None]
    return total / norm
  return along(along(images, [1, 1, k, 1]), [1, k, 1, 1])


def random_view(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
  """One random view of every image (see the module docstring).

  Args:
    images: float32 [B, H, W, C] in [-1, 1], C = 1 or 3, static H, W, C.
    seeds: int32 [B, 2], one stateless seed per image.

  Returns:
    float32 [B, H, W, C] in [-1, 1].
  """
  u = _draws(seeds)
  x = (images + 1.0) / 2.0
  x = resized_crop(x, 0.08 + 0.92 * u[:, 0],
                   math.log(3 / 4) + math.log(16 / 9) * u[:, 1], u[:, 2],
                   u[:, 3])
  x = tf.where(_per_sample(u[:, 4] < 0.5), tf.reverse(x, axis=[2]), x)
  jittered = colour_jitter(x, 0.6 + 0.8 * u[:, 5], 0.6 + 0.8 * u[:, 6],
                           0.8 + 0.4 * u[:, 7], 0.1 * (2.0 * u[:, 8] - 1.0))
  x = tf.where(_per_sample(u[:, 9] < 0.8), jittered, x)
  if x.shape[-1] == 3:
    x = tf.where(_per_sample(u[:, 10] < 0.2),
                 tf.tile(_grey(x), [1, 1, 1, 3]), x)
  x = tf.where(_per_sample(u[:, 11] < 0.5), blur(x, 0.1 + 1.9 * u[:, 12]),
               x)
  return x * 2.0 - 1.0
