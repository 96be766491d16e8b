r"""Draws a grid of samples from a trained model, one row per class.

    python -m tfgt.sample --model_dir=/tmp/run --out=grid.png \
        [--checkpoint=latest|best|N] [--classes=8,9] [--per_class=8] [--seed=0]
        [--truncation=1,0.7,0.5] [--precision=float32]

`--model_dir` may be a training run's folder, its `model/` bundle, or a shipped
model such as `pretrained:fashion_mnist_biggan`. `--classes` takes model ids,
names, or `id:N`; a number that is also a class's name (classes "1" ... "10")
is refused as ambiguous. The rows' ids and names are printed in order.

    python -m tfgt.sample --model_dir=/tmp/run --out=interp.png \
        --interpolate="Bag,Ankle boot" [--per_class=8] [--rows=4]

`--interpolate=A,B` draws between two classes instead: `--rows` latents, each
a row, through `--per_class` class weights from A (first column, one-hot A,
the image of label A) to B (last column) in equal steps, the generator's own
way of mixing classes (BigGAN: the class embeddings and BN rows; a
hyper-modulated StyleGAN: its class space V, Hyper-Modulation's Fig. 3).

A grid has at most 67,108,864 pixels, as many as 8192 x 8192
(`MAX_GRID_PIXELS`: 10 rows of 32x32 images take up to 6143 columns); the
images are drawn 32 at a time.

`--truncation` draws one row per class and truncation value, the same latents
in every row: for a BigGAN a threshold t on every component of z (z clipped
to [-t, t]), for a StyleGAN psi in w (1 = none, 0 = the average image); see
`tfgt.models.architectures.generate`. Without it nothing is truncated.

`--precision=mixed_bfloat16` (or mixed_float16) draws with the generator's
layers computing in that dtype (`tfgt.precision`), from the same float32
weights; the images differ from float32's by a few grey levels.
`--precision=auto` chooses mixed_bfloat16 where the CPU or GPU computes
bfloat16 natively, else float32, and logs which.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable, Sequence

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from tfgt import cli
from tfgt import images
from tfgt import precision as precision_lib
from tfgt.data import class_lookup
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt import export as export_lib
from tfgt.models import architectures
from tfgt.models import bundle

FLAGS = flags.FLAGS

# The largest grid drawn, in pixels: 8192 x 8192, which image viewers and
# Pillow open (Pillow warns of a decompression bomb above 89 million).
MAX_GRID_PIXELS = 8192 * 8192
# Images drawn per forward pass.
BATCH_SIZE = 32


def define_flags() -> None:
  """Defines the command-line flags when run as a program."""
  flags.DEFINE_string("model_dir", None, "Run folder, bundle or pretrained:NAME.")
  flags.DEFINE_string("out", "samples.png", "Output PNG.")
  flags.DEFINE_string("checkpoint", "latest", "latest, best or a step number.")
  flags.DEFINE_list("classes", None, "Class ids, names or id:N (default: "
                    "all).")
  flags.DEFINE_integer("per_class", 8, "Samples per class (grid columns); "
                       f"a grid has at most {MAX_GRID_PIXELS:,} pixels "
                       "(as many as 8192 x 8192).")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")
  flags.DEFINE_list("interpolate", None, "Two classes (ids, names or id:N) "
                    "to draw between, one latent per row.")
  flags.DEFINE_integer("rows", 4, "Rows (latents) of --interpolate.")
  flags.DEFINE_list("truncation", None, "Truncation values, one row each per "
                    "class (default: none).")
  precision_lib.define_flag("The generator draws in")
  # Listed in --help with the command's own flags.
  flags.adopt_module_key_flags(precision_lib)


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
  return class_lookup.resolve_classes(values, names, setting="--classes",
                                      where="the model", unique=False)


def check_grid_size(generator: architectures.Generator, rows: int,
                    columns: int, fewer_rows: str) -> None:
  """Refuses a grid of more than `MAX_GRID_PIXELS` pixels.

  Args:
    generator: the model whose images (`resolution`, `channels`) are tiled.
    rows: rows of the grid.
    columns: images per row (--per_class).
    fewer_rows: how to ask for fewer rows, for the message.

  Raises:
    UserInputError: for a larger grid, with its size and the limit.
  """
  side = int(generator.resolution)
  height, width = rows * (side + 1) + 1, columns * (side + 1) + 1
  if height * width > MAX_GRID_PIXELS:
    most = (MAX_GRID_PIXELS // height - 1) // (side + 1)
    fix = (f"lower --per_class (at most {most} with {rows} rows) or "
           f"{fewer_rows}" if most >= 1 else fewer_rows)
    raise UserInputError(
        f"--per_class={columns} with {rows} rows of {side}x{side} images "
        f"makes a grid of {width:,} x {height:,} pixels, more than the "
        f"{MAX_GRID_PIXELS:,} (as many as 8192 x 8192) a grid may have: "
        f"{fix}.")


def _in_batches(draw: Callable[[tf.Tensor], tf.Tensor], inputs: tf.Tensor
                ) -> np.ndarray:
  """`draw` (a batch of `inputs` -> images in [-1, 1]) on `inputs`,
  `BATCH_SIZE` at a time, as one uint8 array [len(inputs), H, W, C]."""
  parts = [pipeline.to_uint8(draw(inputs[i:i + BATCH_SIZE])).numpy()
           for i in range(0, int(inputs.shape[0]), BATCH_SIZE)]
  return np.concatenate(parts)


def draw_grid(model_dir: str, checkpoint: str | int = "latest",
              classes: Sequence[str] | None = None, per_class: int = 8,
              seed: int = 0, truncations: Sequence[float] | None = None,
              precision: str = precision_lib.DEFAULT
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
    precision: the generator's compute precision (`tfgt.precision`).

  Returns:
    (uint8 image [H, W, C], the rows' model ids, the model's class names).

  Raises:
    UserInputError: no such model or checkpoint, an unknown or ambiguous
      class, per_class < 1, an unknown precision, or a grid of more than
      `MAX_GRID_PIXELS`.
  """
  if per_class < 1:
    raise UserInputError(f"--per_class={per_class}: draw at least 1.")
  checkpoint = bundle.parse_checkpoint(checkpoint, "--checkpoint")
  generator, _, spec = bundle.load(model_dir, checkpoint,
                                   precision=precision_lib.choose(precision))
  names = spec["class_names"]
  ids = class_ids(classes, names)
  row_ids = [c for c in ids for _ in (truncations or [None])]
  check_grid_size(generator, len(row_ids), per_class,
                  "choose fewer rows with --classes" + (
                      " or --truncation" if truncations else ""))
  z = tf.random.stateless_normal([per_class, generator.dim_z],
                                 seed=[seed, 0])
  rows = draw_rows(generator, ids, z, truncations)
  return images.grid(np.stack(rows)), row_ids, names


