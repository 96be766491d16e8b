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
"""

from __future__ import annotations

import gin
import tensorflow as tf

from tfgt import objectives
from tfgt.data import augment
from tfgt.errors import UserInputError
from tfgt.layers import batch_norm
from tfgt.models import stylegan

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
    z1, z2: float32 [B, F], the features of the two views of B images (this
      replica's rows).
    off_diagonal_weight: lambda_off (5e-3 in Barlow Twins and the official
      code).
    epsilon: added to the variance.

  Returns:
    The scalar loss, the same on every replica.
  """
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
  images and two views of the fakes (`tfgt.data.augment.random_view`).
  The fakes' term does not reach G (they are held constant), and the G loss
  is the adversarial one.

  The views of a sample are seeded by the bits of its latent z_d (the same
  on any number of replicas and after a resume), so the term's value does
  not depend on the replica split.

  Args:
    r1_gamma, r1_every, augment: as `Adversarial`.
    weight: lambda_contr (the paper: 1e-3; the official code: 1e-2).
    off_diagonal_weight: lambda_off of eq. 7.

  Raises:
    UserInputError: a negative weight, or those of `Adversarial`.
  """

  def __init__(self, r1_gamma: float = 0.0, r1_every: int = 1,
               weight: float = 1e-3, off_diagonal_weight: float = 5e-3,
               augment=None):
    super().__init__(r1_gamma, r1_every, augment)
    if weight < 0 or off_diagonal_weight < 0:
      raise UserInputError(
          "ContrastiveAdversarial.weight and off_diagonal_weight must be >= "
          f"0, got {weight} and {off_diagonal_weight}.")
    self.weight = weight
    self.off_diagonal_weight = off_diagonal_weight

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
    z = [discriminator.features(augment.random_view(images, seeds + salt),
                                training=True) for salt in salts]
    return barlow_twins_loss(z[0], z[1], self.off_diagonal_weight)

  def d_loss(self, batch, generator, discriminator):
    fake = generator((batch.z_d, batch.y_d), training=True)
    loss, parts = self.d_loss_of_fakes(batch, fake, discriminator)
    if not self.weight:
      return loss, parts
    seeds = stylegan.sample_seeds(batch.z_d)
    real = self.contrastive(batch.images, seeds, _VIEW_SALTS[0],
                            discriminator)
    fake = self.contrastive(tf.stop_gradient(fake), seeds, _VIEW_SALTS[1],
                            discriminator)
    parts = dict(parts, contrastive_real=batch.share(real),
                 contrastive_fake=batch.share(fake))
    return loss + batch.share(self.weight * (real + fake)), parts
