"""Training a conditional BigGAN from random initialisation.

Used to pretrain source models and as the "Scratch" baseline of transfer
experiments (target data only).
"""

from __future__ import annotations

import gin

from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.models import biggan


@gin.configurable
class Scratch(base.Method):
  """A randomly initialised BigGAN with one class per data class.

  The architecture comes from the gin bindings of `BigGANGenerator` and
  `BigGANDiscriminator`; their resolution and channels must agree.
  """

  name = "scratch"

  def __init__(self):
    self._g_kwargs = biggan.BigGANGenerator(1).ctor_kwargs
    self._d_kwargs = biggan.BigGANDiscriminator(1).ctor_kwargs
    for key in ("resolution", "channels"):
      if self._g_kwargs[key] != self._d_kwargs[key]:
        raise UserInputError(
            f"Generator and discriminator disagree on {key}: "
            f"BigGANGenerator.{key} = {self._g_kwargs[key]!r} but "
            f"BigGANDiscriminator.{key} = {self._d_kwargs[key]!r}. Bind both "
            "to the same value.")

  def source_info(self) -> base.SourceInfo:
    return base.SourceInfo([], self._g_kwargs["resolution"],
                           self._g_kwargs["channels"])

  def build(self, class_names: list[str]) -> base.GANSetup:
    n = len(class_names)
    generator = biggan.BigGANGenerator(n, **self._g_kwargs)
    discriminator = biggan.BigGANDiscriminator(n, **self._d_kwargs)
    biggan.build_models(generator, discriminator)
    return base.GANSetup(generator, discriminator,
                         generator.trainable_variables,
                         discriminator.trainable_variables,
                         list(class_names))
