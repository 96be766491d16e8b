"""GAN losses. Each returns per-example values [B]; the trainer averages them
over the global batch so that results do not depend on the number of replicas.
"""

from __future__ import annotations

from typing import Callable

import gin
import tensorflow as tf

LOSSES = ("hinge", "non_saturating")


def _check(name: str) -> None:
  if name not in LOSSES:
    raise ValueError(f"Unknown GAN loss {name!r}: use one of {LOSSES}.")


@gin.configurable(allowlist=["name"])
def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       name: str = "hinge") -> tf.Tensor:
  """D loss per example: hinge (default) or non-saturating (softplus)."""
  _check(name)
  if name == "hinge":
    return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
  return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


@gin.configurable(allowlist=["name"])
def generator_loss(fake_logits: tf.Tensor, name: str = "hinge") -> tf.Tensor:
  """G loss per example: -D(G(z)) (hinge) or softplus(-D(G(z)))."""
  _check(name)
  if name == "hinge":
    return -fake_logits
  return tf.nn.softplus(-fake_logits)


def r1_penalty(discriminator_fn: Callable[[tf.Tensor], tf.Tensor],
               real_images: tf.Tensor) -> tf.Tensor:
  """R1 (Mescheder et al., 2018): squared gradient norm of D at real images.

  Args:
    discriminator_fn: images [B, H, W, C] -> logits [B].
    real_images: [B, H, W, C].

  Returns:
    ||d D(x) / d x||^2 per example, [B]. Multiply by gamma / 2.
  """
  with tf.GradientTape() as tape:
    tape.watch(real_images)
    total = tf.reduce_sum(discriminator_fn(real_images))
  grads = tape.gradient(total, real_images)
  return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])
