"""Scores that say when they cannot be trusted, through the evaluator: the
feature check warns before training when the features are blind to the
classes, and class consistency and diversity catch a generator that swaps
two classes or draws one image per class."""

import logging

import numpy as np
import tensorflow as tf

from tests.eval.test_evaluator import PooledPixels, bind_folder, make_folder
from tfgt.eval import evaluator as evaluator_lib


def _two_tone_folder(root):
  """Class "dark" (grey 0-90) and "bright" (160-255): 8x8 PNGs, 20 each."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  for name, (low, high) in (("dark", (0, 90)), ("bright", (160, 256))):
    (root / name).mkdir(parents=True)
    for i in range(20):
      Image.fromarray(rng.randint(low, high, (8, 8), dtype=np.uint8)).save(
          root / name / f"{i}.png")
  return root


class ToneGenerator:
  """Images [B, 32, 32, 1]: class `dark_class` dark, the other bright, with
  per-sample noise from z; `collapsed` draws one image per class."""

  resolution, channels, dim_z, num_classes = 32, 1, 16, 2

  def __init__(self, dark_class=0, collapsed=False):
    self.dark_class = dark_class
    self.collapsed = collapsed

  def __call__(self, inputs, training=False):
    z, y = inputs
    y = tf.cast(y, tf.int32)
    level = tf.where(y == self.dark_class, -0.7, 0.6)[:, None, None, None]
    noise = tf.reshape(tf.tile(z, [1, 64]), [-1, 32, 32, 1]) * 0.15
    if self.collapsed:
      noise *= 0.0
    return tf.clip_by_value(level + noise, -1.0, 1.0)


def test_blind_features_warn_before_training_and_in_the_scores(tmp_path,
                                                               caplog):
  # Random pixels in both classes: no feature can tell them apart.
  bind_folder(make_folder(tmp_path / "images", {"a": 30, "b": 30}))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="fid", num_samples=20,
      cache_dir=str(tmp_path / "cache"))
  with caplog.at_level(logging.WARNING):
    evaluator.prepare(resolution=32, channels=1)
  warnings = [r.getMessage() for r in caplog.records
              if "barely tells the evaluated classes apart" in r.getMessage()]
  assert len(warnings) == 1
  caplog.clear()
  # The two classes as new classes 2 and 3 of a generator of 4 (labels 0
  # and 1 before training, model ids after).
  generator = ToneGenerator()
  generator.num_classes = 4
  result = evaluator.evaluate(generator)
  # Once per set of real features: not again at the evaluation.
  assert not any("barely" in r.getMessage() for r in caplog.records)
  check = result.settings["feature_check"]
  assert check["separation"] < evaluator_lib.separability.THRESHOLDS.separation
  assert result.metrics["features_separation"] == check["separation"]
  # The scores' JSON keeps the warning and the limits it used, keyed by
  # the generator's class ids.
  assert check["warnings"] == warnings
  assert check["thresholds"] == {"separation": 0.5, "spread": 0.5}
  assert check["classes"] == {"2": "a", "3": "b"}
  assert set(check["per_class"]) == {"2", "3"}
  # The toy extractor knows no domain of its own: no spread unit.
  assert "features_min_spread" not in result.metrics
  assert evaluator.result_names() >= {"fid", "features_separation"}


def test_consistency_catches_swapped_classes_and_diversity_a_collapse(
    tmp_path):
  bind_folder(_two_tone_folder(tmp_path / "images"))

  def scores(generator):
    evaluator = evaluator_lib.Evaluator(
        extractor=PooledPixels(),
        metrics="mfid,mconsistency,mdiversity,mdiversity_pixels",
        num_samples=40, cache_dir=str(tmp_path / "cache"))
    return evaluator.evaluate(generator)

  # Image-folder classes are sorted: "bright" is model id 0, "dark" 1.
  right = scores(ToneGenerator(dark_class=1))
  swapped = scores(ToneGenerator(dark_class=0))
  collapsed = scores(ToneGenerator(dark_class=1, collapsed=True))
  assert right.settings["feature_check"]["separation"] == 1.0
  assert right.metrics["mconsistency"] == 1.0
  assert right.metrics["mconsistency_real"] == 1.0
  assert swapped.metrics["mconsistency"] == 0.0
  for name in ("bright", "dark"):
    assert swapped.per_class[name]["consistency"] == 0.0
    assert swapped.per_class[name]["consistency_real"] == 1.0
  assert right.metrics["mdiversity"] > 0.3
  assert collapsed.metrics["mdiversity"] < 0.05
  assert collapsed.metrics["mdiversity_real"] == right.metrics[
      "mdiversity_real"]
  # In pixel space: the real images are uniform noise in 91 or 96 grey
  # levels (RMS difference of two pixels about 0.29 in [-1, 1] units); the
  # samples' noise is 0.15 z (0.21); the collapse draws no difference.
  for result in (right, collapsed):
    assert 0.2 < result.metrics["mdiversity_pixels_real"] < 0.35
    for name in ("bright", "dark"):
      assert result.per_class[name]["diversity_pixels_real"] > 0.2
  assert 0.5 < right.metrics["mdiversity_pixels"] < 1.0
  assert collapsed.metrics["mdiversity_pixels"] < 1e-6


class _DomainPixels(PooledPixels):
  """PooledPixels with a domain of its own: `spread`-scaled noise."""

  def __init__(self, domain_name, spread):
    super().__init__()
    self._name, self._spread = domain_name, spread

  @property
  def domain_name(self):
    return self._name

  def domain(self):
    rng = np.random.RandomState(0)
    images = 128 + self._spread * rng.uniform(-1, 1, (40, 32, 32, 1))
    return images.astype(np.uint8), np.repeat([0, 1], 20)


def test_the_spread_unit_is_cached_per_domain(tmp_path):
  # The same weights (identity) bound with another domain: its own unit,
  # not the first domain's from the cache.
  def unit(extractor):
    return evaluator_lib.Evaluator(
        extractor=extractor, metrics="fid",
        cache_dir=str(tmp_path / "cache")).domain_spread()

  narrow = unit(_DomainPixels("narrow", 10))
  wide = unit(_DomainPixels("wide", 100))
  assert wide > 5 * narrow
  assert unit(_DomainPixels("narrow", 10)) == narrow
