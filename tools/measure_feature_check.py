r"""The measurements behind the feature check's thresholds
(`tfgt.eval.separability.THRESHOLDS`, docs/EVALUATION.md).

    python -m tools.measure_feature_check [--images_per_class=100] \
        [--seed=0] [--glyph_classifier=WEIGHTS]

With the shipped Fashion-MNIST classifier's features, on real images only:

  * the extractor's own domain: the spread unit (`domain_spread`, all 10
    classes of the test split), then every pair of the 10 classes with
    --images_per_class images each (the few-shot setting): nearest-neighbour
    separation and each class's spread, lowest first;
  * another domain, made by code: pairs of drawn digits
    (`tfgt.data.sources.glyphs`);
  * a blind extractor: the images' mean grey level as their only feature,
    on the same Fashion-MNIST pairs;
  * with --glyph_classifier (weights from `python -m
    tools.train_fashion_mnist_classifier --source=glyphs`): the glyph pairs
    with features of their own domain, spread in that domain's unit.

Prints a Markdown table of the ranges and writes nothing.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

from tfgt.data import sources
from tfgt.eval import features as features_lib
from tfgt.eval import separability

FLAGS = flags.FLAGS
GLYPH_PAIRS = ("01", "38", "49", "56", "17")


def glyph_pair(pair: str, count: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
  """`count` test images of each of two drawn digits
  (`tfgt.data.sources.glyphs`), uint8 [2 count, 32, 32, 1], and labels."""
  data = sources.glyphs("test", 32, 1, characters=pair,
                        images_per_class=count, seed=seed)
  return data.images, data.labels


def _row(label: str, results: Sequence[dict]) -> str:
  separation = [r["separation"] for r in results]
  spreads = [v["spread"] for r in results for v in r["per_class"].values()
             if v["spread"] is not None]
  spread = (f"{min(spreads):.2f} - {max(spreads):.2f}" if spreads else "-")
  return (f"| {label} | {len(results)} | {min(separation):.2f} - "
          f"{max(separation):.2f} | {spread} |")


def main(argv: Sequence[str]) -> None:
  del argv
  n, seed = FLAGS.images_per_class, FLAGS.seed
  rng = np.random.default_rng(seed)
  extractor = features_lib.FashionMNISTClassifier()

  def features(images: np.ndarray) -> np.ndarray:
    return features_lib.extract_features(
        extractor, images.astype(np.float32) / 127.5 - 1.0, 500)

  data = sources.fashion_mnist("test", 32, 1)
  feats = features(data.images)
  unit = separability.domain_spread(feats, data.labels, seed=seed)
  own, blind = [], []
  brightness = data.images.reshape(len(data.images), -1).mean(axis=1)
  for a, b in itertools.combinations(range(10), 2):
    pick = np.concatenate([
        rng.choice(np.flatnonzero(data.labels == c), n, replace=False)
        for c in (a, b)])
    own.append(separability.measure(feats[pick], data.labels[pick], unit))
    blind.append(separability.measure(brightness[pick, None],
                                      data.labels[pick]))
  drawn = []
  for pair in GLYPH_PAIRS:
    images, labels = glyph_pair(pair, n, seed)
    drawn.append(separability.measure(features(images), labels, unit))
  print(f"Spread unit (median class of the Fashion-MNIST test split): "
        f"{unit:.3f}; {n} images per class.\n")
  print("| images, features | pairs | separation | class spread |")
  print("|---|---|---|---|")
  print(_row("Fashion-MNIST, the classifier", own))
  print(_row("drawn digits (" + ", ".join("/".join(p) for p in GLYPH_PAIRS)
             + "), the classifier", drawn))
  print(_row("Fashion-MNIST, mean grey level only", blind))
  if FLAGS.glyph_classifier:
    own_glyphs = features_lib.FashionMNISTClassifier(
        FLAGS.glyph_classifier, domain="glyphs")
    images, labels = own_glyphs.domain()
    glyph_unit = separability.domain_spread(features_lib.extract_features(
        own_glyphs, images.astype(np.float32) / 127.5 - 1.0, 500), labels)
    rows = []
    for pair in GLYPH_PAIRS:
      images, labels = glyph_pair(pair, n, seed)
      feats = features_lib.extract_features(
          own_glyphs, images.astype(np.float32) / 127.5 - 1.0, 500)
      rows.append(separability.measure(feats, labels, glyph_unit))
    print(_row("drawn digits, the glyph classifier", rows))
  print(f"\nThresholds: separation {separability.THRESHOLDS.separation}, "
        f"spread {separability.THRESHOLDS.spread}.")


if __name__ == "__main__":
  flags.DEFINE_integer("images_per_class", 100, "Real images per class.")
  flags.DEFINE_integer("seed", 0, "Seed of the subsets and the glyphs.")
  flags.DEFINE_string("glyph_classifier", None,
                      "Weights of the classifier trained on the glyphs.")
  app.run(main)
