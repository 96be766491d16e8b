"""cGANTransfer: new classes borrow their BN parameters from the old ones.

Shahbazi et al., "Efficient Conditional GAN Transfer with Knowledge
Propagation across Classes", CVPR 2021. In every class-conditional BN layer
of the source BigGAN, each new class's gain and shift are a learned linear
combination of pseudo-classes (a trainable copy of the old classes'
parameters) plus a residual; see `tfgt.layers.knowledge_transfer`. The
generator is otherwise frozen and the discriminator is fine-tuned with new
projection rows. Labels run over [0, N + M): the old classes keep their ids
and, with a frozen backbone, their exact images.

After training, `fold_generator` turns the generator into a plain
`BigGANGenerator` for N + M classes (scores, pseudo-classes and residuals are
dropped, as the paper says), so inference costs nothing extra.

Design choices where the paper leaves room (docs/CGANTRANSFER.md has more):
  * A frozen generator runs as at inference even while training: BN with
    the source's moving statistics, spectral norm with its stored vectors.
    Updating the statistics from new-class batches would change the old
    classes; the per-class gain and shift that follow each standardisation
    can absorb the shift between source statistics and target features.
  * Scores are raw (no softmax, no spectral norm) and start at 1/N, residuals
    at 0: a new class starts at the mean of the old classes.
"""

from __future__ import annotations

import os

from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.layers import knowledge_transfer as kt
from tfgt.layers import spectral_norm
from tfgt.methods import base
from tfgt.methods import source as source_lib
from tfgt.models import biggan
from tfgt.models import bundle

BN_NAMES = ("bn1", "bn2")