def draw_rows(generator, ids: Sequence[int], z: tf.Tensor,
              truncations: Sequence[float] | None, draw=None,
              in_batches: Callable = _in_batches) -> list[np.ndarray]:
  """The rows of `draw_grid`: per class id (and per truncation value,
  classes first), the images of latents z [N, dim_z].

  Args:
    generator: the generator contract of `tfgt.models.architectures`.
    ids: model class ids.
    z: float32 [N, dim_z]; column k of every row has latent k.
    truncations: None or values (each a row per class).
    draw: a compiled (z, labels) -> images for the untruncated draws
      (default: a new `tf.function` of the generator).
    in_batches: (draw of a batch, inputs) -> array, `BATCH_SIZE` at a time
      (default: uint8 images).

  Returns:
    One array [N, H, W, C] per row.
  """
  if not truncations:
    draw = draw or tf.function(
        lambda z, y: generator((z, y), training=False),
        reduce_retracing=True)
    return [in_batches(lambda z_b, c=c: draw(
        z_b, tf.fill([tf.shape(z_b)[0]], tf.constant(c, tf.int32))), z)
            for c in ids]
  rows = []
  for c in ids:
    for t in truncations:
      def draw_truncated(z_b, c=c, t=t):
        t_rows = tf.fill([tf.shape(z_b)[0]], tf.constant(t, tf.float32))
        z_t = (export_lib.truncate_latents(z_b, t_rows)
               if architectures.truncates_z(generator) else z_b)
        return architectures.generate(
            generator, z_t, tf.fill([tf.shape(z_b)[0]], c), t_rows)
      rows.append(in_batches(draw_truncated, z))
  return rows


