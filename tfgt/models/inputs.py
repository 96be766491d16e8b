"""What a generator's inputs mean, for every architecture.

A tfgt generator is called on (z, y): z float32 [B, dim_z], and y either int
labels [B] or class weights [B, num_classes] (a one-hot row selects a class,
a soft row mixes classes: the class interpolations of `tfgt.sample`). The
helpers here turn these inputs into what layers use; they belong to no
architecture, so BigGAN, StyleGAN and the hyper-modulated StyleGAN, the
objectives and the methods import them from here.
"""

import tensorflow as tf


def class_weights(y: tf.Tensor, num_classes: int) -> tf.Tensor:
  """Class weights of y: float32 [B, num_classes].

  Args:
    y: int labels [B] in [0, num_classes) (made one-hot), or float class
      weights [B, num_classes] (passed on, as float32).
    num_classes: the generator's classes.

  Raises:
    ValueError: float weights that are not of rank 2.
  """
  y = tf.convert_to_tensor(y)
  if y.dtype.is_integer:
    return tf.one_hot(y, num_classes, dtype=tf.float32)
  if y.shape.rank != 2:
    raise ValueError(f"Class weights must have shape [batch, {num_classes}], "
                     f"got {y.shape}.")
  return tf.cast(y, tf.float32)


def read_at_classes(outputs: tf.Tensor, y: tf.Tensor,
                    num_classes: int) -> tf.Tensor:
  """A discriminator's per-class outputs float32 [B, num_classes] read at
  labels int [B] or mixed by class weights [B, num_classes]
  (`class_weights`): float32 [B]."""
  return tf.reduce_sum(outputs * class_weights(y, num_classes), axis=-1)


def sample_seeds(z: tf.Tensor) -> tf.Tensor:
  """Per-sample stateless seeds from the bits of z: int32 [B, 2].

  The same latent row gives the same seed in any batch, so per-sample
  randomness drawn from it (StyleGAN's noise inputs, augmentations) does not
  depend on the batch a sample is drawn in.

  Args:
    z: float32 [B, dim_z] with dim_z >= 2.
  """
  return tf.bitcast(tf.cast(z[:, :2], tf.float32), tf.int32)
