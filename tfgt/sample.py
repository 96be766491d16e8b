r"""Draws a grid of samples from a trained model, one row per class.

    python -m tfgt.sample --model_dir=/tmp/run --out=grid.png \
        [--checkpoint=latest|best|N] [--classes=8,9] [--per_class=8] [--seed=0]

`--model_dir` may be a training run's folder, its `model/` bundle, or a shipped
model such as `pretrained:fashion_mnist_biggan`. The class names of the rows
are printed in order.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from tfgt import images
from tfgt.errors import UserInputError
from tfgt.models import bundle

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags when run as a program."""
  flags.DEFINE_string("model_dir", None, "Run folder, bundle or pretrained:NAME.")
  flags.DEFINE_string("out", "samples.png", "Output PNG.")
  flags.DEFINE_string("checkpoint", "latest", "latest, best or a step number.")
  flags.DEFINE_list("classes", None, "Class ids or names (default: all).")
  flags.DEFINE_integer("per_class", 8, "Samples per class (grid columns).")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")


def class_ids(requested: Sequence[str] | None, names: Sequence[str]
              ) -> list[int]:
  """Resolves ids or names given on the command line."""
  if not requested:
    return list(range(len(names)))
  ids = []
  for c in requested:
    if c.isdigit() and int(c) < len(names):
      ids.append(int(c))
    elif c in names:
      ids.append(list(names).index(c))
    else:
      raise UserInputError(f"Unknown class {c!r}; the model has: "
                           + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
  return ids


def main(argv: Sequence[str]) -> None:
  del argv
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  try:
    checkpoint = bundle.parse_checkpoint(FLAGS.checkpoint, "--checkpoint")
    generator, _, spec = bundle.load(FLAGS.model_dir, checkpoint)
    names = spec["class_names"]
    ids = class_ids(FLAGS.classes, names)
  except UserInputError as e:
    logging.error("%s", e)
    sys.exit(2)
  z = tf.random.stateless_normal([FLAGS.per_class, generator.dim_z],
                                 seed=[FLAGS.seed, 0])
  draw = tf.function(lambda z, y: generator((z, y), training=False))
  picture = images.sample_grid(draw, ids, z)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  images.save_png(picture, FLAGS.out)
  print(f"Wrote {FLAGS.out}: {len(ids)} rows x {FLAGS.per_class}, rows: "
        + ", ".join(names[i] for i in ids))


if __name__ == "__main__":
  define_flags()
  app.run(main)
