"""Perceptual path length between classes (Hyper-Modulation, Table 3).

StyleGAN's perceptual path length (Karras et al. 2019, section 4.1) measures
how much the image changes along a latent interpolation: for a path l(t),

    PPL = E[ d(G(l(t)), G(l(t + eps))) / eps^2 ],

with t ~ U(0, 1) ("full" paths) or t at the ends ("end" points: StyleGAN
takes t = 0 of a path between two random latents; between two fixed
classes the two ends differ, so half the samples step from t = 0 and half
into t = 1), and the 1% lowest and highest values left out. Hyper-Modulation (Laria et al. 2022, section
4.1, Table 3) measures it between classes: the path goes from class a to
class b through the class weights (one-hot a, one-hot b mixed as
(1 - t, t)), with the same z (and, for StyleGAN, the same noise, seeded by
z) at both ends of each step. A generator whose class space is smooth
changes the image evenly along the path.

The distance d: LPIPS needs pretrained weights that are not available
offline, so d here is the squared Euclidean distance between the unit-
normalised features of the evaluator's extractor (the Fashion-MNIST
classifier, or Inception for RGB images), which, like LPIPS, compares
normalised deep features. The values are therefore not on the paper's scale
(10^6 with LPIPS); compare them between runs scored with the same extractor
and epsilon.

The end of the file registers the metric "ppl" (results ppl_full and
ppl_end) with the evaluator (`tfgt.eval.registry`).
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.eval import registry

SAMPLINGS = ("full", "end")
# StyleGAN's step along the path.
DEFAULT_EPSILON = 1e-4


def class_pairs(class_ids: Sequence[int]) -> list[tuple[int, int]]:
  """Every unordered pair of distinct class ids, in order.

  Raises:
    UserInputError: fewer than two classes.
  """
  ids = list(dict.fromkeys(int(c) for c in class_ids))
  if len(ids) < 2:
    raise UserInputError(
        f"The perceptual path length between classes needs at least two "
        f"classes, got {ids}: evaluate a run with two or more target "
        "classes, or leave 'ppl' out of Evaluator.metrics.")
  return list(itertools.combinations(ids, 2))


def path_weights(a: int, b: int, t: tf.Tensor, num_classes: int
                 ) -> tf.Tensor:
  """Class weights [B, num_classes] (float32) at t [B] on the path a -> b:
  (1 - t) at a, t at b, zero elsewhere."""
  t = tf.cast(t, tf.float32)[:, None]
  return ((1.0 - t) * tf.one_hot(a, num_classes)[None] +
          t * tf.one_hot(b, num_classes)[None])


def _normalised(features: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(tf.cast(features, tf.float32), axis=1)


def path_lengths(draw: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
                 features: Callable[[tf.Tensor], tf.Tensor],
                 pair: tuple[int, int], num_classes: int, dim_z: int,
                 num_samples: int, sampling: str = "full",
                 epsilon: float = DEFAULT_EPSILON, batch_size: int = 250,
                 seed: int = 0) -> np.ndarray:
  """Per sample, d(G(z, l(t)), G(z, l(t + eps))) / eps^2 on one class pair.

  Args:
    draw: (z [B, dim_z], class weights [B, num_classes]) -> images
      [B, H, W, C] in [-1, 1].
    features: images -> features [B, D].
    pair: (a, b), model class ids.
    num_classes: the generator's classes.
    dim_z: latent size.
    num_samples: values to compute (>= 1).
    sampling: "full" (t ~ U(0, 1 - eps)) or "end" (t = 0 or 1 - eps, each
      with probability 1/2: the steps out of class a and into class b).
    epsilon: the step along the path, in class-weight units (> 0).
    batch_size: samples per generator call.
    seed: seed of z and t (stateless: the same values on every call).

  Returns:
    float64 [num_samples], in squared feature distance per eps^2.

  Raises:
    UserInputError: a bad sampling, epsilon or sample count.
  """
  if sampling not in SAMPLINGS:
    raise UserInputError(f"sampling must be one of {SAMPLINGS}, got "
                         f"{sampling!r}.")
  if not 0 < epsilon < 0.5:
    raise UserInputError(f"epsilon must be in (0, 0.5), got {epsilon}; "
                         f"StyleGAN uses {DEFAULT_EPSILON}.")
  if num_samples < 1:
    raise UserInputError(f"num_samples must be >= 1, got {num_samples}.")
  a, b = pair
  out = []
  for index, start in enumerate(range(0, num_samples, batch_size)):
    n = min(batch_size, num_samples - start)
    z = tf.random.stateless_normal([n, dim_z], seed=[seed, 2 * index])
    u = tf.random.stateless_uniform([n], seed=[seed, 2 * index + 1])
    if sampling == "full":
      t = u * (1.0 - epsilon)
    else:
      t = tf.where(u < 0.5, 0.0, 1.0 - epsilon)
    both = draw(tf.concat([z, z], 0),
                tf.concat([path_weights(a, b, t, num_classes),
                           path_weights(a, b, t + epsilon, num_classes)], 0))
    f = _normalised(features(both))
    d = tf.reduce_sum(tf.square(f[:n] - f[n:]), axis=1) / (epsilon ** 2)
    out.append(d.numpy().astype(np.float64))
  return np.concatenate(out)


def trimmed_mean(values: np.ndarray, low: float = 1.0,
                 high: float = 99.0) -> float:
  """The mean of the values between the `low` and `high` percentiles
  (StyleGAN's outlier rejection)."""
  lo, hi = np.percentile(values, [low, high], method="lower")
  kept = values[(values >= lo) & (values <= hi)]
  return float(np.mean(kept))


def class_path_length(draw, features, class_ids: Sequence[int],
                      num_classes: int, dim_z: int, num_samples: int,
                      epsilon: float = DEFAULT_EPSILON,
                      batch_size: int = 250, seed: int = 0
                      ) -> dict[str, float]:
  """PPL between classes, full paths and end points (paper Table 3).

  `num_samples` values per class pair and sampling; each pair's values are
  trimmed (`trimmed_mean`) and the pairs averaged. Arguments as
  `path_lengths`.

  Returns:
    {"ppl_full": float, "ppl_end": float}, >= 0, in squared unit-feature
    distance per eps^2.

  Raises:
    UserInputError: fewer than two classes, or bad settings.
  """
  pairs = class_pairs(class_ids)
  out = {}
  for sampling in SAMPLINGS:
    per_pair = [trimmed_mean(path_lengths(
        draw, features, pair, num_classes, dim_z, num_samples, sampling,
        epsilon, batch_size, seed + k)) for k, pair in enumerate(pairs)]
    out[f"ppl_{sampling}"] = float(np.mean(per_pair))
  return out


def _ppl(sampler: registry.Sampler, settings) -> dict[str, float]:
  """The evaluator's entry: `class_path_length` between the evaluated
  classes, with the Evaluator's ppl_samples, ppl_epsilon, batch_size and
  seed."""
  return class_path_length(sampler.draw, sampler.features, sampler.class_ids,
                           sampler.num_classes, sampler.dim_z,
                           settings.ppl_samples, settings.ppl_epsilon,
                           settings.batch_size, settings.seed)


def _check_settings(settings) -> None:
  if settings.ppl_samples < 1:
    raise UserInputError(f"Evaluator.ppl_samples must be >= 1, got "
                         f"{settings.ppl_samples}.")
  if not 0 < settings.ppl_epsilon < 0.5:
    raise UserInputError(f"Evaluator.ppl_epsilon must be in (0, 0.5), got "
                         f"{settings.ppl_epsilon}; StyleGAN uses 1e-4.")


def _check_classes(class_names: Sequence[str]) -> None:
  class_pairs(range(len(class_names)))


# Draws its own samples (ppl_samples per class pair and sampling): no
# minimum of real images or of the evaluator's samples.
registry.register(registry.Metric(
    name="ppl", keys=tuple(f"ppl_{s}" for s in SAMPLINGS), compute=_ppl,
    inputs=registry.GENERATOR, min_rows=None, check_settings=_check_settings,
    check_classes=_check_classes))
