"""Distances between sets of features of real and generated images.

All functions take feature matrices (NumPy arrays or tensors) `real` [n, d]
and `fake` [m, d], rows in any order, and return Python floats.

  frechet_distance   FID (Heusel et al., 2017), TF-GAN's implementation.
  kernel_distance    KID (Binkowski et al., 2018), TF-GAN's implementation;
                     papers print it x100.
  kernel_mmd         KMMD: MMD with a Gaussian kernel (sigma 1 by default).
  prdc               precision and recall (Kynkaanniemi et al., 2019),
                     density and coverage (Naeem et al., 2020), from k-nearest-
                     neighbour balls (k = 5).

Each metric is defined only from a minimum number of rows per set (see
`min_rows`): below it a formula divides by zero or asks for a neighbour that
does not exist. Rather than return NaN, the functions raise a
`UserInputError` that names the metric, the set, the count and the minimum.
Features that hold NaN or infinity are refused the same way.

Pairwise computations run in row blocks, so memory grows with
block x (n + m), not n x m.

The end of the file registers each metric with the evaluator
(`tfgt.eval.registry`): fid, kid, mfid, mkid, kmmd, prdc and mprdc.
"""

from __future__ import annotations

import math

from absl import logging
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.eval import registry
from tfgt.eval import tfgan

# What `prdc` returns.
PRDC_KEYS = ("precision", "recall", "density", "coverage")

# Rows per block of pairwise-distance computations: a 1024 x 50k float32 block
# is 200 MB.
_BLOCK = 1024

# Why each metric needs its minimum number of rows per set (used in errors).
_WHY = {
    "fid": "its covariances divide by (rows - 1)",
    "kid": "its unbiased estimate averages the kernel over pairs of distinct "
           "rows of each set",
    "kmmd": "its kernel width is the spread of the real features",
    "prdc": "each row's ball reaches its k-th nearest other row",
}


def min_rows(metric: str, k: int = 5) -> tuple[int, int]:
  """Fewest (real, fake) rows with which `metric` is defined.

  Args:
    metric: "fid", "kid", "kmmd" (with its default `normalize=True`) or
      "prdc".
    k: PRDC's neighbourhood size.

  Returns:
    (minimum real rows, minimum fake rows).

  Raises:
    ValueError: an unknown metric.
  """
  if metric in ("fid", "kid"):
    return 2, 2
  if metric == "kmmd":
    return 2, 1
  if metric == "prdc":
    return k + 1, k + 1
  raise ValueError(f"Unknown metric {metric!r}: choose fid, kid, kmmd or "
                   "prdc.")


