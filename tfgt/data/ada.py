"""StyleGAN2-ADA's augmentation pipeline (Karras et al., NeurIPS 2020,
section 2 and appendix B) for D's inputs, at a given probability p.

Every transformation of the chosen groups is applied to each image
independently with probability p (`ADAugment.p`), as StyleGAN2-ADA's
`AugmentPipe` does, in its order:

  blit   xflip (a horizontal flip), rotate90 (a multiple of 90 degrees),
         xint (an integer translation of up to `xint_max` of the side);
  geom   scale (isotropic, log2-normal), rotate (arbitrary; applied as two
         rotations, each with probability 1 - sqrt(1 - p), around the
         anisotropic scaling), aniso (anisotropic scaling), xfrac
         (a fractional translation, normal);
  color  brightness (an added constant), contrast (a factor), lumaflip (a
         reflection of the colour around the luma axis), hue (a rotation
         around it), saturation (a scaling away from it).

The geometric transformations are composed into one affine map per image
and applied once, with reflection at the borders (the edge pixel not
repeated, as NVlabs' reflect padding); the colour ones into one 4x4 matrix
on (r, g, b, 1) (a greyscale image takes the mean of its rows, as the NVlabs
pipeline does). Where this departs from NVlabs': the image is sampled
bilinearly (a gather of the four neighbours, whose gradient is the exact
adjoint: G's loss and R1 differentiate through it) instead of after an
upsampling with a wavelet filter, so rotations and fractional translations
blur a little more than there. p is what the
augmentation leaks: StyleGAN2-ADA reports that below about p = 0.8 the
generator does not learn the augmentations (section 2.3).

Adaptive p (section 3, `ADAugment.target`): D's outputs on real images
measure its overfitting, r_t = E[sign(D(x_real))]; every `interval` D
batches p moves by sign(r_t - target) * batch * interval / (speed_kimg *
1000) (NVlabs' defaults: target 0.6, interval 4, 500 kimg for p to go from
0 to 1) and is kept >= 0 (not clipped at 1, as NVlabs'; a p above 1
applies every transformation). The signs are those of the main
D pass of each D batch (NVlabs also counts its lazy R1 pass). p and the
running sum of the signs are variables (`AdaptiveState`) that the trainer
checkpoints with the run, the same on every replica (each replica adds its
batch's mean sign; the replicas' additions are averaged).

Every draw is seeded per image (the image's seed [2], as DiffAugment's),
so an image's augmentation does not depend on the batch or the replica
split and repeats after a resume. The result is differentiable with
respect to the images (the G loss and the R1 penalty go through it).
"""

from __future__ import annotations

import math
from typing import Sequence

import gin
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError

# NVlabs' ADA defaults: target r_t, D batches between adjustments, and the
# thousands of real images over which p can go from 0 to 1.
DEFAULT_TARGET = 0.6
DEFAULT_INTERVAL = 4
DEFAULT_SPEED_KIMG = 500.0


class AdaptiveState(tf.Module):
  """The adaptive p and what adjusts it: `p` (float32 scalar in [0, 1]),
  `sign_sum` (the sum of the D batches' mean sign of D(real) since the last
  adjustment) and `batches` (how many), all float32, averaged across
  replicas (each replica writes the same values)."""

  def __init__(self, initial_p: float):
    super().__init__(name="ada")
    mean = tf.VariableAggregation.MEAN
    self.p = tf.Variable(initial_p, dtype=tf.float32, trainable=False,
                         aggregation=mean, name="p")
    self.sign_sum = tf.Variable(0.0, trainable=False, aggregation=mean,
                                name="sign_sum")
    self.batches = tf.Variable(0.0, trainable=False, aggregation=mean,
                               name="batches")

GROUPS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
# StyleGAN2-ADA's named pipelines (its --augpipe).
PIPELINES = {"blit": ("blit",), "geom": ("geom",), "color": ("color",),
             "bg": ("blit", "geom"), "bgc": ("blit", "geom", "color")}
