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
and applied once, with reflection at the borders; the colour ones into one
4x4 matrix on (r, g, b, 1) (a greyscale image takes the mean of its rows,
as the NVlabs pipeline does). Where this departs from NVlabs': the image is
sampled bilinearly (`tf.raw_ops.ImageProjectiveTransformV3`, REFLECT)
instead of after an upsampling with a wavelet filter, so rotations and
fractional translations blur a little more than there. p is what the
augmentation leaks: StyleGAN2-ADA reports that below about p = 0.8 the
generator does not learn the augmentations (section 2.3).

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

  Raises:
    UserInputError: p outside [0, 1], an unknown pipeline or group, or a
      negative strength.
  """

  def __init__(self, p: float = 0.0, pipeline: str | Sequence[str] = "bgc",
               xint_max: float = 0.125, scale_std: float = 0.2,
               rotate_max: float = 1.0, aniso_std: float = 0.2,
               xfrac_std: float = 0.125, brightness_std: float = 0.2,
               contrast_std: float = 0.5, hue_max: float = 1.0,
               saturation_std: float = 1.0):
    if not 0.0 <= p <= 1.0:
      raise UserInputError(f"ADAugment.p must be in [0, 1], got {p}.")
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

  def __call__(self, images: tf.Tensor, seeds: tf.Tensor,
               p: tf.Tensor | float | None = None) -> tf.Tensor:
    """Augments images float32 [B, H, W, C] (static H, W and C in (1, 3);
    values in [-1, 1]) with one stateless seed per image, int32 [B, 2], at
    probability `p` (None: `self.p`; a scalar tensor for an adaptive p).
    Returns float32 [B, H, W, C]."""
    p = tf.cast(self.p if p is None else p, tf.float32)
    u = tf.map_fn(lambda s: tf.random.stateless_uniform([_NUM_DRAWS], seed=s),
                  tf.cast(seeds, tf.int32), fn_output_signature=tf.float32)
    draws = iter(tf.unstack(u, axis=1))
    x = tf.convert_to_tensor(images, tf.float32)
    geometric = self._geometric(draws, p, x)
    if geometric is not None:
      x = self._warp(x, geometric)
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

  @staticmethod
  def _warp(x: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
    """x sampled at g's map of each output pixel (bilinear, reflected)."""
    height, width = int(x.shape[1]), int(x.shape[2])
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    centre = tf.constant([[[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]]])
    back = tf.constant([[[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]]])
    m = tf.matmul(tf.matmul(centre, g), back)
    m = m / m[:, 2:3, 2:3]
    transforms = tf.reshape(m, [-1, 9])[:, :8]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=[height, width],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")

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
