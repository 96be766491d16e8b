r"""Draws a grid of samples from a trained model, one row per class.

    python -m tfgt.sample --model_dir=/tmp/run --out=grid.png \
        [--checkpoint=latest|best|N] [--classes=8,9] [--per_class=8] [--seed=0]

`--model_dir` may be a training run's folder, its `model/` bundle, or a shipped
model such as `pretrained:fashion_mnist_biggan`. `--classes` takes model ids,
names, or `id:N`; a number that is also a class's name (classes "1" ... "10")
is refused as ambiguous. The rows' ids and names are printed in order.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from tfgt import images
from tfgt.data import pipeline
from tfgt import errors
from tfgt.errors import UserInputError
from tfgt.models import bundle

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags when run as a program."""
  flags.DEFINE_string("model_dir", None, "Run folder, bundle or pretrained:NAME.")
  flags.DEFINE_string("out", "samples.png", "Output PNG.")
  flags.DEFINE_string("checkpoint", "latest", "latest, best or a step number.")
  flags.DEFINE_list("classes", None, "Class ids, names or id:N (default: "
                    "all).")
  flags.DEFINE_integer("per_class", 8, "Samples per class (grid columns).")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")


def class_ids(requested: Sequence[str] | None, names: Sequence[str]
              ) -> list[int]:
  """Resolves the --classes values: ids, names, or "id:N".

  A number is an id, unless a class name spells it too and names another
  class (a model with classes "1" ... "10"): such a value, and a name that
  several classes share, is refused with the "id:N" forms to write instead.
  A class may be given twice (two rows).

  Raises:
    UserInputError: for an unknown or ambiguous class.
  """
  if not requested:
    return list(range(len(names)))
  values = [int(c) if re.fullmatch(r"[0-9]+", c.strip()) else c.strip()
            for c in requested]
  return pipeline.resolve_classes(values, names, setting="--classes",
                                  where="the model", unique=False)


def draw_grid(model_dir: str, checkpoint: str | int = "latest",
              classes: Sequence[str] | None = None, per_class: int = 8,
              seed: int = 0) -> tuple[np.ndarray, list[int], list[str]]:
  """A grid of samples of a run or bundle, one row per class.

  Args:
    model_dir: a run's model_dir, a bundle folder or "pretrained:NAME".
    checkpoint: "latest", "best" or a step number.
    classes: ids, names or "id:N" (see `class_ids`); None: every class.
    per_class: columns (>= 1); column k has the same latent in every row.
    seed: seed of the latents.

  Returns:
    (uint8 image [H, W, C], the row's model ids, the model's class names).

  Raises:
    UserInputError: no such model or checkpoint, an unknown or ambiguous
      class, or per_class < 1.
  """
  if per_class < 1:
    raise UserInputError(f"--per_class={per_class}: draw at least 1.")
  checkpoint = bundle.parse_checkpoint(checkpoint, "--checkpoint")
  generator, _, spec = bundle.load(model_dir, checkpoint)
  names = spec["class_names"]
  ids = class_ids(classes, names)
  z = tf.random.stateless_normal([per_class, generator.dim_z],
                                 seed=[seed, 0])
  draw = tf.function(lambda z, y: generator((z, y), training=False))
  return images.sample_grid(draw, ids, z), ids, names


def main(argv: Sequence[str]) -> None:
  del argv
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  try:
    picture, ids, names = draw_grid(FLAGS.model_dir, FLAGS.checkpoint,
                                    FLAGS.classes, FLAGS.per_class,
                                    FLAGS.seed)
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  images.save_png(picture, FLAGS.out)
  print(f"Wrote {FLAGS.out}: {len(ids)} rows x {FLAGS.per_class}, rows "
        "(id=name): " + ", ".join(f"{i}={names[i]}" for i in ids))


if __name__ == "__main__":
  define_flags()
  app.run(main)
