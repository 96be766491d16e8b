"""BSA baseline: new classes' BN parameters learned independently.

As cGANTransfer uses it (its Fig. 1b, after Noguchi & Harada's batch
statistics adaptation): the source generator is frozen and each new class
gets its own gain and shift rows in every conditional BN, learned without
reference to the old classes. Same generator, discriminator handling and
folding as cGANTransfer (`tfgt.methods.bn_transfer`), so the two differ only
in how new rows are made; BSA has no regulariser (the adversarial objective
alone).
"""

from __future__ import annotations

from absl import logging
import gin
import numpy as np

from tfgt.methods import base
from tfgt.methods import bn_transfer
from tfgt.methods import source as source_lib
from tfgt.models import weights


@gin.configurable
class BSA(source_lib.TransferMethod):
  """Independent new-class BN rows on a frozen source generator.

  Args:
    source: source bundle (folder, run model_dir or "pretrained:NAME").
    checkpoint: checkpoint of the source bundle.
    row_init: initial new rows: "mean" of the old classes' rows (the same
      start as cGANTransfer with uniform scores) or "zeros" (plain BN); see
      `weights.NEW_ROW_INITS` ("random" is not offered: these
      rows have no random initialiser).
    tune_noise_projection: as `CGANTransfer` (shared-embedding sources).
    d_new_rows: initial projection rows of the new classes in D: "random",
      "mean" or "zeros".

  Raises:
    UserInputError: an unknown row_init or d_new_rows.
  """

  name = "bsa"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest", row_init: str = "mean",
               tune_noise_projection: bool | None = None,
               d_new_rows: str = "random"):
    super().__init__(source, checkpoint)
    weights.check_row_init(f"{type(self).__name__}.row_init", row_init,
                      random=False)
    weights.check_row_init(f"{type(self).__name__}.d_new_rows", d_new_rows)
    self.row_init = row_init
    self.tune_noise_projection = tune_noise_projection
    self.d_new_rows = d_new_rows

  def build(self, class_names: list[str]) -> base.GANSetup:
    generator, discriminator = bn_transfer.build_transfer_models(
        self, class_names, "independent", self.d_new_rows,
        row_init=self.row_init, train_backbone=False)
    g_variables = generator.transfer_variables()
    g_variables += bn_transfer.tuned_noise_projections(
        generator, self.tune_noise_projection)
    logging.info("BSA: %d old + %d new classes, %d trainable G values.",
                 generator.num_old_classes, generator.num_new_classes,
                 sum(int(np.prod(v.shape)) for v in g_variables))
    return bn_transfer.make_setup(generator, discriminator, g_variables,
                                  class_names)