def draw_interpolation(model_dir: str, pair: Sequence[str],
                       checkpoint: str | int = "latest", steps: int = 8,
                       rows: int = 4, seed: int = 0,
                       precision: str = precision_lib.DEFAULT
                       ) -> tuple[np.ndarray, list[int], list[str]]:
  """A grid from class A (first column) to class B (last column).

  Args:
    model_dir: a run's model_dir, a bundle folder or "pretrained:NAME".
    pair: the two classes, as `class_ids` takes them.
    checkpoint: "latest", "best" or a step number.
    steps: columns (>= 2): class weights (1 - a) A + a B, a = 0 ... 1.
    rows: latents (>= 1), one per row.
    seed: seed of the latents.
    precision: the generator's compute precision (`tfgt.precision`).

  Returns:
    (uint8 image [H, W, C], the two classes' ids, the model's class names).

  Raises:
    UserInputError: not two classes, steps < 2, rows < 1, or what
      `draw_grid` refuses.
  """
  if not pair or len(pair) != 2:
    raise UserInputError(f"--interpolate={','.join(pair or [])!r}: give two "
                         "classes of the model, by name or id, e.g. "
                         "--interpolate=\"Bag,Ankle boot\".")
  if steps < 2 or rows < 1:
    raise UserInputError(f"--per_class={steps} and --rows={rows}: an "
                         "interpolation needs at least 2 columns and 1 row.")
  checkpoint = bundle.parse_checkpoint(checkpoint, "--checkpoint")
  generator, _, spec = bundle.load(model_dir, checkpoint,
                                   precision=precision_lib.choose(precision))
  names = spec["class_names"]
  ids = class_ids(pair, names)
  if ids[0] == ids[1]:
    raise UserInputError(f"--interpolate={','.join(pair)!r} names class "
                         f"{names[ids[0]]!r} twice: give two different "
                         "classes.")
  check_grid_size(generator, rows, steps, "lower --rows")
  z = tf.random.stateless_normal([rows, generator.dim_z], seed=[seed, 0])
  ends = tf.one_hot(ids, generator.num_classes)
  a = tf.linspace(0.0, 1.0, steps)[:, None]
  weights = (1.0 - a) * ends[0] + a * ends[1]  # [steps, N]
  draw = tf.function(lambda z, w: generator((z, w), training=False),
                     reduce_retracing=True)
  grid = [_in_batches(lambda w, r=r: draw(
      tf.repeat(z[r:r + 1], tf.shape(w)[0], axis=0), w), weights)
          for r in range(rows)]
  return images.grid(np.stack(grid)), ids, names


def main(argv: Sequence[str]) -> None:
  cli.check_arguments(argv, required=("model_dir",))
  with cli.exit_on_bad_input():
    if FLAGS.interpolate:
      picture, ids, names = draw_interpolation(
          FLAGS.model_dir, FLAGS.interpolate, FLAGS.checkpoint,
          FLAGS.per_class, FLAGS.rows, FLAGS.seed, FLAGS.precision)
      message = (f"{FLAGS.rows} latents x {FLAGS.per_class} steps from "
                 f"{ids[0]}={names[ids[0]]} to {ids[1]}={names[ids[1]]}")
    else:
      truncations = parse_truncations(FLAGS.truncation)
      picture, ids, names = draw_grid(FLAGS.model_dir, FLAGS.checkpoint,
                                      FLAGS.classes, FLAGS.per_class,
                                      FLAGS.seed, truncations,
                                      FLAGS.precision)
      rows = [f"{i}={names[i]}" for i in ids]
      if truncations:
        rows = [f"{r} t={t:g}" for r, t in zip(
            rows, truncations * (len(ids) // len(truncations)))]
      message = (f"{len(ids)} rows x {FLAGS.per_class}, rows (id=name): " +
                 ", ".join(rows))
  try:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    images.save_png(picture, FLAGS.out)
  except OSError as e:
    logging.error("Cannot write --out=%s (%s): give a PNG path in a folder "
                  "you may write to.", FLAGS.out, e.strerror or e)
    sys.exit(2)
  print(f"Wrote {FLAGS.out}: {message}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
