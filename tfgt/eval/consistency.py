"""Class consistency and within-class diversity of a conditional generator.

FID and its per-class version compare distributions of features; they miss a
generator that draws class A's images when asked for class B (mFID stays
good if both classes are drawn well), and they reward a class whose samples
all look alike less than a person would penalise it. Two scores say it
directly, per class:

  consistency   the accuracy, on the generated samples of each class, of a
                classifier of the evaluated classes trained on their real
                images (`LinearClassifier`: multinomial logistic regression
                on standardised features, L-BFGS from SciPy), beside the
                same classifier's accuracy on held-out real images
                (k-fold cross-validation), which is the best a generator
                can expect from it.
  diversity     the mean distance between two generated samples of a class
                over the same between two real images of the class (1: as
                varied as the real images; near 0: every sample alike), in
                feature space and in pixel space, with the real value
                beside it (`diversity`).

Both work on any feature space (`tfgt.eval.features`) or on pixels, and
both are only as good as the features: `tfgt.eval.separability` says when
the features cannot tell the classes apart.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
from scipy import optimize

from tfgt.errors import UserInputError
from tfgt.eval import registry
from tfgt.eval import separability

# Images per class the pairwise distances use at most (seeded subsets).
MAX_PER_CLASS = separability.MAX_PER_CLASS


@dataclasses.dataclass
class LinearClassifier:
  """Multinomial logistic regression on standardised features.

  Attributes:
    classes: the class ids, int [K] (sorted).
    mean, scale: the standardisation, float64 [D] each.
    weights: float64 [D + 1, K] (the last row is the bias).
  """
  classes: np.ndarray
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray

  @classmethod
  def fit(cls, features: np.ndarray, labels: np.ndarray,
          l2: float = 1e-2, max_iterations: int = 500) -> "LinearClassifier":
    """Trains on features [n, D] (float) and labels [n] (int, >= 2 classes).

    Minimises the mean cross-entropy plus l2 / 2 * |W|^2 (bias excluded)
    with L-BFGS from zero weights: deterministic.

    Raises:
      ValueError: fewer than two classes.
    """
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
      raise ValueError(f"A classifier needs two classes or more, got "
                       f"{len(classes)}.")
    x = np.asarray(features, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    x = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    n, dim = x.shape
    k = len(classes)
    onehot = np.eye(k)[y]
    penalty = np.ones((dim, 1))
    penalty[-1] = 0.0

    def loss_and_gradient(flat):
      w = flat.reshape(dim, k)
      logits = x @ w
      logits -= logits.max(axis=1, keepdims=True)
      p = np.exp(logits)
      p /= p.sum(axis=1, keepdims=True)
      loss = -np.sum(onehot * np.log(np.maximum(p, 1e-300))) / n
      loss += 0.5 * l2 * np.sum(penalty * w * w)
      gradient = x.T @ (p - onehot) / n + l2 * penalty * w
      return loss, gradient.ravel()

    result = optimize.minimize(loss_and_gradient, np.zeros(dim * k),
                               jac=True, method="L-BFGS-B",
                               options=dict(maxiter=max_iterations))
    return cls(classes, mean, scale, result.x.reshape(dim, k))

  def predict(self, features: np.ndarray) -> np.ndarray:
    """The class ids int [n] of features [n, D]."""
    x = (np.asarray(features, np.float64) - self.mean) / self.scale
    logits = x @ self.weights[:-1] + self.weights[-1]
    return self.classes[np.argmax(logits, axis=1)]


def held_out_accuracy(features: np.ndarray, labels: np.ndarray,
                      folds: int = 5, seed: int = 0) -> dict[int, float]:
  """Per class, the accuracy of `LinearClassifier` on real images it was
  not trained on (k-fold cross-validation, folds stratified by class).

  Args:
    features: float [n, D]; labels: int [n], every class with >= `folds`
      images.

  Returns:
    {class id: accuracy in [0, 1]}.

  Raises:
    ValueError: a class with fewer images than folds.
  """
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  fold = np.empty(len(labels), np.int64)
  for c in np.unique(labels):
    where = np.flatnonzero(labels == c)
    if len(where) < folds:
      raise ValueError(f"Class {c} has {len(where)} real images; held-out "
                       f"accuracy needs at least {folds}.")
    fold[rng.permutation(where)] = np.arange(len(where)) % folds
  predicted = np.empty_like(labels)
  for f in range(folds):
    test = fold == f
    model = LinearClassifier.fit(features[~test], labels[~test])
    predicted[test] = model.predict(features[test])
  return {int(c): float(np.mean(predicted[labels == c] == c))
          for c in np.unique(labels)}


def class_consistency(real: np.ndarray, real_labels: np.ndarray,
                      generated: Mapping[int, np.ndarray],
                      folds: int = 5, seed: int = 0) -> dict[int, dict]:
  """Per class, the share of its generated samples that a classifier of
  the evaluated classes (trained on all their real images) assigns to it,
  and the same classifier's held-out accuracy on real images.

  Args:
    real: float [n, D], real images' features (or pixels, flattened).
    real_labels: int [n], their class ids (two classes or more).
    generated: class id -> float [m, D], its generated samples' features.
    folds, seed: of the held-out accuracy.

  Returns:
    {class id: {"consistency", "real_accuracy"}}, both in [0, 1].
  """
  model = LinearClassifier.fit(real, real_labels)
  real_accuracy = held_out_accuracy(real, real_labels, folds, seed)
  return {int(c): dict(consistency=float(np.mean(model.predict(x) == c)),
                       real_accuracy=real_accuracy[int(c)])
          for c, x in generated.items()}


def diversity(real: np.ndarray, generated: np.ndarray,
              max_per_class: int = MAX_PER_CLASS, seed: int = 0
              ) -> dict[str, float]:
  """Within-class diversity of one class: {"diversity": generated / real
  mean pairwise distance, "real_distance", "generated_distance"}.

  Args:
    real, generated: float [n, D] and [m, D] (features, or pixels
      flattened), n, m >= 2; at most `max_per_class` of each (seeded).
  """
  rng = np.random.default_rng(seed)

  def distance(x):
    x = np.asarray(x).reshape(len(x), -1)
    if len(x) > max_per_class:
      x = x[np.sort(rng.choice(len(x), max_per_class, replace=False))]
    return separability.mean_pairwise_distance(x)

  real_distance, generated_distance = distance(real), distance(generated)
  return dict(diversity=generated_distance / real_distance
              if real_distance > 0 else float("nan"),
              real_distance=real_distance,
              generated_distance=generated_distance)


# The evaluator's entries (tfgt.eval.registry), per class and averaged:
# mconsistency (and mconsistency_real, the classifier's held-out accuracy on
# real images), mdiversity (and mdiversity_real, the real images' mean
# pairwise distance in feature space), mdiversity_pixels (below).
# Consistency: higher is better; at 1 / (number of classes) the classifier
# guesses. Diversity: the nearer 1 the better (train.best_metric keeps the
# value nearest 1): below 1 the samples of a class vary less than its real
# images (collapse, memorised images), above 1 more (off-class or noisy
# samples; a diversity far above 1 with low consistency is samples that are
# not the class). The *_real values describe the real images alone.
def _consistency(real: np.ndarray, real_ids: np.ndarray,
                 fake_by_class: Mapping[int, np.ndarray],
                 settings) -> dict[int, dict[str, float]]:
  real, real_ids = separability.subset(real, real_ids, MAX_PER_CLASS,
                                       settings.seed)
  values = class_consistency(real, real_ids, fake_by_class,
                             seed=settings.seed)
  return {c: dict(consistency=v["consistency"],
                  consistency_real=v["real_accuracy"])
          for c, v in values.items()}


def _defined(values: dict[str, float], metric: str) -> dict[str, float]:
  """`values` of `diversity`, refused when the real distance is 0."""
  if not values["real_distance"] > 0:
    raise UserInputError(
        f"The real images of an evaluated class are all alike (mean pairwise "
        f"distance 0 for {metric}): a diversity relative to them is "
        f"undefined. Leave {metric} out of Evaluator.metrics for these "
        "classes.")
  return values


def _diversity(real: np.ndarray, fake: np.ndarray,
               settings) -> dict[str, float]:
  values = _defined(diversity(real, fake, seed=settings.seed), "mdiversity")
  return dict(diversity=values["diversity"],
              diversity_real=values["real_distance"])


def _pixel_diversity(real: np.ndarray, fake: np.ndarray,
                     settings) -> dict[str, float]:
  # uint8 [n, H, W, C] -> [-1, 1]; the real distance per pixel (the mean
  # pairwise root-mean-square difference, in [0, 2]) reads the same at
  # every resolution.
  def scaled(x):
    x = np.asarray(x, np.float32) / 127.5 - 1.0
    return x.reshape(len(x), -1)
  values = _defined(diversity(scaled(real), scaled(fake), seed=settings.seed),
                    "mdiversity_pixels")
  return dict(diversity_pixels=values["diversity"],
              diversity_pixels_real=values["real_distance"] /
              np.sqrt(np.prod(real.shape[1:])))


def _two_classes(names) -> None:
  if len(names) < 2:
    raise UserInputError(
        f"mconsistency classifies samples among the evaluated classes, and "
        f"there is {len(names)}: evaluate two classes or more, or leave "
        "mconsistency out of Evaluator.metrics.")


registry.register(registry.Metric(
    name="mconsistency", keys=("consistency", "consistency_real"),
    per_class=True, inputs=registry.CLASSES, compute=_consistency,
    higher_is_better=True, reference_keys=("consistency_real",),
    min_rows=(5, 1), check_classes=_two_classes))
registry.register(registry.Metric(
    name="mdiversity", keys=("diversity", "diversity_real"), per_class=True,
    compute=_diversity, target=1.0, reference_keys=("diversity_real",),
    min_rows=(2, 2)))
# The same in pixel space (mdiversity_pixels, and mdiversity_pixels_real,
# the real images' mean root-mean-square difference per pixel in [-1, 1]
# units): blind to no extractor, but it also counts differences a person
# would not call variety (a shifted copy is far from the original).
registry.register(registry.Metric(
    name="mdiversity_pixels", keys=("diversity_pixels",
                                    "diversity_pixels_real"),
    per_class=True, inputs=registry.PIXELS, compute=_pixel_diversity,
    target=1.0, reference_keys=("diversity_pixels_real",), min_rows=(2, 2)))
