"""Training objectives: what a method minimises, built from the step's batch.

A method's `GANSetup` carries one `Objective`. For every step the trainer
calls, on each replica, `objective.d_loss(batch, G, D)` for each D update and
`objective.g_loss(batch, G, D)` for the G update, differentiates the returned
loss with respect to the method's variable groups and logs the named parts.

Scaling, so that results do not depend on the number of replicas: a replica
returns its *share* of the global loss; the trainer sums the shares (and the
gradients) over replicas. `Batch.mean` turns per-example values into a share
of the global-batch mean; `Batch.share` turns a value that every replica
computes alike (a weight regulariser) into a share of it.

Add a loss by subclassing `Objective` (any network the loss needs, such as a
frozen teacher, is an attribute of the objective), or wrap an existing one
with `Regularized`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Callable, Mapping

import gin
import keras
import tensorflow as tf

from tfgt import losses
from tfgt.errors import UserInputError
from tfgt.models import inputs as inputs_lib

# (loss, {part name: value}): both scalars, a replica's share.
LossAndParts = tuple[tf.Tensor, dict[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class Batch:
  """One replica's inputs of a training step.

  Tensors hold the replica's rows (B = global batch / replicas). Everything
  random is drawn from (seed, batch index), so a batch is the same on any
  number of replicas and after a resume.

  Attributes:
    images: real images, float32 [B, R, R, C] in [-1, 1].
    labels: their model ids, int32 [B] in [0, num_classes).
    z_d: latents of the fakes that D sees, float32 [B, dim_z], N(0, 1).
    y_d: labels of those fakes, int32 [B] (drawn from the trained classes).
    z_g: latents of the fakes of the G update, float32 [B, dim_z].
    y_g: their labels, int32 [B].
    index: the batch's index in the run's data order, int64 [B] (the same
      value in every row; `step_index()` gives it as a scalar): a seed for
      any further randomness, with `tf.random.stateless_*`.
    global_batch_size: B times the number of replicas.
    num_replicas: replicas of the strategy.
    loss_scale: None, or the loss scale (a float32 scalar) of the network
      this batch updates, under mixed_float16 (`tfgt.precision`): the R1
      penalty's inner gradient is taken of the scaled logits and unscaled
      before it is squared.
    batches_per_step: data batches per training step (`train.d_steps`,
      at least 1); the G update takes the step's last one.
  """
  images: tf.Tensor
  labels: tf.Tensor
  z_d: tf.Tensor
  y_d: tf.Tensor
  z_g: tf.Tensor
  y_g: tf.Tensor
  index: tf.Tensor
  global_batch_size: int
  num_replicas: int
  loss_scale: tf.Tensor | None = None
  batches_per_step: int = 1

  def step_index(self) -> tf.Tensor:
    """The batch's index as an int64 scalar."""
    return tf.cast(tf.reshape(self.index, [-1])[0], tf.int64)

  def training_step_index(self) -> tf.Tensor:
    """The index (int64 scalar, from 0) of the training step this batch
    belongs to: the G update's count, whatever `train.d_steps` is."""
    return self.step_index() // self.batches_per_step

  def mean(self, per_example: tf.Tensor) -> tf.Tensor:
    """This replica's share of the global-batch mean of [B] values."""
    return tf.reduce_sum(per_example) / self.global_batch_size

  def share(self, value: tf.Tensor) -> tf.Tensor:
    """This replica's share of a scalar that every replica computes alike."""
    return value / self.num_replicas


class Objective(abc.ABC):
  """The losses of a method.

  Both methods return `(loss, parts)`: the scalar to minimise (this replica's
  share, see the module docstring) and named scalars that reach TensorBoard
  (`train/d/<name>`, `train/g/<name>`) and the terminal, scaled the same
  way. Parts are for reading; only `loss` is differentiated.
  """

  @abc.abstractmethod
  def g_loss(self, batch: Batch, generator: keras.Model,
             discriminator: keras.Model | None) -> LossAndParts:
    """The generator's loss on `batch` (fakes from `batch.z_g, batch.y_g`)."""

  def state(self) -> dict[str, tf.Module]:
    """Variables the losses keep from step to step ({name: tf.Module}),
    which the trainer creates under its strategy's scope (by calling this)
    and checkpoints with the run under `objective/`; {} by default."""
    return {}

  @property
  def supports_xla(self) -> bool:
    """Whether the losses compile with XLA (`train.use_xla`)."""
    return self.xla_blocker is None

  @property
  def xla_blocker(self) -> str | None:
    """None, or what keeps the losses from compiling with XLA and the
    setting that lifts it (for the trainer's error message)."""
    return None

  def d_loss(self, batch: Batch, generator: keras.Model,
             discriminator: keras.Model) -> LossAndParts:
    """The discriminator's loss; needed only by methods with a D."""
    raise NotImplementedError(
        f"{type(self).__name__} has no discriminator loss.")


