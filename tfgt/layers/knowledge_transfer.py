"""Class-conditional batch norms that add M new classes to N frozen old ones.

The old classes keep their parameters exactly; the new classes' per-channel
gain offset and shift come from a "new-class rows" layer:

  * `KnowledgePropagation` (cGANTransfer, Shahbazi et al., CVPR 2021, eq. 5-7):
      gain_offset_new = S_gain @ P_gain + r_gain,
      shift_new       = S_shift @ P_shift + r_shift,
    with raw similarity scores S [M, N] per layer (separate for gain and
    shift, or one set shared by all layers), pseudo-classes P [N, C] (a
    trainable copy of the old classes' rows, "knowledge sharing") and
    residuals r [M, C].
  * `IndependentRows` (the BSA baseline as the paper uses it): free rows
    [M, C] learned independently of the old classes.

Two batch norms use them:
  * `KnowledgeTransferBN` extends `ClassConditionalBatchNorm` (BigGAN on
    CIFAR: a gain/shift table per layer). Call with class weights
    [B, N + M]; the first N columns are the old classes.
  * `KnowledgeTransferProjectedBN` extends `ProjectedConditionalBatchNorm`
    (BigGAN on ImageNet: a shared class embedding, optionally with a chunk of
    z, projected per layer). The old classes go through the source projection
    unchanged; a new class's class part of the gain and shift is its row, in
    the projected space of the layer; the pseudo-classes start as each
    layer's projection of the old class embeddings.

Gain = 1 + gain offset, as in the rest of the library.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.layers import batch_norm

SCORE_INITS = ("uniform", "random")
RESIDUAL_MODES = ("zeros", "random", "none")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
  """Options usually come from gin: a wrong one is a UserInputError."""
  if value not in choices:
    raise UserInputError(f"{name} must be one of {choices}, got {value!r}.")


def score_initializer(kind: str,
                      num_old: int) -> keras.initializers.Initializer:
  """1/N everywhere (a new class starts at the old classes' mean) or random.

  "random" draws U(0, 2/N): the same mean as "uniform", but every new class
  starts from a different mixture (the official code starts from random
  scores too).
  """
  check_choice("score_init", kind, SCORE_INITS)
  if kind == "uniform":
    return keras.initializers.Constant(1.0 / num_old)
  return keras.initializers.RandomUniform(0.0, 2.0 / num_old)


def check_propagation(num_old: int, num_new: int, residual: str) -> None:
  """Checks the options of a knowledge propagation (N, M, residual mode).

  Raises:
    UserInputError: an unknown residual mode.
    ValueError: N or M below 1.
  """
  check_choice("residual", residual, RESIDUAL_MODES)
  if num_old < 1 or num_new < 1:
    raise ValueError("Knowledge propagation needs at least one old and one "
                     f"new class, got N={num_old}, M={num_new}.")


def residual_initializer(kind: str,
                         stddev: float) -> keras.initializers.Initializer:
  """Zeros ("zeros") or N(0, stddev) ("random") for residual rows."""
  return (keras.initializers.Zeros() if kind == "zeros" else
          keras.initializers.RandomNormal(stddev=stddev))


class SimilarityScores(keras.layers.Layer):
  """Scores of M new classes over N old classes, for gain and for shift.

  Owned by one `KnowledgePropagation` layer (scores per layer, the paper's
  default) or shared by all of them (the "shared W" ablation).

  Variables: `gain_scores`, `shift_scores` [M, N]; with `score_bias`,
  `gain_score_bias`, `shift_score_bias` [N], added to every new class's scores
  (the official code's combination layer has this bias).
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               score_init: str = "uniform", score_bias: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    check_choice("score_init", score_init, SCORE_INITS)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.score_init = score_init
    self.score_bias = score_bias

  def build(self, input_shape=None):
    del input_shape
    shape = (self.num_new_classes, self.num_old_classes)
    init = score_initializer(self.score_init, self.num_old_classes)
    self.gain_scores = self.add_weight(name="gain_scores", shape=shape,
                                       initializer=init)
    self.shift_scores = self.add_weight(name="shift_scores", shape=shape,
                                        initializer=init)
    if self.score_bias:
      self.gain_score_bias = self.add_weight(
          name="gain_score_bias", shape=(self.num_old_classes,),
          initializer="zeros")
      self.shift_score_bias = self.add_weight(
          name="shift_score_bias", shape=(self.num_old_classes,),
          initializer="zeros")
    self.built = True

  def effective(self) -> tuple[tf.Tensor, tf.Tensor]:
    """Scores actually applied (bias included), each [M, N]."""
    gain = tf.convert_to_tensor(self.gain_scores)
    shift = tf.convert_to_tensor(self.shift_scores)
    if self.score_bias:
      gain = gain + self.gain_score_bias
      shift = shift + self.shift_score_bias
    return gain, shift

  def l1(self) -> tf.Tensor:
    """mean|S_gain| + mean|S_shift| (means per tensor, as the official code)."""
    return (tf.reduce_mean(tf.abs(self.gain_scores)) +
            tf.reduce_mean(tf.abs(self.shift_scores)))


class KnowledgePropagation(keras.layers.Layer):
  """New-class rows as score-weighted pseudo-classes plus residuals.

  One instance per conditional BN layer. `new_rows()` returns
  (gain_offset [M, C], shift [M, C]):
    gain_offset = S_gain @ P_gain + r_gain,
    shift = S_shift @ P_shift + r_shift.

  Variables: `prior_gain_offset`, `prior_shift` [N, C] (pseudo-classes; set
  from the old rows by `reset_prior` once the source weights are loaded),
  `gain_residual`, `shift_residual` [M, C] (unless residual == "none"), and the
  scores (own `SimilarityScores` sub-layer `scores`, or a shared one).

  Args:
    num_old_classes: N.
    num_new_classes: M.
    score_init: "uniform" (1/N) or "random" (U(0, 2/N)); ignored with
      `shared_scores`.
    tune_prior: whether the pseudo-classes train (False: the "frozen prior"
      ablation, new classes combine the old classes themselves).
    residual: "zeros" (init 0), "random" (init N(0, residual_stddev)) or
      "none" (no residual).
    residual_stddev: stddev of the "random" residual init.
    score_bias: add a bias over old classes shared by the new classes.
    shared_scores: a `SimilarityScores` layer shared with other layers.
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               score_init: str = "uniform", tune_prior: bool = True,
               residual: str = "zeros", residual_stddev: float = 0.01,
               score_bias: bool = False,
               shared_scores: SimilarityScores | None = None, **kwargs):
    super().__init__(**kwargs)
    check_propagation(num_old_classes, num_new_classes, residual)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.tune_prior = tune_prior
    self.residual = residual
    self.residual_stddev = residual_stddev
    self.shares_scores = shared_scores is not None
    if shared_scores is not None:
      if (shared_scores.num_old_classes, shared_scores.num_new_classes) != (
          num_old_classes, num_new_classes):
        raise ValueError("Shared scores are for a different class count.")
      self.scores = shared_scores
    else:
      self.scores = SimilarityScores(num_old_classes, num_new_classes,
                                     score_init=score_init,
                                     score_bias=score_bias, name="scores")

  def build(self, input_shape):
    """input_shape: (N, C), the shape of one old-class table."""
    channels = int(input_shape[-1])
    self.channels = channels
    if not self.scores.built:
      self.scores.build()
    prior_shape = (self.num_old_classes, channels)
    self.prior_gain_offset = self.add_weight(
        name="prior_gain_offset", shape=prior_shape, initializer="zeros",
        trainable=self.tune_prior)
    self.prior_shift = self.add_weight(
        name="prior_shift", shape=prior_shape, initializer="zeros",
        trainable=self.tune_prior)
    if self.residual != "none":
      init = residual_initializer(self.residual, self.residual_stddev)
      shape = (self.num_new_classes, channels)
      self.gain_residual = self.add_weight(name="gain_residual", shape=shape,
                                           initializer=init)
      self.shift_residual = self.add_weight(name="shift_residual",
                                            shape=shape, initializer=init)
    self.built = True

  def reset_prior(self, gain_offset: tf.Tensor, shift: tf.Tensor) -> None:
    """Sets the pseudo-classes to the old classes' rows, each [N, C]."""
    self.prior_gain_offset.assign(gain_offset)
    self.prior_shift.assign(shift)

  def combine(self, gain_scores: tf.Tensor, shift_scores: tf.Tensor
              ) -> tuple[tf.Tensor, tf.Tensor]:
    """Rows for given scores [M, N]: (S_g @ P_g + r_g, S_s @ P_s + r_s)."""
    gain = tf.matmul(gain_scores, self.prior_gain_offset)
    shift = tf.matmul(shift_scores, self.prior_shift)
    if self.residual != "none":
      gain = gain + self.gain_residual
      shift = shift + self.shift_residual
    return gain, shift

  def new_rows(self) -> tuple[tf.Tensor, tf.Tensor]:
    """(gain_offset, shift) of the new classes, each [M, C]."""
    return self.combine(*self.scores.effective())

  def l1(self) -> tf.Tensor:
    """L1 of this layer's own scores (0 when the scores are shared)."""
    return tf.constant(0.0) if self.shares_scores else self.scores.l1()

  def l2(self) -> tf.Tensor:
    """mean(r_g^2) + mean(r_s^2) (0 without residuals)."""
    if self.residual == "none":
      return tf.constant(0.0)
    return (tf.reduce_mean(tf.square(self.gain_residual)) +
            tf.reduce_mean(tf.square(self.shift_residual)))

  def propagation_variables(self) -> list:
    """Scores and pseudo-classes (frozen by cGANTransfer + fine-tuning)."""
    return [v for v in self.variables if "residual" not in v.path]

  def residual_variables(self) -> list:
    return [v for v in self.variables if "residual" in v.path]


class IndependentRows(keras.layers.Layer):
  """New-class rows as free parameters (BSA): `new_gain_offset`, `new_shift`.

  `reset(gain, shift)` sets their initial values once the old rows are known
  (see `tfgt.models.weights.initial_rows`).
  """

  def __init__(self, num_old_classes: int, num_new_classes: int, **kwargs):
    super().__init__(**kwargs)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes

  def build(self, input_shape):
    channels = int(input_shape[-1])
    shape = (self.num_new_classes, channels)
    self.new_gain_offset = self.add_weight(name="new_gain_offset", shape=shape,
                                           initializer="zeros")
    self.new_shift = self.add_weight(name="new_shift", shape=shape,
                                     initializer="zeros")
    self.built = True

  def reset(self, gain_offset: tf.Tensor, shift: tf.Tensor) -> None:
    self.new_gain_offset.assign(gain_offset)
    self.new_shift.assign(shift)

  def new_rows(self) -> tuple[tf.Tensor, tf.Tensor]:
    return (tf.convert_to_tensor(self.new_gain_offset),
            tf.convert_to_tensor(self.new_shift))

  def l1(self) -> tf.Tensor:
    return tf.constant(0.0)

  def l2(self) -> tf.Tensor:
    return tf.constant(0.0)


def make_new_class_rows(kind: str, num_old: int, num_new: int,
                        **propagation_kwargs) -> keras.layers.Layer:
  """`KnowledgePropagation` ("propagated") or `IndependentRows`."""
  if kind == "propagated":
    return KnowledgePropagation(num_old, num_new, name="propagation",
                                **propagation_kwargs)
  if kind == "independent":
    return IndependentRows(num_old, num_new, name="independent")
  raise ValueError(f"new_class_rows must be 'propagated' or 'independent', "
                   f"got {kind!r}.")


class KnowledgeTransferBN(batch_norm.ClassConditionalBatchNorm):
  """Conditional BN over N frozen old classes and M derived new classes.

  call(x, class_weights): x [B, ..., C], class_weights [B, N + M] -> x's shape.
  Variables: `gain_offset`, `shift` [N, C] (the old classes, frozen: they
  keep the source values), the moving statistics, and those of the new-class
  rows sub-layer (`propagation` or `independent`).

  Args:
    num_old_classes: N.
    num_new_classes: M.
    new_class_rows: "propagated" (cGANTransfer) or "independent" (BSA).
    momentum, epsilon: as `ClassConditionalBatchNorm`.
    **propagation_kwargs: passed to `KnowledgePropagation`.
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               new_class_rows: str = "propagated", momentum: float = 0.9,
               epsilon: float = 1e-4, name: str | None = None,
               **propagation_kwargs):
    super().__init__(num_old_classes + num_new_classes, momentum=momentum,
                     epsilon=epsilon, name=name)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.new_classes = make_new_class_rows(
        new_class_rows, num_old_classes, num_new_classes, **propagation_kwargs)

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self._build_stats(channels)
    shape = (self.num_old_classes, channels)
    self.gain_offset = self.add_weight(name="gain_offset", shape=shape,
                                       initializer="zeros", trainable=False)
    self.shift = self.add_weight(name="shift", shape=shape,
                                 initializer="zeros", trainable=False)
    self.new_classes.build(shape)
    self.built = True

  def old_class_tables(self) -> tuple[tf.Tensor, tf.Tensor]:
    """(gain_offset, shift) of the old classes, each [N, C]."""
    return (tf.convert_to_tensor(self.gain_offset),
            tf.convert_to_tensor(self.shift))

  def class_tables(self) -> tuple[tf.Tensor, tf.Tensor]:
    """Old rows then new rows: (gain_offset, shift), each [N + M, C]."""
    old_gain, old_shift = self.old_class_tables()
    new_gain, new_shift = self.new_classes.new_rows()
    return (tf.concat([old_gain, new_gain], axis=0),
            tf.concat([old_shift, new_shift], axis=0))

  def prior_source(self) -> tuple[tf.Tensor, tf.Tensor]:
    """What the pseudo-classes start from: the old rows [N, C]."""
    return self.old_class_tables()


class KnowledgeTransferProjectedBN(batch_norm.ProjectedConditionalBatchNorm):
  """Projected conditional BN over N old and M derived new classes.

  call(x, cond) with cond = (source_cond [B, D (+ z chunk)], new_weights
  [B, M]): source_cond is what the source layer received, built from the
  old-class part of the class weights (zero for a new class); new_weights are
  the new-class columns of the class weights. Then
    gain  = 1 + gain_projection(source_cond) + new_weights @ gain_rows,
    shift = shift_projection(source_cond) + new_weights @ shift_rows,
  where (gain_rows, shift_rows) [M, C] come from the new-class rows layer.
  For an old class the added term is exactly zero, so its output is the
  source layer's. The pseudo-classes start as each layer's projection of
  the old class embeddings (`reset_prior` with `prior_source(embeddings)`).
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               new_class_rows: str = "propagated", momentum: float = 0.9,
               epsilon: float = 1e-4, init: str = "orthogonal",
               name: str | None = None, **propagation_kwargs):
    super().__init__(momentum=momentum, epsilon=epsilon, init=init, name=name)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.new_classes = make_new_class_rows(
        new_class_rows, num_old_classes, num_new_classes, **propagation_kwargs)

  def build(self, input_shape):
    x_shape = input_shape
    super().build(x_shape)
    channels = int(x_shape[-1])
    self.new_classes.build((self.num_old_classes, channels))
    self.built = True

  def prior_source(self, embeddings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Projections of the old class embeddings [N, D] -> two [N, C] tables.

    The z part of the condition is zero, so this is the class part of each
    old class's gain offset and shift in this layer (inference-mode spectral
    norm, as the frozen layer runs).
    """
    pad = (int(self.gain_projection.kernel.shape[0]) -
           int(embeddings.shape[-1]))
    cond = tf.pad(embeddings, [[0, 0], [0, pad]])
    return (self.gain_projection(cond, training=False),
            self.shift_projection(cond, training=False))

  def call(self, inputs, cond, training=None):
    source_cond, new_weights = cond
    x = self.standardize(inputs, training)
    rank = len(inputs.shape)
    new_gain, new_shift = self.new_classes.new_rows()
    gain = (self.gain_projection(source_cond, training=training) +
            tf.matmul(new_weights, new_gain))
    bias = (self.shift_projection(source_cond, training=training) +
            tf.matmul(new_weights, new_shift))
    # pylint: disable=protected-access
    gain = 1.0 + batch_norm._broadcast(gain, rank)
    return x * gain + batch_norm._broadcast(bias, rank)
