"""What a cGANTransfer run learned, as pictures: scores, pseudo-classes and
layer-wise transfer.

    generator, class_names = similarity.load_run("runs/demo")
    picture = similarity.score_heatmaps(generator, class_names)  # uint8 RGB

cGANTransfer learns, per conditional batch norm, each new class's gain and
shift as a combination of the old classes' (its similarity scores), of
updated copies of the old classes' rows (the pseudo-classes) and of
residuals; from a class-conditional StyleGAN2 it learns each new class's
label embedding so (`tfgt.models.stylegan2_transfer`). The run's training
checkpoints (`ckpt-<step>`) hold them in the EMA generator, a
`KnowledgeTransferGenerator` or `StyleGAN2TransferGenerator`; the bundles
in `model/` do not: they hold the generator folded into a plain one. `load_run` reads that generator back; the other functions draw what
it learned:

  score_heatmaps           the scores, new classes x old classes, per layer;
  pseudo_class_grid        every old class above its pseudo-class (paper
                           Fig. 8);
  layer_substitution_grid  per new class, the learned scores of the first
                           layers and the first layer's scores beyond (paper
                           Fig. 9; a BigGAN's, `has_layer_substitution`).

`tools.plot_similarity` writes them as PNG files; `tfgt.Run.score_heatmaps`
returns the first. The pictures are drawn with matplotlib's default style,
whatever the caller's settings (a notebook's inline backend among them), so
that the same run gives the same pixels everywhere.
"""

from __future__ import annotations

import os
from typing import Sequence

import gin
from matplotlib import figure as figure_lib
from matplotlib import style as style_lib
import numpy as np
import tensorflow as tf

from tfgt import checkpoints
from tfgt import config as config_lib
from tfgt import images as image_utils
from tfgt import run_folder
# Registers train, whose train.method the run's config binds.
from tfgt import train  # pylint: disable=unused-import
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.methods import cgantransfer
from tfgt.models import bundle
from tfgt.models import stylegan2_transfer as sg2t
from tfgt.models import transfer_generator as tg
# Registers the evaluator, which the run's config may bind.
import tfgt.eval  # pylint: disable=unused-import,g-bad-import-order

__all__ = ["load_run", "score_heatmaps", "pseudo_class_grid",
           "has_layer_substitution", "layer_substitution_grid"]

# The transfer generators of cGANTransfer runs: a BigGAN's (scores per
# conditional BN) and a class-conditional StyleGAN2's (one table of scores,
# its label embedding).
TransferGenerator = (tg.KnowledgeTransferGenerator |
                     sg2t.StyleGAN2TransferGenerator)


def has_layer_substitution(generator: TransferGenerator) -> bool:
  """Whether `layer_substitution_grid` applies: a BigGAN transfer with
  scores of its own per layer."""
  return (isinstance(generator, tg.KnowledgeTransferGenerator) and
          generator.similarity_scores is None)


def _training_step(model_dir: str, checkpoint: str | int) -> str:
  """The prefix of the training checkpoint `checkpoint` of a run.

  Args:
    model_dir: the run folder.
    checkpoint: "latest" (the newest `ckpt-<step>.index` in the folder) or a
      step (an int >= 0 or a str of digits).

  Returns:
    The checkpoint's prefix, `<model_dir>/ckpt-<step>`, read whole.

  Raises:
    UserInputError: another value, no such checkpoint (the message lists the
      steps there) or an unreadable one.
  """
  steps = checkpoints.steps_on_disk(model_dir)
  there = (f"the training checkpoints there are at steps {steps}" if steps
           else "it holds no training checkpoint (ckpt-<step>.index): train "
           "it first")
  try:
    choice = bundle.parse_checkpoint(checkpoint)
  except UserInputError:
    raise UserInputError(
        f"checkpoint={checkpoint!r} names no training checkpoint: give "
        f"'latest' or a step number ({there}).") from None
  if choice == "latest":
    if not steps:
      raise UserInputError(f"No training checkpoint in {model_dir}: {there}.")
    return _read_whole(checkpoints.prefix(model_dir, steps[-1]))
  if choice == "best":
    raise UserInputError(
        f"checkpoint='best': the scores are in the training checkpoints "
        f"(ckpt-<step>) of {model_dir}, not in its model/best bundle: give "
        f"'latest' or a step number ({there}).")
  if choice not in steps:
    raise UserInputError(f"No training checkpoint {choice} in "
                         f"{model_dir}: {there}.")
  return _read_whole(checkpoints.prefix(model_dir, choice))


def _read_whole(path: str) -> str:
  """`path`, once every tensor of it was read (`checkpoints.verify`)."""
  checkpoints.verify(path)
  return path


