"""Class consistency and within-class diversity (tfgt/eval/consistency.py):
a generator that swaps two classes scores low consistency, a collapsed one
low diversity."""

import numpy as np
import pytest

from tfgt.eval import consistency


def _real(rng, n=60):
  centres = np.array([[0.0] * 6, [4.0] * 6, [-4.0, 4.0] * 3])
  features = np.concatenate([c + rng.standard_normal((n, 6))
                             for c in centres])
  return centres, features, np.repeat([3, 4, 5], n)


def test_the_classifier_learns_the_real_classes():
  rng = np.random.default_rng(0)
  _, features, labels = _real(rng)
  model = consistency.LinearClassifier.fit(features, labels)
  assert np.mean(model.predict(features) == labels) > 0.95
  held_out = consistency.held_out_accuracy(features, labels)
  assert set(held_out) == {3, 4, 5} and min(held_out.values()) > 0.9
  # Deterministic.
  again = consistency.LinearClassifier.fit(features, labels)
  np.testing.assert_array_equal(model.weights, again.weights)
  with pytest.raises(ValueError, match="two classes or more"):
    consistency.LinearClassifier.fit(features[:60], labels[:60])
  with pytest.raises(ValueError, match="at least 5"):
    consistency.held_out_accuracy(features[:64], labels[:64])


def test_a_generator_that_swaps_two_classes_scores_low_consistency():
  rng = np.random.default_rng(1)
  centres, features, labels = _real(rng)

  def draws(c):
    return centres[c] + rng.standard_normal((40, 6))

  right = consistency.class_consistency(
      features, labels, {3: draws(0), 4: draws(1), 5: draws(2)})
  swapped = consistency.class_consistency(
      features, labels, {3: draws(1), 4: draws(0), 5: draws(2)})
  for c in (3, 4, 5):
    assert right[c]["consistency"] > 0.9
    assert right[c]["real_accuracy"] > 0.9
  assert swapped[3]["consistency"] < 0.1 and swapped[4]["consistency"] < 0.1
  assert swapped[5]["consistency"] > 0.9


def test_a_collapsed_class_scores_low_diversity():
  rng = np.random.default_rng(2)
  real = rng.standard_normal((80, 10))
  varied = consistency.diversity(real, rng.standard_normal((80, 10)))
  collapsed = consistency.diversity(real,
                                    0.05 * rng.standard_normal((80, 10)))
  assert 0.9 < varied["diversity"] < 1.1
  assert collapsed["diversity"] < 0.1
  assert collapsed["real_distance"] == varied["real_distance"]
  # Pixels: any shape per sample is flattened.
  images = rng.standard_normal((20, 4, 4, 1))
  assert consistency.diversity(images, images)["diversity"] == 1.0
