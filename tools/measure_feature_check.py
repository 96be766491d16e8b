r"""The measurements behind the feature check's thresholds
(`tfgt.eval.separability.THRESHOLDS`, docs/EVALUATION.md).

    python tools/measure_feature_check.py [--images_per_class=100] [--seed=0]

With the shipped Fashion-MNIST classifier's features, on real images only:

  * the extractor's own domain: the spread unit (`domain_spread`, all 10
    classes of the test split), then every pair of the 10 classes with
    --images_per_class images each (the few-shot setting): nearest-neighbour
    separation and each class's spread, lowest first;
  * another domain, drawn here: pairs of glyph classes (a character at a
    random size, position and grey level on black, 32x32);
  * a blind extractor: the images' mean grey level as their only feature,
    on the same Fashion-MNIST pairs.

Prints a Markdown table of the ranges and writes nothing.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from tfgt.data import sources
from tfgt.eval import features as features_lib
from tfgt.eval import separability

FLAGS = flags.FLAGS
GLYPH_PAIRS = (("0", "1"), ("A", "B"), ("x", "o"), ("7", "T"))


def glyphs(character: str, count: int, seed: int) -> np.ndarray:
  """`count` images uint8 [count, 32, 32, 1] of one character at a random
  size (14-25 px), place and grey level (160-255) on black."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    image = Image.new("L", (32, 32), 0)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=int(rng.integers(14, 26)))
    draw.text((int(rng.integers(0, 10)), int(rng.integers(-4, 6))),
              character, fill=int(rng.integers(160, 256)), font=font)
    out.append(np.asarray(image))
  return np.stack(out)[..., None]


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
  for i, (a, b) in enumerate(GLYPH_PAIRS):
    images = np.concatenate([glyphs(a, n, 2 * i + seed),
                             glyphs(b, n, 2 * i + 1 + seed)])
    drawn.append(separability.measure(features(images),
                                      np.repeat([0, 1], n), unit))
  print(f"Spread unit (median class of the Fashion-MNIST test split): "
        f"{unit:.3f}; {n} images per class.\n")
  print("| images, features | pairs | separation | class spread |")
  print("|---|---|---|---|")
  print(_row("Fashion-MNIST, the classifier", own))
  print(_row("glyphs (" + ", ".join("/".join(p) for p in GLYPH_PAIRS)
             + "), the classifier", drawn))
  print(_row("Fashion-MNIST, mean grey level only", blind))
  print(f"\nThresholds: separation {separability.THRESHOLDS.separation}, "
        f"spread {separability.THRESHOLDS.spread}.")


if __name__ == "__main__":
  flags.DEFINE_integer("images_per_class", 100, "Real images per class.")
  flags.DEFINE_integer("seed", 0, "Seed of the subsets and the glyphs.")
  app.run(main)