def load_run(model_dir: str, checkpoint: str | int = "latest",
             gin_params: Sequence[str] = ()
             ) -> tuple[TransferGenerator, list[str]]:
  """The EMA transfer generator of a cGANTransfer run and its class names.

  The run's config.gin is read on a gin config of its own (the caller's is
  put back afterwards); bindings that this version no longer knows are
  skipped with a warning, as tfgt.evaluate skips them. The method builds the
  generator on its source (`CGANTransfer.source`, read again: a relative
  path is relative to the working directory), then the EMA generator's
  weights are read from the training checkpoint.

  Args:
    model_dir: the folder of a cGANTransfer training run (--model_dir of
      tfgt.train), with config.gin, model/model.json and `ckpt-<step>`
      files.
    checkpoint: "latest" (the newest training checkpoint in the folder) or
      the step of one (an int, or a str of digits).
    gin_params: gin bindings parsed after the run's config, e.g.
      "SOURCE = '/moved/source'" for a source that is no longer where the run
      found it.

  Returns:
    (generator, class_names): the built transfer generator
    (`KnowledgeTransferGenerator` or `StyleGAN2TransferGenerator`) of N
    old + M new classes with the checkpoint's EMA weights (call it with
    (z float32 [B, dim_z], labels int32 [B]) for float32 images [B, R, R, C]
    in [-1, 1]), and the N + M class names, old classes first.

  Raises:
    UserInputError: `model_dir` is not a training run (config.gin or
      model/model.json missing), its method is not cGANTransfer, a mistake
      in `gin_params` or a source that cannot be read (one line naming the
      binding and the fix), a checkpoint that is not "latest" or a step, no
      such training checkpoint (the steps there are listed), or one that
      cannot be read.
  """
  config = os.path.join(model_dir, run_folder.CONFIG)
  spec_dir = os.path.join(model_dir, run_folder.BUNDLE)
  if not os.path.exists(config) or not os.path.exists(
      os.path.join(spec_dir, bundle.SPEC_FILE)):
    raise UserInputError(
        f"{model_dir} is not a training run (config.gin or model/model.json "
        "is missing): give the --model_dir of a cGANTransfer run of "
        "tfgt.train.")
  class_names = bundle.read_spec(spec_dir)["class_names"]
  with config_lib.isolated():
    # Bindings that the code no longer knows are skipped with a warning, as
    # tfgt.evaluate does; a mistake in gin_params is an error.
    config_lib.parse([config], skip_unknown=True, finalize=False)
    config_lib.parse((), gin_params)
    try:
      method = gin.query_parameter("train.method").scoped_configurable_fn()
    except ValueError as e:
      raise UserInputError(
          f"{model_dir}'s config.gin binds no train.method: give the "
          "--model_dir of a cGANTransfer run of tfgt.train.") from e
    if not isinstance(method, cgantransfer.CGANTransfer):
      raise UserInputError(
          f"{model_dir} was trained with {method.name}; only cGANTransfer "
          "runs have similarity scores: give the folder of a run of a "
          "cGANTransfer config (e.g. gin_configs/fashion_mnist/"
          "cgantransfer.gin).")
    path = _training_step(model_dir, checkpoint)
    generator = method.build(class_names).generator
    status = tf.train.Checkpoint(ema_generator=generator).read(path)
    status.assert_existing_objects_matched().expect_partial()
  return generator, list(class_names)


def _render(draw) -> np.ndarray:
  """The figure that `draw()` makes, made and rendered in matplotlib's
  default style (whatever the caller's rcParams) as
  `images.figure_to_array` renders (PNG at 100 dpi, tight bounding box):
  uint8 [H, W, 3]."""
  with style_lib.context("default"):
    return image_utils.figure_to_array(draw())


