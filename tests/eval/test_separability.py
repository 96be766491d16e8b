"""The feature check (tfgt/eval/separability.py): features that cannot tell
the classes apart, or that collapse a class, are named."""

import numpy as np
import pytest

from tfgt.eval import separability


def _clusters(rng, centres, n, scale):
  features = np.concatenate([c + scale * rng.standard_normal((n, len(c)))
                             for c in centres])
  return features, np.repeat(np.arange(len(centres)), n)


def test_separated_classes_pass():
  rng = np.random.default_rng(0)
  features, labels = _clusters(rng, [np.zeros(8), 10 * np.ones(8)], 50, 1.0)
  unit = separability.domain_spread(features, labels)
  measured = separability.measure(features, labels, unit)
  assert measured["nn_accuracy"] == 1.0 and measured["separation"] == 1.0
  assert measured["chance"] == pytest.approx(49 / 99)
  assert 0.9 < measured["min_spread"] < 1.1
  assert separability.check(measured) == []
  assert set(separability.summary(measured)) == {
      "features_separation", "features_min_spread"}


def test_blind_features_warn_with_the_numbers():
  rng = np.random.default_rng(1)
  # Two classes whose features come from one distribution.
  features, labels = _clusters(rng, [np.zeros(8), np.zeros(8)], 100, 1.0)
  measured = separability.measure(features, labels)
  assert abs(measured["separation"]) < 0.3
  (warning,) = separability.check(measured)
  assert "barely tells the evaluated classes apart" in warning
  assert f"{measured['nn_accuracy']:.0%}" in warning


def test_a_collapsed_class_is_named():
  rng = np.random.default_rng(2)
  features, labels = _clusters(rng, [np.zeros(8), 10 * np.ones(8)], 40, 1.0)
  unit = separability.domain_spread(features, labels)
  features[labels == 1] = 10 + 0.1 * rng.standard_normal((40, 8))
  measured = separability.measure(features, labels, unit)
  assert measured["per_class"]["1"]["spread"] < 0.2
  assert measured["per_class"]["0"]["spread"] > 0.9
  (warning,) = separability.check(measured, {"0": "Bag", "1": "Ankle boot"})
  assert "collapses the real images of Ankle boot (0." in warning
  assert "Bag" not in warning
  # Without the extractor's own domain, spreads are reported, not judged.
  measured = separability.measure(features, labels)
  assert measured["min_spread"] is None
  assert separability.check(measured) == []


def test_subsets_and_refusals():
  rng = np.random.default_rng(3)
  features, labels = _clusters(rng, [np.zeros(4), 5 * np.ones(4)], 30, 1.0)
  measured = separability.measure(features, labels, max_per_class=10)
  assert measured["images"] == 20
  assert measured == separability.measure(features, labels, max_per_class=10)
  with pytest.raises(ValueError, match="two classes or more"):
    separability.measure(features[:30], labels[:30])
  with pytest.raises(ValueError, match="two classes or more"):
    separability.measure(features[29:31], labels[29:31])