# Uniform draws per image: a decision and up to 2 values for each of the
# 12 transformations, the second rotation included.
_NUM_DRAWS = 40
# The luma axis of (r, g, b), unit length.
_LUMA = np.array([1.0, 1.0, 1.0]) / math.sqrt(3.0)


def _normal(u: tf.Tensor) -> tf.Tensor:
  """A standard normal value of a uniform in (0, 1) (inverse CDF)."""
  u = tf.clip_by_value(u, 1e-7, 1.0 - 1e-7)
  return math.sqrt(2.0) * tf.math.erfinv(2.0 * u - 1.0)


def _matrices(rows: list[list[tf.Tensor]]) -> tf.Tensor:
  """[B, n, n] of n x n entries, each a scalar or a [B] tensor."""
  batch = next(tf.shape(v)[0] for row in rows for v in row
               if isinstance(v, tf.Tensor) and v.shape.rank == 1)
  return tf.stack([tf.stack([v if isinstance(v, tf.Tensor) and
                             v.shape.rank == 1
                             else tf.fill([batch], tf.cast(v, tf.float32))
                             for v in row], axis=-1) for row in rows], axis=1)


def _translate(tx, ty):
  return _matrices([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scale(sx, sy):
  return _matrices([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def _rotate(theta):
  c, s = tf.cos(theta), tf.sin(theta)
  return _matrices([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@gin.configurable
class ADAugment:
  """StyleGAN2-ADA's augmentation of D's inputs at probability p (see the
  module docstring), for `objectives.Adversarial.augment`; NVlabs'
  `--aug=fixed --p=P --augpipe=PIPELINE`. The strengths are StyleGAN2-ADA's
  defaults.

  Args:
    p: in [0, 1], the probability of each transformation per image.
    pipeline: one of PIPELINES ("bgc", StyleGAN2-ADA's default), or a
      sequence of GROUPS names.
    xint_max: the integer translation's range, a fraction of the side.
    scale_std, aniso_std: log2 standard deviations of the scalings.
    rotate_max: the arbitrary rotation's range, a fraction of pi.
    xfrac_std: the fractional translation's standard deviation, a fraction
      of the side.
    brightness_std: of the added brightness ([-1, 1] images: NVlabs' 0.2
      on [-1, 1] as well).
    contrast_std, saturation_std: log2 standard deviations.
    hue_max: the hue rotation's range, a fraction of pi.
    target: None (p stays `p`), or the r_t that the adaptive p aims at, in
      (0, 1) (NVlabs: 0.6); p then starts at `p`.
    interval: D batches between adjustments of p, >= 1.
    speed_kimg: > 0, thousands of real images over which p can go from 0
      to 1.

  Raises:
    UserInputError: p outside [0, 1], an unknown pipeline or group, a
      negative strength, or an adaptive setting out of its range.
  """

  def __init__(self, p: float = 0.0, pipeline: str | Sequence[str] = "bgc",
               xint_max: float = 0.125, scale_std: float = 0.2,
               rotate_max: float = 1.0, aniso_std: float = 0.2,
               xfrac_std: float = 0.125, brightness_std: float = 0.2,
               contrast_std: float = 0.5, hue_max: float = 1.0,
               saturation_std: float = 1.0, target: float | None = None,
               interval: int = DEFAULT_INTERVAL,
               speed_kimg: float = DEFAULT_SPEED_KIMG):
    if not 0.0 <= p <= 1.0:
      raise UserInputError(f"ADAugment.p must be in [0, 1], got {p}.")
    if target is not None and not 0.0 < target < 1.0:
      raise UserInputError(f"ADAugment.target must be None or in (0, 1) "
                           f"(NVlabs: {DEFAULT_TARGET}), got {target}.")
    if isinstance(interval, bool) or not isinstance(interval, int) or (
        interval < 1):
      raise UserInputError(f"ADAugment.interval must be an int >= 1, got "
                           f"{interval!r}.")
    if not speed_kimg > 0:
      raise UserInputError(f"ADAugment.speed_kimg must be > 0, got "
                           f"{speed_kimg}.")
    self.target = target
    self.interval = interval
    self.speed_kimg = float(speed_kimg)
    self._state = None
    if isinstance(pipeline, str):
      if pipeline not in PIPELINES:
        raise UserInputError(f"ADAugment.pipeline: unknown {pipeline!r}; use "
                             f"one of {sorted(PIPELINES)} or a list of "
                             f"{sorted(GROUPS)}.")
      pipeline = PIPELINES[pipeline]
    unknown = [g for g in pipeline if g not in GROUPS]
    if unknown:
      raise UserInputError(f"ADAugment.pipeline: unknown groups {unknown}; "
                           f"use a subset of {sorted(GROUPS)}.")
    strengths = dict(xint_max=xint_max, scale_std=scale_std,
                     rotate_max=rotate_max, aniso_std=aniso_std,
                     xfrac_std=xfrac_std, brightness_std=brightness_std,
                     contrast_std=contrast_std, hue_max=hue_max,
                     saturation_std=saturation_std)
    for name, value in strengths.items():
      if value < 0:
        raise UserInputError(f"ADAugment.{name} must be >= 0, got {value}.")
    self.p = float(p)
    self.transformations = tuple(t for g in pipeline for t in GROUPS[g])
    self.__dict__.update(strengths)

  @property
  def adaptive(self) -> bool:
    return self.target is not None

  def state(self) -> dict[str, AdaptiveState]:
    """{"ada": the adaptive state} (created on the first call: call it
    under the strategy's scope), or {} at a fixed p."""
    if not self.adaptive:
      return {}
    if self._state is None:
      self._state = AdaptiveState(self.p)
    return {"ada": self._state}

  def current_p(self) -> tf.Tensor:
    """The p of this step: float32 scalar."""
    if self.adaptive:
      return tf.convert_to_tensor(self.state()["ada"].p)
    return tf.constant(self.p, tf.float32)

  def observe(self, real_logits: tf.Tensor, step_index: tf.Tensor,
              global_batch_size: int) -> tf.Tensor:
    """Adds a D batch's mean sign of D(real) [B] and, on every
    `interval`-th D batch (`step_index` + 1 divisible by it), adjusts p
    and starts the sum again. Returns p after the batch (float32 scalar).
    Written without conditionals, so that it runs on several replicas."""
    state = self.state()["ada"]
    sign = tf.reduce_mean(tf.sign(tf.cast(real_logits, tf.float32)))
    total = state.sign_sum.assign_add(sign)
    batches = state.batches.assign_add(1.0)
    adjust = tf.equal((step_index + 1) % self.interval, 0)
    r_t = total / tf.maximum(batches, 1.0)
    step = (tf.sign(r_t - self.target) * global_batch_size * self.interval
            / (self.speed_kimg * 1000.0))
    p = state.p.assign(tf.where(adjust, tf.maximum(state.p + step, 0.0),
                                state.p))
    with tf.control_dependencies([p]):
      state.sign_sum.assign(tf.where(adjust, 0.0, total))
      state.batches.assign(tf.where(adjust, 0.0, batches))
    return tf.identity(p)

  def __call__(self, images: tf.Tensor, seeds: tf.Tensor,
               p: tf.Tensor | float | None = None) -> tf.Tensor:
    """Augments images float32 [B, H, W, C] (static H, W and C in (1, 3);
    values in [-1, 1]) with one stateless seed per image, int32 [B, 2], at
    probability `p` (None: the current p, `current_p`).
    Returns float32 [B, H, W, C]."""
    p = tf.cast(self.current_p() if p is None else p, tf.float32)
    u = tf.map_fn(lambda s: tf.random.stateless_uniform([_NUM_DRAWS], seed=s),
                  tf.cast(seeds, tf.int32), fn_output_signature=tf.float32)
    draws = iter(tf.unstack(u, axis=1))
    x = tf.convert_to_tensor(images, tf.float32)
    geometric = self._geometric(draws, p, x)
    if geometric is not None:
      x = warp(x, geometric)
    colour = self._colour(draws, p, x)
    if colour is not None:
      x = self._recolour(x, colour)
    return x

  def _geometric(self, draws, p, x) -> tf.Tensor | None:
    """The inverse map (output -> input, centred pixel units) [B, 3, 3] of
    the geometric transformations, or None without any."""
    height, width = float(x.shape[1]), float(x.shape[2])
    transforms = set(self.transformations)
    g = None

    def then(matrix):
      nonlocal g
      g = matrix if g is None else tf.matmul(g, matrix)

    def chosen(probability):
      return next(draws) < probability

    # Each step composes the inverse of its transformation (NVlabs'
    # scale2d_inv, rotate2d_inv, translate2d_inv), so that g maps an output
    # pixel to the input pixel it reads.
    if "xflip" in transforms:
      flip = tf.where(chosen(p), tf.floor(next(draws) * 2.0), 0.0)
      then(_scale(1.0 - 2.0 * flip, tf.ones_like(flip)))
    if "rotate90" in transforms:
      quarter = tf.where(chosen(p), tf.floor(next(draws) * 4.0), 0.0)
      then(_rotate(math.pi / 2.0 * quarter))
    if "xint" in transforms:
      on = chosen(p)
      tx = tf.where(on, (next(draws) * 2.0 - 1.0) * self.xint_max, 0.0)
      ty = tf.where(on, (next(draws) * 2.0 - 1.0) * self.xint_max, 0.0)
      then(_translate(-tf.round(tx * width), -tf.round(ty * height)))
    if "scale" in transforms:
      s = tf.where(chosen(p), tf.pow(2.0, _normal(next(draws)) *
                                     self.scale_std), 1.0)
      then(_scale(1.0 / s, 1.0 / s))
    # Two rotations, each with this probability: one of them happens with
    # probability p.
    rotation = 1.0 - tf.sqrt(tf.maximum(1.0 - p, 0.0))
    if "rotate" in transforms:
      theta = tf.where(chosen(rotation), (next(draws) * 2.0 - 1.0) *
                       math.pi * self.rotate_max, 0.0)
      then(_rotate(theta))
    if "aniso" in transforms:
      s = tf.where(chosen(p), tf.pow(2.0, _normal(next(draws)) *
                                     self.aniso_std), 1.0)
      then(_scale(1.0 / s, s))
    if "rotate" in transforms:
      theta = tf.where(chosen(rotation), (next(draws) * 2.0 - 1.0) *
                       math.pi * self.rotate_max, 0.0)
      then(_rotate(theta))
    if "xfrac" in transforms:
      on = chosen(p)
      tx = tf.where(on, _normal(next(draws)) * self.xfrac_std, 0.0)
      ty = tf.where(on, _normal(next(draws)) * self.xfrac_std, 0.0)
      then(_translate(-tx * width, -ty * height))
    return g

  def _colour(self, draws, p, x) -> tf.Tensor | None:
    """The colour map [B, 4, 4] on (r, g, b, 1), or None without any."""
    transforms = set(self.transformations)
    c = None
    v = tf.constant(np.append(_LUMA, 0.0), tf.float32)
    outer = v[:, None] * v[None, :]

    def then(matrix):
      nonlocal c
      c = matrix if c is None else tf.matmul(matrix, c)

    def chosen():
      return next(draws) < p

    eye = tf.eye(4)
    if "brightness" in transforms:
      b = tf.where(chosen(), _normal(next(draws)) * self.brightness_std, 0.0)
      then(eye[None] + b[:, None, None] * tf.constant(
          [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
          tf.float32)[None])
    if "contrast" in transforms:
      s = tf.where(chosen(), tf.pow(2.0, _normal(next(draws)) *
                                    self.contrast_std), 1.0)
      then(tf.linalg.diag(tf.stack([s, s, s, tf.ones_like(s)], axis=1)))
    if "lumaflip" in transforms:
      flip = tf.where(chosen(), tf.floor(next(draws) * 2.0), 0.0)
      then(eye[None] - 2.0 * flip[:, None, None] * outer[None])
    if "hue" in transforms and int(x.shape[-1]) == 3:
      theta = tf.where(chosen(), (next(draws) * 2.0 - 1.0) * math.pi *
                       self.hue_max, 0.0)
      then(_rotation_about_luma(theta))
    if "saturation" in transforms and int(x.shape[-1]) == 3:
      s = tf.where(chosen(), tf.pow(2.0, _normal(next(draws)) *
                                    self.saturation_std), 1.0)
      # The homogeneous corner stays 1.
      corner = tf.constant(np.diag([0.0, 0.0, 0.0, 1.0]), tf.float32)
      then(outer[None] + (eye - outer - corner)[None] * s[:, None, None] +
           corner[None])
    return c

  @staticmethod
  def _recolour(x: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """(r, g, b, 1) -> c (r, g, b, 1) per pixel; a greyscale image takes
    the mean of c's colour rows (NVlabs' rule)."""
    if int(x.shape[-1]) == 3:
      return (tf.einsum("bhwc,boc->bhwo", x, c[:, :3, :3]) +
              c[:, None, None, :3, 3])
    rows = tf.reduce_mean(c[:, :3, :], axis=1)  # [B, 4]
    gain = tf.reduce_sum(rows[:, :3], axis=1)
    return x * gain[:, None, None, None] + rows[:, 3][:, None, None, None]


def _reflect(index: tf.Tensor, size: int) -> tf.Tensor:
  """Integer pixel indices reflected into [0, size) without repeating the
  edge (..., 2, 1, | 0, 1, ..., size - 1, | size - 2, ...)."""
  if size == 1:
    return tf.zeros_like(index)
  period = 2 * (size - 1)
  index = tf.math.floormod(index, period)
  return tf.where(index > size - 1, period - index, index)


def warp(images: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
  """Bilinear resampling of images [B, H, W, C] (static H, W) where output
  pixel (x, y) reads the input at g (x - cx, y - cy, 1) + (cx, cy), with g
  [B, 3, 3] an affine map in pixel units centred on the image (cx = (W -
  1) / 2, cy = (H - 1) / 2), the borders reflected. A gather of the four
  neighbours: linear in the images, and its gradient is its exact adjoint.
  """
  height, width = int(images.shape[1]), int(images.shape[2])
  cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
  ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  coords = tf.constant(np.stack([xs.ravel() - cx, ys.ravel() - cy,
                                 np.ones(height * width)]), tf.float32)
  source = tf.einsum("bij,jn->bin", tf.cast(g, tf.float32), coords)
  u = source[:, 0] / source[:, 2] + cx  # [B, H * W]
  v = source[:, 1] / source[:, 2] + cy
  u0, v0 = tf.floor(u), tf.floor(v)
  fu, fv = (u - u0)[..., None], (v - v0)[..., None]
  u0, v0 = tf.cast(u0, tf.int32), tf.cast(v0, tf.int32)

  def at(dv, du):
    rows = _reflect(v0 + dv, height)
    cols = _reflect(u0 + du, width)
    return tf.gather_nd(images, tf.stack([rows, cols], axis=-1),
                        batch_dims=1)  # [B, H * W, C]

  out = ((1.0 - fv) * ((1.0 - fu) * at(0, 0) + fu * at(0, 1)) +
         fv * ((1.0 - fu) * at(1, 0) + fu * at(1, 1)))
  return tf.reshape(out, tf.shape(images))


def _rotation_about_luma(theta: tf.Tensor) -> tf.Tensor:
  """[B, 4, 4]: a rotation by theta [B] around the luma axis (Rodrigues)."""
  a = _LUMA
  k = tf.constant([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]],
                   [-a[1], a[0], 0.0]], tf.float32)
  outer = tf.constant(np.outer(a, a), tf.float32)
  c = tf.cos(theta)[:, None, None]
  s = tf.sin(theta)[:, None, None]
  r = c * tf.eye(3)[None] + s * k[None] + (1.0 - c) * outer[None]
  r = tf.pad(r, [[0, 0], [0, 1], [0, 1]])
  return r + tf.pad(tf.ones([tf.shape(theta)[0], 1, 1]),
                    [[0, 0], [3, 0], [3, 0]])
