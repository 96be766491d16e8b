"""Hyper-Modulation's contrastive discriminator (Laria et al., CVPRW 2022,
section 3.4, eq. 7): Barlow Twins (Zbontar et al., ICML 2021) on D's
penultimate features of two augmented views of every real and every fake
image, added to D's loss only.

    L_BT = sum_i (1 - C_ii)^2 + lambda_off * sum_{i != j} C_ij^2,
    C = z1n^T z2n / B,

with z1n, z2n the features of the two views, each normalised over the
global batch (mean 0, variance 1 per feature: batch norm without scale or
shift, no projector), B the global batch. With several replicas the
statistics and C are summed across them, so the loss is the one-device
loss.

The two views differ, as in the official code (`views="official"`, the
default; `tfgt.data.augment.contrastive_views`): both take a random
resized crop (area 8-100 %, aspect 3/4-4/3), a horizontal flip (p 0.5),
colour jitter (p 0.8: brightness 0.4, contrast 0.4, and for RGB
saturation 0.2 and hue 0.1) and grey-scale (RGB, p 0.2); then view 1 a
3x3 Gaussian blur (sigma 1.05 pixels, reflected border) with p 0.5 and no
solarisation; view 2 the same blur with p 0.1 and a solarisation with
p 0.2 (threshold uniform in [0, 0.5) on the [0, 1] scale; values at or
above it become 1 - value). `views="symmetric"` gives both views one
distribution instead: the same crop, flip, jitter and grey-scale, then a
blur with p 0.5 and sigma uniform in 0.1-2 pixels and no solarisation (the
views of older runs, drawn exactly as then). tfgt.data.augment lists where
the views differ from the official code (the crop's interpolation, the
jitter's formulas).
"""

from __future__ import annotations

import gin
import tensorflow as tf

from tfgt import objectives
from tfgt import precision
from tfgt.data import augment as augment_lib
from tfgt.errors import UserInputError
from tfgt.layers import batch_norm
from tfgt.models import inputs as inputs_lib

# Per-sample seed offsets of the four views of a step (real / fake, 1 / 2).
_VIEW_SALTS = ((11, 13), (17, 19))


def _global_sum(x: tf.Tensor) -> tf.Tensor:
  if not tf.distribute.has_strategy():
    return x
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def barlow_twins_loss(z1: tf.Tensor, z2: tf.Tensor,
                      off_diagonal_weight: float = 5e-3,
                      epsilon: float = 1e-5) -> tf.Tensor:
  """Eq. 7 over the global batch (see the module docstring).

  Args:
    z1, z2: [B, F], the features of the two views of B images (this
      replica's rows), of any float dtype: the normalisation and the
      cross-correlation are float32 (`tfgt.precision`).
    off_diagonal_weight: lambda_off (5e-3 in Barlow Twins and the official
      code).
    epsilon: added to the variance.

  Returns:
    The scalar loss, the same on every replica.
  """
  z1, z2 = precision.float32(z1), precision.float32(z2)
  count = _global_sum(tf.cast(tf.shape(z1)[0], tf.float32))

  def normalise(z):
    mean, variance = batch_norm.batch_moments(z)
    return (z - mean) * tf.math.rsqrt(variance + epsilon)
  c = _global_sum(tf.matmul(normalise(z1), normalise(z2),
                            transpose_a=True)) / count
  diagonal = tf.linalg.diag_part(c)
  on = tf.reduce_sum(tf.square(1.0 - diagonal))
  off = tf.reduce_sum(tf.square(c)) - tf.reduce_sum(tf.square(diagonal))
  return on + off_diagonal_weight * off


@gin.configurable
class ContrastiveAdversarial(objectives.Adversarial):
  """`objectives.Adversarial` plus lambda_contr times the Barlow Twins loss
  of D's features (`discriminator.features`) on two views of the real
  images and two views of the fakes (`tfgt.data.augment.contrastive_views`,
  see the module docstring). The fakes' term does not reach G (they are
  held constant), and the G loss is the adversarial one.

  The views of a sample are seeded by the bits of its latent z_d (the same
  on any number of replicas and after a resume), so the term's value does
  not depend on the replica split.

  Args:
    r1_gamma, r1_every, augment: as `Adversarial`.
    weight: lambda_contr (the paper: 1e-3; the official code: 1e-2).
    off_diagonal_weight: lambda_off of eq. 7.
    views: "official" (the official code's two different views, the
      default) or "symmetric" (one distribution for both, as older runs).

  Raises:
    UserInputError: a negative weight, unknown views, or those of
      `Adversarial`.
  """

  def __init__(self, r1_gamma: float = 0.0, r1_every: int = 1,
               weight: float = 1e-3, off_diagonal_weight: float = 5e-3,
               augment=None, views: str = "official"):
    super().__init__(r1_gamma, r1_every, augment)
    if weight < 0 or off_diagonal_weight < 0:
      raise UserInputError(
          "ContrastiveAdversarial.weight and off_diagonal_weight must be >= "
          f"0, got {weight} and {off_diagonal_weight}.")
    if views not in augment_lib.VIEW_PAIRS:
      raise UserInputError(
          "ContrastiveAdversarial.views must be one of "
          f"{sorted(augment_lib.VIEW_PAIRS)}, got {views!r}: 'official' for "
          "Hyper-Modulation's two different views, 'symmetric' for the "
          "views of older runs.")
    self.weight = weight
    self.off_diagonal_weight = off_diagonal_weight
    self.views = views

  @property
  def xla_blocker(self) -> str | None:
    blockers = [super().xla_blocker]
    if self.weight:  # The views' crop: CropAndResize has no XLA kernel.
      blockers.append("the contrastive views' random crop has no XLA "
                      "kernel; set ContrastiveAdversarial.weight = 0")
    return "; and ".join(b for b in blockers if b) or None

  def contrastive(self, images: tf.Tensor, seeds: tf.Tensor,
                  salts: tuple[int, int], discriminator) -> tf.Tensor:
    """The Barlow Twins loss of two views of `images` [B, R, R, C]."""
    views = augment_lib.contrastive_views(images, seeds + salts[0],
                                          seeds + salts[1], self.views)
    z = [discriminator.features(v, training=True) for v in views]
    return barlow_twins_loss(z[0], z[1], self.off_diagonal_weight)

  def d_loss(self, batch, generator, discriminator):
    fake = generator((batch.z_d, batch.y_d), training=True)
    loss, parts = self.d_loss_of_fakes(batch, fake, discriminator)
    if not self.weight:
      return loss, parts
    seeds = inputs_lib.sample_seeds(batch.z_d)
    real = self.contrastive(batch.images, seeds, _VIEW_SALTS[0],
                            discriminator)
    fake = self.contrastive(tf.stop_gradient(fake), seeds, _VIEW_SALTS[1],
                            discriminator)
    parts = dict(parts, contrastive_real=batch.share(real),
                 contrastive_fake=batch.share(fake))
    return loss + batch.share(self.weight * (real + fake)), parts
