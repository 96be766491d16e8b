"""GAN losses. Each returns per-example values [B]; the trainer averages them
over the global batch so that results do not depend on the number of replicas.

Losses are computed in float32 whatever the precision of the models
(`tfgt.precision`): logits are cast to float32 first.
"""

from __future__ import annotations

from typing import Callable

import gin
import tensorflow as tf

from tfgt import precision

LOSSES = ("hinge", "non_saturating")


def _check(name: str) -> None:
  if name not in LOSSES:
    raise ValueError(f"Unknown GAN loss {name!r}: use one of {LOSSES}.")


@gin.configurable(allowlist=["name"])
def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       name: str = "hinge") -> tf.Tensor:
  """D loss per example: hinge (default) or non-saturating (softplus);
  float32 [B]."""
  _check(name)
  real_logits = precision.float32(real_logits)
  fake_logits = precision.float32(fake_logits)
  if name == "hinge":
    return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
  return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


@gin.configurable(allowlist=["name"])
def generator_loss(fake_logits: tf.Tensor, name: str = "hinge") -> tf.Tensor:
  """G loss per example: -D(G(z)) (hinge) or softplus(-D(G(z))); float32
  [B]."""
  _check(name)
  fake_logits = precision.float32(fake_logits)
  if name == "hinge":
    return -fake_logits
  return tf.nn.softplus(-fake_logits)


def r1_penalty(discriminator_fn: Callable[[tf.Tensor], tf.Tensor],
               real_images: tf.Tensor, scale: tf.Tensor | None = None
               ) -> tf.Tensor:
  """R1 (Mescheder et al., 2018): squared gradient norm of D at real images.

  Args:
    discriminator_fn: images [B, H, W, C] -> logits [B].
    real_images: [B, H, W, C].
    scale: None, or a loss scale (float32 scalar > 0, mixed_float16): the
      gradient is taken of scale * D(x) and divided by the scale in float32
      before it is squared, so that it does not underflow in float16.

  Returns:
    ||d D(x) / d x||^2 per example, float32 [B]. Multiply by gamma / 2.
  """
  with tf.GradientTape() as tape:
    tape.watch(real_images)
    total = tf.reduce_sum(precision.float32(discriminator_fn(real_images)))
    if scale is not None:
      total *= scale
  grads = precision.float32(tape.gradient(total, real_images))
  if scale is not None:
    grads /= scale
  return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def path_length_noise(shape: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
  """The random images y of path-length regularisation: N(0, I) /
  sqrt(H * W), one per row, each seeded by its row's seed.

  Args:
    shape: int [4], the images' shape [B, H, W, C].
    seeds: int32 [B, 2].

  Returns:
    float32 [B, H, W, C].
  """
  y = tf.map_fn(lambda seed: tf.random.stateless_normal(shape[1:], seed),
                seeds, fn_output_signature=tf.float32)
  return y / tf.sqrt(tf.cast(shape[1] * shape[2], tf.float32))


def path_lengths(synthesize: Callable[[tf.Tensor], tf.Tensor],
                 ws: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
  """Path lengths of StyleGAN2's path-length regularisation (Karras et al.,
  CVPR 2020, section 3.2, eq. 4): ||J_w^T y||_2 for the images g(w) and
  random images y (`path_length_noise`).

  Args:
    synthesize: per-layer ws [B, L, w_dim] -> images [B, H, W, C].
    ws: [B, L, w_dim] (float32 or the compute dtype).
    seeds: int32 [B, 2], the seeds of y (one per row, so that a row's y
      does not depend on the replica split).

  Returns:
    float32 [B]: sqrt(mean over the L layers of the squared gradient norm
    over w_dim), as NVlabs' StyleGAN2Loss computes it.
  """
  with tf.GradientTape() as tape:
    tape.watch(ws)
    images = precision.float32(synthesize(ws))
    y = path_length_noise(tf.shape(images), seeds)
    total = tf.reduce_sum(images * y)
  # Float32 whatever the dtype of ws (a sum of squares over w_dim).
  grads = precision.float32(tape.gradient(total, ws))
  return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2),
                                axis=1))
