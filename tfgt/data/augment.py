"""Seeded image augmentations: contrastive views and D's inputs.

Contrastive views (SimCLR-style). `random_view(images, seeds)` draws one
view of every image: a random resized crop (area 8-100 %, aspect 3/4-4/3,
resized back), a horizontal flip (p 0.5), colour jitter (p 0.8:
brightness 0.4, contrast 0.4, and for RGB saturation 0.2 and hue 0.1),
grey-scale (RGB, p 0.2) and a Gaussian blur (p 0.5, sigma 0.1-2 pixels,
`blur`): the augmentations of Barlow Twins that Hyper-Modulation's
contrastive discriminator uses (Laria et al. 2022, section 3.4).

Every random value of a sample comes from its own stateless seed, so a
view depends on the sample and its seed only: not on the batch it is in,
nor on how a batch is split over replicas. Everything is a TensorFlow op
(graph- and replica-safe); the crop and the colour changes pass gradients
to the images.

Differentiable augmentation of D's inputs (DiffAugment, Zhao et al.,
NeurIPS 2020, section 3). `DiffAugment()(images, seeds)` applies the same
family of random transformations T to real and generated images before D,
in D's and in G's loss, so that D sees more varied data while G is still
trained to match the un-augmented distribution (T is differentiable, and
G's images are never shown augmented to anyone else). Policies, each on
every image: "color" (brightness, saturation for RGB, contrast),
"translation" (integer shift, zero fill) and "cutout" (a zeroed square).
Every random value comes from the sample's own stateless seed, as above.
"""

from __future__ import annotations

import math
from typing import Sequence

import gin
import tensorflow as tf

from tfgt.errors import UserInputError

# Random values drawn per sample (see `random_view`).
_NUM_DRAWS = 13


def _draws(seeds: tf.Tensor, count: int = _NUM_DRAWS) -> tf.Tensor:
  """Uniforms [B, count] in [0, 1), one stateless draw per seed [B, 2]."""
  return tf.map_fn(
      lambda s: tf.random.stateless_uniform([count], seed=s),
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


def translate(images: tf.Tensor, shift_y: tf.Tensor,
              shift_x: tf.Tensor) -> tf.Tensor:
  """Shifts every image by whole pixels, filling with zeros.

  Args:
    images: float32 [B, H, W, C], static H and W.
    shift_y, shift_x: int32 [B], pixels down and right (negative: up and
      left). A shift of the image's size or more leaves zeros.

  Returns:
    float32 [B, H, W, C]: out[b, i, j] = images[b, i - shift_y[b],
    j - shift_x[b]] where that pixel exists, else 0. Gradients reach the
    pixels that stay in the image.
  """
  def along(x, shift, size, axis):
    source = tf.range(size)[None, :] - shift[:, None]  # [B, size]
    inside = (source >= 0) & (source < size)
    x = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=axis,
                  batch_dims=1)
    shape = [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1]
    return x * tf.reshape(tf.cast(inside, x.dtype), shape)
  height, width = int(images.shape[1]), int(images.shape[2])
  x = along(images, tf.cast(shift_y, tf.int32), height, 1)
  return along(x, tf.cast(shift_x, tf.int32), width, 2)


def cutout(images: tf.Tensor, top: tf.Tensor, left: tf.Tensor,
           size: int) -> tf.Tensor:
  """Sets a size x size square of every image to 0.

  Args:
    images: float32 [B, H, W, C], static H and W.
    top, left: int32 [B], the square's first row and column; the square may
      reach past the borders (only its part inside is zeroed).
    size: the square's side in pixels, >= 0.

  Returns:
    float32 [B, H, W, C].
  """
  def outside(start, length):
    i = tf.range(length)[None, :]
    start = tf.cast(start, tf.int32)[:, None]
    return (i < start) | (i >= start + size)  # [B, length]
  rows = outside(top, int(images.shape[1]))[:, :, None, None]
  cols = outside(left, int(images.shape[2]))[:, None, :, None]
  return images * tf.cast(rows | cols, images.dtype)


