r"""What a cGANTransfer run learned: scores, pseudo-classes, layer transfer.

    python tools/plot_similarity.py \
        --model_dir=runs/fashion_mnist/cgantransfer \
        [--out_dir=<model_dir>/similarity] [--checkpoint=latest] [--samples=8] \
        [--gin_param="SOURCE='...'"]

Reads the run's last training checkpoint (the EMA generator, whose scores,
pseudo-classes and residuals the exported bundle no longer holds) and writes,
as PNG files in --out_dir and as images in TensorBoard (<out_dir>/events):

  scores.png             heatmaps of the learned similarity scores, one row per
                         conditional BN layer (one row if shared), gain and
                         shift side by side: new classes x old classes;
  pseudo_classes.png     samples of every old class (source parameters) above
                         samples of its pseudo-class (the updated copy the new
                         classes combine; paper Fig. 8);
  layer_substitution.png per new class, row k uses the learned scores of
                         layers 1..k+1 and the first layer's scores above
                         (paper Fig. 9: the last row is the trained model).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
import gin
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfgt import config as config_lib  # pylint: disable=g-import-not-at-top
from tfgt import files  # pylint: disable=g-import-not-at-top
from tfgt import images as image_utils  # pylint: disable=g-import-not-at-top
from tfgt import run_folder  # pylint: disable=g-import-not-at-top
# Registers train, whose train.method the run's config binds.
from tfgt import train  # pylint: disable=g-import-not-at-top,unused-import
from tfgt.data import pipeline  # pylint: disable=g-import-not-at-top
from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top
from tfgt.methods import cgantransfer  # pylint: disable=g-import-not-at-top
from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
# pylint: disable-next=g-import-not-at-top
from tfgt.models import transfer_generator as tg
import tfgt.eval  # pylint: disable=g-import-not-at-top,unused-import


def load_run(model_dir: str, checkpoint: str | int = "latest",
             gin_params: Sequence[str] = ()
             ) -> tuple[tg.KnowledgeTransferGenerator, list[str]]:
  """The EMA transfer generator of a cGANTransfer run and its class names."""
  config = os.path.join(model_dir, run_folder.CONFIG)
  spec_dir = os.path.join(model_dir, run_folder.BUNDLE)
  if not os.path.exists(config) or not os.path.exists(
      os.path.join(spec_dir, bundle.SPEC_FILE)):
    raise UserInputError(f"{model_dir} is not a training run (config.gin or "
                         "model/model.json is missing).")
  class_names = bundle.read_spec(spec_dir)["class_names"]
  gin.clear_config()
  # Bindings that the code no longer knows are skipped with a warning, as
  # tfgt.evaluate does; a mistake in gin_params is an error.
  config_lib.parse([config], skip_unknown=True, finalize=False)
  config_lib.parse((), gin_params)
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  if not isinstance(method, cgantransfer.CGANTransfer):
    raise UserInputError(f"{model_dir} was trained with {method.name}; only "
                         "cGANTransfer runs have similarity scores.")
  setup = method.build(class_names)
  generator = setup.generator
  if checkpoint == "latest":
    path = tf.train.latest_checkpoint(model_dir)
  else:
    path = os.path.join(model_dir, f"ckpt-{int(checkpoint)}")
  if path is None or not tf.io.gfile.exists(path + ".index"):
    raise UserInputError(f"No training checkpoint {checkpoint!r} in "
                         f"{model_dir}.")
  status = tf.train.Checkpoint(ema_generator=generator).read(path)
  status.assert_existing_objects_matched().expect_partial()
  gin.clear_config()
  return generator, class_names


def score_heatmaps(generator: tg.KnowledgeTransferGenerator,
                   class_names: list[str]) -> np.ndarray:
  """Heatmaps [H, W, 3] uint8: per layer, gain and shift scores (M x N)."""
  n = generator.num_old_classes
  old, new = class_names[:n], class_names[n:]
  tables = generator.score_tables()
  names = generator.layer_names()
  if generator.similarity_scores is not None:
    tables, names = tables[:1], ["all layers (shared)"]
  values = np.stack([[g.numpy(), s.numpy()] for g, s in tables])
  low, high = float(values.min()), float(values.max())
  if high - low < 1e-6:
    low, high = low - 1e-3, high + 1e-3
  rows = len(tables)
  fig, axes = plt.subplots(
      rows, 2, squeeze=False, constrained_layout=True,
      figsize=(3 + 0.7 * n * 2, 0.9 + (0.35 * len(new) + 0.45) * rows))
  for r in range(rows):
    for c, kind in enumerate(("gain", "shift")):
      ax = axes[r, c]
      image = ax.imshow(values[r, c], cmap="viridis", vmin=low, vmax=high,
                        aspect="auto")
      ax.set_title(f"{names[r]}: {kind}", fontsize=8)
      ax.set_yticks(range(len(new)), new if c == 0 else [""] * len(new),
                    fontsize=7)
      ax.set_xticks(range(n), old if r == rows - 1 else [""] * n,
                    rotation=45, ha="right", fontsize=7)
      middle = (low + high) / 2
      for (i, j), v in np.ndenumerate(values[r, c]):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6,
                color="black" if v > middle else "white")
  fig.colorbar(image, ax=axes, shrink=0.5, label="score")
  fig.suptitle("Similarity scores: new classes (rows) x old classes "
               "(columns)", fontsize=9)
  return image_utils.figure_to_array(fig)


def _labelled_grid(tiles: np.ndarray, labels: list[str], title: str
                   ) -> np.ndarray:
  """tiles [rows, cols, H, W, C] uint8 -> a figure with one label per row."""
  picture = image_utils.grid(tiles)
  rows = tiles.shape[0]
  height = picture.shape[0] / 40 + 0.6
  fig, ax = plt.subplots(figsize=(picture.shape[1] / 40 + 2.5, height))
  ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
            cmap="gray", vmin=0, vmax=255)
  step = tiles.shape[2] + 1
  ax.set_yticks([1 + step * r + tiles.shape[2] / 2 for r in range(rows)],
                labels, fontsize=7)
  ax.set_xticks([])
  ax.set_title(title, fontsize=9)
  return image_utils.figure_to_array(fig)


def _draw(generator, labels: list[int], z: tf.Tensor) -> np.ndarray:
  """Tiles [len(labels), columns, H, W, C]: one row per label, shared z."""
  rows = []
  for label in labels:
    y = tf.fill([z.shape[0]], tf.constant(label, tf.int32))
    rows.append(pipeline.to_uint8(generator((z, y), training=False)).numpy())
  return np.stack(rows)


def pseudo_class_grid(generator: tg.KnowledgeTransferGenerator,
                      class_names: list[str], z: tf.Tensor) -> np.ndarray:
  """Each old class's samples above its pseudo-class's (paper Fig. 8)."""
  priors = []
  for layer in generator.transfer_layers():
    p = layer.new_classes
    priors.append((tf.convert_to_tensor(p.prior_gain_offset),
                   tf.convert_to_tensor(p.prior_shift)))
  n = generator.num_old_classes
  # Classes 0..N-1: the old classes; N..2N-1: their pseudo-classes.
  folded = tg.fold_generator(generator, new_rows=priors)
  labels, names = [], []
  for c in range(n):
    labels += [c, n + c]
    names += [class_names[c], f"pseudo {class_names[c]}"]
  return _labelled_grid(_draw(folded, labels, z), names,
                        "Old classes and their pseudo-classes")


def layer_substitution_grid(generator: tg.KnowledgeTransferGenerator,
                            class_names: list[str], z: tf.Tensor
                            ) -> np.ndarray:
  """Row k: the learned scores of layers 1..k+1, layer 1's beyond (Fig. 9)."""
  tables = generator.score_tables()
  layers = generator.transfer_layers()
  n, m = generator.num_old_classes, generator.num_new_classes
  per_k, folded = [], None
  for k in range(len(layers)):
    rows = [layer.new_classes.combine(*tables[l if l <= k else 0])
            for l, layer in enumerate(layers)]
    folded = tg.fold_generator(generator, new_rows=rows, into=folded)
    per_k.append(_draw(folded, list(range(n, n + m)), z))
  tiles, names = [], []
  names_of_layers = generator.layer_names()
  for j in range(m):
    for k in range(len(layers)):
      tiles.append(per_k[k][j])
      names.append(f"{class_names[n + j]}: own scores to "
                   f"{names_of_layers[k]}")
  return _labelled_grid(np.stack(tiles), names,
                        "Layer-wise transfer: first layer's scores beyond row")


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
  if generator.similarity_scores is None:
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
  scores = {name: {"gain": g.numpy().tolist(), "shift": s.numpy().tolist()}
            for name, (g, s) in zip(generator.layer_names(),
                                    generator.score_tables())}
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
