"""Seeded image augmentations: contrastive views and D's inputs.

Contrastive views (Hyper-Modulation's contrastive discriminator, Laria et
al. 2022, section 3.4). `contrastive_views(images, seeds_1, seeds_2)`
draws the two views of every image that the official code draws (its
`barlow_twins.DiffTransform`, built with kornia), and they differ:

  both views: [-1, 1] -> [0, 1]; a random resized crop (area 8-100 % of
    the image, uniform; aspect 3/4-4/3, width over height, log-uniform;
    resized back to the image size); a horizontal flip (p 0.5); colour
    jitter (p 0.8: brightness 0.4, contrast 0.4, and for RGB saturation
    0.2 and hue 0.1); grey-scale (RGB, p 0.2); then
  view 1: a 3x3 Gaussian blur, sigma 1.05 pixels, reflected border
    (`fixed_blur`), p 0.5; never solarised;
  view 2: the same blur with p 0.1, then solarisation (`solarise`) with
    p 0.2: with a threshold t uniform in [0, 0.5), every value v >= t
    becomes 1 - v;
  and back to [-1, 1].

`random_view(images, seeds, view)` draws one of them (view 1 or 2), or
`view="symmetric"`: the same crop, flip, jitter and grey-scale, then a
Gaussian blur with p 0.5 and sigma uniform in 0.1-2 pixels (kernel side
about 10 % of the image's, `blur`) and no solarisation, for both views
(tfgt's views before it followed the official asymmetric pair; the draws
are the same as then, so older runs are reproduced).

Where the views differ from the official code: the crop interpolates
bilinearly (the official crop is bicubic; TensorFlow's crop op has no
bicubic mode), places a continuous box rather than whole pixels and
shortens a side longer than the image where kornia draws again; the
colour jitter applies brightness (a factor), contrast (about the image's
mean grey), saturation (about each pixel's grey) and hue in this order,
torchvision's formulas as in Barlow Twins, where kornia 0.5's ColorJitter
(the kornia that the official environment's torch 1.7.1 admits) adds the
brightness, scales contrast about 0, scales the HSV saturation and takes
the four in a random order.
The strengths and probabilities are the official ones.

Every random value of a sample comes from its own stateless seed, so a
view depends on the sample and its seed only: not on the batch it is in,
nor on how a batch is split over replicas; the same seeds give the same
views bit for bit. Everything is a TensorFlow op (graph- and
replica-safe); the crop, the colour changes, the blur and the
solarisation pass gradients to the images.

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
from typing import Sequence, Union

import gin
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError

# A contrastive view: 1 or 2 (the official pair) or "symmetric".
View = Union[int, str]
VIEWS = (1, 2, "symmetric")
# The two views of `contrastive_views`, by name (ContrastiveAdversarial.views).
VIEW_PAIRS = {"official": (1, 2), "symmetric": ("symmetric", "symmetric")}

# The official views' blur and solarisation, with kornia's meaning (its
# source, 0.5.4 to today alike): RandomGaussianBlur((3, 3), (1.05, 1.05))
# blurs with sigma 1.05 on both axes (a pair of sigmas in kornia 0.5, a
# range to draw from later: either way 1.05), its border_type defaulting
# to "reflect" (kornia/filters: torch.nn.functional.pad mode "reflect").
# RandomSolarize(thresholds=(0, 0.5), additions=0): a pair is the range
# of a threshold drawn uniformly per sample (a float x: (0.5 - x,
# 0.5 + x); kornia/augmentation, `_range_bound`), additions 0 the range
# (0, 0); kornia.enhance.solarize adds 0, clamps to [0, 1], then keeps
# v < threshold and maps the rest to 1 - v.
OFFICIAL_BLUR_SIGMA = 1.05
OFFICIAL_BLUR_SIZE = 3
OFFICIAL_SOLARISE_THRESHOLDS = (0.0, 0.5)
# Per official view: the blur's and the solarisation's probabilities.
_OFFICIAL_FINISH = {1: (0.5, 0.0), 2: (0.1, 0.2)}

# Random values drawn per sample: 13 for the symmetric view (as it always
# drew), one more (the solarisation's threshold) for the official views.
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
  renormalised. images [B, H, W, C] with static H, W, C. The blur of the
  symmetric view."""
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