def _check(real, fake, metric: str, min_real: int = 2, min_fake: int = 2,
           why: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Validated float32 copies of the feature matrices.

  `why` (default: the metric's entry of _WHY) explains the minimum in errors.

  Raises:
    UserInputError: a set with fewer rows than `metric` needs, or features
      holding NaN or infinity.
    ValueError: a set that is not a matrix, or feature widths that differ.
  """
  real = np.asarray(real, np.float32)
  fake = np.asarray(fake, np.float32)
  for name, x, minimum in (("real", real, min_real), ("fake", fake, min_fake)):
    if x.ndim != 2:
      raise ValueError(f"{name} features must be a matrix [samples, dim], got "
                       f"shape {x.shape}.")
    if len(x) < minimum:
      raise UserInputError(
          f"{metric.upper()} needs at least {minimum} "
          f"row{'s' if minimum > 1 else ''} of {name} features "
          f"({why or _WHY[metric]}), got {len(x)}: give it more "
          f"{'images' if name == 'real' else 'samples'}.")
    bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
    if bad:
      raise UserInputError(
          f"{bad} of the {len(x)} rows of {name} features hold NaN or "
          f"infinity, so {metric.upper()} would be meaningless: the images "
          "or the feature extractor that produced them are not finite (for "
          "generated images, the generator's weights have diverged: use an "
          "earlier checkpoint).")
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"Feature widths differ: real {real.shape[1]}, fake "
                     f"{fake.shape[1]}.")
  return real, fake


def frechet_distance(real, fake) -> float:
  """FID through TF-GAN's `frechet_classifier_distance_from_activations`.

  Biased towards larger values for small sets: compare FIDs computed with the
  same numbers of samples.

  Args:
    real: features [n, d], n >= 2 (unbiased covariances divide by n - 1).
    fake: features [m, d], m >= 2.

  Returns:
    FID >= 0 (up to rounding).

  Raises:
    UserInputError: fewer than 2 rows in a set, or non-finite features.
    ValueError: feature widths that differ.
  """
  real, fake = _check(real, fake, "fid", *min_rows("fid"))
  return tfgan.frechet_distance(real, fake)


def kid_blocks(n: int, m: int, max_block_size: int = 1024
               ) -> tuple[int, int, int]:
  """How KID splits n real and m fake rows into blocks.

  TF-GAN's KID cuts both sets into the same number of blocks,
  ceil(max(n, m) / max_block_size), and averages the unbiased MMD^2 of the
  blocks. Each block needs at least 2 rows of each set (its within-set terms
  average over pairs of distinct rows), which a small set against a large one
  does not give: 20 fake rows against 12,000 real ones in 12 blocks leave
  some blocks 1 fake row, and the estimate is NaN. Here the block count is
  capped at min(n, m) // 2, so every block has >= 2 rows of each set; the
  larger set then keeps blocks x max_block_size rows (a random subset), so
  that no block exceeds `max_block_size`. Every block's estimate stays
  unbiased, so their mean does too; the fewer blocks only widen its standard
  error.

  Args:
    n: real rows, >= 2.
    m: fake rows, >= 2.
    max_block_size: largest block, >= 2.

  Returns:
    (blocks, real rows used, fake rows used).

  Raises:
    ValueError: a count below 2 or max_block_size below 2.
  """
  if n < 2 or m < 2 or max_block_size < 2:
    raise ValueError(f"KID blocks need >= 2 rows per set and a block size "
                     f">= 2, got n={n}, m={m}, max_block_size="
                     f"{max_block_size}.")
  blocks = min(math.ceil(max(n, m) / max_block_size), min(n, m) // 2)
  return (blocks, min(n, blocks * max_block_size),
          min(m, blocks * max_block_size))


def kernel_distance(real, fake, max_block_size: int = 1024, seed: int = 0
                    ) -> tuple[float, float]:
  """KID and its standard error through TF-GAN (unbiased; can be < 0).

  The blocks follow `kid_blocks`: with enough rows of both sets this is
  exactly TF-GAN's estimate; when the smaller set has fewer than 2 rows per
  block, fewer blocks are used and the larger set is subsampled (seeded) to
  fit them.

  Args:
    real: features [n, d], n >= 2.
    fake: features [m, d], m >= 2.
    max_block_size: largest block (TF-GAN's default 1024), >= 2.
    seed: seed of the subsampling, when there is one.

  Returns:
    (KID, its standard error; the error is NaN when there is a single
    block, since one block gives no spread).

  Raises:
    UserInputError: fewer than 2 rows in a set, or non-finite features.
    ValueError: feature widths that differ, or max_block_size < 2.
  """
  real, fake = _check(real, fake, "kid", *min_rows("kid"))
  if max_block_size < 2:
    raise ValueError(f"max_block_size must be >= 2 (a block needs pairs), got "
                     f"{max_block_size}.")
  blocks, n, m = kid_blocks(len(real), len(fake), max_block_size)
  if blocks == math.ceil(max(len(real), len(fake)) / max_block_size):
    # Enough rows of both sets: TF-GAN's own blocks, all rows used.
    return tfgan.kernel_distance(real, fake, max_block_size=max_block_size)
  real = subsample(real, n, seed)
  fake = subsample(fake, m, seed + 1)
  # TF-GAN makes ceil(max(n, m) / size) <= `blocks` blocks of at most `size`
  # <= max_block_size rows, so each still holds >= 2 rows of the smaller set.
  size = math.ceil(max(n, m) / blocks)
  return tfgan.kernel_distance(real, fake, max_block_size=size)


def subsample(x: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
  """At most `max_rows` rows of x, drawn without replacement with `seed`."""
  if max_rows is None or len(x) <= max_rows:
    return x
  rng = np.random.RandomState(seed)
  return x[np.sort(rng.choice(len(x), max_rows, replace=False))]


def _squared_distances(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
  """[a, d], [b, d] -> squared Euclidean distances [a, b], >= 0."""
  xx = tf.reduce_sum(tf.square(x), axis=1, keepdims=True)
  yy = tf.reduce_sum(tf.square(y), axis=1)[None, :]
  return tf.maximum(xx + yy - 2.0 * tf.matmul(x, y, transpose_b=True), 0.0)


def _mean_kernel(x: np.ndarray, y: np.ndarray, gamma: float) -> float:
  """Mean of exp(-gamma |x_i - y_j|^2) over all pairs, in row blocks."""
  y_t = tf.constant(y, tf.float64)
  total = 0.0
  for i in range(0, len(x), _BLOCK):
    block = tf.constant(x[i:i + _BLOCK], tf.float64)
    total += float(tf.reduce_sum(tf.exp(-gamma *
                                        _squared_distances(block, y_t))))
  return total / (len(x) * len(y))


def kernel_mmd(real, fake, sigma: float = 1.0, normalize: bool = True,
               max_samples: int | None = 5000, seed: int = 0) -> float:
  """KMMD: maximum mean discrepancy with a Gaussian kernel.

      KMMD = sqrt(mean k(r, r') + mean k(f, f') - 2 mean k(r, f)),
      k(a, b) = exp(-|a - b|^2 / (2 sigma^2 s)),

  with means over all pairs (the biased V-statistic, 0 for identical sets).
  With `normalize` (the convention of the KMMD code that BSA and MineGAN
  report), s is the mean squared distance between real features, so that
  sigma is relative to the spread of the features; otherwise s = 1.

  Args:
    real: features [n, d].
    fake: features [m, d].
    sigma: kernel width (relative with `normalize`), > 0.
    normalize: scale squared distances by their mean over real pairs.
    max_samples: each set is subsampled to at most this many rows (the cost
      is quadratic); None uses all.
    seed: seed of the subsampling.

  Returns:
    KMMD >= 0.

  Raises:
    UserInputError: fewer than 2 real rows with `normalize` (one point has
      no spread), an empty set, or non-finite features.
    ValueError: sigma <= 0, max_samples below those minimums, or feature
      widths that differ.
  """
  if sigma <= 0:
    raise ValueError(f"sigma must be > 0, got {sigma}.")
  min_real, min_fake = min_rows("kmmd") if normalize else (1, 1)
  if max_samples is not None and max_samples < min_real:
    raise ValueError(f"max_samples must be >= {min_real}, got {max_samples}.")
  real, fake = _check(real, fake, "kmmd", min_real, min_fake,
                      why=None if normalize else "a mean over no rows")
  real = subsample(real, max_samples, seed).astype(np.float64)
  fake = subsample(fake, max_samples, seed + 1).astype(np.float64)
  scale = 1.0
  if normalize:
    # Mean over all ordered pairs (i, j) of |r_i - r_j|^2 equals twice the
    # total (biased) variance: no pairwise pass needed.
    scale = 2.0 * float(np.sum(np.var(real, axis=0)))
    if scale <= 0:
      scale = 1.0  # All real features equal: fall back to absolute widths.
  gamma = 1.0 / (2.0 * sigma ** 2 * scale)
  mmd2 = (_mean_kernel(real, real, gamma) + _mean_kernel(fake, fake, gamma)
          - 2.0 * _mean_kernel(real, fake, gamma))
  return float(np.sqrt(max(mmd2, 0.0)))


# Two squared distances closer than this fraction of the largest squared norm
# of the (centred) features are a tie. Float64 rounding of one distance is
# below ~(d + 2) * 1.1e-16 of that scale (4.5e-13 for d = 2048): the margin
# keeps every rounding difference between CPUs, thread counts and block
# positions inside the tie band, while real differences this small do not
# occur between image features.
_TIE_TOLERANCE = 1e-9


def _kth_neighbour_sq_radii(x: tf.Tensor, k: int) -> tf.Tensor:
  """Squared distance from each row of x to its k-th nearest other row [n]."""
  radii = []
  n = int(x.shape[0])
  for i in range(0, n, _BLOCK):
    d2 = _squared_distances(x[i:i + _BLOCK], x)
    # The row itself is at distance 0 and is the first of the k + 1 smallest.
    smallest = -tf.math.top_k(-d2, k=k + 1, sorted=True).values
    radii.append(smallest[:, k])
  return tf.concat(radii, 0)


def prdc(real, fake, k: int = 5, max_samples: int | None = 10000,
         seed: int = 0) -> dict[str, float]:
  """Precision, recall, density and coverage from k-NN balls.

  Each real feature r_i owns a ball of radius the distance to its k-th
  nearest real neighbour; each fake feature f_j owns one from the fakes.

    precision = share of fakes inside at least one real ball
    recall    = share of reals inside at least one fake ball
    density   = (1/k) x mean over fakes of the number of real balls holding it
    coverage  = share of real balls that hold at least one fake

  "Inside" is strictly closer than the radius, as in Naeem et al.'s
  definition: a ball holds its centre and the k - 1 nearer neighbours, not the
  k-th one on its rim, so identical sets give exactly 1, 1, 1, 1. Precision
  and recall follow Kynkaanniemi et al. (2019), density and coverage Naeem et
  al. (2020), who recommend k = 5 for all four. Density can exceed 1 where
  fakes crowd dense real regions.

  The answer does not depend on the CPU, the thread count or the row order:
  distances are computed in float64 on features centred at the real mean, and
  a point whose squared distance equals a squared radius to within 1e-9 of the
  largest squared feature norm is on the rim (outside). Without that rule a
  point on the rim falls inside or outside by the last bit of a matrix
  product, which differs between CPUs (e.g. with and without AVX-512).

  Args:
    real: features [n, d], n > k, any float dtype.
    fake: features [m, d], m > k.
    k: neighbourhood size, >= 1.
    max_samples: each set is subsampled to at most this many rows (the cost
      is quadratic; Naeem et al. use 10k); None uses all.
    seed: seed of the subsampling.

  Returns:
    {"precision", "recall", "density", "coverage"}: floats in [0, 1], density
    in [0, n / k].

  Raises:
    UserInputError: a set with <= k rows, or non-finite features.
    ValueError: k < 1, max_samples <= k, or feature widths that differ.
  """
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}.")
  if max_samples is not None and max_samples <= k:
    raise ValueError(f"max_samples must be > k = {k}, got {max_samples}.")
  real, fake = _check(real, fake, "prdc", *min_rows("prdc", k))
  real = subsample(real, max_samples, seed).astype(np.float64)
  fake = subsample(fake, max_samples, seed + 1).astype(np.float64)
  # Distances do not change under a shift; centring shrinks the norms, and
  # with them the cancellation in |x|^2 + |y|^2 - 2 x.y.
  centre = real.mean(axis=0, keepdims=True)
  real, fake = real - centre, fake - centre
  tie = _TIE_TOLERANCE * max(float(np.max(np.sum(real ** 2, axis=1))),
                             float(np.max(np.sum(fake ** 2, axis=1))))
  real, fake = tf.constant(real), tf.constant(fake)
  # A ball holds what is closer than its radius by more than the tie band.
  real_r2 = _kth_neighbour_sq_radii(real, k) - tie
  fake_r2 = _kth_neighbour_sq_radii(fake, k) - tie
  n, m = int(real.shape[0]), int(fake.shape[0])

  # One pass over the fake-to-real distances (rows: fakes; columns: reals)
  # serves all four numbers.
  in_real_ball = []
  balls_per_fake = []
  nearest_fake_to_real = tf.fill([n], tf.constant(np.inf, tf.float64))
  real_in_fake_ball = tf.zeros([n], tf.bool)
  for j in range(0, m, _BLOCK):
    d2 = _squared_distances(fake[j:j + _BLOCK], real)
    inside = d2 < real_r2[None, :]
    in_real_ball.append(tf.reduce_any(inside, axis=1))
    balls_per_fake.append(tf.reduce_sum(tf.cast(inside, tf.float64), axis=1))
    nearest_fake_to_real = tf.minimum(nearest_fake_to_real,
                                      tf.reduce_min(d2, axis=0))
    real_in_fake_ball = tf.logical_or(
        real_in_fake_ball,
        tf.reduce_any(d2 < fake_r2[j:j + _BLOCK, None], axis=0))
  precision = tf.reduce_mean(tf.cast(tf.concat(in_real_ball, 0), tf.float64))
  density = tf.reduce_sum(tf.concat(balls_per_fake, 0)) / (k * m)
  coverage = tf.reduce_mean(tf.cast(nearest_fake_to_real < real_r2,
                                    tf.float64))
  recall = tf.reduce_mean(tf.cast(real_in_fake_ball, tf.float64))
  return dict(precision=float(precision), recall=float(recall),
              density=float(density), coverage=float(coverage))


# ------------------------------------------------ entries of the evaluator
# `compute(real, fake, settings)` of each entry: features of real images and
# of samples (all evaluated classes, or one class for a per-class metric) and
# the Evaluator's settings (see `registry.Metric`).


def _fid(real, fake, settings) -> dict[str, float]:
  del settings  # FID has none.
  return {"fid": frechet_distance(real, fake)}


def _kid(real, fake, settings) -> dict[str, float]:
  kid, std = kernel_distance(real, fake, settings.kid_block_size,
                             seed=settings.seed)
  if not math.isfinite(std):
    logging.info("No kid_std: %d samples make a single KID block, which "
                 "has no spread.", len(fake))
    return {"kid": kid}
  return {"kid": kid, "kid_std": std}


def _class_kid(real, fake, settings) -> dict[str, float]:
  # Per class, KID alone: the means of standard errors are not one.
  return {"kid": kernel_distance(real, fake, settings.kid_block_size,
                                 seed=settings.seed)[0]}


def _kmmd(real, fake, settings) -> dict[str, float]:
  return {"kmmd": kernel_mmd(real, fake, sigma=settings.kmmd_sigma,
                             max_samples=settings.max_pairwise_samples,
                             seed=settings.seed)}


def _prdc(real, fake, settings) -> dict[str, float]:
  return prdc(real, fake, k=settings.prdc_k,
              max_samples=settings.max_pairwise_samples, seed=settings.seed)


def _check_kid_settings(settings) -> None:
  if settings.kid_block_size < 2:
    raise UserInputError(
        f"Evaluator.kid_block_size must be >= 2 (KID averages over pairs "
        f"of samples in a block), got {settings.kid_block_size}; TF-GAN "
        "uses 1024.")


def _check_pairwise(settings, name: str, fewest: int, why: str = "") -> None:
  """KMMD and PRDC subsample each set to max_pairwise_samples rows."""
  limit = settings.max_pairwise_samples
  if limit is not None and limit < fewest:
    raise UserInputError(
        f"Evaluator.max_pairwise_samples={limit} leaves {name} fewer rows "
        f"than it needs ({fewest}{why}): set it to at least {fewest} (10000 "
        "by default), or None to use all samples.")


def _check_kmmd_settings(settings) -> None:
  if not settings.kmmd_sigma > 0:
    raise UserInputError(f"Evaluator.kmmd_sigma must be > 0, got "
                         f"{settings.kmmd_sigma}.")
  _check_pairwise(settings, "kmmd", min_rows("kmmd")[0])


def _prdc_settings_check(name: str):
  """The settings check of prdc or mprdc (named `name` in errors)."""
  def check(settings) -> None:
    if settings.prdc_k < 1:
      raise UserInputError(f"Evaluator.prdc_k must be >= 1, got "
                           f"{settings.prdc_k}; Naeem et al. use 5.")
    _check_pairwise(settings, name, min_rows("prdc", settings.prdc_k)[0],
                    ", prdc_k + 1")
  return check


def _prdc_rows(settings) -> tuple[int, int]:
  return min_rows("prdc", settings.prdc_k)


_PRDC_FIX = "lower Evaluator.prdc_k"

# Registered in this order, which is the order of Evaluator.metrics.
registry.register(registry.Metric(
    name="fid", keys=("fid",), compute=_fid, min_rows=min_rows("fid")))
registry.register(registry.Metric(
    name="kid", keys=("kid", "kid_std"), compute=_kid, scale=100,
    min_rows=min_rows("kid"), check_settings=_check_kid_settings))
registry.register(registry.Metric(
    name="mfid", keys=("fid",), per_class=True, compute=_fid,
    min_rows=min_rows("fid")))
registry.register(registry.Metric(
    name="mkid", keys=("kid",), per_class=True, compute=_class_kid,
    scale=100, min_rows=min_rows("kid"), check_settings=_check_kid_settings))
registry.register(registry.Metric(
    name="kmmd", keys=("kmmd",), compute=_kmmd, min_rows=min_rows("kmmd"),
    check_settings=_check_kmmd_settings))
registry.register(registry.Metric(
    name="prdc", keys=PRDC_KEYS, compute=_prdc, higher_is_better=True,
    min_rows=_prdc_rows, check_settings=_prdc_settings_check("prdc"),
    fewer_rows_fix=_PRDC_FIX))
registry.register(registry.Metric(
    name="mprdc", keys=PRDC_KEYS, per_class=True, compute=_prdc,
    higher_is_better=True, min_rows=_prdc_rows,
    check_settings=_prdc_settings_check("mprdc"), fewer_rows_fix=_PRDC_FIX))
