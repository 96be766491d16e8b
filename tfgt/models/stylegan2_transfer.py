"""cGANTransfer on a class-conditional StyleGAN2: new label embeddings
propagated from the old classes.

Shahbazi et al., "Efficient Conditional GAN Transfer with Knowledge
Propagation across Classes", CVPR 2021, learn each new class's conditional
parameters as a combination of the old classes' (eq. 5-6) plus a residual
(Sec. 4.3), with an L1 on the combination scores and an L2 on the residuals
(eq. 7). In BigGAN the class enters through every conditional BN
(`tfgt.models.transfer_generator`); in a class-conditional StyleGAN2
(StyleGAN2-ADA's conditioning, `tfgt.models.stylegan2`) it enters once,
through the mapping network's label embedding `mapping/embed`: a dense layer
on the class weights whose row e_c [E] is class c's embedding. So here the
new classes' embedding rows are

    e_new = S @ P + r,    S [M, N] scores, P [N, E] pseudo-classes, r [M, E]

with P starting at the old classes' rows (knowledge sharing) and trained, S
at 1/N (a new class starts at the mean of the old ones' embeddings), r at 0.
Everything else of the generator, and the old classes' rows, stay the
source's: an old class draws exactly the source's images (bit for bit in
float32, as the tests check; under mixed precision the source computes its
embedding in the compute dtype and this one in float32, so the two differ
by that rounding), and `w_avg` (truncation's centre) is not updated.

`fold_generator` turns the result into a plain `StyleGAN2Generator` for
N + M classes whose embedding table holds the old rows and the combined new
rows. The plain table is scaled at run time by 1 / sqrt(N + M) instead of the
source's 1 / sqrt(N), so its stored rows are chosen (`prescale`) to give the
trained effective rows: exactly for most values, within one float32 step for
the rest; the folded generator's images equal the transfer generator's to
float32 rounding.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfgt.layers import knowledge_transfer as kt
from tfgt.layers import stylegan2_ops as ops
from tfgt.models import stylegan2
from tfgt.models import transfer_generator as tg
from tfgt.models import weights

# The source's label embedding, replaced in the transfer generator.
EMBED = "mapping/embed"
# How far (in float32 steps) `prescale` looks around the quotient.
_MAX_ULP_STEPS = 8


def prescale(effective: np.ndarray, gain: float) -> np.ndarray:
  """Stored values w float32 [...] whose run-time value float32(w *
  float32(gain)) is `effective`, or its float32 neighbour where no stored
  value gives it exactly.

  An equalised layer multiplies its stored weight by a run-time gain
  (`ops.FullyConnected`: lr_multiplier / sqrt(fan_in)). Storing
  effective / gain is often one float32 step off after the product; the
  neighbours of the quotient are searched for the exact value. Where the
  product skips that value (it does in the binades where the gain spreads
  consecutive stored values further apart than the result's steps), the
  nearest product is kept: at most one float32 step (relative 6e-8) away.

  Args:
    effective: the wanted run-time values, float32 [...], finite.
    gain: the run-time gain, > 0.

  Returns:
    float32 [...] of effective's shape.

  Raises:
    ValueError: a gain <= 0 or a value that is not finite.
  """
  if not gain > 0.0:
    raise ValueError(f"gain must be > 0, got {gain}.")
  effective = np.asarray(effective, np.float32)
  if not np.all(np.isfinite(effective)):
    raise ValueError("Cannot fold values that are not finite.")
  gain32 = np.float32(gain)
  quotient = (effective / gain32).astype(np.float32)
  best = quotient.copy()
  error = np.abs((best * gain32).astype(np.float64) - effective)
  for direction in (np.inf, -np.inf):
    candidate = quotient
    for _ in range(_MAX_ULP_STEPS):
      candidate = np.nextafter(candidate, np.float32(direction))
      miss = np.abs((candidate * gain32).astype(np.float64) - effective)
      better = miss < error
      best[better] = candidate[better]
      error[better] = miss[better]
  return best


class PropagatedEmbedding(ops.StyleGAN2Layer):
  """The mapping network's label embedding for N old and M new classes.

  class weights c float32 [B, N + M] -> [B, E]:
    c[:, :N] @ (weight * 1 / sqrt(N)) + c[:, N:] @ new_rows() + bias,
  the first term and the bias exactly the source's `FullyConnected` (so a
  one-hot old class gives the source's embedding bit for bit), and
    new_rows() = S @ P + r    [M, E].

  Variables: `weight` [N, E] and `bias` [E] (the source's, under their
  source names; frozen by the method), `scores` [M, N] (and with
  `score_bias`, `score_bias` [N] added to every new class's scores),
  `pseudo_classes` [N, E] (the old classes' effective rows after
  `reset_pseudo_classes`; frozen with tune_prior=False), `residuals` [M, E]
  (unless residual == "none").

  Args:
    num_old_classes: N >= 1.
    num_new_classes: M >= 1.
    units: E, the embedding's width.
    score_init, score_bias, tune_prior, residual, residual_stddev: as
      `tfgt.layers.knowledge_transfer.KnowledgePropagation`.

  Raises:
    ValueError: N or M below 1.
    UserInputError: an unknown score_init or residual.
  """

  def __init__(self, num_old_classes: int, num_new_classes: int, units: int,
               score_init: str = "uniform", score_bias: bool = False,
               tune_prior: bool = True, residual: str = "zeros",
               residual_stddev: float = 0.01, **kwargs):
    # Float32 under every precision: eq. 7's small scores and residuals keep
    # their digits.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    kt.check_choice("score_init", score_init, kt.SCORE_INITS)
    kt.check_propagation(num_old_classes, num_new_classes, residual)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.units = units
    self.score_init = score_init
    self.score_bias_enabled = score_bias
    self.tune_prior = tune_prior
    self.residual = residual
    self.residual_stddev = residual_stddev
    # The source layer's run-time gain (lr_multiplier 1, fan-in N).
    self.weight_gain = 1.0 / math.sqrt(num_old_classes)

  def build(self, input_shape=None):
    n, m, e = self.num_old_classes, self.num_new_classes, self.units
    self.weight = self.add_weight(
        name="weight", shape=(n, e),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = self.add_weight(name="bias", shape=(e,), initializer="zeros")
    self.scores = self.add_weight(
        name="scores", shape=(m, n),
        initializer=kt.score_initializer(self.score_init, n))
    if self.score_bias_enabled:
      self.score_bias = self.add_weight(name="score_bias", shape=(n,),
                                        initializer="zeros")
    self.pseudo_classes = self.add_weight(
        name="pseudo_classes", shape=(n, e), initializer="zeros",
        trainable=self.tune_prior)
    if self.residual != "none":
      self.residuals = self.add_weight(
          name="residuals", shape=(m, e),
          initializer=kt.residual_initializer(self.residual,
                                              self.residual_stddev))
    self.built = True

  def old_rows(self) -> tf.Tensor:
    """The old classes' effective rows float32 [N, E], computed as the
    source layer computes them."""
    return self.weight * self.weight_gain

  def reset_pseudo_classes(self) -> None:
    """Pseudo-classes <- the old classes' effective rows (after loading)."""
    self.pseudo_classes.assign(self.old_rows())

  def effective_scores(self) -> tf.Tensor:
    """The scores applied [M, N] (score bias included)."""
    scores = tf.convert_to_tensor(self.scores)
    if self.score_bias_enabled:
      scores = scores + self.score_bias
    return scores

  def new_rows(self) -> tf.Tensor:
    """The new classes' effective rows float32 [M, E]: S @ P + r (eq. 5-6
    with the residual of Sec. 4.3)."""
    rows = tf.matmul(self.effective_scores(), self.pseudo_classes)
    if self.residual != "none":
      rows = rows + self.residuals
    return rows

  def scores_l1(self) -> tf.Tensor:
    """mean |S| (the official code's per-tensor mean), a scalar >= 0."""
    return tf.reduce_mean(tf.abs(self.scores))

  def residuals_l2(self) -> tf.Tensor:
    """mean r^2, a scalar >= 0 (0 without residuals)."""
    if self.residual == "none":
      return tf.constant(0.0)
    return tf.reduce_mean(tf.square(self.residuals))

  def call(self, c):
    c = tf.convert_to_tensor(c, tf.float32)
    old, new = c[:, :self.num_old_classes], c[:, self.num_old_classes:]
    x = tf.matmul(old, self.old_rows()) + tf.matmul(new, self.new_rows())
    return ops.bias_act(x, self.bias * 1.0, "linear")


class StyleGAN2TransferGenerator(stylegan2.StyleGAN2Generator):
  """A class-conditional StyleGAN2 for N old classes extended by M new ones.

  Same call and contract as `StyleGAN2Generator` for N + M classes (labels
  in [0, N + M), the old classes keep their ids); its mapping network's
  label embedding is a `PropagatedEmbedding`. Build it, then `load_source`.

  Args:
    num_old_classes: N >= 2 (a class-conditional source).
    num_new_classes: M >= 1.
    train_backbone: False (cGANTransfer): w_avg is never updated, so
      truncation keeps the source's centre; True (the fine-tuning stage):
      trains as the plain generator does.
    score_init, score_bias, tune_prior, residual, residual_stddev: see
      `PropagatedEmbedding`.
    name: model name.
    **ctor_kwargs: the source generator's options (`ctor_kwargs`).

  Raises:
    ValueError: N below 2, an option the plain generator refuses.
  """

  def __init__(self, num_old_classes: int, num_new_classes: int,
               train_backbone: bool = False, score_init: str = "uniform",
               score_bias: bool = False, tune_prior: bool = True,
               residual: str = "zeros", residual_stddev: float = 0.01,
               name: str = "generator", **ctor_kwargs):
    if num_old_classes < 2:
      raise ValueError("The source must be class-conditional (N >= 2 "
                       f"classes), got N={num_old_classes}.")
    super().__init__(num_old_classes + num_new_classes, name=name,
                     **ctor_kwargs)
    self.num_old_classes = num_old_classes
    self.num_new_classes = num_new_classes
    self.train_backbone = train_backbone
    self.transfer_kwargs = dict(
        train_backbone=train_backbone, score_init=score_init,
        score_bias=score_bias, tune_prior=tune_prior, residual=residual,
        residual_stddev=residual_stddev)
    tg.replace_sublayer(self.mapping, "embed", PropagatedEmbedding(
        num_old_classes, num_new_classes, self.mapping.embed.units,
        score_init=score_init, score_bias=score_bias, tune_prior=tune_prior,
        residual=residual, residual_stddev=residual_stddev, name="embed"))

  @property
  def embedding(self) -> PropagatedEmbedding:
    return self.mapping.embed

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "StyleGAN2TransferGenerator":
    """A new, unbuilt generator of the same structure (the EMA copy)."""
    if num_classes not in (None, self.num_classes):
      raise ValueError("A transfer generator clones with its own classes.")
    return StyleGAN2TransferGenerator(
        self.num_old_classes, self.num_new_classes, name=name or self.name,
        **self.transfer_kwargs, **self.ctor_kwargs)

  def equalized_class_tables(self) -> tuple[str, ...]:
    return ()  # Its embedding does not grow: it has its own new rows.

  def call(self, inputs, training=None):
    z, y = inputs
    ws, noise = self.styles(z, y, training=training,
                            update_w_avg=self.train_backbone)
    return self.synthesize(ws, z, training=training, noise=noise)

  def load_source(self, source: stylegan2.StyleGAN2Generator) -> None:
    """Copies the source's weights and starts the new classes.

    Args:
      source: built plain generator for the N old classes, same options.

    Raises:
      ValueError: a source of other options or class count, or one that
        lacks a variable of this generator's backbone.
    """
    if (source.num_classes != self.num_old_classes or
        source.ctor_kwargs != self.ctor_kwargs or
        source.architecture != self.architecture):
      raise ValueError("The source generator does not match: "
                       f"{source.num_classes} classes {source.ctor_kwargs} "
                       f"vs {self.num_old_classes} {self.ctor_kwargs}.")
    if not self.built:
      stylegan2.build_models(self)
    unmatched = weights.copy_weights(source, self, self.num_old_classes)
    own = {id(v) for v in self.transfer_variables()}
    missing = [v.path for v in unmatched if id(v) not in own]
    if missing:
      raise ValueError(f"Generator variables missing from the source: "
                       f"{missing}")
    self.embedding.reset_pseudo_classes()

  def transfer_variables(self) -> list:
    """Scores, score bias, pseudo-classes and residuals."""
    source = {id(self.embedding.weight), id(self.embedding.bias)}
    return [v for v in self.embedding.variables if id(v) not in source]

  def propagation_variables(self) -> list:
    """Scores (with their bias) and pseudo-classes."""
    return [v for v in self.transfer_variables() if "residuals" not in v.path]

  def scores_l1(self) -> tf.Tensor:
    return self.embedding.scores_l1()

  def residuals_l2(self) -> tf.Tensor:
    return self.embedding.residuals_l2()

  def named_score_tables(self) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The scores for pictures and files: one table, the label embedding's:
    [("mapping/embed", {"embedding": [M, N]})] (score bias included)."""
    return [(EMBED, {"embedding": self.embedding.effective_scores().numpy()})]

  def pseudo_class_generator(self) -> stylegan2.StyleGAN2Generator:
    """A plain generator of N + N classes: the old classes, then their
    pseudo-classes (the trained copies of their embedding rows) in the new
    classes' places (paper Fig. 8)."""
    return fold_generator(self, new_rows=self.embedding.pseudo_classes)


def fold_generator(generator: StyleGAN2TransferGenerator,
                   into: stylegan2.StyleGAN2Generator | None = None,
                   new_rows: tf.Tensor | None = None
                   ) -> stylegan2.StyleGAN2Generator:
  """The plain `StyleGAN2Generator` for N + M classes that draws the same
  images (to float32 rounding, old classes included).

  Its `mapping/embed/weight` [N + M, E] holds the old rows and the new rows,
  each stored (`prescale`) so that times the plain layer's gain
  1 / sqrt(N + M) it is the effective row of `generator` (exactly, or within
  one float32 step); every other variable is copied.

  Args:
    generator: the (EMA) transfer generator.
    into: a previous result to overwrite instead of building a new model.
    new_rows: effective rows [M', E] to use instead of the generator's new
      rows (visualisations); the result then has N + M' classes.

  Raises:
    ValueError: `into` of another architecture; rows that are not finite.
  """
  embedding = generator.embedding
  if new_rows is None:
    new_rows = embedding.new_rows()
  table = np.concatenate([np.asarray(embedding.old_rows()),
                          np.asarray(new_rows)], axis=0)
  num_classes = table.shape[0]
  if into is None:
    into = stylegan2.StyleGAN2Generator(num_classes, name=generator.name,
                                        **generator.ctor_kwargs)
    stylegan2.build_models(into)
  elif (into.num_classes != num_classes or
        into.ctor_kwargs != generator.ctor_kwargs):
    raise ValueError("`into` has another architecture.")
  own = weights.variables_by_path(generator)
  for path, variable in weights.variables_by_path(into).items():
    if path == EMBED + "/weight":
      variable.assign(prescale(table, 1.0 / math.sqrt(num_classes)))
    else:
      variable.assign(own[path])
  return into
