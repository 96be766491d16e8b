r"""What a cGANTransfer run learned: scores, pseudo-classes, layer transfer.

    python -m tools.plot_similarity \
        --model_dir=runs/fashion_mnist/cgantransfer \
        [--out_dir=<model_dir>/similarity] [--checkpoint=latest] [--samples=8] \
        [--gin_param="SOURCE='...'"]

Reads the run's last training checkpoint (the EMA generator, whose scores,
pseudo-classes and residuals the exported bundle no longer holds) and writes,
as PNG files in --out_dir and as images in TensorBoard (<out_dir>/events):

  scores.png             heatmaps of the learned similarity scores, one row per
                         conditional BN layer (one row if shared), gain and
                         shift side by side: new classes x old classes (a
                         StyleGAN2 source: one table, its label embedding);
  pseudo_classes.png     samples of every old class (source parameters) above
                         samples of its pseudo-class (the updated copy the new
                         classes combine; paper Fig. 8);
  layer_substitution.png per new class, row k uses the learned scores of
                         layers 1..k+1 and the first layer's scores above
                         (paper Fig. 9: the last row is the trained model;
                         BigGAN sources with per-layer scores).

The pictures are drawn by tfgt/similarity.py (`tfgt.Run.score_heatmaps`
returns the first from Python); this tool writes them, their TensorBoard
images and scores.json.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
import matplotlib
matplotlib.use("Agg")
# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf

from tfgt import files
from tfgt import images as image_utils
from tfgt import similarity
from tfgt.errors import UserInputError
# pylint: enable=g-import-not-at-top,wrong-import-position

# The library's functions (tfgt/similarity.py), under this tool's names.
load_run = similarity.load_run
score_heatmaps = similarity.score_heatmaps
pseudo_class_grid = similarity.pseudo_class_grid
layer_substitution_grid = similarity.layer_substitution_grid


def plot(model_dir: str, out_dir: str | None = None,
         checkpoint: str | int = "latest", samples: int = 8, seed: int = 0,
         gin_params: Sequence[str] = ()) -> dict[str, str]:
  """Writes the three pictures; returns {name: PNG path}."""
  generator, class_names = load_run(model_dir, checkpoint, gin_params)
  out_dir = out_dir or os.path.join(model_dir, "similarity")
  os.makedirs(out_dir, exist_ok=True)
  z = tf.random.stateless_normal([samples, generator.dim_z], seed=[seed, 0])
  pictures = {"scores": score_heatmaps(generator, class_names),
              "pseudo_classes": pseudo_class_grid(generator, class_names, z)}
  if similarity.has_layer_substitution(generator):
    pictures["layer_substitution"] = layer_substitution_grid(
        generator, class_names, z)
  paths = {}
  writer = tf.summary.create_file_writer(os.path.join(out_dir, "events"))
  with writer.as_default(step=0):
    for name, picture in pictures.items():
      paths[name] = os.path.join(out_dir, f"{name}.png")
      image_utils.save_png(picture, paths[name])
      tf.summary.image(f"similarity/{name}", picture[None], max_outputs=1)
  writer.flush()
  scores = {name: {kind: table.tolist() for kind, table in kinds.items()}
            for name, kinds in generator.named_score_tables()}
  paths["scores_json"] = os.path.join(out_dir, "scores.json")
  files.write_json(paths["scores_json"], {
      "old_classes": class_names[:generator.num_old_classes],
      "new_classes": class_names[generator.num_old_classes:],
      "scores": scores})
  return paths


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_string("model_dir", None, "A cGANTransfer training run.")
  flags.DEFINE_string("out_dir", None,
                      "Output folder (<model_dir>/similarity).")
  flags.DEFINE_string("checkpoint", "latest", "'latest' or a training step.")
  flags.DEFINE_integer("samples", 8, "Samples per row.")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")
  flags.DEFINE_multi_string("gin_param", [], "Bindings applied after the run's "
                            "config (e.g. a moved SOURCE).")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  try:
    paths = plot(FLAGS.model_dir, FLAGS.out_dir, FLAGS.checkpoint,
                 FLAGS.samples, FLAGS.seed, FLAGS.gin_param)
  except UserInputError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for name, path in paths.items():
    print(f"{name}: {path}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