def _replace_sublayer(parent: keras.layers.Layer, attr: str,
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

  Same call as `BigGANGenerator`: (z [B, dim_z], y) -> images, with y int
  labels in [0, N + M) or class weights [B, N + M]. Every conditional BN is a
  `KnowledgeTransferBN` (table conditioning) or `KnowledgeTransferProjectedBN`
  (shared embedding); the shared embedding keeps only the N old rows.

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
    for block in self.blocks:
      for attr in BN_NAMES:
        if self.conditioning == "table":
          layer = kt.KnowledgeTransferBN(
              num_old_classes, num_new_classes, new_class_rows,
              momentum=momentum, name=attr, **propagation_kwargs)
        else:
          layer = kt.KnowledgeTransferProjectedBN(
              num_old_classes, num_new_classes, new_class_rows,
              momentum=momentum, init=self.ctor_kwargs["init"], name=attr,
              **propagation_kwargs)
        _replace_sublayer(block, attr, layer)
    if self.conditioning == "shared_embedding":
      _replace_sublayer(self, "shared_embedding", spectral_norm.SNEmbedding(
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
      row_init: start of independent new rows: "mean" of the old rows or
        "zeros" (propagated rows start from their scores and residuals).
    """
    if (source_generator.num_classes != self.num_old_classes or
        source_generator.ctor_kwargs != self.ctor_kwargs):
      raise ValueError("The source generator does not match: "
                       f"{source_generator.num_classes} classes "
                       f"{source_generator.ctor_kwargs} vs "
                       f"{self.num_old_classes} {self.ctor_kwargs}.")
    if not self.built:
      biggan.build_models(self)
    unmatched = source_lib.copy_weights(source_generator, self,
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
    for layer in self.transfer_layers():
      gain, shift = self.old_class_rows(layer)
      if self.new_class_rows == "propagated":
        layer.new_classes.reset_prior(gain, shift)
      else:
        layer.new_classes.reset(
            kt.initial_rows(gain, self.num_new_classes, row_init),
            kt.initial_rows(shift, self.num_new_classes, row_init))

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

  def regularization(self) -> tuple[tf.Tensor, tf.Tensor]:
    """(L1 of the scores, L2 of the residuals), summed over layers.

    Each term is the mean over its tensor (eq. 7 with the official code's
    reduction, so that its lambdas carry over); shared scores count once.
    """
    l1 = tf.add_n([layer.new_classes.l1() for layer in self.transfer_layers()])
    if self.similarity_scores is not None:
      l1 += self.similarity_scores.l1()
    l2 = tf.add_n([layer.new_classes.l2() for layer in self.transfer_layers()])
    return l1, l2

  def score_tables(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Per layer (gain scores, shift scores), each [M, N] (bias included)."""
    if self.new_class_rows != "propagated":
      raise ValueError("Only propagated new classes have scores.")
    return [layer.new_classes.scores.effective()
            for layer in self.transfer_layers()]

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
  own = source_lib.variables_by_path(generator)

  def value(path: str) -> tf.Tensor:
    return tf.convert_to_tensor(own[path])

  rows = dict(zip(generator.layer_names(), new_rows))
  shared_dim = generator.ctor_kwargs["shared_dim"]
  into_variables = source_lib.variables_by_path(into)
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


def build_transfer_models(method: source_lib.TransferMethod,
                          new_class_names: list[str], new_class_rows: str,
                          d_new_rows: str, row_init: str = "mean",
                          **generator_kwargs
                          ) -> tuple[KnowledgeTransferGenerator,
                                     biggan.BigGANDiscriminator]:
  """The method's source as a transfer generator and an extended D.

  Args:
    method: gives the source (`load_source`).
    new_class_names: the M new classes.
    new_class_rows: "propagated" (cGANTransfer) or "independent" (BSA).
    d_new_rows: initial projection rows of the new classes in D.
    row_init: start of independent rows (see `load_source`).
    **generator_kwargs: further `KnowledgeTransferGenerator` options.

  Returns:
    (generator for N + M classes with the source weights, discriminator with
    M new projection rows).
  """
  src, num_new = method.load_source(new_class_names)
  num_old = len(src.class_names)
  generator = KnowledgeTransferGenerator(
      num_old, num_new, new_class_rows, **generator_kwargs,
      **src.generator.ctor_kwargs)
  generator.load_source(src.generator, row_init=row_init)
  discriminator = source_lib.extend_discriminator(
      src.discriminator, num_old + num_new, d_new_rows)
  return generator, discriminator


def tuned_noise_projections(generator: KnowledgeTransferGenerator,
                            tune: bool | None) -> list:
  """The noise-to-BN projection kernels to train, if any.

  `tune` None follows the paper (5.1): train them iff the source has a
  shared embedding and hierarchical z.
  """
  if tune is None:
    tune = (generator.conditioning == "shared_embedding" and
            generator.hierarchical_z)
  return generator.noise_projection_variables() if tune else []


def make_setup(generator: KnowledgeTransferGenerator,
               discriminator: biggan.BigGANDiscriminator,
               g_variables: list, class_names: list[str],
               extra_g_loss=None) -> base.GANSetup:
  """A GANSetup whose clone and fold know the transfer generator."""
  cache = {}

  def fold(g):
    # The trainer folds its EMA generator at every save; refill one model
    # rather than building a new one each time.
    result = fold_generator(g, into=cache.get(id(g)))
    cache[id(g)] = result
    return result

  return base.GANSetup(
      generator, discriminator, g_variables,
      discriminator.trainable_variables, list(class_names),
      extra_g_loss=extra_g_loss, clone_generator=generator.clone, fold=fold)


@gin.configurable
class CGANTransfer(source_lib.TransferMethod):
  """cGANTransfer, its fine-tuning stage and its ablations.

  Args:
    source: source bundle (folder, run model_dir or "pretrained:NAME").
    checkpoint: checkpoint of the source bundle ("latest", "best", step).
    score_init: "uniform" (1/N) or "random".
    shared_scores: one set of scores for all layers (ablation "shared W").
    score_bias: a score bias over old classes shared by the new classes (as
      the official code's combination layer).
    tune_prior: train the pseudo-classes (False: "frozen prior" ablation).
    residual: "zeros", "random" (N(0, residual_stddev)) or "none".
    residual_stddev: stddev of random residuals.
    lambda_scores: weight of the L1 of the scores (mean per tensor).
    lambda_residuals: weight of the L2 of the residuals (mean per tensor).
    tune_noise_projection: also train the projections from (embedding, z) to
      BN parameters; needed with hierarchical z (paper 5.1). None: on iff the
      source has a shared embedding and hierarchical z. Changes old classes.
    fine_tune: the paper's 5.4 stage: scores and pseudo-classes frozen,
      residuals and the rest of G trained (BN in training mode). Old classes
      change. Usually with `init_from`.
    init_from: a cGANTransfer training run (its model_dir) whose latest
      training checkpoint (EMA generator and discriminator) starts this run.
    d_new_rows: initial projection rows of the new classes in D: "random",
      "mean" or "zeros".
  """

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest",
               score_init: str = "uniform", shared_scores: bool = False,
               score_bias: bool = False, tune_prior: bool = True,
               residual: str = "zeros", residual_stddev: float = 0.01,
               lambda_scores: float = 0.01, lambda_residuals: float = 0.01,
               tune_noise_projection: bool | None = None,
               fine_tune: bool = False, init_from: str | None = None,
               d_new_rows: str = "random"):
    super().__init__(source, checkpoint)
    kt.check_choice("score_init", score_init, kt.SCORE_INITS)
    kt.check_choice("residual", residual, kt.RESIDUAL_MODES)
    if lambda_scores < 0 or lambda_residuals < 0:
      raise UserInputError("lambda_scores and lambda_residuals must be >= 0.")
    if fine_tune and not init_from:
      raise UserInputError(
          "cGANTransfer fine-tuning continues a finished cGANTransfer run: set "
          "CGANTransfer.init_from (in gin_configs/*/cgantransfer_ft.gin: "
          "--gin_param=\"STAGE1_DIR='<that run's model_dir>'\").")
    self.name = "cgantransfer_ft" if fine_tune else "cgantransfer"
    self.transfer_kwargs = dict(
        shared_scores=shared_scores, score_init=score_init,
        score_bias=score_bias, tune_prior=tune_prior, residual=residual,
        residual_stddev=residual_stddev)
    self.lambda_scores = lambda_scores
    self.lambda_residuals = lambda_residuals
    self.tune_noise_projection = tune_noise_projection
    self.fine_tune = fine_tune
    self.init_from = init_from
    self.d_new_rows = d_new_rows

  def build(self, new_class_names: list[str]) -> base.GANSetup:
    generator, discriminator = build_transfer_models(
        self, new_class_names, "propagated", self.d_new_rows,
        train_backbone=self.fine_tune, **self.transfer_kwargs)
    if self.init_from:
      restore_training_run(self.init_from, generator, discriminator,
                           new_class_names)

    if self.fine_tune:
      frozen = {id(v) for v in generator.propagation_variables()}
      g_variables = [v for v in generator.trainable_variables
                     if id(v) not in frozen]
    else:
      g_variables = [v for v in generator.transfer_variables() if v.trainable]
      g_variables += tuned_noise_projections(generator,
                                             self.tune_noise_projection)
    lambda_scores = 0.0 if self.fine_tune else self.lambda_scores
    lambda_residuals = self.lambda_residuals

    def extra_g_loss() -> tf.Tensor:
      l1, l2 = generator.regularization()
      return lambda_scores * l1 + lambda_residuals * l2

    use_loss = lambda_scores > 0 or (
        lambda_residuals > 0 and self.transfer_kwargs["residual"] != "none")
    logging.info("%s: %d old + %d new classes, %d trainable G variables "
                 "(%d values).", self.name, generator.num_old_classes,
                 generator.num_new_classes,
                 len(g_variables),
                 sum(int(np.prod(v.shape)) for v in g_variables))
    return make_setup(generator, discriminator, g_variables, new_class_names,
                      extra_g_loss if use_loss else None)


def restore_training_run(model_dir: str, generator: keras.Model,
                         discriminator: keras.Model,
                         class_names: list[str]) -> None:
  """Loads the EMA generator and D of a run's latest training checkpoint."""
  spec_path = os.path.join(model_dir, "model", bundle.SPEC_FILE)
  path = tf.train.latest_checkpoint(model_dir)
  if path is None or not os.path.exists(spec_path):
    raise UserInputError(
        f"init_from={model_dir!r} holds no training run. Train the first "
        "stage there first (e.g. gin_configs/fashion_mnist/cgantransfer.gin "
        f"with --model_dir={model_dir}).")
  spec = bundle.read_spec(os.path.join(model_dir, "model"))
  if spec["class_names"] != list(class_names):
    raise UserInputError(
        f"init_from={model_dir!r} was trained on classes "
        f"{spec['class_names']}, this run has {list(class_names)}.")
  status = tf.train.Checkpoint(ema_generator=generator,
                               discriminator=discriminator).read(path)
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise UserInputError(
        f"The checkpoint {path} does not match this model; were its "
        f"cGANTransfer options (scores, residuals) the same? {e}") from e
  status.expect_partial()
  logging.info("Started from %s.", path)