@gin.configurable
class Adversarial(Objective):
  """The class-conditional GAN game, with an optional R1 penalty.

  Losses are float32 under every precision (D's logits are float32,
  `tfgt.precision`).

  D: mean over the batch of `losses.discriminator_loss` (hinge by default,
  non-saturating with `discriminator_loss.name = 'non_saturating'`) on real
  images with their labels and fakes G(z_d, y_d) with y_d, plus
  gamma / 2 * E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018).
  G: mean of `losses.generator_loss` on D(G(z_g, y_g), y_g).

  Lazy regularisation (StyleGAN2, Karras et al. 2020, section 3.1): with
  `r1_every` = k > 1 the penalty is computed on one D batch in k (the k-th,
  2k-th, ...: batch index + 1 divisible by k) with weight k * gamma, which
  keeps its average and saves most of the cost of the nested gradient on the
  other batches. The lazy penalty's D pass runs in inference mode: state
  that D updates in training (BigGAN's spectral-norm vectors) cannot be
  written inside the conditional on several replicas, and it was updated by
  the step's main D pass already. Lazy R1 does not compile with XLA
  (`supports_xla`).

  Path-length regularisation (StyleGAN2, section 3.2, eq. 4), with
  `pl_weight` > 0: on one G update in `pl_every` (lazily, weight times
  `pl_every`), every `pl_batch_shrink`-th row of the G batch is drawn again
  from its ws and the G loss gains pl_weight * E[(||J_w^T y|| - a)^2], with
  y ~ N(0, I) / sqrt(H * W) seeded by the row's latent
  (`losses.path_lengths`) and a the running mean of the lengths
  (decay `pl_decay`), held by the generator (`pl_mean`, checkpointed with
  it; `StyleGAN2Generator.track_path_length`). As in NVlabs' code, a is
  updated from each replica's rows before its penalty is taken (the
  replicas' updates are averaged into the one variable). The regularised
  draw mixes styles as training does and leaves w_avg alone.

  Augmentation (DiffAugment, Zhao et al. 2020): with `augment` set, D sees
  augment(x) instead of x for the real images and both batches of fakes,
  in D's loss, in G's loss and inside the R1 penalty (whose gradient is
  then taken with respect to the un-augmented real images). Each image's
  transformation is seeded by the bits of its row's latent (z_d for the
  D step, z_g for the G step) and a constant per kind of input, so it does
  not depend on the replica split and repeats after a resume.

  Args:
    r1_gamma: weight of the R1 penalty, >= 0 (0 turns it off).
    r1_every: an int >= 1: the penalty on every k-th D batch.
    augment: None, or a callable (images [B, R, R, C], seeds int32 [B, 2])
      -> images [B, R, R, C], differentiable with respect to the images
      (`tfgt.data.augment.DiffAugment()`).
    pl_weight: weight of the path-length penalty, >= 0 (0 turns it off;
      NVlabs: 2, and 0 in its CIFAR-10 configuration).
    pl_every: an int >= 1: the penalty on every k-th G update (NVlabs: 4).
    pl_batch_shrink: an int >= 1: the penalty on every k-th row (NVlabs: 2).
    pl_decay: in (0, 1], the running mean's rate (NVlabs: 0.01).

  Raises:
    UserInputError: a negative r1_gamma or pl_weight, an r1_every,
      pl_every or pl_batch_shrink below 1, or a pl_decay outside (0, 1].
  """

  # Seed offsets of the augmentations of real images, D's fakes and G's
  # fakes (added to the latent's seed).
  _AUGMENT_SALTS = (23, 29, 31)

  def __init__(self, r1_gamma: float = 0.0, r1_every: int = 1,
               augment: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None
               = None, pl_weight: float = 0.0, pl_every: int = 4,
               pl_batch_shrink: int = 2, pl_decay: float = 0.01):
    for name, value in (("r1_gamma", r1_gamma), ("pl_weight", pl_weight)):
      if value < 0:
        raise UserInputError(f"Adversarial.{name} must be >= 0, got "
                             f"{value}.")
    for name, value, what in (("r1_every", r1_every, "every D batch"),
                              ("pl_every", pl_every, "every G batch"),
                              ("pl_batch_shrink", pl_batch_shrink,
                               "every row")):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserInputError(f"Adversarial.{name} must be an int >= 1 (1: "
                             f"{what}), got {value!r}.")
    if not 0.0 < pl_decay <= 1.0:
      raise UserInputError(f"Adversarial.pl_decay must be in (0, 1], got "
                           f"{pl_decay}.")
    self.r1_gamma = r1_gamma
    self.r1_every = r1_every
    self.augment = augment
    self.pl_weight = pl_weight
    self.pl_every = pl_every
    self.pl_batch_shrink = pl_batch_shrink
    self.pl_decay = pl_decay

  def state(self) -> dict[str, tf.Module]:
    """The augmentation's state (ADA's adaptive p), if it keeps one."""
    state = getattr(self.augment, "state", None)
    return state() if state is not None else {}

  def d_input(self, images: tf.Tensor, z: tf.Tensor, kind: int) -> tf.Tensor:
    """What D sees of `images` [B, R, R, C]: augmented if `augment` is set,
    seeded by the rows' latents z [B, dim_z] and `kind` (0: real images,
    1: D's fakes, 2: G's fakes)."""
    if self.augment is None:
      return images
    seeds = inputs_lib.sample_seeds(z) + self._AUGMENT_SALTS[kind]
    return self.augment(images, seeds)

  @property
  def xla_blocker(self) -> str | None:
    # XLA cannot differentiate the lazy penalty's conditional.
    if self.r1_gamma and self.r1_every > 1:
      return ("lazy R1 (Adversarial.r1_every > 1); set "
              "Adversarial.r1_every = 1")
    if self.pl_weight:
      return ("path-length regularisation (a gradient inside the loss); set "
              "Adversarial.pl_weight = 0")
    if getattr(self.augment, "adaptive", False):
      return ("ADA's adaptive p (variables written by the loss); set "
              "ADAugment.target = None")
    return None

  def d_loss(self, batch, generator, discriminator):
    fake = generator((batch.z_d, batch.y_d), training=True)
    return self.d_loss_of_fakes(batch, fake, discriminator)

  def d_loss_of_fakes(self, batch: Batch, fake: tf.Tensor,
                      discriminator: keras.Model) -> LossAndParts:
    """`d_loss` given the fakes G(z_d, y_d) [B, R, R, C] (a subclass that
    adds a term on the same fakes draws them once)."""
    real_logits = discriminator(
        (self.d_input(batch.images, batch.z_d, 0), batch.labels),
        training=True)
    fake_logits = discriminator((self.d_input(fake, batch.z_d, 1), batch.y_d),
                                training=True)
    loss = batch.mean(losses.discriminator_loss(real_logits, fake_logits))
    parts = {"adversarial": loss}
    if self.r1_gamma:
      lazy = self.r1_every > 1

      def r1():
        penalty = losses.r1_penalty(
            lambda x: discriminator((self.d_input(x, batch.z_d, 0),
                                     batch.labels), training=not lazy),
            batch.images, scale=batch.loss_scale)
        return (0.5 * self.r1_gamma * self.r1_every *
                tf.reduce_sum(penalty) / batch.global_batch_size)
      if not lazy:
        parts["r1"] = r1()
      else:
        parts["r1"] = tf.cond(
            tf.equal((batch.step_index() + 1) % self.r1_every, 0), r1,
            lambda: tf.zeros([], loss.dtype))
      loss += parts["r1"]
    if getattr(self.augment, "adaptive", False):
      # ADA's p, adjusted from the signs of D(real) after every use of this
      # batch's p (R1's included); logged (as a share, so that the sum over
      # replicas is p), not differentiated.
      parts["augment_p"] = batch.share(self.augment.observe(
          real_logits, batch.step_index(), batch.global_batch_size))
    return loss, parts

  def g_loss(self, batch, generator, discriminator):
    fake = generator((batch.z_g, batch.y_g), training=True)
    logits = discriminator((self.d_input(fake, batch.z_g, 2), batch.y_g),
                           training=True)
    loss = batch.mean(losses.generator_loss(logits))
    parts = {"adversarial": loss}
    if self.pl_weight:
      parts["pl"] = self.path_length_penalty(batch, generator)
      loss += parts["pl"]
    return loss, parts

  # The seed offset of the path-length noise y (added to the row's seed).
  _PL_SALT = 37

  def path_length_penalty(self, batch: Batch,
                          generator: keras.Model) -> tf.Tensor:
    """This replica's share of pl_every * pl_weight * the mean of
    (||J_w^T y|| - a)^2 on every pl_batch_shrink-th G row (0 on the batches
    the lazy schedule skips); updates the generator's `pl_mean` (a).

    Raises:
      UserInputError: a generator without `pl_mean`.
    """
    pl_mean = getattr(generator, "pl_mean", None)
    if pl_mean is None:
      raise UserInputError(
          f"Adversarial.pl_weight = {self.pl_weight} needs a generator that "
          "keeps the running mean of path lengths; this "
          f"{getattr(generator, 'architecture', type(generator).__name__)} "
          "generator has none. Set StyleGAN2Generator.track_path_length = "
          "True for a StyleGAN2 started from scratch (its checkpoints hold "
          "the mean), or set Adversarial.pl_weight = 0.")
    z = batch.z_g[::self.pl_batch_shrink]
    y = batch.y_g[::self.pl_batch_shrink]
    rows = tf.shape(z)[0]
    # The mean over the rows regularised on every replica (as many on each).
    count = tf.cast(rows * batch.num_replicas, tf.float32)

    def penalty():
      ws, noise = generator.styles(z, y, training=True, update_w_avg=False)
      seeds = inputs_lib.sample_seeds(z) + self._PL_SALT
      lengths = losses.path_lengths(
          lambda w: generator.synthesize(w, z, training=True, noise=noise),
          ws, seeds)
      mean = pl_mean + self.pl_decay * (tf.reduce_mean(lengths) - pl_mean)
      share = tf.reduce_sum(tf.square(lengths - mean)) / count
      return self.pl_weight * self.pl_every * share, mean

    def skip():
      return tf.zeros([]), tf.identity(pl_mean)
    if self.pl_every == 1:
      value, mean = penalty()
    else:
      value, mean = tf.cond(
          tf.logical_and(
              tf.equal((batch.training_step_index() + 1) % self.pl_every,
                       0), rows > 0), penalty, skip)
    # Written outside the conditional (a variable cannot be written inside
    # one on several replicas); MEAN aggregation averages the replicas'.
    pl_mean.assign(tf.stop_gradient(mean))
    return value