def score_heatmaps(generator: TransferGenerator,
                   class_names: Sequence[str]) -> np.ndarray:
  """Heatmaps of the learned similarity scores (the picture scores.png).

  One row per entry of the generator's `named_score_tables()` (a BigGAN's conditional BN layers in
  forward order, gain scores on the left and shift scores on the right; a
  StyleGAN2's label embedding, one table), each an M x N table: new classes
  (rows) x old classes (columns), with every score written in its cell. One
  colour scale, from the lowest to the highest score of all tables (widened
  by 1e-3 either side when they are all equal), and a colour bar.

  Args:
    generator: a transfer generator with propagated new classes
      (cGANTransfer's; `load_run` gives it).
    class_names: its N + M class names, old classes first.

  Returns:
    np.ndarray uint8 [H, W, 3], an RGB picture; its size grows with N, M
    and the number of layers (about 1400 x 800 for 8 old classes, 2 new and
    6 layers).

  Raises:
    ValueError: a generator whose new classes have no scores.
  """
  n = generator.num_old_classes
  old, new = list(class_names[:n]), list(class_names[n:])
  tables = generator.named_score_tables()
  names = [name for name, _ in tables]
  kinds = list(tables[0][1])
  values = np.stack([[kinds_of[k] for k in kinds] for _, kinds_of in tables])
  low, high = float(values.min()), float(values.max())
  if high - low < 1e-6:
    low, high = low - 1e-3, high + 1e-3
  rows = len(tables)
  columns = len(kinds)

  def draw():
    fig = figure_lib.Figure(
        figsize=(3 + 0.7 * n * columns, 0.9 + (0.35 * len(new) + 0.45) * rows),
        constrained_layout=True)
    axes = fig.subplots(rows, columns, squeeze=False)
    middle = (low + high) / 2
    for r in range(rows):
      for c, kind in enumerate(kinds):
        ax = axes[r, c]
        image = ax.imshow(values[r, c], cmap="viridis", vmin=low, vmax=high,
                          aspect="auto")
        ax.set_title(f"{names[r]}: {kind}", fontsize=8)
        ax.set_yticks(range(len(new)), new if c == 0 else [""] * len(new),
                      fontsize=7)
        ax.set_xticks(range(n), old if r == rows - 1 else [""] * n,
                      rotation=45, ha="right", fontsize=7)
        for (i, j), v in np.ndenumerate(values[r, c]):
          ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6,
                  color="black" if v > middle else "white")
    fig.colorbar(image, ax=axes, shrink=0.5, label="score")
    fig.suptitle("Similarity scores: new classes (rows) x old classes "
                 "(columns)", fontsize=9)
    return fig

  return _render(draw)


def _labelled_grid(tiles: np.ndarray, labels: Sequence[str], title: str
                   ) -> np.ndarray:
  """A grid of images with one label per row.

  Args:
    tiles: uint8 [rows, columns, H, W, C], C = 1 or 3.
    labels: one per row.
    title: above the grid.

  Returns:
    np.ndarray uint8 [H', W', 3]: the grid (1-pixel white borders) drawn
    with its labels and title.
  """
  picture = image_utils.grid(tiles)
  rows = tiles.shape[0]
  step = tiles.shape[2] + 1

  def draw():
    fig = figure_lib.Figure(figsize=(picture.shape[1] / 40 + 2.5,
                                     picture.shape[0] / 40 + 0.6))
    ax = fig.subplots()
    ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
              cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([1 + step * r + tiles.shape[2] / 2 for r in range(rows)],
                  labels, fontsize=7)
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    return fig

  return _render(draw)


def _draw(generator, labels: Sequence[int], z: tf.Tensor) -> np.ndarray:
  """Images of classes at shared latents.

  Args:
    generator: (z [B, dim_z], labels int32 [B]) -> float images in [-1, 1].
    labels: class ids, one row each.
    z: float32 [columns, dim_z], the same latents in every row.

  Returns:
    np.ndarray uint8 [len(labels), columns, H, W, C].
  """
  rows = []
  for label in labels:
    y = tf.fill([z.shape[0]], tf.constant(label, tf.int32))
    rows.append(pipeline.to_uint8(generator((z, y), training=False)).numpy())
  return np.stack(rows)


def pseudo_class_grid(generator: TransferGenerator,
                      class_names: Sequence[str], z: tf.Tensor
                      ) -> np.ndarray:
  """Each old class's samples above its pseudo-class's (paper Fig. 8).

  A pseudo-class is the updated copy of an old class's BN rows (a BigGAN's
  `prior_gain_offset`, `prior_shift`) or label embedding row (a StyleGAN2's
  `pseudo_classes`) that the new classes combine; the old class itself
  keeps the source's.

  Args:
    generator: a transfer generator with propagated new classes.
    class_names: its N + M class names, old classes first.
    z: float32 [columns, dim_z], the latents of every row.

  Returns:
    np.ndarray uint8 [H, W, 3]: 2N labelled rows (old class, then
    "pseudo <old class>") of `columns` images each.
  """
  n = generator.num_old_classes
  # Classes 0..N-1: the old classes; N..2N-1: their pseudo-classes.
  folded = generator.pseudo_class_generator()
  labels, names = [], []
  for c in range(n):
    labels += [c, n + c]
    names += [class_names[c], f"pseudo {class_names[c]}"]
  return _labelled_grid(_draw(folded, labels, z), names,
                        "Old classes and their pseudo-classes")


def layer_substitution_grid(generator: tg.KnowledgeTransferGenerator,
                            class_names: Sequence[str], z: tf.Tensor
                            ) -> np.ndarray:
  """Per new class, row k uses the learned scores of layers 1..k+1 and the
  first layer's scores beyond (paper Fig. 9: the last row is the trained
  model).

  Args:
    generator: a `KnowledgeTransferGenerator` with per-layer (not shared)
      scores.
    class_names: its N + M class names, old classes first.
    z: float32 [columns, dim_z], the latents of every row.

  Returns:
    np.ndarray uint8 [H, W, 3]: M x L labelled rows (L conditional BN
    layers) of `columns` images each, new class by new class.
  """
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
