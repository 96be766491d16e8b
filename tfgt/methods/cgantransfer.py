"""cGANTransfer: new classes borrow their BN parameters from the old ones.

Shahbazi et al., "Efficient Conditional GAN Transfer with Knowledge
Propagation across Classes", CVPR 2021. In every class-conditional BN layer
of the source BigGAN, each new class's gain and shift are a learned linear
combination of pseudo-classes (a trainable copy of the old classes'
parameters, eq. 5-6) plus a residual (Sec. 4.3); see
`tfgt.layers.knowledge_transfer` and the generator in
`tfgt.models.transfer_generator`. The generator is otherwise frozen and the
discriminator is fine-tuned with new projection rows (the set-up of
`tfgt.methods.bn_transfer`, shared with BSA). The objective is the adversarial
one plus the L1 of the scores and the L2 of the residuals (eq. 7). Labels run
over [0, N + M): the old classes keep their ids and, with a frozen backbone,
their exact images.

A class-conditional StyleGAN2 source has no conditional BN: the class
enters through its mapping network's label embedding, and the new classes'
embedding rows are propagated the same way (scores over pseudo-classes plus
a residual, the same L1 and L2; `tfgt.models.stylegan2_transfer`,
docs/STYLEGAN2.md); everything else of G and the old rows stay frozen.

After training, `transfer_generator.fold_generator` turns the generator into
a plain `BigGANGenerator` for N + M classes (scores, pseudo-classes and
residuals are dropped, as the paper says), so inference costs nothing extra.

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


from absl import logging
import gin
import numpy as np

from tfgt import objectives
from tfgt import run_folder
from tfgt.errors import UserInputError
from tfgt.layers import knowledge_transfer as kt
from tfgt.methods import base
from tfgt.methods import bn_transfer
from tfgt.methods import source as source_lib
from tfgt.models import stylegan2_transfer as sg2t
from tfgt.models import transfer_generator as tg
from tfgt.models import weights


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
    lambda_scores: weight of the L1 of the scores (mean per tensor; eq. 7),
      >= 0.
    lambda_residuals: weight of the L2 of the residuals (mean per tensor),
      >= 0.
    tune_noise_projection: also train the projections from (embedding, z) to
      BN parameters; needed with hierarchical z (paper 5.1). None: on iff the
      source has a shared embedding and hierarchical z. Changes old classes.
    fine_tune: the paper's 5.4 stage: scores and pseudo-classes frozen,
      residuals and the rest of G trained (BN in training mode). Old classes
      change. Usually with `init_from`.
    init_from: a cGANTransfer training run (its model_dir) whose latest
      training checkpoint (EMA generator and discriminator) starts this run.
    d_new_rows: initial projection rows of the new classes in D: "random",
      "mean" or "zeros" (`weights.NEW_ROW_INITS`).

  Raises:
    UserInputError: an unknown score_init, residual or d_new_rows, a negative
      lambda, fine_tune without init_from.
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
    weights.check_row_init(f"{type(self).__name__}.d_new_rows", d_new_rows)
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

  def check_source(self, src: source_lib.SourceModel) -> None:
    """Refuses an unconditional StyleGAN: it has no class table to propagate
    into (`source.refuse_unconditional_stylegan`)."""
    source_lib.refuse_unconditional_stylegan(self, src)

  def build(self, class_names: list[str]) -> base.GANSetup:
    # The architecture from model.json: loading the source here would draw
    # from the random state before the new rows do.
    _, spec = source_lib.read_info(self.source)
    stylegan = spec.get("architecture") == "stylegan2"
    if stylegan:
      generator, discriminator = self._stylegan2_models(class_names)
    else:
      generator, discriminator = bn_transfer.build_transfer_models(
          self, class_names, "propagated", self.d_new_rows,
          train_backbone=self.fine_tune, **self.transfer_kwargs)
    if self.init_from:
      # The first stage's EMA generator and D (paper 5.4).
      path = run_folder.restore_models(
          self.init_from, class_names, ema_generator=generator,
          discriminator=discriminator)
      logging.info("Started from %s.", path)

    if self.fine_tune:
      frozen = {id(v) for v in generator.propagation_variables()}
      g_variables = [v for v in generator.trainable_variables
                     if id(v) not in frozen]
    else:
      g_variables = [v for v in generator.transfer_variables() if v.trainable]
      if not stylegan:
        g_variables += bn_transfer.tuned_noise_projections(
            generator, self.tune_noise_projection)
    logging.info("%s%s: %d old + %d new classes, %d trainable G variables "
                 "(%d values).", self.name,
                 " (StyleGAN2 label embedding)" if stylegan else "",
                 generator.num_old_classes, generator.num_new_classes,
                 len(g_variables),
                 sum(int(np.prod(v.shape)) for v in g_variables))
    return bn_transfer.make_setup(
        generator, discriminator, g_variables, class_names,
        self._objective(generator),
        fold_generator=sg2t.fold_generator if stylegan else tg.fold_generator)

  def _stylegan2_models(self, class_names: list[str]):
    """The transfer generator and extended D of a class-conditional
    StyleGAN2 source: the new classes' label embeddings are propagated
    (`tfgt.models.stylegan2_transfer`)."""
    src, num_new = self.load_source(class_names)
    if self.transfer_kwargs["shared_scores"]:
      raise UserInputError(
          "CGANTransfer.shared_scores shares scores across BN layers; a "
          "StyleGAN2 source has one table of scores (its label embedding): "
          "leave shared_scores False.")
    if self.tune_noise_projection:
      raise UserInputError(
          "CGANTransfer.tune_noise_projection trains a BigGAN's projections "
          "of z to BN parameters; a StyleGAN2 has none: leave it None.")
    num_old = len(src.class_names)
    kwargs = {k: v for k, v in self.transfer_kwargs.items()
              if k != "shared_scores"}
    generator = sg2t.StyleGAN2TransferGenerator(
        num_old, num_new, train_backbone=self.fine_tune, **kwargs,
        **src.generator.ctor_kwargs)
    generator.load_source(src.generator)
    discriminator = source_lib.extend_discriminator(
        src.discriminator, num_old + num_new, self.d_new_rows)
    return generator, discriminator

  def _objective(self, generator) -> objectives.Objective:
    """The adversarial loss, plus eq. 7's regularisers of `generator`.

    G's loss gains lambda_scores * L1(scores) + lambda_residuals * L2
    (residuals), in that order, as each replica's share (G parts
    "scores_l1", "residuals_l2" and "regularizer"). The fine-tuning stage
    freezes the scores, so their weight is 0 there. With no term that can
    be non-zero (both weights 0, or only residuals and none exist), the
    objective is the adversarial one alone.
    """
    lambda_scores = 0.0 if self.fine_tune else self.lambda_scores
    lambda_residuals = self.lambda_residuals
    if not (lambda_scores > 0 or (
        lambda_residuals > 0 and self.transfer_kwargs["residual"] != "none")):
      return objectives.Adversarial()
    return objectives.Regularized(objectives.Adversarial(), g_terms={
        "scores_l1": (lambda_scores, generator.scores_l1),
        "residuals_l2": (lambda_residuals, generator.residuals_l2)})
