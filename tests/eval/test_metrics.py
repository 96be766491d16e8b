"""Metrics: TF-GAN's FID/KID against independent computations, KMMD, PRDC."""

import fractions
import math
import sys

import numpy as np
import pytest
import scipy.linalg

from tfgt.errors import UserInputError
from tfgt.eval import metrics
from tfgt.eval import tfgan


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
  """FID from its definition, with SciPy's general matrix square root."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  mu_x, mu_y = x.mean(0), y.mean(0)
  cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  root = scipy.linalg.sqrtm(cov_x @ cov_y)
  root = np.real(root)
  return float(np.sum((mu_x - mu_y) ** 2)
               + np.trace(cov_x + cov_y - 2.0 * root))


def correlated(rng, n, d, shift=0.0, scale=1.0):
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return (rng.normal(size=(n, d)) @ mix * scale + shift).astype(np.float32)


def test_tfgan_bypass_leaves_package_import_untouched():
  module = tfgan.classifier_metrics()
  assert hasattr(module, "frechet_classifier_distance_from_activations")
  # The stand-in parent packages are gone again, so a later
  # `import tensorflow_gan` runs the real package init as before.
  for name in ("tensorflow_gan", "tensorflow_gan.python",
               "tensorflow_gan.python.eval"):
    assert name not in sys.modules
  assert tfgan.classifier_metrics() is module


@pytest.mark.parametrize("d,shift,scale", [(8, 0.3, 1.0), (32, 1.0, 1.5)])
def test_fid_matches_scipy(d, shift, scale):
  rng = np.random.RandomState(d)
  x = correlated(rng, 600, d)
  y = correlated(rng, 500, d, shift=shift, scale=scale)
  ours = metrics.frechet_distance(x, y)
  reference = scipy_fid(x, y)
  assert reference > 0.1
  assert ours == pytest.approx(reference, rel=1e-3)


def test_fid_of_a_set_with_itself_is_zero():
  x = correlated(np.random.RandomState(1), 400, 16)
  assert abs(metrics.frechet_distance(x, x)) < 1e-6
  # Another sample of the same distribution: small but not zero.
  y = correlated(np.random.RandomState(1), 400, 16) + 0.5
  assert metrics.frechet_distance(x, y) > 1.0


def test_kid_unbiased_for_one_distribution():
  rng = np.random.RandomState(0)
  same, different = [], []
  for _ in range(20):
    a = rng.normal(size=(300, 16)).astype(np.float32)
    b = rng.normal(size=(300, 16)).astype(np.float32)
    c = (rng.normal(size=(300, 16)) * 1.3 + 0.2).astype(np.float32)
    same.append(metrics.kernel_distance(a, b)[0])
    different.append(metrics.kernel_distance(a, c)[0])
  # KID is unbiased: its mean over pairs is 0 within a few standard errors
  # (and individual estimates can be negative).
  spread = np.std(same) / np.sqrt(len(same))
  assert abs(np.mean(same)) < 3 * spread + 1e-4
  assert min(same) < 0 < max(same)
  assert np.mean(different) > 20 * spread


def test_kid_blocks_report_a_standard_error():
  rng = np.random.RandomState(3)
  a = rng.normal(size=(900, 8)).astype(np.float32)
  b = rng.normal(size=(900, 8)).astype(np.float32) + 1.0
  kid, std = metrics.kernel_distance(a, b, max_block_size=300)
  assert kid > 0 and 0 < std < kid


def numpy_kid(x, y):
  """Unbiased MMD^2 with the kernel (x.y / d + 1)^3, over all rows."""
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  n, m = len(x), len(y)
  kxx, kyy = k(x, x), k(y, y)
  return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
          + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())


def test_kid_single_block_matches_numpy():
  rng = np.random.RandomState(9)
  x = rng.normal(size=(300, 8))
  y = rng.normal(size=(200, 8)) * 1.2 + 0.2
  kid, _ = metrics.kernel_distance(x, y)
  assert kid == pytest.approx(numpy_kid(x, y), rel=1e-4)


def test_kid_is_insensitive_to_class_ordered_rows():
  # TF-GAN's blocks assume rows in random order; features arrive sorted by
  # class. Here the two sets list the same two modes in opposite orders, so
  # unshuffled blocks would compare mode A with mode B.
  rng = np.random.RandomState(4)
  mode_a = lambda: rng.normal(size=(400, 8))
  mode_b = lambda: rng.normal(size=(400, 8)) + 2.0
  x = np.concatenate([mode_a(), mode_b()]).astype(np.float32)
  y = np.concatenate([mode_b(), mode_a()]).astype(np.float32)
  mismatch, _ = metrics.kernel_distance(x[:400], y[:400])
  kid, _ = metrics.kernel_distance(x, y, max_block_size=400)
  assert abs(kid) < 0.05 * mismatch


def numpy_kmmd(x, y, sigma):
  def sq(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
  scale = sq(x, x).mean()
  k = lambda a, b: np.exp(-sq(a, b) / (2 * sigma ** 2 * scale))
  return np.sqrt(max(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean(), 0))


def test_kmmd():
  rng = np.random.RandomState(5)
  x = rng.normal(size=(300, 6)).astype(np.float32)
  y = (rng.normal(size=(250, 6)) + 0.7).astype(np.float32)
  assert metrics.kernel_mmd(x, x) == pytest.approx(0.0, abs=1e-6)
  for sigma in (1.0, 0.5):
    assert metrics.kernel_mmd(x, y, sigma=sigma) == pytest.approx(
        numpy_kmmd(x.astype(np.float64), y.astype(np.float64), sigma),
        rel=1e-6)
  near = metrics.kernel_mmd(x, rng.normal(size=(300, 6)))
  assert 0 < near < metrics.kernel_mmd(x, y)


def numpy_prdc(real, fake, k):
  """Precision/recall/density/coverage straight from the definitions."""
  def dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
  real_r = np.sort(dist(real, real), axis=1)[:, k]
  fake_r = np.sort(dist(fake, fake), axis=1)[:, k]
  rf = dist(real, fake)  # [n, m]
  return dict(
      precision=np.mean((rf < real_r[:, None]).any(axis=0)),
      recall=np.mean((rf < fake_r[None, :]).any(axis=1)),
      density=np.sum(rf < real_r[:, None]) / (k * fake.shape[0]),
      coverage=np.mean(rf.min(axis=1) < real_r))


def test_prdc_matches_definitions():
  rng = np.random.RandomState(6)
  real = rng.normal(size=(400, 5)).astype(np.float32)
  fake = (rng.normal(size=(300, 5)) * 1.2 + 0.3).astype(np.float32)
  ours = metrics.prdc(real, fake, k=5)
  expected = numpy_prdc(real.astype(np.float64), fake.astype(np.float64), 5)
  for name, value in expected.items():
    assert ours[name] == pytest.approx(value, abs=1e-6), name


def test_prdc_known_answers_on_toy_gaussians():
  rng = np.random.RandomState(7)
  real = rng.normal(size=(1000, 4)).astype(np.float32)
  # Identical sets: every point sits in its own ball.
  same = metrics.prdc(real, real, k=5)
  assert same == pytest.approx(dict(precision=1, recall=1, density=1,
                                    coverage=1), abs=1e-9)
  # Far apart: nothing overlaps.
  far = metrics.prdc(real, real + 100.0, k=5)
  assert far == pytest.approx(dict(precision=0, recall=0, density=0,
                                   coverage=0), abs=1e-9)
  # Mode dropping: real = two far modes, fake = a fresh sample of one mode.
  # All fakes are realistic (precision ~1, density ~1) but half the real data
  # is missed (recall and coverage ~0.5).
  modes = np.concatenate([real[:500], real[500:] + 50.0])
  fake = rng.normal(size=(500, 4)).astype(np.float32)
  dropped = metrics.prdc(modes, fake, k=5)
  assert dropped["precision"] > 0.95
  assert 0.45 < dropped["recall"] <= 0.5
  assert 0.45 < dropped["coverage"] <= 0.5
  assert 0.8 < dropped["density"] < 1.2
  # Same distribution, independent samples: all four near 1.
  fresh = metrics.prdc(real, rng.normal(size=(1000, 4)), k=5)
  assert fresh["precision"] > 0.9 and fresh["recall"] > 0.9
  assert fresh["coverage"] > 0.9 and 0.8 < fresh["density"] < 1.2


def exact_prdc(real, fake, k):
  """The four numbers in exact rational arithmetic (strict <, no rounding)."""
  def rows(x):
    return [[fractions.Fraction(float(v)) for v in row] for row in x]

  def sq_dist(a, b):
    return sum((p - q) ** 2 for p, q in zip(a, b))

  real, fake = rows(real), rows(fake)
  real_r = [sorted(sq_dist(a, b) for b in real)[k] for a in real]
  fake_r = [sorted(sq_dist(a, b) for b in fake)[k] for a in fake]
  rf = [[sq_dist(r, f) for f in fake] for r in real]
  n, m = len(real), len(fake)
  inside = [[rf[i][j] < real_r[i] for j in range(m)] for i in range(n)]
  return dict(
      precision=sum(any(inside[i][j] for i in range(n))
                    for j in range(m)) / m,
      recall=sum(any(rf[i][j] < fake_r[j] for j in range(m))
                 for i in range(n)) / n,
      density=sum(map(sum, inside)) / (k * m),
      coverage=sum(min(row) < r for row, r in zip(rf, real_r)) / n)


def cyclic_shifts(u):
  """All cyclic shifts of u: the distance between shifts s apart is the same
  for every pair, so neighbour distances tie exactly, while a float matrix
  product sums the same products in a different order for each row."""
  return np.stack([np.roll(u, s) for s in range(len(u))])


@pytest.mark.parametrize("block", [None, 5])
def test_prdc_exact_on_tied_distances(monkeypatch, block):
  # The k-th neighbour of every point ties with another one, and a fake set
  # equal to the real one puts each tied pair on a ball's rim: a rounding
  # that differs between the radius and the membership test (between CPUs,
  # or between row positions of a matrix product) moves it inside.
  if block:
    monkeypatch.setattr(metrics, "_BLOCK", block)
  rng = np.random.RandomState(3)
  u = rng.uniform(-3, 3, size=16).astype(np.float32)
  w = rng.uniform(-3, 3, size=16).astype(np.float32)
  real = np.concatenate([cyclic_shifts(u), cyclic_shifts(w)])
  cases = [
      (real, real[::-1]),                          # identical sets
      (real, cyclic_shifts(u * np.float32(1.01))),  # one mode, nearly right
      (cyclic_shifts(u), real[rng.permutation(len(real))]),
  ]
  for r, f in cases:
    expected = exact_prdc(r, f, 5)
    assert metrics.prdc(r, f, k=5) == pytest.approx(expected, abs=1e-12)
  assert exact_prdc(real, real, 5) == dict(precision=1, recall=1, density=1,
                                           coverage=1)


def test_prdc_same_answer_for_any_row_order_and_block(monkeypatch):
  rng = np.random.RandomState(9)
  real = rng.normal(size=(300, 8)).astype(np.float32) + 1000.0
  fake = rng.normal(size=(250, 8)).astype(np.float32) * 1.1 + 1000.2
  reference = metrics.prdc(real, fake, k=5)
  # Far from the origin, float32 distances lose their low bits to the
  # cancellation in |x|^2 + |y|^2 - 2 x.y; the float64 exact answer holds.
  expected = numpy_prdc(real.astype(np.float64), fake.astype(np.float64), 5)
  assert reference == pytest.approx(expected, abs=1e-12)
  monkeypatch.setattr(metrics, "_BLOCK", 7)
  shuffled = metrics.prdc(real[rng.permutation(300)],
                          fake[rng.permutation(250)], k=5)
  assert shuffled == pytest.approx(reference, abs=1e-12)


def test_pairwise_metrics_subsample():
  rng = np.random.RandomState(8)
  x = rng.normal(size=(3000, 4)).astype(np.float32)
  y = rng.normal(size=(3000, 4)).astype(np.float32)
  small = metrics.prdc(x, y, k=5, max_samples=500)
  assert small["precision"] > 0.8
  assert metrics.kernel_mmd(x, y, max_samples=500) < 0.1


def test_bad_shapes():
  with pytest.raises(ValueError, match="widths differ"):
    metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="at least 6"):
    metrics.prdc(np.zeros((5, 3)), np.zeros((9, 3)), k=5)
  with pytest.raises(ValueError, match="max_samples must be > k"):
    metrics.prdc(np.zeros((9, 3)), np.zeros((9, 3)), k=5, max_samples=5)


def tfgan_block_rows(n, m, size):
  """Rows of each set in each of TF-GAN's KID blocks of at most `size` rows:
  ceil(max(n, m) / size) blocks, each holding floor or ceil of n / blocks."""
  blocks = math.ceil(max(n, m) / size)
  return blocks, n // blocks, m // blocks


@pytest.mark.parametrize("n,m,size", [
    (12000, 20, 1024), (20, 12000, 1024), (6000, 6, 1024), (48000, 50, 1024),
    (50000, 2, 1024), (2, 2, 1024), (3, 1000, 2), (301, 300, 100),
    (3000, 3000, 1024)])
def test_kid_blocks_hold_two_rows_of_each_set(n, m, size):
  blocks, n_used, m_used = metrics.kid_blocks(n, m, size)
  if math.ceil(max(n, m) / size) <= min(n, m) // 2:
    # Enough rows: TF-GAN's own blocks, every row used.
    assert (n_used, m_used) == (n, m)
    assert blocks == math.ceil(max(n, m) / size)
  # The block size that kernel_distance hands TF-GAN gives blocks no larger
  # than `size`, each with at least 2 rows of each set.
  block = math.ceil(max(n_used, m_used) / blocks)
  assert block <= size
  tf_blocks, fewest_real, fewest_fake = tfgan_block_rows(n_used, m_used, block)
  assert tf_blocks <= blocks
  assert fewest_real >= 2 and fewest_fake >= 2
  assert n_used <= n and m_used <= m


def test_kid_of_a_small_set_against_a_large_one_is_finite():
  # 20 generated against 12,000 real rows: TF-GAN's 12 blocks of 1024 leave
  # some blocks a single generated row, whose within-set mean is 0 / 0.
  rng = np.random.RandomState(11)
  real = rng.normal(size=(12000, 8)).astype(np.float32)
  fake = (rng.normal(size=(20, 8)) + 0.5).astype(np.float32)
  kid, std = metrics.kernel_distance(real, fake)
  assert math.isfinite(kid) and math.isfinite(std) and std > 0
  # 10 blocks of 2 samples and 1024 of 10,240 randomly kept real rows.
  assert metrics.kid_blocks(12000, 20, 1024) == (10, 10240, 20)
  # The per-class case of `--metrics=mkid --num_samples=50`: 6 samples
  # against 6000 images.
  assert math.isfinite(metrics.kernel_distance(real[:6000], fake[:6])[0])
  # 3 samples make a single block (of at most 1024 rows of each set): the
  # estimate is then the unbiased KID of the 3 samples against a seeded
  # random subset of 1024 real rows, exactly.
  kid, std = metrics.kernel_distance(real, fake[:3], seed=4)
  subset = metrics.subsample(real, 1024, 4)
  assert kid == pytest.approx(numpy_kid(subset.astype(np.float64),
                                        fake[:3].astype(np.float64)),
                              rel=1e-4)
  assert math.isnan(std)  # One block has no spread: no standard error.


@pytest.mark.parametrize("metric,real_rows,fake_rows,message", [
    ("fid", 1, 5, r"FID needs at least 2 rows of real features.*got 1"),
    ("fid", 5, 1, r"FID needs at least 2 rows of fake features.*got 1"),
    ("kid", 5, 1, r"KID needs at least 2 rows of fake features.*got 1"),
    ("kid", 1, 5, r"KID needs at least 2 rows of real features.*got 1"),
    ("kmmd", 1, 5, r"KMMD needs at least 2 rows of real features.*got 1"),
    ("prdc", 6, 5, r"PRDC needs at least 6 rows of fake features.*got 5"),
])
def test_too_few_rows_are_refused_with_the_minimum(metric, real_rows,
                                                    fake_rows, message):
  rng = np.random.RandomState(2)
  real = rng.normal(size=(real_rows, 4))
  fake = rng.normal(size=(fake_rows, 4))
  compute = dict(fid=metrics.frechet_distance, kid=metrics.kernel_distance,
                 kmmd=metrics.kernel_mmd, prdc=metrics.prdc)[metric]
  with pytest.raises(UserInputError, match=message):
    compute(real, fake)
  # At the minimum the metric is defined, and finite.
  real_min, fake_min = metrics.min_rows(metric)
  value = compute(rng.normal(size=(real_min, 4)),
                  rng.normal(size=(fake_min, 4)))
  values = value.values() if isinstance(value, dict) else np.ravel(value)[:1]
  assert all(math.isfinite(v) for v in values)


def test_non_finite_features_are_refused():
  rng = np.random.RandomState(3)
  real = rng.normal(size=(50, 4))
  fake = rng.normal(size=(50, 4))
  fake[7, 2] = np.nan
  fake[9, 0] = np.inf
  for compute in (metrics.frechet_distance, metrics.kernel_distance,
                  metrics.kernel_mmd, metrics.prdc):
    with pytest.raises(UserInputError, match="2 of the 50 rows of fake"):
      compute(real, fake)