class Regularized(Objective):
  """Another objective plus weighted regularisers of the models' weights.

  Args:
    objective: the objective regularised.
    g_terms: {name: (weight, fn)}: fn() -> scalar computed from G's weights
      alike on every replica; the G loss gains the share of
      sum(weight * fn()). Parts: each fn() unweighted under its name, and the
      weighted sum as "regularizer".
    d_terms: the same for D.
  """

  def __init__(self, objective: Objective,
               g_terms: Mapping[str, tuple[float, Callable[[], tf.Tensor]]]
               | None = None,
               d_terms: Mapping[str, tuple[float, Callable[[], tf.Tensor]]]
               | None = None):
    self.objective = objective
    self.g_terms = dict(g_terms or {})
    self.d_terms = dict(d_terms or {})

  @staticmethod
  def _add(batch: Batch, result: LossAndParts, terms) -> LossAndParts:
    loss, parts = result
    if not terms:
      return loss, parts
    parts = dict(parts)
    total = None
    for name, (weight, fn) in terms.items():
      value = fn()
      parts[name] = batch.share(value)
      total = weight * value if total is None else total + weight * value
    parts["regularizer"] = batch.share(total)
    return loss + parts["regularizer"], parts

  @property
  def xla_blocker(self) -> str | None:
    return self.objective.xla_blocker

  def state(self) -> dict[str, tf.Module]:
    return self.objective.state()

  def g_loss(self, batch, generator, discriminator):
    return self._add(batch, self.objective.g_loss(batch, generator,
                                                  discriminator), self.g_terms)

  def d_loss(self, batch, generator, discriminator):
    return self._add(batch, self.objective.d_loss(batch, generator,
                                                  discriminator), self.d_terms)
