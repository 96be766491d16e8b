"""Training a GAN of any registered architecture from random initialisation.

Used to pretrain source models (the shipped BigGAN and StyleGAN) and as the
"Scratch" baseline of transfer experiments (target data only).
"""

from __future__ import annotations

import gin

from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.models import architectures


@gin.configurable
class Scratch(base.Method):
  """A randomly initialised GAN with one class per data class.

  The models come from the gin bindings of the architecture's generator and
  discriminator classes (`BigGANGenerator.ch = 16`,
  `StyleGANGenerator.fmap_max = 128`, ...); their resolution and channels
  must agree. An unconditional model is trained on data with one class
  (`tfgt.data.sources.merged_classes`).

  Args:
    architecture: a registered architecture (`tfgt.models.architectures`):
      "biggan" or "stylegan", or one registered by your own module.

  Raises:
    UserInputError: an unknown architecture, or generator and discriminator
      bindings that disagree on the image shape.
  """

  name = "scratch"

  def __init__(self, architecture: str = "biggan"):
    self.architecture = architectures.get(architecture)
    self._g_kwargs = self.architecture.generator(1).ctor_kwargs
    self._d_kwargs = self.architecture.discriminator(1).ctor_kwargs
    g_name = self.architecture.generator.__name__
    d_name = self.architecture.discriminator.__name__
    for key in ("resolution", "channels"):
      if self._g_kwargs[key] != self._d_kwargs[key]:
        raise UserInputError(
            f"Generator and discriminator disagree on {key}: "
            f"{g_name}.{key} = {self._g_kwargs[key]!r} but "
            f"{d_name}.{key} = {self._d_kwargs[key]!r}. Bind both "
            "to the same value.")

  def source_info(self) -> base.SourceInfo:
    return base.SourceInfo([], self._g_kwargs["resolution"],
                           self._g_kwargs["channels"])

  def build(self, class_names: list[str]) -> base.GANSetup:
    n = len(class_names)
    generator = self.architecture.generator(n, **self._g_kwargs)
    discriminator = self.architecture.discriminator(n, **self._d_kwargs)
    self.architecture.build(generator, discriminator)
    return base.GANSetup(generator, discriminator,
                         generator.trainable_variables,
                         discriminator.trainable_variables,
                         list(class_names))