def gaussian_kernel(sigma: float, size: int) -> np.ndarray:
  """The normalised 1-D Gaussian weights exp(-x^2 / (2 sigma^2)) at the
  offsets x = -(size - 1) / 2 ... (size - 1) / 2, float64 [size]."""
  x = np.arange(size) - (size - 1) / 2.0
  weights = np.exp(-np.square(x) / (2.0 * sigma ** 2))
  return weights / weights.sum()


def fixed_blur(images: tf.Tensor, sigma: float = OFFICIAL_BLUR_SIGMA,
               size: int = OFFICIAL_BLUR_SIZE) -> tf.Tensor:
  """A Gaussian blur with one fixed sigma, the blur of the official views.

  The size x size kernel is the outer product of `gaussian_kernel(sigma,
  size)` with itself, and the image is extended at its borders by
  reflection without repeating the edge pixel (a row -1 is row 1):
  kornia's RandomGaussianBlur (kornia.filters.gaussian_blur2d), whose
  default border_type "reflect" pads with torch's "reflect" mode.

  Args:
    images: float32 [B, H, W, C], static C, H and W > size // 2.
    sigma: the standard deviation in pixels, > 0.
    size: the kernel's side, odd.

  Returns:
    float32 [B, H, W, C]: each channel convolved with the kernel.

  Raises:
    UserInputError: an even size or a sigma <= 0.
  """
  if size % 2 != 1 or sigma <= 0:
    raise UserInputError(
        f"fixed_blur: the kernel side must be odd and sigma > 0, got size "
        f"{size} and sigma {sigma}; e.g. size=3, sigma=1.05.")
  weights = gaussian_kernel(sigma, size)
  channels = int(images.shape[-1])
  kernel = np.tile(np.outer(weights, weights)[:, :, None, None],
                   [1, 1, channels, 1])
  pad = size // 2
  x = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]],
             mode="REFLECT")
  return tf.nn.depthwise_conv2d(x, tf.constant(kernel, images.dtype),
                                [1, 1, 1, 1], "VALID")