def color(images: tf.Tensor, brightness: tf.Tensor, saturation: tf.Tensor,
          contrast: tf.Tensor) -> tf.Tensor:
  """DiffAugment's colour transform of images in [-1, 1], [B, H, W, C]:
  adds `brightness`, scales each pixel's deviation from its channel mean by
  `saturation` (RGB only) and the deviation from the image's mean by
  `contrast`. All factors float32 [B]; no clipping (the result may leave
  [-1, 1], as in DiffAugment)."""
  x = images + _per_sample(brightness)
  if images.shape[-1] == 3:
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * _per_sample(saturation) + mean
  mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
  return (x - mean) * _per_sample(contrast) + mean


@gin.configurable
class DiffAugment:
  """D's input augmentation (see the module docstring), for
  `objectives.Adversarial.augment`.

  With u ~ U[0, 1) per image and per value: brightness u - 0.5, saturation
  2u, contrast u + 0.5 (the ranges of DiffAugment's "color"); translation
  by a whole number of pixels in [-s, s] on each axis, s = round(ratio *
  side); cutout of a square of side k = round(ratio * the shorter side)
  whose first row (column) is drawn uniformly from -floor(k/2) to
  side - ceil(k/2). A policy given twice reuses its random values. The policies run in the order given. Compiled with XLA
  (`train.use_xla`) the stateless draws take other values than without it:
  each is seeded and repeatable, but the two do not match.

  Args:
    policy: a subset of ("color", "translation", "cutout"), or a
      comma-separated string of them; empty turns the augmentation off.
    translation: the largest shift as a fraction of the side, in [0, 1].
    cutout: the square's side as a fraction of the image's side, in [0, 1].

  Raises:
    UserInputError: an unknown policy or a ratio outside [0, 1].
  """

  POLICIES = ("color", "translation", "cutout")

  def __init__(self, policy: str | Sequence[str] = POLICIES,
               translation: float = 0.125, cutout: float = 0.5):
    if isinstance(policy, str):
      policy = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in policy if p not in self.POLICIES]
    if unknown:
      raise UserInputError(
          f"DiffAugment.policy: unknown {unknown}; use a subset of "
          f"{list(self.POLICIES)}, e.g. 'color,translation,cutout'.")
    for name, ratio in (("translation", translation), ("cutout", cutout)):
      if not 0.0 <= ratio <= 1.0:
        raise UserInputError(f"DiffAugment.{name} must be a fraction of the "
                             f"image side in [0, 1], got {ratio}.")
    self.policy = tuple(policy)
    self.translation = translation
    self.cutout = cutout

  def __call__(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Augments images float32 [B, H, W, C] (static H, W, C; values as D
    takes them, [-1, 1]) with one stateless seed per image, int32 [B, 2].
    Returns float32 [B, H, W, C]."""
    if not self.policy:
      return images
    u = _draws(seeds, 7)
    height, width = int(images.shape[1]), int(images.shape[2])
    x = images
    for name in self.policy:
      if name == "color":
        x = color(x, u[:, 0] - 0.5, 2.0 * u[:, 1], u[:, 2] + 0.5)
      elif name == "translation":
        def shift(v, side):
          s = int(self.translation * side + 0.5)
          return tf.minimum(tf.cast(tf.floor(v * (2 * s + 1)), tf.int32),
                            2 * s) - s
        x = translate(x, shift(u[:, 3], height), shift(u[:, 4], width))
      else:
        side = int(self.cutout * min(height, width) + 0.5)
        def start(v, length):
          # length + 1 places for an even side: the square's first row
          # runs from -side/2 to length - side/2, symmetric about the
          # image (as DiffAugment's own cutout).
          places = length + 1 - side % 2
          offset = tf.minimum(tf.cast(tf.floor(v * places), tf.int32),
                              places - 1)
          return offset - side // 2
        x = cutout(x, start(u[:, 5], height), start(u[:, 6], width), side)
    return x
