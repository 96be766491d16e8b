r"""Draws a grid of samples from a trained model, one row per class.

    python -m tfgt.sample --model_dir=/tmp/run --out=grid.png \
        [--checkpoint=latest|best|N] [--classes=8,9] [--per_class=8] [--seed=0]
        [--truncation=1,0.7,0.5]

`--model_dir` may be a training run's folder, its `model/` bundle, or a shipped
model such as `pretrained:fashion_mnist_biggan`. `--classes` takes model ids,
names, or `id:N`; a number that is also a class's name (classes "1" ... "10")
is refused as ambiguous. The rows' ids and names are printed in order.

`--truncation` draws one row per class and truncation value, the same latents
in every row: for a BigGAN a threshold t on every component of z (z clipped
to [-t, t]), for a StyleGAN psi in w (1 = none, 0 = the average image); see
`tfgt.models.architectures.generate`. Without it nothing is truncated.
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
from tfgt import export as export_lib
from tfgt.models import architectures
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
  flags.DEFINE_list("truncation", None, "Truncation values, one row each per "
                    "class (default: none).")


def parse_truncations(values: Sequence[str] | None) -> list[float] | None:
  """--truncation values as floats > 0; None or empty: no truncation.

  Raises:
    UserInputError: a value that is not a number > 0.
  """
  if not values:
    return None
  out = []
  for value in values:
    try:
      t = float(value)
    except ValueError:
      t = float("nan")
    if not t > 0 or not np.isfinite(t):
      raise UserInputError(
          f"--truncation={value!r}: give numbers > 0, e.g. --truncation=1,0.7"
          ",0.5 (psi for a StyleGAN, 1 = none; a threshold on z for a "
          "BigGAN).")
    out.append(t)
  return out


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
              seed: int = 0, truncations: Sequence[float] | None = None
              ) -> tuple[np.ndarray, list[int], list[str]]:
  """A grid of samples of a run or bundle, one row per class (and per
  truncation value, classes first).

  Args:
    model_dir: a run's model_dir, a bundle folder or "pretrained:NAME".
    checkpoint: "latest", "best" or a step number.
    classes: ids, names or "id:N" (see `class_ids`); None: every class.
    per_class: columns (>= 1); column k has the same latent in every row.
    seed: seed of the latents.
    truncations: values > 0 (see the module docstring); None: untruncated.

  Returns:
    (uint8 image [H, W, C], the rows' model ids, the model's class names).

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
  if not truncations:
    draw = tf.function(lambda z, y: generator((z, y), training=False))
    return images.sample_grid(draw, ids, z), ids, names
  rows, row_ids = [], []
  for c in ids:
    for t in truncations:
      t_rows = tf.fill([per_class], tf.constant(t, tf.float32))
      z_t = (export_lib.truncate_latents(z, t_rows)
             if architectures.truncates_z(generator) else z)
      rows.append(architectures.generate(
          generator, z_t, tf.fill([per_class], c), t_rows))
      row_ids.append(c)
  picture = images.grid(np.stack([pipeline.to_uint8(r).numpy()
                                  for r in rows]))
  return picture, row_ids, names


def main(argv: Sequence[str]) -> None:
  del argv
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  try:
    truncations = parse_truncations(FLAGS.truncation)
    picture, ids, names = draw_grid(FLAGS.model_dir, FLAGS.checkpoint,
                                    FLAGS.classes, FLAGS.per_class,
                                    FLAGS.seed, truncations)
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  images.save_png(picture, FLAGS.out)
  rows = [f"{i}={names[i]}" for i in ids]
  if truncations:
    rows = [f"{r} t={t:g}" for r, t in zip(
        rows, truncations * (len(ids) // len(truncations)))]
  print(f"Wrote {FLAGS.out}: {len(ids)} rows x {FLAGS.per_class}, rows "
        "(id=name): " + ", ".join(rows))


if __name__ == "__main__":
  define_flags()
  app.run(main)
