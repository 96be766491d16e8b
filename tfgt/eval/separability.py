"""Can the features see the classes? A check of a feature space on real images.

FID, KID and their per-class versions compare distributions in the feature
space of an extractor trained on some domain (Inception on ImageNet, the
shipped classifier on Fashion-MNIST). On images of another domain the
features can be blind to what tells the evaluated classes apart, or map all
the images of a class to nearly one point; the scores are then low whatever
the generator draws, and nothing in them says so. This module measures, on
the real images of the evaluated classes:

  nn_accuracy   leave-one-out nearest-neighbour accuracy: the fraction of
                images whose nearest other image (Euclidean distance in
                feature space) has the same class. 1 when the classes are
                apart; chance (about 1 / K for K balanced classes) when the
                features cannot tell them apart.
  spread        per class, the mean distance between two of its images,
                over the same on the extractor's own domain
                (`domain_spread`): about 1 when a class is as spread as the
                extractor's own classes are, near 0 when the features
                collapse it.

`check` turns them into warnings, with the thresholds of `THRESHOLDS`
(docs/EVALUATION.md gives the measurements that chose them).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

# Images per class the check uses at most (a seeded subset beyond): the
# distances are O(n^2) in memory and time.
MAX_PER_CLASS = 500
# Images per class of the extractor's own domain that its spread unit uses:
# the median of ten class spreads moves by about 1 % between 200 and 1000
# (Fashion-MNIST, the shipped classifier).
DOMAIN_PER_CLASS = 200


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """Below these, `check` warns.

  Attributes:
    separation: the nearest-neighbour accuracy's share of the way from
      chance to 1, (nn_accuracy - chance) / (1 - chance).
    spread: a class's spread relative to the extractor's own domain.
  """
  separation: float = 0.5
  spread: float = 0.5


THRESHOLDS = Thresholds()


def subset(features: np.ndarray, labels: np.ndarray, max_per_class: int,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
  """At most `max_per_class` rows of each class (a seeded choice, in
  order): (features, labels)."""
  rng = np.random.default_rng(seed)
  keep = []
  for c in np.unique(labels):
    where = np.flatnonzero(labels == c)
    if len(where) > max_per_class:
      where = np.sort(rng.choice(where, max_per_class, replace=False))
    keep.append(where)
  keep = np.concatenate(keep)
  return features[keep], labels[keep]


def _squared_distances(x: np.ndarray) -> np.ndarray:
  x = x.astype(np.float64)
  norms = np.sum(x * x, axis=1)
  d = norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)
  return np.maximum(d, 0.0)


def mean_pairwise_distance(features: np.ndarray) -> float:
  """The mean Euclidean distance between two different rows of
  features [n, D] (n >= 2), float64."""
  n = len(features)
  if n < 2:
    raise ValueError(f"A spread needs at least 2 images, got {n}.")
  d = np.sqrt(_squared_distances(features))
  return float(d.sum() / (n * (n - 1)))


def domain_spread(features: np.ndarray, labels: np.ndarray,
                  max_per_class: int = DOMAIN_PER_CLASS,
                  seed: int = 0) -> float:
  """The median over classes of their mean pairwise distance: the spread of
  a class in the extractor's own domain, the unit of `measure`'s spread.

  Args:
    features: float [n, D] of real images of the extractor's domain.
    labels: int [n], their classes (each with >= 2 images).
  """
  features, labels = subset(np.asarray(features), np.asarray(labels),
                             max_per_class, seed)
  return float(np.median([mean_pairwise_distance(features[labels == c])
                          for c in np.unique(labels)]))


def measure(features: np.ndarray, labels: np.ndarray,
            reference_spread: float | None = None,
            max_per_class: int = MAX_PER_CLASS, seed: int = 0) -> dict:
  """Nearest-neighbour accuracy and spread of real images' features.

  Args:
    features: float [n, D], the real images' features.
    labels: int [n], their classes (the generator's class ids); two classes
      or more, each with at least 2 images.
    reference_spread: `domain_spread` of the extractor's own domain, or None
      (then spreads are reported unnormalised and not judged).
    max_per_class: images per class used at most (a seeded subset).
    seed: of that subset.

  Returns:
    {"nn_accuracy", "chance", "separation", "images", "per_class": {class
    id (str): {"nn_accuracy", "spread", "distance"}}, "min_spread",
    "reference_spread"}: floats; "distance" is the class's mean pairwise
    distance, "spread" that over `reference_spread` (None without one);
    "chance" the accuracy of a guess in proportion to the class sizes.

  Raises:
    ValueError: fewer than two classes, or a class with fewer than 2 images.
  """
  features, labels = subset(np.asarray(features), np.asarray(labels),
                             max_per_class, seed)
  classes, counts = np.unique(labels, return_counts=True)
  if len(classes) < 2 or counts.min() < 2:
    raise ValueError("The feature check needs two classes or more with 2 "
                     f"images each; got counts {dict(zip(classes, counts))}.")
  d = _squared_distances(features)
  np.fill_diagonal(d, np.inf)
  nearest = labels[np.argmin(d, axis=1)]
  hit = nearest == labels
  share = counts / counts.sum()
  # Leave-one-out: an image's own class has one fewer candidate.
  chance = float(np.sum(share * (counts - 1) / (counts.sum() - 1)))
  accuracy = float(hit.mean())
  per_class = {}
  for c in classes:
    distance = mean_pairwise_distance(features[labels == c])
    per_class[str(int(c))] = dict(
        nn_accuracy=float(hit[labels == c].mean()), distance=distance,
        spread=(distance / reference_spread if reference_spread else None))
  spreads = [v["spread"] for v in per_class.values() if v["spread"] is not None]
  return dict(nn_accuracy=accuracy, chance=chance,
              separation=(accuracy - chance) / (1.0 - chance),
              images=int(len(labels)), per_class=per_class,
              min_spread=min(spreads) if spreads else None,
              reference_spread=reference_spread)


def check(measured: Mapping, class_names: Mapping[str, str] | None = None,
          thresholds: Thresholds = THRESHOLDS) -> list[str]:
  """Warnings (empty when none) for a `measure` result: features that
  cannot tell the classes apart, and classes they collapse.

  Args:
    measured: as `measure` returns.
    class_names: class id (str) -> name, for the messages.
    thresholds: the limits.
  """
  names = class_names or {}
  out = []
  if measured["separation"] < thresholds.separation:
    out.append(
        f"The feature extractor barely tells the evaluated classes apart: "
        f"the nearest neighbour of a real image is of its own class "
        f"{measured['nn_accuracy']:.0%} of the time (chance "
        f"{measured['chance']:.0%}; below {thresholds.separation:.0%} of "
        "the way from chance to 100 % the scores cannot be trusted). FID, "
        "KID and their per-class versions will be low whatever the "
        "generator draws for these classes: use features trained on this "
        "domain (docs/EVALUATION.md).")
  collapsed = [f"{names.get(c, c)} ({v['spread']:.2f})"
               for c, v in measured["per_class"].items()
               if v["spread"] is not None and v["spread"] < thresholds.spread]
  if collapsed:
    out.append(
        "The feature extractor collapses the real images of "
        + ", ".join(collapsed) + f": their spread in feature space is below "
        f"{thresholds.spread} of a class of the extractor's own domain, so "
        "samples that all look alike score as well as varied ones. Use "
        "features trained on this domain (docs/EVALUATION.md).")
  return out


def summary(measured: Mapping) -> dict[str, float]:
  """The scalars the evaluator adds to its results (the terminal line,
  best.json, TensorBoard): {"features_separation"} and
  "features_min_spread" when the spread is normalised."""
  out = {"features_separation": measured["separation"]}
  if measured.get("min_spread") is not None:
    out["features_min_spread"] = measured["min_spread"]
  return out
