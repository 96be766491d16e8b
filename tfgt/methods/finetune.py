"""Fine-tuning baselines: TransferGAN and FreezeD.

TransferGAN (Wang et al., ECCV 2018): start from the source generator and
discriminator and fine-tune all of both on the target data. FreezeD (Mo et
al., 2020): the same with the first K (highest-resolution) discriminator
blocks frozen. Both models are the source's architecture for N + M classes
(a BigGAN, or a class-conditional StyleGAN2 whose label embeddings in G's
mapping network and D's label mapping grow): the old classes' rows are
copied, the new classes' rows are appended. Old classes are not protected:
they drift as the shared weights adapt.

Training from scratch on the target classes is `tfgt.methods.scratch.Scratch`.
"""

from __future__ import annotations

from absl import logging
import gin
import numpy as np

from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.methods import source as source_lib
from tfgt.models import architectures
from tfgt.models import weights


@gin.configurable
class TransferGAN(source_lib.TransferMethod):
  """Fine-tunes the whole source G and D with new class rows.

  Args:
    source: source bundle (folder, run model_dir or "pretrained:NAME").
    checkpoint: checkpoint of the source bundle.
    g_new_rows: initial new rows of G's class tables (BN rows or shared
      embedding): "mean" of the old rows, "zeros" or "random"
      (`weights.NEW_ROW_INITS`; BigGAN's BN tables initialise to
      zero, so "random" gives zero BN rows).
    d_new_rows: initial new projection rows of D, as g_new_rows.
    frozen_d_blocks: the first K discriminator blocks do not train (FreezeD),
      >= 0.

  Raises:
    UserInputError: an unknown g_new_rows or d_new_rows, a negative
      frozen_d_blocks, or (at build) more frozen blocks than D has.
  """

  name = "transfergan"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest", g_new_rows: str = "mean",
               d_new_rows: str = "random", frozen_d_blocks: int = 0):
    super().__init__(source, checkpoint)
    for arg, value in (("g_new_rows", g_new_rows), ("d_new_rows", d_new_rows)):
      weights.check_row_init(f"{type(self).__name__}.{arg}", value)
    if frozen_d_blocks < 0:
      raise UserInputError("frozen_d_blocks must be >= 0.")
    self.g_new_rows = g_new_rows
    self.d_new_rows = d_new_rows
    self.frozen_d_blocks = frozen_d_blocks

  def check_source(self, src: source_lib.SourceModel) -> None:
    """Refuses an unconditional StyleGAN: it has no class table to grow
    (`source.refuse_unconditional_stylegan`)."""
    source_lib.refuse_unconditional_stylegan(self, src)

  def build(self, class_names: list[str]) -> base.GANSetup:
    src, num_new = self.load_source(class_names)
    num_old = len(src.class_names)
    architecture = architectures.get(src.generator.architecture)
    generator = architecture.generator(num_old + num_new,
                                       **src.generator.ctor_kwargs)
    architecture.build(generator, None)
    unmatched = weights.copy_weights(src.generator, generator, num_old,
                                        self.g_new_rows)
    if unmatched:
      raise ValueError(f"Generator variables missing from the source: "
                       f"{[v.path for v in unmatched]}")
    discriminator = source_lib.extend_discriminator(
        src.discriminator, num_old + num_new, self.d_new_rows)
    blocks = discriminator.blocks
    if self.frozen_d_blocks > len(blocks):
      raise UserInputError(
          f"frozen_d_blocks={self.frozen_d_blocks} but the discriminator has "
          f"{len(blocks)} blocks.")
    frozen = {id(v) for block in blocks[:self.frozen_d_blocks]
              for v in block.variables}
    d_variables = [v for v in discriminator.trainable_variables
                   if id(v) not in frozen]
    logging.info("%s: %d old + %d new classes; D blocks frozen: %d; %d "
                 "trainable D values.", self.name, num_old, num_new,
                 self.frozen_d_blocks,
                 sum(int(np.prod(v.shape)) for v in d_variables))
    return base.GANSetup(generator, discriminator,
                         generator.trainable_variables, d_variables,
                         list(class_names))


@gin.configurable
class FreezeD(TransferGAN):
  """TransferGAN with the first `frozen_d_blocks` D blocks frozen."""

  name = "freezed"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest", g_new_rows: str = "mean",
               d_new_rows: str = "random", frozen_d_blocks: int = 2):
    super().__init__(source, checkpoint, g_new_rows, d_new_rows,
                     frozen_d_blocks)
