"""The transfer generator: a source BigGAN extended by new classes.

Shahbazi et al., "Efficient Conditional GAN Transfer with Knowledge
Propagation across Classes", CVPR 2021. `KnowledgeTransferGenerator` is a
`BigGANGenerator` for N old + M new classes whose every class-conditional BN
is a `tfgt.layers.knowledge_transfer` layer: the old classes keep the
source's parameters and the new classes' gain and shift rows are either
propagated from the old ones (cGANTransfer: scores over pseudo-classes,
eq. 5-6, plus a residual, Sec. 4.3) or free rows (the BSA baseline, the
paper's Fig. 1b).
Labels run over [0, N + M) (eq. 4); the old classes keep their ids.

`fold_generator` turns a trained transfer generator into a plain
`BigGANGenerator` for N + M classes (scores, pseudo-classes and residuals are
dropped, as the paper's Sec. 4.2 says), so inference costs nothing extra;
docs/CGANTRANSFER.md ("Folding") gives the maths.

Which of these variables train, and with which losses, is the methods'
choice (`tfgt.methods.cgantransfer`, `tfgt.methods.bsa`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfgt.layers import knowledge_transfer as kt
from tfgt.layers import spectral_norm
from tfgt.models import biggan
from tfgt.models import weights

# The class-conditional BNs of a BigGAN generator block.
BN_NAMES = ("bn1", "bn2")


def replace_sublayer(parent: keras.layers.Layer, attr: str,
                     layer: keras.layers.Layer) -> None:
  """Swaps an unbuilt sub-layer for another of the same name.

  BigGANGenerator builds its conditional BNs itself; the transfer generator
  replaces them before anything is built. Keras would otherwise keep tracking
  the old layer next to the new one.
  """
  old = getattr(parent, attr)
  if old.built:
    raise ValueError(f"{old.name} is already built.")
  parent._tracker.untrack(old)
  setattr(parent, attr, layer)


class KnowledgeTransferGenerator(biggan.BigGANGenerator):
  """A source BigGAN for N old classes extended by M new ones.

  Same call as `BigGANGenerator`: (z [B, dim_z], y) -> images [B, R, R, C] in
  [-1, 1], with y int labels in [0, N + M) or class weights [B, N + M]. Every
  conditional BN is a `KnowledgeTransferBN` (table conditioning) or
  `KnowledgeTransferProjectedBN` (shared embedding); the shared embedding
  keeps only the N old rows. Build it, then `load_source` (weights of the N
  old classes, start of the new ones).

  Args:
    num_old_classes: N.
    num_new_classes: M.
    new_class_rows: "propagated" (cGANTransfer) or "independent" (BSA).
    train_backbone: False runs the whole generator in inference mode at all
      times (a frozen backbone keeps its BN statistics and spectral-norm
      vectors, so old classes stay bit-identical); True trains as usual.
    shared_scores: one set of scores for all layers (ablation).
    score_init, score_bias, tune_prior, residual, residual_stddev: see
      `knowledge_transfer.KnowledgePropagation`.
    name: model name.
    **ctor_kwargs: the source generator's architecture (`ctor_kwargs`).

  Raises:
    ValueError: shared_scores without propagated rows, an unknown
      new_class_rows; UserInputError: an unknown score_init or residual.
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               new_class_rows: str = "propagated",
               train_backbone: bool = False, shared_scores: bool = False,
               score_init: str = "uniform", score_bias: bool = False,
               tune_prior: bool = True, residual: str = "zeros",
               residual_stddev: float = 0.01, name: str = "generator",
               **ctor_kwargs):
    super().__init__(num_old_classes + num_new_classes, name=name,
                     **ctor_kwargs)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.new_class_rows = new_class_rows
    self.train_backbone = train_backbone
    self.transfer_kwargs = dict(
        new_class_rows=new_class_rows, train_backbone=train_backbone,
        shared_scores=shared_scores, score_init=score_init,
        score_bias=score_bias, tune_prior=tune_prior, residual=residual,
        residual_stddev=residual_stddev)
    propagation_kwargs = {}
    self.similarity_scores = None
    if new_class_rows == "propagated":
      propagation_kwargs = dict(score_init=score_init, score_bias=score_bias,
                                tune_prior=tune_prior, residual=residual,
                                residual_stddev=residual_stddev)
      if shared_scores:
        self.similarity_scores = kt.SimilarityScores(
            num_old_classes, num_new_classes, score_init=score_init,
            score_bias=score_bias, name="shared_scores")
        propagation_kwargs["shared_scores"] = self.similarity_scores
    elif shared_scores:
      raise ValueError("shared_scores needs new_class_rows='propagated'.")
    momentum = self.ctor_kwargs["bn_momentum"]
    epsilon = self.ctor_kwargs["bn_epsilon"]
    for block in self.blocks:
      for attr in BN_NAMES:
        if self.conditioning == "table":
          layer = kt.KnowledgeTransferBN(
              num_old_classes, num_new_classes, new_class_rows,
              momentum=momentum, epsilon=epsilon, name=attr,
              **propagation_kwargs)
        else:
          layer = kt.KnowledgeTransferProjectedBN(
              num_old_classes, num_new_classes, new_class_rows,
              momentum=momentum, epsilon=epsilon,
              init=self.ctor_kwargs["init"], name=attr, **propagation_kwargs)
        replace_sublayer(block, attr, layer)
    if self.conditioning == "shared_embedding":
      replace_sublayer(self, "shared_embedding", spectral_norm.SNEmbedding(
          num_old_classes, self.ctor_kwargs["shared_dim"], use_sn=False,
          init=self.ctor_kwargs["init"], name="shared_embedding"))

  # ---------------------------------------------------------------- structure
  def transfer_layers(self) -> list:
    """The conditional BNs, in forward order (block0/bn1, block0/bn2, ...)."""
    return [getattr(b, attr) for b in self.blocks for attr in BN_NAMES]

  def layer_names(self) -> list[str]:
    return [f"block{i}/{attr}" for i in range(self.num_blocks)
            for attr in BN_NAMES]

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "KnowledgeTransferGenerator":
    """A new, unbuilt generator of the same structure (for the EMA copy)."""
    if num_classes not in (None, self.num_classes):
      raise ValueError("A transfer generator clones with its own classes.")
    return KnowledgeTransferGenerator(
        self.num_old_classes, self.num_new_classes, name=name or self.name,
        **self.transfer_kwargs, **self.ctor_kwargs)

  # ------------------------------------------------------------------ forward
  def block_conditions(self, z, y, training=None):
    if self.conditioning == "table":
      return super().block_conditions(z, y, training=training)
    old, new = y[:, :self.num_old_classes], y[:, self.num_old_classes:]
    embedding = self.shared_embedding(old, training=training)
    if not self.hierarchical_z:
      return z, [(embedding, new)] * len(self.blocks)
    chunks = tf.split(z, len(self.blocks) + 1, axis=-1)
    return chunks[0], [(tf.concat([embedding, c], axis=-1), new)
                       for c in chunks[1:]]

  def call(self, inputs, training=None):
    return super().call(inputs,
                        training=bool(training) and self.train_backbone)

  # ------------------------------------------------------------ initialising
  def load_source(self, source_generator: biggan.BigGANGenerator,
                  row_init: str = "mean") -> None:
    """Copies the source weights and initialises the new classes.

    Args:
      source_generator: built plain generator for the N old classes, of the
        same architecture.
      row_init: start of independent new rows, "mean" or "zeros"
        (`weights.NEW_ROW_INITS`; these rows have no random
        initialiser). Propagated rows start from their scores and residuals.

    Raises:
      ValueError: a source of another architecture or class count, or one
        that lacks a variable of this generator's backbone.
      UserInputError: an unknown row_init for independent rows.
    """
    if (source_generator.num_classes != self.num_old_classes or
        source_generator.ctor_kwargs != self.ctor_kwargs):
      raise ValueError("The source generator does not match: "
                       f"{source_generator.num_classes} classes "
                       f"{source_generator.ctor_kwargs} vs "
                       f"{self.num_old_classes} {self.ctor_kwargs}.")
    if not self.built:
      biggan.build_models(self)
    unmatched = weights.copy_weights(source_generator, self,
                                     self.num_old_classes)
    transfer = {id(v) for v in self.transfer_variables()}
    missing = [v.path for v in unmatched if id(v) not in transfer]
    if missing:
      raise ValueError(f"Generator variables missing from the source: "
                       f"{missing}")
    self.initialize_new_classes(row_init)

  def old_class_rows(self, layer) -> tuple[tf.Tensor, tf.Tensor]:
    """The old classes' (gain_offset, shift) [N, C] of a transfer layer.

    With a shared embedding: the class part of the layer's gain offset and
    shift, i.e. its projection of the old class embeddings.
    """
    if self.conditioning == "table":
      return layer.old_class_tables()
    return layer.prior_source(self.shared_embedding.normalized_table(False))

  def initialize_new_classes(self, row_init: str = "mean") -> None:
    """Pseudo-classes <- old rows; independent rows <- `row_init`."""
    if self.new_class_rows != "propagated":
      weights.check_row_init("row_init", row_init, random=False)
    for layer in self.transfer_layers():
      gain, shift = self.old_class_rows(layer)
      if self.new_class_rows == "propagated":
        layer.new_classes.reset_prior(gain, shift)
      else:
        layer.new_classes.reset(
            weights.initial_rows(gain, self.num_new_classes, row_init),
            weights.initial_rows(shift, self.num_new_classes, row_init))

  # --------------------------------------------------------------- variables
  def transfer_variables(self) -> list:
    """Every variable that defines the new classes (scores, P, r, rows)."""
    out, seen = [], set()
    for layer in self.transfer_layers():
      for v in layer.new_classes.variables:
        if id(v) not in seen:
          seen.add(id(v))
          out.append(v)
    return out

  def propagation_variables(self) -> list:
    """Scores and pseudo-classes."""
    return [v for v in self.transfer_variables() if "residual" not in v.path]

  def noise_projection_variables(self) -> list:
    """Kernels projecting the condition (embedding and z) to BN parameters."""
    if self.conditioning == "table":
      return []
    return [p.kernel for layer in self.transfer_layers()
            for p in (layer.gain_projection, layer.shift_projection)]

  def scores_l1(self) -> tf.Tensor:
    """L1 of the scores (eq. 7), summed over layers: a scalar >= 0.

    Each tensor contributes the mean of its absolute values (the official
    code's reduction, so that its lambdas carry over); shared scores count
    once; 0 for independent rows.
    """
    l1 = tf.add_n([layer.new_classes.l1() for layer in self.transfer_layers()])
    if self.similarity_scores is not None:
      l1 += self.similarity_scores.l1()
    return l1

  def residuals_l2(self) -> tf.Tensor:
    """L2 of the residuals (eq. 7), summed over layers: a scalar >= 0.

    Each tensor contributes the mean of its squares; 0 without residuals.
    """
    return tf.add_n([layer.new_classes.l2()
                     for layer in self.transfer_layers()])

  def regularization(self) -> tuple[tf.Tensor, tf.Tensor]:
    """(`scores_l1()`, `residuals_l2()`)."""
    return self.scores_l1(), self.residuals_l2()

  def score_tables(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Per layer (gain scores, shift scores), each [M, N] (bias included)."""
    if self.new_class_rows != "propagated":
      raise ValueError("Only propagated new classes have scores.")
    return [layer.new_classes.scores.effective()
            for layer in self.transfer_layers()]

  def named_score_tables(self) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The scores by layer for pictures and files: [(layer name, {"gain":
    [M, N], "shift": [M, N]})] in forward order; one entry, "all layers
    (shared)", for shared scores.

    Raises:
      ValueError: independent new rows (no scores).
    """
    tables, names = self.score_tables(), self.layer_names()
    if self.similarity_scores is not None:
      tables, names = tables[:1], ["all layers (shared)"]
    return [(name, {"gain": g.numpy(), "shift": s.numpy()})
            for name, (g, s) in zip(names, tables)]

  def pseudo_class_generator(self) -> biggan.BigGANGenerator:
    """A plain generator of N + N classes: the old classes, then their
    pseudo-classes (the trained copies of their BN rows) in the new
    classes' places (paper Fig. 8)."""
    return fold_generator(self, new_rows=[
        (tf.convert_to_tensor(layer.new_classes.prior_gain_offset),
         tf.convert_to_tensor(layer.new_classes.prior_shift))
        for layer in self.transfer_layers()])

  def new_class_rows_per_layer(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Per layer the new classes' (gain part, shift part), each [M, C]."""
    return [layer.new_classes.new_rows() for layer in self.transfer_layers()]


# A gain this close to 1 is below float32 rounding of the folded layer.
_UNIT_GAIN_TOLERANCE = 1e-6
# Scales tried for the new classes' embedding coordinates (powers of two, so
# that dividing the kernel rows by them is exact).
_FOLD_SCALES = tuple(2.0**k for k in range(0, 31, 2))


def _unit_vector_with_unit_gain(matrix: np.ndarray) -> np.ndarray:
  """A unit vector u [cols] with ||matrix @ u|| = 1, as float64.

  Exists when the smallest singular value (0 if cols > rows) is <= 1 <= the
  largest; rotates from the top right singular vector towards the bottom one
  (a null vector when cols > rows), which stay orthogonal under the matrix.
  """
  matrix = matrix.astype(np.float64)
  _, s, vt = np.linalg.svd(matrix, full_matrices=False)
  top_vector, top = vt[0], s[0]
  if matrix.shape[1] > matrix.shape[0]:
    # A null vector: the longest column of the projector onto the null space
    # (its diagonal sums to cols - rows > 0, so that column is not tiny).
    projector = np.eye(matrix.shape[1]) - vt.T @ vt
    null = projector[:, np.argmax(np.diag(projector))]
    bottom_vector, bottom = null / np.linalg.norm(null), 0.0
  else:
    bottom_vector, bottom = vt[-1], s[-1]
  if bottom > 1.0 and bottom - 1.0 <= _UNIT_GAIN_TOLERANCE:
    return bottom_vector
  if not bottom <= 1.0 <= top:
    raise ValueError(f"Cannot fold: singular values in [{bottom}, {top}] do "
                     "not include 1.")
  if top == bottom:
    return top_vector
  sin2 = (top**2 - 1.0) / (top**2 - bottom**2)
  return np.sqrt(1.0 - sin2) * top_vector + np.sqrt(sin2) * bottom_vector


def _fold_projections(projections: dict, shared_dim: int
                      ) -> tuple[float, dict]:
  """The embedding scale and spectral-norm vectors of folded projections.

  Each folded kernel is [W_class; rows / scale; W_z]. A unit spectral-norm
  estimate needs a unit vector u with ||kernel @ u|| = 1, which exists when
  the kernel's smallest singular value is at most 1. New-class rows can push
  it above 1 (e.g. near-orthogonal source kernels); scaling the new classes'
  embedding coordinates up and their kernel rows down keeps the product and
  shrinks their effect on the spectrum.

  Returns:
    (scale, {kernel path: u [C]}).
  """
  error = None
  for scale in _FOLD_SCALES:
    try:
      return scale, {
          path: _unit_vector_with_unit_gain(np.concatenate(
              [w[:shared_dim], new / scale, w[shared_dim:]], axis=0))
          for path, (w, new) in projections.items()}
    except ValueError as e:
      error = e
  raise ValueError(f"Cannot fold the shared-embedding generator: {error}")


def fold_generator(generator: KnowledgeTransferGenerator,
                   into: biggan.BigGANGenerator | None = None,
                   new_rows: list | None = None) -> biggan.BigGANGenerator:
  """The plain `BigGANGenerator` for N + M classes that draws the same images.

  Table conditioning: each conditional BN's tables hold the old rows then the
  combined new rows; images are identical to the unfolded generator's.
  Shared embedding: the embedding grows by M dimensions, one per new class
  (old rows [e, 0], new class m [0, s * one-hot m]); each projection kernel
  gets the new classes' rows / s between its class and z parts, and its
  stored spectral-norm vector is chosen so that the estimated norm is 1, so
  the layer applies the kernel as stored (s = 1 unless that needs a larger
  power of two, see `_fold_projections`). Equal to the unfolded generator up
  to float32 rounding.

  Args:
    generator: the (EMA) transfer generator. The trainer's EMA update leaves
      frozen values exactly as they are, so the old classes of the result are
      bit-identical to the source's.
    into: a previous result to overwrite instead of building a new model.
    new_rows: per transfer layer (gain part, shift part), each [M', C], to use
      instead of the layers' own new rows (visualisations: pseudo-classes,
      substituted scores); the result then has N + M' classes.
  """
  if new_rows is None:
    new_rows = generator.new_class_rows_per_layer()
  if len(new_rows) != len(generator.transfer_layers()):
    raise ValueError(f"{len(new_rows)} row sets for "
                     f"{len(generator.transfer_layers())} layers.")
  n, m = generator.num_old_classes, int(new_rows[0][0].shape[0])
  kwargs = dict(generator.ctor_kwargs)
  table = generator.conditioning == "table"
  if not table:
    kwargs["shared_dim"] = kwargs["shared_dim"] + m
  if into is None:
    into = biggan.BigGANGenerator(n + m, name=generator.name, **kwargs)
    biggan.build_models(into)
  elif into.num_classes != n + m or into.ctor_kwargs != kwargs:
    raise ValueError("`into` has another architecture.")
  own = weights.variables_by_path(generator)

  def value(path: str) -> tf.Tensor:
    return tf.convert_to_tensor(own[path])

  rows = dict(zip(generator.layer_names(), new_rows))
  shared_dim = generator.ctor_kwargs["shared_dim"]
  into_variables = weights.variables_by_path(into)
  projections = {}  # kernel path -> (normalised kernel [D + z, C], rows [M, C])
  if not table:
    for bn_name, (gain, shift) in rows.items():
      for sublayer, new in (("gain_projection", gain),
                            ("shift_projection", shift)):
        layer_name = f"{bn_name}/{sublayer}"
        projections[layer_name + "/kernel"] = (spectral_norm.spectral_normalize(
            value(layer_name + "/kernel"), value(layer_name + "/sn_u"), 0,
            update_u=False).numpy(), np.asarray(new))
    scale, vectors = _fold_projections(projections, shared_dim)
  for path, variable in into_variables.items():
    layer_name, _, leaf = path.rpartition("/")
    if table and layer_name in rows and leaf in ("gain_offset", "shift"):
      new = rows[layer_name][0 if leaf == "gain_offset" else 1]
      variable.assign(tf.concat([value(path), new], axis=0))
    elif not table and path == "shared_embedding/embeddings":
      old = value(path)
      variable.assign(tf.concat([
          tf.concat([old, tf.zeros([n, m])], axis=1),
          tf.concat([tf.zeros([m, shared_dim]), scale * tf.eye(m)], axis=1)],
          axis=0))
    elif path in projections:
      normalized, new = projections[path]
      variable.assign(np.concatenate(
          [normalized[:shared_dim], new / scale, normalized[shared_dim:]],
          axis=0))
      into_variables[layer_name + "/sn_u"].assign(
          vectors[path][None, :].astype(np.float32))
    elif leaf == "sn_u" and layer_name + "/kernel" in projections:
      continue  # Set with its kernel.
    else:
      variable.assign(value(path))
  return into