def solarise(images: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
  """Solarisation of images in [0, 1] at a per-sample threshold.

  As the official RandomSolarize(thresholds=(0, 0.5), additions=0)
  applies it once it has drawn the threshold (see the note on
  OFFICIAL_SOLARISE_THRESHOLDS): clamp to [0, 1], keep every value below
  the threshold and map the others to 1 - value.

  Args:
    images: float32 [B, H, W, C], values in [0, 1] (others are clipped
      first).
    threshold: float32 [B], in [0, 1].

  Returns:
    float32 [B, H, W, C] in [0, 1]: v if v < threshold, else 1 - v.
  """
  x = tf.clip_by_value(images, 0.0, 1.0)
  return tf.where(x < _per_sample(threshold), x, 1.0 - x)


def _check_view(view: View) -> None:
  if isinstance(view, bool) or view not in VIEWS:
    raise UserInputError(
        f"A contrastive view must be one of {list(VIEWS)} (1 and 2: the "
        f"official pair; 'symmetric': the same view twice), got {view!r}.")


def view_parameters(seeds: tf.Tensor, view: View) -> dict[str, tf.Tensor]:
  """The random parameters of one view of every sample, from its seed.

  Args:
    seeds: int32 [B, 2], one stateless seed per sample.
    view: 1 or 2 (the official views) or "symmetric" (module docstring).

  Returns:
    A dict of [B] tensors: "area" (the crop's relative area), "log_ratio"
    (its log aspect), "offset_y", "offset_x" (its relative place, [0, 1]),
    "brightness", "contrast", "saturation", "hue" (the jitter's factors;
    hue a fraction of the circle); the per-sample decisions, bool: "flip",
    "jitter", "grey", "blur", "solarise"; "sigma" (the blur's, pixels) and
    "threshold" (the solarisation's, in [0, 1]).

  Raises:
    UserInputError: an unknown view.
  """
  _check_view(view)
  official = view != "symmetric"
  u = _draws(seeds, _NUM_DRAWS + 1 if official else _NUM_DRAWS)
  params = {
      "area": 0.08 + 0.92 * u[:, 0],
      "log_ratio": math.log(3 / 4) + math.log(16 / 9) * u[:, 1],
      "offset_y": u[:, 2],
      "offset_x": u[:, 3],
      "flip": u[:, 4] < 0.5,
      "brightness": 0.6 + 0.8 * u[:, 5],
      "contrast": 0.6 + 0.8 * u[:, 6],
      "saturation": 0.8 + 0.4 * u[:, 7],
      "hue": 0.1 * (2.0 * u[:, 8] - 1.0),
      "jitter": u[:, 9] < 0.8,
      "grey": u[:, 10] < 0.2,
  }
  if official:
    p_blur, p_solarise = _OFFICIAL_FINISH[view]
    low, high = OFFICIAL_SOLARISE_THRESHOLDS
    params.update(blur=u[:, 11] < p_blur,
                  sigma=tf.fill(tf.shape(u[:, 0]), OFFICIAL_BLUR_SIGMA),
                  solarise=u[:, 12] < p_solarise,
                  threshold=low + (high - low) * u[:, 13])
  else:
    params.update(blur=u[:, 11] < 0.5, sigma=0.1 + 1.9 * u[:, 12],
                  solarise=tf.zeros_like(u[:, 0], tf.bool),
                  threshold=tf.ones_like(u[:, 0]))
  return params


def apply_view(images: tf.Tensor, params: dict[str, tf.Tensor],
               view: View) -> tf.Tensor:
  """One view of every image with given parameters (`view_parameters`).

  Args:
    images: float32 [B, H, W, C] in [-1, 1], C = 1 or 3, static H, W, C
      (H, W >= 2).
    params: as `view_parameters` returns, for the same B.
    view: the view the parameters were drawn for: the official views blur
      with `fixed_blur`, the symmetric one with `blur` at params["sigma"].

  Returns:
    float32 [B, H, W, C] in [-1, 1].

  Raises:
    UserInputError: an unknown view.
  """
  _check_view(view)
  x = (images + 1.0) / 2.0
  x = resized_crop(x, params["area"], params["log_ratio"],
                   params["offset_y"], params["offset_x"])
  x = tf.where(_per_sample(params["flip"]), tf.reverse(x, axis=[2]), x)
  jittered = colour_jitter(x, params["brightness"], params["contrast"],
                           params["saturation"], params["hue"])
  x = tf.where(_per_sample(params["jitter"]), jittered, x)
  if x.shape[-1] == 3:
    x = tf.where(_per_sample(params["grey"]),
                 tf.tile(_grey(x), [1, 1, 1, 3]), x)
  if view == "symmetric":
    x = tf.where(_per_sample(params["blur"]), blur(x, params["sigma"]), x)
  else:
    x = tf.where(_per_sample(params["blur"]), fixed_blur(x), x)
    x = tf.where(_per_sample(params["solarise"]),
                 solarise(x, params["threshold"]), x)
  return x * 2.0 - 1.0


def random_view(images: tf.Tensor, seeds: tf.Tensor,
                view: View) -> tf.Tensor:
  """One random view of every image (see the module docstring).

  Args:
    images: float32 [B, H, W, C] in [-1, 1], C = 1 or 3, static H, W, C
      (H, W >= 2).
    seeds: int32 [B, 2], one stateless seed per image.
    view: 1 or 2 (the official views) or "symmetric".

  Returns:
    float32 [B, H, W, C] in [-1, 1].

  Raises:
    UserInputError: an unknown view.
  """
  return apply_view(images, view_parameters(seeds, view), view)


def contrastive_views(images: tf.Tensor, seeds_1: tf.Tensor,
                      seeds_2: tf.Tensor, views: str = "official"
                      ) -> tuple[tf.Tensor, tf.Tensor]:
  """The two views of every image that the contrastive loss compares.

  Args:
    images: float32 [B, H, W, C] in [-1, 1], C = 1 or 3, static H, W, C
      (H, W >= 2).
    seeds_1, seeds_2: int32 [B, 2], each image's seeds of its two views.
    views: "official" (view 1 and view 2, the official code's asymmetric
      pair) or "symmetric" (the symmetric view twice).

  Returns:
    Two float32 [B, H, W, C] in [-1, 1].

  Raises:
    UserInputError: an unknown `views`.
  """
  if views not in VIEW_PAIRS:
    raise UserInputError(
        f"The contrastive views must be one of {sorted(VIEW_PAIRS)}, got "
        f"{views!r}; 'official' is Hyper-Modulation's asymmetric pair.")
  first, second = VIEW_PAIRS[views]
  return (random_view(images, seeds_1, first),
          random_view(images, seeds_2, second))


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
